//! SNMP messages (RFC 1157 v1, RFC 3416 v2c PDUs, RFC 1910 v2u, RFC 3412/3414 v3) in BER (X.690).
//!
//! Inputs: one UDP payload. Output: an owned [`SnmpMessage`]: version, what kind of community
//! was used ([`Community`], never the string itself), the PDU type, the varbind OIDs, and from
//! responses the two values inventory uses (sysDescr.0 and sysObjectID.0). For v3: the security
//! level from msgFlags and whether a user name was sent (never the name). For v2u: whether the
//! data was encrypted (its parameters are not read). No I/O, no panics.
//!
//! Limits and recoverable failures: BER lengths of at most 4 bytes, each checked against the
//! datagram; nesting is fixed by the message shape (no recursion); at most [`MAX_VARBINDS`]
//! varbinds are read; OIDs longer than [`MAX_OID_ARCS`] arcs are cut; sysDescr is cut at
//! [`MAX_DESCR_LEN`] bytes and decoded lossily. An encrypted v3 PDU yields no PDU type.
//!
//! Once the header has decoded (version and community; for v3 msgGlobalData and
//! msgSecurityParameters) the message is returned even when what follows is cut short (a
//! datagram truncated by the capture's snap length, or a message whose outer length claims more
//! than the datagram holds) or malformed (a PDU or varbind that is not what RFC 3416 says):
//! [`SnmpMessage::malformed`] is set and everything read before the fault is kept, as Wireshark
//! shows the version and community of such a message and marks the rest malformed. The
//! community was on the wire either way. A header that does not decode is an error.

use thiserror::Error;

use crate::Needed;

/// Varbinds read from one PDU.
pub const MAX_VARBINDS: usize = 64;
/// Arcs kept of one OID.
pub const MAX_OID_ARCS: usize = 32;
/// Bytes kept of sysDescr.
pub const MAX_DESCR_LEN: usize = 256;

/// sysDescr.0 (RFC 1213).
pub const SYS_DESCR: &str = "1.3.6.1.2.1.1.1.0";
/// sysObjectID.0 (RFC 1213).
pub const SYS_OBJECT_ID: &str = "1.3.6.1.2.1.1.2.0";

/// SNMP errors.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SnmpError {
    #[error("SNMP message incomplete: {needed:?} more bytes needed")]
    Incomplete { needed: Needed },
    #[error("invalid SNMP {layer} at offset {offset}: {reason}")]
    Invalid {
        layer: &'static str,
        offset: usize,
        reason: &'static str,
    },
}

/// The message version field: 0 = v1, 1 = v2c, 2 = v2u, 3 = v3 (RFC 3412 6). Open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnmpVersion(pub i64);

impl SnmpVersion {
    pub const V1: SnmpVersion = SnmpVersion(0);
    pub const V2C: SnmpVersion = SnmpVersion(1);
    /// SNMPv2u (RFC 1910, historic): user-based security, no community.
    pub const V2U: SnmpVersion = SnmpVersion(2);
    pub const V3: SnmpVersion = SnmpVersion(3);

    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "v1",
            1 => "v2c",
            2 => "v2u",
            3 => "v3",
            _ => "unknown",
        }
    }
}

/// What kind of community string a v1/v2c message carried. The string is never kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Community {
    /// `public` (any case): the default read community of most agents.
    Public,
    /// `private` (any case): the default read-write community.
    Private,
    Empty,
    Other,
}

impl Community {
    fn classify(s: &[u8]) -> Community {
        if s.is_empty() {
            Community::Empty
        } else if s.eq_ignore_ascii_case(b"public") {
            Community::Public
        } else if s.eq_ignore_ascii_case(b"private") {
            Community::Private
        } else {
            Community::Other
        }
    }

    /// "default" (public or private, not told apart: naming it would be writing the
    /// community), "empty" or "other".
    pub fn name(self) -> &'static str {
        match self {
            Community::Public | Community::Private => "default",
            Community::Empty => "empty",
            Community::Other => "other",
        }
    }

    /// `public` or `private`.
    pub fn is_default(self) -> bool {
        matches!(self, Community::Public | Community::Private)
    }
}

