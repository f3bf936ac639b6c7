//! Per-connection DICOM state: PDU framing per direction, DIMSE message assembly, and the
//! association state machine (PS3.8 9.2, simplified to what a passive observer can know).
//!
//! Invariants (the [`crate::protocols::AppParser`] contract, made specific):
//! - every byte handed to [`DicomState::on_data`] is consumed at once: it is parsed, kept in a
//!   capped buffer, or skipped; nothing waits in a queue, so "consumed" is always the whole
//!   input and "needed" is implicit in the per-direction stage (a PDU header, the rest of a
//!   body, a PDV header);
//! - memory per connection is bounded by [`MAX_PDU_KEPT`] + [`MAX_COMMAND_SET`] +
//!   [`MAX_DATASET_PREFIX`] per direction plus the capped event record; P-DATA is streamed:
//!   data set bytes past the prefix are skipped, never copied;
//! - a gap drops the partial PDU and DIMSE message of that direction and resynchronises on the
//!   next believable PDU header ([`pdu::believable_header`] plus a check of the bytes after it);
//!   a side that starts mid-stream (midstream pickup) does the same;
//! - one `dicom` event per association, when it ends: A-RELEASE-RP, A-ABORT, A-ASSOCIATE-RJ,
//!   or the end of the flow (`on_close`, result `incomplete` unless it was released, rejected
//!   or aborted).
//!
//! Association states (requestor = side that sent A-ASSOCIATE-RQ):
//!
//! | state       | PDU (from)           | next        |
//! |-------------|----------------------|-------------|
//! | Idle        | RQ (any)             | AwaitAc     |
//! | Idle        | AC (any), P-DATA     | Established (midstream) |
//! | AwaitAc     | AC (acceptor)        | Established |
//! | AwaitAc     | RJ (acceptor)        | Ended: rejected |
//! | Established | P-DATA (any)         | Established |
//! | Established | RELEASE-RQ (any)     | Releasing   |
//! | Releasing   | P-DATA, RELEASE-RQ   | Releasing   |
//! | Releasing   | RELEASE-RP (any)     | Ended: accepted, released |
//! | any         | A-ABORT (any)        | Ended: aborted |
//! | other pairs |                      | unchanged, `unexpected_pdu` |

use medtap_parsers::dicom::dataset::{self, DatasetScan, Stop};
use medtap_parsers::dicom::dimse::{self, CommandSet, StatusClass};
use medtap_parsers::dicom::items::MAX_CONTEXTS as PARSER_MAX_CONTEXTS;
use medtap_parsers::dicom::pdu::{self, PduHeader, PduType, PdvHeader};
use medtap_parsers::dicom::{text, Encoding};

use super::events::{ErrorKind, Errors};
use super::log::*;
use crate::observe::{FactValue, Facts};
use crate::protocols::{AppContext, AppParser, Direction};
use crate::stats::{Family, WorkerStats, DICOM_PDU_TYPES};

/// Bytes of one non-P-DATA PDU kept to be parsed (A-ASSOCIATE-RQ/AC are the only large ones).
/// See [`pdu::MAX_PDU_KEPT`] for the reasoning; over it: [`ErrorKind::PduTooLarge`], the PDU
/// is skipped, and `limits.pdu_kept` in the event carries value and limit.
pub const MAX_PDU_KEPT: usize = pdu::MAX_PDU_KEPT;
/// Presentation contexts remembered per association: context ids are odd 1..=255, so a real
/// peer never proposes more than 128. Over it: [`ErrorKind::ContextsCap`].
pub const MAX_CONTEXTS: usize = PARSER_MAX_CONTEXTS;
/// DIMSE requests awaiting a final response, per association. PS3.7 allows asynchronous
/// operations, but peers negotiate small windows (1 by default); 64 covers any real window.
/// Over it: [`ErrorKind::PendingCap`], the request is not tracked.
pub const MAX_PENDING: usize = 64;
/// Bytes of one command set assembled from fragments. A command set is ~70-300 bytes; 16 KiB
/// allows long error comments and odd elements. Over it: [`ErrorKind::Dimse`], the command is
/// dropped.
pub const MAX_COMMAND_SET: usize = 16 * 1024;
/// Bytes of a data set kept to scan for device attributes and PHI presence. An image header
/// with vendor private blocks is 2-20 KiB; identifiers are smaller. The rest of the data set
/// (pixel data) is skipped.
pub const MAX_DATASET_PREFIX: usize = 32 * 1024;
/// DIMSE messages listed in the event; `commands_total` counts them all.
pub const MAX_EVENT_COMMANDS: usize = 64;
/// Distinct data set attribute sets listed in the event.
pub const MAX_EVENT_DATASETS: usize = 8;
/// Unknown PDU / item types listed in the event.
pub const MAX_EVENT_UNKNOWN: usize = 16;

/// Where a direction is in its byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Assembling a 6-byte PDU header in `hdr`.
    Header,
    /// Keeping the body of a non-P-DATA PDU in `keep`; `left` bytes to go.
    Keep { hdr: PduHeader, left: u32 },
    /// Skipping `left` bytes of a PDU (too large, or an unknown type).
    Skip { left: u32 },
    /// Inside a P-DATA-TF body, `left` bytes to go.
    PData { left: u32 },
    /// Looking for a believable PDU header; `window` holds the last bytes seen.
    Resync,
}

/// One direction.
struct Side {
    stage: Stage,
    hdr: [u8; pdu::PDU_HEADER_LEN],
    hdr_len: usize,
    keep: Vec<u8>,
    /// PDV header being assembled, and the value bytes left of the current PDV.
    pdv_hdr: [u8; pdu::PDV_HEADER_LEN],
    pdv_hdr_len: usize,
    pdv: Option<PdvHeader>,
    pdv_left: u32,
    /// Command fragments of the message being assembled.
    cmd: Vec<u8>,
    cmd_overflow: bool,
    /// Data set prefix being kept, and whether the current data set is still being kept
    /// (false once scanned or skipped).
    data: Vec<u8>,
    data_keep: bool,
    data_started: bool,
    /// The scan of the current data set, made where its first bytes were in the input
    /// ([`DicomState::fragment_bytes`]) because more bytes could not change it; instead of
    /// `data`, which then stays empty. It takes effect when the scan of `data` would have been
    /// made: at the end of the data set, or once `kept` reaches [`MAX_DATASET_PREFIX`].
    scanned: Option<Box<DatasetScan>>,
    /// Bytes of the data set `data` would hold, while `scanned` is set.
    kept: usize,
    /// While `data` is kept: its length at which a scan is tried again (twice the length it
    /// was last tried at), to see whether the bytes kept decide it already.
    scan_at: usize,
    /// Resync window: the last bytes seen while looking for a header (at most 11).
    window: Vec<u8>,
    /// Bytes skipped in the current resync.
    skipped: u64,
    started: bool,
    bytes: u64,
}

/// Bytes needed to judge a candidate PDU header while resynchronising (header + the first
/// PDV header, or header + the 4 fixed body bytes).
const RESYNC_PEEK: usize = pdu::PDU_HEADER_LEN + pdu::PDV_HEADER_LEN;

impl Side {
    /// `data`, a data set's buffer once scanned, back as the side's buffer for the next data
    /// set, emptied, if it is small; a full prefix's buffer is released.
    fn recycle(&mut self, mut data: Vec<u8>) {
        if data.capacity() <= 4096 {
            data.clear();
            self.data = data;
        }
    }

