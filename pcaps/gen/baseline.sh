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
# shellcheck source=pcaps/gen/netns_lib.sh
. gen/netns_lib.sh
A=baseline-a; B=baseline-b; VA=baseline-va; VB=baseline-vb
PAIR_NO_IPV6=1 pair_up 02:78:00:00:00:01 10.78.0.1 02:78:00:00:00:02 10.78.0.2 10.78.0.3
pair_http 10.78.0.2
pair_http 10.78.0.3
sleep 1

pair_capture "$OUT/baseline_learn.pcap"
for i in $(seq 1 15); do
    ip netns exec $A curl -s -o /dev/null http://10.78.0.2:8080/ || true
    sleep 2
done
pair_stop

sleep 3
pair_capture "$OUT/baseline_after.pcap"
for i in 1 2; do
    ip netns exec $A curl -s -o /dev/null http://10.78.0.2:8080/ || true
    sleep 1
done
ip netns exec $A curl -s -o /dev/null http://10.78.0.3:8080/ || true
pair_stop
ls -l "$OUT"/baseline_*
