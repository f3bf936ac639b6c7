//! The central thread: one thread that receives every worker's [`Observation`]s
//! ([`crate::observe`]), keeps what is global (the device inventory, behaviour), and emits the
//! events that only a global view can produce.
//!
//! Started by [`crate::pipeline::Pipeline::start`], fed over one bounded channel of observation
//! batches (replay: workers wait when it is full; live: they drop the batch and count
//! `medtap_observations_dropped_total`), and joined by `Pipeline::finish` after the workers, so
//! that every observation is handled before the final `stats` event. Its events go through the
//! same event writer as the workers' and are counted as produced like theirs.
//!
//! What it does with each observation:
//! - resolves the device(s) involved in the [`devices::DeviceTable`] (by MAC, or by IP when the
//!   MAC is a router's) and updates them (addresses, evidence, protocols, peers);
//! - after each batch: a `device` event for each device that appeared or whose identification
//!   changed, the `medtap_devices{category}` and `medtap_devices_eol_os` gauges;
//! - every [`IntelOptions::flush_every`] of wall time and at exit: changed devices to the
//!   [`store::Store`] (SQLite under `--state-dir`), a new snapshot for `/api/devices`
//!   ([`SharedInventory`]), and in live capture the `--inventory` file (at exit in replay).
//!
//! Time here is packet time ([`crate::time::Ts`]) everywhere, so replay and live agree.

pub mod api;
pub mod devices;
pub mod order;
pub mod store;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use serde::Serialize;

use crate::detect::output::Publisher;
use crate::detect::{Alert, Detector};
use crate::fingerprint::Signatures;
use crate::metrics::Metrics;
use crate::observe::{ObsBatch, Observation};
use crate::output::{EventSink, SINK_FLUSH_BYTES};
use crate::reload::{Cached, Reloadable};
use crate::stats::WorkerStats;
use crate::time::Ts;
use devices::{Change, DeviceTable, DeviceView};
use store::Store;

/// The inventory as last published by the central thread: what `/api/devices` serves. The
/// server clones the `Arc` under a read lock held for that instant only; the central thread
/// swaps in a new one (never on the packet path).
pub type SharedInventory = Arc<RwLock<Arc<InventorySnapshot>>>;

/// A new, empty [`SharedInventory`].
pub fn shared_inventory() -> SharedInventory {
    Arc::new(RwLock::new(Arc::new(InventorySnapshot::default())))
}

/// One device, rendered for the API.
#[derive(Debug, Clone)]
pub struct SnapshotDevice {
    pub key: String,
    /// Lower-case, colon-separated.
    pub mac: Option<String>,
    pub category: &'static str,
    pub vendor: Option<String>,
    /// The device without its evidence list (for listings), as JSON text (kept as text: a
    /// parsed `serde_json::Value` takes several times the memory).
    pub summary: Box<str>,
    /// The device with its evidence (for `/api/devices/{mac}`), as JSON text.
    pub detail: Box<str>,
}

/// Every device, sorted by key.
#[derive(Debug, Clone, Default)]
pub struct InventorySnapshot {
    pub devices: Vec<SnapshotDevice>,
}

/// How the central thread is set up.
#[derive(Clone)]
pub struct IntelOptions {
    /// Fingerprint signatures; `None` = the shipped ones. Replaced on SIGHUP in live capture
    /// ([`crate::reload`]); the central thread picks a new set up at its next observation.
    pub signatures: Option<Arc<Reloadable<Signatures>>>,
    /// `--state-dir`: where the SQLite database lives; `None` = in memory.
    pub state_dir: Option<PathBuf>,
    /// `--inventory`: JSON file written at the end (replay) or every `inventory_every` (live).
    pub inventory: Option<PathBuf>,
    pub inventory_every: Duration,
    /// Wall time between batched writes to the store and snapshot publications.
    pub flush_every: Duration,
    /// Devices kept ([`crate::limits::Limits::max_devices`]).
    pub max_devices: usize,
    /// Workers feeding the thread (replay reorders their observations: [`order`]).
    pub workers: usize,
    /// Where `/api/devices` reads from; set when there is an API (`--listen`), and only then
    /// are the recent alerts kept for `/api/alerts` too.
    pub shared: Option<SharedInventory>,
    /// Detection rules and anomaly thresholds; none: no detection. Replaced on SIGHUP in live
    /// capture ([`crate::reload::rules_action`]); the detector takes a new set at its next
    /// observation, keeping what it learnt.
    pub rules: Option<Arc<Reloadable<crate::detect::RuleSet>>>,
    pub detect: crate::detect::DetectOptions,
}

