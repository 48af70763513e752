#include "broker/fetch_encoding.h"

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

#include "tests/testing/byte_buffers.h"
#include "tests/testing/wait_for.h"

namespace runnel::broker {
namespace {

using ::runnel::testing::Flatten;

// A response with `topics` topics of up to 4 partitions each: errors,
// empty and non-empty records of sizes around the varint length boundaries.
v1::FetchResponse RandomResponse(std::mt19937& rng, int topics) {
  v1::FetchResponse r;
  for (int t = 0; t < topics; ++t) {
    v1::TopicFetchResponse* topic = r.add_topics();
    if (rng() % 5 != 0) topic->set_name("topic-" + std::to_string(t));
    const int partitions = static_cast<int>(rng() % 5);
    for (int p = 0; p < partitions; ++p) {
      v1::PartitionFetchResponse* part = topic->add_partitions();
      part->set_partition(static_cast<int>(rng() % 3));
      if (rng() % 4 == 0) {
        part->mutable_error()->set_code(v1::OFFSET_OUT_OF_RANGE);
        part->mutable_error()->set_message("out of range");
      }
      if (rng() % 3 != 0) part->set_high_watermark(rng() % 100000);
      part->set_log_start_offset(rng() % 10);
      part->set_log_end_offset(rng() % 100000);
      static constexpr size_t kSizes[] = {0, 1, 127, 128, 16383, 16384, 70000};
      const size_t size = kSizes[rng() % 7];
      std::string records(size, '\0');
      for (char& c : records) c = static_cast<char>(rng());
      part->set_records(std::move(records));
    }
  }
  if (rng() % 2 == 0) r.set_throttle_time_ms(static_cast<int>(rng() % 1000));
  return r;
}

TEST(FetchEncodingTest, BytesEqualProtobufSerialization) {
  std::mt19937 rng(testing::TestSeed());
  for (int round = 0; round < 200; ++round) {
    v1::FetchResponse response = RandomResponse(rng, round % 4);
    const std::string expected = response.SerializeAsString();
    grpc::ByteBuffer buffer = SerializeFetchResponse(&response);
    const std::string got = Flatten(buffer);
    ASSERT_EQ(got, expected) << "round " << round;
    v1::FetchResponse parsed;
    ASSERT_TRUE(parsed.ParseFromString(got));
    EXPECT_EQ(parsed.SerializeAsString(), expected);
  }
}

TEST(FetchEncodingTest, RecordsAreSentFromTheirOwnBufferWithoutACopy) {
  v1::FetchResponse response;
  v1::PartitionFetchResponse* p = response.add_topics()->add_partitions();
  p->set_records(std::string(1 << 20, 'x'));
  const char* records = p->records().data();
  grpc::ByteBuffer buffer = SerializeFetchResponse(&response);
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(buffer.Dump(&slices).ok());
  bool found = false;
  for (const grpc::Slice& s : slices) {
    if (reinterpret_cast<const char*>(s.begin()) == records) {
      found = true;
      EXPECT_EQ(s.size(), size_t{1} << 20);
    }
  }
  EXPECT_TRUE(found);
  EXPECT_TRUE(response.topics(0).partitions(0).records().empty());
}

TEST(FetchEncodingTest, ParsesRequestsAndRejectsGarbage) {
  v1::FetchRequest request;
  request.set_max_wait_ms(500);
  request.add_topics()->set_name("t");
  const std::string bytes = request.SerializeAsString();
  grpc::Slice slice(bytes);
  grpc::ByteBuffer buffer(&slice, 1);
  v1::FetchRequest parsed;
  ASSERT_TRUE(ParseFetchRequest(buffer, &parsed));
  EXPECT_EQ(parsed.max_wait_ms(), 500);
  ASSERT_EQ(parsed.topics_size(), 1);
  EXPECT_EQ(parsed.topics(0).name(), "t");

  const std::string garbage = "\xff\xff\xff\xff";
  grpc::Slice bad(garbage);
  grpc::ByteBuffer bad_buffer(&bad, 1);
  EXPECT_FALSE(ParseFetchRequest(bad_buffer, &parsed));
}

}  // namespace
}  // namespace runnel::broker
