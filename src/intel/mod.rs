//! The central thread: one thread that receives every worker's [`Observation`]s
//! ([`crate::observe`]), keeps what is global (devices, behaviour), and emits the events that
//! only a global view can produce.
//!
//! Started by [`crate::pipeline::Pipeline::start`], fed over one bounded channel of observation
//! batches (replay: workers wait when it is full; live: they drop the batch and count
//! `medtap_observations_dropped_total`), and joined by `Pipeline::finish` after the workers, so
//! that every observation is handled before the final `stats` event. Its events go through the
//! same event writer as the workers' and are counted as produced like theirs.
//!
//! Time here is packet time ([`crate::time::Ts`]) everywhere, so replay and live agree.

use std::sync::Arc;

use crossbeam_channel::Receiver;

use crate::metrics::Metrics;

use crate::observe::Observation;
use crate::output::{EventSink, SINK_FLUSH_BYTES};
use crate::stats::WorkerStats;

/// How the central thread is set up.
#[derive(Debug, Clone, Default)]
pub struct IntelOptions {}

/// What the central thread did, handed back when it is joined.
#[derive(Debug, Default, Clone)]
pub struct IntelSummary {
    /// Counters (events produced by the central thread).
    pub stats: WorkerStats,
    /// Observations handled.
    pub observations: u64,
}

/// The central thread's state.
pub struct Intel {
    events: EventSink,
    stats: WorkerStats,
    /// What was last merged into the registry.
    prev: WorkerStats,
    metrics: Arc<Metrics>,
    observations: u64,
}

impl Intel {
    pub fn new(_opts: &IntelOptions, events_on: bool, metrics: Arc<Metrics>) -> Intel {
        Intel {
            events: EventSink::new(events_on),
            stats: WorkerStats::default(),
            prev: WorkerStats::default(),
            metrics,
            observations: 0,
        }
    }

    /// One observation from a worker.
    pub fn observe(&mut self, _o: &Observation) {
        self.observations += 1;
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
    /// out through `emit`. Emptied vectors go back through `spare` for the workers to reuse.
    pub fn run(
        mut self,
        rx: Receiver<Vec<Observation>>,
        spare: crossbeam_channel::Sender<Vec<Observation>>,
        mut emit: impl FnMut(Vec<u8>),
    ) -> IntelSummary {
        for mut batch in rx {
            for o in &batch {
                self.observe(o);
            }
            batch.clear();
            let _ = spare.try_send(batch);
            if let Some(lines) = self.take_events(false) {
                emit(lines);
            }
            self.metrics.merge(&mut self.prev, &self.stats);
        }
        if let Some(lines) = self.take_events(true) {
            emit(lines);
        }
        self.metrics.merge(&mut self.prev, &self.stats);
        IntelSummary {
            stats: self.stats,
            observations: self.observations,
        }
    }
}
