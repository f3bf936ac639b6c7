//! End-to-end behaviour of `medtap replay`: inputs, damage, workers, outputs.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

/// Events with what legitimately varies between runs removed, as sorted JSON strings.
/// `device` events go too: each worker sends a device's evidence once in a while (its own cache
/// of what it sent recently), so with 4 workers more of it arrives, and some `last_seen` in an
/// event is later (the inventory they lead to is the same; see
/// `the_inventory_does_not_depend_on_the_number_of_workers` in tests/inventory.rs).
/// Alerts are made on the central thread too, in arrival order: which flow opens a
/// de-duplication window (and so which flow an alert names, and how the repeats are split)
/// depends on the interleaving. What must not vary is which signatures fired for which device
/// and peer; alerts are reduced to that. Behaviour anomalies (category `anomaly`) are left out:
/// their baselines follow packet time, and this folder mixes captures from different years that
/// reuse addresses, so which observation teaches a baseline first depends on the interleaving.
fn normalised(events: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = events
        .iter()
        .filter(|e| e["event_type"] != "stats" && e["event_type"] != "device")
        .filter(|e| e["alert"]["category"] != "anomaly")
        .map(|e| {
            if e["event_type"] == "alert" {
                let a = &e["alert"];
                format!(
                    "alert {} {} {}",
                    a["signature_id"], a["device"]["ip"], a["peer"]
                )
            } else {
                e.to_string()
            }
        })
        .collect();
    v.sort();
    v.dedup_by(|a, b| a.starts_with("alert ") && a == b);
    v
}

#[test]
fn one_worker_and_four_workers_give_the_same_events() {
    let dir = common::pcap("");
    let (one, _) = common::replay(&[&dir], &["--workers", "1"]);
    let (four, _) = common::replay(&[&dir], &["--workers", "4"]);
    assert!(
        common::of_type(&one, "flow").len() > 100,
        "too few flows to compare"
    );
    let (a, b) = (normalised(&one), normalised(&four));
    if a != b {
        let only_a: Vec<_> = a.iter().filter(|x| !b.contains(x)).take(5).collect();
        let only_b: Vec<_> = b.iter().filter(|x| !a.contains(x)).take(5).collect();
        panic!("events differ ({} vs {}):\nonly with 1 worker: {only_a:#?}\nonly with 4 workers: {only_b:#?}", a.len(), b.len());
    }
}

