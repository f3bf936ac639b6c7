//! The learnt baselines in the SQLite store (`--state-dir`), next to the inventory.
//!
//! Tables (schema [`SCHEMA`], part of the store's schema version, see
//! [`crate::intel::store::SCHEMA_VERSION`]):
//! - `baseline_devices (ip, first_seen, vol_start, vol_bytes, vol_mean, vol_n, peers_full,
//!   vol_alerted)`: one row per device with a baseline; `first_seen` starts its learning
//!   period, the `vol_*` columns are the volume detector's open interval (and whether it has
//!   alerted) and moving mean (times: packet time, µs).
//! - `baseline_peers (ip, peer, port, proto)`: the (peer, service port, transport) pairs learnt.
//! - `baseline_names (ip, kind, name)`: `kind` `store_dest` (a DICOM C-STORE destination of
//!   device `ip`) or `hl7_sender` (a sender, MSH-3^MSH-4, HL7 receiver `ip` got).
//! - `baseline_scp_aes (ip, port, ae)`: called AE titles a DICOM SCP accepted.
//! - `baseline_clinical (ip)`: hosts seen speaking DICOM or HL7.
//!
//! Rows only grow except `baseline_devices`, which is rewritten for the devices that changed.
//! Writes are the changes since the last batch ([`Pending`]), handed to the central thread's
//! periodic store transaction. Loading applies the in-memory caps; rows beyond them, or that do
//! not parse, are skipped and reported once. Nothing here is PHI: addresses, ports, DICOM AE
//! titles and HL7 application names.

use std::collections::HashSet;
use std::net::IpAddr;

use anyhow::{Context, Result};
use rusqlite::{params, Connection, Transaction};

use super::{
    Anomalies, AnomalyKind, Device, MAX_AES_PER_SCP, MAX_BURST_KEYS, MAX_DEVICES,
    MAX_NAMES_PER_DEVICE, MAX_PEERS_PER_DEVICE,
};
use crate::time::Ts;

/// `kind` of a C-STORE destination in `baseline_names`.
pub const STORE_DEST: &str = "store_dest";
/// `kind` of an HL7 sending application in `baseline_names`.
pub const HL7_SENDER: &str = "hl7_sender";

