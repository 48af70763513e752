#include "log/append_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <latch>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/scoped_temp_dir.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/wait_for.h"

namespace runnel::log {
namespace {

using ::runnel::testing::IsOk;
using ::runnel::testing::StatusIs;

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int64_t FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return -1;
  return st.st_size;
}

std::string RandomBytes(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

absl::Status SyncAndWait(AppendWriter& w) {
  absl::Notification done;
  absl::Status result;
  w.Sync([&](absl::Status s) {
    result = s;
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

absl::Status FlushAndWait(AppendWriter& w) {
  absl::Notification done;
  absl::Status result;
  w.Flush([&](absl::Status s) {
    result = s;
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

// Every test runs in buffered and in O_DIRECT mode.
class AppendWriterTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    auto io = IoThread::Start({});
    ASSERT_THAT(io, IsOk());
    io_ = std::move(io).value();
  }

  AppendWriterOptions Options(size_t buffer_bytes = 1 << 20) const {
    return AppendWriterOptions{.direct_io = GetParam(), .buffer_bytes = buffer_bytes};
  }

  std::unique_ptr<AppendWriter> OpenWriter(const std::string& path, FilePos start,
                                           AppendWriterOptions options) {
    auto w = AppendWriter::Open(io_.get(), path, start, options);
    EXPECT_THAT(w, IsOk());
    return w.ok() ? std::move(w).value() : nullptr;
  }

  runnel::testing::ScopedTempDir dir_;
  std::unique_ptr<IoThread> io_;
};

TEST_P(AppendWriterTest, AppendsOfOddSizesReadBackByteExact) {
  std::mt19937_64 rng(runnel::testing::TestSeed());
  std::string path = dir_.Sub("a.log");
  auto w = OpenWriter(path, 0, Options(64 << 10));
  ASSERT_NE(w, nullptr);
  std::string expected;
  for (size_t n : {1u, 4095u, 4096u, 4097u, 100u, 70000u, 12345u, 3u}) {
    std::string data = RandomBytes(rng, n);
    EXPECT_EQ(w->Append(data), static_cast<FilePos>(expected.size()));
    expected += data;
  }
  EXPECT_EQ(w->size(), static_cast<FilePos>(expected.size()));
  RUNNEL_ASSERT_OK(FlushAndWait(*w));
  EXPECT_EQ(w->written_pos(), w->size());
  // Readable through a separate, normal fd before Close.
  std::string got = ReadWholeFile(path);
  ASSERT_GE(got.size(), expected.size());
  EXPECT_EQ(got.substr(0, expected.size()), expected);
  if (GetParam()) {
    // O_DIRECT: the last block is zero-padded until Close trims it.
    EXPECT_EQ(got.size() % kDirectIoAlignment, 0u);
    EXPECT_EQ(got.substr(expected.size()), std::string(got.size() - expected.size(), '\0'));
  }
  RUNNEL_ASSERT_OK(w->Close());
  EXPECT_EQ(ReadWholeFile(path), expected);
}

TEST_P(AppendWriterTest, ManySmallAppendsThroughSmallBuffersReadBackExact) {
  std::mt19937_64 rng(runnel::testing::TestSeed());
  SCOPED_TRACE(absl::StrCat("seed=", runnel::testing::TestSeed()));
  std::string path = dir_.Sub("small.log");
  auto w = OpenWriter(path, 0, Options(8192));
  ASSERT_NE(w, nullptr);
  std::string expected;
  for (int i = 0; i < 5000; ++i) {
    std::string data = RandomBytes(rng, 1 + rng() % 200);
    EXPECT_EQ(w->Append(data), static_cast<FilePos>(expected.size()));
    expected += data;
    if (i % 97 == 0) w->Flush([](absl::Status s) { EXPECT_THAT(s, IsOk()); });
  }
  RUNNEL_ASSERT_OK(w->Close());
  EXPECT_EQ(ReadWholeFile(path), expected);
}

TEST_P(AppendWriterTest, AppendLargerThanBufferIsSplitAcrossWrites) {
  std::mt19937_64 rng(7);
  std::string path = dir_.Sub("big.log");
  auto w = OpenWriter(path, 0, Options(16384));
  ASSERT_NE(w, nullptr);
  std::string a = RandomBytes(rng, 3 * 1024 * 1024 + 17);
  std::string b = RandomBytes(rng, 5);
  EXPECT_EQ(w->Append(a), 0);
  EXPECT_EQ(w->Append(b), static_cast<FilePos>(a.size()));
  RUNNEL_ASSERT_OK(SyncAndWait(*w));
  RUNNEL_ASSERT_OK(w->Close());
  EXPECT_EQ(ReadWholeFile(path), a + b);
  EXPECT_GT(io_->Stats().write_requests, 3 * 1024 * 1024 / 16384u - 1);
}

TEST_P(AppendWriterTest, SyncMakesDurablePosReachSize) {
  auto w = OpenWriter(dir_.Sub("s.log"), 0, Options());
  ASSERT_NE(w, nullptr);
  w->Append(std::string(5000, 's'));
  EXPECT_EQ(w->durable_pos(), 0);
  RUNNEL_ASSERT_OK(SyncAndWait(*w));
  EXPECT_EQ(w->durable_pos(), 5000);
  EXPECT_EQ(w->written_pos(), 5000);
  // Nothing new: the callback still runs (on the I/O thread) with OK.
  RUNNEL_ASSERT_OK(SyncAndWait(*w));
  w->Append("more");
  RUNNEL_ASSERT_OK(SyncAndWait(*w));
  EXPECT_EQ(w->durable_pos(), 5004);
  EXPECT_GE(io_->Stats().fsyncs_issued, 2u);
  RUNNEL_EXPECT_OK(w->Close());
}

TEST_P(AppendWriterTest, CloseTrimsPaddingAndIsIdempotent) {
  std::string path = dir_.Sub("c.log");
  auto w = OpenWriter(path, 0, Options());
  ASSERT_NE(w, nullptr);
  w->Append(std::string(10000, 'c'));
  RUNNEL_ASSERT_OK(FlushAndWait(*w));
  EXPECT_EQ(FileSize(path), GetParam() ? 12288 : 10000);
  RUNNEL_ASSERT_OK(w->Close());
  EXPECT_EQ(FileSize(path), 10000);
  EXPECT_EQ(w->durable_pos(), 10000);
  RUNNEL_EXPECT_OK(w->Close());
}

TEST_P(AppendWriterTest, ReopenWithStartPosContinuesFile) {
  std::mt19937_64 rng(11);
  std::string path = dir_.Sub("r.log");
  std::string first = RandomBytes(rng, 5000);
  {
    auto w = OpenWriter(path, 0, Options());
    ASSERT_NE(w, nullptr);
    w->Append(first);
    RUNNEL_ASSERT_OK(w->Close());
  }
  std::string second = RandomBytes(rng, 9000);
  {
    auto w = OpenWriter(path, 5000, Options());
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->size(), 5000);
    EXPECT_EQ(w->Append(second), 5000);
    RUNNEL_ASSERT_OK(w->Close());
  }
  EXPECT_EQ(ReadWholeFile(path), first + second);
  // A torn tail past start_pos is dropped: continue after the first 3000 bytes.
  std::string third = RandomBytes(rng, 100);
  {
    auto w = OpenWriter(path, 3000, Options());
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->Append(third), 3000);
    RUNNEL_ASSERT_OK(w->Close());
  }
  EXPECT_EQ(ReadWholeFile(path), first.substr(0, 3000) + third);
}

TEST_P(AppendWriterTest, OpenRejectsStartPosPastEndOfFile) {
  std::string path = dir_.Sub("short.log");
  { std::ofstream(path) << "abc"; }
  auto w = AppendWriter::Open(io_.get(), path, 10, Options());
  EXPECT_THAT(w, StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(AppendWriterTest, ConcurrentSyncCallbacksAllRunInOrder) {
  auto w = OpenWriter(dir_.Sub("cs.log"), 0, Options(64 << 10));
  ASSERT_NE(w, nullptr);
  constexpr int kSyncs = 200;
  std::latch done(kSyncs);
  std::atomic<int> ok{0};
  std::vector<int> order;  // appended on the I/O thread only
  for (int i = 0; i < kSyncs; ++i) {
    w->Append(std::string(1000 + i, 'x'));
    FilePos target = w->size();
    w->Sync([&, i, target, wp = w.get()](absl::Status s) {
      if (s.ok() && wp->durable_pos() >= target) ok.fetch_add(1);
      order.push_back(i);
      done.count_down();
    });
  }
  done.wait();
  EXPECT_EQ(ok.load(), kSyncs);
  for (int i = 0; i < kSyncs; ++i) EXPECT_EQ(order[i], i);
  // Sharing: far fewer fsyncs than Sync calls.
  EXPECT_LT(io_->Stats().fsyncs_issued, static_cast<uint64_t>(kSyncs));
  RUNNEL_EXPECT_OK(w->Close());
}

TEST_P(AppendWriterTest, WritersOnManyThreadsShareOneIoThread) {
  constexpr int kWriters = 4, kSyncsEach = 50;
  std::vector<std::unique_ptr<AppendWriter>> writers;
  for (int i = 0; i < kWriters; ++i) {
    writers.push_back(OpenWriter(dir_.Sub(absl::StrCat("w", i, ".log")), 0, Options()));
    ASSERT_NE(writers.back(), nullptr);
  }
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < kWriters; ++i) {
    threads.emplace_back([&, i] {
      for (int j = 0; j < kSyncsEach; ++j) {
        writers[i]->Append(std::string(3000, 'a' + i));
        if (SyncAndWait(*writers[i]).ok()) ok.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kWriters * kSyncsEach);
  for (int i = 0; i < kWriters; ++i) {
    EXPECT_EQ(writers[i]->durable_pos(), 3000 * kSyncsEach);
    RUNNEL_EXPECT_OK(writers[i]->Close());
    EXPECT_EQ(ReadWholeFile(writers[i]->path()), std::string(3000 * kSyncsEach, 'a' + i));
  }
}

TEST_P(AppendWriterTest, WriteErrorIsStickyAndReportedToEveryCallback) {
  auto w = OpenWriter(dir_.Sub("e.log"), 0, Options(8192));
  ASSERT_NE(w, nullptr);
  w->Append("before");
  RUNNEL_ASSERT_OK(FlushAndWait(*w));
  // A stopped IoThread fails every write: the writer must report, not crash.
  RUNNEL_ASSERT_OK(io_->Stop());
  w->Append(std::string(100, 'x'));
  EXPECT_THAT(FlushAndWait(*w), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(w->status(), StatusIs(absl::StatusCode::kFailedPrecondition));
  // Later appends (even past a full buffer) keep positions, are dropped.
  FilePos pos = w->size();
  EXPECT_EQ(w->Append(std::string(20000, 'y')), pos);
  EXPECT_EQ(w->size(), pos + 20000);
  EXPECT_THAT(SyncAndWait(*w), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(w->written_pos(), 6);
  EXPECT_THAT(w->Close(), StatusIs(absl::StatusCode::kFailedPrecondition));
}

INSTANTIATE_TEST_SUITE_P(Modes, AppendWriterTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Direct" : "Buffered";
                         });

}  // namespace
}  // namespace runnel::log
