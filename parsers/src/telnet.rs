//! Telnet option negotiation (RFC 854, RFC 855): which options the two sides ask for.
//!
//! Input: bytes of one direction. Output: the negotiation commands found ([`Negotiation`]),
//! each an IAC WILL/WONT/DO/DONT with its option code. Subnegotiations (IAC SB .. IAC SE) are
//! skipped; data bytes are never kept (they carry the login and password in clear). No I/O,
//! no panics.
//!
//! Limits: at most `max` negotiations are returned per call (the caller's cap); a command cut
//! at the end of the input is reported by [`scan`]'s `pending` count so a streaming caller can
//! keep those (at most 2) bytes.

/// Interpret As Command.
pub const IAC: u8 = 255;
pub const DONT: u8 = 254;
pub const DO: u8 = 253;
pub const WONT: u8 = 252;
pub const WILL: u8 = 251;
pub const SB: u8 = 250;
pub const SE: u8 = 240;

/// One option negotiation command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiation {
    /// WILL, WONT, DO or DONT.
    pub command: u8,
    /// Option code (1 echo, 3 suppress go ahead, 24 terminal type, 31 window size, 32 terminal
    /// speed, 33 remote flow control, 34 linemode, 39 new environment ...).
    pub option: u8,
}

/// What one scan found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[must_use]
pub struct Scan {
    pub negotiations: Vec<Negotiation>,
    /// Negotiations past the `max` asked for (counted, not kept).
    pub more: usize,
    /// Bytes at the end that start a command not yet complete (0..=2).
    pub pending: usize,
    /// Data bytes (not part of a command).
    pub data_bytes: usize,
}

/// Scan `data` for negotiation commands, keeping at most `max`. `in_sb` carries the
/// "inside a subnegotiation" state across calls.
pub fn scan(data: &[u8], max: usize, in_sb: &mut bool) -> Scan {
    let mut s = Scan::default();
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        if b != IAC {
            if !*in_sb {
                s.data_bytes += 1;
            }
            i += 1;
            continue;
        }
        let Some(&cmd) = data.get(i + 1) else {
            s.pending = data.len() - i;
            break;
        };
        match cmd {
            WILL..=DONT => {
                let Some(&option) = data.get(i + 2) else {
                    s.pending = data.len() - i;
                    break;
                };
                if !*in_sb {
                    if s.negotiations.len() < max {
                        s.negotiations.push(Negotiation {
                            command: cmd,
                            option,
                        });
                    } else {
                        s.more += 1;
                    }
                }
                i += 3;
            }
            SB => {
                *in_sb = true;
                i += 2;
            }
            SE => {
                *in_sb = false;
                i += 2;
            }
            IAC => {
                if !*in_sb {
                    s.data_bytes += 1;
                }
                i += 2;
            }
            _ => i += 2,
        }
    }
    s
}

/// Whether a stream starts with a negotiation command (what telnet servers and clients send
/// first). `None`: too few bytes to tell.
pub fn looks_like_telnet(b: &[u8]) -> Option<bool> {
    match b {
        [] | [IAC] => None,
        [IAC, c, ..] if (WILL..=DONT).contains(c) => {
            if b.len() < 3 {
                None
            } else {
                // A second command, if present, must be a negotiation too.
                match &b[3..] {
                    [] | [IAC] => Some(true),
                    [IAC, c2, ..] => Some((SB..=DONT).contains(c2) || *c2 == SE),
                    _ => Some(true),
                }
            }
        }
        _ => Some(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ndpi telnet.pcap: the server's first segment "ff fd 18 ff fd 20 ff fd 23 ff fd 27".
    #[test]
    fn server_negotiation() {
        let b = [255, 253, 24, 255, 253, 32, 255, 253, 35, 255, 253, 39];
        assert_eq!(looks_like_telnet(&b), Some(true));
        let mut sb = false;
        let s = scan(&b, 16, &mut sb);
        assert_eq!(s.negotiations.len(), 4);
        assert_eq!(
            s.negotiations[0],
            Negotiation {
                command: DO,
                option: 24
            }
        );
        assert_eq!(s.pending, 0);
        let s = scan(&b[..4], 16, &mut sb);
        assert_eq!((s.negotiations.len(), s.pending), (1, 1));
        assert_eq!(looks_like_telnet(b"login: "), Some(false));
        assert_eq!(looks_like_telnet(&[255]), None);
    }

    #[test]
    fn subnegotiation_and_data() {
        let b = [255, 250, 24, 1, 255, 240, b'a', 255, 255, 255, 251, 1];
        let mut sb = false;
        let s = scan(&b, 1, &mut sb);
        assert_eq!(
            s.negotiations,
            vec![Negotiation {
                command: WILL,
                option: 1
            }]
        );
        assert_eq!(s.data_bytes, 2);
        assert!(!sb);
        let s = scan(&[255, 251, 1, 255, 251, 3], 1, &mut sb);
        assert_eq!(s.more, 1);
    }
}
