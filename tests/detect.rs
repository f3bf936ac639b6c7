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
    // Behaviour-anomaly scenarios (pcaps/gen/anomaly_lab.sh), with the shipped thresholds and
    // learning period: what fires there fires in a real deployment from the first day.
    "detect/host_sweep.pcap",
    "detect/host_sweep_quiet.pcap",
    "detect/promiscuous_scp.pcap",
    "detect/strict_scp.pcap",
    "detect/ae_guessing.pcap",
    "detect/internet.pcap",
    "detect/hl7_no_end_block.pcap",
    "detect/store_new_dest.pcap",
    "detect/hl7_new_sender.pcap",
    "detect/volume.pcap",
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

/// The events of `rel` replayed with `args` (`medtap replay` exiting 0).
fn replay_with(rel: &str, args: &[&str]) -> Vec<Value> {
    common::replay(&[&common::pcap(rel)], args).0
}

/// The events of `rel` replayed with one worker and the shipped rules, thresholds and learning
/// period.
fn run(rel: &str) -> Vec<Value> {
    replay_with(rel, &["--workers", "1"])
}

/// The events of `rel` replayed with one worker after a 20 s learning period (the scenarios
/// learn for 20 to 40 s, then do something new).
fn run_learnt(rel: &str) -> Vec<Value> {
    replay_with(rel, &["--workers", "1", "--learning-period", "20s"])
}

/// A `--signatures` folder holding one operator rule file, `rules/<name>`.
fn operator_rules(name: &str, toml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules").join(name), toml).unwrap();
    dir
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
    assert!(err.contains("2 alerts"), "{err}"); // 6001010, 6001013 (supersedes 6001012)
}

/// A bad rule file is a usage error naming the file and line.
#[test]
fn bad_rule_file_exits_2_with_file_and_line() {
    let dir = operator_rules(
        "site.toml",
        "[[rule]]\nid = 7000001\nname = \"x\"\ncategory = \"legacy-protocol\"\nseverity = 2\nprotocol = \"snmp\"\nwhen = [\n  { field = \"comunity\", equals = \"public\" },\n]\n",
    );
    let f = dir.path().join("rules/site.toml");
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
    let events = replay_with(
        "corpus/legacy/zeek_snmpv2_get.pcap",
        &[
            "--workers",
            "1",
            "--signatures",
            dir.path().to_str().unwrap(),
        ],
    );
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
    assert_eq!(
        anomalies(&run_learnt("detect/new_peer.pcap")),
        vec![(
            "new_peer".to_string(),
            "10.75.0.1".to_string(),
            "10.75.0.3".to_string()
        )]
    );
    no_anomaly("detect/new_peer.pcap");
}

/// `GET /api/alerts` serves the recent alerts while a replay lingers.
#[test]
fn api_alerts_serves_recent_alerts() {
    use std::io::{Read, Write};
    let port = common::free_port();
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
    let dir = operator_rules(
        "low.toml",
        "[[anomaly]]\nid = 6009007\nname = \"query burst\"\nkind = \"dicom_query_burst\"\nseverity = 2\nwindow = \"1h\"\nthreshold = 2\n\n[[anomaly]]\nid = 6009010\nname = \"nak burst\"\nkind = \"hl7_nak_burst\"\nseverity = 2\nwindow = \"1h\"\nthreshold = 1\n",
    );
    let sig = dir.path().to_str().unwrap();
    for (rel, kind) in [
        ("dicom/find.pcap", "dicom_query_burst"),
        ("hl7/nak.pcap", "hl7_nak_burst"),
    ] {
        let got = anomalies(&replay_with(rel, &["--workers", "1", "--signatures", sig]));
        assert!(got.iter().any(|a| a.0 == kind), "{rel}: {got:?}");
        assert!(
            !anomalies(&run(rel)).iter().any(|a| a.0 == kind),
            "{rel} with the shipped thresholds"
        );
    }
}