impl Default for IntelOptions {
    fn default() -> Self {
        IntelOptions {
            signatures: None,
            state_dir: None,
            inventory: None,
            inventory_every: Duration::from_secs(60),
            flush_every: Duration::from_secs(5),
            max_devices: crate::limits::Limits::default().max_devices,
            workers: 1,
            shared: None,
            rules: None,
            detect: crate::detect::DetectOptions::default(),
        }
    }
}

/// What the central thread did, handed back when it is joined.
#[derive(Debug, Default, Clone)]
pub struct IntelSummary {
    /// Counters (events produced by the central thread).
    pub stats: WorkerStats,
    /// Observations handled.
    pub observations: u64,
    /// Devices in the inventory at the end.
    pub devices: usize,
    /// Problems met (store or inventory file writes); reported, not fatal to the capture.
    pub errors: Vec<String>,
}

/// The `device` event body. Written by hand ([`DeviceEvent::write_json`]); the serde derive
/// is the reference it is tested against.
#[cfg_attr(test, derive(Serialize))]
struct DeviceEvent<'a> {
    change: &'static str,
    #[cfg_attr(test, serde(flatten))]
    device: DeviceView<'a>,
}

impl DeviceEvent<'_> {
    /// The JSON object, byte for byte as serde_json writes the derived `Serialize`.
    fn write_json(&self, b: &mut Vec<u8>) {
        b.extend_from_slice(b"{\"change\":\"");
        b.extend_from_slice(self.change.as_bytes());
        b.extend_from_slice(b"\",");
        self.device.write_json_fields(b);
        b.push(b'}');
    }
}

/// The `--inventory` file and `medtap inventory --format json`.
#[derive(Serialize)]
pub struct InventoryFile<'a> {
    pub devices: Vec<DeviceView<'a>>,
}

/// How often (order key, i.e. capture clock) identifications are brought up to date in replay.
pub const SETTLE_EVERY: Ts = Ts(1_000_000);

/// The central thread's state.
pub struct Intel {
    opts: IntelOptions,
    sigs: Cached<Signatures>,
    /// The generation of `sigs` every device was last identified with. `sigs.get()` picks a
    /// reload up wherever it is called (settling, device events), so whether a reload happened
    /// is decided against this, not against the generation before the call: an empty batch
    /// (a worker's sweep moved its release point) could otherwise take the reload first and the
    /// devices were never judged by the new set.
    sigs_judged: u64,
    table: DeviceTable,
    store: Store,
    events: EventSink,
    stats: WorkerStats,
    /// What was last merged into the registry.
    prev: WorkerStats,
    metrics: Arc<Metrics>,
    observations: u64,
    live: bool,
    /// The snapshot is older than the table.
    stale: bool,
    dropped_reported: u64,
    /// The gauges are behind the table, and when they were last set.
    gauges_due: bool,
    gauges_at: Instant,
    errors: Vec<String>,
    detector: Option<Detector>,
    /// Replay reorders observations ([`order`]): identifications are then brought up to date
    /// at fixed points of that order (every [`SETTLE_EVERY`] of order key), not per batch, so
    /// that what detection sees of a device does not depend on the workers.
    ordered: bool,
    next_settle: Ts,
    /// The rule set the detector was built from (a newer generation: a reload).
    rules: Option<Cached<crate::detect::RuleSet>>,
    alert_publisher: Publisher,
    alerts: Vec<Alert>,
}

