//! HL7 v2 messages: the header (MSH), the acknowledgement (MSA, ERR), device identifiers
//! (OBX-18, PRT-10, PRT-16), and which PHI-bearing fields are present, never their values.
//!
//! Input: the bytes of ONE message, as [`crate::mllp::Deframer`] delimits them (or a prefix of
//! it, when the caller's size cap cut it: `complete = false`). Output: a [`Message`] summary
//! whose strings are short (each value at most [`MAX_VALUE_CHARS`] characters, lists capped by
//! the `MAX_*` constants), ready to log. Its values borrow the message text where the text is
//! the value (the common case: recommended delimiters, no escape sequence); a value that had to
//! be rewritten (escapes decoded, other delimiters, Latin-1 text) is owned
//! ([`Message::into_owned`] makes the whole summary independent of the input).
//! [`parse_message`] never fails and never panics: what cannot be read is skipped and reported
//! in [`Message::anomalies`].
//!
//! Limits and recoverable failures, first:
//! - text that is not UTF-8 (Latin-1 names are common) is read as ISO-8859-1, which maps
//!   every byte to one character, so the structure is intact and nothing is rejected
//!   (`anomalies.non_utf8`);
//! - delimiters come from MSH-1/MSH-2 ([`delimiters`]); unusable ones fall back to the
//!   recommended set (`anomalies.bad_delimiters`);
//! - the segment terminator is CR (v2.5.1 2.5.1); LF and CR LF are read as terminators too and
//!   reported (`anomalies.non_cr_terminator`); empty lines are skipped;
//! - a line that is not a segment (no 3-character alphanumeric id followed by the field
//!   separator) is skipped and counted (`anomalies.malformed_segments`); the rest of the
//!   message is still read;
//! - a message whose first segment is not MSH (or a batch header FHS/BHS) is `anomalies.no_msh`;
//!   the first MSH further down still gives the header.
//!
//! Structure: the crate splits segments (on CR, LF, CR LF), fields (on MSH-1), repetitions,
//! components and subcomponents itself, lazily and without allocating (`memchr` and a
//! word-at-a-time scan: a result message has a thousand OBX lines to step over), at most
//! [`MAX_FIELD_PARSE_BYTES`] of a field. The splitting is the one of `hl7-parser`'s field
//! parser (`parse_field_with_separators`: repetitions, then components, then subcomponents, a
//! missing subcomponent separator standing for NUL), which property tests hold it to ([`text_of`]
//! is the text `hl7-parser`'s structures give). It does not use `hl7-parser`'s whole-message
//! parser, because (0.3.0) that parser stops silently at the first segment it cannot parse and
//! returns the segments before it (one empty line or odd segment id hides the MSA or PID that
//! follow), and it takes the 5 characters after `MSH` as delimiters whatever MSH-2 holds (a
//! v2.7 `^~\&#` shifts every MSH field). Escape sequences are decoded here ([`unescape`])
//! rather than by `hl7-parser`'s `Separators::decode`, which indexes the string by character
//! count and panics on non-ASCII text before an escape sequence.
//!
//! Privacy: values are taken only from the header, MSA-1/MSA-2, the codes of ERR segments and
//! device identifiers. PID, NK1, GT1, IN1, ... are only tested for presence ([`phi`]).

pub mod delimiters;
pub mod phi;

use std::borrow::Cow;

use hl7_parser::message::Field;

pub use delimiters::{DelimiterError, Delimiters};

/// Characters kept of any value copied into a [`Message`] (application names, control ids,
/// device ids). HL7 gives these fields lengths of 20 to 427 (v2.5.1 HD, ST(20), EI); 256 keeps
/// every real value and bounds what a hostile one costs.
pub const MAX_VALUE_CHARS: usize = 256;
/// Characters of an ERR code, code system or location component. Table codes are short; a
/// longer value is free text (which could carry PHI) and is dropped.
pub const MAX_CODE_CHARS: usize = 32;
/// Segment ids kept, in order ([`Message::segment_count`] has the total). Real messages have
/// tens of segments; a long ORU has thousands of OBX, which add nothing to the list.
pub const MAX_SEGMENT_IDS: usize = 64;
/// Device identifiers kept per message (distinct ones; a 1,200-OBX ORU from one monitor has 1).
pub const MAX_DEVICES: usize = 16;
/// ERR segments kept per message.
pub const MAX_ERRORS: usize = 16;
/// Bytes of one field read (split into repetitions, components and subcomponents). The fields
/// read are identifiers and codes of a few hundred bytes at most.
pub const MAX_FIELD_PARSE_BYTES: usize = 4096;

/// A segment id: three ASCII letters or digits (v2.5.1 2.5.2), e.g. `MSH`, `OBX`, `ZPD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SegmentId(pub [u8; 3]);

impl SegmentId {
    pub const MSH: SegmentId = SegmentId(*b"MSH");
    pub const MSA: SegmentId = SegmentId(*b"MSA");
    pub const ERR: SegmentId = SegmentId(*b"ERR");
    pub const OBX: SegmentId = SegmentId(*b"OBX");
    pub const PRT: SegmentId = SegmentId(*b"PRT");
    pub const FHS: SegmentId = SegmentId(*b"FHS");
    pub const BHS: SegmentId = SegmentId(*b"BHS");

    /// The id of a segment line, if it starts with one followed by the field separator or
    /// nothing.
    #[inline]
    pub fn of_line(line: &str, field: char) -> Option<SegmentId> {
        let (&id, rest) = line.as_bytes().split_first_chunk::<3>()?;
        // Called for every line (a result message has thousands): the three tests unrolled.
        let [a, b, c] = id;
        if !(a.is_ascii_alphanumeric() && b.is_ascii_alphanumeric() && c.is_ascii_alphanumeric()) {
            return None;
        }
        match rest.first() {
            None => Some(SegmentId(id)),
            Some(&c) if field.is_ascii() => (c == field as u8).then_some(SegmentId(id)),
            // The three id bytes are ASCII: byte 3 is a character boundary.
            Some(_) => line[3..].starts_with(field).then_some(SegmentId(id)),
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII alphanumerics get in (of_line); the fallback is unreachable.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

/// [`SegmentId::of_line`] for an ASCII field separator `sep` (every one [`Delimiters`] reads),
/// on the line's bytes: what [`parse_text`] asks of every line.
#[inline(always)]
fn id_of_line(line: &[u8], sep: u8) -> Option<SegmentId> {
    match line {
        [a, b, c, rest @ ..]
            if a.is_ascii_alphanumeric()
                && b.is_ascii_alphanumeric()
                && c.is_ascii_alphanumeric()
                && rest.first().is_none_or(|&x| x == sep) =>
        {
            Some(SegmentId([*a, *b, *c]))
        }
        _ => None,
    }
}

impl std::fmt::Display for SegmentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A list of at most `N` items kept inline (no heap allocation per message), read as a slice.
#[derive(Clone, Copy)]
pub struct Capped<T: Copy + Default, const N: usize> {
    items: [T; N],
    len: usize,
}

impl<T: Copy + Default, const N: usize> Capped<T, N> {
    /// Appends `v`; returns false (and keeps nothing) when the list is full.
    pub fn push(&mut self, v: T) -> bool {
        match self.items.get_mut(self.len) {
            Some(slot) => {
                *slot = v;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    pub fn as_slice(&self) -> &[T] {
        &self.items[..self.len]
    }
}

impl<T: Copy + Default, const N: usize> Default for Capped<T, N> {
    fn default() -> Self {
        Capped {
            items: [T::default(); N],
            len: 0,
        }
    }
}

impl<T: Copy + Default, const N: usize> std::ops::Deref for Capped<T, N> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<'c, T: Copy + Default, const N: usize> IntoIterator for &'c Capped<T, N> {
    type Item = &'c T;
    type IntoIter = std::slice::Iter<'c, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl<T: Copy + Default + std::fmt::Debug, const N: usize> std::fmt::Debug for Capped<T, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl<T: Copy + Default + PartialEq, const N: usize> PartialEq for Capped<T, N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T: Copy + Default + Eq, const N: usize> Eq for Capped<T, N> {}

impl<T: Copy + Default + PartialEq, const N: usize, const M: usize> PartialEq<[T; M]>
    for Capped<T, N>
{
    fn eq(&self, other: &[T; M]) -> bool {
        self.as_slice() == other.as_slice()
    }
}

/// The names of the PHI-bearing fields and segments present in a message, by their place in
/// [`phi::all_names`] (one bit each), read in that order.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct PhiFields(u32);

const _: () = assert!(phi::MAX_NAMES <= 32);

impl PhiFields {
    /// Marks name `k` of [`phi::all_names`] present.
    fn set(&mut self, k: usize) {
        if k < phi::MAX_NAMES {
            self.0 |= 1 << k;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }

    /// The names present, in [`phi::all_names`] order.
    pub fn iter(&self) -> impl Iterator<Item = &'static str> + '_ {
        // The set bits, lowest first.
        let mut bits = self.0;
        std::iter::from_fn(move || {
            let k = bits.trailing_zeros() as usize;
            bits &= bits.wrapping_sub(1);
            phi::NAMES.get(k).copied()
        })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.iter().any(|n| n == name)
    }
}

impl std::fmt::Debug for PhiFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<const N: usize> PartialEq<[&str; N]> for PhiFields {
    fn eq(&self, other: &[&str; N]) -> bool {
        self.iter().eq(other.iter().copied())
    }
}

/// A value of the message: borrowed from its text, or owned when it had to be rewritten.
pub type Text<'a> = Cow<'a, str>;

fn owned(v: Option<Text<'_>>) -> Option<Text<'static>> {
    v.map(|t| Cow::Owned(t.into_owned()))
}

/// The message header, MSH (v2.5.1 2.14.9). Values are decoded (escape sequences resolved) and
/// written with the recommended delimiters `^~&` whatever the message used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Msh<'a> {
    /// MSH-3 Sending Application (HD).
    pub sending_application: Option<Text<'a>>,
    /// MSH-4 Sending Facility (HD).
    pub sending_facility: Option<Text<'a>>,
    /// MSH-5 Receiving Application.
    pub receiving_application: Option<Text<'a>>,
    /// MSH-6 Receiving Facility.
    pub receiving_facility: Option<Text<'a>>,
    /// MSH-7 Date/Time of Message (TS).
    pub message_time: Option<Text<'a>>,
    /// MSH-8 Security is filled (its value is never copied).
    pub security_present: bool,
    /// MSH-9.1 Message Code, e.g. `ADT`.
    pub message_code: Option<Text<'a>>,
    /// MSH-9.2 Trigger Event, e.g. `A01`.
    pub trigger_event: Option<Text<'a>>,
    /// MSH-9.3 Message Structure, e.g. `ADT_A01`.
    pub message_structure: Option<Text<'a>>,
    /// `code^event` (e.g. `ADT^A01`), or the code alone when there is no event, `^event`
    /// when there is no code.
    pub message_type: Option<Text<'a>>,
    /// MSH-10 Message Control ID.
    pub control_id: Option<Text<'a>>,
    /// MSH-11 Processing ID (P production, T training, D debugging).
    pub processing_id: Option<Text<'a>>,
    /// MSH-12 Version ID, e.g. `2.5.1`.
    pub version: Option<Text<'a>>,
    /// MSH-18 Character Set, first repetition, e.g. `8859/1`, `UNICODE UTF-8`.
    pub charset: Option<Text<'a>>,
    /// Bit `n` (3 to 18) set: the value of MSH-`n` holds no byte that a JSON string escapes
    /// (below 0x20, `"`, `\`), so that it can be written as it is (bit 9 for MSH-9's message
    /// type, code, event and structure). Set when the reader saw it (a header of the
    /// recommended delimiters without such a byte after MSH-2); a clear bit says nothing.
    pub json_plain: u32,
}

impl Msh<'_> {
    pub fn into_owned(self) -> Msh<'static> {
        Msh {
            sending_application: owned(self.sending_application),
            sending_facility: owned(self.sending_facility),
            receiving_application: owned(self.receiving_application),
            receiving_facility: owned(self.receiving_facility),
            message_time: owned(self.message_time),
            security_present: self.security_present,
            message_code: owned(self.message_code),
            trigger_event: owned(self.trigger_event),
            message_structure: owned(self.message_structure),
            message_type: owned(self.message_type),
            control_id: owned(self.control_id),
            processing_id: owned(self.processing_id),
            version: owned(self.version),
            charset: owned(self.charset),
            json_plain: self.json_plain,
        }
    }
}

/// `code^event`, `code`, `^event`: MSH-9.1 and MSH-9.2 as one value. Borrowed from MSH-9 when
/// the field starts with exactly that text.
fn message_type<'a>(
    raw: Option<&'a str>,
    code: Option<&Text<'a>>,
    event: Option<&Text<'a>>,
) -> Option<Text<'a>> {
    match (code, event) {
        (Some(c), Some(e)) => {
            let n = c.len() + 1 + e.len();
            match raw.and_then(|r| r.get(..n)) {
                Some(p)
                    if p.starts_with(&**c)
                        && p[c.len()..].starts_with('^')
                        && p.ends_with(&**e) =>
                {
                    Some(Cow::Borrowed(p))
                }
                _ => Some(Cow::Owned(format!("{c}^{e}"))),
            }
        }
        (Some(c), None) => Some(c.clone()),
        (None, Some(e)) => Some(Cow::Owned(format!("^{e}"))),
        (None, None) => None,
    }
}

/// The acknowledgement, MSA (v2.5.1 2.14.8).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Msa<'a> {
    /// MSA-1 Acknowledgment Code (table 0008: AA, AE, AR, CA, CE, CR).
    pub ack_code: Option<Text<'a>>,
    /// MSA-2 Message Control ID of the message acknowledged.
    pub control_id: Option<Text<'a>>,
}

/// An ERR segment (v2.5.1 2.14.5), codes only: ERR-8 User Message, ERR-7 Diagnostic
/// Information and the text components of the codes are free text and never copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrInfo<'a> {
    /// ERR-2 Error Location (ERL: segment^sequence^field^repetition^component^subcomponent), or
    /// the first three components of v2.3/2.4 ERR-1 (ELD).
    pub location: Option<Text<'a>>,
    /// ERR-3.1 HL7 Error Code (table 0357), or ERR-1.4.1 before v2.5.
    pub code: Option<Text<'a>>,
    /// ERR-3.3 Name of Coding System (e.g. HL70357), or ERR-1.4.3.
    pub code_system: Option<Text<'a>>,
    /// ERR-4 Severity (table 0516: E, F, I, W; one letter or nothing).
    pub severity: Option<Text<'a>>,
}

/// Where a device identifier was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceSource {
    /// OBX-18 Equipment Instance Identifier (v2.5.1 7.4.2.18).
    Obx18,
    /// PRT-10 Participation Device (v2.7 7.4.4.10).
    Prt10,
    /// PRT-16 Participation Device Identifier, the UDI device identifier (v2.8.2 7.4.4.16).
    Prt16,
}

impl DeviceSource {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceSource::Obx18 => "OBX-18",
            DeviceSource::Prt10 => "PRT-10",
            DeviceSource::Prt16 => "PRT-16",
        }
    }
}

