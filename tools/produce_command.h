#pragma once

#include <CLI/CLI.hpp>

namespace runnel::tools {

// Adds `runnel produce TOPIC`: one record per stdin line.
void RegisterProduceCommand(CLI::App& app);

}  // namespace runnel::tools
