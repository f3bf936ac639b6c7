//! Detection rules as data: `signatures/rules/*.toml` (embedded at build time) plus an
//! operator's `DIR/rules/*.toml`. A rule names a protocol, predicates over the facts that
//! protocol's parser decoded ([`crate::observe::Facts`]) and optionally over the devices of the
//! flow; when they all hold, the rule fires. Adding a rule needs no code. See
//! `signatures/README.md` for the format.
//!
//! Validation reports every problem as `file:line: problem` ([`SignatureError`]): unknown keys,
//! a protocol or field name no parser produces, a predicate of the wrong type for its field,
//! an invalid regex, an unknown category, a severity outside 1..=3, duplicate ids.

use std::collections::BTreeSet;
use std::path::Path;

use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use crate::fingerprint::signatures::{Category, SignatureError, SignatureErrors};
use crate::observe::{FactValue, Facts};

/// The shipped rule files, embedded at build time: (file name, contents).
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "rules/legacy.toml",
        include_str!("../../signatures/rules/legacy.toml"),
    ),
    (
        "rules/crypto.toml",
        include_str!("../../signatures/rules/crypto.toml"),
    ),
    (
        "rules/medical.toml",
        include_str!("../../signatures/rules/medical.toml"),
    ),
    (
        "rules/anomalies.toml",
        include_str!("../../signatures/rules/anomalies.toml"),
    ),
];

/// Rules loaded at most (each is evaluated on every fact set of its protocol).
pub const MAX_RULES: usize = 4096;
/// Compiled size limit of one regex.
pub const MAX_REGEX_SIZE: usize = 256 * 1024;

/// Alert categories: the label set of `medtap_alerts_total{category}`.
pub const CATEGORIES: &[&str] = &[
    "legacy-protocol",
    "cleartext-credentials",
    "weak-crypto",
    "cleartext-phi",
    "exposure",
    "anomaly",
];

/// Fact field types, by protocol: what the parsers produce (see `src/protocols/`). A rule may
/// only name these, so a typo is a load error rather than a rule that never fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Bool,
    Int,
    Str,
    List,
}

/// (protocol, field, type) of every fact field, plus the flow fields every protocol has.
pub const FIELDS: &[(&str, &str, FieldType)] = &[
    ("tls", "versions_offered", FieldType::List),
    ("tls", "client_max_version", FieldType::Str),
    ("tls", "cipher_suites_offered", FieldType::List),
    ("tls", "version", FieldType::Str),
    ("tls", "cipher_suite", FieldType::Str),
    ("tls", "sslv2", FieldType::Bool),
    ("smb", "smb1", FieldType::Bool),
    ("smb", "smb1_offered", FieldType::Bool),
    ("smb", "dialects_offered", FieldType::List),
    ("smb", "version", FieldType::Int),
    ("smb", "dialect", FieldType::Str),
    ("smb", "signing_required", FieldType::Bool),
    ("netbios", "service", FieldType::Str),
    ("snmp", "version", FieldType::Str),
    ("snmp", "community_present", FieldType::Bool),
    ("snmp", "community_default", FieldType::Bool),
    ("snmp", "community", FieldType::Str),
    ("snmp", "pdu_type", FieldType::Str),
    ("snmp", "v3_auth", FieldType::Bool),
    ("snmp", "v3_priv", FieldType::Bool),
    ("snmp", "v2u_encrypted", FieldType::Bool),
    ("ftp", "user_sent", FieldType::Bool),
    ("ftp", "pass_sent", FieldType::Bool),
    ("ftp", "cleartext_credentials", FieldType::Bool),
    ("ftp", "anonymous", FieldType::Bool),
    ("ftp", "auth_tls", FieldType::Bool),
    ("ftp", "login", FieldType::Str),
    ("telnet", "session", FieldType::Bool),
    ("tftp", "request", FieldType::Str),
    ("tftp", "mode", FieldType::Str),
    ("rlogin", "preamble_complete", FieldType::Bool),
    ("rsh", "preamble_complete", FieldType::Bool),
    ("rexec", "preamble_complete", FieldType::Bool),
    ("rfb", "encrypted", FieldType::Bool),
    ("rfb", "no_auth", FieldType::Bool),
    ("rfb", "security_types", FieldType::List),
    ("rfb", "security_type", FieldType::Str),
    ("rfb", "vencrypt_subtype", FieldType::Str),
    ("rfb", "cleartext_credentials", FieldType::Bool),
    ("rdp", "standard_security", FieldType::Bool),
    ("rdp", "requested_protocols", FieldType::List),
    ("rdp", "selected_protocol", FieldType::Str),
    ("http", "authorization_scheme", FieldType::Str),
    ("http", "credentials_in_clear", FieldType::Bool),
    ("dicom", "result", FieldType::Str),
    ("dicom", "phi_present", FieldType::Bool),
    ("dicom", "c_find", FieldType::Int),
    ("dicom", "c_move", FieldType::Int),
    ("dicom", "c_get", FieldType::Int),
    ("dicom", "c_store", FieldType::Int),
    ("dicom", "commands_total", FieldType::Int),
    ("dicom", "called_ae", FieldType::Str),
    ("dicom", "calling_ae", FieldType::Str),
    ("dicom", "reject_result", FieldType::Int),
    ("dicom", "reject_reason", FieldType::Int),
    ("hl7", "from", FieldType::Str),
    ("hl7", "pid_present", FieldType::Bool),
    ("hl7", "phi_present", FieldType::Bool),
    ("hl7", "framing_error", FieldType::Bool),
    ("hl7", "sending_application", FieldType::Str),
    ("hl7", "sending_facility", FieldType::Str),
    ("hl7", "message_type", FieldType::Str),
    ("hl7", "ack_code", FieldType::Str),
    // Flow fields, available to every protocol.
    ("*", "server_port", FieldType::Int),
    ("*", "client_port", FieldType::Int),
    ("*", "transport", FieldType::Str),
];

