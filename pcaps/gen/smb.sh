#!/usr/bin/env bash
# Fire / not-fire capture pairs for the SMB and NetBIOS rules of signatures/rules/legacy.toml
# (6001010 SMBv1 negotiated, 6001011 SMB1 dialects offered but SMB2+ negotiated, 6001012/6001013
# LANMAN offered/negotiated, 6001020 NetBIOS), made with Debian 12's Samba 4.17.12 (smbd, nmbd, smbclient, nmblookup) in two network
# namespaces, captured with tcpdump on the server's veth, written to pcaps/legacy/:
#
#   client sm-c  sm-c0  02:73:00:00:00:10  10.73.0.10/24
#   server sm-s  sm-s0  02:73:00:00:00:20  10.73.0.20/24      (IPv6 off: no ND noise)
#
#   pcaps/gen/smb.sh [CAPTURE...]     default: all; then: python3 pcaps/gen/sources.py
#
# capture        server (smb.conf)                  client (smbclient, anonymous -N, "ls" on share ward7)
# smb1_only      server min protocol = NT1          -m NT1, client min protocol = NT1: offers NT LM 0.12 only
# smb1_offered   server min protocol = SMB2_02      client min protocol = NT1, max SMB3: SMB1 negotiate with
#                                                   NT LM 0.12 + SMB 2.002 + SMB 2.???, server answers SMB2
# smb2_445       defaults (SMB2_02..SMB3_11)        defaults: SMB2 negotiate only, on port 445
# netbios_139    defaults, nmbd running             nmblookup -U server WARD7NAS (NBNS query over UDP 137),
#                                                   then smbclient -p 139 (NetBIOS session request, SMB2 inside)
#
# lanman_offered server min protocol = NT1         -m NT1, client min protocol = LANMAN1: offers MICROSOFT
#                                                   NETWORKS 3.0 .. LANMAN2.1, NT LM 0.12; server picks NT LANMAN 1.0
# lanman         server min LANMAN1, max LANMAN2    -m LANMAN2, client min protocol = LANMAN1: LANMAN2.1 chosen
# No password is used: the share is public (guest ok), the sessions are anonymous.
# Needs root and: iproute2 tcpdump ethtool samba smbclient (nmblookup is in smbclient)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PCAPS=$(cd "$HERE/.." && pwd)
OUT="$PCAPS/legacy"
# shellcheck source=netns_lib.sh
. "$HERE/netns_lib.sh"

C=sm-c S=sm-s
CIP=10.73.0.10 SIP=10.73.0.20

setup() {
    need smbd nmbd smbclient nmblookup capinfos
    ns_init "$C" "$S"
    veth "$C" sm-c0 02:73:00:00:00:10 "$S" sm-s0 02:73:00:00:00:20
    for ns in "$C:sm-c0" "$S:sm-s0"; do
        nsx "${ns%%:*}" sysctl -qw "net.ipv6.conf.${ns#*:}.disable_ipv6=1"
    done
    ip -n "$C" addr add "$CIP/24" dev sm-c0
    ip -n "$S" addr add "$SIP/24" dev sm-s0
    nsx "$C" ping -q -c 1 -W 2 "$SIP" >/dev/null
    mkdir -p "$OUT" "$WORKDIR/share"
    echo "ward 7 infusion pump logs" >"$WORKDIR/share/readme.txt"
    chmod 755 "$WORKDIR" "$WORKDIR/share"
}

capture() { CAP_FILE="$OUT/$1.pcap"; cap_start "$S" "$CAP_FILE" -i sm-s0; }
stop_capture() { cap_stop_counted "$CAP_FILE"; }

# smbconf NAME MINPROTO: a self-contained smb.conf (all state under WORKDIR)
smbconf() {
    local d="$WORKDIR/$1"
    mkdir -p "$d/private" "$d/lock" "$d/state" "$d/cache" "$d/pid" "$d/log"
    cat >"$d/smb.conf" <<CONF
[global]
   workgroup = WARD7
   netbios name = WARD7NAS
   interfaces = $SIP/24
   bind interfaces only = yes
   server min protocol = $2
   server max protocol = ${SERVER_MAX:-SMB3}
   server role = standalone server
   map to guest = bad user
   private dir = $d/private
   lock directory = $d/lock
   state directory = $d/state
   cache directory = $d/cache
   pid directory = $d/pid
   ncalogin dir = $d/ncalrpc
   log file = $d/log/%m.log
   disable spoolss = yes
   load printers = no
   printing = bsd
   printcap name = /dev/null
[ward7]
   path = $WORKDIR/share
   guest ok = yes
   read only = yes
CONF
    echo "$d/smb.conf"
}

# run NAME MINPROTO [nmbd] -- smbclient-args...
run() {
    local name=$1 minp=$2 nmb=$3; shift 4
    local conf smbd nmbd=
    conf=$(smbconf "$name" "$minp")
    ip netns exec "$S" smbd --foreground -s "$conf" >"$WORKDIR/$name-smbd.out" 2>&1 &
    smbd=$!; BG_PIDS+=("$smbd")
    if [ "$nmb" = nmbd ]; then
        ip netns exec "$S" nmbd --foreground -s "$conf" >"$WORKDIR/$name-nmbd.out" 2>&1 &
        nmbd=$!; BG_PIDS+=("$nmbd")
        wait_until "nmbd :137 ($name)" 100 udp_bound "$S" 137
    fi
    wait_until "smbd :445 ($name)" 100 tcp_listening "$S" 445
    capture "$name"
    if [ "$nmb" = nmbd ]; then
        nsx "$C" timeout 10 nmblookup -U "$SIP" --recursion WARD7NAS | tee "$WORKDIR/$name-nmblookup.log"
        grep -q "$SIP WARD7NAS<00>" "$WORKDIR/$name-nmblookup.log"
    fi
    nsx "$C" timeout 15 smbclient "//$SIP/ward7" -N -c ls "$@" | tee "$WORKDIR/$name-smbclient.log"
    grep -q readme.txt "$WORKDIR/$name-smbclient.log"
    stop_capture
    kill "$smbd" ${nmbd:+"$nmbd"} 2>/dev/null || true
    wait "$smbd" ${nmbd:+"$nmbd"} 2>/dev/null || true
}

scenario_smb1_only() { run smb1_only NT1 - -- -m NT1 --option='client min protocol=NT1'; }
scenario_smb1_offered() {
    run smb1_offered SMB2_02 - -- --option='client min protocol=NT1' --option='client max protocol=SMB3'
}
scenario_smb2_445() { run smb2_445 SMB2_02 - --; }
scenario_netbios_139() { run netbios_139 SMB2_02 nmbd -- -p 139; }
scenario_lanman_offered() {
    run lanman_offered NT1 - -- -m NT1 --option='client min protocol=LANMAN1'
}
scenario_lanman() {
    SERVER_MAX=LANMAN2 run lanman LANMAN1 - -- -m LANMAN2 --option='client min protocol=LANMAN1'
}

ALL=(smb1_only smb1_offered smb2_445 netbios_139 lanman_offered lanman)
[ $# -gt 0 ] || set -- "${ALL[@]}"
setup
for f in "$@"; do
    "scenario_$f"
    echo "$f: smb.dialect $(tshark -r "$OUT/$f.pcap" -T fields -e smb.dialect 2>/dev/null | sort -u | tr '\n' ' ')" \
        "smb2.dialect $(tshark -r "$OUT/$f.pcap" -T fields -e smb2.dialect 2>/dev/null | sort -u | tr '\n' ' ')"
done
