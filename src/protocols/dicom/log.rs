//! The `dicom` event: one record per association, owned, built up by [`super::state`] and
//! serialised once when the association ends. Field names follow DESIGN.md; empty and absent
//! values are omitted. Nothing here holds a PHI value: `phi_present` lists attribute keywords.

use std::collections::BTreeMap;

use serde::Serialize;

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
    pub abstract_syntax: Option<String>,
    /// Proposed in the RQ.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transfer_syntaxes: Vec<String>,
    /// From the AC: 0 acceptance, 1 user-rejection, 2 no-reason, 3 abstract syntax not
    /// supported, 4 transfer syntaxes not supported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_name: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_transfer_syntax: Option<String>,
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
    pub application_context: Option<String>,
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
