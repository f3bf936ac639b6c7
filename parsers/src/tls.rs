//! TLS / SSL handshake metadata: record headers, ClientHello, ServerHello, JA3/JA3S and JA4.
//!
//! Inputs: bytes of one direction of a TCP stream. Outputs: owned [`ClientHello`] /
//! [`ServerHello`] values, ready to be logged and fingerprinted. This module never decrypts,
//! never looks past the hellos, keeps no state, and never panics on any input.
//!
//! Streaming model (the caller keeps the state; see `src/protocols/tls.rs` in the sensor):
//! 1. [`parse_record_header`] on the first bytes of a record tells the content type and the
//!    body length (5-byte TLS header, or the 2-byte SSLv2 header when the high bit is set);
//! 2. the caller concatenates the bodies of consecutive handshake records (a handshake message
//!    may span several records, and one record may hold several messages);
//! 3. [`parse_handshake_header`] on that concatenation says how long the next message is, so
//!    the caller can refuse it before buffering; [`parse_handshake`] decodes it;
//! 4. an SSLv2 record body goes to [`parse_sslv2_message`] instead.
//!
//! Every function separates "need more bytes" ([`TlsError::Incomplete`], with the exact
//! shortfall when a length field gives it) from "these bytes are wrong" (the other variants).
//!
//! Limits: records over [`MAX_RECORD_LEN`] are refused ([`TlsError::RecordTooLarge`]); the
//! decoded lists are cut at the `MAX_*` constants below (the hello says so in `truncated`),
//! so the owned values are small whatever the input. Vectors built by `tls-parser` while
//! decoding are bounded by the length of the input slice, never by a length field alone.
//!
//! Fingerprints: [`ClientHello::ja3`] and [`ServerHello::ja3s`] follow Salesforce's JA3 (GREASE
//! values removed), [`ClientHello::ja4`] follows FoxIO's JA4 technical details (`ja4` only; the
//! other JA4+ methods are under a different licence and are not implemented here).

use md5::{Digest as _, Md5};
use sha2::Sha256;
use thiserror::Error;
use tls_parser::{
    parse_tls_client_hello_extension, parse_tls_handshake_client_hello,
    parse_tls_handshake_server_hello, parse_tls_record_header, parse_tls_server_hello_extension,
    SNIType, TlsExtension,
};

use crate::Needed;

/// TLS record header length: type (1), version (2), length (2). RFC 8446 §5.1.
pub const RECORD_HEADER_LEN: usize = 5;
/// SSLv2 record header length (2-byte form, high bit set). SSL 2.0 draft §"Record Header".
pub const SSLV2_RECORD_HEADER_LEN: usize = 2;
/// Handshake message header length: msg_type (1), length (3). RFC 8446 §4.
pub const HANDSHAKE_HEADER_LEN: usize = 4;
/// Largest record body accepted: TLSCiphertext may carry 2^14 + 2048 bytes (RFC 5246 §6.2.3);
/// anything longer is not TLS (or is hostile).
pub const MAX_RECORD_LEN: usize = (1 << 14) + 2048;

/// Cipher suites kept from a ClientHello. Real clients offer well under 100; an SSLv2 hello
/// carries fewer still.
pub const MAX_CIPHER_SUITES: usize = 512;
/// Compression methods kept (real clients offer 1 to 3).
pub const MAX_COMPRESSION_METHODS: usize = 16;
/// Extension types kept, in order (real clients send up to ~25).
pub const MAX_EXTENSIONS: usize = 128;
/// Supported groups kept.
pub const MAX_GROUPS: usize = 64;
/// EC point formats kept.
pub const MAX_EC_POINT_FORMATS: usize = 16;
/// Signature algorithms kept.
pub const MAX_SIG_ALGS: usize = 64;
/// supported_versions entries kept.
pub const MAX_SUPPORTED_VERSIONS: usize = 32;
/// ALPN protocol names kept.
pub const MAX_ALPN: usize = 16;
/// Bytes kept of one ALPN protocol name (the wire limit is 255).
pub const MAX_ALPN_LEN: usize = 64;
/// Bytes kept of the SNI host name (a DNS name is at most 253 bytes).
pub const MAX_SNI_LEN: usize = 255;

/// Record content type, open so that an unknown value is reported, not lost. RFC 8446 §5.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentType(pub u8);

impl ContentType {
    pub const CHANGE_CIPHER_SPEC: ContentType = ContentType(20);
    pub const ALERT: ContentType = ContentType(21);
    pub const HANDSHAKE: ContentType = ContentType(22);
    pub const APPLICATION_DATA: ContentType = ContentType(23);
    pub const HEARTBEAT: ContentType = ContentType(24);

    /// One of the five types defined for TLS 1.0 to 1.3.
    pub fn is_known(self) -> bool {
        (20..=24).contains(&self.0)
    }
}

/// Handshake message type, open. RFC 8446 §4, RFC 5246 §7.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HandshakeType(pub u8);

impl HandshakeType {
    pub const HELLO_REQUEST: HandshakeType = HandshakeType(0);
    pub const CLIENT_HELLO: HandshakeType = HandshakeType(1);
    pub const SERVER_HELLO: HandshakeType = HandshakeType(2);
    pub const CERTIFICATE: HandshakeType = HandshakeType(11);
    pub const SERVER_KEY_EXCHANGE: HandshakeType = HandshakeType(12);
    pub const SERVER_HELLO_DONE: HandshakeType = HandshakeType(14);
    pub const CLIENT_KEY_EXCHANGE: HandshakeType = HandshakeType(16);
    pub const FINISHED: HandshakeType = HandshakeType(20);
}

/// SSLv2 message types that may appear in the clear (SSL 2.0 draft, appendix).
pub const SSLV2_MT_CLIENT_HELLO: u8 = 1;
pub const SSLV2_MT_SERVER_HELLO: u8 = 4;

/// Protocol version numbers as they appear on the wire.
pub mod version {
    pub const SSL_2_0: u16 = 0x0002;
    pub const SSL_3_0: u16 = 0x0300;
    pub const TLS_1_0: u16 = 0x0301;
    pub const TLS_1_1: u16 = 0x0302;
    pub const TLS_1_2: u16 = 0x0303;
    pub const TLS_1_3: u16 = 0x0304;
}

