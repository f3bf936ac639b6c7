//! Fuzz the small cleartext-protocol parsers: FTP lines, Telnet negotiation, TFTP, the
//! r-command preambles, the VNC (RFB) handshake and the RDP connection request.
//!
//! Invariants: nothing panics; Telnet's pending count is at most 2 and its kept negotiations
//! within the cap; TFTP option lists within their cap; RDP's rest follows the parsed TPKT.
//! Seed corpus: `corpus/cleartext/`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medtap_parsers::{ftp, rcmd, rdp, rfb, telnet, tftp};

fuzz_target!(|data: &[u8]| {
    if let Some(c) = ftp::parse_command(data) {
        assert!(c.verb().len() <= ftp::MAX_VERB_LEN);
    }
    let _ = ftp::parse_reply(data);
    let _ = ftp::auth_mechanism(data);
    let _ = ftp::is_anonymous_user(data);
    let _ = ftp::looks_like_greeting(data);
    let mut sb = false;
    let s = telnet::scan(data, 8, &mut sb);
    assert!(s.pending <= 2 && s.negotiations.len() <= 8);
    let _ = telnet::looks_like_telnet(data);
    if let Ok(p) = tftp::parse_packet(data) {
        assert!(p.options.len() <= tftp::MAX_OPTIONS);
    }
    let _ = rcmd::parse_preamble(data, rcmd::Shape::Rlogin);
    let _ = rcmd::parse_preamble(data, rcmd::Shape::PortThenFields);
    if let Ok((rest, v)) = rfb::parse_version(data) {
        let _ = rfb::parse_security_types(rest, v);
    }
    if let Ok(t) = rfb::parse_security_types(data, rfb::Version { major: 3, minor: 8 }) {
        assert!(t.len <= data.len());
        if let Ok(o) = rfb::parse_vencrypt_offer(&data[t.len..]) {
            assert!(o.subtypes.len() <= 255);
        }
    }
    let _ = rfb::parse_vencrypt_choice(data);
    if let Ok((rest, x)) = rdp::parse_x224(data) {
        assert!(rest.len() < data.len());
        if let Some(rdp::Negotiation::Request(p)) = x.negotiation {
            assert!(!rdp::protocol_names(p).is_empty());
        }
    }
});
