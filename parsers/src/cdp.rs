//! CDP (Cisco Discovery Protocol) device evidence: device id, platform, software version,
//! capabilities, addresses, port, native VLAN, VTP domain.
//!
//! Input: the CDP PDU after the 802.2 LLC/SNAP header (`AA AA 03 00 00 0C 20 00`), i.e. starting
//! at the version byte; or the LLC payload itself via [`parse_cdp_llc`]. Output: an owned
//! [`CdpInfo`]. No I/O, no state, no panics.
//!
//! Limits and recoverable failures: at most [`MAX_TLVS`] TLVs and [`MAX_ADDRESSES`] addresses;
//! strings cut at [`MAX_TEXT_LEN`] bytes (the software version at [`MAX_SOFTWARE_LEN`]) and
//! decoded lossily. A TLV that overruns the PDU, or has a length under its 4-byte header, ends
//! the walk and sets [`CdpInfo::truncated`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use thiserror::Error;

use crate::bytes::trimmed_text;
use crate::Needed;

/// CDP header: version (1), TTL (1), checksum (2).
pub const CDP_HEADER_LEN: usize = 4;
/// LLC/SNAP header that carries CDP: DSAP AA, SSAP AA, control 03, OUI 00000C, PID 0x2000.
pub const CDP_LLC_SNAP: [u8; 8] = [0xaa, 0xaa, 0x03, 0x00, 0x00, 0x0c, 0x20, 0x00];
/// TLVs walked per PDU.
pub const MAX_TLVS: usize = 64;
/// Addresses kept from the Addresses / Management Addresses TLVs.
pub const MAX_ADDRESSES: usize = 8;
/// Bytes kept of a short text TLV (device id, platform, port).
pub const MAX_TEXT_LEN: usize = 255;
/// Bytes kept of the software version (IOS banners run to ~300 bytes).
pub const MAX_SOFTWARE_LEN: usize = 1024;

/// CDP errors.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CdpError {
    #[error("CDP PDU incomplete: {needed:?} more bytes needed")]
    Incomplete { needed: Needed },
    #[error("not CDP: LLC/SNAP header is {found:02x?}")]
    NotCdp { found: Vec<u8> },
    #[error("unsupported CDP version {0}")]
    BadVersion(u8),
}

/// What one CDP announcement says about its sender.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[must_use]
pub struct CdpInfo {
    pub version: u8,
    pub ttl: u8,
    /// TLV 0x0001.
    pub device_id: Option<String>,
    /// TLV 0x0002 (NLPID IP and 802.2 IPv6 addresses).
    pub addresses: Vec<IpAddr>,
    /// TLV 0x0003: the sending interface.
    pub port_id: Option<String>,
    /// TLV 0x0004: bit 0 router, 1 transparent bridge, 2 source-route bridge, 3 switch,
    /// 4 host, 5 IGMP, 6 repeater, 7 VoIP phone, 8 remotely managed, 9 CVTA, 10 MAC relay.
    pub capabilities: Option<u32>,
    /// TLV 0x0005, lines joined with `\n`.
    pub software_version: Option<String>,
    /// TLV 0x0006 (e.g. `cisco WS-C2960-24TT-L`, `Cisco IP Phone 7975`).
    pub platform: Option<String>,
    /// TLV 0x0009.
    pub vtp_domain: Option<String>,
    /// TLV 0x000a.
    pub native_vlan: Option<u16>,
    /// TLV 0x0016.
    pub management_addresses: Vec<IpAddr>,
    pub truncated: bool,
}

impl CdpInfo {
    /// Names of the capability bits set.
    pub fn capability_names(&self) -> Vec<&'static str> {
        const NAMES: [&str; 11] = [
            "router",
            "trans_bridge",
            "sr_bridge",
            "switch",
            "host",
            "igmp",
            "repeater",
            "voip_phone",
            "remote",
            "cvta",
            "mac_relay",
        ];
        let caps = self.capabilities.unwrap_or(0);
        NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| caps & (1 << i) != 0)
            .map(|(_, n)| *n)
            .collect()
    }
}

/// Addresses TLV body: count (4), then per address: protocol type (1: 1 NLPID, 2 802.2),
/// protocol length (1), protocol, address length (2), address.
fn addresses(body: &[u8], out: &mut Vec<IpAddr>) {
    let Some(count) = body.get(..4) else { return };
    let count = u32::from_be_bytes([count[0], count[1], count[2], count[3]]);
    let mut rest = &body[4..];
    for _ in 0..count.min(MAX_ADDRESSES as u32) {
        let Some((&ptype, r)) = rest.split_first() else {
            return;
        };
        let Some((&plen, r)) = r.split_first() else {
            return;
        };
        let Some(proto) = r.get(..usize::from(plen)) else {
            return;
        };
        let r = &r[usize::from(plen)..];
        let Some(alen) = r.get(..2) else { return };
        let alen = usize::from(u16::from_be_bytes([alen[0], alen[1]]));
        let Some(addr) = r.get(2..2 + alen) else {
            return;
        };
        rest = &r[2 + alen..];
        let ip = match (ptype, proto, addr.len()) {
            // NLPID 0xCC = IPv4.
            (1, [0xcc], 4) => <[u8; 4]>::try_from(addr)
                .ok()
                .map(|a| IpAddr::V4(Ipv4Addr::from(a))),
            // 802.2 SNAP with EtherType 0x86DD = IPv6.
            (2, [0xaa, 0xaa, 0x03, 0, 0, 0, 0x86, 0xdd], 16) => <[u8; 16]>::try_from(addr)
                .ok()
                .map(|a| IpAddr::V6(Ipv6Addr::from(a))),
            _ => None,
        };
        if let Some(ip) = ip {
            if out.len() < MAX_ADDRESSES {
                out.push(ip);
            }
        }
    }
}

