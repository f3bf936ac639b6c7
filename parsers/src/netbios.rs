//! NetBIOS evidence: NBNS names (RFC 1002 §4.2, UDP 137) and NBDGM browser announcements
//! (RFC 1002 §4.4, UDP 138, with the SMB mailslot `\MAILSLOT\BROWSE` and MS-BRWS §2.2).
//!
//! Inputs: one UDP payload. Outputs: owned [`NbnsInfo`] / [`NbdgmInfo`]. No I/O, no panics.
//!
//! NBNS: the names in questions and answers, decoded from first-level encoding (RFC 1001
//! §14.1) into the 15-character name and its suffix byte (`<00>` workstation, `<20>` server,
//! `<1c>` domain controllers, `<1d>` master browser, `<1e>` browser election, `<03>` messenger),
//! and the addresses of NB answers/registrations. A host registering `NAME<20>` runs file
//! sharing; the name itself is often the asset tag or the modality's station name.
//!
//! NBDGM: a host (0x01), local master (0x0f) or domain (0x0c) announcement carries the server
//! name, the Windows version (major.minor: 4.0 Windows 95/98/NT4, 5.0 2000, 5.1 XP, 5.2 2003,
//! 6.0 Vista/2008, 6.1 7/2008 R2, 6.2 8/2012, 6.3 8.1/2012 R2, 10.0 10/11/2016+), server type
//! bits and a comment.
//!
//! Limits: names are read through [`crate::dns::read_name`] (its caps apply), at most
//! [`MAX_NAMES`] names and addresses kept; the SMB transaction is located by its own offsets,
//! each checked against the datagram; the comment is cut at [`MAX_COMMENT_LEN`] bytes.

use std::net::Ipv4Addr;

use thiserror::Error;

use crate::bytes::le16;
use crate::dns::{self, rtype};
use crate::Needed;

/// NBNS header (same as DNS).
pub const NBNS_HEADER_LEN: usize = 12;
/// NBDGM direct/broadcast datagram header: type, flags, id, source IP, source port, length,
/// packet offset. RFC 1002 §4.4.1.
pub const NBDGM_HEADER_LEN: usize = 14;
/// Names and addresses kept per message.
pub const MAX_NAMES: usize = 16;
/// Bytes kept of an announcement comment (MS-BRWS: at most 43).
pub const MAX_COMMENT_LEN: usize = 64;

/// NetBIOS errors.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NetbiosError {
    #[error("NetBIOS message incomplete: {needed:?} more bytes needed")]
    Incomplete { needed: Needed },
    #[error("invalid NetBIOS {layer} at offset {offset}: {reason}")]
    Invalid {
        layer: &'static str,
        offset: usize,
        reason: &'static str,
    },
}

/// A decoded NetBIOS name: up to 15 characters (trailing spaces trimmed) and the suffix byte.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NetbiosName {
    pub name: String,
    pub suffix: u8,
}

impl std::fmt::Display for NetbiosName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}<{:02x}>", self.name, self.suffix)
    }
}

impl NetbiosName {
    /// Whether the name is a machine's own (workstation `<00>`, server `<20>`, messenger `<03>`)
    /// rather than a group/workgroup name. The caller still needs the NB flags' G bit to be
    /// sure; this is the usual heuristic.
    pub fn is_host_suffix(&self) -> bool {
        matches!(self.suffix, 0x00 | 0x03 | 0x20)
    }
}

/// First-level decoding of the 32-byte encoded form (each nibble + 'A'). RFC 1001 §14.1.
/// Returns `None` for a label that is not 32 characters `A`..`P`.
pub fn decode_name(encoded: &[u8]) -> Option<NetbiosName> {
    if encoded.len() != 32 {
        return None;
    }
    let mut raw = [0u8; 16];
    for (i, pair) in encoded.chunks_exact(2).enumerate() {
        let hi = pair[0].checked_sub(b'A').filter(|v| *v < 16)?;
        let lo = pair[1].checked_sub(b'A').filter(|v| *v < 16)?;
        raw[i] = (hi << 4) | lo;
    }
    let suffix = raw[15];
    let name: String = raw[..15]
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '.'
            }
        })
        .collect();
    Some(NetbiosName {
        name: name.trim_end().to_string(),
        suffix,
    })
}

