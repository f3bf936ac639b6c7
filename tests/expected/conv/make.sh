#!/usr/bin/env bash
# Regenerates the tshark conversation oracle: for every capture under pcaps/ (found by its pcap /
# pcapng magic number; pcaps/damaged/ is skipped) writes
#   tests/expected/conv/<path relative to pcaps/, "/" replaced by "__">.conv.json
# a JSON list, one object per TCP/UDP conversation in first-seen order:
#   {"proto": "tcp"|"udp", "a": "ip:port", "b": "ip:port", "packets_a_to_b": N, "bytes_a_to_b": N,
#    "packets_b_to_a": N, "bytes_b_to_a": N}
# (IPv6 addresses as "[addr]:port"; "a" is the source of the conversation's first packet.)
# See README.md in this folder for what the numbers mean.
#
# The oracle is this exact tshark command (TShark 4.0.x):
#   tshark -n -q -o ip.defragment:FALSE -o ipv6.defragment:FALSE --disable-protocol snmp \
#          -r FILE -z conv,tcp -z conv,udp -X lua_script:tests/expected/conv/conv_exact.lua
# (why those options: README.md)
# tshark's table prints bytes >= 10000 rounded ("224 kB"), so the exact numbers come from
# conv_exact.lua, a Lua listener on the same "tcp"/"udp" taps the conversation table is built from,
# grouped the way the table groups them (stream index + endpoints). Every file is cross-checked:
# the conversations, their endpoints and frame counts must equal tshark's table exactly, and the
# bytes must equal it (or its rounded kB/MB value); any difference aborts.
#
# usage: tests/expected/conv/make.sh            regenerate all (and delete outputs of vanished captures)
#        tests/expected/conv/make.sh FILE...    regenerate for these captures only
#        tests/expected/conv/make.sh --check    regenerate all into a temp dir and diff; exit 1 on change
# Needs: tshark (with Lua, as Debian's is), python3.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
LUA="$HERE/conv_exact.lua"
command -v tshark >/dev/null || { echo "tshark missing (apt-get install tshark)" >&2; exit 1; }

outdir=$HERE
check=
files=()
if [ "${1:-}" = "--check" ]; then
    check=1
    outdir=$(mktemp -d)
    trap 'rm -rf "$outdir"' EXIT
    shift
fi
if [ $# -gt 0 ]; then
    for f in "$@"; do files+=("$(cd "$(dirname "$f")" && pwd)/$(basename "$f")"); done
else
    while IFS= read -r f; do files+=("$f"); done < <(
        find "$ROOT/pcaps" -type f -not -path "$ROOT/pcaps/damaged/*" | sort |
            while IFS= read -r f; do
                magic=$(head -c 4 "$f" | od -An -tx1 | tr -d ' \n')
                case $magic in a1b2c3d4 | d4c3b2a1 | a1b23c4d | 4d3cb2a1 | 0a0d0d0a) echo "$f" ;; esac
            done)
fi

for f in "${files[@]}"; do
    rel=${f#"$ROOT/pcaps/"}
    out="$outdir/${rel//\//__}.conv.json"
    # tshark exits non-zero on a damaged file; the oracle is only made for readable captures
    tshark -n -q -o ip.defragment:FALSE -o ipv6.defragment:FALSE --disable-protocol snmp \
        -r "$f" -z conv,tcp -z conv,udp -X lua_script:"$LUA" 2>/dev/null |
        python3 "$HERE/conv_json.py" "$rel" >"$out.tmp"
    mv "$out.tmp" "$out"
    [ -n "$check" ] || echo "$rel -> ${out#"$ROOT/"} ($(grep -c '"proto"' "$out" || true) conversations)"
done

if [ -n "$check" ]; then
    status=0
    for g in "$outdir"/*.conv.json; do
        cmp -s "$g" "$HERE/$(basename "$g")" || { echo "DIFFERS: $(basename "$g")"; status=1; }
    done
    for g in "$HERE"/*.conv.json; do
        [ -e "$outdir/$(basename "$g")" ] || { echo "NO CAPTURE FOR: $(basename "$g")"; status=1; }
    done
    exit $status
elif [ $# -eq 0 ]; then
    for g in "$HERE"/*.conv.json; do
        [ -e "$g" ] || continue
        keep=
        for f in "${files[@]}"; do
            rel=${f#"$ROOT/pcaps/"}
            [ "$(basename "$g")" = "${rel//\//__}.conv.json" ] && { keep=1; break; }
        done
        [ -n "$keep" ] || { echo "removing stale $(basename "$g")"; rm -f "$g"; }
    done
fi
