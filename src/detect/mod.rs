//! Detection: legacy-protocol rules from `signatures/rules/` and behaviour anomalies, run on
//! the central thread ([`crate::intel`]) over the workers' observations ([`crate::observe`]).
//!
//! Inputs: one [`Observation`] at a time and a read-only view of the devices of its flow
//! ([`DeviceView`]). Output: [`Alert`]s, de-duplicated (the same signature for the same device
//! and peer within the dedup window is one alert; the repeats are counted and reported once
//! in a follow-up alert with the total `count` when the window closes). Time is packet time.
//!
//! What it never does: keep a PHI value, password or community (facts carry none), allocate
//! per packet (it sees observations, not packets), or grow without bound: every table has a
//! cap (see the table in [`crate::limits`]), and hitting it is counted in
//! `medtap_detect_cap_hits_total{table}`.

pub mod anomaly;
pub mod output;
pub mod rules;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::flow::FlowMeta;
use crate::metrics::Metrics;
use crate::observe::{FactValue, Observation};
use crate::time::Ts;

pub use rules::{DeviceInfo, RuleSet};

/// De-duplication entries held (signature, device, peer). When full, entries whose window has
/// closed are reported and dropped; if none has, new alerts pass undeduplicated (counted).
pub const MAX_DEDUP: usize = 1024;

/// Forgets a vector that `std::mem::take` left in a field and nothing has filled since (so it
/// owns no memory: forgetting it saves only its drop call). A vector that does own memory is
/// dropped, not leaked; tests and debug builds stop on it, since it means a field filled
/// between `take` and the put-back, whose contents the put-back would lose.
#[inline]
fn forget_unallocated<T>(v: Vec<T>) {
    debug_assert_eq!(
        v.capacity(),
        0,
        "a taken vector was filled before its put-back"
    );
    if v.capacity() == 0 {
        std::mem::forget(v);
    }
}

/// The devices of one observation's flow, as the central thread knows them: given
/// ([`DeviceView::new`]), or looked up in the inventory when first asked
/// ([`DeviceView::lazy`]): most observations need one side or none (a flow's start asks for its
/// server, a rule for its devices only once its facts match), and each side is a table lookup.
#[derive(Default)]
pub struct DeviceView<'a> {
    /// Each side (client, server) once known.
    known: [std::cell::Cell<Option<Option<DeviceInfo>>>; 2],
    /// Looks a side up (`true`: the server); none: unknown sides are `None`.
    lookup: Option<&'a dyn Fn(bool) -> Option<DeviceInfo>>,
}

impl<'a> DeviceView<'a> {
    /// A view of given sides.
    pub fn new(client: Option<DeviceInfo>, server: Option<DeviceInfo>) -> DeviceView<'static> {
        DeviceView {
            known: [
                std::cell::Cell::new(Some(client)),
                std::cell::Cell::new(Some(server)),
            ],
            lookup: None,
        }
    }

    /// A view whose sides are `lookup(false)` (client) and `lookup(true)` (server), each
    /// called at most once, when first asked.
    pub fn lazy(lookup: &'a dyn Fn(bool) -> Option<DeviceInfo>) -> DeviceView<'a> {
        DeviceView {
            known: Default::default(),
            lookup: Some(lookup),
        }
    }

    fn side(&self, server: bool) -> Option<DeviceInfo> {
        let cell = &self.known[usize::from(server)];
        if let Some(v) = cell.get() {
            return v;
        }
        let v = self.lookup.and_then(|l| l(server));
        cell.set(Some(v));
        v
    }

    /// The flow's client device.
    pub fn client(&self) -> Option<DeviceInfo> {
        self.side(false)
    }

    /// The flow's server device.
    pub fn server(&self) -> Option<DeviceInfo> {
        self.side(true)
    }
}

/// How the detector is set up.
#[derive(Debug, Clone)]
pub struct DetectOptions {
    /// Behaviour baseline learning time per device, seconds of packet time.
    pub learning_period: u64,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions {
            learning_period: 7 * 86_400,
        }
    }
}

