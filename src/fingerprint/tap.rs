//! The worker side of packet-level evidence: sources that need no flow state (each packet
//! speaks for its sender), read on the worker and pushed as [`Observation::Evidence`].
//!
//! - TCP SYN and SYN+ACK: the stack signature (`tcp_syn` / `tcp_syn_ack`) and, with a p0f
//!   database (`--p0f-db`), its match (`tcp_p0f`).
//! - UDP: DHCPv4 (67/68), DHCPv6 (546/547), mDNS (5353), SSDP (1900), NBNS (137), NBDGM (138).
//! - Non-IP frames: LLDP and CDP ([`crate::decode::link_control`]).
//!
//! Cost: for an ordinary packet one match on its transport and ports. A SYN or a packet of one
//! of these UDP services is hashed (sender, signature or payload) into a small direct-mapped
//! cache of what this worker sent recently ([`DEDUP_SLOTS`]); a repeat is skipped before any
//! parsing or allocation, so a host opening thousands of connections costs one hash each.
//!
//! Attribution: the sender of the packet, except DHCPv4, whose client is `chaddr`, and DHCPv6,
//! where only clients' messages count (a relayed one for the MAC in the client's DUID). A DHCPv4
//! server's replies give only its own vendor class (they describe the client and may echo its
//! options), and a DHCPACK tells which IP its client got (an evidence observation with no
//! items, which the central thread reads as "this MAC has this IP").

use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Arc;

use medtap_parsers::{cdp, dhcp, lldp, mdns, netbios, ssdp, tcpfp};

use crate::decode::{Decoded, LinkControl, L4};
use crate::fingerprint::extract;
use crate::observe::{ObsBuf, Observation, SentCache};
use crate::time::Ts;

/// Slots of the per-worker cache of recently sent packet evidence.
pub const DEDUP_SLOTS: usize = 4096;

/// A p0f database shared by the workers (`--p0f-db`).
pub type P0fDb = Arc<tcpfp::P0fDb>;

/// One worker's packet-evidence reader.
pub struct Tap {
    p0f: Option<P0fDb>,
    seen: Box<[u64]>,
    hasher: ahash::RandomState,
    /// Stack signatures sent recently, by sender (see [`Tap::syn`]).
    sigs: SentCache,
    /// Reused buffer for a signature's `raw_sig` text.
    raw_sig: String,
}

impl Tap {
    pub fn new(p0f: Option<P0fDb>) -> Tap {
        Tap {
            p0f,
            seen: vec![0u64; DEDUP_SLOTS].into_boxed_slice(),
            hasher: ahash::RandomState::with_seeds(0x7461, 0x70, 0x6d65, 0x6474),
            sigs: SentCache::new(DEDUP_SLOTS),
            raw_sig: String::new(),
        }
    }

    /// True the first time (recently) this worker sees `key`.
    fn fresh(&mut self, key: impl Hash) -> bool {
        let v = self.hasher.hash_one(key) | 1;
        let slot = &mut self.seen[(v as usize) % DEDUP_SLOTS];
        if *slot == v {
            false
        } else {
            *slot = v;
            true
        }
    }

    /// One decoded IP packet.
    #[inline]
    pub fn packet(&mut self, ts: Ts, d: &Decoded<'_>, obs: &mut ObsBuf) {
        match d.l4 {
            L4::Tcp(t) if t.syn => self.syn(ts, d, t.ack_flag, t.window, t.options, obs),
            L4::Udp if !d.payload.is_empty() => match (d.src_port, d.dst_port) {
                (67 | 68, 67 | 68)
                | (546 | 547, 546 | 547)
                | (5353, _)
                | (_, 1900)
                | (1900, _)
                | (137, _)
                | (138, _) => self.udp(ts, d, obs),
                _ => {}
            },
            _ => {}
        }
    }

    #[cold]
    fn syn(
        &mut self,
        ts: Ts,
        d: &Decoded<'_>,
        ack: bool,
        window: u16,
        options: &[u8],
        obs: &mut ObsBuf,
    ) {
        if !self.fresh((d.src_mac, d.src_ip, ack, d.ttl, window, options)) {
            return;
        }
        let Ok(mut sig) = tcpfp::parse_syn(d.ip) else {
            return;
        };
        // The raw options above carry the timestamp, new on every connection; the signature
        // depends only on whether it is zero. So: the same sender with the same signature is a
        // repeat too (checked before the signature is formatted into evidence).
        let ts1 = sig.ts1;
        sig.ts1 = ts1.map(|t| u32::from(t != 0));
        let repeat = !self.sigs.fresh((d.src_mac, d.src_ip, &sig), ts);
        sig.ts1 = ts1;
        if repeat {
            return;
        }
        let m = self.p0f.as_ref().and_then(|db| db.match_tcp(&sig, None));
        // What `extract::from_tcp` gives, as borrowed items: the signature is formatted into a
        // reused buffer and copied only when it is news to the central thread.
        let mut raw = std::mem::take(&mut self.raw_sig);
        raw.clear();
        sig.write_raw_sig(&mut raw);
        let kind = extract::tcp_kind(&sig);
        match m.as_ref().and_then(extract::p0f_item) {
            Some((k, v, conf)) => obs.evidence_refs(
                ts,
                d.src_mac,
                Some(d.src_ip),
                &[(kind, &raw, 100), (k, &v, conf)],
            ),
            None => obs.evidence_refs(ts, d.src_mac, Some(d.src_ip), &[(kind, &raw, 100)]),
        }
        self.raw_sig = raw;
    }

