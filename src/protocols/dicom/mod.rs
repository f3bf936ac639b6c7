//! DICOM upper layer and DIMSE, one [`state::DicomState`] per TCP connection.
//!
//! Inputs: each direction's reassembled bytes and gap notices ([`AppParser`]), on any port
//! (detection is by content: [`probe`]). Output: one `dicom` event per association
//! ([`log::DicomEvent`]), emitted when it ends (release, abort, reject) or when the flow ends
//! (`incomplete`). Counters: `medtap_dicom_associations_total{result}`,
//! `medtap_dicom_pdus_total{type}`, `medtap_dicom_dimse_total{command,status_class}`,
//! `medtap_dicom_errors_total{kind}` ([`events::ErrorKind`]).
//!
//! Pure parsing lives in `medtap_parsers::dicom`; this module owns the buffers (capped, see
//! the `MAX_*` constants in [`state`]), the association state machine and the event.
//! Never logged: PHI values (only which attributes were present), user identity fields.
//! DICOM over TLS is TLS: the TLS probe runs before this one whatever the port.

pub mod events;
pub mod log;
pub mod state;

use medtap_parsers::dicom::looks_like_dicom;

use super::detect::Probe;
use super::{AppParser, AppProto, Direction};

pub use state::DicomState;

/// Whether the first bytes of a direction start DICOM: an A-ASSOCIATE-RQ/AC with protocol
/// version 1 and the DICOM application context, or (midstream pickup) a P-DATA-TF carrying a
/// command. Needs at most 99 bytes; answers `No` on the first byte for anything whose first
/// byte is not 0x01, 0x02 or 0x04.
pub fn probe(_dir: Direction, data: &[u8]) -> Probe {
    match looks_like_dicom(data) {
        Some(true) => Probe::Match(AppProto::Dicom),
        Some(false) => Probe::No,
        None => Probe::NeedMore,
    }
}

/// A fresh per-flow parser.
pub fn parser() -> Option<Box<dyn AppParser>> {
    Some(Box::new(DicomState::new()))
}
