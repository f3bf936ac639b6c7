#!/usr/bin/env bash
# Regenerate tests/expected/tls/<capture path, "/" -> "__">.json from tshark's TLS dissector (the
# oracle of tests/tls_oracle.rs): per TCP connection, the first ClientHello and ServerHello.
#
#   bash tests/expected/tls/make.sh
#
# Commands (TShark 4.0.17, Debian 12), on each capture F:
#   tshark -n -r F -Y 'tls.handshake.type==1' -T fields -E occurrence=a -E aggregator=, \
#     -e tcp.stream -e ip.src -e ipv6.src -e tcp.srcport -e ip.dst -e ipv6.dst -e tcp.dstport \
#     -e tls.handshake.version -e tls.handshake.extensions_server_name \
#     -e tls.handshake.extensions.supported_version -e tls.handshake.ciphersuite \
#     -e tls.handshake.ja3 -e tls.handshake.ja3_full
#   tshark -n -r F -Y 'tls.handshake.type==2' -T fields -E occurrence=a -E aggregator=, \
#     -e tcp.stream -e tls.handshake.version -e tls.handshake.extensions.supported_version \
#     -e tls.handshake.ciphersuite -e tls.handshake.ja3s -e tls.handshake.ja3s_full \
#     -e tls.handshake.random
# hello_retry_request: the first ServerHello's random is the HelloRetryRequest magic
# (RFC 8446 §4.1.3; tshark labels that message "Hello Retry Request").
# A frame can carry a ServerHello together with Certificate etc.: the handshake.version and
# ciphersuite of the first occurrence belong to the ServerHello (it comes first). JA3 strings
# contain commas but are single-valued, so the split on tabs is exact.
# Needs tshark and python3.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
cd "$REPO"
CAPTURES="tls_clients_v6_sll.pcap tls_versions.pcap tls_hrr.pcap corpus/generic/ndpi_443-curl.pcap
  corpus/generic/ndpi_443-firefox.pcap corpus/legacy/arkime_openssl-tls1.pcap
  corpus/legacy/arkime_openssl-tls1_1.pcap corpus/legacy/arkime_openssl-tls1_2.pcap
  corpus/legacy/arkime_openssl-ssl3.pcap"
for cap in $CAPTURES; do
  out="$HERE/${cap//\//__}.json"
  ch=$(tshark -n -r "pcaps/$cap" -Y 'tls.handshake.type==1' -T fields -E occurrence=a -E aggregator=, \
    -e tcp.stream -e ip.src -e ipv6.src -e tcp.srcport -e ip.dst -e ipv6.dst -e tcp.dstport \
    -e tls.handshake.version -e tls.handshake.extensions_server_name \
    -e tls.handshake.extensions.supported_version -e tls.handshake.ciphersuite \
    -e tls.handshake.ja3 -e tls.handshake.ja3_full 2>/dev/null)
  sh=$(tshark -n -r "pcaps/$cap" -Y 'tls.handshake.type==2' -T fields -E occurrence=a -E aggregator=, \
    -e tcp.stream -e tls.handshake.version -e tls.handshake.extensions.supported_version \
    -e tls.handshake.ciphersuite -e tls.handshake.ja3s -e tls.handshake.ja3s_full \
    -e tls.handshake.random 2>/dev/null)
  CH="$ch" SH="$sh" CAP="$cap" VERSION="$(tshark --version 2>/dev/null | head -1)" python3 -c '
import json, os
def ep(a, p):
    return f"[{a}]:{p}" if ":" in a else f"{a}:{p}"
HRR = "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"
def first(v):
    return v.split(",")[0] if v else ""
def lst(v):
    return v.split(",") if v else []
conns = {}
for line in os.environ["CH"].splitlines():
    st, s4, s6, sp, d4, d6, dp, ver, sni, sv, cs, ja3, ja3f = line.split("\t")
    if st in conns:
        continue
    conns[st] = {"client": ep(first(s4) or first(s6), first(sp)), "server": ep(first(d4) or first(d6), first(dp)),
                 "client_version": first(ver), "sni": first(sni), "client_supported_versions": lst(sv),
                 "client_cipher_suites": lst(cs), "ja3": first(ja3), "ja3_string": ja3f}
for line in os.environ["SH"].splitlines():
    st, ver, sv, cs, ja3s, ja3sf, rnd = line.split("\t")
    c = conns.get(st)
    if c is None or "server_version" in c:
        continue
    c.update({"server_version": first(ver), "server_selected_version": first(sv),
              "cipher_suite": first(cs), "ja3s": first(ja3s), "ja3s_string": ja3sf,
              "hello_retry_request": first(rnd) == HRR})
out = {"capture": "pcaps/" + os.environ["CAP"], "tshark": os.environ["VERSION"],
       "connections": [conns[k] for k in sorted(conns, key=int)]}
print(json.dumps(out, indent=1))
' >"$out"
  echo "${out#"$REPO/"}: $(grep -c '"client"' "$out") connections"
done