    fn new() -> Side {
        Side {
            stage: Stage::Header,
            hdr: [0; pdu::PDU_HEADER_LEN],
            hdr_len: 0,
            keep: Vec::new(),
            pdv_hdr: [0; pdu::PDV_HEADER_LEN],
            pdv_hdr_len: 0,
            pdv: None,
            pdv_left: 0,
            cmd: Vec::new(),
            cmd_overflow: false,
            data: Vec::new(),
            data_keep: false,
            data_started: false,
            scanned: None,
            kept: 0,
            scan_at: 0,
            window: Vec::new(),
            skipped: 0,
            started: false,
            bytes: 0,
        }
    }

    /// Drops partial PDU and DIMSE state and starts looking for a PDU header.
    fn lose_sync(&mut self) {
        self.stage = Stage::Resync;
        self.hdr_len = 0;
        self.keep = Vec::new();
        self.reset_pdv();
        self.cmd = Vec::new();
        self.cmd_overflow = false;
        self.data = Vec::new();
        self.data_keep = false;
        self.data_started = false;
        self.scanned = None;
        self.kept = 0;
        self.window.clear();
        self.skipped = 0;
    }

    fn reset_pdv(&mut self) {
        self.pdv_hdr_len = 0;
        self.pdv = None;
        self.pdv_left = 0;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    AwaitAc,
    Established,
    Releasing,
    Ended,
}

/// A presentation context remembered to decode later PDVs.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    id: u8,
    encoding: Option<Encoding>,
}

/// A request waiting for its final response.
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// Index of the requestor/acceptor side that sent the request.
    from: usize,
    message_id: u16,
}

/// The per-connection DICOM state machine.
pub struct DicomState {
    /// Bytes of a non-P-DATA PDU kept (`limits.dicom_pdu_kept`, default [`MAX_PDU_KEPT`]).
    pdu_kept: usize,
    sides: [Side; 2],
    phase: Phase,
    /// Direction of the A-ASSOCIATE-RQ (or inferred on midstream pickup).
    requestor: Option<Direction>,
    rq_seen: bool,
    release_rq: bool,
    /// Negotiated max PDU length each side can receive (0 = unlimited), by direction index of
    /// the receiver.
    max_pdu_rx: [Option<u32>; 2],
    contexts: Vec<Ctx>,
    pending: Vec<Pending>,
    errors: Errors,
    /// Boxed so that the state stays under glibc's per-thread cache size (1032 bytes): one
    /// allocation of each per association, served without searching the heap.
    ev: Box<DicomEvent>,
    /// PDUs seen, by [`PduType::index`] (the event's `pdus`, named when it is emitted).
    pdus: [u64; 8],
    phi: u32,
    emitted: bool,
}

impl Default for DicomState {
    fn default() -> Self {
        DicomState::new()
    }
}

fn role_of(requestor: Option<Direction>, dir: Direction) -> &'static str {
    match requestor {
        Some(r) if r != dir => "acceptor",
        _ => "requestor",
    }
}

impl DicomState {
    pub fn new() -> DicomState {
        DicomState::with_pdu_cap(MAX_PDU_KEPT)
    }

    /// With another cap on the bytes of a non-P-DATA PDU kept (`limits.dicom_pdu_kept`).
    pub fn with_pdu_cap(pdu_kept: usize) -> DicomState {
        DicomState {
            pdu_kept,
            sides: [Side::new(), Side::new()],
            phase: Phase::Idle,
            requestor: None,
            rq_seen: false,
            release_rq: false,
            max_pdu_rx: [None, None],
            contexts: Vec::new(),
            pending: Vec::new(),
            errors: Errors::default(),
            ev: Box::default(),
            pdus: [0; 8],
            phi: 0,
            emitted: false,
        }
    }

    fn raise(&mut self, k: ErrorKind, stats: &mut WorkerStats) {
        self.errors.raise(k, stats);
    }

    /// Feeds in-order bytes of one direction.
    fn feed(&mut self, dir: Direction, mut data: &[u8], cx: &mut AppContext<'_>) {
        let i = dir.index();
        // Bytes inside a data set value past its kept prefix (most segments of a C-STORE), or
        // before it is full when the data set was scanned already (`scanned`: only counted):
        // what the loop below does with them, done at once. They end neither the PDV nor the
        // PDU (fewer bytes than the PDV has left, which is at most what the PDU has left), nor
        // fill the prefix.
        let ended = self.phase == Phase::Ended;
        let s = &mut self.sides[i];
        if let (Stage::PData { left }, Some(h)) = (s.stage, s.pdv) {
            if s.started
                && !ended
                && !h.is_command()
                && (!s.data_keep
                    || (s.scanned.is_some() && s.kept + data.len() < MAX_DATASET_PREFIX))
                && data.len() < s.pdv_left as usize
            {
                let n = data.len() as u32;
                if s.data_keep {
                    s.kept += data.len();
                }
                s.pdv_left -= n;
                s.stage = Stage::PData { left: left - n };
                s.bytes = s.bytes.saturating_add(u64::from(n));
                return;
            }
        }
        if !self.sides[i].started {
            self.sides[i].started = true;
            // A side starts on a PDU boundary if it is the first one the probe matched or if
            // the association began under our eyes; otherwise it may start mid-PDU.
            let first = !self.sides[1 - i].started;
            if !first && !self.rq_seen {
                self.sides[i].lose_sync();
            }
        }
        // `bytes` advances exactly as bytes are consumed, before anything that may end the
        // association, so the count in the event does not depend on how the stream was cut.
        while !data.is_empty() {
            if self.phase == Phase::Ended {
                return;
            }
            let before = data.len();
            let mut counted = false;
            data = match self.sides[i].stage {
                Stage::Header => self.read_header(dir, data, cx),
                Stage::Keep { hdr, left } => {
                    let s = &mut self.sides[i];
                    let n = (left as usize).min(data.len());
                    // Counted before the PDU is handled: it may end the association.
                    s.bytes = s.bytes.saturating_add(n as u64);
                    counted = true;
                    let left = left - n as u32;
                    if left == 0 && s.keep.is_empty() {
                        // The whole body in this chunk (the usual case): read where it is,
                        // without copying it.
                        s.stage = Stage::Header;
                        self.on_pdu(dir, hdr, &data[..n], cx);
                    } else if left == 0 {
                        s.keep.extend_from_slice(&data[..n]);
                        s.stage = Stage::Header;
                        let body = std::mem::take(&mut s.keep);
                        self.on_pdu(dir, hdr, &body, cx);
                        // Keep the allocation for the next kept PDU.
                        let s = &mut self.sides[i];
                        if s.keep.is_empty() {
                            s.keep = body;
                            s.keep.clear();
                        }
                    } else {
                        s.keep.extend_from_slice(&data[..n]);
                        s.stage = Stage::Keep { hdr, left };
                    }
                    &data[n..]
                }
                Stage::Skip { left } => {
                    let n = (left as usize).min(data.len());
                    let left = left - n as u32;
                    self.sides[i].stage = if left == 0 {
                        Stage::Header
                    } else {
                        Stage::Skip { left }
                    };
                    &data[n..]
                }
                Stage::PData { left } => self.pdata(dir, data, left, cx),
                Stage::Resync => self.resync(dir, data, cx),
            };
            if !counted {
                let s = &mut self.sides[i];
                s.bytes = s.bytes.saturating_add((before - data.len()) as u64);
            }
        }
    }

