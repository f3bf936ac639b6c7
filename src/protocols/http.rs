//! HTTP/1.x: device evidence (the request's User-Agent for the client, the response's Server
//! for the server, from each direction's first head) and, for detection, whether requests carry
//! credentials in clear (`Authorization` / `Proxy-Authorization`: Basic sends the password
//! base64-encoded, Digest a replayable hash). Only the scheme is kept, never the value. No
//! event; facts the first time a scheme is seen on a connection.
//!
//! Authorization lines are found by scanning the client's lines (at most [`MAX_SCAN_BYTES`]
//! bytes and [`MAX_REQUESTS`] requests per connection; bodies are scanned too, and a body line
//! that looks like an Authorization header would count, which no real client sends).

use std::borrow::Cow;

use medtap_parsers::http;

use super::lines::Lines;
use super::{AppContext, AppParser, Direction};
use crate::fingerprint::evidence;
use crate::fingerprint::{extract, EvidenceKind};
use crate::observe::{FactValue, Facts};

/// Bytes of one direction held while waiting for the end of its first head.
pub const MAX_HEAD_BUF: usize = 8 * 1024;
/// Client bytes scanned per connection for Authorization lines.
const MAX_SCAN_BYTES: u64 = 64 << 10;
/// Request heads read per connection (browsers retry with credentials after a 401 on the
/// same connection).
const MAX_REQUESTS: u64 = 8;
/// Distinct schemes remembered per connection.
const MAX_SCHEMES: usize = 4;

#[derive(Default)]
pub struct HttpState {
    buf: [Vec<u8>; 2],
    done: [bool; 2],
    lines: Lines,
    scanned: u64,
    schemes: Vec<&'static str>,
    requests: u64,
}

/// The scheme of an Authorization header value, from a fixed set.
fn scheme(value: &[u8]) -> &'static str {
    let v = value.trim_ascii_start();
    let word = v.split(|c| c.is_ascii_whitespace()).next().unwrap_or(&[]);
    for s in ["basic", "digest", "bearer", "ntlm", "negotiate"] {
        if word.eq_ignore_ascii_case(s.as_bytes()) {
            return s;
        }
    }
    "other"
}

/// Whether `b` holds `\r\n\r\n` or `\n\n` (the end of a head), found from its newlines:
/// one newline scan instead of a substring search for each.
fn has_blank_line(b: &[u8]) -> bool {
    // A head sent alone (most requests) ends with its blank line: no scan.
    if b.ends_with(b"\r\n\r\n") || b.ends_with(b"\n\n") {
        return true;
    }
    memchr::memchr_iter(b'\n', b).any(|i| {
        let next = b.get(i + 1).copied();
        next == Some(b'\n')
            || (i > 0 && b[i - 1] == b'\r' && next == Some(b'\r') && b.get(i + 2) == Some(&b'\n'))
    })
}

/// Whether `line` holds `HTTP/` anywhere (a request line's version, near its end): found from
/// the `H`s, the last first, instead of comparing at every position.
fn has_http_version(line: &[u8]) -> bool {
    memchr::memrchr_iter(b'H', line).any(|i| line[i..].starts_with(b"HTTP/"))
}

/// Whether every byte of `b` is printable ASCII (space to `~`): one pass, no early exit (the
/// compiler checks many bytes at a time).
fn printable_ascii(b: &[u8]) -> bool {
    b.iter()
        .fold(true, |ok, &c| ok & (c.wrapping_sub(0x20) < 0x5f))
}

/// The evidence [`extract::http_software`] and [`cleaned`] make of a raw User-Agent or Server
/// value ([`http::sender_software_raw`]) when it can be had without decoding or cleaning:
/// `Some(item)` when the value, cut at [`http::MAX_VALUE_LEN`], is printable ASCII and, trimmed
/// of its spaces, at most [`evidence::MAX_VALUE_LEN`] bytes (`Some(None)`: only spaces, no
/// evidence). Such a value is UTF-8, its text trims as its bytes do, and cleaning leaves it as
/// it is. `None`: take the general path.
fn plain_software(request: bool, raw: &[u8]) -> Option<Option<(EvidenceKind, &str)>> {
    let cut = &raw[..raw.len().min(http::MAX_VALUE_LEN)];
    if !printable_ascii(cut) {
        return None;
    }
    let t = cut.trim_ascii();
    if t.len() > evidence::MAX_VALUE_LEN {
        return None;
    }
    let v = std::str::from_utf8(t).ok()?;
    if v.is_empty() {
        return Some(None);
    }
    let kind = if request {
        EvidenceKind::HttpUserAgent
    } else {
        EvidenceKind::HttpServer
    };
    Some(Some((kind, v)))
}

