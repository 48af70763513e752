#pragma once

// Idempotent-producer state of one partition (Kafka's ProducerStateManager):
// per producer id, its epoch and the metadata of its last appended batches,
// used to drop duplicates and to refuse sequence gaps. Semantics:
// docs/wire-protocol.md ("Idempotent producer"), rebuild: docs/broker.md.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

#include "common/clock.h"
#include "log/partition_log.h"
#include "log/record_batch.h"
#include "log/types.h"

namespace runnel::broker {

// Kafka's sequence arithmetic: sequences are non-negative int32 values that
// wrap from INT32_MAX to 0. `increment` >= 0.
int32_t IncrementSequence(int32_t sequence, int32_t increment);

// What a batch header says about its producer (RecordBatch v2 fields).
struct ProducerBatchId {
  int64_t producer_id = -1;  // < 0: not idempotent, never checked
  int16_t producer_epoch = -1;
  int32_t base_sequence = -1;
  // Sequences the batch spans (lastOffsetDelta + 1: its record count unless
  // compaction removed records); >= 1 for an idempotent batch.
  int32_t record_count = 0;

  static ProducerBatchId Of(const log::RecordBatchView& batch);
  bool idempotent() const { return producer_id >= 0; }
  int32_t last_sequence() const {
    return IncrementSequence(base_sequence, record_count - 1);
  }
};

// A run of appended batches of a producer: one batch, or several that follow
// each other both in sequence and in offset (a producer's batches appended
// by one request, or by consecutive requests with no other writer between
// them). Inside a run sequence and offset advance together, one per record.
struct ProducerBatchMetadata {
  int32_t first_sequence = 0;
  int32_t last_sequence = 0;
  log::Offset first_offset = log::kNoOffset;
  log::Offset last_offset = log::kNoOffset;
  int64_t timestamp_ms = -1;  // the batch's max timestamp
};

// The outcome of checking the batches of one produce request.
struct SequenceDecision {
  // true: every idempotent batch of the request was appended before (and no
  // other batch is in it); nothing must be written, and the request is
  // answered with the offsets the original append got.
  bool duplicate = false;
  log::Offset first_offset = log::kNoOffset;  // of the first duplicate
  log::Offset last_offset = log::kNoOffset;   // of the last duplicate
};

// Thread-compatible: the owning Partition serializes Check + append +
// OnAppended under one mutex, which makes the check and the append atomic.
class ProducerStateManager {
 public:
  // Runs remembered per producer for duplicate detection. Kafka remembers
  // the last 5 batches (a producer keeps at most 5 requests in flight, one
  // batch per partition each); Runnel's requests may carry several batches
  // of a partition, so it remembers the last 5 runs, each at least a batch:
  // every batch of the last 5 requests, and never fewer than 5 batches.
  static constexpr size_t kMaxBatchesPerProducer = 5;

  // `clock` (must outlive the manager) stamps when each producer was last
  // seen, for RemoveExpired.
  explicit ProducerStateManager(const Clock* clock = SystemClock::Default())
      : clock_(clock) {}
  ProducerStateManager(const ProducerStateManager&) = delete;
  ProducerStateManager& operator=(const ProducerStateManager&) = delete;

  // Checks the batches of one request in order, as if each earlier one had
  // been appended. Non-idempotent batches pass unchecked. Errors (typed,
  // broker/errors.h): INVALID_PRODUCER_EPOCH for an epoch older than the
  // producer's; UNKNOWN_PRODUCER_ID for an unknown producer whose first
  // batch does not start at sequence 0; OUT_OF_ORDER_SEQUENCE for any other
  // sequence that is neither the next one (last + 1, wrapping) nor a
  // duplicate (inside one of the last kMaxBatchesPerProducer runs), and for
  // a new epoch not starting at 0; DUPLICATE_SEQUENCE for a request that
  // mixes duplicates with new batches or whose duplicates are not
  // contiguous in the log.
  absl::StatusOr<SequenceDecision> Check(
      absl::Span<const ProducerBatchId> batches) const;

