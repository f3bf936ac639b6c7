//! DICOM upper layer (PS3.8) and DIMSE (PS3.7): PDU framing, association items, command sets,
//! and a capped scan of data set prefixes (PS3.5) for device attributes and PHI presence.
//!
//! Inputs: bytes of one direction of a TCP stream, cut by the caller at PDU boundaries.
//! Outputs: borrowed views ([`pdu::Associate`], [`pdu::Pdv`]) or small owned values
//! ([`dimse::CommandSet`], [`dataset::DatasetScan`]). Nothing here keeps state between calls,
//! does I/O, or panics on any input.
//!
//! Streaming model (the caller keeps the state; see `src/protocols/dicom/state.rs`):
//! 1. [`pdu::parse_pdu_header`] on the first 6 bytes of a PDU gives its type and length; the
//!    caller decides from the type whether to keep the body ([`pdu::MAX_PDU_KEPT`]) or stream it;
//! 2. a kept body goes to [`pdu::parse_associate_rq`] / [`pdu::parse_associate_ac`] /
//!    [`pdu::parse_associate_rj`] / [`pdu::parse_abort`];
//! 3. a P-DATA-TF body is read PDV by PDV with [`pdu::parse_pdv_header`]: command fragments
//!    are concatenated (small) and handed to [`dimse::parse_command_set`]; data set fragments
//!    are kept up to a prefix and handed to [`dataset::scan`], the rest is skipped, never copied;
//! 4. after a gap, [`pdu::believable_header`] finds the next PDU to resynchronise on.
//!
//! Every function separates "need more bytes" ([`DicomError::Incomplete`], with the exact
//! shortfall when a length field gives it) from "these bytes are wrong"
//! ([`DicomError::Invalid`]) and "over a cap" ([`DicomError::TooLarge`]).
//!
//! Limits: the lists decoded from one A-ASSOCIATE PDU are cut at [`items::MAX_CONTEXTS`],
//! [`items::MAX_TRANSFER_SYNTAXES`], [`items::MAX_SUB_ITEMS`] (the value says so in its
//! `truncated` flag); loops over attacker-chosen counts are bounded by the input length; no
//! allocation is sized by a length field.
//!
//! Privacy: the user identity item is reported by type only; its primary field (user name,
//! Kerberos ticket, SAML assertion, JWT) and secondary field (password) are never copied. The
//! data set scan records which PHI attributes carry a value, never the value.

pub mod dataset;
pub mod dimse;
pub mod items;
pub mod pdu;

use thiserror::Error;

use crate::Needed;

/// The DICOM Application Context Name, PS3.7 A.2.1.
pub const APPLICATION_CONTEXT: &[u8] = b"1.2.840.10008.3.1.1.1";

/// Well-known transfer syntax UIDs (PS3.5 A and PS3.6 Table A-1).
pub mod ts {
    pub const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
    pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
    pub const DEFLATED_EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1.99";
    pub const EXPLICIT_VR_BE: &str = "1.2.840.10008.1.2.2";
    /// JPIP Referenced Deflate: the data set is deflated too.
    pub const JPIP_REFERENCED_DEFLATE: &str = "1.2.840.10008.1.2.4.95";
}

/// How the data sets of a presentation context are encoded, from its transfer syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    ImplicitLe,
    /// Explicit VR little endian: 1.2.840.10008.1.2.1 and every encapsulated (compressed
    /// pixel data) syntax, whose data set outside Pixel Data is explicit VR LE (PS3.5 A.4).
    ExplicitLe,
    /// Explicit VR big endian (retired) or a deflated data set: not scanned.
    Unsupported,
}

impl Encoding {
    /// The encoding of a transfer syntax UID (trailing NUL/space padding ignored).
    pub fn of_transfer_syntax(uid: &str) -> Encoding {
        match uid.trim_end_matches(['\0', ' ']) {
            ts::IMPLICIT_VR_LE => Encoding::ImplicitLe,
            ts::EXPLICIT_VR_BE | ts::DEFLATED_EXPLICIT_VR_LE | ts::JPIP_REFERENCED_DEFLATE => {
                Encoding::Unsupported
            }
            _ => Encoding::ExplicitLe,
        }
    }
}

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DicomError {
    /// The input ends before the structure does; more bytes may complete it.
    #[error("incomplete: {0:?} more bytes needed")]
    Incomplete(Needed),
    /// The bytes are not what PS3.8/PS3.7 allows at this place.
    #[error("invalid {layer} at offset {offset}: {reason}")]
    Invalid {
        layer: &'static str,
        offset: usize,
        reason: &'static str,
    },
    /// A length is over a cap of this module or of the caller.
    #[error("length {len} is over the limit {cap}")]
    TooLarge { len: u64, cap: u64 },
}

impl DicomError {
    pub(crate) fn invalid(layer: &'static str, offset: usize, reason: &'static str) -> Self {
        DicomError::Invalid {
            layer,
            offset,
            reason,
        }
    }
    pub(crate) fn need(n: usize) -> Self {
        DicomError::Incomplete(Needed::Size(n))
    }
}