/// The type of `field` for `protocol`, if a parser produces it.
pub fn field_type(protocol: &str, field: &str) -> Option<FieldType> {
    FIELDS
        .iter()
        .find(|(p, f, _)| (*p == protocol || *p == "*") && *f == field)
        .map(|(_, _, t)| *t)
}

/// Protocols that produce facts.
pub fn protocols() -> BTreeSet<&'static str> {
    FIELDS
        .iter()
        .map(|(p, _, _)| *p)
        .filter(|p| *p != "*")
        .collect()
}

/// One predicate over one field.
#[derive(Debug, Clone)]
pub enum Test {
    Equals(Value),
    In(Vec<Value>),
    Regex(Regex),
    Exists(bool),
    Lt(i64),
    Le(i64),
    Gt(i64),
    Ge(i64),
}

/// A literal in a rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Str(String),
}

#[derive(Debug, Clone)]
pub struct Predicate {
    pub field: String,
    pub test: Test,
    /// Negate the test (a missing field still fails unless the test is `exists`).
    pub not: bool,
}

/// Which device of the flow a device condition looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
    Any,
}

#[derive(Debug, Clone)]
pub struct DeviceCond {
    pub side: Side,
    pub medical: Option<bool>,
    pub categories: Vec<Category>,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: u32,
    pub name: String,
    pub category: &'static str,
    pub severity: u8,
    /// `medtap_legacy_flows_total{protocol}` label: the rule family (e.g. `telnet`, `tls`).
    pub family: Option<String>,
    pub protocol: String,
    pub when: Vec<Predicate>,
    pub device: Option<DeviceCond>,
    /// Less severe rules this one stands in for: while this rule's de-duplication window is
    /// open for a device and peer, theirs are not raised for that pair (an escalation from
    /// one of them to this rule is still reported).
    pub supersedes: Vec<u32>,
    pub file: String,
    pub line: usize,
}

/// What a device condition can be tested against (filled in by the central thread).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceInfo {
    pub category: Option<Category>,
    pub is_medical: bool,
}

fn flow_field(facts_flow: &crate::flow::FlowMeta, field: &str) -> Option<FactValue> {
    match field {
        "server_port" => Some(FactValue::Int(i64::from(facts_flow.server.1))),
        "client_port" => Some(FactValue::Int(i64::from(facts_flow.client.1))),
        "transport" => Some(FactValue::Str(facts_flow.proto_name().to_ascii_lowercase())),
        _ => None,
    }
}

