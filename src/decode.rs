//! Link, network and transport decoding with `etherparse`'s lax slicing.
//!
//! Input: one captured frame and its link type. Output: a [`Decoded`] packet that borrows the
//! frame, or the reason it has no IP layer. Truncated frames still yield what they carry (lax
//! slicing); each error is counted by layer and kind in [`WorkerStats`], never a panic: every
//! accessor here reads through `etherparse`'s checked slices or `get()`.
//!
//! IP fragments are counted, not reassembled: a first fragment (offset 0) still yields its
//! transport ports and joins its flow; later fragments carry no ports and count only as
//! `medtap_decode_ipv4_fragments_total` (and as IPv6 fragments likewise).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{LaxIpSlice, SingleVlanSlice, TcpSlice, UdpSlice};

use crate::stats::{Counter, WorkerStats};

/// Link types medtap reads (libpcap's LINKTYPE_* numbers).
pub mod linktype {
    pub const NULL: i32 = 0;
    pub const ETHERNET: i32 = 1;
    pub const RAW_OPENBSD: i32 = 12;
    pub const RAW_BSDOS: i32 = 14;
    pub const RAW: i32 = 101;
    pub const LOOP: i32 = 108;
    pub const LINUX_SLL: i32 = 113;
    pub const IPV4: i32 = 228;
    pub const IPV6: i32 = 229;
    pub const LINUX_SLL2: i32 = 276;

    pub fn supported(lt: i32) -> bool {
        matches!(
            lt,
            NULL | ETHERNET
                | RAW_OPENBSD
                | RAW_BSDOS
                | RAW
                | LOOP
                | LINUX_SLL
                | IPV4
                | IPV6
                | LINUX_SLL2
        )
    }
}

/// TCP header fields the flow, reassembly and fingerprint stages use.
#[derive(Debug, Clone, Copy)]
pub struct Tcp<'a> {
    pub seq: u32,
    pub ack: u32,
    pub syn: bool,
    pub ack_flag: bool,
    pub fin: bool,
    pub rst: bool,
    pub window: u16,
    /// Raw options bytes, for stack fingerprints.
    pub options: &'a [u8],
}

#[derive(Debug, Clone, Copy)]
pub enum L4<'a> {
    Tcp(Tcp<'a>),
    Udp,
    Icmp {
        icmp_type: u8,
        code: u8,
    },
    /// A non-first IP fragment, or a protocol medtap does not decode.
    Other,
}

/// One decoded packet, borrowing the frame.
#[derive(Debug, Clone, Copy)]
pub struct Decoded<'a> {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// Outer, inner VLAN id; 0 = none.
    pub vlan: [u16; 2],
    pub src_ip: IpAddr,
    pub dst_ip: IpAddr,
    pub ttl: u8,
    /// IP protocol number of the transport.
    pub proto: u8,
    pub src_port: u16,
    pub dst_port: u16,
    pub l4: L4<'a>,
    /// Transport payload (TCP/UDP data; empty for others).
    pub payload: &'a [u8],
    /// The IP packet from its header on (what a SYN stack signature is read from).
    pub ip: &'a [u8],
}

/// 802.1Q/802.1ad tags read before giving up on a frame (hostile stacks are counted).
pub const MAX_VLAN_DEPTH: usize = 8;

