#pragma once

// The Runnel consumer with manual partition assignment (consumer groups come
// with a later issue). A background fetcher keeps one long-poll Fetch in
// flight per leader broker while the application processes what Poll
// returned, so the broker stays busy.
//
//   auto consumer = runnel::client::Consumer::Create({}).value();
//   consumer->Assign({{"events", 0}});
//   consumer->SeekToBeginning({{"events", 0}});
//   auto records = consumer->Poll(absl::Seconds(1));

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "runnel/record.h"

namespace runnel::client {

// Where a partition without a valid position starts (Kafka's
// auto.offset.reset): on Assign, and when a fetch finds the position out of
// range. kNone: Poll reports kOutOfRange for the partition instead.
enum class OffsetReset { kEarliest, kLatest, kNone };

struct ConsumerOptions {
  std::string bootstrap = "127.0.0.1:7070";
  OffsetReset auto_offset_reset = OffsetReset::kLatest;
  // Long poll: the broker holds a fetch up to fetch_max_wait_ms until
  // fetch_min_bytes are available.
  int32_t fetch_max_wait_ms = 500;
  int32_t fetch_min_bytes = 1;
  // Bytes per fetch response and per partition within it.
  int32_t fetch_max_bytes = 64 << 20;
  int32_t max_partition_fetch_bytes = 2 << 20;
  // Prefetching stops while this many bytes of records wait for Poll.
  size_t max_buffered_bytes = 64 << 20;
  // Most records one Poll returns.
  size_t max_poll_records = 10000;
  int64_t request_timeout_ms = 30000;
  int64_t retry_backoff_ms = 100;
  // With a single leader broker, fetch through the FetchStream RPC (the
  // broker pushes batches as they land); false: repeated long-poll Fetch
  // calls (always used with several leaders).
  bool fetch_stream = true;
  // Verify each fetched batch's CRC32C before decoding it (Kafka's
  // check.crcs): a corrupt batch fails Poll with kDataLoss and stops its
  // partition until the next Seek, instead of handing out damaged records.
  bool check_crcs = true;
};

// Thread-compatible: one thread uses a consumer at a time (Close may be
// called from another thread to stop a blocked Poll). Internally one fetcher
// thread per consumer.
class Consumer {
 public:
  static absl::StatusOr<std::unique_ptr<Consumer>> Create(
      ConsumerOptions options);
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;
  ~Consumer();  // Close()

  // Replaces the assignment. New partitions start per auto_offset_reset
  // (looked up now); kept partitions keep their position. kNotFound for an
  // unknown topic or partition.
  absl::Status Assign(const std::vector<TopicPartition>& partitions);
  std::vector<TopicPartition> Assignment() const;

  // Moves the position (the next offset Poll returns) of an assigned
  // partition. An offset outside [log start, high watermark] is reported by
  // the next fetch (see OffsetReset). kInvalidArgument for a negative offset
  // or an unassigned partition.
  absl::Status Seek(const TopicPartition& tp, int64_t offset);
  absl::Status SeekToBeginning(const std::vector<TopicPartition>& partitions);
  absl::Status SeekToEnd(const std::vector<TopicPartition>& partitions);
  // First offset whose timestamp is >= timestamp_ms; the end when none is.
  absl::Status SeekToTimestamp(const std::vector<TopicPartition>& partitions,
                               int64_t timestamp_ms);

  // Returns the records available within `timeout` (possibly none), in
  // offset order per partition, and advances the positions past them. Errors:
  // a partition's fetch error that cannot be retried (e.g. kOutOfRange with
  // OffsetReset::kNone), kCancelled after Close.
  absl::StatusOr<std::vector<ConsumerRecord>> Poll(absl::Duration timeout);

  // The next offset Poll will return for an assigned partition.
  absl::StatusOr<int64_t> Position(const TopicPartition& tp) const;
  // The high watermark the last fetch reported; -1 before the first.
  int64_t HighWatermark(const TopicPartition& tp) const;

  // Asks the broker (ListOffsets) for log start offsets / high watermarks /
  // offsets by timestamp (-1: no record at or after it).
  absl::StatusOr<std::map<TopicPartition, int64_t>> BeginningOffsets(
      const std::vector<TopicPartition>& partitions);
  absl::StatusOr<std::map<TopicPartition, int64_t>> EndOffsets(
      const std::vector<TopicPartition>& partitions);
  absl::StatusOr<std::map<TopicPartition, int64_t>> OffsetsForTimestamp(
      const std::vector<TopicPartition>& partitions, int64_t timestamp_ms);

  // Every partition of `topic`, from metadata.
  absl::StatusOr<std::vector<TopicPartition>> PartitionsFor(
      const std::string& topic);

  // Stops the fetcher; Poll then fails with kCancelled. Idempotent.
  void Close();

  class Impl;

 private:
  explicit Consumer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace runnel::client
