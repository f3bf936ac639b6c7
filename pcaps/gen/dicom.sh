#!/usr/bin/env bash
# Generate the DICOM test captures in pcaps/dicom/ with real software (dcmtk, pynetdicom)
# talking inside network namespaces that this script creates and removes. Traffic stays inside
# them; tcpdump records the PACS host's switch port.
#
#   sudo bash pcaps/gen/dicom.sh            # all captures
#   sudo bash pcaps/gen/dicom.sh echo tls   # only some
#
# Needs (Debian 12): dcmtk tcpdump tshark ethtool iproute2 openssl; Python: pydicom pynetdicom
# (tested with dcmtk 3.6.7, pydicom 3.0.2, pynetdicom 3.0.4, tshark 4.0.17). Run as root.
# NOTE: pynetdicom installs Python apps named storescp/echoscu/findscu/... that shadow dcmtk's in
# PATH; this script always calls dcmtk by absolute path ($DCMTK/...).
#
# Lab: a bridge in namespace mtdcm-hub, one namespace per host, veth to the bridge, IPv6 off
# (no ND/MLD noise), checksum/segmentation offloads off (real checksums, MTU-sized segments).
#   host  IP           MAC                 OUI owner (IEEE MA-L, as in Wireshark's manuf file)
#   pacs  10.77.1.10   00:1d:4a:77:01:10   00:1D:4A Carestream Health, Inc.   (PACS / archive)
#   ct    10.77.1.21   44:4b:5d:77:01:21   44:4B:5D GE Healthcare             (CT modality)
#   mr    10.77.1.22   00:18:65:77:01:22   00:18:65 Siemens Healthcare Diagnostics Manufacturing Ltd (MR modality)
#   ws    10.77.1.31   02:77:01:00:00:31   locally administered, no vendor  (reading workstation)
# (00:00:6C, sometimes quoted for GE, is registered as "Private"; GE Healthcare is 44:4B:5D.)
#
# Patient data is fake; every PHI value used is in pcaps/dicom/PHI_VALUES.txt.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT="$REPO/pcaps/dicom"
DCMTK=/usr/bin
PY=${PYTHON:-python3}
NSP=${MEDTAP_GEN_NSP:-mtdcm}  # namespace prefix (override to keep labs apart)
HUB=$NSP-hub
HOSTS="pacs ct mr ws"
declare -A IP=([pacs]=10.77.1.10 [ct]=10.77.1.21 [mr]=10.77.1.22 [ws]=10.77.1.31)
declare -A MAC=([pacs]=00:1d:4a:77:01:10 [ct]=44:4b:5d:77:01:21 [mr]=00:18:65:77:01:22 [ws]=02:77:01:00:00:31)

[ "$(id -u)" = 0 ] || { echo "dicom.sh: must run as root (network namespaces)" >&2; exit 2; }
for t in "$DCMTK/storescp" "$DCMTK/storescu" "$DCMTK/echoscu" "$DCMTK/findscu" "$DCMTK/movescu" \
         "$DCMTK/getscu" tcpdump tshark ethtool ip openssl; do
  command -v "$t" >/dev/null || { echo "dicom.sh: missing $t (apt-get install dcmtk tcpdump tshark ethtool iproute2 openssl)" >&2; exit 2; }
done
"$PY" -c 'import pydicom, pynetdicom' 2>/dev/null || { echo "dicom.sh: pip install pydicom pynetdicom" >&2; exit 2; }

LAB_VETH=v- LAB_PORT=p-  # veth v-HOST (renamed eth0 in the host) / switch port p-HOST
CAP_DRAIN=0.5
# shellcheck source=pcaps/gen/netns_lib.sh
. "$HERE/netns_lib.sh"
lab_init dicom

