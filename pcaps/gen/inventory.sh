#!/usr/bin/env bash
# Generate pcaps/inventory/inventory_a.pcap and inventory_b.pcap: a small hospital network of
# hosts with MACs of real vendors, each doing what that kind of device does, with real software
# in network namespaces this script creates and removes. The expected inventory medtap must
# build from them is tests/expected/inventory/inventory.json (checked by tests/inventory.rs).
#
#   sudo bash pcaps/gen/inventory.sh
#
# Needs (Debian 12): dcmtk dnsmasq busybox curl openssl tcpdump tshark ethtool iproute2 lldpd
# samba smbclient isc-dhcp-client;
# Python: pydicom, python-hl7 (tested with dcmtk 3.6.7, dnsmasq 2.90, busybox 1.35, curl 7.88,
# OpenSSL 3.0, pydicom 3.0, python-hl7 0.4.5, lldpd 1.0.16, Samba 4.17.12, ISC dhclient
# 4.4.3). Run as root.
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
#   sw1   10.74.0.3     00:80:63:74:00:03   Hirschmann Automation and Control      lldpd sending LLDP and CDP; dnsmasq DHCPv6 server (fd74::/64)
#   mon2  10.74.0.42    00:30:e6:74:00:42   Draeger Medical Systems                ISC dhclient -6 (DUID, vendor class, FQDN); smbclient over SMB1 (NT1)
#   nas   10.74.0.70    00:11:32:74:00:70   Synology                               Samba smbd with "server min protocol = NT1"
#
# Only sw1 and mon2 have IPv6 (enabled for their part of capture a).
# Capture a (DICOM, HL7 from the engine, the pump's DHCP lease, LLDP/CDP, a DHCPv6 lease and
# an SMB1 session) and capture b (the CT again, the
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
NSP=inventory   # network namespaces inventory-sw, inventory-tap, inventory-<host>
SW=$NSP-sw
TAP=$NSP-tap
HOSTS="srv pacs ct eng mon ws pump sw1 mon2 nas"
declare -A IP=([srv]=10.74.0.2 [pacs]=10.74.0.10 [ct]=10.74.0.21 [eng]=10.74.0.30 [mon]=10.74.0.41 [ws]=10.74.0.50 [pump]=
               [sw1]=10.74.0.3 [mon2]=10.74.0.42 [nas]=10.74.0.70)
declare -A MAC=([srv]=00:14:38:74:00:02 [pacs]=00:09:5c:74:00:10 [ct]=44:4b:5d:74:00:21 [eng]=00:18:65:74:00:30
                [mon]=00:a0:37:74:00:41 [ws]=00:06:5b:74:00:50 [pump]=58:42:e4:74:00:60
                [sw1]=00:80:63:74:00:03 [mon2]=00:30:e6:74:00:42 [nas]=00:11:32:74:00:70)

[ "$(id -u)" = 0 ] || { echo "inventory.sh: must run as root (network namespaces)" >&2; exit 2; }
for t in "$DCMTK/storescp" "$DCMTK/storescu" dnsmasq busybox curl openssl tcpdump tshark ethtool ip lldpd smbd smbclient dhclient; do
  command -v "$t" >/dev/null || { echo "inventory.sh: missing $t (apt-get install dcmtk dnsmasq busybox curl openssl tcpdump tshark ethtool iproute2 lldpd samba smbclient isc-dhcp-client)" >&2; exit 2; }
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
  # group_fwd_mask 0x4000: forward LLDP (01:80:c2:00:00:0e), which a Linux bridge keeps to itself
  ip -n "$SW" link add invbr address 02:74:00:00:00:fd type bridge ageing_time 0 stp_state 0 mcast_snooping 0 group_fwd_mask 0x4000
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

