#include "log/record_batch.h"

#include <snappy.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "common/check.h"
#include "common/crc32c.h"
#include "common/endian.h"
#include "common/varint.h"
#include "log/compression.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/wait_for.h"

namespace runnel::log {
namespace {

using ::runnel::testing::IsOk;
using ::runnel::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr absl::StatusCode kInvalid = absl::StatusCode::kInvalidArgument;
constexpr absl::StatusCode kDataLoss = absl::StatusCode::kDataLoss;

constexpr int64_t kTs1 = 1700000000000;  // 0x0000018BCFE56800
constexpr int64_t kTs2 = 1700000000005;

// A batch encoded by hand from the Kafka RecordBatch v2 specification
// (docs/log-format.md): base offset 0, two records, producer fields -1, no
// compression. Record 0: key "k", value "v", header "h" = "x", at kTs1.
// Record 1: null key, empty value, no headers, at kTs2. The CRC was computed
// independently (bitwise CRC32C over bytes 21..80).
constexpr unsigned char kGolden[] = {
    // -- batch header --
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  //  0 baseOffset 0
    0x00, 0x00, 0x00, 0x45,                          //  8 batchLength 69
    0xFF, 0xFF, 0xFF, 0xFF,  // 12 partitionLeaderEpoch -1
    0x02,                    // 16 magic 2
    0xC4, 0x1F, 0x17, 0x30,  // 17 crc 0xC41F1730
    0x00, 0x00,              // 21 attributes: none, CreateTime
    0x00, 0x00, 0x00, 0x01,  // 23 lastOffsetDelta 1
    0x00, 0x00, 0x01, 0x8B, 0xCF, 0xE5, 0x68, 0x00,  // 27 baseTimestamp kTs1
    0x00, 0x00, 0x01, 0x8B, 0xCF, 0xE5, 0x68, 0x05,  // 35 maxTimestamp kTs2
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,  // 43 producerId -1
    0xFF, 0xFF,                                      // 51 producerEpoch -1
    0xFF, 0xFF, 0xFF, 0xFF,                          // 53 baseSequence -1
    0x00, 0x00, 0x00, 0x02,                          // 57 recordCount 2
    // -- record 0 (zigzag varints) --
    0x18,        // 61 length 12
    0x00,        // 62 attributes
    0x00,        // 63 timestampDelta 0
    0x00,        // 64 offsetDelta 0
    0x02, 0x6B,  // 65 keyLength 1, "k"
    0x02, 0x76,  // 67 valueLength 1, "v"
    0x02,        // 69 headers count 1
    0x02, 0x68,  // 70 header keyLength 1, "h"
    0x02, 0x78,  // 72 header valueLength 1, "x"
    // -- record 1 --
    0x0C,  // 74 length 6
    0x00,  // 75 attributes
    0x0A,  // 76 timestampDelta 5
    0x02,  // 77 offsetDelta 1
    0x01,  // 78 keyLength -1 (null)
    0x00,  // 79 valueLength 0 (empty)
    0x00,  // 80 headers count 0
};

std::string Golden() {
  return std::string(reinterpret_cast<const char*>(kGolden), sizeof(kGolden));
}

// ---- hand-made records for the error branches -----------------------------

std::string V32(int32_t v) {
  std::string s;
  AppendVarint32(s, v);
  return s;
}
std::string V64(int64_t v) {
  std::string s;
  AppendVarint64(s, v);
  return s;
}
// A length-prefixed string field.
std::string Str(std::string_view s) {
  return V32(static_cast<int32_t>(s.size())) + std::string(s);
}
const std::string kNull = V32(-1);
const std::string kNoHeaders = V32(0);

// A record body: attributes, timestampDelta, offsetDelta, then `rest`
// (key, value, headers as raw pieces).
std::string Body(int32_t offset_delta, const std::string& rest,
                 int64_t timestamp_delta = 0) {
  return std::string(1, '\0') + V64(timestamp_delta) + V32(offset_delta) + rest;
}
// A well-formed record body with key and value.
std::string GoodBody(int32_t offset_delta) {
  return Body(offset_delta, Str("key") + Str("value") + kNoHeaders);
}
// Prefixes the body with its length varint.
std::string Rec(const std::string& body) {
  return V32(static_cast<int32_t>(body.size())) + body;
}

void FixCrc(std::string& batch) {
  StoreBe32(batch.data() + kCrcPos, Crc32c(batch.data() + kAttributesPos,
                                           batch.size() - kAttributesPos));
}

// A batch around hand-encoded `records`, with lastOffsetDelta = count - 1,
// base and max timestamp 1000, and a correct CRC.
std::string RawBatch(const std::string& records, int32_t count,
                     int16_t attributes = 0) {
  std::string b(kBatchHeaderSize, '\0');
  b += records;
  StoreBe64(b.data() + kBaseOffsetPos, 0);
  StoreBe32(b.data() + kBatchLengthPos,
            static_cast<uint32_t>(b.size() - kBatchLogOverhead));
  StoreBe32(b.data() + kPartitionLeaderEpochPos, 0);
  b[kMagicPos] = kMagicV2;
  StoreBe16(b.data() + kAttributesPos, static_cast<uint16_t>(attributes));
  StoreBe32(b.data() + kLastOffsetDeltaPos, static_cast<uint32_t>(count - 1));
  StoreBe64(b.data() + kBaseTimestampPos, 1000);
  StoreBe64(b.data() + kMaxTimestampPos, 1000);
  StoreBe64(b.data() + kProducerIdPos, static_cast<uint64_t>(-1));
  StoreBe16(b.data() + kProducerEpochPos, static_cast<uint16_t>(-1));
  StoreBe32(b.data() + kBaseSequencePos, static_cast<uint32_t>(-1));
  StoreBe32(b.data() + kRecordCountPos, static_cast<uint32_t>(count));
  FixCrc(b);
  return b;
}

absl::Status ValidateWire(const std::string& b) {
  return ValidateBatch(b, ValidateOptions{.source = BatchSource::kWire});
}
absl::Status ValidateDisk(const std::string& b) {
  return ValidateBatch(b, ValidateOptions{.source = BatchSource::kDisk});
}

// A small valid batch from the builder.
std::string SmallBatch(BatchBuilderOptions options = {}) {
  RecordBatchBuilder builder(options);
  builder.Append(100, "a", "1");
  builder.Append(101, "b", "2");
  builder.Append(102, std::nullopt, std::nullopt);
  absl::StatusOr<std::string> b = builder.Build();
  RUNNEL_CHECK(b.ok());
  return *b;
}

// ---- golden bytes -----------------------------------------------------------

TEST(RecordBatchGoldenTest, HandEncodedBatchDecodesFieldByField) {
  const std::string golden = Golden();
  absl::StatusOr<RecordBatchView> view = RecordBatchView::Parse(golden);
  ASSERT_THAT(view, IsOk());
  EXPECT_EQ(view->size_bytes(), 81u);
  EXPECT_EQ(view->base_offset(), 0);
  EXPECT_EQ(view->batch_length(), 69);
  EXPECT_EQ(view->partition_leader_epoch(), -1);
  EXPECT_EQ(view->magic(), 2);
  EXPECT_EQ(view->crc(), 0xC41F1730u);
  EXPECT_TRUE(view->CrcMatches());
  EXPECT_EQ(view->attributes(), 0);
  EXPECT_EQ(view->compression(), Compression::kNone);
  EXPECT_EQ(view->timestamp_type(), TimestampType::kCreateTime);
  EXPECT_FALSE(view->is_transactional());
  EXPECT_FALSE(view->is_control());
  EXPECT_EQ(view->last_offset_delta(), 1);
  EXPECT_EQ(view->base_timestamp(), kTs1);
  EXPECT_EQ(view->max_timestamp(), kTs2);
  EXPECT_EQ(view->producer_id(), -1);
  EXPECT_EQ(view->producer_epoch(), -1);
  EXPECT_EQ(view->base_sequence(), -1);
  EXPECT_EQ(view->record_count(), 2);
  EXPECT_EQ(view->last_offset(), 1);
  EXPECT_EQ(view->next_offset(), 2);
  RUNNEL_EXPECT_OK(ValidateWire(golden));
  RUNNEL_EXPECT_OK(ValidateDisk(golden));

  absl::StatusOr<std::vector<Record>> records = view->DecodeRecords();
  ASSERT_THAT(records, IsOk());
  ASSERT_EQ(records->size(), 2u);
  const Record& r0 = (*records)[0];
  EXPECT_EQ(r0.offset, 0);
  EXPECT_EQ(r0.timestamp, kTs1);
  EXPECT_EQ(r0.key, "k");
  EXPECT_EQ(r0.value, "v");
  EXPECT_THAT(r0.headers, ElementsAre(RecordHeader{"h", "x"}));
  const Record& r1 = (*records)[1];
  EXPECT_EQ(r1.offset, 1);
  EXPECT_EQ(r1.timestamp, kTs2);
  EXPECT_EQ(r1.key, std::nullopt);
  ASSERT_TRUE(r1.value.has_value());
  EXPECT_EQ(*r1.value, "");
  EXPECT_TRUE(r1.headers.empty());
}

TEST(RecordBatchGoldenTest, BuilderReproducesHandEncodedBytes) {
  RecordBatchBuilder builder;  // defaults: offset 0, epoch -1, producer -1
  builder.Append(kTs1, "k", "v", {RecordHeader{"h", "x"}});
  builder.Append(kTs2, std::nullopt, "");
  EXPECT_EQ(builder.record_count(), 2);
  EXPECT_EQ(builder.uncompressed_size_bytes(), sizeof(kGolden));
  absl::StatusOr<std::string> built = builder.Build();
  ASSERT_THAT(built, IsOk());
  EXPECT_EQ(*built, Golden());
  EXPECT_TRUE(builder.empty());
}

// ---- round trips
// --------------------------------------------------------------

class RecordBatchCodecTest : public ::testing::TestWithParam<Compression> {
 protected:
  BatchBuilderOptions Options() const {
    return BatchBuilderOptions{.compression = GetParam(), .base_offset = 1000};
  }
  // Builds, validates and decodes.
  std::vector<Record> RoundTrip(RecordBatchBuilder& builder,
                                ValidateOptions vo = {}) {
    absl::StatusOr<std::string> bytes = builder.Build();
    RUNNEL_CHECK(bytes.ok());
    bytes_ = *bytes;
    EXPECT_THAT(ValidateBatch(bytes_, vo), IsOk());
    absl::StatusOr<RecordBatchView> view = RecordBatchView::Parse(bytes_);
    RUNNEL_CHECK(view.ok());
    EXPECT_EQ(view->compression(), GetParam());
    absl::StatusOr<std::vector<Record>> records = view->DecodeRecords();
    EXPECT_THAT(records, IsOk());
    return records.ok() ? *records : std::vector<Record>{};
  }
  std::string bytes_;
};

TEST_P(RecordBatchCodecTest, RecordViewsPointIntoTheBatchOrItsDecompression) {
  RecordBatchBuilder builder(Options());
  builder.Append(10, "k0", "v0", {RecordHeader{"h", "x"}});
  builder.Append(11, std::nullopt, std::string(3000, 'v'),
                 {RecordHeader{"a", std::nullopt}, RecordHeader{"b", ""}});
  builder.Append(12, "", std::nullopt);
  (void)RoundTrip(builder);
  RecordBatchView view = *RecordBatchView::Parse(bytes_);
  std::string decompressed;
  // The bytes a view may point into: the batch's, or the decompressed ones.
  auto inside = [&](std::string_view v) {
    const std::string_view home = GetParam() == Compression::kNone
                                      ? std::string_view(bytes_)
                                      : std::string_view(decompressed);
    return v.data() >= home.data() &&
           v.data() + v.size() <= home.data() + home.size();
  };
  std::vector<std::string> seen;
  ASSERT_THAT(view.ForEachRecordView(
                  [&](const RecordView& r) {
                    std::string line =
                        std::to_string(r.offset) + "@" +
                        std::to_string(r.timestamp) + " " +
                        std::string(r.key.value_or("null")) + "=" +
                        std::to_string(r.value ? r.value->size() : 0);
                    if (r.key) {
                      EXPECT_TRUE(inside(*r.key));
                    }
                    if (r.value) {
                      EXPECT_TRUE(inside(*r.value));
                    }
                    for (const RecordHeaderView& h : r.headers) {
                      EXPECT_TRUE(inside(h.key));
                      line += " " + std::string(h.key) + ":" +
                              std::string(h.value.value_or("null"));
                    }
                    seen.push_back(line);
                    return absl::OkStatus();
                  },
                  &decompressed),
              IsOk());
  EXPECT_THAT(seen, ::testing::ElementsAre(
                        "1000@10 k0=2 h:x",
                        "1001@11 null=3000 a:null b:", "1002@12 =0"));
  EXPECT_EQ(decompressed.empty(), GetParam() == Compression::kNone);
}

TEST_P(RecordBatchCodecTest, NullAndEmptyKeysAndValuesStayDistinct) {
  RecordBatchBuilder builder(Options());
  builder.Append(10, std::nullopt, std::nullopt);
  builder.Append(11, "", "");
  builder.Append(12, std::nullopt, "");
  builder.Append(13, "", std::nullopt);
  builder.Append(9, "key", "value");  // earlier than the base timestamp
  std::vector<Record> records = RoundTrip(builder);
  ASSERT_EQ(records.size(), 5u);
  EXPECT_EQ(records[0].key, std::nullopt);
  EXPECT_EQ(records[0].value, std::nullopt);
  EXPECT_EQ(records[1].key, std::optional<std::string>(""));
  EXPECT_EQ(records[1].value, std::optional<std::string>(""));
  EXPECT_EQ(records[2].key, std::nullopt);
  EXPECT_EQ(records[2].value, std::optional<std::string>(""));
  EXPECT_EQ(records[3].key, std::optional<std::string>(""));
  EXPECT_EQ(records[3].value, std::nullopt);
  EXPECT_EQ(records[4].key, "key");
  EXPECT_EQ(records[4].value, "value");
  for (int i = 0; i < 5; ++i) EXPECT_EQ(records[i].offset, 1000 + i);
  EXPECT_EQ(records[0].timestamp, 10);
  EXPECT_EQ(records[4].timestamp, 9);
  RecordBatchView view = *RecordBatchView::Parse(bytes_);
  EXPECT_EQ(view.base_timestamp(), 10);
  EXPECT_EQ(view.max_timestamp(), 13);
  EXPECT_EQ(view.last_offset(), 1004);
}

TEST_P(RecordBatchCodecTest, HeadersRoundTrip) {
  RecordBatchBuilder builder(Options());
  const std::vector<RecordHeader> headers = {
      {"trace", "abc"}, {"empty", ""}, {"null", std::nullopt}, {"", "v"}};
  builder.Append(1, "k", "v", headers);
  builder.Append(2, "k2", "v2");
  std::vector<Record> records = RoundTrip(builder);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].headers, headers);
  EXPECT_TRUE(records[1].headers.empty());
}

