//! One processing order for the observations of all workers (replay).
//!
//! Workers hand over their observations in batches, whenever their packet batches end; with
//! several workers the central thread gets them interleaved differently from run to run, and a
//! flow's end comes whenever its worker's sweep finds it. Decisions that depend on order (is
//! this peer new? has the learning period passed? which window is open?) would then depend on
//! `--workers`. So, in replay, the central thread holds observations back and processes them
//! sorted by order key (the capture clock of the packet that produced them, or the clock at
//! which a flow expired; see [`crate::observe::ObsBatch`]), then packet time, kind and flow:
//! the same order whatever the number of workers. An observation is released once every
//! worker has reported (`through`) that nothing earlier can come from it.
//!
//! Bounded: at most [`MAX_HELD`] observations are held; past that, the earliest are released
//! early (counted in `medtap_detect_cap_hits_total{table="reorder"}`: the order may then
//! depend on the workers). Live capture does not reorder (its input is timing-dependent
//! anyway, and holding back would delay alerts).

use crate::observe::{ObsBatch, Observation};
use crate::time::Ts;

/// Observations held back at most.
pub const MAX_HELD: usize = 65_536;

/// Replay hands out `device` events each time the processing order crosses a multiple of this
/// (10 s of capture clock, counted from the epoch, so the points depend on nothing but the order
/// keys): a device's changes in between are coalesced into one event. Points fixed by the
/// workers (each marked the first clock at or past its last mark plus 10 s) were met in an
/// order that depended on how their batches interleaved, and so did the events with 2 workers.
const MARK_EVERY: i64 = 10_000_000;

/// The last mark at or before `t`.
fn mark_of(t: Ts) -> Ts {
    Ts(t.0 - t.0.rem_euclid(MARK_EVERY))
}

/// The processing order: order key, packet time, kind (evidence, flow start, facts, flow
/// end), flow (or MAC), and arrival (for full ties: the same flow's observations come from one
/// worker, in its order). Unique, thanks to the arrival number.
type SortKey = (Ts, Ts, u8, u64, u64);

struct Held {
    key: SortKey,
    /// The worker that sent it (its vectors go back to that worker to be freed there).
    worker: usize,
    obs: Observation,
}

/// The reordering buffer.
///
/// Observations wait in slots (`held`), listed in arrival order (`waiting`); each time the
/// release point (the smallest `through` of the workers) passes the earliest of them, those
/// below it are put in order once (they are nearly in order already: each worker's come in
/// capture-clock order but for flows ended by a sweep), then handed out, taken from where they
/// wait. One sort per release point instead of a heap entry per observation: observations are
/// large, and a worker sweeps every few seconds of packet time, so thousands wait between
/// release points. An observation is moved once, into a slot: the slot an observation handed
/// out last left (still in the cache), and it stays there until it is handed out (closing
/// the holes moved every observation still waiting at each release, through memory not
/// touched since it arrived).
pub struct Reorder {
    /// Slots; `None` once handed out (then listed in `free`).
    held: Vec<Option<Held>>,
    /// Empty slots, the last emptied last.
    free: Vec<usize>,
    /// The observations not released, in arrival order (in key order after a release forced by
    /// the cap): (packed key, slot).
    waiting: Vec<(u128, usize)>,
    /// Observations in `held` (not handed out yet, released or not).
    live: usize,
    /// The smallest order key of the observations in `held` not released (`Ts(i64::MAX)` when
    /// none).
    held_min: Ts,
    /// The released observations in their order, last first: (packed key, index in `held`).
    /// Observations are not moved into their order (they are large): they are taken out of
    /// `held` in it.
    order: Vec<(u128, usize)>,
    /// Per worker: no later observation of it has a key below this.
    through: Vec<Ts>,
    /// The last mark the processing order reached ([`Reorder::reached_mark`]); none before the
    /// first observation.
    last_mark: Option<Ts>,
    /// [`Reorder::finished`] has answered yes.
    ended: bool,
    seq: u64,
    /// Observations released before their turn because [`MAX_HELD`] were held.
    pub forced: u64,
}

impl Reorder {
    pub fn new(workers: usize) -> Reorder {
        Reorder {
            held: Vec::new(),
            free: Vec::new(),
            waiting: Vec::new(),
            live: 0,
            held_min: Ts(i64::MAX),
            order: Vec::new(),
            through: vec![Ts::ZERO; workers.max(1)],
            last_mark: None,
            ended: false,
            seq: 0,
            forced: 0,
        }
    }

