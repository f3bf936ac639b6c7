//! Fuzz the chunked pcap reader (`medtap::pcapfile`): what replay reads plain pcap files with.
//!
//! The input's first byte picks the chunk size, the second the timestamp unit and the next two
//! the snapshot length; the rest is the file after its header.
//! Invariants: nothing panics; the records are the same whatever the chunk size (against one
//! read of the whole input); every record's bytes are inside the chunk and no longer than the
//! snapshot length; the chunk never grows past one record of MAX_CAPLEN bytes; a damaged file
//! ends with a "truncated" or "corrupt" damage kind.
//! Seed corpus: `corpus/pcap_records/` (records cut from pcaps/, header removed).
#![no_main]

use libfuzzer_sys::fuzz_target;
use medtap::pcapfile::{Fill, Format, Reader, Record, MAX_CAPLEN};

fn read(body: &[u8], format: Format, chunk: usize) -> (Vec<(Record, Vec<u8>)>, Fill) {
    let mut r = Reader::new(body, format);
    let mut buf = vec![0u8; chunk];
    let mut recs = Vec::new();
    let mut out = Vec::new();
    loop {
        let fill = r.fill(&mut buf, &mut recs);
        assert!(buf.len() <= chunk.max(16 + MAX_CAPLEN as usize));
        for x in &recs {
            assert!(x.caplen <= format.snapshot.max(1));
            let data = &buf[x.off as usize..][..x.caplen as usize];
            // Offsets differ between chunk sizes; compare what they point at.
            out.push((Record { off: 0, ..*x }, data.to_vec()));
        }
        if fill != Fill::More {
            return (out, fill);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [c, unit, s0, s1, body @ ..] = data else {
        return;
    };
    let format = Format {
        nsec: unit & 1 == 1,
        linktype: 1,
        snapshot: u32::from(u16::from_le_bytes([*s0, *s1])).max(1),
    };
    let chunk = 32 + usize::from(*c) * 8;
    let (got, end) = read(body, format, chunk);
    let (want, want_end) = read(body, format, body.len() + 64);
    assert_eq!(got, want);
    assert_eq!(end, want_end);
    if let Fill::End(Err(d)) = end {
        assert!(matches!(d.kind, "truncated" | "corrupt"), "{}", d.kind);
    }
});