/// A device identifier (EI: Entity Identifier ^ Namespace ID ^ Universal ID ^ Universal ID
/// Type). IHE PCD-01 fills OBX-18 as model ^ vendor ^ EUI-64 ^ `EUI-64`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Device<'a> {
    pub source: DeviceSource,
    pub id: Option<Text<'a>>,
    pub namespace: Option<Text<'a>>,
    pub universal_id: Option<Text<'a>>,
    pub universal_id_type: Option<Text<'a>>,
}

/// What was off in a message. None of it stops the parse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Anomalies {
    /// Not valid UTF-8: read as ISO-8859-1.
    pub non_utf8: bool,
    /// Segments ended by LF or CR LF instead of CR.
    pub non_cr_terminator: bool,
    /// The first segment is not MSH (nor FHS/BHS).
    pub no_msh: bool,
    /// MSH-1/MSH-2 could not be read strictly.
    pub bad_delimiters: Option<DelimiterError>,
    /// Lines that are not segments.
    pub malformed_segments: usize,
}

impl Anomalies {
    pub fn any(&self) -> bool {
        self.non_utf8
            || self.non_cr_terminator
            || self.no_msh
            || self.bad_delimiters.is_some()
            || self.malformed_segments > 0
    }
}

/// The summary of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message<'a> {
    pub delimiters: Delimiters,
    /// The first MSH.
    pub msh: Option<Msh<'a>>,
    /// The first MSA.
    pub msa: Option<Msa<'a>>,
    pub errors: Vec<ErrInfo<'a>>,
    /// Segment ids in order, at most [`MAX_SEGMENT_IDS`].
    pub segment_ids: Capped<SegmentId, MAX_SEGMENT_IDS>,
    /// All segments (lines with a segment id).
    pub segment_count: usize,
    /// PHI-bearing fields and segments present ([`phi`]), in [`phi::all_names`] order.
    pub phi_fields: PhiFields,
    /// Distinct device identifiers, at most [`MAX_DEVICES`].
    pub devices: Vec<Device<'a>>,
    pub anomalies: Anomalies,
}

impl Message<'_> {
    /// The same summary, owning all its values.
    pub fn into_owned(self) -> Message<'static> {
        Message {
            delimiters: self.delimiters,
            msh: self.msh.map(Msh::into_owned),
            msa: self.msa.map(|a| Msa {
                ack_code: owned(a.ack_code),
                control_id: owned(a.control_id),
            }),
            errors: self
                .errors
                .into_iter()
                .map(|e| ErrInfo {
                    location: owned(e.location),
                    code: owned(e.code),
                    code_system: owned(e.code_system),
                    severity: owned(e.severity),
                })
                .collect(),
            segment_ids: self.segment_ids,
            segment_count: self.segment_count,
            phi_fields: self.phi_fields,
            devices: self
                .devices
                .into_iter()
                .map(|d| Device {
                    source: d.source,
                    id: owned(d.id),
                    namespace: owned(d.namespace),
                    universal_id: owned(d.universal_id),
                    universal_id_type: owned(d.universal_id_type),
                })
                .collect(),
            anomalies: self.anomalies,
        }
    }
}

/// Decodes the message text: UTF-8 when it is, else ISO-8859-1 (one character per byte).
pub fn decode_text(bytes: &[u8]) -> (Cow<'_, str>, bool) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (Cow::Borrowed(s), false),
        Err(_) => (Cow::Owned(bytes.iter().map(|&b| b as char).collect()), true),
    }
}

/// The segment lines of message text: split on CR, LF and CR LF, empty lines skipped, lazily
/// (nothing is allocated per line). Also says whether any LF was seen (LF or CR LF used as a
/// terminator). With `complete = false`, the text after the last terminator (a segment cut by
/// the caller's cap) is left out.
pub fn segment_lines(text: &str, complete: bool) -> (impl Iterator<Item = &str> + Clone, bool) {
    let non_cr = memchr::memchr(b'\n', text.as_bytes()).is_some();
    let text = match complete {
        true => text,
        false => match memchr::memrchr2(b'\r', b'\n', text.as_bytes()) {
            Some(p) => &text[..p],
            None => text,
        },
    };
    (
        Lines {
            rest: Some(text),
            lf: false,
        },
        non_cr,
    )
}

/// [`segment_lines`] for [`parse_text`]: whether an LF was seen is told by the lines once they
/// have all been read ([`Lines::lf`]) rather than by a search of the whole text first.
fn lines_of(text: &str, complete: bool) -> Lines<'_> {
    let (text, lf) = match complete {
        true => (text, false),
        // The text after the last terminator holds neither CR nor LF; the terminator itself
        // is left out of the lines.
        false => match memchr::memrchr2(b'\r', b'\n', text.as_bytes()) {
            Some(p) => (&text[..p], text.as_bytes().get(p) == Some(&b'\n')),
            None => (text, false),
        },
    };
    Lines {
        rest: Some(text),
        lf,
    }
}

/// The non-empty pieces of a text between CR and LF characters (what
/// `text.split(['\r', '\n']).filter(|l| !l.is_empty())` gives, found with `memchr`).
#[derive(Clone)]
struct Lines<'a> {
    rest: Option<&'a str>,
    /// An LF ended one of the lines read so far (LF or CR LF terminators).
    lf: bool,
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        loop {
            let rest = self.rest?;
            let (line, next) = match memchr::memchr2(b'\r', b'\n', rest.as_bytes()) {
                // CR and LF are ASCII: `p` and `p + 1` are character boundaries.
                Some(p) => {
                    self.lf |= rest.as_bytes().get(p) == Some(&b'\n');
                    (&rest[..p], Some(&rest[p + 1..]))
                }
                None => (rest, None),
            };
            self.rest = next;
            if !line.is_empty() {
                return Some(line);
            }
        }
    }
}

const LANES_LO: u64 = 0x0101_0101_0101_0101;
const LANES_HI: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte lane of `x` that is zero (exactly: no carry crosses lanes, as
/// `0x7f + 0x7f < 0x100`).
fn zero_lanes(x: u64) -> u64 {
    !(((x & !LANES_HI) + !LANES_HI) | x) & LANES_HI
}

/// The eight bytes of a chunk as a little-endian word.
fn word(chunk: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(chunk);
    u64::from_le_bytes(w)
}

/// Calls `f` with each position of `byte` in `hay`, in order, until it returns false. Eight
/// bytes at a time (a field separator every ten bytes or so: cheaper than a `memchr` call per
/// separator).
fn each_position(hay: &[u8], byte: u8, mut f: impl FnMut(usize) -> bool) {
    let pattern = LANES_LO * u64::from(byte);
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for c in &mut chunks {
        let mut found = zero_lanes(word(c) ^ pattern);
        while found != 0 {
            if !f(base + (found.trailing_zeros() / 8) as usize) {
                return;
            }
            found &= found - 1;
        }
        base += 8;
    }
    for (i, &b) in chunks.remainder().iter().enumerate() {
        if b == byte && !f(base + i) {
            return;
        }
    }
}

/// The position of occurrence `k` (from 0) of `byte` in `hay`: blocks of 32 bytes with fewer
/// skipped by counting their matches (a count the compiler turns into vector compares: an
/// OBX-18 lies some 150 bytes into its line), then words, as in [`nth_position_words`].
fn nth_position(hay: &[u8], byte: u8, mut k: usize) -> Option<usize> {
    let mut blocks = hay.chunks_exact(32);
    let mut base = 0;
    for c in &mut blocks {
        // At most 32 matches: the sum fits a byte.
        let n = usize::from(c.iter().fold(0u8, |a, &b| a + u8::from(b == byte)));
        if k < n {
            break;
        }
        k -= n;
        base += 32;
    }
    nth_position_words(hay.get(base..)?, byte, k).map(|p| base + p)
}

/// [`nth_position`] a word at a time: whole words of fewer skipped by counting their matches.
fn nth_position_words(hay: &[u8], byte: u8, mut k: usize) -> Option<usize> {
    let pattern = LANES_LO * u64::from(byte);
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for c in &mut chunks {
        let mut found = zero_lanes(word(c) ^ pattern);
        // One bit per matching lane, summed into the top byte (at most 8: no overflow).
        let n = ((found >> 7).wrapping_mul(LANES_LO) >> 56) as usize;
        if k < n {
            for _ in 0..k {
                found &= found - 1;
            }
            return Some(base + (found.trailing_zeros() / 8) as usize);
        }
        k -= n;
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == byte)
        .nth(k)
        .map(|(i, _)| base + i)
}

/// How many times `byte` occurs in `hay`: blocks of 32 bytes (a count the compiler turns into
/// vector compares), then words, then bytes.
fn count_byte(hay: &[u8], byte: u8) -> usize {
    let mut blocks = hay.chunks_exact(32);
    let mut n = 0;
    for c in &mut blocks {
        // At most 32 matches: the sum fits a byte.
        n += usize::from(c.iter().fold(0u8, |a, &b| a + u8::from(b == byte)));
    }
    let pattern = LANES_LO * u64::from(byte);
    let mut words = blocks.remainder().chunks_exact(8);
    for c in &mut words {
        let found = zero_lanes(word(c) ^ pattern);
        // One bit per matching lane, summed into the top byte (at most 8: no overflow).
        n += ((found >> 7).wrapping_mul(LANES_LO) >> 56) as usize;
    }
    n + words.remainder().iter().filter(|&&b| b == byte).count()
}

/// Whether `body` (a segment line after its id and first separator) ends with `tail` and holds
/// exactly `k` separators `sep` before it, the last one right before it: then its piece `k`
/// (from 0, split on `sep`) is the first piece of `tail`.
fn same_tail(body: &str, tail: &str, sep: char, k: usize) -> bool {
    let Some(sep) = u8::try_from(sep).ok().filter(u8::is_ascii) else {
        return false;
    };
    let (b, t) = (body.as_bytes(), tail.as_bytes());
    let Some(head) = b.len().checked_sub(t.len()).and_then(|p| b.get(..p)) else {
        return false;
    };
    head.last() == Some(&sep) && b.ends_with(t) && count_byte(head, sep) == k
}

/// `s.split(sep)`, the separator found byte-wise when it is ASCII (every delimiter
/// [`Delimiters`] reads is): values are short, a plain loop beats the general searcher.
#[derive(Clone)]
struct Pieces<'a> {
    rest: Option<&'a str>,
    sep: char,
}

