//! Fuzz the layer-2 and multicast discovery parsers: LLDP, CDP, the DNS reader, mDNS, SSDP,
//! NBNS and NBDGM. One target, since they share the input shape (a frame or UDP payload).
//!
//! Invariants: nothing panics; kept lists stay within their caps; DNS names stay within 255
//! bytes of text.
//! Seed corpus: `corpus/discovery/` (payloads of the corpus LLDP, CDP, mDNS, SSDP, NetBIOS frames).
#![no_main]

use libfuzzer_sys::fuzz_target;
use medtap_parsers::{cdp, dns, lldp, mdns, netbios, ssdp};

fuzz_target!(|data: &[u8]| {
    let l = lldp::parse_lldp_lax(data);
    assert!(l.management_addresses.len() <= lldp::MAX_MGMT_ADDRS);
    let _ = lldp::parse_lldp(data);
    if let Ok(c) = cdp::parse_cdp(data) {
        assert!(c.addresses.len() <= cdp::MAX_ADDRESSES);
        let _ = c.capability_names();
    }
    let _ = cdp::parse_cdp_llc(data);
    if let Ok(m) = dns::parse_message(data) {
        assert!(m.questions.len() <= dns::MAX_RECORDS);
        assert!(m.answers.len() <= dns::MAX_RECORDS);
        for r in m.records() {
            assert!(r.name.len() <= dns::MAX_NAME_LEN);
        }
    }
    if let Ok(m) = mdns::parse_mdns(data) {
        assert!(m.hostnames.len() <= mdns::MAX_ITEMS);
        assert!(m.txt.len() <= mdns::MAX_ITEMS);
        let _ = m.model();
    }
    let _ = ssdp::parse_ssdp(data).map(|s| (s.product().map(str::len), s.uuid().map(str::len)));
    if let Ok(n) = netbios::parse_nbns(data) {
        assert!(n.names.len() <= netbios::MAX_NAMES);
        assert!(n.addresses.len() <= netbios::MAX_NAMES);
    }
    if let Ok(d) = netbios::parse_nbdgm(data) {
        if let Some(a) = d.announcement {
            assert!(a.comment.len() <= 3 * netbios::MAX_COMMENT_LEN);
        }
    }
});
