#pragma once

// Value types shared by the Runnel client library's Producer, Consumer and
// Admin (docs/client.md). Plain data; thread-compatible.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace runnel::client {

// One partition of one topic.
struct TopicPartition {
  std::string topic;
  int32_t partition = 0;

  bool operator==(const TopicPartition&) const = default;
  auto operator<=>(const TopicPartition&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const TopicPartition& tp) {
    return H::combine(std::move(h), tp.topic, tp.partition);
  }
};

// One record header. The key is never null; the value may be.
struct Header {
  std::string key;
  std::optional<std::string> value;
  bool operator==(const Header&) const = default;
};

// What a producer sends. A null key (nullopt) is distinct from an empty key,
// and a null value (a tombstone) from an empty value.
struct ProducerRecord {
  std::string topic;
  // Explicit partition; nullopt: murmur2 of the key (like Kafka's default
  // partitioner), or the sticky partition when the key is null too.
  std::optional<int32_t> partition;
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<Header> headers;
  // CreateTime in milliseconds since the epoch; nullopt: the producer's clock.
  std::optional<int64_t> timestamp_ms;
};

// Where an acknowledged record landed.
struct RecordMetadata {
  std::string topic;
  int32_t partition = 0;
  // -1 with acks=none (the broker reports no offsets).
  int64_t offset = -1;
  // The record's CreateTime, or the broker's LogAppendTime for topics that
  // use message.timestamp.type=LogAppendTime.
  int64_t timestamp_ms = -1;
};

// Called exactly once per record: with its metadata once acknowledged, or
// with the reason it failed (after retries, within delivery.timeout.ms).
using DeliveryCallback =
    std::function<void(const absl::StatusOr<RecordMetadata>& result)>;

// One header of a ConsumerRecord: views, like the record's key and value.
struct HeaderView {
  std::string_view key;
  std::optional<std::string_view> value;
  bool operator==(const HeaderView&) const = default;
  // Compares with a producer's header (tests, filters).
  bool operator==(const Header& h) const {
    return key == h.key && value == h.value;
  }
};

// What a consumer receives. topic, key, value and headers are views into
// the fetched batches and the fetch's copy of the topic name (no copy per
// record, as librdkafka's messages point into its fetch buffers): they stay
// valid as long as this record, or a copy of it, lives, because `storage`
// keeps the bytes. Take a std::string of a view to keep it longer.
struct ConsumerRecord {
  std::string_view topic;
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t timestamp_ms = 0;
  bool log_append_time = false;  // timestamp type of the batch
  std::optional<std::string_view> key;
  std::optional<std::string_view> value;
  std::vector<HeaderView> headers;
  // Owns the bytes the views point into; shared by a fetch's records.
  std::shared_ptr<const void> storage;
};

// Acknowledgement level (Kafka's acks=0 / 1 / all).
enum class Acks { kNone, kLeader, kAll };

// Batch compression (Kafka's compression.type).
enum class Compression { kNone, kGzip, kSnappy, kLz4, kZstd };

// "all"/"-1", "leader"/"1", "none"/"0". InvalidArgument otherwise.
absl::StatusOr<Acks> ParseAcks(std::string_view name);
// "none", "gzip", "snappy", "lz4", "zstd". InvalidArgument otherwise.
absl::StatusOr<Compression> ParseCompression(std::string_view name);

}  // namespace runnel::client
