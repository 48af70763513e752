#include "broker/metrics.h"

#include "absl/strings/str_cat.h"

namespace runnel::broker {
namespace {

constexpr absl::string_view kApiNames[kApiCount] = {
    "Produce",           "Fetch",
    "FetchStream",       "ListOffsets",
    "Metadata",          "InitProducerId",
    "CreateTopics",      "DeleteTopics",
    "DescribeTopics",    "ListTopics",
    "AlterTopicConfigs", "CreatePartitions"};

}  // namespace

absl::string_view ApiName(Api api) { return kApiNames[static_cast<int>(api)]; }

void LatencyHistogram::Record(absl::Duration latency) {
  const double seconds = absl::ToDoubleSeconds(latency);
  size_t i = 0;
  while (i < kLatencyBucketsSeconds.size() &&
         seconds > kLatencyBucketsSeconds[i]) {
    ++i;
  }
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(absl::ToInt64Nanoseconds(latency)),
                    std::memory_order_relaxed);
}

void LatencyHistogram::Render(absl::string_view name, absl::string_view labels,
                              std::string* out) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= kLatencyBucketsSeconds.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    std::string le = i < kLatencyBucketsSeconds.size()
                         ? absl::StrCat(kLatencyBucketsSeconds[i])
                         : "+Inf";
    absl::StrAppend(out, name, "_bucket{", labels, ",le=\"", le, "\"} ",
                    cumulative, "\n");
  }
  absl::StrAppend(
      out, name, "_sum{", labels, "} ",
      static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9, "\n");
  absl::StrAppend(out, name, "_count{", labels, "} ", cumulative, "\n");
}

void BrokerMetrics::RecordRequest(Api api, absl::Duration latency,
                                  bool failed) {
  PerApi& m = apis_[static_cast<int>(api)];
  m.requests.fetch_add(1, std::memory_order_relaxed);
  if (failed) m.errors.fetch_add(1, std::memory_order_relaxed);
  m.latency.Record(latency);
}

void BrokerMetrics::RecordPartitionErrors(Api api, uint64_t count) {
  if (count == 0) return;
  apis_[static_cast<int>(api)].partition_errors.fetch_add(
      count, std::memory_order_relaxed);
}

uint64_t BrokerMetrics::requests(Api api) const {
  return apis_[static_cast<int>(api)].requests.load(std::memory_order_relaxed);
}

void BrokerMetrics::Render(std::string* out) const {
  auto counter = [&](absl::string_view name, absl::string_view help,
                     auto field) {
    absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name,
                    " counter\n");
    for (int i = 0; i < kApiCount; ++i) {
      absl::StrAppend(out, name, "{api=\"", kApiNames[i], "\"} ",
                      (apis_[i].*field).load(std::memory_order_relaxed), "\n");
    }
  };
  counter("runnel_requests_total", "Requests answered, by API.",
          &PerApi::requests);
  counter("runnel_request_errors_total",
          "Requests that failed as a whole, by API.", &PerApi::errors);
  counter("runnel_partition_errors_total",
          "Per-partition (or per-topic) errors inside answered requests.",
          &PerApi::partition_errors);
  absl::StrAppend(out,
                  "# HELP runnel_request_duration_seconds Time from request "
                  "arrival to response, by API.\n"
                  "# TYPE runnel_request_duration_seconds histogram\n");
  for (int i = 0; i < kApiCount; ++i) {
    apis_[i].latency.Render("runnel_request_duration_seconds",
                            absl::StrCat("api=\"", kApiNames[i], "\""), out);
  }
}

}  // namespace runnel::broker
