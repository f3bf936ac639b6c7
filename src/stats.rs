//! Counters kept by each worker as plain integers on the packet path, merged into the
//! Prometheus registry ([`crate::metrics`]) once per batch, so a packet never takes a lock.
//!
//! Adding a counter: add a variant to [`Counter`] and its row in [`Counter::spec`]. Label values
//! come from this table only, never from a packet.

/// Declares [`Counter`] and the list of all its variants from one list, so the two cannot
/// drift apart.
macro_rules! counters {
    ($($variant:ident,)*) => {
        /// Every counter medtap keeps. The discriminant indexes [`WorkerStats::c`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(usize)]
        pub enum Counter {
            $($variant,)*
        }

        const ALL: [Counter; Counter::COUNT] = [$(Counter::$variant,)*];
    };
}

counters! {
    Packets,
    Bytes,
    // decode errors, by layer and kind
    DecodeLinkTruncated,
    DecodeLinkUnsupported,
    DecodeVlanTruncated,
    DecodeVlanTooDeep,
    DecodeIpv4Truncated,
    DecodeIpv4Invalid,
    DecodeIpv6Truncated,
    DecodeIpv6Invalid,
    DecodeIpv6ExtTruncated,
    DecodeTcpTruncated,
    DecodeTcpInvalid,
    DecodeUdpTruncated,
    DecodeIcmpTruncated,
    DecodeNotIp,
    Ipv4Fragments,
    // flows
    FlowsCreatedTcp,
    FlowsCreatedUdp,
    FlowsCreatedIcmp,
    FlowsCreatedOther,
    FlowsEndedTcpClose,
    FlowsEndedIdleTimeout,
    FlowsEndedActiveTimeout,
    FlowsEndedTableFull,
    FlowsEndedShutdown,
    // reassembly
    ReasmSegments,
    ReasmOutOfOrder,
    ReasmRetransmissions,
    ReasmOverlaps,
    ReasmOverlapsDifferent,
    ReasmGaps,
    ReasmGapBytes,
    ReasmFlowCapHits,
    ReasmGlobalCapHits,
    ReasmMidstreamPickups,
    // app protocols, flows identified
    AppTls,
    AppDicom,
    AppHl7,
    AppHttp,
    AppSmb,
    AppFtp,
    AppTelnet,
    AppDhcp,
    AppDns,
    AppSnmp,
    AppTftp,
    AppRfb,
    AppRdp,
    AppRlogin,
    AppRsh,
    AppRexec,
    AppNetbios,
    AppUnknown,
    // TLS
    TlsClientHello,
    TlsServerHello,
    TlsParseError,
    TlsRecordTooLarge,
    // events
    EventsProduced,
    EventsDropped,
}

/// (metric name, help, labels).
pub type Spec = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const DECODE: &str = "Packets, or parts of them, that could not be decoded, by layer and kind.";
const CREATED: &str = "Flows created, by transport protocol.";
const ENDED: &str = "Flows ended, by reason.";
const APP: &str = "Flows whose application protocol was identified, by protocol.";

impl Counter {
    pub const COUNT: usize = Counter::EventsDropped as usize + 1;

    pub fn all() -> impl Iterator<Item = Counter> {
        ALL.into_iter()
    }

