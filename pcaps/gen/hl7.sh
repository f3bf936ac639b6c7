#!/usr/bin/env bash
# Generate the HL7 v2 / MLLP test captures in pcaps/hl7/ with real software: python-hl7's MLLP
# client and listener (pcaps/gen/hl7_mllp.py) talking inside network namespaces that this script
# creates and removes. Traffic stays inside them; tcpdump records the interface engine's switch port.
#
#   sudo bash pcaps/gen/hl7.sh             # all captures
#   sudo bash pcaps/gen/hl7.sh nak latin1  # only some
#
# Needs (Debian 12): tcpdump tshark ethtool iproute2; Python: hl7 (python-hl7; tested with 0.4.5,
# tshark 4.0.17). Run as root.
#
# Lab: a bridge in namespace mthl7-hub, one namespace per host, veth to the bridge, IPv6 off,
# checksum/segmentation offloads off (real checksums, MTU-sized segments).
#   host     IP           MAC                 OUI owner (IEEE MA-L, as in Wireshark's manuf file)
#   engine   10.77.2.10   02:77:02:00:00:10   locally administered (HL7 interface engine, listener)
#   ehr      10.77.2.20   02:77:02:00:00:20   locally administered (EHR: ADT, orders)
#   pump     10.77.2.30   58:42:e4:77:02:42   58:42:E4 Baxter International Inc (infusion pump gateway)
#   monitor  10.77.2.40   00:09:fb:77:02:05   00:09:FB Philips Patient Monitoring (monitor gateway)
#   lab      10.77.2.50   02:77:02:00:00:50   locally administered (lab system)
# The pump's and monitor's OBX-18 EUI-64 identifiers are derived from those MACs (OUI + FFFE + NIC).
#
# Patient data is fake; every PHI value used is in pcaps/hl7/PHI_VALUES.txt.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT="$REPO/pcaps/hl7"
PY=${PYTHON:-python3}
NSP=${MEDTAP_GEN_NSP:-mthl7}  # namespace prefix (override to keep labs apart)
HUB=$NSP-hub
HOSTS="engine ehr pump monitor lab"
declare -A IP=([engine]=10.77.2.10 [ehr]=10.77.2.20 [pump]=10.77.2.30 [monitor]=10.77.2.40 [lab]=10.77.2.50)
declare -A MAC=([engine]=02:77:02:00:00:10 [ehr]=02:77:02:00:00:20 [pump]=58:42:e4:77:02:42 [monitor]=00:09:fb:77:02:05 [lab]=02:77:02:00:00:50)

[ "$(id -u)" = 0 ] || { echo "hl7.sh: must run as root (network namespaces)" >&2; exit 2; }
for t in tcpdump tshark ethtool ip; do
  command -v "$t" >/dev/null || { echo "hl7.sh: missing $t (apt-get install tcpdump tshark ethtool iproute2)" >&2; exit 2; }
done
"$PY" -c 'import hl7.mllp' 2>/dev/null || { echo "hl7.sh: pip install hl7" >&2; exit 2; }

LAB_VETH=v- LAB_PORT=p-  # veth v-HOST (renamed eth0 in the host) / switch port p-HOST
CAP_DRAIN=0.5
# shellcheck source=pcaps/gen/netns_lib.sh
. "$HERE/netns_lib.sh"
lab_init hl7

# hl7.segment is one string per segment ("MSH|^~\&|APP|..."), printed by tshark with a literal
# "\r" (backslash, r) at its end: split on segments, then on '|' (MSH-n is field n+1 for MSH)
hl7_msgs() {  # FILE PORT -> "MSH-9 MSH-10 [MSA-1]" per message
  tshark -n -r "$1" -d "tcp.port==$2,hl7" -Y hl7 -T fields -E occurrence=a -E aggregator=$'\x1e' \
      -e hl7.segment 2>/dev/null | tr '\036' '\n' | sed 's/\\r$//' | awk -F'|' '
    /^MSH\|/ { if (m != "") print m; m = $9 " " $10 }
    /^MSA\|/ { m = m " " $2 }
    END { if (m != "") print m }'
}

expect_msgs() {  # FILE PORT EXPECTED_LINES(newline separated)
  local got; got=$(hl7_msgs "$1" "$2")
  if [ "$got" != "$3" ]; then
    echo "$(basename "$1"): tshark sees" >&2; echo "$got" >&2; echo "expected" >&2; echo "$3" >&2; exit 1
  fi
}

finish() {  # NAME PORT
  local name=$1 port=$2
  mv "$WORK/$name.pcap" "$OUT/$name.pcap"; chmod 644 "$OUT/$name.pcap"
  printf '%-22s %5s pkts  HL7 (MSH-9 MSH-10 MSA-1): %s\n' "$name.pcap" \
    "$(tshark -n -r "$OUT/$name.pcap" 2>/dev/null | wc -l)" "$(hl7_msgs "$OUT/$name.pcap" "$port" | paste -sd ';' | sed 's/;/; /g')"
}

