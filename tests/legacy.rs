//! Legacy-protocol rules (signatures/rules/legacy.toml) on captures made with real servers and
//! clients in network namespaces (pcaps/gen/legacy.sh, listed in pcaps/SOURCES.tsv): each rule
//! fires on a capture that has what it looks for and stays quiet on its pair, the encrypted or
//! otherwise acceptable way of doing the same thing (HTTPS, FTPS, ssh, SNMPv3 authPriv, ...).
//!
//! The alerts of every capture are compared with `tests/expected/alerts/<capture path with / as
//! _>.txt`: one line per distinct (signature id, device, peer) with the severity, category,
//! the device's side and the de-duplicated count, sorted. `MEDTAP_BLESS=1 cargo test --test
//! legacy` rewrites those files (review the diff). No password or community of these captures
//! leaves medtap: `tests/expected/privacy/secrets.tsv` lists them for tests/privacy.rs.

mod common;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// A capture, the rules it must fire and the rules that must stay quiet on it.
struct Case {
    capture: &'static str,
    fires: &'static [u64],
    quiet: &'static [u64],
}

const TELNET: u64 = 6001001;
const FTP_CLEAR: u64 = 6001002;
const FTP_CREDS: u64 = 6001003;
const TFTP: u64 = 6001004;
const RLOGIN: u64 = 6001005;
const RSH: u64 = 6001006;
const REXEC: u64 = 6001007;
const SNMP_OTHER: u64 = 6001030;
const SNMP_DEFAULT: u64 = 6001031;
const HTTP_BASIC: u64 = 6001040;
const HTTP_DIGEST: u64 = 6001041;
const VNC_CLEAR: u64 = 6001050;
const VNC_NO_AUTH: u64 = 6001051;
const VNC_PASSWORD: u64 = 6001052;
const RDP_STANDARD: u64 = 6001060;
const TLS10: u64 = 6002003;
const WEAK_CIPHER: u64 = 6002010;
const SMB1: u64 = 6001010;
const SMB1_OFFERED: u64 = 6001011;
const LANMAN_OFFERED: u64 = 6001012;
const LANMAN: u64 = 6001013;
const NETBIOS: u64 = 6001020;

const RCMD: &[u64] = &[RLOGIN, RSH, REXEC];

