//! No PHI value, password or SNMP community ever leaves the process.
//!
//! `tests/expected/privacy/secrets.tsv` lists (capture, secret) rows, made by
//! `tests/expected/privacy/make.sh` with tshark as the oracle (FTP PASS arguments, HTTP basic
//! passwords, SNMP communities, and the PHI values of the DICOM and HL7 captures that tshark
//! finds in their bytes). A new row is one line. Each capture is replayed with every output on:
//! the event log, `--metrics-out`, `--inventory`, the HTTP endpoint (`/metrics`, `/healthz`,
//! `/api/devices` and each device's page, `/api/alerts` when it answers) and standard error at
//! `--log-level debug`; no secret of that capture may appear in any of them.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// GET `path` from `addr`; the body (any status).
fn get(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// Everything one replay of `capture` let out, as (name, text) pairs.
fn outputs_of(capture: &std::path::Path) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let (ev, met, inv) = (
        dir.path().join("eve.json"),
        dir.path().join("metrics.prom"),
        dir.path().join("inventory.json"),
    );
    let addr = format!("127.0.0.1:{}", common::free_port());
    let mut child = common::medtap()
        .args([
            "replay",
            "--no-progress",
            "--log-level",
            "debug",
            "--events",
        ])
        .arg(&ev)
        .arg("--metrics-out")
        .arg(&met)
        .arg("--inventory")
        .arg(&inv)
        .args(["--listen", &addr, "--linger", "60s"])
        .arg(capture)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // --metrics-out is written when the replay is done; the endpoint then lingers.
    let started = Instant::now();
    while !met.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "replay of {capture:?} did not finish"
        );
        if let Some(st) = child.try_wait().unwrap() {
            panic!("medtap exited early: {st}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut out = Vec::new();
    for path in ["/metrics", "/healthz", "/api/devices", "/api/alerts"] {
        let body = get(&addr, path).unwrap_or_default();
        out.push((format!("GET {path}"), body));
    }
    // each device's own page
    let devices = out[2].1.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&devices) {
        for d in v["devices"].as_array().into_iter().flatten().take(50) {
            if let Some(id) = d["id"].as_str().or(d["mac"].as_str()) {
                let p = format!("/api/devices/{id}");
                out.push((format!("GET {p}"), get(&addr, &p).unwrap_or_default()));
            }
        }
    }
    let _ = child.kill();
    let o = child.wait_with_output().unwrap();
    out.push((
        "stderr".into(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    ));
    out.push((
        "stdout".into(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    ));
    for (name, p) in [("events", &ev), ("metrics-out", &met), ("inventory", &inv)] {
        out.push((name.into(), std::fs::read_to_string(p).unwrap_or_default()));
    }
    // the outputs are really there (a test reading empty outputs could not fail)
    let has = |name: &str, what: &str| out.iter().any(|(n, t)| n == name && t.contains(what));
    assert!(has("events", "\"stats\""), "no stats event for {capture:?}");
    assert!(
        has("GET /metrics", "medtap_packets_total"),
        "no /metrics for {capture:?}"
    );
    assert!(
        has("GET /api/devices", "devices"),
        "no /api/devices for {capture:?}"
    );
    assert!(has("inventory", "devices"), "no inventory for {capture:?}");
    assert!(has("stderr", "medtap"), "no log for {capture:?}");
    out
}

#[test]
fn no_secret_leaves_the_process() {
    let table =
        std::fs::read_to_string(common::root().join("tests/expected/privacy/secrets.tsv")).unwrap();
    let mut rows: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in table.lines().skip(1) {
        let Some((cap, secret)) = line.split_once('\t') else {
            continue;
        };
        rows.entry(cap.to_string())
            .or_default()
            .push(secret.to_string());
    }
    assert!(rows.len() >= 10, "too few captures in secrets.tsv");
    let mut leaks = Vec::new();
    let mut checked = 0;
    for (cap, secrets) in &rows {
        let path = common::pcap(cap);
        assert!(path.exists(), "{cap} listed in secrets.tsv is missing");
        let outputs = outputs_of(&path);
        for s in secrets {
            checked += 1;
            for (name, text) in &outputs {
                if text.contains(s.as_str()) {
                    let at = text.find(s.as_str()).unwrap_or(0);
                    let ctx: String = text[at.saturating_sub(80)..]
                        .chars()
                        .take(160 + s.len())
                        .collect();
                    leaks.push(format!("{cap}: '{s}' in {name}: …{ctx}…"));
                }
            }
        }
    }
    assert!(checked >= 40, "only {checked} secrets checked");
    // what the outputs do carry: the DICOM AE titles and HL7 applications (not PHI)
    let dicom = outputs_of(&common::pcap("dicom/echo.pcap"));
    assert!(dicom
        .iter()
        .any(|(n, t)| n == "events" && t.contains("PACS_SCP")));
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
}
