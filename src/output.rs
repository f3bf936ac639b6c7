//! The EVE-style NDJSON event log.
//!
//! Each worker owns an [`EventSink`] that formats events into a line buffer; full buffers go over
//! a bounded channel to one writer thread ([`EventWriter`]) that owns the file. In replay the
//! channel blocks (nothing is lost); live, a full channel drops the buffer and counts it.
//! Events are shaped like Suricata's EVE: `timestamp`, `event_type`, `flow_id`, `src_ip`,
//! `src_port`, `dest_ip`, `dest_port`, `proto`, `app_proto`, and one object named after the type.

use std::io::{self, Write};
use std::net::IpAddr;

use serde::Serialize;

use crate::flow::FlowMeta;
use crate::protocols::Direction;
use crate::stats::{Counter, WorkerStats};
use crate::time::{two_digits, Ts};

/// Flush a sink's buffer to the writer once it holds this many bytes.
pub const SINK_FLUSH_BYTES: usize = 64 * 1024;

/// Formats events into newline-terminated JSON lines.
pub struct EventSink {
    enabled: bool,
    buf: Vec<u8>,
    produced: u64,
    /// Where the buffer goes as soon as it holds [`SINK_FLUSH_BYTES`] (a worker's sink: the
    /// writer's queue), so that a sweep or the end of capture ending thousands of flows at once
    /// does not gather all their events in one buffer. `None`: the owner takes the lines.
    spill: Option<Spill>,
}

/// Takes a full buffer of lines (see [`EventSink::spilling`]) and gives back an emptied buffer
/// to go on with (a writer's spare for reuse, or `Vec::new()`).
pub type Spill = Box<dyn FnMut(Vec<u8>) -> Vec<u8> + Send>;

impl EventSink {
    pub fn new(enabled: bool) -> EventSink {
        EventSink {
            enabled,
            buf: Vec::new(),
            produced: 0,
            spill: None,
        }
    }

    /// A sink that hands its buffer to `spill` whenever it holds [`SINK_FLUSH_BYTES`] after an
    /// event, so it never holds more than that and one event.
    pub fn spilling(enabled: bool, spill: Spill) -> EventSink {
        EventSink {
            spill: Some(spill),
            ..EventSink::new(enabled)
        }
    }

