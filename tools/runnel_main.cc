// The `runnel` command-line tool. Each subcommand registers itself from its
// own tools/<name>_command.{h,cc}; add yours below (keep the list sorted).

#include <CLI/CLI.hpp>

#include "common/process_tuning.h"
#include "tools/bench_command.h"
#include "tools/cli_context.h"
#include "tools/consume_command.h"
#include "tools/dump_log_command.h"
#include "tools/produce_command.h"
#include "tools/topic_command.h"

int main(int argc, char** argv) {
  runnel::TuneProcessForThroughput();
  CLI::App app;
  runnel::tools::ConfigureRootApp(app);
  runnel::tools::RegisterBenchCommand(app);
  runnel::tools::RegisterConsumeCommand(app);
  runnel::tools::RegisterDumpLogCommand(app);
  runnel::tools::RegisterProduceCommand(app);
  runnel::tools::RegisterTopicCommand(app);
  return runnel::tools::RunCli(app, argc, argv);
}
