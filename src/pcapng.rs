//! A pcapng reader for what libpcap refuses: a file whose interfaces have different link types.
//!
//! libpcap (1.10) reads a pcapng file only while every Interface Description Block has the link
//! type of the first one; at the first that differs it stops with "an interface has a type N
//! different from the type of the first interface". dumpcap writes such files whenever it
//! captures on several interfaces at once (`dumpcap -i eth0 -i any`: Ethernet and Linux SLL),
//! and Wireshark reads them. [`crate::capture::FileReader`] then reads the file again with this
//! reader, which gives each packet the link type of its own interface.
//!
//! The blocks are parsed by the `pcap-parser` crate (rusticata's streaming [`PcapNGReader`]:
//! Section Header in either byte order, Interface Description, Enhanced and Simple Packet;
//! every other block comes as a raw block). What is done here: the interfaces of the section
//! (a new section forgets them), each packet's timestamp from its interface's `if_tsresol`
//! (10^n or 2^n) and `if_tsoffset`, the obsolete Packet block (type 2, which the crate does not
//! parse), and the reader's one buffer: it starts at [`START_BUFFER`] bytes and grows to the
//! largest block met, never past [`MAX_BLOCK`] (libpcap's own limit); a bigger block is not
//! read, it ends the file as damaged. A short or malformed block ends the file as damaged too,
//! after the packets before it.

use pcap_parser::pcapng::{Block, InterfaceDescriptionBlock};
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{OptionCode, PcapBlockOwned, PcapError, PcapNGReader};
use std::cell::Cell;
use std::io::Read;

/// Largest block read (bytes): libpcap's `MAX_BLOCKSIZE` for pcapng. The one buffer of the
/// reader grows to the largest block met, never past this (plus one word).
pub const MAX_BLOCK: usize = 16 * 1024 * 1024;

/// Bytes of the reader's buffer at the start (a Section Header Block must fit in it).
pub const START_BUFFER: usize = 256 * 1024;

/// Interfaces kept per section; a packet of a later interface is skipped (counted as damage).
pub const MAX_INTERFACES: usize = 4096;

/// The Section Header Block's type, the same in either byte order.
const SHB_TYPE: [u8; 4] = [0x0A, 0x0D, 0x0D, 0x0A];
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
/// The obsolete Packet Block (not parsed by the crate).
const PB: u32 = 2;

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

fn damage(kind: &'static str, message: impl Into<String>) -> Damage {
    Damage {
        kind,
        message: message.into(),
    }
}

/// The stream as the crate's reader wants it: each read fills the buffer unless the stream
/// ends (the crate takes a read of 0 bytes for the end, and a short first read for a short
/// section header), counting the bytes read (to tell an empty stream from a short one).
struct Counted<'c, R> {
    r: R,
    n: &'c Cell<u64>,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut k = 0;
        while k < buf.len() {
            match self.r.read(&mut buf[k..]) {
                Ok(0) => break,
                Ok(x) => k += x,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.n.set(self.n.get() + k as u64);
        Ok(k)
    }
}

/// A pcapng stream being read.
pub struct Reader<R> {
    r: Option<R>,
    interfaces: Vec<Interface>,
    /// Capacity of the crate reader's buffer (bytes), at most `MAX_BLOCK + 4`.
    capacity: usize,
}

impl<R: Read> Reader<R> {
    pub fn new(r: R) -> Reader<R> {
        Reader {
            r: Some(r),
            interfaces: Vec::new(),
            capacity: START_BUFFER,
        }
    }

    /// The link type of the first interface of the file (for the file-level checks), once a
    /// packet or all blocks were read.
    pub fn first_linktype(&self) -> Option<i32> {
        self.interfaces.first().map(|i| i.linktype)
    }

