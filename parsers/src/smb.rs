//! SMB negotiation: which dialects a client offers and which one the server picks, for SMB1
//! (MS-CIFS 2.2.4.52) and SMB2/3 (MS-SMB2 2.2.3, 2.2.4), framed by the NetBIOS session service
//! (RFC 1002 4.3) on TCP 139 or its direct-hosted form on TCP 445 (MS-SMB2 2.1).
//!
//! Inputs: bytes of one direction of a TCP stream. Outputs: [`NbssFrame`]s and, for a frame
//! carrying SMB, an [`SmbMessage`] (dialect names and numbers, and the NativeOS/NativeLanMan
//! strings of an SMB1 SESSION_SETUP_ANDX (MS-CIFS 2.2.4.53, MS-SMB 2.2.4.6); nothing from
//! file names, user names, domains, passwords or paths). No I/O, no state, no panics.
//!
//! Limits and recoverable failures: [`parse_nbss`] reports [`SmbError::Incomplete`] with the exact
//! shortfall when the length field says how much is missing; a frame over [`MAX_FRAME_LEN`]
//! bytes is [`SmbError::TooLarge`] (callers skip it without buffering). At most [`MAX_DIALECTS`]
//! dialects are read; SMB1 dialect strings are cut at [`MAX_DIALECT_LEN`] bytes and decoded
//! lossily. NativeOS and NativeLanMan are cut at [`MAX_NATIVE_LEN`] characters; a string the
//! frame ends inside is returned as far as it goes (a kept prefix of a long frame still yields
//! what it holds).

use thiserror::Error;

use crate::bytes::{le16, le32};
use crate::Needed;

/// NetBIOS session header: type, flags/length high byte, length (RFC 1002 4.3.1).
pub const NBSS_HEADER_LEN: usize = 4;
/// SMB1 header (MS-CIFS 2.2.3.1).
pub const SMB1_HEADER_LEN: usize = 32;
/// SMB2 header (MS-SMB2 2.2.1).
pub const SMB2_HEADER_LEN: usize = 64;
/// Largest NetBIOS frame a caller should buffer: the negotiate messages are under 1 KiB; a
/// direct-hosted frame may announce up to 16 MiB of file data, which is skipped, not kept.
pub const MAX_FRAME_LEN: usize = 64 * 1024;
/// Dialects read from one negotiate request (Windows offers 5, old clients up to 12).
pub const MAX_DIALECTS: usize = 32;
/// Bytes kept of one SMB1 dialect string.
pub const MAX_DIALECT_LEN: usize = 64;
/// Characters kept of one NativeOS / NativeLanMan string (Windows sends under 64, e.g.
/// "Windows Server 2008 R2 Standard 7601 Service Pack 1").
pub const MAX_NATIVE_LEN: usize = 128;

/// SMB errors.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SmbError {
    #[error("SMB frame incomplete: {needed:?} more bytes needed")]
    Incomplete { needed: Needed },
    #[error("NetBIOS frame of {len} bytes is over the {cap}-byte cap")]
    TooLarge { len: usize, cap: usize },
    #[error("invalid SMB {layer} at offset {offset}: {reason}")]
    Invalid {
        layer: &'static str,
        offset: usize,
        reason: &'static str,
    },
}

fn invalid(layer: &'static str, offset: usize, reason: &'static str) -> SmbError {
    SmbError::Invalid {
        layer,
        offset,
        reason,
    }
}

/// NetBIOS session packet types (RFC 1002 4.3.1). Open: unknown values get through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NbssType(pub u8);

impl NbssType {
    pub const SESSION_MESSAGE: NbssType = NbssType(0x00);
    pub const SESSION_REQUEST: NbssType = NbssType(0x81);
    pub const POSITIVE_RESPONSE: NbssType = NbssType(0x82);
    pub const NEGATIVE_RESPONSE: NbssType = NbssType(0x83);
    pub const RETARGET_RESPONSE: NbssType = NbssType(0x84);
    pub const KEEP_ALIVE: NbssType = NbssType(0x85);

    pub fn is_known(self) -> bool {
        matches!(self.0, 0x00 | 0x81..=0x85)
    }
}

/// One NetBIOS session frame: its type and declared length; `payload` holds the frame's bytes
/// when it is at most [`MAX_FRAME_LEN`] long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NbssFrame<'a> {
    pub kind: NbssType,
    pub len: usize,
    pub payload: &'a [u8],
}

