//! Fuzz the SMB negotiate parser: NetBIOS framing, SMB1 and SMB2 negotiate messages.
//!
//! Invariants: nothing panics; a parsed frame lies within the input and the rest follows it;
//! dialect lists stay within their caps.
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
            _ => {}
        }
    }
    let _ = smb::parse_smb(data);
});