TEST_P(RecordBatchCodecTest, ManyRecordsRoundTrip) {
  RecordBatchBuilder builder(Options());
  constexpr int kCount = 20000;
  for (int i = 0; i < kCount; ++i) {
    builder.Append(5000 + i, absl::StrCat("key-", i % 100),
                   absl::StrCat("value-", i));
  }
  std::vector<Record> records = RoundTrip(builder);
  ASSERT_EQ(records.size(), static_cast<size_t>(kCount));
  for (int i = 0; i < kCount; i += 997) {
    EXPECT_EQ(records[i].offset, 1000 + i);
    EXPECT_EQ(records[i].timestamp, 5000 + i);
    EXPECT_EQ(records[i].key, absl::StrCat("key-", i % 100));
    EXPECT_EQ(records[i].value, absl::StrCat("value-", i));
  }
  if (GetParam() != Compression::kNone) {
    // Repetitive records compress well with every codec.
    EXPECT_LT(bytes_.size(), builder.uncompressed_size_bytes() + 400000u);
  }
}

TEST_P(RecordBatchCodecTest, OneMebibyteValuesRoundTrip) {
  const uint64_t seed = ::runnel::testing::TestSeed();
  SCOPED_TRACE(absl::StrCat("seed=", seed));
  std::mt19937_64 rng(seed);
  std::string random_value(1 << 20, '\0');
  for (char& c : random_value) c = static_cast<char>(rng());
  const std::string zeros(1 << 20, '\0');
  RecordBatchBuilder builder(Options());
  builder.Append(1, "random", random_value);
  builder.Append(2, "zeros", zeros);
  std::vector<Record> records =
      RoundTrip(builder, ValidateOptions{.max_batch_bytes = 4 << 20});
  ASSERT_EQ(records.size(), 2u);
  EXPECT_TRUE(records[0].value == random_value);
  EXPECT_TRUE(records[1].value == zeros);
}

