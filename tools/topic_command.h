#pragma once

#include <CLI/CLI.hpp>

namespace runnel::tools {

// Adds `runnel topic create|list|describe|delete|alter|add-partitions`.
void RegisterTopicCommand(CLI::App& app);

}  // namespace runnel::tools
