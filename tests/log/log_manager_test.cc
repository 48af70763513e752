#include "log/log_manager.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "common/check.h"
#include "common/clock.h"
#include "log/checkpoint_file.h"
#include "log/partition_log.h"
#include "log/record_batch.h"
#include "tests/log/manager_testing.h"
#include "tests/testing/scoped_temp_dir.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/wait_for.h"

namespace runnel::log {
namespace {

namespace fs = std::filesystem;

using ::runnel::testing::IsOk;
using ::runnel::testing::ScopedTempDir;
using ::runnel::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// ---------------------------------------------------------------------------
// CheckpointFile

TEST(CheckpointFileTest, RoundTripKeepsEntriesInOrder) {
  ScopedTempDir dir;
  CheckpointFile file(dir.Sub("recovery-point-offset-checkpoint"));
  const std::vector<CheckpointEntry> entries = {
      {"orders", 0, 42}, {"my-topic.v2", 13, 0}, {"a", 2147483647, 1LL << 40}};
  RUNNEL_ASSERT_OK(file.Write(entries));
  auto read = file.Read();
  RUNNEL_ASSERT_OK(read);
  EXPECT_EQ(*read, entries);
  EXPECT_FALSE(std::filesystem::exists(file.path() + ".tmp"));
}

TEST(CheckpointFileTest, WritesKafkaTextFormat) {
  ScopedTempDir dir;
  CheckpointFile file(dir.Sub("cp"));
  RUNNEL_ASSERT_OK(file.Write({{"orders", 0, 42}, {"orders", 1, 7}}));
  EXPECT_EQ(ReadText(file.path()), "0\n2\norders 0 42\norders 1 7\n");
}

TEST(CheckpointFileTest, EmptyListRoundTrips) {
  ScopedTempDir dir;
  CheckpointFile file(dir.Sub("cp"));
  RUNNEL_ASSERT_OK(file.Write({}));
  EXPECT_EQ(ReadText(file.path()), "0\n0\n");
  auto read = file.Read();
  RUNNEL_ASSERT_OK(read);
  EXPECT_THAT(*read, IsEmpty());
}

TEST(CheckpointFileTest, RewriteReplacesOldContents) {
  ScopedTempDir dir;
  CheckpointFile file(dir.Sub("cp"));
  RUNNEL_ASSERT_OK(file.Write({{"a", 0, 1}, {"b", 0, 2}}));
  RUNNEL_ASSERT_OK(file.Write({{"c", 3, 4}}));
  auto read = file.Read();
  RUNNEL_ASSERT_OK(read);
  EXPECT_THAT(*read, ElementsAre(CheckpointEntry{"c", 3, 4}));
}

TEST(CheckpointFileTest, MissingFileIsNotFound) {
  ScopedTempDir dir;
  EXPECT_THAT(CheckpointFile(dir.Sub("nope")).Read(),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(CheckpointFileTest, TopicWithSpaceIsRefused) {
  ScopedTempDir dir;
  CheckpointFile file(dir.Sub("cp"));
  EXPECT_THAT(file.Write({{"bad topic", 0, 1}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_FALSE(std::filesystem::exists(file.path()));
}

struct MalformedCase {
  const char* name;
  const char* text;
  int line;
};

class CheckpointFileMalformedTest
    : public ::testing::TestWithParam<MalformedCase> {};

TEST_P(CheckpointFileMalformedTest, IsDataLossWithPathAndLine) {
  ScopedTempDir dir;
  const std::string path = dir.Sub("cp");
  WriteText(path, GetParam().text);
  auto read = CheckpointFile(path).Read();
  EXPECT_THAT(read, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(std::string(read.status().message()), HasSubstr(path));
  EXPECT_THAT(std::string(read.status().message()),
              HasSubstr(absl::StrCat("line ", GetParam().line)));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CheckpointFileMalformedTest,
    ::testing::Values(MalformedCase{"Empty", "", 1},
                      MalformedCase{"UnknownVersion", "1\n0\n", 1},
                      MalformedCase{"NoCount", "0\n", 2},
                      MalformedCase{"BadCount", "0\nx\n", 2},
                      MalformedCase{"NegativeCount", "0\n-1\n", 2},
                      MalformedCase{"CountTooLarge", "0\n2\na 0 1\n", 4},
                      MalformedCase{"CountTooSmall", "0\n1\na 0 1\nb 0 2\n", 4},
                      MalformedCase{"TwoFields", "0\n1\na 0\n", 3},
                      MalformedCase{"FourFields", "0\n1\na 0 1 2\n", 3},
                      MalformedCase{"DoubleSpace", "0\n1\na  0 1\n", 3},
                      MalformedCase{"NegativeOffset", "0\n1\na 0 -5\n", 3},
                      MalformedCase{"NegativePartition", "0\n1\na -1 5\n", 3},
                      MalformedCase{"PartitionOverflow",
                                    "0\n1\na 2147483648 5\n", 3},
                      MalformedCase{"NonNumericOffset", "0\n1\na 0 12x\n", 3},
                      MalformedCase{"TornLastLine", "0\n1\na 0 1", 3},
                      MalformedCase{"TrailingBlankLine", "0\n1\na 0 1\n\n", 4}),
    [](const auto& info) { return std::string(info.param.name); });

// ---------------------------------------------------------------------------
// Names

TEST(TopicNameTest, AcceptsKafkaCharacters) {
  RUNNEL_EXPECT_OK(ValidateTopicName("orders"));
  RUNNEL_EXPECT_OK(ValidateTopicName("my-topic.v2_EU"));
  RUNNEL_EXPECT_OK(ValidateTopicName("..."));
  RUNNEL_EXPECT_OK(ValidateTopicName(std::string(249, 'a')));
}

TEST(TopicNameTest, RejectsBadNames) {
  for (const std::string& bad :
       {std::string(), std::string("."), std::string(".."), std::string("../x"),
        std::string("a/b"), std::string("a b"), std::string("caf\xc3\xa9"),
        std::string("a\nb"), std::string(250, 'a')}) {
    EXPECT_THAT(ValidateTopicName(bad),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << "\"" << bad << "\"";
  }
}

TEST(PartitionDirNameTest, SplitsAtLastDash) {
  EXPECT_EQ(PartitionDirName("my-topic.v2", 7), "my-topic.v2-7");
  auto parsed = ParsePartitionDirName("my-topic.v2-7");
  RUNNEL_ASSERT_OK(parsed);
  EXPECT_THAT(*parsed, Pair("my-topic.v2", 7));
  parsed = ParsePartitionDirName("a-b-c-2147483647");
  RUNNEL_ASSERT_OK(parsed);
  EXPECT_THAT(*parsed, Pair("a-b-c", 2147483647));
}

TEST(PartitionDirNameTest, RejectsOtherNames) {
  for (const char* bad : {"orders", "-1", "orders-", "orders-01", "orders-+1",
                          "orders-x", "orders--1x", "orders-2147483648",
                          "lost+found-0", "orders-0.deleted"}) {
    EXPECT_THAT(ParsePartitionDirName(bad),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << bad;
  }
}

// ---------------------------------------------------------------------------
// LogManager

constexpr int64_t kT0 = 1'700'000'000'000;

// One batch of `records` records of ~100 bytes each, tagged for identity.
std::string MakeBatch(int records, const std::string& tag, int64_t ts_ms) {
  RecordBatchBuilder builder;
  for (int i = 0; i < records; ++i) {
    builder.Append(ts_ms, absl::StrCat(tag, "-", i), std::string(100, 'v'));
  }
  auto bytes = builder.Build();
  RUNNEL_CHECK(bytes.ok());
  return *std::move(bytes);
}

// Every stored byte of `log` from its start to its end.
std::string ReadAllBytes(PartitionLog* log) {
  std::string out;
  Offset next = log->log_start_offset();
  while (next < log->log_end_offset()) {
    auto read = log->Read(next, 1 << 20);
    if (!read.ok() || read->bytes.empty()) {
      ADD_FAILURE() << "read at " << next << ": " << read.status();
      break;
    }
    out += read->bytes;
    next = read->next_offset;
  }
  return out;
}

class LogManagerTest : public ::testing::Test {
 protected:
  LogManagerOptions Options() {
    LogManagerOptions options;
    options.data_dir = data_dir();
    options.clock = &clock_;
    options.start_background_threads = false;
    return options;
  }
  std::string data_dir() const { return dir_.Sub("data"); }
  std::string data_path(const std::string& name) const {
    return absl::StrCat(data_dir(), "/", name);
  }

  // Appends `batches` batches of 10 records and waits until durable.
  void Fill(PartitionLog* log, int batches, const std::string& tag) {
    for (int b = 0; b < batches; ++b) {
      ASSERT_THAT(
          log->Append(MakeBatch(10, absl::StrCat(tag, b), clock_.NowMs()),
                      /*leader_epoch=*/0),
          IsOk());
    }
    RUNNEL_ASSERT_OK(log->Flush());
  }

  ManualClock clock_{kT0};
  ScopedTempDir dir_;
};

TEST_F(LogManagerTest, CreateGetListAndDelete) {
  auto manager = ::runnel::log::testing::OpenManager(Options());
  RUNNEL_ASSERT_OK(manager);
  auto a0 = (*manager)->Create("orders", 0, LogConfig{});
  auto a1 = (*manager)->Create("orders", 1, LogConfig{});
  auto b3 = (*manager)->Create("my-topic.v2", 3, LogConfig{});
  RUNNEL_ASSERT_OK(a0);
  RUNNEL_ASSERT_OK(a1);
  RUNNEL_ASSERT_OK(b3);
  EXPECT_EQ((*manager)->Get("orders", 0), *a0);
  EXPECT_EQ((*manager)->Get("orders", 1), *a1);
  EXPECT_EQ((*manager)->Get("my-topic.v2", 3), *b3);
  EXPECT_EQ((*manager)->Get("orders", 2), nullptr);
  EXPECT_EQ((*manager)->Get("nope", 0), nullptr);
  EXPECT_THAT((*manager)->List(),
              ElementsAre(Pair("my-topic.v2", 3), Pair("orders", 0),
                          Pair("orders", 1)));
  EXPECT_TRUE(fs::is_directory(data_path("my-topic.v2-3")));

  RUNNEL_ASSERT_OK((*manager)->Delete("orders", 0));
  EXPECT_EQ((*manager)->Get("orders", 0), nullptr);
  EXPECT_FALSE(fs::exists(data_path("orders-0")));
  // Renamed, and left to the file reaper (driven by hand here).
  auto doomed = [&] {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(data_path(""))) {
      const std::string name = e.path().filename().string();
      if (name.starts_with("orders-0.")) names.push_back(name);
    }
    return names;
  };
  ASSERT_EQ(doomed().size(), 1u);
  EXPECT_TRUE(doomed()[0].ends_with(".deleted")) << doomed()[0];
  EXPECT_EQ((*manager)->file_reaper().DeleteReady(), 0u);
  EXPECT_THAT(doomed(), ::testing::IsEmpty());
  EXPECT_THAT((*manager)->Delete("orders", 0),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT((*manager)->List(),
              ElementsAre(Pair("my-topic.v2", 3), Pair("orders", 1)));
  RUNNEL_ASSERT_OK((*manager)->Close());
}

TEST_F(LogManagerTest, CreateTwiceIsAlreadyExists) {
  auto manager = ::runnel::log::testing::OpenManager(Options());
  RUNNEL_ASSERT_OK(manager);
  RUNNEL_ASSERT_OK((*manager)->Create("orders", 0, LogConfig{}));
  EXPECT_THAT((*manager)->Create("orders", 0, LogConfig{}),
              StatusIs(absl::StatusCode::kAlreadyExists));
  RUNNEL_ASSERT_OK((*manager)->Close());
}

TEST_F(LogManagerTest, CreateWithBadNameOrPartitionIsInvalidArgument) {
  auto manager = ::runnel::log::testing::OpenManager(Options());
  RUNNEL_ASSERT_OK(manager);
  for (const char* bad : {"", ".", "..", "../x", "a/b", "a b", "x\ty"}) {
    EXPECT_THAT((*manager)->Create(bad, 0, LogConfig{}),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << "\"" << bad << "\"";
  }
  EXPECT_THAT((*manager)->Create("orders", -1, LogConfig{}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  LogConfig bad_config;
  bad_config.segment_bytes = 1;
  EXPECT_THAT((*manager)->Create("orders", 0, bad_config),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT((*manager)->List(), IsEmpty());
  // "../x" must not have escaped the data directory.
  EXPECT_FALSE(fs::exists(dir_.Sub("x-0")));
  RUNNEL_ASSERT_OK((*manager)->Close());
}

TEST_F(LogManagerTest, ReopenAfterCloseKeepsLogsAndData) {
  std::string orders_bytes, dotted_bytes;
  {
    auto manager = ::runnel::log::testing::OpenManager(Options());
    RUNNEL_ASSERT_OK(manager);
    EXPECT_FALSE((*manager)->opened_after_clean_shutdown());
    auto orders = (*manager)->Create("orders", 0, LogConfig{});
    auto dotted = (*manager)->Create("my-topic.v2", 12, LogConfig{});
    RUNNEL_ASSERT_OK(orders);
    RUNNEL_ASSERT_OK(dotted);
    Fill(*orders, 5, "o");
    Fill(*dotted, 3, "d");
    orders_bytes = ReadAllBytes(*orders);
    dotted_bytes = ReadAllBytes(*dotted);
    RUNNEL_ASSERT_OK((*manager)->Close());
  }
  EXPECT_TRUE(fs::exists(data_path(kCleanShutdownFileName)));
  auto checkpoint =
      CheckpointFile(data_path(kRecoveryPointCheckpointName)).Read();
  RUNNEL_ASSERT_OK(checkpoint);
  EXPECT_THAT(*checkpoint, ElementsAre(CheckpointEntry{"my-topic.v2", 12, 30},
                                       CheckpointEntry{"orders", 0, 50}));

  auto manager = ::runnel::log::testing::OpenManager(Options());
  RUNNEL_ASSERT_OK(manager);
  EXPECT_TRUE((*manager)->opened_after_clean_shutdown());
  // Consumed: a crash from now on must count as unclean.
  EXPECT_FALSE(fs::exists(data_path(kCleanShutdownFileName)));
  EXPECT_THAT((*manager)->recovery_problems(), IsEmpty());
  EXPECT_THAT((*manager)->List(),
              ElementsAre(Pair("my-topic.v2", 12), Pair("orders", 0)));
  PartitionLog* orders = (*manager)->Get("orders", 0);
  PartitionLog* dotted = (*manager)->Get("my-topic.v2", 12);
  ASSERT_NE(orders, nullptr);
  ASSERT_NE(dotted, nullptr);
  EXPECT_EQ(orders->log_end_offset(), 50);
  EXPECT_EQ(dotted->log_end_offset(), 30);
  EXPECT_EQ(ReadAllBytes(orders), orders_bytes);
  EXPECT_EQ(ReadAllBytes(dotted), dotted_bytes);
  // And the log goes on where it stopped.
  auto appended = orders->Append(MakeBatch(4, "more", clock_.NowMs()), 0);
  RUNNEL_ASSERT_OK(appended);
  EXPECT_EQ(appended->base_offset, 50);
  RUNNEL_ASSERT_OK((*manager)->Close());
}

TEST_F(LogManagerTest, ReopenAfterCrashRunsRecoveryAndDropsTornTail) {
  const std::string crashed = dir_.Sub("crashed");
  std::string bytes;
  {
    auto manager = ::runnel::log::testing::OpenManager(Options());
    RUNNEL_ASSERT_OK(manager);
    auto log = (*manager)->Create("orders", 0, LogConfig{});
    RUNNEL_ASSERT_OK(log);
    Fill(*log, 6, "o");
    bytes = ReadAllBytes(*log);
    // A snapshot of the directory while the manager still runs is what a
    // crash leaves: no marker, data only as durable as the last Flush.
    fs::copy(data_dir(), crashed, fs::copy_options::recursive);
    RUNNEL_ASSERT_OK((*manager)->Close());
  }
  ASSERT_FALSE(fs::exists(crashed + "/" + kCleanShutdownFileName));
  // A write torn by the crash: half a batch after the last whole one.
  const std::string segment = crashed + "/orders-0/00000000000000000000.log";
  ASSERT_TRUE(fs::exists(segment));
  const std::string partial = MakeBatch(10, "torn", kT0).substr(0, 300);
  {
    // The file may end in O_DIRECT zero padding: write right after the data.
    std::fstream f(segment, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(static_cast<std::streamoff>(bytes.size()));
    f.write(partial.data(), static_cast<std::streamsize>(partial.size()));
  }

  LogManagerOptions options = Options();
  options.data_dir = crashed;
  auto manager = ::runnel::log::testing::OpenManager(options);
  RUNNEL_ASSERT_OK(manager);
  EXPECT_FALSE((*manager)->opened_after_clean_shutdown());
  EXPECT_THAT((*manager)->recovery_problems(), IsEmpty());
  PartitionLog* log = (*manager)->Get("orders", 0);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->log_end_offset(), 60);
  EXPECT_EQ(ReadAllBytes(log), bytes);
  auto appended = log->Append(MakeBatch(1, "after", kT0), 0);
  RUNNEL_ASSERT_OK(appended);
  EXPECT_EQ(appended->base_offset, 60);
  RUNNEL_ASSERT_OK((*manager)->Close());
}

TEST_F(LogManagerTest, SkipsUnrelatedEntriesAndFinishesInterruptedDeletes) {
  {
    auto manager = ::runnel::log::testing::OpenManager(Options());
    RUNNEL_ASSERT_OK(manager);
    RUNNEL_ASSERT_OK((*manager)->Create("orders", 0, LogConfig{}));
    RUNNEL_ASSERT_OK((*manager)->Close());
  }
  fs::create_directories(data_path("lost+found"));
  fs::create_directories(data_path("notapartition"));
  fs::create_directories(data_path("orders-01"));
  WriteText(data_path("notes-3"), "a file, not a directory");
  // What a Delete() that crashed between rename and removal leaves.
  fs::create_directories(data_path("gone-4.deleted"));
  WriteText(data_path("gone-4.deleted/00000000000000000000.log"), "x");

  auto manager = ::runnel::log::testing::OpenManager(Options());
  RUNNEL_ASSERT_OK(manager);
  EXPECT_THAT((*manager)->List(), ElementsAre(Pair("orders", 0)));
  EXPECT_EQ((*manager)->file_reaper().pending(), 1u);
  (*manager)->file_reaper().DeleteReady();
  EXPECT_FALSE(fs::exists(data_path("gone-4.deleted")));
  // Not ours: left alone.
  EXPECT_TRUE(fs::exists(data_path("lost+found")));
  EXPECT_TRUE(fs::exists(data_path("notapartition")));
  EXPECT_TRUE(fs::exists(data_path("orders-01")));
  EXPECT_TRUE(fs::exists(data_path("notes-3")));
  RUNNEL_ASSERT_OK((*manager)->Close());
}

TEST_F(LogManagerTest, SecondOpenOfSameDirectoryFails) {
  auto first = ::runnel::log::testing::OpenManager(Options());
  RUNNEL_ASSERT_OK(first);
  auto second = ::runnel::log::testing::OpenManager(Options());
  EXPECT_THAT(second, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(std::string(second.status().message()), HasSubstr(data_dir()));
  RUNNEL_ASSERT_OK((*first)->Close());
  // Close releases the lock.
  auto third = ::runnel::log::testing::OpenManager(Options());
  RUNNEL_ASSERT_OK(third);
  RUNNEL_ASSERT_OK((*third)->Close());
}

TEST_F(LogManagerTest, CloseIsIdempotentAndRefusesCreateAfterwards) {
  auto manager = ::runnel::log::testing::OpenManager(Options());
  RUNNEL_ASSERT_OK(manager);
  RUNNEL_ASSERT_OK((*manager)->Close());
  RUNNEL_ASSERT_OK((*manager)->Close());
  EXPECT_THAT((*manager)->Create("orders", 0, LogConfig{}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT((*manager)->List(), IsEmpty());
}

TEST_F(LogManagerTest, DeletedPartitionStaysDeletedAndCanBeRecreatedEmpty) {
  {
    auto manager = ::runnel::log::testing::OpenManager(Options());
    RUNNEL_ASSERT_OK(manager);
    auto log = (*manager)->Create("orders", 0, LogConfig{});
    RUNNEL_ASSERT_OK(log);
    Fill(*log, 2, "o");
    RUNNEL_ASSERT_OK((*manager)->Create("orders", 1, LogConfig{}));
    RUNNEL_ASSERT_OK((*manager)->Delete("orders", 0));
    RUNNEL_ASSERT_OK((*manager)->Close());
  }
  auto manager = ::runnel::log::testing::OpenManager(Options());
  RUNNEL_ASSERT_OK(manager);
  EXPECT_THAT((*manager)->List(), ElementsAre(Pair("orders", 1)));
  auto log = (*manager)->Create("orders", 0, LogConfig{});
  RUNNEL_ASSERT_OK(log);
  EXPECT_EQ((*log)->log_end_offset(), 0);
  EXPECT_EQ((*log)->log_start_offset(), 0);
  RUNNEL_ASSERT_OK((*manager)->Close());
}

TEST_F(LogManagerTest, RetentionByAgeDeletesOldSegments) {
  auto manager = ::runnel::log::testing::OpenManager(Options());
  RUNNEL_ASSERT_OK(manager);
  LogConfig config;
  config.segment_bytes = 4096;  // ~3 batches of ~1.2 KiB per segment
  config.retention_ms = 3600 * 1000;
  auto log = (*manager)->Create("orders", 0, config);
  RUNNEL_ASSERT_OK(log);
  Fill(*log, 12, "o");
  const int segments = (*log)->segment_count();
  ASSERT_GE(segments, 3);

  // Nothing is old yet.
  RUNNEL_ASSERT_OK((*manager)->RunRetention());
  EXPECT_EQ((*log)->segment_count(), segments);
  EXPECT_EQ((*manager)->segments_deleted_by_retention(), 0);

  clock_.AdvanceMs(2 * 3600 * 1000);
  RUNNEL_ASSERT_OK((*manager)->RunRetention());
  // Every closed segment went; the active one stays.
  EXPECT_EQ((*log)->segment_count(), 1);
  EXPECT_EQ((*manager)->segments_deleted_by_retention(), segments - 1);
  EXPECT_EQ((*log)->log_start_offset(), (*log)->segment_base_offsets()[0]);
  EXPECT_GT((*log)->log_start_offset(), 0);
  EXPECT_EQ((*log)->log_end_offset(), 120);
  EXPECT_THAT((*log)->Read(0, 1 << 20),
              StatusIs(absl::StatusCode::kOutOfRange));
  RUNNEL_ASSERT_OK((*manager)->Close());
}

TEST_F(LogManagerTest, RetentionBySizeKeepsAtLeastTheLimit) {
  auto manager = ::runnel::log::testing::OpenManager(Options());
  RUNNEL_ASSERT_OK(manager);
  LogConfig config;
  config.segment_bytes = 4096;
  config.retention_ms = -1;
  config.retention_bytes = 8192;
  auto log = (*manager)->Create("orders", 0, config);
  RUNNEL_ASSERT_OK(log);
  Fill(*log, 30, "o");
  const int64_t size_before = (*log)->size_bytes();
  ASSERT_GT(size_before, 3 * 8192);
  RUNNEL_ASSERT_OK((*manager)->RunRetention());
  EXPECT_GT((*manager)->segments_deleted_by_retention(), 0);
  EXPECT_GE((*log)->size_bytes(), 8192);
  EXPECT_LT((*log)->size_bytes(), size_before);
  EXPECT_GT((*log)->log_start_offset(), 0);
  RUNNEL_ASSERT_OK((*manager)->Close());
}

TEST_F(LogManagerTest, ConfigForTopicAppliesToLogsFoundAtOpen) {
  {
    auto manager = ::runnel::log::testing::OpenManager(Options());
    RUNNEL_ASSERT_OK(manager);
    LogConfig config;
    config.segment_bytes = 4096;
    auto keep = (*manager)->Create("keep", 0, config);
    auto expire = (*manager)->Create("expire", 0, config);
    RUNNEL_ASSERT_OK(keep);
    RUNNEL_ASSERT_OK(expire);
    Fill(*keep, 8, "k");
    Fill(*expire, 8, "e");
    RUNNEL_ASSERT_OK((*manager)->Close());
  }
  LogManagerOptions options = Options();
  options.default_config.retention_ms = -1;
  options.config_for_topic = [&](const std::string& topic) {
    LogConfig config = options.default_config;
    config.segment_bytes = 4096;
    if (topic == "expire") config.retention_ms = 1000;
    return config;
  };
  auto manager = ::runnel::log::testing::OpenManager(options);
  RUNNEL_ASSERT_OK(manager);
  clock_.AdvanceMs(10'000);
  RUNNEL_ASSERT_OK((*manager)->RunRetention());
  EXPECT_EQ((*manager)->Get("keep", 0)->log_start_offset(), 0);
  EXPECT_GT((*manager)->Get("expire", 0)->log_start_offset(), 0);
  RUNNEL_ASSERT_OK((*manager)->Close());
}

TEST_F(LogManagerTest, CheckpointRecordsDurableOffsets) {
  auto manager = ::runnel::log::testing::OpenManager(Options());
  RUNNEL_ASSERT_OK(manager);
  auto a = (*manager)->Create("a", 0, LogConfig{});
  auto b = (*manager)->Create("b", 5, LogConfig{});
  RUNNEL_ASSERT_OK(a);
  RUNNEL_ASSERT_OK(b);
  Fill(*a, 3, "a");
  RUNNEL_ASSERT_OK((*manager)->CheckpointRecoveryPoints());
  auto entries = CheckpointFile(data_path(kRecoveryPointCheckpointName)).Read();
  RUNNEL_ASSERT_OK(entries);
  EXPECT_THAT(*entries, ElementsAre(CheckpointEntry{"a", 0, 30},
                                    CheckpointEntry{"b", 5, 0}));
  RUNNEL_ASSERT_OK((*manager)->Close());
}

TEST_F(LogManagerTest, MalformedCheckpointIsReportedAndLogsRecoverFully) {
  std::string bytes;
  {
    auto manager = ::runnel::log::testing::OpenManager(Options());
    RUNNEL_ASSERT_OK(manager);
    auto log = (*manager)->Create("orders", 0, LogConfig{});
    RUNNEL_ASSERT_OK(log);
    Fill(*log, 4, "o");
    bytes = ReadAllBytes(*log);
    RUNNEL_ASSERT_OK((*manager)->Close());
  }
  WriteText(data_path(kRecoveryPointCheckpointName), "0\n1\norders 0\n");
  auto manager = ::runnel::log::testing::OpenManager(Options());
  RUNNEL_ASSERT_OK(manager);
  // Not trusted even though the marker was there.
  EXPECT_FALSE((*manager)->opened_after_clean_shutdown());
  ASSERT_EQ((*manager)->recovery_problems().size(), 1u);
  EXPECT_THAT((*manager)->recovery_problems()[0],
              StatusIs(absl::StatusCode::kDataLoss));
  PartitionLog* log = (*manager)->Get("orders", 0);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(ReadAllBytes(log), bytes);
  RUNNEL_ASSERT_OK((*manager)->Close());
  // Close wrote a good checkpoint again.
  RUNNEL_EXPECT_OK(
      CheckpointFile(data_path(kRecoveryPointCheckpointName)).Read());
}

TEST_F(LogManagerTest, ManyPartitionsReopenInParallel) {
  LogManagerOptions options = Options();
  options.io_threads = 2;
  options.recovery_threads = 3;
  {
    auto manager = ::runnel::log::testing::OpenManager(options);
    RUNNEL_ASSERT_OK(manager);
    for (int p = 0; p < 12; ++p) {
      auto log = (*manager)->Create("t", p, LogConfig{});
      RUNNEL_ASSERT_OK(log);
      Fill(*log, 1 + p % 3, "x");
    }
    RUNNEL_ASSERT_OK((*manager)->Close());
  }
  // Unclean, so every log is scanned.
  fs::remove(data_path(kCleanShutdownFileName));
  auto manager = ::runnel::log::testing::OpenManager(options);
  RUNNEL_ASSERT_OK(manager);
  ASSERT_EQ((*manager)->List().size(), 12u);
  for (int p = 0; p < 12; ++p) {
    PartitionLog* log = (*manager)->Get("t", p);
    ASSERT_NE(log, nullptr);
    EXPECT_EQ(log->log_end_offset(), 10 * (1 + p % 3)) << "partition " << p;
  }
  RUNNEL_ASSERT_OK((*manager)->Close());
}

TEST_F(LogManagerTest, IoThreadAssignmentIsStableAndSpread) {
  LogManagerOptions options = Options();
  options.io_threads = 2;
  auto manager = ::runnel::log::testing::OpenManager(options);
  RUNNEL_ASSERT_OK(manager);
  std::set<IoThread*> used;
  for (int p = 0; p < 16; ++p) {
    IoThread* io = (*manager)->io_thread_for("t", p);
    ASSERT_NE(io, nullptr);
    EXPECT_EQ(io, (*manager)->io_thread_for("t", p));
    used.insert(io);
  }
  EXPECT_EQ(used.size(), 2u);
  RUNNEL_ASSERT_OK((*manager)->Close());
}

TEST_F(LogManagerTest, ConcurrentCreateAppendCheckpointAndRetention) {
  LogManagerOptions options = Options();
  options.io_threads = 2;
  auto manager = ::runnel::log::testing::OpenManager(options);
  RUNNEL_ASSERT_OK(manager);
  LogConfig config;
  config.segment_bytes = 4096;
  constexpr int kThreads = 4;
  constexpr int kPartitionsPerThread = 3;
  std::atomic<int> writers_done{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int p = 0; p < kPartitionsPerThread; ++p) {
        const int partition = t * kPartitionsPerThread + p;
        auto log = (*manager)->Create("busy", partition, config);
        EXPECT_THAT(log, IsOk());
        if (!log.ok()) continue;
        for (int b = 0; b < 10; ++b) {
          EXPECT_THAT((*log)->Append(MakeBatch(5, "b", kT0), 0), IsOk());
        }
        EXPECT_THAT((*log)->Flush(), IsOk());
      }
      writers_done.fetch_add(1);
    });
  }
  // Meanwhile the periodic work runs over whatever exists at that moment.
  while (writers_done.load() < kThreads) {
    RUNNEL_EXPECT_OK((*manager)->CheckpointRecoveryPoints());
    RUNNEL_EXPECT_OK((*manager)->RunRetention());
    (void)(*manager)->List();
  }
  for (std::thread& w : writers) w.join();
  EXPECT_EQ((*manager)->List().size(), size_t{kThreads * kPartitionsPerThread});
  RUNNEL_ASSERT_OK((*manager)->CheckpointRecoveryPoints());
  auto entries = CheckpointFile(data_path(kRecoveryPointCheckpointName)).Read();
  RUNNEL_ASSERT_OK(entries);
  ASSERT_EQ(entries->size(), size_t{kThreads * kPartitionsPerThread});
  for (const CheckpointEntry& e : *entries) EXPECT_EQ(e.offset, 50) << e.topic;
  RUNNEL_ASSERT_OK((*manager)->Close());
}

TEST_F(LogManagerTest, BackgroundThreadCheckpointsAndCloseStopsItAtOnce) {
  LogManagerOptions options = Options();
  options.start_background_threads = true;
  options.checkpoint_interval_ms = 5;
  // An hour: Close() must not wait for this period to end.
  options.retention_check_interval_ms = 3600 * 1000;
  auto manager = ::runnel::log::testing::OpenManager(options);
  RUNNEL_ASSERT_OK(manager);
  auto log = (*manager)->Create("orders", 0, LogConfig{});
  RUNNEL_ASSERT_OK(log);
  Fill(*log, 2, "o");
  const CheckpointFile file(data_path(kRecoveryPointCheckpointName));
  EXPECT_TRUE(::runnel::testing::WaitFor(
      [&] {
        auto entries = file.Read();
        return entries.ok() &&
               *entries == std::vector<CheckpointEntry>{{"orders", 0, 20}};
      },
      std::chrono::seconds(10)));
  RUNNEL_ASSERT_OK((*manager)->Close());
  EXPECT_TRUE(fs::exists(data_path(kCleanShutdownFileName)));
}

}  // namespace
}  // namespace runnel::log
