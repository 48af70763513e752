// PartitionLog benchmarks: append throughput for 100 B and 1 KiB records in
// 16 KiB, 64 KiB and 1 MiB batches, and sequential reads.
//
//   log_bench [--benchmark_filter=...]     (RUNNEL_BENCH_DIR picks the
//   directory,
//                                           default /tmp/runnel-bench)
//
// Each batch is built once with RecordBatchBuilder; every iteration appends a
// copy of it (PartitionLog::Append takes the bytes by value), so the copy is
// part of the measured cost, as a broker's request buffer would be.
//   nosync     Append only
//   durable    Append, then wait until the batch is durable (WhenDurable)
//   durable8   8 threads, 8 partitions on one IoThread, each waiting for
//              durability after every batch (group commit on one ring)
//   Read       sequential Read(offset, 1 MiB) over a 256 MiB log
//   LogTailRead/<reader>  one appender thread appends 256 MiB of 64 KiB
//              batches (no fsync) while one reader follows it with
//              Read(next, 1 MiB, max_offset = what the appender published),
//              waiting on a condition (like a broker's long poll) when it is
//              caught up. reader: iouring | pread (file reads, if any).
//   Validate   ValidateBatch of one 1 MiB batch, joined (piece 0) or in
//              pieces of 16/64 KiB (ValidateBatchPieces), CPU only
//   LogColdRead/<reader>  sequential Read(offset, 1 MiB) over a CLOSED
//              256 MiB segment; arg 1 drops the file's page cache
//              (POSIX_FADV_DONTNEED) before each pass (cold: from the disk),
//              arg 0 reads it warm (page cache filled by an untimed pass).
// Counters: bytes_per_second (batch bytes), records_per_second,
// proc_cpu_s_per_GB (whole-process CPU seconds per GB, I/O thread included),
// reader_cpu_s_per_GB (reading thread only, for the read benchmarks; the
// I/O thread's share of file reads is in proc_cpu_s_per_GB),
// disk_read_fraction (bytes the kernel fetched from the device, from
// /proc/self/io read_bytes, / bytes returned).

#include <fcntl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "benchmark/benchmark.h"

#include "common/check.h"
#include "log/io_thread.h"
#include "log/partition_log.h"
#include "log/record_batch.h"
#include "tests/bench/bench_util.h"