/// Extension types this module decodes. IANA "TLS ExtensionType Values".
pub mod ext {
    pub const SERVER_NAME: u16 = 0;
    pub const SUPPORTED_GROUPS: u16 = 10;
    pub const EC_POINT_FORMATS: u16 = 11;
    pub const SIGNATURE_ALGORITHMS: u16 = 13;
    pub const ALPN: u16 = 16;
    pub const SUPPORTED_VERSIONS: u16 = 43;
}

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TlsError {
    /// The input ends before the structure does; more bytes may complete it.
    #[error("incomplete: {0:?} more bytes needed")]
    Incomplete(Needed),
    /// The first byte is not a TLS content type (20..=24) nor an SSLv2 header.
    #[error("unknown record content type {0}")]
    UnknownContentType(u8),
    /// The record version is not SSL 3.0 / TLS 1.x (major 3, minor 0..=4).
    #[error("record version {0:#06x} is not SSL 3.0 or TLS")]
    BadRecordVersion(u16),
    /// A length field is over a limit of this module.
    #[error("record length {len} is over the limit {cap}")]
    RecordTooLarge { len: usize, cap: usize },
    /// The message is not the kind this function decodes (e.g. an SSLv2 CLIENT-MASTER-KEY).
    #[error("unexpected {what} type {value}")]
    UnexpectedType { what: &'static str, value: u8 },
    /// A ServerHello version that no version of TLS uses in that field.
    #[error("unsupported ServerHello version {0:#06x}")]
    UnsupportedVersion(u16),
    /// The bytes contradict the structure: a length past the end, an odd list, etc.
    #[error("malformed {what} at offset {offset}")]
    Malformed { what: &'static str, offset: usize },
}

/// A record header, TLS or SSLv2.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// For an SSLv2 record: [`ContentType::HANDSHAKE`] (only handshake messages travel in the
    /// clear); the message type is the first body byte.
    pub content_type: ContentType,
    /// Record-layer version; `0x0002` for SSLv2 (which has none in its record header).
    pub version: u16,
    /// Body length, after the header.
    pub len: usize,
    /// 5, or 2 for SSLv2.
    pub header_len: usize,
    /// The 2-byte SSLv2 header form (high bit of the first byte set).
    pub sslv2: bool,
}

impl RecordHeader {
    /// Header plus body.
    pub fn total_len(&self) -> usize {
        self.header_len.saturating_add(self.len)
    }
}

/// A decoded ClientHello (TLS or SSLv2). Lists are in wire order, GREASE included, each cut at
/// its `MAX_*` constant.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientHello {
    /// Version of the record that carried the hello (`0x0002` for SSLv2).
    pub record_version: u16,
    /// `legacy_version` / `client_version` of the hello.
    pub version: u16,
    /// Cipher suites. For SSLv2, the 3-byte specs of the form `0x00XXXX` mapped to `0xXXXX`
    /// (the others are only in `sslv2_cipher_specs`).
    pub cipher_suites: Vec<u16>,
    pub compression: Vec<u8>,
    /// Extension types in order.
    pub extensions: Vec<u16>,
    /// server_name host name (lossy UTF-8).
    pub sni: Option<String>,
    /// ALPN protocol names offered (lossy UTF-8).
    pub alpn: Vec<String>,
    /// First and last raw byte of the first ALPN name (JA4 needs the bytes, not the lossy
    /// text); `None` if there is no ALPN name or it is empty.
    pub alpn_first_ends: Option<(u8, u8)>,
    pub supported_versions: Vec<u16>,
    /// supported_groups (elliptic_curves).
    pub groups: Vec<u16>,
    pub ec_point_formats: Vec<u8>,
    pub sig_algs: Vec<u16>,
    /// An SSLv2 (or SSLv2-compatible) CLIENT-HELLO.
    pub sslv2: bool,
    /// SSLv2 only: all 3-byte cipher specs, in order.
    pub sslv2_cipher_specs: Vec<u32>,
    /// Some list was longer than its cap and was cut.
    pub truncated: bool,
}

/// A decoded ServerHello (TLS, or an SSLv2 SERVER-HELLO).
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerHello {
    pub record_version: u16,
    /// `legacy_version` / `server_version` (`0x0303` in TLS 1.3: see `selected_version`).
    pub version: u16,
    /// The chosen suite. SSLv2 has none (the client picks in CLIENT-MASTER-KEY): 0 there.
    pub cipher_suite: u16,
    pub compression: u8,
    pub extensions: Vec<u16>,
    /// supported_versions extension (TLS 1.3).
    pub selected_version: Option<u16>,
    /// ALPN protocol chosen.
    pub alpn: Option<String>,
    pub sslv2: bool,
    /// SSLv2 only: the cipher specs the server accepts, in order.
    pub sslv2_cipher_specs: Vec<u32>,
    /// A TLS 1.3 HelloRetryRequest: a ServerHello whose random is
    /// [`HELLO_RETRY_REQUEST_RANDOM`] (RFC 8446 §4.1.3). The server asks the client for a new
    /// ClientHello (another key share); the real ServerHello follows it.
    pub hello_retry_request: bool,
    pub truncated: bool,
}

/// The `random` of a HelloRetryRequest: SHA-256 of "HelloRetryRequest" (RFC 8446 §4.1.3).
pub const HELLO_RETRY_REQUEST_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// A decoded handshake message.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    ClientHello(ClientHello),
    ServerHello(ServerHello),
    /// Any other message: only its type and length are reported.
    Other {
        msg_type: HandshakeType,
        len: usize,
    },
}

/// A JA3 or JA3S fingerprint: the string and its MD5 in lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ja3 {
    pub string: String,
    pub hash: String,
}

/// GREASE values (RFC 8701): 0x0a0a, 0x1a1a, ..., 0xfafa.
pub fn is_grease(v: u16) -> bool {
    (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff)
}

/// The IANA name of a cipher suite (`TLS_RSA_WITH_RC4_128_SHA`), if it has one.
pub fn cipher_suite_name(v: u16) -> Option<&'static str> {
    tls_parser::TlsCipherSuite::from_id(v).map(|c| c.name)
}

/// Human name of a protocol version, as the event log spells it; `None` if unknown.
pub fn version_name(v: u16) -> Option<&'static str> {
    Some(match v {
        version::SSL_2_0 => "SSLv2",
        version::SSL_3_0 => "SSLv3",
        version::TLS_1_0 => "TLS 1.0",
        version::TLS_1_1 => "TLS 1.1",
        version::TLS_1_2 => "TLS 1.2",
        version::TLS_1_3 => "TLS 1.3",
        _ => return None,
    })
}

fn need(have: usize, want: usize) -> TlsError {
    TlsError::Incomplete(Needed::Size(want.saturating_sub(have)))
}

/// Reads one record header at the start of `input`.
///
/// Accepts the 5-byte TLS header (content type 20..=24, version 0x0300..=0x0304, length up to
/// [`MAX_RECORD_LEN`]) and the 2-byte SSLv2 header (first byte with the high bit set; its
/// 15-bit length is checked against the same limit). Recoverable failures: `Incomplete`
/// with the number of header bytes missing. Anything else means the stream is not TLS here.
pub fn parse_record_header(input: &[u8]) -> Result<RecordHeader, TlsError> {
    let Some(&b0) = input.first() else {
        return Err(TlsError::Incomplete(Needed::Unknown));
    };
    if b0 & 0x80 != 0 {
        // SSLv2 2-byte header: bit 15 set, bits 0..14 = record length (no padding).
        if input.len() < SSLV2_RECORD_HEADER_LEN {
            return Err(need(input.len(), SSLV2_RECORD_HEADER_LEN));
        }
        let len = (usize::from(b0 & 0x7f) << 8) | usize::from(input[1]);
        if len > MAX_RECORD_LEN {
            return Err(TlsError::RecordTooLarge {
                len,
                cap: MAX_RECORD_LEN,
            });
        }
        return Ok(RecordHeader {
            content_type: ContentType::HANDSHAKE,
            version: version::SSL_2_0,
            len,
            header_len: SSLV2_RECORD_HEADER_LEN,
            sslv2: true,
        });
    }
    if !ContentType(b0).is_known() {
        return Err(TlsError::UnknownContentType(b0));
    }
    if input.len() >= 2 && input[1] != 3 {
        return Err(TlsError::BadRecordVersion(u16::from(input[1]) << 8));
    }
    if input.len() >= 3 && input[2] > 4 {
        return Err(TlsError::BadRecordVersion(0x0300 | u16::from(input[2])));
    }
    if input.len() < RECORD_HEADER_LEN {
        return Err(need(input.len(), RECORD_HEADER_LEN));
    }
    let (_, hdr) =
        parse_tls_record_header(&input[..RECORD_HEADER_LEN]).map_err(|_| TlsError::Malformed {
            what: "record header",
            offset: 0,
        })?;
    let len = usize::from(hdr.len);
    if len > MAX_RECORD_LEN {
        return Err(TlsError::RecordTooLarge {
            len,
            cap: MAX_RECORD_LEN,
        });
    }
    Ok(RecordHeader {
        content_type: ContentType(hdr.record_type.0),
        version: hdr.version.0,
        len,
        header_len: RECORD_HEADER_LEN,
        sslv2: false,
    })
}

