#!/bin/bash
# Alternating A/B runs of `runnel bench produce` (1 KiB, acks=all by default),
# each on a fresh broker and data directory, printing per run: MB/s, the
# client's CPU (perf stat task-clock), the broker's CPU (/proc/PID/stat), and
# the broker's fsync count, mean fsync latency and bytes per fsync. Host
# throughput swings by tens of percent within minutes; judge by CPU per GB
# and by many alternations (docs/benchmarks.md, session 6).
#
#   tests/bench/scripts/produce_ab.sh PAIRS BUILD_A BUILD_B [bench flags...]
#
# BUILD_A and BUILD_B are build directories (build/release of two
# checkouts); BROKER_FLAGS_A / BROKER_FLAGS_B add broker flags to one side.
# Data goes to WORK_DIR (default /tmp/runnel-ab), removed at the end only.
set -u
PAIRS=$1
A=$2
B=$3
shift 3
WORK=${WORK_DIR:-/tmp/runnel-ab}
PORT=17070
HTTP=17071
mkdir -p "$WORK"
metric() {
  curl -s http://127.0.0.1:$HTTP/metrics | grep -v '^#' |
    grep "$1" | grep -v bucket | awk '{s += $2} END {print s + 0}'
}
one() {  # LABEL BUILD BROKER_FLAGS [bench flags...]
  local label=$1 build=$2 flags=$3
  shift 3
  local data="$WORK/$(date +%s%N)"
  mkdir -p "$data"
  # shellcheck disable=SC2086
  "$build/broker/runnel-broker" --data-dir "$data" --listen 127.0.0.1:$PORT \
    --http-listen 127.0.0.1:$HTTP $flags > "$data.log" 2>&1 &
  local broker=$!
  for _ in $(seq 100); do
    curl -sf http://127.0.0.1:$HTTP/healthz > /dev/null && break
    sleep 0.1
  done
  local rn="$build/tools/runnel --bootstrap 127.0.0.1:$PORT"
  $rn topic create t --partitions 1 > /dev/null
  local b0 f0 n0 w0 b1 f1 n1 w1 out
  b0=$(awk '{print $14 + $15}' /proc/$broker/stat)
  f0=$(metric fsync_duration_seconds_sum)
  n0=$(metric fsync_duration_seconds_count)
  w0=$(metric bytes_written_total)
  out=$(perf stat -e task-clock -x, -o "$data.perf" $rn bench produce --topic t \
    --records 2000000 --record-size 1024 --acks all --json "$@" 2> /dev/null |
    grep -o '"mb_per_sec":[0-9.]*' | cut -d: -f2)
  b1=$(awk '{print $14 + $15}' /proc/$broker/stat)
  f1=$(metric fsync_duration_seconds_sum)
  n1=$(metric fsync_duration_seconds_count)
  w1=$(metric bytes_written_total)
  echo "$label MB/s=$out client_cpu_ms=$(grep task-clock "$data.perf" | cut -d, -f1)" \
    "broker_cpu_ms=$(( (b1 - b0) * 10 ))" \
    "$(awk -v n="$n0" -v N="$n1" -v f="$f0" -v F="$f1" -v w="$w0" -v W="$w1" \
      'BEGIN {c = N - n; if (c > 0) printf "fsyncs=%d mean_ms=%.3f MB_each=%.2f", c, 1000 * (F - f) / c, (W - w) / c / 1e6}')"
  kill -TERM $broker
  wait $broker
}
for _ in $(seq "$PAIRS"); do
  one A "$A" "${BROKER_FLAGS_A:-}" "$@"
  one B "$B" "${BROKER_FLAGS_B:-}" "$@"
done
rm -rf "$WORK"
