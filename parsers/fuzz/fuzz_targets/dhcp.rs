//! Fuzz the DHCPv4 and DHCPv6 parsers.
//!
//! Invariants: nothing panics; every kept list and string stays within its cap.
//! Seed corpus: `corpus/dhcp/` (UDP payloads of the corpus DHCP captures).
#![no_main]

use libfuzzer_sys::fuzz_target;
use medtap_parsers::dhcp;

fuzz_target!(|data: &[u8]| {
    if let Ok(i) = dhcp::parse_dhcpv4(data) {
        assert!(i.option_codes.len() <= dhcp::MAX_OPTIONS);
        assert!(i.parameter_request_list.len() <= dhcp::MAX_PRL);
        assert!(i.client_id.as_ref().map_or(0, |c| c.len()) <= dhcp::MAX_ID_LEN);
        for s in [&i.hostname, &i.vendor_class].into_iter().flatten() {
            assert!(s.len() <= 3 * dhcp::MAX_TEXT_LEN);
        }
        let _ = (i.prl_fingerprint(), i.option_order(), i.client_id_mac());
    }
    if let Ok(i) = dhcp::parse_dhcpv6(data) {
        assert!(i.option_codes.len() <= dhcp::MAX_OPTIONS);
        assert!(i.oro.len() <= dhcp::MAX_PRL);
        assert!(i.relay_depth <= dhcp::MAX_RELAY_DEPTH);
        let _ = (i.duid_mac(), i.oro_fingerprint());
    }
});
