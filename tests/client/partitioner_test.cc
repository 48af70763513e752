#include "runnel/partitioner.h"

#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "tests/testing/wait_for.h"

namespace runnel::client {
namespace {

// Expected values are the Java implementation's results, as published in
// Apache Kafka's UtilsTest.testMurmur2.
TEST(Murmur2Test, MatchesKafkaUtilsTestVectors) {
  EXPECT_EQ(Murmur2("21"), -973932308);
  EXPECT_EQ(Murmur2("foobar"), -790332482);
  EXPECT_EQ(Murmur2("a-little-bit-long-string"), -985981536);
  EXPECT_EQ(Murmur2("a-little-bit-longer-string"), -1486304829);
  EXPECT_EQ(Murmur2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58897971);
  EXPECT_EQ(Murmur2("abc"), 479470107);
}

// kafkajs' Java-compatible partitioner pins these (generated with Kafka's
// Java client, src/producer/partitioners/defaultJava/Test.java): every tail
// length 0..3 and negative results.
TEST(Murmur2Test, MatchesJavaGeneratedVectorsForNumericStrings) {
  EXPECT_EQ(Murmur2("0"), 971027396);
  EXPECT_EQ(Murmur2("1"), -1993445489);
  EXPECT_EQ(Murmur2("128"), -326012175);
  EXPECT_EQ(Murmur2("2187"), -1508407203);
  EXPECT_EQ(Murmur2("16384"), -325739742);
  EXPECT_EQ(Murmur2("78125"), -1654490814);
  EXPECT_EQ(Murmur2("279936"), 1462227128);
  EXPECT_EQ(Murmur2("823543"), -2014198330);
  EXPECT_EQ(Murmur2("2097152"), 607668903);
  EXPECT_EQ(Murmur2("10000000"), -1830336757);
  EXPECT_EQ(Murmur2("170859375"), -1658323481);
  EXPECT_EQ(Murmur2("100:48069"), 1009543857);
}

// kafka-python's test_murmur2_java_compatibility: partitions out of 1000
// compared with Kafka's Java partitioner.
TEST(PartitionForKeyTest, MatchesKafkaJavaPartitionsOutOfThousand) {
  EXPECT_EQ(PartitionForKey("", 1000), 681);
  EXPECT_EQ(PartitionForKey("a", 1000), 524);
  EXPECT_EQ(PartitionForKey("ab", 1000), 434);
  EXPECT_EQ(PartitionForKey("abc", 1000), 107);
  EXPECT_EQ(PartitionForKey("123456789", 1000), 566);
  EXPECT_EQ(PartitionForKey(std::string("\x00 ", 2), 1000), 742);
}

// Table from a Go Kafka client's tests: toPositive(murmur2) and the partition
// for 2, 3, 100 and 999 partitions, including a multi-byte UTF-8 key.
TEST(PartitionForKeyTest, MatchesPublishedTableForSeveralPartitionCounts) {
  struct Case {
    std::string key;
    int32_t positive;
    int32_t p2, p3, p100, p999;
  };
  const Case cases[] = {
      {"", 275646681, 1, 0, 81, 603},
      {"\xe2\x8c\x98", 39915425, 1, 2, 25, 380},
      {"oh no", 939168436, 0, 1, 36, 544},
      {"c03a3475-3ed6-4ed1-8ae5-1c432da43e73", 376769867, 1, 2, 67, 14},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.key);
    EXPECT_EQ(Murmur2(c.key) & 0x7fffffff, c.positive);
    EXPECT_EQ(PartitionForKey(c.key, 2), c.p2);
    EXPECT_EQ(PartitionForKey(c.key, 3), c.p3);
    EXPECT_EQ(PartitionForKey(c.key, 100), c.p100);
    EXPECT_EQ(PartitionForKey(c.key, 999), c.p999);
  }
}

TEST(PartitionForKeyTest, NegativeHashClearsSignBitInsteadOfAbs) {
  // murmur2("21") is negative; Kafka masks with 0x7fffffff (not abs()).
  const int32_t masked = -973932308 & 0x7fffffff;
  EXPECT_EQ(PartitionForKey("21", 7), masked % 7);
}

TEST(StickyPartitionerTest, SticksToOnePartitionUntilBatchCompletes) {
  StickyPartitioner sticky(testing::TestSeed());
  const int32_t first = sticky.Partition("t", 8);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sticky.Partition("t", 8), first);
  sticky.OnBatchCompleted("t", first, 8);
  const int32_t second = sticky.Partition("t", 8);
  EXPECT_NE(second, first);
  EXPECT_EQ(sticky.Partition("t", 8), second);
}

TEST(StickyPartitionerTest, CompletionOfOtherPartitionDoesNotSwitch) {
  StickyPartitioner sticky(testing::TestSeed());
  const int32_t current = sticky.Partition("t", 4);
  sticky.OnBatchCompleted("t", (current + 1) % 4, 4);
  EXPECT_EQ(sticky.Partition("t", 4), current);
}

TEST(StickyPartitionerTest, TopicsAreIndependentAndEveryPartitionIsUsed) {
  const uint64_t seed = testing::TestSeed();
  SCOPED_TRACE(absl::StrCat("seed=", seed));
  StickyPartitioner sticky(seed);
  std::set<int32_t> seen;
  for (int i = 0; i < 200; ++i) {
    const int32_t p = sticky.Partition("a", 5);
    ASSERT_GE(p, 0);
    ASSERT_LT(p, 5);
    seen.insert(p);
    sticky.OnBatchCompleted("a", p, 5);
  }
  EXPECT_EQ(seen.size(), 5u);
  const int32_t b = sticky.Partition("b", 3);
  sticky.OnBatchCompleted("a", sticky.Partition("a", 5), 5);
  EXPECT_EQ(sticky.Partition("b", 3), b);
}

TEST(StickyPartitionerTest, SinglePartitionAlwaysZeroAndShrinkRepicks) {
  StickyPartitioner sticky(1);
  EXPECT_EQ(sticky.Partition("one", 1), 0);
  sticky.OnBatchCompleted("one", 0, 1);
  EXPECT_EQ(sticky.Partition("one", 1), 0);
  int32_t p = sticky.Partition("s", 100);
  EXPECT_LT(sticky.Partition("s", p == 0 ? 100 : p), p == 0 ? 100 : p);
}

}  // namespace
}  // namespace runnel::client
