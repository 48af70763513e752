// RecordBytes, and validation of batches held in pieces: ValidateBatchPieces
// and FrameBatchHead must give exactly what ValidateBatch and Parse give for
// the joined bytes, for every way of cutting them.

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "common/check.h"
#include "common/crc32c.h"
#include "common/endian.h"
#include "log/record_batch.h"
#include "log/record_bytes.h"

namespace runnel::log {
namespace {

// Cuts `bytes` after each position in `cuts` (ascending, inside the bytes).
std::vector<std::string_view> Cut(std::string_view bytes,
                                  const std::vector<size_t>& cuts) {
  std::vector<std::string_view> pieces;
  size_t from = 0;
  for (size_t c : cuts) {
    pieces.push_back(bytes.substr(from, c - from));
    from = c;
  }
  pieces.push_back(bytes.substr(from));
  return pieces;
}

// ValidateBatchPieces of `batch` with its header copied out and its body cut
// at `cuts` (positions in the body).
absl::Status ValidatePieces(const std::string& batch,
                            const std::vector<size_t>& cuts,
                            const ValidateOptions& options) {
  const size_t head = std::min(batch.size(), kBatchHeaderSize);
  const std::string header = batch.substr(0, head);
  const std::string_view body = std::string_view(batch).substr(head);
  std::vector<size_t> inside;
  for (size_t c : cuts) {
    if (c < body.size()) inside.push_back(c);
  }
  return ValidateBatchPieces(header, Cut(body, inside), options);
}

// Cut patterns for a body of `n` bytes: none, every byte, every 3 bytes, and
// a few random ones.
std::vector<std::vector<size_t>> CutPatterns(size_t n, std::mt19937& rng) {
  std::vector<std::vector<size_t>> patterns(1);
  for (size_t step : {1, 3, 7}) {
    std::vector<size_t> cuts;
    for (size_t c = step; c < n; c += step) cuts.push_back(c);
    patterns.push_back(cuts);
  }
  for (int r = 0; r < 3 && n > 1; ++r) {
    std::vector<size_t> cuts;
    for (size_t c = 1 + rng() % 5; c < n; c += 1 + rng() % 9) {
      cuts.push_back(c);
    }
    patterns.push_back(cuts);
  }
  return patterns;
}

void FixCrc(std::string& batch) {
  if (batch.size() < kBatchHeaderSize) return;
  StoreBe32(batch.data() + kCrcPos, Crc32c(batch.data() + kAttributesPos,
                                           batch.size() - kAttributesPos));
}

std::string BuildBatch(Compression compression, int records,
                       size_t value_size) {
  RecordBatchBuilder builder(BatchBuilderOptions{.compression = compression});
  for (int i = 0; i < records; ++i) {
    const std::string value(value_size + i, static_cast<char>('a' + i % 26));
    if (i % 3 == 2) {
      builder.Append(1000 + i, std::nullopt, std::nullopt);
    } else {
      builder.Append(
          1000 + i, std::string(i + 1, 'k'), value,
          std::vector<RecordHeader>{{"h", "v"}, {"n", std::nullopt}});
    }
  }
  absl::StatusOr<std::string> b = builder.Build();
  RUNNEL_CHECK(b.ok());
  return *b;
}

void ExpectSameVerdict(const std::string& batch, std::mt19937& rng,
                       const ValidateOptions& options) {
  const absl::Status joined = ValidateBatch(batch, options);
  const size_t body =
      batch.size() > kBatchHeaderSize ? batch.size() - kBatchHeaderSize : 0;
  for (const std::vector<size_t>& cuts : CutPatterns(body, rng)) {
    const absl::Status pieces = ValidatePieces(batch, cuts, options);
    ASSERT_EQ(pieces, joined)
        << "batch of " << batch.size() << " bytes, " << cuts.size() << " cuts";
  }
}

TEST(ValidateBatchPiecesTest, ValidBatchesPassCutAnyWay) {
  std::mt19937 rng(1);
  for (Compression c :
       {Compression::kNone, Compression::kZstd, Compression::kLz4,
        Compression::kGzip, Compression::kSnappy}) {
    const std::string batch = BuildBatch(c, 7, 20);
    ASSERT_TRUE(ValidateBatch(batch).ok());
    ExpectSameVerdict(batch, rng, {});
  }
}

TEST(ValidateBatchPiecesTest, EveryByteChangedGivesValidateBatchsVerdict) {
  std::mt19937 rng(2);
  for (Compression c : {Compression::kNone, Compression::kZstd}) {
    const std::string good = BuildBatch(c, 5, 3);
    for (size_t pos = 0; pos < good.size(); ++pos) {
      for (uint8_t x : {0x01, 0x80, 0xff}) {
        std::string bad = good;
        bad[pos] = static_cast<char>(bad[pos] ^ x);
        // As sent (mostly a CRC mismatch) and with the CRC fixed, so that
        // the checks behind it see the change.
        ExpectSameVerdict(bad, rng, {});
        FixCrc(bad);
        ExpectSameVerdict(bad, rng, {});
        ExpectSameVerdict(bad, rng, {.check_crc = false});
      }
    }
  }
}

TEST(ValidateBatchPiecesTest, TruncatedAndExtendedBatchesGiveTheSameErrors) {
  std::mt19937 rng(3);
  const std::string good = BuildBatch(Compression::kNone, 6, 10);
  for (size_t n = 0; n < good.size(); ++n) {
    std::string cut = good.substr(0, n);
    ExpectSameVerdict(cut, rng, {});
    // The batch length shortened to match: the records run out instead.
    if (n >= kBatchHeaderSize) {
      StoreBe32(cut.data() + kBatchLengthPos,
                static_cast<uint32_t>(n - kBatchLogOverhead));
      FixCrc(cut);
      ExpectSameVerdict(cut, rng, {});
    }
  }
  ExpectSameVerdict(good + "x", rng, {});
}

TEST(ValidateBatchPiecesTest, SizeLimitAppliesToTheWholeBatch) {
  std::mt19937 rng(4);
  const std::string batch = BuildBatch(Compression::kNone, 4, 100);
  ExpectSameVerdict(batch, rng, {.max_batch_bytes = batch.size()});
  ExpectSameVerdict(batch, rng, {.max_batch_bytes = batch.size() - 1});
  EXPECT_FALSE(ValidatePieces(batch, {1, 2}, {.max_batch_bytes = 100}).ok());
}

TEST(ValidateBatchPiecesTest, RecordLargerThanEveryPieceIsCheckedFromACopy) {
  std::mt19937 rng(5);
  const std::string batch = BuildBatch(Compression::kNone, 3, 5000);
  ExpectSameVerdict(batch, rng, {});
  std::vector<size_t> cuts;
  for (size_t c = 100; c < batch.size(); c += 100) cuts.push_back(c);
  EXPECT_TRUE(ValidatePieces(batch, cuts, {}).ok());
}

TEST(FrameBatchHeadTest, AgreesWithParse) {
  const std::string good = BuildBatch(Compression::kNone, 2, 4) + "tail";
  for (size_t n = 0; n <= good.size(); ++n) {
    const std::string_view bytes = std::string_view(good).substr(0, n);
    absl::StatusOr<RecordBatchView> parsed = RecordBatchView::Parse(bytes);
    absl::StatusOr<size_t> framed =
        FrameBatchHead(bytes.substr(0, std::min(n, kBatchHeaderSize)), n);
    ASSERT_EQ(framed.status(), parsed.status()) << n;
    if (parsed.ok()) {
      EXPECT_EQ(*framed, parsed->size_bytes());
    }
  }
  std::string bad_magic = good;
  bad_magic[kMagicPos] = 1;
  EXPECT_EQ(FrameBatchHead(std::string_view(bad_magic).substr(0, 61),
                           bad_magic.size())
                .status(),
            RecordBatchView::Parse(bad_magic).status());
}

TEST(RecordBatchViewTest, HeaderViewReadsTheHeaderFields) {
  RecordBatchBuilder builder;
  builder.SetProducerState(42, 3, 17);
  builder.Append(5, "k", "v");
  builder.Append(9, "k", "v");
  const std::string batch = *builder.Build();
  const RecordBatchView whole = *RecordBatchView::Parse(batch);
  const RecordBatchView head =
      RecordBatchView::HeaderView(std::string_view(batch).substr(0, 61));
  EXPECT_EQ(head.producer_id(), 42);
  EXPECT_EQ(head.producer_epoch(), 3);
  EXPECT_EQ(head.base_sequence(), 17);
  EXPECT_EQ(head.last_offset_delta(), whole.last_offset_delta());
  EXPECT_EQ(head.max_timestamp(), 9);
  EXPECT_EQ(head.batch_length(), whole.batch_length());
  EXPECT_EQ(head.crc(), whole.crc());
}

TEST(RecordBytesTest, StringFormIsTheString) {
  RecordBytes bytes(std::string("abcdef"));
  EXPECT_TRUE(bytes.is_string());
  EXPECT_EQ(bytes.size(), 6u);
  std::vector<std::string_view> views;
  bytes.Slice(1, 3, views);
  EXPECT_THAT(views, testing::ElementsAre("bcd"));
  char out[2];
  bytes.CopyTo(0, 2, out);
  EXPECT_EQ(std::string_view(out, 2), "ab");
  EXPECT_EQ(std::move(bytes).TakeString(), "abcdef");
}

TEST(RecordBytesTest, PiecesSliceCopyAndJoinAcrossBoundaries) {
  auto owner = std::make_shared<std::string>("0123456789");
  const std::string_view all = *owner;
  RecordBytes bytes(
      {all.substr(0, 3), all.substr(3, 0), all.substr(3, 4), all.substr(7)},
      owner);
  EXPECT_FALSE(bytes.is_string());
  EXPECT_EQ(bytes.size(), 10u);
  std::vector<std::string_view> views;
  bytes.Slice(2, 6, views);
  EXPECT_THAT(views, testing::ElementsAre("2", "3456", "7"));
  views.clear();
  bytes.Slice(3, 4, views);
  EXPECT_THAT(views, testing::ElementsAre("3456"));
  views.clear();
  bytes.Slice(10, 0, views);
  EXPECT_TRUE(views.empty());
  std::string out(5, '-');
  bytes.CopyTo(1, 5, out.data());
  EXPECT_EQ(out, "12345");
  EXPECT_EQ(Crc32cPieces(0, std::vector<std::string_view>{"01", "23456789"}),
            Crc32c(all));
  owner.reset();  // the RecordBytes still holds the memory
  EXPECT_EQ(std::move(bytes).TakeString(), "0123456789");
}

}  // namespace
}  // namespace runnel::log