namespace runnel::log {
namespace {

using bench::BenchDir;
using bench::ProcessCpuSeconds;
using bench::SharedIo;

// One batch of `record_bytes`-value records (null keys) close to, but not
// above, `batch_bytes`.
std::string MakeBatch(size_t record_bytes, size_t batch_bytes,
                      int32_t* records) {
  std::mt19937_64 rng(record_bytes * 31 + batch_bytes);
  std::string value(record_bytes, '\0');
  RecordBatchBuilder builder;
  // ~ record_bytes + 8 bytes of varint framing per record.
  while (builder.uncompressed_size_bytes() + record_bytes + 16 <= batch_bytes) {
    for (char& c : value) c = static_cast<char>('a' + rng() % 26);
    builder.Append(1700000000000 + builder.record_count(), std::nullopt, value);
  }
  *records = builder.record_count();
  auto batch = builder.Build();
  RUNNEL_CHECK(batch.ok());
  return *std::move(batch);
}

// Bytes this process made the kernel fetch from the storage device
// (/proc/self/io read_bytes): page-cache and tail-cache hits do not count.
uint64_t DiskReadBytes() {
  FILE* f = std::fopen("/proc/self/io", "r");
  RUNNEL_CHECK(f != nullptr);
  char line[128];
  unsigned long long value = 0;
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    if (std::sscanf(line, "read_bytes: %llu", &value) == 1) break;
  }
  std::fclose(f);
  return value;
}

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

std::unique_ptr<PartitionLog> OpenLog(
    const std::string& dir, int32_t partition, bool pread_on_caller = false,
    size_t tail_cache_bytes = PartitionLogOptions{}.tail_cache_bytes) {
  std::filesystem::remove_all(dir);
  PartitionLogOptions options;
  options.pread_on_caller = pread_on_caller;
  options.tail_cache_bytes = tail_cache_bytes;
  options.dir = dir;
  options.topic = "bench";
  options.partition = partition;
  options.config.max_message_bytes = 2 << 20;
  options.io = SharedIo();
  auto log = PartitionLog::Open(std::move(options));
  RUNNEL_CHECK(log.ok());
  return *std::move(log);
}

enum class Mode { kNoSync, kDurable };

void BM_LogAppend(benchmark::State& state, Mode mode) {
  const size_t record_bytes = static_cast<size_t>(state.range(0));
  const size_t batch_bytes = static_cast<size_t>(state.range(1));
  int32_t records = 0;
  const std::string batch = MakeBatch(record_bytes, batch_bytes, &records);
  std::string dir = absl::StrCat(BenchDir(), "/log-", getpid(), "/bench-",
                                 state.thread_index());
  std::unique_ptr<PartitionLog> log = OpenLog(dir, state.thread_index());
  double cpu_before = ProcessCpuSeconds();
  for (auto _ : state) {
    auto appended = log->Append(batch, /*leader_epoch=*/0);
    RUNNEL_CHECK(appended.ok());
    if (mode == Mode::kDurable) {
      RUNNEL_CHECK(log->DurableFuture(appended->last_offset).get().ok());
    }
  }
  double cpu = ProcessCpuSeconds() - cpu_before;
  state.SetBytesProcessed(state.iterations() *
                          static_cast<int64_t>(batch.size()));
  state.SetItemsProcessed(state.iterations() * records);
  if (state.thread_index() == 0) {
    double gb = static_cast<double>(state.iterations() * batch.size() *
                                    state.threads()) /
                1e9;
    state.counters["proc_cpu_s_per_GB"] = cpu / gb;
    state.counters["batch_bytes"] = static_cast<double>(batch.size());
  }
  RUNNEL_CHECK(log->Close().ok());
  log.reset();
  std::filesystem::remove_all(dir);
}

void BM_LogRead(benchmark::State& state) {
  const size_t record_bytes = static_cast<size_t>(state.range(0));
  int32_t records = 0;
  const std::string batch = MakeBatch(record_bytes, 64 << 10, &records);
  std::string dir = absl::StrCat(BenchDir(), "/log-", getpid(), "/read");
  std::unique_ptr<PartitionLog> log = OpenLog(dir, 0);
  for (size_t written = 0; written < (256u << 20); written += batch.size()) {
    RUNNEL_CHECK(log->Append(batch, 0).ok());
  }
  RUNNEL_CHECK(log->Flush().ok());
  const Offset end = log->log_end_offset();
  int64_t bytes = 0;
  double cpu_before = ProcessCpuSeconds();
  for (auto _ : state) {
    Offset next = 0;
    while (next < end) {
      auto read = log->Read(next, 1 << 20);
      RUNNEL_CHECK(read.ok() && read->next_offset > next);
      bytes += static_cast<int64_t>(read->bytes.size());
      next = read->next_offset;
    }
  }
  double cpu = ProcessCpuSeconds() - cpu_before;
  state.SetBytesProcessed(bytes);
  state.counters["proc_cpu_s_per_GB"] =
      cpu / (static_cast<double>(bytes) / 1e9);
  RUNNEL_CHECK(log->Close().ok());
  log.reset();
  std::filesystem::remove_all(dir);
}

enum class FileReader { kIoUring, kPread };

// Appender publishes how far it got; the reader waits for it (no spinning).
struct Progress {
  absl::Mutex mu;
  Offset end ABSL_GUARDED_BY(mu) = 0;
  bool done ABSL_GUARDED_BY(mu) = false;
};

void BM_LogTailRead(benchmark::State& state, FileReader reader) {
  int32_t records = 0;
  const std::string batch = MakeBatch(1024, 64 << 10, &records);
  const size_t total_bytes = 256u << 20;
  int64_t bytes = 0;
  double reader_cpu = 0;
  double proc_cpu = 0;
  uint64_t disk_bytes = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::string dir = absl::StrCat(BenchDir(), "/log-", getpid(), "/tail");
    std::unique_ptr<PartitionLog> log =
        OpenLog(dir, 0, reader == FileReader::kPread,
                static_cast<size_t>(state.range(0)) << 20);
    Progress progress;
    const uint64_t disk_before = DiskReadBytes();
    double proc_before = ProcessCpuSeconds();
    state.ResumeTiming();
    std::thread appender([&] {
      for (size_t written = 0; written < total_bytes; written += batch.size()) {
        auto appended = log->Append(batch, 0);
        RUNNEL_CHECK(appended.ok());
        absl::MutexLock lock(&progress.mu);
        progress.end = appended->last_offset + 1;
      }
      absl::MutexLock lock(&progress.mu);
      progress.done = true;
    });
    double cpu_before = ThreadCpuSeconds();
    Offset next = 0;
    struct Ready {
      const Progress* progress;
      const Offset* next;
      bool Check() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return progress->end > *next || progress->done;
      }
    } ready{&progress, &next};
    while (true) {
      Offset end;
      {
        absl::MutexLock lock(&progress.mu);
        progress.mu.Await(absl::Condition(&ready, &Ready::Check));
        end = progress.end;
        if (next >= end && progress.done) break;
      }
      auto read = log->Read(next, 1 << 20, end);
      RUNNEL_CHECK(read.ok() && read->next_offset > next);
      bytes += static_cast<int64_t>(read->bytes.size());
      next = read->next_offset;
    }
    reader_cpu += ThreadCpuSeconds() - cpu_before;
    appender.join();
    state.PauseTiming();
    proc_cpu += ProcessCpuSeconds() - proc_before;
    disk_bytes += DiskReadBytes() - disk_before;
    RUNNEL_CHECK(log->Close().ok());
    log.reset();
    std::filesystem::remove_all(dir);
    state.ResumeTiming();
  }
  double gb = static_cast<double>(bytes) / 1e9;
  state.SetBytesProcessed(bytes);
  state.counters["reader_cpu_s_per_GB"] = reader_cpu / gb;
  state.counters["proc_cpu_s_per_GB"] = proc_cpu / gb;  // appender included
  state.counters["disk_read_fraction"] =
      static_cast<double>(disk_bytes) / static_cast<double>(bytes);
}

