//! PDU framing and the fixed parts of each PDU, PS3.8 section 9.3.
//!
//! Limits and recoverable failures first:
//! - [`parse_pdu_header`] needs 6 bytes and reports the exact shortfall; it accepts any type
//!   (an unknown type is a value, [`PduType::is_known`] says which) and any length;
//! - [`believable_header`] is the strict check used to resynchronise after a gap: known type,
//!   reserved byte zero, a length that fits the type and is at most [`MAX_BELIEVABLE_PDU`];
//! - bodies of A-ASSOCIATE PDUs are parsed from a complete buffer; the caller refuses to keep
//!   more than [`MAX_PDU_KEPT`] bytes of one;
//! - P-DATA-TF is never parsed as a whole by the streaming caller: [`parse_pdv_header`] reads one
//!   PDV item header and the caller streams (or skips) its value. [`PdvIter`] walks a complete
//!   body for tests and fuzzing.

use super::items::{self, PresentationContext, UserInfo};
use super::DicomError;

/// PDU header: type (1), reserved (1), length (4, big endian). PS3.8 9.3.1.
pub const PDU_HEADER_LEN: usize = 6;
/// PDV item header inside P-DATA-TF: item length (4), presentation context id (1), message
/// control header (1). PS3.8 9.3.5.1 and E.2.
pub const PDV_HEADER_LEN: usize = 6;
/// Fixed part of an A-ASSOCIATE-RQ/AC body after the PDU header: protocol version (2),
/// reserved (2), called AE (16), calling AE (16), reserved (32). PS3.8 9.3.2, 9.3.3.
pub const ASSOCIATE_FIXED_LEN: usize = 68;

/// Bytes of a non-P-DATA PDU body kept to be parsed. An A-ASSOCIATE-RQ proposing all 128
/// possible presentation contexts with several transfer syntaxes each and role selection for
/// each is about 40 KiB (getscu's 121 contexts are 17 KiB); anything longer is refused and
/// skipped.
pub const MAX_PDU_KEPT: usize = 64 * 1024;

/// Largest PDU length believed when looking for a PDU boundary. Implementations negotiate max
/// PDU lengths up to a few MiB (0 = unlimited is allowed but rare); 64 MiB leaves room.
pub const MAX_BELIEVABLE_PDU: u32 = 64 << 20;

/// PDU type, open so that an unknown value is reported. PS3.8 9.3.1, Table 9-11.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PduType(pub u8);

impl PduType {
    pub const ASSOCIATE_RQ: PduType = PduType(0x01);
    pub const ASSOCIATE_AC: PduType = PduType(0x02);
    pub const ASSOCIATE_RJ: PduType = PduType(0x03);
    pub const P_DATA_TF: PduType = PduType(0x04);
    pub const RELEASE_RQ: PduType = PduType(0x05);
    pub const RELEASE_RP: PduType = PduType(0x06);
    pub const ABORT: PduType = PduType(0x07);

    pub fn is_known(self) -> bool {
        (0x01..=0x07).contains(&self.0)
    }

    /// Index into the sensor's `DICOM_PDU_TYPES` label list (0..=6, 7 = unknown).
    pub fn index(self) -> usize {
        if self.is_known() {
            self.0 as usize - 1
        } else {
            7
        }
    }
}

/// A PDU header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PduHeader {
    pub pdu_type: PduType,
    /// Byte 1, reserved (0 on the wire; anything else is off-spec).
    pub reserved: u8,
    /// Length of the body that follows the 6-byte header.
    pub len: u32,
}

/// Reads a PDU header. `Incomplete` gives the exact shortfall.
pub fn parse_pdu_header(input: &[u8]) -> Result<(&[u8], PduHeader), DicomError> {
    if input.len() < PDU_HEADER_LEN {
        return Err(DicomError::need(PDU_HEADER_LEN - input.len()));
    }
    let hdr = PduHeader {
        pdu_type: PduType(input[0]),
        reserved: input[1],
        len: u32::from_be_bytes([input[2], input[3], input[4], input[5]]),
    };
    Ok((&input[PDU_HEADER_LEN..], hdr))
}

