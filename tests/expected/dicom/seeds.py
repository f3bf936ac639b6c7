#!/usr/bin/env python3
"""Cut the fuzz seed corpora for the DICOM fuzz targets from the real captures in pcaps/dicom.

    python3 tests/expected/dicom/seeds.py     # from the repository root; needs tshark

Writes parsers/fuzz/corpus/dicom_pdu/ (single PDUs, P-DATA bodies cut to 2 KiB),
dicom_dimse/ (command sets and data set prefixes) and dicom_assoc/ (whole small connections
in the dicom_assoc target's op format: op (1: bit 0 direction) len (2, BE) bytes).
"""
import hashlib
import struct
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PC = ROOT / "pcaps" / "dicom"
CORPUS = ROOT / "parsers" / "fuzz" / "corpus"
PORTS = {"echo": [104], "reject": [104, 4242], "abort": [104, 11112], "find": [11112],
         "move_get": [11112, 11113], "nonstd_port": [5678], "store": [104]}


def streams(name):
    """Yields, per TCP stream, the list of (direction, bytes) chunks in capture order."""
    f = PC / f"{name}.pcap"
    out = subprocess.run(["tshark", "-n", "-r", str(f), "-T", "fields", "-e", "tcp.stream"],
                         capture_output=True, text=True, check=True).stdout.split()
    for s in sorted({int(x) for x in out if x}):
        txt = subprocess.run(["tshark", "-n", "-r", str(f), "-q", "-z", f"follow,tcp,raw,{s}"],
                             capture_output=True, text=True, check=True).stdout
        chunks = []
        for line in txt.splitlines():
            h = line.strip()
            if not h or any(c not in "0123456789abcdef" for c in h):
                continue
            d = 1 if line.startswith("\t") else 0
            chunks.append((d, bytes.fromhex(line.strip())))
        if chunks:
            yield chunks


def pdus(data):
    off = 0
    while off + 6 <= len(data):
        n = struct.unpack(">I", data[off + 2:off + 6])[0]
        yield data[off:off + 6 + n]
        off += 6 + n


def put(target, blob):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(blob).hexdigest()[:16]).write_bytes(blob)


def main():
    for name in PORTS:
        for chunks in streams(name):
            per_dir = [b"".join(c for d, c in chunks if d == k) for k in (0, 1)]
            seen_types = set()
            for k in (0, 1):
                for p in pdus(per_dir[k]):
                    t = p[0]
                    if t == 4:
                        body = p[6:]
                        o = 0
                        while o + 6 <= len(body):
                            n = struct.unpack(">I", body[o:o + 4])[0]
                            v = body[o + 6:o + 4 + n]
                            if body[o + 5] & 1:
                                put("dicom_dimse", v)
                            elif (name, "data") not in seen_types:
                                seen_types.add((name, "data"))
                                put("dicom_dimse", v[:4096])
                            o += 4 + n
                        if (t, k) not in seen_types and len(p) <= 2048:
                            seen_types.add((t, k))
                            put("dicom_pdu", p)
                    elif (t, k) not in seen_types and len(p) <= 20000:
                        seen_types.add((t, k))
                        put("dicom_pdu", p)
            if name != "store":
                ops = b"".join(struct.pack(">BH", d, len(c)) + c for d, c in chunks if len(c) < 65536)
                if len(ops) <= 32768:
                    put("dicom_assoc", ops)


if __name__ == "__main__":
    sys.exit(main())
