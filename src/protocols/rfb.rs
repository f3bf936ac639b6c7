//! VNC (the Remote Framebuffer protocol): the versions both sides announce, the security types
//! the server offers and the one the client picks. One `rfb` event per connection (named as in
//! Suricata's EVE) once the choice is known (or at the end); facts for detection with it:
//! whether the session is authenticated at all, whether it is encrypted, and whether a
//! password crossed in clear. For VeNCrypt (type 19) that depends on the sub-type: `Plain`
//! sends the user name and password in clear, `TLSNone`/`X509None` encrypt without
//! authenticating, the others run inside TLS; the event waits for the sub-type choice. The
//! TLS of a VeNCrypt TLS sub-type goes to the TLS state machine ([`InnerTls`]).

use medtap_parsers::rfb::{self, SecurityType, VencryptSubtype, Version};
use serde::Serialize;

use super::inner_tls::InnerTls;
use super::{AppContext, AppParser, Direction};
use crate::observe::{FactValue, Facts};

/// Handshake bytes kept per direction: version 12 + count 1 + at most 255 types, then
/// VeNCrypt's version 2 + status 1 + count 1 + at most 255 four-byte sub-types.
const MAX_HANDSHAKE: usize = 268 + 4 + 255 * 4;

#[derive(Default)]
pub struct RfbState {
    buf: [Vec<u8>; 2],
    server_version: Option<Version>,
    client_version: Option<Version>,
    offered: Option<Vec<SecurityType>>,
    /// Where the chosen type's own handshake starts in the server's buffer.
    server_rest: usize,
    chosen: Option<SecurityType>,
    vencrypt_offered: Option<Vec<VencryptSubtype>>,
    vencrypt_chosen: Option<VencryptSubtype>,
    /// The client's VeNCrypt version was read (and was not 0.2: no sub-type will follow).
    vencrypt_client_done: bool,
    done: bool,
    /// The TLS of a VeNCrypt TLS sub-type, after the server's acknowledgement.
    tls: Option<InnerTls>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    vencrypt_subtypes: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vencrypt_subtype: Option<&'static str>,
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
                    self.server_rest = rfb::VERSION_LEN + t.len;
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
            // VeNCrypt (3.7+: the client's choice byte, then its version and sub-type).
            if self.chosen == Some(SecurityType::VENCRYPT)
                && self.vencrypt_chosen.is_none()
                && !self.vencrypt_client_done
            {
                if let Some(Ok(ch)) = rest.get(1..).map(rfb::parse_vencrypt_choice) {
                    self.vencrypt_chosen = ch.subtype;
                    self.vencrypt_client_done = true;
                }
            }
        }
        if self.chosen == Some(SecurityType::VENCRYPT) && self.vencrypt_offered.is_none() {
            if let Some(Ok(o)) = s.get(self.server_rest..).map(rfb::parse_vencrypt_offer) {
                self.vencrypt_offered = Some(o.subtypes);
            }
        }
    }

    /// The handshake says all it will: the type is chosen and, for VeNCrypt, so is the
    /// sub-type (or the client's VeNCrypt version has none).
    fn decided(&self) -> bool {
        match self.chosen {
            Some(SecurityType::VENCRYPT) => self.vencrypt_client_done,
            Some(_) => true,
            None => false,
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
            vencrypt_subtypes: self
                .vencrypt_offered
                .as_ref()
                .map(|v| v.iter().map(|t| t.name()).collect()),
            vencrypt_subtype: self.vencrypt_chosen.map(VencryptSubtype::name),
        };
        // VeNCrypt: the sub-type chosen, else the only one offered.
        let sub = self
            .vencrypt_chosen
            .or(match self.vencrypt_offered.as_deref() {
                Some([only]) => Some(*only),
                _ => None,
            });
        // Encrypted when the chosen type (VeNCrypt: sub-type) encrypts; when the choice was
        // not seen, only if every type offered does.
        let encrypted = match (self.chosen, sub) {
            (Some(SecurityType::VENCRYPT), Some(st)) => st.encrypts(),
            (Some(t), _) => t.encrypts(),
            (None, _) => !offered.is_empty() && offered.iter().all(|t| t.encrypts()),
        };
        let no_auth = match (self.chosen, sub) {
            (Some(SecurityType::VENCRYPT), Some(st)) => st.no_auth(),
            (Some(t), _) => t == SecurityType::NONE,
            (None, _) => offered.contains(&SecurityType::NONE),
        };
        let cleartext = self.chosen == Some(SecurityType::VENCRYPT)
            && sub.is_some_and(VencryptSubtype::cleartext_password);
        let mut f = Facts::new("rfb")
            .with("encrypted", FactValue::Bool(encrypted))
            .with("no_auth", FactValue::Bool(no_auth))
            .with("cleartext_credentials", FactValue::Bool(cleartext))
            .with(
                "security_types",
                FactValue::List(
                    rec.security_types
                        .iter()
                        .map(|s| s.to_string().into())
                        .collect(),
                ),
            );
        if let Some(t) = rec.security_type {
            f = f.with("security_type", FactValue::Str(t.into()));
        }
        if let Some(t) = sub {
            f = f.with("vencrypt_subtype", FactValue::Str(t.name().into()));
        }
        cx.obs.facts(cx.ts, cx.flow, f);
        cx.events
            .emit(cx.ts, "rfb", cx.flow, Direction::ToServer, &rec);
    }
}

