//! DHCPv4 and DHCPv6 client evidence: message type, host name, parameter request list (the
//! fingerprint), vendor class, client identifier, FQDN, requested address and server identifier.
//!
//! Inputs: one UDP payload (DHCPv4: ports 67/68, RFC 2131; DHCPv6: ports 546/547, RFC 8415).
//! Outputs: owned [`Dhcpv4Info`] / [`Dhcpv6Info`]. No I/O, no state, no panics.
//!
//! Limits and recoverable failures (listed first, as the callers need them):
//! - DHCPv4 options are walked with `dhcproto`'s zero-copy iterator (which joins split options,
//!   RFC 3396), at most [`MAX_OPTIONS`] of them; a malformed option ends the walk and what was
//!   read before is kept. Option overload (52) into `sname`/`file` is not followed.
//! - Text values are cut at [`MAX_TEXT_LEN`] bytes and decoded lossily (non-UTF-8 host names are
//!   common on embedded devices); byte values (client id, DUID) at [`MAX_ID_LEN`].
//! - DHCPv6 options are walked at most [`MAX_OPTIONS`] deep; relay messages are unwrapped at most
//!   [`MAX_RELAY_DEPTH`] levels.
//! - Nothing is allocated to a size read from the wire; every list is capped.
//!
//! Fingerprints: [`Dhcpv4Info::prl_fingerprint`] is option 55 as Fingerbank writes it
//! (`1,3,6,15,31,33,43,44,46,47,119,121,249,252`); [`Dhcpv4Info::option_order`] is the order of
//! the options present, a second, weaker signal.

use std::net::Ipv4Addr;

use dhcproto::v4::borrowed::Message as BorrowedMessage;
use thiserror::Error;

use crate::Needed;

/// Fixed BOOTP header (236 bytes) plus the magic cookie (4 bytes). RFC 2131 §2, §3.
pub const DHCPV4_MIN_LEN: usize = 240;
/// DHCPv6 client/server message header: msg-type (1) + transaction-id (3). RFC 8415 §8.
pub const DHCPV6_HEADER_LEN: usize = 4;
/// DHCPv6 relay message header: msg-type, hop-count, link-address (16), peer-address (16). §9.
pub const DHCPV6_RELAY_HEADER_LEN: usize = 34;
/// Options walked per message; real clients send fewer than 30.
pub const MAX_OPTIONS: usize = 128;
/// Bytes kept of a text option (host name, vendor class, FQDN): DNS names stop at 255.
pub const MAX_TEXT_LEN: usize = 255;
/// Bytes kept of a client identifier / DUID (RFC 8415 caps a DUID at 130 bytes).
pub const MAX_ID_LEN: usize = 130;
/// Entries kept of a parameter request list / option request option.
pub const MAX_PRL: usize = 255;
/// Vendor-class data strings kept (DHCPv6 option 16).
pub const MAX_VENDOR_STRINGS: usize = 8;
/// Relay-forward / relay-reply wrappers unwrapped.
pub const MAX_RELAY_DEPTH: usize = 4;
/// Labels read from an FQDN in DNS wire format.
pub const MAX_LABELS: usize = 128;

/// The magic cookie 99.130.83.99 that starts the options. RFC 2131 §3.
pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];

