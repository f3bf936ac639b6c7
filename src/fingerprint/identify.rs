//! Identification: from a device's accumulated evidence to vendor, model, OS (with end-of-life),
//! software, and category, each with a confidence and the evidence that decided it.
//!
//! [`identify`] is a pure function. It does not depend on the order of the evidence: the input
//! is first reduced to a sorted set of distinct (kind, value) pairs, each with the highest
//! confidence seen; rules are applied in signature load order; every intermediate map is
//! ordered; ties are broken by value. Shuffling the evidence never changes the result.
//!
//! Resolution, per attribute (vendor, model, os, software, category), with the parameters of
//! `signatures/fingerprint/resolution.toml`:
//! 1. every rule that matches an evidence value makes a *claim*: attribute, value, and
//!    `score = weight × evidence confidence / 100`, where the weight is the rule's own or its
//!    evidence kind's (`[weights]`). A `fallback` rule claims only when no other rule matched
//!    that evidence; an `ignore` rule matches and claims nothing;
//! 2. claims are grouped by value (case-insensitive); a group's score is its best claim plus
//!    `corroboration_bonus` per additional distinct evidence kind that agrees, at most
//!    `max_corroboration_bonus`;
//! 3. the best group wins (then: more distinct kinds, then the smaller value); its confidence
//!    is its score minus `conflict_penalty_percent`% of the runner-up's, clamped to 0..=100;
//!    below `min_confidence` the attribute stays unknown;
//! 4. the OS version is chosen the same way among the claims whose rule named the winning OS;
//!    `eol` comes from the `[[eol]]` lists.
//!
//! So a DICOM Manufacturer (weight 95) beats an OUI guess (30) whatever order they came in,
//! and two weak kinds that agree can beat one that disagrees.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde::Serialize;

use super::evidence::{Evidence, EvidenceKind, EvidenceRef};
use super::signatures::{Applied, Category, Signatures};

/// One decided attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decided<T> {
    pub value: T,
    /// 0..=100.
    pub confidence: u8,
    /// The evidence (and rule) behind the winning value, sorted.
    pub decided_by: Vec<EvidenceRef>,
}

/// The identified operating system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OsInfo {
    pub name: String,
    pub version: Option<String>,
    /// The version is on an end-of-life list.
    pub eol: bool,
}

/// What a device is, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identification {
    pub vendor: Option<Decided<String>>,
    pub model: Option<Decided<String>>,
    pub os: Option<Decided<OsInfo>>,
    /// Software seen speaking for the device (DICOM toolkit, browser, interface engine).
    pub software: Option<Decided<String>>,
    /// Always set; `Unknown` with confidence 0 when nothing decided it.
    pub category: Decided<Category>,
    /// The category's confidence when the category is known, else the vendor's, else 0.
    pub confidence: u8,
    /// Union of the attributes' `decided_by`, sorted, without duplicates.
    pub decided_by: Vec<EvidenceRef>,
}

impl Identification {
    /// The identification of a device with no usable evidence.
    pub fn unknown() -> Identification {
        Identification {
            vendor: None,
            model: None,
            os: None,
            software: None,
            category: Decided {
                value: Category::Unknown,
                confidence: 0,
                decided_by: Vec::new(),
            },
            confidence: 0,
            decided_by: Vec::new(),
        }
    }

    /// Whether the OS is end-of-life.
    pub fn eol_os(&self) -> bool {
        self.os.as_ref().is_some_and(|o| o.value.eol)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Attr {
    Vendor,
    Model,
    Os,
    Software,
    Category,
}

/// A claim borrows its values from the rule matches (only the deciding ones are copied out).
#[derive(Debug, Clone)]
struct Claim<'a> {
    value: &'a str,
    score: u32,
    kind: EvidenceKind,
    evidence: EvidenceRef,
    /// For OS version claims: the OS the same rule named.
    os: Option<&'a str>,
}

/// A key's bytes as compared: folded to ASCII lower case when `f`.
fn fold((b, f): (&[u8], bool)) -> impl Iterator<Item = u8> + '_ {
    b.iter()
        .map(move |&c| if f { c.to_ascii_lowercase() } else { c })
}

/// A claim value's group key: the value lower-cased (groups are case-insensitive), compared
/// as `str::to_lowercase` texts compare. An ASCII value is its own key, folded as it is read
/// (no lower-cased copy); any other is lower-cased once.
enum GroupKey<'c> {
    Ascii(&'c str),
    Folded(String),
}

