#!/bin/bash
# Generate pcaps/inventory/multi_ip.pcap: one MAC carrying 30 IPv4 addresses (a router-like or
# multi-homed host), each address opening HTTP connections with curl to one or two servers
# (python3 http.server) in another namespace; tcpdump on the multi-address host's veth.
# The inventory must not depend on --workers for such a MAC (tests/inventory.rs).
# Needs root, iproute2, curl, python3, tcpdump. MEDTAP_GEN_NSP overrides the namespace prefix.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT="$HERE/../inventory/multi_ip.pcap"
NSP=${MEDTAP_GEN_NSP:-mtmip}
R=$NSP-r S=$NSP-s
WORK=$(mktemp -d /tmp/medtap-multi-ip.XXXXXX)
PIDS=()
down() {
  local ns
  for ns in "$R" "$S"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
}
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  down
  rm -rf "$WORK"
}
trap cleanup EXIT
down
ip netns add "$R"; ip netns add "$S"
ip link add vr netns "$R" type veth peer name vs netns "$S"
for ns in "$R" "$S"; do ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; done
ip -n "$R" link set vr address 02:79:00:00:00:01
ip -n "$S" link set vs address 02:79:00:00:00:02
for i in $(seq 11 40); do ip -n "$R" addr add "10.79.0.$i/24" dev vr; done
ip -n "$S" addr add 10.79.0.2/24 dev vs
ip -n "$S" addr add 10.79.0.3/24 dev vs
for ns in "$R" "$S"; do ip -n "$ns" link set lo up; done
ip -n "$R" link set vr up; ip -n "$S" link set vs up
mkdir -p "$WORK/www"; echo ok > "$WORK/www/index.html"
ip netns exec "$S" timeout 120 python3 -m http.server 8080 --directory "$WORK/www" >"$WORK/http.log" 2>&1 &
PIDS+=($!)
ip netns exec "$R" tcpdump -q -i vr -w "$WORK/out.pcap" -U >"$WORK/tcpdump.log" 2>&1 &
PIDS+=($!)
sleep 2
for i in $(seq 11 40); do
  ip netns exec "$R" curl -s -o /dev/null --max-time 5 --interface "10.79.0.$i" http://10.79.0.2:8080/
  # every third address also talks to the second server address
  if [ $((i % 3)) -eq 0 ]; then
    ip netns exec "$R" curl -s -o /dev/null --max-time 5 --interface "10.79.0.$i" http://10.79.0.3:8080/
  fi
done
sleep 1
kill "${PIDS[1]}"; wait "${PIDS[1]}" 2>/dev/null || true
mv "$WORK/out.pcap" "$OUT"; chmod 644 "$OUT"
echo "$OUT: $(tshark -r "$OUT" 2>/dev/null | wc -l) packets"
