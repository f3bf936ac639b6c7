#!/usr/bin/env bash
# Fire / not-fire capture pairs for the legacy-protocol rules (signatures/rules/legacy.toml),
# made with real servers and clients from Debian 12 in two network namespaces, captured with
# tcpdump on the server's veth, written to pcaps/legacy/:
#
#   client lg-c  lg-c0  02:71:00:00:00:10  10.71.0.10/24
#   server lg-s  lg-s0  02:71:00:00:00:20  10.71.0.20/24      (IPv6 off: no ND noise)
#
#   pcaps/gen/legacy.sh [SCENARIO...]     default: all of them, in this order
#
# scenario  captures (pcaps/legacy/...)          software
# http      http_basic, http_digest, https_auth  lighttpd 1.4.69 (mod_auth, htdigest backend, mod_openssl) / curl 7.88
# snmp      snmp_v1_public, snmp_v2c_public,     net-snmp 5.9.3 snmpd / snmpget
#           snmp_v2c_other, snmp_v3_authpriv
# tftp      tftp                                  tftpd-hpa 5.2 / tftp-hpa (get and put)
# ftp       ftp_login, ftp_anonymous, ftps_login  vsftpd 3.0.3 / curl (FTPS: ssl_enable, curl --ssl-reqd)
# telnet    telnet_login, ssh_login               inetutils telnetd 2.4 via inetutils-inetd + /bin/login /
#                                                 inetutils telnet driven by expect; OpenSSH 9.2p1 sshd / ssh
# rcmd      rsh, rlogin, rexec                    netkit rsh-server 0.17 (in.rshd, in.rlogind, in.rexecd) via
#                                                 inetutils-inetd / rsh-redone-client 85 (rsh, rlogin + expect),
#                                                 glibc rexec(3) via pcaps/gen/rexec_client.py
# vnc       vnc_none, vnc_vncauth, vnc_plain,     TigerVNC 1.12 Xvnc -SecurityTypes None, VncAuth, Plain,
#           vnc_tlsnone, vnc_x509vnc              TLSNone, X509Vnc / TigerVNC vncviewer on Xvfb (4 s each)
# rdp       rdp_standard, rdp_downgraded,         xrdp 0.9.21 (security_layer rdp / negotiate) / FreeRDP 2.11
#           rdp_tls, rdp_tls10                    xfreerdp (/sec:rdp, no /sec, /sec:tls) on Xvfb (5 s each)
#
# Secrets used (tests/expected/privacy/secrets.tsv lists them; medtap must never output them):
#   account lgnurse (HTTP, FTP, telnet, rexec, VNC Plain) password Lg-Ward7-Pw9; SNMP
#   communities public (default) and Lg-Ward7-Ro (other); SNMPv3 user lgv3 auth Lg-V3-Auth-Pw
#   priv Lg-V3-Priv-Pw; VNC password Lg7VncPw (never on the wire: DES challenge).
# The login scenarios create the local account lgnurse (removed at exit) and, for rsh/rlogin,
# /etc/netns/lg-{c,s}/hosts (name resolution inside the namespaces; removed at exit).
# Every step is bounded (timeouts on clients, wait_until on servers); cleanup() removes the
# namespaces and everything started. Re-run: pcaps/gen/legacy.sh http && python3 pcaps/gen/sources.py
# Needs root and: iproute2 tcpdump ethtool curl openssl lighttpd lighttpd-mod-openssl snmpd snmp
#   tftpd-hpa tftp-hpa vsftpd inetutils-inetd inetutils-telnetd inetutils-telnet expect
#   openssh-server openssh-client rsh-server rsh-redone-client python3 tigervnc-standalone-server
#   tigervnc-viewer tigervnc-tools xvfb xrdp freerdp2-x11
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PCAPS=$(cd "$HERE/.." && pwd)
OUT="$PCAPS/legacy"
# shellcheck source=netns_lib.sh
. "$HERE/netns_lib.sh"

