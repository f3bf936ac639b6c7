//! Where HL7 v2 messages carry protected health information: the fields and segments whose mere
//! presence makes a message "PHI in cleartext". Only their names leave this crate, never values.
//!
//! Field numbers are those of HL7 v2.5.1 (chapter 3 for PID/PV1/NK1/GT1/IN1/MRG, chapter 5 for
//! QRD/QPD); they have not moved in later versions. The identifiers are those of the HIPAA
//! Safe Harbor list (45 CFR 164.514(b)(2)): names, geographic data, dates, phone numbers,
//! SSNs, medical record and account numbers, licence numbers.

/// (segment, field number, name reported). A field counts when it is not empty and not the
/// HL7 null `""`.
pub const PHI_FIELDS: &[(&str, usize, &str)] = &[
    ("PID", 2, "PID-2"),   // Patient ID (external, pre-2.5)
    ("PID", 3, "PID-3"),   // Patient Identifier List (MRN)
    ("PID", 4, "PID-4"),   // Alternate Patient ID
    ("PID", 5, "PID-5"),   // Patient Name
    ("PID", 6, "PID-6"),   // Mother's Maiden Name
    ("PID", 7, "PID-7"),   // Date/Time of Birth
    ("PID", 9, "PID-9"),   // Patient Alias
    ("PID", 11, "PID-11"), // Patient Address
    ("PID", 13, "PID-13"), // Phone Number - Home
    ("PID", 14, "PID-14"), // Phone Number - Business
    ("PID", 18, "PID-18"), // Patient Account Number
    ("PID", 19, "PID-19"), // SSN Number - Patient
    ("PID", 20, "PID-20"), // Driver's License Number - Patient
    ("PID", 21, "PID-21"), // Mother's Identifier
    ("PID", 23, "PID-23"), // Birth Place
    ("PID", 29, "PID-29"), // Patient Death Date and Time
    ("PV1", 19, "PV1-19"), // Visit Number
    ("QRD", 8, "QRD-8"),   // Who Subject Filter (the patient a query asks about)
];

/// Segments that are about a person other than through PID, reported by segment name when any
/// of their fields is filled: next of kin, guarantor, insurance (insured's name, ids,
/// address), merge (prior patient identifiers), query parameters (patient ids in queries).
pub const PHI_SEGMENTS: &[&str] = &["NK1", "GT1", "IN1", "IN2", "MRG", "QPD"];

/// How many names can be reported ([`all_names`]).
pub const MAX_NAMES: usize = PHI_FIELDS.len() + PHI_SEGMENTS.len();

/// All names that can be reported, in reporting order.
pub fn all_names() -> impl Iterator<Item = &'static str> {
    NAMES.iter().copied()
}

/// [`all_names`] as a table: name `k` is `NAMES[k]`.
pub const NAMES: [&str; MAX_NAMES] = {
    let mut t = [""; MAX_NAMES];
    let mut i = 0;
    while i < PHI_FIELDS.len() {
        t[i] = PHI_FIELDS[i].2;
        i += 1;
    }
    let mut j = 0;
    while j < PHI_SEGMENTS.len() {
        t[PHI_FIELDS.len() + j] = PHI_SEGMENTS[j];
        j += 1;
    }
    t
};

/// Whether a raw field value carries something: a character other than the delimiters, and
/// not the HL7 null `""` (v2.5.1 2.5.3: `""` means "delete the value", nothing is sent).
pub fn has_value(raw: &str, d: &super::Delimiters) -> bool {
    if raw == "\"\"" {
        return false;
    }
    // A missing subcomponent separator matches nothing; the space is tested anyway.
    let sub = d.subcomponent.unwrap_or(' ');
    let seps = [d.field, d.component, d.repetition, sub];
    if seps.iter().all(char::is_ascii) {
        return has_value_bytes(raw.as_bytes(), d);
    }
    raw.chars().any(|c| {
        c != d.field
            && c != d.component
            && c != d.repetition
            && Some(c) != d.subcomponent
            && c != ' '
    })
}

/// [`has_value`] of a field's bytes, for delimiters that are ASCII (every set
/// [`super::Delimiters`] reads): byte-wise, as a non-ASCII character's bytes never equal an
/// ASCII delimiter. With a non-ASCII delimiter, the bytes are read as text first (not UTF-8:
/// no value).
pub fn has_value_bytes(raw: &[u8], d: &super::Delimiters) -> bool {
    let sub = d.subcomponent.unwrap_or(' ');
    let seps = [d.field, d.component, d.repetition, sub];
    if !seps.iter().all(char::is_ascii) {
        return std::str::from_utf8(raw).is_ok_and(|s| has_value(s, d));
    }
    if raw == b"\"\"" {
        return false;
    }
    let [f, c, r, s] = seps.map(|c| c as u8);
    raw.iter()
        .any(|&b| b != f && b != c && b != r && b != s && b != b' ')
}
