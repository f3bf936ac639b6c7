//! TCP/IP stack fingerprints of SYN and SYN+ACK packets, and a reader and matcher for p0f v3's
//! `p0f.fp` (the `[tcp:request]` / `[tcp:response]` sections), with p0f's matching rules.
//!
//! Input to [`parse_syn`]: one IP packet (IPv4 or IPv6 header first) carrying a TCP SYN or
//! SYN+ACK. Output: an owned [`TcpSignature`] with the fields p0f uses: IP version, TTL (and the
//! initial TTL guessed from it), IP options length, MSS, window, window scale, the option layout
//! (`mss,nop,ws,sok,ts`), EOL padding and the quirks (`df`, `id+`, `id-`, `ecn`, `0+`, `flow`,
//! `seq-`, `ack+`, `ack-`, `uptr+`, `urgf+`, `pushf+`, `ts1-`, `ts2+`, `opt+`, `exws`, `bad`).
//! [`TcpSignature::raw_sig`] prints it the way p0f prints `raw_sig`.
//!
//! Input to [`parse_p0f_db`]: the text of a `p0f.fp` (operator data, e.g. Debian's
//! `/etc/p0f/p0f.fp`); errors name the line. [`P0fDb::match_tcp`] follows p0f 3.09's
//! `tcp_find_match`: the option layout and EOL padding must be equal; the quirks equal, except
//! that `df`/`id+` may disappear and `id-`/`ecn` may appear (a fuzzy match); the IP options
//! length, MSS, window scale and payload class as the signature says (`*` = any); the window as
//! a value, `%N`, `mss*N`/`mtu*N` (with p0f's multiplier detection) or `*`; a TTL above the
//! signature's or more than 35 below it makes the match fuzzy (or, for `ttl-` signatures, a
//! TTL above fails). The first exact specific match wins, then the first generic (`g:`) one,
//! then the first fuzzy one (never for user-land tools, class `!`).
//!
//! Limits: at most [`MAX_TCP_OPTS`] options are read (as p0f); the p0f file is read up to
//! [`MAX_P0F_SIGS`] signatures and lines of [`MAX_P0F_LINE`] bytes. Nothing here panics or
//! allocates to a size read from a packet.

use thiserror::Error;

use crate::Needed;

/// Options read from one TCP header (p0f's MAX_TCP_OPT).
pub const MAX_TCP_OPTS: usize = 24;
/// Largest TTL distance (hops) for an exact match (p0f's MAX_DIST).
pub const MAX_DIST: u8 = 35;
/// Signatures read from a p0f file (p0f 3.09 ships ~320).
pub const MAX_P0F_SIGS: usize = 10_000;
/// Longest line read from a p0f file.
pub const MAX_P0F_LINE: usize = 4096;

/// IPv4 header + TCP header without options (p0f's MIN_TCP4).
const MIN_TCP4: u32 = 40;
/// IPv6 header + TCP header without options (MIN_TCP6).
const MIN_TCP6: u32 = 60;

/// TCP option kinds. RFC 9293 §3.1, RFC 7323, RFC 2018.
pub mod opt {
    pub const EOL: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WS: u8 = 3;
    pub const SOK: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TS: u8 = 8;
}

/// Quirk bits (our own numbering; names as p0f writes them).
pub mod quirk {
    pub const DF: u32 = 1 << 0;
    pub const NZ_ID: u32 = 1 << 1;
    pub const ZERO_ID: u32 = 1 << 2;
    pub const ECN: u32 = 1 << 3;
    pub const NZ_MBZ: u32 = 1 << 4;
    pub const FLOW: u32 = 1 << 5;
    pub const ZERO_SEQ: u32 = 1 << 6;
    pub const NZ_ACK: u32 = 1 << 7;
    pub const ZERO_ACK: u32 = 1 << 8;
    pub const NZ_URG: u32 = 1 << 9;
    pub const URG: u32 = 1 << 10;
    pub const PUSH: u32 = 1 << 11;
    pub const OPT_ZERO_TS1: u32 = 1 << 12;
    pub const OPT_NZ_TS2: u32 = 1 << 13;
    pub const OPT_EOL_NZ: u32 = 1 << 14;
    pub const OPT_EXWS: u32 = 1 << 15;
    pub const OPT_BAD: u32 = 1 << 16;

    /// (bit, p0f name), in p0f's print order.
    pub const NAMES: [(u32, &str); 17] = [
        (DF, "df"),
        (NZ_ID, "id+"),
        (ZERO_ID, "id-"),
        (ECN, "ecn"),
        (NZ_MBZ, "0+"),
        (FLOW, "flow"),
        (ZERO_SEQ, "seq-"),
        (NZ_ACK, "ack+"),
        (ZERO_ACK, "ack-"),
        (NZ_URG, "uptr+"),
        (URG, "urgf+"),
        (PUSH, "pushf+"),
        (OPT_ZERO_TS1, "ts1-"),
        (OPT_NZ_TS2, "ts2+"),
        (OPT_EOL_NZ, "opt+"),
        (OPT_EXWS, "exws"),
        (OPT_BAD, "bad"),
    ];
}

/// Errors of [`parse_syn`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TcpFpError {
    #[error("packet incomplete: {needed:?} more bytes needed")]
    Incomplete { needed: Needed },
    #[error("invalid {layer} header: {reason}")]
    Invalid {
        layer: &'static str,
        reason: &'static str,
    },
    #[error("not a SYN or SYN+ACK (TCP flags 0x{flags:02x})")]
    NotSyn { flags: u8 },
}

/// A stack signature read from one SYN or SYN+ACK.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[must_use]
pub struct TcpSignature {
    /// 4 or 6.
    pub ip_version: u8,
    /// SYN+ACK (a server's answer) rather than SYN.
    pub syn_ack: bool,
    /// TTL / hop limit as seen.
    pub ttl: u8,
    /// IPv4 options length (0 for IPv6).
    pub ip_opt_len: u8,
    /// IP + TCP header bytes.
    pub tot_hdr: u16,
    pub window: u16,
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    /// Option kinds in order (EOL included, as p0f lays them out).
    pub options: Vec<u8>,
    /// Bytes after an EOL option.
    pub eol_pad: u8,
    /// [`quirk`] bits.
    pub quirks: u32,
    /// Own timestamp (TSval), when the option is present.
    pub ts1: Option<u32>,
    /// The segment carries payload.
    pub payload: bool,
    /// IPv4 TOS / IPv6 traffic class.
    pub tos: u8,
}