impl Predicate {
    fn holds(&self, v: Option<&FactValue>) -> bool {
        let r = match (&self.test, v) {
            (Test::Exists(want), v) => return v.is_some() == *want,
            (_, None) => return false,
            (Test::Equals(want), Some(v)) => value_eq(v, want),
            (Test::In(set), Some(v)) => set.iter().any(|w| value_eq(v, w)),
            (Test::Regex(re), Some(FactValue::Str(s))) => re.is_match(s),
            (Test::Regex(re), Some(FactValue::List(l))) => l.iter().any(|s| re.is_match(s)),
            (Test::Lt(n), Some(FactValue::Int(i))) => i < n,
            (Test::Le(n), Some(FactValue::Int(i))) => i <= n,
            (Test::Gt(n), Some(FactValue::Int(i))) => i > n,
            (Test::Ge(n), Some(FactValue::Int(i))) => i >= n,
            _ => false,
        };
        r != self.not
    }
}

/// Equality of a fact and a literal; a list equals a literal when any element does.
fn value_eq(v: &FactValue, w: &Value) -> bool {
    match (v, w) {
        (FactValue::Bool(a), Value::Bool(b)) => a == b,
        (FactValue::Int(a), Value::Int(b)) => a == b,
        (FactValue::Str(a), Value::Str(b)) => a == b,
        (FactValue::List(l), Value::Str(b)) => l.iter().any(|a| a == b),
        _ => false,
    }
}

impl Rule {
    /// Whether the rule fires on `facts` of `flow` with the flow's devices.
    pub fn matches(
        &self,
        facts: &Facts,
        flow: &crate::flow::FlowMeta,
        client: Option<&DeviceInfo>,
        server: Option<&DeviceInfo>,
    ) -> bool {
        if facts.protocol != self.protocol {
            return false;
        }
        let view = super::DeviceView::new(client.copied(), server.copied());
        self.matches_of_protocol(facts, flow, &view)
    }

    /// [`Rule::matches`] for facts known to be of the rule's protocol (the detector tests facts
    /// against their protocol's rules only), the devices asked of `view` only once the facts
    /// hold.
    pub(crate) fn matches_of_protocol(
        &self,
        facts: &Facts,
        flow: &crate::flow::FlowMeta,
        view: &super::DeviceView,
    ) -> bool {
        for p in &self.when {
            let flowv;
            let v = match facts.get(&p.field) {
                Some(v) => Some(v),
                None => {
                    flowv = flow_field(flow, &p.field);
                    flowv.as_ref()
                }
            };
            if !p.holds(v) {
                return false;
            }
        }
        if let Some(d) = &self.device {
            let ok = |dev: Option<&DeviceInfo>| {
                let Some(dev) = dev else { return false };
                d.medical.is_none_or(|m| dev.is_medical == m)
                    && (d.categories.is_empty()
                        || dev.category.is_some_and(|c| d.categories.contains(&c)))
            };
            let hit = match d.side {
                Side::Client => ok(view.client().as_ref()),
                Side::Server => ok(view.server().as_ref()),
                Side::Any => ok(view.client().as_ref()) || ok(view.server().as_ref()),
            };
            if !hit {
                return false;
            }
        }
        true
    }

    /// The facts fields the rule tested, with their values (the alert's "what matched").
    pub fn evidence(&self, facts: &Facts) -> Vec<(String, FactValue)> {
        self.when
            .iter()
            .filter_map(|p| facts.get(&p.field).map(|v| (p.field.clone(), v.clone())))
            .collect()
    }
}

/// Anomaly thresholds (`[[anomaly]]` tables), each an alert of category `anomaly`.
#[derive(Debug, Clone)]
pub struct Anomaly {
    pub id: u32,
    pub name: String,
    pub kind: AnomalyKind,
    pub severity: u8,
    /// Severity when a medical device is involved (defaults to `severity`).
    pub severity_medical: u8,
    /// Window in seconds of packet time.
    pub window: u64,
    pub threshold: u64,
    /// For `volume`: how many times the baseline.
    pub factor: f64,
    pub file: String,
    pub line: usize,
}

/// The anomaly detectors medtap has (`kind` in `[[anomaly]]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AnomalyKind {
    NewPeer,
    ScanHosts,
    ScanPorts,
    Volume,
    InternetAddress,
    DicomRejectedAssociations,
    DicomQueryBurst,
    DicomStoreNewDestination,
    DicomPromiscuousScp,
    Hl7NakBurst,
    Hl7UnknownSender,
    Hl7FramingErrors,
}

