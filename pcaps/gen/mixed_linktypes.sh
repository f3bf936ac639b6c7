#!/usr/bin/env bash
# Generates two captures of one small exchange that libpcap-based tools meet less often:
#
#   pcaps/linktype_mixed.pcapng  dumpcap -i qmc0 -i any: a pcapng file with TWO interfaces of
#                                DIFFERENT link types, interface 0 Ethernet (1) and interface 1
#                                Linux cooked (LINUX_SLL, 113); every packet appears twice, once
#                                per interface. libpcap refuses such a file at its second interface
#                                ("an interface has a type 113 different from the type of the first
#                                interface"); Wireshark reads it.
#   pcaps/linktype_ether_nsec.pcap  tcpdump --time-stamp-precision=nano -i qmc0: the nanosecond
#                                pcap format (magic a1b23c4d).
#
#   client qa-mx-c  qmc0  02:00:5e:78:02:0a  10.78.2.10/24  fd00:78:2::10/64
#   server qa-mx-s  qms0  02:00:5e:78:02:14  10.78.2.20/24  fd00:78:2::20/64
# Traffic (each capture its own run, filter "tcp port 8080 or udp port 7000"): curl GET
# http://10.78.2.20:8080/hello.txt from python3 http.server (client port 41101 for the pcapng,
# 41102 for the nanosecond pcap), and one 100-byte UDP datagram over IPv6 to a socat echo server
# on port 7000, echoed back (client port 41201 / 41202).
# Needs: iproute2 tcpdump ethtool python3 curl socat wireshark-common (dumpcap, capinfos)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PCAPS=$(cd "$HERE/.." && pwd)
# shellcheck source=netns_lib.sh
. "$HERE/netns_lib.sh"
need python3 curl socat dumpcap capinfos

C=qa-mx-c S=qa-mx-s
ns_init "$C" "$S"
veth "$C" qmc0 02:00:5e:78:02:0a "$S" qms0 02:00:5e:78:02:14
ip -n "$C" addr add 10.78.2.10/24 dev qmc0
ip -n "$C" addr add fd00:78:2::10/64 dev qmc0 nodad
ip -n "$S" addr add 10.78.2.20/24 dev qms0
ip -n "$S" addr add fd00:78:2::20/64 dev qms0 nodad

mkdir -p "$WORKDIR/www"
printf 'hello from the medtap mixed link-type test server\n' >"$WORKDIR/www/hello.txt"
spawn "$S" sh -c "exec python3 -m http.server -b :: -d '$WORKDIR/www' 8080 >>'$WORKDIR/http.log' 2>&1"
spawn "$S" socat UDP6-RECVFROM:7000,fork EXEC:cat
wait_until "http 8080" 100 tcp_listening "$S" 8080
wait_until "udp 7000" 100 udp_bound "$S" 7000
nsx "$C" ping -q -c 1 -W 2 10.78.2.20 >/dev/null
nsx "$C" ping -6 -q -c 1 -W 2 fd00:78:2::20 >/dev/null

traffic() {
    nsx "$C" curl -sS -g --max-time 10 -o /dev/null --local-port "$1" http://10.78.2.20:8080/hello.txt
    head -c 100 /dev/zero | tr '\0' 'u' |
        nsx "$C" socat -T 1 - "UDP6:[fd00:78:2::20]:7000,sourceport=$2" >/dev/null
}
FILTER="tcp port 8080 or udp port 7000"

# dumpcap on two interfaces at once writes one pcapng with an interface description per interface.
OUT="$PCAPS/linktype_mixed.pcapng"
rm -f "$OUT"
# (ip netns exec execs dumpcap: $! is dumpcap's own pid)
ip netns exec "$C" dumpcap -q -i qmc0 -i any -f "$FILTER" -w "$OUT" 2>"$WORKDIR/dumpcap.log" &
DPID=$!
BG_PIDS+=("$DPID")
sleep 2
traffic 41101 41201
sleep 1
kill -INT "$DPID"
wait "$DPID" || true
chmod 644 "$OUT"
echo "  $(basename "$OUT"): $(capinfos -c -M "$OUT" | awk -F': *' '/Number of packets/ {print $2}') packets"

cap_start "$C" "$PCAPS/linktype_ether_nsec.pcap" --time-stamp-precision=nano -i qmc0 "$FILTER"
traffic 41102 41202
cap_stop_counted "$PCAPS/linktype_ether_nsec.pcap"
