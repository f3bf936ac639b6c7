//! MLLP framing (HL7 v2 Minimal Lower Layer Protocol), streaming, and bare `MSH` streams.
//!
//! MLLP (HL7 v2.5.1 Implementation Guide: Transport Specification, MLLP Release 2, section 2.1)
//! wraps each message as `<SB> message <EB><CR>`: start block 0x0B, end block 0x1C, carriage
//! return 0x0D. Some senders write HL7 straight onto TCP without MLLP; there a message is known
//! only by its `MSH` segment at the start of a line and ends where the next one begins.
//!
//! [`Deframer`] is fed a direction's bytes in order, in chunks of any size, and reports through a
//! callback where messages start and end and which bytes belong to the current message. It
//! never buffers message bytes (the caller decides what to keep and where to stop: the
//! message-size cap lives with the caller); its own state is a few bytes.
//!
//! Recoverable failures it reports, never panicking on any input:
//! - a start block inside a frame: the frame lost its end block ([`End::Unterminated`]), and a
//!   new frame starts there (the resynchronisation point);
//! - bytes outside a frame ([`Event::Outside`], once per run of such bytes);
//! - a gap ([`Deframer::gap`]): the current message ends ([`End::Gap`]) and the bytes that follow
//!   are skipped, unreported, up to the next start block or the next `MSH` at a line start.
//!
//! An end block not followed by a carriage return still ends the message (tolerated).

/// MLLP start block (VT).
pub const START_BLOCK: u8 = 0x0B;
/// MLLP end block (FS).
pub const END_BLOCK: u8 = 0x1C;
/// Carriage return: the byte after the end block, and HL7's segment terminator.
pub const CR: u8 = 0x0D;
/// Line feed: not an HL7 segment terminator, but some senders use it (or CR LF).
pub const LF: u8 = 0x0A;

/// How a message was delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Inside an MLLP frame.
    Mllp,
    /// HL7 straight on TCP: from an `MSH` at a line start to the next one.
    Bare,
}

impl Framing {
    pub fn as_str(self) -> &'static str {
        match self {
            Framing::Mllp => "mllp",
            Framing::Bare => "bare",
        }
    }
}

/// Why a message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The MLLP end block (0x1C).
    EndBlock,
    /// A start block arrived inside an MLLP frame: its end block is missing.
    Unterminated,
    /// Bare: the next message (an `MSH` at a line start, or a start block) begins.
    NextMessage,
    /// [`Deframer::flush`]: nothing more will come for this message (the peer answered, or the
    /// flow ended). Normal for a bare message; an MLLP frame that ends this way lacked its end block.
    Flushed,
    /// [`Deframer::gap`]: bytes were lost in the middle of the message.
    Gap,
}

/// What the deframer found, in stream order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A message starts.
    Start(Framing),
    /// The next bytes of the current message (the MLLP blocks excluded).
    Data(&'a [u8]),
    /// The current message ended.
    End(End),
    /// A run of bytes outside any message starts here (reported once per run).
    Outside,
}

/// Where the deframer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between messages.
    Idle,
    /// Inside an MLLP frame.
    Frame,
    /// Just after an end block: a carriage return is expected.
    AfterEnd,
    /// Inside a bare message.
    Bare,
    /// After a gap: skipping to a start block or a line-start `MSH`.
    Resync,
}

/// Whether `b` can be a field separator (MSH-1) after `MSH`: printable ASCII that is not a
/// letter or digit (HL7 v2.5.1 2.5.4 recommends `|`; any such character is allowed).
pub fn is_field_separator(b: u8) -> bool {
    b.is_ascii_graphic() && !b.is_ascii_alphanumeric()
}

/// Streaming MLLP / bare-HL7 deframer for one direction of a connection. See the module docs.
#[derive(Debug, Clone)]
pub struct Deframer {
    state: State,
    /// The last byte was a segment terminator (or the stream/resync start): an `MSH` may begin.
    line_start: bool,
    /// Bytes of `MSH` held back at a line start until the byte after them decides.
    held: u8,
    /// Inside a run of outside bytes already reported.
    in_outside_run: bool,
}

impl Default for Deframer {
    fn default() -> Self {
        Deframer::new()
    }
}

