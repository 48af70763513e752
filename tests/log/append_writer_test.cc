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

#include "log/huge_page_buffers.h"
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
    return AppendWriterOptions{.direct_io = GetParam(),
                               .buffer_bytes = buffer_bytes};
  }

  std::unique_ptr<AppendWriter> OpenWriter(const std::string& path,
                                           FilePos start,
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
    EXPECT_EQ(got.substr(expected.size()),
              std::string(got.size() - expected.size(), '\0'));
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
    writers.push_back(
        OpenWriter(dir_.Sub(absl::StrCat("w", i, ".log")), 0, Options()));
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
    EXPECT_EQ(ReadWholeFile(writers[i]->path()),
              std::string(3000 * kSyncsEach, 'a' + i));
  }
}

// O_DIRECT writes go out of registered buffers (no page pinning per write);
// buffered ones do not use them.
TEST_P(AppendWriterTest, DirectWritesUseRegisteredBuffers) {
  if (io_->fixed_buffers() == nullptr) {
    GTEST_SKIP() << "no registered buffers on this kernel";
  }
  std::string path = dir_.Sub("fixed.log");
  auto w = OpenWriter(path, 0, Options(64 << 10));
  ASSERT_NE(w, nullptr);
  const IoThreadStats before = io_->Stats();
  std::mt19937_64 rng(11);
  std::string data = RandomBytes(rng, 300 << 10);
  w->Append(data);
  RUNNEL_ASSERT_OK(SyncAndWait(*w));
  const IoThreadStats after = io_->Stats();
  const uint64_t writes = after.write_sqes - before.write_sqes;
  const uint64_t fixed = after.fixed_write_sqes - before.fixed_write_sqes;
  EXPECT_GE(writes, 4u);
  EXPECT_EQ(fixed, GetParam() ? writes : 0u);
  RUNNEL_ASSERT_OK(w->Close());
  EXPECT_EQ(ReadWholeFile(path), data);
  w.reset();
  // Every buffer gave its slot back.
  EXPECT_EQ(io_->fixed_buffers()->used(), 0u);
}

// O_DIRECT buffers come from huge pages (one contiguous piece of memory per
// write) and go back when the writer is gone; buffered ones do not use them.
TEST_P(AppendWriterTest, DirectBuffersComeFromHugePagesAndGoBack) {
  const size_t before = HugePageBuffers::Global().Stats().mapped_bytes;
  std::string path = dir_.Sub("huge.log");
  auto w = OpenWriter(path, 0, Options(1 << 20));
  ASSERT_NE(w, nullptr);
  std::mt19937_64 rng(12);
  std::string data = RandomBytes(rng, 3 << 20);
  w->Append(data);
  RUNNEL_ASSERT_OK(SyncAndWait(*w));
  const size_t during = HugePageBuffers::Global().Stats().mapped_bytes;
  if (GetParam()) {
    EXPECT_GE(during, before + kHugePageBytes);
  } else {
    EXPECT_EQ(during, before);
  }
  RUNNEL_ASSERT_OK(w->Close());
  EXPECT_EQ(ReadWholeFile(path), data);
  w.reset();
  EXPECT_EQ(HugePageBuffers::Global().Stats().mapped_bytes, before);
}

// A write that a completion issues is handed to the kernel before that
// completion's callbacks run (in the broker they answer produce requests).
TEST_P(AppendWriterTest, NextWriteIsSubmittedBeforeTheCallbacksRun) {
  std::string path = dir_.Sub("next.log");
  auto w = OpenWriter(path, 0, Options(64 << 10));
  ASSERT_NE(w, nullptr);
  // Holds the I/O thread (a test only may block it) until both flushes are
  // made, so the second batch is waiting when the first write completes.
  std::latch release(1);
  io_->Post([&] { release.wait(); });
  const IoThreadStats before = io_->Stats();
  w->Append(std::string(10000, 'a'));
  uint64_t writes_seen_by_callback = 0;
  absl::Notification first;
  w->Flush([&](absl::Status s) {
    RUNNEL_EXPECT_OK(s);
    writes_seen_by_callback = io_->Stats().write_sqes - before.write_sqes;
    first.Notify();
  });
  w->Append(std::string(10000, 'b'));
  absl::Status second_status = absl::UnknownError("not run");
  absl::Notification second;
  w->Flush([&](absl::Status s) {
    second_status = s;
    second.Notify();
  });
  release.count_down();
  first.WaitForNotification();
  second.WaitForNotification();
  RUNNEL_EXPECT_OK(second_status);
  EXPECT_EQ(writes_seen_by_callback, 2u);  // the first write and the next
  RUNNEL_ASSERT_OK(w->Close());
  EXPECT_EQ(ReadWholeFile(path),
            std::string(10000, 'a') + std::string(10000, 'b'));
}

