# shellcheck shell=bash
# Shared helpers for the capture generators in pcaps/gen/ (sourced, not run).
#
# Every generator builds its own network namespaces (names prefixed "mtp-"; the bridge labs and
# client/server pairs further down use the names their script sets), joins them with veth
# pairs carrying locally-administered MACs (02:...) and 10.77.x.x / fd00:77:x::/64 addresses,
# runs real software in them and captures with tcpdump. Nothing leaves those namespaces.
# All loops are bounded; cleanup() (installed as an EXIT trap by ns_init) kills what we started and
# deletes the namespaces, so a generator can be re-run any number of times.
#
# Needs root, iproute2, tcpdump, ethtool; each generator lists its own extra tools.

NS_LIST=()
BG_PIDS=()

need() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || { echo "missing tool: $t (apt-get install it)" >&2; exit 1; }
    done
}

cleanup() {
    local p ns
    for p in "${BG_PIDS[@]:-}"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null || true
    done
    for p in "${BG_PIDS[@]:-}"; do
        [ -n "$p" ] && wait "$p" 2>/dev/null || true
    done
    for ns in "${NS_LIST[@]:-}"; do
        [ -n "$ns" ] && ip netns del "$ns" 2>/dev/null || true
    done
    [ -n "${WORKDIR:-}" ] && [ -z "${KEEP_WORKDIR:-}" ] && rm -rf "$WORKDIR"
    return 0
}

# ns_init NS... : delete leftovers of an earlier run, create fresh namespaces, install the trap.
ns_init() {
    [ "$(id -u)" = 0 ] || { echo "must run as root (network namespaces)" >&2; exit 1; }
    need ip tcpdump ethtool
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    local ns
    for ns in "$@"; do
        ip netns del "$ns" 2>/dev/null || true
        ip netns add "$ns"
        NS_LIST+=("$ns")
        ip -n "$ns" link set lo up
        # keep the captures free of router solicitations; nothing here routes
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.router_solicitations=0
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.router_solicitations=0
    done
    WORKDIR=$(mktemp -d /tmp/medtap-gen.XXXXXX)
}

