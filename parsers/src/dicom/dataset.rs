//! A scan of the first bytes of a data set (PS3.5 section 7) for the attributes that identify
//! the device that made it, and for which PHI attributes carry a value.
//!
//! Input: a prefix of a data set in implicit or explicit VR little endian (the caller keeps
//! at most a capped prefix; image data is never buffered). Output: a small [`DatasetScan`].
//!
//! Limits and recoverable failures first: the walk stops at Pixel Data (7FE0,0010), at the end
//! of the prefix (an element cut short), at an explicit VR that is not two upper-case letters,
//! after [`MAX_ELEMENTS`] elements, or below [`MAX_DEPTH`] nested sequences/items; what was read
//! until then is kept and `stop` says why. Device attributes are read at the top level only
//! and cut at [`MAX_VALUE_LEN`] bytes; PHI attributes count at any depth, by tag only. **No PHI
//! value is ever read into the result** — only the index of the attribute in [`PHI_TAGS`].

use super::{text, Encoding};
use crate::bytes::{le16, le32};

/// Elements walked per scan. An image header has a few hundred; private blocks may add a few
/// thousand small ones.
pub const MAX_ELEMENTS: usize = 20_000;
/// Nesting of sequences and items followed.
pub const MAX_DEPTH: usize = 16;
/// Bytes kept of a device attribute value (LO is at most 64 characters; Software Versions may
/// hold several).
pub const MAX_VALUE_LEN: usize = 128;

const UNDEFINED: u32 = 0xFFFF_FFFF;

/// A tag (group, element).
pub type Tag = (u16, u16);

/// The device attributes read (PS3.3 C.7.5.1 General Equipment, C.7.3.1 General Series).
pub const DEVICE_TAGS: [(Tag, &str); 8] = [
    ((0x0008, 0x0060), "modality"),
    ((0x0008, 0x0070), "manufacturer"),
    ((0x0008, 0x0080), "institution_name"),
    ((0x0008, 0x1010), "station_name"),
    ((0x0008, 0x1040), "institutional_department_name"),
    ((0x0008, 0x1090), "manufacturer_model_name"),
    ((0x0018, 0x1000), "device_serial_number"),
    ((0x0018, 0x1020), "software_versions"),
];

/// Attributes that identify a patient (PS3.15 E.1-1 Basic Profile, patient and physician
/// identity rows), by their PS3.6 keyword. A scan notes which of them hold a value.
pub const PHI_TAGS: [(Tag, &str); 25] = [
    ((0x0008, 0x0050), "AccessionNumber"),
    ((0x0008, 0x0090), "ReferringPhysicianName"),
    ((0x0008, 0x0092), "ReferringPhysicianAddress"),
    ((0x0008, 0x0094), "ReferringPhysicianTelephoneNumbers"),
    ((0x0008, 0x1048), "PhysiciansOfRecord"),
    ((0x0008, 0x1050), "PerformingPhysicianName"),
    ((0x0008, 0x1060), "NameOfPhysiciansReadingStudy"),
    ((0x0008, 0x1070), "OperatorsName"),
    ((0x0010, 0x0010), "PatientName"),
    ((0x0010, 0x0020), "PatientID"),
    ((0x0010, 0x0030), "PatientBirthDate"),
    ((0x0010, 0x0032), "PatientBirthTime"),
    ((0x0010, 0x0040), "PatientSex"),
    ((0x0010, 0x1000), "OtherPatientIDs"),
    ((0x0010, 0x1001), "OtherPatientNames"),
    ((0x0010, 0x1002), "OtherPatientIDsSequence"),
    ((0x0010, 0x1005), "PatientBirthName"),
    ((0x0010, 0x1010), "PatientAge"),
    ((0x0010, 0x1040), "PatientAddress"),
    ((0x0010, 0x1060), "PatientMotherBirthName"),
    ((0x0010, 0x1090), "MedicalRecordLocator"),
    ((0x0010, 0x2154), "PatientTelephoneNumbers"),
    ((0x0010, 0x4000), "PatientComments"),
    ((0x0032, 0x1032), "RequestingPhysician"),
    ((0x0038, 0x0010), "AdmissionID"),
];

/// Why a scan stopped before the end of its input (or `End` when it read all of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// All the input was walked.
    End,
    /// Reached Pixel Data: nothing identifying follows.
    PixelData,
    /// An element runs past the end of the prefix.
    Truncated,
    /// Bytes that are not an element of this encoding.
    Invalid,
    /// [`MAX_ELEMENTS`] or [`MAX_DEPTH`].
    Limit,
    /// The encoding is not scanned (big endian, deflated).
    Unsupported,
}

