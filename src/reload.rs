//! Reloading configuration while capture runs (`SIGHUP` in `medtap live`).
//!
//! Two pieces:
//! - [`Reloadable<T>`]: a value (the signature set, the detection rules, ...) that one thread
//!   replaces while others read it. Readers take an `Arc<T>` snapshot ([`Reloadable::get`]) or,
//!   in a hot loop, keep a [`Cached<T>`] whose [`Cached::get`] costs one atomic load when
//!   nothing changed and re-reads the value only after a reload. A snapshot stays valid (and
//!   unchanged) for as long as its holder keeps it, so a reader never sees half of a reload.
//! - [`Reloader`]: named reload actions (`"signatures"`, `"rules"`), each a closure that loads
//!   the new value, and on success stores it into its `Reloadable`. On `SIGHUP` every action
//!   runs; a failure keeps the old value and logs every problem (`file:line: problem`); the
//!   outcome is counted in `medtap_reloads_total{what, result}` (result: ok, error).
//!
//! How the central thread uses it: `main` builds `Arc<Reloadable<Signatures>>` from the loaded
//! set, registers [`signatures_action`] with the reloader, and hands the `Arc` to the thread,
//! which keeps a `Cached` and calls `cached.get()` per observation (or per batch).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Result;
use arc_swap::ArcSwap;
use prometheus::{IntCounterVec, Opts};

use crate::detect::RuleSet;
use crate::fingerprint::signatures::Signatures;
use crate::metrics::Metrics;

/// A value replaced as a whole by reloads and read without locks.
pub struct Reloadable<T> {
    current: ArcSwap<T>,
    generation: AtomicU64,
}

impl<T> Reloadable<T> {
    pub fn new(value: T) -> Arc<Reloadable<T>> {
        Arc::new(Reloadable {
            current: ArcSwap::from_pointee(value),
            generation: AtomicU64::new(0),
        })
    }

    /// The current value (a snapshot: later reloads do not change it).
    pub fn get(&self) -> Arc<T> {
        self.current.load_full()
    }

    /// How many times the value was replaced.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Replace the value; readers see it from their next `get`.
    pub fn replace(&self, value: T) {
        self.current.store(Arc::new(value));
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// A reader's cache of the current value.
    pub fn cached(self: &Arc<Self>) -> Cached<T> {
        let generation = self.generation();
        Cached {
            value: self.get(),
            generation,
            source: self.clone(),
        }
    }
}

/// A reader's copy of a [`Reloadable`], refreshed only after a reload.
pub struct Cached<T> {
    source: Arc<Reloadable<T>>,
    generation: u64,
    value: Arc<T>,
}

impl<T> Cached<T> {
    /// The current value: one atomic load unless a reload happened since the last call.
    /// Inlined (the central thread asks once or twice per observation); the refresh is not.
    #[inline]
    pub fn get(&mut self) -> &T {
        let g = self.source.generation();
        if g != self.generation {
            self.refresh(g);
        }
        &self.value
    }

    #[cold]
    #[inline(never)]
    fn refresh(&mut self, g: u64) {
        // Read the generation first: if a reload lands in between, the next call refreshes.
        self.value = self.source.get();
        self.generation = g;
    }

    /// The value the last [`Cached::get`] returned (no reload is looked for).
    pub fn current(&self) -> &T {
        &self.value
    }

    /// Whether the last `get` saw a newer value than the one before it.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// What one reload action reports: a one-line summary on success, the problems on failure.
pub type ActionResult = std::result::Result<String, Vec<String>>;

type Action = Box<dyn FnMut() -> ActionResult + Send>;

/// Named reload actions run together on `SIGHUP`.
pub struct Reloader {
    actions: Vec<(&'static str, Action)>,
    counter: IntCounterVec,
}

impl Reloader {
    /// A reloader counting into `metrics`' registry (`medtap_reloads_total{what, result}`).
    pub fn new(metrics: &Metrics) -> Result<Reloader> {
        let counter = IntCounterVec::new(
            Opts::new(
                "medtap_reloads_total",
                "Configuration reloads (SIGHUP), by what was reloaded and result (ok, error: the old set is kept).",
            ),
            &["what", "result"],
        )?;
        metrics.registry.register(Box::new(counter.clone()))?;
        Ok(Reloader {
            actions: Vec::new(),
            counter,
        })
    }

    /// Register an action under a fixed name (a metric label value: from code, never input).
    pub fn add(
        &mut self,
        what: &'static str,
        action: impl FnMut() -> ActionResult + Send + 'static,
    ) {
        for r in ["ok", "error"] {
            self.counter.with_label_values(&[what, r]);
        }
        self.actions.push((what, Box::new(action)));
    }

