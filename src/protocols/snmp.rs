//! SNMP over UDP (v1, v2c, v2u, v3): version, what kind of community (default `public`/`private`, other, empty:
//! never the string itself), PDU types; sysDescr.0 and sysObjectID.0 from responses become
//! device evidence. One `snmp` event per flow (at its end, summarising its messages); facts for
//! detection when the version or community kind of the flow is first seen.

use medtap_parsers::snmp::{self, Community};
use serde::Serialize;

use super::{AppContext, AppParser, Direction};
use crate::fingerprint::{Evidence, EvidenceKind};
use crate::observe::{FactValue, Facts};

/// Distinct PDU types listed per flow (there are 9).
const MAX_PDU_TYPES: usize = 9;

#[derive(Default)]
pub struct SnmpState {
    rec: SnmpRecord,
    /// (version, community kind) of the last facts sent.
    facts_sent: Option<(i64, Option<Community>)>,
    evidence_sent: bool,
}

#[derive(Serialize, Default)]
struct SnmpRecord {
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'static str>,
    /// v1/v2c: a community was sent (its value never is).
    community_present: bool,
    /// "default" (public or private), "other" or "empty".
    #[serde(skip_serializing_if = "Option::is_none")]
    community: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    v3_auth: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    v3_priv: Option<bool>,
    /// v2u (RFC 1910): the data was encrypted.
    #[serde(skip_serializing_if = "Option::is_none")]
    v2u_encrypted: Option<bool>,
    pdu_types: Vec<&'static str>,
    /// Messages whose header decoded (the malformed ones included).
    messages: u64,
    /// Datagrams that did not decode, and messages whose header decoded but not the rest
    /// (truncated by the snap length or malformed: their version and community still count).
    parse_errors: u64,
}

impl SnmpState {
    pub fn new() -> SnmpState {
        SnmpState::default()
    }
}

impl AppParser for SnmpState {
    fn on_data(&mut self, dir: Direction, data: &[u8], cx: &mut AppContext<'_>) {
        let Ok(m) = snmp::parse_message(data) else {
            self.rec.parse_errors += 1;
            return;
        };
        let r = &mut self.rec;
        r.messages += 1;
        r.parse_errors += u64::from(m.malformed);
        r.version = Some(m.version.name());
        if let Some(c) = m.community {
            r.community_present = true;
            r.community = Some(c.name());
        }
        if let Some(v3) = m.v3 {
            r.v3_auth = Some(v3.auth);
            r.v3_priv = Some(v3.privacy);
        }
        if let Some(e) = m.v2u_encrypted {
            r.v2u_encrypted = Some(e);
        }
        if let Some(t) = m.pdu_type {
            if !r.pdu_types.contains(&t.name()) && r.pdu_types.len() < MAX_PDU_TYPES {
                r.pdu_types.push(t.name());
            }
        }
        let key = (m.version.0, m.community);
        if self.facts_sent != Some(key) {
            self.facts_sent = Some(key);
            let mut f = Facts::new("snmp")
                .with("version", FactValue::Str(m.version.name().into()))
                .with("community_present", FactValue::Bool(m.community.is_some()))
                .with(
                    "community_default",
                    FactValue::Bool(m.community.is_some_and(Community::is_default)),
                );
            if let Some(c) = m.community {
                f = f.with("community", FactValue::Str(c.name().into()));
            }
            if let Some(t) = m.pdu_type {
                f = f.with("pdu_type", FactValue::Str(t.name().into()));
            }
            if let Some(v3) = m.v3 {
                f = f
                    .with("v3_auth", FactValue::Bool(v3.auth))
                    .with("v3_priv", FactValue::Bool(v3.privacy));
            }
            if let Some(e) = m.v2u_encrypted {
                f = f.with("v2u_encrypted", FactValue::Bool(e));
            }
            cx.obs.facts(cx.ts, cx.flow, f);
        }
        if !self.evidence_sent && (m.sys_descr.is_some() || m.sys_object_id.is_some()) {
            self.evidence_sent = true;
            let mut items = Vec::new();
            if let Some(d) = &m.sys_descr {
                items.push(Evidence::new(EvidenceKind::SnmpSysDescr, d));
            }
            if let Some(o) = &m.sys_object_id {
                items.push(Evidence::new(EvidenceKind::SnmpSysObjectId, o));
            }
            // The agent is the sender of the response.
            let (ip, mac) = match dir {
                Direction::ToServer => (cx.flow.client.0, cx.flow.client_mac),
                Direction::ToClient => (cx.flow.server.0, cx.flow.server_mac),
            };
            cx.obs.evidence(cx.ts, mac, Some(ip), items);
        }
    }

    fn on_gap(&mut self, _dir: Direction, _len: u64, _cx: &mut AppContext<'_>) {}

    fn on_close(&mut self, cx: &mut AppContext<'_>) {
        if self.rec.messages > 0 || self.rec.parse_errors > 0 {
            cx.events
                .emit(cx.ts, "snmp", cx.flow, Direction::ToServer, &self.rec);
        }
    }
}