const CASES: &[Case] = &[
    // HTTP Basic / Digest in clear vs both over HTTPS.
    Case {
        capture: "legacy/http_basic.pcap",
        fires: &[HTTP_BASIC],
        quiet: &[HTTP_DIGEST],
    },
    Case {
        capture: "legacy/http_digest.pcap",
        fires: &[HTTP_DIGEST],
        quiet: &[HTTP_BASIC],
    },
    Case {
        capture: "legacy/https_auth.pcap",
        fires: &[],
        quiet: &[HTTP_BASIC, HTTP_DIGEST],
    },
    // SNMP v1/v2c with public (higher), with a site community, vs v3 authPriv.
    Case {
        capture: "legacy/snmp_v1_public.pcap",
        fires: &[SNMP_DEFAULT],
        quiet: &[SNMP_OTHER],
    },
    Case {
        capture: "legacy/snmp_v2c_public.pcap",
        fires: &[SNMP_DEFAULT],
        quiet: &[SNMP_OTHER],
    },
    Case {
        capture: "legacy/snmp_v2c_other.pcap",
        fires: &[SNMP_OTHER],
        quiet: &[SNMP_DEFAULT],
    },
    Case {
        capture: "legacy/snmp_v3_authpriv.pcap",
        fires: &[],
        quiet: &[SNMP_OTHER, SNMP_DEFAULT],
    },
    // TFTP vs a file copied over ssh.
    Case {
        capture: "legacy/tftp.pcap",
        fires: &[TFTP],
        quiet: &[],
    },
    // FTP: a password in clear; an anonymous session (no TLS, no credentials); FTPS.
    Case {
        capture: "legacy/ftp_login.pcap",
        fires: &[FTP_CREDS],
        quiet: &[FTP_CLEAR],
    },
    Case {
        capture: "legacy/ftp_anonymous.pcap",
        fires: &[FTP_CLEAR],
        quiet: &[FTP_CREDS],
    },
    Case {
        capture: "legacy/ftps_login.pcap",
        fires: &[],
        quiet: &[FTP_CLEAR, FTP_CREDS],
    },
    // Telnet and the r-commands vs ssh.
    Case {
        capture: "legacy/telnet_login.pcap",
        fires: &[TELNET],
        quiet: RCMD,
    },
    Case {
        capture: "legacy/rsh.pcap",
        fires: &[RSH],
        quiet: &[RLOGIN, REXEC, TELNET],
    },
    Case {
        capture: "legacy/rlogin.pcap",
        fires: &[RLOGIN],
        quiet: &[RSH, REXEC, TELNET],
    },
    Case {
        capture: "legacy/rexec.pcap",
        fires: &[REXEC],
        quiet: &[RSH, RLOGIN, TELNET],
    },
    Case {
        capture: "legacy/ssh_login.pcap",
        fires: &[],
        quiet: &[TELNET, RLOGIN, RSH, REXEC, TFTP],
    },
    // VNC (TigerVNC Xvnc and vncviewer): no authentication; VNC authentication (DES
    // challenge, session in clear); VeNCrypt Plain (user name and password in clear); VeNCrypt
    // TLSNone (encrypted, no authentication) vs VeNCrypt X509Vnc (TLS with a checked
    // certificate, VNC authentication inside).
    Case {
        capture: "legacy/vnc_none.pcap",
        fires: &[VNC_NO_AUTH],
        quiet: &[VNC_CLEAR, VNC_PASSWORD],
    },
    Case {
        capture: "legacy/vnc_vncauth.pcap",
        fires: &[VNC_CLEAR],
        quiet: &[VNC_NO_AUTH, VNC_PASSWORD],
    },
    Case {
        capture: "legacy/vnc_plain.pcap",
        fires: &[VNC_PASSWORD],
        quiet: &[VNC_CLEAR, VNC_NO_AUTH],
    },
    // (TLSNone's TLS is anonymous Diffie-Hellman, TLS_ECDH_anon_WITH_AES_256_CBC_SHA: the TLS
    // inside VeNCrypt is read as any other, and that suite is a weak one.)
    Case {
        capture: "legacy/vnc_tlsnone.pcap",
        fires: &[VNC_NO_AUTH, WEAK_CIPHER],
        quiet: &[VNC_CLEAR, VNC_PASSWORD],
    },
    Case {
        capture: "legacy/vnc_x509vnc.pcap",
        fires: &[],
        quiet: &[VNC_CLEAR, VNC_NO_AUTH, VNC_PASSWORD],
    },
    // RDP (xrdp and FreeRDP's xfreerdp): Standard RDP Security asked for and selected; a client
    // asking for TLS and CredSSP that the server (security_layer=rdp) downgrades to Standard
    // RDP Security; vs TLS asked for and selected.
    Case {
        capture: "legacy/rdp_standard.pcap",
        fires: &[RDP_STANDARD],
        quiet: &[],
    },
    Case {
        capture: "legacy/rdp_downgraded.pcap",
        fires: &[RDP_STANDARD],
        quiet: &[],
    },
    Case {
        capture: "legacy/rdp_tls.pcap",
        fires: &[],
        quiet: &[RDP_STANDARD, TLS10],
    },
    // TLS inside RDP is judged as TLS anywhere: a server allowing only TLS 1.0.
    Case {
        capture: "legacy/rdp_tls10.pcap",
        fires: &[TLS10],
        quiet: &[RDP_STANDARD],
    },
    // SMB and NetBIOS (Samba 4.17 smbd/nmbd, smbclient/nmblookup; pcaps/gen/smb.sh): a client
    // offering SMB1 only to a server allowing it (NT LM 0.12 negotiated); a client offering SMB1
    // and SMB2/3 dialects in an SMB1 negotiate, answered with SMB2; vs SMB2/3 only on 445.
    // NetBIOS: an NBNS name query on UDP 137 and an SMB2 session on 139 (NetBIOS session
    // service), vs the same SMB2 session on 445 (smb2_445). "NT LANMAN 1.0" is offered in the
    // SMB1 negotiates but is not a LANMAN dialect.
    Case {
        capture: "legacy/smb1_only.pcap",
        fires: &[SMB1],
        quiet: &[SMB1_OFFERED, LANMAN_OFFERED, LANMAN, NETBIOS],
    },
    Case {
        capture: "legacy/smb1_offered.pcap",
        fires: &[SMB1_OFFERED],
        quiet: &[SMB1, LANMAN_OFFERED, LANMAN, NETBIOS],
    },
    Case {
        capture: "legacy/smb2_445.pcap",
        fires: &[],
        quiet: &[SMB1, SMB1_OFFERED, LANMAN_OFFERED, LANMAN, NETBIOS],
    },
    Case {
        capture: "legacy/netbios_139.pcap",
        fires: &[NETBIOS],
        quiet: &[SMB1, SMB1_OFFERED, LANMAN_OFFERED, LANMAN],
    },
    // LANMAN (smbclient with client min protocol = LANMAN1): MICROSOFT NETWORKS 3.0 to
    // LANMAN2.1 offered with NT LM 0.12, the server choosing NT LANMAN 1.0 (SMB1: 6001010 too);
    // vs smbd with server max protocol = LANMAN2 choosing LANMAN2.1 (the negotiated rule
    // supersedes the offered one).
    Case {
        capture: "legacy/lanman_offered.pcap",
        fires: &[LANMAN_OFFERED, SMB1],
        quiet: &[LANMAN, SMB1_OFFERED, NETBIOS],
    },
    Case {
        capture: "legacy/lanman.pcap",
        fires: &[LANMAN],
        quiet: &[LANMAN_OFFERED, SMB1_OFFERED, NETBIOS],
    },
];

