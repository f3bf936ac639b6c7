//! A pcapng reader for what libpcap refuses: a file whose interfaces have different link types.
//!
//! libpcap (1.10) reads a pcapng file only while every Interface Description Block has the link
//! type of the first one; at the first that differs it stops with "an interface has a type N
//! different from the type of the first interface". dumpcap writes such files whenever it
//! captures on several interfaces at once (`dumpcap -i eth0 -i any`: Ethernet and Linux SLL),
//! and Wireshark reads them. [`crate::capture::FileReader`] then reads the file again with this
//! reader, which gives each packet the link type of its own interface.
//!
//! Blocks read: Section Header (either byte order; a new section forgets the interfaces),
//! Interface Description (link type, snap length, `if_tsresol`, `if_tsoffset`), Enhanced
//! Packet, Simple Packet and the obsolete Packet block; every other block is skipped.
//! A block is at most [`MAX_BLOCK`] bytes (libpcap's own limit); a bigger, short or malformed
//! block ends the file as damaged, after the packets before it.

use std::io::Read;

/// Largest block read (bytes): libpcap's `MAX_BLOCKSIZE` for pcapng. The one buffer of the
/// reader grows to the largest block met, never past this.
pub const MAX_BLOCK: usize = 16 * 1024 * 1024;

/// Interfaces kept per section; a packet of a later interface is skipped (counted as damage).
pub const MAX_INTERFACES: usize = 4096;

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

#[derive(Debug, Clone, Copy)]
struct Interface {
    linktype: i32,
    snaplen: u32,
    /// Timestamp units per second (10^n or 2^n of `if_tsresol`; 10^6 by default).
    units_per_sec: u64,
    /// `if_tsoffset`: seconds added to every timestamp.
    offset_sec: i64,
}

/// One packet: its interface's link type, the time in seconds and microseconds, the length on
/// the wire and the captured bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    pub linktype: i32,
    pub ts_sec: i64,
    pub ts_usec: i64,
    pub wire_len: u32,
    pub data: &'a [u8],
}

/// How a read ended when it did not reach the end of the file cleanly.
#[derive(Debug, PartialEq, Eq)]
pub struct Damage {
    /// "truncated" (the file ends inside a block) or "corrupt".
    pub kind: &'static str,
    pub message: String,
}

/// A pcapng stream being read.
pub struct Reader<R> {
    r: R,
    big_endian: bool,
    interfaces: Vec<Interface>,
    buf: Vec<u8>,
}

fn damage(kind: &'static str, message: impl Into<String>) -> Damage {
    Damage {
        kind,
        message: message.into(),
    }
}

impl<R: Read> Reader<R> {
    pub fn new(r: R) -> Reader<R> {
        Reader {
            r,
            big_endian: false,
            interfaces: Vec::new(),
            buf: Vec::new(),
        }
    }

    /// The link type of the first interface of the file (for the file-level checks), once a
    /// packet or all blocks were read.
    pub fn first_linktype(&self) -> Option<i32> {
        self.interfaces.first().map(|i| i.linktype)
    }

    fn u16_at(&self, b: &[u8], at: usize) -> Option<u16> {
        let x: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
        Some(if self.big_endian {
            u16::from_be_bytes(x)
        } else {
            u16::from_le_bytes(x)
        })
    }

