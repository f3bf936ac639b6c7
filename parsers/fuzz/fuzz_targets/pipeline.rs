//! Fuzz the stateful layers together: decode -> flow table -> TCP reassembly -> protocol
//! detection -> protocol state machines (DICOM, HL7, TLS ...), the way a worker runs them.
//!
//! The input is structured (read with `arbitrary::Unstructured`, in a byte layout simple enough
//! for `seeds_pipeline.py` to write seeds from real captures):
//!
//! ```text
//! nflows (1 byte, % 4 + 1)
//! per flow: server port choice (1) client port (2) client ISN (4) server ISN (4) flags (1)
//!           flags bit 0: three-way handshake first; bit 1: 802.1Q tag; bit 2: IPv6
//! then chunks until the input ends: op (1) len (2, BE) data (len bytes, or what is left)
//!   op bits 0-1: flow; bit 2: direction (0 = client to server); bit 3: FIN; bit 4: RST;
//!   bit 5: skip `len` sequence numbers first and send nothing (a gap in the capture);
//!   bit 6: resend from 0..=255 bytes back (overlap, with this chunk's data);
//!   bit 7: a long pause first (past every timeout)
//! ```
//!
//! Invariants: nothing panics; every event line is JSON with an `event_type`; after the flows
//! end, the table is empty and no reassembly byte is still held; the bytes held never exceed
//! the global cap; and every flow created reported exactly one final `flow` event.
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use medtap::decode::{self, linktype};
use medtap::flow::{FlowTable, Sinks};
use medtap::limits::{Limits, Timeouts};
use medtap::observe::ObsBuf;
use medtap::output::EventSink;
use medtap::stats::{Counter, WorkerStats};
use medtap::time::Ts;

/// Server ports the flows pick from: the protocols' usual ports, and one nobody uses.
const PORTS: [u16; 8] = [104, 11112, 2575, 443, 80, 4242, 6661, 40404];

struct FlowSpec {
    server_port: u16,
    client_port: u16,
    seq: [u32; 2],
    vlan: bool,
    v6: bool,
    index: u8,
}

/// Build one Ethernet frame (optional 802.1Q tag) carrying IPv4/IPv6 + TCP.
fn frame(f: &FlowSpec, to_server: bool, flags: u8, seq: u32, ack: u32, data: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(80 + data.len());
    let (cmac, smac) = ([2, 0, 0, 0, 0, 1 + f.index], [2, 0, 0, 0, 1, 1 + f.index]);
    let (src_mac, dst_mac) = if to_server {
        (cmac, smac)
    } else {
        (smac, cmac)
    };
    p.extend_from_slice(&dst_mac);
    p.extend_from_slice(&src_mac);
    if f.vlan {
        p.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a + f.index]);
    }
    let tcp_len = 20 + data.len();
    let (sp, dp) = if to_server {
        (f.client_port, f.server_port)
    } else {
        (f.server_port, f.client_port)
    };
    if f.v6 {
        p.extend_from_slice(&[0x86, 0xdd]);
        p.extend_from_slice(&[0x60, 0, 0, 0]);
        p.extend_from_slice(&(tcp_len as u16).to_be_bytes());
        p.extend_from_slice(&[6, 64]);
        let c = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 + f.index];
        let s = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1 + f.index];
        let (a, b) = if to_server { (c, s) } else { (s, c) };
        p.extend_from_slice(&a);
        p.extend_from_slice(&b);
    } else {
        p.extend_from_slice(&[0x08, 0x00]);
        let total = (20 + tcp_len).min(65_535) as u16;
        p.extend_from_slice(&[0x45, 0]);
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
        let (c, s) = ([10, 73, 0, 1 + f.index], [10, 73, 1, 1 + f.index]);
        let (a, b) = if to_server { (c, s) } else { (s, c) };
        p.extend_from_slice(&a);
        p.extend_from_slice(&b);
    }
    p.extend_from_slice(&sp.to_be_bytes());
    p.extend_from_slice(&dp.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ack.to_be_bytes());
    p.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    p.extend_from_slice(data);
    p
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

struct Driver {
    table: FlowTable,
    sinks: Sinks,
    global_cap: usize,
    ts: Ts,
}

impl Driver {
    fn send(&mut self, frame: &[u8]) {
        self.ts = Ts(self.ts.0 + 1_000);
        self.sinks.stats.inc(Counter::Packets);
        if let Some(d) = decode::decode(linktype::ETHERNET, frame, &mut self.sinks.stats) {
            self.table
                .packet(self.ts, self.ts, &d, frame.len() as u32, &mut self.sinks);
        }
        assert!(
            self.table.reassembly_bytes() <= self.global_cap,
            "reassembly holds {} bytes over the global cap {}",
            self.table.reassembly_bytes(),
            self.global_cap
        );
    }
}

