//! Alerts out: the EVE `alert` event, the alert metrics, and the ring of recent alerts served
//! by `GET /api/alerts`.
//!
//! The event follows Suricata's EVE `alert` object (`signature_id`, `signature`, `category`,
//! `severity`) plus medtap's evidence: the protocol and fact values that matched (or the
//! anomaly's measure), which device of the flow it is about, and `count` (1, or the total of a
//! de-duplication window in its follow-up alert, with `first_seen`). `src`/`dest` are the
//! flow's client and server.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

#[cfg(test)]
use serde::ser::SerializeMap;
#[cfg(test)]
use serde::{Serialize, Serializer};

use super::Alert;
use crate::metrics::Metrics;
use crate::observe::FactValue;
use crate::output::{push_array, push_i64, push_ip, push_json_str, push_u64, EventSink};
use crate::protocols::Direction;
use crate::time::Ts;

/// Recent alerts kept for `GET /api/alerts`.
pub const RECENT_ALERTS: usize = 1000;
/// Flows remembered to count each legacy flow once per family.
const COUNTED_FLOWS: usize = 2048;

/// The `alert` object. Written by hand ([`AlertBody::write_json`]: serde_json's string
/// escaping was most of its cost); the serde derive is the reference it is tested against.
#[cfg_attr(test, derive(Serialize))]
struct AlertBody<'a> {
    action: &'static str,
    signature_id: u32,
    signature: &'a str,
    category: &'a str,
    severity: u8,
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    protocol: Option<&'a str>,
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    anomaly: Option<&'a str>,
    matched: Matched<'a>,
    device: DeviceRef,
    peer: IpAddr,
    count: u64,
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    first_seen: Option<Ts>,
}

#[cfg_attr(test, derive(Serialize))]
struct DeviceRef {
    side: &'static str,
    ip: IpAddr,
    #[cfg_attr(
        test,
        serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_mac")
    )]
    mac: Option<[u8; 6]>,
}

impl<'a> AlertBody<'a> {
    fn of(a: &'a Alert) -> AlertBody<'a> {
        let (dev, peer) = a.device_and_peer();
        let dev_mac = if a.device_side == "server" {
            a.flow.server_mac
        } else {
            a.flow.client_mac
        };
        AlertBody {
            action: "allowed",
            signature_id: a.signature_id,
            signature: &a.signature,
            category: a.category,
            severity: a.severity,
            protocol: a.protocol,
            anomaly: a.anomaly,
            matched: Matched(&a.matched),
            device: DeviceRef {
                side: a.device_side,
                ip: dev,
                mac: (dev_mac != [0; 6]).then_some(dev_mac),
            },
            peer,
            count: a.count,
            first_seen: (a.count > 1).then_some(a.first),
        }
    }

    /// The JSON object, byte for byte as serde_json writes the derived `Serialize`.
    fn write_json(&self, b: &mut Vec<u8>) {
        self.write_head(b);
        self.write_rest(b);
    }

    /// The start of [`AlertBody::write_json`], through `anomaly`: what the rule (or anomaly
    /// kind) and severity decide, the same for all of their alerts ([`Heads`]).
    fn write_head(&self, b: &mut Vec<u8>) {
        b.extend_from_slice(b"{\"action\":");
        push_json_str(b, self.action);
        b.extend_from_slice(b",\"signature_id\":");
        push_u64(b, u64::from(self.signature_id));
        b.extend_from_slice(b",\"signature\":");
        push_json_str(b, self.signature);
        b.extend_from_slice(b",\"category\":");
        push_json_str(b, self.category);
        b.extend_from_slice(b",\"severity\":");
        push_u64(b, u64::from(self.severity));
        if let Some(p) = self.protocol {
            b.extend_from_slice(b",\"protocol\":");
            push_json_str(b, p);
        }
        if let Some(k) = self.anomaly {
            b.extend_from_slice(b",\"anomaly\":");
            push_json_str(b, k);
        }
    }

    /// The rest of [`AlertBody::write_json`] after [`AlertBody::write_head`].
    fn write_rest(&self, b: &mut Vec<u8>) {
        b.extend_from_slice(b",\"matched\":");
        self.matched.write_json(b);
        b.extend_from_slice(b",\"device\":{\"side\":");
        // One of two fixed names: copied quoted (nothing in them to escape).
        match self.device.side {
            "server" => b.extend_from_slice(b"\"server\""),
            "client" => b.extend_from_slice(b"\"client\""),
            side => push_json_str(b, side),
        }
        b.extend_from_slice(b",\"ip\":\"");
        push_ip(b, self.device.ip);
        b.push(b'"');
        if let Some(m) = self.device.mac {
            b.extend_from_slice(b",\"mac\":\"");
            push_mac(b, m);
            b.push(b'"');
        }
        b.extend_from_slice(b"},\"peer\":\"");
        push_ip(b, self.peer);
        b.extend_from_slice(b"\",\"count\":");
        push_u64(b, self.count);
        if let Some(t) = self.first_seen {
            b.extend_from_slice(b",\"first_seen\":\"");
            b.extend_from_slice(&t.rfc3339());
            b.push(b'"');
        }
        b.push(b'}');
    }
}

/// What matched, as a JSON object written straight from the alert (no map built per alert):
/// keys in sorted order, the last value of a repeated key, as a `serde_json::Map` would have it.
struct Matched<'a>(&'a [(String, FactValue)]);

