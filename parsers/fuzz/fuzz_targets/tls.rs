//! Fuzz the TLS parsers: record headers, handshake messages (as the streaming layer feeds them),
//! SSLv2 messages, the probe, and the fingerprints of whatever decodes.
//!
//! Invariants: nothing panics; what comes back is a suffix of the input; decoded lists stay
//! within their caps; a record header never reports more than `MAX_RECORD_LEN` of body.
//! Seed corpus: `parsers/tests/data/tls_*.bin` (real streams from the corpus captures).
#![no_main]

use libfuzzer_sys::fuzz_target;
use medtap_parsers::tls::{self, Handshake};

fn check_hello(h: &Handshake) {
    match h {
        Handshake::ClientHello(c) => {
            assert!(c.cipher_suites.len() <= tls::MAX_CIPHER_SUITES);
            assert!(c.extensions.len() <= tls::MAX_EXTENSIONS);
            assert!(c.alpn.len() <= tls::MAX_ALPN);
            assert!(c.sig_algs.len() <= tls::MAX_SIG_ALGS);
            assert!(c.groups.len() <= tls::MAX_GROUPS);
            if let Some(j) = c.ja3() {
                assert_eq!(j.hash.len(), 32);
            }
            if let Some(j) = c.ja4() {
                assert_eq!(j.len(), 36);
            }
        }
        Handshake::ServerHello(s) => {
            assert!(s.extensions.len() <= tls::MAX_EXTENSIONS);
            if let Some(j) = s.ja3s() {
                assert_eq!(j.hash.len(), 32);
            }
        }
        Handshake::Other { .. } => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = tls::looks_like_tls(data);
    // As a stream: walk records, concatenating handshake bodies like the sensor does.
    let mut rest = data;
    let mut hs = Vec::new();
    let mut version = 0;
    for _ in 0..64 {
        let Ok(h) = tls::parse_record_header(rest) else {
            break;
        };
        assert!(h.len <= tls::MAX_RECORD_LEN);
        let Some(body) = rest.get(h.header_len..h.total_len()) else {
            break;
        };
        rest = &rest[h.total_len()..];
        if h.sslv2 {
            if let Ok(m) = tls::parse_sslv2_message(body) {
                check_hello(&m);
            }
            continue;
        }
        if h.content_type != tls::ContentType::HANDSHAKE {
            continue;
        }
        if hs.is_empty() {
            version = h.version;
        }
        hs.extend_from_slice(body);
        while let Ok((after, m)) = tls::parse_handshake(&hs, version) {
            assert!(after.len() < hs.len());
            check_hello(&m);
            let used = hs.len() - after.len();
            hs.drain(..used);
        }
    }
    // As a bare handshake message.
    if let Ok((after, m)) = tls::parse_handshake(data, 0x0303) {
        assert!(after.len() <= data.len());
        check_hello(&m);
    }
    if let Ok(m) = tls::parse_sslv2_message(data) {
        check_hello(&m);
    }
});
