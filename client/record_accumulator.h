#pragma once

#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string_view>
#include <vector>

#include "absl/container/node_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#include "client/producer_batch.h"
#include "common/clock.h"
#include "log/record_batch.h"

#include "runnel/record.h"

namespace runnel::client {

struct AccumulatorOptions {
  // A batch is sent once it holds this many (uncompressed) bytes...
  size_t batch_size = 16384;
  // ...or once its first record has waited this long.
  int64_t linger_ms = 5;
  // Bytes of records accepted but not yet acknowledged, across partitions.
  size_t buffer_memory = 32 << 20;
  // How long Append waits for buffer memory before failing.
  int64_t max_block_ms = 60000;
  // A batch not delivered this long after creation fails.
  int64_t delivery_timeout_ms = 120000;
  // Delay before a failed batch is retried.
  int64_t retry_backoff_ms = 100;
  // Most bytes drained for one partition at once (one request's share).
  size_t max_request_size = 1 << 20;
  log::Compression compression = log::Compression::kNone;
  // Drained requests in flight per partition. 1 keeps order by itself; more
  // needs `idempotent` (the broker's sequence checks keep the order).
  int max_in_flight_per_partition = 1;
  // Stamp batches with producer id, epoch and per-partition sequences at
  // drain time (Drain then needs a ProducerIdentity).
  bool idempotent = false;
  // Linger, backoff and delivery timeouts follow this clock (borrowed; must
  // outlive the accumulator). Blocking on memory uses real time.
  Clock* clock = nullptr;  // nullptr: SystemClock::Default()
};

// A topic and partition by reference: what Append finds a partition's queue
// by, so that a Send does not copy the topic name. Converts from a
// TopicPartition.
struct TopicPartitionRef {
  TopicPartitionRef(std::string_view t, int32_t p) : topic(t), partition(p) {}
  TopicPartitionRef(const TopicPartition& tp)  // NOLINT: implicit on purpose
      : topic(tp.topic), partition(tp.partition) {}
  std::string_view topic;
  int32_t partition = 0;
};

// Hash and equality over TopicPartition and TopicPartitionRef alike
// (heterogeneous lookup).
struct TopicPartitionHash {
  using is_transparent = void;
  size_t operator()(TopicPartitionRef tp) const {
    return absl::HashOf(tp.topic, tp.partition);
  }
};
struct TopicPartitionEq {
  using is_transparent = void;
  bool operator()(TopicPartitionRef a, TopicPartitionRef b) const {
    return a.partition == b.partition && a.topic == b.topic;
  }
};

// The producer id and epoch from InitProducerId. `generation` numbers the
// identities one producer obtained (0, 1, ...): a partition whose sequences
// had to be reset moves to a newer one.
struct ProducerIdentity {
  int64_t producer_id = -1;
  int16_t producer_epoch = 0;
  int64_t generation = -1;
};

// Per-partition queues of ProducerBatches between Producer::Send and the
// sender. Keeps order per partition: Drain hands out a partition's batches
// only while fewer than max_in_flight_per_partition drained requests of it
// are in flight (each Drain that takes batches of a partition counts one,
// until the sender calls Unmute or Reenqueue for it). Idempotent mode sends
// new batches only within max_in_flight_per_partition requests of the
// oldest unresolved one,
// stamps each batch once with the partition's next sequence, keeps retried
// batches in creation order at the front and sends them only when nothing
// else of their partition is in flight; a retry that may already be in the
// log (ProducerBatch::maybe_written) goes alone and nothing follows it until
// it is answered, so for the broker it is a whole duplicate or a whole new
// batch, and a duplicate is still among the broker's last five runs. Bounds
// memory: Append blocks while the buffer is full, up to max_block_ms, then
// fails with kResourceExhausted. Needs no network, so it is tested on its own.
// Thread-safe.
class RecordAccumulator {
 public:
  explicit RecordAccumulator(AccumulatorOptions options);
  RecordAccumulator(const RecordAccumulator&) = delete;
  RecordAccumulator& operator=(const RecordAccumulator&) = delete;

  struct AppendResult {
    bool new_batch = false;   // the record opened a new batch
    bool batch_full = false;  // the batch it went into is now full
    // A batch of the partition stopped taking records: the previous one
    // (the record did not fit) or the one it went into (now full).
    bool batch_closed = false;
  };

  // Adds one record to the partition's open batch (opening one when needed).
  // Errors (the callback is then NOT called): kInvalidArgument if the record
  // alone exceeds buffer_memory or max_request_size; kResourceExhausted when
  // no buffer memory frees up within max_block_ms; kFailedPrecondition after
  // Close().
  absl::StatusOr<AppendResult> Append(
      TopicPartitionRef tp, int64_t timestamp_ms,
      std::optional<std::string_view> key,
      std::optional<std::string_view> value,
      std::span<const log::RecordHeaderView> headers,
      DeliveryCallback callback);

  struct DrainResult {
    // Sealed batches to send, grouped by partition in queue order; each of
    // their partitions is muted until Unmute/Reenqueue.
    std::vector<std::unique_ptr<ProducerBatch>> ready;
    // Batches older than delivery_timeout_ms that were never sent: the caller
    // fails and deallocates them.
    std::vector<std::unique_ptr<ProducerBatch>> expired;
    // Clock time when a batch not ready now becomes ready (linger, backoff);
    // max() when nothing waits.
    int64_t next_ready_ms = std::numeric_limits<int64_t>::max();
    // Idempotent mode: a partition waits for a producer identity newer than
    // the one its sequences were reset from (see ResetSequences).
    bool needs_new_identity = false;
  };
  // Takes the batches that are ready at `now_ms`: a partition's front batch
  // is ready when it is full, lingered long enough, is followed by another
  // batch, or when a flush, Close or a blocked Append is waiting. Takes up to
  // max_request_size bytes per partition (at least one batch).
  // Idempotent mode: `identity` stamps the batches (nullptr, or one not yet
  // obtained: nothing is drained, only expired batches are returned).
  DrainResult Drain(int64_t now_ms, const ProducerIdentity* identity = nullptr);

