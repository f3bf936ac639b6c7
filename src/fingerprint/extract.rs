//! From parser outputs to [`Evidence`]: one function per evidence source, so the pipeline
//! only has to call the parser, attribute the result to a device (the sender: a DHCP client
//! by its chaddr, an LLDP/CDP speaker by its source MAC, an HTTP client or server by the flow
//! side...) and append what these return.
//!
//! Pure functions; they decide *what* a message says about its sender, never *which* device
//! that is, nor whether a message speaks for its sender at all (a DHCPv4 server's reply
//! describes its client, not the server: the caller reads only requests, see
//! `fingerprint::tap`).

use medtap_parsers::{cdp, dhcp, http, lldp, mdns, netbios, oui, smb, ssdp, tcpfp};

use super::evidence::{Evidence, EvidenceKind as K};

fn push(out: &mut Vec<Evidence>, kind: K, value: Option<&str>) {
    if let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) {
        out.push(Evidence::new(kind, v));
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The OUI organisation of a device's MAC, or `mac_randomized` for a locally administered
/// one. Group addresses give nothing.
pub fn from_mac(mac: &[u8; 6]) -> Vec<Evidence> {
    match oui::mac_kind(mac) {
        oui::MacKind::Universal => oui::lookup(mac)
            .map(|e| vec![Evidence::new(K::Oui, e.organization)])
            .unwrap_or_default(),
        oui::MacKind::LocallyAdministered => vec![Evidence::new(K::MacRandomized, "randomized")],
        oui::MacKind::Group => Vec::new(),
    }
}

/// DHCPv4: host name, option 55, vendor class, client id, FQDN.
pub fn from_dhcpv4(i: &dhcp::Dhcpv4Info) -> Vec<Evidence> {
    let mut out = Vec::new();
    push(&mut out, K::DhcpHostname, i.hostname.as_deref());
    push(
        &mut out,
        K::DhcpParameterList,
        i.prl_fingerprint().as_deref(),
    );
    push(&mut out, K::DhcpVendorClass, i.vendor_class.as_deref());
    if let Some(id) = &i.client_id {
        out.push(Evidence::new(K::DhcpClientId, hex(id)));
    }
    push(
        &mut out,
        K::DhcpFqdn,
        i.fqdn.as_ref().map(|f| f.name.as_str()),
    );
    out
}

/// DHCPv6 (a client's message: see [`dhcpv6_is_client`]): DUID, vendor class
/// (`enterprise:data`), ORO, FQDN.
pub fn from_dhcpv6(i: &dhcp::Dhcpv6Info) -> Vec<Evidence> {
    let mut out = Vec::new();
    if let Some(duid) = i.client_duid.as_deref().filter(|d| !d.is_empty()) {
        out.push(Evidence::new(K::Dhcpv6Duid, hex(duid)));
    }
    if let Some(vc) = &i.vendor_class {
        out.push(Evidence::new(
            K::Dhcpv6VendorClass,
            format!("{}:{}", vc.enterprise, vc.data.join(",")),
        ));
    }
    push(&mut out, K::Dhcpv6Oro, i.oro_fingerprint().as_deref());
    push(
        &mut out,
        K::DhcpFqdn,
        i.fqdn.as_ref().map(|f| f.name.as_str()),
    );
    out
}

/// Whether a DHCPv6 message (the innermost, relays unwrapped) was sent by a client: Solicit,
/// Request, Confirm, Renew, Rebind, Release, Decline, Information-request. A server's
/// Advertise, Reply or Reconfigure echoes the client's DUID and FQDN: they describe the client,
/// not the server.
pub fn dhcpv6_is_client(i: &dhcp::Dhcpv6Info) -> bool {
    matches!(i.msg_type.0, 1 | 3 | 4 | 5 | 6 | 8 | 9 | 11)
}

/// A SYN or SYN+ACK signature, and its p0f match when there is one. The p0f evidence's
/// confidence: 100 exact, 70 generic, 50 fuzzy (generic and fuzzy: 40).
pub fn from_tcp(sig: &tcpfp::TcpSignature, p0f: Option<&tcpfp::P0fMatch<'_>>) -> Vec<Evidence> {
    let mut out = vec![Evidence::new(tcp_kind(sig), sig.raw_sig())];
    if let Some((k, v, conf)) = p0f.and_then(p0f_item) {
        out.push(Evidence::with_confidence(k, v, conf));
    }
    out
}

/// The kind of a signature's `raw_sig` evidence ([`from_tcp`]).
pub fn tcp_kind(sig: &tcpfp::TcpSignature) -> K {
    if sig.syn_ack {
        K::TcpSynAck
    } else {
        K::TcpSyn
    }
}

/// The p0f evidence of [`from_tcp`] (kind, value, confidence); none for an application match.
pub fn p0f_item(m: &tcpfp::P0fMatch<'_>) -> Option<(K, String, u8)> {
    if m.label.is_application() {
        return None;
    }
    let conf = match (m.label.generic, m.fuzzy) {
        (false, false) => 100,
        (true, false) => 70,
        (false, true) => 50,
        (true, true) => 40,
    };
    Some((
        K::TcpP0f,
        format!("{}:{}", m.label.name, m.label.flavor),
        conf,
    ))
}

/// An HTTP head: a request's User-Agent, a response's Server.
pub fn from_http(h: &http::HttpHead) -> Vec<Evidence> {
    let (request, value) = match h.start {
        http::StartLine::Request { .. } => (true, h.user_agent.as_deref()),
        http::StartLine::Response { .. } => (false, h.server.as_deref()),
    };
    http_software(request, value)
        .map(|(k, v)| vec![Evidence::new(k, v)])
        .unwrap_or_default()
}

/// What [`from_http`] makes evidence of, from [`http::sender_software`]: the kind and the
/// trimmed value, when there is one.
pub fn http_software(request: bool, value: Option<&str>) -> Option<(K, &str)> {
    let kind = if request {
        K::HttpUserAgent
    } else {
        K::HttpServer
    };
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| (kind, v))
}

