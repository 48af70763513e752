#include "log/offset_index.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/scoped_temp_dir.h"
#include "tests/testing/status_matchers.h"

namespace runnel::log {
namespace {

int64_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class OffsetIndexTest : public ::testing::Test {
 protected:
  std::unique_ptr<OffsetIndex> OpenIndex(int64_t max_bytes = 1 << 20) {
    auto index = OffsetIndex::Open(path_, kBase, max_bytes);
    EXPECT_THAT(index, testing::IsOk());
    return std::move(index).value();
  }
  // Entries (base+10, 100), (base+20, 200), (base+30, 300).
  std::unique_ptr<OffsetIndex> ThreeEntries() {
    auto index = OpenIndex();
    index->Append(kBase + 10, 100);
    index->Append(kBase + 20, 200);
    index->Append(kBase + 30, 300);
    return index;
  }

  static constexpr Offset kBase = 1000;
  testing::ScopedTempDir dir_;
  std::string path_ = dir_.Sub("00000000000000001000.index");
};

// Pages of the file at `path` in the page cache (mincore over a mapping of
// its first `bytes`).
int64_t ResidentPages(const std::string& path, int64_t bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0);
  void* p =
      mmap(nullptr, static_cast<size_t>(bytes), PROT_READ, MAP_SHARED, fd, 0);
  EXPECT_NE(p, MAP_FAILED);
  const int64_t page = sysconf(_SC_PAGESIZE);
  std::vector<unsigned char> flags(
      static_cast<size_t>((bytes + page - 1) / page));
  EXPECT_EQ(mincore(p, static_cast<size_t>(bytes), flags.data()), 0);
  munmap(p, static_cast<size_t>(bytes));
  ::close(fd);
  int64_t resident = 0;
  for (unsigned char f : flags) resident += f & 1;
  return resident;
}

// The first store into a preallocated index must not read ahead megabytes
// of zeros into the page cache (MADV_RANDOM, docs/log-format.md ".index").
TEST_F(OffsetIndexTest, FirstEntriesOfAPreallocatedIndexFaultInOnlyTheirPages) {
  constexpr int64_t kTenMiB = 10 << 20;
  auto index = OpenIndex(kTenMiB);
  ASSERT_EQ(ResidentPages(path_, kTenMiB), 0);
  for (int i = 1; i <= 600; ++i) index->Append(kBase + i, i * 4096);
  // 600 entries: 4800 bytes, two pages. Read-ahead made it 2048.
  EXPECT_LE(ResidentPages(path_, kTenMiB), 16);
  EXPECT_EQ(index->Lookup(kBase + 300),
            (OffsetPosition{kBase + 300, 300 * 4096}));
}

TEST_F(OffsetIndexTest, LookupAtExactEntriesReturnsThem) {
  auto index = ThreeEntries();
  EXPECT_EQ(index->entries(), 3);
  EXPECT_EQ(index->Lookup(kBase + 10), (OffsetPosition{kBase + 10, 100}));
  EXPECT_EQ(index->Lookup(kBase + 20), (OffsetPosition{kBase + 20, 200}));
  EXPECT_EQ(index->Lookup(kBase + 30), (OffsetPosition{kBase + 30, 300}));
}

TEST_F(OffsetIndexTest, LookupBetweenEntriesReturnsTheLowerOne) {
  auto index = ThreeEntries();
  EXPECT_EQ(index->Lookup(kBase + 11), (OffsetPosition{kBase + 10, 100}));
  EXPECT_EQ(index->Lookup(kBase + 29), (OffsetPosition{kBase + 20, 200}));
}

TEST_F(OffsetIndexTest, LookupBeforeFirstEntryReturnsSegmentStart) {
  auto index = ThreeEntries();
  EXPECT_EQ(index->Lookup(kBase + 9), (OffsetPosition{kBase, 0}));
  EXPECT_EQ(index->Lookup(kBase), (OffsetPosition{kBase, 0}));
  EXPECT_EQ(OpenIndex()->Lookup(kBase + 5), (OffsetPosition{kBase, 0}));
}

TEST_F(OffsetIndexTest, LookupAfterLastEntryReturnsTheLast) {
  auto index = ThreeEntries();
  EXPECT_EQ(index->Lookup(kBase + 1'000'000),
            (OffsetPosition{kBase + 30, 300}));
}

TEST_F(OffsetIndexTest, IndexIsFullAtItsPreallocatedSize) {
  auto index = OpenIndex(3 * kOffsetIndexEntrySize + 5);  // rounds down
  EXPECT_EQ(index->max_entries(), 3);
  EXPECT_FALSE(index->is_full());
  index->Append(kBase + 1, 10);
  index->Append(kBase + 2, 20);
  EXPECT_FALSE(index->is_full());
  index->Append(kBase + 3, 30);
  EXPECT_TRUE(index->is_full());
  EXPECT_EQ(FileSize(path_), 3 * kOffsetIndexEntrySize);
}

TEST_F(OffsetIndexTest, EntriesAreBigEndianRelativeOffsetAndPosition) {
  auto index = OpenIndex(64);
  index->Append(kBase + 0x0102, 0x0A0B0C);
  RUNNEL_ASSERT_OK(index->Trim());
  EXPECT_EQ(ReadAll(path_), std::string("\x00\x00\x01\x02\x00\x0A\x0B\x0C", 8));
}

TEST_F(OffsetIndexTest, TrimCutsTheFileToTheEntries) {
  auto index = ThreeEntries();
  EXPECT_EQ(FileSize(path_), 1 << 20);
  RUNNEL_ASSERT_OK(index->Trim());
  EXPECT_EQ(FileSize(path_), 3 * kOffsetIndexEntrySize);
  EXPECT_EQ(index->Lookup(kBase + 25), (OffsetPosition{kBase + 20, 200}));
}

TEST_F(OffsetIndexTest, ReopenOfTrimmedFileKeepsEntries) {
  RUNNEL_ASSERT_OK(ThreeEntries()->Trim());
  auto index = OpenIndex();
  EXPECT_EQ(index->entries(), 3);
  EXPECT_EQ(index->opened_file_bytes(), 3 * kOffsetIndexEntrySize);
  EXPECT_EQ(index->LastEntry(), (OffsetPosition{kBase + 30, 300}));
  index->Append(kBase + 40, 400);
  EXPECT_EQ(index->entries(), 4);
}

TEST_F(OffsetIndexTest, ReopenOfUntrimmedFileFindsEntriesBeforeZeroFill) {
  ThreeEntries();  // destroyed without Trim: crash-like
  auto index = OpenIndex();
  EXPECT_EQ(index->entries(), 3);
  EXPECT_EQ(index->Lookup(kBase + 35), (OffsetPosition{kBase + 30, 300}));
}

TEST_F(OffsetIndexTest, ReopenStopsAtFirstEntryThatDoesNotIncrease) {
  {
    auto index = ThreeEntries();
    index->TruncateTo(kBase + 20);  // keeps (10, 100)
  }
  auto index = OpenIndex();
  EXPECT_EQ(index->entries(), 1);
}

TEST_F(OffsetIndexTest, TruncateToDropsEntriesAtAndAfterOffset) {
  auto index = ThreeEntries();
  index->TruncateTo(kBase + 21);
  EXPECT_EQ(index->entries(), 2);
  index->TruncateTo(kBase + 20);
  EXPECT_EQ(index->entries(), 1);
  EXPECT_EQ(index->LastEntry(), (OffsetPosition{kBase + 10, 100}));
  index->Append(kBase + 15, 150);
  EXPECT_EQ(index->Lookup(kBase + 16), (OffsetPosition{kBase + 15, 150}));
  index->Reset();
  EXPECT_EQ(index->entries(), 0);
}

TEST_F(OffsetIndexTest, ResizeAfterTrimAllowsAppendsAgain) {
  auto index = ThreeEntries();
  RUNNEL_ASSERT_OK(index->Trim());
  EXPECT_TRUE(index->is_full());
  RUNNEL_ASSERT_OK(index->Resize(1 << 10));
  EXPECT_FALSE(index->is_full());
  index->Append(kBase + 40, 400);
  EXPECT_EQ(index->entries(), 4);
}

}  // namespace
}  // namespace runnel::log