impl AppParser for RfbState {
    fn on_data(&mut self, dir: Direction, data: &[u8], cx: &mut AppContext<'_>) {
        if self.done {
            if let Some(t) = self.tls.as_mut() {
                t.on_data(dir, data, cx);
            }
            return;
        }
        let b = &mut self.buf[dir.index()];
        let take = data.len().min(MAX_HANDSHAKE.saturating_sub(b.len()));
        b.extend_from_slice(&data[..take]);
        self.advance();
        if self.decided() {
            // VeNCrypt 0.2 with a TLS sub-type: the server acknowledges with one byte, then
            // both sides speak TLS. Client bytes already held past the choice are TLS.
            let client_tail = match self.vencrypt_chosen {
                Some(st) if st.encrypts() => {
                    const CHOICE_END: usize = rfb::VERSION_LEN + 1 + 2 + 4;
                    let c = &self.buf[Direction::ToServer.index()];
                    Some(c.get(CHOICE_END..).unwrap_or(&[]).to_vec())
                }
                _ => None,
            };
            self.finish(cx);
            if let Some(tail) = client_tail {
                let mut t = InnerTls::new([0, 1]);
                if !tail.is_empty() {
                    t.on_data(Direction::ToServer, &tail, cx);
                }
                self.tls = Some(t);
            }
        }
    }

