#include "tools/bench_command.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

#include "tools/cli_context.h"
#include "tools/client_cli.h"
#include "tools/output_format.h"

#include "runnel/consumer.h"
#include "runnel/producer.h"

namespace runnel::tools {

namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Log-linear histogram of microseconds: 64 sub-buckets per power of two, so
// a reported percentile is within ~1.6% of the true value. Thread-safe, and
// cheap to record into from several threads at once (the producer's delivery
// callbacks run on its gRPC threads): each recording thread counts into its
// own shard, so no cache line moves between them per record; the readers sum
// the shards.
class LatencyHistogram {
 public:
  LatencyHistogram() : shards_(std::make_unique<Shard[]>(kShards)) {}
  LatencyHistogram(const LatencyHistogram&) = delete;
  LatencyHistogram& operator=(const LatencyHistogram&) = delete;

  void Record(int64_t ns) {
    const uint64_t us = ns <= 0 ? 0 : static_cast<uint64_t>(ns / 1000);
    Shard& s = shards_[ShardOfThisThread()];
    s.counts[Index(us)].fetch_add(1, std::memory_order_relaxed);
    s.total.fetch_add(1, std::memory_order_relaxed);
    uint64_t prev = s.max_us.load(std::memory_order_relaxed);
    while (us > prev && !s.max_us.compare_exchange_weak(
                            prev, us, std::memory_order_relaxed)) {
    }
  }
  // Milliseconds at quantile q in [0, 1]; 0 when empty.
  double PercentileMs(double q) const {
    const uint64_t total = count();
    if (total == 0) return 0;
    const auto target =
        std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * total)));
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      for (size_t k = 0; k < kShards; ++k) {
        seen += shards_[k].counts[i].load(std::memory_order_relaxed);
      }
      if (seen >= target) return Midpoint(i) / 1000.0;
    }
    return MaxMs();
  }
  double MaxMs() const {
    uint64_t max_us = 0;
    for (size_t k = 0; k < kShards; ++k) {
      max_us = std::max(max_us, shards_[k].max_us.load());
    }
    return static_cast<double>(max_us) / 1000.0;
  }
  uint64_t count() const {
    uint64_t total = 0;
    for (size_t k = 0; k < kShards; ++k) total += shards_[k].total.load();
    return total;
  }

 private:
  static constexpr int kSubBits = 6;
  static constexpr uint64_t kSub = uint64_t{1} << kSubBits;
  static constexpr size_t kBuckets = 64 * 64;
  // More recording threads than shards share shards (still correct: the
  // counters are atomic).
  static constexpr size_t kShards = 8;
  struct alignas(64) Shard {
    std::array<std::atomic<uint64_t>, kBuckets> counts{};
    std::atomic<uint64_t> total{0};
    std::atomic<uint64_t> max_us{0};
  };

  static size_t ShardOfThisThread() {
    static std::atomic<size_t> next{0};
    thread_local const size_t shard =
        next.fetch_add(1, std::memory_order_relaxed) % kShards;
    return shard;
  }
  static size_t Index(uint64_t us) {
    if (us < kSub) return us;
    const int exponent = 63 - std::countl_zero(us);  // >= kSubBits
    const int shift = exponent - kSubBits;
    return (shift + 1) * kSub + ((us >> shift) - kSub);
  }
  static double Midpoint(size_t index) {
    if (index < kSub) return static_cast<double>(index);
    const int shift = static_cast<int>(index / kSub) - 1;
    const uint64_t low = (kSub + index % kSub) << shift;
    return static_cast<double>(low) +
           static_cast<double>(uint64_t{1} << shift) / 2;
  }
  std::unique_ptr<Shard[]> shards_;
};

struct Summary {
  uint64_t records = 0;
  uint64_t bytes = 0;
  double seconds = 0;
  const LatencyHistogram* latency = nullptr;
  // bench e2e: send -> acknowledgement, next to send -> receipt.
  const LatencyHistogram* ack_latency = nullptr;
};

