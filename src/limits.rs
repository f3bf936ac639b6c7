//! Every cap and timeout medtap has, in one table: name, default, valid range, and why.
//!
//! Nothing read from the wire decides an allocation size; these do. Each cap has a counter when
//! it is hit (see [`crate::stats::Counter`]). Values can be set in the `[limits]` and
//! `[timeouts]` tables of the `--config` file; a value outside its range is a configuration
//! error (exit 2).
//!
//! Other per-flow protocol caps are fixed constants next to the state they bound, each counted
//! when hit and reported once per flow (or message) in its event:
//!
//! | cap | value | constant |
//! | --- | --- | --- |
//! | TLS hello bytes buffered per direction | 32 KiB | [`crate::protocols::tls::MAX_HANDSHAKE_BUF`] |
//! | DICOM presentation contexts | 128 | [`crate::protocols::dicom::state::MAX_CONTEXTS`] |
//! | DICOM pending requests | 64 | [`crate::protocols::dicom::state::MAX_PENDING`] |
//! | DICOM command set bytes | 16 KiB | [`crate::protocols::dicom::state::MAX_COMMAND_SET`] |
//! | DICOM data set prefix scanned | 32 KiB | [`crate::protocols::dicom::state::MAX_DATASET_PREFIX`] |
//! | HL7 messages awaiting an acknowledgement | 64 | [`crate::protocols::hl7::MAX_PENDING_ACKS`] |
//! | bytes held by protocol detection per direction | 512 | `flow::PROBE_BUF` |
//! | SMB frame bytes kept (file data is skipped) | 8 KiB | [`crate::protocols::smb::MAX_FRAME_KEPT`] |
//! | FTP/HTTP line bytes kept per direction | 2 KiB | [`crate::protocols::lines::MAX_LINE`] |
//!
//! Reading a pcapng file whose interfaces have different link types (which libpcap refuses):
//! one block buffer (the `pcap-parser` reader's), 256 KiB at first
//! ([`crate::pcapng::START_BUFFER`]), grown to the largest block met but never past 16 MiB
//! ([`crate::pcapng::MAX_BLOCK`], libpcap's own limit; a bigger block ends the file) and
//! at most 4096 interfaces per section ([`crate::pcapng::MAX_INTERFACES`]).
//!
//! Identification (central thread): rule matches cached by evidence value, 16,384 distinct
//! values ([`crate::fingerprint::identify::MATCH_CACHE_ENTRIES`]; emptied when full).
//!
//! Detection state (central thread; a full table skips the new key and counts
//! `medtap_detect_cap_hits_total{table}`):
//!
//! | table | cap | constant |
//! | --- | --- | --- |
//! | alert de-duplication entries | 1024 | [`crate::detect::MAX_DEDUP`] |
//! | devices with a behaviour baseline | 4096 | [`crate::detect::anomaly::MAX_DEVICES`] |
//! | peers learnt per device | 512 | [`crate::detect::anomaly::MAX_PEERS_PER_DEVICE`] |
//! | scan sources / entries per source / entries in all | 1024 / 1024 / 65536 | [`crate::detect::anomaly::MAX_SCAN_TOTAL`] |
//! | burst counters per kind | 4096 | [`crate::detect::anomaly::MAX_BURST_KEYS`] |
//! | recent alerts for `/api/alerts` | 1000 | [`crate::detect::output::RECENT_ALERTS`] |

