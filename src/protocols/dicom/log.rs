//! The `dicom` event: one record per association, owned, built up by [`super::state`] and
//! serialised once when the association ends. Field names follow DESIGN.md; empty and absent
//! values are omitted. Nothing here holds a PHI value: `phi_present` lists attribute keywords.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::json_key;
use crate::output::{push_json_str, push_name, push_u64, JsonObj};

/// A UID from the wire as [`medtap_parsers::dicom::text`] makes it: borrowed when it is one of
/// the well-known UIDs of [`uid_text`] (most contexts name them), owned otherwise.
pub type Uid = std::borrow::Cow<'static, str>;

/// UIDs that most associations propose: transfer syntaxes (PS3.5 A, PS3.6 A-1), the
/// application context, verification, query/retrieve, worklist and common storage classes.
const WELL_KNOWN_UIDS: &[&str] = &[
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.81",
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.5",
    "1.2.840.10008.3.1.1.1",
    "1.2.840.10008.1.1",
    "1.2.840.10008.1.20.1",
    "1.2.840.10008.3.1.2.3.3",
    "1.2.840.10008.5.1.4.31",
    "1.2.840.10008.5.1.4.1.2.1.1",
    "1.2.840.10008.5.1.4.1.2.1.2",
    "1.2.840.10008.5.1.4.1.2.1.3",
    "1.2.840.10008.5.1.4.1.2.2.1",
    "1.2.840.10008.5.1.4.1.2.2.2",
    "1.2.840.10008.5.1.4.1.2.2.3",
    "1.2.840.10008.5.1.4.1.1.1",
    "1.2.840.10008.5.1.4.1.1.1.1",
    "1.2.840.10008.5.1.4.1.1.1.2",
    "1.2.840.10008.5.1.4.1.1.2",
    "1.2.840.10008.5.1.4.1.1.4",
    "1.2.840.10008.5.1.4.1.1.6.1",
    "1.2.840.10008.5.1.4.1.1.7",
    "1.2.840.10008.5.1.4.1.1.12.1",
    "1.2.840.10008.5.1.4.1.1.20",
    "1.2.840.10008.5.1.4.1.1.128",
    "1.2.840.10008.5.1.4.1.1.481.1",
];

/// `text(b, cap)` as a [`Uid`]: the same text, borrowed when it is a well-known UID.
pub fn uid_text(b: &[u8], cap: usize) -> Uid {
    let cut = &b[..b.len().min(cap)];
    // The bytes `text` keeps: trailing spaces and NULs and leading spaces dropped. A well-known
    // UID is printable ASCII, so `text` of these bytes is that UID exactly when they are equal.
    let end = cut
        .iter()
        .rposition(|&c| c != b' ' && c != 0)
        .map_or(0, |i| i + 1);
    let start = cut[..end].iter().position(|&c| c != b' ').unwrap_or(end);
    let kept = &cut[start..end];
    match well_known_uid(kept) {
        Some(u) => Uid::Borrowed(u),
        None => Uid::Owned(medtap_parsers::dicom::text(b, cap)),
    }
}

/// Slots of [`WELL_KNOWN_INDEX`]: a power of two, several times the number of UIDs, so that
/// a lookup probes one slot, rarely two.
const WELL_KNOWN_SLOTS: usize = 256;

/// The lengths of the [`WELL_KNOWN_UIDS`] (anything shorter or longer is rejected at once).
const WELL_KNOWN_LEN: (usize, usize) = {
    let (mut min, mut max, mut i) = (usize::MAX, 0, 0);
    while i < WELL_KNOWN_UIDS.len() {
        let n = WELL_KNOWN_UIDS[i].len();
        if n < min {
            min = n;
        }
        if n > max {
            max = n;
        }
        i += 1;
    }
    (min, max)
};

/// Where a lookup of `b` starts in [`WELL_KNOWN_INDEX`]: its length and last four bytes mixed
/// by one multiplication (`b` holds at least 4 bytes: it is as long as a well-known UID).
#[inline]
const fn well_known_slot(b: &[u8]) -> usize {
    let n = b.len();
    let w = u32::from_le_bytes([b[n - 4], b[n - 3], b[n - 2], b[n - 1]]) ^ (n as u32);
    (w.wrapping_mul(0x9e37_79b1) >> 24) as usize % WELL_KNOWN_SLOTS
}

