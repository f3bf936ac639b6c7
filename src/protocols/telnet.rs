//! Telnet: a remote shell whose login and password cross in clear. One `telnet` event per
//! connection (at its end) with the options negotiated and the data volume each way; never the
//! data itself. Facts for detection once data has flowed.

use medtap_parsers::telnet;
use serde::Serialize;

use super::{AppContext, AppParser, Direction};
use crate::observe::{FactValue, Facts};

/// Distinct options kept per connection.
const MAX_OPTIONS: usize = 32;

#[derive(Default)]
pub struct TelnetState {
    in_sb: [bool; 2],
    /// A command cut at the end of the last chunk (at most 2 bytes).
    pending: [Vec<u8>; 2],
    rec: TelnetRecord,
    facts_sent: bool,
}

#[derive(Serialize, Default)]
struct TelnetRecord {
    /// Option codes negotiated by either side, in order of first appearance.
    options: Vec<u8>,
    negotiations: u64,
    data_bytes_toserver: u64,
    data_bytes_toclient: u64,
}

impl TelnetState {
    pub fn new() -> TelnetState {
        TelnetState::default()
    }
}

impl AppParser for TelnetState {
    fn on_data(&mut self, dir: Direction, data: &[u8], cx: &mut AppContext<'_>) {
        let i = dir.index();
        let joined;
        let input = if self.pending[i].is_empty() {
            data
        } else {
            let mut v = std::mem::take(&mut self.pending[i]);
            v.extend_from_slice(data);
            joined = v;
            &joined[..]
        };
        let s = telnet::scan(input, 64, &mut self.in_sb[i]);
        self.pending[i] = input[input.len() - s.pending..].to_vec();
        let r = &mut self.rec;
        r.negotiations += (s.negotiations.len() + s.more) as u64;
        for n in &s.negotiations {
            if !r.options.contains(&n.option) && r.options.len() < MAX_OPTIONS {
                r.options.push(n.option);
            }
        }
        match dir {
            Direction::ToServer => r.data_bytes_toserver += s.data_bytes as u64,
            Direction::ToClient => r.data_bytes_toclient += s.data_bytes as u64,
        }
        if !self.facts_sent && s.data_bytes > 0 {
            self.facts_sent = true;
            cx.obs.facts(
                cx.ts,
                cx.flow,
                Facts::new("telnet").with("session", FactValue::Bool(true)),
            );
        }
    }

    fn on_gap(&mut self, dir: Direction, _len: u64, _cx: &mut AppContext<'_>) {
        self.pending[dir.index()].clear();
        self.in_sb[dir.index()] = false;
    }

    fn on_close(&mut self, cx: &mut AppContext<'_>) {
        if !self.facts_sent {
            self.facts_sent = true;
            cx.obs.facts(
                cx.ts,
                cx.flow,
                Facts::new("telnet").with("session", FactValue::Bool(false)),
            );
        }
        cx.events
            .emit(cx.ts, "telnet", cx.flow, Direction::ToServer, &self.rec);
    }
}
