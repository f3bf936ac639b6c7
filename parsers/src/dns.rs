//! A small DNS message reader (RFC 1035 §4), enough for mDNS/DNS-SD and NBNS-style evidence:
//! header, questions, resource records with A, AAAA, PTR, CNAME, SRV, TXT and HINFO data.
//!
//! Input: one DNS message (a UDP payload). Output: an owned [`DnsMessage`]. No I/O, no state,
//! no panics, nothing allocated to a size read from the wire.
//!
//! Limits and recoverable failures (see [`read_name`] for names):
//! - names: at most [`MAX_NAME_LEN`] bytes of text, [`MAX_LABELS`] labels and
//!   [`MAX_POINTER_JUMPS`] compression pointers; a pointer must point backwards, so a loop is
//!   impossible even before the jump cap;
//! - at most [`MAX_RECORDS`] records per section and [`MAX_TXT_STRINGS`] strings per TXT record;
//! - a record that overruns the message stops the parse of the rest; the records read so far are
//!   kept and [`DnsMessage::truncated`] is set. Only a short header is an error.

use std::net::{Ipv4Addr, Ipv6Addr};

use thiserror::Error;

use crate::bytes::{be16, be32};
use crate::Needed;

/// DNS header length: id, flags, four counts. RFC 1035 §4.1.1.
pub const HEADER_LEN: usize = 12;
/// Longest name kept, in presentation form (RFC 1035 §2.3.4 allows 255 octets on the wire).
pub const MAX_NAME_LEN: usize = 255;
/// Labels per name (a 255-byte name holds at most 127).
pub const MAX_LABELS: usize = 128;
/// Compression pointers followed per name.
pub const MAX_POINTER_JUMPS: usize = 16;
/// Records (or questions) read per section.
pub const MAX_RECORDS: usize = 64;
/// Character-strings kept per TXT record.
pub const MAX_TXT_STRINGS: usize = 32;

/// DNS errors.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DnsError {
    #[error("DNS message incomplete: {needed:?} more bytes needed")]
    Incomplete { needed: Needed },
    #[error("invalid DNS name at offset {offset}: {reason}")]
    BadName { offset: usize, reason: &'static str },
}

/// Record types used here. RFC 1035 §3.2.2, RFC 3596, RFC 2782.
pub mod rtype {
    pub const A: u16 = 1;
    pub const CNAME: u16 = 5;
    pub const PTR: u16 = 12;
    pub const HINFO: u16 = 13;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const SRV: u16 = 33;
    pub const NB: u16 = 32;
    pub const NBSTAT: u16 = 33;
    pub const ANY: u16 = 255;
}

/// A question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub name: String,
    pub qtype: u16,
    /// Class without the mDNS unicast-response bit.
    pub qclass: u16,
    /// mDNS QU bit (top bit of the class). RFC 6762 §5.4.
    pub unicast_response: bool,
}

/// Decoded record data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Ptr(String),
    Cname(String),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    /// Character-strings, raw bytes (TXT values need not be UTF-8).
    Txt(Vec<Vec<u8>>),
    Hinfo {
        cpu: String,
        os: String,
    },
    /// Anything else: the raw bytes (at most 255 kept).
    Other(Vec<u8>),
}

/// A resource record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub rtype: u16,
    /// Class without the mDNS cache-flush bit.
    pub class: u16,
    /// mDNS cache-flush bit (top bit of the class). RFC 6762 §10.2.
    pub cache_flush: bool,
    pub ttl: u32,
    pub data: RData,
}

/// A DNS message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[must_use]
pub struct DnsMessage {
    pub id: u16,
    pub flags: u16,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
    /// A section was cut short (overrun, bad name, or a count over [`MAX_RECORDS`]).
    pub truncated: bool,
}

impl DnsMessage {
    /// QR bit.
    pub fn is_response(&self) -> bool {
        self.flags & 0x8000 != 0
    }

    /// Opcode (4 bits).
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0x0f) as u8
    }

    /// Every record of the three record sections, in order.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.answers
            .iter()
            .chain(&self.authorities)
            .chain(&self.additionals)
    }
}

