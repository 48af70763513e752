// End-to-end tests of the `runnel` CLI's client subcommands (topic, produce,
// consume, bench) against a real runnel-broker process.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/broker_process.h"
#include "tests/testing/scoped_temp_dir.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/wait_for.h"

namespace runnel::tools {
namespace {

using ::runnel::testing::BrokerProcess;
using ::runnel::testing::ScopedTempDir;
using ::runnel::testing::WaitFor;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs `runnel --bootstrap ADDRESS ARGS` with `input` on stdin; its files
// live in `tmp`.
CliResult RunCli(const ScopedTempDir& tmp, const std::string& address,
                 const std::string& args, const std::string& input = "") {
  const std::string in = tmp.Sub("in"), out = tmp.Sub("out"),
                    err = tmp.Sub("err");
  std::ofstream(in, std::ios::binary) << input;
  const std::string cmd =
      absl::StrCat(RUNNEL_CLI_BINARY_PATH, " --bootstrap ", address, " ", args,
                   " <", in, " >", out, " 2>", err);
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  r.out = ReadFile(out);
  r.err = ReadFile(err);
  return r;
}

// `runnel --bootstrap ADDRESS ARGS` running in the background, its stderr
// in `err_path` and its stdout in `out_path`. The destructor SIGKILLs it if
// it still runs.
class BackgroundCli {
 public:
  BackgroundCli(const std::string& address, const std::string& args,
                const std::string& err_path,
                const std::string& out_path = "/dev/null") {
    const std::string cmd =
        absl::StrCat("exec ", RUNNEL_CLI_BINARY_PATH, " --bootstrap ", address,
                     " ", args, " </dev/null >", out_path, " 2>", err_path);
    pid_ = ::fork();
    if (pid_ == 0) {
      // Default signal handling, whatever the test inherited: a test run
      // that a non-interactive shell started in the background has SIGINT
      // ignored, which exec would pass on to the CLI.
      ::signal(SIGINT, SIG_DFL);
      ::signal(SIGTERM, SIG_DFL);
      sigset_t none;
      ::sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
      ::_exit(127);
    }
  }
  BackgroundCli(const BackgroundCli&) = delete;
  BackgroundCli& operator=(const BackgroundCli&) = delete;
  ~BackgroundCli() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }

  bool started() const { return pid_ > 0; }
  // Sends signal `sig` to the process while it runs.
  void Signal(int sig) {
    if (pid_ > 0) ::kill(pid_, sig);
  }
  // Its exit code (128 + signal if killed) once it exits, or nullopt if it
  // still runs after `deadline`.
  std::optional<int> WaitExit(std::chrono::milliseconds deadline) {
    int status = 0;
    const bool exited = WaitFor(
        [&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, deadline);
    if (!exited) return std::nullopt;
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
};

// True once a progress line "<label>: N records" with N > 0 was printed.
bool ShowsProgress(const std::string& err, const std::string& label) {
  const std::string prefix = label + ": ";
  for (size_t at = err.find(prefix); at != std::string::npos;
       at = err.find(prefix, at + 1)) {
    const size_t digit = at + prefix.size();
    if (digit < err.size() && err[digit] >= '1' && err[digit] <= '9') {
      return true;
    }
  }
  return false;
}

// One line of `consume --json`; key, value and headers as their JSON text.
struct JsonRecord {
  int32_t partition = -1;
  int64_t offset = -1;
  int64_t timestamp = -1;
  std::string key;
  std::string value;
  std::string headers;
};

// The JSON text of field `name` of a `consume --json` line, up to the field
// `next` (the fields come in a fixed order) or the closing brace.
std::string FieldText(const std::string& line, const std::string& name,
                      const std::string& next) {
  const std::string from = absl::StrCat("\"", name, "\":");
  const size_t at = line.find(from);
  if (at == std::string::npos) return "";
  const size_t begin = at + from.size();
  const size_t end = next.empty()
                         ? line.rfind('}')
                         : line.find(absl::StrCat(",\"", next, "\":"), begin);
  if (end == std::string::npos || end < begin) return "";
  return line.substr(begin, end - begin);
}

std::vector<JsonRecord> ParseRecords(const std::string& out) {
  std::vector<JsonRecord> records;
  for (absl::string_view view : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    const std::string line(view);
    JsonRecord r;
    EXPECT_TRUE(
        absl::SimpleAtoi(FieldText(line, "partition", "offset"), &r.partition))
        << line;
    EXPECT_TRUE(
        absl::SimpleAtoi(FieldText(line, "offset", "timestamp"), &r.offset))
        << line;
    EXPECT_TRUE(
        absl::SimpleAtoi(FieldText(line, "timestamp", "key"), &r.timestamp))
        << line;
    r.key = FieldText(line, "key", "value");
    r.value = FieldText(line, "value", "headers");
    r.headers = FieldText(line, "headers", "");
    records.push_back(std::move(r));
  }
  return records;
}

class CliE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScopedTempDir();
    runnel::testing::BrokerProcessOptions options;
    options.data_dir = dir_->Sub("data");
    auto broker = BrokerProcess::Start(options);
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = broker->release();
  }
  static void TearDownTestSuite() {
    delete broker_;
    delete dir_;
  }

