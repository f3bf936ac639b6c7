//! The EVE-style NDJSON event log.
//!
//! Each worker owns an [`EventSink`] that formats events into a line buffer; full buffers go over
//! a bounded channel to one writer thread ([`EventWriter`]) that owns the file. In replay the
//! channel blocks (nothing is lost); live, a full channel drops the buffer and counts it.
//! Events are shaped like Suricata's EVE: `timestamp`, `event_type`, `flow_id`, `src_ip`,
//! `src_port`, `dest_ip`, `dest_port`, `proto`, `app_proto`, and one object named after the type.

use std::io::{self, Write};
use std::net::IpAddr;

use serde::Serialize;

use crate::flow::FlowMeta;
use crate::protocols::Direction;
use crate::stats::{Counter, WorkerStats};
use crate::time::Ts;

/// Flush a sink's buffer to the writer once it holds this many bytes.
pub const SINK_FLUSH_BYTES: usize = 64 * 1024;

/// Formats events into newline-terminated JSON lines.
pub struct EventSink {
    enabled: bool,
    buf: Vec<u8>,
    produced: u64,
}

impl EventSink {
    pub fn new(enabled: bool) -> EventSink {
        EventSink {
            enabled,
            buf: Vec::new(),
            produced: 0,
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Events produced since the last [`EventSink::take_produced`].
    pub fn take_produced(&mut self) -> u64 {
        std::mem::take(&mut self.produced)
    }

    /// A flow-scoped event. `src` names the side that is `src_*`: the client for connection-level
    /// events, the sender for message-level ones.
    pub fn emit<T: Serialize + ?Sized>(
        &mut self,
        ts: Ts,
        event_type: &str,
        flow: &FlowMeta,
        src: Direction,
        body: &T,
    ) {
        if !self.enabled {
            return;
        }
        self.produced += 1;
        let (s, d) = match src {
            Direction::ToServer => (flow.client, flow.server),
            Direction::ToClient => (flow.server, flow.client),
        };
        let b = &mut self.buf;
        let _ = write!(
            b,
            "{{\"timestamp\":\"{ts}\",\"event_type\":\"{event_type}\",\"flow_id\":{}",
            flow.flow_id
        );
        if let Some(v) = flow.vlan_outer() {
            let _ = write!(b, ",\"vlan\":[{v}");
            if let Some(v2) = flow.vlan_inner() {
                let _ = write!(b, ",{v2}");
            }
            b.push(b']');
        }
        let _ = write!(b, ",\"src_ip\":\"{}\"", DisplayIp(s.0));
        if flow.has_ports() {
            let _ = write!(b, ",\"src_port\":{}", s.1);
        }
        let _ = write!(b, ",\"dest_ip\":\"{}\"", DisplayIp(d.0));
        if flow.has_ports() {
            let _ = write!(b, ",\"dest_port\":{}", d.1);
        }
        let _ = write!(b, ",\"proto\":\"{}\"", flow.proto_name());
        if let Some(app) = flow.app_proto {
            let _ = write!(b, ",\"app_proto\":\"{}\"", app.as_str());
        }
        let _ = write!(b, ",\"{event_type}\":");
        if serde_json::to_writer(&mut *b, body).is_err() {
            b.extend_from_slice(b"null");
        }
        b.extend_from_slice(b"}\n");
    }

    /// An event with no flow (`stats`, capture notices).
    pub fn emit_global<T: Serialize + ?Sized>(&mut self, ts: Ts, event_type: &str, body: &T) {
        if !self.enabled {
            return;
        }
        self.produced += 1;
        let b = &mut self.buf;
        let _ = write!(
            b,
            "{{\"timestamp\":\"{ts}\",\"event_type\":\"{event_type}\",\"{event_type}\":"
        );
        if serde_json::to_writer(&mut *b, body).is_err() {
            b.extend_from_slice(b"null");
        }
        b.extend_from_slice(b"}\n");
    }

    pub fn pending_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Hand over the formatted lines (the sink keeps a fresh buffer).
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// Count the produced events into `stats` (call once per batch).
    pub fn account(&mut self, stats: &mut WorkerStats) {
        let n = self.take_produced();
        stats.add(Counter::EventsProduced, n);
    }
}

/// IPv4-mapped addresses print as IPv4, like Suricata.
struct DisplayIp(IpAddr);

impl std::fmt::Display for DisplayIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The single owner of the event file.
pub struct EventWriter {
    out: Box<dyn Write + Send>,
    file: Option<std::fs::File>,
    pub written_events: u64,
}

impl EventWriter {
    /// `path` "-" is standard output.
    pub fn open(path: &std::path::Path) -> io::Result<EventWriter> {
        if path.as_os_str() == "-" {
            return Ok(EventWriter {
                out: Box::new(io::BufWriter::with_capacity(256 * 1024, io::stdout())),
                file: None,
                written_events: 0,
            });
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let f2 = f.try_clone()?;
        Ok(EventWriter {
            out: Box::new(io::BufWriter::with_capacity(256 * 1024, f)),
            file: Some(f2),
            written_events: 0,
        })
    }

    pub fn write_lines(&mut self, lines: &[u8]) -> io::Result<()> {
        self.written_events += lines.iter().filter(|&&c| c == b'\n').count() as u64;
        self.out.write_all(lines)
    }

    /// Flush and fsync (files only).
    pub fn finish(&mut self) -> io::Result<()> {
        self.out.flush()?;
        if let Some(f) = &self.file {
            // Only regular files can be synced (/dev/null or a FIFO answers EINVAL).
            if f.metadata().map(|m| m.is_file()).unwrap_or(false) {
                f.sync_all()?;
            }
        }
        Ok(())
    }
}
