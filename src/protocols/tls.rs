//! TLS handshake metadata, one [`TlsState`] per flow.
//!
//! Inputs: each direction's reassembled bytes and gap notices ([`AppParser`]). Output: ONE `tls`
//! event per flow, emitted as soon as the ServerHello is decoded (and the ClientHello, if the
//! client side is still being read), or when both sides are finished, or at `on_close` with
//! whatever was seen (a hello over the buffer cap alone also makes an event, carrying the
//! value and the limit). Counters: [`Counter::TlsClientHello`], [`Counter::TlsServerHello`],
//! [`Counter::TlsParseError`], [`Counter::TlsRecordTooLarge`].
//!
//! Per direction the state follows records ([`tls::parse_record_header`]), concatenates the
//! bodies of handshake records, skips handshake messages other than the hellos without
//! buffering them, and buffers a hello message up to [`MAX_HANDSHAKE_BUF`] bytes. A direction is
//! finished once its hello is decoded, when it sends ChangeCipherSpec, application data or a
//! fatal alert, or on an error. It never decrypts and never looks at certificates.
//!
//! Gaps: the partial message of that direction is dropped (a parse error if one was under
//! way) and the direction resynchronises on the next bytes only if they start a believable
//! record header; otherwise it gives up.

use std::rc::Rc;

use medtap_parsers::tls::{self, ClientHello, ContentType, Handshake, HandshakeType, ServerHello};
#[cfg(test)]
use serde::Serialize;

use super::{AppContext, AppParser, Direction};
use crate::fingerprint::EvidenceKind;
use crate::json_key;
use crate::observe::{FactValue, Facts};
use crate::output::{push_json_str, push_name, JsonObj};
use crate::stats::{Counter, WorkerStats};

/// Bytes of one hello message buffered per direction. A ClientHello is usually 200 to 2000
/// bytes (post-quantum key shares included) and a ServerHello smaller; 32 KiB leaves room for
/// odd clients and bounds a flow's TLS state to 64 KiB. Over it: [`Counter::TlsRecordTooLarge`].
pub const MAX_HANDSHAKE_BUF: usize = 32 * 1024;

/// Cipher suites listed in the event (a hello has up to [`tls::MAX_CIPHER_SUITES`]).
pub const EVENT_MAX_CIPHER_SUITES: usize = 128;

/// Whether the first bytes of a direction start a TLS/SSL handshake: `Some(true)` for a
/// handshake record (`0x16 0x03 0x00..=0x04` carrying a ClientHello/ServerHello) or an SSLv2
/// CLIENT-HELLO/SERVER-HELLO, `Some(false)` when ruled out, `None` when more bytes are needed
/// (at most 7).
pub fn looks_like_tls(first_bytes: &[u8]) -> Option<bool> {
    tls::looks_like_tls(first_bytes)
}

/// Why a direction stopped being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Finish {
    /// Its hello was decoded.
    Hello,
    /// ChangeCipherSpec or application data: the rest is encrypted.
    Encrypted,
    /// A fatal alert.
    Alert,
    /// Bytes that are not TLS, a hello that does not decode, a cap hit, or a failed resync.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Active,
    /// After a gap: the next bytes must start a record header, or the direction gives up.
    Resync,
    Finished(Finish),
}

/// One direction's parse state.
struct Side {
    mode: Mode,
    /// A record header being assembled (5 bytes for TLS, 2 for SSLv2).
    hdr: [u8; tls::RECORD_HEADER_LEN],
    hdr_len: usize,
    /// The record whose body is being read, and how many body bytes are left.
    rec: Option<tls::RecordHeader>,
    body_left: usize,
    records: u32,
    /// The hello message being assembled (its 4-byte header first), or the header of another
    /// handshake message.
    hs: Vec<u8>,
    /// Length the hello in `hs` will have (header included); 0 until its header is read.
    hs_total: usize,
    /// Version of the record that carried the first byte of `hs`.
    hs_record_version: u16,
    /// Body bytes of a non-hello handshake message still to skip.
    hs_skip: usize,
    /// Alert bytes gathered (level, description).
    alert: [u8; 2],
    alert_len: usize,
}

impl Side {
    fn new() -> Side {
        Side {
            mode: Mode::Active,
            hdr: [0; tls::RECORD_HEADER_LEN],
            hdr_len: 0,
            rec: None,
            body_left: 0,
            records: 0,
            hs: Vec::new(),
            hs_total: 0,
            hs_record_version: 0,
            hs_skip: 0,
            alert: [0; 2],
            alert_len: 0,
        }
    }

    fn finished(&self) -> bool {
        matches!(self.mode, Mode::Finished(_))
    }

    fn finish(&mut self, why: Finish) {
        self.mode = Mode::Finished(why);
        self.hs = Vec::new();
        self.hs_total = 0;
        self.hs_skip = 0;
        self.rec = None;
        self.body_left = 0;
        self.hdr_len = 0;
    }

    /// A record header, a record body or a handshake message is partly read.
    fn mid_message(&self) -> bool {
        self.hdr_len > 0 || self.body_left > 0 || !self.hs.is_empty() || self.hs_skip > 0
    }

    fn fail(&mut self, stats: &mut WorkerStats) {
        stats.inc(Counter::TlsParseError);
        self.finish(Finish::Failed);
    }

    /// Feeds in-order bytes. Returns a decoded hello, after which the side is finished, and
    /// records what else it learnt in `seen`.
    fn feed(
        &mut self,
        mut data: &[u8],
        stats: &mut WorkerStats,
        seen: &mut Seen,
    ) -> Option<Handshake> {
        while !data.is_empty() {
            if self.finished() {
                return None;
            }
            if self.body_left == 0 {
                self.rec = None;
                data = self.read_header(data, stats, seen)?;
                continue;
            }
            let n = self.body_left.min(data.len());
            let (chunk, rest) = data.split_at(n);
            data = rest;
            self.body_left -= n;
            let Some(rec) = self.rec else {
                continue;
            };
            if rec.sslv2 {
                self.hs.extend_from_slice(chunk);
                if self.body_left == 0 {
                    let r = tls::parse_sslv2_message(&self.hs);
                    return self.hello_result(r, stats);
                }
            } else if rec.content_type == ContentType::HANDSHAKE {
                if let Some(h) = self.handshake_bytes(chunk, rec.version, stats, seen) {
                    return Some(h);
                }
            } else if rec.content_type == ContentType::ALERT {
                for &b in chunk {
                    if self.alert_len < 2 {
                        self.alert[self.alert_len] = b;
                        self.alert_len += 1;
                    }
                }
                if self.body_left == 0 && self.alert_len == 2 {
                    seen.alert = Some((self.alert[0], self.alert[1]));
                    self.alert_len = 0;
                    // RFC 5246 §7.2: level 2 = fatal; the connection ends.
                    if self.alert[0] == 2 {
                        self.finish(Finish::Alert);
                    }
                }
            }
        }
        None
    }

