//! The device table: every device seen, what it said about itself, and what it is.
//!
//! **Keys.** A device is keyed by its MAC address. A MAC seen as the source of more than
//! [`ROUTER_MIN_IPV4`] distinct IPv4 addresses (or [`ROUTER_MIN_IPV6`] distinct non-link-local
//! IPv6 addresses) is a router's: traffic routed through it carries its MAC and the addresses of
//! the hosts behind it. From then on, observations with that MAC are attributed by IP address
//! instead, to a device keyed `ip:<address>`, but only for *local* addresses (RFC 1918,
//! 100.64/10 shared space, link-local, IPv6 ULA): a remote internet host is a peer, not a device
//! of the hospital's network. Evidence gathered for the router's MAC before it was recognised
//! stays with it (a documented limitation: the first few hosts' evidence may be mixed into
//! the router's). Frames with no MAC (raw-IP captures) are attributed the same way: to the
//! device that last had the IP, else to an `ip:` device for a local address.
//!
//! **Bounds.** At most `max_devices` devices ([`crate::limits::Limits::max_devices`]; new
//! ones are not added, each counted once in `medtap_devices_dropped_total` while the last
//! [`MAX_DROPPED_KEYS`] dropped keys are remembered), and per device at most [`MAX_IPS`]
//! addresses, [`MAX_HOSTNAMES`] host names, [`MAX_PROTOCOLS`] protocols, [`MAX_PEERS`] peers,
//! [`MAX_EVIDENCE`] distinct evidence values and [`MAX_EVIDENCE_PER_KIND`] of one kind (each
//! overflow counted on the device). What one device costs is measured in the README ("Memory
//! per device").
//!
//! **Times** are packet times (microseconds), so replay and live agree.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use medtap_parsers::oui;
use serde::{Deserialize, Serialize};

use crate::fingerprint::identify::{identify_shared_known, MatchCache};
use crate::fingerprint::{
    extract, Category, Decided, Evidence, EvidenceKind, EvidenceRef, Identification, OsInfo,
    Signatures, Source,
};
use crate::flow::FlowMeta;
use crate::output::{push_array, push_ip, push_json_str, push_u64};
use crate::time::Ts;

/// Distinct IPv4 source addresses after which a MAC is taken for a router's.
pub const ROUTER_MIN_IPV4: usize = 8;
/// Distinct non-link-local IPv6 source addresses after which a MAC is taken for a router's
/// (hosts have several: SLAAC, temporary, DHCPv6).
pub const ROUTER_MIN_IPV6: usize = 16;
/// Addresses kept per device (the most recently seen win).
pub const MAX_IPS: usize = 32;
pub const MAX_HOSTNAMES: usize = 16;
pub const MAX_PROTOCOLS: usize = 64;
/// Up to this many protocols, a device's are scanned rather than searched in order.
const SCAN_PROTOCOLS: usize = 8;
/// Peers counted one by one per device (the first ones seen; the view lists the
/// [`PEERS_SHOWN`] most active of them and the total count). 256 made a busy server cost
/// about 20 KiB more than a quiet host; the behaviour baseline keeps its own peer list
/// ([`crate::detect::anomaly::MAX_PEERS_PER_DEVICE`]).
pub const MAX_PEERS: usize = 64;
/// Distinct evidence values per device.
pub const MAX_EVIDENCE: usize = 64;
/// Distinct values of one evidence kind per device (a host cycling User-Agents or JA4s cannot
/// crowd out the rest).
pub const MAX_EVIDENCE_PER_KIND: usize = 8;
/// Room for evidence values a device's list starts with: nine devices in ten end up with at
/// least this many (bench sub-capture: 1,954 devices, 5% with fewer than 5, median 11), so
/// starting there saves reallocations and hardly ever memory.
pub const MIN_EVIDENCE_ROOM: usize = 6;
/// Distinct evidence values turned away that a device counts (`overflow.evidence` stops there).
pub const MAX_REJECTED_TRACKED: usize = 32;
/// MAC prefixes whose vendor evidence is remembered (a new device of a known maker does not
/// search the OUI registry again); when full it starts again empty.
pub const MAX_OUI_PREFIXES: usize = 4096;
/// Identifications whose JSON text a [`DeviceTable`] keeps for `device` events (devices
/// identified alike share one `Arc<Identification>`, and its text was half of each event);
/// when full it starts again empty. At most about 1 KiB of text each.
pub const IDENT_JSON_CACHED: usize = 256;
/// Keys of devices not added because the table was full, remembered so that each is counted
/// once (cleared when full: a device may then be counted again).
pub const MAX_DROPPED_KEYS: usize = 4096;

/// Evidence kinds whose value is a host name.
const HOSTNAME_KINDS: &[EvidenceKind] = &[
    EvidenceKind::DhcpHostname,
    EvidenceKind::DhcpFqdn,
    EvidenceKind::MdnsHostname,
    EvidenceKind::NetbiosName,
    EvidenceKind::LldpSystemName,
    EvidenceKind::CdpDeviceId,
];

/// An address and when it was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddrSeen {
    pub ip: IpAddr,
    pub first_seen: i64,
    pub last_seen: i64,
    /// The table's address index gives this device for the address ([`DeviceTable::index_ip`]).
    #[serde(skip)]
    pub indexed: Indexed,
}

/// Whether [`DeviceTable`]'s `by_ip` is known to give the device an address is in for it
/// (false: not known; kept true only while it does). Not part of the address: equal whatever
/// it holds. In what was padding.
#[derive(Debug, Clone, Copy, Default)]
pub struct Indexed(bool);

impl PartialEq for Indexed {
    fn eq(&self, _: &Indexed) -> bool {
        true
    }
}

impl Eq for Indexed {}

const _: () = assert!(std::mem::size_of::<AddrSeen>() == 40);

/// One distinct evidence value and when it was first seen. (No last-seen time or count:
/// workers skip repeats of packet evidence ([`crate::fingerprint::tap`]), so those would
/// depend on how packets were spread over workers; the first sighting does not.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceSeen {
    pub kind: EvidenceKind,
    pub value: String,
    pub source: Source,
    pub confidence: u8,
    pub first_seen: i64,
    /// Whether a signature rule claims something from the value, as last asked of the match
    /// cache (each identification of the device asked it for every value again).
    #[serde(skip)]
    pub claims: ClaimsMemo,
    /// A byte of the value's hash, so that finding a value among its kind's compares few
    /// values (each one a pointer to follow) ([`Device::add_evidence_at`]).
    #[serde(skip)]
    pub tag: ValueTag,
}

// Four one-byte fields next to the 28 bytes of value and time: the tag fits in what was padding.
const _: () = assert!(std::mem::size_of::<EvidenceSeen>() == 40);
const _: () = assert!(std::mem::size_of::<ProtoKey>() == 24);

/// One byte of an evidence value's hash, never 0; 0 (a value read from the store before
/// [`DeviceTable::load`] tagged it): not known. Not part of the value: equal whatever it holds.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValueTag(u8);

impl ValueTag {
    pub fn of(value: &str) -> ValueTag {
        let h = ahash::RandomState::with_seeds(0x7461, 0x6776, 0x616c, 0x7565).hash_one(value);
        ValueTag(((h >> 56) as u8).max(1))
    }

    /// Whether a value tagged `self` may be one tagged `other`.
    fn may_be(self, other: ValueTag) -> bool {
        self.0 == other.0 || self.0 == 0
    }
}

impl PartialEq for ValueTag {
    fn eq(&self, _: &ValueTag) -> bool {
        true
    }
}

impl Eq for ValueTag {}

/// [`MatchCache::claims`] of one evidence value, remembered with the signature set it was
/// asked with (30 bits of [`Signatures::serial`]; 0: not asked). Not part of the value: equal
/// whatever it holds. Four bytes, so that [`EvidenceSeen`] stays 40.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClaimsMemo(u32);

impl ClaimsMemo {
    fn tag(serial: u64) -> u32 {
        ((serial as u32) & 0x3fff_ffff) << 2 | 1
    }

    /// The remembered answer, if it was given for the set of `serial`.
    pub fn get(self, serial: u64) -> Option<bool> {
        (self.0 & !2 == Self::tag(serial)).then_some(self.0 & 2 != 0)
    }

    pub fn new(serial: u64, claims: bool) -> ClaimsMemo {
        ClaimsMemo(Self::tag(serial) | u32::from(claims) << 1)
    }
}

impl PartialEq for ClaimsMemo {
    fn eq(&self, _: &ClaimsMemo) -> bool {
        true
    }
}

impl Eq for ClaimsMemo {}

/// A protocol name as a device's `protocols` map keys it (see [`protocol_name`]). A name of
/// up to [`PROTO_KEY_INLINE`] bytes (every name [`protocol_name`] gives: at most 15) is held in
/// the key itself, zero-padded, so that finding a flow's protocol compares bytes in the map's
/// node instead of following each key's pointer to its own small allocation (on a device not
/// touched for a while, a cache miss per key compared), and a device's new protocol allocates
/// nothing. Longer names (only from a state stored by another version) are kept on the heap.
/// Ordered, shown and stored as the name.
#[derive(Clone, PartialEq, Eq)]
pub enum ProtoKey {
    Inline {
        len: u8,
        bytes: [u8; PROTO_KEY_INLINE],
    },
    Heap(Box<str>),
}

