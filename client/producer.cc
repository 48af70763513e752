#include "runnel/producer.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

#include "client/metadata.h"
#include "client/produce_encoding.h"
#include "client/produce_stream.h"
#include "client/record_accumulator.h"
#include "client/rpc.h"
#include "common/check.h"
#include "common/clock.h"
#include "common/status_macros.h"

#include "runnel/partitioner.h"

namespace runnel::client {

namespace {

log::Compression ToLogCompression(Compression c) {
  switch (c) {
    case Compression::kNone:
      return log::Compression::kNone;
    case Compression::kGzip:
      return log::Compression::kGzip;
    case Compression::kSnappy:
      return log::Compression::kSnappy;
    case Compression::kLz4:
      return log::Compression::kLz4;
    case Compression::kZstd:
      return log::Compression::kZstd;
  }
  return log::Compression::kNone;
}

v1::Acks ToWireAcks(Acks acks) {
  switch (acks) {
    case Acks::kNone:
      return v1::ACKS_NONE;
    case Acks::kLeader:
      return v1::ACKS_LEADER;
    case Acks::kAll:
      return v1::ACKS_ALL;
  }
  return v1::ACKS_ALL;
}

std::string PartitionName(const TopicPartition& tp) {
  return absl::StrCat(tp.topic, "-", tp.partition);
}

}  // namespace

// Owns the accumulator and the sender thread, which drains ready batches,
// groups them by leader into ProduceRequests and sends them with gRPC's
// callback API; responses complete, retry or fail the batches on gRPC's
// callback threads. Thread-safe.
class Producer::Impl {
 public:
  explicit Impl(ProducerOptions options);
  ~Impl();

  absl::Status Send(const ProducerRecord& record, DeliveryCallback callback);
  bool Flush(absl::Duration timeout) { return accumulator_.Flush(timeout); }
  void Close(absl::Duration timeout);
  absl::StatusOr<int32_t> PartitionCount(const std::string& topic) {
    return metadata_.PartitionCount(topic);
  }

 private:
  // One ProduceRequest in flight and the batches it carries, in request
  // order per partition.
  struct ProduceCall {
    v1::ProduceResponse response;
    std::string address;
    std::vector<
        std::pair<TopicPartition, std::vector<std::unique_ptr<ProducerBatch>>>>
        partitions;
  };

  void RunSender();
  void SendReady(std::vector<std::unique_ptr<ProducerBatch>> ready);
  void Dispatch(std::unique_ptr<ProduceCall> call);
  // Called back once per dispatched call (gRPC thread).
  void OnCallDone(ProduceCall* call, grpc::Status status,
                  v1::ProduceResponse* response);
  // Sends `call` on the stream to its broker, opening one when there is
  // none or it is ending.
  void SendOnStream(ProduceCall* call, uint64_t id,
                    const grpc::ByteBuffer& request);
  // Cancels the streams with an overdue request (sender thread).
  void ExpireOverdueStreams();
  void HandleResponse(ProduceCall* call, const grpc::Status& status);
  void HandlePartition(const TopicPartition& tp,
                       std::vector<std::unique_ptr<ProducerBatch>> batches,
                       const v1::PartitionProduceResponse* response,
                       const grpc::Status& rpc_status);
  // Fails or re-enqueues `batches` of one partition after a retriable error.
  void RetryOrFail(std::vector<std::unique_ptr<ProducerBatch>> batches,
                   const absl::Status& error, bool backoff = true);
  void FailAll(std::vector<std::unique_ptr<ProducerBatch>> batches,
               const absl::Status& error);
  // Completes (`status` OK: with the offsets) or fails `batch` and
  // deallocates it, in batch order per partition: a batch whose older
  // sibling is still unresolved (several requests in flight) waits for it.
  void Finish(std::unique_ptr<ProducerBatch> batch, absl::Status status,
              int64_t base_offset = -1, int64_t log_append_time_ms = -1);
  // Idempotent producer, sender thread: asks the bootstrap broker for a
  // (new) producer id when there is none or `renew`. False on failure (the
  // sender retries after retry_backoff_ms).
  bool EnsureIdentity(bool renew);
  // Idempotent producer: how an error answer for `batches` is handled.
  void HandleIdempotentError(
      const TopicPartition& tp,
      std::vector<std::unique_ptr<ProducerBatch>> batches,
      const v1::Error& wire_error, const absl::Status& error);

