//! TCP stream reassembly: one [`Stream`] per direction of a connection turns the segments seen
//! on the wire, in capture order, into that direction's byte stream, in order, with the bytes
//! the capture lost reported as gaps.
//!
//! # Contract
//!
//! Inputs: every TCP segment of one direction ([`Stream::segment`]: sequence number, SYN, FIN,
//! RST, payload), the acknowledgement numbers of the other direction ([`Stream::peer_ack`]) and
//! the end of the flow ([`Stream::flush`]).
//!
//! Output: a sequence of [`Chunk`]s through a callback. Concatenated, `Data` and `Gap(n)` (`n`
//! unknown bytes) describe the stream from its first byte onwards, each byte exactly once, in
//! sequence order. In-order segments are passed through without a copy; only segments that
//! arrive ahead of a hole are copied, into a bounded buffer.
//!
//! Overlaps: of two copies of the same sequence range, the **first one seen wins**. Overlaps
//! with bytes still buffered are compared and counted ([`Counter::ReasmOverlaps`],
//! [`Counter::ReasmOverlapsDifferent`]); bytes already delivered are not kept, so a
//! retransmission that differs from them cannot be detected and is dropped silently (counted as
//! a retransmission).
//!
//! It never:
//! - papers over a hole: lost bytes always come out as a `Gap`, never as an empty `Gap(0)`;
//! - holds more than `per_flow_cap` buffered bytes in a stream, more than the worker's
//!   [`GlobalBudget::cap`] across streams, or more than [`MAX_HELD_SEGMENTS`] segments. When a
//!   cap would be exceeded it gives up waiting for the oldest hole (reports it as a gap and
//!   delivers what follows) until the new bytes fit, or delivers the new segment itself;
//! - allocates before a segment arrives out of order, or sizes an allocation from a wire value
//!   (only from a payload already in memory, and only after the caps have admitted it);
//! - panics, whatever the sequence numbers: all sequence arithmetic wraps modulo 2^32 and
//!   compares through a signed 32-bit distance, as in RFC 793 / RFC 1982.
//!
//! Limits and their reasons: [`MAX_HELD_SEGMENTS`], [`MAX_ACK_AHEAD`], [`MAX_SEGMENT_LEN`],
//! [`HELD_OVERHEAD`]. Known blind spots: a stream that loses more than 2 GiB at once (data then
//! looks older than what was delivered and is dropped as retransmissions); a midstream pickup
//! whose first captured segment is not the earliest one (earlier bytes are dropped as
//! retransmissions).
//!
//! # Counters
//!
//! Per call of [`Stream::segment`] with payload: [`Counter::ReasmSegments`]; and
//! [`Counter::ReasmOutOfOrder`] if new bytes were held, [`Counter::ReasmRetransmissions`] if it
//! brought no new byte (all delivered or held already), [`Counter::ReasmOverlaps`] and
//! [`Counter::ReasmOverlapsDifferent`] as above, one [`Counter::ReasmFlowCapHits`] or
//! [`Counter::ReasmGlobalCapHits`] if a cap refused it. Each `Gap(n)` adds one to
//! [`Counter::ReasmGaps`] and `n` to [`Counter::ReasmGapBytes`]. A stream started without a
//! SYN adds one to [`Counter::ReasmMidstreamPickups`].
//!
//! # Use from the flow module
//!
//! For each TCP packet from side A: `streams[A].segment(..)` with every segment, pure ACKs
//! included; then, if the ACK flag is set (the field is meaningless otherwise),
//! `streams[B].peer_ack(ack, ..)`. The two calls touch different streams, so their order does
//! not matter. A packet captured out of order *across* directions does: an ACK seen before the
//! data it acknowledges turns that data into a gap (and the data, arriving next, into a
//! retransmission). A new connection on the same 5-tuple (a SYN after FIN/RST) needs new
//! `Stream`s; RST is only recorded, ending the flow is the flow module's decision.
//!
//! # Memory accounting
//!
//! [`Stream::buffered_bytes`] is what the caps are checked against and what the stream has
//! charged to the [`GlobalBudget`]: the payload bytes held plus [`HELD_OVERHEAD`] per held
//! segment, so that a peer sending one-byte segments cannot hold forty times the budget in
//! bookkeeping. `budget.used` is always the sum of `buffered_bytes()` over the streams sharing
//! it, provided that each stream is [`flush`](Stream::flush)ed or [`stop`](Stream::stop)ped
//! before it is dropped (a stream cannot reach its budget from `Drop`). The worker's
//! `WorkerStats::reasm_bytes` gauge is `budget.used`, to be copied by the caller.

use std::collections::VecDeque;
use std::fmt;

use crate::stats::{Counter, WorkerStats};

/// Most segments one stream holds out of order. Bounds the per-segment bookkeeping and the cost
/// of an insert (a shift of the held list). 256 full-size segments are ~370 KB, more than a
/// typical receive window; reaching it counts as a flow cap hit.
pub const MAX_HELD_SEGMENTS: usize = 256;

/// Bytes charged for each held segment besides its payload: its entry in the held list and the
/// allocator's header of its buffer.
pub const HELD_OVERHEAD: usize = std::mem::size_of::<Held>() + 16;

/// Largest distance an acknowledgement may lie ahead of the delivered bytes to be believed: the
/// largest TCP window (65535 << 14, RFC 7323) is just under 2^30. Further ahead is garbage.
pub const MAX_ACK_AHEAD: u32 = 1 << 30;

/// Payload bytes of one segment considered; the rest is ignored (and later reported as a gap if
/// the stream goes on). No IP packet but an IPv6 jumbogram carries more than 64 KiB; the bound
/// keeps every offset far below 2^31.
pub const MAX_SEGMENT_LEN: usize = 1 << 24;

/// A piece of one direction's byte stream, in order.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// The next bytes of the stream.
    Data(&'a [u8]),
    /// The next `n` bytes of the stream were not captured (never 0).
    Gap(u64),
}

/// Shows lengths only: payloads may carry patient data and must not reach a log.
impl fmt::Debug for Chunk<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Chunk::Data(d) => write!(f, "Data({} bytes)", d.len()),
            Chunk::Gap(n) => write!(f, "Gap({n})"),
        }
    }
}

/// Per-worker budget of buffered (out-of-order) bytes across all flows.
#[derive(Debug, Clone)]
pub struct GlobalBudget {
    /// Bytes charged now: the sum of [`Stream::buffered_bytes`] of the worker's streams.
    pub used: usize,
    /// Most bytes that may be charged.
    pub cap: usize,
}

impl GlobalBudget {
    pub fn new(cap: usize) -> Self {
        GlobalBudget { used: 0, cap }
    }

    fn admits(&self, n: usize) -> bool {
        self.used.checked_add(n).is_some_and(|u| u <= self.cap)
    }
}

/// Bytes held ahead of a hole, starting at sequence number `seq`.
struct Held {
    seq: u32,
    data: Box<[u8]>,
}

impl Held {
    /// Start and end as offsets from `next`. Held bytes always lie ahead of `next` and within
    /// 2^31 + [`MAX_SEGMENT_LEN`] of it, so the unsigned distance is unambiguous.
    #[inline]
    fn span(&self, next: u32) -> (i64, i64) {
        let s = i64::from(self.seq.wrapping_sub(next));
        (s, s + self.data.len() as i64)
    }

