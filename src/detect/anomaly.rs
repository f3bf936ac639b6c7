//! Behaviour anomalies, each with its thresholds from `signatures/rules/anomalies.toml`:
//!
//! - `new_peer`: per device (by IP), the (peer, service port, transport) pairs of its completed
//!   flows are learnt for `--learning-period` from the device's first appearance; after that a
//!   new pair is an alert for the client (and for the server when it is a medical device).
//! - `scan_hosts` / `scan_ports`: per source, the distinct hosts per destination port and the
//!   distinct ports per destination host of flows *started* (so half-open and rejected
//!   connection attempts count) within `window`.
//! - `volume`: per device, bytes of the flows that ended per `window` interval against the
//!   device's moving mean (EWMA); after `threshold` intervals, an interval over `factor` times
//!   the mean (and over [`VOLUME_MIN_BYTES`]) is an alert, raised when the interval crosses
//!   that line (once per interval). Bytes count when the flow ends.
//! - `internet_address`: a flow between a medical device and a public (not private, not
//!   link-local, not multicast) address.
//! - DICOM: rejected associations from one source in `window`; C-FIND/C-MOVE/C-GET requests
//!   from one source in `window`; C-STORE from a device (after its learning period) to a
//!   destination it never stored to; an SCP that accepted `threshold` different called AE
//!   titles (it answers to any name).
//! - HL7: negative acknowledgements (AE/AR/CE/CR) sent by one host in `window`; a sending
//!   application a receiver never got during its learning period; framing errors from one
//!   host in `window`.
//!
//! A device is medical when the central thread's device view says so; when it has no category
//! yet, a host seen speaking DICOM or HL7 counts as medical.
//!
//! Every table is capped (constants below); a full table skips the new key and counts it.
//!
//! With `--state-dir`, what is learnt (learning-period start, peers, volume baseline, store
//! destinations, HL7 senders, SCP called AE titles, clinical hosts) is kept in the SQLite store
//! ([`baseline`]): changes are noted here and written by the central thread with its periodic
//! batch, never on the packet path; it is loaded at start within the same caps.

mod baseline;

pub use baseline::{Loaded as BaselineLoaded, SCHEMA as BASELINE_SCHEMA};

/// Maps and sets of this module: keyed by addresses and ports on every observation, so with
/// a fast hash (their iteration order decides nothing).
type HashMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;
type HashSet<K> = std::collections::HashSet<K, ahash::RandomState>;
use std::net::IpAddr;
use std::sync::Arc;

use super::rules::{Anomaly, AnomalyKind, RuleSet};
use super::{Alert, DetectOptions, DeviceView};
use crate::flow::FlowMeta;
use crate::observe::{FactValue, Facts, Observation};
use crate::time::Ts;

/// Devices with a behaviour baseline.
pub const MAX_DEVICES: usize = 4096;
/// (peer, port, transport) pairs learnt per device.
pub const MAX_PEERS_PER_DEVICE: usize = 512;
/// Scan sources tracked at once.
pub const MAX_SCAN_SOURCES: usize = 1024;
/// (port, host) entries per scan source and window.
pub const MAX_SCAN_ENTRIES: usize = 1024;
/// (port, host) entries of all scan sources together.
pub const MAX_SCAN_TOTAL: usize = 65_536;
/// Keys of each burst counter (per source host).
pub const MAX_BURST_KEYS: usize = 4096;
/// Called AE titles remembered per SCP.
pub const MAX_AES_PER_SCP: usize = 16;
/// Sending applications remembered per HL7 receiver, or store destinations per DICOM sender.
pub const MAX_NAMES_PER_DEVICE: usize = 256;
/// Below this many bytes in an interval, no volume alert (quiet devices are noisy in ratio).
pub const VOLUME_MIN_BYTES: u64 = 1 << 20;

#[derive(Default)]
struct Device {
    first_seen: Ts,
    peers: HashSet<(IpAddr, u16, u8)>,
    peers_full: bool,
    vol_start: Ts,
    vol_bytes: u64,
    vol_mean: f64,
    vol_n: u64,
    /// The interval under way has raised its volume alert.
    vol_alerted: bool,
    store_dests: HashSet<IpAddr>,
    hl7_senders: HashSet<String>,
}

impl Device {
    /// Bytes of a flow that ended at `ts` into the volume intervals (of `w` µs): the interval
    /// under way and its mean and alert when it crosses `factor` times the mean, after
    /// `threshold` intervals. Some((interval bytes, mean)) when it is to be reported.
    fn add_volume(
        &mut self,
        ts: Ts,
        bytes: u64,
        w: i64,
        threshold: u64,
        factor: f64,
    ) -> Option<(u64, f64)> {
        let d = self;
        // Close the intervals that ended before `ts` (empty ones count as zero; at most 1000).
        let mut closed = 0;
        while ts.0.saturating_sub(d.vol_start.0) >= w && closed < 1000 {
            let v = d.vol_bytes as f64;
            d.vol_mean = if d.vol_n == 0 {
                v
            } else if d.vol_n < threshold {
                d.vol_mean + (v - d.vol_mean) / (d.vol_n + 1) as f64
            } else {
                0.9 * d.vol_mean + 0.1 * v
            };
            d.vol_n += 1;
            d.vol_bytes = 0;
            d.vol_alerted = false;
            d.vol_start = Ts(d.vol_start.0.saturating_add(w));
            closed += 1;
        }
        if closed == 1000 {
            d.vol_start = ts;
        }
        d.vol_bytes = d.vol_bytes.saturating_add(bytes);
        // The interval under way is judged as soon as it crosses the line (once), not when
        // the next one starts: a transfer followed by silence is reported too.
        let mut fired = None;
        if !d.vol_alerted
            && d.vol_n >= threshold
            && d.vol_bytes >= VOLUME_MIN_BYTES
            && d.vol_bytes as f64 > factor * d.vol_mean.max(1.0)
        {
            d.vol_alerted = true;
            fired = Some((d.vol_bytes, d.vol_mean));
        }
        fired
    }
}

