#!/usr/bin/env bash
# Generate pcaps/inventory/inventory_a.pcap and inventory_b.pcap: a small hospital network of
# hosts with MACs of real vendors, each doing what that kind of device does, with real software
# in network namespaces this script creates and removes. The expected inventory medtap must
# build from them is tests/expected/inventory/inventory.json (checked by tests/inventory.rs).
#
#   sudo bash pcaps/gen/inventory.sh
#
# Needs (Debian 12): dcmtk dnsmasq busybox curl openssl tcpdump tshark ethtool iproute2;
# Python: pydicom, python-hl7 (tested with dcmtk 3.6.7, dnsmasq 2.90, busybox 1.35, curl 7.88,
# OpenSSL 3.0, pydicom 3.0, python-hl7 0.4.5). Run as root.
#
# Lab: a bridge in namespace inv-sw that floods every frame to every port (no MAC learning, like
# a hub), a monitor namespace inv-tap whose port tcpdump records once per frame, one namespace
# per host, IPv6 off (no ND/MLD noise), checksum/segmentation offloads off.
#   host  IP            MAC                 IEEE MA-L owner                        role
#   srv   10.74.0.2     00:14:38:74:00:02   Hewlett Packard Enterprise             DHCP (dnsmasq), HTTP, HTTPS, HL7 listener
#   pacs  10.74.0.10    00:09:5c:74:00:10   Philips Medical Systems                DICOM storescp (PACS)
#   ct    10.74.0.21    44:4b:5d:74:00:21   GE Healthcare                          DICOM storescu of a GE CT image
#   eng   10.74.0.30    00:18:65:74:00:30   Siemens Healthcare Diagnostics         HL7 sender, MSH-3 "MIRTH_CONNECT"
#   mon   10.74.0.41    00:a0:37:74:00:41   Mindray DS USA                         HL7 ORU with OBX-18 (patient monitor)
#   ws    10.74.0.50    00:06:5b:74:00:50   Dell                                   curl HTTPS and HTTP
#   pump  (DHCP)        58:42:e4:74:00:60   Baxter International                   busybox udhcpc, vendor class
#
# Capture a (DICOM, HL7 from the engine, the pump's DHCP lease) and capture b (the CT again, the
# monitor's HL7, the workstation's HTTPS/HTTP, the pump renewing its lease) are separate files,
# 130 s apart, so that a replay of a then b with one --state-dir can be compared to one replay of
# both.
# Patient data is fake (TESTPATIENT^...), as in pcaps/gen/dicom_files.py and hl7_mllp.py.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT="$REPO/pcaps/inventory"
DCMTK=/usr/bin
PY=${PYTHON:-python3}
NSP=inv
SW=$NSP-sw
TAP=$NSP-tap
HOSTS="srv pacs ct eng mon ws pump"
declare -A IP=([srv]=10.74.0.2 [pacs]=10.74.0.10 [ct]=10.74.0.21 [eng]=10.74.0.30 [mon]=10.74.0.41 [ws]=10.74.0.50 [pump]=)
declare -A MAC=([srv]=00:14:38:74:00:02 [pacs]=00:09:5c:74:00:10 [ct]=44:4b:5d:74:00:21 [eng]=00:18:65:74:00:30
                [mon]=00:a0:37:74:00:41 [ws]=00:06:5b:74:00:50 [pump]=58:42:e4:74:00:60)

[ "$(id -u)" = 0 ] || { echo "inventory.sh: must run as root (network namespaces)" >&2; exit 2; }
for t in "$DCMTK/storescp" "$DCMTK/storescu" dnsmasq busybox curl openssl tcpdump tshark ethtool ip; do
  command -v "$t" >/dev/null || { echo "inventory.sh: missing $t (apt-get install dcmtk dnsmasq busybox curl openssl tcpdump tshark ethtool iproute2)" >&2; exit 2; }
done
"$PY" -c 'import pydicom, hl7' 2>/dev/null || { echo "inventory.sh: pip install pydicom hl7" >&2; exit 2; }

WORK=$(mktemp -d /tmp/medtap-inv-gen.XXXXXX)
PIDS=()
CAP_PID=

lab_down() {
  local h
  for h in $HOSTS; do ip netns del "$NSP-$h" 2>/dev/null || true; done
  ip netns del "$TAP" 2>/dev/null || true
  ip netns del "$SW" 2>/dev/null || true
}

stop_pids() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}

