// End-to-end tests of the `runnel` CLI's client subcommands (topic, produce,
// consume, bench) against a real runnel-broker process.

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/broker_process.h"
#include "tests/testing/scoped_temp_dir.h"

namespace runnel::tools {
namespace {

using ::runnel::testing::BrokerProcess;
using ::runnel::testing::ScopedTempDir;
using ::testing::HasSubstr;
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
    const std::string in = tmp_.Sub("in"), out = tmp_.Sub("out"),
                      err = tmp_.Sub("err");
    std::ofstream(in, std::ios::binary) << input;
    const std::string cmd = absl::StrCat(
        RUNNEL_CLI_BINARY_PATH, " --bootstrap ", broker_->address(), " ", args,
        " <", in, " >", out, " 2>", err);
    const int status = std::system(cmd.c_str());
    CliResult r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    r.out = ReadFile(out);
    r.err = ReadFile(err);
    return r;
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

TEST_F(CliE2eTest, BenchReportsJsonSummary) {
  ASSERT_EQ(Run("topic create bench --partitions 1").exit_code, 0);
  CliResult produce =
      Run("bench produce --topic bench --records 2000 --record-size 100 "
          "--acks leader --json");
  ASSERT_EQ(produce.exit_code, 0) << produce.err;
  for (const char* field :
       {"\"records\":2000", "\"bytes\":200000",
        "\"seconds\":", "\"records_per_sec\":", "\"mb_per_sec\":",
        "\"p50_ms\":", "\"p99_ms\":", "\"p999_ms\":", "\"max_ms\":"}) {
    EXPECT_THAT(produce.out, HasSubstr(field));
  }
  CliResult consume = Run("bench consume --topic bench --json");
  ASSERT_EQ(consume.exit_code, 0) << consume.err;
  EXPECT_THAT(consume.out, HasSubstr("\"records\":2000"));
  CliResult e2e =
      Run("bench e2e --topic bench --records 500 --rate 5000 --json");
  ASSERT_EQ(e2e.exit_code, 0) << e2e.err;
  EXPECT_THAT(e2e.out, HasSubstr("\"records\":500"));
}

}  // namespace
}  // namespace runnel::tools