  // Runs `runnel --bootstrap ADDR ARGS` with `input` on stdin.
  CliResult Run(const std::string& args, const std::string& input = "") {
    return RunCli(tmp_, broker_->address(), args, input);
  }

  ScopedTempDir tmp_;
  static ScopedTempDir* dir_;
  static BrokerProcess* broker_;
};

ScopedTempDir* CliE2eTest::dir_ = nullptr;
BrokerProcess* CliE2eTest::broker_ = nullptr;

TEST_F(CliE2eTest, ProducePrintsOffsetsAndConsumeReadsThemBack) {
  ASSERT_EQ(Run("topic create lines --partitions 1").exit_code, 0);
  CliResult produced =
      Run("produce lines --print-offsets", "one\ntwo\nthree\nfour\nfive\n");
  ASSERT_EQ(produced.exit_code, 0) << produced.err;
  EXPECT_EQ(produced.out, "0\t0\n0\t1\n0\t2\n0\t3\n0\t4\n");

  CliResult all = Run("consume lines --from-beginning");
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(all.out, "one\ntwo\nthree\nfour\nfive\n");

  CliResult tail = Run("consume lines --offset 3 --print-offset");
  EXPECT_EQ(tail.out, "0\t3\tfour\n0\t4\tfive\n");

  CliResult limited = Run("consume lines --from-beginning --max-messages 2");
  EXPECT_EQ(limited.out, "one\ntwo\n");

  // Default start is the end: nothing new, exit at the high watermark.
  CliResult latest = Run("consume lines");
  EXPECT_EQ(latest.exit_code, 0);
  EXPECT_EQ(latest.out, "");

  CliResult from_time = Run("consume lines --from-time 1970-01-01T00:00:00Z");
  EXPECT_EQ(from_time.out, all.out);
}

TEST_F(CliE2eTest, KeysHeadersAndJsonOutput) {
  ASSERT_EQ(Run("topic create keyed --partitions 4").exit_code, 0);
  CliResult produced =
      Run("produce keyed --key-separator : --header src=cli --header flag "
          "--print-offsets",
          "k1:v1\nk2:v:with:colons\nk1:v3\n");
  ASSERT_EQ(produced.exit_code, 0) << produced.err;
  std::vector<std::string> lines =
      absl::StrSplit(produced.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u);
  // Same key, same partition, consecutive offsets in input order.
  const std::string p1 =
      std::string(absl::StrSplit(lines[0], '\t').begin()->data(), 1);
  EXPECT_THAT(lines[2], StartsWith(p1 + "\t"));

  CliResult keyed =
      Run("consume keyed --from-beginning --print-key --partition " + p1);
  const size_t first = keyed.out.find("k1\tv1\n");
  const size_t third = keyed.out.find("k1\tv3\n");
  ASSERT_NE(first, std::string::npos) << keyed.out;
  ASSERT_NE(third, std::string::npos) << keyed.out;
  EXPECT_LT(first, third);

  CliResult json =
      Run("consume keyed --from-beginning --json --max-messages 3");
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_THAT(json.out, HasSubstr("\"topic\":\"keyed\""));
  EXPECT_THAT(json.out, HasSubstr("\"value\":\"v:with:colons\""));
  EXPECT_THAT(json.out, HasSubstr("\"key\":\"k2\""));
  EXPECT_THAT(json.out,
              HasSubstr("\"headers\":[{\"key\":\"src\",\"value\":\"cli\"},"
                        "{\"key\":\"flag\",\"value\":null}]"));

  CliResult missing_sep = Run("produce keyed --key-separator :", "nokey\n");
  EXPECT_EQ(missing_sep.exit_code, 1);
  EXPECT_THAT(missing_sep.err, HasSubstr("line 1"));
}

TEST_F(CliE2eTest, TopicCommandsListDescribeAlterAndDelete) {
  ASSERT_EQ(Run("topic create admin --partitions 2 --config retention.ms=60000")
                .exit_code,
            0);
  EXPECT_THAT(Run("topic list").out, HasSubstr("admin\t2\n"));
  EXPECT_THAT(Run("topic list --json").out,
              HasSubstr("{\"name\":\"admin\",\"partitions\":2,"));
  ASSERT_EQ(Run("produce admin --partition 1", "x\ny\n").exit_code, 0);
  CliResult described = Run("topic describe admin --json");
  ASSERT_EQ(described.exit_code, 0) << described.err;
  EXPECT_THAT(described.out, HasSubstr("\"high_watermark\":2"));
  EXPECT_THAT(described.out, HasSubstr("\"retention.ms\":\"60000\""));
  EXPECT_THAT(Run("topic describe admin").out,
              HasSubstr("Partition: 1\tLeader: 0"));
  EXPECT_EQ(Run("topic alter admin --config retention.ms=1000").exit_code, 0);
  EXPECT_EQ(Run("topic add-partitions admin --partitions 3").exit_code, 0);
  EXPECT_THAT(Run("topic list").out, HasSubstr("admin\t3\n"));
  EXPECT_EQ(Run("topic delete admin").exit_code, 0);
  CliResult gone = Run("topic describe admin");
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_THAT(gone.err, HasSubstr("admin"));
}

TEST_F(CliE2eTest, BadInputGivesNonZeroExitAndStderrMessage) {
  struct Case {
    std::string args;
    std::string stderr_has;
  };
  const Case cases[] = {
      {"consume", "TOPIC"},
      {"produce t --acks maybe", "acks"},
      {"topic create ../x --partitions 1", "INVALID_TOPIC"},
      {"topic create ok --partitions 0", "partitions"},
      {"consume no-such-topic", "no-such-topic"},
      {"produce no-such-topic", "no-such-topic"},
      {"consume x --from-time yesterday", "cannot parse time"},
      {"consume x --offset -5", "offset"},
      {"topic create ok2 --partitions 1 --config nonsense", "KEY=VALUE"},
      {"bench produce --records 10", "topic"},
      {"bench produce --topic t --rate 10 --burst-ms -1", "burst-ms"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.args);
    CliResult r = Run(c.args);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_THAT(r.err, HasSubstr(c.stderr_has));
  }
  ASSERT_EQ(Run("topic create small --partitions 1").exit_code, 0);
  CliResult out_of_range = Run("consume small --offset 100");
  EXPECT_EQ(out_of_range.exit_code, 1);
  EXPECT_THAT(out_of_range.err, HasSubstr("out of range"));
}

// --follow keeps printing records produced after it reached the end, until
// a signal ends it. It installs no handler: SIGTERM and SIGINT end it with
// the default action (the shell reports 128 + the signal), after what it
// printed so far was flushed (it flushes after every poll).
TEST_F(CliE2eTest, ConsumeFollowPrintsNewRecordsUntilASignal) {
  ASSERT_EQ(Run("topic create follow --partitions 1").exit_code, 0);
  ASSERT_EQ(Run("produce follow", "a\nb\n").exit_code, 0);
  std::string expected = "a\nb\n";
  for (int sig : {SIGTERM, SIGINT}) {
    SCOPED_TRACE(absl::StrCat("signal ", sig));
    const std::string out_path = tmp_.Sub(absl::StrCat("follow", sig));
    const std::string err_path = out_path + ".err";
    BackgroundCli follow(broker_->address(),
                         "consume follow --from-beginning --follow", err_path,
                         out_path);
    ASSERT_TRUE(follow.started());
    ASSERT_TRUE(WaitFor([&] { return ReadFile(out_path) == expected; },
                        std::chrono::seconds(30)))
        << ReadFile(out_path) << ReadFile(err_path);
    const std::string more = absl::StrCat("more", sig, "\nlast", sig, "\n");
    ASSERT_EQ(Run("produce follow", more).exit_code, 0);
    expected += more;
    ASSERT_TRUE(WaitFor([&] { return ReadFile(out_path) == expected; },
                        std::chrono::seconds(30)))
        << ReadFile(out_path) << ReadFile(err_path);
    follow.Signal(sig);
    std::optional<int> code = follow.WaitExit(std::chrono::seconds(30));
    ASSERT_TRUE(code.has_value()) << "still running after the signal";
    EXPECT_EQ(*code, 128 + sig) << ReadFile(err_path);
    EXPECT_EQ(ReadFile(out_path), expected);
  }
}

TEST_F(CliE2eTest, ConsumeFollowExitsAfterMaxMessages) {
  ASSERT_EQ(Run("topic create follow-max --partitions 1").exit_code, 0);
  ASSERT_EQ(Run("produce follow-max", "a\nb\n").exit_code, 0);
  const std::string out_path = tmp_.Sub("follow.out");
  const std::string err_path = tmp_.Sub("follow.err");
  BackgroundCli follow(
      broker_->address(),
      "consume follow-max --from-beginning --follow --max-messages 3", err_path,
      out_path);
  ASSERT_TRUE(follow.started());
  ASSERT_TRUE(WaitFor([&] { return ReadFile(out_path) == "a\nb\n"; },
                      std::chrono::seconds(30)))
      << ReadFile(out_path) << ReadFile(err_path);
  EXPECT_FALSE(follow.WaitExit(std::chrono::milliseconds(0)).has_value());
  ASSERT_EQ(Run("produce follow-max", "c\nd\n").exit_code, 0);
  std::optional<int> code = follow.WaitExit(std::chrono::seconds(30));
  ASSERT_TRUE(code.has_value()) << "still running after 3 records";
  EXPECT_EQ(*code, 0) << ReadFile(err_path);
  EXPECT_EQ(ReadFile(out_path), "a\nb\nc\n");
}

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

// The values of `records` with a timestamp at or after `t_ms`, sorted.
std::vector<std::string> ValuesFrom(const std::vector<JsonRecord>& records,
                                    int64_t t_ms) {
  std::vector<std::string> values;
  for (const JsonRecord& r : records) {
    if (r.timestamp >= t_ms) values.push_back(r.value);
  }
  std::sort(values.begin(), values.end());
  return values;
}

TEST_F(CliE2eTest, FromTimeStartsAtTheFirstRecordAtOrAfterTheTime) {
  ASSERT_EQ(Run("topic create timed --partitions 2").exit_code, 0);
  std::string group_a, group_b;
  for (int i = 0; i < 6; ++i) {
    absl::StrAppend(&group_a, "k", i, ":a", i, "\n");
    absl::StrAppend(&group_b, "k", i, ":b", i, "\n");
  }
  ASSERT_EQ(Run("produce timed --key-separator :", group_a).exit_code, 0);
  std::vector<JsonRecord> a =
      ParseRecords(Run("consume timed --from-beginning --json").out);
  ASSERT_EQ(a.size(), 6u);
  int64_t a_max = 0;
  for (const JsonRecord& r : a) a_max = std::max(a_max, r.timestamp);
  // Group B is stamped (by the producer's clock) after all of group A.
  ASSERT_TRUE(
      WaitFor([&] { return NowMs() > a_max; }, std::chrono::seconds(10)));
  ASSERT_EQ(Run("produce timed --key-separator :", group_b).exit_code, 0);
  std::vector<JsonRecord> all =
      ParseRecords(Run("consume timed --from-beginning --json").out);
  ASSERT_EQ(all.size(), 12u);
  int64_t b_min = std::numeric_limits<int64_t>::max(), all_max = 0;
  for (const JsonRecord& r : all) {
    if (absl::StartsWith(r.value, "\"b")) b_min = std::min(b_min, r.timestamp);
    all_max = std::max(all_max, r.timestamp);
  }
  ASSERT_GT(b_min, a_max);
  const std::vector<std::string> b = ValuesFrom(all, a_max + 1);
  ASSERT_EQ(b, ValuesFrom(all, b_min));
  ASSERT_EQ(b.size(), 6u);
  for (const std::string& value : b) EXPECT_THAT(value, StartsWith("\"b"));

  auto consumed_from = [&](const std::string& t) {
    CliResult r = Run("consume timed --json --from-time " + t);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return ValuesFrom(ParseRecords(r.out), 0);
  };
  const absl::Time b_start = absl::FromUnixMillis(b_min);
  const std::string iso_utc =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", b_start, absl::UTCTimeZone());
  const std::string iso_plus_two = absl::FormatTime(
      "%Y-%m-%dT%H:%M:%E3S%Ez", b_start, absl::FixedTimeZone(2 * 3600));
  ASSERT_THAT(iso_plus_two, ::testing::EndsWith("+02:00"));
  for (const std::string& t :
       {absl::StrCat(a_max + 1), absl::StrCat(b_min), iso_utc, iso_plus_two}) {
    SCOPED_TRACE(t);
    EXPECT_EQ(consumed_from(t), b);
  }
  // At A's last timestamp: A's records of that millisecond, then all of B.
  EXPECT_EQ(consumed_from(absl::StrCat(a_max)), ValuesFrom(all, a_max));
  EXPECT_THAT(consumed_from(absl::StrCat(all_max + 1)), ::testing::IsEmpty());
}

TEST_F(CliE2eTest, EveryCompressionCodecRoundTripsThroughTheCli) {
  constexpr int kRecords = 20;
  std::string input;
  for (int i = 0; i < kRecords; ++i) {
    absl::StrAppend(&input, "key-", i, ":value-", i, "-", std::string(64, 'x'),
                    "\n");
  }
  for (const std::string codec : {"none", "gzip", "snappy", "lz4", "zstd"}) {
    SCOPED_TRACE(codec);
    const std::string topic = "codec-" + codec;
    ASSERT_EQ(Run("topic create " + topic + " --partitions 1").exit_code, 0);
    CliResult produced =
        Run("produce " + topic + " --key-separator : --header codec=" + codec +
                " --header bare --compression " + codec,
            input);
    ASSERT_EQ(produced.exit_code, 0) << produced.err;
    CliResult consumed = Run("consume " + topic + " --from-beginning --json");
    ASSERT_EQ(consumed.exit_code, 0) << consumed.err;
    std::vector<JsonRecord> records = ParseRecords(consumed.out);
    ASSERT_EQ(records.size(), static_cast<size_t>(kRecords)) << consumed.out;
    for (int i = 0; i < kRecords; ++i) {
      EXPECT_EQ(records[i].offset, i);
      EXPECT_EQ(records[i].key, absl::StrCat("\"key-", i, "\""));
      EXPECT_EQ(records[i].value,
                absl::StrCat("\"value-", i, "-", std::string(64, 'x'), "\""));
      EXPECT_EQ(records[i].headers,
                absl::StrCat("[{\"key\":\"codec\",\"value\":\"", codec,
                             "\"},{\"key\":\"bare\",\"value\":null}]"));
    }
    // Every batch on disk carries the codec asked for.
    CliResult dumped = Run(absl::StrCat("dump-log --json ", broker_->data_dir(),
                                        "/", topic, "-0"));
    ASSERT_EQ(dumped.exit_code, 0) << dumped.err;
    const std::vector<std::string> batches =
        absl::StrSplit(dumped.out, '\n', [](absl::string_view line) {
          return absl::StrContains(line, "\"type\":\"batch\"");
        });
    ASSERT_FALSE(batches.empty()) << dumped.out;
    for (const std::string& batch : batches) {
      EXPECT_THAT(batch, HasSubstr("\"compression\":\"" + codec + "\""));
    }
  }
}

TEST_F(CliE2eTest, PrintOffsetsFollowInputOrderAcrossPartitions) {
  ASSERT_EQ(Run("topic create spread --partitions 4").exit_code, 0);
  constexpr int kLines = 200;
  std::string input;
  for (int i = 0; i < kLines; ++i) {
    absl::StrAppend(&input, "key-", i, ":value-", i, "\n");
  }
  // Small batches without linger: many requests, acknowledged out of order
  // across partitions.
  CliResult produced =
      Run("produce spread --key-separator : --print-offsets --batch-size 256 "
          "--linger-ms 0",
          input);
  ASSERT_EQ(produced.exit_code, 0) << produced.err;
  const std::vector<std::string> lines =
      absl::StrSplit(produced.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), static_cast<size_t>(kLines));

