#pragma once

// Key-to-partition mapping compatible with Kafka's default partitioner, and
// the sticky partitioner for records without a key (Kafka KIP-480).

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace runnel::client {

// Kafka's org.apache.kafka.common.utils.Utils.murmur2: MurmurHash2, 32 bits,
// seed 0x9747b28c, little-endian 4-byte blocks. Returns the same bits as the
// Java int.
int32_t Murmur2(std::string_view data);

// The partition Kafka's default partitioner picks for a non-null key:
// (murmur2(key) & 0x7fffffff) % num_partitions. num_partitions must be > 0.
int32_t PartitionForKey(std::string_view key, int32_t num_partitions);

// Sticky partitioning for records with neither key nor explicit partition:
// every such record of a topic goes to the same partition until the batch
// being filled there is completed (full or sent); then OnBatchCompleted picks
// another partition at random (different from the last one when there are
// several), so batches fill up instead of being spread thin. Thread-safe.
class StickyPartitioner {
 public:
  explicit StickyPartitioner(uint64_t seed = std::random_device{}());
  StickyPartitioner(const StickyPartitioner&) = delete;
  StickyPartitioner& operator=(const StickyPartitioner&) = delete;

  // The topic's current sticky partition, choosing one on first use or when
  // the partition count shrank below it. num_partitions must be > 0.
  int32_t Partition(const std::string& topic, int32_t num_partitions);

  // The batch on `completed_partition` is done: if it is still the sticky
  // one, switch to a new one.
  void OnBatchCompleted(const std::string& topic, int32_t completed_partition,
                        int32_t num_partitions);

 private:
  int32_t PickLocked(int32_t num_partitions, int32_t avoid)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int32_t> sticky_ ABSL_GUARDED_BY(mu_);
};

}  // namespace runnel::client