/// DHCP errors: "need more bytes" apart from "these bytes are wrong".
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DhcpError {
    #[error("DHCP message incomplete: {needed:?} more bytes needed")]
    Incomplete { needed: Needed },
    #[error("not a BOOTP message: op {op} (expected 1 request or 2 reply)")]
    NotBootp { op: u8 },
    #[error("DHCPv4 magic cookie missing (found {found:02x?})")]
    BadMagic { found: [u8; 4] },
    #[error("invalid DHCPv6 message at offset {offset}: {reason}")]
    InvalidV6 { offset: usize, reason: &'static str },
}

/// DHCPv4 message type (option 53), open so that unknown values are kept. RFC 2132 §9.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageType(pub u8);

impl MessageType {
    pub const DISCOVER: MessageType = MessageType(1);
    pub const OFFER: MessageType = MessageType(2);
    pub const REQUEST: MessageType = MessageType(3);
    pub const DECLINE: MessageType = MessageType(4);
    pub const ACK: MessageType = MessageType(5);
    pub const NAK: MessageType = MessageType(6);
    pub const RELEASE: MessageType = MessageType(7);
    pub const INFORM: MessageType = MessageType(8);

    /// Upper-case name (`DISCOVER`), or `UNKNOWN`.
    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "DISCOVER",
            2 => "OFFER",
            3 => "REQUEST",
            4 => "DECLINE",
            5 => "ACK",
            6 => "NAK",
            7 => "RELEASE",
            8 => "INFORM",
            _ => "UNKNOWN",
        }
    }

    /// Sent by a client (so its options describe the client).
    pub fn is_from_client(self) -> bool {
        matches!(self.0, 1 | 3 | 4 | 7 | 8)
    }
}

/// Client FQDN (option 81, RFC 4702; DHCPv6 option 39, RFC 4704).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fqdn {
    /// Flags byte (S, O, E, N bits).
    pub flags: u8,
    /// The name, dotted, without the trailing dot.
    pub name: String,
}

/// What a DHCPv4 message says about its client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Dhcpv4Info {
    /// BOOTP op: 1 request (client → server), 2 reply.
    pub op: u8,
    pub xid: u32,
    /// Client hardware address when htype is Ethernet (1) and hlen 6.
    pub chaddr: Option<[u8; 6]>,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    /// Option 53.
    pub message_type: Option<MessageType>,
    /// Option 12.
    pub hostname: Option<String>,
    /// Option 55, in order.
    pub parameter_request_list: Vec<u8>,
    /// Option 60 (e.g. `MSFT 5.0`, `android-dhcp-13`, `udhcp 1.36.1`).
    pub vendor_class: Option<String>,
    /// Option 61, raw (type byte first; type 1 = Ethernet MAC follows).
    pub client_id: Option<Vec<u8>>,
    /// Option 81.
    pub fqdn: Option<Fqdn>,
    /// Option 50.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 54.
    pub server_id: Option<Ipv4Addr>,
    /// Option 57.
    pub max_message_size: Option<u16>,
    /// Codes of the options present, in wire order (pad and end excluded).
    pub option_codes: Vec<u8>,
    /// The option walk stopped at [`MAX_OPTIONS`].
    pub options_truncated: bool,
}

impl Dhcpv4Info {
    /// Option 55 as a comma-separated decimal list (`1,3,6,42`); `None` without option 55.
    pub fn prl_fingerprint(&self) -> Option<String> {
        if self.parameter_request_list.is_empty() {
            return None;
        }
        Some(join_codes(self.parameter_request_list.iter().copied()))
    }

    /// Codes of the options present, comma-separated (`53,61,50,55,12`).
    pub fn option_order(&self) -> String {
        join_codes(self.option_codes.iter().copied())
    }

    /// Whether this message describes the client: a BOOTREQUEST, or a client message type.
    pub fn is_from_client(&self) -> bool {
        self.message_type
            .map_or(self.op == 1, MessageType::is_from_client)
    }

    /// The client's MAC from option 61 when it is type 1 (Ethernet) with 6 bytes.
    pub fn client_id_mac(&self) -> Option<[u8; 6]> {
        let id = self.client_id.as_ref()?;
        match id.as_slice() {
            [1, a, b, c, d, e, f] => Some([*a, *b, *c, *d, *e, *f]),
            _ => None,
        }
    }
}

fn join_codes<T: std::fmt::Display>(codes: impl Iterator<Item = T>) -> String {
    let mut s = String::new();
    for (i, c) in codes.enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&c.to_string());
    }
    s
}

