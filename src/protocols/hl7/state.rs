//! Per-flow HL7 state: one MLLP/bare deframer per direction, the bytes of the message under way
//! (up to the size cap), and the messages still waiting for their acknowledgement.
//!
//! Invariants: each direction's bytes go through its [`Deframer`] exactly once, in order; a
//! message's bytes are kept up to the cap and the rest only counted (kept in place when the
//! message arrives whole within one chunk of input, else copied into a per-direction buffer); every message the
//! deframer closes produces one event (an empty frame produces none: it is counted as
//! `no_msh`); a gap ends the message under way (its event carries `gap`) and the direction
//! resynchronises on the next start block or line-start `MSH`. Nothing here depends on how the
//! stream was cut into chunks, so any split of the same bytes gives the same events and counts.

use std::collections::VecDeque;

use medtap_parsers::hl7::{self, DeviceSource, Message, SegmentId};
use medtap_parsers::mllp::{Deframer, End, Event, Framing};

use super::events::Anomaly;
use super::log::{Context, Hl7Event};
use super::{KEEP_BUF_BYTES, MAX_MESSAGE_BYTES, MAX_PENDING_ACKS};
use crate::observe::{FactValue, Facts};
use crate::protocols::{AppContext, AppParser, Direction};
use crate::stats::{Family, HL7_ACK_CODES, HL7_MESSAGE_TYPES};
use crate::time::Ts;

/// The message under way in one direction.
struct Acc {
    in_msg: bool,
    framing: Framing,
    /// Its first bytes, at most the cap.
    buf: Vec<u8>,
    /// All its bytes so far, kept or not.
    total: u64,
    too_large: bool,
}

impl Acc {
    fn new() -> Acc {
        Acc {
            in_msg: false,
            framing: Framing::Mllp,
            buf: Vec::new(),
            total: 0,
            too_large: false,
        }
    }
}

struct Side {
    deframer: Deframer,
    acc: Acc,
}

/// A message that expects an acknowledgement.
struct Pending {
    /// Who sent it.
    dir: Direction,
    ts: Ts,
    /// Its control id followed by its type, if any (one allocation for both).
    text: String,
    /// Bytes of `text` that are the control id.
    id_len: usize,
    has_type: bool,
}

impl Pending {
    fn new(dir: Direction, ts: Ts, control_id: &str, message_type: Option<&str>) -> Pending {
        let mut text = String::with_capacity(control_id.len() + message_type.map_or(0, str::len));
        text.push_str(control_id);
        text.push_str(message_type.unwrap_or(""));
        Pending {
            dir,
            ts,
            text,
            id_len: control_id.len(),
            has_type: message_type.is_some(),
        }
    }

    fn control_id(&self) -> &str {
        self.text.get(..self.id_len).unwrap_or("")
    }

    fn message_type(&self) -> Option<&str> {
        self.has_type
            .then(|| self.text.get(self.id_len..))
            .flatten()
    }
}

/// What both directions share.
struct Shared {
    pending: VecDeque<Pending>,
    cap: usize,
    /// Hash of the device evidence last sent per direction (repeats are not sent).
    evidence_sent: [Option<u64>; 2],
}

/// The per-flow HL7 v2 state machine.
pub struct Hl7State {
    sides: [Side; 2],
    shared: Shared,
}

impl Default for Hl7State {
    fn default() -> Self {
        Hl7State::new()
    }
}

impl Hl7State {
    pub fn new() -> Hl7State {
        Hl7State::with_cap(MAX_MESSAGE_BYTES)
    }

    /// With another message-size cap (`limits.hl7_message_bytes`).
    pub fn with_cap(cap: usize) -> Hl7State {
        let side = || Side {
            deframer: Deframer::new(),
            acc: Acc::new(),
        };
        Hl7State {
            sides: [side(), side()],
            shared: Shared {
                pending: VecDeque::new(),
                cap,
                evidence_sent: [None; 2],
            },
        }
    }

    /// Ends the bare message under way in `dir`, if any (an MLLP frame waits for its end block).
    fn flush_bare(&mut self, dir: Direction, cx: &mut AppContext<'_>) {
        let side = &mut self.sides[dir.index()];
        if side.deframer.in_message() && !side.deframer.in_frame() {
            deframe(side, dir, &mut self.shared, cx, Op::Flush);
        }
    }
}

/// A call into a direction's deframer.
enum Op<'d> {
    Feed(&'d [u8]),
    Flush,
    Gap,
}

/// Runs `op` on `dir`'s deframer and handles what it reports. The bytes of a message that
/// arrives whole within the bytes fed are parsed where they are (`held`); only a message
/// spread over several calls is copied into the side's buffer.
fn deframe<'d>(
    side: &mut Side,
    dir: Direction,
    shared: &mut Shared,
    cx: &mut AppContext<'_>,
    op: Op<'d>,
) {
    let Side { deframer, acc } = side;
    let mut held: Option<&'d [u8]> = None;
    let mut f = |e| handle(e, dir, acc, &mut held, shared, cx);
    match op {
        Op::Feed(data) => deframer.feed(data, &mut f),
        Op::Flush => deframer.flush(&mut f),
        Op::Gap => deframer.gap(&mut f),
    }
    // The message goes on in the next bytes: keep what came of it.
    if let Some(h) = held {
        acc.buf.extend_from_slice(h);
    }
}