/// SSDP: SERVER, USER-AGENT, and the device type of USN/NT.
pub fn from_ssdp(s: &ssdp::SsdpInfo) -> Vec<Evidence> {
    let mut out = Vec::new();
    push(&mut out, K::SsdpServer, s.server.as_deref());
    push(&mut out, K::SsdpUserAgent, s.user_agent.as_deref());
    if s.kind != ssdp::SsdpKind::MSearch {
        push(&mut out, K::SsdpUsn, s.usn.as_deref().or(s.nt.as_deref()));
    }
    out
}

/// mDNS responses: host names, services, the TXT model. Queries say nothing about the sender's
/// identity and give nothing.
pub fn from_mdns(m: &mdns::MdnsInfo) -> Vec<Evidence> {
    let mut out = Vec::new();
    if !m.is_response {
        return out;
    }
    for h in &m.hostnames {
        push(&mut out, K::MdnsHostname, Some(h));
    }
    for s in &m.services {
        push(&mut out, K::MdnsService, Some(s));
    }
    push(&mut out, K::MdnsModel, m.model());
    out
}

/// NBNS: the unique (non-group) names a host registers or announces with its own suffixes.
pub fn from_nbns(n: &netbios::NbnsInfo) -> Vec<Evidence> {
    let mut out = Vec::new();
    // Registrations, refreshes and positive answers carry the host's own names.
    let own = matches!(n.opcode, 5 | 8 | 9) || (n.is_response && n.opcode == 0);
    if own && !n.is_group() {
        // "*" (padded with NULs) is the wildcard name a node status request asks for and its
        // response repeats (RFC 1002 4.2.17-18), not the host's name.
        for name in n
            .names
            .iter()
            .filter(|x| x.is_host_suffix() && !x.name.starts_with('*'))
        {
            out.push(Evidence::new(K::NetbiosName, name.to_string()));
        }
    }
    out
}