impl<'c> GroupKey<'c> {
    fn of(value: &'c str) -> GroupKey<'c> {
        if value.is_ascii() {
            GroupKey::Ascii(value)
        } else {
            GroupKey::Folded(value.to_lowercase())
        }
    }

    /// The key's bytes, and whether they are still to be folded to ASCII lower case.
    fn bytes(&self) -> (&[u8], bool) {
        match self {
            GroupKey::Ascii(s) => (s.as_bytes(), true),
            GroupKey::Folded(s) => (s.as_bytes(), false),
        }
    }

    fn cmp(&self, other: &GroupKey) -> std::cmp::Ordering {
        fold(self.bytes()).cmp(fold(other.bytes()))
    }

    fn same(&self, other: &GroupKey) -> bool {
        let ((x, fx), (y, fy)) = (self.bytes(), other.bytes());
        match (fx, fy) {
            // ASCII folding keeps lengths.
            (true, true) => x.eq_ignore_ascii_case(y),
            (false, false) => x == y,
            _ => self.cmp(other).is_eq(),
        }
    }
}

/// The decision for one attribute: value, confidence, supporting refs.
///
/// Groups are found by linear search (an attribute has a handful of claims) and keep
/// references to their claims; only the winner's value and references are copied out.
fn decide(claims: &[Claim], sigs: &Signatures) -> Option<(String, u8, Vec<EvidenceRef>)> {
    let res = sigs.resolution;
    struct Group<'c> {
        key: GroupKey<'c>,
        best: u32,
        display: &'c str,
        kinds: Vec<EvidenceKind>,
    }
    let mut groups: Vec<Group> = Vec::with_capacity(claims.len());
    // The group of each claim (none: a zero score).
    let mut group_of: Vec<Option<usize>> = Vec::with_capacity(claims.len());
    for c in claims {
        if c.score == 0 {
            group_of.push(None);
            continue;
        }
        let key = GroupKey::of(c.value);
        let gi = match groups.iter().position(|g| g.key.same(&key)) {
            Some(i) => i,
            None => {
                groups.push(Group {
                    key,
                    best: 0,
                    display: c.value,
                    kinds: Vec::new(),
                });
                groups.len() - 1
            }
        };
        group_of.push(Some(gi));
        let g = &mut groups[gi];
        if c.score > g.best || (c.score == g.best && c.value < g.display) {
            g.best = c.score;
            g.display = c.value;
        }
        if !g.kinds.contains(&c.kind) {
            g.kinds.push(c.kind);
        }
    }
    let scored = |g: &Group| {
        let extra = g.kinds.len().saturating_sub(1) as u32;
        let bonus = (extra * u32::from(res.corroboration_bonus))
            .min(u32::from(res.max_corroboration_bonus));
        (g.best + bonus, g.kinds.len())
    };
    // Best score, then more kinds, then the smaller key; the runner-up is the best score of
    // the others.
    let mut winner: Option<(usize, (u32, usize))> = None;
    for (i, g) in groups.iter().enumerate() {
        let s = scored(g);
        let better = match winner {
            None => true,
            Some((w, ws)) => {
                s.0.cmp(&ws.0)
                    .then(s.1.cmp(&ws.1))
                    .then(groups[w].key.cmp(&g.key))
                    .is_gt()
            }
        };
        if better {
            winner = Some((i, s));
        }
    }
    let (w, (score, _)) = winner?;
    let runner_up = (0..groups.len())
        .filter(|&i| i != w)
        .map(|i| scored(&groups[i]).0)
        .max()
        .unwrap_or(0);
    let penalty = runner_up * u32::from(res.conflict_penalty_percent) / 100;
    let confidence = score.saturating_sub(penalty).min(100) as u8;
    if confidence < res.min_confidence {
        return None;
    }
    let mut refs: Vec<&EvidenceRef> = claims
        .iter()
        .zip(&group_of)
        .filter(|(_, g)| **g == Some(w))
        .map(|(c, _)| &c.evidence)
        .collect();
    refs.sort();
    refs.dedup();
    Some((
        groups[w].display.to_string(),
        confidence,
        refs.into_iter().cloned().collect(),
    ))
}

/// What the rules of one evidence kind conclude from one value (after the fallback logic):
/// `(rule index, conclusions)` in load order. It depends on the value and the signatures only,
/// so a [`MatchCache`] shares it between devices and between identifications of one device.
pub type Matches = Arc<[(usize, Applied)]>;

/// Distinct (kind, value) pairs whose rule matches a [`MatchCache`] holds; when full it starts
/// again empty (a cache: identification is the same with or without it).
pub const MATCH_CACHE_ENTRIES: usize = 16_384;

/// Rule matches by (kind, value) for one signature set, so that identifying a device again
/// after new evidence does not run every rule (regular expressions) over all of its evidence.
#[derive(Debug, Default)]
pub struct MatchCache {
    /// [`Signatures::serial`] of the set the entries were computed with.
    serial: u64,
    len: usize,
    /// Per kind (indexed by `EvidenceKind as usize`): value -> its matches, and whether a rule
    /// that is not `ignore` is among them (the value *claims* something).
    by_kind: Vec<HashMap<Box<str>, (Matches, bool), ahash::RandomState>>,
    /// Identifications by the distinct evidence values rules claim something from (many devices
    /// have the same: every new device of one OUI, hosts of one model): hash -> entries.
    idents: HashMap<u64, Vec<IdentEntry>, ahash::RandomState>,
    idents_len: usize,
    /// What `idents` held when it was last full: looked in when `idents` has no answer, and an
    /// entry found is moved back to it. (Emptying the cache when full made the sets in use,
    /// such as a maker's new devices with only their OUI, be identified again: on bench.pcap
    /// 4,339 identifications were computed, 2,753 with a cache 16 times larger, which kept
    /// about 5 MiB more; 3,051 with this, which keeps what was used since the cache was last
    /// full, at most twice [`IDENT_CACHE_ENTRIES`] entries.)
    idents_old: HashMap<u64, Vec<IdentEntry>, ahash::RandomState>,
}

/// Identifications a [`MatchCache`] remembers; when full it starts again empty.
pub const IDENT_CACHE_ENTRIES: usize = 1024;

