#!/usr/bin/env bash
# Generates pcaps/ooo_retrans.pcap (Ethernet) and pcaps/ooo_retrans.streams.tsv.
#
# TCP bulk transfers through an impaired link (reordering, duplication and loss in both directions).
# This kernel has no sch_netem (CONFIG_NET_SCH_NETEM is not set), so the impairment is done by
# pcaps/gen/l2_impair.py, a userspace transparent L2 bridge in a middle namespace (AF_PACKET sockets
# on two veths) that drops 2%, duplicates 3% and swaps 20% of the TCP frames with the next frame
# (seeded RNG), i.e. the `netem loss/duplicate/reorder` recipe. The TCP stacks, curl, python
# http.server and nc are real; the capture is real tcpdump, taken on the RECEIVER side of each
# transfer: the downloads on the client's interface (tcpdump filter "not tcp port 9000"), the
# upload on the server's interface ("tcp port 9000"), merged in time order with mergecap. So every
# frame in the file is as the receiving host saw it (netem-lost segments are absent at the
# receiver; their retransmissions are present).
#
#   client mtp-oo-cli  oc0  02:00:5e:77:02:0a  10.77.2.10/24  fd00:77:2::10/64
#   server mtp-oo-srv  os0  02:00:5e:77:02:14  10.77.2.20/24  fd00:77:2::20/64
#   bridge mtp-oo-mid  oc0p <-> os0p (no addresses, IPv6 off)
#
# Transfers (fixed client ports, deterministic content: python random.Random(seed).randbytes(n)):
#   1. curl 10.77.2.10:40001 -> 10.77.2.20:8080  GET /img1.bin  204800 bytes body (seed 1)
#   2. curl 10.77.2.10:40002 -> 10.77.2.20:8080  GET /img2.bin  204800 bytes body (seed 2)
#   3. curl [fd00:77:2::10]:40003 -> [fd00:77:2::20]:8080  GET /img3.bin  204800 bytes (seed 3)
#   4. nc   10.77.2.10:40100 -> 10.77.2.20:9000  upload 102400 bytes client->server (seed 4), no reply
# HTTP is python3 -m http.server (HTTP/1.0: headers then body, server closes).
# sha256 of the bodies (identical on every run since the content is seeded; the script checks the
# received copies against them and fails otherwise):
#   img1.bin    204800  cfbce2ebe39c996b2a31a68f8397a32c9eef1e83da93ee4378fa8633bf1958f8
#   img2.bin    204800  e58646977c84fd6ed6cdc94bf9a8790a56b537e3ba332703f8889b572451d306
#   img3.bin    204800  418f61d40769787033d16ebd7c0e46fccb287b9fc3d392b0097072c97f0f039b
#   upload.bin  102400  d9d4e7e331da767c7c8088f7b2f1f653d57abdb631e487adce87adb61ae98208
# The full sha256 values, and the sha256 of each whole reassembled TCP stream per direction (HTTP
# headers included, as tshark's "follow,tcp,raw" reassembles it), are written by this script to
# pcaps/ooo_retrans.streams.tsv.
#
# tshark counts in the committed capture (a re-run changes them: the timing, hence what is impaired, differs):
#   packets=938 out_of_order=89 retransmission=34 fast_retransmission=10 spurious_retransmission=15 duplicate_ack=141 lost_segment=95
# Needs: iproute2 tcpdump ethtool python3 curl netcat-openbsd tshark
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PCAPS=$(cd "$HERE/.." && pwd)
OUT="$PCAPS/ooo_retrans.pcap"
TSV="$PCAPS/ooo_retrans.streams.tsv"
# shellcheck source=netns_lib.sh
. "$HERE/netns_lib.sh"
need python3 curl nc.openbsd tshark mergecap

C=mtp-oo-cli S=mtp-oo-srv M=mtp-oo-mid
ns_init "$C" "$S" "$M"
nsx "$M" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
veth "$C" oc0 02:00:5e:77:02:0a "$M" oc0p 02:00:5e:77:02:fa
veth "$S" os0 02:00:5e:77:02:14 "$M" os0p 02:00:5e:77:02:fb
ip -n "$M" link set oc0p promisc on
ip -n "$M" link set os0p promisc on
ip -n "$C" addr add 10.77.2.10/24 dev oc0
ip -n "$C" addr add fd00:77:2::10/64 dev oc0 nodad
ip -n "$S" addr add 10.77.2.20/24 dev os0
ip -n "$S" addr add fd00:77:2::20/64 dev os0 nodad

mkdir -p "$WORKDIR/www" "$WORKDIR/got"
mkfile() { python3 -c "import random,sys; sys.stdout.buffer.write(random.Random($2).randbytes($3))" >"$1"; }
mkfile "$WORKDIR/www/img1.bin" 1 204800
mkfile "$WORKDIR/www/img2.bin" 2 204800
mkfile "$WORKDIR/www/img3.bin" 3 204800
mkfile "$WORKDIR/upload.bin" 4 102400

spawn "$S" sh -c "exec python3 -m http.server -b :: -d '$WORKDIR/www' 8080 >>'$WORKDIR/http.log' 2>&1"
wait_until "http 8080" 100 tcp_listening "$S" 8080
spawn "$M" python3 "$HERE/l2_impair.py" --a oc0p --b os0p --loss 0.02 --dup 0.03 --reorder 0.2 \
    --hold-ms 3 --seed 7 --max-seconds 240 --ready-file "$WORKDIR/impair.ready"