impl AnomalyKind {
    pub const ALL: &'static [AnomalyKind] = &[
        AnomalyKind::NewPeer,
        AnomalyKind::ScanHosts,
        AnomalyKind::ScanPorts,
        AnomalyKind::Volume,
        AnomalyKind::InternetAddress,
        AnomalyKind::DicomRejectedAssociations,
        AnomalyKind::DicomQueryBurst,
        AnomalyKind::DicomStoreNewDestination,
        AnomalyKind::DicomPromiscuousScp,
        AnomalyKind::Hl7NakBurst,
        AnomalyKind::Hl7UnknownSender,
        AnomalyKind::Hl7FramingErrors,
    ];

    /// The `kind` spelling, also the `medtap_anomalous_flows_total{kind}` label.
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::NewPeer => "new_peer",
            AnomalyKind::ScanHosts => "scan_hosts",
            AnomalyKind::ScanPorts => "scan_ports",
            AnomalyKind::Volume => "volume",
            AnomalyKind::InternetAddress => "internet_address",
            AnomalyKind::DicomRejectedAssociations => "dicom_rejected_associations",
            AnomalyKind::DicomQueryBurst => "dicom_query_burst",
            AnomalyKind::DicomStoreNewDestination => "dicom_store_new_destination",
            AnomalyKind::DicomPromiscuousScp => "dicom_promiscuous_scp",
            AnomalyKind::Hl7NakBurst => "hl7_nak_burst",
            AnomalyKind::Hl7UnknownSender => "hl7_unknown_sender",
            AnomalyKind::Hl7FramingErrors => "hl7_framing_errors",
        }
    }

    fn from_name(s: &str) -> Option<AnomalyKind> {
        Self::ALL.iter().copied().find(|k| k.as_str() == s)
    }
}

/// Every rule and anomaly threshold.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub anomalies: Vec<Anomaly>,
    /// Dedup window in seconds (`[dedup] window`).
    pub dedup_window: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
    #[serde(default)]
    anomaly: Vec<Spanned<RawAnomaly>>,
    dedup: Option<Spanned<RawDedup>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDedup {
    window: toml::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: i64,
    name: String,
    category: String,
    severity: i64,
    family: Option<String>,
    protocol: String,
    #[serde(default)]
    when: Vec<Spanned<RawPredicate>>,
    device: Option<RawDevice>,
    #[serde(default)]
    supersedes: Vec<i64>,
    #[allow(dead_code)]
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPredicate {
    field: String,
    equals: Option<toml::Value>,
    #[serde(rename = "in")]
    in_: Option<Vec<toml::Value>>,
    regex: Option<String>,
    exists: Option<bool>,
    lt: Option<i64>,
    le: Option<i64>,
    gt: Option<i64>,
    ge: Option<i64>,
    #[serde(default)]
    not: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    side: Option<String>,
    medical: Option<bool>,
    #[serde(default)]
    category: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnomaly {
    id: i64,
    name: String,
    kind: String,
    severity: i64,
    severity_medical: Option<i64>,
    window: Option<toml::Value>,
    threshold: Option<i64>,
    factor: Option<f64>,
    #[allow(dead_code)]
    note: Option<String>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len()))
        .map_or(0, |t| t.bytes().filter(|&b| b == b'\n').count())
        + 1
}

/// Seconds from `90`, `"90s"`, `"15m"`, `"2h"`, `"7d"`.
pub fn parse_duration(v: &toml::Value) -> Result<u64, String> {
    match v {
        toml::Value::Integer(i) if *i >= 0 => Ok(*i as u64),
        toml::Value::String(s) => parse_duration_str(s),
        _ => Err("expected seconds or a duration such as \"90s\", \"15m\", \"2h\", \"7d\"".into()),
    }
}

/// Seconds from `90`, `90s`, `15m`, `2h`, `7d`.
pub fn parse_duration_str(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 90s, 15m, 2h, 7d)"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (s, m, h, d)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too long"))
}

fn literal(v: &toml::Value) -> Option<Value> {
    match v {
        toml::Value::Boolean(b) => Some(Value::Bool(*b)),
        toml::Value::Integer(i) => Some(Value::Int(*i)),
        toml::Value::String(s) => Some(Value::Str(s.clone())),
        _ => None,
    }
}

