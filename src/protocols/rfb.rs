//! VNC (the Remote Framebuffer protocol): the versions both sides announce, the security types
//! the server offers and the one the client picks. One `rfb` event per connection (named as in
//! Suricata's EVE) once the choice is known (or at the end); facts for detection with it:
//! whether the session is authenticated at all, and whether it is encrypted.

use medtap_parsers::rfb::{self, SecurityType, Version};
use serde::Serialize;

use super::{AppContext, AppParser, Direction};
use crate::observe::{FactValue, Facts};

/// Handshake bytes kept per direction (version 12 + count 1 + at most 255 types).
const MAX_HANDSHAKE: usize = 268;

#[derive(Default)]
pub struct RfbState {
    buf: [Vec<u8>; 2],
    server_version: Option<Version>,
    client_version: Option<Version>,
    offered: Option<Vec<SecurityType>>,
    chosen: Option<SecurityType>,
    done: bool,
}

#[derive(Serialize)]
struct VersionRecord {
    major: u16,
    minor: u16,
}

#[derive(Serialize)]
struct RfbRecord {
    #[serde(skip_serializing_if = "Option::is_none")]
    server_protocol_version: Option<VersionRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_protocol_version: Option<VersionRecord>,
    security_types: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    security_type: Option<&'static str>,
}

impl RfbState {
    pub fn new() -> RfbState {
        RfbState::default()
    }

    fn advance(&mut self) {
        // Server: version then the security offer; client: version then (3.7+) its choice.
        let s = &self.buf[Direction::ToClient.index()];
        if let Ok((rest, v)) = rfb::parse_version(s) {
            self.server_version = Some(v);
            if self.offered.is_none() {
                if let Ok(t) = rfb::parse_security_types(rest, v) {
                    if t.server_chose {
                        self.chosen = t.types.first().copied();
                    }
                    self.offered = Some(t.types);
                }
            }
        }
        let c = &self.buf[Direction::ToServer.index()];
        if let Ok((rest, v)) = rfb::parse_version(c) {
            self.client_version = Some(v);
            if self.chosen.is_none() && self.offered.is_some() {
                if let Some(&t) = rest.first() {
                    self.chosen = Some(SecurityType(t));
                }
            }
        }
    }

    fn finish(&mut self, cx: &mut AppContext<'_>) {
        if self.done {
            return;
        }
        self.done = true;
        self.buf = Default::default();
        if self.server_version.is_none() && self.client_version.is_none() {
            return;
        }
        let offered = self.offered.clone().unwrap_or_default();
        let rec = RfbRecord {
            server_protocol_version: self.server_version.map(|v| VersionRecord {
                major: v.major,
                minor: v.minor,
            }),
            client_protocol_version: self.client_version.map(|v| VersionRecord {
                major: v.major,
                minor: v.minor,
            }),
            security_types: offered.iter().map(|t| t.name()).collect(),
            security_type: self.chosen.map(SecurityType::name),
        };
        // Encrypted when the chosen type encrypts; when the choice was not seen, only if
        // every type offered does.
        let encrypted = match self.chosen {
            Some(t) => t.encrypts(),
            None => !offered.is_empty() && offered.iter().all(|t| t.encrypts()),
        };
        let no_auth = match self.chosen {
            Some(t) => t == SecurityType::NONE,
            None => offered.contains(&SecurityType::NONE),
        };
        let mut f = Facts::new("rfb")
            .with("encrypted", FactValue::Bool(encrypted))
            .with("no_auth", FactValue::Bool(no_auth))
            .with(
                "security_types",
                FactValue::List(rec.security_types.iter().map(|s| s.to_string()).collect()),
            );
        if let Some(t) = rec.security_type {
            f = f.with("security_type", FactValue::Str(t.into()));
        }
        cx.obs.facts(cx.ts, cx.flow, f);
        cx.events
            .emit(cx.ts, "rfb", cx.flow, Direction::ToServer, &rec);
    }
}

impl AppParser for RfbState {
    fn on_data(&mut self, dir: Direction, data: &[u8], cx: &mut AppContext<'_>) {
        if self.done {
            return;
        }
        let b = &mut self.buf[dir.index()];
        let take = data.len().min(MAX_HANDSHAKE.saturating_sub(b.len()));
        b.extend_from_slice(&data[..take]);
        self.advance();
        if self.chosen.is_some() {
            self.finish(cx);
        }
    }

    fn on_gap(&mut self, _dir: Direction, _len: u64, cx: &mut AppContext<'_>) {
        self.finish(cx);
    }

    fn on_close(&mut self, cx: &mut AppContext<'_>) {
        self.finish(cx);
    }

    fn done(&self) -> bool {
        self.done
    }
}
