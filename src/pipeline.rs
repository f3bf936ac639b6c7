//! Threads and queues: capture threads read packets and shard them by a symmetric flow hash
//! onto N workers over bounded `crossbeam` channels, in batches; each worker owns its flow
//! table; one writer thread owns the event log.
//!
//! Replay never loses a packet or an event: full queues make the reader wait. Live capture never
//! queues without bound: a full worker queue drops the batch at the capture thread and counts it
//! (`medtap_capture_drops_total{reason="queue_full"}`). Every batch carries the capture clock
//! (`now`), so a worker's timeouts advance even when its shard is quiet.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use serde::Serialize;

use crate::capture::{FileEnd, FileList, FileReader, LiveRead, LiveSettings, LiveSource};
use crate::decode;
use crate::fingerprint::tap::Tap;
use crate::flow::{FlowTable, Sinks};
use crate::intel::{Intel, IntelOptions, IntelSummary};
use crate::limits::{Limits, Timeouts};
use crate::metrics::Metrics;
use crate::observe::{ObsBatch, ObsBuf, ObsQueued};
use crate::output::{EventSink, EventWriter, SINK_FLUSH_BYTES};
use crate::pcapfile::{Fill, Record};
use crate::stats::{Counter, Family, WorkerStats};
use crate::time::Ts;

/// Where one packet sits in a batch.
#[derive(Clone, Copy)]
struct PktRef {
    ts: Ts,
    /// The capture clock: the largest packet time read so far.
    clock: Ts,
    off: u32,
    caplen: u32,
    wire_len: u32,
    linktype: i32,
}

/// Packets for one worker: copied out of libpcap's buffer into `data`, or, from a file read
/// by [`crate::pcapfile`], left where they are in a chunk of the file that the batches of every
/// worker share.
struct Batch {
    data: Vec<u8>,
    /// The chunk `pkts` index instead of `data`; whoever lets it go last hands it back to the
    /// reader ([`Dispatcher::chunk`]).
    chunk: Option<Arc<Vec<u8>>>,
    pkts: Vec<PktRef>,
    now: Ts,
}

/// The worker touches the headers of the packets this far ahead, this many at a time (see
/// [`touch_ahead`]).
const TOUCH_GROUP: usize = 8;

/// Prefetches the first bytes (link, IP and TCP headers: two cache lines) of packets
/// `i + TOUCH_GROUP` to `i + 2 * TOUCH_GROUP` (from `i = 0`: the first group too). They were
/// written on another core (by the kernel's read into a chunk, or the reader's copy), so the
/// first read of each is a cache miss; fetched ahead, the misses overlap the work on the packets
/// before them instead of stalling the worker once per packet.
#[inline]
fn touch_ahead(pkts: &[PktRef], data: &[u8], i: usize) {
    let from = if i == 0 { 0 } else { i + TOUCH_GROUP };
    for a in pkts.iter().skip(from).take(i + 2 * TOUCH_GROUP - from) {
        let o = a.off as usize;
        if let Some(line) = data.get(o..) {
            crate::capture::prefetch(line);
            crate::capture::prefetch(line.get(64..).unwrap_or_default());
        }
    }
}

impl Batch {
    /// Room for `n` packets and `bytes` of packet data plus one more packet (a batch is sent
    /// once its data passes `bytes`: [`Limits::batch_bytes`]).
    fn with_capacity(n: usize, bytes: usize) -> Batch {
        Batch {
            data: Vec::with_capacity(bytes + 65_536),
            chunk: None,
            pkts: Vec::with_capacity(n),
            now: Ts::ZERO,
        }
    }

    /// The bytes `pkts` index.
    fn bytes(&self) -> &[u8] {
        match &self.chunk {
            Some(c) => c,
            None => &self.data,
        }
    }
}

enum Msg {
    Batch(Batch),
    Finish(Ts),
}

/// What the event writer thread takes: formatted lines, or the `stats` event, whose count of
/// events written only the writer knows.
enum WriterMsg {
    Lines(Vec<u8>),
    Stats(Ts, Box<StatsRecord>),
}

pub struct Options {
    pub workers: usize,
    pub limits: Limits,
    pub timeouts: Timeouts,
    pub events: Option<PathBuf>,
    pub bpf: Option<String>,
    pub progress: bool,
    /// The central thread's setup (inventory, detection).
    pub intel: IntelOptions,
    /// p0f database for SYN / SYN+ACK signatures (`--p0f-db`).
    pub p0f: Option<crate::fingerprint::tap::P0fDb>,
}

/// What a replay did, for the summary and the `stats` event.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub files_ok: u64,
    pub files_damaged: u64,
    pub files_skipped: u64,
    pub damage: Vec<(PathBuf, String)>,
    pub packets: u64,
    pub bytes: u64,
    pub first_ts: Option<Ts>,
    pub last_ts: Ts,
    pub elapsed: f64,
    pub totals: WorkerStats,
    pub events_written: u64,
}

/// The running workers and event writer; capture threads feed them through [`Dispatcher`]s.
pub struct Pipeline {
    txs: Vec<Sender<Msg>>,
    spare_rx: Receiver<Batch>,
    chunks_rx: Receiver<Vec<u8>>,
    handles: Vec<JoinHandle<WorkerStats>>,
    writer: Option<JoinHandle<std::io::Result<u64>>>,
    /// The central thread ([`crate::intel`]); joined after the workers.
    intel: JoinHandle<IntelSummary>,
    ev_tx: Sender<WriterMsg>,
    metrics: Arc<Metrics>,
    batch_n: usize,
    batch_bytes: usize,
}

