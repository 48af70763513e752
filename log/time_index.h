#pragma once

// The sparse time index of one segment (<base>.timeindex): 12-byte entries
// of timestamp (i64 BE) and relative offset (u32 BE). Kafka semantics: an
// entry (T, O) says the largest timestamp of the segment up to and including
// offset O is T, first reached in the batch that contains O. Entries are
// added only when T grows. Layout: docs/log-format.md
// (".timeindex").

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

#include "log/mapped_region.h"
#include "log/types.h"

namespace runnel::log {

inline constexpr int64_t kTimeIndexEntrySize = 12;

struct TimestampOffset {
  int64_t timestamp = kNoTimestamp;
  Offset offset = 0;
  bool operator==(const TimestampOffset&) const = default;
};

// Thread-safe (an internal mutex).
class TimeIndex {
 public:
  TimeIndex(const TimeIndex&) = delete;
  TimeIndex& operator=(const TimeIndex&) = delete;

  // Like OffsetIndex::Open. Valid entries of an existing file: the prefix
  // with strictly increasing timestamps and non-decreasing offsets whose
  // first entry is not all zero.
  static absl::StatusOr<std::unique_ptr<TimeIndex>> Open(
      std::string path, Offset base_offset, int64_t max_index_bytes);

  // Adds (timestamp, offset) if timestamp > the last entry's timestamp (or
  // the index is empty). RUNNEL_CHECKs offset >= last offset, that the
  // offset fits a relative u32 and that the index has room (is_full() unless
  // `skip_full_check`: the last slot is kept for the entry written when the
  // segment closes, like Kafka).
  void MaybeAppend(int64_t timestamp, Offset offset,
                   bool skip_full_check = false);

  // The entry with the largest timestamp <= `timestamp_ms`, or
  // {kNoTimestamp, base_offset} if none: scan the log from that offset.
  TimestampOffset Lookup(int64_t timestamp_ms) const;

  // Removes every entry with offset >= `offset`.
  void TruncateTo(Offset offset);
  void Reset();
  absl::Status Trim();
  absl::Status Resize(int64_t max_index_bytes);
  absl::Status Sync() const;

  int64_t entries() const;
  int64_t max_entries() const;
  // One slot is kept free for the final entry: entries() >= max_entries()-1.
  bool is_full() const;
  TimestampOffset Entry(int64_t i) const;
  // The last entry or {kNoTimestamp, base_offset} if empty.
  TimestampOffset LastEntry() const;
  Offset base_offset() const { return base_offset_; }
  const std::string& path() const { return path_; }
  int64_t opened_file_bytes() const { return opened_file_bytes_; }

 private:
  TimeIndex(std::string path, Offset base_offset, MappedFile file);
  TimestampOffset EntryLocked(int64_t i) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void ZeroFromLocked(int64_t i) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  const Offset base_offset_;
  int64_t opened_file_bytes_ = 0;
  mutable absl::Mutex mu_;
  MappedFile file_ ABSL_GUARDED_BY(mu_);
  int64_t entries_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace runnel::log
