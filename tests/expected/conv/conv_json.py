#!/usr/bin/env python3
"""Reads the output of make.sh's tshark command on stdin (TAP lines from conv_exact.lua, then
tshark's "-z conv,tcp" / "-z conv,udp" tables), builds exact conversation counts from the TAP lines
the way tshark's conversation table does, cross-checks them against the printed table and writes
the JSON list to stdout. argv[1] is the capture's name (for error messages)."""
import json
import re
import sys
from collections import Counter

name = sys.argv[1]
convs = {}  # (proto, stream, endpoint pair) -> record
order = []
table = {"tcp": [], "udp": []}
section = None
row = re.compile(r"^(\S+)\s+<->\s+(\S+)\s+(\d+) (\d+) (bytes|kB|MB|GB)\s+(\d+) (\d+) (bytes|kB|MB|GB)\s+"
                 r"(\d+) (\d+) (bytes|kB|MB|GB)\s+-?[\d.]+\s+-?[\d.]+\s*$")


def ep(addr, port):
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


for line in sys.stdin:
    line = line.rstrip("\n")
    if line.startswith("TAP\t"):
        _, proto, stream, _frame, flen, src, sport, dst, dport = line.split("\t")
        s, d = ep(src, sport), ep(dst, dport)
        key = (proto, int(stream), frozenset((s, d)))
        c = convs.get(key)
        if c is None:
            c = {"proto": proto, "a": s, "b": d, "packets_a_to_b": 0, "bytes_a_to_b": 0,
                 "packets_b_to_a": 0, "bytes_b_to_a": 0}
            convs[key] = c
            order.append(key)
        if s == c["a"] and d == c["b"]:
            c["packets_a_to_b"] += 1
            c["bytes_a_to_b"] += int(flen)
        else:
            c["packets_b_to_a"] += 1
            c["bytes_b_to_a"] += int(flen)
        continue
    if line in ("TCP Conversations", "UDP Conversations"):
        section = line.split()[0].lower()
        continue
    m = row.match(line)
    if m and section:
        a, b = m.group(1), m.group(2)
        # tshark prints "addr:port" even for IPv6: split at the last colon
        a = ep(*a.rsplit(":", 1))
        b = ep(*b.rsplit(":", 1))
        # columns: "<-" (B to A), "->" (A to B), total
        table[section].append((a, b, int(m.group(6)), int(m.group(7)), m.group(8),
                               int(m.group(3)), int(m.group(4)), m.group(5)))

UNIT = {"bytes": 1, "kB": 1000, "MB": 1000 ** 2, "GB": 1000 ** 3}


def bytes_match(exact, shown, unit):
    if unit == "bytes":
        return exact == shown
    q = exact / UNIT[unit]
    return int(q) == shown or round(q) == shown


errors = []
for proto in ("tcp", "udp"):
    mine = Counter((c["a"], c["b"], c["packets_a_to_b"], c["packets_b_to_a"])
                   for k, c in convs.items() if k[0] == proto)
    theirs = Counter((a, b, fab, fba) for a, b, fab, _, _, fba, _, _ in table[proto])
    if mine != theirs:
        errors.append(f"{proto}: conversations/frames differ from tshark's table: "
                      f"only in tap: {list((mine - theirs).elements())[:5]} "
                      f"only in table: {list((theirs - mine).elements())[:5]}")
        continue
    pool = {}
    for a, b, fab, bab, uab, fba, bba, uba in table[proto]:
        pool.setdefault((a, b, fab, fba), []).append((bab, uab, bba, uba))
    for k, c in convs.items():
        if k[0] != proto:
            continue
        cands = pool[(c["a"], c["b"], c["packets_a_to_b"], c["packets_b_to_a"])]
        for i, (bab, uab, bba, uba) in enumerate(cands):
            if bytes_match(c["bytes_a_to_b"], bab, uab) and bytes_match(c["bytes_b_to_a"], bba, uba):
                cands.pop(i)
                break
        else:
            errors.append(f"{proto}: bytes of {c['a']} <-> {c['b']} ({c['bytes_a_to_b']}/{c['bytes_b_to_a']}) "
                          f"do not match tshark's table {cands}")
# A UDP 5-tuple is one conversation unless a dissector split it into several streams (tshark 4.0's
# SNMP dissector does that to every request/response pair, hence --disable-protocol snmp in make.sh).
# TCP may legitimately reuse a 5-tuple for a new connection (a new tcp.stream).
seen = Counter((k[0], k[2]) for k in convs)
for (proto, pair), n in seen.items():
    if n > 1:
        msg = f"{proto} endpoints {sorted(pair)} are split over {n} tshark streams"
        if proto == "udp":
            errors.append(msg + " (a dissector created extra conversations: disable it in make.sh)")
        else:
            print(f"{name}: note: {msg} (port reuse)", file=sys.stderr)
if errors:
    sys.exit(f"{name}: " + "; ".join(errors))

items = [json.dumps(convs[k]) for k in order]
sys.stdout.write("[\n" + ",\n".join("  " + s for s in items) + "\n]\n" if items else "[]\n")
