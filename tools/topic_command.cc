#include "tools/topic_command.h"

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "tools/cli_context.h"
#include "tools/client_cli.h"
#include "tools/output_format.h"

#include "runnel/admin.h"

namespace runnel::tools {

namespace {

struct TopicArgs {
  std::string name;
  int32_t partitions = 0;
  int32_t replication_factor = 1;
  std::vector<std::string> configs;
  std::vector<std::string> delete_configs;
  bool json = false;
};

std::unique_ptr<client::Admin> MakeAdmin() {
  client::AdminOptions options;
  options.bootstrap = GetCliContext().bootstrap;
  return client::Admin::Create(options).value();  // only fails on empty
}

std::string IntList(const std::vector<int32_t>& v) {
  return absl::StrJoin(v, ",");
}

std::string JsonIntArray(const std::vector<int32_t>& v) {
  return absl::StrCat("[", absl::StrJoin(v, ","), "]");
}

void PrintDescription(const client::TopicDescription& d, bool json) {
  if (json) {
    std::string partitions = "[";
    for (size_t i = 0; i < d.partitions.size(); ++i) {
      const client::PartitionDescription& p = d.partitions[i];
      if (i > 0) partitions += ",";
      partitions += JsonObject()
                        .Int("partition", p.partition)
                        .Int("leader", p.leader_id)
                        .Int("leader_epoch", p.leader_epoch)
                        .Raw("replicas", JsonIntArray(p.replicas))
                        .Raw("isr", JsonIntArray(p.isr))
                        .Int("log_start_offset", p.log_start_offset)
                        .Int("high_watermark", p.high_watermark)
                        .Int("log_end_offset", p.log_end_offset)
                        .Int("size_bytes", p.size_bytes)
                        .Build();
    }
    partitions += "]";
    JsonObject configs;
    for (const auto& [k, v] : d.configs) configs.String(k, v.value);
    std::cout << JsonObject()
                     .String("name", d.name)
                     .Int("partitions_count",
                          static_cast<int64_t>(d.partitions.size()))
                     .Int("replication_factor", d.replication_factor)
                     .Bool("internal", d.is_internal)
                     .Raw("partitions", partitions)
                     .Raw("configs", configs.Build())
                     .Build()
              << "\n";
    return;
  }
  std::vector<std::string> overrides;
  for (const auto& [k, v] : d.configs) {
    if (!v.is_default) overrides.push_back(absl::StrCat(k, "=", v.value));
  }
  std::cout << "Topic: " << d.name << "\tPartitions: " << d.partitions.size()
            << "\tReplicationFactor: " << d.replication_factor
            << "\tConfigs: " << absl::StrJoin(overrides, ",") << "\n";
  for (const client::PartitionDescription& p : d.partitions) {
    std::cout << "\tPartition: " << p.partition << "\tLeader: " << p.leader_id
              << "\tReplicas: " << IntList(p.replicas)
              << "\tIsr: " << IntList(p.isr)
              << "\tLogStart: " << p.log_start_offset
              << "\tHighWatermark: " << p.high_watermark
              << "\tLogEnd: " << p.log_end_offset << "\n";
  }
}

void AddCreate(CLI::App& topic) {
  auto a = std::make_shared<TopicArgs>();
  CLI::App* cmd = topic.add_subcommand("create", "Create a topic");
  cmd->add_option("NAME", a->name, "Topic name ([a-zA-Z0-9._-], <= 249)")
      ->required();
  cmd->add_option("--partitions", a->partitions, "Number of partitions")
      ->required()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--replication-factor", a->replication_factor,
                  "Replicas per partition (1 on a single broker)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option(
         "--config", a->configs,
         "Topic config KEY=VALUE (repeatable), e.g. retention.ms=60000")
      ->type_name("K=V");
  cmd->callback([a] {
    auto configs = ParseKeyValues(a->configs, "--config");
    if (!configs.ok()) return Fail("topic create", configs.status(), 2);
    client::NewTopic t{a->name, a->partitions, a->replication_factor, *configs};
    absl::Status s = MakeAdmin()->CreateTopic(t);
    if (!s.ok()) return Fail("topic create", s);
    std::cout << "Created topic " << a->name << " with " << a->partitions
              << " partition" << (a->partitions == 1 ? "" : "s") << "\n";
  });
}

void AddList(CLI::App& topic) {
  auto a = std::make_shared<TopicArgs>();
  auto internal = std::make_shared<bool>(false);
  CLI::App* cmd = topic.add_subcommand("list", "List topics");
  cmd->add_flag("--json", a->json, "One JSON object per topic per line");
  cmd->add_flag("--internal", *internal, "Include internal topics (__*)");
  cmd->callback([a, internal] {
    auto topics = MakeAdmin()->ListTopics(*internal);
    if (!topics.ok()) return Fail("topic list", topics.status());
    for (const client::TopicListing& t : *topics) {
      if (a->json) {
        std::cout << JsonObject()
                         .String("name", t.name)
                         .Int("partitions", t.num_partitions)
                         .Bool("internal", t.is_internal)
                         .Build()
                  << "\n";
      } else {
        std::cout << t.name << "\t" << t.num_partitions << "\n";
      }
    }
  });
}

void AddDescribe(CLI::App& topic) {
  auto a = std::make_shared<TopicArgs>();
  CLI::App* cmd = topic.add_subcommand(
      "describe", "Partitions (leader, log start, high watermark) and configs");
  cmd->add_option("NAME", a->name, "Topic name")->required();
  cmd->add_flag("--json", a->json, "One JSON object");
  cmd->callback([a] {
    auto topics = MakeAdmin()->DescribeTopics({a->name});
    if (!topics.ok()) return Fail("topic describe", topics.status());
    for (const client::TopicDescription& d : *topics) {
      PrintDescription(d, a->json);
    }
  });
}

void AddDelete(CLI::App& topic) {
  auto a = std::make_shared<TopicArgs>();
  CLI::App* cmd = topic.add_subcommand("delete", "Delete a topic and its data");
  cmd->add_option("NAME", a->name, "Topic name")->required();
  cmd->callback([a] {
    absl::Status s = MakeAdmin()->DeleteTopic(a->name);
    if (!s.ok()) return Fail("topic delete", s);
    std::cout << "Deleted topic " << a->name << "\n";
  });
}

void AddAlter(CLI::App& topic) {
  auto a = std::make_shared<TopicArgs>();
  CLI::App* cmd = topic.add_subcommand("alter", "Set or reset topic configs");
  cmd->add_option("NAME", a->name, "Topic name")->required();
  cmd->add_option("--config", a->configs, "Set KEY=VALUE (repeatable)")
      ->type_name("K=V");
  cmd->add_option("--delete-config", a->delete_configs,
                  "Reset KEY to the broker default (repeatable)")
      ->type_name("KEY");
  cmd->callback([a] {
    if (a->configs.empty() && a->delete_configs.empty()) {
      return Fail("topic alter",
                  absl::InvalidArgumentError(
                      "nothing to change: give --config or --delete-config"),
                  2);
    }
    auto configs = ParseKeyValues(a->configs, "--config");
    if (!configs.ok()) return Fail("topic alter", configs.status(), 2);
    absl::Status s =
        MakeAdmin()->AlterTopicConfigs(a->name, *configs, a->delete_configs);
    if (!s.ok()) return Fail("topic alter", s);
    std::cout << "Altered topic " << a->name << "\n";
  });
}

void AddAddPartitions(CLI::App& topic) {
  auto a = std::make_shared<TopicArgs>();
  CLI::App* cmd =
      topic.add_subcommand("add-partitions", "Raise a topic's partition count");
  cmd->add_option("NAME", a->name, "Topic name")->required();
  cmd->add_option("--partitions", a->partitions, "The new total count")
      ->required()
      ->check(CLI::PositiveNumber);
  cmd->callback([a] {
    absl::Status s = MakeAdmin()->CreatePartitions(a->name, a->partitions);
    if (!s.ok()) return Fail("topic add-partitions", s);
    std::cout << "Topic " << a->name << " now has " << a->partitions
              << " partitions\n";
  });
}

}  // namespace

void RegisterTopicCommand(CLI::App& app) {
  CLI::App* topic = app.add_subcommand("topic", "Manage topics");
  topic->require_subcommand(1);
  AddCreate(*topic);
  AddList(*topic);
  AddDescribe(*topic);
  AddDelete(*topic);
  AddAlter(*topic);
  AddAddPartitions(*topic);
}

}  // namespace runnel::tools
