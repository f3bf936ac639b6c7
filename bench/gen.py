#!/usr/bin/env python3
"""Build the benchmark captures by multiplying real captures.

  python3 bench/gen.py [--out bench/out] [--corpus ../shared/corpus] [--seed 1] [--only bench|cstore]

Outputs (pcap, Ethernet, microsecond timestamps; bench/out/ is gitignored):
  bench.pcap   >= 1.5 M packets, ~2,000 hosts, ~100,000 flows: DICOM (dcmtk/pynetdicom captures in
               pcaps/dicom/), HL7 over MLLP (python-hl7 captures in pcaps/hl7/), TLS and HTTP from the
               shared corpus (non-GPL ones only) and pcaps/many_short_flows.pcap, interleaved over 300 s.
  cstore.pcap  ~400 k packets / ~500 MB dominated by DICOM C-STORE image transfer (pcaps/dicom/store.pcap),
               with a little C-ECHO and HL7 traffic around it.

How: every template capture is a "scenario" (its TCP/UDP flows over IPv4/IPv6; ARP, ICMP and other
packets are left out). A scenario is copied N times (the MIX tables below). Each copy maps each of
the template's IP addresses to a host of a fixed pool of 2,000 hosts (servers: 12 PACS, 6 HL7
engines, 32 web/DNS servers; 1,950 clients), takes a fresh client port for each of its flows from the
client host's own port counter (so every flow's 5-tuple is unique in the file), rewrites MAC and IP
addresses and ports, sets the IPv4 header and TCP/UDP checksums right (once per template packet, as some
templates were captured on the sending host with checksum offload; then incrementally per copy,
RFC 1624; an IPv4 UDP checksum of 0 stays 0), keeps TCP sequence numbers, IP ids and
payloads as they were (so each copy is a consistent TCP conversation), and starts at a random time in
the 300 s span keeping its own packet timing. All copies are then merged in time order.
Deterministic: fixed seed, fixed base time (2024-03-15 08:00:00 UTC); same inputs -> same bytes.
"""
import argparse
import os
import random
import struct
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BASE_TIME = 1710489600  # 2024-03-15 08:00:00 UTC
SPAN_S = 300.0

# (template, kind, copies). "corpus:" = the shared corpus (../shared/corpus); others are repo paths.
# kind picks the server pool for the template's server addresses.
BENCH_MIX = [
    ("pcaps/dicom/store.pcap", "dicom", 180),          # 1 flow, ~2,170 pkts, 2.9 MB: C-STORE x3
    ("pcaps/dicom/echo.pcap", "dicom", 3000),
    ("pcaps/dicom/find.pcap", "dicom", 1500),           # 2 flows
    ("pcaps/dicom/move_get.pcap", "dicom", 200),        # 3 flows, one of them PACS -> workstation
    ("pcaps/dicom/nonstd_port.pcap", "dicom", 400),     # 2 flows
    ("pcaps/dicom/reject.pcap", "dicom", 400),          # 2 flows
    ("pcaps/dicom/abort.pcap", "dicom", 400),           # 2 flows
    ("pcaps/dicom/tls.pcap", "dicom", 200),
    ("pcaps/hl7/adt_oru_orm.pcap", "hl7", 4000),        # 2 flows
    ("pcaps/hl7/nak.pcap", "hl7", 1500),
    ("pcaps/hl7/large_oru.pcap", "hl7", 200),
    ("pcaps/hl7/latin1.pcap", "hl7", 1500),
    ("pcaps/hl7/nonstd_port.pcap", "hl7", 1500),
    ("pcaps/hl7/missing_end_block.pcap", "hl7", 1000),
    ("pcaps/many_short_flows.pcap", "web", 190),        # ~330 flows: HTTP v4/v6, DNS, RST, keep-alive
    ("corpus:generic/ndpi_443-curl.pcap", "web", 600),
    ("corpus:generic/ndpi_443-firefox.pcap", "web", 60),
    ("corpus:generic/zeek_tls-1.2-handshake-failure.pcap", "web", 1500),
    ("corpus:legacy/arkime_openssl-tls1.pcap", "web", 1000),
    ("corpus:legacy/arkime_openssl-tls1_1.pcap", "web", 1000),
    ("corpus:legacy/arkime_openssl-tls1_2.pcap", "web", 2000),
    ("corpus:legacy/arkime_openssl-ssl3.pcap", "web", 300),
    ("corpus:legacy/zeek_signed_certificate_timestamp_tls1_0.pcap", "web", 1000),
    ("corpus:legacy/arkime_http-basicauth.pcap", "web", 3000),
    ("corpus:legacy/ndpi_http_auth.pcap", "web", 1500),
    ("corpus:legacy/zeek_http_basic-auth-with-colon.pcap", "web", 1500),  # raw IPv4 link type
]