wait_until "l2_impair" 100 test -e "$WORKDIR/impair.ready"
wait_until "ping v4 through bridge" 50 nsx "$C" ping -q -c 1 -W 1 10.77.2.20
wait_until "ping v6 through bridge" 50 nsx "$C" ping -6 -q -c 1 -W 1 fd00:77:2::20

cap_start "$C" "$WORKDIR/down.pcap" -i oc0 not tcp port 9000
CAP_DOWN=$CAP_PID
cap_start "$S" "$WORKDIR/up.pcap" -i os0 tcp port 9000

nsx "$C" curl -sS --max-time 60 --local-port 40001 -o "$WORKDIR/got/img1.bin" http://10.77.2.20:8080/img1.bin
nsx "$C" curl -sS --max-time 60 --local-port 40002 -o "$WORKDIR/got/img2.bin" http://10.77.2.20:8080/img2.bin
nsx "$C" curl -sS --max-time 60 -g --local-port 40003 -o "$WORKDIR/got/img3.bin" "http://[fd00:77:2::20]:8080/img3.bin"

spawn "$S" sh -c "exec timeout 60 nc.openbsd -l -s 10.77.2.20 -p 9000 >'$WORKDIR/got/upload.bin'"
UPLOAD_SRV=$LAST_PID
wait_until "nc 9000" 100 tcp_listening "$S" 9000
nsx "$C" timeout 60 nc.openbsd -N -s 10.77.2.10 -p 40100 10.77.2.20 9000 <"$WORKDIR/upload.bin"
wait "$UPLOAD_SRV"

cap_stop
CAP_PID=$CAP_DOWN cap_stop
mergecap -F pcap -w "$OUT" "$WORKDIR/down.pcap" "$WORKDIR/up.pcap"

for f in img1.bin img2.bin img3.bin; do
    cmp "$WORKDIR/www/$f" "$WORKDIR/got/$f"
done
cmp "$WORKDIR/upload.bin" "$WORKDIR/got/upload.bin"

# Per TCP stream: the bytes each side sent, as tshark reassembles them (follow,tcp,raw).
python3 - "$OUT" "$WORKDIR" >"$TSV" <<'EOF'
import hashlib, subprocess, sys
pcap, work = sys.argv[1], sys.argv[2]
bodies = {40001: "www/img1.bin", 40002: "www/img2.bin", 40003: "www/img3.bin", 40100: "upload.bin"}
def sh(p):
    return hashlib.sha256(open(f"{work}/{p}", "rb").read()).hexdigest()
out = subprocess.run(["tshark", "-n", "-r", pcap, "-T", "fields", "-e", "tcp.stream", "-Y", "tcp.flags.syn==1 && tcp.flags.ack==0"],
                     capture_output=True, text=True, check=True).stdout.split()
print("stream\tclient\tserver\tc2s_bytes\tc2s_sha256\ts2c_bytes\ts2c_sha256\tbody\tbody_bytes\tbody_sha256")
for st in sorted(set(int(x) for x in out)):
    txt = subprocess.run(["tshark", "-n", "-q", "-r", pcap, "-z", f"follow,tcp,raw,{st}"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    nodes, c2s, s2c, in_data = [], bytearray(), bytearray(), False
    for line in txt:
        if line.startswith("Node 0:") or line.startswith("Node 1:"):
            nodes.append(line.split(": ", 1)[1]); in_data = True; continue
        if line.startswith("====") or not in_data or not line.strip():
            continue
        (s2c if line.startswith("\t") else c2s).extend(bytes.fromhex(line.strip()))
    cport = int(nodes[0].rsplit(":", 1)[1])
    body = bodies.get(cport)
    data = s2c if cport != 40100 else c2s
    if body:
        raw = open(f"{work}/{body}", "rb").read()
        assert data.endswith(raw), f"stream {st}: reassembled bytes do not end with {body}"
    print(f"{st}\t{nodes[0]}\t{nodes[1]}\t{len(c2s)}\t{hashlib.sha256(c2s).hexdigest()}\t{len(s2c)}\t{hashlib.sha256(s2c).hexdigest()}\t"
          f"{body.rsplit('/',1)[-1] if body else ''}\t{len(open(f'{work}/{body}','rb').read()) if body else ''}\t{sh(body) if body else ''}")
EOF

count() { tshark -n -r "$OUT" -Y "$1" 2>/dev/null | wc -l; }
COUNTS="packets=$(count frame) out_of_order=$(count tcp.analysis.out_of_order) retransmission=$(count tcp.analysis.retransmission) fast_retransmission=$(count tcp.analysis.fast_retransmission) spurious_retransmission=$(count tcp.analysis.spurious_retransmission) duplicate_ack=$(count tcp.analysis.duplicate_ack) lost_segment=$(count tcp.analysis.lost_segment)"
echo "wrote $OUT: $COUNTS"
echo "wrote $TSV"
# record the counts of this run in the header comment above
sed -i "s|^#   COUNTS_PLACEHOLDER\$|#   $COUNTS|; s|^#   packets=.*out_of_order=.*\$|#   $COUNTS|" "$HERE/ooo_retrans.sh"