  const ProducerOptions options_;
  Clock* const clock_;
  ChannelPool pool_;
  Metadata metadata_;
  StickyPartitioner sticky_;
  RecordAccumulator accumulator_;

  absl::Mutex mu_;
  absl::CondVar calls_cv_;
  int in_flight_calls_ ABSL_GUARDED_BY(mu_) = 0;
  // How many streams have not ended yet (Close waits for them: their
  // callbacks use this object).
  int live_streams_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> metadata_stale_{false};
  // When the sender last refreshed the metadata (sender thread only).
  int64_t metadata_refreshed_ms_ = 0;
  // Sender thread only (and Close, after the sender stopped).
  ProducerIdentity identity_;
  // The ProduceStream per broker address, and replaced ones not yet ended.
  absl::flat_hash_map<std::string, std::unique_ptr<ProduceStream>> streams_;
  std::vector<std::unique_ptr<ProduceStream>> retired_;
  uint64_t next_correlation_id_ = 1;
  // Finished batches waiting for an older one of their partition, by id.
  struct Finished {
    std::unique_ptr<ProducerBatch> batch;
    absl::Status status;
    int64_t base_offset = -1;
    int64_t log_append_time_ms = -1;
  };
  struct FinishQueue {
    std::map<uint64_t, Finished> parked;
    bool running = false;  // a thread is running this partition's callbacks
  };
  absl::Mutex finish_mu_;  // taken before the accumulator's
  absl::flat_hash_map<TopicPartition, FinishQueue> finishing_
      ABSL_GUARDED_BY(finish_mu_);
  std::thread sender_;
};

namespace {

AccumulatorOptions MakeAccumulatorOptions(const ProducerOptions& o,
                                          Clock* clock) {
  AccumulatorOptions a;
  a.batch_size = o.batch_size;
  a.linger_ms = o.linger_ms;
  a.buffer_memory = o.buffer_memory;
  a.max_block_ms = o.max_block_ms;
  a.delivery_timeout_ms = o.delivery_timeout_ms;
  a.retry_backoff_ms = o.retry_backoff_ms;
  a.max_request_size = o.max_request_size;
  a.compression = ToLogCompression(o.compression);
  a.idempotent = o.enable_idempotence;
  a.max_in_flight_per_partition =
      o.enable_idempotence ? o.max_in_flight_requests_per_connection : 1;
  a.clock = clock;
  return a;
}

}  // namespace

Producer::Impl::Impl(ProducerOptions options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock
                                       : SystemClock::Default()),
      metadata_(&pool_, options_.bootstrap, options_.request_timeout_ms),
      sticky_(options_.partitioner_seed != 0 ? options_.partitioner_seed
                                             : std::random_device{}()),
      accumulator_(MakeAccumulatorOptions(options_, clock_)),
      metadata_refreshed_ms_(clock_->NowMs()) {
  sender_ = std::thread([this] { RunSender(); });
}

Producer::Impl::~Impl() { Close(absl::InfiniteDuration()); }

absl::Status Producer::Impl::Send(const ProducerRecord& record,
                                  DeliveryCallback callback) {
  RUNNEL_ASSIGN_OR_RETURN(const int32_t count,
                          metadata_.PartitionCount(record.topic));
  if (count <= 0) {
    return absl::UnavailableError(
        absl::StrCat("topic ", record.topic, " has no partitions"));
  }
  int32_t partition;
  bool sticky = false;
  if (record.partition.has_value()) {
    partition = *record.partition;
    if (partition < 0 || partition >= count) {
      return absl::InvalidArgumentError(
          absl::StrCat("partition ", partition, " out of range for topic ",
                       record.topic, " (", count, " partitions)"));
    }
  } else if (record.key.has_value()) {
    partition = PartitionForKey(*record.key, count);
  } else {
    partition = sticky_.Partition(record.topic, count);
    sticky = true;
  }
  // Views: Append copies the bytes into the batch before Send returns.
  absl::InlinedVector<log::RecordHeaderView, 4> headers;
  headers.reserve(record.headers.size());
  for (const Header& h : record.headers) {
    headers.push_back(log::RecordHeaderView{h.key, log::AsView(h.value)});
  }
  // Not value_or: that would read the clock also for a given timestamp.
  const int64_t timestamp =
      record.timestamp_ms.has_value() ? *record.timestamp_ms : clock_->NowMs();
  RUNNEL_ASSIGN_OR_RETURN(
      const RecordAccumulator::AppendResult result,
      accumulator_.Append(TopicPartitionRef(record.topic, partition), timestamp,
                          log::AsView(record.key), log::AsView(record.value),
                          std::span<const log::RecordHeaderView>(
                              headers.data(), headers.size()),
                          std::move(callback)));
  if (sticky && result.batch_closed) {
    sticky_.OnBatchCompleted(record.topic, partition, count);
  }
  return absl::OkStatus();
}

void Producer::Impl::Close(absl::Duration timeout) {
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
  }
  accumulator_.Close();
  if (!accumulator_.Flush(timeout)) {
    FailAll(accumulator_.AbortQueued(),
            absl::CancelledError("producer closed before delivery"));
  }
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  accumulator_.Wakeup();
  sender_.join();
  // In-flight calls end within request_timeout_ms; their callbacks use this
  // object, so wait for them.
  {
    absl::MutexLock lock(&mu_);
    while (in_flight_calls_ > 0) calls_cv_.Wait(&mu_);
    for (auto& [address, stream] : streams_) stream->CloseSend();
    while (live_streams_ > 0) calls_cv_.Wait(&mu_);
  }
  // Here, not on a gRPC thread (ProduceStream::Start).
  streams_.clear();
  retired_.clear();
  // A response that arrived while stopping may have re-enqueued its batches.
  FailAll(accumulator_.AbortQueued(),
          absl::CancelledError("producer closed before delivery"));
}