/// One remembered identification, with the claimed evidence it was computed from.
#[derive(Debug)]
struct IdentEntry {
    evidence: Vec<(EvidenceKind, Box<str>, u8)>,
    ident: Arc<Identification>,
}

impl MatchCache {
    pub fn new() -> MatchCache {
        MatchCache::default()
    }

    /// Forget everything computed with another signature set.
    fn check_serial(&mut self, sigs: &Signatures) {
        if self.serial != sigs.serial() {
            self.by_kind.iter_mut().for_each(HashMap::clear);
            self.len = 0;
            self.idents.clear();
            self.idents_len = 0;
            self.idents_old.clear();
            self.serial = sigs.serial();
        }
    }

    /// The matches of (`kind`, `value`), computed on a miss.
    pub fn get(&mut self, kind: EvidenceKind, value: &str, sigs: &Signatures) -> Matches {
        self.check_serial(sigs);
        if let Some((m, _)) = self.by_kind.get(kind as usize).and_then(|v| v.get(value)) {
            return m.clone();
        }
        self.insert(kind, value, sigs).0
    }

    /// Whether some rule that is not `ignore` matches (`kind`, `value`): the value can change
    /// an identification.
    pub fn claims(&mut self, kind: EvidenceKind, value: &str, sigs: &Signatures) -> bool {
        self.check_serial(sigs);
        if let Some((_, c)) = self.by_kind.get(kind as usize).and_then(|v| v.get(value)) {
            return *c;
        }
        self.insert(kind, value, sigs).1
    }

    /// Compute and remember the matches of (`kind`, `value`).
    fn insert(&mut self, kind: EvidenceKind, value: &str, sigs: &Signatures) -> (Matches, bool) {
        let m = matches(kind, value, sigs);
        let claims = m
            .iter()
            .any(|(r, _)| sigs.rules.get(*r).is_some_and(|r| !r.ignore));
        if self.len >= MATCH_CACHE_ENTRIES {
            self.by_kind.iter_mut().for_each(HashMap::clear);
            self.len = 0;
        }
        let k = kind as usize;
        if self.by_kind.len() <= k {
            self.by_kind
                .resize_with(EvidenceKind::ALL.len().max(k + 1), HashMap::default);
        }
        if let Some(v) = self.by_kind.get_mut(k) {
            self.len += 1;
            v.insert(value.into(), (m.clone(), claims));
        }
        (m, claims)
    }
}

/// The rules of `kind` that match `value`: the non-fallback ones, else the fallback ones.
fn matches(kind: EvidenceKind, value: &str, sigs: &Signatures) -> Matches {
    let mut applied = Vec::new();
    for (i, rule) in sigs.rules_for_indexed(kind) {
        if rule.fallback {
            continue;
        }
        if let Some(a) = rule.apply(value) {
            applied.push((i, a));
        }
    }
    if applied.is_empty() {
        for (i, rule) in sigs.rules_for_indexed(kind).filter(|(_, r)| r.fallback) {
            if let Some(a) = rule.apply(value) {
                applied.push((i, a));
            }
        }
    }
    applied.into()
}

/// Identifies a device from its evidence (any order, duplicates allowed).
pub fn identify(evidence: &[Evidence], sigs: &Signatures) -> Identification {
    identify_cached(
        evidence
            .iter()
            .map(|e| (e.kind, e.value.as_str(), e.confidence)),
        sigs,
        &mut MatchCache::new(),
    )
}

/// [`identify`] over (kind, value, confidence) items, with rule matches from `cache`.
pub fn identify_cached<'a>(
    evidence: impl IntoIterator<Item = (EvidenceKind, &'a str, u8)>,
    sigs: &Signatures,
    cache: &mut MatchCache,
) -> Identification {
    (*identify_shared(evidence, sigs, cache)).clone()
}

/// [`identify_cached`], shared with the cache (devices identified alike share one copy).
pub fn identify_shared<'a>(
    evidence: impl IntoIterator<Item = (EvidenceKind, &'a str, u8)>,
    sigs: &Signatures,
    cache: &mut MatchCache,
) -> Arc<Identification> {
    identify_shared_known(
        evidence.into_iter().map(|(k, v, c)| (k, v, c, None)),
        sigs,
        cache,
    )
}

