//! Device fingerprint signatures: loading, validation and matching of the TOML files in
//! `signatures/fingerprint/` (format: `signatures/README.md`).
//!
//! The shipped files are embedded at build time ([`SHIPPED`]); an operator may add a directory
//! of their own ([`Signatures::load`]), whose rules are appended (a rule with the `id` of a
//! shipped rule replaces it), whose weights override the shipped ones and whose `[[eol]]`
//! entries are added. Every problem is reported as `file:line: problem` ([`SignatureError`]),
//! all of them at once, using the spans the `toml` crate keeps.
//!
//! Nothing here touches packets; matching ([`Rule::apply`]) is pure and cheap: evidence values
//! are at most 256 bytes, and regular expressions are compiled once, with a size limit.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::ops::Range;
use std::path::Path;

use regex_automata::meta::{self, Regex};
use regex_automata::util::syntax;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::evidence::EvidenceKind;

/// The shipped signature files, embedded at build time: (file name, contents).
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "resolution.toml",
        include_str!("../../signatures/fingerprint/resolution.toml"),
    ),
    (
        "oui.toml",
        include_str!("../../signatures/fingerprint/oui.toml"),
    ),
    (
        "dicom.toml",
        include_str!("../../signatures/fingerprint/dicom.toml"),
    ),
    (
        "hl7.toml",
        include_str!("../../signatures/fingerprint/hl7.toml"),
    ),
    (
        "os.toml",
        include_str!("../../signatures/fingerprint/os.toml"),
    ),
    (
        "software.toml",
        include_str!("../../signatures/fingerprint/software.toml"),
    ),
    (
        "netinfra.toml",
        include_str!("../../signatures/fingerprint/netinfra.toml"),
    ),
    (
        "eol.toml",
        include_str!("../../signatures/fingerprint/eol.toml"),
    ),
];

/// Compiled size limit of one rule's regular expression (bytes of program).
pub const MAX_REGEX_SIZE: usize = 256 * 1024;
/// Rules loaded in all (shipped + operator).
pub const MAX_RULES: usize = 100_000;
/// Largest signature file read from an operator directory.
pub const MAX_FILE_LEN: u64 = 8 * 1024 * 1024;

/// Device categories. The stable names are what rules write in `category = ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Ct,
    Mr,
    Ultrasound,
    /// CR, DX, DR, MG, RF, XA, ...
    Xray,
    /// NM, PT.
    NuclearMedicine,
    Radiotherapy,
    /// PACS / archive / DICOM router.
    Pacs,
    /// Workstation / viewer.
    Workstation,
    InfusionPump,
    PatientMonitor,
    Hl7InterfaceEngine,
    LabAnalyzer,
    /// A medical device whose kind is not known more precisely.
    MedicalDevice,
    Printer,
    NetworkGear,
    ItClient,
    ItServer,
    Unknown,
}

impl Category {
    pub const ALL: &'static [Category] = &[
        Category::Ct,
        Category::Mr,
        Category::Ultrasound,
        Category::Xray,
        Category::NuclearMedicine,
        Category::Radiotherapy,
        Category::Pacs,
        Category::Workstation,
        Category::InfusionPump,
        Category::PatientMonitor,
        Category::Hl7InterfaceEngine,
        Category::LabAnalyzer,
        Category::MedicalDevice,
        Category::Printer,
        Category::NetworkGear,
        Category::ItClient,
        Category::ItServer,
        Category::Unknown,
    ];

    /// Stable snake_case name (also the `medtap_devices{category}` label value).
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Ct => "ct",
            Category::Mr => "mr",
            Category::Ultrasound => "ultrasound",
            Category::Xray => "xray",
            Category::NuclearMedicine => "nuclear_medicine",
            Category::Radiotherapy => "radiotherapy",
            Category::Pacs => "pacs",
            Category::Workstation => "workstation",
            Category::InfusionPump => "infusion_pump",
            Category::PatientMonitor => "patient_monitor",
            Category::Hl7InterfaceEngine => "hl7_interface_engine",
            Category::LabAnalyzer => "lab_analyzer",
            Category::MedicalDevice => "medical_device",
            Category::Printer => "printer",
            Category::NetworkGear => "network_gear",
            Category::ItClient => "it_client",
            Category::ItServer => "it_server",
            Category::Unknown => "unknown",
        }
    }

    pub fn from_name(name: &str) -> Option<Category> {
        Self::ALL.iter().copied().find(|c| c.as_str() == name)
    }

    /// Whether the category is a clinical device (for dashboards and severity).
    pub fn is_medical(self) -> bool {
        matches!(
            self,
            Category::Ct
                | Category::Mr
                | Category::Ultrasound
                | Category::Xray
                | Category::NuclearMedicine
                | Category::Radiotherapy
                | Category::InfusionPump
                | Category::PatientMonitor
                | Category::LabAnalyzer
                | Category::MedicalDevice
        )
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem in a signature file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureError {
    pub file: String,
    /// 1-based; 0 when the problem is not tied to a line (unreadable file).
    pub line: usize,
    pub problem: String,
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.problem)
    }
}

