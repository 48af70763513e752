#include "common/crc32c.h"

#include <random>
#include <string>
#include <string_view>

#include "gtest/gtest.h"

namespace runnel {
namespace {

TEST(Crc32cTest, StandardCheckValue) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
}

TEST(Crc32cTest, EmptyInputIsZero) { EXPECT_EQ(Crc32c(""), 0u); }

// RFC 3720 (iSCSI) appendix B.4 test vectors.
TEST(Crc32cTest, Rfc3720Vectors) {
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  std::string ascending(32, '\0');
  std::string descending(32, '\0');
  for (int i = 0; i < 32; ++i) {
    ascending[i] = static_cast<char>(i);
    descending[i] = static_cast<char>(31 - i);
  }
  EXPECT_EQ(Crc32c(ascending), 0x46DD794Eu);
  EXPECT_EQ(Crc32c(descending), 0x113FDB5Cu);
}

TEST(Crc32cTest, ExtendEqualsWhole) {
  const std::string a = "The quick brown fox ";
  const std::string b = "jumps over the lazy dog";
  EXPECT_EQ(Crc32cExtend(Crc32c(a), b.data(), b.size()), Crc32c(a + b));
}

TEST(Crc32cTest, CombineEqualsWholeForEverySplit) {
  std::mt19937_64 rng(7);
  std::string data((1 << 20) + 13, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  const uint32_t whole = Crc32c(data);
  for (size_t split :
       {size_t{0}, size_t{1}, size_t{63}, size_t{4096}, size_t{61},
        size_t{65536}, data.size() - 1, data.size()}) {
    const std::string_view a = std::string_view(data).substr(0, split);
    const std::string_view b = std::string_view(data).substr(split);
    EXPECT_EQ(Crc32cCombine(Crc32c(a), Crc32c(b), b.size()), whole)
        << "split at " << split;
  }
  for (int i = 0; i < 200; ++i) {
    const size_t split = rng() % (data.size() + 1);
    const std::string_view a = std::string_view(data).substr(0, split);
    const std::string_view b = std::string_view(data).substr(split);
    ASSERT_EQ(Crc32cCombine(Crc32c(a), Crc32c(b), b.size()), whole)
        << "split at " << split;
  }
}

}  // namespace
}  // namespace runnel
