//! Classic pcap files read in chunks, without libpcap's copies: how replay reads most captures.
//!
//! libpcap reads a savefile through stdio: the kernel copies the file into the stdio buffer,
//! `fread` copies each record out of it into libpcap's packet buffer, and the capture thread
//! then copied each packet into a worker's batch. Here the file is read straight into a chunk
//! (one `read` per chunk), the records are found in place, and the chunk itself is handed to the
//! workers (shared by their batches, see `pipeline`): the kernel's copy is the only one. On
//! bench.pcap that was about half of the capture thread's time, and that thread shares a core
//! with the central one.
//!
//! libpcap opens every file and reads its header ([`crate::capture::chunked`]); only files
//! this reader takes exactly as libpcap 1.10 does come here ([`takes`]): a pcap file (not
//! pcapng) in the host's byte order, format version 2.4, with microsecond or nanosecond
//! timestamps and a link type medtap decodes, and no `--bpf`; libpcap reads every other file.
//! The link type and snapshot length are libpcap's, and each record is taken as its
//! `pcap_next_packet` takes it:
//! - the timestamp's two fields are signed 32-bit numbers; nanoseconds are divided by 1,000;
//! - a captured length above [`MAX_CAPLEN`] ends the file as corrupt;
//! - one above the file's snapshot length is cut to it (the rest of the record is skipped);
//! - a file that ends inside a record ends as truncated, after the records before it.
//!
//! The damage messages are libpcap's, word for word, so a file reads the same whichever reader
//! takes it; a test in `capture` compares the two on every capture in pcaps/ and on damaged
//! copies of them.

use std::io::Read;

/// The largest captured length libpcap accepts in a record, for every link type medtap decodes
/// (`max_snaplen_for_dlt`: `MAXIMUM_SNAPLEN`).
pub const MAX_CAPLEN: u32 = 262_144;

/// Bytes of a record header: seconds, microseconds (or nanoseconds), captured and wire length.
const RECORD_HEADER: usize = 16;

/// Bytes of the file header.
pub const FILE_HEADER: usize = 24;

/// One record of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub ts_sec: i64,
    pub ts_usec: i64,
    /// Length on the wire.
    pub wire_len: u32,
    /// Where the captured bytes start in the chunk, and how many there are.
    pub off: u32,
    pub caplen: u32,
}

/// Why reading stopped before the end of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// "truncated" or "corrupt", as `capture::FileEnd` counts them.
    pub kind: &'static str,
    pub message: String,
}

fn damage(kind: &'static str, message: String) -> Damage {
    Damage { kind, message }
}

/// How a file's records are read: what libpcap said of it, and its timestamp unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    /// Timestamps in nanoseconds (else microseconds).
    pub nsec: bool,
    /// The link type as libpcap gives it (a DLT_ value).
    pub linktype: i32,
    /// The snapshot length as libpcap adjusted the file's (at most [`MAX_CAPLEN`]).
    pub snapshot: u32,
}

/// Whether this reader takes a file with this header (its first [`FILE_HEADER`] bytes), once
/// libpcap has opened it, and if so whether its timestamps are in nanoseconds. `None`: libpcap
/// reads the file.
pub fn takes(header: &[u8]) -> Option<bool> {
    let h: &[u8; FILE_HEADER] = header.get(..FILE_HEADER)?.try_into().ok()?;
    let u32_at = |i: usize| u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let u16_at = |i: usize| u16::from_ne_bytes([h[i], h[i + 1]]);
    // The host's byte order, micro- or nanoseconds (not Kuznetsov's format, whose record
    // headers are longer).
    let nsec = match u32_at(0) {
        0xa1b2_c3d4 => false,
        0xa1b2_3c4d => true,
        _ => return None,
    };
    // Version 2.4 only: libpcap swaps or may swap the two lengths of older versions. A link
    // type with any of the top six bits set (LT_LINKTYPE_EXT: extra information libpcap keeps
    // apart) is left to libpcap.
    let plain = u16_at(4) == 2 && u16_at(6) == 4 && u32_at(20) & 0xFC00_0000 == 0;
    plain.then_some(nsec)
}