impl Intel {
    /// Load the signatures and the stored inventory. Errors: the state database cannot be
    /// opened or read, or the signatures do not load.
    pub fn new(
        opts: &IntelOptions,
        events_on: bool,
        metrics: Arc<Metrics>,
        live: bool,
    ) -> Result<Intel> {
        let mut sigs = match &opts.signatures {
            Some(s) => s.cached(),
            None => Reloadable::new(
                Signatures::shipped()
                    .map_err(|e| anyhow::anyhow!("shipped signatures: {}", e.0.len()))?,
            )
            .cached(),
        };
        let store = Store::open(opts.state_dir.as_deref())?;
        let mut table = DeviceTable::new(opts.max_devices);
        table.load(
            store
                .load_devices()
                .context("reading the stored inventory")?,
            sigs.get(),
        );
        let mut rules = opts.rules.as_ref().map(|r| r.cached());
        let mut detector = rules
            .as_mut()
            .map(|r| Detector::new(r.get().clone(), &opts.detect, Some(metrics.clone())));
        if let (Some(d), Some(_)) = (&mut detector, &opts.state_dir) {
            // The learnt baselines live next to the inventory (only with --state-dir: an
            // in-memory copy would cost writes for nothing).
            let n = d
                .load_baseline(store.conn())
                .context("reading the stored detection baselines")?;
            if n.devices > 0 || n.skipped > 0 {
                tracing::info!(
                    devices = n.devices,
                    peers = n.peers,
                    names = n.names,
                    skipped = n.skipped,
                    "detection baselines loaded"
                );
            }
        }
        let mut me = Intel {
            detector,
            ordered: !live,
            next_settle: Ts::ZERO,
            rules,
            // The recent alerts are kept for `GET /api/alerts`: only when there is an API
            // (`shared` is set exactly then).
            alert_publisher: if opts.shared.is_some() {
                Publisher::new()
            } else {
                Publisher::new().without_recent()
            },
            alerts: Vec::new(),
            opts: opts.clone(),
            sigs_judged: sigs.generation(),
            sigs,
            table,
            store,
            events: EventSink::new(events_on),
            stats: WorkerStats::default(),
            prev: WorkerStats::default(),
            metrics,
            observations: 0,
            live,
            stale: true,
            dropped_reported: 0,
            gauges_due: false,
            gauges_at: Instant::now(),
            errors: Vec::new(),
        };
        me.update_gauges();
        me.publish();
        Ok(me)
    }

    /// The device table (read-only).
    pub fn devices(&self) -> &DeviceTable {
        &self.table
    }

    /// The store, for components that keep state next to the inventory (see [`store`]).
    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    /// One observation from a worker. What the inventory keeps of its evidence is moved out of
    /// it ([`DeviceTable::evidence_owned`]): it is not read again, only given back to be freed.
    pub fn observe(&mut self, o: &mut Observation) {
        self.observations += 1;
        // One look for a reload per observation; `current` is then what it found.
        self.sigs.get();
        if self.sigs.generation() != self.sigs_judged {
            self.sigs_judged = self.sigs.generation();
            // The signatures were reloaded (SIGHUP): every device is judged by the new set.
            self.table.reidentify_all(o.ts().0, self.sigs.current());
        }
        let sigs = self.sigs.current();
        match o {
            Observation::Evidence { ts, mac, ip, items } => {
                self.table.evidence_owned(ts.0, *mac, *ip, items, sigs)
            }
            Observation::FlowStart { ts, flow } => self.table.flow_start(ts.0, flow, sigs),
            Observation::FlowEnd {
                ts,
                flow,
                packets,
                bytes,
                ..
            } => self.table.flow_end(ts.0, flow, *packets, *bytes, sigs),
            Observation::Facts { .. } => {}
        }
        // The detection engine takes the observation with a read-only view of the devices
        // involved.
        if let (Some(d), Some(r)) = (&mut self.detector, &mut self.rules) {
            let before = r.generation();
            r.get();
            if r.generation() != before {
                // The rules were reloaded (SIGHUP).
                d.set_rules(r.get().clone());
            }
        }
        if let Some(d) = &mut self.detector {
            let o = &*o;
            // Each side of the flow looked up only if the detector asks for it.
            match o {
                Observation::FlowStart { flow, .. }
                | Observation::FlowEnd { flow, .. }
                | Observation::Facts { flow, .. } => {
                    let table = &self.table;
                    let lookup = |server: bool| table.device_info(flow, server);
                    let view = crate::detect::DeviceView::lazy(&lookup);
                    d.observe(o, &view, &mut self.alerts);
                }
                Observation::Evidence { .. } => {
                    d.observe(o, &crate::detect::DeviceView::default(), &mut self.alerts)
                }
            }
            self.publish_alerts();
        }
    }