/// Whether `first_bytes` (the first bytes of one direction of a stream) start a TLS or SSL
/// handshake: `Some(true)` for a handshake record carrying a ClientHello or ServerHello (TLS
/// `0x16 0x03 0x00..=0x04`, or an SSLv2 CLIENT-HELLO / SERVER-HELLO), `Some(false)` as soon as a
/// byte rules it out, `None` while more bytes are needed (at most 7).
pub fn looks_like_tls(first_bytes: &[u8]) -> Option<bool> {
    let b = first_bytes;
    let &b0 = b.first()?;
    if b0 & 0x80 != 0 {
        // SSLv2: len(2) msg_type(1) then CLIENT-HELLO: version(2); SERVER-HELLO:
        // session_id_hit(1) certificate_type(1) version(2).
        let len = b
            .get(1)
            .map(|&b1| (usize::from(b0 & 0x7f) << 8) | usize::from(b1));
        if let Some(len) = len {
            // Smallest CLIENT-HELLO: type, version, 3 lengths, one cipher spec, 16-byte challenge.
            if !(9..=MAX_RECORD_LEN).contains(&len) {
                return Some(false);
            }
        }
        let &mt = b.get(2)?;
        let vpos = match mt {
            SSLV2_MT_CLIENT_HELLO => 3,
            SSLV2_MT_SERVER_HELLO => 5,
            _ => return Some(false),
        };
        let hi = *b.get(vpos)?;
        let lo = *b.get(vpos + 1)?;
        let v = u16::from_be_bytes([hi, lo]);
        return Some(v == version::SSL_2_0 || (0x0300..=0x0304).contains(&v));
    }
    if b0 != ContentType::HANDSHAKE.0 {
        return Some(false);
    }
    if *b.get(1)? != 3 {
        return Some(false);
    }
    if *b.get(2)? > 4 {
        return Some(false);
    }
    let len = usize::from(u16::from_be_bytes([*b.get(3)?, *b.get(4)?]));
    if !(HANDSHAKE_HEADER_LEN..=MAX_RECORD_LEN).contains(&len) {
        return Some(false);
    }
    let &ht = b.get(5)?;
    Some(ht == HandshakeType::CLIENT_HELLO.0 || ht == HandshakeType::SERVER_HELLO.0)
}

/// Reads a handshake message header: `(type, body length)`. `Incomplete` if fewer than 4 bytes.
pub fn parse_handshake_header(input: &[u8]) -> Result<(HandshakeType, usize), TlsError> {
    if input.len() < HANDSHAKE_HEADER_LEN {
        return Err(need(input.len(), HANDSHAKE_HEADER_LEN));
    }
    let len = (usize::from(input[1]) << 16) | (usize::from(input[2]) << 8) | usize::from(input[3]);
    Ok((HandshakeType(input[0]), len))
}

/// Decodes the handshake message at the start of `input` (the concatenated bodies of
/// handshake records) and returns the bytes after it.
///
/// `record_version` is the version of the record that carried the message's first byte; it is
/// only copied into the result. Recoverable failure: `Incomplete` with the exact shortfall
/// (from the message length). Messages other than the two hellos come back as
/// [`Handshake::Other`] without being decoded.
pub fn parse_handshake(input: &[u8], record_version: u16) -> Result<(&[u8], Handshake), TlsError> {
    let (ty, len) = parse_handshake_header(input)?;
    let total = HANDSHAKE_HEADER_LEN.saturating_add(len);
    if input.len() < total {
        return Err(need(input.len(), total));
    }
    let body = &input[HANDSHAKE_HEADER_LEN..total];
    let rest = &input[total..];
    let msg = match ty {
        HandshakeType::CLIENT_HELLO => {
            Handshake::ClientHello(parse_client_hello_body(body, record_version)?)
        }
        HandshakeType::SERVER_HELLO => {
            Handshake::ServerHello(parse_server_hello_body(body, record_version)?)
        }
        _ => Handshake::Other { msg_type: ty, len },
    };
    Ok((rest, msg))
}

/// Offset of `rest` within `whole`, for error reports (`rest` is a suffix of `whole`).
fn offset_of(whole: &[u8], rest: &[u8]) -> usize {
    whole.len().saturating_sub(rest.len())
}

/// How many extension headers `block` holds (at most [`MAX_EXTENSIONS`]): what the extension
/// list is sized to.
fn count_extensions(mut block: &[u8]) -> usize {
    let mut n = 0;
    while n < MAX_EXTENSIONS {
        let Some(hdr) = block.first_chunk::<4>() else {
            break;
        };
        let len = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
        n += 1;
        block = block.get(4 + len..).unwrap_or_default();
    }
    n
}

/// Pushes `v` unless `list` is full; returns false (and leaves `list` as is) when full.
fn push_capped<T>(list: &mut Vec<T>, v: T, cap: usize) -> bool {
    if list.len() < cap {
        list.push(v);
        true
    } else {
        false
    }
}

fn lossy(bytes: &[u8], cap: usize) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(cap)]).into_owned()
}

/// One raw extension: `(type, whole extension bytes incl. its 4-byte header)`.
/// Walks an extensions block (`extensions<..>` without its 2-byte length) strictly.
fn walk_extensions(
    block: &[u8],
    base: usize,
    mut f: impl FnMut(u16, &[u8]),
) -> Result<(), TlsError> {
    let mut i = 0usize;
    while i < block.len() {
        let Some(h) = block.get(i..i + 4) else {
            return Err(TlsError::Malformed {
                what: "extension header",
                offset: base + i,
            });
        };
        let ty = u16::from_be_bytes([h[0], h[1]]);
        let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
        let end = i + 4 + len;
        let Some(raw) = block.get(i..end) else {
            return Err(TlsError::Malformed {
                what: "extension length",
                offset: base + i + 2,
            });
        };
        f(ty, raw);
        i = end;
    }
    Ok(())
}

/// The extensions block after the fixed part of a hello: `rest` must be empty or a
/// `uint16`-length-prefixed block that fills it exactly.
fn split_ext_block(rest: &[u8], base: usize) -> Result<&[u8], TlsError> {
    match rest.len() {
        0 => Ok(rest),
        1 => Err(TlsError::Malformed {
            what: "extensions length",
            offset: base,
        }),
        _ => {
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            if rest.len() - 2 != len {
                return Err(TlsError::Malformed {
                    what: "extensions length",
                    offset: base,
                });
            }
            Ok(&rest[2..])
        }
    }
}