/// The longest protocol name a [`ProtoKey`] holds in itself.
pub const PROTO_KEY_INLINE: usize = 22;

impl ProtoKey {
    pub fn new(name: &str) -> ProtoKey {
        let n = name.len();
        if n <= PROTO_KEY_INLINE {
            let mut bytes = [0; PROTO_KEY_INLINE];
            bytes[..n].copy_from_slice(name.as_bytes());
            ProtoKey::Inline {
                len: n as u8,
                bytes,
            }
        } else {
            ProtoKey::Heap(name.into())
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ProtoKey::Inline { len, bytes } => {
                // Made from a `&str` cut at its length: valid UTF-8.
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            ProtoKey::Heap(s) => s,
        }
    }
}

impl Ord for ProtoKey {
    fn cmp(&self, other: &ProtoKey) -> std::cmp::Ordering {
        match (self, other) {
            // Zero-padded names compare as the names do once equal padded ones are ordered by
            // length (a name is a prefix of the longer one then): without a memcmp call.
            (ProtoKey::Inline { len: a, bytes: x }, ProtoKey::Inline { len: b, bytes: y }) => {
                let hi = |v: &[u8; PROTO_KEY_INLINE]| {
                    let mut w = [0; 16];
                    w.copy_from_slice(&v[..16]);
                    u128::from_be_bytes(w)
                };
                let lo = |v: &[u8; PROTO_KEY_INLINE]| {
                    let mut w = [0; 8];
                    w[..PROTO_KEY_INLINE - 16].copy_from_slice(&v[16..]);
                    u64::from_be_bytes(w)
                };
                (hi(x), lo(x), a).cmp(&(hi(y), lo(y), b))
            }
            _ => self.as_str().cmp(other.as_str()),
        }
    }
}

impl PartialOrd for ProtoKey {
    fn partial_cmp(&self, other: &ProtoKey) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::borrow::Borrow<str> for ProtoKey {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for ProtoKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

impl Serialize for ProtoKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ProtoKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ProtoKey, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(ProtoKey::new(&s))
    }
}

/// Flows a device took part in with one protocol, by role.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleCounts {
    pub client: u64,
    pub server: u64,
}

/// Aggregate counts of the traffic with one peer (or in total).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerCounts {
    pub flows: u64,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

impl PeerCounts {
    fn add(&mut self, sent: (u64, u64), received: (u64, u64)) {
        self.flows += 1;
        self.packets_sent += sent.0;
        self.bytes_sent += sent.1;
        self.packets_received += received.0;
        self.bytes_received += received.1;
    }
}

/// What was dropped at a per-device cap.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overflow {
    pub ips: u64,
    pub hostnames: u64,
    pub protocols: u64,
    pub peers: u64,
    /// Distinct evidence values turned away (counted up to [`MAX_REJECTED_TRACKED`]).
    pub evidence: u64,
}

impl Overflow {
    fn is_zero(&self) -> bool {
        *self == Overflow::default()
    }
}

/// One device: what is kept (and persisted). The identification is derived from `evidence`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// `mac:aa:bb:cc:dd:ee:ff` or `ip:10.1.2.3`.
    pub key: String,
    pub mac: Option<String>,
    /// The MAC is a router's (see the module documentation).
    pub router: bool,
    pub ips: Vec<AddrSeen>,
    pub hostnames: BTreeSet<String>,
    pub first_seen: i64,
    pub last_seen: i64,
    /// Protocol name (`dicom`, `hl7`, `tls`, ..., or `tcp/8080` when not identified) → flows
    /// by role.
    pub protocols: BTreeMap<ProtoKey, RoleCounts>,
    /// Peer address → aggregate counts.
    pub peers: BTreeMap<IpAddr, PeerCounts>,
    /// All flows together.
    pub totals: PeerCounts,
    pub evidence: Vec<EvidenceSeen>,
    #[serde(default)]
    pub overflow: Overflow,
    /// Derived from `evidence`; recomputed when it changes (once per batch of observations,
    /// see [`DeviceTable::take_changes`]) and on load.
    #[serde(skip)]
    pub ident: Option<std::sync::Arc<Identification>>,
    /// New evidence since the identification was computed.
    #[serde(skip)]
    stale_ident: Option<i64>,
    /// Hashes of the distinct evidence values turned away at a cap (at most
    /// [`MAX_REJECTED_TRACKED`]), so that `overflow.evidence` counts values, not sightings
    /// (how often a value is seen again depends on how packets were spread over workers).
    #[serde(skip)]
    rejected: Vec<u64>,
    /// Some of it is claimed by a rule (else identifying again would give the same result).
    #[serde(skip)]
    stale_claims: bool,
}

impl Device {
    /// `mac`: as [`oui::format_mac`] writes it.
    fn new(key: String, mac: Option<String>, ts: i64) -> Device {
        Device {
            key,
            mac,
            router: false,
            ips: Vec::new(),
            hostnames: BTreeSet::new(),
            first_seen: ts,
            last_seen: ts,
            protocols: BTreeMap::new(),
            peers: BTreeMap::new(),
            totals: PeerCounts::default(),
            evidence: Vec::new(),
            overflow: Overflow::default(),
            ident: None,
            stale_ident: None,
            rejected: Vec::new(),
            stale_claims: false,
        }
    }

    fn seen(&mut self, ts: i64) {
        if ts < self.first_seen {
            self.first_seen = ts;
            // The MAC's own evidence (OUI) was there as soon as the device was.
            for e in self
                .evidence
                .iter_mut()
                .filter(|e| e.source == Source::Ethernet)
            {
                e.first_seen = e.first_seen.min(ts);
            }
        }
        self.last_seen = self.last_seen.max(ts);
    }

    /// Record an address; true if it is new to the device.
    fn add_ip(&mut self, ip: IpAddr, ts: i64) -> bool {
        self.note_ip(ip, ts).0
    }

    /// [`Device::add_ip`], and whether the table's address index is known to give this device
    /// for the address (see [`AddrSeen::indexed`]).
    fn note_ip(&mut self, ip: IpAddr, ts: i64) -> (bool, bool) {
        if let Some(a) = self.ips.iter_mut().find(|a| a.ip == ip) {
            a.first_seen = a.first_seen.min(ts);
            a.last_seen = a.last_seen.max(ts);
            return (false, a.indexed.0);
        }
        if self.ips.len() >= MAX_IPS {
            // Keep the most recently seen.
            self.overflow.ips += 1;
            let (i, oldest) = self
                .ips
                .iter()
                .enumerate()
                .min_by_key(|(_, a)| a.last_seen)
                .map(|(i, a)| (i, a.last_seen))
                .unwrap_or((0, i64::MIN));
            if oldest > ts {
                return (false, false);
            }
            self.ips.remove(i);
        }
        self.ips.push(AddrSeen {
            ip,
            first_seen: ts,
            last_seen: ts,
            indexed: Indexed(false),
        });
        self.ips.sort_by_key(|a| a.ip);
        (true, false)
    }

    fn distinct_source_ips(&self) -> (usize, usize) {
        let v4 = self.ips.iter().filter(|a| a.ip.is_ipv4()).count();
        let v6 = self
            .ips
            .iter()
            .filter(|a| matches!(a.ip, IpAddr::V6(v) if !v.is_unicast_link_local()))
            .count();
        (v4, v6)
    }

    /// Merge evidence; true if a (kind, value) is new (the identification may change).
    #[cfg(test)]
    fn add_evidence(&mut self, e: &Evidence, ts: i64) -> bool {
        self.add_evidence_at(&mut e.clone(), ts).is_some()
    }

