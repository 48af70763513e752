#pragma once

// The broker's core: everything a front door (the gRPC services today, the
// Kafka protocol later) needs, in Runnel's own types and without any wire
// type. Owns the metadata store, the log manager, the topic manager, the
// long-poll machinery and the metrics.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#include "broker/fetch_purgatory.h"
#include "broker/metadata_store.h"
#include "broker/metrics.h"
#include "broker/partition.h"
#include "broker/timer_queue.h"
#include "broker/topic_manager.h"
#include "broker/topic_partition.h"
#include "common/clock.h"
#include "log/log_config.h"
#include "log/log_manager.h"
#include "log/record_bytes.h"

namespace runnel::broker {

struct BrokerCoreOptions {
  std::string data_dir;
  int32_t broker_id = 0;
  log::LogConfig default_config;
  int32_t default_num_partitions = 1;
  int io_threads = 1;
  // LogManagerOptions::io_thread_nice (the broker's flag defaults to -10).
  int io_thread_nice = 0;
  int recovery_threads = 2;
  int64_t retention_check_interval_ms = 300000;
  int64_t checkpoint_interval_ms = 60000;
  // false: no LogManager background threads (tests).
  bool start_background_threads = true;
  Clock* clock = SystemClock::Default();  // must outlive the core
  // How long an idempotent request that arrived before its predecessor
  // waits for it (Partition::Produce).
  absl::Duration reorder_wait = Partition::kDefaultReorderWait;
  // Kafka's producer.id.expiration.ms and
  // producer.id.expiration.check.interval.ms (PartitionOptions).
  absl::Duration producer_id_expiration = absl::Hours(24);
  absl::Duration producer_id_expiration_check_interval = absl::Minutes(10);
  // null: a LocalMetadataStore in data_dir.
  std::unique_ptr<MetadataStore> metadata;
};

struct ProducePartitionInput {
  TopicPartition tp;
  log::RecordBytes records;  // RecordBatch v2 bytes
};
struct ProduceInput {
  Acks acks = Acks::kAll;
  absl::Duration timeout = absl::Seconds(30);
  std::vector<ProducePartitionInput> partitions;
};

struct FetchPartitionInput {
  TopicPartition tp;
  log::Offset fetch_offset = 0;
  int32_t max_bytes = 0;  // 0: 1 MiB
};
struct FetchInput {
  absl::Duration max_wait = absl::ZeroDuration();
  int32_t min_bytes = 0;
  int32_t max_bytes = 0;  // whole response; 0: 64 MiB
  std::vector<FetchPartitionInput> partitions;
};

struct ListOffsetResult {
  absl::Status status;
  log::Offset offset = -1;
  // The found record's timestamp for a timestamp lookup; -1 for earliest,
  // latest and when nothing was found.
  int64_t timestamp = -1;
  int32_t leader_epoch = -1;
};

struct BrokerEndpoint {
  int32_t broker_id = 0;
  std::string host;
  int32_t port = 0;
};

// A topic in Metadata/DescribeTopics: its description or why not.
struct TopicView {
  std::string name;
  absl::Status status;
  TopicDescription description;  // valid when status is OK
};

struct ProducerIdentity {
  int64_t producer_id = -1;
  int16_t producer_epoch = 0;
};

// Thread-safe. Callbacks given to Produce/Fetch run exactly once, on the
// calling thread, a log I/O thread or the core's timer thread; they must
// not block.
class BrokerCore {
 public:
  using ProduceCallback = std::function<void(std::vector<ProduceResult>)>;
  using FetchCallback = std::function<void(std::vector<ReadResult>)>;

  BrokerCore(const BrokerCore&) = delete;
  BrokerCore& operator=(const BrokerCore&) = delete;
  // Requires Close() first (it flushes and writes the clean-shutdown marker).
  ~BrokerCore();

  // Opens the metadata store and the logs (with recovery) and attaches every
  // topic's partitions. Errors: kFailedPrecondition when another broker holds
  // the data directory; the store's and the logs' errors.
  static absl::StatusOr<std::unique_ptr<BrokerCore>> Open(
      BrokerCoreOptions options);

  // Results are in input order. A bad partition does not fail the others.
  // acks=kAll partitions that are not committed within `timeout` get
  // REQUEST_TIMED_OUT. A topic-partition listed twice: INVALID_REQUEST for
  // the second entry.
  void Produce(ProduceInput input, ProduceCallback done);

  // Long poll: answers at once when an error occurs, when at least
  // max(min_bytes, 1) bytes are available or max_wait is zero; otherwise when
  // the high watermark of a requested partition advances far enough or
  // max_wait passes. Results are in input order.
  void Fetch(FetchInput input, FetchCallback done);
  // One non-waiting attempt (what Fetch answers with at once); `total_bytes`
  // gets the records bytes returned, `any_error` whether a partition failed.
  std::vector<ReadResult> FetchOnce(const FetchInput& input,
                                    size_t* total_bytes, bool* any_error);

  ListOffsetResult ListOffset(const TopicPartition& tp, int64_t timestamp);

  // `names` empty: every topic, sorted by name.
  std::vector<TopicView> DescribeTopics(const std::vector<std::string>& names);
  std::vector<BrokerEndpoint> Brokers() const;
  int32_t broker_id() const { return broker_id_; }
  std::string cluster_id() const { return metadata_->cluster_id(); }

  absl::StatusOr<ProducerIdentity> InitProducerId();

  TopicManager& topics() { return *topics_; }
  BrokerMetrics& metrics() { return metrics_; }
  log::LogManager& logs() { return *logs_; }

  // Where clients reach this broker (Metadata); set once the server listens.
  void SetAdvertisedAddress(std::string host, int32_t port);

  // Prometheus text: request metrics plus per-partition gauges and the I/O
  // threads' fsync statistics.
  std::string RenderMetrics();

  // First step of shutdown: parked fetches are answered now and later ones
  // at once (no waiting); stopping() turns true so streams end.
  void StopWaiting();
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }

  // Answers every parked fetch, closes the logs (flush, recovery-point
  // checkpoint, clean-shutdown marker) and stops the timer thread. Call after
  // the front doors stopped taking requests. Idempotent.
  absl::Status Close();

 private:
  BrokerCore() = default;

  struct ProduceOp;
  static void CompleteProducePartition(const std::shared_ptr<ProduceOp>& op,
                                       size_t index, ProduceResult result);
  static void ExpireProduce(const std::shared_ptr<ProduceOp>& op);

  int32_t broker_id_ = 0;
  Clock* clock_ = nullptr;
  std::unique_ptr<MetadataStore> metadata_;
  std::unique_ptr<log::LogManager> logs_;
  std::unique_ptr<TimerQueue> timers_;
  std::unique_ptr<FetchPurgatory> purgatory_;
  std::unique_ptr<TopicManager> topics_;
  BrokerMetrics metrics_;
  std::atomic<bool> stopping_{false};

  mutable absl::Mutex mu_;
  std::string advertised_host_ ABSL_GUARDED_BY(mu_) = "127.0.0.1";
  int32_t advertised_port_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t next_producer_id_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t producer_id_block_end_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::Status> close_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace runnel::broker
