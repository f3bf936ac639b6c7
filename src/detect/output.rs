//! Alerts out: the EVE `alert` event, the alert metrics, and the ring of recent alerts served
//! by `GET /api/alerts`.
//!
//! The event follows Suricata's EVE `alert` object (`signature_id`, `signature`, `category`,
//! `severity`) plus medtap's evidence: the protocol and fact values that matched (or the
//! anomaly's measure), which device of the flow it is about, and `count` (1, or the total of a
//! de-duplication window in its follow-up alert, with `first_seen`). `src`/`dest` are the
//! flow's client and server.

use std::collections::HashSet;

use serde::Serialize;

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
    matched: serde_json::Map<String, serde_json::Value>,
    device: DeviceRef,
    peer: String,
    count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_seen: Option<Ts>,
}

#[derive(Serialize)]
struct DeviceRef {
    side: &'static str,
    ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    mac: Option<String>,
}

fn json(v: &FactValue) -> serde_json::Value {
    match v {
        FactValue::Bool(b) => (*b).into(),
        FactValue::Int(i) => (*i).into(),
        FactValue::Str(s) => s.clone().into(),
        FactValue::List(l) => l.clone().into(),
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
    counted: HashSet<(u64, String)>,
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
                matched: a
                    .matched
                    .iter()
                    .map(|(k, v)| (k.clone(), json(v)))
                    .collect(),
                device: DeviceRef {
                    side: a.device_side,
                    ip: dev.to_string(),
                    mac: mac(dev_mac),
                },
                peer: peer.to_string(),
                count: a.count,
                first_seen: (a.count > 1).then_some(a.first),
            };
            let from = events.pending_bytes();
            events.emit(a.ts, "alert", &a.flow, Direction::ToServer, &body);
            let Some(m) = metrics else {
                continue;
            };
            m.alerts
                .with_label_values(&[
                    &a.signature_id.to_string(),
                    &a.severity.to_string(),
                    a.category,
                ])
                .inc();
            let label = a
                .family
                .clone()
                .map(|f| (f, true))
                .or(a.anomaly.map(|k| (k.to_string(), false)));
            if let Some((label, legacy)) = label {
                if self.counted.len() >= COUNTED_FLOWS {
                    self.counted.clear();
                }
                if self.counted.insert((a.flow.flow_id, label.clone())) {
                    let v = if legacy {
                        &m.legacy_flows
                    } else {
                        &m.anomalous_flows
                    };
                    v.with_label_values(&[&label]).inc();
                }
            }
            // The line just written to the events, else (no --events) written for the ring only.
            let line = if events.enabled() {
                String::from_utf8_lossy(events.written_since(from))
                    .trim_end()
                    .to_string()
            } else {
                let mut one = EventSink::new(true);
                one.emit(a.ts, "alert", &a.flow, Direction::ToServer, &body);
                String::from_utf8_lossy(&one.take()).trim_end().to_string()
            };
            if let Ok(mut r) = m.recent_alerts.lock() {
                if r.len() >= RECENT_ALERTS {
                    r.pop_front();
                }
                r.push_back(line);
            }
        }
    }
}
