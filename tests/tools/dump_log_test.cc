#include "tools/dump_log.h"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "common/clock.h"
#include "common/endian.h"
#include "log/io_thread.h"
#include "log/partition_log.h"
#include "log/record_batch.h"
#include "tests/testing/scoped_temp_dir.h"

namespace runnel::tools {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

constexpr int64_t kTs = 1700000000000;

struct TestRecord {
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<log::RecordHeader> headers = {};
};

// One batch with `count` records "k<i>" -> "v<i>" at kTs + i, moved to
// `base_offset` with SetBaseOffset (as the broker does).
std::string MakeBatch(log::Offset base_offset, int count,
                      int32_t leader_epoch = 0,
                      log::Compression compression = log::Compression::kNone) {
  log::BatchBuilderOptions options;
  options.compression = compression;
  log::RecordBatchBuilder builder(options);
  for (int i = 0; i < count; ++i) {
    builder.Append(kTs + i, absl::StrCat("k", i), absl::StrCat("v", i));
  }
  absl::StatusOr<std::string> batch = builder.Build();
  EXPECT_TRUE(batch.ok()) << batch.status();
  log::SetBaseOffset(batch->data(), base_offset);
  log::SetPartitionLeaderEpoch(batch->data(), leader_epoch);
  return *batch;
}

std::string MakeBatchOf(log::Offset base_offset,
                        const std::vector<TestRecord>& records) {
  log::RecordBatchBuilder builder;
  int64_t ts = kTs;
  for (const TestRecord& r : records) {
    builder.Append(ts++, r.key, r.value, r.headers);
  }
  absl::StatusOr<std::string> batch = builder.Build();
  EXPECT_TRUE(batch.ok()) << batch.status();
  log::SetBaseOffset(batch->data(), base_offset);
  return *batch;
}

std::string IndexEntry(uint32_t relative_offset, uint32_t position) {
  std::string entry(8, '\0');
  StoreBe32(entry.data(), relative_offset);
  StoreBe32(entry.data() + 4, position);
  return entry;
}

std::string TimeIndexEntry(int64_t timestamp, uint32_t relative_offset) {
  std::string entry(12, '\0');
  StoreBe64(entry.data(), static_cast<uint64_t>(timestamp));
  StoreBe32(entry.data() + 8, relative_offset);
  return entry;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::string SegmentName(log::Offset base, const std::string& suffix) {
  return absl::StrFormat("%020d%s", base, suffix);
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

struct Result {
  int exit_code = -1;
  std::vector<std::string> out;
  std::vector<std::string> err;
};

Result RunDump(const std::vector<std::string>& paths, DumpLogOptions options) {
  std::ostringstream out;
  std::ostringstream err;
  Result result;
  result.exit_code = DumpLog(paths, options, out, err);
  result.out = Lines(out.str());
  result.err = Lines(err.str());
  return result;
}

DumpLogOptions Verify() {
  DumpLogOptions options;
  options.verify = true;
  return options;
}

// A partition directory with one segment of three batches (offsets 0..2,
// 3..4, 5..8), its offset index (one entry per batch, Kafka style: the
// batch's last offset and its position) and its time index, both padded
// with zero-filled preallocated entries.
class DumpLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    batches_ = {MakeBatch(0, 3), MakeBatch(3, 2), MakeBatch(5, 4)};
    positions_ = {0};
    for (size_t i = 0; i + 1 < batches_.size(); ++i) {
      positions_.push_back(positions_.back() +
                           static_cast<int64_t>(batches_[i].size()));
    }
    log_path_ = dir_.Sub(SegmentName(0, ".log"));
    index_path_ = dir_.Sub(SegmentName(0, ".index"));
    time_index_path_ = dir_.Sub(SegmentName(0, ".timeindex"));
  }

  std::string LogBytes() const {
    return absl::StrCat(batches_[0], batches_[1], batches_[2]);
  }
  std::string GoodIndex() const {
    return absl::StrCat(IndexEntry(2, 0), IndexEntry(4, positions_[1]),
                        IndexEntry(8, positions_[2]), std::string(8 * 4, '\0'));
  }
  // Max timestamps per batch: kTs+2, kTs+1, kTs+3; entries only when the
  // running max grows.
  std::string GoodTimeIndex() const {
    return absl::StrCat(TimeIndexEntry(kTs + 2, 2), TimeIndexEntry(kTs + 3, 8),
                        std::string(12 * 3, '\0'));
  }
  void WriteGoodSegment() {
    WriteFile(log_path_, LogBytes());
    WriteFile(index_path_, GoodIndex());
    WriteFile(time_index_path_, GoodTimeIndex());
  }
  std::string ProblemAt(const std::string& path, int64_t position) const {
    return absl::StrCat(path, ": position ", position, ": ");
  }

  testing::ScopedTempDir dir_;
  std::vector<std::string> batches_;
  std::vector<int64_t> positions_;
  std::string log_path_;
  std::string index_path_;
  std::string time_index_path_;
};

TEST_F(DumpLogTest, PrintsOneLinePerBatchWithEveryHeaderField) {
  WriteGoodSegment();
  Result r = RunDump({log_path_}, {});
  EXPECT_EQ(r.exit_code, kDumpLogOk);
  EXPECT_THAT(r.err, IsEmpty());
  ASSERT_EQ(r.out.size(), 4u);
  EXPECT_EQ(r.out[0], absl::StrCat("segment path=", log_path_,
                                   " base_offset=0 size=", LogBytes().size()));
  absl::StatusOr<log::RecordBatchView> view =
      log::RecordBatchView::Parse(batches_[1]);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(r.out[2],
            absl::StrFormat(
                "batch base_offset=3 last_offset=4 count=2 position=%d "
                "size=%d leader_epoch=0 base_timestamp=%d max_timestamp=%d "
                "timestamp_type=create compression=none producer_id=-1 "
                "producer_epoch=-1 base_sequence=-1 transactional=false "
                "control=false crc=0x%08x crc_ok=true",
                positions_[1], batches_[1].size(), kTs, kTs + 1, view->crc()));
  EXPECT_THAT(r.out[1], StartsWith("batch base_offset=0 last_offset=2 count=3 "
                                   "position=0 "));
  EXPECT_THAT(r.out[3],
              StartsWith("batch base_offset=5 last_offset=8 count=4 "));
}

TEST_F(DumpLogTest, RecordsFlagPrintsEachRecordAfterItsBatch) {
  WriteFile(
      log_path_,
      MakeBatchOf(7, {{"key", "value", {{"h1", "x"}, {"h2", std::nullopt}}},
                      {"a\"b\\c", "with space"}}));
  DumpLogOptions options;
  options.records = true;
  Result r = RunDump({log_path_}, options);
  EXPECT_EQ(r.exit_code, kDumpLogOk);
  ASSERT_EQ(r.out.size(), 4u);
  EXPECT_THAT(r.out[1], StartsWith("batch base_offset=7 last_offset=8"));
  EXPECT_EQ(r.out[2], absl::StrCat("  record offset=7 timestamp=", kTs,
                                   " key=\"key\" value=\"value\" "
                                   "headers=[\"h1\"=\"x\", \"h2\"=null]"));
  EXPECT_EQ(r.out[3], absl::StrCat("  record offset=8 timestamp=", kTs + 1,
                                   " key=\"a\\\"b\\\\c\" "
                                   "value=\"with space\" headers=[]"));
}

TEST_F(DumpLogTest, BinaryKeysAndValuesPrintAsHex) {
  WriteFile(log_path_,
            MakeBatchOf(0, {{std::string("\x00\xff", 2), "tab\there"}}));
  DumpLogOptions options;
  options.records = true;
  Result text = RunDump({log_path_}, options);
  ASSERT_EQ(text.out.size(), 3u);
  EXPECT_THAT(text.out[2], HasSubstr("key=0x00ff value=0x7461620968657265 "));
  options.json = true;
  Result json = RunDump({log_path_}, options);
  ASSERT_EQ(json.out.size(), 3u);
  EXPECT_THAT(json.out[2],
              HasSubstr("\"key\":{\"hex\":\"00ff\"},"
                        "\"value\":{\"hex\":\"7461620968657265\"}"));
}

TEST_F(DumpLogTest, NullAndEmptyValuesAreDistinct) {
  WriteFile(log_path_, MakeBatchOf(0, {{std::nullopt, std::nullopt},
                                       {std::string(), std::string()}}));
  DumpLogOptions options;
  options.records = true;
  Result text = RunDump({log_path_}, options);
  ASSERT_EQ(text.out.size(), 4u);
  EXPECT_THAT(text.out[2], HasSubstr(" key=null value=null "));
  EXPECT_THAT(text.out[3], HasSubstr(" key=\"\" value=\"\" "));
  options.json = true;
  Result json = RunDump({log_path_}, options);
  ASSERT_EQ(json.out.size(), 4u);
  EXPECT_THAT(json.out[2], HasSubstr("\"key\":null,\"value\":null,"));
  EXPECT_THAT(json.out[3], HasSubstr("\"key\":\"\",\"value\":\"\","));
}

TEST_F(DumpLogTest, JsonPrintsOneObjectPerLineWithEscapedStrings) {
  std::string batch =
      MakeBatchOf(4, {{"k", "say \"hi\" \\o/", {{"h", std::nullopt}}}});
  WriteFile(log_path_, batch);
  DumpLogOptions options;
  options.records = true;
  options.json = true;
  Result r = RunDump({log_path_}, options);
  EXPECT_EQ(r.exit_code, kDumpLogOk);
  ASSERT_EQ(r.out.size(), 3u);
  EXPECT_EQ(r.out[0], absl::StrCat("{\"type\":\"segment\",\"path\":\"",
                                   log_path_, "\",\"base_offset\":0,",
                                   "\"size\":", batch.size(), "}"));
  EXPECT_THAT(r.out[1],
              StartsWith("{\"type\":\"batch\",\"base_offset\":4,"
                         "\"last_offset\":4,\"count\":1,\"position\":0,"));
  EXPECT_THAT(r.out[1], HasSubstr("\"compression\":\"none\""));
  EXPECT_THAT(r.out[1], HasSubstr("\"crc_ok\":true}"));
  EXPECT_EQ(
      r.out[2],
      absl::StrCat("{\"type\":\"record\",\"offset\":4,\"timestamp\":", kTs,
                   ",\"key\":\"k\",\"value\":\"say \\\"hi\\\" \\\\o/\","
                   "\"headers\":[{\"key\":\"h\",\"value\":null}]}"));
}

TEST_F(DumpLogTest, CompressedBatchShowsCodecAndDecodesRecords) {
  WriteFile(log_path_, MakeBatch(0, 3, 0, log::Compression::kZstd));
  DumpLogOptions options;
  options.records = true;
  options.verify = true;
  Result r = RunDump({log_path_}, options);
  EXPECT_EQ(r.exit_code, kDumpLogOk);
  ASSERT_EQ(r.out.size(), 5u);
  EXPECT_THAT(r.out[1], HasSubstr(" compression=zstd "));
  EXPECT_THAT(r.out[4], HasSubstr("offset=2 timestamp="));
  EXPECT_THAT(r.out[4], HasSubstr("key=\"k2\" value=\"v2\""));
}

TEST_F(DumpLogTest, VerifyAcceptsAGoodSegmentWithItsIndexes) {
  WriteGoodSegment();
  Result r = RunDump({dir_.path()}, Verify());
  EXPECT_EQ(r.exit_code, kDumpLogOk);
  EXPECT_THAT(r.err, IsEmpty());
  EXPECT_EQ(r.out.size(), 4u);
}

// The active segment of a running broker: batches, and a preallocated time
// index without an entry yet (one is stored every ~4 KiB of log).
TEST_F(DumpLogTest, VerifyAcceptsAPreallocatedTimeIndexWithoutEntries) {
  WriteFile(log_path_, LogBytes());
  WriteFile(index_path_, GoodIndex());
  WriteFile(time_index_path_, std::string(12 * 4, '\0'));
  Result r = RunDump({log_path_}, Verify());
  EXPECT_EQ(r.exit_code, kDumpLogOk) << absl::StrJoin(r.err, "\n");
  // A first entry that is not all zero is still checked.
  WriteFile(time_index_path_, absl::StrCat(TimeIndexEntry(kTs + 1, 2),
                                           std::string(12 * 3, '\0')));
  r = RunDump({log_path_}, Verify());
  EXPECT_EQ(r.exit_code, kDumpLogProblem);
}

TEST_F(DumpLogTest, VerifyReportsAFlippedByteAtItsBatch) {
  std::string bytes = LogBytes();
  bytes[positions_[1] + 70] ^= 0x01;  // inside the second batch's records
  WriteFile(log_path_, bytes);
  Result r = RunDump({log_path_}, Verify());
  EXPECT_EQ(r.exit_code, kDumpLogProblem);
  ASSERT_EQ(r.err.size(), 1u);
  EXPECT_THAT(r.err[0],
              StartsWith(ProblemAt(log_path_, positions_[1]) + "crc mismatch"));
  // Stops at the problem: the third batch is not listed.
  ASSERT_EQ(r.out.size(), 3u);
  EXPECT_THAT(r.out[2], HasSubstr("crc_ok=false"));
}

TEST_F(DumpLogTest, WithoutVerifyABadCrcIsShownAndTheDumpGoesOn) {
  std::string bytes = LogBytes();
  bytes[positions_[1] + 70] ^= 0x01;
  WriteFile(log_path_, bytes);
  Result r = RunDump({log_path_}, {});
  EXPECT_EQ(r.exit_code, kDumpLogProblem);
  ASSERT_EQ(r.out.size(), 4u);
  EXPECT_THAT(r.out[1], HasSubstr("crc_ok=true"));
  EXPECT_THAT(r.out[2], HasSubstr("crc_ok=false"));
  EXPECT_THAT(r.out[3], HasSubstr("base_offset=5 "));
  ASSERT_EQ(r.err.size(), 1u);
  EXPECT_THAT(r.err[0], StartsWith(ProblemAt(log_path_, positions_[1])));
}

TEST_F(DumpLogTest, VerifyReportsATornTail) {
  std::string bytes = LogBytes();
  bytes.resize(bytes.size() - 5);
  WriteFile(log_path_, bytes);
  Result r = RunDump({log_path_}, Verify());
  EXPECT_EQ(r.exit_code, kDumpLogProblem);
  ASSERT_EQ(r.err.size(), 1u);
  EXPECT_THAT(r.err[0],
              StartsWith(ProblemAt(log_path_, positions_[2]) + "torn batch"));
  EXPECT_EQ(r.out.size(), 3u);
}

TEST_F(DumpLogTest, ATornHeaderIsReportedEvenWithoutVerify) {
  // 12 bytes: base offset and batchLength, the first non-zero byte last.
  WriteFile(log_path_, batches_[0] + batches_[1].substr(0, 12));
  Result r = RunDump({log_path_}, {});
  EXPECT_EQ(r.exit_code, kDumpLogProblem);
  ASSERT_EQ(r.err.size(), 1u);
  EXPECT_THAT(r.err[0],
              StartsWith(ProblemAt(log_path_, positions_[1]) + "torn batch"));
}

TEST_F(DumpLogTest, ZeroPaddingAfterTheLastBatchIsNotAProblem) {
  WriteFile(log_path_, LogBytes() + std::string(4096, '\0'));
  Result r = RunDump({log_path_}, Verify());
  EXPECT_EQ(r.exit_code, kDumpLogOk);
  ASSERT_EQ(r.err.size(), 1u);
  EXPECT_THAT(r.err[0], HasSubstr("note: 4096 zero bytes"));
}

TEST_F(DumpLogTest, VerifyReportsAnOffsetGap) {
  batches_[2] = MakeBatch(6, 4);  // 0..2, 3..4, then 6..9: 5 is missing
  WriteFile(log_path_, LogBytes());
  Result r = RunDump({log_path_}, Verify());
  EXPECT_EQ(r.exit_code, kDumpLogProblem);
  ASSERT_EQ(r.err.size(), 1u);
  EXPECT_THAT(r.err[0], StartsWith(ProblemAt(log_path_, positions_[2]) +
                                   "offset gap: expected base offset 5, "
                                   "found 6"));
}

TEST_F(DumpLogTest, VerifyReportsAFirstBatchThatDoesNotMatchTheFileName) {
  std::string path = dir_.Sub(SegmentName(10, ".log"));
  WriteFile(path, LogBytes());
  Result r = RunDump({path}, Verify());
  EXPECT_EQ(r.exit_code, kDumpLogProblem);
  ASSERT_EQ(r.err.size(), 1u);
  EXPECT_THAT(r.err[0], StartsWith(ProblemAt(path, 0) + "first batch"));
}

TEST_F(DumpLogTest, VerifyReportsAFileNameThatIsNotASegmentName) {
  std::string path = dir_.Sub("copy.log");
  WriteFile(path, LogBytes());
  EXPECT_EQ(RunDump({path}, {}).exit_code, kDumpLogOk);
  Result r = RunDump({path}, Verify());
  EXPECT_EQ(r.exit_code, kDumpLogProblem);
  ASSERT_EQ(r.err.size(), 1u);
  EXPECT_THAT(r.err[0], StartsWith(ProblemAt(path, 0) + "file name"));
}

TEST_F(DumpLogTest, VerifyReportsAnIndexEntryThatIsNotABatchStart) {
  WriteFile(log_path_, LogBytes());
  WriteFile(index_path_,
            absl::StrCat(IndexEntry(2, 0), IndexEntry(4, positions_[1] + 1)));
  WriteFile(time_index_path_, GoodTimeIndex());
  Result r = RunDump({log_path_}, Verify());
  EXPECT_EQ(r.exit_code, kDumpLogProblem);
  ASSERT_EQ(r.err.size(), 1u);
  EXPECT_THAT(r.err[0],
              StartsWith(ProblemAt(index_path_, 8) + "index entry 1"));
  EXPECT_THAT(r.err[0], HasSubstr("no batch starts at that position"));
}

TEST_F(DumpLogTest, VerifyReportsAnIndexEntryWhoseOffsetIsNotInItsBatch) {
  WriteFile(log_path_, LogBytes());
  WriteFile(index_path_,
            absl::StrCat(IndexEntry(2, 0), IndexEntry(4, positions_[1]),
                         IndexEntry(9, positions_[2])));
  Result r = RunDump({log_path_}, Verify());
  EXPECT_EQ(r.exit_code, kDumpLogProblem);
  ASSERT_EQ(r.err.size(), 1u);
  EXPECT_THAT(r.err[0], StartsWith(ProblemAt(index_path_, 16)));
  EXPECT_THAT(r.err[0], HasSubstr("holds offsets 5..8"));
}

TEST_F(DumpLogTest, VerifyReportsIndexEntriesThatDoNotIncrease) {
  WriteFile(log_path_, LogBytes());
  WriteFile(index_path_,
            absl::StrCat(IndexEntry(4, positions_[1]), IndexEntry(2, 0)));
  Result r = RunDump({log_path_}, Verify());
  EXPECT_EQ(r.exit_code, kDumpLogProblem);
  ASSERT_EQ(r.err.size(), 1u);
  EXPECT_THAT(r.err[0], StartsWith(ProblemAt(index_path_, 8)));
  EXPECT_THAT(r.err[0], HasSubstr("does not increase"));
}

TEST_F(DumpLogTest, VerifyReportsATimeIndexTimestampNoBatchHasReached) {
  WriteFile(log_path_, LogBytes());
  WriteFile(time_index_path_, absl::StrCat(TimeIndexEntry(kTs + 2, 2),
                                           TimeIndexEntry(kTs + 3, 4)));
  Result r = RunDump({log_path_}, Verify());
  EXPECT_EQ(r.exit_code, kDumpLogProblem);
  ASSERT_EQ(r.err.size(), 1u);
  EXPECT_THAT(r.err[0], StartsWith(ProblemAt(time_index_path_, 12) +
                                   "timeindex entry 1"));
}

TEST_F(DumpLogTest, VerifyReportsATimeIndexGoingBack) {
  WriteFile(log_path_, LogBytes());
  WriteFile(time_index_path_, absl::StrCat(TimeIndexEntry(kTs + 3, 8),
                                           TimeIndexEntry(kTs + 2, 2)));
  Result r = RunDump({log_path_}, Verify());
  EXPECT_EQ(r.exit_code, kDumpLogProblem);
  ASSERT_EQ(r.err.size(), 1u);
  EXPECT_THAT(r.err[0], StartsWith(ProblemAt(time_index_path_, 12)));
  EXPECT_THAT(r.err[0], HasSubstr("goes back"));
}

TEST_F(DumpLogTest, VerifyReportsATimeIndexEntryPastTheLog) {
  WriteFile(log_path_, LogBytes());
  WriteFile(time_index_path_, TimeIndexEntry(kTs + 9, 20));
  Result r = RunDump({log_path_}, Verify());
  EXPECT_EQ(r.exit_code, kDumpLogProblem);
  ASSERT_EQ(r.err.size(), 1u);
  EXPECT_THAT(r.err[0], StartsWith(ProblemAt(time_index_path_, 0)));
  EXPECT_THAT(r.err[0], HasSubstr("no batch in the log holds"));
}

TEST_F(DumpLogTest, AnEmptySegmentWithPreallocatedIndexesVerifies) {
  WriteFile(log_path_, "");
  WriteFile(index_path_, std::string(8 * 16, '\0'));
  WriteFile(time_index_path_, std::string(12 * 16, '\0'));
  Result r = RunDump({log_path_}, Verify());
  EXPECT_EQ(r.exit_code, kDumpLogOk);
  EXPECT_THAT(r.err, IsEmpty());
  EXPECT_EQ(r.out, std::vector<std::string>{absl::StrCat(
                       "segment path=", log_path_, " base_offset=0 size=0")});
}

TEST_F(DumpLogTest, DirectoryDumpsSegmentsInBaseOffsetOrder) {
  std::string second = dir_.Sub(SegmentName(5, ".log"));
  WriteFile(second, batches_[2]);
  WriteFile(log_path_, batches_[0] + batches_[1]);
  WriteFile(dir_.Sub("notes.txt"), "not a segment");
  Result r = RunDump({dir_.path()}, Verify());
  EXPECT_EQ(r.exit_code, kDumpLogOk);
  EXPECT_THAT(r.err, IsEmpty());
  ASSERT_EQ(r.out.size(), 5u);
  EXPECT_THAT(r.out[0], StartsWith("segment path=" + log_path_));
  EXPECT_THAT(r.out[1], HasSubstr("base_offset=0 "));
  EXPECT_THAT(r.out[2], HasSubstr("base_offset=3 "));
  EXPECT_THAT(r.out[3], StartsWith("segment path=" + second));
  EXPECT_THAT(r.out[4], HasSubstr("base_offset=5 "));
}

TEST_F(DumpLogTest, VerifyReportsAGapBetweenSegments) {
  std::string second = dir_.Sub(SegmentName(6, ".log"));
  WriteFile(log_path_, batches_[0] + batches_[1]);  // 0..4
  WriteFile(second, MakeBatch(6, 1));               // 6: 5 is missing
  Result r = RunDump({dir_.path()}, Verify());
  EXPECT_EQ(r.exit_code, kDumpLogProblem);
  ASSERT_EQ(r.err.size(), 1u);
  EXPECT_THAT(r.err[0], StartsWith(ProblemAt(second, 0)));
  EXPECT_THAT(r.err[0], HasSubstr("does not continue the previous segment"));
}

TEST_F(DumpLogTest, VerifyReportsADecreasingLeaderEpoch) {
  batches_[1] = MakeBatch(3, 2, /*leader_epoch=*/4);
  batches_[2] = MakeBatch(5, 4, /*leader_epoch=*/3);
  WriteFile(log_path_, LogBytes());
  Result r = RunDump({log_path_}, Verify());
  EXPECT_EQ(r.exit_code, kDumpLogProblem);
  ASSERT_EQ(r.err.size(), 1u);
  EXPECT_THAT(r.err[0], StartsWith(ProblemAt(log_path_, positions_[2]) +
                                   "leader epoch 3"));
}

TEST_F(DumpLogTest, ADirectoryWithoutSegmentsIsUnreadable) {
  WriteFile(dir_.Sub("notes.txt"), "not a segment");
  Result r = RunDump({dir_.path()}, {});
  EXPECT_EQ(r.exit_code, kDumpLogUnreadable);
  ASSERT_EQ(r.err.size(), 1u);
  EXPECT_THAT(r.err[0], HasSubstr("not a partition directory"));
}

TEST_F(DumpLogTest, AMissingPathIsUnreadable) {
  Result r = RunDump({dir_.Sub("nope.log")}, {});
  EXPECT_EQ(r.exit_code, kDumpLogUnreadable);
  ASSERT_EQ(r.err.size(), 1u);
  EXPECT_THAT(r.err[0], HasSubstr("nope.log"));
  EXPECT_THAT(r.out, IsEmpty());
}

// A partition that compaction rewrote: its batches skip removed offsets and
// its segments end before the next one starts. --verify accepts that below
// the directory's cleaner-offset-checkpoint, and only there.
TEST(DumpLogCompactedTest,
     VerifyAcceptsCompactionGapsBelowTheCleanerCheckpoint) {
  testing::ScopedTempDir dir;
  const std::string partition_dir = dir.Sub("users-0");
  {
    auto io = log::IoThread::Start({});
    ASSERT_TRUE(io.ok()) << io.status();
    ManualClock clock(1'700'000'000'000);
    log::PartitionLogOptions options;
    options.dir = partition_dir;
    options.topic = "users";
    options.partition = 0;
    options.config.cleanup_policy = "compact";
    options.io = io->get();
    options.clock = &clock;
    auto opened = log::PartitionLog::Open(std::move(options));
    ASSERT_TRUE(opened.ok()) << opened.status();
    std::unique_ptr<log::PartitionLog> plog = std::move(opened).value();
    auto append = [&](std::vector<std::pair<std::string, std::string>> kvs) {
      log::RecordBatchBuilder builder;
      for (const auto& [k, v] : kvs) builder.Append(clock.NowMs(), k, v);
      ASSERT_TRUE(plog->Append(builder.Build().value(), 0).ok());
    };
    // [a b c][a] | [b] [d] | [c]: the pass removes a@0, b@1, c@2 (newer
    // values later), empties the first batch and leaves gaps.
    append({{"a", "1"}, {"b", "1"}, {"c", "1"}});
    append({{"a", "2"}});
    ASSERT_TRUE(plog->Roll().ok());
    append({{"b", "2"}});
    append({{"d", "1"}});
    ASSERT_TRUE(plog->Roll().ok());
    append({{"c", "2"}});
    ASSERT_TRUE(plog->Roll().ok());
    append({{"e", "1"}});
    auto pass = plog->Compact();
    ASSERT_TRUE(pass.ok()) << pass.status();
    ASSERT_GT(pass->records_removed, 0);
    ASSERT_TRUE(plog->Close().ok());
  }
  Result r = RunDump({partition_dir}, Verify());
  EXPECT_EQ(r.exit_code, kDumpLogOk) << absl::StrJoin(r.err, "\n");

  // Without the checkpoint the same gaps are problems.
  std::filesystem::remove(partition_dir + "/" + log::kCleanerCheckpointFile);
  r = RunDump({partition_dir}, Verify());
  EXPECT_EQ(r.exit_code, kDumpLogProblem);
  ASSERT_FALSE(r.err.empty());
  EXPECT_THAT(r.err.back(), HasSubstr("offset"));
}

}  // namespace
}  // namespace runnel::tools