/// Whether a header is what a real peer would send (strict): known type, reserved byte zero,
/// and a length fitting the type. Used to find a PDU boundary after a gap, and by the
/// streaming caller to decide that bytes are not DICOM.
pub fn believable_header(h: &PduHeader) -> bool {
    if h.reserved != 0 || h.len > MAX_BELIEVABLE_PDU {
        return false;
    }
    match h.pdu_type {
        PduType::ASSOCIATE_RQ | PduType::ASSOCIATE_AC => h.len as usize >= ASSOCIATE_FIXED_LEN,
        // PS3.8 9.3.4, 9.3.6, 9.3.7, 9.3.8: always 4 bytes.
        PduType::ASSOCIATE_RJ | PduType::RELEASE_RQ | PduType::RELEASE_RP | PduType::ABORT => {
            h.len == 4
        }
        // At least one PDV item (4-byte length + context id + control header).
        PduType::P_DATA_TF => h.len as usize >= PDV_HEADER_LEN,
        _ => false,
    }
}

/// An A-ASSOCIATE-RQ or -AC, borrowed from its body. PS3.8 9.3.2 / 9.3.3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Associate<'a> {
    /// Bytes 7-8 of the PDU: bit 0 = version 1.
    pub protocol_version: u16,
    /// Bytes 11-26, 16 bytes, space padded (in an AC, echoed back and not to be tested).
    pub called_ae: &'a [u8],
    /// Bytes 27-42.
    pub calling_ae: &'a [u8],
    /// Item 0x10.
    pub application_context: Option<&'a [u8]>,
    /// Items 0x20 (RQ) or 0x21 (AC), in order, at most [`items::MAX_CONTEXTS`].
    pub contexts: Vec<PresentationContext<'a>>,
    /// How many presentation context items the PDU holds (may exceed `contexts.len()`).
    pub context_items: usize,
    /// Item 0x50.
    pub user_info: Option<UserInfo<'a>>,
    /// Types of items this module does not know (or that do not belong in this PDU), kept and
    /// reported; at most [`items::MAX_SUB_ITEMS`].
    pub unknown_items: Vec<u8>,
    /// A list was cut at its cap.
    pub truncated: bool,
}

/// Parses the body (after the 6-byte header) of an A-ASSOCIATE-RQ.
pub fn parse_associate_rq(body: &[u8]) -> Result<Associate<'_>, DicomError> {
    parse_associate(body, true)
}

/// Parses the body (after the 6-byte header) of an A-ASSOCIATE-AC.
pub fn parse_associate_ac(body: &[u8]) -> Result<Associate<'_>, DicomError> {
    parse_associate(body, false)
}

fn parse_associate(body: &[u8], rq: bool) -> Result<Associate<'_>, DicomError> {
    if body.len() < ASSOCIATE_FIXED_LEN {
        return Err(DicomError::invalid(
            "a-associate",
            body.len(),
            "shorter than its fixed part",
        ));
    }
    let mut a = Associate {
        protocol_version: u16::from_be_bytes([body[0], body[1]]),
        called_ae: &body[4..20],
        calling_ae: &body[20..36],
        application_context: None,
        contexts: Vec::new(),
        context_items: 0,
        user_info: None,
        unknown_items: Vec::new(),
        truncated: false,
    };
    let ctx_type = if rq {
        items::ITEM_PRESENTATION_CONTEXT_RQ
    } else {
        items::ITEM_PRESENTATION_CONTEXT_AC
    };
    let mut off = ASSOCIATE_FIXED_LEN;
    let mut rest = &body[ASSOCIATE_FIXED_LEN..];
    while !rest.is_empty() {
        let (r, it) = items::parse_item(rest).map_err(|e| e.shifted(off))?;
        off += rest.len() - r.len();
        rest = r;
        match it.item_type {
            items::ITEM_APPLICATION_CONTEXT if a.application_context.is_none() => {
                a.application_context = Some(it.value);
            }
            t if t == ctx_type => {
                a.context_items += 1;
                if a.contexts.len() >= items::MAX_CONTEXTS {
                    a.truncated = true;
                    continue;
                }
                let pc = if rq {
                    items::parse_presentation_context_rq(it.value)
                } else {
                    items::parse_presentation_context_ac(it.value)
                }
                .map_err(|e| e.shifted(off))?;
                a.truncated |= pc.truncated;
                a.contexts.push(pc);
            }
            items::ITEM_USER_INFORMATION if a.user_info.is_none() => {
                let ui = items::parse_user_info(it.value).map_err(|e| e.shifted(off))?;
                a.truncated |= ui.truncated;
                a.user_info = Some(ui);
            }
            t => {
                if a.unknown_items.len() < items::MAX_SUB_ITEMS {
                    a.unknown_items.push(t);
                } else {
                    a.truncated = true;
                }
            }
        }
    }
    Ok(a)
}