fn pieces(s: &str, sep: char) -> Pieces<'_> {
    Pieces { rest: Some(s), sep }
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        let found = match u8::try_from(self.sep) {
            Ok(b) if b.is_ascii() => rest.bytes().position(|x| x == b).map(|p| (p, p + 1)),
            _ => rest.find(self.sep).map(|p| (p, p + self.sep.len_utf8())),
        };
        match found {
            // `p` and `q` surround the separator: character boundaries.
            Some((p, q)) => {
                self.rest = rest.get(q..);
                rest.get(..p)
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

/// Piece `k` (from 0) of `text` split on `sep`, as `text.split(sep).nth(k)`. The delimiters of
/// a message are ASCII ([`Delimiters`] reads no other), so the separator is found byte-wise.
fn nth_piece(text: &str, sep: char, k: usize) -> Option<&str> {
    if !sep.is_ascii() {
        return text.split(sep).nth(k);
    }
    let b = text.as_bytes();
    let start = match k.checked_sub(1) {
        None => 0,
        Some(k) => nth_position(b, sep as u8, k)? + 1,
    };
    let end = memchr::memchr(sep as u8, b.get(start..)?).map_or(b.len(), |e| start + e);
    text.get(start..end)
}

/// One segment line and what is needed to read its fields.
#[derive(Clone, Copy)]
struct Seg<'a> {
    d: Delimiters,
    /// The text after the id and the first field separator (`None` for a bare id).
    body: Option<&'a str>,
    /// The number of the first field of the body: MSH-2 (MSH-1 is the separator itself), or
    /// field 1.
    first: usize,
}

impl<'a> Seg<'a> {
    fn new(line: &'a str, id: SegmentId, d: Delimiters) -> Seg<'a> {
        Seg {
            d,
            // of_line guarantees "XXX" then the separator (ASCII), or just "XXX".
            body: line.get(4..),
            first: if id == SegmentId::MSH { 2 } else { 1 },
        }
    }

    /// The raw text of field `n` (v2.5.1 numbering: for MSH, MSH-2 is the first text after the
    /// field separator, MSH-1 being the separator itself). Found by splitting on the field
    /// separator, without allocating.
    fn raw(&self, n: usize) -> Option<&'a str> {
        nth_piece(self.body?, self.d.field, n.checked_sub(self.first)?)
    }

    /// Calls `f` with each field number and raw text, in order (as [`Seg::raw`] gives them),
    /// until it returns false.
    fn each_field(&self, mut f: impl FnMut(usize, &'a str) -> bool) {
        let Some(body) = self.body else {
            return;
        };
        let mut n = self.first;
        let mut start = 0;
        let sep = self.d.field;
        let mut piece = |i: usize| {
            let go = body.get(start..i).is_some_and(|raw| f(n, raw));
            n += 1;
            start = i + sep.len_utf8();
            go
        };
        let mut go = true;
        if sep.is_ascii() {
            each_position(body.as_bytes(), sep as u8, |i| {
                go = piece(i);
                go
            });
        } else {
            for (i, _) in body.match_indices(sep) {
                go = piece(i);
                if !go {
                    break;
                }
            }
        }
        if go {
            piece(body.len());
        }
    }

    /// [`Seg::each_field`] with each field's bytes (no character-boundary tests: for fields
    /// only tested with [`phi::has_value_bytes`]).
    fn each_field_bytes(&self, mut f: impl FnMut(usize, &'a [u8]) -> bool) {
        let Some(body) = self.body else {
            return;
        };
        let sep = self.d.field;
        if !sep.is_ascii() {
            return self.each_field(|n, raw| f(n, raw.as_bytes()));
        }
        let b = body.as_bytes();
        let mut n = self.first;
        let mut start = 0;
        let mut go = true;
        each_position(b, sep as u8, |i| {
            go = f(n, b.get(start..i).unwrap_or_default());
            n += 1;
            start = i + 1;
            go
        });
        if go {
            f(n, b.get(start..).unwrap_or_default());
        }
    }

    /// Field `n` cut to [`MAX_FIELD_PARSE_BYTES`]; `None` when absent or empty.
    fn raw_capped(&self, n: usize) -> Option<&'a str> {
        cap_field(self.raw(n)?)
    }

    /// Field `n` as text, as [`text_of`] gives it: repetitions joined with `~`, components with
    /// `^`, subcomponents with `&`, escape sequences decoded; `None` when it holds nothing.
    /// (The reader takes the fields it needs in one pass; the tests check it against this.)
    #[cfg(test)]
    fn text(&self, n: usize) -> Option<Text<'a>> {
        field_text(self.raw_capped(n)?, &self.d)
    }
}

/// What a piece of a field is, for [`level_text`]: which separators split it further.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    /// A whole field: repetitions, components, subcomponents.
    Field,
    /// One repetition: components, subcomponents.
    Repeat,
    /// One component: subcomponents.
    Component,
}

impl Level {
    /// The characters [`finish`] trims from the end of a value of this level.
    fn trailing(self) -> &'static [char] {
        match self {
            Level::Field => &['^', '~', '&'],
            Level::Repeat => &['^', '&'],
            Level::Component => &['&'],
        }
    }
}

/// The subcomponent separator as `hl7-parser` splits on it: NUL (which never occurs in HL7
/// text) when the message has none ([`Delimiters::separators`]).
fn sub_sep(d: &Delimiters) -> char {
    d.subcomponent.unwrap_or('\0')
}

/// Whether `s` written as text (pieces joined with the recommended delimiters, escapes decoded)
/// is `s` itself: it holds no escape character, and each delimiter that splits it is the
/// recommended one or absent from it. True of nearly every value.
fn verbatim(s: &str, d: &Delimiters) -> bool {
    // Values are short: a plain loop beats a `memchr` call. Delimiters are ASCII.
    let has = |c: char| match u8::try_from(c) {
        Ok(b) if b.is_ascii() => s.bytes().any(|x| x == b),
        _ => s.contains(c),
    };
    if d.escape.is_some_and(has) {
        return false;
    }
    [(d.component, '^'), (d.repetition, '~'), (sub_sep(d), '&')]
        .iter()
        .all(|&(c, standard)| c == standard || !has(c))
}

/// Appends the text of `s` at `level` to `out`: repetitions joined with `~`, components with
/// `^`, subcomponents with `&`, each subcomponent unescaped. Returns true once `out` is past
/// `4 * MAX_VALUE_CHARS` bytes (then over [`MAX_VALUE_CHARS`] characters: the rest would be
/// cut by [`finish`] anyway).
fn write_text(s: &str, d: &Delimiters, level: Level, out: &mut String) -> bool {
    let (sep, joiner, below) = match level {
        Level::Field => (d.repetition, '~', Some(Level::Repeat)),
        Level::Repeat => (d.component, '^', Some(Level::Component)),
        Level::Component => (sub_sep(d), '&', None),
    };
    for (i, piece) in pieces(s, sep).enumerate() {
        if i > 0 {
            out.push(joiner);
        }
        match below {
            Some(l) => {
                if write_text(piece, d, l, out) {
                    return true;
                }
            }
            None => {
                unescape(piece, d, out);
                if out.len() > 4 * MAX_VALUE_CHARS {
                    return true;
                }
            }
        }
    }
    false
}

/// A raw field cut to [`MAX_FIELD_PARSE_BYTES`]; `None` when empty.
fn cap_field(raw: &str) -> Option<&str> {
    if raw.is_empty() {
        return None;
    }
    if raw.len() <= MAX_FIELD_PARSE_BYTES {
        return Some(raw);
    }
    let mut end = raw.len().min(MAX_FIELD_PARSE_BYTES);
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    raw.get(..end)
}

/// A raw field (cut by [`cap_field`]) as text ([`Seg::text`]).
fn field_text<'a>(raw: &'a str, d: &Delimiters) -> Option<Text<'a>> {
    if let Some(t) = plain_field_text(raw, d) {
        return t.map(Cow::Borrowed);
    }
    if !phi::has_value(raw, d) {
        return None;
    }
    level_text(raw, d, Level::Field)
}

/// [`PLAIN_CLASS`] bits: a byte that is a value (not a delimiter of `|^~\&` nor a space), the
/// escape character `\`.
const VALUE: u8 = 1;
const ESCAPE: u8 = 2;

/// The class of each byte under the recommended delimiters `|^~\&` ([`plain_field_text`]).
const PLAIN_CLASS: [u8; 256] = {
    let mut t = [VALUE; 256];
    t[b'|' as usize] = 0;
    t[b'^' as usize] = 0;
    t[b'~' as usize] = 0;
    t[b'&' as usize] = 0;
    t[b' ' as usize] = 0;
    t[b'\\' as usize] = VALUE | ESCAPE;
    t
};

/// What [`phi::has_value`] then [`level_text`] at [`Level::Field`] give for field `raw`, found
/// in one pass over its bytes, when that text is `raw` itself, cut and trimmed ([`finish`]):
/// the recommended component, repetition and subcomponent separators (`^~&`), ASCII field and
/// escape characters, and no escape character in `raw` (nearly every field read). `Some(None)`:
/// the field holds nothing. `None`: the general path decides.
fn plain_field_text<'a>(raw: &'a str, d: &Delimiters) -> Option<Option<&'a str>> {
    if d.component != '^' || d.repetition != '~' || d.subcomponent != Some('&') {
        return None;
    }
    let f = u8::try_from(d.field).ok().filter(u8::is_ascii)?;
    // No escape character: the field separator, which a field never holds, stands for it.
    let e = match d.escape {
        None => f,
        Some(e) => u8::try_from(e).ok().filter(u8::is_ascii)?,
    };
    if (f, e) == (b'|', b'\\') {
        return recommended_field_text(raw);
    }
    if raw == "\"\"" {
        return Some(None);
    }
    let (mut value, mut escaped) = (false, false);
    for &b in raw.as_bytes() {
        value |= !matches!(b, b'^' | b'~' | b'&' | b' ') && b != f;
        escaped |= b == e;
    }
    plain_result(raw, value, escaped)
}

/// [`plain_field_text`] under the recommended delimiters `|^~\&` (which the caller checked):
/// one table load per byte.
#[inline]
fn recommended_field_text(raw: &str) -> Option<Option<&str>> {
    if raw == "\"\"" {
        return Some(None);
    }
    let mut class = 0;
    for &b in raw.as_bytes() {
        class |= PLAIN_CLASS[usize::from(b)];
    }
    plain_result(raw, class & VALUE != 0, class & ESCAPE != 0)
}

/// What [`plain_field_text`] gives for `raw`, given whether it has a byte with a value and an
/// escape character.
#[inline]
fn plain_result(raw: &str, value: bool, escaped: bool) -> Option<Option<&str>> {
    match (value, escaped) {
        (false, _) => Some(None),
        (true, true) => None,
        // Short enough not to be cut: only the trailing separators go ([`finish`]); a byte
        // with a value stays, so the text is not empty.
        (true, false) if raw.len() <= MAX_VALUE_CHARS => {
            let b = raw.as_bytes();
            let mut len = b.len();
            while len > 0 && matches!(b[len - 1], b'^' | b'~' | b'&') {
                len -= 1;
            }
            Some(raw.get(..len))
        }
        (true, false) => Some(finish(raw, Level::Field.trailing())),
    }
}