/// Whether the first bytes of a direction start a DICOM upper-layer stream: `Some(true)` for an
/// A-ASSOCIATE-RQ or -AC with protocol version 1 and the DICOM application context, or a
/// P-DATA-TF whose first PDV is a command fragment starting with (0000,0000) Command Group
/// Length (midstream pickup); `Some(false)` as soon as the bytes rule it out; `None` when more
/// are needed (at most 100).
pub fn looks_like_dicom(data: &[u8]) -> Option<bool> {
    match *data.first()? {
        0x01 | 0x02 => looks_like_associate(data),
        0x04 => looks_like_command_pdata(data),
        _ => Some(false),
    }
}

/// Checks `data` against `want` byte by byte as far as `data` goes.
fn prefix_is(data: &[u8], at: usize, want: &[u8]) -> bool {
    let have = data.get(at..).unwrap_or(&[]);
    let n = have.len().min(want.len());
    have[..n] == want[..n]
}

fn looks_like_associate(d: &[u8]) -> Option<bool> {
    // PS3.8 9.3.2: type, reserved, length (4), protocol version (2), reserved (2), called AE
    // (16), calling AE (16), reserved (32), then the Application Context item (type 0x10).
    if d.len() >= 2 && d[1] != 0 {
        return Some(false);
    }
    if d.len() >= 6 {
        let len = u32::from_be_bytes([d[2], d[3], d[4], d[5]]);
        // 68 fixed bytes + an application context item (4 + 21) at least.
        if !(93..=pdu::MAX_BELIEVABLE_PDU).contains(&len) {
            return Some(false);
        }
    }
    // Protocol version: bit 0 set (version 1), PS3.8 9.3.2.
    if d.len() >= 8 && (d[7] & 1 == 0 || d[6] != 0) {
        return Some(false);
    }
    // AE titles: 16 printable ASCII characters each (PS3.5 6.2, AE value representation).
    for &b in d.iter().take(42).skip(10) {
        if !(0x20..=0x7e).contains(&b) {
            return Some(false);
        }
    }
    // Application context item header.
    if !prefix_is(d, 74, &[0x10, 0x00, 0x00]) {
        return Some(false);
    }
    if d.len() < 78 {
        return None;
    }
    let ilen = d[77] as usize;
    if !(21..=22).contains(&ilen) || !prefix_is(d, 78, APPLICATION_CONTEXT) {
        return Some(false);
    }
    if d.len() < 78 + ilen {
        return None;
    }
    Some(ilen == 21 || matches!(d[78 + 21], 0 | b' '))
}

fn looks_like_command_pdata(d: &[u8]) -> Option<bool> {
    // P-DATA-TF header (6), PDV item length (4), context id (odd), message control header
    // (bit 0 command, bit 1 last), then (0000,0000) UL length 4 in implicit VR LE (PS3.7 6.3).
    if d.len() >= 2 && d[1] != 0 {
        return Some(false);
    }
    if d.len() >= 10 {
        let plen = u32::from_be_bytes([d[2], d[3], d[4], d[5]]);
        let vlen = u32::from_be_bytes([d[6], d[7], d[8], d[9]]);
        if plen > pdu::MAX_BELIEVABLE_PDU || vlen < 2 + 12 || vlen > plen.saturating_sub(4) {
            return Some(false);
        }
    }
    if d.len() >= 11 && d[10] & 1 == 0 {
        return Some(false);
    }
    if d.len() >= 12 && (d[11] & 1 == 0 || d[11] > 3) {
        return Some(false);
    }
    if !prefix_is(d, 12, &[0, 0, 0, 0, 4, 0, 0, 0]) {
        return Some(false);
    }
    if d.len() < 20 {
        return None;
    }
    Some(true)
}

/// A text value from the wire as a printable string: bytes outside printable ASCII become
/// `?`, trailing spaces and NULs (PS3.5 6.2 padding) and leading spaces are dropped, and at
/// most `cap` bytes are kept.
pub fn text(b: &[u8], cap: usize) -> String {
    let b = &b[..b.len().min(cap)];
    let end = b
        .iter()
        .rposition(|&c| c != b' ' && c != 0)
        .map_or(0, |i| i + 1);
    let start = b[..end].iter().position(|&c| c != b' ').unwrap_or(end);
    let b = &b[start..end];
    if printable(b) {
        // Printable ASCII (the usual case): copied as it is.
        return std::str::from_utf8(b).map_or_else(|_| String::new(), str::to_owned);
    }
    b.iter()
        .map(|&c| {
            if (0x20..=0x7e).contains(&c) {
                c as char
            } else {
                '?'
            }
        })
        .collect()
}

