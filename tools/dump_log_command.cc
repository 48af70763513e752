#include "tools/dump_log_command.h"

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "tools/cli_context.h"
#include "tools/dump_log.h"

namespace runnel::tools {

void RegisterDumpLogCommand(CLI::App& app) {
  struct Args {
    std::vector<std::string> paths;
    DumpLogOptions options;
  };
  // Owned by the callback, which CLI11 keeps as long as the app.
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "dump-log", "Print and check segment files offline (docs/cli.md)");
  cmd->footer(
      "PATH is a segment .log file or a partition directory (every .log in\n"
      "it, in base-offset order). Problems go to stderr as\n"
      "PATH: position N: what.\n"
      "Exit: 0 ok, 1 a problem in the data, 2 a path unreadable.");
  cmd->add_option("PATH", args->paths,
                  "Segment .log files or partition directories")
      ->required();
  cmd->add_flag("--records", args->options.records,
                "Also print every record: offset, timestamp, key, value, "
                "headers");
  cmd->add_flag("--verify", args->options.verify,
                "Check CRCs, full batch validation, offset continuity, segment "
                "names and the .index/.timeindex; stop at the first problem");
  cmd->add_flag("--json", args->options.json,
                "One JSON object per line instead of text");
  cmd->callback([args] {
    SetExitCode(DumpLog(args->paths, args->options, std::cout, std::cerr));
  });
}

}  // namespace runnel::tools
