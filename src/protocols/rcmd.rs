//! The BSD r-commands (rlogin 513, rsh 514, rexec 512): remote shells that trust host names
//! and send user names (rexec: the password too) in clear. Identified by port and by the shape
//! of the client's preamble; facts for detection once the preamble is seen. Nothing of the
//! preamble (user names, password, command) is kept.

use medtap_parsers::rcmd::{self, Preamble, Shape};

use super::{AppContext, AppParser, AppProto, Direction};
use crate::observe::{FactValue, Facts};

/// Client bytes judged before giving up (4 fields of at most 256 bytes).
const MAX_PREAMBLE: usize = 1040;

pub struct RcmdState {
    proto: AppProto,
    buf: Vec<u8>,
    sent: bool,
}

impl RcmdState {
    pub fn new(proto: AppProto) -> RcmdState {
        RcmdState {
            proto,
            buf: Vec::new(),
            sent: false,
        }
    }

    fn facts(&mut self, complete: bool, cx: &mut AppContext<'_>) {
        self.sent = true;
        self.buf = Vec::new();
        cx.obs.facts(
            cx.ts,
            cx.flow,
            Facts::new(self.proto.as_str()).with("preamble_complete", FactValue::Bool(complete)),
        );
    }
}

/// The preamble shape of an r-command protocol.
pub fn shape_of(p: AppProto) -> Shape {
    if p == AppProto::Rlogin {
        Shape::Rlogin
    } else {
        Shape::PortThenFields
    }
}

impl AppParser for RcmdState {
    fn on_data(&mut self, dir: Direction, data: &[u8], cx: &mut AppContext<'_>) {
        if self.sent || dir != Direction::ToServer {
            return;
        }
        let take = data.len().min(MAX_PREAMBLE - self.buf.len());
        self.buf.extend_from_slice(&data[..take]);
        match rcmd::parse_preamble(&self.buf, shape_of(self.proto)) {
            Preamble::Fits { fields: 4, .. } => self.facts(true, cx),
            Preamble::Fits { .. } if self.buf.len() < MAX_PREAMBLE => {}
            _ => self.facts(false, cx),
        }
    }

    fn on_gap(&mut self, _dir: Direction, _len: u64, _cx: &mut AppContext<'_>) {}

    fn on_close(&mut self, cx: &mut AppContext<'_>) {
        if !self.sent {
            self.facts(false, cx);
        }
    }

    fn done(&self) -> bool {
        self.sent
    }
}