    /// Run every action now; returns how many failed.
    pub fn reload_all(&mut self) -> usize {
        let mut failed = 0;
        for (what, action) in &mut self.actions {
            match action() {
                Ok(summary) => {
                    self.counter.with_label_values(&[what, "ok"]).inc();
                    tracing::info!(what = *what, "reloaded: {summary}");
                }
                Err(problems) => {
                    failed += 1;
                    self.counter.with_label_values(&[what, "error"]).inc();
                    for p in &problems {
                        tracing::error!(what = *what, "{p}");
                    }
                    tracing::error!(
                        what = *what,
                        problems = problems.len(),
                        "reload failed, keeping the previous set"
                    );
                }
            }
        }
        failed
    }

    /// Run [`Reloader::reload_all`] on every `SIGHUP`, on a thread of its own, until `stop` is
    /// set (checked at least every 200 ms).
    pub fn spawn_on_sighup(mut self, stop: Arc<AtomicBool>) -> Result<std::thread::JoinHandle<()>> {
        let hup = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())?;
        Ok(std::thread::Builder::new()
            .name("medtap-reload".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if hup.swap(false, Ordering::AcqRel) {
                        tracing::info!("SIGHUP: reloading");
                        self.reload_all();
                    }
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
            })?)
    }
}

/// The reload action for fingerprint signatures: load the shipped set plus `operator_dir`
/// (as at start) and, when every file is good, replace `target`.
pub fn signatures_action(
    operator_dir: Option<PathBuf>,
    target: Arc<Reloadable<Signatures>>,
) -> impl FnMut() -> ActionResult + Send + 'static {
    move || match Signatures::load(operator_dir.as_deref()) {
        Ok(s) => {
            let summary = format!(
                "{} rules, {} evidence weights, {} end-of-life entries",
                s.rules.len(),
                s.weights.len(),
                s.eol.len()
            );
            target.replace(s);
            Ok(summary)
        }
        Err(errors) => Err(errors.0.iter().map(|e| e.to_string()).collect()),
    }
}

/// The reload action for detection rules and anomaly thresholds: load the shipped rules plus
/// `operator_dir/rules/*.toml` (as at start) and, when every file is good, replace `target`.
pub fn rules_action(
    operator_dir: Option<PathBuf>,
    target: Arc<Reloadable<RuleSet>>,
) -> impl FnMut() -> ActionResult + Send + 'static {
    move || match RuleSet::load(operator_dir.as_deref()) {
        Ok(r) => {
            let summary = format!(
                "{} detection rules, {} anomaly thresholds",
                r.rules.len(),
                r.anomalies.len()
            );
            target.replace(r);
            Ok(summary)
        }
        Err(errors) => Err(errors.0.iter().map(|e| e.to_string()).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_readers_see_replacements_and_snapshots_stay() {
        let r = Reloadable::new(vec![1, 2]);
        let mut c = r.cached();
        let snap = r.get();
        assert_eq!(c.get(), &vec![1, 2]);
        r.replace(vec![3]);
        assert_eq!(r.generation(), 1);
        assert_eq!(c.get(), &vec![3]);
        assert_eq!(c.generation(), 1);
        assert_eq!(*snap, vec![1, 2]);
    }

    #[test]
    fn failed_action_keeps_value_and_counts() {
        let m = Metrics::new("test");
        let mut rl = Reloader::new(&m).unwrap();
        let target = Reloadable::new(0u32);
        let t = target.clone();
        let mut next = [Err(vec!["x.toml:3: bad".to_string()]), Ok(7u32)].into_iter();
        rl.add("signatures", move || match next.next().unwrap() {
            Ok(v) => {
                t.replace(v);
                Ok(format!("{v}"))
            }
            Err(e) => Err(e),
        });
        assert_eq!(rl.reload_all(), 1);
        assert_eq!(*target.get(), 0);
        assert_eq!(rl.reload_all(), 0);
        assert_eq!(*target.get(), 7);
        let text = m.render();
        assert!(
            text.contains("medtap_reloads_total{result=\"error\",what=\"signatures\"} 1"),
            "{text}"
        );
        assert!(text.contains("medtap_reloads_total{result=\"ok\",what=\"signatures\"} 1"));
    }

    #[test]
    fn signature_action_rejects_a_bad_dir() {
        let dir = tempfile::tempdir().unwrap();
        let fp = dir.path().join("fingerprint");
        std::fs::create_dir(&fp).unwrap();
        std::fs::write(fp.join("bad.toml"), "this is [not toml\n").unwrap();
        let target = Reloadable::new(Signatures::shipped().unwrap());
        let before = target.get().rules.len();
        let mut act = signatures_action(Some(dir.path().to_path_buf()), target.clone());
        let e = act().unwrap_err();
        assert!(e.iter().any(|l| l.contains("bad.toml")), "{e:?}");
        assert_eq!(target.generation(), 0);
        std::fs::remove_file(fp.join("bad.toml")).unwrap();
        act().unwrap();
        assert_eq!(target.generation(), 1);
        assert_eq!(target.get().rules.len(), before);
    }
}