/// The length of the frame whose header starts `input`, header included, without needing the
/// payload (so a caller can skip an oversized frame as it arrives).
///
/// Session messages (type 0) use 24 bits of length (direct-hosted SMB, MS-SMB2 2.1); the other
/// types 17 bits (RFC 1002: the low bit of the flags byte extends the length).
pub fn frame_len(input: &[u8]) -> Result<usize, SmbError> {
    let Some(h) = input.get(..NBSS_HEADER_LEN) else {
        return Err(SmbError::Incomplete {
            needed: Needed::Size(NBSS_HEADER_LEN - input.len()),
        });
    };
    let kind = NbssType(h[0]);
    if !kind.is_known() {
        return Err(invalid("nbss", 0, "unknown session packet type"));
    }
    let len = if kind == NbssType::SESSION_MESSAGE {
        (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3])
    } else {
        if h[1] & 0xfe != 0 {
            return Err(invalid("nbss", 1, "reserved flag bits set"));
        }
        (usize::from(h[1] & 1) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3])
    };
    Ok(NBSS_HEADER_LEN + len)
}

/// One whole NetBIOS session frame and the bytes after it.
pub fn parse_nbss(input: &[u8]) -> Result<(&[u8], NbssFrame<'_>), SmbError> {
    let total = frame_len(input)?;
    let len = total - NBSS_HEADER_LEN;
    if len > MAX_FRAME_LEN {
        return Err(SmbError::TooLarge {
            len,
            cap: MAX_FRAME_LEN,
        });
    }
    if input.len() < total {
        return Err(SmbError::Incomplete {
            needed: Needed::Size(total - input.len()),
        });
    }
    Ok((
        &input[total..],
        NbssFrame {
            kind: NbssType(input[0]),
            len,
            payload: &input[NBSS_HEADER_LEN..total],
        },
    ))
}

/// What an SMB message says about negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum SmbMessage {
    /// SMB1 NEGOTIATE request: the dialect strings offered, in order.
    Smb1NegotiateRequest { dialects: Vec<String> },
    /// SMB1 NEGOTIATE response: the index of the chosen dialect (0xffff: none acceptable) and
    /// whether the server requires signing (SecurityMode bit 0x08, NT LM 0.12 form only).
    Smb1NegotiateResponse {
        dialect_index: u16,
        signing_required: bool,
    },
    /// SMB1 SESSION_SETUP_ANDX request or response: what the sender says about its own
    /// software.
    Smb1SessionSetup(SessionSetup),
    /// Any other SMB1 message.
    Smb1Other { command: u8, response: bool },
    /// SMB2 NEGOTIATE request: the dialect revisions offered and whether the client requires
    /// signing.
    Smb2NegotiateRequest {
        dialects: Vec<u16>,
        signing_required: bool,
    },
    /// SMB2 NEGOTIATE response: the dialect revision chosen (0x02ff: the wildcard answer to an
    /// SMB1 negotiate that offered "SMB 2.???").
    Smb2NegotiateResponse {
        dialect: u16,
        signing_required: bool,
    },
    /// Any other SMB2 message.
    Smb2Other { command: u16, response: bool },
}

/// The strings of an SMB1 SESSION_SETUP_ANDX in which a client (request) or server (response)
/// names its operating system and SMB implementation. Account name, password and domain are
/// skipped, never returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSetup {
    /// A response (server to client).
    pub response: bool,
    /// The layout used: WordCount 10 (LANMAN request), 12 (NT LM 0.12 request with extended
    /// security), 13 (NT LM 0.12 request), 3 (response), 4 (response with extended security).
    pub word_count: u8,
    /// Extended security (a security blob instead of passwords: WordCount 12 or 4).
    pub extended_security: bool,
    /// Strings are UTF-16LE (Flags2 bit 0x8000, MS-CIFS 2.2.3.1).
    pub unicode: bool,
    /// NativeOS ("Windows 5.1", "Windows 2000 2195", "Unix"), if present and not empty.
    pub native_os: Option<String>,
    /// NativeLanMan ("Windows 2000 5.0", "Samba 4.17.12-Debian"), if present and not empty.
    pub native_lanman: Option<String>,
}

