//! TLS handshakes against tshark's TLS dissector: for every capture with an expected file in
//! tests/expected/tls/ (made by tests/expected/tls/make.sh), medtap's `tls` event of each TCP
//! connection carries the same ClientHello (legacy version, SNI, supported_versions, cipher
//! suites in order, JA3 hash and string) and first ServerHello (version, selected version,
//! cipher suite, JA3S hash and string, whether it is a TLS 1.3 HelloRetryRequest) as tshark
//! shows, and medtap reports no TLS connection tshark does not. The captures cover OpenSSL 3.0
//! s_client (TLS 1.0 to 1.3, a HelloRetryRequest), gnutls-cli, Python's ssl, curl, Firefox,
//! SSL 3.0, IPv4 and IPv6, Ethernet and Linux SLL2.

mod common;

use std::collections::BTreeMap;

use serde_json::Value;

fn endpoint(ip: &str, port: u64) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

fn st(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

fn list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(st).collect())
        .unwrap_or_default()
}

/// medtap's event projected on the expected file's keys.
fn project(e: &Value) -> BTreeMap<&'static str, Value> {
    let t = &e["tls"];
    let mut m = BTreeMap::new();
    m.insert(
        "server",
        Value::from(endpoint(
            e["dest_ip"].as_str().unwrap(),
            e["dest_port"].as_u64().unwrap(),
        )),
    );
    for k in [
        "client_version",
        "sni",
        "server_version",
        "server_selected_version",
        "cipher_suite",
    ] {
        m.insert(k, Value::from(st(&t[k])));
    }
    for k in ["client_supported_versions", "client_cipher_suites"] {
        m.insert(k, Value::from(list(&t[k])));
    }
    m.insert("ja3", Value::from(st(&t["ja3"]["hash"])));
    m.insert("ja3_string", Value::from(st(&t["ja3"]["string"])));
    m.insert("ja3s", Value::from(st(&t["ja3s"]["hash"])));
    m.insert("ja3s_string", Value::from(st(&t["ja3s"]["string"])));
    m.insert(
        "hello_retry_request",
        Value::from(t["hello_retry_request"].as_bool().unwrap_or(false)),
    );
    m
}

fn expected_of(c: &Value) -> BTreeMap<&'static str, Value> {
    let mut m = BTreeMap::new();
    for k in [
        "server",
        "client_version",
        "sni",
        "server_version",
        "server_selected_version",
        "cipher_suite",
        "client_supported_versions",
        "client_cipher_suites",
        "ja3",
        "ja3_string",
        "ja3s",
        "ja3s_string",
        "hello_retry_request",
    ] {
        let v = c.get(k).cloned().unwrap_or_else(|| {
            if k == "hello_retry_request" {
                Value::from(false)
            } else if k.ends_with('s') && k.starts_with("client_") {
                Value::Array(vec![])
            } else {
                Value::from("")
            }
        });
        m.insert(k, v);
    }
    m
}

#[test]
fn handshakes_agree_with_tshark() {
    let dir = common::root().join("tests/expected/tls");
    let mut checked = 0;
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for f in files {
        let exp: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let cap = common::root().join(exp["capture"].as_str().unwrap());
        let (events, _) = common::replay(&[&cap], &[]);
        let mut got: BTreeMap<String, BTreeMap<&str, Value>> = BTreeMap::new();
        for e in common::of_type(&events, "tls") {
            let client = endpoint(
                e["src_ip"].as_str().unwrap(),
                e["src_port"].as_u64().unwrap(),
            );
            got.insert(client, project(e));
        }
        let want: BTreeMap<String, BTreeMap<&str, Value>> = exp["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (st(&c["client"]), expected_of(c)))
            .collect();
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{}: TLS connections",
            f.display()
        );
        for (client, w) in &want {
            assert_eq!(&got[client], w, "{}: {client}", f.display());
            checked += 1;
        }
    }
    assert!(checked >= 16, "only {checked} TLS connections checked");
}