    /// Read the whole stream, calling `f` for each packet. `Ok` at a clean end of file.
    pub fn for_each(&mut self, mut f: impl FnMut(Packet<'_>)) -> Result<(), Damage> {
        let Some(r) = self.r.take() else {
            return Ok(());
        };
        let read = Cell::new(0);
        let mut rd = match PcapNGReader::new(self.capacity, Counted { r, n: &read }) {
            Ok(x) => x,
            Err(_) if read.get() == 0 => return Ok(()),
            Err(e) => return Err(start_error(&e)),
        };
        // The byte order of the section being read (the crate keeps its own, privately).
        let mut big_endian = false;
        loop {
            match rd.next() {
                Ok((len, block)) => {
                    let r = match block {
                        PcapBlockOwned::NG(b) => self.block(b, &mut big_endian, &mut f),
                        // Not in a pcapng stream; skipped if ever given.
                        _ => Ok(()),
                    };
                    rd.consume(len);
                    r?;
                }
                Err(PcapError::Eof) => return Ok(()),
                Err(PcapError::UnexpectedEof) => {
                    return Err(damage("truncated", "truncated pcapng block"))
                }
                Err(PcapError::Incomplete(_)) => {
                    let before = rd.data().len();
                    if rd.refill().is_err() {
                        return Err(damage("corrupt", "read error"));
                    }
                    // No room left to read into: the crate asks for more than the buffer.
                    if rd.data().len() == before && !rd.reader_exhausted() {
                        self.grow(&mut rd, big_endian)?;
                    }
                }
                Err(PcapError::BufferTooSmall) => self.grow(&mut rd, big_endian)?,
                Err(PcapError::ReadError) => return Err(damage("corrupt", "read error")),
                Err(_) => {
                    return Err(damage(
                        "corrupt",
                        format!("malformed pcapng block at byte {}", rd.consumed()),
                    ))
                }
            }
        }
    }

    /// Make room for the block at the head of the buffer: its length from its header, then the
    /// buffer grown to hold it, unless it is bigger than [`MAX_BLOCK`].
    fn grow<S: Read>(&mut self, rd: &mut PcapNGReader<S>, big_endian: bool) -> Result<(), Damage> {
        let head = rd.data();
        let word = |at: usize, be: bool| -> Option<u32> {
            let x: [u8; 4] = head.get(at..at + 4)?.try_into().ok()?;
            Some(if be {
                u32::from_be_bytes(x)
            } else {
                u32::from_le_bytes(x)
            })
        };
        let be = if head.get(..4) == Some(&SHB_TYPE[..]) {
            // A section header's byte order is its own magic's, after the length.
            word(8, true) == Some(BYTE_ORDER_MAGIC)
        } else {
            big_endian
        };
        let btype = word(0, be).unwrap_or(0);
        let len = word(4, be).map_or(usize::MAX, |l| l as usize);
        if len > MAX_BLOCK || self.capacity > MAX_BLOCK {
            return Err(damage(
                "corrupt",
                format!("pcapng block of type {btype} has bad length {len}"),
            ));
        }
        // The crate wants room for more than the block itself.
        self.capacity = (len + 4)
            .max(self.capacity.saturating_mul(2))
            .min(MAX_BLOCK + 4);
        rd.grow(self.capacity);
        rd.refill().map_err(|_| damage("corrupt", "read error"))
    }

    fn block(
        &mut self,
        b: Block<'_>,
        big_endian: &mut bool,
        f: &mut impl FnMut(Packet<'_>),
    ) -> Result<(), Damage> {
        match b {
            Block::SectionHeader(shb) => {
                *big_endian = shb.big_endian();
                self.interfaces.clear();
            }
            Block::InterfaceDescription(idb) => {
                let i = interface(&idb, *big_endian)?;
                if self.interfaces.len() < MAX_INTERFACES {
                    self.interfaces.push(i);
                }
            }
            Block::EnhancedPacket(epb) => {
                let i = self.interface_of(epb.if_id as usize)?;
                let data = epb.data.get(..epb.caplen as usize).ok_or_else(bad_packet)?;
                let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                f(i.packet(units, epb.origlen, data));
            }
            Block::SimplePacket(spb) => {
                let i = *self
                    .interfaces
                    .first()
                    .ok_or_else(|| damage("corrupt", "simple packet block before any interface"))?;
                // The crate's data keeps the padding: cut to the length on the wire and the
                // snap length.
                let mut cap = (spb.origlen as usize).min(spb.data.len());
                if i.snaplen != 0 {
                    cap = cap.min(i.snaplen as usize);
                }
                // A simple packet has no timestamp.
                f(Packet {
                    linktype: i.linktype,
                    ts_sec: 0,
                    ts_usec: 0,
                    wire_len: spb.origlen,
                    data: &spb.data[..cap],
                });
            }
            Block::Unknown(ub) => {
                let btype = if *big_endian {
                    ub.block_type.swap_bytes()
                } else {
                    ub.block_type
                };
                if btype == PB {
                    self.packet_block(ub.data, *big_endian, f)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The obsolete Packet Block: interface (2 bytes), drops (2), timestamp (4 + 4), captured
    /// length (4), length on the wire (4), data.
    fn packet_block(
        &self,
        b: &[u8],
        big_endian: bool,
        f: &mut impl FnMut(Packet<'_>),
    ) -> Result<(), Damage> {
        let u32_at = |at: usize| -> Option<u32> {
            let x: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
            Some(if big_endian {
                u32::from_be_bytes(x)
            } else {
                u32::from_le_bytes(x)
            })
        };
        let iface = b.get(..2).ok_or_else(bad_packet)?;
        let iface = if big_endian {
            u16::from_be_bytes([iface[0], iface[1]])
        } else {
            u16::from_le_bytes([iface[0], iface[1]])
        };
        let (Some(hi), Some(lo), Some(cap), Some(wire)) =
            (u32_at(4), u32_at(8), u32_at(12), u32_at(16))
        else {
            return Err(bad_packet());
        };
        let i = self.interface_of(usize::from(iface))?;
        let data = b.get(20..20 + cap as usize).ok_or_else(bad_packet)?;
        f(i.packet((u64::from(hi) << 32) | u64::from(lo), wire, data));
        Ok(())
    }

    fn interface_of(&self, iface: usize) -> Result<Interface, Damage> {
        self.interfaces.get(iface).copied().ok_or_else(|| {
            damage(
                "corrupt",
                format!("packet of interface {iface}, which was not described"),
            )
        })
    }
}

fn bad_packet() -> Damage {
    damage("corrupt", "malformed pcapng packet block")
}

/// Why the crate's reader could not start: the first bytes are not a whole Section Header Block
/// (an empty stream is a clean end: see [`Reader::for_each`]).
fn start_error(e: &PcapError<&[u8]>) -> Damage {
    match e {
        PcapError::Incomplete(_) | PcapError::UnexpectedEof => {
            damage("truncated", "truncated section header block")
        }
        PcapError::HeaderNotRecognized => damage("corrupt", "bad pcapng byte-order magic"),
        PcapError::ReadError => damage("corrupt", "read error"),
        _ => damage("corrupt", "malformed section header block"),
    }
}

/// An interface from its block: the crate's `linktype`, `snaplen` and `if_tsresol`; the
/// resolution and offset are computed here, since the crate's `ts_resolution()` refuses every
/// 2^n resolution (it checks the byte with its 0x80 flag against 63) and its `if_tsoffset` is
/// read little-endian whatever the section's byte order.
fn interface(idb: &InterfaceDescriptionBlock<'_>, big_endian: bool) -> Result<Interface, Damage> {
    let bad = || damage("corrupt", "malformed pcapng interface block");
    let r = idb.if_tsresol;
    let n = u32::from(r & 0x7f);
    let units_per_sec = if r & 0x80 == 0 {
        10u64.checked_pow(n).ok_or_else(bad)?
    } else {
        1u64.checked_shl(n).filter(|_| n < 64).ok_or_else(bad)?
    };
    let mut offset_sec = 0;
    for o in &idb.options {
        if o.code == OptionCode::IfTsoffset {
            if let Ok(x) = <[u8; 8]>::try_from(o.value()) {
                offset_sec = if big_endian {
                    i64::from_be_bytes(x)
                } else {
                    i64::from_le_bytes(x)
                };
            }
        }
    }
    Ok(Interface {
        linktype: idb.linktype.0,
        snaplen: idb.snaplen,
        units_per_sec,
        offset_sec,
    })
}

impl Interface {
    fn packet<'a>(&self, units: u64, wire_len: u32, data: &'a [u8]) -> Packet<'a> {
        let (sec, usec) = split_ts(units, self.units_per_sec);
        Packet {
            linktype: self.linktype,
            ts_sec: sec.saturating_add(self.offset_sec),
            ts_usec: usec,
            wire_len,
            data,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    const SHB: u32 = 0x0A0D_0D0A;
    const IDB: u32 = 1;
    const SPB: u32 = 3;
    const EPB: u32 = 6;

    fn block(t: u32, body: &[u8]) -> Vec<u8> {
        block_in(false, t, body)
    }

    /// A block framed (type and lengths) in a section's byte order; `body` is already in it.
    fn block_in(big_endian: bool, t: u32, body: &[u8]) -> Vec<u8> {
        let word = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut b = body.to_vec();
        while !b.len().is_multiple_of(4) {
            b.push(0);
        }
        let len = (b.len() + 12) as u32;
        let mut out = word(t).to_vec();
        out.extend(word(len));
        out.extend(&b);
        out.extend(word(len));
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
        // Interface statistics (interface, timestamp; no options): skipped.
        f.extend(block(5, &[0; 12]));
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

    /// A big-endian Section Header Block (version 1.0, section length unknown).
    fn be_shb() -> Vec<u8> {
        let mut body = BYTE_ORDER_MAGIC.to_be_bytes().to_vec();
        body.extend([0, 1, 0, 0]);
        body.extend((-1i64).to_be_bytes());
        block_in(true, SHB, &body)
    }

    /// A big-endian IDB of `linktype` with `opts` (big-endian, end-of-options included).
    fn be_idb(linktype: u16, opts: &[u8]) -> Vec<u8> {
        let mut body = linktype.to_be_bytes().to_vec();
        body.extend([0, 0]);
        body.extend(0u32.to_be_bytes());
        body.extend(opts);
        block_in(true, IDB, &body)
    }

    /// A big-endian EPB of interface 0 at 3,000,001 units holding the 4 bytes 45 00 00 04.
    fn be_epb() -> Vec<u8> {
        let mut body = 0u32.to_be_bytes().to_vec();
        body.extend(0u32.to_be_bytes());
        body.extend(3_000_001u32.to_be_bytes());
        body.extend(4u32.to_be_bytes());
        body.extend(4u32.to_be_bytes());
        body.extend([0x45, 0, 0, 4]);
        block_in(true, EPB, &body)
    }

    #[test]
    fn big_endian_section() {
        let mut f = be_shb();
        // IDB, link type 101 (raw IP)
        f.extend(be_idb(101, &[]));
        f.extend(be_epb());
        let (p, r) = read(&f);
        assert_eq!(r, Ok(()));
        assert_eq!(p, vec![(101, 3, 1, 4, vec![0x45, 0, 0, 4])]);
    }

    fn idb_opts(linktype: u16, opts: &[u8]) -> Vec<u8> {
        let mut body = linktype.to_le_bytes().to_vec();
        body.extend([0, 0]);
        body.extend(0u32.to_le_bytes());
        body.extend(opts);
        body.extend([0, 0, 0, 0]);
        block(IDB, &body)
    }

    #[test]
    fn power_of_two_resolution_offset_simple_and_obsolete_packets() {
        let mut opts = vec![9, 0, 1, 0, 0x80 | 20, 0, 0, 0]; // if_tsresol 2^20
        opts.extend([14, 0, 8, 0]);
        opts.extend(100i64.to_le_bytes()); // if_tsoffset +100 s
        let mut f = shb();
        f.extend(idb_opts(113, &opts));
        f.extend(epb(0, (5 << 20) + (1 << 19), b"abc", 3));
        let mut spb = 7u32.to_le_bytes().to_vec();
        spb.extend(b"hello!!");
        f.extend(block(SPB, &spb));
        // Obsolete packet block: interface 0, 0 drops, timestamp 2^20 + 2^18 units.
        let mut pb = vec![0, 0, 0, 0];
        pb.extend(0u32.to_le_bytes());
        pb.extend(((1u32 << 20) + (1 << 18)).to_le_bytes());
        pb.extend(2u32.to_le_bytes());
        pb.extend(9u32.to_le_bytes());
        pb.extend(b"xy");
        f.extend(block(2, &pb));
        // Every one-byte change (options included) reads without a panic.
        for i in 0..f.len() {
            let mut g = f.clone();
            g[i] ^= 0xff;
            let _ = read(&g);
        }
        let (p, r) = read(&f);
        assert_eq!(r, Ok(()));
        assert_eq!(
            p,
            vec![
                (113, 105, 500_000, 3, b"abc".to_vec()),
                (113, 0, 0, 7, b"hello!!".to_vec()),
                (113, 101, 250_000, 9, b"xy".to_vec()),
            ]
        );
    }

    #[test]
    fn big_endian_offset() {
        // The crate reads if_tsoffset little-endian in every section: read here by the section's.
        let mut f = be_shb();
        let mut opts = 14u16.to_be_bytes().to_vec();
        opts.extend(8u16.to_be_bytes());
        opts.extend((-2i64).to_be_bytes()); // if_tsoffset -2 s
        opts.extend([0, 0, 0, 0]); // end of options
        f.extend(be_idb(1, &opts));
        f.extend(be_epb());
        let (p, r) = read(&f);
        assert_eq!(r, Ok(()));
        assert_eq!(p, vec![(1, 1, 1, 4, vec![0x45, 0, 0, 4])]);
    }

    #[test]
    fn a_block_past_the_limit_ends_the_file_and_the_buffer_does_not_grow() {
        let mut good = shb();
        good.extend(idb(1, None));
        good.extend(epb(0, 1, b"x", 1));
        for len in [u32::MAX - 3, (MAX_BLOCK + 4) as u32] {
            let mut f = good.clone();
            f.extend(EPB.to_le_bytes());
            f.extend(len.to_le_bytes());
            f.extend([0u8; 64]);
            let mut out = 0;
            let mut r = Reader::new(&f[..]);
            let end = r.for_each(|_| out += 1);
            assert_eq!(out, 1, "length {len}");
            let d = end.unwrap_err();
            assert_eq!(d.kind, "corrupt", "length {len}");
            assert!(d.message.contains(&len.to_string()), "{}", d.message);
            assert_eq!(r.capacity, START_BUFFER, "length {len}");
        }
    }

    #[test]
    fn a_block_bigger_than_the_start_buffer_grows_it_once() {
        let big = vec![0xa5u8; 3 * START_BUFFER];
        let mut f = shb();
        f.extend(idb(1, None));
        f.extend(epb(0, 1, &big, 1));
        f.extend(epb(0, 2, b"z", 1));
        let mut got = Vec::new();
        let mut r = Reader::new(&f[..]);
        assert_eq!(r.for_each(|p| got.push(p.data.len())), Ok(()));
        assert_eq!(got, vec![big.len(), 1]);
        assert!(r.capacity > big.len() && r.capacity <= MAX_BLOCK + 4);
    }
}
