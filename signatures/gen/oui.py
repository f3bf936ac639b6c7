#!/usr/bin/env python3
"""Convert the IEEE MAC registries (Debian package `ieee-data`) into the compact files
embedded by `parsers/src/oui.rs`.

    python3 signatures/gen/oui.py [/usr/share/ieee-data] [signatures/oui]

Input: oui.csv (MA-L, 24-bit prefixes), mam.csv (MA-M, 28-bit), oui36.csv (MA-S, 36-bit) and
iab.csv (IAB, the retired 36-bit registry), columns Registry,Assignment,Organization Name,...
Output, one file per prefix length, each line `PREFIX<TAB>ORGANIZATION`, sorted by PREFIX
(upper-case hex digits: 6, 7 or 9 of them), one line per prefix, no header, so that the reader
can binary-search the text as it is embedded:
    ma-l.tsv  ma-m.tsv  ma-s.tsv (MA-S and IAB together)
Organization names are whitespace-normalised and cut at 80 characters. The IEEE asserts no
copyright on these listings (see signatures/oui/README.md).
"""
import csv
import os
import re
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/ieee-data"
DST = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "oui")
MAX_ORG = 80
OUT = {"ma-l.tsv": (["oui.csv"], 6), "ma-m.tsv": (["mam.csv"], 7), "ma-s.tsv": (["oui36.csv", "iab.csv"], 9)}


def clean(org: str) -> str:
    org = re.sub(r"\s+", " ", org).strip()
    return org[:MAX_ORG].strip() or "(unnamed)"


for out, (inputs, digits) in OUT.items():
    table = {}
    for name in inputs:
        with open(os.path.join(SRC, name), newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                prefix = row["Assignment"].strip().upper()
                if len(prefix) != digits or not re.fullmatch(r"[0-9A-F]+", prefix):
                    raise SystemExit(f"{name}: bad assignment {prefix!r}")
                # Keep the first listing of a prefix (MA-S before the retired IAB list).
                table.setdefault(prefix, clean(row["Organization Name"]))
    with open(os.path.join(DST, out), "w", encoding="utf-8", newline="\n") as f:
        for prefix in sorted(table):
            f.write(f"{prefix}\t{table[prefix]}\n")
    print(f"{out}: {len(table)} prefixes")