/// One alert.
#[derive(Debug, Clone)]
pub struct Alert {
    pub ts: Ts,
    pub signature_id: u32,
    /// Shared with the detector's copy of the rule's name (alerts are many, names few).
    pub signature: Arc<str>,
    pub category: &'static str,
    pub severity: u8,
    /// The flow that triggered it (EVE `src`/`dest` are its client and server).
    pub flow: FlowMeta,
    /// Rule family (`medtap_legacy_flows_total{protocol}`), for rule alerts.
    pub family: Option<Arc<str>>,
    /// Anomaly kind (`medtap_anomalous_flows_total{kind}`), for anomaly alerts.
    pub anomaly: Option<&'static str>,
    /// The protocol whose facts matched (rule alerts).
    pub protocol: Option<&'static str>,
    /// What matched: fact fields and values, or the anomaly's measure and threshold.
    pub matched: Vec<(String, FactValue)>,
    /// Which side of the flow is the device the alert is about ("client" or "server").
    pub device_side: &'static str,
    /// Occurrences this alert stands for (1, or the total of a de-duplication window).
    pub count: u64,
    /// First occurrence (for a follow-up alert of a dedup window).
    pub first: Ts,
}

impl Alert {
    /// (device ip, peer ip). A host sweep (`scan_hosts`) is about many hosts, a promiscuous SCP
    /// (`dicom_promiscuous_scp`) about many callers: their peer is the unspecified address
    /// (`0.0.0.0` or `::`), not whichever host crossed the threshold (that depends on the order
    /// observations arrive in, and so on the worker count), and one such finding
    /// de-duplicates into one alert.
    pub fn device_and_peer(&self) -> (IpAddr, IpAddr) {
        let (dev, peer) = if self.device_side == "server" {
            (self.flow.server.0, self.flow.client.0)
        } else {
            (self.flow.client.0, self.flow.server.0)
        };
        if matches!(self.anomaly, Some("scan_hosts" | "dicom_promiscuous_scp")) {
            let any = match peer {
                IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            };
            return (dev, any);
        }
        (dev, peer)
    }
}

/// Protocol names [`Detector::protocol_index`] remembers (when full it starts again).
const PROTOCOL_MEMO: usize = 32;

/// Flows remembered per de-duplication entry (the same flow's repeated facts count once).
pub const MAX_DEDUP_FLOWS: usize = 16;

struct DedupEntry {
    first: Ts,
    repeats: u64,
    /// The most severe reported so far (1 high .. 3 low).
    severity: u8,
    /// The last occurrence counted after the first (the first went out as it came; what the
    /// follow-up alert reports), none while there is none. Boxed (and the box reused for the
    /// next repeat): inline, it made each entry of the table several cache lines, all read by
    /// a sweep and by every lookup of the entry.
    last: Option<Box<Alert>>,
    /// Flows counted in this window (at most [`MAX_DEDUP_FLOWS`]; past that, every repeat counts).
    flows: Vec<u64>,
}

