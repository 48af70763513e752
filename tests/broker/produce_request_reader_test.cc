#include "broker/produce_request_reader.h"

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

#include "tests/testing/byte_buffers.h"
#include "tests/testing/wait_for.h"

namespace runnel::broker {
namespace {

// `bytes` as a ByteBuffer of slices cut at random places (gRPC's HTTP/2
// frames inside its reads), sometimes with empty slices between.
grpc::ByteBuffer CutIntoSlices(const std::string& bytes, std::mt19937& rng) {
  std::vector<grpc::Slice> slices;
  for (size_t pos = 0; pos < bytes.size();) {
    const size_t n = std::min<size_t>(bytes.size() - pos, 1 + rng() % 300);
    slices.emplace_back(bytes.data() + pos, n);
    if (rng() % 7 == 0) slices.emplace_back();
    pos += n;
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

// A length-delimited field: tag (field number `field`, wire type 2), length,
// bytes. Short fields only (one-byte tag and length).
std::string Field(int field, const std::string& bytes) {
  EXPECT_LT(bytes.size(), 128u);
  return std::string{static_cast<char>(field << 3 | 2),
                     static_cast<char>(bytes.size())} +
         bytes;
}

v1::ProduceStreamRequest RandomRequest(std::mt19937& rng) {
  v1::ProduceStreamRequest m;
  if (rng() % 4 != 0) m.set_correlation_id(rng() * uint64_t{rng()});
  if (rng() % 6 == 0) return m;  // no request at all
  v1::ProduceRequest* r = m.mutable_request();
  r->set_acks(static_cast<v1::Acks>(rng() % 4));
  if (rng() % 3 != 0) r->set_timeout_ms(static_cast<int32_t>(rng()) % 60000);
  const int topics = static_cast<int>(rng() % 4);
  for (int t = 0; t < topics; ++t) {
    v1::TopicProduceData* topic = r->add_topics();
    if (rng() % 5 != 0) topic->set_name("topic." + std::to_string(rng() % 9));
    const int partitions = static_cast<int>(rng() % 4);
    for (int p = 0; p < partitions; ++p) {
      v1::PartitionProduceData* part = topic->add_partitions();
      // Negative partitions take ten-byte varints.
      part->set_partition(static_cast<int32_t>(rng() % 5) - 1);
      static constexpr size_t kSizes[] = {0, 1, 127, 128, 1000, 16384, 70000};
      std::string records(kSizes[rng() % 7], '\0');
      for (char& c : records) c = static_cast<char>(rng());
      part->set_records(std::move(records));
    }
  }
  return m;
}

// What ReadProduceStream gives, joined back into one message.
std::string Joined(ReadProduceStreamRequest read) {
  size_t i = 0;
  if (read.message.has_request()) {
    for (v1::TopicProduceData& t :
         *read.message.mutable_request()->mutable_topics()) {
      for (v1::PartitionProduceData& p : *t.mutable_partitions()) {
        EXPECT_TRUE(p.records().empty());
        EXPECT_LT(i, read.records.size());
        if (i >= read.records.size()) break;
        p.set_records(std::move(read.records[i++]).TakeString());
      }
    }
  }
  EXPECT_EQ(i, read.records.size());
  return read.message.SerializeAsString();
}

TEST(ProduceRequestReaderTest, ReadsWhatProtobufParsesCutAnyWay) {
  std::mt19937 rng(testing::TestSeed());
  for (int round = 0; round < 300; ++round) {
    const v1::ProduceStreamRequest m = RandomRequest(rng);
    const std::string bytes = m.SerializeAsString();
    absl::StatusOr<ReadProduceStreamRequest> read =
        ReadProduceStream(CutIntoSlices(bytes, rng));
    ASSERT_TRUE(read.ok()) << read.status();
    ASSERT_EQ(Joined(std::move(*read)), bytes) << "round " << round;
  }
}

TEST(ProduceRequestReaderTest, RecordsViewTheReceivedSlices) {
  v1::ProduceStreamRequest m;
  v1::PartitionProduceData* p =
      m.mutable_request()->add_topics()->add_partitions();
  p->set_records(std::string(100000, 'r'));
  std::mt19937 rng(7);
  absl::StatusOr<ReadProduceStreamRequest> read =
      ReadProduceStream(CutIntoSlices(m.SerializeAsString(), rng));
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->records.size(), 1u);
  EXPECT_FALSE(read->records[0].is_string());  // pieces, not a joined copy
  EXPECT_EQ(read->records[0].size(), 100000u);
}

TEST(ProduceRequestReaderTest, RepeatedFieldsMergeAsProtobufMerges) {
  // Two messages back to back: the second `request` field merges into the
  // first (topics appended), the second correlation id wins.
  v1::ProduceStreamRequest a;
  a.set_correlation_id(1);
  a.mutable_request()->add_topics()->add_partitions()->set_records("first");
  v1::ProduceStreamRequest b;
  b.set_correlation_id(2);
  b.mutable_request()->set_timeout_ms(5);
  b.mutable_request()->add_topics()->set_name("t");
  const std::string both = a.SerializeAsString() + b.SerializeAsString();
  v1::ProduceStreamRequest expected;
  ASSERT_TRUE(expected.ParseFromString(both));
  ASSERT_EQ(expected.correlation_id(), 2u);
  ASSERT_EQ(expected.request().topics_size(), 2);
  std::mt19937 rng(3);
  absl::StatusOr<ReadProduceStreamRequest> read =
      ReadProduceStream(CutIntoSlices(both, rng));
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(Joined(std::move(*read)), expected.SerializeAsString());

  // Of two `records` fields in one partition the last one wins.
  v1::PartitionProduceData first;
  first.set_partition(3);
  first.set_records("first");
  v1::PartitionProduceData second;
  second.set_records("second");
  const std::string twice =
      first.SerializeAsString() + second.SerializeAsString();
  // Wrapped by hand, so that both fields reach the reader: partitions = 2
  // of a topic, topics = 3 of a request, request = 2 of the stream message.
  const std::string raw = Field(2, Field(3, Field(2, twice)));
  v1::ProduceStreamRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(raw));
  ASSERT_EQ(parsed.request().topics(0).partitions(0).records(), "second");
  read = ReadProduceStream(CutIntoSlices(raw, rng));
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->records.size(), 1u);
  EXPECT_FALSE(read->records[0].is_string());
  EXPECT_EQ(read->message.request().topics(0).partitions(0).partition(), 3);
  EXPECT_EQ(std::move(read->records[0]).TakeString(), "second");
}

TEST(ProduceRequestReaderTest, AnyByteChangedGivesProtobufsVerdict) {
  // Unknown fields, other wire types, bad lengths, non-ASCII names: the
  // reader either reads it as protobuf would or hands it to protobuf.
  std::mt19937 rng(testing::TestSeed() + 1);
  for (int round = 0; round < 60; ++round) {
    v1::ProduceStreamRequest m = RandomRequest(rng);
    const std::string good = m.SerializeAsString();
    if (good.empty()) continue;
    for (int change = 0; change < 40; ++change) {
      std::string bad = good;
      const size_t pos = rng() % std::min<size_t>(bad.size(), 200);
      bad[pos] = static_cast<char>(rng());
      if (rng() % 4 == 0) bad.resize(rng() % bad.size());
      v1::ProduceStreamRequest parsed;
      const bool ok = parsed.ParseFromString(bad);
      absl::StatusOr<ReadProduceStreamRequest> read =
          ReadProduceStream(CutIntoSlices(bad, rng));
      ASSERT_EQ(read.ok(), ok) << "round " << round << " change " << change;
      if (!ok) {
        EXPECT_EQ(read.status().code(), absl::StatusCode::kInvalidArgument);
        continue;
      }
      ASSERT_EQ(Joined(std::move(*read)), parsed.SerializeAsString());
    }
  }
}

TEST(ProduceRequestReaderTest, UnknownFieldsAndNonAsciiNamesGoThroughProtobuf) {
  v1::ProduceStreamRequest m;
  v1::TopicProduceData* t = m.mutable_request()->add_topics();
  t->set_name("t\xc3\xa9");  // valid UTF-8, not ASCII
  t->add_partitions()->set_records("abc");
  std::string bytes = m.SerializeAsString();
  bytes += std::string("\xa8\x1f\x05", 3);  // field 501, varint 5: unknown
  std::mt19937 rng(9);
  absl::StatusOr<ReadProduceStreamRequest> read =
      ReadProduceStream(CutIntoSlices(bytes, rng));
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->message.request().topics(0).name(), "t\xc3\xa9");
  ASSERT_EQ(read->records.size(), 1u);
  EXPECT_TRUE(read->records[0].is_string());  // protobuf's parse, joined
  EXPECT_EQ(std::move(read->records[0]).TakeString(), "abc");

  std::string bad_utf8 = m.SerializeAsString();
  const size_t at = bad_utf8.find("t\xc3\xa9");
  ASSERT_NE(at, std::string::npos);
  bad_utf8[at + 2] = '\x28';  // \xc3 followed by a non-continuation byte
  EXPECT_EQ(ReadProduceStream(CutIntoSlices(bad_utf8, rng)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace runnel::broker
