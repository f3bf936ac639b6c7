//! The `hl7` event: one per message, `src` being its sender. Record -> JSON only; the values
//! come from [`medtap_parsers::hl7::Message`], which never holds a PHI value (names of
//! PHI-bearing fields only, ERR codes only, device identifiers).

use medtap_parsers::hl7::{Device, ErrInfo, Message, PhiFields, SegmentId};
use medtap_parsers::mllp::Framing;
use serde::{Serialize, Serializer};

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

impl<'a> From<&'a Device<'_>> for DeviceRecord<'a> {
    fn from(d: &'a Device<'_>) -> Self {
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

impl<'a> From<&'a ErrInfo<'_>> for ErrRecord<'a> {
    fn from(e: &'a ErrInfo<'_>) -> Self {
        ErrRecord {
            location: e.location.as_deref(),
            code: e.code.as_deref(),
            code_system: e.code_system.as_deref(),
            severity: e.severity.as_deref(),
        }
    }
}

/// What the state machine knows about a message besides its content.
pub struct Context<'a> {
    pub framing: Framing,
    /// Bytes of the message on the wire (MLLP blocks excluded), skipped ones included.
    pub bytes: u64,
    pub anomalies: Vec<Anomaly>,
    /// For an acknowledgement paired with its message: milliseconds from the message to it.
    pub latency_ms: Option<f64>,
    /// MSH-9 as `code^event` ([`medtap_parsers::hl7::Msh::message_type`]).
    pub message_type: Option<&'a str>,
    /// For an acknowledgement paired with its message: that message's type.
    pub acked_message_type: Option<&'a str>,
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
    #[serde(serialize_with = "ids")]
    pub segments: &'a [SegmentId],
    pub segment_count: usize,
    /// Names of the PHI-bearing fields present, never values.
    #[serde(serialize_with = "phi")]
    pub phi_fields: PhiFields,
    #[serde(skip_serializing_if = "none", serialize_with = "devices")]
    pub devices: &'a [Device<'a>],
    /// ERR segments, codes only.
    #[serde(skip_serializing_if = "none", serialize_with = "errors")]
    pub errors: &'a [ErrInfo<'a>],
    pub bytes: u64,
    #[serde(skip_serializing_if = "none", serialize_with = "anomalies")]
    pub anomalies: &'a [Anomaly],
    /// The message went over [`super::MAX_MESSAGE_BYTES`]: its size and the limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub too_large: Option<LimitRecord>,
    /// [`medtap_parsers::hl7::Msh::json_plain`]: the header values that need no escaping; bit
    /// 0 for `message_type`, which comes from the context (set when it is MSH-9's own text).
    #[serde(skip)]
    pub json_plain: u32,
}

fn none<T>(s: &&[T]) -> bool {
    s.is_empty()
}

fn ids<S: Serializer>(v: &&[SegmentId], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|i| i.as_str()))
}

fn phi<S: Serializer>(v: &PhiFields, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter())
}

fn devices<S: Serializer>(v: &&[Device<'_>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(DeviceRecord::from))
}

fn errors<S: Serializer>(v: &&[ErrInfo<'_>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(ErrRecord::from))
}

fn anomalies<S: Serializer>(v: &&[Anomaly], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|a| a.as_str()))
}