    /// One observation in the reordered stream (replay), with its order key: first the
    /// `device` events due at a mark the order has reached, then settling.
    fn observe_in_order(
        &mut self,
        r: &mut order::Reorder,
        key: Ts,
        o: &mut Observation,
        emit: &mut impl FnMut(Vec<u8>),
    ) {
        self.before_in_order(r, key, emit);
        self.observe(o);
    }

    /// What comes before the observation with order key `key` in the reordered stream.
    fn before_in_order(&mut self, r: &mut order::Reorder, key: Ts, emit: &mut impl FnMut(Vec<u8>)) {
        if r.reached_mark(key) {
            self.device_events(emit);
        }
        if key >= self.next_settle {
            self.table.settle(self.sigs.get());
            self.next_settle = Ts(key.0.saturating_add(SETTLE_EVERY.0));
        }
    }

    /// Emit and count the alerts the detector produced.
    fn publish_alerts(&mut self) {
        if !self.alerts.is_empty() {
            self.alert_publisher
                .publish(&self.alerts, &mut self.events, Some(&self.metrics));
            self.alerts.clear();
        }
    }

    /// After a batch: identifications brought up to date, `device` events for what appeared
    /// or changed (handed to `emit` every [`SINK_FLUSH_BYTES`]: a batch can change hundreds of
    /// devices, and the event buffer would grow, and be copied, past its usual size), gauges
    /// (at most once a second: they count every device). Replay hands the device events out
    /// when the processing order reaches a mark instead ([`order::Reorder::reached_mark`]:
    /// every 10 s of capture clock, whatever the batches), and the rest at the end (`force`).
    fn after_batch(&mut self, force: bool, emit: &mut impl FnMut(Vec<u8>)) {
        self.stale = true;
        if !self.ordered || force {
            self.device_events(emit);
        }
        if self.gauges_due && (force || self.gauges_at.elapsed() >= Duration::from_secs(1)) {
            self.update_gauges();
        }
    }

    /// `device` events for the devices new or changed since the last call.
    fn device_events(&mut self, emit: &mut impl FnMut(Vec<u8>)) {
        let changes = if self.ordered {
            self.table.take_changes_unsettled()
        } else {
            self.table.take_changes(self.sigs.get())
        };
        self.gauges_due |= !changes.is_empty();
        for (i, change, ts) in changes {
            let ev = DeviceEvent {
                change: change_name(change),
                device: self.table.event_view(i),
            };
            self.events
                .emit_global_with(Ts(ts), "device", |b| ev.write_json(b));
            if let Some(lines) = self.take_events(false) {
                emit(lines);
            }
        }
    }

    fn update_gauges(&mut self) {
        self.gauges_due = false;
        self.gauges_at = Instant::now();
        let (by, eol) = self.table.gauges();
        for (c, n) in by {
            self.metrics.devices.with_label_values(&[c.as_str()]).set(n);
        }
        self.metrics.devices_eol_os.set(eol);
        let d = self.table.dropped.saturating_sub(self.dropped_reported);
        if d > 0 {
            self.metrics.devices_dropped.inc_by(d);
            self.dropped_reported = self.table.dropped;
        }
    }

    /// Changed devices to the store; errors are reported once each and kept for the summary.
    fn flush_store(&mut self) {
        let dirty = self.table.take_dirty();
        // Without --state-dir the database is in memory and nothing reads the devices back
        // (the inventory is in the table): their rows would only be a second copy of it.
        let devs: Vec<&devices::Device> = if self.store.path().is_some() {
            dirty.iter().map(|&i| self.table.get(i)).collect()
        } else {
            Vec::new()
        };
        let r = match &mut self.detector {
            Some(d) if d.baseline_dirty() => self
                .store
                .flush_with(&devs, Some(&mut |tx| d.write_baseline(tx))),
            _ => self.store.flush(&devs),
        };
        if let Err(e) = r {
            let msg = format!("state database: {e:#}");
            if !self.errors.contains(&msg) {
                tracing::error!("{msg}");
                self.errors.push(msg);
            }
        }
    }