    /// Assembles and checks one record header; returns the bytes after what it consumed, or
    /// `None` when it needs more or the side is finished.
    fn read_header<'d>(
        &mut self,
        data: &'d [u8],
        stats: &mut WorkerStats,
        seen: &mut Seen,
    ) -> Option<&'d [u8]> {
        let mut data = data;
        let hdr = loop {
            match tls::parse_record_header(&self.hdr[..self.hdr_len]) {
                Ok(h) => break h,
                Err(tls::TlsError::Incomplete(need)) => {
                    let want = match need {
                        medtap_parsers::Needed::Size(n) => n,
                        medtap_parsers::Needed::Unknown => 1,
                    };
                    let room = tls::RECORD_HEADER_LEN - self.hdr_len;
                    let k = want.min(room).min(data.len());
                    if k == 0 {
                        return None;
                    }
                    self.hdr[self.hdr_len..self.hdr_len + k].copy_from_slice(&data[..k]);
                    self.hdr_len += k;
                    data = &data[k..];
                }
                Err(e) => {
                    if self.mode == Mode::Resync {
                        // Counted at the gap already.
                        self.finish(Finish::Failed);
                    } else if matches!(e, tls::TlsError::RecordTooLarge { .. }) {
                        stats.inc(Counter::TlsRecordTooLarge);
                        self.finish(Finish::Failed);
                    } else {
                        self.fail(stats);
                    }
                    return None;
                }
            }
        };
        self.hdr_len = 0;
        let resync = self.mode == Mode::Resync;
        self.mode = Mode::Active;
        self.records = self.records.saturating_add(1);
        if hdr.sslv2 {
            // Only the first record of a direction may be an SSLv2 hello.
            if self.records > 1 || resync {
                if resync {
                    self.finish(Finish::Failed);
                } else {
                    self.fail(stats);
                }
                return None;
            }
            if hdr.len > MAX_HANDSHAKE_BUF {
                seen.too_large = Some(hdr.len);
                stats.inc(Counter::TlsRecordTooLarge);
                self.finish(Finish::Failed);
                return None;
            }
        } else if hdr.content_type != ContentType::HANDSHAKE && !self.hs.is_empty() {
            // RFC 8446 §5.1: handshake messages are not interleaved with other record types.
            self.fail(stats);
            return None;
        } else if hdr.content_type == ContentType::CHANGE_CIPHER_SPEC
            || hdr.content_type == ContentType::APPLICATION_DATA
        {
            seen.encrypted = true;
            self.finish(Finish::Encrypted);
            return None;
        }
        self.rec = Some(hdr);
        self.body_left = hdr.len;
        self.alert_len = 0;
        Some(data)
    }

    /// Bytes of a handshake record body.
    fn handshake_bytes(
        &mut self,
        mut b: &[u8],
        record_version: u16,
        stats: &mut WorkerStats,
        seen: &mut Seen,
    ) -> Option<Handshake> {
        while !b.is_empty() {
            if self.hs_skip > 0 {
                let k = self.hs_skip.min(b.len());
                self.hs_skip -= k;
                b = &b[k..];
                continue;
            }
            if self.hs_total == 0 && self.hs.is_empty() {
                // A message whose header and body are all in this record chunk (a hello in
                // one record, the usual case): read where it is, without copying it.
                if let Ok((ty, len)) = tls::parse_handshake_header(b) {
                    let total = tls::HANDSHAKE_HEADER_LEN.saturating_add(len);
                    if ty != HandshakeType::CLIENT_HELLO && ty != HandshakeType::SERVER_HELLO {
                        self.hs_skip = len;
                        b = &b[tls::HANDSHAKE_HEADER_LEN..];
                        continue;
                    }
                    if total <= MAX_HANDSHAKE_BUF && b.len() >= total {
                        let r = tls::parse_handshake(&b[..total], record_version).map(|(_, m)| m);
                        return self.hello_result(r, stats);
                    }
                }
            }
            if self.hs_total == 0 {
                if self.hs.is_empty() {
                    self.hs_record_version = record_version;
                }
                let k = (tls::HANDSHAKE_HEADER_LEN - self.hs.len()).min(b.len());
                self.hs.extend_from_slice(&b[..k]);
                b = &b[k..];
                let Ok((ty, len)) = tls::parse_handshake_header(&self.hs) else {
                    return None; // header still partial
                };
                if ty != HandshakeType::CLIENT_HELLO && ty != HandshakeType::SERVER_HELLO {
                    self.hs.clear();
                    self.hs_skip = len;
                    continue;
                }
                let total = tls::HANDSHAKE_HEADER_LEN.saturating_add(len);
                if total > MAX_HANDSHAKE_BUF {
                    seen.too_large = Some(total);
                    stats.inc(Counter::TlsRecordTooLarge);
                    self.finish(Finish::Failed);
                    return None;
                }
                self.hs_total = total;
            }
            let k = (self.hs_total - self.hs.len()).min(b.len());
            self.hs.extend_from_slice(&b[..k]);
            b = &b[k..];
            if self.hs.len() == self.hs_total {
                let r = tls::parse_handshake(&self.hs, self.hs_record_version).map(|(_, m)| m);
                return self.hello_result(r, stats);
            }
        }
        None
    }

    fn hello_result(
        &mut self,
        r: Result<Handshake, tls::TlsError>,
        stats: &mut WorkerStats,
    ) -> Option<Handshake> {
        match r {
            Ok(h @ (Handshake::ClientHello(_) | Handshake::ServerHello(_))) => {
                self.finish(Finish::Hello);
                Some(h)
            }
            Ok(Handshake::Other { .. }) | Err(_) => {
                self.fail(stats);
                None
            }
        }
    }

    fn gap(&mut self, stats: &mut WorkerStats) {
        if self.finished() {
            return;
        }
        if self.mid_message() {
            stats.inc(Counter::TlsParseError);
        }
        self.hs = Vec::new();
        self.hs_total = 0;
        self.hs_skip = 0;
        self.hdr_len = 0;
        self.rec = None;
        self.body_left = 0;
        self.alert_len = 0;
        self.mode = Mode::Resync;
    }
}

/// What a side learnt besides its hello.
#[derive(Default)]
struct Seen {
    alert: Option<(u8, u8)>,
    encrypted: bool,
    too_large: Option<usize>,
}

/// The per-flow TLS state machine.
pub struct TlsState {
    sides: [Side; 2],
    /// The ClientHello and the direction it came from (normally ToServer; ToClient when the
    /// flow's orientation was guessed wrong).
    client: Option<(Direction, ClientHello)>,
    server: Option<(Direction, ServerHello)>,
    alert: Option<(Direction, u8, u8)>,
    too_large: Option<(Direction, usize)>,
    emitted: bool,
}

impl Default for TlsState {
    fn default() -> Self {
        TlsState::new()
    }
}

impl TlsState {
    pub fn new() -> TlsState {
        TlsState {
            sides: [Side::new(), Side::new()],
            client: None,
            server: None,
            alert: None,
            too_large: None,
            emitted: false,
        }
    }

    /// Emits the event once there is a ServerHello and the client side has nothing more to
    /// give, or once both sides are finished.
    fn maybe_emit(&mut self, cx: &mut AppContext<'_>) {
        if self.emitted {
            return;
        }
        let ready = match &self.server {
            Some((sdir, _)) => {
                self.client.is_some() || self.sides[sdir.reverse().index()].finished()
            }
            None => false,
        } || self.sides.iter().all(Side::finished);
        if ready {
            self.emit(cx);
        }
    }

    fn emit(&mut self, cx: &mut AppContext<'_>) {
        if self.emitted
            || (self.client.is_none() && self.server.is_none() && self.too_large.is_none())
        {
            return;
        }
        self.emitted = true;
        // Borrowed from the worker's cache; only the facts (handed over) are copied.
        let fp = self.client.as_ref().map(|(_, c)| fingerprints(c));
        let (ja3, ja4) = match &fp {
            Some(f) => (f.0.as_ref(), f.1.as_deref()),
            None => (None, None),
        };
        let ja3s = self.server.as_ref().and_then(|(_, s)| ja3s(s));
        if let Some((d, _)) = &self.client {
            let ja3 = ja3.map(|j| (EvidenceKind::TlsJa3, j.hash.as_str(), 100));
            let ja4 = ja4.map(|j| (EvidenceKind::TlsJa4, j, 100));
            let (mac, ip) = cx.flow.sender(*d);
            match (ja3, ja4) {
                (Some(a), Some(b)) => cx.obs.evidence_refs(cx.ts, mac, Some(ip), &[a, b]),
                (Some(a), None) | (None, Some(a)) => {
                    cx.obs.evidence_refs(cx.ts, mac, Some(ip), &[a])
                }
                (None, None) => {}
            }
        }
        // `src` is the TLS client: the side that sent the ClientHello.
        let src = match (&self.client, &self.server) {
            (Some((d, _)), _) => *d,
            (None, Some((d, _))) => d.reverse(),
            (None, None) => Direction::ToServer,
        };
        cx.events.emit_with(cx.ts, "tls", cx.flow, src, |b| {
            self.write_event(ja3, ja4, ja3s.as_ref(), b)
        });
        if cx.obs.enabled() {
            let facts = self.facts(fp.as_ref().map(|f| f.2.clone()));
            cx.obs.facts(cx.ts, cx.flow, facts);
        }
    }