/// The baseline tables (created when missing).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS baseline_devices (ip TEXT PRIMARY KEY, first_seen INTEGER NOT NULL,
    vol_start INTEGER NOT NULL, vol_bytes INTEGER NOT NULL, vol_mean REAL NOT NULL,
    vol_n INTEGER NOT NULL, peers_full INTEGER NOT NULL,
    vol_alerted INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS baseline_peers (ip TEXT NOT NULL, peer TEXT NOT NULL,
    port INTEGER NOT NULL, proto INTEGER NOT NULL, PRIMARY KEY (ip, peer, port, proto))
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS baseline_names (ip TEXT NOT NULL, kind TEXT NOT NULL,
    name TEXT NOT NULL, PRIMARY KEY (ip, kind, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS baseline_scp_aes (ip TEXT NOT NULL, port INTEGER NOT NULL,
    ae TEXT NOT NULL, PRIMARY KEY (ip, port, ae)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS baseline_clinical (ip TEXT PRIMARY KEY) WITHOUT ROWID;
";

/// Changes since the last write. Bounded by the in-memory caps: a key is noted once, when it
/// enters its (capped) table; devices are a set.
#[derive(Default)]
pub struct Pending {
    pub devices: HashSet<IpAddr>,
    pub peers: Vec<(IpAddr, (IpAddr, u16, u8))>,
    pub names: Vec<(IpAddr, &'static str, String)>,
    pub scp_aes: Vec<((IpAddr, u16), String)>,
    pub clinical: Vec<IpAddr>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.devices.is_empty()
            && self.peers.is_empty()
            && self.names.is_empty()
            && self.scp_aes.is_empty()
            && self.clinical.is_empty()
    }
}

/// What loading found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub devices: usize,
    pub peers: usize,
    pub names: usize,
    /// Rows left out: over a cap, or not parsing.
    pub skipped: usize,
}

fn ip(s: &str) -> Option<IpAddr> {
    s.parse().ok()
}

impl Anomalies {
    /// Load the stored baseline (creating the tables if needed) and keep it from now on: every
    /// change is noted for [`Anomalies::write_baseline`].
    pub fn load_baseline(&mut self, conn: &Connection) -> Result<Loaded> {
        conn.execute_batch(SCHEMA)
            .context("creating the baseline tables")?;
        // A table of the first schema-2 layout (before vol_alerted).
        let has_alerted: bool = conn
            .prepare(
                "SELECT 1 FROM pragma_table_info('baseline_devices') WHERE name = 'vol_alerted'",
            )?
            .exists([])?;
        if !has_alerted {
            conn.execute_batch(
                "ALTER TABLE baseline_devices ADD COLUMN vol_alerted INTEGER NOT NULL DEFAULT 0",
            )?;
        }
        let mut n = Loaded::default();
        {
            let mut st = conn.prepare(
                "SELECT ip, first_seen, vol_start, vol_bytes, vol_mean, vol_n, peers_full,
                     vol_alerted
                 FROM baseline_devices ORDER BY first_seen, ip",
            )?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                let (Some(a), true) = (
                    ip(&r.get::<_, String>(0)?),
                    self.devices.len() < MAX_DEVICES,
                ) else {
                    n.skipped += 1;
                    continue;
                };
                let d = Device {
                    first_seen: Ts(r.get(1)?),
                    vol_start: Ts(r.get(2)?),
                    vol_bytes: r.get::<_, i64>(3)?.max(0) as u64,
                    vol_mean: r.get(4)?,
                    vol_n: r.get::<_, i64>(5)?.max(0) as u64,
                    peers_full: r.get::<_, i64>(6)? != 0,
                    vol_alerted: r.get::<_, i64>(7)? != 0,
                    ..Device::default()
                };
                self.devices.insert(a, d);
                n.devices += 1;
            }
        }
        {
            let mut st = conn.prepare("SELECT ip, peer, port, proto FROM baseline_peers")?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                let (a, peer) = (ip(&r.get::<_, String>(0)?), ip(&r.get::<_, String>(1)?));
                let (port, proto) = (r.get::<_, i64>(2)?, r.get::<_, i64>(3)?);
                let d = a.and_then(|a| self.devices.get_mut(&a));
                match (d, peer, u16::try_from(port), u8::try_from(proto)) {
                    (Some(d), Some(peer), Ok(port), Ok(proto))
                        if d.peers.len() < MAX_PEERS_PER_DEVICE =>
                    {
                        d.peers.insert((peer, port, proto));
                        n.peers += 1;
                    }
                    (Some(d), ..) if d.peers.len() >= MAX_PEERS_PER_DEVICE => {
                        d.peers_full = true;
                        n.skipped += 1;
                    }
                    _ => n.skipped += 1,
                }
            }
        }
        {
            let mut st = conn.prepare("SELECT ip, kind, name FROM baseline_names")?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                let a = ip(&r.get::<_, String>(0)?);
                let (kind, name): (String, String) = (r.get(1)?, r.get(2)?);
                let Some(d) = a.and_then(|a| self.devices.get_mut(&a)) else {
                    n.skipped += 1;
                    continue;
                };
                let ok = match kind.as_str() {
                    STORE_DEST => match ip(&name) {
                        Some(dest) if d.store_dests.len() < MAX_NAMES_PER_DEVICE => {
                            d.store_dests.insert(dest)
                        }
                        _ => false,
                    },
                    HL7_SENDER if d.hl7_senders.len() < MAX_NAMES_PER_DEVICE => {
                        d.hl7_senders.insert(name)
                    }
                    _ => false,
                };
                if ok {
                    n.names += 1;
                } else {
                    n.skipped += 1;
                }
            }
        }
        {
            let mut st =
                conn.prepare("SELECT ip, port, ae FROM baseline_scp_aes ORDER BY ip, port, ae")?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                let a = ip(&r.get::<_, String>(0)?);
                let port = u16::try_from(r.get::<_, i64>(1)?).ok();
                let ae: String = r.get(2)?;
                let (Some(a), Some(port)) = (a, port) else {
                    n.skipped += 1;
                    continue;
                };
                let key = (a, port);
                if !self.scp_aes.contains_key(&key) && self.scp_aes.len() >= MAX_BURST_KEYS {
                    n.skipped += 1;
                    continue;
                }
                let aes = self.scp_aes.entry(key).or_default();
                if aes.len() < MAX_AES_PER_SCP && !aes.contains(&ae) {
                    aes.push(ae);
                    n.names += 1;
                } else {
                    n.skipped += 1;
                }
            }
            // An SCP already at the threshold was reported in an earlier run.
            if let Some(a) = self.cfg.get(&AnomalyKind::DicomPromiscuousScp) {
                for (k, aes) in &self.scp_aes {
                    if aes.len() as u64 >= a.threshold {
                        self.scp_alerted.insert(*k);
                    }
                }
            }
        }
        {
            let mut st = conn.prepare("SELECT ip FROM baseline_clinical")?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                match ip(&r.get::<_, String>(0)?) {
                    Some(a) if self.clinical.len() < MAX_DEVICES => {
                        self.clinical.insert(a);
                    }
                    _ => n.skipped += 1,
                }
            }
        }
        self.pending = Some(Pending::default());
        Ok(n)
    }

    /// Whether changes wait for [`Anomalies::write_baseline`].
    pub fn baseline_dirty(&self) -> bool {
        self.pending.as_ref().is_some_and(|p| !p.is_empty())
    }

    /// Write the changes since the last call inside `tx` (the central thread's store batch).
    /// Nothing when the baseline is not kept.
    pub fn write_baseline(&mut self, tx: &Transaction) -> Result<()> {
        let Some(p) = &mut self.pending else {
            return Ok(());
        };
        if p.is_empty() {
            return Ok(());
        }
        let p = std::mem::take(p);
        let mut dev = tx.prepare_cached(
            "INSERT INTO baseline_devices (ip, first_seen, vol_start, vol_bytes, vol_mean, vol_n,
                 peers_full, vol_alerted) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT(ip) DO UPDATE SET first_seen = excluded.first_seen,
                 vol_start = excluded.vol_start, vol_bytes = excluded.vol_bytes,
                 vol_mean = excluded.vol_mean, vol_n = excluded.vol_n,
                 peers_full = excluded.peers_full, vol_alerted = excluded.vol_alerted",
        )?;
        for a in &p.devices {
            if let Some(d) = self.devices.get(a) {
                dev.execute(params![
                    a.to_string(),
                    d.first_seen.0,
                    d.vol_start.0,
                    d.vol_bytes.min(i64::MAX as u64) as i64,
                    d.vol_mean,
                    d.vol_n.min(i64::MAX as u64) as i64,
                    d.peers_full,
                    d.vol_alerted
                ])?;
            }
        }
        let mut peer = tx.prepare_cached(
            "INSERT OR IGNORE INTO baseline_peers (ip, peer, port, proto) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (a, (b, port, proto)) in &p.peers {
            peer.execute(params![a.to_string(), b.to_string(), port, proto])?;
        }
        let mut name = tx.prepare_cached(
            "INSERT OR IGNORE INTO baseline_names (ip, kind, name) VALUES (?1, ?2, ?3)",
        )?;
        for (a, kind, n) in &p.names {
            name.execute(params![a.to_string(), kind, n])?;
        }
        let mut ae = tx.prepare_cached(
            "INSERT OR IGNORE INTO baseline_scp_aes (ip, port, ae) VALUES (?1, ?2, ?3)",
        )?;
        for ((a, port), t) in &p.scp_aes {
            ae.execute(params![a.to_string(), port, t])?;
        }
        let mut cl =
            tx.prepare_cached("INSERT OR IGNORE INTO baseline_clinical (ip) VALUES (?1)")?;
        for a in &p.clinical {
            cl.execute(params![a.to_string()])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{DetectOptions, DeviceView, RuleSet};
    use crate::flow::FlowMeta;
    use crate::observe::{FactValue, Facts, Observation};

    fn flow(id: u64, c: &str, s: &str, port: u16) -> FlowMeta {
        FlowMeta {
            flow_id: id,
            proto: 6,
            client: (c.parse().unwrap(), 40000),
            server: (s.parse().unwrap(), port),
            vlan: [0, 0],
            client_mac: [0; 6],
            server_mac: [0; 6],
            to_group: false,
            app_proto: None,
        }
    }

    fn observations() -> Vec<Observation> {
        let ts = |s: i64| Ts(1_700_000_000_000_000 + s * 1_000_000);
        let end = |id, s, c: &str, d: &str, port| Observation::FlowEnd {
            ts: ts(s),
            first: ts(s),
            flow: flow(id, c, d, port),
            packets: [3, 3],
            bytes: [500, 2000],
            state: "closed",
        };
        vec![
            end(1, 0, "10.0.0.1", "10.0.0.2", 80),
            end(2, 5, "10.0.0.1", "10.0.0.9", 443),
            Observation::Facts {
                ts: ts(6),
                flow: flow(3, "10.0.0.21", "10.0.0.30", 104),
                facts: Facts::new("dicom")
                    .with("c_store", FactValue::Int(2))
                    .with("result", FactValue::Str("accepted".into()))
                    .with("called_ae", FactValue::Str("PACS".into())),
            },
            Observation::Facts {
                ts: ts(7),
                flow: flow(4, "10.0.0.40", "10.0.0.41", 2575),
                facts: Facts::new("hl7")
                    .with("from", FactValue::Str("client".into()))
                    .with("sending_application", FactValue::Str("PUMP_GW".into())),
            },
            end(5, 700, "10.0.0.1", "10.0.0.2", 80),
        ]
    }

    /// Everything learnt, as comparable text.
    fn dump(a: &Anomalies) -> Vec<String> {
        let mut v: Vec<String> = a
            .devices
            .iter()
            .map(|(ip, d)| {
                let mut peers: Vec<_> = d.peers.iter().map(|p| format!("{p:?}")).collect();
                peers.sort();
                let mut st: Vec<_> = d.store_dests.iter().map(|p| p.to_string()).collect();
                st.sort();
                let mut hl: Vec<_> = d.hl7_senders.iter().cloned().collect();
                hl.sort();
                format!(
                    "{ip} {} {} {} {} {} {} {} {peers:?} {st:?} {hl:?}",
                    d.first_seen.0,
                    d.vol_start.0,
                    d.vol_bytes,
                    d.vol_mean,
                    d.vol_n,
                    d.peers_full,
                    d.vol_alerted
                )
            })
            .collect();
        v.extend(
            a.scp_aes
                .iter()
                .map(|(k, aes)| format!("scp {k:?} {aes:?}")),
        );
        v.extend(a.clinical.iter().map(|ip| format!("clinical {ip}")));
        v.sort();
        v
    }

    #[test]
    fn what_is_learnt_round_trips_through_the_store() {
        let rules = RuleSet::shipped().unwrap();
        let opts = DetectOptions::default();
        let conn = Connection::open_in_memory().unwrap();
        let mut a = Anomalies::new(&rules, &opts);
        assert_eq!(a.load_baseline(&conn).unwrap(), Loaded::default());
        let (mut out, mut hits) = (Vec::new(), Vec::new());
        let obs = observations();
        // Half written, then the rest: only the changes go in the second batch.
        for (i, o) in obs.iter().enumerate() {
            a.observe(o, &DeviceView::default(), &mut out, &mut hits);
            if i == 1 || i == obs.len() - 1 {
                let tx = conn.unchecked_transaction().unwrap();
                a.write_baseline(&tx).unwrap();
                tx.commit().unwrap();
                assert!(!a.baseline_dirty());
            }
        }
        let mut b = Anomalies::new(&rules, &opts);
        let n = b.load_baseline(&conn).unwrap();
        assert_eq!(n.skipped, 0);
        assert_eq!((n.devices, n.peers, n.names), (5, 4, 3), "{n:?}");
        assert_eq!(dump(&a), dump(&b));
        let text = dump(&b).join("\n");
        for want in ["PUMP_GW", "\"PACS\"", "clinical 10.0.0.21", "10.0.0.9"] {
            assert!(text.contains(want), "{want} missing:\n{text}");
        }
    }

    #[test]
    fn loading_applies_the_caps_and_skips_bad_rows() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        // The first schema-2 layout, without vol_alerted: upgraded on load.
        conn.execute_batch(
            "DROP TABLE baseline_devices;
             CREATE TABLE baseline_devices (ip TEXT PRIMARY KEY, first_seen INTEGER NOT NULL,
                 vol_start INTEGER NOT NULL, vol_bytes INTEGER NOT NULL, vol_mean REAL NOT NULL,
                 vol_n INTEGER NOT NULL, peers_full INTEGER NOT NULL);",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO baseline_devices VALUES ('10.0.0.1', 1, 1, 0, 0.0, 0, 0),
                 ('not an address', 1, 1, 0, 0.0, 0, 0)",
            [],
        )
        .unwrap();
        let tx = conn.unchecked_transaction().unwrap();
        for i in 0..(MAX_PEERS_PER_DEVICE + 3) {
            tx.execute(
                "INSERT INTO baseline_peers VALUES ('10.0.0.1', ?1, 80, 6)",
                params![format!("10.1.{}.{}", i / 250, i % 250)],
            )
            .unwrap();
        }
        tx.execute(
            "INSERT INTO baseline_names VALUES ('10.0.0.1', 'no_such_kind', 'x'),
                 ('10.0.0.7', 'hl7_sender', 'orphan')",
            [],
        )
        .unwrap();
        tx.commit().unwrap();
        let mut a = Anomalies::new(&RuleSet::shipped().unwrap(), &DetectOptions::default());
        let n = a.load_baseline(&conn).unwrap();
        assert_eq!(n.devices, 1);
        assert_eq!(n.peers, MAX_PEERS_PER_DEVICE);
        assert_eq!(n.skipped, 1 + 3 + 2);
        assert!(a.devices[&"10.0.0.1".parse::<IpAddr>().unwrap()].peers_full);
    }
}