/// SMB1 NEGOTIATE command code (MS-CIFS 2.2.2.1).
pub const SMB1_COM_NEGOTIATE: u8 = 0x72;
/// SMB1 SESSION_SETUP_ANDX command code (MS-CIFS 2.2.2.1).
pub const SMB1_COM_SESSION_SETUP_ANDX: u8 = 0x73;
/// Flags2 bit: strings are Unicode (MS-CIFS 2.2.3.1, SMB_FLAGS2_UNICODE).
const SMB_FLAGS2_UNICODE: u16 = 0x8000;
/// SMB2 NEGOTIATE command code (MS-SMB2 2.2.1.2).
pub const SMB2_NEGOTIATE: u16 = 0x0000;

/// The SMB message in the payload of one session message (type 0) frame.
pub fn parse_smb(payload: &[u8]) -> Result<SmbMessage, SmbError> {
    match payload.get(..4) {
        Some([0xff, b'S', b'M', b'B']) => parse_smb1(payload),
        Some([0xfe, b'S', b'M', b'B']) => parse_smb2(payload),
        Some(_) => Err(invalid("smb", 0, "no SMB protocol id")),
        None => Err(SmbError::Incomplete {
            needed: Needed::Size(4 - payload.len()),
        }),
    }
}

fn parse_smb1(p: &[u8]) -> Result<SmbMessage, SmbError> {
    if p.len() < SMB1_HEADER_LEN + 1 {
        return Err(SmbError::Incomplete {
            needed: Needed::Size(SMB1_HEADER_LEN + 1 - p.len()),
        });
    }
    // MS-CIFS 2.2.3.1: Command at 4, Flags at 9 (0x80 = reply).
    let command = p[4];
    let response = p[9] & 0x80 != 0;
    if command == SMB1_COM_SESSION_SETUP_ANDX {
        return parse_session_setup(p, response).map(SmbMessage::Smb1SessionSetup);
    }
    if command != SMB1_COM_NEGOTIATE {
        return Ok(SmbMessage::Smb1Other { command, response });
    }
    // Parameters: WordCount (1 byte) then 2*WordCount bytes, then ByteCount (2) and the bytes.
    let word_count = usize::from(p[SMB1_HEADER_LEN]);
    let words = SMB1_HEADER_LEN + 1;
    if !response {
        // MS-CIFS 2.2.4.52.1: WordCount 0; Bytes: Dialects, each 0x02 then a NUL-terminated string.
        let bc_at = words + 2 * word_count;
        let byte_count = le16(p, bc_at).ok_or(invalid("smb1", bc_at, "no ByteCount"))?;
        let start = bc_at + 2;
        let end = start.saturating_add(usize::from(byte_count)).min(p.len());
        let mut buf = p.get(start..end).unwrap_or(&[]);
        let mut dialects = Vec::new();
        while let Some((&fmt, rest)) = buf.split_first() {
            if fmt != 0x02 {
                return Err(invalid(
                    "smb1",
                    end - buf.len(),
                    "dialect buffer format is not 0x02",
                ));
            }
            let n = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
            if dialects.len() < MAX_DIALECTS {
                let s = &rest[..n.min(MAX_DIALECT_LEN)];
                dialects.push(String::from_utf8_lossy(s).into_owned());
            }
            buf = rest.get(n + 1..).unwrap_or(&[]);
        }
        return Ok(SmbMessage::Smb1NegotiateRequest { dialects });
    }
    // MS-CIFS 2.2.4.52.2: DialectIndex is the first word; in the NT LM 0.12 form (WordCount 17)
    // SecurityMode follows (bit 0x08: signatures required).
    let dialect_index = le16(p, words).ok_or(invalid("smb1", words, "no DialectIndex"))?;
    let signing_required = word_count == 17 && p.get(words + 2).is_some_and(|m| m & 0x08 != 0);
    Ok(SmbMessage::Smb1NegotiateResponse {
        dialect_index,
        signing_required,
    })
}

