#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR for SECONDS each on a fresh copy of
# its seed corpus; exits non-zero if any of them finds a crash, a leak, a
# timeout or an out-of-memory. Crash inputs are kept in BUILD_DIR/fuzz-artifacts.
#   bash tests/fuzz/run-fuzzers.sh build/fuzz 60
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 BUILD_DIR SECONDS" >&2
  exit 2
fi
build_dir=$(cd "$1" && pwd)
seconds=$2
src_dir=$(cd "$(dirname "$0")" && pwd)
fuzz_dir="$build_dir/tests/fuzz"
artifacts="$build_dir/fuzz-artifacts"
mkdir -p "$artifacts"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

shopt -s nullglob
fuzzers=("$fuzz_dir"/*_fuzzer)
if [[ ${#fuzzers[@]} -eq 0 ]]; then
  echo "run-fuzzers: no fuzzers in $fuzz_dir (build the 'fuzzers' target)" >&2
  exit 1
fi

failed=()
for fuzzer in "${fuzzers[@]}"; do
  name=$(basename "$fuzzer" _fuzzer)
  corpus="$work/$name"
  mkdir -p "$corpus"
  # Committed seeds, if any, plus the generated ones.
  if [[ -d "$src_dir/corpus/$name" ]]; then
    cp -r "$src_dir/corpus/$name/." "$corpus/"
  fi
  "$fuzz_dir/fuzz_seed_corpus" "$name" "$corpus"
  echo "run-fuzzers: $name for ${seconds}s on $(ls "$corpus" | wc -l) seeds"
  if ! "$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
      -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$artifacts/$name-" "$corpus" \
      >"$work/$name.log" 2>&1; then
    failed+=("$name")
    tail -n 60 "$work/$name.log" >&2
  else
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+.*DONE)' \
      "$work/$name.log" || true
  fi
done

if [[ ${#failed[@]} -ne 0 ]]; then
  echo "run-fuzzers: FAILED: ${failed[*]} (inputs in $artifacts)" >&2
  exit 1
fi
echo "run-fuzzers: all ${#fuzzers[@]} fuzzers ran ${seconds}s without a finding"
