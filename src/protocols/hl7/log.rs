//! The `hl7` event: one per message, `src` being its sender. Record -> JSON only; the values
//! come from [`medtap_parsers::hl7::Message`], which never holds a PHI value (names of
//! PHI-bearing fields only, ERR codes only, device identifiers).

use medtap_parsers::hl7::{Device, ErrInfo, Message};
use medtap_parsers::mllp::Framing;
use serde::Serialize;

use super::events::Anomaly;

/// A value and the cap it went over.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct LimitRecord {
    pub value: u64,
    pub limit: u64,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct DeviceRecord<'a> {
    /// Where it was found: `OBX-18`, `PRT-10`, `PRT-16`.
    pub source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub universal_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub universal_id_type: Option<&'a str>,
}

impl<'a> From<&'a Device> for DeviceRecord<'a> {
    fn from(d: &'a Device) -> Self {
        DeviceRecord {
            source: d.source.as_str(),
            id: d.id.as_deref(),
            namespace: d.namespace.as_deref(),
            universal_id: d.universal_id.as_deref(),
            universal_id_type: d.universal_id_type.as_deref(),
        }
    }
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct ErrRecord<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_system: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<&'a str>,
}

impl<'a> From<&'a ErrInfo> for ErrRecord<'a> {
    fn from(e: &'a ErrInfo) -> Self {
        ErrRecord {
            location: e.location.as_deref(),
            code: e.code.as_deref(),
            code_system: e.code_system.as_deref(),
            severity: e.severity.as_deref(),
        }
    }
}

/// What the state machine knows about a message besides its content.
pub struct Context {
    pub framing: Framing,
    /// Bytes of the message on the wire (MLLP blocks excluded), skipped ones included.
    pub bytes: u64,
    pub anomalies: Vec<Anomaly>,
    /// For an acknowledgement paired with its message: milliseconds from the message to it.
    pub latency_ms: Option<f64>,
    /// MSH-9 as `code^event` ([`medtap_parsers::hl7::Msh::message_type`]).
    pub message_type: Option<String>,
    /// For an acknowledgement paired with its message: that message's type.
    pub acked_message_type: Option<String>,
    /// The message-size cap in force.
    pub limit: u64,
}

/// The `hl7` event body. Field names follow DESIGN.md; absent values are omitted.
#[derive(Serialize, Debug)]
pub struct Hl7Event<'a> {
    pub framing: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sending_application: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sending_facility: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiving_application: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiving_facility: Option<&'a str>,
    /// MSH-7.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_time: Option<&'a str>,
    /// MSH-8 is filled (never its value).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub security_present: bool,
    /// MSH-9.1^MSH-9.2, e.g. `ADT^A01`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_type: Option<&'a str>,
    /// MSH-9.3, e.g. `ADT_A01`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_structure: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_id: Option<&'a str>,
    /// MSH-11.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processing_id: Option<&'a str>,
    /// MSH-12.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'a str>,
    /// MSH-18.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub charset: Option<&'a str>,
    /// MSA-1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack_code: Option<&'a str>,
    /// MSA-2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack_control_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acked_message_type: Option<&'a str>,
    /// Segment ids in order (at most `MAX_SEGMENT_IDS`).
    pub segments: Vec<&'a str>,
    pub segment_count: usize,
    /// Names of the PHI-bearing fields present, never values.
    pub phi_fields: &'a [&'static str],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceRecord<'a>>,
    /// ERR segments, codes only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrRecord<'a>>,
    pub bytes: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<&'static str>,
    /// The message went over [`super::MAX_MESSAGE_BYTES`]: its size and the limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub too_large: Option<LimitRecord>,
}

impl<'a> Hl7Event<'a> {
    pub fn new(m: &'a Message, cx: &'a Context) -> Hl7Event<'a> {
        let h = m.msh.as_ref();
        let hs = |f: fn(&'a medtap_parsers::hl7::Msh) -> &'a Option<String>| {
            h.and_then(|h| f(h).as_deref())
        };
        Hl7Event {
            framing: cx.framing.as_str(),
            sending_application: hs(|h| &h.sending_application),
            sending_facility: hs(|h| &h.sending_facility),
            receiving_application: hs(|h| &h.receiving_application),
            receiving_facility: hs(|h| &h.receiving_facility),
            message_time: hs(|h| &h.message_time),
            security_present: h.is_some_and(|h| h.security_present),
            message_type: cx.message_type.as_deref(),
            message_structure: hs(|h| &h.message_structure),
            control_id: hs(|h| &h.control_id),
            processing_id: hs(|h| &h.processing_id),
            version: hs(|h| &h.version),
            charset: hs(|h| &h.charset),
            ack_code: m.msa.as_ref().and_then(|a| a.ack_code.as_deref()),
            ack_control_id: m.msa.as_ref().and_then(|a| a.control_id.as_deref()),
            latency_ms: cx.latency_ms,
            acked_message_type: cx.acked_message_type.as_deref(),
            segments: m.segment_ids.iter().map(|s| s.as_str()).collect(),
            segment_count: m.segment_count,
            phi_fields: &m.phi_fields,
            devices: m.devices.iter().map(DeviceRecord::from).collect(),
            errors: m.errors.iter().map(ErrRecord::from).collect(),
            bytes: cx.bytes,
            anomalies: cx.anomalies.iter().map(|a| a.as_str()).collect(),
            too_large: cx
                .anomalies
                .contains(&Anomaly::TooLarge)
                .then_some(LimitRecord {
                    value: cx.bytes,
                    limit: cx.limit,
                }),
        }
    }
}