    /// [`Device::add_evidence`], giving where the new (or more confident) value is in the list.
    /// A new value is moved out of `e` (left empty) when its string is exactly its size (as a
    /// worker makes it): the list keeps the observation's copy instead of making another (an
    /// allocation and a copy here, a free on the worker).
    fn add_evidence_at(&mut self, e: &mut Evidence, ts: i64) -> Option<usize> {
        // The list is sorted by (kind, value) without repeats (see `DeviceTable::load`). The
        // kind's values are found comparing kinds only (in the list itself), then the value
        // among them by its tag: a value's text is read (a pointer followed, often a cache
        // miss) only when its tag matches, most often the one value that is equal.
        let tag = ValueTag::of(&e.value);
        let lo = self.evidence.partition_point(|s| s.kind < e.kind);
        let run = self.evidence[lo..]
            .iter()
            .take_while(|s| s.kind == e.kind)
            .count();
        if let Some((i, s)) = self.evidence[lo..lo + run]
            .iter_mut()
            .enumerate()
            .find(|(_, s)| s.tag.may_be(tag) && s.value == e.value)
        {
            s.first_seen = s.first_seen.min(ts);
            if e.confidence > s.confidence {
                s.confidence = e.confidence;
                return Some(lo + i);
            }
            return None;
        }
        if self.evidence.len() >= MAX_EVIDENCE || run >= MAX_EVIDENCE_PER_KIND {
            let h = {
                use std::hash::{Hash, Hasher};
                let mut s = std::hash::DefaultHasher::new();
                (e.kind, &e.value).hash(&mut s);
                s.finish()
            };
            if self.rejected.len() < MAX_REJECTED_TRACKED && !self.rejected.contains(&h) {
                self.rejected.push(h);
                self.overflow.evidence += 1;
            }
            return None;
        }
        // Grown one at a time (a device gains few values, rarely): doubling left a quarter of
        // the list empty on average, in every device. To the end of the allocator's size
        // class, though: that room is there anyway, and each growth is a `realloc`.
        // Kept sorted by (kind, value) (see `DeviceTable::load`): inserted in its place.
        let at = lo
            + self.evidence[lo..lo + run].partition_point(|s| s.value.as_str() < e.value.as_str());
        if self.evidence.len() == self.evidence.capacity() {
            let n = self.evidence.len();
            let want = fill_size_class::<EvidenceSeen>((n + 1).max(MIN_EVIDENCE_ROOM));
            self.evidence.reserve_exact(want - n);
        }
        let value = if e.value.capacity() == e.value.len() {
            std::mem::take(&mut e.value)
        } else {
            e.value.clone()
        };
        self.evidence.insert(
            at,
            EvidenceSeen {
                kind: e.kind,
                value,
                source: e.source,
                confidence: e.confidence,
                first_seen: ts,
                claims: ClaimsMemo::default(),
                tag,
            },
        );
        if HOSTNAME_KINDS.contains(&e.kind) {
            let value = &self.evidence[at].value;
            if self.hostnames.len() < MAX_HOSTNAMES {
                self.hostnames.insert(value.clone());
            } else if !self.hostnames.contains(value) {
                self.overflow.hostnames += 1;
            }
        }
        Some(at)
    }

    fn add_protocol(&mut self, name: &str, server: bool) {
        // A device speaks few protocols: then a scan comparing keys for equality (the
        // name's bytes in the key) beats the ordered search.
        let key = ProtoKey::new(name);
        let known = if self.protocols.len() <= SCAN_PROTOCOLS {
            self.protocols
                .iter_mut()
                .find(|(k, _)| **k == key)
                .map(|(_, r)| r)
        } else {
            self.protocols.get_mut(&key)
        };
        let r = match known {
            Some(r) => r,
            None => {
                if self.protocols.len() >= MAX_PROTOCOLS {
                    self.overflow.protocols += 1;
                    return;
                }
                self.protocols.entry(key).or_default()
            }
        };
        if server {
            r.server += 1;
        } else {
            r.client += 1;
        }
    }

    fn add_peer(&mut self, peer: IpAddr, sent: (u64, u64), received: (u64, u64)) {
        self.totals.add(sent, received);
        // One search of the map: full, only a known peer is counted.
        if self.peers.len() >= MAX_PEERS {
            match self.peers.get_mut(&peer) {
                Some(c) => c.add(sent, received),
                None => self.overflow.peers += 1,
            }
            return;
        }
        self.peers.entry(peer).or_default().add(sent, received);
    }

    /// Recompute the identification; true if it changed.
    pub fn reidentify(&mut self, sigs: &Signatures, cache: &mut MatchCache) -> bool {
        // Which values rules claim something from: asked once per value (and signature set),
        // not at every identification.
        let serial = sigs.serial();
        for e in &mut self.evidence {
            if e.claims.get(serial).is_none() && !e.value.is_empty() {
                e.claims = ClaimsMemo::new(serial, cache.claims(e.kind, &e.value, sigs));
            }
        }
        let id = identify_shared_known(
            self.evidence
                .iter()
                .map(|e| (e.kind, e.value.as_str(), e.confidence, e.claims.get(serial))),
            sigs,
            cache,
        );
        let changed = self.ident.as_deref() != Some(&*id);
        self.ident = Some(id);
        changed
    }

    pub fn category(&self) -> Category {
        self.ident
            .as_ref()
            .map_or(Category::Unknown, |i| i.category.value)
    }

    pub fn eol_os(&self) -> bool {
        self.ident.as_ref().is_some_and(|i| i.eol_os())
    }

    /// The JSON view (inventory file, API, `device` events). `with_evidence`: the evidence list
    /// itself; otherwise only the kinds present.
    pub fn view(&self, with_evidence: bool) -> DeviceView<'_> {
        let id = self.ident.as_deref();
        // The evidence is sorted by (kind, value): its kinds come in order, each in one run.
        let mut kinds: Vec<EvidenceKind> = Vec::with_capacity(self.evidence.len());
        for e in &self.evidence {
            if kinds.last() != Some(&e.kind) {
                kinds.push(e.kind);
            }
        }
        if !kinds.windows(2).all(|w| w[0] < w[1]) {
            // Not sorted after all (a device built elsewhere): as a set would have them.
            kinds.sort_unstable();
            kinds.dedup();
        }
        DeviceView {
            key: &self.key,
            mac: self.mac.as_deref(),
            ips: self.ips.iter().map(|a| a.ip).collect(),
            hostnames: &self.hostnames,
            vendor: id.and_then(|i| i.vendor.as_ref()).map(|d| d.value.as_str()),
            model: id.and_then(|i| i.model.as_ref()).map(|d| d.value.as_str()),
            os: id.and_then(|i| i.os.as_ref()).map(|d| &d.value),
            software: id
                .and_then(|i| i.software.as_ref())
                .map(|d| d.value.as_str()),
            category: self.category(),
            is_medical: self.category().is_medical(),
            confidence: id.map_or(0, |i| i.confidence),
            identification: id,
            identification_json: None,
            evidence_kinds: kinds,
            evidence: with_evidence.then(|| {
                self.evidence
                    .iter()
                    .map(|e| EvidenceView {
                        kind: e.kind,
                        value: &e.value,
                        source: e.source,
                        confidence: e.confidence,
                        first_seen: Ts(e.first_seen),
                    })
                    .collect()
            }),
            first_seen: Ts(self.first_seen),
            last_seen: Ts(self.last_seen),
            router: self.router,
            protocols: &self.protocols,
            peers: PeersView {
                count: self.peers.len() as u64 + self.overflow.peers,
                totals: &self.totals,
                top: {
                    let mut p: Vec<(&IpAddr, &PeerCounts)> = self.peers.iter().collect();
                    // Most flows first, then by address (a total order: addresses are
                    // unique): the first PEERS_SHOWN picked out before they are sorted.
                    let order = |a: &(&IpAddr, &PeerCounts), b: &(&IpAddr, &PeerCounts)| {
                        b.1.flows.cmp(&a.1.flows).then(a.0.cmp(b.0))
                    };
                    if p.len() > PEERS_SHOWN {
                        p.select_nth_unstable_by(PEERS_SHOWN, order);
                        p.truncate(PEERS_SHOWN);
                    }
                    p.sort_by(order);
                    p.into_iter()
                        .map(|(ip, c)| PeerView { ip, counts: c })
                        .collect()
                },
            },
            overflow: (!self.overflow.is_zero()).then_some(&self.overflow),
        }
    }
}

/// Peers listed in a device's view (the most active); `count` tells how many there are.
pub const PEERS_SHOWN: usize = 20;

#[derive(Serialize)]
pub struct EvidenceView<'a> {
    pub kind: EvidenceKind,
    pub value: &'a str,
    pub source: Source,
    pub confidence: u8,
    pub first_seen: Ts,
}

#[derive(Serialize)]
pub struct PeerView<'a> {
    pub ip: &'a IpAddr,
    #[serde(flatten)]
    pub counts: &'a PeerCounts,
}

#[derive(Serialize)]
pub struct PeersView<'a> {
    /// Distinct peers.
    pub count: u64,
    pub totals: &'a PeerCounts,
    pub top: Vec<PeerView<'a>>,
}

/// A device as the inventory file, the API and `device` events show it.
#[derive(Serialize)]
pub struct DeviceView<'a> {
    pub key: &'a str,
    pub mac: Option<&'a str>,
    pub ips: Vec<IpAddr>,
    pub hostnames: &'a BTreeSet<String>,
    pub vendor: Option<&'a str>,
    pub model: Option<&'a str>,
    pub os: Option<&'a crate::fingerprint::OsInfo>,
    pub software: Option<&'a str>,
    pub category: Category,
    pub is_medical: bool,
    pub confidence: u8,
    /// Each attribute with its confidence and the evidence (and signature rule) that decided it.
    pub identification: Option<&'a Identification>,
    /// `identification` as JSON already written ([`DeviceTable::event_view`]); `None`: written
    /// from `identification`.
    #[serde(skip)]
    pub identification_json: Option<&'a [u8]>,
    pub evidence_kinds: Vec<EvidenceKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Vec<EvidenceView<'a>>>,
    pub first_seen: Ts,
    pub last_seen: Ts,
    pub router: bool,
    pub protocols: &'a BTreeMap<ProtoKey, RoleCounts>,
    pub peers: PeersView<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overflow: Option<&'a Overflow>,
}