/// Decodes a ClientHello body (after the 4-byte handshake header). RFC 8446 §4.1.2,
/// RFC 5246 §7.4.1.2. The fixed part is read by `tls-parser`; extensions are walked here so
/// that every type is listed in order even when one of them does not decode (its content is
/// then ignored: lax).
pub fn parse_client_hello_body(body: &[u8], record_version: u16) -> Result<ClientHello, TlsError> {
    // client_version(2) random(32) session_id<0..32> cipher_suites<2..2^16-2>
    // compression_methods<1..2^8-1> [extensions<0..2^16-1>]
    let (rest, ch) = parse_tls_handshake_client_hello(body).map_err(|e| match e {
        tls_parser::nom::Err::Error(e) | tls_parser::nom::Err::Failure(e) => TlsError::Malformed {
            what: "ClientHello",
            offset: offset_of(body, e.input),
        },
        tls_parser::nom::Err::Incomplete(_) => TlsError::Malformed {
            what: "ClientHello",
            offset: body.len(),
        },
    })?;
    let mut out = ClientHello {
        record_version,
        version: ch.version.0,
        sslv2: false,
        ..ClientHello::default()
    };
    // Each list sized once (to what it will hold, within its cap) rather than grown by doubling.
    out.cipher_suites
        .reserve_exact(ch.ciphers.len().min(MAX_CIPHER_SUITES));
    out.compression
        .reserve_exact(ch.comp.len().min(MAX_COMPRESSION_METHODS));
    for c in &ch.ciphers {
        if !push_capped(&mut out.cipher_suites, c.0, MAX_CIPHER_SUITES) {
            out.truncated = true;
            break;
        }
    }
    for c in &ch.comp {
        if !push_capped(&mut out.compression, c.0, MAX_COMPRESSION_METHODS) {
            out.truncated = true;
            break;
        }
    }
    let block = match ch.ext {
        Some(block) => {
            if !rest.is_empty() {
                return Err(TlsError::Malformed {
                    what: "bytes after ClientHello",
                    offset: offset_of(body, rest),
                });
            }
            block
        }
        // tls-parser returns no extensions when their length overruns: say so.
        None => split_ext_block(rest, offset_of(body, rest))?,
    };
    let base = offset_of(body, block);
    out.extensions.reserve_exact(count_extensions(block));
    walk_extensions(block, base, |ty, raw| {
        if !push_capped(&mut out.extensions, ty, MAX_EXTENSIONS) {
            out.truncated = true;
            return;
        }
        let Ok((_, ext)) = parse_tls_client_hello_extension(raw) else {
            return;
        };
        match ext {
            TlsExtension::SNI(names) if out.sni.is_none() => {
                out.sni = names
                    .iter()
                    .find(|(t, _)| *t == SNIType::HostName)
                    .map(|(_, n)| lossy(n, MAX_SNI_LEN));
            }
            TlsExtension::ALPN(protos) => {
                if out.alpn.is_empty() {
                    out.alpn_first_ends =
                        protos.first().and_then(|p| Some((*p.first()?, *p.last()?)));
                }
                for p in protos {
                    if !push_capped(&mut out.alpn, lossy(p, MAX_ALPN_LEN), MAX_ALPN) {
                        out.truncated = true;
                        break;
                    }
                }
            }
            TlsExtension::SupportedVersions(vs) => {
                out.supported_versions.reserve_exact(
                    vs.len()
                        .min(MAX_SUPPORTED_VERSIONS.saturating_sub(out.supported_versions.len())),
                );
                for v in vs {
                    if !push_capped(&mut out.supported_versions, v.0, MAX_SUPPORTED_VERSIONS) {
                        out.truncated = true;
                        break;
                    }
                }
            }
            TlsExtension::EllipticCurves(gs) => {
                out.groups
                    .reserve_exact(gs.len().min(MAX_GROUPS.saturating_sub(out.groups.len())));
                for g in gs {
                    if !push_capped(&mut out.groups, g.0, MAX_GROUPS) {
                        out.truncated = true;
                        break;
                    }
                }
            }
            TlsExtension::EcPointFormats(fs) => {
                out.ec_point_formats.reserve_exact(
                    fs.len()
                        .min(MAX_EC_POINT_FORMATS.saturating_sub(out.ec_point_formats.len())),
                );
                for &f in fs {
                    if !push_capped(&mut out.ec_point_formats, f, MAX_EC_POINT_FORMATS) {
                        out.truncated = true;
                        break;
                    }
                }
            }
            TlsExtension::SignatureAlgorithms(ss) => {
                out.sig_algs.reserve_exact(
                    ss.len()
                        .min(MAX_SIG_ALGS.saturating_sub(out.sig_algs.len())),
                );
                for s in ss {
                    if !push_capped(&mut out.sig_algs, s, MAX_SIG_ALGS) {
                        out.truncated = true;
                        break;
                    }
                }
            }
            _ => {}
        }
    })?;
    Ok(out)
}

/// Decodes a ServerHello body (after the 4-byte handshake header). RFC 8446 §4.1.3,
/// RFC 5246 §7.4.1.3. Versions 0x0300..=0x0303 in `legacy_version` (TLS 1.3 puts 0x0303 there
/// and the real one in supported_versions); others give [`TlsError::UnsupportedVersion`].
/// A HelloRetryRequest has the same shape and decodes as a ServerHello.
pub fn parse_server_hello_body(body: &[u8], record_version: u16) -> Result<ServerHello, TlsError> {
    // server_version(2) random(32) session_id<0..32> cipher_suite(2) compression_method(1)
    // [extensions<0..2^16-1>]
    if body.len() >= 2 {
        let v = u16::from_be_bytes([body[0], body[1]]);
        if !(version::SSL_3_0..=version::TLS_1_2).contains(&v) {
            return Err(TlsError::UnsupportedVersion(v));
        }
    }
    let (rest, sh) = parse_tls_handshake_server_hello(body).map_err(|e| match e {
        tls_parser::nom::Err::Error(e) | tls_parser::nom::Err::Failure(e) => TlsError::Malformed {
            what: "ServerHello",
            offset: offset_of(body, e.input),
        },
        tls_parser::nom::Err::Incomplete(_) => TlsError::Malformed {
            what: "ServerHello",
            offset: body.len(),
        },
    })?;
    let mut out = ServerHello {
        record_version,
        version: sh.version.0,
        cipher_suite: sh.cipher.0,
        compression: sh.compression.0,
        hello_retry_request: sh.random == HELLO_RETRY_REQUEST_RANDOM,
        ..ServerHello::default()
    };
    let block = match sh.ext {
        Some(block) => {
            if !rest.is_empty() {
                return Err(TlsError::Malformed {
                    what: "bytes after ServerHello",
                    offset: offset_of(body, rest),
                });
            }
            block
        }
        // tls-parser leaves SSL 3.0 extensions unparsed (RFC 5746 renegotiation_info is sent
        // by SSL 3.0 servers too), and drops an overrunning block: read the rest here.
        None => split_ext_block(rest, offset_of(body, rest))?,
    };
    let base = offset_of(body, block);
    out.extensions.reserve_exact(count_extensions(block));
    walk_extensions(block, base, |ty, raw| {
        if !push_capped(&mut out.extensions, ty, MAX_EXTENSIONS) {
            out.truncated = true;
            return;
        }
        let Ok((_, ext)) = parse_tls_server_hello_extension(raw) else {
            return;
        };
        match ext {
            TlsExtension::SupportedVersions(vs) if out.selected_version.is_none() => {
                out.selected_version = vs.first().map(|v| v.0);
            }
            TlsExtension::ALPN(protos) if out.alpn.is_none() => {
                out.alpn = protos.first().map(|p| lossy(p, MAX_ALPN_LEN));
            }
            _ => {}
        }
    })?;
    Ok(out)
}

