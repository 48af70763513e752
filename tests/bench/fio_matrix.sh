#!/usr/bin/env bash
# Runs fio's sequential-write matrix that docs/benchmarks.md compares with
# io_bench: rw=write, ioengine=io_uring, iodepth=1, block sizes 16k/64k/1m,
# (i) O_DIRECT, (ii) buffered, (iii) fdatasync after every write (direct and
# buffered). Sizes match io_bench's bytes per case. Prints one line per case.
#   tests/bench/fio_matrix.sh [DIR]     (default /tmp/runnel-bench; same fs as io_bench)
set -euo pipefail
dir=${1:-/tmp/runnel-bench}
mkdir -p "$dir"
file="$dir/fio-$$.dat"
trap 'rm -f "$file"' EXIT
printf '%-28s %10s %12s %14s\n' case MB/s cpu_s_per_GB sync_lat_us
run() {  # name size extra-args...
  local name=$1 size=$2; shift 2
  rm -f "$file"
  fio --name=seqwrite --filename="$file" --rw=write --ioengine=io_uring --iodepth=1 \
      --size="$size" "$@" --output-format=json 2>/dev/null |
    python3 -c '
import json, sys
j = json.load(sys.stdin)["jobs"][0]
w = j["write"]
gb = w["io_bytes"] / 1e9
cpu_s = (j["usr_cpu"] + j["sys_cpu"]) / 100.0 * j["job_runtime"] / 1000.0
sync = j.get("sync", {}).get("lat_ns", {}).get("mean", 0) / 1e3
print("%-28s %10.1f %12.3f %14.0f" % (sys.argv[1], w["bw_bytes"] / 1e6, cpu_s / gb, sync))
' "$name"
}
for bs in 16k 64k 1m; do
  case $bs in 16k) sync_size=16m ;; 64k) sync_size=32m ;; 1m) sync_size=128m ;; esac
  run "direct/$bs" 256m --bs=$bs --direct=1
  run "buffered/$bs" 256m --bs=$bs --direct=0
  run "direct+fdatasync/$bs" $sync_size --bs=$bs --direct=1 --fdatasync=1
  run "buffered+fdatasync/$bs" $sync_size --bs=$bs --direct=0 --fdatasync=1
done