#[derive(Default)]
struct Scan {
    start: Ts,
    /// The distinct (port, host) pairs of the window.
    pairs: HashSet<(u16, IpAddr)>,
    /// Per destination port: distinct hosts, and its alerts (one set of counts and flags per
    /// port, not a set of hosts per port: a flow start then costs three lookups, no nested
    /// allocation).
    by_port: HashMap<u16, ScanPort>,
    /// Per destination host: distinct ports, and whether its alert went out.
    by_host: HashMap<IpAddr, ScanHost>,
    entries: usize,
}

#[derive(Default, Clone, Copy)]
struct ScanPort {
    hosts: u32,
    /// Its host sweep alert went out.
    alerted: bool,
    /// A medical device was among the hosts (a sweep's severity must not depend on which host
    /// happened to cross the threshold).
    medical: bool,
    /// Its sweep alert had the medical severity.
    medical_alerted: bool,
}

#[derive(Default, Clone, Copy)]
struct ScanHost {
    ports: u32,
    alerted: bool,
}

#[derive(Default, Clone, Copy)]
struct Burst {
    start: Ts,
    count: u64,
    alerted: bool,
}

/// Counters of one kind of burst, per source host.
#[derive(Default)]
struct Bursts(HashMap<IpAddr, Burst>, Ts);

impl Bursts {
    /// Add `n` at `ts`; true when the window's count reaches `threshold` (once per window).
    fn add(
        &mut self,
        ip: IpAddr,
        ts: Ts,
        n: u64,
        a: &Anomaly,
        hits: &mut Vec<&'static str>,
    ) -> Option<u64> {
        if !self.0.contains_key(&ip) && self.0.len() >= MAX_BURST_KEYS {
            // Drop the counters whose window has closed before giving up.
            let w = secs(a.window);
            if ts.0.saturating_sub(self.1 .0) >= 1_000_000 {
                self.1 = ts;
                self.0.retain(|_, b| ts.0.saturating_sub(b.start.0) < w);
            }
            if self.0.len() >= MAX_BURST_KEYS {
                hits.push("burst");
                return None;
            }
        }
        let b = self.0.entry(ip).or_insert(Burst {
            start: ts,
            ..Burst::default()
        });
        if ts.0.saturating_sub(b.start.0) >= secs(a.window) {
            *b = Burst {
                start: ts,
                ..Burst::default()
            };
        }
        b.count = b.count.saturating_add(n);
        if b.count >= a.threshold && !b.alerted {
            b.alerted = true;
            return Some(b.count);
        }
        None
    }
}

fn secs(s: u64) -> i64 {
    (s as i64).saturating_mul(1_000_000)
}

/// Whether an address is public (routable on the Internet).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            let o = v.octets();
            !(v.is_private()
                || v.is_loopback()
                || v.is_link_local()
                || v.is_multicast()
                || v.is_broadcast()
                || v.is_unspecified()
                || v.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                // IETF protocol assignments (192.0.0.0/24), benchmarking (198.18.0.0/15)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240)
        }
        IpAddr::V6(v) => {
            let s = v.segments();
            !(v.is_loopback()
                || v.is_unspecified()
                || v.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                // documentation (2001:db8::/32), as its IPv4 ranges
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || v.to_ipv4_mapped()
                    .is_some_and(|m| !is_public(IpAddr::V4(m))))
        }
    }
}

/// The anomaly detectors' state.
pub struct Anomalies {
    /// Thresholds by kind; shared so a handler can hold one while it updates `self` (no copy of
    /// the strings per observation).
    cfg: Thresholds,
    learning: i64,
    devices: HashMap<IpAddr, Device>,
    scans: HashMap<IpAddr, Scan>,
    scans_pruned: Ts,
    /// Entries of all scan sources.
    scan_total: usize,
    rejected: Bursts,
    queries: Bursts,
    naks: Bursts,
    framing: Bursts,
    scp_aes: HashMap<(IpAddr, u16), Vec<String>>,
    scp_alerted: HashSet<(IpAddr, u16)>,
    /// Hosts seen speaking DICOM or HL7 (medical when the device view has no category).
    clinical: HashSet<IpAddr>,
    /// What changed since the last write to the store (`Some` when the baseline is kept).
    pending: Option<baseline::Pending>,
    /// Scratch for the `app^facility` key of each HL7 message (looked up without allocating).
    hl7_key: String,
}

/// Anomaly thresholds by kind (looked up on every observation: an array, not a map).
#[derive(Default)]
struct Thresholds(Vec<Option<Arc<Anomaly>>>);

impl Thresholds {
    fn get(&self, k: &AnomalyKind) -> Option<&Arc<Anomaly>> {
        self.0.get(*k as usize).and_then(|a| a.as_ref())
    }

    fn contains_key(&self, k: &AnomalyKind) -> bool {
        self.get(k).is_some()
    }
}

/// The rule set's anomaly thresholds by kind.
fn thresholds(rules: &RuleSet) -> Thresholds {
    let mut t = vec![None; AnomalyKind::ALL.len()];
    for k in AnomalyKind::ALL {
        if let (Some(a), Some(slot)) = (rules.anomaly(*k), t.get_mut(*k as usize)) {
            *slot = Some(Arc::new(a.clone()));
        }
    }
    Thresholds(t)
}

impl Anomalies {
    pub fn new(rules: &RuleSet, opts: &DetectOptions) -> Anomalies {
        Anomalies {
            cfg: thresholds(rules),
            learning: secs(opts.learning_period),
            devices: HashMap::default(),
            scans: HashMap::default(),
            scans_pruned: Ts::ZERO,
            scan_total: 0,
            rejected: Bursts::default(),
            queries: Bursts::default(),
            naks: Bursts::default(),
            framing: Bursts::default(),
            scp_aes: HashMap::default(),
            scp_alerted: HashSet::default(),
            clinical: HashSet::default(),
            pending: None,
            hl7_key: String::new(),
        }
    }

    /// New thresholds (a reload): the learnt state stays.
    pub fn set_rules(&mut self, rules: &RuleSet) {
        self.cfg = thresholds(rules);
    }

    fn note_clinical(&mut self, ip: IpAddr) {
        if self.clinical.len() < MAX_DEVICES && self.clinical.insert(ip) {
            if let Some(p) = &mut self.pending {
                p.clinical.push(ip);
            }
        }
    }

