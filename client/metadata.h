#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

#include "client/rpc.h"

#include "runnel/record.h"

namespace runnel::client {

// The client's view of the cluster: brokers, and each known topic's
// partitions and their leaders. Refreshed from the bootstrap broker (then any
// known broker) on first use of a topic and after not-leader / unknown-topic
// errors. Thread-safe.
class Metadata {
 public:
  // `pool` must outlive this object.
  Metadata(ChannelPool* pool, std::string bootstrap,
           int64_t request_timeout_ms);
  Metadata(const Metadata&) = delete;
  Metadata& operator=(const Metadata&) = delete;

  // The topic's partition count, fetching metadata when the topic is not
  // cached. kNotFound for a topic that does not exist, kInvalidArgument for a
  // bad name, an RPC's status when no broker answers. Called for every
  // record the producer sends: a thread asking again for the topic it asked
  // for last, with no metadata change in between, is answered from a
  // thread-local copy without the lock.
  absl::StatusOr<int32_t> PartitionCount(const std::string& topic);

  // "host:port" of the partition's leader, refreshing once when unknown.
  // kUnavailable when there is no leader, kNotFound when the topic or
  // partition does not exist.
  absl::StatusOr<std::string> LeaderAddress(const TopicPartition& tp);
  // Cached only, never blocks: empty when unknown.
  std::string CachedLeaderAddress(const TopicPartition& tp);

  // Marks the topic stale: the next lookup asks a broker again.
  void Invalidate(const std::string& topic);
  // Asks a broker for `topics` (plus every topic already known).
  absl::Status Refresh(const std::vector<std::string>& topics);

  const std::string& bootstrap() const { return bootstrap_; }

 private:
  struct TopicInfo {
    absl::Status status;           // NotFound etc. when the topic is not usable
    std::vector<int32_t> leaders;  // broker id per partition, -1: none
    bool stale = false;
  };
  absl::Status LookupLocked(const std::string& topic, const TopicInfo** info)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Called on every change of topics_: gives this object a generation no
  // Metadata in the process had before, which voids the thread-local copies.
  void ChangedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  ChannelPool* const pool_;
  const std::string bootstrap_;
  const int64_t request_timeout_ms_;

  absl::Mutex refresh_mu_;  // one refresh at a time; taken before mu_
  absl::Mutex mu_;
  absl::flat_hash_map<int32_t, std::string> brokers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, TopicInfo> topics_ ABSL_GUARDED_BY(mu_);
  // Written under mu_, read without it by PartitionCount.
  std::atomic<uint64_t> generation_;
};

}  // namespace runnel::client
