#include "broker/topic_config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "broker/errors.h"
#include "tests/testing/status_matchers.h"

namespace runnel::broker {
namespace {

using ::runnel::testing::IsOk;
using ::runnel::testing::StatusIs;

TEST(TopicConfigTest, AcceptsEveryKnownKeyWithAValidValue) {
  ConfigMap configs = {{"retention.ms", "-1"},
                       {"retention.bytes", "1048576"},
                       {"segment.bytes", "1048576"},
                       {"segment.ms", "60000"},
                       {"cleanup.policy", "compact"},
                       {"max.message.bytes", "2048"},
                       {"message.timestamp.type", "LogAppendTime"},
                       {"delete.retention.ms", "0"},
                       {"min.compaction.lag.ms", "60000"},
                       {"min.cleanable.dirty.ratio", "0.25"}};
  EXPECT_THAT(ValidateTopicConfigs(configs), IsOk());
  absl::StatusOr<log::LogConfig> config =
      ApplyTopicConfigs(log::LogConfig{}, configs);
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->retention_ms, -1);
  EXPECT_EQ(config->retention_bytes, 1048576);
  EXPECT_EQ(config->segment_bytes, 1048576);
  EXPECT_EQ(config->segment_ms, 60000);
  EXPECT_EQ(config->cleanup_policy, "compact");
  EXPECT_EQ(config->max_message_bytes, 2048);
  EXPECT_EQ(config->message_timestamp_type, log::TimestampType::kLogAppendTime);
  EXPECT_EQ(config->delete_retention_ms, 0);
  EXPECT_EQ(config->min_compaction_lag_ms, 60000);
  EXPECT_EQ(config->min_cleanable_dirty_ratio, 0.25);
}

TEST(TopicConfigTest, CleanupPolicyNamesCompactDeleteOrBoth) {
  const struct {
    const char* value;
    const char* stored;
    bool compact;
    bool delete_enabled;
  } cases[] = {{"delete", "delete", false, true},
               {"compact", "compact", true, false},
               {"compact,delete", "compact,delete", true, true},
               {"delete,compact", "delete,compact", true, true},
               // Blanks around the names, as Kafka's list configs allow.
               {"compact, delete", "compact,delete", true, true},
               {" delete ,\tcompact ", "delete,compact", true, true},
               {" compact", "compact", true, false}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.value);
    absl::StatusOr<log::LogConfig> config =
        ApplyTopicConfigs(log::LogConfig{}, {{"cleanup.policy", c.value}});
    ASSERT_THAT(config, IsOk());
    EXPECT_EQ(config->cleanup_policy, c.stored);
    EXPECT_EQ(config->compact(), c.compact);
    EXPECT_EQ(config->delete_enabled(), c.delete_enabled);
    RUNNEL_EXPECT_OK(config->Validate());
  }
}

TEST(TopicConfigTest, CompactionDefaultsFollowKafka) {
  const log::LogConfig defaults;
  EXPECT_EQ(defaults.cleanup_policy, "delete");
  EXPECT_EQ(defaults.delete_retention_ms, 86'400'000);  // 1 day
  EXPECT_EQ(defaults.min_compaction_lag_ms, 0);
  EXPECT_EQ(defaults.min_cleanable_dirty_ratio, 0.5);
  std::vector<EffectiveConfig> configs = EffectiveConfigs(defaults, {});
  auto value_of = [&](const std::string& name) {
    for (const EffectiveConfig& c : configs) {
      if (c.name == name) return c.value;
    }
    return std::string("<missing>");
  };
  EXPECT_EQ(value_of("delete.retention.ms"), "86400000");
  EXPECT_EQ(value_of("min.cleanable.dirty.ratio"), "0.5");
  EXPECT_EQ(value_of("min.compaction.lag.ms"), "0");
  EXPECT_EQ(value_of("cleanup.policy"), "delete");
}

TEST(TopicConfigTest, UnknownKeyIsInvalidConfig) {
  absl::Status s = ValidateTopicConfig("retention.hours", "1");
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(ErrorKindOf(s), ErrorKind::kInvalidConfig);
}

