#!/usr/bin/env bash
# Captures made with DICOM/HL7 software the other generators do not use, to check medtap against
# tshark on implementations it was not written against. Each runs in two network namespaces this
# script creates and removes (client $NSP-cli, server $NSP-srv, one veth), captured on the
# client's end with tcpdump.
#
#   sudo bash pcaps/gen/interop.sh                  # all
#   sudo bash pcaps/gen/interop.sh hl7_node_batch   # only some
#
#   hl7_node_batch -> pcaps/hl7/node_batch.pcap
#     pcaps/gen/hl7_raw_client.py (hand-rolled MLLP client) -> node-hl7-server 2.5.0
#     (pcaps/gen/hl7_node_server.js) on 10.77.202.20:2575; one connection per message shape:
#     a batch as the connection's first frame (FHS/BHS/MSH/.../BTS/FTS), non-default delimiters
#     (MSH#!@$%), v2.7 truncation character (MSH|^~\&#); each acknowledged AA by the server
#     (its ACKs end the MSA segment with the end block, no CR before it).
#     (A batch without file header, BHS first, is left out: tshark 4.0.17 does not decode such a
#     frame at all, so it cannot be the oracle for it; medtap's probe test covers BHS.)
#
# Addresses: client 10.77.202.10 (02:00:5e:77:ca:0a), server 10.77.202.20 (02:00:5e:77:ca:14).
# Needs: iproute2 tcpdump ethtool capinfos python3 node npm (node-hl7-server is installed from the
# npm registry into the scratch folder unless NODE_PATH already has it). Run as root.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PCAPS=$(cd "$HERE/.." && pwd)
NSP=${MEDTAP_GEN_NSP:-qa-int}
# shellcheck source=netns_lib.sh
. "$HERE/netns_lib.sh"
need python3 node npm capinfos

C=$NSP-cli S=$NSP-srv

pair() {  # SUBNET (third octet)
  ns_init "$C" "$S"
  veth "$C" "${NSP}c0" 02:00:5e:77:ca:0a "$S" "${NSP}s0" 02:00:5e:77:ca:14
  ip -n "$C" addr add "10.77.$1.10/24" dev "${NSP}c0"
  ip -n "$S" addr add "10.77.$1.20/24" dev "${NSP}s0"
  nsx "$C" ping -q -c 1 -W 2 "10.77.$1.20" >/dev/null
}

node_modules() {  # PACKAGE@VERSION...: makes them importable (NODE_PATH)
  local p missing=()
  for p in "$@"; do
    NODE_PATH=${NODE_PATH:-} node -e "require('${p%@*}')" 2>/dev/null || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    npm install --silent --no-audit --no-fund --prefix "$WORKDIR/node" "${missing[@]}" >/dev/null
    export NODE_PATH="$WORKDIR/node/node_modules${NODE_PATH:+:$NODE_PATH}"
  fi
}

hl7_node_batch() {
  local out="$PCAPS/hl7/node_batch.pcap" v
  pair 202
  node_modules node-hl7-server@2.5.0
  spawn "$S" node "$HERE/hl7_node_server.js" 2575 60
  wait_until "node-hl7-server" 100 tcp_listening "$S" 2575
  cap_start "$C" "$out" -i "${NSP}c0"
  for v in batch_first delims trunc; do
    nsx "$C" python3 "$HERE/hl7_raw_client.py" 10.77.202.20 2575 "$v"
  done
  cap_stop_counted "$out"
  cleanup
  NS_LIST=() BG_PIDS=()
}

ALL="hl7_node_batch"
for what in ${@:-$ALL}; do
  case " $ALL " in *" $what "*) "$what" ;; *) echo "unknown capture: $what (one of: $ALL)" >&2; exit 2 ;; esac
done
