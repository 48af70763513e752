#include "broker/grpc_services.h"

#include <algorithm>
#include <deque>
#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

#include "broker/conversions.h"
#include "broker/errors.h"
#include "broker/fetch_encoding.h"
#include "broker/produce_request_reader.h"
#include "common/check.h"
#include "log/record_batch.h"

namespace runnel::broker {
namespace {

// Records one answered request (unary, or one request of a stream).
void RecordCall(BrokerCore* core, Api api, absl::Time start, bool failed,
                int partition_errors) {
  core->metrics().RecordRequest(api, absl::Now() - start, failed);
  core->metrics().RecordPartitionErrors(api, partition_errors);
}

// Records the request's metrics and finishes the unary reactor.
void FinishUnary(BrokerCore* core, RequestGate* gate,
                 grpc::ServerUnaryReactor* reactor, Api api, absl::Time start,
                 const grpc::Status& status, int partition_errors = 0,
                 bool all_failed = false) {
  RecordCall(core, api, start, !status.ok() || all_failed, partition_errors);
  reactor->Finish(status);
  gate->Exit();
}

const grpc::Status kShuttingDown(grpc::StatusCode::UNAVAILABLE,
                                 "broker shutting down");
const grpc::Status kMalformedRequest(grpc::StatusCode::INVALID_ARGUMENT,
                                     "the request is not a valid message");

// Starts a unary call: returns its reactor, or finishes it UNAVAILABLE (and
// returns it too, with *refused set) when the broker is shutting down.
grpc::ServerUnaryReactor* Begin(grpc::CallbackServerContext* context,
                                RequestGate* gate, bool* refused) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  *refused = !gate->Enter();
  if (*refused) reactor->Finish(kShuttingDown);
  return reactor;
}

int CountPartitions(const v1::ProduceRequest& request) {
  int n = 0;
  for (const auto& t : request.topics()) n += t.partitions_size();
  return n;
}

// The offset after the last batch in `records` (whole batches).
log::Offset NextOffsetAfter(const std::string& records, log::Offset fallback) {
  log::Offset next = fallback;
  std::string_view rest(records);
  while (!rest.empty()) {
    absl::StatusOr<log::RecordBatchView> view =
        log::RecordBatchView::Parse(rest, log::BatchSource::kDisk);
    if (!view.ok()) break;
    next = view->next_offset();
    rest.remove_prefix(view->size_bytes());
  }
  return next;
}

// FetchStream: repeated long-poll fetches, each answer written to the
// stream; positions advance past what was sent. Owns itself until OnDone.
class FetchStreamReactor final
    : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  // The caller entered `gate` for this stream; Done() exits it.
  FetchStreamReactor(BrokerCore* core, RequestGate* gate,
                     const v1::FetchRequest& request)
      : core_(core), gate_(gate), input_(FetchInputFromProto(request)) {
    if (input_.max_wait <= absl::ZeroDuration()) {
      input_.max_wait = absl::Milliseconds(500);  // heartbeat period
    }
    NextFetch();
  }