void Producer::Impl::RunSender() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stop_) break;
      // Back pressure towards the broker: bounded requests in flight.
      while (in_flight_calls_ >= options_.max_in_flight_requests && !stop_) {
        // Woken now and then to cancel a stream that stopped answering.
        if (calls_cv_.WaitWithTimeout(&mu_, absl::Milliseconds(100))) {
          mu_.Unlock();
          ExpireOverdueStreams();
          mu_.Lock();
        }
      }
      if (stop_) break;
    }
    ExpireOverdueStreams();
    const int64_t now_ms = clock_->NowMs();
    const bool aged =
        options_.metadata_max_age_ms > 0 &&
        now_ms - metadata_refreshed_ms_ >= options_.metadata_max_age_ms;
    if (metadata_stale_.exchange(false) || aged) {
      // Best effort: a failure shows up as a missing leader below.
      metadata_.Refresh({}).IgnoreError();
      metadata_refreshed_ms_ = now_ms;
    }
    bool identity_ok = true;
    // Lazily: only once there is something to send.
    if (options_.enable_idempotence && identity_.generation < 0 &&
        accumulator_.incomplete_batches() > 0) {
      identity_ok = EnsureIdentity(false);
    }
    const int64_t now = clock_->NowMs();
    RecordAccumulator::DrainResult drained = accumulator_.Drain(
        now, options_.enable_idempotence ? &identity_ : nullptr);
    if (drained.needs_new_identity && !EnsureIdentity(true)) {
      identity_ok = false;
    }
    for (auto& batch : drained.expired) {
      std::vector<std::unique_ptr<ProducerBatch>> one;
      one.push_back(std::move(batch));
      FailAll(std::move(one), absl::DeadlineExceededError(absl::StrCat(
                                  "record not sent within delivery.timeout.ms=",
                                  options_.delivery_timeout_ms)));
    }
    if (!drained.ready.empty()) {
      SendReady(std::move(drained.ready));
      continue;
    }
    if (drained.needs_new_identity && identity_ok) continue;
    int64_t wait_ms = 100;
    if (drained.next_ready_ms != std::numeric_limits<int64_t>::max()) {
      wait_ms = std::clamp<int64_t>(drained.next_ready_ms - now, 0, 100);
    }
    if (!identity_ok) {
      wait_ms = std::clamp<int64_t>(options_.retry_backoff_ms, 1, 100);
    }
    accumulator_.AwaitWork(absl::Milliseconds(wait_ms));
  }
}