    /// Take a worker's batch (its vectors are left empty for reuse).
    pub fn add(&mut self, b: &mut ObsBatch) {
        if let Some(t) = self.through.get_mut(b.worker) {
            *t = (*t).max(b.through);
        }
        let keys = std::mem::take(&mut b.keys);
        let worker = b.worker;
        let mut min = self.held_min;
        // Each observation is moved once, from the batch into its slot.
        for (o, key) in b.items.drain(..).zip(keys.iter().copied()) {
            let (rank, id) = match &o {
                Observation::Evidence { mac, .. } => (0, mac_id(mac)),
                Observation::FlowStart { flow, .. } => (1, flow.flow_id),
                Observation::Facts { flow, .. } => (2, flow.flow_id),
                Observation::FlowEnd { flow, .. } => (3, flow.flow_id),
            };
            min = min.min(key);
            self.seq += 1;
            let h = Held {
                key: (key, o.ts(), rank, id, self.seq),
                worker,
                obs: o,
            };
            let p = packed(&h.key);
            let slot = match self.free.pop() {
                Some(i) => {
                    if let Some(s) = self.held.get_mut(i) {
                        *s = Some(h);
                    }
                    i
                }
                None => {
                    self.held.push(Some(h));
                    self.held.len() - 1
                }
            };
            self.waiting.push((p, slot));
            self.live += 1;
        }
        self.held_min = min;
        b.keys = keys;
        b.keys.clear();
    }

    /// Release every held observation below `w`, then, while more than `cap` are held, the
    /// earliest (counted as forced when `count` is set). `order` must be used up.
    fn release(&mut self, w: Ts, cap: usize, count: bool) {
        debug_assert!(self.order.is_empty());
        self.order.clear();
        if self.held_min < w {
            // Order keys below `w` are the packed keys below this.
            let bound = flip(w) << 64;
            let mut min = u128::MAX;
            let order = &mut self.order;
            self.waiting.retain(|&(p, i)| {
                if p < bound {
                    order.push((p, i));
                    false
                } else {
                    min = min.min(p);
                    true
                }
            });
            self.held_min = if self.waiting.is_empty() {
                Ts(i64::MAX)
            } else {
                unflip(min >> 64)
            };
        }
        let waiting = self.waiting.len();
        if waiting > cap {
            // Everything waiting is at or past `w`, so after everything released so far.
            let excess = waiting - cap;
            let held = &self.held;
            let key = |i: usize| held.get(i).and_then(|h| h.as_ref()).map(|h| h.key);
            self.waiting.sort_unstable_by_key(|&(_, i)| key(i));
            if count {
                self.forced += excess as u64;
            }
            self.order.extend(self.waiting.drain(..excess));
            // What is left waiting is in key order now: the first has the smallest.
            self.held_min = self
                .waiting
                .first()
                .map_or(Ts(i64::MAX), |&(p, _)| unflip(p >> 64));
        }
        // Sort by (order key, packet time) packed into one integer, then each run of equal
        // ones by the rest of the key (keys are unique, so an unstable sort gives the one
        // order); the observations are then taken out of `held` in that order.
        let n = self.order.len();
        // Stable: adaptive to the runs of an almost sorted release (runs of equal packed keys
        // are put in order by the full, unique key below, so the result is the same).
        self.order.sort_by_key(|&(p, _)| p);
        let mut i = 0;
        while i < n {
            let p = self.order[i].0;
            let j = i + self.order[i..].iter().take_while(|o| o.0 == p).count();
            if j - i > 1 {
                let held = &self.held;
                self.order[i..j].sort_unstable_by_key(|&(_, x)| held[x].as_ref().map(|h| h.key));
            }
            i = j;
        }
        self.order.reverse();
    }

    /// The next released observation, if any is left.
    fn next_ready(&mut self) -> Option<(Ts, usize, Observation)> {
        let (key, worker, i) = self.next_ready_at()?;
        let o = self.take(i)?;
        Some((key, worker, o))
    }

    /// [`Reorder::next_ready`], left where it waits: (order key, worker, where) for
    /// [`Reorder::get`] and [`Reorder::take`].
    fn next_ready_at(&mut self) -> Option<(Ts, usize, usize)> {
        let (_, i) = self.order.pop()?;
        let h = self.held.get(i)?.as_ref()?;
        Some((h.key.0, h.worker, i))
    }

    /// The observation handed out at `i` ([`Reorder::pop_ready_at`]), read where it waits.
    pub fn get(&self, i: usize) -> Option<&Observation> {
        Some(&self.held.get(i)?.as_ref()?.obs)
    }

    /// [`Reorder::get`], to change (the central thread moves what it keeps out of it).
    pub fn get_mut(&mut self, i: usize) -> Option<&mut Observation> {
        Some(&mut self.held.get_mut(i)?.as_mut()?.obs)
    }

