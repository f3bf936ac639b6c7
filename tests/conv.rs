//! Flows against tshark's conversation statistics.
//!
//! For every capture with an expected file in tests/expected/conv/ (made by
//! tests/expected/conv/make.sh from `tshark -n -q -r FILE -z conv,tcp -z conv,udp`), medtap's
//! `flow` events, summed per unordered endpoint pair (a conversation that medtap split by a
//! timeout or port reuse is summed back), must equal tshark's packets and bytes each way.

mod common;

use std::collections::BTreeMap;

use serde_json::Value;

/// (proto, endpoint a, endpoint b) with a < b -> [packets a->b, bytes a->b, packets b->a, bytes b->a]
type Convs = BTreeMap<(String, String, String), [u64; 4]>;

fn endpoint(ip: &str, port: u64) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

fn add(m: &mut Convs, proto: &str, a: String, b: String, v: [u64; 4]) {
    let (k, v) = if a <= b {
        ((proto.to_string(), a, b), v)
    } else {
        ((proto.to_string(), b, a), [v[2], v[3], v[0], v[1]])
    };
    let e = m.entry(k).or_insert([0; 4]);
    for i in 0..4 {
        e[i] += v[i];
    }
}

fn medtap_convs(events: &[Value]) -> Convs {
    let mut m = Convs::new();
    for e in common::of_type(events, "flow") {
        let proto = match e["proto"].as_str() {
            Some("TCP") => "tcp",
            Some("UDP") => "udp",
            _ => continue,
        };
        let f = &e["flow"];
        let a = endpoint(
            e["src_ip"].as_str().unwrap(),
            e["src_port"].as_u64().unwrap(),
        );
        let b = endpoint(
            e["dest_ip"].as_str().unwrap(),
            e["dest_port"].as_u64().unwrap(),
        );
        let v = [
            f["pkts_toserver"].as_u64().unwrap(),
            f["bytes_toserver"].as_u64().unwrap(),
            f["pkts_toclient"].as_u64().unwrap(),
            f["bytes_toclient"].as_u64().unwrap(),
        ];
        add(&mut m, proto, a, b, v);
    }
    m
}

fn tshark_convs(expected: &Value) -> Convs {
    let mut m = Convs::new();
    for c in expected.as_array().expect("a list of conversations") {
        let v = [
            c["packets_a_to_b"].as_u64().unwrap(),
            c["bytes_a_to_b"].as_u64().unwrap(),
            c["packets_b_to_a"].as_u64().unwrap(),
            c["bytes_b_to_a"].as_u64().unwrap(),
        ];
        add(
            &mut m,
            c["proto"].as_str().unwrap(),
            c["a"].as_str().unwrap().into(),
            c["b"].as_str().unwrap().into(),
            v,
        );
    }
    m
}

#[test]
fn flows_match_tshark_conversations() {
    let dir = common::root().join("tests/expected/conv");
    let mut checked = 0;
    let mut failures = Vec::new();
    for rel in common::all_pcaps() {
        let name = format!("{}.conv.json", rel.replace('/', "__"));
        let exp_path = dir.join(&name);
        if !exp_path.exists() {
            continue;
        }
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(&exp_path).unwrap()).unwrap();
        let (events, _) = common::replay(&[&common::pcap(&rel)], &["--workers", "1"]);
        let got = medtap_convs(&events);
        let want = tshark_convs(&expected);
        if got != want {
            let mut diff = String::new();
            for (k, v) in &want {
                match got.get(k) {
                    Some(g) if g == v => {}
                    g => diff.push_str(&format!("  {k:?}: tshark {v:?}, medtap {g:?}\n")),
                }
            }
            for (k, g) in &got {
                if !want.contains_key(k) {
                    diff.push_str(&format!("  {k:?}: tshark none, medtap {g:?}\n"));
                }
            }
            failures.push(format!("{rel}:\n{diff}"));
        }
        checked += 1;
    }
    assert!(
        checked >= 10,
        "only {checked} captures have expected conversation files"
    );
    assert!(
        failures.is_empty(),
        "{} of {checked} captures differ from tshark:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
