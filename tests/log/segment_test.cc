#include "log/segment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "log/io_thread.h"
#include "log/record_batch.h"
#include "tests/testing/scoped_temp_dir.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/wait_for.h"

namespace runnel::log {
namespace {

// A batch of `records` records with timestamp `ts`, offsets from `base`.
std::string MakeBatch(Offset base, int records, int64_t ts,
                      size_t value_bytes = 100) {
  RecordBatchBuilder builder({.base_offset = base});
  for (int i = 0; i < records; ++i) {
    builder.Append(ts, "k", std::string(value_bytes, 'a' + i % 26));
  }
  return builder.Build().value();
}

BatchInfo InfoOf(const std::string& batch) {
  RecordBatchView view = RecordBatchView::Parse(batch).value();
  BatchInfo info;
  info.base_offset = view.base_offset();
  info.last_offset = view.last_offset();
  info.max_timestamp = view.max_timestamp();
  info.size_bytes = static_cast<int64_t>(batch.size());
  return info;
}

class SegmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto io = IoThread::Start({});
    ASSERT_THAT(io, testing::IsOk());
    io_ = std::move(io).value();
    options_.io = io_.get();
    options_.index_interval_bytes = 1000;
    options_.index_bytes = 1 << 16;
  }

  // Appends `n` batches of 3 records (~400 bytes each) from `base`.
  std::vector<std::string> AppendBatches(Segment& segment, Offset base, int n,
                                         int64_t ts = 1000) {
    std::vector<std::string> batches;
    for (int i = 0; i < n; ++i) {
      std::string batch = MakeBatch(base + 3 * i, 3, ts + i);
      segment.Append(batch, InfoOf(batch), ts);
      batches.push_back(batch);
    }
    return batches;
  }

  std::unique_ptr<IoThread> io_;
  SegmentOptions options_;
  testing::ScopedTempDir dir_;
};

TEST(SegmentFileNameTest, NamesAreTwentyDigitBaseOffsets) {
  EXPECT_EQ(SegmentFileStem(42), "00000000000000000042");
  EXPECT_EQ(SegmentFilePath("/d", 7, kTimeIndexFileSuffix),
            "/d/00000000000000000007.timeindex");
  Offset base = 0;
  EXPECT_TRUE(ParseSegmentFileName("00000000000000001234.log", ".log", &base));
  EXPECT_EQ(base, 1234);
  EXPECT_FALSE(ParseSegmentFileName("0000000000000001234.log", ".log", &base));
  EXPECT_FALSE(
      ParseSegmentFileName("00000000000000001234.index", ".log", &base));
  EXPECT_FALSE(ParseSegmentFileName("0000000000000000123x.log", ".log", &base));
}

TEST_F(SegmentTest, AppendedBatchesReadBackByteForByte) {
  auto segment = Segment::Create(dir_.path(), 100, options_).value();
  std::vector<std::string> batches = AppendBatches(*segment, 100, 5);
  RUNNEL_ASSERT_OK(segment->CloseWriter());
  std::string all;
  for (const std::string& b : batches) all += b;
  EXPECT_EQ(segment->size(), static_cast<FilePos>(all.size()));
  EXPECT_EQ(segment->next_offset(), 115);
  auto read = segment->Read(0, all.size());
  ASSERT_THAT(read, testing::IsOk());
  EXPECT_EQ(*read, all);
}

// Whether the page at `pos` of `path` is in the page cache.
bool PageResident(const std::string& path, FilePos pos) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const long page = ::sysconf(_SC_PAGESIZE);
  const FilePos at = pos / page * page;
  void* map = ::mmap(nullptr, page, PROT_READ, MAP_SHARED, fd, at);
  ::close(fd);
  if (map == MAP_FAILED) return false;
  unsigned char vec = 0;
  const bool ok = ::mincore(map, page, &vec) == 0;
  ::munmap(map, page);
  return ok && (vec & 1) != 0;
}

TEST_F(SegmentTest, SequentialReadsReadAheadIntoThePageCache) {
  auto segment = Segment::Create(dir_.path(), 0, options_).value();
  Offset next = 0;
  while (segment->size() < (FilePos{12} << 20)) {
    std::string batch = MakeBatch(next, 100, 1000, 1000);
    segment->Append(batch, InfoOf(batch), 1000);
    next += 100;
  }
  RUNNEL_ASSERT_OK(segment->CloseWriter());
  const std::string path = segment->log_path();
  const FilePos probe = FilePos{8} << 20;  // far past the kernel's own 128 KiB
  {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::fdatasync(fd), 0);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
  if (PageResident(path, probe)) {
    GTEST_SKIP() << "this filesystem keeps the file in memory";
  }
  auto head = segment->Read(0, 64 << 10);
  ASSERT_THAT(head, testing::IsOk());
  // Asynchronous: the kernel reads the window in the background.
  EXPECT_TRUE(runnel::testing::WaitFor(
      [&] { return PageResident(path, probe); }, std::chrono::seconds(20)));
  auto again = segment->Read(probe, 4096);
  ASSERT_THAT(again, testing::IsOk());
  EXPECT_EQ(again->size(), 4096u);
}