    /// The observation handed out at `i`, taken (once it is processed).
    pub fn take(&mut self, i: usize) -> Option<Observation> {
        let h = self.held.get_mut(i)?.take()?;
        self.live -= 1;
        self.free.push(i);
        Some(h.obs)
    }

    /// The observation handed out at `i`, dropped where it waits (once it is processed).
    pub fn discard(&mut self, i: usize) {
        if let Some(h) = self.held.get_mut(i).filter(|h| h.is_some()) {
            *h = None;
            self.live -= 1;
            self.free.push(i);
        }
    }

    /// Whether the processing order, about to take an observation with order key `key`, has
    /// reached (or passed) a mark ([`MARK_EVERY`]) since the last call: the points at which
    /// replay hands out `device` events. Not before the first observation.
    pub fn reached_mark(&mut self, key: Ts) -> bool {
        let m = mark_of(key);
        match self.last_mark {
            Some(last) if m <= last => false,
            before => {
                self.last_mark = Some(m);
                before.is_some()
            }
        }
    }

    /// Whether every worker has sent its last batch, once: the mark after everything they
    /// sent (to be handed out once all of it is processed).
    pub fn finished(&mut self) -> bool {
        if self.ended || self.through.iter().any(|&t| t < Ts(i64::MAX)) {
            return false;
        }
        self.ended = true;
        true
    }

    /// The next observation whose turn has come (or, when too many are held, the earliest),
    /// with its order key and the worker that sent it.
    #[cfg(test)]
    pub fn pop_ready(&mut self) -> Option<(Ts, usize, Observation)> {
        self.release_due();
        self.next_ready()
    }

    /// Release what is due when what was released is all handed out.
    fn release_due(&mut self) {
        if self.order.is_empty() {
            let w = self.through.iter().copied().min().unwrap_or(Ts::ZERO);
            if self.held_min < w || self.live > MAX_HELD {
                self.release(w, MAX_HELD, true);
            }
        }
    }

    /// [`Reorder::pop_ready`], left where it waits (read it with [`Reorder::get`], then
    /// [`Reorder::take`] it before the next pop): not moved out to be read.
    pub fn pop_ready_at(&mut self) -> Option<(Ts, usize, usize)> {
        self.release_due();
        self.next_ready_at()
    }