impl HttpState {
    pub fn new() -> HttpState {
        HttpState::default()
    }

    fn read(&mut self, dir: Direction, cx: &mut AppContext<'_>) {
        let i = dir.index();
        let b = std::mem::take(&mut self.buf[i]);
        self.read_head(dir, &b, cx);
    }

    /// The first head of `dir` (all of it, or as much as was kept): its sender's software as
    /// evidence ([`extract::from_http`], without building the whole head). A value of plain
    /// printable ASCII is handed over as it is ([`plain_software`]); others are decoded and
    /// cleaned.
    fn read_head(&mut self, dir: Direction, head: &[u8], cx: &mut AppContext<'_>) {
        self.done[dir.index()] = true;
        let Ok((request, Some(raw))) = http::sender_software_raw(head) else {
            return;
        };
        let (mac, ip) = cx.flow.sender(dir);
        match plain_software(request, raw) {
            Some(Some((kind, v))) => {
                cx.obs
                    .evidence_cleaned(cx.ts, mac, Some(ip), &[(kind, Cow::Borrowed(v), 100)]);
            }
            Some(None) => {}
            None => {
                let value = http::value_text(raw);
                if let Some((kind, v)) = extract::http_software(request, Some(&value)) {
                    cx.obs
                        .evidence_refs(cx.ts, mac, Some(ip), &[(kind, v, 100)]);
                }
            }
        }
    }

    fn scan_done(&self) -> bool {
        self.scanned >= MAX_SCAN_BYTES || self.requests >= MAX_REQUESTS
    }

    /// Authorization lines in the client's bytes.
    fn scan(&mut self, data: &[u8], cx: &mut AppContext<'_>) {
        self.scanned += data.len() as u64;
        let mut found: Vec<&'static str> = Vec::new();
        let requests = &mut self.requests;
        self.lines.feed(data, |line, _cut| {
            // The colon that ends each name first: an exact compare that rules out most lines.
            let starts = |p: &[u8]| {
                line.get(p.len() - 1) == p.last() && line[..p.len()].eq_ignore_ascii_case(p)
            };
            if http::looks_like_http(line) && has_http_version(line) {
                *requests += 1;
            } else if starts(b"authorization:") {
                found.push(scheme(&line[14..]));
            } else if starts(b"proxy-authorization:") {
                found.push(scheme(&line[20..]));
            }
        });
        for s in found {
            if !self.schemes.contains(&s) && self.schemes.len() < MAX_SCHEMES {
                self.schemes.push(s);
                cx.obs.facts(
                    cx.ts,
                    cx.flow,
                    Facts::new("http")
                        .with("authorization_scheme", FactValue::Str(s.into()))
                        .with(
                            "credentials_in_clear",
                            FactValue::Bool(matches!(s, "basic" | "digest" | "ntlm" | "other")),
                        ),
                );
            }
        }
    }
}

impl AppParser for HttpState {
    fn on_data(&mut self, dir: Direction, data: &[u8], cx: &mut AppContext<'_>) {
        if dir == Direction::ToServer && !self.scan_done() && cx.obs.enabled() {
            self.scan(data, cx);
        }
        let i = dir.index();
        if self.done[i] || !cx.obs.enabled() {
            self.done[i] = true;
            return;
        }
        let take = data.len().min(MAX_HEAD_BUF - self.buf[i].len());
        let ended = |b: &[u8]| b.len() >= MAX_HEAD_BUF || has_blank_line(b);
        if self.buf[i].is_empty() && ended(&data[..take]) {
            // The whole head in one chunk (the usual case): read it where it is.
            self.read_head(dir, &data[..take], cx);
            return;
        }
        self.buf[i].extend_from_slice(&data[..take]);
        if ended(&self.buf[i]) {
            self.read(dir, cx);
        }
    }