/// Open addressing over [`WELL_KNOWN_UIDS`] (linear probing), built at compile time: each
/// slot holds 1 + the index of a UID, or 0 (empty, ends a probe).
const WELL_KNOWN_INDEX: [u8; WELL_KNOWN_SLOTS] = {
    let mut t = [0u8; WELL_KNOWN_SLOTS];
    let mut i = 0;
    while i < WELL_KNOWN_UIDS.len() {
        let mut s = well_known_slot(WELL_KNOWN_UIDS[i].as_bytes());
        while t[s] != 0 {
            s = (s + 1) % WELL_KNOWN_SLOTS;
        }
        t[s] = (i + 1) as u8;
        i += 1;
    }
    t
};

/// The entry of [`WELL_KNOWN_UIDS`] equal to `b` (every context names a few): a length check,
/// then the slots of a small table built at compile time, one comparison each.
fn well_known_uid(b: &[u8]) -> Option<&'static str> {
    if b.len() < WELL_KNOWN_LEN.0 || b.len() > WELL_KNOWN_LEN.1 {
        return None;
    }
    let mut s = well_known_slot(b);
    loop {
        let e = usize::from(WELL_KNOWN_INDEX[s]);
        let u = WELL_KNOWN_UIDS.get(e.checked_sub(1)?)?;
        if u.as_bytes() == b {
            return Some(u);
        }
        s = (s + 1) % WELL_KNOWN_SLOTS;
    }
}

/// A cap that was hit: the value seen and the limit.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct LimitRecord {
    pub value: u64,
    pub limit: u64,
}

/// The caps this association hit (each recorded once, the first time).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct LimitsRecord {
    /// A non-P-DATA PDU longer than the bytes kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pdu_kept: Option<LimitRecord>,
    /// Presentation context items in one A-ASSOCIATE PDU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contexts: Option<LimitRecord>,
    /// DIMSE requests awaiting their final response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_commands: Option<LimitRecord>,
    /// Bytes of one command set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_set: Option<LimitRecord>,
    /// DIMSE messages listed in `commands` (the rest are counted in `commands_total`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commands_listed: Option<LimitRecord>,
}

impl LimitsRecord {
    pub fn is_empty(&self) -> bool {
        *self == LimitsRecord::default()
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct AsyncOps {
    pub invoked: u16,
    pub performed: u16,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RoleRecord {
    pub sop_class_uid: String,
    pub scu: u8,
    pub scp: u8,
}

/// User identity negotiation: type only (PS3.7 D.3.3.7); the fields are never logged.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct IdentityRecord {
    #[serde(rename = "type")]
    pub identity_type: u8,
    pub type_name: &'static str,
    pub positive_response_requested: bool,
    /// A secondary field (passcode) travelled, in clear unless under TLS.
    pub passcode_present: bool,
}

/// One side's user information.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PeerRecord {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub implementation_class_uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub implementation_version_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_pdu_length: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub async_ops: Option<AsyncOps>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<RoleRecord>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extended_negotiation: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_identity: Option<IdentityRecord>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub user_identity_response: bool,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ContextRecord {
    pub id: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abstract_syntax: Option<Uid>,
    /// Proposed in the RQ.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transfer_syntaxes: Vec<Uid>,
    /// From the AC: 0 acceptance, 1 user-rejection, 2 no-reason, 3 abstract syntax not
    /// supported, 4 transfer syntaxes not supported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_name: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_transfer_syntax: Option<Uid>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct RejectRecord {
    pub result: u8,
    pub source: u8,
    pub reason: u8,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct AbortRecord {
    pub source: u8,
    pub reason: u8,
    /// Which side sent it: "requestor" or "acceptor".
    pub from: &'static str,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct SubOps {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<u16>,
}

/// One DIMSE message.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct CommandRecord {
    /// e.g. "C-STORE-RQ"; "other" for a Command Field PS3.7 does not define.
    pub command: &'static str,
    pub command_field: u16,
    /// "requestor" or "acceptor" (of the association; in C-GET the acceptor sends C-STORE-RQ).
    pub from: &'static str,
    pub context_id: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id_being_responded_to: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affected_sop_class_uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affected_sop_instance_uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_sop_class_uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_sop_instance_uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub move_destination: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_class: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_operations: Option<SubOps>,
    /// A data set follows the command (Command Data Set Type is not 0101H).
    pub dataset: bool,
    /// A response whose request was not seen (or a request answered twice).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unmatched: bool,
}

/// Identifying attributes of one data set (device evidence for the inventory).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct DatasetRecord {
    /// "requestor" or "acceptor": who sent the data set (not necessarily the device that made
    /// it: a PACS forwards images made by a modality).
    pub from: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sop_class_uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modality: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manufacturer_model_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub station_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_versions: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_serial_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub institution_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub institutional_department_name: Option<String>,
}