/// NBDGM browser announcements: the server name and the OS version.
pub fn from_nbdgm(d: &netbios::NbdgmInfo) -> Vec<Evidence> {
    let mut out = Vec::new();
    if let Some(a) = &d.announcement {
        if a.command == 0x01 || a.command == 0x0f {
            out.push(Evidence::new(K::NetbiosOsVersion, a.os_version()));
            if let Some(n) = &d.source_name {
                out.push(Evidence::new(K::NetbiosName, n.to_string()));
            }
        }
    }
    out
}

/// LLDP: system name, description, enabled capabilities.
pub fn from_lldp(l: &lldp::LldpInfo) -> Vec<Evidence> {
    let mut out = Vec::new();
    push(&mut out, K::LldpSystemName, l.system_name.as_deref());
    push(
        &mut out,
        K::LldpSystemDescription,
        l.system_description.as_deref(),
    );
    if let Some(c) = l.capabilities {
        push(
            &mut out,
            K::LldpCapabilities,
            Some(&c.enabled_names().join(",")),
        );
    }
    out
}

/// CDP: device id, platform, software version, capabilities.
pub fn from_cdp(c: &cdp::CdpInfo) -> Vec<Evidence> {
    let mut out = Vec::new();
    push(&mut out, K::CdpDeviceId, c.device_id.as_deref());
    push(&mut out, K::CdpPlatform, c.platform.as_deref());
    push(
        &mut out,
        K::CdpSoftwareVersion,
        c.software_version.as_deref(),
    );
    push(
        &mut out,
        K::CdpCapabilities,
        Some(&c.capability_names().join(",")),
    );
    out
}

