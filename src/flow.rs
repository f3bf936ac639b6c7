//! The flow table: a bounded map from the direction-independent 5-tuple (+VLAN) to flow state,
//! owned by one worker (workers own disjoint flows, so nothing here is shared or locked).
//!
//! Per packet: find or create the flow (client = SYN sender, else guessed from ports), count
//! packets and bytes each way, run TCP through [`crate::reassembly`], hand in-order bytes and
//! gaps to protocol detection and then to the protocol's streaming parser.
//!
//! Flows end on TCP close (after `tcp_closed` seconds, so late ACKs still join), on idle timeout,
//! when a new SYN reuses a closed tuple, when the table is full (the least recently active
//! eighth goes, counted as `table_full`), and at the end of the capture. Every end emits one
//! `flow` event. Timeouts run on packet time, checked on lookup and by a sweep once per second
//! of packet time, so one worker and many workers end the same flows with the same counts.

use std::net::IpAddr;

use hashbrown::HashTable;
use serde::Serialize;

use crate::decode::{Decoded, L4};
use crate::limits::{Limits, Timeouts};
use crate::observe::{flow_state, ObsBuf, Observation};
use crate::output::EventSink;
use crate::protocols::detect::{self, Probe};
use crate::protocols::{AppContext, AppParser, AppProto, Direction};
use crate::reassembly::{Chunk, GlobalBudget, Stream};
use crate::stats::{Counter, WorkerStats};
use crate::time::Ts;

/// What a flow is, oriented: `client` opened the connection (SYN sender, or guessed by port).
#[derive(Debug, Clone)]
pub struct FlowMeta {
    pub flow_id: u64,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...).
    pub proto: u8,
    pub client: (IpAddr, u16),
    pub server: (IpAddr, u16),
    /// Outer and inner 802.1Q VLAN ids, 0 = none.
    pub vlan: [u16; 2],
    pub client_mac: [u8; 6],
    pub server_mac: [u8; 6],
    /// The client's first packet went to an Ethernet group address (broadcast or multicast):
    /// the "server" is then no host of its own (NetBIOS name registrations, SSDP, mDNS).
    pub to_group: bool,
    pub app_proto: Option<AppProto>,
}

impl FlowMeta {
    pub fn vlan_outer(&self) -> Option<u16> {
        (self.vlan[0] != 0).then_some(self.vlan[0])
    }
    pub fn vlan_inner(&self) -> Option<u16> {
        (self.vlan[1] != 0).then_some(self.vlan[1])
    }
    pub fn has_ports(&self) -> bool {
        matches!(self.proto, 6 | 17 | 132)
    }
    pub fn proto_name(&self) -> &'static str {
        proto_name(self.proto)
    }
    /// MAC and IP of the side that sends in `dir` (the MAC is all zeros until that side sent).
    pub fn sender(&self, dir: Direction) -> ([u8; 6], IpAddr) {
        match dir {
            Direction::ToServer => (self.client_mac, self.client.0),
            Direction::ToClient => (self.server_mac, self.server.0),
        }
    }
}

/// EVE spelling of an IP protocol number.
pub fn proto_name(p: u8) -> &'static str {
    match p {
        1 => "ICMP",
        2 => "IGMP",
        6 => "TCP",
        17 => "UDP",
        47 => "GRE",
        50 => "ESP",
        58 => "IPv6-ICMP",
        132 => "SCTP",
        _ => "other",
    }
}

/// Direction-independent flow key: the lower (address, port) endpoint first. Addresses are
/// kept as 128-bit integers (IPv4 in the low 32 bits, with a family flag), so comparing and
/// hashing a key is a few word operations on the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowKey {
    lo: u128,
    hi: u128,
    lo_port: u16,
    hi_port: u16,
    proto: u8,
    v6: bool,
    vlan: [u16; 2],
}

impl std::hash::Hash for FlowKey {
    /// Three writes into the keyed hasher instead of eight (this is per packet). The whole key
    /// goes through the keyed hash, so colliding keys cannot be chosen from outside.
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        // (Also what `flow_id` is made from, with fixed seeds: a change here changes every
        // flow_id.)
        h.write_u128(self.lo);
        h.write_u128(self.hi);
        h.write_u64(
            u64::from(self.lo_port)
                | u64::from(self.hi_port) << 16
                | u64::from(self.proto) << 32
                | u64::from(self.v6) << 40
                | u64::from(self.vlan[0]) << 41
                | u64::from(self.vlan[1] & 0x3ff) << 53,
        );
        if self.vlan[1] > 0x3ff {
            h.write_u16(self.vlan[1]);
        }
    }
}

fn ip_bits(ip: &IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(*a)),
        IpAddr::V6(a) => u128::from(*a),
    }
}

impl FlowKey {
    #[inline]
    pub fn of(d: &Decoded<'_>) -> FlowKey {
        if let (IpAddr::V4(s), IpAddr::V4(t)) = (d.src_ip, d.dst_ip) {
            // The same order as below, compared as one word: address above port.
            let a = u64::from(u32::from(s)) << 16 | u64::from(d.src_port);
            let b = u64::from(u32::from(t)) << 16 | u64::from(d.dst_port);
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            return FlowKey {
                lo: u128::from(lo >> 16),
                hi: u128::from(hi >> 16),
                lo_port: lo as u16,
                hi_port: hi as u16,
                proto: d.proto,
                v6: false,
                vlan: d.vlan,
            };
        }
        FlowKey::of_any(d)
    }

    /// [`FlowKey::of`] for any address family (a test holds the two equal for IPv4).
    fn of_any(d: &Decoded<'_>) -> FlowKey {
        let a = (ip_bits(&d.src_ip), d.src_port);
        let b = (ip_bits(&d.dst_ip), d.dst_port);
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        FlowKey {
            lo: lo.0,
            hi: hi.0,
            lo_port: lo.1,
            hi_port: hi.1,
            proto: d.proto,
            v6: d.src_ip.is_ipv6(),
            vlan: d.vlan,
        }
    }
}

/// Why a flow ended (the `reason` of its `flow` event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    TcpClose,
    IdleTimeout,
    ActiveTimeout,
    TableFull,
    Shutdown,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::TcpClose => "tcp_close",
            EndReason::IdleTimeout => "timeout",
            EndReason::ActiveTimeout => "active_timeout",
            EndReason::TableFull => "table_full",
            EndReason::Shutdown => "shutdown",
        }
    }
    fn counter(self) -> Counter {
        match self {
            EndReason::TcpClose => Counter::FlowsEndedTcpClose,
            EndReason::IdleTimeout => Counter::FlowsEndedIdleTimeout,
            EndReason::ActiveTimeout => Counter::FlowsEndedActiveTimeout,
            EndReason::TableFull => Counter::FlowsEndedTableFull,
            EndReason::Shutdown => Counter::FlowsEndedShutdown,
        }
    }
}

