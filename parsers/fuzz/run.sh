#!/usr/bin/env bash
# Run every fuzz target (or the ones named) for SECONDS each and summarise.
#
#   parsers/fuzz/run.sh 900              # all targets, 15 minutes each
#   parsers/fuzz/run.sh 120 tls dhcp     # two targets, 2 minutes each
#   parsers/fuzz/run.sh 600 pipeline     # the whole-pipeline target (seeds: fuzz/seeds_pipeline.py)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). This machine's toolchain is stable, so the
# nightly-only sanitizer flags are enabled with RUSTC_BOOTSTRAP=1. Seeds live in
# parsers/fuzz/corpus/<target>/ (cut from the real captures in pcaps/); new corpus entries found
# during a run go to a scratch folder, not into the repository. A crash leaves its input in
# parsers/fuzz/artifacts/<target>/: turn it into a unit test (and, when it came from a capture,
# a capture in pcaps/regress/ with a test named after it), then fix it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECS=${1:-60}
shift || true
export RUSTC_BOOTSTRAP=1
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  mapfile -t TARGETS < <(cargo fuzz list)
fi
cargo fuzz build -O >/dev/null
SCRATCH=$(mktemp -d /tmp/medtap-fuzz.XXXXXX)
printf '%-22s %8s %14s %8s %s\n' target seconds executions crashes result
status=0
for t in "${TARGETS[@]}"; do
  mkdir -p "$SCRATCH/$t" "fuzz/corpus/$t"
  log="$SCRATCH/$t.log"
  set +e
  cargo fuzz run -O "$t" "$SCRATCH/$t" "fuzz/corpus/$t" -- -max_total_time="$SECS" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
  crashes=$(ls "fuzz/artifacts/$t" 2>/dev/null | wc -l)
  if [ $rc -eq 0 ]; then result=ok; else result="FAILED (see $log)"; status=1; fi
  printf '%-22s %8s %14s %8s %s\n' "$t" "$SECS" "${execs:-?}" "$crashes" "$result"
done
exit $status
