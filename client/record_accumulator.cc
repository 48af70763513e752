#include "client/record_accumulator.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

#include "common/check.h"

namespace runnel::client {

namespace {

// Upper bound of a record's fixed fields in RecordBatch v2: length, attributes,
// timestamp delta, offset delta, key and value lengths, header count.
constexpr size_t kRecordOverhead = 5 + 1 + 10 + 5 + 5 + 5 + 5;
constexpr size_t kHeaderOverhead = 5 + 5;

}  // namespace

RecordAccumulator::RecordAccumulator(AccumulatorOptions options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock
                                       : SystemClock::Default()) {
  builder_options_.compression = options_.compression;
}

size_t RecordAccumulator::EstimateRecordSize(
    std::optional<std::string_view> key, std::optional<std::string_view> value,
    std::span<const log::RecordHeaderView> headers) {
  size_t size = kRecordOverhead;
  if (key) size += key->size();
  if (value) size += value->size();
  for (const log::RecordHeaderView& h : headers) {
    size += kHeaderOverhead + h.key.size() + (h.value ? h.value->size() : 0);
  }
  return size;
}

absl::StatusOr<RecordAccumulator::AppendResult> RecordAccumulator::Append(
    TopicPartitionRef tp, int64_t timestamp_ms,
    std::optional<std::string_view> key, std::optional<std::string_view> value,
    std::span<const log::RecordHeaderView> headers, DeliveryCallback callback) {
  const size_t estimate = EstimateRecordSize(key, value, headers);
  if (estimate > options_.buffer_memory) {
    return absl::InvalidArgumentError(absl::StrCat(
        "record of about ", estimate,
        " bytes is larger than buffer.memory=", options_.buffer_memory));
  }
  if (estimate + log::kBatchHeaderSize > options_.max_request_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "record of about ", estimate,
        " bytes is larger than max.request.size=", options_.max_request_size));
  }
  absl::MutexLock lock(&mu_);
  if (closed_) return absl::FailedPreconditionError("producer is closed");
  if (used_memory_ + estimate > options_.buffer_memory &&
      !WaitForMemoryLocked(estimate)) {
    if (closed_) return absl::FailedPreconditionError("producer is closed");
    return absl::ResourceExhaustedError(absl::StrCat(
        "producer buffer full: buffer.memory=", options_.buffer_memory,
        " bytes still in use after waiting max.block.ms=",
        options_.max_block_ms, " for ", std::string(tp.topic), "-",
        tp.partition));
  }
  used_memory_ += estimate;

  QueueMap::value_type* entry = last_queue_;
  if (entry == nullptr || !TopicPartitionEq()(entry->first, tp)) {
    auto it = queues_.find(tp);
    if (it == queues_.end()) {
      it = queues_
               .try_emplace(TopicPartition{std::string(tp.topic), tp.partition})
               .first;
    }
    entry = &*it;
    last_queue_ = entry;
  }
  const TopicPartition& queue_tp = entry->first;
  PartitionQueue& q = entry->second;
  AppendResult result;
  if (q.open_back && q.batches.back()->record_count() > 0 &&
      q.batches.back()->size_bytes() + estimate > options_.batch_size) {
    q.open_back = false;  // full enough: the record starts a new batch
    result.batch_closed = true;
  }
  if (!q.open_back) {
    const uint64_t id = next_batch_id_++;
    // It grows towards batch.size (or the one larger record) as it fills.
    q.batches.push_back(std::make_unique<ProducerBatch>(
        queue_tp, builder_options_, clock_->NowMs(), id,
        std::max(options_.batch_size, estimate)));
    q.open_back = true;
    incomplete_.insert(id);
    q.incomplete.insert(id);
    result.new_batch = true;
  }
  ProducerBatch& batch = *q.batches.back();
  batch.Append(timestamp_ms, key, value, headers, std::move(callback),
               estimate);
  if (batch.size_bytes() >= options_.batch_size) {
    q.open_back = false;
    result.batch_full = true;
    result.batch_closed = true;
  }
  if (result.new_batch || result.batch_full) {
    // A new batch starts a linger timer the sender must know of; a full one
    // is ready now.
    work_ = true;
    work_cv_.Signal();
  }
  return result;
}

bool RecordAccumulator::WaitForMemoryLocked(size_t bytes) {
  ++blocked_;
  // A blocked Append makes everything ready: send now, free memory sooner.
  work_ = true;
  work_cv_.Signal();
  const absl::Time deadline =
      absl::Now() + absl::Milliseconds(options_.max_block_ms);
  while (!closed_ && used_memory_ + bytes > options_.buffer_memory) {
    if (memory_cv_.WaitWithDeadline(&mu_, deadline)) break;
  }
  --blocked_;
  return !closed_ && used_memory_ + bytes <= options_.buffer_memory;
}

