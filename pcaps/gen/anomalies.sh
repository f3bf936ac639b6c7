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
# shellcheck source=pcaps/gen/netns_lib.sh
. gen/netns_lib.sh
A=det-a; B=det-b; VA=det-va; VB=det-vb
pair_up 02:75:00:00:00:01 10.75.0.1 02:75:00:00:00:02 10.75.0.2 10.75.0.3
pair_http 10.75.0.2
pair_http 10.75.0.3
sleep 1

pair_capture "$OUT/port_scan.pcap"
ip netns exec $A nmap -n -sS -Pn -p 1-39,8080 --max-retries 1 --host-timeout 60s 10.75.0.2 >/dev/null
pair_stop

pair_capture "$OUT/new_peer.pcap"
for i in $(seq 1 20); do
    ip netns exec $A curl -s -o /dev/null http://10.75.0.2:8080/ || true
    sleep 2
done
ip netns exec $A curl -s -o /dev/null http://10.75.0.3:8080/ || true
pair_stop
ls -l "$OUT"
