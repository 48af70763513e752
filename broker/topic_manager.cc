#include "broker/topic_manager.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

#include "broker/errors.h"
#include "common/status_macros.h"

namespace runnel::broker {
namespace {

// A single broker leads every partition with this epoch.
constexpr int32_t kLocalLeaderEpoch = 0;

absl::Status UnknownTopic(const std::string& name) {
  return MakeError(ErrorKind::kUnknownTopicOrPartition,
                   absl::StrCat("unknown topic ", name));
}

absl::Status CheckTopicName(const std::string& name) {
  absl::Status s = log::ValidateTopicName(name);
  if (s.ok()) return s;
  return WithKind(std::move(s), ErrorKind::kInvalidTopic);
}

absl::Status StorageError(absl::Status s) {
  return WithKind(std::move(s), ErrorKind::kStorageError);
}

}  // namespace

TopicManager::TopicManager(TopicManagerOptions options)
    : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<TopicManager>> TopicManager::Open(
    TopicManagerOptions options) {
  auto manager = std::unique_ptr<TopicManager>(new TopicManager(options));
  RUNNEL_ASSIGN_OR_RETURN(std::vector<TopicRecord> records,
                          options.metadata->ListTopics());
  absl::flat_hash_map<std::string, std::shared_ptr<const Topic>> topics;
  for (TopicRecord& record : records) {
    auto topic = std::make_shared<Topic>();
    RUNNEL_ASSIGN_OR_RETURN(
        topic->config,
        ApplyTopicConfigs(options.default_config, record.configs));
    for (int32_t p = 0; p < record.num_partitions; ++p) {
      RUNNEL_ASSIGN_OR_RETURN(
          auto partition,
          manager->AttachPartition(record.name, p, topic->config, false));
      topic->partitions.push_back(std::move(partition));
    }
    topic->record = std::move(record);
    topics[topic->record.name] = std::move(topic);
  }
  for (const auto& [topic, partition] : options.logs->List()) {
    auto it = topics.find(topic);
    if (it == topics.end() || partition >= it->second->record.num_partitions) {
      spdlog::warn("partition log {}-{} belongs to no known topic; not served",
                   topic, partition);
    }
  }
  absl::MutexLock lock(&manager->mu_);
  manager->topics_ = std::move(topics);
  return manager;
}

absl::StatusOr<std::shared_ptr<Partition>> TopicManager::AttachPartition(
    const std::string& topic, int32_t index, const log::LogConfig& config,
    bool fresh) {
  log::PartitionLog* log = options_.logs->Get(topic, index);
  if (log != nullptr && fresh) {
    // Left over from a topic of the same name deleted before its logs were.
    spdlog::warn("deleting stale partition log {}-{}", topic, index);
    RUNNEL_RETURN_IF_ERROR(StorageError(options_.logs->Delete(topic, index)));
    log = nullptr;
  }
  if (log == nullptr) {
    absl::StatusOr<log::PartitionLog*> created =
        options_.logs->Create(topic, index, config);
    if (!created.ok()) return StorageError(created.status());
    log = *created;
  } else {
    log->SetConfig(config);
  }
  TopicPartition id{topic, index};
  auto notify = options_.on_hw_advanced;
  auto replica = std::make_unique<LocalReplicaState>(
      log, options_.broker_id, kLocalLeaderEpoch, [notify, id] {
        if (notify) notify(id);
      });
  auto partition = std::make_shared<Partition>(id, log, std::move(replica),
                                               options_.partition);
  RUNNEL_RETURN_IF_ERROR(StorageError(partition->RebuildProducerState()));
  return partition;
}

std::shared_ptr<const TopicManager::Topic> TopicManager::FindTopic(
    const std::string& name) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = topics_.find(name);
  return it == topics_.end() ? nullptr : it->second;
}