    /// A new snapshot for the API.
    fn publish(&mut self) {
        let Some(shared) = &self.opts.shared else {
            return;
        };
        if !self.stale {
            return;
        }
        self.stale = false;
        let mut devices: Vec<SnapshotDevice> = self
            .table
            .devices()
            .iter()
            .map(|d| SnapshotDevice {
                key: d.key.clone(),
                mac: d.mac.clone(),
                category: d.category().as_str(),
                vendor: d
                    .ident
                    .as_ref()
                    .and_then(|i| i.vendor.as_ref())
                    .map(|v| v.value.clone()),
                summary: view_json(&d.view(false)),
                detail: view_json(&d.view(true)),
            })
            .collect();
        devices.sort_by(|a, b| a.key.cmp(&b.key));
        let snap = Arc::new(InventorySnapshot { devices });
        if let Ok(mut g) = shared.write() {
            *g = snap;
        }
    }

    /// The inventory as JSON (devices sorted by key, with their evidence).
    pub fn inventory_json(table: &DeviceTable) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        Intel::write_inventory_json(table, &mut out)?;
        Ok(out)
    }

    /// [`Intel::inventory_json`], written to `w`.
    pub fn write_inventory_json(table: &DeviceTable, w: &mut impl std::io::Write) -> Result<()> {
        let mut devs: Vec<&devices::Device> = table.devices().iter().collect();
        devs.sort_by(|a, b| a.key.cmp(&b.key));
        let f = InventoryFile {
            devices: devs.iter().map(|d| d.view(true)).collect(),
        };
        serde_json::to_writer_pretty(&mut *w, &f)?;
        w.write_all(b"\n")?;
        Ok(())
    }

    fn write_inventory(&mut self) {
        let Some(path) = self.opts.inventory.clone() else {
            return;
        };
        let r = (|| -> Result<()> {
            // Write beside and rename, so a reader never sees half a file; streamed, so a large
            // inventory is not held a second time as text.
            let tmp = path.with_extension("json.tmp");
            let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            Intel::write_inventory_json(&self.table, &mut w)?;
            std::io::Write::flush(&mut w)?;
            drop(w);
            std::fs::rename(&tmp, &path)?;
            Ok(())
        })();
        if let Err(e) = r {
            let msg = format!("--inventory {}: {e:#}", path.display());
            if !self.errors.contains(&msg) {
                tracing::error!("{msg}");
                self.errors.push(msg);
            }
        }
    }

    /// Formatted event lines to hand to the writer, if enough are pending (or `force`).
    fn take_events(&mut self, force: bool) -> Option<Vec<u8>> {
        self.events.account(&mut self.stats);
        if (force || self.events.pending_bytes() >= SINK_FLUSH_BYTES)
            && self.events.pending_bytes() > 0
        {
            Some(self.events.take())
        } else {
            None
        }
    }

    /// The thread's loop: observation batches in until every worker has hung up; event lines
    /// out through `emit`. `queued`: the observations in the queue (the workers add a batch's
    /// before sending it; they come off here as it is received).
    ///
    /// Observations go back, used, to the worker that made them (`spare[worker]`), which drops
    /// them when it next takes the vector for reuse: their strings and vectors are then freed
    /// by the thread that allocated them (glibc frees another thread's memory under that
    /// arena's lock, and the two threads then contend for it on every free), as far as the
    /// worker's queue of spares has room; past that they are dropped here.
    pub fn run(
        mut self,
        rx: Receiver<ObsBatch>,
        spare: Vec<Sender<ObsBatch>>,
        queued: &crate::observe::ObsQueued,
        mut emit: impl FnMut(Vec<u8>),
    ) -> IntelSummary {
        // Replay: one processing order whatever the number of workers ([`order`]).
        let mut reorder = self.ordered.then(|| order::Reorder::new(self.opts.workers));
        let mut forced_reported = 0;
        let tick = self.opts.flush_every.min(Duration::from_secs(1));
        let mut flushed = Instant::now();
        let mut inventory_written = Instant::now();
        let mut returns = Returns::new(spare);
        loop {
            match rx.recv_timeout(tick) {
                Ok(mut batch) => {
                    queued.taken(batch.items.len());
                    match &mut reorder {
                        Some(r) => {
                            r.add(&mut batch);
                            // Each observation is read where it waits, then moved once, to
                            // go back to its worker, or dropped there when it would not get
                            // back (see `Returns::takes`).
                            while let Some((key, w, i)) = r.pop_ready_at() {
                                self.before_in_order(r, key, &mut emit);
                                if let Some(o) = r.get_mut(i) {
                                    self.observe(o);
                                }
                                if r.get(i).is_some_and(owns_memory) && returns.takes(w) {
                                    if let Some(o) = r.take(i) {
                                        returns.push(w, o);
                                    }
                                } else {
                                    r.discard(i);
                                }
                                // A release can be thousands of observations (the end of
                                // capture, a sweep): hand over the alerts every 64 KiB.
                                if let Some(lines) = self.take_events(false) {
                                    emit(lines);
                                }
                            }
                            if r.finished() {
                                self.device_events(&mut emit);
                            }
                            if r.forced > forced_reported {
                                self.metrics
                                    .detect_cap_hits
                                    .with_label_values(&["reorder"])
                                    .inc_by(r.forced - forced_reported);
                                forced_reported = r.forced;
                            }
                        }
                        None => {
                            for o in &mut batch.items {
                                self.observe(o);
                            }
                            let w = batch.worker;
                            for o in batch.items.drain(..).filter(owns_memory) {
                                returns.push(w, o);
                            }
                        }
                    }
                    // The batch's vectors go back, carrying its worker's used observations.
                    returns.send(batch.worker, Some(batch));
                    self.after_batch(false, &mut emit);
                    if let Some(lines) = self.take_events(false) {
                        emit(lines);
                    }
                    self.metrics.merge(&mut self.prev, &self.stats);
                }
                Err(RecvTimeoutError::Timeout) => {
                    // Quiet: hand over the pending device events now.
                    if let Some(lines) = self.take_events(true) {
                        emit(lines);
                    }
                    self.metrics.merge(&mut self.prev, &self.stats);
                }
                Err(RecvTimeoutError::Disconnected) => {
                    if let Some(r) = &mut reorder {
                        while let Some((key, _, mut o)) = r.pop_any() {
                            self.observe_in_order(r, key, &mut o, &mut emit);
                            if let Some(lines) = self.take_events(false) {
                                emit(lines);
                            }
                        }
                        self.table.settle(self.sigs.get());
                    }
                    break;
                }
            }
            if flushed.elapsed() >= self.opts.flush_every {
                self.flush_store();
                self.publish();
                flushed = Instant::now();
            }
            if self.live && inventory_written.elapsed() >= self.opts.inventory_every {
                self.write_inventory();
                inventory_written = Instant::now();
            }
        }
        self.after_batch(true, &mut emit);
        if let Some(d) = &mut self.detector {
            d.finish(&mut self.alerts);
            self.publish_alerts();
        }
        if let Some(lines) = self.take_events(true) {
            emit(lines);
        }
        self.metrics.merge(&mut self.prev, &self.stats);
        self.flush_store();
        self.publish();
        self.write_inventory();
        let devices = self.table.len();
        // The inventory and the detector's tables are large (maps per device and peer):
        // freeing them took tens of ms at the end of a replay, with nothing else left to run.
        // A thread of their own frees them (the process may exit first). The state database
        // is closed here.
        let Intel {
            store,
            table,
            detector,
            stats,
            observations,
            errors,
            ..
        } = self;
        drop(store);
        crate::pipeline::drop_later((table, detector));
        IntelSummary {
            stats,
            observations,
            devices,
            errors,
        }
    }
}