/// The encoded name is the first label of the DNS-style name; scope labels follow.
fn decode_dotted(dotted: &str) -> Option<NetbiosName> {
    decode_name(dotted.split('.').next()?.as_bytes())
}

/// What an NBNS message says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[must_use]
pub struct NbnsInfo {
    pub transaction_id: u16,
    /// Opcode: 0 query, 5 registration, 6 release, 7 WACK, 8 refresh. RFC 1002 §4.2.1.1.
    pub opcode: u8,
    pub is_response: bool,
    /// Names of the questions, then of the records, deduplicated.
    pub names: Vec<NetbiosName>,
    /// Addresses from NB records (answers and the additional record of a registration).
    pub addresses: Vec<Ipv4Addr>,
    /// NB flags of the first NB record (G bit 0x8000 = group name, ONT bits).
    pub nb_flags: Option<u16>,
}

impl NbnsInfo {
    /// Opcode name.
    pub fn opcode_name(&self) -> &'static str {
        match self.opcode {
            0 => "query",
            5 => "registration",
            6 => "release",
            7 => "wack",
            8 | 9 => "refresh",
            _ => "unknown",
        }
    }

    /// The group bit of the first NB record.
    pub fn is_group(&self) -> bool {
        self.nb_flags.is_some_and(|f| f & 0x8000 != 0)
    }
}

fn push_name(v: &mut Vec<NetbiosName>, n: NetbiosName) {
    if v.len() < MAX_NAMES && !v.contains(&n) {
        v.push(n);
    }
}

/// Parses an NBNS message.
pub fn parse_nbns(payload: &[u8]) -> Result<NbnsInfo, NetbiosError> {
    if payload.len() < NBNS_HEADER_LEN {
        return Err(NetbiosError::Incomplete {
            needed: Needed::Size(NBNS_HEADER_LEN - payload.len()),
        });
    }
    let msg = dns::parse_message(payload).map_err(|_| NetbiosError::Incomplete {
        needed: Needed::Unknown,
    })?;
    let mut info = NbnsInfo {
        transaction_id: msg.id,
        opcode: msg.opcode(),
        is_response: msg.is_response(),
        ..NbnsInfo::default()
    };
    for q in &msg.questions {
        if let Some(n) = decode_dotted(&q.name) {
            push_name(&mut info.names, n);
        }
    }
    for r in msg.records() {
        if let Some(n) = decode_dotted(&r.name) {
            push_name(&mut info.names, n);
        }
        // NB: (flags (2), address (4))*. RFC 1002 §4.2.1.3.
        let dns::RData::Other(data) = &r.data else {
            continue;
        };
        if r.rtype != rtype::NB {
            continue;
        }
        for entry in data.chunks_exact(6).take(MAX_NAMES) {
            if info.nb_flags.is_none() {
                info.nb_flags = Some(u16::from_be_bytes([entry[0], entry[1]]));
            }
            let a = Ipv4Addr::new(entry[2], entry[3], entry[4], entry[5]);
            if info.addresses.len() < MAX_NAMES && !info.addresses.contains(&a) {
                info.addresses.push(a);
            }
        }
    }
    Ok(info)
}

/// A browser announcement (MS-BRWS §2.2.1 HostAnnouncement and friends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserAnnouncement {
    /// 0x01 host, 0x0c domain, 0x0f local master announcement.
    pub command: u8,
    pub update_count: u8,
    /// Announcement interval, milliseconds.
    pub periodicity_ms: u32,
    pub server_name: String,
    pub os_major: u8,
    pub os_minor: u8,
    /// SV_TYPE_* bits (0x1 workstation, 0x2 server, 0x8 domain controller, 0x1000 NT,
    /// 0x8000 NT server, 0x40000 Windows 95+, ...).
    pub server_type: u32,
    pub browser_major: u8,
    pub browser_minor: u8,
    pub comment: String,
}

