//! Device fingerprinting: evidence in, identification out.
//!
//! - [`evidence`]: what the protocol modules observe about a device ([`Evidence`]: kind, value,
//!   source protocol, confidence), with stable snake_case kind names.
//! - [`signatures`]: the TOML rules of `signatures/fingerprint/` (embedded) plus an optional
//!   operator directory, validated with `file:line: problem` errors.
//! - [`extract`]: parser outputs (`medtap_parsers::{dhcp, lldp, cdp, mdns, ssdp, netbios, http,
//!   tcpfp, oui}`) to evidence, one function per source.
//! - [`identify`]: a pure, order-independent function from a device's evidence to its
//!   [`Identification`] (vendor, model, OS with end-of-life, software, category), each attribute
//!   with a confidence and the evidence that decided it.
//!
//! - [`tap`]: the worker-side reader of packet-level evidence (SYN signatures, DHCP, mDNS,
//!   SSDP, NetBIOS, LLDP, CDP), with a small cache that skips repeats.
//!
//! Apart from `tap`'s cache, this module keeps no state and does no I/O except reading an operator signature directory;
//! the device table, its persistence and the API live elsewhere.

pub mod evidence;
pub mod extract;
pub mod identify;
pub mod signatures;
pub mod tap;

pub use evidence::{Evidence, EvidenceKind, EvidenceRef, Source};
pub use identify::{identify, Decided, Identification, OsInfo};
pub use signatures::{Category, SignatureError, SignatureErrors, Signatures};
