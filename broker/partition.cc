#include "broker/partition.h"

#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

#include "broker/errors.h"
#include "common/check.h"
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

// How long an idempotent batch that arrived before its predecessor waits
// for it (see AppendIdempotent).
constexpr absl::Duration kReorderWait = absl::Milliseconds(50);

// The header fields of one batch the producer state needs.
struct BatchHeader {
  ProducerBatchId id;
  int32_t last_offset_delta = 0;
  int64_t max_timestamp = -1;
};

// Whether any batch of `records` (validated: whole, framed batches) comes
// from an idempotent producer. Header reads only, no CRC.
bool AnyIdempotent(absl::string_view records) {
  size_t pos = 0;
  while (pos < records.size()) {
    absl::StatusOr<log::RecordBatchView> view = log::RecordBatchView::Parse(
        std::string_view(records.data() + pos, records.size() - pos));
    if (!view.ok()) return false;  // ValidateBatches framed them all
    if (view->producer_id() >= 0) return true;
    pos += view->size_bytes();
  }
  return false;
}

std::vector<BatchHeader> BatchHeaders(absl::string_view records) {
  std::vector<BatchHeader> headers;
  size_t pos = 0;
  while (pos < records.size()) {
    absl::StatusOr<log::RecordBatchView> view = log::RecordBatchView::Parse(
        std::string_view(records.data() + pos, records.size() - pos));
    RUNNEL_CHECK(view.ok());  // ValidateBatches framed them all
    headers.push_back(BatchHeader{ProducerBatchId::Of(*view),
                                  view->last_offset_delta(),
                                  view->max_timestamp()});
    pos += view->size_bytes();
  }
  return headers;
}

}  // namespace

Partition::Partition(TopicPartition id, log::PartitionLog* log,
                     std::unique_ptr<ReplicaState> replica)
    : id_(std::move(id)),
      log_(log),
      replica_(std::move(replica)),
      max_message_bytes_(log->config().max_message_bytes) {}

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

absl::Status Partition::ValidateBatches(absl::string_view records,
                                        int* batch_count) const {
  if (records.empty()) {
    return MakeError(ErrorKind::kInvalidRequest,
                     absl::StrCat(id_.ToString(), ": no record batches"));
  }
  const size_t max_bytes =
      static_cast<size_t>(max_message_bytes_.load(std::memory_order_relaxed));
  size_t pos = 0;
  *batch_count = 0;
  while (pos < records.size()) {
    absl::StatusOr<log::RecordBatchView> view = log::RecordBatchView::Parse(
        std::string_view(records.data() + pos, records.size() - pos),
        log::BatchSource::kWire);
    if (!view.ok()) {
      return MakeError(ErrorKind::kCorruptMessage,
                       absl::StrCat(id_.ToString(), ": batch at byte ", pos,
                                    ": ", view.status().message()));
    }
    if (view->size_bytes() > max_bytes) {
      return MakeError(
          ErrorKind::kRecordTooLarge,
          absl::StrCat(id_.ToString(), ": batch at byte ", pos, " has ",
                       view->size_bytes(), " bytes, max.message.bytes is ",
                       max_bytes));
    }
    if (!view->CrcMatches()) {
      return MakeError(ErrorKind::kCorruptMessage,
                       absl::StrCat(id_.ToString(), ": batch at byte ", pos,
                                    ": crc mismatch"));
    }
    // The rest of ValidateBatch (records, codec, counts, timestamps) here
    // too, so the log is told not to check the batches again.
    const log::ValidateOptions validate{.max_batch_bytes = max_bytes,
                                        .check_crc = false};
    if (absl::Status s = log::ValidateBatch(view->bytes(), validate); !s.ok()) {
      return MakeError(ErrorKind::kInvalidRecord,
                       absl::StrCat(id_.ToString(), ": batch at byte ", pos,
                                    ": ", s.message()));
    }
    pos += view->size_bytes();
    ++*batch_count;
  }
  return absl::OkStatus();
}

