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

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use crate::observe::{ObsBatch, Observation};
use crate::time::Ts;

/// Observations held back at most.
pub const MAX_HELD: usize = 65_536;

struct Held {
    key: Ts,
    ts: Ts,
    rank: u8,
    id: u64,
    /// Arrival order: for full ties (the same flow's observations come from one worker, in
    /// its order).
    seq: u64,
    obs: Observation,
}

impl Held {
    fn sort_key(&self) -> (Ts, Ts, u8, u64, u64) {
        (self.key, self.ts, self.rank, self.id, self.seq)
    }
}

impl PartialEq for Held {
    fn eq(&self, o: &Self) -> bool {
        self.sort_key() == o.sort_key()
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Held {
    fn cmp(&self, o: &Self) -> Ordering {
        self.sort_key().cmp(&o.sort_key())
    }
}

/// The reordering buffer.
pub struct Reorder {
    heap: BinaryHeap<Reverse<Held>>,
    /// Per worker: no later observation of it has a key below this.
    through: Vec<Ts>,
    seq: u64,
    /// Observations released before their turn because [`MAX_HELD`] were held.
    pub forced: u64,
}

impl Reorder {
    pub fn new(workers: usize) -> Reorder {
        Reorder {
            heap: BinaryHeap::new(),
            through: vec![Ts::ZERO; workers.max(1)],
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
        for (o, key) in b.items.drain(..).zip(keys.iter().copied()) {
            let (rank, id) = match &o {
                Observation::Evidence { mac, .. } => (0, mac_id(mac)),
                Observation::FlowStart { flow, .. } => (1, flow.flow_id),
                Observation::Facts { flow, .. } => (2, flow.flow_id),
                Observation::FlowEnd { flow, .. } => (3, flow.flow_id),
            };
            self.seq += 1;
            self.heap.push(Reverse(Held {
                key,
                ts: o.ts(),
                rank,
                id,
                seq: self.seq,
                obs: o,
            }));
        }
        b.keys = keys;
        b.keys.clear();
    }

    /// The next observation whose turn has come (or, when too many are held, the earliest),
    /// with its order key.
    pub fn pop_ready(&mut self) -> Option<(Ts, Observation)> {
        let w = self.through.iter().copied().min().unwrap_or(Ts::ZERO);
        let top = self.heap.peek()?;
        if top.0.key < w {
            return self.heap.pop().map(|h| (h.0.key, h.0.obs));
        }
        if self.heap.len() > MAX_HELD {
            self.forced += 1;
            return self.heap.pop().map(|h| (h.0.key, h.0.obs));
        }
        None
    }

    /// The next observation in order, whatever the workers reported (every worker is done).
    pub fn pop_any(&mut self) -> Option<(Ts, Observation)> {
        self.heap.pop().map(|h| (h.0.key, h.0.obs))
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
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
            match o.map(|(_, o)| o) {
                Some(Observation::FlowStart { flow, .. }) => v.push(flow.flow_id),
                Some(_) => unreachable!(),
                None => return v,
            }
        }
    }

    /// Two workers' batches in either arrival order give one release order, and nothing is
    /// released before every worker has got past it.
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
}