    fn charge(&self) -> usize {
        self.data.len() + HELD_OVERHEAD
    }
}

/// The out-of-order buffer: sorted by sequence number, non-overlapping, every entry strictly
/// ahead of `Stream::next` (there is a hole before the first one).
struct Ooo {
    segs: VecDeque<Held>,
    /// Sum of `charge()` of `segs`.
    charged: usize,
}

const STARTED: u8 = 1;
const FIN: u8 = 2;
const RST: u8 = 4;
const STOPPED: u8 = 8;

/// One direction of a TCP connection.
pub struct Stream {
    /// Sequence number of the next byte to deliver (valid once `STARTED`).
    next: u32,
    /// Sequence number the FIN occupies (valid once `FIN`); `next` never passes it.
    fin_seq: u32,
    flags: u8,
    /// Allocated on the first out-of-order segment, freed when it empties.
    ooo: Option<Box<Ooo>>,
}

/// Shows positions and sizes only, never buffered bytes.
impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("next_seq", &self.next_seq())
            .field("fin_seen", &self.fin_seen())
            .field("rst_seen", &self.rst_seen())
            .field("stopped", &(self.flags & STOPPED != 0))
            .field(
                "held_segments",
                &self.ooo.as_ref().map_or(0, |o| o.segs.len()),
            )
            .field("buffered_bytes", &self.buffered_bytes())
            .finish()
    }
}

impl Default for Stream {
    fn default() -> Self {
        Stream::new()
    }
}