/// PDU types (context-specific constructed tags 0..8, RFC 3416 3). Open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PduType(pub u8);

impl PduType {
    pub const GET: PduType = PduType(0);
    pub const GET_NEXT: PduType = PduType(1);
    pub const RESPONSE: PduType = PduType(2);
    pub const SET: PduType = PduType(3);
    pub const TRAP_V1: PduType = PduType(4);
    pub const GET_BULK: PduType = PduType(5);
    pub const INFORM: PduType = PduType(6);
    pub const TRAP_V2: PduType = PduType(7);
    pub const REPORT: PduType = PduType(8);

    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "get_request",
            1 => "get_next_request",
            2 => "response",
            3 => "set_request",
            4 => "trap_v1",
            5 => "get_bulk_request",
            6 => "inform_request",
            7 => "trap_v2",
            8 => "report",
            _ => "unknown",
        }
    }
}

/// SNMPv3 header facts (RFC 3412 6.4, RFC 3414 2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct V3Info {
    /// msgFlags authFlag.
    pub auth: bool,
    /// msgFlags privFlag (the scoped PDU is encrypted).
    pub privacy: bool,
    /// msgFlags reportableFlag.
    pub reportable: bool,
    /// msgSecurityModel (3 = USM).
    pub security_model: i64,
    /// A non-empty msgUserName was sent.
    pub user_present: bool,
}

/// One decoded SNMP message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct SnmpMessage {
    pub version: SnmpVersion,
    /// v1/v2c only.
    pub community: Option<Community>,
    /// None when the v3 scoped PDU is encrypted.
    pub pdu_type: Option<PduType>,
    /// v3 only.
    pub v3: Option<V3Info>,
    /// SNMPv2u (RFC 1910, version 2) only: the message's data was `encrypted` (an OCTET
    /// STRING), not a `plaintext` PDU (tshark's `snmp.datav2u`: 1, 0). Its `parameters` (model,
    /// QoS, agent id, user name, auth digest) are not read, and never kept.
    pub v2u_encrypted: Option<bool>,
    /// error-status of a response (0 = noError).
    pub error_status: Option<i64>,
    /// Varbind OIDs in order, dotted, at most [`MAX_VARBINDS`].
    pub oids: Vec<String>,
    /// sysDescr.0 from a response, cut at [`MAX_DESCR_LEN`].
    pub sys_descr: Option<String>,
    /// sysObjectID.0 from a response.
    pub sys_object_id: Option<String>,
    /// The header decoded but the rest of the message is truncated or malformed (module docs):
    /// the fields above hold what was read before the fault.
    pub malformed: bool,
}

/// One BER TLV: tag, content, and its offset in the datagram.
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    at: usize,
}