/// Every problem found while loading, one per line when displayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureErrors(pub Vec<SignatureError>);

impl fmt::Display for SignatureErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SignatureErrors {}

/// How a rule tests an evidence value.
#[derive(Debug, Clone)]
pub enum Matcher {
    Equals(String),
    Prefix(String),
    Contains(String),
    Regex(Regex),
}

/// What a rule concludes; `$0` is the whole value (or match), `$1`..`$9` regex groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conclusions {
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub os: Option<String>,
    pub os_version: Option<String>,
    pub software: Option<String>,
    pub category: Option<Category>,
}

/// A compiled signature rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Shared with every `decided_by` reference to the rule (devices hold many of those).
    pub id: std::sync::Arc<str>,
    pub kind: EvidenceKind,
    pub matcher: Matcher,
    pub case_sensitive: bool,
    pub conclusions: Conclusions,
    /// Overrides the evidence kind's weight for this rule.
    pub weight: Option<u8>,
    /// Used only when no other rule matched the same evidence.
    pub fallback: bool,
    /// Matches and concludes nothing (suppresses fallbacks), e.g. OUI "Private".
    pub ignore: bool,
    pub file: String,
    pub line: usize,
}

/// What a matching rule concluded, templates filled in (empty results dropped).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub os: Option<String>,
    pub os_version: Option<String>,
    pub software: Option<String>,
    pub category: Option<Category>,
}

impl Rule {
    /// Tests `value`; on a match returns the conclusions with `$n` replaced.
    pub fn apply(&self, value: &str) -> Option<Applied> {
        // The plain matchers compare with the value lowered when the rule is case-insensitive
        // (their text was lowered at load); a regex folds case itself.
        let folded = || -> std::borrow::Cow<'_, str> {
            if self.case_sensitive {
                value.into()
            } else {
                value.to_lowercase().into()
            }
        };
        let groups: Vec<String> = match &self.matcher {
            Matcher::Equals(s) => (*folded() == **s).then(|| vec![value.to_string()])?,
            Matcher::Prefix(s) => folded()
                .starts_with(s.as_str())
                .then(|| vec![value.to_string()])?,
            Matcher::Contains(s) => folded()
                .contains(s.as_str())
                .then(|| vec![value.to_string()])?,
            Matcher::Regex(re) => {
                let mut caps = re.create_captures();
                re.captures(value, &mut caps);
                if !caps.is_match() {
                    return None;
                }
                (0..caps.group_len().min(10))
                    .map(|i| {
                        caps.get_group(i)
                            .map_or("", |m| &value[m.range()])
                            .to_string()
                    })
                    .collect()
            }
        };
        let fill = |t: &Option<String>| {
            t.as_ref()
                .map(|t| expand(t, &groups))
                .filter(|s| !s.is_empty())
        };
        let c = &self.conclusions;
        Some(Applied {
            vendor: fill(&c.vendor),
            model: fill(&c.model),
            os: fill(&c.os),
            os_version: fill(&c.os_version),
            software: fill(&c.software),
            category: c.category,
        })
    }
}

