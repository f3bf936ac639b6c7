//! The device inventory end to end: the lab captures of pcaps/gen/inventory.sh against the
//! committed expectation, a restart with the same --state-dir, worker-count independence, the
//! `medtap inventory` command, and one check per evidence source on real corpus captures.

mod common;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// Replay `inputs` with `args`, returning the `--inventory` JSON.
fn inventory(inputs: &[&Path], args: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("inventory.json");
    let mut cmd = common::medtap();
    cmd.args(["replay", "--no-progress", "--inventory"])
        .arg(&file)
        .args(args);
    for i in inputs {
        cmd.arg(i);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap()
}

/// Devices in the lab captures (pcaps/gen/inventory.sh: ten hosts).
const LAB_DEVICES: usize = 10;

fn lab(part: &str) -> PathBuf {
    common::pcap(&format!("inventory/inventory_{part}.pcap"))
}

/// What the lab's expectation pins per device: identity and which kinds of evidence decided it
/// (not times or counts).
fn projection(inv: &Value) -> Value {
    let devices: Vec<Value> = inv["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            json!({
                "key": d["key"],
                "ips": d["ips"],
                "hostnames": d["hostnames"],
                "vendor": d["vendor"],
                "model": d["model"],
                "os": d["os"]["name"],
                "software": d["software"],
                "category": d["category"],
                "is_medical": d["is_medical"],
                "evidence_kinds": d["evidence_kinds"],
                "protocols": d["protocols"].as_object().unwrap().keys().collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "devices": devices })
}