/// Text of at most [`MAX_TEXT_LEN`] bytes, lossily decoded, NULs trimmed from the end.
fn text(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(MAX_TEXT_LEN)];
    let end = cut.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    String::from_utf8_lossy(&cut[..end]).into_owned()
}

fn ipv4(data: &[u8]) -> Option<Ipv4Addr> {
    let a: [u8; 4] = data.try_into().ok()?;
    Some(Ipv4Addr::from(a))
}

/// A DNS name in wire format (labels), without compression, at most [`MAX_LABELS`] labels and
/// [`MAX_TEXT_LEN`] bytes. Stops quietly at the first malformed label.
fn wire_name(mut data: &[u8]) -> String {
    let mut out = String::new();
    for _ in 0..MAX_LABELS {
        let Some((&len, rest)) = data.split_first() else {
            break;
        };
        let len = usize::from(len);
        if len == 0 || len > 63 || rest.len() < len {
            break;
        }
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(&String::from_utf8_lossy(&rest[..len]));
        if out.len() > MAX_TEXT_LEN {
            out.truncate(out.floor_char_boundary_compat(MAX_TEXT_LEN));
            break;
        }
        data = &rest[len..];
    }
    out
}

/// `str::floor_char_boundary` is unstable; this is the same for our use.
trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, index: usize) -> usize;
}

impl FloorCharBoundary for String {
    fn floor_char_boundary_compat(&self, index: usize) -> usize {
        let mut i = index.min(self.len());
        while i > 0 && !self.is_char_boundary(i) {
            i -= 1;
        }
        i
    }
}

/// Client FQDN option body: flags (1), RCODE1 (1), RCODE2 (1), name; the name is in DNS wire
/// format when the E bit (0x04) is set, ASCII otherwise. RFC 4702 §2.
fn fqdn_v4(data: &[u8]) -> Option<Fqdn> {
    let (&flags, rest) = data.split_first()?;
    let name_bytes = rest.get(2..)?;
    let name = if flags & 0x04 != 0 {
        wire_name(name_bytes)
    } else {
        text(name_bytes)
    };
    Some(Fqdn {
        flags,
        name: name.trim_end_matches('.').to_string(),
    })
}

/// Parses a DHCPv4 message (the UDP payload).
///
/// Errors: [`DhcpError::Incomplete`] under 240 bytes, [`DhcpError::NotBootp`] for an op other
/// than 1/2, [`DhcpError::BadMagic`] without the cookie. A malformed option is not an error: the
/// walk stops there and keeps what it read.
pub fn parse_dhcpv4(payload: &[u8]) -> Result<Dhcpv4Info, DhcpError> {
    if payload.len() < DHCPV4_MIN_LEN {
        return Err(DhcpError::Incomplete {
            needed: Needed::Size(DHCPV4_MIN_LEN - payload.len()),
        });
    }
    // RFC 2131 §2: op (0), htype (1), hlen (2), hops (3), xid (4..8), secs (8..10),
    // flags (10..12), ciaddr (12..16), yiaddr (16..20), siaddr (20..24), giaddr (24..28),
    // chaddr (28..44), sname (44..108), file (108..236), options (236..) from the cookie.
    let op = payload[0];
    if op != 1 && op != 2 {
        return Err(DhcpError::NotBootp { op });
    }
    let cookie: [u8; 4] = payload[236..240].try_into().unwrap_or([0; 4]);
    if cookie != MAGIC_COOKIE {
        return Err(DhcpError::BadMagic { found: cookie });
    }
    let (htype, hlen) = (payload[1], payload[2]);
    let chaddr = if htype == 1 && hlen == 6 {
        payload[28..34].try_into().ok()
    } else {
        None
    };
    let mut info = Dhcpv4Info {
        op,
        xid: u32::from_be_bytes(payload[4..8].try_into().unwrap_or([0; 4])),
        chaddr,
        ciaddr: ipv4(&payload[12..16]).unwrap_or(Ipv4Addr::UNSPECIFIED),
        yiaddr: ipv4(&payload[16..20]).unwrap_or(Ipv4Addr::UNSPECIFIED),
        giaddr: ipv4(&payload[24..28]).unwrap_or(Ipv4Addr::UNSPECIFIED),
        message_type: None,
        hostname: None,
        parameter_request_list: Vec::new(),
        vendor_class: None,
        client_id: None,
        fqdn: None,
        requested_ip: None,
        server_id: None,
        max_message_size: None,
        option_codes: Vec::new(),
        options_truncated: false,
    };
    let msg = match BorrowedMessage::new(payload) {
        Ok(m) => m,
        Err(_) => {
            return Err(DhcpError::Incomplete {
                needed: Needed::Unknown,
            })
        }
    };
    for (n, opt) in msg.opts().enumerate() {
        if n >= MAX_OPTIONS {
            info.options_truncated = true;
            break;
        }
        let code: u8 = opt.code().into();
        let data = opt.data();
        info.option_codes.push(code);
        match code {
            12 => info.hostname = Some(text(data)),
            50 => info.requested_ip = ipv4(data),
            53 => info.message_type = data.first().map(|&t| MessageType(t)),
            54 => info.server_id = ipv4(data),
            55 => {
                info.parameter_request_list = data.iter().take(MAX_PRL).copied().collect();
            }
            57 => info.max_message_size = data.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])),
            60 => info.vendor_class = Some(text(data)),
            61 => info.client_id = Some(data.iter().take(MAX_ID_LEN).copied().collect()),
            81 => info.fqdn = fqdn_v4(data),
            _ => {}
        }
    }
    Ok(info)
}

