#!/usr/bin/env bash
# Regenerate tests/expected/hl7/<capture>.json from tshark's HL7 dissector (the oracle of
# tests/hl7.rs), for every capture in pcaps/hl7/:
#
#   bash tests/expected/hl7/make.sh
#
# Per capture, with N the server port of its first SYN (2575, or 12000 for nonstd_port):
#
#   tshark -n -r pcaps/hl7/<capture>.pcap -d tcp.port==N,hl7 -Y hl7 -T fields \
#     -E occurrence=a -E aggregator=$'\x1e' -e frame.number -e ip.src -e tcp.srcport \
#     -e ip.dst -e tcp.dstport -e hl7.segment
#
# Always with -d: on a port other than 2575 tshark's heuristic misses messages (on 12000 it
# decodes only the ACK). Each hl7.segment value is one segment, printed with a literal "\r"
# (backslash, r) at its end, which is removed. The MSH segment is split on its field separator
# (MSH-1, the character after "MSH"): part k is MSH-(k+1), as /work/shared/corpus/TSHARK.md
# says (hl7.field skips empty fields, so its indices shift and it is not used). MSA-1 and MSA-2
# come from the first MSA segment the same way. Segment ids are the text before the first field
# separator, so tshark's oddities stay visible (a segment starting with 0x0B shows as "\u000bMSH").
#
# Tested with tshark 4.0.17 (Debian 12). Needs tshark and python3.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
cd "$REPO"
VERSION=$(tshark --version 2>/dev/null | head -1)
for pcap in pcaps/hl7/*.pcap; do
  name=$(basename "$pcap" .pcap)
  port=$(tshark -n -r "$pcap" -Y 'tcp.flags.syn==1 && tcp.flags.ack==0' -T fields -e tcp.dstport 2>/dev/null | head -1)
  cmd="tshark -n -r $pcap -d tcp.port==$port,hl7 -Y hl7 -T fields -E occurrence=a -E aggregator=\$'\\x1e' -e frame.number -e ip.src -e tcp.srcport -e ip.dst -e tcp.dstport -e hl7.segment"
  tshark -n -r "$pcap" -d "tcp.port==$port,hl7" -Y hl7 -T fields -E occurrence=a -E aggregator=$'\x1e' \
      -e frame.number -e ip.src -e tcp.srcport -e ip.dst -e tcp.dstport -e hl7.segment 2>/dev/null |
    CAPTURE="$pcap" COMMAND="$cmd" VERSION="$VERSION" python3 -c '
import json, os, sys
out = {"capture": os.environ["CAPTURE"], "tshark": os.environ["VERSION"],
       "command": os.environ["COMMAND"], "messages": []}
for line in sys.stdin.buffer.read().decode("utf-8").split("\n"):
    if not line:
        continue
    frame, sip, sport, dip, dport, segs = line.split("\t", 5)
    segs = [s[:-2] if s.endswith("\\r") else s for s in segs.split("\x1e")]
    msh = segs[0]
    assert msh.startswith("MSH"), msh
    sep = msh[3]
    parts = msh.split(sep)
    m = {"frame": int(frame), "src": f"{sip}:{sport}", "dst": f"{dip}:{dport}",
         "msh": {f"MSH-{k + 1}": parts[k] if k < len(parts) else "" for k in range(2, 12)},
         "segments": [s.split(sep, 1)[0] for s in segs]}
    msa = next((s for s in segs if s.startswith("MSA" + sep)), None)
    if msa is not None:
        p = msa.split(sep)
        m["msa_1"] = p[1] if len(p) > 1 else ""
        m["msa_2"] = p[2] if len(p) > 2 else ""
    m["has_u_fffd"] = any("\ufffd" in s for s in segs)
    out["messages"].append(m)
json.dump(out, sys.stdout, indent=1, ensure_ascii=True)
print()
' >"$HERE/$name.json"
  echo "$name.json: $(grep -c '"frame"' "$HERE/$name.json") messages (port $port)"
done
