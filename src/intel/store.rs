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
//!
//! ## Schema version
//!
//! The file carries `PRAGMA application_id` [`APPLICATION_ID`] and `PRAGMA user_version`
//! [`SCHEMA_VERSION`] (2: devices, kv and the detection baselines of
//! [`crate::detect::anomaly::BASELINE_SCHEMA`]). A database of schema 1 (written before the
//! version was recorded: no application id, only medtap's tables) is upgraded in place. A file
//! that is not SQLite, another application's database, or a newer schema is refused with a
//! [`crate::config::ConfigError`] (exit code 2) naming the file, never overwritten.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension};

use super::devices::Device;

/// File name of the database inside `--state-dir`.
pub const DB_FILE: &str = "medtap.db";

/// `PRAGMA application_id` of a medtap state database ("MdTp").
pub const APPLICATION_ID: i32 = 0x4d64_5470;

/// `PRAGMA user_version` this medtap writes and reads (see the module documentation).
pub const SCHEMA_VERSION: i32 = 2;

/// Tables a medtap database may hold (anything else: another application's database).
fn ours(table: &str) -> bool {
    matches!(table, "devices" | "kv") || table.starts_with("baseline_")
}

/// Refuse what is not a medtap database of a schema this build reads.
fn check_schema(
    conn: &Connection,
    path: &Path,
) -> std::result::Result<(), crate::config::ConfigError> {
    use crate::config::ConfigError;
    let bad = |why: String| ConfigError(format!("--state-dir: {}: {why}", path.display()));
    let app: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(|e| bad(format!("not a medtap state database ({e})")))?;
    let version: i32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| bad(format!("not a medtap state database ({e})")))?;
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| bad(format!("not a medtap state database ({e})")))?;
    if app != APPLICATION_ID && app != 0 {
        return Err(bad(format!(
            "not a medtap state database (application id {app:#x})"
        )));
    }
    if let Some(t) = tables.iter().find(|t| !ours(t)) {
        return Err(bad(format!(
            "not a medtap state database (it has a table {t:?})"
        )));
    }
    if version > SCHEMA_VERSION {
        return Err(bad(format!(
            "schema version {version} is newer than this medtap reads ({SCHEMA_VERSION}); use a newer medtap or another --state-dir"
        )));
    }
    Ok(())
}

/// Another component's writes inside the store's batch transaction ([`Store::flush_with`]).
pub type ExtraWrites<'a> = dyn FnMut(&rusqlite::Transaction) -> Result<()> + 'a;

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
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        if let Some(p) = &path {
            check_schema(&conn, p)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        conn.execute_batch(&format!(
            "BEGIN;
             CREATE TABLE IF NOT EXISTS devices (key TEXT PRIMARY KEY, data TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS kv (namespace TEXT NOT NULL, key TEXT NOT NULL,
                 value TEXT NOT NULL, PRIMARY KEY (namespace, key));
             {}
             PRAGMA application_id = {APPLICATION_ID};
             PRAGMA user_version = {SCHEMA_VERSION};
             COMMIT;",
            crate::detect::anomaly::BASELINE_SCHEMA
        ))
        .with_context(|| match &path {
            Some(p) => format!("{}: cannot set up the state database", p.display()),
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
        self.flush_with(devices, None)
    }

    /// [`Store::flush`], with `extra` writes of another component (the detection baselines)
    /// in the same transaction.
    pub fn flush_with(
        &mut self,
        devices: &[&Device],
        extra: Option<&mut ExtraWrites<'_>>,
    ) -> Result<()> {
        if devices.is_empty() && self.kv_pending.is_empty() && extra.is_none() {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        if let Some(f) = extra {
            f(&tx)?;
        }
        {
            let mut up = tx.prepare_cached(
                "INSERT INTO devices (key, data) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET data = excluded.data",
            )?;
            // Without --state-dir nothing reads the rows back (the table itself is the
            // inventory): they would only double its memory.
            if self.path.is_some() {
                for d in devices {
                    up.execute(params![d.key, serde_json::to_string(d)?])?;
                }
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
