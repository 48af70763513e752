#include "common/varint.h"

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "gtest/gtest.h"

namespace runnel {
namespace {

TEST(VarintTest, ZigZagMapsSmallMagnitudesToSmallNumbers) {
  EXPECT_EQ(ZigZagEncode32(0), 0u);
  EXPECT_EQ(ZigZagEncode32(-1), 1u);
  EXPECT_EQ(ZigZagEncode32(1), 2u);
  EXPECT_EQ(ZigZagEncode32(-2), 3u);
  EXPECT_EQ(ZigZagEncode32(std::numeric_limits<int32_t>::max()), 0xFFFFFFFEu);
  EXPECT_EQ(ZigZagEncode32(std::numeric_limits<int32_t>::min()), 0xFFFFFFFFu);
  EXPECT_EQ(ZigZagEncode64(-1), 1u);
}

TEST(VarintTest, KnownEncodings) {
  std::string out;
  AppendVarint32(out, 0);
  AppendVarint32(out, -1);
  AppendVarint32(out, 1);
  AppendVarint32(out, 64);  // zigzag 128: two bytes
  EXPECT_EQ(out, std::string("\x00\x01\x02\x80\x01", 5));
}

TEST(VarintTest, RoundTripsBoundaries32) {
  for (int32_t v : {0, 1, -1, 63, -64, 64, -65, 8191, -8192,
                    std::numeric_limits<int32_t>::max(),
                    std::numeric_limits<int32_t>::min()}) {
    std::string out;
    AppendVarint32(out, v);
    EXPECT_EQ(out.size(), VarintSize32(v));
    std::string_view in = out;
    int32_t back = 0;
    ASSERT_TRUE(GetVarint32(in, back)) << v;
    EXPECT_EQ(back, v);
    EXPECT_TRUE(in.empty());
  }
}

TEST(VarintTest, RoundTripsBoundaries64) {
  for (int64_t v : {int64_t{0}, int64_t{-1}, int64_t{1} << 40,
                    std::numeric_limits<int64_t>::max(),
                    std::numeric_limits<int64_t>::min()}) {
    std::string out;
    AppendVarint64(out, v);
    EXPECT_EQ(out.size(), VarintSize64(v));
    std::string_view in = out;
    int64_t back = 0;
    ASSERT_TRUE(GetVarint64(in, back)) << v;
    EXPECT_EQ(back, v);
  }
  std::string max_out;
  AppendVarint64(max_out, std::numeric_limits<int64_t>::min());
  EXPECT_EQ(max_out.size(), kMaxVarint64Bytes);
}

// The inline one- and two-byte paths agree with the general code on every
// value around them (and a truncated two-byte varint still fails).
TEST(VarintTest, FastPathsMatchTheGeneralCode) {
  for (int64_t v = -20000; v <= 20000; ++v) {
    SCOPED_TRACE(v);
    const auto v32 = static_cast<int32_t>(v);
    char fast[kMaxVarint64Bytes];
    char slow[kMaxVarint64Bytes];
    const size_t n32 = PutVarint32(fast, v32);
    ASSERT_EQ(n32, PutVarint32Slow(slow, v32));
    ASSERT_EQ(std::string_view(fast, n32), std::string_view(slow, n32));
    ASSERT_EQ(VarintSize32(v32), n32);
    ASSERT_EQ(VarintSize32Slow(v32), n32);
    std::string_view in(fast, n32);
    int32_t back32 = 0;
    ASSERT_TRUE(GetVarint32(in, back32));
    ASSERT_EQ(back32, v32);
    ASSERT_TRUE(in.empty());
    in = std::string_view(slow, n32);
    ASSERT_TRUE(GetVarint32Slow(in, back32));
    ASSERT_EQ(back32, v32);

    const size_t n64 = PutVarint64(fast, v);
    ASSERT_EQ(n64, PutVarint64Slow(slow, v));
    ASSERT_EQ(std::string_view(fast, n64), std::string_view(slow, n64));
    ASSERT_EQ(VarintSize64(v), n64);
    in = std::string_view(fast, n64);
    int64_t back64 = 0;
    ASSERT_TRUE(GetVarint64(in, back64));
    ASSERT_EQ(back64, v);
    ASSERT_TRUE(in.empty());

    if (n32 > 1) {  // cut short: fails and leaves the input alone
      std::string_view cut(fast, n32 - 1);
      int32_t untouched = 7;
      ASSERT_FALSE(GetVarint32(cut, untouched));
      ASSERT_EQ(cut.size(), n32 - 1);
      ASSERT_EQ(untouched, 7);
    }
  }
}

TEST(VarintTest, TruncatedInputFailsAndLeavesInputAlone) {
  std::string_view in("\x80\x80", 2);
  int32_t v = 7;
  EXPECT_FALSE(GetVarint32(in, v));
  EXPECT_EQ(in.size(), 2u);
  EXPECT_EQ(v, 7);
}

TEST(VarintTest, OverlongVarint32IsRejected) {
  // Six bytes: longer than any int32 encoding.
  std::string_view six("\x80\x80\x80\x80\x80\x00", 6);
  int32_t v;
  EXPECT_FALSE(GetVarint32(six, v));
  // Five bytes whose last byte carries bits beyond 32.
  std::string_view overflow("\xff\xff\xff\xff\x1f", 5);
  EXPECT_FALSE(GetVarint32(overflow, v));
  std::string_view max("\xff\xff\xff\xff\x0f", 5);
  EXPECT_TRUE(GetVarint32(max, v));
  EXPECT_EQ(v, std::numeric_limits<int32_t>::min());
}

TEST(VarintTest, OverlongVarint64IsRejected) {
  std::string_view eleven("\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00", 11);
  int64_t v;
  EXPECT_FALSE(GetVarint64(eleven, v));
  std::string_view overflow("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 10);
  EXPECT_FALSE(GetVarint64(overflow, v));
}

}  // namespace
}  // namespace runnel
