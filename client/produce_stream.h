#pragma once

// One ProduceStream call to a broker (docs/wire-protocol.md). The producer's
// requests to that broker go out on it in order, and the broker appends them
// in that order; answers come back as they complete, matched by correlation
// id. A stream that fails, or whose oldest request is overdue, fails every
// request in flight on it (as Kafka's client closes a connection on a
// request timeout), and the producer opens a new one.

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "proto/broker_service.grpc.pb.h"

namespace runnel::client {

// Thread-safe.
// Requests go out as raw bytes (client/produce_encoding.h: the batches are
// slices of their own buffers); answers are parsed ProduceStreamResponses.
class ProduceStream final
    : public grpc::ClientBidiReactor<grpc::ByteBuffer,
                                     v1::ProduceStreamResponse> {
 public:
  // `status` OK: `response` is the broker's answer (the callee may move
  // from it). Otherwise the request may or may not have been handled.
  using Callback = std::function<void(const grpc::Status& status,
                                      v1::ProduceResponse* response)>;

  // Starts the call on `channel`. `on_done` runs once (on a gRPC thread)
  // after the stream ended and every callback ran; it must not touch the
  // stream. The owner destroys the stream on its own thread (not on a gRPC
  // thread: the last gRPC object must not die there), once ended().
  static std::unique_ptr<ProduceStream> Start(
      std::shared_ptr<grpc::Channel> channel, std::function<void()> on_done);

  // true once OnDone has finished with this object: it may be destroyed.
  bool ended() const { return ended_.load(std::memory_order_acquire); }

  // Queues `request`, a serialized ProduceStreamRequest whose
  // correlation_id is `id` (unique among the stream's requests in flight),
  // to be answered through `done`; it must be answered by `deadline`, else
  // the stream is cancelled. false when the stream is ending: open a new
  // one.
  bool Send(uint64_t id, const grpc::ByteBuffer& request, absl::Time deadline,
            Callback done);
  // Half-closes once the queued requests are written; the broker answers
  // what is in flight, then the stream ends.
  void CloseSend();
  // Cancels the stream if a request in flight is past its deadline (its
  // callbacks then get DEADLINE_EXCEEDED). true if it did.
  bool ExpireOverdue(absl::Time now);

  void OnWriteDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  struct Pending {
    Callback done;
    absl::Time deadline;
  };

  ProduceStream(std::shared_ptr<grpc::Channel> channel,
                std::function<void()> on_done)
      : channel_(std::move(channel)),
        stub_(channel_),
        on_done_(std::move(on_done)) {}
  // Starts the next write (a request, or the half-close) if none is in
  // flight; call without mu_.
  void Pump();

  const std::shared_ptr<grpc::Channel> channel_;  // destroyed last
  grpc::TemplatedGenericStub<grpc::ByteBuffer, v1::ProduceStreamResponse> stub_;
  const std::function<void()> on_done_;
  grpc::ClientContext context_;
  std::atomic<bool> ended_{false};
  v1::ProduceStreamResponse response_;  // gRPC's read target

  absl::Mutex mu_;
  bool ending_ ABSL_GUARDED_BY(mu_) = false;
  bool overdue_ ABSL_GUARDED_BY(mu_) = false;
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  // The half-close was started or a write failed: no operation is started
  // any more, and the hold (see Start) is released.
  bool writes_done_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<grpc::ByteBuffer> queue_ ABSL_GUARDED_BY(mu_);
  grpc::ByteBuffer writing_;  // in flight until OnWriteDone
  absl::flat_hash_map<uint64_t, Pending> pending_ ABSL_GUARDED_BY(mu_);
};

}  // namespace runnel::client