    /// The `tls` event body: the JSON object `serde_json` makes of [`TlsState::event`] (a test
    /// holds them equal), written by hand from the hellos without building the event.
    fn write_event(
        &self,
        ja3: Option<&tls::Ja3>,
        ja4: Option<&str>,
        ja3s: Option<&tls::Ja3>,
        b: &mut Vec<u8>,
    ) {
        let c = self.client.as_ref().map(|(_, c)| c);
        let s = self.server.as_ref().map(|(_, s)| s);
        let mut o = JsonObj::new(b);
        if let Some(s) = s {
            Code::version(s.negotiated_version()).write(o.key(json_key!("version")));
        }
        if let Some(c) = c {
            o.opt_str(json_key!("sni"), c.sni.as_deref());
            Code::Hex4(c.version).write(o.key(json_key!("client_version")));
            if !c.supported_versions.is_empty() {
                push_hex4_array(
                    o.key(json_key!("client_supported_versions")),
                    &c.supported_versions,
                );
            }
        }
        if let Some(s) = s {
            Code::Hex4(s.version).write(o.key(json_key!("server_version")));
            if let Some(v) = s.selected_version {
                Code::Hex4(v).write(o.key(json_key!("server_selected_version")));
            }
            if !s.sslv2 {
                Code::Hex4(s.cipher_suite).write(o.key(json_key!("cipher_suite")));
            }
        }
        if let Some(c) = c {
            if c.sslv2 {
                if !c.sslv2_cipher_specs.is_empty() {
                    o.array(
                        json_key!("client_cipher_suites"),
                        c.sslv2_cipher_specs.iter().take(EVENT_MAX_CIPHER_SUITES),
                        |b, &v| Code::Hex6(v).write(b),
                    );
                }
            } else if !c.cipher_suites.is_empty() {
                push_hex4_array(
                    o.key(json_key!("client_cipher_suites")),
                    &c.cipher_suites[..c.cipher_suites.len().min(EVENT_MAX_CIPHER_SUITES)],
                );
            }
            if !c.alpn.is_empty() {
                o.array(json_key!("alpn"), &c.alpn, |b, a| push_json_str(b, a));
            }
        }
        if let Some(a) = s.and_then(|s| s.alpn.as_deref()) {
            o.str(json_key!("server_alpn"), a);
        }
        for (k, j) in [(json_key!("ja3"), ja3), (json_key!("ja3s"), ja3s)] {
            if let Some(j) = j {
                let mut f = JsonObj::new(o.key(k));
                f.str(json_key!("hash"), &j.hash);
                f.str(json_key!("string"), &j.string);
                f.end();
            }
        }
        o.opt_str(json_key!("ja4"), ja4);
        if c.is_some_and(|c| c.sslv2) || s.is_some_and(|s| s.sslv2) {
            o.bool(json_key!("sslv2"), true);
        }
        if s.is_some_and(|s| s.hello_retry_request) {
            o.bool(json_key!("hello_retry_request"), true);
        }
        if let Some((d, level, description)) = self.alert {
            let mut a = JsonObj::new(o.key(json_key!("alert")));
            a.name(json_key!("from"), self.alert_from(d));
            a.u64(json_key!("level"), u64::from(level));
            a.u64(json_key!("description"), u64::from(description));
            a.end();
        }
        if let Some((_, len)) = self.too_large {
            let mut l = JsonObj::new(o.key(json_key!("handshake_too_large")));
            l.u64(json_key!("value"), len as u64);
            l.u64(json_key!("limit"), MAX_HANDSHAKE_BUF as u64);
            l.end();
        }
        o.end();
    }

    /// "client" or "server": who sent an alert that travelled in `d`.
    fn alert_from(&self, d: Direction) -> &'static str {
        if Some(d) == self.client.as_ref().map(|(cd, _)| *cd)
            || (self.client.is_none() && d == Direction::ToServer)
        {
            "client"
        } else {
            "server"
        }
    }

    /// What detection rules test: versions offered (the hello's version and its
    /// supported_versions, GREASE left out) and chosen, cipher suites offered and chosen by
    /// IANA name (hex when unnamed).
    fn facts(&self, client: Option<ClientFacts>) -> Facts {
        let c = self.client.as_ref().map(|(_, c)| c);
        let s = self.server.as_ref().map(|(_, s)| s);
        let mut f = Facts::new("tls");
        // Sized once for the most fields it gets.
        f.fields.reserve_exact(6);
        if let Some(cf) = client {
            f = f
                .with("versions_offered", FactValue::List(cf.versions_offered))
                .with("client_max_version", FactValue::Str(cf.client_max_version))
                .with(
                    "cipher_suites_offered",
                    FactValue::List(cf.cipher_suites_offered),
                );
        }
        if let Some(s) = s {
            f = f.with(
                "version",
                FactValue::Str(version_string(s.negotiated_version())),
            );
            if !s.sslv2 {
                f = f.with("cipher_suite", FactValue::Str(cipher_name(s.cipher_suite)));
            }
        }
        f.with(
            "sslv2",
            FactValue::Bool(c.is_some_and(|c| c.sslv2) || s.is_some_and(|s| s.sslv2)),
        )
    }

    /// The event as a struct: the reference [`TlsState::write_event`] is tested against.
    #[cfg(test)]
    fn event(&self) -> TlsEvent {
        let c = self.client.as_ref().map(|(_, c)| c);
        let s = self.server.as_ref().map(|(_, s)| s);
        let mut ev = TlsEvent::default();
        if let Some(s) = s {
            ev.version = Some(Code::version(s.negotiated_version()));
            ev.server_version = Some(Code::Hex4(s.version));
            ev.server_selected_version = s.selected_version.map(Code::Hex4);
            if !s.sslv2 {
                ev.cipher_suite = Some(Code::Hex4(s.cipher_suite));
            }
            ev.server_alpn = s.alpn.clone();
            ev.ja3s = s.ja3s().map(Fingerprint::from);
        }
        if let Some(c) = c {
            ev.sni = c.sni.clone();
            ev.client_version = Some(Code::Hex4(c.version));
            ev.client_supported_versions = c
                .supported_versions
                .iter()
                .map(|&v| Code::Hex4(v))
                .collect();
            ev.client_cipher_suites = if c.sslv2 {
                c.sslv2_cipher_specs
                    .iter()
                    .take(EVENT_MAX_CIPHER_SUITES)
                    .map(|&v| Code::Hex6(v))
                    .collect()
            } else {
                c.cipher_suites
                    .iter()
                    .take(EVENT_MAX_CIPHER_SUITES)
                    .map(|&v| Code::Hex4(v))
                    .collect()
            };
            ev.alpn = c.alpn.clone();
            let f = fingerprints(c);
            ev.ja3 = f.0.clone().map(Fingerprint::from);
            ev.ja4 = f.1.clone();
        }
        ev.sslv2 = c.is_some_and(|c| c.sslv2) || s.is_some_and(|s| s.sslv2);
        ev.hello_retry_request = s.is_some_and(|s| s.hello_retry_request);
        ev.alert = self.alert.map(|(d, level, description)| AlertRecord {
            from: self.alert_from(d),
            level,
            description,
        });
        ev.handshake_too_large = self.too_large.map(|(_, len)| LimitRecord {
            value: len as u64,
            limit: MAX_HANDSHAKE_BUF as u64,
        });
        ev
    }
}