  void OnWriteDone(bool ok) override {
    if (!ok)
      return Done(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
    NextFetch();
  }
  void OnCancel() override { cancelled_.store(true); }
  void OnDone() override { delete this; }

 private:
  void NextFetch() {
    if (cancelled_.load()) return Done(grpc::Status::CANCELLED);
    if (core_->stopping()) {
      return Done(
          grpc::Status(grpc::StatusCode::UNAVAILABLE, "broker shutting down"));
    }
    if (input_.partitions.empty()) return Done(grpc::Status::OK);
    core_->Fetch(input_, [this](std::vector<ReadResult> results) {
      OnFetched(std::move(results));
    });
  }

  void OnFetched(std::vector<ReadResult> results) {
    v1::FetchResponse response;
    FetchInput sent;
    std::vector<ReadResult> sent_results;
    std::vector<FetchPartitionInput> keep;
    for (size_t i = 0; i < results.size(); ++i) {
      FetchPartitionInput& p = input_.partitions[i];
      ReadResult& r = results[i];
      const bool failed = !r.status.ok();
      if (!failed) keep.push_back(p);  // an error is sent once, then dropped
      if (failed || !r.records.empty()) {
        if (!failed)
          keep.back().fetch_offset = NextOffsetAfter(r.records, p.fetch_offset);
        sent.partitions.push_back(p);
        sent_results.push_back(std::move(r));
      }
    }
    input_.partitions = std::move(keep);
    // Rotate: only the first partition with data may return a batch larger
    // than the limits, so each partition takes that place in turn (no
    // partition with an oversized batch starves behind busy ones).
    if (input_.partitions.size() > 1) {
      std::rotate(input_.partitions.begin(), input_.partitions.begin() + 1,
                  input_.partitions.end());
    }
    core_->metrics().RecordPartitionErrors(
        Api::kFetchStream,
        FetchResponseToProto(sent, std::move(sent_results), &response));
    if (cancelled_.load()) return Done(grpc::Status::CANCELLED);
    response_ = SerializeFetchResponse(&response);
    StartWrite(&response_);
  }

  void Done(const grpc::Status& status) {
    core_->metrics().RecordRequest(
        Api::kFetchStream, absl::Now() - start_,
        !status.ok() && status.error_code() != grpc::StatusCode::CANCELLED);
    RequestGate* gate = gate_;
    Finish(status);  // OnDone may run, and delete this, before Finish returns
    gate->Exit();
  }

  BrokerCore* const core_;
  RequestGate* const gate_;
  const absl::Time start_ = absl::Now();
  FetchInput input_;
  grpc::ByteBuffer response_;  // in flight until OnWriteDone
  std::atomic<bool> cancelled_{false};
};

// ProduceStream: reads one request at a time and hands it to the core
// before reading the next (the append order is the stream's order); writes
// the answers as they complete, one write at a time. Finishes once the
// client half-closed (or the broker refused a request while shutting down)
// and every request taken is answered. Owns itself until OnDone.
class ProduceStreamReactor final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  ProduceStreamReactor(BrokerCore* core, RequestGate* gate)
      : core_(core), gate_(gate) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) return EndReading(grpc::Status::OK);
    // The records stay in gRPC's slices (produce_request_reader.h).
    absl::StatusOr<ReadProduceStreamRequest> read = ReadProduceStream(request_);
    request_.Clear();
    if (!read.ok()) return EndReading(ToGrpcStatus(read.status()));
    if (!gate_->Enter()) return EndReading(kShuttingDown);
    const absl::Time start = absl::Now();
    const uint64_t id = read->message.correlation_id();
    // Kept for the answer's shape; it carries no records.
    auto shape = std::make_shared<v1::ProduceRequest>(
        std::move(*read->message.mutable_request()));
    const Acks acks = AcksFromProto(shape->acks());
    const int partitions = CountPartitions(*shape);
    ProduceInput input = ProduceInputFromProto(shape.get());
    RUNNEL_CHECK(input.partitions.size() == read->records.size());
    for (size_t i = 0; i < read->records.size(); ++i) {
      input.partitions[i].records = std::move(read->records[i]);
    }
    {
      absl::MutexLock lock(&mu_);
      ++pending_;
    }
    core_->Produce(
        std::move(input), [=, this](std::vector<ProduceResult> results) {
          v1::ProduceStreamResponse response;
          response.set_correlation_id(id);
          const int errors = ProduceResponseToProto(
              *shape, acks, std::move(results), response.mutable_response());
          RecordCall(core_, Api::kProduce, start,
                     partitions > 0 && errors == partitions, errors);
          grpc::ByteBuffer bytes;
          bool own_buffer;
          RUNNEL_CHECK(
              grpc::SerializationTraits<v1::ProduceStreamResponse>::Serialize(
                  response, &bytes, &own_buffer)
                  .ok());
          // Once answered, the stream may finish and delete this reactor on
          // a gRPC thread: nothing of `this` is touched after Answer.
          RequestGate* const gate = gate_;
          Answer(std::move(bytes));
          gate->Exit();
        });
    // Only now: the next request is appended after this one.
    StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    bool next = false;
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      if (!ok) {
        write_failed_ = true;  // the client is gone: drop the answers
        answers_.clear();
      }
      if (!answers_.empty()) {
        writing_ = std::move(answers_.front());
        answers_.pop_front();
        next = true;
      } else {
        write_in_flight_ = false;
        finish = ShouldFinishLocked();
      }
    }
    if (next) return StartWrite(&writing_);
    if (finish) Finish(status_);
  }

  void OnDone() override { delete this; }

 private:
  void EndReading(const grpc::Status& status) {
    bool finish;
    {
      absl::MutexLock lock(&mu_);
      reading_ = false;
      status_ = status;
      finish = ShouldFinishLocked();
    }
    if (finish) Finish(status_);
  }

  // From the core's callback (any thread).
  void Answer(grpc::ByteBuffer response) {
    bool start_write = false;
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      --pending_;
      if (!write_failed_) {
        if (write_in_flight_) {
          answers_.push_back(std::move(response));
        } else {
          writing_ = std::move(response);
          write_in_flight_ = start_write = true;
        }
      }
      if (!start_write) finish = ShouldFinishLocked();
    }
    if (start_write) StartWrite(&writing_);
    if (finish) Finish(status_);
  }

  bool ShouldFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (reading_ || pending_ > 0 || write_in_flight_ || finished_) return false;
    finished_ = true;
    return true;
  }

  BrokerCore* const core_;
  RequestGate* const gate_;
  grpc::ByteBuffer request_;  // gRPC's read target
  absl::Mutex mu_;
  bool reading_ ABSL_GUARDED_BY(mu_) = true;
  int pending_ ABSL_GUARDED_BY(mu_) = 0;  // requests in the core
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool write_failed_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_;       // set before finished_, read after
  grpc::ByteBuffer writing_;  // in flight until OnWriteDone
  std::deque<grpc::ByteBuffer> answers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

