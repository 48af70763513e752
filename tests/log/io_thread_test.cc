#include "log/io_thread.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <latch>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "common/unique_fd.h"
#include "tests/testing/scoped_temp_dir.h"
#include "tests/testing/status_matchers.h"

namespace runnel::log {
namespace {

using ::runnel::testing::IsOk;
using ::runnel::testing::StatusIs;

IoThreadOptions WithRingEntries(unsigned entries) {
  IoThreadOptions options;
  options.ring_entries = entries;
  return options;
}

class IoThreadTest : public ::testing::Test {
 protected:
  std::unique_ptr<IoThread> StartIo(IoThreadOptions options = {}) {
    auto io = IoThread::Start(std::move(options));
    EXPECT_THAT(io, IsOk());
    return io.ok() ? std::move(io).value() : nullptr;
  }

  UniqueFd OpenRw(const std::string& name) {
    UniqueFd fd(
        ::open(dir_.Sub(name).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    EXPECT_TRUE(fd.valid());
    return fd;
  }

  runnel::testing::ScopedTempDir dir_;
};

TEST_F(IoThreadTest, WriteAndReadRoundTripAtPositions) {
  auto io = StartIo();
  ASSERT_NE(io, nullptr);
  UniqueFd fd = OpenRw("f");
  std::string a = "hello", b(10000, 'x');
  RUNNEL_ASSERT_OK(io->WriteSync(fd.get(), a.data(), a.size(), 0));
  RUNNEL_ASSERT_OK(io->WriteSync(fd.get(), b.data(), b.size(), 4096));

  std::string got(a.size(), '\0');
  auto n = io->ReadSync(fd.get(), got.data(), got.size(), 0);
  ASSERT_THAT(n, IsOk());
  EXPECT_EQ(*n, a.size());
  EXPECT_EQ(got, a);
  std::string got_b(b.size(), '\0');
  n = io->ReadSync(fd.get(), got_b.data(), got_b.size(), 4096);
  ASSERT_THAT(n, IsOk());
  EXPECT_EQ(*n, b.size());
  EXPECT_EQ(got_b, b);
  // The gap between the two writes reads back as zeros.
  char gap[16];
  n = io->ReadSync(fd.get(), gap, sizeof(gap), 100);
  ASSERT_THAT(n, IsOk());
  EXPECT_EQ(std::string(gap, sizeof(gap)), std::string(sizeof(gap), '\0'));

  IoThreadStats stats = io->Stats();
  EXPECT_EQ(stats.write_requests, 2u);
  EXPECT_EQ(stats.bytes_written, a.size() + b.size());
  EXPECT_EQ(stats.read_requests, 3u);
  RUNNEL_EXPECT_OK(io->Stop());
}

TEST_F(IoThreadTest, ReadPastEndOfFileReturnsFewerBytes) {
  auto io = StartIo();
  ASSERT_NE(io, nullptr);
  UniqueFd fd = OpenRw("f");
  std::string data(1000, 'q');
  RUNNEL_ASSERT_OK(io->WriteSync(fd.get(), data.data(), data.size(), 0));
  std::string buf(4096, '\0');
  auto n = io->ReadSync(fd.get(), buf.data(), buf.size(), 900);
  ASSERT_THAT(n, IsOk());
  EXPECT_EQ(*n, 100u);
  n = io->ReadSync(fd.get(), buf.data(), buf.size(), 5000);
  ASSERT_THAT(n, IsOk());
  EXPECT_EQ(*n, 0u);
}

TEST_F(IoThreadTest, WriteToReadOnlyFdReturnsErrorNotCrash) {
  auto io = StartIo();
  ASSERT_NE(io, nullptr);
  { UniqueFd create = OpenRw("ro"); }
  UniqueFd fd(::open(dir_.Sub("ro").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  std::string data = "nope";
  absl::Status status = io->WriteSync(fd.get(), data.data(), data.size(), 0);
  // EBADF maps to kFailedPrecondition; the message names fd and position.
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("pos=0"));
  // The thread keeps working after an error.
  UniqueFd rw = OpenRw("rw");
  RUNNEL_EXPECT_OK(io->WriteSync(rw.get(), data.data(), data.size(), 0));
}

TEST_F(IoThreadTest, FsyncRequestsWhileOneIsInFlightJoinOneFollowUp) {
  constexpr int kJoiners = 7;
  IoThread* io_ptr = nullptr;
  int fd_for_hook = -1;
  std::atomic<int> joined_ok{0};
  std::latch all_done(kJoiners + 1);
  bool first = true;
  IoThreadOptions options;
  // Runs on the I/O thread while the first fsync still counts as in flight:
  // every request made here must wait for (and share) one follow-up fsync.
  options.on_fsync_reaped_for_test = [&](int fd) {
    if (!first) return;
    first = false;
    for (int i = 0; i < kJoiners; ++i) {
      io_ptr->Fsync(fd_for_hook, [&](absl::Status s) {
        if (s.ok()) joined_ok.fetch_add(1);
        all_done.count_down();
      });
    }
  };
  auto io = StartIo(std::move(options));
  ASSERT_NE(io, nullptr);
  io_ptr = io.get();
  UniqueFd fd = OpenRw("f");
  fd_for_hook = fd.get();
  std::string data(8192, 'd');
  RUNNEL_ASSERT_OK(io->WriteSync(fd.get(), data.data(), data.size(), 0));

  absl::Status first_status = absl::UnknownError("not run");
  io->Fsync(fd.get(), [&](absl::Status s) {
    first_status = s;
    all_done.count_down();
  });
  all_done.wait();
  RUNNEL_EXPECT_OK(first_status);
  EXPECT_EQ(joined_ok.load(), kJoiners);
  IoThreadStats stats = io->Stats();
  EXPECT_EQ(stats.fsync_requests, static_cast<uint64_t>(kJoiners + 1));
  EXPECT_EQ(stats.fsyncs_issued, 2u);  // the first one + ONE follow-up
  uint64_t histogram_total = 0;
  for (uint64_t c : stats.fsync_latency_buckets) histogram_total += c;
  EXPECT_EQ(histogram_total, 2u);
  EXPECT_EQ(io->RecentFsyncLatenciesUs().size(), 2u);
}

TEST_F(IoThreadTest, FsyncsPendingTogetherShareSubmitAndPerFdFsync) {
  auto io = StartIo();
  ASSERT_NE(io, nullptr);
  std::vector<UniqueFd> fds;
  for (int i = 0; i < 3; ++i) fds.push_back(OpenRw("f" + std::to_string(i)));
  std::latch done(3 * 4);
  std::atomic<int> ok{0};
  // A completed write means the thread has submitted everything it had
  // (including its eventfd read) and now sleeps: the counters are quiet.
  RUNNEL_ASSERT_OK(io->WriteSync(fds[0].get(), "w", 1, 0));
  IoThreadStats before = io->Stats();
  // A posted closure runs on the I/O thread: all twelve requests are pending
  // at the same moment, before anything is submitted.
  io->Post([&] {
    for (auto& fd : fds) {
      for (int j = 0; j < 4; ++j) {
        io->Fsync(fd.get(), [&](absl::Status s) {
          if (s.ok()) ok.fetch_add(1);
          done.count_down();
        });
      }
    }
  });
  done.wait();
  IoThreadStats after = io->Stats();
  EXPECT_EQ(ok.load(), 12);
  EXPECT_EQ(after.fsync_requests - before.fsync_requests, 12u);
  EXPECT_EQ(after.fsyncs_issued - before.fsyncs_issued, 3u);  // one per fd
  // All three fsyncs went to the kernel in one io_uring_submit. (The
  // eventfd re-arm after the Post may go in a submit of its own.)
  EXPECT_EQ(after.fsync_submits - before.fsync_submits, 1u);
}

// SubmitPrepared hands an fsync to the kernel in the middle of a callback; a
// request for the same fd made after it joins the follow-up fsync.
TEST_F(IoThreadTest, SubmitPreparedSubmitsAtOnceAndLaterFsyncsFollowUp) {
  auto io = StartIo();
  ASSERT_NE(io, nullptr);
  UniqueFd fd = OpenRw("f");
  RUNNEL_ASSERT_OK(io->WriteSync(fd.get(), "w", 1, 0));
  const IoThreadStats before = io->Stats();
  IoThreadStats in_callback;
  std::latch done(2);
  std::atomic<int> ok{0};
  auto count = [&](absl::Status s) {
    if (s.ok()) ok.fetch_add(1);
    done.count_down();
  };
  io->Post([&] {
    io->Fsync(fd.get(), count);
    io->SubmitPrepared();
    in_callback = io->Stats();
    io->Fsync(fd.get(), count);
  });
  done.wait();
  EXPECT_EQ(ok.load(), 2);
  EXPECT_EQ(in_callback.fsyncs_issued - before.fsyncs_issued, 1u);
  EXPECT_EQ(in_callback.fsync_submits - before.fsync_submits, 1u);
  // The second request came after the first fsync was in the kernel.
  EXPECT_EQ(io->Stats().fsyncs_issued - before.fsyncs_issued, 2u);
}

TEST_F(IoThreadTest, StopDrainsQueuedAndInFlightRequests) {
  auto io = StartIo(WithRingEntries(8));
  ASSERT_NE(io, nullptr);
  UniqueFd fd = OpenRw("f");
  constexpr int kWrites = 200;
  std::vector<std::string> chunks;
  for (int i = 0; i < kWrites; ++i)
    chunks.push_back(std::string(100, 'a' + i % 26));
  std::atomic<int> ok{0};
  for (int i = 0; i < kWrites; ++i) {
    io->Write(fd.get(), chunks[i].data(), chunks[i].size(), i * 100,
              [&](absl::Status s) { ok.fetch_add(s.ok() ? 1 : 0); });
  }
  std::atomic<bool> fsynced{false};
  io->Fsync(fd.get(), [&](absl::Status s) { fsynced = s.ok(); });
  RUNNEL_ASSERT_OK(io->Stop());
  EXPECT_EQ(ok.load(), kWrites);
  EXPECT_TRUE(fsynced.load());
  RUNNEL_EXPECT_OK(io->Stop());  // idempotent

  std::string expected;
  for (auto& c : chunks) expected += c;
  std::string got(expected.size(), '\0');
  ASSERT_EQ(::pread(fd.get(), got.data(), got.size(), 0),
            static_cast<ssize_t>(got.size()));
  EXPECT_EQ(got, expected);

  // After Stop, requests fail at once on the calling thread.
  absl::Status late;
  io->Write(fd.get(), "x", 1, 0, [&](absl::Status s) { late = s; });
  EXPECT_THAT(late, StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(IoThreadTest, RequestsFromManyThreadsAllComplete) {
  auto io = StartIo(WithRingEntries(16));
  ASSERT_NE(io, nullptr);
  constexpr int kThreads = 4, kPerThread = 300;
  std::vector<UniqueFd> fds;
  for (int t = 0; t < kThreads; ++t)
    fds.push_back(OpenRw("t" + std::to_string(t)));
  std::latch done(kThreads * kPerThread);
  std::atomic<int> ok{0};
  std::string block(64, 'z');
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto cb = [&](absl::Status s) {
          ok.fetch_add(s.ok() ? 1 : 0);
          done.count_down();
        };
        if (i % 10 == 9) {
          io->Fsync(fds[t].get(), cb);
        } else {
          io->Write(fds[t].get(), block.data(), block.size(), i * 64, cb);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  done.wait();
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
  IoThreadStats stats = io->Stats();
  EXPECT_EQ(stats.fsync_requests,
            static_cast<uint64_t>(kThreads * kPerThread / 10));
  EXPECT_LE(stats.fsyncs_issued, stats.fsync_requests);
}

TEST_F(IoThreadTest, SqpollRingServesRequestsWhenAvailable) {
  IoThreadOptions options;
  options.sqpoll = true;
  auto io = IoThread::Start(std::move(options));
  if (!io.ok()) {
    GTEST_SKIP() << "SQPOLL not permitted here: " << io.status();
  }
  UniqueFd fd = OpenRw("sq");
  std::string data(5000, 'p');
  RUNNEL_ASSERT_OK((*io)->WriteSync(fd.get(), data.data(), data.size(), 0));
  RUNNEL_ASSERT_OK((*io)->FsyncSync(fd.get()));
  std::string got(data.size(), '\0');
  auto n = (*io)->ReadSync(fd.get(), got.data(), got.size(), 0);
  ASSERT_THAT(n, IsOk());
  EXPECT_EQ(got, data);
  RUNNEL_EXPECT_OK((*io)->Stop());
}

// Nice value of thread `tid` of this process (field 19 of its stat line).
int ThreadNice(const std::string& tid) {
  std::ifstream in("/proc/self/task/" + tid + "/stat");
  std::string line;
  std::getline(in, line);
  // The command name may hold spaces: count fields after its ')'.
  std::istringstream fields(line.substr(line.rfind(')') + 2));
  std::string field;
  for (int i = 3; i <= 19; ++i) fields >> field;
  return std::stoi(field);
}

// The I/O thread takes the nice value asked for, and so do the io_uring
// workers that run its fsyncs. (A positive value: no privilege needed.)
TEST_F(IoThreadTest, NiceAppliesToTheThreadAndItsIoUringWorkers) {
  const int base = ::getpriority(PRIO_PROCESS, 0);
  const int want = std::min(base + 5, 19);
  IoThreadOptions options;
  options.name = "nice-io";
  options.nice = want;
  auto io = StartIo(options);
  ASSERT_NE(io, nullptr);
  UniqueFd fd = OpenRw("nice");
  RUNNEL_ASSERT_OK(io->WriteSync(fd.get(), "x", 1, 0));
  // fdatasync always runs on an io_uring worker, which exists from now on
  // (idle workers linger for seconds).
  RUNNEL_ASSERT_OK(io->FsyncSync(fd.get()));
  int io_threads = 0;
  int workers = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/self/task")) {
    const std::string tid = entry.path().filename();
    std::ifstream comm(entry.path() / "comm");
    std::string name;
    std::getline(comm, name);
    if (name == "nice-io") {
      ++io_threads;
      EXPECT_EQ(ThreadNice(tid), want) << name;
    } else if (name.starts_with("iou-wrk-") && ThreadNice(tid) != base) {
      // Workers of other rings (other tests' threads) keep the base value.
      EXPECT_EQ(ThreadNice(tid), want) << name;
      ++workers;
    }
  }
  EXPECT_EQ(io_threads, 1);
  EXPECT_GE(workers, 1);
  RUNNEL_EXPECT_OK(io->Stop());
}

// A write from a registered buffer (IORING_OP_WRITE_FIXED), also from the
// middle of it, lands like any other; the table's slots are reused.
TEST_F(IoThreadTest, WritesFromRegisteredBuffersRoundTrip) {
  IoThreadOptions options;
  options.fixed_buffer_slots = 2;
  auto io = StartIo(options);
  ASSERT_NE(io, nullptr);
  const std::shared_ptr<FixedBufferTable>& table = io->fixed_buffers();
  if (table == nullptr) GTEST_SKIP() << "no registered buffers on this kernel";
  EXPECT_EQ(table->slots(), 2u);
  constexpr size_t kSize = 64 << 10;
  char* buffer = static_cast<char*>(std::aligned_alloc(4096, kSize));
  ASSERT_NE(buffer, nullptr);
  for (size_t i = 0; i < kSize; ++i) buffer[i] = static_cast<char>(i * 7);
  const int slot = table->Register(buffer, kSize);
  ASSERT_GE(slot, 0);
  EXPECT_EQ(table->used(), 1u);

  UniqueFd fd = OpenRw("fixed");
  const IoThreadStats before = io->Stats();
  absl::Notification whole, middle;
  absl::Status whole_status, middle_status;
  io->Write(
      fd.get(), buffer, kSize, 0,
      [&](absl::Status s) {
        whole_status = s;
        whole.Notify();
      },
      slot);
  whole.WaitForNotification();
  io->Write(
      fd.get(), buffer + 4096, 8192, kSize,
      [&](absl::Status s) {
        middle_status = s;
        middle.Notify();
      },
      slot);
  middle.WaitForNotification();
  RUNNEL_ASSERT_OK(whole_status);
  RUNNEL_ASSERT_OK(middle_status);
  EXPECT_EQ(io->Stats().fixed_write_sqes - before.fixed_write_sqes, 2u);

  std::string got(kSize + 8192, '\0');
  auto n = io->ReadSync(fd.get(), got.data(), got.size(), 0);
  ASSERT_THAT(n, IsOk());
  ASSERT_EQ(*n, got.size());
  EXPECT_EQ(got.substr(0, kSize), std::string(buffer, kSize));
  EXPECT_EQ(got.substr(kSize), std::string(buffer + 4096, 8192));

  // Two slots: the third buffer finds none until one is released.
  char* other = static_cast<char*>(std::aligned_alloc(4096, 4096));
  const int second = table->Register(other, 4096);
  EXPECT_GE(second, 0);
  EXPECT_EQ(table->Register(other, 4096), -1);
  table->Release(slot);
  EXPECT_EQ(table->used(), 1u);
  const int again = table->Register(buffer, kSize);
  EXPECT_EQ(again, slot);
  table->Release(again);
  table->Release(second);
  EXPECT_EQ(table->used(), 0u);
  RUNNEL_EXPECT_OK(io->Stop());
  std::free(other);
  std::free(buffer);
}

TEST_F(IoThreadTest, EmptyWriteSucceeds) {
  auto io = StartIo();
  ASSERT_NE(io, nullptr);
  UniqueFd fd = OpenRw("empty");
  RUNNEL_EXPECT_OK(io->WriteSync(fd.get(), "", 0, 0));
}

}  // namespace
}  // namespace runnel::log