    fn read_header<'d>(
        &mut self,
        dir: Direction,
        data: &'d [u8],
        cx: &mut AppContext<'_>,
    ) -> &'d [u8] {
        let s = &mut self.sides[dir.index()];
        let k = (pdu::PDU_HEADER_LEN - s.hdr_len).min(data.len());
        s.hdr[s.hdr_len..s.hdr_len + k].copy_from_slice(&data[..k]);
        s.hdr_len += k;
        let rest = &data[k..];
        if s.hdr_len < pdu::PDU_HEADER_LEN {
            return rest;
        }
        s.hdr_len = 0;
        let Ok((_, h)) = pdu::parse_pdu_header(&s.hdr) else {
            return rest;
        };
        self.start_pdu(dir, h, cx);
        rest
    }

    /// A PDU header was read (in sync): count it and choose how to read its body.
    fn start_pdu(&mut self, dir: Direction, h: PduHeader, cx: &mut AppContext<'_>) {
        let i = dir.index();
        let known = h.pdu_type.is_known();
        if !known || !pdu::believable_header(&h) {
            if known || h.reserved != 0 || h.len > pdu::MAX_BELIEVABLE_PDU {
                // Not a PDU header: lost sync (or not DICOM at all).
                self.raise(ErrorKind::MalformedPdu, cx.stats);
                self.sides[i].lose_sync();
                return;
            }
            // An unknown type with a sane header: report it and skip its body.
            cx.stats.fam_inc(Family::DicomPdus, h.pdu_type.index());
            self.count_pdu(h.pdu_type);
            if self.ev.unknown_pdu_types.len() < MAX_EVENT_UNKNOWN
                && !self.ev.unknown_pdu_types.contains(&h.pdu_type.0)
            {
                self.ev.unknown_pdu_types.push(h.pdu_type.0);
            }
            self.raise(ErrorKind::UnexpectedPdu, cx.stats);
            self.sides[i].stage = if h.len == 0 {
                Stage::Header
            } else {
                Stage::Skip { left: h.len }
            };
            return;
        }
        cx.stats.fam_inc(Family::DicomPdus, h.pdu_type.index());
        self.count_pdu(h.pdu_type);
        let s = &mut self.sides[i];
        if h.pdu_type == PduType::P_DATA_TF {
            s.reset_pdv();
            s.stage = Stage::PData { left: h.len };
            self.on_pdata_start(dir, cx);
        } else if h.len as usize > self.pdu_kept {
            s.stage = Stage::Skip { left: h.len };
            self.raise(ErrorKind::PduTooLarge, cx.stats);
            self.ev.limits.pdu_kept.get_or_insert(LimitRecord {
                value: h.len as u64,
                limit: self.pdu_kept as u64,
            });
            // The association state still moves: an oversized RQ/AC is still an RQ/AC.
            self.on_pdu_unparsed(dir, h.pdu_type, cx);
        } else {
            s.keep.clear();
            s.stage = Stage::Keep {
                hdr: h,
                left: h.len,
            };
            if h.len == 0 {
                s.stage = Stage::Header;
                self.on_pdu(dir, h, &[], cx);
            }
        }
    }

    fn count_pdu(&mut self, t: PduType) {
        if let Some(n) = self.pdus.get_mut(t.index()) {
            *n += 1;
        }
    }

    /// Looks for a believable PDU header in `data` (after the bytes of `window`).
    fn resync<'d>(&mut self, dir: Direction, data: &'d [u8], cx: &mut AppContext<'_>) -> &'d [u8] {
        let i = dir.index();
        let max_rx = self.max_pdu_rx[dir.reverse().index()];
        let s = &mut self.sides[i];
        // Candidates starting inside the window (the window holds fewer than RESYNC_PEEK
        // bytes, so each needs bytes from `data` to be judged).
        let wl = s.window.len();
        let mut peek = [0u8; RESYNC_PEEK];
        for start in 0..wl {
            let from_w = wl - start;
            let need = RESYNC_PEEK - from_w;
            if data.len() < need {
                break;
            }
            peek[..from_w].copy_from_slice(&s.window[start..]);
            peek[from_w..].copy_from_slice(&data[..need]);
            if candidate(&peek, max_rx) {
                let head = s.window[start..].to_vec();
                s.skipped += start as u64;
                // The window bytes were counted when they arrived; they are counted again as
                // they are replayed.
                s.bytes = s.bytes.saturating_sub(head.len() as u64);
                self.resynced(dir, cx);
                // Replay the window bytes, then go on with `data`.
                self.feed(dir, &head, cx);
                return data;
            }
        }
        // Candidates starting inside `data`.
        let mut at = 0;
        while at + RESYNC_PEEK <= data.len() {
            // Quick filter: a known type followed by a zero reserved byte.
            if (1..=7).contains(&data[at]) && data[at + 1] == 0 {
                peek.copy_from_slice(&data[at..at + RESYNC_PEEK]);
                if candidate(&peek, max_rx) {
                    s.skipped += (wl + at) as u64;
                    self.resynced(dir, cx);
                    return &data[at..];
                }
            }
            at += 1;
        }
        // Keep the tail (fewer than RESYNC_PEEK bytes) for the next call.
        let mut w = std::mem::take(&mut s.window);
        w.extend_from_slice(data);
        let keep = (RESYNC_PEEK - 1).min(w.len());
        let drop = w.len() - keep;
        s.skipped += drop as u64;
        w.drain(..drop);
        s.window = w;
        &[]
    }

    fn resynced(&mut self, dir: Direction, cx: &mut AppContext<'_>) {
        let s = &mut self.sides[dir.index()];
        let skipped = s.skipped;
        s.window.clear();
        s.skipped = 0;
        s.stage = Stage::Header;
        s.hdr_len = 0;
        if skipped > 0 {
            self.raise(ErrorKind::Resync, cx.stats);
        }
    }

    /// Bytes inside a P-DATA-TF body.
    fn pdata<'d>(
        &mut self,
        dir: Direction,
        data: &'d [u8],
        mut left: u32,
        cx: &mut AppContext<'_>,
    ) -> &'d [u8] {
        let i = dir.index();
        let n = (left as usize).min(data.len());
        let (mut body, rest) = data.split_at(n);
        while !body.is_empty() {
            let s = &mut self.sides[i];
            if s.pdv.is_none() {
                let k = (pdu::PDV_HEADER_LEN - s.pdv_hdr_len).min(body.len());
                s.pdv_hdr[s.pdv_hdr_len..s.pdv_hdr_len + k].copy_from_slice(&body[..k]);
                s.pdv_hdr_len += k;
                body = &body[k..];
                left -= k as u32;
                if s.pdv_hdr_len < pdu::PDV_HEADER_LEN {
                    continue;
                }
                s.pdv_hdr_len = 0;
                match pdu::parse_pdv_header(&s.pdv_hdr) {
                    Ok((_, h)) if h.value_len() <= left => {
                        s.pdv = Some(h);
                        s.pdv_left = h.value_len();
                        self.fragment_start(dir, h, cx);
                        if h.value_len() == 0 {
                            self.sides[i].pdv = None;
                            self.fragment_end(dir, h, cx);
                        }
                    }
                    _ => {
                        // A PDV longer than its PDU, or shorter than its header.
                        self.raise(ErrorKind::MalformedPdu, cx.stats);
                        self.sides[i].lose_sync();
                        return rest_after(data, n - body.len());
                    }
                }
                continue;
            }
            let Some(h) = s.pdv else { break };
            let k = (s.pdv_left as usize).min(body.len());
            let (frag, b) = body.split_at(k);
            body = b;
            left -= k as u32;
            s.pdv_left -= k as u32;
            let done = s.pdv_left == 0;
            if done
                && h.is_command()
                && h.is_last()
                && s.cmd.is_empty()
                && !s.cmd_overflow
                && frag.len() <= MAX_COMMAND_SET
            {
                // The whole command set is this fragment (a command in one PDV, in one
                // chunk: the usual case): parsed where it is, as `fragment_end` would parse
                // the copy `fragment_bytes` makes of it.
                self.sides[i].pdv = None;
                match dimse::parse_command_set(frag) {
                    Ok(cs) => self.on_command(dir, h.context_id, cs, cx),
                    Err(_) => self.raise(ErrorKind::Dimse, cx.stats),
                }
                continue;
            }
            self.fragment_bytes(dir, h, frag, cx);
            if done {
                self.sides[i].pdv = None;
                self.fragment_end(dir, h, cx);
            }
        }
        let s = &mut self.sides[i];
        if s.stage == Stage::Resync {
            return rest;
        }
        if left == 0 {
            if s.pdv_hdr_len > 0 {
                // A PDV header cut by the end of the PDU.
                s.reset_pdv();
                self.errors.raise(ErrorKind::MalformedPdu, cx.stats);
            }
            self.sides[i].stage = Stage::Header;
        } else {
            s.stage = Stage::PData { left };
        }
        rest
    }

    fn on_pdata_start(&mut self, dir: Direction, cx: &mut AppContext<'_>) {
        match self.phase {
            Phase::Established | Phase::Releasing => {}
            Phase::Idle => {
                // Midstream pickup: the association exists, we missed its negotiation.
                self.phase = Phase::Established;
                self.ev.midstream = true;
                if self.requestor.is_none() {
                    self.requestor = Some(Direction::ToServer);
                }
            }
            Phase::AwaitAc | Phase::Ended => {
                let _ = dir;
                self.raise(ErrorKind::UnexpectedPdu, cx.stats);
            }
        }
    }

    fn encoding_of(&self, ctx: u8) -> Option<Encoding> {
        self.contexts
            .iter()
            .find(|c| c.id == ctx)
            .and_then(|c| c.encoding)
    }

    fn fragment_start(&mut self, dir: Direction, h: PdvHeader, _cx: &mut AppContext<'_>) {
        let s = &mut self.sides[dir.index()];
        if !h.is_command() && !s.data_started {
            s.data_started = true;
            s.data_keep = true;
            s.data.clear();
            s.scanned = None;
            s.kept = 0;
        }
    }

    fn fragment_bytes(
        &mut self,
        dir: Direction,
        h: PdvHeader,
        frag: &[u8],
        cx: &mut AppContext<'_>,
    ) {
        let i = dir.index();
        if h.is_command() {
            let s = &mut self.sides[i];
            if s.cmd_overflow {
                return;
            }
            if s.cmd.len() + frag.len() > MAX_COMMAND_SET {
                s.cmd_overflow = true;
                let value = (s.cmd.len() + frag.len()) as u64;
                s.cmd = Vec::new();
                self.raise(ErrorKind::Dimse, cx.stats);
                self.ev.limits.command_set.get_or_insert(LimitRecord {
                    value,
                    limit: MAX_COMMAND_SET as u64,
                });
                return;
            }
            s.cmd.extend_from_slice(frag);
        } else {
            let s = &mut self.sides[i];
            if !s.data_keep {
                return;
            }
            if s.scanned.is_some() {
                s.kept += frag.len().min(MAX_DATASET_PREFIX - s.kept);
                if s.kept >= MAX_DATASET_PREFIX {
                    // The prefix the copy would hold is full: the scan takes effect.
                    self.apply_scan(dir, cx);
                }
                return;
            }
            if s.data.is_empty() {
                // The data set's first bytes: scanned where they are when what the scan finds
                // cannot depend on the bytes after them, so that they are not copied.
                let head = &frag[..frag.len().min(MAX_DATASET_PREFIX)];
                // The whole data set, or its whole kept prefix: the bytes the copy would hold.
                let all = (h.is_last() && s.pdv_left == 0) || head.len() == MAX_DATASET_PREFIX;
                if self.try_scan(dir, h.context_id, head, all, cx) {
                    return;
                }
                let s = &mut self.sides[i];
                s.scan_at = 2 * head.len();
                // Room for the whole prefix at once (a data set in one PDV: its length),
                // rather than growing the buffer by doubling and copying it each time.
                let want = if h.is_last() {
                    h.value_len() as usize
                } else {
                    MAX_DATASET_PREFIX
                };
                s.data.reserve_exact(want.min(MAX_DATASET_PREFIX));
            }
            let s = &mut self.sides[i];
            let room = MAX_DATASET_PREFIX - s.data.len();
            let k = room.min(frag.len());
            s.data.extend_from_slice(&frag[..k]);
            if s.data.len() >= MAX_DATASET_PREFIX {
                // Prefix full: scan now and skip the rest of this data set.
                self.scan_dataset(dir, h.context_id, cx);
            } else if s.data.len() >= s.scan_at && !(h.is_last() && s.pdv_left == 0) {
                // Whether the bytes kept decide the scan already (then the rest is only
                // counted). Tried at doubling lengths: every try together walks at most
                // twice the elements of the last one.
                s.scan_at = 2 * s.data.len();
                let data = std::mem::take(&mut s.data);
                let decided = self.try_scan(dir, h.context_id, &data, false, cx);
                let s = &mut self.sides[i];
                if decided {
                    s.recycle(data);
                } else {
                    s.data = data;
                }
            }
        }
    }

    /// Scans `head`, the first bytes of the data set under way in `dir` (`all`: all the bytes
    /// its scan would be given), and keeps the result ([`Side::scanned`]) when more bytes could
    /// not change it: then it takes effect where the scan of the copy would have been made (at
    /// the end of the data set, or when the prefix is full), and `true` is returned.
    fn try_scan(
        &mut self,
        dir: Direction,
        ctx: u8,
        head: &[u8],
        all: bool,
        cx: &mut AppContext<'_>,
    ) -> bool {
        let known = self.encoding_of(ctx);
        // The guessed encoding is that of the first six bytes.
        if !all && known.is_none() && head.len() < 6 {
            return false;
        }
        let enc = known.unwrap_or_else(|| dataset::guess_encoding(head));
        let scan = dataset::scan(head, enc);
        // Any other stop than at the end of the bytes given is made by the bytes before it.
        if !all && matches!(scan.stop, Stop::End | Stop::Truncated) {
            return false;
        }
        let s = &mut self.sides[dir.index()];
        s.scanned = Some(Box::new(scan));
        s.kept = head.len();
        if s.kept >= MAX_DATASET_PREFIX {
            self.apply_scan(dir, cx);
        }
        true
    }

    /// The scan made in place ([`Side::scanned`]) takes effect, as [`DicomState::scan_dataset`]
    /// would have.
    fn apply_scan(&mut self, dir: Direction, cx: &mut AppContext<'_>) {
        let s = &mut self.sides[dir.index()];
        s.data_keep = false;
        s.kept = 0;
        if let Some(scan) = s.scanned.take() {
            self.on_scan(dir, *scan, cx);
        }
    }

    fn fragment_end(&mut self, dir: Direction, h: PdvHeader, cx: &mut AppContext<'_>) {
        if !h.is_last() {
            return;
        }
        let i = dir.index();
        if h.is_command() {
            let s = &mut self.sides[i];
            let overflow = std::mem::replace(&mut s.cmd_overflow, false);
            let cmd = std::mem::take(&mut s.cmd);
            if !overflow {
                match dimse::parse_command_set(&cmd) {
                    Ok(cs) => self.on_command(dir, h.context_id, cs, cx),
                    Err(_) => self.raise(ErrorKind::Dimse, cx.stats),
                }
            }
            let s = &mut self.sides[i];
            s.cmd = cmd;
            s.cmd.clear();
        } else {
            if self.sides[i].scanned.is_some() {
                self.apply_scan(dir, cx);
            } else if self.sides[i].data_keep {
                self.scan_dataset(dir, h.context_id, cx);
            }
            let s = &mut self.sides[i];
            s.data_started = false;
            s.data_keep = false;
        }
    }

    fn scan_dataset(&mut self, dir: Direction, ctx: u8, cx: &mut AppContext<'_>) {
        let i = dir.index();
        let data = std::mem::take(&mut self.sides[i].data);
        self.sides[i].data_keep = false;
        let enc = self
            .encoding_of(ctx)
            .unwrap_or_else(|| dataset::guess_encoding(&data));
        let scan = dataset::scan(&data, enc);
        self.sides[i].recycle(data);
        self.on_scan(dir, scan, cx);
    }

    /// A data set's scan takes effect (an invalid data set is counted).
    fn on_scan(&mut self, dir: Direction, scan: DatasetScan, cx: &mut AppContext<'_>) {
        if scan.stop == Stop::Invalid {
            self.raise(ErrorKind::Dataset, cx.stats);
        }
        self.phi |= scan.phi;
        if !scan.has_device() {
            return;
        }
        let mut r = DatasetRecord {
            from: role_of(self.requestor, dir),
            sop_class_uid: scan.sop_class_uid.clone(),
            ..Default::default()
        };
        // DEVICE_TAGS order: modality, manufacturer, institution, station, department, model,
        // serial number, software versions.
        let [modality, manufacturer, institution, station, department, model, serial, software] =
            scan.device;
        r.modality = modality;
        r.manufacturer = manufacturer;
        r.institution_name = institution;
        r.station_name = station;
        r.institutional_department_name = department;
        r.manufacturer_model_name = model;
        r.device_serial_number = serial;
        r.software_versions = software;
        if !self.ev.datasets.contains(&r) && self.ev.datasets.len() < MAX_EVENT_DATASETS {
            self.ev.datasets.push(r);
        }
    }

    fn on_command(&mut self, dir: Direction, ctx: u8, cs: CommandSet, cx: &mut AppContext<'_>) {
        let i = dir.index();
        let (name, idx) = dimse::command_name(cs.command_field);
        let class = cs.status_class();
        cx.stats
            .fam_inc2(Family::DicomDimse, idx, class.map_or(0, |c| c as usize));
        // Pair responses with requests (message ids are per sender, PS3.7 9.1.1.1).
        let mut unmatched = false;
        if cs.is_response() {
            let id = cs.message_id_being_responded_to;
            let pos = self
                .pending
                .iter()
                .position(|p| p.from != i && Some(p.message_id) == id);
            match pos {
                Some(p) => {
                    if !matches!(class, Some(StatusClass::Pending)) {
                        self.pending.remove(p);
                    }
                }
                None => unmatched = true,
            }
        } else if cs.command_field != dimse::command::C_CANCEL {
            if let Some(id) = cs.message_id {
                if self.pending.len() < MAX_PENDING {
                    self.pending.push(Pending {
                        from: i,
                        message_id: id,
                    });
                } else {
                    self.raise(ErrorKind::PendingCap, cx.stats);
                    self.ev.limits.pending_commands.get_or_insert(LimitRecord {
                        value: self.pending.len() as u64 + 1,
                        limit: MAX_PENDING as u64,
                    });
                }
            }
        }
        self.ev.commands_total += 1;
        if self.ev.commands.len() >= MAX_EVENT_COMMANDS {
            return;
        }
        let so = cs.sub_operations;
        let rec = CommandRecord {
            command: name,
            command_field: cs.command_field,
            from: role_of(self.requestor, dir),
            context_id: ctx,
            message_id: cs.message_id,
            message_id_being_responded_to: cs.message_id_being_responded_to,
            dataset: cs.has_data_set(),
            affected_sop_class_uid: cs.affected_sop_class_uid,
            affected_sop_instance_uid: cs.affected_sop_instance_uid,
            requested_sop_class_uid: cs.requested_sop_class_uid,
            requested_sop_instance_uid: cs.requested_sop_instance_uid,
            move_destination: cs.move_destination,
            priority: cs.priority,
            status: cs.status,
            status_class: class.map(StatusClass::as_str),
            sub_operations: so.iter().any(Option::is_some).then_some(SubOps {
                remaining: so[0],
                completed: so[1],
                failed: so[2],
                warning: so[3],
            }),
            unmatched,
        };
        self.ev.commands.push(rec);
    }

    /// An RQ/AC too large to keep: move the state as if it had been parsed.
    fn on_pdu_unparsed(&mut self, dir: Direction, t: PduType, cx: &mut AppContext<'_>) {
        match t {
            PduType::ASSOCIATE_RQ => self.on_rq(dir, None, cx),
            PduType::ASSOCIATE_AC => self.on_ac(dir, None, cx),
            _ => self.raise(ErrorKind::UnexpectedPdu, cx.stats),
        }
    }

    /// A complete non-P-DATA PDU.
    fn on_pdu(&mut self, dir: Direction, h: PduHeader, body: &[u8], cx: &mut AppContext<'_>) {
        match h.pdu_type {
            PduType::ASSOCIATE_RQ => match rq_parts(body) {
                Some(p) => self.on_rq(dir, Some(p), cx),
                None => {
                    self.raise(ErrorKind::MalformedPdu, cx.stats);
                    self.on_rq(dir, None, cx);
                }
            },
            PduType::ASSOCIATE_AC => match ac_parts(body) {
                Some(p) => self.on_ac(dir, Some(p), cx),
                None => {
                    self.raise(ErrorKind::MalformedPdu, cx.stats);
                    self.on_ac(dir, None, cx);
                }
            },
            PduType::ASSOCIATE_RJ => {
                let Ok(rj) = pdu::parse_associate_rj(body) else {
                    self.raise(ErrorKind::MalformedPdu, cx.stats);
                    return;
                };
                if self.phase != Phase::AwaitAc {
                    self.raise(ErrorKind::UnexpectedPdu, cx.stats);
                    if self.phase != Phase::Idle {
                        return;
                    }
                    self.requestor.get_or_insert(dir.reverse());
                    self.ev.midstream = true;
                }
                self.ev.reject = Some(RejectRecord {
                    result: rj.result,
                    source: rj.source,
                    reason: rj.reason,
                });
                self.end("rejected", cx);
            }
            PduType::RELEASE_RQ => match self.phase {
                Phase::Established | Phase::Releasing => {
                    self.phase = Phase::Releasing;
                    self.release_rq = true;
                }
                Phase::Idle => {
                    self.ev.midstream = true;
                    self.requestor.get_or_insert(dir);
                    self.phase = Phase::Releasing;
                    self.release_rq = true;
                }
                _ => self.raise(ErrorKind::UnexpectedPdu, cx.stats),
            },
            PduType::RELEASE_RP => match self.phase {
                Phase::Releasing => {
                    self.ev.released = true;
                    self.end("accepted", cx);
                }
                Phase::Idle => {
                    // Midstream pickup right at the end.
                    self.ev.midstream = true;
                    self.requestor.get_or_insert(dir.reverse());
                    self.ev.released = true;
                    self.end("accepted", cx);
                }
                _ => self.raise(ErrorKind::UnexpectedPdu, cx.stats),
            },
            PduType::ABORT => {
                let Ok(ab) = pdu::parse_abort(body) else {
                    self.raise(ErrorKind::MalformedPdu, cx.stats);
                    return;
                };
                if self.phase == Phase::Idle {
                    self.ev.midstream = true;
                }
                self.ev.abort = Some(AbortRecord {
                    source: ab.source,
                    reason: ab.reason,
                    from: role_of(self.requestor, dir),
                });
                self.end("aborted", cx);
            }
            _ => {}
        }
    }

    fn note_unknown_items(&mut self, unknown: &[u8], cx: &mut AppContext<'_>) {
        for &t in unknown {
            self.raise(ErrorKind::UnknownItem, cx.stats);
            if self.ev.unknown_items.len() < MAX_EVENT_UNKNOWN
                && !self.ev.unknown_items.contains(&t)
            {
                self.ev.unknown_items.push(t);
            }
        }
    }

    fn note_contexts_cap(&mut self, context_items: usize, cx: &mut AppContext<'_>) {
        if context_items > MAX_CONTEXTS {
            self.raise(ErrorKind::ContextsCap, cx.stats);
            self.ev.limits.contexts.get_or_insert(LimitRecord {
                value: context_items as u64,
                limit: MAX_CONTEXTS as u64,
            });
        }
    }

    fn on_rq(&mut self, dir: Direction, a: Option<RqParts>, cx: &mut AppContext<'_>) {
        if self.phase != Phase::Idle || self.rq_seen {
            self.raise(ErrorKind::UnexpectedPdu, cx.stats);
            return;
        }
        self.rq_seen = true;
        self.requestor = Some(dir);
        self.phase = Phase::AwaitAc;
        let Some(a) = a else { return };
        let c = a.common;
        self.note_unknown_items(&c.unknown, cx);
        self.note_contexts_cap(c.context_items, cx);
        self.ev.calling_ae = Some(c.calling_ae);
        self.ev.called_ae = Some(c.called_ae);
        self.ev.protocol_version = Some(a.protocol_version);
        self.ev.application_context = a.application_context;
        self.max_pdu_rx[dir.index()] = c.peer.max_pdu_length;
        self.ev.requestor = Some(c.peer);
        if self.ev.presentation_contexts.is_empty() {
            self.ev.presentation_contexts = a.contexts;
        } else {
            self.ev.presentation_contexts.extend(a.contexts);
        }
    }

    fn on_ac(&mut self, dir: Direction, a: Option<AcParts>, cx: &mut AppContext<'_>) {
        match self.phase {
            Phase::AwaitAc if self.requestor != Some(dir) => {}
            Phase::Idle => {
                // Midstream: the RQ was missed.
                self.ev.midstream = true;
                self.requestor = Some(dir.reverse());
            }
            _ => {
                self.raise(ErrorKind::UnexpectedPdu, cx.stats);
                return;
            }
        }
        self.phase = Phase::Established;
        let Some(a) = a else { return };
        let c = a.common;
        self.note_unknown_items(&c.unknown, cx);
        self.note_contexts_cap(c.context_items, cx);
        if self.ev.calling_ae.is_none() {
            self.ev.calling_ae = Some(c.calling_ae);
            self.ev.called_ae = Some(c.called_ae);
        }
        let peer = c.peer;
        self.max_pdu_rx[dir.index()] = peer.max_pdu_length;
        self.ev.acceptor = Some(peer);
        self.contexts.reserve_exact(
            a.contexts
                .len()
                .min(MAX_CONTEXTS.saturating_sub(self.contexts.len())),
        );
        for pc in a.contexts {
            let (ts, enc) = (pc.ts, pc.encoding);
            let accepted = pc.result == Some(0);
            if self.contexts.len() < MAX_CONTEXTS {
                self.contexts.push(Ctx {
                    id: pc.id,
                    encoding: enc,
                });
            }
            let rec = match self
                .ev
                .presentation_contexts
                .iter_mut()
                .find(|c| c.id == pc.id && c.result.is_none())
            {
                Some(r) => r,
                None => {
                    if self.ev.presentation_contexts.len() >= MAX_CONTEXTS {
                        continue;
                    }
                    self.ev.presentation_contexts.push(ContextRecord {
                        id: pc.id,
                        ..Default::default()
                    });
                    let n = self.ev.presentation_contexts.len();
                    &mut self.ev.presentation_contexts[n - 1]
                }
            };
            rec.result = pc.result;
            rec.result_name = pc.result.map(context_result_name);
            // PS3.8 9.3.3.2: the transfer syntax sub-item is meaningful only on acceptance.
            rec.accepted_transfer_syntax = if accepted { ts } else { None };
        }
    }

    /// The association ended: emit its event.
    fn end(&mut self, result: &'static str, cx: &mut AppContext<'_>) {
        self.phase = Phase::Ended;
        self.emit(result, cx);
    }

    fn emit(&mut self, result: &'static str, cx: &mut AppContext<'_>) {
        if self.emitted {
            return;
        }
        self.emitted = true;
        let r = match result {
            "accepted" => 0,
            "rejected" => 1,
            "aborted" => 2,
            _ => 3,
        };
        cx.stats.fam_inc(Family::DicomAssociations, r);
        let mut ev = std::mem::take(&mut *self.ev);
        ev.result = result;
        ev.unanswered = self.pending.len() as u64;
        ev.phi_present = dataset::PHI_TAGS
            .iter()
            .enumerate()
            .filter(|(i, _)| self.phi & (1 << i) != 0)
            .map(|(_, (_, n))| *n)
            .collect();
        ev.bytes = self.sides[0].bytes.saturating_add(self.sides[1].bytes);
        for (name, &n) in DICOM_PDU_TYPES.iter().zip(&self.pdus) {
            if n > 0 {
                ev.pdus.insert(name, n);
            }
        }
        for k in ErrorKind::ALL {
            let n = self.errors.0[k as usize];
            if n > 0 {
                ev.errors.insert(k.as_str(), n);
            }
        }
        if ev.commands_total as usize > MAX_EVENT_COMMANDS {
            ev.limits.commands_listed = Some(LimitRecord {
                value: ev.commands_total,
                limit: MAX_EVENT_COMMANDS as u64,
            });
        }
        device_evidence(&ev, self.requestor.unwrap_or(Direction::ToServer), cx);
        cx.events
            .emit_with(cx.ts, "dicom", cx.flow, Direction::ToServer, |b| {
                ev.write_json(b)
            });
        cx.obs.facts(cx.ts, cx.flow, association_facts(ev));
    }
}