void Producer::Impl::SendReady(
    std::vector<std::unique_ptr<ProducerBatch>> ready) {
  // Batches arrive grouped by partition in queue order; keep that order.
  // Each partition's group is one drained request of it (one Unmute or
  // Reenqueue when it does not go out).
  absl::flat_hash_map<std::string, std::unique_ptr<ProduceCall>> calls;
  std::vector<std::string> order;
  size_t i = 0;
  while (i < ready.size()) {
    const TopicPartition tp = ready[i]->topic_partition();
    std::vector<std::unique_ptr<ProducerBatch>> group;
    for (; i < ready.size() && ready[i]->topic_partition() == tp; ++i) {
      if (absl::Status s = ready[i]->Seal(); !s.ok()) {
        if (ready[i]->has_sequence()) accumulator_.ResetSequences(tp);
        Finish(std::move(ready[i]), s);
        continue;
      }
      group.push_back(std::move(ready[i]));
    }
    if (group.empty()) {
      accumulator_.Unmute(tp);
      continue;
    }
    std::string leader = metadata_.CachedLeaderAddress(tp);
    if (leader.empty()) {
      absl::StatusOr<std::string> looked_up = metadata_.LeaderAddress(tp);
      if (!looked_up.ok()) {
        RetryOrFail(std::move(group), looked_up.status());
        continue;
      }
      leader = *looked_up;
    }
    auto& call = calls[leader];
    if (call == nullptr) {
      call = std::make_unique<ProduceCall>();
      call->address = leader;
      order.push_back(leader);
    }
    call->partitions.emplace_back(tp, std::move(group));
  }
  for (const std::string& address : order) Dispatch(std::move(calls[address]));
}

void Producer::Impl::Dispatch(std::unique_ptr<ProduceCall> call) {
  // One topic entry per topic; the partitions of a topic in order. The
  // batches are referenced, not copied (client/produce_encoding.h).
  ProduceRequestParts request;
  request.acks = ToWireAcks(options_.acks);
  request.timeout_ms = static_cast<int32_t>(options_.request_timeout_ms);
  absl::flat_hash_map<std::string, size_t> topics;
  for (auto& [tp, batches] : call->partitions) {
    auto [it, added] = topics.emplace(tp.topic, request.topics.size());
    if (added) request.topics.push_back(ProduceTopicParts{tp.topic, {}});
    ProducePartitionParts& p =
        request.topics[it->second].partitions.emplace_back();
    p.partition = tp.partition;
    for (const auto& b : batches) {
      b->RecordAttempt();
      p.batches.push_back(b->shared_bytes());
    }
  }
  const uint64_t id = next_correlation_id_++;
  grpc::ByteBuffer bytes = SerializeProduceStreamRequest(id, request);
  {
    absl::MutexLock lock(&mu_);
    ++in_flight_calls_;
  }
  SendOnStream(call.release(), id, bytes);
}

