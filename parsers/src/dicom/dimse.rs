//! DIMSE command sets, PS3.7 section 9 (C-services), 10 (N-services) and Annex E.
//!
//! A command set is group 0000 encoded in implicit VR little endian whatever the transfer
//! syntax (PS3.7 6.3.1). [`parse_command_set`] takes the concatenated command fragments of one
//! message and returns the fields medtap reports. Recoverable failures: an element whose length
//! runs past the input stops the walk (`truncated`); an element outside group 0000 stops it too
//! (the rest is not a command set); a set without Command Field is an error. Values kept are
//! cut at [`MAX_UID_LEN`]; the Error Comment (free text) is not kept.

use super::{text, DicomError};
use crate::bytes::{le16, le32};

/// A UID is at most 64 characters (PS3.5 9.1); AE titles 16.
pub const MAX_UID_LEN: usize = 64;
/// Elements walked in one command set (a real one has 5 to 15).
pub const MAX_ELEMENTS: usize = 256;

/// Command Field values, PS3.7 E.1 (requests; a response sets bit 15).
pub mod command {
    pub const C_STORE: u16 = 0x0001;
    pub const C_GET: u16 = 0x0010;
    pub const C_FIND: u16 = 0x0020;
    pub const C_MOVE: u16 = 0x0021;
    pub const C_ECHO: u16 = 0x0030;
    pub const N_EVENT_REPORT: u16 = 0x0100;
    pub const N_GET: u16 = 0x0110;
    pub const N_SET: u16 = 0x0120;
    pub const N_ACTION: u16 = 0x0130;
    pub const N_CREATE: u16 = 0x0140;
    pub const N_DELETE: u16 = 0x0150;
    pub const C_CANCEL: u16 = 0x0FFF;
    pub const RESPONSE: u16 = 0x8000;
}

/// Command Data Set Type value meaning "no data set follows" (PS3.7 E.1).
pub const NO_DATA_SET: u16 = 0x0101;

/// The name of a Command Field value as tshark and PS3.7 spell it (e.g. `C-STORE-RQ`), and its
/// index in the sensor's `DIMSE_COMMANDS` label list (23 = other).
pub fn command_name(field: u16) -> (&'static str, usize) {
    use command::*;
    match field {
        C_STORE => ("C-STORE-RQ", 0),
        0x8001 => ("C-STORE-RSP", 1),
        C_GET => ("C-GET-RQ", 2),
        0x8010 => ("C-GET-RSP", 3),
        C_FIND => ("C-FIND-RQ", 4),
        0x8020 => ("C-FIND-RSP", 5),
        C_MOVE => ("C-MOVE-RQ", 6),
        0x8021 => ("C-MOVE-RSP", 7),
        C_ECHO => ("C-ECHO-RQ", 8),
        0x8030 => ("C-ECHO-RSP", 9),
        C_CANCEL => ("C-CANCEL-RQ", 10),
        N_EVENT_REPORT => ("N-EVENT-REPORT-RQ", 11),
        0x8100 => ("N-EVENT-REPORT-RSP", 12),
        N_GET => ("N-GET-RQ", 13),
        0x8110 => ("N-GET-RSP", 14),
        N_SET => ("N-SET-RQ", 15),
        0x8120 => ("N-SET-RSP", 16),
        N_ACTION => ("N-ACTION-RQ", 17),
        0x8130 => ("N-ACTION-RSP", 18),
        N_CREATE => ("N-CREATE-RQ", 19),
        0x8140 => ("N-CREATE-RSP", 20),
        N_DELETE => ("N-DELETE-RQ", 21),
        0x8150 => ("N-DELETE-RSP", 22),
        _ => ("other", 23),
    }
}

/// Status classes, PS3.7 Annex C. The discriminant indexes the sensor's
/// `DIMSE_STATUS_CLASSES` (0 = none, for requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    Success = 1,
    Pending = 2,
    Warning = 3,
    Failure = 4,
    Cancel = 5,
}