impl TcpSignature {
    /// The initial TTL the sender most likely used: 32, 64, 128 or 255 (p0f's guess).
    pub fn initial_ttl(&self) -> u8 {
        match self.ttl {
            0..=32 => 32,
            33..=64 => 64,
            65..=128 => 128,
            _ => 255,
        }
    }

    /// Hops between the sender and the sensor, from [`TcpSignature::initial_ttl`].
    pub fn distance(&self) -> u8 {
        self.initial_ttl() - self.ttl
    }

    /// The option layout as p0f writes it: `mss,nop,ws,nop,nop,ts,sok,eol+1`.
    pub fn olayout(&self) -> String {
        layout_string(&self.options, self.eol_pad)
    }

    /// Quirk names, comma-separated (`df,id+,ts1-`).
    pub fn quirks_string(&self) -> String {
        quirks_string(self.quirks)
    }

    /// p0f's `raw_sig`: `4:64+0:0:1460:mss*44,10:mss,sok,ts,nop,ws:df,id+:0`.
    pub fn raw_sig(&self) -> String {
        let mut s = String::new();
        self.write_raw_sig(&mut s);
        s
    }

    /// [`TcpSignature::raw_sig`] appended to `s` (a caller's reused buffer: nothing allocated
    /// once it has grown).
    pub fn write_raw_sig(&self, s: &mut String) {
        // As `write!` would, with the numbers pushed digit by digit (this runs per SYN).
        let num = |s: &mut String, v: u32| crate::tls::push_dec(s, v);
        let dist = self.distance();
        num(s, u32::from(self.ip_version));
        s.push(':');
        num(s, u32::from(self.ttl));
        s.push('+');
        if dist > MAX_DIST {
            s.push('?');
        } else {
            num(s, u32::from(dist));
        }
        s.push(':');
        num(s, u32::from(self.ip_opt_len));
        s.push(':');
        num(s, u32::from(self.mss.unwrap_or(0)));
        s.push(':');
        match detect_win_multi(self, None) {
            Some((m, true)) => {
                s.push_str("mtu*");
                num(s, m);
            }
            Some((m, false)) => {
                s.push_str("mss*");
                num(s, m);
            }
            None => num(s, u32::from(self.window)),
        }
        s.push(',');
        num(s, u32::from(self.wscale.unwrap_or(0)));
        s.push(':');
        write_layout(&self.options, self.eol_pad, s);
        s.push(':');
        write_quirks(self.quirks, s);
        s.push(':');
        s.push_str(if self.payload { "+" } else { "0" });
    }
}

fn layout_string(options: &[u8], eol_pad: u8) -> String {
    let mut s = String::new();
    write_layout(options, eol_pad, &mut s);
    s
}

fn write_layout(options: &[u8], eol_pad: u8, s: &mut String) {
    for (i, &k) in options.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        match k {
            opt::EOL => {
                s.push_str("eol+");
                crate::tls::push_dec(s, u32::from(eol_pad));
            }
            opt::NOP => s.push_str("nop"),
            opt::MSS => s.push_str("mss"),
            opt::WS => s.push_str("ws"),
            opt::SOK => s.push_str("sok"),
            opt::SACK => s.push_str("sack"),
            opt::TS => s.push_str("ts"),
            other => {
                s.push('?');
                crate::tls::push_dec(s, u32::from(other));
            }
        }
    }
}

fn quirks_string(q: u32) -> String {
    let mut s = String::new();
    write_quirks(q, &mut s);
    s
}

