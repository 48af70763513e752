#include "log/leader_epoch_cache.h"

#include <fstream>
#include <iterator>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/scoped_temp_dir.h"
#include "tests/testing/status_matchers.h"

namespace runnel::log {
namespace {

using ::runnel::testing::StatusIs;
using ::testing::ElementsAre;

class LeaderEpochCacheTest : public ::testing::Test {
 protected:
  std::unique_ptr<LeaderEpochCache> Open() {
    auto cache = LeaderEpochCache::Open(path_);
    EXPECT_THAT(cache, testing::IsOk());
    return std::move(cache).value();
  }
  std::string FileText() {
    std::ifstream in(path_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  testing::ScopedTempDir dir_;
  std::string path_ = dir_.Sub(kLeaderEpochCheckpointFile);
};

TEST_F(LeaderEpochCacheTest, AssignWritesKafkaCheckpointFormat) {
  auto cache = Open();
  RUNNEL_ASSERT_OK(cache->Assign(0, 0));
  RUNNEL_ASSERT_OK(cache->Assign(0, 5));  // same epoch: ignored
  RUNNEL_ASSERT_OK(cache->Assign(3, 10));
  EXPECT_THAT(cache->entries(),
              ElementsAre(EpochEntry{0, 0}, EpochEntry{3, 10}));
  EXPECT_EQ(FileText(), "0\n2\n0 0\n3 10\n");
  EXPECT_EQ(cache->latest_epoch(), 3);
}

TEST_F(LeaderEpochCacheTest, EndOffsetForFollowsKip101) {
  auto cache = Open();
  EXPECT_EQ(cache->EndOffsetFor(1, 100), (EpochEndOffset{-1, -1}));
  RUNNEL_ASSERT_OK(cache->Assign(2, 10));
  RUNNEL_ASSERT_OK(cache->Assign(4, 20));
  RUNNEL_ASSERT_OK(cache->Assign(7, 50));
  EXPECT_EQ(cache->EndOffsetFor(7, 100), (EpochEndOffset{7, 100}));  // latest
  EXPECT_EQ(cache->EndOffsetFor(4, 100), (EpochEndOffset{4, 50}));
  EXPECT_EQ(cache->EndOffsetFor(5, 100), (EpochEndOffset{4, 50}));  // gap
  EXPECT_EQ(cache->EndOffsetFor(2, 100), (EpochEndOffset{2, 20}));
  EXPECT_EQ(cache->EndOffsetFor(1, 100), (EpochEndOffset{1, 10}));  // below all
  EXPECT_EQ(cache->EndOffsetFor(8, 100),
            (EpochEndOffset{-1, -1}));  // above all
}

TEST_F(LeaderEpochCacheTest, AssignRemovesConflictingEntries) {
  auto cache = Open();
  RUNNEL_ASSERT_OK(cache->Assign(1, 0));
  RUNNEL_ASSERT_OK(cache->Assign(2, 10));
  RUNNEL_ASSERT_OK(cache->Assign(3, 5));  // starts below epoch 2's start
  EXPECT_THAT(cache->entries(),
              ElementsAre(EpochEntry{1, 0}, EpochEntry{3, 5}));
}

TEST_F(LeaderEpochCacheTest, TruncateFromEndDropsEpochsStartingAtOrAfter) {
  auto cache = Open();
  RUNNEL_ASSERT_OK(cache->Assign(1, 0));
  RUNNEL_ASSERT_OK(cache->Assign(2, 10));
  RUNNEL_ASSERT_OK(cache->Assign(3, 20));
  RUNNEL_ASSERT_OK(cache->TruncateFromEnd(10));
  EXPECT_THAT(cache->entries(), ElementsAre(EpochEntry{1, 0}));
  EXPECT_EQ(FileText(), "0\n1\n1 0\n");
}

TEST_F(LeaderEpochCacheTest, TruncateFromStartMovesTheCoveringEpochUp) {
  auto cache = Open();
  RUNNEL_ASSERT_OK(cache->Assign(1, 0));
  RUNNEL_ASSERT_OK(cache->Assign(2, 10));
  RUNNEL_ASSERT_OK(cache->Assign(3, 20));
  RUNNEL_ASSERT_OK(cache->TruncateFromStart(15));
  EXPECT_THAT(cache->entries(),
              ElementsAre(EpochEntry{2, 15}, EpochEntry{3, 20}));
  RUNNEL_ASSERT_OK(cache->TruncateFromStart(20));
  EXPECT_THAT(cache->entries(), ElementsAre(EpochEntry{3, 20}));
}

TEST_F(LeaderEpochCacheTest, ReloadGivesTheSameEntries) {
  {
    auto cache = Open();
    RUNNEL_ASSERT_OK(cache->Assign(1, 0));
    RUNNEL_ASSERT_OK(cache->Assign(5, 42));
  }
  auto cache = Open();
  EXPECT_THAT(cache->entries(),
              ElementsAre(EpochEntry{1, 0}, EpochEntry{5, 42}));
  EXPECT_EQ(cache->EndOffsetFor(1, 99), (EpochEndOffset{1, 42}));
}

TEST_F(LeaderEpochCacheTest, MalformedCheckpointIsDataLoss) {
  {
    std::ofstream out(path_);
    out << "0\n2\n1 0\n";
  }
  EXPECT_THAT(LeaderEpochCache::Open(path_),
              StatusIs(absl::StatusCode::kDataLoss));
  {
    std::ofstream out(path_);
    out << "1\n0\n";
  }
  EXPECT_THAT(LeaderEpochCache::Open(path_),
              StatusIs(absl::StatusCode::kDataLoss));
}

}  // namespace
}  // namespace runnel::log