/// Whether dropping `o` frees memory (its evidence or facts): only then does it go back to
/// its worker to be dropped there ([`Returns`]). A flow's start or end holds none: dropping it
/// here costs nothing, while moving it into a return vector wrote three or four cache lines
/// of memory not touched for a while, and the worker read them again to drop it.
fn owns_memory(o: &Observation) -> bool {
    match o {
        Observation::Evidence { items, .. } => items.capacity() > 0,
        Observation::Facts { .. } => true,
        Observation::FlowStart { .. } | Observation::FlowEnd { .. } => false,
    }
}

// What `owns_memory` says of flow starts and ends.
const _: () = assert!(!std::mem::needs_drop::<crate::flow::FlowMeta>());

/// Used observations go back to their worker in vectors of at most this many.
const RETURN_CHUNK: usize = 256;

/// Used observations on their way back to the workers that made them (see [`Intel::run`]).
struct Returns {
    spare: Vec<Sender<ObsBatch>>,
    used: Vec<Vec<Observation>>,
}

impl Returns {
    fn new(spare: Vec<Sender<ObsBatch>>) -> Returns {
        let used = spare.iter().map(|_| Vec::new()).collect();
        Returns { spare, used }
    }

    /// Whether a processed observation of worker `w` is worth collecting: a vector of them
    /// is under way, or the worker's queue of spares has room for one. With the queue full
    /// (the worker takes one spare per batch it sends, and gets one back per batch and per
    /// [`RETURN_CHUNK`] observations), a vector started now would most likely be dropped
    /// here when sent: the observation is then dropped where it waits instead of being
    /// moved twice first.
    fn takes(&self, w: usize) -> bool {
        self.used.get(w).is_some_and(|u| !u.is_empty())
            || self.spare.get(w).is_some_and(|tx| !tx.is_full())
    }