/// DHCPv6 message type, open. RFC 8415 §7.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct V6MessageType(pub u8);

impl V6MessageType {
    pub const SOLICIT: V6MessageType = V6MessageType(1);
    pub const ADVERTISE: V6MessageType = V6MessageType(2);
    pub const REQUEST: V6MessageType = V6MessageType(3);
    pub const CONFIRM: V6MessageType = V6MessageType(4);
    pub const RENEW: V6MessageType = V6MessageType(5);
    pub const REBIND: V6MessageType = V6MessageType(6);
    pub const REPLY: V6MessageType = V6MessageType(7);
    pub const RELEASE: V6MessageType = V6MessageType(8);
    pub const DECLINE: V6MessageType = V6MessageType(9);
    pub const RECONFIGURE: V6MessageType = V6MessageType(10);
    pub const INFORMATION_REQUEST: V6MessageType = V6MessageType(11);
    pub const RELAY_FORW: V6MessageType = V6MessageType(12);
    pub const RELAY_REPL: V6MessageType = V6MessageType(13);

    /// Sent by a client.
    pub fn is_from_client(self) -> bool {
        matches!(self.0, 1 | 3 | 4 | 5 | 6 | 8 | 9 | 11)
    }
}

/// DHCPv6 vendor class (option 16, RFC 8415 §21.16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorClassV6 {
    /// IANA enterprise number (311 = Microsoft).
    pub enterprise: u32,
    /// The vendor-class-data strings, lossily decoded, at most [`MAX_VENDOR_STRINGS`].
    pub data: Vec<String>,
}

/// What a DHCPv6 message says about its client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Dhcpv6Info {
    /// Type of the innermost message (relays unwrapped).
    pub msg_type: V6MessageType,
    /// Transaction id (24 bits) of the innermost message.
    pub transaction_id: u32,
    /// Relay wrappers that were unwrapped.
    pub relay_depth: usize,
    /// Client identifier (option 1): the DUID, raw, at most [`MAX_ID_LEN`] bytes.
    pub client_duid: Option<Vec<u8>>,
    /// Option request option (6), in order: the DHCPv6 counterpart of option 55.
    pub oro: Vec<u16>,
    /// Vendor class (16).
    pub vendor_class: Option<VendorClassV6>,
    /// Client FQDN (39).
    pub fqdn: Option<Fqdn>,
    /// Codes of the options present in the innermost message, in order.
    pub option_codes: Vec<u16>,
    pub options_truncated: bool,
}

