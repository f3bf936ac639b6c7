//! RDP: the security protocols a client requests in its X.224 Connection Request and the one
//! the server selects in its Connection Confirm. Standard RDP Security (no TLS, no CredSSP)
//! encrypts with RC4 keys an active attacker can intercept. One `rdp` event per connection
//! once the confirm is read (or at the end); facts for detection with it. The routing cookie
//! (it names the user) is only noted present. When TLS or CredSSP is selected, the rest of the
//! connection is TLS and goes to the TLS state machine ([`InnerTls`]): its version and cipher
//! are judged as anywhere else.

use medtap_parsers::rdp::{self, Negotiation, RdpError};
use serde::Serialize;

use super::inner_tls::InnerTls;
use super::{AppContext, AppParser, Direction};
use crate::observe::{FactValue, Facts};

/// Bytes kept per direction to read the request or confirm.
const MAX_KEPT: usize = rdp::MAX_TPKT_LEN;

#[derive(Default)]
pub struct RdpState {
    buf: [Vec<u8>; 2],
    requested: Option<u32>,
    selected: Option<u32>,
    failure: Option<u32>,
    cookie: bool,
    request_seen: bool,
    confirm_seen: bool,
    done: bool,
    /// The TLS that follows a confirm selecting TLS, CredSSP or RDSTLS.
    tls: Option<InnerTls>,
}

#[derive(Serialize)]
struct RdpRecord {
    cookie: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    requested_protocols: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    selected_protocol: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    negotiation_failure: Option<u32>,
}

impl RdpState {
    pub fn new() -> RdpState {
        RdpState::default()
    }

    fn finish(&mut self, cx: &mut AppContext<'_>) {
        if self.done {
            return;
        }
        self.done = true;
        self.buf = Default::default();
        if !self.request_seen && !self.confirm_seen {
            return;
        }
        // A request without RDP_NEG_REQ, or a confirm without RDP_NEG_RSP, means Standard
        // RDP Security (MS-RDPBCGR 2.2.1.2).
        let requested = self
            .requested
            .or(self.request_seen.then_some(rdp::PROTOCOL_RDP));
        let selected = self
            .selected
            .or((self.confirm_seen && self.failure.is_none()).then_some(rdp::PROTOCOL_RDP));
        let rec = RdpRecord {
            cookie: self.cookie,
            requested_protocols: requested.map(rdp::protocol_names),
            selected_protocol: selected.map(rdp::protocol_names),
            negotiation_failure: self.failure,
        };
        let standard = match selected {
            Some(s) => s == rdp::PROTOCOL_RDP,
            None => requested == Some(rdp::PROTOCOL_RDP),
        };
        let mut f = Facts::new("rdp").with("standard_security", FactValue::Bool(standard));
        if let Some(r) = &rec.requested_protocols {
            f = f.with(
                "requested_protocols",
                FactValue::List(r.iter().map(|s| s.to_string().into()).collect()),
            );
        }
        if let Some(s) = &rec.selected_protocol {
            f = f.with("selected_protocol", FactValue::Str(s.join(",")));
        }
        cx.obs.facts(cx.ts, cx.flow, f);
        cx.events
            .emit(cx.ts, "rdp", cx.flow, Direction::ToServer, &rec);
        let tls_bits = rdp::PROTOCOL_SSL
            | rdp::PROTOCOL_HYBRID
            | rdp::PROTOCOL_RDSTLS
            | rdp::PROTOCOL_HYBRID_EX;
        if self.confirm_seen && self.selected.is_some_and(|s| s & tls_bits != 0) {
            self.tls = Some(InnerTls::new([0, 0]));
        }
    }
}

impl AppParser for RdpState {
    fn on_data(&mut self, dir: Direction, data: &[u8], cx: &mut AppContext<'_>) {
        if self.done {
            if let Some(t) = self.tls.as_mut() {
                t.on_data(dir, data, cx);
            }
            return;
        }
        let i = dir.index();
        let b = &mut self.buf[i];
        let take = data.len().min(MAX_KEPT.saturating_sub(b.len()));
        b.extend_from_slice(&data[..take]);
        match rdp::parse_x224(b) {
            Ok((rest, x)) => {
                // What followed the PDU in this chunk (TLS, once it is selected).
                let rest = rest.to_vec();
                match x.negotiation {
                    Some(Negotiation::Request(p)) => self.requested = Some(p),
                    Some(Negotiation::Response(p)) => self.selected = Some(p),
                    Some(Negotiation::Failure(c)) => self.failure = Some(c),
                    None => {}
                }
                if x.code == rdp::TpduCode::CONNECTION_REQUEST {
                    self.request_seen = true;
                    self.cookie = x.cookie;
                } else if x.code == rdp::TpduCode::CONNECTION_CONFIRM {
                    self.confirm_seen = true;
                }
                self.buf[i] = Vec::new();
                if self.confirm_seen || dir == Direction::ToClient {
                    self.finish(cx);
                }
                if let Some(t) = self.tls.as_mut().filter(|_| !rest.is_empty()) {
                    t.on_data(dir, &rest, cx);
                }
            }
            Err(RdpError::Incomplete(_)) if b.len() < MAX_KEPT => {}
            Err(_) => {
                self.buf[i] = Vec::new();
                if dir == Direction::ToClient {
                    self.finish(cx);
                }
            }
        }
    }

    fn on_gap(&mut self, dir: Direction, len: u64, cx: &mut AppContext<'_>) {
        if self.done {
            if let Some(t) = self.tls.as_mut() {
                t.on_gap(dir, len, cx);
            }
        }
        self.finish(cx);
    }

    fn on_close(&mut self, cx: &mut AppContext<'_>) {
        self.finish(cx);
        if let Some(t) = self.tls.as_mut() {
            t.on_close(cx);
        }
    }

    fn done(&self) -> bool {
        self.done && self.tls.as_ref().is_none_or(InnerTls::done)
    }
}
