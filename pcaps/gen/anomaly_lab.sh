#!/usr/bin/env bash
# Behaviour-anomaly scenarios for tests/detect.rs, made with real software (nmap, dcmtk,
# pynetdicom, python-hl7, dnsmasq/dig, curl, python3 http.server) in network namespaces this
# script creates and removes; tcpdump records one switch port of the lab per capture (the port
# of the device the scenario is about, as a SPAN of that port would). Nothing leaves them.
#
#   sudo bash pcaps/gen/anomaly_lab.sh               # all captures
#   sudo bash pcaps/gen/anomaly_lab.sh host_sweep    # only some
#
# Needs (Debian 12): nmap dcmtk dnsmasq bind9-dnsutils curl tcpdump tshark ethtool iproute2;
# Python: pydicom pynetdicom hl7. Run as root.
# NOTE: pynetdicom installs Python apps named storescp/echoscu/... that shadow dcmtk's in PATH;
# dcmtk is always called by absolute path ($DCMTK/...).
#
# Lab: a bridge in namespace an-hub, one namespace per host, veth to the bridge, IPv6 off.
#   host   IP                       MAC                 what it is
#   gw     10.76.0.1 (+ 8.8.8.8,    02:76:00:00:00:01   the site router; the "Internet" addresses
#          1.2.3.4 on its lo)                           live on it (dnsmasq on 8.8.8.8:53, a
#                                                       cloud PACS storescp on 1.2.3.4:104)
#   pacs   10.76.0.10               00:1d:4a:76:00:10   PACS (Carestream OUI), dcmtk storescp or
#                                                       pynetdicom SCP on 104
#   pacs2  10.76.0.11               02:76:00:00:00:11   a second DICOM archive (storescp on 104)
#   ct     10.76.0.21               44:4b:5d:76:00:21   CT (GE Healthcare OUI: medical by OUI)
#   mr     10.76.0.22               00:18:65:76:00:22   MR (Siemens OUI)
#   us     10.76.0.23               02:76:00:00:00:23   a modality with no vendor MAC: medical
#                                                       only by what its DICOM says
#   ws     10.76.0.31               02:76:00:00:00:31   workstation (no vendor: not medical)
#   f100.. 10.76.0.100-.128         02:76:00:00:01:64.. 29 hosts with nothing listening on 104
#   f128                                                (only in the sweep scenarios)
#   engine 10.76.0.40               02:76:00:00:00:40   HL7 interface engine (hl7_mllp.py server)
#   ehr    10.76.0.41               02:76:00:00:00:41   EHR (python-hl7 MLLP client)
#   lab    10.76.0.42               02:76:00:00:00:42   lab system (python-hl7 MLLP client)
#   mon1   10.76.0.51               00:09:fb:76:00:51   patient monitor (Philips OUI), quiet
#   mon2   10.76.0.52               00:09:fb:76:00:52   patient monitor (Philips OUI), busy
#   srv    10.76.0.60               02:76:00:00:00:60   central station (python3 http.server)
#
# Captures (pcaps/detect/), what tshark must see in each is checked below:
#   host_sweep.pcap        ct stores an image to pacs; then ws: nmap -sS -Pn -p 104 over 31 hosts
#                          (pacs open: half-open; the ct and f100..f128 closed: RST);
#                          capture on the ports of ws and ct (mergecap, editcap -D)
#   host_sweep_quiet.pcap  ws: dcmtk echoscu to pacs and pacs2, nmap -sT -p 104 over 10 f1xx
#                          hosts, nmap -sT -p 100-110 on pacs (12 hosts on one port, 11 ports
#                          on one host: below the shipped threshold of 20)
#   store_new_dest.pcap    mr: dcmtk storescu of an MR image to pacs every 4 s (6 times), then
#                          to pacs2 (never before), then pacs again; capture on mr's port
#   promiscuous_scp.pcap   pacs runs dcmtk storescp (no called-AE check); echoscu from ct,
#                          ws, mr with called AE titles PACS_SCP, ARCHIVE, ANY_SCP: all accepted
#   strict_scp.pcap        pacs runs a pynetdicom SCP with require_called_aet; ct PACS_SCP
#                          (accepted), mr PACS (rejected, a typo), mr PACS_SCP (accepted)
#   ae_guessing.pcap       same strict SCP; ws tries 8 guessed called AE titles: all rejected
#   internet.pcap          ct (medical by its GE MAC) asks the site resolver (10.76.0.1), then 8.8.8.8;
#                          ws asks 8.8.8.8; us (no vendor MAC) C-STOREs a CT image to the
#                          cloud PACS at 1.2.3.4 as its only traffic; capture on gw's port
#   hl7_new_sender.pcap    engine: ehr sends ADT^A08 from TEST_EHR_ADT every 3 s (8), lab sends
#                          from TEST_LAB every 3 s (4), then ehr's host sends from UNKNOWN_APP
#                          and lab from TEST_LAB at facility OTHERHOSP
#   hl7_no_end_block.pcap  engine: a sender without MLLP end blocks, 12 messages in 6 s
#   volume.pcap            mon1 and mon2 GET 4 KB from srv every 2 s for 60 s (curl -> python3
#                          http.server); then mon1 GETs 2 MiB once, mon2 512 KiB (over 10x its
#                          baseline too, but under the 1 MiB floor); capture on srv's port
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT="$REPO/pcaps/detect"
DCMTK=/usr/bin
PY=${PYTHON:-python3}
NSP=an
HUB=$NSP-hub
HOSTS="gw pacs pacs2 ct mr us ws engine ehr lab mon1 mon2 srv"
FARM=$(seq -f 'f%g' 100 128 | paste -sd' ')
declare -A IP=([gw]=10.76.0.1 [pacs]=10.76.0.10 [pacs2]=10.76.0.11 [ct]=10.76.0.21 [mr]=10.76.0.22
  [us]=10.76.0.23 [ws]=10.76.0.31 [engine]=10.76.0.40 [ehr]=10.76.0.41
  [lab]=10.76.0.42 [mon1]=10.76.0.51 [mon2]=10.76.0.52 [srv]=10.76.0.60)
