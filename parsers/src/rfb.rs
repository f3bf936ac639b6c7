//! VNC's Remote Framebuffer protocol handshake (RFC 6143 7.1): the protocol version both sides
//! send, the security types the server offers and the one the client picks.
//!
//! Inputs: the first bytes of each direction. Outputs: [`Version`], [`SecurityTypes`]. No I/O,
//! no panics. Limits: a server offers at most 255 types by construction.

use crate::Needed;

/// `RFB 003.008\n`.
pub const VERSION_LEN: usize = 12;

/// A ProtocolVersion message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub major: u16,
    pub minor: u16,
}

/// Parse a ProtocolVersion message. `Err(Some(n))`: `n` more bytes needed; `Err(None)`: not RFB.
pub fn parse_version(b: &[u8]) -> Result<(&[u8], Version), Option<Needed>> {
    let want = b"RFB ";
    let n = b.len().min(4);
    if b[..n] != want[..n] {
        return Err(None);
    }
    let Some(v) = b.get(..VERSION_LEN) else {
        // Every byte present must still fit "RFB ddd.ddd\n".
        let ok = b.iter().enumerate().skip(4).all(|(i, c)| match i {
            7 => *c == b'.',
            _ => c.is_ascii_digit(),
        });
        return Err(ok.then_some(Needed::Size(VERSION_LEN - b.len())));
    };
    let digits = |s: &[u8]| -> Option<u16> {
        s.iter().try_fold(0u16, |a, c| {
            c.is_ascii_digit().then(|| a * 10 + u16::from(c - b'0'))
        })
    };
    if v[7] != b'.' || v[11] != b'\n' {
        return Err(None);
    }
    match (digits(&v[4..7]), digits(&v[8..11])) {
        (Some(major), Some(minor)) => Ok((&b[VERSION_LEN..], Version { major, minor })),
        _ => Err(None),
    }
}

/// Security types (RFC 6143 7.1.2 and the IANA registry). Open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecurityType(pub u8);

impl SecurityType {
    pub const INVALID: SecurityType = SecurityType(0);
    pub const NONE: SecurityType = SecurityType(1);
    pub const VNC_AUTH: SecurityType = SecurityType(2);
    pub const RA2: SecurityType = SecurityType(5);
    pub const TIGHT: SecurityType = SecurityType(16);
    pub const TLS: SecurityType = SecurityType(18);
    pub const VENCRYPT: SecurityType = SecurityType(19);
    pub const APPLE_DH: SecurityType = SecurityType(30);

    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "invalid",
            1 => "none",
            2 => "vnc_auth",
            5 | 6 => "ra2",
            16 => "tight",
            17 => "ultra",
            18 => "tls",
            19 => "vencrypt",
            20 => "sasl",
            30 => "apple_dh",
            _ => "other",
        }
    }

    /// Whether the type wraps the session in TLS (TLS, VeNCrypt) or encrypts it (RA2).
    pub fn encrypts(self) -> bool {
        matches!(self.0, 5 | 6 | 18 | 19)
    }
}

/// The server's security offer. 3.3 servers decide alone (one type, 4 bytes); 3.7 and later
/// send a count then the types (count 0: connection refused, a reason follows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityTypes {
    pub types: Vec<SecurityType>,
    /// 3.3: the server chose (the list has that one type).
    pub server_chose: bool,
}

/// Parse the server's security message that follows the version exchange.
pub fn parse_security_types(b: &[u8], v: Version) -> Result<SecurityTypes, Needed> {
    if v.major == 3 && v.minor < 7 {
        // RFC 6143 7.1.2 (3.3): U32 security-type.
        let t = b.get(..4).ok_or_else(|| Needed::Size(4 - b.len()))?;
        let ty = u32::from_be_bytes([t[0], t[1], t[2], t[3]]);
        return Ok(SecurityTypes {
            types: vec![SecurityType(u8::try_from(ty).unwrap_or(0))],
            server_chose: true,
        });
    }
    let (&n, rest) = b.split_first().ok_or(Needed::Size(1))?;
    let list = rest
        .get(..usize::from(n))
        .ok_or_else(|| Needed::Size(usize::from(n) - rest.len()))?;
    Ok(SecurityTypes {
        types: list.iter().map(|&t| SecurityType(t)).collect(),
        server_chose: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake() {
        let (rest, v) = parse_version(b"RFB 003.008\n\x02\x01\x02").unwrap();
        assert_eq!(v, Version { major: 3, minor: 8 });
        let s = parse_security_types(rest, v).unwrap();
        assert_eq!(s.types, vec![SecurityType::NONE, SecurityType::VNC_AUTH]);
        assert_eq!(parse_version(b"RFB 00"), Err(Some(Needed::Size(6))));
        assert_eq!(parse_version(b"RFB x"), Err(None));
        assert_eq!(parse_version(b"GET /"), Err(None));
        let v33 = Version { major: 3, minor: 3 };
        let s = parse_security_types(&[0, 0, 0, 1], v33).unwrap();
        assert!(s.server_chose && s.types == vec![SecurityType::NONE]);
        assert_eq!(parse_security_types(&[3, 1], v), Err(Needed::Size(2)));
        assert!(SecurityType::VENCRYPT.encrypts() && !SecurityType::VNC_AUTH.encrypts());
    }
}
