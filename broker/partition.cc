#include "broker/partition.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "spdlog/spdlog.h"

#include "broker/errors.h"
#include "common/check.h"
#include "log/checkpoint_file.h"
#include "log/leader_epoch_cache.h"
#include "log/record_batch.h"

namespace runnel::broker {
namespace {

// A failed log call in terms of the protocol's error kinds.
absl::Status ClassifyLogError(absl::Status status, ErrorKind invalid_kind) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      return WithKind(std::move(status), invalid_kind);
    case absl::StatusCode::kOutOfRange:
      return WithKind(std::move(status), ErrorKind::kOffsetOutOfRange);
    case absl::StatusCode::kFailedPrecondition:  // the log is closed
      return WithKind(std::move(status), ErrorKind::kBrokerNotAvailable);
    default:
      return WithKind(std::move(status), ErrorKind::kStorageError);
  }
}

}  // namespace

Partition::Partition(TopicPartition id, log::PartitionLog* log,
                     std::unique_ptr<ReplicaState> replica,
                     PartitionOptions options)
    : id_(std::move(id)),
      log_(log),
      replica_(std::move(replica)),
      timers_(options.timers),
      reorder_wait_(options.reorder_wait),
      clock_(options.clock),
      producer_id_expiration_(options.producer_id_expiration),
      producer_id_expiration_check_interval_(
          options.producer_id_expiration_check_interval),
      producer_state_(options.clock),
      last_expiry_check_ms_(options.clock->NowMs()),
      max_message_bytes_(log->config().max_message_bytes),
      compacted_(log->config().compact()) {}

Partition::~Partition() {
  FailParked(MakeError(ErrorKind::kBrokerNotAvailable,
                       absl::StrCat(id_.ToString(), " is closing")));
}

absl::Status Partition::CheckLive() const {
  if (deleted_) {
    return MakeError(
        ErrorKind::kUnknownTopicOrPartition,
        absl::StrCat("partition ", id_.ToString(), " was deleted"));
  }
  if (!replica_->is_leader()) {
    return MakeError(ErrorKind::kNotLeader,
                     absl::StrCat("not the leader of ", id_.ToString()));
  }
  return absl::OkStatus();
}

absl::Status Partition::ValidateBatches(const log::RecordBytes& records,
                                        std::vector<BatchHead>* heads) const {
  if (records.empty()) {
    return MakeError(ErrorKind::kInvalidRequest,
                     absl::StrCat(id_.ToString(), ": no record batches"));
  }
  const size_t max_bytes =
      static_cast<size_t>(max_message_bytes_.load(std::memory_order_relaxed));
  std::vector<std::string_view> body;
  for (size_t pos = 0; pos < records.size();) {
    BatchHead& head = heads->emplace_back();
    const size_t available = records.size() - pos;
    const size_t copied = std::min(available, log::kBatchHeaderSize);
    records.CopyTo(pos, copied, head.header.data());
    const std::string_view header(head.header.data(), copied);
    absl::StatusOr<size_t> size = log::FrameBatchHead(header, available);
    if (!size.ok()) {
      return MakeError(ErrorKind::kCorruptMessage,
                       absl::StrCat(id_.ToString(), ": batch at byte ", pos,
                                    ": ", size.status().message()));
    }
    if (*size > max_bytes) {
      return MakeError(
          ErrorKind::kRecordTooLarge,
          absl::StrCat(id_.ToString(), ": batch at byte ", pos, " has ", *size,
                       " bytes, max.message.bytes is ", max_bytes));
    }
    body.clear();
    records.Slice(pos + log::kBatchHeaderSize, *size - log::kBatchHeaderSize,
                  body);
    const log::RecordBatchView view = head.view();
    if (log::ComputeBatchCrc(header, body) != view.crc()) {
      return MakeError(ErrorKind::kCorruptMessage,
                       absl::StrCat(id_.ToString(), ": batch at byte ", pos,
                                    ": crc mismatch"));
    }
    // Control batches (transaction markers) are the broker's own, as in
    // Kafka: consumers skip them, and compaction keeps them.
    if (view.is_control()) {
      return MakeError(ErrorKind::kInvalidRecord,
                       absl::StrCat(id_.ToString(), ": batch at byte ", pos,
                                    ": control batches are written by the "
                                    "broker only"));
    }
    // The rest of ValidateBatch (records, codec, counts, timestamps) here
    // too, so the log is told not to check the batches again.
    const log::ValidateOptions validate{
        .max_batch_bytes = max_bytes,
        .check_crc = false,
        .require_keys = compacted_.load(std::memory_order_relaxed)};
    if (absl::Status s = log::ValidateBatchPieces(header, body, validate);
        !s.ok()) {
      return MakeError(ErrorKind::kInvalidRecord,
                       absl::StrCat(id_.ToString(), ": batch at byte ", pos,
                                    ": ", s.message()));
    }
    pos += *size;
  }
  return absl::OkStatus();
}