/// Parses a CDP PDU that starts at the version byte.
pub fn parse_cdp(pdu: &[u8]) -> Result<CdpInfo, CdpError> {
    if pdu.len() < CDP_HEADER_LEN {
        return Err(CdpError::Incomplete {
            needed: Needed::Size(CDP_HEADER_LEN - pdu.len()),
        });
    }
    let version = pdu[0];
    if version != 1 && version != 2 {
        return Err(CdpError::BadVersion(version));
    }
    let mut info = CdpInfo {
        version,
        ttl: pdu[1],
        ..CdpInfo::default()
    };
    let mut rest = &pdu[CDP_HEADER_LEN..];
    let mut n = 0usize;
    // TLV: type (2), length (2, includes these 4 bytes), value.
    while !rest.is_empty() {
        if n >= MAX_TLVS || rest.len() < 4 {
            info.truncated = true;
            break;
        }
        n += 1;
        let t = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        if len < 4 {
            info.truncated = true;
            break;
        }
        let Some(body) = rest.get(4..len) else {
            info.truncated = true;
            break;
        };
        rest = &rest[len..];
        match t {
            0x0001 => info.device_id = Some(trimmed_text(body, MAX_TEXT_LEN)),
            0x0002 => addresses(body, &mut info.addresses),
            0x0003 => info.port_id = Some(trimmed_text(body, MAX_TEXT_LEN)),
            0x0004 => {
                info.capabilities = body
                    .get(..4)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            }
            0x0005 => info.software_version = Some(trimmed_text(body, MAX_SOFTWARE_LEN)),
            0x0006 => info.platform = Some(trimmed_text(body, MAX_TEXT_LEN)),
            0x0009 => info.vtp_domain = Some(trimmed_text(body, MAX_TEXT_LEN)),
            0x000a => info.native_vlan = body.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])),
            0x0016 => addresses(body, &mut info.management_addresses),
            _ => {}
        }
    }
    Ok(info)
}

/// Parses CDP from the 802.3 LLC payload (starting at the DSAP byte), checking the SNAP header.
pub fn parse_cdp_llc(llc: &[u8]) -> Result<CdpInfo, CdpError> {
    let Some(head) = llc.get(..CDP_LLC_SNAP.len()) else {
        return Err(CdpError::Incomplete {
            needed: Needed::Size(CDP_LLC_SNAP.len() - llc.len()),
        });
    };
    if head != CDP_LLC_SNAP {
        return Err(CdpError::NotCdp {
            found: head.to_vec(),
        });
    }
    parse_cdp(&llc[CDP_LLC_SNAP.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // pcaps/corpus/generic/zeek_cdp-v1.pcap frame 1, the 802.3 payload from the LLC header on.
    // Oracle: tshark -T fields -e cdp.version -e cdp.deviceid -e cdp.portid -e cdp.capabilities
    // -e cdp.platform -e cdp.software_version => 1 | R1 | Ethernet0 | 0x00000001 | cisco 1601 |
    // "Cisco Internetwork Operating System Software ,IOS (tm) 1600 Software (C1600-NY-L),
    // Version 11.2(12)P, ..." ; -V shows the address 192.168.10.1 (NLPID IP).
    const R1: &str = "aaaa0300000c2000 01b4dff0 \
        00010006 5231 \
        00020011 00000001 01 01 cc 0004 c0a80a01 \
        0003000d 45746865726e657430 \
        00040008 00000001 \
        000500d8 436973636f20496e7465726e6574776f726b204f7065726174696e672053797374656d20536f667477617265200a494f532028746d29203136303020536f667477617265202843313630302d4e592d4c292c2056657273696f6e2031312e3228313229502c2052454c4541534520534f4654574152452028666331290a436f707972696768742028632920313938362d3139393820627920636973636f2053797374656d732c20496e632e0a436f6d70696c6564205475652030332d4d61722d39382030363a33332062792064736368776172740006000e636973636f2031363031";

    #[test]
    fn cisco_1601() {
        let i = parse_cdp_llc(&hex(R1)).unwrap();
        assert_eq!((i.version, i.ttl), (1, 180));
        assert_eq!(i.device_id.as_deref(), Some("R1"));
        assert_eq!(i.port_id.as_deref(), Some("Ethernet0"));
        assert_eq!(i.capabilities, Some(1));
        assert_eq!(i.capability_names(), vec!["router"]);
        assert_eq!(i.platform.as_deref(), Some("cisco 1601"));
        let sw = i.software_version.unwrap();
        assert!(sw.starts_with("Cisco Internetwork Operating System Software \nIOS (tm) 1600"));
        assert!(sw.contains("Version 11.2(12)P"));
        assert_eq!(
            i.addresses,
            vec![IpAddr::V4(Ipv4Addr::new(192, 168, 10, 1))]
        );
        assert!(!i.truncated);
    }

    #[test]
    fn truncated_and_bad() {
        let b = hex(R1);
        for n in 0..b.len() {
            let _ = parse_cdp_llc(&b[..n]);
        }
        let i = parse_cdp_llc(&b[..40]).unwrap();
        assert!(i.truncated);
        assert_eq!(i.device_id.as_deref(), Some("R1"));
        assert!(matches!(
            parse_cdp_llc(&hex("aaaa030000f82000")),
            Err(CdpError::NotCdp { .. })
        ));
        assert_eq!(parse_cdp(&hex("09b4dff0")), Err(CdpError::BadVersion(9)));
        // A TLV length under 4 stops the walk instead of looping.
        let i = parse_cdp(&hex("02b40000 00010002 0001")).unwrap();
        assert!(i.truncated);
    }
}