    /// A processed observation of worker `w`: sent back once [`RETURN_CHUNK`] are waiting.
    fn push(&mut self, w: usize, o: Observation) {
        let Some(u) = self.used.get_mut(w) else {
            return;
        };
        if u.capacity() == 0 {
            u.reserve_exact(RETURN_CHUNK);
        }
        u.push(o);
        if u.len() >= RETURN_CHUNK {
            self.send(w, None);
        }
    }

    /// Send worker `w`'s used observations back, in `batch`'s vectors when given (the batch
    /// the worker just sent, emptied). When the worker's queue of spares is full they are
    /// dropped here.
    fn send(&mut self, w: usize, batch: Option<ObsBatch>) {
        let mut b = batch.unwrap_or_default();
        b.clear();
        b.worker = w;
        if let Some(u) = self.used.get_mut(w) {
            std::mem::swap(u, &mut b.items);
        }
        if let Some(tx) = self.spare.get(w) {
            let _ = tx.try_send(b);
        }
    }
}

/// A device view as JSON text ([`DeviceView::write_json`]).
fn view_json(v: &DeviceView) -> Box<str> {
    let mut b = Vec::new();
    v.write_json(&mut b);
    // Written from `&str`s and ASCII: UTF-8.
    String::from_utf8(b).unwrap_or_default().into_boxed_str()
}

