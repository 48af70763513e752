// Crash safety of the log: a child process (tests/log/crash_child.cc) appends
// and reports each durably acknowledged batch over a pipe; the parent
// SIGKILLs it at a random moment, recovers the log and checks that every
// acknowledged batch is there with the same records and that the log is a
// valid prefix. Plus byte flips in the tail batch and in an older segment.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "log/log_manager.h"
#include "log/partition_log.h"
#include "log/record_batch.h"
#include "tests/log/crash_common.h"
#include "tests/log/manager_testing.h"
#include "tests/testing/scoped_temp_dir.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/wait_for.h"

extern char** environ;

namespace runnel::log {
namespace {

namespace fs = std::filesystem;
using ::runnel::testing::ScopedTempDir;
using ::runnel::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

struct Ack {
  Offset base = 0;
  Offset last = 0;
  uint32_t digest = 0;
};

struct StoredBatch {
  Offset last = 0;
  uint32_t digest = 0;
  std::string bytes;
};

LogManagerOptions ManagerOptions(const std::string& dir) {
  LogManagerOptions options;
  options.data_dir = dir;
  options.default_config = crash::CrashLogConfig();
  options.start_background_threads = false;
  return options;
}

// Reads every batch of `log` from its start and checks the log is a valid
// prefix: offsets contiguous from log_start_offset, each batch valid on disk,
// ending exactly at log_end_offset. Returns base offset -> batch.
std::map<Offset, StoredBatch> ReadAndCheckAll(PartitionLog* log) {
  std::map<Offset, StoredBatch> out;
  Offset next = log->log_start_offset();
  const Offset end = log->log_end_offset();
  while (next < end) {
    auto read = log->Read(next, 1 << 20);
    EXPECT_THAT(read, ::runnel::testing::IsOk()) << "read at " << next;
    if (!read.ok() || read->bytes.empty()) break;
    std::string_view rest = read->bytes;
    while (!rest.empty()) {
      auto view = RecordBatchView::Parse(rest, BatchSource::kDisk);
      EXPECT_THAT(view, ::runnel::testing::IsOk()) << "batch at " << next;
      if (!view.ok()) return out;
      ValidateOptions vo;
      vo.source = BatchSource::kDisk;
      vo.max_batch_bytes = 64 << 20;
      EXPECT_THAT(ValidateBatch(view->bytes(), vo), ::runnel::testing::IsOk());
      EXPECT_EQ(view->base_offset(), next) << "offsets must be contiguous";
      auto records = view->DecodeRecords(BatchSource::kDisk);
      EXPECT_THAT(records, ::runnel::testing::IsOk());
      if (!records.ok()) return out;
      out[view->base_offset()] =
          StoredBatch{view->last_offset(),
                      crash::RecordsDigest(*records, view->base_offset()),
                      std::string(view->bytes())};
      next = view->next_offset();
      rest.remove_prefix(view->size_bytes());
    }
  }
  EXPECT_EQ(next, end) << "batches must end exactly at log_end_offset";
  // Past the end there is nothing to serve.
  auto tail = log->Read(end, 1 << 20);
  EXPECT_THAT(tail, ::runnel::testing::IsOk());
  if (tail.ok()) {
    EXPECT_TRUE(tail->bytes.empty());
  }
  return out;
}

// Starts log_crash_child with its stdout on a pipe.
struct Child {
  pid_t pid = -1;
  int out_fd = -1;
};

Child SpawnChild(const std::string& dir, uint64_t seed, int appenders) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2 failed";
    return {};
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  const std::string seed_arg = absl::StrCat(seed);
  const std::string appenders_arg = absl::StrCat(appenders);
  const char* argv[] = {RUNNEL_CRASH_CHILD, dir.c_str(), seed_arg.c_str(),
                        appenders_arg.c_str(), nullptr};
  Child child;
  const int rc = posix_spawn(&child.pid, RUNNEL_CRASH_CHILD, &actions, nullptr,
                             const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    ADD_FAILURE() << "posix_spawn " << RUNNEL_CRASH_CHILD << ": " << rc;
    close(fds[0]);
    return {};
  }
  child.out_fd = fds[0];
  return child;
}

// Reads lines from `fd` until EOF; a line that does not arrive within
// `timeout` ends the read (returns false).
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}
  // Returns false at EOF or timeout (timed_out() tells which).
  bool Next(std::string* line, absl::Duration timeout) {
    while (true) {
      const size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        *line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return true;
      }
      pollfd p{fd_, POLLIN, 0};
      const int ready = poll(&p, 1, absl::ToInt64Milliseconds(timeout));
      if (ready == 0) {
        timed_out_ = true;
        return false;
      }
      char chunk[4096];
      const ssize_t n = read(fd_, chunk, sizeof(chunk));
      if (n <= 0) return false;
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }
  bool timed_out() const { return timed_out_; }

 private:
  int fd_;
  std::string buf_;
  bool timed_out_ = false;
};

