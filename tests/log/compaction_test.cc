// PartitionLog::Compact: what a pass keeps, offsets, the log's bounds,
// reopen, crashes in the commit (docs/log-format.md, "Compaction") and
// concurrency with appends and reads.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <latch>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "common/clock.h"
#include "log/checkpoint_file.h"
#include "log/io_thread.h"
#include "log/partition_log.h"
#include "log/record_batch.h"
#include "log/segment.h"
#include "tests/testing/scoped_temp_dir.h"
#include "tests/testing/status_matchers.h"

namespace runnel::log {
namespace {

namespace fs = std::filesystem;
using ::runnel::testing::IsOk;
using ::runnel::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

// One record as a test sees it.
struct Rec {
  Offset offset;
  std::optional<std::string> key;
  std::optional<std::string> value;
  bool operator==(const Rec&) const = default;
};

void PrintTo(const Rec& r, std::ostream* os) {
  *os << "{" << r.offset << ", " << (r.key ? *r.key : "<null>") << "="
      << (r.value ? *r.value : "<null>") << "}";
}

struct KV {
  std::optional<std::string> key;
  std::optional<std::string> value;
};

std::string Batch(const std::vector<KV>& records, int64_t ts,
                  Compression codec = Compression::kNone) {
  RecordBatchBuilder builder({.compression = codec});
  for (const KV& kv : records) builder.Append(ts, kv.key, kv.value);
  return builder.Build().value();
}

std::vector<Rec> Decode(const std::string& bytes) {
  std::vector<Rec> out;
  auto views = SplitBatches(bytes, BatchSource::kDisk);
  EXPECT_THAT(views, IsOk());
  if (!views.ok()) return out;
  for (const RecordBatchView& v : *views) {
    EXPECT_THAT(ValidateBatch(v.bytes(), {.source = BatchSource::kDisk,
                                          .offset_gaps = true}),
                IsOk());
    auto records = v.DecodeRecords(BatchSource::kDisk);
    EXPECT_THAT(records, IsOk());
    if (!records.ok()) continue;
    for (Record& r : *records) {
      out.push_back({r.offset, std::move(r.key), std::move(r.value)});
    }
  }
  return out;
}

std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Damages a closed segment in place: the one-character value of the first
// record with key `key` ("k", value length varint 2, "v") becomes '0'. The
// record still decodes; only the batch's CRC tells. Returns the file's new
// bytes ("" if the record was not found).
std::string DamageValue(const std::string& path, char key) {
  std::string bytes = FileBytes(path);
  const size_t at = bytes.find(std::string{key, '\x02'});
  if (at == std::string::npos || at + 2 >= bytes.size()) return "";
  bytes[at + 2] = '0';
  std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return bytes;
}

class CompactionTest : public ::testing::Test {
 protected:
  using CompactionResult = PartitionLog::CompactionResult;

  void SetUp() override {
    auto io = IoThread::Start({});
    ASSERT_THAT(io, IsOk());
    io_ = std::move(io).value();
    config_.cleanup_policy = "compact";
    config_.delete_retention_ms = 1'000'000;
    // What a pass does, not when: every pass with dirty data runs.
    config_.min_cleanable_dirty_ratio = 0;
  }

  std::string Dir() const { return dir_.Sub(dir_name_); }

