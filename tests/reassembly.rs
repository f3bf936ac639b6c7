//! TCP reassembly on real impaired traffic: pcaps/ooo_retrans.pcap holds transfers through a link
//! that dropped, duplicated and reordered segments (tshark counts out-of-order segments,
//! retransmissions and duplicates in it). Reassembling each direction with medtap's capture,
//! decode and reassembly stages must give back exactly the bytes each side sent, whose sizes and
//! sha256 sums are in pcaps/ooo_retrans.streams.tsv (the generator checked the received files
//! against the seeded originals, and tshark's `follow,tcp,raw` agrees).

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;

use medtap::capture::FileReader;
use medtap::reassembly::{Chunk, GlobalBudget, Stream};
use medtap::stats::{Counter, WorkerStats};
use sha2::{Digest, Sha256};

type Endpoint = (IpAddr, u16);

struct Conn {
    client: Endpoint,
    streams: [Stream; 2],
    data: [Vec<u8>; 2],
    gaps: [u64; 2],
}

fn ep(s: &str) -> Endpoint {
    let (ip, port) = s.rsplit_once(':').unwrap();
    (
        ip.trim_matches(['[', ']']).parse().unwrap(),
        port.parse().unwrap(),
    )
}

#[test]
fn impaired_transfers_reassemble_to_the_bytes_sent() {
    let mut reader = FileReader::open(&common::pcap("ooo_retrans.pcap"), None).unwrap();
    let lt = reader.linktype;
    let mut stats = WorkerStats::default();
    let mut budget = GlobalBudget::new(64 << 20);
    let mut conns: BTreeMap<(Endpoint, Endpoint), Conn> = BTreeMap::new();
    reader.for_each(|p| {
        let mut scratch = WorkerStats::default();
        let Some(d) = medtap::decode::decode(lt, p.data, &mut scratch) else {
            return;
        };
        let medtap::decode::L4::Tcp(t) = d.l4 else {
            return;
        };
        let (a, b) = ((d.src_ip, d.src_port), (d.dst_ip, d.dst_port));
        let key = if a <= b { (a, b) } else { (b, a) };
        let c = conns.entry(key).or_insert_with(|| Conn {
            client: if t.syn && !t.ack_flag { a } else { b },
            streams: [Stream::new(), Stream::new()],
            data: [Vec::new(), Vec::new()],
            gaps: [0, 0],
        });
        let i = usize::from(a != c.client);
        let [s0, s1] = &mut c.streams;
        let [d0, d1] = &mut c.data;
        let [g0, g1] = &mut c.gaps;
        let (this, other, dt, dothers, gt, gothers) = if i == 0 {
            (s0, s1, d0, d1, g0, g1)
        } else {
            (s1, s0, d1, d0, g1, g0)
        };
        let sink = |dst: &mut Vec<u8>, gaps: &mut u64, ch: Chunk<'_>| match ch {
            Chunk::Data(x) => dst.extend_from_slice(x),
            Chunk::Gap(n) => *gaps += n,
        };
        this.segment(
            t.seq,
            t.syn,
            t.fin,
            t.rst,
            d.payload,
            4 << 20,
            &mut budget,
            &mut stats,
            &mut |ch| sink(dt, gt, ch),
        );
        if t.ack_flag {
            other.peer_ack(t.ack, &mut budget, &mut stats, &mut |ch| {
                sink(dothers, gothers, ch)
            });
        }
    });
    for c in conns.values_mut() {
        for i in 0..2 {
            let (data, gaps) = (&mut c.data[i], &mut c.gaps[i]);
            c.streams[i].flush(&mut budget, &mut stats, &mut |ch| match ch {
                Chunk::Data(x) => data.extend_from_slice(x),
                Chunk::Gap(n) => *gaps += n,
            });
        }
    }
    assert_eq!(budget.used, 0, "budget not released");
    assert!(
        stats.get(Counter::ReasmOutOfOrder) > 10,
        "the capture should exercise out-of-order handling"
    );
    assert!(
        stats.get(Counter::ReasmRetransmissions) > 5,
        "the capture should exercise retransmissions"
    );

    let tsv = std::fs::read_to_string(common::pcap("ooo_retrans.streams.tsv")).unwrap();
    let mut checked = 0;
    for line in tsv.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let (client, server) = (ep(f[1]), ep(f[2]));
        let key = if client <= server {
            (client, server)
        } else {
            (server, client)
        };
        let c = conns
            .get(&key)
            .unwrap_or_else(|| panic!("no connection {client:?} -> {server:?}"));
        assert_eq!(c.client, client);
        for (i, (len, sum)) in [(f[3], f[4]), (f[5], f[6])].into_iter().enumerate() {
            assert_eq!(c.gaps[i], 0, "stream {} dir {i}: unexpected gap", f[0]);
            assert_eq!(
                c.data[i].len().to_string(),
                len,
                "stream {} dir {i}: length",
                f[0]
            );
            let got = format!("{:x}", Sha256::digest(&c.data[i]));
            assert_eq!(got, sum, "stream {} dir {i}: sha256", f[0]);
        }
        checked += 1;
    }
    assert_eq!(checked, 4);
}