void BM_LogColdRead(benchmark::State& state, FileReader reader) {
  const bool drop_cache = state.range(0) != 0;
  int32_t records = 0;
  const std::string batch = MakeBatch(1024, 64 << 10, &records);
  std::string dir = absl::StrCat(BenchDir(), "/log-", getpid(), "/cold");
  std::unique_ptr<PartitionLog> log =
      OpenLog(dir, 0, reader == FileReader::kPread);
  for (size_t written = 0; written < (256u << 20); written += batch.size()) {
    RUNNEL_CHECK(log->Append(batch, 0).ok());
  }
  RUNNEL_CHECK(log->Roll().ok());  // the data now sits in a closed segment
  const Offset end = log->log_end_offset();
  const std::string path = absl::StrCat(dir, "/", std::string(20, '0'), ".log");
  auto read_all = [&]() {
    int64_t n = 0;
    Offset next = 0;
    while (next < end) {
      auto read = log->Read(next, 1 << 20);
      RUNNEL_CHECK(read.ok() && read->next_offset > next);
      n += static_cast<int64_t>(read->bytes.size());
      next = read->next_offset;
    }
    return n;
  };
  if (!drop_cache) read_all();  // warm: fill the page cache first, untimed
  int64_t bytes = 0;
  double reader_cpu = 0;
  double proc_cpu = 0;
  uint64_t disk_bytes = 0;
  for (auto _ : state) {
    if (drop_cache) {
      state.PauseTiming();
      int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      RUNNEL_CHECK(fd >= 0);
      RUNNEL_CHECK(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0);
      ::close(fd);
      state.ResumeTiming();
    }
    double proc_before = ProcessCpuSeconds();
    double cpu_before = ThreadCpuSeconds();
    uint64_t disk_before = DiskReadBytes();
    bytes += read_all();
    reader_cpu += ThreadCpuSeconds() - cpu_before;
    proc_cpu += ProcessCpuSeconds() - proc_before;
    disk_bytes += DiskReadBytes() - disk_before;
  }
  double gb = static_cast<double>(bytes) / 1e9;
  state.SetBytesProcessed(bytes);
  state.counters["reader_cpu_s_per_GB"] = reader_cpu / gb;
  state.counters["proc_cpu_s_per_GB"] = proc_cpu / gb;
  state.counters["disk_read_fraction"] =
      static_cast<double>(disk_bytes) / static_cast<double>(bytes);
  RUNNEL_CHECK(log->Close().ok());
  log.reset();
  std::filesystem::remove_all(dir);
}

