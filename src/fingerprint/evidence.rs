//! Evidence: one observation about a device, as the protocol modules see it.
//!
//! An [`Evidence`] is a kind (what was observed: an OUI organisation, a DHCP option 55 list, a
//! DICOM Manufacturer...), its value as text, the protocol it came from, and how sure the
//! observation itself is (`confidence`, 0..=100: 100 for a value read verbatim from a packet,
//! lower for a fuzzy p0f match or a guess). How much a kind *weighs* in the identification is
//! not decided here but by `signatures/fingerprint/resolution.toml`.
//!
//! The stable snake_case names of [`EvidenceKind`] are what signature rules name in `kind = ...`
//! and what the inventory and its API print. Adding a kind is adding a variant here, its name in
//! [`EvidenceKind::ALL`], and a weight in `resolution.toml` (the loader rejects a kind without one).
//!
//! Values are kept as given, trimmed, and cut at [`MAX_VALUE_LEN`] bytes; they never carry PHI:
//! the DICOM and HL7 kinds are device attributes (AE titles, Manufacturer, Model, Station Name,
//! Serial Number, sending application, device identifiers), not patient fields.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Bytes kept of an evidence value.
pub const MAX_VALUE_LEN: usize = 256;

macro_rules! kinds {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $proto:ident; )*) => {
        /// What was observed. The string form (`as_str`) is stable.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum EvidenceKind {
            $( $(#[$doc])* $variant, )*
        }

        impl EvidenceKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [EvidenceKind] = &[ $( EvidenceKind::$variant, )* ];

            /// Stable snake_case name.
            pub fn as_str(self) -> &'static str {
                match self { $( EvidenceKind::$variant => $name, )* }
            }

            /// The protocol this kind is read from.
            pub fn source(self) -> Source {
                match self { $( EvidenceKind::$variant => Source::$proto, )* }
            }
        }
    };
}