/// The `dicom` event body.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DicomEvent {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calling_ae: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub called_ae: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_context: Option<Uid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requestor: Option<PeerRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acceptor: Option<PeerRecord>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub presentation_contexts: Vec<ContextRecord>,
    /// accepted | rejected | aborted | incomplete.
    pub result: &'static str,
    /// A-RELEASE-RQ and -RP were both seen.
    pub released: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject: Option<RejectRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort: Option<AbortRecord>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<CommandRecord>,
    pub commands_total: u64,
    /// Requests still waiting for their final response when the association ended.
    #[serde(skip_serializing_if = "is_zero")]
    pub unanswered: u64,
    /// Keywords (PS3.6) of the PHI attributes that carried a value in a data set or
    /// identifier; never the values.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub phi_present: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub datasets: Vec<DatasetRecord>,
    /// PDUs seen, by type name.
    pub pdus: BTreeMap<&'static str, u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown_pdu_types: Vec<u8>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown_items: Vec<u8>,
    /// The association was picked up without its A-ASSOCIATE-RQ.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub midstream: bool,
    #[serde(skip_serializing_if = "is_zero")]
    pub gaps: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub errors: BTreeMap<&'static str, u32>,
    #[serde(skip_serializing_if = "LimitsRecord::is_empty")]
    pub limits: LimitsRecord,
    /// Bytes of the association, both directions.
    pub bytes: u64,
}

impl DicomEvent {
    /// The JSON object `serde_json` makes of the event (a test holds them equal), written by
    /// hand into the event buffer: an association's event is a few KiB of small fields.
    pub fn write_json(&self, b: &mut Vec<u8>) {
        let mut o = JsonObj::new(b);
        o.opt_str(json_key!("calling_ae"), self.calling_ae.as_deref());
        o.opt_str(json_key!("called_ae"), self.called_ae.as_deref());
        o.opt_u64(
            json_key!("protocol_version"),
            self.protocol_version.map(u64::from),
        );
        if let Some(u) = &self.application_context {
            push_uid(o.key(json_key!("application_context")), u);
        }
        if let Some(p) = &self.requestor {
            p.write_json(o.key(json_key!("requestor")));
        }
        if let Some(p) = &self.acceptor {
            p.write_json(o.key(json_key!("acceptor")));
        }
        if !self.presentation_contexts.is_empty() {
            o.array(
                json_key!("presentation_contexts"),
                &self.presentation_contexts,
                |b, c| c.write_json(b),
            );
        }
        o.name(json_key!("result"), self.result);
        o.bool(json_key!("released"), self.released);
        if let Some(r) = &self.reject {
            let mut r2 = JsonObj::new(o.key(json_key!("reject")));
            r2.u64(json_key!("result"), u64::from(r.result));
            r2.u64(json_key!("source"), u64::from(r.source));
            r2.u64(json_key!("reason"), u64::from(r.reason));
            r2.end();
        }
        if let Some(a) = &self.abort {
            let mut a2 = JsonObj::new(o.key(json_key!("abort")));
            a2.u64(json_key!("source"), u64::from(a.source));
            a2.u64(json_key!("reason"), u64::from(a.reason));
            a2.name(json_key!("from"), a.from);
            a2.end();
        }
        if !self.commands.is_empty() {
            o.array(json_key!("commands"), &self.commands, |b, c| {
                c.write_json(b)
            });
        }
        o.u64(json_key!("commands_total"), self.commands_total);
        if self.unanswered != 0 {
            o.u64(json_key!("unanswered"), self.unanswered);
        }
        if !self.phi_present.is_empty() {
            o.array(json_key!("phi_present"), &self.phi_present, |b, s| {
                push_name(b, s)
            });
        }
        if !self.datasets.is_empty() {
            o.array(json_key!("datasets"), &self.datasets, |b, d| {
                d.write_json(b)
            });
        }
        {
            let mut m = JsonObj::new(o.key(json_key!("pdus")));
            for (k, v) in &self.pdus {
                let b = m.key_name(k);
                push_u64(b, *v);
            }
            m.end();
        }
        if !self.unknown_pdu_types.is_empty() {
            o.array(
                json_key!("unknown_pdu_types"),
                &self.unknown_pdu_types,
                |b, t| push_u64(b, u64::from(*t)),
            );
        }
        if !self.unknown_items.is_empty() {
            o.array(json_key!("unknown_items"), &self.unknown_items, |b, t| {
                push_u64(b, u64::from(*t))
            });
        }
        if self.midstream {
            o.bool(json_key!("midstream"), true);
        }
        if self.gaps != 0 {
            o.u64(json_key!("gaps"), self.gaps);
        }
        if !self.errors.is_empty() {
            let mut m = JsonObj::new(o.key(json_key!("errors")));
            for (k, v) in &self.errors {
                let b = m.key_name(k);
                push_u64(b, u64::from(*v));
            }
            m.end();
        }
        if !self.limits.is_empty() {
            let l = &self.limits;
            let mut m = JsonObj::new(o.key(json_key!("limits")));
            for (k, v) in [
                (json_key!("pdu_kept"), &l.pdu_kept),
                (json_key!("contexts"), &l.contexts),
                (json_key!("pending_commands"), &l.pending_commands),
                (json_key!("command_set"), &l.command_set),
                (json_key!("commands_listed"), &l.commands_listed),
            ] {
                if let Some(v) = v {
                    let mut r = JsonObj::new(m.key(k));
                    r.u64(json_key!("value"), v.value);
                    r.u64(json_key!("limit"), v.limit);
                    r.end();
                }
            }
            m.end();
        }
        o.u64(json_key!("bytes"), self.bytes);
        o.end();
    }
}

