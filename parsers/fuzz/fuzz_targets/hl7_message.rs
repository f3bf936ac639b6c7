//! Fuzz the HL7 v2 message reader: `parse_message` on the input as a whole message and as a
//! prefix cut by the size cap, and the escape decoder with the delimiters the input declares.
//!
//! Invariants: nothing panics; the summary respects its caps (segment ids, devices, errors,
//! value lengths); PHI shows up only as names from the fixed table; ERR codes are codes;
//! `message_type` is `code^event` (borrowed from MSH-9 or formatted); the summary made to own
//! its values (`into_owned`) is the same summary.
//! Seed corpus: parsers/fuzz/corpus/hl7_message/ (messages from pcaps/hl7/*.pcap, some with
//! other delimiters, LF terminators, Latin-1 text).
#![no_main]

use libfuzzer_sys::fuzz_target;
use medtap_parsers::hl7::{self, phi, Message, Text};

fn value_ok(v: &Option<Text<'_>>) {
    if let Some(s) = v {
        assert!(!s.is_empty());
        assert!(
            s.chars().count() <= hl7::MAX_VALUE_CHARS,
            "value over the cap"
        );
    }
}

fn code_ok(v: &Option<Text<'_>>) {
    if let Some(s) = v {
        assert!(
            s.len() <= hl7::MAX_CODE_CHARS && !s.contains(' '),
            "not a code: {s:?}"
        );
    }
}

fn check(m: &Message<'_>) {
    assert!(m.segment_ids.len() <= hl7::MAX_SEGMENT_IDS);
    assert!(m.segment_ids.len() <= m.segment_count);
    assert!(m.devices.len() <= hl7::MAX_DEVICES);
    assert!(m.errors.len() <= hl7::MAX_ERRORS);
    let names: Vec<&str> = phi::all_names().collect();
    let mut last = None;
    for f in m.phi_fields.iter() {
        let k = names
            .iter()
            .position(|&n| n == f)
            .expect("PHI name from the table");
        assert!(last < Some(k), "PHI names in table order, once each");
        last = Some(k);
    }
    for id in &m.segment_ids {
        assert!(id.0.iter().all(u8::is_ascii_alphanumeric));
    }
    if let Some(h) = &m.msh {
        for v in [
            &h.sending_application,
            &h.sending_facility,
            &h.receiving_application,
            &h.receiving_facility,
            &h.message_time,
            &h.message_code,
            &h.trigger_event,
            &h.message_structure,
            &h.control_id,
            &h.processing_id,
            &h.version,
            &h.charset,
        ] {
            value_ok(v);
        }
        // `code^event`: both values, as they are.
        let want = match (&h.message_code, &h.trigger_event) {
            (Some(c), Some(e)) => Some(format!("{c}^{e}")),
            (Some(c), None) => Some(c.to_string()),
            (None, Some(e)) => Some(format!("^{e}")),
            (None, None) => None,
        };
        assert_eq!(h.message_type.as_deref(), want.as_deref());
    }
    if let Some(a) = &m.msa {
        code_ok(&a.ack_code);
        value_ok(&a.control_id);
    }
    for e in &m.errors {
        code_ok(&e.code);
        code_ok(&e.code_system);
        code_ok(&e.severity);
        if let Some(l) = &e.location {
            assert!(l.len() <= 3 + 5 * 6, "location is structure only: {l:?}");
        }
    }
    for d in &m.devices {
        for v in [&d.id, &d.namespace, &d.universal_id, &d.universal_id_type] {
            value_ok(v);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let m = hl7::parse_message(data, true);
    check(&m);
    // Owning the values changes none of them.
    assert_eq!(m.clone().into_owned(), m);
    let m = hl7::parse_message(data, false);
    check(&m);
    // The escape decoder on the input's own text and delimiters.
    let (text, _) = hl7::decode_text(data);
    let mut out = String::new();
    hl7::unescape(&text, &m.delimiters, &mut out);
    let (d, _) = hl7::Delimiters::from_header_lax(&text);
    let _ = d.separators();
});
