#pragma once

#include <CLI/CLI.hpp>

namespace runnel::tools {

// Adds `runnel dump-log PATH... [--records] [--verify] [--json]`.
void RegisterDumpLogCommand(CLI::App& app);

}  // namespace runnel::tools
