#!/usr/bin/env bash
# Generates pcaps/vlan_qinq_frag.pcap (Ethernet with 802.1Q and 802.1ad/QinQ tags, IPv4 fragments,
# IPv6 Fragment and Hop-by-Hop extension headers).
#
# This kernel has no 8021q module, so `ip link add link X type vlan ...` is not available. The VLAN
# subinterfaces are played by pcaps/gen/l2_vlan_trunk.py: a TAP per VLAN in each host namespace,
# tags pushed/popped in userspace, carried over a veth trunk (MTU 1600 so QinQ-tagged 1500-byte
# packets fit). Everything above Ethernet is the kernels' own (ping, socat, ARP, ND, MLD).
#
#   host 1 mtp-vl-h1, host 2 mtp-vl-h2, trunk namespace mtp-vl-sw (veth vt1 <-> vt2, capture on vt1)
#   VLAN 100 (802.1Q, TPID 0x8100):          TAP v100   h1 02:00:5e:77:04:01 10.77.4.1/24 fd00:77:4::1/64
#                                                       h2 02:00:5e:77:04:02 10.77.4.2/24 fd00:77:4::2/64
#   QinQ S-VLAN 10 (802.1ad, TPID 0x88a8) + C-VLAN 20 (802.1Q):
#                                            TAP q10v20 h1 02:00:5e:77:05:01 10.77.5.1/24 fd00:77:5::1/64
#                                                       h2 02:00:5e:77:05:02 10.77.5.2/24 fd00:77:5::2/64
# Traffic, on each of the two VLANs (h1 -> h2):
#   - interface bring-up: IPv6 DAD Neighbor Solicitations and MLDv2 reports (these carry a Hop-by-Hop
#     extension header with a Router Alert option), ARP, ND
#   - ping -c 2 (small), ping -c 2 -s 3000 (IPv4: 3 fragments each way per echo)
#   - ping -6 -c 2 (small), ping -6 -c 2 -s 3000 (IPv6 Fragment extension header, 3 fragments)
#   - one 3000-byte UDP datagram to a socat echo server on 7000 (v4 on VLAN 100, v6 on QinQ),
#     echoed back: fragmented UDP, the UDP header only in the first fragment
# and on VLAN 100 only: one small UDP request/reply on port 7777 that the trunk ALSO sends untagged
# (--span-dup-udp-port 7777): each of those 2 packets appears twice in the capture, once with the
# 802.1Q tag 100 and once untagged, as from a SPAN session mirroring both an access port and its trunk.
# Needs: iproute2 tcpdump ethtool python3 socat iputils-ping
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PCAPS=$(cd "$HERE/.." && pwd)
OUT="$PCAPS/vlan_qinq_frag.pcap"
# shellcheck source=netns_lib.sh
. "$HERE/netns_lib.sh"
need python3 socat ping

H1=mtp-vl-h1 H2=mtp-vl-h2 SW=mtp-vl-sw
ns_init "$H1" "$H2" "$SW"
nsx "$SW" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
veth "$SW" vt1 02:00:5e:77:04:f1 "$SW" vt2 02:00:5e:77:04:f2
for t in vt1 vt2; do
    ip -n "$SW" link set "$t" mtu 1600
    ip -n "$SW" link set "$t" promisc on
done

spawn "$SW" python3 "$HERE/l2_vlan_trunk.py" --ns1 "$H1" --ns2 "$H2" --trunk1 vt1 --trunk2 vt2 \
    --port 100=v100 --port 10.20=q10v20 --span-dup-udp-port 7777 --max-seconds 240 \
    --ready-file "$WORKDIR/trunk.ready"
wait_until "l2_vlan_trunk" 100 test -e "$WORKDIR/trunk.ready"

cap_start "$SW" "$OUT" -i vt1

# bring the "subinterfaces" up while capturing: DAD, MLD reports (hop-by-hop header)
conf() { # ns tap mac v4 v6
    ip -n "$1" link set dev "$2" address "$3"
    nsx "$1" ethtool -K "$2" tx off >/dev/null 2>&1 || true
    ip -n "$1" addr add "$4" dev "$2"
    ip -n "$1" addr add "$5" dev "$2" nodad
    ip -n "$1" link set dev "$2" up
}
conf "$H1" v100 02:00:5e:77:04:01 10.77.4.1/24 fd00:77:4::1/64
conf "$H2" v100 02:00:5e:77:04:02 10.77.4.2/24 fd00:77:4::2/64
conf "$H1" q10v20 02:00:5e:77:05:01 10.77.5.1/24 fd00:77:5::1/64
conf "$H2" q10v20 02:00:5e:77:05:02 10.77.5.2/24 fd00:77:5::2/64
for ns in "$H1" "$H2"; do nsx "$ns" sysctl -qw net.ipv4.icmp_ratelimit=0; done
# link-local addresses finish DAD before neighbours are resolved over IPv6
wait_until "h1 link-local" 50 sh -c "! ip -n $H1 -6 addr show tentative | grep -q inet6"
wait_until "h2 link-local" 50 sh -c "! ip -n $H2 -6 addr show tentative | grep -q inet6"

spawn "$H2" socat UDP6-RECVFROM:7000,ipv6only=0,fork EXEC:cat
spawn "$H2" socat UDP4-RECVFROM:7777,fork EXEC:cat
wait_until "udp 7000" 50 udp_bound "$H2" 7000
wait_until "udp 7777" 50 udp_bound "$H2" 7777

for dst in 10.77.4.2 10.77.5.2; do
    nsx "$H1" ping -q -c 2 -i 0.2 -W 2 "$dst" >/dev/null
    nsx "$H1" ping -q -c 2 -i 0.2 -W 2 -s 3000 "$dst" >/dev/null
done
for dst in fd00:77:4::2 fd00:77:5::2; do
    nsx "$H1" ping -6 -q -c 2 -i 0.2 -W 2 "$dst" >/dev/null
    nsx "$H1" ping -6 -q -c 2 -i 0.2 -W 2 -s 3000 "$dst" >/dev/null
done
python3 -c "import sys; sys.stdout.write(''.join('udp fragment test line %04d ...........\n' % i for i in range(75)))" >"$WORKDIR/dgram"
[ "$(stat -c %s "$WORKDIR/dgram")" = 3000 ]
nsx "$H1" socat -b 65536 -T 2 - UDP4:10.77.4.2:7000 <"$WORKDIR/dgram" >"$WORKDIR/echo4"
nsx "$H1" socat -b 65536 -T 2 - UDP6:[fd00:77:5::2]:7000 <"$WORKDIR/dgram" >"$WORKDIR/echo6"
cmp "$WORKDIR/dgram" "$WORKDIR/echo4"
cmp "$WORKDIR/dgram" "$WORKDIR/echo6"
echo "span duplicate test" | nsx "$H1" socat -T 2 - UDP4:10.77.4.2:7777 >/dev/null

cap_stop
echo "wrote $OUT: $(capinfos -c -M "$OUT" | awk -F': *' '/Number of packets/ {print $2}') packets"
