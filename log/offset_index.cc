#include "log/offset_index.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "common/check.h"
#include "common/endian.h"
#include "common/status_macros.h"

namespace runnel::log {
namespace {

int64_t RoundToEntries(int64_t bytes) {
  return bytes < 0 ? bytes
                   : bytes / kOffsetIndexEntrySize * kOffsetIndexEntrySize;
}

}  // namespace

OffsetIndex::OffsetIndex(std::string path, Offset base_offset, MappedFile file)
    : path_(std::move(path)),
      base_offset_(base_offset),
      opened_file_bytes_(file.original_size_bytes()),
      file_(std::move(file)) {}

absl::StatusOr<std::unique_ptr<OffsetIndex>> OffsetIndex::Open(
    std::string path, Offset base_offset, int64_t max_index_bytes) {
  RUNNEL_ASSIGN_OR_RETURN(
      MappedFile file, MappedFile::Open(path, RoundToEntries(max_index_bytes)));
  std::unique_ptr<OffsetIndex> index(
      new OffsetIndex(std::move(path), base_offset, std::move(file)));
  absl::MutexLock lock(&index->mu_);
  // A trimmed file (shorter than the preallocation) holds only entries; a
  // preallocated one ends its entries with zero fill. Either way the valid
  // part is the strictly increasing prefix.
  const bool trimmed = index->opened_file_bytes_ < index->file_.size_bytes();
  const int64_t candidates =
      std::min(index->opened_file_bytes_, index->file_.size_bytes()) /
      kOffsetIndexEntrySize;
  int64_t n = 0;
  for (; n < candidates; ++n) {
    OffsetPosition e = index->EntryLocked(n);
    if (n == 0) {
      if (!trimmed && e.offset == base_offset && e.position == 0) break;
      continue;
    }
    OffsetPosition prev = index->EntryLocked(n - 1);
    if (e.offset <= prev.offset || e.position <= prev.position) break;
  }
  index->entries_ = n;
  // Zero any stale bytes after the valid entries (a crash can leave some) so
  // a later scan cannot mistake them for entries.
  ClearStaleTail(index->file_, n * kOffsetIndexEntrySize,
                 candidates * kOffsetIndexEntrySize);
  return index;
}

void OffsetIndex::Append(Offset offset, FilePos position) {
  absl::MutexLock lock(&mu_);
  RUNNEL_CHECK(entries_ < file_.size_bytes() / kOffsetIndexEntrySize);
  RUNNEL_CHECK(offset >= base_offset_ &&
               offset - base_offset_ <= std::numeric_limits<uint32_t>::max());
  RUNNEL_CHECK(position >= 0 &&
               position <= std::numeric_limits<uint32_t>::max());
  if (entries_ > 0) {
    OffsetPosition last = EntryLocked(entries_ - 1);
    RUNNEL_CHECK(offset > last.offset && position > last.position);
  }
  char* p = file_.data() + entries_ * kOffsetIndexEntrySize;
  StoreBe32(p, static_cast<uint32_t>(offset - base_offset_));
  StoreBe32(p + 4, static_cast<uint32_t>(position));
  ++entries_;
}

OffsetPosition OffsetIndex::Lookup(Offset target) const {
  absl::ReaderMutexLock lock(&mu_);
  int64_t slot = LargestLowerBoundLocked(target);
  if (slot < 0) return {base_offset_, 0};
  return EntryLocked(slot);
}

void OffsetIndex::TruncateTo(Offset offset) {
  absl::MutexLock lock(&mu_);
  int64_t keep = LargestLowerBoundLocked(offset - 1) + 1;
  ZeroFromLocked(keep);
  entries_ = keep;
}

void OffsetIndex::Reset() {
  absl::MutexLock lock(&mu_);
  ZeroFromLocked(0);
  entries_ = 0;
}

absl::Status OffsetIndex::Trim() {
  absl::MutexLock lock(&mu_);
  RUNNEL_RETURN_IF_ERROR(file_.Resize(entries_ * kOffsetIndexEntrySize));
  return file_.Sync();
}

absl::Status OffsetIndex::Resize(int64_t max_index_bytes) {
  absl::MutexLock lock(&mu_);
  int64_t bytes = std::max(RoundToEntries(max_index_bytes),
                           entries_ * kOffsetIndexEntrySize);
  return file_.Resize(bytes);
}

absl::Status OffsetIndex::Sync() const {
  absl::ReaderMutexLock lock(&mu_);
  return file_.Sync();
}

int64_t OffsetIndex::entries() const {
  absl::ReaderMutexLock lock(&mu_);
  return entries_;
}

int64_t OffsetIndex::max_entries() const {
  absl::ReaderMutexLock lock(&mu_);
  return file_.size_bytes() / kOffsetIndexEntrySize;
}

bool OffsetIndex::is_full() const {
  absl::ReaderMutexLock lock(&mu_);
  return entries_ >= file_.size_bytes() / kOffsetIndexEntrySize;
}

OffsetPosition OffsetIndex::Entry(int64_t i) const {
  absl::ReaderMutexLock lock(&mu_);
  RUNNEL_CHECK(i >= 0 && i < entries_);
  return EntryLocked(i);
}

OffsetPosition OffsetIndex::LastEntry() const {
  absl::ReaderMutexLock lock(&mu_);
  if (entries_ == 0) return {base_offset_, 0};
  return EntryLocked(entries_ - 1);
}

OffsetPosition OffsetIndex::EntryLocked(int64_t i) const {
  const char* p = file_.data() + i * kOffsetIndexEntrySize;
  return {base_offset_ + LoadBe32(p), static_cast<FilePos>(LoadBe32(p + 4))};
}

int64_t OffsetIndex::LargestLowerBoundLocked(Offset target) const {
  // Binary search for the last entry with offset <= target.
  int64_t lo = 0;
  int64_t hi = entries_;  // answer in [lo - 1, hi - 1]
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (EntryLocked(mid).offset <= target) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo - 1;
}

void OffsetIndex::ZeroFromLocked(int64_t i) {
  int64_t from = i * kOffsetIndexEntrySize;
  int64_t to = entries_ * kOffsetIndexEntrySize;
  if (to > from) std::memset(file_.data() + from, 0, to - from);
}

}  // namespace runnel::log
