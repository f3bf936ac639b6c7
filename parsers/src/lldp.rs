//! LLDP (IEEE 802.1AB) device evidence: chassis id, port id, system name and description,
//! capabilities, management addresses.
//!
//! Input: the LLDPDU, i.e. the Ethernet payload after EtherType 0x88CC. Output: an owned
//! [`LldpInfo`]. No I/O, no state, no panics.
//!
//! Limits and recoverable failures: at most [`MAX_TLVS`] TLVs are walked, at most
//! [`MAX_MGMT_ADDRS`] management addresses kept; strings are cut at [`MAX_TEXT_LEN`] bytes and
//! decoded lossily. A TLV that overruns the PDU ends the walk; what was read before is kept, and
//! [`LldpInfo::truncated`] says so. Only the three mandatory TLVs' absence is an error
//! ([`LldpError::MissingChassisId`]) in [`parse_lldp`]; [`parse_lldp_lax`] accepts anything.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use thiserror::Error;

use crate::bytes::trimmed_text;
use crate::Needed;

/// EtherType of LLDP frames.
pub const ETHERTYPE_LLDP: u16 = 0x88cc;
/// TLVs walked per PDU (a switch sends about a dozen; a 1500-byte PDU fits at most 750).
pub const MAX_TLVS: usize = 128;
/// Management address TLVs kept.
pub const MAX_MGMT_ADDRS: usize = 8;
/// Bytes kept of a text TLV (the 802.1AB limit for names and descriptions is 255).
pub const MAX_TEXT_LEN: usize = 255;

/// LLDP errors.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LldpError {
    #[error("LLDPDU incomplete: {needed:?} more bytes needed")]
    Incomplete { needed: Needed },
    #[error("LLDPDU does not start with a Chassis ID TLV (found type {found})")]
    MissingChassisId { found: u8 },
}

/// A chassis or port identifier with its subtype (802.1AB §8.5.2, §8.5.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LldpId {
    pub subtype: u8,
    /// Rendered: a MAC as `00:22:2d:81:db:10`, a network address as an IP, anything else as
    /// (lossy) text.
    pub value: String,
}

/// System capabilities (802.1AB §8.5.8): bit 0 other, 1 repeater, 2 bridge, 3 WLAN AP,
/// 4 router, 5 telephone, 6 DOCSIS, 7 station only, 8 C-VLAN, 9 S-VLAN, 10 TPMR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub supported: u16,
    pub enabled: u16,
}

impl Capabilities {
    /// Names of the enabled capabilities (`bridge`, `router`, ...), in bit order.
    pub fn enabled_names(&self) -> Vec<&'static str> {
        const NAMES: [&str; 11] = [
            "other",
            "repeater",
            "bridge",
            "wlan_ap",
            "router",
            "telephone",
            "docsis",
            "station",
            "c_vlan",
            "s_vlan",
            "tpmr",
        ];
        NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.enabled & (1 << i) != 0)
            .map(|(_, n)| *n)
            .collect()
    }
}

/// What one LLDPDU says about its sender.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[must_use]
pub struct LldpInfo {
    pub chassis_id: Option<LldpId>,
    pub port_id: Option<LldpId>,
    pub ttl: Option<u16>,
    pub port_description: Option<String>,
    pub system_name: Option<String>,
    pub system_description: Option<String>,
    pub capabilities: Option<Capabilities>,
    /// Management addresses that are IPv4/IPv6 (address family 1/2).
    pub management_addresses: Vec<IpAddr>,
    /// Organisationally specific TLVs seen (OUI, subtype), e.g. LLDP-MED inventory.
    pub org_specific: Vec<([u8; 3], u8)>,
    /// LLDP-MED inventory (TIA-1057 §10.2.6): hardware/firmware/software revision, serial,
    /// manufacturer, model, asset id, when present.
    pub med_inventory: Vec<(u8, String)>,
    /// The walk stopped before the End TLV (overrun or cap).
    pub truncated: bool,
}

