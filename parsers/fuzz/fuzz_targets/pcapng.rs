//! Fuzz the pcapng fallback reader (`medtap::pcapng`, blocks parsed by the `pcap-parser` crate):
//! what replay reads when libpcap refuses a pcapng file whose interfaces have different link
//! types.
//!
//! Invariants: nothing panics; every packet handed out is no longer than its block allows (the
//! reader's buffer never exceeds `MAX_BLOCK`); a damaged file ends with a "truncated" or
//! "corrupt" damage kind.
//! Seed corpus: `corpus/pcapng/` (the pcapng captures under pcaps/).
#![no_main]

use libfuzzer_sys::fuzz_target;
use medtap::pcapng::{Reader, MAX_BLOCK};

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    let mut packets = 0usize;
    let end = r.for_each(|p| {
        assert!(p.data.len() <= MAX_BLOCK);
        assert!((0..1_000_000).contains(&p.ts_usec));
        packets += 1;
    });
    if let Err(d) = end {
        assert!(matches!(d.kind, "truncated" | "corrupt"), "{}", d.kind);
    }
    assert!(packets <= data.len() / 12 + 1);
});
