#pragma once

// The client's gRPC plumbing: one channel per broker address (reused by every
// producer, consumer and admin call of a client object), and the mapping of
// the wire's typed errors to absl::Status.

#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include <grpcpp/grpcpp.h>

#include "proto/admin_service.grpc.pb.h"
#include "proto/broker_service.grpc.pb.h"

namespace runnel::client {

// Channels and stubs by "host:port". Thread-safe; the stubs it hands out stay
// valid as long as the pool lives.
class ChannelPool {
 public:
  ChannelPool() = default;
  ChannelPool(const ChannelPool&) = delete;
  ChannelPool& operator=(const ChannelPool&) = delete;

  v1::Broker::Stub* Broker(const std::string& address);
  v1::Admin::Stub* Admin(const std::string& address);
  std::shared_ptr<grpc::Channel> Channel(const std::string& address);

 private:
  struct Entry {
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<v1::Broker::Stub> broker;
    std::unique_ptr<v1::Admin::Stub> admin;
  };
  Entry& GetLocked(const std::string& address)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Entry>> entries_
      ABSL_GUARDED_BY(mu_);
};

// OK for an absent error or NONE; otherwise the code that STYLE.md maps the
// situation to, with `where` (e.g. "events-3") and the broker's message.
absl::Status ErrorToStatus(const v1::Error& error, const std::string& where);
bool HasError(const v1::Error& error);
// A failed RPC as a Status (same code numbers), prefixed with `what`.
absl::Status RpcToStatus(const grpc::Status& status, const std::string& what);
// Whether a failed RPC may succeed when retried.
bool IsRetriableRpc(const grpc::Status& status);
// Errors after which the client's metadata may be stale.
bool NeedsMetadataRefresh(v1::ErrorCode code);

// An absolute deadline `ms` from now for a ClientContext.
std::chrono::system_clock::time_point DeadlineAfterMs(int64_t ms);

}  // namespace runnel::client
