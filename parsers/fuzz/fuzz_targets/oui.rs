//! Fuzz the MAC text reader and the registry lookup.
//!
//! Invariants: nothing panics; a hit's prefix is 6, 7 or 9 hex digits and agrees with the MAC;
//! locally administered and group addresses never resolve.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medtap_parsers::oui;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = oui::parse_mac(text);
    }
    if let Some(mac) = data.get(..6).and_then(|b| <[u8; 6]>::try_from(b).ok()) {
        match oui::lookup(&mac) {
            Some(e) => {
                assert_eq!(oui::mac_kind(&mac), oui::MacKind::Universal);
                assert!(matches!(e.prefix.len(), 6 | 7 | 9));
                let hex: String = mac.iter().map(|b| format!("{b:02X}")).collect();
                assert!(hex.starts_with(e.prefix));
            }
            None => {}
        }
        assert_eq!(oui::parse_mac(&oui::format_mac(&mac)).unwrap(), mac);
    }
});