C=lg-c S=lg-s
CIP=10.71.0.10 SIP=10.71.0.20
USER_NAME=lgnurse USER_PW=Lg-Ward7-Pw9 VNC_PW=Lg7VncPw

setup() {
    ns_init "$C" "$S"
    veth "$C" lg-c0 02:71:00:00:00:10 "$S" lg-s0 02:71:00:00:00:20
    for ns in "$C:lg-c0" "$S:lg-s0"; do
        nsx "${ns%%:*}" sysctl -qw "net.ipv6.conf.${ns#*:}.disable_ipv6=1"
    done
    ip -n "$C" addr add "$CIP/24" dev lg-c0
    ip -n "$S" addr add "$SIP/24" dev lg-s0
    nsx "$C" ping -q -c 1 -W 2 "$SIP" >/dev/null
    mkdir -p "$OUT"
}

# capture NAME: start tcpdump on the server veth writing pcaps/legacy/NAME.pcap
capture() { CAP_FILE="$OUT/$1.pcap"; cap_start "$S" "$CAP_FILE" -i lg-s0; }
# stop_capture: flush and stop it; print what tshark decodes
stop_capture() { cap_stop_counted "$CAP_FILE"; }

# bg_server NS LOG cmd... : start a server in the background, remember its pid (SRV)
bg_server() {
    local ns=$1 log=$2; shift 2
    ip netns exec "$ns" "$@" >"$log" 2>&1 &
    SRV=$!
    BG_PIDS+=("$SRV")
}
stop_server() { kill "$SRV" 2>/dev/null || true; wait "$SRV" 2>/dev/null || true; }

selfsigned() {
    [ -f "$WORKDIR/cert.pem" ] && return 0
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=ward7.hospital.example \
        -keyout "$WORKDIR/key.pem" -out "$WORKDIR/cert.pem" 2>/dev/null
    cat "$WORKDIR/cert.pem" "$WORKDIR/key.pem" >"$WORKDIR/both.pem"
}

