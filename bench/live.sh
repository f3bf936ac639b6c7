#!/usr/bin/env bash
# Live-capture benchmark (issue 7): the highest packet rate `medtap live` sustains with under 0.1%
# loss, with 1 worker and with $(nproc) workers, next to `tcpdump -i IF -w /dev/null` on the same
# setup. Run as root:
#
#   bash bench/live.sh                  # default rate steps
#   RATES="20000 40000 80000" PACKETS=200000 bash bench/live.sh
#
# Setup: two network namespaces (bench-a, bench-b; override with NS_PREFIX) joined by a veth
# pair (MTU 65535, IPv6 off, no addresses: nothing but the replay crosses it). The input is every
# Ethernet capture of pcaps/ merged end to end with `mergecap -a` (DICOM, HL7, TLS, HTTP, DHCP,
# SMB ... a real mix, mean size printed). For each capturer and each rate R (ascending), one trial:
#   1. start the capturer on the b end (medtap: --events /dev/null --metrics-out FILE, default
#      64 MiB kernel buffer; tcpdump: -B 65536 so its kernel buffer is the same 64 MiB),
#   2. `tcpreplay --pps R --loop 0 --limit N` from the a end (N = max(PACKETS, 3 s worth)),
#   3. wait 2 s, SIGTERM/SIGINT the capturer, wait for it,
#   4. loss = (sent - processed) / sent, where sent is tcpreplay's "Actual" packet count and
#      processed is medtap_packets_total (packets the workers handled: kernel, interface and
#      queue drops all count as loss) or tcpdump's "packets captured".
# A rate passes when loss < 0.1% and tcpreplay really sent at >= 95% of R (else the sender, not
# the capturer, is the limit, and the step is reported as sender-bound). A failing step is tried
# once more (RETRY=1), because on a shared machine a burst of someone else's load can cost a
# trial a few hundred packets. The steps stop at the
# first failing rate; then BISECT steps halve the interval between the last pass and the first
# failure. Reported: the highest passing rate achieved by tcpreplay (its "Rated: ... pps").
# Every loop is bounded (rates list, BISECT count, timeouts on every process).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "$(id -u)" = 0 ] || { echo "bench/live.sh: run as root (namespaces, capture)" >&2; exit 1; }
for c in ip tcpreplay tcpdump mergecap capinfos timeout; do
  command -v $c >/dev/null || { echo "bench/live.sh: $c missing" >&2; exit 1; }
done
RATES=${RATES:-"10000 20000 40000 60000 80000 120000 160000 240000 320000 480000"}
PACKETS=${PACKETS:-200000}
BISECT=${BISECT:-2}
RETRY=${RETRY:-1}   # a failing step is tried again this many times (the machine may be shared)
NPROC=$(nproc)
# medtap1/medtapN: 1 and $(nproc) workers (immediate mode, the default); medtap1b/medtapNb: the
# same with --no-immediate (the kernel's batched, packed ring).
CAPTURERS=${CAPTURERS:-"tcpdump medtap1 medtapN medtap1b medtapNb"}
NS=${NS_PREFIX:-bench}
A=$NS-a; B=$NS-b; VA=${NS}va; VB=${NS}vb
BIN=${CARGO_TARGET_DIR:-target}/release/medtap
if [ -z "${NO_BUILD:-}" ]; then cargo build --release 2>&1 | tail -1; fi
[ -x "$BIN" ] || { echo "bench/live.sh: $BIN missing" >&2; exit 1; }