  CliResult consumed = Run("consume spread --from-beginning --json");
  ASSERT_EQ(consumed.exit_code, 0) << consumed.err;
  const std::vector<JsonRecord> records = ParseRecords(consumed.out);
  ASSERT_EQ(records.size(), static_cast<size_t>(kLines));
  std::map<std::pair<int32_t, int64_t>, const JsonRecord*> at;
  for (const JsonRecord& r : records) at[{r.partition, r.offset}] = &r;
  std::set<int32_t> partitions;
  for (int i = 0; i < kLines; ++i) {
    SCOPED_TRACE(absl::StrCat("line ", i, ": ", lines[i]));
    const std::vector<std::string> fields = absl::StrSplit(lines[i], '\t');
    ASSERT_EQ(fields.size(), 2u);
    std::pair<int32_t, int64_t> where;
    ASSERT_TRUE(absl::SimpleAtoi(fields[0], &where.first));
    ASSERT_TRUE(absl::SimpleAtoi(fields[1], &where.second));
    partitions.insert(where.first);
    auto it = at.find(where);
    ASSERT_NE(it, at.end());
    EXPECT_EQ(it->second->key, absl::StrCat("\"key-", i, "\""));
    EXPECT_EQ(it->second->value, absl::StrCat("\"value-", i, "\""));
  }
  EXPECT_GT(partitions.size(), 1u);
}

