// The child of the crash test (tests/log/crash_test.cc):
//
//   log_crash_child <data_dir> <seed> <appenders>
//
// Opens a LogManager on <data_dir> (recovering it after the previous kill),
// prints "start <log_end_offset>" and then, from <appenders> threads, appends
// random batches to crash::kTopic forever. After each batch is durable it
// prints "ack <base_offset> <last_offset> <records digest>" on stdout. It
// never shuts down on its own: the parent SIGKILLs it. Any error ends it with
// exit code 1 and a message on stderr, which the parent reports.

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

#include "common/clock.h"
#include "log/log_manager.h"
#include "log/partition_log.h"
#include "log/record_batch.h"
#include "tests/log/crash_common.h"

namespace runnel::log::crash {
namespace {

[[noreturn]] void Die(const std::string& what, const absl::Status& status) {
  fprintf(stderr, "log_crash_child: %s: %s\n", what.c_str(),
          status.ToString().c_str());
  fflush(stderr);
  _exit(1);
}

// One whole line per write(2): shorter than PIPE_BUF, so lines from several
// threads never interleave.
void WriteLine(const std::string& line) {
  const ssize_t n = ::write(STDOUT_FILENO, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) _exit(3);  // parent went away
}

std::optional<std::string> RandomBytes(std::mt19937_64& rng, int max_len,
                                       int null_one_in) {
  if (rng() % null_one_in == 0) return std::nullopt;
  std::string s(rng() % (max_len + 1), '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

std::string RandomBatch(std::mt19937_64& rng, int64_t now_ms) {
  RecordBatchBuilder builder;
  const int records = 1 + static_cast<int>(rng() % 64);
  for (int i = 0; i < records; ++i) {
    std::optional<std::string> key = RandomBytes(rng, 16, 8);
    std::optional<std::string> value = RandomBytes(rng, 512, 16);
    builder.Append(now_ms + i, key, value);
  }
  auto bytes = builder.Build();
  if (!bytes.ok()) Die("build batch", bytes.status());
  return *std::move(bytes);
}

void AppendForever(PartitionLog* log, uint64_t seed) {
  std::mt19937_64 rng(seed);
  while (true) {
    std::string batch = RandomBatch(rng, SystemClock::Default()->NowMs());
    auto view = RecordBatchView::Parse(batch);
    if (!view.ok()) Die("parse own batch", view.status());
    auto records = view->DecodeRecords();
    if (!records.ok()) Die("decode own batch", records.status());
    const uint32_t digest = RecordsDigest(*records, 0);
    auto appended = log->Append(std::move(batch), /*leader_epoch=*/0);
    if (!appended.ok()) Die("append", appended.status());
    absl::Status durable = log->DurableFuture(appended->last_offset).get();
    if (!durable.ok()) Die("durable", durable);
    WriteLine(absl::StrCat("ack ", appended->base_offset, " ",
                           appended->last_offset, " ", digest, "\n"));
  }
}

int Main(int argc, char** argv) {
  uint64_t seed = 0;
  int appenders = 0;
  if (argc != 4 || !absl::SimpleAtoi(argv[2], &seed) ||
      !absl::SimpleAtoi(argv[3], &appenders) || appenders < 1) {
    fprintf(stderr, "usage: log_crash_child <data_dir> <seed> <appenders>\n");
    return 2;
  }
  LogManagerOptions options;
  options.data_dir = argv[1];
  options.default_config = CrashLogConfig();
  // Frequent checkpoints, so kills also land while one is being written.
  options.checkpoint_interval_ms = 20;
  options.retention_check_interval_ms = 3600 * 1000;
  auto manager = LogManager::Open(options);
  if (!manager.ok()) Die("open", manager.status());
  PartitionLog* log = (*manager)->Get(kTopic, kPartition);
  if (log == nullptr) {
    auto created = (*manager)->Create(kTopic, kPartition, CrashLogConfig());
    if (!created.ok()) Die("create", created.status());
    log = *created;
  }
  WriteLine(absl::StrCat("start ", log->log_end_offset(), "\n"));
  std::vector<std::thread> threads;
  for (int i = 0; i < appenders; ++i) {
    threads.emplace_back(AppendForever, log, seed * 1000 + i);
  }
  for (std::thread& t : threads) t.join();  // never: the parent kills us
  return 0;
}

}  // namespace
}  // namespace runnel::log::crash

int main(int argc, char** argv) { return runnel::log::crash::Main(argc, argv); }