/// What an association says about its two devices: the requestor's calling AE title (role
/// SCU) and implementation, the acceptor's called AE title (role SCP, once it accepted) and
/// implementation, and the device attributes of the data sets each side sent.
fn device_evidence(ev: &DicomEvent, requestor: Direction, cx: &mut AppContext<'_>) {
    use crate::fingerprint::evidence::cleaned;
    use crate::fingerprint::EvidenceKind as K;
    use std::borrow::Cow;
    if !cx.obs.enabled() || ev.calling_ae.is_none() {
        return;
    }
    let accepted = ev.acceptor.is_some();
    // One list for both sides, sized once: a side gives at most 4 items and 6 per data set.
    let mut items: Vec<(K, Cow<'_, str>, u8)> = Vec::with_capacity(10);
    for (dir, side, peer) in [
        (requestor, "requestor", ev.requestor.as_ref()),
        (requestor.reverse(), "acceptor", ev.acceptor.as_ref()),
    ] {
        // The items `Evidence::new(k, v)` would make, as cleaned values borrowed from the event
        // (copied by the observation buffer only when they are news), without repeats.
        fn push<'e>(items: &mut Vec<(K, Cow<'e, str>, u8)>, k: K, v: Option<&'e str>) {
            if let Some(v) = v.filter(|v| !v.trim().is_empty()) {
                let v = cleaned(v);
                if !items.iter().any(|(ik, iv, _)| *ik == k && *iv == v) {
                    items.push((k, v, 100));
                }
            }
        }
        items.clear();
        if side == "requestor" {
            push(&mut items, K::DicomCallingAe, ev.calling_ae.as_deref());
            push(&mut items, K::DicomRole, Some("scu"));
        } else if accepted {
            push(&mut items, K::DicomCalledAe, ev.called_ae.as_deref());
            push(&mut items, K::DicomRole, Some("scp"));
        }
        if let Some(p) = peer {
            push(
                &mut items,
                K::DicomImplementationClassUid,
                p.implementation_class_uid.as_deref(),
            );
            push(
                &mut items,
                K::DicomImplementationVersionName,
                p.implementation_version_name.as_deref(),
            );
        }
        for d in ev.datasets.iter().filter(|d| d.from == side) {
            push(&mut items, K::DicomModality, d.modality.as_deref());
            push(&mut items, K::DicomManufacturer, d.manufacturer.as_deref());
            push(
                &mut items,
                K::DicomModel,
                d.manufacturer_model_name.as_deref(),
            );
            push(
                &mut items,
                K::DicomSoftwareVersions,
                d.software_versions.as_deref(),
            );
            push(&mut items, K::DicomStationName, d.station_name.as_deref());
            push(
                &mut items,
                K::DicomSerialNumber,
                d.device_serial_number.as_deref(),
            );
        }
        let (mac, ip) = cx.flow.sender(dir);
        cx.obs.evidence_cleaned(cx.ts, mac, Some(ip), &items);
    }
}