kinds! {
    /// Organisation of the MAC's IEEE block (`parsers::oui`).
    Oui = "oui", Ethernet;
    /// The MAC is locally administered (value `randomized`).
    MacRandomized = "mac_randomized", Ethernet;
    /// DHCPv4 option 12.
    DhcpHostname = "dhcp_hostname", Dhcp;
    /// DHCPv4 option 55 as `1,3,6,15` (the DHCP fingerprint).
    DhcpParameterList = "dhcp_parameter_list", Dhcp;
    /// DHCPv4 option 60.
    DhcpVendorClass = "dhcp_vendor_class", Dhcp;
    /// DHCPv4 option 61, hex.
    DhcpClientId = "dhcp_client_id", Dhcp;
    /// DHCPv4 option 81 / DHCPv6 option 39.
    DhcpFqdn = "dhcp_fqdn", Dhcp;
    /// DHCPv6 vendor class (16) as `enterprise:data`.
    Dhcpv6VendorClass = "dhcpv6_vendor_class", Dhcpv6;
    /// DHCPv6 option request option as `23,24`.
    Dhcpv6Oro = "dhcpv6_oro", Dhcpv6;
    /// DHCPv6 client identifier (option 1): the DUID, hex (a DUID-EN names the vendor's
    /// enterprise number, a DUID-LL/LLT the MAC the client chose it from).
    Dhcpv6Duid = "dhcpv6_duid", Dhcpv6;
    /// p0f-style raw signature of a SYN (`TcpSignature::raw_sig`).
    TcpSyn = "tcp_syn", Tcp;
    /// p0f-style raw signature of a SYN+ACK.
    TcpSynAck = "tcp_syn_ack", Tcp;
    /// p0f database match, as `name:flavor` (`Linux:3.11 and newer`, `Windows:XP`).
    TcpP0f = "tcp_p0f", Tcp;
    /// TLS ClientHello JA3 hash.
    TlsJa3 = "tls_ja3", Tls;
    /// TLS ClientHello JA4.
    TlsJa4 = "tls_ja4", Tls;
    /// HTTP request User-Agent.
    HttpUserAgent = "http_user_agent", Http;
    /// HTTP response Server.
    HttpServer = "http_server", Http;
    /// SSDP SERVER header.
    SsdpServer = "ssdp_server", Ssdp;
    /// SSDP USER-AGENT header.
    SsdpUserAgent = "ssdp_user_agent", Ssdp;
    /// SSDP USN / NT (device type URN).
    SsdpUsn = "ssdp_usn", Ssdp;
    /// mDNS host name (`name.local`).
    MdnsHostname = "mdns_hostname", Mdns;
    /// mDNS service type announced (`_ipp._tcp.local`).
    MdnsService = "mdns_service", Mdns;
    /// mDNS TXT model (`md=`, `model=`, `ty=`, `usb_MDL=`).
    MdnsModel = "mdns_model", Mdns;
    /// NetBIOS name with suffix (`MDJR98<20>`).
    NetbiosName = "netbios_name", Netbios;
    /// Browser announcement OS version (`6.1`).
    NetbiosOsVersion = "netbios_os_version", Netbios;
    /// LLDP system name.
    LldpSystemName = "lldp_system_name", Lldp;
    /// LLDP system description.
    LldpSystemDescription = "lldp_system_description", Lldp;
    /// LLDP enabled capabilities (`bridge,router`).
    LldpCapabilities = "lldp_capabilities", Lldp;
    /// CDP device id.
    CdpDeviceId = "cdp_device_id", Cdp;
    /// CDP platform (`cisco WS-C2960-24TT-L`).
    CdpPlatform = "cdp_platform", Cdp;
    /// CDP software version.
    CdpSoftwareVersion = "cdp_software_version", Cdp;
    /// CDP capabilities (`router,switch`).
    CdpCapabilities = "cdp_capabilities", Cdp;
    /// SNMP sysDescr (1.3.6.1.2.1.1.1.0) seen in a response.
    SnmpSysDescr = "snmp_sys_descr", Snmp;
    /// SNMP sysObjectID (1.3.6.1.2.1.1.2.0) seen in a response.
    SnmpSysObjectId = "snmp_sys_object_id", Snmp;
    /// SMB session setup NativeOS.
    SmbNativeOs = "smb_native_os", Smb;
    /// SMB session setup NativeLanMan.
    SmbNativeLanman = "smb_native_lanman", Smb;
    /// DICOM AE title the device used as requestor (SCU).
    DicomCallingAe = "dicom_calling_ae", Dicom;
    /// DICOM AE title the device answered to as acceptor (SCP).
    DicomCalledAe = "dicom_called_ae", Dicom;
    /// DICOM role the device plays: `scu` or `scp` (acceptor of C-STORE and queries).
    DicomRole = "dicom_role", Dicom;
    /// Implementation Class UID (A-ASSOCIATE user information).
    DicomImplementationClassUid = "dicom_implementation_class_uid", Dicom;
    /// Implementation Version Name.
    DicomImplementationVersionName = "dicom_implementation_version_name", Dicom;
    /// (0008,0060) Modality of a data set the device sent.
    DicomModality = "dicom_modality", Dicom;
    /// (0008,0070) Manufacturer.
    DicomManufacturer = "dicom_manufacturer", Dicom;
    /// (0008,1090) Manufacturer's Model Name.
    DicomModel = "dicom_model", Dicom;
    /// (0018,1020) Software Versions.
    DicomSoftwareVersions = "dicom_software_versions", Dicom;
    /// (0008,1010) Station Name.
    DicomStationName = "dicom_station_name", Dicom;
    /// (0018,1000) Device Serial Number.
    DicomSerialNumber = "dicom_serial_number", Dicom;
    /// HL7 MSH-3 of messages the device sent.
    Hl7SendingApplication = "hl7_sending_application", Hl7;
    /// HL7 MSH-4 of messages the device sent.
    Hl7SendingFacility = "hl7_sending_facility", Hl7;
    /// HL7 OBX-18 equipment instance identifier (`SIGMA SPECTRUM^BAXTER^...^EUI-64`).
    Hl7ObxDevice = "hl7_obx_device", Hl7;
    /// HL7 PRT-10 / PRT-16 device identifier.
    Hl7PrtDevice = "hl7_prt_device", Hl7;
}

impl EvidenceKind {
    /// The kind named `name` (its stable snake_case form).
    pub fn from_name(name: &str) -> Option<EvidenceKind> {
        Self::ALL.iter().copied().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for EvidenceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The protocol an observation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Ethernet,
    Dhcp,
    Dhcpv6,
    Tcp,
    Tls,
    Http,
    Ssdp,
    Mdns,
    Netbios,
    Lldp,
    Cdp,
    Snmp,
    Smb,
    Dicom,
    Hl7,
}

impl Source {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Ethernet => "ethernet",
            Source::Dhcp => "dhcp",
            Source::Dhcpv6 => "dhcpv6",
            Source::Tcp => "tcp",
            Source::Tls => "tls",
            Source::Http => "http",
            Source::Ssdp => "ssdp",
            Source::Mdns => "mdns",
            Source::Netbios => "netbios",
            Source::Lldp => "lldp",
            Source::Cdp => "cdp",
            Source::Snmp => "snmp",
            Source::Smb => "smb",
            Source::Dicom => "dicom",
            Source::Hl7 => "hl7",
        }
    }
}