impl DeviceView<'_> {
    /// The JSON object, byte for byte as serde_json writes the derived `Serialize` (written by
    /// hand: serde_json's string escaping was most of the cost of a `device` event).
    pub fn write_json(&self, b: &mut Vec<u8>) {
        b.push(b'{');
        self.write_json_fields(b);
        b.push(b'}');
    }

    /// [`DeviceView::write_json`] without the braces, for an object that adds fields before
    /// them (the `device` event's `change`, as `#[serde(flatten)]` would).
    pub fn write_json_fields(&self, b: &mut Vec<u8>) {
        b.extend_from_slice(b"\"key\":");
        push_json_str(b, self.key);
        b.extend_from_slice(b",\"mac\":");
        push_opt_str(b, self.mac);
        b.extend_from_slice(b",\"ips\":");
        push_array(b, &self.ips, |b, ip| {
            b.push(b'"');
            push_ip(b, *ip);
            b.push(b'"');
        });
        b.extend_from_slice(b",\"hostnames\":");
        push_array(b, self.hostnames, |b, h| push_json_str(b, h));
        b.extend_from_slice(b",\"vendor\":");
        push_opt_str(b, self.vendor);
        b.extend_from_slice(b",\"model\":");
        push_opt_str(b, self.model);
        b.extend_from_slice(b",\"os\":");
        match self.os {
            Some(os) => push_os(b, os),
            None => b.extend_from_slice(b"null"),
        }
        b.extend_from_slice(b",\"software\":");
        push_opt_str(b, self.software);
        b.extend_from_slice(b",\"category\":\"");
        b.extend_from_slice(self.category.as_str().as_bytes());
        b.extend_from_slice(b"\",\"is_medical\":");
        push_bool(b, self.is_medical);
        b.extend_from_slice(b",\"confidence\":");
        push_u64(b, u64::from(self.confidence));
        b.extend_from_slice(b",\"identification\":");
        match (self.identification_json, self.identification) {
            (Some(json), _) => b.extend_from_slice(json),
            (None, Some(id)) => push_identification(b, id),
            (None, None) => b.extend_from_slice(b"null"),
        }
        b.extend_from_slice(b",\"evidence_kinds\":");
        push_array(b, &self.evidence_kinds, |b, k| {
            b.push(b'"');
            b.extend_from_slice(k.as_str().as_bytes());
            b.push(b'"');
        });
        if let Some(ev) = &self.evidence {
            b.extend_from_slice(b",\"evidence\":");
            push_array(b, ev, |b, e| {
                b.extend_from_slice(b"{\"kind\":\"");
                b.extend_from_slice(e.kind.as_str().as_bytes());
                b.extend_from_slice(b"\",\"value\":");
                push_json_str(b, e.value);
                b.extend_from_slice(b",\"source\":\"");
                b.extend_from_slice(e.source.as_str().as_bytes());
                b.extend_from_slice(b"\",\"confidence\":");
                push_u64(b, u64::from(e.confidence));
                b.extend_from_slice(b",\"first_seen\":\"");
                b.extend_from_slice(&e.first_seen.rfc3339());
                b.extend_from_slice(b"\"}");
            });
        }
        b.extend_from_slice(b",\"first_seen\":\"");
        b.extend_from_slice(&self.first_seen.rfc3339());
        b.extend_from_slice(b"\",\"last_seen\":\"");
        b.extend_from_slice(&self.last_seen.rfc3339());
        b.extend_from_slice(b"\",\"router\":");
        push_bool(b, self.router);
        b.extend_from_slice(b",\"protocols\":{");
        for (i, (name, r)) in self.protocols.iter().enumerate() {
            if i > 0 {
                b.push(b',');
            }
            push_json_str(b, name.as_str());
            b.extend_from_slice(b":{\"client\":");
            push_u64(b, r.client);
            b.extend_from_slice(b",\"server\":");
            push_u64(b, r.server);
            b.push(b'}');
        }
        b.extend_from_slice(b"},\"peers\":{\"count\":");
        push_u64(b, self.peers.count);
        b.extend_from_slice(b",\"totals\":{");
        push_counts(b, self.peers.totals);
        b.extend_from_slice(b"},\"top\":");
        push_array(b, &self.peers.top, |b, p| {
            b.extend_from_slice(b"{\"ip\":\"");
            push_ip(b, *p.ip);
            b.extend_from_slice(b"\",");
            push_counts(b, p.counts);
            b.push(b'}');
        });
        b.push(b'}');
        if let Some(o) = self.overflow {
            b.extend_from_slice(b",\"overflow\":{\"ips\":");
            push_u64(b, o.ips);
            b.extend_from_slice(b",\"hostnames\":");
            push_u64(b, o.hostnames);
            b.extend_from_slice(b",\"protocols\":");
            push_u64(b, o.protocols);
            b.extend_from_slice(b",\"peers\":");
            push_u64(b, o.peers);
            b.extend_from_slice(b",\"evidence\":");
            push_u64(b, o.evidence);
            b.push(b'}');
        }
    }
}

fn push_bool(b: &mut Vec<u8>, v: bool) {
    b.extend_from_slice(if v { b"true" } else { b"false" });
}

fn push_opt_str(b: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => push_json_str(b, s),
        None => b.extend_from_slice(b"null"),
    }
}

/// The fields of a [`PeerCounts`] object, without the braces.
fn push_counts(b: &mut Vec<u8>, c: &PeerCounts) {
    b.extend_from_slice(b"\"flows\":");
    push_u64(b, c.flows);
    b.extend_from_slice(b",\"packets_sent\":");
    push_u64(b, c.packets_sent);
    b.extend_from_slice(b",\"packets_received\":");
    push_u64(b, c.packets_received);
    b.extend_from_slice(b",\"bytes_sent\":");
    push_u64(b, c.bytes_sent);
    b.extend_from_slice(b",\"bytes_received\":");
    push_u64(b, c.bytes_received);
}

fn push_os(b: &mut Vec<u8>, os: &OsInfo) {
    b.extend_from_slice(b"{\"name\":");
    push_json_str(b, &os.name);
    b.extend_from_slice(b",\"version\":");
    push_opt_str(b, os.version.as_deref());
    b.extend_from_slice(b",\"eol\":");
    push_bool(b, os.eol);
    b.push(b'}');
}

fn push_refs(b: &mut Vec<u8>, refs: &[EvidenceRef]) {
    push_array(b, refs, |b, r| {
        b.extend_from_slice(b"{\"kind\":\"");
        b.extend_from_slice(r.kind.as_str().as_bytes());
        b.extend_from_slice(b"\",\"value\":");
        push_json_str(b, &r.value);
        b.extend_from_slice(b",\"rule\":");
        push_json_str(b, &r.rule);
        b.push(b'}');
    });
}

/// A [`Decided`] object (`null` for none), its value written by `value`.
fn push_decided<T>(b: &mut Vec<u8>, d: Option<&Decided<T>>, value: impl FnOnce(&mut Vec<u8>, &T)) {
    let Some(d) = d else {
        b.extend_from_slice(b"null");
        return;
    };
    b.extend_from_slice(b"{\"value\":");
    value(b, &d.value);
    b.extend_from_slice(b",\"confidence\":");
    push_u64(b, u64::from(d.confidence));
    b.extend_from_slice(b",\"decided_by\":");
    push_refs(b, &d.decided_by);
    b.push(b'}');
}

fn push_identification(b: &mut Vec<u8>, id: &Identification) {
    let s = |b: &mut Vec<u8>, v: &String| push_json_str(b, v);
    b.extend_from_slice(b"{\"vendor\":");
    push_decided(b, id.vendor.as_ref(), s);
    b.extend_from_slice(b",\"model\":");
    push_decided(b, id.model.as_ref(), s);
    b.extend_from_slice(b",\"os\":");
    push_decided(b, id.os.as_ref(), push_os);
    b.extend_from_slice(b",\"software\":");
    push_decided(b, id.software.as_ref(), s);
    b.extend_from_slice(b",\"category\":");
    push_decided(b, Some(&id.category), |b, c: &Category| {
        b.push(b'"');
        b.extend_from_slice(c.as_str().as_bytes());
        b.push(b'"');
    });
    b.extend_from_slice(b",\"confidence\":");
    push_u64(b, u64::from(id.confidence));
    b.extend_from_slice(b",\"decided_by\":");
    push_refs(b, &id.decided_by);
    b.push(b'}');
}