impl AppParser for TlsState {
    fn on_data(&mut self, dir: Direction, data: &[u8], cx: &mut AppContext<'_>) {
        let mut seen = Seen::default();
        let side = &mut self.sides[dir.index()];
        let hello = side.feed(data, cx.stats, &mut seen);
        if let Some((level, description)) = seen.alert {
            if self.alert.is_none() {
                self.alert = Some((dir, level, description));
            }
        }
        if let Some(len) = seen.too_large {
            self.too_large.get_or_insert((dir, len));
        }
        match hello {
            Some(Handshake::ClientHello(c)) => {
                cx.stats.inc(Counter::TlsClientHello);
                if self.client.is_none() {
                    self.client = Some((dir, c));
                }
            }
            Some(Handshake::ServerHello(s)) => {
                cx.stats.inc(Counter::TlsServerHello);
                if self.server.is_none() {
                    self.server = Some((dir, s));
                }
            }
            Some(Handshake::Other { .. }) | None => {}
        }
        self.maybe_emit(cx);
    }

    fn on_gap(&mut self, dir: Direction, _len: u64, cx: &mut AppContext<'_>) {
        self.sides[dir.index()].gap(cx.stats);
        self.maybe_emit(cx);
    }

    fn on_close(&mut self, cx: &mut AppContext<'_>) {
        self.emit(cx);
    }

    fn done(&self) -> bool {
        self.sides.iter().all(Side::finished)
    }
}

/// The IANA name of a cipher suite (`TLS_RSA_WITH_RC4_128_SHA`), or its hex value.
fn cipher_name(v: u16) -> String {
    tls::cipher_suite_name(v).map_or_else(|| hex4(v), str::to_string)
}

/// `"0x0303"`.
fn hex4(v: u16) -> String {
    let mut s = String::with_capacity(6);
    s.push_str("0x");
    tls::push_hex4(&mut s, v);
    s
}

/// [`cipher_name`], borrowed when the suite has a name.
fn cipher_name_ref(v: u16) -> std::borrow::Cow<'static, str> {
    tls::cipher_suite_name(v).map_or_else(|| hex4(v).into(), Into::into)
}

/// [`version_string`], borrowed when the version has a name.
fn version_name(v: u16) -> std::borrow::Cow<'static, str> {
    tls::version_name(v).map_or_else(|| hex4(v).into(), Into::into)
}

/// "TLS 1.2", "SSLv3", ... or the hex value when unknown.
fn version_string(v: u16) -> String {
    tls::version_name(v).map_or_else(|| hex4(v), str::to_string)
}

/// What detection rules test of a ClientHello: versions offered (the hello's version and its
/// supported_versions, GREASE left out), the highest, and the cipher suites offered by IANA
/// name (hex when unnamed). Cached with the hello's fingerprints ([`fingerprints`]).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ClientFacts {
    versions_offered: Vec<std::borrow::Cow<'static, str>>,
    client_max_version: String,
    cipher_suites_offered: Vec<std::borrow::Cow<'static, str>>,
}

impl ClientFacts {
    fn of(c: &ClientHello) -> ClientFacts {
        let mut offered: Vec<u16> = c
            .supported_versions
            .iter()
            .copied()
            .filter(|v| !tls::is_grease(*v))
            .collect();
        if offered.is_empty() {
            offered.push(if c.sslv2 && c.version < 0x0300 {
                0x0002
            } else {
                c.version
            });
        }
        let max = offered.iter().copied().max().unwrap_or(c.version);
        ClientFacts {
            versions_offered: offered.iter().map(|&v| version_name(v)).collect(),
            client_max_version: version_string(max),
            cipher_suites_offered: c
                .cipher_suites
                .iter()
                .filter(|v| !tls::is_grease(**v))
                .map(|&v| cipher_name_ref(v))
                .collect(),
        }
    }
}

/// Slots of each worker's cache of ClientHello fingerprints ([`fingerprints`]).
pub const FINGERPRINT_CACHE_SLOTS: usize = 256;

/// Everything of a ClientHello that its JA3 and JA4 are computed from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct HelloKey {
    sslv2: bool,
    version: u16,
    cipher_suites: Vec<u16>,
    extensions: Vec<u16>,
    groups: Vec<u16>,
    ec_point_formats: Vec<u8>,
    supported_versions: Vec<u16>,
    sig_algs: Vec<u16>,
    /// First and last byte of the first ALPN value, as JA4 reads them.
    alpn_ends: Option<(u8, u8)>,
}

impl HelloKey {
    fn alpn_ends(c: &ClientHello) -> Option<(u8, u8)> {
        c.alpn_first_ends.or_else(|| {
            let a = c.alpn.first()?.as_bytes();
            Some((*a.first()?, *a.last()?))
        })
    }

    fn of(c: &ClientHello) -> HelloKey {
        HelloKey {
            sslv2: c.sslv2,
            version: c.version,
            cipher_suites: c.cipher_suites.clone(),
            extensions: c.extensions.clone(),
            groups: c.groups.clone(),
            ec_point_formats: c.ec_point_formats.clone(),
            supported_versions: c.supported_versions.clone(),
            sig_algs: c.sig_algs.clone(),
            alpn_ends: HelloKey::alpn_ends(c),
        }
    }

    fn matches(&self, c: &ClientHello) -> bool {
        self.sslv2 == c.sslv2
            && self.version == c.version
            && self.cipher_suites == c.cipher_suites
            && self.extensions == c.extensions
            && self.groups == c.groups
            && self.ec_point_formats == c.ec_point_formats
            && self.supported_versions == c.supported_versions
            && self.sig_algs == c.sig_algs
            && self.alpn_ends == HelloKey::alpn_ends(c)
    }
}

/// JA3, JA4 and the detection facts of a ClientHello.
type Fingerprints = (Option<tls::Ja3>, Option<String>, ClientFacts);

/// A slot of [`FINGERPRINTS`]: the hello's inputs and its fingerprints.
type FingerprintEntry = (HelloKey, Rc<Fingerprints>);

thread_local! {
    /// Per worker thread: the JA3 and JA4 of recent ClientHellos (direct-mapped by a hash of
    /// their inputs; a slot holds the whole key, so a hit is an equal hello). A host's client
    /// sends the same hello on every connection; its fingerprints are formatted and hashed once.
    static FINGERPRINTS: std::cell::RefCell<Vec<Option<FingerprintEntry>>> =
        std::cell::RefCell::new(vec![None; FINGERPRINT_CACHE_SLOTS]);
}

/// `(c.ja3(), c.ja4(), ClientFacts::of(c))`, from the worker's cache when an equal hello was
/// seen recently (shared with the cache, not copied).
fn fingerprints(c: &ClientHello) -> Rc<Fingerprints> {
    let h = ahash::RandomState::with_seeds(0x6a61, 0x33, 0x6a61, 0x34).hash_one((
        c.sslv2,
        c.version,
        &c.cipher_suites,
        &c.extensions,
        &c.groups,
        &c.ec_point_formats,
        &c.supported_versions,
        &c.sig_algs,
        HelloKey::alpn_ends(c),
    ));
    let slot = (h as usize) % FINGERPRINT_CACHE_SLOTS;
    FINGERPRINTS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some((k, v)) = cache.get(slot).and_then(Option::as_ref) {
            if k.matches(c) {
                return v.clone();
            }
        }
        let v = Rc::new((c.ja3(), c.ja4(), ClientFacts::of(c)));
        if let Some(s) = cache.get_mut(slot) {
            *s = Some((HelloKey::of(c), v.clone()));
        }
        v
    })
}

/// Slots of each worker's cache of ServerHello JA3S ([`ja3s`]).
pub const JA3S_CACHE_SLOTS: usize = 64;