void Producer::Impl::SendOnStream(ProduceCall* call, uint64_t id,
                                  const grpc::ByteBuffer& request) {
  // The broker answers acks=all by timeout_ms at the latest (with
  // REQUEST_TIMED_OUT), so this only catches a broker that hangs.
  const int64_t timeout_ms =
      options_.request_timeout_ms +
      std::max<int64_t>(1000, options_.request_timeout_ms);
  const absl::Time deadline = absl::Now() + absl::Milliseconds(timeout_ms);
  auto done = [this, call](const grpc::Status& status,
                           v1::ProduceResponse* response) {
    OnCallDone(call, status, response);
  };
  while (true) {
    std::unique_ptr<ProduceStream>& stream = streams_[call->address];
    if (stream == nullptr) {
      {
        absl::MutexLock lock(&mu_);
        ++live_streams_;
      }
      stream = ProduceStream::Start(pool_.Channel(call->address), [this] {
        absl::MutexLock lock(&mu_);
        --live_streams_;
        calls_cv_.SignalAll();
      });
    }
    if (stream->Send(id, request, deadline, done)) return;
    // Ending (failed, overdue): replaced by a new one.
    retired_.push_back(std::move(stream));
  }
}

void Producer::Impl::ExpireOverdueStreams() {
  const absl::Time now = absl::Now();
  for (const auto& [address, stream] : streams_) stream->ExpireOverdue(now);
  std::erase_if(retired_, [](const std::unique_ptr<ProduceStream>& stream) {
    return stream->ended();
  });
}

void Producer::Impl::OnCallDone(ProduceCall* call, grpc::Status status,
                                v1::ProduceResponse* response) {
  if (status.ok() && options_.testing_drop_response &&
      options_.testing_drop_response()) {
    status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "response dropped by a test hook");
  }
  if (status.ok() && response != nullptr) call->response.Swap(response);
  HandleResponse(call, status);
  delete call;
  absl::MutexLock lock(&mu_);
  --in_flight_calls_;
  calls_cv_.SignalAll();
}

void Producer::Impl::HandleResponse(ProduceCall* call,
                                    const grpc::Status& status) {
  absl::flat_hash_map<TopicPartition, const v1::PartitionProduceResponse*>
      results;
  if (status.ok()) {
    for (const v1::TopicProduceResponse& t : call->response.topics()) {
      for (const v1::PartitionProduceResponse& p : t.partitions()) {
        results[TopicPartition{t.name(), p.partition()}] = &p;
      }
    }
  }
  for (auto& [tp, batches] : call->partitions) {
    auto it = results.find(tp);
    HandlePartition(tp, std::move(batches),
                    it == results.end() ? nullptr : it->second, status);
  }
}

void Producer::Impl::HandlePartition(
    const TopicPartition& tp,
    std::vector<std::unique_ptr<ProducerBatch>> batches,
    const v1::PartitionProduceResponse* response,
    const grpc::Status& rpc_status) {
  if (!rpc_status.ok()) {
    absl::Status error =
        RpcToStatus(rpc_status, absl::StrCat("produce to ", PartitionName(tp)));
    // The request may have been handled with only the response lost.
    for (auto& b : batches) b->set_maybe_written();
    if (IsRetriableRpc(rpc_status)) {
      metadata_stale_ = true;
      RetryOrFail(std::move(batches), error);
    } else {
      // The broker may or may not have appended them.
      if (batches.front()->has_sequence()) accumulator_.ResetSequences(tp);
      FailAll(std::move(batches), error);
      accumulator_.Unmute(tp);
    }
    return;
  }
  if (response == nullptr) {
    if (batches.front()->has_sequence()) accumulator_.ResetSequences(tp);
    FailAll(std::move(batches),
            absl::InternalError(
                absl::StrCat("produce response lacks ", PartitionName(tp))));
    accumulator_.Unmute(tp);
    return;
  }
  if (HasError(response->error())) {
    absl::Status error = ErrorToStatus(response->error(), PartitionName(tp));
    if (NeedsMetadataRefresh(response->error().code())) {
      metadata_.Invalidate(tp.topic);
      metadata_stale_ = true;
    }
    if (options_.enable_idempotence) {
      HandleIdempotentError(tp, std::move(batches), response->error(), error);
    } else if (response->error().retriable()) {
      RetryOrFail(std::move(batches), error);
    } else {
      FailAll(std::move(batches), error);
      accumulator_.Unmute(tp);
    }
    return;
  }
  int64_t base = response->base_offset();
  for (auto& batch : batches) {
    accumulator_.OnAcked(*batch);
    const int32_t count = batch->record_count();
    Finish(std::move(batch), absl::OkStatus(), base,
           response->log_append_time_ms());
    if (base >= 0) base += count;
  }
  accumulator_.Unmute(tp);
}