// `prefix`p50_ms, ...p99_ms, ...p999_ms and ...max_ms of `h`.
void AddLatencyFields(JsonObject& o, const std::string& prefix,
                      const LatencyHistogram& h) {
  o.Double(prefix + "p50_ms", h.PercentileMs(0.5))
      .Double(prefix + "p99_ms", h.PercentileMs(0.99))
      .Double(prefix + "p999_ms", h.PercentileMs(0.999))
      .Double(prefix + "max_ms", h.MaxMs());
}

// "p50 X p99 X p99.9 X max X" of `h`, in ms.
std::string LatencyText(const LatencyHistogram& h) {
  char buf[128];
  std::snprintf(buf, sizeof(buf), "p50 %.3f p99 %.3f p99.9 %.3f max %.3f",
                h.PercentileMs(0.5), h.PercentileMs(0.99),
                h.PercentileMs(0.999), h.MaxMs());
  return buf;
}

void PrintSummary(const char* what, const Summary& s, bool json) {
  const double secs = s.seconds > 0 ? s.seconds : 1e-9;
  const double rps = static_cast<double>(s.records) / secs;
  const double mbps = static_cast<double>(s.bytes) / 1e6 / secs;
  if (json) {
    JsonObject o;
    o.String("bench", what)
        .Uint("records", s.records)
        .Uint("bytes", s.bytes)
        .Double("seconds", s.seconds)
        .Double("records_per_sec", rps)
        .Double("mb_per_sec", mbps)
        .Uint("latency_records", s.latency->count());
    AddLatencyFields(o, "", *s.latency);
    if (s.ack_latency != nullptr) AddLatencyFields(o, "ack_", *s.ack_latency);
    std::printf("%s\n", o.Build().c_str());
  } else {
    std::printf(
        "%s: %llu records, %llu bytes in %.3f s: %.0f records/s, %.1f MB/s; "
        "latency ms %s\n",
        what, static_cast<unsigned long long>(s.records),
        static_cast<unsigned long long>(s.bytes), s.seconds, rps, mbps,
        LatencyText(*s.latency).c_str());
    if (s.ack_latency != nullptr) {
      std::printf("%s: acknowledgement latency ms %s\n", what,
                  LatencyText(*s.ack_latency).c_str());
    }
  }
  std::fflush(stdout);
}

// Prints "label: N records (R/s)" to stderr once a second until stopped.
class Progress {
 public:
  // `count` is called on the progress thread once per second.
  Progress(const char* label, std::function<uint64_t()> count)
      : label_(label), count_(std::move(count)), thread_([this] { Run(); }) {}
  ~Progress() {
    stop_.Notify();
    thread_.join();
  }

 private:
  void Run() {
    uint64_t last = 0;
    const int64_t start = NowNs();
    while (!stop_.WaitForNotificationWithTimeout(absl::Seconds(1))) {
      const uint64_t now = count_();
      std::fprintf(stderr, "%s: %llu records (%llu/s), %.0f s\n", label_,
                   static_cast<unsigned long long>(now),
                   static_cast<unsigned long long>(now - last),
                   static_cast<double>(NowNs() - start) / 1e9);
      last = now;
    }
  }
  const char* label_;
  std::function<uint64_t()> count_;
  absl::Notification stop_;
  std::thread thread_;
};

// A Progress count that reads `counter`.
std::function<uint64_t()> LoadOf(const std::atomic<uint64_t>& counter) {
  return [&counter] { return counter.load(std::memory_order_relaxed); };
}

