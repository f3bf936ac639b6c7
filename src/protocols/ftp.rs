//! FTP control connections: whether a user name and password crossed in clear, whether the
//! session was upgraded with AUTH TLS, and whether the login succeeded. One `ftp` event per
//! session (at its end, or when it turns to TLS); facts for detection when a password is sent
//! and at the end. Never keeps a user name (beyond "anonymous or not") or a password. After
//! AUTH TLS is accepted the connection is TLS and goes to the TLS state machine
//! ([`InnerTls`]).

use medtap_parsers::ftp;
use serde::Serialize;

use super::inner_tls::InnerTls;
use super::lines::Lines;
use super::{AppContext, AppParser, Direction};
use crate::observe::{FactValue, Facts};

/// Commands counted per session before the parser stops looking (a long transfer session says
/// nothing new after its login).
const MAX_COMMANDS: u32 = 256;

#[derive(Default)]
pub struct FtpState {
    lines: [Lines; 2],
    rec: FtpRecord,
    /// The last command was AUTH (waiting for its 234 reply).
    auth_pending: bool,
    /// The session turned to TLS: nothing more is readable, but the TLS handshake.
    tls: bool,
    inner: Option<InnerTls>,
    facts_sent: bool,
    emitted: bool,
}

#[derive(Serialize, Default, Clone)]
struct FtpRecord {
    user_sent: bool,
    pass_sent: bool,
    anonymous: bool,
    /// AUTH TLS/SSL requested ...
    auth_tls: bool,
    /// ... and accepted (234): the rest of the session is encrypted.
    tls_started: bool,
    /// 230 (success) or 530 (failure) after PASS.
    #[serde(skip_serializing_if = "Option::is_none")]
    login: Option<&'static str>,
    commands: u32,
}

impl FtpState {
    pub fn new() -> FtpState {
        FtpState::default()
    }

    fn facts(&mut self, cx: &mut AppContext<'_>) {
        let r = &self.rec;
        let f = Facts::new("ftp")
            .with("user_sent", FactValue::Bool(r.user_sent))
            .with("pass_sent", FactValue::Bool(r.pass_sent))
            .with(
                "cleartext_credentials",
                FactValue::Bool(r.pass_sent && !r.anonymous),
            )
            .with("anonymous", FactValue::Bool(r.anonymous))
            .with("auth_tls", FactValue::Bool(r.tls_started))
            .with(
                "login",
                FactValue::Str(r.login.unwrap_or("unknown").to_string()),
            );
        cx.obs.facts(cx.ts, cx.flow, f);
        self.facts_sent = true;
    }

    fn emit(&mut self, cx: &mut AppContext<'_>) {
        if self.emitted {
            return;
        }
        self.emitted = true;
        cx.events
            .emit(cx.ts, "ftp", cx.flow, Direction::ToServer, &self.rec);
    }
}

impl AppParser for FtpState {
    fn on_data(&mut self, dir: Direction, data: &[u8], cx: &mut AppContext<'_>) {
        if self.tls {
            if let Some(t) = self.inner.as_mut() {
                t.on_data(dir, data, cx);
            }
            return;
        }
        let rec = &mut self.rec;
        let auth_pending = &mut self.auth_pending;
        let mut pass_now = false;
        let mut tls_now = false;
        self.lines[dir.index()].feed(data, |line, _cut| match dir {
            Direction::ToServer => {
                let Some(c) = ftp::parse_command(line) else {
                    return;
                };
                rec.commands = rec.commands.saturating_add(1);
                match c.verb() {
                    "USER" => {
                        rec.user_sent = true;
                        rec.anonymous = ftp::is_anonymous_user(line);
                    }
                    "PASS" => {
                        rec.pass_sent = true;
                        pass_now = true;
                    }
                    "AUTH" => {
                        let m = ftp::auth_mechanism(line);
                        if m != "other" {
                            rec.auth_tls = true;
                            *auth_pending = true;
                        }
                    }
                    _ => {}
                }
            }
            Direction::ToClient => {
                let Some(r) = ftp::parse_reply(line) else {
                    return;
                };
                if !r.last {
                    return;
                }
                match r.code {
                    234 if *auth_pending => {
                        rec.tls_started = true;
                        tls_now = true;
                    }
                    230 if rec.user_sent => rec.login = Some("success"),
                    530 if rec.user_sent => rec.login = Some("failed"),
                    _ => {}
                }
                if r.code != 234 {
                    *auth_pending = false;
                }
            }
        });
        if pass_now {
            self.facts(cx);
        }
        if tls_now {
            self.tls = true;
            self.inner = Some(InnerTls::new([0, 0]));
            self.facts(cx);
            self.emit(cx);
        }
    }

    fn on_gap(&mut self, dir: Direction, len: u64, cx: &mut AppContext<'_>) {
        if let Some(t) = self.inner.as_mut() {
            t.on_gap(dir, len, cx);
        }
        self.lines[dir.index()].gap();
    }

    fn on_close(&mut self, cx: &mut AppContext<'_>) {
        if !self.tls {
            self.facts(cx);
        }
        self.emit(cx);
        if let Some(t) = self.inner.as_mut() {
            t.on_close(cx);
        }
    }

    fn done(&self) -> bool {
        self.inner.as_ref().is_some_and(InnerTls::done) || self.rec.commands >= MAX_COMMANDS
    }
}
