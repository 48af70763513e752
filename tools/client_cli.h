#pragma once

// Helpers shared by the client subcommands (topic, produce, consume, bench).

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "runnel/record.h"

namespace runnel::tools {

// "K=V" strings into a map. kInvalidArgument naming the flag otherwise.
absl::StatusOr<std::map<std::string, std::string>> ParseKeyValues(
    const std::vector<std::string>& items, const std::string& flag);

// "K=V" header flags (the value may be empty; "K" alone is a null value).
absl::StatusOr<std::vector<client::Header>> ParseHeaders(
    const std::vector<std::string>& items);

// ISO 8601 / RFC 3339 ("2026-12-03T17:00:00Z", "2026-12-03T17:00:00.5+01:00",
// "2026-12-03" as midnight UTC) or epoch milliseconds ("1764781200000").
absl::StatusOr<int64_t> ParseTimeMs(const std::string& text);

// Prints "runnel CMD: MESSAGE" to stderr and sets the exit code to `code`.
void Fail(const std::string& command, const absl::Status& status, int code = 1);

}  // namespace runnel::tools
