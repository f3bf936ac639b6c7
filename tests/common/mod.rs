//! Helpers shared by the end-to-end tests: run the real `medtap` binary on captures in pcaps/
//! and read back its events.
#![allow(dead_code)]

pub mod netns;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn pcap(rel: &str) -> PathBuf {
    root().join("pcaps").join(rel)
}

/// A loopback TCP port that was free a moment ago (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A self-signed certificate for 127.0.0.1 made with openssl: `dir`/cert.pem and `dir`/key.pem.
pub fn make_cert(dir: &Path) {
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=medtap-test",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
        ])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "openssl req failed");
}

/// A process a test started, killed (SIGKILL) and reaped on drop.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn medtap() -> Command {
    Command::new(env!("CARGO_BIN_EXE_medtap"))
}

/// Replay `inputs` with extra `args`; returns (events, process output). Panics on exit != 0.
pub fn replay(inputs: &[&Path], args: &[&str]) -> (Vec<Value>, Output) {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("eve.json");
    let mut cmd = medtap();
    cmd.arg("replay")
        .arg("--no-progress")
        .arg("--events")
        .arg(&events);
    cmd.args(args);
    for i in inputs {
        cmd.arg(i);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "medtap replay {:?} failed: {}\n{}",
        inputs,
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (read_events(&events), out)
}

pub fn read_events(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("bad event line {l}: {e}"))
        })
        .collect()
}

pub fn of_type<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event_type"] == t).collect()
}

/// All capture files under pcaps/ (recursively), relative paths, sorted.
pub fn all_pcaps() -> Vec<String> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, base, out);
            } else if matches!(
                p.extension().and_then(|x| x.to_str()),
                Some("pcap" | "pcapng")
            ) {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut v = Vec::new();
    let base = root().join("pcaps");
    walk(&base, &base, &mut v);
    v.sort();
    v
}