TEST_P(AppendWriterTest, WriteErrorIsStickyAndReportedToEveryCallback) {
  auto w = OpenWriter(dir_.Sub("e.log"), 0, Options(8192));
  ASSERT_NE(w, nullptr);
  w->Append("before");
  RUNNEL_ASSERT_OK(FlushAndWait(*w));
  // A stopped IoThread fails every write: the writer must report, not crash.
  RUNNEL_ASSERT_OK(io_->Stop());
  w->Append(std::string(100, 'x'));
  EXPECT_THAT(FlushAndWait(*w),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(w->status(), StatusIs(absl::StatusCode::kFailedPrecondition));
  // Later appends (even past a full buffer) keep positions, are dropped.
  FilePos pos = w->size();
  EXPECT_EQ(w->Append(std::string(20000, 'y')), pos);
  EXPECT_EQ(w->size(), pos + 20000);
  EXPECT_THAT(SyncAndWait(*w), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(w->written_pos(), 6);
  EXPECT_THAT(w->Close(), StatusIs(absl::StatusCode::kFailedPrecondition));
}

// --- tail cache (ReadCached) ---

// Bytes of a normal-fd view of the file at [pos, pos + n).
std::string PreadRange(const std::string& path, FilePos pos, size_t n) {
  std::string out(n, '\0');
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0);
  ssize_t got = ::pread(fd, out.data(), n, pos);
  ::close(fd);
  out.resize(got < 0 ? 0 : static_cast<size_t>(got));
  return out;
}

// Byte at file position p in the pattern tests write.
char PatternByte(FilePos p) {
  return static_cast<char>((p * 131 + p / 4099) & 0xff);
}

std::string Pattern(FilePos pos, size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i)
    s[i] = PatternByte(pos + static_cast<FilePos>(i));
  return s;
}

TEST_P(AppendWriterTest, ReadCachedServesUnwrittenBytesWithoutAnyWrite) {
  std::string path = dir_.Sub("tail.log");
  auto w = OpenWriter(path, 0, Options(64 << 10));
  ASSERT_NE(w, nullptr);
  const uint64_t writes_before = io_->Stats().write_requests;
  std::string data = Pattern(0, 10000);
  w->Append(data);
  std::string got;
  ASSERT_TRUE(w->ReadCached(0, data.size(), &got));
  EXPECT_EQ(got, data);
  ASSERT_TRUE(w->ReadCached(4000, 5000, &got));
  EXPECT_EQ(got, data.substr(4000, 5000));
  EXPECT_EQ(w->written_pos(), 0);  // nothing was written to serve it
  EXPECT_EQ(io_->Stats().write_requests, writes_before);
  // Past the logical end: not served.
  EXPECT_FALSE(w->ReadCached(9000, 1001, &got));
  RUNNEL_ASSERT_OK(w->Close());
}

TEST_P(AppendWriterTest, CachedBytesEqualTheFileAcrossPartialBlockRewrites) {
  std::mt19937_64 rng(runnel::testing::TestSeed());
  SCOPED_TRACE(absl::StrCat("seed=", runnel::testing::TestSeed()));
  std::string path = dir_.Sub("rewrite.log");
  AppendWriterOptions options = Options(8192);
  options.tail_cache_bytes = 1 << 20;  // everything stays cached
  auto w = OpenWriter(path, 0, options);
  ASSERT_NE(w, nullptr);
  FilePos size = 0;
  for (int i = 0; i < 200; ++i) {
    size_t n =
        1 + rng() % 3000;  // rarely block-aligned: the last block is rewritten
    w->Append(Pattern(size, n));
    size += static_cast<FilePos>(n);
    RUNNEL_ASSERT_OK(FlushAndWait(*w));
    ASSERT_EQ(w->written_pos(), size);
    FilePos from = static_cast<FilePos>(rng() % static_cast<uint64_t>(size));
    size_t len = static_cast<size_t>(size - from);
    std::string cached;
    ASSERT_TRUE(w->ReadCached(from, len, &cached))
        << "at " << from << " size " << size << " cached from "
        << w->cached_start();
    EXPECT_EQ(cached, PreadRange(path, from, len)) << "at " << from;
    EXPECT_EQ(cached, Pattern(from, len));
  }
  std::string all;
  ASSERT_TRUE(w->ReadCached(0, static_cast<size_t>(size), &all));
  RUNNEL_ASSERT_OK(w->Close());
  EXPECT_EQ(all, ReadWholeFile(path));
}