/// What a scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetScan {
    /// Values of [`DEVICE_TAGS`] (same order) found at the top level, non-empty.
    pub device: [Option<String>; 8],
    /// Bit i set: `PHI_TAGS[i]` is present with a non-empty value (or is a sequence with
    /// items).
    pub phi: u32,
    /// SOP Class UID (0008,0016), if present (not PHI).
    pub sop_class_uid: Option<String>,
    pub elements: usize,
    pub stop: Stop,
}

impl DatasetScan {
    /// Keywords of the PHI attributes present, in tag order.
    pub fn phi_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        PHI_TAGS
            .iter()
            .enumerate()
            .filter(|(i, _)| self.phi & (1 << i) != 0)
            .map(|(_, (_, n))| *n)
    }
    /// Whether any device attribute was found.
    pub fn has_device(&self) -> bool {
        self.device.iter().any(Option::is_some)
    }
}

/// Explicit VRs with a 2-byte reserved field and a 4-byte length (PS3.5 7.1.2, Table 7.1-1).
fn long_vr(vr: [u8; 2]) -> bool {
    matches!(
        &vr,
        b"OB"
            | b"OD"
            | b"OF"
            | b"OL"
            | b"OV"
            | b"OW"
            | b"SQ"
            | b"SV"
            | b"UC"
            | b"UN"
            | b"UR"
            | b"UT"
            | b"UV"
    )
}

/// Guesses the encoding of a data set whose transfer syntax is unknown (midstream pickup):
/// explicit VR if the first element's bytes 4-5 are two upper-case letters.
pub fn guess_encoding(prefix: &[u8]) -> Encoding {
    match prefix.get(4..6) {
        Some([a, b]) if a.is_ascii_uppercase() && b.is_ascii_uppercase() => Encoding::ExplicitLe,
        _ => Encoding::ImplicitLe,
    }
}