void Partition::Produce(log::RecordBytes records, Acks acks,
                        std::function<void(ProduceResult)> done) {
  absl::ReaderMutexLock lock(&ops_mu_);
  ProduceResult result;
  if (result.status = CheckLive(); !result.status.ok()) return done(result);
  std::vector<BatchHead> heads;
  if (result.status = ValidateBatches(records, &heads); !result.status.ok()) {
    return done(result);
  }
  const size_t size = records.size();
  const int batches = static_cast<int>(heads.size());
  const bool idempotent = std::any_of(
      heads.begin(), heads.end(),
      [](const BatchHead& h) { return h.view().producer_id() >= 0; });
  if (!idempotent) {
    result.status = AppendToLog(std::move(records), result);
    return FinishProduce(std::move(result), acks, size, batches, false,
                         std::move(done));
  }
  IdempotentRequest request;
  for (const BatchHead& head : heads) {
    const log::RecordBatchView view = head.view();
    request.headers.push_back(BatchHeader{ProducerBatchId::Of(view),
                                          view.last_offset_delta(),
                                          view.max_timestamp()});
    request.ids.push_back(request.headers.back().id);
  }
  request.records = std::move(records);
  request.acks = acks;
  request.done = std::move(done);
  request.bytes = size;
  request.batches = batches;
  for (IdempotentRequest& decided : ProduceIdempotent(std::move(request))) {
    FinishProduce(std::move(decided.result), decided.acks, decided.bytes,
                  decided.batches, decided.duplicate, std::move(decided.done));
  }
}

void Partition::FinishProduce(ProduceResult result, Acks acks, size_t bytes,
                              int batches, bool duplicate,
                              std::function<void(ProduceResult)> done) {
  if (!result.status.ok()) return done(std::move(result));
  result.log_start_offset = log_->log_start_offset();
  if (!duplicate) {
    bytes_in_.fetch_add(bytes, std::memory_order_relaxed);
    batches_in_.fetch_add(batches, std::memory_order_relaxed);
    replica_->OnLeaderAppend(result.last_offset);
  }
  if (acks != Acks::kAll) return done(std::move(result));
  // A duplicate is answered like its original: once that is committed.
  replica_->WhenCommitted(result.last_offset, [result, done = std::move(done)](
                                                  absl::Status status) mutable {
    if (!status.ok()) {
      result.status = ClassifyLogError(status, ErrorKind::kStorageError);
    }
    done(std::move(result));
  });
}

absl::Status Partition::AppendToLog(log::RecordBytes records,
                                    ProduceResult& result) {
  absl::StatusOr<log::PartitionLog::AppendResult> appended =
      log_->Append(std::move(records), replica_->leader_epoch(),
                   log::BatchValidation::kCallerValidated);
  if (!appended.ok()) {
    return ClassifyLogError(appended.status(), ErrorKind::kInvalidRecord);
  }
  result.base_offset = appended->base_offset;
  result.last_offset = appended->last_offset;
  result.log_append_time_ms = appended->log_append_time_ms;
  return absl::OkStatus();
}

std::vector<Partition::IdempotentRequest> Partition::ProduceIdempotent(
    IdempotentRequest request) {
  std::vector<IdempotentRequest> decided;
  uint64_t parked_id = 0;
  {
    // Held across check, append and update: two requests of one producer
    // racing must not both pass the check and both append.
    absl::MutexLock lock(&producer_mu_);
    if (!TryAppendIdempotent(request)) {
      if (timers_ == nullptr) {
        request.result.status =
            MakeError(ErrorKind::kOutOfOrderSequence,
                      absl::StrCat(id_.ToString(),
                                   ": a batch is ahead of its producer's "
                                   "sequence"));
        decided.push_back(std::move(request));
        return decided;
      }
      parked_id = request.park_id = next_park_id_++;
      parked_.push_back(std::move(request));
    } else {
      decided.push_back(std::move(request));
      // Each append may let parked requests follow, oldest first.
      bool progress = decided.back().result.status.ok() &&
                      !decided.back().duplicate && !parked_.empty();
      while (progress) {
        progress = false;
        for (auto it = parked_.begin(); it != parked_.end(); ++it) {
          if (!TryAppendIdempotent(*it)) continue;
          progress = it->result.status.ok() && !it->duplicate;
          decided.push_back(std::move(*it));
          parked_.erase(it);
          break;
        }
      }
    }
  }
  // Outside producer_mu_: after Stop() the queue runs the callback at once.
  // A resumed request's timer finds nothing when it fires.
  if (parked_id != 0) {
    timers_->RunAt(absl::Now() + reorder_wait_,
                   [weak = weak_from_this(), parked_id] {
                     if (auto self = weak.lock()) self->ExpireParked(parked_id);
                   });
  }
  return decided;
}

