#pragma once

// Request counters and latency histograms per API, rendered in the
// Prometheus text exposition format (version 0.0.4). The metric names are
// listed in docs/broker.md.

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace runnel::broker {

enum class Api : int {
  kProduce,
  kFetch,
  kFetchStream,
  kListOffsets,
  kMetadata,
  kInitProducerId,
  kCreateTopics,
  kDeleteTopics,
  kDescribeTopics,
  kListTopics,
  kAlterTopicConfigs,
  kCreatePartitions,
};
inline constexpr int kApiCount = 12;

// "Produce", "Fetch", ... (the RPC names).
absl::string_view ApiName(Api api);

// Upper bounds (seconds) of the request latency histogram buckets; +Inf last.
inline constexpr std::array<double, 16> kLatencyBucketsSeconds = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};

// A fixed-bucket histogram. Thread-safe (relaxed atomics: a scrape may see
// counts from slightly different moments, which Prometheus tolerates).
class LatencyHistogram {
 public:
  LatencyHistogram() = default;
  LatencyHistogram(const LatencyHistogram&) = delete;
  LatencyHistogram& operator=(const LatencyHistogram&) = delete;

  void Record(absl::Duration latency);
  // Appends `name`_bucket/_sum/_count lines with `labels` ("api=\"Fetch\"").
  void Render(absl::string_view name, absl::string_view labels,
              std::string* out) const;
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }

 private:
  std::array<std::atomic<uint64_t>, kLatencyBucketsSeconds.size() + 1>
      buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_ns_{0};
};

// Thread-safe.
class BrokerMetrics {
 public:
  BrokerMetrics() = default;
  BrokerMetrics(const BrokerMetrics&) = delete;
  BrokerMetrics& operator=(const BrokerMetrics&) = delete;

  // One finished request; `failed` when the call itself failed (non-OK
  // status) or every partition in it failed.
  void RecordRequest(Api api, absl::Duration latency, bool failed);
  // Partition-level errors inside otherwise answered requests.
  void RecordPartitionErrors(Api api, uint64_t count);

  uint64_t requests(Api api) const;

  // runnel_requests_total, runnel_request_errors_total,
  // runnel_partition_errors_total, runnel_request_duration_seconds.
  void Render(std::string* out) const;

 private:
  struct PerApi {
    std::atomic<uint64_t> requests{0};
    std::atomic<uint64_t> errors{0};
    std::atomic<uint64_t> partition_errors{0};
    LatencyHistogram latency;
  };
  std::array<PerApi, kApiCount> apis_;
};

}  // namespace runnel::broker
