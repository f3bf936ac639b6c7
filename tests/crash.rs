//! `kill -9` leaves a SQLite state (`--state-dir`, WAL mode) that opens, passes
//! `PRAGMA integrity_check`, and holds everything up to the last flush.
//!
//! 1. Killed after the final flush (the replay is done, `--linger` keeps the process up): the
//!    devices table equals that of a run that exited normally, and `medtap inventory` reads it.
//! 2. Killed in the middle of a replay, at several moments: the database opens, is intact, and
//!    every row it holds is a device of the complete run.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn devices(state: &Path) -> BTreeMap<String, serde_json::Value> {
    let db = rusqlite::Connection::open(state.join("medtap.db")).unwrap();
    let ok: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok", "integrity_check of {state:?}");
    let mode: String = db
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    let tables: i64 = db
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'devices'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    if tables == 0 {
        // killed between creating the file and setting it up: nothing was stored yet
        return BTreeMap::new();
    }
    assert_eq!(mode, "wal");
    let mut st = db.prepare("SELECT key, data FROM devices").unwrap();
    let rows = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap();
    rows.map(|r| {
        let (k, d) = r.unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&d).unwrap_or_else(|e| panic!("device {k}: bad JSON {e}"));
        (k, v)
    })
    .collect()
}

fn inputs() -> Vec<std::path::PathBuf> {
    vec![
        common::pcap("inventory"),
        common::pcap("dicom"),
        common::pcap("hl7"),
    ]
}

/// `medtap replay` of the inputs, one worker, into the state directory `state`.
fn replay_cmd(state: &std::path::Path) -> std::process::Command {
    let mut cmd = common::medtap();
    cmd.args([
        "replay",
        "--no-progress",
        "--workers",
        "1",
        "--events",
        "/dev/null",
        "--state-dir",
    ])
    .arg(state)
    .args(inputs());
    cmd
}

/// An uninterrupted replay of the inputs into the state directory `state`: the reference.
fn replay_into(state: &std::path::Path) {
    let out = replay_cmd(state).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn kill_9_after_the_last_flush_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (clean, killed) = (dir.path().join("clean"), dir.path().join("killed"));
    replay_into(&clean);
    let expected = devices(&clean);
    assert!(expected.len() >= 5, "too few devices: {}", expected.len());

    // --metrics-out is written after the pipeline (and its final flush) has finished
    let metrics = dir.path().join("metrics.prom");
    let port = common::free_port();
    let mut child = replay_cmd(&killed)
        .arg("--metrics-out")
        .arg(&metrics)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--linger", "60s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !metrics.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "replay never finished"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        killed.join("medtap.db-wal").exists() || killed.join("medtap.db").exists(),
        "no database after kill -9"
    );
    let got = devices(&killed);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "devices after kill -9 differ from a clean exit"
    );
    let out = common::medtap()
        .args(["inventory", "--format", "json", "--state-dir"])
        .arg(&killed)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inv: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inv["devices"].as_array().unwrap().len(), expected.len());
}

#[test]
fn kill_9_in_the_middle_leaves_a_database_that_opens() {
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean");
    replay_into(&clean);
    let expected = devices(&clean);
    for (i, ms) in [150u64, 400, 900].into_iter().enumerate() {
        let state = dir.path().join(format!("killed{i}"));
        let mut child = replay_cmd(&state)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        let _ = child.kill();
        child.wait().unwrap();
        if !state.join("medtap.db").exists() {
            continue; // killed before the database was created
        }
        let got = devices(&state);
        for k in got.keys() {
            assert!(
                expected.contains_key(k),
                "after kill -9 at {ms} ms: unknown device {k}"
            );
        }
    }
}
