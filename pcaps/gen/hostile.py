#!/usr/bin/env python3
"""Hostile captures, derived from real captures in pcaps/ (python3 standard library only).

Every output starts from packets that real software put on a wire (dcmtk, pynetdicom,
python-hl7, captured by tcpdump: see pcaps/SOURCES.tsv) and damages or multiplies them the way
a broken capture, a broken device or an attacker would. Checksums of rewritten packets are
recomputed, so that only the damage named is in the file.

    python3 pcaps/gen/hostile.py small DIR            # the small captures (pcaps/hostile/)
    python3 pcaps/gen/hostile.py seq_wrap FILE        # dicom/store.pcap, sequence numbers wrapping
    python3 pcaps/gen/hostile.py synflood FILE N      # N SYNs from N random sources
    python3 pcaps/gen/hostile.py dicom_assocs FILE N  # N tiny DICOM associations (RQ/RJ)
    python3 pcaps/gen/hostile.py hl7_unterminated FILE MIB  # one MLLP frame of MIB MiB, never ended

The last four are written at test time into a temporary folder (tests/hostile.rs), not
committed (megabytes to hundreds of megabytes). Output is deterministic: the random sources
come from seeded generators.

Small captures (pcaps/hostile/, each listed in pcaps/SOURCES.tsv):
  truncated_mid_header.pcap    dicom/echo.pcap cut inside record 12's 16-byte header
  corrupt_record_headers.pcap  dicom/echo.pcap, record 9 with incl_len 0x7FFFFFF0 (> snaplen,
                               > orig_len 16, > what is left of the file)
  zero_and_snaplen_cut.pcap    dicom/echo.pcap plus, after each of its first 10 frames, a copy
                               cut at 0, 1, 13, 14, 20, 33, 34, 46, 54, 0 bytes (zero-length
                               records, cuts inside Ethernet, IPv4 and TCP headers)
  unknown_linktype.pcap        dicom/echo.pcap with link type 147 (LINKTYPE_USER0)
  dicom_pdu_4gib.pcap          dicom/find.pcap with the first P-DATA-TF PDU length set to
                               0xFFFFFFFF (4 GiB - 1), then the rest of the real stream
  dicom_assoc_rq_4gib.pcap     dicom/echo.pcap with the A-ASSOCIATE-RQ PDU length 0xFFFFFFFF
  dicom_assoc_rq_1mib.pcap     dicom/echo.pcap with the A-ASSOCIATE-RQ PDU length 1 MiB: a
                               believable length over the 64 KiB kept for an A-ASSOCIATE PDU
  vlan_deep.pcap               dicom/echo.pcap, each frame with 9, 12, 16 or 64 802.1Q tags
  tcp_overlap_different.pcap   hl7/adt_oru_orm.pcap, each data segment sent as its second half
                               (held out of order), then the whole segment with the second
                               half's bytes changed: overlaps with different data
  tcp_seq_wrap_find.pcap       dicom/find.pcap with sequence numbers wrapping 400 bytes into
                               each direction's stream
"""
import random
import struct
import sys
from pathlib import Path

PCAPS = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------- pcap files


def read_pcap(path):
    """(linktype, snaplen, [(ts_sec, ts_usec, orig_len, data)]) of a little-endian µs pcap."""
    b = Path(path).read_bytes()
    magic, _, _, _, _, snaplen, lt = struct.unpack_from("<IHHiIII", b, 0)
    assert magic == 0xA1B2C3D4, f"{path}: expected a little-endian microsecond pcap"
    recs, off = [], 24
    while off + 16 <= len(b):
        s, us, incl, orig = struct.unpack_from("<IIII", b, off)
        recs.append((s, us, orig, b[off + 16: off + 16 + incl]))
        off += 16 + incl
    return lt, snaplen, recs


def pcap_header(linktype=1, snaplen=262144):
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)


def record(s, us, data, orig=None):
    return struct.pack("<IIII", s, us, len(data), len(data) if orig is None else orig) + data


def write_pcap(path, recs, linktype=1, snaplen=262144):
    with open(path, "wb") as f:
        f.write(pcap_header(linktype, snaplen))
        for s, us, orig, data in recs:
            f.write(record(s, us, data, orig))


# ---------------------------------------------------------------- Ethernet / IPv4 / TCP


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


