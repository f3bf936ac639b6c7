//! HTTP/1.x: device evidence (the request's User-Agent for the client, the response's Server
//! for the server, from each direction's first head) and, for detection, whether requests carry
//! credentials in clear (`Authorization` / `Proxy-Authorization`: Basic sends the password
//! base64-encoded, Digest a replayable hash). Only the scheme is kept, never the value. No
//! event; facts the first time a scheme is seen on a connection.
//!
//! Authorization lines are found by scanning the client's lines (at most [`MAX_SCAN_BYTES`]
//! bytes and [`MAX_REQUESTS`] requests per connection; bodies are scanned too, and a body line
//! that looks like an Authorization header would count, which no real client sends).

use medtap_parsers::http;

use super::lines::Lines;
use super::{AppContext, AppParser, Direction};
use crate::fingerprint::extract;
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
    /// evidence ([`extract::from_http`], without building the whole head).
    fn read_head(&mut self, dir: Direction, head: &[u8], cx: &mut AppContext<'_>) {
        self.done[dir.index()] = true;
        if let Ok((request, value)) = http::sender_software(head) {
            if let Some((kind, v)) = extract::http_software(request, value.as_deref()) {
                let (mac, ip) = cx.flow.sender(dir);
                cx.obs
                    .evidence_refs(cx.ts, mac, Some(ip), &[(kind, v, 100)]);
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
            let starts =
                |p: &[u8]| line.len() >= p.len() && line[..p.len()].eq_ignore_ascii_case(p);
            if http::looks_like_http(line) && line.windows(5).any(|w| w == b"HTTP/") {
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
