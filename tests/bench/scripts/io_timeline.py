#!/usr/bin/env python3
"""Summarizes the I/O timeline of one `perf script` dump (docs/benchmarks.md,
session 9): for every io_uring write and fsync, submit-to-complete time and
the gap from the previous completion to its submission; the block requests'
sizes; and the share of the run with any write or fsync in flight.

    perf script -F comm,tid,cpu,time,event,trace -i perf.data | io_timeline.py

The dump needs the tracepoints io_uring:io_uring_submit_req,
io_uring:io_uring_complete and block:block_rq_issue (io_timeline.sh records
them). Requests are matched by the kernel's request pointer, which io_uring
reuses only after the completion.
"""
import collections
import re
import statistics
import sys

LINE = re.compile(r'\s*(.+?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s*(.*)')
IO_OPS = ('WRITE', 'WRITE_FIXED', 'FSYNC')


def describe(values_s):
    if not values_s:
        return 'none'
    us = sorted(v * 1e6 for v in values_s)
    return 'n=%d mean=%.0f median=%.0f p90=%.0f us' % (
        len(us), statistics.mean(us), us[len(us) // 2], us[int(len(us) * .9)])


def union_seconds(intervals):
    total, start, end = 0.0, None, None
    for s, e in sorted(intervals):
        if start is None:
            start, end = s, e
        elif s <= end:
            end = max(end, e)
        else:
            total += end - start
            start, end = s, e
    return total + (end - start if start is not None else 0.0)


def main():
    submitted = {}
    intervals = []  # (submit, complete, op)
    gaps = collections.defaultdict(list)
    last_complete = None
    block_sizes = collections.Counter()
    for line in sys.stdin:
        m = LINE.match(line)
        if not m:
            continue
        _, _, _, t, event, rest = m.groups()
        t = float(t)
        if event == 'io_uring:io_uring_submit_req':
            req = re.search(r'req (\S+),', rest).group(1)
            op = re.search(r'opcode (\S+),', rest).group(1)
            if op in IO_OPS:
                submitted[req] = (t, op)
                if last_complete is not None:
                    gaps[op].append(t - last_complete)
        elif event == 'io_uring:io_uring_complete':
            req = re.search(r'req (\S+),', rest).group(1)
            if req in submitted:
                start, op = submitted.pop(req)
                intervals.append((start, t, op))
                last_complete = t
        elif event == 'block:block_rq_issue':
            fields = rest.split()
            if len(fields) > 2 and fields[1].startswith('W'):
                block_sizes[(fields[1], fields[2])] += 1
    if not intervals:
        sys.exit('no io_uring writes or fsyncs in the dump')
    for op in IO_OPS:
        durations = [e - s for s, e, o in intervals if o == op]
        if durations:
            print('%-11s submit->complete: %s' % (op, describe(durations)))
            print('%-11s previous completion->submit: %s' % (op, describe(gaps[op])))
    span = max(e for _, e, _ in intervals) - min(s for s, _, _ in intervals)
    print('span %.3f s; in flight: any %.1f %%, writes %.1f %%, fsyncs %.1f %%' % (
        span, 100 * union_seconds([(s, e) for s, e, _ in intervals]) / span,
        100 * union_seconds([(s, e) for s, e, o in intervals if o != 'FSYNC']) / span,
        100 * union_seconds([(s, e) for s, e, o in intervals if o == 'FSYNC']) / span))
    print('block write requests (flags, bytes): most frequent')
    for (flags, size), count in block_sizes.most_common(8):
        print('  %6d  %-4s %s' % (count, flags, size))


if __name__ == '__main__':
    main()