/// Reads a (possibly compressed) name starting at `offset` in `msg`; returns the dotted name
/// (no trailing dot; the root is `""`) and the offset just past the name's bytes at `offset`.
///
/// Limits: [`MAX_POINTER_JUMPS`] pointers, each strictly backwards; [`MAX_LABELS`] labels;
/// [`MAX_NAME_LEN`] bytes of text. Labels with bytes outside printable ASCII are kept lossily,
/// `.` inside a label is not escaped.
pub fn read_name(msg: &[u8], offset: usize) -> Result<(String, usize), DnsError> {
    let mut name = String::new();
    let mut pos = offset;
    let mut end_after: Option<usize> = None;
    let mut jumps = 0usize;
    // Pointers must go strictly below the lowest position visited so far.
    let mut floor = offset;
    for _ in 0..MAX_LABELS.saturating_add(MAX_POINTER_JUMPS) {
        let Some(&len) = msg.get(pos) else {
            return Err(DnsError::Incomplete {
                needed: Needed::Unknown,
            });
        };
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    return Ok((name, end_after.unwrap_or(pos + 1)));
                }
                let len = usize::from(len);
                let Some(label) = msg.get(pos + 1..pos + 1 + len) else {
                    return Err(DnsError::Incomplete {
                        needed: Needed::Unknown,
                    });
                };
                if !name.is_empty() {
                    name.push('.');
                }
                name.push_str(&String::from_utf8_lossy(label));
                if name.len() > MAX_NAME_LEN {
                    return Err(DnsError::BadName {
                        offset: pos,
                        reason: "name longer than 255 bytes",
                    });
                }
                pos += 1 + len;
            }
            0xc0 => {
                let Some(&lo) = msg.get(pos + 1) else {
                    return Err(DnsError::Incomplete {
                        needed: Needed::Size(1),
                    });
                };
                let target = (usize::from(len & 0x3f) << 8) | usize::from(lo);
                if target >= floor {
                    return Err(DnsError::BadName {
                        offset: pos,
                        reason: "compression pointer does not point backwards",
                    });
                }
                jumps += 1;
                if jumps > MAX_POINTER_JUMPS {
                    return Err(DnsError::BadName {
                        offset: pos,
                        reason: "too many compression pointers",
                    });
                }
                if end_after.is_none() {
                    end_after = Some(pos + 2);
                }
                floor = target;
                pos = target;
            }
            _ => {
                return Err(DnsError::BadName {
                    offset: pos,
                    reason: "reserved label type",
                })
            }
        }
    }
    Err(DnsError::BadName {
        offset: pos,
        reason: "too many labels",
    })
}

/// Character-strings: (len, bytes)*. RFC 1035 §3.3.
fn char_strings(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some((&len, rest)) = data.split_first() {
        if out.len() >= MAX_TXT_STRINGS {
            break;
        }
        let len = usize::from(len);
        let Some(s) = rest.get(..len) else { break };
        out.push(s.to_vec());
        data = &rest[len..];
    }
    out
}

fn rdata(msg: &[u8], rtype_: u16, start: usize, len: usize) -> Option<RData> {
    let data = msg.get(start..start.checked_add(len)?)?;
    let name_at = |at: usize| read_name(msg, at).ok().map(|(n, _)| n);
    Some(match rtype_ {
        rtype::A => RData::A(Ipv4Addr::from(<[u8; 4]>::try_from(data).ok()?)),
        rtype::AAAA => RData::Aaaa(Ipv6Addr::from(<[u8; 16]>::try_from(data).ok()?)),
        rtype::PTR => RData::Ptr(name_at(start)?),
        rtype::CNAME => RData::Cname(name_at(start)?),
        rtype::SRV if len >= 7 => RData::Srv {
            priority: be16(msg, start)?,
            weight: be16(msg, start + 2)?,
            port: be16(msg, start + 4)?,
            target: name_at(start + 6)?,
        },
        rtype::TXT => RData::Txt(char_strings(data)),
        rtype::HINFO => {
            let s = char_strings(data);
            let get = |i: usize| {
                s.get(i)
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default()
            };
            RData::Hinfo {
                cpu: get(0),
                os: get(1),
            }
        }
        _ => RData::Other(data.iter().take(255).copied().collect()),
    })
}