/// Whether every byte of `b` is printable ASCII (0x20 to 0x7E): 8 bytes at a time (the last
/// word overlapping the one before), byte by byte under 8 bytes.
fn printable(b: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Non-zero when a byte is below 0x20 or above 0x7E ("has a byte less than n" of `w`;
    // adding 1 sets the high bit of 0x7F, and bytes from 0x80 have it already). Exact about
    // whether any byte is.
    let off = |w: u64| (w.wrapping_sub(ONES * 0x20) & !w | w.wrapping_add(ONES) | w) & HIGH;
    let Some(last) = b.last_chunk::<8>() else {
        return b.iter().all(|c| (0x20..=0x7e).contains(c));
    };
    let (words, _) = b.as_chunks::<8>();
    let bad = words.iter().fold(off(u64::from_le_bytes(*last)), |a, w| {
        a | off(u64::from_le_bytes(*w))
    });
    bad == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_as_byte_by_byte() {
        for c in 0..=255u8 {
            for at in 0..20 {
                let mut b = b"1.2.840.10008.5.1.4".to_vec();
                b.insert(at.min(b.len()), c);
                for n in 0..=b.len() {
                    let s = &b[..n];
                    assert_eq!(
                        printable(s),
                        s.iter().all(|c| (0x20..=0x7e).contains(c)),
                        "{s:?}"
                    );
                }
            }
        }
    }

    /// echo.pcap frame 6: the first 99 bytes of CT_GE_01's A-ASSOCIATE-RQ to PACS_SCP.
    pub(crate) const ECHO_RQ_HEAD: &[u8] = b"\x01\x00\x00\x00\x00\xcd\x00\x01\x00\x00\
PACS_SCP        CT_GE_01        \
\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
\x10\x00\x00\x151.2.840.10008.3.1.1.1";

    #[test]
    fn probe_associate_rq() {
        assert_eq!(ECHO_RQ_HEAD.len(), 99);
        assert_eq!(looks_like_dicom(ECHO_RQ_HEAD), Some(true));
        for n in 0..99 {
            assert_eq!(looks_like_dicom(&ECHO_RQ_HEAD[..n]), None, "prefix {n}");
        }
        let mut bad = ECHO_RQ_HEAD.to_vec();
        bad[7] = 2; // protocol version 2
        assert_eq!(looks_like_dicom(&bad[..8]), Some(false));
        let mut bad = ECHO_RQ_HEAD.to_vec();
        bad[97] = b'2'; // another application context
        assert_eq!(looks_like_dicom(&bad), Some(false));
        assert_eq!(looks_like_dicom(b"GET / HTTP/1.1"), Some(false));
        assert_eq!(looks_like_dicom(b"\x0bMSH|"), Some(false));
        assert_eq!(looks_like_dicom(b"\x01\x01"), Some(false));
        assert_eq!(looks_like_dicom(b""), None);
    }

    /// echo.pcap frame 12: P-DATA-TF with the C-ECHO-RQ command PDV (first 20 bytes).
    #[test]
    fn probe_command_pdata() {
        let d = b"\x04\x00\x00\x00\x00\x4a\x00\x00\x00\x46\x01\x03\x00\x00\x00\x00\x04\x00\x00\x00";
        assert_eq!(looks_like_dicom(d), Some(true));
        assert_eq!(looks_like_dicom(&d[..19]), None);
        let mut data_pdv = d.to_vec();
        data_pdv[11] = 0x02;
        assert_eq!(looks_like_dicom(&data_pdv), Some(false));
    }

    #[test]
    fn encodings_and_text() {
        assert_eq!(
            Encoding::of_transfer_syntax("1.2.840.10008.1.2\0"),
            Encoding::ImplicitLe
        );
        assert_eq!(
            Encoding::of_transfer_syntax("1.2.840.10008.1.2.4.50"),
            Encoding::ExplicitLe
        );
        assert_eq!(
            Encoding::of_transfer_syntax(ts::EXPLICIT_VR_BE),
            Encoding::Unsupported
        );
        assert_eq!(text(b"CT_GE_01        ", 16), "CT_GE_01");
        assert_eq!(text(b"  A\x01B\0", 16), "A?B");
        assert_eq!(text(b"    ", 16), "");
        // The printable fast path and the per-byte mapping agree on every byte.
        let reference = |b: &[u8]| -> String {
            let t: &[u8] = match b.iter().rposition(|&c| c != b' ' && c != 0) {
                Some(e) => &b[..=e],
                None => &[],
            };
            let t = &t[t.iter().position(|&c| c != b' ').unwrap_or(t.len())..];
            t.iter()
                .map(|&c| {
                    if (0x20..=0x7e).contains(&c) {
                        c as char
                    } else {
                        '?'
                    }
                })
                .collect()
        };
        for c in 0..=255u8 {
            for v in [
                vec![c],
                vec![b' ', c, b'A', c, 0],
                vec![b'1', b'.', c, b' ', b' '],
            ] {
                assert_eq!(text(&v, 64), reference(&v), "{v:?}");
            }
        }
    }
}