bool RecordAccumulator::ReadyLocked(const PartitionQueue& q,
                                    const ProducerBatch& batch, bool is_last,
                                    int64_t now_ms,
                                    int64_t* next_ready_ms) const {
  if (batch.retry_after_ms() > now_ms) {
    *next_ready_ms = std::min(*next_ready_ms, batch.retry_after_ms());
    return false;
  }
  // A batch behind another, or no longer open, takes no more records.
  if (!is_last || !q.open_back) return true;
  if (batch.size_bytes() >= options_.batch_size) return true;
  if (closed_ || flushes_ > 0 || blocked_ > 0) return true;
  const int64_t ready_at = batch.created_ms() + options_.linger_ms;
  if (now_ms >= ready_at) return true;
  *next_ready_ms = std::min(*next_ready_ms, ready_at);
  return false;
}

bool RecordAccumulator::ReadyForSequencesLocked(
    PartitionQueue& q, const ProducerIdentity* identity, DrainResult& result) {
  if (identity == nullptr || identity->generation < 0) return false;
  if (q.retry_in_flight) return false;
  const ProducerBatch& front = *q.batches.front();
  const bool retry =
      front.has_sequence() && front.generation() == q.identity.generation;
  // A retry goes out once every earlier request has answered: then it is
  // the oldest unresolved batch.
  if (retry && q.in_flight > 0) return false;
  if (q.identity.generation >= 0 && !q.reset) return true;
  if (q.in_flight > 0) return false;
  if (identity->generation <= q.identity.generation) {
    result.needs_new_identity = true;
    return false;
  }
  q.identity = *identity;
  q.next_sequence = 0;
  q.acked_sequence = 0;
  q.reset = false;
  return true;
}

void RecordAccumulator::DrainPartitionLocked(PartitionQueue& q, int64_t now_ms,
                                             const ProducerIdentity* identity,
                                             DrainResult& result) {
  if (q.in_flight >= options_.max_in_flight_per_partition) return;
  // Expire from the front: batches are queued in creation order.
  while (!q.batches.empty() && now_ms - q.batches.front()->created_ms() >=
                                   options_.delivery_timeout_ms) {
    if (q.batches.size() == 1) q.open_back = false;
    // A stamped batch may or may not have reached the log.
    if (q.batches.front()->has_sequence()) q.reset = true;
    result.expired.push_back(std::move(q.batches.front()));
    q.batches.pop_front();
  }
  if (q.batches.empty()) return;
  if (options_.idempotent && !ReadyForSequencesLocked(q, identity, result)) {
    return;
  }
  auto is_retry = [&q](const ProducerBatch& b) {
    return b.has_sequence() && b.generation() == q.identity.generation;
  };
  const bool retry_alone = options_.idempotent &&
                           is_retry(*q.batches.front()) &&
                           q.batches.front()->maybe_written();
  size_t bytes = 0;
  int taken = 0;
  bool new_request = false;
  while (!q.batches.empty()) {
    ProducerBatch& front = *q.batches.front();
    const bool is_last = q.batches.size() == 1;
    if (!ReadyLocked(q, front, is_last, now_ms, &result.next_ready_ms)) break;
    if (taken > 0 && bytes + front.size_bytes() > options_.max_request_size) {
      break;
    }
    if (options_.idempotent) {
      if (taken > 0 && is_retry(front) && front.maybe_written()) {
        break;  // it goes alone, later
      }
      if (front.send_index() < 0 && !q.unresolved.empty() &&
          q.next_send_index - *q.unresolved.begin() >=
              options_.max_in_flight_per_partition) {
        break;  // outside the window of the oldest unresolved request
      }
    }
    bytes += front.size_bytes();
    ++taken;
    if (is_last) q.open_back = false;
    if (options_.idempotent && front.generation() != q.identity.generation) {
      front.SetProducerState(q.identity.producer_id, q.identity.producer_epoch,
                             q.next_sequence, q.identity.generation);
      q.next_sequence += front.record_count();
    }
    if (options_.idempotent && front.send_index() < 0) {
      front.set_send_index(q.next_send_index);  // this drained request's
      q.unresolved.insert(front.send_index());
      new_request = true;
    }
    if (options_.idempotent) {
      front.set_sent_as_oldest(front.sequence() == q.acked_sequence);
    }
    result.ready.push_back(std::move(q.batches.front()));
    q.batches.pop_front();
    if (retry_alone) break;
  }
  if (new_request) ++q.next_send_index;
  if (taken > 0) {
    ++q.in_flight;
    if (retry_alone) q.retry_in_flight = true;
  }
}

RecordAccumulator::DrainResult RecordAccumulator::Drain(
    int64_t now_ms, const ProducerIdentity* identity) {
  DrainResult result;
  absl::MutexLock lock(&mu_);
  work_ = false;
  for (auto& [tp, q] : queues_) {
    DrainPartitionLocked(q, now_ms, identity, result);
  }
  return result;
}