    fn medical(&self, ip: IpAddr, dev: Option<&super::DeviceInfo>) -> bool {
        match dev {
            Some(d) if d.category.is_some() => d.is_medical,
            _ => self.clinical.contains(&ip),
        }
    }

    /// The device entry of `ip`, created (first seen at `ts`) if there is room.
    fn device(&mut self, ip: IpAddr, ts: Ts, hits: &mut Vec<&'static str>) -> Option<&mut Device> {
        // One lookup: with room, the entry (created if new); full, only an existing one.
        let d = if self.devices.len() < MAX_DEVICES {
            self.devices.entry(ip).or_insert_with(|| Device {
                first_seen: ts,
                vol_start: ts,
                ..Device::default()
            })
        } else {
            match self.devices.get_mut(&ip) {
                Some(d) => d,
                None => {
                    hits.push("devices");
                    return None;
                }
            }
        };
        if let Some(p) = &mut self.pending {
            // Its row (first seen, volume) is written with the next batch.
            p.devices.insert(ip);
        }
        // Workers hand over their observations in no fixed order: the learning period starts
        // at the earliest packet time seen, whichever observation came first.
        if ts < d.first_seen {
            d.first_seen = ts;
        }
        Some(d)
    }

    #[allow(clippy::too_many_arguments)]
    fn alert(
        &self,
        kind: AnomalyKind,
        ts: Ts,
        flow: &FlowMeta,
        side: &'static str,
        medical: bool,
        matched: Vec<(String, FactValue)>,
        out: &mut Vec<Alert>,
    ) {
        let Some(a) = self.cfg.get(&kind) else {
            return;
        };
        out.push(Alert {
            ts,
            signature_id: a.id,
            signature: a.name.as_str().into(),
            category: "anomaly",
            severity: if medical {
                a.severity_medical
            } else {
                a.severity
            },
            flow: flow.clone(),
            family: None,
            anomaly: Some(kind.as_str()),
            protocol: None,
            matched,
            device_side: side,
            count: 1,
            first: ts,
        });
    }

    pub fn observe(
        &mut self,
        o: &Observation,
        view: &DeviceView,
        out: &mut Vec<Alert>,
        hits: &mut Vec<&'static str>,
    ) {
        match o {
            Observation::FlowStart { ts, flow } => {
                self.scan(*ts, flow, view, out, hits);
                self.public(*ts, flow, view, out);
            }
            Observation::FlowEnd {
                ts,
                first,
                flow,
                bytes,
                state,
                ..
            } => {
                let completed = matches!(*state, "established" | "closed" | "other")
                    || (*state == "one_way" && flow.proto != 6);
                // Half-open and rejected attempts (scans, floods) teach no baseline.
                self.public(*ts, flow, view, out);
                if completed {
                    let total = bytes[0].saturating_add(bytes[1]);
                    if flow.client.0 == flow.server.0 {
                        // One device on both sides: each step as it comes.
                        self.new_peer(*ts, *first, flow, view, out, hits);
                        self.volume(*ts, flow, flow.client.0, "client", total, view, out, hits);
                        self.volume(*ts, flow, flow.server.0, "server", total, view, out, hits);
                    } else {
                        self.completed(*ts, *first, flow, total, view, out, hits);
                    }
                }
            }
            Observation::Facts { ts, flow, facts } => match facts.protocol {
                "dicom" => {
                    self.dicom(*ts, flow, facts, view, out, hits);
                    self.public(*ts, flow, view, out);
                }
                "hl7" => {
                    self.hl7(*ts, flow, facts, view, out, hits);
                    self.public(*ts, flow, view, out);
                }
                _ => {}
            },
            Observation::Evidence { .. } => {}
        }
    }

    fn scan(
        &mut self,
        ts: Ts,
        flow: &FlowMeta,
        view: &DeviceView,
        out: &mut Vec<Alert>,
        hits: &mut Vec<&'static str>,
    ) {
        if !flow.has_ports() {
            return;
        }
        // (threshold, window) of each: plain values, so the thresholds are not held while the
        // source's entry is.
        let tw = |k: AnomalyKind| self.cfg.get(&k).map(|a| (a.threshold, a.window));
        let (hosts_cfg, ports_cfg) = (tw(AnomalyKind::ScanHosts), tw(AnomalyKind::ScanPorts));
        let window = hosts_cfg
            .map(|a| a.1)
            .into_iter()
            .chain(ports_cfg.map(|a| a.1))
            .max();
        let Some(window) = window else {
            return;
        };
        let src = flow.client.0;
        if self.scans.len() >= MAX_SCAN_SOURCES && !self.scans.contains_key(&src) {
            // Prune closed windows at most once a second of packet time (a flood of sources
            // must not make every flow walk the table).
            if ts.0.saturating_sub(self.scans_pruned.0) >= 1_000_000 {
                self.scans_pruned = ts;
                self.scans
                    .retain(|_, s| ts.0.saturating_sub(s.start.0) < secs(window));
                self.scan_total = self.scans.values().map(|s| s.entries).sum();
            }
            if self.scans.len() >= MAX_SCAN_SOURCES {
                hits.push("scan");
                return;
            }
        }
        // Asked before the source's entry is held (one lookup of it, not two).
        let medical = self.medical(flow.server.0, view.server().as_ref());
        let s = self.scans.entry(src).or_insert_with(|| Scan {
            start: ts,
            ..Scan::default()
        });
        if ts.0.saturating_sub(s.start.0) >= secs(window) {
            self.scan_total = self.scan_total.saturating_sub(s.entries);
            *s = Scan {
                start: ts,
                ..Scan::default()
            };
        }
        let (dst, port) = flow.server;
        if s.entries >= MAX_SCAN_ENTRIES || self.scan_total >= MAX_SCAN_TOTAL {
            hits.push("scan");
            return;
        }
        // A new pair is a new host of its port and a new port of its host.
        let added = s.pairs.insert((port, dst));
        if added {
            s.entries += 1;
            self.scan_total += 1;
        }
        let p = s.by_port.entry(port).or_default();
        let h = s.by_host.entry(dst).or_default();
        if added {
            p.hosts += 1;
            h.ports += 1;
        }
        let nhosts = u64::from(p.hosts);
        let nports = u64::from(h.ports);
        p.medical |= medical;
        let sweep_medical = p.medical;
        let mut fire_hosts = false;
        let mut fire_ports = false;
        if let Some((threshold, _)) = hosts_cfg {
            if nhosts >= threshold {
                let first = !std::mem::replace(&mut p.alerted, true);
                // A sweep that reaches a medical device after its alert is reported again, at
                // the medical severity (which host comes first depends on the order flows
                // start in; the most severe report must not).
                let upgrade = sweep_medical && !std::mem::replace(&mut p.medical_alerted, true);
                fire_hosts = first || upgrade;
            }
        }
        if let Some((threshold, _)) = ports_cfg {
            if nports >= threshold && !std::mem::replace(&mut h.alerted, true) {
                fire_ports = true;
            }
        }
        if fire_hosts {
            self.alert(
                AnomalyKind::ScanHosts,
                ts,
                flow,
                "client",
                sweep_medical,
                vec![
                    ("port".into(), FactValue::Int(i64::from(port))),
                    ("hosts".into(), FactValue::Int(nhosts as i64)),
                ],
                out,
            );
        }
        if fire_ports {
            self.alert(
                AnomalyKind::ScanPorts,
                ts,
                flow,
                "client",
                medical,
                vec![("ports".into(), FactValue::Int(nports as i64))],
                out,
            );
        }
    }