/// TCP connection state of one flow.
struct TcpFlow {
    streams: [Stream; 2],
    syn: [bool; 2],
    synack: bool,
    fin: [bool; 2],
    rst: bool,
    /// Reassembly was stopped: nobody needs the bytes.
    stopped: bool,
    gaps: u32,
    gap_bytes: u64,
    /// The first reassembly cap this flow hit (reported once, in its `flow` event).
    cap_hit: Option<CapHitRecord>,
}

/// A reassembly byte cap hit by a flow: which cap, the bytes the stream wanted to hold
/// (held plus the refused segment) and the cap.
#[derive(Serialize, Clone, Copy, Debug, PartialEq)]
struct CapHitRecord {
    cap: &'static str,
    value: u64,
    limit: u64,
}

impl TcpFlow {
    fn closed(&self) -> bool {
        self.rst || (self.fin[0] && self.fin[1])
    }
}

/// How often (packet time) the table is swept for idle flows. Timeouts are also checked on
/// every lookup, so this bounds how long an idle flow holds memory past its timeout, and how
/// far behind the capture clock the central thread's release point (`swept`, see
/// [`crate::intel`]'s reordering) lags: the central thread holds every observation newer than
/// it. At 10 s that was up to 10 s of observations held (~13 MiB of a 72 MiB peak on the
/// benchmark) and released in bursts, and the last 10 s all processed after the last packet;
/// a sweep reads every live flow's [`Timer`] (32 bytes each, in one array), which once a second
/// of packet time is cheap next to the rest.
const SWEEP_EVERY_SECS: u64 = 1;

/// The idle timeouts of [`Timeouts`] in microseconds of packet time (what [`Ts`] counts), and
/// the shortest of them, computed once: they are compared on every packet and by every sweep.
#[derive(Debug, Clone, Copy)]
struct IdleUs {
    /// By [`IdleClass`] `as usize`, then `i64::MAX` for a free [`Timer`] (which so never
    /// expires): a sweep indexes it instead of matching on each flow's class (a mispredicted
    /// branch a flow, most of a sweep's time).
    by_class: [i64; IDLE_CLASSES + 1],
    shortest: i64,
    /// The active timeout; 0 = never.
    active: i64,
}

impl IdleUs {
    fn of(t: &Timeouts) -> IdleUs {
        let us = |secs: u64| (secs as i64).saturating_mul(1_000_000);
        // In the order of `IdleClass`'s values.
        let idle = [t.tcp_new, t.tcp_established, t.tcp_closed, t.udp, t.other];
        let mut by_class = [i64::MAX; IDLE_CLASSES + 1];
        for (to, secs) in by_class.iter_mut().zip(idle) {
            *to = us(secs);
        }
        IdleUs {
            by_class,
            shortest: us(idle.into_iter().min().unwrap_or(0)),
            active: us(t.active),
        }
    }

    /// The idle timeout of a flow in state `c`.
    #[inline]
    fn of_class(&self, c: IdleClass) -> i64 {
        self.by_class[c as usize]
    }
}

/// Which idle timeout applies to a flow ([`idle_class`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum IdleClass {
    TcpNew = 0,
    TcpEstablished = 1,
    TcpClosed = 2,
    Udp = 3,
    Other = 4,
}

/// Values of [`IdleClass`]; [`Timer::class`] of a free slot.
const IDLE_CLASSES: usize = 5;

/// What a sweep reads of one live flow, kept apart from the flows in one dense array
/// ([`FlowTable::timers`], indexed by [`Flow::slot`]). A sweep once a second of packet time
/// walked every flow's table entry and, for a flow idle past the shortest timeout, its TCP state
/// behind a pointer: two cache misses a live flow a second (about a tenth of the worker's time
/// on bench.pcap, though a few instructions). The array is 32 bytes a flow, read in order.
#[derive(Debug, Clone, Copy)]
struct Timer {
    /// [`Flow::seen`] of the flow in this slot.
    seen: Ts,
    /// Its [`IdleClass`] as of its last packet, or [`IDLE_CLASSES`]: a free slot.
    class: u8,
    /// Its id and key hash, to find it in the table.
    flow_id: u64,
    hash: u64,
}

/// The caps of [`Limits`] the protocol layer needs, copied into each flow table.
#[derive(Debug, Clone, Copy)]
pub struct AppCaps {
    /// [`Limits::detect_bytes`].
    pub detect_bytes: usize,
    /// [`Limits::dicom_pdu_kept`].
    pub dicom_pdu_kept: usize,
    /// [`Limits::hl7_message_bytes`].
    pub hl7_message_bytes: usize,
}

impl AppCaps {
    pub fn of(l: &Limits) -> AppCaps {
        AppCaps {
            detect_bytes: l.detect_bytes,
            dicom_pdu_kept: l.dicom_pdu_kept,
            hl7_message_bytes: l.hl7_message_bytes,
        }
    }
}

/// Bytes buffered while a probe needs more than one chunk to decide.
const PROBE_BUF: usize = 512;

enum App {
    Detecting {
        result: [Option<Probe>; 2],
        buf: [Vec<u8>; 2],
        seen: [usize; 2],
    },
    Parsing(Box<dyn AppParser>),
    Done,
}

pub struct Flow {
    pub meta: FlowMeta,
    /// Packet times of the first and last packet (what events report).
    pub first: Ts,
    pub last: Ts,
    /// Capture clock (the largest packet time seen so far) at the last packet: what timeouts
    /// run on, so a capture whose time steps backwards (files of other dates) ages flows sanely.
    seen: Ts,
    /// Start of the current reporting period (active timeout).
    period_start: Ts,
    /// Capture clock at `period_start`.
    period_clock: Ts,
    pkts: [u64; 2],
    bytes: [u64; 2],
    tcp: Option<Box<TcpFlow>>,
    app: App,
    /// Its entry in [`FlowTable::timers`].
    slot: u32,
}

#[derive(Serialize)]
struct FlowRecord<'a> {
    pkts_toserver: u64,
    pkts_toclient: u64,
    bytes_toserver: u64,
    bytes_toclient: u64,
    start: Ts,
    end: Ts,
    age: i64,
    state: &'a str,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp: Option<TcpRecord>,
}

#[derive(Serialize)]
struct TcpRecord {
    syn: bool,
    synack: bool,
    fin: bool,
    rst: bool,
    #[serde(skip_serializing_if = "is_zero32")]
    gaps: u32,
    #[serde(skip_serializing_if = "is_zero64")]
    gap_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    reassembly_cap: Option<CapHitRecord>,
}

fn is_zero32(v: &u32) -> bool {
    *v == 0
}
fn is_zero64(v: &u64) -> bool {
    *v == 0
}