/// One observation about a device.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Evidence {
    pub kind: EvidenceKind,
    /// The observed value, trimmed, at most [`MAX_VALUE_LEN`] bytes.
    pub value: String,
    /// Protocol it came from (normally `kind.source()`).
    pub source: Source,
    /// How sure the observation is, 0..=100.
    pub confidence: u8,
}

impl Evidence {
    /// An observation read verbatim from a packet (confidence 100).
    pub fn new(kind: EvidenceKind, value: impl AsRef<str>) -> Evidence {
        Evidence::with_confidence(kind, value, 100)
    }

    /// An observation with its own confidence (clamped to 100).
    pub fn with_confidence(kind: EvidenceKind, value: impl AsRef<str>, confidence: u8) -> Evidence {
        Evidence {
            kind,
            value: clean(value.as_ref()),
            source: kind.source(),
            confidence: confidence.min(100),
        }
    }

    /// A reference to this evidence, for `decided_by` lists.
    pub fn to_ref(&self, rule: &str) -> EvidenceRef {
        EvidenceRef {
            kind: self.kind,
            value: self.value.as_str().into(),
            rule: rule.into(),
        }
    }
}

/// Which evidence, through which signature rule, decided an attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct EvidenceRef {
    pub kind: EvidenceKind,
    /// Shared by the copies of the reference in one identification (each attribute's
    /// `decided_by` and their union).
    pub value: std::sync::Arc<str>,
    /// The `id` of the signature rule that matched (shared with the rule).
    pub rule: std::sync::Arc<str>,
}

/// Trim, line breaks to spaces, drop other control characters, cut at [`MAX_VALUE_LEN`]
/// bytes on a char boundary.
fn clean(v: &str) -> String {
    cleaned(v).into_owned()
}

/// The value [`Evidence::new`] keeps of `v`, borrowed when that is a slice of `v`: trimmed;
/// each run of white-space control characters (line breaks: CR, LF, and tab, VT, FF, NEL)
/// with the spaces around it becomes one space, so the lines of a multi-line value (a CDP
/// software version, an LLDP system description: tshark shows them as lines) stay apart
/// words on one line; other control characters are dropped; cut at [`MAX_VALUE_LEN`] bytes on
/// a char boundary.
pub fn cleaned(v: &str) -> std::borrow::Cow<'_, str> {
    let t = trimmed(v);
    if t.len() <= MAX_VALUE_LEN && !has_control(t) {
        return std::borrow::Cow::Borrowed(t);
    }
    let mut s = String::with_capacity(t.len());
    // A line break was read and its space is not written yet.
    let mut pending = false;
    for c in t.chars() {
        if c.is_control() {
            pending |= c.is_whitespace();
            continue;
        }
        if pending {
            if c == ' ' {
                continue;
            }
            // `t` is trimmed: a line break is never first or last, `s` is not empty here.
            if !s.ends_with(' ') {
                s.push(' ');
            }
            pending = false;
        }
        s.push(c);
    }
    if s.len() > MAX_VALUE_LEN {
        let mut cut = MAX_VALUE_LEN;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    std::borrow::Cow::Owned(s)
}

