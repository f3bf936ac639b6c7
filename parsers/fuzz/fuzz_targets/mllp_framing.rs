//! Fuzz the MLLP / bare-HL7 deframer as the sensor drives it: the input is cut into chunks (the
//! first byte seeds the cut points), with gaps and flushes at some cuts, and the probe runs on
//! the first bytes.
//!
//! Invariants: nothing panics; events are well nested (data and end only inside a message,
//! outside-frame runs only between messages); the message bytes reported never exceed the
//! input; and, without gaps or flushes, every way of cutting the input gives the same messages
//! as feeding it whole (the property the streaming tests check on the real captures).
//! Seed corpus: parsers/fuzz/corpus/mllp_framing/ (MLLP frames from pcaps/hl7/*.pcap).
#![no_main]

use libfuzzer_sys::fuzz_target;
use medtap_parsers::mllp::{self, Deframer, End, Event, Framing};

#[derive(Debug, PartialEq, Eq)]
enum Msg {
    Start(Framing),
    Body(Vec<u8>, End),
    Outside,
}

struct Collector {
    out: Vec<Msg>,
    cur: Option<Vec<u8>>,
    data_bytes: usize,
}

impl Collector {
    fn new() -> Self {
        Collector {
            out: Vec::new(),
            cur: None,
            data_bytes: 0,
        }
    }
    fn on(&mut self, e: Event<'_>) {
        match e {
            Event::Start(k) => {
                assert!(self.cur.is_none(), "start inside a message");
                self.cur = Some(Vec::new());
                self.out.push(Msg::Start(k));
            }
            Event::Data(b) => {
                assert!(!b.is_empty(), "empty data event");
                self.data_bytes += b.len();
                self.cur
                    .as_mut()
                    .expect("data outside a message")
                    .extend_from_slice(b);
            }
            Event::End(why) => {
                let body = self.cur.take().expect("end without start");
                self.out.push(Msg::Body(body, why));
            }
            Event::Outside => {
                assert!(self.cur.is_none(), "outside run inside a message");
                assert!(
                    self.out.last() != Some(&Msg::Outside),
                    "two reports for one run"
                );
                self.out.push(Msg::Outside);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    if let Some(true) = mllp::probe(input) {
        assert!(input.len() >= 4);
    }

    // Whole.
    let mut whole = Collector::new();
    let mut d = Deframer::new();
    d.feed(input, &mut |e| whole.on(e));
    d.flush(&mut |e| whole.on(e));
    assert!(whole.data_bytes <= input.len());

    // Cut into chunks of 1..=seed%64+1 bytes (sizes from a small LCG seeded by `seed`).
    let mut x = seed as u32 | 1;
    let mut next = || {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        (x >> 16) as usize
    };
    let max = (seed as usize % 64) + 1;
    let mut cut = Collector::new();
    let mut d = Deframer::new();
    let mut i = 0;
    while i < input.len() {
        let n = (1 + next() % max).min(input.len() - i);
        d.feed(&input[i..i + n], &mut |e| cut.on(e));
        i += n;
    }
    d.flush(&mut |e| cut.on(e));
    assert_eq!(cut.out, whole.out, "chunking changed the messages");

    // Gaps and flushes at some cuts: still well nested, never more data than input.
    let mut g = Collector::new();
    let mut d = Deframer::new();
    let mut i = 0;
    while i < input.len() {
        let n = (1 + next() % max).min(input.len() - i);
        d.feed(&input[i..i + n], &mut |e| g.on(e));
        match next() % 8 {
            0 => d.gap(&mut |e| g.on(e)),
            1 => d.flush(&mut |e| g.on(e)),
            _ => {}
        }
        i += n;
    }
    d.flush(&mut |e| g.on(e));
    assert!(g.cur.is_none() && !d.in_message());
    assert!(g.data_bytes <= input.len());
});
