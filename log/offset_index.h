#pragma once

// The sparse offset index of one segment (<base>.index): 8-byte entries of
// relative offset (u32 BE, offset - base offset) and .log position (u32 BE).
// Kafka semantics: an entry (O, P) says the batch that starts at position P
// has last offset O; entries are strictly increasing in both fields. Layout:
// docs/log-format.md (".index").

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

#include "log/mapped_region.h"
#include "log/types.h"

namespace runnel::log {

inline constexpr int64_t kOffsetIndexEntrySize = 8;

struct OffsetPosition {
  Offset offset = 0;
  FilePos position = 0;
  bool operator==(const OffsetPosition&) const = default;
};

// Thread-safe (an internal mutex): lookups may run while the partition's
// writer appends.
class OffsetIndex {
 public:
  OffsetIndex(const OffsetIndex&) = delete;
  OffsetIndex& operator=(const OffsetIndex&) = delete;

  // Opens or creates `path`, preallocates it to `max_index_bytes` (rounded
  // down to whole entries, at least one) and maps it. The valid entries of
  // an existing file are the strictly increasing prefix: the first entry
  // that does not increase both fields (zero fill of a preallocated file)
  // ends them. Errors: I/O with the path.
  static absl::StatusOr<std::unique_ptr<OffsetIndex>> Open(
      std::string path, Offset base_offset, int64_t max_index_bytes);

  // Adds an entry. RUNNEL_CHECKs that the index is not full, that `offset`
  // fits a relative u32 and that both fields increase.
  void Append(Offset offset, FilePos position);

  // The entry with the largest offset <= `target`, or {base_offset, 0} if
  // there is none: the position to start scanning for `target` from.
  OffsetPosition Lookup(Offset target) const;

  // Removes every entry with offset >= `offset`.
  void TruncateTo(Offset offset);
  // Removes every entry.
  void Reset();

  // Cuts the file to the valid entries (segment roll, clean close) and
  // syncs it. Appends after Trim need Resize first.
  absl::Status Trim();
  // Re-preallocates to `max_index_bytes` (a closed segment becomes active).
  absl::Status Resize(int64_t max_index_bytes);
  // Syncs the mapped entries to disk.
  absl::Status Sync() const;

  int64_t entries() const;
  int64_t max_entries() const;
  bool is_full() const;
  // The i-th entry; RUNNEL_CHECKs i < entries().
  OffsetPosition Entry(int64_t i) const;
  // The last entry or {base_offset, 0} if empty.
  OffsetPosition LastEntry() const;
  Offset base_offset() const { return base_offset_; }
  const std::string& path() const { return path_; }
  // Length of the index file when it was opened.
  int64_t opened_file_bytes() const { return opened_file_bytes_; }

 private:
  OffsetIndex(std::string path, Offset base_offset, MappedFile file);
  OffsetPosition EntryLocked(int64_t i) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  int64_t LargestLowerBoundLocked(Offset target) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void ZeroFromLocked(int64_t i) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  const Offset base_offset_;
  int64_t opened_file_bytes_ = 0;
  mutable absl::Mutex mu_;
  MappedFile file_ ABSL_GUARDED_BY(mu_);
  int64_t entries_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace runnel::log