absl::Status TopicManager::CreateTopic(const NewTopicSpec& spec,
                                       bool validate_only) {
  RUNNEL_RETURN_IF_ERROR(CheckTopicName(spec.name));
  const int32_t partitions = spec.num_partitions == 0
                                 ? options_.default_num_partitions
                                 : spec.num_partitions;
  if (partitions < 1 || partitions > kMaxPartitionsPerTopic) {
    return MakeError(ErrorKind::kInvalidPartitions,
                     absl::StrCat("topic ", spec.name, ": ", partitions,
                                  " partitions; must be in [1, ",
                                  kMaxPartitionsPerTopic, "]"));
  }
  if (spec.replication_factor > 1 || spec.replication_factor < -1) {
    return MakeError(ErrorKind::kInvalidReplicationFactor,
                     absl::StrCat("topic ", spec.name, ": replication factor ",
                                  spec.replication_factor,
                                  " but this cluster has 1 broker"));
  }
  RUNNEL_RETURN_IF_ERROR(ValidateTopicConfigs(spec.configs));
  RUNNEL_ASSIGN_OR_RETURN(
      log::LogConfig config,
      ApplyTopicConfigs(options_.default_config, spec.configs));
  absl::MutexLock admin(&admin_mu_);
  if (FindTopic(spec.name) != nullptr) {
    return MakeError(ErrorKind::kTopicAlreadyExists,
                     absl::StrCat("topic ", spec.name, " already exists"));
  }
  if (validate_only) return absl::OkStatus();

  auto topic = std::make_shared<Topic>();
  topic->record = {.name = spec.name,
                   .num_partitions = partitions,
                   .replication_factor = 1,
                   .configs = spec.configs,
                   .created_ms = options_.clock->NowMs()};
  topic->config = config;
  // Metadata first: a crash before the logs exist leaves a topic whose
  // missing partitions Open() creates.
  RUNNEL_RETURN_IF_ERROR(
      StorageError(options_.metadata->CreateTopic(topic->record)));
  for (int32_t p = 0; p < partitions; ++p) {
    absl::StatusOr<std::shared_ptr<Partition>> partition =
        AttachPartition(spec.name, p, config, true);
    if (!partition.ok()) {
      for (auto& created : topic->partitions) created->MarkDeleted();
      for (int32_t q = 0; q < p; ++q) {
        options_.logs->Delete(spec.name, q).IgnoreError();  // best effort
      }
      options_.metadata->DeleteTopic(spec.name).IgnoreError();  // best effort
      return partition.status();
    }
    topic->partitions.push_back(*std::move(partition));
  }
  absl::MutexLock lock(&mu_);
  topics_[spec.name] = std::move(topic);
  return absl::OkStatus();
}

absl::Status TopicManager::DeleteTopic(const std::string& name) {
  absl::MutexLock admin(&admin_mu_);
  std::shared_ptr<const Topic> topic;
  {
    absl::MutexLock lock(&mu_);
    auto it = topics_.find(name);
    if (it == topics_.end()) return UnknownTopic(name);
    topic = it->second;
    topics_.erase(it);
  }
  RUNNEL_RETURN_IF_ERROR(StorageError(options_.metadata->DeleteTopic(name)));
  absl::Status first;
  for (const auto& partition : topic->partitions) {
    partition->MarkDeleted();  // waits for running operations
    absl::Status s = options_.logs->Delete(name, partition->id().partition);
    if (!s.ok() && first.ok()) first = StorageError(std::move(s));
  }
  return first;
}