CSTORE_MIX = [
    ("pcaps/dicom/store.pcap", "dicom", 180),
    ("pcaps/dicom/echo.pcap", "dicom", 400),
    ("pcaps/hl7/adt_oru_orm.pcap", "hl7", 150),
]

# host pool: index -> role; MAC OUIs (IEEE MA-L, as in Wireshark's manuf file)
N_HOSTS = 2000
POOLS = {"dicom": range(0, 12), "hl7": range(12, 18), "web": range(18, 50)}
CLIENTS = range(50, N_HOSTS)
OUI_SERVER = {"dicom": bytes.fromhex("001d4a"),   # Carestream Health (PACS)
              "hl7": bytes.fromhex("027702"),     # locally administered
              "web": bytes.fromhex("027703")}
OUI_CLIENT = [bytes.fromhex("444b5d"),  # GE Healthcare
              bytes.fromhex("001865"),  # Siemens Healthcare Diagnostics
              bytes.fromhex("0009fb"),  # Philips Patient Monitoring
              bytes.fromhex("5842e4"),  # Baxter International
              bytes.fromhex("00b094"),  # Alaris, Inc.
              bytes.fromhex("027704")]  # locally administered (workstations)


def host_mac(i):
    if i < 50:
        oui = next(OUI_SERVER[k] for k, r in POOLS.items() if i in r)
    else:
        oui = OUI_CLIENT[i % len(OUI_CLIENT)]
    return oui + struct.pack("!BH", 0x77, i)


