//! Fuzz the TCP SYN signature reader and the p0f database reader/matcher.
//!
//! Invariants: nothing panics; the option layout stays within MAX_TCP_OPTS; raw_sig always
//! renders; a database built from fuzz text matches any signature without panicking.
//! Seed corpus: `corpus/tcpfp/` (IP packets of SYNs and SYN+ACKs from the corpus captures).
#![no_main]

use libfuzzer_sys::fuzz_target;
use medtap_parsers::tcpfp;

fuzz_target!(|data: &[u8]| {
    let sig = tcpfp::parse_syn(data).ok();
    if let Some(s) = &sig {
        assert!(s.options.len() <= tcpfp::MAX_TCP_OPTS);
        assert!(!s.raw_sig().is_empty());
        assert!(s.initial_ttl() >= s.ttl);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(db) = tcpfp::parse_p0f_db(text) {
            if let Some(s) = &sig {
                let _ = db.match_tcp(s, Some(1460));
            }
        }
    }
});
