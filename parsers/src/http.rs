//! HTTP/1.x message heads: request or status line, Host, User-Agent, Server, and which
//! sensitive headers are present. Shared by [`crate::ssdp`] (SSDP is HTTP over UDP).
//!
//! Input: the first bytes of one direction of a TCP stream (or a UDP payload). Output: an owned
//! [`HttpHead`]. No I/O, no state, no panics.
//!
//! Privacy: the `Authorization` and `Proxy-Authorization` values are never kept: only their
//! scheme (`Basic`, `Digest`, `Bearer`, `NTLM`, ...) and the fact that they were sent. Cookie
//! values are not kept either (presence only).
//!
//! Limits and recoverable failures: the head is looked for in the first [`MAX_HEAD_LEN`] bytes;
//! at most [`MAX_HEADERS`] header lines are read; kept values are cut at [`MAX_VALUE_LEN`] bytes
//! (the URI at [`MAX_URI_LEN`]) and decoded lossily. [`parse_head`] needs the whole head
//! (`\r\n\r\n`) and reports [`HttpError::Incomplete`] before it; [`parse_head_lax`] reads the
//! complete lines present and says whether the head ended ([`HttpHead::complete`]).

use std::borrow::Cow;

use thiserror::Error;

use crate::Needed;

/// Bytes searched for the end of the head. Real request heads are under 8 KiB.
pub const MAX_HEAD_LEN: usize = 16 * 1024;
/// Header lines read.
pub const MAX_HEADERS: usize = 100;
/// Bytes kept of a header value.
pub const MAX_VALUE_LEN: usize = 512;
/// Bytes kept of the request target.
pub const MAX_URI_LEN: usize = 1024;
/// Header names kept, in order (for header-order fingerprints).
pub const MAX_HEADER_NAMES: usize = 64;

/// HTTP errors.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HttpError {
    #[error("HTTP head incomplete: {needed:?} more bytes needed")]
    Incomplete { needed: Needed },
    #[error("HTTP head longer than {cap} bytes")]
    TooLarge { cap: usize },
    #[error("not an HTTP start line")]
    NotHttp,
}

/// The start line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request {
        method: String,
        uri: String,
        version: String,
    },
    Response {
        version: String,
        status: u16,
        reason: String,
    },
}

/// A parsed message head.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct HttpHead {
    pub start: StartLine,
    pub host: Option<String>,
    pub user_agent: Option<String>,
    pub server: Option<String>,
    /// `X-Powered-By` (e.g. `PHP/5.4.45`, `ASP.NET`).
    pub powered_by: Option<String>,
    /// Scheme of `Authorization` (e.g. `Basic`), never the credentials.
    pub authorization_scheme: Option<String>,
    /// Scheme of `Proxy-Authorization`.
    pub proxy_authorization_scheme: Option<String>,
    /// Scheme of the first `WWW-Authenticate` challenge.
    pub www_authenticate_scheme: Option<String>,
    pub has_cookie: bool,
    pub has_set_cookie: bool,
    /// Header names in order, lower-cased, at most [`MAX_HEADER_NAMES`].
    pub header_names: Vec<String>,
    /// The head ended (`\r\n\r\n` or `\n\n` seen).
    pub complete: bool,
    /// Bytes of the head, including the blank line (only meaningful when `complete`).
    pub head_len: usize,
    /// More than [`MAX_HEADERS`] lines, or a line over [`MAX_HEAD_LEN`].
    pub truncated: bool,
}

impl HttpHead {
    /// Whether credentials were sent in a header (Authorization or Proxy-Authorization).
    pub fn has_credentials(&self) -> bool {
        self.authorization_scheme.is_some() || self.proxy_authorization_scheme.is_some()
    }

    /// The value of a header kept by name (`host`, `user-agent`, `server`, `x-powered-by`).
    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }
}

/// Lossy text, cut at `cap` bytes, trimmed.
pub(crate) fn text(bytes: &[u8], cap: usize) -> String {
    let cut = &bytes[..bytes.len().min(cap)];
    String::from_utf8_lossy(cut).trim().to_string()
}

/// Whether `b` starts like an HTTP/1.x request or status line (a token then a space, or
/// `HTTP/`). Cheap enough for content detection.
pub fn looks_like_http(b: &[u8]) -> bool {
    if b.starts_with(b"HTTP/") {
        return true;
    }
    let token_len = b
        .iter()
        .take(24)
        .take_while(|c| c.is_ascii_uppercase() || **c == b'-' || **c == b'_')
        .count();
    token_len >= 3 && b.get(token_len) == Some(&b' ')
}

