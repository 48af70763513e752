// The consumer verifies batch CRCs (check_crcs, Kafka's check.crcs): a batch
// damaged on the broker's disk is reported, never handed out.

#include <fstream>
#include <iterator>
#include <string>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/broker_process.h"
#include "tests/testing/scoped_temp_dir.h"
#include "tests/testing/status_matchers.h"

#include "runnel/admin.h"
#include "runnel/consumer.h"
#include "runnel/producer.h"

namespace runnel::client {
namespace {

using ::runnel::testing::BrokerProcess;
using ::runnel::testing::BrokerProcessOptions;
using ::runnel::testing::IsOk;
using ::runnel::testing::ScopedTempDir;
using ::runnel::testing::StatusIs;
using ::testing::HasSubstr;

// Flips one byte of the first occurrence of `needle` in the file.
void FlipByteOf(const std::string& path, const std::string& needle) {
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const size_t at = bytes.find(needle);
  ASSERT_NE(at, std::string::npos) << needle << " not in " << path;
  bytes[at + needle.size() / 2] ^= 0x20;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

absl::StatusOr<std::vector<ConsumerRecord>> PollFromBeginning(
    const std::string& bootstrap, bool check_crcs) {
  ConsumerOptions o;
  o.bootstrap = bootstrap;
  o.auto_offset_reset = OffsetReset::kEarliest;
  o.check_crcs = check_crcs;
  auto consumer = Consumer::Create(o);
  if (!consumer.ok()) return consumer.status();
  if (absl::Status s = (*consumer)->Assign({{"crc", 0}}); !s.ok()) return s;
  std::vector<ConsumerRecord> all;
  while (all.size() < 2) {
    auto records = (*consumer)->Poll(absl::Seconds(30));
    if (!records.ok()) return records.status();
    if (records->empty()) break;
    all.insert(all.end(), records->begin(), records->end());
  }
  return all;
}

TEST(ConsumerCrcTest, CorruptBatchOnDiskFailsPollWithDataLoss) {
  ScopedTempDir dir;
  BrokerProcessOptions options;
  options.data_dir = dir.Sub("data");
  auto broker = BrokerProcess::Start(options);
  ASSERT_THAT(broker, IsOk());
  // Larger than a disk block: the reopened segment's writer keeps its last
  // partial block in memory, so the damaged batch must lie before it.
  const std::string good(8192, 'g');
  const std::string damaged(8192, 'd');
  {
    auto admin = Admin::Create({(*broker)->address()}).value();
    ASSERT_THAT(admin->CreateTopic({"crc", 1}), IsOk());
    ProducerOptions o;
    o.bootstrap = (*broker)->address();
    auto producer = Producer::Create(o).value();
    // One batch each: the second send starts after the first is acked.
    ASSERT_THAT(producer->Send({.topic = "crc", .value = damaged}).get(),
                IsOk());
    ASSERT_THAT(producer->Send({.topic = "crc", .value = good}).get(), IsOk());
  }
  // Restarted, the broker serves the batches from the file (no tail cache
  // holds them); a bit flipped on disk now, after its recovery checked
  // them, reaches the consumer.
  ASSERT_THAT((*broker)->Stop(), IsOk());
  ASSERT_THAT((*broker)->Restart(), IsOk());
  FlipByteOf(dir.Sub("data") + "/crc-0/00000000000000000000.log", damaged);

  absl::StatusOr<std::vector<ConsumerRecord>> checked =
      PollFromBeginning((*broker)->address(), /*check_crcs=*/true);
  EXPECT_THAT(checked, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(checked.status().message(), HasSubstr("fails its CRC32C check"));

  // Without the check the damaged value comes through: the CRC is what
  // caught it.
  auto unchecked = PollFromBeginning((*broker)->address(), false);
  ASSERT_THAT(unchecked, IsOk());
  ASSERT_EQ(unchecked->size(), 2u);
  ASSERT_TRUE((*unchecked)[0].value.has_value());
  EXPECT_NE(*(*unchecked)[0].value, damaged);
  EXPECT_EQ((*unchecked)[1].value, good);
}

}  // namespace
}  // namespace runnel::client