declare -A MAC=([gw]=02:76:00:00:00:01 [pacs]=00:1d:4a:76:00:10 [pacs2]=02:76:00:00:00:11
  [ct]=44:4b:5d:76:00:21 [mr]=00:18:65:76:00:22 [us]=02:76:00:00:00:23 [ws]=02:76:00:00:00:31
  [engine]=02:76:00:00:00:40 [ehr]=02:76:00:00:00:41
  [lab]=02:76:00:00:00:42 [mon1]=00:09:fb:76:00:51 [mon2]=00:09:fb:76:00:52 [srv]=02:76:00:00:00:60)

[ "$(id -u)" = 0 ] || { echo "anomaly_lab.sh: must run as root (network namespaces)" >&2; exit 2; }
for t in "$DCMTK/storescp" "$DCMTK/storescu" "$DCMTK/echoscu" nmap dnsmasq dig curl tcpdump tshark mergecap editcap ethtool ip; do
  command -v "$t" >/dev/null || { echo "anomaly_lab.sh: missing $t" >&2; exit 2; }
done
"$PY" -c 'import pydicom, pynetdicom, hl7.mllp' 2>/dev/null || { echo "anomaly_lab.sh: pip install pydicom pynetdicom hl7" >&2; exit 2; }

for i in $(seq 100 128); do IP[f$i]=10.76.0.$i; MAC[f$i]=$(printf '02:76:00:00:01:%02x' "$i"); done

LAB_VETH=an LAB_PORT=anp LAB_EXTRA_HOSTS=$FARM  # veth anHOST / switch port anpHOST
# shellcheck source=pcaps/gen/netns_lib.sh
. "$HERE/netns_lib.sh"
lab_init anomaly

site_up() {  # [EXTRA HOSTS...]: the lab of lab_up (plus the farm hosts named), the site's router
  lab_up "$@"
  # only the hosts of the Internet scenario have a route out (a default route elsewhere
  # would send dcmtk's reverse lookups to a resolver that never answers)
  local h
  for h in ct ws us; do ip -n "$NSP-$h" route add default via "${IP[gw]}"; done
  # the "Internet": two public addresses that answer on the router itself
  ip -n "$NSP-gw" addr add 8.8.8.8/32 dev lo
  ip -n "$NSP-gw" addr add 1.2.3.4/32 dev lo
  # warm the ARP caches of the hosts that talk, so each capture starts with its own traffic
  for h in $HOSTS; do [ "$h" = gw ] || hx "$h" ping -c1 -W1 "${IP[gw]}" >/dev/null 2>&1 || true; done
}