/// How many `T` fit in the allocator's size class of `n` of them: asking for that many takes
/// no more memory than `n` exactly. jemalloc's classes: 8, then 16-byte steps up to 128 bytes, then
/// four per doubling (160, 192, 224, 256, 320, ...); other allocators round up too.
fn fill_size_class<T>(n: usize) -> usize {
    let size = std::mem::size_of::<T>();
    let bytes = n.saturating_mul(size);
    if size == 0 || bytes == 0 || bytes > 1 << 20 {
        return n;
    }
    let step = if bytes <= 8 {
        8
    } else if bytes <= 128 {
        16
    } else {
        bytes.next_power_of_two() / 8
    };
    (bytes.div_ceil(step) * step / size).max(n)
}

/// Whether `ip` is a local (site) address: a device of the network rather than a remote peer.
pub fn is_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            a.is_private() || a.is_link_local() || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(a) => {
            a.is_unicast_link_local()
                || (a.segments()[0] & 0xfe00) == 0xfc00
                || a.to_ipv4_mapped().is_some_and(|v| is_local(&IpAddr::V4(v)))
        }
    }
}

/// An address a host can have as its own (not unspecified, multicast, broadcast, loopback).
fn is_host_ip(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            !(a.is_unspecified() || a.is_multicast() || a.is_broadcast() || a.is_loopback())
                && a.octets()[3] != 255
        }
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast() || a.is_loopback()),
    }
}

fn is_host_mac(mac: &[u8; 6]) -> bool {
    *mac != [0; 6] && mac[0] & 1 == 0
}

/// A MAC address as one integer (its bytes in order, little-endian), the key of
/// [`DeviceTable`]'s map of devices by MAC.
#[inline]
fn mac_key(mac: &[u8; 6]) -> u64 {
    let mut b = [0u8; 8];
    b[..6].copy_from_slice(mac);
    u64::from_le_bytes(b)
}

/// What changed in the table, for `device` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    New,
    Identification,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::New => "new",
            Change::Identification => "identification",
        }
    }
}

/// The key of a device not added (table full).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum DropKey {
    Mac([u8; 6]),
    Ip(IpAddr),
}

/// The table.
pub struct DeviceTable {
    devices: Vec<Device>,
    /// Devices keyed by MAC, and devices keyed by address (`ip:` keys).
    /// (By [`mac_key`]: one word to hash, not an array's length and bytes.)
    by_mac: HashMap<u64, usize, ahash::RandomState>,
    by_ip_key: HashMap<IpAddr, usize, ahash::RandomState>,
    /// The device that last had each address.
    by_ip: HashMap<IpAddr, usize, ahash::RandomState>,
    max_devices: usize,
    /// New devices not created because the table was full (each counted once, see
    /// [`MAX_DROPPED_KEYS`]).
    pub dropped: u64,
    dropped_keys: HashSet<DropKey>,
    /// Devices changed since the last [`DeviceTable::take_dirty`] (persistence): a flag per
    /// device and the list of flagged ones.
    dirty_flag: Vec<bool>,
    dirty: Vec<usize>,
    /// Devices with new evidence, to identify again at the end of the batch.
    stale: Vec<usize>,
    /// Devices new or re-identified since the last [`DeviceTable::take_changes`] (events).
    changes: BTreeMap<usize, (Change, i64)>,
    /// Rule matches by evidence value, shared by all identifications.
    matches: MatchCache,
    /// The evidence of a MAC ([`extract::from_mac`]) by 24-bit prefix, for the prefixes it is
    /// the same for every address of ([`oui::prefix_is_uniform`]).
    oui_prefixes: HashMap<[u8; 3], Vec<Evidence>, ahash::RandomState>,
    /// The JSON of recently shown identifications, by the address of their shared copy (held
    /// here, so the address is not reused while the entry lives); see [`IDENT_JSON_CACHED`].
    ident_json: IdentJson,
}

type IdentJson = HashMap<usize, (Arc<Identification>, Box<[u8]>), ahash::RandomState>;

impl DeviceTable {
    pub fn new(max_devices: usize) -> DeviceTable {
        DeviceTable {
            devices: Vec::new(),
            by_mac: HashMap::default(),
            by_ip_key: HashMap::default(),
            by_ip: HashMap::default(),
            max_devices,
            dropped: 0,
            dropped_keys: HashSet::new(),
            dirty_flag: Vec::new(),
            dirty: Vec::new(),
            stale: Vec::new(),
            changes: BTreeMap::new(),
            matches: MatchCache::new(),
            oui_prefixes: HashMap::default(),
            ident_json: HashMap::default(),
        }
    }

    /// Restore devices read from the store (identification recomputed, no events).
    pub fn load(&mut self, devices: Vec<Device>, sigs: &Signatures) {
        for mut d in devices {
            if self.devices.len() >= self.max_devices {
                self.dropped += 1;
                continue;
            }
            // The evidence list is kept sorted by (kind, value) (as it is stored).
            d.evidence
                .sort_by(|a, b| (a.kind, &a.value).cmp(&(b.kind, &b.value)));
            for e in &mut d.evidence {
                e.tag = ValueTag::of(&e.value);
            }
            d.reidentify(sigs, &mut self.matches);
            let i = self.devices.len();
            if let Some(m) = d
                .key
                .strip_prefix("mac:")
                .and_then(|m| oui::parse_mac(m).ok())
            {
                self.by_mac.insert(mac_key(&m), i);
            } else if let Some(ip) = d.key.strip_prefix("ip:").and_then(|a| a.parse().ok()) {
                self.by_ip_key.insert(ip, i);
            } else {
                tracing::warn!(device = %d.key, "state: stored device with an unknown key skipped");
                continue;
            }
            for a in &d.ips {
                self.by_ip.insert(a.ip, i);
            }
            self.devices.push(d);
            self.dirty_flag.push(false);
        }
    }

