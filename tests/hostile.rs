//! Hostile captures (pcaps/hostile/, and larger ones written at test time by
//! pcaps/gen/hostile.py from the real captures): each is read to the end with its damage
//! counted, no panic, the events produced all written, and peak memory (VmHWM of the `medtap`
//! child, polled) within a bound derived from the configured caps.
//!
//! The million-flow inputs are scaled for CI: `MEDTAP_HOSTILE_FLOWS` (default 1,000,000 SYNs
//! and 100,000 associations; the test binary is a debug build at about 20,000 packets/s) and
//! `MEDTAP_HOSTILE_HL7_MIB` (default 48) change them; the README gives figures measured at
//! full size.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Run `python3 pcaps/gen/hostile.py ARGS` (the generator of the hostile captures).
fn generate(args: &[&str]) {
    let out = Command::new("python3")
        .arg(common::root().join("pcaps/gen/hostile.py"))
        .args(args)
        .output()
        .expect("python3 (needed to generate hostile captures)");
    assert!(
        out.status.success(),
        "hostile.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Run {
    /// The first [`KEEP_EVENTS`] events (all of them for the small captures).
    events: Vec<Value>,
    /// Events by type, and `flow` events by reason and `dicom` events by result.
    counts: std::collections::BTreeMap<String, u64>,
    stats: Value,
    stderr: String,
    /// Peak resident set size of the child, KiB.
    peak_kib: u64,
    secs: f64,
}

impl Run {
    fn stats(&self) -> &Value {
        &self.stats["stats"]
    }

    fn count(&self, key: &str) -> u64 {
        self.counts.get(key).copied().unwrap_or(0)
    }

    fn counter(&self, group: &str, name: &str) -> u64 {
        self.stats()[group][name].as_u64().unwrap_or(0)
    }
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let l = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    l.split_whitespace().nth(1)?.parse().ok()
}

/// Replay `inputs` with a config file holding `limits` (TOML `[limits]` body) and one worker;
/// poll the child's VmHWM until it exits.
fn replay_measured(inputs: &[&Path], limits: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("eve.json");
    let cfg = dir.path().join("medtap.toml");
    std::fs::write(&cfg, format!("[limits]\n{limits}\n")).unwrap();
    let started = Instant::now();
    let mut child = common::medtap()
        .args(["replay", "--no-progress", "--workers", "1", "--config"])
        .arg(&cfg)
        .arg("--events")
        .arg(&events)
        .args(inputs)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak = 0;
    let status = loop {
        if let Some(v) = vm_hwm_kib(pid) {
            peak = peak.max(v);
        }
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        status.success(),
        "medtap replay {inputs:?} failed ({status}): {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let (events, counts, stats) = read_events_counted(&events);
    let run = Run {
        events,
        counts,
        stats,
        stderr,
        peak_kib: peak,
        secs: started.elapsed().as_secs_f64(),
    };
    let ev = &run.stats()["events"];
    assert_eq!(ev["produced"], ev["written"], "events lost");
    let lines: u64 = run
        .counts
        .iter()
        .filter(|(k, _)| !k.contains('/'))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(
        ev["written"].as_u64().unwrap(),
        lines - 1,
        "stats says {} events, the log has {}",
        ev["written"],
        lines - 1
    );
    run
}

const KEEP_EVENTS: usize = 10_000;

/// Read an event log without holding a million events: keep the first [`KEEP_EVENTS`], count
/// all, return the (single) stats event.
fn read_events_counted(
    path: &Path,
) -> (Vec<Value>, std::collections::BTreeMap<String, u64>, Value) {
    use std::io::BufRead;
    let mut kept = Vec::new();
    let mut counts = std::collections::BTreeMap::new();
    let mut stats = Vec::new();
    let f = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    for line in f.lines() {
        let line = line.unwrap();
        let v: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad event {line}: {e}"));
        let t = v["event_type"].as_str().unwrap_or("?").to_string();
        let sub = match t.as_str() {
            "flow" => v["flow"]["reason"].as_str().map(|r| format!("flow/{r}")),
            "dicom" => v["dicom"]["result"].as_str().map(|r| format!("dicom/{r}")),
            _ => None,
        };
        if let Some(k) = sub {
            *counts.entry(k).or_insert(0) += 1;
        }
        *counts.entry(t.clone()).or_insert(0) += 1;
        if t == "stats" {
            stats.push(v.clone());
        }
        if kept.len() < KEEP_EVENTS {
            kept.push(v);
        }
    }
    assert_eq!(stats.len(), 1, "one stats event expected");
    (kept, counts, stats.pop().unwrap())
}

/// The memory a replay may use: what the process needs with nothing held (code, libpcap,
/// thread stacks, buffers: 12 MiB measured for a debug build) doubled, plus the caps
/// configured: event queue (about 64 KiB per buffer), flow table (generously 4 KiB per flow
/// with its protocol state), reassembly bytes, one HL7 message, and the device inventory
/// (64 KiB per device: about 30 KiB each was measured for devices seen in DICOM associations),
/// and the detection engine's fixed caps (src/limits.rs: 1024 de-duplication entries, 4096
/// behaviour baselines, 65,536 scan entries, burst counters, 1000 recent alerts; 16 MiB
/// generously: 8.5 MiB was measured with 100,000 distinct DICOM peers each raising an alert).
fn bound_kib(max_flows: u64, event_queue: u64, reassembly_global: u64, max_devices: u64) -> u64 {
    24 * 1024
        + 16 * 1024
        + event_queue * 64
        + max_flows * 4
        + reassembly_global / 1024
        + 1024
        + max_devices * 64
}

fn small(name: &str) -> PathBuf {
    common::pcap(&format!("hostile/{name}"))
}

const SMALL_LIMITS: &str =
    "max_flows = 1024\nevent_queue = 16\nreassembly_global_bytes = \"4MiB\"\nmax_devices = 256\nobserve_queue = 16";

fn small_bound() -> u64 {
    bound_kib(1024, 16, 4 << 20, 256)
}

fn check_small(run: &Run) {
    assert!(
        run.peak_kib < small_bound(),
        "peak RSS {} KiB over {} KiB",
        run.peak_kib,
        small_bound()
    );
}

fn payload<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
    common::of_type(events, t).iter().map(|e| &e[t]).collect()
}

#[test]
fn truncated_inside_a_record_header() {
    let r = replay_measured(&[&small("truncated_mid_header.pcap")], SMALL_LIMITS);
    check_small(&r);
    assert_eq!(r.counter("capture", "files_damaged"), 1);
    assert_eq!(r.counter("capture", "packets"), 11);
    assert!(
        r.stderr.contains("truncated_mid_header.pcap"),
        "{}",
        r.stderr
    );
}

#[test]
fn corrupt_record_header_length() {
    let r = replay_measured(&[&small("corrupt_record_headers.pcap")], SMALL_LIMITS);
    check_small(&r);
    assert_eq!(r.counter("capture", "files_damaged"), 1);
    assert_eq!(r.counter("capture", "packets"), 8);
}

#[test]
fn zero_length_and_cut_records() {
    let r = replay_measured(&[&small("zero_and_snaplen_cut.pcap")], SMALL_LIMITS);
    check_small(&r);
    assert_eq!(r.counter("capture", "packets"), 40);
    // 0, 1, 13 and 0 bytes: no Ethernet header; 14, 20, 33: IPv4 header cut
    assert_eq!(r.counter("decoder", "decode_errors_link_truncated"), 4);
    assert!(r.counter("decoder", "decode_errors_ipv4_truncated") >= 2);
    // the whole frames still make the association
    let d = payload(&r.events, "dicom");
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["result"], "accepted");
}

