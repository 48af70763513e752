#include "log/compression.h"

#include <lz4frame.h>
#include <snappy.h>
#include <zlib.h>
#include <zstd.h>

#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "common/endian.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/wait_for.h"

namespace runnel::log {
namespace {

using ::runnel::testing::IsOk;
using ::runnel::testing::StatusIs;

constexpr size_t kLimit = 64 << 20;

std::string Text(size_t n) {
  std::string s;
  while (s.size() < n) s += "the quick brown fox jumps over the lazy dog ";
  s.resize(n);
  return s;
}

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

class CompressionCodecTest : public ::testing::TestWithParam<Compression> {};

TEST_P(CompressionCodecTest, RoundTripsTextRandomAndEmptyInput) {
  const uint64_t seed = ::runnel::testing::TestSeed();
  SCOPED_TRACE(absl::StrCat("seed=", seed));
  for (const std::string& input : {std::string(), std::string("x"),
                                   Text(100000), RandomBytes(300000, seed)}) {
    std::string compressed = "prefix";
    RUNNEL_ASSERT_OK(Compress(GetParam(), input, 0, compressed));
    ASSERT_EQ(compressed.substr(0, 6), "prefix");  // Compress appends
    std::string out = "stale";
    RUNNEL_ASSERT_OK(Decompress(
        GetParam(), std::string_view(compressed).substr(6), kLimit, out));
    EXPECT_TRUE(out == input) << "size " << input.size();
  }
}

TEST_P(CompressionCodecTest, CompressesRepetitiveText) {
  const std::string input = Text(1 << 20);
  std::string compressed;
  RUNNEL_ASSERT_OK(Compress(GetParam(), input, 0, compressed));
  EXPECT_LT(compressed.size(), input.size() / 4);
}

TEST_P(CompressionCodecTest, OutputOverTheLimitIsResourceExhausted) {
  const std::string input(1 << 20, 'a');
  std::string compressed;
  RUNNEL_ASSERT_OK(Compress(GetParam(), input, 0, compressed));
  std::string out;
  EXPECT_THAT(Decompress(GetParam(), compressed, input.size() - 1, out),
              StatusIs(absl::StatusCode::kResourceExhausted));
  RUNNEL_EXPECT_OK(Decompress(GetParam(), compressed, input.size(), out));
  EXPECT_EQ(out.size(), input.size());
}

TEST_P(CompressionCodecTest, TruncatedInputIsInvalidArgument) {
  const std::string input = Text(50000);
  std::string compressed;
  RUNNEL_ASSERT_OK(Compress(GetParam(), input, 0, compressed));
  for (size_t cut : {size_t{1}, size_t{4}, compressed.size() / 2}) {
    SCOPED_TRACE(absl::StrCat("cut=", cut));
    std::string out;
    EXPECT_THAT(
        Decompress(
            GetParam(),
            std::string_view(compressed).substr(0, compressed.size() - cut),
            kLimit, out),
        StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

TEST_P(CompressionCodecTest, GarbageIsInvalidArgument) {
  std::string out;
  EXPECT_THAT(Decompress(GetParam(), "definitely not compressed", kLimit, out),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Decompress(GetParam(), "", kLimit, out),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(CompressionCodecTest, FlippedBytesNeverCrash) {
  const uint64_t seed = ::runnel::testing::TestSeed();
  SCOPED_TRACE(absl::StrCat("seed=", seed));
  std::mt19937_64 rng(seed);
  const std::string input = Text(20000) + RandomBytes(2000, seed);
  std::string compressed;
  RUNNEL_ASSERT_OK(Compress(GetParam(), input, 0, compressed));
  for (int i = 0; i < 200; ++i) {
    std::string damaged = compressed;
    damaged[rng() % damaged.size()] ^= static_cast<char>(1 + rng() % 255);
    std::string out;
    absl::Status s = Decompress(GetParam(), damaged, 1 << 20, out);
    // Either detected, or (without a checksum) different output within limit.
    if (s.ok()) {
      EXPECT_LE(out.size(), size_t{1} << 20);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllCodecs, CompressionCodecTest,
                         ::testing::Values(Compression::kGzip,
                                           Compression::kSnappy,
                                           Compression::kLz4,
                                           Compression::kZstd),
                         [](const ::testing::TestParamInfo<Compression>& info) {
                           return std::string(CompressionName(info.param));
                         });

TEST(CompressionTest, NoneIsNotACodec) {
  std::string out;
  EXPECT_THAT(Compress(Compression::kNone, "x", 0, out),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Decompress(Compression::kNone, "x", kLimit, out),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Decompress(static_cast<Compression>(6), "x", kLimit, out),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CompressionTest, GzipWritesAGzipMember) {
  std::string compressed;
  RUNNEL_ASSERT_OK(Compress(Compression::kGzip, "hello", 0, compressed));
  ASSERT_GE(compressed.size(), 2u);
  EXPECT_EQ(static_cast<uint8_t>(compressed[0]), 0x1f);
  EXPECT_EQ(static_cast<uint8_t>(compressed[1]), 0x8b);
}

TEST(CompressionTest, GzipConcatenatedMembersDecodeAsOne) {
  std::string compressed;
  RUNNEL_ASSERT_OK(Compress(Compression::kGzip, "hello ", 0, compressed));
  RUNNEL_ASSERT_OK(Compress(Compression::kGzip, "world", 9, compressed));
  std::string out;
  RUNNEL_ASSERT_OK(Decompress(Compression::kGzip, compressed, kLimit, out));
  EXPECT_EQ(out, "hello world");
}

TEST(CompressionTest, Lz4WritesTheFrameFormat) {
  std::string compressed;
  RUNNEL_ASSERT_OK(Compress(Compression::kLz4, Text(1000), 0, compressed));
  ASSERT_GE(compressed.size(), 4u);
  EXPECT_EQ(LoadBe32(compressed.data()), 0x04224D18u);  // magic 0x184D2204 LE
  // FLG: version 01, independent blocks, no block checksum, no content size,
  // no content checksum; BD: 64 KiB blocks. What Kafka's
  // KafkaLZ4BlockOutputStream writes.
  EXPECT_EQ(static_cast<uint8_t>(compressed[4]), 0x60);
  EXPECT_EQ(static_cast<uint8_t>(compressed[5]), 0x40);
}

TEST(CompressionTest, Lz4FrameWithContentSizeAndChecksumDecodes) {
  const std::string input = Text(200000);
  LZ4F_preferences_t prefs{};
  prefs.frameInfo.contentSize = input.size();
  prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
  prefs.frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
  std::string compressed(LZ4F_compressFrameBound(input.size(), &prefs), '\0');
  const size_t n = LZ4F_compressFrame(compressed.data(), compressed.size(),
                                      input.data(), input.size(), &prefs);
  ASSERT_FALSE(LZ4F_isError(n));
  compressed.resize(n);
  std::string out;
  RUNNEL_ASSERT_OK(Decompress(Compression::kLz4, compressed, kLimit, out));
  EXPECT_TRUE(out == input);
  // The checksums catch a flipped byte.
  compressed[compressed.size() / 2] ^= 0x01;
  EXPECT_THAT(Decompress(Compression::kLz4, compressed, kLimit, out),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CompressionTest, ZstdStreamedFrameWithoutContentSizeDecodes) {
  const std::string input = Text(300000);
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  // As a streaming compressor that never learns the size writes it.
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
  std::string compressed(ZSTD_compressBound(input.size()), '\0');
  ZSTD_inBuffer in{input.data(), input.size(), 0};
  ZSTD_outBuffer out_buf{compressed.data(), compressed.size(), 0};
  size_t rc;
  do {
    rc = ZSTD_compressStream2(cctx, &out_buf, &in, ZSTD_e_end);
    ASSERT_FALSE(ZSTD_isError(rc));
  } while (rc != 0);
  ZSTD_freeCCtx(cctx);
  compressed.resize(out_buf.pos);
  ASSERT_EQ(ZSTD_getFrameContentSize(compressed.data(), compressed.size()),
            ZSTD_CONTENTSIZE_UNKNOWN);
  std::string out;
  RUNNEL_ASSERT_OK(Decompress(Compression::kZstd, compressed, kLimit, out));
  EXPECT_TRUE(out == input);
  EXPECT_THAT(Decompress(Compression::kZstd, compressed, 1000, out),
              StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST(CompressionTest, ZstdDeclaredSizeOverTheLimitIsRefusedUpFront) {
  std::string compressed;
  RUNNEL_ASSERT_OK(
      Compress(Compression::kZstd, std::string(100000, 'q'), 0, compressed));
  std::string out;
  EXPECT_THAT(Decompress(Compression::kZstd, compressed, 99999, out),
              StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST(CompressionTest, SnappyWritesRawSnappy) {
  const std::string input = Text(5000);
  std::string compressed;
  RUNNEL_ASSERT_OK(Compress(Compression::kSnappy, input, 0, compressed));
  std::string raw;
  ASSERT_TRUE(snappy::Uncompress(compressed.data(), compressed.size(), &raw));
  EXPECT_EQ(raw, input);
}

// snappy-java's framing: magic, version, compatible version, then
// [BE32 length][raw snappy] chunks.
std::string XerialFrame(const std::vector<std::string>& chunks) {
  std::string framed(kXerialMagic);
  framed += std::string("\0\0\0\1\0\0\0\1", 8);
  for (const std::string& chunk : chunks) {
    std::string compressed;
    snappy::Compress(chunk.data(), chunk.size(), &compressed);
    char length[4];
    StoreBe32(length, static_cast<uint32_t>(compressed.size()));
    framed.append(length, 4);
    framed += compressed;
  }
  return framed;
}

TEST(CompressionTest, SnappyXerialFramingDecodes) {
  const std::string a = Text(40000);
  const std::string b = RandomBytes(3000, 7);
  std::string out;
  RUNNEL_ASSERT_OK(
      Decompress(Compression::kSnappy, XerialFrame({a, b}), kLimit, out));
  EXPECT_TRUE(out == a + b);
  // A header with no chunks is an empty stream.
  RUNNEL_ASSERT_OK(
      Decompress(Compression::kSnappy, XerialFrame({}), kLimit, out));
  EXPECT_TRUE(out.empty());
}

TEST(CompressionTest, SnappyXerialDamageIsInvalidArgument) {
  const std::string framed = XerialFrame({Text(40000), Text(100)});
  std::string out;
  // Truncated header, chunk length, chunk body.
  for (size_t keep : {size_t{12}, kXerialHeaderSize + 2, framed.size() - 1}) {
    SCOPED_TRACE(absl::StrCat("keep=", keep));
    EXPECT_THAT(
        Decompress(Compression::kSnappy,
                   std::string_view(framed).substr(0, keep), kLimit, out),
        StatusIs(absl::StatusCode::kInvalidArgument));
  }
  // Chunk length past the end.
  std::string bad = framed;
  StoreBe32(bad.data() + kXerialHeaderSize, 0x7fffffff);
  EXPECT_THAT(Decompress(Compression::kSnappy, bad, kLimit, out),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // Limit across chunks.
  EXPECT_THAT(Decompress(Compression::kSnappy, framed, 40050, out),
              StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST(CompressionTest, SnappyImpossibleDeclaredLengthIsRefused) {
  // A raw snappy block declaring 60 MiB from a few bytes.
  std::string block;
  uint32_t n = 60u << 20;
  while (n >= 0x80) {
    block.push_back(static_cast<char>((n & 0x7f) | 0x80));
    n >>= 7;
  }
  block.push_back(static_cast<char>(n));
  block += "abc";
  std::string out;
  EXPECT_THAT(Decompress(Compression::kSnappy, block, kLimit, out),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace runnel::log