    #[inline]
    fn maybe_spill(&mut self) {
        if self.buf.len() >= SINK_FLUSH_BYTES {
            if let Some(spill) = &mut self.spill {
                let cap = self.buf.capacity().min(2 * SINK_FLUSH_BYTES);
                let mut next = spill(std::mem::take(&mut self.buf));
                next.clear();
                next.reserve_exact(cap);
                self.buf = next;
            }
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Events produced since the last [`EventSink::take_produced`].
    pub fn take_produced(&mut self) -> u64 {
        std::mem::take(&mut self.produced)
    }

    /// A flow-scoped event. `src` names the side that is `src_*`: the client for connection-level
    /// events, the sender for message-level ones.
    pub fn emit<T: Serialize + ?Sized>(
        &mut self,
        ts: Ts,
        event_type: &str,
        flow: &FlowMeta,
        src: Direction,
        body: &T,
    ) {
        self.emit_with(ts, event_type, flow, src, |b| {
            if serde_json::to_writer(&mut *b, body).is_err() {
                b.extend_from_slice(b"null");
            }
        });
    }

    /// [`EventSink::emit`] with a body that writes its JSON object itself (the hot `flow` event).
    pub fn emit_with(
        &mut self,
        ts: Ts,
        event_type: &str,
        flow: &FlowMeta,
        src: Direction,
        body: impl FnOnce(&mut Vec<u8>),
    ) {
        if !self.enabled {
            return;
        }
        self.produced += 1;
        let (s, d) = match src {
            Direction::ToServer => (flow.client, flow.server),
            Direction::ToClient => (flow.server, flow.client),
        };
        // Written byte by byte rather than with `write!` (this runs for every event): the same
        // text as `{"timestamp":"{ts}","event_type":"{event_type}","flow_id":{id}...`.
        let b = &mut self.buf;
        b.extend_from_slice(b"{\"timestamp\":\"");
        ts.push_rfc3339(b);
        b.extend_from_slice(b"\",\"event_type\":\"");
        b.extend_from_slice(event_type.as_bytes());
        b.extend_from_slice(b"\",\"flow_id\":");
        push_u64(b, flow.flow_id);
        if let Some(v) = flow.vlan_outer() {
            b.extend_from_slice(b",\"vlan\":[");
            push_u64(b, u64::from(v));
            if let Some(v2) = flow.vlan_inner() {
                b.push(b',');
                push_u64(b, u64::from(v2));
            }
            b.push(b']');
        }
        b.extend_from_slice(b",\"src_ip\":\"");
        push_ip(b, s.0);
        b.push(b'"');
        if flow.has_ports() {
            b.extend_from_slice(b",\"src_port\":");
            push_u64(b, u64::from(s.1));
        }
        b.extend_from_slice(b",\"dest_ip\":\"");
        push_ip(b, d.0);
        b.push(b'"');
        if flow.has_ports() {
            b.extend_from_slice(b",\"dest_port\":");
            push_u64(b, u64::from(d.1));
        }
        b.extend_from_slice(b",\"proto\":\"");
        b.extend_from_slice(flow.proto_name().as_bytes());
        b.push(b'"');
        if let Some(app) = flow.app_proto {
            b.extend_from_slice(b",\"app_proto\":\"");
            b.extend_from_slice(app.as_str().as_bytes());
            b.push(b'"');
        }
        b.extend_from_slice(b",\"");
        b.extend_from_slice(event_type.as_bytes());
        b.extend_from_slice(b"\":");
        body(b);
        b.extend_from_slice(b"}\n");
        self.maybe_spill();
    }

    /// An event with no flow (`stats`, capture notices).
    pub fn emit_global<T: Serialize + ?Sized>(&mut self, ts: Ts, event_type: &str, body: &T) {
        if !self.enabled {
            return;
        }
        self.produced += 1;
        let b = &mut self.buf;
        let _ = write!(
            b,
            "{{\"timestamp\":\"{ts}\",\"event_type\":\"{event_type}\",\"{event_type}\":"
        );
        if serde_json::to_writer(&mut *b, body).is_err() {
            b.extend_from_slice(b"null");
        }
        b.extend_from_slice(b"}\n");
        self.maybe_spill();
    }

    /// [`EventSink::emit_global`] with a body that writes its JSON value itself.
    pub fn emit_global_with(&mut self, ts: Ts, event_type: &str, body: impl FnOnce(&mut Vec<u8>)) {
        if !self.enabled {
            return;
        }
        self.produced += 1;
        let b = &mut self.buf;
        b.extend_from_slice(b"{\"timestamp\":\"");
        ts.push_rfc3339(b);
        b.extend_from_slice(b"\",\"event_type\":\"");
        b.extend_from_slice(event_type.as_bytes());
        b.extend_from_slice(b"\",\"");
        b.extend_from_slice(event_type.as_bytes());
        b.extend_from_slice(b"\":");
        body(b);
        b.extend_from_slice(b"}\n");
        self.maybe_spill();
    }

    pub fn pending_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Hand over the formatted lines (the sink keeps a fresh buffer of the same capacity, up
    /// to twice [`SINK_FLUSH_BYTES`], so that it is not grown again from nothing by doubling).
    pub fn take(&mut self) -> Vec<u8> {
        let cap = self.buf.capacity().min(2 * SINK_FLUSH_BYTES);
        std::mem::replace(&mut self.buf, Vec::with_capacity(cap))
    }

    /// The lines written since the buffer held `from` bytes (see [`EventSink::pending_bytes`]).
    pub fn written_since(&self, from: usize) -> &[u8] {
        self.buf.get(from..).unwrap_or_default()
    }

    /// Count the produced events into `stats` (call once per batch).
    pub fn account(&mut self, stats: &mut WorkerStats) {
        let n = self.take_produced();
        stats.add(Counter::EventsProduced, n);
    }
}

/// Appends `v` in decimal, as `Display` writes it. Values under 100 (most counts and ids in
/// events) are one or two bytes of fixed size: no copy of a formatted buffer.
#[inline]
pub fn push_u64(b: &mut Vec<u8>, v: u64) {
    if v < 10 {
        b.push(b'0' + v as u8);
    } else if v < 100 {
        b.extend_from_slice(&two_digits(v as u32));
    } else {
        push_u64_long(b, v);
    }
}

/// [`push_u64`] for `v >= 100`: the number of digits from the bit length, 20 bytes appended
/// (a store of fixed size), the digits written two at a time over them at their final places,
/// and the unused tail cut. The digits are stored once, where they go: not into a stack buffer
/// read back at once to be copied (a load of bytes just stored piecewise, which waits for the
/// stores: store forwarding fails).
fn push_u64_long(b: &mut Vec<u8>, v: u64) {
    /// 10^i.
    const POW10: [u64; 20] = {
        let mut t = [1u64; 20];
        let mut i = 1;
        while i < 20 {
            t[i] = t[i - 1] * 10;
            i += 1;
        }
        t
    };
    // floor(log10(2^bits)) by 1233/4096 ~ log10(2); one more digit if `v` reaches its power.
    let guess = (((64 - v.leading_zeros()) * 1233) >> 12) as usize;
    let n = guess + usize::from(v >= POW10[guess.min(19)]);
    let start = b.len();
    b.extend_from_slice(&[0u8; 20]);
    let Some(t) = b.last_chunk_mut::<20>() else {
        return;
    };
    let (mut i, mut v) = (n.min(20), v);
    // Eight digits at a time while more than eight are left (then 32-bit arithmetic).
    while i > 8 {
        let low = (v % 100_000_000) as u32;
        v /= 100_000_000;
        let (high, low) = (low / 10_000, low % 10_000);
        let [d0, d1] = two_digits(high / 100);
        let [d2, d3] = two_digits(high);
        let [d4, d5] = two_digits(low / 100);
        let [d6, d7] = two_digits(low);
        t[i - 8..i].copy_from_slice(&[d0, d1, d2, d3, d4, d5, d6, d7]);
        i -= 8;
    }
    let mut v = v as u32;
    while i >= 2 {
        t[i - 2..i].copy_from_slice(&two_digits(v));
        v /= 100;
        i -= 2;
    }
    if i == 1 {
        t[0] = b'0' + v as u8;
    }
    b.truncate(start + n);
}

/// Appends `v` in decimal, as `Display` writes it (a sign, then [`push_u64`]).
pub fn push_i64(b: &mut Vec<u8>, v: i64) {
    if v < 0 {
        b.push(b'-');
    }
    push_u64(b, v.unsigned_abs());
}

/// What [`push_json_str`] writes for a byte: 0 as is, `u` as `\u00xx`, else `\` and this byte.
const JSON_ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = b'u';
        c += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// Non-zero when any of the 8 bytes of `w` is below 0x20, `"` or `\` (bit tricks: "has a zero
/// byte" of `w ^ c`, "has a byte less than n" of `w`; both exact about whether any byte does).
#[inline]
fn escape_bits(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let below = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    below | zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\')))
}

/// Whether any byte of `s` needs escaping in a JSON string: 8 bytes at a time without a branch
/// per word (the last word overlaps the one before; under 8 bytes, byte by byte).
#[inline]
fn needs_escape(s: &[u8]) -> bool {
    let Some(last) = s.last_chunk::<8>() else {
        return s.iter().any(|&c| JSON_ESCAPE[usize::from(c)] != 0);
    };
    let (words, _) = s.as_chunks::<8>();
    let mut acc = escape_bits(u64::from_le_bytes(*last));
    for w in words {
        acc |= escape_bits(u64::from_le_bytes(*w));
    }
    acc != 0
}

/// Appends `s` as a JSON string, quoted and escaped exactly as `serde_json` writes it: `"` and
/// `\\` escaped, `\b \t \n \f \r` short, other control characters below 0x20 as `\u00xx`
/// (lower-case hex), everything else (DEL and non-ASCII included) as is. Most strings need no
/// escaping: they are checked a word at a time and copied whole.
///
/// Strings of 1 to 16 bytes (most values) are read and copied as two overlapping pieces of
/// fixed size (the second written over the first's tail), not with a `memcpy` call.
pub fn push_json_str(b: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let len = bytes.len();
    b.reserve(len + 2);
    b.push(b'"');
    let start = b.len();
    if let (8..=16, Some(head), Some(tail)) =
        (len, bytes.first_chunk::<8>(), bytes.last_chunk::<8>())
    {
        if escape_bits(u64::from_le_bytes(*head)) | escape_bits(u64::from_le_bytes(*tail)) != 0 {
            push_escaped(b, bytes);
        } else {
            b.extend_from_slice(head);
            b.truncate(start + len - 8);
            b.extend_from_slice(tail);
        }
    } else if let (4..8, Some(head), Some(tail)) =
        (len, bytes.first_chunk::<4>(), bytes.last_chunk::<4>())
    {
        let w = u64::from(u32::from_le_bytes(*head)) | u64::from(u32::from_le_bytes(*tail)) << 32;
        if escape_bits(w) != 0 {
            push_escaped(b, bytes);
        } else {
            b.extend_from_slice(head);
            b.truncate(start + len - 4);
            b.extend_from_slice(tail);
        }
    } else if let (1..4, Some(&first), Some(&last)) = (len, bytes.first(), bytes.last()) {
        // The first, middle and last bytes: all of them for up to 3 bytes.
        let mid = bytes.get(len / 2).copied().unwrap_or(first);
        let esc = |c: u8| JSON_ESCAPE[usize::from(c)];
        if esc(first) | esc(mid) | esc(last) != 0 {
            push_escaped(b, bytes);
        } else {
            b.extend_from_slice(&[first, mid, last]);
            b.truncate(start + len);
        }
    } else if needs_escape(bytes) {
        push_escaped(b, bytes);
    } else {
        b.extend_from_slice(bytes);
    }
    b.push(b'"');
}

/// Appends `v` as a JSON string, as [`push_json_str`] writes it, for one of the program's own
/// fixed names (`"C-STORE-RQ"`, `"acceptor"`, `"a_associate_rq"`): these need no escaping, so
/// they are copied without the check (debug builds make it).
#[inline]
pub fn push_name(b: &mut Vec<u8>, v: &'static str) {
    debug_assert!(!needs_escape(v.as_bytes()), "{v:?} needs escaping");
    b.reserve(v.len() + 2);
    b.push(b'"');
    b.extend_from_slice(v.as_bytes());
    b.push(b'"');
}

/// The body of [`push_json_str`] for a string with something to escape.
#[cold]
#[inline(never)]
fn push_escaped(b: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &c) in bytes.iter().enumerate() {
        let e = JSON_ESCAPE[usize::from(c)];
        if e == 0 {
            continue;
        }
        b.extend_from_slice(&bytes[start..i]);
        start = i + 1;
        if e == b'u' {
            b.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(c >> 4)],
                HEX[usize::from(c & 0xf)],
            ]);
        } else {
            b.extend_from_slice(&[b'\\', e]);
        }
    }
    b.extend_from_slice(&bytes[start..]);
}

