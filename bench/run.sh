#!/usr/bin/env bash
# medtap replay benchmark (issue 2; the C-STORE file is issue 3's).
#
#   bash bench/run.sh                 # both inputs, 5 rounds each
#   ROUNDS=3 bash bench/run.sh bench/out/cstore.pcap
#   EVENTS=/tmp/ev.json bash bench/run.sh   # keep the events instead of /dev/null
#
# Builds medtap in release mode (profile-guided by bench/pgo.sh when an llvm-profdata of rustc's
# LLVM is there; PGO=0: the plain `cargo build --release`), generates the inputs with bench/gen.py
# if they are missing, then for each input runs ROUNDS rounds of these commands (in an order
# rotated every round):
#   floor   tcpdump -n -r FILE 'ether proto 0x1234'   (libpcap reads every packet, prints nothing)
#   w1      medtap replay --workers 1 FILE --events /dev/null
#   wN      medtap replay --workers $(nproc) FILE --events /dev/null
#   ndpi    ndpiReader -i FILE -q                     (the peer to beat; Debian libndpi-bin)
# and prints the median wall time of each, the median of the per-round ratios to that round's floor,
# peak RSS (/usr/bin/time -v "Maximum resident set size") and the tail of medtap's stderr (its
# summary, with the flow count). Results are printed only, never written into the repository.
# Targets (issue 2): w1 / floor <= 2.0; medtap peak RSS <= 64 MiB + 1 KiB per flow live at the
# peak (medtap's summary reports the peak: "N flows (peak P live)").
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROUNDS=${ROUNDS:-5}
EVENTS=${EVENTS:-/dev/null}   # where medtap writes its events (the benchmark discards them)
NPROC=$(nproc)
BIN=${CARGO_TARGET_DIR:-target}/release/medtap
FILES=("$@")
[ ${#FILES[@]} -gt 0 ] || FILES=(bench/out/bench.pcap bench/out/cstore.pcap)

die() { echo "bench/run.sh: $*" >&2; exit 1; }
command -v tcpdump >/dev/null || die "tcpdump missing (apt-get install tcpdump)"
[ -x /usr/bin/time ] || die "/usr/bin/time missing (apt-get install time)"
HAVE_NDPI=1
command -v ndpiReader >/dev/null || { HAVE_NDPI=0; echo "note: ndpiReader missing (apt-get install libndpi-bin): peer column skipped"; }

if [ "${PGO:-1}" = 1 ]; then
  echo "== profile-guided release build (bench/pgo.sh; PGO=0 for the plain one)"
  log=$(mktemp /tmp/medtap-pgo.XXXXXX)
  BIN=$(bash bench/pgo.sh 2>"$log" | tail -1) || { tail -20 "$log" >&2; die "bench/pgo.sh failed"; }
  grep '^pgo:' "$log" | sed 's/^/   /'
  rm -f "$log"
else
  echo "== cargo build --release"
  cargo build --release 2>&1 | tail -3
fi
[ -x "$BIN" ] || die "$BIN was not built"
case $BIN in */pgo/release/medtap) BUILD="release, profile-guided (bench/pgo.sh)" ;; *) BUILD="release" ;; esac
echo "   binary: $BIN ($BUILD)"

for f in "${FILES[@]}"; do
  if [ ! -f "$f" ]; then
    echo "== generating inputs (python3 bench/gen.py)"
    python3 bench/gen.py
    break
  fi
done