fn change_name(c: Change) -> &'static str {
    c.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::{Evidence, EvidenceKind as K};
    use std::net::IpAddr;

    /// Devices with every part of the view filled in (identification with all attributes, an
    /// OS version on an end-of-life list, IPv4 and IPv6 addresses, host names and values that
    /// need escaping, protocols, more peers than are shown, overflows) and bare ones.
    fn table() -> DeviceTable {
        let s = Signatures::shipped().unwrap();
        let mut t = DeviceTable::new(100);
        let ct = [0x00, 0x09, 0x5c, 1, 2, 3];
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        let items = [
            Evidence::new(K::DicomManufacturer, "GE MEDICAL SYSTEMS"),
            Evidence::new(K::DicomModel, "LightSpeed VCT"),
            Evidence::new(K::DicomModality, "CT"),
            Evidence::new(K::DicomImplementationVersionName, "OFFIS_DCMTK_367"),
            Evidence::new(K::NetbiosOsVersion, "6.1"),
            Evidence::new(K::DhcpHostname, "ct \"01\" \\ é\u{7f}"),
            Evidence::new(K::MdnsHostname, "ct.local"),
            Evidence::with_confidence(K::TcpP0f, "Linux:3.11 and newer", 60),
        ];
        t.evidence(1_700_000_000_000_000, ct, Some(ip), &items, &s);
        t.resolve(
            ct,
            Some("fe80::1".parse().unwrap()),
            1_700_000_000_100_000,
            true,
            &s,
        );
        // A vendor named by the OUI fallback from a value that needs escaping.
        let odd_items = [Evidence::new(K::Oui, "Acme \"Q\" \\ Ltd \t é")];
        let odd_ip = Some("10.0.0.77".parse().unwrap());
        t.evidence(1_700_000_000_200_000, [0; 6], odd_ip, &odd_items, &s);
        // A randomized MAC with nothing else, and an `ip:` device behind no MAC.
        t.resolve(
            [0x02, 0x77, 0, 0, 0, 1],
            Some("10.0.0.9".parse().unwrap()),
            5,
            true,
            &s,
        );
        t.resolve([0; 6], Some("192.168.1.1".parse().unwrap()), 6, true, &s);
        // Flows: protocols by role and more peers than are shown (and than are kept).
        for n in 0..(devices::MAX_PEERS + 7) {
            let f = crate::flow::FlowMeta {
                flow_id: n as u64,
                proto: 6,
                client: (IpAddr::from([10, 1, (n >> 8) as u8, n as u8]), 40000),
                server: (ip, if n % 3 == 0 { 104 } else { 8080 }),
                vlan: [0, 0],
                client_mac: [0x02, 0x77, 1, 0, (n >> 8) as u8, n as u8],
                server_mac: ct,
                to_group: false,
                app_proto: (n % 3 == 0).then_some(crate::protocols::AppProto::Dicom),
            };
            t.flow_end(
                1_700_000_001_000_000 + n as i64,
                &f,
                [n as u64 + 1, 2],
                [100 * n as u64, 60],
                &s,
            );
        }
        t.take_changes(&s);
        t
    }

    /// The hand-written `device` event and device view are what serde_json writes.
    #[test]
    fn device_json_written_by_hand_equals_serde() {
        let t = table();
        assert!(t.len() >= 5, "{}", t.len());
        let full = t
            .devices()
            .iter()
            .find(|d| d.mac.as_deref() == Some("00:09:5c:01:02:03"));
        let full = full.unwrap();
        let id = full.ident.as_ref().unwrap();
        assert!(id.vendor.is_some() && id.model.is_some() && id.software.is_some());
        assert!(full.eol_os() && full.overflow.peers > 0 && full.ips.len() == 2);
        assert!(full.peers.len() > devices::PEERS_SHOWN && full.protocols.len() == 2);
        let mut seen_escape = false;
        for d in t.devices() {
            for change in ["new", "identification"] {
                let ev = DeviceEvent {
                    change,
                    device: d.view(false),
                };
                let mut b = Vec::new();
                ev.write_json(&mut b);
                let want = serde_json::to_string(&ev).unwrap();
                assert_eq!(String::from_utf8(b).unwrap(), want);
                seen_escape |= want.contains(r#""vendor":"Acme \"Q\" \\ Ltd"#);
            }
            for with in [false, true] {
                let v = d.view(with);
                let mut b = Vec::new();
                v.write_json(&mut b);
                assert_eq!(
                    String::from_utf8(b).unwrap(),
                    serde_json::to_string(&v).unwrap()
                );
            }
        }
        assert!(
            seen_escape,
            "a vendor value that needs escaping was written"
        );
        // A `device` event's view, its identification text from the cache (written on the
        // first look, copied on the next), is the plain view.
        let mut t = t;
        for _ in 0..2 {
            for i in 0..t.len() {
                let mut want = Vec::new();
                t.get(i).view(false).write_json(&mut want);
                let mut got = Vec::new();
                t.event_view(i).write_json(&mut got);
                assert_eq!(String::from_utf8(got), String::from_utf8(want));
            }
        }
        // The event line around the body is `emit_global`'s.
        let d = t.get(0);
        let mut a = EventSink::new(true);
        let mut b = EventSink::new(true);
        let ev = DeviceEvent {
            change: "new",
            device: d.view(false),
        };
        a.emit_global(Ts(1_700_000_000_000_001), "device", &ev);
        b.emit_global_with(Ts(1_700_000_000_000_001), "device", |w| ev.write_json(w));
        assert_eq!(a.take(), b.take());
    }
}
