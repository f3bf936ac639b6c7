#!/usr/bin/env bash
# Generates the link-type captures: the same small exchange (curl GET /hello.txt from python3
# http.server, HTTP/1.0, one TCP connection) captured with different link-layer framings.
#
#   client mtp-lt-cli  lc0  02:00:5e:77:03:0a  10.77.3.10/24  fd00:77:3::10/64
#   server mtp-lt-srv  ls0  02:00:5e:77:03:14  10.77.3.20/24  fd00:77:3::20/64
#   tunnel rt0 in both namespaces: a TUN device (IFF_TUN, no packet info) run by socat, the two
#          socats carrying the IP packets to each other in UDP over the veth (port 4789), like a
#          userspace VPN. rt0 addresses: 10.77.30.10/24 + fd00:77:30::10/64 (client),
#          10.77.30.20/24 + fd00:77:30::20/64 (server); MTU 1400. (This kernel has no ipip/sit/
#          ip6tnl modules; a TUN device gives the same LINKTYPE_RAW capture.)
#
# Outputs (all captured in the client namespace, tcpdump filter "tcp port 8080"):
#   pcaps/linktype_sll.pcap          tcpdump -i any -y LINUX_SLL   (LINKTYPE_LINUX_SLL 113, 16-byte header)
#   pcaps/linktype_sll2.pcap         tcpdump -i any -y LINUX_SLL2  (LINKTYPE_LINUX_SLL2 276, 20-byte header)
#   pcaps/linktype_ether.pcapng      tcpdump -i lc0 (Ethernet), converted with editcap -F pcapng
#   pcaps/linktype_ether_snaplen96.pcap  tcpdump -i lc0 -s 96: every frame cut to 96 captured bytes
#                                    (caplen < len; the original length is kept in the record header)
#   pcaps/linktype_raw_ipv4.pcap     tcpdump -i rt0 (LINKTYPE_RAW 101), curl over IPv4 through the tunnel
#   pcaps/linktype_raw_ipv6.pcap     tcpdump -i rt0 (LINKTYPE_RAW 101), curl over IPv6 through the tunnel
# The ether/SLL/SLL2 captures are of curl http://10.77.3.20:8080/hello.txt (client port 41001,
# 41002, 41003, 41004 resp.); raw: http://10.77.30.20:8080/hello.txt (41005) and
# http://[fd00:77:30::20]:8080/hello.txt (41006).
# Needs: iproute2 tcpdump ethtool python3 curl socat wireshark-common(editcap)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PCAPS=$(cd "$HERE/.." && pwd)
# shellcheck source=netns_lib.sh
. "$HERE/netns_lib.sh"
need python3 curl socat editcap

C=mtp-lt-cli S=mtp-lt-srv
ns_init "$C" "$S"
veth "$C" lc0 02:00:5e:77:03:0a "$S" ls0 02:00:5e:77:03:14
ip -n "$C" addr add 10.77.3.10/24 dev lc0
ip -n "$C" addr add fd00:77:3::10/64 dev lc0 nodad
ip -n "$S" addr add 10.77.3.20/24 dev ls0
ip -n "$S" addr add fd00:77:3::20/64 dev ls0 nodad

mkdir -p "$WORKDIR/www"
printf 'hello from the medtap link-type test server\n' >"$WORKDIR/www/hello.txt"
spawn "$S" sh -c "exec python3 -m http.server -b :: -d '$WORKDIR/www' 8080 >>'$WORKDIR/http.log' 2>&1"
wait_until "http 8080" 100 tcp_listening "$S" 8080
nsx "$C" ping -q -c 1 -W 2 10.77.3.20 >/dev/null

get() { nsx "$C" curl -sS -g --max-time 10 -o /dev/null --local-port "$1" "$2"; }

cap_start "$C" "$PCAPS/linktype_sll.pcap" -i any -y LINUX_SLL tcp port 8080
get 41001 http://10.77.3.20:8080/hello.txt
cap_stop

cap_start "$C" "$PCAPS/linktype_sll2.pcap" -i any -y LINUX_SLL2 tcp port 8080
get 41002 http://10.77.3.20:8080/hello.txt
cap_stop

cap_start "$C" "$WORKDIR/ether.pcap" -i lc0 tcp port 8080
get 41003 http://10.77.3.20:8080/hello.txt
cap_stop
rm -f "$PCAPS/linktype_ether.pcapng"
editcap -F pcapng "$WORKDIR/ether.pcap" "$PCAPS/linktype_ether.pcapng"

# tcpdump -s 96 instead of the -s 0 cap_start passes: the later option wins
cap_start "$C" "$PCAPS/linktype_ether_snaplen96.pcap" -i lc0 -s 96 tcp port 8080
get 41004 http://10.77.3.20:8080/hello.txt
cap_stop

# TUN tunnel: each socat owns its namespace's rt0 and exchanges the packets over UDP 4789
spawn "$S" socat TUN:10.77.30.20/24,tun-name=rt0,tun-type=tun,iff-no-pi,iff-up \
    UDP-DATAGRAM:10.77.3.10:4789,bind=10.77.3.20:4789
spawn "$C" socat TUN:10.77.30.10/24,tun-name=rt0,tun-type=tun,iff-no-pi,iff-up \
    UDP-DATAGRAM:10.77.3.20:4789,bind=10.77.3.10:4789
wait_until "rt0 client" 100 ip -n "$C" link show rt0
wait_until "rt0 server" 100 ip -n "$S" link show rt0
for ns in "$C:10" "$S:20"; do
    ip -n "${ns%%:*}" link set rt0 mtu 1400
    ip -n "${ns%%:*}" addr add "fd00:77:30::${ns#*:}/64" dev rt0 nodad
done
wait_until "ping over tunnel v4" 50 nsx "$C" ping -q -c 1 -W 1 10.77.30.20
wait_until "ping over tunnel v6" 50 nsx "$C" ping -6 -q -c 1 -W 1 fd00:77:30::20


cap_start "$C" "$PCAPS/linktype_raw_ipv4.pcap" -i rt0 tcp port 8080
get 41005 http://10.77.30.20:8080/hello.txt
cap_stop

cap_start "$C" "$PCAPS/linktype_raw_ipv6.pcap" -i rt0 tcp port 8080
get 41006 "http://[fd00:77:30::20]:8080/hello.txt"
cap_stop

for f in linktype_sll.pcap linktype_sll2.pcap linktype_ether.pcapng linktype_ether_snaplen96.pcap \
    linktype_raw_ipv4.pcap linktype_raw_ipv6.pcap; do
    echo "wrote pcaps/$f: $(capinfos -c -M "$PCAPS/$f" | awk -F': *' '/Number of packets/ {print $2}') packets," \
        "$(capinfos -E "$PCAPS/$f" | awk -F': *' '/encapsulation/ {print $2}')"
done