absl::Status TopicManager::AlterConfigs(
    const std::string& name, const std::vector<ConfigChange>& changes,
    bool validate_only) {
  absl::MutexLock admin(&admin_mu_);
  std::shared_ptr<const Topic> topic = FindTopic(name);
  if (topic == nullptr) return UnknownTopic(name);
  ConfigMap configs = topic->record.configs;
  for (const ConfigChange& change : changes) {
    if (change.op == ConfigChange::Op::kSet) {
      RUNNEL_RETURN_IF_ERROR(ValidateTopicConfig(change.name, change.value));
      configs[change.name] = change.value;
    } else {
      if (std::find(KnownTopicConfigKeys().begin(),
                    KnownTopicConfigKeys().end(),
                    change.name) == KnownTopicConfigKeys().end()) {
        return MakeError(ErrorKind::kInvalidConfig,
                         absl::StrCat("unknown config key ", change.name));
      }
      configs.erase(change.name);
    }
  }
  RUNNEL_ASSIGN_OR_RETURN(log::LogConfig config,
                          ApplyTopicConfigs(options_.default_config, configs));
  if (validate_only) return absl::OkStatus();
  auto next = std::make_shared<Topic>(*topic);
  next->record.configs = std::move(configs);
  next->config = config;
  RUNNEL_RETURN_IF_ERROR(
      StorageError(options_.metadata->UpdateTopic(next->record)));
  for (const auto& partition : next->partitions) partition->SetConfig(config);
  absl::MutexLock lock(&mu_);
  topics_[name] = std::move(next);
  return absl::OkStatus();
}

absl::Status TopicManager::CreatePartitions(const std::string& name,
                                            int32_t total, bool validate_only) {
  absl::MutexLock admin(&admin_mu_);
  std::shared_ptr<const Topic> topic = FindTopic(name);
  if (topic == nullptr) return UnknownTopic(name);
  const int32_t current = topic->record.num_partitions;
  if (total <= current || total > kMaxPartitionsPerTopic) {
    return MakeError(
        ErrorKind::kInvalidPartitions,
        absl::StrCat("topic ", name, " has ", current,
                     " partitions; new count ", total, " must be in [",
                     current + 1, ", ", kMaxPartitionsPerTopic, "]"));
  }
  if (validate_only) return absl::OkStatus();
  auto next = std::make_shared<Topic>(*topic);
  next->record.num_partitions = total;
  RUNNEL_RETURN_IF_ERROR(
      StorageError(options_.metadata->UpdateTopic(next->record)));
  for (int32_t p = current; p < total; ++p) {
    RUNNEL_ASSIGN_OR_RETURN(auto partition,
                            AttachPartition(name, p, next->config, true));
    next->partitions.push_back(std::move(partition));
  }
  absl::MutexLock lock(&mu_);
  topics_[name] = std::move(next);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<Partition>> TopicManager::GetPartition(
    const std::string& topic, int32_t partition) const {
  std::shared_ptr<const Topic> t = FindTopic(topic);
  if (t == nullptr) {
    RUNNEL_RETURN_IF_ERROR(CheckTopicName(topic));
    return UnknownTopic(topic);
  }
  if (partition < 0 ||
      partition >= static_cast<int32_t>(t->partitions.size())) {
    return MakeError(
        ErrorKind::kUnknownTopicOrPartition,
        absl::StrCat("topic ", topic, " has no partition ", partition,
                     " (it has ", t->partitions.size(), ")"));
  }
  return t->partitions[partition];
}

absl::StatusOr<TopicDescription> TopicManager::Describe(
    const std::string& name) const {
  std::shared_ptr<const Topic> topic = FindTopic(name);
  if (topic == nullptr) {
    RUNNEL_RETURN_IF_ERROR(CheckTopicName(name));
    return UnknownTopic(name);
  }
  TopicDescription out;
  out.record = topic->record;
  for (const auto& partition : topic->partitions) {
    out.partitions.push_back(partition->State());
  }
  out.configs =
      EffectiveConfigs(options_.default_config, topic->record.configs);
  return out;
}

std::vector<TopicRecord> TopicManager::ListTopics() const {
  std::vector<TopicRecord> out;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [name, topic] : topics_) out.push_back(topic->record);
  }
  std::sort(out.begin(), out.end(),
            [](const TopicRecord& a, const TopicRecord& b) {
              return a.name < b.name;
            });
  return out;
}

std::vector<std::shared_ptr<Partition>> TopicManager::AllPartitions() const {
  std::vector<std::shared_ptr<Partition>> out;
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [name, topic] : topics_) {
    out.insert(out.end(), topic->partitions.begin(), topic->partitions.end());
  }
  return out;
}

}  // namespace runnel::broker
