#include "client/produce_encoding.h"

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

#include "tests/testing/byte_buffers.h"
#include "tests/testing/wait_for.h"

namespace runnel::client {
namespace {

using ::runnel::testing::Flatten;

// A request of `topics` topics with up to 3 partitions of up to 3 batches
// each, of sizes around the varint length boundaries (and empty ones), with
// defaults (partition 0, no name, acks and timeout 0) that protobuf omits.
ProduceRequestParts RandomRequest(std::mt19937& rng, int topics) {
  ProduceRequestParts r;
  r.acks = static_cast<v1::Acks>(rng() % 4);
  r.timeout_ms = rng() % 3 == 0 ? 0 : static_cast<int32_t>(rng() % 100000);
  for (int t = 0; t < topics; ++t) {
    ProduceTopicParts& topic = r.topics.emplace_back();
    if (rng() % 5 != 0) topic.name = "topic-" + std::to_string(t);
    const int partitions = static_cast<int>(rng() % 4);
    for (int p = 0; p < partitions; ++p) {
      ProducePartitionParts& part = topic.partitions.emplace_back();
      part.partition = static_cast<int32_t>(rng() % 3);
      const int batches = static_cast<int>(rng() % 4);
      for (int b = 0; b < batches; ++b) {
        static constexpr size_t kSizes[] = {0, 1, 61, 127, 128, 16384, 70000};
        std::string bytes(kSizes[rng() % 7], '\0');
        for (char& c : bytes) c = static_cast<char>(rng());
        part.batches.push_back(
            std::make_shared<const std::string>(std::move(bytes)));
      }
    }
  }
  return r;
}

TEST(ProduceEncodingTest, BytesEqualProtobufSerialization) {
  std::mt19937 rng(testing::TestSeed());
  for (int round = 0; round < 300; ++round) {
    const ProduceRequestParts request = RandomRequest(rng, round % 4);
    const uint64_t id = round % 5 == 0 ? 0 : rng() * uint64_t{1000003};
    const std::string expected =
        ProduceStreamRequestMessage(id, request).SerializeAsString();
    ASSERT_EQ(Flatten(SerializeProduceStreamRequest(id, request)), expected)
        << "round " << round;
  }
}

TEST(ProduceEncodingTest, TheBatchesAreReferencedNotCopied) {
  auto batch = std::make_shared<const std::string>(100000, 'b');
  ProduceRequestParts request;
  request.topics.push_back({"t", {{7, {batch}}}});
  grpc::ByteBuffer buffer = SerializeProduceStreamRequest(1, request);
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(buffer.Dump(&slices).ok());
  bool referenced = false;
  for (const grpc::Slice& s : slices) {
    referenced =
        referenced || reinterpret_cast<const char*>(s.begin()) == batch->data();
  }
  EXPECT_TRUE(referenced);
  // The slices keep the bytes alive on their own.
  const std::string expected = Flatten(buffer);
  batch.reset();
  request.topics.clear();
  EXPECT_EQ(Flatten(buffer), expected);
}

}  // namespace
}  // namespace runnel::client