/// Decode one frame. `None` when the frame has no usable IP layer (counted).
///
/// Walks the layers with `etherparse`'s per-layer slices (Ethernet II, single VLAN, lax IP,
/// TCP/UDP) rather than its whole-packet `LaxSlicedPacket`, which is several hundred bytes
/// that would be built and copied for every packet.
pub fn decode<'a>(linktype: i32, frame: &'a [u8], stats: &mut WorkerStats) -> Option<Decoded<'a>> {
    let mut src_mac = [0u8; 6];
    let mut dst_mac = [0u8; 6];
    let (ether_type, mut data) = match linktype {
        linktype::ETHERNET => {
            // Ethernet II (what `etherparse`'s `Ethernet2Slice` reads, a test holds them equal):
            // destination (0), source (6), EtherType (12), payload (14).
            let Some((hdr, rest)) = frame.split_first_chunk::<14>() else {
                stats.inc(Counter::DecodeLinkTruncated);
                return None;
            };
            let (dst, src_type) = hdr.split_first_chunk::<6>()?;
            let (src, et) = src_type.split_first_chunk::<6>()?;
            dst_mac = *dst;
            src_mac = *src;
            (u16::from_be_bytes(*et.first_chunk::<2>()?), rest)
        }
        linktype::LINUX_SLL => {
            // SLL header (16 bytes): packet type(2) ARPHRD(2) addr len(2) addr(8) protocol(2).
            let (Some(hdr), Some(rest)) = (frame.get(..16), frame.get(16..)) else {
                stats.inc(Counter::DecodeLinkTruncated);
                return None;
            };
            if u16::from_be_bytes([hdr[4], hdr[5]]) == 6 {
                src_mac.copy_from_slice(&hdr[6..12]);
            }
            (u16::from_be_bytes([hdr[14], hdr[15]]), rest)
        }
        linktype::LINUX_SLL2 => {
            // SLL2 header (20 bytes): protocol(2) reserved(2) ifindex(4) ARPHRD(2) packet type(1)
            // addr len(1) addr(8).
            let (Some(hdr), Some(rest)) = (frame.get(..20), frame.get(20..)) else {
                stats.inc(Counter::DecodeLinkTruncated);
                return None;
            };
            if hdr[11] == 6 {
                src_mac.copy_from_slice(&hdr[12..18]);
            }
            (u16::from_be_bytes([hdr[0], hdr[1]]), rest)
        }
        linktype::NULL | linktype::LOOP => {
            // 4-byte address family; host byte order of the capturing machine for NULL,
            // network order for LOOP. AF_INET is 2 everywhere; AF_INET6 is 10, 24, 28 or 30.
            let (Some(hdr), Some(rest)) = (frame.get(..4), frame.get(4..)) else {
                stats.inc(Counter::DecodeLinkTruncated);
                return None;
            };
            let le = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
            let be = u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
            match if le < 256 { le } else { be } {
                2 => (0x0800, rest),
                10 | 24 | 28 | 30 => (0x86dd, rest),
                _ => {
                    stats.inc(Counter::DecodeNotIp);
                    return None;
                }
            }
        }
        linktype::RAW
        | linktype::RAW_OPENBSD
        | linktype::RAW_BSDOS
        | linktype::IPV4
        | linktype::IPV6 => match frame.first().map(|b| b >> 4) {
            Some(6) => (0x86dd, frame),
            _ => (0x0800, frame),
        },
        _ => {
            stats.inc(Counter::DecodeLinkUnsupported);
            return None;
        }
    };
    let mut vlan = [0u16; 2];
    let mut et = ether_type;
    let mut depth = 0;
    while matches!(et, 0x8100 | 0x88a8 | 0x9100) {
        if depth == MAX_VLAN_DEPTH {
            stats.inc(Counter::DecodeVlanTooDeep);
            return None;
        }
        let Ok(tag) = SingleVlanSlice::from_slice(data) else {
            stats.inc(Counter::DecodeVlanTruncated);
            return None;
        };
        if let Some(v) = vlan.get_mut(depth) {
            *v = tag.vlan_identifier().value();
        }
        et = tag.ether_type().0;
        data = tag.payload_slice();
        depth += 1;
    }
    if !matches!(et, 0x0800 | 0x86dd) {
        stats.inc(Counter::DecodeNotIp);
        return None;
    }
    from_ip(data, et == 0x86dd, stats, (src_mac, dst_mac, vlan))
}

/// What the link layer gave: source and destination MAC, VLAN ids.
type Link = ([u8; 6], [u8; 6], [u16; 2]);