/// Legacy rules whose fire/not-fire pair is still only a shared-corpus capture
/// (tests/detect.rs), with the reason. (None left.)
const CORPUS_ONLY: &[(u64, &str)] = &[];

fn run(rel: &str) -> Vec<Value> {
    let (events, out) = common::replay(&[&common::pcap(rel)], &["--workers", "1"]);
    assert!(out.status.success(), "{rel}: {out:?}");
    events
}

fn alerts(events: &[Value]) -> Vec<&Value> {
    common::of_type(events, "alert")
}

fn ids(events: &[Value]) -> BTreeSet<u64> {
    alerts(events)
        .iter()
        .filter_map(|e| e["alert"]["signature_id"].as_u64())
        .collect()
}

/// One line per (signature id, device, peer): "id severity category side device peer count",
/// where count is what the de-duplicated alerts report (the follow-up's count, else 1).
fn lines(rel: &str, events: &[Value]) -> Vec<String> {
    let mut by_key: BTreeMap<(u64, String, String), Vec<&Value>> = BTreeMap::new();
    for e in alerts(events) {
        let a = &e["alert"];
        let key = (
            a["signature_id"].as_u64().unwrap_or(0),
            a["device"]["ip"].as_str().unwrap_or("?").to_string(),
            a["peer"].as_str().unwrap_or("?").to_string(),
        );
        by_key.entry(key).or_default().push(a);
    }
    by_key
        .into_iter()
        .map(|((id, dev, peer), v)| {
            // De-duplicated: the first alert (count 1) and at most one follow-up with the count.
            assert!(v.len() <= 2, "{rel}: {id} {dev} {peer}: {} alerts", v.len());
            assert_eq!(v[0]["count"], 1, "{rel}: {:?}", v[0]);
            if let Some(f) = v.get(1) {
                assert!(
                    f["count"].as_u64() > Some(1) && f["first_seen"].is_string(),
                    "{rel}: follow-up {f:?}"
                );
            }
            let a = v[v.len() - 1];
            format!(
                "{id} {} {} {} {dev} {peer} {}",
                a["severity"],
                a["category"].as_str().unwrap_or("?"),
                a["device"]["side"].as_str().unwrap_or("?"),
                a["count"],
            )
        })
        .collect()
}