fn fits(t: FieldType, v: &Value) -> bool {
    matches!(
        (t, v),
        (FieldType::Bool, Value::Bool(_))
            | (FieldType::Int, Value::Int(_))
            | (FieldType::Str, Value::Str(_))
            | (FieldType::List, Value::Str(_))
    )
}

impl RuleSet {
    /// The shipped rules only.
    pub fn shipped() -> Result<RuleSet, SignatureErrors> {
        Self::from_sources(SHIPPED.iter().map(|(n, t)| (n.to_string(), t.to_string())))
    }

    /// The shipped rules plus an operator directory's `rules/*.toml` (if it has that
    /// sub-directory), by file name. An operator rule with a shipped id replaces it.
    pub fn load(operator_dir: Option<&Path>) -> Result<RuleSet, SignatureErrors> {
        let mut sources: Vec<(String, String)> = SHIPPED
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        if let Some(dir) = operator_dir {
            let sub = dir.join("rules");
            if sub.is_dir() {
                let err = |p: &Path, e: std::io::Error| {
                    SignatureErrors(vec![SignatureError {
                        file: p.display().to_string(),
                        line: 0,
                        problem: e.to_string(),
                    }])
                };
                let mut files: Vec<_> = std::fs::read_dir(&sub)
                    .map_err(|e| err(&sub, e))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
                    .collect();
                files.sort();
                for f in files {
                    let text = std::fs::read_to_string(&f).map_err(|e| err(&f, e))?;
                    sources.push((f.display().to_string(), text));
                }
            }
        }
        Self::from_sources(sources)
    }