void Producer::Impl::RetryOrFail(
    std::vector<std::unique_ptr<ProducerBatch>> batches,
    const absl::Status& error, bool backoff) {
  if (batches.empty()) return;
  const TopicPartition tp = batches.front()->topic_partition();
  const int64_t now = clock_->NowMs();
  bool closing;
  {
    absl::MutexLock lock(&mu_);
    closing = stop_;
  }
  // Batches of one partition expire in order: once the oldest may not be
  // retried, fail the ones before the first that still may, keeping order.
  std::vector<std::unique_ptr<ProducerBatch>> retry;
  for (auto& batch : batches) {
    const bool expired =
        closing || now + options_.retry_backoff_ms - batch->created_ms() >=
                       options_.delivery_timeout_ms;
    if (expired && retry.empty()) {
      // Its sequence may or may not be in the log: start over.
      if (batch->has_sequence()) accumulator_.ResetSequences(tp);
      std::vector<std::unique_ptr<ProducerBatch>> one;
      one.push_back(std::move(batch));
      FailAll(std::move(one),
              absl::Status(error.code(),
                           absl::StrCat(error.message(),
                                        " (gave up within "
                                        "delivery.timeout.ms=",
                                        options_.delivery_timeout_ms, ")")));
    } else {
      retry.push_back(std::move(batch));
    }
  }
  if (retry.empty()) {
    accumulator_.Unmute(tp);
  } else {
    accumulator_.Reenqueue(std::move(retry), now, backoff);
  }
}

bool Producer::Impl::EnsureIdentity(bool renew) {
  if (identity_.generation >= 0 && !renew) return true;
  grpc::ClientContext ctx;
  ctx.set_deadline(DeadlineAfterMs(options_.request_timeout_ms));
  v1::InitProducerIdRequest request;
  v1::InitProducerIdResponse response;
  grpc::Status status = pool_.Broker(metadata_.bootstrap())
                            ->InitProducerId(&ctx, request, &response);
  if (!status.ok() || HasError(response.error())) return false;
  identity_.producer_id = response.producer_id();
  identity_.producer_epoch = static_cast<int16_t>(response.producer_epoch());
  ++identity_.generation;
  accumulator_.Wakeup();
  return true;
}

void Producer::Impl::HandleIdempotentError(
    const TopicPartition& tp,
    std::vector<std::unique_ptr<ProducerBatch>> batches,
    const v1::Error& wire_error, const absl::Status& error) {
  const bool sequenced = !batches.empty() && batches.front()->has_sequence();
  switch (wire_error.code()) {
    case v1::OUT_OF_ORDER_SEQUENCE:
      // Fatal only when every earlier batch was acknowledged before this
      // one was sent: otherwise one was missing at the broker (being
      // retried, or handled after this one: gRPC may reorder requests in
      // flight). Nothing was written; it goes again, without backoff, once
      // the earlier requests answered.
      if (sequenced && !batches.front()->sent_as_oldest()) {
        return RetryOrFail(std::move(batches), error, /*backoff=*/false);
      }
      break;
    case v1::REQUEST_TIMED_OUT:
    case v1::STORAGE_ERROR:
    case v1::UNKNOWN:
      // Written or not: a retry may be a duplicate.
      for (auto& b : batches) b->set_maybe_written();
      if (wire_error.retriable()) return RetryOrFail(std::move(batches), error);
      break;
    case v1::UNKNOWN_PRODUCER_ID:
      // The broker forgot the producer (its state aged out of the log):
      // start the partition over under a new id and retry.
      accumulator_.ResetSequences(tp);
      return RetryOrFail(std::move(batches), error);
    default:
      if (wire_error.retriable()) return RetryOrFail(std::move(batches), error);
      break;
  }
  // Fatal for these batches; the later ones of the partition get new
  // sequences under a new producer id.
  if (sequenced) accumulator_.ResetSequences(tp);
  FailAll(std::move(batches), error);
  accumulator_.Unmute(tp);
}

