#!/bin/bash
# The broker's I/O timeline under one `runnel bench produce` (docs/benchmarks.md,
# session 9): starts a fresh broker, warms it, records io_uring and block
# tracepoints system-wide (perf) through the bench, and summarizes them with
# io_timeline.py. Run as root (system-wide tracepoints).
#
#   tests/bench/scripts/io_timeline.sh [BUILD_DIR] [bench flags...]
#
# BUILD_DIR defaults to build/release; the bench defaults to 1 M × 1 KiB
# acks=all. For fio's timeline on the same disk, record the same events
# around fio and feed `perf script` to io_timeline.py.
set -u
BUILD=${1:-build/release}
shift || true
BENCH=("$@")
[ ${#BENCH[@]} -eq 0 ] && BENCH=(--records 1000000 --record-size 1024 --acks all)
HERE=$(dirname "$0")
WORK=$(mktemp -d /tmp/runnel-io-timeline.XXXX)
PORT=17890
HTTP=17891
"$BUILD/broker/runnel-broker" --data-dir "$WORK/data" --listen 127.0.0.1:$PORT \
  --http-listen 127.0.0.1:$HTTP > "$WORK/broker.log" 2>&1 &
broker=$!
for _ in $(seq 100); do
  curl -sf http://127.0.0.1:$HTTP/healthz > /dev/null && break
  sleep 0.1
done
R="$BUILD/tools/runnel --bootstrap 127.0.0.1:$PORT"
$R topic create warm --partitions 1 > /dev/null
$R topic create t --partitions 1 > /dev/null
$R bench produce --topic warm --records 300000 --record-size 1024 --acks all > /dev/null 2>&1
perf record -q -a -o "$WORK/perf.data" -e io_uring:io_uring_submit_req \
  -e io_uring:io_uring_complete -e block:block_rq_issue -- \
  $R bench produce --topic t "${BENCH[@]}" --json 2> /dev/null |
  grep -o '"mb_per_sec":[0-9.]*'
perf script -F comm,tid,cpu,time,event,trace -i "$WORK/perf.data" 2> /dev/null |
  python3 "$HERE/io_timeline.py"
kill -TERM $broker
wait $broker
rm -rf "$WORK"