impl PeerRecord {
    fn write_json(&self, b: &mut Vec<u8>) {
        let mut o = JsonObj::new(b);
        o.opt_str(
            json_key!("implementation_class_uid"),
            self.implementation_class_uid.as_deref(),
        );
        o.opt_str(
            json_key!("implementation_version_name"),
            self.implementation_version_name.as_deref(),
        );
        o.opt_u64(
            json_key!("max_pdu_length"),
            self.max_pdu_length.map(u64::from),
        );
        if let Some(a) = &self.async_ops {
            let mut a2 = JsonObj::new(o.key(json_key!("async_ops")));
            a2.u64(json_key!("invoked"), u64::from(a.invoked));
            a2.u64(json_key!("performed"), u64::from(a.performed));
            a2.end();
        }
        if !self.roles.is_empty() {
            o.array(json_key!("roles"), &self.roles, |b, r| {
                let mut r2 = JsonObj::new(b);
                r2.str(json_key!("sop_class_uid"), &r.sop_class_uid);
                r2.u64(json_key!("scu"), u64::from(r.scu));
                r2.u64(json_key!("scp"), u64::from(r.scp));
                r2.end();
            });
        }
        if !self.extended_negotiation.is_empty() {
            o.array(
                json_key!("extended_negotiation"),
                &self.extended_negotiation,
                |b, s| push_json_str(b, s),
            );
        }
        if let Some(u) = &self.user_identity {
            let mut u2 = JsonObj::new(o.key(json_key!("user_identity")));
            u2.u64(json_key!("type"), u64::from(u.identity_type));
            u2.name(json_key!("type_name"), u.type_name);
            u2.bool(
                json_key!("positive_response_requested"),
                u.positive_response_requested,
            );
            u2.bool(json_key!("passcode_present"), u.passcode_present);
            u2.end();
        }
        if self.user_identity_response {
            o.bool(json_key!("user_identity_response"), true);
        }
        o.end();
    }
}

/// Appends `u` as [`push_json_str`] does: a well-known UID (borrowed: digits and dots only,
/// a test holds it) is quoted without looking for characters to escape.
fn push_uid(b: &mut Vec<u8>, u: &Uid) {
    match u {
        Uid::Borrowed(s) => {
            b.reserve(s.len() + 2);
            b.push(b'"');
            b.extend_from_slice(s.as_bytes());
            b.push(b'"');
        }
        Uid::Owned(s) => push_json_str(b, s),
    }
}

