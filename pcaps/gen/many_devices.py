#!/usr/bin/env python3
"""Write a capture of N distinct devices, each repeating what three lab hosts of
pcaps/gen/inventory.sh did (frames cut from pcaps/inventory/inventory_{a,b}.pcap, made with real
software), under its own MAC and IPv4 address:

- the pump's DHCP DISCOVER/REQUEST (busybox udhcpc: host name, vendor class, parameter list,
  client id), with the host name made unique per device (PUMP-000042) and chaddr rewritten;
- the workstation's HTTPS and HTTP connections to the server (curl: SYN signature, JA3, JA4,
  User-Agent);
- the monitor's HL7 ORU^R01 over MLLP (MSH-3, MSH-4, OBX-18 device identifier);
- and, with --peers P, P short TCP exchanges (SYN, SYN+ACK, RST) with distinct public
  addresses behind the server's MAC (a gateway), which fill the device's peer list.

The devices' traffic is spread over time (one device every --spacing seconds) so that their
flows end and leave the flow table: what grows with N is the device inventory.

    python3 pcaps/gen/many_devices.py OUT.pcap N [--peers P] [--spacing S]

Used by tests/inventory.rs (the max_devices cap) and to measure the memory per device
(README, "Memory per device"). Python standard library only.
"""

import argparse
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostile import ACK, RST, SYN, Tcp, csum, eth_ipv4_tcp, read_pcap, write_pcap  # noqa: E402

PCAPS = Path(__file__).resolve().parent.parent
WS = bytes.fromhex("00065b740050")
MON = bytes.fromhex("00a037740041")
PUMP = bytes.fromhex("5842e4740060")
SRV = bytes.fromhex("001438740002")
HOSTNAME = b"PUMP-ICU-07"


def device_addr(i):
    """MAC (Dell OUI, as the lab's workstation) and a local IPv4 address for device i."""
    mac = WS[:3] + struct.pack("!I", i)[1:]
    a, b = divmod(i, 250)
    ip = bytes([10, 128 + (a >> 8), a & 0xFF, b + 1])
    return mac, ip


def templates(lab):
    """Frames of the three hosts, in capture order: [(kind, frame)]."""
    _, _, a = read_pcap(lab / "inventory_a.pcap")
    _, _, b = read_pcap(lab / "inventory_b.pcap")
    out = []
    for _, _, _, f in a:
        # The pump's own DHCP messages (not the server's replies, whose yiaddr is one address).
        if f[6:12] == PUMP and f[12:14] == b"\x08\x00" and f[23] == 17:
            out.append(("dhcp", f))
            break  # the DISCOVER carries every option; one is enough per device
    for _, _, _, f in b:
        if WS in (f[0:6], f[6:12]) and Tcp.parse(f):
            out.append(("ws", f))
        elif MON in (f[0:6], f[6:12]) and Tcp.parse(f):
            out.append(("mon", f))
    return out


def rewrite_tcp(f, old_mac, old_ip, mac, ip):
    t = Tcp(f)
    eth = bytearray(t.eth)
    if eth[0:6] == old_mac:
        eth[0:6] = mac
    if eth[6:12] == old_mac:
        eth[6:12] = mac
    if t.src == old_ip:
        t.ip[12:16] = ip
    if t.dst == old_ip:
        t.ip[16:20] = ip
    return t.build(bytes(eth))


def rewrite_dhcp(f, i, mac):
    f = bytearray(f)
    f[6:12] = mac
    ihl = (f[14] & 15) * 4
    udp = 14 + ihl
    bootp = udp + 8
    f[bootp + 28: bootp + 34] = mac  # chaddr
    body = bytes(f[bootp:])
    body = body.replace(HOSTNAME, b"PUMP-%06d" % i)
    body = body.replace(PUMP, mac)  # client identifier (01 + MAC)
    f[bootp:] = body
    struct.pack_into("!H", f, udp + 6, 0)  # no UDP checksum (allowed on IPv4)
    struct.pack_into("!H", f, 14 + 10, 0)
    struct.pack_into("!H", f, 14 + 10, csum(bytes(f[14:udp])))
    return bytes(f)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("n", type=int)
    ap.add_argument("--peers", type=int, default=0)
    ap.add_argument("--spacing", type=float, default=1.0)
    ap.add_argument("--lab", type=Path, default=PCAPS / "inventory", help="folder of inventory_{a,b}.pcap")
    args = ap.parse_args(argv)
    if not 1 <= args.n <= 1_000_000 or not 0 <= args.peers <= 65_000:
        sys.exit("many_devices.py: N must be 1..1000000 and --peers 0..65000")
    tmpl = templates(args.lab)
    kinds = {k for k, _ in tmpl}
    if kinds != {"dhcp", "ws", "mon"}:
        sys.exit(f"many_devices.py: templates missing from the lab captures (found {sorted(kinds)})")
    ws_ip = bytes([10, 74, 0, 50])
    mon_ip = bytes([10, 74, 0, 41])
    t0 = 1_800_000_000
    recs = []
    for i in range(args.n):
        mac, ip = device_addr(i)
        us = int(i * args.spacing * 1e6)
        for kind, f in tmpl:
            if kind == "dhcp":
                g = rewrite_dhcp(f, i, mac)
            elif kind == "ws":
                g = rewrite_tcp(f, WS, ws_ip, mac, ip)
            else:
                g = rewrite_tcp(f, MON, mon_ip, mac, ip)
            recs.append((t0 + us // 1_000_000, us % 1_000_000, len(g), g))
            us += 200
        for j in range(args.peers):
            peer = bytes([198, 18 + (j >> 16), (j >> 8) & 0xFF, j & 0xFF])
            sport = 20000 + j % 40000
            for src_mac, dst_mac, src, dst, sp, dp, flags in (
                (mac, SRV, ip, peer, sport, 443, SYN),
                (SRV, mac, peer, ip, 443, sport, SYN | ACK),
                (mac, SRV, ip, peer, sport, 443, RST),
            ):
                g = eth_ipv4_tcp(src_mac, dst_mac, src, dst, sp, dp, 1000, 0, flags)
                recs.append((t0 + us // 1_000_000, us % 1_000_000, len(g), g))
                us += 50
    write_pcap(args.out, recs)
    print(f"{args.out}: {args.n} devices, {len(recs)} frames")


if __name__ == "__main__":
    main(sys.argv[1:])
