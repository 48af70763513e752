#include "tools/cli_context.h"

#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>

#include "absl/strings/numbers.h"

namespace runnel::tools {

CliContext& GetCliContext() {
  static CliContext context;
  return context;
}

bool IsHostPort(const std::string& text) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  uint32_t port = 0;
  if (!absl::SimpleAtoi(text.substr(colon + 1), &port)) return false;
  return port >= 1 && port <= 65535;
}

void ConfigureRootApp(CLI::App& app) {
  app.description(
      "runnel: command-line tool for the Runnel event log.\n"
      "Run `runnel SUBCOMMAND --help` for a subcommand's options.");
  app.name("runnel");
  // Global options may appear after the subcommand too.
  app.fallthrough();
  app.require_subcommand(0, 1);
  CliContext& context = GetCliContext();
  app.add_option("--bootstrap", context.bootstrap,
                 "Broker to contact first, HOST:PORT")
      ->envname("RUNNEL_BOOTSTRAP")
      ->capture_default_str()
      ->type_name("HOST:PORT")
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            return IsHostPort(value)
                       ? std::string()
                       : "expected HOST:PORT, got '" + value + "'";
          },
          "", "host:port"));
}

int RunCli(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Help goes to stdout with 0; real errors to stderr with CLI11's code.
    return app.exit(e, std::cout, std::cerr);
  } catch (const std::exception& e) {
    std::cerr << "runnel: error: " << e.what() << "\n";
    return 1;
  }
  if (app.get_subcommands().empty()) {
    std::cout << app.help();
    return 0;
  }
  return GetCliContext().exit_code;
}

}  // namespace runnel::tools