impl<'a> Hl7Event<'a> {
    /// The event of `m`, borrowing everything (nothing is copied or allocated).
    pub fn new(m: &'a Message<'a>, cx: &'a Context<'a>) -> Hl7Event<'a> {
        type Field<'a> = Option<std::borrow::Cow<'a, str>>;
        let h = m.msh.as_ref();
        let hs = |f: fn(&'a medtap_parsers::hl7::Msh<'a>) -> &'a Field<'a>| {
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
            message_type: cx.message_type,
            message_structure: hs(|h| &h.message_structure),
            control_id: hs(|h| &h.control_id),
            processing_id: hs(|h| &h.processing_id),
            version: hs(|h| &h.version),
            charset: hs(|h| &h.charset),
            ack_code: m.msa.as_ref().and_then(|a| a.ack_code.as_deref()),
            ack_control_id: m.msa.as_ref().and_then(|a| a.control_id.as_deref()),
            latency_ms: cx.latency_ms,
            acked_message_type: cx.acked_message_type,
            segments: &m.segment_ids,
            segment_count: m.segment_count,
            phi_fields: m.phi_fields,
            devices: &m.devices,
            errors: &m.errors,
            bytes: cx.bytes,
            anomalies: &cx.anomalies,
            too_large: cx
                .anomalies
                .contains(&Anomaly::TooLarge)
                .then_some(LimitRecord {
                    value: cx.bytes,
                    limit: cx.limit,
                }),
            json_plain: h.map_or(0, |h| {
                let own = match (cx.message_type, h.message_type.as_deref()) {
                    (Some(a), Some(b)) => std::ptr::eq(a, b),
                    _ => false,
                };
                h.json_plain | u32::from(own && h.json_plain >> 9 & 1 == 1)
            }),
        }
    }

    /// The JSON object `serde_json` makes of this event (a test holds them equal), written
    /// directly: one `hl7` event per message. `framing` is always first, so every other key is
    /// written with its comma and quotes as one literal.
    pub fn write_json(&self, b: &mut Vec<u8>) {
        use crate::output::{push_json_str, push_u64};
        let opt = |b: &mut Vec<u8>, key: &[u8], v: Option<&str>| {
            if let Some(v) = v {
                b.extend_from_slice(key);
                push_json_str(b, v);
            }
        };
        // A header value, MSH-`n`: written as it is, with its quotes, when the reader saw that
        // it needs no escaping (bit `n` of `plain`, [`Hl7Event::json_plain`]). Inlined: each
        // key is then copied as the constant it is.
        #[inline(always)]
        fn msh(b: &mut Vec<u8>, plain: u32, key: &[u8], v: Option<&str>, n: u32) {
            if let Some(v) = v {
                if plain >> n & 1 == 1 {
                    b.reserve(key.len() + v.len() + 2);
                    b.extend_from_slice(key);
                    b.push(b'"');
                    b.extend_from_slice(v.as_bytes());
                    b.push(b'"');
                } else {
                    b.extend_from_slice(key);
                    push_json_str(b, v);
                }
            }
        }
        let plain = self.json_plain;
        // A list of names that need no escaping (PHI and anomaly names come from fixed
        // tables): written as they are.
        fn list<'s>(b: &mut Vec<u8>, items: impl Iterator<Item = &'s str>) {
            b.push(b'[');
            for (i, s) in items.enumerate() {
                b.extend_from_slice(if i > 0 { b",\"" } else { b"\"" });
                b.extend_from_slice(s.as_bytes());
                b.push(b'"');
            }
            b.push(b']');
        }
        // `framing` and a device's `source` are names from fixed tables (letters, digits and
        // `-`): written as they are, with their quotes.
        b.extend_from_slice(b"{\"framing\":\"");
        b.extend_from_slice(self.framing.as_bytes());
        b.push(b'"');
        msh(
            b,
            plain,
            b",\"sending_application\":",
            self.sending_application,
            3,
        );
        msh(
            b,
            plain,
            b",\"sending_facility\":",
            self.sending_facility,
            4,
        );
        msh(
            b,
            plain,
            b",\"receiving_application\":",
            self.receiving_application,
            5,
        );
        msh(
            b,
            plain,
            b",\"receiving_facility\":",
            self.receiving_facility,
            6,
        );
        msh(b, plain, b",\"message_time\":", self.message_time, 7);
        if self.security_present {
            b.extend_from_slice(b",\"security_present\":true");
        }
        msh(b, plain, b",\"message_type\":", self.message_type, 0);
        msh(
            b,
            plain,
            b",\"message_structure\":",
            self.message_structure,
            9,
        );
        msh(b, plain, b",\"control_id\":", self.control_id, 10);
        msh(b, plain, b",\"processing_id\":", self.processing_id, 11);
        msh(b, plain, b",\"version\":", self.version, 12);
        msh(b, plain, b",\"charset\":", self.charset, 18);
        opt(b, b",\"ack_code\":", self.ack_code);
        opt(b, b",\"ack_control_id\":", self.ack_control_id);
        if let Some(l) = self.latency_ms {
            b.extend_from_slice(b",\"latency_ms\":");
            if serde_json::to_writer(&mut *b, &l).is_err() {
                b.extend_from_slice(b"null");
            }
        }
        opt(b, b",\"acked_message_type\":", self.acked_message_type);
        // Segment ids are three letters or digits: each written with its quotes (and comma)
        // at once.
        b.extend_from_slice(b",\"segments\":[");
        b.reserve(self.segments.len() * 6 + 1);
        for (i, id) in self.segments.iter().enumerate() {
            let [x, y, z] = id.0;
            if i == 0 {
                b.extend_from_slice(&[b'"', x, y, z, b'"']);
            } else {
                b.extend_from_slice(&[b',', b'"', x, y, z, b'"']);
            }
        }
        b.push(b']');
        b.extend_from_slice(b",\"segment_count\":");
        push_u64(b, self.segment_count as u64);
        b.extend_from_slice(b",\"phi_fields\":");
        list(b, self.phi_fields.iter());
        if !self.devices.is_empty() {
            b.extend_from_slice(b",\"devices\":[");
            for (i, d) in self.devices.iter().map(DeviceRecord::from).enumerate() {
                if i > 0 {
                    b.push(b',');
                }
                b.extend_from_slice(b"{\"source\":\"");
                b.extend_from_slice(d.source.as_bytes());
                b.push(b'"');
                opt(b, b",\"id\":", d.id);
                opt(b, b",\"namespace\":", d.namespace);
                opt(b, b",\"universal_id\":", d.universal_id);
                opt(b, b",\"universal_id_type\":", d.universal_id_type);
                b.push(b'}');
            }
            b.push(b']');
        }
        if !self.errors.is_empty() {
            b.extend_from_slice(b",\"errors\":[");
            for (i, e) in self.errors.iter().map(ErrRecord::from).enumerate() {
                if i > 0 {
                    b.push(b',');
                }
                let mut n = 0;
                for (k, v) in [
                    ("location", e.location),
                    ("code", e.code),
                    ("code_system", e.code_system),
                    ("severity", e.severity),
                ] {
                    if let Some(v) = v {
                        b.extend_from_slice(if n == 0 { b"{\"" } else { b",\"" });
                        n += 1;
                        b.extend_from_slice(k.as_bytes());
                        b.extend_from_slice(b"\":");
                        push_json_str(b, v);
                    }
                }
                b.extend_from_slice(if n == 0 { b"{}" } else { b"}" });
            }
            b.push(b']');
        }
        b.extend_from_slice(b",\"bytes\":");
        push_u64(b, self.bytes);
        if !self.anomalies.is_empty() {
            b.extend_from_slice(b",\"anomalies\":");
            list(b, self.anomalies.iter().map(|a| a.as_str()));
        }
        if let Some(t) = &self.too_large {
            b.extend_from_slice(b",\"too_large\":{\"value\":");
            push_u64(b, t.value);
            b.extend_from_slice(b",\"limit\":");
            push_u64(b, t.limit);
            b.push(b'}');
        }
        b.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use medtap_parsers::hl7::parse_message;

    #[test]
    fn event_written_by_hand_equals_serde_json() {
        let messages: [&[u8]; 7] = [
            b"MSH|^~\\&|EHR|HOSP|ENG|HOSP|20240315101500|SEC|ADT^A01^ADT_A01|C1|P|2.5.1||||||8859/1\rEVN|A01\rPID|1||X^^^H^MR||DOE^J\rNK1|1|K\rPV1|1|I\r",
            b"MSH|^~\\&|ENG|HOSP|EHR|HOSP|20261128||ACK^A04^ACK|A3|P|2.5.1\rMSA|AE|C3|text\rERR||PID^1^3^1|101^Required^HL70357|E\rERR|||\r",
            b"MSH|^~\\&|MON\\T\\1|\"q\" \\\\ b|||||ORU^R01|9|P|2.6\rOBX|1|NM|x||1||||||F|||||||PUMP^BAXTER^0012AB^EUI-64\rOBX|2|NM|x||1||||||F|||||||OTHER^V^^\rPRT|1||||||||DEV1^NS~DEV2||||||UDI1\r",
            b"MSH|^~\\&|caf\xe9|\x01\x1f\x7f|||||QRY^A19|Q|P|2.3\rQRD|1|R|I|Q||||PAT\r",
            b"not hl7 at all\nMSH|^~\\&|A|B|||||ADT|1|P|2.5\n",
            b"MSH|^~\\&\r",
            b"PID|1\r",
        ];
        let mut n = 0;
        for msg in messages {
            for complete in [true, false] {
                let m = parse_message(msg, complete);
                for (framing, anomalies, latency, mt, acked) in [
                    (Framing::Mllp, vec![], None, None, None),
                    (
                        Framing::Bare,
                        vec![Anomaly::TooLarge, Anomaly::Gap, Anomaly::NonUtf8],
                        Some(0.0),
                        Some("ADT^A01"),
                        Some("ORU^R01"),
                    ),
                    (
                        Framing::Mllp,
                        vec![Anomaly::UnterminatedFrame],
                        Some(1.5),
                        None,
                        Some("x\"y"),
                    ),
                    (Framing::Mllp, vec![], Some(123_456.789), Some("^A1"), None),
                    (Framing::Mllp, vec![], Some(1e-7), None, None),
                    (Framing::Mllp, vec![], Some(f64::NAN), None, None),
                ] {
                    let cx = Context {
                        framing,
                        bytes: msg.len() as u64,
                        anomalies,
                        latency_ms: latency,
                        message_type: mt,
                        acked_message_type: acked,
                        limit: 65_536,
                    };
                    let ev = Hl7Event::new(&m, &cx);
                    let mut got = Vec::new();
                    ev.write_json(&mut got);
                    let want = serde_json::to_vec(&ev).unwrap();
                    assert_eq!(
                        String::from_utf8_lossy(&got),
                        String::from_utf8_lossy(&want)
                    );
                    n += 1;
                }
            }
        }
        assert_eq!(n, 7 * 2 * 6);
    }
}