/// SESSION_SETUP_ANDX (MS-CIFS 2.2.4.53, MS-SMB 2.2.4.6). `p` starts at the SMB header; string
/// alignment is relative to it. Lax at the end: the bytes may be cut short (a kept prefix, a
/// missing terminator); missing strings are `None`. An error response (WordCount 0) has none.
fn parse_session_setup(p: &[u8], response: bool) -> Result<SessionSetup, SmbError> {
    // Header: Flags2 at 10..12 (MS-CIFS 2.2.3.1). Parameters: WordCount at 32.
    let unicode = le16(p, 10).is_some_and(|f| f & SMB_FLAGS2_UNICODE != 0);
    let wc = p[SMB1_HEADER_LEN];
    let words = SMB1_HEADER_LEN + 1;
    let word = |i: usize| le16(p, words + 2 * i);
    let bc_at = words + 2 * usize::from(wc);
    let byte_count = le16(p, bc_at).ok_or(invalid("smb1", bc_at, "no ByteCount"))?;
    let start = bc_at + 2;
    let end = start.saturating_add(usize::from(byte_count)).min(p.len());
    // Words (each 2 bytes; the first two are AndXCommand/AndXReserved and AndXOffset):
    //   request 10: MaxBuffer, MaxMpx, VcNumber, SessionKey(2 words), PasswordLen, Reserved(2)
    //   request 12: ..., SessionKey(2), SecurityBlobLength (word 7), Reserved(2), Capabilities(2)
    //   request 13: ..., SessionKey(2), OEMPasswordLen (7), UnicodePasswordLen (8), Reserved(2),
    //               Capabilities(2)
    //   response 3: Action; response 4: Action, SecurityBlobLength (word 3)
    // Bytes before the strings: passwords or blob; the request's WordCount 10 and 13 forms
    // then carry AccountName and PrimaryDomain before NativeOS and NativeLanMan.
    let (skip, names_before): (usize, usize) = match (response, wc) {
        (false, 10) => (usize::from(word(7).unwrap_or(0)), 2),
        (false, 12) => (usize::from(word(7).unwrap_or(0)), 0),
        (false, 13) => (
            usize::from(word(7).unwrap_or(0)) + usize::from(word(8).unwrap_or(0)),
            2,
        ),
        (true, 3) => (0, 0),
        (true, 4) => (usize::from(word(3).unwrap_or(0)), 0),
        (true, 0) => {
            return Ok(SessionSetup {
                response,
                word_count: wc,
                extended_security: false,
                unicode,
                native_os: None,
                native_lanman: None,
            })
        }
        _ => return Err(invalid("smb1", SMB1_HEADER_LEN, "unexpected WordCount")),
    };
    let mut at = start.saturating_add(skip);
    let mut next = |keep: bool| -> Option<String> {
        if at >= end {
            return None;
        }
        let (s, after) = read_string(&p[..end], at, unicode, keep);
        at = after;
        Some(s)
    };
    // AccountName, PrimaryDomain: skipped, not kept.
    for _ in 0..names_before {
        next(false);
    }
    let native_os = next(true).filter(|s| !s.is_empty());
    let native_lanman = next(true).filter(|s| !s.is_empty());
    Ok(SessionSetup {
        response,
        word_count: wc,
        extended_security: matches!((response, wc), (false, 12) | (true, 4)),
        unicode,
        native_os,
        native_lanman,
    })
}

/// The NUL-terminated string at `at` (UTF-16LE aligned to 2 bytes from the SMB header when
/// `unicode`, else 8-bit, decoded as Latin-1 where not ASCII) and the offset after its
/// terminator. Lax: ends at the end of `b`; keeps at most [`MAX_NATIVE_LEN`] characters, none
/// unless `keep`.
fn read_string(b: &[u8], mut at: usize, unicode: bool, keep: bool) -> (String, usize) {
    let cap = if keep { MAX_NATIVE_LEN } else { 0 };
    let mut s = String::new();
    if unicode {
        // MS-CIFS 2.2.4.53: Pad bytes so that Unicode strings start on a 2-byte boundary.
        if at % 2 == 1 {
            at += 1;
        }
        let mut units = Vec::new();
        while let (Some(&lo), Some(&hi)) = (b.get(at), b.get(at + 1)) {
            at += 2;
            let u = u16::from_le_bytes([lo, hi]);
            if u == 0 {
                break;
            }
            if units.len() < cap {
                units.push(u);
            }
        }
        if at + 1 == b.len() {
            // An odd trailing byte: no room for a code unit.
            at = b.len();
        }
        s.extend(char::decode_utf16(units).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)));
    } else {
        let rest = b.get(at..).unwrap_or(&[]);
        let n = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
        s.extend(rest[..n].iter().take(cap).map(|&c| char::from(c)));
        at = at.saturating_add(n + 1);
    }
    (s, at.min(b.len()))
}

