#pragma once

// One partition served by this broker: its log, its replica state (leader
// epoch, high watermark) and the produce/read/list-offsets paths on it.

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#include "broker/producer_state.h"
#include "broker/replica_state.h"
#include "broker/timer_queue.h"
#include "broker/topic_partition.h"
#include "common/clock.h"
#include "log/log_config.h"
#include "log/partition_log.h"
#include "log/record_batch.h"
#include "log/record_bytes.h"
#include "log/types.h"

namespace runnel::broker {

enum class Acks { kNone, kLeader, kAll };

// Timestamps for ListOffsets.
inline constexpr int64_t kEarliestTimestamp = -2;
inline constexpr int64_t kLatestTimestamp = -1;

struct ProduceResult {
  absl::Status status;  // typed with ErrorKind (broker/errors.h)
  log::Offset base_offset = log::kNoOffset;
  log::Offset last_offset = log::kNoOffset;
  int64_t log_append_time_ms = -1;
  log::Offset log_start_offset = -1;
};

struct ReadResult {
  absl::Status status;
  std::string records;  // whole batches below the high watermark
  log::Offset high_watermark = -1;
  log::Offset log_start_offset = -1;
  log::Offset log_end_offset = -1;
};

struct PartitionState {
  int32_t leader_id = -1;
  int32_t leader_epoch = -1;
  std::vector<int32_t> replicas;
  std::vector<int32_t> isr;
  log::Offset log_start_offset = 0;
  log::Offset high_watermark = 0;
  log::Offset log_end_offset = 0;
  int64_t size_bytes = 0;
};

struct PartitionOptions {
  // How long, by default, an idempotent request that arrived before its
  // predecessor is parked, waiting for it (see Partition::Produce).
  static constexpr absl::Duration kDefaultReorderWait = absl::Milliseconds(50);

  // For the reorder wait; null: none. Must outlive the partition.
  TimerQueue* timers = nullptr;
  absl::Duration reorder_wait = kDefaultReorderWait;
  // Stamps when producers were last seen. Must outlive the partition.
  const Clock* clock = SystemClock::Default();
  // Kafka's producer.id.expiration.ms: the idempotent-producer state of a
  // producer that appended nothing to this partition for this long is
  // forgotten (ProducerStateManager::RemoveExpired), checked at most every
  // producer_id_expiration_check_interval (Kafka's
  // producer.id.expiration.check.interval.ms) when idempotent batches
  // arrive, and before a snapshot is written.
  absl::Duration producer_id_expiration = absl::Hours(24);
  absl::Duration producer_id_expiration_check_interval = absl::Minutes(10);
};

// Thread-safe. Operations run concurrently (the log serializes appends);
// MarkDeleted() waits for running operations and fails later ones with
// UNKNOWN_TOPIC_OR_PARTITION, after which the log may be deleted.
// Owned by a std::shared_ptr (the reorder timers hold weak references).
class Partition : public std::enable_shared_from_this<Partition> {
 public:
  static constexpr absl::Duration kDefaultReorderWait =
      PartitionOptions::kDefaultReorderWait;

  // `log` must outlive this object or MarkDeleted(), whichever comes first.
  Partition(TopicPartition id, log::PartitionLog* log,
            std::unique_ptr<ReplicaState> replica,
            PartitionOptions options = {});
  ~Partition();  // fails the parked requests
  Partition(const Partition&) = delete;
  Partition& operator=(const Partition&) = delete;

  const TopicPartition& id() const { return id_; }

