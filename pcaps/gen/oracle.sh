#!/usr/bin/env bash
# Captures made with software the other generators do not use, to judge medtap against tshark
# (bench/oracle.py; end-to-end tests tests/dicom.rs, tests/hl7.rs, tests/conv.rs).
#
#   sudo bash pcaps/gen/oracle.sh [orthanc] [pynet] [hl7]
#
#   pcaps/dicom/orthanc.pcap     Orthanc 1.10.1 (Debian `orthanc`) as PACS on its default DICOM
#                                port 4242: dcmtk echoscu/storescu/findscu/movescu against it, its
#                                REST API making it C-ECHO and C-STORE (SCU) to a dcmtk storescp on
#                                11112, and the C-MOVE's sub-association to that storescp.
#   pcaps/dicom/pynet_smallpdu.pcap  pynetdicom 3.0.4 SCU (pcaps/gen/oracle_pynet.py) to Orthanc:
#                                max PDU 4096, 6 contexts (one refused), user identity, async ops
#                                window, role selection, SOP class extended negotiation.
#   pcaps/dicom/orthanc_get_reject.pcap  Orthanc with DicomCheckCalledAet: dcmtk getscu C-GET (the
#                                C-STOREs come back on the same association), echoscu to a wrong
#                                called AE (A-ASSOCIATE-RJ), movescu to an unknown destination AE.
#   pcaps/dicom/orthanc_worklist.pcap  Orthanc's ModalityWorklists plugin (a .wl made by dcmtk
#                                dump2dcm) queried by dcmtk findscu -W (Modality Worklist C-FIND).
#   pcaps/dicom/pynet_ipv6.pcap  pynetdicom SCU -> pynetdicom SCP over IPv6 on 11112: C-ECHO, C-STORE MR.
#   pcaps/hl7/pyhl7_hl7apy.pcap  python-hl7 0.4.5 `mllp_send` (4 MLLP blocks in one connection, one
#                                a FHS/BHS batch, one with a truncation char in MSH-2) to
#                                python-hl7's asyncio MLLP server on 6661; mllp_send one message per
#                                connection to hl7apy 1.3.5's MLLPServer on 2575 (one with '!' as
#                                component separator).
#   pcaps/hl7/pyhl7_hl7apy_vlan30.pcap  the same, 802.1Q-tagged (VLAN 30, PCP 5) by tcprewrite 4.4.
#   pcaps/tls_clients_v6_sll.pcap  5 TLS clients to openssl s_server (OpenSSL 3.0) on 8443, captured
#                                with `tcpdump -i any` (Linux SLL): gnutls-cli 3.7.9 over IPv6,
#                                openssl s_client -tls1_2 (IPv4), -tls1_3 (IPv6), curl 7.88 (IPv4),
#                                python3 ssl capped at TLS 1.2 (IPv6); all with SNI pacs.oracle.test.
#                                s_server listens on [::] only (v6only), so the two IPv4 clients are
#                                refused (SYN, RST): 3 handshakes, 2 refused flows.
# Namespaces or-pacs / or-ws joined by one veth; tcpdump on the PACS side. Needs root, orthanc,
# dcmtk, curl, gnutls-bin, openssl, tcpdump, python3 with pydicom, pynetdicom, hl7 (python-hl7), hl7apy.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)/..
# shellcheck source=netns_lib.sh
. "$HERE/netns_lib.sh"
need /usr/sbin/Orthanc /usr/bin/storescu /usr/bin/storescp /usr/bin/echoscu /usr/bin/findscu /usr/bin/movescu curl mllp_send
PACS=10.79.2.10 WS=10.79.2.31
ns_init or-pacs or-ws
veth or-pacs orpacs0 00:1d:4a:79:02:10 or-ws orws0 02:79:02:00:00:31
for n in pacs ws; do nsx or-$n sysctl -qw net.ipv6.conf.all.disable_ipv6=1; done
ip -n or-pacs addr add $PACS/24 dev orpacs0
ip -n or-ws addr add $WS/24 dev orws0
python3 "$HERE/dicom_files.py" "$WORKDIR/files" >/dev/null
python3 "$HERE/oracle_hl7.py" messages "$WORKDIR"