# ---------------------------------------------------------------------------------------------
cap_adt_oru_orm() {
  lab_up; start_capture engine "$WORK/adt_oru_orm.pcap"
  bg engine listener "$PY" "$HERE/hl7_mllp.py" server --port 2575 --lifetime 60
  wait_listen engine 2575
  run ehr "$PY" "$HERE/hl7_mllp.py" client --host "${IP[engine]}" --port 2575 --scenario adt_orm
  run pump "$PY" "$HERE/hl7_mllp.py" client --host "${IP[engine]}" --port 2575 --scenario oru_pump
  stop_capture; stop_pids
  expect_msgs "$WORK/adt_oru_orm.pcap" 2575 "ADT^A01^ADT_A01 ADT00001
ACK^A01^ACK ACKADT00001 AA
ADT^A08^ADT_A01 ADT00002
ACK^A08^ACK ACKADT00002 AA
ORM^O01^ORM_O01 ORM00001
ACK^O01^ACK ACKORM00001 AA
ORU^R01^ORU_R01 PUMP00001
ACK^R01^ACK ACKPUMP00001 AA"
  finish adt_oru_orm 2575
}

cap_nak() {
  lab_up; start_capture engine "$WORK/nak.pcap"
  bg engine listener "$PY" "$HERE/hl7_mllp.py" server --port 2575 --lifetime 60
  wait_listen engine 2575
  run ehr "$PY" "$HERE/hl7_mllp.py" client --host "${IP[engine]}" --port 2575 --scenario nak
  stop_capture; stop_pids
  expect_msgs "$WORK/nak.pcap" 2575 "ADT^A04^ADT_A01 ADT00003
ACK^A04^ACK ACKADT00003 AE
QRY^A19^QRY_A19 QRY00001
ACK^A19^ACK ACKQRY00001 AR"
  finish nak 2575
}

cap_large_oru() {
  lab_up; start_capture engine "$WORK/large_oru.pcap"
  bg engine listener "$PY" "$HERE/hl7_mllp.py" server --port 2575 --lifetime 60
  wait_listen engine 2575
  run monitor "$PY" "$HERE/hl7_mllp.py" client --host "${IP[engine]}" --port 2575 --scenario large_oru
  stop_capture; stop_pids
  expect_msgs "$WORK/large_oru.pcap" 2575 "ORU^R01^ORU_R01 ORU00001
ACK^R01^ACK ACKORU00001 AA"
  finish large_oru 2575
}

cap_latin1() {
  lab_up; start_capture engine "$WORK/latin1.pcap"
  bg engine listener "$PY" "$HERE/hl7_mllp.py" server --port 2575 --encoding iso-8859-1 --lifetime 60
  wait_listen engine 2575
  run ehr "$PY" "$HERE/hl7_mllp.py" client --host "${IP[engine]}" --port 2575 --scenario latin1
  stop_capture; stop_pids
  # the name must be on the wire in ISO-8859-1 (M 0xDC LLER ^ J 0xD6 RG), not UTF-8
  LC_ALL=C grep -qaP 'M\xdcLLER\^J\xd6RG' "$WORK/latin1.pcap" || { echo "latin1.pcap: no ISO-8859-1 name" >&2; exit 1; }
  expect_msgs "$WORK/latin1.pcap" 2575 "ADT^A01^ADT_A01 ADT00004
ACK^A01^ACK ACKADT00004 AA"
  finish latin1 2575
}

cap_nonstd_port() {
  lab_up; start_capture engine "$WORK/nonstd_port.pcap"
  bg engine listener "$PY" "$HERE/hl7_mllp.py" server --port 12000 --lifetime 60
  wait_listen engine 12000
  run lab "$PY" "$HERE/hl7_mllp.py" client --host "${IP[engine]}" --port 12000 --scenario nonstd
  stop_capture; stop_pids
  expect_msgs "$WORK/nonstd_port.pcap" 12000 "ORU^R01^ORU_R01 LAB00001
ACK^R01^ACK ACKLAB00001 AA"
  finish nonstd_port 12000
}

cap_missing_end_block() {
  lab_up; start_capture engine "$WORK/missing_end_block.pcap"
  bg engine listener "$PY" "$HERE/hl7_mllp.py" server --port 2575 --lifetime 60
  wait_listen engine 2575
  run ehr "$PY" "$HERE/hl7_mllp.py" client --host "${IP[engine]}" --port 2575 --scenario missing_end_block
  stop_capture; stop_pids
  grep -q "discarded" "$WORK/listener.log" || { echo "listener did not see the broken frame" >&2; exit 1; }
  # The listener resynchronises on the second start block: ADT00005 is dropped, ADT00006 is
  # acknowledged. tshark 4.0.17 does not resynchronise: it reassembles up to the first 0x1C 0x0D
  # and shows ONE message ADT00005 whose segments include the second frame's (its MSH segment
  # starting with the 0x0B byte), so ADT00006 is invisible to it.
  expect_msgs "$WORK/missing_end_block.pcap" 2575 "ADT^A08^ADT_A01 ADT00005
ACK^A08^ACK ACKADT00006 AA"
  finish missing_end_block 2575
}

ALL="adt_oru_orm nak large_oru latin1 nonstd_port missing_end_block"
mkdir -p "$OUT"
for c in ${*:-$ALL}; do
  grep -qw -- "$c" <<<"$ALL" || { echo "unknown capture $c (have: $ALL)" >&2; exit 2; }
  echo "== $c"
  "cap_$c"
done
echo "done: $OUT"