/// Decodes an SSLv2 record body (after the 2-byte header): a CLIENT-HELLO or a SERVER-HELLO.
/// SSL 2.0 draft (Hickman 1995) §2.5; SSLv2-compatible hellos (RFC 5246 appendix E.2) carry
/// version 0x0300..=0x0303 and TLS suites as `0x00XXXX` specs. Other message types give
/// [`TlsError::UnexpectedType`]; a short body gives `Incomplete`.
pub fn parse_sslv2_message(body: &[u8]) -> Result<Handshake, TlsError> {
    let Some(&mt) = body.first() else {
        return Err(need(0, 1));
    };
    let be16 = |o: usize| -> Result<u16, TlsError> {
        match body.get(o..o + 2) {
            Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
            None => Err(need(body.len(), o + 2)),
        }
    };
    let len16 = |o: usize| be16(o).map(usize::from);
    match mt {
        SSLV2_MT_CLIENT_HELLO => {
            // msg_type(1) version(2) cipher_specs_length(2) session_id_length(2)
            // challenge_length(2) cipher_specs session_id challenge
            let v = be16(1)?;
            let cs_len = len16(3)?;
            let sid_len = len16(5)?;
            let ch_len = len16(7)?;
            if cs_len % 3 != 0 {
                return Err(TlsError::Malformed {
                    what: "SSLv2 cipher specs length",
                    offset: 3,
                });
            }
            let total = 9usize
                .saturating_add(cs_len)
                .saturating_add(sid_len)
                .saturating_add(ch_len);
            if body.len() < total {
                return Err(need(body.len(), total));
            }
            let mut out = ClientHello {
                record_version: version::SSL_2_0,
                version: v,
                sslv2: true,
                ..ClientHello::default()
            };
            sslv2_specs(
                &body[9..9 + cs_len],
                &mut out.sslv2_cipher_specs,
                &mut out.truncated,
            );
            for &s in &out.sslv2_cipher_specs {
                if s >> 16 == 0 && !push_capped(&mut out.cipher_suites, s as u16, MAX_CIPHER_SUITES)
                {
                    out.truncated = true;
                    break;
                }
            }
            Ok(Handshake::ClientHello(out))
        }
        SSLV2_MT_SERVER_HELLO => {
            // msg_type(1) session_id_hit(1) certificate_type(1) version(2)
            // certificate_length(2) cipher_specs_length(2) connection_id_length(2)
            // certificate cipher_specs connection_id
            let v = be16(3)?;
            let cert_len = len16(5)?;
            let cs_len = len16(7)?;
            let cid_len = len16(9)?;
            if cs_len % 3 != 0 {
                return Err(TlsError::Malformed {
                    what: "SSLv2 cipher specs length",
                    offset: 7,
                });
            }
            let total = 11usize
                .saturating_add(cert_len)
                .saturating_add(cs_len)
                .saturating_add(cid_len);
            if body.len() < total {
                return Err(need(body.len(), total));
            }
            let mut out = ServerHello {
                record_version: version::SSL_2_0,
                version: v,
                sslv2: true,
                ..ServerHello::default()
            };
            let cs = &body[11 + cert_len..11 + cert_len + cs_len];
            sslv2_specs(cs, &mut out.sslv2_cipher_specs, &mut out.truncated);
            Ok(Handshake::ServerHello(out))
        }
        other => Err(TlsError::UnexpectedType {
            what: "SSLv2 message",
            value: other,
        }),
    }
}

fn sslv2_specs(bytes: &[u8], out: &mut Vec<u32>, truncated: &mut bool) {
    for c in bytes.chunks_exact(3) {
        let spec = (u32::from(c[0]) << 16) | (u32::from(c[1]) << 8) | u32::from(c[2]);
        if !push_capped(out, spec, MAX_CIPHER_SUITES) {
            *truncated = true;
            break;
        }
    }
}

fn join_dec<'a, T: Copy + Into<u32> + 'a>(items: impl Iterator<Item = &'a T>) -> String {
    let mut s = String::new();
    for (i, v) in items.enumerate() {
        if i > 0 {
            s.push('-');
        }
        push_dec(&mut s, (*v).into());
    }
    s
}

/// Appends `v` in decimal (as `Display` writes it, without going through the formatter: JA3
/// strings are built for every hello).
pub(crate) fn push_dec(s: &mut String, v: u32) {
    let mut buf = [0u8; 10];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for &b in &buf[i..] {
        s.push(char::from(b));
    }
}

