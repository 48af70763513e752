#include "broker/local_metadata_store.h"

#include <fstream>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/scoped_temp_dir.h"
#include "tests/testing/status_matchers.h"

namespace runnel::broker {
namespace {

using ::runnel::testing::IsOk;
using ::runnel::testing::StatusIs;

class LocalMetadataStoreTest : public ::testing::Test {
 protected:
  runnel::testing::ScopedTempDir dir_;
};

TEST_F(LocalMetadataStoreTest, TopicsSurviveReopen) {
  std::string cluster_id;
  {
    auto store = LocalMetadataStore::Open(dir_.path());
    ASSERT_THAT(store, IsOk());
    cluster_id = (*store)->cluster_id();
    RUNNEL_ASSERT_OK(
        (*store)->CreateTopic({.name = "b",
                               .num_partitions = 3,
                               .configs = {{"retention.ms", "5"}}}));
    RUNNEL_ASSERT_OK((*store)->CreateTopic({.name = "a", .num_partitions = 1}));
    TopicRecord updated{.name = "b", .num_partitions = 4};
    RUNNEL_ASSERT_OK((*store)->UpdateTopic(updated));
    EXPECT_THAT((*store)->CreateTopic({.name = "a", .num_partitions = 1}),
                StatusIs(absl::StatusCode::kAlreadyExists));
  }
  auto store = LocalMetadataStore::Open(dir_.path());
  ASSERT_THAT(store, IsOk());
  EXPECT_EQ((*store)->cluster_id(), cluster_id);
  auto topics = (*store)->ListTopics();
  ASSERT_THAT(topics, IsOk());
  ASSERT_EQ(topics->size(), 2u);
  EXPECT_EQ((*topics)[0].name, "a");
  EXPECT_EQ((*topics)[1].name, "b");
  EXPECT_EQ((*topics)[1].num_partitions, 4);
  EXPECT_TRUE((*topics)[1].configs.empty());
  RUNNEL_ASSERT_OK((*store)->DeleteTopic("a"));
  EXPECT_THAT((*store)->DeleteTopic("a"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(LocalMetadataStoreTest, ProducerIdsNeverRepeatAcrossReopen) {
  std::set<int64_t> seen;
  for (int round = 0; round < 3; ++round) {
    auto store = LocalMetadataStore::Open(dir_.path());
    ASSERT_THAT(store, IsOk());
    auto first = (*store)->AllocateProducerIds(10);
    ASSERT_THAT(first, IsOk());
    for (int64_t id = *first; id < *first + 10; ++id) {
      EXPECT_TRUE(seen.insert(id).second) << id;
    }
  }
}

TEST_F(LocalMetadataStoreTest, FlippedByteIsDataLoss) {
  {
    auto store = LocalMetadataStore::Open(dir_.path());
    ASSERT_THAT(store, IsOk());
    RUNNEL_ASSERT_OK((*store)->CreateTopic({.name = "t", .num_partitions = 2}));
  }
  const std::string path = dir_.Sub(kTopicMetadataFileName);
  std::string text;
  {
    std::ifstream in(path);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  size_t at = text.find("topic t 2");
  ASSERT_NE(at, std::string::npos);
  text[at + 8] = '3';
  std::ofstream(path, std::ios::trunc) << text;
  EXPECT_THAT(LocalMetadataStore::Open(dir_.path()),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST_F(LocalMetadataStoreTest, FormatAndParseRoundTrip) {
  MetadataFileContents contents;
  contents.cluster_id = "abc";
  contents.next_producer_id = 42;
  contents.topics.push_back({.name = "x.y_z-1",
                             .num_partitions = 7,
                             .replication_factor = 1,
                             .configs = {{"segment.ms", "10"}},
                             .created_ms = 123});
  auto parsed = ParseMetadataFile(FormatMetadataFile(contents), "mem");
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->cluster_id, "abc");
  EXPECT_EQ(parsed->next_producer_id, 42);
  ASSERT_EQ(parsed->topics.size(), 1u);
  EXPECT_EQ(parsed->topics[0], contents.topics[0]);
  EXPECT_THAT(ParseMetadataFile("", "mem"),
              StatusIs(absl::StatusCode::kDataLoss));
}

}  // namespace
}  // namespace runnel::broker
