#!/usr/bin/env bash
# Generates pcaps/tls_versions.pcap (Ethernet): one TLS connection per protocol version, each an
# `openssl s_client` (with SNI) against its own `openssl s_server -HTTP -naccept 1`, fetching
# /hello.txt (a short application-data exchange: one request, one ~80-byte response), then closing.
#
#   client mtp-tls-cli  tc0  02:00:5e:77:06:0a  10.77.6.10/24  fd00:77:6::10/64
#   server mtp-tls-srv  ts0  02:00:5e:77:06:14  10.77.6.20/24  fd00:77:6::20/64
#   self-signed RSA-2048 certificate, CN=pacs.hospital.example (made fresh on every run)
#
# Connections, in capture order (server port identifies the version):
#   10.77.6.20:8440      TLS 1.0  s_client/s_server -tls1   -cipher DEFAULT@SECLEVEL=0  SNI tls10.pacs.hospital.example
#   10.77.6.20:8441      TLS 1.1  s_client/s_server -tls1_1 -cipher DEFAULT@SECLEVEL=0  SNI tls11.pacs.hospital.example
#   10.77.6.20:8442      TLS 1.2  -tls1_2                                               SNI tls12.pacs.hospital.example
#   10.77.6.20:8443      TLS 1.3  -tls1_3                                               SNI tls13.pacs.hospital.example
#   [fd00:77:6::20]:443  TLS 1.3  no version option (negotiated; its ClientHello supported_versions lists 1.3, 1.2, 1.1, 1.0)  SNI pacs.hospital.example
# The script checks the version each s_client reports and fails on a mismatch.
# (OpenSSL 3.0 with Debian's MinProtocol=TLSv1.2 default: TLS 1.0/1.1 need the explicit option on
# both ends and security level 0.)
# Needs: iproute2 tcpdump ethtool openssl
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PCAPS=$(cd "$HERE/.." && pwd)
OUT="$PCAPS/tls_versions.pcap"
# shellcheck source=netns_lib.sh
. "$HERE/netns_lib.sh"
need openssl

C=mtp-tls-cli S=mtp-tls-srv
ns_init "$C" "$S"
veth "$C" tc0 02:00:5e:77:06:0a "$S" ts0 02:00:5e:77:06:14
ip -n "$C" addr add 10.77.6.10/24 dev tc0
ip -n "$C" addr add fd00:77:6::10/64 dev tc0 nodad
ip -n "$S" addr add 10.77.6.20/24 dev ts0
ip -n "$S" addr add fd00:77:6::20/64 dev ts0 nodad

mkdir -p "$WORKDIR/srv"
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=pacs.hospital.example \
    -keyout "$WORKDIR/key.pem" -out "$WORKDIR/cert.pem" 2>/dev/null
printf 'hello over TLS from the medtap test PACS\n' >"$WORKDIR/srv/hello.txt"
nsx "$C" ping -q -c 1 -W 2 10.77.6.20 >/dev/null
nsx "$C" ping -6 -q -c 1 -W 2 fd00:77:6::20 >/dev/null

cap_start "$C" "$OUT" -i tc0

# one TLS connection: PORT ACCEPT CONNECT SNI EXPECTED_PROTOCOL [version options...]
conn() {
    local port=$1 accept=$2 connect=$3 sni=$4 want=$5; shift 5
    (cd "$WORKDIR/srv" && exec ip netns exec "$S" openssl s_server -accept "$accept" -naccept 1 -HTTP \
        -cert "$WORKDIR/cert.pem" -key "$WORKDIR/key.pem" "$@" >"$WORKDIR/s_server.$port.log" 2>&1) &
    local spid=$!
    BG_PIDS+=("$spid")
    wait_until "s_server $port" 100 tcp_listening "$S" "$port"
    printf 'GET /hello.txt HTTP/1.0\r\n\r\n' |
        nsx "$C" timeout 10 openssl s_client -connect "$connect" -servername "$sni" -ign_eof "$@" \
            >"$WORKDIR/s_client.$port.log" 2>&1
    wait "$spid"
    grep -q "Protocol  *: $want\$" "$WORKDIR/s_client.$port.log" ||
        { echo "port $port: expected $want" >&2; cat "$WORKDIR/s_client.$port.log" >&2; exit 1; }
    grep -q '^hello over TLS' "$WORKDIR/s_client.$port.log" ||
        { echo "port $port: no application data" >&2; exit 1; }
    echo "port $port: $want, $(grep -m1 -o 'Cipher is .*' "$WORKDIR/s_client.$port.log")"
}
conn 8440 10.77.6.20:8440 10.77.6.20:8440 tls10.pacs.hospital.example TLSv1 -tls1 -cipher DEFAULT@SECLEVEL=0
conn 8441 10.77.6.20:8441 10.77.6.20:8441 tls11.pacs.hospital.example TLSv1.1 -tls1_1 -cipher DEFAULT@SECLEVEL=0
conn 8442 10.77.6.20:8442 10.77.6.20:8442 tls12.pacs.hospital.example TLSv1.2 -tls1_2
conn 8443 10.77.6.20:8443 10.77.6.20:8443 tls13.pacs.hospital.example TLSv1.3 -tls1_3
conn 443 '[fd00:77:6::20]:443' '[fd00:77:6::20]:443' pacs.hospital.example TLSv1.3

cap_stop
echo "wrote $OUT: $(capinfos -c -M "$OUT" | awk -F': *' '/Number of packets/ {print $2}') packets"
