//! The HTTP endpoint keeps answering under a bounded `wrk` load on loopback while a replay runs:
//! every response is 200 and `/metrics` still parses. Needs `wrk` (Debian package; `.ci/run`
//! installs it). Load: 1 thread, 8 connections, 4 seconds.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

/// Parse a Prometheus text exposition; the value of `medtap_packets_total`.
fn parse_metrics(body: &str) -> u64 {
    let mut packets = None;
    for line in body
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (name, value) = line.rsplit_once(' ').expect("metric line: name value");
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line}"));
        let bare = name.split('{').next().unwrap();
        assert!(
            bare.starts_with("medtap_")
                && bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad metric name: {line}"
        );
        if name.contains('{') {
            assert!(name.ends_with('}'), "bad labels: {line}");
        }
        if bare == "medtap_packets_total" {
            packets = Some(v as u64);
        }
    }
    packets.expect("medtap_packets_total in /metrics")
}

#[test]
fn endpoint_answers_under_wrk_load_during_a_replay() {
    if Command::new("wrk").arg("--version").output().is_err() {
        panic!("wrk is not installed (apt-get install wrk)");
    }
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let pcaps = common::pcap("");
    // the whole pcaps/ folder three times over: long enough to be running under the load
    let mut child = common::medtap()
        .args([
            "replay",
            "--no-progress",
            "--workers",
            "1",
            "--events",
            "/dev/null",
        ])
        .args(["--listen", &addr, "--linger", "30s"])
        .args([&pcaps, &pcaps, &pcaps])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let first = loop {
        if let Some((200, body)) = get(&addr, "/metrics") {
            break parse_metrics(&body);
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "endpoint never answered"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = Command::new("wrk")
        .args(["-t1", "-c8", "-d4s", "--timeout", "5s"])
        .arg(format!("http://{addr}/metrics"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    let (status, body) = get(&addr, "/metrics").expect("/metrics after the load");
    let last = parse_metrics(&body);
    let health = get(&addr, "/healthz").map(|(s, _)| s);
    let _ = child.kill();
    let _ = child.wait();
    eprintln!("{report}");
    assert!(out.status.success(), "wrk failed: {report}");
    assert!(
        !report.contains("Non-2xx"),
        "non-200 answers under load:\n{report}"
    );
    assert!(
        !report.contains("Socket errors"),
        "socket errors under load:\n{report}"
    );
    let requests: u64 = report
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.trim().parse().ok())
        .expect("wrk request count");
    assert!(
        requests >= 20,
        "only {requests} requests answered in 4 s:\n{report}"
    );
    assert_eq!(status, 200);
    assert_eq!(health, Some(200));
    assert!(
        last > first,
        "the replay did not progress during the load ({first} -> {last} packets)"
    );
}