// --- Broker service ---------------------------------------------------------

grpc::ServerUnaryReactor* BrokerService::Produce(
    grpc::CallbackServerContext* context, const v1::ProduceRequest* request,
    v1::ProduceResponse* response) {
  const absl::Time start = absl::Now();
  bool refused = false;
  grpc::ServerUnaryReactor* reactor = Begin(context, gate_, &refused);
  if (refused) return reactor;
  // gRPC owns the request until Finish and never reads it again; moving the
  // records out instead of copying them is the point of this const_cast.
  auto* mutable_request = const_cast<v1::ProduceRequest*>(request);
  const Acks acks = AcksFromProto(request->acks());
  const int partitions = CountPartitions(*request);
  ProduceInput input = ProduceInputFromProto(mutable_request);
  BrokerCore* core = core_;
  RequestGate* gate = gate_;
  core_->Produce(std::move(input), [=](std::vector<ProduceResult> results) {
    int errors =
        ProduceResponseToProto(*request, acks, std::move(results), response);
    FinishUnary(core, gate, reactor, Api::kProduce, start, grpc::Status::OK,
                errors, partitions > 0 && errors == partitions);
  });
  return reactor;
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
BrokerService::ProduceStream(grpc::CallbackServerContext* context) {
  return new ProduceStreamReactor(core_, gate_);
}

grpc::ServerUnaryReactor* BrokerService::Fetch(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  const absl::Time start = absl::Now();
  bool refused = false;
  grpc::ServerUnaryReactor* reactor = Begin(context, gate_, &refused);
  if (refused) return reactor;
  v1::FetchRequest parsed;
  if (!ParseFetchRequest(*request, &parsed)) {
    FinishUnary(core_, gate_, reactor, Api::kFetch, start, kMalformedRequest);
    return reactor;
  }
  auto input = std::make_shared<FetchInput>(FetchInputFromProto(parsed));
  BrokerCore* core = core_;
  RequestGate* gate = gate_;
  core_->Fetch(*input, [=](std::vector<ReadResult> results) {
    v1::FetchResponse message;
    int errors = FetchResponseToProto(*input, std::move(results), &message);
    *response = SerializeFetchResponse(&message);
    FinishUnary(core, gate, reactor, Api::kFetch, start, grpc::Status::OK,
                errors,
                !input->partitions.empty() &&
                    errors == static_cast<int>(input->partitions.size()));
  });
  return reactor;
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* BrokerService::FetchStream(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  class Refused final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
   public:
    explicit Refused(const grpc::Status& status) { Finish(status); }
    void OnDone() override { delete this; }
  };
  v1::FetchRequest parsed;
  if (!ParseFetchRequest(*request, &parsed)) {
    return new Refused(kMalformedRequest);
  }
  if (!gate_->Enter()) return new Refused(kShuttingDown);
  return new FetchStreamReactor(core_, gate_, parsed);
}

grpc::ServerUnaryReactor* BrokerService::ListOffsets(
    grpc::CallbackServerContext* context, const v1::ListOffsetsRequest* request,
    v1::ListOffsetsResponse* response) {
  const absl::Time start = absl::Now();
  bool refused = false;
  grpc::ServerUnaryReactor* reactor = Begin(context, gate_, &refused);
  if (refused) return reactor;
  int errors = 0;
  for (const v1::TopicListOffsets& topic : request->topics()) {
    v1::TopicListOffsetsResponse* t = response->add_topics();
    t->set_name(topic.name());
    for (const v1::PartitionListOffsets& p : topic.partitions()) {
      ListOffsetResult r =
          core_->ListOffset({topic.name(), p.partition()}, p.timestamp());
      v1::PartitionListOffsetsResponse* out = t->add_partitions();
      out->set_partition(p.partition());
      if (!r.status.ok()) {
        ToProtoError(r.status, out->mutable_error());
        ++errors;
      }
      out->set_offset(r.offset);
      out->set_timestamp(r.timestamp);
      out->set_leader_epoch(r.leader_epoch);
    }
  }
  FinishUnary(core_, gate_, reactor, Api::kListOffsets, start, grpc::Status::OK,
              errors);
  return reactor;
}

grpc::ServerUnaryReactor* BrokerService::Metadata(
    grpc::CallbackServerContext* context, const v1::MetadataRequest* request,
    v1::MetadataResponse* response) {
  const absl::Time start = absl::Now();
  bool refused = false;
  grpc::ServerUnaryReactor* reactor = Begin(context, gate_, &refused);
  if (refused) return reactor;
  for (const BrokerEndpoint& b : core_->Brokers()) {
    v1::BrokerInfo* info = response->add_brokers();
    info->set_broker_id(b.broker_id);
    info->set_host(b.host);
    info->set_port(b.port);
  }
  response->set_controller_id(core_->broker_id());
  response->set_cluster_id(core_->cluster_id());
  std::vector<std::string> names(request->topics().begin(),
                                 request->topics().end());
  for (const TopicView& view : core_->DescribeTopics(names)) {
    TopicMetadataToProto(view, response->add_topics());
  }
  FinishUnary(core_, gate_, reactor, Api::kMetadata, start, grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* BrokerService::InitProducerId(
    grpc::CallbackServerContext* context,
    const v1::InitProducerIdRequest* request,
    v1::InitProducerIdResponse* response) {
  const absl::Time start = absl::Now();
  bool refused = false;
  grpc::ServerUnaryReactor* reactor = Begin(context, gate_, &refused);
  if (refused) return reactor;
  absl::StatusOr<ProducerIdentity> id = core_->InitProducerId();
  if (id.ok()) {
    response->set_producer_id(id->producer_id);
    response->set_producer_epoch(id->producer_epoch);
  } else {
    ToProtoError(id.status(), response->mutable_error());
    response->set_producer_id(-1);
    response->set_producer_epoch(-1);
  }
  FinishUnary(core_, gate_, reactor, Api::kInitProducerId, start,
              grpc::Status::OK, id.ok() ? 0 : 1, !id.ok());
  return reactor;
}

// --- Admin service ----------------------------------------------------------

namespace {

// Appends a TopicResult for `status`; returns 1 if it is an error.
int AddResult(const std::string& name, const absl::Status& status,
              google::protobuf::RepeatedPtrField<v1::TopicResult>* results) {
  v1::TopicResult* r = results->Add();
  r->set_name(name);
  if (status.ok()) return 0;
  ToProtoError(status, r->mutable_error());
  return 1;
}

}  // namespace

grpc::ServerUnaryReactor* AdminService::CreateTopics(
    grpc::CallbackServerContext* context,
    const v1::CreateTopicsRequest* request,
    v1::CreateTopicsResponse* response) {
  const absl::Time start = absl::Now();
  bool refused = false;
  grpc::ServerUnaryReactor* reactor = Begin(context, gate_, &refused);
  if (refused) return reactor;
  int errors = 0;
  for (const v1::NewTopic& topic : request->topics()) {
    errors += AddResult(topic.name(),
                        core_->topics().CreateTopic(NewTopicFromProto(topic),
                                                    request->validate_only()),
                        response->mutable_topics());
  }
  FinishUnary(core_, gate_, reactor, Api::kCreateTopics, start,
              grpc::Status::OK, errors);
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::DeleteTopics(
    grpc::CallbackServerContext* context,
    const v1::DeleteTopicsRequest* request,
    v1::DeleteTopicsResponse* response) {
  const absl::Time start = absl::Now();
  bool refused = false;
  grpc::ServerUnaryReactor* reactor = Begin(context, gate_, &refused);
  if (refused) return reactor;
  int errors = 0;
  for (const std::string& name : request->names()) {
    errors += AddResult(name, core_->topics().DeleteTopic(name),
                        response->mutable_topics());
  }
  FinishUnary(core_, gate_, reactor, Api::kDeleteTopics, start,
              grpc::Status::OK, errors);
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::DescribeTopics(
    grpc::CallbackServerContext* context,
    const v1::DescribeTopicsRequest* request,
    v1::DescribeTopicsResponse* response) {
  const absl::Time start = absl::Now();
  bool refused = false;
  grpc::ServerUnaryReactor* reactor = Begin(context, gate_, &refused);
  if (refused) return reactor;
  std::vector<std::string> names(request->names().begin(),
                                 request->names().end());
  int errors = 0;
  for (const TopicView& view : core_->DescribeTopics(names)) {
    if (!view.status.ok()) ++errors;
    TopicDescriptionToProto(view, response->add_topics());
  }
  FinishUnary(core_, gate_, reactor, Api::kDescribeTopics, start,
              grpc::Status::OK, errors);
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::ListTopics(
    grpc::CallbackServerContext* context, const v1::ListTopicsRequest* request,
    v1::ListTopicsResponse* response) {
  const absl::Time start = absl::Now();
  bool refused = false;
  grpc::ServerUnaryReactor* reactor = Begin(context, gate_, &refused);
  if (refused) return reactor;
  for (const TopicRecord& record : core_->topics().ListTopics()) {
    const bool internal = absl::StartsWith(record.name, "__");
    if (internal && !request->include_internal()) continue;
    v1::TopicListing* t = response->add_topics();
    t->set_name(record.name);
    t->set_num_partitions(record.num_partitions);
    t->set_is_internal(internal);
  }
  FinishUnary(core_, gate_, reactor, Api::kListTopics, start, grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::AlterTopicConfigs(
    grpc::CallbackServerContext* context,
    const v1::AlterTopicConfigsRequest* request,
    v1::AlterTopicConfigsResponse* response) {
  const absl::Time start = absl::Now();
  bool refused = false;
  grpc::ServerUnaryReactor* reactor = Begin(context, gate_, &refused);
  if (refused) return reactor;
  int errors = 0;
  for (const v1::TopicConfigChanges& changes : request->topics()) {
    errors += AddResult(changes.name(),
                        core_->topics().AlterConfigs(
                            changes.name(), ConfigChangesFromProto(changes),
                            request->validate_only()),
                        response->mutable_topics());
  }
  FinishUnary(core_, gate_, reactor, Api::kAlterTopicConfigs, start,
              grpc::Status::OK, errors);
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::CreatePartitions(
    grpc::CallbackServerContext* context,
    const v1::CreatePartitionsRequest* request,
    v1::CreatePartitionsResponse* response) {
  const absl::Time start = absl::Now();
  bool refused = false;
  grpc::ServerUnaryReactor* reactor = Begin(context, gate_, &refused);
  if (refused) return reactor;
  int errors = 0;
  for (const v1::PartitionsIncrease& topic : request->topics()) {
    errors += AddResult(
        topic.name(),
        core_->topics().CreatePartitions(topic.name(), topic.total_count(),
                                         request->validate_only()),
        response->mutable_topics());
  }
  FinishUnary(core_, gate_, reactor, Api::kCreatePartitions, start,
              grpc::Status::OK, errors);
  return reactor;
}

// --- Server -----------------------------------------------------------------

absl::StatusOr<GrpcServer> StartGrpcServer(BrokerCore* core,
                                           const std::string& listen) {
  GrpcServer out;
  out.gate = std::make_unique<RequestGate>();
  out.broker_service = std::make_unique<BrokerService>(core, out.gate.get());
  out.admin_service = std::make_unique<AdminService>(core, out.gate.get());
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(),
                           &out.port);
  builder.RegisterService(out.broker_service.get());
  builder.RegisterService(out.admin_service.get());
  // gRPC sets SO_REUSEPORT by default: a second broker on the same port would
  // then bind "successfully" and share the connections. Refuse instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(kMaxGrpcMessageBytes);
  builder.SetMaxSendMessageSize(kMaxGrpcMessageBytes);
  // Large batches in few reads (see issue 3's gRPC measurements).
  builder.AddChannelArgument("grpc.experimental.tcp_read_chunk_size", 1 << 20);
  builder.AddChannelArgument("grpc.experimental.tcp_min_read_chunk_size",
                             1 << 20);
  builder.AddChannelArgument("grpc.experimental.tcp_max_read_chunk_size",
                             4 << 20);
  out.server = builder.BuildAndStart();
  if (out.server == nullptr || out.port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen for gRPC on ", listen));
  }
  return out;
}

void StopGrpcServer(GrpcServer& server, absl::Duration timeout) {
  const int left = server.gate->CloseAndWait(timeout);
  if (left > 0) {
    spdlog::warn(
        "{} requests still running after the shutdown timeout; "
        "cancelling them",
        left);
  }
  // Nothing of ours is running now: a short grace for gRPC's own work, then
  // cancel (an idle client connection would otherwise hold Shutdown).
  server.server->Shutdown(std::chrono::system_clock::now() +
                          std::chrono::milliseconds(100));
}

// --- RequestGate ------------------------------------------------------------

bool RequestGate::Enter() {
  absl::MutexLock lock(&mu_);
  if (closed_) return false;
  ++in_flight_;
  return true;
}

void RequestGate::Exit() {
  absl::MutexLock lock(&mu_);
  --in_flight_;
}

int RequestGate::CloseAndWait(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return in_flight_ == 0;
  };
  mu_.AwaitWithTimeout(absl::Condition(&idle), timeout);
  return in_flight_;
}

}  // namespace runnel::broker