bool ParseAck(const std::string& line, Ack* ack) {
  std::vector<std::string> f = absl::StrSplit(line, ' ');
  return f.size() == 4 && f[0] == "ack" && absl::SimpleAtoi(f[1], &ack->base) &&
         absl::SimpleAtoi(f[2], &ack->last) &&
         absl::SimpleAtoi(f[3], &ack->digest);
}

// One round: run the child until it has acknowledged `kill_after` batches
// (plus a random pause), SIGKILL it, and collect every ack it printed.
// Returns the log end offset the child reported at start.
Offset RunChildAndKill(const std::string& dir, uint64_t seed, int kill_after,
                       int pause_us, std::vector<Ack>* acks) {
  Child child = SpawnChild(dir, seed, /*appenders=*/4);
  if (child.pid < 0) return -1;
  LineReader reader(child.out_fd);
  std::string line;
  Offset start_end = -1;
  int acked_this_round = 0;
  bool killed = false;
  while (reader.Next(&line, absl::Seconds(20))) {
    Ack ack;
    if (ParseAck(line, &ack)) {
      acks->push_back(ack);
      ++acked_this_round;
    } else if (absl::StartsWith(line, "start ")) {
      EXPECT_TRUE(absl::SimpleAtoi(line.substr(6), &start_end)) << line;
    } else {
      ADD_FAILURE() << "unexpected child output: " << line;
    }
    if (!killed && acked_this_round >= kill_after) {
      // Not synchronization: the pause only moves the kill to a random point
      // inside whatever the appenders are doing.
      absl::SleepFor(absl::Microseconds(pause_us));
      kill(child.pid, SIGKILL);
      killed = true;
    }
  }
  EXPECT_FALSE(reader.timed_out()) << "child stopped making progress";
  if (!killed) kill(child.pid, SIGKILL);
  close(child.out_fd);
  int wstatus = 0;
  EXPECT_EQ(waitpid(child.pid, &wstatus, 0), child.pid);
  EXPECT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL)
      << "the child must die by our SIGKILL, not exit (status " << wstatus
      << "); see its stderr above";
  return start_end;
}

// Positions of the whole, CRC-valid batches at the start of one .log file.
std::vector<std::pair<FilePos, size_t>> BatchPositions(
    const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string data(std::istreambuf_iterator<char>(in), {});
  std::vector<std::pair<FilePos, size_t>> out;
  std::string_view rest = data;
  FilePos pos = 0;
  while (!rest.empty()) {
    auto view = RecordBatchView::Parse(rest, BatchSource::kDisk);
    // O_DIRECT zero padding, a torn tail, or a batch torn inside.
    if (!view.ok() || !view->CrcMatches()) break;
    out.emplace_back(pos, view->size_bytes());
    pos += static_cast<FilePos>(view->size_bytes());
    rest.remove_prefix(view->size_bytes());
  }
  return out;
}

void FlipByte(const std::string& path, FilePos pos) {
  std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
  f.seekg(pos);
  char c = 0;
  f.read(&c, 1);
  c ^= 0x5a;
  f.seekp(pos);
  f.write(&c, 1);
}

std::string SegmentPath(const std::string& partition_dir, Offset base) {
  char name[32];
  snprintf(name, sizeof(name), "%020lld.log", static_cast<long long>(base));
  return absl::StrCat(partition_dir, "/", name);
}

// The newest .log file of a partition directory.
std::string LastSegmentPath(const std::string& partition_dir) {
  std::string last;
  for (const auto& entry : fs::directory_iterator(partition_dir)) {
    const std::string p = entry.path().string();
    if (absl::EndsWith(p, ".log") && p > last) last = p;
  }
  return last;
}