    /// Builds a set from (file name, text) pairs in order; later files replace earlier rules
    /// with the same id; a repeated id within one file is an error.
    pub fn from_sources(
        sources: impl IntoIterator<Item = (String, String)>,
    ) -> Result<RuleSet, SignatureErrors> {
        let mut errors = Vec::new();
        let mut set = RuleSet {
            dedup_window: 3600,
            ..RuleSet::default()
        };
        for (name, text) in sources {
            set.parse_file(&name, &text, &mut errors);
        }
        set.check_supersedes(&mut errors);
        if set.rules.len() + set.anomalies.len() > MAX_RULES {
            errors.push(SignatureError {
                file: "(all)".into(),
                line: 0,
                problem: format!("more than {MAX_RULES} rules"),
            });
        }
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(SignatureErrors(errors))
        }
    }

    fn parse_file(&mut self, file: &str, text: &str, errors: &mut Vec<SignatureError>) {
        let mut err = |line: usize, problem: String| {
            errors.push(SignatureError {
                file: file.to_string(),
                line,
                problem,
            })
        };
        let raw: RawFile = match toml::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                let line = e.span().map_or(0, |s| line_of(text, s.start));
                err(line, e.message().to_string());
                return;
            }
        };
        let mut ids_here = BTreeSet::new();
        if let Some(d) = raw.dedup {
            let line = line_of(text, d.span().start);
            match parse_duration(&d.get_ref().window) {
                Ok(w) if (1..=7 * 86_400).contains(&w) => self.dedup_window = w,
                Ok(w) => err(line, format!("dedup window {w}s outside 1s..=7d")),
                Err(e) => err(line, format!("dedup window: {e}")),
            }
        }
        for r in raw.rule {
            let line = line_of(text, r.span().start);
            let r = r.into_inner();
            let mut bad = |p: String| err(line, format!("rule {}: {p}", r.id));
            let id = match u32::try_from(r.id) {
                Ok(i) if i > 0 => i,
                _ => {
                    bad("id must be a positive integer below 2^32".into());
                    continue;
                }
            };
            if !ids_here.insert(id) {
                bad("duplicate id in this file".into());
            }
            let category = CATEGORIES.iter().copied().find(|c| *c == r.category);
            if category.is_none() {
                bad(format!(
                    "unknown category {:?} (known: {})",
                    r.category,
                    CATEGORIES.join(", ")
                ));
            }
            if !(1..=3).contains(&r.severity) {
                bad(format!(
                    "severity {} outside 1 (high) ..= 3 (low)",
                    r.severity
                ));
            }
            if !protocols().contains(r.protocol.as_str()) {
                bad(format!(
                    "unknown protocol {:?} (known: {})",
                    r.protocol,
                    protocols().into_iter().collect::<Vec<_>>().join(", ")
                ));
            }
            if let Some(f) = &r.family {
                if f.is_empty()
                    || f.len() > 32
                    || !f
                        .bytes()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
                {
                    bad(format!("family {f:?} must be 1-32 of [a-z0-9_]"));
                }
            }
            let mut when = Vec::new();
            let mut ok = true;
            for p in r.when {
                let pline = line_of(text, p.span().start);
                let p = p.into_inner();
                match compile_predicate(&r.protocol, p) {
                    Ok(c) => when.push(c),
                    Err(m) => {
                        ok = false;
                        err(pline, format!("rule {}: {m}", r.id));
                    }
                }
            }
            let device = match r.device.map(compile_device).transpose() {
                Ok(d) => d,
                Err(m) => {
                    ok = false;
                    err(line, format!("rule {}: {m}", r.id));
                    None
                }
            };
            if !(1..=3).contains(&r.severity) || !protocols().contains(r.protocol.as_str()) {
                continue;
            }
            let mut supersedes = Vec::new();
            for &s in &r.supersedes {
                match u32::try_from(s) {
                    Ok(s) if s > 0 && s != id => supersedes.push(s),
                    _ => {
                        ok = false;
                        err(
                            line,
                            format!(
                                "rule {}: supersedes {s}: must be another rule's positive id",
                                r.id
                            ),
                        );
                    }
                }
            }
            let (Some(category), true) = (category, ok) else {
                continue;
            };
            let rule = Rule {
                id,
                supersedes,
                name: r.name,
                category,
                severity: r.severity as u8,
                family: r.family,
                protocol: r.protocol,
                when,
                device,
                file: file.to_string(),
                line,
            };
            self.rules.retain(|x| x.id != id);
            self.anomalies.retain(|x| x.id != id);
            self.rules.push(rule);
        }
        for a in raw.anomaly {
            let line = line_of(text, a.span().start);
            let a = a.into_inner();
            let mut bad = |p: String| err(line, format!("anomaly {}: {p}", a.id));
            let Ok(id) = u32::try_from(a.id) else {
                bad("id must be a positive integer below 2^32".into());
                continue;
            };
            if !ids_here.insert(id) {
                bad("duplicate id in this file".into());
            }
            let Some(kind) = AnomalyKind::from_name(&a.kind) else {
                bad(format!(
                    "unknown kind {:?} (known: {})",
                    a.kind,
                    AnomalyKind::ALL
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                continue;
            };
            let sev_ok = |s: i64| (1..=3).contains(&s);
            if !sev_ok(a.severity) || !a.severity_medical.is_none_or(sev_ok) {
                bad("severity outside 1 (high) ..= 3 (low)".into());
                continue;
            }
            let window = match a.window.as_ref().map(parse_duration).transpose() {
                Ok(w) => w.unwrap_or(60),
                Err(e) => {
                    bad(format!("window: {e}"));
                    continue;
                }
            };
            if !(1..=30 * 86_400).contains(&window) {
                bad(format!("window {window}s outside 1s..=30d"));
                continue;
            }
            let threshold = a.threshold.unwrap_or(1);
            if !(1..=1_000_000).contains(&threshold) {
                bad(format!("threshold {threshold} outside 1..=1000000"));
                continue;
            }
            let factor = a.factor.unwrap_or(10.0);
            if !(1.0..=1e6).contains(&factor) {
                bad(format!("factor {factor} outside 1..=1000000"));
                continue;
            }
            self.rules.retain(|x| x.id != id);
            self.anomalies.retain(|x| x.id != id);
            self.anomalies.push(Anomaly {
                id,
                name: a.name,
                kind,
                severity: a.severity as u8,
                severity_medical: a.severity_medical.unwrap_or(a.severity) as u8,
                window,
                threshold: threshold as u64,
                factor,
                file: file.to_string(),
                line,
            });
        }
    }

    /// Every `supersedes` names a rule of the set that is less severe than the one superseding
    /// it (a superseded rule is the quieter variant of the same finding).
    fn check_supersedes(&self, errors: &mut Vec<SignatureError>) {
        for r in &self.rules {
            for s in &r.supersedes {
                let problem = match self.rules.iter().find(|x| x.id == *s) {
                    None => format!("rule {}: supersedes {s}, which is not a rule", r.id),
                    Some(x) if x.severity <= r.severity => format!(
                        "rule {}: supersedes {s}, which is not less severe ({} vs {})",
                        r.id, x.severity, r.severity
                    ),
                    Some(_) => continue,
                };
                errors.push(SignatureError {
                    file: r.file.clone(),
                    line: r.line,
                    problem,
                });
            }
        }
    }

    /// For each rule id, the rules that supersede it.
    pub fn superseded_by(&self) -> std::collections::HashMap<u32, Vec<u32>> {
        let mut m: std::collections::HashMap<u32, Vec<u32>> = std::collections::HashMap::new();
        for r in &self.rules {
            for s in &r.supersedes {
                m.entry(*s).or_default().push(r.id);
            }
        }
        m
    }

    /// The threshold entry of an anomaly kind (the last one loaded), if any.
    pub fn anomaly(&self, kind: AnomalyKind) -> Option<&Anomaly> {
        self.anomalies.iter().rev().find(|a| a.kind == kind)
    }

    /// (signature id, severity, category) of every rule and anomaly: the label sets of
    /// `medtap_alerts_total`.
    pub fn label_sets(&self) -> Vec<(u32, u8, &'static str)> {
        let mut v: Vec<_> = self
            .rules
            .iter()
            .map(|r| (r.id, r.severity, r.category))
            .collect();
        for a in &self.anomalies {
            v.push((a.id, a.severity, "anomaly"));
            if a.severity_medical != a.severity {
                v.push((a.id, a.severity_medical, "anomaly"));
            }
        }
        v
    }
}