impl Matched<'_> {
    /// The entries to write: sorted by key, the last of equal keys.
    fn entries(&self) -> impl Iterator<Item = &(String, FactValue)> {
        let mut v: Vec<&(String, FactValue)> = self.0.iter().collect();
        // Stable: of equal keys, the last one is kept.
        v.sort_by(|a, b| a.0.cmp(&b.0));
        let keep: Vec<bool> = (0..v.len())
            .map(|i| v.get(i + 1).is_none_or(|n| n.0 != v[i].0))
            .collect();
        v.into_iter().zip(keep).filter(|e| e.1).map(|e| e.0)
    }

    fn write_json(&self, b: &mut Vec<u8>) {
        // Mostly sorted by key without repeats already (one or two entries): then as they are.
        if self.0.windows(2).all(|w| w[0].0 < w[1].0) {
            self.write_entries(b, self.0.iter());
        } else {
            self.write_entries(b, self.entries());
        }
    }

    fn write_entries<'e>(
        &self,
        b: &mut Vec<u8>,
        entries: impl Iterator<Item = &'e (String, FactValue)>,
    ) {
        b.push(b'{');
        for (i, (k, val)) in entries.enumerate() {
            if i > 0 {
                b.push(b',');
            }
            push_json_str(b, k);
            b.push(b':');
            match val {
                FactValue::Bool(true) => b.extend_from_slice(b"true"),
                FactValue::Bool(false) => b.extend_from_slice(b"false"),
                FactValue::Int(n) => push_i64(b, *n),
                FactValue::Str(t) => push_json_str(b, t),
                FactValue::List(l) => push_array(b, l, |b, t| push_json_str(b, t)),
            }
        }
        b.push(b'}');
    }
}

#[cfg(test)]
impl Serialize for Matched<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut v: Vec<&(String, FactValue)> = self.0.iter().collect();
        // Stable: of equal keys, the last one wins below.
        v.sort_by(|a, b| a.0.cmp(&b.0));
        let mut m = s.serialize_map(None)?;
        for (i, (k, val)) in v.iter().map(|e| (&e.0, &e.1)).enumerate() {
            if v.get(i + 1).is_some_and(|n| n.0 == *k) {
                continue;
            }
            match val {
                FactValue::Bool(b) => m.serialize_entry(k, b)?,
                FactValue::Int(n) => m.serialize_entry(k, n)?,
                FactValue::Str(t) => m.serialize_entry(k, t)?,
                FactValue::List(l) => m.serialize_entry(k, l)?,
            }
        }
        m.end()
    }
}

/// A MAC address as `aa:bb:cc:dd:ee:ff`.
fn push_mac(b: &mut Vec<u8>, m: [u8; 6]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, o) in m.iter().enumerate() {
        if i > 0 {
            b.push(b':');
        }
        b.push(HEX[usize::from(o >> 4)]);
        b.push(HEX[usize::from(o & 15)]);
    }
}