/// SMB1 session setup: the sender's NativeOS and NativeLanMan (a request speaks for the
/// client, a response for the server).
pub fn from_smb_session_setup(s: &smb::SessionSetup) -> Vec<Evidence> {
    let mut out = Vec::new();
    push(&mut out, K::SmbNativeOs, s.native_os.as_deref());
    push(&mut out, K::SmbNativeLanman, s.native_lanman.as_deref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::{identify, Category, Signatures};
    use crate::testing::hexb;

    #[test]
    fn mac_evidence() {
        let baxter = oui::parse_mac("58:42:e4:77:02:42").unwrap();
        assert_eq!(
            from_mac(&baxter),
            vec![Evidence::new(K::Oui, "Baxter International Inc")]
        );
        // zeek_mdns.pcap's sender is randomised.
        let r = oui::parse_mac("8a:3c:d6:e1:4d:c4").unwrap();
        assert_eq!(from_mac(&r)[0].kind, K::MacRandomized);
        assert!(from_mac(&[0xff; 6]).is_empty());
    }

    #[test]
    fn lldp_and_cdp_to_identification() {
        // Frames of zeek_lldp.pcap and zeek_cdp-v1.pcap (see the parsers' tests for the
        // tshark oracle).
        let l = lldp::parse_lldp(&hexb("020704 00222d81db10 04020731 06020078 0807506f7274202331 0a0d534d43475338502d536d617274 0c23534d43475338502d536d617274202d20534d43475338502d536d6172742076332e3230 0e0400040004 100c0501c0a8020a0200000001 00 0000")).unwrap();
        let mut e = from_lldp(&l);
        e.extend(from_mac(&[0x00, 0x22, 0x2d, 0x81, 0xdb, 0x10]));
        let id = identify(&e, &Signatures::shipped().unwrap());
        assert_eq!(id.category.value, Category::NetworkGear);
        assert_eq!(id.vendor.unwrap().value, "SMC Networks");
        let c = cdp::CdpInfo {
            version: 1,
            device_id: Some("R1".into()),
            platform: Some("cisco 1601".into()),
            capabilities: Some(1),
            ..Default::default()
        };
        let e = from_cdp(&c);
        assert!(e.contains(&Evidence::new(K::CdpCapabilities, "router")));
        let id = identify(&e, &Signatures::shipped().unwrap());
        assert_eq!(id.model.unwrap().value, "1601");
    }

    #[test]
    fn tcp_with_p0f() {
        // pcaps/dicom/echo.pcap frame 3 (p0f: Linux 2.2.x-3.x, generic).
        let sig = tcpfp::parse_syn(&hexb("4500003c513940004006d2ca0a4d01150a4d010aa4d00068d98c2c9c00000000a002faf00d930000020405b40402080aac0bd153000000000103030a")).unwrap();
        let db = tcpfp::parse_p0f_db(
            "[tcp:request]\nlabel = g:unix:Linux:2.2.x-3.x\nsig = *:64:0:*:*,*:mss,sok,ts,nop,ws:df,id+:0\n",
        )
        .unwrap();
        let m = db.match_tcp(&sig, None);
        let e = from_tcp(&sig, m.as_ref());
        assert_eq!(e[0].kind, K::TcpSyn);
        assert_eq!(
            e[1],
            Evidence::with_confidence(K::TcpP0f, "Linux:2.2.x-3.x", 70)
        );
    }

    #[test]
    fn dhcp_http_ssdp_netbios_mdns() {
        let d = dhcp::Dhcpv4Info {
            op: 1,
            xid: 0,
            chaddr: None,
            ciaddr: std::net::Ipv4Addr::UNSPECIFIED,
            yiaddr: std::net::Ipv4Addr::UNSPECIFIED,
            giaddr: std::net::Ipv4Addr::UNSPECIFIED,
            message_type: Some(dhcp::MessageType::DISCOVER),
            hostname: Some("test0000".into()),
            parameter_request_list: vec![1, 3, 6, 42],
            vendor_class: None,
            client_id: Some(vec![1, 0, 0x0b, 0x82, 1, 0xfc, 0x42]),
            fqdn: None,
            requested_ip: None,
            server_id: None,
            max_message_size: None,
            option_codes: vec![],
            options_truncated: false,
        };
        assert_eq!(
            from_dhcpv4(&d),
            vec![
                Evidence::new(K::DhcpHostname, "test0000"),
                Evidence::new(K::DhcpParameterList, "1,3,6,42"),
                Evidence::new(K::DhcpClientId, "01000b8201fc42"),
            ]
        );
        let h = http::parse_head(b"GET / HTTP/1.1\r\nUser-Agent: curl/8.5.0\r\n\r\n").unwrap();
        assert_eq!(
            from_http(&h),
            vec![Evidence::new(K::HttpUserAgent, "curl/8.5.0")]
        );
        let s = ssdp::parse_ssdp(b"M-SEARCH * HTTP/1.1\r\nUSER-AGENT: Google Chrome/99.0.4844.74 Mac OS X\r\nST: ssdp:all\r\n\r\n").unwrap();
        let e = from_ssdp(&s);
        assert_eq!(e.len(), 1);
        let id = identify(&e, &Signatures::shipped().unwrap());
        assert_eq!(id.os.unwrap().value.name, "macOS");
        // ndpi_netbios.pcap frame 113: BOWIE announces 6.1.
        let nb = netbios::parse_nbdgm(&hexb("110ee9090a00055d008a00bb000020454345504648454a45464341434143414341434143414341434143414341434100204647454a4548454a454d4542454f46454650454846434550464646414341424e00ff534d422500000000000000000000000000000000000000000000000000000011000021000000000000000000e803000000000000000021005600030001000000020032005c4d41494c534c4f545c42524f57534500010080fc0a00424f57494500000000000000000000000601071001000f0155aa00")).unwrap();
        assert_eq!(
            from_nbdgm(&nb),
            vec![
                Evidence::new(K::NetbiosOsVersion, "6.1"),
                Evidence::new(K::NetbiosName, "BOWIE<20>")
            ]
        );
        let q = mdns::MdnsInfo {
            is_response: false,
            queried_services: vec!["_ipp._tcp.local".into()],
            ..Default::default()
        };
        assert!(from_mdns(&q).is_empty());
    }
}