    pub fn spec(self) -> Spec {
        use Counter::*;
        match self {
            Packets => ("medtap_packets_total", "Packets read from the capture.", &[]),
            Bytes => ("medtap_bytes_total", "Bytes on the wire of the packets read (original length).", &[]),
            DecodeLinkTruncated => ("medtap_decode_errors_total", DECODE, &[("layer", "link"), ("kind", "truncated")]),
            DecodeLinkUnsupported => ("medtap_decode_errors_total", DECODE, &[("layer", "link"), ("kind", "unsupported")]),
            DecodeVlanTruncated => ("medtap_decode_errors_total", DECODE, &[("layer", "vlan"), ("kind", "truncated")]),
            DecodeVlanTooDeep => ("medtap_decode_errors_total", DECODE, &[("layer", "vlan"), ("kind", "too_deep")]),
            DecodeIpv4Truncated => ("medtap_decode_errors_total", DECODE, &[("layer", "ipv4"), ("kind", "truncated")]),
            DecodeIpv4Invalid => ("medtap_decode_errors_total", DECODE, &[("layer", "ipv4"), ("kind", "invalid")]),
            DecodeIpv6Truncated => ("medtap_decode_errors_total", DECODE, &[("layer", "ipv6"), ("kind", "truncated")]),
            DecodeIpv6Invalid => ("medtap_decode_errors_total", DECODE, &[("layer", "ipv6"), ("kind", "invalid")]),
            DecodeIpv6ExtTruncated => ("medtap_decode_errors_total", DECODE, &[("layer", "ipv6_ext"), ("kind", "truncated")]),
            DecodeTcpTruncated => ("medtap_decode_errors_total", DECODE, &[("layer", "tcp"), ("kind", "truncated")]),
            DecodeTcpInvalid => ("medtap_decode_errors_total", DECODE, &[("layer", "tcp"), ("kind", "invalid")]),
            DecodeUdpTruncated => ("medtap_decode_errors_total", DECODE, &[("layer", "udp"), ("kind", "truncated")]),
            DecodeIcmpTruncated => ("medtap_decode_errors_total", DECODE, &[("layer", "icmp"), ("kind", "truncated")]),
            DecodeNotIp => ("medtap_decode_non_ip_packets_total", "Packets with no IP layer (ARP, LLDP, STP, ...).", &[]),
            Ipv4Fragments => ("medtap_decode_ipv4_fragments_total", "IPv4 fragments seen (not reassembled; only first fragments reach the flow table).", &[]),
            FlowsCreatedTcp => ("medtap_flows_created_total", CREATED, &[("proto", "tcp")]),
            FlowsCreatedUdp => ("medtap_flows_created_total", CREATED, &[("proto", "udp")]),
            FlowsCreatedIcmp => ("medtap_flows_created_total", CREATED, &[("proto", "icmp")]),
            FlowsCreatedOther => ("medtap_flows_created_total", CREATED, &[("proto", "other")]),
            FlowsEndedTcpClose => ("medtap_flows_ended_total", ENDED, &[("reason", "tcp_close")]),
            FlowsEndedIdleTimeout => ("medtap_flows_ended_total", ENDED, &[("reason", "idle_timeout")]),
            FlowsEndedActiveTimeout => ("medtap_flows_ended_total", ENDED, &[("reason", "active_timeout")]),
            FlowsEndedTableFull => ("medtap_flows_ended_total", ENDED, &[("reason", "table_full")]),
            FlowsEndedShutdown => ("medtap_flows_ended_total", ENDED, &[("reason", "shutdown")]),
            ReasmSegments => ("medtap_reassembly_segments_total", "TCP segments with payload handed to reassembly.", &[]),
            ReasmOutOfOrder => ("medtap_reassembly_out_of_order_total", "TCP segments that arrived ahead of a hole and were buffered.", &[]),
            ReasmRetransmissions => ("medtap_reassembly_retransmissions_total", "TCP segments whose bytes had all been seen already.", &[]),
            ReasmOverlaps => ("medtap_reassembly_overlaps_total", "TCP segments overlapping bytes already held (first copy kept).", &[]),
            ReasmOverlapsDifferent => ("medtap_reassembly_overlaps_different_total", "Overlapping TCP segments whose bytes differ from the first copy (evasion or corruption).", &[]),
            ReasmGaps => ("medtap_reassembly_gaps_total", "Holes in a TCP byte stream handed to the protocol layer as gaps.", &[]),
            ReasmGapBytes => ("medtap_reassembly_gap_bytes_total", "Bytes missing in TCP streams, reported as gaps.", &[]),
            ReasmFlowCapHits => ("medtap_reassembly_cap_hits_total", "Times a reassembly byte cap was hit.", &[("cap", "flow")]),
            ReasmGlobalCapHits => ("medtap_reassembly_cap_hits_total", "Times a reassembly byte cap was hit.", &[("cap", "global")]),
            ReasmMidstreamPickups => ("medtap_reassembly_midstream_total", "TCP streams picked up without their SYN.", &[]),
            AppTls => ("medtap_app_flows_total", APP, &[("app_proto", "tls")]),
            AppDicom => ("medtap_app_flows_total", APP, &[("app_proto", "dicom")]),
            AppHl7 => ("medtap_app_flows_total", APP, &[("app_proto", "hl7")]),
            AppHttp => ("medtap_app_flows_total", APP, &[("app_proto", "http")]),
            AppSmb => ("medtap_app_flows_total", APP, &[("app_proto", "smb")]),
            AppFtp => ("medtap_app_flows_total", APP, &[("app_proto", "ftp")]),
            AppTelnet => ("medtap_app_flows_total", APP, &[("app_proto", "telnet")]),
            AppDhcp => ("medtap_app_flows_total", APP, &[("app_proto", "dhcp")]),
            AppDns => ("medtap_app_flows_total", APP, &[("app_proto", "dns")]),
            AppSnmp => ("medtap_app_flows_total", APP, &[("app_proto", "snmp")]),
            AppTftp => ("medtap_app_flows_total", APP, &[("app_proto", "tftp")]),
            AppRfb => ("medtap_app_flows_total", APP, &[("app_proto", "rfb")]),
            AppRdp => ("medtap_app_flows_total", APP, &[("app_proto", "rdp")]),
            AppRlogin => ("medtap_app_flows_total", APP, &[("app_proto", "rlogin")]),
            AppRsh => ("medtap_app_flows_total", APP, &[("app_proto", "rsh")]),
            AppRexec => ("medtap_app_flows_total", APP, &[("app_proto", "rexec")]),
            AppNetbios => ("medtap_app_flows_total", APP, &[("app_proto", "netbios")]),
            AppUnknown => ("medtap_app_flows_total", APP, &[("app_proto", "unknown")]),
            TlsClientHello => ("medtap_tls_handshakes_total", "TLS hello messages decoded, by side.", &[("side", "client")]),
            TlsServerHello => ("medtap_tls_handshakes_total", "TLS hello messages decoded, by side.", &[("side", "server")]),
            TlsParseError => ("medtap_tls_errors_total", "TLS handshake bytes that could not be decoded, by kind.", &[("kind", "parse")]),
            TlsRecordTooLarge => ("medtap_tls_errors_total", "TLS handshake bytes that could not be decoded, by kind.", &[("kind", "too_large")]),
            EventsProduced => ("medtap_events_total", "Events produced by the pipeline.", &[]),
            EventsDropped => ("medtap_events_dropped_total", "Events dropped because the output queue was full (live capture only).", &[]),
        }
    }
}