# nsx NS cmd... : run in namespace
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# veth NS1 IF1 MAC1 NS2 IF2 MAC2 : veth pair between two namespaces, offloads off (so the capture
# holds real MTU-sized segments with correct checksums, as on a physical wire), both ends up.
veth() {
    local ns1=$1 if1=$2 mac1=$3 ns2=$4 if2=$5 mac2=$6 ns ifc
    ip link add name "$if1" netns "$ns1" type veth peer name "$if2" netns "$ns2"
    ip -n "$ns1" link set dev "$if1" address "$mac1"
    ip -n "$ns2" link set dev "$if2" address "$mac2"
    for ns in "$ns1:$if1" "$ns2:$if2"; do
        ifc=${ns#*:}; ns=${ns%%:*}
        nsx "$ns" ethtool -K "$ifc" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
        nsx "$ns" sysctl -qw "net.ipv6.conf.$ifc.router_solicitations=0" 2>/dev/null || true
        ip -n "$ns" link set dev "$ifc" up
    done
}

# spawn NS cmd... : start a background process in a namespace, remember its pid (sets LAST_PID)
spawn() {
    local ns=$1; shift
    ip netns exec "$ns" "$@" &
    LAST_PID=$!
    BG_PIDS+=("$LAST_PID")
}

# wait_until DESCRIPTION TRIES cmd... : poll cmd every 0.1 s, at most TRIES times
wait_until() {
    local what=$1 tries=$2 i; shift 2
    for ((i = 0; i < tries; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "timed out waiting for: $what" >&2
    return 1
}

# cap_start NS OUTFILE tcpdump-args... : start tcpdump writing OUTFILE, wait until it listens.
# Sets CAP_PID.
cap_start() {
    local ns=$1 out=$2; shift 2
    local log="$WORKDIR/tcpdump.$RANDOM.log"
    rm -f "$out"
    ip netns exec "$ns" tcpdump -n -U --immediate-mode -s 0 -Z root -w "$out" "$@" 2>"$log" &
    CAP_PID=$!
    BG_PIDS+=("$CAP_PID")
    wait_until "tcpdump listening ($*)" 100 grep -q "listening on" "$log"
}

# cap_stop : let the last packets drain, then stop tcpdump cleanly (SIGINT flushes the file)
cap_stop() {
    sleep 1
    kill -INT "$CAP_PID" 2>/dev/null || true
    wait "$CAP_PID" 2>/dev/null || true
}

# cap_stop_counted FILE : cap_stop, then print FILE's packet count; an empty capture is fatal
cap_stop_counted() {
    cap_stop
    local n
    n=$(capinfos -c -M "$1" | awk -F': *' '/Number of packets/ {print $2}')
    echo "  $(basename "$1"): $n packets"
    [ "$n" -gt 0 ] || { echo "empty capture $1" >&2; exit 1; }
}

# tcp_listening NS PORT : true when something listens on TCP PORT inside NS
tcp_listening() { nsx "$1" ss -Hltn "sport = :$2" | grep -q LISTEN; }
udp_bound() { nsx "$1" ss -Hlun "sport = :$2" | grep -q .; }

# ---------------------------------------------------------------------------------------------
# Bridge labs (anomaly_lab.sh, dicom.sh, hl7.sh): a bridge br0 in namespace $HUB and one
# namespace "$NSP-<host>" per host of $HOSTS, each joined to the bridge by a veth whose host end
# is eth0 (IP ${IP[host]}/24, MAC ${MAC[host]}) and whose bridge end is the switch port
# "$LAB_PORT<host>" (created as "$LAB_VETH<host>" / "$LAB_PORT<host>"); IPv6 off (no ND/MLD
# noise), checksum/segmentation offloads off (real checksums, MTU-sized segments). tcpdump
# records switch ports, as a SPAN of those ports would. The script sets NSP, HUB, HOSTS, IP,
# MAC, LAB_VETH and LAB_PORT (and LAB_EXTRA_HOSTS: hosts lab_up may be asked to add, removed by
# lab_down too; CAP_DRAIN: seconds stop_capture lets the last packets arrive, default 1), then
# calls lab_init.

# lab_init NAME: scratch folder $WORK (/tmp/medtap-NAME-gen.*), servers' pids in PIDS,
# lab_cleanup on exit.
lab_init() {
  WORK=$(mktemp -d "/tmp/medtap-$1-gen.XXXXXX")
  PIDS=()
  CAP_PID=
  trap lab_cleanup EXIT
  trap 'exit 130' INT TERM
}

# hx HOST cmd... : run in the host's namespace
hx() { local h=$1; shift; ip netns exec "$NSP-$h" "$@"; }

lab_down() {
  local h ns
  for ns in $(for h in $HOSTS ${LAB_EXTRA_HOSTS:-}; do echo "$NSP-$h"; done) "$HUB"; do
    # Whatever still runs in the namespace (a server bg did not track) goes with it.
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
}

# stop_pids: stop the servers bg started
stop_pids() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}

lab_cleanup() {
  set +e
  for p in $CAP_PID; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  stop_pids
  lab_down
  [ -n "${KEEP_WORK:-}" ] && echo "kept $WORK" >&2 || rm -rf "$WORK"
}

# lab_up [EXTRA HOSTS...]: the lab afresh, with the hosts of $HOSTS and those named
lab_up() {
  lab_down
  ip netns add "$HUB"
  ip netns exec "$HUB" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  # no STP, no multicast snooping/router discovery: the bridge itself sends nothing
  ip -n "$HUB" link add br0 type bridge stp_state 0 mcast_snooping 0
  ip -n "$HUB" link set br0 multicast off
  ip -n "$HUB" link set br0 up
  local h
  for h in $HOSTS "$@"; do
    ip netns add "$NSP-$h"
    hx "$h" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip link add "$LAB_VETH$h" netns "$NSP-$h" type veth peer name "$LAB_PORT$h" netns "$HUB"
    ip -n "$NSP-$h" link set "$LAB_VETH$h" name eth0
    ip -n "$NSP-$h" link set eth0 address "${MAC[$h]}"
    ip -n "$NSP-$h" addr add "${IP[$h]}/24" dev eth0
    ip -n "$NSP-$h" link set lo up
    ip -n "$NSP-$h" link set eth0 up
    hx "$h" ethtool -K eth0 tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
    ip -n "$HUB" link set "$LAB_PORT$h" master br0
    ip -n "$HUB" link set "$LAB_PORT$h" up
    ip netns exec "$HUB" ethtool -K "$LAB_PORT$h" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
  done
}

# start_capture "HOST..." FILE: record the switch ports of HOSTs (one tcpdump per port; a frame
# between two of them is seen twice and deduplicated when the capture stops)
start_capture() {
  local h f=$2 i
  CAP_FILE=$f; CAP_PID=; CAP_PARTS=()
  for h in $1; do
    : >"$WORK/tcpdump.$h.log"
    ip netns exec "$HUB" tcpdump -n -i "$LAB_PORT$h" -s 0 -U --immediate-mode -Z root -w "$f.$h" >"$WORK/tcpdump.$h.log" 2>&1 &
    CAP_PID="$CAP_PID $!"; CAP_PARTS+=("$f.$h")
    for i in $(seq 1 50); do
      grep -q "listening on" "$WORK/tcpdump.$h.log" && break
      [ "$i" = 50 ] && { echo "tcpdump did not start:" >&2; cat "$WORK/tcpdump.$h.log" >&2; exit 1; }
      sleep 0.1
    done
  done
}

stop_capture() {
  local p
  sleep "${CAP_DRAIN:-1}"
  for p in $CAP_PID; do kill -INT "$p"; wait "$p" || true; done
  CAP_PID=
  if [ "${#CAP_PARTS[@]}" = 1 ]; then
    mv "${CAP_PARTS[0]}" "$CAP_FILE"
  else
    mergecap -F pcap -w "$CAP_FILE.merged" "${CAP_PARTS[@]}"
    editcap -F pcap -D 20 "$CAP_FILE.merged" "$CAP_FILE" >/dev/null
    rm -f "$CAP_FILE.merged" "${CAP_PARTS[@]}"
  fi
}

# bg HOST LOGNAME CMD...: a server in the background, its output in $WORK/LOGNAME.log
bg() {
  local h=$1 name=$2; shift 2
  # A simple command, not the hx function: a backgrounded function runs in a subshell whose
  # pid is $!, and killing it left the server (dcmtk storescp has no lifetime) running after
  # its namespace was deleted. ip netns exec execs the command: $! is the server's pid.
  ip netns exec "$NSP-$h" "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
}

# run HOST CMD...: a client in the foreground, bounded in time
run() {
  local h=$1; shift
  echo "  [$h] $*" | sed "s#$WORK#\$WORK#g"
  timeout 120 ip netns exec "$NSP-$h" "$@" >>"$WORK/clients.log" 2>&1 || {
    echo "client failed: $*" >&2; tail -30 "$WORK/clients.log" >&2; exit 1; }
}

# wait_listen HOST PORT: until something listens on TCP PORT on HOST (at most 10 s)
wait_listen() {
  local h=$1 port=$2 i
  for i in $(seq 1 100); do
    hx "$h" ss -Hltn "sport = :$port" | grep -q . && return 0
    sleep 0.1
  done
  echo "nothing listens on $h:$port" >&2; tail -20 "$WORK"/*.log >&2; exit 1
}

# ---------------------------------------------------------------------------------------------
# Client/server pairs (anomalies.sh, baseline.sh): namespace $A (the client, veth $VA) and $B
# (the servers, veth $VB), set by the script; tcpdump records the client's veth.

# pair_up MAC_A IP_A MAC_B IP_B... : both namespaces afresh (removed on exit), the client at
# IP_A/24, the servers at each IP_B/24; PAIR_NO_IPV6=1 turns IPv6 off in both.
pair_up() {
  local mac_a=$1 ip_a=$2 mac_b=$3 n ip; shift 3
  SRV_PIDS=(); CAP=
  trap pair_cleanup EXIT
  pair_cleanup
  ip netns add "$A"; ip netns add "$B"
  ip link add "$VA" type veth peer name "$VB"
  ip link set "$VA" netns "$A" address "$mac_a"
  ip link set "$VB" netns "$B" address "$mac_b"
  ip -n "$A" addr add "$ip_a/24" dev "$VA"
  for ip in "$@"; do ip -n "$B" addr add "$ip/24" dev "$VB"; done
  for n in "$A" "$B"; do
    ip -n "$n" link set lo up
    if [ -n "${PAIR_NO_IPV6:-}" ]; then ip netns exec "$n" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1; fi
  done
  ip -n "$A" link set "$VA" up; ip -n "$B" link set "$VB" up
  ip netns exec "$A" ethtool -K "$VA" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
  ip netns exec "$B" ethtool -K "$VB" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
}

pair_cleanup() {
  local p
  for p in "${SRV_PIDS[@]:-}" "${CAP:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
}

# pair_http IP: python3 http.server on IP:8080 in $B
pair_http() {
  ip netns exec "$B" python3 -m http.server 8080 --bind "$1" >/dev/null 2>&1 &
  SRV_PIDS+=($!)
}

# pair_capture FILE / pair_stop: tcpdump on the client's veth into FILE, then stopped (SIGINT
# flushes the file) after the last packets arrived
pair_capture() { ip netns exec "$A" tcpdump -i "$VA" -U -s 0 -w "$1" >/dev/null 2>&1 & CAP=$!; sleep 1; }
pair_stop() { sleep 1; kill -INT "$CAP"; wait "$CAP" 2>/dev/null || true; CAP=; }
