//! FTP control channel lines (RFC 959 4, RFC 4217 for AUTH TLS).
//!
//! Inputs: one line of the control connection (without or with its CRLF). Outputs: the command
//! verb with whether it had an argument ([`FtpCommand`]), or a reply code ([`FtpReply`]). The
//! argument is never kept, except what [`auth_mechanism`] and [`is_anonymous_user`] classify
//! it into (so a password or user name never leaves the parser). No I/O, no panics.
//!
//! Limits: verbs are at most [`MAX_VERB_LEN`] letters; a caller bounds line length
//! ([`MAX_LINE_LEN`] is the recommended cap; RFC 959 has none, real lines are under 600 bytes).

/// Letters of a command verb (RFC 959: 3 or 4; extensions such as `EPSV` too).
pub const MAX_VERB_LEN: usize = 4;
/// Line length a streaming caller should keep before discarding the rest of the line.
pub const MAX_LINE_LEN: usize = 2048;

/// A command line: the verb, upper-cased, and whether an argument followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct FtpCommand {
    verb: [u8; MAX_VERB_LEN],
    len: u8,
    pub has_arg: bool,
}

impl FtpCommand {
    pub fn verb(&self) -> &str {
        std::str::from_utf8(&self.verb[..usize::from(self.len)]).unwrap_or("")
    }
}

/// A reply line: the three-digit code and whether it is the last line of the reply (`ddd `)
/// or a continuation (`ddd-`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct FtpReply {
    pub code: u16,
    pub last: bool,
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let mut l = line;
    while let [rest @ .., b'\r' | b'\n'] = l {
        l = rest;
    }
    l
}

/// A client command line (`USER name`, `PASS x`, `AUTH TLS`, `QUIT`): letters then a space or
/// the end of line.
pub fn parse_command(line: &[u8]) -> Option<FtpCommand> {
    let l = trim_eol(line);
    let n = l
        .iter()
        .position(|&c| !c.is_ascii_alphabetic())
        .unwrap_or(l.len());
    if !(3..=MAX_VERB_LEN).contains(&n) {
        return None;
    }
    let has_arg = match l.get(n) {
        None => false,
        Some(b' ') => l[n + 1..].iter().any(|c| !c.is_ascii_whitespace()),
        Some(_) => return None,
    };
    let mut verb = [0u8; MAX_VERB_LEN];
    for (d, s) in verb.iter_mut().zip(&l[..n]) {
        *d = s.to_ascii_uppercase();
    }
    Some(FtpCommand {
        verb,
        len: n as u8,
        has_arg,
    })
}

/// A server reply line: three digits (1-5 first) then space, dash, or the end of line.
pub fn parse_reply(line: &[u8]) -> Option<FtpReply> {
    let l = trim_eol(line);
    let d = l.get(..3)?;
    if !(b'1'..=b'5').contains(&d[0]) || !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let last = match l.get(3) {
        None | Some(b' ') => true,
        Some(b'-') => false,
        Some(_) => return None,
    };
    let code = d.iter().fold(0u16, |a, &c| a * 10 + u16::from(c - b'0'));
    Some(FtpReply { code, last })
}

/// The argument of an `AUTH` line as a fixed word (`TLS`, `SSL`, `TLS-C`, `TLS-P`), or `other`.
pub fn auth_mechanism(line: &[u8]) -> &'static str {
    let l = trim_eol(line);
    let arg = l.get(5..).unwrap_or(&[]);
    let arg = arg.trim_ascii();
    for m in ["TLS", "SSL", "TLS-C", "TLS-P"] {
        if arg.eq_ignore_ascii_case(m.as_bytes()) {
            return m;
        }
    }
    "other"
}

/// Whether a `USER` line names the anonymous account (`anonymous` or `ftp`, RFC 1635).
pub fn is_anonymous_user(line: &[u8]) -> bool {
    let l = trim_eol(line);
    let arg = l.get(5..).unwrap_or(&[]).trim_ascii();
    arg.eq_ignore_ascii_case(b"anonymous") || arg.eq_ignore_ascii_case(b"ftp")
}

/// Whether the first bytes a server sends look like an FTP greeting (`220` then space or dash).
pub fn looks_like_greeting(b: &[u8]) -> Option<bool> {
    let want = b"220";
    let n = b.len().min(4);
    if n < 4 {
        return if b[..n.min(3)] == want[..n.min(3)] {
            None
        } else {
            Some(false)
        };
    }
    Some(&b[..3] == want && matches!(b[3], b' ' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    // zeek ftp-password-pass-command.pcap: "USER Admin\r\n", "PASS qwerty\r\n", "230 ...".
    #[test]
    fn commands_and_replies() {
        let c = parse_command(b"USER Admin\r\n").unwrap();
        assert_eq!((c.verb(), c.has_arg), ("USER", true));
        let c = parse_command(b"pass qwerty\r\n").unwrap();
        assert_eq!(c.verb(), "PASS");
        assert!(!format!("{c:?}").contains("qwerty"));
        assert_eq!(parse_command(b"QUIT\r\n").unwrap().verb(), "QUIT");
        assert!(parse_command(b"220 hello").is_none());
        assert!(parse_command(b"\x16\x03\x01").is_none());
        assert_eq!(
            parse_reply(b"230 Login successful.\r\n"),
            Some(FtpReply {
                code: 230,
                last: true
            })
        );
        assert_eq!(parse_reply(b"220-Welcome").map(|r| r.last), Some(false));
        assert!(parse_reply(b"USER x").is_none());
        assert_eq!(auth_mechanism(b"AUTH TLS\r\n"), "TLS");
        assert_eq!(auth_mechanism(b"AUTH GSSAPI\r\n"), "other");
        assert!(is_anonymous_user(b"USER anonymous\r\n"));
        assert!(!is_anonymous_user(b"USER Admin\r\n"));
        assert_eq!(looks_like_greeting(b"22"), None);
        assert_eq!(looks_like_greeting(b"220 (vsFTPd 3.0.3)"), Some(true));
        assert_eq!(looks_like_greeting(b"SSH-2.0"), Some(false));
    }
}
