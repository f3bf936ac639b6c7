//! RDP connection initiation (MS-RDPBCGR 2.2.1.1 and 2.2.1.2): the X.224 Connection Request
//! with the security protocols the client asks for, and the Connection Confirm with the one the
//! server selects, inside TPKT (RFC 1006).
//!
//! Inputs: the first bytes of each direction. Output: [`X224`]. The routing cookie
//! (`Cookie: mstshash=<user>`) is only noted present, never kept. No I/O, no panics.
//!
//! Limits: a TPKT over [`MAX_TPKT_LEN`] bytes is not a connection request and is refused.

use crate::Needed;

/// TPKT header: version 3, reserved, length (RFC 1006 6).
pub const TPKT_HEADER_LEN: usize = 4;
/// Connection request/confirm PDUs are under 300 bytes; larger ones are not what this reads.
pub const MAX_TPKT_LEN: usize = 4096;

/// requestedProtocols / selectedProtocol bits (MS-RDPBCGR 2.2.1.1.1).
pub const PROTOCOL_RDP: u32 = 0;
pub const PROTOCOL_SSL: u32 = 1;
pub const PROTOCOL_HYBRID: u32 = 2;
pub const PROTOCOL_RDSTLS: u32 = 4;
pub const PROTOCOL_HYBRID_EX: u32 = 8;

/// The X.224 TPDU codes used here (X.224 13.3). Open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TpduCode(pub u8);

impl TpduCode {
    pub const CONNECTION_REQUEST: TpduCode = TpduCode(0xe0);
    pub const CONNECTION_CONFIRM: TpduCode = TpduCode(0xd0);
    pub const DATA: TpduCode = TpduCode(0xf0);
}

/// The negotiation structure after the X.224 header, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negotiation {
    /// RDP_NEG_REQ: requestedProtocols.
    Request(u32),
    /// RDP_NEG_RSP: selectedProtocol.
    Response(u32),
    /// RDP_NEG_FAILURE: failureCode.
    Failure(u32),
}

/// One X.224 TPDU in TPKT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct X224 {
    pub code: TpduCode,
    /// A `Cookie:` or routing token line preceded the negotiation.
    pub cookie: bool,
    pub negotiation: Option<Negotiation>,
}

/// Why bytes are not a TPKT/X.224 TPDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RdpError {
    Incomplete(Needed),
    NotRdp,
}

/// Parse one TPKT carrying an X.224 TPDU.
pub fn parse_x224(b: &[u8]) -> Result<(&[u8], X224), RdpError> {
    match b {
        [] | [3] | [3, 0] | [3, 0, _] => return Err(RdpError::Incomplete(Needed::Unknown)),
        [3, 0, ..] => {}
        _ => return Err(RdpError::NotRdp),
    }
    let len = usize::from(u16::from_be_bytes([b[2], b[3]]));
    if !(TPKT_HEADER_LEN + 3..=MAX_TPKT_LEN).contains(&len) {
        return Err(RdpError::NotRdp);
    }
    let pdu = b
        .get(..len)
        .ok_or_else(|| RdpError::Incomplete(Needed::Size(len - b.len())))?;
    // X.224: LI (header length excluding itself) at 4, code at 5.
    let li = usize::from(pdu[4]);
    let code = TpduCode(pdu[5] & 0xf0);
    if TPKT_HEADER_LEN + 1 + li > len {
        return Err(RdpError::NotRdp);
    }
    let mut x = X224 {
        code,
        cookie: false,
        negotiation: None,
    };
    if code == TpduCode::CONNECTION_REQUEST || code == TpduCode::CONNECTION_CONFIRM {
        // CR/CC fixed part: code, DST-REF(2), SRC-REF(2), class(1): 7 bytes after TPKT.
        if li < 6 {
            return Err(RdpError::NotRdp);
        }
        let mut var = &pdu[TPKT_HEADER_LEN + 7..TPKT_HEADER_LEN + 1 + li];
        if var.starts_with(b"Cookie:") || var.starts_with(b"Cookie: ") {
            x.cookie = true;
            match var.windows(2).position(|w| w == b"\r\n") {
                Some(p) => var = &var[p + 2..],
                None => var = &[],
            }
        }
        // RDP_NEG_*: type(1) flags(1) length(2, = 8) value(4), little-endian.
        if let [t, _flags, 8, 0, v0, v1, v2, v3, ..] = *var {
            let v = u32::from_le_bytes([v0, v1, v2, v3]);
            x.negotiation = match t {
                1 => Some(Negotiation::Request(v)),
                2 => Some(Negotiation::Response(v)),
                3 => Some(Negotiation::Failure(v)),
                _ => None,
            };
        }
    }
    Ok((&b[len..], x))
}

/// Names of the protocol bits set in `p` ("rdp" when none: standard RDP security).
pub fn protocol_names(p: u32) -> Vec<&'static str> {
    if p == PROTOCOL_RDP {
        return vec!["rdp"];
    }
    let mut v = Vec::new();
    for (bit, name) in [
        (PROTOCOL_SSL, "tls"),
        (PROTOCOL_HYBRID, "credssp"),
        (PROTOCOL_RDSTLS, "rdstls"),
        (PROTOCOL_HYBRID_EX, "credssp_early_auth"),
    ] {
        if p & bit != 0 {
            v.push(name);
        }
    }
    if p & !0xf != 0 {
        v.push("other");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    // mstsc's Connection Request: TPKT len 0x2b, X.224 CR, "Cookie: mstshash=user\r\n",
    // RDP_NEG_REQ requesting TLS|CredSSP (0x03).
    #[test]
    fn connection_request_and_confirm() {
        let mut cr = vec![3, 0, 0, 0, 0, 0xe0, 0, 0, 0, 0, 0];
        cr.extend_from_slice(b"Cookie: mstshash=user\r\n");
        cr.extend_from_slice(&[1, 0, 8, 0, 3, 0, 0, 0]);
        let len = cr.len();
        cr[3] = len as u8;
        cr[4] = (len - 5) as u8;
        let (rest, x) = parse_x224(&cr).unwrap();
        assert!(rest.is_empty());
        assert!(x.cookie);
        assert_eq!(x.negotiation, Some(Negotiation::Request(3)));
        assert_eq!(protocol_names(3), vec!["tls", "credssp"]);
        assert_eq!(
            parse_x224(&cr[..10]),
            Err(RdpError::Incomplete(Needed::Size(len - 10)))
        );
        let cc = [
            3, 0, 0, 19, 14, 0xd0, 0, 0, 0x12, 0x34, 0, 2, 0, 8, 0, 0, 0, 0, 0,
        ];
        let (_, x) = parse_x224(&cc).unwrap();
        assert_eq!(x.negotiation, Some(Negotiation::Response(PROTOCOL_RDP)));
        assert_eq!(protocol_names(0), vec!["rdp"]);
        assert_eq!(parse_x224(b"\x16\x03\x01\x02"), Err(RdpError::NotRdp));
        assert_eq!(parse_x224(&[3, 0, 0, 2]), Err(RdpError::NotRdp));
    }
}