/// Scans a data set prefix. Never panics; never copies a PHI value.
pub fn scan(b: &[u8], enc: Encoding) -> DatasetScan {
    let mut s = DatasetScan {
        device: Default::default(),
        phi: 0,
        sop_class_uid: None,
        elements: 0,
        stop: Stop::End,
    };
    let explicit = match enc {
        Encoding::ImplicitLe => false,
        Encoding::ExplicitLe => true,
        Encoding::Unsupported => {
            s.stop = Stop::Unsupported;
            return s;
        }
    };
    // End offsets of the open sequences/items (UNDEFINED-length ones end at a delimiter).
    let mut ends: [usize; MAX_DEPTH] = [0; MAX_DEPTH];
    let mut depth = 0usize;
    let mut off = 0usize;
    loop {
        while depth > 0 && ends[depth - 1] <= off {
            depth -= 1;
        }
        if off >= b.len() {
            break;
        }
        if s.elements >= MAX_ELEMENTS {
            s.stop = Stop::Limit;
            break;
        }
        s.elements += 1;
        let (Some(group), Some(elem)) = (le16(b, off), le16(b, off + 2)) else {
            s.stop = Stop::Truncated;
            break;
        };
        if group == 0xFFFE {
            // Item (E000), item delimiter (E00D), sequence delimiter (E0DD): tag + 4-byte
            // length, no VR, in every encoding (PS3.5 7.5).
            let Some(len) = le32(b, off + 4) else {
                s.stop = Stop::Truncated;
                break;
            };
            off += 8;
            match elem {
                0xE000 => {
                    if depth >= MAX_DEPTH {
                        s.stop = Stop::Limit;
                        break;
                    }
                    ends[depth] = if len == UNDEFINED {
                        usize::MAX
                    } else {
                        off.saturating_add(len as usize)
                    };
                    depth += 1;
                }
                0xE00D | 0xE0DD => {
                    // Closes the innermost open undefined-length item or sequence.
                    if depth > 0 && ends[depth - 1] == usize::MAX {
                        depth -= 1;
                    }
                }
                _ => {
                    s.stop = Stop::Invalid;
                    break;
                }
            }
            continue;
        }
        let (len, hdr, sq) = if explicit {
            let (Some(&v0), Some(&v1)) = (b.get(off + 4), b.get(off + 5)) else {
                s.stop = Stop::Truncated;
                break;
            };
            let vr = [v0, v1];
            if !v0.is_ascii_uppercase() || !v1.is_ascii_uppercase() {
                s.stop = Stop::Invalid;
                break;
            }
            if long_vr(vr) {
                let Some(l) = le32(b, off + 8) else {
                    s.stop = Stop::Truncated;
                    break;
                };
                // UN of undefined length is a sequence too (PS3.5 6.2.2).
                (l, 12, &vr == b"SQ" || (l == UNDEFINED && &vr == b"UN"))
            } else {
                let Some(l) = le16(b, off + 6) else {
                    s.stop = Stop::Truncated;
                    break;
                };
                (l as u32, 8, false)
            }
        } else {
            let Some(l) = le32(b, off + 4) else {
                s.stop = Stop::Truncated;
                break;
            };
            (l, 8, l == UNDEFINED)
        };
        let tag = (group, elem);
        if tag == (0x7FE0, 0x0010) && depth == 0 {
            s.stop = Stop::PixelData;
            break;
        }
        if let Some(i) = PHI_TAGS.iter().position(|(t, _)| *t == tag) {
            if len > 0 {
                s.phi |= 1 << i;
            }
        }
        off += hdr;
        if sq || len == UNDEFINED {
            if len == UNDEFINED && !sq {
                // An undefined length on a non-sequence VR (encapsulated data) outside Pixel
                // Data: not walked.
                s.stop = Stop::Invalid;
                break;
            }
            if depth >= MAX_DEPTH {
                if len == UNDEFINED {
                    s.stop = Stop::Limit;
                    break;
                }
                off = off.saturating_add(len as usize);
                continue;
            }
            ends[depth] = if len == UNDEFINED {
                usize::MAX
            } else {
                off.saturating_add(len as usize)
            };
            depth += 1;
            continue;
        }
        let Some(v) = b.get(off..off.saturating_add(len as usize)) else {
            s.stop = Stop::Truncated;
            break;
        };
        off += v.len();
        if depth == 0 {
            if tag == (0x0008, 0x0016) {
                s.sop_class_uid = Some(text(v, 64)).filter(|t| !t.is_empty());
            } else if let Some(i) = DEVICE_TAGS.iter().position(|(t, _)| *t == tag) {
                let t = text(v, MAX_VALUE_LEN);
                if !t.is_empty() {
                    s.device[i] = Some(t);
                }
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el_explicit(out: &mut Vec<u8>, g: u16, e: u16, vr: &[u8; 2], v: &[u8]) {
        out.extend_from_slice(&g.to_le_bytes());
        out.extend_from_slice(&e.to_le_bytes());
        out.extend_from_slice(vr);
        if long_vr(*vr) {
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        } else {
            out.extend_from_slice(&(v.len() as u16).to_le_bytes());
        }
        out.extend_from_slice(v);
    }

    fn el_implicit(out: &mut Vec<u8>, g: u16, e: u16, v: &[u8]) {
        out.extend_from_slice(&g.to_le_bytes());
        out.extend_from_slice(&e.to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }

    /// The shape of nonstd_port.pcap's MR data set (explicit VR LE; values from
    /// pcaps/gen/dicom_files.py): SOP class, modality, manufacturer, a sequence, PHI, pixel data.
    #[test]
    fn explicit_le() {
        let mut d = Vec::new();
        el_explicit(
            &mut d,
            0x0008,
            0x0016,
            b"UI",
            b"1.2.840.10008.5.1.4.1.1.4\0",
        );
        el_explicit(&mut d, 0x0008, 0x0050, b"SH", b"ACC-TEST-0002 ");
        el_explicit(&mut d, 0x0008, 0x0060, b"CS", b"MR");
        el_explicit(&mut d, 0x0008, 0x0070, b"LO", b"SIEMENS ");
        el_explicit(&mut d, 0x0008, 0x0090, b"PN", b""); // empty: not PHI present
                                                         // An undefined-length sequence with one undefined-length item holding a Manufacturer
                                                         // (nested: not the device's) and a PatientName (PHI at any depth).
        d.extend_from_slice(&[
            0x08, 0x00, 0x40, 0x11, b'S', b'Q', 0, 0, 0xff, 0xff, 0xff, 0xff,
        ]);
        d.extend_from_slice(&[0xfe, 0xff, 0x00, 0xe0, 0xff, 0xff, 0xff, 0xff]);
        el_explicit(&mut d, 0x0008, 0x0070, b"LO", b"NESTED");
        el_explicit(&mut d, 0x0010, 0x0010, b"PN", b"TESTPATIENT^BRAVO ");
        d.extend_from_slice(&[0xfe, 0xff, 0x0d, 0xe0, 0, 0, 0, 0]);
        d.extend_from_slice(&[0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]);
        el_explicit(&mut d, 0x0008, 0x1090, b"LO", b"MAGNETOM Skyra");
        el_explicit(&mut d, 0x0010, 0x0020, b"LO", b"PID-TEST-0002 ");
        el_explicit(&mut d, 0x0018, 0x1020, b"LO", b"syngo MR E11");
        el_explicit(&mut d, 0x7FE0, 0x0010, b"OW", &[0u8; 64]);
        let s = scan(&d, Encoding::ExplicitLe);
        assert_eq!(s.stop, Stop::PixelData);
        assert_eq!(s.device[0].as_deref(), Some("MR"));
        assert_eq!(s.device[1].as_deref(), Some("SIEMENS"));
        assert_eq!(s.device[5].as_deref(), Some("MAGNETOM Skyra"));
        assert_eq!(s.device[7].as_deref(), Some("syngo MR E11"));
        assert_eq!(
            s.sop_class_uid.as_deref(),
            Some("1.2.840.10008.5.1.4.1.1.4")
        );
        let names: Vec<_> = s.phi_names().collect();
        assert_eq!(names, ["AccessionNumber", "PatientName", "PatientID"]);
        // No PHI value anywhere in the result.
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("TESTPATIENT") && !dbg.contains("PID-TEST"));
        // Every prefix scans without panicking, and reads a subset.
        for n in 0..d.len() {
            let p = scan(&d[..n], Encoding::ExplicitLe);
            assert_eq!(p.phi & !s.phi, 0);
        }
        // Implicit decoding of explicit bytes: garbage, but no panic.
        let _ = scan(&d, Encoding::ImplicitLe);
        assert_eq!(guess_encoding(&d), Encoding::ExplicitLe);
    }

    /// The shape of store.pcap's implicit-VR CT data set (ct_2.dcm).
    #[test]
    fn implicit_le() {
        let mut d = Vec::new();
        el_implicit(&mut d, 0x0008, 0x0060, b"CT");
        el_implicit(&mut d, 0x0008, 0x0070, b"GE MEDICAL SYSTEMS");
        el_implicit(&mut d, 0x0010, 0x0030, b"19700101");
        el_implicit(&mut d, 0x0010, 0x0040, b"F ");
        el_implicit(&mut d, 0x0018, 0x1000, b"TESTSN-CT-0001");
        // A defined-length sequence with one defined-length item.
        let mut item = Vec::new();
        el_implicit(&mut item, 0x0010, 0x0020, b"OTHER-ID");
        let mut sq = vec![0xfe, 0xff, 0x00, 0xe0];
        sq.extend_from_slice(&(item.len() as u32).to_le_bytes());
        sq.extend_from_slice(&item);
        el_implicit(&mut d, 0x0010, 0x1002, &sq);
        el_implicit(&mut d, 0x7FE0, 0x0010, &[1, 2, 3, 4]);
        let s = scan(&d, Encoding::ImplicitLe);
        assert_eq!(s.stop, Stop::PixelData);
        assert_eq!(s.device[0].as_deref(), Some("CT"));
        assert_eq!(s.device[6].as_deref(), Some("TESTSN-CT-0001"));
        let names: Vec<_> = s.phi_names().collect();
        assert_eq!(
            names,
            ["PatientBirthDate", "PatientSex", "OtherPatientIDsSequence"]
        );
        assert_eq!(guess_encoding(&d), Encoding::ImplicitLe);
        assert_eq!(scan(&d, Encoding::Unsupported).stop, Stop::Unsupported);
    }

    #[test]
    fn hostile_nesting_is_bounded() {
        // 100 nested undefined-length sequences.
        let mut d = Vec::new();
        for _ in 0..100 {
            d.extend_from_slice(&[0x08, 0x00, 0x40, 0x11, 0xff, 0xff, 0xff, 0xff]);
        }
        assert_eq!(scan(&d, Encoding::ImplicitLe).stop, Stop::Limit);
        let s = scan(
            &[0x08, 0x00, 0x60, 0x00, b'c', b's', 2, 0],
            Encoding::ExplicitLe,
        );
        assert_eq!(s.stop, Stop::Invalid);
    }
}