    fn on_gap(&mut self, dir: Direction, _len: u64, cx: &mut AppContext<'_>) {
        if !self.done[dir.index()] && !self.buf[dir.index()].is_empty() {
            self.read(dir, cx);
        }
        self.done[dir.index()] = true;
        if dir == Direction::ToServer {
            self.lines.gap();
        }
    }

    fn on_close(&mut self, cx: &mut AppContext<'_>) {
        for dir in [Direction::ToServer, Direction::ToClient] {
            if !self.done[dir.index()] && !self.buf[dir.index()].is_empty() {
                self.read(dir, cx);
            }
        }
    }

    fn done(&self) -> bool {
        self.done[0] && self.done[1] && self.scan_done()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the general path makes of a raw value: decoded, trimmed, cleaned.
    fn general_software(request: bool, raw: &[u8]) -> Option<(EvidenceKind, String)> {
        let value = http::value_text(raw);
        extract::http_software(request, Some(&value))
            .map(|(k, v)| (k, crate::fingerprint::evidence::cleaned(v).into_owned()))
    }

    #[test]
    fn plain_software_equals_the_general_path() {
        let mut values: Vec<Vec<u8>> = vec![
            b" Mozilla/5.0 (Windows NT 5.1; rv:32.0) Gecko/20100101 Firefox/32.0".to_vec(),
            b"Apache/2.4.41 (Ubuntu)  ".to_vec(),
            b"".to_vec(),
            b"   ".to_vec(),
            b" \t curl/7.68.0\t".to_vec(),
            b"a\x7fb".to_vec(),
            b"caf\xc3\xa9".to_vec(),
            b"\xff\xfe".to_vec(),
            b"x\x0by".to_vec(),
            b"x\r\ny".to_vec(),
        ];
        for n in [255, 256, 257, 511, 512, 513, 600] {
            values.push(vec![b'a'; n]);
            let mut v = vec![b' '; 3];
            v.extend(std::iter::repeat_n(b'b', n));
            v.extend([b' '; 4]);
            values.push(v);
            let mut v = vec![b'c'; n];
            v.push(0xc3);
            v.push(0xa9);
            values.push(v);
        }
        // Every short value of a few interesting bytes.
        let parts = [b' ', b'\t', b'a', b'~', 0x7f, 0x80, 0xc2, 0x85, b'\n', 0x0b];
        let mut stack: Vec<Vec<u8>> = vec![Vec::new()];
        while let Some(v) = stack.pop() {
            if v.len() < 4 {
                for p in parts {
                    stack.push([&v[..], &[p]].concat());
                }
            }
            values.push(v);
        }
        let mut plain = 0;
        for v in &values {
            for request in [true, false] {
                let want = general_software(request, v);
                match plain_software(request, v) {
                    Some(got) => {
                        plain += 1;
                        assert_eq!(got.map(|(k, s)| (k, s.to_string())), want, "{v:?}");
                    }
                    None => assert!(!printable_ascii(v) || v.trim_ascii().len() > 256, "{v:?}"),
                }
            }
        }
        assert!(plain > 200, "{plain}");
    }

    #[test]
    fn http_version_found_as_by_windows() {
        for line in [
            &b"GET / HTTP/1.1\r"[..],
            b"GET /HTTP HTTP/1.0",
            b"GET /H HTTP",
            b"HTTP/",
            b"HHTTP/",
            b"HTTP",
            b"",
            b"POST /a?HTTP/x HTTP/1.1",
            b"GET /HHHH",
        ] {
            assert_eq!(
                has_http_version(line),
                line.windows(5).any(|w| w == b"HTTP/"),
                "{line:?}"
            );
        }
    }

    #[test]
    fn blank_line_found_as_by_substring_search() {
        let parts: [&[u8]; 6] = [b"\r", b"\n", b"a", b"\r\n", b"\n\r", b" "];
        let mut n = 0;
        // Every sequence of up to 6 parts.
        let mut stack: Vec<Vec<u8>> = vec![Vec::new()];
        while let Some(b) = stack.pop() {
            let want = memchr::memmem::find(&b, b"\r\n\r\n").is_some()
                || memchr::memmem::find(&b, b"\n\n").is_some();
            assert_eq!(has_blank_line(&b), want, "{b:?}");
            n += 1;
            if b.len() < 9 {
                for p in parts {
                    stack.push([&b[..], p].concat());
                }
            }
        }
        assert!(n > 10_000, "{n}");
    }
}