/// The serde reference of a MAC: the text the event had before [`push_mac`] (a `String`
/// built per alert by [`medtap_parsers::oui::format_mac`]).
#[cfg(test)]
fn ser_mac<S: Serializer>(m: &Option<[u8; 6]>, s: S) -> Result<S::Ok, S::Error> {
    match m {
        Some(m) => s.serialize_some(&medtap_parsers::oui::format_mac(m)),
        None => s.serialize_none(),
    }
}

/// The same text, by address or by content.
fn same_str(a: &str, b: &str) -> bool {
    (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
}

/// Alert heads ([`AlertBody::write_head`]) written so far, by (signature id, severity), each
/// with what it was written from (checked on every use: a reload may rename a rule).
#[derive(Default)]
struct Heads(HashMap<(u32, u8), Head, ahash::RandomState>);

struct Head {
    signature: std::sync::Arc<str>,
    category: &'static str,
    protocol: Option<&'static str>,
    anomaly: Option<&'static str>,
    /// Checked too (not written): with `anomaly` it decides the flow-count label.
    family: Option<std::sync::Arc<str>>,
    json: Box<[u8]>,
    /// Its alerts' `medtap_alerts_total` child (signature id, severity, category: what the
    /// head is checked against), fetched on the first alert counted.
    counter: Option<prometheus::IntCounter>,
    /// Its alerts' flow-count label (family, else anomaly kind) as an index in
    /// [`Publisher::label_counters`], found on the first alert counted.
    label: Option<usize>,
}

/// Heads kept at most (when full it starts again empty).
const HEADS: usize = 4096;

impl Heads {
    /// `body`'s head, its JSON text written on first use.
    fn get(&mut self, a: &Alert, body: &AlertBody) -> &mut Head {
        let fits = |h: &Head| {
            (std::sync::Arc::ptr_eq(&h.signature, &a.signature) || *h.signature == *a.signature)
                && same_str(h.category, a.category)
                && h.protocol == a.protocol
                && h.anomaly == a.anomaly
                && match (&h.family, &a.family) {
                    (Some(x), Some(y)) => std::sync::Arc::ptr_eq(x, y) || **x == **y,
                    (x, y) => x.is_none() && y.is_none(),
                }
        };
        let key = (a.signature_id, a.severity);
        // Full: a new key starts the map again (one more lookup, only then).
        if self.0.len() >= HEADS && !self.0.contains_key(&key) {
            self.0.clear();
        }
        let new = || {
            let mut json = Vec::with_capacity(160);
            body.write_head(&mut json);
            Head {
                signature: a.signature.clone(),
                category: a.category,
                protocol: a.protocol,
                anomaly: a.anomaly,
                family: a.family.clone(),
                json: json.into_boxed_slice(),
                counter: None,
                label: None,
            }
        };
        // One lookup: the head found is used when it fits, else written again in its place.
        match self.0.entry(key) {
            Entry::Occupied(mut e) => {
                if !fits(e.get()) {
                    e.insert(new());
                }
                e.into_mut()
            }
            Entry::Vacant(e) => e.insert(new()),
        }
    }
}

/// Emits alerts as events, counts them, and keeps the recent ones.
#[derive(Default)]
pub struct Publisher {
    heads: Heads,
    /// (flow, index in `labels`) counted in the flow metrics.
    counted: HashSet<(u64, usize), ahash::RandomState>,
    /// Family or anomaly-kind labels met so far, and their counters.
    labels: HashMap<String, usize, ahash::RandomState>,
    label_counters: Vec<prometheus::IntCounter>,
    /// No copy of each alert's line for `GET /api/alerts` ([`Publisher::without_recent`]).
    no_recent: bool,
}

impl Publisher {
    pub fn new() -> Publisher {
        Publisher::default()
    }

    /// A publisher that does not keep the recent alerts' lines (`Metrics::recent_alerts`):
    /// for a run without the API that serves them (each line copied there was written into a
    /// ring buffer last touched a thousand alerts before: out of the cache).
    pub fn without_recent(mut self) -> Publisher {
        self.no_recent = true;
        self
    }

    /// Publish `alerts`: one `alert` event each into `events`, the metrics, the recent ring.
    pub fn publish(&mut self, alerts: &[Alert], events: &mut EventSink, metrics: Option<&Metrics>) {
        for a in alerts {
            let body = AlertBody::of(a);
            let from = events.pending_bytes();
            let head = self.heads.get(a, &body);
            events.emit_with(a.ts, "alert", &a.flow, Direction::ToServer, |b| {
                b.extend_from_slice(&head.json);
                body.write_rest(b)
            });
            let Some(m) = metrics else {
                continue;
            };
            // `medtap_alerts_total` by (signature id, severity, category), kept with the head
            // (one lookup per alert for both; a head started again fetches the same child).
            head.counter
                .get_or_insert_with(|| {
                    m.alerts.with_label_values(&[
                        &a.signature_id.to_string(),
                        &a.severity.to_string(),
                        a.category,
                    ])
                })
                .inc();
            let label = match (&a.family, a.anomaly) {
                (Some(f), _) => Some((&**f, true)),
                (None, Some(k)) => Some((k, false)),
                (None, None) => None,
            };
            if let Some((label, legacy)) = label {
                let li = match head.label.or_else(|| self.labels.get(label).copied()) {
                    Some(i) => i,
                    None => {
                        let v = if legacy {
                            &m.legacy_flows
                        } else {
                            &m.anomalous_flows
                        };
                        self.label_counters.push(v.with_label_values(&[label]));
                        self.labels
                            .insert(label.to_string(), self.label_counters.len() - 1);
                        self.label_counters.len() - 1
                    }
                };
                head.label = Some(li);
                if self.counted.len() >= COUNTED_FLOWS {
                    self.counted.clear();
                }
                if self.counted.insert((a.flow.flow_id, li)) {
                    self.label_counters[li].inc();
                }
            }
            if self.no_recent {
                continue;
            }
            // The line just written to the events, else (no --events) written for the ring only.
            let mut one = None;
            let bytes = if events.enabled() {
                events.written_since(from)
            } else {
                let mut sink = EventSink::new(true);
                sink.emit_with(a.ts, "alert", &a.flow, Direction::ToServer, |b| {
                    body.write_json(b)
                });
                &*one.insert(sink.take())
            };
            let line = bytes.trim_ascii_end();
            if let Ok(mut r) = m.recent_alerts.lock() {
                // The oldest line's buffer is reused for the newest.
                let mut s = if r.len() >= RECENT_ALERTS {
                    r.pop_front().unwrap_or_default()
                } else {
                    Vec::new()
                };
                s.clear();
                s.extend_from_slice(line);
                r.push_back(s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::FlowMeta;
    use crate::protocols::AppProto;
    use std::borrow::Cow;

    fn alert(client: &str, server: &str, side: &'static str) -> Alert {
        let flow = FlowMeta {
            flow_id: 42,
            proto: 6,
            client: (client.parse().unwrap(), 40000),
            server: (server.parse().unwrap(), 104),
            vlan: [0; 2],
            client_mac: [0x02, 0, 0, 0, 0, 1],
            server_mac: [0; 6],
            to_group: false,
            app_proto: Some(AppProto::Dicom),
        };
        Alert {
            ts: Ts::from_timeval(1_700_000_000, 5),
            signature_id: 6_000_001,
            signature: "plain".into(),
            category: "cleartext-phi",
            severity: 2,
            flow,
            family: None,
            anomaly: None,
            protocol: Some("dicom"),
            matched: Vec::new(),
            device_side: side,
            count: 1,
            first: Ts::from_timeval(1_699_999_000, 7),
        }
    }

    /// Every string shape serde_json escapes or passes: quotes, backslashes, the short escapes,
    /// every other control character, DEL, non-ASCII (2-, 3-, 4-byte, U+2028), empty.
    fn strings() -> Vec<String> {
        let mut v: Vec<String> = vec![
            String::new(),
            "a\"b\\c/d".into(),
            "\u{7f}é€😀\u{2028}\u{2029}\u{feff}".into(),
            "tab\tnl\ncr\rbs\u{8}ff\u{c}".into(),
        ];
        v.push((0u8..0x20).map(char::from).collect());
        v.push((0x20u8..0x7f).map(char::from).collect());
        v
    }

    fn alerts() -> Vec<Alert> {
        let mut out = Vec::new();
        let ips = [
            ("10.0.0.1", "192.168.255.254"),
            ("0.0.0.0", "255.255.255.255"),
            ("fe80::1", "2001:db8::ff00:42:8329"),
            ("::", "::ffff:10.1.2.3"),
            ("::1", "1:2:3:4:5:6:7:8"),
        ];
        for (i, s) in strings().into_iter().enumerate() {
            for (j, (c, srv)) in ips.iter().enumerate() {
                let side = if (i + j) % 2 == 0 { "server" } else { "client" };
                let mut a = alert(c, srv, side);
                a.signature = s.as_str().into();
                a.severity = (i * 37 + j) as u8;
                a.signature_id = u32::MAX - (i + j) as u32;
                a.count = if j % 2 == 0 { 1 } else { 7 + u64::MAX / 2 };
                match (i + j) % 3 {
                    0 => {}
                    1 => {
                        a.protocol = None;
                        a.anomaly = Some(if j == 3 { "scan_hosts" } else { "volume" });
                    }
                    _ => {
                        a.protocol = None;
                    }
                }
                a.flow.server_mac = if j == 4 {
                    [0; 6]
                } else {
                    [0xab, 0xcd, 0xef, 0, 0x10, 0xff]
                };
                a.flow.client_mac = if j == 1 { [0; 6] } else { [2, 0, 0, 0, 0, 9] };
                a.matched = match j {
                    0 => Vec::new(),
                    1 => vec![(s.clone(), FactValue::Str(s.clone()))],
                    // Sorted without repeats (written as they are).
                    2 => vec![
                        ("a".into(), FactValue::Int(3)),
                        ("b".into(), FactValue::Str(s.clone())),
                        ("c".into(), FactValue::Bool(true)),
                    ],
                    _ => vec![
                        ("z".into(), FactValue::Int(i64::MIN)),
                        ("b".into(), FactValue::Bool(true)),
                        ("a".into(), FactValue::Int(-1)),
                        (s.clone(), FactValue::Bool(false)),
                        ("b".into(), FactValue::Int(i64::MAX)),
                        (
                            "list".into(),
                            FactValue::List(vec![
                                Cow::Borrowed("TLS_AES_128_GCM_SHA256"),
                                Cow::Owned(s.clone()),
                                Cow::Borrowed(""),
                            ]),
                        ),
                        ("empty".into(), FactValue::List(Vec::new())),
                        ("a".into(), FactValue::Str(s.clone())),
                        ("é".into(), FactValue::Int(0)),
                    ],
                };
                out.push(a);
            }
        }
        out
    }

    #[test]
    fn hand_written_alert_is_what_serde_json_writes() {
        let all = alerts();
        let mut firsts = 0;
        for a in &all {
            let body = AlertBody::of(a);
            let mut got = Vec::new();
            body.write_json(&mut got);
            let want = serde_json::to_vec(&body).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want)
            );
            assert_eq!(got, want);
            firsts += usize::from(body.first_seen.is_some());
        }
        assert!(firsts > 0 && firsts < all.len());
        // The whole lines, through `publish` with and without an event file and the ring.
        let metrics = Metrics::new("test");
        let mut events = EventSink::new(true);
        Publisher::new().publish(&all, &mut events, Some(&metrics));
        let mut off = EventSink::new(false);
        Publisher::new().publish(&all, &mut off, Some(&metrics));
        let mut want = EventSink::new(true);
        for a in &all {
            want.emit(
                a.ts,
                "alert",
                &a.flow,
                Direction::ToServer,
                &AlertBody::of(a),
            );
        }
        let want = want.take();
        assert_eq!(events.take(), want);
        let ring: Vec<String> = metrics
            .recent_alerts
            .lock()
            .unwrap()
            .iter()
            .map(|l| String::from_utf8(l.clone()).unwrap())
            .collect();
        let lines: Vec<&str> = std::str::from_utf8(&want).unwrap().lines().collect();
        assert_eq!(ring.len(), 2 * lines.len());
        assert_eq!(ring[..lines.len()], lines[..]);
        assert_eq!(ring[lines.len()..], lines[..]);
    }

    /// `medtap_alerts_total` counts by (signature id, severity, category), also when one rule id
    /// and severity comes with two categories (a reload) and across publishers.
    #[test]
    fn alert_counters_by_id_severity_and_category() {
        let base = alerts();
        let mut all = base.clone();
        for a in &base {
            let mut b = a.clone();
            b.category = "other-category";
            all.push(b);
            all.push(a.clone());
        }
        let metrics = Metrics::new("test");
        let mut events = EventSink::new(true);
        let mut p = Publisher::new();
        p.publish(&all, &mut events, Some(&metrics));
        p.publish(&all[..1], &mut events, Some(&metrics));
        Publisher::new().publish(&all[..1], &mut events, Some(&metrics));
        let mut want: HashMap<(u32, u8, &str), u64> = HashMap::new();
        for a in all.iter().chain(&all[..1]).chain(&all[..1]) {
            *want
                .entry((a.signature_id, a.severity, a.category))
                .or_default() += 1;
        }
        assert!(want.len() > base.len());
        for ((id, sev, cat), n) in want {
            let got = metrics
                .alerts
                .with_label_values(&[&id.to_string(), &sev.to_string(), cat])
                .get();
            assert_eq!(got, n, "{id} {sev} {cat}");
        }
    }

    /// The flow counts by family (rule alerts) or anomaly kind: one rule id and severity with
    /// two families (a reload) counts each under its own label, each flow once per label.
    #[test]
    fn flow_counts_by_family_and_anomaly_kind() {
        let metrics = Metrics::new("test");
        let mut events = EventSink::new(true);
        let mut p = Publisher::new();
        let mut all = Vec::new();
        for (n, family) in [Some("telnet"), Some("ftp"), None, Some("telnet")]
            .into_iter()
            .enumerate()
        {
            for flow in 0..3u64 {
                let mut a = alert("10.0.0.1", "10.0.0.2", "client");
                a.family = family.map(Into::into);
                a.flow.flow_id = flow + 10 * (n as u64 % 3);
                if family.is_none() {
                    a.anomaly = Some("volume");
                }
                all.push(a);
            }
        }
        p.publish(&all, &mut events, Some(&metrics));
        p.publish(&all, &mut events, Some(&metrics));
        let legacy = |f: &str| metrics.legacy_flows.with_label_values(&[f]).get();
        // telnet: flows 0..3 (twice, counted once each); ftp: 10..13; volume: 20..23.
        assert_eq!((legacy("telnet"), legacy("ftp")), (3, 3));
        assert_eq!(
            metrics.anomalous_flows.with_label_values(&["volume"]).get(),
            3
        );
    }

    /// A head written once is used again only for alerts it was written from: the same rule
    /// id and severity with another name, category, protocol or anomaly kind (a reload) gets
    /// its own.
    #[test]
    fn alert_heads_follow_what_they_were_written_from() {
        let base = alerts();
        let mut all = base.clone();
        all.extend(base.iter().cloned());
        for (n, a) in base.iter().enumerate() {
            let mut b = a.clone();
            match n % 4 {
                0 => b.signature = format!("renamed {}", a.signature).into(),
                1 => b.category = "other-category",
                2 => {
                    b.protocol = if a.protocol.is_some() {
                        None
                    } else {
                        Some("hl7")
                    }
                }
                _ => {
                    b.anomaly = if a.anomaly.is_some() {
                        None
                    } else {
                        Some("new_peer")
                    }
                }
            }
            all.push(b);
            // Equal text from another allocation: the same head.
            let mut c = a.clone();
            c.signature = a.signature.to_string().into();
            all.push(c);
        }
        let mut events = EventSink::new(true);
        let mut p = Publisher::new();
        p.publish(&all, &mut events, None);
        p.publish(&all, &mut events, None);
        let mut want = EventSink::new(true);
        for a in all.iter().chain(&all) {
            want.emit(
                a.ts,
                "alert",
                &a.flow,
                Direction::ToServer,
                &AlertBody::of(a),
            );
        }
        assert_eq!(
            String::from_utf8(events.take()).unwrap(),
            String::from_utf8(want.take()).unwrap()
        );
    }
}
