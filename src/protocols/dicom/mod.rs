//! dicom (stub: being written).

use super::detect::Probe;
use super::{AppParser, Direction};

/// Whether the first bytes of a direction start this protocol.
pub fn probe(_dir: Direction, _data: &[u8]) -> Probe {
    Probe::No
}

/// A fresh per-flow parser.
pub fn parser() -> Option<Box<dyn AppParser>> {
    None
}
