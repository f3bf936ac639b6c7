#!/usr/bin/env bash
# Behaviour-anomaly captures for tests/detect.rs, made with real software in two network
# namespaces (det-a client 10.75.0.1, det-b server 10.75.0.2 and 10.75.0.3), captured on the
# veth with tcpdump:
#   pcaps/detect/port_scan.pcap  nmap -sS (bounded: 40 ports, one host; fewer than the inventory keeps per device, so the inventory stays independent of the worker count) from det-a to 10.75.0.2,
#                                 with python3 http.server listening on 8080 there
#   pcaps/detect/new_peer.pcap   curl from det-a to 10.75.0.2:8080 every 2 s for 40 s (the learnt
#                                 peer), then one curl to 10.75.0.3:8080 (a new peer)
# Needs root, iproute2, tcpdump, nmap, curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=detect
mkdir -p "$OUT"
A=det-a; B=det-b
cleanup() {
    [ -n "${SRV:-}" ] && kill "$SRV" 2>/dev/null || true
    [ -n "${SRV2:-}" ] && kill "$SRV2" 2>/dev/null || true
    [ -n "${CAP:-}" ] && kill "$CAP" 2>/dev/null || true
    ip netns del $A 2>/dev/null || true
    ip netns del $B 2>/dev/null || true
}
trap cleanup EXIT
cleanup
ip netns add $A; ip netns add $B
ip link add det-va type veth peer name det-vb
ip link set det-va netns $A address 02:75:00:00:00:01
ip link set det-vb netns $B address 02:75:00:00:00:02
ip -n $A addr add 10.75.0.1/24 dev det-va
ip -n $B addr add 10.75.0.2/24 dev det-vb
ip -n $B addr add 10.75.0.3/24 dev det-vb
for n in $A $B; do ip -n $n link set lo up; done
ip -n $A link set det-va up; ip -n $B link set det-vb up
for n in $A $B; do ip netns exec $n ethtool -K "det-v${n#det-}" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true; done
ip netns exec $B python3 -m http.server 8080 --bind 10.75.0.2 >/dev/null 2>&1 & SRV=$!
ip netns exec $B python3 -m http.server 8080 --bind 10.75.0.3 >/dev/null 2>&1 & SRV2=$!
sleep 1

capture() { ip netns exec $A tcpdump -i det-va -U -s 0 -w "$1" >/dev/null 2>&1 & CAP=$!; sleep 1; }
stop() { sleep 1; kill -INT "$CAP"; wait "$CAP" 2>/dev/null || true; CAP=; }

capture "$OUT/port_scan.pcap"
ip netns exec $A nmap -n -sS -Pn -p 1-39,8080 --max-retries 1 --host-timeout 60s 10.75.0.2 >/dev/null
stop

capture "$OUT/new_peer.pcap"
for i in $(seq 1 20); do
    ip netns exec $A curl -s -o /dev/null http://10.75.0.2:8080/ || true
    sleep 2
done
ip netns exec $A curl -s -o /dev/null http://10.75.0.3:8080/ || true
stop
ls -l "$OUT"
