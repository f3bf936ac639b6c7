//! Fuzz the SNMP message parser (BER, v1/v2c/v3).
//!
//! Invariants: nothing panics; varbinds and sysDescr stay within their caps.
//! Seed corpus: `corpus/snmp/` (UDP payloads from the corpus SNMP captures).
#![no_main]

use libfuzzer_sys::fuzz_target;
use medtap_parsers::snmp;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = snmp::parse_message(data) {
        assert!(m.oids.len() <= snmp::MAX_VARBINDS);
        if let Some(d) = &m.sys_descr {
            assert!(d.len() <= 3 * snmp::MAX_DESCR_LEN);
        }
    }
    let _ = snmp::oid_to_string(data);
});