#[test]
fn a_path_that_is_not_a_capture_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("notes.txt");
    std::fs::write(&f, "hello, not a pcap\n").unwrap();
    let out = common::medtap()
        .args(["replay", "--no-progress"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("notes.txt") && err.contains("not a pcap"),
        "{err}"
    );

    let out = common::medtap()
        .args(["replay", "--no-progress", "/nonexistent/x.pcap"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/x.pcap"));
}

#[test]
fn bad_flags_exit_2() {
    let pcap = common::pcap("corpus/generic/zeek_dhcp.pcap");
    for args in [
        vec!["--workers", "0"],
        vec!["--listen", "not-an-address"],
        vec!["--bogus-flag"],
        vec!["--bpf", "tcp and and"],
    ] {
        let out = common::medtap()
            .args(["replay", "--no-progress"])
            .args(&args)
            .arg(&pcap)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn damaged_files_are_read_as_far_as_they_go_and_others_still_run() {
    let damaged = common::pcap("damaged");
    if !damaged.exists() {
        panic!("pcaps/damaged is missing");
    }
    let good = common::pcap("corpus/legacy/arkime_openssl-tls1_2.pcap");
    let (events, out) = common::replay(&[&damaged, &good], &["--summary-json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("skipping") && stderr.contains("README"),
        "non-capture in folder not noted: {stderr}"
    );
    let stats = common::of_type(&events, "stats");
    assert_eq!(stats.len(), 1);
    let cap = &stats[0]["stats"]["capture"];
    assert!(cap["files_damaged"].as_u64().unwrap() >= 2, "{cap}");
    assert!(cap["files_skipped"].as_u64().unwrap() >= 1, "{cap}");
    assert!(cap["files_ok"].as_u64().unwrap() >= 1, "{cap}");
    // the good file still produced its TLS event after the damaged ones
    assert!(!common::of_type(&events, "tls").is_empty());
    // the truncated file's packets before the cut were processed
    assert!(cap["packets"].as_u64().unwrap() > 20);
}

#[test]
fn stats_event_counts_every_event_written() {
    let (events, _) = common::replay(&[&common::pcap("corpus")], &[]);
    let stats = common::of_type(&events, "stats");
    assert_eq!(stats.len(), 1);
    let ev = &stats[0]["stats"]["events"];
    assert_eq!(ev["produced"], ev["written"]);
    assert_eq!(ev["written"].as_u64().unwrap() as usize, events.len() - 1);
}

#[test]
fn events_are_eve_shaped() {
    let (events, _) = common::replay(&[&common::pcap("corpus/generic/ndpi_443-curl.pcap")], &[]);
    for e in &events {
        let t = e["event_type"].as_str().unwrap();
        assert!(e["timestamp"].as_str().unwrap().ends_with("+0000"));
        assert!(e.get(t).is_some(), "event {t} lacks its object: {e}");
        // `stats` and `device` events belong to no flow.
        if t != "stats" && t != "device" {
            for k in ["flow_id", "src_ip", "dest_ip", "proto"] {
                assert!(e.get(k).is_some(), "{t} lacks {k}: {e}");
            }
        }
    }
    let tls = common::of_type(&events, "tls");
    assert_eq!(tls.len(), 1, "{tls:?}");
    assert_eq!(tls[0]["tls"]["sni"], "www.ntop.org");
    assert_eq!(tls[0]["app_proto"], "tls");
    // the flow of the TLS event carries the same flow_id
    let flows: BTreeMap<u64, &Value> = common::of_type(&events, "flow")
        .into_iter()
        .map(|f| (f["flow_id"].as_u64().unwrap(), f))
        .collect();
    let f = flows[&tls[0]["flow_id"].as_u64().unwrap()];
    assert_eq!(f["app_proto"], "tls");
    assert_eq!(f["src_ip"], tls[0]["src_ip"]);
}

#[test]
fn metrics_out_passes_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let prom = dir.path().join("metrics.prom");
    let out = common::medtap()
        .args(["replay", "--no-progress", "--metrics-out"])
        .arg(&prom)
        .arg(common::pcap("corpus"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = std::fs::read_to_string(&prom).unwrap();
    for m in [
        "medtap_packets_total",
        "medtap_bytes_total",
        "medtap_decode_errors_total",
        "medtap_flows_active",
        "medtap_flows_created_total",
        "medtap_flows_ended_total",
        "medtap_reassembly_gaps_total",
        "medtap_reassembly_overlaps_total",
        "medtap_reassembly_cap_hits_total",
        "medtap_app_flows_total{app_proto=\"tls\"}",
        "medtap_build_info",
    ] {
        assert!(text.contains(m), "{m} missing from metrics");
    }
    match Command::new("promtool")
        .arg("check")
        .arg("metrics")
        .stdin(std::fs::File::open(&prom).unwrap())
        .output()
    {
        Ok(o) => assert!(
            o.status.success(),
            "promtool check metrics: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(_) if std::env::var_os("CI").is_none() => {
            eprintln!("promtool not installed; skipped (CI installs it)")
        }
        Err(e) => panic!("promtool: {e}"),
    }
}

#[test]
fn listen_serves_metrics_and_healthz() {
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = common::medtap()
        .args([
            "replay",
            "--no-progress",
            "--listen",
            &addr,
            "--linger",
            "30",
        ])
        .arg(common::pcap("corpus"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let get = |path: &str| -> Option<String> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).ok()?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
        let mut r = String::new();
        s.read_to_string(&mut r).ok()?;
        Some(r)
    };
    // Poll until the replay's final figures are visible (the server outlives the replay by --linger).
    let mut metrics = String::new();
    for _ in 0..300 {
        if let Some(r) = get("/metrics") {
            metrics = r;
            if metrics.contains("medtap_capture_files_total{result=\"ok\"}")
                && !metrics.contains("medtap_capture_files_total{result=\"ok\"} 0")
            {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let health = get("/healthz").unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        metrics.starts_with("HTTP/1.1 200") || metrics.starts_with("HTTP/1.0 200"),
        "{metrics}"
    );
    assert!(metrics.contains("medtap_build_info"), "{metrics}");
    assert!(metrics.contains("medtap_packets_total"), "{metrics}");
    assert!(
        health.contains(" 200 ") && health.contains("ok"),
        "{health}"
    );
}

/// The peak of live flows (what the memory budget is per) is reported in the summary and as
/// `medtap_flows_peak`, with one worker exactly: never more than the flows created, and below
/// them on the corpus (44 captures whose flows do not all overlap in packet time).
#[test]
fn peak_live_flows_in_summary_and_metric() {
    let dir = tempfile::tempdir().unwrap();
    let prom = dir.path().join("metrics.prom");
    let out = common::medtap()
        .args(["replay", "--no-progress", "--workers", "1", "--metrics-out"])
        .arg(&prom)
        .arg(common::pcap("corpus"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let num_before = |text: &str, tail: &str| -> u64 {
        let end = text
            .find(tail)
            .unwrap_or_else(|| panic!("{tail:?} in {text}"));
        let start = text[..end].rfind(' ').map_or(0, |i| i + 1);
        text[start..end].parse().unwrap()
    };
    let created = num_before(&err, " flows (peak");
    let peak = num_before(&err, " live)");
    assert!(
        peak >= 1 && peak < created,
        "peak {peak}, created {created}"
    );
    let text = std::fs::read_to_string(&prom).unwrap();
    assert!(
        text.contains(&format!("\nmedtap_flows_peak {peak}\n")),
        "medtap_flows_peak {peak} missing: {text}"
    );
}
