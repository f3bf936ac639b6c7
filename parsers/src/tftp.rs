//! TFTP packets (RFC 1350, options RFC 2347).
//!
//! Input: one UDP payload. Output: [`TftpPacket`]: the opcode, and for a read/write request the
//! transfer mode and the option names; the file name's length only (a file name may carry a
//! patient's name or ID, so it is never kept). No I/O, no panics.
//!
//! Limits: at most [`MAX_OPTIONS`] option names kept, each cut at [`MAX_OPTION_LEN`] bytes.

use thiserror::Error;

/// Option names kept from a request.
pub const MAX_OPTIONS: usize = 8;
/// Bytes kept of an option name.
pub const MAX_OPTION_LEN: usize = 16;

/// TFTP errors.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TftpError {
    #[error("invalid TFTP packet at offset {offset}: {reason}")]
    Invalid { offset: usize, reason: &'static str },
}

/// Opcodes (RFC 1350 5, RFC 2347 OACK). Open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opcode(pub u16);

impl Opcode {
    pub const RRQ: Opcode = Opcode(1);
    pub const WRQ: Opcode = Opcode(2);
    pub const DATA: Opcode = Opcode(3);
    pub const ACK: Opcode = Opcode(4);
    pub const ERROR: Opcode = Opcode(5);
    pub const OACK: Opcode = Opcode(6);

    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "read_request",
            2 => "write_request",
            3 => "data",
            4 => "ack",
            5 => "error",
            6 => "option_ack",
            _ => "unknown",
        }
    }
}

/// A decoded packet.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct TftpPacket {
    pub opcode: Opcode,
    /// Request: `netascii`, `octet` or `mail` (lower-cased).
    pub mode: Option<&'static str>,
    /// Request: length of the file name in bytes.
    pub filename_len: usize,
    /// Request: option names (lower-cased), e.g. `blksize`, `tsize`.
    pub options: Vec<String>,
    /// DATA/ACK block number; ERROR code.
    pub number: Option<u16>,
}

fn cstr(b: &[u8], at: usize) -> Result<(&[u8], usize), TftpError> {
    let rest = b.get(at..).unwrap_or(&[]);
    let n = rest
        .iter()
        .position(|&c| c == 0)
        .ok_or(TftpError::Invalid {
            offset: at,
            reason: "string not NUL-terminated",
        })?;
    Ok((&rest[..n], at + n + 1))
}

/// Parse one datagram strictly: requests must have a printable file name and a known mode.
pub fn parse_packet(b: &[u8]) -> Result<TftpPacket, TftpError> {
    let op = match b {
        [h, l, ..] => Opcode(u16::from_be_bytes([*h, *l])),
        _ => {
            return Err(TftpError::Invalid {
                offset: 0,
                reason: "shorter than an opcode",
            })
        }
    };
    let mut p = TftpPacket {
        opcode: op,
        mode: None,
        filename_len: 0,
        options: Vec::new(),
        number: None,
    };
    match op {
        Opcode::RRQ | Opcode::WRQ => {
            let (name, at) = cstr(b, 2)?;
            if name.is_empty() || !name.iter().all(|c| (0x20..0x7f).contains(c)) {
                return Err(TftpError::Invalid {
                    offset: 2,
                    reason: "file name empty or not printable",
                });
            }
            p.filename_len = name.len();
            let (mode, mut at) = cstr(b, at)?;
            p.mode = Some(
                ["netascii", "octet", "mail"]
                    .into_iter()
                    .find(|m| mode.eq_ignore_ascii_case(m.as_bytes()))
                    .ok_or(TftpError::Invalid {
                        offset: at,
                        reason: "unknown transfer mode",
                    })?,
            );
            // RFC 2347: option name / value pairs follow.
            while at < b.len() {
                let (opt, next) = cstr(b, at)?;
                let (_, next) = cstr(b, next)?;
                if p.options.len() < MAX_OPTIONS {
                    let o = &opt[..opt.len().min(MAX_OPTION_LEN)];
                    p.options
                        .push(String::from_utf8_lossy(o).to_ascii_lowercase());
                }
                at = next;
            }
        }
        Opcode::DATA | Opcode::ACK | Opcode::ERROR => {
            let n = b.get(2..4).ok_or(TftpError::Invalid {
                offset: 2,
                reason: "no block number or error code",
            })?;
            p.number = Some(u16::from_be_bytes([n[0], n[1]]));
        }
        Opcode::OACK => {}
        _ => {
            return Err(TftpError::Invalid {
                offset: 0,
                reason: "unknown opcode",
            })
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    // arkime tftp_rrq.pcap frame 1: RRQ "rfc1350.txt" "octet".
    #[test]
    fn rrq() {
        let p = parse_packet(b"\x00\x01rfc1350.txt\x00octet\x00").unwrap();
        assert_eq!(p.opcode, Opcode::RRQ);
        assert_eq!(p.mode, Some("octet"));
        assert_eq!(p.filename_len, 11);
        assert!(!format!("{p:?}").contains("rfc1350"));
        let p = parse_packet(b"\x00\x02x.bin\x00NETASCII\x00blksize\x001428\x00").unwrap();
        assert_eq!(p.options, vec!["blksize".to_string()]);
        assert!(parse_packet(b"\x00\x01x\x00weird\x00").is_err());
        assert!(parse_packet(b"\x00\x01x").is_err());
        assert_eq!(
            parse_packet(b"\x00\x03\x00\x07data").unwrap().number,
            Some(7)
        );
        assert!(parse_packet(b"\x00\x09").is_err());
        assert!(parse_packet(b"").is_err());
    }
}
