//! Counters kept by each worker as plain integers on the packet path, merged into the
//! Prometheus registry ([`crate::metrics`]) once per batch, so a packet never takes a lock.
//!
//! Adding a counter: add a variant to [`Counter`] and its row in [`Counter::spec`]. Label values
//! come from this table only, never from a packet.

/// Every counter medtap keeps. The discriminant indexes [`WorkerStats::c`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Counter {
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
        (0..Self::COUNT).map(|i| {
            // SAFETY-free: the enum is a dense repr(usize) range 0..COUNT.
            ALL[i]
        })
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

use Counter::*;
const ALL: [Counter; Counter::COUNT] = [
    Packets,
    Bytes,
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
    FlowsCreatedTcp,
    FlowsCreatedUdp,
    FlowsCreatedIcmp,
    FlowsCreatedOther,
    FlowsEndedTcpClose,
    FlowsEndedIdleTimeout,
    FlowsEndedActiveTimeout,
    FlowsEndedTableFull,
    FlowsEndedShutdown,
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
    AppUnknown,
    TlsClientHello,
    TlsServerHello,
    TlsParseError,
    TlsRecordTooLarge,
    EventsProduced,
    EventsDropped,
];

/// A worker's counters. Plain integers: the worker owns them, the merge reads deltas.
#[derive(Clone, Debug)]
pub struct WorkerStats {
    pub c: [u64; Counter::COUNT],
    /// Flows in this worker's table now (a gauge, not a counter).
    pub flows_active: u64,
    /// Bytes held by this worker's reassembly buffers now.
    pub reasm_bytes: u64,
}

impl Default for WorkerStats {
    fn default() -> Self {
        WorkerStats {
            c: [0; Counter::COUNT],
            flows_active: 0,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_dense_and_ordered() {
        for (i, c) in Counter::all().enumerate() {
            assert_eq!(c as usize, i, "{c:?} out of order in ALL");
        }
    }
}