    #[cold]
    fn udp(&mut self, ts: Ts, d: &Decoded<'_>, obs: &mut ObsBuf) {
        if !self.fresh((d.src_mac, d.src_ip, d.src_port, d.payload)) {
            return;
        }
        let (sp, dp) = (d.src_port, d.dst_port);
        let sender = (d.src_mac, Some(d.src_ip));
        match (sp, dp) {
            (67 | 68, _) => {
                let Ok(i) = dhcp::parse_dhcpv4(d.payload) else {
                    return;
                };
                let client = i.chaddr.unwrap_or(d.src_mac);
                if i.op == 1 {
                    let ip = (!i.ciaddr.is_unspecified()).then_some(IpAddr::V4(i.ciaddr));
                    obs.evidence(ts, client, ip, extract::from_dhcpv4(&i));
                } else {
                    // A server's reply describes its client (and may echo the client's host
                    // name): the address binding goes to the client, and only the server's own
                    // vendor class (option 60 in a reply, e.g. `ArubaAP`) to the server.
                    if i.message_type == Some(dhcp::MessageType::ACK) && !i.yiaddr.is_unspecified()
                    {
                        obs.push(Observation::Evidence {
                            ts,
                            mac: client,
                            ip: Some(IpAddr::V4(i.yiaddr)),
                            items: Vec::new(),
                        });
                    }
                    let own: Vec<_> = extract::from_dhcpv4(&i)
                        .into_iter()
                        .filter(|e| e.kind == crate::fingerprint::EvidenceKind::DhcpVendorClass)
                        .collect();
                    obs.evidence(ts, sender.0, sender.1, own);
                }
            }
            (546 | 547, _) => {
                let Ok(i) = dhcp::parse_dhcpv6(d.payload) else {
                    return;
                };
                // A client's own message speaks for its sender; one a relay forwarded speaks
                // for the client named by its DUID's MAC (when the DUID holds one). A server's
                // message describes its client (echoed DUID, FQDN) and gives nothing.
                if !extract::dhcpv6_is_client(&i) {
                    return;
                }
                if i.relay_depth == 0 {
                    obs.evidence(ts, sender.0, sender.1, extract::from_dhcpv6(&i));
                } else if let Some(mac) = i.duid_mac() {
                    obs.evidence(ts, mac, None, extract::from_dhcpv6(&i));
                }
            }
            (5353, _) | (_, 5353) => {
                if let Ok(m) = mdns::parse_mdns(d.payload) {
                    obs.evidence(ts, sender.0, sender.1, extract::from_mdns(&m));
                }
            }
            (1900, _) | (_, 1900) => {
                if let Ok(s) = ssdp::parse_ssdp(d.payload) {
                    obs.evidence(ts, sender.0, sender.1, extract::from_ssdp(&s));
                }
            }
            (137, _) => {
                if let Ok(n) = netbios::parse_nbns(d.payload) {
                    obs.evidence(ts, sender.0, sender.1, extract::from_nbns(&n));
                }
            }
            (138, _) => {
                if let Ok(n) = netbios::parse_nbdgm(d.payload) {
                    obs.evidence(ts, sender.0, sender.1, extract::from_nbdgm(&n));
                }
            }
            _ => {}
        }
    }

    /// A frame with no IP layer: LLDP or CDP evidence about its sender.
    #[cold]
    pub fn link_control(&mut self, ts: Ts, src: [u8; 6], c: LinkControl<'_>, obs: &mut ObsBuf) {
        let (LinkControl::Lldp(b) | LinkControl::Cdp(b)) = c;
        if !self.fresh((src, b)) {
            return;
        }
        let items = match c {
            LinkControl::Lldp(b) => extract::from_lldp(&lldp::parse_lldp_lax(b)),
            LinkControl::Cdp(b) => match cdp::parse_cdp_llc(b) {
                Ok(i) => extract::from_cdp(&i),
                Err(_) => return,
            },
        };
        obs.evidence(ts, src, None, items);
    }
}
