#pragma once

// Topic administration: create, delete, describe, list, alter configs, add
// partitions. Synchronous calls; each takes up to request_timeout_ms.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace runnel::client {

struct AdminOptions {
  std::string bootstrap = "127.0.0.1:7070";
  int64_t request_timeout_ms = 30000;
};

struct NewTopic {
  std::string name;
  int32_t num_partitions = 1;
  int32_t replication_factor = 1;
  // retention.ms, retention.bytes, segment.bytes, segment.ms, cleanup.policy,
  // max.message.bytes, message.timestamp.type.
  std::map<std::string, std::string> configs;
};

struct PartitionDescription {
  int32_t partition = 0;
  int32_t leader_id = -1;
  int32_t leader_epoch = 0;
  std::vector<int32_t> replicas;
  std::vector<int32_t> isr;
  int64_t log_start_offset = 0;
  int64_t high_watermark = 0;
  int64_t log_end_offset = 0;
  int64_t size_bytes = 0;
};

struct ConfigValue {
  std::string value;
  bool is_default = false;
};

struct TopicDescription {
  std::string name;
  int32_t replication_factor = 1;
  bool is_internal = false;
  std::vector<PartitionDescription> partitions;
  std::map<std::string, ConfigValue> configs;
};

struct TopicListing {
  std::string name;
  int32_t num_partitions = 0;
  bool is_internal = false;
};

// Thread-safe.
class Admin {
 public:
  static absl::StatusOr<std::unique_ptr<Admin>> Create(AdminOptions options);
  Admin(const Admin&) = delete;
  Admin& operator=(const Admin&) = delete;
  ~Admin();

  // kAlreadyExists, kInvalidArgument (name, partitions, config, replication
  // factor), or the RPC's status.
  absl::Status CreateTopic(const NewTopic& topic);
  // kNotFound for an unknown topic.
  absl::Status DeleteTopic(const std::string& name);
  // Empty `names`: every topic. kNotFound for an unknown named topic.
  absl::StatusOr<std::vector<TopicDescription>> DescribeTopics(
      const std::vector<std::string>& names);
  absl::StatusOr<std::vector<TopicListing>> ListTopics(
      bool include_internal = false);
  // Sets `set` and resets `reset` keys to the broker default, all or nothing.
  absl::Status AlterTopicConfigs(const std::string& name,
                                 const std::map<std::string, std::string>& set,
                                 const std::vector<std::string>& reset = {});
  // Raises the partition count to `total_count`.
  absl::Status CreatePartitions(const std::string& name, int32_t total_count);

  class Impl;

 private:
  explicit Admin(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace runnel::client