/// What detection rules and anomalies test about one association: its result, whether PHI
/// crossed (never which values), the AE titles (not PHI: they name applications), and how many
/// query/retrieve/store requests it carried.
fn association_facts(ev: DicomEvent) -> Facts {
    // Requests of each kind listed, in one pass: a command's name is that of its Command Field
    // (`dimse::command_name`), so "C-FIND-RQ" is field C_FIND, and so on.
    let mut n = [0i64; 4];
    for c in &ev.commands {
        match c.command_field {
            dimse::command::C_FIND => n[0] += 1,
            dimse::command::C_MOVE => n[1] += 1,
            dimse::command::C_GET => n[2] += 1,
            dimse::command::C_STORE => n[3] += 1,
            _ => {}
        }
    }
    let mut f = Facts::new("dicom");
    // Sized once for the most fields it gets.
    f.fields.reserve_exact(11);
    let mut f = f
        .with("result", FactValue::Str(ev.result.to_string()))
        .with("phi_present", FactValue::Bool(!ev.phi_present.is_empty()))
        .with("c_find", FactValue::Int(n[0]))
        .with("c_move", FactValue::Int(n[1]))
        .with("c_get", FactValue::Int(n[2]))
        .with("c_store", FactValue::Int(n[3]))
        .with("commands_total", FactValue::Int(ev.commands_total as i64));
    // The event is done with: its AE titles are moved, not copied.
    if let Some(a) = ev.called_ae {
        f = f.with("called_ae", FactValue::Str(a));
    }
    if let Some(a) = ev.calling_ae {
        f = f.with("calling_ae", FactValue::Str(a));
    }
    if let Some(r) = &ev.reject {
        f = f
            .with("reject_result", FactValue::Int(i64::from(r.result)))
            .with("reject_reason", FactValue::Int(i64::from(r.reason)));
    }
    f
}