impl ContextRecord {
    fn write_json(&self, b: &mut Vec<u8>) {
        let mut o = JsonObj::new(b);
        o.u64(json_key!("id"), u64::from(self.id));
        if let Some(u) = &self.abstract_syntax {
            push_uid(o.key(json_key!("abstract_syntax")), u);
        }
        if !self.transfer_syntaxes.is_empty() {
            o.array(
                json_key!("transfer_syntaxes"),
                &self.transfer_syntaxes,
                push_uid,
            );
        }
        o.opt_u64(json_key!("result"), self.result.map(u64::from));
        o.opt_name(json_key!("result_name"), self.result_name);
        if let Some(u) = &self.accepted_transfer_syntax {
            push_uid(o.key(json_key!("accepted_transfer_syntax")), u);
        }
        o.end();
    }
}

impl CommandRecord {
    fn write_json(&self, b: &mut Vec<u8>) {
        let mut o = JsonObj::new(b);
        o.name(json_key!("command"), self.command);
        o.u64(json_key!("command_field"), u64::from(self.command_field));
        o.name(json_key!("from"), self.from);
        o.u64(json_key!("context_id"), u64::from(self.context_id));
        o.opt_u64(json_key!("message_id"), self.message_id.map(u64::from));
        o.opt_u64(
            json_key!("message_id_being_responded_to"),
            self.message_id_being_responded_to.map(u64::from),
        );
        o.opt_str(
            json_key!("affected_sop_class_uid"),
            self.affected_sop_class_uid.as_deref(),
        );
        o.opt_str(
            json_key!("affected_sop_instance_uid"),
            self.affected_sop_instance_uid.as_deref(),
        );
        o.opt_str(
            json_key!("requested_sop_class_uid"),
            self.requested_sop_class_uid.as_deref(),
        );
        o.opt_str(
            json_key!("requested_sop_instance_uid"),
            self.requested_sop_instance_uid.as_deref(),
        );
        o.opt_str(
            json_key!("move_destination"),
            self.move_destination.as_deref(),
        );
        o.opt_u64(json_key!("priority"), self.priority.map(u64::from));
        o.opt_u64(json_key!("status"), self.status.map(u64::from));
        o.opt_name(json_key!("status_class"), self.status_class);
        if let Some(s) = &self.sub_operations {
            let mut s2 = JsonObj::new(o.key(json_key!("sub_operations")));
            s2.opt_u64(json_key!("remaining"), s.remaining.map(u64::from));
            s2.opt_u64(json_key!("completed"), s.completed.map(u64::from));
            s2.opt_u64(json_key!("failed"), s.failed.map(u64::from));
            s2.opt_u64(json_key!("warning"), s.warning.map(u64::from));
            s2.end();
        }
        o.bool(json_key!("dataset"), self.dataset);
        if self.unmatched {
            o.bool(json_key!("unmatched"), true);
        }
        o.end();
    }
}