/// Reads BER TLVs from a slice while tracking the offset in the whole datagram.
struct Reader<'a> {
    buf: &'a [u8],
    base: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, base }
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The BER tag at the start, the bytes after the length octets, and the content length
    /// the length octets claim (which may be more than the bytes there).
    fn tag_and_len(&self, layer: &'static str) -> Result<(u8, &'a [u8], usize), SnmpError> {
        let (&tag, rest) = self.buf.split_first().ok_or(SnmpError::Incomplete {
            needed: Needed::Unknown,
        })?;
        if tag & 0x1f == 0x1f {
            return Err(SnmpError::Invalid {
                layer,
                offset: self.base,
                reason: "multi-byte tag",
            });
        }
        let (&l0, rest) = rest.split_first().ok_or(SnmpError::Incomplete {
            needed: Needed::Unknown,
        })?;
        if l0 < 0x80 {
            return Ok((tag, rest, usize::from(l0)));
        }
        let n = usize::from(l0 & 0x7f);
        if n == 0 || n > 4 {
            return Err(SnmpError::Invalid {
                layer,
                offset: self.base + 1,
                reason: "indefinite or over-long BER length",
            });
        }
        let lb = rest.get(..n).ok_or_else(|| SnmpError::Incomplete {
            needed: Needed::Size(n - rest.len()),
        })?;
        let len = lb.iter().fold(0usize, |a, &x| (a << 8) | usize::from(x));
        Ok((tag, &rest[n..], len))
    }

    fn read(&mut self, layer: &'static str) -> Result<Tlv<'a>, SnmpError> {
        let (tag, rest, len) = self.tag_and_len(layer)?;
        let content = rest.get(..len).ok_or_else(|| SnmpError::Incomplete {
            needed: Needed::Size(len - rest.len()),
        })?;
        let at = self.base + (self.buf.len() - rest.len());
        self.buf = &rest[len..];
        self.base = at + len;
        Ok(Tlv { tag, content, at })
    }

    /// Like [`Reader::take_tagged`], but a TLV whose content runs past the end of the buffer
    /// gives the bytes that are there and `true` (cut), instead of an error.
    fn take_tagged_prefix(
        &mut self,
        tag: u8,
        layer: &'static str,
    ) -> Result<(Tlv<'a>, bool), SnmpError> {
        let saved = (self.buf, self.base);
        match self.take_tagged(tag, layer) {
            Ok(t) => Ok((t, false)),
            Err(SnmpError::Incomplete { .. }) => {
                (self.buf, self.base) = saved;
                let (head, content) = self.header(layer)?;
                if head.0 != tag {
                    return Err(SnmpError::Invalid {
                        layer,
                        offset: self.base,
                        reason: "unexpected BER tag",
                    });
                }
                let at = self.base + head.1;
                self.base += self.buf.len();
                self.buf = &[];
                Ok((Tlv { tag, content, at }, true))
            }
            Err(e) => Err(e),
        }
    }

    /// The tag and header length of the TLV at the start, and the content bytes present (all
    /// of them up to the end of the buffer when the length claims more).
    fn header(&self, layer: &'static str) -> Result<((u8, usize), &'a [u8]), SnmpError> {
        // A header cut short is reported as needing an unknown number of bytes.
        let (tag, rest, len) = self.tag_and_len(layer).map_err(|e| match e {
            SnmpError::Incomplete { .. } => SnmpError::Incomplete {
                needed: Needed::Unknown,
            },
            e => e,
        })?;
        let hlen = self.buf.len() - rest.len();
        Ok(((tag, hlen), &rest[..len.min(rest.len())]))
    }

    fn take_tagged(&mut self, tag: u8, layer: &'static str) -> Result<Tlv<'a>, SnmpError> {
        let at = self.base;
        let t = self.read(layer)?;
        if t.tag != tag {
            return Err(SnmpError::Invalid {
                layer,
                offset: at,
                reason: "unexpected BER tag",
            });
        }
        Ok(t)
    }
}

fn integer(content: &[u8]) -> Option<i64> {
    if content.is_empty() || content.len() > 8 {
        return None;
    }
    let neg = content[0] & 0x80 != 0;
    let mut v: i64 = if neg { -1 } else { 0 };
    for &b in content {
        v = (v << 8) | i64::from(b);
    }
    Some(v)
}

/// Dotted text of a BER OBJECT IDENTIFIER (X.690 8.19), at most [`MAX_OID_ARCS`] arcs.
pub fn oid_to_string(content: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut v: u64 = 0;
    let mut first = true;
    for &b in content {
        if v > (u64::MAX >> 7) {
            return None;
        }
        v = (v << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if first {
                let (a, c) = if v < 40 {
                    (0, v)
                } else if v < 80 {
                    (1, v - 40)
                } else {
                    (2, v - 80)
                };
                arcs.push(a);
                arcs.push(c);
                first = false;
            } else {
                arcs.push(v);
            }
            v = 0;
            if arcs.len() >= MAX_OID_ARCS {
                break;
            }
        }
    }
    if arcs.is_empty() {
        return None;
    }
    Some(
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;

/// Parse one SNMP message (one UDP datagram).
pub fn parse_message(input: &[u8]) -> Result<SnmpMessage, SnmpError> {
    let mut top = Reader::new(input, 0);
    // The outer SEQUENCE may claim more bytes than the datagram holds (cut by the snap length):
    // its header is read, and the bytes that are there.
    let (msg, cut) = top.take_tagged_prefix(SEQUENCE, "message")?;
    let mut r = Reader::new(msg.content, msg.at);
    let vtlv = r.take_tagged(INTEGER, "version")?;
    let version = SnmpVersion(integer(vtlv.content).ok_or(SnmpError::Invalid {
        layer: "version",
        offset: vtlv.at,
        reason: "bad INTEGER",
    })?);
    let mut out = SnmpMessage {
        version,
        community: None,
        pdu_type: None,
        v3: None,
        v2u_encrypted: None,
        error_status: None,
        oids: Vec::new(),
        sys_descr: None,
        sys_object_id: None,
        malformed: cut,
    };
    if version == SnmpVersion::V3 {
        // RFC 3412 6: msgGlobalData SEQUENCE { msgID, msgMaxSize, msgFlags, msgSecurityModel }.
        let g = r.take_tagged(SEQUENCE, "msgGlobalData")?;
        let mut gr = Reader::new(g.content, g.at);
        gr.take_tagged(INTEGER, "msgID")?;
        gr.take_tagged(INTEGER, "msgMaxSize")?;
        let flags = gr.take_tagged(OCTET_STRING, "msgFlags")?;
        let model = gr.take_tagged(INTEGER, "msgSecurityModel")?;
        let f = flags.content.first().copied().unwrap_or(0);
        let mut v3 = V3Info {
            auth: f & 1 != 0,
            privacy: f & 2 != 0,
            reportable: f & 4 != 0,
            security_model: integer(model.content).unwrap_or(-1),
            user_present: false,
        };
        // msgSecurityParameters: OCTET STRING holding (for USM) SEQUENCE { engineID, boots,
        // time, userName, authParams, privParams } (RFC 3414 2.4).
        let sp = r.take_tagged(OCTET_STRING, "msgSecurityParameters")?;
        if v3.security_model == 3 {
            let mut spr = Reader::new(sp.content, sp.at);
            if let Ok(usm) = spr.take_tagged(SEQUENCE, "usm") {
                let mut ur = Reader::new(usm.content, usm.at);
                let user = ur
                    .read("usm")
                    .and_then(|_| ur.read("usm"))
                    .and_then(|_| ur.read("usm"))
                    .and_then(|_| ur.take_tagged(OCTET_STRING, "msgUserName"));
                v3.user_present = user.is_ok_and(|u| !u.content.is_empty());
            }
        }
        out.v3 = Some(v3);
        // msgData: ScopedPDU SEQUENCE { contextEngineID, contextName, PDU } or encryptedPDU.
        let data = (|| -> Result<(), SnmpError> {
            let data = r.read("msgData")?;
            if data.tag == SEQUENCE {
                let mut sr = Reader::new(data.content, data.at);
                sr.take_tagged(OCTET_STRING, "contextEngineID")?;
                sr.take_tagged(OCTET_STRING, "contextName")?;
                read_pdu(&mut sr, &mut out)?;
            }
            Ok(())
        })();
        out.malformed |= data.is_err();
        return Ok(out);
    }
    if version == SnmpVersion::V2U {
        // RFC 1910 3.1: SEQUENCE { version INTEGER (2), parameters OCTET STRING,
        // datav2u CHOICE { plaintext PDUs, encrypted OCTET STRING } }. No community.
        r.take_tagged(OCTET_STRING, "parameters")?;
        let data = (|| -> Result<(), SnmpError> {
            let (tag, _) = r.header("datav2u")?.0;
            if tag == OCTET_STRING {
                out.v2u_encrypted = Some(true);
                r.read("encrypted")?;
                return Ok(());
            }
            out.v2u_encrypted = Some(false);
            read_pdu(&mut r, &mut out)
        })();
        out.malformed |= data.is_err();
        return Ok(out);
    }
    let c = r.take_tagged(OCTET_STRING, "community")?;
    out.community = Some(Community::classify(c.content));
    out.malformed |= read_pdu(&mut r, &mut out).is_err();
    Ok(out)
}

fn read_pdu(r: &mut Reader<'_>, out: &mut SnmpMessage) -> Result<(), SnmpError> {
    let pdu = r.read("pdu")?;
    if pdu.tag & 0xe0 != 0xa0 {
        return Err(SnmpError::Invalid {
            layer: "pdu",
            offset: pdu.at,
            reason: "not a context-specific constructed PDU tag",
        });
    }
    let t = PduType(pdu.tag & 0x1f);
    out.pdu_type = Some(t);
    let mut pr = Reader::new(pdu.content, pdu.at);
    if t == PduType::TRAP_V1 {
        // RFC 1157 4.1.6: enterprise, agent-addr, generic-trap, specific-trap, time-stamp.
        for _ in 0..5 {
            pr.read("trap")?;
        }
    } else {
        pr.take_tagged(INTEGER, "request-id")?;
        let es = pr.take_tagged(INTEGER, "error-status")?;
        out.error_status = integer(es.content);
        pr.take_tagged(INTEGER, "error-index")?;
    }
    let list = pr.take_tagged(SEQUENCE, "varbind-list")?;
    let mut lr = Reader::new(list.content, list.at);
    while !lr.is_empty() && out.oids.len() < MAX_VARBINDS {
        let vb = lr.take_tagged(SEQUENCE, "varbind")?;
        let mut vr = Reader::new(vb.content, vb.at);
        let name = vr.take_tagged(OID, "varbind name")?;
        let value = vr.read("varbind value")?;
        let Some(oid) = oid_to_string(name.content) else {
            continue;
        };
        if t == PduType::RESPONSE {
            if oid == SYS_DESCR && value.tag == OCTET_STRING {
                let v = &value.content[..value.content.len().min(MAX_DESCR_LEN)];
                out.sys_descr = Some(String::from_utf8_lossy(v).trim().to_string());
            } else if oid == SYS_OBJECT_ID && value.tag == OID {
                out.sys_object_id = oid_to_string(value.content);
            }
        }
        out.oids.push(oid);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // zeek snmpv1_get.pcap frame 2 (response): version 0, community "public", GetResponse with
    // sysDescr.0 = "Linux ..." (shortened here).
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        if content.len() < 0x80 {
            v.push(content.len() as u8);
        } else {
            v.push(0x82);
            v.extend_from_slice(&(content.len() as u16).to_be_bytes());
        }
        v.extend_from_slice(content);
        v
    }

    fn v1(community: &[u8], pdu_tag: u8, varbinds: &[(&[u8], Vec<u8>)]) -> Vec<u8> {
        let mut list = Vec::new();
        for (oid, value) in varbinds {
            let mut vb = tlv(OID, oid);
            vb.extend_from_slice(value);
            list.extend(tlv(SEQUENCE, &vb));
        }
        let mut pdu = tlv(INTEGER, &[1]);
        pdu.extend(tlv(INTEGER, &[0]));
        pdu.extend(tlv(INTEGER, &[0]));
        pdu.extend(tlv(SEQUENCE, &list));
        let mut m = tlv(INTEGER, &[0]);
        m.extend(tlv(OCTET_STRING, community));
        m.extend(tlv(pdu_tag, &pdu));
        tlv(SEQUENCE, &m)
    }

    const SYS_DESCR_OID: &[u8] = &[0x2b, 6, 1, 2, 1, 1, 1, 0];

    #[test]
    fn v1_response_sysdescr_public() {
        let m = v1(
            b"public",
            0xa2,
            &[(SYS_DESCR_OID, tlv(OCTET_STRING, b"Linux pump 4.19"))],
        );
        let p = parse_message(&m).unwrap();
        assert_eq!(p.version, SnmpVersion::V1);
        assert_eq!(p.community, Some(Community::Public));
        assert_eq!(p.pdu_type, Some(PduType::RESPONSE));
        assert_eq!(p.oids, vec![SYS_DESCR.to_string()]);
        assert_eq!(p.sys_descr.as_deref(), Some("Linux pump 4.19"));
        assert!(!p.malformed);
        // A prefix that cuts the header (version, community) is an error; a longer one (the
        // datagram cut by the capture's snap length) gives the header, marked malformed, and
        // never a sysDescr value.
        let header = 2 + 3 + 2 + b"public".len();
        for cut in 0..m.len() {
            match parse_message(&m[..cut]) {
                Err(_) => assert!(cut < header, "{cut}"),
                Ok(p) => {
                    assert!(cut >= header, "{cut}");
                    assert!(p.malformed, "{cut}");
                    assert_eq!(p.version, SnmpVersion::V1);
                    assert_eq!(p.community, Some(Community::Public));
                    assert_eq!(p.sys_descr, None);
                }
            }
        }
    }

    /// arkime tests/pcap/snmpv3_synthetic.pcap (pcaps/corpus/legacy/): messages whose PDU is
    /// malformed on purpose. tshark 4.0.17 shows their version and community (or v3 header) and
    /// "[Malformed Packet]"; medtap reports the same header, marked malformed.
    #[test]
    fn malformed_pdu_keeps_the_header() {
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        // frame 2: v2c "public" get-request whose varbind list overruns the PDU by one byte
        let f2 =
            hex("302402010104067075626c6963a017020101020100020100300d06092b060102010101000500");
        // frame 6: v2c "secret123" set-request, the same overrun
        let f6 = hex(
            "30270201010409736563726574313233a317020101020100020100300d06092b060102010101000500",
        );
        // frame 8: v2c "public" get-request whose varbind name is an OCTET STRING, not an OID
        let f8 = hex("302902010104067075626c6963a01c020412345678020100020100300e300c04082b060102010101000500");
        // frame 11: v1 "public" followed by an INTEGER where the PDU should be
        let f11 = hex("301102010004067075626c696302040000002a");
        // frame 1: v3 noAuthNoPriv, user admin_user, varbind list overrunning the PDU
        let f1 = hex("305b02010330100204000000010202100004010402010304253029040b80001f8880123456789abc020100020100040a61646d696e5f7573657204000400301d04000400a017020101020100020100300d06092b060102010101000500");
        for (what, m, version, community, pdu) in [
            (
                "f2",
                &f2,
                SnmpVersion::V2C,
                Some(Community::Public),
                Some(PduType::GET),
            ),
            (
                "f6",
                &f6,
                SnmpVersion::V2C,
                Some(Community::Other),
                Some(PduType::SET),
            ),
            (
                "f8",
                &f8,
                SnmpVersion::V2C,
                Some(Community::Public),
                Some(PduType::GET),
            ),
            ("f11", &f11, SnmpVersion::V1, Some(Community::Public), None),
            ("f1", &f1, SnmpVersion::V3, None, Some(PduType::GET)),
        ] {
            let p = parse_message(m).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(p.malformed, "{what}");
            assert_eq!(p.version, version, "{what}");
            assert_eq!(p.community, community, "{what}");
            assert_eq!(p.pdu_type, pdu, "{what}");
            assert!(p.oids.is_empty(), "{what}");
        }
        // frame 7, well formed (getBulk): not malformed
        let f7 = hex("302902010104067075626c6963a51c02041234567802010002010a300e300c06082b060102010101000500");
        let p = parse_message(&f7).unwrap();
        assert!(!p.malformed);
        assert_eq!(p.oids, vec![SYS_DESCR.to_string()]);
    }

    /// arkime_snmpv3_synthetic.pcap frames 9 and 10 (10.0.1.10 -> 10.0.0.161:161): tshark
    /// shows "version: v2u (2)", "parameters: 7075626c6963", "datav2u: plaintext (0)",
    /// get-request, request-id 1, 0 varbinds; not malformed.
    #[test]
    fn v2u() {
        let f9 = crate::dicom::pdu::tests::hex(
            "3018020102 04067075626c6963 a00b020101020100020100 3000",
        );
        let p = parse_message(&f9).unwrap();
        assert_eq!(p.version, SnmpVersion::V2U);
        assert_eq!(p.version.name(), "v2u");
        assert_eq!(p.community, None);
        assert_eq!(p.v3, None);
        assert_eq!(p.v2u_encrypted, Some(false));
        assert_eq!(p.pdu_type, Some(PduType::GET));
        assert_eq!(p.error_status, Some(0));
        assert!(!p.malformed);
        // The parameters (here the bytes "public") are not kept.
        assert!(!format!("{p:?}").contains("public"));
        // datav2u encrypted: an OCTET STRING, no PDU type.
        let enc = crate::dicom::pdu::tests::hex("300f020102 0400 0408 0102030405060708");
        let p = parse_message(&enc).unwrap();
        assert_eq!(
            (p.version, p.v2u_encrypted, p.pdu_type, p.malformed),
            (SnmpVersion::V2U, Some(true), None, false)
        );
        // Cut in the PDU: the header is kept, marked malformed; cut in the parameters: error.
        let p = parse_message(&f9[..f9.len() - 3]).unwrap();
        assert!(p.malformed);
        assert_eq!(p.version, SnmpVersion::V2U);
        assert!(parse_message(&f9[..8]).is_err());
        // Every prefix and every one-byte change of both: no panic, never a community for v2u.
        for m in [&f9, &enc] {
            for cut in 0..m.len() {
                let _ = parse_message(&m[..cut]);
            }
            for i in 0..m.len() {
                for b in [0u8, 1, 2, 4, 0x30, 0x7f, 0x80, 0x81, 0x84, 0xa0, 0xff] {
                    let mut v = m.to_vec();
                    v[i] = b;
                    if let Ok(p) = parse_message(&v) {
                        assert!(p.version != SnmpVersion::V2U || p.community.is_none());
                    }
                }
            }
        }
    }

    #[test]
    fn community_kinds_are_never_kept() {
        let m = v1(b"s3cret", 0xa0, &[(SYS_DESCR_OID, vec![5, 0])]);
        let p = parse_message(&m).unwrap();
        assert_eq!(p.community, Some(Community::Other));
        assert!(!format!("{p:?}").contains("s3cret"));
        let m = v1(b"PRIVATE", 0xa3, &[]);
        assert_eq!(
            parse_message(&m).unwrap().community,
            Some(Community::Private)
        );
    }

    #[test]
    fn v3_auth_priv() {
        // version 3, msgGlobalData{1, 65507, flags 0x07, model 3}, USM{engine, 0, 0, "user",..}, encrypted.
        let mut g = tlv(INTEGER, &[1]);
        g.extend(tlv(INTEGER, &[0, 0xff, 0xe3]));
        g.extend(tlv(OCTET_STRING, &[7]));
        g.extend(tlv(INTEGER, &[3]));
        let mut usm = tlv(OCTET_STRING, b"\x80\0\0\0");
        usm.extend(tlv(INTEGER, &[0]));
        usm.extend(tlv(INTEGER, &[0]));
        usm.extend(tlv(OCTET_STRING, b"user"));
        usm.extend(tlv(OCTET_STRING, &[0; 12]));
        usm.extend(tlv(OCTET_STRING, &[0; 8]));
        let mut m = tlv(INTEGER, &[3]);
        m.extend(tlv(SEQUENCE, &g));
        m.extend(tlv(OCTET_STRING, &tlv(SEQUENCE, &usm)));
        m.extend(tlv(OCTET_STRING, &[0xaa; 20]));
        let p = parse_message(&tlv(SEQUENCE, &m)).unwrap();
        assert_eq!(p.version, SnmpVersion::V3);
        assert_eq!(p.community, None);
        assert_eq!(p.pdu_type, None);
        let v3 = p.v3.unwrap();
        assert!(v3.auth && v3.privacy && v3.user_present);
    }

    #[test]
    fn oids() {
        assert_eq!(
            oid_to_string(&[0x2b, 6, 1, 4, 1, 0x82, 0x37]).as_deref(),
            Some("1.3.6.1.4.1.311")
        );
        assert_eq!(oid_to_string(&[]), None);
    }
}