TEST_F(SegmentTest, FindBatchReturnsTheBatchContainingTheOffset) {
  auto segment = Segment::Create(dir_.path(), 0, options_).value();
  std::vector<std::string> batches = AppendBatches(*segment, 0, 10);
  RUNNEL_ASSERT_OK(segment->CloseWriter());
  FilePos expected = 0;
  for (int i = 0; i < 10; ++i) {
    for (int r = 0; r < 3; ++r) {
      auto found = segment->FindBatch(3 * i + r, segment->size());
      ASSERT_THAT(found, testing::IsOk());
      EXPECT_EQ(*found, expected) << "offset " << 3 * i + r;
    }
    expected += static_cast<FilePos>(batches[i].size());
  }
  EXPECT_EQ(*segment->FindBatch(30, segment->size()), segment->size());
}

TEST_F(SegmentTest, IndexGetsAnEntryAfterEachIntervalOfBytes) {
  auto segment = Segment::Create(dir_.path(), 0, options_).value();
  std::vector<std::string> batches = AppendBatches(*segment, 0, 10);
  const int64_t batch_size = static_cast<int64_t>(batches[0].size());
  ASSERT_GT(batch_size, 300);
  ASSERT_LT(batch_size, 500);
  // Kafka: a batch is indexed when more than interval bytes were appended
  // since the last entry; the entry is (batch last offset, batch position).
  std::vector<OffsetPosition> expected;
  int64_t since = 0;
  for (int i = 0; i < 10; ++i) {
    if (since > options_.index_interval_bytes) {
      expected.push_back({3 * i + 2, i * batch_size});
      since = 0;
    }
    since += batch_size;
  }
  const OffsetIndex& index = segment->offset_index();
  ASSERT_EQ(index.entries(), static_cast<int64_t>(expected.size()));
  ASSERT_GE(index.entries(), 2);
  for (int64_t i = 0; i < index.entries(); ++i) {
    EXPECT_EQ(index.Entry(i), expected[i]);
  }
  EXPECT_EQ(segment->time_index().entries(), index.entries());
}

TEST_F(SegmentTest, CloseWriterTrimsIndexesAndAddsFinalTimeEntry) {
  auto segment = Segment::Create(dir_.path(), 0, options_).value();
  AppendBatches(*segment, 0, 2, 5000);  // below the index interval
  EXPECT_EQ(segment->time_index().entries(), 0);
  RUNNEL_ASSERT_OK(segment->CloseWriter());
  EXPECT_FALSE(segment->active());
  EXPECT_EQ(segment->time_index().entries(), 1);
  EXPECT_EQ(segment->time_index().LastEntry(), (TimestampOffset{5001, 5}));
  EXPECT_EQ(segment->offset_index().max_entries(), 0);
  auto reopened = Segment::OpenClosed(dir_.path(), 0, options_).value();
  EXPECT_EQ(reopened->max_timestamp(), 5001);
}

TEST_F(SegmentTest, RecoverRebuildsTheSameIndexes) {
  auto segment = Segment::Create(dir_.path(), 0, options_).value();
  AppendBatches(*segment, 0, 12);
  RUNNEL_ASSERT_OK(segment->CloseWriter());
  std::vector<OffsetPosition> entries;
  for (int64_t i = 0; i < segment->offset_index().entries(); ++i) {
    entries.push_back(segment->offset_index().Entry(i));
  }
  segment.reset();
  auto reopened = Segment::OpenClosed(dir_.path(), 0, options_).value();
  auto recovery = reopened->Recover(1 << 20, -1, nullptr);
  ASSERT_THAT(recovery, testing::IsOk());
  EXPECT_FALSE(recovery->truncated);
  EXPECT_EQ(recovery->next_offset, 36);
  ASSERT_EQ(reopened->offset_index().entries(),
            static_cast<int64_t>(entries.size()));
  for (size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ(reopened->offset_index().Entry(i), entries[i]);
  }
}

TEST_F(SegmentTest, TruncateToCutsLogAndIndexes) {
  auto segment = Segment::Create(dir_.path(), 0, options_).value();
  std::vector<std::string> batches = AppendBatches(*segment, 0, 10);
  std::promise<absl::Status> written;
  segment->Flush([&](absl::Status s) { written.set_value(s); });
  RUNNEL_ASSERT_OK(written.get_future().get());
  FilePos cut = *segment->FindBatch(15, segment->size());
  EXPECT_EQ(cut, static_cast<FilePos>(5 * batches[0].size()));
  RUNNEL_ASSERT_OK(segment->TruncateTo(cut, 15));
  EXPECT_EQ(segment->size(), cut);
  EXPECT_EQ(segment->next_offset(), 15);
  EXPECT_TRUE(segment->active());
  EXPECT_LT(segment->offset_index().LastEntry().offset, 15);
  // Appending continues at the cut.
  std::string batch = MakeBatch(15, 3, 9000);
  EXPECT_EQ(segment->Append(batch, InfoOf(batch), 0), cut);
  RUNNEL_ASSERT_OK(segment->CloseWriter());
  EXPECT_EQ(*segment->Read(cut, batch.size()), batch);
}

}  // namespace
}  // namespace runnel::log
