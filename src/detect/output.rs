//! Alerts out: the EVE `alert` event, the alert metrics, and the ring of recent alerts served
//! by `GET /api/alerts`.
//!
//! The event follows Suricata's EVE `alert` object (`signature_id`, `signature`, `category`,
//! `severity`) plus medtap's evidence: the protocol and fact values that matched (or the
//! anomaly's measure), which device of the flow it is about, and `count` (1, or the total of a
//! de-duplication window in its follow-up alert, with `first_seen`). `src`/`dest` are the
//! flow's client and server.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::Alert;
use crate::metrics::Metrics;
use crate::observe::FactValue;
use crate::output::EventSink;
use crate::protocols::Direction;
use crate::time::Ts;

/// Recent alerts kept for `GET /api/alerts`.
pub const RECENT_ALERTS: usize = 1000;
/// Flows remembered to count each legacy flow once per family.
const COUNTED_FLOWS: usize = 2048;

#[derive(Serialize)]
struct AlertBody<'a> {
    action: &'static str,
    signature_id: u32,
    signature: &'a str,
    category: &'a str,
    severity: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    anomaly: Option<&'a str>,
    matched: Matched<'a>,
    device: DeviceRef,
    peer: IpAddr,
    count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_seen: Option<Ts>,
}

#[derive(Serialize)]
struct DeviceRef {
    side: &'static str,
    ip: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    mac: Option<String>,
}

/// What matched, as a JSON object written straight from the alert (no map built per alert):
/// keys in sorted order, the last value of a repeated key, as a `serde_json::Map` would have it.
struct Matched<'a>(&'a [(String, FactValue)]);

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

fn mac(m: [u8; 6]) -> Option<String> {
    (m != [0; 6]).then(|| {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(17);
        for (i, b) in m.iter().enumerate() {
            if i > 0 {
                s.push(':');
            }
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 15)]));
        }
        s
    })
}

/// Emits alerts as events, counts them, and keeps the recent ones.
#[derive(Default)]
pub struct Publisher {
    /// (flow, index in `labels`) counted in the flow metrics.
    counted: HashSet<(u64, usize), ahash::RandomState>,
    /// Family or anomaly-kind labels met so far, and their counters.
    labels: HashMap<String, usize, ahash::RandomState>,
    label_counters: Vec<prometheus::IntCounter>,
    /// `medtap_alerts_total` by (signature id, severity, category).
    alert_counters: HashMap<(u32, u8, &'static str), prometheus::IntCounter, ahash::RandomState>,
}

impl Publisher {
    pub fn new() -> Publisher {
        Publisher::default()
    }

    /// Publish `alerts`: one `alert` event each into `events`, the metrics, the recent ring.
    pub fn publish(&mut self, alerts: &[Alert], events: &mut EventSink, metrics: Option<&Metrics>) {
        for a in alerts {
            let (dev, peer) = a.device_and_peer();
            let dev_mac = if a.device_side == "server" {
                a.flow.server_mac
            } else {
                a.flow.client_mac
            };
            let body = AlertBody {
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
                    mac: mac(dev_mac),
                },
                peer,
                count: a.count,
                first_seen: (a.count > 1).then_some(a.first),
            };
            let from = events.pending_bytes();
            events.emit(a.ts, "alert", &a.flow, Direction::ToServer, &body);
            let Some(m) = metrics else {
                continue;
            };
            self.alert_counters
                .entry((a.signature_id, a.severity, a.category))
                .or_insert_with(|| {
                    m.alerts.with_label_values(&[
                        &a.signature_id.to_string(),
                        &a.severity.to_string(),
                        a.category,
                    ])
                })
                .inc();
            let label = match (&a.family, a.anomaly) {
                (Some(f), _) => Some((f.as_str(), true)),
                (None, Some(k)) => Some((k, false)),
                (None, None) => None,
            };
            if let Some((label, legacy)) = label {
                let li = match self.labels.get(label) {
                    Some(&i) => i,
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
                if self.counted.len() >= COUNTED_FLOWS {
                    self.counted.clear();
                }
                if self.counted.insert((a.flow.flow_id, li)) {
                    self.label_counters[li].inc();
                }
            }
            // The line just written to the events, else (no --events) written for the ring only.
            let mut one = None;
            let bytes = if events.enabled() {
                events.written_since(from)
            } else {
                let mut sink = EventSink::new(true);
                sink.emit(a.ts, "alert", &a.flow, Direction::ToServer, &body);
                &*one.insert(sink.take())
            };
            // Serialized by serde_json: UTF-8 (checked, not assumed).
            let line = match std::str::from_utf8(bytes) {
                Ok(l) => std::borrow::Cow::Borrowed(l),
                Err(_) => String::from_utf8_lossy(bytes),
            };
            let line = line.trim_end();
            if let Ok(mut r) = m.recent_alerts.lock() {
                // The oldest line's buffer is reused for the newest.
                let mut s = if r.len() >= RECENT_ALERTS {
                    r.pop_front().unwrap_or_default()
                } else {
                    String::new()
                };
                s.clear();
                s.push_str(line);
                r.push_back(s);
            }
        }
    }
}