void Producer::Impl::FailAll(
    std::vector<std::unique_ptr<ProducerBatch>> batches,
    const absl::Status& error) {
  for (auto& batch : batches) Finish(std::move(batch), error);
}

void Producer::Impl::Finish(std::unique_ptr<ProducerBatch> batch,
                            absl::Status status, int64_t base_offset,
                            int64_t log_append_time_ms) {
  const TopicPartition tp = batch->topic_partition();
  {
    absl::MutexLock lock(&finish_mu_);
    FinishQueue& q = finishing_[tp];
    const uint64_t id = batch->id();
    q.parked.emplace(id, Finished{std::move(batch), std::move(status),
                                  base_offset, log_append_time_ms});
    if (q.running) return;  // that thread runs this one too, in order
    q.running = true;
  }
  // Callbacks run without the lock: they may call Send.
  while (true) {
    Finished next;
    {
      absl::MutexLock lock(&finish_mu_);
      FinishQueue& q = finishing_[tp];
      if (q.parked.empty() ||
          q.parked.begin()->first != accumulator_.OldestIncomplete(tp)) {
        q.running = false;
        return;
      }
      next = std::move(q.parked.begin()->second);
      q.parked.erase(q.parked.begin());
    }
    if (next.status.ok()) {
      next.batch->Complete(next.base_offset, next.log_append_time_ms);
    } else {
      next.batch->Fail(next.status);
    }
    accumulator_.Deallocate(std::move(next.batch));
  }
}

// --- Producer ----------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Producer>> Producer::Create(
    ProducerOptions options) {
  if (options.bootstrap.empty()) {
    return absl::InvalidArgumentError("bootstrap address is empty");
  }
  if (options.batch_size == 0 || options.buffer_memory == 0 ||
      options.max_request_size == 0 || options.max_in_flight_requests <= 0) {
    return absl::InvalidArgumentError(
        "batch_size, buffer_memory, max_request_size and "
        "max_in_flight_requests must be positive");
  }
  if (options.enable_idempotence &&
      (options.max_in_flight_requests_per_connection < 1 ||
       options.max_in_flight_requests_per_connection > 5)) {
    return absl::InvalidArgumentError(
        "max_in_flight_requests_per_connection must be 1..5 with "
        "enable_idempotence");
  }
  if (options.linger_ms < 0 || options.max_block_ms < 0 ||
      options.delivery_timeout_ms <= 0 || options.request_timeout_ms <= 0 ||
      options.retry_backoff_ms < 0) {
    return absl::InvalidArgumentError("negative or zero timeout in options");
  }
  return std::unique_ptr<Producer>(
      new Producer(std::make_unique<Impl>(std::move(options))));
}

Producer::Producer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Producer::~Producer() = default;

absl::Status Producer::Send(const ProducerRecord& record,
                            DeliveryCallback callback) {
  return impl_->Send(record, std::move(callback));
}

std::future<absl::StatusOr<RecordMetadata>> Producer::Send(
    const ProducerRecord& record) {
  auto promise =
      std::make_shared<std::promise<absl::StatusOr<RecordMetadata>>>();
  std::future<absl::StatusOr<RecordMetadata>> future = promise->get_future();
  absl::Status s =
      impl_->Send(record, [promise](const absl::StatusOr<RecordMetadata>& r) {
        promise->set_value(r);
      });
  if (!s.ok()) promise->set_value(s);
  return future;
}

bool Producer::Flush(absl::Duration timeout) { return impl_->Flush(timeout); }

void Producer::Close(absl::Duration timeout) { impl_->Close(timeout); }

absl::StatusOr<int32_t> Producer::PartitionCount(const std::string& topic) {
  return impl_->PartitionCount(topic);
}

}  // namespace runnel::client
