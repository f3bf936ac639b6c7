//! The BSD r-commands' connection preambles: rlogin (RFC 1282, TCP 513), rsh (TCP 514) and
//! rexec (TCP 512), all of which carry a user name (and for rexec a password) in clear.
//!
//! Input: the first bytes the client sends. Output: [`Preamble`]: which shape the bytes have and
//! how many of its NUL-terminated fields are complete. Field contents (user names, the rexec
//! password, the command) are never kept. No I/O, no panics.
//!
//! rlogin: `\0` (counted as the first, empty field) client-user `\0` server-user `\0` terminal-type/speed `\0`.
//! rsh and rexec: stderr-port (ASCII digits, may be empty) `\0` user `\0` user-or-password `\0`
//! command `\0`. The two are told apart by port only.

/// Bytes one field may take before the preamble is judged not to be one.
pub const MAX_FIELD_LEN: usize = 256;

/// The shape of a preamble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// rlogin: a leading NUL, then user, user, terminal/speed.
    Rlogin,
    /// rsh/rexec: a port number (digits) then three fields.
    PortThenFields,
}

/// What the first client bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Preamble {
    /// The bytes fit the shape so far; `fields` NUL-terminated fields are complete (the whole
    /// preamble has 4).
    Fits { shape: Shape, fields: usize },
    /// Not an r-command preamble.
    No,
}

fn fields_ok(b: &[u8], printable_from: usize) -> Option<usize> {
    let mut fields = 0;
    let mut len = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == 0 {
            fields += 1;
            len = 0;
            if fields == 4 {
                return Some(fields);
            }
            continue;
        }
        len += 1;
        if len > MAX_FIELD_LEN || (i >= printable_from && !(0x20..0x7f).contains(&c)) {
            return None;
        }
    }
    Some(fields)
}

/// Judge the first client bytes against `shape`.
pub fn parse_preamble(b: &[u8], shape: Shape) -> Preamble {
    match shape {
        Shape::Rlogin => {
            if b.first().is_some_and(|&c| c != 0) {
                return Preamble::No;
            }
            match fields_ok(b, 1) {
                // The third field is "terminal/speed".
                Some(4) => {
                    let term = b[1..].split(|&c| c == 0).nth(2).unwrap_or(&[]);
                    if term.contains(&b'/') {
                        Preamble::Fits { shape, fields: 4 }
                    } else {
                        Preamble::No
                    }
                }
                Some(n) => Preamble::Fits { shape, fields: n },
                None => Preamble::No,
            }
        }
        Shape::PortThenFields => {
            let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
            if digits > 5 || b.get(digits).is_some_and(|&c| c != 0) {
                return Preamble::No;
            }
            match fields_ok(b, 0) {
                Some(n) => Preamble::Fits { shape, fields: n },
                None => Preamble::No,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rlogin_and_rsh() {
        let r = b"\0alice\0alice\0xterm/38400\0";
        assert_eq!(
            parse_preamble(r, Shape::Rlogin),
            Preamble::Fits {
                shape: Shape::Rlogin,
                fields: 4
            }
        );
        assert_eq!(
            parse_preamble(&r[..8], Shape::Rlogin),
            Preamble::Fits {
                shape: Shape::Rlogin,
                fields: 2
            }
        );
        assert_eq!(
            parse_preamble(b"\0a\0b\0xterm\0", Shape::Rlogin),
            Preamble::No
        );
        assert_eq!(parse_preamble(b"SSH-2.0", Shape::Rlogin), Preamble::No);
        let s = b"1022\0bob\0bob\0uptime\0";
        assert_eq!(
            parse_preamble(s, Shape::PortThenFields),
            Preamble::Fits {
                shape: Shape::PortThenFields,
                fields: 4
            }
        );
        assert_eq!(
            parse_preamble(b"GET / HTTP/1.1", Shape::PortThenFields),
            Preamble::No
        );
        assert_eq!(
            parse_preamble(b"\x16\x03\x01", Shape::PortThenFields),
            Preamble::No
        );
    }
}
