//! Observations: what the workers tell the central thread ([`crate::intel`]).
//!
//! Workers own flows; devices and behaviour are global (a scanner's flows land on every worker).
//! So each worker buffers [`Observation`]s in its [`ObsBuf`] (in [`crate::flow::Sinks`], and
//! reachable from a protocol parser as [`crate::protocols::AppContext::obs`]) and hands the
//! buffer to the central thread between packet batches, over one bounded channel shared by all
//! workers. Replay blocks when the channel is full (nothing is lost); live capture drops the
//! batch and counts it in `medtap_observations_dropped_total`.
//!
//! Cost on the packet path: one [`Observation::FlowStart`] per new flow and one
//! [`Observation::FlowEnd`] per ended flow (a push into a reused `Vec`, no heap allocation of
//! their own); evidence and facts only when a parser has something to say.
//!
//! The central thread resolves the device(s) of each observation (by MAC, or by IP where the
//! MAC is a router's), updates the inventory, and then hands the observation to the detection
//! engine with a read-only view of the devices involved. All times are packet times ([`Ts`]).
//!
//! Nothing in an observation is a PHI value, a password or an SNMP community: [`Facts`] carry
//! booleans, counts and protocol-level strings by fixed field names.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use crate::fingerprint::evidence::cleaned;
use crate::fingerprint::{Evidence, EvidenceKind};
use crate::flow::FlowMeta;
use crate::time::Ts;

/// A value of one protocol fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FactValue {
    Bool(bool),
    Int(i64),
    Str(String),
    /// Strings, borrowed when they are fixed names (cipher suites, versions): a hello lists
    /// tens of them.
    List(Vec<Cow<'static, str>>),
}

/// What a protocol layer decoded that detection rules can test: `protocol` from a fixed set
/// (`"tls"`, `"smb"`, `"snmp"`, `"ftp"`, `"telnet"`, `"dicom"`, `"hl7"`, ...), fields by fixed
/// names (`"version_offered"`, `"community_default"`, `"phi_present"`, ...). Never a PHI value,
/// password or community.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub protocol: &'static str,
    pub fields: Vec<(&'static str, FactValue)>,
}

impl Facts {
    pub fn new(protocol: &'static str) -> Facts {
        Facts {
            protocol,
            fields: Vec::new(),
        }
    }

    /// Add a field (builder style).
    pub fn with(mut self, name: &'static str, value: FactValue) -> Facts {
        self.fields.push((name, value));
        self
    }