# decode_as PORTS: "-d tcp.port==P,dicom" for each port in a comma-separated list
decode_as() { local p; for p in ${1//,/ }; do printf -- '-d\ntcp.port==%s,dicom\n' "$p"; done; }

pdu_types() {  # FILE PORTS -> sorted unique PDU types tshark sees
  local da; mapfile -t da < <(decode_as "$2")
  tshark -n -r "$1" "${da[@]}" -Y dicom -T fields -E occurrence=a -e dicom.pdu.type 2>/dev/null \
    | tr ',' '\n' | grep . | sort | uniq -c | awk '{printf "%s(%s) ", $2, $1}'
}

# DIMSE commands as tshark labels them in the Info column ("P-DATA, C-STORE-RQ ID=1, ...").
# PDV reassembly is off: with it on, tshark 4.0.17 misreads the C-STORE-RSP that follows a
# multi-PDV 2 MiB data set as more Pixel Data ("Command", malformed) in store.pcap.
dimse() {  # FILE PORTS -> DIMSE commands in order, repeats collapsed
  local da; mapfile -t da < <(decode_as "$2")
  tshark -n -r "$1" "${da[@]}" -o dicom.pdv_reassemble:FALSE -Y dicom -T fields \
      -e _ws.col.Info 2>/dev/null \
    | sed 's/^P-DATA, //' | tr -d '\r' | awk -v RS=', |\n' '/^[CN]-[A-Z]+-R(Q|SP)( |$)/' \
    | sed -E 's/ ID=[0-9]+//' | uniq -c \
    | awk '{c=$1; $1=""; sub(/^ /,""); printf "%s%s, ", $0, (c>1 ? " x" c : "")}' | sed 's/, $//'
}

expect() {  # FILE PORT NEEDED_PDU_TYPES...
  local f=$1 port=$2; shift 2
  local got t da
  mapfile -t da < <(decode_as "$port")
  got=$(tshark -n -r "$f" "${da[@]}" -Y dicom -T fields -E occurrence=a -e dicom.pdu.type 2>/dev/null | tr ',' '\n' | sort -u)
  for t in "$@"; do
    grep -qx "$t" <<<"$got" || { echo "$(basename "$f"): PDU type $t missing (have: $(echo $got))" >&2; exit 1; }
  done
}

finish() {  # NAME PORT : move into place and print what tshark sees
  local name=$1 port=$2
  mv "$WORK/$name.pcap" "$OUT/$name.pcap"
  chmod 644 "$OUT/$name.pcap"
  printf '%-18s %5s pkts  PDUs: %s\n' "$name.pcap" "$(tshark -n -r "$OUT/$name.pcap" 2>/dev/null | wc -l)" "$(pdu_types "$OUT/$name.pcap" "$port")"
  local d; d=$(dimse "$OUT/$name.pcap" "$port")
  [ -n "$d" ] && printf '%-18s        DIMSE: %s\n' "" "$d"
  return 0
}

# ---------------------------------------------------------------------------------------------
cap_echo() {
  lab_up; start_capture pacs "$WORK/echo.pcap"
  bg pacs storescp "$DCMTK/storescp" -aet PACS_SCP --max-pdu 16384 -od "$WORK/recv" 104
  wait_listen pacs 104
  run ct "$DCMTK/echoscu" -aet CT_GE_01 -aec PACS_SCP --repeat 2 "${IP[pacs]}" 104
  stop_capture; stop_pids
  expect "$WORK/echo.pcap" 104 0x01 0x02 0x04 0x05 0x06
  finish echo 104
}

cap_store() {
  lab_up; start_capture pacs "$WORK/store.pcap"
  bg pacs storescp "$DCMTK/storescp" -aet PACS_SCP --max-pdu 16384 -xf "$WORK/storescp.cfg" Default \
    -od "$WORK/recv" 104
  wait_listen pacs 104
  # ct_1 explicit VR (512 KiB), ct_2 implicit VR (128 KiB), ct_3 explicit VR (2 MiB, > 1 MB)
  run ct "$DCMTK/storescu" -aet CT_GE_01 -aec PACS_SCP --max-pdu 16384 -R \
    "${IP[pacs]}" 104 "$WORK/files/ct_1.dcm" "$WORK/files/ct_2.dcm" "$WORK/files/ct_3.dcm"
  stop_capture; stop_pids
  [ "$(ls "$WORK/recv" | wc -l)" -ge 3 ] || { echo "storescp stored fewer than 3 files" >&2; exit 1; }
  expect "$WORK/store.pcap" 104 0x01 0x02 0x04 0x05 0x06
  finish store 104
}

cap_find() {
  lab_up; start_capture pacs "$WORK/find.pcap"
  bg pacs qrscp "$PY" "$HERE/dicom_pynetdicom.py" qrscp --port 11112 --aet PACS_QR --lifetime 60 \
    "$WORK/files/ct_2.dcm" "$WORK/files/mr_1.dcm" "$WORK/files/mr_2.dcm"
  wait_listen pacs 11112
  # Study Root C-FIND: two studies match TESTPATIENT*
  run ws "$DCMTK/findscu" -aet WS_VIEWER -aec PACS_QR -S \
    -k QueryRetrieveLevel=STUDY -k "PatientName=TESTPATIENT*" -k PatientID -k PatientBirthDate \
    -k StudyInstanceUID -k StudyDate -k AccessionNumber -k ModalitiesInStudy -k StudyDescription \
    "${IP[pacs]}" 11112
  # Patient Root C-FIND on an exact patient id: one match
  run ws "$DCMTK/findscu" -aet WS_VIEWER -aec PACS_QR -P \
    -k QueryRetrieveLevel=PATIENT -k PatientName -k PatientID=PID-TEST-0002 \
    "${IP[pacs]}" 11112
  stop_capture; stop_pids
  expect "$WORK/find.pcap" 11112 0x01 0x02 0x04 0x05 0x06
  finish find 11112
}

cap_move_get() {
  lab_up; start_capture pacs "$WORK/move_get.pcap"
  bg pacs qrscp "$PY" "$HERE/dicom_pynetdicom.py" qrscp --port 11112 --aet PACS_QR --lifetime 60 \
    --move-dest "WS_VIEWER=${IP[ws]}:11113" \
    "$WORK/files/ct_2.dcm" "$WORK/files/mr_1.dcm" "$WORK/files/mr_2.dcm"
  wait_listen pacs 11112
  mkdir -p "$WORK/move" "$WORK/get"
  local mr_study ct_study
  mr_study=$("$PY" -c 'import sys,pydicom;print(pydicom.dcmread(sys.argv[1]).StudyInstanceUID)' "$WORK/files/mr_1.dcm")
  ct_study=$("$PY" -c 'import sys,pydicom;print(pydicom.dcmread(sys.argv[1]).StudyInstanceUID)' "$WORK/files/ct_2.dcm")
  # C-MOVE of the MR study (2 instances) to WS_VIEWER: the PACS opens a second association back
  # to movescu's storage SCP on 10.77.1.31:11113
  run ws "$DCMTK/movescu" -aet WS_VIEWER -aec PACS_QR -aem WS_VIEWER --port 11113 -S -od "$WORK/move" \
    -k QueryRetrieveLevel=STUDY -k "StudyInstanceUID=$mr_study" "${IP[pacs]}" 11112
  # C-GET of the CT study (1 instance, implicit VR) on the same association (SCP role selection)
  run ws "$DCMTK/getscu" -aet WS_VIEWER -aec PACS_QR -S -od "$WORK/get" \
    -k QueryRetrieveLevel=STUDY -k "StudyInstanceUID=$ct_study" "${IP[pacs]}" 11112
  stop_capture; stop_pids
  [ "$(ls "$WORK/move" | wc -l)" = 2 ] || { echo "C-MOVE did not deliver 2 files" >&2; exit 1; }
  [ "$(ls "$WORK/get" | wc -l)" = 1 ] || { echo "C-GET did not deliver 1 file" >&2; exit 1; }
  expect "$WORK/move_get.pcap" 11112 0x01 0x02 0x04 0x05 0x06
  finish move_get "11112,11113"
}

cap_reject() {
  lab_up; start_capture pacs "$WORK/reject.pcap"
  # 1) pynetdicom with require_called_aet: wrong called AE -> RJ (permanent, service-user, 7 called AE not recognised)
  bg pacs rejectscp "$PY" "$HERE/dicom_pynetdicom.py" rejectscp --port 4242 --aet PACS_MAIN --lifetime 60
  # 2) dcmtk storescp --refuse -> RJ (permanent, service-user, 1 no reason given)
  bg pacs refusescp "$DCMTK/storescp" -aet PACS_SCP --refuse 104
  wait_listen pacs 4242; wait_listen pacs 104
  if timeout 60 ip netns exec "$NSP-mr" "$DCMTK/echoscu" -aet MR_SIEMENS_02 -aec WRONG_AET "${IP[pacs]}" 4242 >>"$WORK/clients.log" 2>&1; then
    echo "echo to a wrong called AE was accepted" >&2; exit 1; fi
  echo "  [mr] echoscu -aec WRONG_AET pacs:4242 (rejected as intended)"
  if timeout 60 ip netns exec "$NSP-ct" "$DCMTK/storescu" -aet CT_GE_01 -aec PACS_SCP -R "${IP[pacs]}" 104 "$WORK/files/ct_2.dcm" >>"$WORK/clients.log" 2>&1; then
    echo "store to a refusing SCP was accepted" >&2; exit 1; fi
  echo "  [ct] storescu pacs:104 --refuse (rejected as intended)"
  stop_capture; stop_pids
  expect "$WORK/reject.pcap" "4242,104" 0x01 0x03
  finish reject "4242,104"
}

cap_abort() {
  lab_up; start_capture pacs "$WORK/abort.pcap"
  # 1) requestor aborts after a C-ECHO (pynetdicom SCU -> dcmtk storescp)
  bg pacs storescp "$DCMTK/storescp" -aet PACS_SCP 104
  # 2) acceptor aborts when it gets the C-ECHO (dcmtk echoscu -> pynetdicom SCP on 11112)
  bg pacs abortscp "$PY" "$HERE/dicom_pynetdicom.py" abortscp --port 11112 --aet PACS_ABT --lifetime 60
  wait_listen pacs 104; wait_listen pacs 11112
  run ws "$PY" "$HERE/dicom_pynetdicom.py" abortscu --host "${IP[pacs]}" --port 104 --aet WS_VIEWER --aec PACS_SCP
  timeout 60 ip netns exec "$NSP-ws" "$DCMTK/echoscu" -aet WS_VIEWER -aec PACS_ABT "${IP[pacs]}" 11112 >>"$WORK/clients.log" 2>&1 || true
  echo "  [ws] echoscu pacs:11112 (aborted by the SCP as intended)"
  stop_capture; stop_pids
  expect "$WORK/abort.pcap" "104,11112" 0x01 0x02 0x04 0x07
  finish abort "104,11112"
}

cap_nonstd_port() {
  lab_up; start_capture pacs "$WORK/nonstd_port.pcap"
  bg pacs storescp "$DCMTK/storescp" -aet PACS_ALT -xf "$WORK/storescp.cfg" Default -od "$WORK/recv" 5678
  wait_listen pacs 5678
  run mr "$DCMTK/echoscu" -aet MR_SIEMENS_02 -aec PACS_ALT "${IP[pacs]}" 5678
  run mr "$DCMTK/storescu" -aet MR_SIEMENS_02 -aec PACS_ALT -R "${IP[pacs]}" 5678 \
    "$WORK/files/mr_1.dcm" "$WORK/files/mr_2.dcm"
  stop_capture; stop_pids
  expect "$WORK/nonstd_port.pcap" 5678 0x01 0x02 0x04 0x05 0x06
  finish nonstd_port 5678
}

cap_tls() {
  lab_up
  local c=$WORK/certs; mkdir -p "$c"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=pacs.medtap.test/O=medtap test" \
    -keyout "$c/pacs.key" -out "$c/pacs.crt" 2>/dev/null
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=ct01.medtap.test/O=medtap test" \
    -keyout "$c/ct.key" -out "$c/ct.crt" 2>/dev/null
  start_capture pacs "$WORK/tls.pcap"
  bg pacs tlsscp "$DCMTK/storescp" -aet PACS_TLS +tls "$c/pacs.key" "$c/pacs.crt" -pw +cf "$c/ct.crt" \
    -od "$WORK/recv" 2762
  wait_listen pacs 2762
  run ct "$DCMTK/storescu" -aet CT_GE_01 -aec PACS_TLS -R +tls "$c/ct.key" "$c/ct.crt" -pw +cf "$c/pacs.crt" \
    "${IP[pacs]}" 2762 "$WORK/files/ct_2.dcm"
  stop_capture; stop_pids
  local hs; hs=$(tshark -n -r "$WORK/tls.pcap" -d tcp.port==2762,tls -Y tls.handshake -T fields -E occurrence=a -e tls.handshake.type 2>/dev/null | tr ',' '\n' | sort -u | tr '\n' ' ')
  grep -qw 1 <<<"$hs" && grep -qw 2 <<<"$hs" || { echo "tls.pcap: no ClientHello/ServerHello ($hs)" >&2; exit 1; }
  [ -z "$(tshark -n -r "$WORK/tls.pcap" -d tcp.port==2762,dicom -Y dicom.pdu.type 2>/dev/null | head -1)" ] || {
    echo "tls.pcap: cleartext DICOM found" >&2; exit 1; }
  mv "$WORK/tls.pcap" "$OUT/tls.pcap"; chmod 644 "$OUT/tls.pcap"
  printf '%-18s %5s pkts  TLS handshake types: %s\n' tls.pcap "$(tshark -n -r "$OUT/tls.pcap" 2>/dev/null | wc -l)" "$hs"
}

ALL="echo store find move_get reject abort nonstd_port tls"
mkdir -p "$OUT" "$WORK/recv"
# storescp association profile: accept only Explicit and Implicit VR Little Endian, so that the
# context storescu -R proposes for the implicit-VR file (Explicit BE + Implicit) is accepted with
# Implicit VR LE and that file really travels implicit (storescp's default would pick Explicit BE
# and storescu would then convert the file to explicit VR).
cat >"$WORK/storescp.cfg" <<'CFG'
[[TransferSyntaxes]]
[Uncompressed]
TransferSyntax1 = LittleEndianExplicit
TransferSyntax2 = LittleEndianImplicit

[[PresentationContexts]]
[StorageSCP]
PresentationContext1 = VerificationSOPClass\Uncompressed
PresentationContext2 = CTImageStorage\Uncompressed
PresentationContext3 = MRImageStorage\Uncompressed

[[Profiles]]
[Default]
PresentationContexts = StorageSCP
CFG
"$PY" "$HERE/dicom_files.py" "$WORK/files" >/dev/null
for c in ${*:-$ALL}; do
  grep -qw -- "$c" <<<"$ALL" || { echo "unknown capture $c (have: $ALL)" >&2; exit 2; }
  echo "== $c"
  "cap_$c"
done
echo "done: $OUT"
