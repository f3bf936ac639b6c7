//! Application protocols: detection by content first, port second, then one streaming state
//! machine per flow fed with reassembled bytes and gap notices.
//!
//! Contract for every [`AppParser`]:
//! - it is fed each direction's bytes in order, exactly once, as [`crate::reassembly`] delivers
//!   them; lost bytes arrive as `on_gap(len)`, never papered over;
//! - it never buffers more than its own named cap (see [`crate::limits`]) and never allocates
//!   to a size read from the wire;
//! - it emits its events through [`AppContext::events`] and counts through [`AppContext::stats`];
//! - `on_close` is called once, when the flow ends for any reason, and must emit what is pending
//!   (e.g. a DICOM association that never saw its release).

pub mod detect;
pub mod dicom;
pub mod ftp;
pub mod hl7;
pub mod http;
pub mod inner_tls;
pub mod lines;
pub mod netbios;
pub mod rcmd;
pub mod rdp;
pub mod rfb;
pub mod smb;
pub mod snmp;
pub mod telnet;
pub mod tftp;
pub mod tls;

use crate::flow::FlowMeta;
use crate::observe::ObsBuf;
use crate::output::EventSink;
use crate::stats::WorkerStats;
use crate::time::Ts;

/// Which way the bytes travel, relative to the side that opened the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client (opener) to server.
    ToServer,
    /// Server to client.
    ToClient,
}

impl Direction {
    pub fn index(self) -> usize {
        match self {
            Direction::ToServer => 0,
            Direction::ToClient => 1,
        }
    }
    pub fn reverse(self) -> Direction {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }
}

/// Application protocols medtap knows. The label set of `medtap_app_flows_total{app_proto}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AppProto {
    Tls,
    Dicom,
    Hl7,
    Http,
    Smb,
    Ftp,
    Telnet,
    Dhcp,
    Dns,
    Snmp,
    Tftp,
    Rfb,
    Rdp,
    Rlogin,
    Rsh,
    Rexec,
    Netbios,
    /// Inspected and not recognised.
    Unknown,
}

impl AppProto {
    pub const ALL: [AppProto; 18] = [
        AppProto::Tls,
        AppProto::Dicom,
        AppProto::Hl7,
        AppProto::Http,
        AppProto::Smb,
        AppProto::Ftp,
        AppProto::Telnet,
        AppProto::Dhcp,
        AppProto::Dns,
        AppProto::Snmp,
        AppProto::Tftp,
        AppProto::Rfb,
        AppProto::Rdp,
        AppProto::Rlogin,
        AppProto::Rsh,
        AppProto::Rexec,
        AppProto::Netbios,
        AppProto::Unknown,
    ];

    /// The EVE `app_proto` value (Suricata's spelling where Suricata has one).
    pub fn as_str(self) -> &'static str {
        match self {
            AppProto::Tls => "tls",
            AppProto::Dicom => "dicom",
            AppProto::Hl7 => "hl7",
            AppProto::Http => "http",
            AppProto::Smb => "smb",
            AppProto::Ftp => "ftp",
            AppProto::Telnet => "telnet",
            AppProto::Dhcp => "dhcp",
            AppProto::Dns => "dns",
            AppProto::Snmp => "snmp",
            AppProto::Tftp => "tftp",
            AppProto::Rfb => "rfb",
            AppProto::Rdp => "rdp",
            AppProto::Rlogin => "rlogin",
            AppProto::Rsh => "rsh",
            AppProto::Rexec => "rexec",
            AppProto::Netbios => "netbios",
            AppProto::Unknown => "failed",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// What a parser gets besides the bytes: the packet time, the flow, and where to emit and count.
pub struct AppContext<'a> {
    pub ts: Ts,
    pub flow: &'a FlowMeta,
    pub events: &'a mut EventSink,
    pub stats: &'a mut WorkerStats,
    /// Observations for the central thread: device evidence and protocol facts
    /// ([`crate::observe`]).
    pub obs: &'a mut ObsBuf,
}

/// A streaming application-layer state machine, one per flow.
pub trait AppParser: Send {
    /// In-order bytes of one direction.
    fn on_data(&mut self, dir: Direction, data: &[u8], cx: &mut AppContext<'_>);
    /// `len` bytes of `dir` were lost (capture drop, cap hit, hole at close). Resynchronise.
    fn on_gap(&mut self, dir: Direction, len: u64, cx: &mut AppContext<'_>);
    /// The flow ended (FIN/RST, timeout, eviction, end of capture): emit what is pending.
    fn on_close(&mut self, cx: &mut AppContext<'_>);
    /// Once a parser has nothing more to learn from the flow it returns true, and the
    /// flow stops feeding it (and stops reassembling, if no one else needs the bytes).
    fn done(&self) -> bool {
        false
    }
}