const MSH: &[u8; 3] = b"MSH";

impl Deframer {
    pub fn new() -> Deframer {
        Deframer {
            state: State::Idle,
            line_start: true,
            held: 0,
            in_outside_run: false,
        }
    }

    /// A message is under way (started and not ended).
    pub fn in_message(&self) -> bool {
        matches!(self.state, State::Frame | State::Bare)
    }

    /// The message under way, if any, is inside an MLLP frame.
    pub fn in_frame(&self) -> bool {
        self.state == State::Frame
    }

    /// Feeds the next in-order bytes; `f` receives what they contain, in order. The message
    /// bytes reported are slices of `data` (or of a constant), so a caller may hold on to them
    /// until `data` goes: a message that arrives whole in one chunk needs no copy.
    pub fn feed<'d, F: FnMut(Event<'d>)>(&mut self, data: &'d [u8], f: &mut F) {
        let mut i = 0;
        while i < data.len() {
            // A line start that may begin "MSH": hold back up to three bytes until the next
            // one decides whether a bare message starts here.
            if self.line_start && matches!(self.state, State::Idle | State::Bare | State::Resync) {
                let b = data[i];
                let h = self.held as usize;
                if h < 3 {
                    if b == MSH[h] {
                        self.held += 1;
                        i += 1;
                        continue;
                    }
                } else if is_field_separator(b) {
                    self.held = 0;
                    self.line_start = false;
                    if self.state == State::Bare {
                        f(Event::End(End::NextMessage));
                    }
                    self.in_outside_run = false;
                    self.state = State::Bare;
                    f(Event::Start(Framing::Bare));
                    f(Event::Data(MSH));
                    // The separator is ordinary message data (below).
                    continue;
                }
                // Not "MSH" + separator: the held bytes are whatever the state makes of them,
                // then `b` is looked at afresh (it may itself start a line or a frame).
                self.line_start = false;
                self.release_held(f);
                continue;
            }
            match self.state {
                State::Frame => {
                    let rest = &data[i..];
                    match memchr::memchr2(START_BLOCK, END_BLOCK, rest) {
                        None => {
                            f(Event::Data(rest));
                            i = data.len();
                        }
                        Some(k) => {
                            if k > 0 {
                                f(Event::Data(&rest[..k]));
                            }
                            i += k + 1;
                            if rest[k] == END_BLOCK {
                                f(Event::End(End::EndBlock));
                                self.state = State::AfterEnd;
                            } else {
                                f(Event::End(End::Unterminated));
                                f(Event::Start(Framing::Mllp));
                            }
                        }
                    }
                }
                State::Bare => {
                    let rest = &data[i..];
                    match rest
                        .iter()
                        .position(|&b| matches!(b, START_BLOCK | END_BLOCK | CR | LF))
                    {
                        None => {
                            f(Event::Data(rest));
                            i = data.len();
                        }
                        Some(k) => {
                            let b = rest[k];
                            if b == CR || b == LF {
                                f(Event::Data(&rest[..=k]));
                                self.line_start = true;
                            } else {
                                if k > 0 {
                                    f(Event::Data(&rest[..k]));
                                }
                                if b == END_BLOCK {
                                    f(Event::End(End::EndBlock));
                                    self.state = State::AfterEnd;
                                } else {
                                    f(Event::End(End::NextMessage));
                                    f(Event::Start(Framing::Mllp));
                                    self.state = State::Frame;
                                }
                            }
                            i += k + 1;
                        }
                    }
                }
                State::AfterEnd => {
                    self.state = State::Idle;
                    self.line_start = true;
                    self.in_outside_run = false;
                    if data[i] == CR {
                        i += 1;
                    }
                }
                State::Idle | State::Resync => {
                    let b = data[i];
                    i += 1;
                    if b == START_BLOCK {
                        self.state = State::Frame;
                        self.in_outside_run = false;
                        f(Event::Start(Framing::Mllp));
                    } else {
                        if self.state == State::Idle && !self.in_outside_run {
                            self.in_outside_run = true;
                            f(Event::Outside);
                        }
                        self.line_start = b == CR || b == LF || b == END_BLOCK;
                    }
                }
            }
        }
    }

    /// Held `MSH` prefix bytes that turned out not to start a message.
    fn release_held<'d, F: FnMut(Event<'d>)>(&mut self, f: &mut F) {
        let h = std::mem::take(&mut self.held) as usize;
        if h == 0 {
            return;
        }
        match self.state {
            State::Bare => f(Event::Data(&MSH[..h])),
            State::Idle if !self.in_outside_run => {
                self.in_outside_run = true;
                f(Event::Outside);
            }
            _ => {}
        }
    }

    /// Nothing more will follow the current message for now (the peer answered, the flow
    /// ended): ends it with [`End::Flushed`]. Bytes held at a line start are released first.
    pub fn flush<'d, F: FnMut(Event<'d>)>(&mut self, f: &mut F) {
        if self.held > 0 {
            self.release_held(f);
        }
        if self.in_message() {
            f(Event::End(End::Flushed));
            self.state = State::Idle;
            self.in_outside_run = false;
        }
        self.line_start = true;
    }

    /// Bytes were lost: the current message ends with [`End::Gap`] and the deframer skips to the
    /// next start block or line-start `MSH`.
    pub fn gap<'d, F: FnMut(Event<'d>)>(&mut self, f: &mut F) {
        if self.in_message() {
            if self.held > 0 && self.state == State::Bare {
                self.release_held(f);
            }
            f(Event::End(End::Gap));
        }
        self.held = 0;
        self.state = State::Resync;
        self.line_start = true;
        self.in_outside_run = false;
    }
}

