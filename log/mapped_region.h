#pragma once

// RAII memory mappings for the index files.

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/statusor.h"

#include "common/unique_fd.h"

namespace runnel::log {

// One mmap'ed range of a file, unmapped on destruction. Move-only.
// Thread-compatible.
class MappedRegion {
 public:
  MappedRegion() = default;
  MappedRegion(MappedRegion&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)) {}
  MappedRegion& operator=(MappedRegion&& other) noexcept;  // unmaps its own
  MappedRegion(const MappedRegion&) = delete;
  MappedRegion& operator=(const MappedRegion&) = delete;
  ~MappedRegion();

  // Maps `size` bytes of `fd` from position 0 (MAP_SHARED, read-write when
  // `writable`). `size` 0 gives an empty region. Errors carry errno text.
  static absl::StatusOr<MappedRegion> Map(int fd, size_t size, bool writable);

  char* data() const { return data_; }
  size_t size() const { return size_; }
  // msync(MS_SYNC) of the whole region.
  absl::Status Sync() const;

 private:
  MappedRegion(char* data, size_t size) : data_(data), size_(size) {}
  char* data_ = nullptr;
  size_t size_ = 0;
};

// A file preallocated to a fixed size and mapped whole: the storage of an
// index (.index, .timeindex). Move-only. Thread-compatible.
class MappedFile {
 public:
  MappedFile() = default;
  MappedFile(MappedFile&&) = default;
  MappedFile& operator=(MappedFile&&) = default;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // Opens (creating) `path` read-write, sets its length to `size_bytes`
  // (extending with zeros or cutting; < 0 keeps the current length) and maps
  // it.
  static absl::StatusOr<MappedFile> Open(std::string path, int64_t size_bytes);

  // Changes the file length to `size_bytes` and remaps.
  absl::Status Resize(int64_t size_bytes);
  // msync + fdatasync.
  absl::Status Sync() const;

  char* data() const { return region_.data(); }
  int64_t size_bytes() const { return static_cast<int64_t>(region_.size()); }
  const std::string& path() const { return path_; }
  // Length of the file when it was opened (before preallocation).
  int64_t original_size_bytes() const { return original_size_bytes_; }

 private:
  std::string path_;
  UniqueFd fd_;
  MappedRegion region_;
  int64_t original_size_bytes_ = 0;
};

// Zeroes the bytes in [from, to) of `file` (up to its last non-zero byte):
// index files clear stale entries after their valid part this way.
void ClearStaleTail(const MappedFile& file, int64_t from, int64_t to);

}  // namespace runnel::log