fn mac(bytes: &[u8]) -> Option<String> {
    let m: [u8; 6] = bytes.try_into().ok()?;
    Some(crate::oui::format_mac(&m))
}

/// IANA address family 1 = IPv4, 2 = IPv6.
fn family_addr(family: u8, addr: &[u8]) -> Option<IpAddr> {
    match family {
        1 => {
            let a: [u8; 4] = addr.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(a)))
        }
        2 => {
            let a: [u8; 16] = addr.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        }
        _ => None,
    }
}

fn id(body: &[u8], mac_subtype: u8, addr_subtype: u8) -> Option<LldpId> {
    let (&subtype, value) = body.split_first()?;
    let rendered = if subtype == mac_subtype {
        mac(value).unwrap_or_else(|| hex(value))
    } else if subtype == addr_subtype {
        value
            .split_first()
            .and_then(|(&fam, a)| family_addr(fam, a))
            .map_or_else(|| hex(value), |ip| ip.to_string())
    } else {
        trimmed_text(value, MAX_TEXT_LEN)
    };
    Some(LldpId {
        subtype,
        value: rendered,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(MAX_TEXT_LEN / 2)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Parses an LLDPDU; the first TLV must be a Chassis ID (802.1AB §8.2).
pub fn parse_lldp(pdu: &[u8]) -> Result<LldpInfo, LldpError> {
    if pdu.len() < 2 {
        return Err(LldpError::Incomplete {
            needed: Needed::Size(2 - pdu.len()),
        });
    }
    let first_type = pdu[0] >> 1;
    if first_type != 1 {
        return Err(LldpError::MissingChassisId { found: first_type });
    }
    Ok(parse_lldp_lax(pdu))
}

/// Parses whatever TLVs an LLDPDU holds, in any order.
pub fn parse_lldp_lax(pdu: &[u8]) -> LldpInfo {
    let mut info = LldpInfo::default();
    let mut rest = pdu;
    let mut ended = false;
    for _ in 0..MAX_TLVS {
        // TLV header: type (7 bits), length (9 bits). 802.1AB §8.4.
        if rest.len() < 2 {
            break;
        }
        let tlv_type = rest[0] >> 1;
        let len = (usize::from(rest[0] & 1) << 8) | usize::from(rest[1]);
        let Some(body) = rest.get(2..2 + len) else {
            break;
        };
        rest = &rest[2 + len..];
        match tlv_type {
            0 => {
                ended = true;
                break;
            }
            // Chassis ID: subtype 4 = MAC address, 5 = network address.
            1 => info.chassis_id = id(body, 4, 5),
            // Port ID: subtype 3 = MAC address, 4 = network address.
            2 => info.port_id = id(body, 3, 4),
            3 => info.ttl = body.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])),
            4 => info.port_description = Some(trimmed_text(body, MAX_TEXT_LEN)),
            5 => info.system_name = Some(trimmed_text(body, MAX_TEXT_LEN)),
            6 => info.system_description = Some(trimmed_text(body, MAX_TEXT_LEN)),
            7 => {
                if let Some(b) = body.get(..4) {
                    info.capabilities = Some(Capabilities {
                        supported: u16::from_be_bytes([b[0], b[1]]),
                        enabled: u16::from_be_bytes([b[2], b[3]]),
                    });
                }
            }
            // Management address: string length (1) = subtype + address, subtype (1),
            // address, interface numbering... §8.5.9.
            8 if info.management_addresses.len() < MAX_MGMT_ADDRS => {
                let ip = body.split_first().and_then(|(&slen, r)| {
                    let s = r.get(..usize::from(slen))?;
                    let (&fam, addr) = s.split_first()?;
                    family_addr(fam, addr)
                });
                if let Some(ip) = ip {
                    info.management_addresses.push(ip);
                }
            }
            127 => {
                if let Some(b) = body.get(..4) {
                    let oui = [b[0], b[1], b[2]];
                    if info.org_specific.len() < MAX_TLVS {
                        info.org_specific.push((oui, b[3]));
                    }
                    // TIA TR-41 (LLDP-MED) OUI 00-12-BB, inventory subtypes 5..=11.
                    if oui == [0x00, 0x12, 0xbb] && (5..=11).contains(&b[3]) {
                        info.med_inventory
                            .push((b[3], trimmed_text(&body[4..], MAX_TEXT_LEN)));
                    }
                }
            }
            _ => {}
        }
    }
    info.truncated = !ended;
    info
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

    // pcaps/corpus/generic/zeek_lldp.pcap frame 1, Ethernet payload after EtherType 0x88cc.
    // Oracle: tshark -T fields -e lldp.chassis.subtype -e lldp.chassis.id.mac -e lldp.port.subtype
    // -e lldp.port.id -e lldp.port.desc -e lldp.tlv.system.name -e lldp.tlv.system.desc
    // -e lldp.tlv.system_cap -e lldp.tlv.enable_system_cap -e lldp.mgn.addr.ip4
    // -e lldp.time_to_live => 4 | 00:22:2d:81:db:10 | 7 | 1 | Port #1 | SMCGS8P-Smart |
    // SMCGS8P-Smart - SMCGS8P-Smart v3.20 | 0x0004 | 0x0004 | 192.168.2.10 | 120
    const SMC: &str = "0207 04 00222d81db10 \
        0402 07 31 \
        0602 0078 \
        0807 506f7274202331 \
        0a0d 534d43475338502d536d617274 \
        0c23 534d43475338502d536d617274202d20534d43475338502d536d6172742076332e3230 \
        0e04 00040004 \
        100c 05 01 c0a8020a 02 00000001 00 \
        0000 bb14272c";

    #[test]
    fn smc_switch() {
        let i = parse_lldp(&hex(SMC)).unwrap();
        let c = i.chassis_id.unwrap();
        assert_eq!((c.subtype, c.value.as_str()), (4, "00:22:2d:81:db:10"));
        let p = i.port_id.unwrap();
        assert_eq!((p.subtype, p.value.as_str()), (7, "1"));
        assert_eq!(i.ttl, Some(120));
        assert_eq!(i.port_description.as_deref(), Some("Port #1"));
        assert_eq!(i.system_name.as_deref(), Some("SMCGS8P-Smart"));
        assert_eq!(
            i.system_description.as_deref(),
            Some("SMCGS8P-Smart - SMCGS8P-Smart v3.20")
        );
        let caps = i.capabilities.unwrap();
        assert_eq!((caps.supported, caps.enabled), (4, 4));
        assert_eq!(caps.enabled_names(), vec!["bridge"]);
        assert_eq!(
            i.management_addresses,
            vec![IpAddr::V4(Ipv4Addr::new(192, 168, 2, 10))]
        );
        assert!(!i.truncated);
    }

    #[test]
    fn truncated_and_bad() {
        let b = hex(SMC);
        for n in 0..b.len() {
            let _ = parse_lldp(&b[..n]);
        }
        let i = parse_lldp(&b[..40]).unwrap();
        assert!(i.truncated);
        assert_eq!(i.ttl, Some(120));
        assert!(i.system_name.is_none());
        assert_eq!(
            parse_lldp(&hex("0a0d")),
            Err(LldpError::MissingChassisId { found: 5 })
        );
        assert!(matches!(
            parse_lldp(&[2]),
            Err(LldpError::Incomplete { .. })
        ));
    }

    #[test]
    fn med_inventory() {
        // Chassis id, TTL, then LLDP-MED (00-12-BB) model name (subtype 10) "IntelliVue MX800".
        let b = hex("0207 04 0009fb770205 0602 0078 \
             fe14 0012bb 0a 496e74656c6c69567565204d58383030 0000");
        let i = parse_lldp(&b).unwrap();
        assert_eq!(i.med_inventory, vec![(10, "IntelliVue MX800".to_string())]);
        assert_eq!(i.org_specific, vec![([0x00, 0x12, 0xbb], 10)]);
    }
}