    /// A medical device and a public address on one flow. Checked when the flow starts, when
    /// its protocol facts come and when it ends: a modality may be known as one only from what
    /// the flow itself carries (its DICOM), and de-duplication makes the checks of one flow one
    /// alert.
    fn public(&mut self, ts: Ts, flow: &FlowMeta, view: &DeviceView, out: &mut Vec<Alert>) {
        let (c, s) = (flow.client.0, flow.server.0);
        let (side, dev, public) = if is_public(s) && self.medical(c, view.client().as_ref()) {
            ("client", view.client(), s)
        } else if is_public(c) && self.medical(s, view.server().as_ref()) {
            ("server", view.server(), c)
        } else {
            return;
        };
        // What made it medical: the inventory's category, or its DICOM/HL7 traffic.
        let why = dev
            .and_then(|d| d.category)
            .map_or("speaks DICOM or HL7", |c| c.as_str());
        self.alert(
            AnomalyKind::InternetAddress,
            ts,
            flow,
            side,
            true,
            vec![
                ("public_address".into(), FactValue::Str(public.to_string())),
                ("device_category".into(), FactValue::Str(why.to_string())),
            ],
            out,
        );
    }

    /// `side`'s device met `peer` on the flow's service port for the first time after learning.
    fn new_peer_alert(
        &self,
        ts: Ts,
        flow: &FlowMeta,
        side: &'static str,
        medical: bool,
        peer: IpAddr,
        out: &mut Vec<Alert>,
    ) {
        self.alert(
            AnomalyKind::NewPeer,
            ts,
            flow,
            side,
            medical,
            vec![
                ("peer".into(), FactValue::Str(peer.to_string())),
                (
                    "service_port".into(),
                    FactValue::Int(i64::from(flow.server.1)),
                ),
            ],
            out,
        );
    }

    /// `side`'s device moved `bytes` in an interval against a baseline `mean`.
    fn volume_alert(
        &self,
        ts: Ts,
        flow: &FlowMeta,
        side: &'static str,
        medical: bool,
        (bytes, mean): (u64, f64),
        out: &mut Vec<Alert>,
    ) {
        self.alert(
            AnomalyKind::Volume,
            ts,
            flow,
            side,
            medical,
            vec![
                ("interval_bytes".into(), FactValue::Int(bytes as i64)),
                ("baseline_bytes".into(), FactValue::Int(mean as i64)),
            ],
            out,
        );
    }

    /// A completed flow between two addresses: [`Anomalies::new_peer`] and
    /// [`Anomalies::volume`] of both sides, with one lookup of each side's entry instead of
    /// one per step (same entries, alerts and cap hits, in the same order; the two sides are
    /// different devices, so neither step of one side sees the other's).
    #[allow(clippy::too_many_arguments)]
    fn completed(
        &mut self,
        ts: Ts,
        seen: Ts,
        flow: &FlowMeta,
        bytes: u64,
        view: &DeviceView,
        out: &mut Vec<Alert>,
        hits: &mut Vec<&'static str>,
    ) {
        let peers_on = self.cfg.contains_key(&AnomalyKind::NewPeer);
        let vol = self
            .cfg
            .get(&AnomalyKind::Volume)
            .map(|a| (secs(a.window), a.threshold, a.factor));
        if !peers_on && vol.is_none() {
            return;
        }
        let port = flow.server.1;
        let learning = self.learning;
        // Per side: a new peer met after learning, and a volume to report. Whether a side is
        // medical is asked only when something is to be reported (the loop changes nothing
        // it depends on).
        let mut learnt_peer = [false; 2];
        let mut vol_alert: [Option<(u64, f64)>; 2] = [None; 2];
        let sides = [
            ("client", flow.client.0, flow.server.0),
            ("server", flow.server.0, flow.client.0),
        ];
        for (n, &(_, me, peer)) in sides.iter().enumerate() {
            // Created as `new_peer` creates it (at the flow's start), else as `volume` does.
            let Some(d) = self.device(me, if peers_on { seen } else { ts }, hits) else {
                if peers_on && vol.is_some() {
                    // `volume` looked for it too.
                    hits.push("devices");
                }
                continue;
            };
            let key = (peer, port, flow.proto);
            let mut learnt_now = false;
            if peers_on {
                // With room, one lookup: the insert tells whether the peer is new.
                let new = if d.peers.len() < MAX_PEERS_PER_DEVICE {
                    learnt_now = d.peers.insert(key);
                    learnt_now
                } else if !d.peers.contains(&key) {
                    if !d.peers_full {
                        d.peers_full = true;
                        hits.push("baseline");
                    }
                    true
                } else {
                    false
                };
                if new {
                    learnt_peer[n] = seen.0.saturating_sub(d.first_seen.0) >= learning;
                }
            }
            if let Some((w, threshold, factor)) = vol {
                if peers_on && ts < d.first_seen {
                    // What `volume`'s own lookup (at the flow's end) did.
                    d.first_seen = ts;
                }
                vol_alert[n] = d.add_volume(ts, bytes, w, threshold, factor);
            }
            if learnt_now {
                if let Some(p) = &mut self.pending {
                    p.peers.push((me, key));
                }
            }
        }
        if learnt_peer == [false; 2] && vol_alert.iter().all(Option::is_none) {
            return;
        }
        let server_medical = self.medical(flow.server.0, view.server().as_ref());
        let client_medical = self.medical(flow.client.0, view.client().as_ref());
        for (n, &(side, _, peer)) in sides.iter().enumerate() {
            if learnt_peer[n] && (side == "client" || server_medical) {
                let medical = if side == "client" {
                    client_medical
                } else {
                    server_medical
                };
                self.new_peer_alert(ts, flow, side, medical, peer, out);
            }
        }
        for (n, &(side, _, _)) in sides.iter().enumerate() {
            if let Some((b, mean)) = vol_alert[n] {
                let medical = if side == "client" {
                    client_medical
                } else {
                    server_medical
                };
                self.volume_alert(ts, flow, side, medical, (b, mean), out);
            }
        }
    }