/// The complete records at the start of `buf`, appended to `recs`. Returns the bytes they take
/// and, when a record's captured length is one libpcap refuses, the damage (reading stops
/// there).
pub fn records(
    buf: &[u8],
    snapshot: u32,
    nsec: bool,
    recs: &mut Vec<Record>,
) -> (usize, Option<Damage>) {
    let mut at = 0usize;
    while let Some(h) = buf.get(at..at + RECORD_HEADER) {
        let word = |i: usize| [h[i], h[i + 1], h[i + 2], h[i + 3]];
        let caplen = u32::from_ne_bytes(word(8));
        if caplen > MAX_CAPLEN {
            return (at, Some(too_long(caplen, snapshot)));
        }
        let end = at + RECORD_HEADER + caplen as usize;
        if end > buf.len() {
            break;
        }
        let usec = i64::from(i32::from_ne_bytes(word(4)));
        recs.push(Record {
            ts_sec: i64::from(i32::from_ne_bytes(word(0))),
            ts_usec: if nsec { usec / 1000 } else { usec },
            wire_len: u32::from_ne_bytes(word(12)),
            off: (at + RECORD_HEADER) as u32,
            caplen: caplen.min(snapshot),
        });
        at = end;
    }
    (at, None)
}

/// libpcap's message for a captured length above [`MAX_CAPLEN`].
fn too_long(caplen: u32, snapshot: u32) -> Damage {
    let message = if caplen > snapshot {
        format!("invalid packet capture length {caplen}, bigger than snaplen of {snapshot}")
    } else {
        format!("invalid packet capture length {caplen}, bigger than maximum of {MAX_CAPLEN}")
    };
    damage("corrupt", message)
}

/// libpcap's message for a file that ends with `rest`, the start of a record.
fn truncated(rest: &[u8], snapshot: u32) -> Damage {
    let message = match rest.get(8..12) {
        Some(w) if rest.len() >= RECORD_HEADER => {
            let caplen = u32::from_ne_bytes([w[0], w[1], w[2], w[3]]);
            let got = rest.len() - RECORD_HEADER;
            // A record longer than the snapshot: libpcap first reads the snapshot's worth.
            let tried = if caplen > snapshot && got < snapshot as usize {
                snapshot
            } else {
                caplen
            };
            format!("truncated dump file; tried to read {tried} captured bytes, only got {got}")
        }
        _ => format!(
            "truncated dump file; tried to read {RECORD_HEADER} header bytes, only got {}",
            rest.len()
        ),
    };
    damage("truncated", message)
}

/// What [`Reader::fill`] leaves to do: hand out the chunk's records, then go on or stop.
#[derive(Debug, PartialEq, Eq)]
pub enum Fill {
    /// More of the file follows.
    More,
    /// The file ends after these records: cleanly, or damaged.
    End(Result<(), Damage>),
}

/// The records of a pcap file, a chunk at a time. `src` is positioned after the file header.
pub struct Reader<R> {
    src: R,
    nsec: bool,
    snapshot: u32,
    /// The start of a record the last chunk ended in; it begins the next chunk.
    carry: Vec<u8>,
}

impl<R: Read> Reader<R> {
    pub fn new(src: R, format: Format) -> Reader<R> {
        Reader {
            src,
            nsec: format.nsec,
            snapshot: format.snapshot.clamp(1, MAX_CAPLEN),
            carry: Vec::new(),
        }
    }