macro_rules! table {
    ($(#[$m:meta])* $name:ident { $( $(#[doc = $doc:literal])* $field:ident : $ty:ty = $default:expr, $min:expr, $max:expr; )* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name { $( $(#[doc = $doc])* pub $field: $ty, )* }

        impl Default for $name {
            fn default() -> Self { $name { $( $field: $default, )* } }
        }

        impl $name {
            /// (name, default, min, max, doc) of every entry, for docs and `--help`.
            pub fn describe() -> Vec<(&'static str, u64, u64, u64, &'static str)> {
                vec![ $( (stringify!($field), $default as u64, $min as u64, $max as u64, concat!($($doc, " "),*)), )* ]
            }

            /// Apply overrides from a config table; unknown keys and out-of-range values are errors.
            pub fn apply(&mut self, table: &toml::Table, section: &str, parse: fn(&toml::Value) -> Result<u64, String>) -> Result<(), String> {
                for (k, v) in table {
                    let n = parse(v).map_err(|e| format!("{section}.{k}: {e}"))?;
                    match k.as_str() {
                        $( stringify!($field) => {
                            if n < $min as u64 || n > $max as u64 {
                                return Err(format!("{section}.{k} = {n} is outside the valid range {}..={}", $min as u64, $max as u64));
                            }
                            self.$field = n as $ty;
                        } )*
                        _ => return Err(format!("{section}.{k}: unknown key (known: {})", [$(stringify!($field)),*].join(", "))),
                    }
                }
                Ok(())
            }
        }
    };
}

table! {
    /// Caps on memory. Per-process values; the pipeline splits them evenly across workers.
    Limits {
        /// Flows held in the flow tables. When full, the least recently active eighth of a worker's table is ended (reason table_full).
        max_flows: usize = 262_144, 1_024, 16_777_216;
        /// Out-of-order bytes one TCP direction may hold while waiting for a hole to fill; over it the hole becomes a gap.
        reassembly_flow_bytes: usize = 1 << 20, 4 << 10, 64 << 20;
        /// Out-of-order bytes all TCP streams together may hold.
        reassembly_global_bytes: usize = 256 << 20, 1 << 20, 16u64 << 30;
        /// Bytes of a stream inspected to identify its application protocol before giving up.
        detect_bytes: usize = 4096, 64, 65_536;
        /// Packets per batch handed from the capture thread to a worker.
        batch_packets: usize = 512, 1, 65_536;
        /// Packet bytes per batch: a batch is handed over when its packets' bytes pass this, whatever their count. A batch buffer holds this plus one packet (up to 64 KiB), and there are `queue_batches` of them in all plus 2 per worker, so this bounds the capture queues' memory: about 9 MiB at the defaults, whatever the number of workers (it was a fixed 1 MiB per batch: 20 MiB per worker).
        batch_bytes: usize = 128 << 10, 16 << 10, 16 << 20;
        /// Batches queued for all workers together, split evenly (at least one each); when a worker's share is full, replay waits and live capture drops (counted). It is what lets the capture thread read ahead while another thread has the core it runs on (64 x 128 KiB is about 7 ms of a worker's work on bench.pcap; at 16 the worker waited for packets about a tenth of the run).
        queue_batches: usize = 64, 1, 65_536;
        /// Event buffers queued for the event writer. A worker hands its buffer over once it holds 64 KiB (`output::SINK_FLUSH_BYTES`), also in the middle of a sweep or of the end of capture, so a buffer holds at most 64 KiB and one event: about 1 MiB at the default. When full, the worker waits for the writer.
        event_queue: usize = 16, 1, 65_536;
        /// Observation batches (one per worker packet batch with something to say) queued for the central thread; when full, replay waits and live capture drops (medtap_observations_dropped_total).
        observe_queue: usize = 1_024, 1, 65_536;
        /// Observations (flow starts and ends, evidence, protocol facts) queued for the central thread, in all the queued batches together: what the queue's memory is (a batch can hold one or thousands). When a batch would pass it, replay waits and live capture drops the batch (medtap_observations_dropped_total); a batch larger than the cap still goes when the queue is empty, and workers handing over at the same moment may each pass it by one batch.
        observe_queue_items: usize = 16_384, 256, 16_777_216;
        /// Bytes of one DICOM A-ASSOCIATE/RELEASE/ABORT PDU kept for parsing; a longer one is skipped, not buffered (dicom_errors{kind=pdu_too_large}, event limits.pdu_kept). P-DATA is streamed, never kept whole.
        dicom_pdu_kept: usize = 64 << 10, 4 << 10, 16 << 20;
        /// Bytes of one HL7 message kept for parsing; the rest of a longer one is skipped (hl7_errors{kind=too_large}, event too_large).
        hl7_message_bytes: usize = 1 << 20, 16 << 10, 64 << 20;
        /// Devices in the inventory; when full, new devices are not added, each counted once in medtap_devices_dropped_total. Default: as many as get a behaviour baseline (detect::anomaly::MAX_DEVICES); measured at about 9 KiB per device (README, "Memory per device"), so about 35 MiB at the default.
        max_devices: usize = 4_096, 16, 4_194_304;
    }
}

table! {
    /// Flow timeouts in seconds of packet time.
    Timeouts {
        /// A TCP flow that has not completed its handshake.
        tcp_new: u64 = 30, 1, 86_400;
        /// An established TCP flow with no packets.
        tcp_established: u64 = 3_600, 1, 604_800;
        /// A TCP flow after FIN in both directions or RST (late ACKs still join it).
        tcp_closed: u64 = 10, 0, 3_600;
        /// A UDP flow with no packets.
        udp: u64 = 120, 1, 86_400;
        /// ICMP and other IP protocols.
        other: u64 = 60, 1, 86_400;
        /// A flow active longer than this reports a `flow` record (reason active_timeout) and goes on counting afresh; 0 = never.
        active: u64 = 3_600, 0, 604_800;
    }
}

impl Limits {
    /// The per-worker share of a cap.
    pub fn per_worker(total: usize, workers: usize) -> usize {
        (total / workers.max(1)).max(1)
    }
}

/// A non-negative integer, or a string with a binary size suffix (`64MiB`, `512KiB`, `1GiB`).
pub fn parse_size(v: &toml::Value) -> Result<u64, String> {
    match v {
        toml::Value::Integer(i) if *i >= 0 => Ok(*i as u64),
        toml::Value::String(s) => {
            let s = s.trim();
            let (num, mult) = if let Some(n) = s.strip_suffix("GiB") {
                (n, 1u64 << 30)
            } else if let Some(n) = s.strip_suffix("MiB") {
                (n, 1 << 20)
            } else if let Some(n) = s.strip_suffix("KiB") {
                (n, 1 << 10)
            } else {
                (s, 1)
            };
            num.trim()
                .parse::<u64>()
                .ok()
                .and_then(|n| n.checked_mul(mult))
                .ok_or_else(|| format!("'{s}' is not a size (e.g. 1024, 64KiB, 256MiB, 1GiB)"))
        }
        _ => Err(format!("{v} is not a non-negative integer or size string")),
    }
}

/// A number of seconds, or a duration string (`90s`, `15m`, `2h`, `7d`).
pub fn parse_duration_value(v: &toml::Value) -> Result<u64, String> {
    match v {
        toml::Value::Integer(i) if *i >= 0 => Ok(*i as u64),
        toml::Value::String(s) => parse_duration(s),
        _ => Err(format!("{v} is not a duration (e.g. 90s, 15m, 2h, 7d)")),
    }
}

/// `90s`, `15m`, `2h`, `7d`, `1w`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (e.g. 90s, 15m, 2h, 7d)"))?;
    let mult = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => {
            return Err(format!(
                "'{s}': unknown unit '{unit}' (use s, m, h, d or w)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("'{s}' is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        assert_eq!(parse_duration("15"), Ok(15));
        assert!(parse_duration("7y").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn limits_apply_checks_range_and_keys() {
        let mut l = Limits::default();
        let t: toml::Table =
            toml::from_str("max_flows = 5000\nreassembly_flow_bytes = \"64KiB\"").unwrap();
        l.apply(&t, "limits", parse_size).unwrap();
        assert_eq!(l.max_flows, 5000);
        assert_eq!(l.reassembly_flow_bytes, 65536);
        let bad: toml::Table = toml::from_str("max_flows = 5").unwrap();
        assert!(l
            .apply(&bad, "limits", parse_size)
            .unwrap_err()
            .contains("outside the valid range"));
        // the 16 GiB maximum is not truncated to 32 bits (it once was, and read as 0)
        let big: toml::Table = toml::from_str("reassembly_global_bytes = \"16GiB\"").unwrap();
        l.apply(&big, "limits", parse_size).unwrap();
        assert_eq!(l.reassembly_global_bytes as u64, 16 << 30);
        let over: toml::Table = toml::from_str("reassembly_global_bytes = \"17GiB\"").unwrap();
        assert!(l.apply(&over, "limits", parse_size).is_err());
        let unknown: toml::Table = toml::from_str("max_flow = 5000").unwrap();
        assert!(l
            .apply(&unknown, "limits", parse_size)
            .unwrap_err()
            .contains("unknown key"));
    }
}
