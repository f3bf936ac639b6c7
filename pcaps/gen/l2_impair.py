#!/usr/bin/env python3
"""Userspace link impairment bridge (a stand-in for `tc qdisc ... netem`, which this kernel lacks).

Forwards Ethernet frames between two interfaces (AF_PACKET raw sockets, both in the namespace this
runs in), like a transparent L2 cable, and impairs TCP frames in both directions:
  --loss P     drop the frame
  --dup P      send the frame twice
  --reorder P  hold the frame back; it goes out right AFTER the next frame of the same direction
               (an adjacent swap) or after --hold-ms if no frame follows
Everything else (ARP, ND, ICMP, UDP) passes untouched. Decisions come from a seeded RNG (--seed), so
a re-run makes the same decisions for the same frame sequence (timing still differs).
Runs until killed or --max-seconds; every loop is bounded.
"""
import argparse
import random
import select
import signal
import socket
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def is_tcp(frame: bytes) -> bool:
    if len(frame) < 14:
        return False
    et = int.from_bytes(frame[12:14], "big")
    if et == 0x0800 and len(frame) >= 34:
        return frame[23] == 6
    if et == 0x86DD and len(frame) >= 54:
        return frame[20] == 6
    return False


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--loss", type=float, default=0.02)
    ap.add_argument("--dup", type=float, default=0.03)
    ap.add_argument("--reorder", type=float, default=0.2)
    ap.add_argument("--hold-ms", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-seconds", type=float, default=300)
    ap.add_argument("--ready-file")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    socks = {}
    for name in (args.a, args.b):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((name, 0))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        socks[name] = s
    out = {args.a: socks[args.b], args.b: socks[args.a]}
    held = {args.a: None, args.b: None}  # per ingress side: (frame, deadline)
    stats = {"fwd": 0, "drop": 0, "dup": 0, "reorder": 0}
    if args.ready_file:
        open(args.ready_file, "w").write("ready\n")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        run(args, rng, socks, out, held, stats)
    finally:
        print(f"l2_impair: {stats}", file=sys.stderr)
    return 0


def run(args, rng, socks, out, held, stats):
    end = time.monotonic() + args.max_seconds
    fd2name = {s.fileno(): n for n, s in socks.items()}
    while time.monotonic() < end:
        now = time.monotonic()
        timeouts = [h[1] - now for h in held.values() if h]
        wait = max(0.0, min(timeouts)) if timeouts else 0.5
        r, _, _ = select.select(list(fd2name), [], [], wait)
        now = time.monotonic()
        for side, h in held.items():  # release held frames whose time is up
            if h and h[1] <= now:
                out[side].send(h[0])
                held[side] = None
        for fd in r:
            side = fd2name[fd]
            frame, addr = socks[side].recvfrom(65535)
            if addr[2] == PACKET_OUTGOING:
                continue
            if not is_tcp(frame):
                out[side].send(frame)
                stats["fwd"] += 1
                continue
            x = rng.random()
            if x < args.loss:
                stats["drop"] += 1
                continue
            copies = 2 if rng.random() < args.dup else 1
            stats["dup"] += copies - 1
            if held[side] is None and rng.random() < args.reorder:
                held[side] = (frame, now + args.hold_ms / 1000.0)
                stats["reorder"] += 1
                for _ in range(copies - 1):
                    out[side].send(frame)
                continue
            for _ in range(copies):
                out[side].send(frame)
            stats["fwd"] += 1
            if held[side] is not None:  # the held frame goes out after this one: a swap
                out[side].send(held[side][0])
                held[side] = None


if __name__ == "__main__":
    sys.exit(main())