    /// The value of field `name`, if present.
    pub fn get(&self, name: &str) -> Option<&FactValue> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The string field `name`, if present and a string.
    pub fn str(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(FactValue::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// The integer field `name` (negative as 0), or 0 when absent.
    pub fn count(&self, name: &str) -> u64 {
        match self.get(name) {
            Some(FactValue::Int(i)) => (*i).max(0) as u64,
            _ => 0,
        }
    }
}

/// How a flow ended, as far as its TCP handshake goes (the `state` of [`Observation::FlowEnd`]).
pub mod flow_state {
    /// TCP: the handshake completed (or data both ways); UDP/ICMP: packets both ways.
    pub const ESTABLISHED: &str = "established";
    /// TCP: the handshake completed and the flow closed with FIN both ways.
    pub const CLOSED: &str = "closed";
    /// TCP: the first SYN was answered by a RST (port closed).
    pub const REJECTED: &str = "rejected";
    /// TCP: SYN(s) only, never answered.
    pub const HALF_OPEN: &str = "half_open";
    /// TCP picked up mid-stream, or anything else that does not fit the above.
    pub const OTHER: &str = "other";
    /// UDP/ICMP/other IP: packets one way only.
    pub const ONE_WAY: &str = "one_way";
}

/// One thing a worker tells the central thread.
#[derive(Debug, Clone)]
pub enum Observation {
    /// Evidence about the device seen at (mac, ip): DHCP, LLDP, SYN signature, JA3/JA4, AE
    /// title, ... `mac` is all zeros when the link layer has none (raw IP captures).
    Evidence {
        ts: Ts,
        mac: [u8; 6],
        ip: Option<IpAddr>,
        items: Vec<Evidence>,
    },
    /// First packet of a flow (scan detection needs it before the flow ends). `flow.server_mac`
    /// is not known yet when the first packet came from the client.
    FlowStart { ts: Ts, flow: FlowMeta },
    /// Flow ended (once per flow, whatever the reason): packets and bytes `[to server, to
    /// client]` over its last reporting period (as in its `flow` event), and its end state (one
    /// of [`flow_state`]). `ts` is the flow's last packet time.
    FlowEnd {
        ts: Ts,
        /// The flow's first packet time (when a peer was first met, for baselines).
        first: Ts,
        flow: FlowMeta,
        packets: [u64; 2],
        bytes: [u64; 2],
        state: &'static str,
    },
    /// Protocol facts for detection rules, tied to the flow they came from.
    Facts {
        ts: Ts,
        flow: FlowMeta,
        facts: Facts,
    },
}

impl Observation {
    /// The packet time of the observation.
    pub fn ts(&self) -> Ts {
        match self {
            Observation::Evidence { ts, .. }
            | Observation::FlowStart { ts, .. }
            | Observation::FlowEnd { ts, .. }
            | Observation::Facts { ts, .. } => *ts,
        }
    }
}

/// What a worker hands over between packet batches: its observations, each with an order key,
/// and how far the worker has got.
///
/// The order key is the capture clock (the largest packet time read so far, the same whatever
/// the number of workers) of the packet that produced the observation; for a flow that ended
/// by timeout it is the clock at which it expired (its last activity plus its timeout), not
/// when a sweep happened to find it. Every later observation of the same worker has a key of
/// at least `through`. With both, the central thread can process the observations of all
/// workers in one order that does not depend on how packets were spread over workers
/// ([`crate::intel`]'s reordering, in replay).
#[derive(Debug, Default)]
pub struct ObsBatch {
    pub worker: usize,
    pub through: Ts,
    pub items: Vec<Observation>,
    pub keys: Vec<Ts>,
}

impl ObsBatch {
    pub fn clear(&mut self) {
        self.items.clear();
        self.keys.clear();
    }
}

/// The observations in the queue to the central thread, of all workers together (a worker adds a
/// batch's before sending it; the central thread takes them off as it receives the batch), and
/// the wake-up of a worker waiting for room (replay waits; live capture drops instead).
#[derive(Debug, Default)]
pub struct ObsQueued {
    n: AtomicUsize,
    /// Workers waiting in [`ObsQueued::wait_while`].
    waiting: AtomicUsize,
    lock: Mutex<()>,
    room: Condvar,
}

impl ObsQueued {
    pub fn get(&self) -> usize {
        self.n.load(Ordering::SeqCst)
    }

    pub fn add(&self, n: usize) {
        self.n.fetch_add(n, Ordering::SeqCst);
    }

    /// `n` observations left the queue (received by the central thread, or never sent): wakes
    /// the waiting workers, if any.
    pub fn taken(&self, n: usize) {
        self.n.fetch_sub(n, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            let _held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            self.room.notify_all();
        }
    }

    /// Blocks while `full(queued)` holds, woken as soon as the central thread takes a batch
    /// (it was a 200 us sleep-and-look loop: a worker slept on after the room was made, while
    /// its core stayed idle). The timeout is only a safety net.
    pub fn wait_while(&self, full: impl Fn(usize) -> bool) {
        if !full(self.get()) {
            return;
        }
        let mut held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        // Counted under the lock, before looking again: a `taken` that this look misses sees
        // the count, and its notification waits for the lock, which `wait_timeout` gives up.
        self.waiting.fetch_add(1, Ordering::SeqCst);
        while full(self.get()) {
            held = match self.room.wait_timeout(held, Duration::from_millis(5)) {
                Ok((h, _)) => h,
                Err(e) => e.into_inner().0,
            };
        }
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Slots of the per-worker cache of evidence items recently handed to the central thread.
pub const EVIDENCE_DEDUP_SLOTS: usize = 16_384;

/// A direct-mapped cache of what a worker sent recently: a key's hash and the earliest packet
/// time it was sent with. A key is a repeat when it is in the cache with a time no later than
/// this one's (replaying several files, packet time can go backwards: an earlier sighting is
/// news, it lowers a `first_seen`). A collision only lets a repeat through.
#[derive(Debug, Default)]
pub struct SentCache {
    slots: Box<[(u64, i64)]>,
    hasher: ahash::RandomState,
}

impl SentCache {
    /// `slots`, rounded up to a power of two (a slot is then picked with a mask); none: every
    /// key is fresh.
    pub fn new(slots: usize) -> SentCache {
        let n = if slots == 0 {
            0
        } else {
            slots.next_power_of_two()
        };
        SentCache {
            slots: vec![(0u64, 0i64); n].into_boxed_slice(),
            hasher: ahash::RandomState::with_seeds(0x6f62, 0x73, 0x6d65, 0x6474),
        }
    }

    /// True unless `key` was sent at `ts` or earlier (it is recorded as sent now).
    pub fn fresh(&mut self, key: impl std::hash::Hash, ts: Ts) -> bool {
        if self.slots.is_empty() {
            return true;
        }
        let v = self.hasher.hash_one(key) | 1;
        // A mask, not a division (whose latency would stand in front of the load).
        let slot = &mut self.slots[(v as usize) & (self.slots.len() - 1)];
        if slot.0 == v && slot.1 <= ts.0 {
            return false;
        }
        *slot = (v, ts.0);
        true
    }
}

/// Observations a worker holds until the end of its current packet batch.
///
/// When disabled (no central thread, e.g. unit tests of a parser), pushes are no-ops.
///
/// Evidence items are de-duplicated on the way: an item (sender, kind, value, source,
/// confidence) this worker handed over recently with an earlier or equal packet time (a
/// [`SentCache`] of [`EVIDENCE_DEDUP_SLOTS`]) is not sent again. Such a repeat tells the
/// central thread nothing: a device keeps the first sighting of each value
/// ([`crate::intel::devices::EvidenceSeen`]). A host speaking HTTP, HL7 or TLS on thousands of
/// flows is sent its user agent or sending application once, not once per flow or message.
#[derive(Debug, Default)]
pub struct ObsBuf {
    items: Vec<Observation>,
    /// The order key of each item (see [`ObsBatch`]).
    keys: Vec<Ts>,
    /// The order key of what is pushed now: the capture clock of the packet being handled, or
    /// the sweep's clock.
    clock: Ts,
    enabled: bool,
    sent: SentCache,
}

impl ObsBuf {
    /// A buffer; `enabled = false` makes every push a no-op.
    pub fn new(enabled: bool) -> ObsBuf {
        ObsBuf {
            items: Vec::new(),
            keys: Vec::new(),
            clock: Ts::ZERO,
            enabled,
            sent: if enabled {
                SentCache::new(EVIDENCE_DEDUP_SLOTS)
            } else {
                SentCache::default()
            },
        }
    }

    /// The order key of the following pushes (the capture clock).
    #[inline]
    pub fn set_clock(&mut self, clock: Ts) {
        self.clock = clock;
    }

    /// The order key pushes get now.
    pub fn clock(&self) -> Ts {
        self.clock
    }

    /// Whether anyone listens (parsers may skip building evidence when not).
    #[inline]
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    #[inline]
    pub fn push(&mut self, o: Observation) {
        if self.enabled {
            self.items.push(o);
            self.keys.push(self.clock);
        }
    }

    /// Evidence about the device at (mac, ip), without the items this worker sent recently;
    /// nothing is pushed for an empty list (or when every item was a repeat).
    pub fn evidence(&mut self, ts: Ts, mac: [u8; 6], ip: Option<IpAddr>, mut items: Vec<Evidence>) {
        if !self.enabled || items.is_empty() {
            return;
        }
        let sent = &mut self.sent;
        items.retain(|e| {
            sent.fresh(
                (mac, ip, e.kind, e.value.as_str(), e.source, e.confidence),
                ts,
            )
        });
        if !items.is_empty() {
            self.items
                .push(Observation::Evidence { ts, mac, ip, items });
            self.keys.push(self.clock);
        }
    }

    /// [`ObsBuf::evidence`] of `Evidence::with_confidence(kind, value, confidence)` for each
    /// item, without building the items this worker sent recently: only fresh values are
    /// copied (most are repeats: the same user agent on every flow of a host).
    pub fn evidence_refs(
        &mut self,
        ts: Ts,
        mac: [u8; 6],
        ip: Option<IpAddr>,
        items: &[(EvidenceKind, &str, u8)],
    ) {
        if !self.enabled || items.is_empty() {
            return;
        }
        self.push_fresh(
            ts,
            mac,
            ip,
            items.iter().map(|&(k, v, c)| (k, cleaned(v), c)),
        );
    }

    /// [`ObsBuf::evidence_refs`] of values already cleaned ([`cleaned`]): what
    /// `Evidence { kind, value, source: kind.source(), confidence }` would be for each.
    pub fn evidence_cleaned(
        &mut self,
        ts: Ts,
        mac: [u8; 6],
        ip: Option<IpAddr>,
        items: &[(EvidenceKind, Cow<'_, str>, u8)],
    ) {
        if !self.enabled || items.is_empty() {
            return;
        }
        self.push_fresh(
            ts,
            mac,
            ip,
            items.iter().map(|(k, v, c)| (*k, Cow::Borrowed(&**v), *c)),
        );
    }

    fn push_fresh<'v>(
        &mut self,
        ts: Ts,
        mac: [u8; 6],
        ip: Option<IpAddr>,
        items: impl ExactSizeIterator<Item = (EvidenceKind, Cow<'v, str>, u8)>,
    ) {
        let mut fresh = Vec::new();
        let n = items.len();
        for (kind, value, confidence) in items {
            let (source, confidence) = (kind.source(), confidence.min(100));
            if self
                .sent
                .fresh((mac, ip, kind, &*value, source, confidence), ts)
            {
                if fresh.capacity() == 0 {
                    // Sized once for all the items (one allocation, not a growth per push).
                    fresh.reserve_exact(n);
                }
                fresh.push(Evidence {
                    kind,
                    value: value.into_owned(),
                    source,
                    confidence,
                });
            }
        }
        if !fresh.is_empty() {
            self.items.push(Observation::Evidence {
                ts,
                mac,
                ip,
                items: fresh,
            });
            self.keys.push(self.clock);
        }
    }

    /// Protocol facts of `flow`.
    pub fn facts(&mut self, ts: Ts, flow: &FlowMeta, facts: Facts) {
        if self.enabled {
            self.items.push(Observation::Facts {
                ts,
                flow: flow.clone(),
                facts,
            });
            self.keys.push(self.clock);
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Everything buffered, leaving the buffer empty (with `spare`'s capacity, if given, so the
    /// worker reuses vectors the central thread sent back; used observations the central thread
    /// returned in it are dropped here, on the worker that allocated them). The buffer gets room
    /// for as many observations as it hands over: the central thread keeps a batch until it has
    /// reordered it, so a spare is often not back yet, and a fresh vector grown by doubling
    /// copied its items (about 140 bytes each, thousands per batch) again at every step.
    pub fn take(&mut self, spare: Option<ObsBatch>) -> ObsBatch {
        let mut next = spare.unwrap_or_default();
        next.clear();
        next.items.reserve(self.items.len());
        next.keys.reserve(self.keys.len());
        std::mem::swap(&mut self.items, &mut next.items);
        std::mem::swap(&mut self.keys, &mut next.keys);
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_waiting_for_room_wakes_when_the_central_thread_takes_a_batch() {
        let q = std::sync::Arc::new(ObsQueued::default());
        q.add(10);
        // Not full: returns at once.
        q.wait_while(|n| n > 10);
        let waiter = {
            let q = q.clone();
            std::thread::spawn(move || {
                q.wait_while(|n| n > 5);
                q.get()
            })
        };
        // Taken in two steps: the first leaves it full, the second makes room.
        std::thread::sleep(Duration::from_millis(20));
        q.taken(2);
        std::thread::sleep(Duration::from_millis(20));
        q.taken(4);
        assert_eq!(waiter.join().unwrap(), 4);
        assert_eq!(q.waiting.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn disabled_buffer_keeps_nothing() {
        let mut b = ObsBuf::new(false);
        b.evidence(
            Ts(1),
            [0; 6],
            None,
            vec![Evidence::new(EvidenceKind::DhcpHostname, "x")],
        );
        assert!(b.is_empty());
        let mut b = ObsBuf::new(true);
        b.evidence(Ts(1), [0; 6], None, Vec::new());
        assert!(b.is_empty());
        b.evidence(
            Ts(2),
            [1; 6],
            None,
            vec![Evidence::new(EvidenceKind::DhcpHostname, "x")],
        );
        assert_eq!(b.len(), 1);
        let got = b.take(Some(ObsBatch::default()));
        assert_eq!(got.items.len(), 1);
        assert_eq!(got.keys.len(), 1);
        assert_eq!(got.items[0].ts(), Ts(2));
        assert!(b.is_empty());
        let f = Facts::new("tls").with("version_offered", FactValue::Str("TLSv1.0".into()));
        assert_eq!(
            f.get("version_offered"),
            Some(&FactValue::Str("TLSv1.0".into()))
        );
        assert_eq!(f.get("nope"), None);
    }

    #[test]
    fn repeated_evidence_is_sent_once() {
        let mut b = ObsBuf::new(true);
        let ua = || Evidence::new(EvidenceKind::HttpUserAgent, "curl/8.5.0");
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        b.evidence(Ts(1), [1; 6], ip, vec![ua()]);
        b.evidence(Ts(2), [1; 6], ip, vec![ua()]);
        assert_eq!(b.len(), 1, "a repeat is not sent");
        // An earlier sighting (a second capture file of earlier packet time) is.
        b.evidence(Ts(0), [1; 6], ip, vec![ua()]);
        assert_eq!(b.take(None).items.len(), 2);
        b.evidence(Ts(1), [1; 6], ip, vec![ua()]);
        // A new value in the same list goes, without the repeat.
        let server = Evidence::new(EvidenceKind::HttpServer, "nginx");
        b.evidence(Ts(3), [1; 6], ip, vec![ua(), server.clone()]);
        assert_eq!(b.len(), 1);
        let Observation::Evidence { items, .. } = &b.take(None).items[0] else {
            panic!("evidence expected");
        };
        assert_eq!(items, &vec![server]);
        // Another sender, or another confidence, is news.
        b.evidence(Ts(4), [2; 6], ip, vec![ua()]);
        let mut other = ua();
        other.confidence /= 2;
        b.evidence(Ts(5), [1; 6], ip, vec![other]);
        assert_eq!(b.len(), 2);
        assert!(b.sent.fresh(1u8, Ts(9)) && !b.sent.fresh(1u8, Ts(9)));
    }

    #[test]
    fn evidence_refs_equal_evidence_of_the_built_items() {
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        let long = "é".repeat(200);
        let values = [
            " curl/8.5.0 ",
            "nginx",
            "a\u{0}b",
            long.as_str(),
            "",
            "nginx",
        ];
        let mut built = ObsBuf::new(true);
        let mut refs = ObsBuf::new(true);
        let mut pre = ObsBuf::new(true);
        for (n, v) in values.iter().enumerate() {
            for (t, mac, conf) in [
                (5, [1; 6], 100),
                (3, [1; 6], 100),
                (6, [2; 6], 250),
                (4, [1; 6], 40),
            ] {
                let ts = Ts(t + n as i64);
                let items = [
                    (EvidenceKind::HttpUserAgent, *v, conf),
                    (EvidenceKind::HttpServer, "x", 100),
                ];
                built.evidence(
                    ts,
                    mac,
                    ip,
                    items
                        .iter()
                        .map(|&(k, v, c)| Evidence::with_confidence(k, v, c))
                        .collect(),
                );
                refs.evidence_refs(ts, mac, ip, &items);
                let clean: Vec<_> = items.iter().map(|&(k, v, c)| (k, cleaned(v), c)).collect();
                pre.evidence_cleaned(ts, mac, ip, &clean);
            }
        }
        let (a, b, c) = (built.take(None), refs.take(None), pre.take(None));
        assert_eq!(a.keys, b.keys);
        assert_eq!(format!("{:?}", a.items), format!("{:?}", b.items));
        assert_eq!(a.keys, c.keys);
        assert_eq!(format!("{:?}", a.items), format!("{:?}", c.items));
    }
}
