#include "tools/cli_context.h"

#include <stdlib.h>

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include <CLI/CLI.hpp>

namespace runnel::tools {
namespace {

// Builds a root app with one subcommand "probe" that records what it saw.
class CliContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("RUNNEL_BOOTSTRAP");
    GetCliContext() = CliContext();
    ConfigureRootApp(app_);
    app_.add_subcommand("probe", "test subcommand")->callback([this] {
      seen_bootstrap_ = GetCliContext().bootstrap;
      SetExitCode(3);
    });
  }
  void TearDown() override { unsetenv("RUNNEL_BOOTSTRAP"); }

  int RunArgs(std::vector<std::string> args) {
    std::vector<char*> argv;
    std::string name = "runnel";
    argv.push_back(name.data());
    for (std::string& a : args) argv.push_back(a.data());
    return RunCli(app_, static_cast<int>(argv.size()), argv.data());
  }

  CLI::App app_;
  std::string seen_bootstrap_;
};

TEST_F(CliContextTest, BootstrapDefaultsToLocalhost7070) {
  EXPECT_EQ(RunArgs({"probe"}), 3);
  EXPECT_EQ(seen_bootstrap_, "127.0.0.1:7070");
}

TEST_F(CliContextTest, EnvironmentSetsBootstrap) {
  setenv("RUNNEL_BOOTSTRAP", "10.0.0.1:9000", 1);
  EXPECT_EQ(RunArgs({"probe"}), 3);
  EXPECT_EQ(seen_bootstrap_, "10.0.0.1:9000");
}

TEST_F(CliContextTest, FlagOverridesEnvironment) {
  setenv("RUNNEL_BOOTSTRAP", "10.0.0.1:9000", 1);
  EXPECT_EQ(RunArgs({"--bootstrap", "broker:7000", "probe"}), 3);
  EXPECT_EQ(seen_bootstrap_, "broker:7000");
}

TEST_F(CliContextTest, GlobalFlagMayFollowTheSubcommand) {
  EXPECT_EQ(RunArgs({"probe", "--bootstrap", "broker:7001"}), 3);
  EXPECT_EQ(seen_bootstrap_, "broker:7001");
}

TEST_F(CliContextTest, NoSubcommandExitsZeroWithoutRunningOne) {
  EXPECT_EQ(RunArgs({}), 0);
  EXPECT_EQ(seen_bootstrap_, "");
}

TEST_F(CliContextTest, BadBootstrapIsAParseError) {
  EXPECT_NE(RunArgs({"--bootstrap", "broker", "probe"}), 0);
  EXPECT_EQ(seen_bootstrap_, "");
}

TEST(IsHostPortTest, AcceptsHostAndPortOnly) {
  EXPECT_TRUE(IsHostPort("127.0.0.1:7070"));
  EXPECT_TRUE(IsHostPort("broker-1.example:1"));
  EXPECT_TRUE(IsHostPort("[::1]:65535"));
  EXPECT_FALSE(IsHostPort("broker"));
  EXPECT_FALSE(IsHostPort(":7070"));
  EXPECT_FALSE(IsHostPort("broker:"));
  EXPECT_FALSE(IsHostPort("broker:0"));
  EXPECT_FALSE(IsHostPort("broker:65536"));
  EXPECT_FALSE(IsHostPort("broker:70x"));
}

}  // namespace
}  // namespace runnel::tools