#[inline(always)]
fn from_ip<'a>(
    data: &'a [u8],
    v6: bool,
    stats: &mut WorkerStats,
    link: Link,
) -> Option<Decoded<'a>> {
    if let Some(d) = ipv4_tcp(data, link) {
        return Some(d);
    }
    if let Some(d) = ipv6_tcp(data, link) {
        return Some(d);
    }
    from_ip_sliced(data, v6, stats, link)
}

/// The common case read straight from the bytes: an IPv4 packet whose header and total length
/// fit the captured bytes, not a fragment, carrying a whole TCP header. Anything else is `None`
/// and goes through `etherparse` ([`from_ip_sliced`], which gives the same result for these
/// packets: a test holds them equal; nothing is counted for them).
#[inline(always)]
fn ipv4_tcp(data: &[u8], (src_mac, dst_mac, vlan): Link) -> Option<Decoded<'_>> {
    // RFC 791 3.1: ver/ihl (0), total length (2), flags/fragment offset (6), ttl (8),
    // protocol (9), src (12), dst (16).
    let h: &[u8; 20] = data.get(..20)?.try_into().ok()?;
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    // Version 4, TCP, no more-fragments flag and offset 0.
    if h[0] >> 4 != 4 || h[9] != 6 || u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0 {
        return None;
    }
    if ihl < 20 || total < ihl || total > data.len() {
        return None;
    }
    let tcp = data.get(ihl..total)?;
    let src_ip = IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15]));
    let dst_ip = IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19]));
    tcp_by_hand(data, tcp, src_ip, dst_ip, h[8], (src_mac, dst_mac, vlan))
}

/// The same for IPv6 (the second most common case): a whole fixed header with TCP as its next
/// header (no extension headers), a payload length that fits the captured bytes (0, a jumbo
/// payload, is left to `etherparse`), carrying a whole TCP header.
#[inline(always)]
fn ipv6_tcp(data: &[u8], link: Link) -> Option<Decoded<'_>> {
    // RFC 8200 3: version (0), payload length (4), next header (6), hop limit (7), src (8),
    // dst (24).
    let h: &[u8; 40] = data.get(..40)?.try_into().ok()?;
    if h[0] >> 4 != 6 || h[6] != 6 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    if len == 0 {
        return None;
    }
    let tcp = data.get(40..40 + len)?;
    let addr = |i: usize| -> Option<IpAddr> {
        let a: [u8; 16] = h.get(i..i + 16)?.try_into().ok()?;
        Some(IpAddr::V6(Ipv6Addr::from(a)))
    };
    tcp_by_hand(data, tcp, addr(8)?, addr(24)?, h[7], link)
}

/// The TCP part of [`ipv4_tcp`] and [`ipv6_tcp`]: `tcp` is the IP payload.
#[inline(always)]
fn tcp_by_hand<'a>(
    data: &'a [u8],
    tcp: &'a [u8],
    src_ip: IpAddr,
    dst_ip: IpAddr,
    ttl: u8,
    (src_mac, dst_mac, vlan): Link,
) -> Option<Decoded<'a>> {
    // RFC 9293 3.1: ports (0, 2), seq (4), ack (8), data offset (12), flags (13), window (14).
    let th: &[u8; 20] = tcp.get(..20)?.try_into().ok()?;
    let doff = usize::from(th[12] >> 4) * 4;
    if doff < 20 || doff > tcp.len() {
        return None;
    }
    let be32 = |i: usize| u32::from_be_bytes([th[i], th[i + 1], th[i + 2], th[i + 3]]);
    let flags = th[13];
    Some(Decoded {
        src_mac,
        dst_mac,
        vlan,
        src_ip,
        dst_ip,
        ttl,
        proto: 6,
        src_port: u16::from_be_bytes([th[0], th[1]]),
        dst_port: u16::from_be_bytes([th[2], th[3]]),
        l4: L4::Tcp(Tcp {
            seq: be32(4),
            ack: be32(8),
            syn: flags & 0x02 != 0,
            ack_flag: flags & 0x10 != 0,
            fin: flags & 0x01 != 0,
            rst: flags & 0x04 != 0,
            window: u16::from_be_bytes([th[14], th[15]]),
            options: tcp.get(20..doff).unwrap_or(&[]),
        }),
        payload: tcp.get(doff..).unwrap_or(&[]),
        ip: data,
    })
}