/// The start line, borrowed from the input (what [`start_line`] makes owned text of).
enum StartRef<'a> {
    Request {
        method: &'a [u8],
        uri: &'a [u8],
        version: &'a [u8],
    },
    Response {
        version: &'a [u8],
        status: u16,
        reason: &'a [u8],
    },
}

/// `str::parse::<u16>` of `b` (an optional `+`, then at least one digit, no overflow), read
/// from the bytes without decoding them first (a byte that is not an ASCII digit fails either
/// way).
fn parse_u16(b: &[u8]) -> Option<u16> {
    let digits = b.strip_prefix(b"+").unwrap_or(b);
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u16, |n, &c| {
        if c.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u16::from(c - b'0'))
        } else {
            None
        }
    })
}

fn start_ref(line: &[u8]) -> Result<StartRef<'_>, HttpError> {
    // `line.splitn(3, |&c| c == b' ')`, with memchr: the URI between the two spaces may be long.
    let (a, rest) = match memchr::memchr(b' ', line) {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => return Err(HttpError::NotHttp),
    };
    let (b, c) = match memchr::memchr(b' ', rest) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    if a.starts_with(b"HTTP/") {
        let status = parse_u16(b).ok_or(HttpError::NotHttp)?;
        return Ok(StartRef::Response {
            version: a,
            status,
            reason: c,
        });
    }
    if a.is_empty() || !a.iter().all(|c| c.is_ascii_graphic()) || a.len() > 24 {
        return Err(HttpError::NotHttp);
    }
    if !c.starts_with(b"HTTP/") {
        return Err(HttpError::NotHttp);
    }
    Ok(StartRef::Request {
        method: a,
        uri: b,
        version: c,
    })
}

fn start_line(line: &[u8]) -> Result<StartLine, HttpError> {
    Ok(match start_ref(line)? {
        StartRef::Response {
            version,
            status,
            reason,
        } => StartLine::Response {
            version: text(version, 16),
            status,
            reason: text(reason, MAX_VALUE_LEN),
        },
        StartRef::Request {
            method,
            uri,
            version,
        } => StartLine::Request {
            method: text(method, 24),
            uri: text(uri, MAX_URI_LEN),
            version: text(version, 16),
        },
    })
}

fn scheme(value: &[u8]) -> String {
    let v = value.trim_ascii_start();
    let end = v
        .iter()
        .position(|c| c.is_ascii_whitespace() || *c == b',')
        .unwrap_or(v.len());
    text(&v[..end], 32)
}

/// Splits the head into lines (accepting `\n` alone as a terminator), at most
/// [`MAX_HEADERS`] + 1 of them; returns the lines, whether the blank line was seen, and the
/// head length.
fn lines(b: &[u8]) -> (Vec<&[u8]>, bool, usize, bool) {
    let mut out = Vec::new();
    let (complete, len, truncated) = for_each_line(b, |l| out.push(l));
    (out, complete, len, truncated)
}

/// The lines [`lines`] collects, handed to `f` one by one (nothing allocated); returns whether
/// the blank line was seen, the head length, and whether the head was cut.
fn for_each_line<'a>(b: &'a [u8], mut f: impl FnMut(&'a [u8])) -> (bool, usize, bool) {
    let mut n = 0usize;
    let mut pos = 0usize;
    let limit = b.len().min(MAX_HEAD_LEN);
    while pos < limit {
        if n > MAX_HEADERS {
            return (false, pos, true);
        }
        let Some(nl) = memchr::memchr(b'\n', &b[pos..limit]) else {
            return (false, pos, b.len() >= MAX_HEAD_LEN);
        };
        let mut line = &b[pos..pos + nl];
        if let Some(l) = line.strip_suffix(b"\r") {
            line = l;
        }
        pos += nl + 1;
        if line.is_empty() {
            return (true, pos, false);
        }
        f(line);
        n += 1;
    }
    (false, pos, b.len() >= MAX_HEAD_LEN)
}