fn compile_predicate(protocol: &str, p: RawPredicate) -> Result<Predicate, String> {
    let Some(ty) = field_type(protocol, &p.field) else {
        return Err(format!(
            "protocol {protocol:?} has no field {:?} (known: {})",
            p.field,
            FIELDS
                .iter()
                .filter(|(pr, _, _)| *pr == protocol || *pr == "*")
                .map(|(_, f, _)| *f)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    let mut tests = Vec::new();
    if let Some(v) = &p.equals {
        let v = literal(v).ok_or("equals takes a boolean, integer or string")?;
        if !fits(ty, &v) {
            return Err(format!(
                "field {:?} is {ty:?}; equals {v:?} cannot match",
                p.field
            ));
        }
        tests.push(Test::Equals(v));
    }
    if let Some(vs) = &p.in_ {
        let mut set = Vec::new();
        for v in vs {
            let v = literal(v).ok_or("in takes booleans, integers or strings")?;
            if !fits(ty, &v) {
                return Err(format!(
                    "field {:?} is {ty:?}; in {v:?} cannot match",
                    p.field
                ));
            }
            set.push(v);
        }
        if set.is_empty() {
            return Err("in needs at least one value".into());
        }
        tests.push(Test::In(set));
    }
    if let Some(r) = &p.regex {
        if !matches!(ty, FieldType::Str | FieldType::List) {
            return Err(format!("regex on field {:?}, which is {ty:?}", p.field));
        }
        let re = regex::RegexBuilder::new(r)
            .size_limit(MAX_REGEX_SIZE)
            .build()
            .map_err(|e| format!("invalid regex {r:?}: {e}"))?;
        tests.push(Test::Regex(re));
    }
    if let Some(e) = p.exists {
        tests.push(Test::Exists(e));
    }
    for (v, mk) in [
        (p.lt, Test::Lt as fn(i64) -> Test),
        (p.le, Test::Le),
        (p.gt, Test::Gt),
        (p.ge, Test::Ge),
    ] {
        if let Some(n) = v {
            if ty != FieldType::Int {
                return Err(format!(
                    "numeric comparison on field {:?}, which is {ty:?}",
                    p.field
                ));
            }
            tests.push(mk(n));
        }
    }
    if tests.len() != 1 {
        return Err(format!(
            "field {:?}: exactly one of equals, in, regex, exists, lt, le, gt, ge (found {})",
            p.field,
            tests.len()
        ));
    }
    Ok(Predicate {
        field: p.field,
        test: tests.remove(0),
        not: p.not,
    })
}

fn compile_device(d: RawDevice) -> Result<DeviceCond, String> {
    let side = match d.side.as_deref() {
        None | Some("any") => Side::Any,
        Some("client") => Side::Client,
        Some("server") => Side::Server,
        Some(s) => return Err(format!("device side {s:?} (client, server, any)")),
    };
    let mut categories = Vec::new();
    for c in &d.category {
        categories
            .push(Category::from_name(c).ok_or_else(|| format!("unknown device category {c:?}"))?);
    }
    if d.medical.is_none() && categories.is_empty() {
        return Err("device needs medical or category".into());
    }
    Ok(DeviceCond {
        side,
        medical: d.medical,
        categories,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<RuleSet, SignatureErrors> {
        RuleSet::from_sources([("t.toml".to_string(), text.to_string())])
    }

    #[test]
    fn shipped_rules_load() {
        let s = RuleSet::shipped().unwrap_or_else(|e| panic!("{e}"));
        assert!(s.rules.len() >= 20);
        for k in AnomalyKind::ALL {
            assert!(s.anomaly(*k).is_some(), "no threshold for {}", k.as_str());
        }
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = load("[[rule]]\nid = 1\nname = \"x\"\ncategory = \"legacy-protocol\"\nseverity = 2\nprotocol = \"smb\"\nwhen = [\n  { field = \"nope\", equals = true },\n]\n").unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert_eq!(e.0[0].line, 8, "{e}");
        assert!(e.0[0].problem.contains("no field \"nope\""), "{e}");
        let e = load("[[rule]]\nid = 1\nname = \"x\"\ncategory = \"bogus\"\nseverity = 7\nprotocol = \"smb\"\n").unwrap_err();
        assert_eq!(e.0.len(), 2, "{e}");
        assert!(e.to_string().starts_with("t.toml:1: "), "{e}");
        let e = load("[[rule]]\nid = 1\nname = \"x\"\ncategory = \"anomaly\"\nseverity = 1\nprotocol = \"tls\"\nwhen = [{ field = \"version\", regex = \"(\" }]\n").unwrap_err();
        assert!(e.0[0].problem.contains("invalid regex"), "{e}");
        let e = load("[[rule]]\nid = 1\nname = \"x\"\ncategory = \"anomaly\"\nseverity = 1\nprotocol = \"tls\"\nbogus = 3\n").unwrap_err();
        assert_eq!(e.0[0].line, 7, "{e}");
        let e = load("[[anomaly]]\nid = 9\nname = \"x\"\nkind = \"scan_hosts\"\nseverity = 2\nwindow = \"5x\"\n").unwrap_err();
        assert!(e.0[0].problem.contains("unknown unit"), "{e}");
    }

    #[test]
    fn predicates() {
        let s = load(
            r#"
[[rule]]
id = 5
name = "n"
category = "weak-crypto"
severity = 2
protocol = "tls"
when = [
  { field = "versions_offered", regex = "^SSL" },
  { field = "cipher_suite", equals = "TLS_NULL_WITH_NULL_NULL", not = true },
  { field = "server_port", in = [443, 8443] },
]
"#,
        )
        .unwrap();
        let r = &s.rules[0];
        let flow = crate::flow::FlowMeta {
            flow_id: 1,
            proto: 6,
            client: ("10.0.0.1".parse().unwrap(), 1000),
            server: ("10.0.0.2".parse().unwrap(), 443),
            vlan: [0, 0],
            client_mac: [0; 6],
            server_mac: [0; 6],
            to_group: false,
            app_proto: None,
        };
        let f = Facts::new("tls")
            .with(
                "versions_offered",
                FactValue::List(vec!["TLS 1.0".into(), "SSLv3".into()]),
            )
            .with(
                "cipher_suite",
                FactValue::Str("TLS_RSA_WITH_RC4_128_SHA".into()),
            );
        assert!(r.matches(&f, &flow, None, None));
        let f2 =
            Facts::new("tls").with("versions_offered", FactValue::List(vec!["TLS 1.2".into()]));
        assert!(!r.matches(&f2, &flow, None, None));
        let mut other = flow.clone();
        other.server.1 = 8080;
        assert!(!r.matches(&f, &other, None, None));
        assert_eq!(r.evidence(&f).len(), 2);
    }
}