TEST_F(CliE2eTest, AcksLeaderAndNoneDeliverTheRecords) {
  ASSERT_EQ(Run("topic create acks --partitions 1").exit_code, 0);
  CliResult leader =
      Run("produce acks --acks leader --print-offsets", "l0\nl1\nl2\n");
  ASSERT_EQ(leader.exit_code, 0) << leader.err;
  EXPECT_EQ(leader.out, "0\t0\n0\t1\n0\t2\n");
  EXPECT_EQ(Run("consume acks --from-beginning").out, "l0\nl1\nl2\n");

  // acks=none: the broker reports no offsets, so -1 is printed for each.
  CliResult none =
      Run("produce acks --acks none --print-offsets", "n0\nn1\nn2\n");
  ASSERT_EQ(none.exit_code, 0) << none.err;
  EXPECT_EQ(none.out, "0\t-1\n0\t-1\n0\t-1\n");
  // Nothing waited for the broker's append: wait until it is readable.
  const std::string expected = "l0\nl1\nl2\nn0\nn1\nn2\n";
  std::string seen;
  EXPECT_TRUE(WaitFor(
      [&] {
        seen = Run("consume acks --from-beginning").out;
        return seen == expected;
      },
      std::chrono::seconds(30)))
      << seen;
}

TEST_F(CliE2eTest, DescribeShowsLogStartAndHighWatermark) {
  ASSERT_EQ(Run("topic create described --partitions 2").exit_code, 0);
  ASSERT_EQ(Run("produce described --partition 0", "a\nb\nc\n").exit_code, 0);
  ASSERT_EQ(Run("produce described --partition 1", "d\ne\nf\ng\nh\n").exit_code,
            0);
  CliResult text = Run("topic describe described");
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr("\tPartition: 0\t"));
  EXPECT_THAT(text.out,
              HasSubstr("\tLogStart: 0\tHighWatermark: 3\tLogEnd: 3\n"));
  EXPECT_THAT(text.out,
              HasSubstr("\tLogStart: 0\tHighWatermark: 5\tLogEnd: 5\n"));
  const std::vector<std::string> lines =
      absl::StrSplit(text.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << text.out;
  EXPECT_THAT(lines[1], HasSubstr("Partition: 0\t"));
  EXPECT_THAT(lines[1], HasSubstr("HighWatermark: 3\t"));
  EXPECT_THAT(lines[2], HasSubstr("Partition: 1\t"));
  EXPECT_THAT(lines[2], HasSubstr("HighWatermark: 5\t"));

  CliResult json = Run("topic describe described --json");
  ASSERT_EQ(json.exit_code, 0) << json.err;
  for (const auto& [partition, end] : {std::pair{0, 3}, std::pair{1, 5}}) {
    const size_t at =
        json.out.find(absl::StrCat("{\"partition\":", partition, ","));
    ASSERT_NE(at, std::string::npos) << json.out;
    const std::string object = json.out.substr(at, json.out.find('}', at) - at);
    EXPECT_THAT(object, HasSubstr("\"log_start_offset\":0,"));
    EXPECT_THAT(object,
                HasSubstr(absl::StrCat("\"high_watermark\":", end, ",")));
    EXPECT_THAT(object,
                HasSubstr(absl::StrCat("\"log_end_offset\":", end, ",")));
  }
}