/// The text of a field, repetition or component `s` ([`write_text`]), capped and trimmed
/// ([`finish`]); borrowed from `s` when it is its own text ([`verbatim`]).
fn level_text<'a>(s: &'a str, d: &Delimiters, level: Level) -> Option<Text<'a>> {
    // The recommended delimiters (nearly every message): verbatim unless escaped.
    let recommended = d.component == '^' && d.repetition == '~' && d.subcomponent == Some('&');
    let plain = match d.escape {
        _ if !recommended => verbatim(s, d),
        None => true,
        Some(e) if e.is_ascii() => !s.bytes().any(|b| b == e as u8),
        Some(e) => !s.contains(e),
    };
    if plain {
        return finish(s, level.trailing()).map(Cow::Borrowed);
    }
    let mut out = String::new();
    write_text(s, d, level, &mut out);
    let len = finish(&out, level.trailing())?.len();
    out.truncate(len);
    Some(Cow::Owned(out))
}

/// Fields of a PHI segment tested in one pass (the `wanted` table of [`parse_text`]): 1 to 29.
const FIELD_CACHE: usize = 30;
const _: () = {
    let mut i = 0;
    while i < phi::PHI_FIELDS.len() {
        assert!(phi::PHI_FIELDS[i].1 < FIELD_CACHE);
        i += 1;
    }
};

/// A segment id (or any text) as a number, to compare ids with one instruction: its three
/// bytes, or `u32::MAX` (no id) when it is not three bytes long.
const fn id_code(s: &[u8]) -> u32 {
    match s {
        &[a, b, c] => a as u32 | (b as u32) << 8 | (c as u32) << 16,
        _ => u32::MAX,
    }
}

/// [`id_code`] of each segment of [`phi::PHI_SEGMENTS`], in order.
const PHI_SEGMENT_CODES: [u32; phi::PHI_SEGMENTS.len()] = {
    let mut t = [0; phi::PHI_SEGMENTS.len()];
    let mut i = 0;
    while i < t.len() {
        t[i] = id_code(phi::PHI_SEGMENTS[i].as_bytes());
        i += 1;
    }
    t
};

/// The fields of [`phi::PHI_FIELDS`] of one segment, by number: what [`parse_text`] tests of
/// a line of that segment, in one pass.
#[derive(Clone, Copy)]
struct PhiFieldsOf {
    /// The segment's [`id_code`].
    code: u32,
    /// For each field number: 1 + its entry in [`phi::PHI_FIELDS`], or 0.
    entry: [u8; FIELD_CACHE],
    /// The last of them (no field past it is read: a PV1 has 50, only PV1-19 counts).
    last: usize,
}

/// [`PhiFieldsOf`] each segment of [`phi::PHI_FIELDS`] (PID, PV1, QRD), in order of first
/// appearance; the first [`PHI_FIELD_SEGMENTS`] entries are used.
const PHI_FIELDS_OF: [PhiFieldsOf; phi::PHI_FIELDS.len()] = PHI_FIELD_TABLE.0;
const PHI_FIELD_SEGMENTS: usize = PHI_FIELD_TABLE.1;
const PHI_FIELD_TABLE: ([PhiFieldsOf; phi::PHI_FIELDS.len()], usize) = {
    let none = PhiFieldsOf {
        code: u32::MAX,
        entry: [0; FIELD_CACHE],
        last: 0,
    };
    let mut t = [none; phi::PHI_FIELDS.len()];
    let mut len = 0;
    let mut k = 0;
    while k < phi::PHI_FIELDS.len() {
        let (id, n, _) = phi::PHI_FIELDS[k];
        let code = id_code(id.as_bytes());
        let mut i = 0;
        while i < len && t[i].code != code {
            i += 1;
        }
        if i == len {
            t[i].code = code;
            len += 1;
        }
        assert!(k < u8::MAX as usize);
        t[i].entry[n] = k as u8 + 1;
        if n > t[i].last {
            t[i].last = n;
        }
        k += 1;
    }
    (t, len)
};

/// Parses one message (see the module docs). `complete` is false when the caller kept only a
/// prefix of the message; its last, partial segment is then ignored. Values borrow `bytes`
/// when it is UTF-8 (and are owned when it was read as ISO-8859-1).
#[must_use]
pub fn parse_message(bytes: &[u8], complete: bool) -> Message<'_> {
    match decode_text(bytes) {
        (Cow::Borrowed(text), _) => parse_text(text, complete, false, true),
        (Cow::Owned(text), _) => parse_text(&text, complete, true, true).into_owned(),
    }
}

/// The OBX line at the start of `rest` when it is `OBX`, the field separator `sep`, text
/// holding exactly 17 separators (the last one at its end), then `tail` and a terminator (CR,
/// LF, or the end of `rest`): what [`same_tail`] tells of the line [`Lines`] would give, without
/// searching for the line's end first. Returns the line's length, whether an LF ends it, and
/// where its 17th separator is in the text after `OBX|`. That separator is looked for first
/// where it was in the OBX before (`guess`: the lines of a result message mostly have the same
/// length up to OBX-18), then counted to.
fn repeated_obx(rest: &[u8], sep: u8, tail: &[u8], guess: usize) -> Option<(usize, bool, usize)> {
    let body = rest.strip_prefix(b"OBX")?.strip_prefix(&[sep])?;
    // The separator right before `tail`, and `tail` then a terminator.
    let ends = |p: usize| -> Option<bool> {
        if body.get(p) != Some(&sep) {
            return None;
        }
        match body.get(p + 1..)?.strip_prefix(tail)?.first() {
            None | Some(b'\r') => Some(false),
            Some(b'\n') => Some(true),
            Some(_) => None,
        }
    };
    let (p, lf) = match ends(guess) {
        Some(lf) if count_byte(&body[..guess], sep) == 16 => (guess, lf),
        _ => {
            let p = nth_position(body, sep, 16)?;
            (p, ends(p)?)
        }
    };
    // No line ends before it.
    if memchr::memchr2(b'\r', b'\n', &body[..p]).is_some() {
        return None;
    }
    Some((4 + p + 1 + tail.len(), lf, p))
}

/// `obx_shortcut`: repeated OBX lines are recognised by [`repeated_obx`] (always, but in the
/// test that holds it to the line-by-line reading).
fn parse_text(text: &str, complete: bool, non_utf8: bool, obx_shortcut: bool) -> Message<'_> {
    let lines = lines_of(text, complete);
    let mut m = Message::default();
    let mut last_obx18: Option<&str> = None;
    // The text of the last OBX that had a field 18, from that field on (it starts with the
    // value of `last_obx18`).
    let mut last_obx_tail: Option<&str> = None;
    // Where the 17th field separator of the last OBX was, after `OBX|` ([`repeated_obx`]).
    let mut obx_sep17 = 0;
    m.anomalies.non_utf8 = non_utf8;

    // Delimiters: from the first line when it is a header, else from the first MSH.
    let is_header = |l: &str| {
        l.len() >= 4
            && (l.starts_with("MSH") || l.starts_with("FHS") || l.starts_with("BHS"))
            && !l.as_bytes()[3].is_ascii_alphanumeric()
    };
    // The first line, split off once (the loop below takes it from here).
    let mut rest = lines;
    let first = rest.next();
    // The first MSH: nearly always the first line, found without searching again.
    let first_msh = match first {
        Some(l) if l.starts_with("MSH") => Some(l),
        _ => rest.clone().find(|l| l.starts_with("MSH")),
    };
    let header = match first {
        Some(l) if is_header(l) => {
            m.anomalies.no_msh = first_msh.is_none();
            Some(l)
        }
        _ => {
            m.anomalies.no_msh = true;
            first_msh
        }
    };
    if let Some(h) = header {
        let (d, err) = Delimiters::from_header_lax(h);
        m.delimiters = d;
        m.anomalies.bad_delimiters = err;
    }
    let d = m.delimiters;
    let field_byte = u8::try_from(d.field).ok().filter(u8::is_ascii);

    let mut first = first;
    loop {
        let line = match first.take() {
            Some(l) => l,
            None => {
                // The OBX that follows one whose field 18 on was `t`, with the same text from
                // its field 18 on: what the OBX branch below skips, told without splitting.
                if let (Some(t), Some(sep), Some(r)) = (last_obx_tail, field_byte, rest.rest) {
                    if let Some((len, lf, p)) =
                        repeated_obx(r.as_bytes(), sep, t.as_bytes(), obx_sep17)
                            .filter(|_| obx_shortcut)
                    {
                        obx_sep17 = p;
                        m.segment_count += 1;
                        m.segment_ids.push(SegmentId::OBX);
                        // The terminator (ASCII) or the end: character boundaries.
                        rest.rest = r.get(len + 1..);
                        rest.lf |= lf;
                        continue;
                    }
                }
                match rest.next() {
                    Some(l) => l,
                    None => break,
                }
            }
        };
        let id = match field_byte {
            Some(sep) => id_of_line(line.as_bytes(), sep),
            None => SegmentId::of_line(line, d.field),
        };
        let Some(id) = id else {
            m.anomalies.malformed_segments += 1;
            continue;
        };
        m.segment_count += 1;
        m.segment_ids.push(id);
        let seg = Seg::new(line, id, d);
        if id == SegmentId::OBX {
            // A result message repeats the same OBX-18 on every observation: parse each
            // distinct raw value once, and none once the device list is full. (OBX is neither
            // a PHI segment nor has PHI fields.)
            if m.devices.len() >= MAX_DEVICES {
                continue;
            }
            // The same OBX-18 as the OBX before, told without splitting the line: it ends
            // with that OBX's text from its field 18 on, after exactly 17 separators.
            let body = line.get(4..).unwrap_or("");
            if last_obx_tail.is_some_and(|t| same_tail(body, t, d.field, 17)) {
                continue;
            }
            let raw = seg.raw(18);
            if raw.is_some() && raw != last_obx18 {
                add_devices(&mut m.devices, &seg, 18, DeviceSource::Obx18);
                last_obx18 = raw;
            }
            // `raw` is a piece of `body`: its offset there is that of its first byte.
            if let Some(r) = raw {
                let at = (r.as_ptr() as usize).wrapping_sub(body.as_ptr() as usize);
                last_obx_tail = body.get(at..);
                obx_sep17 = at.wrapping_sub(1);
            }
            continue;
        }
        // Segment ids compared as numbers.
        let code = id_code(&id.0);
        if let Some(k) = PHI_SEGMENT_CODES.iter().position(|&c| c == code) {
            if phi::has_value(line.get(4..).unwrap_or(""), &d) {
                m.phi_fields.set(phi::PHI_FIELDS.len() + k);
            }
            continue;
        }
        if let Some(f) = PHI_FIELDS_OF[..PHI_FIELD_SEGMENTS]
            .iter()
            .find(|f| f.code == code)
        {
            // The fields this segment has in the table, by number (a PID has sixteen), tested
            // in one pass over the line; none past the last one.
            seg.each_field_bytes(|n, raw| {
                if let Some(&e) = f.entry.get(n).filter(|&&e| e > 0) {
                    if phi::has_value_bytes(raw, &d) {
                        m.phi_fields.set(usize::from(e - 1));
                    }
                }
                n < f.last
            });
        }
        match id {
            SegmentId::MSH if m.msh.is_none() => m.msh = Some(read_msh(&seg)),
            SegmentId::MSA if m.msa.is_none() => {
                // MSA-1 and MSA-2 found in one pass over the line.
                let mut raws: [Option<&str>; 3] = [None; 3];
                seg.each_field(|n, raw| {
                    if let Some(slot) = raws.get_mut(n) {
                        *slot = Some(raw);
                    }
                    n < 2
                });
                let text = |n: usize| {
                    let r = raws.get(n).copied().flatten().and_then(cap_field)?;
                    field_text(r, &d)
                };
                m.msa = Some(Msa {
                    ack_code: text(1).and_then(code_text),
                    control_id: text(2),
                })
            }
            SegmentId::ERR if m.errors.len() < MAX_ERRORS => {
                let e = read_err(&seg);
                if e != ErrInfo::default() {
                    m.errors.push(e);
                }
            }
            SegmentId::PRT => {
                add_devices(&mut m.devices, &seg, 10, DeviceSource::Prt10);
                add_devices(&mut m.devices, &seg, 16, DeviceSource::Prt16);
            }
            _ => {}
        }
    }
    // Every line has been read: every terminator seen.
    m.anomalies.non_cr_terminator = rest.lf;
    m
}