#[test]
fn alerts_match_expected_files() {
    let bless = std::env::var_os("MEDTAP_BLESS").is_some();
    let dir = common::root().join("tests/expected/alerts");
    let mut failures = Vec::new();
    for c in CASES {
        let text: String = lines(c.capture, &run(c.capture))
            .iter()
            .map(|l| format!("{l}\n"))
            .collect();
        let file = dir.join(format!("{}.txt", c.capture.replace('/', "_")));
        if bless {
            std::fs::write(&file, &text).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e} (MEDTAP_BLESS=1 writes it)", file.display()));
        if want != text {
            failures.push(format!(
                "{}:\n--- expected\n{want}--- got\n{text}",
                c.capture
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn each_rule_fires_on_its_capture_and_not_on_its_pair() {
    let mut failures = Vec::new();
    for c in CASES {
        let got = ids(&run(c.capture));
        for id in c.fires {
            if !got.contains(id) {
                failures.push(format!("{}: {id} did not fire (got {got:?})", c.capture));
            }
        }
        for id in c.quiet {
            if got.contains(id) {
                failures.push(format!("{}: {id} fired", c.capture));
            }
        }
        if c.fires.is_empty() && !got.is_empty() {
            failures.push(format!("{}: expected no alert, got {got:?}", c.capture));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The TLS inside RDP, FTPS (AUTH TLS) and VeNCrypt is read: one `tls` event with the version
/// tshark shows in each capture's ServerHello.
#[test]
fn tls_inside_rdp_ftp_and_vnc_is_read() {
    for (rel, version) in [
        ("legacy/rdp_tls.pcap", "TLS 1.3"),
        ("legacy/rdp_tls10.pcap", "TLS 1.0"),
        ("legacy/ftps_login.pcap", "TLS 1.3"),
        ("legacy/vnc_tlsnone.pcap", "TLS 1.2"),
        ("legacy/vnc_x509vnc.pcap", "TLS 1.3"),
    ] {
        let events = run(rel);
        let app = rel
            .split('/')
            .nth(1)
            .unwrap_or("")
            .split('_')
            .next()
            .unwrap_or("");
        let app = if app == "ftps" {
            "ftp"
        } else if app == "vnc" {
            "rfb"
        } else {
            app
        };
        let tls: Vec<&Value> = common::of_type(&events, "tls")
            .into_iter()
            .filter(|e| e["app_proto"] == app)
            .collect();
        assert_eq!(tls.len(), 1, "{rel}: {tls:?}");
        assert_eq!(tls[0]["tls"]["version"], version, "{rel}");
    }
}

/// Every rule of legacy.toml has a real capture here that fires it and one that does not
/// (or is named in CORPUS_ONLY with the reason).
#[test]
fn every_legacy_rule_has_a_real_capture_pair() {
    let text =
        std::fs::read_to_string(common::root().join("signatures/rules/legacy.toml")).unwrap();
    let rules: Vec<u64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("id = ")?.trim().parse().ok())
        .collect();
    assert!(rules.len() >= 15, "{rules:?}");
    let mut missing = Vec::new();
    for id in rules {
        if CORPUS_ONLY.iter().any(|(c, _)| *c == id) {
            continue;
        }
        let fires = CASES.iter().any(|c| c.fires.contains(&id));
        let quiet = CASES.iter().any(|c| c.quiet.contains(&id));
        if !(fires && quiet) {
            missing.push(format!("{id} (fires: {fires}, quiet pair: {quiet})"));
        }
    }
    assert!(missing.is_empty(), "rules without a real pair: {missing:?}");
}

/// arkime's snmpv3_synthetic.pcap holds SNMP messages whose PDU is malformed on purpose (a
/// varbind list one byte longer than its PDU, a varbind name that is not an OID, an INTEGER
/// where the PDU should be). tshark 4.0.17 shows each one's version and community, then
/// "[Malformed Packet]":
///   tshark -n -r pcaps/corpus/legacy/arkime_snmpv3_synthetic.pcap -T fields -e ip.src
///     -e snmp.version -e snmp.community -e snmp.msgVersion -e snmp.msgUserName
///   10.0.0.82 3 admin_user | 10.0.0.202 1 public | 10.0.0.42 3 monitor | 10.0.0.137 1 private
///   10.0.0.56 3 readonly | 10.0.0.48 1 secret123 | 10.0.0.99 1 public (well formed)
///   10.0.0.100 1 public | 10.0.1.10 2 (v2u, x2) | 10.0.1.11 0 public (x2)
/// The community crossed the network in clear all the same: medtap reports the same versions and
/// community kinds (counting the messages as parse errors too) and raises the community alerts.
/// It used to drop every malformed message whole: no `snmp` event and no alert but for 10.0.0.99.
/// 10.0.1.10's two messages are SNMPv2u (RFC 1910; tshark: "version: v2u (2)", "parameters:
/// 7075626c6963", "datav2u: plaintext (0)", get-request, well formed): reported as `v2u`, with
/// no community (v2u has none; the parameters bytes are never shown) and no community alert.
/// They used to give no `snmp` event at all.
#[test]
fn snmp_malformed_messages_keep_their_header() {
    let rel = "corpus/legacy/arkime_snmpv3_synthetic.pcap";
    let events = run(rel);
    let mut got: BTreeMap<String, (String, String, u64)> = BTreeMap::new();
    for e in common::of_type(&events, "snmp") {
        let s = &e["snmp"];
        got.insert(
            e["src_ip"].as_str().unwrap().to_string(),
            (
                s["version"].as_str().unwrap_or("").to_string(),
                s["community"].as_str().unwrap_or("").to_string(),
                s["parse_errors"].as_u64().unwrap(),
            ),
        );
    }
    let want: BTreeMap<String, (String, String, u64)> = [
        ("10.0.0.82", "v3", "", 1),
        ("10.0.0.202", "v2c", "default", 1),
        ("10.0.0.42", "v3", "", 1),
        ("10.0.0.137", "v2c", "default", 1),
        ("10.0.0.56", "v3", "", 1),
        ("10.0.0.48", "v2c", "other", 1),
        ("10.0.0.99", "v2c", "default", 0),
        ("10.0.0.100", "v2c", "default", 1),
        ("10.0.1.10", "v2u", "", 0),
        ("10.0.1.11", "v1", "default", 2),
    ]
    .into_iter()
    .map(|(ip, v, c, n)| (ip.to_string(), (v.to_string(), c.to_string(), n)))
    .collect();
    assert_eq!(got, want, "{rel}");
    let mut fired: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for e in alerts(&events) {
        fired
            .entry(e["src_ip"].as_str().unwrap().to_string())
            .or_default()
            .insert(e["alert"]["signature_id"].as_u64().unwrap());
    }
    for ip in [
        "10.0.0.202",
        "10.0.0.137",
        "10.0.0.99",
        "10.0.0.100",
        "10.0.1.11",
    ] {
        assert_eq!(fired.get(ip), Some(&BTreeSet::from([SNMP_DEFAULT])), "{ip}");
    }
    assert_eq!(
        fired.get("10.0.0.48"),
        Some(&BTreeSet::from([SNMP_OTHER])),
        "10.0.0.48"
    );
    assert_eq!(fired.get("10.0.1.10"), None);
    let v2u = common::of_type(&events, "snmp")
        .into_iter()
        .find(|e| e["src_ip"] == "10.0.1.10")
        .unwrap();
    assert_eq!(v2u["app_proto"], "snmp", "{v2u}");
    assert_eq!(v2u["dest_port"], 161, "{v2u}");
    let s = &v2u["snmp"];
    assert_eq!(s["messages"], 2, "{v2u}");
    assert_eq!(s["pdu_types"], serde_json::json!(["get_request"]), "{v2u}");
    assert_eq!(s["v2u_encrypted"], false, "{v2u}");
    assert_eq!(s["community_present"], false, "{v2u}");
    assert!(!v2u.to_string().contains("public"), "{v2u}");
}