  // The sender finished with one drained request of the partition.
  void Unmute(const TopicPartition& tp);
  // Puts failed batches back into their partition's queue in creation
  // order (ahead of the newer ones), to be retried after retry_backoff_ms
  // (at once without `backoff`), and counts one request of the partition
  // as finished.
  void Reenqueue(std::vector<std::unique_ptr<ProducerBatch>> batches,
                 int64_t now_ms, bool backoff = true);
  // Idempotent mode: `batch` was acknowledged. Tracks the partition's
  // acknowledged sequences (see ProducerBatch::sent_as_oldest, set at
  // drain).
  void OnAcked(const ProducerBatch& batch);
  // Idempotent mode: the partition's sequence state is unusable (a batch with
  // a sequence failed or expired, or the broker forgot the producer). Once
  // nothing of it is in flight, its queued batches are stamped anew, from
  // sequence 0, under a newer identity.
  void ResetSequences(const TopicPartition& tp);

  // The id of the partition's oldest batch not yet deallocated (max() when
  // none): completions run in this order.
  uint64_t OldestIncomplete(const TopicPartition& tp) const;

  // Releases a completed (or failed) batch's buffer memory.
  void Deallocate(std::unique_ptr<ProducerBatch> batch);

  // Waits until something may have become ready (a new or full batch, an
  // unmute, a flush, Close) or `timeout` passes. For the sender thread.
  void AwaitWork(absl::Duration timeout);
  // Wakes AwaitWork (e.g. metadata arrived).
  void Wakeup();

  // Makes every batch ready and blocks until all batches that existed when
  // it was called are completed or failed. False if `timeout` passed first.
  bool Flush(absl::Duration timeout = absl::InfiniteDuration());
  // Rejects new Appends, fails blocked ones, and makes everything ready.
  void Close();
  // Removes every queued (not in-flight) batch, for the caller to fail.
  std::vector<std::unique_ptr<ProducerBatch>> AbortQueued();

  bool closed() const;
  // Batches queued or in flight, not yet deallocated.
  size_t incomplete_batches() const;
  size_t used_memory() const;
  // Appends currently blocked on buffer memory.
  int blocked_appends() const;

  // Buffer memory reserved for one record (its encoded size, bounded above).
  static size_t EstimateRecordSize(
      std::optional<std::string_view> key,
      std::optional<std::string_view> value,
      std::span<const log::RecordHeaderView> headers);

 private:
  struct PartitionQueue {
    std::deque<std::unique_ptr<ProducerBatch>> batches;
    bool open_back = false;         // batches.back() still takes appends
    int in_flight = 0;              // drained requests not yet finished
    std::set<uint64_t> incomplete;  // ids of the batches not deallocated
    // Idempotent mode: the identity the partition's sequences belong to
    // (generation -1: none yet), the next sequence to stamp, the end of the
    // acknowledged ones, and whether a reset is pending.
    ProducerIdentity identity;
    int64_t next_sequence = 0;
    int64_t acked_sequence = 0;
    bool reset = false;
    bool retry_in_flight = false;  // a maybe-written retry, sent alone
    // Send indexes (one per drained request) of the batches sent and not
    // yet deallocated, and the next one to give out: new batches go out
    // only within max_in_flight_per_partition requests of the oldest
    // unresolved one, so that a retry of it is still among the broker's
    // last five runs.
    std::multiset<int64_t> unresolved;
    int64_t next_send_index = 0;
  };

  bool ReadyLocked(const PartitionQueue& q, const ProducerBatch& batch,
                   bool is_last, int64_t now_ms, int64_t* next_ready_ms) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DrainPartitionLocked(PartitionQueue& q, int64_t now_ms,
                            const ProducerIdentity* identity,
                            DrainResult& result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Idempotent mode: whether the partition may drain now, adopting
  // `identity` when it has none or a reset is pending.
  bool ReadyForSequencesLocked(PartitionQueue& q,
                               const ProducerIdentity* identity,
                               DrainResult& result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool WaitForMemoryLocked(size_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const AccumulatorOptions options_;
  Clock* const clock_;
  log::BatchBuilderOptions builder_options_;

  mutable absl::Mutex mu_;
  absl::CondVar memory_cv_;  // memory released or closed
  absl::CondVar work_cv_;    // work for the sender
  absl::CondVar done_cv_;    // a batch was deallocated
  bool work_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  int flushes_ ABSL_GUARDED_BY(mu_) = 0;
  int blocked_ ABSL_GUARDED_BY(mu_) = 0;
  size_t used_memory_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_batch_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::set<uint64_t> incomplete_ ABSL_GUARDED_BY(mu_);
  // Node-based: an entry never moves (and none is erased), so Append keeps
  // the one it used last and skips the lookup for the next record to the
  // same partition.
  using QueueMap = absl::node_hash_map<TopicPartition, PartitionQueue,
                                       TopicPartitionHash, TopicPartitionEq>;
  QueueMap queues_ ABSL_GUARDED_BY(mu_);
  QueueMap::value_type* last_queue_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace runnel::client