    /// After the signatures were reloaded (SIGHUP): identify every device again; the ones
    /// whose identification changed get a `device` event (change "identification") at `ts`.
    pub fn reidentify_all(&mut self, ts: i64, sigs: &Signatures) {
        for (i, d) in self.devices.iter_mut().enumerate() {
            if d.reidentify(sigs, &mut self.matches) {
                self.changes
                    .entry(i)
                    .or_insert((Change::Identification, ts));
                if !self.dirty_flag[i] {
                    self.dirty_flag[i] = true;
                    self.dirty.push(i);
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    pub fn get(&self, i: usize) -> &Device {
        &self.devices[i]
    }

    /// Device `i` as a `device` event shows it ([`Device::view`] without evidence), its
    /// identification's JSON written once for all the devices that share it.
    pub fn event_view(&mut self, i: usize) -> DeviceView<'_> {
        let d = &self.devices[i];
        let json = d.ident.as_ref().map(|id| {
            let k = Arc::as_ptr(id) as usize;
            if !self.ident_json.contains_key(&k) {
                if self.ident_json.len() >= IDENT_JSON_CACHED {
                    self.ident_json.clear();
                }
                let mut b = Vec::with_capacity(1024);
                push_identification(&mut b, id);
                self.ident_json
                    .insert(k, (id.clone(), b.into_boxed_slice()));
            }
            k
        });
        let mut v = d.view(false);
        v.identification_json = json
            .and_then(|k| self.ident_json.get(&k))
            .map(|(_, b)| &**b);
        v
    }

    /// Devices changed since the last call (to persist), in index order.
    pub fn take_dirty(&mut self) -> Vec<usize> {
        let mut v = std::mem::take(&mut self.dirty);
        for &i in &v {
            self.dirty_flag[i] = false;
        }
        v.sort_unstable();
        v
    }

    /// Identify again the devices that got new evidence (once per batch of observations:
    /// identification runs every rule over all of a device's evidence).
    pub fn settle(&mut self, sigs: &Signatures) {
        for i in std::mem::take(&mut self.stale) {
            let d = &mut self.devices[i];
            let Some(ts) = d.stale_ident.take() else {
                continue;
            };
            if !std::mem::take(&mut d.stale_claims) {
                continue;
            }
            if d.reidentify(sigs, &mut self.matches) {
                self.changes
                    .entry(i)
                    .or_insert((Change::Identification, ts));
            }
        }
    }

    /// Devices new or re-identified since the last call, with the packet time of the change
    /// (identifications brought up to date first).
    pub fn take_changes(&mut self, sigs: &Signatures) -> Vec<(usize, Change, i64)> {
        self.settle(sigs);
        self.take_changes_unsettled()
    }

    /// Devices new or re-identified since the last call, without identifying first (the
    /// caller settles at points of its own: [`super::order`]).
    pub fn take_changes_unsettled(&mut self) -> Vec<(usize, Change, i64)> {
        std::mem::take(&mut self.changes)
            .into_iter()
            .map(|(i, (c, ts))| (i, c, ts))
            .collect()
    }

    #[inline]
    fn touch(&mut self, i: usize) {
        if !self.dirty_flag[i] {
            self.dirty_flag[i] = true;
            self.dirty.push(i);
        }
    }

    fn create(
        &mut self,
        mac: Option<[u8; 6]>,
        ip: Option<IpAddr>,
        ts: i64,
        sigs: &Signatures,
    ) -> Option<usize> {
        if self.devices.len() >= self.max_devices {
            let k = match (mac, ip) {
                (Some(m), _) => DropKey::Mac(m),
                (None, Some(ip)) => DropKey::Ip(ip),
                (None, None) => return None,
            };
            if self.dropped_keys.len() >= MAX_DROPPED_KEYS {
                self.dropped_keys.clear();
            }
            if self.dropped_keys.insert(k) {
                self.dropped += 1;
            }
            return None;
        }
        // The MAC's text made once, for the key and the field.
        let mac_text = mac.map(|m| oui::format_mac(&m));
        let key = match (&mac_text, ip) {
            (Some(m), _) => ["mac:", m.as_str()].concat(),
            (None, Some(ip)) => format!("ip:{ip}"),
            (None, None) => return None,
        };
        let mut d = Device::new(key, mac_text, ts);
        if let Some(m) = mac {
            for mut e in self.mac_evidence(&m) {
                d.add_evidence_at(&mut e, ts);
            }
        }
        d.reidentify(sigs, &mut self.matches);
        let i = self.devices.len();
        self.devices.push(d);
        self.dirty_flag.push(false);
        match (mac, ip) {
            (Some(m), _) => self.by_mac.insert(mac_key(&m), i),
            (None, Some(ip)) => self.by_ip_key.insert(ip, i),
            (None, None) => None,
        };
        self.changes.insert(i, (Change::New, ts));
        self.touch(i);
        Some(i)
    }

    /// [`extract::from_mac`], remembered by prefix where that is the same answer.
    fn mac_evidence(&mut self, m: &[u8; 6]) -> Vec<Evidence> {
        if oui::mac_kind(m) != oui::MacKind::Universal {
            return extract::from_mac(m);
        }
        let p = [m[0], m[1], m[2]];
        if let Some(v) = self.oui_prefixes.get(&p) {
            return v.clone();
        }
        let v = extract::from_mac(m);
        if oui::prefix_is_uniform(m) {
            if self.oui_prefixes.len() >= MAX_OUI_PREFIXES {
                self.oui_prefixes.clear();
            }
            self.oui_prefixes.insert(p, v.clone());
        }
        v
    }

    /// The device of the host at (`mac`, `ip`), created if `create` and there is room.
    pub fn resolve(
        &mut self,
        mac: [u8; 6],
        ip: Option<IpAddr>,
        ts: i64,
        create: bool,
        sigs: &Signatures,
    ) -> Option<usize> {
        let ip = ip.filter(is_host_ip);
        if is_host_mac(&mac) {
            let i = match self.by_mac.get(&mac_key(&mac)) {
                Some(&i) => Some(i),
                // Table full: the host is left out (not tried again as an `ip:` device, which
                // would count it twice).
                None if create => Some(self.create(Some(mac), None, ts, sigs)?),
                None => None,
            };
            if let Some(i) = i {
                if !self.devices[i].router {
                    self.devices[i].seen(ts);
                    self.touch(i);
                    let Some(ip) = ip else { return Some(i) };
                    let (new, indexed) = self.devices[i].note_ip(ip, ts);
                    if new {
                        let (v4, v6) = self.devices[i].distinct_source_ips();
                        if v4 > ROUTER_MIN_IPV4 || v6 > ROUTER_MIN_IPV6 {
                            self.become_router(i, ts, sigs);
                        }
                    }
                    if !self.devices[i].router {
                        // Most often the index gives it already (its address seen again).
                        if !indexed {
                            self.index_ip(ip, i);
                        }
                        return Some(i);
                    }
                }
                // A router's MAC: the host is known by its address.
                self.devices[i].seen(ts);
                self.touch(i);
                if ip.is_none() {
                    return Some(i);
                }
            }
        }
        let ip = ip?;
        if let Some(&i) = self.by_ip.get(&ip) {
            let d = &mut self.devices[i];
            d.seen(ts);
            d.add_ip(ip, ts);
            self.touch(i);
            return Some(i);
        }
        if !create || !is_local(&ip) {
            return None;
        }
        if let Some(&i) = self.by_ip_key.get(&ip) {
            // An `ip:` device whose address a MAC device had meanwhile: still this one.
            self.devices[i].seen(ts);
            self.touch(i);
            return Some(i);
        }
        let i = self.create(None, Some(ip), ts, sigs)?;
        self.devices[i].add_ip(ip, ts);
        self.by_ip.insert(ip, i);
        Some(i)
    }

    /// The address index gives device `i` for `ip` from now on, and the device's entry for the
    /// address says so (see [`AddrSeen::indexed`]); the device the index gave before, if
    /// another, no longer has it indexed. (Only here does the index change which device it
    /// gives for an address: elsewhere it gains addresses it had none for, or loses a router's.)
    fn index_ip(&mut self, ip: IpAddr, i: usize) {
        if let Some(old) = self.by_ip.insert(ip, i).filter(|&old| old != i) {
            if let Some(a) = self
                .devices
                .get_mut(old)
                .and_then(|d| d.ips.iter_mut().find(|a| a.ip == ip))
            {
                a.indexed = Indexed(false);
            }
        }
        if let Some(a) = self.devices[i].ips.iter_mut().find(|a| a.ip == ip) {
            a.indexed = Indexed(true);
        }
    }

    /// Device `i`'s MAC turned out to be a router's. What was attributed to it through that MAC
    /// by address (addresses, protocols, peers, evidence read from IP packets) belonged to the
    /// hosts behind it and is dropped, so that what the router keeps does not depend on the
    /// order observations arrived in: its link-layer evidence (OUI, LLDP, CDP), first and last
    /// seen. Its flows are not counted from then on.
    fn become_router(&mut self, i: usize, ts: i64, sigs: &Signatures) {
        let d = &mut self.devices[i];
        d.router = true;
        let behind = std::mem::take(&mut d.ips);
        for a in &behind {
            if self.by_ip.get(&a.ip) == Some(&i) {
                self.by_ip.remove(&a.ip);
            }
        }
        // The local hosts seen behind it so far get their `ip:` devices now, as later ones do
        // on their next observation: which hosts exist must not depend on whether one of
        // theirs happened to arrive before or after the switch (it does with several workers).
        for a in behind.iter().filter(|a| is_local(&a.ip)) {
            if self.by_ip.contains_key(&a.ip) || self.by_ip_key.contains_key(&a.ip) {
                continue;
            }
            if let Some(h) = self.create(None, Some(a.ip), a.first_seen, sigs) {
                let d = &mut self.devices[h];
                d.add_ip(a.ip, a.first_seen);
                d.add_ip(a.ip, a.last_seen);
                d.seen(a.last_seen);
                self.by_ip.insert(a.ip, h);
            }
        }
        let d = &mut self.devices[i];
        d.protocols.clear();
        d.peers.clear();
        d.totals = PeerCounts::default();
        d.overflow = Overflow::default();
        d.evidence
            .retain(|e| matches!(e.source, Source::Ethernet | Source::Lldp | Source::Cdp));
        let names: BTreeSet<String> = d
            .evidence
            .iter()
            .filter(|e| HOSTNAME_KINDS.contains(&e.kind))
            .map(|e| e.value.clone())
            .collect();
        d.hostnames = names;
        if d.reidentify(sigs, &mut self.matches) {
            self.changes
                .entry(i)
                .or_insert((Change::Identification, ts));
        }
    }

    /// The device at (`mac`, `ip`) without creating or touching anything.
    fn lookup(&self, mac: [u8; 6], ip: IpAddr) -> Option<&Device> {
        if is_host_mac(&mac) {
            if let Some(&i) = self.by_mac.get(&mac_key(&mac)) {
                if !self.devices[i].router {
                    return self.devices.get(i);
                }
            }
        }
        self.by_ip.get(&ip).and_then(|&i| self.devices.get(i))
    }

    /// What the detection engine may know of one of a flow's devices (`server`: the server's,
    /// else the client's): its category (when identified) and whether it is medical. For
    /// [`crate::detect::DeviceView::lazy`].
    pub fn device_info(&self, f: &FlowMeta, server: bool) -> Option<crate::detect::DeviceInfo> {
        let (mac, ip) = if server {
            (f.server_mac, f.server.0)
        } else {
            (f.client_mac, f.client.0)
        };
        self.lookup(mac, ip).map(|d| {
            let c = d.category();
            crate::detect::DeviceInfo {
                category: (c != Category::Unknown).then_some(c),
                is_medical: c.is_medical(),
            }
        })
    }

    /// Evidence about the host at (`mac`, `ip`) (tests; the central thread moves the values
    /// it keeps out of the observation: [`DeviceTable::evidence_owned`]).
    #[cfg(test)]
    pub fn evidence(
        &mut self,
        ts: i64,
        mac: [u8; 6],
        ip: Option<IpAddr>,
        items: &[Evidence],
        sigs: &Signatures,
    ) {
        self.evidence_owned(ts, mac, ip, &mut items.to_vec(), sigs);
    }

    /// Evidence about the host at (`mac`, `ip`), moving the values it keeps out of `items` (see
    /// [`Device::add_evidence_at`]): the observation's, used once.
    pub fn evidence_owned(
        &mut self,
        ts: i64,
        mac: [u8; 6],
        ip: Option<IpAddr>,
        items: &mut [Evidence],
        sigs: &Signatures,
    ) {
        let Some(i) = self.resolve(mac, ip, ts, true, sigs) else {
            return;
        };
        let d = &mut self.devices[i];
        if d.router && ip.is_some() {
            // Read from an IP packet routed through it: not the router's own (see become_router).
            return;
        }
        let mut new = false;
        for e in items {
            if let Some(at) = d.add_evidence_at(e, ts) {
                new = true;
                // Identification is made of the claims of rules that match an evidence value,
                // each value on its own: a value no rule claims anything from cannot change it.
                // (The value as the list keeps it: it may have been moved out of `e`.)
                if let Some(s) = d.evidence.get_mut(at).filter(|_| !d.stale_claims) {
                    if !s.value.is_empty() {
                        let claims = self.matches.claims(s.kind, &s.value, sigs);
                        d.stale_claims = claims;
                        // Remembered for the identification that follows.
                        s.claims = ClaimsMemo::new(sigs.serial(), claims);
                    }
                }
            }
        }
        if new && d.stale_ident.is_none() {
            d.stale_ident = Some(ts);
            self.stale.push(i);
        }
    }

    /// A flow started: its client is alive (the server is counted when the flow ends, once its
    /// MAC is known).
    ///
    /// A side whose MAC is not known yet (it has not sent) is left alone, unless neither side
    /// has a MAC (a capture without link layer).
    pub fn flow_start(&mut self, ts: i64, f: &FlowMeta, sigs: &Signatures) {
        let no_link = f.client_mac == [0; 6] && f.server_mac == [0; 6];
        for (mac, ip) in [(f.client_mac, f.client.0), (f.server_mac, f.server.0)] {
            if mac != [0; 6] || no_link {
                self.resolve(mac, Some(ip), ts, true, sigs);
            }
        }
    }

    /// A flow ended: protocols by role, peers and volumes on both sides.
    pub fn flow_end(
        &mut self,
        ts: i64,
        f: &FlowMeta,
        packets: [u64; 2],
        bytes: [u64; 2],
        sigs: &Signatures,
    ) {
        let mut buf = ProtoName::default();
        let proto = match protocol_name_in(f, &mut buf) {
            Some(s) => s,
            None => buf.as_str(),
        };
        // The server side exists only if it answered (else a scan would create devices).
        let server_answered = packets[1] > 0;
        let no_link = f.client_mac == [0; 6] && f.server_mac == [0; 6];
        // A side that has not sent has no MAC: it is left alone (looking it up by address
        // would depend on the order observations arrive in).
        let c = (f.client_mac != [0; 6] || no_link)
            .then(|| self.resolve(f.client_mac, Some(f.client.0), ts, true, sigs))
            .flatten();
        let s = (server_answered && (f.server_mac != [0; 6] || no_link))
            .then(|| self.resolve(f.server_mac, Some(f.server.0), ts, true, sigs))
            .flatten();
        let to_server = (packets[0], bytes[0]);
        let to_client = (packets[1], bytes[1]);
        let c = c.filter(|&c| !self.devices[c].router);
        let s = s.filter(|&s| !self.devices[s].router);
        if let Some(c) = c {
            let d = &mut self.devices[c];
            d.add_protocol(proto, false);
            d.add_peer(f.server.0, to_server, to_client);
        }
        if let Some(s) = s.filter(|&s| Some(s) != c) {
            let d = &mut self.devices[s];
            d.add_protocol(proto, true);
            d.add_peer(f.client.0, to_client, to_server);
        }
    }

    /// Devices by category (every category present, zeros included) and how many run an
    /// end-of-life OS.
    pub fn gauges(&self) -> (BTreeMap<Category, i64>, i64) {
        let mut by: BTreeMap<Category, i64> = Category::ALL.iter().map(|c| (*c, 0)).collect();
        let mut eol = 0;
        for d in &self.devices {
            *by.entry(d.category()).or_default() += 1;
            eol += i64::from(d.eol_os());
        }
        (by, eol)
    }
}

/// The name a flow's protocol is counted under: the identified application protocol, else
/// the transport and server port (`tcp/8080`), or the IP protocol name.
pub fn protocol_name(f: &FlowMeta) -> std::borrow::Cow<'static, str> {
    let mut buf = ProtoName::default();
    match protocol_name_in(f, &mut buf) {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(buf.as_str().to_string()),
    }
}

/// Room for the longest `name/port` of [`protocol_name`] (`ipv6-icmp/65535`).
#[derive(Default)]
pub struct ProtoName {
    buf: [u8; 24],
    len: usize,
}

impl ProtoName {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("other")
    }
}

/// [`protocol_name`] without allocating: a static name, or `None` when it was written to
/// `buf` (`name/port`).
fn protocol_name_in(f: &FlowMeta, buf: &mut ProtoName) -> Option<&'static str> {
    match f.app_proto {
        Some(p) if p != crate::protocols::AppProto::Unknown => Some(p.as_str()),
        _ => {
            let name = match f.proto {
                6 => "tcp",
                17 => "udp",
                132 => "sctp",
                1 => "icmp",
                58 => "ipv6-icmp",
                2 => "igmp",
                47 => "gre",
                50 => "esp",
                _ => "other",
            };
            if !f.has_ports() {
                return Some(name);
            }
            let mut port = [0u8; 5];
            let mut n = 0;
            let mut v = f.server.1;
            loop {
                port[n] = b'0' + (v % 10) as u8;
                n += 1;
                v /= 10;
                if v == 0 {
                    break;
                }
            }
            let mut len = 0;
            for &b in name.as_bytes().iter().chain([b'/'].iter()) {
                buf.buf[len] = b;
                len += 1;
            }
            for &b in port[..n].iter().rev() {
                buf.buf[len] = b;
                len += 1;
            }
            buf.len = len;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn claims_memo() {
        let m = ClaimsMemo::default();
        assert_eq!(m.get(0), None);
        assert_eq!(m.get(7), None);
        for serial in [0, 1, 7, u64::from(u32::MAX) + 3] {
            for c in [false, true] {
                let m = ClaimsMemo::new(serial, c);
                assert_eq!(m.get(serial), Some(c));
                assert_eq!(m.get(serial + 1), None);
            }
        }
        // A memo changes nothing about the value it is kept with, nor its size.
        assert_eq!(ClaimsMemo::new(1, true), ClaimsMemo::default());
        assert!(std::mem::size_of::<EvidenceSeen>() <= 40);
    }

    #[test]
    fn size_class_capacity() {
        // 40-byte entries: 48, 80, 128, 160, 224, 256, 320 (8 fit), 384, 448 (11), 512.
        let caps: Vec<usize> = (1..=12).map(fill_size_class::<[u8; 40]>).collect();
        assert_eq!(caps, [1, 2, 3, 4, 5, 6, 8, 8, 9, 11, 11, 12]);
        assert_eq!(fill_size_class::<[u8; 40]>(0), 0);
        assert_eq!(fill_size_class::<()>(5), 5);
        assert_eq!(fill_size_class::<u8>(1), 8);
        assert_eq!(fill_size_class::<u8>(9), 16);
    }

    use super::*;
    use crate::fingerprint::EvidenceKind as K;

    fn sigs() -> Signatures {
        Signatures::shipped().unwrap()
    }

    /// Protocol keys order, compare and serialize as their names do, inline or not.
    #[test]
    fn proto_keys_are_their_names() {
        let names = [
            "",
            "a",
            "ab",
            "ab\0",
            "ab\0a",
            "ab\u{1}",
            "abc",
            "b",
            "dicom",
            "hl7",
            "tcp/104",
            "tcp/1040",
            "tcp/8080",
            "udp/53",
            "ipv6-icmp/65535",
            "zzzzzzzzzzzzzzzzzzzzz",
            "zzzzzzzzzzzzzzzzzzzzzz",
            "zzzzzzzzzzzzzzzzzzzzzzz",
            "zzzzzzzzzzzzzzzzzzzzzzzz",
            "zzzzzzzzzzzzzzzzzzzzza",
            "zzzzzzzzzzzzzzzzzzzzzzza",
            "\u{e9}t\u{e9}",
        ];
        for x in names {
            let kx = ProtoKey::new(x);
            assert_eq!(kx.as_str(), x);
            assert_eq!(
                matches!(kx, ProtoKey::Inline { .. }),
                x.len() <= PROTO_KEY_INLINE
            );
            let json = serde_json::to_string(&kx).unwrap();
            assert_eq!(json, serde_json::to_string(x).unwrap());
            assert_eq!(serde_json::from_str::<ProtoKey>(&json).unwrap(), kx);
            for y in names {
                let ky = ProtoKey::new(y);
                assert_eq!(kx.cmp(&ky), x.cmp(y), "{x:?} {y:?}");
                assert_eq!(kx == ky, x == y, "{x:?} {y:?}");
            }
        }
        let mut d = Device::new("mac:x".into(), None, 0);
        for n in ["tls", "dns", "tcp/8080", "dns", "tls", "tls"] {
            d.add_protocol(n, false);
        }
        let json = serde_json::to_string(&d.protocols).unwrap();
        assert_eq!(
            json,
            r#"{"dns":{"client":2,"server":0},"tcp/8080":{"client":1,"server":0},"tls":{"client":3,"server":0}}"#
        );
    }

    /// Evidence values are found among their kind's whatever their tags (an untagged value,
    /// as read from the store, is compared in full), and kept sorted by (kind, value).
    #[test]
    fn evidence_found_by_tag_and_kept_sorted() {
        let mut d = Device::new("mac:x".into(), None, 0);
        let values: Vec<String> = (0..MAX_EVIDENCE_PER_KIND)
            .map(|n| format!("v{}", 7 * n % 5 + n))
            .collect();
        for k in [K::HttpUserAgent, K::DhcpHostname, K::DhcpVendorClass] {
            for v in &values {
                assert!(d.add_evidence(&Evidence::new(k, v.clone()), 5));
            }
        }
        let mut sorted = d.evidence.clone();
        sorted.sort_by(|a, b| (a.kind, &a.value).cmp(&(b.kind, &b.value)));
        assert_eq!(d.evidence, sorted);
        for e in &mut d.evidence[..4] {
            e.tag = ValueTag::default();
        }
        for k in [K::HttpUserAgent, K::DhcpHostname, K::DhcpVendorClass] {
            for v in &values {
                assert!(!d.add_evidence(&Evidence::new(k, v.clone()), 1));
            }
        }
        assert_eq!(d.evidence.len(), 3 * MAX_EVIDENCE_PER_KIND);
        assert!(d.evidence.iter().all(|e| e.first_seen == 1));
        assert_eq!(d.overflow.evidence, 0);
    }

    /// An address that goes from one device to another and back is looked up as the device
    /// that last had it, whether or not the index had to change.
    #[test]
    fn address_index_follows_the_last_device() {
        let s = sigs();
        let mut t = DeviceTable::new(100);
        let (a, b) = ([0x00, 0x09, 0x5c, 1, 2, 3], [0x00, 0x09, 0x5c, 1, 2, 4]);
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        let who = |t: &DeviceTable| t.by_ip.get(&ip).map(|&i| t.get(i).key.clone());
        for (n, m) in [a, a, b, b, a, b, a, a].into_iter().enumerate() {
            let i = t.resolve(m, Some(ip), n as i64, true, &s).unwrap();
            assert_eq!(who(&t).as_deref(), Some(t.get(i).key.as_str()));
            for (j, d) in t.devices().iter().enumerate() {
                for e in d.ips.iter().filter(|e| e.indexed.0) {
                    assert_eq!(t.by_ip.get(&e.ip), Some(&j));
                }
            }
        }
    }

    /// The allocation-free protocol name is the `name/port` text for every port.
    #[test]
    fn protocol_names_without_allocating() {
        let mut f = FlowMeta {
            flow_id: 1,
            proto: 6,
            client: ("10.0.0.1".parse().unwrap(), 1),
            server: ("10.0.0.2".parse().unwrap(), 0),
            vlan: [0, 0],
            client_mac: [0; 6],
            server_mac: [0; 6],
            to_group: false,
            app_proto: None,
        };
        for (proto, port) in [(6, 0), (6, 9), (17, 10), (132, 8080), (6, 65535), (1, 7)] {
            f.proto = proto;
            f.server.1 = port;
            let name = match proto {
                6 => "tcp",
                17 => "udp",
                132 => "sctp",
                _ => "icmp",
            };
            let want = if proto == 1 {
                name.to_string()
            } else {
                format!("{name}/{port}")
            };
            assert_eq!(protocol_name(&f), want);
        }
        f.app_proto = Some(crate::protocols::AppProto::Dicom);
        assert_eq!(protocol_name(&f), "dicom");
    }

    #[test]
    fn router_mac_is_split_by_local_ip() {
        let s = sigs();
        let mut t = DeviceTable::new(100);
        let router = [0x00, 0x1b, 0x54, 1, 2, 3];
        for n in 1..=ROUTER_MIN_IPV4 + 1 {
            let ip: IpAddr = format!("8.8.{n}.1").parse().unwrap();
            t.resolve(router, Some(ip), n as i64, true, &s);
        }
        assert_eq!(t.len(), 1);
        assert!(t.get(0).router);
        assert!(
            t.get(0).ips.is_empty(),
            "addresses behind a router are not its own"
        );
        // Behind the router: a local host gets its own device, a remote one none.
        let a = t.resolve(router, Some("10.9.0.5".parse().unwrap()), 50, true, &s);
        assert_eq!(t.get(a.unwrap()).key, "ip:10.9.0.5");
        assert_eq!(
            t.resolve(router, Some("1.1.1.1".parse().unwrap()), 51, true, &s),
            None
        );
        // An ordinary host with two addresses stays one device.
        let h = [0x00, 0x09, 0x5c, 1, 2, 3];
        let i = t.resolve(h, Some("10.0.0.2".parse().unwrap()), 1, true, &s);
        let j = t.resolve(h, Some("fe80::1".parse().unwrap()), 2, true, &s);
        assert_eq!(i, j);
        assert!(!t.get(i.unwrap()).router);
    }

    #[test]
    fn hosts_seen_behind_a_router_before_the_switch_get_devices_too() {
        let s = sigs();
        let router = [0x00, 0x1b, 0x54, 1, 2, 3];
        let hosts: Vec<IpAddr> = (1..=ROUTER_MIN_IPV4 as u8 + 1)
            .map(|n| IpAddr::from([10, 9, 0, n]))
            .collect();
        // Two arrival orders of the same observations give the same set of devices.
        let keys = |order: &[IpAddr]| {
            let mut t = DeviceTable::new(100);
            for (n, ip) in order.iter().enumerate() {
                t.resolve(router, Some(*ip), n as i64, true, &s);
            }
            let mut k: Vec<String> = (0..t.len()).map(|i| t.get(i).key.clone()).collect();
            k.sort();
            k
        };
        let mut reversed = hosts.clone();
        reversed.reverse();
        let a = keys(&hosts);
        assert_eq!(a, keys(&reversed));
        assert_eq!(
            a.len(),
            hosts.len() + 1,
            "the router and every local host: {a:?}"
        );
    }

    #[test]
    fn caps_are_counted() {
        let s = sigs();
        let mut t = DeviceTable::new(2);
        for _ in 0..3 {
            for n in 0..4u8 {
                t.resolve([0, 9, 0x5c, 0, 0, n], None, 1, true, &s);
            }
        }
        assert_eq!(t.len(), 2);
        assert_eq!(t.dropped, 2, "each device left out is counted once");
        let mut d = Device::new("k".into(), None, 0);
        for n in 0..(MAX_EVIDENCE_PER_KIND + 3) {
            d.add_evidence(&Evidence::new(K::HttpUserAgent, format!("ua{n}")), 1);
        }
        assert_eq!(d.evidence.len(), MAX_EVIDENCE_PER_KIND);
        assert_eq!(d.overflow.evidence, 3);
        let kinds = [
            K::HttpServer,
            K::TlsJa3,
            K::TlsJa4,
            K::TcpSyn,
            K::SsdpUsn,
            K::MdnsService,
            K::DhcpHostname,
            K::NetbiosName,
            K::DicomCallingAe,
        ];
        for k in kinds {
            for n in 0..MAX_EVIDENCE_PER_KIND {
                d.add_evidence(&Evidence::new(k, format!("v{n}")), 1);
            }
        }
        assert_eq!(d.evidence.len(), MAX_EVIDENCE);
        for n in 0..(MAX_PEERS + 5) {
            d.add_peer(
                IpAddr::from([198, 18, (n >> 8) as u8, n as u8]),
                (1, 60),
                (1, 60),
            );
        }
        assert_eq!(d.peers.len(), MAX_PEERS);
        assert_eq!(d.overflow.peers, 5);
        assert_eq!(d.totals.flows, (MAX_PEERS + 5) as u64);
    }

    #[test]
    fn evidence_changes_identification_once() {
        let s = sigs();
        let mut t = DeviceTable::new(10);
        let mac = [0x00, 0x09, 0x5c, 1, 2, 3];
        t.evidence(1, mac, None, &[], &s);
        let ch = t.take_changes(&s);
        assert_eq!(ch.len(), 1);
        assert_eq!(ch[0].1, Change::New);
        let e = [Evidence::new(K::DicomModality, "CT")];
        t.evidence(2, mac, None, &e, &s);
        t.evidence(3, mac, None, &e, &s);
        let ch = t.take_changes(&s);
        assert_eq!(ch.len(), 1, "{ch:?}");
        assert_eq!(ch[0].1, Change::Identification);
        assert_eq!(t.get(0).category(), Category::Ct);
        let e = t
            .get(0)
            .evidence
            .iter()
            .find(|e| e.kind == K::DicomModality);
        assert_eq!(e.unwrap().first_seen, 2);
    }
}