#[test]
fn unknown_link_type_is_counted() {
    let r = replay_measured(&[&small("unknown_linktype.pcap")], SMALL_LIMITS);
    check_small(&r);
    assert_eq!(r.counter("decoder", "decode_errors_link_unsupported"), 30);
    assert_eq!(r.counter("flow", "flows_created_tcp"), 0);
}

#[test]
fn vlan_stacks_deeper_than_we_read() {
    let r = replay_measured(&[&small("vlan_deep.pcap")], SMALL_LIMITS);
    check_small(&r);
    assert_eq!(r.counter("decoder", "decode_errors_vlan_too_deep"), 30);
}

/// A 4 GiB PDU length is beyond any believable PDU: a P-DATA-TF one in an association makes
/// the parser lose sync (malformed_pdu) and resynchronise on the next real PDU header; an
/// A-ASSOCIATE-RQ one makes content detection skip the requestor's bytes, and the association
/// is picked up from the acceptor's side (a gap, counted, `midstream` in the event).
#[test]
fn dicom_pdu_length_4gib() {
    let r = replay_measured(&[&small("dicom_pdu_4gib.pcap")], SMALL_LIMITS);
    check_small(&r);
    let errs = &r.stats()["app_layer"]["dicom_errors"];
    assert!(errs["malformed_pdu"].as_u64().unwrap_or(0) >= 1, "{errs}");
    assert!(errs["resync"].as_u64().unwrap_or(0) >= 1, "{errs}");
    assert_eq!(payload(&r.events, "dicom").len(), 2);

    let r = replay_measured(&[&small("dicom_assoc_rq_4gib.pcap")], SMALL_LIMITS);
    check_small(&r);
    let errs = &r.stats()["app_layer"]["dicom_errors"];
    assert!(errs["gap"].as_u64().unwrap_or(0) >= 1, "{errs}");
    let d = payload(&r.events, "dicom");
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["midstream"], true);
    assert_eq!(d[0]["errors"]["gap"], 1);
}