/// Counter families whose label values come from fixed lists in this file (one or two labels),
/// for protocol counters with many label values. Index the values with the lists below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Family {
    /// `medtap_dicom_associations_total{result}`: [`DICOM_ASSOC_RESULTS`].
    DicomAssociations,
    /// `medtap_dicom_pdus_total{type}`: [`DICOM_PDU_TYPES`].
    DicomPdus,
    /// `medtap_dicom_errors_total{kind}`: [`DICOM_ERROR_KINDS`].
    DicomErrors,
    /// `medtap_dicom_dimse_total{command,status_class}`: [`DIMSE_COMMANDS`] x [`DIMSE_STATUS_CLASSES`].
    DicomDimse,
    /// `medtap_hl7_messages_total{message_type}`: [`HL7_MESSAGE_TYPES`].
    Hl7Messages,
    /// `medtap_hl7_acks_total{code}`: [`HL7_ACK_CODES`].
    Hl7Acks,
    /// `medtap_hl7_errors_total{kind}`: [`HL7_ERROR_KINDS`].
    Hl7Errors,
}

pub const DICOM_ASSOC_RESULTS: &[&str] = &["accepted", "rejected", "aborted", "incomplete"];
/// PS3.8 9.3: PDU types 0x01..=0x07, then anything else.
pub const DICOM_PDU_TYPES: &[&str] = &[
    "a_associate_rq",
    "a_associate_ac",
    "a_associate_rj",
    "p_data_tf",
    "a_release_rq",
    "a_release_rp",
    "a_abort",
    "unknown",
];
pub const DICOM_ERROR_KINDS: &[&str] = &[
    "malformed_pdu",
    "unknown_item",
    "pdu_too_large",
    "gap",
    "resync",
    "contexts_cap",
    "pending_cap",
    "dimse",
    "dataset",
    "unexpected_pdu",
];
/// DIMSE command names (PS3.7 E.1), requests and responses, then anything else.
pub const DIMSE_COMMANDS: &[&str] = &[
    "C-STORE-RQ",
    "C-STORE-RSP",
    "C-GET-RQ",
    "C-GET-RSP",
    "C-FIND-RQ",
    "C-FIND-RSP",
    "C-MOVE-RQ",
    "C-MOVE-RSP",
    "C-ECHO-RQ",
    "C-ECHO-RSP",
    "C-CANCEL-RQ",
    "N-EVENT-REPORT-RQ",
    "N-EVENT-REPORT-RSP",
    "N-GET-RQ",
    "N-GET-RSP",
    "N-SET-RQ",
    "N-SET-RSP",
    "N-ACTION-RQ",
    "N-ACTION-RSP",
    "N-CREATE-RQ",
    "N-CREATE-RSP",
    "N-DELETE-RQ",
    "N-DELETE-RSP",
    "other",
];
/// PS3.7 C: "none" for requests (no Status), then the classes of a response Status.
pub const DIMSE_STATUS_CLASSES: &[&str] =
    &["none", "success", "pending", "warning", "failure", "cancel"];
