#!/usr/bin/env bash
# Regenerate tests/expected/hl7/<capture>.json from tshark's HL7 dissector (the oracle of
# tests/hl7.rs), for every capture in pcaps/hl7/:
#
#   bash tests/expected/hl7/make.sh
#
# Per capture, with one -d per server port N of its SYNs (2575, 12000 for nonstd_port, 6661+2575
# for pyhl7_hl7apy):
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
# Two more tshark 4.0.17 behaviours the oracle records rather than copies (pyhl7_hl7apy.pcap):
# - a last segment not ended by CR before the MLLP end block (python-hl7's mllp_send strips it,
#   and receivers accept it) is not shown as an hl7.segment at all, although it is in the TCP
#   payload (PID disappears: a PHI-bearing segment). The oracle reads the frame's tcp.payload and,
#   when the byte before 0x1C is not CR, puts that segment's id in "unterminated_last_segment";
#   tests/hl7.rs expects medtap's segments to be tshark's plus that one. When that segment is the
#   MSA (node-hl7-server's ACKs end so: node_batch.pcap), MSA-1/MSA-2 are read from it.
# - a batch (FHS/BHS first) gets no hl7.message.type from tshark; its header fields are taken
#   from the first MSH segment of the block (what medtap reports), and "batch" is set.
# MSH-9's components are joined with '^' whatever MSH-2's component separator is (medtap's
# message_type is "ADT^A01" also when the sender uses '!'; tshark's own hl7.message.type and
# hl7.event.type fields split it the same way).
#
# Tested with tshark 4.0.17 (Debian 12). Needs tshark and python3.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
cd "$REPO"
VERSION=$(tshark --version 2>/dev/null | head -1)
for pcap in pcaps/hl7/*.pcap; do
  name=$(basename "$pcap" .pcap)
  ports=$(tshark -n -r "$pcap" -Y 'tcp.flags.syn==1 && tcp.flags.ack==0' -T fields -e tcp.dstport 2>/dev/null | awk '!seen[$0]++')
  dargs=()
  for port in $ports; do dargs+=(-d "tcp.port==$port,hl7"); done
  cmd="tshark -n -r $pcap ${dargs[*]} -Y hl7 -T fields -E occurrence=a -E aggregator=\$'\\x1e' -e frame.number -e ip.src -e tcp.srcport -e ip.dst -e tcp.dstport -e hl7.segment -e tcp.payload"
  tshark -n -r "$pcap" "${dargs[@]}" -Y hl7 -T fields -E occurrence=a -E aggregator=$'\x1e' \
      -e frame.number -e ip.src -e tcp.srcport -e ip.dst -e tcp.dstport -e hl7.segment -e tcp.payload 2>/dev/null |
    CAPTURE="$pcap" COMMAND="$cmd" VERSION="$VERSION" python3 -c '
import json, os, sys
out = {"capture": os.environ["CAPTURE"], "tshark": os.environ["VERSION"],
       "command": os.environ["COMMAND"], "messages": []}
for line in sys.stdin.buffer.read().decode("utf-8").split("\n"):
    if not line:
        continue
    frame, sip, sport, dip, dport, segs, payload = line.split("\t", 6)
    segs = [s[:-2] if s.endswith("\\r") else s for s in segs.split("\x1e")]
    batch = segs[0][:3] in ("FHS", "BHS")
    msh = next(s for s in segs if s.startswith("MSH")) if batch else segs[0]
    assert msh.startswith("MSH"), msh
    sep = msh[3]
    parts = msh.split(sep)
    if len(parts) > 8 and len(parts[1]) > 0:
        parts[8] = "^".join(parts[8].split(parts[1][0]))
    m = {"frame": int(frame), "src": f"{sip}:{sport}", "dst": f"{dip}:{dport}",
         "msh": {f"MSH-{k + 1}": parts[k] if k < len(parts) else "" for k in range(2, 12)},
         "segments": [s.split(sep, 1)[0] for s in segs]}
    if batch:
        m["batch"] = True
    raw = bytes.fromhex(payload.replace(":", "").split("\x1e")[-1])
    end = raw.rfind(b"\x1c")
    last = None
    if end > 0 and raw[end - 1:end] != b"\r":
        last = raw[:end].rsplit(b"\r", 1)[-1].decode("latin-1")
        m["unterminated_last_segment"] = last[:3]
    msa = next((s for s in segs if s.startswith("MSA" + sep)), None)
    if msa is None and last is not None and last.startswith("MSA" + sep):
        msa = last  # the MSA tshark does not show (see above)
    if msa is not None:
        p = msa.split(sep)
        m["msa_1"] = p[1] if len(p) > 1 else ""
        m["msa_2"] = p[2] if len(p) > 2 else ""
    m["has_u_fffd"] = any("\ufffd" in s for s in segs)
    out["messages"].append(m)
json.dump(out, sys.stdout, indent=1, ensure_ascii=True)
print()
' >"$HERE/$name.json"
  echo "$name.json: $(grep -c '"frame"' "$HERE/$name.json") messages (ports $(echo $ports))"
done