    fn on_gap(&mut self, dir: Direction, len: u64, cx: &mut AppContext<'_>) {
        if let Some(t) = self.tls.as_mut() {
            t.on_gap(dir, len, cx);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::FlowMeta;
    use crate::observe::{ObsBuf, Observation};
    use crate::output::EventSink;
    use crate::stats::WorkerStats;
    use crate::time::Ts;

    /// Feeds (direction, bytes) in order; returns the `rfb` event and the facts.
    fn run(steps: &[(Direction, &[u8])]) -> (serde_json::Value, Facts) {
        let m = FlowMeta {
            flow_id: 1,
            proto: 6,
            client: ("10.71.0.10".parse().unwrap(), 38936),
            server: ("10.71.0.20".parse().unwrap(), 5900),
            vlan: [0, 0],
            client_mac: [0; 6],
            server_mac: [0; 6],
            to_group: false,
            app_proto: None,
        };
        let mut events = EventSink::new(true);
        let mut stats = WorkerStats::default();
        let mut obs = ObsBuf::new(true);
        let mut st = RfbState::new();
        for (d, b) in steps {
            let mut cx = AppContext {
                ts: Ts(1_000_000),
                flow: &m,
                events: &mut events,
                stats: &mut stats,
                obs: &mut obs,
            };
            st.on_data(*d, b, &mut cx);
        }
        let mut cx = AppContext {
            ts: Ts(1_000_000),
            flow: &m,
            events: &mut events,
            stats: &mut stats,
            obs: &mut obs,
        };
        st.on_close(&mut cx);
        let out = events.take();
        let ev: Vec<serde_json::Value> = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(ev.len(), 1, "{ev:?}");
        let facts: Vec<Facts> = obs
            .take(None)
            .items
            .into_iter()
            .filter_map(|o| match o {
                Observation::Facts { facts, .. } => Some(facts),
                _ => None,
            })
            .collect();
        assert_eq!(facts.len(), 1);
        (ev[0]["rfb"].clone(), facts[0].clone())
    }

    const S: Direction = Direction::ToClient;
    const C: Direction = Direction::ToServer;

    // The handshakes of TigerVNC 1.12 Xvnc and vncviewer (pcaps/legacy/vnc_*.pcap), one
    // message per segment as on the wire.
    fn vencrypt(subtype: u8, after: &[(Direction, &'static [u8])]) -> Vec<(Direction, Vec<u8>)> {
        let mut v: Vec<(Direction, Vec<u8>)> = vec![
            (S, b"RFB 003.008\n".to_vec()),
            (C, b"RFB 003.008\n".to_vec()),
            (S, vec![1, 19]),
            (C, vec![19]),
            (S, vec![0, 2]),
            (C, vec![0, 2]),
            (S, vec![0, 1, 0, 0, 1, subtype]),
            (C, vec![0, 0, 1, subtype]),
        ];
        v.extend(after.iter().map(|(d, b)| (*d, b.to_vec())));
        v
    }

    fn steps(v: &[(Direction, Vec<u8>)]) -> Vec<(Direction, &[u8])> {
        v.iter().map(|(d, b)| (*d, &b[..])).collect()
    }

    #[test]
    fn vencrypt_plain_sends_the_password_in_clear() {
        let v = vencrypt(
            0,
            &[
                (C, b"\0\0\0\x07\0\0\0\x0clgnurseLg-Ward7-Pw9"),
                (S, b"\0\0\0\0"),
            ],
        );
        let (ev, f) = run(&steps(&v));
        assert_eq!(ev["security_type"], "vencrypt");
        assert_eq!(ev["vencrypt_subtype"], "plain");
        assert_eq!(ev["vencrypt_subtypes"], serde_json::json!(["plain"]));
        assert_eq!(f.get("encrypted"), Some(&FactValue::Bool(false)));
        assert_eq!(f.get("no_auth"), Some(&FactValue::Bool(false)));
        assert_eq!(f.get("cleartext_credentials"), Some(&FactValue::Bool(true)));
        assert!(!ev.to_string().contains("Lg-Ward7"));
    }

    #[test]
    fn vencrypt_tls_none_is_encrypted_without_authentication() {
        let v = vencrypt(1, &[(S, b"\x01"), (C, b"\x16\x03\x01\x01\x83\x01")]);
        let (ev, f) = run(&steps(&v));
        assert_eq!(ev["vencrypt_subtype"], "tls_none");
        assert_eq!(f.get("encrypted"), Some(&FactValue::Bool(true)));
        assert_eq!(f.get("no_auth"), Some(&FactValue::Bool(true)));
        assert_eq!(
            f.get("cleartext_credentials"),
            Some(&FactValue::Bool(false))
        );
    }

    #[test]
    fn vencrypt_x509_vnc_and_plain_vnc_auth() {
        let v = vencrypt(5, &[(S, b"\x01")]);
        let (ev, f) = run(&steps(&v));
        assert_eq!(ev["vencrypt_subtype"], "x509_vnc");
        assert_eq!(f.get("encrypted"), Some(&FactValue::Bool(true)));
        assert_eq!(f.get("no_auth"), Some(&FactValue::Bool(false)));
        assert_eq!(
            f.get("vencrypt_subtype"),
            Some(&FactValue::Str("x509_vnc".into()))
        );
        // all in one chunk each way
        let (ev, _) = run(&[
            (S, b"RFB 003.008\n\x01\x13\x00\x02\x00\x01\x00\x00\x01\x05"),
            (C, b"RFB 003.008\n\x13\x00\x02\x00\x00\x01\x05"),
        ]);
        assert_eq!(ev["vencrypt_subtype"], "x509_vnc");
        // VNC authentication: not encrypted, authenticated, no password in clear
        let (ev, f) = run(&[
            (S, b"RFB 003.008\n"),
            (C, b"RFB 003.008\n"),
            (S, b"\x01\x02"),
            (C, b"\x02"),
        ]);
        assert_eq!(ev["security_type"], "vnc_auth");
        assert!(ev.get("vencrypt_subtype").is_none());
        assert_eq!(f.get("encrypted"), Some(&FactValue::Bool(false)));
        assert_eq!(
            f.get("cleartext_credentials"),
            Some(&FactValue::Bool(false))
        );
    }

    #[test]
    fn vencrypt_cut_before_the_subtype_uses_the_only_one_offered() {
        let v = vencrypt(0, &[]);
        let (_, f) = run(&steps(&v[..7]));
        assert_eq!(f.get("cleartext_credentials"), Some(&FactValue::Bool(true)));
        assert_eq!(f.get("encrypted"), Some(&FactValue::Bool(false)));
    }
}