#[test]
fn dicom_pdu_over_the_kept_cap() {
    let r = replay_measured(&[&small("dicom_assoc_rq_1mib.pcap")], SMALL_LIMITS);
    check_small(&r);
    assert_eq!(r.stats()["app_layer"]["dicom_errors"]["pdu_too_large"], 1);
    let d = payload(&r.events, "dicom");
    assert_eq!(d.len(), 1);
    assert_eq!(
        d[0]["limits"]["pdu_kept"],
        serde_json::json!({"value": 1 << 20, "limit": 65536})
    );
}

/// The DICOM and HL7 caps are configuration: the event carries the configured limit.
#[test]
fn protocol_caps_come_from_the_config() {
    let r = replay_measured(
        &[&small("dicom_assoc_rq_1mib.pcap")],
        &format!("{SMALL_LIMITS}\ndicom_pdu_kept = \"16KiB\""),
    );
    assert_eq!(
        payload(&r.events, "dicom")[0]["limits"]["pdu_kept"],
        serde_json::json!({"value": 1 << 20, "limit": 16384})
    );
    let r = replay_measured(
        &[&common::pcap("hl7/large_oru.pcap")],
        &format!("{SMALL_LIMITS}\nhl7_message_bytes = \"64KiB\""),
    );
    let big: Vec<_> = payload(&r.events, "hl7")
        .into_iter()
        .filter(|h| !h["too_large"].is_null())
        .collect();
    assert!(!big.is_empty());
    assert!(big.iter().all(|h| h["too_large"]["limit"] == 65536));
    assert_eq!(
        r.stats()["app_layer"]["hl7_errors"]["too_large"].as_u64(),
        Some(big.len() as u64)
    );
}

/// The per-flow reassembly cap: counted, and reported once in the flow's `flow` event with the
/// bytes wanted and the limit (ooo_retrans.pcap, lossy and reordered, with 4 KiB per direction).
#[test]
fn reassembly_flow_cap_is_counted_and_reported_once_per_flow() {
    let r = replay_measured(
        &[&common::pcap("ooo_retrans.pcap")],
        &format!("{SMALL_LIMITS}\nreassembly_flow_bytes = \"4KiB\""),
    );
    let hits = r.counter("tcp", "reassembly_cap_hits_flow");
    let reported: Vec<_> = payload(&r.events, "flow")
        .into_iter()
        .filter_map(|f| f["tcp"].get("reassembly_cap"))
        .collect();
    assert!(hits >= 1 && !reported.is_empty(), "hits {hits}");
    assert!(reported.len() as u64 <= hits);
    for c in &reported {
        assert_eq!(c["cap"], "flow");
        assert_eq!(c["limit"], 4096);
        assert!(c["value"].as_u64().unwrap() > 4096, "{c}");
    }
    // with the default cap, nothing is hit
    let r = replay_measured(&[&common::pcap("ooo_retrans.pcap")], SMALL_LIMITS);
    assert_eq!(r.counter("tcp", "reassembly_cap_hits_flow"), 0);
}

/// Overlapping resends with other bytes are counted, and the first copy (the real bytes) is
/// what the HL7 parser sees: the events are those of the original capture.
#[test]
fn overlapping_segments_with_different_data() {
    let r = replay_measured(&[&small("tcp_overlap_different.pcap")], SMALL_LIMITS);
    check_small(&r);
    assert!(r.counter("tcp", "reassembly_overlaps_different") >= 8);
    let (orig, _) = common::replay(&[&common::pcap("hl7/adt_oru_orm.pcap")], &[]);
    assert_eq!(payload(&r.events, "hl7"), payload(&orig, "hl7"));
    assert_eq!(payload(&r.events, "hl7").len(), 8);
}

