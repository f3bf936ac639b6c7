#!/usr/bin/env bash
# Captures for the persisted behaviour baselines (tests/baseline.rs), made with real software in
# two network namespaces (baseline-a client 10.78.0.1, baseline-b server 10.78.0.2 and
# 10.78.0.3), captured on the veth with tcpdump. Two files of one story, replayed one after the
# other on the same --state-dir:
#   pcaps/detect/baseline_learn.pcap  curl from 10.78.0.1 to 10.78.0.2:8080 every 2 s for 30 s
#                                      (the peer learnt in the first run)
#   pcaps/detect/baseline_after.pcap  5 s later: two curls to 10.78.0.2:8080 (known), then one to
#                                      10.78.0.3:8080 (a new peer)
# Needs root, iproute2, tcpdump, curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=detect
mkdir -p "$OUT"
A=baseline-a; B=baseline-b
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
ip link add baseline-va type veth peer name baseline-vb
ip link set baseline-va netns $A address 02:78:00:00:00:01
ip link set baseline-vb netns $B address 02:78:00:00:00:02
ip -n $A addr add 10.78.0.1/24 dev baseline-va
ip -n $B addr add 10.78.0.2/24 dev baseline-vb
ip -n $B addr add 10.78.0.3/24 dev baseline-vb
for n in $A $B; do
    ip -n $n link set lo up
    ip netns exec $n sysctl -q -w net.ipv6.conf.all.disable_ipv6=1
done
ip -n $A link set baseline-va up; ip -n $B link set baseline-vb up
ip netns exec $A ethtool -K baseline-va tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
ip netns exec $B ethtool -K baseline-vb tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
ip netns exec $B python3 -m http.server 8080 --bind 10.78.0.2 >/dev/null 2>&1 & SRV=$!
ip netns exec $B python3 -m http.server 8080 --bind 10.78.0.3 >/dev/null 2>&1 & SRV2=$!
sleep 1

capture() { ip netns exec $A tcpdump -i baseline-va -U -s 0 -w "$1" >/dev/null 2>&1 & CAP=$!; sleep 1; }
stop() { sleep 1; kill -INT "$CAP"; wait "$CAP" 2>/dev/null || true; CAP=; }

capture "$OUT/baseline_learn.pcap"
for i in $(seq 1 15); do
    ip netns exec $A curl -s -o /dev/null http://10.78.0.2:8080/ || true
    sleep 2
done
stop

sleep 3
capture "$OUT/baseline_after.pcap"
for i in 1 2; do
    ip netns exec $A curl -s -o /dev/null http://10.78.0.2:8080/ || true
    sleep 1
done
ip netns exec $A curl -s -o /dev/null http://10.78.0.3:8080/ || true
stop
ls -l "$OUT"/baseline_*