impl Pipeline {
    /// Start the event writer, the central thread and the workers. `live`: workers drop (and
    /// count) observation batches rather than wait when the central thread is behind.
    pub fn start(opts: &Options, metrics: &Arc<Metrics>, live: bool) -> Result<Pipeline> {
        let workers = opts.workers.max(1);
        let (ev_tx, ev_rx) = bounded::<WriterMsg>(opts.limits.event_queue);
        // Written-out line buffers go back to the workers' sinks for reuse (no 128 KiB
        // allocation, freed on another thread, per spilled buffer); at most two per worker wait.
        let (lines_spare_tx, lines_spare_rx) = bounded::<Vec<u8>>(2 * workers);
        let writer = match &opts.events {
            Some(path) => {
                let mut w = EventWriter::open(path)
                    .map_err(|e| anyhow::anyhow!("--events {}: {e}", path.display()))?;
                let m = metrics.clone();
                Some(thread::Builder::new().name("medtap-events".into()).spawn(
                    move || -> std::io::Result<u64> {
                        yield_to_capture();
                        // `stats` events are not counted as produced; keep them out of `written`.
                        let mut stats_lines = 0;
                        for msg in ev_rx {
                            let (lines, reuse) = match msg {
                                WriterMsg::Lines(l) => (l, true),
                                WriterMsg::Stats(ts, mut rec) => {
                                    rec.events.written = w.written_events - stats_lines;
                                    stats_lines += 1;
                                    let mut sink = EventSink::new(true);
                                    sink.emit_global(ts, "stats", &*rec);
                                    (sink.take(), false)
                                }
                            };
                            let n = w.write_lines(&lines)?;
                            m.events_written.inc_by(n);
                            if reuse
                                && (SINK_FLUSH_BYTES..=2 * SINK_FLUSH_BYTES)
                                    .contains(&lines.capacity())
                            {
                                let _ = lines_spare_tx.try_send(lines);
                            }
                        }
                        w.finish()?;
                        Ok(w.written_events - stats_lines)
                    },
                )?)
            }
            None => {
                drop(ev_rx);
                None
            }
        };
        let events_on = writer.is_some();
        // The central thread: observation batches in; vectors back to each worker for reuse,
        // carrying its used observations (freed by the thread that allocated them).
        let (obs_tx, obs_rx) = bounded::<ObsBatch>(opts.limits.observe_queue);
        let (obs_spare_tx, mut obs_spare_rx): (Vec<_>, Vec<_>) =
            (0..workers).map(|_| bounded::<ObsBatch>(4)).unzip();
        let obs_queued = Arc::new(ObsQueued::default());
        let intel = {
            let mut io = opts.intel.clone();
            io.max_devices = opts.limits.max_devices;
            io.workers = workers;
            let central = Intel::new(&io, events_on, metrics.clone(), live)?;
            let ev = ev_tx.clone();
            let queued = obs_queued.clone();
            thread::Builder::new()
                .name("medtap-intel".into())
                .spawn(move || {
                    yield_to_capture();
                    central.run(obs_rx, obs_spare_tx, &queued, |lines| {
                        let _ = ev.send(WriterMsg::Lines(lines));
                    })
                })?
        };
        let mut txs = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        // The capture queues' batches are a budget for all workers together.
        let per_worker = worker_queue(opts.limits.queue_batches, workers);
        // Emptied batches come back to the readers for reuse (no allocation per batch).
        let (spare_tx, spare_rx) = bounded::<Batch>(workers * (per_worker + 2));
        // So do the chunks of files read by `pcapfile` (as many as batches can hold).
        let (chunks_tx, chunks_rx) = bounded::<Vec<u8>>(workers * (per_worker + 2) + 2);
        for w in 0..workers {
            let (tx, rx) = bounded::<Msg>(per_worker);
            txs.push(tx);
            let table = FlowTable::new(&opts.limits, &opts.timeouts, workers);
            let tap = Tap::new(opts.p0f.clone());
            let m = metrics.clone();
            let ev = ev_tx.clone();
            let spare = spare_tx.clone();
            let chunks = chunks_tx.clone();
            let lines_spare = lines_spare_rx.clone();
            let obs = ObsChannel {
                worker: w,
                through: Ts::ZERO,
                tx: obs_tx.clone(),
                spare: obs_spare_rx.remove(0),
                live,
                drops: metrics.observations_dropped.clone(),
                queued: obs_queued.clone(),
                max_items: opts.limits.observe_queue_items,
            };
            handles.push(
                thread::Builder::new()
                    .name(format!("medtap-worker-{w}"))
                    .spawn(move || {
                        Worker::new(table, tap, m, ev, lines_spare, events_on, obs)
                            .run(rx, spare, chunks)
                    })?,
            );
        }
        // Only the workers hold senders: the central thread ends when the last worker does.
        drop(obs_tx);
        Ok(Pipeline {
            txs,
            spare_rx,
            chunks_rx,
            handles,
            writer,
            intel,
            ev_tx,
            metrics: metrics.clone(),
            batch_n: opts.limits.batch_packets,
            batch_bytes: opts.limits.batch_bytes,
        })
    }

