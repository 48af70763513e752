#pragma once

// The leader-epoch cache of one partition (Kafka's LeaderEpochFileCache,
// KIP-101): which leader epoch started at which offset, persisted in
// <partition-dir>/leader-epoch-checkpoint. Format:
// docs/log-format.md ("leader-epoch-checkpoint").

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "log/types.h"

namespace runnel::log {

inline constexpr char kLeaderEpochCheckpointFile[] = "leader-epoch-checkpoint";

struct EpochEntry {
  int32_t epoch = 0;
  Offset start_offset = 0;
  bool operator==(const EpochEntry&) const = default;
};

// The answer to OffsetsForLeaderEpoch: the largest known epoch <= the
// requested one and the offset where it ended. epoch -1 / end_offset -1
// (Kafka's UNDEFINED) when the requested epoch is newer than every known
// epoch, or nothing is known.
struct EpochEndOffset {
  int32_t epoch = -1;
  Offset end_offset = kNoOffset;
  bool operator==(const EpochEndOffset&) const = default;
};

// Thread-compatible: the partition log calls it under its mutex. Every
// change is written to the checkpoint (tmp file, fsync, rename, fsync dir)
// before the call returns.
class LeaderEpochCache {
 public:
  LeaderEpochCache(const LeaderEpochCache&) = delete;
  LeaderEpochCache& operator=(const LeaderEpochCache&) = delete;

  // Loads `path` if it exists (kDataLoss with the path and line if it is
  // malformed); an absent file is an empty cache.
  static absl::StatusOr<std::unique_ptr<LeaderEpochCache>> Open(
      std::string path);

  // Records that `epoch` starts at `start_offset`. Ignored (OK) if `epoch`
  // is already the latest, or if epoch < 0. Like Kafka, entries with
  // epoch >= `epoch` or start offset >= `start_offset` are removed first
  // (a new leader's view wins).
  absl::Status Assign(int32_t epoch, Offset start_offset);

  // KIP-101: for the latest epoch, log_end_offset; for an older known one,
  // the start offset of the next higher epoch; for an epoch below every
  // known one, (requested epoch, first start offset); UNDEFINED if newer
  // than all or empty. Kafka LeaderEpochFileCache.endOffsetFor semantics.
  EpochEndOffset EndOffsetFor(int32_t epoch, Offset log_end_offset) const;

  // Removes every entry with start offset >= `end_offset` (log truncated to
  // end there).
  absl::Status TruncateFromEnd(Offset end_offset);
  // The log now starts at `start_offset`: entries that start below it are
  // dropped except the last of them, which is moved to `start_offset`.
  absl::Status TruncateFromStart(Offset start_offset);
  // Removes everything.
  absl::Status Clear();

  std::optional<EpochEntry> latest() const;
  int32_t latest_epoch() const;  // -1 if empty
  const std::vector<EpochEntry>& entries() const { return entries_; }
  const std::string& path() const { return path_; }

 private:
  explicit LeaderEpochCache(std::string path) : path_(std::move(path)) {}
  absl::Status Persist() const;

  std::string path_;
  std::vector<EpochEntry> entries_;  // ascending epoch and start offset
};

// Writes `content` to `path` atomically and durably: "<path>.tmp", fdatasync,
// rename, fsync of the directory.
absl::Status WriteFileAtomically(const std::string& path,
                                 std::string_view content);

}  // namespace runnel::log