impl DatasetRecord {
    fn write_json(&self, b: &mut Vec<u8>) {
        let mut o = JsonObj::new(b);
        o.name(json_key!("from"), self.from);
        o.opt_str(json_key!("sop_class_uid"), self.sop_class_uid.as_deref());
        o.opt_str(json_key!("modality"), self.modality.as_deref());
        o.opt_str(json_key!("manufacturer"), self.manufacturer.as_deref());
        o.opt_str(
            json_key!("manufacturer_model_name"),
            self.manufacturer_model_name.as_deref(),
        );
        o.opt_str(json_key!("station_name"), self.station_name.as_deref());
        o.opt_str(
            json_key!("software_versions"),
            self.software_versions.as_deref(),
        );
        o.opt_str(
            json_key!("device_serial_number"),
            self.device_serial_number.as_deref(),
        );
        o.opt_str(
            json_key!("institution_name"),
            self.institution_name.as_deref(),
        );
        o.opt_str(
            json_key!("institutional_department_name"),
            self.institutional_department_name.as_deref(),
        );
        o.end();
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// PS3.8 9.3.3.2 presentation context results.
pub fn context_result_name(r: u8) -> &'static str {
    match r {
        0 => "acceptance",
        1 => "user_rejection",
        2 => "no_reason",
        3 => "abstract_syntax_not_supported",
        4 => "transfer_syntaxes_not_supported",
        _ => "unknown",
    }
}

/// PS3.7 D.3.3.7.1 user identity types.
pub fn identity_type_name(t: u8) -> &'static str {
    match t {
        1 => "username",
        2 => "username_and_passcode",
        3 => "kerberos",
        4 => "saml",
        5 => "jwt",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator: each optional part present or not, strings with
    /// characters JSON escapes.
    struct Gen(u64);
    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn yes(&mut self) -> bool {
            self.next().is_multiple_of(2)
        }
        fn s(&mut self) -> String {
            const PARTS: [&str; 8] = [
                "1.2.840",
                "PACS_QR",
                " ",
                "\"q\"",
                "a\\b",
                "\u{1}\n\t",
                "é😀",
                "",
            ];
            let n = (self.next() % 4) as usize;
            (0..n).map(|_| PARTS[(self.next() % 8) as usize]).collect()
        }
        fn os(&mut self) -> Option<String> {
            self.yes().then(|| self.s())
        }
        fn ou16(&mut self) -> Option<u16> {
            self.yes().then(|| self.next() as u16)
        }
        fn limit(&mut self) -> Option<LimitRecord> {
            self.yes().then(|| LimitRecord {
                value: self.next(),
                limit: self.next() % 1000,
            })
        }
        fn peer(&mut self) -> Option<PeerRecord> {
            self.yes().then(|| PeerRecord {
                implementation_class_uid: self.os(),
                implementation_version_name: self.os(),
                max_pdu_length: self.yes().then(|| self.next() as u32),
                async_ops: self.yes().then(|| AsyncOps {
                    invoked: self.next() as u16,
                    performed: self.next() as u16,
                }),
                roles: (0..self.next() % 3)
                    .map(|_| RoleRecord {
                        sop_class_uid: self.s(),
                        scu: self.next() as u8,
                        scp: self.next() as u8,
                    })
                    .collect(),
                extended_negotiation: (0..self.next() % 3).map(|_| self.s()).collect(),
                user_identity: self.yes().then(|| IdentityRecord {
                    identity_type: self.next() as u8,
                    type_name: identity_type_name(self.next() as u8 % 7),
                    positive_response_requested: self.yes(),
                    passcode_present: self.yes(),
                }),
                user_identity_response: self.yes(),
            })
        }
        fn event(&mut self) -> DicomEvent {
            let mut pdus = BTreeMap::new();
            for k in ["p_data_tf", "a_associate_rq", "a_abort", "a_release_rp"] {
                if self.yes() {
                    pdus.insert(k, self.next());
                }
            }
            let mut errors = BTreeMap::new();
            for k in ["gap", "resync", "malformed_pdu"] {
                if self.yes() {
                    errors.insert(k, self.next() as u32);
                }
            }
            DicomEvent {
                calling_ae: self.os(),
                called_ae: self.os(),
                protocol_version: self.ou16(),
                application_context: self.os().map(Uid::from),
                requestor: self.peer(),
                acceptor: self.peer(),
                presentation_contexts: (0..self.next() % 4)
                    .map(|_| ContextRecord {
                        id: self.next() as u8,
                        abstract_syntax: self.os().map(Uid::from),
                        transfer_syntaxes: (0..self.next() % 3).map(|_| self.s().into()).collect(),
                        result: self.yes().then(|| self.next() as u8),
                        result_name: self
                            .yes()
                            .then(|| context_result_name(self.next() as u8 % 6)),
                        accepted_transfer_syntax: self.os().map(Uid::from),
                    })
                    .collect(),
                result: ["accepted", "rejected", "aborted", "incomplete"]
                    [(self.next() % 4) as usize],
                released: self.yes(),
                reject: self.yes().then(|| RejectRecord {
                    result: self.next() as u8,
                    source: self.next() as u8,
                    reason: self.next() as u8,
                }),
                abort: self.yes().then(|| AbortRecord {
                    source: self.next() as u8,
                    reason: self.next() as u8,
                    from: "acceptor",
                }),
                commands: (0..self.next() % 4)
                    .map(|_| CommandRecord {
                        command: "C-STORE-RQ",
                        command_field: self.next() as u16,
                        from: "requestor",
                        context_id: self.next() as u8,
                        message_id: self.ou16(),
                        message_id_being_responded_to: self.ou16(),
                        affected_sop_class_uid: self.os(),
                        affected_sop_instance_uid: self.os(),
                        requested_sop_class_uid: self.os(),
                        requested_sop_instance_uid: self.os(),
                        move_destination: self.os(),
                        priority: self.ou16(),
                        status: self.ou16(),
                        status_class: self.yes().then_some("pending"),
                        sub_operations: self.yes().then(|| SubOps {
                            remaining: self.ou16(),
                            completed: self.ou16(),
                            failed: self.ou16(),
                            warning: self.ou16(),
                        }),
                        dataset: self.yes(),
                        unmatched: self.yes(),
                    })
                    .collect(),
                commands_total: self.next(),
                unanswered: if self.yes() { 0 } else { self.next() },
                phi_present: (0..self.next() % 3).map(|_| "PatientName").collect(),
                datasets: (0..self.next() % 3)
                    .map(|_| DatasetRecord {
                        from: "acceptor",
                        sop_class_uid: self.os(),
                        modality: self.os(),
                        manufacturer: self.os(),
                        manufacturer_model_name: self.os(),
                        station_name: self.os(),
                        software_versions: self.os(),
                        device_serial_number: self.os(),
                        institution_name: self.os(),
                        institutional_department_name: self.os(),
                    })
                    .collect(),
                pdus,
                unknown_pdu_types: (0..self.next() % 3).map(|_| self.next() as u8).collect(),
                unknown_items: (0..self.next() % 3).map(|_| self.next() as u8).collect(),
                midstream: self.yes(),
                gaps: if self.yes() { 0 } else { self.next() },
                errors,
                limits: LimitsRecord {
                    pdu_kept: self.limit(),
                    contexts: self.limit(),
                    pending_commands: self.limit(),
                    command_set: self.limit(),
                    commands_listed: self.limit(),
                },
                bytes: self.next(),
            }
        }
    }

