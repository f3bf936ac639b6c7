//! deploy/: the Prometheus alerting rules pass `promtool check rules` and their unit tests
//! (`promtool test rules`), and the Grafana dashboard is valid JSON whose queries name only
//! metrics medtap exports. Skips (with a note) only when promtool is not installed; CI
//! installs it (`.ci/run`).

mod common;

use std::process::Command;

fn promtool() -> Option<Command> {
    match Command::new("promtool").arg("--version").output() {
        Ok(o) if o.status.success() => Some(Command::new("promtool")),
        _ => {
            eprintln!("promtool not installed: skipping");
            None
        }
    }
}

#[test]
fn alerting_rules_pass_promtool_tests() {
    let Some(mut check) = promtool() else { return };
    let deploy = common::root().join("deploy");
    let out = check
        .current_dir(&deploy)
        .args(["check", "rules", "medtap-alerts.yml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("promtool")
        .current_dir(&deploy)
        .args(["test", "rules", "medtap-alerts.test.yml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn dashboard_queries_name_exported_metrics() {
    let text =
        std::fs::read_to_string(common::root().join("deploy/grafana-dashboard.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let m = medtap::metrics::Metrics::new("test");
    m.init_alert_labels(&medtap::detect::RuleSet::shipped().unwrap());
    // Series that exist once a live capture runs.
    m.capture_drops.with_label_values(&["eth0", "kernel"]);
    let metrics = m.render();
    let mut n = 0;
    for p in v["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap();
            let name: String = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .find(|w| w.starts_with("medtap_"))
                .unwrap_or_else(|| panic!("{expr}: no medtap metric"))
                .to_string();
            assert!(
                metrics.contains(&format!("# TYPE {name} ")),
                "{name} is not exported"
            );
            n += 1;
        }
    }
    assert!(n >= 6, "{n} queries");
}
