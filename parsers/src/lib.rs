//! medtap-parsers: pure functions from bytes to values.
//!
//! Contract for every module here: no I/O, no clock, no logging, no globals, no `unsafe`.
//! Every parser takes attacker-chosen bytes; none may panic, and none allocates to a size read
//! from the wire. Streaming callers get "need more" apart from "these bytes are wrong"
//! ([`Needed`] vs an error enum per protocol family).
#![forbid(unsafe_code)]

mod bytes;
pub mod dicom;
pub mod hl7;
pub mod mllp;
pub mod tls;

pub mod cdp;
pub mod dhcp;
pub mod dns;
pub mod http;
pub mod lldp;
pub mod mdns;
pub mod netbios;
pub mod oui;
pub mod ssdp;
pub mod tcpfp;

pub mod ftp;
pub mod rcmd;
pub mod rdp;
pub mod rfb;
pub mod smb;
pub mod snmp;
pub mod telnet;
pub mod tftp;

/// How many more bytes a streaming parser needs before it can say anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needed {
    /// Exactly this many more bytes (the length field said so).
    Size(usize),
    /// Some more bytes; the parser cannot tell how many yet.
    Unknown,
}
