//! Protocol detection: content first, port second.
//!
//! Each probe looks at the first bytes of one direction and answers [`Probe::Match`],
//! [`Probe::NeedMore`] or [`Probe::No`]. Ports are only hints: they order the probes and
//! label flows whose content says nothing (never override a content match). DICOM over TLS is
//! TLS: the TLS probe runs first whatever the port.

use super::{AppParser, AppProto, Direction};

/// What a probe concluded from the bytes it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Match(AppProto),
    NeedMore,
    No,
}

/// Identify a TCP stream from the first bytes of direction `dir`.
/// `server_port` is a hint only.
pub fn identify_tcp(dir: Direction, data: &[u8], server_port: u16) -> Probe {
    let mut need_more = false;
    for probe in TCP_PROBES {
        match probe(dir, data) {
            Probe::Match(p) => return Probe::Match(p),
            Probe::NeedMore => need_more = true,
            Probe::No => {}
        }
    }
    for probe in TCP_PORT_PROBES {
        match probe(dir, data, server_port) {
            Probe::Match(p) => return Probe::Match(p),
            Probe::NeedMore => need_more = true,
            Probe::No => {}
        }
    }
    if need_more {
        Probe::NeedMore
    } else {
        // Port second: the content said nothing, the port names a cleartext service whose
        // first bytes are free text (a telnet server that does not negotiate, an FTP greeting
        // that does not say FTP).
        match server_port {
            21 => Probe::Match(AppProto::Ftp),
            23 => Probe::Match(AppProto::Telnet),
            _ => Probe::No,
        }
    }
}

type PortProbeFn = fn(Direction, &[u8], u16) -> Probe;

/// Content probes that take the server port as a hint, after [`TCP_PROBES`].
const TCP_PORT_PROBES: &[PortProbeFn] =
    &[probe_ftp, probe_telnet, probe_rfb, probe_rdp, probe_rcmd];

/// FTP: the server greets first with `220`; its text names FTP (vsFTPd, ProFTPD, "Microsoft
/// FTP Service", FileZilla ...), or the port is 21. SMTP greets with 220 too, hence the text.
fn probe_ftp(dir: Direction, data: &[u8], port: u16) -> Probe {
    if dir != Direction::ToClient {
        return Probe::No;
    }
    match medtap_parsers::ftp::looks_like_greeting(data) {
        None => Probe::NeedMore,
        Some(false) => Probe::No,
        Some(true) => {
            let line_end = data.iter().position(|&c| c == b'\n');
            let line = &data[..line_end.unwrap_or(data.len())];
            let says_ftp = line.windows(3).any(|w| w.eq_ignore_ascii_case(b"ftp"));
            if says_ftp || port == 21 {
                Probe::Match(AppProto::Ftp)
            } else if line_end.is_none() && data.len() < 128 {
                Probe::NeedMore
            } else {
                Probe::No
            }
        }
    }
}

/// Telnet: a stream that opens with option negotiation (IAC WILL/WONT/DO/DONT).
fn probe_telnet(_dir: Direction, data: &[u8], _port: u16) -> Probe {
    match medtap_parsers::telnet::looks_like_telnet(data) {
        Some(true) => Probe::Match(AppProto::Telnet),
        Some(false) => Probe::No,
        None => Probe::NeedMore,
    }
}

/// VNC: both sides open with `RFB xxx.yyy\n`.
fn probe_rfb(_dir: Direction, data: &[u8], _port: u16) -> Probe {
    match medtap_parsers::rfb::parse_version(data) {
        Ok(_) => Probe::Match(AppProto::Rfb),
        Err(Some(_)) => Probe::NeedMore,
        Err(None) => Probe::No,
    }
}