class Tcp:
    """An Ethernet/IPv4/TCP frame split into fields that can be changed and rebuilt."""

    def __init__(self, frame):
        assert frame[12:14] == b"\x08\x00", "not IPv4"
        self.eth = frame[:14]
        ihl = (frame[14] & 15) * 4
        self.ip = bytearray(frame[14: 14 + ihl])
        tot = struct.unpack_from("!H", self.ip, 2)[0]
        assert self.ip[9] == 6, "not TCP"
        seg = frame[14 + ihl: 14 + tot]
        doff = (seg[12] >> 4) * 4
        self.tcp = bytearray(seg[:doff])
        self.payload = bytes(seg[doff:])

    @staticmethod
    def parse(frame):
        try:
            return Tcp(frame)
        except (AssertionError, IndexError, struct.error):
            return None

    src = property(lambda self: bytes(self.ip[12:16]))
    dst = property(lambda self: bytes(self.ip[16:20]))
    sport = property(lambda self: struct.unpack_from("!H", self.tcp, 0)[0])
    dport = property(lambda self: struct.unpack_from("!H", self.tcp, 2)[0])
    flags = property(lambda self: self.tcp[13])

    def seq(self, v=None):
        if v is not None:
            struct.pack_into("!I", self.tcp, 4, v & 0xFFFFFFFF)
        return struct.unpack_from("!I", self.tcp, 4)[0]

    def ack(self, v=None):
        if v is not None:
            struct.pack_into("!I", self.tcp, 8, v & 0xFFFFFFFF)
        return struct.unpack_from("!I", self.tcp, 8)[0]

    def build(self, eth=None):
        ip = bytearray(self.ip)
        struct.pack_into("!H", ip, 2, len(ip) + len(self.tcp) + len(self.payload))
        struct.pack_into("!H", ip, 10, 0)
        struct.pack_into("!H", ip, 10, csum(bytes(ip)))
        tcp = bytearray(self.tcp)
        struct.pack_into("!H", tcp, 16, 0)
        seg = bytes(tcp) + self.payload
        pseudo = bytes(ip[12:20]) + struct.pack("!BBH", 0, 6, len(seg))
        struct.pack_into("!H", tcp, 16, csum(pseudo + seg))
        return (eth if eth is not None else self.eth) + bytes(ip) + bytes(tcp) + self.payload


def eth_ipv4_tcp(src_mac, dst_mac, src, dst, sport, dport, seq, ack, flags, payload=b"", ident=0):
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 0, ident & 0xFFFF, 0x4000, 64, 6, 0, src, dst)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 0x50, flags, 64240, 0, 0)
    t = Tcp.__new__(Tcp)
    t.eth, t.ip, t.tcp, t.payload = dst_mac + src_mac + b"\x08\x00", bytearray(ip), bytearray(tcp), payload
    return t.build()


FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

# ---------------------------------------------------------------- the small captures


def truncated_mid_header(out):
    b = (PCAPS / "dicom" / "echo.pcap").read_bytes()
    off, n = 24, 0
    while n < 11:
        incl = struct.unpack_from("<I", b, off + 8)[0]
        off += 16 + incl
        n += 1
    out.write_bytes(b[: off + 7])  # 11 whole records, then 7 of record 12's 16 header bytes


def corrupt_record_headers(out):
    lt, snap, recs = read_pcap(PCAPS / "dicom" / "echo.pcap")
    with open(out, "wb") as f:
        f.write(pcap_header(lt, snap))
        for i, (s, us, orig, data) in enumerate(recs, 1):
            if i == 9:
                # incl_len 0x7FFFFFF0 (2 GiB) with orig_len 16: larger than both the snaplen and
                # the original length, and larger than what is left of the file
                f.write(struct.pack("<IIII", s, us, 0x7FFFFFF0, 16) + data)
            else:
                f.write(record(s, us, data, orig))


def zero_and_snaplen_cut(out):
    lt, snap, recs = read_pcap(PCAPS / "dicom" / "echo.pcap")
    cuts = [0, 1, 13, 14, 20, 33, 34, 46, 54, 0]
    res = []
    for i, (s, us, orig, data) in enumerate(recs):
        res.append((s, us, orig, data))
        if i < len(cuts):
            # an extra copy of this frame cut at cuts[i] bytes (orig_len says how long it was)
            res.append((s, us, orig, data[: cuts[i]]))
    write_pcap(out, res, lt, snap)


def unknown_linktype(out):
    _, snap, recs = read_pcap(PCAPS / "dicom" / "echo.pcap")
    write_pcap(out, recs, 147, snap)


def _set_pdu_len(src, out, pdu_type, nth=1, value=0xFFFFFFFF):
    """Set the length field of the nth PDU of `pdu_type` that starts at a segment's first byte."""
    lt, snap, recs = read_pcap(src)
    res, seen, done = [], 0, False
    for s, us, orig, data in recs:
        t = Tcp.parse(data)
        if not done and t and len(t.payload) >= 6 and t.payload[0] == pdu_type and t.payload[1] == 0:
            seen += 1
            if seen == nth:
                t.payload = t.payload[:2] + struct.pack("!I", value) + t.payload[6:]
                data = t.build()
                done = True
        res.append((s, us, len(data) if orig == len(data) else orig, data))
    assert done, f"{src}: no PDU type {pdu_type}"
    write_pcap(out, res, lt, snap)