// The number of field `name` in a bench's --json summary.
double SummaryNumber(const std::string& json, const std::string& name) {
  const std::string key = "\"" + name + "\":";
  const size_t at = json.find(key);
  EXPECT_NE(at, std::string::npos) << name << " in " << json;
  if (at == std::string::npos) return 0;
  return std::strtod(json.c_str() + at + key.size(), nullptr);
}

// Seconds reported by a bench's --json summary.
double SummarySeconds(const std::string& json) {
  return SummaryNumber(json, "seconds");
}

// Checks every field of a bench's --json summary: `records` records of
// `bytes` bytes, throughput consistent with them, latency percentiles in
// order.
void ExpectBenchSummary(const std::string& json, uint64_t records,
                        uint64_t bytes) {
  SCOPED_TRACE(json);
  for (const char* field :
       {"\"records\":", "\"bytes\":", "\"seconds\":", "\"records_per_sec\":",
        "\"mb_per_sec\":", "\"p50_ms\":", "\"p99_ms\":", "\"p999_ms\":",
        "\"max_ms\":"}) {
    EXPECT_THAT(json, HasSubstr(field));
  }
  EXPECT_EQ(SummaryNumber(json, "records"), records);
  EXPECT_EQ(SummaryNumber(json, "bytes"), bytes);
  const double seconds = SummarySeconds(json);
  ASSERT_GT(seconds, 0);
  const double rps = static_cast<double>(records) / seconds;
  EXPECT_NEAR(SummaryNumber(json, "records_per_sec"), rps, rps * 1e-6);
  const double mbps = static_cast<double>(bytes) / 1e6 / seconds;
  EXPECT_NEAR(SummaryNumber(json, "mb_per_sec"), mbps, mbps * 1e-6);
  // The percentiles come from the histogram's shards summed: in order, and
  // none above the slowest record.
  EXPECT_GT(SummaryNumber(json, "max_ms"), 0);
  EXPECT_GE(SummaryNumber(json, "p50_ms"), 0);
  EXPECT_LE(SummaryNumber(json, "p50_ms"), SummaryNumber(json, "p99_ms"));
  EXPECT_LE(SummaryNumber(json, "p99_ms"), SummaryNumber(json, "p999_ms"));
  // Percentiles report a bucket's midpoint: within 1.6 % of the true value.
  EXPECT_LE(SummaryNumber(json, "p999_ms"),
            SummaryNumber(json, "max_ms") * 1.02);
}