impl StatusClass {
    /// PS3.7 C.1-C.5: 0000 success; FF00/FF01 pending; FE00 cancel; 0001, Bxxx, 0107, 0116
    /// warning; everything else (Axxx, Cxxx, 01xx, 02xx and values no service defines) failure.
    pub fn of(status: u16) -> StatusClass {
        match status {
            0x0000 => StatusClass::Success,
            0xFF00 | 0xFF01 => StatusClass::Pending,
            0xFE00 => StatusClass::Cancel,
            0x0001 | 0x0107 | 0x0116 | 0xB000..=0xBFFF => StatusClass::Warning,
            _ => StatusClass::Failure,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StatusClass::Success => "success",
            StatusClass::Pending => "pending",
            StatusClass::Warning => "warning",
            StatusClass::Failure => "failure",
            StatusClass::Cancel => "cancel",
        }
    }
}

/// The fields of a command set medtap reports. Strings are printable ASCII, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandSet {
    /// (0000,0100).
    pub command_field: u16,
    /// (0000,0110).
    pub message_id: Option<u16>,
    /// (0000,0120).
    pub message_id_being_responded_to: Option<u16>,
    /// (0000,0002).
    pub affected_sop_class_uid: Option<String>,
    /// (0000,0003).
    pub requested_sop_class_uid: Option<String>,
    /// (0000,1000).
    pub affected_sop_instance_uid: Option<String>,
    /// (0000,1001).
    pub requested_sop_instance_uid: Option<String>,
    /// (0000,0600) Move Destination (an AE title).
    pub move_destination: Option<String>,
    /// (0000,0700).
    pub priority: Option<u16>,
    /// (0000,0800): [`NO_DATA_SET`] means none follows.
    pub data_set_type: Option<u16>,
    /// (0000,0900).
    pub status: Option<u16>,
    /// (0000,1020)-(0000,1023): remaining, completed, failed, warning sub-operations.
    pub sub_operations: [Option<u16>; 4],
    /// The walk stopped before the end of the input (element past the end, wrong group, or
    /// too many elements).
    pub truncated: bool,
}

impl CommandSet {
    pub fn is_response(&self) -> bool {
        self.command_field & command::RESPONSE != 0
    }
    /// A data set follows this command (PS3.7 E.1: any value but 0101H).
    pub fn has_data_set(&self) -> bool {
        self.data_set_type.is_some_and(|t| t != NO_DATA_SET)
    }
    pub fn status_class(&self) -> Option<StatusClass> {
        self.status.map(StatusClass::of)
    }
}