/// [`identify_shared`] of (kind, value, confidence, claims) items, where `claims` is what
/// [`MatchCache::claims`] answers for the value with `sigs` when the caller remembers it
/// (`None`: asked here).
pub fn identify_shared_known<'a>(
    evidence: impl IntoIterator<Item = (EvidenceKind, &'a str, u8, Option<bool>)>,
    sigs: &Signatures,
    cache: &mut MatchCache,
) -> Arc<Identification> {
    // Distinct (kind, value) with the highest confidence seen, sorted (a device's evidence
    // list already is: then nothing is moved). Sized once (a filtered iterator would grow the
    // vector from 4, one realloc per doubling).
    let evidence = evidence.into_iter();
    let mut distinct: Vec<Item<'a>> = Vec::with_capacity(evidence.size_hint().0);
    distinct.extend(
        evidence
            .filter(|(_, value, _, _)| !value.is_empty())
            .map(|(kind, value, confidence, claims)| (kind, value, confidence.min(100), claims)),
    );
    if !distinct
        .windows(2)
        .all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1))
    {
        distinct.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        distinct.dedup_by(|cur, kept| {
            let same = (cur.0, cur.1) == (kept.0, kept.1);
            if same {
                kept.2 = kept.2.max(cur.2);
                kept.3 = kept.3.or(cur.3);
            }
            same
        });
    }
    cache.check_serial(sigs);
    // Only values some rule claims something from decide anything: the identification is a
    // function of those (and the signature set), so it is remembered by them, and devices
    // that differ only in values no rule reads (host names, serial numbers) share it.
    let mut claimed: Vec<(EvidenceKind, &str, u8)> = Vec::with_capacity(distinct.len());
    claimed.extend(
        distinct
            .iter()
            .filter(|&&(kind, value, _, claims)| {
                claims.unwrap_or_else(|| cache.claims(kind, value, sigs))
            })
            .map(|&(kind, value, conf, _)| (kind, value, conf)),
    );
    let hash = ahash::RandomState::with_seeds(0x6964, 0x656e, 0x7469, 0x6679).hash_one(&claimed);
    let same = |e: &IdentEntry| {
        e.evidence.len() == claimed.len()
            && e.evidence
                .iter()
                .zip(&claimed)
                .all(|((k, v, c), (ck, cv, cc))| k == ck && &**v == *cv && c == cc)
    };
    if let Some(e) = cache
        .idents
        .get(&hash)
        .and_then(|v| v.iter().find(|e| same(e)))
    {
        return e.ident.clone();
    }
    if let Some(old) = cache.idents_old.get_mut(&hash) {
        if let Some(at) = old.iter().position(same) {
            let e = old.swap_remove(at);
            let ident = e.ident.clone();
            cache.remember(hash, e);
            return ident;
        }
    }
    let ident = Arc::new(identify_distinct(&distinct, sigs, cache));
    cache.remember(
        hash,
        IdentEntry {
            evidence: claimed
                .iter()
                .map(|&(k, v, c)| (k, Box::from(v), c))
                .collect(),
            ident: ident.clone(),
        },
    );
    ident
}

impl MatchCache {
    /// Keep an identification (see `idents_old` for when the cache is full).
    fn remember(&mut self, hash: u64, e: IdentEntry) {
        if self.idents_len >= IDENT_CACHE_ENTRIES {
            self.idents_old = std::mem::take(&mut self.idents);
            self.idents_len = 0;
        }
        self.idents_len += 1;
        self.idents.entry(hash).or_default().push(e);
    }
}

/// (kind, value, confidence, claims if known) of [`identify_shared_known`].
type Item<'a> = (EvidenceKind, &'a str, u8, Option<bool>);