void Partition::RemoveExpiredProducers(bool force) {
  const int64_t now_ms = clock_->NowMs();
  if (!force &&
      now_ms - last_expiry_check_ms_ <
          absl::ToInt64Milliseconds(producer_id_expiration_check_interval_)) {
    return;
  }
  last_expiry_check_ms_ = now_ms;
  if (const size_t removed =
          producer_state_.RemoveExpired(producer_id_expiration_);
      removed > 0) {
    spdlog::info("{}: forgot {} producer ids idle for {} or longer",
                 id_.ToString(), removed,
                 absl::FormatDuration(producer_id_expiration_));
  }
}

absl::Status Partition::SequenceError(const absl::Status& check) const {
  return WithKind(absl::Status(check.code(), absl::StrCat(id_.ToString(), ": ",
                                                          check.message())),
                  ErrorKindOf(check));
}

bool Partition::TryAppendIdempotent(IdempotentRequest& request) {
  RemoveExpiredProducers(/*force=*/false);
  absl::StatusOr<SequenceDecision> decision =
      producer_state_.Check(request.ids);
  if (!decision.ok() && producer_state_.AwaitsEarlierBatch(request.ids)) {
    return false;
  }
  if (!decision.ok()) {
    request.result.status = SequenceError(decision.status());
    return true;
  }
  if (decision->duplicate) {
    request.duplicate = true;
    request.result.base_offset = decision->first_offset;
    request.result.last_offset = decision->last_offset;
    return true;
  }
  request.result.status =
      AppendToLog(std::move(request.records), request.result);
  if (!request.result.status.ok()) return true;
  log::Offset first = request.result.base_offset;
  for (const BatchHeader& h : request.headers) {
    const log::Offset last = first + h.last_offset_delta;
    producer_state_.OnAppended(h.id, first, last,
                               request.result.log_append_time_ms >= 0
                                   ? request.result.log_append_time_ms
                                   : h.max_timestamp);
    first = last + 1;
  }
  return true;
}

void Partition::ExpireParked(uint64_t park_id) {
  std::optional<IdempotentRequest> expired;
  {
    absl::MutexLock lock(&producer_mu_);
    auto it = std::find_if(
        parked_.begin(), parked_.end(),
        [park_id](const IdempotentRequest& r) { return r.park_id == park_id; });
    if (it == parked_.end()) return;  // resumed, or failed
    absl::StatusOr<SequenceDecision> decision = producer_state_.Check(it->ids);
    expired = std::move(*it);
    parked_.erase(it);
    expired->result.status =
        decision.ok()
            ? MakeError(ErrorKind::kOutOfOrderSequence,
                        absl::StrCat(id_.ToString(),
                                     ": the batch before this one did not "
                                     "arrive within ",
                                     absl::FormatDuration(reorder_wait_)))
            : SequenceError(decision.status());
  }
  expired->done(std::move(expired->result));
}

void Partition::FailParked(const absl::Status& status) {
  std::vector<IdempotentRequest> parked;
  {
    absl::MutexLock lock(&producer_mu_);
    parked.swap(parked_);
  }
  for (IdempotentRequest& request : parked) {
    request.result.status = status;
    request.done(std::move(request.result));
  }
}

namespace {

// In the partition directory (docs/log-format.md).
constexpr char kProducerSnapshotFile[] = "producer-state.snapshot";

}  // namespace

absl::Status Partition::RebuildProducerState() {
  absl::ReaderMutexLock lock(&ops_mu_);
  absl::MutexLock producer_lock(&producer_mu_);
  const std::string path =
      absl::StrCat(log_->dir(), "/", kProducerSnapshotFile);
  absl::StatusOr<std::string> bytes = log::ReadWholeFile(path);
  if (!bytes.ok() && !absl::IsNotFound(bytes.status())) {
    spdlog::warn("{}: ignoring the producer snapshot: {}", id_.ToString(),
                 bytes.status().ToString());
  }
  if (bytes.ok()) {
    std::error_code ec;
    std::filesystem::remove(path, ec);  // never used twice (see header)
    // Only while the log still reaches the snapshot's offset, and only if
    // the batches after it are no more than the rebuild below would read.
    const log::Offset window = ProducerStateManager::RebuildStart(*log_);
    absl::StatusOr<log::Offset> at = producer_state_.LoadSnapshot(*bytes);
    if (at.ok() && *at <= log_->log_end_offset() && *at >= window) {
      return producer_state_.ApplyLogFrom(*log_, *at);
    }
    spdlog::warn("{}: ignoring the producer snapshot: {}", id_.ToString(),
                 at.ok() ? absl::StrCat("offset ", *at, " is outside [", window,
                                        ", ", log_->log_end_offset(), "]")
                         : at.status().ToString());
    producer_state_.Clear();
  }
  return producer_state_.RebuildFromLog(*log_);
}

