#include "broker/broker_core.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "broker/errors.h"
#include "common/clock.h"
#include "common/crc32c.h"
#include "common/endian.h"
#include "log/io_thread.h"
#include "log/record_batch.h"
#include "tests/broker/test_util.h"
#include "tests/testing/scoped_temp_dir.h"
#include "tests/testing/status_matchers.h"

namespace runnel::broker {
namespace {

using ::runnel::broker::testing::FetchSync;
using ::runnel::broker::testing::MakeBatch;
using ::runnel::broker::testing::ProduceSync;
using ::runnel::testing::IsOk;
using ::runnel::testing::StatusIs;

class BrokerCoreTest : public ::testing::Test {
 protected:
  void SetUp() override { OpenCore(); }
  void TearDown() override { CloseCore(); }

  void OpenCore(absl::Duration reorder_wait = Partition::kDefaultReorderWait,
                int io_threads = 1) {
    BrokerCoreOptions options;
    options.io_threads = io_threads;
    options.data_dir = dir_.Sub("data");
    options.start_background_threads = false;
    options.reorder_wait = reorder_wait;
    options.clock = clock_;
    options.producer_id_expiration = producer_id_expiration_;
    options.producer_id_expiration_check_interval = absl::ZeroDuration();
    auto core = BrokerCore::Open(std::move(options));
    ASSERT_THAT(core, IsOk());
    core_ = *std::move(core);
  }
  void CloseCore() {
    if (core_ != nullptr) {
      RUNNEL_EXPECT_OK(core_->Close());
    }
    core_.reset();
  }
  void CreateTopic(const std::string& name, int partitions = 1,
                   ConfigMap configs = {}) {
    RUNNEL_ASSERT_OK(core_->topics().CreateTopic(
        {.name = name, .num_partitions = partitions, .configs = configs},
        false));
  }
  log::Offset LogEnd(const std::string& topic, int32_t partition = 0) {
    auto p = core_->topics().GetPartition(topic, partition);
    EXPECT_THAT(p, IsOk());
    return p.ok() ? (*p)->State().log_end_offset : -1;
  }