// What a power loss in the middle of a write leaves: the first `keep` bytes
// of a batch right after the last whole batch of the newest segment (over any
// O_DIRECT padding or partial batch the kill left). Returns the offset that
// follows the last whole batch, which recovery must make the log end.
Offset InjectTornTail(const std::string& partition_dir, std::mt19937_64& rng) {
  const std::string path = LastSegmentPath(partition_dir);
  EXPECT_FALSE(path.empty());
  const auto positions = BatchPositions(path);
  std::ifstream in(path, std::ios::binary);
  const std::string data(std::istreambuf_iterator<char>(in), {});
  Offset next = 0;
  FilePos end = 0;
  if (positions.empty()) {
    // An empty newest segment: its name is its base offset.
    EXPECT_TRUE(absl::SimpleAtoi(fs::path(path).stem().string(), &next));
  } else {
    const auto [pos, size] = positions.back();
    auto view = RecordBatchView::Parse(std::string_view(data).substr(pos),
                                       BatchSource::kDisk);
    EXPECT_TRUE(view.ok());
    if (view.ok()) next = view->next_offset();
    end = pos + static_cast<FilePos>(size);
  }
  RecordBatchBuilder builder(BatchBuilderOptions{.base_offset = next});
  for (int i = 0; i < 20; ++i) {
    builder.Append(1'700'000'000'000, "torn", std::string(200, 't'));
  }
  auto batch = builder.Build();
  EXPECT_TRUE(batch.ok());
  if (!batch.ok()) return next;
  const size_t keep = 1 + rng() % (batch->size() - 1);
  std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
  f.seekp(end);
  f.write(batch->data(), static_cast<std::streamsize>(keep));
  return next;
}

TEST(CrashTest, AcknowledgedBatchesSurviveSigkill) {
  const uint64_t seed = ::runnel::testing::TestSeed();
  SCOPED_TRACE(absl::StrCat("seed=", seed));
  printf("crash test seed=%llu (set RUNNEL_TEST_SEED to reproduce)\n",
         static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  ScopedTempDir dir;
  std::vector<Ack> acks;
  Offset end_before = 0;
  constexpr int kRounds = 8;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round=", round));
    const int kill_after = 1 + static_cast<int>(rng() % 300);
    const int pause_us = static_cast<int>(rng() % 3000);
    const size_t acks_before = acks.size();
    const Offset child_start =
        RunChildAndKill(dir.path(), seed + round, kill_after, pause_us, &acks);
    ASSERT_FALSE(HasFailure());
    // The child recovered the previous round's log with nothing lost.
    EXPECT_EQ(child_start, end_before);
    ASSERT_GT(acks.size(), acks_before) << "the child acknowledged nothing";
    // Every other round, also tear the tail as a power loss would.
    const std::string partition_dir = absl::StrCat(
        dir.path(), "/", PartitionDirName(crash::kTopic, crash::kPartition));
    const bool torn = rng() % 2 == 0;
    const Offset torn_at = torn ? InjectTornTail(partition_dir, rng) : -1;

    auto manager =
        ::runnel::log::testing::OpenManager(ManagerOptions(dir.path()));
    ASSERT_THAT(manager, ::runnel::testing::IsOk());
    EXPECT_FALSE((*manager)->opened_after_clean_shutdown());
    EXPECT_THAT((*manager)->recovery_problems(), IsEmpty());
    PartitionLog* log = (*manager)->Get(crash::kTopic, crash::kPartition);
    ASSERT_NE(log, nullptr);
    EXPECT_EQ(log->log_start_offset(), 0);
    const std::map<Offset, StoredBatch> stored = ReadAndCheckAll(log);
    if (torn) {
      EXPECT_EQ(log->log_end_offset(), torn_at)
          << "nothing of the torn batch may be served";
    }
    for (const Ack& ack : acks) {
      auto it = stored.find(ack.base);
      ASSERT_NE(it, stored.end())
          << "acknowledged batch " << ack.base << " is missing (log end "
          << log->log_end_offset() << ")";
      EXPECT_EQ(it->second.last, ack.last) << "batch " << ack.base;
      EXPECT_EQ(it->second.digest, ack.digest) << "batch " << ack.base;
    }
    end_before = log->log_end_offset();
    printf("round %d: killed after %zu acks,%s log end %lld, %d segments\n",
           round, acks.size() - acks_before, torn ? " torn tail," : "",
           static_cast<long long>(end_before), log->segment_count());
    RUNNEL_ASSERT_OK((*manager)->Close());
  }
}

// ---------------------------------------------------------------------------
// Byte flips