absl::Status Partition::WriteProducerSnapshot() {
  absl::ReaderMutexLock lock(&ops_mu_);
  if (deleted_) return absl::OkStatus();
  absl::MutexLock producer_lock(&producer_mu_);
  RemoveExpiredProducers(/*force=*/true);
  // Under producer_mu_ every idempotent batch below the log end is in the
  // state (they are appended under it).
  return log::WriteFileAtomically(
      absl::StrCat(log_->dir(), "/", kProducerSnapshotFile),
      producer_state_.EncodeSnapshot(log_->log_end_offset()));
}

ReadResult Partition::Read(log::Offset fetch_offset, size_t max_bytes,
                           bool first_batch_may_exceed) {
  absl::ReaderMutexLock lock(&ops_mu_);
  ReadResult result;
  if (result.status = CheckLive(); !result.status.ok()) return result;
  // HW first: the log end read after it is never below it.
  result.high_watermark = replica_->high_watermark();
  result.log_start_offset = log_->log_start_offset();
  result.log_end_offset = log_->log_end_offset();
  if (fetch_offset < result.log_start_offset ||
      fetch_offset > result.log_end_offset) {
    result.status =
        MakeError(ErrorKind::kOffsetOutOfRange,
                  absl::StrCat(id_.ToString(), ": fetch offset ", fetch_offset,
                               " is outside [", result.log_start_offset, ", ",
                               result.log_end_offset, "]"));
    return result;
  }
  // One read, from one segment (like Kafka's LogSegment.read): a fetch
  // that reaches the end of a segment gets the next one on the next fetch.
  // Appending a second read would copy the whole first one, and its first
  // batch would overshoot max_bytes.
  if (fetch_offset < result.high_watermark) {
    absl::StatusOr<log::PartitionLog::ReadResult> read = log_->Read(
        fetch_offset, max_bytes, result.high_watermark, first_batch_may_exceed);
    if (!read.ok()) {
      result.status =
          ClassifyLogError(read.status(), ErrorKind::kOffsetOutOfRange);
      return result;
    }
    result.records = std::move(read->bytes);
  }
  bytes_out_.fetch_add(result.records.size(), std::memory_order_relaxed);
  return result;
}

absl::StatusOr<log::RecordTimestamp> Partition::ListOffset(int64_t timestamp) {
  absl::ReaderMutexLock lock(&ops_mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  if (timestamp == kEarliestTimestamp) {
    return log::RecordTimestamp{log_->log_start_offset(), log::kNoTimestamp};
  }
  if (timestamp == kLatestTimestamp) {
    return log::RecordTimestamp{replica_->high_watermark(), log::kNoTimestamp};
  }
  if (timestamp < 0) {
    return MakeError(ErrorKind::kInvalidRequest,
                     absl::StrCat("bad ListOffsets timestamp ", timestamp));
  }
  const log::Offset hw = replica_->high_watermark();
  absl::StatusOr<log::RecordTimestamp> found =
      log_->RecordForTimestamp(timestamp);
  if (!found.ok()) {
    return ClassifyLogError(found.status(), ErrorKind::kInvalidRequest);
  }
  if (found->offset == log::kNoOffset || found->offset >= hw) {
    return log::RecordTimestamp{};
  }
  return *found;
}

PartitionState Partition::State() const {
  absl::ReaderMutexLock lock(&ops_mu_);
  PartitionState state;
  state.leader_id = replica_->leader_id();
  state.leader_epoch = replica_->leader_epoch();
  state.replicas = replica_->replicas();
  state.isr = replica_->isr();
  if (deleted_) return state;
  state.high_watermark = replica_->high_watermark();
  state.log_start_offset = log_->log_start_offset();
  state.log_end_offset = log_->log_end_offset();
  state.size_bytes = log_->size_bytes();
  return state;
}

void Partition::SetConfig(const log::LogConfig& config) {
  absl::ReaderMutexLock lock(&ops_mu_);
  if (deleted_) return;
  log_->SetConfig(config);
  max_message_bytes_.store(config.max_message_bytes, std::memory_order_relaxed);
  compacted_.store(config.compact(), std::memory_order_relaxed);
}

void Partition::MarkDeleted() {
  {
    absl::WriterMutexLock lock(&ops_mu_);
    deleted_ = true;
  }
  FailParked(
      MakeError(ErrorKind::kUnknownTopicOrPartition,
                absl::StrCat("partition ", id_.ToString(), " was deleted")));
}

}  // namespace runnel::broker