fn parse_smb2(p: &[u8]) -> Result<SmbMessage, SmbError> {
    if p.len() < SMB2_HEADER_LEN {
        return Err(SmbError::Incomplete {
            needed: Needed::Size(SMB2_HEADER_LEN - p.len()),
        });
    }
    // MS-SMB2 2.2.1: StructureSize (64) at 4, Command at 12, Flags at 16 (bit 0: response).
    if le16(p, 4) != Some(64) {
        return Err(invalid("smb2", 4, "header StructureSize is not 64"));
    }
    let command = le16(p, 12).unwrap_or(0xffff);
    let response = le32(p, 16).is_some_and(|f| f & 1 != 0);
    if command != SMB2_NEGOTIATE {
        return Ok(SmbMessage::Smb2Other { command, response });
    }
    let b = SMB2_HEADER_LEN;
    if !response {
        // MS-SMB2 2.2.3: StructureSize 36, DialectCount at +2, SecurityMode at +4, Dialects at +36.
        let count = usize::from(le16(p, b + 2).ok_or(invalid("smb2", b + 2, "no DialectCount"))?);
        let mode = le16(p, b + 4).unwrap_or(0);
        let dialects = (0..count.min(MAX_DIALECTS))
            .map_while(|i| le16(p, b + 36 + 2 * i))
            .collect();
        return Ok(SmbMessage::Smb2NegotiateRequest {
            dialects,
            signing_required: mode & 0x02 != 0,
        });
    }
    // MS-SMB2 2.2.4: StructureSize 65, SecurityMode at +2, DialectRevision at +4.
    let mode = le16(p, b + 2).ok_or(invalid("smb2", b + 2, "no SecurityMode"))?;
    let dialect = le16(p, b + 4).ok_or(invalid("smb2", b + 4, "no DialectRevision"))?;
    Ok(SmbMessage::Smb2NegotiateResponse {
        dialect,
        signing_required: mode & 0x02 != 0,
    })
}

/// The name of an SMB2/3 dialect revision ("2.0.2", "2.1", "3.0", "3.0.2", "3.1.1", "2.???"),
/// or its hex value.
pub fn smb2_dialect_name(d: u16) -> String {
    match d {
        0x0202 => "2.0.2".into(),
        0x0210 => "2.1".into(),
        0x0222 => "2.2.2".into(),
        0x0224 => "2.2.4".into(),
        0x0300 => "3.0".into(),
        0x0302 => "3.0.2".into(),
        0x0310 => "3.1.0".into(),
        0x0311 => "3.1.1".into(),
        0x02ff => "2.???".into(),
        _ => format!("0x{d:04x}"),
    }
}