/// The decimal text of each octet followed by a dot, and its length with the dot.
const OCTET_TEXT: [(u8, [u8; 4]); 256] = {
    let mut t = [(0u8, [0u8; 4]); 256];
    let mut o = 0;
    while o < 256 {
        let (h, d, u) = ((o / 100) as u8, (o / 10 % 10) as u8, (o % 10) as u8);
        t[o] = if o >= 100 {
            (4, [b'0' + h, b'0' + d, b'0' + u, b'.'])
        } else if o >= 10 {
            (3, [b'0' + d, b'0' + u, b'.', 0])
        } else {
            (2, [b'0' + u, b'.', 0, 0])
        };
        o += 1;
    }
    t
};

/// Appends `ip` as `Display` writes it (IPv4 dotted quad by hand; IPv6 through `Display`).
pub fn push_ip(b: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => {
            // 16 bytes appended (a store of fixed size), each octet's digits and a dot from a
            // table written over them in place, the unused tail cut (as in `push_u64_long`:
            // no stack buffer read back).
            let start = b.len();
            b.extend_from_slice(&[0u8; 16]);
            let Some(t) = b.last_chunk_mut::<16>() else {
                return;
            };
            let mut n = 0;
            for o in a.octets() {
                let (len, digits) = OCTET_TEXT[usize::from(o)];
                t[n..n + 4].copy_from_slice(&digits);
                n += usize::from(len);
            }
            b.truncate(start + n - 1);
        }
        IpAddr::V6(a) => push_ipv6(b, a),
    }
}

