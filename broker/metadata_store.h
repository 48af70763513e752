#pragma once

// Where the broker keeps cluster metadata: topics, their partition counts and
// config overrides, the cluster id and the producer-id allocator. The seam
// for etcd (next issue): LocalMetadataStore keeps it in the data directory
// for a broker that runs alone.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "broker/topic_config.h"

namespace runnel::broker {

// What the metadata store knows about one topic.
struct TopicRecord {
  std::string name;
  int32_t num_partitions = 0;
  int32_t replication_factor = 1;
  ConfigMap configs;  // overrides only; validated before they are stored
  int64_t created_ms = 0;
  bool operator==(const TopicRecord&) const = default;
};

// Thread-safe (implementations serialize their own writes). Every mutation
// is durable when it returns OK.
class MetadataStore {
 public:
  virtual ~MetadataStore() = default;

  // Every topic, sorted by name.
  virtual absl::StatusOr<std::vector<TopicRecord>> ListTopics() = 0;
  // Adds a topic. kAlreadyExists if a topic of that name exists.
  virtual absl::Status CreateTopic(const TopicRecord& topic) = 0;
  // Replaces an existing topic's record (partition count, configs).
  // kNotFound if absent.
  virtual absl::Status UpdateTopic(const TopicRecord& topic) = 0;
  // kNotFound if absent.
  virtual absl::Status DeleteTopic(const std::string& name) = 0;

  // Reserves `count` producer ids and returns the first; ids never repeat,
  // also across restarts.
  virtual absl::StatusOr<int64_t> AllocateProducerIds(int64_t count) = 0;

  // The cluster id, created once.
  virtual std::string cluster_id() const = 0;
};

}  // namespace runnel::broker