// ValidateBatch over the joined batch (piece_bytes 0) against
// ValidateBatchPieces over the batch cut into pieces of piece_bytes after its
// header (gRPC's frames: 16 KiB by default, 64 KiB seen in the broker).
void BM_Validate(benchmark::State& state) {
  int32_t records = 0;
  const std::string batch =
      MakeBatch(static_cast<size_t>(state.range(0)), 1 << 20, &records);
  const auto piece = static_cast<size_t>(state.range(1));
  const std::string header = batch.substr(0, kBatchHeaderSize);
  std::vector<std::string_view> pieces;
  for (size_t pos = kBatchHeaderSize; piece > 0 && pos < batch.size();
       pos += piece) {
    pieces.push_back(std::string_view(batch).substr(pos, piece));
  }
  const ValidateOptions options{.max_batch_bytes = 2 << 20};
  for (auto _ : state) {
    const absl::Status s = piece == 0
                               ? ValidateBatch(batch, options)
                               : ValidateBatchPieces(header, pieces, options);
    RUNNEL_CHECK(s.ok());
  }
  state.SetBytesProcessed(state.iterations() *
                          static_cast<int64_t>(batch.size()));
  state.counters["records_per_second"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * records,
                         benchmark::Counter::kIsRate);
}

// One compaction pass (PartitionLog::Compact) over 256 MiB of closed
// 16 MiB segments: `record`-byte values under keys drawn uniformly from
// `keys` keys, 64 KiB batches, uncompressed. Each iteration builds a fresh
// log (not timed) and times the first pass; "idle_pass_ms" is a second pass
// with nothing new (it reads nothing).
void BM_Compact(benchmark::State& state) {
  const auto record_bytes = static_cast<size_t>(state.range(0));
  const auto keys = static_cast<uint64_t>(state.range(1));
  const std::string dir =
      absl::StrCat(BenchDir(), "/log-", getpid(), "/compact");
  std::mt19937_64 rng(record_bytes * 131 + keys);
  int64_t bytes_before = 0, bytes_after = 0, removed = 0, records = 0;
  double idle_seconds = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::filesystem::remove_all(dir);
    PartitionLogOptions options;
    options.dir = dir;
    options.topic = "bench";
    options.config.cleanup_policy = "compact";
    options.config.segment_bytes = 16 << 20;
    options.config.max_message_bytes = 2 << 20;
    options.io = SharedIo();
    auto opened = PartitionLog::Open(std::move(options));
    RUNNEL_CHECK(opened.ok());
    std::unique_ptr<PartitionLog> log = *std::move(opened);
    std::string value(record_bytes, 'v');
    for (size_t written = 0; written < (256u << 20);) {
      RecordBatchBuilder builder;
      while (builder.uncompressed_size_bytes() + record_bytes + 32 <=
             (64u << 10)) {
        value[0] = static_cast<char>('a' + rng() % 26);
        builder.Append(1700000000000, absl::StrCat("key-", rng() % keys),
                       value);
      }
      records += builder.record_count();
      auto batch = builder.Build();
      RUNNEL_CHECK(batch.ok());
      written += batch->size();
      RUNNEL_CHECK(log->Append(*std::move(batch), 0).ok());
    }
    RUNNEL_CHECK(log->Roll().ok());
    RUNNEL_CHECK(log->Flush().ok());
    state.ResumeTiming();
    auto pass = log->Compact();
    RUNNEL_CHECK(pass.ok());
    state.PauseTiming();
    bytes_before += pass->bytes_before;
    bytes_after += pass->bytes_after;
    removed += pass->records_removed;
    const auto idle_wall = std::chrono::steady_clock::now();
    auto idle = log->Compact();
    RUNNEL_CHECK(idle.ok() && idle->records_removed == 0);
    idle_seconds += std::chrono::duration<double>(
                        std::chrono::steady_clock::now() - idle_wall)
                        .count();
    RUNNEL_CHECK(log->Close().ok());
    log.reset();
    std::filesystem::remove_all(dir);
    state.ResumeTiming();
  }
  const auto n = static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(256u << 20) *
                          state.iterations());
  state.counters["records"] = static_cast<double>(records) / n;
  state.counters["removed"] = static_cast<double>(removed) / n;
  state.counters["MB_rewritten"] = static_cast<double>(bytes_before) / n / 1e6;
  state.counters["MB_after"] = static_cast<double>(bytes_after) / n / 1e6;
  state.counters["idle_pass_ms"] = idle_seconds / n * 1e3;
}

