#!/bin/bash
# The issue #3 figure set (docs/benchmarks.md, "Issue #3 figures"): the
# reference tools (fio 1 MiB and 1200 KiB O_DIRECT + fdatasync, the latter also
# from a huge-page buffer, iperf3 loopback, Redis 7
# XADD with appendfsync always), then three runs of every runnel benchmark on
# a fresh broker and data directory each, then the reference tools again.
# Each bench line also carries the host's busy and steal CPU ticks during it
# and the broker's fsyncs during it: all, those over 5 ms (slow_fsyncs) and
# those over 1 ms.
#
#   tests/bench/scripts/issue3_figures.sh OUT [BUILD_DIR] [WORK_DIR]
#
# BUILD_DIR defaults to build/release, WORK_DIR to /tmp/runnel-figures (it
# needs about 30 GB). Nothing is deleted before or during the set (deleting GBs
# on a disk with online discard stalls fsyncs for seconds); WORK_DIR is
# removed at the very end. Needs fio, iperf3, redis-server and
# redis-benchmark (deploy/install-deps.sh installs them) and curl.
set -u
OUT=$1
BUILD=${2:-build/release}
WORK=${3:-/tmp/runnel-figures}
BR=$BUILD/broker/runnel-broker
RN=$BUILD/tools/runnel
PORT=17990
HTTP=17991
mkdir -p "$WORK"
: > "$OUT"
pick() {
  tr '\n' ' ' | grep -o '"latency_records":[0-9]*\|"records_per_sec":[0-9.]*\|"mb_per_sec":[0-9.]*\|"p50_ms":[0-9.]*\|"p99_ms":[0-9.]*\|"p999_ms":[0-9.]*\|"max_ms":[0-9.]*\|"ack_p99_ms":[0-9.]*' | tr '\n' ' '
}
# Host CPU ticks (all CPUs): "busy steal" from /proc/stat.
ticks() {
  head -1 /proc/stat | awk '{print $2 + $3 + $4 + $7 + $8, $9}'
}
# The broker's fsyncs so far: count, how many took over 5 ms, over 1 ms.
fsyncs() {
  curl -s http://127.0.0.1:$HTTP/metrics | awk '
    /^runnel_fsync_duration_seconds_bucket/ && /le="0.005"/ {fast += $2}
    /^runnel_fsync_duration_seconds_bucket/ && /le="0.001"/ {ms += $2}
    /^runnel_fsync_duration_seconds_count/ {all += $2}
    END {print all + 0, all - fast, all - ms}'
}
# Runs one bench (the rest of the line) and appends LABEL, its summary, the
# busy and steal ticks (1/100 s, both CPUs) and, for the benches that write,
# the fsyncs during it and how many took over 5 ms and over 1 ms.
measure() {
  local label=$1
  shift
  local t0 f0 out t1 f1
  t0=$(ticks)
  f0=$(fsyncs)
  out=$("$@" --json 2> /dev/null | pick)
  t1=$(ticks)
  f1=$(fsyncs)
  echo "$label $out $(echo "$t0 $t1 $f0 $f1" | awk '{printf "busy=%d steal=%d fsyncs=%d slow_fsyncs=%d fsyncs_1ms=%d", $3 - $1, $4 - $2, $8 - $5, $9 - $6, $10 - $7}')" >> "$OUT"
}
# fio's sequential O_DIRECT write with fdatasync after every block of $1;
# further arguments go to fio.
fio_seqwrite() {
  local bs=$1
  shift
  fio --name=seqwrite --filename="$WORK/ref.$(date +%s%N).fio" --rw=write \
    --ioengine=io_uring --iodepth=1 --size=256m --bs="$bs" --direct=1 --fdatasync=1 "$@" 2>&1 |
    grep -o 'WRITE: bw=[^,]*'
}
# The same with fio's buffer in 2 MiB huge pages (hugetlbfs), physically
# contiguous as the broker's append buffers are since session 9, so each write
# is one disk request instead of two (docs/benchmarks.md, session 9). Needs
# root; prints "unavailable" when no huge page can be reserved.
fio_seqwrite_huge() {
  local before dir=$WORK/hugetlbfs
  before=$(cat /proc/sys/vm/nr_hugepages)
  mkdir -p "$dir"
  echo $((before + 2)) > /proc/sys/vm/nr_hugepages 2> /dev/null
  if [ "$(cat /proc/sys/vm/nr_hugepages)" -lt $((before + 2)) ] ||
    ! mount -t hugetlbfs none "$dir" 2> /dev/null; then
    echo "unavailable"
  else
    fio_seqwrite "$1" --iomem=mmaphuge:"$dir/fio.buf"
    umount "$dir"
  fi
  echo "$before" > /proc/sys/vm/nr_hugepages 2> /dev/null
}
reference() {
  echo "fio: $(fio_seqwrite 1m)" >> "$OUT"
  # The broker's own fsync size at 1 KiB acks=all: about 1.2 MB per fsync
  # (the p1k_all lines' bytes / fsyncs).
  echo "fio_1200k: $(fio_seqwrite 1200k)" >> "$OUT"
  echo "fio_1200k_huge: $(fio_seqwrite_huge 1200k)" >> "$OUT"
  (iperf3 -s -1 -p 15201 > /dev/null 2>&1 &)
  sleep 0.5
  echo "iperf3: $(iperf3 -c 127.0.0.1 -p 15201 -t 5 2>&1 | grep receiver |
    grep -o '[0-9.]* Gbits/sec')" >> "$OUT"
  local dir="$WORK/redis.$(date +%s%N)"
  mkdir -p "$dir"
  redis-server --port 16390 --dir "$dir" --appendonly yes --appendfsync always \
    --save "" --daemonize yes > /dev/null
  sleep 0.5
  echo "redis: $(redis-benchmark -p 16390 -c 16 -P 64 -n 2000000 -q XADD s '*' f \
    "$(head -c 100 /dev/zero | tr '\0' x)" 2>&1 | tr '\r' '\n' |
    grep 'requests per second' | tail -1 | sed 's/.*: //')" >> "$OUT"
  redis-cli -p 16390 shutdown nosave > /dev/null 2>&1
}
reference
for run in 1 2 3; do
  data="$WORK/run$run"
  mkdir -p "$data"
  "$BR" --data-dir "$data" --listen 127.0.0.1:$PORT --http-listen 127.0.0.1:$HTTP \
    > "$WORK/broker$run.log" 2>&1 &
  broker=$!
  for _ in $(seq 100); do
    curl -sf http://127.0.0.1:$HTTP/healthz > /dev/null && break
    sleep 0.1
  done
  R="$RN --bootstrap 127.0.0.1:$PORT"
  for t in b100 ball b1k b1kall b1k3 b1kall3 e2e e2enw; do
    $R topic create $t --partitions 1 > /dev/null
  done
  measure "run $run p100_leader" $R bench produce --topic b100 --records 3000000 --record-size 100 --acks leader
  measure "run $run p100_all" $R bench produce --topic ball --records 3000000 --record-size 100 --acks all
  measure "run $run p1k_leader" $R bench produce --topic b1k --records 1000000 --record-size 1024 --acks leader
  measure "run $run p1k_all" $R bench produce --topic b1kall --records 1000000 --record-size 1024 --acks all
  # The same for 3 GB: the process's start (connection, first touches of
  # its 32 MiB buffer) weighs a third as much (docs/benchmarks.md, session 8).
  measure "run $run p1k_leader_3m" $R bench produce --topic b1k3 --records 3000000 --record-size 1024 --acks leader
  measure "run $run p1k_all_3m" $R bench produce --topic b1kall3 --records 3000000 --record-size 1024 --acks all
  measure "run $run c1k_cold" $R bench consume --topic b1k --records 1000000
  measure "run $run c1k_warm" $R bench consume --topic b1k --records 1000000
  measure "run $run c1k_warm" $R bench consume --topic b1k --records 1000000
  measure "run $run c100" $R bench consume --topic b100 --records 3000000
  # 50,000 records measured after 10,000 of warm-up (docs/benchmarks.md,
  # session 10), then, as in earlier sessions, 50,000 without a warm-up on a
  # partition of its own that has never been written.
  measure "run $run e2e" $R bench e2e --topic e2e --rate 10000 --records 60000 --warmup-records 10000
  measure "run $run e2e_nowarmup" $R bench e2e --topic e2enw --rate 10000 --records 50000
  # The same rate arriving one record at a time instead of in Kafka's 2 ms
  # bursts (docs/cli.md, --burst-ms).
  measure "run $run e2e_smooth" $R bench e2e --topic e2e --rate 10000 --records 60000 --warmup-records 10000 --burst-ms 0
  kill -TERM $broker
  wait $broker
done
reference
echo done >> "$OUT"
rm -rf "$WORK"