fn from_ip_sliced<'a>(
    data: &'a [u8],
    v6: bool,
    stats: &mut WorkerStats,
    (src_mac, dst_mac, vlan): Link,
) -> Option<Decoded<'a>> {
    let (ip, ext_err) = match LaxIpSlice::from_slice(data) {
        Ok(r) => r,
        Err(e) => {
            use etherparse::err::ip::LaxHeaderSliceError as E;
            let v6 = data.first().map_or(v6, |b| b >> 4 == 6);
            stats.inc(match (e, v6) {
                (E::Len(_), false) => Counter::DecodeIpv4Truncated,
                (E::Len(_), true) => Counter::DecodeIpv6Truncated,
                (E::Content(_), false) => Counter::DecodeIpv4Invalid,
                (E::Content(_), true) => Counter::DecodeIpv6Invalid,
            });
            return None;
        }
    };
    if ext_err.is_some() {
        stats.inc(Counter::DecodeIpv6ExtTruncated);
    }
    let (src_ip, dst_ip, ttl, first_fragment) = match &ip {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            let mut first = true;
            if v4.payload().fragmented {
                stats.inc(Counter::Ipv4Fragments);
                first = h.fragments_offset().value() == 0;
            }
            (
                IpAddr::V4(Ipv4Addr::from(h.source())),
                IpAddr::V4(Ipv4Addr::from(h.destination())),
                h.ttl(),
                first,
            )
        }
        LaxIpSlice::Ipv6(v6) => {
            let h = v6.header();
            let mut first = true;
            if v6.payload().fragmented {
                stats.inc(Counter::Ipv4Fragments);
                first =
                    ipv6_first_fragment(v6.extensions().first_header(), v6.extensions().slice());
            }
            (
                IpAddr::V6(Ipv6Addr::from(h.source())),
                IpAddr::V6(Ipv6Addr::from(h.destination())),
                h.hop_limit(),
                first,
            )
        }
    };
    let pl = ip.payload();
    let proto = pl.ip_number.0;
    let mut d = Decoded {
        src_mac,
        dst_mac,
        vlan,
        src_ip,
        dst_ip,
        ttl,
        proto,
        src_port: 0,
        dst_port: 0,
        l4: L4::Other,
        payload: &[],
        ip: data,
    };
    if !first_fragment {
        // A later fragment: no transport header here.
        return Some(d);
    }
    match proto {
        6 => match TcpSlice::from_slice(pl.payload) {
            Ok(t) => fill_tcp(&mut d, &t),
            Err(etherparse::err::tcp::HeaderSliceError::Len(_)) => {
                if !pl.incomplete {
                    stats.inc(Counter::DecodeTcpTruncated);
                }
            }
            Err(_) => stats.inc(Counter::DecodeTcpInvalid),
        },
        17 => match UdpSlice::from_slice_lax(pl.payload) {
            Ok(u) => fill_udp(&mut d, &u),
            Err(_) => {
                if !pl.incomplete {
                    stats.inc(Counter::DecodeUdpTruncated);
                }
            }
        },
        1 | 58 => match pl.payload {
            [t, c, ..] => {
                d.l4 = L4::Icmp {
                    icmp_type: *t,
                    code: *c,
                }
            }
            _ => stats.inc(Counter::DecodeIcmpTruncated),
        },
        _ => {}
    }
    Some(d)
}