/// Reads one record at `pos`; returns it and the offset after it.
fn record(msg: &[u8], pos: usize) -> Option<(Record, usize)> {
    let (name, p) = read_name(msg, pos).ok()?;
    let rtype_ = be16(msg, p)?;
    let class = be16(msg, p + 2)?;
    let ttl = be32(msg, p + 4)?;
    let rdlen = usize::from(be16(msg, p + 8)?);
    let start = p + 10;
    let end = start.checked_add(rdlen)?;
    if end > msg.len() {
        return None;
    }
    // Undecodable data of a known type (e.g. an A record of 3 bytes) is kept raw.
    let data = rdata(msg, rtype_, start, rdlen)
        .unwrap_or_else(|| RData::Other(msg[start..end].iter().take(255).copied().collect()));
    Some((
        Record {
            name,
            rtype: rtype_,
            class: class & 0x7fff,
            cache_flush: class & 0x8000 != 0,
            ttl,
            data,
        },
        end,
    ))
}

/// Parses a DNS message. Only a header shorter than 12 bytes is an error; sections are read as
/// far as they go (see the module limits).
pub fn parse_message(msg: &[u8]) -> Result<DnsMessage, DnsError> {
    if msg.len() < HEADER_LEN {
        return Err(DnsError::Incomplete {
            needed: Needed::Size(HEADER_LEN - msg.len()),
        });
    }
    let count = |i: usize| usize::from(u16::from_be_bytes([msg[4 + 2 * i], msg[5 + 2 * i]]));
    let mut out = DnsMessage {
        id: u16::from_be_bytes([msg[0], msg[1]]),
        flags: u16::from_be_bytes([msg[2], msg[3]]),
        ..DnsMessage::default()
    };
    let mut pos = HEADER_LEN;
    let qd = count(0);
    if qd > MAX_RECORDS {
        out.truncated = true;
    }
    for _ in 0..qd.min(MAX_RECORDS) {
        let q = read_name(msg, pos).ok().and_then(|(name, p)| {
            let qtype = be16(msg, p)?;
            let qclass = be16(msg, p + 2)?;
            Some((name, qtype, qclass, p + 4))
        });
        let Some((name, qtype, qclass, next)) = q else {
            out.truncated = true;
            return Ok(out);
        };
        out.questions.push(Question {
            name,
            qtype,
            qclass: qclass & 0x7fff,
            unicast_response: qclass & 0x8000 != 0,
        });
        pos = next;
    }
    for section in 1..4 {
        let n = count(section);
        if n > MAX_RECORDS {
            out.truncated = true;
        }
        for _ in 0..n.min(MAX_RECORDS) {
            let Some((rec, next)) = record(msg, pos) else {
                out.truncated = true;
                return Ok(out);
            };
            pos = next;
            match section {
                1 => out.answers.push(rec),
                2 => out.authorities.push(rec),
                _ => out.additionals.push(rec),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_loops_and_forward_pointers_are_refused() {
        // Header, then a name at 12 that points to itself.
        let mut m = vec![0u8; 12];
        m.extend([0xc0, 12]);
        assert!(matches!(read_name(&m, 12), Err(DnsError::BadName { .. })));
        // Two pointers pointing at each other: the second must go below the first's target.
        let mut m = vec![0u8; 12];
        m.extend([0xc0, 14, 0xc0, 12]);
        assert!(read_name(&m, 14).is_err());
        assert!(read_name(&m, 12).is_err());
        // A chain of backward pointers longer than the cap.
        let mut m = vec![0u8; 12];
        m.push(0); // root at 12
        for i in 0..40u8 {
            let prev = if i == 0 { 12 } else { 13 + 2 * (i - 1) };
            m.extend([0xc0, prev]);
        }
        let last = m.len() - 2;
        assert!(matches!(
            read_name(&m, last),
            Err(DnsError::BadName {
                reason: "too many compression pointers",
                ..
            })
        ));
        // Reserved label type.
        assert!(read_name(&[0x40, 1, 0], 0).is_err());
    }

    #[test]
    fn long_names_are_capped() {
        let mut m = Vec::new();
        for _ in 0..10 {
            m.push(63);
            m.extend([b'a'; 63]);
        }
        m.push(0);
        assert!(matches!(read_name(&m, 0), Err(DnsError::BadName { .. })));
    }

    #[test]
    fn counts_larger_than_the_message() {
        // Header claims 65535 answers, none present.
        let m = [0, 1, 0x84, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0];
        let d = parse_message(&m).unwrap();
        assert!(d.truncated);
        assert!(d.answers.is_empty());
        assert!(d.is_response());
        assert!(parse_message(&m[..5]).is_err());
    }
}
