//! TFTP: unauthenticated file transfer. The request (read or write, transfer mode, options) is
//! on the flow to port 69; the data moves on a new port pair. One `tftp` event per request
//! flow (at its end) and facts for detection with the first request. The file name is never
//! kept (it may carry a patient's name or ID): only its length.

use medtap_parsers::tftp::{self, Opcode};
use serde::Serialize;

use super::{AppContext, AppParser, Direction};
use crate::observe::{FactValue, Facts};

#[derive(Default)]
pub struct TftpState {
    rec: Option<TftpRecord>,
    packets: u64,
}

#[derive(Serialize)]
struct TftpRecord {
    /// "read_request" or "write_request".
    opcode: &'static str,
    mode: &'static str,
    filename_len: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    options: Vec<String>,
}

impl TftpState {
    pub fn new() -> TftpState {
        TftpState::default()
    }
}

impl AppParser for TftpState {
    fn on_data(&mut self, _dir: Direction, data: &[u8], cx: &mut AppContext<'_>) {
        self.packets += 1;
        if self.rec.is_some() {
            return;
        }
        let Ok(p) = tftp::parse_packet(data) else {
            return;
        };
        if p.opcode != Opcode::RRQ && p.opcode != Opcode::WRQ {
            return;
        }
        let rec = TftpRecord {
            opcode: p.opcode.name(),
            mode: p.mode.unwrap_or("unknown"),
            filename_len: p.filename_len,
            options: p.options,
        };
        cx.obs.facts(
            cx.ts,
            cx.flow,
            Facts::new("tftp")
                .with(
                    "request",
                    FactValue::Str(
                        if p.opcode == Opcode::RRQ {
                            "read"
                        } else {
                            "write"
                        }
                        .into(),
                    ),
                )
                .with("mode", FactValue::Str(rec.mode.into())),
        );
        self.rec = Some(rec);
    }

    fn on_gap(&mut self, _dir: Direction, _len: u64, _cx: &mut AppContext<'_>) {}

    fn on_close(&mut self, cx: &mut AppContext<'_>) {
        if let Some(r) = &self.rec {
            cx.events
                .emit(cx.ts, "tftp", cx.flow, Direction::ToServer, r);
        }
    }
}