    /// `ts`: the flow's end (when it is reported); `seen`: its start (when the pair was met:
    /// a connection opened while learning is part of the baseline however long it lasts).
    #[allow(clippy::too_many_arguments)]
    fn new_peer(
        &mut self,
        ts: Ts,
        seen: Ts,
        flow: &FlowMeta,
        view: &DeviceView,
        out: &mut Vec<Alert>,
        hits: &mut Vec<&'static str>,
    ) {
        if !self.cfg.contains_key(&AnomalyKind::NewPeer) {
            return;
        }
        let port = flow.server.1;
        let server_medical = self.medical(flow.server.0, view.server().as_ref());
        let client_medical = self.medical(flow.client.0, view.client().as_ref());
        for (side, me, peer) in [
            ("client", flow.client.0, flow.server.0),
            ("server", flow.server.0, flow.client.0),
        ] {
            let learning = self.learning;
            let Some(d) = self.device(me, seen, hits) else {
                continue;
            };
            let key = (peer, port, flow.proto);
            if d.peers.contains(&key) {
                continue;
            }
            let learnt = seen.0.saturating_sub(d.first_seen.0) >= learning;
            if d.peers.len() >= MAX_PEERS_PER_DEVICE {
                if !d.peers_full {
                    d.peers_full = true;
                    hits.push("baseline");
                }
            } else {
                d.peers.insert(key);
                if let Some(p) = &mut self.pending {
                    p.peers.push((me, key));
                }
            }
            let report = learnt && (side == "client" || server_medical);
            if report {
                let medical = if side == "client" {
                    client_medical
                } else {
                    server_medical
                };
                self.new_peer_alert(ts, flow, side, medical, peer, out);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn volume(
        &mut self,
        ts: Ts,
        flow: &FlowMeta,
        ip: IpAddr,
        side: &'static str,
        bytes: u64,
        view: &DeviceView,
        out: &mut Vec<Alert>,
        hits: &mut Vec<&'static str>,
    ) {
        let Some(a) = self.cfg.get(&AnomalyKind::Volume).cloned() else {
            return;
        };
        let w = secs(a.window);
        let dev_view = if side == "client" {
            view.client()
        } else {
            view.server()
        };
        let medical = self.medical(ip, dev_view.as_ref());
        let Some(d) = self.device(ip, ts, hits) else {
            return;
        };
        let fired = d.add_volume(ts, bytes, w, a.threshold, a.factor);
        if let Some((b, mean)) = fired {
            self.volume_alert(ts, flow, side, medical, (b, mean), out);
        }
    }

    fn dicom(
        &mut self,
        ts: Ts,
        flow: &FlowMeta,
        f: &Facts,
        view: &DeviceView,
        out: &mut Vec<Alert>,
        hits: &mut Vec<&'static str>,
    ) {
        let (client, server) = (flow.client.0, flow.server.0);
        for ip in [client, server] {
            self.note_clinical(ip);
        }
        let (int, s) = (|n| f.count(n), |n| f.str(n));
        let medical = self.medical(server, view.server().as_ref());
        if s("result") == Some("rejected") {
            if let Some(a) = self.cfg.get(&AnomalyKind::DicomRejectedAssociations) {
                if let Some(n) = self.rejected.add(client, ts, 1, a, hits) {
                    self.alert(
                        AnomalyKind::DicomRejectedAssociations,
                        ts,
                        flow,
                        "client",
                        medical,
                        vec![("rejected_associations".into(), FactValue::Int(n as i64))],
                        out,
                    );
                }
            }
        }
        let q = int("c_find") + int("c_move") + int("c_get");
        if q > 0 {
            if let Some(a) = self.cfg.get(&AnomalyKind::DicomQueryBurst) {
                if let Some(n) = self.queries.add(client, ts, q, a, hits) {
                    self.alert(
                        AnomalyKind::DicomQueryBurst,
                        ts,
                        flow,
                        "client",
                        medical,
                        vec![("query_requests".into(), FactValue::Int(n as i64))],
                        out,
                    );
                }
            }
        }
        if int("c_store") > 0
            && self
                .cfg
                .contains_key(&AnomalyKind::DicomStoreNewDestination)
        {
            let learning = self.learning;
            if let Some(d) = self.device(client, ts, hits) {
                let learnt = ts.0.saturating_sub(d.first_seen.0) >= learning;
                let new = !d.store_dests.contains(&server);
                if new && d.store_dests.len() < MAX_NAMES_PER_DEVICE {
                    d.store_dests.insert(server);
                    if let Some(p) = &mut self.pending {
                        p.names
                            .push((client, baseline::STORE_DEST, server.to_string()));
                    }
                } else if new {
                    hits.push("baseline");
                }
                if new && learnt {
                    self.alert(
                        AnomalyKind::DicomStoreNewDestination,
                        ts,
                        flow,
                        "client",
                        medical,
                        vec![("destination".into(), FactValue::Str(server.to_string()))],
                        out,
                    );
                }
            }
        }
        if let (Some("accepted"), Some(ae)) = (s("result"), s("called_ae")) {
            if let Some(a) = self.cfg.get(&AnomalyKind::DicomPromiscuousScp).cloned() {
                let key = flow.server;
                if !self.scp_aes.contains_key(&key) && self.scp_aes.len() >= MAX_BURST_KEYS {
                    hits.push("dicom_scp");
                    return;
                }
                let aes = self.scp_aes.entry(key).or_default();
                if !aes.iter().any(|x| x == ae) && aes.len() < MAX_AES_PER_SCP {
                    aes.push(ae.to_string());
                    if let Some(p) = &mut self.pending {
                        p.scp_aes.push((key, ae.to_string()));
                    }
                }
                let n = aes.len() as u64;
                if n >= a.threshold && self.scp_alerted.insert(key) {
                    let list = aes.clone();
                    self.alert(
                        AnomalyKind::DicomPromiscuousScp,
                        ts,
                        flow,
                        "server",
                        medical,
                        vec![(
                            "called_aes_accepted".into(),
                            FactValue::List(list.into_iter().map(Into::into).collect()),
                        )],
                        out,
                    );
                }
            }
        }
    }

    fn hl7(
        &mut self,
        ts: Ts,
        flow: &FlowMeta,
        f: &Facts,
        view: &DeviceView,
        out: &mut Vec<Alert>,
        hits: &mut Vec<&'static str>,
    ) {
        let (client, server) = (flow.client.0, flow.server.0);
        for ip in [client, server] {
            self.note_clinical(ip);
        }
        let s = |n| f.str(n);
        let from_client = s("from") != Some("server");
        let (sender, receiver, side, rside) = if from_client {
            (client, server, "client", "server")
        } else {
            (server, client, "server", "client")
        };
        let sender_view = if from_client {
            view.client()
        } else {
            view.server()
        };
        let medical = self.medical(sender, sender_view.as_ref());
        if matches!(s("ack_code"), Some("AE" | "AR" | "CE" | "CR")) {
            if let Some(a) = self.cfg.get(&AnomalyKind::Hl7NakBurst) {
                if let Some(n) = self.naks.add(sender, ts, 1, a, hits) {
                    self.alert(
                        AnomalyKind::Hl7NakBurst,
                        ts,
                        flow,
                        side,
                        medical,
                        vec![("negative_acks".into(), FactValue::Int(n as i64))],
                        out,
                    );
                }
            }
        }
        if f.get("framing_error") == Some(&FactValue::Bool(true)) {
            if let Some(a) = self.cfg.get(&AnomalyKind::Hl7FramingErrors) {
                if let Some(n) = self.framing.add(sender, ts, 1, a, hits) {
                    self.alert(
                        AnomalyKind::Hl7FramingErrors,
                        ts,
                        flow,
                        side,
                        medical,
                        vec![("framing_errors".into(), FactValue::Int(n as i64))],
                        out,
                    );
                }
            }
        }
        if let Some(app) = s("sending_application") {
            if !self.cfg.contains_key(&AnomalyKind::Hl7UnknownSender) || f.get("ack_code").is_some()
            {
                return;
            }
            // The sender is MSH-3 at MSH-4: a known application from another facility is new.
            let fac = s("sending_facility").unwrap_or("");
            // Nearly every message is from a known sender: the key is built in a scratch
            // buffer and copied only when it is new.
            let mut key = std::mem::take(&mut self.hl7_key);
            key.clear();
            key.push_str(app);
            key.push('^');
            key.push_str(fac);
            let learning = self.learning;
            let Some(d) = self.device(receiver, ts, hits) else {
                self.hl7_key = key;
                return;
            };
            if d.hl7_senders.contains(&key) {
                self.hl7_key = key;
                return;
            }
            let learnt = ts.0.saturating_sub(d.first_seen.0) >= learning;
            if d.hl7_senders.len() < MAX_NAMES_PER_DEVICE {
                d.hl7_senders.insert(key.clone());
                if let Some(p) = &mut self.pending {
                    p.names.push((receiver, baseline::HL7_SENDER, key.clone()));
                }
            } else {
                hits.push("baseline");
            }
            self.hl7_key = key;
            if learnt {
                self.alert(
                    AnomalyKind::Hl7UnknownSender,
                    ts,
                    flow,
                    rside,
                    medical,
                    vec![
                        (
                            "sending_application".into(),
                            FactValue::Str(app.to_string()),
                        ),
                        ("sending_facility".into(), FactValue::Str(fac.to_string())),
                    ],
                    out,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::DeviceInfo;
    use crate::fingerprint::signatures::Category;

    fn flow(id: u64, c: &str, s: &str, port: u16) -> FlowMeta {
        FlowMeta {
            flow_id: id,
            proto: 6,
            client: (c.parse().unwrap(), 40_000 + id as u16),
            server: (s.parse().unwrap(), port),
            vlan: [0; 2],
            client_mac: [0; 6],
            server_mac: [0; 6],
            to_group: false,
            app_proto: None,
        }
    }

    fn engine() -> Anomalies {
        Anomalies::new(
            &RuleSet::shipped().unwrap(),
            &DetectOptions {
                learning_period: 60,
            },
        )
    }

    fn medical() -> Option<DeviceInfo> {
        Some(DeviceInfo {
            category: Some(Category::Ct),
            is_medical: true,
        })
    }

    /// A modality whose only flow is a C-STORE to a public address is known as one only from
    /// that flow's DICOM: the alert comes with its facts (the flow start saw an unknown host).
    #[test]
    fn internet_address_once_the_flow_shows_a_modality() {
        let mut a = engine();
        let f = flow(1, "10.76.0.23", "1.2.3.4", 104);
        let (mut out, mut hits) = (Vec::new(), Vec::new());
        let v = DeviceView::default();
        a.observe(
            &Observation::FlowStart {
                ts: Ts(0),
                flow: f.clone(),
            },
            &v,
            &mut out,
            &mut hits,
        );
        assert!(out.is_empty());
        let facts = Facts::new("dicom")
            .with("result", FactValue::Str("accepted".into()))
            .with("c_store", FactValue::Int(1));
        a.observe(
            &Observation::Facts {
                ts: Ts(1),
                flow: f.clone(),
                facts,
            },
            &v,
            &mut out,
            &mut hits,
        );
        let got: Vec<_> = out
            .iter()
            .filter(|x| x.anomaly == Some("internet_address"))
            .collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].device_side, "client");
        assert_eq!(
            got[0].matched[0],
            (
                "public_address".to_string(),
                FactValue::Str("1.2.3.4".into())
            )
        );
        // A workstation asking a public resolver is none of this detector's business.
        let mut out = Vec::new();
        let dns = flow(2, "10.76.0.31", "8.8.8.8", 53);
        a.observe(
            &Observation::FlowStart {
                ts: Ts(2),
                flow: dns,
            },
            &v,
            &mut out,
            &mut hits,
        );
        assert!(out.is_empty());
    }

    fn flow_end(ts: i64, f: FlowMeta, bytes: u64) -> Observation {
        Observation::FlowEnd {
            ts: Ts(ts),
            first: Ts(ts - 1000),
            flow: f,
            packets: [10, 10],
            bytes: [bytes / 2, bytes - bytes / 2],
            state: "closed",
        }
    }

    /// A completed flow's new-peer and volume steps taken together (one lookup per side) give
    /// what they give one after the other: alerts in order, cap hits, learnt peers, with the
    /// learning period passing, volume spikes, flows ending before they start and the device
    /// table full.
    #[test]
    fn completed_flow_equals_its_steps() {
        let mut next = crate::testing::xorshift(0x853c_49e6_748f_ea9bu64);
        let w = 3_600_000_000i64;
        for full in [false, true] {
            let mut a = engine();
            let mut b = engine();
            a.pending = Some(baseline::Pending::default());
            b.pending = Some(baseline::Pending::default());
            if full {
                for e in [&mut a, &mut b] {
                    for i in 0..MAX_DEVICES - 3 {
                        let ip = IpAddr::from([172, 16, (i >> 8) as u8, i as u8]);
                        e.devices.insert(ip, Device::default());
                    }
                }
            }
            let v = DeviceView::new(None, medical());
            let (mut peers, mut spikes, mut caps) = (0, 0, 0);
            for i in 0..4000u64 {
                let c = format!("10.9.0.{}", next(12));
                let s = format!("10.9.1.{}", next(6));
                let f = flow(i, &c, &s, [104, 2575, 443][next(3) as usize]);
                let t = (i as i64) * w / 50 + next(1000) as i64;
                let bytes = if next(40) == 0 {
                    64 << 20
                } else {
                    next(1 << 16)
                };
                let first = t - next(3_000_000) as i64 + 1_000_000;
                let (ts, seen) = (Ts(t), Ts(first));
                let (mut oa, mut ob) = (Vec::new(), Vec::new());
                let (mut ha, mut hb) = (Vec::new(), Vec::new());
                a.completed(ts, seen, &f, bytes, &v, &mut oa, &mut ha);
                b.new_peer(ts, seen, &f, &v, &mut ob, &mut hb);
                b.volume(ts, &f, f.client.0, "client", bytes, &v, &mut ob, &mut hb);
                b.volume(ts, &f, f.server.0, "server", bytes, &v, &mut ob, &mut hb);
                let key = |o: &Vec<Alert>| -> Vec<String> {
                    o.iter()
                        .map(|x| {
                            format!(
                                "{} {} {} {:?}",
                                x.signature_id, x.device_side, x.severity, x.matched
                            )
                        })
                        .collect()
                };
                assert_eq!(key(&oa), key(&ob), "flow {i}");
                assert_eq!(ha, hb, "flow {i}");
                peers += oa.iter().filter(|x| x.anomaly == Some("new_peer")).count();
                spikes += oa.iter().filter(|x| x.anomaly == Some("volume")).count();
                caps += ha.len();
            }
            assert!(peers > 0 && spikes > 0, "{peers} {spikes}");
            assert_eq!(caps > 0, full, "{caps}");
            let (pa, pb) = (a.pending.as_ref().unwrap(), b.pending.as_ref().unwrap());
            assert_eq!(pa.peers, pb.peers);
            assert_eq!(pa.devices, pb.devices);
            assert_eq!(a.devices.len(), b.devices.len());
            for (ip, d) in &a.devices {
                let e = &b.devices[ip];
                assert_eq!(
                    (
                        d.first_seen,
                        d.vol_start,
                        d.vol_bytes,
                        d.vol_n,
                        d.vol_alerted
                    ),
                    (
                        e.first_seen,
                        e.vol_start,
                        e.vol_bytes,
                        e.vol_n,
                        e.vol_alerted
                    )
                );
                assert_eq!(d.vol_mean.to_bits(), e.vol_mean.to_bits());
                assert_eq!(d.peers, e.peers);
            }
        }
    }

    /// A device's large transfer is reported when its interval crosses the line, even if
    /// nothing follows (the interval would otherwise only be judged at the device's next flow).
    #[test]
    fn volume_spike_reported_without_a_later_flow() {
        let mut a = engine();
        let (mut out, mut hits) = (Vec::new(), Vec::new());
        let v = DeviceView::default();
        // 5 min intervals (shipped), 12 of history: 13 intervals of 10 kB each.
        let w = 300_000_000i64;
        for i in 0..13 {
            let f = flow(i as u64, "10.76.0.51", "10.76.0.60", 8080);
            a.observe(&flow_end(i * w + 1, f, 10_000), &v, &mut out, &mut hits);
        }
        assert!(out.is_empty());
        let f = flow(99, "10.76.0.51", "10.76.0.60", 8080);
        a.observe(&flow_end(13 * w + 5, f, 5 << 20), &v, &mut out, &mut hits);
        let vol: Vec<_> = out.iter().filter(|x| x.anomaly == Some("volume")).collect();
        assert_eq!(vol.len(), 2, "client and server");
        assert_eq!(vol[0].device_side, "client");
        assert_eq!(
            vol[0].matched[0],
            ("interval_bytes".to_string(), FactValue::Int(5 << 20))
        );
        // Once per interval.
        let mut out = Vec::new();
        let f = flow(100, "10.76.0.51", "10.76.0.60", 8080);
        a.observe(&flow_end(13 * w + 6, f, 5 << 20), &v, &mut out, &mut hits);
        assert!(out.is_empty());
    }

    /// An SCP legitimately configured with two called AE titles (store and query/retrieve)
    /// stays quiet at the shipped threshold; a third title accepted is the alert, once.
    #[test]
    fn promiscuous_scp_needs_three_titles() {
        let mut a = engine();
        let (mut out, mut hits) = (Vec::new(), Vec::new());
        let v = DeviceView::default();
        let assoc =
            |a: &mut Anomalies, id: u64, ae: &str, out: &mut Vec<Alert>, hits: &mut Vec<_>| {
                let facts = Facts::new("dicom")
                    .with("result", FactValue::Str("accepted".into()))
                    .with("called_ae", FactValue::Str(ae.into()));
                a.observe(
                    &Observation::Facts {
                        ts: Ts(id as i64 * 1_000_000),
                        flow: flow(id, "10.76.0.21", "10.76.0.10", 104),
                        facts,
                    },
                    &v,
                    out,
                    hits,
                );
            };
        for (i, ae) in ["PACS_STORE", "PACS_QR", "PACS_STORE", "PACS_QR"]
            .iter()
            .enumerate()
        {
            assoc(&mut a, i as u64, ae, &mut out, &mut hits);
        }
        let scp = |out: &[Alert]| {
            out.iter()
                .filter(|x| x.anomaly == Some("dicom_promiscuous_scp"))
                .count()
        };
        assert_eq!(
            scp(&out),
            0,
            "two titles are a configuration, not promiscuity"
        );
        assoc(&mut a, 10, "ANYTHING", &mut out, &mut hits);
        assert_eq!(scp(&out), 1);
        assoc(&mut a, 11, "OTHER", &mut out, &mut hits);
        assert_eq!(scp(&out), 1);
    }

    /// A sweep of one port is reported at the medical severity once it has touched a medical
    /// device, wherever that host comes in the order the flows start in (the worker count
    /// changes it), and its peer is no particular host.
    #[test]
    fn host_sweep_severity_and_peer_do_not_depend_on_order() {
        for medical_at in [0, 10, 18, 19, 22] {
            let mut a = engine();
            let (mut out, mut hits) = (Vec::new(), Vec::new());
            for i in 0..25u64 {
                let f = flow(i, "10.76.0.31", &format!("10.76.0.{}", 100 + i), 104);
                let v = DeviceView::new(None, if i == medical_at { medical() } else { None });
                a.observe(
                    &Observation::FlowStart {
                        ts: Ts(i as i64 * 1000),
                        flow: f,
                    },
                    &v,
                    &mut out,
                    &mut hits,
                );
            }
            let sweeps: Vec<_> = out
                .iter()
                .filter(|x| x.anomaly == Some("scan_hosts"))
                .collect();
            // One report, or a second at the medical severity when the medical host came after
            // the threshold was crossed.
            let n = if medical_at > 19 { 2 } else { 1 };
            assert_eq!(sweeps.len(), n, "{medical_at}");
            assert_eq!(sweeps.last().unwrap().severity, 1, "{medical_at}");
            let (dev, peer) = sweeps[0].device_and_peer();
            assert_eq!(dev, "10.76.0.31".parse::<IpAddr>().unwrap());
            assert!(peer.is_unspecified());
        }
    }

    /// The learning period starts at the earliest packet time of a device, whichever of its
    /// observations the central thread got first.
    #[test]
    fn learning_starts_at_the_earliest_observation() {
        let opts = DetectOptions {
            learning_period: 20,
        };
        let end = |s: i64, peer: &str| Observation::FlowEnd {
            ts: Ts(1_700_000_000_000_000 + s * 1_000_000),
            first: Ts(1_700_000_000_000_000 + s * 1_000_000),
            flow: FlowMeta {
                flow_id: s as u64,
                proto: 6,
                client: ("10.0.0.1".parse().unwrap(), 40000),
                server: (peer.parse().unwrap(), 80),
                vlan: [0, 0],
                client_mac: [0; 6],
                server_mac: [0; 6],
                to_group: false,
                app_proto: None,
            },
            packets: [3, 3],
            bytes: [100, 100],
            state: "closed",
        };
        for first in [[15, 0], [0, 15]] {
            let mut a = Anomalies::new(&RuleSet::shipped().unwrap(), &opts);
            let (mut out, mut hits) = (Vec::new(), Vec::new());
            for s in first {
                a.observe(
                    &end(s, "10.0.0.2"),
                    &DeviceView::default(),
                    &mut out,
                    &mut hits,
                );
            }
            // 25 s after the first packet time (0), 10 s after the first one handed over (15).
            a.observe(
                &end(25, "10.0.0.3"),
                &DeviceView::default(),
                &mut out,
                &mut hits,
            );
            let kinds: Vec<_> = out.iter().map(|x| x.anomaly).collect();
            assert_eq!(kinds, vec![Some("new_peer")], "{first:?}");
        }
    }

    #[test]
    fn internet_addresses() {
        for (ip, public) in [
            ("10.1.2.3", false),
            ("192.168.0.1", false),
            ("172.20.0.1", false),
            ("100.64.0.1", false),
            ("169.254.1.1", false),
            ("224.0.0.1", false),
            ("8.8.8.8", true),
            ("74.125.228.238", true),
            ("fd00::1", false),
            ("fe80::1", false),
            ("2001:4860::1", true),
            ("203.0.113.5", false),
            ("2001:db8::5", false),
            ("198.18.0.1", false),
            ("198.20.0.1", true),
            ("192.0.0.9", false),
            ("1.2.3.4", true),
        ] {
            assert_eq!(is_public(ip.parse().unwrap()), public, "{ip}");
        }
    }
}
