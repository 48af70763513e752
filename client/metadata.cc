#include "client/metadata.h"

#include <atomic>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace runnel::client {

namespace {

// Process-wide, so that a generation is never reused, not even by a
// Metadata created where a destroyed one was.
std::atomic<uint64_t> next_generation{1};

uint64_t NewGeneration() {
  return next_generation.fetch_add(1, std::memory_order_relaxed);
}

// One thread's last PartitionCount answer, valid while its Metadata has the
// generation it was read at.
struct CachedPartitionCount {
  const void* metadata = nullptr;
  uint64_t generation = 0;
  std::string topic;
  int32_t count = 0;
};
thread_local CachedPartitionCount cached_partition_count;

}  // namespace

Metadata::Metadata(ChannelPool* pool, std::string bootstrap,
                   int64_t request_timeout_ms)
    : pool_(pool),
      bootstrap_(std::move(bootstrap)),
      request_timeout_ms_(request_timeout_ms),
      generation_(NewGeneration()) {}

void Metadata::ChangedLocked() {
  generation_.store(NewGeneration(), std::memory_order_release);
}

absl::Status Metadata::Refresh(const std::vector<std::string>& topics) {
  absl::MutexLock refresh_lock(&refresh_mu_);
  v1::MetadataRequest request;
  std::vector<std::string> addresses;
  {
    absl::MutexLock lock(&mu_);
    for (const std::string& t : topics) request.add_topics(t);
    for (const auto& [name, info] : topics_) {
      bool listed = false;
      for (const std::string& t : topics) listed = listed || t == name;
      if (!listed) request.add_topics(name);
    }
    for (const auto& [id, address] : brokers_) addresses.push_back(address);
  }
  if (request.topics_size() == 0) return absl::OkStatus();
  // The bootstrap first: it is the one address the user gave.
  addresses.insert(addresses.begin(), bootstrap_);

  grpc::Status rpc_status;
  v1::MetadataResponse response;
  for (const std::string& address : addresses) {
    grpc::ClientContext ctx;
    ctx.set_deadline(DeadlineAfterMs(request_timeout_ms_));
    response.Clear();
    rpc_status = pool_->Broker(address)->Metadata(&ctx, request, &response);
    if (rpc_status.ok()) break;
  }
  if (!rpc_status.ok()) {
    return RpcToStatus(rpc_status, absl::StrCat("metadata from ", bootstrap_));
  }

  absl::MutexLock lock(&mu_);
  for (const v1::BrokerInfo& b : response.brokers()) {
    brokers_[b.broker_id()] = absl::StrCat(b.host(), ":", b.port());
  }
  for (const v1::TopicMetadata& t : response.topics()) {
    TopicInfo info;
    info.status = ErrorToStatus(t.error(), absl::StrCat("topic ", t.name()));
    info.leaders.assign(t.partitions_size(), -1);
    for (const v1::PartitionMetadata& p : t.partitions()) {
      if (p.partition() < 0 || p.partition() >= t.partitions_size()) continue;
      info.leaders[p.partition()] = HasError(p.error()) ? -1 : p.leader_id();
    }
    topics_[t.name()] = std::move(info);
  }
  ChangedLocked();
  return absl::OkStatus();
}

absl::Status Metadata::LookupLocked(const std::string& topic,
                                    const TopicInfo** info) {
  auto it = topics_.find(topic);
  if (it == topics_.end() || it->second.stale) {
    return absl::UnavailableError("not cached");
  }
  *info = &it->second;
  return it->second.status;
}

absl::StatusOr<int32_t> Metadata::PartitionCount(const std::string& topic) {
  CachedPartitionCount& cached = cached_partition_count;
  if (cached.metadata == this &&
      cached.generation == generation_.load(std::memory_order_acquire) &&
      cached.topic == topic) {
    return cached.count;
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    {
      absl::MutexLock lock(&mu_);
      const TopicInfo* info = nullptr;
      absl::Status s = LookupLocked(topic, &info);
      if (info != nullptr) {
        if (!s.ok()) {
          // Forget a failed lookup so a topic created later is found.
          topics_.erase(topic);
          ChangedLocked();
          return s;
        }
        const auto count = static_cast<int32_t>(info->leaders.size());
        cached.metadata = this;
        cached.generation = generation_.load(std::memory_order_relaxed);
        cached.topic = topic;
        cached.count = count;
        return count;
      }
    }
    if (attempt == 0) {
      absl::Status s = Refresh({topic});
      if (!s.ok()) return s;
    }
  }
  return absl::UnavailableError(
      absl::StrCat("no metadata for topic ", topic, " from ", bootstrap_));
}

std::string Metadata::CachedLeaderAddress(const TopicPartition& tp) {
  absl::MutexLock lock(&mu_);
  auto it = topics_.find(tp.topic);
  if (it == topics_.end() || it->second.stale || !it->second.status.ok()) {
    return "";
  }
  const std::vector<int32_t>& leaders = it->second.leaders;
  if (tp.partition < 0 ||
      tp.partition >= static_cast<int32_t>(leaders.size())) {
    return "";
  }
  auto b = brokers_.find(leaders[tp.partition]);
  return b == brokers_.end() ? "" : b->second;
}

absl::StatusOr<std::string> Metadata::LeaderAddress(const TopicPartition& tp) {
  std::string cached = CachedLeaderAddress(tp);
  if (!cached.empty()) return cached;
  absl::Status s = Refresh({tp.topic});
  if (!s.ok()) return s;
  absl::StatusOr<int32_t> count = PartitionCount(tp.topic);
  if (!count.ok()) return count.status();
  if (tp.partition < 0 || tp.partition >= *count) {
    return absl::NotFoundError(
        absl::StrCat("partition ", tp.partition, " of topic ", tp.topic,
                     " does not exist (", *count, " partitions)"));
  }
  cached = CachedLeaderAddress(tp);
  if (cached.empty()) {
    return absl::UnavailableError(
        absl::StrCat("no leader for ", tp.topic, "-", tp.partition));
  }
  return cached;
}

void Metadata::Invalidate(const std::string& topic) {
  absl::MutexLock lock(&mu_);
  auto it = topics_.find(topic);
  if (it != topics_.end()) it->second.stale = true;
  ChangedLocked();
}

}  // namespace runnel::client