/// `$0`..`$9` → groups; `$$` → `$`. Result trimmed, inner whitespace collapsed.
fn expand(template: &str, groups: &[String]) -> String {
    let mut out = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        match chars.peek().copied() {
            Some('$') => {
                chars.next();
                out.push('$');
            }
            Some(d @ '0'..='9') => {
                chars.next();
                let i = d as usize - '0' as usize;
                out.push_str(groups.get(i).map_or("", |s| s.as_str()));
            }
            _ => out.push('$'),
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Conflict-resolution parameters (`[resolution]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolution {
    pub corroboration_bonus: u8,
    pub max_corroboration_bonus: u8,
    pub conflict_penalty_percent: u8,
    pub min_confidence: u8,
}

impl Default for Resolution {
    fn default() -> Self {
        Resolution {
            corroboration_bonus: 5,
            max_corroboration_bonus: 15,
            conflict_penalty_percent: 50,
            min_confidence: 15,
        }
    }
}

/// An end-of-life entry: an OS and the versions of it that are past support.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EolEntry {
    pub os: String,
    pub versions: Vec<String>,
}

/// A loaded, validated signature set.
#[derive(Debug, Clone)]
pub struct Signatures {
    /// Rules in load order (shipped files in [`SHIPPED`] order, then operator files by name).
    pub rules: Vec<Rule>,
    pub weights: BTreeMap<EvidenceKind, u8>,
    pub resolution: Resolution,
    pub eol: Vec<EolEntry>,
    /// Rule indexes by evidence kind, in load order.
    by_kind: BTreeMap<EvidenceKind, Vec<usize>>,
    /// Distinct for every set built (clones share it): what a
    /// [`crate::fingerprint::identify::MatchCache`] keys its entries on.
    serial: u64,
}

impl Signatures {
    /// The shipped signatures only.
    pub fn shipped() -> Result<Signatures, SignatureErrors> {
        Self::from_sources(SHIPPED.iter().map(|(n, t)| (n.to_string(), t.to_string())))
    }

    /// The shipped signatures plus, when given, an operator directory: its `fingerprint/`
    /// sub-directory if there is one, else the directory itself; every `*.toml` in it, by name.
    pub fn load(operator_dir: Option<&Path>) -> Result<Signatures, SignatureErrors> {
        let mut sources: Vec<(String, String)> = SHIPPED
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        if let Some(dir) = operator_dir {
            sources.extend(read_dir(dir)?);
        }
        Self::from_sources(sources)
    }

    /// Builds a set from (file name, text) pairs, in order. Later files override earlier ones
    /// (same rule id, same weight key); within one file a repeated id is an error.
    pub fn from_sources(
        sources: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Signatures, SignatureErrors> {
        let mut errors = Vec::new();
        let mut rules: Vec<Rule> = Vec::new();
        let mut weights = BTreeMap::new();
        let mut resolution = Resolution::default();
        let mut eol = Vec::new();
        let sources: Vec<(String, String)> = sources.into_iter().collect();
        let parsed: Vec<Result<RawFile, toml::de::Error>> = sources
            .iter()
            .map(|(_, text)| toml::from_str(text))
            .collect();
        let regexes = precompile(&parsed);
        for ((name, text), raw) in sources.iter().zip(parsed) {
            parse_file(
                name,
                text,
                raw,
                &regexes,
                &mut rules,
                &mut weights,
                &mut resolution,
                &mut eol,
                &mut errors,
            );
        }
        if rules.len() > MAX_RULES {
            errors.push(SignatureError {
                file: "(all)".into(),
                line: 0,
                problem: format!("{} rules, more than {MAX_RULES}", rules.len()),
            });
        }
        // Every kind a rule names needs a weight (directly or via the rule).
        let mut reported = BTreeSet::new();
        for r in &rules {
            if r.weight.is_none() && !weights.contains_key(&r.kind) && reported.insert(r.kind) {
                errors.push(SignatureError {
                    file: r.file.clone(),
                    line: r.line,
                    problem: format!(
                        "evidence kind {:?} has no weight in any [weights] table and the rule sets none",
                        r.kind.as_str()
                    ),
                });
            }
        }
        if !errors.is_empty() {
            return Err(SignatureErrors(errors));
        }
        let mut by_kind: BTreeMap<EvidenceKind, Vec<usize>> = BTreeMap::new();
        for (i, r) in rules.iter().enumerate() {
            by_kind.entry(r.kind).or_default().push(i);
        }
        static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(Signatures {
            rules,
            weights,
            resolution,
            eol,
            by_kind,
            serial: SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// Identifies this set among the sets built in this process (clones share it).
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// Rules for one evidence kind with their indexes in [`Signatures::rules`], in load order.
    pub fn rules_for_indexed(&self, kind: EvidenceKind) -> impl Iterator<Item = (usize, &Rule)> {
        self.by_kind
            .get(&kind)
            .into_iter()
            .flatten()
            .filter_map(|&i| self.rules.get(i).map(|r| (i, r)))
    }

    /// Rules for one evidence kind, in load order.
    pub fn rules_for(&self, kind: EvidenceKind) -> impl Iterator<Item = &Rule> {
        self.by_kind
            .get(&kind)
            .into_iter()
            .flatten()
            .filter_map(|&i| self.rules.get(i))
    }

    /// The weight of a rule's conclusions: its own, else its kind's.
    pub fn weight(&self, rule: &Rule) -> u8 {
        rule.weight
            .or_else(|| self.weights.get(&rule.kind).copied())
            .unwrap_or(0)
    }

    /// Whether `os` `version` is end-of-life (case-insensitive, exact version).
    pub fn is_eol(&self, os: &str, version: Option<&str>) -> bool {
        let Some(version) = version else {
            return false;
        };
        self.eol.iter().any(|e| {
            e.os.eq_ignore_ascii_case(os)
                && e.versions.iter().any(|v| v.eq_ignore_ascii_case(version))
        })
    }
}

fn read_dir(dir: &Path) -> Result<Vec<(String, String)>, SignatureErrors> {
    let err = |file: &Path, problem: String| {
        SignatureErrors(vec![SignatureError {
            file: file.display().to_string(),
            line: 0,
            problem,
        }])
    };
    let sub = dir.join("fingerprint");
    let dir = if sub.is_dir() { sub } else { dir.to_path_buf() };
    let entries = std::fs::read_dir(&dir).map_err(|e| err(&dir, e.to_string()))?;
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let len = std::fs::metadata(&f)
            .map_err(|e| err(&f, e.to_string()))?
            .len();
        if len > MAX_FILE_LEN {
            return Err(err(&f, format!("{len} bytes, more than {MAX_FILE_LEN}")));
        }
        let text = std::fs::read_to_string(&f).map_err(|e| err(&f, e.to_string()))?;
        out.push((f.display().to_string(), text));
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    resolution: Option<Spanned<RawResolution>>,
    #[serde(default)]
    weights: Option<BTreeMap<Spanned<String>, Spanned<i64>>>,
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
    #[serde(default)]
    eol: Vec<Spanned<RawEol>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResolution {
    corroboration_bonus: Spanned<i64>,
    max_corroboration_bonus: Spanned<i64>,
    conflict_penalty_percent: Spanned<i64>,
    min_confidence: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<String>,
    kind: Spanned<String>,
    equals: Option<Spanned<String>>,
    prefix: Option<Spanned<String>>,
    contains: Option<Spanned<String>>,
    regex: Option<Spanned<String>>,
    #[serde(default)]
    case_sensitive: bool,
    vendor: Option<Spanned<String>>,
    model: Option<Spanned<String>>,
    os: Option<Spanned<String>>,
    os_version: Option<Spanned<String>>,
    software: Option<Spanned<String>>,
    category: Option<Spanned<String>>,
    weight: Option<Spanned<i64>>,
    #[serde(default)]
    fallback: bool,
    #[serde(default)]
    ignore: bool,
    #[allow(dead_code)]
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEol {
    os: Spanned<String>,
    versions: Vec<Spanned<String>>,
    #[allow(dead_code)]
    note: Option<String>,
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn percent(
    v: &Spanned<i64>,
    what: &str,
    file: &str,
    text: &str,
    errors: &mut Vec<SignatureError>,
) -> u8 {
    let n = *v.get_ref();
    if (0..=100).contains(&n) {
        n as u8
    } else {
        errors.push(SignatureError {
            file: file.to_string(),
            line: line_of(text, v.span().start),
            problem: format!("{what} {n} is not within 0..=100"),
        });
        0
    }
}

/// The regexes of every rule, compiled on the machine's cores (the shipped ones took ~15 ms on
/// one core, before the first packet): (pattern, case_sensitive) -> what [`compile_regex`]
/// returned. Files that do not parse are left out (their error is reported by [`parse_file`]).
type Compiled = HashMap<(String, bool), Result<Regex, String>>;

fn precompile(parsed: &[Result<RawFile, toml::de::Error>]) -> Compiled {
    let mut wanted: Vec<(String, bool)> = parsed
        .iter()
        .flatten()
        .flat_map(|f| &f.rule)
        .filter_map(|r| {
            let r = r.get_ref();
            Some((r.regex.as_ref()?.get_ref().clone(), r.case_sensitive))
        })
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let compile = |c: &[(String, bool)]| -> Vec<((String, bool), Result<Regex, String>)> {
        c.iter()
            .map(|(p, cs)| ((p.clone(), *cs), compile_regex(p, *cs)))
            .collect()
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    if threads < 2 || wanted.len() < 16 {
        return compile(&wanted).into_iter().collect();
    }
    // Each thread takes the next pattern left (their costs differ by a factor of ten or more:
    // equal shares of the sorted list left one thread with twice the work of the other).
    let next = std::sync::atomic::AtomicUsize::new(0);
    let take = || {
        let mut done = Vec::new();
        while let Some(c) = wanted.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
            done.extend(compile(std::slice::from_ref(c)));
        }
        done
    };
    std::thread::scope(|s| {
        let parts: Vec<_> = (0..threads).map(|_| s.spawn(take)).collect();
        // A part that failed is compiled again, one by one, by `parse_file`.
        parts
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

#[allow(clippy::too_many_arguments)]
fn parse_file(
    file: &str,
    text: &str,
    raw: Result<RawFile, toml::de::Error>,
    regexes: &Compiled,
    rules: &mut Vec<Rule>,
    weights: &mut BTreeMap<EvidenceKind, u8>,
    resolution: &mut Resolution,
    eol: &mut Vec<EolEntry>,
    errors: &mut Vec<SignatureError>,
) {
    let raw = match raw {
        Ok(r) => r,
        Err(e) => {
            errors.push(SignatureError {
                file: file.to_string(),
                line: e.span().map_or(0, |s: Range<usize>| line_of(text, s.start)),
                problem: e.message().trim().to_string(),
            });
            return;
        }
    };
    let at = |span: Range<usize>| line_of(text, span.start);
    let mut push = |line: usize, problem: String| {
        errors.push(SignatureError {
            file: file.to_string(),
            line,
            problem,
        })
    };
    let mut local_errors = Vec::new();
    if let Some(r) = &raw.resolution {
        let r = r.get_ref();
        *resolution = Resolution {
            corroboration_bonus: percent(
                &r.corroboration_bonus,
                "corroboration_bonus",
                file,
                text,
                &mut local_errors,
            ),
            max_corroboration_bonus: percent(
                &r.max_corroboration_bonus,
                "max_corroboration_bonus",
                file,
                text,
                &mut local_errors,
            ),
            conflict_penalty_percent: percent(
                &r.conflict_penalty_percent,
                "conflict_penalty_percent",
                file,
                text,
                &mut local_errors,
            ),
            min_confidence: percent(
                &r.min_confidence,
                "min_confidence",
                file,
                text,
                &mut local_errors,
            ),
        };
    }
    if let Some(w) = &raw.weights {
        for (k, v) in w {
            match EvidenceKind::from_name(k.get_ref()) {
                Some(kind) => {
                    let p = percent(v, "weight", file, text, &mut local_errors);
                    weights.insert(kind, p);
                }
                None => push(
                    at(k.span()),
                    format!("unknown evidence kind {:?} in [weights]", k.get_ref()),
                ),
            }
        }
    }
    for e in &raw.eol {
        let line = at(e.span());
        let e = e.get_ref();
        if e.os.get_ref().trim().is_empty() || e.versions.is_empty() {
            push(line, "[[eol]] needs an os and at least one version".into());
            continue;
        }
        eol.push(EolEntry {
            os: e.os.get_ref().trim().to_string(),
            versions: e
                .versions
                .iter()
                .map(|v| v.get_ref().trim().to_string())
                .collect(),
        });
    }
    let mut ids_here: BTreeMap<String, usize> = BTreeMap::new();
    for r in &raw.rule {
        let line = at(r.span());
        let r = r.get_ref();
        let id = r.id.get_ref().trim().to_string();
        if id.is_empty() {
            push(at(r.id.span()), "rule id is empty".into());
            continue;
        }
        if let Some(prev) = ids_here.insert(id.clone(), line) {
            push(
                at(r.id.span()),
                format!("rule id {id:?} already used at line {prev}"),
            );
            continue;
        }
        let Some(kind) = EvidenceKind::from_name(r.kind.get_ref()) else {
            push(
                at(r.kind.span()),
                format!(
                    "unknown evidence kind {:?} (see signatures/README.md)",
                    r.kind.get_ref()
                ),
            );
            continue;
        };
        let given: Vec<&Spanned<String>> = [&r.equals, &r.prefix, &r.contains, &r.regex]
            .into_iter()
            .flatten()
            .collect();
        if given.len() != 1 {
            push(
                line,
                format!(
                    "rule {id:?} needs exactly one of equals, prefix, contains, regex (found {})",
                    given.len()
                ),
            );
            continue;
        }
        let fold = |s: &str| {
            if r.case_sensitive {
                s.to_string()
            } else {
                s.to_lowercase()
            }
        };
        let mut groups = 1usize;
        let matcher = if let Some(s) = &r.equals {
            Matcher::Equals(fold(s.get_ref()))
        } else if let Some(s) = &r.prefix {
            Matcher::Prefix(fold(s.get_ref()))
        } else if let Some(s) = &r.contains {
            Matcher::Contains(fold(s.get_ref()))
        } else if let Some(s) = &r.regex {
            let compiled = regexes
                .get(&(s.get_ref().clone(), r.case_sensitive))
                .cloned()
                .unwrap_or_else(|| compile_regex(s.get_ref(), r.case_sensitive));
            match compiled {
                Ok(re) => {
                    groups = re.group_info().group_len(regex_automata::PatternID::ZERO);
                    Matcher::Regex(re)
                }
                Err(msg) => {
                    let last = msg.lines().last().unwrap_or("").trim().to_string();
                    push(at(s.span()), format!("invalid regex: {last}"));
                    continue;
                }
            }
        } else {
            continue;
        };
        let mut bad = false;
        let mut template = |t: &Option<Spanned<String>>| -> Option<String> {
            let t = t.as_ref()?;
            if let Some(n) = max_group(t.get_ref()) {
                if n >= groups {
                    push(
                        at(t.span()),
                        format!(
                            "${n} but the matcher has {} capture group(s)",
                            groups.saturating_sub(1)
                        ),
                    );
                    bad = true;
                }
            }
            Some(t.get_ref().clone())
        };
        let vendor = template(&r.vendor);
        let model = template(&r.model);
        let os = template(&r.os);
        let os_version = template(&r.os_version);
        let software = template(&r.software);
        let category = match &r.category {
            None => None,
            Some(c) => match Category::from_name(c.get_ref()) {
                Some(c) => Some(c),
                None => {
                    push(
                        at(c.span()),
                        format!(
                            "unknown category {:?} (one of: {})",
                            c.get_ref(),
                            Category::ALL
                                .iter()
                                .map(|c| c.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                    bad = true;
                    None
                }
            },
        };
        if os_version.is_some() && os.is_none() {
            push(line, format!("rule {id:?} sets os_version without os"));
            bad = true;
        }
        let concludes = vendor.is_some()
            || model.is_some()
            || os.is_some()
            || software.is_some()
            || category.is_some();
        if r.ignore && concludes {
            push(
                line,
                format!("rule {id:?} has ignore = true and conclusions"),
            );
            bad = true;
        }
        if !r.ignore && !concludes && !bad {
            push(
                line,
                format!(
                    "rule {id:?} concludes nothing (set vendor, model, os, software or category, or ignore = true)"
                ),
            );
            bad = true;
        }
        let weight = r
            .weight
            .as_ref()
            .map(|w| percent(w, "weight", file, text, &mut local_errors));
        if bad {
            continue;
        }
        let rule = Rule {
            id: id.as_str().into(),
            kind,
            matcher,
            case_sensitive: r.case_sensitive,
            conclusions: Conclusions {
                vendor,
                model,
                os,
                os_version,
                software,
                category,
            },
            weight,
            fallback: r.fallback,
            ignore: r.ignore,
            file: file.to_string(),
            line,
        };
        // A later file overrides an earlier rule with the same id, in place.
        if let Some(slot) = rules.iter_mut().find(|x| *x.id == *id) {
            *slot = rule;
        } else {
            rules.push(rule);
        }
    }
    errors.extend(local_errors);
}

/// Compiles a rule's regex with the semantics of `regex::RegexBuilder` (Unicode, leftmost-first,
/// `size_limit` = [`MAX_REGEX_SIZE`]) but without the fully compiled DFA that the meta engine
/// otherwise builds for every small pattern: that build was ~90% of the sensor's start-up
/// (~180 M instructions for the shipped rules, before the first packet is read), while the lazy DFA
/// matches these short evidence strings as fast. Errors read as `regex::Error`'s do.
fn compile_regex(pattern: &str, case_sensitive: bool) -> Result<Regex, String> {
    meta::Builder::new()
        .configure(
            meta::Config::new()
                .nfa_size_limit(Some(MAX_REGEX_SIZE))
                .utf8_empty(true)
                .dfa(false)
                // No lazy DFA either, so no reverse NFA is compiled for it (about a third of
                // the build): the shipped rules are anchored (one-pass) and match short values,
                // each value once per signature set (the match cache), so the one-pass engine,
                // the bounded backtracker or the PikeVM matches them with the same results.
                .hybrid(false)
                // No prefilter (literal extraction, then an Aho-Corasick or Teddy searcher
                // built for the unanchored patterns: a third of their build): it only lets a
                // search skip ahead to where a match can start, and the values are short.
                .auto_prefilter(false),
        )
        .syntax(syntax::Config::new().case_insensitive(!case_sensitive))
        .build(pattern)
        .map_err(|e| match (e.size_limit(), e.syntax_error()) {
            (Some(limit), _) => format!("Compiled regex exceeds size limit of {limit} bytes."),
            (None, Some(err)) => err.to_string(),
            (None, None) => e.to_string(),
        })
}

/// Highest `$n` in a template.
fn max_group(t: &str) -> Option<usize> {
    let b = t.as_bytes();
    let mut max = None;
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'$' {
            if b[i + 1] == b'$' {
                i += 2;
                continue;
            }
            if b[i + 1].is_ascii_digit() {
                let n = usize::from(b[i + 1] - b'0');
                max = Some(max.map_or(n, |m: usize| m.max(n)));
            }
        }
        i += 1;
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Result<Signatures, SignatureErrors> {
        let base = ("base.toml".to_string(), "[weights]\noui = 30\n".to_string());
        Signatures::from_sources([base, ("t.toml".to_string(), text.to_string())])
    }

    #[test]
    fn shipped_signatures_load() {
        let s = Signatures::shipped().unwrap_or_else(|e| panic!("{e}"));
        assert!(s.rules.len() > 150, "{}", s.rules.len());
        // Every kind has a weight.
        for k in EvidenceKind::ALL {
            assert!(s.weights.contains_key(k), "no weight for {k}");
        }
        assert!(s.is_eol("windows", Some("xp")));
        assert!(s.is_eol("Windows", Some("7 or Server 2008 R2")));
        assert!(!s.is_eol("Windows", Some("10 or 11")));
        assert!(!s.is_eol("Windows", None));
        assert_eq!(s.resolution, Resolution::default());
    }

    #[test]
    fn every_shipped_file_is_embedded() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("signatures/fingerprint");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".toml"))
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = SHIPPED.iter().map(|(n, _)| n.to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
        // And the directory loads the same way an operator directory would.
        let s = Signatures::load(Some(&dir)).unwrap();
        assert_eq!(s.rules.len(), Signatures::shipped().unwrap().rules.len());
    }

    #[test]
    fn errors_name_file_and_line() {
        let e =
            one("[[rule]]\nid = \"a\"\nkind = \"oui\"\nregex = '('\nvendor = \"x\"\n").unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert_eq!((e.0[0].file.as_str(), e.0[0].line), ("t.toml", 4));
        assert!(e.0[0].problem.starts_with("invalid regex"), "{e}");

        let e = one("[[rule]]\nid = \"a\"\nkind = \"ouii\"\nequals = \"x\"\nvendor = \"x\"\n")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.toml:3: unknown evidence kind \"ouii\" (see signatures/README.md)"
        );

        let e =
            one("[[rule]]\nid = \"a\"\nkind = \"oui\"\nequals = \"x\"\ncategory = \"toaster\"\n")
                .unwrap_err();
        assert_eq!(e.0[0].line, 5);
        assert!(e.0[0].problem.contains("unknown category \"toaster\""));

        let e = one("[[rule]]\nid = \"a\"\nkind = \"oui\"\nequals = \"x\"\nvendor = \"$1\"\n")
            .unwrap_err();
        assert_eq!(e.0[0].line, 5);
        assert!(e.0[0].problem.contains("capture group"), "{e}");

        // Syntax error and unknown key: toml's own span.
        let e = one("[[rule]]\nid = \"a\"\nkind = \"oui\"\nequals = \"x\"\nvendr = \"x\"\n")
            .unwrap_err();
        assert_eq!(e.0[0].line, 5, "{e}");
        let e = one("\n\n[[rule]\n").unwrap_err();
        assert_eq!(e.0[0].line, 3, "{e}");

        // Two problems at once, duplicate ids, matcher count, no conclusion, no weight.
        let e = one(
            "[[rule]]\nid = \"a\"\nkind = \"oui\"\nequals = \"x\"\nprefix = \"y\"\nvendor = \"v\"\n\
             [[rule]]\nid = \"a\"\nkind = \"oui\"\nequals = \"x\"\nvendor = \"v\"\n\
             [[rule]]\nid = \"b\"\nkind = \"oui\"\nequals = \"x\"\n\
             [[rule]]\nid = \"c\"\nkind = \"tls_ja4\"\nequals = \"x\"\nsoftware = \"s\"\n\
             [weights]\nbogus = 3\noui = 300\n",
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("t.toml:1: rule \"a\" needs exactly one of"),
            "{text}"
        );
        assert!(
            text.contains("t.toml:8: rule id \"a\" already used"),
            "{text}"
        );
        assert!(
            text.contains("t.toml:12: rule \"b\" concludes nothing"),
            "{text}"
        );
        assert!(
            text.contains("unknown evidence kind \"bogus\" in [weights]"),
            "{text}"
        );
        assert!(text.contains("weight 300 is not within 0..=100"), "{text}");
        assert!(
            text.contains("t.toml:16: evidence kind \"tls_ja4\" has no weight"),
            "{text}"
        );
    }

    #[test]
    fn matching_and_templates() {
        let s = one(
            "[[rule]]\nid = \"r\"\nkind = \"oui\"\nregex = '^(GE) (Health\\w+)'\n\
             vendor = \"$1 $2 $$\"\ncategory = \"ct\"\n\
             [[rule]]\nid = \"p\"\nkind = \"oui\"\nprefix = \"BAXTER\"\nvendor = \"Baxter\"\n\
             [[rule]]\nid = \"c\"\nkind = \"oui\"\ncontains = \"Mind\"\ncase_sensitive = true\nvendor = \"$0\"\n",
        )
        .unwrap();
        let r = &s.rules[0];
        let a = r.apply("ge healthcare").unwrap();
        assert_eq!(a.vendor.as_deref(), Some("ge healthcare $"));
        assert_eq!(a.category, Some(Category::Ct));
        assert!(r.apply("xGE Healthcare").is_none());
        assert!(s.rules[1].apply("Baxter International").is_some());
        assert!(s.rules[2].apply("mindray").is_none());
        assert_eq!(
            s.rules[2]
                .apply("Shenzhen Mindray")
                .unwrap()
                .vendor
                .as_deref(),
            Some("Shenzhen Mindray")
        );
        assert_eq!(s.weight(&s.rules[0]), 30);
    }

    #[test]
    fn operator_directory_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let fp = dir.path().join("fingerprint");
        std::fs::create_dir(&fp).unwrap();
        std::fs::write(
            fp.join("local.toml"),
            "[weights]\noui = 50\n\n[[rule]]\nid = \"oui-baxter\"\nkind = \"oui\"\nregex = '^Baxter'\nvendor = \"Baxter Healthcare\"\n\n[[eol]]\nos = \"Windows\"\nversions = [\"10 or 11\"]\n",
        )
        .unwrap();
        std::fs::write(fp.join("notes.txt"), "not toml").unwrap();
        let s = Signatures::load(Some(dir.path())).unwrap();
        assert_eq!(s.weights[&EvidenceKind::Oui], 50);
        let baxter: Vec<&Rule> = s.rules.iter().filter(|r| &*r.id == "oui-baxter").collect();
        assert_eq!(baxter.len(), 1);
        assert_eq!(
            baxter[0].conclusions.vendor.as_deref(),
            Some("Baxter Healthcare")
        );
        assert!(baxter[0].file.ends_with("local.toml"));
        assert!(s.is_eol("Windows", Some("10 or 11")));
        // A bad operator file names itself.
        std::fs::write(fp.join("bad.toml"), "[[rule]]\nid = 3\n").unwrap();
        let e = Signatures::load(Some(dir.path())).unwrap_err();
        assert!(e.0[0].file.ends_with("bad.toml"), "{e}");
        assert_eq!(e.0[0].line, 2);
        assert!(Signatures::load(Some(&dir.path().join("missing"))).is_err());
    }
}
