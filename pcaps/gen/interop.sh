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
#   dicom_dcmjs -> pcaps/dicom/dcmjs.pcap
#     dcmjs-dimse 0.3.3 SCU -> dcmjs-dimse SCP (pcaps/gen/dcmjs_peer.js) on 10.77.201.20:11112:
#     (1) one association with 5 presentation contexts and user identity negotiation (username
#     and passcode): C-ECHO, Study Root C-FIND (2 matches), C-STORE of a CT (pcaps/gen/
#     dicom_files.py), MPPS N-CREATE and N-SET, Storage Commitment N-ACTION, release;
#     (2) called AE WRONG_AE: A-ASSOCIATE-RJ (permanent, service user, called AE not recognized);
#     (3) C-ECHO, then N-DELETE, which the SCP answers with an A-ABORT.
#   dicom_gdcm -> pcaps/dicom/gdcm.pcap
#     GDCM 3.0.21 gdcmscu (Debian libgdcm-tools) -> pynetdicom 3.0.4 Q/R SCP (pcaps/gen/
#     dicom_pynetdicom.py qrscp) on 10.77.201.20:11112: C-ECHO, Study Root and Patient Root
#     C-FIND, C-MOVE of the MR study to gdcmscu's own storage SCP (port 11113, a second
#     association from the SCP), C-STORE of a CT (the Q/R SCP has no storage handler: status
#     0xC211). gdcmscu 3.0.21 aborts with "ProtocolStream as nullptr" after each operation has
#     completed (a teardown bug); the traffic is complete and the script goes on.
#
# Addresses: client 10.77.20x.10 (02:00:5e:77:ca:0a), server 10.77.20x.20 (02:00:5e:77:ca:14),
# x = 1 for DICOM, 2 for HL7.
# Needs: iproute2 tcpdump ethtool capinfos python3 (pydicom, pynetdicom) node npm gdcmscu
# (dcmjs-dimse and node-hl7-server are installed from the npm registry into the scratch folder
# unless NODE_PATH already has them). Run as root.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PCAPS=$(cd "$HERE/.." && pwd)
NSP=${MEDTAP_GEN_NSP:-qa-int}
# shellcheck source=netns_lib.sh
. "$HERE/netns_lib.sh"
need python3 node npm capinfos gdcmscu

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

dicom_dcmjs() {
  local out="$PCAPS/dicom/dcmjs.pcap"
  pair 201
  node_modules dcmjs-dimse@0.3.3
  python3 "$HERE/dicom_files.py" "$WORKDIR/files" >/dev/null
  spawn "$S" node "$HERE/dcmjs_peer.js" server 11112 DCMJS_SCP 60
  wait_until "dcmjs-dimse SCP" 100 tcp_listening "$S" 11112
  cap_start "$C" "$out" -i "${NSP}c0"
  nsx "$C" node "$HERE/dcmjs_peer.js" client 10.77.201.20 11112 DCMJS_SCU DCMJS_SCP full "$WORKDIR/files/ct_2.dcm"
  nsx "$C" node "$HERE/dcmjs_peer.js" client 10.77.201.20 11112 DCMJS_SCU WRONG_AE echo
  nsx "$C" node "$HERE/dcmjs_peer.js" client 10.77.201.20 11112 DCMJS_SCU DCMJS_SCP abort
  cap_stop_counted "$out"
  cleanup
  NS_LIST=() BG_PIDS=()
}

dicom_gdcm() {
  local out="$PCAPS/dicom/gdcm.pcap" mr
  pair 201
  python3 "$HERE/dicom_files.py" "$WORKDIR/files" >/dev/null
  spawn "$S" python3 "$HERE/dicom_pynetdicom.py" qrscp --port 11112 --aet PACS_QR --lifetime 60 \
    --move-dest "GDCM_WS=10.77.201.10:11113" \
    "$WORKDIR/files/ct_2.dcm" "$WORKDIR/files/mr_1.dcm" "$WORKDIR/files/mr_2.dcm"
  wait_until "pynetdicom Q/R SCP" 100 tcp_listening "$S" 11112
  mr=$(python3 -c 'import sys,pydicom;print(pydicom.dcmread(sys.argv[1]).StudyInstanceUID)' "$WORKDIR/files/mr_1.dcm")
  mkdir -p "$WORKDIR/move"
  cap_start "$C" "$out" -i "${NSP}c0"
  # gdcmscu exits non-zero after its work is done (see above): its status is not checked
  nsx "$C" gdcmscu --echo --aetitle GDCM_WS --call PACS_QR 10.77.201.20 11112 || true
  nsx "$C" gdcmscu --find --studyroot --study --aetitle GDCM_WS --call PACS_QR \
    --key 10,10=TESTPATIENT* --key 20,d= 10.77.201.20 11112 || true
  nsx "$C" gdcmscu --find --patientroot --patient --aetitle GDCM_WS --call PACS_QR \
    --key 10,20=PID-TEST-0002 --key 10,10= 10.77.201.20 11112 || true
  nsx "$C" timeout 30 gdcmscu --move --studyroot --study --aetitle GDCM_WS --call PACS_QR \
    --port-scp 11113 -o "$WORKDIR/move" --key "20,d=$mr" 10.77.201.20 11112 || true
  nsx "$C" gdcmscu --store --aetitle GDCM_WS --call PACS_QR -i "$WORKDIR/files/ct_2.dcm" \
    10.77.201.20 11112 || true
  cap_stop_counted "$out"
  [ "$(ls "$WORKDIR/move" | wc -l)" = 2 ] || { echo "gdcmscu C-MOVE received no 2 files" >&2; exit 1; }
  cleanup
  NS_LIST=() BG_PIDS=()
}

ALL="hl7_node_batch dicom_dcmjs dicom_gdcm"
for what in ${@:-$ALL}; do
  case " $ALL " in *" $what "*) "$what" ;; *) echo "unknown capture: $what (one of: $ALL)" >&2; exit 2 ;; esac
done