TEST_F(CliE2eTest, BenchReportsJsonSummary) {
  ASSERT_EQ(Run("topic create bench --partitions 1").exit_code, 0);
  CliResult produce =
      Run("bench produce --topic bench --records 2000 --record-size 100 "
          "--acks leader --json");
  ASSERT_EQ(produce.exit_code, 0) << produce.err;
  EXPECT_THAT(produce.out, StartsWith("{\"bench\":\"produce\","));
  ExpectBenchSummary(produce.out, 2000, 200000);
  CliResult consume = Run("bench consume --topic bench --json");
  ASSERT_EQ(consume.exit_code, 0) << consume.err;
  EXPECT_THAT(consume.out, StartsWith("{\"bench\":\"consume\","));
  // Values only: the bench's records have no key.
  ExpectBenchSummary(consume.out, 2000, 200000);
  CliResult e2e =
      Run("bench e2e --topic bench --records 500 --record-size 64 --rate 5000 "
          "--json");
  ASSERT_EQ(e2e.exit_code, 0) << e2e.err;
  EXPECT_THAT(e2e.out, StartsWith("{\"bench\":\"e2e\","));
  ExpectBenchSummary(e2e.out, 500, 500 * 64);
  // e2e also reports send -> acknowledgement next to send -> receipt.
  for (const char* field : {"\"ack_p50_ms\":", "\"ack_p99_ms\":",
                            "\"ack_p999_ms\":", "\"ack_max_ms\":"}) {
    EXPECT_THAT(e2e.out, HasSubstr(field));
  }
  EXPECT_GT(SummaryNumber(e2e.out, "ack_max_ms"), 0);
  EXPECT_THAT(produce.out, Not(HasSubstr("ack_p50_ms")));
  EXPECT_THAT(consume.out, Not(HasSubstr("ack_p50_ms")));
}