/// `held`: the bytes kept of the message under way that are still in the caller's input (the
/// message's first `Data`, while `acc.buf` is empty).
fn handle<'d>(
    ev: Event<'d>,
    dir: Direction,
    acc: &mut Acc,
    held: &mut Option<&'d [u8]>,
    shared: &mut Shared,
    cx: &mut AppContext<'_>,
) {
    match ev {
        Event::Start(framing) => {
            acc.in_msg = true;
            acc.framing = framing;
            acc.buf.clear();
            *held = None;
            acc.total = 0;
            acc.too_large = false;
        }
        Event::Data(b) => {
            acc.total = acc.total.saturating_add(b.len() as u64);
            if acc.buf.is_empty() && held.is_none() {
                let keep = b.len().min(shared.cap);
                if b.len() > keep {
                    acc.too_large = true;
                }
                *held = Some(&b[..keep]);
                return;
            }
            if let Some(h) = held.take() {
                acc.buf.extend_from_slice(h);
            }
            let room = shared.cap.saturating_sub(acc.buf.len());
            if b.len() > room {
                acc.too_large = true;
            }
            let b = &b[..b.len().min(room)];
            grow(&mut acc.buf, b.len(), shared.cap);
            acc.buf.extend_from_slice(b);
        }
        Event::Outside => Anomaly::OutsideFrame.count(cx.stats),
        Event::End(why) => {
            let msg = held.take();
            finish(why, dir, acc, msg, shared, cx)
        }
    }
}

/// Makes room in `buf` for `more` bytes. A message that outgrows [`SPILL_BYTES`] (a long ORU:
/// nearly every message is a few hundred bytes) gets room for the cap's worth of bytes (at most
/// [`RESERVE_BYTES`], the default cap) at once, so that its bytes are copied once rather than
/// again at every doubling (16 -> ... -> 256 KiB for a 200 KB message). Only the pages written
/// are touched; a buffer over [`KEEP_BUF_BYTES`] is freed when the message ends ([`finish`]).
fn grow(buf: &mut Vec<u8>, more: usize, cap: usize) {
    let need = buf.len().saturating_add(more);
    if need > buf.capacity() && need > SPILL_BYTES {
        let target = cap.min(need.max(RESERVE_BYTES)).max(need);
        buf.reserve_exact(target - buf.len());
    }
}

/// A message's buffer past this size is given room for the whole message ([`grow`]).
const SPILL_BYTES: usize = 8 << 10;
/// Room given at once to a message past [`SPILL_BYTES`], when the cap allows.
const RESERVE_BYTES: usize = 1 << 20;

/// A message ended: parse what was kept (`held`, or the side's buffer), count, pair
/// acknowledgements, emit the event.
fn finish(
    why: End,
    dir: Direction,
    acc: &mut Acc,
    held: Option<&[u8]>,
    shared: &mut Shared,
    cx: &mut AppContext<'_>,
) {
    acc.in_msg = false;
    let mut anomalies = Vec::new();
    match why {
        End::Unterminated => anomalies.push(Anomaly::UnterminatedFrame),
        End::Flushed if acc.framing == Framing::Mllp => anomalies.push(Anomaly::UnterminatedFrame),
        // Counted by on_gap, once per gap.
        End::Gap => anomalies.push(Anomaly::Gap),
        _ => {}
    }
    if acc.total == 0 {
        // An empty frame: nothing to report but the count.
        anomalies.push(Anomaly::NoMsh);
        for a in anomalies.into_iter().filter(|&a| a != Anomaly::Gap) {
            a.count(cx.stats);
        }
        return;
    }
    let m = hl7::parse_message(held.unwrap_or(&acc.buf), !acc.too_large);
    if acc.too_large {
        anomalies.push(Anomaly::TooLarge);
    }
    let a = &m.anomalies;
    for (on, kind) in [
        (a.no_msh, Anomaly::NoMsh),
        (a.bad_delimiters.is_some(), Anomaly::BadDelimiters),
        (a.malformed_segments > 0, Anomaly::Malformed),
        (a.non_cr_terminator, Anomaly::NonCrSegmentTerminator),
        (a.non_utf8, Anomaly::NonUtf8),
    ] {
        if on {
            anomalies.push(kind);
        }
    }
    for &a in &anomalies {
        if a != Anomaly::Gap {
            a.count(cx.stats);
        }
    }
    count_message(&m, cx);
    // `code^event`, formatted once (by the parser) for the event, the facts and the pending
    // acknowledgement.
    let message_type = m.msh.as_ref().and_then(|h| h.message_type.as_deref());
    let (latency_ms, acked) = pair_ack(&m, message_type, dir, shared, cx);
    let ctx = Context {
        framing: acc.framing,
        bytes: acc.total,
        anomalies,
        latency_ms,
        message_type,
        acked_message_type: acked.as_ref().and_then(Pending::message_type),
        limit: shared.cap as u64,
    };
    device_evidence(&m, dir, shared, cx);
    let ev = Hl7Event::new(&m, &ctx);
    cx.events
        .emit_with(cx.ts, "hl7", cx.flow, dir, |b| ev.write_json(b));
    cx.obs.facts(cx.ts, cx.flow, message_facts(&m, &ctx, dir));
    drop(m);
    acc.buf.clear();
    if acc.buf.capacity() > KEEP_BUF_BYTES {
        acc.buf = Vec::new();
    }
}

