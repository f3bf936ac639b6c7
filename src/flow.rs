//! The flow table: a bounded map from the direction-independent 5-tuple (+VLAN) to flow state.

use std::net::IpAddr;

use crate::protocols::AppProto;

/// What a flow is, oriented: `client` opened the connection (SYN sender, or guessed by port).
#[derive(Debug, Clone)]
pub struct FlowMeta {
    pub flow_id: u64,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...).
    pub proto: u8,
    pub client: (IpAddr, u16),
    pub server: (IpAddr, u16),
    /// Outer and inner 802.1Q VLAN ids, 0 = none.
    pub vlan: [u16; 2],
    pub client_mac: [u8; 6],
    pub server_mac: [u8; 6],
    pub app_proto: Option<AppProto>,
}

impl FlowMeta {
    pub fn vlan_outer(&self) -> Option<u16> {
        (self.vlan[0] != 0).then_some(self.vlan[0])
    }
    pub fn vlan_inner(&self) -> Option<u16> {
        (self.vlan[1] != 0).then_some(self.vlan[1])
    }
    pub fn has_ports(&self) -> bool {
        matches!(self.proto, 6 | 17 | 132)
    }
    pub fn proto_name(&self) -> &'static str {
        proto_name(self.proto)
    }
}

/// EVE spelling of an IP protocol number.
pub fn proto_name(p: u8) -> &'static str {
    match p {
        1 => "ICMP",
        2 => "IGMP",
        6 => "TCP",
        17 => "UDP",
        47 => "GRE",
        50 => "ESP",
        58 => "IPv6-ICMP",
        132 => "SCTP",
        _ => "other",
    }
}