/// Whether a header name is `want` (lower-case ASCII) as [`parse_head_lax`] compares it (its
/// first 64 bytes as lossy text, trimmed, lower-cased), without allocating for ASCII names.
fn name_is(name: &[u8], want: &str) -> bool {
    let cut = &name[..name.len().min(64)];
    // Quick answers, the same as the full comparison below (`want` is ASCII without white
    // space): the lossy text of `cut` has an ASCII character for each ASCII byte and only
    // non-ASCII characters for the others, and trimming drops white space at the ends only.
    // So a match needs `want.len()` ASCII bytes (`cut` no shorter); a `cut` exactly that long
    // matches only as it is; and one with no white space at either end (and so nothing to
    // trim) only if it is that long.
    let ws = |c: u8| matches!(c, b'\t'..=b'\r' | b' ');
    if cut.len() <= want.len() {
        return cut.eq_ignore_ascii_case(want.as_bytes());
    }
    if let (Some(&f), Some(&l)) = (cut.first(), cut.last()) {
        if f.is_ascii() && !ws(f) && l.is_ascii() && !ws(l) {
            return false;
        }
    }
    if !cut.is_ascii() {
        return text(name, 64).to_ascii_lowercase() == want;
    }
    let ws = |c: &u8| (*c as char).is_whitespace();
    let start = cut.iter().position(|c| !ws(c)).unwrap_or(cut.len());
    let end = cut.iter().rposition(|c| !ws(c)).map_or(start, |e| e + 1);
    cut[start..end].eq_ignore_ascii_case(want.as_bytes())
}

/// [`text`] of `bytes`, borrowed when they are UTF-8.
fn text_ref(bytes: &[u8], cap: usize) -> Cow<'_, str> {
    let cut = &bytes[..bytes.len().min(cap)];
    match std::str::from_utf8(cut) {
        Ok(s) => Cow::Borrowed(s.trim()),
        Err(_) => Cow::Owned(String::from_utf8_lossy(cut).trim().to_string()),
    }
}

/// What a head says about its sender, read without building an [`HttpHead`]: whether it is a
/// request, and the value [`parse_head_lax`] keeps of a request's `User-Agent` or a response's
/// `Server` (the last one; borrowed unless it is not UTF-8). Errors as [`parse_head_lax`].
pub fn sender_software(b: &[u8]) -> Result<(bool, Option<Cow<'_, str>>), HttpError> {
    let (request, value) = sender_software_raw(b)?;
    Ok((request, value.map(value_text)))
}

/// The text [`sender_software`] makes of a value [`sender_software_raw`] found: cut at
/// [`MAX_VALUE_LEN`] bytes, decoded lossily, trimmed; borrowed unless it is not UTF-8.
pub fn value_text(v: &[u8]) -> Cow<'_, str> {
    text_ref(v, MAX_VALUE_LEN)
}

/// [`sender_software`] with the value as it is in the head: the bytes after the header's
/// colon, not cut, not decoded, not trimmed (what `sender_software` makes text of with
/// [`text_ref`] at [`MAX_VALUE_LEN`]).
///
/// One pass over the lines [`for_each_line`] hands over (the start line and at most
/// [`MAX_HEADERS`] header lines, up to the blank line, within [`MAX_HEAD_LEN`] bytes); only
/// lines that may name the wanted header are looked at further.
pub fn sender_software_raw(b: &[u8]) -> Result<(bool, Option<&[u8]>), HttpError> {
    // The wanted header's name, from the start line (`None` until it is read).
    let mut want: Option<Result<&str, HttpError>> = None;
    let mut value = None;
    for_each_line(b, |line| {
        let w = match &want {
            None => {
                want = Some(start_ref(line).map(|s| match s {
                    StartRef::Request { .. } => "user-agent",
                    StartRef::Response { .. } => "server",
                }));
                return;
            }
            Some(Ok(w)) => *w,
            Some(Err(_)) => return,
        };
        // A line that starts with a letter other than the wanted name's first (in either
        // case) names another header: `name_is` would say no, whatever follows.
        if let (Some(&c), Some(&f)) = (line.first(), w.as_bytes().first()) {
            if c.is_ascii_alphabetic() && c.to_ascii_lowercase() != f {
                return;
            }
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            return;
        };
        if name_is(&line[..colon], w) {
            value = Some(&line[colon + 1..]);
        }
    });
    match want {
        Some(Ok(w)) => Ok((w == "user-agent", value)),
        Some(Err(e)) => Err(e),
        None if b.len() >= MAX_HEAD_LEN => Err(HttpError::TooLarge { cap: MAX_HEAD_LEN }),
        None => Err(HttpError::Incomplete {
            needed: Needed::Unknown,
        }),
    }
}