fn read_msh<'a>(seg: &Seg<'a>) -> Msh<'a> {
    let d = &seg.d;
    // MSH-2 to MSH-18, found in one pass over the line.
    let mut raws: [Option<&'a str>; 19] = [None; 19];
    seg.each_field(|n, raw| {
        if let Some(slot) = raws.get_mut(n) {
            *slot = Some(raw);
        }
        n < 18
    });
    let raw = |n: usize| raws.get(n).copied().flatten();
    let capped = |n: usize| raw(n).and_then(cap_field);
    // The recommended delimiters (nearly every message), tested once for all fields.
    let recommended = *d == Delimiters::default();
    let t = |n: usize| {
        let r = capped(n)?;
        match recommended.then(|| recommended_field_text(r)).flatten() {
            Some(t) => t.map(Cow::Borrowed),
            None => field_text(r, d),
        }
    };
    // MSH-9 (MSG): the first three components of its first repetition.
    let raw9 = capped(9);
    let (message_code, trigger_event, message_structure) =
        match raw9.filter(|_| recommended).and_then(plain_components) {
            Some([a, b, c]) => (a, b, c),
            None => {
                let mut comps = raw9
                    .and_then(|r| pieces(r, d.repetition).next())
                    .map(|r| pieces(r, d.component));
                let mut comp = || {
                    comps
                        .as_mut()
                        .and_then(Iterator::next)
                        .and_then(|c| level_text(c, d, Level::Component))
                };
                (comp(), comp(), comp())
            }
        };
    // Under the recommended delimiters, a line without escape character after MSH-2 (which
    // holds it) has only verbatim values: pieces of the line, or pieces joined with `^`.
    let plain = recommended
        && seg.body.is_some_and(|b| {
            let after2 = raw(2).map_or(0, |r| r.len() + 1);
            b.as_bytes().get(after2..).is_some_and(json_plain)
        });
    Msh {
        sending_application: t(3),
        sending_facility: t(4),
        receiving_application: t(5),
        receiving_facility: t(6),
        message_time: t(7),
        security_present: raw(8).is_some_and(|r| phi::has_value(r, d)),
        message_type: message_type(raw9, message_code.as_ref(), trigger_event.as_ref()),
        message_code,
        trigger_event,
        message_structure,
        control_id: t(10),
        processing_id: t(11),
        version: t(12),
        // The first repetition is the character set of the message (v2.5.1 2.14.9.18).
        charset: capped(18)
            .and_then(|r| pieces(r, d.repetition).next())
            .and_then(|r| level_text(r, d, Level::Repeat)),
        json_plain: if plain { MSH_JSON_PLAIN } else { 0 },
    }
}

/// [`Msh::json_plain`] of a header whose values are all plain: MSH-3 to MSH-18.
const MSH_JSON_PLAIN: u32 = ((1 << 19) - 1) & !0b111;

/// Whether `b` holds no byte that a JSON string escapes: below 0x20, `"`, `\`. One pass
/// without a branch per byte (a fold the compiler turns into vector compares).
fn json_plain(b: &[u8]) -> bool {
    !b.iter()
        .fold(false, |a, &x| a | (x < 0x20) | (x == b'"') | (x == b'\\'))
}

/// The first three components of the first repetition of field `raw` under the recommended
/// delimiters, as [`level_text`] gives them at [`Level::Component`], when `raw` holds no escape
/// character and is short enough not to be cut: then each is itself without its trailing
/// `&`. MSH-9 (`ADT^A01^ADT_A01`), read in one pass over its bytes. `None`: the general path
/// decides.
fn plain_components(raw: &str) -> Option<[Option<Text<'_>>; 3]> {
    let b = raw.as_bytes();
    if b.len() > MAX_VALUE_CHARS {
        return None;
    }
    let mut out: [Option<Text<'_>>; 3] = [None, None, None];
    let (mut k, mut start) = (0, 0);
    let mut put = |k: usize, start: usize, end: usize| {
        let mut end = end;
        while end > start && b[end - 1] == b'&' {
            end -= 1;
        }
        if let (Some(slot), Some(c)) = (out.get_mut(k), raw.get(start..end)) {
            *slot = (!c.is_empty()).then_some(Cow::Borrowed(c));
        }
    };
    for (i, &x) in b.iter().enumerate() {
        match x {
            b'\\' => return None,
            b'~' => break,
            b'^' if k < 3 => {
                put(k, start, i);
                k += 1;
                start = i + 1;
            }
            _ => {}
        }
    }
    if k < 3 {
        let end = b.iter().position(|&x| x == b'~').unwrap_or(b.len());
        put(k, start, end);
    }
    Some(out)
}

fn read_err<'a>(seg: &Seg<'a>) -> ErrInfo<'a> {
    let d = &seg.d;
    // ERR-1 to ERR-4, found in one pass over the line; the first repetition of each (at most
    // [`MAX_FIELD_PARSE_BYTES`] of the field).
    let mut raws: [Option<&'a str>; 5] = [None; 5];
    seg.each_field(|n, raw| {
        if let Some(slot) = raws.get_mut(n) {
            *slot = Some(raw);
        }
        n < 4
    });
    let first_repeat =
        |n: usize| pieces(cap_field(raws.get(n).copied().flatten()?)?, d.repetition).next();
    // Subcomponent `sub` of component `k` of the first repetition of `field`, decoded (not
    // capped: only codes and positions are kept of it).
    let raw = |field: usize, k: usize, sub: usize| -> Option<Text<'a>> {
        let c = pieces(first_repeat(field)?, d.component).nth(k - 1)?;
        let s = pieces(c, sub_sep(d)).nth(sub.checked_sub(1)?)?;
        Some(unescaped(s, d))
    };
    let comp = |field: usize, k: usize, sub: usize| code_text(raw(field, k, sub)?);
    // ERR-2 (ERL) or ERR-1 (ELD, before v2.5): a segment id, then positions (numbers only, so
    // that nothing but structure is copied).
    // The first subcomponents of components 1 to `n` (at most 6) are read in one pass over
    // the components.
    let location = |field: usize, n: usize| -> Option<Text<'a>> {
        let mut comps = pieces(first_repeat(field)?, d.component);
        let mut next = || {
            comps
                .next()
                .and_then(|c| pieces(c, sub_sep(d)).next())
                .map(|s| unescaped(s, d))
        };
        let id = next()?;
        SegmentId::of_line(&id, d.field).filter(|_| id.len() == 3)?;
        let mut parts: [Text<'a>; 6] = Default::default();
        parts[0] = id;
        let mut len = 1;
        for _ in 2..=n {
            let p = next().unwrap_or_default();
            if p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                break;
            }
            let Some(slot) = parts.get_mut(len) else {
                break;
            };
            *slot = p;
            len += 1;
        }
        let used = parts[..len].iter().rposition(|p| !p.is_empty())? + 1;
        let mut out = String::with_capacity(3 + 6 * (used - 1));
        for (i, p) in parts[..used].iter().enumerate() {
            if i > 0 {
                out.push('^');
            }
            out.push_str(p);
        }
        Some(Cow::Owned(out))
    };
    // Error codes are numbers (table 0357) or local codes with digits; a word is not a code.
    let numeric_code = |field: usize, k: usize, sub: usize| {
        comp(field, k, sub).filter(|c| c.bytes().any(|b| b.is_ascii_digit()))
    };
    // The coding system is kept only beside the code it qualifies.
    let (code, code_system) = match numeric_code(3, 1, 1) {
        Some(c) => (Some(c), comp(3, 3, 1)),
        None => match numeric_code(1, 4, 1) {
            Some(c) => (Some(c), comp(1, 4, 3)),
            None => (None, None),
        },
    };
    ErrInfo {
        location: location(2, 6).or_else(|| location(1, 3)),
        code,
        code_system,
        // Table 0516: E, F, I, W.
        severity: comp(4, 1, 1).filter(|c| c.len() == 1),
    }
}

fn add_devices<'a>(out: &mut Vec<Device<'a>>, seg: &Seg<'a>, field: usize, source: DeviceSource) {
    let d = &seg.d;
    let Some(raw) = seg.raw_capped(field) else {
        return;
    };
    for r in pieces(raw, d.repetition) {
        if out.len() >= MAX_DEVICES {
            return;
        }
        let mut comps = pieces(r, d.component);
        let mut c = || {
            comps
                .next()
                .and_then(|c| level_text(c, d, Level::Component))
        };
        let dev = Device {
            source,
            id: c(),
            namespace: c(),
            universal_id: c(),
            universal_id_type: c(),
        };
        if (dev.id.is_some() || dev.universal_id.is_some()) && !out.contains(&dev) {
            out.push(dev);
        }
    }
}

/// A whole field as `hl7-parser` splits it, as text: repetitions joined with `~`, components
/// with `^`, subcomponents with `&`, escape sequences decoded; `None` when it holds nothing.
/// At most [`MAX_VALUE_CHARS`]. (The reader finds the same text without `hl7-parser`; this is
/// the reference it is tested against.)
pub fn text_of(f: &Field<'_>, d: &Delimiters) -> Option<String> {
    if !phi::has_value(f.raw_value(), d) {
        return None;
    }
    let mut out = String::new();
    'all: for (ri, r) in f.repeats.iter().enumerate() {
        if ri > 0 {
            out.push('~');
        }
        for (ci, c) in r.components.iter().enumerate() {
            if ci > 0 {
                out.push('^');
            }
            for (si, s) in c.subcomponents.iter().enumerate() {
                if si > 0 {
                    out.push('&');
                }
                unescape(s.value, d, &mut out);
                if out.len() > 4 * MAX_VALUE_CHARS {
                    break 'all;
                }
            }
        }
    }
    finish(&out, &['^', '~', '&']).map(str::to_string)
}

/// Cuts `s` at [`MAX_VALUE_CHARS`] characters and drops trailing `trailing` characters (empty
/// parts); `None` when nothing is left.
fn finish<'s>(s: &'s str, trailing: &[char]) -> Option<&'s str> {
    // Fewer bytes than the cap: fewer characters too.
    let end = if s.len() <= MAX_VALUE_CHARS {
        s.len()
    } else {
        s.char_indices()
            .nth(MAX_VALUE_CHARS)
            .map_or(s.len(), |(i, _)| i)
    };
    // The characters trimmed are ASCII: byte-wise (a UTF-8 continuation byte is never one).
    let mut len = end;
    while len > 0 && trailing.contains(&char::from(s.as_bytes()[len - 1])) {
        len -= 1;
    }
    let t = &s[..len];
    (!t.is_empty()).then_some(t)
}

/// `raw` with its escape sequences decoded ([`unescape`]), borrowed when it has none.
fn unescaped<'a>(raw: &'a str, d: &Delimiters) -> Text<'a> {
    match d.escape {
        Some(e) if raw.contains(e) => {
            let mut out = String::new();
            unescape(raw, d, &mut out);
            Cow::Owned(out)
        }
        _ => Cow::Borrowed(raw),
    }
}

/// A table code: 1 to [`MAX_CODE_CHARS`] ASCII letters, digits or `._-:/`, no spaces (e.g.
/// `101`, `HL70357`, `AE`). Anything else, free text above all, gives `None`.
pub fn code(s: &str) -> Option<&str> {
    let s = s.trim();
    let ok = !s.is_empty()
        && s.len() <= MAX_CODE_CHARS
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:/".contains(&b));
    ok.then_some(s)
}

