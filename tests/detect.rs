//! Detection rules against real captures: each rule fires on a capture that has what it looks
//! for and not on its pair that does not (TLS 1.0/1.1/SSLv3 vs TLS 1.2, SNMP v1/v2c vs v3,
//! SMBv1 vs SMB2, FTP with and without credentials, ...), and captures of modern traffic raise
//! nothing. The alerts of every capture listed here are compared with
//! `tests/expected/alerts/<capture path with / as _>.txt`: one line per distinct (signature id, device, peer),
//! sorted. `MEDTAP_BLESS=1 cargo test --test detect` rewrites those files (review the diff).

mod common;

use serde_json::Value;
use std::collections::BTreeSet;

/// Captures with their alerts checked against an expected file.
const CAPTURES: &[&str] = &[
    "corpus/legacy/arkime_openssl-ssl3.pcap",
    "corpus/legacy/arkime_openssl-tls1.pcap",
    "corpus/legacy/arkime_openssl-tls1_1.pcap",
    "corpus/legacy/arkime_openssl-tls1_2.pcap",
    "corpus/legacy/zeek_ssl-v2.pcap",
    "corpus/legacy/zeek_signed_certificate_timestamp_tls1_0.pcap",
    "corpus/legacy/zeek_snmpv1_get.pcap",
    "corpus/legacy/zeek_snmpv1_set.pcap",
    "corpus/legacy/zeek_snmpv2_get.pcap",
    "corpus/legacy/zeek_snmpv3_get_next.pcap",
    "corpus/legacy/arkime_SNMPv2c_get_requests.pcap",
    "corpus/legacy/ndpi_snmp.pcap",
    "corpus/legacy/ndpi_smbv1.pcap",
    "corpus/legacy/arkime_smb-smb1-ascii.pcap",
    "corpus/legacy/zeek_cifs_negotiate_lanman.pcap",
    "corpus/generic/zeek_smb1-pcap_is_actually_smb2.pcap",
    "corpus/legacy/zeek_ftp-password-pass-command.pcap",
    "corpus/legacy/ndpi_ftp.pcap",
    "corpus/legacy/ndpi_ftp_failed.pcap",
    "corpus/legacy/ndpi_telnet.pcap",
    "corpus/legacy/arkime_tftp_rrq.pcap",
    "corpus/legacy/ndpi_tftp.pcap",
    "corpus/legacy/ndpi_netbios.pcap",
    "corpus/legacy/arkime_http-basicauth.pcap",
    "corpus/legacy/ndpi_http_auth.pcap",
    "corpus/legacy/zeek_http_basic-auth-with-colon.pcap",
    "corpus/generic/ndpi_443-curl.pcap",
    "corpus/generic/ndpi_443-firefox.pcap",
    "corpus/generic/zeek_tls-1.2-handshake-failure.pcap",
    "tls_versions.pcap",
    "dicom/echo.pcap",
    "dicom/store.pcap",
    "dicom/find.pcap",
    "dicom/nonstd_port.pcap",
    "dicom/reject.pcap",
    "dicom/tls.pcap",
    "hl7/adt_oru_orm.pcap",
    "hl7/nonstd_port.pcap",
];

fn alerts(events: &[Value]) -> Vec<&Value> {
    common::of_type(events, "alert")
        .into_iter()
        .map(|e| &e["alert"])
        .collect()
}

/// Distinct (signature id, device ip, peer) of a capture's alerts, as sorted lines.
fn keys(events: &[Value]) -> Vec<String> {
    let set: BTreeSet<String> = alerts(events)
        .iter()
        .map(|a| {
            format!(
                "{} {} {}",
                a["signature_id"],
                a["device"]["ip"].as_str().unwrap_or("?"),
                a["peer"].as_str().unwrap_or("?")
            )
        })
        .collect();
    set.into_iter().collect()
}

fn ids(events: &[Value]) -> BTreeSet<u64> {
    alerts(events)
        .iter()
        .filter_map(|a| a["signature_id"].as_u64())
        .collect()
}

fn run(rel: &str) -> Vec<Value> {
    let (events, out) = common::replay(&[&common::pcap(rel)], &["--workers", "1"]);
    assert!(out.status.success(), "{rel}: {out:?}");
    events
}