start_orthanc() {
    rm -rf "$WORKDIR/orthanc"; mkdir -p "$WORKDIR/orthanc"
    local strict=false
    [ -z "${ORTHANC_STRICT:-}" ] || strict=true
    local plugins="" wl=false
    [ -z "${ORTHANC_WORKLISTS:-}" ] || { plugins='"/usr/share/orthanc/plugins/libModalityWorklists.so"'; wl=true; }
    cat >"$WORKDIR/orthanc.json" <<J
{ "Name": "medtap-oracle", "StorageDirectory": "$WORKDIR/orthanc", "IndexDirectory": "$WORKDIR/orthanc",
  "DicomAet": "ORTHANC", "DicomPort": 4242, "HttpPort": 8042, "RemoteAccessAllowed": true,
  "AuthenticationEnabled": false, "Plugins": [ $plugins ],
  "Worklists": { "Enable": $wl, "Database": "${ORTHANC_WORKLISTS:-/nonexistent}" },
  "DicomModalities": { "ws": [ "WS_SCP", "$WS", 11112 ] }, "DicomAlwaysAllowEcho": true,
  "DicomAlwaysAllowStore": true, "DicomAlwaysAllowFind": true, "DicomAlwaysAllowMove": true, "DicomAlwaysAllowFindWorklist": true, "MaximumPduLength": ${ORTHANC_PDU:-16384}, "DicomCheckCalledAet": $strict }
J
    spawn or-pacs /usr/sbin/Orthanc "$WORKDIR/orthanc.json"
    ORTHANC_PID=$LAST_PID
    wait_until orthanc 200 tcp_listening or-pacs 4242
    wait_until orthanc-http 200 tcp_listening or-pacs 8042
}

