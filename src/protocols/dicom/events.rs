//! DICOM telemetry: the anomalies and cap hits one association can raise, each counted in
//! `medtap_dicom_errors_total{kind}` and listed by name in the `dicom` event.

use crate::stats::{Family, WorkerStats, DICOM_ERROR_KINDS};

/// What went wrong, as seen on the wire. The snake_case name is the label value and the key in
/// the event's `errors` object; the discriminant indexes [`DICOM_ERROR_KINDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bytes where a PDU header should be that are not one, a PDU body that does not parse, or
    /// a PDV that runs past its PDU.
    MalformedPdu = 0,
    /// An item or sub-item type PS3.8 does not define (kept by type in the event).
    UnknownItem = 1,
    /// A non-P-DATA PDU longer than [`super::state::MAX_PDU_KEPT`]: skipped, not buffered.
    PduTooLarge = 2,
    /// Bytes of the stream were lost (capture drop or reassembly cap).
    Gap = 3,
    /// Bytes were skipped to find the next PDU header (after a gap, malformed bytes, or on
    /// midstream pickup).
    Resync = 4,
    /// More presentation contexts than [`super::state::MAX_CONTEXTS`].
    ContextsCap = 5,
    /// More outstanding DIMSE requests than [`super::state::MAX_PENDING`].
    PendingCap = 6,
    /// A command set that does not decode or is over [`super::state::MAX_COMMAND_SET`].
    Dimse = 7,
    /// A data set prefix that does not decode.
    Dataset = 8,
    /// A PDU the association state does not allow (e.g. P-DATA before A-ASSOCIATE-AC), or an
    /// unknown PDU type.
    UnexpectedPdu = 9,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::MalformedPdu,
        ErrorKind::UnknownItem,
        ErrorKind::PduTooLarge,
        ErrorKind::Gap,
        ErrorKind::Resync,
        ErrorKind::ContextsCap,
        ErrorKind::PendingCap,
        ErrorKind::Dimse,
        ErrorKind::Dataset,
        ErrorKind::UnexpectedPdu,
    ];

    pub fn as_str(self) -> &'static str {
        DICOM_ERROR_KINDS[self as usize]
    }
}

/// Per-association error tally, also counted in the worker's stats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Errors(pub [u32; 10]);

impl Errors {
    pub fn raise(&mut self, kind: ErrorKind, stats: &mut WorkerStats) {
        let c = &mut self.0[kind as usize];
        *c = c.saturating_add(1);
        stats.fam_inc(Family::DicomErrors, kind as usize);
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&n| n == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_label_list() {
        assert_eq!(ErrorKind::ALL.len(), DICOM_ERROR_KINDS.len());
        for (i, k) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i);
        }
        assert_eq!(ErrorKind::UnexpectedPdu.as_str(), "unexpected_pdu");
        assert_eq!(ErrorKind::PduTooLarge.as_str(), "pdu_too_large");
    }
}