/// The detection engine.
pub struct Detector {
    rules: RuleSet,
    window: i64,
    dedup: HashMap<(u32, IpAddr, IpAddr), DedupEntry, ahash::RandomState>,
    /// Rule id -> the rules that supersede it (`supersedes` in the rule files).
    superseded_by: HashMap<u32, Vec<u32>, ahash::RandomState>,
    /// Protocol -> the indices of its rules, in load order (facts are tested against their
    /// protocol's rules only).
    by_protocol: Vec<(String, Vec<usize>)>,
    /// Each rule's name and family, shared by its alerts.
    names: Vec<(Arc<str>, Option<Arc<str>>)>,
    /// `medtap_detect_cap_hits_total{table}` counters met so far.
    cap_counters: Vec<(&'static str, prometheus::IntCounter)>,
    anomalies: anomaly::Anomalies,
    metrics: Option<Arc<Metrics>>,
    /// Next time (packet time) the dedup table is swept for closed windows.
    next_sweep: Ts,
    /// At most the earliest `first` of the dedup entries (entries only leave, and their
    /// `first` never changes): while the window has not passed since, a sweep has nothing to
    /// close and does not read the table.
    dedup_first: Ts,
    /// [`Detector::protocol_index`]'s answers by (address, length) of the protocol name.
    protocol_memo: Vec<((usize, usize), Option<usize>)>,
    /// One observation's raw alerts and cap hits (vectors kept for the next one).
    raw: Vec<Alert>,
    hits: Vec<&'static str>,
}

impl Detector {
    pub fn new(rules: RuleSet, opts: &DetectOptions, metrics: Option<Arc<Metrics>>) -> Detector {
        if let Some(m) = &metrics {
            m.init_alert_labels(&rules);
        }
        let window = (rules.dedup_window as i64).saturating_mul(1_000_000);
        Detector {
            anomalies: anomaly::Anomalies::new(&rules, opts),
            superseded_by: rules.superseded_by().into_iter().collect(),
            cap_counters: Vec::new(),
            by_protocol: rules_by_protocol(&rules),
            names: rule_names(&rules),
            rules,
            window,
            dedup: HashMap::default(),
            metrics,
            next_sweep: Ts::ZERO,
            dedup_first: Ts(i64::MAX),
            protocol_memo: Vec::new(),
            raw: Vec::new(),
            hits: Vec::new(),
        }
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Take a new rule set (a reload): rules, thresholds and the dedup window change; what the
    /// anomaly detectors learnt and the open dedup windows stay.
    pub fn set_rules(&mut self, rules: RuleSet) {
        if let Some(m) = &self.metrics {
            m.init_alert_labels(&rules);
        }
        self.window = (rules.dedup_window as i64).saturating_mul(1_000_000);
        self.anomalies.set_rules(&rules);
        self.superseded_by = rules.superseded_by().into_iter().collect();
        self.by_protocol = rules_by_protocol(&rules);
        self.protocol_memo.clear();
        self.names = rule_names(&rules);
        self.rules = rules;
    }

    /// Load the learnt baselines from the state database and keep them there from now on
    /// (see [`anomaly::Anomalies::load_baseline`]).
    pub fn load_baseline(
        &mut self,
        conn: &rusqlite::Connection,
    ) -> anyhow::Result<anomaly::BaselineLoaded> {
        self.anomalies.load_baseline(conn)
    }

    /// Write the baseline changes since the last call inside the store's batch transaction.
    pub fn write_baseline(&mut self, tx: &rusqlite::Transaction) -> anyhow::Result<()> {
        self.anomalies.write_baseline(tx)
    }

    /// Whether baseline changes wait to be written.
    pub fn baseline_dirty(&self) -> bool {
        self.anomalies.baseline_dirty()
    }

    fn cap_hit(&mut self, table: &'static str) {
        let Some(m) = &self.metrics else {
            return;
        };
        // The counter of each table, looked up in the registry once (a flood of hits would
        // hash the label and lock the vector every time).
        // Tables are named by a few static strings: their address tells them apart first.
        let i = match self
            .cap_counters
            .iter()
            .position(|(t, _)| std::ptr::eq(*t, table) || *t == table)
        {
            Some(i) => i,
            None => {
                let c = m.detect_cap_hits.with_label_values(&[table]);
                self.cap_counters.push((table, c));
                self.cap_counters.len() - 1
            }
        };
        if let Some((_, c)) = self.cap_counters.get(i) {
            c.inc();
        }
    }

    /// One observation: rule alerts for facts, anomaly alerts for anything, de-duplicated,
    /// appended to `out`.
    pub fn observe(&mut self, o: &Observation, view: &DeviceView, out: &mut Vec<Alert>) {
        let mut raw = std::mem::take(&mut self.raw);
        let mut hits = std::mem::take(&mut self.hits);
        if let Observation::Facts { ts, flow, facts } = o {
            let of_protocol = self
                .protocol_index(facts.protocol)
                .and_then(|i| self.by_protocol.get(i))
                .map_or(&[][..], |(_, v)| &v[..]);
            for (r, (name, family)) in of_protocol
                .iter()
                .filter_map(|&i| Some((self.rules.rules.get(i)?, self.names.get(i)?)))
            {
                if r.matches_of_protocol(facts, flow, view) {
                    // Server-side services (a Telnet server, an SMBv1 share) are what the alert
                    // is about; the client is the peer. A "server" that is a broadcast or
                    // multicast address (NetBIOS name registrations, SSDP, mDNS) is no device:
                    // then the sender is.
                    raw.push(Alert {
                        ts: *ts,
                        signature_id: r.id,
                        signature: name.clone(),
                        category: r.category,
                        severity: r.severity,
                        flow: flow.clone(),
                        family: family.clone(),
                        anomaly: None,
                        protocol: Some(facts.protocol),
                        matched: r.evidence(facts),
                        device_side: rule_device_side(flow),
                        count: 1,
                        first: *ts,
                    });
                }
            }
        }
        self.anomalies.observe(o, view, &mut raw, &mut hits);
        if !hits.is_empty() {
            for t in hits.drain(..) {
                self.cap_hit(t);
            }
        }
        // Put back without dropping the unallocated vector `take` left (as `raw` below).
        forget_unallocated(std::mem::replace(&mut self.hits, hits));
        // Two rules matching the same facts, one superseding the other (LANMAN offered and
        // LANMAN negotiated in one negotiation): only the superseding one is reported.
        if raw.len() > 1 {
            let fired: Vec<(u32, (IpAddr, IpAddr))> = raw
                .iter()
                .map(|a| (a.signature_id, a.device_and_peer()))
                .collect();
            raw.retain(|a| {
                let dp = a.device_and_peer();
                !self
                    .superseded_by
                    .get(&a.signature_id)
                    .is_some_and(|by| by.iter().any(|s| fired.contains(&(*s, dp))))
            });
        }
        let ts = o.ts();
        // (The sweep's own test, here: most observations come between two sweeps.)
        if ts >= self.next_sweep {
            self.sweep(ts, false, out);
        }
        // Most observations raise nothing: then no drain, and the (empty) vector goes back
        // without a drop of the one it replaces (`take` left an unallocated one there).
        if !raw.is_empty() {
            for a in raw.drain(..) {
                self.dedup(a, out);
            }
        }
        forget_unallocated(std::mem::replace(&mut self.raw, raw));
    }

    /// Where `protocol`'s rules are in `by_protocol`: remembered by the address of the
    /// protocol's name (facts name theirs with a few static strings), so that facts do not
    /// compare their protocol's name with every protocol's.
    fn protocol_index(&mut self, protocol: &'static str) -> Option<usize> {
        let at = (protocol.as_ptr() as usize, protocol.len());
        if let Some(&(_, i)) = self.protocol_memo.iter().find(|(k, _)| *k == at) {
            return i;
        }
        let i = self.by_protocol.iter().position(|(p, _)| p == protocol);
        if self.protocol_memo.len() >= PROTOCOL_MEMO {
            self.protocol_memo.clear();
        }
        self.protocol_memo.push((at, i));
        i
    }

    fn dedup(&mut self, a: Alert, out: &mut Vec<Alert>) {
        let (dev, peer) = a.device_and_peer();
        // The quieter variant of a finding already reported for this pair in an open window
        // (HL7 ACKs without PID on a connection whose messages carry PID) adds nothing.
        if let Some(by) = self.superseded_by.get(&a.signature_id) {
            let window = self.window;
            if by.iter().any(|s| {
                self.dedup
                    .get(&(*s, dev, peer))
                    .is_some_and(|e| a.ts.0.saturating_sub(e.first.0) < window)
            }) {
                return;
            }
        }
        let key = (a.signature_id, dev, peer);
        if let Some(e) = self.dedup.get_mut(&key) {
            if a.ts.0.saturating_sub(e.first.0) < self.window {
                // A more severe occurrence (a device now known to be medical, a sweep that
                // reached one) is reported at once, not folded into the window's count.
                if a.severity < e.severity {
                    e.severity = a.severity;
                    if !e.flows.contains(&a.flow.flow_id) {
                        if e.flows.len() < MAX_DEDUP_FLOWS {
                            e.flows.push(a.flow.flow_id);
                        }
                        e.repeats += 1;
                    }
                    set_last(&mut e.last, a.clone());
                    out.push(a);
                    return;
                }
                // Facts repeated for the same flow (e.g. at a login and at the end) are the same
                // occurrence, whatever came in between (observations of several workers
                // interleave).
                if !e.flows.contains(&a.flow.flow_id) {
                    if e.flows.len() < MAX_DEDUP_FLOWS {
                        e.flows.push(a.flow.flow_id);
                    }
                    e.repeats += 1;
                    set_last(&mut e.last, a);
                }
                return;
            }
            // The window closed: report its repeats, start a new one with this alert.
            let e = self.dedup.remove(&key);
            if let Some(e) = e {
                flush_entry(e, out);
            }
        }
        if self.dedup.len() >= MAX_DEDUP {
            let now = a.ts;
            // At most once a second of packet time, so an alert flood does not walk the table
            // for every alert.
            let force = now.0.saturating_sub(self.next_sweep.0) >= -59_000_000;
            self.sweep(now, force, out);
            if self.dedup.len() >= MAX_DEDUP {
                self.cap_hit("dedup");
                out.push(a);
                return;
            }
        }
        self.dedup.insert(
            key,
            DedupEntry {
                first: a.ts,
                repeats: 0,
                flows: vec![a.flow.flow_id],
                severity: a.severity,
                last: None,
            },
        );
        self.dedup_first = self.dedup_first.min(a.ts);
        out.push(a);
    }

    /// Report and drop the dedup entries whose window has closed at `now` (every 60 s of packet
    /// time, or when `force`d).
    fn sweep(&mut self, now: Ts, force: bool, out: &mut Vec<Alert>) {
        if !force && now < self.next_sweep {
            return;
        }
        self.next_sweep = Ts(now.0.saturating_add(60_000_000));
        let window = self.window;
        if now.0.saturating_sub(self.dedup_first.0) < window {
            // No entry's window has passed.
            return;
        }
        let mut first = Ts(i64::MAX);
        let closed: Vec<_> = self
            .dedup
            .iter()
            .filter(|(_, e)| {
                let done = now.0.saturating_sub(e.first.0) >= window;
                if !done {
                    first = first.min(e.first);
                }
                done
            })
            .map(|(k, _)| *k)
            .collect();
        self.dedup_first = first;
        for k in closed {
            if let Some(e) = self.dedup.remove(&k) {
                flush_entry(e, out);
            }
        }
    }

    /// End of capture: report every open dedup window's repeats.
    pub fn finish(&mut self, out: &mut Vec<Alert>) {
        let mut entries: Vec<_> = self.dedup.drain().collect();
        self.dedup_first = Ts(i64::MAX);
        entries.sort_by_key(|(k, e)| (e.first, k.0));
        for (_, e) in entries {
            flush_entry(e, out);
        }
    }
}

/// `last` becomes `a` (in its box, if it has one).
fn set_last(last: &mut Option<Box<Alert>>, a: Alert) {
    match last {
        Some(b) => **b = a,
        None => *last = Some(Box::new(a)),
    }
}

fn flush_entry(e: DedupEntry, out: &mut Vec<Alert>) {
    // Every repeat sets `last`.
    let (true, Some(mut a)) = (e.repeats > 0, e.last.map(|b| *b)) else {
        return;
    };
    a.count = e.repeats + 1;
    a.first = e.first;
    out.push(a);
}

/// The indices of `rules`' rules by protocol, in load order.
fn rules_by_protocol(rules: &RuleSet) -> Vec<(String, Vec<usize>)> {
    let mut by: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, r) in rules.rules.iter().enumerate() {
        match by.iter_mut().find(|(p, _)| *p == r.protocol) {
            Some((_, v)) => v.push(i),
            None => by.push((r.protocol.clone(), vec![i])),
        }
    }
    by
}

/// Each rule's name and family as shared strings, by rule index.
fn rule_names(rules: &RuleSet) -> Vec<(Arc<str>, Option<Arc<str>>)> {
    rules
        .rules
        .iter()
        .map(|r| {
            (
                Arc::from(r.name.as_str()),
                r.family.as_deref().map(Arc::from),
            )
        })
        .collect()
}

/// The side of a flow a rule alert is about: the server, unless the server is a group address.
fn rule_device_side(flow: &FlowMeta) -> &'static str {
    let group_ip = match flow.server.0 {
        IpAddr::V4(a) => a.is_broadcast() || a.is_multicast(),
        IpAddr::V6(a) => a.is_multicast(),
    };
    // The Ethernet destination also tells subnet-directed broadcasts (10.0.0.255), which the
    // address alone does not.
    if group_ip || flow.to_group {
        "client"
    } else {
        "server"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::Facts;

    fn telnet(flow_id: u64, s: i64) -> Observation {
        Observation::Facts {
            ts: Ts(1_700_000_000_000_000 + s * 1_000_000),
            flow: FlowMeta {
                flow_id,
                proto: 6,
                client: ("10.0.0.1".parse().unwrap(), 40000 + flow_id as u16),
                server: ("10.0.0.2".parse().unwrap(), 23),
                vlan: [0, 0],
                client_mac: [0; 6],
                server_mac: [0; 6],
                to_group: false,
                app_proto: None,
            },
            facts: Facts::new("telnet").with("session", FactValue::Bool(true)),
        }
    }

    /// The same flow's facts count once in a de-duplication window even when another flow's
    /// come in between (workers' observations interleave): X, Y, X is two occurrences.
    #[test]
    fn dedup_counts_distinct_flows_whatever_the_order() {
        for order in [[1u64, 2, 1], [1, 1, 2], [2, 1, 1]] {
            let mut d = Detector::new(RuleSet::shipped().unwrap(), &DetectOptions::default(), None);
            let mut out = Vec::new();
            for (i, f) in order.iter().enumerate() {
                d.observe(&telnet(*f, i as i64), &DeviceView::default(), &mut out);
            }
            d.finish(&mut out);
            let counts: Vec<u64> = out
                .iter()
                .filter(|a| a.signature_id == 6001001)
                .map(|a| a.count)
                .collect();
            assert_eq!(counts, vec![1, 2], "{order:?}");
        }
    }

    fn hl7(flow_id: u64, s: i64, pid: bool) -> Observation {
        let mut o = telnet(flow_id, s);
        if let Observation::Facts { flow, facts, .. } = &mut o {
            flow.server.1 = 2575;
            *facts = Facts::new("hl7").with("pid_present", FactValue::Bool(pid));
        }
        o
    }

    fn smb(flow_id: u64, s: i64, dialect: &str) -> Observation {
        let mut o = telnet(flow_id, s);
        if let Observation::Facts { flow, facts, .. } = &mut o {
            flow.server.1 = 445;
            *facts = Facts::new("smb")
                .with("smb1", FactValue::Bool(true))
                .with("smb1_offered", FactValue::Bool(true))
                .with(
                    "dialects_offered",
                    FactValue::List(vec!["LANMAN1.0".into(), "NT LM 0.12".into()]),
                )
                .with("dialect", FactValue::Str(dialect.into()));
        }
        o
    }

    /// LANMAN offered and negotiated in the same SMB negotiation (Samba's smbclient -m LANMAN2 to
    /// smbd with server max protocol = LANMAN2): 6001013 supersedes 6001012 although both match
    /// the same facts; offered with NT LM 0.12 negotiated, 6001012 is reported.
    #[test]
    fn a_superseded_rule_matching_the_same_facts_stays_quiet() {
        let opts = DetectOptions::default();
        let v = DeviceView::default();
        let mut d = Detector::new(RuleSet::shipped().unwrap(), &opts, None);
        let mut out = Vec::new();
        d.observe(&smb(1, 0, "LANMAN1.0"), &v, &mut out);
        d.finish(&mut out);
        let got: Vec<u32> = out.iter().map(|a| a.signature_id).collect();
        assert!(got.contains(&6001013) && !got.contains(&6001012), "{got:?}");
        let mut d = Detector::new(RuleSet::shipped().unwrap(), &opts, None);
        let mut out = Vec::new();
        d.observe(&smb(1, 0, "NT LM 0.12"), &v, &mut out);
        d.finish(&mut out);
        let got: Vec<u32> = out.iter().map(|a| a.signature_id).collect();
        assert!(got.contains(&6001012) && !got.contains(&6001013), "{got:?}");
    }

    fn ids(out: &[Alert]) -> Vec<(u32, u64)> {
        out.iter().map(|a| (a.signature_id, a.count)).collect()
    }

    /// HL7 with PID (6003004) supersedes HL7 without (6003003) for the same pair: the ACKs of a
    /// connection whose messages carry PID raise nothing more, before or after it in the
    /// window; a pair that first showed only ACKs still escalates to 6003004.
    #[test]
    fn a_more_severe_variant_supersedes_the_quieter_one() {
        let opts = DetectOptions::default();
        let mut d = Detector::new(RuleSet::shipped().unwrap(), &opts, None);
        let mut out = Vec::new();
        let v = DeviceView::default();
        d.observe(&hl7(1, 0, true), &v, &mut out);
        d.observe(&hl7(1, 1, false), &v, &mut out);
        d.observe(&hl7(2, 2, false), &v, &mut out);
        d.observe(&hl7(2, 3, true), &v, &mut out);
        d.finish(&mut out);
        assert_eq!(ids(&out), vec![(6003004, 1), (6003004, 2)]);

        // Escalation: ACK-only traffic first, then a message with PID.
        let mut d = Detector::new(RuleSet::shipped().unwrap(), &opts, None);
        let mut out = Vec::new();
        d.observe(&hl7(1, 0, false), &v, &mut out);
        d.observe(&hl7(1, 1, true), &v, &mut out);
        d.observe(&hl7(2, 2, false), &v, &mut out);
        d.finish(&mut out);
        assert_eq!(ids(&out), vec![(6003003, 1), (6003004, 1)]);

        // Once the window of the superseding alert has closed, the quieter one is news again.
        let mut d = Detector::new(RuleSet::shipped().unwrap(), &opts, None);
        let mut out = Vec::new();
        d.observe(&hl7(1, 0, true), &v, &mut out);
        d.observe(&hl7(2, 3601, false), &v, &mut out);
        assert_eq!(ids(&out), vec![(6003004, 1), (6003003, 1)]);
    }

    fn alert(flow_id: u64, ts: i64, severity: u8) -> Alert {
        Alert {
            ts: Ts(ts),
            signature_id: 6009002,
            signature: "sweep".into(),
            category: "anomaly",
            severity,
            flow: FlowMeta {
                flow_id,
                proto: 6,
                client: ("10.0.0.1".parse().unwrap(), 40_000),
                server: ("10.0.0.2".parse().unwrap(), 104),
                vlan: [0; 2],
                client_mac: [0; 6],
                server_mac: [0; 6],
                to_group: false,
                app_proto: None,
            },
            family: None,
            anomaly: Some("scan_hosts"),
            protocol: None,
            matched: Vec::new(),
            device_side: "client",
            count: 1,
            first: Ts(ts),
        }
    }

    /// A rule alert is about the server, unless the "server" is a broadcast or multicast address.
    #[test]
    fn rule_alerts_are_not_about_group_addresses() {
        let mut f = alert(1, 0, 3).flow;
        assert_eq!(rule_device_side(&f), "server");
        f.server.0 = "10.0.0.255".parse().unwrap();
        assert_eq!(rule_device_side(&f), "server"); // without the link layer, a .255 may be a host
        f.to_group = true;
        assert_eq!(rule_device_side(&f), "client");
        f.to_group = false;
        f.server.0 = "255.255.255.255".parse().unwrap();
        assert_eq!(rule_device_side(&f), "client");
        f.server.0 = "ff02::fb".parse().unwrap();
        assert_eq!(rule_device_side(&f), "client");
    }

    /// Within a window, a repeat is counted, but a more severe one is reported at once.
    #[test]
    fn dedup_reports_a_more_severe_repeat_at_once() {
        let mut d = Detector::new(RuleSet::shipped().unwrap(), &DetectOptions::default(), None);
        let mut out = Vec::new();
        d.dedup(alert(1, 0, 2), &mut out);
        d.dedup(alert(2, 1_000_000, 2), &mut out);
        assert_eq!(out.len(), 1);
        d.dedup(alert(3, 2_000_000, 1), &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].severity, 1);
        // Back at the same severity: counted, and the window's total reported at the end.
        d.dedup(alert(4, 3_000_000, 1), &mut out);
        assert_eq!(out.len(), 2);
        d.finish(&mut out);
        assert_eq!(out.len(), 3);
        assert_eq!((out[2].count, out[2].severity), (4, 1));
    }
}
