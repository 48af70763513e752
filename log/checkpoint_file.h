#pragma once

// Kafka's offset checkpoint text format, as used by
// recovery-point-offset-checkpoint and log-start-offset-checkpoint:
//
//   0\n                      version
//   <count>\n                number of entries that follow
//   <topic> <partition> <offset>\n   one line per entry
//
// Layout and rules: docs/log-format.md ("Data directory", "Checkpoints").

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "log/types.h"

namespace runnel::log {

inline constexpr int kCheckpointVersion = 0;

struct CheckpointEntry {
  std::string topic;
  int32_t partition = 0;
  Offset offset = 0;
  bool operator==(const CheckpointEntry&) const = default;
};

// One checkpoint file at a fixed path. Holds no descriptor between calls.
// Thread-compatible: concurrent Write() calls on the same path must be
// serialized by the caller (they share "<path>.tmp").
class CheckpointFile {
 public:
  explicit CheckpointFile(std::string path) : path_(std::move(path)) {}
  CheckpointFile(const CheckpointFile&) = default;
  CheckpointFile& operator=(const CheckpointFile&) = default;
  CheckpointFile(CheckpointFile&&) = default;
  CheckpointFile& operator=(CheckpointFile&&) = default;

  const std::string& path() const { return path_; }

  // Replaces the file atomically and durably: writes "<path>.tmp", fdatasyncs
  // it, renames it over <path> and fsyncs the directory. After a crash the
  // file holds either the old or the new contents, never a mix. Topic names
  // must not contain whitespace (kInvalidArgument). Disk errors: kInternal
  // (kResourceExhausted for ENOSPC/EDQUOT), with the path.
  absl::Status Write(const std::vector<CheckpointEntry>& entries) const;

  // Parses the file strictly. kNotFound if it does not exist; kDataLoss with
  // the path and the 1-based line for a malformed file (bad version, count
  // that does not match the entries, a line not of the form
  // "<topic> <partition> <offset>", negative numbers, trailing bytes).
  absl::StatusOr<std::vector<CheckpointEntry>> Read() const;

 private:
  std::string path_;
};

// The whole file's bytes. kNotFound if it does not exist; other errors
// carry errno's code and the path.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);

// Serializes `entries` in the checkpoint text format (exposed for tests).
std::string FormatCheckpoint(const std::vector<CheckpointEntry>& entries);
// Parses checkpoint text; `path` only labels errors (see CheckpointFile::Read).
absl::StatusOr<std::vector<CheckpointEntry>> ParseCheckpoint(
    std::string_view text, const std::string& path);

}  // namespace runnel::log
