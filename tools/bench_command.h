#pragma once

#include <CLI/CLI.hpp>

namespace runnel::tools {

// Adds `runnel bench produce|consume|e2e`: load generators that report
// throughput and latency percentiles (docs/benchmarks.md).
void RegisterBenchCommand(CLI::App& app);

}  // namespace runnel::tools
