//! TLS that starts inside another protocol's connection: RDP once the negotiation selects TLS
//! or CredSSP, FTP once `AUTH TLS`/`AUTH SSL` is accepted (234), VNC once a VeNCrypt TLS
//! sub-type is acknowledged. The rest of the stream is handed to the TLS state machine, so the
//! `tls` event, the device's JA3/JA4 and the TLS version and cipher rules apply there as on
//! port 443 (an RDP server that negotiates TLS 1.0 is as weak as a web server that does).

use super::tls::TlsState;
use super::{AppContext, AppParser, Direction};

pub struct InnerTls {
    tls: TlsState,
    /// Bytes of each direction still to skip before TLS starts (e.g. VeNCrypt's one-byte
    /// acknowledgement from the server).
    skip: [usize; 2],
}

impl InnerTls {
    /// TLS from the next byte of each direction, after skipping `skip[dir]` bytes.
    pub fn new(skip: [usize; 2]) -> InnerTls {
        InnerTls {
            tls: TlsState::new(),
            skip,
        }
    }

    pub fn on_data(&mut self, dir: Direction, data: &[u8], cx: &mut AppContext<'_>) {
        let s = &mut self.skip[dir.index()];
        let n = (*s).min(data.len());
        *s -= n;
        if n < data.len() {
            self.tls.on_data(dir, &data[n..], cx);
        }
    }

    pub fn on_gap(&mut self, dir: Direction, len: u64, cx: &mut AppContext<'_>) {
        self.skip[dir.index()] = 0;
        self.tls.on_gap(dir, len, cx);
    }

    pub fn on_close(&mut self, cx: &mut AppContext<'_>) {
        self.tls.on_close(cx);
    }

    pub fn done(&self) -> bool {
        self.tls.done()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::FlowMeta;
    use crate::observe::{FactValue, ObsBuf, Observation};
    use crate::output::EventSink;
    use crate::stats::WorkerStats;
    use crate::time::Ts;

    // TLS 1.0 streams of a real openssl s_client/s_server exchange (parsers/tests/data).
    const TLS1_C: &[u8] =
        include_bytes!("../../parsers/tests/data/tls_arkime_openssl-tls1_client.bin");
    const TLS1_S: &[u8] =
        include_bytes!("../../parsers/tests/data/tls_arkime_openssl-tls1_server.bin");

    const C: Direction = Direction::ToServer;
    const S: Direction = Direction::ToClient;

    /// Feeds `steps` to `p`, closes it; (event types, the TLS version facts, done before close).
    fn run(
        p: &mut dyn AppParser,
        steps: &[(Direction, &[u8])],
    ) -> (Vec<String>, Vec<String>, bool) {
        let m = FlowMeta {
            flow_id: 1,
            proto: 6,
            client: ("10.71.0.10".parse().unwrap(), 44438),
            server: ("10.71.0.20".parse().unwrap(), 3389),
            vlan: [0, 0],
            client_mac: [0; 6],
            server_mac: [0; 6],
            to_group: false,
            app_proto: None,
        };
        let mut events = EventSink::new(true);
        let mut stats = WorkerStats::default();
        let mut obs = ObsBuf::new(true);
        let mut cx = AppContext {
            ts: Ts(1_000_000),
            flow: &m,
            events: &mut events,
            stats: &mut stats,
            obs: &mut obs,
        };
        for (d, b) in steps {
            p.on_data(*d, b, &mut cx);
        }
        let done = p.done();
        p.on_close(&mut cx);
        let out = events.take();
        let types = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_slice(l).unwrap();
                v["event_type"].as_str().unwrap_or("?").to_string()
            })
            .collect();
        let versions = obs
            .take(None)
            .items
            .into_iter()
            .filter_map(|o| match o {
                Observation::Facts { facts, .. } if facts.protocol == "tls" => {
                    match facts.get("version") {
                        Some(FactValue::Str(v)) => Some(v.clone()),
                        _ => None,
                    }
                }
                _ => None,
            })
            .collect();
        (types, versions, done)
    }

    // xrdp 0.9.21 / xfreerdp /sec:tls (pcaps/legacy/rdp_tls10.pcap): Connection Request
    // asking for TLS, Confirm selecting it, then TLS.
    const RDP_CR: &[u8] = b"\x03\x00\x00\x2d\x28\xe0\x00\x00\x00\x00\x00Cookie: mstshash=lgnurse\r\n\x01\x00\x08\x00\x01\x00\x00\x00";
    const RDP_CC: &[u8] =
        b"\x03\x00\x00\x13\x0e\xd0\x00\x00\x12\x34\x00\x02\x01\x08\x00\x01\x00\x00\x00";

    #[test]
    fn rdp_selecting_tls_hands_the_rest_to_tls() {
        let mut p = super::super::rdp::RdpState::new();
        let (types, versions, done) = run(
            &mut p,
            &[(C, RDP_CR), (S, RDP_CC), (C, TLS1_C), (S, TLS1_S)],
        );
        assert_eq!(types, ["rdp", "tls"]);
        assert_eq!(versions, ["TLS 1.0"]);
        assert!(done, "the TLS handshake is all there is to read");
        // Standard RDP Security: nothing after the confirm is TLS
        let mut cc = RDP_CC.to_vec();
        cc[15] = 0;
        let mut p = super::super::rdp::RdpState::new();
        let (types, versions, _) = run(&mut p, &[(C, RDP_CR), (S, &cc), (C, TLS1_C)]);
        assert_eq!(types, ["rdp"]);
        assert!(versions.is_empty());
    }

    #[test]
    fn ftp_auth_tls_hands_the_rest_to_tls() {
        let mut p = super::super::ftp::FtpState::new();
        let (types, versions, done) = run(
            &mut p,
            &[
                (S, b"220 (vsFTPd 3.0.3)\r\n"),
                (C, b"AUTH SSL\r\n"),
                (S, b"234 Proceed with negotiation.\r\n"),
                (C, TLS1_C),
                (S, TLS1_S),
            ],
        );
        assert_eq!(types, ["ftp", "tls"]);
        assert_eq!(versions, ["TLS 1.0"]);
        assert!(done);
    }

    #[test]
    fn vencrypt_tls_subtype_hands_the_rest_to_tls_after_the_ack() {
        let mut p = super::super::rfb::RfbState::new();
        let (types, versions, _) = run(
            &mut p,
            &[
                (S, b"RFB 003.008\n"),
                (C, b"RFB 003.008\n"),
                (S, b"\x01\x13"),
                (C, b"\x13"),
                (S, b"\x00\x02"),
                (C, b"\x00\x02"),
                (S, b"\x00\x01\x00\x00\x01\x05"),
                (C, b"\x00\x00\x01\x05"),
                (S, b"\x01"),
                (C, TLS1_C),
                (S, TLS1_S),
            ],
        );
        assert_eq!(types, ["rfb", "tls"]);
        assert_eq!(versions, ["TLS 1.0"]);
        // the client's ClientHello in the same segment as its sub-type choice
        let mut choice = b"\x00\x00\x01\x05".to_vec();
        choice.extend_from_slice(TLS1_C);
        let mut p = super::super::rfb::RfbState::new();
        let (_, versions, _) = run(
            &mut p,
            &[
                (S, b"RFB 003.008\n\x01\x13"),
                (C, b"RFB 003.008\n\x13\x00\x02"),
                (S, b"\x00\x02\x00\x01\x00\x00\x01\x05"),
                (C, &choice),
                (S, b"\x01"),
                (S, TLS1_S),
            ],
        );
        assert_eq!(versions, ["TLS 1.0"]);
    }
}