/// A-ASSOCIATE-RJ: result, source, reason/diag. PS3.8 9.3.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssociateRj {
    /// 1 rejected-permanent, 2 rejected-transient.
    pub result: u8,
    /// 1 service-user, 2 service-provider (ACSE), 3 service-provider (presentation).
    pub source: u8,
    pub reason: u8,
}

/// Parses the 4-byte body of an A-ASSOCIATE-RJ: reserved, result, source, reason.
pub fn parse_associate_rj(body: &[u8]) -> Result<AssociateRj, DicomError> {
    match body {
        [_, result, source, reason, ..] => Ok(AssociateRj {
            result: *result,
            source: *source,
            reason: *reason,
        }),
        _ => Err(DicomError::need(4 - body.len())),
    }
}

/// A-ABORT: source and reason/diag. PS3.8 9.3.8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abort {
    /// 0 service-user, 1 reserved, 2 service-provider.
    pub source: u8,
    /// Meaningful when source is 2: 0 not specified, 1 unrecognized PDU, 2 unexpected PDU,
    /// 4 unrecognized PDU parameter, 5 unexpected PDU parameter, 6 invalid PDU parameter value.
    pub reason: u8,
}

/// Parses the 4-byte body of an A-ABORT: reserved, reserved, source, reason.
pub fn parse_abort(body: &[u8]) -> Result<Abort, DicomError> {
    match body {
        [_, _, source, reason, ..] => Ok(Abort {
            source: *source,
            reason: *reason,
        }),
        _ => Err(DicomError::need(4 - body.len())),
    }
}

/// A PDV item header. PS3.8 9.3.5.1 and Annex E.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PdvHeader {
    /// Item length: context id + control header + value, so `value_len() = len - 2`.
    pub len: u32,
    pub context_id: u8,
    /// Message control header: bit 0 command (1) or data set (0), bit 1 last fragment.
    pub flags: u8,
}

impl PdvHeader {
    pub fn is_command(&self) -> bool {
        self.flags & 1 != 0
    }
    pub fn is_last(&self) -> bool {
        self.flags & 2 != 0
    }
    /// Bytes of the fragment that follow the header.
    pub fn value_len(&self) -> u32 {
        self.len.saturating_sub(2)
    }
}

/// Reads a PDV item header. `Incomplete` gives the exact shortfall; an item length under 2
/// (no room for context id and control header) is invalid.
pub fn parse_pdv_header(input: &[u8]) -> Result<(&[u8], PdvHeader), DicomError> {
    if input.len() < PDV_HEADER_LEN {
        return Err(DicomError::need(PDV_HEADER_LEN - input.len()));
    }
    let len = u32::from_be_bytes([input[0], input[1], input[2], input[3]]);
    if len < 2 {
        return Err(DicomError::invalid("pdv", 0, "item length under 2"));
    }
    let h = PdvHeader {
        len,
        context_id: input[4],
        flags: input[5],
    };
    Ok((&input[PDV_HEADER_LEN..], h))
}

