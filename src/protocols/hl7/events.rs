//! HL7 anomalies: what medtap saw that is off, each with a stable snake_case name used in the
//! `anomalies` list of the `hl7` event and as the `kind` label of `medtap_hl7_errors_total`.

use crate::stats::{Family, WorkerStats, HL7_ERROR_KINDS};

/// One kind of HL7 / MLLP problem. The names are those of [`HL7_ERROR_KINDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anomaly {
    /// An MLLP frame without its end block: the next start block (or the flow's end) came first.
    UnterminatedFrame,
    /// Bytes between MLLP frames (counted once per run of such bytes).
    OutsideFrame,
    /// A message longer than [`super::MAX_MESSAGE_BYTES`]: its head was read, the rest skipped.
    TooLarge,
    /// Bytes of the stream were lost (capture drop or reassembly cap); counted once per gap.
    Gap,
    /// Lines that are not segments, or segments that could not be parsed.
    Malformed,
    /// A message that does not start with MSH (or a batch header).
    NoMsh,
    /// MSH-1/MSH-2 that are not usable delimiters.
    BadDelimiters,
    /// Segments ended by LF or CR LF instead of CR.
    NonCrSegmentTerminator,
    /// Text that is not UTF-8 (read as ISO-8859-1).
    NonUtf8,
    /// A message whose acknowledgement was not seen before the flow ended (or before
    /// [`super::MAX_PENDING_ACKS`] later messages pushed it out).
    Unacknowledged,
}

impl Anomaly {
    pub const ALL: [Anomaly; 10] = [
        Anomaly::UnterminatedFrame,
        Anomaly::OutsideFrame,
        Anomaly::TooLarge,
        Anomaly::Gap,
        Anomaly::Malformed,
        Anomaly::NoMsh,
        Anomaly::BadDelimiters,
        Anomaly::NonCrSegmentTerminator,
        Anomaly::NonUtf8,
        Anomaly::Unacknowledged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Anomaly::UnterminatedFrame => "unterminated_frame",
            Anomaly::OutsideFrame => "outside_frame",
            Anomaly::TooLarge => "too_large",
            Anomaly::Gap => "gap",
            Anomaly::Malformed => "malformed",
            Anomaly::NoMsh => "no_msh",
            Anomaly::BadDelimiters => "bad_delimiters",
            Anomaly::NonCrSegmentTerminator => "non_cr_segment_terminator",
            Anomaly::NonUtf8 => "non_utf8",
            Anomaly::Unacknowledged => "unacknowledged",
        }
    }

    /// Counts one in `medtap_hl7_errors_total{kind}`.
    pub fn count(self, stats: &mut WorkerStats) {
        let i = HL7_ERROR_KINDS
            .iter()
            .position(|&k| k == self.as_str())
            .unwrap_or(usize::MAX);
        stats.fam_inc(Family::Hl7Errors, i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_anomaly_has_its_label() {
        for a in Anomaly::ALL {
            assert!(HL7_ERROR_KINDS.contains(&a.as_str()), "{a:?}");
        }
        assert_eq!(Anomaly::ALL.len(), HL7_ERROR_KINDS.len());
    }
}