/// The sender's MSH-3/MSH-4 and the device identifiers (OBX-18, PRT) of a message, as
/// evidence about its sender; repeated only when they change (per flow and direction).
fn device_evidence(m: &Message<'_>, dir: Direction, shared: &mut Shared, cx: &mut AppContext<'_>) {
    use crate::fingerprint::evidence::cleaned;
    use crate::fingerprint::EvidenceKind as K;
    use std::borrow::Cow;
    if !cx.obs.enabled() {
        return;
    }
    let h = m.msh.as_ref();
    let app = h.and_then(|h| h.sending_application.as_deref());
    let fac = h.and_then(|h| h.sending_facility.as_deref());
    let key = ahash::RandomState::with_seeds(7, 4, 6, 5).hash_one((app, fac, &m.devices));
    if shared.evidence_sent[dir.index()] == Some(key) {
        return;
    }
    shared.evidence_sent[dir.index()] = Some(key);
    // The items `Evidence::new(k, v)` would make, as cleaned values (borrowed where they can
    // be), copied by the observation buffer only when they are news. At most the two MSH
    // values and the devices of the message: kept on the stack (two places when the message
    // names no device, as nearly every one does, rather than 18 to fill and drop).
    let (mac, ip) = cx.flow.sender(dir);
    if m.devices.is_empty() {
        let mut items: [(K, Cow<'_, str>, u8); 2] =
            std::array::from_fn(|_| (K::Hl7SendingApplication, Cow::Borrowed(""), 0));
        let n = msh_items(&mut items, app, fac);
        cx.obs.evidence_cleaned(cx.ts, mac, Some(ip), &items[..n]);
        return;
    }
    let mut items: [(K, Cow<'_, str>, u8); 2 + hl7::MAX_DEVICES] =
        std::array::from_fn(|_| (K::Hl7SendingApplication, Cow::Borrowed(""), 0));
    let mut n = msh_items(&mut items, app, fac);
    for d in &m.devices {
        let kind = if d.source == DeviceSource::Obx18 {
            K::Hl7ObxDevice
        } else {
            K::Hl7PrtDevice
        };
        let mut v = String::new();
        for (i, p) in [&d.id, &d.namespace, &d.universal_id, &d.universal_id_type]
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                v.push('^');
            }
            v.push_str(p.as_deref().unwrap_or(""));
        }
        let v = v.trim_end_matches('^');
        if !v.is_empty() {
            let v = Cow::Owned(cleaned(v).into_owned());
            if n < items.len() && !items[..n].iter().any(|(ik, iv, _)| *ik == kind && *iv == v) {
                items[n] = (kind, v, 100);
                n += 1;
            }
        }
    }
    cx.obs.evidence_cleaned(cx.ts, mac, Some(ip), &items[..n]);
}

/// Puts the evidence items of a message's MSH-3 and MSH-4 (those that are not blank) first in
/// `items`; returns how many.
fn msh_items<'m>(
    items: &mut [(
        crate::fingerprint::EvidenceKind,
        std::borrow::Cow<'m, str>,
        u8,
    )],
    app: Option<&'m str>,
    fac: Option<&'m str>,
) -> usize {
    use crate::fingerprint::evidence::cleaned;
    use crate::fingerprint::EvidenceKind as K;
    let mut n = 0;
    for (k, v) in [
        (K::Hl7SendingApplication, app),
        (K::Hl7SendingFacility, fac),
    ] {
        if let Some(v) = v.filter(|v| !v.trim().is_empty()) {
            items[n] = (k, cleaned(v), 100);
            n += 1;
        }
    }
    n
}

/// What detection rules and anomalies test about one message: who sent it (`from`: client or
/// server of the connection), its sending application and facility, type and ack code, whether a PID
/// segment or any PHI field was present (never the values), and whether its framing was broken.
fn message_facts(m: &Message<'_>, ctx: &Context<'_>, dir: Direction) -> Facts {
    let h = m.msh.as_ref();
    // Nine fields at most: room for them at once.
    let f = Facts {
        protocol: "hl7",
        fields: Vec::with_capacity(9),
    };
    let mut f = f
        .with(
            "from",
            FactValue::Str(
                if dir == Direction::ToServer {
                    "client"
                } else {
                    "server"
                }
                .into(),
            ),
        )
        .with(
            "pid_present",
            FactValue::Bool(m.segment_ids.contains(&SegmentId(*b"PID"))),
        )
        .with("phi_present", FactValue::Bool(!m.phi_fields.is_empty()))
        .with(
            "framing_error",
            FactValue::Bool(ctx.anomalies.iter().any(|a| {
                matches!(
                    a,
                    Anomaly::UnterminatedFrame
                        | Anomaly::NoMsh
                        | Anomaly::BadDelimiters
                        | Anomaly::Malformed
                )
            })),
        );
    if let Some(a) = h.and_then(|h| h.sending_application.as_deref()) {
        f = f.with("sending_application", FactValue::Str(a.to_string()));
    }
    if let Some(a) = h.and_then(|h| h.sending_facility.as_deref()) {
        f = f.with("sending_facility", FactValue::Str(a.to_string()));
    }
    if let Some(t) = ctx.message_type {
        f = f.with("message_type", FactValue::Str(t.to_string()));
    }
    if let Some(a) = m.msa.as_ref().and_then(|a| a.ack_code.as_deref()) {
        f = f.with("ack_code", FactValue::Str(a.to_string()));
    }
    f
}

fn count_message(m: &Message<'_>, cx: &mut AppContext<'_>) {
    let code = m.msh.as_ref().and_then(|h| h.message_code.as_deref());
    let i = code
        .and_then(|c| HL7_MESSAGE_TYPES.iter().position(|&t| t == c))
        .unwrap_or(usize::MAX);
    cx.stats.fam_inc(Family::Hl7Messages, i);
    if let Some(msa) = &m.msa {
        let code = msa.ack_code.as_deref();
        let i = code
            .and_then(|c| HL7_ACK_CODES.iter().position(|&t| t == c))
            .unwrap_or(usize::MAX);
        cx.stats.fam_inc(Family::Hl7Acks, i);
    }
}

/// An acknowledgement (a message with MSA) is paired with the message of the other direction
/// whose MSH-10 equals its MSA-2: returns the latency and that message (for its type). Any
/// other message with a control id waits for its acknowledgement.
fn pair_ack(
    m: &Message<'_>,
    message_type: Option<&str>,
    dir: Direction,
    shared: &mut Shared,
    cx: &mut AppContext<'_>,
) -> (Option<f64>, Option<Pending>) {
    if let Some(msa) = &m.msa {
        let Some(id) = msa.control_id.as_deref() else {
            return (None, None);
        };
        let found = shared
            .pending
            .iter()
            .position(|p| p.dir == dir.reverse() && p.control_id() == id);
        return match found.and_then(|k| shared.pending.remove(k)) {
            Some(p) => {
                let us = cx.ts.0.saturating_sub(p.ts.0).max(0);
                (Some(us as f64 / 1000.0), Some(p))
            }
            None => (None, None),
        };
    }
    let Some(h) = &m.msh else {
        return (None, None);
    };
    let Some(id) = h.control_id.as_deref() else {
        return (None, None);
    };
    if shared.pending.len() >= MAX_PENDING_ACKS {
        shared.pending.pop_front();
        Anomaly::Unacknowledged.count(cx.stats);
    }
    shared
        .pending
        .push_back(Pending::new(dir, cx.ts, id, message_type));
    (None, None)
}

impl AppParser for Hl7State {
    fn on_data(&mut self, dir: Direction, data: &[u8], cx: &mut AppContext<'_>) {
        if data.is_empty() {
            return;
        }
        // The peer speaks: a bare message it was sending is complete (request/response).
        self.flush_bare(dir.reverse(), cx);
        let side = &mut self.sides[dir.index()];
        deframe(side, dir, &mut self.shared, cx, Op::Feed(data));
    }

    fn on_gap(&mut self, dir: Direction, _len: u64, cx: &mut AppContext<'_>) {
        Anomaly::Gap.count(cx.stats);
        let side = &mut self.sides[dir.index()];
        deframe(side, dir, &mut self.shared, cx, Op::Gap);
    }

    fn on_close(&mut self, cx: &mut AppContext<'_>) {
        for dir in [Direction::ToServer, Direction::ToClient] {
            let side = &mut self.sides[dir.index()];
            deframe(side, dir, &mut self.shared, cx, Op::Flush);
        }
        for _ in self.shared.pending.drain(..) {
            Anomaly::Unacknowledged.count(cx.stats);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::FlowMeta;
    use crate::output::EventSink;
    use crate::stats::{WorkerStats, HL7_ERROR_KINDS};
    use serde_json::Value;

    /// One TCP payload of a capture: (direction, packet time, bytes).
    type Chunk = (Direction, Ts, Vec<u8>);

    /// The TCP connections of a pcaps/hl7 capture (classic pcap, Ethernet, IPv4), each as its
    /// payloads in capture order, `ToServer` being the side that sent the SYN. Exact
    /// retransmissions are dropped (the captures were made on a lossless bridge, so in-order
    /// delivery is the capture order; a test asserts no sequence jumps).
    fn connections(name: &str) -> Vec<(FlowMeta, Vec<Chunk>)> {
        let path = format!("{}/pcaps/hl7/{name}", env!("CARGO_MANIFEST_DIR"));
        let b = std::fs::read(&path).unwrap();
        assert_eq!(
            &b[..4],
            &[0xd4, 0xc3, 0xb2, 0xa1],
            "little-endian usec pcap"
        );
        assert_eq!(
            u32::from_le_bytes(b[20..24].try_into().unwrap()),
            1,
            "ethernet"
        );
        let mut conns: Vec<(FlowMeta, Vec<Chunk>, [Option<u32>; 2])> = Vec::new();
        let mut off = 24;
        while off + 16 <= b.len() {
            let le = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
            let ts = Ts::from_timeval(le(off) as i64, le(off + 4) as i64);
            let len = le(off + 8) as usize;
            let p = &b[off + 16..off + 16 + len];
            off += 16 + len;
            if p.len() < 34 || p[12..14] != [0x08, 0x00] || p[23] != 6 {
                continue;
            }
            let ip = &p[14..];
            let ihl = (ip[0] & 0x0f) as usize * 4;
            let tot = u16::from_be_bytes([ip[2], ip[3]]) as usize;
            let src: std::net::IpAddr =
                std::net::Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]).into();
            let dst: std::net::IpAddr =
                std::net::Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]).into();
            let tcp = &ip[ihl..tot];
            let sport = u16::from_be_bytes([tcp[0], tcp[1]]);
            let dport = u16::from_be_bytes([tcp[2], tcp[3]]);
            let seq = u32::from_be_bytes(tcp[4..8].try_into().unwrap());
            let doff = (tcp[12] >> 4) as usize * 4;
            let flags = tcp[13];
            let payload = &tcp[doff..];
            let k = conns.iter().position(|(m, _, _)| {
                (m.client == (src, sport) && m.server == (dst, dport))
                    || (m.client == (dst, dport) && m.server == (src, sport))
            });
            let k = match k {
                Some(k) => k,
                None => {
                    assert!(
                        flags & 0x02 != 0 && flags & 0x10 == 0,
                        "{name}: flow starts with SYN"
                    );
                    conns.push((
                        FlowMeta {
                            flow_id: conns.len() as u64 + 1,
                            proto: 6,
                            client: (src, sport),
                            server: (dst, dport),
                            vlan: [0, 0],
                            client_mac: [0; 6],
                            server_mac: [0; 6],
                            to_group: false,
                            app_proto: None,
                        },
                        Vec::new(),
                        [None, None],
                    ));
                    conns.len() - 1
                }
            };
            let (m, chunks, next) = &mut conns[k];
            let dir = if m.client == (src, sport) {
                Direction::ToServer
            } else {
                Direction::ToClient
            };
            let syn_fin = (flags & 0x03 != 0) as u32;
            let expect = next[dir.index()].get_or_insert(seq);
            if payload.is_empty() {
                if syn_fin == 1 && seq == *expect {
                    *expect = seq.wrapping_add(1);
                }
                continue;
            }
            if seq != *expect {
                assert!(
                    seq.wrapping_add(payload.len() as u32) == *expect,
                    "{name}: only exact retransmissions expected"
                );
                continue;
            }
            *expect = seq.wrapping_add(payload.len() as u32 + syn_fin);
            chunks.push((dir, ts, payload.to_vec()));
        }
        conns.into_iter().map(|(m, c, _)| (m, c)).collect()
    }

    struct Run {
        events: Vec<Value>,
        stats: WorkerStats,
    }

    impl Run {
        fn hl7(&self) -> Vec<&Value> {
            self.events.iter().map(|e| &e["hl7"]).collect()
        }
        fn err(&self, kind: &str) -> u64 {
            let i = HL7_ERROR_KINDS.iter().position(|&k| k == kind).unwrap();
            self.stats.fam_get(Family::Hl7Errors, i)
        }
        fn fam(&self, f: Family) -> Vec<u64> {
            (0..f.size()).map(|i| self.stats.fam_get(f, i)).collect()
        }
    }

    enum Step {
        Data(Direction, Ts, Vec<u8>),
        Gap(Direction, u64),
    }

    fn run_with(meta: &FlowMeta, steps: &[Step], mut st: Hl7State) -> Run {
        let mut events = EventSink::new(true);
        let mut stats = WorkerStats::default();
        let mut obs = crate::observe::ObsBuf::new(true);
        let mut last = Ts(0);
        for s in steps {
            let ts = match s {
                Step::Data(_, ts, _) => *ts,
                Step::Gap(..) => last,
            };
            last = ts;
            let mut cx = AppContext {
                ts,
                flow: meta,
                events: &mut events,
                stats: &mut stats,
                obs: &mut obs,
            };
            match s {
                Step::Data(d, _, b) => st.on_data(*d, b, &mut cx),
                Step::Gap(d, n) => st.on_gap(*d, *n, &mut cx),
            }
        }
        let mut cx = AppContext {
            ts: last,
            flow: meta,
            events: &mut events,
            stats: &mut stats,
            obs: &mut obs,
        };
        st.on_close(&mut cx);
        let out = events.take();
        let events = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).expect("json"))
            .collect();
        Run { events, stats }
    }

    fn run(meta: &FlowMeta, steps: &[Step]) -> Run {
        run_with(meta, steps, Hl7State::new())
    }

    fn whole(chunks: &[Chunk]) -> Vec<Step> {
        chunks
            .iter()
            .map(|(d, t, b)| Step::Data(*d, *t, b.clone()))
            .collect()
    }

    fn bytewise(chunks: &[Chunk]) -> Vec<Step> {
        chunks
            .iter()
            .flat_map(|(d, t, b)| b.iter().map(|&x| Step::Data(*d, *t, vec![x])))
            .collect()
    }

    /// Re-segments each run of same-direction payloads at random points (chunks of 1 to
    /// `max` bytes), keeping the order between directions (a reply never overtakes its request).
    fn random_splits(chunks: &[Chunk], seed: u64, max: usize) -> Vec<Step> {
        let mut x = seed | 1;
        let mut next = move || {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        let mut steps = Vec::new();
        let mut i = 0;
        while i < chunks.len() {
            let dir = chunks[i].0;
            let mut run: Vec<(Ts, u8)> = Vec::new();
            while i < chunks.len() && chunks[i].0 == dir {
                run.extend(chunks[i].2.iter().map(|&b| (chunks[i].1, b)));
                i += 1;
            }
            let mut k = 0;
            while k < run.len() {
                let n = (1 + next() as usize % max).min(run.len() - k);
                // The time of a chunk is that of its last byte's packet.
                let ts = run[k + n - 1].0;
                steps.push(Step::Data(
                    dir,
                    ts,
                    run[k..k + n].iter().map(|p| p.1).collect(),
                ));
                k += n;
            }
        }
        steps
    }

    const CAPTURES: &[&str] = &[
        "adt_oru_orm.pcap",
        "large_oru.pcap",
        "latin1.pcap",
        "missing_end_block.pcap",
        "nak.pcap",
        "nonstd_port.pcap",
    ];

    /// Every connection of every pcaps/hl7 capture: whole packets, one byte at a time, and
    /// random re-segmentations give the same events and the same counters.
    #[test]
    fn any_split_gives_the_same_events() {
        for name in CAPTURES {
            for (meta, chunks) in connections(name) {
                let reference = run(&meta, &whole(&chunks));
                assert!(!reference.events.is_empty(), "{name}: no event");
                if *name != "large_oru.pcap" {
                    let r = run(&meta, &bytewise(&chunks));
                    assert_eq!(r.events, reference.events, "{name}: byte at a time");
                    assert_eq!(r.stats.fam, reference.stats.fam, "{name}: byte at a time");
                }
                for seed in 1..12u64 {
                    let max = [1, 2, 5, 64, 1500, 70_000][(seed % 6) as usize];
                    let r = run(&meta, &random_splits(&chunks, seed, max));
                    assert_eq!(r.events, reference.events, "{name}: seed {seed}");
                    assert_eq!(r.stats.fam, reference.stats.fam, "{name}: seed {seed}");
                }
            }
        }
    }

    /// The large ORU one byte at a time (200 KB), apart from the test above for speed.
    #[test]
    fn large_oru_byte_at_a_time() {
        let (meta, chunks) = connections("large_oru.pcap").remove(0);
        let a = run(&meta, &whole(&chunks));
        let b = run(&meta, &bytewise(&chunks));
        assert_eq!(a.events, b.events);
        assert_eq!(a.stats.fam, b.stats.fam);
    }

    #[test]
    fn adt_oru_orm_events() {
        let conns = connections("adt_oru_orm.pcap");
        assert_eq!(conns.len(), 2);
        let (meta, chunks) = &conns[0];
        let r = run(meta, &whole(chunks));
        let h = r.hl7();
        assert_eq!(h.len(), 6);
        let a01 = h[0];
        assert_eq!(a01["framing"], "mllp");
        assert_eq!(a01["sending_application"], "TEST_EHR_ADT");
        assert_eq!(a01["receiving_application"], "TEST_ENGINE");
        assert_eq!(a01["message_type"], "ADT^A01");
        assert_eq!(a01["message_structure"], "ADT_A01");
        assert_eq!(a01["control_id"], "ADT00001");
        assert_eq!(a01["message_time"], "20240315101500");
        assert_eq!(a01["version"], "2.5.1");
        assert_eq!(
            a01["segments"],
            serde_json::json!(["MSH", "EVN", "PID", "NK1", "PV1", "IN1"])
        );
        assert_eq!(
            a01["phi_fields"],
            serde_json::json!([
                "PID-3", "PID-5", "PID-7", "PID-11", "PID-13", "PID-18", "PID-19", "NK1", "IN1"
            ])
        );
        assert!(a01.get("anomalies").is_none() && a01.get("ack_code").is_none());
        // Its sender is the EHR (the client).
        assert_eq!(r.events[0]["src_ip"], "10.77.2.20");
        assert_eq!(r.events[0]["dest_port"], 2575);
        let ack = h[1];
        assert_eq!(ack["ack_code"], "AA");
        assert_eq!(ack["ack_control_id"], "ADT00001");
        assert_eq!(ack["acked_message_type"], "ADT^A01");
        assert!(ack["latency_ms"].as_f64().unwrap() >= 0.0);
        assert_eq!(r.events[1]["src_ip"], "10.77.2.10");
        assert_eq!(r.events[1]["src_port"], 2575);
        assert_eq!(
            h.iter()
                .map(|e| e["control_id"].as_str().unwrap())
                .collect::<Vec<_>>(),
            [
                "ADT00001",
                "ACKADT00001",
                "ADT00002",
                "ACKADT00002",
                "ORM00001",
                "ACKORM00001"
            ]
        );
        // messages: ADT 2, ORM 1, ACK 3; acks: AA 3.
        let msg = r.fam(Family::Hl7Messages);
        assert_eq!(
            (msg[0], msg[2], msg[9], msg.iter().sum::<u64>()),
            (2, 1, 3, 6)
        );
        assert_eq!(r.fam(Family::Hl7Acks)[0], 3);
        assert_eq!(r.fam(Family::Hl7Errors).iter().sum::<u64>(), 0);

        // The pump's ORU: OBX-18 device identifiers.
        let (meta, chunks) = &conns[1];
        let r = run(meta, &whole(chunks));
        let oru = r.hl7()[0];
        assert_eq!(oru["sending_application"], "PUMP_GATEWAY");
        assert_eq!(
            oru["devices"],
            serde_json::json!([{"source": "OBX-18", "id": "SIGMA SPECTRUM", "namespace": "BAXTER",
                "universal_id": "5842E4FFFE770242", "universal_id_type": "EUI-64"}])
        );
        assert_eq!(r.hl7()[1]["ack_control_id"], "PUMP00001");
    }

    #[test]
    fn nak_events() {
        let (meta, chunks) = connections("nak.pcap").remove(0);
        let r = run(&meta, &whole(&chunks));
        let h = r.hl7();
        assert_eq!(h.len(), 4);
        assert_eq!(h[1]["ack_code"], "AE");
        assert_eq!(h[1]["acked_message_type"], "ADT^A04");
        assert_eq!(
            h[1]["errors"],
            serde_json::json!([{"location": "PID^1^3^1", "code": "101", "code_system": "HL70357", "severity": "E"}])
        );
        assert_eq!(h[2]["message_type"], "QRY^A19");
        assert_eq!(h[2]["phi_fields"], serde_json::json!(["QRD-8"]));
        assert_eq!(h[3]["ack_code"], "AR");
        assert_eq!(
            h[3]["errors"],
            serde_json::json!([{"code": "200", "code_system": "HL70357", "severity": "E"}])
        );
        // The message types: ADT, other (QRY), ACK x2; acks AE, AR.
        let msg = r.fam(Family::Hl7Messages);
        assert_eq!((msg[0], msg[9], msg[13]), (1, 2, 1));
        assert_eq!(r.fam(Family::Hl7Acks), [0, 1, 1, 0, 0, 0, 0]);
    }

    /// pcaps/hl7/missing_end_block.pcap: ADT00005 loses its end block; the start block of
    /// ADT00006 resynchronises. tshark 4.0 shows a single message here (it does not resync).
    #[test]
    fn missing_end_block() {
        let (meta, chunks) = connections("missing_end_block.pcap").remove(0);
        let r = run(&meta, &whole(&chunks));
        let h = r.hl7();
        assert_eq!(h.len(), 3);
        assert_eq!(h[0]["control_id"], "ADT00005");
        assert_eq!(h[0]["anomalies"], serde_json::json!(["unterminated_frame"]));
        assert_eq!(h[0]["segments"], serde_json::json!(["MSH", "EVN", "PID"]));
        assert_eq!(h[1]["control_id"], "ADT00006");
        assert!(h[1].get("anomalies").is_none());
        assert_eq!(h[2]["ack_control_id"], "ADT00006");
        assert_eq!(h[2]["acked_message_type"], "ADT^A08");
        assert_eq!(r.err("unterminated_frame"), 1);
        // ADT00005 was never acknowledged.
        assert_eq!(r.err("unacknowledged"), 1);
        assert_eq!(r.fam(Family::Hl7Errors).iter().sum::<u64>(), 2);
    }

    #[test]
    fn latin1_and_large_oru() {
        let (meta, chunks) = connections("latin1.pcap").remove(0);
        let r = run(&meta, &whole(&chunks));
        let a01 = r.hl7()[0];
        assert_eq!(a01["anomalies"], serde_json::json!(["non_utf8"]));
        assert_eq!(a01["charset"], "8859/1");
        assert_eq!(a01["sending_facility"], "KLINIKUM");
        assert_eq!(
            a01["phi_fields"],
            serde_json::json!(["PID-3", "PID-5", "PID-7", "PID-11"])
        );
        assert_eq!(r.err("non_utf8"), 1);

        let (meta, chunks) = connections("large_oru.pcap").remove(0);
        assert!(chunks.len() > 100);
        let r = run(&meta, &whole(&chunks));
        let oru = r.hl7()[0];
        assert_eq!(oru["segment_count"], 1204);
        assert_eq!(
            oru["segments"].as_array().unwrap().len(),
            hl7::MAX_SEGMENT_IDS
        );
        assert_eq!(oru["bytes"], 200_883);
        assert_eq!(oru["devices"][0]["universal_id"], "0009FBFFFE770205");
        assert_eq!(oru["devices"].as_array().unwrap().len(), 1);
        assert_eq!(r.hl7()[1]["ack_control_id"], "ORU00001");
        assert!(oru.get("too_large").is_none());
    }

    /// Over the size cap: the head is parsed, the rest skipped, the event says so with the
    /// value and the limit, and the acknowledgement is still paired.
    #[test]
    fn message_over_the_cap() {
        let (meta, chunks) = connections("large_oru.pcap").remove(0);
        let cap = 64 << 10;
        let r = run_with(&meta, &whole(&chunks), Hl7State::with_cap(cap));
        let oru = r.hl7()[0];
        assert_eq!(
            oru["too_large"],
            serde_json::json!({"value": 200_883, "limit": cap})
        );
        assert_eq!(oru["anomalies"], serde_json::json!(["too_large"]));
        assert_eq!(oru["control_id"], "ORU00001");
        assert!(oru["segment_count"].as_u64().unwrap() < 1204);
        assert_eq!(r.hl7()[1]["acked_message_type"], "ORU^R01");
        assert_eq!(r.err("too_large"), 1);
        let r2 = run_with(&meta, &bytewise(&chunks), Hl7State::with_cap(cap));
        assert_eq!(r2.events, r.events);
    }

    #[test]
    fn gap_ends_the_message_and_resyncs() {
        let (meta, chunks) = connections("adt_oru_orm.pcap").remove(0);
        // The ADT^A01 (first client payload) loses its middle; everything after is intact.
        let first = &chunks[0];
        let mut steps = vec![
            Step::Data(first.0, first.1, first.2[..200].to_vec()),
            Step::Gap(first.0, 100),
            Step::Data(first.0, first.1, first.2[300..].to_vec()),
        ];
        steps.extend(whole(&chunks[1..]));
        let r = run(&meta, &steps);
        let h = r.hl7();
        assert_eq!(h[0]["control_id"], "ADT00001");
        assert_eq!(h[0]["anomalies"], serde_json::json!(["gap"]));
        // The engine's ACK of ADT00001 still pairs; the rest are whole.
        assert_eq!(h[1]["ack_control_id"], "ADT00001");
        assert!(h[1]["latency_ms"].is_number());
        assert_eq!(h.len(), 6);
        assert_eq!(r.err("gap"), 1);
        assert_eq!(r.fam(Family::Hl7Errors).iter().sum::<u64>(), 1);
    }

    /// HL7 straight on TCP (no MLLP), LF terminators: the same header fields.
    #[test]
    fn bare_stream() {
        let (meta, chunks) = connections("adt_oru_orm.pcap").remove(0);
        let strip = |b: &[u8]| -> Vec<u8> {
            b.iter()
                .filter(|&&x| x != 0x0b && x != 0x1c)
                .map(|&x| if x == b'\r' { b'\n' } else { x })
                .collect()
        };
        let bare: Vec<Chunk> = chunks.iter().map(|(d, t, b)| (*d, *t, strip(b))).collect();
        let mllp = run(&meta, &whole(&chunks));
        for steps in [whole(&bare), bytewise(&bare)] {
            let r = run(&meta, &steps);
            assert_eq!(r.events.len(), 6);
            for (a, b) in r.hl7().iter().zip(mllp.hl7()) {
                assert_eq!(a["framing"], "bare");
                assert_eq!(
                    a["anomalies"],
                    serde_json::json!(["non_cr_segment_terminator"])
                );
                for k in [
                    "sending_application",
                    "message_type",
                    "control_id",
                    "ack_code",
                    "segments",
                    "phi_fields",
                    "acked_message_type",
                ] {
                    assert_eq!(a[k], b[k], "{k}");
                }
            }
            assert_eq!(r.err("non_cr_segment_terminator"), 6);
            assert_eq!(r.err("outside_frame"), 0);
        }
    }

    #[test]
    fn outside_bytes_and_empty_frames() {
        let (meta, chunks) = connections("nonstd_port.pcap").remove(0);
        let mut steps = whole(&chunks);
        // Junk after the ACK, an empty frame, and a frame that never ends.
        steps.push(Step::Data(
            Direction::ToClient,
            Ts(0),
            b"\n\n\x0b\x1c\r junk".to_vec(),
        ));
        steps.push(Step::Data(
            Direction::ToServer,
            Ts(0),
            b"\x0bMSH|^~\\&|X|Y|||||ORU^R01|Z|P|2.5".to_vec(),
        ));
        let r = run(&meta, &steps);
        assert_eq!(r.err("outside_frame"), 2);
        assert_eq!(r.err("no_msh"), 1);
        let h = r.hl7();
        assert_eq!(h.len(), 3);
        assert_eq!(h[2]["control_id"], "Z");
        assert_eq!(h[2]["anomalies"], serde_json::json!(["unterminated_frame"]));
        assert_eq!(r.err("unterminated_frame"), 1);
        assert_eq!(r.err("unacknowledged"), 1);
    }

    #[test]
    fn pending_acks_are_capped() {
        let meta = connections("nonstd_port.pcap").remove(0).0;
        let mut steps = Vec::new();
        for i in 0..MAX_PENDING_ACKS + 10 {
            let m = format!("\x0bMSH|^~\\&|A|B|C|D|1||ADT^A01|C{i}|P|2.5\r\x1c\r");
            steps.push(Step::Data(
                Direction::ToServer,
                Ts(i as i64),
                m.into_bytes(),
            ));
        }
        // The ack of the last one still pairs.
        let last = MAX_PENDING_ACKS + 9;
        let ack = format!("\x0bMSH|^~\\&|C|D|A|B|1||ACK|K|P|2.5\rMSA|AA|C{last}\r\x1c\r");
        steps.push(Step::Data(
            Direction::ToClient,
            Ts(1_000_000),
            ack.into_bytes(),
        ));
        let r = run(&meta, &steps);
        assert_eq!(r.hl7().last().unwrap()["latency_ms"], 1000.0 - 0.073);
        assert_eq!(r.err("unacknowledged"), MAX_PENDING_ACKS as u64 + 9);
    }

    #[test]
    fn probe_any_port() {
        use crate::protocols::detect::Probe;
        let (_, chunks) = connections("nonstd_port.pcap").remove(0);
        let first = &chunks[0].2;
        assert_eq!(
            super::super::probe(Direction::ToServer, &first[..5]),
            Probe::Match(crate::protocols::AppProto::Hl7)
        );
        assert_eq!(
            super::super::probe(Direction::ToServer, &first[..3]),
            Probe::NeedMore
        );
        assert_eq!(
            super::super::probe(Direction::ToServer, b"\x16\x03\x01"),
            Probe::No
        );
    }
}