run_fails() {  # HOST CMD...: a client that must fail (rejected association)
  local h=$1; shift
  echo "  [$h] $* (must be refused)" | sed "s#$WORK#\$WORK#g"
  if timeout 60 ip netns exec "$NSP-$h" "$@" >>"$WORK/clients.log" 2>&1; then
    echo "client succeeded but should not: $*" >&2; exit 1
  fi
}

finish() {  # NAME: move the capture into place, print tshark's view
  mv "$WORK/$1.pcap" "$OUT/$1.pcap"; chmod 644 "$OUT/$1.pcap"
  printf '%-24s %6s packets\n' "$1.pcap" "$(tshark -n -r "$OUT/$1.pcap" 2>/dev/null | wc -l)"
}

check() {  # DESCRIPTION EXPECTED ACTUAL
  [ "$2" = "$3" ] || { echo "tshark check failed: $1: expected '$2', got '$3'" >&2; exit 1; }
  echo "    ok: $1 = $3"
}

# distinct (dst ip) of SYNs to port P from SRC; and how many answered SYN/ACK, RST
syn_hosts() { tshark -n -r "$1" -Y "ip.src==$2 && tcp.flags.syn==1 && tcp.flags.ack==0 && tcp.dstport==$3" -T fields -e ip.dst 2>/dev/null | sort -u | wc -l; }
rst_hosts() { tshark -n -r "$1" -Y "ip.dst==$2 && tcp.flags.reset==1 && tcp.srcport==$3" -T fields -e ip.src 2>/dev/null | sort -u | wc -l; }
synack_hosts() { tshark -n -r "$1" -Y "ip.dst==$2 && tcp.flags.syn==1 && tcp.flags.ack==1 && tcp.srcport==$3" -T fields -e ip.src 2>/dev/null | sort -u | wc -l; }
# C-STORE requests to DST as tshark decodes them (PDV reassembly off, as in dicom.sh)
cstore_rq() {  # FILE DST
  tshark -n -r "$1" -d tcp.port==104,dicom -o dicom.pdv_reassemble:FALSE -Y "ip.dst==$2 && dicom" \
    -T fields -e _ws.col.Info 2>/dev/null | grep -o 'C-STORE-RQ' | wc -l
}

# ---------------------------------------------------------------------------------------------
cap_host_sweep() {
  site_up $FARM
  bg pacs storescp "$DCMTK/storescp" -aet PACS_SCP -od "$WORK" 104
  wait_listen pacs 104
  start_capture "ws ct" "$WORK/host_sweep.pcap"
  # the CT is known before the sweep: it stores an image to the PACS
  run ct "$DCMTK/storescu" -aet CT_GE_01 -aec PACS_SCP "${IP[pacs]}" 104 "$WORK/files/ct_2.dcm"
  run ws nmap -n -sS -Pn -p 104 --max-retries 1 --host-timeout 60s "10.76.0.10,21,100-128" -oN "$WORK/nmap.txt"
  stop_capture; stop_pids
  local f=$WORK/host_sweep.pcap
  check "hosts sent a SYN to 104" 31 "$(syn_hosts "$f" "${IP[ws]}" 104)"
  check "hosts that answered SYN/ACK" 1 "$(synack_hosts "$f" "${IP[ws]}" 104)"
  check "hosts that answered RST" 30 "$(rst_hosts "$f" "${IP[ws]}" 104)"
  finish host_sweep
}

cap_host_sweep_quiet() {
  site_up $FARM
  bg pacs storescp "$DCMTK/storescp" -aet PACS_SCP -od "$WORK" 104
  bg pacs2 storescp2 "$DCMTK/storescp" -aet ARCHIVE_SCP -od "$WORK" 104
  wait_listen pacs 104; wait_listen pacs2 104
  start_capture ws "$WORK/host_sweep_quiet.pcap"
  run ws "$DCMTK/echoscu" -aet WS_VIEWER -aec PACS_SCP "${IP[pacs]}" 104
  run ws "$DCMTK/echoscu" -aet WS_VIEWER -aec ARCHIVE_SCP "${IP[pacs2]}" 104
  run ws nmap -n -sT -Pn -p 104 --max-retries 1 --host-timeout 60s 10.76.0.100-109 -oN "$WORK/nmap1.txt"
  run ws nmap -n -sT -Pn -p 100-110 --max-retries 1 --host-timeout 60s "${IP[pacs]}" -oN "$WORK/nmap2.txt"
  stop_capture; stop_pids
  local f=$WORK/host_sweep_quiet.pcap
  check "hosts sent a SYN to 104" 12 "$(syn_hosts "$f" "${IP[ws]}" 104)"
  check "ports on pacs" 11 "$(tshark -n -r "$f" -Y "ip.dst==${IP[pacs]} && tcp.flags.syn==1 && tcp.flags.ack==0" -T fields -e tcp.dstport 2>/dev/null | sort -u | wc -l)"
  finish host_sweep_quiet
}