/// Everything of a ServerHello its JA3S is computed from, and the JA3S.
type Ja3sEntry = ((bool, u16, u16, Vec<u16>), Option<tls::Ja3>);

thread_local! {
    /// Per worker thread: the JA3S of recent ServerHellos (direct-mapped; a slot holds the whole
    /// input, so a hit is an equal hello). A server answers every client alike.
    static JA3S: std::cell::RefCell<Vec<Option<Ja3sEntry>>> =
        std::cell::RefCell::new(vec![None; JA3S_CACHE_SLOTS]);
}

/// `s.ja3s()`, from the worker's cache when an equal hello was seen recently.
fn ja3s(s: &ServerHello) -> Option<tls::Ja3> {
    let key = (s.sslv2, s.version, s.cipher_suite, &s.extensions);
    let h = ahash::RandomState::with_seeds(0x6a61, 0x33, 0x73, 0x1).hash_one(key);
    let slot = (h as usize) % JA3S_CACHE_SLOTS;
    JA3S.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(((v2, v, cs, ext), j)) = cache.get(slot).and_then(Option::as_ref) {
            if (*v2, *v, *cs, ext) == key {
                return j.clone();
            }
        }
        let j = s.ja3s();
        if let Some(e) = cache.get_mut(slot) {
            *e = Some((
                (s.sslv2, s.version, s.cipher_suite, s.extensions.clone()),
                j.clone(),
            ));
        }
        j
    })
}

/// A version or cipher suite code in the event, written as its text while it is serialized
/// (a hello lists tens of codes: no `String` each): a name, `"0x0303"` (what [`hex4`] makes)
/// or an SSLv2 cipher kind `"0x0700c0"` (`format!("0x{v:06x}")`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Code {
    Name(&'static str),
    Hex4(u16),
    Hex6(u32),
}

impl Code {
    /// As [`version_string`]: "TLS 1.2", "SSLv3", ... or the hex value when unknown.
    fn version(v: u16) -> Code {
        tls::version_name(v).map_or(Code::Hex4(v), Code::Name)
    }
}

/// The two lower-case hex digits of each byte value.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 0xf]];
        i += 1;
    }
    t
};

impl Code {
    /// Appends the code as a JSON string, as its `Serialize` writes it (a test holds them equal).
    #[inline]
    fn write(self, b: &mut Vec<u8>) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let h = |v: u32, shift: u32| HEX[((v >> shift) & 0xf) as usize];
        match self {
            Code::Name(n) => push_name(b, n),
            Code::Hex4(v) => {
                // Two hex digits per byte from a table (a hello lists some fifty codes).
                let [hi, lo] = v.to_be_bytes();
                let ([a, c], [d, e]) = (HEX_PAIRS[usize::from(hi)], HEX_PAIRS[usize::from(lo)]);
                b.extend_from_slice(&[b'"', b'0', b'x', a, c, d, e, b'"']);
            }
            Code::Hex6(v) if v <= 0xff_ffff => {
                b.extend_from_slice(&[
                    b'"',
                    b'0',
                    b'x',
                    h(v, 20),
                    h(v, 16),
                    h(v, 12),
                    h(v, 8),
                    h(v, 4),
                    h(v, 0),
                    b'"',
                ]);
            }
            Code::Hex6(v) => push_json_str(b, &format!("0x{v:06x}")),
        }
    }
}

/// A JSON array of [`Code::Hex4`] codes (`["0x0303","0x1301"]`, what `push_array` of each
/// code's [`Code::write`] makes), room reserved once: a hello lists tens of cipher suites.
fn push_hex4_array(b: &mut Vec<u8>, codes: &[u16]) {
    let item = |v: u16| {
        let [hi, lo] = v.to_be_bytes();
        let ([a, c], [d, e]) = (HEX_PAIRS[usize::from(hi)], HEX_PAIRS[usize::from(lo)]);
        [b',', b'"', b'0', b'x', a, c, d, e, b'"']
    };
    b.reserve(2 + 9 * codes.len());
    b.push(b'[');
    if let Some((&first, rest)) = codes.split_first() {
        b.extend_from_slice(&item(first)[1..]);
        for &v in rest {
            b.extend_from_slice(&item(v));
        }
    }
    b.push(b']');
}

#[cfg(test)]
impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let (v, digits) = match *self {
            Code::Name(n) => return ser.serialize_str(n),
            Code::Hex4(v) => (u32::from(v), 4),
            Code::Hex6(v) if v <= 0xff_ffff => (v, 6),
            Code::Hex6(v) => return ser.serialize_str(&format!("0x{v:06x}")),
        };
        let mut b = [0u8; 8];
        b[..2].copy_from_slice(b"0x");
        for i in 0..digits {
            b[2 + i] = HEX[((v >> (4 * (digits - 1 - i))) & 0xf) as usize];
        }
        // Only ASCII hex digits were written.
        ser.serialize_str(std::str::from_utf8(&b[..2 + digits]).unwrap_or_default())
    }
}

#[cfg(test)]
#[derive(Serialize)]
struct Fingerprint {
    hash: String,
    string: String,
}

#[cfg(test)]
impl From<tls::Ja3> for Fingerprint {
    fn from(j: tls::Ja3) -> Self {
        Fingerprint {
            hash: j.hash,
            string: j.string,
        }
    }
}

#[cfg(test)]
#[derive(Serialize)]
struct AlertRecord {
    from: &'static str,
    level: u8,
    description: u8,
}

#[cfg(test)]
#[derive(Serialize)]
struct LimitRecord {
    value: u64,
    limit: u64,
}

#[cfg(test)]
/// The `tls` event body. Names follow Suricata's EVE `tls` object where it has one.
#[derive(Serialize, Default)]
struct TlsEvent {
    /// Negotiated version: "TLS 1.2", ..., or "0x...." when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<Code>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sni: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_version: Option<Code>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    client_supported_versions: Vec<Code>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_version: Option<Code>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_selected_version: Option<Code>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cipher_suite: Option<Code>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    client_cipher_suites: Vec<Code>,
    /// ALPN protocols the client offered.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    alpn: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_alpn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ja3: Option<Fingerprint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ja3s: Option<Fingerprint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ja4: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    sslv2: bool,
    /// The server's hello was a TLS 1.3 HelloRetryRequest: the server fields are its.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    hello_retry_request: bool,
    /// The first alert sent in the clear.
    #[serde(skip_serializing_if = "Option::is_none")]
    alert: Option<AlertRecord>,
    /// A hello longer than [`MAX_HANDSHAKE_BUF`]: its length and the limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    handshake_too_large: Option<LimitRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::FlowMeta;
    use crate::output::EventSink;
    use crate::time::Ts;

    /// The ClientHellos and ServerHellos of the recorded handshakes, as a flow's sides parse
    /// them.
    fn recorded_hellos() -> (Vec<ClientHello>, Vec<ServerHello>) {
        let (mut clients, mut servers) = (Vec::new(), Vec::new());
        for (c, s) in [
            (CURL_C, CURL_S),
            (FF_C, FF_S),
            (TLS1_C, TLS1_S),
            (T13_C, T13_S),
        ] {
            let mut st = TlsState::new();
            let mut stats = WorkerStats::default();
            let mut seen = Seen::default();
            if let Some(Handshake::ClientHello(h)) = st.sides[0].feed(c, &mut stats, &mut seen) {
                clients.push(h);
            }
            if let Some(Handshake::ServerHello(h)) = st.sides[1].feed(s, &mut stats, &mut seen) {
                servers.push(h);
            }
        }
        (clients, servers)
    }