impl Dhcpv6Info {
    /// The link-layer address inside a DUID-LLT (type 1) or DUID-LL (type 3) with Ethernet
    /// hardware type (1). RFC 8415 §11.2, §11.4.
    pub fn duid_mac(&self) -> Option<[u8; 6]> {
        let d = self.client_duid.as_ref()?;
        let duid_type = u16::from_be_bytes([*d.first()?, *d.get(1)?]);
        let hw = u16::from_be_bytes([*d.get(2)?, *d.get(3)?]);
        let lla = match duid_type {
            1 => d.get(8..)?,
            3 => d.get(4..)?,
            _ => return None,
        };
        if hw != 1 {
            return None;
        }
        lla.try_into().ok()
    }

    /// Option request option as a comma-separated list (`23,24,17,39`).
    pub fn oro_fingerprint(&self) -> Option<String> {
        if self.oro.is_empty() {
            None
        } else {
            Some(join_codes(self.oro.iter().copied()))
        }
    }
}

/// Parses a DHCPv6 message (the UDP payload), unwrapping relay messages.
///
/// Errors: [`DhcpError::Incomplete`] under the 4-byte header, [`DhcpError::InvalidV6`] for a
/// relay message without a Relay Message option or nested too deep. Options that overrun the
/// message end the walk; what was read before is kept.
pub fn parse_dhcpv6(payload: &[u8]) -> Result<Dhcpv6Info, DhcpError> {
    let mut msg = payload;
    let mut base = 0usize;
    for depth in 0..=MAX_RELAY_DEPTH {
        let Some(&msg_type) = msg.first() else {
            return Err(DhcpError::Incomplete {
                needed: Needed::Size(DHCPV6_HEADER_LEN),
            });
        };
        if msg_type == 12 || msg_type == 13 {
            // Relay: msg-type, hop-count, link-address, peer-address, options. §9.
            let Some(opts) = msg.get(DHCPV6_RELAY_HEADER_LEN..) else {
                return Err(DhcpError::Incomplete {
                    needed: Needed::Size(DHCPV6_RELAY_HEADER_LEN - msg.len()),
                });
            };
            let inner = walk_v6(opts)
                .take(MAX_OPTIONS)
                .find(|(code, _)| *code == 9)
                .map(|(_, d)| d);
            let Some(inner) = inner else {
                return Err(DhcpError::InvalidV6 {
                    offset: base,
                    reason: "relay message without a Relay Message option",
                });
            };
            base = base.saturating_add(DHCPV6_RELAY_HEADER_LEN);
            msg = inner;
            if depth == MAX_RELAY_DEPTH {
                break;
            }
            continue;
        }
        if msg.len() < DHCPV6_HEADER_LEN {
            return Err(DhcpError::Incomplete {
                needed: Needed::Size(DHCPV6_HEADER_LEN - msg.len()),
            });
        }
        let mut info = Dhcpv6Info {
            msg_type: V6MessageType(msg_type),
            transaction_id: u32::from_be_bytes([0, msg[1], msg[2], msg[3]]),
            relay_depth: depth,
            client_duid: None,
            oro: Vec::new(),
            vendor_class: None,
            fqdn: None,
            option_codes: Vec::new(),
            options_truncated: false,
        };
        for (n, (code, data)) in walk_v6(&msg[DHCPV6_HEADER_LEN..]).enumerate() {
            if n >= MAX_OPTIONS {
                info.options_truncated = true;
                break;
            }
            info.option_codes.push(code);
            match code {
                1 => info.client_duid = Some(data.iter().take(MAX_ID_LEN).copied().collect()),
                6 => {
                    info.oro = data
                        .chunks_exact(2)
                        .take(MAX_PRL)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect()
                }
                16 => info.vendor_class = vendor_class_v6(data),
                39 => {
                    // flags (1), domain name in DNS wire format. RFC 4704 §4.
                    if let Some((&flags, name)) = data.split_first() {
                        info.fqdn = Some(Fqdn {
                            flags,
                            name: wire_name(name),
                        });
                    }
                }
                _ => {}
            }
        }
        return Ok(info);
    }
    Err(DhcpError::InvalidV6 {
        offset: base,
        reason: "relay messages nested deeper than MAX_RELAY_DEPTH",
    })
}

