#include "broker/broker_core.h"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

#include "broker/errors.h"
#include "broker/local_metadata_store.h"
#include "common/check.h"
#include "common/status_macros.h"
#include "log/io_thread.h"

namespace runnel::broker {
namespace {

constexpr int64_t kProducerIdBlockSize = 1000;
constexpr size_t kDefaultPartitionMaxBytes = size_t{1} << 20;
constexpr size_t kDefaultFetchMaxBytes = size_t{64} << 20;

absl::Status MakeDataDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat(dir, ": cannot create data directory: ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace

// One Produce request in flight: collects per-partition results, answers
// once when all are in or the timeout fires, whichever is first.
struct BrokerCore::ProduceOp {
  absl::Mutex mu;
  std::vector<ProduceResult> results ABSL_GUARDED_BY(mu);
  std::vector<bool> filled ABSL_GUARDED_BY(mu);
  size_t remaining ABSL_GUARDED_BY(mu) = 0;
  bool finished ABSL_GUARDED_BY(mu) = false;
  TimerQueue::TimerId timer ABSL_GUARDED_BY(mu) = 0;
  TimerQueue* timers = nullptr;
  ProduceCallback done;
};

BrokerCore::~BrokerCore() {
  absl::MutexLock lock(&mu_);
  RUNNEL_CHECK_MSG(closed_ || logs_ == nullptr,
                   "BrokerCore destroyed without Close()");
}

absl::StatusOr<std::unique_ptr<BrokerCore>> BrokerCore::Open(
    BrokerCoreOptions options) {
  auto core = std::unique_ptr<BrokerCore>(new BrokerCore());
  core->broker_id_ = options.broker_id;
  core->clock_ = options.clock;
  RUNNEL_RETURN_IF_ERROR(MakeDataDir(options.data_dir));
  if (options.metadata != nullptr) {
    core->metadata_ = std::move(options.metadata);
  } else {
    RUNNEL_ASSIGN_OR_RETURN(core->metadata_,
                            LocalMetadataStore::Open(options.data_dir));
  }
  // The logs found at start get their topic's config from the store.
  RUNNEL_ASSIGN_OR_RETURN(std::vector<TopicRecord> records,
                          core->metadata_->ListTopics());
  auto configs =
      std::make_shared<absl::flat_hash_map<std::string, log::LogConfig>>();
  for (const TopicRecord& record : records) {
    RUNNEL_ASSIGN_OR_RETURN(
        (*configs)[record.name],
        ApplyTopicConfigs(options.default_config, record.configs));
  }
  log::LogManagerOptions log_options;
  log_options.data_dir = options.data_dir;
  log_options.default_config = options.default_config;
  log_options.config_for_topic =
      [configs, defaults = options.default_config](const std::string& topic) {
        auto it = configs->find(topic);
        return it == configs->end() ? defaults : it->second;
      };
  log_options.io_threads = options.io_threads;
  log_options.io_thread_nice = options.io_thread_nice;
  log_options.clock = options.clock;
  log_options.recovery_threads = options.recovery_threads;
  log_options.retention_check_interval_ms = options.retention_check_interval_ms;
  log_options.checkpoint_interval_ms = options.checkpoint_interval_ms;
  log_options.start_background_threads = options.start_background_threads;
  RUNNEL_ASSIGN_OR_RETURN(core->logs_, log::LogManager::Open(log_options));

  core->timers_ = std::make_unique<TimerQueue>();
  core->purgatory_ = std::make_unique<FetchPurgatory>(core->timers_.get());
  TopicManagerOptions topic_options;
  topic_options.logs = core->logs_.get();
  topic_options.metadata = core->metadata_.get();
  topic_options.default_config = options.default_config;
  topic_options.broker_id = options.broker_id;
  topic_options.default_num_partitions = options.default_num_partitions;
  topic_options.clock = options.clock;
  topic_options.partition.timers = core->timers_.get();
  topic_options.partition.reorder_wait = options.reorder_wait;
  topic_options.partition.clock = options.clock;
  topic_options.partition.producer_id_expiration =
      options.producer_id_expiration;
  topic_options.partition.producer_id_expiration_check_interval =
      options.producer_id_expiration_check_interval;
  FetchPurgatory* purgatory = core->purgatory_.get();
  topic_options.on_hw_advanced = [purgatory](const TopicPartition& tp) {
    purgatory->Notify(tp);
  };
  absl::StatusOr<std::unique_ptr<TopicManager>> topics =
      TopicManager::Open(std::move(topic_options));
  if (!topics.ok()) {
    core->Close().IgnoreError();  // reporting the first error instead
    return topics.status();
  }
  core->topics_ = *std::move(topics);
  return core;
}

void BrokerCore::SetAdvertisedAddress(std::string host, int32_t port) {
  absl::MutexLock lock(&mu_);
  advertised_host_ = std::move(host);
  advertised_port_ = port;
}

std::vector<BrokerEndpoint> BrokerCore::Brokers() const {
  absl::MutexLock lock(&mu_);
  return {BrokerEndpoint{broker_id_, advertised_host_, advertised_port_}};
}

// --- Produce ----------------------------------------------------------------

void BrokerCore::CompleteProducePartition(const std::shared_ptr<ProduceOp>& op,
                                          size_t index, ProduceResult result) {
  std::vector<ProduceResult> results;
  TimerQueue::TimerId timer = 0;
  {
    absl::MutexLock lock(&op->mu);
    if (op->finished || op->filled[index]) return;
    op->filled[index] = true;
    op->results[index] = std::move(result);
    if (--op->remaining > 0) return;
    op->finished = true;
    results = std::move(op->results);
    timer = op->timer;
  }
  if (timer != 0) op->timers->Cancel(timer);
  op->done(std::move(results));
}

void BrokerCore::ExpireProduce(const std::shared_ptr<ProduceOp>& op) {
  std::vector<ProduceResult> results;
  {
    absl::MutexLock lock(&op->mu);
    if (op->finished) return;
    op->finished = true;
    for (size_t i = 0; i < op->results.size(); ++i) {
      if (op->filled[i]) continue;
      op->results[i].status = MakeError(
          ErrorKind::kRequestTimedOut,
          "not acknowledged within the request timeout; the records may "
          "still be written");
    }
    results = std::move(op->results);
  }
  op->done(std::move(results));
}

void BrokerCore::Produce(ProduceInput input, ProduceCallback done) {
  const size_t n = input.partitions.size();
  if (n == 0) return done({});
  auto op = std::make_shared<ProduceOp>();
  op->timers = timers_.get();
  op->done = std::move(done);
  {
    absl::MutexLock lock(&op->mu);
    op->results.resize(n);
    op->filled.assign(n, false);
    op->remaining = n;
    if (input.acks == Acks::kAll) {
      op->timer = timers_->RunAt(absl::Now() + input.timeout,
                                 [op] { ExpireProduce(op); });
    }
  }
  absl::flat_hash_set<TopicPartition> seen;
  for (size_t i = 0; i < n; ++i) {
    ProducePartitionInput& p = input.partitions[i];
    if (!seen.insert(p.tp).second) {
      CompleteProducePartition(
          op, i,
          {.status = MakeError(ErrorKind::kInvalidRequest,
                               absl::StrCat(p.tp.ToString(),
                                            " appears twice in the request"))});
      continue;
    }
    absl::StatusOr<std::shared_ptr<Partition>> partition =
        topics_->GetPartition(p.tp.topic, p.tp.partition);
    if (!partition.ok()) {
      CompleteProducePartition(op, i, {.status = partition.status()});
      continue;
    }
    (*partition)
        ->Produce(std::move(p.records), input.acks,
                  [op, i](ProduceResult result) {
                    CompleteProducePartition(op, i, std::move(result));
                  });
  }
}

// --- Fetch ------------------------------------------------------------------

std::vector<ReadResult> BrokerCore::FetchOnce(const FetchInput& input,
                                              size_t* total_bytes,
                                              bool* any_error) {
  std::vector<ReadResult> results;
  results.reserve(input.partitions.size());
  size_t remaining = input.max_bytes > 0 ? static_cast<size_t>(input.max_bytes)
                                         : kDefaultFetchMaxBytes;
  *total_bytes = 0;
  *any_error = false;
  for (const FetchPartitionInput& p : input.partitions) {
    absl::StatusOr<std::shared_ptr<Partition>> partition =
        topics_->GetPartition(p.tp.topic, p.tp.partition);
    if (!partition.ok()) {
      ReadResult r;
      r.status = partition.status();
      results.push_back(std::move(r));
      *any_error = true;
      continue;
    }
    const size_t partition_max = p.max_bytes > 0
                                     ? static_cast<size_t>(p.max_bytes)
                                     : kDefaultPartitionMaxBytes;
    const size_t limit = std::min(partition_max, remaining);
    // Only the first batch of the first non-empty partition may exceed the
    // limits (Kafka's max_bytes rule, so that a consumer always progresses).
    ReadResult r = (*partition)
                       ->Read(p.fetch_offset, limit,
                              /*first_batch_may_exceed=*/*total_bytes == 0);
    if (!r.status.ok()) *any_error = true;
    remaining -= std::min(remaining, r.records.size());
    *total_bytes += r.records.size();
    results.push_back(std::move(r));
  }
  return results;
}

void BrokerCore::Fetch(FetchInput input, FetchCallback done) {
  size_t total = 0;
  bool any_error = false;
  std::vector<ReadResult> results = FetchOnce(input, &total, &any_error);
  const size_t min_bytes =
      static_cast<size_t>(std::max<int32_t>(input.min_bytes, 1));
  if (any_error || total >= min_bytes ||
      input.max_wait <= absl::ZeroDuration()) {
    return done(std::move(results));
  }
  std::vector<TopicPartition> keys;
  for (const FetchPartitionInput& p : input.partitions) keys.push_back(p.tp);
  const absl::Time deadline = absl::Now() + input.max_wait;
  auto shared_input = std::make_shared<FetchInput>(std::move(input));
  purgatory_->Add(
      keys, deadline,
      [this, shared_input, min_bytes, done = std::move(done)](bool expired) {
        size_t total = 0;
        bool any_error = false;
        std::vector<ReadResult> results =
            FetchOnce(*shared_input, &total, &any_error);
        if (!expired && !any_error && total < min_bytes) {
          return false;
        }
        done(std::move(results));
        return true;
      });
}

// --- ListOffsets, Metadata, producer ids ------------------------------------

ListOffsetResult BrokerCore::ListOffset(const TopicPartition& tp,
                                        int64_t timestamp) {
  ListOffsetResult result;
  absl::StatusOr<std::shared_ptr<Partition>> partition =
      topics_->GetPartition(tp.topic, tp.partition);
  if (!partition.ok()) {
    result.status = partition.status();
    return result;
  }
  absl::StatusOr<log::RecordTimestamp> found =
      (*partition)->ListOffset(timestamp);
  if (!found.ok()) {
    result.status = found.status();
    return result;
  }
  result.offset = found->offset;
  result.timestamp = found->timestamp;
  result.leader_epoch = (*partition)->State().leader_epoch;
  return result;
}

std::vector<TopicView> BrokerCore::DescribeTopics(
    const std::vector<std::string>& names) {
  std::vector<std::string> wanted = names;
  if (wanted.empty()) {
    for (const TopicRecord& record : topics_->ListTopics()) {
      wanted.push_back(record.name);
    }
  }
  std::vector<TopicView> out;
  for (const std::string& name : wanted) {
    TopicView view;
    view.name = name;
    absl::StatusOr<TopicDescription> d = topics_->Describe(name);
    if (d.ok()) {
      view.description = *std::move(d);
    } else {
      view.status = d.status();
    }
    out.push_back(std::move(view));
  }
  return out;
}

absl::StatusOr<ProducerIdentity> BrokerCore::InitProducerId() {
  absl::MutexLock lock(&mu_);
  if (next_producer_id_ == producer_id_block_end_) {
    absl::StatusOr<int64_t> first =
        metadata_->AllocateProducerIds(kProducerIdBlockSize);
    if (!first.ok()) return WithKind(first.status(), ErrorKind::kStorageError);
    next_producer_id_ = *first;
    producer_id_block_end_ = *first + kProducerIdBlockSize;
  }
  return ProducerIdentity{next_producer_id_++, 0};
}

// --- Metrics ----------------------------------------------------------------

std::string BrokerCore::RenderMetrics() {
  std::string out;
  metrics_.Render(&out);
  std::vector<std::shared_ptr<Partition>> partitions = topics_->AllPartitions();
  struct Gauge {
    absl::string_view name;
    absl::string_view type;
    absl::string_view help;
    std::function<int64_t(const Partition&, const PartitionState&)> value;
  };
  std::vector<PartitionState> states;
  for (const auto& p : partitions) states.push_back(p->State());
  const Gauge gauges[] = {
      {"runnel_partition_log_end_offset", "gauge",
       "Next offset to be assigned.",
       [](const Partition&, const PartitionState& s) {
         return s.log_end_offset;
       }},
      {"runnel_partition_high_watermark", "gauge",
       "Offset below which records are visible.",
       [](const Partition&, const PartitionState& s) {
         return s.high_watermark;
       }},
      {"runnel_partition_log_start_offset", "gauge", "First retained offset.",
       [](const Partition&, const PartitionState& s) {
         return s.log_start_offset;
       }},
      {"runnel_partition_size_bytes", "gauge",
       "Bytes of the partition's segments.",
       [](const Partition&, const PartitionState& s) { return s.size_bytes; }},
  };
  for (const Gauge& g : gauges) {
    absl::StrAppend(&out, "# HELP ", g.name, " ", g.help, "\n# TYPE ", g.name,
                    " ", g.type, "\n");
    for (size_t i = 0; i < partitions.size(); ++i) {
      absl::StrAppend(&out, g.name, "{topic=\"", partitions[i]->id().topic,
                      "\",partition=\"", partitions[i]->id().partition, "\"} ",
                      g.value(*partitions[i], states[i]), "\n");
    }
  }
  // Per-topic traffic.
  std::map<std::string, std::array<uint64_t, 3>> per_topic;
  for (const auto& p : partitions) {
    auto& t = per_topic[p->id().topic];
    t[0] += p->bytes_in();
    t[1] += p->bytes_out();
    t[2] += p->batches_in();
  }
  const std::pair<absl::string_view, absl::string_view> traffic[] = {
      {"runnel_topic_bytes_in_total", "Record batch bytes appended, by topic."},
      {"runnel_topic_bytes_out_total", "Record batch bytes fetched, by topic."},
      {"runnel_topic_batches_in_total", "Record batches appended, by topic."}};
  for (size_t k = 0; k < 3; ++k) {
    absl::StrAppend(&out, "# HELP ", traffic[k].first, " ", traffic[k].second,
                    "\n# TYPE ", traffic[k].first, " counter\n");
    for (const auto& [topic, v] : per_topic) {
      absl::StrAppend(&out, traffic[k].first, "{topic=\"", topic, "\"} ", v[k],
                      "\n");
    }
  }
  // fsync statistics of the I/O threads that serve some partition.
  std::vector<log::IoThread*> io_threads;
  for (const auto& p : partitions) {
    log::IoThread* io = logs_->io_thread_for(p->id().topic, p->id().partition);
    if (io != nullptr && std::find(io_threads.begin(), io_threads.end(), io) ==
                             io_threads.end()) {
      io_threads.push_back(io);
    }
  }
  std::vector<log::IoThreadStats> io_stats;
  for (log::IoThread* io : io_threads) io_stats.push_back(io->Stats());
  auto io_labels = [](size_t t) {
    return absl::StrCat("io_thread=\"", t, "\"");
  };
  absl::StrAppend(&out,
                  "# HELP runnel_fsync_duration_seconds fdatasync latency of "
                  "the log I/O threads.\n"
                  "# TYPE runnel_fsync_duration_seconds histogram\n");
  for (size_t t = 0; t < io_stats.size(); ++t) {
    const log::IoThreadStats& stats = io_stats[t];
    uint64_t cumulative = 0;
    const std::string labels = io_labels(t);
    for (size_t b = 0; b < log::kFsyncLatencyBucketUpperUs.size(); ++b) {
      cumulative += stats.fsync_latency_buckets[b];
      const int64_t upper = log::kFsyncLatencyBucketUpperUs[b];
      std::string le = upper == INT64_MAX
                           ? "+Inf"
                           : absl::StrCat(static_cast<double>(upper) / 1e6);
      absl::StrAppend(&out, "runnel_fsync_duration_seconds_bucket{", labels,
                      ",le=\"", le, "\"} ", cumulative, "\n");
    }
    absl::StrAppend(&out, "runnel_fsync_duration_seconds_sum{", labels, "} ",
                    static_cast<double>(stats.fsync_latency_sum_us) / 1e6,
                    "\n");
    absl::StrAppend(&out, "runnel_fsync_duration_seconds_count{", labels, "} ",
                    cumulative, "\n");
  }
  // Each counter family in one group of its own (the text format allows a
  // family's samples only together, after its HELP and TYPE).
  const std::pair<absl::string_view, absl::string_view> io_counters[] = {
      {"runnel_io_bytes_written_total",
       "Bytes the log I/O threads wrote to segment files."},
      {"runnel_io_fsyncs_total", "fdatasyncs the log I/O threads issued."}};
  for (size_t k = 0; k < 2; ++k) {
    absl::StrAppend(&out, "# HELP ", io_counters[k].first, " ",
                    io_counters[k].second, "\n# TYPE ", io_counters[k].first,
                    " counter\n");
    for (size_t t = 0; t < io_stats.size(); ++t) {
      absl::StrAppend(
          &out, io_counters[k].first, "{", io_labels(t), "} ",
          k == 0 ? io_stats[t].bytes_written : io_stats[t].fsyncs_issued, "\n");
    }
  }
  absl::StrAppend(
      &out,
      "# HELP runnel_log_compaction_records_removed_total Records removed by "
      "log compaction (cleanup.policy=compact).\n"
      "# TYPE runnel_log_compaction_records_removed_total counter\n"
      "runnel_log_compaction_records_removed_total ",
      logs_->records_removed_by_compaction(), "\n");
  return out;
}

// --- Shutdown ---------------------------------------------------------------

void BrokerCore::StopWaiting() {
  stopping_.store(true, std::memory_order_release);
  if (purgatory_ != nullptr) purgatory_->Shutdown();
}

absl::Status BrokerCore::Close() {
  {
    absl::MutexLock lock(&mu_);
    if (close_status_.has_value()) return *close_status_;
  }
  // Parked fetches read the logs when they expire: before the logs close.
  StopWaiting();
  // The next start loads these instead of reading the last segments
  // (Partition::RebuildProducerState). Best effort: without one it reads.
  if (topics_ != nullptr) {
    for (const std::shared_ptr<Partition>& p : topics_->AllPartitions()) {
      if (absl::Status s = p->WriteProducerSnapshot(); !s.ok()) {
        spdlog::warn("{}: producer snapshot not written: {}",
                     p->id().ToString(), s.ToString());
      }
    }
  }
  absl::Status status;
  // Closing the logs runs every pending durability callback, which answers
  // the acks=all produce requests still waiting.
  if (logs_ != nullptr) status = logs_->Close();
  if (timers_ != nullptr) timers_->Stop();
  absl::MutexLock lock(&mu_);
  closed_ = true;
  close_status_ = status;
  return status;
}

}  // namespace runnel::broker
