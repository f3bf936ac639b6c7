#!/usr/bin/env bash
# Generates pcaps/tls_hrr.pcap (Ethernet): two TLS 1.3 connections of `openssl s_client` to
# `openssl s_server -HTTP -naccept 1`, fetching /hello.txt, one of them with a HelloRetryRequest
# (RFC 8446 §4.1.4): the client's key share is for a group the server does not take.
#
#   client qa-hrr-cli  hc0  02:00:5e:77:3c:0a  10.77.60.10/24
#   server qa-hrr-srv  hs0  02:00:5e:77:3c:14  10.77.60.20/24
#   self-signed RSA-2048 certificate, CN=pacs.hospital.example (made fresh on every run)
#
# Connections, in capture order:
#   10.77.60.20:8443  s_server -groups P-256, s_client -groups X25519:P-256: the ClientHello
#                     carries an X25519 key share only, the server answers with a
#                     HelloRetryRequest (secp256r1), the client sends a second ClientHello.
#                     SNI hrr.pacs.hospital.example
#   10.77.60.20:8444  both -groups X25519: no retry. SNI nohrr.pacs.hospital.example
# The script checks that s_client reports TLSv1.3 and the answer arrives.
# Needs: iproute2 tcpdump ethtool openssl
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PCAPS=$(cd "$HERE/.." && pwd)
OUT="$PCAPS/tls_hrr.pcap"
# shellcheck source=netns_lib.sh
. "$HERE/netns_lib.sh"
need openssl capinfos

C=qa-hrr-cli S=qa-hrr-srv
ns_init "$C" "$S"
veth "$C" hc0 02:00:5e:77:3c:0a "$S" hs0 02:00:5e:77:3c:14
ip -n "$C" addr add 10.77.60.10/24 dev hc0
ip -n "$S" addr add 10.77.60.20/24 dev hs0

mkdir -p "$WORKDIR/srv"
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=pacs.hospital.example \
    -keyout "$WORKDIR/key.pem" -out "$WORKDIR/cert.pem" 2>/dev/null
printf 'hello over TLS from the medtap test PACS\n' >"$WORKDIR/srv/hello.txt"
nsx "$C" ping -q -c 1 -W 2 10.77.60.20 >/dev/null

cap_start "$C" "$OUT" -i hc0

# one TLS 1.3 connection: PORT SNI SERVER_GROUPS CLIENT_GROUPS
conn() {
    local port=$1 sni=$2 sgroups=$3 cgroups=$4
    (cd "$WORKDIR/srv" && exec ip netns exec "$S" openssl s_server -accept "$port" -naccept 1 -HTTP \
        -cert "$WORKDIR/cert.pem" -key "$WORKDIR/key.pem" -tls1_3 -groups "$sgroups" \
        >"$WORKDIR/s_server.$port.log" 2>&1) &
    local spid=$!
    BG_PIDS+=("$spid")
    wait_until "s_server $port" 100 tcp_listening "$S" "$port"
    printf 'GET /hello.txt HTTP/1.0\r\n\r\n' |
        nsx "$C" timeout 10 openssl s_client -connect "10.77.60.20:$port" -servername "$sni" -ign_eof \
            -tls1_3 -groups "$cgroups" >"$WORKDIR/s_client.$port.log" 2>&1
    wait "$spid"
    grep -q 'Protocol  *: TLSv1.3$' "$WORKDIR/s_client.$port.log" ||
        { echo "port $port: expected TLSv1.3" >&2; cat "$WORKDIR/s_client.$port.log" >&2; exit 1; }
    grep -q '^hello over TLS' "$WORKDIR/s_client.$port.log" ||
        { echo "port $port: no application data" >&2; exit 1; }
    echo "port $port: $(grep -m1 -o 'Server Temp Key: .*' "$WORKDIR/s_client.$port.log")"
}
conn 8443 hrr.pacs.hospital.example P-256 X25519:P-256
conn 8444 nohrr.pacs.hospital.example X25519 X25519

cap_stop_counted "$OUT"