cap_store_new_dest() {
  site_up
  bg pacs storescp "$DCMTK/storescp" -aet PACS_SCP -od "$WORK/recv1" 104
  bg pacs2 storescp2 "$DCMTK/storescp" -aet ARCHIVE_SCP -od "$WORK/recv2" 104
  mkdir -p "$WORK/recv1" "$WORK/recv2"
  wait_listen pacs 104; wait_listen pacs2 104
  start_capture mr "$WORK/store_new_dest.pcap"
  local i
  for i in 1 2 3 4 5 6; do
    run mr "$DCMTK/storescu" -aet MR_SIEMENS_02 -aec PACS_SCP "${IP[pacs]}" 104 "$WORK/files/mr_1.dcm"
    sleep 4
  done
  run mr "$DCMTK/storescu" -aet MR_SIEMENS_02 -aec ARCHIVE_SCP "${IP[pacs2]}" 104 "$WORK/files/mr_2.dcm"
  sleep 1
  run mr "$DCMTK/storescu" -aet MR_SIEMENS_02 -aec PACS_SCP "${IP[pacs]}" 104 "$WORK/files/mr_2.dcm"
  stop_capture; stop_pids
  local f=$WORK/store_new_dest.pcap
  check "C-STORE-RQ to pacs" 7 "$(cstore_rq "$f" "${IP[pacs]}")"
  check "C-STORE-RQ to pacs2" 1 "$(cstore_rq "$f" "${IP[pacs2]}")"
  finish store_new_dest
}

cap_promiscuous_scp() {
  site_up
  bg pacs storescp "$DCMTK/storescp" -aet PACS_SCP -od "$WORK" 104
  wait_listen pacs 104
  start_capture pacs "$WORK/promiscuous_scp.pcap"
  run ct "$DCMTK/echoscu" -aet CT_GE_01 -aec PACS_SCP "${IP[pacs]}" 104
  run ws "$DCMTK/echoscu" -aet WS_VIEWER -aec ARCHIVE "${IP[pacs]}" 104
  run mr "$DCMTK/echoscu" -aet MR_SIEMENS_02 -aec ANY_SCP "${IP[pacs]}" 104
  stop_capture; stop_pids
  check "associations accepted (A-ASSOCIATE-AC)" 3 "$(tshark -n -r "$WORK/promiscuous_scp.pcap" -d tcp.port==104,dicom -Y 'dicom.pdu.type==2' 2>/dev/null | wc -l)"
  finish promiscuous_scp
}

strict_scp() {
  bg pacs strictscp "$PY" "$HERE/anomaly_peers.py" strict-scp --port 104 --ae PACS_SCP --lifetime 90
  wait_listen pacs 104
}

cap_strict_scp() {
  site_up; strict_scp
  start_capture pacs "$WORK/strict_scp.pcap"
  run ct "$DCMTK/echoscu" -aet CT_GE_01 -aec PACS_SCP "${IP[pacs]}" 104
  run_fails mr "$DCMTK/echoscu" -aet MR_SIEMENS_02 -aec PACS "${IP[pacs]}" 104
  run mr "$DCMTK/echoscu" -aet MR_SIEMENS_02 -aec PACS_SCP "${IP[pacs]}" 104
  stop_capture; stop_pids
  local f=$WORK/strict_scp.pcap
  check "A-ASSOCIATE-AC" 2 "$(tshark -n -r "$f" -d tcp.port==104,dicom -Y 'dicom.pdu.type==2' 2>/dev/null | wc -l)"
  check "A-ASSOCIATE-RJ" 1 "$(tshark -n -r "$f" -d tcp.port==104,dicom -Y 'dicom.pdu.type==3' 2>/dev/null | wc -l)"
  finish strict_scp
}

