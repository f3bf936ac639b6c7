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
    let _ = server_port;
    let mut need_more = false;
    for probe in TCP_PROBES {
        match probe(dir, data) {
            Probe::Match(p) => return Probe::Match(p),
            Probe::NeedMore => need_more = true,
            Probe::No => {}
        }
    }
    if need_more {
        Probe::NeedMore
    } else {
        Probe::No
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

/// NetBIOS session message (type 0) carrying an SMB1 (0xFF 'SMB') or SMB2/3 (0xFE 'SMB') header.
fn probe_smb(_dir: Direction, data: &[u8]) -> Probe {
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
    let _ = (src_port, dst_port);
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
        AppProto::Http => Some(Box::new(super::http::HttpState::new())),
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
}