  // Validates `records` (one or more RecordBatch v2 batches), appends them
  // and calls `done` per `acks`: kNone and kLeader once appended, kAll once
  // committed (durable). `done` runs exactly once, on the calling thread or
  // on the log's I/O thread; it must not block. Errors (typed):
  // CORRUPT_MESSAGE (framing, magic, truncation, CRC), RECORD_TOO_LARGE
  // (a batch above max.message.bytes), INVALID_RECORD (records inside a
  // batch), INVALID_REQUEST (no bytes), STORAGE_ERROR, NOT_LEADER,
  // UNKNOWN_TOPIC_OR_PARTITION after deletion. Nothing is written on error.
  // Idempotent batches (producerId >= 0) are checked against the producer
  // state first, atomically with the append (ProducerStateManager::Check):
  // a request made only of duplicates writes nothing and answers with the
  // original offsets (once they are committed for kAll); sequence errors are
  // OUT_OF_ORDER_SEQUENCE, INVALID_PRODUCER_EPOCH, UNKNOWN_PRODUCER_ID,
  // DUPLICATE_SEQUENCE. gRPC may hand a producer's pipelined requests to
  // two threads in either order: a request whose batches are ahead of the
  // sequence the producer state expects is parked, without holding a
  // thread, and resumed right after the append of its predecessor; if that
  // does not come within the reorder wait it fails with the sequence error.
  void Produce(log::RecordBytes records, Acks acks,
               std::function<void(ProduceResult)> done);

  // Loads the idempotent-producer state: from the snapshot a clean shutdown
  // wrote (then the batches after its offset), else from the last two
  // segments of the log. The snapshot file is removed either way, so a
  // later crash never finds a stale one. Call once, before the partition
  // serves requests. Errors: the log's read errors.
  absl::Status RebuildProducerState();
  // Writes the producer state to the snapshot file (at clean shutdown, when
  // no request is being served). Errors: the file's.
  absl::Status WriteProducerSnapshot();

  // Whole batches from the one containing `fetch_offset`, below the high
  // watermark, up to about `max_bytes` (at least one batch when there is
  // one). OFFSET_OUT_OF_RANGE outside [log start, log end].
  // `first_batch_may_exceed`: the first batch is returned whole even when it
  // is larger than max_bytes (Kafka's rule for the first non-empty partition
  // of a fetch); otherwise the result stays within max_bytes.
  ReadResult Read(log::Offset fetch_offset, size_t max_bytes,
                  bool first_batch_may_exceed = true);

  // kEarliestTimestamp: log start; kLatestTimestamp: high watermark (both
  // with timestamp -1); else the first record with a timestamp >=
  // `timestamp` below the HW: its offset and its timestamp, or -1 and -1 if
  // there is none.
  absl::StatusOr<log::RecordTimestamp> ListOffset(int64_t timestamp);

  PartitionState State() const;
  log::Offset high_watermark() const { return replica_->high_watermark(); }

  void SetConfig(const log::LogConfig& config);

  // See the class comment. Idempotent.
  void MarkDeleted();

  // Traffic counters for /metrics.
  uint64_t bytes_in() const {
    return bytes_in_.load(std::memory_order_relaxed);
  }
  uint64_t bytes_out() const {
    return bytes_out_.load(std::memory_order_relaxed);
  }
  uint64_t batches_in() const {
    return batches_in_.load(std::memory_order_relaxed);
  }

 private:
  // The header fields of one batch the producer state needs.
  struct BatchHeader {
    ProducerBatchId id;
    int32_t last_offset_delta = 0;
    int64_t max_timestamp = -1;
  };
  // One batch's header as ValidateBatches framed it, copied out of the
  // records (which may be in pieces).
  struct BatchHead {
    std::array<char, log::kBatchHeaderSize> header;
    log::RecordBatchView view() const {
      return log::RecordBatchView::HeaderView(
          std::string_view(header.data(), header.size()));
    }
  };
  // A produce request that carries idempotent batches, from its check to
  // its answer (it may be parked in between).
  struct IdempotentRequest {
    log::RecordBytes records;
    std::vector<BatchHeader> headers;
    std::vector<ProducerBatchId> ids;
    Acks acks = Acks::kLeader;
    std::function<void(ProduceResult)> done;
    size_t bytes = 0;
    int batches = 0;
    uint64_t park_id = 0;
    ProduceResult result;
    bool duplicate = false;
  };