    fn u32_at(&self, b: &[u8], at: usize) -> Option<u32> {
        let x: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(x)
        } else {
            u32::from_le_bytes(x)
        })
    }

    /// Read the whole stream, calling `f` for each packet. `Ok` at a clean end of file.
    pub fn for_each(&mut self, mut f: impl FnMut(Packet<'_>)) -> Result<(), Damage> {
        loop {
            let mut head = [0u8; 8];
            match read_full(&mut self.r, &mut head) {
                Ok(0) => return Ok(()),
                Ok(8) => {}
                Ok(_) => return Err(damage("truncated", "truncated pcapng block header")),
                Err(e) => return Err(damage("corrupt", format!("read error: {e}"))),
            }
            let raw_type = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
            if raw_type == SHB {
                // The byte order of a section is set by its own magic, after the length.
                let mut magic = [0u8; 4];
                if read_full(&mut self.r, &mut magic).ok() != Some(4) {
                    return Err(damage("truncated", "truncated section header block"));
                }
                self.big_endian = match u32::from_le_bytes(magic) {
                    BYTE_ORDER_MAGIC => false,
                    m if m.swap_bytes() == BYTE_ORDER_MAGIC => true,
                    _ => return Err(damage("corrupt", "bad pcapng byte-order magic")),
                };
                self.interfaces.clear();
                let len = self.u32_at(&head, 4).unwrap_or(0) as usize;
                if !(28..=MAX_BLOCK).contains(&len) || !len.is_multiple_of(4) {
                    return Err(damage(
                        "corrupt",
                        format!("bad section header length {len}"),
                    ));
                }
                // The magic is read: the rest of the body, then the trailing length.
                self.body(len - 16)?;
                continue;
            }
            let btype = self.u32_at(&head, 0).unwrap_or(0);
            let len = self.u32_at(&head, 4).unwrap_or(0) as usize;
            if len < 12 || !len.is_multiple_of(4) || len > MAX_BLOCK {
                return Err(damage(
                    "corrupt",
                    format!("pcapng block of type {btype} has bad length {len}"),
                ));
            }
            self.body(len - 12)?;
            let buf = std::mem::take(&mut self.buf);
            let r = self.block(btype, &buf[..len - 12], &mut f);
            self.buf = buf;
            r?;
        }
    }

    /// Read `n` bytes of block body and the trailing length into `self.buf` (body only kept).
    fn body(&mut self, n: usize) -> Result<(), Damage> {
        self.buf.clear();
        self.buf.resize(n + 4, 0);
        match read_full(&mut self.r, &mut self.buf) {
            Ok(k) if k == n + 4 => {
                self.buf.truncate(n);
                Ok(())
            }
            Ok(_) => Err(damage("truncated", "truncated pcapng block")),
            Err(e) => Err(damage("corrupt", format!("read error: {e}"))),
        }
    }

    fn block(
        &mut self,
        btype: u32,
        b: &[u8],
        f: &mut impl FnMut(Packet<'_>),
    ) -> Result<(), Damage> {
        let bad = |what: &str| damage("corrupt", format!("malformed pcapng {what} block"));
        match btype {
            IDB => {
                let linktype = self.u16_at(b, 0).ok_or_else(|| bad("interface"))?;
                let snaplen = self.u32_at(b, 4).ok_or_else(|| bad("interface"))?;
                let mut i = Interface {
                    linktype: i32::from(linktype),
                    snaplen,
                    units_per_sec: 1_000_000,
                    offset_sec: 0,
                };
                // Options: code (2), length (2), value padded to 4.
                let mut at = 8;
                while let (Some(code), Some(olen)) = (self.u16_at(b, at), self.u16_at(b, at + 2)) {
                    let olen = usize::from(olen);
                    let Some(v) = b.get(at + 4..at + 4 + olen) else {
                        break;
                    };
                    match (code, v) {
                        (0, _) => break,
                        (9, [r]) => {
                            let n = u32::from(r & 0x7f);
                            i.units_per_sec = if r & 0x80 == 0 {
                                10u64.checked_pow(n).ok_or_else(|| bad("interface"))?
                            } else {
                                1u64.checked_shl(n)
                                    .filter(|_| n < 64)
                                    .ok_or_else(|| bad("interface"))?
                            };
                        }
                        (14, v) if v.len() == 8 => {
                            let x: [u8; 8] = v.try_into().map_err(|_| bad("interface"))?;
                            i.offset_sec = if self.big_endian {
                                i64::from_be_bytes(x)
                            } else {
                                i64::from_le_bytes(x)
                            };
                        }
                        _ => {}
                    }
                    at += 4 + olen.div_ceil(4) * 4;
                }
                if self.interfaces.len() < MAX_INTERFACES {
                    self.interfaces.push(i);
                }
            }
            EPB | PB => {
                let (iface, hi, lo, cap, wire, data_at) = if btype == EPB {
                    (
                        self.u32_at(b, 0).map(|x| x as usize),
                        self.u32_at(b, 4),
                        self.u32_at(b, 8),
                        self.u32_at(b, 12),
                        self.u32_at(b, 16),
                        20,
                    )
                } else {
                    (
                        self.u16_at(b, 0).map(usize::from),
                        self.u32_at(b, 4),
                        self.u32_at(b, 8),
                        self.u32_at(b, 12),
                        self.u32_at(b, 16),
                        20,
                    )
                };
                let (Some(iface), Some(hi), Some(lo), Some(cap), Some(wire)) =
                    (iface, hi, lo, cap, wire)
                else {
                    return Err(bad("packet"));
                };
                let i = *self.interfaces.get(iface).ok_or_else(|| {
                    damage(
                        "corrupt",
                        format!("packet of interface {iface}, which was not described"),
                    )
                })?;
                let data = b
                    .get(data_at..data_at + cap as usize)
                    .ok_or_else(|| bad("packet"))?;
                let units = (u64::from(hi) << 32) | u64::from(lo);
                let (sec, usec) = split_ts(units, i.units_per_sec);
                f(Packet {
                    linktype: i.linktype,
                    ts_sec: sec.saturating_add(i.offset_sec),
                    ts_usec: usec,
                    wire_len: wire,
                    data,
                });
            }
            SPB => {
                let i = *self
                    .interfaces
                    .first()
                    .ok_or_else(|| damage("corrupt", "simple packet block before any interface"))?;
                let wire = self.u32_at(b, 0).ok_or_else(|| bad("simple packet"))?;
                let mut cap = (wire as usize).min(b.len() - 4);
                if i.snaplen != 0 {
                    cap = cap.min(i.snaplen as usize);
                }
                // A simple packet has no timestamp.
                f(Packet {
                    linktype: i.linktype,
                    ts_sec: 0,
                    ts_usec: 0,
                    wire_len: wire,
                    data: &b[4..4 + cap],
                });
            }
            _ => {}
        }
        Ok(())
    }
}

/// Seconds and microseconds of a timestamp counted in `per_sec` units (microseconds truncated,
/// as libpcap does for a microsecond handle).
fn split_ts(units: u64, per_sec: u64) -> (i64, i64) {
    let per_sec = per_sec.max(1);
    let sec = units / per_sec;
    let frac = units % per_sec;
    let usec = (u128::from(frac) * 1_000_000 / u128::from(per_sec)) as i64;
    (i64::try_from(sec).unwrap_or(i64::MAX), usec)
}

/// Fill `buf` as far as the stream goes; the count read (short only at the end of the stream).
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(t: u32, body: &[u8]) -> Vec<u8> {
        let mut b = body.to_vec();
        while !b.len().is_multiple_of(4) {
            b.push(0);
        }
        let len = (b.len() + 12) as u32;
        let mut out = t.to_le_bytes().to_vec();
        out.extend(len.to_le_bytes());
        out.extend(&b);
        out.extend(len.to_le_bytes());
        out
    }

    fn shb() -> Vec<u8> {
        let mut body = BYTE_ORDER_MAGIC.to_le_bytes().to_vec();
        body.extend([1, 0, 0, 0]);
        body.extend((-1i64).to_le_bytes());
        block(SHB, &body)
    }

    fn idb(linktype: u16, tsresol: Option<u8>) -> Vec<u8> {
        let mut body = linktype.to_le_bytes().to_vec();
        body.extend([0, 0]);
        body.extend(0u32.to_le_bytes());
        if let Some(r) = tsresol {
            body.extend([9, 0, 1, 0, r, 0, 0, 0]);
            body.extend([0, 0, 0, 0]);
        }
        block(IDB, &body)
    }

    fn epb(iface: u32, units: u64, data: &[u8], wire: u32) -> Vec<u8> {
        let mut body = iface.to_le_bytes().to_vec();
        body.extend(((units >> 32) as u32).to_le_bytes());
        body.extend((units as u32).to_le_bytes());
        body.extend((data.len() as u32).to_le_bytes());
        body.extend(wire.to_le_bytes());
        body.extend(data);
        block(EPB, &body)
    }

    /// (link type, seconds, microseconds, wire length, bytes) of a packet read.
    type Got = (i32, i64, i64, u32, Vec<u8>);

    fn read(bytes: &[u8]) -> (Vec<Got>, Result<(), Damage>) {
        let mut out = Vec::new();
        let r = Reader::new(bytes)
            .for_each(|p| out.push((p.linktype, p.ts_sec, p.ts_usec, p.wire_len, p.data.to_vec())));
        (out, r)
    }

    #[test]
    fn packets_carry_their_interfaces_link_type_and_resolution() {
        let mut f = shb();
        f.extend(idb(1, None));
        f.extend(idb(276, Some(9)));
        f.extend(block(5, &[1, 2, 3, 4])); // interface statistics: skipped
        f.extend(epb(0, 1_700_000_000_123_456, b"abc", 60));
        f.extend(epb(1, 1_700_000_000_987_654_321, b"defgh", 5));
        let (p, r) = read(&f);
        assert_eq!(r, Ok(()));
        assert_eq!(
            p,
            vec![
                (1, 1_700_000_000, 123_456, 60, b"abc".to_vec()),
                (276, 1_700_000_000, 987_654, 5, b"defgh".to_vec()),
            ]
        );
    }

    #[test]
    fn damage_keeps_the_packets_before_it() {
        let mut f = shb();
        f.extend(idb(1, None));
        f.extend(epb(0, 1, b"x", 1));
        let whole = f.clone();
        f.extend(epb(3, 2, b"y", 1));
        let (p, r) = read(&f);
        assert_eq!(p.len(), 1);
        assert_eq!(r.unwrap_err().kind, "corrupt");
        // Every truncation: the packets of whole blocks, then "truncated" (or a clean end on a
        // block boundary), never a panic.
        let bounds = [0, shb().len(), shb().len() + idb(1, None).len()];
        for cut in 0..whole.len() {
            let (p, r) = read(&whole[..cut]);
            assert!(p.is_empty(), "cut {cut}");
            assert_eq!(r.is_ok(), bounds.contains(&cut), "cut {cut}");
        }
        // Every one-byte change reads without a panic.
        for i in 0..whole.len() {
            let mut g = whole.clone();
            g[i] ^= 0xff;
            let _ = read(&g);
        }
    }

    #[test]
    fn big_endian_section() {
        let mut f = 0x0A0D0D0Au32.to_be_bytes().to_vec();
        f.extend(28u32.to_be_bytes());
        f.extend(BYTE_ORDER_MAGIC.to_be_bytes());
        f.extend([0, 1, 0, 0]);
        f.extend((-1i64).to_be_bytes());
        f.extend(28u32.to_be_bytes());
        // IDB, link type 101 (raw IP)
        f.extend(1u32.to_be_bytes());
        f.extend(20u32.to_be_bytes());
        f.extend(101u16.to_be_bytes());
        f.extend([0, 0]);
        f.extend(0u32.to_be_bytes());
        f.extend(20u32.to_be_bytes());
        // EPB
        f.extend(6u32.to_be_bytes());
        f.extend(36u32.to_be_bytes());
        f.extend(0u32.to_be_bytes());
        f.extend(0u32.to_be_bytes());
        f.extend(3_000_001u32.to_be_bytes());
        f.extend(4u32.to_be_bytes());
        f.extend(4u32.to_be_bytes());
        f.extend([0x45, 0, 0, 4]);
        f.extend(36u32.to_be_bytes());
        let (p, r) = read(&f);
        assert_eq!(r, Ok(()));
        assert_eq!(p, vec![(101, 3, 1, 4, vec![0x45, 0, 0, 4])]);
    }
}
