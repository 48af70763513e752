#pragma once

// Topics and their partitions on this broker: creation with name, partition
// count and config validation, deletion, config changes, partition growth,
// and lookup for the data path. Topic metadata lives in a MetadataStore; the
// partition logs in the LogManager.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

#include "broker/metadata_store.h"
#include "broker/partition.h"
#include "broker/timer_queue.h"
#include "broker/topic_config.h"
#include "broker/topic_partition.h"
#include "common/clock.h"
#include "log/log_config.h"
#include "log/log_manager.h"

namespace runnel::broker {

// Most partitions one topic may have.
inline constexpr int32_t kMaxPartitionsPerTopic = 10000;

struct TopicManagerOptions {
  log::LogManager* logs = nullptr;    // must outlive the manager
  MetadataStore* metadata = nullptr;  // must outlive the manager
  log::LogConfig default_config;      // broker-wide defaults
  int32_t broker_id = 0;
  int32_t default_num_partitions = 1;     // for NewTopicSpec::num_partitions 0
  Clock* clock = SystemClock::Default();  // creation times
  // Every partition's options (reorder wait and its timers, which must
  // outlive the manager; producer-id expiration).
  PartitionOptions partition;
  // Called (cheap, non-blocking, from the log's I/O thread) when a
  // partition's high watermark advances.
  std::function<void(const TopicPartition&)> on_hw_advanced;
};

struct NewTopicSpec {
  std::string name;
  int32_t num_partitions = 0;      // 0: default
  int32_t replication_factor = 0;  // 0 or -1: default (1)
  ConfigMap configs;
};

struct ConfigChange {
  enum class Op { kSet, kDelete };
  Op op = Op::kSet;
  std::string name;
  std::string value;
};

struct TopicDescription {
  TopicRecord record;
  std::vector<PartitionState> partitions;  // by index
  std::vector<EffectiveConfig> configs;
};

// Thread-safe. Admin operations are serialized with each other; lookups run
// concurrently with them.
class TopicManager {
 public:
  TopicManager(const TopicManager&) = delete;
  TopicManager& operator=(const TopicManager&) = delete;

  // Loads every topic of the metadata store and attaches its partition logs
  // (creating any that are missing, e.g. after a crash during creation).
  // Partition logs of topics the store does not know are left alone (and
  // not served). Errors: the store's or the log manager's.
  static absl::StatusOr<std::unique_ptr<TopicManager>> Open(
      TopicManagerOptions options);

  // Errors (typed): INVALID_TOPIC, INVALID_PARTITIONS,
  // INVALID_REPLICATION_FACTOR, INVALID_CONFIG, TOPIC_ALREADY_EXISTS,
  // STORAGE_ERROR. `validate_only`: checks only.
  absl::Status CreateTopic(const NewTopicSpec& spec, bool validate_only);
  // UNKNOWN_TOPIC_OR_PARTITION if absent. Waits for in-flight operations on
  // its partitions, then deletes their logs.
  absl::Status DeleteTopic(const std::string& name);
  // Applies `changes` in order to the topic's overrides, all or nothing.
  // UNKNOWN_TOPIC_OR_PARTITION, INVALID_CONFIG.
  absl::Status AlterConfigs(const std::string& name,
                            const std::vector<ConfigChange>& changes,
                            bool validate_only);
  // Raises the partition count to `total`. INVALID_PARTITIONS unless
  // current < total <= kMaxPartitionsPerTopic.
  absl::Status CreatePartitions(const std::string& name, int32_t total,
                                bool validate_only);

  // UNKNOWN_TOPIC_OR_PARTITION (or INVALID_TOPIC for a bad name) if absent.
  absl::StatusOr<std::shared_ptr<Partition>> GetPartition(
      const std::string& topic, int32_t partition) const;
  absl::StatusOr<TopicDescription> Describe(const std::string& name) const;
  // Every topic, sorted by name.
  std::vector<TopicRecord> ListTopics() const;
  // Every partition of every topic (for metrics).
  std::vector<std::shared_ptr<Partition>> AllPartitions() const;

  const log::LogConfig& default_config() const {
    return options_.default_config;
  }

 private:
  struct Topic {
    TopicRecord record;
    log::LogConfig config;  // effective
    std::vector<std::shared_ptr<Partition>> partitions;
  };

  explicit TopicManager(TopicManagerOptions options);

  absl::StatusOr<std::shared_ptr<Partition>> AttachPartition(
      const std::string& topic, int32_t index, const log::LogConfig& config,
      bool fresh);
  std::shared_ptr<const Topic> FindTopic(const std::string& name) const;

  const TopicManagerOptions options_;
  absl::Mutex admin_mu_;  // serializes admin operations
  mutable absl::Mutex mu_;
  // Topic objects are immutable once published: a change publishes a copy.
  absl::flat_hash_map<std::string, std::shared_ptr<const Topic>> topics_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace runnel::broker