void Partition::Produce(std::string records, Acks acks,
                        std::function<void(ProduceResult)> done) {
  absl::ReaderMutexLock lock(&ops_mu_);
  ProduceResult result;
  int batches = 0;
  if (result.status = CheckLive(); !result.status.ok()) return done(result);
  if (result.status = ValidateBatches(records, &batches); !result.status.ok()) {
    return done(result);
  }
  const size_t size = records.size();
  bool duplicate = false;
  if (AnyIdempotent(records)) {
    result.status = AppendIdempotent(std::move(records), result, &duplicate);
  } else {
    result.status = AppendToLog(std::move(records), result);
  }
  if (!result.status.ok()) return done(result);
  result.log_start_offset = log_->log_start_offset();
  if (!duplicate) {
    bytes_in_.fetch_add(size, std::memory_order_relaxed);
    batches_in_.fetch_add(batches, std::memory_order_relaxed);
    replica_->OnLeaderAppend(result.last_offset);
  }
  if (acks != Acks::kAll) return done(result);
  // A duplicate is answered like its original: once that is committed.
  replica_->WhenCommitted(result.last_offset, [result, done = std::move(done)](
                                                  absl::Status status) mutable {
    if (!status.ok()) {
      result.status = ClassifyLogError(status, ErrorKind::kStorageError);
    }
    done(std::move(result));
  });
}

absl::Status Partition::AppendToLog(std::string records,
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

absl::Status Partition::AppendIdempotent(std::string records,
                                         ProduceResult& result,
                                         bool* duplicate) {
  const std::vector<BatchHeader> headers = BatchHeaders(records);
  std::vector<ProducerBatchId> ids;
  ids.reserve(headers.size());
  for (const BatchHeader& h : headers) ids.push_back(h.id);
  // Held across check, append and update: two requests of one producer
  // racing must not both pass the check and both append.
  absl::MutexLock lock(&producer_mu_);
  absl::StatusOr<SequenceDecision> decision = producer_state_.Check(ids);
  // gRPC may hand two requests of one producer that are in flight together
  // to two threads in either order: a batch that arrives just before its
  // predecessor waits for it a little instead of being refused (which would
  // cost the producer a retry round trip). Bounded, so a predecessor that
  // never comes only delays the OUT_OF_ORDER_SEQUENCE answer.
  const absl::Time deadline = absl::Now() + kReorderWait;
  while (!decision.ok() && producer_state_.AwaitsEarlierBatch(ids) &&
         !producer_appended_.WaitWithDeadline(&producer_mu_, deadline)) {
    decision = producer_state_.Check(ids);
  }
  if (!decision.ok()) {
    return WithKind(absl::Status(decision.status().code(),
                                 absl::StrCat(id_.ToString(), ": ",
                                              decision.status().message())),
                    ErrorKindOf(decision.status()));
  }
  if (decision->duplicate) {
    *duplicate = true;
    result.base_offset = decision->first_offset;
    result.last_offset = decision->last_offset;
    return absl::OkStatus();
  }
  if (absl::Status s = AppendToLog(std::move(records), result); !s.ok()) {
    return s;
  }
  log::Offset first = result.base_offset;
  for (const BatchHeader& h : headers) {
    const log::Offset last = first + h.last_offset_delta;
    producer_state_.OnAppended(h.id, first, last,
                               result.log_append_time_ms >= 0
                                   ? result.log_append_time_ms
                                   : h.max_timestamp);
    first = last + 1;
  }
  producer_appended_.SignalAll();
  return absl::OkStatus();
}

absl::Status Partition::RebuildProducerState() {
  absl::ReaderMutexLock lock(&ops_mu_);
  absl::MutexLock producer_lock(&producer_mu_);
  return producer_state_.RebuildFromLog(*log_);
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
}

void Partition::MarkDeleted() {
  absl::WriterMutexLock lock(&ops_mu_);
  deleted_ = true;
}

}  // namespace runnel::broker
