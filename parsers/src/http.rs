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

fn start_line(line: &[u8]) -> Result<StartLine, HttpError> {
    let mut parts = line.splitn(3, |&c| c == b' ');
    let a = parts.next().unwrap_or_default();
    let b = parts.next().ok_or(HttpError::NotHttp)?;
    let c = parts.next().unwrap_or_default();
    if a.starts_with(b"HTTP/") {
        let status = std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or(HttpError::NotHttp)?;
        return Ok(StartLine::Response {
            version: text(a, 16),
            status,
            reason: text(c, MAX_VALUE_LEN),
        });
    }
    if a.is_empty() || !a.iter().all(|c| c.is_ascii_graphic()) || a.len() > 24 {
        return Err(HttpError::NotHttp);
    }
    if !c.starts_with(b"HTTP/") {
        return Err(HttpError::NotHttp);
    }
    Ok(StartLine::Request {
        method: text(a, 24),
        uri: text(b, MAX_URI_LEN),
        version: text(c, 16),
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
    let mut pos = 0usize;
    let limit = b.len().min(MAX_HEAD_LEN);
    while pos < limit {
        if out.len() > MAX_HEADERS {
            return (out, false, pos, true);
        }
        let Some(nl) = b[pos..limit].iter().position(|&c| c == b'\n') else {
            return (out, false, pos, b.len() >= MAX_HEAD_LEN);
        };
        let mut line = &b[pos..pos + nl];
        if let Some(l) = line.strip_suffix(b"\r") {
            line = l;
        }
        pos += nl + 1;
        if line.is_empty() {
            return (out, true, pos, false);
        }
        out.push(line);
    }
    (out, false, pos, b.len() >= MAX_HEAD_LEN)
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
}
