//! SMB negotiation: which dialects a client offers and which one the server picks, for SMB1
//! (MS-CIFS 2.2.4.52) and SMB2/3 (MS-SMB2 2.2.3, 2.2.4), framed by the NetBIOS session service
//! (RFC 1002 4.3) on TCP 139 or its direct-hosted form on TCP 445 (MS-SMB2 2.1).
//!
//! Inputs: bytes of one direction of a TCP stream. Outputs: [`NbssFrame`]s and, for a frame
//! carrying SMB, an [`SmbMessage`] (dialect names and numbers; nothing from file names, user
//! names or paths). No I/O, no state, no panics.
//!
//! Limits and recoverable failures: [`parse_nbss`] reports [`SmbError::Incomplete`] with the exact
//! shortfall when the length field says how much is missing; a frame over [`MAX_FRAME_LEN`]
//! bytes is [`SmbError::TooLarge`] (callers skip it without buffering). At most [`MAX_DIALECTS`]
//! dialects are read; SMB1 dialect strings are cut at [`MAX_DIALECT_LEN`] bytes and decoded
//! lossily.

use thiserror::Error;

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

/// SMB1 NEGOTIATE command code (MS-CIFS 2.2.2.1).
pub const SMB1_COM_NEGOTIATE: u8 = 0x72;
/// SMB2 NEGOTIATE command code (MS-SMB2 2.2.1.2).
pub const SMB2_NEGOTIATE: u16 = 0x0000;

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

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
