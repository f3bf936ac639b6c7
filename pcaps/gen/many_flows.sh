#!/usr/bin/env bash
# Generates pcaps/many_short_flows.pcap (Ethernet, IPv4 + IPv6 on one veth link).
#
# Two namespaces joined by a veth pair, captured on the client end:
#   client mtp-mf-cli  mfc0  02:00:5e:77:01:0a  10.77.1.10/24  fd00:77:1::10/64
#   server mtp-mf-srv  mfs0  02:00:5e:77:01:14  10.77.1.20/24  fd00:77:1::20/64
# Server runs: python3 -m http.server on 8080 (HTTP/1.0, one request per connection) and on 8081
# (HTTP/1.1, keep-alive), dnsmasq on 53/udp (v4+v6); TCP 9 and UDP 9999 are closed.
# Client runs (all bounded loops):
#   - 150 curl GETs over IPv4 and 90 over IPv6 to :8080 (every 10th asks for a missing file -> 404)
#   - 30 (IPv4) + 20 (IPv6) curl connects to closed TCP port 9 -> SYN answered by RST
#   - 4 curl keep-alive sessions to :8081 (2 IPv4, 2 IPv6), 5 GETs each on one connection
#   - 20 dig queries over IPv4 and 10 over IPv6 to dnsmasq (A/AAAA; some NXDOMAIN)
#   - 5 + 5 UDP datagrams (socat) to closed UDP port 9999 -> ICMP / ICMPv6 port unreachable
#   - ping -c 4 over IPv4 and ping -6 -c 4 over IPv6
# The server's ICMP rate limit is switched off so every closed-port datagram gets its unreachable.
# Needs: iproute2 tcpdump ethtool python3 curl dnsmasq dnsutils(dig) socat iputils-ping
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT="$(cd "$HERE/.." && pwd)/many_short_flows.pcap"
# shellcheck source=netns_lib.sh
. "$HERE/netns_lib.sh"
need python3 curl dnsmasq dig socat ping

C=mtp-mf-cli S=mtp-mf-srv
ns_init "$C" "$S"
veth "$C" mfc0 02:00:5e:77:01:0a "$S" mfs0 02:00:5e:77:01:14
ip -n "$C" addr add 10.77.1.10/24 dev mfc0
ip -n "$C" addr add fd00:77:1::10/64 dev mfc0 nodad
ip -n "$S" addr add 10.77.1.20/24 dev mfs0
ip -n "$S" addr add fd00:77:1::20/64 dev mfs0 nodad
nsx "$S" sysctl -qw net.ipv4.icmp_ratelimit=0
nsx "$S" sysctl -qw net.ipv6.icmp.ratelimit=0

# web root with small deterministic files
mkdir -p "$WORKDIR/www"
for i in 0 1 2 3 4; do
    python3 -c "import sys; sys.stdout.write(''.join('medtap test file %d line %d\n' % ($i, n) for n in range(1 + 4 * $i)))" \
        >"$WORKDIR/www/f$i.txt"
done
echo '<html><body>medtap</body></html>' >"$WORKDIR/www/index.html"

spawn "$S" sh -c "exec python3 -m http.server -b :: -d '$WORKDIR/www' 8080 >>'$WORKDIR/http.log' 2>&1"
spawn "$S" sh -c "exec python3 -m http.server -b :: -d '$WORKDIR/www' -p HTTP/1.1 8081 >>'$WORKDIR/http.log' 2>&1"
spawn "$S" dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts --user=root --pid-file= \
    --bind-interfaces --listen-address=10.77.1.20 --listen-address=fd00:77:1::20 \
    --local=/hospital.example/ \
    --host-record=pacs.hospital.example,10.77.1.50,fd00:77:1::50 \
    --host-record=ris.hospital.example,10.77.1.51 \
    --host-record=pump-0042.hospital.example,10.77.1.60,fd00:77:1::60
wait_until "http 8080" 100 tcp_listening "$S" 8080
wait_until "http 8081" 100 tcp_listening "$S" 8081
wait_until "dnsmasq" 100 udp_bound "$S" 53
# make sure neighbour entries exist so the capture does not depend on ARP/ND timing
nsx "$C" ping -q -c 1 -W 2 10.77.1.20 >/dev/null
nsx "$C" ping -6 -q -c 1 -W 2 fd00:77:1::20 >/dev/null

cap_start "$C" "$OUT" -i mfc0

V4=10.77.1.20 V6='[fd00:77:1::20]'
get() { nsx "$C" curl -s -o /dev/null --max-time 5 "$@" >/dev/null || true; }
for ((i = 1; i <= 150; i++)); do
    f="f$((i % 5)).txt"; [ $((i % 10)) = 0 ] && f=missing.txt
    get "http://$V4:8080/$f"
done
for ((i = 1; i <= 90; i++)); do
    f="f$((i % 5)).txt"; [ $((i % 10)) = 0 ] && f=missing.txt
    get -g "http://$V6:8080/$f"
done
for ((i = 1; i <= 30; i++)); do get "http://$V4:9/"; done
for ((i = 1; i <= 20; i++)); do get -g "http://$V6:9/"; done
for h in "$V4" "$V4" "$V6" "$V6"; do
    get -g "http://$h:8081/f0.txt" "http://$h:8081/f1.txt" "http://$h:8081/f2.txt" \
        "http://$h:8081/index.html" "http://$h:8081/f4.txt"
done
names=(pacs ris pump-0042 unknown-host ct-scanner-1)
for ((i = 0; i < 20; i++)); do
    t=A; [ $((i % 3)) = 2 ] && t=AAAA
    nsx "$C" dig +tries=1 +time=2 @10.77.1.20 "${names[$((i % 5))]}.hospital.example" "$t" >/dev/null || true
done
for ((i = 0; i < 10; i++)); do
    t=AAAA; [ $((i % 2)) = 1 ] && t=A
    nsx "$C" dig +tries=1 +time=2 @fd00:77:1::20 "${names[$((i % 5))]}.hospital.example" "$t" >/dev/null || true
done
for ((i = 0; i < 5; i++)); do
    echo "probe $i" | nsx "$C" socat -u - UDP4-SENDTO:10.77.1.20:9999 || true
    echo "probe $i" | nsx "$C" socat -u - UDP6-SENDTO:"[fd00:77:1::20]":9999 || true
    sleep 0.05
done
nsx "$C" ping -q -c 4 -i 0.2 -W 2 10.77.1.20 >/dev/null || true
nsx "$C" ping -6 -q -c 4 -i 0.2 -W 2 fd00:77:1::20 >/dev/null || true

cap_stop
echo "wrote $OUT: $(tshark -n -r "$OUT" 2>/dev/null | wc -l) packets"
