//! SMB: which dialects a client offers and which one the server picks (SMB1 with its LANMAN
//! dialects, or SMB2/3), read from the NetBIOS-framed negotiate messages. One `smb` event per
//! connection, when the negotiation is complete (or at the end); facts for detection with it.
//! On SMB1, the session setup that follows is read too: its NativeOS and NativeLanMan strings
//! become device evidence of their sender (`smb_native_os`, `smb_native_lanman`), which is how
//! an end-of-life Windows or an old Samba names itself. File names, user names, domains,
//! passwords and share paths are never read.
//!
//! Limits: at most [`MAX_FRAME_KEPT`] bytes of a frame are kept (a negotiate fits, and so does
//! a session setup with an NTLMSSP or ordinary Kerberos blob; the native strings of a longer one
//! are lost; file data is skipped as it arrives, never buffered); the parser stops after
//! [`MAX_MESSAGES`] SMB messages.

use medtap_parsers::smb::{self, NbssType, SmbMessage};
use serde::Serialize;

use super::{AppContext, AppParser, Direction};
use crate::fingerprint::extract;
use crate::observe::{FactValue, Facts};

/// Bytes kept of one NetBIOS frame (negotiate messages are under 1 KiB; a session setup with
/// an NTLMSSP blob under 1 KiB, with a Kerberos ticket a few KiB).
pub const MAX_FRAME_KEPT: usize = 8192;
/// SMB messages read per connection: the negotiation is in the first few.
const MAX_MESSAGES: u32 = 16;

#[derive(Default)]
struct Side {
    /// Bytes of the current frame (header included), at most [`MAX_FRAME_KEPT`].
    buf: Vec<u8>,
    /// Bytes of the current frame still to skip after the kept prefix was handled.
    skip: usize,
    /// Lost bytes: stop reading this direction.
    lost: bool,
}

#[derive(Default)]
pub struct SmbState {
    sides: [Side; 2],
    rec: SmbRecord,
    /// SMB1 dialects offered, for naming the chosen one from its index.
    smb1_offer: Vec<String>,
    messages: u32,
    negotiated: bool,
    emitted: bool,
    /// SMB1 session setup strings seen from [client, server].
    native_seen: [bool; 2],
}

#[derive(Serialize, Default)]
struct SmbRecord {
    /// 1 or 2 (SMB2 and SMB3 are dialects of the SMB2 protocol).
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u8>,
    /// SMB1 dialect strings offered ("NT LM 0.12", "LANMAN1.0", "SMB 2.002", ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    smb1_dialects_offered: Vec<String>,
    /// SMB2 dialect revisions offered ("2.0.2", "3.1.1", ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    smb2_dialects_offered: Vec<String>,
    /// The dialect the server chose.
    #[serde(skip_serializing_if = "Option::is_none")]
    dialect: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signing_required: Option<bool>,
    /// A NetBIOS session request (TCP 139) opened the connection.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    netbios_session: bool,
}

impl SmbState {
    pub fn new() -> SmbState {
        SmbState::default()
    }

    fn message(&mut self, dir: Direction, kind: NbssType, payload: &[u8], cx: &mut AppContext<'_>) {
        if kind == NbssType::SESSION_REQUEST && !self.rec.netbios_session {
            self.rec.netbios_session = true;
            cx.obs.facts(
                cx.ts,
                cx.flow,
                Facts::new("netbios").with("service", FactValue::Str("session".into())),
            );
        }
        if kind != NbssType::SESSION_MESSAGE {
            return;
        }
        self.messages += 1;
        let Ok(m) = smb::parse_smb(payload) else {
            return;
        };
        let r = &mut self.rec;
        match m {
            SmbMessage::Smb1NegotiateRequest { dialects } if dir == Direction::ToServer => {
                r.smb1_dialects_offered = dialects.clone();
                self.smb1_offer = dialects;
            }
            SmbMessage::Smb1NegotiateResponse {
                dialect_index,
                signing_required,
            } => {
                r.version = Some(1);
                r.dialect = self.smb1_offer.get(usize::from(dialect_index)).cloned();
                r.signing_required = Some(signing_required);
                self.negotiated = true;
            }
            SmbMessage::Smb1SessionSetup(s) => {
                r.version.get_or_insert(1);
                let side = if s.response {
                    Direction::ToClient
                } else {
                    Direction::ToServer
                };
                if side == dir && !self.native_seen[dir.index()] {
                    let items = extract::from_smb_session_setup(&s);
                    if !items.is_empty() {
                        self.native_seen[dir.index()] = true;
                        let (mac, ip) = cx.flow.sender(dir);
                        cx.obs.evidence(cx.ts, mac, Some(ip), items);
                    }
                }
            }
            SmbMessage::Smb1Other { .. } => {
                r.version.get_or_insert(1);
            }
            SmbMessage::Smb2NegotiateRequest {
                dialects,
                signing_required: _,
            } if dir == Direction::ToServer => {
                r.smb2_dialects_offered = dialects
                    .iter()
                    .map(|&d| smb::smb2_dialect_name(d))
                    .collect();
            }
            SmbMessage::Smb2NegotiateResponse {
                dialect,
                signing_required,
            } => {
                r.version = Some(2);
                r.dialect = Some(smb::smb2_dialect_name(dialect));
                r.signing_required = Some(signing_required);
                // 0x02ff answers an SMB1 negotiate; a real SMB2 negotiate follows.
                self.negotiated = dialect != 0x02ff;
            }
            SmbMessage::Smb2Other { .. } => {
                r.version.get_or_insert(2);
            }
            _ => {}
        }
        if self.negotiated {
            self.emit(cx);
        }
    }

