#include "log/partition_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "common/clock.h"
#include "log/io_thread.h"
#include "log/record_batch.h"
#include "log/segment.h"
#include "tests/testing/scoped_temp_dir.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/wait_for.h"

namespace runnel::log {
namespace {

using ::runnel::testing::IsOk;
using ::runnel::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

MATCHER_P(IsOkAndHolds, matcher, "is OK and holds a matching value") {
  if (!arg.ok()) {
    *result_listener << "status is " << arg.status().ToString();
    return false;
  }
  return ::testing::ExplainMatchResult(matcher, *arg, result_listener);
}

// `records` records; record i has timestamp ts + i and a 50-byte value.
std::string MakeBatch(int records, int64_t ts, int32_t epoch = -1,
                      Offset base = 0) {
  RecordBatchBuilder builder(
      {.base_offset = base, .partition_leader_epoch = epoch});
  for (int i = 0; i < records; ++i) {
    builder.Append(ts + i, absl::StrCat("key", i), std::string(50, 'v'));
  }
  return builder.Build().value();
}

// The header fields of each batch in `bytes` (copied: no views into a
// temporary).
struct BatchSummary {
  Offset base_offset() const { return base; }
  int32_t partition_leader_epoch() const { return epoch; }
  bool CrcMatches() const { return crc_ok; }
  int64_t max_timestamp() const { return max_ts; }
  int64_t base_timestamp() const { return base_ts; }
  TimestampType timestamp_type() const { return type; }
  Offset base;
  int32_t epoch;
  bool crc_ok;
  int64_t max_ts;
  int64_t base_ts;
  TimestampType type;
};

std::vector<BatchSummary> Split(const std::string& bytes) {
  auto views = SplitBatches(bytes, BatchSource::kDisk);
  EXPECT_THAT(views, IsOk());
  std::vector<BatchSummary> out;
  if (!views.ok()) return out;
  for (const RecordBatchView& v : *views) {
    out.push_back({v.base_offset(), v.partition_leader_epoch(), v.CrcMatches(),
                   v.max_timestamp(), v.base_timestamp(), v.timestamp_type()});
  }
  return out;
}

void FlipByte(const std::string& path, FilePos position) {
  int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  char c;
  ASSERT_EQ(::pread(fd, &c, 1, position), 1);
  c ^= 0x5A;
  ASSERT_EQ(::pwrite(fd, &c, 1, position), 1);
  ::close(fd);
}

class PartitionLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto io = IoThread::Start({});
    ASSERT_THAT(io, IsOk());
    io_ = std::move(io).value();
  }

  PartitionLogOptions Options() {
    PartitionLogOptions options;
    options.dir = dir_.Sub("orders-0");
    options.topic = "orders";
    options.partition = 0;
    options.config = config_;
    options.io = io_.get();
    options.clock = &clock_;
    options.tail_cache_bytes = tail_cache_bytes_;
    options.pread_on_caller = pread_on_caller_;
    options.reaper = reaper_;
    return options;
  }

  void Open(bool clean_shutdown = false, Offset recovery_point = 0) {
    log_.reset();
    PartitionLogOptions options = Options();
    options.clean_shutdown = clean_shutdown;
    options.recovery_point = recovery_point;
    auto log = PartitionLog::Open(std::move(options));
    ASSERT_THAT(log, IsOk());
    log_ = std::move(log).value();
  }

  void Reopen(bool clean_shutdown) {
    if (clean_shutdown) {
      RUNNEL_ASSERT_OK(log_->Close());
    }
    Open(clean_shutdown);
  }

  // Appends `n` batches of `records` records; batch i has timestamps from
  // ts + 1000 * i.
  void AppendBatches(int n, int records = 5, int64_t ts = 1000,
                     int32_t epoch = 0) {
    for (int i = 0; i < n; ++i) {
      ASSERT_THAT(log_->Append(MakeBatch(records, ts + 1000 * i), epoch),
                  IsOk());
    }
  }

  // Every batch from `from` to the end, in order.
  std::string ReadAll(Offset from = -1) {
    if (from < 0) from = log_->log_start_offset();
    std::string all;
    while (from < log_->log_end_offset()) {
      auto read = log_->Read(from, 1 << 20);
      EXPECT_THAT(read, IsOk());
      if (!read.ok() || read->bytes.empty()) break;
      all += read->bytes;
      from = read->next_offset;
    }
    return all;
  }

  std::string SegmentLog(Offset base) {
    return SegmentFilePath(Options().dir, base, kLogFileSuffix);
  }

  static int64_t BatchSize() {
    static const int64_t size = static_cast<int64_t>(MakeBatch(5, 0).size());
    return size;
  }

  testing::ScopedTempDir dir_;
  ManualClock clock_{1'700'000'000'000};
  LogConfig config_;
  size_t tail_cache_bytes_ = PartitionLogOptions{}.tail_cache_bytes;
  bool pread_on_caller_ = PartitionLogOptions{}.pread_on_caller;
  FileReaper* reaper_ = nullptr;  // PartitionLogOptions::reaper
  std::unique_ptr<IoThread> io_;
  std::unique_ptr<PartitionLog> log_;  // destroyed before io_
};

TEST_F(PartitionLogTest, OffsetsAreAssignedConsecutivelyAcrossAppends) {
  Open();
  for (int i = 0; i < 3; ++i) {
    auto result = log_->Append(MakeBatch(5, 1000), 7);
    ASSERT_THAT(result, IsOk());
    EXPECT_EQ(result->base_offset, 5 * i);
    EXPECT_EQ(result->last_offset, 5 * i + 4);
    EXPECT_EQ(result->position, i * BatchSize());
    EXPECT_EQ(result->log_append_time_ms, -1);
  }
  EXPECT_EQ(log_->log_end_offset(), 15);
  std::vector<BatchSummary> views = Split(ReadAll());
  ASSERT_THAT(views, SizeIs(3));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(views[i].base_offset(), 5 * i);
    EXPECT_EQ(views[i].partition_leader_epoch(), 7);
    EXPECT_TRUE(views[i].CrcMatches());
  }
}

TEST_F(PartitionLogTest, MultiBatchAppendAssignsEveryBatch) {
  Open();
  auto result = log_->Append(
      MakeBatch(2, 1000) + MakeBatch(3, 2000) + MakeBatch(4, 3000), 0);
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->base_offset, 0);
  EXPECT_EQ(result->last_offset, 8);
  EXPECT_EQ(result->max_timestamp, 3003);
  std::vector<BatchSummary> views = Split(ReadAll());
  ASSERT_THAT(views, SizeIs(3));
  EXPECT_EQ(views[0].base_offset(), 0);
  EXPECT_EQ(views[1].base_offset(), 2);
  EXPECT_EQ(views[2].base_offset(), 5);
}