cap_ae_guessing() {
  site_up; strict_scp
  start_capture pacs "$WORK/ae_guessing.pcap"
  local ae
  for ae in ANY-SCP PACS ARCHIVE STORESCP DCM4CHEE ORTHANC CONQUESTSRV1 SERVER; do
    run_fails ws "$DCMTK/echoscu" -aet WS_VIEWER -aec "$ae" "${IP[pacs]}" 104
  done
  stop_capture; stop_pids
  local f=$WORK/ae_guessing.pcap
  check "A-ASSOCIATE-RJ" 8 "$(tshark -n -r "$f" -d tcp.port==104,dicom -Y 'dicom.pdu.type==3' 2>/dev/null | wc -l)"
  check "A-ASSOCIATE-AC" 0 "$(tshark -n -r "$f" -d tcp.port==104,dicom -Y 'dicom.pdu.type==2' 2>/dev/null | wc -l)"
  finish ae_guessing
}

cap_internet() {
  site_up
  bg gw cloudpacs "$DCMTK/storescp" -aet CLOUD_PACS -od "$WORK" 104
  bg gw dnsmasq dnsmasq -k --no-resolv --no-hosts --listen-address=10.76.0.1,8.8.8.8 --bind-interfaces \
    --address=/pacs.hospital.test/10.76.0.10 --address=/update.vendor.test/1.2.3.4 \
    --address=/www.example.test/1.2.3.4 --log-facility=-
  wait_listen gw 104
  local i
  for i in $(seq 1 50); do hx gw ss -Hlun "sport = :53" | grep -q 8.8.8.8 && break; sleep 0.1; done
  start_capture gw "$WORK/internet.pcap"
  run ct dig +short +tries=1 @10.76.0.1 pacs.hospital.test
  run ct dig +short +tries=1 @8.8.8.8 update.vendor.test
  run ws dig +short +tries=1 @8.8.8.8 www.example.test
  run us "$DCMTK/storescu" -aet US_MOD_03 -aec CLOUD_PACS 1.2.3.4 104 "$WORK/files/ct_2.dcm"
  stop_capture; stop_pids
  local f=$WORK/internet.pcap
  check "DNS queries to 8.8.8.8" 2 "$(tshark -n -r "$f" -Y 'ip.dst==8.8.8.8 && dns.flags.response==0' 2>/dev/null | wc -l)"
  check "DNS queries to 10.76.0.1" 1 "$(tshark -n -r "$f" -Y 'ip.dst==10.76.0.1 && dns.flags.response==0' 2>/dev/null | wc -l)"
  check "C-STORE-RQ to 1.2.3.4" 1 "$(cstore_rq "$f" 1.2.3.4)"
  finish internet
}

# MSH-3^MSH-4 of the messages sent to DST as tshark decodes them, counted
hl7_senders() {  # FILE DST
  tshark -n -r "$1" -d tcp.port==2575,hl7 -Y "hl7 && ip.dst==$2" -T fields -E occurrence=a \
      -E aggregator=$'\x1e' -e hl7.segment 2>/dev/null | tr '\036' '\n' | awk -F'|' '/^MSH\|/ { print $3 "^" $4 }' \
    | sort | uniq -c | awk '{ printf "%s%s %s", (NR > 1 ? ";" : ""), $1, $2 }'
}

hl7_engine() {
  bg engine listener "$PY" "$HERE/hl7_mllp.py" server --port 2575 --lifetime 120
  wait_listen engine 2575
}