  // Whether the request's first batch of some producer is ahead of the
  // sequence the state expects (a gap with the same epoch, or a first
  // sequence != 0 of an unknown producer): the batch before it may be on
  // its way in another request that the broker handles a moment later.
  bool AwaitsEarlierBatch(absl::Span<const ProducerBatchId> batches) const;

  // Records an appended idempotent batch (after Check allowed it, or while
  // rebuilding from the log): it extends the producer's last run when it
  // follows it in sequence and offset; a newer epoch replaces the entry.
  void OnAppended(const ProducerBatchId& batch, log::Offset first_offset,
                  log::Offset last_offset, int64_t timestamp_ms);

  // Rebuilds the state from the batches of the last `segments` segments of
  // `log` (from the log start when it has fewer). Call on an empty manager
  // before the partition serves produce requests. Errors: the log's reads.
  absl::Status RebuildFromLog(log::PartitionLog& log, int segments = 2);
  // Where RebuildFromLog starts reading: the base offset of the `segments`-th
  // last segment, or the log start when there are no more segments than
  // that.
  static log::Offset RebuildStart(const log::PartitionLog& log,
                                  int segments = 2);

  // The state as a snapshot file's bytes, valid at log offset `offset`
  // (every idempotent batch below it is in the state, none at or above it).
  // Layout: docs/log-format.md ("producer-state.snapshot").
  std::string EncodeSnapshot(log::Offset offset) const;
  // Replaces the state with a snapshot's; returns the snapshot's offset.
  // kDataLoss (state unchanged) for bytes that are not a whole, intact
  // snapshot of this version.
  absl::StatusOr<log::Offset> LoadSnapshot(std::string_view bytes);
  // Forgets every producer.
  void Clear() { producers_.clear(); }
  // Forgets the producers whose last batch this manager recorded (appended,
  // or loaded from the log or a snapshot) `expiration` or longer ago by the
  // clock, like Kafka's producer.id.expiration.ms: a long-lived partition
  // does not keep every producer that ever wrote to it. A forgotten
  // producer's next batch is checked as an unknown producer's
  // (UNKNOWN_PRODUCER_ID unless it starts at sequence 0). Returns how many
  // were removed.
  size_t RemoveExpired(absl::Duration expiration);
  // RebuildFromLog from `offset` on: the batches of [offset, log end).
  absl::Status ApplyLogFrom(log::PartitionLog& log, log::Offset offset);

  // For tests and metrics.
  size_t producer_count() const { return producers_.size(); }
  std::optional<int16_t> epoch_of(int64_t producer_id) const;
  // The producer's remembered runs, oldest first (empty if unknown).
  std::deque<ProducerBatchMetadata> batches_of(int64_t producer_id) const;

 private:
  struct Entry {
    int16_t epoch = 0;
    std::deque<ProducerBatchMetadata> batches;  // oldest first
    // The clock's time when the last batch was recorded (the broker's
    // clock, not the batch's timestamps, which the client sets). Not in
    // snapshots: loading one counts as seeing every producer in it.
    int64_t last_seen_ms = 0;
  };
  // Where one producer stands while a request's batches are checked.
  struct Tentative {
    const Entry* entry = nullptr;  // null: unknown producer
    bool has_epoch = false;
    int16_t epoch = 0;
    std::optional<int32_t> last_sequence;
    bool appended_in_request = false;
  };

  // Checks one new (not duplicate) batch against `t` and advances it.
  static absl::Status CheckNext(const ProducerBatchId& batch, Tentative& t);
  // The run that contains `batch`'s sequences, narrowed to the batch.
  static std::optional<ProducerBatchMetadata> FindDuplicate(
      const Entry& entry, const ProducerBatchId& batch);

  const Clock* const clock_;
  absl::flat_hash_map<int64_t, Entry> producers_;
};

}  // namespace runnel::broker
