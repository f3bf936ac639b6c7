//! mDNS / DNS-SD device evidence (RFC 6762, RFC 6763): host names, addresses, service types,
//! service instances and TXT keys that name a model (`md=`, `model=`, `ty=`, `usb_MDL=`, ...).
//!
//! Input: one mDNS message (UDP payload, port 5353). Output: an owned [`MdnsInfo`] distilled from
//! the [`crate::dns`] reader (its limits apply: names, pointer jumps, records per section). The
//! lists kept here are capped at [`MAX_ITEMS`] each and deduplicated. No I/O, no panics.
//!
//! What is evidence about the *sender*: in a response, the owner names of A/AAAA records (its
//! host names), SRV targets, service instances it announces and their TXT keys. Questions say
//! what the sender looks for (`_ipp._tcp.local`: it prints), kept apart in
//! [`MdnsInfo::queried_services`].

use std::net::IpAddr;

use thiserror::Error;

use crate::dns::{self, rtype, DnsError, RData};

/// Entries kept per list.
pub const MAX_ITEMS: usize = 32;
/// Bytes kept of a TXT key or value.
pub const MAX_TXT_LEN: usize = 255;

/// TXT keys that carry a device model, in the order they are preferred. `md` (Apple, Google
/// Cast, HomeKit), `model`, `ty` and `product` (IPP/printers), `usb_MDL` (printers), `am`
/// (AirPlay model), `mdl`.
pub const MODEL_KEYS: [&str; 7] = ["md", "model", "usb_MDL", "ty", "product", "am", "mdl"];

/// mDNS errors (the DNS reader's).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MdnsError {
    #[error(transparent)]
    Dns(#[from] DnsError),
}

/// One TXT record of a service instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxtRecord {
    /// Owner (the service instance, e.g. `Printer._ipp._tcp.local`).
    pub owner: String,
    /// `key=value` pairs; a key without `=` has an empty value. Lossy UTF-8.
    pub pairs: Vec<(String, String)>,
}

/// Evidence from one mDNS message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[must_use]
pub struct MdnsInfo {
    pub is_response: bool,
    /// Host names announced (owners of A/AAAA records and SRV targets), e.g.
    /// `johanna-QEMU-Virtual-Machine.local`.
    pub hostnames: Vec<String>,
    /// (host name, address) from A/AAAA records.
    pub addresses: Vec<(String, IpAddr)>,
    /// Service types announced (`_ipp._tcp.local`), from PTR owners and SRV/TXT owners.
    pub services: Vec<String>,
    /// Service instances announced (`Printer._ipp._tcp.local`): PTR targets of service types.
    pub instances: Vec<String>,
    /// Service types the sender asks for (PTR questions).
    pub queried_services: Vec<String>,
    pub txt: Vec<TxtRecord>,
    /// HINFO (cpu, os), rare but explicit.
    pub hinfo: Option<(String, String)>,
    /// The DNS reader stopped early.
    pub truncated: bool,
}

impl MdnsInfo {
    /// The first model-like TXT value, by [`MODEL_KEYS`] preference.
    pub fn model(&self) -> Option<&str> {
        MODEL_KEYS.iter().find_map(|k| self.txt_value(k))
    }

