//! Two network namespaces joined by a veth pair, for the tests that run `medtap live` (they
//! need root, `ip`, `tcpreplay` and whatever else they name; elsewhere they say why they did
//! not run).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Root, and every command of `tools` installed; else the reason.
pub fn can_run(tools: &[&str]) -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"));
    if !root {
        return Err("not root".into());
    }
    for c in tools {
        if !have(c) {
            return Err(format!("{c} not installed"));
        }
    }
    Ok(())
}

/// Whether the `test` that needs root and `tools` can run here. Under CI it must: panics with
/// the reason; elsewhere it says why it is skipped and returns false.
pub fn runnable(test: &str, tools: &[&str]) -> bool {
    if let Err(why) = can_run(tools) {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test} test cannot run under CI: {why}"
        );
        eprintln!("{test} test skipped: {why}");
        return false;
    }
    true
}

pub fn sh(args: &[&str]) {
    let st = Command::new(args[0]).args(&args[1..]).status().unwrap();
    assert!(st.success(), "{args:?} failed");
}

/// Namespaces `app-<kind><tag>-a`/`-b` joined by veth `app<kind><tag>a`/`...b` (MTU 65535, IPv6
/// off), removed on drop. `MEDTAP_NETNS_PREFIX` replaces `app` (at most 8 characters: veth
/// names have 15).
pub struct Link {
    pub a: String,
    pub b: String,
    pub va: String,
    pub vb: String,
}

impl Link {
    pub fn new(kind: &str, tag: u32) -> Link {
        let p = std::env::var("MEDTAP_NETNS_PREFIX")
            .ok()
            .filter(|p| !p.is_empty() && p.len() <= 8)
            .unwrap_or_else(|| "app".to_string());
        let l = Link {
            a: format!("{p}-{kind}{tag}-a"),
            b: format!("{p}-{kind}{tag}-b"),
            va: format!("{p}{kind}{tag}a"),
            vb: format!("{p}{kind}{tag}b"),
        };
        for ns in [&l.a, &l.b] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
            sh(&["ip", "netns", "add", ns]);
            let _ = Command::new("ip")
                .args(["netns", "exec", ns, "sysctl", "-q", "-w"])
                .arg("net.ipv6.conf.all.disable_ipv6=1")
                .status();
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        sh(&[
            "ip", "link", "add", &l.va, "type", "veth", "peer", "name", &l.vb,
        ]);
        sh(&["ip", "link", "set", &l.va, "netns", &l.a]);
        sh(&["ip", "link", "set", &l.vb, "netns", &l.b]);
        for (ns, v) in [(&l.a, &l.va), (&l.b, &l.vb)] {
            sh(&["ip", "-n", ns, "link", "set", v, "mtu", "65535"]);
            sh(&["ip", "-n", ns, "link", "set", v, "up"]);
        }
        l
    }

    /// Send `files` from namespace `a` at `pps` packets per second.
    pub fn replay(&self, files: &[PathBuf], pps: u32) {
        let st = Command::new("ip")
            .args(["netns", "exec", &self.a, "tcpreplay", "-q", "--pps"])
            .arg(pps.to_string())
            .args(["-i", &self.va])
            .args(files)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "tcpreplay failed");
    }

    /// Replay `files` and wait until the medtap serving `metrics` (a `/metrics` URL reached
    /// from namespace `b`) has counted every packet sent (`medtap_capture_packets_total`), at
    /// most `secs` seconds. What medtap does with a packet it has not read yet (a SIGTERM
    /// right after tcpreplay returns, on a loaded machine) is not what a test means to check.
    pub fn replay_seen(&self, files: &[PathBuf], pps: u32, metrics: &str, secs: u64) {
        let before = self.packets_counted(metrics).unwrap_or(0);
        self.replay(files, pps);
        let want = before + packets_in(files);
        let mut last = 0;
        wait_for(&format!("medtap to count {want} packets"), secs, || {
            last = self.packets_counted(metrics).unwrap_or(0);
            last >= want
        });
    }

    /// `medtap_capture_packets_total` served at `metrics`, if it answered.
    pub fn packets_counted(&self, metrics: &str) -> Option<u64> {
        self.sample(metrics, "medtap_capture_packets_total")
    }

    /// The value of the sample `series` (name and labels as exposed, e.g.
    /// `medtap_reloads_total{result="ok",what="rules"}`) served at `metrics`, if there is one.
    pub fn sample(&self, metrics: &str, series: &str) -> Option<u64> {
        self.get(metrics).lines().find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')
                .and_then(|v| v.trim().parse::<f64>().ok())
                .map(|v| v as u64)
        })
    }

    /// `medtap live -i <vb> <args>` in namespace `b` (`ip netns exec` execs medtap: the child's
    /// PID is medtap's), stdout discarded, stderr written to `log`.
    pub fn medtap_live(&self, args: &[&OsStr], log: &Path) -> Medtap {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.b])
            .arg(env!("CARGO_BIN_EXE_medtap"))
            .args(["live", "-i", &self.vb])
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        Medtap {
            child,
            log: log.to_path_buf(),
        }
    }

    /// The body of a GET from namespace `b` (empty on failure).
    pub fn get(&self, url: &str) -> String {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.b,
                "curl",
                "-s",
                "--max-time",
                "3",
                url,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A `medtap live` started by [`Link::medtap_live`]; killed (SIGKILL) and reaped on drop if it
/// is still running, so a failing test leaves no process behind.
pub struct Medtap {
    pub child: Child,
    pub log: PathBuf,
}

impl Medtap {
    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// `kill -<sig>` (HUP, STOP, CONT...).
    pub fn signal(&self, sig: &str) {
        sh(&["kill", &format!("-{sig}"), &self.pid()]);
    }

    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// What medtap wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    /// SIGTERM, and the exit status, which must come within `secs` seconds.
    pub fn stop(&mut self, secs: u64) -> ExitStatus {
        self.signal("TERM");
        let started = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                started.elapsed() < Duration::from_secs(secs),
                "medtap did not exit on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, and a successful exit within `secs` seconds (else the log in the panic).
    pub fn stop_ok(&mut self, secs: u64) {
        let status = self.stop(secs);
        assert!(status.success(), "{}", self.log());
    }

    /// `kill -9`, and reaped.
    pub fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Medtap {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Packets in capture files (what tcpreplay sends of them).
pub fn packets_in(files: &[PathBuf]) -> u64 {
    let mut n = 0;
    for f in files {
        let mut r = medtap::capture::FileReader::open(f, None).unwrap();
        r.for_each(|_| n += 1);
    }
    n
}

pub fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let started = Instant::now();
    while !f() {
        assert!(
            started.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The Ethernet captures of pcaps/ that tcpreplay can send as they are.
pub fn ethernet_captures() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for rel in super::all_pcaps() {
        // damaged/ and hostile/ captures hold records tcpreplay cannot send as they are
        if rel.starts_with("damaged/") || rel.starts_with("hostile/") || rel.contains("linktype_") {
            continue;
        }
        let p = super::pcap(&rel);
        let Ok(r) = medtap::capture::FileReader::open(&p, None) else {
            continue;
        };
        if r.linktype == medtap::decode::linktype::ETHERNET {
            v.push(p);
        }
    }
    v
}
