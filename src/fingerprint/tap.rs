//! The worker side of packet-level evidence: sources that need no flow state (each packet
//! speaks for its sender), read on the worker and pushed as [`Observation::Evidence`].
//!
//! - TCP SYN and SYN+ACK: the stack signature (`tcp_syn` / `tcp_syn_ack`) and, with a p0f
//!   database (`--p0f-db`), its match (`tcp_p0f`).
//! - UDP: DHCPv4 (67/68), DHCPv6 (546/547), mDNS (5353), SSDP (1900), NBNS (137), NBDGM (138).
//! - Non-IP frames: LLDP and CDP ([`crate::decode::link_control`]), with the addresses the
//!   sender announces for itself (LLDP management address, CDP addresses).
//!
//! Cost: for an ordinary packet one match on its transport and ports. A SYN or a packet of one
//! of these UDP services is hashed (sender, signature or payload) into a small direct-mapped
//! cache of what this worker sent recently ([`DEDUP_SLOTS`]); a repeat is skipped before any
//! parsing or allocation, so a host opening thousands of connections costs one hash each.
//!
//! Attribution: the sender of the packet, except DHCPv4, whose client is `chaddr`, and DHCPv6,
//! where only clients' messages count (a relayed one for the MAC in the client's DUID). Likewise
//! only DHCPv4 requests (BOOTREQUEST) give evidence: a server's replies describe the client and
//! may echo its options or carry an option 60 meant for a class of clients, never the server's
//! own; a DHCPACK tells which IP its client got (an evidence observation with no items, which
//! the central thread reads as "this MAC has this IP").

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
    /// Reused signature (its option list is allocated once, not per SYN).
    sig: tcpfp::TcpSignature,
}

