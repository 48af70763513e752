#include "log/time_index.h"

#include <sys/stat.h>

#include <fstream>
#include <iterator>
#include <string>

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

class TimeIndexTest : public ::testing::Test {
 protected:
  std::unique_ptr<TimeIndex> OpenIndex(int64_t max_bytes = 1 << 20) {
    auto index = TimeIndex::Open(path_, kBase, max_bytes);
    EXPECT_THAT(index, testing::IsOk());
    return std::move(index).value();
  }
  // (1000 ms, base+10), (2000, base+20), (3000, base+30).
  std::unique_ptr<TimeIndex> ThreeEntries() {
    auto index = OpenIndex();
    index->MaybeAppend(1000, kBase + 10);
    index->MaybeAppend(2000, kBase + 20);
    index->MaybeAppend(3000, kBase + 30);
    return index;
  }

  static constexpr Offset kBase = 500;
  testing::ScopedTempDir dir_;
  std::string path_ = dir_.Sub("00000000000000000500.timeindex");
};

TEST_F(TimeIndexTest, LookupAtExactEntriesReturnsThem) {
  auto index = ThreeEntries();
  EXPECT_EQ(index->Lookup(1000), (TimestampOffset{1000, kBase + 10}));
  EXPECT_EQ(index->Lookup(3000), (TimestampOffset{3000, kBase + 30}));
}

TEST_F(TimeIndexTest, LookupBetweenEntriesReturnsTheLowerOne) {
  auto index = ThreeEntries();
  EXPECT_EQ(index->Lookup(2999), (TimestampOffset{2000, kBase + 20}));
}

TEST_F(TimeIndexTest, LookupBeforeFirstEntryReturnsNoTimestampAndBase) {
  auto index = ThreeEntries();
  EXPECT_EQ(index->Lookup(999), (TimestampOffset{kNoTimestamp, kBase}));
}

TEST_F(TimeIndexTest, LookupAfterLastEntryReturnsTheLast) {
  auto index = ThreeEntries();
  EXPECT_EQ(index->Lookup(1'000'000), (TimestampOffset{3000, kBase + 30}));
}

TEST_F(TimeIndexTest, OnlyGrowingTimestampsAreAdded) {
  auto index = ThreeEntries();
  index->MaybeAppend(3000, kBase + 31);
  index->MaybeAppend(2500, kBase + 32);
  EXPECT_EQ(index->entries(), 3);
  index->MaybeAppend(3001, kBase + 33);
  EXPECT_EQ(index->entries(), 4);
}

TEST_F(TimeIndexTest, FullKeepsOneSlotForTheFinalEntry) {
  auto index = OpenIndex(3 * kTimeIndexEntrySize);
  index->MaybeAppend(1, kBase + 1);
  EXPECT_FALSE(index->is_full());
  index->MaybeAppend(2, kBase + 2);
  EXPECT_TRUE(index->is_full());
  index->MaybeAppend(3, kBase + 3, /*skip_full_check=*/true);
  EXPECT_EQ(index->entries(), 3);
}

TEST_F(TimeIndexTest, EntriesAreBigEndianTimestampAndRelativeOffset) {
  auto index = OpenIndex(64);
  index->MaybeAppend(0x0102030405, kBase + 7);
  RUNNEL_ASSERT_OK(index->Trim());
  std::ifstream in(path_, std::ios::binary);
  std::string bytes(std::istreambuf_iterator<char>(in), {});
  EXPECT_EQ(bytes, std::string("\x00\x00\x00\x01\x02\x03\x04\x05"
                               "\x00\x00\x00\x07",
                               12));
}

TEST_F(TimeIndexTest, TrimAndReopenKeepEntries) {
  auto index = ThreeEntries();
  RUNNEL_ASSERT_OK(index->Trim());
  EXPECT_EQ(FileSize(path_), 3 * kTimeIndexEntrySize);
  index.reset();
  index = OpenIndex();
  EXPECT_EQ(index->entries(), 3);
  EXPECT_EQ(index->LastEntry(), (TimestampOffset{3000, kBase + 30}));
}

TEST_F(TimeIndexTest, ReopenOfUntrimmedFileFindsEntriesBeforeZeroFill) {
  ThreeEntries();
  auto index = OpenIndex();
  EXPECT_EQ(index->entries(), 3);
  EXPECT_EQ(index->Lookup(2500), (TimestampOffset{2000, kBase + 20}));
}

TEST_F(TimeIndexTest, TruncateToDropsEntriesAtAndAfterOffset) {
  auto index = ThreeEntries();
  index->TruncateTo(kBase + 20);
  EXPECT_EQ(index->entries(), 1);
  EXPECT_EQ(index->LastEntry(), (TimestampOffset{1000, kBase + 10}));
}

}  // namespace
}  // namespace runnel::log