fn write_quirks(q: u32, s: &mut String) {
    for (i, (_, n)) in quirk::NAMES
        .iter()
        .filter(|(bit, _)| q & bit != 0)
        .enumerate()
    {
        if i > 0 {
            s.push(',');
        }
        s.push_str(n);
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads the stack signature of a SYN or SYN+ACK from an IP packet.
///
/// IPv6 extension headers are not walked: the next header must be TCP (6), as p0f requires.
/// Errors: a short packet ([`TcpFpError::Incomplete`]), a bad header ([`TcpFpError::Invalid`]),
/// or TCP flags other than SYN / SYN+ACK (plus ECE/CWR/PSH/URG) ([`TcpFpError::NotSyn`]).
pub fn parse_syn(ip: &[u8]) -> Result<TcpSignature, TcpFpError> {
    let mut sig = TcpSignature::default();
    parse_syn_into(ip, &mut sig)?;
    Ok(sig)
}

/// [`parse_syn`] into `sig`, reusing the allocation of its option list (a sensor reads one
/// signature per SYN it sees). On success every field of `sig` is the packet's, as
/// [`parse_syn`] gives it; on error `sig` is left as it was.
pub fn parse_syn_into(ip: &[u8], sig: &mut TcpSignature) -> Result<(), TcpFpError> {
    let short = |need: usize, have: usize| TcpFpError::Incomplete {
        needed: Needed::Size(need.saturating_sub(have)),
    };
    let Some(&first) = ip.first() else {
        return Err(short(20, 0));
    };
    let mut quirks = 0u32;
    let (ip_version, ttl, ip_opt_len, ip_hdr_len, tos, total_len);
    match first >> 4 {
        4 => {
            // RFC 791 §3.1: ver/ihl (0), tos (1), total length (2), id (4), flags/frag (6),
            // ttl (8), protocol (9), checksum (10), src (12), dst (16), options (20..).
            if ip.len() < 20 {
                return Err(short(20, ip.len()));
            }
            let ihl = usize::from(first & 0x0f) * 4;
            if ihl < 20 {
                return Err(TcpFpError::Invalid {
                    layer: "IPv4",
                    reason: "IHL under 5",
                });
            }
            if ip[9] != 6 {
                return Err(TcpFpError::Invalid {
                    layer: "IPv4",
                    reason: "protocol is not TCP",
                });
            }
            if be16(ip, 6) & 0x1fff != 0 {
                return Err(TcpFpError::Invalid {
                    layer: "IPv4",
                    reason: "fragment",
                });
            }
            ip_version = 4;
            tos = ip[1];
            ttl = ip[8];
            ip_hdr_len = ihl;
            ip_opt_len = (ihl - 20) as u8;
            total_len = usize::from(be16(ip, 2));
            let flags = ip[6];
            let id = be16(ip, 4);
            if tos & 0x03 != 0 {
                quirks |= quirk::ECN;
            }
            if flags & 0x80 != 0 {
                quirks |= quirk::NZ_MBZ;
            }
            if flags & 0x40 != 0 {
                quirks |= quirk::DF;
                if id != 0 {
                    quirks |= quirk::NZ_ID;
                }
            } else if id == 0 {
                quirks |= quirk::ZERO_ID;
            }
        }
        6 => {
            // RFC 8200 §3: ver/tc/flow (0..4), payload length (4), next header (6),
            // hop limit (7), src (8), dst (24).
            if ip.len() < 40 {
                return Err(short(40, ip.len()));
            }
            if ip[6] != 6 {
                return Err(TcpFpError::Invalid {
                    layer: "IPv6",
                    reason: "next header is not TCP",
                });
            }
            ip_version = 6;
            let tc = ((ip[0] & 0x0f) << 4) | (ip[1] >> 4);
            tos = tc;
            ttl = ip[7];
            ip_hdr_len = 40;
            ip_opt_len = 0;
            total_len = 40 + usize::from(be16(ip, 4));
            if tc & 0x03 != 0 {
                quirks |= quirk::ECN;
            }
            if be32(ip, 0) & 0x000f_ffff != 0 {
                quirks |= quirk::FLOW;
            }
        }
        _ => {
            return Err(TcpFpError::Invalid {
                layer: "IP",
                reason: "version is not 4 or 6",
            })
        }
    }
    let Some(tcp) = ip.get(ip_hdr_len..) else {
        return Err(short(ip_hdr_len + 20, ip.len()));
    };
    // RFC 9293 §3.1: ports (0..4), seq (4), ack (8), data offset (12), flags (13), window (14),
    // checksum (16), urgent pointer (18), options (20..).
    if tcp.len() < 20 {
        return Err(short(ip_hdr_len + 20, ip.len()));
    }
    let doff = usize::from(tcp[12] >> 4) * 4;
    if doff < 20 {
        return Err(TcpFpError::Invalid {
            layer: "TCP",
            reason: "data offset under 5",
        });
    }
    let Some(opts) = tcp.get(20..doff) else {
        return Err(short(ip_hdr_len + doff, ip.len()));
    };
    let flags = tcp[13];
    const FIN: u8 = 0x01;
    const SYN: u8 = 0x02;
    const RST: u8 = 0x04;
    const PSH: u8 = 0x08;
    const ACK: u8 = 0x10;
    const URG: u8 = 0x20;
    const ECE: u8 = 0x40;
    const CWR: u8 = 0x80;
    if flags & (SYN | FIN | RST) != SYN {
        return Err(TcpFpError::NotSyn { flags });
    }
    let syn_ack = flags & ACK != 0;
    if flags & (ECE | CWR) != 0 {
        quirks |= quirk::ECN;
    }
    if be32(tcp, 4) == 0 {
        quirks |= quirk::ZERO_SEQ;
    }
    let ack = be32(tcp, 8);
    if syn_ack {
        if ack == 0 {
            quirks |= quirk::ZERO_ACK;
        }
    } else if ack != 0 {
        quirks |= quirk::NZ_ACK;
    }
    if flags & URG != 0 {
        quirks |= quirk::URG;
    } else if be16(tcp, 18) != 0 {
        quirks |= quirk::NZ_URG;
    }
    if flags & PSH != 0 {
        quirks |= quirk::PUSH;
    }
    let mut options = std::mem::take(&mut sig.options);
    options.clear();
    *sig = TcpSignature {
        ip_version,
        syn_ack,
        ttl,
        ip_opt_len,
        tot_hdr: (ip_hdr_len + doff) as u16,
        window: be16(tcp, 14),
        mss: None,
        wscale: None,
        options,
        eol_pad: 0,
        quirks,
        ts1: None,
        payload: total_len > ip_hdr_len + doff && ip.len() > ip_hdr_len + doff,
        tos: tos >> 2,
    };
    read_options(opts, sig);
    Ok(())
}

/// p0f's option walk (process.c): records the layout, MSS, window scale, timestamps, EOL padding,
/// and the `ts1-`, `ts2+`, `opt+`, `exws` and `bad` quirks.
fn read_options(opts: &[u8], sig: &mut TcpSignature) {
    let mut i = 0usize;
    let end = opts.len();
    let bad = |sig: &mut TcpSignature| sig.quirks |= quirk::OPT_BAD;
    while i < end && sig.options.len() < MAX_TCP_OPTS {
        let kind = opts[i];
        sig.options.push(kind);
        i += 1;
        match kind {
            opt::EOL => {
                sig.eol_pad = (end - i).min(255) as u8;
                if opts[i..].iter().any(|&b| b != 0) {
                    sig.quirks |= quirk::OPT_EOL_NZ;
                }
                return;
            }
            opt::NOP => {}
            opt::MSS => {
                if i + 3 > end {
                    bad(sig);
                    return;
                }
                if opts[i] != 4 {
                    bad(sig);
                }
                sig.mss = Some(be16(opts, i + 1));
                i += 3;
            }
            opt::WS => {
                if i + 2 > end {
                    bad(sig);
                    return;
                }
                if opts[i] != 3 {
                    bad(sig);
                }
                let ws = opts[i + 1];
                sig.wscale = Some(ws);
                if ws > 14 {
                    sig.quirks |= quirk::OPT_EXWS;
                }
                i += 2;
            }
            opt::SOK => {
                if i + 1 > end {
                    bad(sig);
                    return;
                }
                if opts[i] != 2 {
                    bad(sig);
                }
                i += 1;
            }
            opt::TS => {
                if i + 9 > end {
                    bad(sig);
                    return;
                }
                if opts[i] != 10 {
                    bad(sig);
                }
                let ts1 = be32(opts, i + 1);
                sig.ts1 = Some(ts1);
                if ts1 == 0 {
                    sig.quirks |= quirk::OPT_ZERO_TS1;
                }
                if !sig.syn_ack && be32(opts, i + 5) != 0 {
                    sig.quirks |= quirk::OPT_NZ_TS2;
                }
                i += 9;
            }
            _ => {
                // SACK and unknown options: length byte, 2..=40 (SACK 10..=34).
                if i + 1 > end {
                    bad(sig);
                    return;
                }
                let len = usize::from(opts[i]);
                let ok = if kind == opt::SACK {
                    (10..=34).contains(&len)
                } else {
                    (2..=40).contains(&len)
                };
                if !ok {
                    bad(sig);
                    return;
                }
                i += len - 1;
            }
        }
    }
    if i > end {
        sig.quirks |= quirk::OPT_BAD;
    }
}

/// Whether the window is a multiple of the MSS (or of the MTU), p0f's `detect_win_multi`:
/// returns the multiplier and whether it is of the MTU.
fn detect_win_multi(sig: &TcpSignature, syn_mss: Option<u16>) -> Option<(u32, bool)> {
    let win = u32::from(sig.window);
    let mss = u32::from(sig.mss?);
    if win == 0 || mss < 100 {
        return None;
    }
    let div = |d: u32| (d != 0 && win % d == 0).then(|| win / d);
    if let Some(m) = div(mss) {
        return Some((m, false));
    }
    if sig.ts1.is_some_and(|t| t != 0) {
        if let Some(m) = div(mss - 12) {
            return Some((m, false));
        }
    }
    for d in [1500 - MIN_TCP4, 1500 - MIN_TCP4 - 12] {
        if let Some(m) = div(d) {
            return Some((m, false));
        }
    }
    if sig.ip_version == 6 {
        for d in [1500 - MIN_TCP6, 1500 - MIN_TCP6 - 12] {
            if let Some(m) = div(d) {
                return Some((m, false));
            }
        }
    }
    if let Some(m) = div(mss + MIN_TCP4) {
        return Some((m, true));
    }
    if let Some(m) = div(mss + u32::from(sig.tot_hdr)) {
        return Some((m, true));
    }
    if sig.ip_version == 6 {
        if let Some(m) = div(mss + MIN_TCP6) {
            return Some((m, true));
        }
    }
    if let Some(m) = div(1500) {
        return Some((m, true));
    }
    if let Some(peer) = syn_mss.map(u32::from) {
        if let Some(m) = div(peer) {
            return Some((m, false));
        }
        if peer > 12 {
            if let Some(m) = div(peer - 12) {
                return Some((m, false));
            }
        }
    }
    None
}

/// p0f label: `type:class:name:flavor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct P0fLabel {
    /// `g` (generic, last-resort) rather than `s` (specific).
    pub generic: bool,
    /// OS family (`win`, `unix`, ...) or `!` for applications/tools.
    pub class: String,
    /// `Linux`, `Windows`, `Mac OS X`, ...
    pub name: String,
    /// `3.11 and newer`, `XP`, `7 or 8`, ...
    pub flavor: String,
}

impl P0fLabel {
    /// Whether this names a user-land tool rather than an OS (class `!`).
    pub fn is_application(&self) -> bool {
        self.class == "!"
    }
}

/// Window size specification of a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WinSpec {
    Any,
    Value(u16),
    Mod(u16),
    Mss(u16),
    Mtu(u16),
}