/// Parses the head from whatever complete lines are present.
///
/// Errors: [`HttpError::Incomplete`] when not even the start line is complete,
/// [`HttpError::NotHttp`] when the start line is not HTTP/1.x.
pub fn parse_head_lax(b: &[u8]) -> Result<HttpHead, HttpError> {
    let (ls, complete, head_len, truncated) = lines(b);
    let Some((first, headers)) = ls.split_first() else {
        if b.len() >= MAX_HEAD_LEN {
            return Err(HttpError::TooLarge { cap: MAX_HEAD_LEN });
        }
        return Err(HttpError::Incomplete {
            needed: Needed::Unknown,
        });
    };
    let mut head = HttpHead {
        start: start_line(first)?,
        host: None,
        user_agent: None,
        server: None,
        powered_by: None,
        authorization_scheme: None,
        proxy_authorization_scheme: None,
        www_authenticate_scheme: None,
        has_cookie: false,
        has_set_cookie: false,
        header_names: Vec::new(),
        complete,
        head_len,
        truncated,
    };
    for line in headers.iter().take(MAX_HEADERS) {
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            continue;
        };
        let name = text(&line[..colon], 64).to_ascii_lowercase();
        let value = &line[colon + 1..];
        match name.as_str() {
            "host" => head.host = Some(text(value, MAX_VALUE_LEN)),
            "user-agent" => head.user_agent = Some(text(value, MAX_VALUE_LEN)),
            "server" => head.server = Some(text(value, MAX_VALUE_LEN)),
            "x-powered-by" => head.powered_by = Some(text(value, MAX_VALUE_LEN)),
            "authorization" => head.authorization_scheme = Some(scheme(value)),
            "proxy-authorization" => head.proxy_authorization_scheme = Some(scheme(value)),
            "www-authenticate" if head.www_authenticate_scheme.is_none() => {
                head.www_authenticate_scheme = Some(scheme(value))
            }
            "cookie" => head.has_cookie = true,
            "set-cookie" => head.has_set_cookie = true,
            _ => {}
        }
        if head.header_names.len() < MAX_HEADER_NAMES {
            head.header_names.push(name);
        }
    }
    Ok(head)
}