    /// Read the next chunk of the file into `chunk`, all of its length (made longer when one
    /// record needs more: at most [`MAX_CAPLEN`] and a header), and list its complete records
    /// in `recs`. The start of a record cut by the chunk's end is kept for the next call.
    pub fn fill(&mut self, chunk: &mut Vec<u8>, recs: &mut Vec<Record>) -> Fill {
        recs.clear();
        let kept = self.carry.len();
        // Room for the record the carry starts (its captured length is not checked yet when
        // the carry ends inside its header: one past MAX_CAPLEN only needs the header).
        let need = match self.carry.get(8..12) {
            Some(w) => match u32::from_ne_bytes([w[0], w[1], w[2], w[3]]) {
                caplen @ ..=MAX_CAPLEN => RECORD_HEADER + caplen as usize,
                _ => RECORD_HEADER,
            },
            None => RECORD_HEADER,
        }
        .max(2 * RECORD_HEADER);
        if chunk.len() < need.max(kept) {
            chunk.resize(need.max(kept), 0);
        }
        chunk[..kept].copy_from_slice(&self.carry);
        self.carry.clear();
        let mut filled = kept;
        let mut failed = None;
        while filled < chunk.len() {
            match self.src.read(&mut chunk[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let e = e.to_string();
                    let e = e.split(" (os error").next().unwrap_or(&e).to_string();
                    failed = Some(damage("corrupt", format!("error reading dump file: {e}")));
                    break;
                }
            }
        }
        let (used, refused) = records(&chunk[..filled], self.snapshot, self.nsec, recs);
        if let Some(d) = refused.or(failed) {
            return Fill::End(Err(d));
        }
        let rest = &chunk[used..filled];
        if filled < chunk.len() {
            // The file ended.
            return Fill::End(if rest.is_empty() {
                Ok(())
            } else {
                Err(truncated(rest, self.snapshot))
            });
        }
        self.carry.extend_from_slice(rest);
        Fill::More
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(nsec: bool, records: &[(i32, i32, &[u8], u32)]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&(if nsec { 0xa1b2_3c4du32 } else { 0xa1b2_c3d4 }).to_ne_bytes());
        f.extend_from_slice(&2u16.to_ne_bytes());
        f.extend_from_slice(&4u16.to_ne_bytes());
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&65_535u32.to_ne_bytes());
        f.extend_from_slice(&1u32.to_ne_bytes());
        for (s, u, data, len) in records {
            f.extend_from_slice(&s.to_ne_bytes());
            f.extend_from_slice(&u.to_ne_bytes());
            f.extend_from_slice(&(data.len() as u32).to_ne_bytes());
            f.extend_from_slice(&len.to_ne_bytes());
            f.extend_from_slice(data);
        }
        f
    }

    /// Every record and the end, reading `bytes` (after its header) in chunks of `chunk` bytes.
    fn read_all(bytes: &[u8], chunk: usize, snapshot: u32) -> (Vec<(Record, Vec<u8>)>, Fill) {
        let format = Format {
            nsec: takes(bytes).expect("a plain pcap header"),
            linktype: 1,
            snapshot,
        };
        let mut r = Reader::new(&bytes[FILE_HEADER..], format);
        let mut out = Vec::new();
        let mut recs = Vec::new();
        loop {
            let mut buf = vec![0u8; chunk];
            let f = r.fill(&mut buf, &mut recs);
            for x in &recs {
                let data = buf[x.off as usize..][..x.caplen as usize].to_vec();
                out.push((*x, data));
            }
            if f != Fill::More {
                return (out, f);
            }
        }
    }

    #[test]
    fn records_across_chunks_read_as_in_one() {
        let big = vec![7u8; 3000];
        let f = file(
            false,
            &[
                (1, 2, b"abc", 60),
                (3, 999_999, &big, 3000),
                (-1, -5, b"", 0),
                (5, 6, b"z", 1),
            ],
        );
        let (whole, end) = read_all(&f, 1 << 20, 65_535);
        assert_eq!(end, Fill::End(Ok(())));
        assert_eq!(whole.len(), 4);
        assert_eq!(whole[2].0.ts_sec, -1);
        assert_eq!(whole[2].0.ts_usec, -5);
        assert_eq!(whole[1].1, big);
        for chunk in [1, 7, 16, 17, 100, 3016, 3019] {
            let (parts, end) = read_all(&f, chunk, 65_535);
            assert_eq!(end, Fill::End(Ok(())), "chunk {chunk}");
            let got: Vec<_> = parts.iter().map(|(r, d)| (r.ts_sec, r.caplen, d)).collect();
            let want: Vec<_> = whole.iter().map(|(r, d)| (r.ts_sec, r.caplen, d)).collect();
            assert_eq!(got, want, "chunk {chunk}");
        }
    }

    #[test]
    fn nanoseconds_scale_down_and_long_records_are_cut_to_the_snapshot() {
        let f = file(true, &[(10, 123_456_789, &[1, 2, 3, 4, 5], 5)]);
        let (recs, end) = read_all(&f, 64, 3);
        assert_eq!(end, Fill::End(Ok(())));
        assert_eq!(recs[0].0.ts_usec, 123_456);
        assert_eq!(recs[0].1, [1, 2, 3]);
        assert_eq!(recs[0].0.wire_len, 5);
    }

    #[test]
    fn damage_reads_as_libpcap_words_it() {
        let f = file(false, &[(1, 0, b"abcdef", 6), (2, 0, b"ghijkl", 6)]);
        let cut = |n: usize| read_all(&f[..f.len() - n], 64, 65_535);
        let (recs, end) = cut(3);
        assert_eq!(recs.len(), 1);
        let Fill::End(Err(d)) = end else { panic!() };
        assert_eq!(d.kind, "truncated");
        assert_eq!(
            d.message,
            "truncated dump file; tried to read 6 captured bytes, only got 3"
        );
        let Fill::End(Err(d)) = cut(12).1 else {
            panic!()
        };
        assert_eq!(
            d.message,
            "truncated dump file; tried to read 16 header bytes, only got 10"
        );
        let mut bad = f.clone();
        bad[FILE_HEADER + 8..FILE_HEADER + 12].copy_from_slice(&300_000u32.to_ne_bytes());
        let (recs, end) = read_all(&bad, 64, 65_535);
        assert!(recs.is_empty());
        let Fill::End(Err(d)) = end else { panic!() };
        assert_eq!(d.kind, "corrupt");
        assert_eq!(
            d.message,
            "invalid packet capture length 300000, bigger than snaplen of 65535"
        );
    }

    /// A captured length past the maximum, in a header the previous chunk cut, is refused
    /// without room being made for it (a 4 GB buffer, found by the capture test).
    #[test]
    fn a_cut_header_with_a_huge_length_allocates_nothing() {
        let mut f = file(false, &[(1, 0, b"abcdef", 6), (2, 0, b"ghijkl", 6)]);
        let second = FILE_HEADER + 16 + 6;
        f[second + 8..second + 12].copy_from_slice(&3_955_520_738u32.to_ne_bytes());
        let format = Format {
            nsec: takes(&f).unwrap(),
            linktype: 1,
            snapshot: 65_535,
        };
        let mut r = Reader::new(&f[FILE_HEADER..], format);
        let mut recs = Vec::new();
        // The first chunk ends 12 bytes into the second record's header.
        let mut buf = vec![0u8; 16 + 6 + 12];
        assert_eq!(r.fill(&mut buf, &mut recs), Fill::More);
        assert_eq!(recs.len(), 1);
        let Fill::End(Err(d)) = r.fill(&mut buf, &mut recs) else {
            panic!()
        };
        assert_eq!(d.kind, "corrupt");
        assert!(buf.len() <= 64, "{}", buf.len());
    }

    #[test]
    fn other_formats_are_left_to_libpcap() {
        let f = file(false, &[]);
        assert_eq!(takes(&f), Some(false));
        assert_eq!(takes(&file(true, &[])), Some(true));
        assert_eq!(takes(&f[..20]), None);
        let mut v23 = f.clone();
        v23[6] = 3;
        assert_eq!(takes(&v23), None);
        let mut swapped = f.clone();
        swapped[..4].reverse();
        assert_eq!(takes(&swapped), None);
        let mut fcs = f.clone();
        fcs[23] = 0x10;
        assert_eq!(takes(&fcs), None);
        assert_eq!(takes(&[0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0]), None);
    }
}
