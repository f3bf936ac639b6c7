//! HL7 v2 over MLLP (or bare on TCP), on any port: one `hl7` event per message.
//!
//! Inputs: each direction's reassembled bytes and gap notices ([`AppParser`]). Outputs: one
//! `hl7` event per message, emitted when the message ends (end block, next start block, next
//! bare `MSH`, the peer's reply for a bare message, a gap, or the flow's end), with `src` = its
//! sender; counters `medtap_hl7_messages_total{message_type}`, `medtap_hl7_acks_total{code}`
//! and `medtap_hl7_errors_total{kind}` ([`events::Anomaly`]).
//!
//! - Framing: [`medtap_parsers::mllp::Deframer`] per direction (messages over many segments,
//!   several per segment, a missing end block resynchronised at the next start block, bytes
//!   outside frames, gaps).
//! - Content: [`medtap_parsers::hl7::parse_message`]: MSH-3..12 and MSH-18, MSA-1/MSA-2, ERR
//!   codes, device identifiers (OBX-18, PRT-10, PRT-16), names of the PHI-bearing fields present.
//! - Acknowledgements are paired with the message of the other direction whose control id they
//!   carry in MSA-2: the event of the acknowledgement has `latency_ms` and
//!   `acked_message_type`. A message never acknowledged by the flow's end counts
//!   `unacknowledged`. NAKs per sender are the events with `ack_code` AE/AR (CE/CR) grouped by
//!   their receiving application (the original sender).
//! - The sender's MSH-3/MSH-4 (`sending_application`, `sending_facility`) and `devices` are the
//!   device evidence the inventory uses.
//!
//! It never writes a PHI value: PID, NK1, IN1, ... are tested for presence only (`phi_fields`),
//! and free-text fields (MSA-3, ERR-7/8, OBX-5, NTE) are never read.
//!
//! Limits: [`MAX_MESSAGE_BYTES`] per message (the head is kept and parsed, the rest skipped;
//! the event carries `too_large` with the value and the limit), [`MAX_PENDING_ACKS`] messages
//! awaiting their acknowledgement per flow, and the caps of the parsers crate on what a message
//! summary holds. A flow's HL7 state is thus at most about two messages' worth of bytes.

pub mod events;
pub mod log;
pub mod state;

use medtap_parsers::mllp;

use super::detect::Probe;
use super::{AppParser, AppProto, Direction};

pub use state::Hl7State;

/// Bytes of one message kept for parsing; the rest is skipped (counted `too_large`). Orders
/// and results are kilobytes; a 1,200-observation ORU is 200 KB; MDM/ORU messages that embed a
/// PDF in OBX-5 reach megabytes, but everything medtap reads (MSH, MSA, PID, the first OBX) is
/// in their head. 1 MiB per direction bounds a flow at 2 MiB.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// Messages per flow waiting for their acknowledgement. MLLP senders wait for each ACK before
/// the next message (HL7 v2.5.1 MLLP Release 2, "original mode"); 64 leaves room for senders
/// that pipeline. Over it the oldest is dropped and counted `unacknowledged`.
pub const MAX_PENDING_ACKS: usize = 64;

/// Buffer capacity kept between messages; a larger buffer (after a big message) is freed.
pub const KEEP_BUF_BYTES: usize = 64 << 10;

/// Whether the first bytes of a direction start HL7: `0x0B` `MSH` + field separator, or a bare
/// `MSH` + field separator. Decides within 5 bytes; any other first byte is `No` at once.
pub fn probe(_dir: Direction, data: &[u8]) -> Probe {
    match mllp::probe(data) {
        Some(true) => Probe::Match(AppProto::Hl7),
        Some(false) => Probe::No,
        None => Probe::NeedMore,
    }
}

/// A fresh per-flow parser.
pub fn parser() -> Option<Box<dyn AppParser>> {
    Some(Box::new(Hl7State::new()))
}