impl FlowRecord<'_> {
    /// The JSON object `serde_json` makes of the record (a test holds them equal), written by
    /// hand: one `flow` event per flow makes this the most frequent event. `state` and `reason`
    /// are fixed ASCII words, so nothing needs escaping.
    fn write_json(&self, b: &mut Vec<u8>) {
        use crate::output::{push_i64, push_u64};
        b.extend_from_slice(b"{\"pkts_toserver\":");
        push_u64(b, self.pkts_toserver);
        b.extend_from_slice(b",\"pkts_toclient\":");
        push_u64(b, self.pkts_toclient);
        b.extend_from_slice(b",\"bytes_toserver\":");
        push_u64(b, self.bytes_toserver);
        b.extend_from_slice(b",\"bytes_toclient\":");
        push_u64(b, self.bytes_toclient);
        b.extend_from_slice(b",\"start\":\"");
        self.start.push_rfc3339(b);
        b.extend_from_slice(b"\",\"end\":\"");
        self.end.push_rfc3339(b);
        b.extend_from_slice(b"\",\"age\":");
        push_i64(b, self.age);
        b.extend_from_slice(b",\"state\":\"");
        b.extend_from_slice(self.state.as_bytes());
        b.extend_from_slice(b"\",\"reason\":\"");
        b.extend_from_slice(self.reason.as_bytes());
        b.push(b'"');
        if let Some(t) = &self.tcp {
            let flag = |b: &mut Vec<u8>, name: &[u8], v: bool| {
                b.extend_from_slice(name);
                b.extend_from_slice(if v { b"true" } else { b"false" });
            };
            flag(b, b",\"tcp\":{\"syn\":", t.syn);
            flag(b, b",\"synack\":", t.synack);
            flag(b, b",\"fin\":", t.fin);
            flag(b, b",\"rst\":", t.rst);
            if t.gaps != 0 {
                b.extend_from_slice(b",\"gaps\":");
                push_u64(b, u64::from(t.gaps));
            }
            if t.gap_bytes != 0 {
                b.extend_from_slice(b",\"gap_bytes\":");
                push_u64(b, t.gap_bytes);
            }
            if let Some(c) = &t.reassembly_cap {
                b.extend_from_slice(b",\"reassembly_cap\":{\"cap\":\"");
                b.extend_from_slice(c.cap.as_bytes());
                b.extend_from_slice(b"\",\"value\":");
                push_u64(b, c.value);
                b.extend_from_slice(b",\"limit\":");
                push_u64(b, c.limit);
                b.push(b'}');
            }
            b.push(b'}');
        }
        b.push(b'}');
    }
}

/// Ports that name a server even above 1024 (a hint for midstream pickups only).
fn is_service_port(p: u16) -> bool {
    p < 1024
        || matches!(
            p,
            1433 | 1521
                | 2575
                | 2762
                | 3306
                | 3389
                | 4242
                | 5432
                | 5900
                | 6661
                | 8080
                | 8443
                | 11112
        )
}

/// Outputs and counters one worker's flow table writes to.
pub struct Sinks {
    pub events: EventSink,
    /// Counters of the flow and reassembly layers.
    pub stats: WorkerStats,
    /// Counters of the protocol layer (kept apart so that reassembly callbacks can borrow both).
    pub app_stats: WorkerStats,
    /// Observations for the central thread ([`crate::observe`]).
    pub obs: ObsBuf,
}

pub struct FlowTable {
    /// Flows by key. A `HashTable` so that a packet's key is hashed once (keyed `ahash`).
    map: HashTable<(FlowKey, Flow)>,
    key_hasher: ahash::RandomState,
    cap: usize,
    reasm_flow_cap: usize,
    caps: AppCaps,
    timeouts: IdleUs,
    budget: GlobalBudget,
    next_sweep: Ts,
    /// The clock of the last sweep: every flow left would expire at or after it.
    swept: Ts,
    hasher: ahash::RandomState,
    /// The most flows this table held at once (the memory budget is per live flow).
    peak: usize,
    /// Each live flow's idle state, by [`Flow::slot`] (see [`Timer`]); at most as long as the
    /// table ever was, its free slots listed in `free_timers`.
    timers: Vec<Timer>,
    free_timers: Vec<u32>,
}

impl FlowTable {
    /// A table with this worker's share of the caps.
    pub fn new(limits: &Limits, timeouts: &Timeouts, workers: usize) -> FlowTable {
        FlowTable {
            map: HashTable::new(),
            key_hasher: ahash::RandomState::new(),
            cap: Limits::per_worker(limits.max_flows, workers),
            reasm_flow_cap: limits.reassembly_flow_bytes,
            caps: AppCaps::of(limits),
            timeouts: IdleUs::of(timeouts),
            budget: GlobalBudget::new(Limits::per_worker(limits.reassembly_global_bytes, workers)),
            next_sweep: Ts::ZERO,
            swept: Ts::ZERO,
            hasher: ahash::RandomState::with_seeds(0x6d65, 0x6474, 0x6170, 0x0001),
            peak: 0,
            timers: Vec::new(),
            free_timers: Vec::new(),
        }
    }