/// A member name for [`JsonObj`]: `json_key!("name")` is `,"name":` (the comma is left out
/// before the first member), made at compile time so that a member name is one copy.
#[macro_export]
macro_rules! json_key {
    ($name:literal) => {
        concat!(",\"", $name, "\":")
    };
}

/// Writes one JSON object member by member, as `serde_json` writes a struct (`{"a":1,"b":"x"}`),
/// for events written by hand. Keys are [`json_key!`]s: ASCII names with nothing to escape.
pub struct JsonObj<'b> {
    pub b: &'b mut Vec<u8>,
    first: bool,
}

impl<'b> JsonObj<'b> {
    #[inline]
    pub fn new(b: &'b mut Vec<u8>) -> JsonObj<'b> {
        b.push(b'{');
        JsonObj { b, first: true }
    }

    /// Writes the separator and `"k":` (`k` is a [`json_key!`]); the caller writes the value
    /// into the returned buffer. Inlined, so that each branch copies a key of known length.
    #[inline]
    pub fn key(&mut self, k: &str) -> &mut Vec<u8> {
        let k = k.as_bytes();
        if self.first {
            self.first = false;
            self.b.extend_from_slice(k.get(1..).unwrap_or(k));
        } else {
            self.b.extend_from_slice(k);
        }
        self.b
    }

    /// [`JsonObj::key`] for a key that may need escaping (map keys).
    pub fn key_escaped(&mut self, k: &str) -> &mut Vec<u8> {
        if !self.first {
            self.b.push(b',');
        }
        self.first = false;
        push_json_str(self.b, k);
        self.b.push(b':');
        self.b
    }

    /// [`JsonObj::key_escaped`] for a map key that is one of the program's own fixed names
    /// (see [`push_name`]).
    pub fn key_name(&mut self, k: &'static str) -> &mut Vec<u8> {
        if !self.first {
            self.b.push(b',');
        }
        self.first = false;
        push_name(self.b, k);
        self.b.push(b':');
        self.b
    }

    /// [`JsonObj::str`] of one of the program's own fixed names (see [`push_name`]).
    #[inline]
    pub fn name(&mut self, k: &str, v: &'static str) {
        let b = self.key(k);
        push_name(b, v);
    }

    #[inline]
    pub fn opt_name(&mut self, k: &str, v: Option<&'static str>) {
        if let Some(v) = v {
            self.name(k, v);
        }
    }

    #[inline]
    pub fn str(&mut self, k: &str, v: &str) {
        let b = self.key(k);
        push_json_str(b, v);
    }

    #[inline]
    pub fn opt_str(&mut self, k: &str, v: Option<&str>) {
        if let Some(v) = v {
            self.str(k, v);
        }
    }

    #[inline]
    pub fn u64(&mut self, k: &str, v: u64) {
        let b = self.key(k);
        push_u64(b, v);
    }

    #[inline]
    pub fn opt_u64(&mut self, k: &str, v: Option<u64>) {
        if let Some(v) = v {
            self.u64(k, v);
        }
    }

    #[inline]
    pub fn bool(&mut self, k: &str, v: bool) {
        let b = self.key(k);
        b.extend_from_slice(if v { b"true" } else { b"false" });
    }

    /// A JSON array under `k`, each item written by `f`.
    pub fn array<T>(
        &mut self,
        k: &str,
        items: impl IntoIterator<Item = T>,
        f: impl FnMut(&mut Vec<u8>, T),
    ) {
        let b = self.key(k);
        push_array(b, items, f);
    }

    #[inline]
    pub fn end(self) {
        self.b.push(b'}');
    }
}

/// A JSON array, each item written by `f`.
pub fn push_array<T>(
    b: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    mut f: impl FnMut(&mut Vec<u8>, T),
) {
    b.push(b'[');
    for (i, x) in items.into_iter().enumerate() {
        if i > 0 {
            b.push(b',');
        }
        f(b, x);
    }
    b.push(b']');
}

/// Appends `a` as `Display` writes it: `::ffff:` and dotted quad for an IPv4-mapped address;
/// else lower-case hex groups without leading zeros, the first longest run of two or more zero
/// groups written `::` (RFC 5952).
fn push_ipv6(b: &mut Vec<u8>, a: std::net::Ipv6Addr) {
    if let Some(v4) = a.to_ipv4_mapped() {
        b.extend_from_slice(b"::ffff:");
        return push_ip(b, IpAddr::V4(v4));
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let g = a.segments();
    let (best, best_len) = longest_zero_run(&g);
    // 39 bytes at most, and 4 spare: each group writes 4 bytes and keeps its digits.
    let mut t = [0u8; 44];
    let mut n = 0;
    let group = |t: &mut [u8; 44], n: &mut usize, s: u16| {
        let digits = (4 - s.leading_zeros() as usize / 4).max(1);
        // The significant digits moved to the top, then all four nibbles written.
        let s = (u32::from(s) << (4 * (4 - digits))) as u16;
        let at = (*n).min(40);
        t[at..at + 4].copy_from_slice(&[
            HEX[usize::from(s >> 12)],
            HEX[usize::from((s >> 8) & 0xf)],
            HEX[usize::from((s >> 4) & 0xf)],
            HEX[usize::from(s & 0xf)],
        ]);
        *n += digits;
    };
    let mut i = 0;
    while i < 8 {
        if best_len > 1 && i == best {
            t[n..n + 2].copy_from_slice(b"::");
            n += 2;
            i += best_len;
            continue;
        }
        if i > 0 && !(best_len > 1 && i == best + best_len) {
            t[n] = b':';
            n += 1;
        }
        group(&mut t, &mut n, g[i]);
        i += 1;
    }
    // All of `t` appended and the unused tail cut: a copy of fixed size.
    let keep = b.len() + n;
    b.extend_from_slice(&t);
    b.truncate(keep);
}

/// Where the first longest run of zero groups of `g` starts, and its length (0: none).
fn longest_zero_run(g: &[u16; 8]) -> (usize, usize) {
    let (mut best, mut best_len, mut cur, mut cur_len) = (0, 0, 0, 0);
    for (i, &s) in g.iter().enumerate() {
        if s == 0 {
            if cur_len == 0 {
                cur = i;
            }
            cur_len += 1;
            if cur_len > best_len {
                (best, best_len) = (cur, cur_len);
            }
        } else {
            cur_len = 0;
        }
    }
    (best, best_len)
}

/// The single owner of the event file.
pub struct EventWriter {
    out: Box<dyn Write + Send>,
    file: Option<std::fs::File>,
    pub written_events: u64,
}

impl EventWriter {
    /// `path` "-" is standard output. The buffer is [`SINK_FLUSH_BYTES`]: the sinks' spilled line
    /// buffers are at least that, so `BufWriter` writes them straight through instead of copying
    /// them first (~170 MB of events on bench.pcap); it only gathers the small ones.
    pub fn open(path: &std::path::Path) -> io::Result<EventWriter> {
        if path.as_os_str() == "-" {
            return Ok(EventWriter {
                out: Box::new(io::BufWriter::with_capacity(SINK_FLUSH_BYTES, io::stdout())),
                file: None,
                written_events: 0,
            });
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let f2 = f.try_clone()?;
        Ok(EventWriter {
            out: Box::new(io::BufWriter::with_capacity(SINK_FLUSH_BYTES, f)),
            file: Some(f2),
            written_events: 0,
        })
    }

    /// Write whole lines; returns how many (counted with `memchr`: a byte-by-byte count was
    /// most of the writer thread's time).
    pub fn write_lines(&mut self, lines: &[u8]) -> io::Result<u64> {
        let n = memchr::memchr_iter(b'\n', lines).count() as u64;
        self.written_events += n;
        self.out.write_all(lines)?;
        Ok(n)
    }

    /// Flush and fsync (files only).
    pub fn finish(&mut self) -> io::Result<()> {
        self.out.flush()?;
        if let Some(f) = &self.file {
            // Only regular files can be synced (/dev/null or a FIFO answers EINVAL).
            if f.metadata().map(|m| m.is_file()).unwrap_or(false) {
                f.sync_all()?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocols::AppProto;

    #[test]
    fn spilling_sink_hands_over_each_buffer_once_it_is_full() {
        use std::sync::{Arc, Mutex};
        let got = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
        let g = got.clone();
        let mut sink = EventSink::spilling(
            true,
            Box::new(move |l| {
                g.lock().unwrap().push(l);
                Vec::new()
            }),
        );
        for i in 0..10_000u64 {
            sink.emit_global(Ts(i as i64), "stats", &i);
        }
        assert!(sink.pending_bytes() < SINK_FLUSH_BYTES);
        let rest = sink.take();
        let got = got.lock().unwrap();
        assert!(got.len() > 3, "{} buffers", got.len());
        for b in got.iter() {
            // Full, and at most one event more.
            assert!(b.len() >= SINK_FLUSH_BYTES && b.len() < SINK_FLUSH_BYTES + 128);
        }
        let all: Vec<u8> = got.iter().flatten().chain(rest.iter()).copied().collect();
        assert_eq!(all.iter().filter(|&&c| c == b'\n').count(), 10_000);
        assert!(all.starts_with(b"{\"timestamp\""));
        // A sink without a spill keeps everything for its owner.
        let mut own = EventSink::new(true);
        for i in 0..10_000u64 {
            own.emit_global(Ts(i as i64), "stats", &i);
        }
        assert_eq!(own.take().len(), all.len());
    }

    /// The header as `write!` formats it (what `emit_with` replaced), for comparison.
    fn reference(ts: Ts, et: &str, flow: &FlowMeta, src: Direction, body: &str) -> String {
        let (s, d) = match src {
            Direction::ToServer => (flow.client, flow.server),
            Direction::ToClient => (flow.server, flow.client),
        };
        let mut o = format!(
            "{{\"timestamp\":\"{ts}\",\"event_type\":\"{et}\",\"flow_id\":{}",
            flow.flow_id
        );
        if let Some(v) = flow.vlan_outer() {
            o += &format!(",\"vlan\":[{v}");
            if let Some(v2) = flow.vlan_inner() {
                o += &format!(",{v2}");
            }
            o.push(']');
        }
        o += &format!(",\"src_ip\":\"{}\"", s.0);
        if flow.has_ports() {
            o += &format!(",\"src_port\":{}", s.1);
        }
        o += &format!(",\"dest_ip\":\"{}\"", d.0);
        if flow.has_ports() {
            o += &format!(",\"dest_port\":{}", d.1);
        }
        o += &format!(",\"proto\":\"{}\"", flow.proto_name());
        if let Some(app) = flow.app_proto {
            o += &format!(",\"app_proto\":\"{}\"", app.as_str());
        }
        o + &format!(",\"{et}\":{body}}}\n")
    }

    #[test]
    fn header_written_by_hand_equals_the_formatted_one() {
        let ips: [IpAddr; 6] = [
            "0.0.0.0".parse().unwrap(),
            "10.7.100.255".parse().unwrap(),
            "192.168.1.9".parse().unwrap(),
            "::".parse().unwrap(),
            "fe80::1:2ff:fe03:405".parse().unwrap(),
            "::ffff:10.0.0.1".parse().unwrap(),
        ];
        let mut n = 0u64;
        for (k, &a) in ips.iter().enumerate() {
            let b = ips[(k + 1) % ips.len()];
            for (proto, vlan, app) in [
                (6, [0, 0], Some(AppProto::Tls)),
                (17, [100, 0], None),
                (1, [4094, 7], Some(AppProto::Unknown)),
            ] {
                n += 1;
                let flow = FlowMeta {
                    flow_id: n * 0x0123_4567_89ab_cdef % (1 << 63),
                    proto,
                    client: (a, 65535),
                    server: (b, n as u16),
                    vlan,
                    client_mac: [0; 6],
                    server_mac: [0; 6],
                    to_group: false,
                    app_proto: app,
                };
                for src in [Direction::ToServer, Direction::ToClient] {
                    let ts = Ts::from_timeval(1_710_489_600 + n as i64 * 7919, n as i64 * 131);
                    let mut sink = EventSink::new(true);
                    sink.emit(ts, "flow", &flow, src, &serde_json::json!({"x": n}));
                    let got = String::from_utf8(sink.take()).unwrap();
                    let want = reference(ts, "flow", &flow, src, &format!("{{\"x\":{n}}}"));
                    assert_eq!(got, want);
                }
            }
        }
    }

    /// `push_json_str` as it was written before short strings were copied in fixed pieces.
    fn push_json_str_reference(b: &mut Vec<u8>, s: &str) {
        let bytes = s.as_bytes();
        b.push(b'"');
        if needs_escape(bytes) {
            push_escaped(b, bytes);
        } else {
            b.extend_from_slice(bytes);
        }
        b.push(b'"');
    }

    #[test]
    fn strings_written_as_before() {
        // Every length to 40 with each byte class (control, short escape, quote, backslash,
        // plain ASCII, DEL, multi-byte) at every position, after other bytes.
        let classes = [
            "\0", "\u{1f}", "\n", "\t", "\"", "\\", " ", "a", "~", "\u{7f}", "é", "\u{2028}", "😀",
        ];
        let (mut got, mut want) = (b"s=".to_vec(), b"s=".to_vec());
        for len in 0..40 {
            let plain: String = "abcdefghijklmnopqrstuvwxyz0123456789ABCD"[..len].to_string();
            push_json_str(&mut got, &plain);
            push_json_str_reference(&mut want, &plain);
            for c in classes {
                for at in 0..=len {
                    let mut t = plain.clone();
                    t.insert_str(at, c);
                    push_json_str(&mut got, &t);
                    push_json_str_reference(&mut want, &t);
                    got.push(b',');
                    want.push(b',');
                }
            }
        }
        assert_eq!(
            String::from_utf8(got).unwrap(),
            String::from_utf8(want).unwrap()
        );
    }

    proptest::proptest! {
        #[test]
        fn any_string_written_as_before(s in "(\\PC|[\\x00-\\x1f\"\\\\\\x7f])*", pre in 0usize..20) {
            let mut got = vec![b'x'; pre];
            let mut want = got.clone();
            push_json_str(&mut got, &s);
            push_json_str_reference(&mut want, &s);
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn strings_escaped_as_serde_json_escapes_them() {
        let mut cases: Vec<String> = (0u32..0x300)
            .filter_map(char::from_u32)
            .map(|c| format!("a{c}b{c}"))
            .collect();
        // Every position within and across 8-byte words, for the characters to escape and
        // their neighbours.
        for c in [
            '\0', '\u{1f}', ' ', '!', '"', '#', '[', '\\', ']', '\u{7f}', 'é', '\n',
        ] {
            for at in 0..20 {
                let mut t = "abcdefghijklmnopqrst".to_string();
                t.insert(at, c);
                cases.push(t.clone());
                t.insert(at / 2, c);
                cases.push(t);
            }
        }
        cases.extend(
            [
                "",
                "\"",
                "\\",
                "plain",
                "é\u{1}\u{7f}\u{2028}😀\"x\\y\n",
                "\u{0}\u{1f}",
            ]
            .map(String::from),
        );
        for s in cases {
            let mut b = Vec::new();
            push_json_str(&mut b, &s);
            assert_eq!(
                String::from_utf8(b).unwrap(),
                serde_json::to_string(&s).unwrap()
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn any_string_escaped_as_serde_json_escapes_it(s in "(\\PC|[\\x00-\\x1f\"\\\\]){0,40}") {
            let mut b = Vec::new();
            push_json_str(&mut b, &s);
            proptest::prop_assert_eq!(String::from_utf8(b).unwrap(), serde_json::to_string(&s).unwrap());
        }
    }

    #[test]
    fn ipv4_as_display_writes_it() {
        for o in 0..=255u8 {
            for ip in [
                [o, 0, 9, 10],
                [99, o, 100, 255],
                [1, 2, o, o],
                [255, 10, 0, o],
            ] {
                let ip = IpAddr::from(ip);
                let mut b = Vec::new();
                push_ip(&mut b, ip);
                assert_eq!(String::from_utf8(b).unwrap(), ip.to_string());
                // After other bytes (the tail cut is relative to them).
                let mut b = b"ip=".to_vec();
                push_ip(&mut b, ip);
                push_u64(&mut b, u64::from(ip.to_string().len() as u8));
                assert_eq!(
                    String::from_utf8(b).unwrap(),
                    format!("ip={ip}{}", ip.to_string().len())
                );
            }
        }
    }

    #[test]
    fn ipv6_written_as_before() {
        let vals = [0u16, 1, 0xf, 0x10, 0xab, 0xfff, 0x1000, 0xffff];
        // Every pattern of zero groups with every digit count in each place, after other bytes.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let (mut got, mut want) = (b"ip=".to_vec(), b"ip=".to_vec());
        for zeros in 0..=255u32 {
            for k in 0..vals.len() {
                let mut g = [0u16; 8];
                for (i, v) in g.iter_mut().enumerate() {
                    if zeros & (1 << i) == 0 {
                        *v = vals[(k + i) % vals.len()].max(1);
                    }
                }
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let mut r = g;
                for (i, v) in r.iter_mut().enumerate() {
                    if *v != 0 {
                        *v = (x >> (8 * i)) as u16 >> (x >> (4 * i) & 15);
                    }
                }
                for a in [
                    g,
                    r,
                    [0, 0, 0, 0, 0, 0xffff, g[6], g[7]],
                    [0, 0, 0, 0, 0, 0, r[6], r[7]],
                    [0, 0, 0, 0, 0xffff, 0, r[6], r[7]],
                ] {
                    let a = std::net::Ipv6Addr::from(a);
                    push_ip(&mut got, IpAddr::V6(a));
                    want.extend_from_slice(a.to_string().as_bytes());
                    got.push(b' ');
                    want.push(b' ');
                }
            }
        }
        assert_eq!(
            String::from_utf8(got).unwrap(),
            String::from_utf8(want).unwrap()
        );
    }

    proptest::proptest! {
        #[test]
        fn any_ipv6_written_as_before(g: [u16; 8], zeros: u8) {
            let mut g = g;
            for (i, v) in g.iter_mut().enumerate() {
                if zeros & (1 << i) != 0 {
                    *v = 0;
                }
            }
            let a = std::net::Ipv6Addr::from(g);
            let mut got = Vec::new();
            push_ip(&mut got, IpAddr::V6(a));
            proptest::prop_assert_eq!(got, a.to_string().into_bytes());
        }
    }

    #[test]
    fn ipv6_as_display_writes_it() {
        let vals = [0u16, 1, 0xf, 0x10, 0xab, 0x100, 0xfff, 0x1000, 0xffff];
        let mut n = 0u64;
        for zeros in 0..=255u32 {
            for k in 0..vals.len() {
                let mut g = [0u16; 8];
                for (i, x) in g.iter_mut().enumerate() {
                    if zeros & (1 << i) == 0 {
                        *x = vals[(k + i) % vals.len()].max(1);
                    }
                }
                n += 1;
                let mut cases = vec![std::net::Ipv6Addr::from(g)];
                // IPv4-mapped and -compatible forms.
                cases.push(std::net::Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, g[6], g[7]));
                cases.push(std::net::Ipv6Addr::new(0, 0, 0, 0, 0, 0, g[6], g[7]));
                for a in cases {
                    let mut b = Vec::new();
                    push_ip(&mut b, IpAddr::V6(a));
                    assert_eq!(String::from_utf8(b).unwrap(), a.to_string());
                }
            }
        }
        assert!(n > 2000);
    }

    /// [`push_u64`] as it was written before its digits were placed by hand (itoa), for
    /// comparison.
    fn push_u64_reference(b: &mut Vec<u8>, v: u64) {
        b.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }

    #[test]
    fn integers_written_as_itoa_writes_them() {
        let mut vals: Vec<u64> = (0u64..=100_000).collect();
        // Every power of ten and of two, and their neighbours.
        for k in 0..64 {
            for base in [1u64 << k, 10u64.saturating_pow(k)] {
                for d in [-2i64, -1, 0, 1, 2] {
                    vals.push(base.wrapping_add_signed(d));
                }
            }
        }
        vals.extend([u64::MAX - 1, u64::MAX, u64::from(u32::MAX), u64::MAX / 10]);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..100_000 {
            // xorshift, and its value cut to a random bit length.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            vals.push(x >> (x % 64));
        }
        let (mut got, mut want) = (b"n=".to_vec(), b"n=".to_vec());
        for v in vals {
            push_u64(&mut got, v);
            push_u64_reference(&mut want, v);
            got.push(b',');
            want.push(b',');
        }
        assert_eq!(got, want);
    }

    #[test]
    fn signed_integers_written_as_itoa_writes_them() {
        let mut vals: Vec<i64> = (-100_000i64..=100_000).collect();
        for k in 0..63 {
            for base in [1i64 << k, 10i64.saturating_pow(k)] {
                for d in [-2i64, -1, 0, 1, 2] {
                    vals.push(base.saturating_add(d));
                    vals.push(base.saturating_add(d).saturating_neg());
                }
            }
        }
        vals.extend([i64::MIN, i64::MIN + 1, i64::MAX - 1, i64::MAX]);
        for v in vals {
            let mut got = b"age=".to_vec();
            push_i64(&mut got, v);
            let want = format!("age={}", itoa::Buffer::new().format(v));
            assert_eq!(got, want.as_bytes(), "{v}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_integer_written_as_itoa_writes_it(v: u64, pre in 0usize..40) {
            let mut got = vec![b'x'; pre];
            let mut want = got.clone();
            push_u64(&mut got, v);
            push_u64_reference(&mut want, v);
            proptest::prop_assert_eq!(got, want);
        }

        #[test]
        fn any_signed_integer_written_as_itoa_writes_it(v: i64) {
            let mut got = Vec::new();
            push_i64(&mut got, v);
            let mut want = itoa::Buffer::new();
            proptest::prop_assert_eq!(got, want.format(v).as_bytes());
        }
    }

    #[test]
    fn integers_as_display_writes_them() {
        for v in (0u64..=1000).chain([65_535, u64::MAX - 1, u64::MAX]) {
            let mut b = Vec::new();
            push_u64(&mut b, v);
            assert_eq!(b, v.to_string().into_bytes());
        }
        for v in [0i64, -1, -86_400, i64::MIN, i64::MAX] {
            let mut b = Vec::new();
            push_i64(&mut b, v);
            assert_eq!(b, v.to_string().into_bytes());
        }
    }
}