/// RDP: a TPKT carrying an X.224 Connection Request with an RDP cookie or negotiation request
/// (a bare CR is also ISO-TSAP, e.g. S7comm on 102), or any CR on 3389.
fn probe_rdp(dir: Direction, data: &[u8], port: u16) -> Probe {
    use medtap_parsers::rdp;
    if dir != Direction::ToServer {
        return Probe::No;
    }
    match rdp::parse_x224(data) {
        Ok((_, x)) if x.code == rdp::TpduCode::CONNECTION_REQUEST => {
            if x.cookie || x.negotiation.is_some() || port == 3389 {
                Probe::Match(AppProto::Rdp)
            } else {
                Probe::No
            }
        }
        Ok(_) => Probe::No,
        Err(rdp::RdpError::Incomplete(_)) => Probe::NeedMore,
        Err(rdp::RdpError::NotRdp) => Probe::No,
    }
}

/// rexec (512), rlogin (513), rsh (514): the port and the shape of the client's preamble.
fn probe_rcmd(dir: Direction, data: &[u8], port: u16) -> Probe {
    use medtap_parsers::rcmd::{parse_preamble, Preamble};
    let proto = match port {
        512 => AppProto::Rexec,
        513 => AppProto::Rlogin,
        514 => AppProto::Rsh,
        _ => return Probe::No,
    };
    if dir != Direction::ToServer {
        return Probe::No;
    }
    match parse_preamble(data, super::rcmd::shape_of(proto)) {
        Preamble::Fits { fields, .. } if fields >= 2 => Probe::Match(proto),
        Preamble::Fits { .. } => Probe::NeedMore,
        Preamble::No => Probe::No,
    }
}

type ProbeFn = fn(Direction, &[u8]) -> Probe;

/// Content probes, most specific first.
const TCP_PROBES: &[ProbeFn] = &[
    probe_tls,
    super::dicom::probe,
    super::hl7::probe,
    probe_http,
    probe_smb,
];

fn probe_tls(_dir: Direction, data: &[u8]) -> Probe {
    match super::tls::looks_like_tls(data) {
        Some(true) => Probe::Match(AppProto::Tls),
        Some(false) => Probe::No,
        None => Probe::NeedMore,
    }
}

const HTTP_METHODS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"HTTP/1.",
];

fn probe_http(_dir: Direction, data: &[u8]) -> Probe {
    let mut need_more = false;
    for m in HTTP_METHODS {
        let n = data.len().min(m.len());
        if data[..n] == m[..n] {
            if n == m.len() {
                return Probe::Match(AppProto::Http);
            }
            need_more = true;
        }
    }
    if need_more {
        Probe::NeedMore
    } else {
        Probe::No
    }
}

/// NetBIOS session message (type 0) carrying an SMB1 (0xFF 'SMB') or SMB2/3 (0xFE 'SMB') header,
/// or a NetBIOS session request (0x81, TCP 139) with its two 34-byte encoded names.
fn probe_smb(_dir: Direction, data: &[u8]) -> Probe {
    if data.first() == Some(&0x81) {
        return match data.get(..6) {
            None => Probe::NeedMore,
            // Length 68 (two names of 32 encoded bytes plus length and terminator each).
            Some([0x81, 0, 0, 68, 0x20, c]) if (b'A'..=b'P').contains(c) => {
                Probe::Match(AppProto::Smb)
            }
            Some(_) => Probe::No,
        };
    }
    if data.len() < 8 {
        return if data.first().is_none_or(|&b| b == 0) {
            Probe::NeedMore
        } else {
            Probe::No
        };
    }
    if data[0] == 0 && matches!(&data[4..8], [0xff | 0xfe, b'S', b'M', b'B']) {
        Probe::Match(AppProto::Smb)
    } else {
        Probe::No
    }
}