/// One `sig =` line of a `[tcp:*]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct P0fTcpSig {
    /// Index into [`P0fDb::labels`].
    pub label: usize,
    /// 1-based line in the file.
    pub line: usize,
    /// `None` = `*` (either version).
    pub ip_version: Option<u8>,
    pub ittl: u8,
    /// `ttl-`: the TTL is randomised below this value.
    pub bad_ttl: bool,
    pub ip_opt_len: u8,
    pub mss: Option<u16>,
    pub win: WinSpec,
    pub wscale: Option<u8>,
    pub options: Vec<u8>,
    pub eol_pad: u8,
    pub quirks: u32,
    /// `None` = `*`; `Some(false)` = `0`, `Some(true)` = `+`.
    pub payload: Option<bool>,
}

/// The TCP part of a p0f v3 database.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct P0fDb {
    pub labels: Vec<P0fLabel>,
    /// `[tcp:request]`: SYN signatures, in file order.
    pub request: Vec<P0fTcpSig>,
    /// `[tcp:response]`: SYN+ACK signatures, in file order.
    pub response: Vec<P0fTcpSig>,
}

/// A p0f file that could not be read: the 1-based line and the problem.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {problem}")]
pub struct P0fError {
    pub line: usize,
    pub problem: String,
}

/// A match of a packet against the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct P0fMatch<'a> {
    pub label: &'a P0fLabel,
    /// The signature line that matched.
    pub line: usize,
    /// Quirks or TTL only nearly matched.
    pub fuzzy: bool,
    /// Hops, from the signature's initial TTL (or the guess when out of range).
    pub distance: u8,
}

impl P0fDb {
    /// Matches a signature against `[tcp:request]` (SYN) or `[tcp:response]` (SYN+ACK).
    /// `peer_syn_mss` is the MSS of the SYN this SYN+ACK answers, when known (p0f uses it to
    /// recognise windows sized from the peer's MSS).
    pub fn match_tcp(&self, sig: &TcpSignature, peer_syn_mss: Option<u16>) -> Option<P0fMatch<'_>> {
        let sigs = if sig.syn_ack {
            &self.response
        } else {
            &self.request
        };
        let multi = detect_win_multi(sig, peer_syn_mss);
        let mut generic: Option<&P0fTcpSig> = None;
        let mut fuzzy_match: Option<&P0fTcpSig> = None;
        for r in sigs {
            if r.options != sig.options {
                continue;
            }
            let mut fuzzy = false;
            let mut ref_quirks = r.quirks;
            if r.ip_version.is_none() {
                ref_quirks &= if sig.ip_version == 4 {
                    !quirk::FLOW
                } else {
                    !(quirk::DF | quirk::NZ_ID | quirk::ZERO_ID)
                };
            }
            if ref_quirks != sig.quirks {
                let deleted = (ref_quirks ^ sig.quirks) & ref_quirks;
                let added = (ref_quirks ^ sig.quirks) & sig.quirks;
                if fuzzy_match.is_some()
                    || deleted & !(quirk::DF | quirk::NZ_ID) != 0
                    || added & !(quirk::ZERO_ID | quirk::ECN) != 0
                {
                    continue;
                }
                fuzzy = true;
            }
            if r.eol_pad != sig.eol_pad || r.ip_opt_len != sig.ip_opt_len {
                continue;
            }
            if r.ip_version.is_some_and(|v| v != sig.ip_version) {
                continue;
            }
            if r.bad_ttl {
                if r.ittl < sig.ttl {
                    continue;
                }
            } else if r.ittl < sig.ttl || r.ittl - sig.ttl > MAX_DIST {
                fuzzy = true;
            }
            if r.mss.is_some() && r.mss != Some(sig.mss.unwrap_or(0)) {
                continue;
            }
            if r.wscale.is_some() && r.wscale != Some(sig.wscale.unwrap_or(0)) {
                continue;
            }
            if r.payload.is_some_and(|p| p != sig.payload) {
                continue;
            }
            let win_ok = match r.win {
                WinSpec::Any => true,
                WinSpec::Value(v) => v == sig.window,
                WinSpec::Mod(m) => m != 0 && sig.window.is_multiple_of(m),
                WinSpec::Mss(m) => multi == Some((u32::from(m), false)),
                WinSpec::Mtu(m) => multi == Some((u32::from(m), true)),
            };
            if !win_ok {
                continue;
            }
            let label = self.labels.get(r.label)?;
            if !fuzzy {
                if !label.generic {
                    return Some(P0fMatch {
                        label,
                        line: r.line,
                        fuzzy: false,
                        distance: r.ittl.saturating_sub(sig.ttl),
                    });
                }
                generic.get_or_insert(r);
            } else {
                fuzzy_match.get_or_insert(r);
            }
        }
        if let Some(r) = generic {
            return Some(P0fMatch {
                label: self.labels.get(r.label)?,
                line: r.line,
                fuzzy: false,
                distance: r.ittl.saturating_sub(sig.ttl),
            });
        }
        let r = fuzzy_match?;
        let label = self.labels.get(r.label)?;
        if label.is_application() {
            return None;
        }
        let distance = if r.ittl < sig.ttl || (!r.bad_ttl && r.ittl - sig.ttl > MAX_DIST) {
            sig.distance()
        } else {
            r.ittl - sig.ttl
        };
        Some(P0fMatch {
            label,
            line: r.line,
            fuzzy: true,
            distance,
        })
    }
}