fn fill_tcp<'a>(d: &mut Decoded<'a>, t: &etherparse::TcpSlice<'a>) {
    d.src_port = t.source_port();
    d.dst_port = t.destination_port();
    d.payload = t.payload();
    d.l4 = L4::Tcp(Tcp {
        seq: t.sequence_number(),
        ack: t.acknowledgment_number(),
        syn: t.syn(),
        ack_flag: t.ack(),
        fin: t.fin(),
        rst: t.rst(),
        window: t.window_size(),
        options: t.header_slice().get(20..).unwrap_or(&[]),
    });
}

fn fill_udp<'a>(d: &mut Decoded<'a>, u: &etherparse::UdpSlice<'a>) {
    d.src_port = u.source_port();
    d.dst_port = u.destination_port();
    d.payload = u.payload();
    d.l4 = L4::Udp;
}

/// Walk IPv6 extension headers (at most 8) to the Fragment header; true if its offset is 0.
fn ipv6_first_fragment(first: Option<etherparse::IpNumber>, mut exts: &[u8]) -> bool {
    let Some(mut next) = first else { return true };
    for _ in 0..8 {
        match next.0 {
            44 => {
                // Fragment header (RFC 8200 4.5): next(1) reserved(1) offset(13 bits)|res|M.
                return match exts.get(2..4) {
                    Some(o) => (u16::from_be_bytes([o[0], o[1]]) >> 3) == 0,
                    None => false,
                };
            }
            51 => {
                // AH: length in 4-octet units minus 2.
                let (Some(&n), Some(&l)) = (exts.first(), exts.get(1)) else {
                    return false;
                };
                let len = (usize::from(l) + 2) * 4;
                next = etherparse::IpNumber(n);
                exts = exts.get(len..).unwrap_or(&[]);
            }
            _ => {
                let (Some(&n), Some(&l)) = (exts.first(), exts.get(1)) else {
                    return false;
                };
                let len = (usize::from(l) + 1) * 8;
                next = etherparse::IpNumber(n);
                exts = exts.get(len..).unwrap_or(&[]);
            }
        }
    }
    false
}