TEST_P(RecordBatchCodecTest, BuilderIsReusableAfterBuild) {
  RecordBatchBuilder builder(Options());
  builder.Append(1, "a", "1");
  ASSERT_THAT(builder.Build(), IsOk());
  EXPECT_TRUE(builder.empty());
  EXPECT_THAT(builder.Build(), StatusIs(kInvalid));
  builder.Append(7, "b", "2");
  std::vector<Record> records = RoundTrip(builder);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].key, "b");
  EXPECT_EQ(records[0].timestamp, 7);
  EXPECT_EQ(records[0].offset, 1000);
}

INSTANTIATE_TEST_SUITE_P(AllCodecs, RecordBatchCodecTest,
                         ::testing::Values(Compression::kNone,
                                           Compression::kGzip,
                                           Compression::kSnappy,
                                           Compression::kLz4,
                                           Compression::kZstd),
                         [](const ::testing::TestParamInfo<Compression>& info) {
                           return std::string(CompressionName(info.param));
                         });

// The producer appends headers as views and reserves the batch up front;
// the bytes are those of the owning overload.
TEST(RecordBatchBuilderTest, HeaderViewsAndReserveBuildTheSameBytes) {
  const std::vector<RecordHeader> owned = {
      {"h1", "x"}, {"h2", std::nullopt}, {"", ""}};
  const std::vector<RecordHeaderView> views = {
      {"h1", "x"}, {"h2", std::nullopt}, {"", ""}};
  RecordBatchBuilder a;
  RecordBatchBuilder b;
  b.Reserve(1 << 16);
  for (int i = 0; i < 3; ++i) {
    const std::string value(static_cast<size_t>(300 * i), 'v');
    a.Append(1000 + i, "key", value, owned);
    b.Append(1000 + i, "key", value, std::span<const RecordHeaderView>(views));
  }
  a.Append(2000, std::nullopt, std::nullopt);
  b.Append(2000, std::nullopt, std::nullopt,
           std::span<const RecordHeaderView>());
  absl::StatusOr<std::string> from_owned = a.Build();
  absl::StatusOr<std::string> from_views = b.Build();
  ASSERT_THAT(from_owned, IsOk());
  ASSERT_THAT(from_views, IsOk());
  EXPECT_EQ(*from_owned, *from_views);
  std::vector<Record> records;
  RUNNEL_ASSERT_OK(
      RecordBatchView::Parse(*from_views)->ForEachRecord([&](Record r) {
        records.push_back(std::move(r));
        return absl::OkStatus();
      }));
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records[2].headers, owned);
  EXPECT_EQ(records[2].value, std::string(600, 'v'));
  EXPECT_EQ(records[3].key, std::nullopt);
  EXPECT_TRUE(records[3].headers.empty());
}

