//! A real Prometheus server scrapes `medtap live`: two network namespaces joined by a veth pair,
//! medtap capturing on one end with its endpoint behind `--web-config` (TLS with a certificate
//! made here by openssl, plus a bcrypt basic-auth user), Prometheus (Debian package
//! `prometheus`) in the same namespace scraping it every second with `scheme: https`,
//! `tls_config` and `basic_auth`, and `tcpreplay` sending captures from the other end. Once the
//! replay is over and the counter settled, `medtap_capture_packets_total` read back through
//! Prometheus's HTTP API (`/api/v1/query`) must equal what medtap serves itself and the
//! number of packets tcpreplay sent, and `up` must be 1. medtap runs with `--no-immediate`
//! here (tests/live.rs covers the default immediate mode).
//!
//! Needs root, `ip`, `tcpreplay`, `prometheus`, `openssl` and `curl` (CI installs them and runs
//! as root). Elsewhere the test says why it did not run, and fails under CI=true.

mod common;

use common::netns::{ethernet_captures, runnable, Link};
use common::{make_cert, KillOnDrop};

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Run `args` inside namespace `ns`; stdout as text.
fn in_ns(ns: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The value of an unlabelled sample in a Prometheus text exposition.
fn sample(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// One instant query through Prometheus's HTTP API: the value of its single result.
fn query(ns: &str, prom: &str, q: &str) -> Option<f64> {
    let body = in_ns(
        ns,
        &[
            "curl",
            "-s",
            "--max-time",
            "5",
            "--get",
            "--data-urlencode",
            &format!("query={q}"),
            &format!("http://{prom}/api/v1/query"),
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    if v["status"] != "success" {
        return None;
    }
    let r = v["data"]["result"].as_array()?;
    if r.len() != 1 {
        return None;
    }
    r[0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn prometheus_scrapes_live_capture_over_tls_with_basic_auth() {
    if !runnable(
        "prometheus",
        &["ip", "tcpreplay", "prometheus", "openssl", "curl"],
    ) {
        return;
    }
    let files = ethernet_captures();
    assert!(files.len() > 20, "too few Ethernet captures");
    let link = Link::new("p", std::process::id() % 10_000);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_cert(d);
    let password = "scrape-pw-7f3a";
    std::fs::write(d.join("password"), password).unwrap();
    let hash = bcrypt::hash(password, 6).unwrap();
    std::fs::write(
        d.join("web.yml"),
        format!(
            "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  prometheus: '{hash}'\n"
        ),
    )
    .unwrap();
    // Fresh namespace: its loopback ports are all free.
    let (medtap_addr, prom_addr) = ("127.0.0.1:19860", "127.0.0.1:19090");
    std::fs::write(
        d.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: medtap\n    scheme: https\n    tls_config:\n      ca_file: {ca}\n    basic_auth:\n      username: prometheus\n      password_file: {pw}\n    static_configs:\n      - targets: ['{medtap_addr}']\n",
            ca = d.join("cert.pem").display(),
            pw = d.join("password").display(),
        ),
    )
    .unwrap();

    let medtap = link.medtap_live(
        &[
            "--workers".as_ref(),
            "2".as_ref(),
            "--listen".as_ref(),
            medtap_addr.as_ref(),
            // The batched (non-immediate) ring: its packets must all be counted too.
            "--no-immediate".as_ref(),
            "--web-config".as_ref(),
            d.join("web.yml").as_os_str(),
        ],
        &d.join("medtap.log"),
    );
    let prom = KillOnDrop(
        Command::new("ip")
            .args(["netns", "exec", &link.b, "prometheus"])
            .arg(format!(
                "--config.file={}",
                d.join("prometheus.yml").display()
            ))
            .arg(format!("--storage.tsdb.path={}", d.join("tsdb").display()))
            .arg(format!("--web.listen-address={prom_addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Prometheus is up and its first scrape of medtap succeeded.
    let started = Instant::now();
    while query(&link.b, prom_addr, "up{job=\"medtap\"}") != Some(1.0) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "Prometheus never scraped medtap successfully (up != 1)"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    let out = Command::new("ip")
        .args(["netns", "exec", &link.a, "tcpreplay", "--pps", "4000", "-i"])
        .arg(&link.va)
        .args(&files)
        .output()
        .unwrap();
    assert!(out.status.success(), "tcpreplay failed");
    let report = String::from_utf8_lossy(&out.stdout);
    let sent: u64 = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("Actual: "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no packet count in tcpreplay's report: {report}"));

    // medtap's own figure, read directly (with the same credentials) once it stops moving.
    let cacert = d.join("cert.pem");
    let direct = || {
        let text = in_ns(
            &link.b,
            &[
                "curl",
                "-s",
                "--max-time",
                "5",
                "--cacert",
                cacert.to_str().unwrap(),
                "-u",
                &format!("prometheus:{password}"),
                &format!("https://{medtap_addr}/metrics"),
            ],
        );
        sample(&text, "medtap_capture_packets_total")
    };
    let mut last = None;
    let started = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(700));
        let now = direct();
        if now.is_some() && now == last {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "medtap's counter did not settle"
        );
        last = now;
    }
    let served = last.unwrap();
    assert_eq!(
        served, sent,
        "medtap counted {served}, tcpreplay sent {sent}"
    );

    // The same value through Prometheus once a scrape after the replay landed.
    let started = Instant::now();
    let mut seen = None;
    while started.elapsed() < Duration::from_secs(30) {
        seen = query(
            &link.b,
            prom_addr,
            "medtap_capture_packets_total{job=\"medtap\"}",
        );
        if seen == Some(served as f64) {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(
        seen,
        Some(served as f64),
        "Prometheus has medtap_capture_packets_total = {seen:?}, medtap serves {served}"
    );
    assert_eq!(
        query(&link.b, prom_addr, "up{job=\"medtap\"}"),
        Some(1.0),
        "scrape failing"
    );
    drop(prom);
    drop(medtap);
}