    /// The most flows held at once so far.
    pub fn peak(&self) -> usize {
        self.peak
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn reassembly_bytes(&self) -> usize {
        self.budget.used
    }

    /// One decoded packet. `wire_len` is the frame's original length (what `bytes` count).
    pub fn packet(&mut self, ts: Ts, clock: Ts, d: &Decoded<'_>, wire_len: u32, out: &mut Sinks) {
        self.sweep_if_due(clock, out);
        if matches!(d.l4, L4::Other) && matches!(d.proto, 6 | 17) {
            // A later IP fragment or a transport header too short to read: no ports, no flow.
            return;
        }
        let key = FlowKey::of(d);
        let tcp = match &d.l4 {
            L4::Tcp(t) => Some(t),
            _ => None,
        };

        // End a flow that timed out, or a closed TCP flow whose tuple a new SYN reuses.
        // One probe of the table: the flow found is used in place, or ended and replaced.
        let hash = self.key_hasher.hash_one(key);
        let ended = match self.map.find_entry(hash, |e| e.0 == key) {
            Ok(entry) => {
                let f = &entry.get().1;
                let reuse = tcp.is_some_and(|t| t.syn && !t.ack_flag)
                    && f.tcp.as_ref().is_some_and(|tf| tf.closed());
                let reason = if is_expired(&self.timeouts, f, clock) {
                    Some(EndReason::IdleTimeout)
                } else if reuse {
                    Some(EndReason::TcpClose)
                } else {
                    None
                };
                match reason {
                    None => Ok(&mut entry.into_mut().1),
                    Some(r) => Err(Some((entry.remove().0 .1, r))),
                }
            }
            Err(_) => Err(None),
        };
        let flow = match ended {
            Ok(flow) => flow,
            Err(ended) => {
                if let Some((f, r)) = ended {
                    self.end(f, r, out);
                }
                if self.map.len() >= self.cap {
                    self.make_room(clock, out);
                }
                let mut flow = self.new_flow(ts, clock, d, out);
                flow.slot = self.add_timer(Timer {
                    seen: clock,
                    class: idle_class(&flow) as u8,
                    flow_id: flow.meta.flow_id,
                    hash,
                });
                self.peak = self.peak.max(self.map.len() + 1);
                let hasher = &self.key_hasher;
                &mut self
                    .map
                    .insert_unique(hash, (key, flow), |e| hasher.hash_one(e.0))
                    .into_mut()
                    .1
            }
        };
        // Active timeout: report the period so far and count this packet afresh.
        if self.timeouts.active > 0 && longer_than(clock, flow.period_clock, self.timeouts.active) {
            emit_flow(flow, EndReason::ActiveTimeout, out);
            out.stats.inc(Counter::FlowsEndedActiveTimeout);
            flow.period_start = ts;
            flow.period_clock = clock;
            flow.pkts = [0; 2];
            flow.bytes = [0; 2];
        }
        let dir = if (d.src_ip, d.src_port) == flow.meta.client {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let i = dir.index();
        flow.last = ts;
        flow.seen = clock;
        flow.pkts[i] += 1;
        flow.bytes[i] += u64::from(wire_len);
        if dir == Direction::ToServer && flow.meta.client_mac == [0; 6] {
            flow.meta.client_mac = d.src_mac;
        } else if dir == Direction::ToClient && flow.meta.server_mac == [0; 6] {
            flow.meta.server_mac = d.src_mac;
        }

        if let (Some(t), Some(tf)) = (tcp, flow.tcp.as_mut()) {
            if t.syn {
                tf.syn[i] = true;
                if t.ack_flag {
                    tf.synack = true;
                }
            }
            if t.fin {
                tf.fin[i] = true;
            }
            if t.rst {
                tf.rst = true;
            }
        }
        // Everything the flow's idle timeout depends on is set: what a sweep reads.
        let timer = &mut self.timers[flow.slot as usize];
        timer.seen = clock;
        timer.class = idle_class(flow) as u8;

        match tcp {
            Some(t) => {
                let Flow { tcp, app, meta, .. } = flow;
                let Some(tf) = tcp.as_mut() else { return };
                if tf.stopped {
                    return;
                }
                let [s0, s1] = &mut tf.streams;
                let (this, other) = if i == 0 { (s0, s1) } else { (s1, s0) };
                // A bare ACK of bytes already delivered (about half of all TCP packets) changes
                // no stream and reaches no parser: neither call is made.
                let segment = !Stream::segment_is_noop(t.syn, t.fin, t.rst, d.payload);
                let ack = t.ack_flag && !other.ack_is_noop(t.ack);
                if !segment && !ack {
                    return;
                }
                let Sinks {
                    events,
                    stats,
                    app_stats,
                    obs,
                } = out;
                let mut fd = Feeder {
                    app,
                    meta,
                    ts,
                    caps: self.caps,
                    events,
                    stats: app_stats,
                    obs,
                    gaps: 0,
                    gap_bytes: 0,
                    fed: false,
                };
                if segment {
                    let hits_before = (
                        stats.get(Counter::ReasmFlowCapHits),
                        stats.get(Counter::ReasmGlobalCapHits),
                    );
                    let wanted = (this.buffered_bytes() + d.payload.len()) as u64;
                    this.segment(
                        t.seq,
                        t.syn,
                        t.fin,
                        t.rst,
                        d.payload,
                        self.reasm_flow_cap,
                        &mut self.budget,
                        stats,
                        &mut |c| fd.chunk(dir, c),
                    );
                    if tf.cap_hit.is_none() {
                        if stats.get(Counter::ReasmFlowCapHits) > hits_before.0 {
                            tf.cap_hit = Some(CapHitRecord {
                                cap: "flow",
                                value: wanted,
                                limit: self.reasm_flow_cap as u64,
                            });
                        } else if stats.get(Counter::ReasmGlobalCapHits) > hits_before.1 {
                            tf.cap_hit = Some(CapHitRecord {
                                cap: "global",
                                value: self.budget.used as u64 + d.payload.len() as u64,
                                limit: self.budget.cap as u64,
                            });
                        }
                    }
                }
                if ack {
                    other.peer_ack(t.ack, &mut self.budget, stats, &mut |c| {
                        fd.chunk(dir.reverse(), c)
                    });
                }
                // Only what was handed over can have changed the parser or added gaps.
                if !fd.fed {
                    return;
                }
                tf.gaps = tf.gaps.saturating_add(fd.gaps);
                tf.gap_bytes = tf.gap_bytes.saturating_add(fd.gap_bytes);
                let done = match fd.app {
                    App::Done => true,
                    App::Parsing(p) => p.done(),
                    App::Detecting { .. } => false,
                };
                if done {
                    tf.stopped = true;
                    tf.streams[0].stop(&mut self.budget);
                    tf.streams[1].stop(&mut self.budget);
                }
            }
            None => {
                if d.proto == 17 && !d.payload.is_empty() {
                    if let App::Detecting { .. } = flow.app {
                        match detect::identify_udp(d.payload, d.src_port, d.dst_port) {
                            Some(p) => {
                                flow.meta.app_proto = Some(p);
                                out.app_stats.inc(app_counter(p));
                                flow.app = match detect::parser_for(p, &self.caps) {
                                    Some(parser) => App::Parsing(parser),
                                    None => App::Done,
                                };
                            }
                            None => flow.app = App::Done,
                        }
                    }
                    if let App::Parsing(p) = &mut flow.app {
                        let mut cx = AppContext {
                            ts,
                            flow: &flow.meta,
                            events: &mut out.events,
                            stats: &mut out.app_stats,
                            obs: &mut out.obs,
                        };
                        p.on_data(dir, d.payload, &mut cx);
                    }
                }
            }
        }
    }

    fn new_flow(&mut self, ts: Ts, clock: Ts, d: &Decoded<'_>, out: &mut Sinks) -> Flow {
        let src = (d.src_ip, d.src_port);
        let dst = (d.dst_ip, d.dst_port);
        let src_is_client = match d.l4 {
            L4::Tcp(t) if t.syn => !t.ack_flag,
            _ => {
                // Midstream or connectionless: the side on a service port is the server.
                let (ss, ds) = (is_service_port(d.src_port), is_service_port(d.dst_port));
                if ss != ds {
                    ds
                } else if ss && ds {
                    d.dst_port <= d.src_port
                } else {
                    true
                }
            }
        };
        let (client, server, cmac, smac) = if src_is_client {
            (src, dst, d.src_mac, [0; 6])
        } else {
            (dst, src, [0; 6], d.src_mac)
        };
        let key = FlowKey::of(d);
        let flow_id = self.hasher.hash_one((key, ts.0)) & 0x7fff_ffff_ffff_ffff;
        let tcp = match d.l4 {
            L4::Tcp(_) => {
                out.stats.inc(Counter::FlowsCreatedTcp);
                Some(Box::new(TcpFlow {
                    streams: [Stream::new(), Stream::new()],
                    syn: [false; 2],
                    synack: false,
                    fin: [false; 2],
                    rst: false,
                    stopped: false,
                    cap_hit: None,
                    gaps: 0,
                    gap_bytes: 0,
                }))
            }
            L4::Udp => {
                out.stats.inc(Counter::FlowsCreatedUdp);
                None
            }
            L4::Icmp { .. } => {
                out.stats.inc(Counter::FlowsCreatedIcmp);
                None
            }
            L4::Other => {
                out.stats.inc(Counter::FlowsCreatedOther);
                None
            }
        };
        let app = if matches!(d.l4, L4::Tcp(_) | L4::Udp) {
            App::Detecting {
                result: [None, None],
                buf: [Vec::new(), Vec::new()],
                seen: [0, 0],
            }
        } else {
            App::Done
        };
        let meta = FlowMeta {
            flow_id,
            proto: d.proto,
            client,
            server,
            vlan: d.vlan,
            client_mac: cmac,
            server_mac: smac,
            to_group: src_is_client && d.dst_mac[0] & 1 == 1,
            app_proto: None,
        };
        if out.obs.enabled() {
            out.obs.push(Observation::FlowStart {
                ts,
                flow: meta.clone(),
            });
        }
        Flow {
            meta,
            first: ts,
            last: ts,
            seen: clock,
            period_start: ts,
            period_clock: clock,
            pkts: [0; 2],
            bytes: [0; 2],
            tcp,
            app,
            slot: u32::MAX,
        }
    }

    /// Takes a free slot of [`FlowTable::timers`] (or a new one) for a new flow.
    fn add_timer(&mut self, t: Timer) -> u32 {
        match self.free_timers.pop() {
            Some(slot) => {
                self.timers[slot as usize] = t;
                slot
            }
            None => {
                self.timers.push(t);
                (self.timers.len() - 1) as u32
            }
        }
    }

    /// Sweep at most once per [`SWEEP_EVERY_SECS`] of packet time.
    pub fn sweep_if_due(&mut self, now: Ts, out: &mut Sinks) {
        if now >= self.next_sweep {
            self.sweep(now, out);
            self.next_sweep = now.saturating_add_secs(SWEEP_EVERY_SECS);
        }
    }

    /// The clock of the last sweep: no flow of this table ends, by timeout or otherwise, with an
    /// order key below it (see [`crate::observe::ObsBatch`]).
    pub fn swept(&self) -> Ts {
        self.swept
    }

    /// End every flow idle past its timeout, and closed TCP flows past `tcp_closed`.
    pub fn sweep(&mut self, now: Ts, out: &mut Sinks) {
        out.obs.set_clock(now);
        if now > self.swept {
            self.swept = now;
        }
        // Which flows, then each one out of the table as it ends (in the table's order, as
        // before): a sweep can end thousands of flows, and moving them all out first held
        // them twice.
        // The flows are found from their timers (see [`Timer`]), in slot order.
        let limits = self.timeouts.by_class;
        let expired: Vec<(u64, u64)> = self
            .timers
            .iter()
            .filter(|t| longer_than(now, t.seen, limits[usize::from(t.class).min(IDLE_CLASSES)]))
            .map(|t| (t.flow_id, t.hash))
            .collect();
        for (id, hash) in expired {
            let Ok(e) = self.map.find_entry(hash, |e| e.1.meta.flow_id == id) else {
                continue;
            };
            let ((_, f), _) = e.remove();
            debug_assert!(is_expired(&self.timeouts, &f, now));
            let reason = timeout_reason(&f);
            self.end(f, reason, out);
        }
    }

    /// The table is full: sweep, then end the least recently active eighth.
    fn make_room(&mut self, now: Ts, out: &mut Sinks) {
        self.sweep(now, out);
        if self.map.len() < self.cap {
            return;
        }
        let mut lasts: Vec<Ts> = self.map.iter().map(|(_, f)| f.seen).collect();
        let k = (lasts.len() / 8).max(1) - 1;
        let (_, kth, _) = lasts.select_nth_unstable(k);
        let threshold = *kth;
        let mut budget = k + 1;
        let victims: Vec<(FlowKey, Flow)> = self
            .map
            .extract_if(|(_, f)| {
                if budget > 0 && f.seen <= threshold {
                    budget -= 1;
                    true
                } else {
                    false
                }
            })
            .collect();
        for (_, f) in victims {
            self.end(f, EndReason::TableFull, out);
        }
    }

    /// End all flows (end of capture, shutdown). Flows idle past their timeout at `now` end as
    /// timed out, so the result does not depend on how packets were spread over workers.
    pub fn finish(&mut self, now: Ts, out: &mut Sinks) {
        out.obs.set_clock(now);
        // Deterministic order of the final events. The order is sorted, not the flows: moving
        // every flow out of the table at once would hold them twice.
        let mut order: Vec<(Ts, u64, u64)> = self
            .map
            .iter()
            .map(|(k, f)| (f.first, f.meta.flow_id, self.key_hasher.hash_one(k)))
            .collect();
        order.sort_unstable();
        for (_, id, hash) in order {
            let Ok(e) = self.map.find_entry(hash, |e| e.1.meta.flow_id == id) else {
                continue;
            };
            let ((_, f), _) = e.remove();
            let reason = if is_expired(&self.timeouts, &f, now) {
                timeout_reason(&f)
            } else if f.tcp.as_ref().is_some_and(|t| t.closed()) {
                EndReason::TcpClose
            } else {
                EndReason::Shutdown
            };
            self.end(f, reason, out);
        }
        // Give the emptied table's memory back now, not when the worker ends.
        self.map = HashTable::new();
    }

    /// `f`, already out of the table, ends: its slot is freed and its end reported.
    fn end(&mut self, mut f: Flow, reason: EndReason, out: &mut Sinks) {
        if let Some(t) = self.timers.get_mut(f.slot as usize) {
            t.class = IDLE_CLASSES as u8;
            self.free_timers.push(f.slot);
        }
        let ts = f.last;
        let caps = self.caps;
        // Order key of what the flow's end produces (facts at close, FlowEnd): when it expired
        // if it timed out (not when a sweep found it: that depends on the workers), else now.
        let expiry = Ts(f.seen.0.saturating_add(idle_timeout_of(&self.timeouts, &f)));
        let clock = out.obs.clock();
        out.obs.set_clock(expiry.min(clock));
        let Flow { app, meta, tcp, .. } = &mut f;
        if let Some(tf) = tcp.as_mut() {
            let Sinks {
                events,
                stats,
                app_stats,
                obs,
            } = out;
            let mut fd = Feeder {
                app,
                meta,
                ts,
                caps,
                events,
                stats: app_stats,
                obs,
                gaps: 0,
                gap_bytes: 0,
                fed: false,
            };
            for (i, dir) in [(0, Direction::ToServer), (1, Direction::ToClient)] {
                tf.streams[i].flush(&mut self.budget, stats, &mut |c| fd.chunk(dir, c));
            }
            tf.gaps = tf.gaps.saturating_add(fd.gaps);
            tf.gap_bytes = tf.gap_bytes.saturating_add(fd.gap_bytes);
        }
        if let App::Parsing(p) = &mut f.app {
            let mut cx = AppContext {
                ts,
                flow: &f.meta,
                events: &mut out.events,
                stats: &mut out.app_stats,
                obs: &mut out.obs,
            };
            p.on_close(&mut cx);
        }
        if let App::Detecting { seen, .. } = &f.app {
            if seen[0] + seen[1] > 0 {
                f.meta.app_proto = Some(AppProto::Unknown);
                out.app_stats.inc(Counter::AppUnknown);
            }
        }
        emit_flow(&f, reason, out);
        out.stats.inc(reason.counter());
        if out.obs.enabled() {
            let state = end_state(&f);
            out.obs.push(Observation::FlowEnd {
                ts: f.last,
                first: f.first,
                flow: f.meta,
                packets: f.pkts,
                bytes: f.bytes,
                state,
            });
        }
        out.obs.set_clock(clock);
    }
}

/// The handshake outcome of an ended flow, for [`Observation::FlowEnd`].
fn end_state(f: &Flow) -> &'static str {
    let both_ways = f.pkts[0] > 0 && f.pkts[1] > 0;
    match &f.tcp {
        Some(t) if t.synack && t.fin[0] && t.fin[1] => flow_state::CLOSED,
        Some(t) if t.synack => flow_state::ESTABLISHED,
        Some(t) if t.syn[0] && t.rst && f.pkts[1] > 0 => flow_state::REJECTED,
        Some(t) if t.syn[0] && f.pkts[1] == 0 => flow_state::HALF_OPEN,
        Some(_) if both_ways => flow_state::ESTABLISHED,
        Some(_) => flow_state::OTHER,
        None if both_ways => flow_state::ESTABLISHED,
        None => flow_state::ONE_WAY,
    }
}

/// Whether `f` has been idle past its timeout at capture clock `now`.
fn is_expired(t: &IdleUs, f: &Flow, now: Ts) -> bool {
    // Idle no longer than the shortest timeout: not expired, whatever the flow's state (and its
    // TCP state, behind a pointer, is not read: the sweep visits every flow).
    if !longer_than(now, f.seen, t.shortest) {
        return false;
    }
    longer_than(now, f.seen, idle_timeout_of(t, f))
}

/// Whether more than `limit` microseconds passed from `since` to `now`. The difference is
/// taken in 128 bits, so it never overflows: for every `limit` below `i64::MAX` (every timeout
/// [`Timeouts`] allows) the same answer as `now - since` saturated to 64 bits, in fewer
/// instructions (this runs twice per packet and once per flow per sweep).
#[inline]
fn longer_than(now: Ts, since: Ts, limit: i64) -> bool {
    i128::from(now.0) - i128::from(since.0) > i128::from(limit)
}

/// The reason a flow that timed out ended: a closed TCP flow is a close, anything else idle.
fn timeout_reason(f: &Flow) -> EndReason {
    if f.tcp.as_ref().is_some_and(|t| t.closed()) {
        EndReason::TcpClose
    } else {
        EndReason::IdleTimeout
    }
}

/// The idle timeout of `f` in its present state, in microseconds.
fn idle_timeout_of(t: &IdleUs, f: &Flow) -> i64 {
    t.of_class(idle_class(f))
}

/// Which idle timeout applies to `f` in its present state.
fn idle_class(f: &Flow) -> IdleClass {
    match &f.tcp {
        Some(tf) if tf.closed() => IdleClass::TcpClosed,
        Some(tf) if tf.synack || (f.pkts[0] > 0 && f.pkts[1] > 0) => IdleClass::TcpEstablished,
        Some(_) => IdleClass::TcpNew,
        None if f.meta.proto == 17 => IdleClass::Udp,
        None => IdleClass::Other,
    }
}

fn emit_flow(f: &Flow, reason: EndReason, out: &mut Sinks) {
    if !out.events.enabled() {
        return;
    }
    let state = match &f.tcp {
        Some(t) if t.closed() => "closed",
        Some(t) if t.synack || (f.pkts[0] > 0 && f.pkts[1] > 0) => "established",
        Some(_) => "new",
        None => "established",
    };
    let rec = FlowRecord {
        pkts_toserver: f.pkts[0],
        pkts_toclient: f.pkts[1],
        bytes_toserver: f.bytes[0],
        bytes_toclient: f.bytes[1],
        start: f.period_start,
        end: f.last,
        age: (f.last.secs() - f.period_start.secs()).max(0),
        state,
        reason: reason.as_str(),
        tcp: f.tcp.as_ref().map(|t| TcpRecord {
            syn: t.syn[0] || t.syn[1],
            synack: t.synack,
            fin: t.fin[0] || t.fin[1],
            rst: t.rst,
            gaps: t.gaps,
            gap_bytes: t.gap_bytes,
            reassembly_cap: t.cap_hit,
        }),
    };
    out.events
        .emit_with(f.period_start, "flow", &f.meta, Direction::ToServer, |b| {
            rec.write_json(b)
        });
}

pub fn app_counter(p: AppProto) -> Counter {
    match p {
        AppProto::Tls => Counter::AppTls,
        AppProto::Dicom => Counter::AppDicom,
        AppProto::Hl7 => Counter::AppHl7,
        AppProto::Http => Counter::AppHttp,
        AppProto::Smb => Counter::AppSmb,
        AppProto::Ftp => Counter::AppFtp,
        AppProto::Telnet => Counter::AppTelnet,
        AppProto::Dhcp => Counter::AppDhcp,
        AppProto::Dns => Counter::AppDns,
        AppProto::Snmp => Counter::AppSnmp,
        AppProto::Tftp => Counter::AppTftp,
        AppProto::Rfb => Counter::AppRfb,
        AppProto::Rdp => Counter::AppRdp,
        AppProto::Rlogin => Counter::AppRlogin,
        AppProto::Rsh => Counter::AppRsh,
        AppProto::Rexec => Counter::AppRexec,
        AppProto::Netbios => Counter::AppNetbios,
        AppProto::Unknown => Counter::AppUnknown,
    }
}

/// What handing reassembled bytes to the application layer needs, borrowed once per packet: the
/// reassembly callbacks capture this and a direction (two words, not ten).
struct Feeder<'a> {
    app: &'a mut App,
    meta: &'a mut FlowMeta,
    ts: Ts,
    caps: AppCaps,
    events: &'a mut EventSink,
    /// The protocol layer's counters ([`Sinks::app_stats`]).
    stats: &'a mut WorkerStats,
    obs: &'a mut ObsBuf,
    /// Gaps handed over, and their bytes.
    gaps: u32,
    gap_bytes: u64,
    /// Whether anything was handed over.
    fed: bool,
}