  runnel::testing::ScopedTempDir dir_;
  // The core's clock and producer-id expiration (checked at every
  // idempotent request: no check interval).
  Clock* clock_ = SystemClock::Default();
  absl::Duration producer_id_expiration_ = absl::Hours(24);
  std::unique_ptr<BrokerCore> core_;
};

TEST_F(BrokerCoreTest, InvalidTopicNamesAreRejected) {
  const std::string bad[] = {"../x", ".",   "..",  std::string(250, 'a'),
                             "",     "a/b", "a b", "tópico"};
  for (const std::string& name : bad) {
    SCOPED_TRACE(name);
    absl::Status s = core_->topics().CreateTopic({.name = name}, false);
    EXPECT_EQ(ErrorKindOf(s), ErrorKind::kInvalidTopic) << s;
  }
  RUNNEL_EXPECT_OK(
      core_->topics().CreateTopic({.name = std::string(249, 'a')}, false));
  RUNNEL_EXPECT_OK(core_->topics().CreateTopic({.name = "a.b_c-D9"}, false));
  EXPECT_EQ(core_->topics().ListTopics().size(), 2u);
}

TEST_F(BrokerCoreTest, CreateTopicValidatesCountsConfigsAndDuplicates) {
  auto create = [&](NewTopicSpec spec) {
    return ErrorKindOf(core_->topics().CreateTopic(spec, false));
  };
  EXPECT_EQ(create({.name = "t", .num_partitions = -1}),
            ErrorKind::kInvalidPartitions);
  EXPECT_EQ(create({.name = "t", .num_partitions = 10001}),
            ErrorKind::kInvalidPartitions);
  EXPECT_EQ(create({.name = "t", .replication_factor = 3}),
            ErrorKind::kInvalidReplicationFactor);
  EXPECT_EQ(create({.name = "t", .configs = {{"nope", "1"}}}),
            ErrorKind::kInvalidConfig);
  EXPECT_EQ(create({.name = "t", .configs = {{"retention.ms", "x"}}}),
            ErrorKind::kInvalidConfig);
  EXPECT_TRUE(core_->topics().ListTopics().empty());
  RUNNEL_EXPECT_OK(core_->topics().CreateTopic({.name = "t"}, true));
  EXPECT_TRUE(core_->topics().ListTopics().empty()) << "validate_only created";
  EXPECT_EQ(create({.name = "t", .num_partitions = 3}), ErrorKind::kNone);
  EXPECT_EQ(create({.name = "t"}), ErrorKind::kTopicAlreadyExists);
  auto d = core_->topics().Describe("t");
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->partitions.size(), 3u);
}

TEST_F(BrokerCoreTest, ProducedBatchIsFetchedBackByteExact) {
  CreateTopic("t");
  const std::string batch = MakeBatch(5);
  ProduceResult r = ProduceSync(*core_, "t", 0, batch);
  RUNNEL_ASSERT_OK(r.status);
  EXPECT_EQ(r.base_offset, 0);
  EXPECT_EQ(r.last_offset, 4);
  ReadResult f = FetchSync(*core_, "t", 0, 0);
  RUNNEL_ASSERT_OK(f.status);
  EXPECT_EQ(f.records, batch);
  EXPECT_EQ(f.high_watermark, 5);
  EXPECT_EQ(f.log_end_offset, 5);
  EXPECT_EQ(f.log_start_offset, 0);

  // A second batch gets the next offsets; only the base offset differs.
  ProduceResult r2 = ProduceSync(*core_, "t", 0, MakeBatch(2));
  RUNNEL_ASSERT_OK(r2.status);
  EXPECT_EQ(r2.base_offset, 5);
  ReadResult f2 = FetchSync(*core_, "t", 0, 5);
  RUNNEL_ASSERT_OK(f2.status);
  EXPECT_EQ(f2.records, MakeBatch(2, 1'700'000'000'000, 5));
}

TEST_F(BrokerCoreTest, AcksAllAnswersOnlyOnceDurable) {
  CreateTopic("t");
  auto p = core_->topics().GetPartition("t", 0);
  ASSERT_THAT(p, IsOk());
  ProduceInput input;
  input.acks = Acks::kAll;
  input.partitions.push_back({{"t", 0}, MakeBatch(3)});
  absl::Notification done;
  log::Offset hw_at_ack = -1;
  core_->Produce(std::move(input), [&](std::vector<ProduceResult> results) {
    EXPECT_THAT(results.at(0).status, IsOk());
    hw_at_ack = (*p)->high_watermark();
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_GE(hw_at_ack, 3);
}

TEST_F(BrokerCoreTest, AcksAllAnswersRequestTimedOutWhenDurabilityIsLate) {
  CreateTopic("t");
  log::IoThread* io = core_->logs().io_thread_for("t", 0);
  ASSERT_NE(io, nullptr);
  // Hold the partition's I/O thread: no write or fsync completes meanwhile,
  // so the batch cannot become durable before the request timeout.
  absl::Notification held;
  absl::Notification release;
  io->Post([&] {
    held.Notify();
    release.WaitForNotification();
  });
  held.WaitForNotification();
  ProduceInput input;
  input.acks = Acks::kAll;
  input.timeout = absl::Milliseconds(20);
  input.partitions.push_back({{"t", 0}, MakeBatch(3)});
  absl::Notification answered;
  ProduceResult result;
  core_->Produce(std::move(input), [&](std::vector<ProduceResult> results) {
    result = results.at(0);
    answered.Notify();
  });
  const bool answered_while_held =
      answered.WaitForNotificationWithTimeout(absl::Seconds(30));
  release.Notify();
  ASSERT_TRUE(answered_while_held);
  EXPECT_EQ(ErrorKindOf(result.status), ErrorKind::kRequestTimedOut)
      << result.status;
  EXPECT_TRUE(IsRetriable(ErrorKind::kRequestTimedOut));
  // The batch was appended all the same: visible once durable.
  ReadResult f = FetchSync(*core_, "t", 0, 0, absl::Seconds(30));
  RUNNEL_ASSERT_OK(f.status);
  EXPECT_EQ(f.records, MakeBatch(3));
}

TEST_F(BrokerCoreTest, AcksNoneAndLeaderAppendAndBecomeVisible) {
  CreateTopic("t");
  ProduceResult none = ProduceSync(*core_, "t", 0, MakeBatch(1), Acks::kNone);
  RUNNEL_ASSERT_OK(none.status);
  ProduceResult leader =
      ProduceSync(*core_, "t", 0, MakeBatch(1), Acks::kLeader);
  RUNNEL_ASSERT_OK(leader.status);
  EXPECT_EQ(leader.base_offset, 1);
  // The HW follows by itself (the broker asks for durability of every append).
  ReadResult f = FetchSync(*core_, "t", 0, 0, absl::Seconds(30), 0);
  RUNNEL_ASSERT_OK(f.status);
  EXPECT_FALSE(f.records.empty());
  auto p = core_->topics().GetPartition("t", 0);
  ASSERT_THAT(p, IsOk());
  ASSERT_THAT((*p)->ListOffset(kLatestTimestamp), IsOk());
}

TEST_F(BrokerCoreTest, MalformedBatchesAreRejectedAndNothingIsWritten) {
  CreateTopic("t");
  RUNNEL_ASSERT_OK(ProduceSync(*core_, "t", 0, MakeBatch(2)).status);
  const std::string good = MakeBatch(3);

  std::string bad_crc = good;
  bad_crc[bad_crc.size() - 1] ^= 0x01;
  std::string truncated = good.substr(0, good.size() - 5);
  std::string bad_magic = good;
  bad_magic[log::kMagicPos] = 1;
  std::string short_header = good.substr(0, 30);
  // A good batch followed by a bad one: the good one is not written either.
  std::string good_then_bad = good + bad_crc;

  const std::pair<const char*, std::string> cases[] = {
      {"bad crc", bad_crc},
      {"truncated", truncated},
      {"bad magic", bad_magic},
      {"short header", short_header},
      {"good then bad", good_then_bad}};
  for (const auto& [name, bytes] : cases) {
    SCOPED_TRACE(name);
    ProduceResult r = ProduceSync(*core_, "t", 0, bytes);
    EXPECT_EQ(ErrorKindOf(r.status), ErrorKind::kCorruptMessage) << r.status;
    EXPECT_EQ(LogEnd("t"), 2);
  }
  ProduceResult empty = ProduceSync(*core_, "t", 0, "");
  EXPECT_EQ(ErrorKindOf(empty.status), ErrorKind::kInvalidRequest);
  ReadResult f = FetchSync(*core_, "t", 0, 2);
  RUNNEL_ASSERT_OK(f.status);
  EXPECT_TRUE(f.records.empty());
}

// Control batches (transaction markers) come from the broker only, as in
// Kafka; a producer's is refused and nothing of its request is written.
TEST_F(BrokerCoreTest, AControlBatchFromAProducerIsInvalidRecord) {
  CreateTopic("t");
  log::BatchBuilderOptions options;
  options.control = true;
  log::RecordBatchBuilder builder(options);
  builder.Append(1'700'000'000'000, std::string("\0\0\0\0", 4),
                 std::string("\0\0\0\0\0\0", 6));
  absl::StatusOr<std::string> control = builder.Build();
  ASSERT_THAT(control, IsOk());
  for (const std::string& bytes : {*control, MakeBatch(2) + *control}) {
    ProduceResult r = ProduceSync(*core_, "t", 0, bytes);
    EXPECT_EQ(ErrorKindOf(r.status), ErrorKind::kInvalidRecord) << r.status;
    EXPECT_THAT(std::string(r.status.message()),
                ::testing::HasSubstr("control batches"));
    EXPECT_EQ(LogEnd("t"), 0);
  }
}

TEST_F(BrokerCoreTest, InvalidRecordsInsideAWellFramedBatchAreInvalidRecord) {
  CreateTopic("t");
  std::string batch = MakeBatch(3);
  // Claim 4 records while 3 are present, then fix the CRC so only the
  // record-level validation can catch it.
  StoreBe32(&batch[log::kRecordCountPos], 4);
  const uint32_t crc = Crc32c(batch.data() + log::kAttributesPos,
                              batch.size() - log::kAttributesPos);
  StoreBe32(&batch[log::kCrcPos], crc);
  ProduceResult r = ProduceSync(*core_, "t", 0, batch);
  EXPECT_EQ(ErrorKindOf(r.status), ErrorKind::kInvalidRecord) << r.status;
  EXPECT_EQ(LogEnd("t"), 0);
}

TEST_F(BrokerCoreTest,
       AGoodBatchBeforeOneWithInvalidRecordsIsNotWrittenEither) {
  CreateTopic("t");
  std::string bad = MakeBatch(3);
  StoreBe32(&bad[log::kLastOffsetDeltaPos], 1);  // 3 records, delta 1
  StoreBe32(&bad[log::kCrcPos], Crc32c(bad.data() + log::kAttributesPos,
                                       bad.size() - log::kAttributesPos));
  ProduceResult r = ProduceSync(*core_, "t", 0, MakeBatch(2) + bad);
  EXPECT_EQ(ErrorKindOf(r.status), ErrorKind::kInvalidRecord) << r.status;
  EXPECT_THAT(std::string(r.status.message()), ::testing::HasSubstr("t-0"));
  EXPECT_EQ(LogEnd("t"), 0);
  RUNNEL_EXPECT_OK(ProduceSync(*core_, "t", 0, MakeBatch(2)).status);
  EXPECT_EQ(LogEnd("t"), 2);
}

TEST_F(BrokerCoreTest, OversizeBatchIsRecordTooLarge) {
  CreateTopic("t", 1, {{"max.message.bytes", "1000"}});
  ProduceResult r = ProduceSync(*core_, "t", 0, MakeBatch(1, 0, 0, 2000));
  EXPECT_EQ(ErrorKindOf(r.status), ErrorKind::kRecordTooLarge) << r.status;
  EXPECT_EQ(LogEnd("t"), 0);
  RUNNEL_EXPECT_OK(ProduceSync(*core_, "t", 0, MakeBatch(1, 0, 0, 100)).status);
}

// One batch of (key, value) records, stamped like the broker stamps it.
std::string KeyedBatch(
    const std::vector<std::pair<std::optional<std::string>, std::string>>&
        records) {
  log::RecordBatchBuilder builder({.partition_leader_epoch = 0});
  for (const auto& [key, value] : records) {
    builder.Append(1'700'000'000'000, key, value);
  }
  return builder.Build().value();
}

// Every record of `bytes`: offset, key, value.
std::vector<std::tuple<log::Offset, std::string, std::string>> Records(
    const std::string& bytes) {
  std::vector<std::tuple<log::Offset, std::string, std::string>> out;
  auto batches = log::SplitBatches(bytes, log::BatchSource::kDisk);
  EXPECT_THAT(batches, IsOk());
  if (!batches.ok()) return out;
  for (const log::RecordBatchView& batch : *batches) {
    auto records = batch.DecodeRecords(log::BatchSource::kDisk);
    EXPECT_THAT(records, IsOk());
    if (!records.ok()) continue;
    for (const log::Record& r : *records) {
      out.emplace_back(r.offset, r.key.value_or("<null>"),
                       r.value.value_or("<null>"));
    }
  }
  return out;
}

TEST_F(BrokerCoreTest, CompactedTopicRefusesRecordsWithoutKeys) {
  CreateTopic("c", 1, {{"cleanup.policy", "compact"}});
  RUNNEL_ASSERT_OK(
      ProduceSync(*core_, "c", 0, KeyedBatch({{"k", "1"}})).status);
  ProduceResult r = ProduceSync(*core_, "c", 0,
                                KeyedBatch({{"k", "2"}, {std::nullopt, "x"}}));
  EXPECT_EQ(ErrorKindOf(r.status), ErrorKind::kInvalidRecord) << r.status;
  EXPECT_THAT(std::string(r.status.message()), ::testing::HasSubstr("key"));
  EXPECT_EQ(LogEnd("c"), 1);  // nothing of the batch was written
  // A topic that is not compacted takes the same batch.
  CreateTopic("d");
  RUNNEL_EXPECT_OK(
      ProduceSync(*core_, "d", 0, KeyedBatch({{"k", "2"}, {std::nullopt, "x"}}))
          .status);
  // Turning compaction on later refuses them from then on.
  RUNNEL_ASSERT_OK(core_->topics().AlterConfigs(
      "d", {{ConfigChange::Op::kSet, "cleanup.policy", "compact,delete"}},
      false));
  r = ProduceSync(*core_, "d", 0, KeyedBatch({{std::nullopt, "x"}}));
  EXPECT_EQ(ErrorKindOf(r.status), ErrorKind::kInvalidRecord) << r.status;
  EXPECT_EQ(LogEnd("d"), 2);
}

TEST_F(BrokerCoreTest, CompactionPassLeavesTheLatestValuePerKey) {
  const size_t one_batch = KeyedBatch({{"a", "1"}}).size();
  // One batch per segment: every batch but the last is in a closed segment.
  CreateTopic("c", 1,
              {{"cleanup.policy", "compact"},
               {"segment.bytes", std::to_string(one_batch)}});
  const std::pair<const char*, const char*> writes[] = {
      {"a", "1"}, {"b", "1"}, {"a", "2"}, {"c", "1"},
      {"b", "2"}, {"a", "3"}, {"c", "2"}, {"d", "1"}};
  for (const auto& [key, value] : writes) {
    RUNNEL_ASSERT_OK(
        ProduceSync(*core_, "c", 0, KeyedBatch({{key, value}})).status);
  }
  ASSERT_EQ(LogEnd("c"), 8);
  RUNNEL_ASSERT_OK(core_->logs().RunRetention());
  EXPECT_EQ(core_->logs().records_removed_by_compaction(), 4);

  std::vector<std::tuple<log::Offset, std::string, std::string>> got;
  for (log::Offset offset = 0; offset < 8;) {
    ReadResult f = FetchSync(*core_, "c", 0, offset);
    RUNNEL_ASSERT_OK(f.status);
    EXPECT_EQ(f.log_start_offset, 0);
    EXPECT_EQ(f.high_watermark, 8);
    auto records = Records(f.records);
    ASSERT_FALSE(records.empty()) << "fetch at " << offset;
    got.insert(got.end(), records.begin(), records.end());
    offset = std::get<0>(records.back()) + 1;
  }
  using R = std::tuple<log::Offset, std::string, std::string>;
  EXPECT_THAT(got, ::testing::ElementsAre(R{4, "b", "2"}, R{5, "a", "3"},
                                          R{6, "c", "2"}, R{7, "d", "1"}));
  EXPECT_THAT(core_->RenderMetrics(),
              ::testing::HasSubstr(
                  "\nrunnel_log_compaction_records_removed_total 4\n"));
  // Appends go on at the same end offset, and a restart keeps it all.
  RUNNEL_ASSERT_OK(
      ProduceSync(*core_, "c", 0, KeyedBatch({{"e", "1"}})).status);
  EXPECT_EQ(LogEnd("c"), 9);
  CloseCore();
  OpenCore();
  ReadResult f = FetchSync(*core_, "c", 0, 3);
  RUNNEL_ASSERT_OK(f.status);
  auto records = Records(f.records);
  ASSERT_FALSE(records.empty());
  EXPECT_EQ(records.front(), (R{4, "b", "2"}));
  EXPECT_EQ(LogEnd("c"), 9);
}

TEST_F(BrokerCoreTest, UnknownTopicOrPartitionIsTyped) {
  CreateTopic("t", 2);
  EXPECT_EQ(ErrorKindOf(ProduceSync(*core_, "nope", 0, MakeBatch(1)).status),
            ErrorKind::kUnknownTopicOrPartition);
  EXPECT_EQ(ErrorKindOf(ProduceSync(*core_, "t", 2, MakeBatch(1)).status),
            ErrorKind::kUnknownTopicOrPartition);
  EXPECT_EQ(ErrorKindOf(ProduceSync(*core_, "t", -1, MakeBatch(1)).status),
            ErrorKind::kUnknownTopicOrPartition);
  EXPECT_EQ(ErrorKindOf(FetchSync(*core_, "nope", 0, 0).status),
            ErrorKind::kUnknownTopicOrPartition);
  EXPECT_EQ(ErrorKindOf(FetchSync(*core_, "../x", 0, 0).status),
            ErrorKind::kInvalidTopic);
  EXPECT_EQ(ErrorKindOf(core_->ListOffset({"t", 7}, kEarliestTimestamp).status),
            ErrorKind::kUnknownTopicOrPartition);
}

TEST_F(BrokerCoreTest, OneBadPartitionDoesNotFailTheOthers) {
  CreateTopic("t", 2);
  ProduceInput input;
  input.partitions.push_back({{"t", 0}, MakeBatch(1)});
  input.partitions.push_back({{"t", 1}, std::string("garbage")});
  input.partitions.push_back({{"t", 9}, MakeBatch(1)});
  input.partitions.push_back({{"t", 0}, MakeBatch(1)});  // duplicate
  absl::Notification done;
  std::vector<ProduceResult> results;
  core_->Produce(std::move(input), [&](std::vector<ProduceResult> r) {
    results = std::move(r);
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  ASSERT_EQ(results.size(), 4u);
  EXPECT_THAT(results[0].status, IsOk());
  EXPECT_EQ(ErrorKindOf(results[1].status), ErrorKind::kCorruptMessage);
  EXPECT_EQ(ErrorKindOf(results[2].status),
            ErrorKind::kUnknownTopicOrPartition);
  EXPECT_EQ(ErrorKindOf(results[3].status), ErrorKind::kInvalidRequest);
  EXPECT_EQ(LogEnd("t", 0), 1);
}

TEST_F(BrokerCoreTest, FetchOutsideTheLogIsOffsetOutOfRange) {
  CreateTopic("t");
  RUNNEL_ASSERT_OK(ProduceSync(*core_, "t", 0, MakeBatch(3)).status);
  EXPECT_EQ(ErrorKindOf(FetchSync(*core_, "t", 0, -1).status),
            ErrorKind::kOffsetOutOfRange);
  EXPECT_EQ(ErrorKindOf(FetchSync(*core_, "t", 0, 4).status),
            ErrorKind::kOffsetOutOfRange);
  ReadResult at_end = FetchSync(*core_, "t", 0, 3);
  RUNNEL_EXPECT_OK(at_end.status);
  EXPECT_TRUE(at_end.records.empty());
  // An offset inside a batch returns that whole batch.
  ReadResult inside = FetchSync(*core_, "t", 0, 1);
  RUNNEL_EXPECT_OK(inside.status);
  EXPECT_EQ(inside.records, MakeBatch(3));
}

TEST_F(BrokerCoreTest, ListOffsetsEarliestLatestAndByTime) {
  CreateTopic("t");
  RUNNEL_ASSERT_OK(ProduceSync(*core_, "t", 0, MakeBatch(3, 1000)).status);
  RUNNEL_ASSERT_OK(ProduceSync(*core_, "t", 0, MakeBatch(3, 2000)).status);
  EXPECT_EQ(core_->ListOffset({"t", 0}, kEarliestTimestamp).offset, 0);
  EXPECT_EQ(core_->ListOffset({"t", 0}, kLatestTimestamp).offset, 6);
  EXPECT_EQ(core_->ListOffset({"t", 0}, 0).offset, 0);
  EXPECT_EQ(core_->ListOffset({"t", 0}, 1001).offset, 1);
  EXPECT_EQ(core_->ListOffset({"t", 0}, 1500).offset, 3);
  EXPECT_EQ(core_->ListOffset({"t", 0}, 2002).offset, 5);
  EXPECT_EQ(core_->ListOffset({"t", 0}, 9999).offset, -1);
  EXPECT_EQ(ErrorKindOf(core_->ListOffset({"t", 0}, -5).status),
            ErrorKind::kInvalidRequest);
}

TEST_F(BrokerCoreTest, ListOffsetsByTimeReturnsTheFoundRecordsTimestamp) {
  CreateTopic("t");
  RUNNEL_ASSERT_OK(ProduceSync(*core_, "t", 0, MakeBatch(3, 1000)).status);
  RUNNEL_ASSERT_OK(ProduceSync(*core_, "t", 0, MakeBatch(3, 2000)).status);
  // Exact hit: the record at 1001 itself.
  ListOffsetResult exact = core_->ListOffset({"t", 0}, 1001);
  EXPECT_EQ(exact.offset, 1);
  EXPECT_EQ(exact.timestamp, 1001);
  // Between batches: the next record, with its own (later) timestamp.
  ListOffsetResult between = core_->ListOffset({"t", 0}, 1500);
  EXPECT_EQ(between.offset, 3);
  EXPECT_EQ(between.timestamp, 2000);
  // Earliest, latest and "no such record" carry no timestamp (Kafka).
  EXPECT_EQ(core_->ListOffset({"t", 0}, kEarliestTimestamp).timestamp, -1);
  EXPECT_EQ(core_->ListOffset({"t", 0}, kLatestTimestamp).timestamp, -1);
  ListOffsetResult none = core_->ListOffset({"t", 0}, 9999);
  EXPECT_EQ(none.offset, -1);
  EXPECT_EQ(none.timestamp, -1);
}

// Fetches `partitions` of topic "t" from offset 0 at once.
std::vector<ReadResult> FetchPartitions(BrokerCore& core,
                                        const std::vector<int32_t>& partitions,
                                        int32_t max_bytes,
                                        int32_t partition_max_bytes = 0) {
  FetchInput input;
  input.max_bytes = max_bytes;
  for (int32_t p : partitions) {
    input.partitions.push_back({{"t", p}, 0, partition_max_bytes});
  }
  absl::Notification done;
  std::vector<ReadResult> results;
  core.Fetch(std::move(input), [&](std::vector<ReadResult> r) {
    results = std::move(r);
    done.Notify();
  });
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  return results;
}

TEST_F(BrokerCoreTest, FetchMaxBytesLetsOnlyTheFirstBatchOfTheResponseExceed) {
  CreateTopic("t", 3);
  const std::string batch = MakeBatch(5, 1000, 0, 100);
  const size_t b = batch.size();
  for (int32_t p : {1, 2}) {
    for (int i = 0; i < 2; ++i) {
      RUNNEL_ASSERT_OK(ProduceSync(*core_, "t", p, batch).status);
    }
  }
  // Smaller than one batch: partition 0 is empty, so the first batch of
  // partition 1 (the first non-empty one) comes whole; nothing else.
  std::vector<ReadResult> tiny = FetchPartitions(*core_, {0, 1, 2}, b / 2);
  ASSERT_EQ(tiny.size(), 3u);
  EXPECT_EQ(tiny[0].records.size(), 0u);
  EXPECT_EQ(tiny[1].records.size(), b);
  EXPECT_EQ(tiny[2].records.size(), 0u);
  EXPECT_EQ(tiny[2].high_watermark, 10);  // still reported

  // Room for one and a half batches: one, and no batch past the limit.
  std::vector<ReadResult> half = FetchPartitions(*core_, {1, 2}, b + b / 2);
  ASSERT_EQ(half.size(), 2u);
  EXPECT_EQ(half[0].records.size(), b);
  EXPECT_EQ(half[1].records.size(), 0u);

  // Exactly three batches fit: two from partition 1, one from partition 2.
  std::vector<ReadResult> three = FetchPartitions(*core_, {1, 2}, 3 * b);
  ASSERT_EQ(three.size(), 2u);
  EXPECT_EQ(three[0].records.size(), 2 * b);
  EXPECT_EQ(three[1].records.size(), b);

  // A partition limit of one batch applies to every partition.
  std::vector<ReadResult> per_partition =
      FetchPartitions(*core_, {1, 2}, 10 * b, b);
  ASSERT_EQ(per_partition.size(), 2u);
  EXPECT_EQ(per_partition[0].records.size(), b);
  EXPECT_EQ(per_partition[1].records.size(), b);
}

TEST_F(BrokerCoreTest, PartitionMaxBytesHoldsAtSegmentBoundaries) {
  const std::string batch = MakeBatch(5, 1000, 0, 100);
  const size_t b = batch.size();
  // One batch per segment: a fetch of one partition ends at a segment end.
  CreateTopic("t", 1, {{"segment.bytes", std::to_string(b)}});
  for (int i = 0; i < 3; ++i) {
    RUNNEL_ASSERT_OK(ProduceSync(*core_, "t", 0, batch).status);
  }
  for (size_t limit : {b / 2, b, b + b / 2, 2 * b}) {
    SCOPED_TRACE(limit);
    ReadResult r = FetchSync(*core_, "t", 0, 0, absl::ZeroDuration(),
                             static_cast<int32_t>(limit));
    RUNNEL_ASSERT_OK(r.status);
    EXPECT_EQ(r.records.size(), b);  // never a batch of the next segment
  }
}

TEST_F(BrokerCoreTest, LongPollWakesWhenDataLands) {
  CreateTopic("t");
  FetchInput input;
  input.max_wait = absl::Seconds(60);
  input.min_bytes = 1;
  input.partitions.push_back({{"t", 0}, 0, 0});
  absl::Notification fetched;
  std::vector<ReadResult> results;
  core_->Fetch(std::move(input), [&](std::vector<ReadResult> r) {
    results = std::move(r);
    fetched.Notify();
  });
  // Nothing to read: the fetch is parked, not answered.
  EXPECT_FALSE(fetched.HasBeenNotified());
  const std::string batch = MakeBatch(4);
  RUNNEL_ASSERT_OK(ProduceSync(*core_, "t", 0, batch).status);
  // Woken by the high-watermark advance, long before the 60 s deadline.
  ASSERT_TRUE(fetched.WaitForNotificationWithTimeout(absl::Seconds(30)));
  ASSERT_EQ(results.size(), 1u);
  RUNNEL_EXPECT_OK(results[0].status);
  EXPECT_EQ(results[0].records, batch);
}

TEST_F(BrokerCoreTest, LongPollAnswersEmptyAtTheDeadline) {
  CreateTopic("t");
  const absl::Time start = absl::Now();
  ReadResult r = FetchSync(*core_, "t", 0, 0, absl::Milliseconds(100));
  RUNNEL_EXPECT_OK(r.status);
  EXPECT_TRUE(r.records.empty());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(100));
}

TEST_F(BrokerCoreTest, CloseAnswersParkedFetches) {
  CreateTopic("t");
  FetchInput input;
  input.max_wait = absl::Hours(1);
  input.partitions.push_back({{"t", 0}, 0, 0});
  absl::Notification fetched;
  core_->Fetch(std::move(input),
               [&](std::vector<ReadResult>) { fetched.Notify(); });
  EXPECT_FALSE(fetched.HasBeenNotified());
  core_->StopWaiting();
  EXPECT_TRUE(fetched.HasBeenNotified());
}

TEST_F(BrokerCoreTest, TopicsConfigsAndDataSurviveRestart) {
  CreateTopic("keep", 2, {{"retention.ms", "123456"}});
  CreateTopic("other", 1);
  const std::string batch = MakeBatch(3);
  RUNNEL_ASSERT_OK(ProduceSync(*core_, "keep", 1, batch).status);
  CloseCore();
  OpenCore();
  ASSERT_EQ(core_->topics().ListTopics().size(), 2u);
  auto d = core_->topics().Describe("keep");
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->partitions.size(), 2u);
  EXPECT_EQ(d->record.configs.at("retention.ms"), "123456");
  EXPECT_TRUE(core_->logs().opened_after_clean_shutdown());
  ReadResult f = FetchSync(*core_, "keep", 1, 0);
  RUNNEL_ASSERT_OK(f.status);
  EXPECT_EQ(f.records, batch);
  EXPECT_EQ(f.high_watermark, 3);
}

TEST_F(BrokerCoreTest, DeleteTopicRemovesItAndARecreatedTopicIsEmpty) {
  CreateTopic("t", 2);
  RUNNEL_ASSERT_OK(ProduceSync(*core_, "t", 0, MakeBatch(3)).status);
  RUNNEL_ASSERT_OK(core_->topics().DeleteTopic("t"));
  EXPECT_EQ(ErrorKindOf(core_->topics().DeleteTopic("t")),
            ErrorKind::kUnknownTopicOrPartition);
  EXPECT_EQ(ErrorKindOf(FetchSync(*core_, "t", 0, 0).status),
            ErrorKind::kUnknownTopicOrPartition);
  CreateTopic("t", 1);
  EXPECT_EQ(LogEnd("t"), 0);
  CloseCore();
  OpenCore();
  EXPECT_EQ(LogEnd("t"), 0);
  EXPECT_EQ(core_->topics().Describe("t")->partitions.size(), 1u);
}

TEST_F(BrokerCoreTest, AlterConfigsSetsAndDeletesAllOrNothing) {
  CreateTopic("t", 1, {{"retention.ms", "1000"}});
  using Op = ConfigChange::Op;
  RUNNEL_ASSERT_OK(core_->topics().AlterConfigs(
      "t",
      {{Op::kSet, "segment.ms", "5000"}, {Op::kDelete, "retention.ms", ""}},
      false));
  auto d = core_->topics().Describe("t");
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->record.configs, (ConfigMap{{"segment.ms", "5000"}}));
  // One bad change: nothing applies.
  EXPECT_EQ(
      ErrorKindOf(core_->topics().AlterConfigs(
          "t", {{Op::kSet, "segment.ms", "7"}, {Op::kSet, "bogus.key", "1"}},
          false)),
      ErrorKind::kInvalidConfig);
  EXPECT_EQ(core_->topics().Describe("t")->record.configs,
            (ConfigMap{{"segment.ms", "5000"}}));
  EXPECT_EQ(ErrorKindOf(core_->topics().AlterConfigs("nope", {}, false)),
            ErrorKind::kUnknownTopicOrPartition);
  // Applied to the live log: max.message.bytes takes effect at once.
  RUNNEL_ASSERT_OK(core_->topics().AlterConfigs(
      "t", {{Op::kSet, "max.message.bytes", "500"}}, false));
  EXPECT_EQ(
      ErrorKindOf(ProduceSync(*core_, "t", 0, MakeBatch(1, 0, 0, 1000)).status),
      ErrorKind::kRecordTooLarge);
}

TEST_F(BrokerCoreTest, CreatePartitionsOnlyGrows) {
  CreateTopic("t", 2);
  EXPECT_EQ(ErrorKindOf(core_->topics().CreatePartitions("t", 2, false)),
            ErrorKind::kInvalidPartitions);
  EXPECT_EQ(ErrorKindOf(core_->topics().CreatePartitions("t", 1, false)),
            ErrorKind::kInvalidPartitions);
  RUNNEL_ASSERT_OK(core_->topics().CreatePartitions("t", 4, false));
  RUNNEL_EXPECT_OK(ProduceSync(*core_, "t", 3, MakeBatch(1)).status);
  CloseCore();
  OpenCore();
  EXPECT_EQ(core_->topics().Describe("t")->partitions.size(), 4u);
  EXPECT_EQ(LogEnd("t", 3), 1);
}

TEST_F(BrokerCoreTest, ProducerIdsAreUniqueAcrossRestarts) {
  auto a = core_->InitProducerId();
  auto b = core_->InitProducerId();
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_NE(a->producer_id, b->producer_id);
  CloseCore();
  OpenCore();
  auto c = core_->InitProducerId();
  ASSERT_THAT(c, IsOk());
  EXPECT_GT(c->producer_id, b->producer_id);
}

// A batch of an idempotent producer: `count` records from sequence `seq`.
std::string IdempotentBatch(int64_t pid, int16_t epoch, int32_t seq,
                            int count) {
  log::BatchBuilderOptions options;
  options.producer_id = pid;
  options.producer_epoch = epoch;
  options.base_sequence = seq;
  log::RecordBatchBuilder builder(options);
  for (int i = 0; i < count; ++i) {
    builder.Append(1'700'000'000'000 + i, "key", "value" + std::to_string(i));
  }
  absl::StatusOr<std::string> batch = builder.Build();
  EXPECT_TRUE(batch.ok()) << batch.status();
  return batch.ok() ? *batch : std::string();
}

TEST_F(BrokerCoreTest, DuplicateBatchReturnsTheOriginalOffsetAndWritesNothing) {
  CreateTopic("t");
  auto pid = core_->InitProducerId();
  ASSERT_THAT(pid, IsOk());
  ASSERT_THAT(ProduceSync(*core_, "t", 0, MakeBatch(2)).status, IsOk());
  const std::string first = IdempotentBatch(pid->producer_id, 0, 0, 3);
  ProduceResult a = ProduceSync(*core_, "t", 0, first);
  ASSERT_THAT(a.status, IsOk());
  EXPECT_EQ(a.base_offset, 2);
  ASSERT_THAT(ProduceSync(*core_, "t", 0, MakeBatch(1)).status, IsOk());
  const log::Offset end = LogEnd("t");
  ASSERT_EQ(end, 6);

  for (Acks acks : {Acks::kAll, Acks::kLeader}) {
    ProduceResult dup = ProduceSync(*core_, "t", 0, first, acks);
    ASSERT_THAT(dup.status, IsOk());
    EXPECT_EQ(dup.base_offset, 2);
    EXPECT_EQ(dup.last_offset, 4);
  }
  EXPECT_EQ(LogEnd("t"), end);
  ProduceResult next =
      ProduceSync(*core_, "t", 0, IdempotentBatch(pid->producer_id, 0, 3, 1));
  ASSERT_THAT(next.status, IsOk());
  EXPECT_EQ(next.base_offset, 6);
}

TEST_F(BrokerCoreTest, SequenceErrorsAreTypedAndWriteNothing) {
  CreateTopic("t");
  const int64_t pid = core_->InitProducerId().value().producer_id;
  ASSERT_THAT(ProduceSync(*core_, "t", 0, IdempotentBatch(pid, 1, 0, 2)).status,
              IsOk());
  EXPECT_EQ(
      ErrorKindOf(
          ProduceSync(*core_, "t", 0, IdempotentBatch(pid, 1, 5, 1)).status),
      ErrorKind::kOutOfOrderSequence);
  EXPECT_EQ(
      ErrorKindOf(
          ProduceSync(*core_, "t", 0, IdempotentBatch(pid, 0, 2, 1)).status),
      ErrorKind::kInvalidProducerEpoch);
  EXPECT_EQ(
      ErrorKindOf(ProduceSync(*core_, "t", 0, IdempotentBatch(pid + 1, 0, 4, 1))
                      .status),
      ErrorKind::kUnknownProducerId);
  // Duplicates and new batches in one request.
  std::string mixed = IdempotentBatch(pid, 1, 0, 2);
  mixed += IdempotentBatch(pid, 1, 2, 1);
  EXPECT_EQ(ErrorKindOf(ProduceSync(*core_, "t", 0, mixed).status),
            ErrorKind::kDuplicateSequence);
  EXPECT_EQ(LogEnd("t"), 2);
}

TEST_F(BrokerCoreTest, SeveralBatchesOfOneProducerInOneRequestAreTracked) {
  CreateTopic("t");
  const int64_t pid = core_->InitProducerId().value().producer_id;
  std::string two = IdempotentBatch(pid, 0, 0, 2);
  two += IdempotentBatch(pid, 0, 2, 3);
  ASSERT_THAT(ProduceSync(*core_, "t", 0, two).status, IsOk());
  ProduceResult dup =
      ProduceSync(*core_, "t", 0, IdempotentBatch(pid, 0, 2, 3));
  ASSERT_THAT(dup.status, IsOk());
  EXPECT_EQ(dup.base_offset, 2);
  EXPECT_EQ(dup.last_offset, 4);
  EXPECT_EQ(LogEnd("t"), 5);
}

TEST_F(BrokerCoreTest, DuplicatesAreDetectedAfterARestart) {
  CreateTopic("t");
  const int64_t pid = core_->InitProducerId().value().producer_id;
  ASSERT_THAT(ProduceSync(*core_, "t", 0, MakeBatch(3)).status, IsOk());
  const std::string batch = IdempotentBatch(pid, 0, 0, 2);
  ASSERT_THAT(ProduceSync(*core_, "t", 0, batch).status, IsOk());
  CloseCore();
  OpenCore();
  ProduceResult dup = ProduceSync(*core_, "t", 0, batch);
  ASSERT_THAT(dup.status, IsOk());
  EXPECT_EQ(dup.base_offset, 3);
  EXPECT_EQ(LogEnd("t"), 5);
  EXPECT_EQ(
      ErrorKindOf(
          ProduceSync(*core_, "t", 0, IdempotentBatch(pid, 0, 3, 1)).status),
      ErrorKind::kOutOfOrderSequence);
  EXPECT_THAT(ProduceSync(*core_, "t", 0, IdempotentBatch(pid, 0, 2, 1)).status,
              IsOk());
}

// A produce request to t-0 whose answer the test collects later.
struct PendingProduce {
  absl::Notification done;
  ProduceResult result;
};
void StartProduce(BrokerCore& core, std::string records, PendingProduce& out) {
  ProduceInput input;
  input.acks = Acks::kLeader;
  input.partitions.push_back({{"t", 0}, std::move(records)});
  core.Produce(std::move(input), [&out](std::vector<ProduceResult> r) {
    out.result = r.at(0);
    out.done.Notify();
  });
}
ProduceResult Await(PendingProduce& p) {
  EXPECT_TRUE(p.done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  return p.result;
}

TEST_F(BrokerCoreTest, RequestsAheadOfTheirPredecessorsWaitWithoutAThread) {
  CloseCore();
  OpenCore(absl::Minutes(10));  // never expires during the test
  CreateTopic("t");
  const int64_t pid = core_->InitProducerId().value().producer_id;
  // All three from this one thread: a parked request must not hold it.
  PendingProduce third, second, first;
  StartProduce(*core_, IdempotentBatch(pid, 0, 5, 2), third);
  StartProduce(*core_, IdempotentBatch(pid, 0, 3, 2), second);
  EXPECT_FALSE(third.done.HasBeenNotified());
  EXPECT_FALSE(second.done.HasBeenNotified());
  EXPECT_EQ(LogEnd("t"), 0);
  StartProduce(*core_, IdempotentBatch(pid, 0, 0, 3), first);
  ProduceResult a = Await(first), b = Await(second), c = Await(third);
  ASSERT_THAT(a.status, IsOk());
  ASSERT_THAT(b.status, IsOk());
  ASSERT_THAT(c.status, IsOk());
  EXPECT_EQ(a.base_offset, 0);
  EXPECT_EQ(b.base_offset, 3);
  EXPECT_EQ(c.base_offset, 5);
  EXPECT_EQ(c.last_offset, 6);
  EXPECT_EQ(LogEnd("t"), 7);
}

TEST_F(BrokerCoreTest, AParkedRequestWhosePredecessorNeverComesFails) {
  CloseCore();
  OpenCore(absl::Milliseconds(20));
  CreateTopic("t");
  const int64_t pid = core_->InitProducerId().value().producer_id;
  ASSERT_THAT(ProduceSync(*core_, "t", 0, IdempotentBatch(pid, 0, 0, 2)).status,
              IsOk());
  ProduceResult gap =
      ProduceSync(*core_, "t", 0, IdempotentBatch(pid, 0, 4, 1), Acks::kLeader);
  EXPECT_EQ(ErrorKindOf(gap.status), ErrorKind::kOutOfOrderSequence)
      << gap.status;
  EXPECT_EQ(LogEnd("t"), 2);
  ProduceResult next =
      ProduceSync(*core_, "t", 0, IdempotentBatch(pid, 0, 2, 1), Acks::kLeader);
  ASSERT_THAT(next.status, IsOk());
  EXPECT_EQ(next.base_offset, 2);
}

TEST_F(BrokerCoreTest, ParkedRequestsAreAnsweredOnDeleteAndOnClose) {
  CloseCore();
  OpenCore(absl::Minutes(10));
  CreateTopic("t");
  const int64_t pid = core_->InitProducerId().value().producer_id;
  PendingProduce deleted;
  StartProduce(*core_, IdempotentBatch(pid, 0, 3, 1), deleted);
  RUNNEL_ASSERT_OK(core_->topics().DeleteTopic("t"));
  EXPECT_EQ(ErrorKindOf(Await(deleted).status),
            ErrorKind::kUnknownTopicOrPartition);

  CreateTopic("t");
  PendingProduce closed;
  StartProduce(*core_, IdempotentBatch(pid, 0, 3, 1), closed);
  EXPECT_FALSE(closed.done.HasBeenNotified());
  CloseCore();
  EXPECT_TRUE(closed.done.HasBeenNotified());
  EXPECT_NE(ErrorKindOf(closed.result.status), ErrorKind::kNone);
}

// Producer state across a clean restart comes from the snapshot: a producer
// whose last batch lies before the two segments the log rebuild reads is
// still known, so its retry is answered as a duplicate.
TEST_F(BrokerCoreTest, ACleanRestartKeepsProducersFromTheSnapshot) {
  CreateTopic("t", 1, {{"segment.bytes", "200"}});  // a segment per batch
  const int64_t pid = core_->InitProducerId().value().producer_id;
  const std::string batch = IdempotentBatch(pid, 0, 0, 2);
  ProduceResult first = ProduceSync(*core_, "t", 0, batch);
  ASSERT_THAT(first.status, IsOk());
  for (int i = 0; i < 4; ++i) {
    ASSERT_THAT(ProduceSync(*core_, "t", 0, MakeBatch(2)).status, IsOk());
  }
  CloseCore();
  const std::string snapshot =
      dir_.Sub("data") + "/t-0/producer-state.snapshot";
  ASSERT_TRUE(std::filesystem::exists(snapshot));
  OpenCore();
  EXPECT_FALSE(std::filesystem::exists(snapshot)) << "used once, then removed";
  ProduceResult dup = ProduceSync(*core_, "t", 0, batch);
  ASSERT_THAT(dup.status, IsOk());
  EXPECT_EQ(dup.base_offset, first.base_offset);
  EXPECT_EQ(LogEnd("t"), 10);
  // And the producer's next batch follows on.
  ProduceResult next =
      ProduceSync(*core_, "t", 0, IdempotentBatch(pid, 0, 2, 1));
  ASSERT_THAT(next.status, IsOk());
  EXPECT_EQ(next.base_offset, 10);
}

TEST_F(BrokerCoreTest, IdleProducersAreForgottenAfterTheExpiration) {
  ManualClock clock;
  CloseCore();
  clock_ = &clock;
  producer_id_expiration_ = absl::Seconds(10);
  OpenCore();
  CreateTopic("t");
  const int64_t idle = core_->InitProducerId().value().producer_id;
  const int64_t busy = core_->InitProducerId().value().producer_id;
  const std::string idle_first = IdempotentBatch(idle, 0, 0, 2);
  ASSERT_THAT(ProduceSync(*core_, "t", 0, idle_first).status, IsOk());
  ASSERT_THAT(
      ProduceSync(*core_, "t", 0, IdempotentBatch(busy, 0, 0, 1)).status,
      IsOk());
  clock.AdvanceMs(9999);
  // Not yet: a retry of the idle producer's batch is still a duplicate.
  ProduceResult dup = ProduceSync(*core_, "t", 0, idle_first);
  ASSERT_THAT(dup.status, IsOk());
  EXPECT_EQ(dup.base_offset, 0);
  EXPECT_EQ(LogEnd("t"), 3);
  ASSERT_THAT(
      ProduceSync(*core_, "t", 0, IdempotentBatch(busy, 0, 1, 1)).status,
      IsOk());
  clock.AdvanceMs(1);  // the idle producer's last append is 10 s old
  ASSERT_THAT(
      ProduceSync(*core_, "t", 0, IdempotentBatch(busy, 0, 2, 1)).status,
      IsOk());
  // Forgotten: its next batch is that of an unknown producer.
  ProduceResult next =
      ProduceSync(*core_, "t", 0, IdempotentBatch(idle, 0, 2, 1));
  EXPECT_EQ(ErrorKindOf(next.status), ErrorKind::kUnknownProducerId)
      << next.status;
  EXPECT_EQ(LogEnd("t"), 5);
  // The snapshot at shutdown keeps only the producer still remembered.
  clock.AdvanceMs(9999);
  CloseCore();
  OpenCore();
  ASSERT_THAT(
      ProduceSync(*core_, "t", 0, IdempotentBatch(busy, 0, 3, 1)).status,
      IsOk());
  EXPECT_EQ(
      ErrorKindOf(
          ProduceSync(*core_, "t", 0, IdempotentBatch(idle, 0, 2, 1)).status),
      ErrorKind::kUnknownProducerId);
  EXPECT_EQ(LogEnd("t"), 6);
  CloseCore();
  clock_ = SystemClock::Default();
}

TEST_F(BrokerCoreTest, ADamagedSnapshotFallsBackToReadingTheLog) {
  CreateTopic("t");
  const int64_t pid = core_->InitProducerId().value().producer_id;
  const std::string batch = IdempotentBatch(pid, 0, 0, 3);
  ASSERT_THAT(ProduceSync(*core_, "t", 0, batch).status, IsOk());
  CloseCore();
  const std::string snapshot =
      dir_.Sub("data") + "/t-0/producer-state.snapshot";
  {
    std::ofstream out(snapshot, std::ios::binary | std::ios::trunc);
    out << "not a snapshot";
  }
  OpenCore();
  ProduceResult dup = ProduceSync(*core_, "t", 0, batch);
  ASSERT_THAT(dup.status, IsOk());
  EXPECT_EQ(dup.base_offset, 0);
  EXPECT_EQ(LogEnd("t"), 3);
}

TEST_F(BrokerCoreTest, RacingRequestsOfOneProducerAppendOnce) {
  CreateTopic("t");
  const int64_t pid = core_->InitProducerId().value().producer_id;
  const std::string batch = IdempotentBatch(pid, 0, 0, 4);
  constexpr int kRacers = 8;
  absl::Mutex mu;
  int done = 0;
  std::vector<ProduceResult> results(kRacers);
  std::vector<std::thread> threads;
  for (int i = 0; i < kRacers; ++i) {
    threads.emplace_back([&, i] {
      ProduceInput input;
      input.acks = Acks::kLeader;
      input.partitions.push_back({{"t", 0}, batch});
      core_->Produce(std::move(input), [&, i](std::vector<ProduceResult> r) {
        absl::MutexLock lock(&mu);
        results[i] = r.at(0);
        ++done;
      });
    });
  }
  for (std::thread& t : threads) t.join();
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(
        +[](int* d) { return *d == kRacers; }, &done));
    for (const ProduceResult& r : results) {
      EXPECT_THAT(r.status, IsOk());
      EXPECT_EQ(r.base_offset, 0);
    }
  }
  EXPECT_EQ(LogEnd("t"), 4);
}

TEST_F(BrokerCoreTest, MetricsNameEveryPartition) {
  CreateTopic("t", 2);
  RUNNEL_ASSERT_OK(ProduceSync(*core_, "t", 1, MakeBatch(2)).status);
  std::string text = core_->RenderMetrics();
  EXPECT_THAT(
      text,
      ::testing::HasSubstr(
          "runnel_partition_log_end_offset{topic=\"t\",partition=\"1\"} 2"));
  EXPECT_THAT(text,
              ::testing::HasSubstr("runnel_topic_bytes_in_total{topic=\"t\"}"));
  EXPECT_THAT(text,
              ::testing::HasSubstr("runnel_fsync_duration_seconds_bucket"));
}

// Checks the Prometheus text format's grouping rules: every sample belongs to
// a family declared by "# TYPE" (and "# HELP") before it, a histogram's
// samples are its _bucket, _sum and _count, and each family's lines form one
// contiguous group (a family never comes back after another one started).
// Returns the families in order.
std::vector<std::string> CheckExpositionFormat(const std::string& text) {
  std::vector<std::string> families;
  absl::flat_hash_map<std::string, std::string> types;
  absl::flat_hash_set<std::string> helped;
  std::string current;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, "# HELP ") ||
        absl::StartsWith(line, "# TYPE ")) {
      std::vector<std::string> parts =
          absl::StrSplit(line.substr(7), absl::MaxSplits(' ', 1));
      EXPECT_EQ(parts.size(), 2u) << line;
      const std::string& name = parts[0];
      if (absl::StartsWith(line, "# HELP ")) {
        EXPECT_TRUE(helped.insert(name).second) << "second HELP: " << line;
      } else {
        EXPECT_TRUE(types.emplace(name, parts[1]).second)
            << "second TYPE: " << line;
        EXPECT_TRUE(helped.contains(name)) << "TYPE before HELP: " << line;
        families.push_back(name);
      }
      current = name;
      continue;
    }
    std::string name(line.substr(0, line.find_first_of("{ ")));
    std::string family = name;
    for (absl::string_view suffix : {"_bucket", "_sum", "_count"}) {
      if (absl::EndsWith(name, suffix)) {
        std::string base = name.substr(0, name.size() - suffix.size());
        auto it = types.find(base);
        if (it != types.end() && it->second == "histogram") family = base;
      }
    }
    EXPECT_TRUE(types.contains(family)) << "sample without TYPE: " << line;
    EXPECT_EQ(family, current) << "sample outside its family's group: " << line;
  }
  return families;
}