/// One PDV of a complete P-DATA-TF body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pdv<'a> {
    pub header: PdvHeader,
    pub value: &'a [u8],
}

/// Walks the PDVs of a complete P-DATA-TF body. Yields an error once and then stops.
pub struct PdvIter<'a> {
    rest: &'a [u8],
    done: bool,
}

/// The PDVs of a complete P-DATA-TF body (tests and fuzzing; the sensor streams instead).
pub fn pdvs(body: &[u8]) -> PdvIter<'_> {
    PdvIter {
        rest: body,
        done: false,
    }
}

impl<'a> Iterator for PdvIter<'a> {
    type Item = Result<Pdv<'a>, DicomError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            return None;
        }
        let r = parse_pdv_header(self.rest).and_then(|(r, h)| {
            let n = h.value_len() as usize;
            match r.get(..n) {
                Some(v) => Ok((
                    &r[n..],
                    Pdv {
                        header: h,
                        value: v,
                    },
                )),
                None => Err(DicomError::need(n - r.len())),
            }
        });
        match r {
            Ok((rest, pdv)) => {
                self.rest = rest;
                Some(Ok(pdv))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl DicomError {
    /// The same error with its offset moved by `by` (for errors inside an item).
    pub(crate) fn shifted(self, by: usize) -> DicomError {
        match self {
            DicomError::Invalid {
                layer,
                offset,
                reason,
            } => DicomError::Invalid {
                layer,
                offset: offset.saturating_add(by),
                reason,
            },
            e => e,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::dicom::text;

    /// Decodes a hex string (test vectors copied from `tshark -T fields -e tcp.payload`).
    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let s: Vec<u8> = s.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
        s.chunks(2)
            .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap())
            .collect()
    }

    /// echo.pcap frame 6: A-ASSOCIATE-RQ CT_GE_01 -> PACS_SCP, one context (Verification,
    /// Implicit VR LE), user info: max PDU 16384, implementation class UID
    /// 1.2.276.0.7230010.3.0.3.6.7 and version OFFIS_DCMTK_367 (dcmtk 3.6.7).
    pub(crate) const ECHO_RQ: &str = "0100000000cd00010000504143535f534350202020202020202043545f47455f30312020202020202020000000000000000000000000000000000000000000000000000000000000000010000015312e322e3834302e31303030382e332e312e312e312000002e0100ff0030000011312e322e3834302e31303030382e312e3140000011312e322e3834302e31303030382e312e325000003a51000004000040005200001b312e322e3237362e302e373233303031302e332e302e332e362e375500000f4f464649535f44434d544b5f333637";
    /// echo.pcap frame 8: the A-ASSOCIATE-AC (context 1 accepted, Implicit VR LE).
    pub(crate) const ECHO_AC: &str = "0200000000b800010000504143535f534350202020202020202043545f47455f30312020202020202020000000000000000000000000000000000000000000000000000000000000000010000015312e322e3834302e31303030382e332e312e312e31210000190100000040000011312e322e3834302e31303030382e312e325000003a51000004000040005200001b312e322e3237362e302e373233303031302e332e302e332e362e375500000f4f464649535f44434d544b5f333637";

    #[test]
    fn header_streaming() {
        let rq = hex(ECHO_RQ);
        for n in 0..PDU_HEADER_LEN {
            assert_eq!(
                parse_pdu_header(&rq[..n]),
                Err(DicomError::need(PDU_HEADER_LEN - n))
            );
        }
        let (rest, h) = parse_pdu_header(&rq).unwrap();
        assert_eq!(h.pdu_type, PduType::ASSOCIATE_RQ);
        assert_eq!(h.len, 205); // tshark: dicom.pdu.len 205
        assert_eq!(rest.len(), 205);
        assert!(believable_header(&h));
        assert!(!believable_header(&PduHeader {
            pdu_type: PduType(8),
            reserved: 0,
            len: 4
        }));
        assert!(!believable_header(&PduHeader {
            pdu_type: PduType::RELEASE_RQ,
            reserved: 0,
            len: 5
        }));
        assert_eq!(PduType(0x07).index(), 6);
        assert_eq!(PduType(0x99).index(), 7);
    }

    #[test]
    fn echo_associate_rq_ac() {
        let rq = hex(ECHO_RQ);
        let a = parse_associate_rq(&rq[6..]).unwrap();
        assert_eq!(a.protocol_version, 1);
        assert_eq!(text(a.called_ae, 16), "PACS_SCP");
        assert_eq!(text(a.calling_ae, 16), "CT_GE_01");
        assert_eq!(a.application_context, Some(&b"1.2.840.10008.3.1.1.1"[..]));
        assert_eq!(a.contexts.len(), 1);
        let pc = &a.contexts[0];
        assert_eq!(pc.id, 1);
        assert_eq!(pc.abstract_syntax, Some(&b"1.2.840.10008.1.1"[..]));
        assert_eq!(pc.transfer_syntaxes, vec![&b"1.2.840.10008.1.2"[..]]);
        let ui = a.user_info.unwrap();
        assert_eq!(ui.max_pdu_length, Some(16384));
        assert_eq!(
            ui.implementation_class_uid,
            Some(&b"1.2.276.0.7230010.3.0.3.6.7"[..])
        );
        assert_eq!(
            ui.implementation_version_name,
            Some(&b"OFFIS_DCMTK_367"[..])
        );
        assert!(a.unknown_items.is_empty() && !a.truncated);

        let ac = hex(ECHO_AC);
        let a = parse_associate_ac(&ac[6..]).unwrap();
        assert_eq!(a.contexts[0].result, Some(0));
        assert_eq!(
            a.contexts[0].transfer_syntaxes,
            vec![&b"1.2.840.10008.1.2"[..]]
        );
        // Every truncation of the body is an error, never a panic.
        for n in 0..ac.len() - 6 {
            let _ = parse_associate_ac(&ac[6..6 + n]);
        }
        assert!(parse_associate_ac(&ac[6..50]).is_err());
    }

    /// reject.pcap: A-ASSOCIATE-RJ 1/1/7 (tshark: result 1, source 1, reason 7).
    #[test]
    fn reject_abort_pdata() {
        let rj = hex("030000000004 00010107");
        let (body, h) = parse_pdu_header(&rj).unwrap();
        assert_eq!(h.pdu_type, PduType::ASSOCIATE_RJ);
        assert_eq!(
            parse_associate_rj(body).unwrap(),
            AssociateRj {
                result: 1,
                source: 1,
                reason: 7
            }
        );
        // abort.pcap: A-ABORT source 0 reason 0.
        let ab = hex("070000000004 00000000");
        assert_eq!(
            parse_abort(&ab[6..]).unwrap(),
            Abort {
                source: 0,
                reason: 0
            }
        );
        assert_eq!(parse_abort(&ab[6..8]), Err(DicomError::need(2)));
        // echo.pcap frames 11+12: P-DATA-TF, one command PDV (C-ECHO-RQ, last fragment).
        let pd = hex("04000000004a 00000046 0103 0000000004000000380000000000020012000000312e322e3834302e31303030382e312e3100000000010200000030000000100102000000010000000008020000000101");
        let (body, h) = parse_pdu_header(&pd).unwrap();
        assert_eq!(h.len as usize, body.len());
        let v: Vec<_> = pdvs(body).collect();
        assert_eq!(v.len(), 1);
        let p = v[0].as_ref().unwrap();
        assert!(p.header.is_command() && p.header.is_last());
        assert_eq!(p.header.context_id, 1);
        assert_eq!(p.value.len(), 0x44);
        let bad: Vec<_> = pdvs(&body[..20]).collect();
        assert!(matches!(bad[..], [Err(DicomError::Incomplete(_))]));
        assert!(parse_pdv_header(&[0, 0, 0, 1, 1, 3]).is_err());
    }
}
