#include "client/rpc.h"

#include "absl/strings/str_cat.h"

namespace runnel::client {

ChannelPool::Entry& ChannelPool::GetLocked(const std::string& address) {
  auto it = entries_.find(address);
  if (it != entries_.end()) return *it->second;
  grpc::ChannelArguments args;
  // Big messages (1 MiB batches, multi-MiB fetches) move fastest with large
  // TCP read chunks (issue 3's measurements).
  args.SetInt("grpc.experimental.tcp_read_chunk_size", 1 << 20);
  args.SetInt("grpc.experimental.tcp_min_read_chunk_size", 1 << 20);
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  // Each client object gets its own connection rather than gRPC's shared
  // subchannel, so a producer and a consumer in one process do not contend.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto entry = std::make_unique<Entry>();
  entry->channel = grpc::CreateCustomChannel(
      address, grpc::InsecureChannelCredentials(), args);
  entry->broker = v1::Broker::NewStub(entry->channel);
  entry->admin = v1::Admin::NewStub(entry->channel);
  Entry& ref = *entry;
  entries_.emplace(address, std::move(entry));
  return ref;
}

v1::Broker::Stub* ChannelPool::Broker(const std::string& address) {
  absl::MutexLock lock(&mu_);
  return GetLocked(address).broker.get();
}

std::shared_ptr<grpc::Channel> ChannelPool::Channel(
    const std::string& address) {
  absl::MutexLock lock(&mu_);
  return GetLocked(address).channel;
}

v1::Admin::Stub* ChannelPool::Admin(const std::string& address) {
  absl::MutexLock lock(&mu_);
  return GetLocked(address).admin.get();
}

bool HasError(const v1::Error& error) { return error.code() != v1::NONE; }

absl::Status ErrorToStatus(const v1::Error& error, const std::string& where) {
  if (!HasError(error)) return absl::OkStatus();
  const std::string message =
      absl::StrCat(where, ": ", v1::ErrorCode_Name(error.code()),
                   error.message().empty() ? "" : ": ", error.message());
  switch (error.code()) {
    case v1::NONE:
      return absl::OkStatus();
    case v1::UNKNOWN_TOPIC_OR_PARTITION:
      return absl::NotFoundError(message);
    case v1::NOT_LEADER:
    case v1::NOT_ENOUGH_REPLICAS:
    case v1::BROKER_NOT_AVAILABLE:
      return absl::UnavailableError(message);
    case v1::OFFSET_OUT_OF_RANGE:
      return absl::OutOfRangeError(message);
    case v1::CORRUPT_MESSAGE:
    case v1::INVALID_RECORD:
    case v1::RECORD_TOO_LARGE:
    case v1::MESSAGE_TOO_LARGE:
    case v1::INVALID_TOPIC:
    case v1::INVALID_PARTITIONS:
    case v1::INVALID_CONFIG:
    case v1::INVALID_REQUEST:
    case v1::INVALID_REPLICATION_FACTOR:
      return absl::InvalidArgumentError(message);
    case v1::REQUEST_TIMED_OUT:
      return absl::DeadlineExceededError(message);
    case v1::TOPIC_ALREADY_EXISTS:
    case v1::DUPLICATE_SEQUENCE:
      return absl::AlreadyExistsError(message);
    case v1::OUT_OF_ORDER_SEQUENCE:
    case v1::UNKNOWN_PRODUCER_ID:
      return absl::FailedPreconditionError(message);
    case v1::INVALID_PRODUCER_EPOCH:
      return absl::AbortedError(message);
    case v1::THROTTLED:
      return absl::ResourceExhaustedError(message);
    case v1::STORAGE_ERROR:
      return absl::InternalError(message);
    default:
      return absl::UnknownError(message);
  }
}

absl::Status RpcToStatus(const grpc::Status& status, const std::string& what) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(what, ": ", status.error_message()));
}

bool IsRetriableRpc(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return true;
    default:
      return false;
  }
}

bool NeedsMetadataRefresh(v1::ErrorCode code) {
  return code == v1::NOT_LEADER || code == v1::UNKNOWN_TOPIC_OR_PARTITION ||
         code == v1::BROKER_NOT_AVAILABLE;
}

std::chrono::system_clock::time_point DeadlineAfterMs(int64_t ms) {
  return std::chrono::system_clock::now() + std::chrono::milliseconds(ms);
}

}  // namespace runnel::client