/// (kind, device, peer, severity) of the anomaly alerts, sorted and deduplicated.
fn anomalies_sev(events: &[Value]) -> Vec<(String, String, String, u64)> {
    let set: BTreeSet<_> = alerts(events)
        .iter()
        .filter(|a| a["category"] == "anomaly")
        .map(|a| {
            (
                a["anomaly"].as_str().unwrap_or("?").to_string(),
                a["device"]["ip"].as_str().unwrap_or("?").to_string(),
                a["peer"].as_str().unwrap_or("?").to_string(),
                a["severity"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    set.into_iter().collect()
}

fn t(kind: &str, dev: &str, peer: &str, sev: u64) -> (String, String, String, u64) {
    (kind.into(), dev.into(), peer.into(), sev)
}

/// `rel` raises no anomaly alert with the shipped thresholds and learning period.
fn no_anomaly(rel: &str) {
    let got = anomalies(&run(rel));
    assert!(got.is_empty(), "{rel}: {got:?}");
}

/// The events of `rel` replayed with 1 and with 2 workers (and `args`), after checking that
/// both give the anomaly alerts `want` (which must not depend on the worker count).
fn with_1_and_2_workers(
    rel: &str,
    args: &[&str],
    want: &[(String, String, String, u64)],
) -> Vec<Vec<Value>> {
    ["1", "2"]
        .iter()
        .map(|workers| {
            let mut a = vec!["--workers", workers];
            a.extend_from_slice(args);
            let events = replay_with(rel, &a);
            assert_eq!(anomalies_sev(&events), want, "{rel}: {workers} workers");
            events
        })
        .collect()
}

/// The alert whose `anomaly` is `kind` (the first).
fn alert_of<'a>(events: &'a [Value], kind: &str) -> &'a Value {
    alerts(events)
        .into_iter()
        .find(|a| a["anomaly"] == kind)
        .unwrap_or_else(|| panic!("no {kind} alert"))
}

/// nmap -sS -p 104 over 31 hosts (one PACS open, the CT and 29 others closed: half-open and
/// rejected attempts): one host-sweep alert for the workstation, about no particular host, at
/// the medical severity because the CT (known by its GE MAC and its C-STORE) was swept; the
/// same with 2 workers (before, the reported host and the severity depended on which flow
/// crossed the threshold first). The workstation's normal DICOM echoes and small nmap -sT checks
/// (12 hosts on 104, 11 ports on one host) stay below the thresholds.
#[test]
fn host_sweep_fires_and_a_small_check_does_not() {
    for workers in ["1", "2"] {
        let got = anomalies_sev(&replay_with(
            "detect/host_sweep.pcap",
            &["--workers", workers],
        ));
        let sweeps: Vec<_> = got.iter().filter(|a| a.0 == "scan_hosts").collect();
        assert!(
            !sweeps.is_empty()
                && sweeps
                    .iter()
                    .all(|a| a.1 == "10.76.0.31" && a.2 == "0.0.0.0"),
            "{workers} workers: {got:?}"
        );
        assert_eq!(
            sweeps.iter().map(|a| a.3).min(),
            Some(1),
            "{workers}: {got:?}"
        );
        assert!(
            got.iter().all(|a| a.0 == "scan_hosts"),
            "{workers}: {got:?}"
        );
    }
    let events = run("detect/host_sweep.pcap");
    let a = alert_of(&events, "scan_hosts");
    assert_eq!(a["matched"]["port"], 104);
    assert_eq!(a["matched"]["hosts"], 20);
    assert_eq!(a["device"]["mac"], "02:76:00:00:00:31");
    no_anomaly("detect/host_sweep_quiet.pcap");
}

/// dcmtk storescp answers to any called AE title: three associations with three called AE
/// titles are one promiscuous-SCP alert naming the titles it accepted. A pynetdicom SCP that
/// checks the called AE title (one typo rejected, the right title accepted twice) raises
/// neither that nor the rejected-association burst.
#[test]
fn promiscuous_scp_fires_and_a_strict_one_does_not() {
    // About the SCP, not whichever caller crossed the threshold: the same with 2 workers.
    let runs = with_1_and_2_workers(
        "detect/promiscuous_scp.pcap",
        &[],
        &[t("dicom_promiscuous_scp", "10.76.0.10", "0.0.0.0", 3)],
    );
    let a = alert_of(&runs[0], "dicom_promiscuous_scp");
    assert_eq!(a["device"]["side"], "server");
    assert_eq!(
        a["matched"]["called_aes_accepted"],
        serde_json::json!(["PACS_SCP", "ARCHIVE", "ANY_SCP"])
    );
    no_anomaly("detect/strict_scp.pcap");
}

/// Eight echoscu associations with guessed called AE titles, all rejected by a pynetdicom SCP
/// that checks them: one alert at the fifth (the shipped threshold), the rest folded into it.
#[test]
fn ae_title_guessing_fires_once() {
    let events = run("detect/ae_guessing.pcap");
    assert_eq!(
        anomalies_sev(&events),
        vec![t(
            "dicom_rejected_associations",
            "10.76.0.31",
            "10.76.0.10",
            2
        )]
    );
    let a = alert_of(&events, "dicom_rejected_associations");
    assert_eq!(a["matched"]["rejected_associations"], 5);
}

/// An MR stores to its PACS every 4 s, then once to an archive it never stored to: after a
/// 20 s learning period that store is an alert (with the new peer), the stores to the known
/// PACS are not; with the default learning period (7 days) nothing is.
#[test]
fn store_to_a_new_destination_after_learning() {
    let events = run_learnt("detect/store_new_dest.pcap");
    assert_eq!(
        anomalies_sev(&events),
        vec![
            t("dicom_store_new_destination", "10.76.0.22", "10.76.0.11", 2),
            t("new_peer", "10.76.0.22", "10.76.0.11", 2),
        ]
    );
    let a = alert_of(&events, "dicom_store_new_destination");
    assert_eq!(a["matched"]["destination"], "10.76.0.11");
    assert_eq!(a["device"]["mac"], "00:18:65:76:00:22");
    no_anomaly("detect/store_new_dest.pcap");
}

/// A CT (medical by its GE MAC) asking 8.8.8.8 and a modality with no vendor MAC storing a
/// CT image to a cloud PACS at 1.2.3.4 are alerts; the CT asking the site resolver and a
/// workstation asking 8.8.8.8 are not. The modality is known as one only from its C-STORE
/// (before, only the flow start was checked, when it was still unknown: no alert).
#[test]
fn medical_device_to_a_public_address() {
    let runs = with_1_and_2_workers(
        "detect/internet.pcap",
        &[],
        &[
            t("internet_address", "10.76.0.21", "8.8.8.8", 2),
            t("internet_address", "10.76.0.23", "1.2.3.4", 2),
        ],
    );
    let cats: BTreeSet<String> = alerts(&runs[0])
        .iter()
        .filter(|a| a["anomaly"] == "internet_address")
        .map(|a| {
            format!(
                "{} {}",
                a["matched"]["public_address"], a["matched"]["device_category"]
            )
        })
        .collect();
    assert_eq!(
        cats,
        BTreeSet::from([
            "\"1.2.3.4\" \"speaks DICOM or HL7\"".to_string(),
            "\"8.8.8.8\" \"medical_device\"".to_string()
        ])
    );
}

/// An interface engine gets ADT^A08 from TEST_EHR_ADT and TEST_LAB for 20 s; then a message
/// from UNKNOWN_APP and one from TEST_LAB at another facility (MSH-4) are alerts, a known
/// sender is not; nothing with the default learning period.
#[test]
fn hl7_unknown_sender_after_learning() {
    let events = run_learnt("detect/hl7_new_sender.pcap");
    assert_eq!(
        anomalies_sev(&events),
        vec![
            t("hl7_unknown_sender", "10.76.0.40", "10.76.0.41", 2),
            t("hl7_unknown_sender", "10.76.0.40", "10.76.0.42", 2),
        ]
    );
    let senders: BTreeSet<String> = alerts(&events)
        .iter()
        .filter(|a| a["anomaly"] == "hl7_unknown_sender")
        .map(|a| {
            format!(
                "{}^{}",
                a["matched"]["sending_application"].as_str().unwrap(),
                a["matched"]["sending_facility"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        senders,
        BTreeSet::from([
            "UNKNOWN_APP^TESTHOSP".to_string(),
            "TEST_LAB^OTHERHOSP".to_string()
        ])
    );
    no_anomaly("detect/hl7_new_sender.pcap");
}

/// A sender that never writes the MLLP end block: 12 messages are one framing-burst alert at
/// the tenth (shipped thresholds); one broken frame (hl7/missing_end_block.pcap) and clean
/// MLLP traffic are none.
#[test]
fn hl7_framing_burst_fires_and_one_broken_frame_does_not() {
    let events = run("detect/hl7_no_end_block.pcap");
    assert_eq!(
        anomalies_sev(&events),
        vec![t("hl7_framing_errors", "10.76.0.41", "10.76.0.40", 3)]
    );
    assert_eq!(
        alert_of(&events, "hl7_framing_errors")["matched"]["framing_errors"],
        10
    );
    for rel in ["hl7/missing_end_block.pcap", "hl7/adt_oru_orm.pcap"] {
        no_anomaly(rel);
    }
}

/// Two monitors GET 4 KB every 2 s for 60 s; then one GETs 2 MiB (an alert for it, and for
/// the server, far above their own baselines) and the other 512 KiB (over 10x its baseline
/// too, but under the 1 MiB floor: none). With 10 s intervals and 4 of history (an operator
/// file: the shipped 5 min x 12 need an hour of baseline) and the same with 2 workers; the
/// shipped thresholds raise nothing on this minute of traffic. The 2 MiB transfer is the
/// monitor's last flow but one: the interval is judged when it crosses the line.
#[test]
fn volume_far_above_own_baseline() {
    let dir = operator_rules(
        "volume.toml",
        "[[anomaly]]\nid = 6009004\nname = \"volume\"\nkind = \"volume\"\nseverity = 3\nseverity_medical = 2\nwindow = \"10s\"\nthreshold = 4\nfactor = 10.0\n",
    );
    let runs = with_1_and_2_workers(
        "detect/volume.pcap",
        &["--signatures", dir.path().to_str().unwrap()],
        &[
            t("volume", "10.76.0.51", "10.76.0.60", 2),
            t("volume", "10.76.0.60", "10.76.0.51", 3),
        ],
    );
    for events in &runs {
        let a = alert_of(events, "volume");
        assert!(
            a["matched"]["interval_bytes"].as_i64().unwrap() > 2 << 20,
            "{a}"
        );
        assert!(
            a["matched"]["baseline_bytes"].as_i64().unwrap() < 100_000,
            "{a}"
        );
    }
    no_anomaly("detect/volume.pcap");
}

/// The anomaly alerts of the DICOM and HL7 scenarios carry no patient data (the captures carry
/// the fake patients of pcaps/dicom/PHI_VALUES.txt and pcaps/hl7/PHI_VALUES.txt).
#[test]
fn anomaly_alerts_hold_no_phi() {
    let mut phi = Vec::new();
    for f in ["pcaps/dicom/PHI_VALUES.txt", "pcaps/hl7/PHI_VALUES.txt"] {
        let text = std::fs::read_to_string(common::root().join(f)).unwrap();
        phi.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_string));
    }
    for (rel, learnt) in [
        ("detect/internet.pcap", false),
        ("detect/store_new_dest.pcap", true),
        ("detect/hl7_new_sender.pcap", true),
        ("detect/hl7_no_end_block.pcap", false),
    ] {
        let events = if learnt { run_learnt(rel) } else { run(rel) };
        let text: String = alerts(&events).iter().map(|a| a.to_string()).collect();
        assert!(!text.is_empty(), "{rel}");
        for p in &phi {
            assert!(!text.contains(p.as_str()), "{rel}: {p} in an alert");
        }
    }
}
