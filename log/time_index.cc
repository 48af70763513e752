#include "log/time_index.h"

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
  return bytes < 0 ? bytes : bytes / kTimeIndexEntrySize * kTimeIndexEntrySize;
}

}  // namespace

TimeIndex::TimeIndex(std::string path, Offset base_offset, MappedFile file)
    : path_(std::move(path)),
      base_offset_(base_offset),
      opened_file_bytes_(file.original_size_bytes()),
      file_(std::move(file)) {}

absl::StatusOr<std::unique_ptr<TimeIndex>> TimeIndex::Open(
    std::string path, Offset base_offset, int64_t max_index_bytes) {
  RUNNEL_ASSIGN_OR_RETURN(
      MappedFile file, MappedFile::Open(path, RoundToEntries(max_index_bytes)));
  std::unique_ptr<TimeIndex> index(
      new TimeIndex(std::move(path), base_offset, std::move(file)));
  absl::MutexLock lock(&index->mu_);
  const bool trimmed = index->opened_file_bytes_ < index->file_.size_bytes();
  const int64_t candidates =
      std::min(index->opened_file_bytes_, index->file_.size_bytes()) /
      kTimeIndexEntrySize;
  int64_t n = 0;
  for (; n < candidates; ++n) {
    TimestampOffset e = index->EntryLocked(n);
    if (n == 0) {
      if (!trimmed && e.timestamp == 0 && e.offset == base_offset) break;
      continue;
    }
    TimestampOffset prev = index->EntryLocked(n - 1);
    if (e.timestamp <= prev.timestamp || e.offset < prev.offset) break;
  }
  index->entries_ = n;
  ClearStaleTail(index->file_, n * kTimeIndexEntrySize,
                 candidates * kTimeIndexEntrySize);
  return index;
}

void TimeIndex::MaybeAppend(int64_t timestamp, Offset offset,
                            bool skip_full_check) {
  absl::MutexLock lock(&mu_);
  const int64_t max = file_.size_bytes() / kTimeIndexEntrySize;
  if (entries_ > 0) {
    TimestampOffset last = EntryLocked(entries_ - 1);
    if (timestamp <= last.timestamp) return;
    RUNNEL_CHECK(offset >= last.offset);
  }
  RUNNEL_CHECK(entries_ < (skip_full_check ? max : max - 1));
  RUNNEL_CHECK(offset >= base_offset_ &&
               offset - base_offset_ <= std::numeric_limits<uint32_t>::max());
  char* p = file_.data() + entries_ * kTimeIndexEntrySize;
  StoreBe64(p, static_cast<uint64_t>(timestamp));
  StoreBe32(p + 8, static_cast<uint32_t>(offset - base_offset_));
  ++entries_;
}

TimestampOffset TimeIndex::Lookup(int64_t timestamp_ms) const {
  absl::ReaderMutexLock lock(&mu_);
  int64_t lo = 0;
  int64_t hi = entries_;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (EntryLocked(mid).timestamp <= timestamp_ms) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo == 0) return {kNoTimestamp, base_offset_};
  return EntryLocked(lo - 1);
}

void TimeIndex::TruncateTo(Offset offset) {
  absl::MutexLock lock(&mu_);
  int64_t keep = entries_;
  while (keep > 0 && EntryLocked(keep - 1).offset >= offset) --keep;
  ZeroFromLocked(keep);
  entries_ = keep;
}

void TimeIndex::Reset() {
  absl::MutexLock lock(&mu_);
  ZeroFromLocked(0);
  entries_ = 0;
}

absl::Status TimeIndex::Trim() {
  absl::MutexLock lock(&mu_);
  RUNNEL_RETURN_IF_ERROR(file_.Resize(entries_ * kTimeIndexEntrySize));
  return file_.Sync();
}

absl::Status TimeIndex::Resize(int64_t max_index_bytes) {
  absl::MutexLock lock(&mu_);
  int64_t bytes = std::max(RoundToEntries(max_index_bytes),
                           (entries_ + 1) * kTimeIndexEntrySize);
  return file_.Resize(bytes);
}

absl::Status TimeIndex::Sync() const {
  absl::ReaderMutexLock lock(&mu_);
  return file_.Sync();
}

int64_t TimeIndex::entries() const {
  absl::ReaderMutexLock lock(&mu_);
  return entries_;
}

int64_t TimeIndex::max_entries() const {
  absl::ReaderMutexLock lock(&mu_);
  return file_.size_bytes() / kTimeIndexEntrySize;
}

bool TimeIndex::is_full() const {
  absl::ReaderMutexLock lock(&mu_);
  return entries_ >= file_.size_bytes() / kTimeIndexEntrySize - 1;
}

TimestampOffset TimeIndex::Entry(int64_t i) const {
  absl::ReaderMutexLock lock(&mu_);
  RUNNEL_CHECK(i >= 0 && i < entries_);
  return EntryLocked(i);
}

TimestampOffset TimeIndex::LastEntry() const {
  absl::ReaderMutexLock lock(&mu_);
  if (entries_ == 0) return {kNoTimestamp, base_offset_};
  return EntryLocked(entries_ - 1);
}

TimestampOffset TimeIndex::EntryLocked(int64_t i) const {
  const char* p = file_.data() + i * kTimeIndexEntrySize;
  return {static_cast<int64_t>(LoadBe64(p)), base_offset_ + LoadBe32(p + 8)};
}

void TimeIndex::ZeroFromLocked(int64_t i) {
  int64_t from = i * kTimeIndexEntrySize;
  int64_t to = entries_ * kTimeIndexEntrySize;
  if (to > from) std::memset(file_.data() + from, 0, to - from);
}

}  // namespace runnel::log
