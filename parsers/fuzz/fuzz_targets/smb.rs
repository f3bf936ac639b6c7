//! Fuzz the SMB parser: NetBIOS framing, SMB1 and SMB2 negotiate messages, SMB1 session setup
//! (NativeOS / NativeLanMan, ASCII and UTF-16).
//!
//! Invariants: nothing panics; a parsed frame lies within the input and the rest follows it;
//! dialect lists and native strings stay within their caps; an empty native string is `None`.
//! Seed corpus: `corpus/smb/` (NetBIOS frames from the corpus SMB captures).
#![no_main]

use libfuzzer_sys::fuzz_target;
use medtap_parsers::smb;

fuzz_target!(|data: &[u8]| {
    let _ = smb::frame_len(data);
    if let Ok((rest, f)) = smb::parse_nbss(data) {
        assert_eq!(
            rest.len() + f.payload.len() + smb::NBSS_HEADER_LEN,
            data.len()
        );
        match smb::parse_smb(f.payload) {
            Ok(smb::SmbMessage::Smb1NegotiateRequest { dialects }) => {
                assert!(dialects.len() <= smb::MAX_DIALECTS);
                assert!(dialects.iter().all(|d| d.len() <= 3 * smb::MAX_DIALECT_LEN));
            }
            Ok(smb::SmbMessage::Smb2NegotiateRequest { dialects, .. }) => {
                assert!(dialects.len() <= smb::MAX_DIALECTS);
            }
            Ok(smb::SmbMessage::Smb1SessionSetup(s)) => check_setup(&s),
            _ => {}
        }
    }
    if let Ok(smb::SmbMessage::Smb1SessionSetup(s)) = smb::parse_smb(data) {
        check_setup(&s);
    }
});

fn check_setup(s: &smb::SessionSetup) {
    for v in [&s.native_os, &s.native_lanman].into_iter().flatten() {
        assert!(!v.is_empty());
        assert!(v.chars().count() <= smb::MAX_NATIVE_LEN);
    }
}
