//! SSDP / UPnP discovery evidence (UPnP Device Architecture 2.0 §1): SERVER, USER-AGENT, USN,
//! NT/NTS, ST, LOCATION.
//!
//! Input: one UDP payload (port 1900): an `M-SEARCH` or `NOTIFY` request, or an `HTTP/1.1 200`
//! search response. Output: an owned [`SsdpInfo`]. No I/O, no panics.
//!
//! `SERVER` (responses and NOTIFY) and `USER-AGENT` (M-SEARCH) follow `OS/version UPnP/1.x
//! product/version`, the most direct OS/product evidence a device volunteers.
//!
//! Limits: the message is read in its first [`MAX_MESSAGE_LEN`] bytes, at most [`MAX_HEADERS`]
//! header lines; values are cut at [`crate::http::MAX_VALUE_LEN`] bytes and decoded lossily.
//! Unknown headers are skipped; a message without a blank line is accepted (datagrams are
//! complete by nature).

use thiserror::Error;

use crate::http::{text, MAX_VALUE_LEN};

/// Bytes of a datagram read.
pub const MAX_MESSAGE_LEN: usize = 8 * 1024;
/// Header lines read.
pub const MAX_HEADERS: usize = 64;

/// SSDP errors.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SsdpError {
    #[error("not an SSDP message (start line {0:?})")]
    NotSsdp(String),
}

/// Which SSDP message this is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SsdpKind {
    /// A search request (the sender is a control point: a client).
    MSearch,
    /// An advertisement (the sender is a device): `ssdp:alive`, `ssdp:byebye`, `ssdp:update`.
    Notify,
    /// A unicast search response, with its status code.
    Response(u16),
}

/// What one SSDP message says about its sender.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct SsdpInfo {
    pub kind: SsdpKind,
    pub server: Option<String>,
    pub user_agent: Option<String>,
    /// Unique service name (`uuid:...::urn:schemas-upnp-org:device:MediaRenderer:1`).
    pub usn: Option<String>,
    /// Notification type (NOTIFY).
    pub nt: Option<String>,
    /// Notification sub type (`ssdp:alive`, ...).
    pub nts: Option<String>,
    /// Search target (M-SEARCH and responses).
    pub st: Option<String>,
    /// URL of the device description (responses and NOTIFY).
    pub location: Option<String>,
}

impl SsdpInfo {
    /// The product string the sender volunteers: SERVER, else USER-AGENT.
    pub fn product(&self) -> Option<&str> {
        self.server.as_deref().or(self.user_agent.as_deref())
    }

    /// The `uuid:` part of the USN.
    pub fn uuid(&self) -> Option<&str> {
        let usn = self.usn.as_deref()?;
        let rest = usn.strip_prefix("uuid:")?;
        Some(rest.split("::").next().unwrap_or(rest))
    }
}

/// Parses an SSDP datagram.
pub fn parse_ssdp(payload: &[u8]) -> Result<SsdpInfo, SsdpError> {
    let b = &payload[..payload.len().min(MAX_MESSAGE_LEN)];
    let mut lines = b
        .split(|&c| c == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first = lines.next().unwrap_or_default();
    let kind = if first.starts_with(b"M-SEARCH ") {
        SsdpKind::MSearch
    } else if first.starts_with(b"NOTIFY ") {
        SsdpKind::Notify
    } else if first.starts_with(b"HTTP/1.") {
        let status = first
            .get(9..12)
            .and_then(|s| std::str::from_utf8(s).ok())
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| SsdpError::NotSsdp(text(first, 64)))?;
        SsdpKind::Response(status)
    } else {
        return Err(SsdpError::NotSsdp(text(first, 64)));
    };
    let mut info = SsdpInfo {
        kind,
        server: None,
        user_agent: None,
        usn: None,
        nt: None,
        nts: None,
        st: None,
        location: None,
    };
    for line in lines.take(MAX_HEADERS) {
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            continue;
        };
        let name = text(&line[..colon], 32).to_ascii_uppercase();
        let value = Some(text(&line[colon + 1..], MAX_VALUE_LEN));
        match name.as_str() {
            "SERVER" => info.server = value,
            "USER-AGENT" => info.user_agent = value,
            "USN" => info.usn = value,
            "NT" => info.nt = value,
            "NTS" => info.nts = value,
            "ST" => info.st = value,
            "LOCATION" | "AL" if info.location.is_none() => info.location = value,
            _ => {}
        }
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    // pcaps/corpus/generic/ndpi_ssdp-m-search-ua.pcap frame 1 (192.168.242.50:56446 ->
    // 239.255.255.250:1900), UDP payload. Oracle: tshark -T fields -e http.request.method
    // -e http.user_agent -e http.host => M-SEARCH | Google Chrome/99.0.4844.74 Mac OS X |
    // 239.255.255.250:1900 (frames 2-4 are the same).
    const MSEARCH: &[u8] = b"M-SEARCH * HTTP/1.1\r\n\
HOST: 239.255.255.250:1900\r\n\
MAN: \"ssdp:discover\"\r\n\
MX: 1\r\n\
ST: urn:dial-multiscreen-org:service:dial:1\r\n\
USER-AGENT: Google Chrome/99.0.4844.74 Mac OS X\r\n\
\r\n";

    #[test]
    fn chrome_dial_search() {
        let i = parse_ssdp(MSEARCH).unwrap();
        assert_eq!(i.kind, SsdpKind::MSearch);
        assert_eq!(
            i.user_agent.as_deref(),
            Some("Google Chrome/99.0.4844.74 Mac OS X")
        );
        assert_eq!(
            i.st.as_deref(),
            Some("urn:dial-multiscreen-org:service:dial:1")
        );
        assert_eq!(i.product(), i.user_agent.as_deref());
        assert_eq!(i.server, None);
    }

    #[test]
    fn notify_and_response() {
        // Layout of UDA 2.0 §1.2.2 / §1.3.3 (no NOTIFY in the corpus).
        let n =
            b"NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nCACHE-CONTROL: max-age=1800\r\n\
LOCATION: http://10.0.0.5:49152/desc.xml\r\nNT: upnp:rootdevice\r\nNTS: ssdp:alive\r\n\
SERVER: Linux/3.14 UPnP/1.0 IntelliVue/1.0\r\n\
USN: uuid:2fac1234-31f8-11b4-a222-08002b34c003::upnp:rootdevice\r\n\r\n";
        let i = parse_ssdp(n).unwrap();
        assert_eq!(i.kind, SsdpKind::Notify);
        assert_eq!(
            i.server.as_deref(),
            Some("Linux/3.14 UPnP/1.0 IntelliVue/1.0")
        );
        assert_eq!(i.nts.as_deref(), Some("ssdp:alive"));
        assert_eq!(i.uuid(), Some("2fac1234-31f8-11b4-a222-08002b34c003"));
        assert_eq!(
            i.location.as_deref(),
            Some("http://10.0.0.5:49152/desc.xml")
        );
        let r =
            parse_ssdp(b"HTTP/1.1 200 OK\r\nST: ssdp:all\r\nServer: Windows/6.1 UPnP/1.0\r\n\r\n")
                .unwrap();
        assert_eq!(r.kind, SsdpKind::Response(200));
        assert_eq!(r.server.as_deref(), Some("Windows/6.1 UPnP/1.0"));
        assert!(parse_ssdp(b"GET / HTTP/1.1\r\n\r\n").is_err());
        assert!(parse_ssdp(b"HTTP/1.1 x").is_err());
        for k in 0..MSEARCH.len() {
            let _ = parse_ssdp(&MSEARCH[..k]);
        }
    }
}