    /// The first value of TXT key `key` (case-insensitive), if any.
    pub fn txt_value(&self, key: &str) -> Option<&str> {
        self.txt
            .iter()
            .flat_map(|t| &t.pairs)
            .find(|(k, v)| k.eq_ignore_ascii_case(key) && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

fn push_unique<T: PartialEq>(v: &mut Vec<T>, item: T) {
    if v.len() < MAX_ITEMS && !v.contains(&item) {
        v.push(item);
    }
}

/// `Instance._service._proto.domain` → `_service._proto.domain`, when it has that shape.
fn service_of(name: &str) -> Option<&str> {
    let idx = name.find("._")?;
    let svc = &name[idx + 1..];
    (svc.contains("._tcp.") || svc.contains("._udp.")).then_some(svc)
}

fn is_service_type(name: &str) -> bool {
    name.starts_with('_') && (name.contains("._tcp.") || name.contains("._udp."))
}

fn txt_pairs(strings: &[Vec<u8>]) -> Vec<(String, String)> {
    strings
        .iter()
        .filter(|s| !s.is_empty())
        .take(MAX_ITEMS)
        .map(|s| {
            let s = &s[..s.len().min(MAX_TXT_LEN)];
            match s.iter().position(|&b| b == b'=') {
                Some(eq) => (
                    String::from_utf8_lossy(&s[..eq]).into_owned(),
                    String::from_utf8_lossy(&s[eq + 1..]).into_owned(),
                ),
                None => (String::from_utf8_lossy(s).into_owned(), String::new()),
            }
        })
        .collect()
}

/// Parses an mDNS message into device evidence.
pub fn parse_mdns(payload: &[u8]) -> Result<MdnsInfo, MdnsError> {
    let msg = dns::parse_message(payload)?;
    let mut info = MdnsInfo {
        is_response: msg.is_response(),
        truncated: msg.truncated,
        ..MdnsInfo::default()
    };
    for q in &msg.questions {
        if matches!(q.qtype, rtype::PTR | rtype::ANY) && is_service_type(&q.name) {
            push_unique(&mut info.queried_services, q.name.clone());
        }
    }
    for r in msg.records() {
        match &r.data {
            RData::A(a) => {
                push_unique(&mut info.hostnames, r.name.clone());
                push_unique(&mut info.addresses, (r.name.clone(), IpAddr::V4(*a)));
            }
            RData::Aaaa(a) => {
                push_unique(&mut info.hostnames, r.name.clone());
                push_unique(&mut info.addresses, (r.name.clone(), IpAddr::V6(*a)));
            }
            RData::Ptr(target) if is_service_type(&r.name) => {
                push_unique(&mut info.services, r.name.clone());
                if r.name != "_services._dns-sd._udp.local" {
                    push_unique(&mut info.instances, target.clone());
                }
            }
            RData::Srv { target, .. } => {
                push_unique(&mut info.hostnames, target.clone());
                if let Some(s) = service_of(&r.name) {
                    push_unique(&mut info.services, s.to_string());
                }
                push_unique(&mut info.instances, r.name.clone());
            }
            RData::Txt(strings) => {
                let pairs = txt_pairs(strings);
                if !pairs.is_empty() && info.txt.len() < MAX_ITEMS {
                    info.txt.push(TxtRecord {
                        owner: r.name.clone(),
                        pairs,
                    });
                }
            }
            RData::Hinfo { cpu, os } => info.hinfo = Some((cpu.clone(), os.clone())),
            _ => {}
        }
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // pcaps/corpus/generic/zeek_mdns.pcap frame 2 (10.0.2.7 -> 224.0.0.251:5353), UDP payload.
    // Oracle: tshark -Y mdns -T fields -e dns.flags.response -e dns.qry.name -e dns.qry.type
    // => 0 | _ipp._tcp.local,_ipps._tcp.local | 12,12
    const QUERY: &str = "0000 0000 0002 0000 0000 0000 \
        045f697070 045f746370 056c6f63616c 00 000c 0001 \
        055f69707073 c011 000c 0001";

    // zeek_mdns.pcap frame 4, the IPv4 response. Oracle: tshark -e dns.resp.name -e dns.resp.type
    // -e dns.a -e dns.aaaa => names johanna-QEMU-Virtual-Machine.local (28), <v6 ptr> (12),
    // johanna-QEMU-Virtual-Machine.local (28), <v6 ptr> (12), johanna-QEMU-Virtual-Machine.local
    // (1), 7.2.0.10.in-addr.arpa (12); a = 10.0.2.7; aaaa = fd52:429e:c03c:8235:883c:d6ff:fee1:4dc4,
    // fd52:429e:c03c:8235:5968:5bc6:1563:f82f
    const RESPONSE: &str = "0000840000000006000000001c6a6f68616e6e612d51454d552d5669727475616c2d4d616368696e65056c6f63616c00001c8001000000000010fd52429ec03c8235883cd6fffee14dc40134016301640134013101650165016601660166013601640163013301380138013501330132013801630133013001630165013901320134013201350164016603697036046172706100000c8001000000000002c00cc00c001c8001000000000010fd52429ec03c823559685bc61563f82f0166013201380166013301360135013101360163016201350138013601390135c06a000c8001000000000002c00cc00c000180010000000000040a00020701370132013002313007696e2d61646472c08e000c8001000000000002c00c";

    #[test]
    fn ipp_query() {
        let i = parse_mdns(&hex(QUERY)).unwrap();
        assert!(!i.is_response);
        assert_eq!(
            i.queried_services,
            vec![
                "_ipp._tcp.local".to_string(),
                "_ipps._tcp.local".to_string()
            ]
        );
        assert!(i.hostnames.is_empty());
    }

    #[test]
    fn host_announcement() {
        let i = parse_mdns(&hex(RESPONSE)).unwrap();
        assert!(i.is_response);
        assert!(!i.truncated);
        let host = "johanna-QEMU-Virtual-Machine.local";
        assert_eq!(i.hostnames, vec![host.to_string()]);
        assert_eq!(
            i.addresses,
            vec![
                (
                    host.to_string(),
                    IpAddr::V6(
                        "fd52:429e:c03c:8235:883c:d6ff:fee1:4dc4"
                            .parse::<Ipv6Addr>()
                            .unwrap()
                    )
                ),
                (
                    host.to_string(),
                    IpAddr::V6(
                        "fd52:429e:c03c:8235:5968:5bc6:1563:f82f"
                            .parse::<Ipv6Addr>()
                            .unwrap()
                    )
                ),
                (host.to_string(), IpAddr::V4(Ipv4Addr::new(10, 0, 2, 7))),
            ]
        );
        // The dns reader: six answers, the PTRs point back to the host name.
        let d = dns::parse_message(&hex(RESPONSE)).unwrap();
        assert_eq!(d.answers.len(), 6);
        assert_eq!(d.answers[5].name, "7.2.0.10.in-addr.arpa");
        assert_eq!(d.answers[5].data, RData::Ptr(host.to_string()));
        assert!(d.answers[0].cache_flush);
    }

    #[test]
    fn dns_sd_printer_with_txt_model() {
        // No TXT record in the corpus: a DNS-SD announcement laid out per RFC 6763 (PTR, SRV,
        // TXT with ty= and usb_MDL=, A), names compressed as real responders do.
        let b = hex("0000 8400 0000 0004 0000 0000 \
             045f697070 045f746370 056c6f63616c 00 000c 0001 00001194 0007 \
                04 50726e31 c00c \
             c027 0021 8001 00000078 000d 0000 0000 0277 04 70726e31 c016 \
             c027 0010 8001 00001194 001d \
                0b 74793d484c2d4c32333530 \
                10 7573625f4d444c3d484c2d4c32333530 \
             c040 0001 8001 00000078 0004 0a000209");
        let i = parse_mdns(&b).unwrap();
        assert_eq!(i.services, vec!["_ipp._tcp.local".to_string()]);
        assert_eq!(i.instances, vec!["Prn1._ipp._tcp.local".to_string()]);
        assert_eq!(i.hostnames, vec!["prn1.local".to_string()]);
        assert_eq!(i.model(), Some("HL-L2350"));
        assert_eq!(i.txt_value("USB_mdl"), Some("HL-L2350"));
        assert!(!i.truncated);
    }

    #[test]
    fn prefixes_never_panic() {
        for s in [QUERY, RESPONSE] {
            let b = hex(s);
            for n in 0..b.len() {
                let _ = parse_mdns(&b[..n]);
            }
        }
    }
}
