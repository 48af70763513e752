#pragma once

// Per-topic storage settings of a partition log, named after Kafka's topic
// configs (segment.bytes, segment.ms, retention.ms, ...). Plain data; the
// defaults are Kafka's.

#include <cstdint>
#include <string>

#include "absl/status/status.h"

#include "log/append_writer.h"
#include "log/record_batch.h"

namespace runnel::log {

struct LogConfig {
  // segment.bytes: the active segment rolls before an append would make its
  // .log larger than this (a single batch larger than this still goes into
  // its own segment). Minimum 14 bytes (one empty batch header + 1).
  int64_t segment_bytes = int64_t{1} << 30;
  // segment.ms: the active segment rolls when it is older than this (age is
  // measured from its first batch, see docs/log-format.md).
  int64_t segment_ms = int64_t{7} * 24 * 3600 * 1000;
  // retention.ms: non-active segments whose largest timestamp is older than
  // this are deleted. -1 keeps them forever.
  int64_t retention_ms = int64_t{7} * 24 * 3600 * 1000;
  // retention.bytes: while the partition is larger than this, its oldest
  // non-active segments are deleted. -1 is unlimited.
  int64_t retention_bytes = -1;
  // index.interval.bytes: one .index/.timeindex entry per this many bytes of
  // log.
  int32_t index_interval_bytes = 4096;
  // segment.index.bytes: preallocated size of each .index and .timeindex;
  // a full index rolls the segment.
  int64_t segment_index_bytes = int64_t{10} << 20;
  // max.message.bytes: largest batch (12 + batchLength) accepted on append.
  int32_t max_message_bytes = 1048588;
  // message.timestamp.type: kLogAppendTime makes the leader stamp each batch
  // with the broker's clock on append.
  TimestampType message_timestamp_type = TimestampType::kCreateTime;
  // cleanup.policy: "delete" (retention deletes old segments), "compact"
  // (PartitionLog::Compact keeps the latest record per key; no deletion by
  // retention) or both ("compact,delete" / "delete,compact").
  std::string cleanup_policy = "delete";
  // delete.retention.ms: how long compaction keeps a tombstone (a record
  // with a null value) that is the latest of its key, counted from the
  // largest timestamp of its segment.
  int64_t delete_retention_ms = int64_t{24} * 3600 * 1000;
  // min.compaction.lag.ms: compaction leaves a segment alone while its
  // largest timestamp is younger than this.
  int64_t min_compaction_lag_ms = 0;
  // min.cleanable.dirty.ratio: a pass runs only once the dirty part (the
  // closed segments after the cleaner checkpoint) is at least this share of
  // the closed segments' bytes, so a big compacted log is not read again
  // for a little new data (Kafka's default 0.5).
  double min_cleanable_dirty_ratio = 0.5;
  // Open .log files with O_DIRECT for appends (reads stay buffered).
  bool direct_io = AppendWriterOptions{}.direct_io;

  // kInvalidArgument naming the first field out of range.
  absl::Status Validate() const;

  // Whether cleanup_policy names "compact" / "delete".
  bool compact() const;
  bool delete_enabled() const;
};

}  // namespace runnel::log