// The 1 s progress ticker reports acknowledged records on stderr while the
// bench runs; --rate makes the run outlast the first tick (30 records at
// 20/s: the last is due at 1.45 s).
TEST_F(CliE2eTest, BenchProduceShowsProgressOnStderr) {
  ASSERT_EQ(Run("topic create ticking --partitions 1").exit_code, 0);
  CliResult r = Run(
      "bench produce --topic ticking --records 30 --record-size 10 --rate 20 "
      "--json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(ShowsProgress(r.err, "bench produce acked")) << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("bench produce acked")));
  EXPECT_EQ(SummaryNumber(r.out, "records"), 30);
}

// Every acknowledged record of every producer thread is counted (a shared
// warm-up mark once let one thread's start hide another's first records).
TEST_F(CliE2eTest, BenchProduceCountsEveryRecordOfEveryProducer) {
  ASSERT_EQ(Run("topic create multi --partitions 2").exit_code, 0);
  for (int round = 0; round < 3; ++round) {
    CliResult r =
        Run("bench produce --topic multi --records 50001 --record-size 16 "
            "--producers 3 --json");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(SummaryNumber(r.out, "records"), 50001) << r.out;
    EXPECT_EQ(SummaryNumber(r.out, "latency_records"), 50001) << r.out;
  }
}

TEST_F(CliE2eTest, BenchE2eWarmupRecordsAreLeftOutOfTheLatency) {
  ASSERT_EQ(Run("topic create warm --partitions 1").exit_code, 0);
  CliResult all =
      Run("bench e2e --topic warm --records 300 --rate 5000 --json");
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(SummaryNumber(all.out, "latency_records"), 300);
  CliResult warm = Run(
      "bench e2e --topic warm --records 300 --rate 5000 --warmup-records 120 "
      "--json");
  ASSERT_EQ(warm.exit_code, 0) << warm.err;
  // Every record is received and counted; 180 are measured.
  EXPECT_EQ(SummaryNumber(warm.out, "records"), 300);
  EXPECT_EQ(SummaryNumber(warm.out, "latency_records"), 180);
  CliResult bad =
      Run("bench e2e --topic warm --records 300 --warmup-records 300");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--warmup-records (300) must be below "
                                 "--records (300)"));
}

TEST_F(CliE2eTest, BenchRateHoldsTheScheduleWithAndWithoutBursts) {
  ASSERT_EQ(Run("topic create paced --partitions 1").exit_code, 0);
  // Record i is due at i / rate: 200 records at 2000/s cannot finish before
  // record 199 is due (99.5 ms), less the burst the sender may run ahead.
  CliResult smooth = Run(
      "bench produce --topic paced --records 200 --record-size 10 --rate 2000 "
      "--burst-ms 0 --json");
  ASSERT_EQ(smooth.exit_code, 0) << smooth.err;
  EXPECT_GE(SummarySeconds(smooth.out), 0.0995);
  CliResult bursts = Run(
      "bench produce --topic paced --records 200 --record-size 10 --rate 2000 "
      "--burst-ms 20 --json");
  ASSERT_EQ(bursts.exit_code, 0) << bursts.err;
  EXPECT_GE(SummarySeconds(bursts.out), 0.0995 - 0.020);
  CliResult e2e = Run(
      "bench e2e --topic paced --records 200 --rate 2000 --burst-ms 0 --json");
  ASSERT_EQ(e2e.exit_code, 0) << e2e.err;
  EXPECT_GE(SummarySeconds(e2e.out), 0.0995);
}

// Benches against a broker of their own, which the test kills under them.
class CliBrokerDeathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    runnel::testing::BrokerProcessOptions options;
    options.data_dir = tmp_.Sub("data");
    auto broker = BrokerProcess::Start(options);
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = *std::move(broker);
  }
  CliResult Run(const std::string& args, const std::string& input = "") {
    return RunCli(tmp_, broker_->address(), args, input);
  }

  // Starts `args` in the background, waits until its progress line shows
  // records, SIGKILLs the broker and returns how the bench exited.
  std::optional<int> KillBrokerUnder(const std::string& args,
                                     const std::string& progress_label,
                                     std::string* err) {
    const std::string err_path = tmp_.Sub("bench.err");
    BackgroundCli bench(broker_->address(), args, err_path);
    EXPECT_TRUE(bench.started());
    const bool progressing = WaitFor(
        [&] { return ShowsProgress(ReadFile(err_path), progress_label); },
        std::chrono::seconds(60));
    EXPECT_TRUE(progressing) << ReadFile(err_path);
    RUNNEL_EXPECT_OK(broker_->Kill());
    // Generous: the bench's own deadline is 2 s after its last record.
    std::optional<int> code = bench.WaitExit(std::chrono::seconds(60));
    *err = ReadFile(err_path);
    return code;
  }

  ScopedTempDir tmp_;
  std::unique_ptr<BrokerProcess> broker_;
};

TEST_F(CliBrokerDeathTest, BenchE2eFailsWhenTheBrokerDies) {
  ASSERT_EQ(Run("topic create e2e --partitions 1").exit_code, 0);
  std::string err;
  std::optional<int> code = KillBrokerUnder(
      "bench e2e --topic e2e --records 100000000 --rate 1000 --timeout-ms "
      "2000",
      "bench e2e received", &err);
  ASSERT_TRUE(code.has_value()) << "still running after the broker died\n"
                                << err;
  EXPECT_NE(*code, 0) << err;
  EXPECT_THAT(err, HasSubstr("runnel bench e2e: ")) << err;
}