/// Appends `v` as 4 lowercase hex digits (`{v:04x}`).
pub fn push_hex4(s: &mut String, v: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for shift in [12, 8, 4, 0] {
        s.push(char::from(HEX[usize::from((v >> shift) & 0xf)]));
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

fn md5_hex(s: &str) -> String {
    hex_lower(&Md5::digest(s.as_bytes()))
}

/// First 12 hex characters of SHA-256 (JA4's truncated hash).
fn sha256_12(s: &str) -> String {
    let mut h = hex_lower(&Sha256::digest(s.as_bytes()));
    h.truncate(12);
    h
}

fn join_hex4<'a>(items: impl Iterator<Item = &'a u16>) -> String {
    let mut s = String::new();
    for (i, v) in items.enumerate() {
        if i > 0 {
            s.push(',');
        }
        push_hex4(&mut s, *v);
    }
    s
}

/// JA4 version code. FoxIO JA4 "TLS and DTLS Version".
fn ja4_version(v: u16) -> &'static str {
    match v {
        version::TLS_1_3 => "13",
        version::TLS_1_2 => "12",
        version::TLS_1_1 => "11",
        version::TLS_1_0 => "10",
        version::SSL_3_0 => "s3",
        version::SSL_2_0 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// JA4 ALPN code: first and last characters of the first ALPN value, or of its hex form when
/// either end is not ASCII alphanumeric; "00" when there is none.
/// Takes the first and last byte of that value: the first hex character is the high nibble
/// of the first byte, the last one the low nibble of the last byte.
fn ja4_alpn(ends: Option<(u8, u8)>) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let Some((f, l)) = ends else {
        return "00".to_string();
    };
    if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() {
        format!("{}{}", char::from(f), char::from(l))
    } else {
        format!(
            "{}{}",
            char::from(HEX[usize::from(f >> 4)]),
            char::from(HEX[usize::from(l & 0xf)])
        )
    }
}

impl ClientHello {
    /// JA3: `SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats` in
    /// decimal, `-`-separated, GREASE removed; hash = MD5 of the string. `None` for SSLv2
    /// hellos, which JA3 does not define.
    pub fn ja3(&self) -> Option<Ja3> {
        if self.sslv2 {
            return None;
        }
        let nogrease = |v: &&u16| !is_grease(**v);
        let string = format!(
            "{},{},{},{},{}",
            self.version,
            join_dec(self.cipher_suites.iter().filter(nogrease)),
            join_dec(self.extensions.iter().filter(nogrease)),
            join_dec(self.groups.iter().filter(nogrease)),
            join_dec(self.ec_point_formats.iter()),
        );
        let hash = md5_hex(&string);
        Some(Ja3 { string, hash })
    }

    /// JA4 (the `ja4` fingerprint only) for TLS over TCP (`t` prefix). `None` for SSLv2.
    pub fn ja4(&self) -> Option<String> {
        self.ja4_with_transport('t')
    }

    /// JA4 with the given transport letter: `t` (TCP), `q` (QUIC) or `d` (DTLS).
    pub fn ja4_with_transport(&self, transport: char) -> Option<String> {
        if self.sslv2 {
            return None;
        }
        let version = self
            .supported_versions
            .iter()
            .copied()
            .filter(|v| !is_grease(*v))
            .max()
            .unwrap_or(self.version);
        let ciphers: Vec<u16> = self
            .cipher_suites
            .iter()
            .copied()
            .filter(|v| !is_grease(*v))
            .collect();
        let exts: Vec<u16> = self
            .extensions
            .iter()
            .copied()
            .filter(|v| !is_grease(*v))
            .collect();
        let sni = if exts.contains(&ext::SERVER_NAME) {
            'd'
        } else {
            'i'
        };
        let a = format!(
            "{transport}{}{sni}{:02}{:02}{}",
            ja4_version(version),
            ciphers.len().min(99),
            exts.len().min(99),
            ja4_alpn(self.alpn_first_ends.or_else(|| {
                let a = self.alpn.first()?.as_bytes();
                Some((*a.first()?, *a.last()?))
            })),
        );
        let mut sorted_c = ciphers;
        sorted_c.sort_unstable();
        let b = if sorted_c.is_empty() {
            "000000000000".to_string()
        } else {
            sha256_12(&join_hex4(sorted_c.iter()))
        };
        let mut sorted_e: Vec<u16> = exts
            .into_iter()
            .filter(|&e| e != ext::SERVER_NAME && e != ext::ALPN)
            .collect();
        sorted_e.sort_unstable();
        let c = if sorted_e.is_empty() {
            "000000000000".to_string()
        } else {
            let mut raw = join_hex4(sorted_e.iter());
            let sigs: Vec<u16> = self
                .sig_algs
                .iter()
                .copied()
                .filter(|v| !is_grease(*v))
                .collect();
            if !sigs.is_empty() {
                raw.push('_');
                raw.push_str(&join_hex4(sigs.iter()));
            }
            sha256_12(&raw)
        };
        Some(format!("{a}_{b}_{c}"))
    }
}

impl ServerHello {
    /// JA3S: `SSLVersion,Cipher,Extensions` in decimal, GREASE removed; MD5. `None` for SSLv2.
    pub fn ja3s(&self) -> Option<Ja3> {
        if self.sslv2 {
            return None;
        }
        let string = format!(
            "{},{},{}",
            self.version,
            self.cipher_suite,
            join_dec(self.extensions.iter().filter(|v| !is_grease(**v))),
        );
        let hash = md5_hex(&string);
        Some(Ja3 { string, hash })
    }

    /// The version in use: supported_versions if present, else `version`.
    pub fn negotiated_version(&self) -> u16 {
        self.selected_version.unwrap_or(self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_and_hex_without_the_formatter() {
        for v in [0u16, 1, 9, 10, 255, 4865, 0xabcd, u16::MAX] {
            let mut d = String::new();
            push_dec(&mut d, u32::from(v));
            assert_eq!(d, v.to_string());
            let mut h = String::new();
            push_hex4(&mut h, v);
            assert_eq!(h, format!("{v:04x}"));
        }
        assert_eq!(join_dec([1u8, 0, 2].iter()), "1-0-2");
        assert_eq!(join_hex4([0x1301u16, 0xc02b].iter()), "1301,c02b");
    }

    // Stream bytes extracted with `tshark -r <capture> -q -z follow,tcp,raw,0` from the
    // corpus captures (copies in pcaps/corpus/), cut after the first non-handshake record;
    // see tests/data/README.md.
    const CURL_C: &[u8] = include_bytes!("../tests/data/tls_ndpi_443-curl_client.bin");
    const CURL_S: &[u8] = include_bytes!("../tests/data/tls_ndpi_443-curl_server.bin");
    const FF_C: &[u8] = include_bytes!("../tests/data/tls_ndpi_443-firefox_client.bin");
    const FF_S: &[u8] = include_bytes!("../tests/data/tls_ndpi_443-firefox_server.bin");
    const SSL3_C: &[u8] = include_bytes!("../tests/data/tls_arkime_openssl-ssl3_client.bin");
    const SSL3_S: &[u8] = include_bytes!("../tests/data/tls_arkime_openssl-ssl3_server.bin");
    const FAIL_C: &[u8] =
        include_bytes!("../tests/data/tls_zeek_tls-1.2-handshake-failure_client.bin");
    const V2_C: &[u8] = include_bytes!("../tests/data/tls_zeek_ssl-v2_client.bin");
    const V2_S: &[u8] = include_bytes!("../tests/data/tls_zeek_ssl-v2_server.bin");
    const T13_C: &[u8] = include_bytes!("../tests/data/tls_medtap_dicom-tls13_client.bin");
    const T13_S: &[u8] = include_bytes!("../tests/data/tls_medtap_dicom-tls13_server.bin");
    const HRR_S: &[u8] = include_bytes!("../tests/data/tls_medtap_hrr_server.bin");

    /// First record of a stream, decoded as one handshake message.
    fn first_hello(stream: &[u8]) -> Handshake {
        let h = parse_record_header(stream).expect("record header");
        assert_eq!(h.content_type, ContentType::HANDSHAKE);
        let body = &stream[h.header_len..h.total_len()];
        if h.sslv2 {
            return parse_sslv2_message(body).expect("sslv2");
        }
        let (_, m) = parse_handshake(body, h.version).expect("handshake");
        m
    }

    fn ch(stream: &[u8]) -> ClientHello {
        match first_hello(stream) {
            Handshake::ClientHello(c) => c,
            other => panic!("not a ClientHello: {other:?}"),
        }
    }

    fn sh(stream: &[u8]) -> ServerHello {
        match first_hello(stream) {
            Handshake::ServerHello(s) => s,
            other => panic!("not a ServerHello: {other:?}"),
        }
    }

    #[test]
    fn record_header_and_need() {
        // ndpi_443-curl.pcap frame 4: 16 03 01 02 00 = handshake, TLS 1.0 record, 512 bytes.
        let h = parse_record_header(&CURL_C[..5]).unwrap();
        assert_eq!(
            (h.content_type, h.version, h.len, h.sslv2),
            (ContentType::HANDSHAKE, 0x0301, 512, false)
        );
        assert_eq!(
            parse_record_header(&CURL_C[..3]),
            Err(TlsError::Incomplete(Needed::Size(2)))
        );
        assert_eq!(
            parse_record_header(&[]),
            Err(TlsError::Incomplete(Needed::Unknown))
        );
        assert_eq!(
            parse_record_header(b"GET /"),
            Err(TlsError::UnknownContentType(b'G'))
        );
        assert_eq!(
            parse_record_header(&[0x16, 0x03, 0x07]),
            Err(TlsError::BadRecordVersion(0x0307))
        );
        assert_eq!(
            parse_record_header(&[0x17, 0x03, 0x03, 0xff, 0xff]),
            Err(TlsError::RecordTooLarge {
                len: 0xffff,
                cap: MAX_RECORD_LEN
            })
        );
        // zeek_ssl-v2.pcap frame 4: 80 2e = SSLv2 header, 46 bytes.
        let h = parse_record_header(V2_C).unwrap();
        assert_eq!((h.sslv2, h.len, h.header_len, h.version), (true, 46, 2, 2));
        assert_eq!(
            parse_record_header(&[0x80]),
            Err(TlsError::Incomplete(Needed::Size(1)))
        );
    }

    #[test]
    fn probe() {
        assert_eq!(looks_like_tls(&CURL_C[..6]), Some(true));
        assert_eq!(looks_like_tls(&CURL_S[..6]), Some(true));
        assert_eq!(looks_like_tls(&CURL_C[..5]), None);
        assert_eq!(looks_like_tls(&[]), None);
        assert_eq!(looks_like_tls(&[0x16]), None);
        assert_eq!(looks_like_tls(b"GET / HTTP/1.1"), Some(false));
        assert_eq!(looks_like_tls(&[0x16, 0x03, 0x05]), Some(false));
        assert_eq!(looks_like_tls(&[0x16, 0x02]), Some(false));
        // An encrypted record first (mid-stream pickup) is not a handshake start.
        assert_eq!(
            looks_like_tls(&[0x17, 0x03, 0x03, 0x00, 0x20, 0x00]),
            Some(false)
        );
        assert_eq!(looks_like_tls(V2_C), Some(true));
        assert_eq!(looks_like_tls(V2_S), Some(true));
        assert_eq!(looks_like_tls(&V2_C[..4]), None);
        // DICOM A-ASSOCIATE-RQ and MLLP starts.
        assert_eq!(
            looks_like_tls(&[0x01, 0x00, 0x00, 0x00, 0x00, 0xcd]),
            Some(false)
        );
        assert_eq!(looks_like_tls(b"\x0bMSH|^~\\&"), Some(false));
    }

    /// ndpi_443-curl.pcap frame 4 (curl 7.x, OpenSSL, TLS 1.2). Oracle:
    /// `tshark -n -r ndpi_443-curl.pcap -Y 'tls.handshake.type==1' -T fields
    ///  -e tls.handshake.ja3 -e tls.handshake.ja3_full`
    #[test]
    fn curl_client_hello_ja3_ja4() {
        let c = ch(CURL_C);
        assert_eq!(
            (c.record_version, c.version, c.sslv2, c.truncated),
            (0x0301, 0x0303, false, false)
        );
        assert_eq!(c.cipher_suites.len(), 67);
        assert_eq!(&c.cipher_suites[..3], &[0xcc14, 0xcc13, 0xcc15]);
        assert_eq!(c.extensions, vec![0, 11, 10, 13, 13172, 16, 21]);
        assert_eq!(c.sni.as_deref(), Some("www.ntop.org"));
        assert_eq!(c.alpn, vec!["h2".to_string(), "http/1.1".to_string()]);
        assert_eq!(c.ec_point_formats, vec![0, 1, 2]);
        assert_eq!(c.sig_algs.len(), 18);
        assert!(c.supported_versions.is_empty());
        let j = c.ja3().unwrap();
        assert_eq!(j.hash, "2a26b1a62e40d25d4de3babc9d532f30");
        assert_eq!(
            j.string,
            "771,52244-52243-52245-49200-49196-49192-49188-49172-49162-163-159-107-106-57-56-\
             65413-196-195-136-135-129-49202-49198-49194-49190-49167-49157-157-61-53-192-132-\
             49199-49195-49191-49187-49171-49161-162-158-103-64-51-50-190-189-69-68-49201-49197-\
             49193-49189-49166-49156-156-60-47-186-65-49170-49160-22-19-49165-49155-10-255,\
             0-11-10-13-13172-16-21,14-13-25-28-11-12-27-24-9-10-26-22-23-8-6-7-20-21-4-5-18-19-\
             1-2-3-15-16-17,0-1-2"
        );
        // JA4 by hand from tshark 4.0 fields (no ja4 field there): -e tls.handshake.ciphersuite
        // -e tls.handshake.extension.type -e tls.handshake.sig_hash_alg
        // -e tls.handshake.extensions_alpn_str, per FoxIO technical_details/JA4.md:
        // t, no supported_versions -> 0x0303 "12", SNI "d", 67 ciphers, 07 extensions, "h2";
        // b = sha256("000a,0013,0016,...,cc15,ff85")[..12] (67 sorted suites);
        // c = sha256("000a,000b,000d,0015,3374_0601,0602,0603,efef,0501,0502,0503,0401,0402,
        //     0403,eeee,eded,0301,0302,0303,0201,0202,0203")[..12]. Computed with Python hashlib.
        assert_eq!(c.ja4().unwrap(), "t12d6707h2_2955a3196ffa_c83f907a73d3");
    }

    /// ndpi_443-curl.pcap frame 6. Oracle: tls.handshake.ja3s / ja3s_full.
    #[test]
    fn curl_server_hello_ja3s() {
        let s = sh(CURL_S);
        assert_eq!(
            (s.record_version, s.version, s.cipher_suite, s.compression),
            (0x0303, 0x0303, 0xc02f, 0)
        );
        assert_eq!(s.extensions, vec![65281, 0, 11, 16]);
        assert_eq!(s.alpn.as_deref(), Some("h2"));
        assert_eq!(s.selected_version, None);
        let j = s.ja3s().unwrap();
        assert_eq!(j.string, "771,49199,65281-0-11-16");
        assert_eq!(j.hash, "ae53107a2e47ea20c72ac44821a728bf");
    }

    /// ndpi_443-firefox.pcap frames 4 and 6 (Firefox offering TLS 1.3, server picks 1.2).
    #[test]
    fn firefox_hellos() {
        let c = ch(FF_C);
        assert_eq!(c.supported_versions, vec![0x0304, 0x0303, 0x0302, 0x0301]);
        assert_eq!(
            c.groups,
            vec![0x001d, 0x0017, 0x0018, 0x0019, 0x0100, 0x0101]
        );
        assert_eq!(c.sni.as_deref(), Some("www.ntop.org"));
        let j = c.ja3().unwrap();
        assert_eq!(j.hash, "b20b44b18b853ef29ab773e921b03422");
        assert_eq!(
            j.string,
            "771,4865-4867-4866-49195-49199-52393-52392-49196-49200-49162-49161-49171-49172-51-57-\
             47-53-10,0-23-65281-10-11-35-16-5-51-43-13-45-28-21,29-23-24-25-256-257,0"
        );
        // JA4 by hand as for curl: supported_versions max 0x0304 -> "13", 18 suites,
        // 14 extensions, "h2"; b over the 18 sorted suites; c =
        // sha256("0005,000a,000b,000d,0015,0017,001c,0023,002b,002d,0033,ff01_0403,0503,0603,
        //        0804,0805,0806,0401,0501,0601,0203,0201")[..12].
        assert_eq!(c.ja4().unwrap(), "t13d1814h2_29a2cd9e9f10_d267a5f792d4");
        let s = sh(FF_S);
        assert_eq!(s.cipher_suite, 0xcca8);
        let j = s.ja3s().unwrap();
        assert_eq!(j.string, "771,52392,65281-0-11-35-16-23");
        assert_eq!(j.hash, "3653a20186a5b490426131a611e01992");
    }

    /// arkime_openssl-ssl3.pcap frames 4 and 6: SSL 3.0 without ClientHello extensions; the
    /// ServerHello carries renegotiation_info, which tls-parser leaves unparsed for SSL 3.0.
    #[test]
    fn ssl3_hellos() {
        let c = ch(SSL3_C);
        assert_eq!((c.record_version, c.version), (0x0300, 0x0300));
        assert!(c.extensions.is_empty());
        let j = c.ja3().unwrap();
        assert_eq!(j.hash, "f917ae2520ef9784557b0a3c02489c2c");
        assert!(j.string.starts_with("768,49172-49162-57-") && j.string.ends_with("-3-255,,,"));
        // No SNI, no ALPN, no extensions at all: c part is the all-zero marker.
        assert_eq!(c.ja4().unwrap(), "ts3i460000_234845559c90_000000000000");
        let s = sh(SSL3_S);
        let j = s.ja3s().unwrap();
        assert_eq!(j.string, "768,49169,65281");
        assert_eq!(j.hash, "59e3f99fd4b68388f5ba9349e0ca71a4");
    }

    /// pcaps/dicom/tls.pcap frames 6 and 8: dcmtk storescu -> storescp over TLS 1.3 (OpenSSL).
    /// tshark: ja3 521959db5a2a9fa672a13f319af36655, ja3s_full "771,4866,43-51".
    #[test]
    fn tls13_hellos() {
        let c = ch(T13_C);
        assert_eq!(c.supported_versions, vec![0x0304, 0x0303]);
        let j = c.ja3().unwrap();
        assert_eq!(j.hash, "521959db5a2a9fa672a13f319af36655");
        assert_eq!(
            j.string,
            "771,4866-4867-4865-49199-158-49200-159-255,11-10-35-22-23-13-43-45-51,\
             23-22-24-25-9-10-11-12-13-14-26-27-28,0-1-2"
        );
        // JA4 by hand (as for curl): "13" from supported_versions, no SNI "i", 8 suites,
        // 9 extensions, no ALPN "00".
        assert_eq!(c.ja4().unwrap(), "t13i080900_a811a161fe38_5ac7197df9d2");
        let s = sh(T13_S);
        assert_eq!(
            (s.version, s.selected_version, s.cipher_suite),
            (0x0303, Some(0x0304), 0x1302)
        );
        assert_eq!(s.negotiated_version(), 0x0304);
        assert_eq!(s.ja3s().unwrap().hash, "15af977ce25de452b96affa2addb1036");
        assert!(!s.hello_retry_request);
    }

    /// pcaps/tls_hrr.pcap frame 8: tshark shows "Hello Retry Request" (Random: cf21ad74...
    /// "HelloRetryRequest magic"), TLS_AES_256_GCM_SHA384, supported_versions 1.3, key_share
    /// selected group secp256r1; JA3S 15af977ce25de452b96affa2addb1036.
    #[test]
    fn hello_retry_request() {
        let s = sh(HRR_S);
        assert!(s.hello_retry_request);
        assert_eq!(
            (
                s.version,
                s.selected_version,
                s.cipher_suite,
                s.extensions.as_slice()
            ),
            (0x0303, Some(0x0304), 0x1302, &[43u16, 51][..])
        );
        assert_eq!(s.ja3s().unwrap().hash, "15af977ce25de452b96affa2addb1036");
        // One bit off the magic: an ordinary ServerHello.
        let mut v = HRR_S.to_vec();
        v[5 + 4 + 2 + 31] ^= 1;
        assert!(!sh(&v).hello_retry_request);
        // An ordinary TLS 1.2 ServerHello.
        assert!(!sh(CURL_S).hello_retry_request);
    }

    /// zeek_tls-1.2-handshake-failure.pcap frame 4.
    #[test]
    fn handshake_failure_client_hello() {
        let c = ch(FAIL_C);
        assert_eq!(c.ja3().unwrap().hash, "62bd27c43a9a4d7fcbc45d8c9e7e04dd");
        assert_eq!(c.sni, None);
        assert_eq!(c.ja4().unwrap(), "t12i090500_de31b28e7183_a1e935682795");
    }

    /// zeek_ssl-v2.pcap frame 4 (CLIENT-HELLO, 7 SSLv2 specs) and frame 6 (SERVER-HELLO,
    /// 903-byte certificate, 6 specs). tshark: `-O tls` shows "Cipher Specs (7 specs)".
    #[test]
    fn sslv2_hellos() {
        let c = ch(V2_C);
        assert!(c.sslv2);
        assert_eq!(c.version, 0x0002);
        assert_eq!(
            c.sslv2_cipher_specs,
            vec![0x0700c0, 0x050080, 0x030080, 0x010080, 0x060040, 0x040080, 0x020080]
        );
        assert!(c.cipher_suites.is_empty());
        assert_eq!(c.ja3(), None);
        assert_eq!(c.ja4(), None);
        let s = sh(V2_S);
        assert!(s.sslv2);
        assert_eq!(s.version, 0x0002);
        assert_eq!(s.sslv2_cipher_specs.len(), 6);
        assert_eq!(
            parse_sslv2_message(&V2_C[2..20]),
            Err(TlsError::Incomplete(Needed::Size(46 - 18)))
        );
        assert!(matches!(
            parse_sslv2_message(&[2, 0, 0]),
            Err(TlsError::UnexpectedType { .. })
        ));
    }

    /// A ClientHello split over two records: the caller concatenates the bodies.
    #[test]
    fn hello_across_records_and_prefixes() {
        let h = parse_record_header(CURL_C).unwrap();
        let body = &CURL_C[5..h.total_len()];
        let full = ch(CURL_C);
        for cut in 0..body.len() {
            match parse_handshake(&body[..cut], 0x0301) {
                Err(TlsError::Incomplete(Needed::Size(n))) => {
                    assert_eq!(n, if cut < 4 { 4 - cut } else { body.len() - cut });
                }
                other => panic!("prefix {cut}: {other:?}"),
            }
        }
        let (rest, m) = parse_handshake(body, 0x0301).unwrap();
        assert!(rest.is_empty());
        assert_eq!(m, Handshake::ClientHello(full));
        // The server flight: ServerHello, Certificate, ... in one or more records.
        let hs = parse_record_header(CURL_S).unwrap();
        let (rest, m) = parse_handshake(&CURL_S[5..hs.total_len()], 0x0303).unwrap();
        assert!(matches!(m, Handshake::ServerHello(_)));
        assert_eq!(rest.len(), hs.len - 0x66);
    }

    #[test]
    fn malformed_extensions_are_errors() {
        let h = parse_record_header(CURL_C).unwrap();
        let mut body = CURL_C[5..h.total_len()].to_vec();
        // Walk the fixed part: header(4) version(2) random(32) session_id cipher_suites
        // compression_methods, then the extensions length.
        let mut at = 4 + 2 + 32;
        at += 1 + usize::from(body[at]);
        at += 2 + usize::from(u16::from_be_bytes([body[at], body[at + 1]]));
        at += 1 + usize::from(body[at]);
        let el = usize::from(u16::from_be_bytes([body[at], body[at + 1]]));
        assert_eq!(el, body.len() - at - 2, "found the extensions length");
        // One byte too long: the block overruns the message.
        body[at + 1] = body[at + 1].wrapping_add(1);
        assert!(matches!(
            parse_handshake(&body, 0x0301),
            Err(TlsError::Malformed { .. })
        ));
        // One byte too short: the last extension overruns the block.
        body[at + 1] = body[at + 1].wrapping_sub(2);
        assert!(matches!(
            parse_handshake(&body, 0x0301),
            Err(TlsError::Malformed { .. })
        ));
    }

    #[test]
    fn grease_and_ja4_alpn() {
        assert!(is_grease(0x0a0a) && is_grease(0xfafa) && !is_grease(0x1a2a) && !is_grease(0xefef));
        let ends = |a: &[u8]| Some((*a.first()?, *a.last()?));
        assert_eq!(ja4_alpn(ends(b"h2")), "h2");
        assert_eq!(ja4_alpn(ends(b"http/1.1")), "h1");
        assert_eq!(ja4_alpn(ends(b"x")), "xx");
        assert_eq!(ja4_alpn(None), "00");
        assert_eq!(ja4_alpn(ends(b"")), "00");
        // The FoxIO examples (technical_details/JA4.md, "ALPN Extension Value").
        assert_eq!(ja4_alpn(ends(&[0xab])), "ab");
        assert_eq!(ja4_alpn(ends(&[0xab, 0xcd])), "ad");
        assert_eq!(ja4_alpn(ends(&[0x30, 0xab])), "3b");
        assert_eq!(ja4_alpn(ends(&[0x30, 0x31, 0xab, 0xcd])), "3d");
        assert_eq!(ja4_alpn(ends(&[0x30, 0xab, 0xcd, 0x31])), "01");
        // First ALPN 0xba 0xad (FoxIO's pcap/tls-non-ascii-alpn.pcapng): "bd" by the spec's hex
        // rule. FoxIO's reference code at the time of writing prints "99" there instead (it maps
        // non-ASCII characters to '9'); we follow the written spec.
        assert_eq!(ja4_alpn(ends(&[0xba, 0xad])), "bd");
        // The FoxIO worked example (technical_details/JA4.md): GREASE dropped everywhere.
        let c = ClientHello {
            version: 0x0303,
            cipher_suites: vec![
                0x2a2a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8,
                0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
            ],
            extensions: vec![
                0x3a3a, 0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005,
                0x0023, 0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015,
            ],
            supported_versions: vec![0x7a7a, 0x0304, 0x0303],
            alpn: vec!["h2".into(), "http/1.1".into()],
            sig_algs: vec![
                0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
            ],
            ..ClientHello::default()
        };
        assert_eq!(c.ja4().unwrap(), "t13d1516h2_8daaf6152771_e5627efa2ab1");
        let mut c2 = c.clone();
        c2.sig_algs.clear();
        assert!(c2.ja4().unwrap().ends_with("_6d807ffa2a79"));
        let mut c3 = c;
        c3.cipher_suites.clear();
        assert_eq!(c3.ja4().unwrap().split('_').nth(1), Some("000000000000"));
    }

    #[test]
    fn version_names() {
        assert_eq!(version_name(0x0303), Some("TLS 1.2"));
        assert_eq!(version_name(0x0002), Some("SSLv2"));
        assert_eq!(version_name(0x7f12), None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = looks_like_tls(&data);
            if let Ok(h) = parse_record_header(&data) {
                proptest::prop_assert!(h.len <= MAX_RECORD_LEN);
            }
            if let Ok((rest, m)) = parse_handshake(&data, 0x0303) {
                proptest::prop_assert!(rest.len() <= data.len());
                if let Handshake::ClientHello(c) = m {
                    let _ = (c.ja3(), c.ja4());
                }
            }
            let _ = parse_sslv2_message(&data);
        }

        /// Mutating one byte of a real hello never panics and keeps lists within caps.
        #[test]
        fn mutated_hello(pos in 0usize..512, val in proptest::num::u8::ANY) {
            let mut b = CURL_C[5..517].to_vec();
            b[pos] = val;
            if let Ok((_, Handshake::ClientHello(c))) = parse_handshake(&b, 0x0301) {
                proptest::prop_assert!(c.cipher_suites.len() <= MAX_CIPHER_SUITES);
                let _ = (c.ja3(), c.ja4());
            }
        }
    }
}
