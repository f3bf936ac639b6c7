//! VNC's Remote Framebuffer protocol handshake (RFC 6143 7.1): the protocol version both sides
//! send, the security types the server offers and the one the client picks, and for VeNCrypt
//! (type 19) the sub-types offered and chosen: VeNCrypt wraps the session in TLS for most
//! sub-types, but `Plain` sends the user name and password in clear and `TLSNone`/`X509None`
//! encrypt without authenticating.
//!
//! Inputs: the first bytes of each direction. Outputs: [`Version`], [`SecurityTypes`],
//! [`VencryptOffer`], [`VencryptChoice`]. No I/O, no panics. Limits: a server offers at most
//! 255 types and 255 VeNCrypt sub-types by construction.

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
    /// Bytes the message took (what follows is the chosen type's own handshake).
    pub len: usize,
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
            len: 4,
        });
    }
    let (&n, rest) = b.split_first().ok_or(Needed::Size(1))?;
    let list = rest
        .get(..usize::from(n))
        .ok_or_else(|| Needed::Size(usize::from(n) - rest.len()))?;
    Ok(SecurityTypes {
        types: list.iter().map(|&t| SecurityType(t)).collect(),
        server_chose: false,
        len: 1 + list.len(),
    })
}

/// VeNCrypt sub-types (VeNCrypt 0.2, as in TigerVNC, libvncserver and QEMU). Open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VencryptSubtype(pub u32);

impl VencryptSubtype {
    pub const PLAIN: VencryptSubtype = VencryptSubtype(256);
    pub const TLS_NONE: VencryptSubtype = VencryptSubtype(257);
    pub const TLS_VNC: VencryptSubtype = VencryptSubtype(258);
    pub const TLS_PLAIN: VencryptSubtype = VencryptSubtype(259);
    pub const X509_NONE: VencryptSubtype = VencryptSubtype(260);
    pub const X509_VNC: VencryptSubtype = VencryptSubtype(261);
    pub const X509_PLAIN: VencryptSubtype = VencryptSubtype(262);
    pub const TLS_SASL: VencryptSubtype = VencryptSubtype(263);
    pub const X509_SASL: VencryptSubtype = VencryptSubtype(264);

    pub fn name(self) -> &'static str {
        match self.0 {
            256 => "plain",
            257 => "tls_none",
            258 => "tls_vnc",
            259 => "tls_plain",
            260 => "x509_none",
            261 => "x509_vnc",
            262 => "x509_plain",
            263 => "tls_sasl",
            264 => "x509_sasl",
            _ => "other",
        }
    }

    /// The session runs inside TLS (every known sub-type but Plain).
    pub fn encrypts(self) -> bool {
        (257..=264).contains(&self.0)
    }

    /// No authentication at all, only encryption.
    pub fn no_auth(self) -> bool {
        self == Self::TLS_NONE || self == Self::X509_NONE
    }

    /// The user name and password are sent in clear (Plain: no TLS around them).
    pub fn cleartext_password(self) -> bool {
        self == Self::PLAIN
    }
}

/// What a VeNCrypt server sends after the client chose type 19: its version, its answer to
/// the client's version (0 = accepted) and, for 0.2, the sub-types it offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VencryptOffer {
    pub version: (u8, u8),
    pub status: u8,
    pub subtypes: Vec<VencryptSubtype>,
}

/// Parse the server's VeNCrypt messages (the bytes after its security-types message).
/// A version other than 0.2, or a refusal, has no sub-type list.
pub fn parse_vencrypt_offer(b: &[u8]) -> Result<VencryptOffer, Needed> {
    let [maj, min, status, rest @ ..] = b else {
        return Err(Needed::Size(3 - b.len()));
    };
    let mut o = VencryptOffer {
        version: (*maj, *min),
        status: *status,
        subtypes: Vec::new(),
    };
    if o.version != (0, 2) || o.status != 0 {
        return Ok(o);
    }
    let (&n, rest) = rest.split_first().ok_or(Needed::Size(1))?;
    let want = usize::from(n) * 4;
    let list = rest
        .get(..want)
        .ok_or_else(|| Needed::Size(want - rest.len()))?;
    o.subtypes = list
        .chunks_exact(4)
        .map(|c| VencryptSubtype(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
        .collect();
    Ok(o)
}

/// The client's VeNCrypt messages (the bytes after its type choice): its version and, for
/// 0.2, the sub-type it picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VencryptChoice {
    pub version: (u8, u8),
    pub subtype: Option<VencryptSubtype>,
}

/// Parse the client's VeNCrypt version and sub-type choice.
pub fn parse_vencrypt_choice(b: &[u8]) -> Result<VencryptChoice, Needed> {
    let [maj, min, rest @ ..] = b else {
        return Err(Needed::Size(2 - b.len()));
    };
    let version = (*maj, *min);
    if version != (0, 2) {
        return Ok(VencryptChoice {
            version,
            subtype: None,
        });
    }
    let t = rest.get(..4).ok_or_else(|| Needed::Size(4 - rest.len()))?;
    Ok(VencryptChoice {
        version,
        subtype: Some(VencryptSubtype(u32::from_be_bytes([
            t[0], t[1], t[2], t[3],
        ]))),
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

    // TigerVNC 1.12 Xvnc -SecurityTypes Plain and vncviewer (pcaps/legacy/vnc_plain.pcap):
    // server 00 02 | 00 | 01 00000100, client 00 02 | 00000100 then the Plain credentials.
    #[test]
    fn vencrypt_plain_and_x509vnc() {
        let o = parse_vencrypt_offer(&[0, 2, 0, 1, 0, 0, 1, 0]).unwrap();
        assert_eq!(o.version, (0, 2));
        assert_eq!(o.subtypes, vec![VencryptSubtype::PLAIN]);
        let c = parse_vencrypt_choice(&[0, 2, 0, 0, 1, 0, 0, 0, 0, 7]).unwrap();
        assert_eq!(c.subtype, Some(VencryptSubtype::PLAIN));
        assert!(VencryptSubtype::PLAIN.cleartext_password());
        assert!(!VencryptSubtype::PLAIN.encrypts());
        let c = parse_vencrypt_choice(&[0, 2, 0, 0, 1, 5]).unwrap();
        assert_eq!(c.subtype, Some(VencryptSubtype::X509_VNC));
        assert!(VencryptSubtype::X509_VNC.encrypts() && !VencryptSubtype::X509_VNC.no_auth());
        assert!(VencryptSubtype::TLS_NONE.encrypts() && VencryptSubtype::TLS_NONE.no_auth());
        assert_eq!(
            parse_vencrypt_offer(&[0, 2, 0, 2, 0, 0, 1]),
            Err(Needed::Size(5))
        );
        assert_eq!(parse_vencrypt_choice(&[0, 2, 0]), Err(Needed::Size(3)));
        assert_eq!(parse_vencrypt_choice(&[0]), Err(Needed::Size(1)));
        // another version, or a refusal: no sub-types
        let o = parse_vencrypt_offer(&[0, 1, 0]).unwrap();
        assert!(o.subtypes.is_empty());
        let o = parse_vencrypt_offer(&[0, 2, 0xff]).unwrap();
        assert!(o.subtypes.is_empty() && o.status == 0xff);
        assert_eq!(parse_vencrypt_choice(&[0, 1, 9]).unwrap().subtype, None);
        let st = parse_security_types(&[1, 19, 0, 2], Version { major: 3, minor: 8 }).unwrap();
        assert_eq!(st.len, 2);
    }
}
