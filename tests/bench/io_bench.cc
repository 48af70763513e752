// Storage benchmarks: AppendWriter sequential appends, buffered vs O_DIRECT.
//
//   io_bench [--benchmark_filter=...]      (RUNNEL_BENCH_DIR picks the
//   directory,
//                                           default /tmp/runnel-bench)
//
// Per block size (16 KiB, 64 KiB, 1 MiB) and mode (buffered, direct):
//   nosync   appends only; the last iteration waits until everything is written
//   sync     Sync() after every append, waiting for durability
//   sync8    8 appender threads on 8 files sharing one IoThread, each syncing
//            after every append (group commit across files)
//   pipe5    Sync() after every append without waiting, at most 5 Syncs
//            outstanding: the broker's pattern with a producer's 5 requests
//            in flight (1 MiB blocks; second argument: buffer_bytes in MiB)
// Iteration counts are fixed so each case writes a bounded amount (<= 512 MiB);
// each file is deleted when its case ends. Counters: bytes_per_second, and
// proc_cpu_s_per_GB = CPU seconds of the whole process (appenders, the I/O
// thread and io_uring workers) per GB appended; fsyncs_per_sync shows sharing.

#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "benchmark/benchmark.h"

#include "common/check.h"
#include "log/append_writer.h"
#include "log/io_thread.h"
#include "tests/bench/bench_util.h"

namespace runnel::log {
namespace {

using bench::BenchDir;
using bench::ProcessCpuSeconds;
using bench::SharedIo;

void Wait(AppendWriter& writer, bool durable) {
  absl::Notification done;
  auto callback = [&](absl::Status status) {
    RUNNEL_CHECK(status.ok());
    done.Notify();
  };
  if (durable) {
    writer.Sync(callback);
  } else {
    writer.Flush(callback);
  }
  done.WaitForNotification();
}

enum class Mode { kNoSync, kSyncEach, kPipelined };

// Counts Syncs not yet durable; Acquire waits while `limit` are.
class Outstanding {
 public:
  explicit Outstanding(int limit) : limit_(limit) {}
  void Acquire() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](Outstanding* o) { return o->count_ < o->limit_; }, this));
    ++count_;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    --count_;
  }
  void WaitForNone() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* count) { return *count == 0; }, &count_));
  }

 private:
  const int limit_;
  absl::Mutex mu_;
  int count_ ABSL_GUARDED_BY(mu_) = 0;
};

void BM_Append(benchmark::State& state, bool direct, Mode mode) {
  const size_t block = static_cast<size_t>(state.range(0));
  std::string data(block, '\0');
  std::mt19937_64 rng(state.thread_index() + 1);
  for (char& c : data) c = static_cast<char>(rng());
  std::string path = absl::StrCat(BenchDir(), "/append-", getpid(), "-",
                                  state.thread_index(), ".log");
  const size_t buffer_bytes = static_cast<size_t>(state.range(1)) << 20;
  auto writer = AppendWriter::Open(
      SharedIo(), path, 0,
      AppendWriterOptions{.direct_io = direct, .buffer_bytes = buffer_bytes});
  RUNNEL_CHECK(writer.ok());
  IoThreadStats stats_before = SharedIo()->Stats();
  double cpu_before = ProcessCpuSeconds();
  const int64_t iterations = state.max_iterations;
  int64_t i = 0;
  Outstanding outstanding(5);
  for (auto _ : state) {
    if (mode == Mode::kPipelined) outstanding.Acquire();
    (*writer)->Append(data);
    if (mode == Mode::kPipelined) {
      (*writer)->Sync([&outstanding](absl::Status status) {
        RUNNEL_CHECK(status.ok());
        outstanding.Release();
      });
      if (++i == iterations) outstanding.WaitForNone();
    } else if (mode == Mode::kSyncEach) {
      Wait(**writer, /*durable=*/true);
    } else if (++i == iterations) {
      Wait(**writer, /*durable=*/false);  // the time includes writing it all
    }
  }
  double cpu = ProcessCpuSeconds() - cpu_before;
  IoThreadStats stats_after = SharedIo()->Stats();
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(block));
  if (state.thread_index() == 0) {
    double gb =
        static_cast<double>(state.iterations() * block * state.threads()) / 1e9;
    state.counters["proc_cpu_s_per_GB"] = cpu / gb;
    uint64_t requests =
        stats_after.fsync_requests - stats_before.fsync_requests;
    if (requests > 0) {
      state.counters["fsyncs_per_sync"] =
          static_cast<double>(stats_after.fsyncs_issued -
                              stats_before.fsyncs_issued) /
          requests;
    }
  }
  RUNNEL_CHECK((*writer)->Close().ok());
  writer->reset();
  std::filesystem::remove(path);
}

void RegisterAll() {
  struct Size {
    int64_t block;
    int64_t nosync_iters, sync_iters, sync8_iters;
  };
  const Size sizes[] = {
      {16 << 10, 16384, 1024, 256},  // 256 MiB, 16 MiB, 32 MiB
      {64 << 10, 4096, 512, 128},    // 256 MiB, 32 MiB, 64 MiB
      {1 << 20, 256, 128, 32},       // 256 MiB, 128 MiB, 256 MiB
  };
  for (bool direct : {false, true}) {
    const char* mode_name = direct ? "direct" : "buffered";
    for (const Size& s : sizes) {
      benchmark::RegisterBenchmark(
          absl::StrCat("Append/", mode_name, "/nosync").c_str(), BM_Append,
          direct, Mode::kNoSync)
          ->Args({s.block, 1})
          ->Iterations(s.nosync_iters)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(
          absl::StrCat("Append/", mode_name, "/sync").c_str(), BM_Append,
          direct, Mode::kSyncEach)
          ->Args({s.block, 1})
          ->Iterations(s.sync_iters)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(
          absl::StrCat("Append/", mode_name, "/sync8").c_str(), BM_Append,
          direct, Mode::kSyncEach)
          ->Args({s.block, 1})
          ->Iterations(s.sync8_iters)
          ->Threads(8)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
    for (int64_t buffer_mib : {1, 4}) {
      benchmark::RegisterBenchmark(
          absl::StrCat("Append/", mode_name, "/pipe5").c_str(), BM_Append,
          direct, Mode::kPipelined)
          ->Args({1 << 20, buffer_mib})
          ->Iterations(512)  // 512 MiB
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
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
  return 0;
}
