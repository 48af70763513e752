#pragma once

// The frame every `runnel` subcommand plugs into.
//
// A subcommand lives in tools/<name>_command.{h,cc} and exposes
//   void Register<Name>Command(CLI::App& app);
// which adds a CLI::App subcommand whose callback does the work and stores the
// process exit code with SetExitCode(). tools/runnel_main.cc builds the root
// app with ConfigureRootApp(), calls every Register function and hands over to
// RunCli(). Callbacks run after the whole command line is parsed, so they can
// read the global options from GetCliContext().

#include <string>

#include <CLI/CLI.hpp>

namespace runnel::tools {

inline constexpr char kDefaultBootstrap[] = "127.0.0.1:7070";

// Options of the root `runnel` app that every subcommand may read, plus the
// exit code the subcommand that ran chose.
struct CliContext {
  // --bootstrap HOST:PORT, else $RUNNEL_BOOTSTRAP, else kDefaultBootstrap.
  std::string bootstrap = kDefaultBootstrap;
  int exit_code = 0;
};

// The process's one context. Thread-compatible: only the main thread touches
// it (while parsing, then from the subcommand's callback).
CliContext& GetCliContext();

// Exit-code shorthand for subcommand callbacks.
inline void SetExitCode(int code) { GetCliContext().exit_code = code; }

// Sets the description, the global options (--bootstrap) and the error
// formatting of the root app. Global options may also follow the subcommand.
void ConfigureRootApp(CLI::App& app);

// Parses argv and runs the chosen subcommand's callback. Returns the process
// exit code: the subcommand's (see SetExitCode), 0 after --help or after
// printing help when no subcommand was given, CLI11's non-zero code (message
// on stderr) for a bad command line, 1 when a callback threw.
int RunCli(CLI::App& app, int argc, char** argv);

// "HOST:PORT" with a non-empty host and a port in 1..65535; for validators.
bool IsHostPort(const std::string& text);

}  // namespace runnel::tools