TEST_F(BrokerCoreTest, MetricsKeepEveryFamilyInOneGroupWithTwoIoThreads) {
  CloseCore();
  OpenCore(Partition::kDefaultReorderWait, /*io_threads=*/2);
  CreateTopic("t", 8);
  for (int32_t p = 0; p < 8; ++p) {
    RUNNEL_ASSERT_OK(ProduceSync(*core_, "t", p, MakeBatch(1)).status);
  }
  const std::string text = core_->RenderMetrics();
  // Both I/O threads serve a partition, so each per-thread family has two
  // label sets.
  EXPECT_THAT(text,
              ::testing::HasSubstr("runnel_io_fsyncs_total{io_thread=\"1\"}"));
  const std::vector<std::string> families = CheckExpositionFormat(text);
  for (const char* name :
       {"runnel_requests_total", "runnel_request_duration_seconds",
        "runnel_partition_log_end_offset", "runnel_topic_bytes_in_total",
        "runnel_topic_bytes_out_total", "runnel_fsync_duration_seconds",
        "runnel_io_bytes_written_total", "runnel_io_fsyncs_total"}) {
    EXPECT_THAT(families, ::testing::Contains(name));
  }
}

TEST_F(BrokerCoreTest, MetricsCountBytesInAndOutPerTopic) {
  CreateTopic("t", 2);
  CreateTopic("u");
  const std::string batch = MakeBatch(3);
  RUNNEL_ASSERT_OK(ProduceSync(*core_, "t", 0, batch).status);
  RUNNEL_ASSERT_OK(ProduceSync(*core_, "t", 1, batch).status);
  ReadResult f = FetchSync(*core_, "t", 0, 0);
  RUNNEL_ASSERT_OK(f.status);
  ASSERT_EQ(f.records.size(), batch.size());
  const std::string text = core_->RenderMetrics();
  EXPECT_THAT(text, ::testing::HasSubstr(absl::StrCat(
                        "runnel_topic_bytes_in_total{topic=\"t\"} ",
                        2 * batch.size(), "\n")));
  EXPECT_THAT(text, ::testing::HasSubstr(absl::StrCat(
                        "runnel_topic_bytes_out_total{topic=\"t\"} ",
                        batch.size(), "\n")));
  EXPECT_THAT(text, ::testing::HasSubstr(
                        "runnel_topic_bytes_out_total{topic=\"u\"} 0\n"));
  EXPECT_THAT(text, ::testing::HasSubstr(
                        "runnel_topic_batches_in_total{topic=\"t\"} 2\n"));
  CheckExpositionFormat(text);
}

}  // namespace
}  // namespace runnel::broker