void RegisterAll() {
  for (int64_t record : {100, 1024}) {
    for (int64_t keys : {1000, 100000}) {
      benchmark::RegisterBenchmark("Compact", BM_Compact)
          ->ArgNames({"record", "keys"})
          ->Args({record, keys})
          ->Iterations(2)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
  for (int64_t record : {100, 1024}) {
    for (int64_t piece : {0, 16 << 10, 64 << 10}) {
      benchmark::RegisterBenchmark("Validate", BM_Validate)
          ->ArgNames({"record", "piece"})
          ->Args({record, piece})
          ->Unit(benchmark::kMicrosecond);
    }
  }
  struct Size {
    int64_t batch;
    int64_t nosync_iters, durable_iters, durable8_iters;
  };
  const Size sizes[] = {
      {16 << 10, 16384, 1024, 256},  // 256 MiB, 16 MiB, 8 x 4 MiB
      {64 << 10, 4096, 512, 128},    // 256 MiB, 32 MiB, 8 x 8 MiB
      {1 << 20, 256, 128, 32},       // 256 MiB, 128 MiB, 8 x 32 MiB
  };
  for (int64_t record : {100, 1024}) {
    for (const Size& s : sizes) {
      benchmark::RegisterBenchmark("LogAppend/nosync", BM_LogAppend,
                                   Mode::kNoSync)
          ->Args({record, s.batch})
          ->Iterations(s.nosync_iters)
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark("LogAppend/durable", BM_LogAppend,
                                   Mode::kDurable)
          ->Args({record, s.batch})
          ->Iterations(s.durable_iters)
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark("LogAppend/durable8", BM_LogAppend,
                                   Mode::kDurable)
          ->Args({record, s.batch})
          ->Iterations(s.durable8_iters)
          ->Threads(8)
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
    }
    benchmark::RegisterBenchmark("LogRead/sequential", BM_LogRead)
        ->Arg(record)
        ->Iterations(3)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  for (auto [name, reader] : {std::pair{"iouring", FileReader::kIoUring},
                              std::pair{"pread", FileReader::kPread}}) {
    benchmark::RegisterBenchmark(absl::StrCat("LogTailRead/", name).c_str(),
                                 BM_LogTailRead, reader)
        ->ArgName("cache_MiB")
        ->Arg(0)
        ->Arg(2)
        ->Arg(4)
        ->Arg(8)
        ->Iterations(1)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(absl::StrCat("LogColdRead/", name).c_str(),
                                 BM_LogColdRead, reader)
        ->Arg(1)
        ->Arg(0)
        ->Iterations(3)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
}

}  // namespace
}  // namespace runnel::log

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  runnel::log::RegisterAll();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::filesystem::remove_all(
      absl::StrCat(runnel::log::BenchDir(), "/log-", getpid()));
  return 0;
}
