#!/usr/bin/env python3
"""Userspace 802.1Q / 802.1ad (QinQ) trunk between two namespaces.

This kernel has no 8021q module (CONFIG_VLAN_8021Q is not set), so `ip link add ... type vlan`
cannot make VLAN subinterfaces. This program plays the part of the subinterfaces on both ends of a
trunk link:

  namespace ns1: TAP "<name>" per VLAN port  <->  [this program]  <->  trunk veth end 1 (own netns)
  namespace ns2: TAP "<name>" per VLAN port  <->  [this program]  <->  trunk veth end 2 (own netns)

A frame the kernel sends out of a TAP in ns1 gets the port's tag(s) pushed and is written to trunk
end 1; it crosses the veth; the copy received on trunk end 2 is matched on its tag(s), the tags are
popped and the frame is handed to the TAP of the same port in ns2 (and the reverse way). The IP
stacks, ping, socat, MLD etc. in ns1/ns2 are the kernel's own; a tcpdump on a trunk end shows real
tagged frames.

Ports (--port, repeatable):  VID=NAME          one 802.1Q tag (TPID 0x8100)
                             SVID.CVID=NAME    802.1ad outer tag (TPID 0x88a8) + 802.1Q inner tag
--span-dup-udp-port N: frames carrying IPv4/IPv6 UDP to or from port N are ALSO written to the
trunk untagged (a second copy right after the tagged one), the way a SPAN session that mirrors both
an access port and its trunk delivers every packet twice. The receiving end drops untagged frames.

The kernel strips the outer tag of a received frame into metadata (skb vlan_tci) before packet
sockets see it; it is read back with PACKET_AUXDATA, just as libpcap does.
Runs until killed or --max-seconds; TAPs vanish when it exits. Run it inside the trunk namespace.
"""
import argparse
import ctypes
import fcntl
import os
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_OUTGOING = 4
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000

libc = ctypes.CDLL(None, use_errno=True)


def setns(path_or_fd):
    fd = os.open(path_or_fd, os.O_RDONLY) if isinstance(path_or_fd, str) else path_or_fd
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), f"setns {path_or_fd}")
    if isinstance(path_or_fd, str):
        os.close(fd)


def open_tap(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def parse_port(spec: str):
    vids, name = spec.split("=", 1)
    parts = [int(v) for v in vids.split(".")]
    if len(parts) == 1:
        tags = ((0x8100, parts[0]),)
    elif len(parts) == 2:
        tags = ((0x88A8, parts[0]), (0x8100, parts[1]))
    else:
        raise SystemExit(f"bad --port {spec}")
    return tags, name


def push_tags(frame: bytes, tags) -> bytes:
    hdr = b"".join(struct.pack("!HH", tpid, vid & 0x0FFF) for tpid, vid in tags)
    return frame[:12] + hdr + frame[12:]


def pop_tags(frame: bytes, first):
    """Returns (tags, untagged frame). `first` is the tag the kernel moved into metadata, if any."""
    tags = [first] if first else []
    while len(frame) >= 18 and int.from_bytes(frame[12:14], "big") in (0x8100, 0x88A8) and len(tags) < 4:
        tags.append((int.from_bytes(frame[12:14], "big"), int.from_bytes(frame[14:16], "big") & 0x0FFF))
        frame = frame[:12] + frame[16:]
    return tuple(tags), frame


def udp_ports(frame: bytes):
    et = int.from_bytes(frame[12:14], "big")
    if et == 0x0800 and len(frame) >= 38 and frame[23] == 17:
        if int.from_bytes(frame[20:22], "big") & 0x1FFF:  # non-first fragment: no UDP header
            return ()
        ihl = (frame[14] & 0x0F) * 4
        o = 14 + ihl
        return (int.from_bytes(frame[o:o + 2], "big"), int.from_bytes(frame[o + 2:o + 4], "big"))
    if et == 0x86DD and len(frame) >= 62 and frame[20] == 17:
        return (int.from_bytes(frame[54:56], "big"), int.from_bytes(frame[56:58], "big"))
    return ()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ns1", required=True, help="netns name of side 1 (TAPs are created there)")
    ap.add_argument("--ns2", required=True)
    ap.add_argument("--trunk1", required=True, help="trunk veth end for side 1, in this netns")
    ap.add_argument("--trunk2", required=True)
    ap.add_argument("--port", action="append", required=True)
    ap.add_argument("--span-dup-udp-port", type=int)
    ap.add_argument("--max-seconds", type=float, default=300)
    ap.add_argument("--ready-file")
    args = ap.parse_args()

    ports = [parse_port(p) for p in args.port]
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    taps = {1: {}, 2: {}}  # side -> tags -> fd
    for side, ns in ((1, args.ns1), (2, args.ns2)):
        setns(f"/run/netns/{ns}")
        for tags, name in ports:
            taps[side][tags] = open_tap(name)
        setns(home)
    trunk = {}
    for side, ifname in ((1, args.trunk1), (2, args.trunk2)):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        s.bind((ifname, 0))
        trunk[side] = s
    if args.ready_file:
        open(args.ready_file, "w").write("ready\n")

    stats = {"to_trunk": 0, "from_trunk": 0, "span_dup": 0, "dropped": 0}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    readers = {}
    for side in (1, 2):
        readers[trunk[side].fileno()] = ("trunk", side, None)
        for tags, fd in taps[side].items():
            readers[fd] = ("tap", side, tags)
    end = time.monotonic() + args.max_seconds
    try:
        while time.monotonic() < end:
            r, _, _ = select.select(list(readers), [], [], 0.5)
            for fd in r:
                kind, side, tags = readers[fd]
                if kind == "tap":
                    frame = os.read(fd, 65535)
                    trunk[side].send(push_tags(frame, tags))
                    stats["to_trunk"] += 1
                    if args.span_dup_udp_port and args.span_dup_udp_port in udp_ports(frame):
                        trunk[side].send(frame)
                        stats["span_dup"] += 1
                    continue
                data, anc, _flags, addr = trunk[side].recvmsg(65535, socket.CMSG_SPACE(20))
                if addr[2] == PACKET_OUTGOING:
                    continue
                first = None
                for level, typ, val in anc:
                    if level == SOL_PACKET and typ == PACKET_AUXDATA and len(val) >= 20:
                        status, _l, _s, _m, _n, tci, tpid = struct.unpack("IIIHHHH", val[:20])
                        if status & TP_STATUS_VLAN_VALID:
                            first = (tpid if status & TP_STATUS_VLAN_TPID_VALID else 0x8100, tci & 0x0FFF)
                got, frame = pop_tags(data, first)
                out = taps[side].get(got)  # arrived at trunk end `side`: goes to that side's TAP
                if out is None:
                    stats["dropped"] += 1
                    continue
                try:
                    os.write(out, frame)
                    stats["from_trunk"] += 1
                except OSError:  # EIO while that TAP is still down
                    stats["dropped"] += 1
    finally:
        print(f"l2_vlan_trunk: {stats}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