cleanup() {
  [ -n "$CAP_PID" ] && kill "$CAP_PID" 2>/dev/null || true
  stop_pids
  lab_down
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

nsx() { local h=$1; shift; ip netns exec "$NSP-$h" "$@"; }
bg() { local h=$1 name=$2; shift 2; ip netns exec "$NSP-$h" "$@" >"$WORK/$name.log" 2>&1 & PIDS+=($!); }

port() {  # NS IF MAC : veth from the switch to NS, IF inside NS
  local ns=$1 ifc=$2 mac=$3 sw_if=$4
  ip link add name "$sw_if" netns "$SW" type veth peer name "$ifc" netns "$ns"
  ip -n "$ns" link set dev "$ifc" address "$mac"
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  ip netns exec "$ns" ethtool -K "$ifc" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
  ip netns exec "$SW" ethtool -K "$sw_if" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
  ip -n "$SW" link set dev "$sw_if" master invbr
  ip -n "$SW" link set dev "$sw_if" up
  # hub behaviour: no learning, flood unknown unicast
  ip netns exec "$SW" bridge link set dev "$sw_if" learning off flood on
  ip -n "$ns" link set dev "$ifc" up
}

lab_up() {
  lab_down
  ip netns add "$SW"
  ip netns exec "$SW" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  # no IGMP of its own (mcast_snooping 0), a fixed MAC (it sends nothing)
  ip -n "$SW" link add invbr address 02:74:00:00:00:fd type bridge ageing_time 0 stp_state 0 mcast_snooping 0
  ip -n "$SW" link set invbr up
  ip netns add "$TAP"
  ip -n "$TAP" link set lo up
  port "$TAP" inv-mon0 02:74:00:00:00:fe inv-sw-tap
  local h
  for h in $HOSTS; do
    ip netns add "$NSP-$h"
    ip -n "$NSP-$h" link set lo up
    port "$NSP-$h" "inv-$h" "${MAC[$h]}" "inv-s-$h"
    if [ -n "${IP[$h]}" ]; then ip -n "$NSP-$h" addr add "${IP[$h]}/24" dev "inv-$h"; fi
  done
}

start_capture() {
  ip netns exec "$TAP" tcpdump -i inv-mon0 -s 0 -U -w "$1" not ether src 02:74:00:00:00:fe 2>"$WORK/tcpdump.log" &
  CAP_PID=$!
  local i
  for i in $(seq 1 50); do grep -q "listening on" "$WORK/tcpdump.log" 2>/dev/null && break; sleep 0.1; done
}

stop_capture() {
  sleep 1
  kill -INT "$CAP_PID"; wait "$CAP_PID" 2>/dev/null || true; CAP_PID=
}

wait_listen() {  # HOST PORT
  local i
  for i in $(seq 1 100); do nsx "$1" ss -ltn "sport = :$2" | grep -q LISTEN && return 0; sleep 0.1; done
  echo "nothing listens on $1:$2" >&2; exit 1
}

run() { local h=$1; shift; timeout 60 ip netns exec "$NSP-$h" "$@" >>"$WORK/clients.log" 2>&1 || { echo "failed on $h: $*" >&2; tail -20 "$WORK/clients.log" >&2; exit 1; }; }

# --------------------------------------------------------------------------------- material
mkdir -p "$OUT" "$WORK/files" "$WORK/recv" "$WORK/www"
"$PY" "$HERE/dicom_files.py" "$WORK/files" >/dev/null
echo "medtap inventory test page" >"$WORK/www/index.html"
openssl req -x509 -newkey rsa:2048 -nodes -subj "/CN=srv.test" -days 2 \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
cat >"$WORK/udhcpc.sh" <<'EOF'
#!/bin/sh
# udhcpc event script: configure the leased address (nothing else).
case "$1" in
  bound|renew) ip addr flush dev "$interface"; ip addr add "$ip/${mask:-24}" dev "$interface" ;;
esac
exit 0
EOF
chmod +x "$WORK/udhcpc.sh"

servers_up() {
  bg srv dnsmasq dnsmasq --no-daemon --port=0 --interface=inv-srv --bind-interfaces \
    --dhcp-range=10.74.0.100,10.74.0.150,255.255.255.0,1h --dhcp-leasefile="$WORK/leases" --log-dhcp
  bg srv http "$PY" -m http.server --bind 10.74.0.2 --directory "$WORK/www" 80
  bg srv https openssl s_server -accept 443 -cert "$WORK/cert.pem" -key "$WORK/key.pem" -WWW -quiet
  bg srv hl7 "$PY" "$HERE/hl7_mllp.py" server --port 2575 --lifetime 120
  bg pacs storescp "$DCMTK/storescp" -aet PACS_SCP -od "$WORK/recv" 104
  wait_listen srv 80; wait_listen srv 443; wait_listen srv 2575; wait_listen pacs 104
}

