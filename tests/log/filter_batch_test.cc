// FilterBatch (compaction's rewrite of one batch) and the ValidateOptions
// that go with it: offset_gaps and require_keys.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "common/check.h"
#include "common/crc32c.h"
#include "common/endian.h"
#include "log/record_batch.h"
#include "tests/testing/status_matchers.h"

namespace runnel::log {
namespace {

using ::runnel::testing::IsOk;
using ::runnel::testing::StatusIs;

constexpr int64_t kTs = 1'700'000'000'000;

// Record i: key "k<i>" (null for i == 2), value "v<i>" (null for i == 4),
// timestamp kTs + 10 * i, header "h" = "<i>" on even records.
std::string SixRecords(Compression codec,
                       TimestampType type = TimestampType::kCreateTime) {
  RecordBatchBuilder builder({.compression = codec,
                              .base_offset = 100,
                              .partition_leader_epoch = 3,
                              .timestamp_type = type,
                              .producer_id = 42,
                              .producer_epoch = 5,
                              .base_sequence = 17});
  for (int i = 0; i < 6; ++i) {
    std::optional<std::string> key;
    if (i != 2) key = absl::StrCat("k", i);
    std::optional<std::string> value;
    if (i != 4) value = absl::StrCat("v", i);
    std::vector<RecordHeader> headers;
    if (i % 2 == 0) headers.push_back({"h", absl::StrCat(i)});
    builder.Append(kTs + 10 * i, key, value, headers);
  }
  return builder.Build().value();
}

RecordBatchView View(const std::string& bytes) {
  auto view = RecordBatchView::Parse(bytes, BatchSource::kDisk);
  RUNNEL_CHECK(view.ok());
  return *view;
}

class FilterBatchTest : public ::testing::TestWithParam<Compression> {};

TEST_P(FilterBatchTest, KeepingEveryRecordLeavesTheBatchUnchanged) {
  const std::string batch = SixRecords(GetParam());
  auto filtered =
      FilterBatch(View(batch), [](const RecordView&) { return true; });
  ASSERT_THAT(filtered, IsOk());
  EXPECT_EQ(filtered->kind, FilteredBatch::Kind::kUnchanged);
  EXPECT_EQ(filtered->kept, 6);
  EXPECT_EQ(filtered->removed, 0);
  EXPECT_TRUE(filtered->bytes.empty());
}

TEST_P(FilterBatchTest, KeepingNoRecordEmptiesTheBatch) {
  const std::string batch = SixRecords(GetParam());
  auto filtered =
      FilterBatch(View(batch), [](const RecordView&) { return false; });
  ASSERT_THAT(filtered, IsOk());
  EXPECT_EQ(filtered->kind, FilteredBatch::Kind::kEmpty);
  EXPECT_EQ(filtered->kept, 0);
  EXPECT_EQ(filtered->removed, 6);
  EXPECT_TRUE(filtered->bytes.empty());
}

TEST_P(FilterBatchTest, RewrittenBatchKeepsOffsetsTimestampsAndHeaderFields) {
  const std::string batch = SixRecords(GetParam());
  const RecordBatchView before = View(batch);
  // Keeps records 1, 2 and 4: the last record (the max timestamp) goes.
  auto filtered = FilterBatch(before, [](const RecordView& r) {
    return r.offset == 101 || r.offset == 102 || r.offset == 104;
  });
  ASSERT_THAT(filtered, IsOk());
  ASSERT_EQ(filtered->kind, FilteredBatch::Kind::kRewritten);
  EXPECT_EQ(filtered->kept, 3);
  EXPECT_EQ(filtered->removed, 3);

  const std::string& bytes = filtered->bytes;
  RUNNEL_EXPECT_OK(ValidateBatch(
      bytes, {.source = BatchSource::kDisk, .offset_gaps = true}));
  // Without offset_gaps the deltas 1, 2, 4 are refused.
  EXPECT_THAT(ValidateBatch(bytes, {.source = BatchSource::kDisk}),
              StatusIs(absl::StatusCode::kDataLoss));

  const RecordBatchView after = View(bytes);
  EXPECT_EQ(after.size_bytes(), bytes.size());
  EXPECT_TRUE(after.CrcMatches());
  EXPECT_EQ(after.ComputeCrc(),
            Crc32c(bytes.data() + 17 + 4, bytes.size() - 21));
  EXPECT_EQ(after.base_offset(), 100);
  EXPECT_EQ(after.partition_leader_epoch(), 3);
  EXPECT_EQ(after.attributes(), before.attributes());
  EXPECT_EQ(after.compression(), GetParam());
  EXPECT_EQ(after.last_offset_delta(), 5);
  EXPECT_EQ(after.base_timestamp(), kTs);
  EXPECT_EQ(after.max_timestamp(), kTs + 40);  // of the kept records
  EXPECT_EQ(after.producer_id(), 42);
  EXPECT_EQ(after.producer_epoch(), 5);
  EXPECT_EQ(after.base_sequence(), 17);
  EXPECT_EQ(after.record_count(), 3);

  auto records = after.DecodeRecords(BatchSource::kDisk);
  ASSERT_THAT(records, IsOk());
  ASSERT_EQ(records->size(), 3u);
  const Record& r1 = (*records)[0];
  EXPECT_EQ(r1.offset, 101);
  EXPECT_EQ(r1.timestamp, kTs + 10);
  EXPECT_EQ(r1.key, "k1");
  EXPECT_EQ(r1.value, "v1");
  EXPECT_TRUE(r1.headers.empty());
  const Record& r2 = (*records)[1];
  EXPECT_EQ(r2.offset, 102);
  EXPECT_EQ(r2.timestamp, kTs + 20);
  EXPECT_EQ(r2.key, std::nullopt);
  EXPECT_EQ(r2.value, "v2");
  ASSERT_EQ(r2.headers.size(), 1u);
  EXPECT_EQ(r2.headers[0].key, "h");
  EXPECT_EQ(r2.headers[0].value, "2");
  const Record& r4 = (*records)[2];
  EXPECT_EQ(r4.offset, 104);
  EXPECT_EQ(r4.timestamp, kTs + 40);
  EXPECT_EQ(r4.key, "k4");
  EXPECT_EQ(r4.value, std::nullopt);  // a tombstone stays one
}

TEST_P(FilterBatchTest, FilteringARewrittenBatchAgainKeepsItsOffsets) {
  const std::string batch = SixRecords(GetParam());
  auto once = FilterBatch(View(batch),
                          [](const RecordView& r) { return r.offset != 100; });
  ASSERT_THAT(once, IsOk());
  ASSERT_EQ(once->kind, FilteredBatch::Kind::kRewritten);
  auto twice = FilterBatch(View(once->bytes),
                           [](const RecordView& r) { return r.offset == 105; });
  ASSERT_THAT(twice, IsOk());
  ASSERT_EQ(twice->kind, FilteredBatch::Kind::kRewritten);
  RUNNEL_EXPECT_OK(ValidateBatch(
      twice->bytes, {.source = BatchSource::kDisk, .offset_gaps = true}));
  auto records = View(twice->bytes).DecodeRecords(BatchSource::kDisk);
  ASSERT_THAT(records, IsOk());
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ((*records)[0].offset, 105);
  EXPECT_EQ((*records)[0].timestamp, kTs + 50);
  EXPECT_EQ(View(twice->bytes).last_offset_delta(), 5);
}

TEST_P(FilterBatchTest, LogAppendTimeBatchKeepsItsMaxTimestamp) {
  std::string batch = SixRecords(GetParam(), TimestampType::kLogAppendTime);
  StampLogAppendTime(batch.data(), batch.size(), kTs + 999);
  auto filtered = FilterBatch(
      View(batch), [](const RecordView& r) { return r.offset == 100; });
  ASSERT_THAT(filtered, IsOk());
  ASSERT_EQ(filtered->kind, FilteredBatch::Kind::kRewritten);
  RUNNEL_EXPECT_OK(ValidateBatch(
      filtered->bytes, {.source = BatchSource::kDisk, .offset_gaps = true}));
  const RecordBatchView after = View(filtered->bytes);
  EXPECT_EQ(after.max_timestamp(), kTs + 999);
  auto records = after.DecodeRecords(BatchSource::kDisk);
  ASSERT_THAT(records, IsOk());
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ((*records)[0].timestamp, kTs + 999);
}

INSTANTIATE_TEST_SUITE_P(
    Codecs, FilterBatchTest,
    ::testing::Values(Compression::kNone, Compression::kGzip,
                      Compression::kSnappy, Compression::kLz4,
                      Compression::kZstd),
    [](const auto& info) { return std::string(CompressionName(info.param)); });

// Sets lastOffsetDelta and recomputes the CRC.
std::string WithLastOffsetDelta(std::string batch, int32_t delta) {
  StoreBe32(batch.data() + 23, static_cast<uint32_t>(delta));
  StoreBe32(batch.data() + 17, Crc32c(batch.data() + 21, batch.size() - 21));
  return batch;
}

TEST(ValidateOffsetGapsTest, ConsecutiveBatchStillValidates) {
  const std::string batch = SixRecords(Compression::kNone);
  RUNNEL_EXPECT_OK(ValidateBatch(
      batch, {.source = BatchSource::kDisk, .offset_gaps = true}));
}

TEST(ValidateOffsetGapsTest, LastOffsetDeltaBelowTheRecordsIsRefused) {
  const std::string batch =
      WithLastOffsetDelta(SixRecords(Compression::kNone), 4);
  EXPECT_THAT(
      ValidateBatch(batch, {.source = BatchSource::kDisk, .offset_gaps = true}),
      StatusIs(absl::StatusCode::kDataLoss));
}

TEST(ValidateOffsetGapsTest, LastOffsetDeltaAboveTheRecordsIsAccepted) {
  const std::string batch =
      WithLastOffsetDelta(SixRecords(Compression::kNone), 9);
  RUNNEL_EXPECT_OK(ValidateBatch(
      batch, {.source = BatchSource::kDisk, .offset_gaps = true}));
  EXPECT_THAT(ValidateBatch(batch, {.source = BatchSource::kDisk}),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST(ValidateRequireKeysTest, RecordWithoutKeyIsRefused) {
  const std::string batch = SixRecords(Compression::kLz4);  // record 2: no key
  RUNNEL_EXPECT_OK(ValidateBatch(batch, {}));
  EXPECT_THAT(ValidateBatch(batch, {.require_keys = true}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ValidateRequireKeysTest, KeyedRecordsPass) {
  RecordBatchBuilder builder;
  builder.Append(kTs, "a", "1");
  builder.Append(kTs, "", std::nullopt);  // an empty key is a key
  const std::string batch = builder.Build().value();
  RUNNEL_EXPECT_OK(ValidateBatch(batch, {.require_keys = true}));
}

}  // namespace
}  // namespace runnel::log
