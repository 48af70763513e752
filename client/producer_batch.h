#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

#include "log/record_batch.h"

#include "runnel/record.h"

namespace runnel::client {

// The records a producer has accepted for one partition, encoded into one
// RecordBatch v2, and the delivery callback of each. A batch is filled by the
// accumulator, then sealed (encoded once, so retries resend identical bytes),
// then completed or failed exactly once. Thread-compatible: the accumulator's
// lock guards it while it is open; afterwards one thread owns it.
class ProducerBatch {
 public:
  // `max_bytes`: the most the batch will hold (batch.size, or a larger first
  // record). Its buffer grows towards it in steps of 4x from 16 KiB, so a
  // full 1 MB batch is copied about a third of its size while growing (a
  // doubling string: its whole size) and a small one (linger 0) does not
  // hold batch.size of memory.
  ProducerBatch(TopicPartition tp, const log::BatchBuilderOptions& options,
                int64_t created_ms, uint64_t id, size_t max_bytes = 0);
  ProducerBatch(const ProducerBatch&) = delete;
  ProducerBatch& operator=(const ProducerBatch&) = delete;

  // Adds one record. `reserved_bytes` is the buffer memory held for it,
  // released when the batch is deallocated.
  void Append(int64_t timestamp_ms, std::optional<std::string_view> key,
              std::optional<std::string_view> value,
              std::span<const log::RecordHeaderView> headers,
              DeliveryCallback callback, size_t reserved_bytes);

  const TopicPartition& topic_partition() const { return tp_; }
  uint64_t id() const { return id_; }
  int64_t created_ms() const { return created_ms_; }
  int32_t record_count() const { return static_cast<int32_t>(pending_.size()); }
  // Uncompressed encoded size so far (what batch.size is compared against).
  size_t size_bytes() const { return builder_.uncompressed_size_bytes(); }
  size_t reserved_bytes() const { return reserved_bytes_; }
  // Bytes of records the batch's buffer holds without growing (tests).
  size_t buffer_capacity() const { return builder_.capacity_bytes(); }

  // Encodes the batch on first call; later calls are no-ops. kInternal if a
  // codec fails.
  absl::Status Seal();
  bool sealed() const { return sealed_; }
  // The encoded batch; only after a successful Seal().
  const std::string& bytes() const { return *bytes_; }
  // The same, shared: a request in flight keeps it alive on its own.
  std::shared_ptr<const std::string> shared_bytes() const { return bytes_; }

  // Idempotent producer: stamps the producer id, epoch and sequence
  // (`sequence` counts records from 0 without wrapping; the batch carries it
  // modulo 2^31, which is Kafka's wrap at INT32_MAX). Before Seal() the
  // fields go into the encoding; on a sealed batch (a retry under a new
  // producer id) the header is rewritten and the CRC recomputed.
  // `generation` names the producer identity the stamp belongs to.
  void SetProducerState(int64_t producer_id, int16_t producer_epoch,
                        int64_t sequence, int64_t generation);
  bool has_sequence() const { return sequence_ >= 0; }
  int64_t sequence() const { return sequence_; }  // -1: none
  int64_t generation() const { return generation_; }
  // The wire baseSequence (sequence() modulo 2^31); -1 without one.
  int32_t base_sequence() const;

  // An attempt ended without knowing whether the broker appended the batch
  // (lost response, timeout). Sticky: an idempotent retry of such a batch
  // may be a duplicate, so it is sent alone.
  bool maybe_written() const { return maybe_written_; }
  // Idempotent producer: the number of the drained request of its
  // partition that first carried the batch (0, 1, ...); -1 before.
  int64_t send_index() const { return send_index_; }
  void set_send_index(int64_t index) { send_index_ = index; }
  // Idempotent producer: whether every earlier batch of the partition was
  // acknowledged when this batch was last drained. Only then does an
  // OUT_OF_ORDER_SEQUENCE answer mean that the broker lost track of the
  // producer; otherwise an earlier batch was simply missing.
  bool sent_as_oldest() const { return sent_as_oldest_; }
  void set_sent_as_oldest(bool oldest) { sent_as_oldest_ = oldest; }
  void set_maybe_written() { maybe_written_ = true; }

  // Delivery bookkeeping for the sender.
  int attempts() const { return attempts_; }
  void RecordAttempt() { ++attempts_; }
  int64_t retry_after_ms() const { return retry_after_ms_; }
  void set_retry_after_ms(int64_t ms) { retry_after_ms_ = ms; }

  // Runs every callback with its record's metadata: offsets base_offset + i
  // (-1 for all when base_offset < 0, as with acks=none), the timestamp
  // log_append_time_ms when >= 0, else the record's own.
  void Complete(int64_t base_offset, int64_t log_append_time_ms);
  // Runs every callback with `status`.
  void Fail(const absl::Status& status);
  bool done() const { return done_; }

 private:
  struct Pending {
    DeliveryCallback callback;
    int64_t timestamp_ms;
  };

  TopicPartition tp_;
  uint64_t id_;
  int64_t created_ms_;
  size_t max_bytes_;
  log::RecordBatchBuilder builder_;
  std::vector<Pending> pending_;
  size_t reserved_bytes_ = 0;
  bool sealed_ = false;
  bool done_ = false;
  std::shared_ptr<std::string> bytes_ = std::make_shared<std::string>();
  int attempts_ = 0;
  int64_t retry_after_ms_ = 0;
  int64_t sequence_ = -1;
  int64_t generation_ = -1;
  bool maybe_written_ = false;
  int64_t send_index_ = -1;
  bool sent_as_oldest_ = false;
};

}  // namespace runnel::client
