//! The Prometheus registry: every [`Counter`] of the workers, plus gauges and the capture
//! thread's own counters. Workers keep plain integers and merge deltas here once per batch
//! ([`Metrics::merge`]), so the packet path never touches an atomic shared with other threads.
//!
//! Names follow Prometheus conventions (`medtap_` prefix, `_total` counters, base units); label
//! values come from fixed sets in code, never from a packet.

use std::collections::HashMap;

use prometheus::{
    Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::stats::{Counter, Family, WorkerStats, FAMILY_SLOTS};

pub struct Metrics {
    pub registry: Registry,
    counters: Vec<IntCounter>,
    /// One per [`WorkerStats::fam`] slot.
    fam: Vec<IntCounter>,
    pub flows_active: IntGauge,
    pub flows_peak: IntGauge,
    pub reassembly_bytes: IntGauge,
    /// Capture files by outcome: ok, damaged (read until an error), skipped (not a capture).
    pub capture_files: IntCounterVec,
    /// Packets handed to the pipeline by the capture thread, by source kind.
    pub capture_packets: IntCounter,
    pub capture_bytes: IntCounter,
    /// Capture records that could not be read (truncated or corrupt file), by kind.
    pub capture_damage: IntCounterVec,
    pub events_written: IntCounter,
    /// Packets lost before medtap saw them or dropped by medtap, by interface and reason
    /// (kernel, interface, queue_full).
    pub capture_drops: IntCounterVec,
    pub up: IntGauge,
    /// Seconds between a packet's capture time and its hand-over to a worker (live).
    pub capture_lag: prometheus::Gauge,
    pub replay_progress: IntGauge,
    /// Observation batches a worker dropped because the central thread was behind (live).
    pub observations_dropped: IntCounter,
    /// Devices in the inventory, by category.
    pub devices: IntGaugeVec,
    /// Devices whose identified OS is end-of-life.
    pub devices_eol_os: IntGauge,
    /// New devices not added because the inventory was full (`max_devices`).
    pub devices_dropped: IntCounter,
    /// Alerts emitted, by signature id, severity and category (label values from the loaded
    /// rule set, never from a packet).
    pub alerts: IntCounterVec,
    /// Flows that used a legacy or cleartext protocol, by rule family.
    pub legacy_flows: IntCounterVec,
    /// Flows that raised a behaviour anomaly, by kind.
    pub anomalous_flows: IntCounterVec,
    /// Detection state caps hit, by table.
    pub detect_cap_hits: IntCounterVec,
    /// The most recent alerts (EVE JSON lines, without their newline), newest last, for `GET
    /// /api/alerts`. Bytes: written from `&str`s and ASCII, so UTF-8 (the handler serves them
    /// as they are; checking each line as it was kept cost more than the ring itself).
    pub recent_alerts: std::sync::Mutex<std::collections::VecDeque<Vec<u8>>>,
}

impl Metrics {
    pub fn new(version: &str) -> Metrics {
        let registry = Registry::new();
        let mut vecs: HashMap<&'static str, IntCounterVec> = HashMap::new();
        let mut counters = Vec::with_capacity(Counter::COUNT);
        for c in Counter::all() {
            let (name, help, labels) = c.spec();
            let names: Vec<&str> = labels.iter().map(|(k, _)| *k).collect();
            let vec = vecs.entry(name).or_insert_with(|| {
                let v =
                    IntCounterVec::new(Opts::new(name, help), &names).expect("static metric spec"); // ok: static table, tested
                registry
                    .register(Box::new(v.clone()))
                    .expect("unique metric names"); // ok: static table, tested
                v
            });
            let values: Vec<&str> = labels.iter().map(|(_, v)| *v).collect();
            counters.push(vec.with_label_values(&values));
        }
        let mut fam = Vec::with_capacity(FAMILY_SLOTS);
        for f in Family::ALL {
            let (name, help, labels, values) = f.spec();
            let v = IntCounterVec::new(Opts::new(name, help), labels).expect("static metric spec"); // ok: static table, tested
            registry
                .register(Box::new(v.clone()))
                .expect("unique metric names"); // ok: static table, tested
            match values {
                [a] => fam.extend(a.iter().map(|x| v.with_label_values(&[*x]))),
                [a, b] => {
                    for x in a.iter() {
                        fam.extend(b.iter().map(|y| v.with_label_values(&[*x, *y])));
                    }
                }
                _ => {}
            }
        }
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("static metric spec"); // ok: static
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric names"); // ok: static
            g
        };
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let v = IntCounterVec::new(Opts::new(name, help), labels).expect("static metric spec"); // ok: static
            registry
                .register(Box::new(v.clone()))
                .expect("unique metric names"); // ok: static
            v
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("static metric spec"); // ok: static
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric names"); // ok: static
            c
        };
        let flows_active = gauge("medtap_flows_active", "Flows in the flow tables now.");
        let flows_peak = gauge(
            "medtap_flows_peak",
            "The most flows the flow tables held at once (each worker's peak, summed).",
        );
        let reassembly_bytes = gauge(
            "medtap_reassembly_buffered_bytes",
            "Out-of-order TCP bytes held by reassembly now.",
        );
        let capture_files = counter_vec(
            "medtap_capture_files_total",
            "Capture files read, by outcome.",
            &["result"],
        );
        for r in ["ok", "damaged", "skipped"] {
            capture_files.with_label_values(&[r]);
        }
        let capture_packets = counter(
            "medtap_capture_packets_total",
            "Packets read from capture sources.",
        );
        let capture_bytes = counter(
            "medtap_capture_bytes_total",
            "Bytes captured (captured length) read from capture sources.",
        );
        let capture_damage = counter_vec(
            "medtap_capture_damage_total",
            "Capture file damage: records that could not be read.",
            &["kind"],
        );
        for k in ["truncated", "corrupt"] {
            capture_damage.with_label_values(&[k]);
        }
        let capture_drops = counter_vec(
            "medtap_capture_drops_total",
            "Packets lost before processing, by interface and reason (kernel, interface, queue_full).",
            &["interface", "reason"],
        );
        let events_written = counter(
            "medtap_events_written_total",
            "Events written to the event log.",
        );
        let capture_lag = prometheus::Gauge::new(
            "medtap_capture_lag_seconds",
            "Seconds between the newest packet's capture time and its hand-over to a worker (live capture).",
        )
        .expect("static metric spec"); // ok: static
        registry
            .register(Box::new(capture_lag.clone()))
            .expect("unique metric names"); // ok: static
        let up = gauge(
            "medtap_capture_running",
            "1 while a capture source is being read.",
        );
        let replay_progress = gauge(
            "medtap_replay_bytes_read",
            "Bytes of the replayed files read so far.",
        );
        let observations_dropped = counter(
            "medtap_observations_dropped_total",
            "Observations (device evidence, flow starts and ends, protocol facts) dropped because the central thread was behind (live capture only).",
        );
        let devices = IntGaugeVec::new(
            Opts::new(
                "medtap_devices",
                "Devices in the inventory, by identified category.",
            ),
            &["category"],
        )
        .expect("static metric spec"); // ok: static
        registry
            .register(Box::new(devices.clone()))
            .expect("unique metric names"); // ok: static
        for c in crate::fingerprint::Category::ALL {
            devices.with_label_values(&[c.as_str()]);
        }
        let devices_eol_os = gauge(
            "medtap_devices_eol_os",
            "Devices whose identified operating system is end-of-life.",
        );
        let devices_dropped = counter(
            "medtap_devices_dropped_total",
            "New devices not added to the inventory because it held max_devices.",
        );
        let alerts = counter_vec(
            "medtap_alerts_total",
            "Alerts emitted, by signature id, severity (1 high .. 3 low) and category.",
            &["signature_id", "severity", "category"],
        );
        let legacy_flows = counter_vec(
            "medtap_legacy_flows_total",
            "Flows that used a legacy or cleartext protocol, by rule family.",
            &["protocol"],
        );
        let anomalous_flows = counter_vec(
            "medtap_anomalous_flows_total",
            "Flows that raised a behaviour anomaly, by kind.",
            &["kind"],
        );
        for k in crate::detect::rules::AnomalyKind::ALL {
            anomalous_flows.with_label_values(&[k.as_str()]);
        }
        let detect_cap_hits = counter_vec(
            "medtap_detect_cap_hits_total",
            "Detection state tables that were full when a new entry came, by table.",
            &["table"],
        );
        for t in [
            "dedup",
            "devices",
            "baseline",
            "scan",
            "burst",
            "dicom_scp",
            "reorder",
        ] {
            detect_cap_hits.with_label_values(&[t]);
        }
        let build = IntGaugeVec::new(
            Opts::new("medtap_build_info", "medtap build information; always 1."),
            &["version"],
        )
        .expect("static metric spec"); // ok: static
        registry
            .register(Box::new(build.clone()))
            .expect("unique metric names"); // ok: static
        build.with_label_values(&[version]).set(1);
        Metrics {
            registry,
            counters,
            fam,
            flows_active,
            flows_peak,
            reassembly_bytes,
            capture_files,
            capture_packets,
            capture_bytes,
            capture_damage,
            events_written,
            capture_drops,
            up,
            capture_lag,
            replay_progress,
            observations_dropped,
            devices,
            devices_eol_os,
            devices_dropped,
            alerts,
            legacy_flows,
            anomalous_flows,
            detect_cap_hits,
            recent_alerts: std::sync::Mutex::new(std::collections::VecDeque::new()),
        }
    }

    /// Create the alert series of every loaded rule at 0 (so dashboards and alerting rules see
    /// them before the first alert), and the legacy-flow series of every rule family.
    pub fn init_alert_labels(&self, rules: &crate::detect::RuleSet) {
        for (id, sev, cat) in rules.label_sets() {
            self.alerts
                .with_label_values(&[&id.to_string(), &sev.to_string(), cat]);
        }
        for r in &rules.rules {
            if let Some(f) = &r.family {
                self.legacy_flows.with_label_values(&[f]);
            }
        }
    }

    /// Alerts emitted so far (all labels).
    pub fn alerts_total(&self) -> u64 {
        use prometheus::core::Collector;
        self.alerts
            .collect()
            .iter()
            .flat_map(|mf| {
                mf.get_metric()
                    .iter()
                    .map(|m| m.get_counter().get_value() as u64)
            })
            .sum()
    }

    /// Add what `now` counted since `prev` and remember `now`.
    pub fn merge(&self, prev: &mut WorkerStats, now: &WorkerStats) {
        add_deltas(&self.counters, &prev.c, &now.c);
        add_deltas(&self.fam, &prev.fam, &now.fam);
        self.flows_active
            .add(now.flows_active as i64 - prev.flows_active as i64);
        self.flows_peak
            .add(now.flows_peak as i64 - prev.flows_peak as i64);
        self.reassembly_bytes
            .add(now.reasm_bytes as i64 - prev.reasm_bytes as i64);
        *prev = now.clone();
    }

    /// Every worker counter as merged so far (for periodic `stats` events).
    pub fn snapshot(&self) -> WorkerStats {
        let mut s = WorkerStats::default();
        for (i, c) in self.counters.iter().enumerate() {
            s.c[i] = c.get();
        }
        for (i, c) in self.fam.iter().enumerate() {
            s.fam[i] = c.get();
        }
        s
    }

    /// Drops counted for every interface and reason.
    pub fn drops_total(&self) -> u64 {
        use prometheus::core::Collector;
        self.capture_drops
            .collect()
            .iter()
            .flat_map(|mf| mf.get_metric().iter())
            .map(|m| m.get_counter().get_value() as u64)
            .sum()
    }

    pub fn get(&self, c: Counter) -> u64 {
        self.counters[c as usize].get()
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let enc = TextEncoder::new();
        let _ = enc.encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Adds `now - prev` to each counter whose slot moved. Runs twice per packet batch over a few
/// hundred slots of which a handful moved: eight slots at a time are skipped when none of them
/// moved (a comparison the compiler does in vector registers).
fn add_deltas(counters: &[IntCounter], prev: &[u64], now: &[u64]) {
    const LANES: usize = 8;
    for (k, (p, n)) in prev.chunks(LANES).zip(now.chunks(LANES)).enumerate() {
        if p.iter().zip(n).fold(0, |a, (x, y)| a | (x ^ y)) == 0 {
            continue;
        }
        for (j, (x, y)) in p.iter().zip(n).enumerate() {
            let d = y.wrapping_sub(*x);
            if d != 0 {
                if let Some(c) = counters.get(k * LANES + j) {
                    c.inc_by(d);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_builds_and_renders_every_counter() {
        let m = Metrics::new("test");
        let mut prev = WorkerStats::default();
        let mut now = WorkerStats::default();
        now.inc(Counter::Packets);
        now.flows_active = 3;
        m.merge(&mut prev, &now);
        let text = m.render();
        assert!(text.contains("medtap_packets_total 1"));
        assert!(text.contains("medtap_flows_active 3"));
        assert!(text.contains("medtap_decode_errors_total{kind=\"truncated\",layer=\"tcp\"} 0"));
        assert!(text.contains("medtap_build_info{version=\"test\"} 1"));
        assert!(text
            .contains("medtap_dicom_dimse_total{command=\"C-STORE-RQ\",status_class=\"none\"} 0"));
        assert!(text.contains("medtap_hl7_acks_total{code=\"AA\"} 0"));
        assert_eq!(m.fam.len(), FAMILY_SLOTS);
    }
}