#[test]
fn alerts_match_expected_files() {
    let bless = std::env::var_os("MEDTAP_BLESS").is_some();
    let dir = common::root().join("tests/expected/alerts");
    let mut failures = Vec::new();
    for rel in CAPTURES {
        let got = keys(&run(rel));
        let file = dir.join(format!("{}.txt", rel.replace('/', "_")));
        let text: String = got.iter().map(|l| format!("{l}\n")).collect();
        if bless {
            std::fs::write(&file, &text).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e} (MEDTAP_BLESS=1 writes it)", file.display()));
        if want != text {
            failures.push(format!("{rel}:\n--- expected\n{want}--- got\n{text}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What each pair shows, spelled out (the expected files hold the same, in full).
#[test]
fn each_rule_fires_on_its_capture_and_not_on_its_pair() {
    let has = |rel: &str, id: u64| ids(&run(rel)).contains(&id);
    // TLS: SSLv3, TLS 1.0, TLS 1.1 negotiated vs TLS 1.2; SSLv2; RC4 negotiated.
    assert!(has("corpus/legacy/arkime_openssl-ssl3.pcap", 6002002));
    assert!(has("corpus/legacy/arkime_openssl-tls1.pcap", 6002003));
    assert!(has("corpus/legacy/arkime_openssl-tls1_1.pcap", 6002004));
    assert!(has("corpus/legacy/zeek_ssl-v2.pcap", 6002001));
    assert!(has("corpus/legacy/arkime_openssl-tls1.pcap", 6002010));
    assert!(ids(&run("corpus/legacy/arkime_openssl-tls1_2.pcap")).is_empty());
    // SNMP: v1/v2c with public vs another community vs v3.
    assert!(has("corpus/legacy/zeek_snmpv1_get.pcap", 6001031));
    assert!(has("corpus/legacy/zeek_snmpv2_get.pcap", 6001031));
    assert!(has(
        "corpus/legacy/arkime_SNMPv2c_get_requests.pcap",
        6001030
    ));
    assert!(!has(
        "corpus/legacy/arkime_SNMPv2c_get_requests.pcap",
        6001031
    ));
    assert!(ids(&run("corpus/legacy/zeek_snmpv3_get_next.pcap")).is_empty());
    // SMB: SMBv1 and LANMAN vs SMB2.
    assert!(has("corpus/legacy/ndpi_smbv1.pcap", 6001010));
    assert!(has("corpus/legacy/ndpi_smbv1.pcap", 6001012));
    assert!(!has("corpus/legacy/ndpi_smbv1.pcap", 6001013));
    assert!(has(
        "corpus/legacy/zeek_cifs_negotiate_lanman.pcap",
        6001013
    ));
    assert!(ids(&run("corpus/generic/zeek_smb1-pcap_is_actually_smb2.pcap")).is_empty());
    // FTP: a password in clear vs an anonymous login.
    let creds = ids(&run("corpus/legacy/zeek_ftp-password-pass-command.pcap"));
    assert!(
        creds.contains(&6001003) && !creds.contains(&6001002),
        "{creds:?}"
    );
    let anon = ids(&run("corpus/legacy/ndpi_ftp.pcap"));
    assert!(
        anon.contains(&6001002) && !anon.contains(&6001003),
        "{anon:?}"
    );
    // Telnet, TFTP, NetBIOS, HTTP Basic.
    assert!(has("corpus/legacy/ndpi_telnet.pcap", 6001001));
    assert!(has("corpus/legacy/arkime_tftp_rrq.pcap", 6001004));
    assert!(has("corpus/legacy/ndpi_netbios.pcap", 6001020));
    assert!(has("corpus/legacy/ndpi_http_auth.pcap", 6001040));
    // DICOM and HL7 in clear, with PHI higher; non-standard ports; DICOM over TLS is not.
    assert!(has("dicom/echo.pcap", 6003001));
    assert!(has("dicom/store.pcap", 6003002));
    assert!(!has("dicom/echo.pcap", 6003002));
    assert!(has("dicom/nonstd_port.pcap", 6003005));
    assert!(!has("dicom/store.pcap", 6003005));
    assert!(has("hl7/adt_oru_orm.pcap", 6003004));
    assert!(has("hl7/nonstd_port.pcap", 6003006));
    assert!(ids(&run("dicom/tls.pcap")).is_empty());
}

/// Modern traffic (TLS 1.2 and 1.3, SMB2, SNMPv3, DICOM over TLS) raises no alert.
#[test]
fn modern_traffic_raises_nothing() {
    for rel in [
        "corpus/generic/ndpi_443-curl.pcap",
        "corpus/generic/ndpi_443-firefox.pcap",
        "corpus/legacy/arkime_openssl-tls1_2.pcap",
        "corpus/generic/zeek_smb1-pcap_is_actually_smb2.pcap",
        "corpus/legacy/zeek_snmpv3_get_next.pcap",
        "dicom/tls.pcap",
    ] {
        let events = run(rel);
        assert!(alerts(&events).is_empty(), "{rel}: {:?}", keys(&events));
    }
}

/// Alerts never carry a password, a community or PHI: the FTP password and the SNMP
/// communities of these captures appear nowhere in the events.
#[test]
fn alerts_hold_no_secret() {
    for (rel, secret) in [
        (
            "corpus/legacy/zeek_ftp-password-pass-command.pcap",
            "qwerty",
        ),
        (
            "corpus/legacy/arkime_SNMPv2c_get_requests.pcap",
            "R0_C@cti!",
        ),
        ("corpus/legacy/ndpi_http_auth.pcap", "fail2"),
    ] {
        let events = run(rel);
        let text: String = events.iter().map(|e| e.to_string()).collect();
        assert!(!text.contains(secret), "{rel}: {secret} in the events");
    }
}

/// `medtap_alerts_total` counts by rule and the summary reports the alerts.
#[test]
fn alert_metrics_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let prom = dir.path().join("m.prom");
    let out = common::medtap()
        .args(["replay", "--no-progress", "--workers", "1", "--metrics-out"])
        .arg(&prom)
        .arg(common::pcap(
            "corpus/legacy/zeek_cifs_negotiate_lanman.pcap",
        ))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = std::fs::read_to_string(&prom).unwrap();
    assert!(
        text.contains(
            "medtap_alerts_total{category=\"weak-crypto\",severity=\"1\",signature_id=\"6001013\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("medtap_legacy_flows_total{protocol=\"smb\"} 1"),
        "{text}"
    );
    // Every shipped rule has its series, at 0 until it fires.
    assert!(text.contains("signature_id=\"6001001\"} 0"), "{text}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("3 alerts"), "{err}");
}

/// A bad rule file is a usage error naming the file and line.
#[test]
fn bad_rule_file_exits_2_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    let f = dir.path().join("rules/site.toml");
    std::fs::write(
        &f,
        "[[rule]]\nid = 7000001\nname = \"x\"\ncategory = \"legacy-protocol\"\nseverity = 2\nprotocol = \"snmp\"\nwhen = [\n  { field = \"comunity\", equals = \"public\" },\n]\n",
    )
    .unwrap();
    let out = common::medtap()
        .args(["signatures", "check"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:8:", f.display())), "{err}");
    assert!(err.contains("comunity"), "{err}");
    // The same directory given to replay is refused the same way.
    let out = common::medtap()
        .args(["replay", "--no-progress", "--signatures"])
        .arg(dir.path())
        .arg(common::pcap("corpus/legacy/zeek_snmpv1_get.pcap"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // A good operator rule needs no code: it fires.
    std::fs::write(
        &f,
        "[[rule]]\nid = 7000001\nname = \"SNMP get to a site device\"\ncategory = \"exposure\"\nseverity = 3\nprotocol = \"snmp\"\nwhen = [{ field = \"pdu_type\", equals = \"get_request\" }]\n",
    )
    .unwrap();
    let (events, out) = common::replay(
        &[&common::pcap("corpus/legacy/zeek_snmpv2_get.pcap")],
        &[
            "--workers",
            "1",
            "--signatures",
            dir.path().to_str().unwrap(),
        ],
    );
    assert!(out.status.success());
    assert!(ids(&events).contains(&7000001), "{:?}", keys(&events));
}

fn anomalies(events: &[Value]) -> Vec<(String, String, String)> {
    alerts(events)
        .iter()
        .filter(|a| a["category"] == "anomaly")
        .map(|a| {
            (
                a["anomaly"].as_str().unwrap_or("?").to_string(),
                a["device"]["ip"].as_str().unwrap_or("?").to_string(),
                a["peer"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

/// nmap's SYN scan of 40 ports on one host (pcaps/gen/anomalies.sh) is one scan alert for the
/// scanner; the periodic HTTP capture (one port, two hosts) is none.
#[test]
fn port_scan_is_one_alert_and_normal_traffic_none() {
    let scan = anomalies(&run("detect/port_scan.pcap"));
    assert_eq!(
        scan,
        vec![(
            "scan_ports".to_string(),
            "10.75.0.1".to_string(),
            "10.75.0.2".to_string()
        )]
    );
    let normal = run("detect/new_peer.pcap");
    assert!(
        !anomalies(&normal).iter().any(|a| a.0.starts_with("scan")),
        "{:?}",
        anomalies(&normal)
    );
}

/// A device that talked to one peer every 2 s then talks to a new one: with a 20 s learning
/// period the new peer is an alert (and the learnt one is not); with the default 7 days
/// everything is still being learnt.
#[test]
fn new_peer_after_learning_period() {
    let (events, _) = common::replay(
        &[&common::pcap("detect/new_peer.pcap")],
        &["--workers", "1", "--learning-period", "20s"],
    );
    assert_eq!(
        anomalies(&events),
        vec![(
            "new_peer".to_string(),
            "10.75.0.1".to_string(),
            "10.75.0.3".to_string()
        )]
    );
    assert!(anomalies(&run("detect/new_peer.pcap")).is_empty());
}

/// `GET /api/alerts` serves the recent alerts while a replay lingers.
#[test]
fn api_alerts_serves_recent_alerts() {
    use std::io::{Read, Write};
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = common::medtap()
        .args([
            "replay",
            "--no-progress",
            "--workers",
            "1",
            "--linger",
            "20s",
            "--listen",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .arg(common::pcap("corpus/legacy/ndpi_telnet.pcap"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut body = String::new();
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            continue;
        };
        s.write_all(b"GET /api/alerts HTTP/1.0\r\nHost: x\r\n\r\n")
            .unwrap();
        body.clear();
        s.read_to_string(&mut body).unwrap();
        if body.contains("6001001") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let json = body.split("\r\n\r\n").nth(1).unwrap_or("");
    let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {body}"));
    let a = &v["alerts"][0];
    assert_eq!(a["event_type"], "alert");
    assert_eq!(a["alert"]["signature_id"], 6001001);
    assert_eq!(a["dest_port"], 23);
}

/// DICOM and HL7 abuse detectors on real captures, with thresholds lowered by an operator
/// file (the shipped ones need a real burst): C-FIND/C-MOVE/C-GET requests from one source
/// (dcmtk findscu/movescu), negative acknowledgements from one sender (python-hl7). The
/// shipped thresholds stay quiet on the same captures.
#[test]
fn dicom_query_and_hl7_nak_bursts_with_operator_thresholds() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/low.toml"),
        "[[anomaly]]\nid = 6009007\nname = \"query burst\"\nkind = \"dicom_query_burst\"\nseverity = 2\nwindow = \"1h\"\nthreshold = 2\n\n[[anomaly]]\nid = 6009010\nname = \"nak burst\"\nkind = \"hl7_nak_burst\"\nseverity = 2\nwindow = \"1h\"\nthreshold = 1\n",
    )
    .unwrap();
    let sig = dir.path().to_str().unwrap();
    for (rel, kind) in [
        ("dicom/find.pcap", "dicom_query_burst"),
        ("hl7/nak.pcap", "hl7_nak_burst"),
    ] {
        let (events, _) = common::replay(
            &[&common::pcap(rel)],
            &["--workers", "1", "--signatures", sig],
        );
        let got = anomalies(&events);
        assert!(got.iter().any(|a| a.0 == kind), "{rel}: {got:?}");
        assert!(
            !anomalies(&run(rel)).iter().any(|a| a.0 == kind),
            "{rel} with the shipped thresholds"
        );
    }
}