/// Identify a UDP flow from one datagram.
pub fn identify_udp(data: &[u8], src_port: u16, dst_port: u16) -> Option<AppProto> {
    // BOOTP/DHCP: magic cookie 99.130.83.99 after the 236-byte fixed part (RFC 2131 3).
    if data.len() >= 240 && data[236..240] == [99, 130, 83, 99] {
        return Some(AppProto::Dhcp);
    }
    // SNMP on any port: a BER message that decodes with a known version.
    if data.first() == Some(&0x30) {
        if let Ok(m) = medtap_parsers::snmp::parse_message(data) {
            if matches!(m.version.0, 0..=3) {
                return Some(AppProto::Snmp);
            }
        }
    }
    // TFTP: a read or write request with a printable name and a known mode.
    if let Ok(p) = medtap_parsers::tftp::parse_packet(data) {
        use medtap_parsers::tftp::Opcode;
        if p.opcode == Opcode::RRQ || p.opcode == Opcode::WRQ {
            return Some(AppProto::Tftp);
        }
    }
    // NetBIOS name and datagram services: port first here (NBNS is DNS-shaped), content to
    // confirm.
    let port = |p: u16| src_port == p || dst_port == p;
    if port(137) && medtap_parsers::netbios::parse_nbns(data).is_ok() {
        return Some(AppProto::Netbios);
    }
    if port(138) && medtap_parsers::netbios::parse_nbdgm(data).is_ok() {
        return Some(AppProto::Netbios);
    }
    None
}

/// The streaming parser for a protocol, if medtap has one.
pub fn parser_for(proto: AppProto, caps: &crate::flow::AppCaps) -> Option<Box<dyn AppParser>> {
    match proto {
        AppProto::Tls => Some(Box::new(super::tls::TlsState::new())),
        AppProto::Dicom => Some(Box::new(super::dicom::DicomState::with_pdu_cap(
            caps.dicom_pdu_kept,
        ))),
        AppProto::Hl7 => Some(Box::new(super::hl7::Hl7State::with_cap(
            caps.hl7_message_bytes,
        ))),
        AppProto::Smb => Some(Box::new(super::smb::SmbState::new())),
        AppProto::Ftp => Some(Box::new(super::ftp::FtpState::new())),
        AppProto::Telnet => Some(Box::new(super::telnet::TelnetState::new())),
        AppProto::Snmp => Some(Box::new(super::snmp::SnmpState::new())),
        AppProto::Tftp => Some(Box::new(super::tftp::TftpState::new())),
        AppProto::Rfb => Some(Box::new(super::rfb::RfbState::new())),
        AppProto::Rdp => Some(Box::new(super::rdp::RdpState::new())),
        AppProto::Http => Some(Box::new(super::http::HttpState::new())),
        AppProto::Netbios => Some(Box::new(super::netbios::NetbiosState::new())),
        AppProto::Rlogin | AppProto::Rsh | AppProto::Rexec => {
            Some(Box::new(super::rcmd::RcmdState::new(proto)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_needs_whole_method() {
        assert_eq!(probe_http(Direction::ToServer, b"GE"), Probe::NeedMore);
        assert_eq!(
            probe_http(Direction::ToServer, b"GET /"),
            Probe::Match(AppProto::Http)
        );
        assert_eq!(probe_http(Direction::ToServer, b"\x16\x03"), Probe::No);
    }

    #[test]
    fn smb_over_netbios() {
        assert_eq!(
            probe_smb(Direction::ToServer, b"\0\0\0\x2f\xffSMBr"),
            Probe::Match(AppProto::Smb)
        );
        assert_eq!(probe_smb(Direction::ToServer, b"\0\0"), Probe::NeedMore);
        assert_eq!(probe_smb(Direction::ToServer, b"USER x"), Probe::No);
    }

    /// SNMP v1, v2c, v2u and v3 on any port (tshark's snmp.version 0, 1, 2; snmp.msgVersion 3);
    /// other version numbers are not SNMP.
    #[test]
    fn snmp_versions() {
        // arkime_snmpv3_synthetic.pcap frame 9 (v2u get-request), and the same as v2c, as
        // version 4 and 3 (the latter is not a v3 message: no msgGlobalData).
        let mut m = crate::testing::hexb("3018020102 04067075626c6963 a00b020101020100020100 3000");
        for (v, want) in [
            (2, Some(AppProto::Snmp)),
            (1, Some(AppProto::Snmp)),
            (4, None),
            (3, None),
        ] {
            m[4] = v;
            assert_eq!(identify_udp(&m, 40001, 9999), want, "version {v}");
        }
    }
}