/// Whether `p` (a candidate PDU header and the 6 bytes after it) is believable.
fn candidate(p: &[u8; RESYNC_PEEK], max_rx: Option<u32>) -> bool {
    let Ok((body, h)) = pdu::parse_pdu_header(p) else {
        return false;
    };
    if !pdu::believable_header(&h) {
        return false;
    }
    match h.pdu_type {
        PduType::P_DATA_TF => {
            if let Some(m) = max_rx.filter(|&m| m > 0) {
                if h.len > m {
                    return false;
                }
            }
            let Ok((_, v)) = pdu::parse_pdv_header(body) else {
                return false;
            };
            v.len <= h.len - 4 && v.context_id % 2 == 1 && v.flags <= 3
        }
        // Protocol version 1 (PS3.8 9.3.2).
        PduType::ASSOCIATE_RQ | PduType::ASSOCIATE_AC => body[0] == 0 && body[1] & 1 == 1,
        // Reserved, result 1-2, source 1-3.
        PduType::ASSOCIATE_RJ => {
            body[0] == 0 && (1..=2).contains(&body[1]) && (1..=3).contains(&body[2])
        }
        PduType::RELEASE_RQ | PduType::RELEASE_RP => body[..4] == [0, 0, 0, 0],
        // Reserved x2, source 0 or 2, reason 0-6.
        PduType::ABORT => body[0] == 0 && body[1] == 0 && matches!(body[2], 0 | 2) && body[3] <= 6,
        _ => false,
    }
}