// A large uncompressed batch takes its CRC in chunks as records arrive and
// combines it with the header's at Build: the stored CRC is the CRC of the
// bytes, also when producer fields are set after the records, and again for
// the next batch of the same builder.
TEST(RecordBatchBuilderTest, LargeBatchCrcTakenInChunksMatchesItsBytes) {
  RecordBatchBuilder builder;
  std::mt19937_64 rng(5);
  for (int round = 0; round < 2; ++round) {
    int records = 0;
    for (size_t total = 0; total < (300 << 10); ++records) {
      std::string value(rng() % 3000, '\0');
      for (char& c : value) c = static_cast<char>(rng());
      total += value.size();
      builder.Append(1000 + records, std::to_string(records), value);
    }
    builder.SetProducerState(77, 2, 1000 * round);
    absl::StatusOr<std::string> bytes = builder.Build();
    ASSERT_THAT(bytes, IsOk());
    RecordBatchView view = *RecordBatchView::Parse(*bytes);
    EXPECT_EQ(view.crc(), Crc32c(bytes->data() + 21, bytes->size() - 21));
    EXPECT_TRUE(view.CrcMatches());
    EXPECT_EQ(view.record_count(), records);
    EXPECT_EQ(view.base_sequence(), 1000 * round);
    RUNNEL_EXPECT_OK(ValidateWire(*bytes));
  }
}

TEST(RecordBatchBuilderTest, HeaderFieldsComeFromOptions) {
  RecordBatchBuilder builder(BatchBuilderOptions{
      .compression = Compression::kLz4,
      .base_offset = 42,
      .partition_leader_epoch = 7,
      .timestamp_type = TimestampType::kLogAppendTime,
      .producer_id = 9000,
      .producer_epoch = 3,
      .base_sequence = 55,
      .transactional = true,
      .control = false,
  });
  builder.Append(77, "k", "v");
  absl::StatusOr<std::string> bytes = builder.Build();
  ASSERT_THAT(bytes, IsOk());
  RecordBatchView view = *RecordBatchView::Parse(*bytes);
  EXPECT_EQ(view.base_offset(), 42);
  EXPECT_EQ(view.partition_leader_epoch(), 7);
  EXPECT_EQ(view.compression(), Compression::kLz4);
  EXPECT_EQ(view.timestamp_type(), TimestampType::kLogAppendTime);
  EXPECT_TRUE(view.is_transactional());
  EXPECT_FALSE(view.is_control());
  EXPECT_EQ(view.producer_id(), 9000);
  EXPECT_EQ(view.producer_epoch(), 3);
  EXPECT_EQ(view.base_sequence(), 55);
  EXPECT_EQ(view.attributes(), 0x03 | 0x08 | 0x10);
  RUNNEL_EXPECT_OK(ValidateWire(*bytes));
}

TEST(CompressionNameTest, NamesParseBack) {
  for (Compression c :
       {Compression::kNone, Compression::kGzip, Compression::kSnappy,
        Compression::kLz4, Compression::kZstd}) {
    absl::StatusOr<Compression> parsed = ParseCompression(CompressionName(c));
    ASSERT_THAT(parsed, IsOk());
    EXPECT_EQ(*parsed, c);
  }
  EXPECT_THAT(ParseCompression("brotli"), StatusIs(kInvalid));
}

// ---- Parse and SplitBatches
// --------------------------------------------------

TEST(RecordBatchViewTest, ParseFramesOnlyTheFirstBatch) {
  const std::string two = Golden() + SmallBatch();
  absl::StatusOr<RecordBatchView> view = RecordBatchView::Parse(two);
  ASSERT_THAT(view, IsOk());
  EXPECT_EQ(view->bytes(), Golden());
}