TEST_F(PartitionLogTest, BadBatchInTheMiddleOfAnAppendWritesNothing) {
  Open();
  AppendBatches(1);
  std::string bad = MakeBatch(3, 2000);
  bad[bad.size() - 3] ^= 1;  // breaks the CRC
  EXPECT_THAT(log_->Append(MakeBatch(2, 1000) + bad + MakeBatch(2, 3000), 0),
              StatusIs(absl::StatusCode::kInvalidArgument));
  std::string cut = MakeBatch(2, 1000);
  cut.resize(cut.size() - 1);
  EXPECT_THAT(log_->Append(MakeBatch(2, 1000) + cut, 0),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(log_->Append(std::string(), 0),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(log_->log_end_offset(), 5);
  EXPECT_EQ(log_->size_bytes(), BatchSize());
}

TEST_F(PartitionLogTest, CallerValidatedAppendStillFramesAndSizesBatches) {
  config_.max_message_bytes = static_cast<int32_t>(BatchSize());
  Open();
  AppendBatches(1);
  std::string cut = MakeBatch(5, 1000);
  cut.resize(cut.size() - 1);
  EXPECT_THAT(log_->Append(MakeBatch(5, 1000) + cut, 0,
                           BatchValidation::kCallerValidated),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      log_->Append(MakeBatch(6, 1000), 0, BatchValidation::kCallerValidated),
      StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(log_->log_end_offset(), 5);
  EXPECT_EQ(log_->size_bytes(), BatchSize());
  auto result = log_->Append(MakeBatch(5, 2000) + MakeBatch(5, 3000), 4,
                             BatchValidation::kCallerValidated);
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->base_offset, 5);
  EXPECT_EQ(result->last_offset, 14);
  std::vector<BatchSummary> views = Split(ReadAll());
  ASSERT_THAT(views, SizeIs(3));
  EXPECT_EQ(views[2].base_offset(), 10);
  EXPECT_EQ(views[2].partition_leader_epoch(), 4);
  EXPECT_TRUE(views[2].CrcMatches());
}

TEST_F(PartitionLogTest, OversizedBatchIsRefused) {
  config_.max_message_bytes = 200;
  Open();
  EXPECT_THAT(log_->Append(MakeBatch(5, 1000), 0),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(log_->log_end_offset(), 0);
}

TEST_F(PartitionLogTest, AppendReplicatedKeepsBytesAndChecksContinuity) {
  Open();
  std::string first = MakeBatch(5, 1000, /*epoch=*/3, /*base=*/0);
  std::string second = MakeBatch(5, 2000, /*epoch=*/3, /*base=*/5);
  auto result = log_->AppendReplicated(first + second);
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->last_offset, 9);
  EXPECT_EQ(ReadAll(), first + second);
  EXPECT_EQ(log_->latest_epoch(), 3);
  // A gap, an overlap, and a non-contiguous pair: nothing is written.
  EXPECT_THAT(log_->AppendReplicated(MakeBatch(1, 0, 3, 11)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(log_->AppendReplicated(MakeBatch(1, 0, 3, 9)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      log_->AppendReplicated(MakeBatch(1, 0, 3, 10) + MakeBatch(1, 0, 3, 12)),
      StatusIs(absl::StatusCode::kInvalidArgument));
  // An epoch below the latest.
  EXPECT_THAT(log_->AppendReplicated(MakeBatch(1, 0, 2, 10)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(log_->log_end_offset(), 10);
}

TEST_F(PartitionLogTest, ReadAtEveryOffsetOfABatchReturnsThatBatch) {
  Open();
  AppendBatches(4);
  for (Offset offset = 0; offset < 20; ++offset) {
    auto read = log_->Read(offset, 1);
    ASSERT_THAT(read, IsOk());
    std::vector<BatchSummary> views = Split(read->bytes);
    ASSERT_THAT(views, SizeIs(1)) << offset;
    EXPECT_EQ(views[0].base_offset(), offset / 5 * 5);
    EXPECT_EQ(read->first_offset, offset / 5 * 5);
    EXPECT_EQ(read->next_offset, offset / 5 * 5 + 5);
  }
}

TEST_F(PartitionLogTest, ReadReturnsWholeBatchesUpToMaxBytes) {
  Open();
  AppendBatches(4);
  const size_t size = static_cast<size_t>(BatchSize());
  EXPECT_EQ(log_->Read(0, 2 * size)->bytes.size(), 2 * size);
  EXPECT_EQ(log_->Read(0, 2 * size - 1)->bytes.size(), size);
  EXPECT_EQ(log_->Read(0, 2 * size + 1)->bytes.size(), 2 * size);
  EXPECT_EQ(log_->Read(0, 0)->bytes.size(), size);  // at least one batch
  // Without at_least_one_batch the limit holds for the first batch too.
  auto strict = log_->Read(0, size - 1, INT64_MAX, false);
  ASSERT_THAT(strict, IsOk());
  EXPECT_TRUE(strict->bytes.empty());
  EXPECT_EQ(strict->next_offset, 0);
  EXPECT_TRUE(log_->Read(0, 0, INT64_MAX, false)->bytes.empty());
  EXPECT_EQ(log_->Read(0, 2 * size - 1, INT64_MAX, false)->bytes.size(), size);
  EXPECT_EQ(log_->Read(3, 100 * size)->bytes.size(), 4 * size);
  auto at_end = log_->Read(20, 1000);
  ASSERT_THAT(at_end, IsOk());
  EXPECT_THAT(at_end->bytes, IsEmpty());
  EXPECT_EQ(at_end->next_offset, 20);
  EXPECT_EQ(at_end->log_end_offset, 20);
}

TEST_F(PartitionLogTest, ReadOutsideTheLogIsOutOfRange) {
  Open();
  AppendBatches(4);
  EXPECT_THAT(log_->Read(21, 1000), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(log_->Read(-1, 1000), StatusIs(absl::StatusCode::kOutOfRange));
  RUNNEL_ASSERT_OK(log_->DeleteRecordsBefore(7));
  EXPECT_THAT(log_->Read(6, 1000), StatusIs(absl::StatusCode::kOutOfRange));
  auto read = log_->Read(7, 1);
  ASSERT_THAT(read, IsOk());
  EXPECT_EQ(read->first_offset, 5);  // the batch holding 7
  EXPECT_EQ(read->log_start_offset, 7);
}

TEST_F(PartitionLogTest, ReadStopsBeforeABatchReachingMaxOffset) {
  Open();
  AppendBatches(4);
  EXPECT_EQ(log_->Read(0, 1 << 20, /*max_offset=*/10)->next_offset, 10);
  EXPECT_EQ(log_->Read(0, 1 << 20, /*max_offset=*/9)->next_offset, 5);
  auto none = log_->Read(0, 1 << 20, /*max_offset=*/4);
  ASSERT_THAT(none, IsOk());
  EXPECT_THAT(none->bytes, IsEmpty());
  EXPECT_EQ(none->next_offset, 0);
}

TEST_F(PartitionLogTest, ReadSpansOnlyOneSegmentAndContinuesInTheNext) {
  config_.segment_bytes = 2 * BatchSize();
  Open();
  AppendBatches(5);
  EXPECT_EQ(log_->segment_count(), 3);
  auto read = log_->Read(0, 1 << 20);
  EXPECT_EQ(read->next_offset, 10);
  EXPECT_EQ(log_->Read(10, 1 << 20)->next_offset, 20);
  EXPECT_EQ(log_->Read(20, 1 << 20)->next_offset, 25);
  EXPECT_THAT(Split(ReadAll()), SizeIs(5));
}

TEST_F(PartitionLogTest, OffsetForTimestampFindsTheFirstRecordAtOrAfter) {
  config_.index_interval_bytes = 1;  // index every batch
  Open();
  AppendBatches(4);  // timestamps 1000-1004, 2000-2004, 3000-3004, 4000-4004
  EXPECT_THAT(log_->OffsetForTimestamp(0), IsOkAndHolds(0));
  EXPECT_THAT(log_->OffsetForTimestamp(2000), IsOkAndHolds(5));  // exact
  EXPECT_THAT(log_->OffsetForTimestamp(2003), IsOkAndHolds(8));
  EXPECT_THAT(log_->OffsetForTimestamp(2500), IsOkAndHolds(10));  // between
  EXPECT_THAT(log_->OffsetForTimestamp(4004), IsOkAndHolds(19));
  EXPECT_THAT(log_->OffsetForTimestamp(4005),
              IsOkAndHolds(kNoOffset));  // after the last
  // The same lookups with the found record's own timestamp.
  EXPECT_THAT(log_->RecordForTimestamp(2003),
              IsOkAndHolds(RecordTimestamp{8, 2003}));
  EXPECT_THAT(log_->RecordForTimestamp(2500),
              IsOkAndHolds(RecordTimestamp{10, 3000}));
  EXPECT_THAT(log_->RecordForTimestamp(4005), IsOkAndHolds(RecordTimestamp{}));
}

TEST_F(PartitionLogTest, OffsetForTimestampWorksAcrossSegmentsAndReopen) {
  config_.segment_bytes = 2 * BatchSize();
  Open();
  AppendBatches(5);
  Reopen(/*clean_shutdown=*/true);
  EXPECT_THAT(log_->OffsetForTimestamp(3001), IsOkAndHolds(11));
  EXPECT_THAT(log_->OffsetForTimestamp(5000), IsOkAndHolds(20));
  EXPECT_THAT(log_->OffsetForTimestamp(6000), IsOkAndHolds(kNoOffset));
}

// `bytes` as RecordBytes in pieces of `step` bytes (the way gRPC hands a
// request over), owning a copy.
RecordBytes InPieces(const std::string& bytes, size_t step) {
  auto owner = std::make_shared<std::string>(bytes);
  std::vector<std::string_view> pieces;
  for (size_t pos = 0; pos < owner->size(); pos += step) {
    pieces.push_back(std::string_view(*owner).substr(pos, step));
  }
  return RecordBytes(std::move(pieces), owner);
}

TEST_F(PartitionLogTest, BatchesInPiecesAreStoredAsIfJoined) {
  Open();
  const std::string three = MakeBatch(3, 1000) + MakeBatch(2, 2000);
  // The same batches once joined, once in pieces of 7 and of 1 byte; the
  // caller-validated path is the one that copies the pieces.
  ASSERT_THAT(log_->Append(three, 4, BatchValidation::kCallerValidated),
              IsOk());
  auto sevens =
      log_->Append(InPieces(three, 7), 4, BatchValidation::kCallerValidated);
  ASSERT_THAT(sevens, IsOk());
  EXPECT_EQ(sevens->base_offset, 5);
  EXPECT_EQ(sevens->last_offset, 9);
  EXPECT_EQ(sevens->position, static_cast<FilePos>(three.size()));
  EXPECT_EQ(sevens->max_timestamp, 2001);
  ASSERT_THAT(
      log_->Append(InPieces(three, 1), 4, BatchValidation::kCallerValidated),
      IsOk());
  ASSERT_THAT(log_->Append(InPieces(three, 64), 4), IsOk());  // kFull: joined
  const std::string all = ReadAll();
  ASSERT_EQ(all.size(), 4 * three.size());
  std::vector<BatchSummary> views = Split(all);
  ASSERT_THAT(views, SizeIs(8));
  for (size_t i = 0; i < views.size(); ++i) {
    EXPECT_EQ(views[i].base_offset(),
              static_cast<Offset>(i / 2 * 5 + i % 2 * 3));
    EXPECT_EQ(views[i].partition_leader_epoch(), 4);
    EXPECT_TRUE(views[i].CrcMatches());
  }
  // Byte for byte the same batches as the joined append, offsets aside.
  for (size_t copy = 1; copy < 4; ++copy) {
    std::string a = all.substr(0, three.size());
    std::string b = all.substr(copy * three.size(), three.size());
    for (size_t at : {size_t{0}, MakeBatch(3, 1000).size()}) {
      std::memset(a.data() + at, 0, 8);
      std::memset(b.data() + at, 0, 8);
    }
    EXPECT_EQ(a, b) << copy;
  }
  Reopen(/*clean_shutdown=*/false);
  EXPECT_EQ(log_->log_end_offset(), 20);
  EXPECT_EQ(ReadAll(), all);
}

TEST_F(PartitionLogTest, BadFramingInPiecesIsRefusedLikeJoined) {
  Open();
  ASSERT_THAT(log_->Append(MakeBatch(2, 1000), 0), IsOk());
  std::string cut = MakeBatch(2, 1000) + MakeBatch(2, 2000);
  cut.resize(cut.size() - 1);
  std::string bad_magic = MakeBatch(2, 1000);
  bad_magic[kMagicPos] = 1;
  for (const std::string& bad : {cut, bad_magic, std::string(30, 'x')}) {
    const absl::Status joined =
        log_->Append(bad, 0, BatchValidation::kCallerValidated).status();
    EXPECT_THAT(joined, StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_EQ(
        log_->Append(InPieces(bad, 5), 0, BatchValidation::kCallerValidated)
            .status(),
        joined);
  }
  config_.max_message_bytes = static_cast<int32_t>(BatchSize() - 1);
  Reopen(/*clean_shutdown=*/true);
  const std::string big = MakeBatch(5, 0);
  const absl::Status too_large =
      log_->Append(InPieces(big, 9), 0, BatchValidation::kCallerValidated)
          .status();
  EXPECT_THAT(too_large, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(too_large.message()), HasSubstr("too large"));
  EXPECT_EQ(log_->log_end_offset(), 2);
  EXPECT_EQ(log_->size_bytes(),
            static_cast<int64_t>(MakeBatch(2, 1000).size()));
}

TEST_F(PartitionLogTest, PiecesUnderLogAppendTimeAreJoinedAndStamped) {
  config_.message_timestamp_type = TimestampType::kLogAppendTime;
  Open();
  const int64_t now = clock_.NowMs();
  auto appended = log_->Append(InPieces(MakeBatch(3, 5), 10), 0,
                               BatchValidation::kCallerValidated);
  ASSERT_THAT(appended, IsOk());
  EXPECT_EQ(appended->log_append_time_ms, now);
  std::vector<BatchSummary> views = Split(ReadAll());
  ASSERT_THAT(views, SizeIs(1));
  EXPECT_EQ(views[0].max_timestamp(), now);
  EXPECT_TRUE(views[0].CrcMatches());
}

TEST_F(PartitionLogTest, LogAppendTimeStampsTheBrokerClock) {
  config_.message_timestamp_type = TimestampType::kLogAppendTime;
  Open();
  const int64_t t1 = clock_.NowMs();
  auto first = log_->Append(MakeBatch(3, 5), 0);
  ASSERT_THAT(first, IsOk());
  EXPECT_EQ(first->log_append_time_ms, t1);
  clock_.AdvanceMs(10'000);
  ASSERT_THAT(log_->Append(MakeBatch(3, 5), 0), IsOk());
  std::vector<BatchSummary> views = Split(ReadAll());
  ASSERT_THAT(views, SizeIs(2));
  EXPECT_EQ(views[0].timestamp_type(), TimestampType::kLogAppendTime);
  EXPECT_EQ(views[0].max_timestamp(), t1);
  EXPECT_TRUE(views[0].CrcMatches());
  EXPECT_THAT(log_->OffsetForTimestamp(t1), IsOkAndHolds(0));
  EXPECT_THAT(log_->OffsetForTimestamp(t1 + 1), IsOkAndHolds(3));
  EXPECT_THAT(log_->OffsetForTimestamp(t1 + 10'001), IsOkAndHolds(kNoOffset));
}

TEST_F(PartitionLogTest, RollsWhenTheNextBatchWouldPassSegmentBytes) {
  config_.segment_bytes = 3 * BatchSize();
  Open();
  AppendBatches(3);
  EXPECT_EQ(log_->segment_count(), 1);  // exactly segment_bytes: no roll yet
  EXPECT_EQ(log_->size_bytes(), 3 * BatchSize());
  AppendBatches(1);
  EXPECT_THAT(log_->segment_base_offsets(), ElementsAre(0, 15));
  EXPECT_TRUE(std::filesystem::exists(SegmentLog(15)));
  EXPECT_EQ(std::filesystem::file_size(SegmentLog(0)),
            static_cast<uintmax_t>(3 * BatchSize()));
}

TEST_F(PartitionLogTest, RollsWhenTheSegmentIsOlderThanSegmentMs) {
  config_.segment_ms = 60'000;
  Open();
  AppendBatches(1);
  clock_.AdvanceMs(60'000);
  AppendBatches(1);
  EXPECT_EQ(log_->segment_count(), 1);
  clock_.AdvanceMs(1);
  AppendBatches(1);
  EXPECT_THAT(log_->segment_base_offsets(), ElementsAre(0, 10));
}

TEST_F(PartitionLogTest, ExplicitRollStartsANewSegmentOnlyWhenNotEmpty) {
  Open();
  RUNNEL_ASSERT_OK(log_->Roll());
  EXPECT_EQ(log_->segment_count(), 1);
  AppendBatches(1);
  RUNNEL_ASSERT_OK(log_->Roll());
  EXPECT_THAT(log_->segment_base_offsets(), ElementsAre(0, 5));
  // The rolled segment is durable: offsets 0..4.
  EXPECT_GE(log_->durable_offset(), 5);
}

TEST_F(PartitionLogTest, TruncateInsideASegmentDropsTheContainingBatch) {
  Open();
  AppendBatches(4);
  RUNNEL_ASSERT_OK(log_->TruncateTo(7));  // inside batch 5..9
  EXPECT_EQ(log_->log_end_offset(), 5);
  EXPECT_EQ(log_->size_bytes(), BatchSize());
  auto result = log_->Append(MakeBatch(5, 9000), 0);
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->base_offset, 5);
  std::vector<BatchSummary> views = Split(ReadAll());
  ASSERT_THAT(views, SizeIs(2));
  EXPECT_EQ(views[1].base_offset(), 5);
  EXPECT_EQ(views[1].base_timestamp(), 9000);
  EXPECT_EQ(log_->durable_offset(), 5);
}

TEST_F(PartitionLogTest, TruncateAcrossSegmentsDeletesLaterOnes) {
  config_.segment_bytes = 2 * BatchSize();
  Open();
  AppendBatches(6);  // segments 0, 10, 20
  RUNNEL_ASSERT_OK(log_->TruncateTo(5));
  EXPECT_THAT(log_->segment_base_offsets(), ElementsAre(0));
  EXPECT_FALSE(std::filesystem::exists(SegmentLog(10)));
  EXPECT_EQ(log_->log_end_offset(), 5);
  AppendBatches(3);
  EXPECT_THAT(log_->segment_base_offsets(), ElementsAre(0, 10));
  std::vector<BatchSummary> views = Split(ReadAll());
  ASSERT_THAT(views, SizeIs(4));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(views[i].base_offset(), 5 * i);
  Reopen(/*clean_shutdown=*/false);
  EXPECT_EQ(log_->log_end_offset(), 20);
  EXPECT_THAT(log_->recovery_problems(), IsEmpty());
}

TEST_F(PartitionLogTest, TruncateBelowLogStartRestartsTheLog) {
  Open();
  AppendBatches(2);
  RUNNEL_ASSERT_OK(log_->DeleteRecordsBefore(5));
  RUNNEL_ASSERT_OK(log_->TruncateTo(3));
  EXPECT_EQ(log_->log_start_offset(), 3);
  EXPECT_EQ(log_->log_end_offset(), 3);
  auto result = log_->Append(MakeBatch(1, 0), 0);
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->base_offset, 3);
}

TEST_F(PartitionLogTest, DeleteRecordsBeforeSurvivesReopen) {
  config_.segment_bytes = 2 * BatchSize();
  Open();
  AppendBatches(6);  // segments 0, 10, 20
  EXPECT_THAT(log_->DeleteRecordsBefore(31),
              StatusIs(absl::StatusCode::kOutOfRange));
  RUNNEL_ASSERT_OK(log_->DeleteRecordsBefore(12));
  EXPECT_EQ(log_->log_start_offset(), 12);
  EXPECT_THAT(log_->segment_base_offsets(), ElementsAre(10, 20));
  RUNNEL_ASSERT_OK(log_->DeleteRecordsBefore(4));  // below start: no-op
  EXPECT_EQ(log_->log_start_offset(), 12);
  Reopen(/*clean_shutdown=*/true);
  EXPECT_EQ(log_->log_start_offset(), 12);
  EXPECT_THAT(log_->Read(11, 100), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(log_->Read(12, 100), IsOk());
  Reopen(/*clean_shutdown=*/false);
  EXPECT_EQ(log_->log_start_offset(), 12);
}

TEST_F(PartitionLogTest, RetentionBySizeDeletesOldestSegments) {
  config_.segment_bytes = BatchSize();
  config_.retention_bytes = 2 * BatchSize() + 1;
  config_.retention_ms = -1;  // the test batches' timestamps are from 1970
  Open();
  AppendBatches(5);  // 5 segments of one batch
  ASSERT_EQ(log_->segment_count(), 5);
  auto deleted = log_->ApplyRetention();
  ASSERT_THAT(deleted, IsOk());
  // 5 -> 4 -> 3 (3 * size >= limit); a 4th deletion would leave 2 * size.
  EXPECT_EQ(*deleted, 2);
  EXPECT_THAT(log_->segment_base_offsets(), ElementsAre(10, 15, 20));
  EXPECT_EQ(log_->log_start_offset(), 10);
  EXPECT_THAT(log_->ApplyRetention(), IsOkAndHolds(0));
  Reopen(/*clean_shutdown=*/true);
  EXPECT_EQ(log_->log_start_offset(), 10);
}

TEST_F(PartitionLogTest, RetentionRenamesSegmentsForTheReaper) {
  FileReaper reaper(FileReaperOptions{.step_bytes = 4096,
                                      .step_pause = absl::ZeroDuration(),
                                      .start_thread = false});
  reaper_ = &reaper;
  config_.segment_bytes = BatchSize();
  config_.retention_bytes = 2 * BatchSize() + 1;
  config_.retention_ms = -1;
  Open();
  AppendBatches(4);  // segments 0, 5, 10, 15
  ASSERT_THAT(log_->ApplyRetention(), IsOkAndHolds(1));
  EXPECT_THAT(log_->segment_base_offsets(), ElementsAre(5, 10, 15));
  EXPECT_FALSE(std::filesystem::exists(SegmentLog(0)));
  EXPECT_TRUE(std::filesystem::exists(SegmentLog(0) + kDeletedFileSuffix));
  EXPECT_EQ(reaper.pending(), 3u);  // .log, .index, .timeindex
  // Reopening finds nothing to recover in the renamed files, and queues
  // them again as leftovers.
  log_.reset();
  Open();
  EXPECT_THAT(log_->segment_base_offsets(), ElementsAre(5, 10, 15));
  EXPECT_EQ(reaper.pending(), 6u);
  log_.reset();
  EXPECT_EQ(reaper.DeleteReady(), 0u);
  EXPECT_FALSE(std::filesystem::exists(SegmentLog(0) + kDeletedFileSuffix));
  EXPECT_EQ(reaper.pending(), 0u);
  reaper_ = nullptr;
}

TEST_F(PartitionLogTest, RetentionByAgeUsesLargestTimestampAndKeepsActive) {
  config_.segment_bytes = BatchSize();
  config_.retention_ms = 10'000;
  Open();
  const int64_t now = clock_.NowMs();
  // Segment ages by their records' timestamps: 30 s, 20 s, 5 s old, active.
  for (int64_t age : {30'000, 20'000, 5'000, 0}) {
    ASSERT_THAT(log_->Append(MakeBatch(5, now - age - 4), 0), IsOk());
  }
  ASSERT_EQ(log_->segment_count(), 4);
  EXPECT_THAT(log_->ApplyRetention(), IsOkAndHolds(2));
  EXPECT_THAT(log_->segment_base_offsets(), ElementsAre(10, 15));
  clock_.AdvanceMs(1'000'000);
  EXPECT_THAT(log_->ApplyRetention(), IsOkAndHolds(1));
  EXPECT_THAT(log_->segment_base_offsets(), ElementsAre(15));  // active stays
  EXPECT_EQ(log_->log_start_offset(), 15);
}

TEST_F(PartitionLogTest, RetentionByAgeSurvivesReopen) {
  config_.segment_bytes = BatchSize();
  config_.retention_ms = 10'000;
  Open();
  const int64_t now = clock_.NowMs();
  for (int64_t age : {30'000, 0}) {
    ASSERT_THAT(log_->Append(MakeBatch(5, now - age - 4), 0), IsOk());
  }
  Reopen(/*clean_shutdown=*/true);
  EXPECT_THAT(log_->ApplyRetention(), IsOkAndHolds(1));
}

TEST_F(PartitionLogTest, CleanReopenKeepsEverything) {
  config_.segment_bytes = 3 * BatchSize();
  Open();
  AppendBatches(7, 5, 1000, 2);
  std::string before = ReadAll();
  Reopen(/*clean_shutdown=*/true);
  EXPECT_EQ(log_->log_end_offset(), 35);
  EXPECT_EQ(log_->segment_count(), 3);
  EXPECT_EQ(ReadAll(), before);
  EXPECT_EQ(log_->latest_epoch(), 2);
  EXPECT_THAT(log_->recovery_problems(), IsEmpty());
  auto result = log_->Append(MakeBatch(1, 0), 2);
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->base_offset, 35);
}

TEST_F(PartitionLogTest, UncleanReopenRebuildsIndexesAndReadsTheSame) {
  config_.segment_bytes = 8 * BatchSize();
  config_.index_interval_bytes = 1000;
  Open();
  AppendBatches(20);
  RUNNEL_ASSERT_OK(log_->Flush());
  std::string before = ReadAll();
  std::vector<std::string> reads;
  for (Offset o = 0; o < 100; o += 7) reads.push_back(log_->Read(o, 1)->bytes);
  log_.reset();  // no Close: untrimmed indexes, O_DIRECT padding
  // Make the indexes useless: recovery must rebuild them.
  std::filesystem::remove(SegmentFilePath(Options().dir, 0, kIndexFileSuffix));
  Open(/*clean_shutdown=*/false);
  EXPECT_THAT(log_->recovery_problems(), IsEmpty());
  EXPECT_EQ(log_->log_end_offset(), 100);
  EXPECT_EQ(ReadAll(), before);
  size_t i = 0;
  for (Offset o = 0; o < 100; o += 7) {
    EXPECT_EQ(log_->Read(o, 1)->bytes, reads[i++]) << o;
  }
}

TEST_F(PartitionLogTest, FlippedByteInTheTailBatchIsTruncated) {
  Open();
  AppendBatches(5);
  RUNNEL_ASSERT_OK(log_->Close());
  FlipByte(SegmentLog(0), 4 * BatchSize() + 70);
  Open(/*clean_shutdown=*/false);
  EXPECT_EQ(log_->log_end_offset(), 20);
  EXPECT_THAT(log_->recovery_problems(), IsEmpty());
  EXPECT_EQ(std::filesystem::file_size(SegmentLog(0)),
            static_cast<uintmax_t>(4 * BatchSize()));
  EXPECT_THAT(log_->Append(MakeBatch(1, 0), 0), IsOk());
}

TEST_F(PartitionLogTest, FlippedByteInAnOlderSegmentIsReportedAndNotServed) {
  config_.segment_bytes = 4 * BatchSize();
  Open();
  AppendBatches(10);  // segments 0, 20, 40
  RUNNEL_ASSERT_OK(log_->Close());
  const FilePos bad = 2 * BatchSize();
  FlipByte(SegmentLog(0), bad + 70);  // batch 10..14 of segment 0
  Open(/*clean_shutdown=*/false);
  ASSERT_THAT(log_->recovery_problems(), SizeIs(1));
  const absl::Status& problem = log_->recovery_problems()[0];
  EXPECT_THAT(problem, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(std::string(problem.message()), HasSubstr(SegmentLog(0)));
  EXPECT_THAT(std::string(problem.message()),
              HasSubstr(absl::StrCat("position ", bad)));
  EXPECT_EQ(log_->log_end_offset(), 10);
  EXPECT_THAT(log_->segment_base_offsets(), ElementsAre(0));
  EXPECT_THAT(Split(ReadAll()), SizeIs(2));
  EXPECT_THAT(log_->Read(10, 100),
              IsOkAndHolds(::testing::Field(&PartitionLog::ReadResult::bytes,
                                            IsEmpty())));
}

TEST_F(PartitionLogTest, UncleanRecoveryStartsAtTheRecoveryPointSegment) {
  config_.segment_bytes = 2 * BatchSize();
  Open();
  AppendBatches(6);  // segments 0, 10, 20
  RUNNEL_ASSERT_OK(log_->Close());
  // Damage below the recovery point is not rescanned (it was durable and
  // validated before); damage above it is found.
  FlipByte(SegmentLog(0), 70);
  FlipByte(SegmentLog(20), BatchSize() + 70);
  Open(/*clean_shutdown=*/false, /*recovery_point=*/25);
  EXPECT_THAT(log_->recovery_problems(), IsEmpty());  // torn tail of the last
  EXPECT_EQ(log_->log_end_offset(), 25);
  EXPECT_THAT(log_->segment_base_offsets(), ElementsAre(0, 10, 20));
}

TEST_F(PartitionLogTest, ConcurrentAppendersGetDistinctContiguousOffsets) {
  Open();
  constexpr int kThreads = 4;
  constexpr int kAppends = 50;
  std::vector<std::thread> threads;
  std::atomic<bool> failed{false};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kAppends; ++i) {
        auto result = log_->Append(MakeBatch(2, 1000), 0);
        if (!result.ok()) failed = true;
        if (i % 10 == 0) (void)log_->Read(0, 1 << 16);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_FALSE(failed);
  EXPECT_EQ(log_->log_end_offset(), 2 * kThreads * kAppends);
  std::vector<BatchSummary> views = Split(ReadAll());
  ASSERT_THAT(views, SizeIs(kThreads * kAppends));
  for (size_t i = 0; i < views.size(); ++i) {
    EXPECT_EQ(views[i].base_offset(), static_cast<Offset>(2 * i));
  }
}

TEST_F(PartitionLogTest, ZeroPaddingAfterTheLastBatchIsATornTail) {
  Open();
  AppendBatches(3);
  RUNNEL_ASSERT_OK(log_->Close());
  {
    int fd = ::open(SegmentLog(0).c_str(), O_WRONLY | O_APPEND);
    ASSERT_GE(fd, 0);
    std::string zeros(4096 - 3 * BatchSize() % 4096, '\0');
    ASSERT_EQ(::write(fd, zeros.data(), zeros.size()),
              static_cast<ssize_t>(zeros.size()));
    ::close(fd);
  }
  Open(/*clean_shutdown=*/false);
  EXPECT_THAT(log_->recovery_problems(), IsEmpty());
  EXPECT_EQ(log_->log_end_offset(), 15);
  EXPECT_EQ(std::filesystem::file_size(SegmentLog(0)),
            static_cast<uintmax_t>(3 * BatchSize()));
}

TEST_F(PartitionLogTest, CutTailBatchIsDroppedEvenAfterCleanShutdown) {
  Open();
  AppendBatches(3);
  RUNNEL_ASSERT_OK(log_->Close());
  std::filesystem::resize_file(SegmentLog(0), 3 * BatchSize() - 10);
  Open(/*clean_shutdown=*/true);
  EXPECT_EQ(log_->log_end_offset(), 10);
  EXPECT_THAT(log_->recovery_problems(), IsEmpty());
}

TEST_F(PartitionLogTest, WhenDurableFiresOnceTheOffsetIsSynced) {
  Open();
  AppendBatches(2);
  EXPECT_LT(log_->durable_offset(), 10);
  RUNNEL_EXPECT_OK(log_->DurableFuture(9).get());
  EXPECT_EQ(log_->durable_offset(), 10);
  // Already durable: runs at once on this thread.
  bool ran = false;
  log_->WhenDurable(3, [&](absl::Status s) {
    RUNNEL_EXPECT_OK(s);
    ran = true;
  });
  EXPECT_TRUE(ran);
  EXPECT_THAT(log_->DurableFuture(10).get(),
              StatusIs(absl::StatusCode::kOutOfRange));
  AppendBatches(1);
  RUNNEL_EXPECT_OK(log_->Flush());
  EXPECT_EQ(log_->durable_offset(), 15);
}

TEST_F(PartitionLogTest, ConcurrentWaitersShareFsyncs) {
  // A dedicated I/O thread whose first reaped fsync is held until every
  // waiter has asked: they must all ride on one follow-up fsync.
  std::atomic<bool> hold{false};
  absl::Notification reached;
  absl::Notification release;
  IoThreadOptions io_options;
  io_options.on_fsync_reaped_for_test = [&](int) {
    if (hold.exchange(false)) {
      reached.Notify();
      release.WaitForNotification();
    }
  };
  auto io = IoThread::Start(io_options);
  ASSERT_THAT(io, IsOk());
  PartitionLogOptions options = Options();
  options.io = io->get();
  auto log = PartitionLog::Open(options);
  ASSERT_THAT(log, IsOk());
  ASSERT_THAT((*log)->Append(MakeBatch(5, 1000), 0), IsOk());
  const uint64_t fsyncs_before = (*io)->Stats().fsyncs_issued;
  hold = true;
  std::vector<std::future<absl::Status>> futures;
  futures.push_back((*log)->DurableFuture(0));
  reached.WaitForNotification();
  ASSERT_THAT((*log)->Append(MakeBatch(5, 2000), 0), IsOk());
  for (int i = 0; i < 50; ++i) futures.push_back((*log)->DurableFuture(9));
  release.Notify();
  for (auto& f : futures) RUNNEL_EXPECT_OK(f.get());
  EXPECT_EQ((*log)->durable_offset(), 10);
  EXPECT_LE((*io)->Stats().fsyncs_issued - fsyncs_before, 2u);
  RUNNEL_EXPECT_OK((*log)->Close());
  log->reset();
  RUNNEL_EXPECT_OK((*io)->Stop());
}

TEST_F(PartitionLogTest, LeaderEpochsGiveEndOffsetsAndSurviveReopen) {
  Open();
  AppendBatches(2, 5, 1000, /*epoch=*/1);  // offsets 0..9
  AppendBatches(1, 5, 1000, /*epoch=*/3);  // offsets 10..14
  EXPECT_THAT(log_->EndOffsetForEpoch(1), IsOkAndHolds(10));
  EXPECT_THAT(log_->EndOffsetForEpoch(2), IsOkAndHolds(10));
  EXPECT_THAT(log_->EndOffsetForEpoch(3), IsOkAndHolds(15));
  EXPECT_THAT(log_->EndOffsetForEpoch(4),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(log_->EndOffsetAndEpochFor(2), (EpochEndOffset{1, 10}));
  // A stale leader is fenced.
  EXPECT_THAT(log_->Append(MakeBatch(1, 0), 2),
              StatusIs(absl::StatusCode::kAborted));
  Reopen(/*clean_shutdown=*/true);
  EXPECT_THAT(log_->EndOffsetForEpoch(1), IsOkAndHolds(10));
  EXPECT_EQ(log_->latest_epoch(), 3);
  // Truncation drops the epochs that started after the new end.
  RUNNEL_ASSERT_OK(log_->TruncateTo(10));
  EXPECT_EQ(log_->latest_epoch(), 1);
  EXPECT_THAT(log_->EndOffsetForEpoch(1), IsOkAndHolds(10));
}

TEST_F(PartitionLogTest, UncleanRecoveryRebuildsTheEpochCache) {
  Open();
  AppendBatches(1, 5, 1000, /*epoch=*/1);
  AppendBatches(1, 5, 1000, /*epoch=*/4);
  RUNNEL_ASSERT_OK(log_->Close());
  std::filesystem::remove(Options().dir + "/leader-epoch-checkpoint");
  Open(/*clean_shutdown=*/false);
  EXPECT_EQ(log_->latest_epoch(), 4);
  EXPECT_THAT(log_->EndOffsetForEpoch(1), IsOkAndHolds(5));
}

TEST_F(PartitionLogTest, ClosedLogRefusesCallsAndDeleteFilesRemovesAll) {
  Open();
  AppendBatches(1);
  RUNNEL_ASSERT_OK(log_->Close());
  RUNNEL_ASSERT_OK(log_->Close());  // idempotent
  EXPECT_THAT(log_->Append(MakeBatch(1, 0), 0),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(log_->Read(0, 10),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  RUNNEL_ASSERT_OK(log_->DeleteFiles());
  EXPECT_FALSE(std::filesystem::exists(Options().dir));
}

// --- read path: tail cache, no forced flush ---

// A batch of `records` records with `value_bytes`-byte values.
std::string MakeBigBatch(int records, size_t value_bytes, char fill) {
  RecordBatchBuilder builder;
  for (int i = 0; i < records; ++i) {
    builder.Append(1000 + i, std::nullopt, std::string(value_bytes, fill));
  }
  return builder.Build().value();
}

TEST_F(PartitionLogTest,
       TailingReadRightAfterAppendForcesNoFlushAndNoFileRead) {
  pread_on_caller_ = false;  // every file read would show in the IoThread stats
  Open();
  AppendBatches(2);
  RUNNEL_ASSERT_OK(log_->Flush());
  // Hold the I/O thread: no write can complete, so a read that forced a
  // flush or waited for a write would hang here, and the stats cannot move
  // behind the test's back.
  // Shared with the closure: the I/O thread may still be inside
  // WaitForNotification when the test body returns.
  struct Gate {
    absl::Notification entered;
    absl::Notification release;
  };
  auto gate = std::make_shared<Gate>();
  io_->Post([gate] {
    gate->entered.Notify();
    gate->release.WaitForNotification();
  });
  gate->entered.WaitForNotification();
  // Whatever happens below (an ASSERT returning early included), let the I/O
  // thread go before the fixture tears the log down.
  absl::Cleanup unblock = [gate] {
    if (!gate->release.HasBeenNotified()) gate->release.Notify();
  };
  AppendBatches(3, 5, 5000);  // offsets 10..24, not written yet
  IoThreadStats before = io_->Stats();
  auto read = log_->Read(10, 1 << 20);
  auto old = log_->Read(0, 1 << 20);  // written earlier: still in the cache
  auto by_time = log_->OffsetForTimestamp(6001);
  IoThreadStats after = io_->Stats();
  std::move(unblock).Invoke();
  ASSERT_THAT(read, IsOk());
  ASSERT_THAT(old, IsOk());
  EXPECT_THAT(by_time, IsOkAndHolds(16));
  // Served from memory: no write was requested, nothing was read.
  EXPECT_EQ(after.write_requests, before.write_requests);
  EXPECT_EQ(after.read_requests, before.read_requests);
  std::vector<BatchSummary> views = Split(read->bytes);
  ASSERT_THAT(views, SizeIs(3));
  for (size_t i = 0; i < views.size(); ++i) {
    EXPECT_EQ(views[i].base_offset(), static_cast<Offset>(10 + 5 * i));
    EXPECT_TRUE(views[i].CrcMatches());
  }
  EXPECT_THAT(Split(old->bytes), SizeIs(5));
}

TEST_F(PartitionLogTest, CachedTailReadsEqualTheFileAfterReopen) {
  Open();
  // Odd batch sizes so batches straddle O_DIRECT blocks and write buffers.
  std::vector<std::string> cached;
  for (int i = 0; i < 40; ++i) {
    ASSERT_THAT(
        log_->Append(MakeBigBatch(1 + i % 7, 3000 + 17 * i, 'a' + i % 26), 0),
        IsOk());
    if (i % 9 == 0) {
      RUNNEL_ASSERT_OK(log_->Flush());  // partial-block rewrites
    }
  }
  for (Offset o = 0; o < log_->log_end_offset(); o += 13) {
    auto read = log_->Read(o, 64 << 10);
    ASSERT_THAT(read, IsOk());
    cached.push_back(read->bytes);
  }
  Reopen(/*clean_shutdown=*/true);
  RUNNEL_ASSERT_OK(log_->Roll());  // closed segment: only the file
  size_t i = 0;
  for (Offset o = 0; o < log_->log_end_offset(); o += 13, ++i) {
    auto read = log_->Read(o, 64 << 10);
    ASSERT_THAT(read, IsOk());
    ASSERT_LT(i, cached.size());
    EXPECT_EQ(read->bytes, cached[i]) << "offset " << o;
  }
  EXPECT_EQ(i, cached.size());
}

TEST_F(PartitionLogTest, ReadOfAnEvictedTailFallsBackToTheFile) {
  pread_on_caller_ = false;     // count file reads in the IoThread stats
  tail_cache_bytes_ = 2 << 20;  // two 1 MiB buffers of written bytes
  Open();
  const std::string batch = MakeBigBatch(16, 4000, 'x');  // ~64 KiB
  int batches = static_cast<int>((5 << 20) / batch.size());
  for (int i = 0; i < batches; ++i) ASSERT_THAT(log_->Append(batch, 0), IsOk());
  RUNNEL_ASSERT_OK(log_->Flush());
  // The head was written and evicted: a file read.
  IoThreadStats before = io_->Stats();
  auto head = log_->Read(0, 1);
  ASSERT_THAT(head, IsOk());
  EXPECT_GT(io_->Stats().read_requests, before.read_requests);
  std::vector<BatchSummary> views = Split(head->bytes);
  ASSERT_THAT(views, SizeIs(1));
  EXPECT_EQ(views[0].base_offset(), 0);
  EXPECT_TRUE(views[0].CrcMatches());
  // The last batch is still in memory.
  before = io_->Stats();
  auto tail = log_->Read(log_->log_end_offset() - 1, 1);
  ASSERT_THAT(tail, IsOk());
  EXPECT_EQ(io_->Stats().read_requests, before.read_requests);
  views = Split(tail->bytes);
  ASSERT_THAT(views, SizeIs(1));
  EXPECT_EQ(views[0].base_offset(), log_->log_end_offset() - 16);
  EXPECT_TRUE(views[0].CrcMatches());
}

TEST_F(PartitionLogTest, ReadsRacingWithAppendsAndRollsSeeWholeValidBatches) {
  const uint64_t seed = runnel::testing::TestSeed();
  SCOPED_TRACE(absl::StrCat("seed=", seed));
  tail_cache_bytes_ = 0;            // exercise cache, file and straddling reads
  config_.segment_bytes = 3 << 20;  // rolls while readers read
  Open();
  constexpr int kBatches = 240;
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::atomic<int64_t> reads{0};
  auto reader = [&](uint64_t reader_seed) {
    std::mt19937_64 rng(reader_seed);
    while (!done.load()) {
      Offset end = log_->log_end_offset();
      if (end == 0) continue;
      Offset from = static_cast<Offset>(rng() % static_cast<uint64_t>(end));
      auto read = log_->Read(from, 1 + rng() % (1 << 20));
      if (!read.ok()) {
        ++failures;
        ADD_FAILURE() << read.status();
        return;
      }
      auto views = SplitBatches(read->bytes, BatchSource::kDisk);
      if (!views.ok() || views->empty()) {
        ++failures;
        ADD_FAILURE() << "offset " << from << ": no whole batches";
        return;
      }
      Offset expect = read->first_offset;
      for (const RecordBatchView& v : *views) {
        if (!v.CrcMatches() || v.base_offset() != expect) {
          ++failures;
          ADD_FAILURE() << "offset " << from << ": bad batch at " << expect;
          return;
        }
        expect = v.last_offset() + 1;
      }
      if (read->first_offset > from || expect <= from) {
        ++failures;
        ADD_FAILURE() << "offset " << from << " not in the result";
        return;
      }
      ++reads;
    }
  };
  std::thread r1(reader, seed);
  std::thread r2(reader, seed + 1);
  std::mt19937_64 rng(seed);
  for (int i = 0; i < kBatches && failures.load() == 0; ++i) {
    ASSERT_THAT(log_->Append(MakeBigBatch(1 + static_cast<int>(rng() % 8),
                                          1000 + rng() % 9000, 'a' + i % 26),
                             0),
                IsOk());
    if (i % 50 == 0) {
      RUNNEL_ASSERT_OK(log_->Flush());
    }
  }
  done = true;
  r1.join();
  r2.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(log_->segment_count(), 1);
  EXPECT_GT(reads.load(), 0);
}

TEST(LogConfigTest, ValidateRejectsOutOfRangeFields) {
  RUNNEL_EXPECT_OK(LogConfig{}.Validate());
  LogConfig config;
  config.segment_bytes = 10;
  EXPECT_THAT(config.Validate(), StatusIs(absl::StatusCode::kInvalidArgument));
  config = LogConfig{};
  config.retention_ms = -2;
  EXPECT_THAT(config.Validate(), StatusIs(absl::StatusCode::kInvalidArgument));
  config = LogConfig{};
  config.cleanup_policy = "keep";
  EXPECT_THAT(config.Validate(), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace runnel::log