TEST(TopicConfigTest, BadValuesAreInvalidConfig) {
  const std::pair<const char*, const char*> bad[] = {
      {"retention.ms", "abc"},
      {"retention.ms", "-2"},
      {"retention.ms", " 1"},
      {"retention.ms", ""},
      {"retention.bytes", "1.5"},
      {"segment.bytes", "13"},
      {"segment.bytes", "-1"},
      {"segment.bytes", "4294967296"},
      {"segment.ms", "0"},
      {"max.message.bytes", "0"},
      {"max.message.bytes", "999999999"},
      {"cleanup.policy", "forever"},
      {"cleanup.policy", "compact delete"},
      {"cleanup.policy", "compact;delete"},
      {"cleanup.policy", "compact,"},
      {"cleanup.policy", "compact,compact"},
      {"cleanup.policy", " compact , compact"},
      {"cleanup.policy", ""},
      {"delete.retention.ms", "-1"},
      {"delete.retention.ms", "1d"},
      {"min.cleanable.dirty.ratio", "1.5"},
      {"min.cleanable.dirty.ratio", "-0.1"},
      {"min.cleanable.dirty.ratio", "half"},
      {"min.cleanable.dirty.ratio", "nan"},
      {"min.compaction.lag.ms", "-5"},
      {"min.compaction.lag.ms", ""},
      {"message.timestamp.type", "createtime"},
  };
  for (const auto& [key, value] : bad) {
    SCOPED_TRACE(std::string(key) + "=" + value);
    absl::Status s = ValidateTopicConfig(key, value);
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_EQ(ErrorKindOf(s), ErrorKind::kInvalidConfig);
  }
}

TEST(TopicConfigTest, EffectiveConfigsListEveryKeyAndMarkOverrides) {
  log::LogConfig defaults;
  defaults.retention_ms = 1000;
  std::vector<EffectiveConfig> configs =
      EffectiveConfigs(defaults, {{"segment.ms", "5000"}});
  ASSERT_EQ(configs.size(), KnownTopicConfigKeys().size());
  for (const EffectiveConfig& c : configs) {
    if (c.name == "segment.ms") {
      EXPECT_EQ(c.value, "5000");
      EXPECT_FALSE(c.is_default);
    } else if (c.name == "retention.ms") {
      EXPECT_EQ(c.value, "1000");
      EXPECT_TRUE(c.is_default);
    } else {
      EXPECT_TRUE(c.is_default) << c.name;
    }
  }
}

TEST(ErrorKindTest, EveryKindSurvivesMakeErrorAndHasItsName) {
  for (int k = static_cast<int>(ErrorKind::kUnknown);
       k <= static_cast<int>(ErrorKind::kInvalidReplicationFactor); ++k) {
    const ErrorKind kind = static_cast<ErrorKind>(k);
    absl::Status s = MakeError(kind, "x");
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(ErrorKindOf(s), kind) << ErrorKindName(kind);
  }
  EXPECT_EQ(ErrorKindName(ErrorKind::kCorruptMessage), "CORRUPT_MESSAGE");
  EXPECT_TRUE(IsRetriable(ErrorKind::kNotLeader));
  EXPECT_FALSE(IsRetriable(ErrorKind::kCorruptMessage));
}

TEST(ErrorKindTest, PlainStatusCodesMapToKinds) {
  EXPECT_EQ(ErrorKindOf(absl::OkStatus()), ErrorKind::kNone);
  EXPECT_EQ(ErrorKindOf(absl::NotFoundError("")),
            ErrorKind::kUnknownTopicOrPartition);
  EXPECT_EQ(ErrorKindOf(absl::OutOfRangeError("")),
            ErrorKind::kOffsetOutOfRange);
  EXPECT_EQ(ErrorKindOf(absl::DataLossError("")), ErrorKind::kStorageError);
  EXPECT_EQ(ErrorKindOf(absl::InternalError("")), ErrorKind::kUnknown);
}

}  // namespace
}  // namespace runnel::broker