run() { local h=$1; shift; timeout 60 ip netns exec "$NSP-$h" "$@" >>"$WORK/clients.log" 2>&1 || { echo "failed on $h: $*" >&2; tail -20 "$WORK/clients.log" >&2; tail -n 60 "$WORK"/*.log "$WORK"/samba/log.* >/tmp/inventory-lab-fail.log 2>&1; exit 1; }; }

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

# lldpd: system name, description and platform as a hospital's access switch would announce
# them (lldpcli applies the configuration before the first frame goes out).
cat >"$WORK/lldpd.conf" <<'EOF'
configure system hostname ICU-SW-01
configure system description "Hirschmann RSP35 HiOS-3S 08.7.03"
configure system platform "RSP35"
configure system capabilities enabled bridge
configure lldp tx-interval 30
EOF
chmod 755 "$WORK"   # smbd's guest (nobody) and lldpd's _lldpd reach their files
mkdir -p "$WORK/samba/share" "$WORK/samba/private" "$WORK/samba/lock" "$WORK/samba/state" "$WORK/samba/cache"
echo "medtap SMB1 test file" >"$WORK/samba/share/report.txt"
cat >"$WORK/smb.conf" <<EOF
[global]
  server min protocol = NT1
  server max protocol = NT1
  client min protocol = NT1
  workgroup = ICU
  netbios name = ICU-NAS
  server role = standalone server
  map to guest = Bad User
  disable netbios = yes
  smb ports = 445
  interfaces = 10.74.0.70
  bind interfaces only = yes
  private dir = $WORK/samba/private
  lock directory = $WORK/samba/lock
  state directory = $WORK/samba/state
  cache directory = $WORK/samba/cache
  pid directory = $WORK/samba
  log file = $WORK/samba/log.%m
  log level = 2
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
[reports]
  path = $WORK/samba/share
  guest ok = yes
  read only = yes
EOF
cat >"$WORK/smb-client.conf" <<EOF
[global]
  client min protocol = NT1
  workgroup = ICU
  netbios name = ICU-MON-42
EOF
# ISC dhclient -6: its DUID (DUID-LLT from the MAC), a vendor class (option 16, which ISC
# dhclient 4.4 has no name for: declared here as enterprise number, data length, data) and a
# client FQDN (option 39).
cat >"$WORK/dhclient6.conf" <<'EOF'
option dhcp6.medtap-vendor-class code 16 = { unsigned integer 32, unsigned integer 16, text };
send dhcp6.medtap-vendor-class 3164 13 "Infinity M540";
send fqdn.fqdn "icu-mon-42.hospital.test.";
send fqdn.server-update off;
EOF

v6_on() {  # HOST [ADDR]: IPv6 on for this host (link-local; ADDR/64 if given)
  nsx "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 "net.ipv6.conf.inv-$1.disable_ipv6=0"
  if [ -n "${2:-}" ]; then ip -n "$NSP-$1" addr add "$2/64" dev "inv-$1" nodad; fi
}

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
# The switch announces itself (LLDP and CDPv2) and serves DHCPv6; the Draeger monitor takes a
# DHCPv6 lease and reads a report from the NAS over SMB1.
v6_on sw1 fd74::3
v6_on mon2
mkdir -p /run/lldpd
# -l -ccccc: LLDP and CDPv2 both sent without waiting for a neighbour that speaks them
bg sw1 lldpd lldpd -d -l -ccccc -I inv-sw1 -u "$WORK/lldpd.socket" -O "$WORK/lldpd.conf"
bg sw1 dnsmasq6 dnsmasq --no-daemon --port=0 --interface=inv-sw1 --bind-interfaces --pid-file= \
  --dhcp-range=fd74::100,fd74::1ff,64,1h --dhcp-leasefile="$WORK/leases6" --log-dhcp
bg nas smbd smbd --foreground --debug-stdout -s "$WORK/smb.conf"
wait_listen nas 445
sleep 3   # lldpd's first LLDP and CDP frames
bg mon2 dhclient6 dhclient -6 -d -v -cf "$WORK/dhclient6.conf" -lf "$WORK/dhclient6.leases" -pf "$WORK/dhclient6.pid" inv-mon2
for i in $(seq 1 100); do grep -q iaaddr "$WORK/dhclient6.leases" 2>/dev/null && break; sleep 0.2; done
grep -q iaaddr "$WORK/dhclient6.leases" || { echo "no DHCPv6 lease" >&2; tail -20 "$WORK/dhclient6.log" >&2; exit 1; }
run mon2 smbclient //10.74.0.70/reports -N -m NT1 --option='client min protocol=NT1' -s "$WORK/smb-client.conf" -U guest -c 'get report.txt /dev/null'
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
  tshark -n -r "$f" -T fields -e frame.protocols 2>/dev/null | tr ':' '\n' | grep -E '^(dhcp|dhcpv6|dicom|hl7|tls|http|dns|lldp|cdp|smb)$' | sort | uniq -c | tr '\n' ' '
  echo
done