TMP=$(mktemp -d /tmp/medtap-live-bench.XXXXXX)
cleanup() {
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

# Input: every Ethernet capture of pcaps/, concatenated.
inputs=()
while IFS= read -r f; do
  if capinfos -E "$f" 2>/dev/null | grep -q "Ethernet$"; then inputs+=("$f"); fi
done < <(find pcaps -name '*.pcap' -o -name '*.pcapng' | grep -v -e damaged/ -e hostile/ -e linktype_ | sort)
mergecap -a -F pcap -w "$TMP/input.pcap" "${inputs[@]}"
IN_PKTS=$(capinfos -c -M "$TMP/input.pcap" | awk '/Number of packets/ {print $NF}')
IN_AVG=$(capinfos -z -M "$TMP/input.pcap" | awk '/Average packet size/ {print $(NF-1)}')
echo "input: ${#inputs[@]} captures, $IN_PKTS packets, mean $IN_AVG bytes/packet"

ip netns del "$A" 2>/dev/null || true
ip netns del "$B" 2>/dev/null || true
ip netns add "$A"; ip netns add "$B"
ip link add "$VA" type veth peer name "$VB"
ip link set "$VA" netns "$A"; ip link set "$VB" netns "$B"
for p in "$A:$VA" "$B:$VB"; do
  ns=${p%%:*}; v=${p#*:}
  ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1
  ip -n "$ns" link set lo up
  ip -n "$ns" link set "$v" mtu 65535
  ip -n "$ns" link set "$v" up
done

# trial CAPTURER RATE -> prints "sent processed achieved_pps"
trial() {
  local who=$1 rate=$2 n pid sent achieved processed
  n=$(( rate * 3 > PACKETS ? rate * 3 : PACKETS ))
  rm -f "$TMP/metrics.prom" "$TMP/cap.err"
  case $who in
    tcpdump) ip netns exec "$B" timeout 300 tcpdump -n -i "$VB" -B 65536 -w /dev/null 2>"$TMP/cap.err" & ;;
    medtap1) ip netns exec "$B" timeout 300 "$BIN" live -i "$VB" --workers 1 --listen 127.0.0.1:0 \
               --events /dev/null --metrics-out "$TMP/metrics.prom" 2>"$TMP/cap.err" & ;;
    medtapN) ip netns exec "$B" timeout 300 "$BIN" live -i "$VB" --workers "$NPROC" --listen 127.0.0.1:0 \
               --events /dev/null --metrics-out "$TMP/metrics.prom" 2>"$TMP/cap.err" & ;;
    medtap1b) ip netns exec "$B" timeout 300 "$BIN" live -i "$VB" --workers 1 --no-immediate --listen 127.0.0.1:0 \
               --events /dev/null --metrics-out "$TMP/metrics.prom" 2>"$TMP/cap.err" & ;;
    medtapNb) ip netns exec "$B" timeout 300 "$BIN" live -i "$VB" --workers "$NPROC" --no-immediate --listen 127.0.0.1:0 \
               --events /dev/null --metrics-out "$TMP/metrics.prom" 2>"$TMP/cap.err" & ;;
  esac
  pid=$!
  sleep 1.5
  timeout 300 ip netns exec "$A" tcpreplay --pps "$rate" --loop 0 --limit "$n" -i "$VA" "$TMP/input.pcap" >"$TMP/replay.out" 2>&1 || true
  sleep 2
  # `timeout` forwards the signal to the capturer.
  if [ "$who" = tcpdump ]; then kill -INT "$pid"; else kill -TERM "$pid"; fi
  wait "$pid" || true
  sent=$(awk '/Actual:/ {print $2; exit}' "$TMP/replay.out")
  achieved=$(awk '/Rated:/ {for (i=1;i<=NF;i++) if ($(i+1) ~ /^pps/) {print int($i); exit}}' "$TMP/replay.out")
  if [ "$who" = tcpdump ]; then
    processed=$(awk '/packets captured/ {print $1; exit}' "$TMP/cap.err")
  else
    processed=$(awk '/^medtap_packets_total / {print $2; exit}' "$TMP/metrics.prom" 2>/dev/null)
  fi
  echo "${sent:-0} ${processed:-0} ${achieved:-0}"
}

# step WHO RATE -> prints "sent processed achieved verdict"; a failure is retried RETRY times
step() {
  local who=$1 rate=$2 try=0 sent proc ach v
  while :; do
    read -r sent proc ach < <(trial "$who" "$rate")
    v=$(verdict "$sent" "$proc" "$ach" "$rate")
    if [ "$v" = pass ] || [ "$try" -ge "$RETRY" ]; then break; fi
    try=$((try + 1))
    echo "  ($who at $rate: $v, sent $sent processed $proc; retrying)" >&2
  done
  echo "$sent $proc $ach $v"
}

# verdict SENT PROCESSED ACHIEVED RATE -> pass | loss | sender
verdict() {
  local sent=$1 proc=$2 ach=$3 rate=$4
  if [ "$sent" -le 0 ] || [ $(( ach * 100 )) -lt $(( rate * 95 )) ]; then echo sender; return; fi
  # loss < 0.1%  <=>  (sent - proc) * 1000 < sent
  if [ $(( (sent - proc) * 1000 )) -lt "$sent" ]; then echo pass; else echo loss; fi
}

declare -A BEST LIMIT
for who in $CAPTURERS; do
  best=0; best_ach=0; fail=0; why="none"
  for rate in $RATES; do
    read -r sent proc ach v < <(step "$who" "$rate")
    printf '%-9s rate %7d  sent %8d  processed %8d  achieved %7d pps  %s\n' "$who" "$rate" "$sent" "$proc" "$ach" "$v"
    if [ "$v" = pass ]; then best=$rate; best_ach=$ach; else fail=$rate; why="$v at $rate"; break; fi
  done
  i=0
  while [ "$fail" -gt 0 ] && [ "$i" -lt "$BISECT" ]; do
    i=$((i + 1))
    rate=$(( (best + fail) / 2 ))
    [ "$rate" -gt "$best" ] || break
    read -r sent proc ach v < <(step "$who" "$rate")
    printf '%-9s rate %7d  sent %8d  processed %8d  achieved %7d pps  %s (bisect)\n' "$who" "$rate" "$sent" "$proc" "$ach" "$v"
    if [ "$v" = pass ]; then best=$rate; best_ach=$ach; else fail=$rate; why="$v at $rate"; fi
  done
  LIMIT[$who]=$why
  BEST[$who]=$best_ach
  if [ "$fail" -eq 0 ]; then BEST[$who]="$best_ach+"; fi
done

echo
echo "highest rate with < 0.1% loss (packets/s actually sent; + = every step passed):"
for who in $CAPTURERS; do
  b=${BEST[$who]%+}
  t=${BEST[tcpdump]%+}
  ratio=$(awk -v a="$b" -v t="$t" 'BEGIN { if (t > 0) printf "%.2f", a / t; else print "n/a" }')
  printf '  %-9s %8s pps  (%s of tcpdump; next step failed: %s)\n' "$who" "${BEST[$who]}" "$ratio" "${LIMIT[$who]}"
done
echo "(medtap1 = --workers 1, medtapN = --workers $NPROC, b = --no-immediate; mean packet $IN_AVG bytes;"
echo " 'sender' = tcpreplay could not reach the rate: the capturer was not the limit there)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