impl BrowserAnnouncement {
    /// `major.minor` (`6.1`).
    pub fn os_version(&self) -> String {
        format!("{}.{}", self.os_major, self.os_minor)
    }
}

/// What an NBDGM datagram says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct NbdgmInfo {
    /// 0x10 direct unique, 0x11 direct group, 0x12 broadcast, 0x13 error, 0x14-0x16 queries.
    pub msg_type: u8,
    pub source_ip: Ipv4Addr,
    pub source_port: u16,
    pub source_name: Option<NetbiosName>,
    pub destination_name: Option<NetbiosName>,
    /// Mailslot name of the SMB transaction (`\MAILSLOT\BROWSE`).
    pub mailslot: Option<String>,
    pub announcement: Option<BrowserAnnouncement>,
}

/// Parses an NBDGM datagram and, for a direct/broadcast datagram holding an SMB mailslot write
/// to `\MAILSLOT\BROWSE`, the browser announcement inside.
pub fn parse_nbdgm(payload: &[u8]) -> Result<NbdgmInfo, NetbiosError> {
    if payload.len() < 10 {
        return Err(NetbiosError::Incomplete {
            needed: Needed::Size(10 - payload.len()),
        });
    }
    let msg_type = payload[0];
    let mut info = NbdgmInfo {
        msg_type,
        source_ip: Ipv4Addr::new(payload[4], payload[5], payload[6], payload[7]),
        source_port: u16::from_be_bytes([payload[8], payload[9]]),
        source_name: None,
        destination_name: None,
        mailslot: None,
        announcement: None,
    };
    if !(0x10..=0x12).contains(&msg_type) {
        return Ok(info);
    }
    if payload.len() < NBDGM_HEADER_LEN {
        return Err(NetbiosError::Incomplete {
            needed: Needed::Size(NBDGM_HEADER_LEN - payload.len()),
        });
    }
    // Source and destination names are DNS-style encoded names (length 0x20 + 32 bytes +
    // scope labels + 0), uncompressed. RFC 1002 §4.4.2.
    let (src, after_src) =
        dns::read_name(payload, NBDGM_HEADER_LEN).map_err(|_| NetbiosError::Invalid {
            layer: "datagram",
            offset: NBDGM_HEADER_LEN,
            reason: "bad source name",
        })?;
    info.source_name = decode_dotted(&src);
    let (dst, user_data_at) =
        dns::read_name(payload, after_src).map_err(|_| NetbiosError::Invalid {
            layer: "datagram",
            offset: after_src,
            reason: "bad destination name",
        })?;
    info.destination_name = decode_dotted(&dst);
    let smb = &payload[user_data_at.min(payload.len())..];
    parse_mailslot(smb, &mut info);
    Ok(info)
}

/// SMB_COM_TRANSACTION (0x25) request carrying a mailslot write. MS-CIFS §2.2.4.33.1.
fn parse_mailslot(smb: &[u8], info: &mut NbdgmInfo) -> Option<()> {
    // SMB header: "\xffSMB" (4), command (1) ... 32 bytes in all.
    if smb.get(..4)? != b"\xffSMB" || *smb.get(4)? != 0x25 {
        return None;
    }
    let wc = usize::from(*smb.get(32)?);
    let words = smb.get(33..33 + 2 * wc)?;
    // Parameter words: TotalParameterCount(0) TotalDataCount(2) MaxParameterCount(4)
    // MaxDataCount(6) MaxSetupCount(8,1) Reserved1(9,1) Flags(10) Timeout(12,4) Reserved2(16)
    // ParameterCount(18) ParameterOffset(20) DataCount(22) DataOffset(24) SetupCount(26,1)
    // Reserved3(27,1) Setup words(28..).
    let data_count = usize::from(le16(words, 22)?);
    let data_offset = usize::from(le16(words, 24)?);
    let setup_count = usize::from(*words.get(26)?);
    let bytes_at = 33 + 2 * wc;
    let byte_count = usize::from(le16(smb, bytes_at)?);
    let bytes = smb.get(bytes_at + 2..(bytes_at + 2 + byte_count).min(smb.len()))?;
    let _ = setup_count;
    // Transaction name: the mailslot, NUL-terminated ASCII (no Unicode on mailslots).
    let nul = bytes.iter().position(|&b| b == 0)?;
    let name = String::from_utf8_lossy(&bytes[..nul.min(64)]).into_owned();
    let is_browse = name.eq_ignore_ascii_case("\\MAILSLOT\\BROWSE")
        || name.eq_ignore_ascii_case("\\MAILSLOT\\LANMAN");
    info.mailslot = Some(name);
    if !is_browse {
        return Some(());
    }
    let data = smb.get(data_offset..data_offset.checked_add(data_count)?)?;
    info.announcement = announcement(data);
    Some(())
}