impl Tap {
    pub fn new(p0f: Option<P0fDb>) -> Tap {
        Tap {
            p0f,
            seen: vec![0u64; DEDUP_SLOTS].into_boxed_slice(),
            hasher: ahash::RandomState::with_seeds(0x7461, 0x70, 0x6d65, 0x6474),
            sigs: SentCache::new(DEDUP_SLOTS),
            raw_sig: String::new(),
            sig: tcpfp::TcpSignature::default(),
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
        let mut sig = std::mem::take(&mut self.sig);
        if tcpfp::parse_syn_into(d.ip, &mut sig).is_err() {
            self.sig = sig;
            return;
        }
        self.syn_sig(ts, d, &mut sig, obs);
        self.sig = sig;
    }

    /// [`Tap::syn`] once the signature is read.
    fn syn_sig(
        &mut self,
        ts: Ts,
        d: &Decoded<'_>,
        sig: &mut tcpfp::TcpSignature,
        obs: &mut ObsBuf,
    ) {
        // The raw options above carry the timestamp, new on every connection; the signature
        // depends only on whether it is zero. So: the same sender with the same signature is a
        // repeat too (checked before the signature is formatted into evidence).
        let ts1 = sig.ts1;
        sig.ts1 = ts1.map(|t| u32::from(t != 0));
        let repeat = !self.sigs.fresh((d.src_mac, d.src_ip, &*sig), ts);
        sig.ts1 = ts1;
        if repeat {
            return;
        }
        let m = self.p0f.as_ref().and_then(|db| db.match_tcp(sig, None));
        // What `extract::from_tcp` gives, as borrowed items: the signature is formatted into a
        // reused buffer and copied only when it is news to the central thread.
        let mut raw = std::mem::take(&mut self.raw_sig);
        raw.clear();
        sig.write_raw_sig(&mut raw);
        let kind = extract::tcp_kind(sig);
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
                } else if i.message_type == Some(dhcp::MessageType::ACK)
                    && !i.yiaddr.is_unspecified()
                {
                    // A server's reply (BOOTREPLY) describes its client: it may echo the
                    // client's host name, and its option 60 (vendor class, RFC 2132 §9.13: the
                    // client's vendor type) is one the server was set to send to a class of
                    // clients (zeek_dhcp.pcap: a VMware host's OFFER and ACK carry `ArubaAP`,
                    // the answer Aruba access points look for). None of it speaks for the
                    // server; only the ACK's address binding is used, for the client.
                    obs.push(Observation::Evidence {
                        ts,
                        mac: client,
                        ip: Some(IpAddr::V4(i.yiaddr)),
                        items: Vec::new(),
                    });
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

    /// A frame with no IP layer: LLDP or CDP evidence about its sender, and the sender's own
    /// addresses (LLDP Management Address TLVs; CDP Addresses and Management Addresses TLVs),
    /// each an evidence observation with no items, read as "this MAC has this IP" like a
    /// DHCPACK's.
    #[cold]
    pub fn link_control(&mut self, ts: Ts, src: [u8; 6], c: LinkControl<'_>, obs: &mut ObsBuf) {
        let (LinkControl::Lldp(b) | LinkControl::Cdp(b)) = c;
        if !self.fresh((src, b)) {
            return;
        }
        let (items, addrs) = match c {
            LinkControl::Lldp(b) => {
                let l = lldp::parse_lldp_lax(b);
                (extract::from_lldp(&l), l.management_addresses)
            }
            LinkControl::Cdp(b) => match cdp::parse_cdp_llc(b) {
                Ok(mut i) => {
                    let items = extract::from_cdp(&i);
                    let mut addrs = std::mem::take(&mut i.addresses);
                    addrs.append(&mut i.management_addresses);
                    (items, addrs)
                }
                Err(_) => return,
            },
        };
        obs.evidence(ts, src, None, items);
        let mut given: Vec<IpAddr> = Vec::new();
        for ip in addrs {
            if own_address(&ip) && !given.contains(&ip) {
                given.push(ip);
                obs.push(Observation::Evidence {
                    ts,
                    mac: src,
                    ip: Some(ip),
                    items: Vec::new(),
                });
            }
        }
    }
}

/// Whether an address a device announces for itself can be a host's (not unspecified,
/// multicast, broadcast or loopback).
fn own_address(ip: &IpAddr) -> bool {
    !ip.is_unspecified()
        && !ip.is_multicast()
        && !ip.is_loopback()
        && !matches!(ip, IpAddr::V4(v4) if v4.is_broadcast())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::WorkerStats;
    use crate::testing::hexb;

    fn addresses_of(obs: &mut ObsBuf) -> Vec<([u8; 6], IpAddr)> {
        obs.take(None)
            .items
            .into_iter()
            .filter_map(|o| match o {
                Observation::Evidence {
                    mac,
                    ip: Some(ip),
                    items,
                    ..
                } if items.is_empty() => Some((mac, ip)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn lldp_and_cdp_addresses_are_their_senders() {
        // The LLDPDU of zeek_lldp.pcap: tshark shows "Management Address: 192.168.2.10".
        let lldp = hexb("020704 00222d81db10 04020731 06020078 0807506f7274202331 0a0d534d43475338502d536d617274 0c23534d43475338502d536d617274202d20534d43475338502d536d6172742076332e3230 0e0400040004 100c0501c0a8020a0200000001 0000");
        let src = [0x00, 0x22, 0x2d, 0x81, 0xdb, 0x10];
        let mut tap = Tap::new(None);
        let mut obs = ObsBuf::new(true);
        tap.link_control(Ts(1), src, LinkControl::Lldp(&lldp), &mut obs);
        assert_eq!(
            addresses_of(&mut obs),
            vec![(src, "192.168.2.10".parse().unwrap())]
        );
        // The CDP frame of zeek_cdp-v1.pcap from the LLC header on: tshark shows Addresses
        // "IP address: 192.168.10.1".
        let cdp = hexb("aaaa0300000c2000 01b4dff0 00010006 5231 0002001100000001 0101cc 0004c0a80a01 0003000d 45746865726e657430 0006000e 636973636f2031363031");
        let src = [0x00, 0xe0, 0x1e, 0xd5, 0xd5, 0x15];
        tap.link_control(Ts(1), src, LinkControl::Cdp(&cdp), &mut obs);
        assert_eq!(
            addresses_of(&mut obs),
            vec![(src, "192.168.10.1".parse().unwrap())]
        );
        assert!(!own_address(&"0.0.0.0".parse().unwrap()));
        assert!(!own_address(&"255.255.255.255".parse().unwrap()));
        assert!(!own_address(&"ff02::1".parse().unwrap()));
        assert!(own_address(&"fe80::1".parse().unwrap()));
    }

    /// zeek_dhcp.pcap (tshark: dhcp.type, dhcp.option.dhcp, eth.src, dhcp.option.vendor_class_id,
    /// dhcp.option.hostname): frames 1, 3, 5, 7-9 are the client 90:b1:1c:99:49:29's requests
    /// (host name btest.is.cool, no option 60); 2, 4 and 6 the server 00:0c:29:40:0e:ef's
    /// OFFER, NAK and ACK (dhcp.ip.your 128.2.6.189), OFFER and ACK with option 60 "ArubaAP".
    /// Only the requests give evidence; the ACK gives the client's address, nothing more.
    #[test]
    fn dhcp_replies_speak_for_no_one() {
        let client = [0x90, 0xb1, 0x1c, 0x99, 0x49, 0x29];
        let mut tap = Tap::new(None);
        let mut obs = ObsBuf::new(true);
        let mut stats = WorkerStats::default();
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/pcaps/corpus/generic/zeek_dhcp.pcap"
        );
        let mut reader =
            crate::capture::FileReader::open(std::path::Path::new(path), None).expect("opens");
        let mut frames = Vec::new();
        reader.for_each(|p| frames.push((p.linktype, p.data.to_vec())));
        assert_eq!(frames.len(), 9);
        for (n, (linktype, f)) in frames.iter().enumerate() {
            let d = crate::decode::decode(*linktype, f, &mut stats).expect("decodes");
            tap.packet(Ts(n as i64), &d, &mut obs);
        }
        let mut kinds = Vec::new();
        let mut bindings = Vec::new();
        for o in obs.take(None).items {
            if let Observation::Evidence { mac, ip, items, .. } = o {
                assert_eq!(mac, client, "{items:?}");
                if items.is_empty() {
                    bindings.push(ip);
                }
                kinds.extend(items.into_iter().map(|e| (e.kind.as_str(), e.value)));
            }
        }
        assert_eq!(bindings, vec![Some("128.2.6.189".parse().unwrap())]);
        assert!(
            kinds.contains(&("dhcp_hostname", "btest.is.cool".to_string())),
            "{kinds:?}"
        );
        assert!(!kinds.iter().any(|(_, v)| v == "ArubaAP"), "{kinds:?}");
    }
}