fn rest_after(data: &[u8], consumed: usize) -> &[u8] {
    data.get(consumed..).unwrap_or(&[])
}

/// What an A-ASSOCIATE-RQ body gives the association (all that [`DicomState::on_rq`] takes
/// from it): a function of the body's bytes alone, so an equal body gives equal parts.
#[derive(Clone)]
struct RqParts {
    common: AssocParts,
    protocol_version: u16,
    application_context: Option<Uid>,
    contexts: Vec<ContextRecord>,
}

/// What an A-ASSOCIATE-RQ and an -AC body both give the association.
#[derive(Clone)]
struct AssocParts {
    /// Types of the unknown items, in the order they are noted (PDU, user information, then
    /// each presentation context's).
    unknown: Vec<u8>,
    context_items: usize,
    calling_ae: String,
    called_ae: String,
    peer: PeerRecord,
}

/// One presentation context of an A-ASSOCIATE-AC: its result and the transfer syntax (and its
/// encoding when accepted).
#[derive(Clone)]
struct AcContext {
    id: u8,
    result: Option<u8>,
    ts: Option<Uid>,
    encoding: Option<Encoding>,
}

/// What an A-ASSOCIATE-AC body gives the association (see [`RqParts`]).
#[derive(Clone)]
struct AcParts {
    common: AssocParts,
    contexts: Vec<AcContext>,
}