    /// A feeder for one capture thread. `live`: drop (and count) rather than wait when a worker's
    /// queue is full; `interface` names the source in the drop counter.
    pub fn dispatcher(&self, live: bool, interface: &str) -> Dispatcher {
        Dispatcher {
            txs: self.txs.clone(),
            spare: self.spare_rx.clone(),
            chunks: self.chunks_rx.clone(),
            last_chunk: None,
            batches: (0..self.txs.len())
                .map(|_| Batch::with_capacity(self.batch_n, self.batch_bytes))
                .collect(),
            batch_n: self.batch_n,
            batch_bytes: self.batch_bytes,
            live,
            clock: Ts::ZERO,
            next_flush: Ts::ZERO,
            metrics: self.metrics.clone(),
            queue_drops: self
                .metrics
                .capture_drops
                .with_label_values(&[interface, "queue_full"]),
            failed: false,
            shard_scratch: WorkerStats::default(),
        }
    }

    /// Queue a `stats` event (the writer fills in how many events it has written).
    pub fn emit_stats(&self, ts: Ts, record: StatsRecord) {
        let _ = self.ev_tx.send(WriterMsg::Stats(ts, Box::new(record)));
    }

    /// End every flow at `now`, join the workers, then the central thread (which has then seen
    /// every observation), then write `final_stats` (built from their totals) last and close
    /// the event log. Returns the totals and the events written.
    pub fn finish(
        self,
        now: Ts,
        final_stats: impl FnOnce(&WorkerStats) -> StatsRecord,
    ) -> Result<(WorkerStats, u64)> {
        for tx in &self.txs {
            let _ = tx.send(Msg::Finish(now));
        }
        drop(self.txs);
        let mut totals = WorkerStats::default();
        let mut panicked = false;
        for h in self.handles {
            match h.join() {
                Ok(s) => {
                    totals.add_all(&s);
                    totals.flows_peak += s.flows_peak;
                }
                Err(_) => panicked = true,
            }
        }
        match self.intel.join() {
            Ok(s) => totals.add_all(&s.stats),
            Err(_) => panicked = true,
        }
        if self.writer.is_some() {
            let _ = self
                .ev_tx
                .send(WriterMsg::Stats(now, Box::new(final_stats(&totals))));
        }
        drop(self.ev_tx);
        let written = match self.writer {
            Some(w) => w
                .join()
                .map_err(|_| anyhow::anyhow!("the event writer panicked"))??,
            None => 0,
        };
        if panicked {
            anyhow::bail!("a worker thread or the central thread panicked");
        }
        Ok((totals, written))
    }
}

/// Replay sends every worker a batch at least this often (seconds of capture clock).
pub const REPLAY_FLUSH_SECS: u64 = 2;

/// One capture thread's side of the pipeline: per-worker batches being filled.
pub struct Dispatcher {
    txs: Vec<Sender<Msg>>,
    spare: Receiver<Batch>,
    /// Chunks the workers are done with ([`Dispatcher::chunk`]).
    chunks: Receiver<Vec<u8>>,
    /// The last chunk, when no batch kept it.
    last_chunk: Option<Vec<u8>>,
    batches: Vec<Batch>,
    batch_n: usize,
    /// [`Limits::batch_bytes`].
    batch_bytes: usize,
    live: bool,
    /// The largest packet time seen by this capture thread.
    pub clock: Ts,
    /// Replay: when every worker next gets a batch, even an empty one (see [`REPLAY_FLUSH_SECS`]).
    next_flush: Ts,
    metrics: Arc<Metrics>,
    queue_drops: prometheus::IntCounter,
    /// A worker is gone (it panicked): stop reading.
    pub failed: bool,
    /// Counters of the sharding decode, reused and never reported (kept off the per-packet path).
    shard_scratch: WorkerStats,
}

impl Dispatcher {
    /// One packet: shard it, copy it into its worker's batch, send full batches.
    #[inline]
    pub fn push(&mut self, ts: Ts, wire_len: u32, linktype: i32, data: &[u8]) {
        self.advance(ts);
        let w = self.shard(linktype, data);
        if self.batches[w].chunk.is_some() {
            // The batch holds packets of a chunk (the file before was read by `pcapfile`).
            self.send(w);
        }
        let b = &mut self.batches[w];
        b.pkts.push(PktRef {
            ts,
            clock: self.clock,
            off: b.data.len() as u32,
            caplen: data.len() as u32,
            wire_len,
            linktype,
        });
        b.data.extend_from_slice(data);
        if b.pkts.len() >= self.batch_n || b.data.len() >= self.batch_bytes {
            self.send(w);
        }
    }

    /// A buffer for [`crate::pcapfile::Reader::fill`]: a chunk the workers are done with, or a
    /// new one of [`Limits::batch_bytes`] (so a chunk, like a batch, holds that plus at most one
    /// packet, and as many are alive as batches).
    pub fn chunk(&mut self) -> Vec<u8> {
        self.last_chunk
            .take()
            .or_else(|| self.chunks.try_recv().ok())
            .unwrap_or_else(|| vec![0; self.batch_bytes])
    }

    /// The packets of a chunk ([`crate::pcapfile::Record`]s): shard them into the workers'
    /// batches, which share the chunk rather than copy the packets.
    pub fn push_chunk(
        &mut self,
        chunk: Vec<u8>,
        recs: &[Record],
        linktype: i32,
        mut each: impl FnMut(Ts, &Record),
    ) {
        let chunk = Arc::new(chunk);
        for r in recs {
            let ts = Ts::from_timeval(r.ts_sec, r.ts_usec);
            each(ts, r);
            self.advance(ts);
            let data = chunk
                .get(r.off as usize..)
                .and_then(|d| d.get(..r.caplen as usize))
                .unwrap_or_default();
            let w = self.shard(linktype, data);
            if !self.batches[w]
                .chunk
                .as_ref()
                .is_some_and(|c| Arc::ptr_eq(c, &chunk))
            {
                if !self.batches[w].pkts.is_empty() {
                    self.send(w);
                }
                self.batches[w].chunk = Some(Arc::clone(&chunk));
            }
            let b = &mut self.batches[w];
            b.pkts.push(PktRef {
                ts,
                clock: self.clock,
                off: r.off,
                caplen: r.caplen,
                wire_len: r.wire_len,
                linktype,
            });
            if b.pkts.len() >= self.batch_n {
                self.send(w);
            }
        }
        // No batch took it (no packets), or the workers are done with them all already.
        self.last_chunk = Arc::into_inner(chunk);
    }