/// enterprise-number (4), then vendor-class-data: repeated (len (2), opaque). §21.16.
fn vendor_class_v6(data: &[u8]) -> Option<VendorClassV6> {
    let enterprise = u32::from_be_bytes(data.get(..4)?.try_into().ok()?);
    let mut rest = data.get(4..)?;
    let mut strings = Vec::new();
    while strings.len() < MAX_VENDOR_STRINGS && rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let Some(s) = rest.get(2..2 + len) else {
            break;
        };
        strings.push(text(s));
        rest = &rest[2 + len..];
    }
    Some(VendorClassV6 {
        enterprise,
        data: strings,
    })
}

/// DHCPv6 options: option-code (2), option-len (2), data. Stops at the first overrun.
fn walk_v6(data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.len() < 4 {
            return None;
        }
        let code = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let body = rest.get(4..4 + len)?;
        rest = &rest[4 + len..];
        Some((code, body))
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

    /// The UDP payload of a BOOTP message whose sname and file are all zero (true of every
    /// frame used here): the first 44 bytes (op..chaddr), 192 zero bytes, then cookie+options.
    fn bootp(head44: &str, cookie_and_options: &str) -> Vec<u8> {
        let mut v = hex(head44);
        assert_eq!(v.len(), 44);
        v.resize(236, 0);
        v.extend(hex(cookie_and_options));
        v
    }

    // pcaps/corpus/generic/zeek_dhcp_discover_param_req_and_client_id.pcap frame 1, UDP payload
    // (68 -> 67). Oracle: tshark -T fields -e dhcp.option.dhcp -e dhcp.hw.mac_addr
    // -e dhcp.option.hostname -e dhcp.option.request_list_item -e dhcp.option.requested_ip_address
    // -e dhcp.option.type  =>  1 | 00:0b:82:01:fc:42 | test0000 | 1,3,6,42 | 208.67.222.222 |
    // 53,61,50,55,12 (tshark lists end as 0).
    fn discover() -> Vec<u8> {
        bootp(
            "01010600 00003d11 0000 0000 00000000 00000000 00000000 00000000 \
             000b8201fc42 00000000000000000000",
            // cookie, 53=1 DISCOVER, 61=01 000b8201fc42, 50=208.67.222.222, 55=1,3,6,42,
            // 12="test0000", end, padding
            "63825363 350101 3d0701000b8201fc42 3204d043dede 37040103062a \
             0c087465737430303030 ff000000000000",
        )
    }

    #[test]
    fn discover_with_prl_and_client_id() {
        let i = parse_dhcpv4(&discover()).unwrap();
        assert_eq!(i.message_type, Some(MessageType::DISCOVER));
        assert_eq!(i.message_type.unwrap().name(), "DISCOVER");
        assert!(i.is_from_client());
        assert_eq!(i.chaddr, Some([0x00, 0x0b, 0x82, 0x01, 0xfc, 0x42]));
        assert_eq!(i.hostname.as_deref(), Some("test0000"));
        assert_eq!(i.prl_fingerprint().as_deref(), Some("1,3,6,42"));
        assert_eq!(i.requested_ip, Some(Ipv4Addr::new(208, 67, 222, 222)));
        assert_eq!(i.client_id_mac(), i.chaddr);
        assert_eq!(i.option_order(), "53,61,50,55,12");
        assert_eq!(i.vendor_class, None);
        assert_eq!(i.xid, 0x3d11);
    }

    #[test]
    fn discover_with_hostname_and_offer_with_vendor_class() {
        // zeek_dhcp.pcap frame 1 (a DISCOVER with a host name). tshark -e frame.number
        // -e dhcp.option.dhcp -e dhcp.option.hostname -e dhcp.option.requested_ip_address
        // -e dhcp.option.type => 1|1|btest.is.cool|192.168.211.194|53,50,12
        let req = bootp(
            "01010600 000007c0 0000 0000 00000000 00000000 00000000 00000000 \
             90b11c994929 00000000000000000000",
            "63825363 350101 3204c0a8d3c2 0c0d62746573742e69732e636f6f6c ff",
        );
        let i = parse_dhcpv4(&req).unwrap();
        assert_eq!(i.message_type, Some(MessageType::DISCOVER));
        assert_eq!(i.hostname.as_deref(), Some("btest.is.cool"));
        assert_eq!(i.requested_ip, Some(Ipv4Addr::new(192, 168, 211, 194)));
        assert_eq!(i.prl_fingerprint(), None);
        assert_eq!(i.option_order(), "53,50,12");

        // zeek_dhcp.pcap frame 2 (OFFER from 128.2.6.152): tshark dhcp.option.vendor_class_id
        // = ArubaAP, dhcp.option.dhcp_server_id = 128.2.6.152, option types
        // 53,54,51,1,3,6,4,67,28,42,43,60,44,46,15.
        let offer = bootp(
            "02010600 000007c0 0000 0000 00000000 80020661 ac13e607 00000000 \
             90b11c994929 00000000000000000000",
            "63825363 350102 360480020698 330400000384 0104ffffff00 030480020601 \
             06088002010b8002010a 04088002011480020115 430d6e6574776f726b2d636f6e6667 \
             1c04800206ff 2a0c800201148002011580020116 2b0b3137322e31382e362e3337 \
             3c0741727562614150 2c088002681d8002681e 2e0102 0f07636d752e656475 ff",
        );
        let i = parse_dhcpv4(&offer).unwrap();
        assert_eq!(i.message_type, Some(MessageType::OFFER));
        assert!(!i.is_from_client());
        assert_eq!(i.vendor_class.as_deref(), Some("ArubaAP"));
        assert_eq!(i.server_id, Some(Ipv4Addr::new(128, 2, 6, 152)));
        assert_eq!(i.yiaddr, Ipv4Addr::new(128, 2, 6, 97));
        assert_eq!(i.option_order(), "53,54,51,1,3,6,4,67,28,42,43,60,44,46,15");
    }

    #[test]
    fn inform_prl() {
        // zeek_dhcp_inform.pcap frame 1: tshark dhcp.option.dhcp=8, request_list_item=1,
        // option types 53,55.
        let p = bootp(
            "01010600 a42cec51 0000 0000 8002067a 00000000 00000000 00000000 \
             90b11c994929 00000000000000000000",
            "63825363 350108 370101 ff",
        );
        let i = parse_dhcpv4(&p).unwrap();
        assert_eq!(i.message_type, Some(MessageType::INFORM));
        assert_eq!(i.prl_fingerprint().as_deref(), Some("1"));
        assert_eq!(i.ciaddr, Ipv4Addr::new(128, 2, 6, 122));
    }

    #[test]
    fn fqdn_and_split_options() {
        // Built from the DISCOVER above: option 81 (E bit, wire-format name) and option 12
        // split in two parts (RFC 3396 concatenation).
        let mut p = discover();
        p.truncate(240);
        p.extend(hex("350103 0c03706331 0c03616263 \
             510b 05 0000 03706331 03636f6d 00 3c084d53465420352e30 ff"));
        let i = parse_dhcpv4(&p).unwrap();
        assert_eq!(i.hostname.as_deref(), Some("pc1abc"));
        let f = i.fqdn.unwrap();
        assert_eq!(f.name, "pc1.com");
        assert_eq!(f.flags, 5);
        assert_eq!(i.vendor_class.as_deref(), Some("MSFT 5.0"));
        // ASCII form (E bit clear).
        let mut p = discover();
        p.truncate(240);
        p.extend(hex("510a 00 0000 7063312e6f7267 ff"));
        assert_eq!(parse_dhcpv4(&p).unwrap().fqdn.unwrap().name, "pc1.org");
        // A too-short FQDN option is skipped, not a panic.
        let mut p = discover();
        p.truncate(240);
        p.extend(hex("510100 ff"));
        assert_eq!(parse_dhcpv4(&p).unwrap().fqdn, None);
    }

    #[test]
    fn errors_and_truncation() {
        let d = discover();
        assert_eq!(
            parse_dhcpv4(&d[..100]),
            Err(DhcpError::Incomplete {
                needed: Needed::Size(140)
            })
        );
        let mut bad = d.clone();
        bad[0] = 9;
        assert_eq!(parse_dhcpv4(&bad), Err(DhcpError::NotBootp { op: 9 }));
        let mut bad = d.clone();
        bad[236] = 0;
        assert!(matches!(
            parse_dhcpv4(&bad),
            Err(DhcpError::BadMagic { .. })
        ));
        // Options cut mid-way: what came before is kept.
        let i = parse_dhcpv4(&d[..d.len() - 20]).unwrap();
        assert_eq!(i.message_type, Some(MessageType::DISCOVER));
        assert!(i.hostname.is_none());
        // Every prefix parses or errors without panicking.
        for n in 0..d.len() {
            let _ = parse_dhcpv4(&d[..n]);
        }
    }

    #[test]
    fn dhcpv6_solicit() {
        // No DHCPv6 in the corpus: a SOLICIT laid out per RFC 8415 §8/§21 as Windows 10 sends
        // it (client id DUID-LLT, ORO, vendor class enterprise 311 "MSFT 5.0", FQDN).
        let p = hex("01 abcdef \
             0001 000e 0001 0001 2a3b4c5d 00095c6d4141 \
             0006 0008 0011 0017 0018 0027 \
             0010 000e 00000137 0008 4d53465420352e30 \
             0027 000d 01 06 6d6564746170 03 6f7267 00");
        let i = parse_dhcpv6(&p).unwrap();
        assert_eq!(i.msg_type, V6MessageType::SOLICIT);
        assert!(i.msg_type.is_from_client());
        assert_eq!(i.transaction_id, 0xabcdef);
        assert_eq!(i.duid_mac(), Some([0x00, 0x09, 0x5c, 0x6d, 0x41, 0x41]));
        assert_eq!(i.oro_fingerprint().as_deref(), Some("17,23,24,39"));
        let vc = i.vendor_class.clone().unwrap();
        assert_eq!(vc.enterprise, 311);
        assert_eq!(vc.data, vec!["MSFT 5.0".to_string()]);
        assert_eq!(i.fqdn.unwrap().name, "medtap.org");
        assert_eq!(i.option_codes, vec![1, 6, 16, 39]);

        // The same SOLICIT inside a RELAY-FORW (option 9).
        let mut relay = hex("0c 00");
        relay.extend([0u8; 32]);
        relay.extend(hex("0009"));
        relay.extend((p.len() as u16).to_be_bytes());
        relay.extend(&p);
        let r = parse_dhcpv6(&relay).unwrap();
        assert_eq!(r.relay_depth, 1);
        assert_eq!(r.transaction_id, 0xabcdef);
        // Prefixes never panic.
        for n in 0..relay.len() {
            let _ = parse_dhcpv6(&relay[..n]);
        }
        assert!(matches!(
            parse_dhcpv6(&[]),
            Err(DhcpError::Incomplete { .. })
        ));
    }
}