fn run(data: &[u8]) -> arbitrary::Result<()> {
    let mut u = Unstructured::new(data);
    let nflows = u.arbitrary::<u8>()? % 4 + 1;
    let mut flows = Vec::new();
    for index in 0..nflows {
        let port = PORTS[usize::from(u.arbitrary::<u8>()? % PORTS.len() as u8)];
        let client_port = u16::from_be_bytes([u.arbitrary()?, u.arbitrary()?]).max(1024);
        let c = u32::from_be_bytes([
            u.arbitrary()?,
            u.arbitrary()?,
            u.arbitrary()?,
            u.arbitrary()?,
        ]);
        let s = u32::from_be_bytes([
            u.arbitrary()?,
            u.arbitrary()?,
            u.arbitrary()?,
            u.arbitrary()?,
        ]);
        let flags = u.arbitrary::<u8>()?;
        flows.push((
            FlowSpec {
                server_port: port,
                client_port,
                seq: [c, s],
                vlan: flags & 2 != 0,
                v6: flags & 4 != 0,
                index,
            },
            flags & 1 != 0,
        ));
    }
    // Small caps so that they are hit: 1024 flows (the minimum), 4 KiB per direction, 64 KiB
    // in all.
    let limits = Limits {
        max_flows: 1_024,
        reassembly_flow_bytes: 4 << 10,
        reassembly_global_bytes: 64 << 10,
        ..Limits::default()
    };
    let mut d = Driver {
        table: FlowTable::new(&limits, &Timeouts::default(), 1),
        sinks: Sinks {
            events: EventSink::new(true),
            stats: WorkerStats::default(),
            app_stats: WorkerStats::default(),
            obs: ObsBuf::new(true),
        },
        global_cap: limits.reassembly_global_bytes,
        ts: Ts(1_700_000_000_000_000),
    };
    for (f, handshake) in &mut flows {
        if *handshake {
            let (c, s) = (f.seq[0], f.seq[1]);
            let syn = frame(f, true, SYN, c, 0, &[]);
            let synack = frame(f, false, SYN | ACK, s, c.wrapping_add(1), &[]);
            let ack = frame(f, true, ACK, c.wrapping_add(1), s.wrapping_add(1), &[]);
            for p in [syn, synack, ack] {
                d.send(&p);
            }
            f.seq = [c.wrapping_add(1), s.wrapping_add(1)];
        }
    }
    let mut count = 0;
    while !u.is_empty() && count < 2_000 {
        count += 1;
        let op = u.arbitrary::<u8>()?;
        let len = usize::from(u16::from_be_bytes([u.arbitrary()?, u.arbitrary()?]));
        let nf = flows.len();
        let f = &mut flows[usize::from(op & 3) % nf].0;
        let to_server = op & 4 == 0;
        let i = usize::from(!to_server);
        if op & 0x80 != 0 {
            d.ts = Ts(d.ts.0 + 100_000 * 1_000_000);
        }
        if op & 0x20 != 0 {
            f.seq[i] = f.seq[i].wrapping_add(len as u32);
            continue;
        }
        let bytes = u.bytes(len.min(u.len()))?;
        if op & 0x40 != 0 {
            let back = u32::from(u.arbitrary::<u8>().unwrap_or(0));
            f.seq[i] = f.seq[i].wrapping_sub(back);
        }
        let mut flags = ACK;
        if !bytes.is_empty() {
            flags |= PSH;
        }
        if op & 0x08 != 0 {
            flags |= FIN;
        }
        if op & 0x10 != 0 {
            flags |= RST;
        }
        let p = frame(f, to_server, flags, f.seq[i], f.seq[1 - i], bytes);
        f.seq[i] = f.seq[i].wrapping_add(bytes.len() as u32);
        if flags & FIN != 0 {
            f.seq[i] = f.seq[i].wrapping_add(1);
        }
        d.send(&p);
    }
    let end = Ts(d.ts.0 + 1_000);
    d.table.finish(end, &mut d.sinks);
    assert!(d.table.is_empty(), "flows left after finish");
    assert_eq!(
        d.table.reassembly_bytes(),
        0,
        "reassembly bytes left after finish"
    );

    let out = d.sinks.events.take();
    let mut flow_events = 0u64;
    for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let v: serde_json::Value = serde_json::from_slice(line).expect("event is JSON");
        let t = v["event_type"].as_str().expect("event_type");
        if t == "flow" && v["flow"]["reason"] != "active_timeout" {
            flow_events += 1;
        }
    }
    let s = &d.sinks.stats;
    let created = s.get(Counter::FlowsCreatedTcp)
        + s.get(Counter::FlowsCreatedUdp)
        + s.get(Counter::FlowsCreatedIcmp)
        + s.get(Counter::FlowsCreatedOther);
    assert_eq!(created, flow_events, "flows created vs final flow events");
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
