# shellcheck shell=bash
# Shared helpers for the capture generators in pcaps/gen/ (sourced, not run).
#
# Every generator builds its own network namespaces (names prefixed "mtp-"), joins them with veth
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

# tcp_listening NS PORT : true when something listens on TCP PORT inside NS
tcp_listening() { nsx "$1" ss -Hltn "sport = :$2" | grep -q LISTEN; }
udp_bound() { nsx "$1" ss -Hlun "sport = :$2" | grep -q .; }