/// Reads a command set (implicit VR LE, group 0000). Errors: empty input or no Command Field.
pub fn parse_command_set(b: &[u8]) -> Result<CommandSet, DicomError> {
    let mut cs = CommandSet::default();
    let mut have_field = false;
    let mut off = 0usize;
    for _ in 0..MAX_ELEMENTS {
        if off >= b.len() {
            break;
        }
        // Tag group (2), element (2), length (4), value. PS3.5 7.1.3.
        let (Some(group), Some(elem), Some(len)) =
            (le16(b, off), le16(b, off + 2), le32(b, off + 4))
        else {
            cs.truncated = true;
            break;
        };
        let start = off + 8;
        let Some(v) = b.get(start..start.saturating_add(len as usize)) else {
            cs.truncated = true;
            break;
        };
        if group != 0x0000 {
            cs.truncated = true;
            break;
        }
        off = start + v.len();
        let us = || le16(v, 0);
        let ui = || Some(text(v, MAX_UID_LEN));
        match elem {
            0x0002 => cs.affected_sop_class_uid = ui(),
            0x0003 => cs.requested_sop_class_uid = ui(),
            0x0100 => {
                if let Some(f) = us() {
                    cs.command_field = f;
                    have_field = true;
                }
            }
            0x0110 => cs.message_id = us(),
            0x0120 => cs.message_id_being_responded_to = us(),
            0x0600 => cs.move_destination = Some(text(v, 16)),
            0x0700 => cs.priority = us(),
            0x0800 => cs.data_set_type = us(),
            0x0900 => cs.status = us(),
            0x1000 => cs.affected_sop_instance_uid = ui(),
            0x1001 => cs.requested_sop_instance_uid = ui(),
            0x1020..=0x1023 => cs.sub_operations[(elem - 0x1020) as usize] = us(),
            _ => {}
        }
    }
    if off < b.len() {
        cs.truncated = true;
    }
    if !have_field {
        return Err(DicomError::invalid(
            "dimse",
            0,
            "no Command Field (0000,0100)",
        ));
    }
    Ok(cs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dicom::pdu::tests::hex;

    /// echo.pcap frame 16: C-ECHO-RSP command set (tshark: Message ID Being Responded To 1,
    /// Command Data Set Type 257, Status Success).
    const ECHO_RSP: &str = "000000000400000042000000 0000020012000000312e322e3834302e31303030382e312e3100 00000001020000003080 00002001020000000100 00000008020000000101 00000009020000000000";

    #[test]
    fn echo_rsp() {
        let b = &hex(ECHO_RSP)[..];
        assert_eq!(b.len(), 12 + 66); // group length 66
        let cs = parse_command_set(b).unwrap();
        assert_eq!(command_name(cs.command_field), ("C-ECHO-RSP", 9));
        assert_eq!(cs.message_id_being_responded_to, Some(1));
        assert_eq!(
            cs.affected_sop_class_uid.as_deref(),
            Some("1.2.840.10008.1.1")
        );
        assert_eq!(cs.status, Some(0));
        assert_eq!(cs.status_class(), Some(StatusClass::Success));
        assert!(cs.is_response() && !cs.has_data_set() && !cs.truncated);
        // Every prefix: an error or a subset, never a panic.
        for n in 0..b.len() {
            if let Ok(c) = parse_command_set(&b[..n]) {
                assert_eq!(c.command_field, 0x8030);
                assert!(c.status.is_none() || n == b.len());
            }
        }
    }

    /// find.pcap frame 12: C-FIND-RQ (Study Root FIND, message id 1, priority 0, data set
    /// follows: Command Data Set Type 1).
    #[test]
    fn find_rq() {
        let uid = b"1.2.840.10008.5.1.4.1.2.2.1\0";
        let mut b = Vec::new();
        let mut el = |e: u16, v: &[u8]| {
            b.extend_from_slice(&0u16.to_le_bytes());
            b.extend_from_slice(&e.to_le_bytes());
            b.extend_from_slice(&(v.len() as u32).to_le_bytes());
            b.extend_from_slice(v);
        };
        el(0x0000, &76u32.to_le_bytes());
        el(0x0002, uid);
        el(0x0100, &0x20u16.to_le_bytes());
        el(0x0110, &1u16.to_le_bytes());
        el(0x0700, &0u16.to_le_bytes());
        el(0x0800, &1u16.to_le_bytes());
        let cs = parse_command_set(&b).unwrap();
        assert_eq!(command_name(cs.command_field).0, "C-FIND-RQ");
        assert_eq!(
            cs.affected_sop_class_uid.as_deref(),
            Some("1.2.840.10008.5.1.4.1.2.2.1")
        );
        assert_eq!(cs.message_id, Some(1));
        assert!(cs.has_data_set() && !cs.is_response());
        assert_eq!(cs.status_class(), None);
    }

    #[test]
    fn status_classes() {
        assert_eq!(StatusClass::of(0xFF00), StatusClass::Pending);
        assert_eq!(StatusClass::of(0xFF01), StatusClass::Pending);
        assert_eq!(StatusClass::of(0xB007), StatusClass::Warning);
        assert_eq!(StatusClass::of(0xA700), StatusClass::Failure);
        assert_eq!(StatusClass::of(0xC001), StatusClass::Failure);
        assert_eq!(StatusClass::of(0x0122), StatusClass::Failure);
        assert_eq!(StatusClass::of(0xFE00), StatusClass::Cancel);
        assert_eq!(command_name(0x1234), ("other", 23));
        assert!(parse_command_set(&[]).is_err());
        // A data set element (group 0008) is not a command set.
        assert!(parse_command_set(&hex("0800 6000 02000000 4354")).is_err());
    }
}
