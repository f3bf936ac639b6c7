#!/usr/bin/env python3
"""Seeds for the `pipeline` fuzz target, cut from the real captures in pcaps/ with tshark.

Each TCP connection of the chosen captures becomes one seed in the target's input layout (see
fuzz_targets/pipeline.rs): one flow, its server port, client port and ISNs, then one chunk per
segment with payload, in capture order, direction and FIN/RST flags as captured. A few seeds
pair two connections (interleaved) so that the table holds more than one flow. Segments are
kept up to SEED_MAX bytes per seed.

    python3 parsers/fuzz/seeds_pipeline.py        # writes parsers/fuzz/corpus/pipeline/
"""
import hashlib
import subprocess
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "parsers" / "fuzz" / "corpus" / "pipeline"
PORTS = [104, 11112, 2575, 443, 80, 4242, 6661, 40404]
SEED_MAX = 24 << 10
CAPTURES = sorted(
    [p for p in (ROOT / "pcaps" / "dicom").glob("*.pcap") if p.name != "tls.pcap"]
    + list((ROOT / "pcaps" / "hl7").glob("*.pcap"))
    + [ROOT / "pcaps" / "corpus" / "legacy" / n for n in ("arkime_openssl-tls1_2.pcap", "arkime_http-basicauth.pcap", "arkime_ftp.pcap", "ndpi_telnet.pcap")]
    + [ROOT / "pcaps" / "ooo_retrans.pcap"]
)


def streams(pcap):
    """{stream: [(src, sport, dport, seq_raw, flags, payload bytes)]} in capture order."""
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", "tcp", "-T", "fields", "-E", "separator=|",
         "-e", "tcp.stream", "-e", "ip.src", "-e", "ipv6.src", "-e", "tcp.srcport", "-e", "tcp.dstport",
         "-e", "tcp.seq_raw", "-e", "tcp.flags", "-e", "tcp.payload"],
        capture_output=True, text=True, check=True).stdout
    s = {}
    for line in out.splitlines():
        st, ip4, ip6, sp, dp, seq, flags, payload = line.split("|")
        s.setdefault(int(st), []).append(
            (ip4 or ip6, int(sp), int(dp), int(seq), int(flags, 16), bytes.fromhex(payload.replace(":", ""))))
    return s


def flow_header(pkts):
    first = pkts[0]
    syn = first[4] & 0x02 and not first[4] & 0x10
    client = first[0] if syn or first[2] < first[1] else None
    if client is None:
        client = first[0]
    cport = first[1] if first[0] == client else first[2]
    sport = first[2] if first[0] == client else first[1]
    isn = {True: 0, False: 0}
    for p in pkts:
        to_server = p[0] == client and p[1] == cport
        if isn[to_server] == 0:
            isn[to_server] = (p[3] + (1 if p[4] & 0x02 else 0)) & 0xFFFFFFFF
    choice = PORTS.index(sport) if sport in PORTS else 7
    # handshake flag only when the capture has the SYN: the target sends its own SYN/SYN-ACK
    hdr = struct.pack(">BHII", choice, cport, (isn[True] - 1) & 0xFFFFFFFF if syn else isn[True],
                      (isn[False] - 1) & 0xFFFFFFFF if syn else isn[False])
    hdr += bytes([1 if syn else 0])
    return hdr, client, cport


def chunks(pkts, client, cport, flow_index):
    out = []
    for p in pkts:
        to_server = p[0] == client and p[1] == cport
        fin, rst = p[4] & 0x01, p[4] & 0x04
        if not p[5] and not fin and not rst:
            continue
        op = flow_index | (0 if to_server else 4) | (8 if fin else 0) | (16 if rst else 0)
        out.append(struct.pack(">BH", op, len(p[5])) + p[5])
    return out


def write(seed):
    OUT.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha1(seed).hexdigest()[:16]
    (OUT / name).write_bytes(seed)


def main():
    singles = []
    for cap in CAPTURES:
        for _, pkts in sorted(streams(cap).items()):
            hdr, client, cport = flow_header(pkts)
            cs = chunks(pkts, client, cport, 0)
            if not cs:
                continue
            body, size = [], 0
            for c in cs:
                if size + len(c) > SEED_MAX:
                    break
                body.append(c)
                size += len(c)
            seed = bytes([0]) + hdr + b"".join(body)
            write(seed)
            singles.append((hdr, body))
    # pairs: two consecutive connections, chunks interleaved
    for (h1, b1), (h2, b2) in list(zip(singles, singles[1:]))[::3]:
        mixed = []
        for i in range(max(len(b1), len(b2))):
            if i < len(b1):
                mixed.append(b1[i])
            if i < len(b2):
                mixed.append(bytes([b2[i][0] | 1]) + b2[i][1:])
        seed = bytes([1]) + h1 + h2 + b"".join(mixed)[:SEED_MAX]
        write(seed)
    print(f"{len(list(OUT.iterdir()))} seeds in {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