impl AssocParts {
    fn of(a: &pdu::Associate<'_>) -> AssocParts {
        let ui_unknown = a
            .user_info
            .as_ref()
            .map_or(&[][..], |u| &u.unknown_items[..]);
        let pc_unknown = a.contexts.iter().flat_map(|c| c.unknown_items.iter());
        AssocParts {
            unknown: a
                .unknown_items
                .iter()
                .chain(ui_unknown)
                .chain(pc_unknown)
                .copied()
                .collect(),
            context_items: a.context_items,
            calling_ae: text(a.calling_ae, 16),
            called_ae: text(a.called_ae, 16),
            peer: peer_record(a.user_info.as_ref()),
        }
    }
}

impl RqParts {
    fn of(a: &pdu::Associate<'_>) -> RqParts {
        RqParts {
            common: AssocParts::of(a),
            protocol_version: a.protocol_version,
            application_context: a.application_context.map(|c| uid_text(c, 64)),
            contexts: a
                .contexts
                .iter()
                .take(MAX_CONTEXTS)
                .map(|pc| ContextRecord {
                    id: pc.id,
                    abstract_syntax: pc.abstract_syntax.map(|s| uid_text(s, 64)),
                    transfer_syntaxes: pc
                        .transfer_syntaxes
                        .iter()
                        .map(|s| uid_text(s, 64))
                        .collect(),
                    ..Default::default()
                })
                .collect(),
        }
    }
}

impl AcParts {
    fn of(a: &pdu::Associate<'_>) -> AcParts {
        AcParts {
            common: AssocParts::of(a),
            contexts: a
                .contexts
                .iter()
                .take(MAX_CONTEXTS)
                .map(|pc| {
                    let ts = pc.transfer_syntaxes.first().map(|s| uid_text(s, 64));
                    let encoding = if pc.result == Some(0) {
                        ts.as_deref().map(Encoding::of_transfer_syntax)
                    } else {
                        None
                    };
                    AcContext {
                        id: pc.id,
                        result: pc.result,
                        ts,
                        encoding,
                    }
                })
                .collect(),
        }
    }
}

/// Entries of each worker's caches of A-ASSOCIATE-RQ and -AC parts ([`rq_parts`],
/// [`ac_parts`]).
const ASSOCIATE_CACHE_ENTRIES: usize = 16;
/// Bytes of bodies each of these caches keeps, all entries together; a body longer than a
/// quarter of it is parsed every time. An RQ proposing a few contexts is 200-400 bytes;
/// getscu's 121 are 17 KiB (and parsing them costs some 100,000 instructions).
const ASSOCIATE_CACHE_BYTES: usize = 128 * 1024;

/// The parts of recent A-ASSOCIATE bodies, each with its whole body, so a hit is an equal
/// body (and so equal parts). A device associates with the same PDU again and again: the same
/// AE titles, implementation and proposed contexts. Searched in order, comparing lengths
/// first (a handful of entries); replaced in turn when full.
struct PartsCache<T> {
    entries: Vec<(Vec<u8>, T)>,
    /// Bytes of the bodies kept.
    bytes: usize,
    /// The entry replaced next.
    next: usize,
}

impl<T: Clone> PartsCache<T> {
    fn new() -> PartsCache<T> {
        PartsCache {
            entries: Vec::new(),
            bytes: 0,
            next: 0,
        }
    }

    /// `make(body)`, from the cache when an equal body was seen recently.
    fn get(&mut self, body: &[u8], make: impl FnOnce() -> Option<T>) -> Option<T> {
        if let Some((_, p)) = self
            .entries
            .iter()
            .find(|(b, _)| b.len() == body.len() && b[..] == *body)
        {
            return Some(p.clone());
        }
        let p = make()?;
        if body.len() <= ASSOCIATE_CACHE_BYTES / 4 {
            // Room for the body: entries replaced in turn until it fits.
            while !self.entries.is_empty()
                && (self.entries.len() >= ASSOCIATE_CACHE_ENTRIES
                    || self.bytes + body.len() > ASSOCIATE_CACHE_BYTES)
            {
                let i = self.next % self.entries.len();
                self.bytes -= self.entries.swap_remove(i).0.len();
                self.next = i + 1;
            }
            self.bytes += body.len();
            self.entries.push((body.to_vec(), p.clone()));
        }
        Some(p)
    }
}

thread_local! {
    /// Per worker thread: parts of recent A-ASSOCIATE-RQ and -AC bodies.
    static RQ_PARTS: std::cell::RefCell<PartsCache<RqParts>> =
        std::cell::RefCell::new(PartsCache::new());
    static AC_PARTS: std::cell::RefCell<PartsCache<AcParts>> =
        std::cell::RefCell::new(PartsCache::new());
}

/// The parts of an A-ASSOCIATE-RQ body; `None` when it does not parse.
fn rq_parts(body: &[u8]) -> Option<RqParts> {
    RQ_PARTS.with(|c| {
        c.borrow_mut().get(body, || {
            pdu::parse_associate_rq(body).ok().map(|a| RqParts::of(&a))
        })
    })
}

/// The parts of an A-ASSOCIATE-AC body; `None` when it does not parse.
fn ac_parts(body: &[u8]) -> Option<AcParts> {
    AC_PARTS.with(|c| {
        c.borrow_mut().get(body, || {
            pdu::parse_associate_ac(body).ok().map(|a| AcParts::of(&a))
        })
    })
}

fn peer_record(ui: Option<&medtap_parsers::dicom::items::UserInfo<'_>>) -> PeerRecord {
    let Some(ui) = ui else {
        return PeerRecord::default();
    };
    PeerRecord {
        implementation_class_uid: ui.implementation_class_uid.map(|s| text(s, 64)),
        implementation_version_name: ui.implementation_version_name.map(|s| text(s, 16)),
        max_pdu_length: ui.max_pdu_length,
        async_ops: ui.async_ops.map(|(i, p)| AsyncOps {
            invoked: i,
            performed: p,
        }),
        roles: ui
            .roles
            .iter()
            .take(MAX_CONTEXTS)
            .map(|r| RoleRecord {
                sop_class_uid: text(r.sop_class_uid, 64),
                scu: r.scu_role,
                scp: r.scp_role,
            })
            .collect(),
        extended_negotiation: ui
            .extended_negotiation
            .iter()
            .take(MAX_CONTEXTS)
            .map(|s| text(s, 64))
            .collect(),
        user_identity: ui.user_identity.map(|u| IdentityRecord {
            identity_type: u.identity_type,
            type_name: identity_type_name(u.identity_type),
            positive_response_requested: u.positive_response_requested,
            passcode_present: u.secondary_len > 0,
        }),
        user_identity_response: ui.user_identity_response,
    }
}

impl AppParser for DicomState {
    fn on_data(&mut self, dir: Direction, data: &[u8], cx: &mut AppContext<'_>) {
        self.feed(dir, data, cx);
    }

    fn on_gap(&mut self, dir: Direction, _len: u64, cx: &mut AppContext<'_>) {
        if self.phase == Phase::Ended {
            return;
        }
        self.raise(ErrorKind::Gap, cx.stats);
        self.ev.gaps += 1;
        let s = &mut self.sides[dir.index()];
        s.started = true;
        s.lose_sync();
    }

    fn on_close(&mut self, cx: &mut AppContext<'_>) {
        if self.emitted {
            return;
        }
        // Nothing DICOM was decoded (e.g. only resync noise): no association to report.
        if self.pdus.iter().all(|&n| n == 0) {
            return;
        }
        self.phase = Phase::Ended;
        self.emit("incomplete", cx);
    }

    fn done(&self) -> bool {
        self.phase == Phase::Ended
    }
}