def vlan_deep(out):
    lt, snap, recs = read_pcap(PCAPS / "dicom" / "echo.pcap")
    res = []
    for i, (s, us, orig, data) in enumerate(recs):
        depth = [9, 12, 16, 64][i % 4]
        tags = b"".join(struct.pack("!HH", 0x8100, 100 + k) for k in range(depth))
        # the first tag's TPID replaces the frame's EtherType position; the last tag carries it
        frame = data[:12] + tags + data[12:]
        res.append((s, us, len(frame), frame))
    write_pcap(out, res, lt, snap)


def tcp_overlap_different(out):
    """Each data segment of at least 2 bytes is sent as: its second half alone (ahead of a hole,
    so it is held), then the whole segment with the second half's letters case-flipped. The
    resend overlaps held bytes with different data; a reader that keeps the first copy (the
    real bytes) sees the original stream."""
    lt, snap, recs = read_pcap(PCAPS / "hl7" / "adt_oru_orm.pcap")
    res = []
    for s, us, orig, data in recs:
        t = Tcp.parse(data)
        if t and len(t.payload) >= 2:
            half = len(t.payload) // 2
            tail = Tcp(data)
            tail.seq(t.seq() + half)
            tail.payload = t.payload[half:]
            whole = Tcp(data)
            whole.payload = t.payload[:half] + bytes(
                b ^ 0x20 if 0x41 <= (b & 0xDF) <= 0x5A else b ^ 0x01 for b in t.payload[half:])
            for f in (tail.build(), whole.build()):
                res.append((s, us, len(f), f))
            continue
        res.append((s, us, orig, data))
    write_pcap(out, res, lt, snap)


def tcp_seq_wrap(out, src=PCAPS / "dicom" / "store.pcap", wrap_at=100_000):
    lt, snap, recs = read_pcap(src)
    # per connection and direction, shift so that the wrap comes wrap_at bytes into the stream
    isn, res = {}, []
    for s, us, orig, data in recs:
        t = Tcp.parse(data)
        if t:
            k = (t.src, t.sport, t.dst, t.dport)
            r = (t.dst, t.dport, t.src, t.sport)
            if k not in isn and t.flags & SYN:
                isn[k] = t.seq()
            shift = lambda key: ((1 << 32) - wrap_at - isn[key]) if key in isn else 0  # noqa: E731
            t.seq(t.seq() + shift(k))
            if t.flags & ACK:
                t.ack(t.ack() + shift(r))
            data = t.build()
        res.append((s, us, orig, data))
    write_pcap(out, res, lt, snap)


SMALL = {
    "truncated_mid_header.pcap": truncated_mid_header,
    "corrupt_record_headers.pcap": corrupt_record_headers,
    "zero_and_snaplen_cut.pcap": zero_and_snaplen_cut,
    "unknown_linktype.pcap": unknown_linktype,
    "dicom_pdu_4gib.pcap": lambda o: _set_pdu_len(PCAPS / "dicom" / "find.pcap", o, 0x04),
    "dicom_assoc_rq_1mib.pcap": lambda o: _set_pdu_len(PCAPS / "dicom" / "echo.pcap", o, 0x01, value=1 << 20),
    "dicom_assoc_rq_4gib.pcap": lambda o: _set_pdu_len(PCAPS / "dicom" / "echo.pcap", o, 0x01),
    "vlan_deep.pcap": vlan_deep,
    "tcp_overlap_different.pcap": tcp_overlap_different,
    "tcp_seq_wrap_find.pcap": lambda o: tcp_seq_wrap(o, PCAPS / "dicom" / "find.pcap", 400),
}

# ---------------------------------------------------------------- the large ones (test time)