  // Every check of log::ValidateBatch, once (the log does not repeat them),
  // typed: framing, magic, truncation and CRC -> CORRUPT_MESSAGE, size ->
  // RECORD_TOO_LARGE, the rest (records, codec, counts) -> INVALID_RECORD.
  // Fills `heads` with one entry per batch (the last one possibly partial
  // when framing failed).
  absl::Status ValidateBatches(const log::RecordBytes& records,
                               std::vector<BatchHead>* heads) const;
  absl::Status CheckLive() const ABSL_SHARED_LOCKS_REQUIRED(ops_mu_);
  // Appends `records` (already validated) and fills `result`'s offsets.
  absl::Status AppendToLog(log::RecordBytes records, ProduceResult& result)
      ABSL_SHARED_LOCKS_REQUIRED(ops_mu_);
  // The rest of Produce after the append (or its failure): counters, the
  // high watermark, and `done` per `acks`.
  void FinishProduce(ProduceResult result, Acks acks, size_t bytes, int batches,
                     bool duplicate, std::function<void(ProduceResult)> done)
      ABSL_SHARED_LOCKS_REQUIRED(ops_mu_);
  // Checks `request` against the producer state, then parks it or appends
  // it; appends the parked requests that then follow. Returns the requests
  // it decided (appended, duplicate or failed), in append order.
  std::vector<IdempotentRequest> ProduceIdempotent(IdempotentRequest request)
      ABSL_SHARED_LOCKS_REQUIRED(ops_mu_) ABSL_LOCKS_EXCLUDED(producer_mu_);
  // The sequence check, and the append and producer-state update if it
  // passes, filling `request.result`. false (nothing done) when the
  // batches wait for an earlier batch of their producer.
  bool TryAppendIdempotent(IdempotentRequest& request)
      ABSL_SHARED_LOCKS_REQUIRED(ops_mu_)
          ABSL_EXCLUSIVE_LOCKS_REQUIRED(producer_mu_);
  // A ProducerStateManager::Check error, prefixed with the partition and
  // keeping its ErrorKind.
  absl::Status SequenceError(const absl::Status& check) const;
  // Forgets producers idle for producer_id_expiration_: when `force`, or
  // when the last check is a check interval old.
  void RemoveExpiredProducers(bool force)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(producer_mu_);
  // Timer: fails the parked request `park_id` if it is still parked.
  void ExpireParked(uint64_t park_id) ABSL_LOCKS_EXCLUDED(producer_mu_);
  // Fails every parked request with `status`.
  void FailParked(const absl::Status& status) ABSL_LOCKS_EXCLUDED(producer_mu_);

  const TopicPartition id_;
  log::PartitionLog* const log_;
  const std::unique_ptr<ReplicaState> replica_;
  TimerQueue* const timers_;
  const absl::Duration reorder_wait_;
  const Clock* const clock_;
  const absl::Duration producer_id_expiration_;
  const absl::Duration producer_id_expiration_check_interval_;

  // Shared by operations, exclusive for MarkDeleted.
  mutable absl::Mutex ops_mu_;
  bool deleted_ ABSL_GUARDED_BY(ops_mu_) = false;

  // Makes the sequence check and the append of idempotent batches atomic.
  // Taken inside ops_mu_.
  absl::Mutex producer_mu_;
  ProducerStateManager producer_state_ ABSL_GUARDED_BY(producer_mu_);
  // When RemoveExpired last ran (clock_'s milliseconds).
  int64_t last_expiry_check_ms_ ABSL_GUARDED_BY(producer_mu_);
  // Requests waiting for an earlier batch of their producer, oldest first.
  std::vector<IdempotentRequest> parked_ ABSL_GUARDED_BY(producer_mu_);
  uint64_t next_park_id_ ABSL_GUARDED_BY(producer_mu_) = 1;

  std::atomic<int32_t> max_message_bytes_;
  // cleanup.policy has "compact": every record needs a key.
  std::atomic<bool> compacted_;
  std::atomic<uint64_t> bytes_in_{0};
  std::atomic<uint64_t> bytes_out_{0};
  std::atomic<uint64_t> batches_in_{0};
};

}  // namespace runnel::broker