/// The message types counted by name; anything else is "other".
pub const HL7_MESSAGE_TYPES: &[&str] = &[
    "ADT", "ORU", "ORM", "OML", "SIU", "MDM", "DFT", "RDE", "RAS", "ACK", "QBP", "RSP", "VXU",
    "other",
];
/// MSA-1 acknowledgment codes (HL7 v2 table 0008), then anything else.
pub const HL7_ACK_CODES: &[&str] = &["AA", "AE", "AR", "CA", "CE", "CR", "other"];
pub const HL7_ERROR_KINDS: &[&str] = &[
    "unterminated_frame",
    "outside_frame",
    "too_large",
    "gap",
    "malformed",
    "no_msh",
    "bad_delimiters",
    "non_cr_segment_terminator",
    "non_utf8",
    "unacknowledged",
];

impl Family {
    pub const ALL: [Family; 7] = [
        Family::DicomAssociations,
        Family::DicomPdus,
        Family::DicomErrors,
        Family::DicomDimse,
        Family::Hl7Messages,
        Family::Hl7Acks,
        Family::Hl7Errors,
    ];

    /// (metric name, help, label names, value lists). Two value lists = two labels.
    pub fn spec(
        self,
    ) -> (
        &'static str,
        &'static str,
        &'static [&'static str],
        &'static [&'static [&'static str]],
    ) {
        match self {
            Family::DicomAssociations => (
                "medtap_dicom_associations_total",
                "DICOM associations ended, by result.",
                &["result"],
                &[DICOM_ASSOC_RESULTS],
            ),
            Family::DicomPdus => (
                "medtap_dicom_pdus_total",
                "DICOM PDUs decoded, by type.",
                &["type"],
                &[DICOM_PDU_TYPES],
            ),
            Family::DicomErrors => (
                "medtap_dicom_errors_total",
                "DICOM bytes that could not be decoded or caps hit, by kind.",
                &["kind"],
                &[DICOM_ERROR_KINDS],
            ),
            Family::DicomDimse => (
                "medtap_dicom_dimse_total",
                "DIMSE messages decoded, by command and status class.",
                &["command", "status_class"],
                &[DIMSE_COMMANDS, DIMSE_STATUS_CLASSES],
            ),
            Family::Hl7Messages => (
                "medtap_hl7_messages_total",
                "HL7 v2 messages decoded, by message type (MSH-9.1).",
                &["message_type"],
                &[HL7_MESSAGE_TYPES],
            ),
            Family::Hl7Acks => (
                "medtap_hl7_acks_total",
                "HL7 v2 acknowledgements, by MSA-1 code.",
                &["code"],
                &[HL7_ACK_CODES],
            ),
            Family::Hl7Errors => (
                "medtap_hl7_errors_total",
                "HL7 v2 / MLLP framing and parse problems, by kind.",
                &["kind"],
                &[HL7_ERROR_KINDS],
            ),
        }
    }

