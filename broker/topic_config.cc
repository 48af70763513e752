#include "broker/topic_config.h"

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

#include "broker/errors.h"
#include "common/status_macros.h"

namespace runnel::broker {
namespace {

absl::Status ConfigError(absl::string_view key, absl::string_view value,
                         absl::string_view why) {
  return MakeError(ErrorKind::kInvalidConfig,
                   absl::StrCat("config ", key, "=", value, ": ", why));
}

// Strict decimal integer: optional '-', digits, nothing else.
absl::StatusOr<int64_t> ParseInt(absl::string_view key,
                                 absl::string_view value) {
  bool ok = !value.empty();
  for (size_t i = 0; ok && i < value.size(); ++i) {
    ok = (value[i] >= '0' && value[i] <= '9') ||
         (i == 0 && value[i] == '-' && value.size() > 1);
  }
  int64_t out = 0;
  if (!ok || !absl::SimpleAtoi(value, &out)) {
    return ConfigError(key, value, "not an integer");
  }
  return out;
}

absl::StatusOr<int64_t> ParseIntInRange(absl::string_view key,
                                        absl::string_view value, int64_t min,
                                        int64_t max, bool allow_minus_one) {
  RUNNEL_ASSIGN_OR_RETURN(int64_t v, ParseInt(key, value));
  if (allow_minus_one && v == -1) return v;
  if (v < min || v > max) {
    return ConfigError(key, value,
                       absl::StrCat("must be in [", min, ", ", max, "]",
                                    allow_minus_one ? " or -1" : ""));
  }
  return v;
}

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();

// Parses and applies one override to `config`.
absl::Status ApplyOne(absl::string_view key, absl::string_view value,
                      log::LogConfig* config) {
  if (key == kRetentionMs) {
    RUNNEL_ASSIGN_OR_RETURN(config->retention_ms,
                            ParseIntInRange(key, value, 0, kInt64Max, true));
  } else if (key == kRetentionBytes) {
    RUNNEL_ASSIGN_OR_RETURN(config->retention_bytes,
                            ParseIntInRange(key, value, 0, kInt64Max, true));
  } else if (key == kSegmentBytes) {
    // 14: one minimal batch; below 2^31 because index positions are 4 bytes.
    RUNNEL_ASSIGN_OR_RETURN(config->segment_bytes,
                            ParseIntInRange(key, value, 14, kInt32Max, false));
  } else if (key == kSegmentMs) {
    RUNNEL_ASSIGN_OR_RETURN(config->segment_ms,
                            ParseIntInRange(key, value, 1, kInt64Max, false));
  } else if (key == kMaxMessageBytes) {
    RUNNEL_ASSIGN_OR_RETURN(
        int64_t v, ParseIntInRange(key, value, 1, kMaxMaxMessageBytes, false));
    config->max_message_bytes = static_cast<int32_t>(v);
  } else if (key == kCleanupPolicy) {
    // A list like Kafka's: "delete", "compact" or both, in either order,
    // blanks around the names allowed ("compact, delete"); kept without them.
    std::vector<std::string> policies;
    for (absl::string_view policy : absl::StrSplit(value, ',')) {
      policy = absl::StripAsciiWhitespace(policy);
      if ((policy != "delete" && policy != "compact") ||
          absl::c_linear_search(policies, policy)) {
        return ConfigError(key, value,
                           "must be delete, compact or compact,delete");
      }
      policies.emplace_back(policy);
    }
    config->cleanup_policy = absl::StrJoin(policies, ",");
  } else if (key == kDeleteRetentionMs) {
    RUNNEL_ASSIGN_OR_RETURN(config->delete_retention_ms,
                            ParseIntInRange(key, value, 0, kInt64Max, false));
  } else if (key == kMinCleanableDirtyRatio) {
    double v = 0;
    if (!absl::SimpleAtod(value, &v) || !(v >= 0 && v <= 1)) {
      return ConfigError(key, value, "must be a number in [0, 1]");
    }
    config->min_cleanable_dirty_ratio = v;
  } else if (key == kMinCompactionLagMs) {
    RUNNEL_ASSIGN_OR_RETURN(config->min_compaction_lag_ms,
                            ParseIntInRange(key, value, 0, kInt64Max, false));
  } else if (key == kMessageTimestampType) {
    if (value == "CreateTime") {
      config->message_timestamp_type = log::TimestampType::kCreateTime;
    } else if (value == "LogAppendTime") {
      config->message_timestamp_type = log::TimestampType::kLogAppendTime;
    } else {
      return ConfigError(key, value, "must be CreateTime or LogAppendTime");
    }
  } else {
    return ConfigError(key, value, "unknown config key");
  }
  return absl::OkStatus();
}

std::string ValueOf(absl::string_view key, const log::LogConfig& config) {
  if (key == kRetentionMs) return absl::StrCat(config.retention_ms);
  if (key == kRetentionBytes) return absl::StrCat(config.retention_bytes);
  if (key == kSegmentBytes) return absl::StrCat(config.segment_bytes);
  if (key == kSegmentMs) return absl::StrCat(config.segment_ms);
  if (key == kMaxMessageBytes) return absl::StrCat(config.max_message_bytes);
  if (key == kCleanupPolicy) return config.cleanup_policy;
  if (key == kDeleteRetentionMs) {
    return absl::StrCat(config.delete_retention_ms);
  }
  if (key == kMinCleanableDirtyRatio) {
    return absl::StrCat(config.min_cleanable_dirty_ratio);
  }
  if (key == kMinCompactionLagMs) {
    return absl::StrCat(config.min_compaction_lag_ms);
  }
  if (key == kMessageTimestampType) {
    return config.message_timestamp_type == log::TimestampType::kLogAppendTime
               ? "LogAppendTime"
               : "CreateTime";
  }
  return "";
}

}  // namespace

const std::vector<absl::string_view>& KnownTopicConfigKeys() {
  static const auto* const keys = new std::vector<absl::string_view>{
      kCleanupPolicy,          kDeleteRetentionMs,
      kMaxMessageBytes,        kMessageTimestampType,
      kMinCleanableDirtyRatio, kMinCompactionLagMs,
      kRetentionBytes,         kRetentionMs,
      kSegmentBytes,           kSegmentMs};
  return *keys;
}

absl::Status ValidateTopicConfig(absl::string_view key,
                                 absl::string_view value) {
  log::LogConfig scratch;
  return ApplyOne(key, value, &scratch);
}

absl::Status ValidateTopicConfigs(const ConfigMap& configs) {
  for (const auto& [key, value] : configs) {
    RUNNEL_RETURN_IF_ERROR(ValidateTopicConfig(key, value));
  }
  return absl::OkStatus();
}

absl::StatusOr<log::LogConfig> ApplyTopicConfigs(const log::LogConfig& defaults,
                                                 const ConfigMap& overrides) {
  log::LogConfig config = defaults;
  for (const auto& [key, value] : overrides) {
    RUNNEL_RETURN_IF_ERROR(ApplyOne(key, value, &config));
  }
  if (absl::Status s = config.Validate(); !s.ok()) {
    return WithKind(std::move(s), ErrorKind::kInvalidConfig);
  }
  return config;
}

std::vector<EffectiveConfig> EffectiveConfigs(const log::LogConfig& defaults,
                                              const ConfigMap& overrides) {
  absl::StatusOr<log::LogConfig> applied =
      ApplyTopicConfigs(defaults, overrides);
  const log::LogConfig& config = applied.ok() ? *applied : defaults;
  std::vector<EffectiveConfig> out;
  for (absl::string_view key : KnownTopicConfigKeys()) {
    out.push_back({std::string(key), ValueOf(key, config),
                   overrides.find(key) == overrides.end()});
  }
  return out;
}

}  // namespace runnel::broker