void RecordAccumulator::Unmute(const TopicPartition& tp) {
  absl::MutexLock lock(&mu_);
  auto it = queues_.find(tp);
  RUNNEL_CHECK(it != queues_.end());
  RUNNEL_CHECK(it->second.in_flight > 0);
  if (--it->second.in_flight == 0) it->second.retry_in_flight = false;
  work_ = true;
  work_cv_.Signal();
}

void RecordAccumulator::OnAcked(const ProducerBatch& batch) {
  if (!batch.has_sequence()) return;
  absl::MutexLock lock(&mu_);
  PartitionQueue& q = queues_[batch.topic_partition()];
  if (batch.generation() != q.identity.generation) return;
  q.acked_sequence =
      std::max(q.acked_sequence, batch.sequence() + batch.record_count());
}

uint64_t RecordAccumulator::OldestIncomplete(const TopicPartition& tp) const {
  absl::MutexLock lock(&mu_);
  auto it = queues_.find(tp);
  if (it == queues_.end() || it->second.incomplete.empty()) {
    return std::numeric_limits<uint64_t>::max();
  }
  return *it->second.incomplete.begin();
}

void RecordAccumulator::ResetSequences(const TopicPartition& tp) {
  absl::MutexLock lock(&mu_);
  queues_[tp].reset = true;
  work_ = true;
  work_cv_.Signal();
}

void RecordAccumulator::Reenqueue(
    std::vector<std::unique_ptr<ProducerBatch>> batches, int64_t now_ms,
    bool backoff) {
  absl::MutexLock lock(&mu_);
  std::vector<TopicPartition> finished;
  for (auto& batch : batches) {
    batch->set_retry_after_ms(now_ms +
                              (backoff ? options_.retry_backoff_ms : 0));
    PartitionQueue& q = queues_[batch->topic_partition()];
    if (finished.empty() || finished.back() != batch->topic_partition()) {
      finished.push_back(batch->topic_partition());
    }
    // Creation order (batch ids grow per partition): batches of several
    // failed requests come back in any order, and retry in the original.
    auto pos = std::find_if(q.batches.begin(), q.batches.end(),
                            [&](const std::unique_ptr<ProducerBatch>& b) {
                              return b->id() > batch->id();
                            });
    q.batches.insert(pos, std::move(batch));
  }
  for (const TopicPartition& tp : finished) {
    PartitionQueue& q = queues_[tp];
    if (q.in_flight > 0 && --q.in_flight == 0) q.retry_in_flight = false;
  }
  work_ = true;
  work_cv_.Signal();
}

void RecordAccumulator::Deallocate(std::unique_ptr<ProducerBatch> batch) {
  absl::MutexLock lock(&mu_);
  RUNNEL_CHECK(used_memory_ >= batch->reserved_bytes());
  used_memory_ -= batch->reserved_bytes();
  incomplete_.erase(batch->id());
  PartitionQueue& q = queues_[batch->topic_partition()];
  q.incomplete.erase(batch->id());
  if (batch->send_index() >= 0) {
    q.unresolved.erase(q.unresolved.find(batch->send_index()));
  }
  memory_cv_.SignalAll();
  done_cv_.SignalAll();
}

void RecordAccumulator::AwaitWork(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  if (!work_) work_cv_.WaitWithTimeout(&mu_, timeout);
}

void RecordAccumulator::Wakeup() {
  absl::MutexLock lock(&mu_);
  work_ = true;
  work_cv_.Signal();
}

bool RecordAccumulator::Flush(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  ++flushes_;
  work_ = true;
  work_cv_.Signal();
  const uint64_t last_id = next_batch_id_ - 1;
  bool done = true;
  while (!incomplete_.empty() && *incomplete_.begin() <= last_id) {
    if (done_cv_.WaitWithDeadline(&mu_, deadline)) {
      done = incomplete_.empty() || *incomplete_.begin() > last_id;
      break;
    }
  }
  --flushes_;
  return done;
}

void RecordAccumulator::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  memory_cv_.SignalAll();
  work_ = true;
  work_cv_.Signal();
}

std::vector<std::unique_ptr<ProducerBatch>> RecordAccumulator::AbortQueued() {
  std::vector<std::unique_ptr<ProducerBatch>> out;
  absl::MutexLock lock(&mu_);
  for (auto& [tp, q] : queues_) {
    for (auto& b : q.batches) out.push_back(std::move(b));
    q.batches.clear();
    q.open_back = false;
  }
  return out;
}

bool RecordAccumulator::closed() const {
  absl::MutexLock lock(&mu_);
  return closed_;
}

size_t RecordAccumulator::incomplete_batches() const {
  absl::MutexLock lock(&mu_);
  return incomplete_.size();
}

size_t RecordAccumulator::used_memory() const {
  absl::MutexLock lock(&mu_);
  return used_memory_;
}

int RecordAccumulator::blocked_appends() const {
  absl::MutexLock lock(&mu_);
  return blocked_;
}

}  // namespace runnel::client
