#!/usr/bin/env bash
# Generates pcaps/damaged/: captures that are deliberately broken, derived from a real capture made
# here (3 curl GETs against python3 http.server, HTTP/1.0, Ethernet, IPv4), plus a README that is
# not a capture at all (a folder walk must skip it, not fail on it).
#
#   client mtp-dmg-cli  dc0  02:00:5e:77:07:0a  10.77.7.10/24
#   server mtp-dmg-srv  ds0  02:00:5e:77:07:14  10.77.7.20/24
#
#   pcaps/damaged/truncated.pcap         the capture cut (head -c) in the middle of the data of record
#                                        TRUNC_AT (1-based): records before it are intact
#   pcaps/damaged/bad_record_header.pcap the whole capture, but record BAD_AT's header has its
#                                        captured length (incl_len) patched to 0xFFFF0000; every byte
#                                        after that header is unchanged
#   pcaps/damaged/README                 text describing the above, with the exact numbers
# Needs: iproute2 tcpdump ethtool python3 curl
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PCAPS=$(cd "$HERE/.." && pwd)
OUTDIR="$PCAPS/damaged"
TRUNC_AT=20
BAD_AT=8
# shellcheck source=netns_lib.sh
. "$HERE/netns_lib.sh"
need python3 curl

C=mtp-dmg-cli S=mtp-dmg-srv
ns_init "$C" "$S"
veth "$C" dc0 02:00:5e:77:07:0a "$S" ds0 02:00:5e:77:07:14
ip -n "$C" addr add 10.77.7.10/24 dev dc0
ip -n "$S" addr add 10.77.7.20/24 dev ds0
mkdir -p "$WORKDIR/www" "$OUTDIR"
python3 -c "import sys; sys.stdout.write(''.join('damaged-capture source line %03d\n' % i for i in range(40)))" >"$WORKDIR/www/data.txt"
spawn "$S" sh -c "exec python3 -m http.server -b 10.77.7.20 -d '$WORKDIR/www' 8080 >>'$WORKDIR/http.log' 2>&1"
wait_until "http 8080" 100 tcp_listening "$S" 8080
nsx "$C" ping -q -c 1 -W 2 10.77.7.20 >/dev/null

cap_start "$C" "$WORKDIR/src.pcap" -i dc0 tcp port 8080
for port in 42001 42002 42003; do
    nsx "$C" curl -sS --max-time 10 -o /dev/null --local-port "$port" http://10.77.7.20:8080/data.txt
done
cap_stop

python3 - "$WORKDIR/src.pcap" "$OUTDIR" "$TRUNC_AT" "$BAD_AT" <<'EOF'
import struct, sys
src, outdir, trunc_at, bad_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
data = open(src, "rb").read()
assert data[:4] == b"\xd4\xc3\xb2\xa1", "expected a little-endian microsecond pcap from tcpdump"
recs, off = [], 24
while off + 16 <= len(data):
    incl = struct.unpack_from("<I", data, off + 8)[0]
    recs.append((off, incl))
    off += 16 + incl
assert off == len(data) and len(recs) > trunc_at, (off, len(data), len(recs))
# truncated: cut in the middle of record TRUNC_AT's data
r_off, r_len = recs[trunc_at - 1]
cut = r_off + 16 + r_len // 2
open(f"{outdir}/truncated.pcap", "wb").write(data[:cut])
# bad record header: absurd incl_len in record BAD_AT
b_off, b_len = recs[bad_at - 1]
bad = bytearray(data)
struct.pack_into("<I", bad, b_off + 8, 0xFFFF0000)
open(f"{outdir}/bad_record_header.pcap", "wb").write(bytes(bad))
readme = f"""Damaged captures for the replay tests (made by pcaps/gen/damaged.sh; do not edit by hand).
This README is not a capture: a replay of this folder must skip it (and may count it as skipped),
not fail.

Source: a real tcpdump capture (pcap, little-endian, microsecond, LINKTYPE_ETHERNET, snaplen 262144)
of 3 curl GETs of /data.txt from python3 http.server, 10.77.7.10 -> 10.77.7.20:8080,
{len(recs)} records, {len(data)} bytes. The source file itself is not kept.

truncated.pcap
  The source cut after {cut} bytes: the 24-byte file header, records 1..{trunc_at - 1} intact,
  then record {trunc_at}'s 16-byte header (incl_len {r_len}) and only {r_len // 2} of its {r_len}
  data bytes. Expected: {trunc_at - 1} packets read, then a "cut short in the middle of a packet"
  condition, reported as damage, not as a failure.

bad_record_header.pcap
  The whole source ({len(data)} bytes), but the header of record {bad_at} (at file offset {b_off})
  has incl_len patched from {b_len} to 0xFFFF0000 (4294901760), far beyond the snaplen. Expected:
  {bad_at - 1} packets read, then an "invalid captured length" condition, reported as damage. Every
  byte after that record header is unchanged, so record {bad_at}'s data and the {len(recs) - bad_at} records
  after it are still there for a reader that tries to resynchronise.
"""
open(f"{outdir}/README", "w").write(readme)
print(f"records={len(recs)} truncated: {cut} bytes, {trunc_at - 1} whole records; bad header at record {bad_at}")
EOF
echo "wrote $OUTDIR/truncated.pcap $OUTDIR/bad_record_header.pcap $OUTDIR/README"