    #[test]
    fn cached_fingerprints_are_the_hellos_own() {
        let (mut hellos, _) = recorded_hellos();
        assert!(hellos.len() >= 3, "{}", hellos.len());
        // Variants that differ in one input each.
        let base = hellos[0].clone();
        let mut v = base.clone();
        v.cipher_suites.reverse();
        hellos.push(v);
        let mut v = base.clone();
        v.alpn_first_ends = Some((b'h', b'2'));
        hellos.push(v);
        let mut v = base.clone();
        v.sig_algs.push(0x0401);
        hellos.push(v);
        let mut v = base;
        v.version ^= 1;
        hellos.push(v);
        for _ in 0..3 {
            for h in &hellos {
                assert_eq!(*fingerprints(h), (h.ja3(), h.ja4(), ClientFacts::of(h)));
            }
        }
    }

    #[test]
    fn cached_ja3s_is_the_hellos_own() {
        let (_, mut hellos) = recorded_hellos();
        assert!(hellos.len() >= 3, "{}", hellos.len());
        let base = hellos[0].clone();
        for f in 0..4u16 {
            let mut v = base.clone();
            match f {
                0 => v.cipher_suite ^= 1,
                1 => v.extensions.push(0x0017),
                2 => v.version ^= 1,
                _ => v.sslv2 = true,
            }
            hellos.push(v);
        }
        for _ in 0..3 {
            for h in &hellos {
                assert_eq!(ja3s(h), h.ja3s());
            }
        }
    }

    #[test]
    fn borrowed_names_are_the_owned_ones() {
        for v in 0..=u16::MAX {
            assert_eq!(cipher_name_ref(v), cipher_name(v));
            assert_eq!(version_name(v), version_string(v));
        }
    }

    #[test]
    fn codes_serialize_as_the_strings_they_replace() {
        let mut vals: Vec<u32> = vec![0, 1, 0x10, 0x0300, 0x0303, 0xcc14, 0xfafa, 0xffff];
        vals.extend((0..2000u32).map(|i| i.wrapping_mul(2_654_435_761) >> 8));
        vals.extend([0x0700c0, 0xff_ffff, 0x100_0000, u32::MAX]);
        for v in vals {
            if let Ok(v16) = u16::try_from(v) {
                assert_eq!(
                    serde_json::to_string(&Code::Hex4(v16)).unwrap(),
                    format!("\"{}\"", hex4(v16))
                );
                assert_eq!(
                    serde_json::to_string(&Code::version(v16)).unwrap(),
                    format!("\"{}\"", version_string(v16))
                );
            }
            assert_eq!(
                serde_json::to_string(&Code::Hex6(v)).unwrap(),
                format!("\"0x{v:06x}\"")
            );
            let mut codes = vec![Code::Hex6(v)];
            if let Ok(v16) = u16::try_from(v) {
                codes.extend([Code::Hex4(v16), Code::version(v16)]);
            }
            for c in codes {
                let mut b = Vec::new();
                c.write(&mut b);
                assert_eq!(
                    String::from_utf8(b).unwrap(),
                    serde_json::to_string(&c).unwrap()
                );
            }
        }
    }

    /// What [`TlsState::emit`] writes for `st`, and what `serde_json` makes of its event.
    fn by_hand_and_by_serde(st: &TlsState) -> (String, String) {
        let (ja3, ja4) = match &st.client {
            Some((_, c)) => {
                let f = fingerprints(c);
                (f.0.clone(), f.1.clone())
            }
            None => (None, None),
        };
        let ja3s = st.server.as_ref().and_then(|(_, s)| s.ja3s());
        let mut b = Vec::new();
        st.write_event(ja3.as_ref(), ja4.as_deref(), ja3s.as_ref(), &mut b);
        (
            String::from_utf8(b).unwrap(),
            serde_json::to_string(&st.event()).unwrap(),
        )
    }