/// Whether an SMB1 dialect string asks for SMB2 (the upgrade path: "SMB 2.002", "SMB 2.???").
pub fn is_smb2_dialect_string(s: &str) -> bool {
    s.starts_with("SMB 2.")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SMB1 negotiate request as smbclient/Windows send it: header then 0x02-prefixed dialects.
    pub(crate) fn smb1_negotiate(dialects: &[&str]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for d in dialects {
            bytes.push(2);
            bytes.extend_from_slice(d.as_bytes());
            bytes.push(0);
        }
        let mut p = vec![0xff, b'S', b'M', b'B', 0x72];
        p.resize(SMB1_HEADER_LEN, 0);
        p.push(0); // WordCount
        p.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
        p.extend_from_slice(&bytes);
        let mut f = vec![0, 0, (p.len() >> 8) as u8, p.len() as u8];
        f.extend_from_slice(&p);
        f
    }

    #[test]
    fn smb1_dialects_offered() {
        let f = smb1_negotiate(&["PC NETWORK PROGRAM 1.0", "LANMAN1.0", "NT LM 0.12"]);
        // Fed one prefix at a time: Incomplete with the exact shortfall once the header is in.
        for cut in 0..f.len() {
            match parse_nbss(&f[..cut]) {
                Err(SmbError::Incomplete { needed }) if cut >= 4 => {
                    assert_eq!(needed, Needed::Size(f.len() - cut))
                }
                Err(SmbError::Incomplete { .. }) => {}
                other => panic!("{cut}: {other:?}"),
            }
        }
        let (rest, frame) = parse_nbss(&f).unwrap();
        assert!(rest.is_empty());
        assert_eq!(
            parse_smb(frame.payload).unwrap(),
            SmbMessage::Smb1NegotiateRequest {
                dialects: vec![
                    "PC NETWORK PROGRAM 1.0".into(),
                    "LANMAN1.0".into(),
                    "NT LM 0.12".into()
                ]
            }
        );
    }

    #[test]
    fn smb2_negotiate_both_ways() {
        let mut req = vec![0xfe, b'S', b'M', b'B', 64, 0];
        req.resize(SMB2_HEADER_LEN, 0);
        let mut body = vec![36, 0, 3, 0, 1, 0];
        body.resize(36, 0);
        for d in [0x0202u16, 0x0210, 0x0311] {
            body.extend_from_slice(&d.to_le_bytes());
        }
        req.extend_from_slice(&body);
        assert_eq!(
            parse_smb(&req).unwrap(),
            SmbMessage::Smb2NegotiateRequest {
                dialects: vec![0x0202, 0x0210, 0x0311],
                signing_required: false
            }
        );
        let mut resp = vec![0xfe, b'S', b'M', b'B', 64, 0];
        resp.resize(SMB2_HEADER_LEN, 0);
        resp[16] = 1;
        resp.extend_from_slice(&[65, 0, 3, 0, 0x11, 0x03]);
        assert_eq!(
            parse_smb(&resp).unwrap(),
            SmbMessage::Smb2NegotiateResponse {
                dialect: 0x0311,
                signing_required: true
            }
        );
        assert_eq!(smb2_dialect_name(0x0311), "3.1.1");
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn session_setup(nbss_hex: &str) -> SessionSetup {
        let f = hex(nbss_hex);
        let (rest, frame) = parse_nbss(&f).unwrap();
        assert!(rest.is_empty());
        match parse_smb(frame.payload).unwrap() {
            SmbMessage::Smb1SessionSetup(s) => s,
            other => panic!("{other:?}"),
        }
    }

    /// pcaps/corpus/legacy/arkime_smb-smb1-ascii.pcap frames 9 and 10 (TCP payload): a Windows
    /// 2000 client's extended-security request (WordCount 12, NTLMSSP NEGOTIATE blob, ASCII
    /// strings) and the Windows Server 2008 R2 answer (WordCount 4, NTLMSSP CHALLENGE).
    /// tshark: smb.native_os "Windows 2000 2195" / "Windows Server 2008 R2 Standard 7601
    /// Service Pack 1", smb.native_lanman "Windows 2000 5.0" / "Windows Server 2008 R2
    /// Standard 6.1".
    #[test]
    fn session_setup_extended_security_ascii_from_arkime() {
        let req = session_setup(
            "000000b3ff534d4273000000001807280000000000000000000000000000727c0000a5440cff000000dfff0200010000
             000000550000000000d40000807800605306062b0601050502a0493047a00e300c060a2b06010401823702020aa23504
             334e544c4d5353500001000000158288e2030003002000000010001000230000004c4142544845484f53544e414d4548
             4552455857696e646f7773203230303020323139350057696e646f7773203230303020352e3000",
        );
        assert_eq!(
            req,
            SessionSetup {
                response: false,
                word_count: 12,
                extended_security: true,
                unicode: false,
                native_os: Some("Windows 2000 2195".into()),
                native_lanman: Some("Windows 2000 5.0".into()),
            }
        );
        let resp = session_setup(
            "0000015eff534d4273160000c09807680000000000000000000000000000727c0020a54404ff005e010000db003301a1
             81d83081d5a0030a0101a10c060a2b06010401823702020aa281bf0481bc4e544c4d5353500002000000060006003800
             0000158289e200000000fbe2342200000000000000007e007e003e0000000601b11d0000000f4c004100420002000600
             4c00410042000100060044004300330004001a006c00610062002e0064006f006d00610069006e002e00650078000300
             22006400630033002e006c00610062002e0064006f006d00610069006e002e00650078000500120064006f006d006100
             69006e002e00650078000700080046fe95d1ad7dd0010000000057696e646f7773205365727665722032303038205232
             205374616e6461726420373630312053657276696365205061636b20310057696e646f77732053657276657220323030
             38205232205374616e6461726420362e3100",
        );
        assert_eq!(
            resp,
            SessionSetup {
                response: true,
                word_count: 4,
                extended_security: true,
                unicode: false,
                native_os: Some("Windows Server 2008 R2 Standard 7601 Service Pack 1".into()),
                native_lanman: Some("Windows Server 2008 R2 Standard 6.1".into()),
            }
        );
    }

    /// pcaps/corpus/legacy/ndpi_smbv1.pcap frames 3 and 4: an NT LM 0.12 request without
    /// extended security (WordCount 13, empty passwords, Unicode: a pad byte before the
    /// account name) and the WordCount 3 answer (pad byte, then NativeOS, NativeLanMan and
    /// PrimaryDomain "WORKGROUP", which is not returned). tshark: smb.native_os "Windows 2000
    /// 2195" / "Windows 7 Ultimate 7601 Service Pack 1", smb.native_lanman "Windows 2000 5.0" /
    /// "Windows 7 Ultimate 6.1".
    #[test]
    fn session_setup_unicode_from_ndpi() {
        let req = session_setup(
            "00000088ff534d4273000000001807c00000000000000000000000000000fffe000040000dff00880004110a00000000
             0000000100000000000000d40000004b000000000000570069006e0064006f0077007300200032003000300030002000
             32003100390035000000570069006e0064006f007700730020003200300030003000200035002e0030000000",
        );
        assert_eq!(
            (req.word_count, req.unicode, req.extended_security),
            (13, true, false)
        );
        assert_eq!(req.native_os.as_deref(), Some("Windows 2000 2195"));
        assert_eq!(req.native_lanman.as_deref(), Some("Windows 2000 5.0"));
        let f = hex(
            "000000b9ff534d4273000000009807c00000000000000000000000000000fffe0008400003ff00b90000009000005700
             69006e0064006f007700730020003700200055006c00740069006d006100740065002000370036003000310020005300
             65007200760069006300650020005000610063006b00200031000000570069006e0064006f0077007300200037002000
             55006c00740069006d00610074006500200036002e003100000057004f0052004b00470052004f005500500000",
        );
        let want = SessionSetup {
            response: true,
            word_count: 3,
            extended_security: false,
            unicode: true,
            native_os: Some("Windows 7 Ultimate 7601 Service Pack 1".into()),
            native_lanman: Some("Windows 7 Ultimate 6.1".into()),
        };
        assert_eq!(session_setup(&hex_str(&f)), want);
        // Every prefix of the SMB message parses without panicking; once NativeLanMan's last
        // character is in, the result is complete.
        let smb = &f[4..];
        for cut in SMB1_HEADER_LEN + 1..smb.len() {
            if let Ok(SmbMessage::Smb1SessionSetup(s)) = parse_smb(&smb[..cut]) {
                if let Some(os) = &s.native_os {
                    assert!(want.native_os.as_ref().unwrap().starts_with(os.as_str()));
                }
            }
        }
        assert_eq!(
            parse_smb(&smb[..smb.len() - 21]).unwrap(),
            SmbMessage::Smb1SessionSetup(want)
        );
    }

    fn hex_str(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// pcaps/corpus/legacy/ndpi_dos_win98_smb_netbeui.pcap frames 79 and 81 (SMB over NetBEUI,
    /// the SMB message after the LLC and NetBIOS headers): a DOS LANMAN 2.1 client's WordCount
    /// 10 request carries a password and "MARTIN ROSENAU" as account, then nothing: no
    /// NativeOS; the WordCount 3 answer has no bytes. tshark shows no smb.native_os either.
    #[test]
    fn session_setup_lanman_without_native_strings_from_win98() {
        let req = hex(
            "ff534d42730000000010000000000000000000000000000000000032010021000a750047003e06020000001505038001
             00000000001000004d415254494e20524f53454e41550004ff00000000001800290034b55caa7b1877cc95bc3d39fc92
             819e68b71f866cbe2dc55c5c4d444a5239385c5445535400413a00",
        );
        let SmbMessage::Smb1SessionSetup(s) = parse_smb(&req).unwrap() else {
            panic!()
        };
        assert_eq!((s.word_count, s.unicode, s.response), (10, false, false));
        assert_eq!((s.native_os, s.native_lanman), (None, None));
        let resp = hex(
            "ff534d42730000000090000000000000000000000000000000c800320000210003750029000000000002ff0000000300
             413a00",
        );
        let SmbMessage::Smb1SessionSetup(s) = parse_smb(&resp).unwrap() else {
            panic!()
        };
        assert_eq!((s.word_count, s.response), (3, true));
        assert_eq!((s.native_os, s.native_lanman), (None, None));
    }

    /// Hand-made edge cases: odd blob length before Unicode strings (pad), a blob length
    /// beyond the frame, a WordCount no layout has, an error answer, and strings over the cap.
    #[test]
    fn session_setup_edge_cases() {
        let build = |flags2: u16, response: bool, words: &[u16], bytes: &[u8]| {
            let mut p = vec![0xff, b'S', b'M', b'B', SMB1_COM_SESSION_SETUP_ANDX];
            p.resize(SMB1_HEADER_LEN, 0);
            p[9] = if response { 0x80 } else { 0 };
            p[10..12].copy_from_slice(&flags2.to_le_bytes());
            p.push(words.len() as u8);
            for w in words {
                p.extend_from_slice(&w.to_le_bytes());
            }
            p.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
            p.extend_from_slice(bytes);
            p
        };
        let utf16 = |s: &str| -> Vec<u8> {
            s.encode_utf16()
                .chain([0])
                .flat_map(|u| u.to_le_bytes())
                .collect()
        };
        // Response WordCount 4, blob of 3 bytes: bytes start at 41, blob ends at 44 (even): no
        // pad. Blob of 2: ends at 43, one pad byte.
        for blob in [3usize, 2] {
            let mut b = vec![0xa1; blob];
            if (SMB1_HEADER_LEN + 1 + 8 + 2 + blob) % 2 == 1 {
                b.push(0);
            }
            b.extend(utf16("Windows 5.1"));
            b.extend(utf16("Windows 2000 LAN Manager"));
            let p = build(0x8000, true, &[0xff, 0, 0, blob as u16], &b);
            let SmbMessage::Smb1SessionSetup(s) = parse_smb(&p).unwrap() else {
                panic!()
            };
            assert_eq!(s.native_os.as_deref(), Some("Windows 5.1"), "blob {blob}");
            assert_eq!(s.native_lanman.as_deref(), Some("Windows 2000 LAN Manager"));
        }
        // A blob length past the end: no strings, no panic.
        let p = build(0, true, &[0xff, 0, 0, 0xffff], b"Unix\0Samba\0");
        let SmbMessage::Smb1SessionSetup(s) = parse_smb(&p).unwrap() else {
            panic!()
        };
        assert_eq!(s.native_os, None);
        // ASCII without terminators at the end of the frame.
        let p = build(0, true, &[0xff, 0, 0], b"Unix\0Samba 4.17.12-Debian");
        let SmbMessage::Smb1SessionSetup(s) = parse_smb(&p).unwrap() else {
            panic!()
        };
        assert_eq!(s.native_os.as_deref(), Some("Unix"));
        assert_eq!(s.native_lanman.as_deref(), Some("Samba 4.17.12-Debian"));
        // Over the cap: cut.
        let long = "W".repeat(1000);
        let p = build(
            0x8000,
            true,
            &[0xff, 0, 0],
            &[&[0u8][..], &utf16(&long)].concat(),
        );
        let SmbMessage::Smb1SessionSetup(s) = parse_smb(&p).unwrap() else {
            panic!()
        };
        assert_eq!(s.native_os.map(|s| s.len()), Some(MAX_NATIVE_LEN));
        // Error answer (WordCount 0) and an unknown layout.
        assert!(matches!(
            parse_smb(&build(0, true, &[], &[])),
            Ok(SmbMessage::Smb1SessionSetup(SessionSetup {
                native_os: None,
                ..
            }))
        ));
        assert!(matches!(
            parse_smb(&build(0, false, &[1, 2, 3], &[])),
            Err(SmbError::Invalid { .. })
        ));
        // Header only: needs the WordCount.
        assert!(matches!(
            parse_smb(&build(0, false, &[], &[])[..SMB1_HEADER_LEN]),
            Err(SmbError::Incomplete { .. })
        ));
    }

    #[test]
    fn oversized_and_bad_frames() {
        assert_eq!(
            parse_nbss(&[0, 0x10, 0, 0]),
            Err(SmbError::TooLarge {
                len: 0x100000,
                cap: MAX_FRAME_LEN
            })
        );
        assert!(matches!(
            parse_nbss(&[0x42, 0, 0, 0]),
            Err(SmbError::Invalid { .. })
        ));
        assert!(parse_smb(b"\xffSMB").is_err());
        assert!(parse_smb(b"GET / HTTP/1.1").is_err());
        // A keep-alive.
        let (_, f) = parse_nbss(&[0x85, 0, 0, 0]).unwrap();
        assert_eq!(f.kind, NbssType::KEEP_ALIVE);
    }
}
