// Runs the built `runnel` binary (RUNNEL_CLI_PATH) as a child process.

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "common/unique_fd.h"
#include "log/record_batch.h"
#include "tests/testing/scoped_temp_dir.h"

namespace runnel::tools {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

struct Outcome {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `runnel args...` (without RUNNEL_BOOTSTRAP in its environment) and
// collects its exit code, stdout and stderr.
Outcome RunCli(const std::vector<std::string>& args) {
  int out_pipe[2];
  int err_pipe[2];
  Outcome outcome;
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2 failed";
    return outcome;
  }
  std::vector<std::string> argv_strings = {RUNNEL_CLI_PATH};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string_view(*e).substr(0, 17) != "RUNNEL_BOOTSTRAP=") {
      envp.push_back(*e);
    }
  }
  envp.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(err_pipe[1], STDERR_FILENO);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  UniqueFd out_fd(out_pipe[0]);
  UniqueFd err_fd(err_pipe[0]);
  // Read both pipes until both close, so neither can fill up and block.
  pollfd fds[2] = {{out_fd.get(), POLLIN, 0}, {err_fd.get(), POLLIN, 0}};
  std::string* sinks[2] = {&outcome.out, &outcome.err};
  int open_count = 2;
  while (open_count > 0) {
    if (poll(fds, 2, -1) < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      ssize_t n = read(fds[i].fd, buf, sizeof(buf));
      if (n <= 0) {
        fds[i].fd = -1;
        --open_count;
      } else {
        sinks[i]->append(buf, static_cast<size_t>(n));
      }
    }
  }
  int status = 0;
  waitpid(pid, &status, 0);
  outcome.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return outcome;
}

TEST(RunnelCliTest, DumpLogHelpListsEveryFlag) {
  Outcome o = RunCli({"dump-log", "--help"});
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_THAT(o.out, HasSubstr("--records"));
  EXPECT_THAT(o.out, HasSubstr("--verify"));
  EXPECT_THAT(o.out, HasSubstr("--json"));
  EXPECT_THAT(o.out, HasSubstr("PATH"));
  EXPECT_THAT(o.err, IsEmpty());
}

// Every subcommand's --help exits 0 and names its flags on stdout; no
// broker is needed (the default bootstrap is never contacted).
TEST(RunnelCliTest, EverySubcommandHelpListsItsFlags) {
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> names;
  };
  const Case cases[] = {
      {{"topic", "create", "--help"},
       {"NAME", "--partitions", "--replication-factor", "--config"}},
      {{"topic", "list", "--help"}, {"--json", "--internal"}},
      {{"topic", "describe", "--help"}, {"NAME", "--json"}},
      {{"topic", "delete", "--help"}, {"NAME"}},
      {{"topic", "alter", "--help"}, {"NAME", "--config", "--delete-config"}},
      {{"topic", "add-partitions", "--help"}, {"NAME", "--partitions"}},
      {{"produce", "--help"},
       {"TOPIC", "--key-separator", "--partition", "--acks", "--compression",
        "--header", "--print-offsets", "--linger-ms", "--batch-size"}},
      {{"consume", "--help"},
       {"TOPIC", "--from-beginning", "--offset", "--from-time", "--partition",
        "--max-messages", "--follow", "--print-key", "--print-offset",
        "--json"}},
      {{"bench", "produce", "--help"},
       {"--topic", "--records", "--record-size", "--acks", "--compression",
        "--rate", "--burst-ms", "--batch-size", "--linger-ms",
        "--buffer-memory", "--max-request-size", "--max-in-flight",
        "--no-idempotence", "--producers", "--json"}},
      {{"bench", "consume", "--help"},
       {"--topic", "--records", "--fetch-max-bytes", "--partition-fetch-bytes",
        "--timeout-ms", "--json"}},
      {{"bench", "e2e", "--help"},
       {"--topic", "--records", "--record-size", "--rate", "--burst-ms",
        "--acks", "--warmup-records", "--timeout-ms", "--json"}},
      {{"dump-log", "--help"}, {"PATH", "--records", "--verify", "--json"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrJoin(c.args, " "));
    Outcome o = RunCli(c.args);
    EXPECT_EQ(o.exit_code, 0) << o.err;
    EXPECT_THAT(o.err, IsEmpty());
    for (const std::string& name : c.names) {
      EXPECT_THAT(o.out, HasSubstr(name));
    }
  }
}

TEST(RunnelCliTest, ABadFlagFailsWithAMessageOnStderr) {
  Outcome o = RunCli({"dump-log", "--no-such-flag", "x.log"});
  EXPECT_NE(o.exit_code, 0);
  EXPECT_THAT(o.err, HasSubstr("no-such-flag"));
  EXPECT_THAT(o.out, IsEmpty());
}

TEST(RunnelCliTest, DumpLogWithoutAPathFails) {
  Outcome o = RunCli({"dump-log"});
  EXPECT_NE(o.exit_code, 0);
  EXPECT_THAT(o.err, HasSubstr("PATH"));
}

TEST(RunnelCliTest, NoSubcommandPrintsHelp) {
  Outcome o = RunCli({});
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_THAT(o.out, HasSubstr("dump-log"));
  EXPECT_THAT(o.out, HasSubstr("--bootstrap"));
}

TEST(RunnelCliTest, AnUnknownSubcommandFails) {
  Outcome o = RunCli({"no-such-command"});
  EXPECT_NE(o.exit_code, 0);
  EXPECT_THAT(o.err, HasSubstr("no-such-command"));
}

TEST(RunnelCliTest, AMalformedBootstrapIsRejected) {
  Outcome o = RunCli({"--bootstrap", "nohostport", "dump-log", "x.log"});
  EXPECT_NE(o.exit_code, 0);
  EXPECT_THAT(o.err, HasSubstr("HOST:PORT"));
}

TEST(RunnelCliTest, DumpLogVerifyExitCodesReachTheShell) {
  testing::ScopedTempDir dir;
  log::RecordBatchBuilder builder;
  builder.Append(1000, "k", "v");
  absl::StatusOr<std::string> batch = builder.Build();
  ASSERT_TRUE(batch.ok());
  std::string path = dir.Sub("00000000000000000000.log");
  { std::ofstream(path, std::ios::binary) << *batch; }
  Outcome good = RunCli({"dump-log", "--verify", path});
  EXPECT_EQ(good.exit_code, 0);
  EXPECT_THAT(good.out, HasSubstr("batch base_offset=0 last_offset=0"));
  EXPECT_THAT(good.err, IsEmpty());

  (*batch)[batch->size() - 1] ^= 0x40;
  { std::ofstream(path, std::ios::binary | std::ios::trunc) << *batch; }
  Outcome bad = RunCli({"dump-log", "--verify", path});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, HasSubstr(path + ": position 0: crc mismatch"));
  EXPECT_THAT(bad.out, Not(HasSubstr("crc_ok=true")));
}

}  // namespace
}  // namespace runnel::tools