struct ProducerFlags {
  std::string topic;
  int64_t records = 1'000'000;
  size_t record_size = 100;
  std::string acks = "all";
  std::string compression = "none";
  int producers = 1;
  double rate = 0;  // records/s over all producers; 0: unlimited
  // With a rate: how far ahead of its schedule the sender may run before it
  // sleeps (Kafka's ProducerPerformance throttle sleeps at least 2 ms).
  double burst_ms = 2;
  // Measured best on one partition (docs/benchmarks.md): ~1 MB batches,
  // one per request.
  size_t batch_size = 1'000'000;
  int64_t linger_ms = 5;
  // Kafka's default buffer.memory; measured at least as fast as 64 MiB, with
  // half the first-touch page faults (docs/benchmarks.md, session 8).
  size_t buffer_memory = 32 << 20;
  size_t max_request_size = 1 << 20;
  // Producer max.in.flight.requests.per.connection and enable.idempotence.
  int max_in_flight = 5;
  bool no_idempotence = false;
  // bench e2e: fail when no record arrived for this long.
  int64_t timeout_ms = 30000;
  // bench e2e: the first records sent are left out of the latency figures.
  int64_t warmup_records = 0;
  bool json = false;
};

// The error of a bench that stopped making progress (a dead or hung broker).
absl::Status NoProgressError(int64_t timeout_ms, uint64_t received,
                             uint64_t expected) {
  return absl::DeadlineExceededError(
      absl::StrCat("no record received for ", timeout_ms, " ms (", received,
                   " of ", expected, " records); is the broker up?"));
}

// How long the next Poll may wait: at most `cap`, at least 1 ms, and not past
// the no-progress deadline.
absl::Duration PollTimeout(absl::Time deadline, absl::Duration cap) {
  return std::clamp(deadline - absl::Now(), absl::Milliseconds(1), cap);
}

void AddProducerFlags(CLI::App* cmd, ProducerFlags& f) {
  cmd->add_option("--topic", f.topic, "Topic (must exist)")->required();
  cmd->add_option("--records", f.records, "Records to send")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--record-size", f.record_size, "Value bytes per record")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--acks", f.acks, "all | leader | none")
      ->capture_default_str()
      ->check(CLI::IsMember({"all", "leader", "none", "-1", "1", "0"}));
  cmd->add_option("--compression", f.compression,
                  "none | gzip | snappy | lz4 | zstd")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "gzip", "snappy", "lz4", "zstd"}));
  cmd->add_option("--rate", f.rate, "Records per second in total (0: max)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--burst-ms", f.burst_ms,
                  "With --rate: the sender sleeps only once it is this far "
                  "ahead of its schedule, as Kafka's ProducerPerformance "
                  "does (2 ms), so records go out in bursts of rate x "
                  "burst-ms / 1000; 0 sleeps before every record")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--batch-size", f.batch_size, "Producer batch.size bytes")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--linger-ms", f.linger_ms, "Producer linger.ms")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--buffer-memory", f.buffer_memory, "Producer buffer.memory")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-request-size", f.max_request_size,
                  "Bytes per partition per request")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-in-flight", f.max_in_flight,
                  "Producer max.in.flight.requests.per.connection (1..5, "
                  "requests per partition with idempotence)")
      ->capture_default_str()
      ->check(CLI::Range(1, 5));
  cmd->add_flag("--no-idempotence", f.no_idempotence,
                "Producer enable.idempotence=false (one request in flight "
                "per partition, no sequence numbers)");
  cmd->add_flag("--json", f.json, "Print the summary as one JSON object");
}

absl::StatusOr<client::ProducerOptions> MakeProducerOptions(
    const ProducerFlags& f) {
  client::ProducerOptions o;
  o.bootstrap = GetCliContext().bootstrap;
  auto acks = client::ParseAcks(f.acks);
  if (!acks.ok()) return acks.status();
  auto compression = client::ParseCompression(f.compression);
  if (!compression.ok()) return compression.status();
  o.acks = *acks;
  o.compression = *compression;
  o.batch_size = f.batch_size;
  o.linger_ms = f.linger_ms;
  o.buffer_memory = f.buffer_memory;
  o.max_request_size = f.max_request_size;
  o.max_in_flight_requests_per_connection = f.max_in_flight;
  o.enable_idempotence = !f.no_idempotence;
  return o;
}