def synflood(out, n):
    """n SYNs to the PACS of dicom/echo.pcap (10.77.1.10:104) from n random sources."""
    _, _, recs = read_pcap(PCAPS / "dicom" / "echo.pcap")
    syn = next(Tcp(d) for _, _, _, d in recs if Tcp.parse(d) and Tcp.parse(d).flags == SYN)
    rng = random.Random(8)
    t0 = recs[0][0]
    # one template frame; only source address, port, sequence number and checksums change
    base = bytearray(syn.build())
    ip_off, tcp_off = 14, 14 + len(syn.ip)
    with open(out, "wb") as f:
        f.write(pcap_header())
        for i in range(n):
            src = struct.pack("!I", rng.getrandbits(32) | 0x01000000)
            base[ip_off + 12: ip_off + 16] = src
            struct.pack_into("!H", base, tcp_off, 1024 + rng.getrandbits(16) % 64511)
            struct.pack_into("!I", base, tcp_off + 4, rng.getrandbits(32))
            struct.pack_into("!H", base, ip_off + 10, 0)
            struct.pack_into("!H", base, ip_off + 10, csum(bytes(base[ip_off:tcp_off])))
            # TCP checksum left as in the template (not what a reader checks; saves time)
            f.write(struct.pack("<IIII", t0 + i // 100_000, i % 100_000 * 10, len(base), len(base)))
            f.write(base)


def dicom_assocs(out, n):
    """n short DICOM associations, each SYN, SYN-ACK, A-ASSOCIATE-RQ, A-ASSOCIATE-RJ, RST:
    the RQ and RJ bytes of dcmtk storescu -> storescp --refuse in dicom/reject.pcap, from n
    different client addresses and ports."""
    _, _, recs = read_pcap(PCAPS / "dicom" / "reject.pcap")
    segs = [Tcp(d) for _, _, _, d in recs if Tcp.parse(d)]
    rq = next(t for t in segs if t.payload[:1] == b"\x01" and t.dport == 104)
    rj = next(t for t in segs if t.payload[:1] == b"\x03" and t.sport == 104)
    cmac, smac = rq.eth[6:12], rq.eth[0:6]
    server = rq.dst
    rng = random.Random(9)
    t0 = recs[0][0]
    with open(out, "wb") as f:
        f.write(pcap_header())
        for i in range(n):
            client = struct.pack("!I", 0x0A000000 | (i + 1) % (1 << 24))
            cport = 1024 + rng.getrandbits(16) % 64511
            c, s = rng.getrandbits(32), rng.getrandbits(32)
            pkts = [
                eth_ipv4_tcp(cmac, smac, client, server, cport, 104, c, 0, SYN),
                eth_ipv4_tcp(smac, cmac, server, client, 104, cport, s, c + 1, SYN | ACK),
                eth_ipv4_tcp(cmac, smac, client, server, cport, 104, c + 1, s + 1, PSH | ACK, rq.payload),
                eth_ipv4_tcp(smac, cmac, server, client, 104, cport, s + 1, c + 1 + len(rq.payload), PSH | ACK, rj.payload),
                eth_ipv4_tcp(cmac, smac, client, server, cport, 104, c + 1 + len(rq.payload), 0, RST),
            ]
            sec, us = t0 + i // 10_000, (i % 10_000) * 100
            for k, p in enumerate(pkts):
                f.write(record(sec, us + k * 10, p))


def hl7_unterminated(out, mib):
    """One MLLP frame from the first ADT message of hl7/adt_oru_orm.pcap that goes on with OBX
    segments for `mib` MiB and never ends."""
    _, _, recs = read_pcap(PCAPS / "hl7" / "adt_oru_orm.pcap")
    segs = [Tcp(d) for _, _, _, d in recs if Tcp.parse(d)]
    first = next(t for t in segs if t.payload[:1] == b"\x0b")
    syn = next(t for t in segs if t.flags == SYN and t.dport == first.dport)
    synack = next(t for t in segs if t.flags == SYN | ACK and t.sport == first.dport)
    msg = first.payload.split(b"\x1c")[0]
    body = b"".join(b"OBX|%d|NM|8867-4^Heart rate^LN||%d|/min|||||F\r" % (i, 60 + i % 40) for i in range(1, 400))
    t0 = recs[0][0]
    with open(out, "wb") as f:
        f.write(pcap_header())
        for t in (syn, synack):
            f.write(record(t0, 0, t.build()))
        seq = first.seq()
        ring = body * 2
        total, i = 0, 0
        while total < mib << 20:
            if total < len(msg):
                chunk = (msg + body)[total: total + 1448]
            else:
                k = (total - len(msg)) % len(body)
                chunk = ring[k: k + 1448]
            t = Tcp(first.build())
            t.seq(seq)
            t.payload = chunk
            seq += len(chunk)
            total += len(chunk)
            i += 1
            f.write(record(t0 + i // 10_000, (i % 10_000) * 100, t.build()))
        t = Tcp(first.build())
        t.seq(seq)
        t.tcp[13] = FIN | ACK
        t.payload = b""
        f.write(record(t0 + i // 10_000 + 1, 0, t.build()))


def main(argv):
    if len(argv) >= 2 and argv[0] == "small":
        outdir = Path(argv[1])
        outdir.mkdir(parents=True, exist_ok=True)
        for name, fn in SMALL.items():
            fn(outdir / name)
            print(f"wrote {outdir / name}")
    elif len(argv) == 3 and argv[0] == "synflood":
        synflood(argv[1], int(argv[2]))
    elif len(argv) == 3 and argv[0] == "dicom_assocs":
        dicom_assocs(argv[1], int(argv[2]))
    elif len(argv) == 2 and argv[0] == "seq_wrap":
        tcp_seq_wrap(argv[1])
    elif len(argv) == 3 and argv[0] == "hl7_unterminated":
        hl7_unterminated(argv[1], int(argv[2]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
