//! State that survives a restart: one SQLite database, `<state-dir>/medtap.db`, in WAL mode,
//! owned by the central thread and written in batches off the packet path (every few seconds
//! of wall time and at exit). Without `--state-dir` the database lives in memory.
//!
//! Tables:
//! - `devices (key TEXT PRIMARY KEY, data TEXT)`: one row per device, `data` the JSON of
//!   [`super::devices::Device`] (owned by the inventory).
//! - `kv (namespace TEXT, key TEXT, value TEXT, PRIMARY KEY (namespace, key))`: a small
//!   key-value store for other components of the central thread.
//!
//! ## Store API for other components (detection baselines)
//!
//! The central thread owns one [`Store`] and lends it to the detection engine. A component
//! picks a namespace of its own (e.g. `"detect.baseline"`) and uses:
//! - [`Store::kv_put`] / [`Store::kv_delete`]: buffered; written with the next batch
//!   ([`Store::flush`], called by the central thread every few seconds and at exit), in one
//!   transaction together with the inventory's changes;
//! - [`Store::kv_get`] / [`Store::kv_load`]: read (at start-up; they see unflushed puts too);
//! - [`Store::conn`]: the connection itself, for a component that wants a table of its own
//!   (create it with `CREATE TABLE IF NOT EXISTS <component>_...`; use it from the central
//!   thread only, never from a packet path).
//!
//! Values are the caller's text (JSON is the convention). Nothing stored may be a PHI value,
//! a password or a community.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension};

use super::devices::Device;

/// File name of the database inside `--state-dir`.
pub const DB_FILE: &str = "medtap.db";

pub struct Store {
    conn: Connection,
    path: Option<PathBuf>,
    /// Buffered key-value writes: (namespace, key) -> Some(value) or None (delete).
    kv_pending: BTreeMap<(String, String), Option<String>>,
}

impl Store {
    /// Open (creating) the database under `state_dir`, or an in-memory one.
    pub fn open(state_dir: Option<&Path>) -> Result<Store> {
        let (conn, path) = match state_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("--state-dir {}: cannot create", dir.display()))?;
                let p = dir.join(DB_FILE);
                let c = Connection::open(&p)
                    .with_context(|| format!("--state-dir: cannot open {}", p.display()))?;
                (c, Some(p))
            }
            None => (Connection::open_in_memory()?, None),
        };
        if path.is_some() {
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS devices (key TEXT PRIMARY KEY, data TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS kv (namespace TEXT NOT NULL, key TEXT NOT NULL,
                 value TEXT NOT NULL, PRIMARY KEY (namespace, key));",
        )
        .with_context(|| match &path {
            Some(p) => format!("{}: not a medtap state database", p.display()),
            None => "in-memory state database".to_string(),
        })?;
        Ok(Store {
            conn,
            path,
            kv_pending: BTreeMap::new(),
        })
    }

    /// The database file, if on disk.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The connection (central thread only; see the module documentation).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Every stored device. A row that does not parse is reported and skipped.
    pub fn load_devices(&self) -> Result<Vec<Device>> {
        let mut st = self
            .conn
            .prepare("SELECT key, data FROM devices ORDER BY rowid")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (key, data) = row?;
            match serde_json::from_str::<Device>(&data) {
                Ok(d) => out.push(d),
                Err(e) => tracing::warn!(device = %key, "state: stored device skipped: {e}"),
            }
        }
        Ok(out)
    }

    /// Buffer a key-value write (see the module documentation).
    pub fn kv_put(&mut self, namespace: &str, key: &str, value: String) {
        self.kv_pending
            .insert((namespace.to_string(), key.to_string()), Some(value));
    }

    /// Buffer a key-value delete.
    pub fn kv_delete(&mut self, namespace: &str, key: &str) {
        self.kv_pending
            .insert((namespace.to_string(), key.to_string()), None);
    }

    /// One value (unflushed writes included).
    pub fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<String>> {
        if let Some(v) = self
            .kv_pending
            .get(&(namespace.to_string(), key.to_string()))
        {
            return Ok(v.clone());
        }
        Ok(self
            .conn
            .query_row(
                "SELECT value FROM kv WHERE namespace = ?1 AND key = ?2",
                params![namespace, key],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Every (key, value) of a namespace, sorted by key (unflushed writes included).
    pub fn kv_load(&self, namespace: &str) -> Result<Vec<(String, String)>> {
        let mut st = self
            .conn
            .prepare("SELECT key, value FROM kv WHERE namespace = ?1 ORDER BY key")?;
        let mut m: BTreeMap<String, String> = st
            .query_map(params![namespace], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for ((ns, k), v) in &self.kv_pending {
            if ns == namespace {
                match v {
                    Some(v) => {
                        m.insert(k.clone(), v.clone());
                    }
                    None => {
                        m.remove(k);
                    }
                }
            }
        }
        Ok(m.into_iter().collect())
    }

    /// Write the changed devices and the buffered key-value writes in one transaction.
    pub fn flush(&mut self, devices: &[&Device]) -> Result<()> {
        if devices.is_empty() && self.kv_pending.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        {
            let mut up = tx.prepare_cached(
                "INSERT INTO devices (key, data) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET data = excluded.data",
            )?;
            for d in devices {
                up.execute(params![d.key, serde_json::to_string(d)?])?;
            }
            let mut put = tx.prepare_cached(
                "INSERT INTO kv (namespace, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT(namespace, key) DO UPDATE SET value = excluded.value",
            )?;
            let mut del = tx.prepare_cached("DELETE FROM kv WHERE namespace = ?1 AND key = ?2")?;
            for ((ns, k), v) in std::mem::take(&mut self.kv_pending) {
                match v {
                    Some(v) => put.execute(params![ns, k, v])?,
                    None => del.execute(params![ns, k])?,
                };
            }
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_round_trip_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = Store::open(Some(dir.path())).unwrap();
            s.kv_put("detect.baseline", "a", "{\"n\":1}".into());
            s.kv_put("detect.baseline", "b", "2".into());
            s.kv_put("other", "a", "x".into());
            assert_eq!(
                s.kv_get("detect.baseline", "a").unwrap().as_deref(),
                Some("{\"n\":1}")
            );
            s.flush(&[]).unwrap();
            s.kv_delete("detect.baseline", "b");
            assert_eq!(s.kv_load("detect.baseline").unwrap().len(), 1);
            s.flush(&[]).unwrap();
        }
        let s = Store::open(Some(dir.path())).unwrap();
        assert_eq!(
            s.kv_load("detect.baseline").unwrap(),
            vec![("a".to_string(), "{\"n\":1}".to_string())]
        );
        let mode: String = s
            .conn()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }
}