    /// Advance the capture clock to `ts`.
    #[inline]
    fn advance(&mut self, ts: Ts) {
        if ts > self.clock {
            self.clock = ts;
            if !self.live && self.clock >= self.next_flush {
                // Replay: idle workers sweep and report how far they have got too, so the
                // central thread's reordering never waits long for them (live capture flushes
                // on the wall clock).
                if self.next_flush > Ts::ZERO {
                    self.flush(self.clock);
                }
                self.next_flush = self.clock.saturating_add_secs(REPLAY_FLUSH_SECS);
            }
        }
    }

    /// The worker a packet goes to.
    #[inline]
    fn shard(&mut self, linktype: i32, data: &[u8]) -> usize {
        let workers = self.txs.len();
        if workers == 1 {
            0
        } else {
            (decode::shard_hash(linktype, data, &mut self.shard_scratch) % workers as u64) as usize
        }
    }

    fn send(&mut self, w: usize) {
        let fresh = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Batch::with_capacity(self.batch_n, self.batch_bytes));
        let mut full = std::mem::replace(&mut self.batches[w], fresh);
        full.now = self.clock;
        let n = full.pkts.len() as u64;
        self.metrics.capture_packets.inc_by(n);
        if self.live {
            match self.txs[w].try_send(Msg::Batch(full)) {
                Ok(()) => {}
                Err(TrySendError::Full(Msg::Batch(mut b))) => {
                    // The worker is behind: drop here, count it, keep the buffer.
                    self.queue_drops.inc_by(n);
                    b.data.clear();
                    b.pkts.clear();
                    self.batches[w] = b;
                }
                Err(_) => self.failed = true,
            }
        } else if self.txs[w].send(Msg::Batch(full)).is_err() {
            self.failed = true;
        }
    }

    /// Send every partial batch, and an empty one carrying `now` to idle workers, so that
    /// timeouts advance while traffic is quiet (live capture calls this periodically).
    pub fn flush(&mut self, now: Ts) {
        if now > self.clock {
            self.clock = now;
        }
        for w in 0..self.batches.len() {
            self.send(w);
        }
    }
}

/// A worker adds its counters to the shared metrics at most once per this much capture time (and
/// at the end), not after every batch: a merge reads every counter and adds each change to a
/// shared atomic, about 3,000 instructions, and bench.pcap makes 7,000 batches. Scrapes and the
/// periodic `stats` event see the counters at most this late.
const METRICS_MERGE_SECS: u64 = 1;

/// Each worker's share of the capture queues: `[limits] queue_batches` is for all workers
/// together (so their memory does not grow with the worker count), at least one batch each.
fn worker_queue(total: usize, workers: usize) -> usize {
    (total / workers.max(1)).max(1)
}