TEST_P(AppendWriterTest, EvictedBytesAreNotCachedButStayInTheFile) {
  std::string path = dir_.Sub("evict.log");
  AppendWriterOptions options = Options(8192);
  options.tail_cache_bytes = 8192;  // one completed buffer
  auto w = OpenWriter(path, 0, options);
  ASSERT_NE(w, nullptr);
  const FilePos total = 100000;
  for (FilePos pos = 0; pos < total; pos += 1000) {
    w->Append(Pattern(pos, 1000));
    if (pos % 5000 == 0) {
      RUNNEL_ASSERT_OK(FlushAndWait(*w));
    }
  }
  RUNNEL_ASSERT_OK(FlushAndWait(*w));
  std::string got;
  EXPECT_FALSE(w->ReadCached(0, 100, &got));
  EXPECT_GT(w->cached_start(), 0);
  // At most the budget plus the two append buffers stay.
  EXPECT_GE(w->cached_start(), total - 3 * 8192);
  ASSERT_TRUE(w->ReadCached(total - 100, 100, &got));
  EXPECT_EQ(got, Pattern(total - 100, 100));
  // A range that starts before the cache is refused whole.
  EXPECT_FALSE(w->ReadCached(w->cached_start() - 1, 10, &got));
  EXPECT_EQ(PreadRange(path, 0, 100), Pattern(0, 100));
  RUNNEL_ASSERT_OK(w->Close());
}

TEST_P(AppendWriterTest,
       SmallFlushedWritesAreCoalescedSoTheCacheHoldsItsBudget) {
  std::string path = dir_.Sub("small-writes.log");
  AppendWriterOptions options = Options(64 << 10);
  options.tail_cache_bytes = 256 << 10;  // 4 buffers
  auto w = OpenWriter(path, 0, options);
  ASSERT_NE(w, nullptr);
  // One write per 100-byte append (like one fsync per produce request):
  // without coalescing, 4 cached buffers would hold only 4 writes.
  const FilePos total = 1000 * 100;
  for (FilePos pos = 0; pos < total; pos += 100) {
    w->Append(Pattern(pos, 100));
    RUNNEL_ASSERT_OK(FlushAndWait(*w));
  }
  std::string got;
  ASSERT_TRUE(w->ReadCached(0, static_cast<size_t>(total), &got));
  EXPECT_EQ(got, Pattern(0, static_cast<size_t>(total)));
  RUNNEL_ASSERT_OK(w->Close());
  EXPECT_EQ(ReadWholeFile(path), got);
}

TEST_P(AppendWriterTest,
       ConcurrentReadCachedDuringAppendsReturnsAppendedBytes) {
  std::string path = dir_.Sub("race.log");
  AppendWriterOptions options = Options(16 << 10);
  options.tail_cache_bytes = 32 << 10;
  auto w = OpenWriter(path, 0, options);
  ASSERT_NE(w, nullptr);
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::atomic<int64_t> hits{0};
  auto reader = [&](uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::string got;
    while (!done.load()) {
      FilePos size = w->size();
      if (size == 0) continue;
      size_t len =
          1 + rng() % std::min<uint64_t>(static_cast<uint64_t>(size), 40000);
      FilePos from = size - static_cast<FilePos>(len) -
                     static_cast<FilePos>(rng() % 20000);
      if (from < 0) from = 0;
      if (w->ReadCached(from, len, &got)) {
        ++hits;
        if (got != Pattern(from, len)) ++bad;
      }
    }
  };
  std::thread r1(reader, 1);
  std::thread r2(reader, 2);
  std::mt19937_64 rng(runnel::testing::TestSeed());
  FilePos size = 0;
  for (int i = 0; i < 3000; ++i) {
    size_t n = 1 + rng() % 700;
    w->Append(Pattern(size, n));
    size += static_cast<FilePos>(n);
    if (i % 64 == 0) w->Flush([](absl::Status s) { EXPECT_THAT(s, IsOk()); });
  }
  done = true;
  r1.join();
  r2.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(hits.load(), 0);
  RUNNEL_ASSERT_OK(w->Close());
  EXPECT_EQ(ReadWholeFile(path), Pattern(0, static_cast<size_t>(size)));
}

INSTANTIATE_TEST_SUITE_P(Modes, AppendWriterTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Direct" : "Buffered";
                         });

}  // namespace
}  // namespace runnel::log
