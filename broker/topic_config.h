#pragma once

// Per-topic configs (Kafka's names) as text key/value overrides on top of the
// broker's defaults, validated and turned into a log::LogConfig. The keys,
// their ranges and defaults are listed in docs/broker.md.

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "log/log_config.h"

namespace runnel::broker {

// Topic config overrides, key -> value text. Sorted for stable output.
using ConfigMap = std::map<std::string, std::string, std::less<>>;

inline constexpr char kRetentionMs[] = "retention.ms";
inline constexpr char kRetentionBytes[] = "retention.bytes";
inline constexpr char kSegmentBytes[] = "segment.bytes";
inline constexpr char kSegmentMs[] = "segment.ms";
inline constexpr char kCleanupPolicy[] = "cleanup.policy";
inline constexpr char kMaxMessageBytes[] = "max.message.bytes";
inline constexpr char kMessageTimestampType[] = "message.timestamp.type";
inline constexpr char kDeleteRetentionMs[] = "delete.retention.ms";
inline constexpr char kMinCompactionLagMs[] = "min.compaction.lag.ms";
inline constexpr char kMinCleanableDirtyRatio[] = "min.cleanable.dirty.ratio";

// Largest accepted max.message.bytes: the gRPC message size limit.
inline constexpr int64_t kMaxMaxMessageBytes = int64_t{64} << 20;

// Every key a topic may set, sorted.
const std::vector<absl::string_view>& KnownTopicConfigKeys();

// OK, or an INVALID_CONFIG error (kInvalidArgument) naming the key: unknown
// key, value not a canonical integer, or out of range.
absl::Status ValidateTopicConfig(absl::string_view key,
                                 absl::string_view value);
// Every entry of `configs`; the first problem.
absl::Status ValidateTopicConfigs(const ConfigMap& configs);

// `defaults` with `overrides` applied, checked by LogConfig::Validate().
// INVALID_CONFIG on a bad override.
absl::StatusOr<log::LogConfig> ApplyTopicConfigs(const log::LogConfig& defaults,
                                                 const ConfigMap& overrides);

// One config key with the value that applies to a topic.
struct EffectiveConfig {
  std::string name;
  std::string value;
  bool is_default = true;  // not overridden by the topic
};
// Every known key with its effective value for a topic with `overrides`.
std::vector<EffectiveConfig> EffectiveConfigs(const log::LogConfig& defaults,
                                              const ConfigMap& overrides);

}  // namespace runnel::broker