    /// The next observation in order, whatever the workers reported (every worker is done).
    pub fn pop_any(&mut self) -> Option<(Ts, usize, Observation)> {
        if self.order.is_empty() && self.live > 0 {
            self.release(Ts(i64::MAX), 0, false);
        }
        self.next_ready()
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// (order key, packet time) as one integer in the same order.
fn packed(k: &SortKey) -> u128 {
    (flip(k.0) << 64) | flip(k.1)
}

/// A time as an unsigned integer in the same order.
fn flip(t: Ts) -> u128 {
    u128::from((t.0 as u64) ^ (1 << 63))
}

/// The time [`flip`] gave `x` for (its low 64 bits).
fn unflip(x: u128) -> Ts {
    Ts(((x as u64) ^ (1 << 63)) as i64)
}

fn mac_id(mac: &[u8; 6]) -> u64 {
    let mut b = [0u8; 8];
    b[..6].copy_from_slice(mac);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::FlowMeta;

    fn start(id: u64, s: i64) -> Observation {
        Observation::FlowStart {
            ts: Ts(s),
            flow: FlowMeta {
                flow_id: id,
                proto: 6,
                client: ("10.0.0.1".parse().unwrap(), 1),
                server: ("10.0.0.2".parse().unwrap(), 2),
                vlan: [0, 0],
                client_mac: [0; 6],
                server_mac: [0; 6],
                to_group: false,
                app_proto: None,
            },
        }
    }

    fn batch(worker: usize, through: i64, obs: &[(u64, i64)]) -> ObsBatch {
        ObsBatch {
            worker,
            through: Ts(through),
            items: obs.iter().map(|(id, k)| start(*id, *k)).collect(),
            keys: obs.iter().map(|(_, k)| Ts(*k)).collect(),
        }
    }

    fn ids(r: &mut Reorder, all: bool) -> Vec<u64> {
        let mut v = Vec::new();
        loop {
            let o = if all { r.pop_any() } else { r.pop_ready() };
            match o.map(|(_, _, o)| o) {
                Some(Observation::FlowStart { flow, .. }) => v.push(flow.flow_id),
                Some(_) => unreachable!(),
                None => return v,
            }
        }
    }

    /// Two workers' batches in either arrival order give one release order, and nothing is
    /// released before every worker has got past it.
    #[test]
    fn marks_are_the_multiples_of_ten_seconds_the_order_crosses() {
        let s = |x: i64| Ts(x * 1_000_000);
        let mut r = Reorder::new(2);
        assert!(
            !r.reached_mark(s(3)),
            "the first observation is no crossing"
        );
        assert!(!r.reached_mark(s(9)));
        assert!(r.reached_mark(s(10)), "10 s reached");
        assert!(!r.reached_mark(s(19)), "each mark once");
        assert!(r.reached_mark(s(45)), "20, 30 and 40 passed: one crossing");
        assert!(!r.reached_mark(s(49)));
        assert_eq!(mark_of(Ts(-1)), s(-10), "before the epoch too");
        assert!(!r.finished());
        r.add(&mut batch(0, i64::MAX, &[]));
        assert!(!r.finished(), "worker 1 is still running");
        r.add(&mut batch(1, i64::MAX, &[]));
        assert!(r.finished());
        assert!(!r.finished(), "once");
        r.add(&mut batch(1, i64::MAX, &[]));
        assert!(!r.finished(), "once, whatever comes after");
    }

    #[test]
    fn release_order_does_not_depend_on_arrival() {
        let a = || batch(0, 30, &[(1, 10), (3, 30)]);
        let b = || batch(1, 25, &[(2, 20), (4, 25)]);
        let mut got = Vec::new();
        for first_a in [true, false] {
            let mut r = Reorder::new(2);
            let mut out = Vec::new();
            let (x, y) = if first_a { (a(), b()) } else { (b(), a()) };
            let mut x = x;
            r.add(&mut x);
            // One worker alone: nothing is released (the other has reported nothing yet).
            out.extend(ids(&mut r, false));
            assert!(out.is_empty());
            let mut y = y;
            r.add(&mut y);
            out.extend(ids(&mut r, false));
            assert_eq!(out, vec![1, 2], "released below min(through) = 25 only");
            r.add(&mut batch(1, i64::MAX, &[]));
            r.add(&mut batch(0, i64::MAX, &[]));
            out.extend(ids(&mut r, false));
            got.push(out);
        }
        assert_eq!(got[0], vec![1, 2, 4, 3]);
        assert_eq!(got[0], got[1]);
    }

    #[test]
    fn held_observations_are_capped() {
        let mut r = Reorder::new(2);
        let obs: Vec<(u64, i64)> = (0..MAX_HELD as u64 + 10).map(|i| (i, 5)).collect();
        r.add(&mut batch(0, 100, &obs));
        let out = ids(&mut r, false);
        assert_eq!(out.len(), 10);
        assert_eq!(r.forced, 10);
        assert_eq!(r.len(), MAX_HELD);
        assert_eq!(ids(&mut r, true).len(), MAX_HELD);
    }

    /// Three workers, batches with keys out of order inside them (sweeps) but never below the
    /// worker's last `through`: everything comes out sorted by (key, ts, kind, flow, arrival),
    /// each observation once.
    #[test]
    fn release_order_is_the_sort_order() {
        let mut next = crate::testing::xorshift(0x2545_f491_4f6c_dd1du64);
        let mut r = Reorder::new(3);
        let mut through = [0i64; 3];
        let mut expected = Vec::new();
        let mut got = Vec::new();
        let mut id = 0u64;
        for _ in 0..300 {
            let w = next(3) as usize;
            let mut b = ObsBatch {
                worker: w,
                through: Ts(0),
                ..ObsBatch::default()
            };
            let base = through[w];
            for _ in 0..next(40) {
                id += 1;
                let key = base + next(50) as i64;
                let ts = key - next(5) as i64;
                b.items.push(start(id, ts));
                b.keys.push(Ts(key));
                expected.push((key, ts, id));
            }
            through[w] = base + next(30) as i64;
            b.through = Ts(through[w]);
            r.add(&mut b);
            if w == 0 {
                // Read where they wait, then taken: the same order.
                while let Some((k, _, i)) = r.pop_ready_at() {
                    assert!(k.0 < *through.iter().min().unwrap());
                    let o = r.get(i).unwrap();
                    got.push((k.0, o.ts().0, flow_id(o)));
                    assert!(r.take(i).is_some());
                    assert!(r.get(i).is_none() && r.take(i).is_none(), "taken once");
                }
            }
            while let Some((k, _, o)) = r.pop_ready() {
                assert!(k.0 < *through.iter().min().unwrap());
                got.push((k.0, o.ts().0, flow_id(&o)));
            }
        }
        while let Some((k, _, o)) = r.pop_any() {
            got.push((k.0, o.ts().0, flow_id(&o)));
        }
        assert_eq!(r.forced, 0);
        assert!(r.is_empty());
        expected.sort();
        assert_eq!(got, expected);
    }

    fn flow_id(o: &Observation) -> u64 {
        match o {
            Observation::FlowStart { flow, .. } => flow.flow_id,
            _ => unreachable!(),
        }
    }
}
