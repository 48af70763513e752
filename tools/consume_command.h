#pragma once

#include <CLI/CLI.hpp>

namespace runnel::tools {

// Adds `runnel consume TOPIC`: prints records, one per line.
void RegisterConsumeCommand(CLI::App& app);

}  // namespace runnel::tools
