//! Fuzz the per-connection DICOM state machine (`medtap::protocols::dicom::DicomState`) with
//! structured input: a list of operations, each `op (1) len (2, BE)` then `len` bytes of data
//! (bit 0 of op: direction, bit 1: a gap of `len` bytes instead of data).
//!
//! Invariants: nothing panics; at most one `dicom` event, valid JSON, emitted by `on_close` at
//! the latest if any PDU was decoded; and the event does not depend on how the bytes were cut:
//! the same operations with consecutive same-direction data merged give the same event.
//! Seed corpus: `parsers/fuzz/corpus/dicom_assoc/` (connections from pcaps/dicom in this
//! format).
#![no_main]

use libfuzzer_sys::fuzz_target;
use medtap::flow::FlowMeta;
use medtap::output::EventSink;
use medtap::protocols::dicom::DicomState;
use medtap::protocols::{AppContext, AppParser, Direction};
use medtap::stats::WorkerStats;
use medtap::time::Ts;

enum Op<'a> {
    Data(Direction, &'a [u8]),
    Gap(Direction, u64),
}

fn ops(mut data: &[u8]) -> Vec<Op<'_>> {
    let mut v = Vec::new();
    while data.len() >= 3 && v.len() < 4096 {
        let op = data[0];
        let len = u16::from_be_bytes([data[1], data[2]]) as usize;
        data = &data[3..];
        let dir = if op & 1 == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        if op & 2 != 0 {
            v.push(Op::Gap(dir, len as u64));
        } else {
            let n = len.min(data.len());
            v.push(Op::Data(dir, &data[..n]));
            data = &data[n..];
        }
    }
    v
}

fn run(ops: &[Op<'_>]) -> (Vec<u8>, bool) {
    let meta = FlowMeta {
        flow_id: 1,
        proto: 6,
        client: ("10.0.0.1".parse().unwrap(), 40000),
        server: ("10.0.0.2".parse().unwrap(), 104),
        vlan: [0, 0],
        client_mac: [0; 6],
        server_mac: [0; 6],
        to_group: false,
        app_proto: None,
    };
    let mut events = EventSink::new(true);
    let mut stats = WorkerStats::default();
    let mut st = DicomState::new();
    let mut obs = medtap::observe::ObsBuf::new(true);
    let mut cx = AppContext {
        ts: Ts(1_000_000),
        flow: &meta,
        events: &mut events,
        stats: &mut stats,
        obs: &mut obs,
    };
    for op in ops {
        match op {
            Op::Data(d, b) => st.on_data(*d, b, &mut cx),
            Op::Gap(d, n) => st.on_gap(*d, *n, &mut cx),
        }
    }
    let done = st.done();
    st.on_close(&mut cx);
    (events.take(), done)
}

fuzz_target!(|data: &[u8]| {
    let ops = ops(data);
    let (out, done) = run(&ops);
    let lines: Vec<_> = out
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert!(lines.len() <= 1, "more than one event");
    for l in &lines {
        let v: serde_json::Value = serde_json::from_slice(l).expect("event is JSON");
        assert_eq!(v["event_type"], "dicom");
    }
    if done {
        assert_eq!(lines.len(), 1, "ended without an event");
    }
    // Merge consecutive data of one direction: the event must not change.
    let mut merged: Vec<(Direction, Vec<u8>)> = Vec::new();
    let mut mops = Vec::new();
    for op in &ops {
        match op {
            Op::Data(d, b) => match merged.last_mut() {
                Some((md, buf))
                    if md == d && mops.last().is_some_and(|x: &Option<u64>| x.is_none()) =>
                {
                    buf.extend_from_slice(b)
                }
                _ => {
                    merged.push((*d, b.to_vec()));
                    mops.push(None);
                }
            },
            Op::Gap(d, n) => {
                merged.push((*d, Vec::new()));
                mops.push(Some(*n));
            }
        }
    }
    let mops2: Vec<Op<'_>> = merged
        .iter()
        .zip(&mops)
        .map(|((d, b), g)| match g {
            Some(n) => Op::Gap(*d, *n),
            None => Op::Data(*d, b),
        })
        .collect();
    let (out2, _) = run(&mops2);
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&out2),
        "event depends on how the bytes were cut"
    );
});