// Shared by every in-flight record's callback.
struct SendState {
  // Send -> acknowledgement of every acknowledged record (its count is the
  // number acknowledged).
  LatencyHistogram latency;
  // Records sent at or after this time are measured. Without a warm-up
  // that is every record (the default); with one, StartWarmup() makes it
  // none until SendRecords stores the send time of the first record after
  // the warm-up.
  std::atomic<int64_t> measured_from_ns{std::numeric_limits<int64_t>::min()};
  void StartWarmup() {
    measured_from_ns.store(std::numeric_limits<int64_t>::max(),
                           std::memory_order_relaxed);
  }
  // Whether a record sent at `sent_ns` is past the warm-up (for records
  // already sent).
  bool Measured(int64_t sent_ns) const {
    return sent_ns >= measured_from_ns.load(std::memory_order_acquire);
  }
  std::atomic<uint64_t> failed{0};
  absl::Mutex mu;
  absl::Status first_error ABSL_GUARDED_BY(mu);
};

// Sends `count` records of `size` bytes at `rate` per second (0: as fast as
// the buffer allows): record i is due at start + i / rate, and the sender
// sleeps (until the record is due) only when it is at least `burst_ms` ahead
// of that schedule; the records in between go out at once. When `stamp` is set,
// the first 8 bytes of each value carry the send time (steady clock ns) for the
// e2e bench. The first `warmup` records are sent like the others but their
// acknowledgements are not recorded in state.latency. Stops early (OK) once
// `stop` is set, if given.
absl::Status SendRecords(client::Producer& producer, const std::string& topic,
                         int64_t count, size_t size, double rate,
                         double burst_ms, bool stamp, SendState& state,
                         const std::atomic<bool>* stop = nullptr,
                         int64_t warmup = 0) {
  // One record, reused: Send copies its bytes into the batch before it
  // returns (as Kafka's ProducerPerformance reuses one payload array).
  client::ProducerRecord record;
  record.topic = topic;
  record.value = std::string(size, 'x');
  const int64_t start = NowNs();
  const auto ahead_ns = static_cast<int64_t>(burst_ms * 1e6);
  auto stopped = [stop] {
    return stop != nullptr && stop->load(std::memory_order_relaxed);
  };
  for (int64_t i = 0; i < count && !stopped(); ++i) {
    if (rate > 0) {
      const auto due =
          start + static_cast<int64_t>(static_cast<double>(i) * 1e9 / rate);
      // In slices, so that a low rate does not delay a stop.
      constexpr int64_t kMaxSleepNs = 100'000'000;
      int64_t now = NowNs();
      if (due - now < ahead_ns) now = due;  // within the burst: send at once
      for (; due > now && !stopped(); now = NowNs()) {
        std::this_thread::sleep_for(
            std::chrono::nanoseconds(std::min(due - now, kMaxSleepNs)));
      }
      if (stopped()) break;
    }
    const int64_t sent_ns = NowNs();
    if (stamp) std::memcpy(record.value->data(), &sent_ns, sizeof(sent_ns));
    // Before the Send: a receiver that sees this record sees the store.
    if (warmup > 0 && i == warmup) {
      state.measured_from_ns.store(sent_ns, std::memory_order_release);
    }
    SendState* s = &state;
    // Two words of captures: std::function keeps them inline (a third would
    // cost a heap allocation per record).
    absl::Status status = producer.Send(
        record, [s, sent_ns](const absl::StatusOr<client::RecordMetadata>& r) {
          if (r.ok()) {
            if (s->Measured(sent_ns)) s->latency.Record(NowNs() - sent_ns);
          } else {
            s->failed.fetch_add(1, std::memory_order_relaxed);
            absl::MutexLock lock(&s->mu);
            if (s->first_error.ok()) s->first_error = r.status();
          }
        });
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

void RunBenchProduce(const ProducerFlags& f, int producers) {
  auto options = MakeProducerOptions(f);
  if (!options.ok()) return Fail("bench produce", options.status(), 2);
  std::vector<std::unique_ptr<client::Producer>> list;
  for (int i = 0; i < producers; ++i) {
    auto p = client::Producer::Create(*options);
    if (!p.ok()) return Fail("bench produce", p.status(), 2);
    if (auto n = (*p)->PartitionCount(f.topic); !n.ok()) {
      return Fail("bench produce", n.status());
    }
    list.push_back(std::move(*p));
  }
  SendState state;
  std::vector<absl::Status> results(producers);
  const int64_t start = NowNs();
  {
    Progress progress("bench produce acked",
                      [&state] { return state.latency.count(); });
    std::vector<std::thread> threads;
    for (int i = 0; i < producers; ++i) {
      const int64_t share =
          f.records / producers + (i < f.records % producers ? 1 : 0);
      threads.emplace_back([&, i, share] {
        results[i] = SendRecords(*list[i], f.topic, share, f.record_size,
                                 f.rate / producers, f.burst_ms, false, state);
        list[i]->Flush();
      });
    }
    for (std::thread& t : threads) t.join();
  }
  const double seconds = static_cast<double>(NowNs() - start) / 1e9;
  for (auto& p : list) p->Close();
  for (const absl::Status& s : results) {
    if (!s.ok()) return Fail("bench produce", s);
  }
  const uint64_t acked = state.latency.count();
  PrintSummary("produce",
               Summary{acked, acked * f.record_size, seconds, &state.latency},
               f.json);
  absl::MutexLock lock(&state.mu);
  if (state.failed.load() > 0) {
    Fail("bench produce",
         absl::Status(state.first_error.code(),
                      absl::StrCat(state.failed.load(), " records failed: ",
                                   state.first_error.message())));
  }
}

struct ConsumeFlags {
  std::string topic;
  int64_t records = 0;  // 0: everything up to the high watermark at start
  int32_t fetch_max_bytes = 64 << 20;
  // 2 MiB measured fastest on one partition (docs/benchmarks.md).
  int32_t partition_fetch_bytes = 2 << 20;
  // Fail when no record arrived for this long.
  int64_t timeout_ms = 30000;
  bool json = false;
};

void RunBenchConsume(const ConsumeFlags& f) {
  client::ConsumerOptions o;
  o.bootstrap = GetCliContext().bootstrap;
  o.auto_offset_reset = client::OffsetReset::kEarliest;
  o.fetch_max_bytes = f.fetch_max_bytes;
  o.max_partition_fetch_bytes = f.partition_fetch_bytes;
  o.max_buffered_bytes = std::max<size_t>(
      64 << 20, 4 * static_cast<size_t>(f.partition_fetch_bytes));
  auto consumer_or = client::Consumer::Create(o);
  if (!consumer_or.ok()) return Fail("bench consume", consumer_or.status(), 2);
  client::Consumer& consumer = **consumer_or;
  auto tps = consumer.PartitionsFor(f.topic);
  if (!tps.ok()) return Fail("bench consume", tps.status());
  if (absl::Status s = consumer.Assign(*tps); !s.ok()) {
    return Fail("bench consume", s);
  }
  if (absl::Status s = consumer.SeekToBeginning(*tps); !s.ok()) {
    return Fail("bench consume", s);
  }
  auto starts = consumer.BeginningOffsets(*tps);
  auto ends = consumer.EndOffsets(*tps);
  if (!starts.ok()) return Fail("bench consume", starts.status());
  if (!ends.ok()) return Fail("bench consume", ends.status());
  uint64_t target = 0;
  for (const auto& [tp, end] : *ends) target += end - (*starts)[tp];
  // Like Kafka's consumer perf test, --records N waits for N records, also
  // ones produced after the start.
  if (f.records > 0) target = static_cast<uint64_t>(f.records);

  LatencyHistogram poll_latency;
  std::atomic<uint64_t> received{0};
  uint64_t bytes = 0;
  const int64_t start = NowNs();
  {
    Progress progress("bench consume", LoadOf(received));
    const absl::Duration timeout = absl::Milliseconds(f.timeout_ms);
    absl::Time deadline = absl::Now() + timeout;
    while (received.load() < target) {
      const int64_t before = NowNs();
      auto records = consumer.Poll(PollTimeout(deadline, absl::Seconds(5)));
      if (!records.ok()) return Fail("bench consume", records.status());
      if (records->empty()) {
        if (absl::Now() < deadline) continue;
        return Fail("bench consume",
                    NoProgressError(f.timeout_ms, received.load(), target));
      }
      deadline = absl::Now() + timeout;
      poll_latency.Record(NowNs() - before);
      for (const client::ConsumerRecord& r : *records) {
        bytes += (r.value ? r.value->size() : 0) + (r.key ? r.key->size() : 0);
      }
      received.fetch_add(records->size());
    }
  }
  const double seconds = static_cast<double>(NowNs() - start) / 1e9;
  consumer.Close();
  PrintSummary("consume",
               Summary{received.load(), bytes, seconds, &poll_latency}, f.json);
}

// The producer side's failure, if any: a record that failed delivery, or
// Send itself (read once the sender is done with it).
absl::Status E2eFailure(SendState& state, const absl::Notification& sent_all,
                        const absl::Status& send_status) {
  if (const uint64_t failed = state.failed.load(); failed > 0) {
    absl::MutexLock lock(&state.mu);
    return absl::Status(state.first_error.code(),
                        absl::StrCat("producer: ", failed, " records failed: ",
                                     state.first_error.message()));
  }
  if (sent_all.HasBeenNotified() && !send_status.ok()) {
    return absl::Status(send_status.code(),
                        absl::StrCat("producer: ", send_status.message()));
  }
  return absl::OkStatus();
}

void RunBenchE2e(const ProducerFlags& f) {
  if (f.record_size < sizeof(int64_t)) {
    return Fail("bench e2e",
                absl::InvalidArgumentError("--record-size must be >= 8"), 2);
  }
  if (f.warmup_records >= f.records) {
    return Fail("bench e2e",
                absl::InvalidArgumentError(absl::StrCat(
                    "--warmup-records (", f.warmup_records,
                    ") must be below --records (", f.records, ")")),
                2);
  }
  auto options = MakeProducerOptions(f);
  if (!options.ok()) return Fail("bench e2e", options.status(), 2);
  // A dead broker must not hold the sender (a full buffer, a hung request)
  // much longer than the no-progress deadline.
  options->max_block_ms = f.timeout_ms;
  options->request_timeout_ms =
      std::min(options->request_timeout_ms, f.timeout_ms);
  auto producer = client::Producer::Create(*options);
  if (!producer.ok()) return Fail("bench e2e", producer.status(), 2);
  client::ConsumerOptions co;
  co.bootstrap = GetCliContext().bootstrap;
  co.auto_offset_reset = client::OffsetReset::kLatest;
  co.fetch_max_wait_ms = 500;
  auto consumer_or = client::Consumer::Create(co);
  if (!consumer_or.ok()) return Fail("bench e2e", consumer_or.status(), 2);
  client::Consumer& consumer = **consumer_or;
  auto tps = consumer.PartitionsFor(f.topic);
  if (!tps.ok()) return Fail("bench e2e", tps.status());
  if (absl::Status s = consumer.Assign(*tps); !s.ok()) {
    return Fail("bench e2e", s);
  }

  SendState state;
  LatencyHistogram e2e;
  std::atomic<uint64_t> received{0};
  std::atomic<bool> stop_sending{false};
  absl::Status send_status;  // written by the sender before sent_all
  absl::Notification sent_all;
  absl::Status failure;
  if (f.warmup_records > 0) state.StartWarmup();
  const int64_t start = NowNs();
  {
    Progress progress("bench e2e received", LoadOf(received));
    std::thread sender([&] {
      send_status =
          SendRecords(**producer, f.topic, f.records, f.record_size, f.rate,
                      f.burst_ms, true, state, &stop_sending, f.warmup_records);
      sent_all.Notify();
      (*producer)->Flush();
    });
    const auto expected = static_cast<uint64_t>(f.records);
    const absl::Duration timeout = absl::Milliseconds(f.timeout_ms);
    absl::Time deadline = absl::Now() + timeout;
    while (received.load() < expected) {
      failure = E2eFailure(state, sent_all, send_status);
      if (!failure.ok()) break;
      auto records = consumer.Poll(PollTimeout(deadline, absl::Seconds(1)));
      if (!records.ok()) {
        failure = records.status();
        break;
      }
      if (records->empty()) {
        if (absl::Now() < deadline) continue;
        failure = NoProgressError(f.timeout_ms, received.load(), expected);
        break;
      }
      deadline = absl::Now() + timeout;
      const int64_t now = NowNs();
      for (const client::ConsumerRecord& r : *records) {
        int64_t sent_ns = 0;
        if (r.value && r.value->size() >= sizeof(sent_ns)) {
          std::memcpy(&sent_ns, r.value->data(), sizeof(sent_ns));
          if (state.Measured(sent_ns)) e2e.Record(now - sent_ns);
        }
      }
      received.fetch_add(records->size());
    }
    if (!failure.ok()) {
      // Give up on what is still queued: fails it, which ends the Flush.
      stop_sending.store(true, std::memory_order_relaxed);
      (*producer)->Close(absl::ZeroDuration());
    }
    sender.join();
  }
  const double seconds = static_cast<double>(NowNs() - start) / 1e9;
  (*producer)->Close();
  consumer.Close();
  if (!failure.ok()) return Fail("bench e2e", failure);
  PrintSummary("e2e",
               Summary{received.load(), received.load() * f.record_size,
                       seconds, &e2e, &state.latency},
               f.json);
  if (failure = E2eFailure(state, sent_all, send_status); !failure.ok()) {
    Fail("bench e2e", failure);
  }
}

}  // namespace

void RegisterBenchCommand(CLI::App& app) {
  CLI::App* bench = app.add_subcommand(
      "bench", "Load generators: produce, consume, end-to-end latency");
  bench->require_subcommand(1);

  auto pf = std::make_shared<ProducerFlags>();
  CLI::App* produce = bench->add_subcommand(
      "produce", "Send records as fast as possible (or at --rate)");
  AddProducerFlags(produce, *pf);
  produce
      ->add_option("--producers", pf->producers,
                   "Producer instances, one thread each")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  produce->footer("Latency is send-to-acknowledgement.");
  produce->callback([pf] { RunBenchProduce(*pf, pf->producers); });

  auto cf = std::make_shared<ConsumeFlags>();
  CLI::App* consume = bench->add_subcommand(
      "consume", "Read a topic from the beginning to its high watermark");
  consume->add_option("--topic", cf->topic, "Topic")->required();
  consume
      ->add_option("--records", cf->records,
                   "Stop after N records, waiting for new ones if needed (0: "
                   "up to the high watermark at the start)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  consume
      ->add_option("--fetch-max-bytes", cf->fetch_max_bytes,
                   "Bytes per fetch response")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  consume
      ->add_option("--partition-fetch-bytes", cf->partition_fetch_bytes,
                   "Bytes per partition per fetch")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  consume
      ->add_option("--timeout-ms", cf->timeout_ms,
                   "Fail when no record arrived for this long")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  consume->add_flag("--json", cf->json, "Print the summary as one JSON object");
  consume->footer("Latency is how long each non-empty Poll waited.");
  consume->callback([cf] { RunBenchConsume(*cf); });

  auto ef = std::make_shared<ProducerFlags>();
  ef->records = 100'000;
  ef->rate = 10'000;
  ef->linger_ms = 0;
  CLI::App* e2e = bench->add_subcommand(
      "e2e", "End-to-end latency: send time to receipt by a consumer");
  AddProducerFlags(e2e, *ef);
  e2e->add_option("--warmup-records", ef->warmup_records,
                  "Records sent and received first but left out of the "
                  "latency figures (Kafka's ProducerPerformance "
                  "--warmup-records): the process's start-up")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  e2e->add_option("--timeout-ms", ef->timeout_ms,
                  "Fail when no record arrived for this long (also bounds "
                  "the producer's max.block.ms and request timeout)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  e2e->footer(
      "Producer and consumer run in this process; each value's first "
      "8 bytes carry its send time.");
  e2e->callback([ef] { RunBenchE2e(*ef); });
}

}  // namespace runnel::tools
