//! Structured logs: `--log-format json` gives one JSON object per line (timestamp, level,
//! message, fields), `--log-level` and `RUST_LOG` choose what is logged, and the text format
//! carries the same events with key=value fields.

mod common;

use serde_json::Value;

fn run(args: &[&str], env: Option<(&str, &str)>) -> String {
    let mut c = common::medtap();
    c.env_remove("RUST_LOG");
    if let Some((k, v)) = env {
        c.env(k, v);
    }
    let out = c
        .args(args)
        .arg("replay")
        .arg(common::pcap("damaged"))
        .args(["--listen", "127.0.0.1:0", "--summary-json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn json_logs_levels_and_rust_log() {
    let err = run(&["--log-format", "json"], None);
    let logs: Vec<Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|v: &Value| v.get("level").is_some())
        .collect();
    let find = |msg: &str| logs.iter().find(|v| v["message"] == msg);
    let skip = find("skipping").expect("skipping logged");
    assert_eq!(skip["level"], "WARN");
    assert!(skip["file"].as_str().unwrap().ends_with("README"));
    assert!(skip["timestamp"].as_str().unwrap().ends_with('Z'));
    let serving = find("serving /metrics and /healthz").expect("serving logged");
    assert_eq!(serving["level"], "INFO");
    assert_eq!(serving["auth"], false);
    assert!(find("damaged capture").is_some());

    let quiet = run(&["--log-format", "json", "--log-level", "error"], None);
    assert!(
        !quiet.contains("skipping") && !quiet.contains("serving"),
        "{quiet}"
    );
    let warn_only = run(&[], Some(("RUST_LOG", "warn")));
    assert!(
        warn_only.contains("WARN") && warn_only.contains("skipping file="),
        "{warn_only}"
    );
    assert!(!warn_only.contains("serving"), "{warn_only}");
    // --log-level wins over RUST_LOG.
    let both = run(&["--log-level", "info"], Some(("RUST_LOG", "error")));
    assert!(both.contains("INFO") && both.contains("serving"), "{both}");
}