/// Whether the first bytes of a direction start HL7: an MLLP start block followed by `MSH` and a
/// field separator, or a bare `MSH` and a field separator. In an MLLP frame a batch may come
/// first: `FHS` (file header) or `BHS` (batch header) and a field separator (HL7 v2.5.1 2.10.3,
/// the batch protocol; Wireshark's HL7 dissector reads such a frame too). `Some(true)` /
/// `Some(false)` once decided, `None` while the bytes so far are a prefix of one of them (at most
/// 5 bytes decide).
pub fn probe(first: &[u8]) -> Option<bool> {
    let (body, heads): (&[u8], &[&[u8; 3]]) = match first.first() {
        None => return None,
        Some(&START_BLOCK) => (&first[1..], &[MSH, b"FHS", b"BHS"]),
        Some(_) => (first, &[MSH]),
    };
    let n = body.len().min(3);
    if !heads.iter().any(|h| h[..n] == body[..n]) {
        return Some(false);
    }
    body.get(3).map(|&b| is_field_separator(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the deframer over `chunks` (then flush if asked); returns the events with the
    /// message bytes concatenated per message.
    #[derive(Debug, PartialEq, Eq, Clone)]
    enum Ev {
        Start(Framing),
        Msg(Vec<u8>, End),
        Outside,
    }

    fn run(chunks: &[&[u8]], flush: bool) -> Vec<Ev> {
        let mut d = Deframer::new();
        let mut out = Vec::new();
        let mut cur: Option<Vec<u8>> = None;
        let mut f = |e: Event<'_>| match e {
            Event::Start(k) => {
                assert!(cur.is_none(), "start inside a message");
                cur = Some(Vec::new());
                out.push(Ev::Start(k));
            }
            Event::Data(b) => cur
                .as_mut()
                .expect("data outside a message")
                .extend_from_slice(b),
            Event::End(why) => out.push(Ev::Msg(cur.take().expect("end without start"), why)),
            Event::Outside => {
                assert!(cur.is_none());
                out.push(Ev::Outside)
            }
        };
        for c in chunks {
            d.feed(c, &mut f);
        }
        if flush {
            d.flush(&mut f);
        }
        out
    }

    fn bytewise(all: &[u8], flush: bool) -> Vec<Ev> {
        let chunks: Vec<&[u8]> = all.chunks(1).collect();
        run(&chunks, flush)
    }

    // pcaps/hl7/adt_oru_orm.pcap, frame 8 (engine -> EHR): the ACK of ADT00001, whole.
    // "\x0bMSH|^~\&|TEST_ENGINE|TESTHOSP|TEST_EHR_ADT|TESTHOSP|20261128130503||ACK^A01^ACK|
    //  ACKADT00001|P|2.5.1\rMSA|AA|ADT00001\r\x1c\r"
    const ACK_FRAME: &[u8] = b"\x0bMSH|^~\\&|TEST_ENGINE|TESTHOSP|TEST_EHR_ADT|TESTHOSP|20261128130503||ACK^A01^ACK|ACKADT00001|P|2.5.1\rMSA|AA|ADT00001\r\x1c\r";

    fn ack_body() -> Vec<u8> {
        ACK_FRAME[1..ACK_FRAME.len() - 2].to_vec()
    }

    #[test]
    fn one_frame_any_split() {
        let want = vec![Ev::Start(Framing::Mllp), Ev::Msg(ack_body(), End::EndBlock)];
        assert_eq!(run(&[ACK_FRAME], false), want);
        assert_eq!(bytewise(ACK_FRAME, false), want);
        for cut in 0..ACK_FRAME.len() {
            let (a, b) = ACK_FRAME.split_at(cut);
            assert_eq!(run(&[a, b], false), want, "cut at {cut}");
        }
        // Flushing after a complete frame adds nothing.
        assert_eq!(run(&[ACK_FRAME], true), want);
    }

    #[test]
    fn several_frames_in_one_chunk() {
        let two = [ACK_FRAME, ACK_FRAME].concat();
        let m = Ev::Msg(ack_body(), End::EndBlock);
        let want = vec![
            Ev::Start(Framing::Mllp),
            m.clone(),
            Ev::Start(Framing::Mllp),
            m,
        ];
        assert_eq!(run(&[&two], false), want);
        assert_eq!(bytewise(&two, false), want);
    }

    /// pcaps/hl7/missing_end_block.pcap: frame 6 is "\x0bMSH|...ADT00005..." with no end block,
    /// frame 8 "\x0bMSH|...ADT00006...\x1c\r". The second start block resynchronises.
    #[test]
    fn missing_end_block_resyncs_on_start_block() {
        let a = b"\x0bMSH|^~\\&|A|B|C|D|20240315170000||ADT^A08^ADT_A01|ADT00005|P|2.5.1\r";
        let b = b"\x0bMSH|^~\\&|A|B|C|D|20240315170100||ADT^A08^ADT_A01|ADT00006|P|2.5.1\r\x1c\r";
        let want = vec![
            Ev::Start(Framing::Mllp),
            Ev::Msg(a[1..].to_vec(), End::Unterminated),
            Ev::Start(Framing::Mllp),
            Ev::Msg(b[1..b.len() - 2].to_vec(), End::EndBlock),
        ];
        assert_eq!(run(&[a, b], false), want);
        assert_eq!(bytewise(&[&a[..], &b[..]].concat(), false), want);
        // Without the second frame, the flow's end flushes the unterminated frame.
        assert_eq!(
            run(&[a], true),
            vec![
                Ev::Start(Framing::Mllp),
                Ev::Msg(a[1..].to_vec(), End::Flushed)
            ]
        );
    }

    #[test]
    fn outside_bytes_once_per_run() {
        let s = [b"junk\r\n".as_slice(), ACK_FRAME, b"\n\n", ACK_FRAME].concat();
        let m = Ev::Msg(ack_body(), End::EndBlock);
        let want = vec![
            Ev::Outside,
            Ev::Start(Framing::Mllp),
            m.clone(),
            Ev::Outside,
            Ev::Start(Framing::Mllp),
            m,
        ];
        assert_eq!(run(&[&s], false), want);
        assert_eq!(bytewise(&s, false), want);
        // "MS" then not H at a line start: outside bytes, one run.
        assert_eq!(bytewise(b"MSX\rMS", true), vec![Ev::Outside]);
    }

    #[test]
    fn bare_messages_split_on_msh() {
        let m1 = b"MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.3\rPID|1\r";
        let m2 = b"MSH|^~\\&|A|B|C|D|2||ADT^A01|2|P|2.3\r\nEVN|A01\n";
        let s = [&m1[..], &m2[..]].concat();
        let want = vec![
            Ev::Start(Framing::Bare),
            Ev::Msg(m1.to_vec(), End::NextMessage),
            Ev::Start(Framing::Bare),
            Ev::Msg(m2.to_vec(), End::Flushed),
        ];
        assert_eq!(run(&[&s], true), want);
        assert_eq!(bytewise(&s, true), want);
        for cut in 0..s.len() {
            let (a, b) = s.split_at(cut);
            assert_eq!(run(&[a, b], true), want, "cut at {cut}");
        }
        // "MSHX" inside a bare message is data; so is "MS" at the end before a flush.
        let s = b"MSH|x\rMSHX|y\rMS";
        assert_eq!(
            bytewise(s, true),
            vec![Ev::Start(Framing::Bare), Ev::Msg(s.to_vec(), End::Flushed)]
        );
    }

    #[test]
    fn bare_then_frame() {
        let s = [b"MSH|^~\\&|A\r".as_slice(), ACK_FRAME].concat();
        let want = vec![
            Ev::Start(Framing::Bare),
            Ev::Msg(b"MSH|^~\\&|A\r".to_vec(), End::NextMessage),
            Ev::Start(Framing::Mllp),
            Ev::Msg(ack_body(), End::EndBlock),
        ];
        assert_eq!(run(&[&s], false), want);
        assert_eq!(bytewise(&s, false), want);
    }

    #[test]
    fn gap_resyncs_at_next_start_block() {
        let mut d = Deframer::new();
        let mut ev = Vec::new();
        let mut f = |e: Event<'_>| {
            ev.push(match e {
                Event::Data(b) => format!("data {}", b.len()),
                other => format!("{other:?}"),
            })
        };
        d.feed(&ACK_FRAME[..20], &mut f);
        d.gap(&mut f);
        // The rest of the lost frame, its end block, then a full frame.
        d.feed(&ACK_FRAME[30..], &mut f);
        d.feed(ACK_FRAME, &mut f);
        assert_eq!(
            ev,
            vec![
                "Start(Mllp)",
                "data 19",
                "End(Gap)",
                "Start(Mllp)",
                &format!("data {}", ACK_FRAME.len() - 3),
                "End(EndBlock)"
            ]
        );
    }

    #[test]
    fn end_block_without_cr() {
        let s = b"\x0bMSH|a\x1c\x0bMSH|b\x1c\r";
        let want = vec![
            Ev::Start(Framing::Mllp),
            Ev::Msg(b"MSH|a".to_vec(), End::EndBlock),
            Ev::Start(Framing::Mllp),
            Ev::Msg(b"MSH|b".to_vec(), End::EndBlock),
        ];
        assert_eq!(bytewise(s, false), want);
    }

    #[test]
    fn probe_decides_within_five_bytes() {
        assert_eq!(probe(b""), None);
        assert_eq!(probe(b"\x0b"), None);
        assert_eq!(probe(b"\x0bMS"), None);
        assert_eq!(probe(b"\x0bMSH"), None);
        assert_eq!(probe(b"\x0bMSH|"), Some(true));
        assert_eq!(probe(&ACK_FRAME[..5]), Some(true));
        assert_eq!(probe(b"MSH|"), Some(true));
        assert_eq!(probe(b"MSH"), None);
        assert_eq!(probe(b"MSH1"), Some(false));
        assert_eq!(probe(b"\x0bMSA|"), Some(false));
        assert_eq!(probe(b"GET "), Some(false));
        assert_eq!(probe(b"\x16\x03\x01"), Some(false));
        assert_eq!(probe(b"\x0b\x0b"), Some(false));
        // A batch in an MLLP frame (node-hl7-client sends FHS/BHS batches this way).
        assert_eq!(probe(b"\x0bF"), None);
        assert_eq!(probe(b"\x0bFHS"), None);
        assert_eq!(probe(b"\x0bFHS|"), Some(true));
        assert_eq!(probe(b"\x0bBHS|"), Some(true));
        assert_eq!(probe(b"\x0bBHS\r"), Some(false));
        assert_eq!(probe(b"\x0bFTS|"), Some(false));
        assert_eq!(probe(b"\x0bB"), None);
        // Bare, only MSH starts a message (the bare deframer splits on MSH).
        assert_eq!(probe(b"FHS|"), Some(false));
        assert_eq!(probe(b"BHS|"), Some(false));
        assert_eq!(probe(b"M"), None);
        assert_eq!(probe(b"F"), Some(false));
    }
}
