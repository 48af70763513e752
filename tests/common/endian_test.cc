#include "common/endian.h"

#include "gtest/gtest.h"

namespace runnel {
namespace {

TEST(EndianTest, StoresMostSignificantByteFirst) {
  unsigned char buf[8];
  StoreBe32(buf, 0x01020304u);
  EXPECT_EQ(buf[0], 0x01);
  EXPECT_EQ(buf[3], 0x04);
  EXPECT_EQ(LoadBe32(buf), 0x01020304u);
  StoreBe64(buf, 0x0102030405060708ull);
  EXPECT_EQ(buf[0], 0x01);
  EXPECT_EQ(buf[7], 0x08);
  EXPECT_EQ(LoadBe64(buf), 0x0102030405060708ull);
  StoreBe16(buf, 0xA1B2);
  EXPECT_EQ(buf[0], 0xA1);
  EXPECT_EQ(LoadBe16(buf), 0xA1B2);
}

}  // namespace
}  // namespace runnel