def host_ip4(i):
    return bytes((10, 100, i // 250, i % 250 + 1))


def host_ip6(i):
    return bytes.fromhex("fd0077000100000000000000") + struct.pack("!I", i + 1)


# ------------------------------------------------------------------------------ reading pcap(ng)
def read_packets(path):
    """Yield (ts_us, linktype, bytes) from a pcap or pcapng file."""
    data = path.read_bytes()
    magic = data[:4]
    if magic == b"\x0a\x0d\x0d\x0a":
        yield from read_pcapng(data)
        return
    fmts = {b"\xd4\xc3\xb2\xa1": ("<", 1), b"\xa1\xb2\xc3\xd4": (">", 1),
            b"\x4d\x3c\xb2\xa1": ("<", 1000), b"\xa1\xb2\x3c\x4d": (">", 1000)}
    if magic not in fmts:
        raise SystemExit(f"{path}: not a pcap/pcapng file")
    e, div = fmts[magic]
    linktype = struct.unpack_from(e + "I", data, 20)[0] & 0x0FFFFFFF
    off, n = 24, len(data)
    hdr = struct.Struct(e + "IIII")
    while off + 16 <= n:
        sec, frac, incl, _orig = hdr.unpack_from(data, off)
        off += 16
        if off + incl > n:
            break
        yield sec * 1_000_000 + frac // div, linktype, data[off:off + incl]
        off += incl


def read_pcapng(data):
    off, n, e = 0, len(data), "<"
    ifaces = []  # (linktype, units per second)
    while off + 12 <= n:
        btype = struct.unpack_from(e + "I", data, off)[0]
        if btype == 0x0A0D0D0A:
            e = "<" if data[off + 8:off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            ifaces = []
        blen = struct.unpack_from(e + "I", data, off + 4)[0]
        if blen < 12 or off + blen > n:
            break
        body = data[off + 8:off + blen - 4]
        if btype == 1:  # IDB
            lt = struct.unpack_from(e + "H", body, 0)[0]
            res = 1_000_000
            o = 8
            while o + 4 <= len(body):
                code, ln = struct.unpack_from(e + "HH", body, o)
                if code == 0:
                    break
                if code == 9 and ln >= 1:
                    v = body[o + 4]
                    res = 2 ** (v & 0x7F) if v & 0x80 else 10 ** v
                o += 4 + ((ln + 3) & ~3)
            ifaces.append((lt, res))
        elif btype == 6 and len(body) >= 20:  # EPB
            iid, hi, lo, cap, _ = struct.unpack_from(e + "IIIII", body, 0)
            lt, res = ifaces[iid] if iid < len(ifaces) else (1, 1_000_000)
            ts = (hi << 32) | lo
            yield ts * 1_000_000 // res, lt, body[20:20 + cap]
        elif btype == 3 and ifaces and len(body) >= 4:  # SPB
            lt, _ = ifaces[0]
            yield 0, lt, body[4:]
        off += blen


def l3_of(linktype, pkt):
    """Return the IP packet inside a frame of the given link type, or None."""
    if linktype == 1:  # Ethernet, optional VLAN tags (dropped)
        off = 12
        et = struct.unpack_from("!H", pkt, off)[0] if len(pkt) >= 14 else 0
        while et in (0x8100, 0x88A8) and len(pkt) >= off + 6:
            off += 4
            et = struct.unpack_from("!H", pkt, off)[0]
        return pkt[off + 2:] if et in (0x0800, 0x86DD) else None
    if linktype in (101, 228, 229, 12, 14):  # raw IP
        return pkt
    if linktype == 113 and len(pkt) >= 16:  # Linux SLL
        return pkt[16:] if struct.unpack_from("!H", pkt, 14)[0] in (0x0800, 0x86DD) else None
    if linktype == 276 and len(pkt) >= 20:  # Linux SLL2
        return pkt[20:] if struct.unpack_from("!H", pkt, 0)[0] in (0x0800, 0x86DD) else None
    if linktype in (0, 108) and len(pkt) >= 4:  # BSD NULL / LOOP
        return pkt[4:]
    return None


def parse_ip(l3):
    """-> (ver, proto, src, dst, l4off, sport, dport, tcpflags, l3 trimmed) or None."""
    if len(l3) < 20:
        return None
    ver = l3[0] >> 4
    if ver == 4:
        ihl = (l3[0] & 15) * 4
        total = struct.unpack_from("!H", l3, 2)[0]
        frag = struct.unpack_from("!H", l3, 6)[0]
        if frag & 0x3FFF:  # fragments: left out
            return None
        proto = l3[9]
        src, dst = l3[12:16], l3[16:20]
        l4 = ihl
        if ihl <= total <= len(l3):
            l3 = l3[:total]  # drop Ethernet padding
    elif ver == 6:
        if len(l3) < 40:
            return None
        proto = l3[6]
        src, dst = l3[8:24], l3[24:40]
        l4 = 40
        plen = struct.unpack_from("!H", l3, 4)[0]
        if 40 + plen <= len(l3):
            l3 = l3[:40 + plen]
    else:
        return None
    if proto not in (6, 17) or len(l3) < l4 + 8:
        return None
    sport, dport = struct.unpack_from("!HH", l3, l4)
    flags = l3[l4 + 13] if proto == 6 and len(l3) > l4 + 13 else 0
    return ver, proto, src, dst, l4, sport, dport, flags, l3


def truncated_ok(l3, ver):
    """True when the whole IP packet was captured (snaplen did not cut it)."""
    if ver == 4:
        return struct.unpack_from("!H", l3, 2)[0] == len(l3)
    return struct.unpack_from("!H", l3, 4)[0] + 40 == len(l3)


class Scenario:
    """A template capture: its TCP/UDP flows, client/server decided per flow."""

    def __init__(self, path, kind):
        self.path, self.kind = path, kind
        flows = {}   # key -> flow index
        self.flows = []  # [client (ip, port), server (ip, port), ver, proto, saw_syn]
        pkts = []
        for ts, lt, frame in read_packets(path):
            l3 = l3_of(lt, frame)
            p = parse_ip(l3) if l3 is not None else None
            if p is None:
                continue
            ver, proto, src, dst, l4, sport, dport, flags, l3 = p
            if truncated_ok(l3, ver):
                l3 = fix_checksums(l3, ver, proto, l4)
            a, b = (src, sport), (dst, dport)
            key = (proto,) + ((a, b) if a <= b else (b, a))
            fi = flows.get(key)
            is_syn = proto == 6 and flags & 0x12 == 0x02
            if fi is None:
                fi = flows[key] = len(self.flows)
                self.flows.append([a, b, ver, proto, is_syn])
            elif is_syn and not self.flows[fi][4]:
                self.flows[fi][0], self.flows[fi][1], self.flows[fi][4] = a, b, True
            pkts.append((ts, fi, a, l3, l4))
        if not pkts:
            raise SystemExit(f"{path}: no TCP/UDP packets")
        t0 = min(p[0] for p in pkts)
        # (rel_us, flow, dir, l3, l4off); dir 0 = client -> server
        self.packets = [(ts - t0, fi, 0 if a == self.flows[fi][0] else 1, l3, l4)
                        for ts, fi, a, l3, l4 in pkts]
        self.duration_us = max(p[0] for p in self.packets)
        serving, using = {}, {}
        for c, s, *_ in self.flows:
            serving[s[0]] = serving.get(s[0], 0) + 1
            using[c[0]] = using.get(c[0], 0) + 1
        self.ips = sorted(set(serving) | set(using))
        self.server_ips = {ip for ip in self.ips if serving.get(ip, 0) > using.get(ip, 0)}


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def fix_checksums(l3, ver, proto, l4):
    """Template packets captured on the sending host (checksum offload) carry wrong checksums:
    set the right ones once, so that every copy is right after the incremental updates."""
    b = bytearray(l3)
    if ver == 4:
        b[10:12] = b"\0\0"
        struct.pack_into("!H", b, 10, csum(bytes(b[:l4])))
        pseudo = bytes(b[12:20]) + struct.pack("!BBH", 0, proto, len(b) - l4)
    else:
        pseudo = bytes(b[8:40]) + struct.pack("!IxxxB", len(b) - l4, proto)
    co = l4 + (16 if proto == 6 else 6)
    if co + 2 > len(b):
        return bytes(b)
    if ver == 4 and proto == 17 and b[co:co + 2] == b"\0\0":
        return bytes(b)  # IPv4 UDP without checksum stays without
    b[co:co + 2] = b"\0\0"
    c = csum(pseudo + bytes(b[l4:]))
    if proto == 17 and c == 0:
        c = 0xFFFF
    struct.pack_into("!H", b, co, c)
    return bytes(b)


def fold(x):
    x = (x & 0xFFFF) + (x >> 16)
    return (x & 0xFFFF) + (x >> 16)


def words(b):
    return [b[i] << 8 | b[i + 1] for i in range(0, len(b), 2)]


def delta(old, new):
    """One's-complement sum of ~old + new over 16-bit words (RFC 1624 eq. 3)."""
    s = 0
    for o, n in zip(words(old), words(new)):
        s += (~o & 0xFFFF) + n
    return fold(s)


class Generator:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.next_port = [20000 + (i * 7919) % 40000 for i in range(N_HOSTS)]
        self.hosts_used = set()

    def client_port(self, h):
        p = self.next_port[h]
        self.next_port[h] = 1024 if p >= 65535 else p + 1
        return p

    def pick(self, pool):
        return pool[self.rng.randrange(len(pool))]

    def copy_plan(self, sc):
        """Host mapping and per-flow rewrite data for one copy of a scenario."""
        hmap = {}
        for ip in sc.ips:
            pool = POOLS[sc.kind] if ip in sc.server_ips else CLIENTS
            hmap[ip] = self.pick(pool)
        self.hosts_used.update(hmap.values())
        plan = []
        for (cip, cport), (sip, sport), ver, proto, _ in sc.flows:
            ch, sh = hmap[cip], hmap[sip]
            ncport = self.client_port(ch)
            if ver == 4:
                nc, ns = host_ip4(ch), host_ip4(sh)
                et = b"\x08\x00"
            else:
                nc, ns = host_ip6(ch), host_ip6(sh)
                et = b"\x86\xdd"
            per_dir = []
            for d in (0, 1):
                if d == 0:
                    os_, od, ops, opd = cip, sip, cport, sport
                    ns_, nd, nps, npd = nc, ns, ncport, sport
                    eth = host_mac(sh) + host_mac(ch) + et
                else:
                    os_, od, ops, opd = sip, cip, sport, cport
                    ns_, nd, nps, npd = ns, nc, sport, ncport
                    eth = host_mac(ch) + host_mac(sh) + et
                d_ip = delta(os_ + od, ns_ + nd)
                d_l4 = fold(d_ip + delta(struct.pack("!HH", ops, opd), struct.pack("!HH", nps, npd)))
                per_dir.append((eth, ns_, nd, struct.pack("!HH", nps, npd), d_ip, d_l4))
            plan.append((ver, proto, per_dir))
        return plan

    def run(self, mix, out_path, repo, corpus):
        t_start = time.monotonic()
        scenarios = []
        for name, kind, copies in mix:
            path = corpus / name[7:] if name.startswith("corpus:") else repo / name
            if not path.exists():
                print(f"  warning: {path} missing, left out", file=sys.stderr)
                continue
            scenarios.append((Scenario(path, kind), copies, name))
        copies_list = []  # (scenario, plan)
        keys = []
        span = int(SPAN_S * 1e6)
        for sc, copies, _ in scenarios:
            for _ in range(copies):
                start = self.rng.randrange(max(1, span - sc.duration_us))
                ci = len(copies_list)
                copies_list.append((sc, self.copy_plan(sc)))
                keys.extend(((start + rel) << 40) | (ci << 20) | i
                            for i, (rel, *_rest) in enumerate(sc.packets))
        if len(copies_list) >= 1 << 20 or max(len(sc.packets) for sc, *_ in scenarios) >= 1 << 20:
            raise SystemExit("too many copies or packets per scenario for the sort key")
        keys.sort()
        n_flows = sum(len(sc.flows) * c for sc, c, _ in scenarios)

        pack_rec = struct.Struct("<IIII").pack
        unpack_h = struct.Struct("!H").unpack_from
        pack_h = struct.Struct("!H").pack_into
        n_bytes = 0
        tmp = out_path.with_suffix(".pcap.tmp")
        with open(tmp, "wb", buffering=1 << 22) as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
            buf = []
            mask20 = (1 << 20) - 1
            for k in keys:
                i = k & mask20
                ci = (k >> 20) & mask20
                ts = BASE_TIME * 1_000_000 + (k >> 40)
                sc, plan = copies_list[ci]
                _rel, fi, d, l3, l4 = sc.packets[i]
                ver, proto, per_dir = plan[fi]
                eth, nsrc, ndst, ports, d_ip, d_l4 = per_dir[d]
                b = bytearray(l3)
                if ver == 4:
                    b[12:16] = nsrc
                    b[16:20] = ndst
                    cs = unpack_h(b, 10)[0]
                    x = (~cs & 0xFFFF) + d_ip
                    x = (x & 0xFFFF) + (x >> 16)
                    pack_h(b, 10, ~((x & 0xFFFF) + (x >> 16)) & 0xFFFF)
                else:
                    b[8:24] = nsrc
                    b[24:40] = ndst
                b[l4:l4 + 4] = ports
                co = l4 + 16 if proto == 6 else l4 + 6
                if co + 2 <= len(b):
                    cs = unpack_h(b, co)[0]
                    if proto == 6 or cs != 0:
                        x = (~cs & 0xFFFF) + d_l4
                        x = (x & 0xFFFF) + (x >> 16)
                        cs = ~((x & 0xFFFF) + (x >> 16)) & 0xFFFF
                        if proto == 17 and cs == 0:
                            cs = 0xFFFF
                        pack_h(b, co, cs)
                n = 14 + len(b)
                n_bytes += n
                buf.append(pack_rec(ts // 1_000_000, ts % 1_000_000, n, n))
                buf.append(eth)
                buf.append(b)
                if len(buf) >= 30000:
                    f.write(b"".join(buf))
                    buf.clear()
            f.write(b"".join(buf))
        os.replace(tmp, out_path)
        took = time.monotonic() - t_start
        hosts = len(self.hosts_used)
        print(f"{out_path}: {len(keys)} packets, {n_flows} flows, {hosts} hosts, "
              f"{n_bytes / 1e6:.1f} MB of frames, {SPAN_S:.0f} s span, written in {took:.1f} s")
        for sc, c, name in scenarios:
            print(f"    {c:5d} x {name}  ({len(sc.flows)} flows, {len(sc.packets)} pkts)")
        return len(keys), n_flows, hosts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    ap.add_argument("--corpus", type=Path,
                    default=Path(os.environ.get("MEDTAP_CORPUS", REPO.parent / "shared" / "corpus")))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", choices=["bench", "cstore"])
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    if not a.corpus.is_dir():
        print(f"warning: corpus {a.corpus} not found; its templates are left out", file=sys.stderr)
    if a.only in (None, "bench"):
        Generator(a.seed).run(BENCH_MIX, a.out / "bench.pcap", REPO, a.corpus)
    if a.only in (None, "cstore"):
        Generator(a.seed + 1).run(CSTORE_MIX, a.out / "cstore.pcap", REPO, a.corpus)


if __name__ == "__main__":
    main()