    #[test]
    fn event_by_hand_equals_serde_json() {
        let mut n = 0;
        for (c, s) in [
            (CURL_C, CURL_S),
            (FF_C, FF_S),
            (TLS1_C, TLS1_S),
            (T13_C, T13_S),
            (HRR_C, HRR_S),
        ] {
            let mut st = TlsState::new();
            let mut stats = WorkerStats::default();
            let mut seen = Seen::default();
            let Some(Handshake::ClientHello(ch)) = st.sides[0].feed(c, &mut stats, &mut seen)
            else {
                continue;
            };
            let mut seen = Seen::default();
            let sh = match st.sides[1].feed(s, &mut stats, &mut seen) {
                Some(Handshake::ServerHello(sh)) => Some(sh),
                _ => None,
            };
            // Variants: odd text, SSLv2 specs of every width, lists empty and full.
            let mut odd = ch.clone();
            odd.sni = Some("a\"b\\c\u{1}é😀".into());
            odd.alpn = vec!["h2".into(), "\"q\"".into(), String::new()];
            odd.supported_versions = vec![0x0a0a, 0x0304, 0x0303, 0x7f17];
            let mut v2 = ch.clone();
            v2.sslv2 = true;
            v2.sslv2_cipher_specs = vec![0x0700c0, 0x010080, 0xff_ffff, 0x100_0000, u32::MAX];
            let mut empty = ch.clone();
            empty.cipher_suites.clear();
            empty.alpn.clear();
            empty.sni = None;
            let mut many = ch.clone();
            many.cipher_suites = (0..300).collect();
            for client in [None, Some(ch), Some(odd), Some(v2), Some(empty), Some(many)] {
                for server in [None, sh.clone()] {
                    for dir in [Direction::ToServer, Direction::ToClient] {
                        for alert in [None, Some((dir, 2, 40)), Some((dir.reverse(), 1, 0))] {
                            for too_large in [None, Some((dir, 40_000))] {
                                let st = TlsState {
                                    client: client.clone().map(|c| (dir, c)),
                                    server: server.clone().map(|s| (dir.reverse(), s)),
                                    alert,
                                    too_large,
                                    ..TlsState::new()
                                };
                                let (hand, serde) = by_hand_and_by_serde(&st);
                                assert_eq!(hand, serde);
                                n += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(n >= 400, "{n}");
    }

    // Stream bytes from the corpus captures; see parsers/tests/data/README.md.
    macro_rules! data {
        ($f:literal) => {
            include_bytes!(concat!("../../parsers/tests/data/", $f))
        };
    }
    const CURL_C: &[u8] = data!("tls_ndpi_443-curl_client.bin");
    const CURL_S: &[u8] = data!("tls_ndpi_443-curl_server.bin");
    const FF_C: &[u8] = data!("tls_ndpi_443-firefox_client.bin");
    const FF_S: &[u8] = data!("tls_ndpi_443-firefox_server.bin");
    const SSL3_C: &[u8] = data!("tls_arkime_openssl-ssl3_client.bin");
    const SSL3_S: &[u8] = data!("tls_arkime_openssl-ssl3_server.bin");
    const TLS1_C: &[u8] = data!("tls_arkime_openssl-tls1_client.bin");
    const TLS1_S: &[u8] = data!("tls_arkime_openssl-tls1_server.bin");
    const FAIL_C: &[u8] = data!("tls_zeek_tls-1.2-handshake-failure_client.bin");
    const FAIL_S: &[u8] = data!("tls_zeek_tls-1.2-handshake-failure_server.bin");
    const V2_C: &[u8] = data!("tls_zeek_ssl-v2_client.bin");
    const V2_S: &[u8] = data!("tls_zeek_ssl-v2_server.bin");
    const T13_C: &[u8] = data!("tls_medtap_dicom-tls13_client.bin");
    const T13_S: &[u8] = data!("tls_medtap_dicom-tls13_server.bin");
    const HRR_C: &[u8] = data!("tls_medtap_hrr_client.bin");
    const HRR_S: &[u8] = data!("tls_medtap_hrr_server.bin");

    fn meta() -> FlowMeta {
        FlowMeta {
            flow_id: 7,
            proto: 6,
            client: ("192.168.1.13".parse().unwrap(), 55523),
            server: ("178.62.197.130".parse().unwrap(), 443),
            vlan: [0, 0],
            client_mac: [0; 6],
            server_mac: [0; 6],
            to_group: false,
            app_proto: None,
        }
    }

    enum Step {
        Data(Direction, Vec<u8>),
        Gap(Direction, u64),
    }

    struct Run {
        lines: Vec<serde_json::Value>,
        stats: WorkerStats,
        done_before_close: bool,
    }

    fn run(steps: &[Step]) -> Run {
        let m = meta();
        let mut events = EventSink::new(true);
        let mut stats = WorkerStats::default();
        let mut obs = crate::observe::ObsBuf::new(true);
        let mut st = TlsState::new();
        for s in steps {
            let mut cx = AppContext {
                ts: Ts(1_000_000),
                flow: &m,
                events: &mut events,
                stats: &mut stats,
                obs: &mut obs,
            };
            match s {
                Step::Data(d, b) => st.on_data(*d, b, &mut cx),
                Step::Gap(d, n) => st.on_gap(*d, *n, &mut cx),
            }
        }
        let done_before_close = st.done();
        let mut cx = AppContext {
            ts: Ts(1_000_000),
            flow: &m,
            events: &mut events,
            stats: &mut stats,
            obs: &mut obs,
        };
        st.on_close(&mut cx);
        let out = events.take();
        let lines = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).expect("json"))
            .collect();
        Run {
            lines,
            stats,
            done_before_close,
        }
    }

    fn whole(c: &[u8], s: &[u8]) -> Vec<Step> {
        vec![
            Step::Data(Direction::ToServer, c.to_vec()),
            Step::Data(Direction::ToClient, s.to_vec()),
        ]
    }

    /// Splits both streams into chunks whose sizes come from `rng`, interleaved in an order
    /// that also comes from `rng` (each direction stays in order).
    fn random_steps(c: &[u8], s: &[u8], seed: u64, max_chunk: usize) -> Vec<Step> {
        let mut x = seed | 1;
        let mut next = move || {
            // xorshift64*
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        let (mut ci, mut si) = (0usize, 0usize);
        let mut steps = Vec::new();
        while ci < c.len() || si < s.len() {
            let to_server = si >= s.len() || (ci < c.len() && next() % 2 == 0);
            let n = 1 + (next() as usize) % max_chunk;
            if to_server {
                let e = (ci + n).min(c.len());
                steps.push(Step::Data(Direction::ToServer, c[ci..e].to_vec()));
                ci = e;
            } else {
                let e = (si + n).min(s.len());
                steps.push(Step::Data(Direction::ToClient, s[si..e].to_vec()));
                si = e;
            }
        }
        steps
    }

    fn one_event(r: &Run) -> &serde_json::Value {
        assert_eq!(r.lines.len(), 1, "{:?}", r.lines);
        assert_eq!(r.lines[0]["event_type"], "tls");
        &r.lines[0]["tls"]
    }

    /// pcaps/tls_hrr.pcap, stream 0: tshark labels frame 8 "Hello Retry Request" (the
    /// HelloRetryRequest random); its fields are the server's fields of the event, flagged.
    /// A ServerHello without the magic (tls13 from dcmtk) is not flagged.
    #[test]
    fn hello_retry_request_event() {
        for steps in [whole(HRR_C, HRR_S), random_steps(HRR_C, HRR_S, 7, 13)] {
            let r = run(&steps);
            let t = one_event(&r);
            assert_eq!(t["hello_retry_request"], true);
            assert_eq!(t["version"], "TLS 1.3");
            assert_eq!(t["sni"], "hrr.pacs.hospital.example");
            assert_eq!(t["server_selected_version"], "0x0304");
            assert_eq!(t["cipher_suite"], "0x1302");
            assert_eq!(t["ja3"]["hash"], "c957e1b78599f9337a29ea53e8c1625d");
            assert_eq!(t["ja3s"]["string"], "771,4866,43-51");
        }
        let r = run(&whole(T13_C, T13_S));
        assert!(one_event(&r).get("hello_retry_request").is_none());
    }

    /// ndpi_443-curl.pcap, stream 0. Expected values from tshark (see parsers/src/tls.rs).
    #[test]
    fn curl_event() {
        let r = run(&whole(CURL_C, CURL_S));
        let t = one_event(&r);
        assert_eq!(t["version"], "TLS 1.2");
        assert_eq!(t["sni"], "www.ntop.org");
        assert_eq!(t["client_version"], "0x0303");
        assert_eq!(t["server_version"], "0x0303");
        assert_eq!(t["cipher_suite"], "0xc02f");
        assert_eq!(t["alpn"], serde_json::json!(["h2", "http/1.1"]));
        assert_eq!(t["server_alpn"], "h2");
        assert_eq!(t["client_cipher_suites"].as_array().unwrap().len(), 67);
        assert_eq!(t["client_cipher_suites"][0], "0xcc14");
        assert_eq!(t["ja3"]["hash"], "2a26b1a62e40d25d4de3babc9d532f30");
        assert_eq!(t["ja3s"]["hash"], "ae53107a2e47ea20c72ac44821a728bf");
        assert_eq!(t["ja3s"]["string"], "771,49199,65281-0-11-16");
        assert_eq!(t["ja4"], "t12d6707h2_2955a3196ffa_c83f907a73d3");
        // Nones are omitted.
        for k in [
            "server_selected_version",
            "client_supported_versions",
            "sslv2",
            "hello_retry_request",
            "alert",
            "handshake_too_large",
        ] {
            assert!(t.get(k).is_none(), "{k} present");
        }
        assert_eq!(r.lines[0]["src_ip"], "192.168.1.13");
        assert_eq!(r.lines[0]["dest_port"], 443);
        assert_eq!(r.stats.get(Counter::TlsClientHello), 1);
        assert_eq!(r.stats.get(Counter::TlsServerHello), 1);
        assert_eq!(r.stats.get(Counter::TlsParseError), 0);
        assert!(r.done_before_close);
    }

    /// The same event whatever the chunking: one byte at a time, and random splits with
    /// random interleaving of the two directions.
    #[test]
    fn splits_give_the_same_event() {
        for (c, s) in [
            (CURL_C, CURL_S),
            (FF_C, FF_S),
            (SSL3_C, SSL3_S),
            (TLS1_C, TLS1_S),
            (V2_C, V2_S),
            (FAIL_C, FAIL_S),
            (T13_C, T13_S),
        ] {
            let reference = run(&whole(c, s));
            let want = one_event(&reference).clone();
            let mut bytewise = Vec::new();
            for &b in c {
                bytewise.push(Step::Data(Direction::ToServer, vec![b]));
            }
            for &b in s {
                bytewise.push(Step::Data(Direction::ToClient, vec![b]));
            }
            let r = run(&bytewise);
            assert_eq!(one_event(&r), &want, "byte at a time");
            assert_eq!(r.stats.c, reference.stats.c);
            for seed in 1..40u64 {
                let max = [1, 3, 7, 64, 700][(seed % 5) as usize];
                let r = run(&random_steps(c, s, seed, max));
                assert_eq!(one_event(&r), &want, "seed {seed}");
                assert_eq!(r.stats.c, reference.stats.c, "seed {seed}");
            }
        }
    }

    #[test]
    fn firefox_ssl3_tls1_events() {
        let t = one_event(&run(&whole(FF_C, FF_S))).clone();
        assert_eq!(t["version"], "TLS 1.2");
        assert_eq!(
            t["client_supported_versions"],
            serde_json::json!(["0x0304", "0x0303", "0x0302", "0x0301"])
        );
        assert_eq!(t["cipher_suite"], "0xcca8");
        assert_eq!(t["ja3"]["hash"], "b20b44b18b853ef29ab773e921b03422");
        assert_eq!(t["ja3s"]["hash"], "3653a20186a5b490426131a611e01992");
        assert_eq!(t["ja4"], "t13d1814h2_29a2cd9e9f10_d267a5f792d4");

        let t = one_event(&run(&whole(SSL3_C, SSL3_S))).clone();
        assert_eq!(t["version"], "SSLv3");
        assert_eq!(t["cipher_suite"], "0xc011");
        assert_eq!(t["ja3"]["hash"], "f917ae2520ef9784557b0a3c02489c2c");
        assert_eq!(t["ja3s"]["hash"], "59e3f99fd4b68388f5ba9349e0ca71a4");

        // arkime_openssl-tls1.pcap: tshark gives ClientHello 0x0301, ServerHello 0x0301/0xc011.
        let t = one_event(&run(&whole(TLS1_C, TLS1_S))).clone();
        assert_eq!(t["version"], "TLS 1.0");
        assert_eq!(t["client_version"], "0x0301");
        assert_eq!(t["cipher_suite"], "0xc011");

        // pcaps/dicom/tls.pcap: DICOM over TLS 1.3 (tshark: supported_version 0x0304, suite 0x1302).
        let t = one_event(&run(&whole(T13_C, T13_S))).clone();
        assert_eq!(t["version"], "TLS 1.3");
        assert_eq!(t["server_version"], "0x0303");
        assert_eq!(t["server_selected_version"], "0x0304");
        assert_eq!(t["cipher_suite"], "0x1302");
        assert_eq!(t["ja4"], "t13i080900_a811a161fe38_5ac7197df9d2");
        assert!(t.get("sni").is_none() && t.get("alpn").is_none());
    }

    /// zeek_tls-1.2-handshake-failure.pcap: ClientHello, then a fatal handshake_failure (40).
    #[test]
    fn handshake_failure() {
        let r = run(&whole(FAIL_C, FAIL_S));
        let t = one_event(&r);
        assert!(t.get("version").is_none());
        assert_eq!(t["ja3"]["hash"], "62bd27c43a9a4d7fcbc45d8c9e7e04dd");
        assert_eq!(
            t["alert"],
            serde_json::json!({"from": "server", "level": 2, "description": 40})
        );
        assert!(r.done_before_close);
        // Only the ClientHello: the event comes at close.
        let r = run(&[Step::Data(Direction::ToServer, FAIL_C.to_vec())]);
        assert!(!r.done_before_close);
        assert_eq!(one_event(&r)["ja4"], "t12i090500_de31b28e7183_a1e935682795");
    }

    /// zeek_ssl-v2.pcap: SSLv2 CLIENT-HELLO and SERVER-HELLO.
    #[test]
    fn sslv2() {
        let r = run(&whole(V2_C, V2_S));
        let t = one_event(&r);
        assert_eq!(t["version"], "SSLv2");
        assert_eq!(t["sslv2"], true);
        assert_eq!(t["client_version"], "0x0002");
        assert_eq!(t["client_cipher_suites"][0], "0x0700c0");
        assert!(t.get("ja3").is_none() && t.get("cipher_suite").is_none());
        assert_eq!(r.stats.get(Counter::TlsClientHello), 1);
        assert_eq!(r.stats.get(Counter::TlsServerHello), 1);
    }

    /// A ClientHello whose handshake message spans two records (re-framed from curl's).
    #[test]
    fn hello_across_records() {
        let body = &CURL_C[5..5 + 512];
        let mut c = Vec::new();
        for part in [&body[..100], &body[100..]] {
            c.extend_from_slice(&[0x16, 0x03, 0x01]);
            c.extend_from_slice(&(part.len() as u16).to_be_bytes());
            c.extend_from_slice(part);
        }
        let t = one_event(&run(&whole(&c, CURL_S))).clone();
        assert_eq!(t["ja3"]["hash"], "2a26b1a62e40d25d4de3babc9d532f30");
        let r = run(&random_steps(&c, CURL_S, 5, 9));
        assert_eq!(one_event(&r), &t);
    }

    #[test]
    fn gap_mid_hello_counts_an_error() {
        let r = run(&[
            Step::Data(Direction::ToServer, CURL_C[..100].to_vec()),
            Step::Gap(Direction::ToServer, 417),
            Step::Data(Direction::ToClient, CURL_S.to_vec()),
        ]);
        assert_eq!(r.stats.get(Counter::TlsParseError), 1);
        let t = one_event(&r);
        assert!(t.get("ja3").is_none());
        assert_eq!(t["ja3s"]["hash"], "ae53107a2e47ea20c72ac44821a728bf");
        // A gap, then the stream resumes on a record boundary: the hello is read.
        let r = run(&[
            Step::Gap(Direction::ToServer, 10),
            Step::Data(Direction::ToServer, CURL_C.to_vec()),
            Step::Data(Direction::ToClient, CURL_S.to_vec()),
        ]);
        assert_eq!(r.stats.get(Counter::TlsParseError), 0);
        assert_eq!(
            one_event(&r)["ja3"]["hash"],
            "2a26b1a62e40d25d4de3babc9d532f30"
        );
        // A gap, then bytes mid-record: that direction gives up without a second count.
        let r = run(&[
            Step::Data(Direction::ToServer, CURL_C[..100].to_vec()),
            Step::Gap(Direction::ToServer, 10),
            Step::Data(Direction::ToServer, CURL_C[110..].to_vec()),
        ]);
        assert_eq!(r.stats.get(Counter::TlsParseError), 1);
        assert!(r.lines.is_empty());
    }

    #[test]
    fn oversized_hello_is_refused() {
        // A ClientHello header announcing 40000 bytes, carried in max-size records.
        let mut c = vec![0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x00, 0x9c, 0x40];
        c.resize(5 + 0x4000, 0);
        let r = run(&[Step::Data(Direction::ToServer, c)]);
        assert_eq!(r.stats.get(Counter::TlsRecordTooLarge), 1);
        // The event carries the value and the limit.
        assert_eq!(
            one_event(&r),
            &serde_json::json!({"handshake_too_large": {"value": 40004, "limit": 32768}})
        );
        // A record header over the TLS limit.
        let r = run(&[Step::Data(
            Direction::ToServer,
            vec![0x16, 0x03, 0x01, 0xff, 0xff],
        )]);
        assert_eq!(r.stats.get(Counter::TlsRecordTooLarge), 1);
    }

    #[test]
    fn not_tls_is_a_parse_error() {
        let r = run(&[Step::Data(
            Direction::ToServer,
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        )]);
        assert_eq!(r.stats.get(Counter::TlsParseError), 1);
        assert!(r.lines.is_empty());
        // Encrypted data first: nothing to learn, no error.
        let r = run(&[
            Step::Data(
                Direction::ToServer,
                vec![0x17, 0x03, 0x03, 0x00, 0x02, 1, 2],
            ),
            Step::Data(
                Direction::ToClient,
                vec![0x17, 0x03, 0x03, 0x00, 0x02, 1, 2],
            ),
        ]);
        assert_eq!(r.stats.get(Counter::TlsParseError), 0);
        assert!(r.done_before_close && r.lines.is_empty());
    }

    /// The server's data delivered before the client's: the event still carries both hellos.
    #[test]
    fn server_first_waits_for_client() {
        let r = run(&[
            Step::Data(Direction::ToClient, CURL_S.to_vec()),
            Step::Data(Direction::ToServer, CURL_C.to_vec()),
        ]);
        let t = one_event(&r);
        assert_eq!(t["ja3"]["hash"], "2a26b1a62e40d25d4de3babc9d532f30");
        assert_eq!(t["ja3s"]["hash"], "ae53107a2e47ea20c72ac44821a728bf");
    }

    #[test]
    fn probe() {
        assert_eq!(looks_like_tls(&CURL_C[..6]), Some(true));
        assert_eq!(looks_like_tls(&CURL_C[..2]), None);
        assert_eq!(looks_like_tls(V2_C), Some(true));
        assert_eq!(looks_like_tls(b"\x0bMSH|"), Some(false));
    }
}