#[test]
fn lab_inventory_matches_the_expected_one() {
    let got = projection(&inventory(&[&lab("a"), &lab("b")], &[]));
    let path = common::root().join("tests/expected/inventory/inventory.json");
    if std::env::var_os("MEDTAP_BLESS").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
    }
    let want: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        got,
        want,
        "inventory differs from {}:\n{}",
        path.display(),
        serde_json::to_string_pretty(&got).unwrap()
    );
    // The lab's design, independently of the file: every host, with its vendor's category.
    let by_key = |k: &str| {
        got["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["key"] == k)
            .cloned()
            .unwrap_or_else(|| panic!("no device {k}"))
    };
    assert_eq!(got["devices"].as_array().unwrap().len(), LAB_DEVICES);
    let ct = by_key("mac:44:4b:5d:74:00:21");
    assert_eq!(
        (ct["vendor"].as_str(), ct["category"].as_str()),
        (Some("GE Healthcare"), Some("ct"))
    );
    assert_eq!(by_key("mac:00:09:5c:74:00:10")["category"], "pacs");
    assert_eq!(by_key("mac:00:18:65:74:00:30")["software"], "Mirth Connect");
    assert_eq!(
        by_key("mac:00:a0:37:74:00:41")["category"],
        "patient_monitor"
    );
    let pump = by_key("mac:58:42:e4:74:00:60");
    assert_eq!(pump["vendor"], "Baxter");
    assert_eq!(pump["hostnames"], json!(["PUMP-ICU-07"]));
    let ws = by_key("mac:00:06:5b:74:00:50");
    for k in ["tls_ja3", "tls_ja4", "http_user_agent"] {
        assert!(
            ws["evidence_kinds"].as_array().unwrap().contains(&json!(k)),
            "{ws}"
        );
    }
    // The switch (lldpd), the NAS (smbd) and the Draeger monitor (dhclient -6, smbclient): their
    // evidence values as tshark reads them from inventory_a.pcap (lldp.tlv.system.name,
    // lldp.tlv.system.desc, cdp.deviceid, cdp.platform, cdp.software_version; smb.native_os,
    // smb.native_lanman; dhcpv6.duid.bytes, dhcpv6.vendorclass.enterprise/.data,
    // dhcpv6.client_domain, dhcpv6.requested_option_code of the Solicit).
    let full = inventory(&[&lab("a"), &lab("b")], &[]);
    let ev = |key: &str| {
        let d = full["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["key"] == key)
            .unwrap_or_else(|| panic!("no device {key}"));
        evidence(d)
    };
    let sw = ev("mac:00:80:63:74:00:03");
    for (k, v) in [
        ("lldp_system_name", "ICU-SW-01"),
        (
            "lldp_system_description",
            "Hirschmann RSP35 HiOS-3S 08.7.03",
        ),
        ("lldp_capabilities", "bridge"),
        ("cdp_device_id", "ICU-SW-01"),
        ("cdp_platform", "RSP35"),
        ("cdp_software_version", "Hirschmann RSP35 HiOS-3S 08.7.03"),
    ] {
        assert!(has(&sw, k, v), "{k} {v}: {sw:?}");
    }
    assert_eq!(by_key("mac:00:80:63:74:00:03")["category"], "network_gear");
    // The switch also served DHCPv6: its Advertise and Reply echo the client's DUID and FQDN,
    // which are the client's, not the server's.
    assert!(!sw.iter().any(|(k, _)| k.starts_with("dhcp")), "{sw:?}");
    let mon2 = ev("mac:00:30:e6:74:00:42");
    for (k, v) in [
        ("dhcpv6_duid", "00010001329ddf1a0030e6740042"),
        ("dhcpv6_vendor_class", "3164:Infinity M540"),
        ("dhcpv6_oro", "23,24"),
        ("dhcp_fqdn", "icu-mon-42.hospital.test"),
        ("smb_native_os", "Unix"),
        ("smb_native_lanman", "Samba"),
    ] {
        assert!(has(&mon2, k, v), "{k} {v}: {mon2:?}");
    }
    let nas = ev("mac:00:11:32:74:00:70");
    assert!(has(&nas, "smb_native_os", "Windows 6.1"), "{nas:?}");
    assert!(
        has(&nas, "smb_native_lanman", "Samba 4.17.12-Debian"),
        "{nas:?}"
    );
    // Samba's server names itself "Windows 6.1": its NativeLanMan says what it is.
    let nas = by_key("mac:00:11:32:74:00:70");
    assert_eq!(nas["os"], "Linux", "{nas}");
    assert_eq!(nas["software"], "Samba 4.17.12", "{nas}");
}

#[test]
fn a_restart_with_the_same_state_dir_keeps_the_inventory() {
    let state = tempfile::tempdir().unwrap();
    let sd = state.path().to_str().unwrap();
    let once = inventory(&[&lab("a"), &lab("b")], &[]);
    let first = inventory(&[&lab("a")], &["--state-dir", sd]);
    assert!(first["devices"].as_array().unwrap().len() < once["devices"].as_array().unwrap().len());
    let resumed = inventory(&[&lab("b")], &["--state-dir", sd]);
    assert_eq!(
        resumed, once,
        "replay a then b with one --state-dir differs from a+b"
    );

    // `medtap inventory` prints the same devices from the state directory.
    let out = common::medtap()
        .args(["inventory", "--format", "json", "--state-dir", sd])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, once);
    for (fmt, needle) in [
        ("table", "GE Healthcare"),
        ("csv", "mac:44:4b:5d:74:00:21,10.74.0.21,"),
    ] {
        let out = common::medtap()
            .args(["inventory", "--format", fmt, "--state-dir", sd])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains(needle),
            "{fmt}: {text}"
        );
        assert_eq!(
            text.lines().filter(|l| l.contains("mac:")).count(),
            LAB_DEVICES,
            "{text}"
        );
    }
    // No state there: a usage error naming the directory.
    let empty = tempfile::tempdir().unwrap();
    let out = common::medtap()
        .args(["inventory", "--state-dir"])
        .arg(empty.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_inventory_does_not_depend_on_the_number_of_workers() {
    let inputs = [common::pcap("")];
    let inputs: Vec<&Path> = inputs.iter().map(|p| p.as_path()).collect();
    // pcaps/ holds more devices than the default max_devices (floods of generated sources):
    // which ones a full table keeps depends on arrival order, so the cap is raised here.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("medtap.toml");
    std::fs::write(&config, "[limits]\nmax_devices = 65536\n").unwrap();
    let config = config.to_str().unwrap();
    let one = inventory(&inputs, &["--workers", "1", "--config", config]);
    let four = inventory(&inputs, &["--workers", "4", "--config", config]);
    assert!(one["devices"].as_array().unwrap().len() > 20);
    assert_eq!(one, four);
}

#[test]
fn device_events_and_gauges() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("metrics.txt");
    let (events, _) = common::replay(
        &[&lab("a"), &lab("b")],
        &["--metrics-out", metrics.to_str().unwrap()],
    );
    let devices = common::of_type(&events, "device");
    let new: Vec<&&Value> = devices
        .iter()
        .filter(|e| e["device"]["change"] == "new")
        .collect();
    assert_eq!(new.len(), LAB_DEVICES, "one `new` event per device");
    for e in &devices {
        let d = &e["device"];
        assert!(d["key"].is_string() && d["category"].is_string(), "{e}");
        assert!(e["timestamp"].as_str().unwrap().starts_with("20"), "{e}");
    }
    let text = std::fs::read_to_string(&metrics).unwrap();
    for line in [
        "medtap_devices{category=\"ct\"} 1",
        "medtap_devices{category=\"patient_monitor\"} 2",
        "medtap_devices{category=\"infusion_pump\"} 1",
        "medtap_devices{category=\"mr\"} 0",
        "medtap_devices_eol_os 0",
    ] {
        assert!(text.contains(line), "missing {line}");
    }
    let stats = common::of_type(&events, "stats");
    assert_eq!(
        stats[0]["stats"]["events"]["produced"],
        stats[0]["stats"]["events"]["written"]
    );
}