/// `v.trim()`, byte by byte: the ASCII characters `char::is_whitespace` accepts (`\t` to `\r`
/// and space) are stripped from both ends, and `str::trim` runs only when a non-ASCII
/// character is left at either end (it may be Unicode white space).
fn trimmed(v: &str) -> &str {
    let ws = |c: &u8| matches!(c, b'\t'..=b'\r' | b' ');
    let b = v.as_bytes();
    let start = b.iter().position(|c| !ws(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !ws(c)).map_or(start, |e| e + 1);
    // Both ends are next to ASCII bytes (or the ends of `v`): char boundaries.
    let Some(t) = v.get(start..end) else {
        return v.trim();
    };
    match (t.as_bytes().first(), t.as_bytes().last()) {
        (Some(f), Some(l)) if !f.is_ascii() || !l.is_ascii() => t.trim(),
        _ => t,
    }
}

/// `s.chars().any(char::is_control)` on the UTF-8 bytes: a control character (U+0000-U+001F,
/// U+007F-U+009F) is a byte below 0x20, 0x7F, or 0xC2 followed by 0x80-0x9F. Eight bytes at a
/// time first: most values have none of these bytes.
fn has_control(s: &str) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let suspect_word = |w: &[u8; 8]| {
        let w = u64::from_le_bytes(*w);
        let below = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
        (below | zero(w ^ (ONES * 0x7f)) | zero(w ^ (ONES * 0xc2))) != 0
    };
    let b = s.as_bytes();
    // The last word overlaps the one before it; under 8 bytes, byte by byte.
    let suspect = match b.last_chunk::<8>() {
        Some(last) => {
            let (words, _) = b.as_chunks::<8>();
            words
                .iter()
                .fold(suspect_word(last), |a, w| a | suspect_word(w))
        }
        None => b.iter().any(|&c| c < 0x20 || c == 0x7f || c == 0xc2),
    };
    suspect
        && b.iter().enumerate().any(|(i, &c)| {
            c < 0x20 || c == 0x7f || (c == 0xc2 && b.get(i + 1).is_some_and(|&n| n < 0xa0))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn cleaned_as_trim_and_chars_would_make_it(
            s in "([\\x00-\\x20\\x7f\\u{80}-\\u{a0}\\u{85}\\u{2000}\\u{3000}]|\\PC){0,40}"
        ) {
            let t = s.trim();
            proptest::prop_assert_eq!(trimmed(&s), t);
            proptest::prop_assert_eq!(has_control(t), t.chars().any(char::is_control));
            proptest::prop_assert_eq!(has_control(&s), s.chars().any(char::is_control));
        }
    }

    #[test]
    fn trim_and_control_bytes_at_every_position() {
        for c in (0u32..0x3100).filter_map(char::from_u32) {
            for s in [
                format!("{c}"),
                format!("{c}abcdefgh{c}"),
                format!("a{c}b"),
                format!(" \u{b}{c}xyz0123456789{c}\t "),
            ] {
                assert_eq!(trimmed(&s), s.trim(), "{s:?}");
                assert_eq!(has_control(&s), s.chars().any(char::is_control), "{s:?}");
            }
        }
    }

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for k in EvidenceKind::ALL {
            assert!(seen.insert(k.as_str()), "{k:?}");
            assert_eq!(EvidenceKind::from_name(k.as_str()), Some(*k));
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::Value::String(k.as_str().to_string())
            );
        }
        assert_eq!(EvidenceKind::from_name("nope"), None);
        assert_eq!(EvidenceKind::DicomModality.source(), Source::Dicom);
        assert_eq!(EvidenceKind::Oui.source().as_str(), "ethernet");
    }

    #[test]
    fn values_are_cleaned() {
        let e = Evidence::with_confidence(EvidenceKind::DicomStationName, "  CT\u{0}01 \r\n", 250);
        assert_eq!(e.value, "CT01");
        assert_eq!(e.confidence, 100);
        // zeek_cdp-v1.pcap's CDP software version (tshark cdp.software_version: four lines,
        // the first with a trailing space): one line, words apart.
        let e = Evidence::new(
            EvidenceKind::CdpSoftwareVersion,
            "Cisco Internetwork Operating System Software \nIOS (tm) 1600 Software \
             (C1600-NY-L), Version 11.2(12)P, RELEASE SOFTWARE (fc1)\nCopyright (c) 1986-1998 \
             by cisco Systems, Inc.\nCompiled Tue 03-Mar-98 06:33 by dschwart",
        );
        assert_eq!(
            e.value,
            "Cisco Internetwork Operating System Software IOS (tm) 1600 Software (C1600-NY-L), \
             Version 11.2(12)P, RELEASE SOFTWARE (fc1) Copyright (c) 1986-1998 by cisco \
             Systems, Inc. Compiled Tue 03-Mar-98 06:33 by dschwart"
        );
        for (v, want) in [
            ("a\r\nb", "a b"),
            ("a \r\n\r\n b", "a b"),
            ("a\tb\u{b}c\u{c}d\u{85}e", "a b c d e"),
            ("a\u{0}b\u{1b}[31mc\u{7f}", "ab[31mc"),
            ("a\u{0}\nb", "a b"),
            ("\n a \n", "a"),
        ] {
            assert_eq!(cleaned(v), want, "{v:?}");
        }
        let long = "é".repeat(300);
        let e = Evidence::new(EvidenceKind::HttpUserAgent, &long);
        assert!(e.value.len() <= MAX_VALUE_LEN);
        assert_eq!(&*e.to_ref("r1").rule, "r1");
    }
}
