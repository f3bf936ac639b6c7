//! Fuzz the HTTP head parser (strict and lax).
//!
//! Invariants: nothing panics; a complete head's length is within the input; the header-name
//! list stays within its cap; no Authorization value is ever kept (only its scheme, which holds
//! no whitespace).
//! Seed corpus: `corpus/http/` (heads from the corpus HTTP and SSDP captures).
#![no_main]

use libfuzzer_sys::fuzz_target;
use medtap_parsers::http;

fuzz_target!(|data: &[u8]| {
    let _ = http::looks_like_http(data);
    if let Ok(h) = http::parse_head_lax(data) {
        assert!(h.header_names.len() <= http::MAX_HEADER_NAMES);
        if h.complete {
            assert!(h.head_len <= data.len());
        }
        if let Some(s) = &h.authorization_scheme {
            assert!(!s.contains(' '));
        }
    }
    if let Ok(h) = http::parse_head(data) {
        assert!(h.complete);
    }
});
