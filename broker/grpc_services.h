#pragma once

// The gRPC front door: runnel.v1.Broker and runnel.v1.Admin over the broker
// core, with the callback API. Handlers return at once; each reactor
// finishes when the core calls back (after an fsync, a long poll, ...).

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

#include "broker/broker_core.h"
#include "proto/admin_service.grpc.pb.h"
#include "proto/broker_service.grpc.pb.h"

namespace runnel::broker {

// Counts requests in flight so that shutdown can stop taking new ones and
// wait for the running ones before the server is torn down. Thread-safe.
class RequestGate {
 public:
  RequestGate() = default;
  RequestGate(const RequestGate&) = delete;
  RequestGate& operator=(const RequestGate&) = delete;

  // false once closed: answer UNAVAILABLE instead of serving.
  bool Enter();
  void Exit();
  // Refuses new requests, then waits until none is in flight or `timeout`
  // passed. Returns the number still in flight.
  int CloseAndWait(absl::Duration timeout);

 private:
  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

// The callback service, except that ProduceStream, Fetch and FetchStream are
// raw (grpc::ByteBuffer): ProduceStream's records are read without a copy
// (produce_request_reader.h), the fetch responses serialized without one
// (fetch_encoding.h).
using BrokerServiceBase = v1::Broker::WithCallbackMethod_Produce<
    v1::Broker::WithRawCallbackMethod_ProduceStream<
        v1::Broker::WithRawCallbackMethod_Fetch<
            v1::Broker::WithRawCallbackMethod_FetchStream<
                v1::Broker::WithCallbackMethod_ListOffsets<
                    v1::Broker::WithCallbackMethod_Metadata<
                        v1::Broker::WithCallbackMethod_InitProducerId<
                            v1::Broker::Service>>>>>>>;

// Thread-safe (gRPC calls the handlers on its threads). `core` must outlive
// the services and the server they are registered with.
class BrokerService final : public BrokerServiceBase {
 public:
  // `gate` must outlive the service.
  BrokerService(BrokerCore* core, RequestGate* gate)
      : core_(core), gate_(gate) {}

  grpc::ServerUnaryReactor* Produce(grpc::CallbackServerContext* context,
                                    const v1::ProduceRequest* request,
                                    v1::ProduceResponse* response) override;
  // Each request enters the gate while the core handles it; the stream
  // itself does not hold it (an idle stream is cancelled at shutdown).
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* ProduceStream(
      grpc::CallbackServerContext* context) override;
  // Requests are v1::FetchRequest, responses v1::FetchResponse, as bytes.
  grpc::ServerUnaryReactor* Fetch(grpc::CallbackServerContext* context,
                                  const grpc::ByteBuffer* request,
                                  grpc::ByteBuffer* response) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* FetchStream(
      grpc::CallbackServerContext* context,
      const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* ListOffsets(
      grpc::CallbackServerContext* context,
      const v1::ListOffsetsRequest* request,
      v1::ListOffsetsResponse* response) override;
  grpc::ServerUnaryReactor* Metadata(grpc::CallbackServerContext* context,
                                     const v1::MetadataRequest* request,
                                     v1::MetadataResponse* response) override;
  grpc::ServerUnaryReactor* InitProducerId(
      grpc::CallbackServerContext* context,
      const v1::InitProducerIdRequest* request,
      v1::InitProducerIdResponse* response) override;

 private:
  BrokerCore* const core_;
  RequestGate* const gate_;
};

// Thread-safe. Admin calls run inline on the gRPC thread (they are rare and
// short: a metadata write and a few file creations).
class AdminService final : public v1::Admin::CallbackService {
 public:
  AdminService(BrokerCore* core, RequestGate* gate)
      : core_(core), gate_(gate) {}

  grpc::ServerUnaryReactor* CreateTopics(
      grpc::CallbackServerContext* context,
      const v1::CreateTopicsRequest* request,
      v1::CreateTopicsResponse* response) override;
  grpc::ServerUnaryReactor* DeleteTopics(
      grpc::CallbackServerContext* context,
      const v1::DeleteTopicsRequest* request,
      v1::DeleteTopicsResponse* response) override;
  grpc::ServerUnaryReactor* DescribeTopics(
      grpc::CallbackServerContext* context,
      const v1::DescribeTopicsRequest* request,
      v1::DescribeTopicsResponse* response) override;
  grpc::ServerUnaryReactor* ListTopics(
      grpc::CallbackServerContext* context,
      const v1::ListTopicsRequest* request,
      v1::ListTopicsResponse* response) override;
  grpc::ServerUnaryReactor* AlterTopicConfigs(
      grpc::CallbackServerContext* context,
      const v1::AlterTopicConfigsRequest* request,
      v1::AlterTopicConfigsResponse* response) override;
  grpc::ServerUnaryReactor* CreatePartitions(
      grpc::CallbackServerContext* context,
      const v1::CreatePartitionsRequest* request,
      v1::CreatePartitionsResponse* response) override;

 private:
  BrokerCore* const core_;
  RequestGate* const gate_;
};

// A started gRPC server with both services.
struct GrpcServer {
  std::unique_ptr<RequestGate> gate;
  std::unique_ptr<BrokerService> broker_service;
  std::unique_ptr<AdminService> admin_service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;  // the bound port (useful with ":0")
};

// Largest gRPC message the server sends or accepts.
inline constexpr int kMaxGrpcMessageBytes = 128 << 20;

// Builds and starts the server on `listen` ("host:port"; port 0 picks one).
// kUnavailable when the address cannot be bound.
absl::StatusOr<GrpcServer> StartGrpcServer(BrokerCore* core,
                                           const std::string& listen);

// Graceful stop: new requests get UNAVAILABLE, running ones get up to
// `timeout` to finish, then the server shuts down (cancelling stragglers).
// Call BrokerCore::StopWaiting() first so parked fetches answer at once.
void StopGrpcServer(GrpcServer& server, absl::Duration timeout);

}  // namespace runnel::broker