impl Feeder<'_> {
    fn chunk(&mut self, dir: Direction, c: Chunk<'_>) {
        self.fed = true;
        if let Chunk::Gap(n) = c {
            self.gaps += 1;
            self.gap_bytes += n;
        }
        feed(
            self.app,
            self.meta,
            dir,
            c,
            self.ts,
            self.caps,
            self.events,
            self.stats,
            self.obs,
        );
    }
}

/// Hand one chunk of one direction to detection or to the protocol parser.
#[allow(clippy::too_many_arguments)]
fn feed(
    app: &mut App,
    meta: &mut FlowMeta,
    dir: Direction,
    chunk: Chunk<'_>,
    ts: Ts,
    caps: AppCaps,
    events: &mut EventSink,
    stats: &mut WorkerStats,
    obs: &mut ObsBuf,
) {
    let i = dir.index();
    if let App::Detecting { result, buf, seen } = app {
        let data = match chunk {
            Chunk::Data(d) => d,
            Chunk::Gap(n) => {
                // A gap before identification: what follows starts mid-message; give up on
                // this direction.
                seen[i] = seen[i].saturating_add(n as usize);
                result[i] = Some(Probe::No);
                buf[i] = Vec::new();
                if result[1 - i] == Some(Probe::No) {
                    *app = App::Done;
                    meta.app_proto = Some(AppProto::Unknown);
                    stats.inc(Counter::AppUnknown);
                }
                return;
            }
        };
        if data.is_empty() || result[i] == Some(Probe::No) {
            return;
        }
        seen[i] = seen[i].saturating_add(data.len());
        let (probe, appended) = if buf[i].is_empty() {
            (detect::identify_tcp(dir, data, meta.server.1), None)
        } else {
            let take = data.len().min(PROBE_BUF.saturating_sub(buf[i].len()));
            buf[i].extend_from_slice(&data[..take]);
            (
                detect::identify_tcp(dir, &buf[i], meta.server.1),
                Some(take),
            )
        };
        match probe {
            Probe::Match(p) => {
                meta.app_proto = Some(p);
                stats.inc(app_counter(p));
                let held = std::mem::take(&mut buf[i]);
                match detect::parser_for(p, &caps) {
                    Some(mut parser) => {
                        let mut cx = AppContext {
                            ts,
                            flow: meta,
                            events,
                            stats,
                            obs,
                        };
                        // The other direction's bytes seen during detection came first: hand
                        // them over (or, if detection already let them go, say they were lost).
                        let other = 1 - i;
                        let held_other = std::mem::take(&mut buf[other]);
                        if !held_other.is_empty() {
                            parser.on_data(dir.reverse(), &held_other, &mut cx);
                        } else if seen[other] > 0 {
                            parser.on_gap(dir.reverse(), seen[other] as u64, &mut cx);
                        }
                        match appended {
                            None => parser.on_data(dir, data, &mut cx),
                            Some(take) => {
                                // `held` is the earlier bytes plus the first `take` of `data`.
                                parser.on_data(dir, &held, &mut cx);
                                if let Some(rest) = data.get(take..).filter(|r| !r.is_empty()) {
                                    parser.on_data(dir, rest, &mut cx);
                                }
                            }
                        }
                        *app = App::Parsing(parser);
                    }
                    None => *app = App::Done,
                }
            }
            Probe::NeedMore if seen[i] < caps.detect_bytes.min(PROBE_BUF) => {
                if buf[i].is_empty() {
                    buf[i].extend_from_slice(&data[..data.len().min(PROBE_BUF)]);
                }
            }
            Probe::NeedMore | Probe::No => {
                result[i] = Some(Probe::No);
                buf[i] = Vec::new();
                if result[1 - i] == Some(Probe::No) {
                    *app = App::Done;
                    meta.app_proto = Some(AppProto::Unknown);
                    stats.inc(Counter::AppUnknown);
                }
            }
        }
        return;
    }
    if let App::Parsing(p) = app {
        let mut cx = AppContext {
            ts,
            flow: meta,
            events,
            stats,
            obs,
        };
        match chunk {
            Chunk::Data(d) => p.on_data(dir, d, &mut cx),
            Chunk::Gap(n) => p.on_gap(dir, n, &mut cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Tcp;

    #[test]
    fn longer_than_equals_the_saturated_difference() {
        let v = [
            i64::MIN,
            i64::MIN + 1,
            -1_000_000,
            -1,
            0,
            1,
            999_999,
            1_000_000,
            i64::MAX - 1,
            i64::MAX,
        ];
        for now in v {
            for since in v {
                for limit in v.iter().copied().filter(|&l| l < i64::MAX) {
                    assert_eq!(
                        longer_than(Ts(now), Ts(since), limit),
                        now.saturating_sub(since) > limit,
                        "{now} {since} {limit}"
                    );
                }
            }
        }
    }

    #[test]
    fn ipv4_key_as_one_word_equals_the_general_key() {
        let mut x = 0x1234_5678_9abc_def0u64;
        let hasher = ahash::RandomState::new();
        for i in 0..20_000 {
            let mut next = || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            let (r1, r2) = (next(), next());
            // Few distinct addresses and ports, so that equal ones and ties are common.
            let ip = |v: u64| IpAddr::from([10, 0, (v >> 8) as u8 & 1, v as u8 & 3]);
            let d = Decoded {
                src_mac: [0; 6],
                dst_mac: [0; 6],
                vlan: [(i % 3) as u16, 0],
                src_ip: ip(r1),
                dst_ip: ip(r1 >> 16),
                ttl: 64,
                proto: 6,
                src_port: if i % 2 == 0 {
                    (r2 & 3) as u16
                } else {
                    r2 as u16
                },
                dst_port: if i % 2 == 0 {
                    (r2 >> 16 & 3) as u16
                } else {
                    (r2 >> 16) as u16
                },
                l4: L4::Udp,
                payload: &[],
                ip: &[],
            };
            let (k, g) = (FlowKey::of(&d), FlowKey::of_any(&d));
            assert_eq!(k, g);
            assert_eq!(hasher.hash_one(k), hasher.hash_one(g));
            let mut back = d;
            (back.src_ip, back.dst_ip) = (d.dst_ip, d.src_ip);
            (back.src_port, back.dst_port) = (d.dst_port, d.src_port);
            assert_eq!(FlowKey::of(&back), k);
        }
    }

    #[test]
    fn flow_record_by_hand_equals_serde_json() {
        let mut n = 0u64;
        for tcp in [false, true] {
            for (gaps, gap_bytes) in [(0, 0), (1, 0), (0, 7), (u32::MAX, u64::MAX)] {
                for (state, reason) in [("closed", "tcp_close"), ("new", "active_timeout")] {
                    n += 1;
                    let rec = FlowRecord {
                        pkts_toserver: n,
                        pkts_toclient: n * 1000,
                        bytes_toserver: u64::MAX - n,
                        bytes_toclient: 0,
                        start: Ts::from_timeval(1_710_489_600, n as i64),
                        end: Ts::from_timeval(1_710_489_600 + n as i64 * 3600, 999_999),
                        age: n as i64 * 3600 - 1,
                        state,
                        reason,
                        tcp: tcp.then_some(TcpRecord {
                            syn: n.is_multiple_of(2),
                            synack: n.is_multiple_of(3),
                            fin: n.is_multiple_of(5),
                            rst: n.is_multiple_of(7),
                            gaps,
                            gap_bytes,
                            reassembly_cap: (gaps == 1).then_some(CapHitRecord {
                                cap: "flow",
                                value: n * 4096,
                                limit: 65_536,
                            }),
                        }),
                    };
                    let mut b = Vec::new();
                    rec.write_json(&mut b);
                    assert_eq!(
                        String::from_utf8(b).unwrap(),
                        serde_json::to_string(&rec).unwrap()
                    );
                }
            }
        }
    }

    /// A worker's sinks with events and observations on or off.
    fn test_sinks(events: bool, obs: bool) -> Sinks {
        Sinks {
            events: EventSink::new(events),
            stats: WorkerStats::default(),
            app_stats: WorkerStats::default(),
            obs: ObsBuf::new(obs),
        }
    }

    /// The sweep finds expired flows from [`FlowTable::timers`], not from the flows: after any
    /// packets and sweeps, every live flow's timer holds its `seen` and idle class, a sweep
    /// leaves no expired flow behind (and ends only expired ones: `debug_assert` in `sweep`),
    /// and every slot is either one live flow's or free.
    #[test]
    fn sweep_timers_follow_the_flows() {
        let timeouts = Timeouts {
            tcp_new: 3,
            tcp_established: 20,
            tcp_closed: 1,
            udp: 7,
            ..Timeouts::default()
        };
        let mut t = FlowTable::new(&Limits::default(), &timeouts, 1);
        let mut out = test_sinks(false, false);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut now = Ts::from_timeval(1_710_489_600, 0);
        for i in 0..20_000 {
            let r = next();
            now = Ts(now.0 + (r % 400_000) as i64);
            let (a, b) = (40_000 + (r >> 8) as u16 % 24, 100 + (r >> 16) as u16 % 3);
            let (src, dst) = if r >> 20 & 1 == 0 {
                (("10.0.0.1", a), ("10.0.0.2", b))
            } else {
                (("10.0.0.2", b), ("10.0.0.1", a))
            };
            let mut d = tcp_pkt(
                src,
                dst,
                r >> 21 & 7 == 0,
                r >> 24 & 1 == 1,
                r >> 25 & 31 == 0,
            );
            if let L4::Tcp(tcp) = &mut d.l4 {
                tcp.fin = r >> 30 & 15 == 0;
            }
            if r >> 34 & 3 == 0 {
                d.proto = 17;
                d.l4 = L4::Udp;
            }
            t.packet(now, now, &d, 60, &mut out);
            if i % 50 == 0 {
                t.sweep(now, &mut out);
                for (_, f) in t.map.iter() {
                    assert!(!is_expired(&t.timeouts, f, now), "left expired at {i}");
                }
            }
            let mut live = 0;
            for (_, f) in t.map.iter() {
                let tm = t.timers[f.slot as usize];
                assert_eq!((tm.seen, tm.class), (f.seen, idle_class(f) as u8), "at {i}");
                assert_eq!(tm.flow_id, f.meta.flow_id);
                live += 1;
            }
            let free = t
                .timers
                .iter()
                .filter(|tm| usize::from(tm.class) == IDLE_CLASSES)
                .count();
            assert_eq!(
                (live + free, free),
                (t.timers.len(), t.free_timers.len()),
                "at {i}"
            );
        }
    }

    const PINNED_FLOW_ID: u64 = 7_730_229_605_601_619_583;

    fn tcp_pkt<'a>(
        src: (&str, u16),
        dst: (&str, u16),
        syn: bool,
        ack: bool,
        rst: bool,
    ) -> Decoded<'a> {
        Decoded {
            src_mac: [2, 0, 0, 0, 0, src.1 as u8],
            dst_mac: [2, 0, 0, 0, 0, dst.1 as u8],
            vlan: [0, 0],
            src_ip: src.0.parse().unwrap(),
            dst_ip: dst.0.parse().unwrap(),
            ttl: 64,
            proto: 6,
            src_port: src.1,
            dst_port: dst.1,
            l4: L4::Tcp(Tcp {
                seq: 1,
                ack: 0,
                syn,
                ack_flag: ack,
                fin: false,
                rst,
                window: 1024,
                options: &[],
            }),
            payload: &[],
            ip: &[],
        }
    }

    /// `flow_id` is a hash of the flow's key and first packet time with fixed seeds, so that
    /// every run and every `--workers` gives a flow the same id: a change to the key's layout or
    /// to the hash renumbers every flow in every event log. This pins one id; if it changes on
    /// purpose, say so where the event reference is.
    #[test]
    fn flow_id_is_pinned() {
        let mut t = FlowTable::new(&Limits::default(), &Timeouts::default(), 1);
        let mut out = test_sinks(true, false);
        let (c, s) = (("10.0.0.1", 40000), ("10.0.0.2", 104));
        let ts = Ts::from_timeval(1_710_489_600, 123_456);
        t.packet(ts, ts, &tcp_pkt(c, s, true, false, false), 60, &mut out);
        t.finish(ts, &mut out);
        let lines = out.events.take();
        let ev: serde_json::Value =
            serde_json::from_slice(lines.split(|&b| b == b'\n').next().unwrap()).unwrap();
        assert_eq!(ev["event_type"], "flow");
        assert_eq!(ev["flow_id"].as_u64(), Some(PINNED_FLOW_ID), "{ev}");
    }

    #[test]
    fn one_flow_start_and_one_flow_end_per_flow() {
        let mut t = FlowTable::new(&Limits::default(), &Timeouts::default(), 1);
        let mut out = test_sinks(false, true);
        let (c, s) = (("10.0.0.1", 40000), ("10.0.0.2", 104));
        t.packet(
            Ts(1),
            Ts(1),
            &tcp_pkt(c, s, true, false, false),
            60,
            &mut out,
        );
        t.packet(
            Ts(2),
            Ts(2),
            &tcp_pkt(s, c, false, true, true),
            60,
            &mut out,
        );
        // a SYN nobody answers
        let c2 = ("10.0.0.1", 40001);
        t.packet(
            Ts(3),
            Ts(3),
            &tcp_pkt(c2, s, true, false, false),
            60,
            &mut out,
        );
        t.finish(Ts(4), &mut out);
        let obs = out.obs.take(None).items;
        let starts = obs
            .iter()
            .filter(|o| matches!(o, Observation::FlowStart { .. }))
            .count();
        let ends: Vec<_> = obs
            .iter()
            .filter_map(|o| match o {
                Observation::FlowEnd {
                    flow,
                    state,
                    packets,
                    ..
                } => Some((flow.client.1, *state, *packets)),
                _ => None,
            })
            .collect();
        assert_eq!(starts, 2);
        assert!(
            ends.contains(&(40000, flow_state::REJECTED, [1, 1])),
            "{ends:?}"
        );
        assert!(
            ends.contains(&(40001, flow_state::HALF_OPEN, [1, 0])),
            "{ends:?}"
        );
        assert_eq!(ends.len(), 2);
    }
}