    #[test]
    fn uids_borrowed_or_not_are_the_text() {
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for u in WELL_KNOWN_UIDS {
            for (pre, post) in [
                ("", ""),
                ("", "\0"),
                (" ", "  "),
                ("", "9"),
                ("x", ""),
                ("", "\x01"),
            ] {
                cases.push(format!("{pre}{u}{post}").into_bytes());
            }
            cases.push(u.as_bytes()[..u.len() - 1].to_vec());
        }
        cases.extend([b"".to_vec(), b"   \0".to_vec(), b"1.2.3\xff".to_vec()]);
        for c in cases {
            for cap in [16, 20, 64] {
                let u = uid_text(&c, cap);
                assert_eq!(u, medtap_parsers::dicom::text(&c, cap), "{c:?}");
            }
        }
        assert!(matches!(
            uid_text(b"1.2.840.10008.1.2.1\0", 64),
            Uid::Borrowed(_)
        ));
        // Every well-known UID is found, and the table probes at most
        // two slots for one.
        assert!(WELL_KNOWN_UIDS.len() < WELL_KNOWN_SLOTS / 4);
        for (i, u) in WELL_KNOWN_UIDS.iter().enumerate() {
            assert_eq!(well_known_uid(u.as_bytes()), Some(*u));
            let s = well_known_slot(u.as_bytes());
            let at = (0..2)
                .map(|k| (s + k) % WELL_KNOWN_SLOTS)
                .find(|&k| usize::from(WELL_KNOWN_INDEX[k]) == i + 1);
            assert!(at.is_some(), "{u}");
            assert_eq!(well_known_uid(&u.as_bytes()[1..]), None);
            assert_eq!(well_known_uid(format!("{u}1").as_bytes()), None);
        }
        // What `push_uid` writes of one without escaping is what `push_json_str` writes.
        for u in WELL_KNOWN_UIDS {
            assert!(u.bytes().all(|c| c.is_ascii_digit() || c == b'.'), "{u}");
            let (mut a, mut b) = (Vec::new(), Vec::new());
            push_uid(&mut a, &Uid::Borrowed(u));
            push_json_str(&mut b, u);
            assert_eq!(a, b);
        }
        let distinct: std::collections::HashSet<_> = WELL_KNOWN_UIDS.iter().collect();
        assert_eq!(distinct.len(), WELL_KNOWN_UIDS.len());
    }

    #[test]
    fn event_by_hand_equals_serde_json() {
        let mut events = vec![DicomEvent::default()];
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        events.extend((0..3000).map(|_| g.event()));
        for ev in events {
            let mut b = Vec::new();
            ev.write_json(&mut b);
            assert_eq!(
                String::from_utf8(b).unwrap(),
                serde_json::to_string(&ev).unwrap()
            );
        }
    }
}