fn num<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad {what} {s:?}"));
    }
    s.parse().map_err(|_| format!("{what} {s:?} out of range"))
}

/// `ver:ittl:olen:mss:wsize,scale:olayout:quirks:pclass`.
fn parse_tcp_sig(val: &str, label: usize, line: usize) -> Result<P0fTcpSig, String> {
    let f: Vec<&str> = val.split(':').collect();
    let [ver, ittl, olen, mss, win, olayout, quirks, pclass] = f.as_slice() else {
        return Err(format!(
            "expected 8 ':'-separated fields, found {}",
            f.len()
        ));
    };
    let ip_version = match *ver {
        "4" => Some(4),
        "6" => Some(6),
        "*" => None,
        other => return Err(format!("bad IP version {other:?}")),
    };
    let (ittl, bad_ttl) = if let Some(t) = ittl.strip_suffix('-') {
        (num::<u8>(t, "initial TTL")?, true)
    } else if let Some((t, add)) = ittl.split_once('+') {
        let t: u16 = num(t, "initial TTL")?;
        let add: u16 = if add == "?" {
            0
        } else {
            num(add, "TTL distance")?
        };
        let sum = u8::try_from(t + add).map_err(|_| "initial TTL over 255".to_string())?;
        (sum, false)
    } else {
        (num::<u8>(ittl, "initial TTL")?, false)
    };
    if ittl == 0 {
        return Err("initial TTL 0".into());
    }
    let ip_opt_len = num::<u8>(olen, "IP options length")?;
    let mss = if *mss == "*" {
        None
    } else {
        Some(num::<u16>(mss, "MSS")?)
    };
    let (w, scale) = win
        .split_once(',')
        .ok_or_else(|| format!("window {win:?} lacks ',scale'"))?;
    let win = if w == "*" {
        WinSpec::Any
    } else if let Some(m) = w.strip_prefix('%') {
        let m: u16 = num(m, "window modulo")?;
        if m < 2 {
            return Err("window modulo under 2".into());
        }
        WinSpec::Mod(m)
    } else if let Some(m) = w.strip_prefix("mss*") {
        WinSpec::Mss(num(m, "MSS multiplier")?)
    } else if let Some(m) = w.strip_prefix("mtu*") {
        WinSpec::Mtu(num(m, "MTU multiplier")?)
    } else {
        WinSpec::Value(num(w, "window")?)
    };
    let wscale = if scale == "*" {
        None
    } else {
        Some(num::<u8>(scale, "window scale")?)
    };
    let mut options = Vec::new();
    let mut eol_pad = 0u8;
    if !olayout.is_empty() {
        let items: Vec<&str> = olayout.split(',').collect();
        for (i, o) in items.iter().enumerate() {
            if options.len() >= MAX_TCP_OPTS {
                return Err("too many TCP options".into());
            }
            let kind = match *o {
                "nop" => opt::NOP,
                "mss" => opt::MSS,
                "ws" => opt::WS,
                "sok" => opt::SOK,
                "sack" => opt::SACK,
                "ts" => opt::TS,
                o if o.starts_with("eol+") => {
                    if i + 1 != items.len() {
                        return Err("EOL must be the last option".into());
                    }
                    eol_pad = num(&o[4..], "EOL padding")?;
                    opt::EOL
                }
                o if o.starts_with('?') => num(&o[1..], "option number")?,
                o => return Err(format!("unknown TCP option {o:?}")),
            };
            options.push(kind);
        }
    }
    let mut q = 0u32;
    if !quirks.is_empty() {
        for name in quirks.split(',') {
            let bit = quirk::NAMES
                .iter()
                .find(|(_, n)| *n == name)
                .map(|(b, _)| *b)
                .ok_or_else(|| format!("unknown quirk {name:?}"))?;
            let v4_only = quirk::DF | quirk::NZ_ID | quirk::ZERO_ID | quirk::NZ_MBZ;
            if ip_version == Some(6) && bit & v4_only != 0 {
                return Err(format!("quirk {name:?} is not valid for IPv6"));
            }
            if ip_version == Some(4) && bit == quirk::FLOW {
                return Err("quirk \"flow\" is not valid for IPv4".into());
            }
            q |= bit;
        }
    }
    let payload = match *pclass {
        "*" => None,
        "0" => Some(false),
        "+" => Some(true),
        other => return Err(format!("bad payload class {other:?}")),
    };
    Ok(P0fTcpSig {
        label,
        line,
        ip_version,
        ittl,
        bad_ttl,
        ip_opt_len,
        mss,
        win,
        wscale,
        options,
        eol_pad,
        quirks: q,
        payload,
    })
}