cap_hl7_new_sender() {
  site_up; hl7_engine
  start_capture engine "$WORK/hl7_new_sender.pcap"
  hx ehr "$PY" "$HERE/anomaly_peers.py" hl7-send --host "${IP[engine]}" --port 2575 --app TEST_EHR_ADT --count 8 --interval 3 >>"$WORK/clients.log" 2>&1 &
  local e=$!
  sleep 1
  run lab "$PY" "$HERE/anomaly_peers.py" hl7-send --host "${IP[engine]}" --port 2575 --app TEST_LAB --count 4 --interval 3
  wait "$e"
  sleep 3
  run ehr "$PY" "$HERE/anomaly_peers.py" hl7-send --host "${IP[engine]}" --port 2575 --app UNKNOWN_APP --count 1 --first 50
  run lab "$PY" "$HERE/anomaly_peers.py" hl7-send --host "${IP[engine]}" --port 2575 --app TEST_LAB --facility OTHERHOSP --count 1 --first 60
  run ehr "$PY" "$HERE/anomaly_peers.py" hl7-send --host "${IP[engine]}" --port 2575 --app TEST_EHR_ADT --count 1 --first 70
  stop_capture; stop_pids
  local f=$WORK/hl7_new_sender.pcap
  check "MSH-3^MSH-4 of the messages to the engine" "9 TEST_EHR_ADT^TESTHOSP;1 TEST_LAB^OTHERHOSP;4 TEST_LAB^TESTHOSP;1 UNKNOWN_APP^TESTHOSP" \
    "$(hl7_senders "$f" "${IP[engine]}")"
  finish hl7_new_sender
}

cap_hl7_no_end_block() {
  site_up; hl7_engine
  start_capture engine "$WORK/hl7_no_end_block.pcap"
  run ehr "$PY" "$HERE/anomaly_peers.py" hl7-no-end-block --host "${IP[engine]}" --port 2575 --app TEST_EHR_ADT --count 12 --wait 0.5
  stop_capture; stop_pids
  local f=$WORK/hl7_no_end_block.pcap
  # each message starts with 0x0B and none is followed by 0x1C: tshark sees no complete frame
  check "start blocks (0x0B MSH)" 12 "$(tshark -n -r "$f" -Y 'tcp.payload[0:4] == 0b:4d:53:48' 2>/dev/null | wc -l)"
  check "end blocks (0x1C 0x0D)" 0 "$(tshark -n -r "$f" -Y 'tcp.payload contains 1c:0d' 2>/dev/null | wc -l)"
  finish hl7_no_end_block
}

cap_volume() {
  site_up
  mkdir -p "$WORK/www"
  head -c 4096 /dev/zero | tr '\0' 'q' >"$WORK/www/small"
  head -c 524288 /dev/zero | tr '\0' 'm' >"$WORK/www/medium"
  head -c 2097152 /dev/zero | tr '\0' 'b' >"$WORK/www/big"
  bg srv http "$PY" -m http.server 8080 --directory "$WORK/www"
  wait_listen srv 8080
  start_capture srv "$WORK/volume.pcap"
  local i
  for i in $(seq 1 30); do
    run mon1 curl -s -o /dev/null "http://${IP[srv]}:8080/small"
    run mon2 curl -s -o /dev/null "http://${IP[srv]}:8080/small"
    sleep 2
  done
  run mon1 curl -s -o /dev/null "http://${IP[srv]}:8080/big"
  run mon2 curl -s -o /dev/null "http://${IP[srv]}:8080/medium"
  sleep 2
  run mon1 curl -s -o /dev/null "http://${IP[srv]}:8080/small"
  run mon2 curl -s -o /dev/null "http://${IP[srv]}:8080/small"
  stop_capture; stop_pids
  local f=$WORK/volume.pcap
  check "GETs from mon1" 32 "$(tshark -n -r "$f" -Y "ip.src==${IP[mon1]} && tcp.flags.syn==1" 2>/dev/null | wc -l)"
  check "GETs from mon2" 32 "$(tshark -n -r "$f" -Y "ip.src==${IP[mon2]} && tcp.flags.syn==1" 2>/dev/null | wc -l)"
  echo "    frame bytes mon1: $(tshark -n -r "$f" -Y "ip.addr==${IP[mon1]}" -T fields -e frame.len 2>/dev/null | paste -sd+ | bc)," \
    "mon2: $(tshark -n -r "$f" -Y "ip.addr==${IP[mon2]}" -T fields -e frame.len 2>/dev/null | paste -sd+ | bc)"
  finish volume
}

ALL="host_sweep host_sweep_quiet store_new_dest promiscuous_scp strict_scp ae_guessing internet hl7_new_sender hl7_no_end_block volume"
mkdir -p "$OUT" "$WORK/files"
"$PY" "$HERE/dicom_files.py" "$WORK/files" >/dev/null
for c in ${*:-$ALL}; do
  grep -qw -- "$c" <<<"$ALL" || { echo "unknown capture $c (have: $ALL)" >&2; exit 2; }
  echo "== $c"
  "cap_$c"
done
echo "done: $OUT"