    /// Number of counters in the family.
    pub fn size(self) -> usize {
        self.spec().3.iter().map(|v| v.len()).product()
    }

    /// Offset of the family's first counter in [`WorkerStats::fam`].
    pub fn offset(self) -> usize {
        Family::ALL[..self as usize].iter().map(|f| f.size()).sum()
    }
}

/// Total number of family counters (checked against the table in a test).
pub const FAMILY_SLOTS: usize = 4 + 8 + 10 + 24 * 6 + 14 + 7 + 10;

/// A worker's counters. Plain integers: the worker owns them, the merge reads deltas.
#[derive(Clone, Debug)]
pub struct WorkerStats {
    pub c: [u64; Counter::COUNT],
    /// The [`Family`] counters, each family at its [`Family::offset`].
    pub fam: [u64; FAMILY_SLOTS],
    /// Flows in this worker's table now (a gauge, not a counter).
    pub flows_active: u64,
    /// The most flows this worker's table held at once (a gauge; summed over workers, an
    /// upper bound of the process's peak).
    pub flows_peak: u64,
    /// Bytes held by this worker's reassembly buffers now.
    pub reasm_bytes: u64,
}

impl Default for WorkerStats {
    fn default() -> Self {
        WorkerStats {
            c: [0; Counter::COUNT],
            fam: [0; FAMILY_SLOTS],
            flows_active: 0,
            flows_peak: 0,
            reasm_bytes: 0,
        }
    }
}

impl WorkerStats {
    #[inline]
    pub fn inc(&mut self, c: Counter) {
        self.c[c as usize] += 1;
    }
    #[inline]
    pub fn add(&mut self, c: Counter, n: u64) {
        self.c[c as usize] += n;
    }
    #[inline]
    pub fn get(&self, c: Counter) -> u64 {
        self.c[c as usize]
    }
    /// Count one in a one-label family; an index past the value list counts as the last value
    /// (by convention "other"/"unknown").
    #[inline]
    pub fn fam_inc(&mut self, f: Family, i: usize) {
        let n = f.size();
        if let Some(c) = self.fam.get_mut(f.offset() + i.min(n.saturating_sub(1))) {
            *c += 1;
        }
    }
    /// Count one in a two-label family at (`i`, `j`), clamped like [`WorkerStats::fam_inc`].
    #[inline]
    pub fn fam_inc2(&mut self, f: Family, i: usize, j: usize) {
        let vals = f.spec().3;
        let (ni, nj) = (vals[0].len(), vals.get(1).map_or(1, |v| v.len()));
        let idx = i.min(ni - 1) * nj + j.min(nj - 1);
        if let Some(c) = self.fam.get_mut(f.offset() + idx) {
            *c += 1;
        }
    }
    /// Add every counter of `other` (gauges are left alone).
    pub fn add_all(&mut self, other: &WorkerStats) {
        for (a, b) in self.c.iter_mut().zip(other.c.iter()) {
            *a += b;
        }
        for (a, b) in self.fam.iter_mut().zip(other.fam.iter()) {
            *a += b;
        }
    }
    pub fn fam_get(&self, f: Family, i: usize) -> u64 {
        self.fam.get(f.offset() + i).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_slots_match_the_table() {
        let total: usize = Family::ALL.iter().map(|f| f.size()).sum();
        assert_eq!(total, FAMILY_SLOTS);
        for (i, f) in Family::ALL.iter().enumerate() {
            assert_eq!(*f as usize, i);
        }
        let mut s = WorkerStats::default();
        s.fam_inc2(Family::DicomDimse, 0, 1);
        s.fam_inc(Family::Hl7Errors, 999);
        assert_eq!(s.fam[Family::DicomDimse.offset() + 1], 1);
        assert_eq!(s.fam[FAMILY_SLOTS - 1], 1);
    }

    #[test]
    fn table_is_dense_and_ordered() {
        for (i, c) in Counter::all().enumerate() {
            assert_eq!(c as usize, i, "{c:?} out of order in ALL");
        }
    }
}