/// Reads the TCP sections of a p0f v3 `p0f.fp`. Other sections (`[mtu]`, `[http:*]`) are
/// skipped; `classes`, `ua_os` and `sys` lines are accepted and ignored.
pub fn parse_p0f_db(text: &str) -> Result<P0fDb, P0fError> {
    let mut db = P0fDb::default();
    // Some((is_tcp, is_response)) inside a section.
    let mut section: Option<(bool, bool)> = None;
    let mut label: Option<usize> = None;
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        let err = |problem: String| P0fError { line, problem };
        if raw.len() > MAX_P0F_LINE {
            return Err(err(format!("line longer than {MAX_P0F_LINE} bytes")));
        }
        let l = raw.trim();
        if l.is_empty() || l.starts_with(';') {
            continue;
        }
        if let Some(name) = l.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = Some(match name {
                "tcp:request" => (true, false),
                "tcp:response" => (true, true),
                _ => (false, false),
            });
            label = None;
            continue;
        }
        let Some((key, val)) = l.split_once('=') else {
            return Err(err(format!("expected 'key = value', found {l:?}")));
        };
        let (key, val) = (key.trim(), val.trim());
        let Some((is_tcp, is_response)) = section else {
            if key == "classes" {
                continue;
            }
            return Err(err(format!("{key:?} outside a section")));
        };
        if !is_tcp {
            continue;
        }
        match key {
            "label" => {
                let parts: Vec<&str> = val.splitn(4, ':').collect();
                let [t, class, name, flavor] = parts.as_slice() else {
                    return Err(err(format!("label {val:?} is not type:class:name:flavor")));
                };
                let generic = match *t {
                    "s" => false,
                    "g" => true,
                    other => return Err(err(format!("label type {other:?} is not s or g"))),
                };
                db.labels.push(P0fLabel {
                    generic,
                    class: class.to_string(),
                    name: name.to_string(),
                    flavor: flavor.to_string(),
                });
                label = Some(db.labels.len() - 1);
            }
            "sys" => {}
            "sig" => {
                let Some(lab) = label else {
                    return Err(err("sig before any label".into()));
                };
                if db.request.len() + db.response.len() >= MAX_P0F_SIGS {
                    return Err(err(format!("more than {MAX_P0F_SIGS} signatures")));
                }
                let sig = parse_tcp_sig(val, lab, line).map_err(err)?;
                if is_response {
                    db.response.push(sig);
                } else {
                    db.request.push(sig);
                }
            }
            other => return Err(err(format!("unknown key {other:?}"))),
        }
    }
    Ok(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_sig_pushed_by_hand_equals_the_formatted_one() {
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for n in 0..5000 {
            let r = next();
            let sig = TcpSignature {
                ip_version: if r & 1 == 0 { 4 } else { 6 },
                syn_ack: r & 2 != 0,
                ttl: (r >> 8) as u8,
                ip_opt_len: (r >> 16) as u8 % 44,
                tot_hdr: 40 + (r >> 24) as u16 % 60,
                window: if n % 3 == 0 {
                    1460 * ((r >> 32) as u16 % 44)
                } else {
                    (r >> 32) as u16
                },
                mss: (r & 4 != 0).then_some((r >> 48) as u16 % 9000),
                wscale: (r & 8 != 0).then_some((r >> 40) as u8),
                options: (0..(r >> 56) as usize % 12)
                    .map(|i| (next() % 12) as u8 + (i as u8 & 0x80))
                    .collect(),
                eol_pad: (r >> 4) as u8,
                quirks: next() as u32,
                ts1: (r & 16 != 0).then_some((r >> 20) as u32 % 3),
                payload: r & 32 != 0,
                tos: 0,
            };
            let mut s = String::new();
            sig.write_raw_sig(&mut s);
            assert_eq!(s, raw_sig_by_format(&sig));
        }
    }

    /// `raw_sig` as it was written with `format!` (before `write_raw_sig`).
    fn raw_sig_by_format(g: &TcpSignature) -> String {
        let dist = g.distance();
        let ttl = if dist > MAX_DIST {
            format!("{}+?", g.ttl)
        } else {
            format!("{}+{}", g.ttl, dist)
        };
        let win = match detect_win_multi(g, None) {
            Some((m, true)) => format!("mtu*{m}"),
            Some((m, false)) => format!("mss*{m}"),
            None => g.window.to_string(),
        };
        let layout: Vec<String> = g
            .options
            .iter()
            .map(|&k| match k {
                opt::EOL => format!("eol+{}", g.eol_pad),
                opt::NOP => "nop".into(),
                opt::MSS => "mss".into(),
                opt::WS => "ws".into(),
                opt::SOK => "sok".into(),
                opt::SACK => "sack".into(),
                opt::TS => "ts".into(),
                other => format!("?{other}"),
            })
            .collect();
        let quirks: Vec<&str> = quirk::NAMES
            .iter()
            .filter(|(bit, _)| g.quirks & bit != 0)
            .map(|(_, n)| *n)
            .collect();
        format!(
            "{}:{}:{}:{}:{},{}:{}:{}:{}",
            g.ip_version,
            ttl,
            g.ip_opt_len,
            g.mss.unwrap_or(0),
            win,
            g.wscale.unwrap_or(0),
            layout.join(","),
            quirks.join(","),
            if g.payload { "+" } else { "0" }
        )
    }

    proptest::proptest! {
        #[test]
        fn raw_sig_written_equals_formatted(
            v6 in proptest::bool::ANY,
            ttl in proptest::num::u8::ANY,
            ip_opt_len in 0u8..40,
            window in proptest::sample::select(vec![0u16, 1460, 2920, 5840, 29200, 64240, 65535, 8192, 1]),
            mss in proptest::option::of(proptest::sample::select(vec![0u16, 1460, 1440, 536, 8960])),
            wscale in proptest::option::of(0u8..16),
            options in proptest::collection::vec(proptest::num::u8::ANY, 0..12),
            eol_pad in proptest::num::u8::ANY,
            quirks in proptest::num::u32::ANY,
            payload in proptest::bool::ANY,
        ) {
            let g = TcpSignature {
                ip_version: if v6 { 6 } else { 4 },
                syn_ack: false,
                ttl,
                ip_opt_len,
                tot_hdr: 40,
                window,
                mss,
                wscale,
                options,
                eol_pad,
                quirks,
                ts1: None,
                payload,
                tos: 0,
            };
            proptest::prop_assert_eq!(g.raw_sig(), raw_sig_by_format(&g));
            let mut s = String::from("x");
            g.write_raw_sig(&mut s);
            proptest::prop_assert_eq!(&s[1..], raw_sig_by_format(&g));
        }
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // IP packets (Ethernet header removed) of SYNs and SYN+ACKs from the captures. The oracle is
    // `p0f -r <capture>` (p0f 3.09b, Debian package, its /etc/p0f/p0f.fp): the raw_sig and os
    // lines quoted with each; tshark agrees on the fields (-e ip.ttl -e tcp.window_size_value
    // -e tcp.options.mss_val -e tcp.options.wscale.shift -e tcp.option_kind).

    /// pcaps/corpus/legacy/arkime_http-basicauth.pcap frame 1, 10.0.0.2:1087 -> 10.0.0.1:2082
    /// SYN. p0f: raw_sig = 4:126+2:0:1332:65535,3:mss,nop,ws,nop,nop,ts,nop,nop,sok:df,id+,ts1-:0
    /// os = ???
    const XP_FIREFOX_SYN: &str = "450000407bcb40007e06f3910a0000020a000001043f082204611bea00000000b002ffff7c77000002040534010303030101080a000000000000000001010402";
    /// pcaps/dicom/echo.pcap frame 3, 10.77.1.21:42192 -> 10.77.1.10:104 SYN (Linux, dcmtk
    /// echoscu). p0f: raw_sig = 4:64+0:0:1460:mss*44,10:mss,sok,ts,nop,ws:df,id+:0
    /// os = Linux 2.2.x-3.x, params = generic
    const LINUX_SYN: &str = "4500003c513940004006d2ca0a4d01150a4d010aa4d00068d98c2c9c00000000a002faf00d930000020405b40402080aac0bd153000000000103030a";
    /// pcaps/corpus/generic/ndpi_443-curl.pcap frame 1, 192.168.1.13:55523 -> :443 SYN (macOS).
    /// p0f: raw_sig = 4:64+0:0:1460:65535,5:mss,nop,ws,nop,nop,ts,sok,eol+1:df:0 os = Mac OS X,
    /// params = generic fuzzy
    const MAC_SYN: &str = "450000400000400040060142c0a8010db23ec582d8e301bbcc77769500000000b002ffff7bc10000020405b4010303050101080a1e6245b70000000004020000";
    /// arkime_http-basicauth.pcap frame 2, the SYN+ACK (Ethernet padding after the IP packet).
    /// p0f: raw_sig = 4:48+16:0:1460:mss*10,0:mss:df:0 os = Linux 3.x
    const LINUX_SYNACK: &str = "4500002c000040003006bd710a0000010a0000020822043fd1bb2ad004611beb60123908a87a0000020405b40000";
    /// pcaps/corpus/legacy/ndpi_telnet.pcap frame 1 SYN (TOS 0x10). p0f: raw_sig =
    /// 4:64+0:0:1460:mss*22,0:mss,sok,ts,nop,ws:df,id+:0 os = Linux 2.2.x, params = tos:0x04
    const TELNET_SYN: &str = "4510003c463c40004006731cc0a80002c0a80001060e001799c5a0ec00000000a0027d78e0a30000020405b40402080a009c27240000000001030300";
    /// ndpi_telnet.pcap frame 2 SYN+ACK (OpenBSD). p0f: raw_sig =
    /// 4:64+0:0:1448:mss*12,0:mss,nop,ws,nop,nop,ts::0 os = ???
    const OPENBSD_SYNACK: &str = "4500003c51e300004006a785c0a80001c0a800020017060e17f1633d99c5a0eda01243e0fbb70000020405a8010303000101080a0025a62c009c2724";

    fn sig(h: &str) -> TcpSignature {
        parse_syn(&hex(h)).unwrap()
    }

    #[test]
    fn raw_sigs_equal_p0f() {
        let cases = [
            (
                XP_FIREFOX_SYN,
                "4:126+2:0:1332:65535,3:mss,nop,ws,nop,nop,ts,nop,nop,sok:df,id+,ts1-:0",
            ),
            (
                LINUX_SYN,
                "4:64+0:0:1460:mss*44,10:mss,sok,ts,nop,ws:df,id+:0",
            ),
            (
                MAC_SYN,
                "4:64+0:0:1460:65535,5:mss,nop,ws,nop,nop,ts,sok,eol+1:df:0",
            ),
            (LINUX_SYNACK, "4:48+16:0:1460:mss*10,0:mss:df:0"),
            (
                TELNET_SYN,
                "4:64+0:0:1460:mss*22,0:mss,sok,ts,nop,ws:df,id+:0",
            ),
            (
                OPENBSD_SYNACK,
                "4:64+0:0:1448:mss*12,0:mss,nop,ws,nop,nop,ts::0",
            ),
        ];
        for (h, want) in cases {
            assert_eq!(sig(h).raw_sig(), want);
        }
    }

    #[test]
    fn fields() {
        let s = sig(XP_FIREFOX_SYN);
        assert_eq!((s.ttl, s.initial_ttl(), s.distance()), (126, 128, 2));
        assert_eq!((s.window, s.mss, s.wscale), (65535, Some(1332), Some(3)));
        assert_eq!(s.olayout(), "mss,nop,ws,nop,nop,ts,nop,nop,sok");
        assert_eq!(s.quirks_string(), "df,id+,ts1-");
        assert_eq!(s.ts1, Some(0));
        assert!(!s.syn_ack && !s.payload);
        let s = sig(LINUX_SYNACK);
        assert!(s.syn_ack);
        assert!(!s.payload, "Ethernet padding is not payload");
        assert_eq!(sig(TELNET_SYN).tos, 4);
        assert_eq!(sig(MAC_SYN).eol_pad, 1);
    }

    #[test]
    fn errors_and_prefixes() {
        let b = hex(LINUX_SYN);
        for n in 0..b.len() {
            assert!(parse_syn(&b[..n]).is_err());
        }
        // The final ACK of the handshake is not a SYN.
        let mut ack = b.clone();
        ack[33] = 0x10;
        assert_eq!(parse_syn(&ack), Err(TcpFpError::NotSyn { flags: 0x10 }));
        let mut v = b.clone();
        v[0] = 0x55;
        assert!(matches!(parse_syn(&v), Err(TcpFpError::Invalid { .. })));
        // Garbage options: an unknown option with length 0 sets 'bad' and stops.
        let mut g = b.clone();
        g[40] = 0x99;
        g[41] = 0;
        assert_ne!(sig_of(&g).quirks & quirk::OPT_BAD, 0);
    }

    fn sig_of(b: &[u8]) -> TcpSignature {
        parse_syn(b).unwrap()
    }

    #[test]
    fn ipv6_syn() {
        // An IPv6 SYN (flow label set) built from LINUX_SYN's TCP header.
        let tcp = &hex(LINUX_SYN)[20..];
        let mut p = hex("6000abcd 0028 06 40");
        p.extend([0u8; 32]);
        p.extend(tcp);
        let s = parse_syn(&p).unwrap();
        assert_eq!(s.ip_version, 6);
        assert_eq!(s.quirks_string(), "flow");
        assert_eq!(s.tot_hdr, 80);
    }

    const MINI_DB: &str = "\
; a p0f.fp excerpt in p0f 3.09's format
classes = win,unix,other

[mtu]
label = Ethernet or modem
sig   = 1500

[tcp:request]
label = s:unix:Linux:3.11 and newer
sig   = *:64:0:*:mss*20,10:mss,sok,ts,nop,ws:df,id+:0
sig   = *:64:0:*:mss*20,7:mss,sok,ts,nop,ws:df,id+:0

label = g:unix:Linux:2.2.x-3.x
sig   = *:64:0:*:*,*:mss,sok,ts,nop,ws:df,id+:0

label = s:win:Windows:7 or 8
sig   = *:128:0:*:8192,8:mss,nop,ws,nop,nop,sok:df,id+:0

label = s:!:NMap:SYN scan
sys   = @unix,@win
sig   = *:64-:0:1460:1024,0:mss::0

[tcp:response]
label = s:unix:Linux:3.x
sig   = *:64:0:*:mss*10,0:mss:df:0

[http:request]
ua_os = Linux,Windows
label = s:!:Firefox:2.x
sys   = Windows,@unix
sig   = *:Host,User-Agent:Accept-Charset:Firefox/
";

    #[test]
    fn p0f_matching_rules() {
        let db = parse_p0f_db(MINI_DB).unwrap();
        assert_eq!((db.request.len(), db.response.len()), (5, 1));
        // mss*44 is not mss*20: only the generic Linux signature matches.
        let s = sig(LINUX_SYN);
        let m = db.match_tcp(&s, None).unwrap();
        assert_eq!(m.label.name, "Linux");
        assert_eq!(m.label.flavor, "2.2.x-3.x");
        assert!(m.label.generic && !m.fuzzy);
        assert_eq!(m.line, 14);
        // Same packet with window 20*1460 and ws 7: the specific signature (second sig line).
        let mut s2 = s.clone();
        s2.window = 29200;
        s2.wscale = Some(7);
        let m = db.match_tcp(&s2, None).unwrap();
        assert_eq!((m.label.flavor.as_str(), m.line), ("3.11 and newer", 11));
        // 'df' disappearing is a fuzzy match; 'id+' alone without df.
        let mut f = s2.clone();
        f.quirks &= !quirk::DF;
        let m = db.match_tcp(&f, None).unwrap();
        assert!(m.fuzzy);
        // A quirk appearing that is not id-/ecn: no match.
        let mut n = s2.clone();
        n.quirks |= quirk::OPT_ZERO_TS1;
        assert!(db.match_tcp(&n, None).is_none());
        // TTL above the signature's initial TTL: fuzzy.
        let mut t = s2.clone();
        t.ttl = 100;
        assert!(db.match_tcp(&t, None).unwrap().fuzzy);
        // SYN+ACK side.
        let m = db.match_tcp(&sig(LINUX_SYNACK), None).unwrap();
        assert_eq!(m.label.flavor, "3.x");
        assert_eq!(m.distance, 16);
        // No signature for this layout.
        assert!(db.match_tcp(&sig(XP_FIREFOX_SYN), None).is_none());
    }

    #[test]
    fn p0f_errors_name_the_line() {
        let e = parse_p0f_db(
            "[tcp:request]\nlabel = s:unix:Linux:x\nsig = 4:64:0:*:*,*:mss,bogus::0\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.problem.contains("bogus"), "{e}");
        let e = parse_p0f_db("[tcp:request]\nsig = *:64:0:*:*,*:mss::0\n").unwrap_err();
        assert_eq!((e.line, e.problem.as_str()), (2, "sig before any label"));
        let e = parse_p0f_db("[tcp:request]\nlabel = x:unix:L:1\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse_p0f_db("[tcp:request]\nlabel = s:unix:L:1\nsig = 6:64:0:*:*,*:mss:df:0\n")
            .unwrap_err();
        assert!(e.problem.contains("IPv6"));
    }

    /// Debian's /etc/p0f/p0f.fp (package p0f, LGPL), read only when installed; the expected
    /// labels are what `p0f -r` printed for the same captures.
    #[test]
    fn debian_p0f_fp_if_installed() {
        let Ok(text) = std::fs::read_to_string("/etc/p0f/p0f.fp") else {
            return;
        };
        let db = parse_p0f_db(&text).unwrap();
        assert!(db.request.len() > 50 && db.response.len() > 20);
        let m = db.match_tcp(&sig(LINUX_SYN), None).unwrap();
        assert_eq!(
            (m.label.name.as_str(), m.label.flavor.as_str()),
            ("Linux", "2.2.x-3.x")
        );
        assert!(m.label.generic && !m.fuzzy);
        let m = db.match_tcp(&sig(MAC_SYN), None).unwrap();
        assert_eq!(m.label.name, "Mac OS X");
        assert!(m.label.generic && m.fuzzy);
        let m = db.match_tcp(&sig(LINUX_SYNACK), None).unwrap();
        assert_eq!(
            (m.label.name.as_str(), m.label.flavor.as_str()),
            ("Linux", "3.x")
        );
        let m = db.match_tcp(&sig(TELNET_SYN), None).unwrap();
        assert_eq!(
            (m.label.name.as_str(), m.label.flavor.as_str()),
            ("Linux", "2.2.x")
        );
        assert!(db.match_tcp(&sig(XP_FIREFOX_SYN), None).is_none());
        assert!(db.match_tcp(&sig(OPENBSD_SYNACK), None).is_none());
    }
}