TEST_F(CliBrokerDeathTest, BenchConsumeFailsWhenTheBrokerDies) {
  ASSERT_EQ(Run("topic create consumed --partitions 1").exit_code, 0);
  std::string lines;
  for (int i = 0; i < 100; ++i) absl::StrAppend(&lines, "record-", i, "\n");
  ASSERT_EQ(Run("produce consumed", lines).exit_code, 0);
  // --records beyond the end: it reads the 100 and waits for more.
  std::string err;
  std::optional<int> code = KillBrokerUnder(
      "bench consume --topic consumed --records 1000000 --timeout-ms 2000",
      "bench consume", &err);
  ASSERT_TRUE(code.has_value()) << "still running after the broker died\n"
                                << err;
  EXPECT_NE(*code, 0) << err;
  EXPECT_THAT(err, HasSubstr("runnel bench consume: ")) << err;
}

TEST_F(CliBrokerDeathTest, BenchConsumeWaitsForRecordsProducedLater) {
  ASSERT_EQ(Run("topic create later --partitions 1").exit_code, 0);
  ASSERT_EQ(Run("produce later", "a\nb\n").exit_code, 0);
  const std::string err_path = tmp_.Sub("bench.err");
  BackgroundCli bench(broker_->address(),
                      "bench consume --topic later --records 4 --timeout-ms "
                      "60000",
                      err_path);
  ASSERT_TRUE(bench.started());
  ASSERT_TRUE(WaitFor(
      [&] { return ShowsProgress(ReadFile(err_path), "bench consume"); },
      std::chrono::seconds(60)))
      << ReadFile(err_path);
  ASSERT_EQ(Run("produce later", "c\nd\n").exit_code, 0);
  std::optional<int> code = bench.WaitExit(std::chrono::seconds(60));
  ASSERT_TRUE(code.has_value()) << ReadFile(err_path);
  EXPECT_EQ(*code, 0) << ReadFile(err_path);
}

// A compacted topic through the broker and the CLI: the broker's periodic
// pass (--log-retention-check-interval-ms) leaves the latest value per key
// at its original offset, and a record without a key is refused.
TEST(CliCompactionE2eTest, CompactedTopicKeepsTheLatestValuePerKey) {
  ScopedTempDir dir;
  runnel::testing::BrokerProcessOptions options;
  options.data_dir = dir.Sub("data");
  options.extra_args = {"--log-retention-check-interval-ms=50"};
  auto broker = BrokerProcess::Start(options);
  ASSERT_TRUE(broker.ok()) << broker.status();
  const std::string address = (*broker)->address();
  auto run = [&](const std::string& args, const std::string& input = "") {
    return RunCli(dir, address, args, input);
  };
  // min.cleanable.dirty.ratio 0.1: the third round against the second is
  // about half of the closed bytes, which Kafka's default (0.5) may miss by
  // a timestamp varint's byte.
  ASSERT_EQ(run("topic create users --partitions 1 --config "
                "cleanup.policy=compact --config segment.bytes=100 "
                "--config min.cleanable.dirty.ratio=0.1")
                .exit_code,
            0);
  // Three rounds of the same ten keys, each its own request and so its own
  // segment (a round's batch is larger than segment.bytes); then one more
  // record, so that the third round is in a closed segment too.
  for (int round = 0; round < 3; ++round) {
    std::string lines;
    for (int k = 0; k < 10; ++k) {
      absl::StrAppend(&lines, "k", k, ":v", round, "-", k, "\n");
    }
    CliResult produced =
        run("produce users --key-separator : --linger-ms 0", lines);
    ASSERT_EQ(produced.exit_code, 0) << produced.err;
  }
  ASSERT_EQ(run("produce users --key-separator :", "last:x\n").exit_code, 0);

  // What compaction must leave: round 2 at offsets 20..29, then "last".
  std::string expected;
  for (int k = 0; k < 10; ++k) {
    absl::StrAppend(&expected, "0\t", 20 + k, "\tk", k, "\tv2-", k, "\n");
  }
  absl::StrAppend(&expected, "0\t30\tlast\tx\n");
  std::string seen;
  const bool compacted = WaitFor(
      [&] {
        seen = run("consume users --from-beginning --print-offset --print-key")
                   .out;
        return seen == expected;
      },
      std::chrono::seconds(30));
  EXPECT_TRUE(compacted) << seen;

  CliResult keyless = run("produce users", "no key\n");
  EXPECT_NE(keyless.exit_code, 0);
  EXPECT_THAT(keyless.err, HasSubstr("key"));
  EXPECT_EQ(
      run("consume users --from-beginning --print-offset --print-key").out,
      expected);
  CliResult describe = run("topic describe users --json");
  EXPECT_THAT(describe.out, HasSubstr("\"high_watermark\":31"));
}

}  // namespace
}  // namespace runnel::tools