    fn emit(&mut self, cx: &mut AppContext<'_>) {
        if self.emitted || (self.rec.version.is_none() && self.rec.smb1_dialects_offered.is_empty())
        {
            return;
        }
        self.emitted = true;
        let r = &self.rec;
        // SMB1 offered: an SMB1 negotiate carrying any dialect that is not the SMB2 upgrade.
        let smb1_offered = r
            .smb1_dialects_offered
            .iter()
            .any(|d| !smb::is_smb2_dialect_string(d));
        let mut offered = r.smb1_dialects_offered.clone();
        offered.extend(r.smb2_dialects_offered.iter().cloned());
        let mut f = Facts::new("smb")
            .with("smb1", FactValue::Bool(r.version == Some(1)))
            .with("smb1_offered", FactValue::Bool(smb1_offered))
            .with(
                "dialects_offered",
                FactValue::List(offered.into_iter().map(Into::into).collect()),
            );
        if let Some(v) = r.version {
            f = f.with("version", FactValue::Int(i64::from(v)));
        }
        if let Some(d) = &r.dialect {
            f = f.with("dialect", FactValue::Str(d.clone()));
        }
        if let Some(s) = r.signing_required {
            f = f.with("signing_required", FactValue::Bool(s));
        }
        cx.obs.facts(cx.ts, cx.flow, f);
        cx.events
            .emit(cx.ts, "smb", cx.flow, Direction::ToServer, &self.rec);
    }
}

impl AppParser for SmbState {
    fn on_data(&mut self, dir: Direction, mut data: &[u8], cx: &mut AppContext<'_>) {
        let i = dir.index();
        while !data.is_empty() && !self.done() {
            let side = &mut self.sides[i];
            if side.lost {
                return;
            }
            if side.skip > 0 {
                let n = side.skip.min(data.len());
                side.skip -= n;
                data = &data[n..];
                continue;
            }
            // Gather the header, then the frame (up to the kept prefix).
            if side.buf.len() < smb::NBSS_HEADER_LEN {
                let take = (smb::NBSS_HEADER_LEN - side.buf.len()).min(data.len());
                side.buf.extend_from_slice(&data[..take]);
                data = &data[take..];
                if side.buf.len() < smb::NBSS_HEADER_LEN {
                    continue;
                }
            }
            let Ok(total) = smb::frame_len(&side.buf) else {
                side.lost = true;
                side.buf = Vec::new();
                return;
            };
            let keep = total.min(MAX_FRAME_KEPT);
            if side.buf.len() < keep {
                let take = (keep - side.buf.len()).min(data.len());
                side.buf.extend_from_slice(&data[..take]);
                data = &data[take..];
                if side.buf.len() < keep {
                    continue;
                }
            }
            let want = total;
            let buf = std::mem::take(&mut side.buf);
            side.skip = want - keep;
            let kind = NbssType(buf[0]);
            self.message(dir, kind, &buf[smb::NBSS_HEADER_LEN..], cx);
        }
    }

    fn on_gap(&mut self, dir: Direction, _len: u64, _cx: &mut AppContext<'_>) {
        let s = &mut self.sides[dir.index()];
        s.lost = true;
        s.buf = Vec::new();
    }

    fn on_close(&mut self, cx: &mut AppContext<'_>) {
        self.emit(cx);
    }

    fn done(&self) -> bool {
        // SMB2/3 has nothing more to tell; SMB1 goes on to its session setup (both sides'
        // native strings), within MAX_MESSAGES.
        let learned =
            self.negotiated && (self.rec.version != Some(1) || self.native_seen.iter().all(|&s| s));
        learned || self.messages >= MAX_MESSAGES || self.sides.iter().all(|s| s.lost)
    }
}