# --- HTTP Basic and Digest in clear vs over HTTPS ---------------------------------------------
scenario_http() {
    need lighttpd curl openssl
    selfsigned
    local d="$WORKDIR/www"
    mkdir -p "$d/basic" "$d/digest"
    echo "ward 7 chart server" >"$d/basic/index.html"
    echo "ward 7 chart server" >"$d/digest/index.html"
    # htdigest file: user:realm:md5(user:realm:password); the backend serves Basic and Digest
    printf '%s:ward7:%s\n' "$USER_NAME" "$(printf '%s:ward7:%s' "$USER_NAME" "$USER_PW" | md5sum | cut -d' ' -f1)" >"$WORKDIR/htdigest"
    chmod 644 "$WORKDIR/htdigest" "$WORKDIR/both.pem"
    chmod 755 "$WORKDIR" "$d" "$d/basic" "$d/digest"
    cat >"$WORKDIR/lighttpd.conf" <<EOF
server.modules = ("mod_auth", "mod_authn_file", "mod_openssl")
server.document-root = "$d"
server.bind = "$SIP"
server.port = 80
server.username = "www-data"
server.groupname = "www-data"
index-file.names = ("index.html")
auth.backend = "htdigest"
auth.backend.htdigest.userfile = "$WORKDIR/htdigest"
auth.require = (
  "/basic/" => ("method" => "basic", "realm" => "ward7", "require" => "valid-user"),
  "/digest/" => ("method" => "digest", "realm" => "ward7", "require" => "valid-user", "algorithm" => "MD5"),
)
\$SERVER["socket"] == "$SIP:443" {
  ssl.engine = "enable"
  ssl.pemfile = "$WORKDIR/both.pem"
}
EOF
    bg_server "$S" "$WORKDIR/lighttpd.log" lighttpd -D -f "$WORKDIR/lighttpd.conf"
    wait_until "lighttpd :80" 100 tcp_listening "$S" 80
    wait_until "lighttpd :443" 100 tcp_listening "$S" 443
    local cu=(nsx "$C" curl -sS --max-time 10 -o /dev/null -w '%{http_code}\n' -u "$USER_NAME:$USER_PW")
    capture http_basic
    [ "$("${cu[@]}" --basic "http://$SIP/basic/")" = 200 ]
    stop_capture
    capture http_digest
    [ "$("${cu[@]}" --digest "http://$SIP/digest/")" = 200 ]
    stop_capture
    capture https_auth
    [ "$("${cu[@]}" -k --basic "https://$SIP/basic/")" = 200 ]
    [ "$("${cu[@]}" -k --digest "https://$SIP/digest/")" = 200 ]
    stop_capture
    stop_server
}

# --- SNMP v1/v2c with the default and another community vs SNMPv3 authPriv --------------------
scenario_snmp() {
    need snmpd snmpget
    mkdir -p "$WORKDIR/snmp"
    cat >"$WORKDIR/snmpd.conf" <<EOF
agentaddress udp:$SIP:161
sysLocation ward 7 network closet
sysContact biomed@hospital.example
rocommunity public $CIP
rocommunity Lg-Ward7-Ro $CIP
createUser lgv3 SHA-256 Lg-V3-Auth-Pw AES Lg-V3-Priv-Pw
rouser lgv3 authpriv
EOF
    bg_server "$S" "$WORKDIR/snmpd.log" env SNMP_PERSISTENT_DIR="$WORKDIR/snmp" \
        snmpd -f -Lo -C -c "$WORKDIR/snmpd.conf" -p "$WORKDIR/snmpd.pid" -I -smux
    wait_until "snmpd :161" 100 udp_bound "$S" 161
    local get=(nsx "$C" env SNMP_PERSISTENT_DIR="$WORKDIR/snmp-client" snmpget -On -t 2 -r 1)
    capture snmp_v1_public
    "${get[@]}" -v1 -c public "$SIP" 1.3.6.1.2.1.1.1.0 1.3.6.1.2.1.1.5.0
    stop_capture
    capture snmp_v2c_public
    "${get[@]}" -v2c -c public "$SIP" 1.3.6.1.2.1.1.1.0 1.3.6.1.2.1.1.5.0
    stop_capture
    capture snmp_v2c_other
    "${get[@]}" -v2c -c Lg-Ward7-Ro "$SIP" 1.3.6.1.2.1.1.1.0 1.3.6.1.2.1.1.6.0
    stop_capture
    capture snmp_v3_authpriv
    "${get[@]}" -v3 -l authPriv -u lgv3 -a SHA-256 -A Lg-V3-Auth-Pw -x AES -X Lg-V3-Priv-Pw \
        "$SIP" 1.3.6.1.2.1.1.1.0 1.3.6.1.2.1.1.5.0
    stop_capture
    stop_server
}

# --- TFTP read and write ----------------------------------------------------------------------
scenario_tftp() {
    need in.tftpd tftp
    mkdir -p "$WORKDIR/tftp"
    head -c 1500 /dev/zero | tr '\0' 'x' >"$WORKDIR/tftp/pump-firmware.bin"
    : >"$WORKDIR/tftp/pump-config.txt"
    chmod 777 "$WORKDIR/tftp"
    chmod 666 "$WORKDIR/tftp/pump-config.txt"
    bg_server "$S" "$WORKDIR/tftpd.log" in.tftpd -L -c -s -u root --address "$SIP:69" "$WORKDIR/tftp"
    wait_until "tftpd :69" 100 udp_bound "$S" 69
    printf 'rate=5\n' >"$WORKDIR/pump-config.txt"
    capture tftp
    (cd "$WORKDIR" && nsx "$C" timeout 10 tftp "$SIP" -m octet -c get pump-firmware.bin)
    (cd "$WORKDIR" && nsx "$C" timeout 10 tftp "$SIP" -m netascii -c put pump-config.txt)
    stop_capture
    cmp -s "$WORKDIR/pump-firmware.bin" "$WORKDIR/tftp/pump-firmware.bin"
    stop_server
}

# --- a local account for the login scenarios (ftp, telnet, rcmd, ssh) ------------------------
# lgnurse, password $USER_PW, home /home/lgnurse; removed again at exit.
USER_MADE=
user_setup() {
    [ -n "$USER_MADE" ] && return 0
    if ! id "$USER_NAME" >/dev/null 2>&1; then
        useradd -m -s /bin/bash "$USER_NAME"
    fi
    USER_MADE=1
    echo "$USER_NAME:$USER_PW" | chpasswd
    local h
    h=$(getent passwd "$USER_NAME" | cut -d: -f6)
    echo "ward 7 infusion log" >"$h/ward7.txt"
    # host trust for rsh/rlogin: root on the client host (by name and by address)
    printf 'lg-client.ward7.example root\n%s root\n' "$CIP" >"$h/.rhosts"
    mkdir -p "$h/.ssh"
    rm -f "$WORKDIR/id_ed25519" "$WORKDIR/id_ed25519.pub"
    ssh-keygen -q -t ed25519 -N '' -C lg-client -f "$WORKDIR/id_ed25519"
    cp "$WORKDIR/id_ed25519.pub" "$h/.ssh/authorized_keys"
    chown -R "$USER_NAME:" "$h"
    chmod 600 "$h/.rhosts" "$h/.ssh/authorized_keys"
    chmod 700 "$h/.ssh"
}
user_cleanup() {
    if [ -n "$USER_MADE" ]; then
        pkill -u "$USER_NAME" 2>/dev/null || true
        userdel -r "$USER_NAME" 2>/dev/null || true
    fi
    rm -rf /etc/netns/"$C" /etc/netns/"$S"
    cleanup
}
# name resolution inside the namespaces (ip netns exec bind-mounts /etc/netns/NS/* over /etc/*):
# the r-command daemons look the client's address up; no DNS server is reachable.
etc_netns() {
    local ns
    for ns in "$C" "$S"; do
        mkdir -p /etc/netns/"$ns"
        printf '127.0.0.1 localhost\n%s lg-client.ward7.example lg-client\n%s lg-server.ward7.example lg-server\n' \
            "$CIP" "$SIP" >/etc/netns/"$ns"/hosts
        : >/etc/netns/"$ns"/resolv.conf
    done
}

# inetd SERVICE-LINES... : run inetutils-inetd in the server namespace with these lines
inetd() {
    printf '%s\n' "$@" >"$WORKDIR/inetd.conf"
    mkdir -p "$WORKDIR/inetd.d"
    bg_server "$S" "$WORKDIR/inetd.log" inetutils-inetd -d -p "$WORKDIR/inetd.pid" "$WORKDIR/inetd.conf" "$WORKDIR/inetd.d"
}

# --- FTP: login with USER/PASS in clear, anonymous, and explicit FTPS (AUTH TLS) -------------
scenario_ftp() {
    need vsftpd curl openssl
    user_setup
    selfsigned
    mkdir -p "$WORKDIR/ftp-anon/pub"
    echo "public ward 7 leaflet" >"$WORKDIR/ftp-anon/pub/leaflet.txt"
    chmod 755 "$WORKDIR/ftp-anon" "$WORKDIR/ftp-anon/pub"
    local common="listen=YES
listen_ipv6=NO
listen_address=$SIP
background=NO
local_enable=YES
write_enable=NO
pam_service_name=vsftpd
secure_chroot_dir=/var/run/vsftpd/empty
anon_root=$WORKDIR/ftp-anon
seccomp_sandbox=NO
xferlog_enable=NO
pasv_min_port=30000
pasv_max_port=30010"
    printf '%s\nanonymous_enable=YES\nssl_enable=NO\n' "$common" >"$WORKDIR/vsftpd.conf"
    printf '%s\nanonymous_enable=NO\nssl_enable=YES\nrsa_cert_file=%s\nrsa_private_key_file=%s\nforce_local_logins_ssl=YES\nforce_local_data_ssl=YES\nrequire_ssl_reuse=NO\n' \
        "$common" "$WORKDIR/cert.pem" "$WORKDIR/key.pem" >"$WORKDIR/vsftpd-tls.conf"
    local cu=(nsx "$C" curl -sS --max-time 10)
    bg_server "$S" "$WORKDIR/vsftpd.log" vsftpd "$WORKDIR/vsftpd.conf"
    wait_until "vsftpd :21" 100 tcp_listening "$S" 21
    capture ftp_login
    "${cu[@]}" "ftp://$USER_NAME:$USER_PW@$SIP/ward7.txt" | grep -q 'ward 7'
    stop_capture
    capture ftp_anonymous
    "${cu[@]}" "ftp://$SIP/pub/leaflet.txt" | grep -q leaflet
    stop_capture
    stop_server
    bg_server "$S" "$WORKDIR/vsftpd-tls.log" vsftpd "$WORKDIR/vsftpd-tls.conf"
    wait_until "vsftpd (TLS) :21" 100 tcp_listening "$S" 21
    capture ftps_login
    "${cu[@]}" --ssl-reqd -k "ftp://$USER_NAME:$USER_PW@$SIP/ward7.txt" | grep -q 'ward 7'
    stop_capture
    stop_server
}

# --- Telnet login (inetutils telnetd from inetd, /bin/login) vs the same over ssh ------------
scenario_telnet() {
    need inetutils-inetd telnet expect sshd ssh
    user_setup
    inetd "telnet stream tcp nowait root /usr/sbin/telnetd telnetd"
    wait_until "inetd :23" 100 tcp_listening "$S" 23
    capture telnet_login
    nsx "$C" expect -c "
        set timeout 15
        spawn telnet $SIP
        expect {login: } { send \"$USER_NAME\r\" } timeout { exit 2 }
        expect {Password:} { send \"$USER_PW\r\" } timeout { exit 3 }
        expect {\\\$ } { send \"cat ward7.txt; exit\r\" } timeout { exit 4 }
        expect eof
    " >"$WORKDIR/telnet.out"
    stop_capture
    grep -q 'ward 7 infusion log' "$WORKDIR/telnet.out"
    stop_server
    scenario_ssh
}

scenario_ssh() {
    need sshd ssh
    user_setup
    [ -f "$WORKDIR/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$WORKDIR/ssh_host_ed25519_key"
    mkdir -p /run/sshd
    cat >"$WORKDIR/sshd_config" <<EOF
ListenAddress $SIP
HostKey $WORKDIR/ssh_host_ed25519_key
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM yes
PidFile $WORKDIR/sshd.pid
EOF
    bg_server "$S" "$WORKDIR/sshd.log" /usr/sbin/sshd -D -e -f "$WORKDIR/sshd_config"
    wait_until "sshd :22" 100 tcp_listening "$S" 22
    capture ssh_login
    nsx "$C" timeout 20 ssh -i "$WORKDIR/id_ed25519" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o BatchMode=yes -o LogLevel=ERROR "$USER_NAME@$SIP" cat ward7.txt | grep -q 'ward 7'
    stop_capture
    stop_server
}

# --- rsh, rlogin (host trust, .rhosts) and rexec (password) from netkit rsh-server via inetd ---
scenario_rcmd() {
    need inetutils-inetd in.rshd in.rlogind in.rexecd rsh-redone-rsh rsh-redone-rlogin expect python3
    user_setup
    etc_netns
    inetd "shell stream tcp nowait root /usr/sbin/in.rshd in.rshd" \
        "login stream tcp nowait root /usr/sbin/in.rlogind in.rlogind" \
        "exec stream tcp nowait root /usr/sbin/in.rexecd in.rexecd"
    wait_until "inetd :514" 100 tcp_listening "$S" 514
    capture rsh
    nsx "$C" timeout 15 rsh-redone-rsh -l "$USER_NAME" "$SIP" cat ward7.txt | grep -q 'ward 7'
    stop_capture
    capture rlogin
    nsx "$C" expect -c "
        set timeout 15
        spawn rsh-redone-rlogin -l $USER_NAME $SIP
        expect {\\\$ } { send \"cat ward7.txt; exit\r\" } timeout { exit 4 }
        expect eof
    " >"$WORKDIR/rlogin.out"
    stop_capture
    grep -q 'ward 7 infusion log' "$WORKDIR/rlogin.out"
    # rexec: glibc's rexec(3) client (no rexec command ships in Debian 12), through ctypes
    capture rexec
    nsx "$C" timeout 15 python3 "$HERE/rexec_client.py" "$SIP" "$USER_NAME" "$USER_PW" "cat ward7.txt" | grep -q 'ward 7'
    stop_capture
    stop_server
}

# --- VNC: TigerVNC Xvnc with each security type, TigerVNC vncviewer on an Xvfb display -------
# SECURITY: None (RFB type 1), VncAuth (2), and VeNCrypt (19) sub-types Plain (256: user and
# password in clear), TLSNone (257: encrypted, no authentication), X509Vnc (261: certificate
# checked, VNC authentication inside TLS).
scenario_vnc() {
    need Xvnc vncviewer vncpasswd Xvfb openssl
    user_setup
    local key="$WORKDIR/vnc-key.pem" crt="$WORKDIR/vnc-cert.pem"
    [ -f "$crt" ] || openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$SIP" \
        -addext "subjectAltName=IP:$SIP" -keyout "$key" -out "$crt" 2>/dev/null
    printf '%s\n' "$VNC_PW" | vncpasswd -f >"$WORKDIR/vncpasswd"
    chmod 600 "$WORKDIR/vncpasswd"
    # the viewer's display: Xvfb in the client namespace
    bg_server "$C" "$WORKDIR/xvfb.log" Xvfb :72 -screen 0 640x480x24 -nolisten tcp
    local xvfb=$SRV
    wait_until "Xvfb :72" 100 test -S /tmp/.X11-unix/X72
    local t
    for t in None VncAuth Plain TLSNone X509Vnc; do
        bg_server "$S" "$WORKDIR/xvnc-$t.log" Xvnc :71 -geometry 320x240 -depth 16 -nolisten tcp \
            -interface "$SIP" -rfbport 5900 -SecurityTypes "$t" -PasswordFile "$WORKDIR/vncpasswd" \
            -PlainUsers "$USER_NAME" -PAMService tigervnc -X509Cert "$crt" -X509Key "$key"
        wait_until "Xvnc :5900 ($t)" 100 tcp_listening "$S" 5900
        capture "vnc_$(echo "$t" | tr '[:upper:]' '[:lower:]')"
        # the viewer runs until the timeout: the handshake and a few framebuffer updates
        # (the viewer reads the Plain user and password from the environment, and then uses
        # that password for VncAuth too: only set them for the Plain types)
        local envs=(DISPLAY=:72)
        [ "${t%Plain}" != "$t" ] && envs+=(VNC_USERNAME="$USER_NAME" VNC_PASSWORD="$USER_PW")
        nsx "$C" env "${envs[@]}" timeout 4 vncviewer -SecurityTypes "$t" -passwd "$WORKDIR/vncpasswd" -X509CA "$crt" \
            -X509CRL /dev/null -Shared -ViewOnly "$SIP::5900" >"$WORKDIR/vncviewer-$t.log" 2>&1 || true
        stop_capture
        stop_server
        grep -qiE 'connected to host|CConnection: Using RFB' "$WORKDIR/vncviewer-$t.log" ||
            { echo "vncviewer ($t) did not connect" >&2; cat "$WORKDIR/vncviewer-$t.log" >&2; exit 1; }
        grep -qiE 'failure|failed|error' "$WORKDIR/vncviewer-$t.log" &&
            { echo "vncviewer ($t) failed" >&2; cat "$WORKDIR/vncviewer-$t.log" >&2; exit 1; }
        rm -f /tmp/.X71-lock /tmp/.X11-unix/X71
    done
    kill "$xvfb" 2>/dev/null || true
    wait "$xvfb" 2>/dev/null || true
}

# --- RDP: xrdp with security_layer rdp / negotiate, FreeRDP xfreerdp on an Xvfb display ------
# rdp_standard:   xrdp security_layer=rdp, xfreerdp /sec:rdp: Standard RDP Security both ways
# rdp_downgraded: xrdp security_layer=rdp, xfreerdp with no /sec (asks for RDP, TLS and
#                 CredSSP): the server picks Standard RDP Security
# rdp_tls:        xrdp security_layer=negotiate, xfreerdp /sec:tls: TLS selected (TLS 1.3)
# rdp_tls10:      the same with xrdp ssl_protocols=TLSv1 (and security level 0 both sides):
#                 TLS selected, TLS 1.0 negotiated inside the RDP connection
# The client runs 5 s: connection, licensing and xrdp's login screen (no session manager runs).
# With Standard RDP Security xrdp 0.9.21 rejects FreeRDP 2.11's first encrypted PDU ("MAC
# checksum error", any crypt_level) and drops the connection: the negotiation, MCS connect and
# security exchange, which are what medtap reads, are complete by then.
scenario_rdp() {
    need xrdp xfreerdp Xvfb openssl
    selfsigned
    mkdir -p /run/xrdp
    bg_server "$C" "$WORKDIR/xvfb-rdp.log" Xvfb :73 -screen 0 800x600x24 -nolisten tcp
    local xvfb=$SRV
    wait_until "Xvfb :73" 100 test -S /tmp/.X11-unix/X73
    local name layer sec protos
    for name in "rdp_standard|rdp|/sec:rdp|" "rdp_downgraded|rdp||" "rdp_tls|negotiate|/sec:tls|" \
        "rdp_tls10|negotiate|/sec:tls /tls-seclevel:0|TLSv1"; do
        IFS='|' read -r name layer sec protos <<<"$name"
        # rdp_tls10: the server allows TLS 1.0 only (OpenSSL 3 needs security level 0 for it)
        local tlsopt=()
        [ -n "$protos" ] && tlsopt=(-e "s|^ssl_protocols=.*|ssl_protocols=$protos|"
            -e "s|^#tls_ciphers=.*|tls_ciphers=DEFAULT@SECLEVEL=0|")
        sed "${tlsopt[@]}" -e "s|^port=3389|port=tcp://$SIP:3389|" -e "s|^security_layer=.*|security_layer=$layer|" \
            -e "s|^certificate=.*|certificate=$WORKDIR/cert.pem|" -e "s|^key_file=.*|key_file=$WORKDIR/key.pem|" \
            -e "s|^LogFile=.*|LogFile=$WORKDIR/xrdp-$name.log|" -e "s|^EnableSyslog=.*|EnableSyslog=false|" \
            -e "s|^fork=.*|fork=false|" -e "s|^crypt_level=.*|crypt_level=high|" /etc/xrdp/xrdp.ini >"$WORKDIR/xrdp-$name.ini"
        bg_server "$S" "$WORKDIR/xrdp-$name.out" xrdp --nodaemon --config "$WORKDIR/xrdp-$name.ini"
        wait_until "xrdp :3389 ($name)" 100 tcp_listening "$S" 3389
        capture "$name"
        # shellcheck disable=SC2086
        nsx "$C" env DISPLAY=:73 timeout 5 xfreerdp /v:"$SIP" /u:"$USER_NAME" /p:"$USER_PW" \
            /cert:ignore $sec >"$WORKDIR/xfreerdp-$name.log" 2>&1 || true
        stop_capture
        stop_server
        rm -f /run/xrdp/xrdp.pid
    done
    kill "$xvfb" 2>/dev/null || true
    wait "$xvfb" 2>/dev/null || true
}

ALL=(http snmp tftp ftp telnet rcmd vnc rdp)
[ $# -gt 0 ] || set -- "${ALL[@]}"
setup
trap user_cleanup EXIT
for s in "$@"; do
    echo "scenario $s"
    "scenario_$s"
done
ls -l "$OUT"