class RecoveryCorruptionTest : public ::testing::Test {
 protected:
  // Writes `batches` batches of 10 records to kTopic, closes cleanly, then
  // makes it look like a crash: no marker, no recovery point, so recovery
  // validates everything.
  void WriteLogAndCrash(int batches, int64_t segment_bytes) {
    LogManagerOptions options = ManagerOptions(dir_.path());
    auto manager = ::runnel::log::testing::OpenManager(options);
    ASSERT_THAT(manager, ::runnel::testing::IsOk());
    LogConfig config = crash::CrashLogConfig();
    config.segment_bytes = segment_bytes;
    auto log = (*manager)->Create(crash::kTopic, crash::kPartition, config);
    ASSERT_THAT(log, ::runnel::testing::IsOk());
    for (int b = 0; b < batches; ++b) {
      RecordBatchBuilder builder;
      for (int r = 0; r < 10; ++r) {
        builder.Append(1'700'000'000'000 + b, absl::StrCat("k", b, "-", r),
                       std::string(100, static_cast<char>('a' + b % 26)));
      }
      auto bytes = builder.Build();
      ASSERT_THAT(bytes, ::runnel::testing::IsOk());
      ASSERT_THAT((*log)->Append(*std::move(bytes), 0),
                  ::runnel::testing::IsOk());
    }
    segments_ = (*log)->segment_base_offsets();
    partition_dir_ = (*log)->dir();
    before_ = ReadAndCheckAll(*log);
    RUNNEL_ASSERT_OK((*manager)->Close());
    fs::remove(dir_.Sub(kCleanShutdownFileName));
    fs::remove(dir_.Sub(kRecoveryPointCheckpointName));
  }

  ScopedTempDir dir_;
  std::vector<Offset> segments_;
  std::string partition_dir_;
  std::map<Offset, StoredBatch> before_;
};

TEST_F(RecoveryCorruptionTest, FlippedByteInTailBatchIsTruncated) {
  WriteLogAndCrash(10, 1 << 20);
  ASSERT_EQ(segments_.size(), 1u);
  const std::string path = SegmentPath(partition_dir_, segments_.back());
  const auto positions = BatchPositions(path);
  ASSERT_EQ(positions.size(), 10u);
  // A byte inside the last batch's records (covered by its CRC).
  FlipByte(path, positions.back().first + positions.back().second - 5);

  auto manager =
      ::runnel::log::testing::OpenManager(ManagerOptions(dir_.path()));
  ASSERT_THAT(manager, ::runnel::testing::IsOk());
  PartitionLog* log = (*manager)->Get(crash::kTopic, crash::kPartition);
  ASSERT_NE(log, nullptr);
  // The last batch is gone; the nine before it are served unchanged.
  EXPECT_EQ(log->log_end_offset(), 90);
  const auto after = ReadAndCheckAll(log);
  ASSERT_EQ(after.size(), 9u);
  for (const auto& [base, batch] : after) {
    EXPECT_EQ(batch.bytes, before_.at(base).bytes) << "batch " << base;
  }
  EXPECT_THAT(log->Read(95, 1 << 20), StatusIs(absl::StatusCode::kOutOfRange));
  RUNNEL_ASSERT_OK((*manager)->Close());
}

TEST_F(RecoveryCorruptionTest, FlippedByteInOlderSegmentIsReportedNotServed) {
  // ~1.2 KiB batches, 4 KiB segments: several segments.
  WriteLogAndCrash(20, 4096);
  ASSERT_GE(segments_.size(), 3u);
  const std::string path = SegmentPath(partition_dir_, segments_[0]);
  const auto positions = BatchPositions(path);
  ASSERT_GE(positions.size(), 2u);
  // The second batch of the oldest segment: mid-log, not at any tail.
  const auto [bad_pos, bad_size] = positions[1];
  FlipByte(path, bad_pos + bad_size / 2);
  const Offset bad_base = std::next(before_.begin())->first;

  auto manager =
      ::runnel::log::testing::OpenManager(ManagerOptions(dir_.path()));
  ASSERT_THAT(manager, ::runnel::testing::IsOk());
  ASSERT_EQ((*manager)->recovery_problems().size(), 1u);
  const absl::Status& problem = (*manager)->recovery_problems()[0];
  EXPECT_THAT(problem, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(std::string(problem.message()), HasSubstr(path));
  EXPECT_THAT(std::string(problem.message()), HasSubstr(absl::StrCat(bad_pos)));

  PartitionLog* log = (*manager)->Get(crash::kTopic, crash::kPartition);
  ASSERT_NE(log, nullptr);
  // Nothing at or after the corrupt batch is served.
  EXPECT_LE(log->log_end_offset(), bad_base);
  const auto after = ReadAndCheckAll(log);
  for (const auto& [base, batch] : after) {
    EXPECT_LT(base, bad_base);
    EXPECT_EQ(batch.bytes, before_.at(base).bytes);
  }
  EXPECT_THAT(log->Read(bad_base + 1, 1 << 20),
              StatusIs(absl::StatusCode::kOutOfRange));
  RUNNEL_ASSERT_OK((*manager)->Close());
}

}  // namespace
}  // namespace runnel::log