/// Parses a complete head; [`HttpError::Incomplete`] until the blank line has arrived,
/// [`HttpError::TooLarge`] when it has not within [`MAX_HEAD_LEN`] bytes.
pub fn parse_head(b: &[u8]) -> Result<HttpHead, HttpError> {
    let head = parse_head_lax(b)?;
    if head.complete {
        Ok(head)
    } else if head.truncated || b.len() >= MAX_HEAD_LEN {
        Err(HttpError::TooLarge { cap: MAX_HEAD_LEN })
    } else {
        Err(HttpError::Incomplete {
            needed: Needed::Unknown,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // pcaps/corpus/legacy/arkime_http-basicauth.pcap frame 4, the TCP payload (10.0.0.2:1087 ->
    // 10.0.0.1:2082). Oracle: tshark -T fields -e http.request.method -e http.request.version
    // -e http.host -e http.user_agent -e http.authorization => GET | HTTP/1.1 |
    // 10.000.000.001:1234 | Mozilla/5.0 (Windows NT 5.1; rv:32.0) Gecko/20100101 Firefox/32.0 |
    // Basic dXNlcnJycnI6cGFzc3dvcmRkZGRk  (the test checks that only "Basic" is kept).
    const REQUEST: &[u8] = b"GET /xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx/xxx/xxxxxxxxxxxxxxxxxxxx.js HTTP/1.1\r\n\
Host: 10.000.000.001:1234\r\n\
User-Agent: Mozilla/5.0 (Windows NT 5.1; rv:32.0) Gecko/20100101 Firefox/32.0\r\n\
Accept: */*\r\n\
Accept-Language: en-GB,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate\r\n\
Referer: http://10.000.000.001:1234/zzzzzzzzzzzzzzzz/zzzzzzzz/zz/zzzzzzzzz/index.html\r\n\
Cookie: zzzzzzzzzzzzzzzzzz=auto; cprelogin=no; cpsession=zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz; langedit=; lang=\r\n\
Authorization: Basic dXNlcnJycnI6cGFzc3dvcmRkZGRk\r\n\
Connection: keep-alive\r\n\
If-Modified-Since: Wed, 29 Oct 2014 01:11:13 GMT\r\n\
\r\n\
";

    // Same capture, frame 6 (the reply). tshark -e http.server -e http.response.code =>
    // cpsrvd/11.44.1.19 | 304
    const RESPONSE: &[u8] = b"HTTP/1.1 304 Not Modified\r\n\
Server: cpsrvd/11.44.1.19\r\n\
X-Keep-Alive-Count: 1\r\n\
Connection: Keep-Alive\r\n\
Keep-Alive: timeout=70, max=200\r\n\
Date: Wed, 29 Oct 2014 17:35:08 GMT\r\n\
Cache-Control: max-age=5184000, public\r\n\
Expires: Sun, 28 Dec 2014 17:35:07 GMT\r\n\
\r\n";

    #[test]
    fn windows_xp_firefox_request() {
        let h = parse_head(REQUEST).unwrap();
        assert_eq!(h.method(), Some("GET"));
        match &h.start {
            StartLine::Request { uri, version, .. } => {
                assert!(uri.ends_with(".js"));
                assert_eq!(version, "HTTP/1.1");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(h.host.as_deref(), Some("10.000.000.001:1234"));
        assert_eq!(
            h.user_agent.as_deref(),
            Some("Mozilla/5.0 (Windows NT 5.1; rv:32.0) Gecko/20100101 Firefox/32.0")
        );
        assert_eq!(h.authorization_scheme.as_deref(), Some("Basic"));
        assert!(h.has_credentials());
        assert!(h.has_cookie);
        assert!(h.complete);
        assert_eq!(h.head_len, REQUEST.len());
        assert_eq!(h.header_names[0], "host");
        // The credential never reaches the value.
        assert!(!format!("{h:?}").contains("dXNlcnJycnI6"));
    }

    #[test]
    fn server_reply() {
        let h = parse_head(RESPONSE).unwrap();
        assert_eq!(
            h.start,
            StartLine::Response {
                version: "HTTP/1.1".into(),
                status: 304,
                reason: "Not Modified".into()
            }
        );
        assert_eq!(h.server.as_deref(), Some("cpsrvd/11.44.1.19"));
        assert!(!h.has_credentials());
    }

    #[test]
    fn incomplete_lax_and_garbage() {
        for n in 0..REQUEST.len() {
            let r = parse_head(&REQUEST[..n]);
            assert!(matches!(r, Err(HttpError::Incomplete { .. })), "{n}: {r:?}");
            let _ = parse_head_lax(&REQUEST[..n]);
        }
        let lax = parse_head_lax(&REQUEST[..200]).unwrap();
        assert!(!lax.complete);
        assert!(lax.user_agent.is_some());
        assert_eq!(
            parse_head(b"\x16\x03\x01\x02\x00 x\r\n"),
            Err(HttpError::NotHttp)
        );
        assert!(looks_like_http(REQUEST));
        assert!(looks_like_http(RESPONSE));
        assert!(looks_like_http(b"M-SEARCH * HTTP/1.1\r\n"));
        assert!(!looks_like_http(b"\x16\x03\x01"));
        let big = vec![b'a'; MAX_HEAD_LEN + 10];
        assert_eq!(
            parse_head(&big),
            Err(HttpError::TooLarge { cap: MAX_HEAD_LEN })
        );
        // Many headers are capped.
        let mut many = b"GET / HTTP/1.0\r\n".to_vec();
        for _ in 0..500 {
            many.extend_from_slice(b"X: y\r\n");
        }
        many.extend_from_slice(b"\r\n");
        let h = parse_head_lax(&many).unwrap();
        assert!(h.truncated);
        assert!(h.header_names.len() <= MAX_HEADER_NAMES);
    }

    /// What [`sender_software`] must equal: the start kind and the value kept by the full parse.
    fn software_by_full_parse(b: &[u8]) -> Result<(bool, Option<String>), HttpError> {
        let h = parse_head_lax(b)?;
        Ok(match h.start {
            StartLine::Request { .. } => (true, h.user_agent),
            StartLine::Response { .. } => (false, h.server),
        })
    }

    fn software(b: &[u8]) -> Result<(bool, Option<String>), HttpError> {
        sender_software(b).map(|(r, v)| (r, v.map(|v| v.into_owned())))
    }

    #[test]
    fn sender_software_equals_the_full_parse() {
        let mut cases: Vec<Vec<u8>> = vec![
            REQUEST.to_vec(),
            RESPONSE.to_vec(),
            b"GET / HTTP/1.1\r\nuser-agent: a\r\nUSER-AGENT: b \r\n\r\n".to_vec(),
            b"HTTP/1.0 200 OK\nServer:\xe9t\xe9\nUser-Agent: x\n\n".to_vec(),
            b"GET / HTTP/1.1\r\n\x0b User-Agent\t: v\r\n".to_vec(),
            b"GET / HTTP/1.1\r\n\xc2\xa0User-Agent: nbsp\r\n\r\n".to_vec(),
            b"POST / HTTP/1.1\r\nServer: s\r\n\r\n".to_vec(),
            b"\x16\x03\x01 x\r\n".to_vec(),
            b"GET / HTTP/1.1".to_vec(),
            vec![b'a'; MAX_HEAD_LEN + 10],
        ];
        let mut many = b"GET / HTTP/1.0\r\n".to_vec();
        for i in 0..500 {
            many.extend_from_slice(format!("User-Agent: v{i}\r\n").as_bytes());
        }
        cases.push(many);
        for n in 0..REQUEST.len() {
            cases.push(REQUEST[..n].to_vec());
        }
        for c in &cases {
            assert_eq!(software(c), software_by_full_parse(c), "{c:?}");
        }
    }

    #[test]
    fn parse_u16_equals_str_parse() {
        let mut inputs: Vec<Vec<u8>> = [
            &b""[..],
            b"+",
            b"-",
            b"-0",
            b"+0",
            b"++1",
            b"200",
            b"0200",
            b"65535",
            b"65536",
            b"99999",
            b"000000000000065535",
            b"1 ",
            b" 1",
            b"\xff",
            b"2\xc3\xa9",
        ]
        .iter()
        .map(|b| b.to_vec())
        .collect();
        for n in (0..70_000u32).step_by(7) {
            inputs.push(n.to_string().into_bytes());
        }
        for b in inputs {
            let want = std::str::from_utf8(&b)
                .ok()
                .and_then(|s| s.parse::<u16>().ok());
            assert_eq!(parse_u16(&b), want, "{b:?}");
        }
    }

    #[test]
    fn name_is_equals_the_lossy_lowered_text() {
        // Every name of up to 4 parts from pieces around the edge cases: white space ASCII
        // and not (NBSP, NEL), bytes that are not UTF-8, case, lengths either side of the
        // wanted name's, and the 64-byte cut (a two-byte character across it).
        let parts: [&[u8]; 12] = [
            b"user-agent",
            b"SERVER",
            b"Server",
            b" ",
            b"\x0b",
            b"\t",
            b"\xc2\xa0",
            b"\xc2\x85",
            b"\xff",
            b"x",
            b"-",
            b"",
        ];
        let long = [b'a'; 63];
        let mut n = 0;
        for a in parts {
            for b in parts {
                for c in parts {
                    for d in parts {
                        let name = [a, b, c, d].concat();
                        let cut_long = [&long[..], a, b].concat();
                        for name in [&name[..], &cut_long[..]] {
                            for want in ["user-agent", "server"] {
                                let reference = text(name, 64).to_ascii_lowercase() == want;
                                assert_eq!(name_is(name, want), reference, "{name:?} {want}");
                                n += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(n > 40_000);
    }

    proptest::proptest! {
        #[test]
        fn sender_software_equals_the_full_parse_on_any_head(
            start in proptest::sample::select(vec![
                "GET / HTTP/1.1", "HTTP/1.1 404 Nope", "M-SEARCH * HTTP/1.1", "HTTP/1.0 abc x",
                "get x y", "",
            ]),
            lines in proptest::collection::vec(
                (proptest::sample::select(vec![
                    "User-Agent", "user-agent", " SERVER ", "Server", "\u{a0}server", "Host",
                    "x", "", "User-Agent\u{b}", "Serv\u{e9}r",
                ]), proptest::collection::vec(proptest::num::u8::ANY, 0..20), proptest::bool::ANY),
                0..8,
            ),
            end in proptest::sample::select(vec!["\r\n", "\n", ""]),
        ) {
            let mut b = start.as_bytes().to_vec();
            b.extend_from_slice(b"\r\n");
            for (name, value, colon) in &lines {
                b.extend_from_slice(name.as_bytes());
                if *colon {
                    b.push(b':');
                }
                b.extend(value.iter().copied().filter(|c| *c != b'\n'));
                b.extend_from_slice(b"\r\n");
            }
            b.extend_from_slice(end.as_bytes());
            proptest::prop_assert_eq!(software(&b), software_by_full_parse(&b));
        }
    }
}