TMP=$(mktemp -d /tmp/medtap-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# run NAME CMD... : time one command; wall seconds to stdout, stderr and time -v report kept in $TMP
run() {
  local name=$1; shift
  local t0 t1
  t0=$(date +%s%N)
  if ! /usr/bin/time -v -o "$TMP/$name.time" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"; then
    echo >&2
    echo "FAILED ($name): $*" >&2
    echo "--- stderr (last 20 lines):" >&2; tail -20 "$TMP/$name.err" >&2
    grep -E "Exit status|signal" "$TMP/$name.time" >&2 || true
    exit 1
  fi
  t1=$(date +%s%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 }'
}
rss_kib() { awk -F': ' '/Maximum resident set size/ { print $2 }' "$TMP/$1.time"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "n/a"; exit } if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", a / b }'; }

for f in "${FILES[@]}"; do
  [ -f "$f" ] || die "$f missing after generation"
  pkts=$(capinfos -c -M "$f" 2>/dev/null | awk -F': +' '/Number of packets/ { print $2 }' || true)
  echo
  echo "== $f  ($(du -h "$f" | cut -f1), ${pkts:-?} packets; $ROUNDS rounds; $NPROC cores; $BUILD build)"
  cat "$f" >/dev/null  # page cache warm for everyone
  echo -n "   smoke run of medtap ... "
  run smoke "$BIN" replay --workers 1 "$f" --events "$EVENTS" >/dev/null
  echo ok
  : >"$TMP/floor.s"; : >"$TMP/w1.s"; : >"$TMP/wn.s"; : >"$TMP/ndpi.s"
  : >"$TMP/w1.r"; : >"$TMP/wn.r"; : >"$TMP/ndpi.r"
  rss_w1=0; rss_wn=0; rss_ndpi=0; rss_floor=0
  # The commands of a round run in an order rotated every round (floor first, then w1 first, ...):
  # on a shared machine, load that comes and goes then falls on each of them alike.
  names=(floor w1 wn); [ "$HAVE_NDPI" = 1 ] && names+=(ndpi)
  for r in $(seq 1 "$ROUNDS"); do
    declare -A t=()
    for k in "${!names[@]}"; do
      n=${names[$(( (k + r - 1) % ${#names[@]} ))]}
      case $n in
        floor) t[$n]=$(run floor tcpdump -n -r "$f" 'ether proto 0x1234') ;;
        w1) t[$n]=$(run w1 "$BIN" replay --workers 1 "$f" --events "$EVENTS") ;;
        wn) t[$n]=$(run wn "$BIN" replay --workers "$NPROC" "$f" --events "$EVENTS") ;;
        ndpi) t[$n]=$(run ndpi ndpiReader -i "$f" -q) ;;
      esac
    done
    tf=${t[floor]}; t1=${t[w1]}; tn=${t[wn]}
    echo "$tf" >>"$TMP/floor.s"; echo "$t1" >>"$TMP/w1.s"; echo "$tn" >>"$TMP/wn.s"
    ratio "$t1" "$tf" >>"$TMP/w1.r"; ratio "$tn" "$tf" >>"$TMP/wn.r"
    rss_floor=$(( $(rss_kib floor) > rss_floor ? $(rss_kib floor) : rss_floor ))
    rss_w1=$(( $(rss_kib w1) > rss_w1 ? $(rss_kib w1) : rss_w1 ))
    rss_wn=$(( $(rss_kib wn) > rss_wn ? $(rss_kib wn) : rss_wn ))
    line="   round $r: floor ${tf}s  medtap w1 ${t1}s  medtap w$NPROC ${tn}s"
    if [ "$HAVE_NDPI" = 1 ]; then
      td=${t[ndpi]}
      echo "$td" >>"$TMP/ndpi.s"; ratio "$td" "$tf" >>"$TMP/ndpi.r"
      rss_ndpi=$(( $(rss_kib ndpi) > rss_ndpi ? $(rss_kib ndpi) : rss_ndpi ))
      line="$line  ndpiReader ${td}s"
    fi
    echo "$line"
    unset t
  done
  printf '   %-34s %10s %12s %14s\n' "" "median s" "ratio/floor" "peak RSS MiB"
  printf '   %-34s %10s %12s %14.1f\n' "floor (tcpdump)" "$(median <"$TMP/floor.s")" "1.000" "$(awk -v k="$rss_floor" 'BEGIN{print k/1024}')"
  printf '   %-34s %10s %12s %14.1f\n' "medtap replay --workers 1" "$(median <"$TMP/w1.s")" "$(median <"$TMP/w1.r")" "$(awk -v k="$rss_w1" 'BEGIN{print k/1024}')"
  printf '   %-34s %10s %12s %14.1f\n' "medtap replay --workers $NPROC" "$(median <"$TMP/wn.s")" "$(median <"$TMP/wn.r")" "$(awk -v k="$rss_wn" 'BEGIN{print k/1024}')"
  if [ "$HAVE_NDPI" = 1 ]; then
    printf '   %-34s %10s %12s %14.1f\n' "ndpiReader -q (peer)" "$(median <"$TMP/ndpi.s")" "$(median <"$TMP/ndpi.r")" "$(awk -v k="$rss_ndpi" 'BEGIN{print k/1024}')"
  fi
  if [ -n "${pkts:-}" ]; then
    echo "   medtap w1 throughput: $(awk -v p="$pkts" -v s="$(median <"$TMP/w1.s")" 'BEGIN { printf "%.0f", p / s }') packets/s"
  fi
  echo "   target: w1/floor <= 2.0 -> $(awk -v r="$(median <"$TMP/w1.r")" 'BEGIN { print (r <= 2.0 ? "met" : "NOT met") }')"
  # memory budget: 64 MiB + 1 KiB per flow live at the peak (the summary's "N flows (peak P live)";
  # exact with one worker)
  peak=$(grep -oE 'peak [0-9]+ live' "$TMP/w1.err" | head -1 | tr -dc '0-9' || true)
  if [ -n "$peak" ]; then
    budget=$(( 64 * 1024 + peak ))
    echo "   memory: peak RSS ${rss_w1} KiB (w1) vs budget 64 MiB + 1 KiB x $peak peak live flows = $budget KiB -> $([ "$rss_w1" -le "$budget" ] && echo met || echo "NOT met")"
  else
    echo "   memory: no peak live flow count in medtap's stderr; budget not computed"
  fi
  echo "   --- tail of medtap's stderr (last w1 run):"
  tail -8 "$TMP/w1.err" | sed 's/^/   | /'
done
