#include "log/mapped_region.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

#include "common/status_macros.h"

namespace runnel::log {
namespace {

absl::Status ErrnoError(const std::string& what, const std::string& path) {
  int err = errno;
  std::string message =
      absl::StrCat(path, ": ", what, ": ", std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) {
    return absl::ResourceExhaustedError(message);
  }
  if (err == ENOENT) return absl::NotFoundError(message);
  return absl::InternalError(message);
}

}  // namespace

MappedRegion& MappedRegion::operator=(MappedRegion&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) munmap(data_, size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

MappedRegion::~MappedRegion() {
  if (data_ != nullptr) munmap(data_, size_);
}

absl::StatusOr<MappedRegion> MappedRegion::Map(int fd, size_t size,
                                               bool writable) {
  if (size == 0) return MappedRegion();
  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  void* p = mmap(nullptr, size, prot, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    return ErrnoError(absl::StrCat("mmap of ", size, " bytes"),
                      absl::StrCat("fd ", fd));
  }
  // No read-ahead: an index is stored into one entry at a time and looked up
  // by binary search. With the default, the first store into a preallocated
  // (sparse) index read ahead 8 MiB of zeros into the page cache, which took
  // 1.7 ms on the append path and kept 8 MiB resident per index file
  // (docs/log-format.md, ".index"). Advice only: a refusal changes
  // nothing that matters for correctness.
  (void)madvise(p, size, MADV_RANDOM);
  return MappedRegion(static_cast<char*>(p), size);
}

absl::Status MappedRegion::Sync() const {
  if (data_ == nullptr) return absl::OkStatus();
  if (msync(data_, size_, MS_SYNC) != 0) return ErrnoError("msync", "region");
  return absl::OkStatus();
}

absl::StatusOr<MappedFile> MappedFile::Open(std::string path,
                                            int64_t size_bytes) {
  MappedFile file;
  file.path_ = std::move(path);
  file.fd_.reset(
      ::open(file.path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!file.fd_.valid()) return ErrnoError("open", file.path_);
  struct stat st;
  if (fstat(file.fd_.get(), &st) != 0) return ErrnoError("fstat", file.path_);
  file.original_size_bytes_ = st.st_size;
  RUNNEL_RETURN_IF_ERROR(
      file.Resize(size_bytes < 0 ? file.original_size_bytes_ : size_bytes));
  return file;
}

absl::Status MappedFile::Resize(int64_t size_bytes) {
  // Unmap first: a mapping must never cover pages past the end of the file.
  region_ = MappedRegion();
  if (ftruncate(fd_.get(), size_bytes) != 0)
    return ErrnoError("ftruncate", path_);
  RUNNEL_ASSIGN_OR_RETURN(
      region_, MappedRegion::Map(fd_.get(), static_cast<size_t>(size_bytes),
                                 /*writable=*/true));
  return absl::OkStatus();
}

absl::Status MappedFile::Sync() const {
  RUNNEL_RETURN_IF_ERROR(region_.Sync());
  if (fdatasync(fd_.get()) != 0) return ErrnoError("fdatasync", path_);
  return absl::OkStatus();
}

void ClearStaleTail(const MappedFile& file, int64_t from, int64_t to) {
  // Find the last non-zero byte first: writing zeros over zero pages would
  // dirty megabytes of a preallocated file for nothing.
  int64_t end = to;
  while (end > from && file.data()[end - 1] == 0) --end;
  if (end > from) std::memset(file.data() + from, 0, end - from);
}

}  // namespace runnel::log