/// A link-layer control frame medtap reads for device evidence.
#[derive(Debug, Clone, Copy)]
pub enum LinkControl<'a> {
    /// LLDP (EtherType 0x88cc): the LLDPDU.
    Lldp(&'a [u8]),
    /// CDP (802.3 + LLC/SNAP, OUI 00000c, PID 0x2000): the LLC header on.
    Cdp(&'a [u8]),
}

/// For a frame [`decode`] found no IP in: its source MAC and the LLDP or CDP payload, if it is
/// one (Ethernet link type only; at most one VLAN tag). Only called on non-IP frames, so IP
/// packets pay nothing for it.
pub fn link_control(linktype: i32, frame: &[u8]) -> Option<([u8; 6], LinkControl<'_>)> {
    if linktype != linktype::ETHERNET {
        return None;
    }
    let src: [u8; 6] = frame.get(6..12)?.try_into().ok()?;
    let mut et = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let mut rest = frame.get(14..)?;
    if et == 0x8100 {
        et = u16::from_be_bytes([*rest.get(2)?, *rest.get(3)?]);
        rest = rest.get(4..)?;
    }
    match et {
        0x88cc => Some((src, LinkControl::Lldp(rest))),
        // 802.3 length field, then LLC DSAP/SSAP AA AA, control 03, SNAP OUI 00000c, PID 2000.
        n if n <= 1500 && rest.get(..8) == Some(&[0xaa, 0xaa, 0x03, 0, 0, 0x0c, 0x20, 0x00]) => {
            let len = usize::from(n).min(rest.len());
            Some((src, LinkControl::Cdp(&rest[..len])))
        }
        _ => None,
    }
}

/// A direction-independent hash of the flow a frame belongs to, for sharding packets onto
/// workers. Frames with no IP layer hash to 0. Uses the same decoder; its counts go to
/// `scratch`, which the caller keeps and never reports (the worker counts the packet).
pub fn shard_hash(linktype: i32, frame: &[u8], scratch: &mut WorkerStats) -> u64 {
    match decode(linktype, frame, scratch) {
        Some(d) => {
            let (a, b) = ((d.src_ip, d.src_port), (d.dst_ip, d.dst_port));
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let mut h =
                ahash::RandomState::with_seeds(1, 2, 3, 4).hash_one((lo, hi, d.proto, d.vlan));
            h ^= h >> 29;
            h
        }
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_garbage_frames_are_counted_not_panics() {
        let mut s = WorkerStats::default();
        for lt in [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 9999] {
            for len in 0..80 {
                let junk: Vec<u8> = (0..len).map(|i| (i * 37 + lt as usize) as u8).collect();
                let _ = decode(lt, &junk, &mut s);
            }
        }
    }

    /// Every single-byte change of the first 64 bytes of each packet and every truncation.
    fn mutations(bases: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        let mut cases = Vec::new();
        for base in bases {
            for at in 0..base.len().min(64) {
                for v in [
                    0u8, 1, 2, 4, 5, 6, 15, 0x10, 0x20, 0x3f, 0x40, 0x45, 0x50, 0x60, 0x80, 0xff,
                ] {
                    let mut p = base.clone();
                    p[at] = v;
                    cases.push(p);
                }
            }
            for n in 0..=base.len() {
                cases.push(base[..n].to_vec());
            }
        }
        cases
    }

    #[test]
    fn ethernet_read_by_hand_equals_etherparse() {
        let frame: Vec<u8> = (0u8..40).map(|i| i.wrapping_mul(37)).collect();
        for n in 0..=frame.len() {
            let f = &frame[..n];
            let mut st = WorkerStats::default();
            let ours = decode(linktype::ETHERNET, f, &mut st).map(|d| (d.src_mac, d.dst_mac));
            let theirs = etherparse::Ethernet2Slice::from_slice_without_fcs(f);
            assert_eq!(
                theirs.is_err(),
                st.get(Counter::DecodeLinkTruncated) == 1,
                "{n}"
            );
            if let Ok(eth) = theirs {
                // Our EtherType read: an IPv4 header behind it is read from the payload.
                let mut ip = f.to_vec();
                ip[12..14].copy_from_slice(&[0x08, 0x00]);
                ip.truncate(14);
                ip.extend_from_slice(&[
                    0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0, 1, 0, 2,
                    0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x10, 0, 1, 0, 0, 0, 0,
                ]);
                let d = decode(linktype::ETHERNET, &ip, &mut st).expect("IPv4 TCP");
                assert_eq!((d.src_mac, d.dst_mac), (eth.source(), eth.destination()));
                assert_eq!(d.ip, &ip[14..]);
                if let Some(m) = ours {
                    assert_eq!(m, (eth.source(), eth.destination()));
                }
                assert_eq!(
                    u16::from_be_bytes([f[12], f[13]]),
                    eth.ether_type().0,
                    "{n}"
                );
            }
        }
    }

    #[test]
    fn ipv6_tcp_read_by_hand_equals_etherparse() {
        // A SYN with options and a data segment over IPv6, changed and truncated as above.
        let v6 = |len: u8, src: u8| -> Vec<u8> {
            let mut h = vec![0x60, 0x0a, 0xbc, 0xde, 0, len, 6, 64];
            h.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, src]);
            h.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
            h
        };
        let syn: Vec<u8> = [
            &v6(40, 1)[..],
            &[
                0x9c, 0x40, 0, 104, 1, 2, 3, 4, 0, 0, 0, 0, 0xa0, 0x02, 0xfa, 0xf0, 0, 0, 0, 0,
            ],
            &[
                2, 4, 5, 0xa0, 4, 2, 8, 10, 0, 1, 2, 3, 0, 0, 0, 0, 1, 3, 3, 7,
            ],
        ]
        .concat();
        let mut data = [
            &v6(36, 9)[..],
            &[
                0, 80, 0xc3, 0x50, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0x50, 0x19, 0, 1, 0, 0, 0, 0,
            ],
            b"GET / HTTP/1.1\r\n",
        ]
        .concat();
        data.extend_from_slice(&[0; 6]); // padding past the payload length
        let mut answered = 0;
        for p in &mutations(vec![syn, data]) {
            let link = ([1, 2, 3, 4, 5, 6], [7; 6], [0, 0]);
            assert!(ipv4_tcp(p, link).is_none() || p[0] >> 4 == 4);
            let Some(fast) = ipv6_tcp(p, link) else {
                continue;
            };
            answered += 1;
            let mut st = WorkerStats::default();
            let sliced = from_ip_sliced(p, true, &mut st, link).expect("etherparse reads it too");
            assert_eq!(format!("{fast:?}"), format!("{sliced:?}"), "{p:?}");
            assert!(st.c.iter().all(|&c| c == 0), "{p:?}");
        }
        assert!(answered > 500, "{answered}");
    }

    #[test]
    fn ipv4_tcp_read_by_hand_equals_etherparse() {
        // A SYN with options and a data segment, then every single-byte change of their
        // headers and every truncation: where the hand-read path answers, etherparse answers the
        // same and counts nothing.
        let syn: Vec<u8> = [
            &[
                0x45, 0, 0, 60, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
            ][..],
            &[
                0x9c, 0x40, 0, 104, 1, 2, 3, 4, 0, 0, 0, 0, 0xa0, 0x02, 0xfa, 0xf0, 0, 0, 0, 0,
            ],
            &[
                2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 1, 2, 3, 0, 0, 0, 0, 1, 3, 3, 7,
            ],
        ]
        .concat();
        let mut data = [
            &[
                0x46, 0, 0, 51, 0, 0, 0, 0, 128, 6, 0, 0, 192, 168, 1, 9, 172, 16, 0, 1,
            ][..],
            &[1, 2, 3, 4],
            &[
                0, 80, 0xc3, 0x50, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0x50, 0x19, 0, 1, 0, 0, 0, 0,
            ],
            b"GET / HTTP/1.1\r\n",
        ]
        .concat();
        data.extend_from_slice(&[0; 6]); // Ethernet padding past the total length
        let mut cases = Vec::new();
        for base in [syn, data] {
            for at in 0..base.len().min(64) {
                for v in [
                    0u8, 1, 2, 4, 5, 6, 15, 0x10, 0x20, 0x3f, 0x40, 0x45, 0x50, 0x80, 0xff,
                ] {
                    let mut p = base.clone();
                    p[at] = v;
                    cases.push(p);
                }
            }
            for n in 0..=base.len() {
                cases.push(base[..n].to_vec());
            }
        }
        let mut answered = 0;
        for p in &cases {
            let link = ([1, 2, 3, 4, 5, 6], [7; 6], [100, 0]);
            let Some(fast) = ipv4_tcp(p, link) else {
                continue;
            };
            answered += 1;
            let mut st = WorkerStats::default();
            let sliced = from_ip_sliced(p, false, &mut st, link).expect("etherparse reads it too");
            assert_eq!(format!("{fast:?}"), format!("{sliced:?}"), "{p:?}");
            assert!(st.c.iter().all(|&c| c == 0), "{p:?}");
        }
        assert!(answered > 500, "{answered}");
    }

    #[test]
    fn ipv6_fragment_walk_handles_truncation() {
        assert!(!ipv6_first_fragment(
            Some(etherparse::IpNumber(0)),
            &[44, 200]
        ));
        assert!(ipv6_first_fragment(
            Some(etherparse::IpNumber(44)),
            &[17, 0, 0, 1, 0, 0, 0, 1]
        ));
        assert!(!ipv6_first_fragment(
            Some(etherparse::IpNumber(44)),
            &[17, 0, 0, 9, 0, 0, 0, 1]
        ));
    }
}
