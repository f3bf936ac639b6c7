//! Fuzz the DIMSE command set reader and the data set prefix scan (implicit and explicit VR
//! little endian, and the encoding guess used on midstream pickup).
//!
//! Invariants: nothing panics; values stay within their caps; a prefix of a data set never
//! reports a PHI attribute or device attribute that the whole data set does not (the scan is
//! monotonic in its input), and no PHI value is ever carried by the result (it has none).
//! Seed corpus: `parsers/fuzz/corpus/dicom_dimse/` (command sets and data set prefixes from
//! pcaps/dicom captures).
#![no_main]

use libfuzzer_sys::fuzz_target;
use medtap_parsers::dicom::{dataset, dimse, Encoding};

fuzz_target!(|data: &[u8]| {
    if let Ok(cs) = dimse::parse_command_set(data) {
        for s in [
            &cs.affected_sop_class_uid,
            &cs.affected_sop_instance_uid,
            &cs.requested_sop_class_uid,
            &cs.requested_sop_instance_uid,
        ]
        .into_iter()
        .flatten()
        {
            assert!(s.len() <= dimse::MAX_UID_LEN);
        }
        assert!(cs.move_destination.as_ref().is_none_or(|m| m.len() <= 16));
    }
    for enc in [
        Encoding::ImplicitLe,
        Encoding::ExplicitLe,
        dataset::guess_encoding(data),
    ] {
        let whole = dataset::scan(data, enc);
        assert!(whole.elements <= dataset::MAX_ELEMENTS);
        for d in whole.device.iter().flatten() {
            assert!(d.len() <= dataset::MAX_VALUE_LEN);
        }
        // A prefix (the sensor scans capped prefixes) reads a subset of the PHI tags.
        let cut = data.len() / 2;
        let part = dataset::scan(&data[..cut], enc);
        if whole.stop != dataset::Stop::Limit {
            assert_eq!(
                part.phi & !whole.phi,
                0,
                "prefix found more PHI than the whole"
            );
        }
    }
});