/// [`code`] of a value, borrowed as the value is.
fn code_text(t: Text<'_>) -> Option<Text<'_>> {
    match t {
        Cow::Borrowed(s) => code(s).map(Cow::Borrowed),
        Cow::Owned(s) => code(&s).map(|c| Cow::Owned(c.to_string())),
    }
}

/// Appends `raw` to `out` with its escape sequences decoded (v2.5.1 2.7): `\F\ \S\ \T\ \R\ \E\`
/// and v2.7 `\P\` give the delimiter, `\Xhh..\` the bytes hh.. when they are printable ASCII.
/// Formatting (`\H\ \N\ \.br\ ...`), character set (`\C..\ \M..\`) and local (`\Z..\`)
/// sequences are dropped. An escape character without its closing one is kept as is.
pub fn unescape(raw: &str, d: &Delimiters, out: &mut String) {
    let Some(esc) = d.escape else {
        out.push_str(raw);
        return;
    };
    let mut rest = raw;
    while let Some(start) = rest.find(esc) {
        out.push_str(&rest[..start]);
        let after = &rest[start + esc.len_utf8()..];
        let Some(len) = after.find(esc) else {
            out.push_str(&rest[start..]);
            return;
        };
        let seq = &after[..len];
        match seq {
            "F" => out.push(d.field),
            "S" => out.push(d.component),
            "R" => out.push(d.repetition),
            "E" => out.push(esc),
            "T" => out.extend(d.subcomponent),
            "P" => out.extend(d.truncation),
            _ if seq.starts_with('X') => {
                let hex = &seq[1..];
                if hex.len().is_multiple_of(2) {
                    for k in (0..hex.len()).step_by(2) {
                        match hex
                            .get(k..k + 2)
                            .and_then(|h| u8::from_str_radix(h, 16).ok())
                        {
                            Some(b) if b.is_ascii_graphic() || b == b' ' => out.push(b as char),
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
        rest = &after[len + esc.len_utf8()..];
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    use hl7_parser::message::Repeat;
    use hl7_parser::parser::parse_field_with_separators;

    /// What the reader used to take from `hl7-parser`'s structures (the reference of the
    /// property tests below): one repetition as text, components joined with `^`,
    /// subcomponents with `&`, decoded, capped.
    fn ref_repeat_text(r: &Repeat<'_>, d: &Delimiters) -> Option<String> {
        let mut out = String::new();
        'all: for (ci, c) in r.components.iter().enumerate() {
            if ci > 0 {
                out.push('^');
            }
            for (si, s) in c.subcomponents.iter().enumerate() {
                if si > 0 {
                    out.push('&');
                }
                unescape(s.value, d, &mut out);
                if out.len() > 4 * MAX_VALUE_CHARS {
                    break 'all;
                }
            }
        }
        finish(&out, &['^', '&']).map(str::to_string)
    }

    /// One component's subcomponents joined with `&`, decoded, capped.
    fn ref_component_text<'a>(
        parts: impl Iterator<Item = &'a str>,
        d: &Delimiters,
    ) -> Option<String> {
        let mut out = String::new();
        for (i, p) in parts.enumerate() {
            if i > 0 {
                out.push('&');
            }
            unescape(p, d, &mut out);
            if out.len() > 4 * MAX_VALUE_CHARS {
                break;
            }
        }
        finish(&out, &['&']).map(str::to_string)
    }

    proptest::proptest! {
        /// The reader's own splitting (repetitions, components, subcomponents) and texts are
        /// those of `hl7-parser`'s field parser, for the recommended delimiters, other ones,
        /// and a set without escape and subcomponent separators; borrowed when verbatim.
        #[test]
        fn pieces_and_texts_are_what_hl7_parser_finds(
            ix in proptest::collection::vec(0usize..64, 0..80),
            long in 0usize..400,
            set in 0usize..3,
        ) {
            let header = ["MSH|^~\\&|", "MSH#@!$%#", "MSH|^~|"][set];
            let d = Delimiters::from_header_lax(header).0;
            // A field never holds its field separator (nor CR/LF); some are long.
            let mut raw = text_from(&ix).replace(['\r', '\n', d.field], "");
            raw.extend(std::iter::repeat_n('A', long * (ix.len() % 3)));
            proptest::prop_assume!(!raw.is_empty());
            let f = parse_field_with_separators(&raw, d.separators()).unwrap();
            let want = text_of(&f, &d);
            let got = phi::has_value(&raw, &d).then(|| level_text(&raw, &d, Level::Field)).flatten();
            proptest::prop_assert_eq!(got.as_deref(), want.as_deref(), "field {:?}", raw);
            let rep0 = raw.split(d.repetition).next().unwrap();
            let r = f.repeats.first().unwrap();
            proptest::prop_assert_eq!(rep0, r.raw_value());
            let (mine, reference) = (level_text(rep0, &d, Level::Repeat), ref_repeat_text(r, &d));
            proptest::prop_assert_eq!(mine.as_deref(), reference.as_deref());
            for k in 1..6 {
                let c = r.component(k);
                let mine = rep0.split(d.component).nth(k - 1);
                proptest::prop_assert_eq!(mine, c.map(|c| c.raw_value()));
                let (Some(mine), Some(c)) = (mine, c) else { continue };
                let t = level_text(mine, &d, Level::Component);
                let reference = ref_component_text(c.subcomponents.iter().map(|s| s.value), &d);
                proptest::prop_assert_eq!(t.as_deref(), reference.as_deref());
                if verbatim(mine, &d) {
                    proptest::prop_assert!(!matches!(t, Some(Cow::Owned(_))));
                }
                for (s, sub) in mine.split(sub_sep(&d)).zip(&c.subcomponents) {
                    proptest::prop_assert_eq!(s, sub.value);
                }
                proptest::prop_assert_eq!(mine.split(sub_sep(&d)).count(), c.subcomponents.len());
            }
            proptest::prop_assert_eq!(raw.split(d.repetition).count(), f.repeats.len());
        }
    }

    proptest::proptest! {
        /// The word-at-a-time byte search against a plain scan (bytes of both halves, so that
        /// lanes hold values that differ from the one sought only in the high bit).
        #[test]
        fn byte_positions_are_those_of_a_scan(
            hay in proptest::collection::vec(proptest::sample::select(vec![b'|', 0xfc, b'A', 0, 0x80, b'^']), 0..140),
            k in 0usize..60,
        ) {
            let want: Vec<usize> = hay.iter().enumerate().filter(|&(_, &b)| b == b'|').map(|(i, _)| i).collect();
            let mut got = Vec::new();
            each_position(&hay, b'|', |i| {
                got.push(i);
                true
            });
            proptest::prop_assert_eq!(&got, &want);
            proptest::prop_assert_eq!(nth_position(&hay, b'|', k), want.get(k).copied());
            let mut first = Vec::new();
            each_position(&hay, b'|', |i| {
                first.push(i);
                first.len() < 3
            });
            proptest::prop_assert_eq!(&first[..], &want[..want.len().min(3)]);
        }
    }

    proptest::proptest! {
        #[test]
        fn split_fields_are_what_raw_finds(
            id in proptest::sample::select(vec!["PID", "PV1", "MSH", "OBX"]),
            sep in proptest::sample::select(vec!['|', '#', 'é']),
            pieces in proptest::collection::vec("[a-z|#^é]{0,3}", 0..40),
        ) {
            let d = Delimiters { field: sep, ..Delimiters::default() };
            let line = format!("{id}{sep}{}", pieces.join(&sep.to_string()));
            for l in [line.as_str(), id] {
                let seg = Seg::new(l, SegmentId::of_line(l, sep).unwrap(), d);
                let skip = if id == "MSH" { 2 } else { 1 };
                for n in 0..FIELD_CACHE + 5 {
                    let want = n
                        .checked_sub(skip)
                        .and_then(|k| l.get(4..).and_then(|b| b.split(sep).nth(k)));
                    proptest::prop_assert_eq!(seg.raw(n), want, "{} field {}", l, n);
                    let mut each = None;
                    seg.each_field(|m, raw| {
                        if m == n {
                            each = Some(raw);
                        }
                        m < n
                    });
                    proptest::prop_assert_eq!(each, want, "{} field {} (each_field)", l, n);
                }
            }
        }
    }

    // pcaps/hl7/adt_oru_orm.pcap, frame 6 (EHR -> engine), MLLP blocks removed: ADT^A01 ADT00001
    // with PID-3/5/7/11/13/18/19, NK1, PV1, IN1 (all fake values, pcaps/hl7/PHI_VALUES.txt).
    const ADT_A01: &[u8] = b"MSH|^~\\&|TEST_EHR_ADT|TESTHOSP|TEST_ENGINE|TESTHOSP|20240315101500||ADT^A01^ADT_A01|ADT00001|P|2.5.1\rEVN|A01|20240315101500\rPID|1||PID-TEST-0101^^^TESTHOSP^MR||TESTPATIENT^CHARLIE^^^^^L||19850505|M|||1 TEST STREET^^TESTCITY^TS^00000^^H||^PRN^PH^^^000^5550101|||||ACCT-TEST-0101|000-00-0101\rNK1|1|TESTKIN^DELTA^^^^^L|SPO^Spouse^HL70063|1 TEST STREET^^TESTCITY^TS^00000|^PRN^PH^^^000^5550102\rPV1|1|I|ICU^101^A^TESTHOSP||||0100^TESTDOC^ALPHA|||MED||||1|||0100^TESTDOC^ALPHA|IN||||||||||||||||||||||||||20240315101500\rIN1|1|PLAN-TEST|INS-TEST-0001|TEST INSURANCE CO\r";
    // pcaps/hl7/nak.pcap, frame 8 (engine -> EHR): ACK^A04 with MSA AE and an ERR.
    const ACK_AE: &[u8] = b"MSH|^~\\&|TEST_ENGINE|TESTHOSP|TEST_EHR_ADT|TESTHOSP|20261128130507||ACK^A04^ACK|ACKADT00003|P|2.5.1\rMSA|AE|ADT00003|Required field missing: PID-3\rERR||PID^1^3^1|101^Required field missing^HL70357|E|||PID-3 patient identifier list is empty\r";
    // pcaps/hl7/nak.pcap, frame 11: ACK^A19 with MSA AR and an ERR without location.
    const ACK_AR: &[u8] = b"MSH|^~\\&|TEST_ENGINE|TESTHOSP|TEST_EHR_ADT|TESTHOSP|20261128130507||ACK^A19^ACK|ACKQRY00001|P|2.5.1\rMSA|AR|QRY00001|Unsupported message type\rERR|||200^Unsupported message type^HL70357|E|||Unsupported message type QRY\r";
    // pcaps/hl7/nak.pcap, frame 10: QRY^A19 whose QRD-8 names the patient asked about.
    const QRY: &[u8] = b"MSH|^~\\&|TEST_EHR_ADT|TESTHOSP|TEST_ENGINE|TESTHOSP|20240315130100||QRY^A19^QRY_A19|QRY00001|P|2.5.1\rQRD|20240315130100|R|I|QRY00001|||10^RD|PID-TEST-0103^TESTPATIENT^ECHO|DEM\r";
    // pcaps/hl7/latin1.pcap, frame 6: ADT^A01 v2.5, MSH-18 8859/1, PID-5 "M\xdcLLER^J\xd6RG" and
    // PID-11 "TESTSTRA\xdfE 1^^M\xdcNCHEN..." in ISO-8859-1 (not UTF-8).
    const LATIN1: &[u8] = b"MSH|^~\\&|TEST_EHR_ADT|KLINIKUM|TEST_ENGINE|TESTHOSP|20240315150000||ADT^A01^ADT_A01|ADT00004|P|2.5|||AL|NE||8859/1\rEVN|A01|20240315150000\rPID|1||PID-TEST-0105^^^KLINIKUM^MR||M\xdcLLER^J\xd6RG^^^^^L||19550909|M|||TESTSTRA\xdfE 1^^M\xdcNCHEN^^80000^DEU^H\rPV1|1|I|STATION^201^A^KLINIKUM\r";
    // pcaps/hl7/adt_oru_orm.pcap, the pump's ORU^R01 (frame 24, first two OBX of five).
    const ORU_PUMP: &[u8] = b"MSH|^~\\&|PUMP_GATEWAY|TESTHOSP|TEST_ENGINE|TESTHOSP|20240315120000||ORU^R01^ORU_R01|PUMP00001|P|2.6\rPID|1||PID-TEST-0102^^^TESTHOSP^MR||TESTPATIENT^DELTA^^^^^L||19900606|F\rPV1|1|I|ICU^103^A^TESTHOSP\rOBR|1|PUMP00001^PUMP_GATEWAY||69986^MDC_DEV_PUMP_INFUS_VMD^MDC|||20240315120000\rOBX|1|ST|68063^MDC_ATTR_PT_ID^MDC|1.0.0.0|PID-TEST-0102||||||R|||20240315120000||||SIGMA SPECTRUM^BAXTER^5842E4FFFE770242^EUI-64\rOBX|2|NM|157784^MDC_FLOW_FLUID_PUMP^MDC|1.1.1.1|125|263762^MDC_DIM_MILLI_L_PER_HR^MDC|||||R|||20240315120000||||SIGMA SPECTRUM^BAXTER^5842E4FFFE770242^EUI-64\r";

    fn s(v: &str) -> Option<Text<'_>> {
        Some(Cow::Borrowed(v))
    }

    fn ids<'m>(m: &'m Message<'_>) -> Vec<&'m str> {
        m.segment_ids.iter().map(|i| i.as_str()).collect()
    }

    #[test]
    fn adt_header_segments_phi() {
        let m = parse_message(ADT_A01, true);
        let h = m.msh.as_ref().unwrap();
        assert_eq!(h.sending_application, s("TEST_EHR_ADT"));
        assert_eq!(h.sending_facility, s("TESTHOSP"));
        assert_eq!(h.receiving_application, s("TEST_ENGINE"));
        assert_eq!(h.receiving_facility, s("TESTHOSP"));
        assert_eq!(h.message_time, s("20240315101500"));
        assert!(!h.security_present);
        assert_eq!(h.message_type, s("ADT^A01"));
        assert_eq!(h.message_structure, s("ADT_A01"));
        assert_eq!(h.control_id, s("ADT00001"));
        assert_eq!(h.processing_id, s("P"));
        assert_eq!(h.version, s("2.5.1"));
        assert_eq!(h.charset, None);
        assert_eq!(ids(&m), ["MSH", "EVN", "PID", "NK1", "PV1", "IN1"]);
        assert_eq!(m.segment_count, 6);
        assert_eq!(
            m.phi_fields,
            ["PID-3", "PID-5", "PID-7", "PID-11", "PID-13", "PID-18", "PID-19", "NK1", "IN1"]
        );
        assert!(m.msa.is_none() && m.errors.is_empty() && m.devices.is_empty());
        assert!(!m.anomalies.any());
    }

    #[test]
    fn nak_ack_codes_and_err() {
        let m = parse_message(ACK_AE, true);
        assert_eq!(
            m.msa,
            Some(Msa {
                ack_code: s("AE"),
                control_id: s("ADT00003")
            })
        );
        assert_eq!(
            m.errors,
            [ErrInfo {
                location: s("PID^1^3^1"),
                code: s("101"),
                code_system: s("HL70357"),
                severity: s("E"),
            }]
        );
        assert!(m.phi_fields.is_empty());
        let m = parse_message(ACK_AR, true);
        assert_eq!(m.msa.as_ref().unwrap().ack_code, s("AR"));
        assert_eq!(
            m.errors,
            [ErrInfo {
                location: None,
                code: s("200"),
                code_system: s("HL70357"),
                severity: s("E"),
            }]
        );
        // The query names a patient in QRD-8.
        assert_eq!(parse_message(QRY, true).phi_fields, ["QRD-8"]);
    }

    #[test]
    fn v23_err_element_and_free_text_codes() {
        // v2.3 ERR-1 (ELD): segment^sequence^field^code&text&system. Free text in a code
        // position is dropped.
        let m = parse_message(
            b"MSH|^~\\&|A|B|C|D|1||ACK|9|P|2.3\rMSA|AE|8\rERR|PID^1^5^101&Required field missing&HL70357\rERR|SMITH^JOHN|JOHN^X|SMITH^x^y|This patient is John Smith\rERR||||Smith\r",
            true,
        );
        assert_eq!(
            m.errors,
            [ErrInfo {
                location: s("PID^1^5"),
                code: s("101"),
                code_system: s("HL70357"),
                severity: None,
            }]
        );
        assert_eq!(m.msh.unwrap().message_type, s("ACK"));
    }

    #[test]
    fn latin1_is_read_not_rejected() {
        let m = parse_message(LATIN1, true);
        assert!(m.anomalies.non_utf8);
        assert_eq!(m.anomalies.malformed_segments, 0);
        let h = m.msh.as_ref().unwrap();
        assert_eq!(h.charset, s("8859/1"));
        assert_eq!(h.version, s("2.5"));
        assert_eq!(h.control_id, s("ADT00004"));
        assert_eq!(ids(&m), ["MSH", "EVN", "PID", "PV1"]);
        assert_eq!(m.phi_fields, ["PID-3", "PID-5", "PID-7", "PID-11"]);
        // The same message in UTF-8 gives the same summary (but for the anomaly).
        let utf8: Vec<u8> = LATIN1
            .iter()
            .map(|&b| b as char)
            .collect::<String>()
            .into_bytes();
        let mut m2 = parse_message(&utf8, true);
        assert!(!m2.anomalies.non_utf8);
        m2.anomalies.non_utf8 = true;
        assert_eq!(m2, m);
    }

    #[test]
    fn obx18_devices_deduplicated() {
        let m = parse_message(ORU_PUMP, true);
        assert_eq!(
            m.devices,
            [Device {
                source: DeviceSource::Obx18,
                id: s("SIGMA SPECTRUM"),
                namespace: s("BAXTER"),
                universal_id: s("5842E4FFFE770242"),
                universal_id_type: s("EUI-64"),
            }]
        );
        assert_eq!(m.phi_fields, ["PID-3", "PID-5", "PID-7"]);
        assert_eq!(m.msh.unwrap().version, s("2.6"));
    }

    /// OBX lines whose text ends like the previous OBX's field 18 on, with the field at
    /// another place (fewer or more separators before it), a different OBX-18 between equal
    /// ones, an empty and a missing field 18: the devices are those of reading every OBX-18.
    #[test]
    fn obx18_same_tail_shortcut() {
        let dev = "MX800^PHILIPS^0009FBFFFE770205^EUI-64";
        let other = "PUMP^BAXTER^5842E4FFFE770242^EUI-64";
        let f = |pre: usize, v: &str, post: &str| format!("OBX|{}{v}{post}\r", "|".repeat(pre));
        let lines = [
            f(17, dev, ""),
            f(17, dev, ""),
            f(16, dev, ""),
            f(18, dev, ""),
            f(17, "X^Y^Z", &format!("|{dev}")),
            f(17, dev, "|Z"),
            f(17, dev, "|Z"),
            f(17, other, ""),
            f(17, dev, ""),
            f(17, "", ""),
            f(17, "", "|"),
            f(3, "", ""),
            f(17, other, ""),
            f(17, "^^", ""),
            "OBX\r".to_string(),
            f(17, "^^", ""),
        ];
        let mut msg = String::from("MSH|^~\\&|A|B|||||ORU^R01|1|P|2.6\r");
        for l in &lines {
            msg.push_str(l);
        }
        let m = parse_message(msg.as_bytes(), true);
        // Every OBX-18, read one by one, distinct in order of appearance.
        let mut want: Vec<Device<'_>> = Vec::new();
        for l in &lines {
            let l = l.trim_end_matches('\r');
            let Some(raw) = l.split('|').nth(18).filter(|r| !r.is_empty()) else {
                continue;
            };
            let c: Vec<&str> = raw.split('^').collect();
            let g = |k: usize| c.get(k).filter(|v| !v.is_empty()).and_then(|v| s(v));
            let d = Device {
                source: DeviceSource::Obx18,
                id: g(0),
                namespace: g(1),
                universal_id: g(2),
                universal_id_type: g(3),
            };
            if (d.id.is_some() || d.universal_id.is_some()) && !want.contains(&d) {
                want.push(d);
            }
        }
        assert_eq!(want.len(), 3);
        assert_eq!(m.devices, want);
        assert_eq!(m.segment_count, lines.len() + 1);
        assert_eq!(m, parse_text(&msg, true, false, false));
    }

    /// The per-segment tables of PHI fields hold every entry of [`phi::PHI_FIELDS`], and
    /// nothing else.
    #[test]
    fn phi_fields_of_each_segment() {
        let tables = &PHI_FIELDS_OF[..PHI_FIELD_SEGMENTS];
        for (k, &(id, n, _)) in phi::PHI_FIELDS.iter().enumerate() {
            let f = tables
                .iter()
                .find(|f| f.code == id_code(id.as_bytes()))
                .unwrap();
            assert_eq!(f.entry[n], k as u8 + 1);
            assert!(n <= f.last);
        }
        let set: usize = tables
            .iter()
            .map(|f| f.entry.iter().filter(|&&e| e > 0).count())
            .sum();
        assert_eq!(set, phi::PHI_FIELDS.len());
        assert_eq!(PHI_FIELD_SEGMENTS, 3);
    }

    /// A header value marked as needing no JSON escaping ([`Msh::json_plain`]) holds no byte
    /// below 0x20, `"` or `\\`; plain values are marked.
    #[test]
    fn json_plain_header_values() {
        let messages: [&[u8]; 6] = [
            b"MSH|^~\\&|EHR|HOSP|ENG|HOSP|20240315101500|SEC|ADT^A01^ADT_A01|C1|P|2.5.1\r",
            b"MSH|^~\\&|MON\\T\\1|\"q\" \\\\ b|A\x01B|\x1f|\"|x|ORU^R\"01|9\x7f|P\tQ|2.6\r",
            b"MSH|^~\\&|caf\xc3\xa9|B|||||QRY\x02^A19^Q\"X~Z|Q|P|2.3\r",
            b"MSH|^~\\&|A|B|||||^A19|1|P|2.3\r",
            b"MSH|^~\\&|caf\xe9|\"|||||ADT|1|P|2.3\r",
            b"MSH#^~\\&#A\"#B#####ADT^A01#1#P#2.3\r",
        ];
        let escaped = |v: &str| v.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\');
        for msg in messages {
            let m = parse_message(msg, true);
            let h = m.msh.unwrap();
            for (n, v) in [
                (3, &h.sending_application),
                (4, &h.sending_facility),
                (5, &h.receiving_application),
                (6, &h.receiving_facility),
                (7, &h.message_time),
                (9, &h.message_type),
                (9, &h.message_code),
                (9, &h.trigger_event),
                (9, &h.message_structure),
                (10, &h.control_id),
                (11, &h.processing_id),
                (12, &h.version),
                (18, &h.charset),
            ] {
                if h.json_plain >> n & 1 == 1 {
                    assert!(!v.as_deref().is_some_and(escaped), "{msg:?} MSH-{n}");
                }
            }
        }
        let h = parse_message(messages[0], true).msh.unwrap();
        assert_eq!(h.json_plain & 0x1ef8, 0x1ef8);
        assert_eq!(parse_message(messages[1], true).msh.unwrap().json_plain, 0);
    }

    proptest::proptest! {
        /// Repeated OBX lines recognised without splitting ([`repeated_obx`]) give what reading
        /// every line gives: OBX lines with 15 to 19 separators before a few OBX-18 values, set
        /// ids of varying length (the guessed separator position is then wrong), other
        /// segments, CR, LF, CR LF or no terminator, whole or cut.
        #[test]
        fn repeated_obx_shortcut_reads_as_line_by_line(
            lines in proptest::collection::vec((0usize..5, 0usize..4, 0usize..4, 0usize..4, 0usize..5), 1..40),
            cut in 0usize..4000,
        ) {
            let values = ["MX800^PHILIPS^0009FBFFFE770205^EUI-64", "X", "", "^^"];
            let after = ["", "|Z", "|", "|Z|Y"];
            let ends = ["\r", "\r", "\n", "\r\n"];
            let mut msg = String::from("MSH|^~\\&|A|B|||||ORU^R01|1|P|2.6\r");
            for (i, &(pre, v, post, end, kind)) in lines.iter().enumerate() {
                let id = ["OBX", "OBX", "OBX", "NTE", "OBX"][kind];
                let set_id = "1".repeat(i % 3);
                let seps = "|".repeat(15 + pre);
                let text = if kind == 4 { "\n" } else { "" };
                msg.push_str(&format!("{id}|{set_id}{seps}{}{}{text}{}", values[v], after[post], ends[end]));
            }
            for t in [msg.as_str(), msg.trim_end(), msg.get(..cut.min(msg.len())).unwrap_or("")] {
                for complete in [true, false] {
                    proptest::prop_assert_eq!(
                        parse_text(t, complete, false, true),
                        parse_text(t, complete, false, false),
                        "{:?}", t
                    );
                }
            }
        }
    }

    #[test]
    fn prt_device_and_udi() {
        // A v2.8-style PRT for an implant: PRT-4 participation, PRT-10 device, PRT-16 UDI DI.
        let m = parse_message(
            b"MSH|^~\\&|OR|H|EHR|H|20240101||ADT^A08|1|P|2.8.2\rPRT|1|AD||IMP^Implant^HL70912||||||PUMP-42^ACME^1.2.840.99^ISO||||||(01)00844588003288^^2.51.1.1^ISO\r",
            true,
        );
        assert_eq!(
            m.devices,
            [
                Device {
                    source: DeviceSource::Prt10,
                    id: s("PUMP-42"),
                    namespace: s("ACME"),
                    universal_id: s("1.2.840.99"),
                    universal_id_type: s("ISO"),
                },
                Device {
                    source: DeviceSource::Prt16,
                    id: s("(01)00844588003288"),
                    namespace: None,
                    universal_id: s("2.51.1.1"),
                    universal_id_type: s("ISO"),
                }
            ]
        );
    }

    #[test]
    fn lf_and_crlf_terminators_are_tolerated_and_reported() {
        let crlf: Vec<u8> = ACK_AE
            .split(|&b| b == b'\r')
            .flat_map(|l| l.iter().copied().chain(*b"\r\n"))
            .collect();
        let lf: Vec<u8> = ACK_AE
            .iter()
            .map(|&b| if b == b'\r' { b'\n' } else { b })
            .collect();
        let want = parse_message(ACK_AE, true);
        for v in [crlf, lf] {
            let mut m = parse_message(&v, true);
            assert!(m.anomalies.non_cr_terminator);
            m.anomalies.non_cr_terminator = false;
            assert_eq!(m, want);
        }
    }

    #[test]
    fn other_delimiters_and_escapes() {
        // Field '#', component '@', repetition '!', escape '$', subcomponent '%'.
        let m = parse_message(
            b"MSH#@!$%#LAB$T$APP#FAC@1.2.3@ISO#RCV#RF#2024##ORU@R01@ORU_R01#C$F$1#P#2.5.1\rMSA#AA#X1\r",
            true,
        );
        assert_eq!(m.anomalies, Anomalies::default());
        let h = m.msh.unwrap();
        // Values are written with the recommended delimiters; escapes decoded.
        assert_eq!(h.sending_application, s("LAB%APP"));
        assert_eq!(h.sending_facility, s("FAC^1.2.3^ISO"));
        assert_eq!(h.message_type, s("ORU^R01"));
        assert_eq!(h.control_id, s("C#1"));
        assert_eq!(m.msa.unwrap().ack_code, s("AA"));
        // v2.7 truncation character in MSH-2: fields do not shift.
        let m = parse_message(b"MSH|^~\\&#|APP|FAC|R|RF|1||ADT^A01|77|P|2.7\r", true);
        assert_eq!(m.delimiters.truncation, Some('#'));
        assert_eq!(m.msh.unwrap().sending_application, s("APP"));
    }

    #[test]
    fn unescape_sequences() {
        let d = Delimiters::default();
        let u = |raw: &str| {
            let mut o = String::new();
            unescape(raw, &d, &mut o);
            o
        };
        assert_eq!(u(r"A\F\B\S\C\T\D\R\E\E\"), r"A|B^C&D~E\");
        assert_eq!(u(r"\X41424344\x"), "ABCDx");
        assert_eq!(u(r"\H\bold\N\ \.br\"), "bold ");
        assert_eq!(u(r"unterminated \F"), r"unterminated \F");
        // Non-ASCII before an escape sequence (hl7-parser's own decoder panics on this).
        assert_eq!(u("M\u{dc}LLER\\T\\J\u{d6}RG"), "M\u{dc}LLER&J\u{d6}RG");
        assert_eq!(u(r"\X0D0A\"), "");
    }

    #[test]
    fn damaged_messages_are_read_as_far_as_possible() {
        // Garbage line and a bad segment id between segments: skipped, counted, rest read.
        let m = parse_message(
            b"MSH|^~\\&|A|B|C|D|1||ADT^A01|5|P|2.5\r\r!!garbage\rP1D_x\rPID|1||X||NAME\rMSA|AA|4\r",
            true,
        );
        assert_eq!(m.anomalies.malformed_segments, 2);
        assert_eq!(ids(&m), ["MSH", "PID", "MSA"]);
        assert_eq!(m.phi_fields, ["PID-3", "PID-5"]);
        assert_eq!(m.msa.unwrap().control_id, s("4"));
        // No MSH first: reported; a later MSH still gives the header.
        let m = parse_message(b"EVN|A01\rMSH|^~\\&|APP\r", true);
        assert!(m.anomalies.no_msh);
        assert_eq!(m.msh.unwrap().sending_application, s("APP"));
        // Batch header first: its delimiters are used, not "no MSH".
        let m = parse_message(b"FHS|^~\\&|F\rBHS|^~\\&|B\rMSH|^~\\&|APP\r", true);
        assert!(!m.anomalies.no_msh);
        assert_eq!(ids(&m), ["FHS", "BHS", "MSH"]);
        // Unusable delimiters: lax reading, reported.
        let m = parse_message(b"MSH|^^|APP|FAC\r", true);
        assert_eq!(
            m.anomalies.bad_delimiters,
            Some(DelimiterError::BadCharacter)
        );
        assert_eq!(m.msh.unwrap().sending_facility, s("FAC"));
        // Nothing at all.
        let m = parse_message(b"", true);
        assert!(m.anomalies.no_msh && m.msh.is_none() && m.segment_count == 0);
    }

    #[test]
    fn prefix_drops_the_cut_segment() {
        let cut = &ADT_A01[..ADT_A01.len() - 10];
        let m = parse_message(cut, false);
        assert_eq!(ids(&m), ["MSH", "EVN", "PID", "NK1", "PV1"]);
        assert!(!m.phi_fields.contains("IN1"));
        // A prefix inside MSH keeps what it has.
        let m = parse_message(&ADT_A01[..40], false);
        assert_eq!(m.msh.unwrap().sending_application, s("TEST_EHR_ADT"));
    }

    #[test]
    fn values_and_lists_are_capped() {
        let mut msg = b"MSH|^~\\&|".to_vec();
        msg.extend(std::iter::repeat_n(b'A', 5000));
        msg.extend_from_slice(b"|F\r");
        for i in 0..200 {
            msg.extend_from_slice(
                format!("OBX|{i}|||||||||||||||||D{i}^V\rZZ{}|x\r", i % 10).as_bytes(),
            );
        }
        let m = parse_message(&msg, true);
        let h = m.msh.unwrap();
        assert_eq!(h.sending_application.unwrap().len(), MAX_VALUE_CHARS);
        assert_eq!(h.sending_facility, s("F"));
        assert_eq!(m.segment_ids.len(), MAX_SEGMENT_IDS);
        assert_eq!(m.segment_count, 401);
        assert_eq!(m.devices.len(), MAX_DEVICES);
    }

    /// Found by the hl7_message fuzz target: MSH-2 `^\\` makes `\\` the repetition separator, so
    /// MSH-18 `\\F` has an empty first repetition: the character set is absent, not "".
    #[test]
    fn fuzz_empty_first_repetition_of_msh18() {
        let m = parse_message(
            b"MSH|^\\|F\\H\\x\\N\\|*|DD^0|\\F\\|2|2.5\x0fNK1|\xb1|\"\"|F\\H\\x\\N\\|C|D|1|\x9e|PIA1D^\\|20|\\F|2.5\rNK1|\xb1|\"\"\r",
            true,
        );
        let h = m.msh.unwrap();
        assert_eq!(h.charset, None);
        assert_eq!(h.receiving_facility, s("~F"));
        assert_eq!(h.version, s("C"));
    }

    /// A huge OBX-5 (an embedded PDF, base64) before OBX-18 does not hide the device, and a
    /// field of a million component separators costs at most MAX_FIELD_PARSE_BYTES of parsing.
    #[test]
    fn huge_fields() {
        let mut msg = b"MSH|^~\\&|A|B|C|D|1||ORU^R01|9|P|2.6\rOBX|1|ED|PDF||^AP^^Base64^".to_vec();
        msg.extend(std::iter::repeat_n(b'Q', 1 << 20));
        msg.extend_from_slice(b"|||||||||||||DEV^ACME^0011223344556677^EUI-64\rOBX|2|ST|X||");
        msg.extend(std::iter::repeat_n(b'^', 1 << 20));
        msg.extend_from_slice(b"|||||||||||||");
        msg.extend(std::iter::repeat_n(b'^', 1 << 20));
        msg.extend_from_slice(b"\r");
        let m = parse_message(&msg, true);
        assert_eq!(m.devices.len(), 1);
        assert_eq!(m.devices[0].universal_id, s("0011223344556677"));
        assert_eq!(m.segment_count, 3);
        assert!(!m.anomalies.any());
    }

    #[test]
    fn hl7_null_and_empty_components_are_not_phi() {
        let m = parse_message(b"MSH|^~\\&|A\rPID|1||\"\"||^^^||||||~\r", true);
        assert!(m.phi_fields.is_empty(), "{:?}", m.phi_fields);
    }

    // The fast paths against what they stand for, on text made of the characters that matter
    // (delimiters of both sets, escapes, CR/LF, NUL, non-ASCII) and some letters.
    const ALPHABET: &[char] = &[
        '|', '^', '~', '\\', '&', '#', '@', '!', '$', '%', '\r', '\n', '\0', ' ', '"', 'A', 'F',
        'S', 'X', '4', '1', '\u{dc}', '\u{20ac}',
    ];

    fn text_from(ix: &[usize]) -> String {
        ix.iter().map(|&i| ALPHABET[i % ALPHABET.len()]).collect()
    }

    /// Long lines are split where `str::split` splits them.
    #[test]
    fn long_lines_are_split_where_std_splits() {
        for at in 0..150 {
            for end in ["\r", "\n", "\r\n"] {
                let t = format!("{}{end}{}", "A".repeat(at), "B".repeat(150 - at));
                let want: Vec<&str> = t.split(['\r', '\n']).filter(|l| !l.is_empty()).collect();
                let (lines, _) = segment_lines(&t, true);
                assert_eq!(lines.collect::<Vec<_>>(), want, "{at}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn lines_and_pieces_match_std_split(
            ix in proptest::collection::vec(0usize..64, 0..80),
            k in 0usize..12,
        ) {
            let t = text_from(&ix);
            let want: Vec<&str> = t.split(['\r', '\n']).filter(|l| !l.is_empty()).collect();
            let (lines, _) = segment_lines(&t, true);
            proptest::prop_assert_eq!(lines.collect::<Vec<_>>(), want);
            for sep in ['|', '#', '\u{dc}'] {
                proptest::prop_assert_eq!(nth_piece(&t, sep, k), t.split(sep).nth(k));
                proptest::prop_assert_eq!(pieces(&t, sep).collect::<Vec<_>>(), t.split(sep).collect::<Vec<_>>());
            }
        }

        #[test]
        fn field_text_matches_hl7_parser(
            ix in proptest::collection::vec(0usize..64, 0..60),
            set in 0usize..3,
            n in 1usize..6,
        ) {
            // Standard delimiters, another set, and one without escape and subcomponent.
            let header = ["MSH|^~\\&|", "MSH#@!$%#", "MSH|^~|"][set];
            let d = Delimiters::from_header_lax(header).0;
            let line = format!("PID{}{}", d.field, text_from(&ix).replace(['\r', '\n'], ""));
            let seg = Seg::new(&line, SegmentId(*b"PID"), d);
            let slow = seg
                .raw_capped(n)
                .and_then(|r| parse_field_with_separators(r, d.separators()).ok())
                .and_then(|f| text_of(&f, &d));
            let fast = seg.text(n);
            proptest::prop_assert_eq!(fast.as_deref(), slow.as_deref());
        }
    }
}