/// Signed distance from `b` to `a` in sequence space, in [-2^31, 2^31).
#[inline]
fn rel(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

/// Offsets handled here are below 2^32 + [`MAX_SEGMENT_LEN`]; as sequence deltas they wrap.
#[inline]
fn delta(n: i64) -> u32 {
    n as u32
}

#[inline]
fn gap(n: u64, stats: &mut WorkerStats, out: &mut dyn FnMut(Chunk<'_>)) {
    if n > 0 {
        stats.inc(Counter::ReasmGaps);
        stats.add(Counter::ReasmGapBytes, n);
        out(Chunk::Gap(n));
    }
}

/// Which cap refused a segment.
enum CapHit {
    Flow,
    Global,
}

impl Stream {
    pub const fn new() -> Stream {
        Stream {
            next: 0,
            fin_seq: 0,
            flags: 0,
            ooo: None,
        }
    }

    /// Every TCP segment of this direction, in capture order, including those without payload.
    /// `per_flow_cap` = max bytes this stream may hold buffered. Delivers in-order bytes through
    /// `out` (zero-copy for in-order segments: the payload slice is passed straight through).
    ///
    /// The stream starts at the first SYN (data at `seq + 1`; a SYN may carry data) or, without
    /// a SYN, at the first segment with payload or FIN (a midstream pickup, counted). A later
    /// SYN is taken as a retransmission of the first one: a new connection on the same 5-tuple
    /// needs a new `Stream`.
    #[allow(clippy::too_many_arguments)]
    pub fn segment(
        &mut self,
        seq: u32,
        syn: bool,
        fin: bool,
        rst: bool,
        payload: &[u8],
        per_flow_cap: usize,
        budget: &mut GlobalBudget,
        stats: &mut WorkerStats,
        out: &mut dyn FnMut(Chunk<'_>),
    ) {
        if Stream::segment_is_noop(syn, fin, rst, payload) {
            return;
        }
        self.segment_any(
            seq,
            syn,
            fin,
            rst,
            payload,
            per_flow_cap,
            budget,
            stats,
            out,
        );
    }

    /// [`Stream::segment`] without the shortcut (the property tests hold the two equal).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn segment_any(
        &mut self,
        seq: u32,
        syn: bool,
        fin: bool,
        rst: bool,
        payload: &[u8],
        per_flow_cap: usize,
        budget: &mut GlobalBudget,
        stats: &mut WorkerStats,
        out: &mut dyn FnMut(Chunk<'_>),
    ) {
        if rst {
            self.flags |= RST;
        }
        let seq = if syn { seq.wrapping_add(1) } else { seq };
        let payload = payload.get(..MAX_SEGMENT_LEN).unwrap_or(payload);
        if self.flags & STARTED == 0 {
            if !syn && !fin && payload.is_empty() {
                return;
            }
            self.next = seq;
            self.flags |= STARTED;
            if !syn {
                stats.inc(Counter::ReasmMidstreamPickups);
            }
        }
        if fin {
            self.note_fin(seq.wrapping_add(payload.len() as u32), budget);
        }
        if payload.is_empty() {
            return;
        }
        stats.inc(Counter::ReasmSegments);
        if self.flags & STOPPED != 0 {
            self.track(seq.wrapping_add(payload.len() as u32));
            return;
        }
        self.data(seq, payload, per_flow_cap, budget, stats, out);
    }

    /// Whether [`Stream::segment`] with these flags and payload changes nothing and delivers
    /// nothing, on any stream: a bare ACK. Inline, so that the flow table skips building the
    /// delivery callback and the call for the packets (about half) that are bare ACKs.
    #[inline]
    pub fn segment_is_noop(syn: bool, fin: bool, rst: bool, payload: &[u8]) -> bool {
        !syn && !fin && !rst && payload.is_empty()
    }

    /// Whether [`Stream::peer_ack`] of `ack` changes nothing and delivers nothing: the stream
    /// has not started, `ack` is not believably ahead of what was delivered, or (not stopped)
    /// nothing is held out of order. Inline, for the same reason as
    /// [`Stream::segment_is_noop`]: most acks are of bytes already delivered.
    #[inline]
    pub fn ack_is_noop(&self, ack: u32) -> bool {
        if self.flags & STARTED == 0 {
            return true;
        }
        let ahead = rel(ack, self.next);
        if ahead <= 0 || ahead > i64::from(MAX_ACK_AHEAD) {
            return true;
        }
        self.flags & STOPPED == 0 && self.first_held().is_none()
    }

    /// The other direction acknowledged up to `ack` (its ACK field). If that is beyond what this
    /// stream has delivered and out-of-order data is held before `ack`, the hole in front of it
    /// was lost by the capture (the peer received it): it is reported as a gap and the held data
    /// is delivered, in order. With nothing held, nothing happens yet: on a SPAN port the ACK
    /// is often seen before the data it acknowledges. An `ack` behind the delivered bytes, more than [`MAX_ACK_AHEAD`]
    /// ahead, or on a stream not started yet is ignored; an ack of the FIN is an ack of the
    /// last byte before it.
    pub fn peer_ack(
        &mut self,
        ack: u32,
        budget: &mut GlobalBudget,
        stats: &mut WorkerStats,
        out: &mut dyn FnMut(Chunk<'_>),
    ) {
        if self.ack_is_noop(ack) {
            return;
        }
        self.peer_ack_any(ack, budget, stats, out);
    }

    /// [`Stream::peer_ack`] without the shortcut (the property tests hold the two equal).
    #[inline]
    fn peer_ack_any(
        &mut self,
        ack: u32,
        budget: &mut GlobalBudget,
        stats: &mut WorkerStats,
        out: &mut dyn FnMut(Chunk<'_>),
    ) {
        if self.flags & STARTED == 0 {
            return;
        }
        let ahead = rel(ack, self.next);
        if ahead <= 0 || ahead > i64::from(MAX_ACK_AHEAD) {
            return;
        }
        let ack = if self.flags & FIN != 0 && rel(ack, self.fin_seq) > 0 {
            self.fin_seq
        } else {
            ack
        };
        if self.flags & STOPPED != 0 {
            self.track(ack);
            return;
        }
        loop {
            let t = rel(ack, self.next);
            if t <= 0 {
                break;
            }
            match self.first_held() {
                Some(first) if first < t => {
                    gap(first as u64, stats, out);
                    self.next = self.next.wrapping_add(delta(first));
                    self.drain(budget, out);
                }
                // Nothing held past the hole: the acknowledged bytes may still arrive (a SPAN
                // port often shows an ACK before the data it acknowledges), so wait. If they
                // never come, later segments are held and the next ACK past them reports the gap.
                _ => break,
            }
        }
    }

    /// The flow is ending: deliver everything still buffered, holes as gaps (including the hole
    /// before a FIN seen ahead of missing bytes), release the budget.
    pub fn flush(
        &mut self,
        budget: &mut GlobalBudget,
        stats: &mut WorkerStats,
        out: &mut dyn FnMut(Chunk<'_>),
    ) {
        if self.flags & STOPPED != 0 {
            self.release(budget);
            return;
        }
        while let Some(first) = self.first_held() {
            gap(first as u64, stats, out);
            self.next = self.next.wrapping_add(delta(first));
            self.drain(budget, out);
        }
        if self.flags & (STARTED | FIN) == STARTED | FIN {
            gap(u64::from(self.fin_seq.wrapping_sub(self.next)), stats, out);
            self.next = self.fin_seq;
        }
    }

    /// Stop reassembling (the application layer needs no more bytes): free the buffer and
    /// release its budget; further payload is ignored, but the sequence numbers, FIN and RST
    /// are still tracked.
    pub fn stop(&mut self, budget: &mut GlobalBudget) {
        self.release(budget);
        self.flags |= STOPPED;
    }

    /// Bytes charged to the budget: held payload plus [`HELD_OVERHEAD`] per held segment.
    pub fn buffered_bytes(&self) -> usize {
        self.ooo.as_ref().map_or(0, |o| o.charged)
    }

    pub fn fin_seen(&self) -> bool {
        self.flags & FIN != 0
    }

    pub fn rst_seen(&self) -> bool {
        self.flags & RST != 0
    }

    /// Next expected sequence number, if the stream has started: what the peer would
    /// acknowledge having received everything delivered so far (the SYN and, once every byte
    /// before it is delivered, the FIN each count for one).
    pub fn next_seq(&self) -> Option<u32> {
        if self.flags & STARTED == 0 {
            None
        } else if self.flags & FIN != 0 && self.next == self.fin_seq {
            Some(self.fin_seq.wrapping_add(1))
        } else {
            Some(self.next)
        }
    }

    /// Payload of a started, not stopped stream, starting at `seq`, at most
    /// [`MAX_SEGMENT_LEN`] long.
    #[inline]
    fn data(
        &mut self,
        seq: u32,
        payload: &[u8],
        per_flow_cap: usize,
        budget: &mut GlobalBudget,
        stats: &mut WorkerStats,
        out: &mut dyn FnMut(Chunk<'_>),
    ) {
        let len = payload.len() as i64;
        let mut cap_counted = false;
        loop {
            // Offsets from `next`: the segment covers [off, off + len).
            let off = rel(seq, self.next);
            let limit = if self.flags & FIN != 0 {
                i64::from(self.fin_seq.wrapping_sub(self.next))
            } else {
                i64::MAX
            };
            if off >= limit {
                return; // at or after the FIN
            }
            let end = (off + len).min(limit);
            if end <= 0 {
                if off + len <= 0 {
                    stats.inc(Counter::ReasmRetransmissions);
                }
                return;
            }
            if off <= 0 {
                // In order, possibly with an already delivered head.
                let Some(new) = payload.get((-off) as usize..(end - off) as usize) else {
                    return;
                };
                if self.ooo.is_none() {
                    self.next = self.next.wrapping_add(new.len() as u32);
                    out(Chunk::Data(new));
                } else {
                    self.deliver_merged(new, budget, stats, out);
                }
                return;
            }
            // Ahead of a hole: hold it if the caps allow.
            let Some(new) = payload.get(..(end - off) as usize) else {
                return;
            };
            match self.admit(off, end, per_flow_cap, budget) {
                Ok(()) => {
                    self.hold(off, new, budget, stats);
                    return;
                }
                Err(hit) => {
                    if !cap_counted {
                        cap_counted = true;
                        stats.inc(match hit {
                            CapHit::Flow => Counter::ReasmFlowCapHits,
                            CapHit::Global => Counter::ReasmGlobalCapHits,
                        });
                    }
                    // Give up waiting for the oldest hole: the one before the first held
                    // segment or before this one, whichever comes first.
                    let skip = self.first_held().map_or(off, |first| first.min(off));
                    gap(skip as u64, stats, out);
                    self.next = self.next.wrapping_add(delta(skip));
                    self.drain(budget, out);
                }
            }
        }
    }

    /// Offset from `next` of the first held segment.
    #[inline]
    fn first_held(&self) -> Option<i64> {
        let h = self.ooo.as_ref()?.segs.front()?;
        Some(h.span(self.next).0)
    }

    /// Whether holding the bytes of [`off`, `end`) not held yet fits the caps.
    fn admit(
        &self,
        off: i64,
        end: i64,
        per_flow_cap: usize,
        budget: &GlobalBudget,
    ) -> Result<(), CapHit> {
        let (held, charged) = self
            .ooo
            .as_ref()
            .map_or((0, 0), |o| (o.segs.len(), o.charged));
        let (bytes, pieces) = self.missing(off, end);
        let need = bytes.saturating_add(pieces.saturating_mul(HELD_OVERHEAD));
        if held.saturating_add(pieces) > MAX_HELD_SEGMENTS
            || charged.saturating_add(need) > per_flow_cap
        {
            Err(CapHit::Flow)
        } else if !budget.admits(need) {
            Err(CapHit::Global)
        } else {
            Ok(())
        }
    }

    /// Bytes and pieces of [`s`, `e`) not covered by held segments.
    fn missing(&self, s: i64, e: i64) -> (usize, usize) {
        let Some(o) = &self.ooo else {
            return ((e - s) as usize, 1);
        };
        let next = self.next;
        let (mut bytes, mut pieces, mut pos) = (0usize, 0usize, s);
        let i = o.segs.partition_point(|h| h.span(next).1 <= s);
        for h in o.segs.range(i..) {
            let (hs, he) = h.span(next);
            if hs >= e {
                break;
            }
            if pos < hs {
                bytes += (hs - pos) as usize;
                pieces += 1;
            }
            pos = pos.max(he);
            if pos >= e {
                break;
            }
        }
        if pos < e {
            bytes += (e - pos) as usize;
            pieces += 1;
        }
        (bytes, pieces)
    }

    /// Hold `new`, which starts at offset `s` > 0, keeping held bytes where they overlap.
    /// The caps have been checked by [`Self::admit`].
    fn hold(&mut self, s: i64, new: &[u8], budget: &mut GlobalBudget, stats: &mut WorkerStats) {
        let next = self.next;
        let o = self.ooo.get_or_insert_with(|| {
            Box::new(Ooo {
                segs: VecDeque::new(),
                charged: 0,
            })
        });
        let e = s + new.len() as i64;
        let mut i = o.segs.partition_point(|h| h.span(next).1 <= s);
        let (mut pos, mut added, mut overlap, mut differ) = (s, false, false, false);
        while pos < e {
            let (hs, he) = o.segs.get(i).map_or((i64::MAX, i64::MAX), |h| h.span(next));
            if pos < hs {
                let pe = hs.min(e);
                let Some(piece) = new.get((pos - s) as usize..(pe - s) as usize) else {
                    break;
                };
                let h = Held {
                    seq: next.wrapping_add(delta(pos)),
                    data: piece.into(),
                };
                o.charged += h.charge();
                budget.used += h.charge();
                o.segs.insert(i, h);
                added = true;
                i += 1;
                pos = pe;
                continue;
            }
            let oe = he.min(e);
            if oe > pos {
                overlap = true;
                let theirs = o
                    .segs
                    .get(i)
                    .and_then(|h| h.data.get((pos - hs) as usize..(oe - hs) as usize));
                if theirs != new.get((pos - s) as usize..(oe - s) as usize) {
                    differ = true;
                }
                pos = oe;
            }
            i += 1;
        }
        if added {
            stats.inc(Counter::ReasmOutOfOrder);
        } else {
            stats.inc(Counter::ReasmRetransmissions);
        }
        if overlap {
            stats.inc(Counter::ReasmOverlaps);
        }
        if differ {
            stats.inc(Counter::ReasmOverlapsDifferent);
        }
        if o.segs.is_empty() {
            self.ooo = None;
        }
    }

    /// Deliver `new`, which starts at `next`, around the held segments it overlaps (their
    /// bytes, the first copy, win), then what follows contiguously.
    fn deliver_merged(
        &mut self,
        new: &[u8],
        budget: &mut GlobalBudget,
        stats: &mut WorkerStats,
        out: &mut dyn FnMut(Chunk<'_>),
    ) {
        let (mut pos, mut overlap, mut differ) = (0usize, false, false);
        while pos < new.len() {
            let rest = new.get(pos..).unwrap_or_default();
            let first = self.first_held().map_or(usize::MAX, |f| f.max(0) as usize);
            if first >= rest.len() {
                self.next = self.next.wrapping_add(rest.len() as u32);
                out(Chunk::Data(rest));
                break;
            }
            if let Some(head) = rest.get(..first).filter(|h| !h.is_empty()) {
                self.next = self.next.wrapping_add(head.len() as u32);
                out(Chunk::Data(head));
            }
            pos += first;
            let Some(h) = self.pop_front(budget) else {
                break;
            };
            let ours = new.get(pos..).unwrap_or_default();
            let n = ours.len().min(h.data.len());
            overlap = true;
            if ours.get(..n) != h.data.get(..n) {
                differ = true;
            }
            self.next = self.next.wrapping_add(h.data.len() as u32);
            out(Chunk::Data(&h.data));
            pos = pos.saturating_add(h.data.len());
        }
        if overlap {
            stats.inc(Counter::ReasmOverlaps);
        }
        if differ {
            stats.inc(Counter::ReasmOverlapsDifferent);
        }
        self.drain(budget, out);
    }

    /// Deliver held segments that start at (or, defensively, before) `next`.
    fn drain(&mut self, budget: &mut GlobalBudget, out: &mut dyn FnMut(Chunk<'_>)) {
        while let Some(h) = self.ooo.as_ref().and_then(|o| o.segs.front()) {
            let r = rel(h.seq, self.next);
            if r > 0 {
                return;
            }
            let Some(h) = self.pop_front(budget) else {
                return;
            };
            if let Some(tail) = h.data.get((-r) as usize..).filter(|t| !t.is_empty()) {
                self.next = self.next.wrapping_add(tail.len() as u32);
                out(Chunk::Data(tail));
            }
        }
    }

    fn pop_front(&mut self, budget: &mut GlobalBudget) -> Option<Held> {
        let o = self.ooo.as_mut()?;
        let h = o.segs.pop_front()?;
        o.charged -= h.charge();
        budget.used = budget.used.saturating_sub(h.charge());
        if o.segs.is_empty() {
            self.ooo = None;
        }
        Some(h)
    }

    /// Record a FIN occupying `fin_seq`; the first one wins. One behind the delivered bytes is
    /// bogus and ignored. Held bytes at or after it are dropped.
    fn note_fin(&mut self, fin_seq: u32, budget: &mut GlobalBudget) {
        if self.flags & FIN != 0 || rel(fin_seq, self.next) < 0 {
            return;
        }
        self.fin_seq = fin_seq;
        self.flags |= FIN;
        let Some(o) = self.ooo.as_mut() else {
            return;
        };
        let limit = i64::from(fin_seq.wrapping_sub(self.next));
        while let Some(h) = o.segs.back_mut() {
            let (hs, he) = h.span(self.next);
            if he <= limit {
                break;
            }
            let before = h.charge();
            if hs >= limit {
                o.segs.pop_back();
                o.charged -= before;
                budget.used = budget.used.saturating_sub(before);
            } else {
                h.data = h
                    .data
                    .get(..(limit - hs) as usize)
                    .unwrap_or_default()
                    .into();
                let freed = before - h.charge();
                o.charged -= freed;
                budget.used = budget.used.saturating_sub(freed);
            }
        }
        if o.segs.is_empty() {
            self.ooo = None;
        }
    }

    /// While stopped: move `next` forward to `to` if it is believably ahead, not past the FIN.
    fn track(&mut self, to: u32) {
        let ahead = rel(to, self.next);
        if ahead > 0 && ahead <= i64::from(MAX_ACK_AHEAD) {
            self.next = if self.flags & FIN != 0 && rel(to, self.fin_seq) > 0 {
                self.fin_seq
            } else {
                to
            };
        }
    }

    fn release(&mut self, budget: &mut GlobalBudget) {
        if let Some(o) = self.ooo.take() {
            budget.used = budget.used.saturating_sub(o.charged);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BIG: usize = 1 << 30;

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Owned {
        Data(Vec<u8>),
        Gap(u64),
    }

    /// One stream with its own budget, recording what it delivers.
    struct H {
        s: Stream,
        b: GlobalBudget,
        st: WorkerStats,
        cap: usize,
        out: Vec<Owned>,
    }

    impl H {
        fn new(cap: usize, global: usize) -> H {
            H {
                s: Stream::new(),
                b: GlobalBudget::new(global),
                st: WorkerStats::default(),
                cap,
                out: Vec::new(),
            }
        }
        fn seg_flags(&mut self, seq: u32, syn: bool, fin: bool, rst: bool, p: &[u8]) {
            let out = &mut self.out;
            self.s.segment(
                seq,
                syn,
                fin,
                rst,
                p,
                self.cap,
                &mut self.b,
                &mut self.st,
                &mut |c| push(out, c),
            );
            self.check();
        }
        fn seg(&mut self, seq: u32, p: &[u8]) {
            self.seg_flags(seq, false, false, false, p);
        }
        fn syn(&mut self, seq: u32, p: &[u8]) {
            self.seg_flags(seq, true, false, false, p);
        }
        fn fin(&mut self, seq: u32, p: &[u8]) {
            self.seg_flags(seq, false, true, false, p);
        }
        fn ack(&mut self, a: u32) {
            let out = &mut self.out;
            self.s
                .peer_ack(a, &mut self.b, &mut self.st, &mut |c| push(out, c));
            self.check();
        }
        fn flush(&mut self) {
            let out = &mut self.out;
            self.s
                .flush(&mut self.b, &mut self.st, &mut |c| push(out, c));
            self.check();
            assert_eq!(self.b.used, 0);
            assert!(self.s.ooo.is_none());
        }
        fn check(&self) {
            assert_eq!(self.b.used, self.s.buffered_bytes());
            assert!(self.s.buffered_bytes() <= self.cap);
            assert!(self.b.used <= self.b.cap);
            assert!(self.s.ooo.as_ref().map_or(0, |o| o.segs.len()) <= MAX_HELD_SEGMENTS);
        }
        /// Delivered chunks, text as text and gaps as `[n]`, joined by `|`.
        fn text(&self) -> String {
            let v: Vec<String> = self
                .out
                .iter()
                .map(|c| match c {
                    Owned::Data(d) => String::from_utf8_lossy(d).into_owned(),
                    Owned::Gap(n) => format!("[{n}]"),
                })
                .collect();
            v.join("|")
        }
        fn n(&self, c: Counter) -> u64 {
            self.st.get(c)
        }
    }

    fn push(out: &mut Vec<Owned>, c: Chunk<'_>) {
        match c {
            Chunk::Data(d) => {
                assert!(!d.is_empty(), "empty Data chunk");
                out.push(Owned::Data(d.to_vec()));
            }
            Chunk::Gap(n) => {
                assert!(n > 0, "Gap(0)");
                out.push(Owned::Gap(n));
            }
        }
    }

    #[test]
    fn stream_is_small_and_does_not_allocate_in_order() {
        assert!(
            std::mem::size_of::<Stream>() <= 64,
            "{}",
            std::mem::size_of::<Stream>()
        );
        let mut h = H::new(BIG, BIG);
        h.syn(100, b"");
        h.seg(101, b"abc");
        h.seg(104, b"def");
        assert!(h.s.ooo.is_none());
        assert_eq!(h.text(), "abc|def");
        assert_eq!(h.s.next_seq(), Some(107));
        assert_eq!(h.n(Counter::ReasmSegments), 2);
        assert_eq!(h.n(Counter::ReasmMidstreamPickups), 0);
    }

    #[test]
    fn in_order_passes_the_payload_slice_through() {
        let mut s = Stream::new();
        let (mut b, mut st) = (GlobalBudget::new(BIG), WorkerStats::default());
        let payload = b"hello".to_vec();
        let mut same = false;
        s.segment(
            7,
            false,
            false,
            false,
            &payload,
            BIG,
            &mut b,
            &mut st,
            &mut |c| {
                if let Chunk::Data(d) = c {
                    same = std::ptr::eq(d.as_ptr(), payload.as_ptr()) && d.len() == payload.len();
                }
            },
        );
        assert!(same);
    }

    #[test]
    fn syn_with_data() {
        let mut h = H::new(BIG, BIG);
        h.syn(1000, b"GET");
        h.seg(1004, b" /");
        assert_eq!(h.text(), "GET| /");
        // the SYN retransmitted with its data: nothing new
        h.syn(1000, b"GET");
        assert_eq!(h.text(), "GET| /");
        assert_eq!(h.n(Counter::ReasmRetransmissions), 1);
    }

    #[test]
    fn retransmission_and_partial_overlap_with_delivered_bytes() {
        let mut h = H::new(BIG, BIG);
        h.syn(0, b"");
        h.seg(1, b"abcd");
        h.seg(1, b"abcd");
        h.seg(3, b"cd");
        assert_eq!(h.n(Counter::ReasmRetransmissions), 2);
        h.seg(3, b"cdef");
        assert_eq!(h.text(), "abcd|ef");
        assert_eq!(h.n(Counter::ReasmRetransmissions), 2);
        assert_eq!(h.n(Counter::ReasmOverlaps), 0);
    }

    #[test]
    fn out_of_order_then_fill() {
        let mut h = H::new(BIG, BIG);
        h.syn(0, b"");
        h.seg(7, b"ghi");
        h.seg(4, b"def");
        assert_eq!(h.text(), "");
        assert_eq!(h.s.buffered_bytes(), 6 + 2 * HELD_OVERHEAD);
        assert_eq!(h.n(Counter::ReasmOutOfOrder), 2);
        h.seg(1, b"abc");
        assert_eq!(h.text(), "abc|def|ghi");
        assert_eq!(h.s.buffered_bytes(), 0);
        assert!(h.s.ooo.is_none());
        assert_eq!(h.b.used, 0);
        assert_eq!(h.s.next_seq(), Some(10));
        assert_eq!(h.n(Counter::ReasmGaps), 0);
    }

    #[test]
    fn overlap_with_held_bytes_keeps_the_first_copy() {
        let mut h = H::new(BIG, BIG);
        h.syn(0, b"");
        h.seg(5, b"EFGH");
        // same bytes again, then a longer segment over it with different bytes
        h.seg(5, b"EFGH");
        assert_eq!(
            (
                h.n(Counter::ReasmOverlaps),
                h.n(Counter::ReasmOverlapsDifferent)
            ),
            (1, 0)
        );
        assert_eq!(h.n(Counter::ReasmRetransmissions), 1);
        h.seg(4, b"dXXXXi");
        assert_eq!(
            (
                h.n(Counter::ReasmOverlaps),
                h.n(Counter::ReasmOverlapsDifferent)
            ),
            (2, 1)
        );
        // an in-order segment running over the held bytes, differently again
        h.seg(1, b"abcYYYYYYz");
        assert_eq!(h.text(), "abc|d|EFGH|i|z");
        assert_eq!(
            (
                h.n(Counter::ReasmOverlaps),
                h.n(Counter::ReasmOverlapsDifferent)
            ),
            (3, 2)
        );
        assert_eq!(h.b.used, 0);
    }

    #[test]
    fn in_order_segment_over_held_bytes_with_same_data() {
        let mut h = H::new(BIG, BIG);
        h.syn(0, b"");
        h.seg(3, b"cd");
        h.seg(7, b"gh");
        h.seg(1, b"abcdefghij");
        assert_eq!(h.text(), "ab|cd|ef|gh|ij");
        assert_eq!(
            (
                h.n(Counter::ReasmOverlaps),
                h.n(Counter::ReasmOverlapsDifferent)
            ),
            (1, 0)
        );
    }

    #[test]
    fn wraps_around_2_pow_32() {
        let mut h = H::new(BIG, BIG);
        h.syn(u32::MAX - 3, b"");
        h.seg(u32::MAX - 2, b"abc"); // MAX-2 .. MAX
        h.seg(2, b"fg"); // held across the wrap
        h.seg(0, b"de");
        assert_eq!(h.text(), "abc|de|fg");
        assert_eq!(h.s.next_seq(), Some(4));
        h.seg(u32::MAX - 1, b"bcdef");
        assert_eq!(h.n(Counter::ReasmRetransmissions), 1);
    }

    #[test]
    fn midstream_pickup() {
        let mut h = H::new(BIG, BIG);
        // pure ACKs and an RST do not start a stream
        h.seg(500, b"");
        h.seg_flags(500, false, false, true, b"");
        assert_eq!(h.s.next_seq(), None);
        assert!(h.s.rst_seen());
        h.seg(9000, b"xyz");
        h.seg(9003, b"w");
        assert_eq!(h.text(), "xyz|w");
        assert_eq!(h.n(Counter::ReasmMidstreamPickups), 1);
        // earlier bytes of a midstream stream look like retransmissions
        h.seg(8990, b"0123456789");
        assert_eq!(h.n(Counter::ReasmRetransmissions), 1);
    }

    #[test]
    fn peer_ack_before_start_is_ignored() {
        let mut h = H::new(BIG, BIG);
        h.ack(1234);
        assert_eq!(h.s.next_seq(), None);
        assert!(h.out.is_empty());
    }

    #[test]
    fn fin_ends_the_stream() {
        let mut h = H::new(BIG, BIG);
        h.syn(0, b"");
        h.fin(1, b"bye");
        assert!(h.s.fin_seen());
        assert_eq!(h.s.next_seq(), Some(5));
        h.seg(4, b"more");
        h.seg(1, b"byeX");
        assert_eq!(h.text(), "bye");
        h.flush();
        assert_eq!(h.text(), "bye");
    }

    #[test]
    fn fin_ahead_of_a_hole_drops_held_bytes_after_it_and_flush_reports_the_hole() {
        let mut h = H::new(BIG, BIG);
        h.syn(0, b"");
        h.seg(1, b"a");
        h.seg(8, b"hijk"); // 8..12, held
        h.fin(6, b"fg"); // FIN at 8: the held bytes are after it
        assert_eq!(h.s.buffered_bytes(), 2 + HELD_OVERHEAD);
        h.seg(4, b"de");
        assert_eq!(h.s.buffered_bytes(), 4 + 2 * HELD_OVERHEAD);
        h.flush();
        assert_eq!(h.text(), "a|[2]|de|fg");
        assert_eq!(h.s.next_seq(), Some(9));
        assert_eq!(
            (h.n(Counter::ReasmGaps), h.n(Counter::ReasmGapBytes)),
            (1, 2)
        );
    }

    #[test]
    fn fin_truncates_a_held_segment_straddling_it() {
        let mut h = H::new(BIG, BIG);
        h.syn(0, b"");
        h.seg(3, b"cdef"); // 3..7
        h.fin(5, b""); // FIN at 5
        assert_eq!(h.s.buffered_bytes(), 2 + HELD_OVERHEAD);
        h.seg(1, b"ab");
        assert_eq!(h.text(), "ab|cd");
        assert_eq!(h.s.next_seq(), Some(6));
    }

    #[test]
    fn rst_is_remembered() {
        let mut h = H::new(BIG, BIG);
        h.syn(0, b"");
        assert!(!h.s.rst_seen());
        h.seg_flags(1, false, false, true, b"");
        assert!(h.s.rst_seen());
    }

    #[test]
    fn flow_cap_skips_the_oldest_hole() {
        let cap = 10 + 2 * HELD_OVERHEAD;
        let mut h = H::new(cap, BIG);
        h.syn(0, b"");
        h.seg(1, b"a");
        h.seg(5, b"efghi"); // 5..10
        h.seg(12, b"lmnop"); // 12..17
        assert_eq!(h.s.buffered_bytes(), cap);
        h.seg(20, b"t"); // does not fit: give up on 2..5
        assert_eq!(h.text(), "a|[3]|efghi");
        assert_eq!(h.n(Counter::ReasmFlowCapHits), 1);
        assert_eq!(h.s.buffered_bytes(), 6 + 2 * HELD_OVERHEAD);
        h.seg(10, b"jk");
        assert_eq!(h.text(), "a|[3]|efghi|jk|lmnop");
        h.flush();
        assert_eq!(h.text(), "a|[3]|efghi|jk|lmnop|[3]|t");
        assert_eq!(
            (h.n(Counter::ReasmGaps), h.n(Counter::ReasmGapBytes)),
            (2, 6)
        );
    }

    #[test]
    fn a_segment_larger_than_the_cap_is_delivered_after_a_gap() {
        let mut h = H::new(4, BIG);
        h.syn(0, b"");
        h.seg(3, b"cdefgh");
        assert_eq!(h.text(), "[2]|cdefgh");
        assert_eq!(h.n(Counter::ReasmFlowCapHits), 1);
        assert_eq!(h.s.buffered_bytes(), 0);
    }

    #[test]
    fn cap_hit_before_held_bytes_skips_to_the_new_segment() {
        let mut h = H::new(5 + HELD_OVERHEAD, BIG);
        h.syn(0, b"");
        h.seg(10, b"jklmn"); // held, cap full
        h.seg(4, b"def"); // ahead of a hole, before the held bytes: skip to it
        assert_eq!(h.text(), "[3]|def");
        h.seg(7, b"ghi");
        assert_eq!(h.text(), "[3]|def|ghi|jklmn");
        assert_eq!(h.b.used, 0);
    }

    #[test]
    fn held_segment_count_is_capped() {
        let mut h = H::new(BIG, BIG);
        h.syn(0, b"");
        for i in 0..=MAX_HELD_SEGMENTS as u32 {
            h.seg(10 + 2 * i, b"x");
        }
        assert_eq!(h.n(Counter::ReasmFlowCapHits), 1);
        assert_eq!(
            h.s.ooo.as_ref().map(|o| o.segs.len()),
            Some(MAX_HELD_SEGMENTS)
        );
        assert_eq!(h.text(), "[9]|x");
    }

    #[test]
    fn global_cap_is_shared() {
        let mut b = GlobalBudget::new(3 + 2 * HELD_OVERHEAD);
        let mut st = WorkerStats::default();
        let (mut x, mut y) = (Stream::new(), Stream::new());
        let mut out = Vec::new();
        let mut o = |c: Chunk<'_>| push(&mut out, c);
        x.segment(0, true, false, false, b"", BIG, &mut b, &mut st, &mut o);
        y.segment(0, true, false, false, b"", BIG, &mut b, &mut st, &mut o);
        x.segment(5, false, false, false, b"ee", BIG, &mut b, &mut st, &mut o);
        y.segment(5, false, false, false, b"e", BIG, &mut b, &mut st, &mut o);
        assert_eq!(b.used, b.cap);
        assert_eq!(b.used, x.buffered_bytes() + y.buffered_bytes());
        // y may not grow: it gives up on its hole instead
        y.segment(8, false, false, false, b"h", BIG, &mut b, &mut st, &mut o);
        assert_eq!(st.get(Counter::ReasmGlobalCapHits), 1);
        assert_eq!(b.used, x.buffered_bytes() + y.buffered_bytes());
        x.stop(&mut b);
        assert_eq!(b.used, y.buffered_bytes());
        y.flush(&mut b, &mut st, &mut o);
        assert_eq!(b.used, 0);
        assert_eq!(
            out,
            vec![
                Owned::Gap(4),
                Owned::Data(b"e".to_vec()),
                Owned::Gap(2),
                Owned::Data(b"h".to_vec())
            ]
        );
    }

    #[test]
    fn peer_ack_reports_lost_bytes() {
        let mut h = H::new(BIG, BIG);
        h.syn(0, b"");
        h.seg(1, b"ab");
        h.seg(6, b"fg"); // held
        h.seg(10, b"jk"); // held
        h.ack(8); // 3..6 lost; 6..8 held; 8..10 not seen yet
        assert_eq!(h.text(), "ab|[3]|fg");
        h.ack(8);
        h.ack(2); // behind
        h.ack(9 + MAX_ACK_AHEAD); // garbage
        assert_eq!(h.text(), "ab|[3]|fg");
        h.ack(12); // 8..10 lost, then the held jk
        assert_eq!(h.text(), "ab|[3]|fg|[2]|jk");
        assert_eq!(h.b.used, 0);
        assert_eq!(h.s.next_seq(), Some(12));
    }

    #[test]
    fn peer_ack_of_the_fin() {
        let mut h = H::new(BIG, BIG);
        h.syn(0, b"");
        h.fin(5, b"ef"); // FIN at 7, held
        h.ack(8);
        assert_eq!(h.text(), "[4]|ef");
        assert_eq!(h.s.next_seq(), Some(8));
    }

    #[test]
    fn flush_with_holes() {
        let mut h = H::new(BIG, BIG);
        h.syn(0, b"");
        h.seg(3, b"c");
        h.seg(6, b"fg");
        h.seg(5, b"e");
        h.flush();
        assert_eq!(h.text(), "[2]|c|[1]|e|fg");
        h.flush();
        assert_eq!(h.text(), "[2]|c|[1]|e|fg");
    }

    #[test]
    fn stop_frees_and_keeps_tracking() {
        let mut h = H::new(BIG, BIG);
        h.syn(0, b"");
        h.seg(5, b"efg");
        assert!(h.b.used > 0);
        h.s.stop(&mut h.b);
        h.check();
        assert_eq!(h.b.used, 0);
        h.seg(1, b"abcd");
        h.seg(5, b"efg");
        assert_eq!(h.s.next_seq(), Some(8));
        h.ack(20);
        assert_eq!(h.s.next_seq(), Some(20));
        h.fin(20, b"");
        assert_eq!(h.s.next_seq(), Some(21));
        h.flush();
        assert!(h.out.is_empty());
    }

    #[test]
    fn huge_gap_is_reported() {
        let mut h = H::new(0, BIG);
        h.syn(0, b"");
        h.seg(1 << 31, b"far"); // as far ahead as can be: 2^31 - 1 after the data start
        assert_eq!(h.text(), format!("[{}]|far", (1u64 << 31) - 1));
        h.seg(5, b"x"); // now 2^31 behind: a retransmission
        assert_eq!(h.n(Counter::ReasmRetransmissions), 1);
    }

    #[test]
    fn debug_does_not_show_payload() {
        let mut h = H::new(BIG, BIG);
        h.syn(0, b"");
        h.seg(5, b"SECRET");
        let d = format!("{:?} {:?}", h.s, Chunk::Data(b"SECRET"));
        assert!(!d.contains("SECRET") && !d.contains("83, 69"), "{d}");
    }

    // ---- property tests ----

    /// A segment of the test stream: [start, end) of the data, flags.
    #[derive(Debug, Clone)]
    enum Op {
        Seg(usize, usize),
        Fin,
        Ack(usize),
    }

    /// Small deterministic generator for shuffles and choices (proptest shrinks the seed).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            if n == 0 {
                0
            } else {
                (self.next() % n as u64) as usize
            }
        }
    }

    /// Cut `len` bytes into pieces at `cuts`, add `extra` re-sends of the same bytes, drop
    /// base pieces with probability `drop_pct`%, add the FIN and `acks` peer acks, shuffle.
    /// Returns the ops and which bytes were sent.
    fn plan(
        len: usize,
        cuts: &[usize],
        extra: &[(usize, usize)],
        drop_pct: u64,
        acks: usize,
        seed: u64,
    ) -> (Vec<Op>, Vec<bool>) {
        let mut rng = Rng(seed | 1);
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (len + 1)).collect();
        points.extend([0, len]);
        points.sort_unstable();
        points.dedup();
        let mut ops = Vec::new();
        let mut sent = vec![false; len];
        for w in points.windows(2) {
            if rng.next() % 100 >= drop_pct {
                ops.push(Op::Seg(w[0], w[1]));
            }
        }
        for &(a, l) in extra {
            let a = a % (len + 1);
            let b = (a + l).min(len);
            if a < b {
                ops.push(Op::Seg(a, b));
            }
        }
        for op in &ops {
            if let Op::Seg(a, b) = op {
                sent[*a..*b].iter_mut().for_each(|x| *x = true);
            }
        }
        ops.push(Op::Fin);
        for _ in 0..acks {
            ops.push(Op::Ack(rng.below(len + 1)));
        }
        for i in (1..ops.len()).rev() {
            ops.swap(i, rng.below(i + 1));
        }
        (ops, sent)
    }

    /// Run `ops` on a stream of `data` starting at ISN `isn`, flush, return the output.
    fn run(data: &[u8], isn: u32, syn_data: usize, ops: &[Op], cap: usize, global: usize) -> H {
        let mut h = H::new(cap, global);
        let syn_data = syn_data.min(data.len());
        h.syn(isn, &data[..syn_data]);
        let at = |p: usize| isn.wrapping_add(1).wrapping_add(p as u32);
        for op in ops {
            match *op {
                Op::Seg(a, b) => h.seg(at(a), &data[a..b]),
                Op::Fin => h.fin(at(data.len()), b""),
                Op::Ack(p) => h.ack(at(p)),
            }
        }
        h.flush();
        h
    }

    /// Walk the output against the data: Data must match at its position, every delivered byte
    /// must have been sent; returns which bytes were delivered.
    fn model_check(h: &H, data: &[u8], sent: &[bool]) -> Vec<bool> {
        let mut delivered = vec![false; data.len()];
        let (mut pos, mut gaps, mut gap_bytes) = (0usize, 0u64, 0u64);
        for c in &h.out {
            match c {
                Owned::Data(d) => {
                    assert!(pos + d.len() <= data.len(), "data past the end");
                    assert_eq!(&data[pos..pos + d.len()], &d[..], "data at {pos}");
                    for (i, x) in delivered[pos..pos + d.len()].iter_mut().enumerate() {
                        assert!(sent[pos + i], "byte {} delivered but never sent", pos + i);
                        *x = true;
                    }
                    pos += d.len();
                }
                Owned::Gap(n) => {
                    gaps += 1;
                    gap_bytes += n;
                    pos += *n as usize;
                }
            }
        }
        assert_eq!(pos, data.len(), "data + gaps must cover the stream");
        assert_eq!(h.n(Counter::ReasmGaps), gaps);
        assert_eq!(h.n(Counter::ReasmGapBytes), gap_bytes);
        assert_eq!(h.n(Counter::ReasmOverlapsDifferent), 0);
        assert_eq!(h.s.next_seq(), Some(h.s.fin_seq.wrapping_add(1)));
        delivered
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Reordered, duplicated, overlapping segments across the 2^32 wrap: the exact stream,
        /// no gap, when the caps are large enough.
        #[test]
        fn reordered_segments_reassemble_exactly(
            data in proptest::collection::vec(any::<u8>(), 0..1500),
            cuts in proptest::collection::vec(any::<usize>(), 0..40),
            extra in proptest::collection::vec((any::<usize>(), 1usize..300), 0..20),
            isn_back in 0u32..2000,
            syn_data in 0usize..50,
            seed in any::<u64>(),
        ) {
            let (ops, sent) = plan(data.len(), &cuts, &extra, 0, 0, seed);
            let isn = u32::MAX - isn_back;
            let h = run(&data, isn, syn_data, &ops, BIG, BIG);
            model_check(&h, &data, &sent);
            prop_assert_eq!(h.n(Counter::ReasmGaps), 0);
            let all: Vec<u8> = h.out.iter().flat_map(|c| match c { Owned::Data(d) => d.clone(), Owned::Gap(_) => vec![] }).collect();
            prop_assert_eq!(all, data);
        }

        /// With pieces never sent and large caps, exactly the unsent bytes come out as gaps
        /// (the bitmap model of smoltcp's `test_random`).
        #[test]
        fn lost_pieces_become_exactly_the_gaps(
            data in proptest::collection::vec(any::<u8>(), 1..1500),
            cuts in proptest::collection::vec(any::<usize>(), 0..40),
            extra in proptest::collection::vec((any::<usize>(), 1usize..300), 0..10),
            drop_pct in 0u64..60,
            isn_back in 0u32..2000,
            seed in any::<u64>(),
        ) {
            let (ops, sent) = plan(data.len(), &cuts, &extra, drop_pct, 0, seed);
            let h = run(&data, u32::MAX - isn_back, 0, &ops, BIG, BIG);
            let delivered = model_check(&h, &data, &sent);
            prop_assert_eq!(delivered, sent);
        }

        /// Small caps, lost pieces and random peer acks: never over a cap, and the output is
        /// the stream with holes where gaps are reported.
        #[test]
        fn small_caps_give_the_stream_with_holes(
            data in proptest::collection::vec(any::<u8>(), 1..1500),
            cuts in proptest::collection::vec(any::<usize>(), 0..60),
            extra in proptest::collection::vec((any::<usize>(), 1usize..300), 0..10),
            drop_pct in 0u64..30,
            acks in 0usize..5,
            cap in 0usize..600,
            global in 0usize..600,
            isn in any::<u32>(),
            seed in any::<u64>(),
        ) {
            let (ops, sent) = plan(data.len(), &cuts, &extra, drop_pct, acks, seed);
            let h = run(&data, isn, 0, &ops, cap, global);
            model_check(&h, &data, &sent);
        }

        /// Two streams sharing a budget, with stops: `used` is always the sum of their
        /// buffered bytes and never above the cap.
        #[test]
        fn shared_budget_is_exact(
            ops in proptest::collection::vec((any::<bool>(), 0u8..8, 0u32..400, 1usize..60), 0..200),
            cap in 0usize..1000,
            global in 0usize..1500,
        ) {
            let mut b = GlobalBudget::new(global);
            let mut st = WorkerStats::default();
            let mut s = [Stream::new(), Stream::new()];
            let payload = [7u8; 64];
            let mut sink = |_: Chunk<'_>| {};
            for (which, kind, pos, len) in ops {
                let x = &mut s[usize::from(which)];
                match kind {
                    0 => {
                        let noop = x.ack_is_noop(pos);
                        let before = (x.next, x.fin_seq, x.flags, x.buffered_bytes());
                        let mut delivered = false;
                        x.peer_ack_any(pos, &mut b, &mut st, &mut |_| delivered = true);
                        if noop {
                            prop_assert!(!delivered);
                            prop_assert_eq!((x.next, x.fin_seq, x.flags, x.buffered_bytes()), before);
                        }
                    }
                    1 => x.stop(&mut b),
                    2 => x.flush(&mut b, &mut st, &mut sink),
                    3 => x.segment(pos, false, true, false, &payload[..len], cap, &mut b, &mut st, &mut sink),
                    4 => x.segment(pos, true, false, false, b"", cap, &mut b, &mut st, &mut sink),
                    _ => x.segment(pos, false, false, false, &payload[..len], cap, &mut b, &mut st, &mut sink),
                }
                prop_assert_eq!(b.used, s[0].buffered_bytes() + s[1].buffered_bytes());
                prop_assert!(b.used <= global);
                prop_assert!(s[0].buffered_bytes() <= cap && s[1].buffered_bytes() <= cap);
            }
        }

        /// Arbitrary segments and acks never panic and keep the accounting exact; a segment or
        /// an ack its shortcut skips would have changed nothing and delivered nothing.
        #[test]
        fn arbitrary_input_never_panics(
            ops in proptest::collection::vec((any::<u32>(), any::<u8>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..100),
            cap in 0usize..2000,
        ) {
            let mut b = GlobalBudget::new(1500);
            let mut st = WorkerStats::default();
            let mut s = Stream::new();
            let mut sink = |c: Chunk<'_>| assert!(c != Chunk::Gap(0) && c != Chunk::Data(b""));
            let state = |s: &Stream| (s.next, s.fin_seq, s.flags, s.buffered_bytes());
            for (seq, flags, p) in ops {
                let before = state(&s);
                let mut delivered = 0;
                let mut counting = |c: Chunk<'_>| {
                    delivered += 1;
                    sink(c)
                };
                let noop = if flags & 0x80 != 0 {
                    let noop = s.ack_is_noop(seq);
                    s.peer_ack_any(seq, &mut b, &mut st, &mut counting);
                    noop
                } else {
                    let (syn, fin, rst) = (flags & 1 != 0, flags & 2 != 0, flags & 4 != 0);
                    s.segment_any(seq, syn, fin, rst, &p, cap, &mut b, &mut st, &mut counting);
                    Stream::segment_is_noop(syn, fin, rst, &p)
                };
                if noop {
                    prop_assert_eq!(delivered, 0);
                    prop_assert_eq!(state(&s), before);
                }
                prop_assert_eq!(b.used, s.buffered_bytes());
            }
            s.flush(&mut b, &mut st, &mut sink);
            prop_assert_eq!(b.used, 0);
        }
    }
}