/// Sequence numbers wrapping past 2^32 in mid-stream change nothing: same DICOM events, no gap.
#[test]
fn sequence_wrap_around_mid_stream() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("tcp_seq_wrap_store.pcap");
    generate(&["seq_wrap", big.to_str().unwrap()]);
    for (wrapped, orig) in [
        (
            small("tcp_seq_wrap_find.pcap"),
            common::pcap("dicom/find.pcap"),
        ),
        (big, common::pcap("dicom/store.pcap")),
    ] {
        let r = replay_measured(&[&wrapped], SMALL_LIMITS);
        check_small(&r);
        assert_eq!(r.counter("tcp", "reassembly_gaps"), 0, "{wrapped:?}");
        let (o, _) = common::replay(&[&orig], &[]);
        let (a, b) = (payload(&r.events, "dicom"), payload(&o, "dicom"));
        assert!(!a.is_empty());
        assert_eq!(a, b, "{wrapped:?}");
    }
}

fn scale(default: u64) -> u64 {
    std::env::var("MEDTAP_HOSTILE_FLOWS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(|n| n.min(default))
        .unwrap_or(default)
}

/// An MLLP frame that never ends, far over the 1 MiB kept of an HL7 message: memory stays
/// flat, the message is reported once with `too_large` and as unterminated.
#[test]
fn hl7_frame_never_terminated() {
    let mib: u64 = std::env::var("MEDTAP_HOSTILE_HL7_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("hl7_unterminated.pcap");
    generate(&["hl7_unterminated", f.to_str().unwrap(), &mib.to_string()]);
    let r = replay_measured(&[&f], SMALL_LIMITS);
    eprintln!(
        "hl7 frame of {mib} MiB: peak RSS {} KiB, {:.1}s",
        r.peak_kib, r.secs
    );
    check_small(&r);
    let errs = &r.stats()["app_layer"]["hl7_errors"];
    assert_eq!(errs["too_large"], 1, "{errs}");
    assert_eq!(errs["unterminated_frame"], 1, "{errs}");
    let h = payload(&r.events, "hl7");
    assert_eq!(h.len(), 1);
    assert_eq!(h[0]["too_large"]["limit"], 1 << 20);
    assert!(h[0]["too_large"]["value"].as_u64().unwrap() >= mib << 20);
}

/// A SYN flood from a million random sources into a 1024-flow table: every SYN makes a flow,
/// the oldest are ended as table_full (counted, one flow event each), memory stays bounded.
#[test]
fn syn_flood_from_a_million_sources() {
    let n = scale(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("synflood.pcap");
    generate(&["synflood", f.to_str().unwrap(), &n.to_string()]);
    let r = replay_measured(&[&f], SMALL_LIMITS);
    eprintln!(
        "SYN flood of {n}: peak RSS {} KiB (bound {} KiB), {:.1}s",
        r.peak_kib,
        small_bound(),
        r.secs
    );
    check_small(&r);
    assert_eq!(r.counter("flow", "flows_created_tcp"), n);
    let full = r.counter("flow", "flows_ended_table_full");
    assert!(full >= n - 1024, "table_full {full}");
    assert_eq!(r.count("flow"), n);
    assert_eq!(r.count("flow/table_full"), full);
}

/// Many tiny DICOM associations (SYN, A-ASSOCIATE-RQ, -RJ, RST from a real dcmtk exchange):
/// each is decoded and reported as rejected, the table stays at its cap.
#[test]
fn a_million_tiny_dicom_associations() {
    let n = scale(100_000);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("dicom_assocs.pcap");
    generate(&["dicom_assocs", f.to_str().unwrap(), &n.to_string()]);
    let r = replay_measured(&[&f], SMALL_LIMITS);
    eprintln!(
        "{n} DICOM associations: peak RSS {} KiB (bound {} KiB), {:.1}s",
        r.peak_kib,
        small_bound(),
        r.secs
    );
    check_small(&r);
    assert_eq!(r.counter("flow", "flows_created_tcp"), n);
    assert_eq!(
        r.stats()["app_layer"]["dicom_associations"]["rejected"],
        n,
        "{}",
        r.stats()["app_layer"]
    );
    assert_eq!(r.count("dicom"), n);
    assert_eq!(r.count("dicom/rejected"), n);
    assert_eq!(r.count("flow"), n);
}