/// [`identify_cached`] of distinct (kind, value, confidence), sorted by (kind, value).
fn identify_distinct(
    distinct: &[Item],
    sigs: &Signatures,
    cache: &mut MatchCache,
) -> Identification {
    // The matches of every value, held while the claims borrow their conclusions.
    let applied: Vec<Matches> = distinct
        .iter()
        .map(|&(kind, value, _, _)| cache.get(kind, value, sigs))
        .collect();
    // By attribute (`Attr as usize`).
    let mut claims: [Vec<Claim>; 5] = Default::default();
    let mut version_claims: Vec<Claim> = Vec::new();
    for (&(kind, value, conf, _), applied) in distinct.iter().zip(&applied) {
        // One copy of the value for all the rules it matched.
        let mut shared: Option<std::sync::Arc<str>> = None;
        for (i, a) in applied.iter() {
            let Some(rule) = sigs.rules.get(*i) else {
                continue;
            };
            if rule.ignore {
                continue;
            }
            let score = u32::from(sigs.weight(rule)) * u32::from(conf) / 100;
            let r = EvidenceRef {
                kind,
                value: shared.get_or_insert_with(|| value.into()).clone(),
                rule: rule.id.clone(),
            };
            for (attr, v) in [
                (Attr::Vendor, a.vendor.as_deref()),
                (Attr::Model, a.model.as_deref()),
                (Attr::Os, a.os.as_deref()),
                (Attr::Software, a.software.as_deref()),
                (Attr::Category, a.category.map(|c| c.as_str())),
            ] {
                if let Some(v) = v {
                    claims[attr as usize].push(Claim {
                        value: v,
                        score,
                        kind,
                        evidence: r.clone(),
                        os: None,
                    });
                }
            }
            if let (Some(v), Some(os)) = (a.os_version.as_deref(), a.os.as_deref()) {
                version_claims.push(Claim {
                    value: v,
                    score,
                    kind,
                    evidence: r.clone(),
                    os: Some(os),
                });
            }
        }
    }
    let get = |attr: Attr| -> Option<Decided<String>> {
        let (value, confidence, decided_by) = decide(&claims[attr as usize], sigs)?;
        Some(Decided {
            value,
            confidence,
            decided_by,
        })
    };
    let vendor = get(Attr::Vendor);
    let model = get(Attr::Model);
    let software = get(Attr::Software);
    let os = get(Attr::Os).map(|os_name| {
        let same_os: Vec<Claim> = version_claims
            .iter()
            .filter(|c| c.os.is_some_and(|o| o.eq_ignore_ascii_case(&os_name.value)))
            .cloned()
            .collect();
        let version = decide(&same_os, sigs);
        let mut decided_by = os_name.decided_by;
        if let Some((_, _, refs)) = &version {
            decided_by.extend(refs.iter().cloned());
            decided_by.sort();
            decided_by.dedup();
        }
        let version = version.map(|(v, _, _)| v);
        let eol = sigs.is_eol(&os_name.value, version.as_deref());
        Decided {
            value: OsInfo {
                name: os_name.value,
                version,
                eol,
            },
            confidence: os_name.confidence,
            decided_by,
        }
    });
    let category = get(Attr::Category)
        .and_then(|d| {
            Category::from_name(&d.value).map(|c| Decided {
                value: c,
                confidence: d.confidence,
                decided_by: d.decided_by,
            })
        })
        .unwrap_or(Decided {
            value: Category::Unknown,
            confidence: 0,
            decided_by: Vec::new(),
        });
    let confidence = if category.value != Category::Unknown {
        category.confidence
    } else {
        vendor.as_ref().map_or(0, |v| v.confidence)
    };
    let mut all: BTreeSet<EvidenceRef> = BTreeSet::new();
    for refs in [
        vendor.as_ref().map(|d| &d.decided_by),
        model.as_ref().map(|d| &d.decided_by),
        os.as_ref().map(|d| &d.decided_by),
        software.as_ref().map(|d| &d.decided_by),
        Some(&category.decided_by),
    ]
    .into_iter()
    .flatten()
    {
        all.extend(refs.iter().cloned());
    }
    Identification {
        vendor,
        model,
        os,
        software,
        category,
        confidence,
        decided_by: all.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use EvidenceKind as K;

    /// `decide` as it was written first (maps and sets of owned copies): the reference.
    fn decide_reference(
        claims: &[Claim],
        sigs: &Signatures,
    ) -> Option<(String, u8, Vec<EvidenceRef>)> {
        let res = sigs.resolution;
        // key (lower-cased value) -> (best score, display value of the best claim, kinds, refs)
        struct Group {
            best: u32,
            display: String,
            kinds: BTreeSet<EvidenceKind>,
            refs: BTreeSet<EvidenceRef>,
        }
        let mut groups: BTreeMap<String, Group> = BTreeMap::new();
        for c in claims {
            if c.score == 0 {
                continue;
            }
            let key = c.value.to_lowercase();
            let g = groups.entry(key).or_insert_with(|| Group {
                best: 0,
                display: c.value.to_string(),
                kinds: BTreeSet::new(),
                refs: BTreeSet::new(),
            });
            if c.score > g.best || (c.score == g.best && c.value < g.display.as_str()) {
                g.best = c.score;
                g.display = c.value.to_string();
            }
            g.kinds.insert(c.kind);
            g.refs.insert(c.evidence.clone());
        }
        let mut ranked: Vec<(u32, usize, String, Group)> = groups
            .into_iter()
            .map(|(key, g)| {
                let extra = g.kinds.len().saturating_sub(1) as u32;
                let bonus = (extra * u32::from(res.corroboration_bonus))
                    .min(u32::from(res.max_corroboration_bonus));
                (g.best + bonus, g.kinds.len(), key, g)
            })
            .collect();
        // Best score, then more kinds, then the smaller key.
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        let mut it = ranked.into_iter();
        let (score, _, _, winner) = it.next()?;
        let runner_up = it.next().map_or(0, |r| r.0);
        let penalty = runner_up * u32::from(res.conflict_penalty_percent) / 100;
        let confidence = score.saturating_sub(penalty).min(100) as u8;
        if confidence < res.min_confidence {
            return None;
        }
        Some((
            winner.display,
            confidence,
            winner.refs.into_iter().collect(),
        ))
    }

    /// `decide` gives what its first version gave: claims with values that differ in case
    /// (ASCII and not), equal scores, zero scores, several kinds and repeated references.
    #[test]
    fn decide_equals_its_reference() {
        let s = sigs();
        let values = [
            "GE",
            "ge",
            "Ge",
            "GE ",
            "Siemens",
            "SIEMENS",
            "siemens",
            "Ärzte",
            "äRZTE",
            "ÄRZTE",
            "Σίσυφος",
            "ΣΊΣΥΦΟΣ",
            "b",
            "a",
            "A",
            "",
            "İ",
            "i̇",
        ];
        let kinds = [K::Oui, K::DicomManufacturer, K::HttpUserAgent, K::TcpP0f];
        let mut next = crate::testing::xorshift(0x9e37_79b9_7f4a_7c15u64);
        for res in [
            s.resolution,
            crate::fingerprint::signatures::Resolution {
                corroboration_bonus: 40,
                max_corroboration_bonus: 60,
                conflict_penalty_percent: 90,
                min_confidence: 0,
            },
        ] {
            let mut s = sigs();
            s.resolution = res;
            for _ in 0..3000 {
                let n = next(9) as usize;
                let claims: Vec<Claim> = (0..n)
                    .map(|_| {
                        let value = values[next(values.len() as u64) as usize];
                        let kind = kinds[next(kinds.len() as u64) as usize];
                        Claim {
                            evidence: EvidenceRef {
                                kind,
                                value: values[next(4) as usize].into(),
                                rule: ["r1", "r2", "r3"][next(3) as usize].into(),
                            },
                            value,
                            score: [0, 10, 30, 30, 60, 95][next(6) as usize],
                            kind,
                            os: None,
                        }
                    })
                    .collect();
                assert_eq!(
                    decide(&claims, &s),
                    decide_reference(&claims, &s),
                    "{claims:?}"
                );
            }
        }
    }

    fn sigs() -> Signatures {
        Signatures::shipped().unwrap()
    }

    fn ev(kind: EvidenceKind, v: &str) -> Evidence {
        Evidence::new(kind, v)
    }

    /// A small deterministic shuffle (no rand dependency): rotate and reverse by a seed.
    fn permutations(v: &[Evidence]) -> Vec<Vec<Evidence>> {
        let mut out = Vec::new();
        for seed in 0..v.len().max(1) {
            let mut p = v.to_vec();
            p.rotate_left(seed);
            out.push(p.clone());
            p.reverse();
            out.push(p.clone());
            // Interleave halves.
            let (a, b) = p.split_at(p.len() / 2);
            let mut q = Vec::new();
            for i in 0..a.len().max(b.len()) {
                if let Some(x) = b.get(i) {
                    q.push(x.clone());
                }
                if let Some(x) = a.get(i) {
                    q.push(x.clone());
                }
            }
            out.push(q);
        }
        out
    }

    /// The CT of pcaps/dicom/store.pcap: dcmtk storescu as CT_GE_01 with a GE data set
    /// (Manufacturer GE MEDICAL SYSTEMS, model LightSpeed VCT, software gmp_vct.47), plus a
    /// Philips OUI to make the OUI disagree.
    fn ct_evidence() -> Vec<Evidence> {
        vec![
            ev(
                K::Oui,
                "Philips Medical Systems - Cardiac and Monitoring Systems (CM",
            ),
            ev(K::DicomCallingAe, "CT_GE_01"),
            ev(
                K::DicomImplementationClassUid,
                "1.2.276.0.7230010.3.0.3.6.7",
            ),
            ev(K::DicomImplementationVersionName, "OFFIS_DCMTK_367"),
            ev(K::DicomModality, "CT"),
            ev(K::DicomManufacturer, "GE MEDICAL SYSTEMS"),
            ev(K::DicomModel, "LightSpeed VCT"),
            ev(K::DicomSoftwareVersions, "gmp_vct.47"),
            ev(K::DicomStationName, "CTSTATION01"),
            ev(K::DicomSerialNumber, "TESTSN-CT-0001"),
            Evidence::with_confidence(K::TcpP0f, "Linux:2.2.x-3.x", 70),
        ]
    }

    /// One shared cache over many evidence sets, repeated, in subsets and with another
    /// confidence, and across two signature sets: always what a fresh identification gives.
    #[test]
    fn remembered_identifications_equal_fresh_ones() {
        let (a, b) = (sigs(), sigs());
        let all = ct_evidence();
        let mut sets: Vec<Vec<Evidence>> = (0..all.len()).map(|n| all[..=n].to_vec()).collect();
        sets.extend((0..all.len()).map(|n| all[n..].to_vec()));
        let mut lower = all.clone();
        lower[0].confidence = 10;
        sets.push(lower);
        sets.push(vec![ev(K::Oui, "")]);
        let mut cache = MatchCache::new();
        let mut remembered = Vec::new();
        for round in 0..3 {
            for (i, set) in sets.iter().enumerate() {
                let s = if round < 2 { &a } else { &b };
                let got = identify_cached(
                    set.iter().map(|e| (e.kind, e.value.as_str(), e.confidence)),
                    s,
                    &mut cache,
                );
                assert_eq!(got, identify(set, s), "set {i}, round {round}");
            }
            remembered.push(cache.idents_len);
        }
        // The second round was answered from the cache; the second signature set started it
        // again.
        assert!(remembered[0] > 1);
        assert_eq!(remembered, vec![remembered[0]; 3]);
    }

    /// A full cache keeps what was used since it was last full: an identification asked
    /// again after the cache filled up is the one remembered (the same shared copy), and
    /// equals a fresh one.
    #[test]
    fn a_full_cache_keeps_what_was_used_lately() {
        let s = sigs();
        let mut cache = MatchCache::new();
        let claimed: Vec<Evidence> = ct_evidence()
            .into_iter()
            .filter(|e| !e.value.is_empty() && cache.claims(e.kind, &e.value, &s))
            .take(2)
            .collect();
        assert_eq!(claimed.len(), 2);
        let set = |c0: u8, c1: u8| {
            let mut v = claimed.clone();
            v[0].confidence = c0;
            v[1].confidence = c1;
            v
        };
        let ask = |v: &[Evidence], cache: &mut MatchCache| {
            identify_shared(
                v.iter().map(|e| (e.kind, e.value.as_str(), e.confidence)),
                &s,
                cache,
            )
        };
        let first = ask(&set(100, 100), &mut cache);
        let mut n = 1;
        'fill: for c0 in 1..=100u8 {
            for c1 in 1..=99u8 {
                ask(&set(c0, c1), &mut cache);
                n += 1;
                if n > IDENT_CACHE_ENTRIES + 10 {
                    break 'fill;
                }
            }
        }
        assert!(cache.idents_len < IDENT_CACHE_ENTRIES, "it filled up");
        let again = ask(&set(100, 100), &mut cache);
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(*again, identify(&set(100, 100), &s));
    }

    #[test]
    fn dicom_manufacturer_beats_the_oui() {
        let id = identify(&ct_evidence(), &sigs());
        let vendor = id.vendor.clone().unwrap();
        assert_eq!(vendor.value, "GE Healthcare");
        assert!(vendor
            .decided_by
            .iter()
            .any(|r| r.kind == K::DicomManufacturer && &*r.rule == "dicom-manufacturer-ge"));
        assert!(!vendor.decided_by.iter().any(|r| r.kind == K::Oui));
        // 95 - 50% of the OUI's 30.
        assert_eq!(vendor.confidence, 80);
        assert_eq!(id.category.value, Category::Ct);
        assert_eq!(id.model.as_ref().unwrap().value, "LightSpeed VCT");
        assert_eq!(id.software.as_ref().unwrap().value, "DCMTK 3.6.7");
        let os = id.os.clone().unwrap();
        assert_eq!(
            (os.value.name.as_str(), os.value.version.as_deref()),
            ("Linux", None)
        );
        assert!(!os.value.eol);
        assert_eq!(id.confidence, id.category.confidence);
        assert!(id.decided_by.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn order_independent() {
        let s = sigs();
        let mut all = ct_evidence();
        all.extend([
            ev(
                K::HttpUserAgent,
                "Mozilla/5.0 (Windows NT 5.1; rv:32.0) Gecko/20100101 Firefox/32.0",
            ),
            ev(K::DhcpVendorClass, "MSFT 5.0"),
            ev(K::Oui, "Baxter International Inc"),
            ev(
                K::Hl7ObxDevice,
                "SIGMA SPECTRUM^BAXTER^5842E4FFFE770242^EUI-64",
            ),
            ev(K::DicomModality, "CT"),
        ]);
        let reference = identify(&all, &s);
        for p in permutations(&all) {
            assert_eq!(identify(&p, &s), reference);
        }
        // Duplicates with lower confidence change nothing.
        let mut dup = all.clone();
        dup.push(Evidence::with_confidence(
            K::DicomManufacturer,
            "GE MEDICAL SYSTEMS",
            10,
        ));
        assert_eq!(identify(&dup, &s), reference);
    }

    #[test]
    fn windows_xp_workstation_is_eol() {
        // pcaps/corpus/legacy/arkime_http-basicauth.pcap: Firefox on Windows NT 5.1, the SYN's
        // option order is Windows', and a DHCP vendor class MSFT 5.0 (constructed).
        let e = vec![
            ev(
                K::HttpUserAgent,
                "Mozilla/5.0 (Windows NT 5.1; rv:32.0) Gecko/20100101 Firefox/32.0",
            ),
            ev(
                K::TcpSyn,
                "4:126+2:0:1332:65535,3:mss,nop,ws,nop,nop,ts,nop,nop,sok:df,id+,ts1-:0",
            ),
            ev(K::DhcpVendorClass, "MSFT 5.0"),
        ];
        let id = identify(&e, &sigs());
        let os = id.os.unwrap();
        assert_eq!(os.value.name, "Windows");
        assert_eq!(os.value.version.as_deref(), Some("XP"));
        assert!(os.value.eol);
        // Three kinds agree on Windows: 60 + 2 x 5.
        assert_eq!(os.confidence, 70);
        assert_eq!(id.category.value, Category::ItClient);
        assert_eq!(id.software.unwrap().value, "Firefox 32");
    }

    #[test]
    fn conflicting_os_evidence_resolved_by_weight() {
        // NetBIOS says 6.1 (weight 70), p0f guesses Linux at confidence 60 (50 x 60% = 30).
        let e = vec![
            ev(K::NetbiosOsVersion, "6.1"),
            Evidence::with_confidence(K::TcpP0f, "Linux:3.11 and newer", 60),
        ];
        let id = identify(&e, &sigs());
        let os = id.os.unwrap();
        assert_eq!(os.value.name, "Windows");
        assert_eq!(os.value.version.as_deref(), Some("7 or Server 2008 R2"));
        assert!(os.value.eol);
        assert_eq!(os.confidence, 70 - 15);
    }

    #[test]
    fn infusion_pump_gateway() {
        // hl7/adt_oru_orm.pcap: Baxter-OUI gateway sending ORU^R01 with OBX-18 of a Sigma
        // Spectrum pump.
        let e = vec![
            ev(K::Oui, "Baxter International Inc"),
            ev(K::Hl7SendingApplication, "PUMP_GW"),
            ev(
                K::Hl7ObxDevice,
                "SIGMA SPECTRUM^BAXTER^5842E4FFFE770242^EUI-64",
            ),
        ];
        let id = identify(&e, &sigs());
        assert_eq!(id.vendor.unwrap().value, "Baxter");
        assert_eq!(id.model.unwrap().value, "Sigma Spectrum");
        assert_eq!(id.category.value, Category::InfusionPump);
        // OBX-18 (85) + OUI hint corroborating (+5).
        assert_eq!(id.category.confidence, 90);
    }

    #[test]
    fn oui_only_and_fallbacks() {
        let s = sigs();
        // A vendor with a rule: category hint only.
        let id = identify(&[ev(K::Oui, "Mindray DS USA, Inc.")], &s);
        assert_eq!(id.vendor.as_ref().unwrap().value, "Mindray");
        assert_eq!(id.category.value, Category::PatientMonitor);
        assert_eq!(id.category.confidence, 25);
        // An organisation without a rule: the fallback names it, no category.
        let id = identify(&[ev(K::Oui, "Some Obscure Maker GmbH")], &s);
        assert_eq!(id.vendor.as_ref().unwrap().value, "Some Obscure Maker GmbH");
        assert_eq!(id.category.value, Category::Unknown);
        assert_eq!(id.confidence, 20);
        // "Private" names nobody.
        let id = identify(&[ev(K::Oui, "Private")], &s);
        assert_eq!(id, Identification::unknown());
        assert_eq!(identify(&[], &s), Identification::unknown());
    }

    #[test]
    fn network_gear_from_cdp_and_lldp() {
        // pcaps/corpus/generic/zeek_cdp-v1.pcap (values as parsers::cdp returns them).
        let e = vec![
            ev(K::CdpDeviceId, "R1"),
            ev(K::CdpPlatform, "cisco 1601"),
            ev(
                K::CdpSoftwareVersion,
                "Cisco Internetwork Operating System Software \nIOS (tm) 1600 Software (C1600-NY-L), Version 11.2(12)P, RELEASE SOFTWARE (fc1)",
            ),
            ev(K::CdpCapabilities, "router"),
        ];
        let id = identify(&e, &sigs());
        assert_eq!(id.vendor.unwrap().value, "Cisco");
        assert_eq!(id.model.unwrap().value, "1601");
        assert_eq!(id.category.value, Category::NetworkGear);
        let os = id.os.unwrap().value;
        assert_eq!(
            (os.name.as_str(), os.version.as_deref()),
            ("Cisco IOS", Some("11.2(12)P"))
        );
        assert!(os.eol);
        // pcaps/corpus/generic/zeek_lldp.pcap.
        let e = vec![
            ev(K::LldpSystemName, "SMCGS8P-Smart"),
            ev(
                K::LldpSystemDescription,
                "SMCGS8P-Smart - SMCGS8P-Smart v3.20",
            ),
            ev(K::LldpCapabilities, "bridge"),
            ev(K::Oui, "SMC Networks Inc."),
        ];
        let id = identify(&e, &sigs());
        assert_eq!(id.vendor.unwrap().value, "SMC Networks");
        assert_eq!(id.model.unwrap().value, "SMCGS8P-Smart");
        assert_eq!(id.category.value, Category::NetworkGear);
    }

    #[test]
    fn two_weak_kinds_that_agree_beat_one_that_disagrees() {
        use crate::fingerprint::signatures::Signatures;
        let s = Signatures::from_sources([(
            "t.toml".to_string(),
            "[resolution]\ncorroboration_bonus = 20\nmax_corroboration_bonus = 20\n\
             conflict_penalty_percent = 50\nmin_confidence = 1\n\
             [weights]\noui = 40\ndhcp_vendor_class = 40\nhttp_user_agent = 50\n\
             [[rule]]\nid = \"a\"\nkind = \"oui\"\nequals = \"x\"\nvendor = \"Acme\"\n\
             [[rule]]\nid = \"b\"\nkind = \"dhcp_vendor_class\"\nequals = \"x\"\nvendor = \"ACME\"\n\
             [[rule]]\nid = \"c\"\nkind = \"http_user_agent\"\nequals = \"x\"\nvendor = \"Other\"\n"
                .to_string(),
        )])
        .unwrap();
        let e = vec![
            ev(K::HttpUserAgent, "x"),
            ev(K::Oui, "x"),
            ev(K::DhcpVendorClass, "x"),
        ];
        let id = identify(&e, &s);
        let v = id.vendor.unwrap();
        // Case-insensitive group {Acme, ACME}: 40 + 20 = 60 beats 50; display of the
        // tie-broken best claim ("ACME" < "Acme").
        assert_eq!(v.value, "ACME");
        assert_eq!(v.confidence, 60 - 25);
        assert_eq!(v.decided_by.len(), 2);
    }

    /// A shared match cache gives what identification without one gives, across devices and
    /// across signature sets (a new set is never answered from the old one's entries).
    #[test]
    fn match_cache_changes_nothing() {
        let set = |vendor: &str| {
            Signatures::from_sources([(
                "t.toml".to_string(),
                format!(
                    "[weights]\noui = 40\n[[rule]]\nid = \"a\"\nkind = \"oui\"\n\
                     regex = \"^(x+)$\"\nvendor = \"{vendor} $1\"\n"
                ),
            )])
            .unwrap()
        };
        let (a, b) = (set("Acme"), set("Other"));
        let mut cache = MatchCache::new();
        let cached = |e: &[Evidence], s: &Signatures, cache: &mut MatchCache| {
            identify_cached(
                e.iter().map(|e| (e.kind, e.value.as_str(), e.confidence)),
                s,
                cache,
            )
        };
        for s in [&a, &b, &a] {
            for v in ["x", "xx", "y", "x"] {
                let e = [ev(K::Oui, v)];
                assert_eq!(cached(&e, s, &mut cache), identify(&e, s), "{v}");
            }
        }
        let e = [ev(K::Oui, "xx")];
        assert_eq!(cached(&e, &b, &mut cache).vendor.unwrap().value, "Other xx");
        let shipped = sigs();
        for e in [ct_evidence(), ct_evidence()[..3].to_vec()] {
            assert_eq!(cached(&e, &shipped, &mut cache), identify(&e, &shipped));
        }
    }
}
