#!/usr/bin/env bash
# Profile-guided release build of medtap (what bench/run.sh times, unless PGO=0).
#
#   bash bench/pgo.sh        # prints the path of the binary it built on its last line
#
# 1. builds medtap instrumented (rustc -Cprofile-generate) under $TARGET/pgo-gen;
# 2. replays the repository's test captures (pcaps/: real DICOM, HL7, TLS, HTTP, legacy and
#    hostile traffic of every protocol medtap decodes; not the benchmark's input) with 1 and 2
#    workers, which writes the profile of which branches and calls the code takes;
# 3. merges it with llvm-profdata and builds medtap again with it (-Cprofile-use) under
#    $TARGET/pgo. The compiler then lays out the hot code together and inlines along the hot
#    calls: on bench.pcap about 10% less CPU on the worker thread.
#
# llvm-profdata must be of rustc's LLVM major version: `rustup component add llvm-tools`, or
# Debian's `llvm-N` package (N = the "LLVM version" of `rustc -vV`). Without it this builds the
# plain release binary ($TARGET/release/medtap) and says so. The profile is made afresh at every
# run, from the code being built: it never goes stale.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
T=${CARGO_TARGET_DIR:-target}
mkdir -p "$T"
T=$(cd "$T" && pwd)

major=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
profdata=
for c in "$(rustc --print sysroot)"/lib/rustlib/*/bin/llvm-profdata "llvm-profdata-$major" \
  "/usr/lib/llvm-$major/bin/llvm-profdata" llvm-profdata; do
  if command -v "$c" >/dev/null 2>&1 && "$c" --version 2>/dev/null | grep -q "LLVM version $major\."; then
    profdata=$c
    break
  fi
done
if [ -z "$profdata" ]; then
  echo "pgo: no llvm-profdata of LLVM $major (rustup component add llvm-tools, or apt-get install llvm-$major): plain release build" >&2
  cargo build --release >&2
  echo "$T/release/medtap"
  exit 0
fi

raw=$T/pgo-gen/profile
rm -rf "$raw"
echo "pgo: instrumented build" >&2
RUSTFLAGS="-Cprofile-generate=$raw" CARGO_TARGET_DIR="$T/pgo-gen" cargo build --release >&2
echo "pgo: training run on pcaps/" >&2
for w in 1 2; do
  "$T/pgo-gen/release/medtap" replay --workers $w --no-progress pcaps --events /dev/null >/dev/null 2>&1
done
"$profdata" merge -o "$T/pgo-gen/medtap.profdata" "$raw"
echo "pgo: optimized build" >&2
RUSTFLAGS="-Cprofile-use=$T/pgo-gen/medtap.profdata" CARGO_TARGET_DIR="$T/pgo" cargo build --release >&2
echo "$T/pgo/release/medtap"