hl7_send() {  # HOST APP OBX18... : one ADT^A01 (or ORU^R01 with OBX-18 when given) over MLLP
  local h=$1 app=$2 obx=${3:-}
  run "$h" "$PY" - "$app" "$obx" <<'EOF'
import sys, hl7
from hl7.client import MLLPClient
app, obx = sys.argv[1], sys.argv[2]
msh = f"MSH|^~\\&|{app}|ICU_TEST|TEST_ENGINE|TESTHOSP|20260101120000||%s|%s|P|2.6"
pid = "PID|1||PID-TEST-0201^^^TESTHOSP^MR||TESTPATIENT^ECHO^^^^^L||19700101|F"
if obx:
    msg = "\r".join([msh % ("ORU^R01^ORU_R01", "MON0001"), pid,
                     "OBR|1|||69837^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC",
                     f"OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC||97|262688^MDC_DIM_PERCENT^MDC|||||R|||20260101120000||||{obx}"]) + "\r"
else:
    msg = "\r".join([msh % ("ADT^A01^ADT_A01", "ENG0001"), "EVN|A01|20260101120000", pid,
                     "PV1|1|I|ICU^101^A^TESTHOSP"]) + "\r"
with MLLPClient("10.74.0.2", 2575) as c:
    ack = c.send_message(msg)
    assert b"MSA|AA" in ack, ack
EOF
}

# ---------------------------------------------------------------------------------- capture a
lab_up
start_capture "$WORK/inventory_a.pcap"
servers_up
run pump busybox udhcpc -i inv-pump -V "udhcp 1.35.0" -x hostname:PUMP-ICU-07 -s "$WORK/udhcpc.sh" -n -q -t 5
run ct "$DCMTK/storescu" -aet CT_GE_01 -aec PACS_SCP "${IP[pacs]}" 104 "$WORK/files/ct_2.dcm"
hl7_send eng MIRTH_CONNECT
stop_capture; stop_pids
[ "$(ls "$WORK/recv" | wc -l)" -ge 1 ] || { echo "storescp stored nothing" >&2; exit 1; }
mv "$WORK/inventory_a.pcap" "$OUT/inventory_a.pcap"

# ---------------------------------------------------------------------------------- capture b
# (a fresh lab: same hosts, same addresses; the pump asks for its old lease again). Capture b
# starts more than medtap's UDP flow timeout (120 s) after capture a ends, so no flow spans the
# two files: one replay of both and a replay of a then b (a restart) count the same flows.
sleep 130
lab_up
start_capture "$WORK/inventory_b.pcap"
servers_up
run pump busybox udhcpc -i inv-pump -V "udhcp 1.35.0" -x hostname:PUMP-ICU-07 -s "$WORK/udhcpc.sh" -n -q -t 5
run ct "$DCMTK/storescu" -aet CT_GE_01 -aec PACS_SCP "${IP[pacs]}" 104 "$WORK/files/ct_1.dcm"
hl7_send mon MINDRAY_GW "BeneVision N17^MINDRAY^00A037FFFE740041^EUI-64"
run ws curl -sk --max-time 10 -A "Mozilla/5.0 (Windows NT 10.0; Win64; x64) medtap-test" -o /dev/null https://10.74.0.2/index.html
run ws curl -s --max-time 10 -A "Mozilla/5.0 (Windows NT 10.0; Win64; x64) medtap-test" -o /dev/null http://10.74.0.2/index.html
stop_capture; stop_pids
mv "$WORK/inventory_b.pcap" "$OUT/inventory_b.pcap"
chmod 644 "$OUT"/inventory_*.pcap

for f in "$OUT"/inventory_*.pcap; do
  printf '%-20s %5s frames; ' "$(basename "$f")" "$(tshark -n -r "$f" 2>/dev/null | wc -l)"
  tshark -n -r "$f" -T fields -e frame.protocols 2>/dev/null | tr ':' '\n' | grep -E '^(dhcp|dicom|hl7|tls|http|dns)$' | sort | uniq -c | tr '\n' ' '
  echo
done
