//! NetBIOS over TCP/IP on UDP: the name service (137) and datagram service (138), which
//! advertise host names and let anyone on the segment answer for them (name poisoning). Facts
//! for detection with the first datagram of a flow; no event of its own (the `flow` event
//! carries `app_proto: netbios`). The session service (TCP 139) is read by [`super::smb`].

use super::{AppContext, AppParser, Direction};
use crate::observe::{FactValue, Facts};

#[derive(Default)]
pub struct NetbiosState {
    sent: bool,
}

impl NetbiosState {
    pub fn new() -> NetbiosState {
        NetbiosState::default()
    }
}

impl AppParser for NetbiosState {
    fn on_data(&mut self, _dir: Direction, _data: &[u8], cx: &mut AppContext<'_>) {
        if !self.sent {
            self.sent = true;
            // Name service on 137, datagram service on 138 (RFC 1002).
            let service = if cx.flow.server.1 == 138 || cx.flow.client.1 == 138 {
                "datagram"
            } else {
                "name"
            };
            cx.obs.facts(
                cx.ts,
                cx.flow,
                Facts::new("netbios").with("service", FactValue::Str(service.into())),
            );
        }
    }

    fn on_gap(&mut self, _dir: Direction, _len: u64, _cx: &mut AppContext<'_>) {}

    fn on_close(&mut self, _cx: &mut AppContext<'_>) {}

    fn done(&self) -> bool {
        self.sent
    }
}
