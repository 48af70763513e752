#include "tools/client_cli.h"

#include <cstdio>
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

#include "tools/cli_context.h"

namespace runnel::tools {

absl::StatusOr<std::map<std::string, std::string>> ParseKeyValues(
    const std::vector<std::string>& items, const std::string& flag) {
  std::map<std::string, std::string> out;
  for (const std::string& item : items) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, " expects KEY=VALUE, got '", item, "'"));
    }
    out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

absl::StatusOr<std::vector<client::Header>> ParseHeaders(
    const std::vector<std::string>& items) {
  std::vector<client::Header> out;
  for (const std::string& item : items) {
    const size_t eq = item.find('=');
    if (eq == 0 || item.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--header expects KEY=VALUE, got '", item, "'"));
    }
    if (eq == std::string::npos) {
      out.push_back(client::Header{item, std::nullopt});
    } else {
      out.push_back(client::Header{item.substr(0, eq), item.substr(eq + 1)});
    }
  }
  return out;
}

absl::StatusOr<int64_t> ParseTimeMs(const std::string& text) {
  int64_t ms = 0;
  if (!text.empty() &&
      absl::ascii_isdigit(static_cast<unsigned char>(text[0])) &&
      text.find_first_not_of("0123456789") == std::string::npos) {
    if (absl::SimpleAtoi(text, &ms)) return ms;
  }
  absl::Time t;
  std::string err;
  for (const char* format : {absl::RFC3339_full, "%Y-%m-%dT%H:%M:%E*S",
                             "%Y-%m-%d %H:%M:%E*S", "%Y-%m-%d"}) {
    if (absl::ParseTime(format, text, absl::UTCTimeZone(), &t, &err)) {
      return absl::ToUnixMillis(t);
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "cannot parse time '", text,
      "': expected ISO 8601 (2026-12-03T17:00:00Z) or epoch milliseconds"));
}

void Fail(const std::string& command, const absl::Status& status, int code) {
  // One write: a bench's progress thread may print to stderr meanwhile.
  const std::string line =
      absl::StrCat("runnel ", command, ": ", status.message(), "\n");
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
  SetExitCode(code);
}

}  // namespace runnel::tools