  PartitionLogOptions Options() {
    PartitionLogOptions options;
    options.dir = Dir();
    options.topic = "orders";
    options.partition = 0;
    options.config = config_;
    options.io = io_.get();
    options.clock = &clock_;
    options.compaction_map_bytes = map_bytes_;
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

  void Append(const std::vector<KV>& records) {
    ASSERT_THAT(log_->Append(Batch(records, clock_.NowMs()), 0), IsOk());
  }

  // Every record from `from` on, read batch by batch.
  std::vector<Rec> ReadAll(Offset from = 0) {
    std::string all;
    while (from < log_->log_end_offset()) {
      auto read = log_->Read(from, 1 << 20);
      EXPECT_THAT(read, IsOk());
      if (!read.ok() || read->bytes.empty()) break;
      all += read->bytes;
      from = read->next_offset;
    }
    return Decode(all);
  }

  CompactionResult Compact() {
    auto result = log_->Compact();
    EXPECT_THAT(result, IsOk());
    return result.ok() ? *result : CompactionResult{};
  }

  // Segments: [a=1 b=1 c=1][a=2 x] | [b=2 d=1][d=2] | active [a=3].
  // After a pass: c=1@2, b=2@5, d=2@7 and (untouched) a=3@8; a=2@3 stays
  // too: the map does not look into the active segment.
  void WriteThreeSegments() {
    Append({{"a", "1"}, {"b", "1"}, {"c", "1"}});
    Append({{"a", "2"}, {std::nullopt, "x"}});
    RUNNEL_ASSERT_OK(log_->Roll());
    Append({{"b", "2"}, {"d", "1"}});
    Append({{"d", "2"}});
    RUNNEL_ASSERT_OK(log_->Roll());
    Append({{"a", "3"}});
  }
  static std::vector<Rec> ThreeSegmentsBefore() {
    return {{0, "a", "1"}, {1, "b", "1"},          {2, "c", "1"},
            {3, "a", "2"}, {4, std::nullopt, "x"}, {5, "b", "2"},
            {6, "d", "1"}, {7, "d", "2"},          {8, "a", "3"}};
  }
  static std::vector<Rec> ThreeSegmentsAfter() {
    return {{2, "c", "1"},
            {3, "a", "2"},
            {5, "b", "2"},
            {7, "d", "2"},
            {8, "a", "3"}};
  }

  testing::ScopedTempDir dir_;
  std::string dir_name_ = "orders-0";
  ManualClock clock_{1'700'000'000'000};
  LogConfig config_;
  size_t map_bytes_ = PartitionLogOptions{}.compaction_map_bytes;
  std::unique_ptr<IoThread> io_;
  std::unique_ptr<PartitionLog> log_;  // destroyed before io_
};

TEST_F(CompactionTest, KeepsTheLatestRecordPerKeyWithOffsetsUnchanged) {
  Open();
  WriteThreeSegments();
  ASSERT_EQ(ReadAll(), ThreeSegmentsBefore());
  CompactionResult result = Compact();
  EXPECT_EQ(result.records_removed, 4);  // a=1, b=1, the keyless x, d=1
  EXPECT_EQ(result.segments_rewritten, 2);
  EXPECT_EQ(result.segments_removed, 0);
  EXPECT_LT(result.bytes_after, result.bytes_before);
  EXPECT_EQ(ReadAll(), ThreeSegmentsAfter());
  EXPECT_EQ(log_->log_start_offset(), 0);
  EXPECT_EQ(log_->log_end_offset(), 9);
  // New appends go on from the same end offset.
  Append({{"f", "1"}});
  EXPECT_EQ(log_->log_end_offset(), 10);
}

TEST_F(CompactionTest, ReadFromEveryOffsetReturnsTheKeptRecordsInOrder) {
  Open();
  WriteThreeSegments();
  Compact();
  const std::vector<Rec> after = ThreeSegmentsAfter();
  for (Offset from = 0; from < 9; ++from) {
    SCOPED_TRACE(absl::StrCat("from=", from));
    // A read returns whole batches: records below `from` may come first.
    std::vector<Rec> got;
    for (const Rec& r : ReadAll(from)) {
      if (r.offset >= from) got.push_back(r);
    }
    std::vector<Rec> want;
    for (const Rec& r : after) {
      if (r.offset >= from) want.push_back(r);
    }
    EXPECT_EQ(got, want);
    // A batch whose records at and after `from` are gone may come alone;
    // the read still moves on.
    auto one = log_->Read(from, 1 << 20);
    ASSERT_THAT(one, IsOk());
    ASSERT_FALSE(one->bytes.empty());
    EXPECT_LE(one->first_offset, from);
    EXPECT_GT(one->next_offset, from);
  }
}

TEST_F(CompactionTest, EveryCodecIsCompacted) {
  Open();
  for (Compression codec :
       {Compression::kGzip, Compression::kSnappy, Compression::kLz4,
        Compression::kZstd, Compression::kNone}) {
    ASSERT_THAT(log_->Append(Batch({{"k", std::string(CompressionName(codec))},
                                    {"other", "1"}},
                                   clock_.NowMs(), codec),
                             0),
                IsOk());
  }
  RUNNEL_ASSERT_OK(log_->Roll());
  Append({{"z", "1"}});
  EXPECT_EQ(Compact().records_removed, 8);
  EXPECT_EQ(
      ReadAll(),
      (std::vector<Rec>{{8, "k", "none"}, {9, "other", "1"}, {10, "z", "1"}}));
}

TEST_F(CompactionTest, TheActiveSegmentIsNeverTouched) {
  Open();
  Append({{"a", "1"}, {"a", "2"}, {std::nullopt, "x"}});
  Append({{"a", "3"}});
  // The log's bytes, not the file's: the writer may still be writing them.
  auto before = log_->Read(0, 1 << 20);
  ASSERT_THAT(before, IsOk());
  const CompactionResult result = Compact();
  EXPECT_EQ(result.records_removed, 0);
  EXPECT_EQ(result.segments_rewritten, 0);
  EXPECT_EQ(log_->segment_count(), 1);
  auto after = log_->Read(0, 1 << 20);
  ASSERT_THAT(after, IsOk());
  EXPECT_EQ(after->bytes, before->bytes);
  EXPECT_EQ(ReadAll().size(), 4u);
}

TEST_F(CompactionTest, NothingHappensUnderTheDeletePolicy) {
  config_.cleanup_policy = "delete";
  Open();
  WriteThreeSegments();
  CompactionResult result = Compact();
  EXPECT_EQ(result.records_removed, 0);
  EXPECT_EQ(ReadAll(), ThreeSegmentsBefore());
  EXPECT_FALSE(fs::exists(Dir() + "/cleaner-offset-checkpoint"));
}

TEST_F(CompactionTest, CompactAndDeletePolicyCompacts) {
  config_.cleanup_policy = "compact,delete";
  Open();
  WriteThreeSegments();
  EXPECT_EQ(Compact().records_removed, 4);
  EXPECT_EQ(ReadAll(), ThreeSegmentsAfter());
}

TEST_F(CompactionTest, TombstoneStaysForDeleteRetentionMs) {
  config_.delete_retention_ms = 10'000;
  Open();
  Append({{"a", "1"}, {"b", "1"}});
  Append({{"a", std::nullopt}});
  RUNNEL_ASSERT_OK(log_->Roll());
  Append({{"z", "1"}});
  EXPECT_EQ(Compact().records_removed, 1);  // a=1; the tombstone stays
  EXPECT_EQ(
      ReadAll(),
      (std::vector<Rec>{{1, "b", "1"}, {2, "a", std::nullopt}, {3, "z", "1"}}));
  clock_.AdvanceMs(10'000);  // not older than delete.retention.ms yet
  EXPECT_EQ(Compact().records_removed, 0);
  EXPECT_EQ(ReadAll().size(), 3u);
  clock_.AdvanceMs(1);
  EXPECT_EQ(Compact().records_removed, 1);
  EXPECT_EQ(ReadAll(), (std::vector<Rec>{{1, "b", "1"}, {3, "z", "1"}}));
  EXPECT_EQ(log_->log_start_offset(), 0);
}

TEST_F(CompactionTest, MinCompactionLagHoldsYoungSegmentsBack) {
  config_.min_compaction_lag_ms = 5'000;
  Open();
  Append({{"a", "1"}, {"a", "2"}});
  RUNNEL_ASSERT_OK(log_->Roll());
  clock_.AdvanceMs(3'000);
  Append({{"b", "1"}, {"b", "2"}});
  RUNNEL_ASSERT_OK(log_->Roll());
  Append({{"z", "1"}});
  clock_.AdvanceMs(2'000);  // first segment exactly 5 s old, second 2 s
  EXPECT_EQ(Compact().records_removed, 1);
  EXPECT_EQ(ReadAll(),
            (std::vector<Rec>{
                {1, "a", "2"}, {2, "b", "1"}, {3, "b", "2"}, {4, "z", "1"}}));
  clock_.AdvanceMs(3'000);
  EXPECT_EQ(Compact().records_removed, 1);
  EXPECT_EQ(ReadAll(),
            (std::vector<Rec>{{1, "a", "2"}, {3, "b", "2"}, {4, "z", "1"}}));
}

// min.compaction.lag.ms = 0 (the default): a record stamped in the future
// (a client's skewed clock) does not hold its segment, nor the ones after
// it, back.
TEST_F(CompactionTest, AFutureTimestampHoldsNothingBackWithoutALag) {
  Open();
  ASSERT_THAT(
      log_->Append(Batch({{"a", "1"}}, clock_.NowMs() + 365LL * 86'400'000), 0),
      IsOk());
  RUNNEL_ASSERT_OK(log_->Roll());
  Append({{"a", "2"}, {"b", "1"}});
  RUNNEL_ASSERT_OK(log_->Roll());
  Append({{"b", "2"}});
  RUNNEL_ASSERT_OK(log_->Roll());
  Append({{"z", "1"}});
  EXPECT_EQ(Compact().records_removed, 2);
  EXPECT_EQ(ReadAll(),
            (std::vector<Rec>{{1, "a", "2"}, {3, "b", "2"}, {4, "z", "1"}}));
}

// A batch whose CRC no longer matches (a flipped bit in a closed segment)
// stops the pass with kDataLoss: its key is not mapped and its bytes are not
// given a new CRC; no segment changes.
TEST_F(CompactionTest, ACorruptBatchStopsThePassAndChangesNothing) {
  Open();
  WriteThreeSegments();
  const std::string first_path = SegmentFilePath(Dir(), 0, ".log");
  const std::string second_path = SegmentFilePath(Dir(), 5, ".log");
  // c=1 becomes c=0.
  const std::string first = DamageValue(first_path, 'c');
  ASSERT_FALSE(first.empty());
  const std::string second = FileBytes(second_path);
  EXPECT_THAT(log_->Compact(), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_EQ(FileBytes(first_path), first);
  EXPECT_EQ(FileBytes(second_path), second);
  EXPECT_FALSE(fs::exists(Dir() + "/.cleaning"));
  EXPECT_FALSE(fs::exists(Dir() + "/.swap"));
}

// A pass with nothing new to map and no tombstone that could expire reads
// nothing. Seen through a batch damaged after the first pass: only a pass
// that reads finds it.
TEST_F(CompactionTest, APassWithNothingToDoReadsNothing) {
  for (const bool tombstone : {false, true}) {
    SCOPED_TRACE(tombstone ? "a tombstone kept" : "no tombstone");
    dir_name_ = tombstone ? "with-tombstone-0" : "without-0";
    Open();
    Append({{"a", "1"}, {"b", "1"}});
    if (tombstone) {
      Append({{"b", std::nullopt}});
    } else {
      Append({{"b", "2"}});
    }
    RUNNEL_ASSERT_OK(log_->Roll());
    Append({{"z", "1"}});
    EXPECT_EQ(Compact().records_removed, 1);  // b=1
    // a=1 becomes a=0.
    ASSERT_FALSE(DamageValue(SegmentFilePath(Dir(), 0, ".log"), 'a').empty());
    if (tombstone) {
      // The kept tombstone may expire: the pass reads, and finds the damage.
      EXPECT_THAT(log_->Compact(), StatusIs(absl::StatusCode::kDataLoss));
    } else {
      EXPECT_THAT(log_->Compact(), IsOk());
      // New data to map: the pass reads again.
      RUNNEL_ASSERT_OK(log_->Roll());
      Append({{"y", "1"}});
      EXPECT_THAT(log_->Compact(), StatusIs(absl::StatusCode::kDataLoss));
    }
  }
}

// A pass asked to stop (the LogManager is closing) ends with kCancelled
// between segments; what it replaced stays replaced, the log reads
// consistently, and the next pass finishes the work.
TEST_F(CompactionTest, AStoppedPassEndsBetweenSegmentsAndTheNextFinishes) {
  // Asked before mapping each of the two closed segments, then before
  // cleaning each: 4 stops after the first segment was replaced.
  for (const int stop_at : {1, 2, 3, 4}) {
    SCOPED_TRACE(stop_at);
    dir_name_ = absl::StrCat("stopped-", stop_at, "-0");
    Open();
    WriteThreeSegments();
    int asked = 0;
    EXPECT_THAT(log_->Compact([&] { return ++asked >= stop_at; }),
                StatusIs(absl::StatusCode::kCancelled));
    EXPECT_EQ(asked, stop_at);
    // Every record of the second pass's result is still there, at its
    // offset; the ones a finished pass removes may be too.
    const std::vector<Rec> now = ReadAll();
    for (const Rec& r : ThreeSegmentsAfter()) {
      EXPECT_THAT(now, ::testing::Contains(r));
    }
    Compact();
    EXPECT_EQ(ReadAll(), ThreeSegmentsAfter());
  }
}

// min.cleanable.dirty.ratio (Kafka's default 0.5): a pass waits until the
// closed segments after the cleaner checkpoint are that share of all closed
// segments' bytes.
TEST_F(CompactionTest, APassWaitsForTheDirtyRatio) {
  config_.min_cleanable_dirty_ratio = 0.5;
  Open();
  Append({{"a", "1"}, {"b", "1"}, {"c", "1"}, {"d", "1"}});
  RUNNEL_ASSERT_OK(log_->Roll());
  Append({{"a", "2"}});
  EXPECT_EQ(Compact().records_removed, 0);  // all dirty: maps [a b c d]
  RUNNEL_ASSERT_OK(log_->Roll());
  Append({{"b", "2"}});
  // Dirty: one 1-record batch against one 4-record batch: under half.
  EXPECT_EQ(Compact().records_removed, 0);
  EXPECT_EQ(ReadAll().size(), 6u);
  RUNNEL_ASSERT_OK(log_->Roll());
  Append({{"z", "1"}});
  // Two 1-record batches dirty against one 4-record batch: over half.
  EXPECT_EQ(Compact().records_removed, 2);  // a=1, b=1
  EXPECT_EQ(ReadAll(), (std::vector<Rec>{{2, "c", "1"},
                                         {3, "d", "1"},
                                         {4, "a", "2"},
                                         {5, "b", "2"},
                                         {6, "z", "1"}}));
}

TEST_F(CompactionTest, EmptiedSegmentsGoButTheLogStartStays) {
  Open();
  Append({{"a", "1"}});
  RUNNEL_ASSERT_OK(log_->Roll());
  Append({{"a", "2"}});
  RUNNEL_ASSERT_OK(log_->Roll());
  Append({{"a", "3"}, {"b", "1"}});
  RUNNEL_ASSERT_OK(log_->Roll());
  Append({{"z", "1"}});
  ASSERT_EQ(log_->segment_count(), 4);
  CompactionResult result = Compact();
  EXPECT_EQ(result.records_removed, 2);
  EXPECT_EQ(result.segments_removed, 1);    // the second
  EXPECT_EQ(result.segments_rewritten, 1);  // the first, now empty
  EXPECT_EQ(log_->segment_count(), 3);
  EXPECT_EQ(log_->log_start_offset(), 0);
  EXPECT_EQ(log_->log_end_offset(), 5);
  const std::vector<Rec> want{{2, "a", "3"}, {3, "b", "1"}, {4, "z", "1"}};
  EXPECT_EQ(ReadAll(0), want);
  EXPECT_EQ(ReadAll(1), want);
  for (bool clean : {true, false}) {
    SCOPED_TRACE(clean ? "clean" : "unclean");
    if (clean) {
      RUNNEL_ASSERT_OK(log_->Close());
    }
    Open(clean);
    EXPECT_THAT(log_->recovery_problems(), IsEmpty());
    EXPECT_EQ(log_->log_start_offset(), 0);
    EXPECT_EQ(log_->log_end_offset(), 5);
    EXPECT_EQ(ReadAll(0), want);
  }
}

TEST_F(CompactionTest, ASecondPassChangesNothing) {
  Open();
  WriteThreeSegments();
  Compact();
  const std::string first = FileBytes(SegmentFilePath(Dir(), 0, ".log"));
  const std::string second = FileBytes(SegmentFilePath(Dir(), 5, ".log"));
  CompactionResult again = Compact();
  EXPECT_EQ(again.records_removed, 0);
  EXPECT_EQ(again.segments_rewritten, 0);
  EXPECT_EQ(again.segments_removed, 0);
  EXPECT_EQ(FileBytes(SegmentFilePath(Dir(), 0, ".log")), first);
  EXPECT_EQ(FileBytes(SegmentFilePath(Dir(), 5, ".log")), second);
  EXPECT_EQ(ReadAll(), ThreeSegmentsAfter());
}

TEST_F(CompactionTest, LaterPassRemovesOlderRecordsOfNewlyWrittenKeys) {
  Open();
  WriteThreeSegments();
  Compact();
  RUNNEL_ASSERT_OK(log_->Roll());  // a=3 is now in a closed segment
  Append({{"z", "1"}});
  EXPECT_EQ(Compact().records_removed, 1);  // a=2, below the checkpoint
  EXPECT_EQ(ReadAll(), (std::vector<Rec>{{2, "c", "1"},
                                         {5, "b", "2"},
                                         {7, "d", "2"},
                                         {8, "a", "3"},
                                         {9, "z", "1"}}));
}

TEST_F(CompactionTest, SmallKeyMapCleansOneMoreSegmentPerPass) {
  map_bytes_ = 1;  // every pass maps one segment
  Open();
  for (const char* key : {"a", "b", "c"}) {
    Append({{key, "1"}, {key, "2"}});
    RUNNEL_ASSERT_OK(log_->Roll());
  }
  Append({{"a", "3"}, {"z", "1"}});
  EXPECT_EQ(Compact().records_removed, 1);
  EXPECT_EQ(ReadAll().size(), 7u);
  EXPECT_EQ(Compact().records_removed, 1);
  EXPECT_EQ(Compact().records_removed, 1);
  EXPECT_EQ(Compact().records_removed, 0);
  EXPECT_EQ(ReadAll(), (std::vector<Rec>{{1, "a", "2"},
                                         {3, "b", "2"},
                                         {5, "c", "2"},
                                         {6, "a", "3"},
                                         {7, "z", "1"}}));
}

TEST_F(CompactionTest, ControlBatchesAreLeftAlone) {
  Open();
  RecordBatchBuilder control({.producer_id = 9,
                              .producer_epoch = 0,
                              .transactional = true,
                              .control = true});
  control.Append(clock_.NowMs(), "a", "marker");
  ASSERT_THAT(log_->Append(control.Build().value(), 0), IsOk());
  Append({{"a", "1"}});
  RUNNEL_ASSERT_OK(log_->Roll());
  Append({{"z", "1"}});
  EXPECT_EQ(Compact().records_removed, 0);
  EXPECT_EQ(ReadAll().size(), 3u);
}

class CompactionReopenTest : public CompactionTest,
                             public ::testing::WithParamInterface<bool> {};

TEST_P(CompactionReopenTest, ReopenRecoversTheCompactedRecords) {
  const bool clean = GetParam();
  Open();
  WriteThreeSegments();
  Compact();
  if (clean) {
    RUNNEL_ASSERT_OK(log_->Close());
  }
  Open(clean, /*recovery_point=*/0);
  EXPECT_THAT(log_->recovery_problems(), IsEmpty());
  EXPECT_EQ(log_->log_start_offset(), 0);
  EXPECT_EQ(log_->log_end_offset(), 9);
  EXPECT_EQ(ReadAll(), ThreeSegmentsAfter());
  // The compacted segments keep their gaps; appends go on.
  Append({{"g", "1"}});
  EXPECT_EQ(log_->log_end_offset(), 10);
  EXPECT_EQ(Compact().records_removed, 0);
  // And once more, unclean with the recovery point at the end: the
  // compacted segments are opened with their indexes as they are.
  Open(false, /*recovery_point=*/10);
  std::vector<Rec> want = ThreeSegmentsAfter();
  want.push_back({9, "g", "1"});
  EXPECT_EQ(ReadAll(), want);
  for (Offset from = 0; from < 10; ++from) {
    auto read = log_->Read(from, 1 << 20);
    ASSERT_THAT(read, IsOk());
    EXPECT_FALSE(read->bytes.empty()) << from;
  }
}

INSTANTIATE_TEST_SUITE_P(CleanAndUnclean, CompactionReopenTest,
                         ::testing::Bool(), [](const auto& info) {
                           return info.param ? "Clean" : "Unclean";
                         });

// A crash in the middle of a commit, re-enacted on disk: the partition is
// copied before (old) and compacted in a second copy (new), whose files then
// stand for what the pass had written when it stopped.
class CompactionCrashTest : public CompactionTest {
 protected:
  void SetUp() override {
    CompactionTest::SetUp();
    Open();
    WriteThreeSegments();
    RUNNEL_ASSERT_OK(log_->Close());
    log_.reset();
    fs::copy(Dir(), dir_.Sub("new"), fs::copy_options::recursive);
    dir_name_ = "new";
    Open(/*clean_shutdown=*/true);
    Compact();
    RUNNEL_ASSERT_OK(log_->Close());
    log_.reset();
    dir_name_ = "orders-0";
  }

  std::string New(const std::string& name) const {
    return dir_.Sub("new") + "/" + name;
  }
  std::string Old(const std::string& name) const { return Dir() + "/" + name; }
  static std::vector<std::string> SegmentFiles(Offset base) {
    return {SegmentFileName(base, ".log"), SegmentFileName(base, ".index"),
            SegmentFileName(base, ".timeindex")};
  }
  static std::string SegmentFileName(Offset base, const char* suffix) {
    return fs::path(SegmentFilePath("", base, suffix)).filename().string();
  }

  // The cleaner checkpoint as a pass writes it.
  void WriteCheckpoint(Offset offset) {
    RUNNEL_ASSERT_OK(CheckpointFile(Old("cleaner-offset-checkpoint"))
                         .Write({{"orders", 0, offset}}));
  }

  // Opens uncleanly and checks the log holds exactly `want`, readable from
  // every offset, and takes appends.
  void ExpectRecoversTo(const std::vector<Rec>& want) {
    Open(/*clean_shutdown=*/false);
    EXPECT_THAT(log_->recovery_problems(), IsEmpty());
    EXPECT_FALSE(fs::exists(Old(".cleaning")));
    EXPECT_FALSE(fs::exists(Old(".swap")));
    EXPECT_EQ(log_->log_start_offset(), 0);
    EXPECT_EQ(log_->log_end_offset(), 9);
    EXPECT_EQ(ReadAll(), want);
    for (Offset from = 0; from < 9; ++from) {
      auto read = log_->Read(from, 1 << 20);
      ASSERT_THAT(read, IsOk());
      EXPECT_FALSE(read->bytes.empty()) << from;
    }
    Append({{"h", "1"}});
    EXPECT_EQ(log_->log_end_offset(), 10);
  }
};

TEST_F(CompactionCrashTest, CopyWrittenButNotCommittedIsDropped) {
  fs::create_directory(Old(".cleaning"));
  for (const std::string& f : SegmentFiles(0)) {
    fs::copy_file(New(f), Old(".cleaning/" + f));
  }
  ExpectRecoversTo(ThreeSegmentsBefore());
}

TEST_F(CompactionCrashTest, HalfWrittenCopyIsDropped) {
  fs::create_directory(Old(".cleaning"));
  std::string log = FileBytes(New(SegmentFileName(0, ".log")));
  std::ofstream(Old(".cleaning/" + SegmentFileName(0, ".log")),
                std::ios::binary)
      << log.substr(0, log.size() / 2);
  ExpectRecoversTo(ThreeSegmentsBefore());
}

TEST_F(CompactionCrashTest, CheckpointRaisedButNotCommittedKeepsTheOldSegment) {
  WriteCheckpoint(5);  // raised for the first segment, not committed
  fs::create_directory(Old(".cleaning"));
  for (const std::string& f : SegmentFiles(0)) {
    fs::copy_file(New(f), Old(".cleaning/" + f));
  }
  ExpectRecoversTo(ThreeSegmentsBefore());
  // The checkpoint is above the first segment, which was not replaced: the
  // next pass maps from the start again and compacts it.
  EXPECT_EQ(Compact().records_removed, 4);
  EXPECT_EQ(ReadAll(), (std::vector<Rec>{{2, "c", "1"},
                                         {3, "a", "2"},
                                         {5, "b", "2"},
                                         {7, "d", "2"},
                                         {8, "a", "3"},
                                         {9, "h", "1"}}));
}

// The new first segment with the old second one: what a crash between the
// two segments' commits leaves.
std::vector<Rec> FirstSegmentOnly() {
  return {{2, "c", "1"}, {3, "a", "2"}, {5, "b", "2"},
          {6, "d", "1"}, {7, "d", "2"}, {8, "a", "3"}};
}

TEST_F(CompactionCrashTest, CommittedSwapIsCompletedAtOpen) {
  WriteCheckpoint(5);
  fs::create_directory(Old(".swap"));
  for (const std::string& f : SegmentFiles(0)) {
    fs::copy_file(New(f), Old(".swap/" + f));
  }
  ExpectRecoversTo(FirstSegmentOnly());
  // The second segment is compacted by the next pass.
  EXPECT_EQ(Compact().records_removed, 1);
}

TEST_F(CompactionCrashTest, HalfMovedSwapIsCompletedAtOpen) {
  WriteCheckpoint(5);
  fs::create_directory(Old(".swap"));
  const std::vector<std::string> files = SegmentFiles(0);
  // The .log moved already; the indexes are still in .swap.
  fs::copy_file(New(files[0]), Old(files[0]),
                fs::copy_options::overwrite_existing);
  for (size_t i = 1; i < files.size(); ++i) {
    fs::copy_file(New(files[i]), Old(".swap/" + files[i]));
  }
  ExpectRecoversTo(FirstSegmentOnly());
}

TEST_F(CompactionCrashTest, EmptySwapDirectoryIsRemovedAtOpen) {
  WriteCheckpoint(5);
  for (const std::string& f : SegmentFiles(0)) {
    fs::copy_file(New(f), Old(f), fs::copy_options::overwrite_existing);
  }
  fs::create_directory(Old(".swap"));
  ExpectRecoversTo(FirstSegmentOnly());
}

TEST_F(CompactionCrashTest, BothSegmentsCommittedGiveTheCompactedLog) {
  fs::copy_file(New("cleaner-offset-checkpoint"),
                Old("cleaner-offset-checkpoint"));
  fs::create_directory(Old(".swap"));
  for (Offset base : {Offset{0}, Offset{5}}) {
    for (const std::string& f : SegmentFiles(base)) {
      fs::copy_file(New(f), Old(".swap/" + f));
    }
  }
  ExpectRecoversTo(ThreeSegmentsAfter());
}

TEST_F(CompactionTest, AppendsAndReadsGoOnDuringCompaction) {
  config_.segment_bytes = 4096;  // many segments roll under the appender
  Open();
  constexpr int kBatches = 300;
  constexpr int kKeys = 7;
  std::atomic<bool> appending{true};
  std::latch start(3);
  std::thread appender([&] {
    start.arrive_and_wait();
    for (int i = 0; i < kBatches; ++i) {
      const std::string key = absl::StrCat("k", i % kKeys);
      auto appended =
          log_->Append(Batch({{key, absl::StrCat(i)}, {key, absl::StrCat(i)}},
                             clock_.NowMs()),
                       0);
      EXPECT_THAT(appended, IsOk());
    }
    appending.store(false);
  });
  std::thread reader([&] {
    start.arrive_and_wait();
    int reads = 0;
    while (appending.load() || reads < 3) {
      ++reads;
      // Offsets only go up, and every read sees the latest record of each
      // key that was already written before the read began... at least the
      // keys' order of offsets stays.
      Offset prev = -1;
      for (const Rec& r : ReadAll(0)) {
        EXPECT_GT(r.offset, prev);
        prev = r.offset;
        ASSERT_TRUE(r.key.has_value());
        // Record i has offsets 2i and 2i+1 and value i.
        EXPECT_EQ(*r.value, absl::StrCat(r.offset / 2));
      }
    }
  });
  start.arrive_and_wait();
  int passes = 0;
  while (appending.load() || passes < 3) {
    ++passes;
    EXPECT_THAT(log_->Compact(), IsOk());
  }
  appender.join();
  reader.join();
  RUNNEL_ASSERT_OK(log_->Roll());
  Append({{"end", "1"}});
  Compact();
  // Exactly the latest record per key is left, with its original offset.
  std::vector<Rec> want;
  for (int i = kBatches - kKeys; i < kBatches; ++i) {
    want.push_back({2 * i + 1, absl::StrCat("k", i % kKeys), absl::StrCat(i)});
  }
  want.push_back({2 * kBatches, "end", "1"});
  EXPECT_EQ(ReadAll(), want);
  RUNNEL_ASSERT_OK(log_->Close());
  Open(/*clean_shutdown=*/true);
  EXPECT_EQ(ReadAll(), want);
}

TEST_F(CompactionTest, CompactOfAClosedLogIsFailedPrecondition) {
  Open();
  WriteThreeSegments();
  RUNNEL_ASSERT_OK(log_->Close());
  EXPECT_THAT(log_->Compact(), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(CompactionTest, TruncationIntoACompactedSegmentThenReopen) {
  Open();
  WriteThreeSegments();
  Compact();
  // Offset 6 is in the gap of batch [5, 6]: the batch goes whole.
  RUNNEL_ASSERT_OK(log_->TruncateTo(6));
  EXPECT_EQ(log_->log_end_offset(), 5);
  EXPECT_EQ(ReadAll(), (std::vector<Rec>{{2, "c", "1"}, {3, "a", "2"}}));
  Append({{"b", "3"}});
  Open(/*clean_shutdown=*/false);
  EXPECT_THAT(log_->recovery_problems(), IsEmpty());
  EXPECT_EQ(ReadAll(),
            (std::vector<Rec>{{2, "c", "1"}, {3, "a", "2"}, {5, "b", "3"}}));
}

TEST_F(CompactionTest, TruncationIntoAGapEndsTheLogAtTheOffset) {
  Open();
  Append({{"a", "1"}});
  Append({{"a", "2"}});
  RUNNEL_ASSERT_OK(log_->Roll());
  Append({{"a", "3"}});
  RUNNEL_ASSERT_OK(log_->Roll());
  Append({{"z", "1"}});
  Compact();  // the first segment keeps nothing; offsets 0, 1 are a gap
  EXPECT_EQ(ReadAll(), (std::vector<Rec>{{2, "a", "3"}, {3, "z", "1"}}));
  RUNNEL_ASSERT_OK(log_->TruncateTo(1));
  EXPECT_EQ(log_->log_end_offset(), 1);
  EXPECT_THAT(ReadAll(), IsEmpty());
  Append({{"b", "1"}});
  EXPECT_EQ(ReadAll(), (std::vector<Rec>{{1, "b", "1"}}));
  for (bool clean : {true, false}) {
    if (clean) {
      RUNNEL_ASSERT_OK(log_->Close());
    }
    Open(clean);
    EXPECT_THAT(log_->recovery_problems(), IsEmpty());
    EXPECT_EQ(log_->log_end_offset(), 2);
    EXPECT_EQ(ReadAll(), (std::vector<Rec>{{1, "b", "1"}}));
  }
}

TEST_F(CompactionTest,
       RecordsWrittenBelowTheCheckpointAfterATruncationAreMappedAfterARestart) {
  config_.delete_retention_ms = 1'000;
  Open();
  Append({{"a", "1"}});
  Append({{"b", "1"}});
  RUNNEL_ASSERT_OK(log_->Roll());
  Append({{"z", "1"}});
  EXPECT_EQ(Compact().records_removed, 0);  // the checkpoint is now 2
  RUNNEL_ASSERT_OK(log_->TruncateTo(1));
  EXPECT_TRUE(fs::exists(Dir() + "/cleaner-remap"));
  Append({{"a", std::nullopt}});  // offset 1, below the checkpoint
  RUNNEL_ASSERT_OK(log_->Roll());
  Append({{"y", "1"}});
  RUNNEL_ASSERT_OK(log_->Close());
  Open(/*clean_shutdown=*/true);
  // a=1 goes: the pass maps from the start again, not from the checkpoint.
  EXPECT_EQ(Compact().records_removed, 1);
  EXPECT_FALSE(fs::exists(Dir() + "/cleaner-remap"));
  EXPECT_EQ(ReadAll(),
            (std::vector<Rec>{{1, "a", std::nullopt}, {2, "y", "1"}}));
  // Once the tombstone expires, nothing of `a` is left (no resurrection).
  clock_.AdvanceMs(1'001);
  EXPECT_EQ(Compact().records_removed, 1);
  EXPECT_EQ(ReadAll(), (std::vector<Rec>{{2, "y", "1"}}));
}

TEST_F(CompactionCrashTest, InterruptedPassIsRememberedAcrossRestarts) {
  WriteCheckpoint(5);
  fs::create_directory(Old(".cleaning"));
  Open();
  EXPECT_TRUE(fs::exists(Old("cleaner-remap")));
  Open();  // a second restart before any pass
  EXPECT_TRUE(fs::exists(Old("cleaner-remap")));
  EXPECT_EQ(Compact().records_removed, 4);
  EXPECT_FALSE(fs::exists(Old("cleaner-remap")));
  EXPECT_EQ(ReadAll(), ThreeSegmentsAfter());
}

}  // namespace
}  // namespace runnel::log