TEST(RecordBatchViewTest, ParseOfTruncatedBatchIsOutOfRange) {
  const std::string golden = Golden();
  EXPECT_THAT(RecordBatchView::Parse(golden.substr(0, 60)),
              StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(RecordBatchView::Parse(golden.substr(0, 80), BatchSource::kDisk),
              StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(RecordBatchView::Parse(""),
              StatusIs(absl::StatusCode::kOutOfRange));
}

TEST(RecordBatchViewTest, ParseOfBadMagicDependsOnSource) {
  std::string b = Golden();
  b[kMagicPos] = 1;
  EXPECT_THAT(RecordBatchView::Parse(b, BatchSource::kWire),
              StatusIs(kInvalid));
  EXPECT_THAT(RecordBatchView::Parse(b, BatchSource::kDisk),
              StatusIs(kDataLoss));
}

TEST(RecordBatchViewTest, ParseDoesNotCheckTheCrc) {
  std::string b = Golden();
  b[70] ^= 0x01;
  absl::StatusOr<RecordBatchView> view = RecordBatchView::Parse(b);
  ASSERT_THAT(view, IsOk());
  EXPECT_FALSE(view->CrcMatches());
}

TEST(SplitBatchesTest, SplitsConcatenatedBatches) {
  const std::string a = Golden();
  const std::string b = SmallBatch(BatchBuilderOptions{.base_offset = 2});
  const std::string c = SmallBatch(
      BatchBuilderOptions{.compression = Compression::kZstd, .base_offset = 5});
  const std::string all = a + b + c;
  absl::StatusOr<std::vector<RecordBatchView>> views = SplitBatches(all);
  ASSERT_THAT(views, IsOk());
  ASSERT_EQ(views->size(), 3u);
  EXPECT_EQ((*views)[0].bytes(), a);
  EXPECT_EQ((*views)[1].bytes(), b);
  EXPECT_EQ((*views)[2].bytes(), c);
  EXPECT_EQ((*views)[2].base_offset(), 5);
  for (const RecordBatchView& v : *views)
    RUNNEL_EXPECT_OK(ValidateBatch(v.bytes()));
}

TEST(SplitBatchesTest, EmptyBufferGivesNoBatches) {
  absl::StatusOr<std::vector<RecordBatchView>> views = SplitBatches("");
  ASSERT_THAT(views, IsOk());
  EXPECT_TRUE(views->empty());
}

TEST(SplitBatchesTest, TruncatedLastBatchIsOutOfRange) {
  const std::string all = Golden() + Golden().substr(0, 70);
  absl::StatusOr<std::vector<RecordBatchView>> views = SplitBatches(all);
  EXPECT_THAT(views, StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(std::string(views.status().message()),
              HasSubstr("buffer position 81"));
}

TEST(SplitBatchesTest, BadMagicInSecondBatchIsDataLossOnDisk) {
  std::string second = Golden();
  second[kMagicPos] = 0;
  EXPECT_THAT(SplitBatches(Golden() + second, BatchSource::kDisk),
              StatusIs(kDataLoss));
}

// ---- ValidateBatch: one test per branch ------------------------------------

TEST(ValidateBatchTest, HeaderShorterThan61BytesIsRejected) {
  const std::string b = Golden().substr(0, 60);
  EXPECT_THAT(ValidateWire(b), StatusIs(kInvalid));
  EXPECT_THAT(ValidateDisk(b), StatusIs(kDataLoss));
  EXPECT_THAT(ValidateWire(""), StatusIs(kInvalid));
}

TEST(ValidateBatchTest, BatchLengthBelowHeaderIsRejected) {
  std::string b = Golden();
  StoreBe32(b.data() + kBatchLengthPos, 48);
  EXPECT_THAT(ValidateWire(b), StatusIs(kInvalid));
  EXPECT_THAT(ValidateDisk(b), StatusIs(kDataLoss));
  StoreBe32(b.data() + kBatchLengthPos, static_cast<uint32_t>(-5));
  EXPECT_THAT(ValidateWire(b), StatusIs(kInvalid));
}

TEST(ValidateBatchTest, BatchLengthPastTheEndIsRejected) {
  std::string b = Golden();
  StoreBe32(b.data() + kBatchLengthPos, 70);
  absl::Status s = ValidateWire(b);
  EXPECT_THAT(s, StatusIs(kInvalid));
  EXPECT_THAT(std::string(s.message()), HasSubstr("position 8"));
  EXPECT_THAT(ValidateDisk(Golden().substr(0, 80)), StatusIs(kDataLoss));
}

TEST(ValidateBatchTest, TrailingBytesAfterTheBatchAreRejected) {
  const std::string b = Golden() + "x";
  absl::Status s = ValidateWire(b);
  EXPECT_THAT(s, StatusIs(kInvalid));
  EXPECT_THAT(std::string(s.message()), HasSubstr("position 81"));
  EXPECT_THAT(ValidateWire(Golden() + Golden()), StatusIs(kInvalid));
}

TEST(ValidateBatchTest, BadMagicIsInvalidOnWireAndDataLossOnDisk) {
  std::string b = Golden();
  b[kMagicPos] = 1;
  absl::Status wire = ValidateWire(b);
  EXPECT_THAT(wire, StatusIs(kInvalid));
  EXPECT_THAT(std::string(wire.message()), HasSubstr("position 16"));
  EXPECT_THAT(ValidateDisk(b), StatusIs(kDataLoss));
}

TEST(ValidateBatchTest, CrcMismatchIsInvalidOnWireAndDataLossOnDisk) {
  std::string b = Golden();
  b[66] = 'K';  // the key byte
  absl::Status wire = ValidateWire(b);
  EXPECT_THAT(wire, StatusIs(kInvalid));
  EXPECT_THAT(std::string(wire.message()), HasSubstr("crc"));
  EXPECT_THAT(ValidateDisk(b), StatusIs(kDataLoss));
  std::string c = Golden();
  c[kCrcPos + 3] ^= 0x40;  // the stored CRC itself
  EXPECT_THAT(ValidateDisk(c), StatusIs(kDataLoss));
}

TEST(ValidateBatchTest, WithoutCheckCrcABadCrcPassesButRecordsAreChecked) {
  const ValidateOptions no_crc{.check_crc = false};
  std::string b = Golden();
  b[kCrcPos + 3] ^= 0x40;  // only the stored CRC is wrong
  RUNNEL_EXPECT_OK(ValidateBatch(b, no_crc));
  std::string c = Golden();
  StoreBe32(c.data() + kLastOffsetDeltaPos, 2);  // CRC left stale too
  EXPECT_THAT(ValidateBatch(c, no_crc), StatusIs(kInvalid));
}

TEST(ValidateBatchTest, FieldsOutsideTheCrcAreNotCovered) {
  std::string b = Golden();
  SetBaseOffset(b.data(), 12345);
  SetPartitionLeaderEpoch(b.data(), 99);
  RUNNEL_EXPECT_OK(ValidateDisk(b));
}

TEST(ValidateBatchTest, UnknownCompressionCodecsAreRejected) {
  for (int16_t codec : {5, 6, 7}) {
    SCOPED_TRACE(absl::StrCat("codec=", codec));
    std::string b = Golden();
    StoreBe16(b.data() + kAttributesPos, static_cast<uint16_t>(codec));
    FixCrc(b);
    absl::Status s = ValidateWire(b);
    EXPECT_THAT(s, StatusIs(kInvalid));
    EXPECT_THAT(std::string(s.message()), HasSubstr("compression"));
    EXPECT_THAT(ValidateDisk(b), StatusIs(kDataLoss));
    EXPECT_THAT(RecordBatchView::Parse(b)->DecodeRecords(), StatusIs(kInvalid));
  }
}

TEST(ValidateBatchTest, ZeroOrNegativeRecordCountIsRejected) {
  std::string zero = RawBatch("", 0);
  EXPECT_THAT(ValidateWire(zero), StatusIs(kInvalid));
  std::string negative = RawBatch(Rec(GoodBody(0)), 1);
  StoreBe32(negative.data() + kRecordCountPos, static_cast<uint32_t>(-1));
  FixCrc(negative);
  EXPECT_THAT(ValidateDisk(negative), StatusIs(kDataLoss));
}

TEST(ValidateBatchTest, RecordCountAboveRecordsPresentIsRejected) {
  std::string b = RawBatch(Rec(GoodBody(0)) + Rec(GoodBody(1)), 3);
  absl::Status s = ValidateWire(b);
  EXPECT_THAT(s, StatusIs(kInvalid));
  EXPECT_THAT(std::string(s.message()), HasSubstr("only 2 records"));
  EXPECT_THAT(RecordBatchView::Parse(b)->DecodeRecords(), StatusIs(kInvalid));
}

TEST(ValidateBatchTest, RecordCountBelowRecordsPresentIsRejected) {
  std::string b = RawBatch(Rec(GoodBody(0)) + Rec(GoodBody(1)), 1);
  EXPECT_THAT(ValidateWire(b), StatusIs(kInvalid));
  EXPECT_THAT(ValidateDisk(b), StatusIs(kDataLoss));
}

TEST(ValidateBatchTest, NegativeRecordLengthIsRejected) {
  std::string b = RawBatch(V32(-3) + GoodBody(0), 1);
  absl::Status s = ValidateWire(b);
  EXPECT_THAT(s, StatusIs(kInvalid));
  EXPECT_THAT(std::string(s.message()), HasSubstr("position 61"));
}

TEST(ValidateBatchTest, OverlongRecordLengthVarintIsRejected) {
  // Six bytes for an int32 varint: one more than the type allows.
  std::string b =
      RawBatch(std::string("\x80\x80\x80\x80\x80\x01", 6) + GoodBody(0), 1);
  absl::Status s = ValidateWire(b);
  EXPECT_THAT(s, StatusIs(kInvalid));
  EXPECT_THAT(std::string(s.message()), HasSubstr("overlong"));
  // Five bytes whose last one sets bits past 32.
  std::string c =
      RawBatch(std::string("\xFF\xFF\xFF\xFF\x7F", 5) + GoodBody(0), 1);
  EXPECT_THAT(ValidateDisk(c), StatusIs(kDataLoss));
}

TEST(ValidateBatchTest, TruncatedRecordLengthVarintIsRejected) {
  std::string b = RawBatch(Rec(GoodBody(0)) + "\x80\x80", 2);
  absl::Status s = ValidateWire(b);
  EXPECT_THAT(s, StatusIs(kInvalid));
  EXPECT_THAT(std::string(s.message()), HasSubstr("truncated"));
}

TEST(ValidateBatchTest, RecordLengthPastTheEndIsRejected) {
  const std::string body = GoodBody(0);
  std::string b =
      RawBatch(V32(static_cast<int32_t>(body.size() + 1)) + body, 1);
  absl::Status s = ValidateWire(b);
  EXPECT_THAT(s, StatusIs(kInvalid));
  EXPECT_THAT(std::string(s.message()), HasSubstr("past the end"));
}

TEST(ValidateBatchTest, RecordFieldsShorterThanLengthAreRejected) {
  // A pad byte inside the record after its headers.
  std::string b = RawBatch(Rec(GoodBody(0) + "z"), 1);
  absl::Status s = ValidateWire(b);
  EXPECT_THAT(s, StatusIs(kInvalid));
  EXPECT_THAT(std::string(s.message()), HasSubstr("before the record length"));
}

TEST(ValidateBatchTest, RecordFieldsLongerThanLengthAreRejected) {
  // The length stops inside the value; the rest follows as if a new record.
  const std::string body = GoodBody(0);
  std::string b =
      RawBatch(V32(static_cast<int32_t>(body.size() - 3)) + body, 1);
  EXPECT_THAT(ValidateWire(b), StatusIs(kInvalid));
  // The length stops inside a varint field.
  std::string c = RawBatch(V32(2) + Body(0, Str("k") + kNull + kNoHeaders,
                                         /*timestamp_delta=*/1000),
                           1);
  EXPECT_THAT(ValidateDisk(c), StatusIs(kDataLoss));
}

TEST(ValidateBatchTest, KeyLengthBelowMinusOneIsRejected) {
  std::string b = RawBatch(Rec(Body(0, V32(-2) + Str("v") + kNoHeaders)), 1);
  absl::Status s = ValidateWire(b);
  EXPECT_THAT(s, StatusIs(kInvalid));
  EXPECT_THAT(std::string(s.message()), HasSubstr("negative key length"));
}

TEST(ValidateBatchTest, KeyLengthPastTheRecordIsRejected) {
  std::string b = RawBatch(Rec(Body(0, V32(50) + "abc")), 1);
  absl::Status s = ValidateWire(b);
  EXPECT_THAT(s, StatusIs(kInvalid));
  EXPECT_THAT(std::string(s.message()), HasSubstr("key length 50 past"));
}

TEST(ValidateBatchTest, ValueLengthBelowMinusOneIsRejected) {
  std::string b = RawBatch(Rec(Body(0, kNull + V32(-7) + kNoHeaders)), 1);
  absl::Status s = ValidateDisk(b);
  EXPECT_THAT(s, StatusIs(kDataLoss));
  EXPECT_THAT(std::string(s.message()), HasSubstr("negative value length"));
}

TEST(ValidateBatchTest, ValueLengthPastTheRecordIsRejected) {
  std::string b = RawBatch(Rec(Body(0, kNull + V32(9) + "abcd")), 1);
  EXPECT_THAT(ValidateWire(b), StatusIs(kInvalid));
}

TEST(ValidateBatchTest, NegativeHeaderCountIsRejected) {
  std::string b = RawBatch(Rec(Body(0, kNull + kNull + V32(-1))), 1);
  absl::Status s = ValidateWire(b);
  EXPECT_THAT(s, StatusIs(kInvalid));
  EXPECT_THAT(std::string(s.message()), HasSubstr("header count"));
}

TEST(ValidateBatchTest, NullHeaderKeyIsRejected) {
  std::string b =
      RawBatch(Rec(Body(0, kNull + kNull + V32(1) + kNull + Str("v"))), 1);
  absl::Status s = ValidateWire(b);
  EXPECT_THAT(s, StatusIs(kInvalid));
  EXPECT_THAT(std::string(s.message()), HasSubstr("null header key"));
  EXPECT_THAT(RecordBatchView::Parse(b)->DecodeRecords(), StatusIs(kInvalid));
}

TEST(ValidateBatchTest, HeaderKeyLengthBelowMinusOneIsRejected) {
  std::string b =
      RawBatch(Rec(Body(0, kNull + kNull + V32(1) + V32(-2) + Str("v"))), 1);
  absl::Status s = ValidateWire(b);
  EXPECT_THAT(s, StatusIs(kInvalid));
  EXPECT_THAT(std::string(s.message()), HasSubstr("negative header key"));
}

TEST(ValidateBatchTest, HeaderKeyPastTheRecordIsRejected) {
  std::string b = RawBatch(Rec(Body(0, kNull + kNull + V32(1) + V32(20))), 1);
  EXPECT_THAT(ValidateDisk(b), StatusIs(kDataLoss));
}

TEST(ValidateBatchTest, HeaderValueLengthBelowMinusOneIsRejected) {
  std::string b =
      RawBatch(Rec(Body(0, kNull + kNull + V32(1) + Str("h") + V32(-2))), 1);
  absl::Status s = ValidateWire(b);
  EXPECT_THAT(s, StatusIs(kInvalid));
  EXPECT_THAT(std::string(s.message()), HasSubstr("negative header value"));
}

TEST(ValidateBatchTest, HeaderValuePastTheRecordIsRejected) {
  std::string b = RawBatch(
      Rec(Body(0, kNull + kNull + V32(1) + Str("h") + V32(4) + "ab")), 1);
  EXPECT_THAT(ValidateWire(b), StatusIs(kInvalid));
}

TEST(ValidateBatchTest, MissingHeadersAreRejected) {
  // Header count 2, one header present.
  std::string b =
      RawBatch(Rec(Body(0, kNull + kNull + V32(2) + Str("h") + Str("v"))), 1);
  EXPECT_THAT(ValidateWire(b), StatusIs(kInvalid));
}

TEST(ValidateBatchTest, OverlongFieldVarintIsRejected) {
  // An 11-byte timestampDelta varlong.
  std::string body =
      std::string(1, '\0') +
      std::string("\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 11) + V32(0) +
      kNull + kNull + kNoHeaders;
  std::string b = RawBatch(Rec(body), 1);
  absl::Status s = ValidateWire(b);
  EXPECT_THAT(s, StatusIs(kInvalid));
  EXPECT_THAT(std::string(s.message()), HasSubstr("overlong timestampDelta"));
}

TEST(ValidateBatchTest, OffsetDeltaNotEqualToIndexIsRejected) {
  std::string b = RawBatch(Rec(GoodBody(0)) + Rec(GoodBody(2)), 2);
  absl::Status s = ValidateWire(b);
  EXPECT_THAT(s, StatusIs(kInvalid));
  EXPECT_THAT(std::string(s.message()), HasSubstr("offsetDelta 2"));
  std::string c = RawBatch(Rec(GoodBody(1)) + Rec(GoodBody(0)), 2);
  EXPECT_THAT(ValidateDisk(c), StatusIs(kDataLoss));
}

TEST(ValidateBatchTest, DecodeKeepsOffsetDeltasWithGaps) {
  // Lenient decoding: a compacted batch keeps its records' deltas.
  std::string b = RawBatch(Rec(GoodBody(0)) + Rec(GoodBody(2)), 2);
  absl::StatusOr<std::vector<Record>> records =
      RecordBatchView::Parse(b)->DecodeRecords();
  ASSERT_THAT(records, IsOk());
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[1].offset, 2);
}

TEST(ValidateBatchTest, LastOffsetDeltaMismatchIsRejected) {
  std::string b = Golden();
  StoreBe32(b.data() + kLastOffsetDeltaPos, 2);
  FixCrc(b);
  absl::Status s = ValidateWire(b);
  EXPECT_THAT(s, StatusIs(kInvalid));
  EXPECT_THAT(std::string(s.message()), HasSubstr("position 23"));
  EXPECT_THAT(ValidateDisk(b), StatusIs(kDataLoss));
}

TEST(ValidateBatchTest, BatchLargerThanMaxIsRejected) {
  const std::string b = Golden();
  EXPECT_THAT(ValidateBatch(b, ValidateOptions{.max_batch_bytes = 80}),
              StatusIs(kInvalid));
  EXPECT_THAT(ValidateBatch(b, ValidateOptions{.source = BatchSource::kDisk,
                                               .max_batch_bytes = 80}),
              StatusIs(kDataLoss));
  RUNNEL_EXPECT_OK(ValidateBatch(b, ValidateOptions{.max_batch_bytes = 81}));
}

TEST(ValidateBatchTest, RecordTimestampAfterMaxTimestampIsRejected) {
  // base 1000 + delta 5 > max 1000 under CreateTime.
  std::string b = RawBatch(Rec(Body(0, kNull + kNull + kNoHeaders, 5)), 1);
  absl::Status s = ValidateWire(b);
  EXPECT_THAT(s, StatusIs(kInvalid));
  EXPECT_THAT(std::string(s.message()), HasSubstr("maxTimestamp"));
  // Under LogAppendTime the records' timestamps are the batch's.
  std::string c = RawBatch(Rec(Body(0, kNull + kNull + kNoHeaders, 5)), 1,
                           kTimestampTypeBit);
  RUNNEL_EXPECT_OK(ValidateWire(c));
}

TEST(ValidateBatchTest, UndecompressableRecordsAreRejected) {
  for (Compression codec : {Compression::kGzip, Compression::kSnappy,
                            Compression::kLz4, Compression::kZstd}) {
    SCOPED_TRACE(CompressionName(codec));
    std::string b = RawBatch("this is not compressed data at all", 1,
                             static_cast<int16_t>(codec));
    absl::Status s = ValidateWire(b);
    EXPECT_THAT(s, StatusIs(kInvalid));
    EXPECT_THAT(std::string(s.message()), HasSubstr("decompress"));
    EXPECT_THAT(ValidateDisk(b), StatusIs(kDataLoss));
    EXPECT_THAT(RecordBatchView::Parse(b)->DecodeRecords(BatchSource::kDisk),
                StatusIs(kDataLoss));
  }
}

TEST(ValidateBatchTest, TruncatedCompressedRecordsAreRejected) {
  for (Compression codec : {Compression::kGzip, Compression::kSnappy,
                            Compression::kLz4, Compression::kZstd}) {
    SCOPED_TRACE(CompressionName(codec));
    std::string records;
    for (int i = 0; i < 50; ++i) records += Rec(GoodBody(i));
    std::string compressed;
    RUNNEL_ASSERT_OK(Compress(codec, records, 0, compressed));
    compressed.resize(compressed.size() - 5);
    std::string b = RawBatch(compressed, 50, static_cast<int16_t>(codec));
    EXPECT_THAT(ValidateWire(b), StatusIs(kInvalid));
  }
}

TEST(ValidateBatchTest, DecompressedSizeOverTheLimitIsRejected) {
  for (Compression codec : {Compression::kGzip, Compression::kSnappy,
                            Compression::kLz4, Compression::kZstd}) {
    SCOPED_TRACE(CompressionName(codec));
    RecordBatchBuilder builder(BatchBuilderOptions{.compression = codec});
    builder.Append(1, "k", std::string(1 << 20, 'z'));
    absl::StatusOr<std::string> b = builder.Build();
    ASSERT_THAT(b, IsOk());
    ASSERT_LT(b->size(), 64u << 10);
    absl::Status s =
        ValidateBatch(*b, ValidateOptions{.max_decompressed_bytes = 64 << 10});
    EXPECT_THAT(s, StatusIs(kInvalid));
    EXPECT_THAT(std::string(s.message()), HasSubstr("limit"));
    EXPECT_THAT(
        ValidateBatch(*b, ValidateOptions{.source = BatchSource::kDisk,
                                          .max_decompressed_bytes = 64 << 10}),
        StatusIs(kDataLoss));
    RUNNEL_EXPECT_OK(ValidateBatch(*b));
  }
}

TEST(ValidateBatchTest, ControlBatchWithoutTransactionalBitPasses) {
  std::string b = SmallBatch(BatchBuilderOptions{.control = true});
  RecordBatchView view = *RecordBatchView::Parse(b);
  EXPECT_TRUE(view.is_control());
  EXPECT_FALSE(view.is_transactional());
  RUNNEL_EXPECT_OK(ValidateWire(b));
  absl::StatusOr<std::vector<Record>> records = view.DecodeRecords();
  ASSERT_THAT(records, IsOk());
  EXPECT_EQ(records->size(), 3u);
}

TEST(ValidateBatchTest, XerialFramedSnappyRecordsDecode) {
  // What snappy-java's SnappyOutputStream writes: header, then two chunks.
  std::string records;
  for (int i = 0; i < 40; ++i) records += Rec(GoodBody(i));
  const size_t half = records.size() / 2;
  std::string framed(kXerialMagic);
  framed += std::string("\0\0\0\1\0\0\0\1", 8);  // version 1, compatible 1
  for (std::string_view chunk : {std::string_view(records).substr(0, half),
                                 std::string_view(records).substr(half)}) {
    std::string compressed;
    snappy::Compress(chunk.data(), chunk.size(), &compressed);
    char length[4];
    StoreBe32(length, static_cast<uint32_t>(compressed.size()));
    framed.append(length, 4);
    framed += compressed;
  }
  std::string b =
      RawBatch(framed, 40, static_cast<int16_t>(Compression::kSnappy));
  RUNNEL_EXPECT_OK(ValidateWire(b));
  absl::StatusOr<std::vector<Record>> decoded =
      RecordBatchView::Parse(b)->DecodeRecords();
  ASSERT_THAT(decoded, IsOk());
  ASSERT_EQ(decoded->size(), 40u);
  EXPECT_EQ((*decoded)[39].offset, 39);
  EXPECT_EQ((*decoded)[39].key, "key");
  EXPECT_EQ((*decoded)[39].value, "value");
}

TEST(ValidateBatchTest, ErrorsInCompressedRecordsNameTheirPosition) {
  std::string records = Rec(GoodBody(0)) + Rec(GoodBody(5));
  std::string compressed;
  RUNNEL_ASSERT_OK(Compress(Compression::kZstd, records, 0, compressed));
  std::string b =
      RawBatch(compressed, 2, static_cast<int16_t>(Compression::kZstd));
  absl::Status s = ValidateDisk(b);
  EXPECT_THAT(s, StatusIs(kDataLoss));
  EXPECT_THAT(std::string(s.message()),
              HasSubstr(absl::StrCat("position ", Rec(GoodBody(0)).size(),
                                     " of the decompressed records")));
}

// ---- in-place header edits
// ---------------------------------------------------

TEST(HeaderEditTest, SetBaseOffsetKeepsCrcAndShiftsOffsets) {
  std::string b =
      SmallBatch(BatchBuilderOptions{.compression = Compression::kGzip});
  const uint32_t crc = RecordBatchView::Parse(b)->crc();
  SetBaseOffset(b.data(), 500);
  RecordBatchView view = *RecordBatchView::Parse(b);
  EXPECT_EQ(view.base_offset(), 500);
  EXPECT_EQ(view.crc(), crc);
  EXPECT_TRUE(view.CrcMatches());
  RUNNEL_EXPECT_OK(ValidateDisk(b));
  absl::StatusOr<std::vector<Record>> records = view.DecodeRecords();
  ASSERT_THAT(records, IsOk());
  EXPECT_EQ((*records)[0].offset, 500);
  EXPECT_EQ((*records)[2].offset, 502);
  EXPECT_EQ(view.last_offset(), 502);
}

TEST(HeaderEditTest, SetPartitionLeaderEpochKeepsCrc) {
  std::string b = Golden();
  SetPartitionLeaderEpoch(b.data(), 17);
  RecordBatchView view = *RecordBatchView::Parse(b);
  EXPECT_EQ(view.partition_leader_epoch(), 17);
  EXPECT_EQ(view.crc(), 0xC41F1730u);
  RUNNEL_EXPECT_OK(ValidateWire(b));
}

TEST(HeaderEditTest, StampLogAppendTimeRecomputesCrc) {
  std::string b = Golden();
  StampLogAppendTime(b.data(), b.size(), 1800000000000);
  RecordBatchView view = *RecordBatchView::Parse(b);
  EXPECT_EQ(view.timestamp_type(), TimestampType::kLogAppendTime);
  EXPECT_EQ(view.max_timestamp(), 1800000000000);
  EXPECT_EQ(view.base_timestamp(), 1800000000000);
  EXPECT_EQ(view.compression(), Compression::kNone);
  EXPECT_NE(view.crc(), 0xC41F1730u);
  EXPECT_TRUE(view.CrcMatches());
  RUNNEL_EXPECT_OK(ValidateDisk(b));
  absl::StatusOr<std::vector<Record>> records = view.DecodeRecords();
  ASSERT_THAT(records, IsOk());
  for (const Record& r : *records) EXPECT_EQ(r.timestamp, 1800000000000);
}

// ---- ForEachRecord
// -----------------------------------------------------------

TEST(ForEachRecordTest, StopsAtTheCallbacksError) {
  const std::string b = SmallBatch();
  int calls = 0;
  absl::Status s = RecordBatchView::Parse(b)->ForEachRecord([&](Record r) {
    ++calls;
    if (r.offset == 1) return absl::CancelledError("enough");
    return absl::OkStatus();
  });
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(calls, 2);
}

TEST(ForEachRecordTest, EmptyBatchOnDiskYieldsNoRecords) {
  // What compaction can leave behind: record count 0, no record bytes.
  std::string b = RawBatch("", 0);
  absl::StatusOr<std::vector<Record>> records =
      RecordBatchView::Parse(b)->DecodeRecords(BatchSource::kDisk);
  ASSERT_THAT(records, IsOk());
  EXPECT_TRUE(records->empty());
}

}  // namespace
}  // namespace runnel::log