/// Replay `files` through the whole pipeline.
pub fn replay(files: &FileList, opts: &Options, metrics: &Arc<Metrics>) -> Result<Summary> {
    let started = Instant::now();
    let mut summary = Summary {
        files_skipped: files.skipped.len() as u64,
        ..Summary::default()
    };
    for _ in &files.skipped {
        metrics.capture_files.with_label_values(&["skipped"]).inc();
    }
    let pipeline = Pipeline::start(opts, metrics, false)?;
    let mut disp = pipeline.dispatcher(false, "replay");
    let progress = opts.progress.then(|| {
        let pb = indicatif::ProgressBar::new(files.total_bytes);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let mut read_bytes: u64 = 0;
    for path in &files.files {
        if disp.failed {
            break;
        }
        let mut n = 0u32;
        let mut count = |ts: Ts, wire_len: u32, caplen: u32| {
            if summary.first_ts.is_none_or(|f| ts < f) {
                summary.first_ts = Some(ts);
            }
            summary.packets += 1;
            summary.bytes += u64::from(wire_len);
            read_bytes += u64::from(caplen) + 16;
            n = n.wrapping_add(1);
            if n.is_multiple_of(4096) {
                if let Some(pb) = &progress {
                    pb.set_position(read_bytes);
                }
                metrics.replay_progress.set(read_bytes as i64);
            }
        };
        let end =
            if let Some((format, mut file)) = crate::capture::chunked(path, opts.bpf.as_deref()) {
                // A plain pcap file: read in chunks the workers share (see `pcapfile`).
                let mut recs = Vec::new();
                loop {
                    let mut chunk = disp.chunk();
                    let fill = file.fill(&mut chunk, &mut recs);
                    disp.push_chunk(chunk, &recs, format.linktype, |ts, r| {
                        count(ts, r.wire_len, r.caplen);
                    });
                    match fill {
                        Fill::More if !disp.failed => {}
                        Fill::More | Fill::End(Ok(())) => break FileEnd::Complete,
                        Fill::End(Err(d)) => {
                            break FileEnd::Damaged {
                                kind: d.kind,
                                message: d.message,
                            }
                        }
                    }
                }
            } else {
                let mut reader = match FileReader::open(path, opts.bpf.as_deref()) {
                    Ok(r) => r,
                    Err(e) => {
                        summary.files_damaged += 1;
                        metrics.capture_files.with_label_values(&["damaged"]).inc();
                        metrics.capture_damage.with_label_values(&["corrupt"]).inc();
                        summary.damage.push((path.clone(), format!("{e:#}")));
                        continue;
                    }
                };
                let lt = reader.linktype;
                if !decode::linktype::supported(lt) {
                    summary.damage.push((
                        path.clone(),
                        format!("link type {lt} is not supported; its packets are counted only"),
                    ));
                }
                reader.for_each(|p| {
                    let ts = Ts::from_timeval(p.ts_sec, p.ts_usec);
                    count(ts, p.wire_len, p.data.len() as u32);
                    disp.push(ts, p.wire_len, p.linktype, p.data);
                })
            };
        match end {
            FileEnd::Complete => {
                summary.files_ok += 1;
                metrics.capture_files.with_label_values(&["ok"]).inc();
            }
            FileEnd::Damaged { kind, message } => {
                summary.files_damaged += 1;
                metrics.capture_files.with_label_values(&["damaged"]).inc();
                metrics.capture_damage.with_label_values(&[kind]).inc();
                summary.damage.push((path.clone(), message));
            }
        }
    }
    let now = disp.clock;
    disp.flush(now);
    let failed = disp.failed;
    drop(disp);
    metrics.replay_progress.set(read_bytes as i64);
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    metrics.capture_bytes.inc_by(summary.bytes);
    summary.last_ts = now;
    let capture = CaptureStats {
        files_ok: summary.files_ok,
        files_damaged: summary.files_damaged,
        files_skipped: summary.files_skipped,
        packets: summary.packets,
        bytes: summary.bytes,
    };
    let (totals, written) = pipeline.finish(now, |t| stats_record(capture, t))?;
    summary.totals = totals;
    summary.events_written = written;
    summary.elapsed = started.elapsed().as_secs_f64();
    if failed {
        anyhow::bail!("a worker stopped early");
    }
    Ok(summary)
}

/// The wall clock as packet time (live capture timestamps are wall-clock times too).
pub fn wall_now() -> Ts {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Ts(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Live capture: how often partial batches are handed over, drop counters read, and `stats`
/// events written.
pub struct LiveTiming {
    pub flush: Duration,
    pub stats_read: Duration,
    pub stats_event: Duration,
    /// How often `/healthz` is re-evaluated, over the packets and drops of that window.
    pub health: Duration,
    /// Over this fraction of packets dropped in a `health` window, `/healthz` fails.
    pub unhealthy_drop_ratio: f64,
}

impl Default for LiveTiming {
    fn default() -> Self {
        LiveTiming {
            flush: Duration::from_millis(100),
            stats_read: Duration::from_secs(1),
            stats_event: Duration::from_secs(60),
            health: Duration::from_secs(5),
            unhealthy_drop_ratio: 0.01,
        }
    }
}

/// Capture from live interfaces until `stop` is set (SIGINT/SIGTERM), then drain the workers,
/// end every flow, write the final `stats` event and return.
pub fn live(
    sources: Vec<(LiveSettings, LiveSource)>,
    opts: &Options,
    metrics: &Arc<Metrics>,
    stop: &Arc<AtomicBool>,
    healthy: &Arc<AtomicBool>,
    timing: &LiveTiming,
) -> Result<Summary> {
    let started = Instant::now();
    let pipeline = Pipeline::start(opts, metrics, true)?;
    let batch_n = opts.limits.batch_packets;
    let mut threads = Vec::new();
    for (settings, mut src) in sources {
        let mut disp = pipeline.dispatcher(true, &settings.interface);
        let stop = stop.clone();
        let healthy = healthy.clone();
        let m = metrics.clone();
        let (flush_every, stats_every) = (timing.flush, timing.stats_read);
        let name = settings.interface.clone();
        threads.push(
            thread::Builder::new()
                .name(format!("medtap-capture-{name}"))
                .spawn(move || -> (u64, u64, Option<String>) {
                    let lt = src.linktype;
                    let kernel = m.capture_drops.with_label_values(&[&name, "kernel"]);
                    let iface = m.capture_drops.with_label_values(&[&name, "interface"]);
                    let mut last = src.stats().unwrap_or_default();
                    let (mut packets, mut bytes) = (0u64, 0u64);
                    let mut newest = Ts::ZERO;
                    let mut failed = None;
                    let (mut flushed, mut stats_read) = (Instant::now(), Instant::now());
                    m.up.inc();
                    while !stop.load(Ordering::Relaxed) && !disp.failed {
                        let r = src.read(batch_n, |p| {
                            let ts = Ts::from_timeval(p.ts_sec, p.ts_usec);
                            newest = newest.max(ts);
                            packets += 1;
                            bytes += u64::from(p.wire_len);
                            disp.push(ts, p.wire_len, lt, p.data);
                        });
                        if let LiveRead::Failed(e) = r {
                            tracing::error!(interface = %name, error = %e, "capture stopped");
                            healthy.store(false, Ordering::Relaxed);
                            failed = Some(name.clone());
                            break;
                        }
                        if flushed.elapsed() >= flush_every {
                            let now = wall_now();
                            disp.flush(now);
                            if newest > Ts::ZERO {
                                m.capture_lag.set(now.secs_since(newest));
                            }
                            flushed = Instant::now();
                        }
                        if stats_read.elapsed() >= stats_every {
                            if let Some(st) = src.stats() {
                                let (_, k, i) = st.since(&last);
                                kernel.inc_by(k);
                                iface.inc_by(i);
                                last = st;
                            }
                            stats_read = Instant::now();
                        }
                    }
                    if let Some(st) = src.stats() {
                        let (_, k, i) = st.since(&last);
                        kernel.inc_by(k);
                        iface.inc_by(i);
                    }
                    disp.flush(wall_now());
                    m.up.dec();
                    m.capture_bytes.inc_by(bytes);
                    (packets, bytes, failed)
                })?,
        );
    }
    let capture = |packets: u64, bytes: u64| CaptureStats {
        packets,
        bytes,
        ..CaptureStats::default()
    };
    let (mut last_event, mut last_health) = (Instant::now(), Instant::now());
    let (mut prev_pkts, mut prev_drops) = (0u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_millis(50));
        if threads.iter().all(|t| t.is_finished()) {
            break;
        }
        // /healthz: unhealthy as soon as one capture stopped, and for a `health` window in
        // which more than `unhealthy_drop_ratio` of the packets were lost.
        let stopped = threads.iter().any(|t| t.is_finished());
        if stopped {
            healthy.store(false, Ordering::Relaxed);
        }
        if last_health.elapsed() >= timing.health {
            let pkts = metrics.capture_packets.get();
            let drops = metrics.drops_total();
            let (dp, dd) = (
                pkts.saturating_sub(prev_pkts),
                drops.saturating_sub(prev_drops),
            );
            let ratio = if dp + dd == 0 {
                0.0
            } else {
                dd as f64 / (dp + dd) as f64
            };
            let ok = ratio <= timing.unhealthy_drop_ratio && !stopped;
            if ok != healthy.swap(ok, Ordering::Relaxed) {
                if ok {
                    tracing::info!("healthy again");
                } else if !stopped {
                    tracing::warn!(
                        dropped = dd,
                        packets = dp,
                        "unhealthy: over {:.1}% of packets dropped in the last {:?}",
                        timing.unhealthy_drop_ratio * 100.0,
                        timing.health
                    );
                }
            }
            (prev_pkts, prev_drops) = (pkts, drops);
            last_health = Instant::now();
        }
        if last_event.elapsed() >= timing.stats_event {
            let snap = metrics.snapshot();
            let pkts = metrics.capture_packets.get();
            pipeline.emit_stats(
                wall_now(),
                stats_record(capture(pkts, metrics.capture_bytes.get()), &snap),
            );
            last_event = Instant::now();
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (mut packets, mut bytes) = (0, 0);
    let mut failed = Vec::new();
    for t in threads {
        if let Ok((p, b, f)) = t.join() {
            packets += p;
            bytes += b;
            failed.extend(f);
        }
    }
    let now = wall_now();
    let (totals, written) = pipeline.finish(now, |t| stats_record(capture(packets, bytes), t))?;
    if !failed.is_empty() {
        // Everything is flushed; exit 1 so a supervisor (systemd Restart=on-failure) notices.
        anyhow::bail!("capture stopped on {}", failed.join(", "));
    }
    Ok(Summary {
        packets,
        bytes,
        last_ts: now,
        elapsed: started.elapsed().as_secs_f64(),
        totals,
        events_written: written,
        ..Summary::default()
    })
}

/// How much lower than the capture and worker threads the central thread and the event writer
/// run (nice value): their work can wait (their queues are bounded: a worker that gets too far
/// ahead waits for them), a worker's cannot, and when the cores are short the scheduler would
/// otherwise share them out evenly. Like Suricata's `prio: low` for its management threads.
const BACKGROUND_NICE: i32 = 5;

/// Lower the calling thread's priority by [`BACKGROUND_NICE`] (Linux: nice values are per
/// thread). Best effort: a failure leaves it as it was.
#[allow(unsafe_code)]
fn yield_to_capture() {
    // SAFETY: getpriority/setpriority on the calling thread's own id; no memory is passed.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        nix::errno::Errno::clear();
        let cur = libc::getpriority(libc::PRIO_PROCESS, tid);
        if cur == -1 && nix::errno::Errno::last_raw() != 0 {
            return;
        }
        let _ = libc::setpriority(libc::PRIO_PROCESS, tid, (cur + BACKGROUND_NICE).min(19));
    }
}

/// Free `v` on a thread of its own: large tables at the end of a run, which nothing waits for
/// (the process may exit before it is done). Dropped here if no thread can be started.
pub(crate) fn drop_later<T: Send + 'static>(v: T) {
    // When no thread can be started, `spawn` drops the closure, and `v` with it, here.
    let _ = thread::Builder::new()
        .name("medtap-free".into())
        .spawn(move || drop(v));
}

/// Observations a replay worker buffers at most while its `through` stands still (see
/// [`ObsChannel::send`]).
const OBS_HOLD_ITEMS: usize = 4_096;

/// A worker's side of the channel to the central thread.
struct ObsChannel {
    worker: usize,
    /// The `through` last handed over.
    through: Ts,
    tx: Sender<ObsBatch>,
    spare: Receiver<ObsBatch>,
    live: bool,
    drops: prometheus::IntCounter,
    /// Observations in the queue, of all workers (the central thread takes them off as it
    /// receives each batch), bounded by [`Limits::observe_queue_items`].
    queued: Arc<ObsQueued>,
    max_items: usize,
}

impl ObsChannel {
    /// Hand over what the worker buffered, and how far it has got (`through`, see
    /// [`ObsBatch`]): also when nothing is buffered but `through` moved, so that the central
    /// thread's reordering does not wait for an idle worker. Replay: wait for room; live: drop
    /// and count.
    fn send(&mut self, buf: &mut ObsBuf, through: Ts) {
        // Replay: the central thread cannot take anything before `through` moves (its
        // reordering holds it), so observations wait here until it does (a sweep, once a second
        // of capture clock) or until [`OBS_HOLD_ITEMS`] are buffered: one hand-over and one
        // wake-up of the central thread per second of capture instead of per packet batch.
        if through <= self.through && (buf.is_empty() || (!self.live && buf.len() < OBS_HOLD_ITEMS))
        {
            return;
        }
        self.through = self.through.max(through);
        let mut batch = buf.take(self.spare.try_recv().ok());
        batch.worker = self.worker;
        batch.through = self.through;
        let n = batch.items.len();
        let over = |q: usize| n > 0 && q > 0 && q + n > self.max_items;
        if self.live {
            if over(self.queued.get()) {
                self.drops.inc_by(n as u64);
                return;
            }
            // Counted before it is in the queue, so that the central thread never takes off
            // more than was put on.
            self.queued.add(n);
            match self.tx.try_send(batch) {
                Ok(()) => {}
                Err(TrySendError::Full(b)) => {
                    self.queued.taken(n);
                    self.drops.inc_by(b.items.len() as u64);
                }
                Err(TrySendError::Disconnected(_)) => {
                    self.queued.taken(n);
                }
            }
        } else {
            self.queued.wait_while(over);
            self.queued.add(n);
            if self.tx.send(batch).is_err() {
                self.queued.taken(n);
            }
        }
    }
}

/// One worker's state: its flow table, its event sink and counters, and what it last merged
/// into the registry.
struct Worker {
    table: FlowTable,
    /// Packet-level device evidence (SYN signatures, DHCP, LLDP, ...).
    tap: Tap,
    sinks: Sinks,
    prev: WorkerStats,
    prev_app: WorkerStats,
    /// When the counters are next merged into the metrics ([`METRICS_MERGE_SECS`]).
    next_merge: Ts,
    metrics: Arc<Metrics>,
    ev: Sender<WriterMsg>,
    obs: ObsChannel,
}

impl Worker {
    fn new(
        table: FlowTable,
        tap: Tap,
        metrics: Arc<Metrics>,
        ev: Sender<WriterMsg>,
        lines_spare: Receiver<Vec<u8>>,
        events_on: bool,
        obs: ObsChannel,
    ) -> Worker {
        Worker {
            table,
            tap,
            sinks: Sinks {
                events: {
                    let ev = ev.clone();
                    EventSink::spilling(
                        events_on,
                        Box::new(move |lines| {
                            let _ = ev.send(WriterMsg::Lines(lines));
                            lines_spare.try_recv().unwrap_or_default()
                        }),
                    )
                },
                stats: WorkerStats::default(),
                app_stats: WorkerStats::default(),
                obs: ObsBuf::new(true),
            },
            prev: WorkerStats::default(),
            prev_app: WorkerStats::default(),
            next_merge: Ts::ZERO,
            metrics,
            ev,
            obs,
        }
    }

    #[inline]
    fn packet(&mut self, ts: Ts, clock: Ts, wire_len: u32, linktype: i32, frame: &[u8]) {
        self.sinks.stats.inc(Counter::Packets);
        self.sinks.stats.add(Counter::Bytes, u64::from(wire_len));
        self.sinks.obs.set_clock(clock);
        if let Some(d) = decode::decode(linktype, frame, &mut self.sinks.stats) {
            self.tap.packet(ts, &d, &mut self.sinks.obs);
            self.table.packet(ts, clock, &d, wire_len, &mut self.sinks);
        } else if let Some((src, c)) = decode::link_control(linktype, frame) {
            self.tap.link_control(ts, src, c, &mut self.sinks.obs);
        }
    }

    /// Between batches: sweep on the capture clock, hand over full event buffers, merge counters.
    fn tick(&mut self, now: Ts, force: bool) {
        if now > Ts::ZERO {
            self.table.sweep_if_due(now, &mut self.sinks);
        }
        // Nothing later from this worker has an order key below its last sweep (`finish`: below
        // anything).
        let through = if force {
            Ts(i64::MAX)
        } else {
            self.table.swept()
        };
        let sinks = &mut self.sinks;
        let mut events = std::mem::replace(&mut sinks.events, EventSink::new(false));
        events.account(&mut sinks.stats);
        if force || events.pending_bytes() >= SINK_FLUSH_BYTES {
            let lines = events.take();
            if !lines.is_empty() {
                let _ = self.ev.send(WriterMsg::Lines(lines));
            }
        }
        sinks.events = events;
        self.obs.send(&mut sinks.obs, through);
        if force || now >= self.next_merge {
            sinks.stats.flows_active = self.table.len() as u64;
            sinks.stats.flows_peak = self.table.peak() as u64;
            sinks.stats.reasm_bytes = self.table.reassembly_bytes() as u64;
            self.metrics.merge(&mut self.prev, &sinks.stats);
            self.metrics.merge(&mut self.prev_app, &sinks.app_stats);
            self.next_merge = now.saturating_add_secs(METRICS_MERGE_SECS);
        }
    }

    /// End every flow, flush everything, and return the worker's totals.
    fn finish(mut self, now: Ts) -> WorkerStats {
        self.table.finish(now, &mut self.sinks);
        self.tick(Ts::ZERO, true);
        let mut total = self.sinks.stats.clone();
        total.add_all(&self.sinks.app_stats);
        total
    }

    /// A worker thread: batches in, emptied batches (and chunks) back for reuse.
    fn run(
        mut self,
        rx: Receiver<Msg>,
        spare: Sender<Batch>,
        chunks: Sender<Vec<u8>>,
    ) -> WorkerStats {
        for msg in rx {
            match msg {
                Msg::Batch(mut b) => {
                    let data = b.bytes();
                    for (i, p) in b.pkts.iter().enumerate() {
                        if i % TOUCH_GROUP == 0 {
                            touch_ahead(&b.pkts, data, i);
                        }
                        let start = p.off as usize;
                        if let Some(frame) = data.get(start..start + p.caplen as usize) {
                            self.packet(p.ts, p.clock, p.wire_len, p.linktype, frame);
                        }
                    }
                    self.tick(b.now, false);
                    if let Some(v) = b.chunk.take().and_then(Arc::into_inner) {
                        let _ = chunks.try_send(v);
                    }
                    b.data.clear();
                    b.pkts.clear();
                    let _ = spare.try_send(b);
                }
                Msg::Finish(now) => return self.finish(now),
            }
        }
        self.finish(Ts::ZERO)
    }
}

#[derive(Serialize)]
pub struct StatsRecord {
    capture: CaptureStats,
    decoder: serde_json::Map<String, serde_json::Value>,
    flow: serde_json::Map<String, serde_json::Value>,
    tcp: serde_json::Map<String, serde_json::Value>,
    app_layer: serde_json::Map<String, serde_json::Value>,
    /// Events before this one: produced by the pipeline and written to the log. Equal unless
    /// something was lost.
    events: EventsStats,
}

#[derive(Serialize, Clone, Copy, Default)]
pub struct CaptureStats {
    pub files_ok: u64,
    pub files_damaged: u64,
    pub files_skipped: u64,
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Serialize)]
struct EventsStats {
    produced: u64,
    written: u64,
}

/// Group the counters by metric family into the `stats` event.
pub fn stats_record(capture: CaptureStats, totals: &WorkerStats) -> StatsRecord {
    use serde_json::{Map, Value};
    let mut decoder = Map::new();
    let mut flow = Map::new();
    let mut tcp = Map::new();
    let mut app = Map::new();
    for c in Counter::all() {
        let (name, _, labels) = c.spec();
        let v = totals.get(c);
        let label = labels.iter().map(|(_, v)| *v).collect::<Vec<_>>().join("_");
        let short = name
            .trim_start_matches("medtap_")
            .trim_end_matches("_total");
        let key = if label.is_empty() {
            short.to_string()
        } else {
            format!("{short}_{label}")
        };
        let target = if short.starts_with("decode") {
            &mut decoder
        } else if short.starts_with("flows") {
            &mut flow
        } else if short.starts_with("reassembly") {
            &mut tcp
        } else if short.starts_with("app_flows") {
            let key = label.clone();
            app.insert(key, Value::from(v));
            continue;
        } else if short.starts_with("events") || short == "packets" || short == "bytes" {
            continue;
        } else {
            &mut app
        };
        target.insert(key, Value::from(v));
    }
    for f in Family::ALL {
        let (name, _, _, values) = f.spec();
        let short = name
            .trim_start_matches("medtap_")
            .trim_end_matches("_total");
        let mut fam = Map::new();
        if let [a] = values {
            for (i, v) in a.iter().enumerate() {
                let n = totals.fam_get(f, i);
                if n > 0 {
                    fam.insert((*v).to_string(), Value::from(n));
                }
            }
        } else if let [a, b] = values {
            for (i, x) in a.iter().enumerate() {
                for (j, y) in b.iter().enumerate() {
                    let n = totals.fam_get(f, i * b.len() + j);
                    if n > 0 {
                        fam.insert(format!("{x}/{y}"), Value::from(n));
                    }
                }
            }
        }
        if !fam.is_empty() {
            app.insert(short.to_string(), Value::Object(fam));
        }
    }
    StatsRecord {
        capture,
        decoder,
        flow,
        tcp,
        app_layer: app,
        events: EventsStats {
            produced: totals.get(Counter::EventsProduced),
            written: 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_queue_is_shared_by_the_workers() {
        let total = crate::limits::Limits::default().queue_batches;
        assert_eq!(worker_queue(total, 1), total);
        // The batches in all queues together do not grow with the worker count.
        for workers in 1..=256 {
            let each = worker_queue(total, workers);
            assert!(each >= 1);
            assert!(each * workers <= total.max(workers), "{workers} workers");
        }
        assert_eq!(worker_queue(64, 4), 16);
        assert_eq!(worker_queue(3, 8), 1);
    }

    #[allow(unsafe_code)]
    fn own_nice() -> i32 {
        // SAFETY: getpriority on the calling thread's own id; no memory is passed.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    #[test]
    fn background_threads_run_below_the_others() {
        let (before, after, other) = thread::spawn(|| {
            let before = own_nice();
            yield_to_capture();
            let after = own_nice();
            // A thread started by the lowered one inherits its value (Linux).
            let other = thread::spawn(own_nice).join().unwrap();
            (before, after, other)
        })
        .join()
        .unwrap();
        assert_eq!(after, (before + BACKGROUND_NICE).min(19));
        assert!(after > before || before == 19);
        // The thread started by the lowered one is lowered too; the test thread is not.
        assert_eq!(other, after);
        assert_eq!(own_nice(), before);
    }
}