/// The evidence of device `key` in one corpus capture, as (kind, value) pairs.
fn evidence_of(rel: &str, key: &str) -> Vec<(String, String)> {
    evidence(&device_of(rel, key))
}

/// The evidence of a device of the inventory, as (kind, value) pairs.
fn evidence(d: &Value) -> Vec<(String, String)> {
    d["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn has(ev: &[(String, String)], kind: &str, value: &str) -> bool {
    ev.iter().any(|(k, v)| k == kind && v == value)
}

// Expected values read with tshark 4.0 from the same captures (field names in each comment).

#[test]
fn dhcp_evidence() {
    // dhcp.option.hostname of the client 90:b1:1c:99:49:29 (its requests, dhcp.type 1). The
    // server 00:0c:29:40:0e:ef (VMware OUI) sends dhcp.option.vendor_class_id "ArubaAP" in its
    // OFFER and ACK (frames 2 and 6, dhcp.type 2: BOOTREPLY; the client sends no option 60):
    // option 60 describes a client, so the server gets no DHCP evidence at all and is not
    // identified as an Aruba access point (it was: HPE Aruba, network_gear, by dhcp60-aruba-ap).
    let ev = evidence_of("corpus/generic/zeek_dhcp.pcap", "mac:90:b1:1c:99:49:29");
    assert!(has(&ev, "dhcp_hostname", "btest.is.cool"), "{ev:?}");
    assert!(!ev.iter().any(|(k, _)| k == "dhcp_vendor_class"), "{ev:?}");
    let srv = evidence_of("corpus/generic/zeek_dhcp.pcap", "mac:00:0c:29:40:0e:ef");
    assert!(!srv.iter().any(|(k, _)| k.starts_with("dhcp")), "{srv:?}");
    let d = device_of("corpus/generic/zeek_dhcp.pcap", "mac:00:0c:29:40:0e:ef");
    assert_ne!(d["vendor"], "HPE Aruba", "{d}");
    assert_ne!(d["category"], "network_gear", "{d}");
    // The ACK's binding still gives the client its address (dhcp.ip.your).
    let c = device_of("corpus/generic/zeek_dhcp.pcap", "mac:90:b1:1c:99:49:29");
    assert!(c["ips"].to_string().contains("128.2.6.189"), "{c}");
    // dhcp.option.request_list_item 1,3,6,42; dhcp.option.client_id 01:00:0b:82:01:fc:42
    let ev = evidence_of(
        "corpus/generic/zeek_dhcp_discover_param_req_and_client_id.pcap",
        "mac:00:0b:82:01:fc:42",
    );
    assert!(has(&ev, "dhcp_parameter_list", "1,3,6,42"), "{ev:?}");
    assert!(has(&ev, "dhcp_client_id", "01000b8201fc42"), "{ev:?}");
}

#[test]
fn lldp_and_cdp_evidence() {
    // lldp.tlv.system.name SMCGS8P-Smart
    let ev = evidence_of("corpus/generic/zeek_lldp.pcap", "mac:00:22:2d:81:db:10");
    assert!(has(&ev, "lldp_system_name", "SMCGS8P-Smart"), "{ev:?}");
    assert!(has(&ev, "lldp_capabilities", "bridge"), "{ev:?}");
    // cdp.deviceid R1, cdp.platform "cisco 1601"
    let ev = evidence_of("corpus/generic/zeek_cdp-v1.pcap", "mac:00:e0:1e:d5:d5:15");
    assert!(has(&ev, "cdp_device_id", "R1"), "{ev:?}");
    assert!(has(&ev, "cdp_platform", "cisco 1601"), "{ev:?}");
    // cdp.software_version: four lines ("Cisco Internetwork Operating System Software ",
    // "IOS (tm) 1600 Software (C1600-NY-L), Version 11.2(12)P, RELEASE SOFTWARE (fc1)",
    // "Copyright (c) 1986-1998 by cisco Systems, Inc.", "Compiled Tue 03-Mar-98 06:33 by
    // dschwart"): one line, the lines apart by one space (they ran together before).
    assert!(
        has(
            &ev,
            "cdp_software_version",
            "Cisco Internetwork Operating System Software IOS (tm) 1600 Software (C1600-NY-L), \
             Version 11.2(12)P, RELEASE SOFTWARE (fc1) Copyright (c) 1986-1998 by cisco \
             Systems, Inc. Compiled Tue 03-Mar-98 06:33 by dschwart"
        ),
        "{ev:?}"
    );
    let d = device_of("corpus/generic/zeek_cdp-v1.pcap", "mac:00:e0:1e:d5:d5:15");
    assert_eq!(d["os"]["name"], "Cisco IOS", "{d}");
    assert_eq!(d["os"]["version"], "11.2(12)P", "{d}");
}

#[test]
fn nbns_node_status_wildcard_is_no_host_name() {
    // tshark: 10.0.4.24 (00:1c:c4:10:79:0f) answers 4 node status requests whose name is the
    // wildcard '*<00><00>...' (nbns.name), and registers GUNNAR<00> (Workstation/Redirector).
    let d = device_of("corpus/legacy/ndpi_netbios.pcap", "mac:00:1c:c4:10:79:0f");
    assert_eq!(d["hostnames"], serde_json::json!(["GUNNAR<00>"]), "{d}");
}

#[test]
fn lldp_and_cdp_addresses_are_the_senders_ips() {
    // tshark -V: LLDP "Management Address: 192.168.2.10" (Address Subtype IPv4), CDP Addresses
    // "IP address: 192.168.10.1"; neither sender sends any IP packet in its capture.
    for (rel, key, ip) in [
        (
            "corpus/generic/zeek_lldp.pcap",
            "mac:00:22:2d:81:db:10",
            "192.168.2.10",
        ),
        (
            "corpus/generic/zeek_cdp-v1.pcap",
            "mac:00:e0:1e:d5:d5:15",
            "192.168.10.1",
        ),
    ] {
        let d = device_of(rel, key);
        assert_eq!(d["ips"], serde_json::json!([ip]), "{rel}: {d}");
    }
}

/// The device `key` of one corpus capture's inventory.
fn device_of(rel: &str, key: &str) -> Value {
    let inv = inventory(&[&common::pcap(rel)], &[]);
    inv["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["key"] == key)
        .cloned()
        .unwrap_or_else(|| panic!("{rel}: no device {key} in {inv}"))
}

#[test]
fn smb_native_os_evidence_identifies_end_of_life_windows() {
    // smb.native_os / smb.native_lanman of the SMB1 session setup request (client) and response
    // (server), by eth.src. ASCII strings with extended security (WordCount 12 and 4):
    let rel = "corpus/legacy/arkime_smb-smb1-ascii.pcap";
    let client = device_of(rel, "mac:00:50:56:a8:1f:7c");
    let server = device_of(rel, "mac:00:50:56:a8:45:c0");
    let c = evidence(&client);
    assert!(has(&c, "smb_native_os", "Windows 2000 2195"), "{c:?}");
    assert!(has(&c, "smb_native_lanman", "Windows 2000 5.0"), "{c:?}");
    assert_eq!(client["os"]["name"], "Windows", "{client}");
    assert_eq!(client["os"]["version"], "2000", "{client}");
    assert_eq!(client["os"]["eol"], true, "{client}");
    let s = evidence(&server);
    assert!(
        has(
            &s,
            "smb_native_os",
            "Windows Server 2008 R2 Standard 7601 Service Pack 1"
        ),
        "{s:?}"
    );
    assert!(
        has(
            &s,
            "smb_native_lanman",
            "Windows Server 2008 R2 Standard 6.1"
        ),
        "{s:?}"
    );
    assert_eq!(server["os"]["version"], "Server 2008 R2", "{server}");
    assert_eq!(server["os"]["eol"], true, "{server}");
    assert_eq!(server["category"], "it_server", "{server}");
    // Unicode strings without extended security (WordCount 13 and 3, pad bytes):
    let rel = "corpus/legacy/ndpi_smbv1.pcap";
    let client = device_of(rel, "mac:00:0c:29:02:ef:6a");
    let c = evidence(&client);
    assert!(has(&c, "smb_native_os", "Windows 2000 2195"), "{c:?}");
    assert!(has(&c, "smb_native_lanman", "Windows 2000 5.0"), "{c:?}");
    let server = device_of(rel, "mac:00:50:56:e8:0a:b1");
    let s = evidence(&server);
    assert!(
        has(
            &s,
            "smb_native_os",
            "Windows 7 Ultimate 7601 Service Pack 1"
        ),
        "{s:?}"
    );
    assert!(
        has(&s, "smb_native_lanman", "Windows 7 Ultimate 6.1"),
        "{s:?}"
    );
    assert_eq!(server["os"]["version"], "7", "{server}");
    assert_eq!(server["os"]["eol"], true, "{server}");
    // The primary domain the server's answer carries (WORKGROUP) is not evidence, nor is any
    // account name.
    assert!(!s.iter().chain(&c).any(|(_, v)| v.contains("WORKGROUP")));
}

#[test]
fn mdns_and_ssdp_evidence() {
    // dns.resp.name of the responses from 8a:3c:d6:e1:4d:c4 (a locally administered MAC)
    let ev = evidence_of("corpus/generic/zeek_mdns.pcap", "mac:8a:3c:d6:e1:4d:c4");
    assert!(
        has(&ev, "mdns_hostname", "johanna-QEMU-Virtual-Machine.local"),
        "{ev:?}"
    );
    assert!(has(&ev, "mac_randomized", "randomized"), "{ev:?}");
    // http.user_agent of the M-SEARCH
    let ev = evidence_of(
        "corpus/generic/ndpi_ssdp-m-search-ua.pcap",
        "mac:f0:2f:4b:09:93:bc",
    );
    assert!(
        has(
            &ev,
            "ssdp_user_agent",
            "Google Chrome/99.0.4844.74 Mac OS X"
        ),
        "{ev:?}"
    );
}

#[test]
fn tls_client_hello_evidence_of_curl_and_firefox() {
    // The JA3/JA4 of these ClientHellos are checked against their strings in
    // src/protocols/tls.rs (curl_event, firefox_ssl3_tls1_events).
    let ev = evidence_of("corpus/generic/ndpi_443-curl.pcap", "mac:28:37:37:00:6d:c8");
    assert!(
        has(&ev, "tls_ja3", "2a26b1a62e40d25d4de3babc9d532f30"),
        "{ev:?}"
    );
    assert!(
        has(&ev, "tls_ja4", "t12d6707h2_2955a3196ffa_c83f907a73d3"),
        "{ev:?}"
    );
    let ev = evidence_of(
        "corpus/generic/ndpi_443-firefox.pcap",
        "mac:28:37:37:00:6d:c8",
    );
    assert!(
        has(&ev, "tls_ja3", "b20b44b18b853ef29ab773e921b03422"),
        "{ev:?}"
    );
    assert!(
        has(&ev, "tls_ja4", "t13d1814h2_29a2cd9e9f10_d267a5f792d4"),
        "{ev:?}"
    );
}

#[test]
fn syn_signatures_with_a_p0f_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("p0f.fp");
    std::fs::write(
        &db,
        "[tcp:request]\nlabel = g:unix:Linux:2.2.x-3.x\nsig = *:64:0:*:*,*:mss,sok,ts,nop,ws:df,id+:0\n",
    )
    .unwrap();
    let inv = inventory(&[&lab("a")], &["--p0f-db", db.to_str().unwrap()]);
    let ct = inv["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["key"] == "mac:44:4b:5d:74:00:21")
        .unwrap();
    let kinds: Vec<&str> = ct["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"tcp_syn") && kinds.contains(&"tcp_p0f"),
        "{kinds:?}"
    );
    // A broken database is a usage error naming file and line.
    std::fs::write(&db, "[tcp:request]\nlabel = nonsense\n").unwrap();
    let out = common::medtap()
        .args(["replay", "--no-progress", "--p0f-db", db.to_str().unwrap()])
        .arg(lab("a"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("p0f.fp:2"));
}

/// GET `path` from `addr` (HTTP/1.0, no keep-alive): (status, body).
fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

#[test]
fn devices_api_lists_filters_pages_and_shows_evidence() {
    let addr = "127.0.0.1:29874";
    let mut child = common::medtap()
        .args([
            "replay",
            "--no-progress",
            "--listen",
            addr,
            "--linger",
            "30s",
        ])
        .arg(lab("a"))
        .arg(lab("b"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The snapshot is published at the end of the replay; wait for it (bounded).
    let mut list = None;
    for _ in 0..100 {
        if let Some((200, body)) = http_get(addr, "/api/devices") {
            let v: Value = serde_json::from_str(&body).unwrap();
            if v["total"] == LAB_DEVICES {
                list = Some(v);
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let result = std::panic::catch_unwind(|| {
        let list = list.expect("/api/devices never listed the lab devices");
        assert_eq!(list["devices"].as_array().unwrap().len(), LAB_DEVICES);
        assert!(
            list["devices"][0].get("evidence").is_none(),
            "listing carries no evidence"
        );

        let (st, body) = http_get(addr, "/api/devices?category=ct").unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!((st, v["total"].as_u64()), (200, Some(1)));
        assert_eq!(v["devices"][0]["key"], "mac:44:4b:5d:74:00:21");

        let (_, body) = http_get(addr, "/api/devices?vendor=mindray").unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["devices"][0]["category"], "patient_monitor");

        let (_, body) = http_get(addr, "/api/devices?limit=2&offset=9").unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (v["total"].as_u64(), v["devices"].as_array().unwrap().len()),
            (Some(LAB_DEVICES as u64), 1)
        );

        let (st, body) = http_get(addr, "/api/devices/44-4B-5D-74-00-21").unwrap();
        assert_eq!(st, 200, "{body}");
        let d: Value = serde_json::from_str(&body).unwrap();
        let ev = d["evidence"].as_array().unwrap();
        assert!(
            ev.iter()
                .any(|e| e["kind"] == "dicom_modality" && e["value"] == "CT"),
            "{d}"
        );

        assert_eq!(
            http_get(addr, "/api/devices/00:00:5e:00:53:01").unwrap().0,
            404
        );
        assert_eq!(http_get(addr, "/api/devices/not-a-mac").unwrap().0, 400);
        assert_eq!(
            http_get(addr, "/api/devices?category=toaster").unwrap().0,
            400
        );
        assert_eq!(http_get(addr, "/api/devices?limit=x").unwrap().0, 400);
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn no_patient_value_reaches_the_inventory_events_or_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inv.json");
    let metrics = dir.path().join("metrics.txt");
    let state = dir.path().join("state");
    let (events, _) = common::replay(
        &[&lab("a"), &lab("b")],
        &[
            "--inventory",
            inv.to_str().unwrap(),
            "--metrics-out",
            metrics.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ],
    );
    let mut all = serde_json::to_string(&events).unwrap();
    all.push_str(&std::fs::read_to_string(&inv).unwrap());
    all.push_str(&std::fs::read_to_string(&metrics).unwrap());
    let out = common::medtap()
        .args([
            "inventory",
            "--format",
            "csv",
            "--state-dir",
            state.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    all.push_str(&String::from_utf8_lossy(&out.stdout));
    let phi = std::fs::read_to_string(common::pcap("inventory/PHI_VALUES.txt")).unwrap();
    for v in phi.lines().map(str::trim).filter(|l| !l.is_empty()) {
        assert!(!all.contains(v), "PHI value {v} in the output");
    }
}

/// One MAC carrying 30 addresses (pcaps/gen/multi_ip.sh: curl from each address of one veth):
/// the same inventory with 1 and 4 workers, several times (the order in which the workers'
/// observations reach the central thread varies). The MAC is taken for a router, each address
/// is its own device with its own peers, and the server sees all 30.
#[test]
fn one_mac_with_many_addresses_does_not_depend_on_the_number_of_workers() {
    let p = common::pcap("inventory/multi_ip.pcap");
    let one = inventory(&[&p], &["--workers", "1"]);
    for _ in 0..3 {
        assert_eq!(one, inventory(&[&p], &["--workers", "4"]));
    }
    let devices = one["devices"].as_array().unwrap();
    let by_key = |k: &str| devices.iter().find(|d| d["key"] == k).unwrap();
    assert_eq!(by_key("mac:02:79:00:00:00:01")["router"], true);
    assert_eq!(by_key("mac:02:79:00:00:00:02")["peers"]["count"], 30);
    let per_ip: Vec<_> = devices
        .iter()
        .filter(|d| d["key"].as_str().unwrap().starts_with("ip:10.79.0."))
        .collect();
    assert_eq!(per_ip.len(), 30);
    let two_peers = per_ip.iter().filter(|d| d["peers"]["count"] == 2).count();
    assert_eq!(
        two_peers, 10,
        "every third address also talked to 10.79.0.3"
    );
}

/// `max_devices` holds: 40 generated devices (pcaps/gen/many_devices.py: the lab's pump, monitor
/// and workstation repeated under 40 MACs, all talking to the lab server, so 41 devices in
/// all) through a table of 16: 16 are kept, the other 25 are counted once each in
/// `medtap_devices_dropped_total`, however often they are seen.
#[test]
fn devices_beyond_max_devices_are_counted_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("devices.pcap");
    let st = std::process::Command::new("python3")
        .arg(common::root().join("pcaps/gen/many_devices.py"))
        .arg(&pcap)
        .arg("40")
        .status()
        .expect("python3");
    assert!(st.success());
    let config = dir.path().join("medtap.toml");
    std::fs::write(&config, "[limits]\nmax_devices = 16\n").unwrap();
    let metrics = dir.path().join("metrics.txt");
    let all = inventory(&[&pcap], &["--workers", "1"]);
    assert_eq!(all["devices"].as_array().unwrap().len(), 41);
    let capped = inventory(
        &[&pcap],
        &[
            "--workers",
            "1",
            "--config",
            config.to_str().unwrap(),
            "--metrics-out",
            metrics.to_str().unwrap(),
        ],
    );
    assert_eq!(capped["devices"].as_array().unwrap().len(), 16);
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        text.lines().any(|l| l == "medtap_devices_dropped_total 25"),
        "{}",
        text.lines()
            .filter(|l| l.contains("devices"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