/// MS-BRWS §2.2.1/§2.2.6/§2.2.7: Opcode (1), UpdateCount (1), Periodicity (4), ServerName (16),
/// OSVersionMajor (1), OSVersionMinor (1), ServerType (4), BrowserConfigVersionMajor (1),
/// BrowserConfigVersionMinor (1), Signature (2), Comment (NUL-terminated).
fn announcement(d: &[u8]) -> Option<BrowserAnnouncement> {
    let command = *d.first()?;
    if !matches!(command, 0x01 | 0x0c | 0x0f) {
        return None;
    }
    let name = d.get(6..22)?;
    let end = name.iter().position(|&b| b == 0).unwrap_or(16);
    let comment = d.get(32..).unwrap_or_default();
    let cend = comment
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(comment.len());
    Some(BrowserAnnouncement {
        command,
        update_count: *d.get(1)?,
        periodicity_ms: u32::from_le_bytes(d.get(2..6)?.try_into().ok()?),
        server_name: String::from_utf8_lossy(&name[..end]).trim_end().to_string(),
        os_major: *d.get(22)?,
        os_minor: *d.get(23)?,
        server_type: u32::from_le_bytes(d.get(24..28)?.try_into().ok()?),
        browser_major: *d.get(28)?,
        browser_minor: *d.get(29)?,
        comment: String::from_utf8_lossy(&comment[..cend.min(MAX_COMMENT_LEN)]).into_owned(),
    })
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

    fn nb(name: &str, suffix: u8) -> NetbiosName {
        NetbiosName {
            name: name.into(),
            suffix,
        }
    }

    #[test]
    fn name_query_and_positive_response() {
        // pcaps/corpus/legacy/ndpi_netbios.pcap frame 1 (10.0.4.131 -> broadcast:137).
        // tshark -T fields -e nbns.name -e nbns.flags.opcode -e nbns.flags.response =>
        // XSTREAM_HY<00> | 0 | 0
        let q = parse_nbns(&hex(
            "a7490110000100000000000020464946444645464345464542454e46504549464a4341434143414341434141410000200001",
        ))
        .unwrap();
        assert_eq!(q.names, vec![nb("XSTREAM_HY", 0)]);
        assert_eq!((q.opcode, q.is_response), (0, false));
        assert_eq!(q.opcode_name(), "query");

        // Same capture, frame 69 (10.0.4.24): tshark => GUNNAR<00> | 0 | 1 | nbns.addr 10.0.4.24
        // | nbns.nb_flags 0x0000
        let r = parse_nbns(&hex(
            "8486850000000001000000002045484646454f454f4542464343414341434143414341434143414341434141410000200001000493e0000600000a000418",
        ))
        .unwrap();
        assert_eq!(r.names, vec![nb("GUNNAR", 0)]);
        assert!(r.is_response);
        assert_eq!(r.addresses, vec![Ipv4Addr::new(10, 0, 4, 24)]);
        assert_eq!(r.nb_flags, Some(0));
        assert!(!r.is_group());
    }

    #[test]
    fn win98_registration() {
        // pcaps/corpus/legacy/ndpi_dos_win98_smb_netbeui.pcap frame 9 (192.168.239.129).
        // tshark -e nbns.name -e nbns.flags.opcode -e nbns.addr => MDJR98<03> | 5 |
        // 192.168.239.129
        let r = parse_nbns(&hex(
            "00042900000100000000000120454e4545454b4643444a444943414341434143414341434143414341434141440000200001c00c00200001000493e000060000c0a8ef81",
        ))
        .unwrap();
        assert_eq!(r.opcode_name(), "registration");
        assert_eq!(r.names, vec![nb("MDJR98", 3)]);
        assert_eq!(r.addresses, vec![Ipv4Addr::new(192, 168, 239, 129)]);
        assert_eq!(r.names[0].to_string(), "MDJR98<03>");
    }

    // ndpi_netbios.pcap frame 113 (10.0.5.93:138 -> broadcast:138). tshark -T fields
    // -e nbdgm.type -e nbdgm.source_name -e nbdgm.destination_name -e browser.server
    // -e browser.os_major -e browser.os_minor -e browser.server_type -e browser.period =>
    // 17 | BOWIE<20> | VIGILANT_GROUP<1d> | BOWIE | 6 | 1 | 0x00011007 | 720000
    const BOWIE: &str = "110ee9090a00055d008a00bb000020454345504648454a45464341434143414341434143414341434143414341434100204647454a4548454a454d4542454f46454650454846434550464646414341424e00ff534d422500000000000000000000000000000000000000000000000000000011000021000000000000000000e803000000000000000021005600030001000000020032005c4d41494c534c4f545c42524f57534500010080fc0a00424f57494500000000000000000000000601071001000f0155aa00";

    #[test]
    fn windows7_host_announcement() {
        let d = parse_nbdgm(&hex(BOWIE)).unwrap();
        assert_eq!(d.msg_type, 0x11);
        assert_eq!(d.source_ip, Ipv4Addr::new(10, 0, 5, 93));
        assert_eq!(d.source_name, Some(nb("BOWIE", 0x20)));
        assert_eq!(d.destination_name, Some(nb("VIGILANT_GROUP", 0x1d)));
        assert_eq!(d.mailslot.as_deref(), Some("\\MAILSLOT\\BROWSE"));
        let a = d.announcement.unwrap();
        assert_eq!(a.command, 1);
        assert_eq!(a.server_name, "BOWIE");
        assert_eq!(a.os_version(), "6.1");
        assert_eq!(a.server_type, 0x0001_1007);
        assert_eq!(a.periodicity_ms, 720_000);
        assert_eq!(a.comment, "");
    }

    #[test]
    fn win98_host_announcement() {
        // ndpi_dos_win98_smb_netbeui.pcap frame 42. tshark => 17 | MDJR98<00> | WORKGROUP<1d> |
        // MDJR98 | 4 | 0 | 0x00402003
        let d = parse_nbdgm(&hex("1102000cc0a8ef81008a00bb000020454e4545454b4643444a444943414341434143414341434143414341434141410020464845504643454c45484643455046464641434143414341434143414341424e00ff534d4225000000000000000000000000000000000000000000000000000000110000210000000000000000000000000000000000000021005600030001000100020032005c4d41494c534c4f545c42524f57534500010360ea00004d444a52393800000000000000000000040003204000150455aa00")).unwrap();
        assert_eq!(d.source_name, Some(nb("MDJR98", 0)));
        assert_eq!(d.destination_name, Some(nb("WORKGROUP", 0x1d)));
        let a = d.announcement.unwrap();
        assert_eq!(a.server_name, "MDJR98");
        assert_eq!((a.os_major, a.os_minor), (4, 0));
        assert_eq!(a.server_type, 0x0040_2003);
    }

    #[test]
    fn prefixes_and_bad_names() {
        let b = hex(BOWIE);
        for n in 0..b.len() {
            let _ = parse_nbdgm(&b[..n]);
            let _ = parse_nbns(&b[..n]);
        }
        assert_eq!(decode_name(b"ZZ"), None);
        assert_eq!(decode_name(&[b'Z'; 32]), None);
        // The wildcard name of ndpi_netbios.pcap frame 54 (tshark: *<00><00>...): '*' then NULs.
        let w = decode_name(b"CKAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        assert!(w.name.starts_with('*'));
        assert_eq!(w.suffix, 0);
    }
}