cap_orthanc() {
    local out=$REPO/pcaps/dicom/orthanc.pcap
    start_orthanc
    spawn or-ws /usr/bin/storescp -aet WS_SCP -od "$WORKDIR" 11112
    wait_until storescp 100 tcp_listening or-ws 11112
    cap_start or-pacs "$out" -i orpacs0 tcp
    nsx or-ws /usr/bin/echoscu -aet MODALITY1 -aec ORTHANC $PACS 4242
    nsx or-ws /usr/bin/storescu -aet MODALITY1 -aec ORTHANC $PACS 4242 "$WORKDIR/files/ct_2.dcm" "$WORKDIR/files/mr_1.dcm"
    nsx or-ws /usr/bin/findscu -aet MODALITY1 -aec ORTHANC -S -k QueryRetrieveLevel=STUDY -k StudyInstanceUID -k ModalitiesInStudy $PACS 4242 2>/dev/null
    local study
    study=$(nsx or-ws curl -s http://$PACS:8042/studies | python3 -c 'import json,sys; print(json.load(sys.stdin)[0])')
    local suid
    suid=$(nsx or-ws curl -s "http://$PACS:8042/studies/$study" | python3 -c 'import json,sys; print(json.load(sys.stdin)["MainDicomTags"]["StudyInstanceUID"])')
    nsx or-ws /usr/bin/movescu -aet MODALITY1 -aec ORTHANC -aem WS_SCP -S -k QueryRetrieveLevel=STUDY -k StudyInstanceUID="$suid" $PACS 4242
    nsx or-ws curl -s -X POST http://$PACS:8042/modalities/ws/echo -d '{}' >/dev/null
    nsx or-ws curl -s -X POST http://$PACS:8042/modalities/ws/store -d "$study" >/dev/null
    cap_stop
    kill "$ORTHANC_PID"; wait "$ORTHANC_PID" 2>/dev/null || true
}

cap_pynet() {
    local out=$REPO/pcaps/dicom/pynet_smallpdu.pcap
    # Orthanc's smallest accepted PDU (4096): the SCU's data sets span many P-DATA PDUs
    ORTHANC_PDU=4096 start_orthanc
    cap_start or-pacs "$out" -i orpacs0 tcp port 4242
    nsx or-ws python3 "$HERE/oracle_pynet.py" $PACS 4242 ORTHANC "$WORKDIR/files"
    cap_stop
    kill "$ORTHANC_PID"; wait "$ORTHANC_PID" 2>/dev/null || true
}

cap_hl7() {
    local out=$REPO/pcaps/hl7/pyhl7_hl7apy.pcap
    spawn or-pacs python3 "$HERE/oracle_hl7.py" serve-pyhl7 6661
    spawn or-pacs python3 "$HERE/oracle_hl7.py" serve-hl7apy 2575
    wait_until pyhl7 100 tcp_listening or-pacs 6661
    wait_until hl7apy 100 tcp_listening or-pacs 2575
    cap_start or-pacs "$out" -i orpacs0 tcp
    nsx or-ws mllp_send -p 6661 -f "$WORKDIR/multi.hl7" $PACS
    nsx or-ws mllp_send -p 2575 -f "$WORKDIR/single_0.hl7" $PACS
    nsx or-ws mllp_send -p 2575 -f "$WORKDIR/single_1.hl7" $PACS
    cap_stop
}

cap_orthanc_get() {
    local out=$REPO/pcaps/dicom/orthanc_get_reject.pcap
    ORTHANC_STRICT=1 start_orthanc
    nsx or-ws /usr/bin/storescu -aet MODALITY1 -aec ORTHANC $PACS 4242 "$WORKDIR/files/mr_1.dcm" "$WORKDIR/files/mr_2.dcm"
    cap_start or-pacs "$out" -i orpacs0 tcp port 4242
    # C-GET: Orthanc sends the C-STORE sub-operations back over the same association (role selection)
    nsx or-ws /usr/bin/getscu -aet MODALITY1 -aec ORTHANC -od "$WORKDIR" -S -k QueryRetrieveLevel=PATIENT -k PatientID=PID-TEST-0002 $PACS 4242 || true
    # wrong called AE title with DicomCheckCalledAet: A-ASSOCIATE-RJ
    nsx or-ws /usr/bin/echoscu -aet MODALITY1 -aec NOT_ORTHANC $PACS 4242 || true
    # a C-MOVE to an unknown destination AE: the C-MOVE-RSP carries a failure status
    nsx or-ws /usr/bin/movescu -aet MODALITY1 -aec ORTHANC -aem UNKNOWN_AE -S -k QueryRetrieveLevel=PATIENT -k PatientID=PID-TEST-0002 $PACS 4242 || true
    cap_stop
    kill "$ORTHANC_PID"; wait "$ORTHANC_PID" 2>/dev/null || true
}

cap_vlan() {
    # the HL7 capture replayed as a trunk port would show it: 802.1Q tag VLAN 30, priority 5
    tcprewrite --enet-vlan=add --enet-vlan-tag=30 --enet-vlan-cfi=0 --enet-vlan-pri=5 \
        -i "$REPO/pcaps/hl7/pyhl7_hl7apy.pcap" -o "$REPO/pcaps/hl7/pyhl7_hl7apy_vlan30.pcap"
}

cap_v6dicom() {
    local out=$REPO/pcaps/dicom/pynet_ipv6.pcap
    nsx or-pacs sysctl -qw net.ipv6.conf.all.disable_ipv6=0; nsx or-ws sysctl -qw net.ipv6.conf.all.disable_ipv6=0
    nsx or-pacs sysctl -qw net.ipv6.conf.orpacs0.disable_ipv6=0; nsx or-ws sysctl -qw net.ipv6.conf.orws0.disable_ipv6=0
    ip -n or-pacs addr add fd00:79:2::10/64 dev orpacs0 nodad 2>/dev/null || true
    ip -n or-ws addr add fd00:79:2::31/64 dev orws0 nodad 2>/dev/null || true
    spawn or-pacs python3 -c '
from pynetdicom import AE, AllStoragePresentationContexts, evt
ae = AE(ae_title="PYNET_V6_SCP")
ae.supported_contexts = AllStoragePresentationContexts
ae.add_supported_context("1.2.840.10008.1.1")
ae.start_server(("::", 11112), evt_handlers=[(evt.EVT_C_STORE, lambda e: 0x0000)])'
    wait_until pynet-scp 100 tcp_listening or-pacs 11112
    cap_start or-pacs "$out" -i orpacs0 tcp port 11112
    nsx or-ws python3 -c '
import sys
from pydicom import dcmread
from pynetdicom import AE
ae = AE(ae_title="PYNET_V6_SCU")
ae.add_requested_context("1.2.840.10008.1.1")
ae.add_requested_context("1.2.840.10008.5.1.4.1.1.4")
a = ae.associate("fd00:79:2::10", 11112, ae_title="PYNET_V6_SCP")
a.send_c_echo()
a.send_c_store(dcmread(sys.argv[1]))
a.release()' "$WORKDIR/files/mr_2.dcm"
    cap_stop
}

cap_worklist() {
    local out=$REPO/pcaps/dicom/orthanc_worklist.pcap
    mkdir -p "$WORKDIR/wl"
    cat >"$WORKDIR/wl/item.dump" <<'D'
(0008,0005) CS [ISO_IR 100]
(0008,0050) SH [ACC-TEST-0001]
(0010,0010) PN [TESTPATIENT^ALPHA]
(0010,0020) LO [PID-TEST-0001]
(0010,0030) DA [19700101]
(0010,0040) CS [F]
(0020,000d) UI [2.25.1234567890123456789]
(0040,0100) SQ
(fffe,e000) -
(0008,0060) CS [CT]
(0040,0001) AE [CT_GE_01]
(0040,0002) DA [20260101]
(0040,0003) TM [0900]
(0040,0009) SH [SPS-0001]
(fffe,e00d) -
(fffe,e0dd) -
(0040,1001) SH [RP-0001]
D
    /usr/bin/dump2dcm -q "$WORKDIR/wl/item.dump" "$WORKDIR/wl/item.wl"
    ORTHANC_WORKLISTS="$WORKDIR/wl" start_orthanc
    cap_start or-pacs "$out" -i orpacs0 tcp port 4242
    nsx or-ws /usr/bin/findscu -aet CT_GE_01 -aec ORTHANC -W -k "(0040,0100)[0].Modality=CT" \
        -k "(0040,0100)[0].ScheduledStationAETitle=CT_GE_01" -k PatientName -k PatientID -k AccessionNumber \
        $PACS 4242 2>/dev/null
    cap_stop
    kill "$ORTHANC_PID"; wait "$ORTHANC_PID" 2>/dev/null || true
}

cap_tls() {
    local out=$REPO/pcaps/tls_clients_v6_sll.pcap
    for n in pacs ws; do nsx or-$n sysctl -qw net.ipv6.conf.all.disable_ipv6=0; nsx or-$n sysctl -qw net.ipv6.conf.orpacs0.disable_ipv6=0 2>/dev/null || true; done
    nsx or-ws sysctl -qw net.ipv6.conf.orws0.disable_ipv6=0
    ip -n or-pacs addr add fd00:79:2::10/64 dev orpacs0 nodad
    ip -n or-ws addr add fd00:79:2::31/64 dev orws0 nodad
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORKDIR/k.pem" -out "$WORKDIR/c.pem" -days 30 \
        -subj "/CN=pacs.oracle.test" 2>/dev/null
    spawn or-pacs openssl s_server -quiet -accept '[::]:8443' -cert "$WORKDIR/c.pem" -key "$WORKDIR/k.pem" -www
    wait_until s_server 100 tcp_listening or-pacs 8443
    cap_start or-pacs "$out" -i any tcp port 8443
    nsx or-ws gnutls-cli --insecure --sni-hostname=pacs.oracle.test -p 8443 fd00:79:2::10 </dev/null >/dev/null 2>&1 || true
    nsx or-ws openssl s_client -tls1_2 -servername pacs.oracle.test -connect $PACS:8443 </dev/null >/dev/null 2>&1 || true
    nsx or-ws openssl s_client -tls1_3 -servername pacs.oracle.test -connect '[fd00:79:2::10]:8443' </dev/null >/dev/null 2>&1 || true
    nsx or-ws curl -sk --resolve pacs.oracle.test:8443:$PACS https://pacs.oracle.test:8443/ >/dev/null || true
    nsx or-ws python3 -c 'import socket, ssl; c = ssl._create_unverified_context(); c.maximum_version = ssl.TLSVersion.TLSv1_2; s = c.wrap_socket(socket.create_connection(("fd00:79:2::10", 8443)), server_hostname="pacs.oracle.test"); s.close()' || true
    cap_stop
}

[ $# -gt 0 ] || set -- orthanc pynet orthanc_get worklist hl7 vlan v6dicom tls
for c in "$@"; do "cap_$c"; done
