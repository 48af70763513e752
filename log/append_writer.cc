#include "log/append_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"

#include "common/check.h"
#include "common/status_macros.h"
#include "common/streaming_copy.h"
#include "log/huge_page_buffers.h"

namespace runnel::log {

namespace {

constexpr size_t RoundDown(size_t n) {
  return n / kDirectIoAlignment * kDirectIoAlignment;
}
constexpr size_t RoundUp(size_t n) {
  return RoundDown(n + kDirectIoAlignment - 1);
}

}  // namespace

// One append buffer: bytes [start, start + len) of the file. Memory, `start`
// (in O_DIRECT mode) and capacity are 4096-aligned.
// In O_DIRECT mode its memory comes from huge pages (one contiguous piece per
// write, see log/huge_page_buffers.h) and it is registered with the I/O
// thread's ring when a slot is free, so its writes need no page pinning each
// (IORING_OP_WRITE_FIXED).
struct AppendWriter::Buffer {
  Buffer(size_t capacity_bytes, bool direct_io,
         std::shared_ptr<FixedBufferTable> table)
      : capacity(capacity_bytes), huge(direct_io), fixed(std::move(table)) {
    data = huge ? HugePageBuffers::Global().Allocate(capacity)
                : static_cast<char*>(
                      std::aligned_alloc(kDirectIoAlignment, capacity));
    RUNNEL_CHECK(data != nullptr);
    if (fixed != nullptr) slot = fixed->Register(data, capacity);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() {
    if (slot >= 0) fixed->Release(slot);
    if (huge) {
      HugePageBuffers::Global().Free(data, capacity);
    } else {
      std::free(data);
    }
  }

  // True when no ReadCachedInto is copying out of this buffer. Acquire:
  // pairs with the release decrement after a reader's copy, so the copy
  // happens before the writer overwrites the bytes.
  bool Unpinned() const { return pins.load(std::memory_order_acquire) == 0; }

  char* data = nullptr;
  const size_t capacity;
  const bool huge;  // memory from HugePageBuffers, else aligned_alloc
  // Shared so that a buffer a reader still holds can be released after the
  // writer (and its ring) are gone.
  const std::shared_ptr<FixedBufferTable> fixed;
  int slot = -1;
  FilePos start = 0;
  size_t len = 0;
  // Readers copying out of the buffer right now (incremented under mu_).
  std::atomic<int> pins{0};
};

absl::StatusOr<std::unique_ptr<AppendWriter>> AppendWriter::Open(
    IoThread* io, std::string path, FilePos start_pos,
    AppendWriterOptions options) {
  RUNNEL_CHECK(io != nullptr);
  if (start_pos < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": negative start position ", start_pos));
  }
  int flags =
      O_WRONLY | O_CREAT | O_CLOEXEC | (options.direct_io ? O_DIRECT : 0);
  UniqueFd fd(::open(path.c_str(), flags, 0644));
  if (!fd.valid()) {
    if (errno == EINVAL && options.direct_io) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": the filesystem refuses O_DIRECT"));
    }
    return absl::ErrnoToStatus(errno, absl::StrCat("open ", path));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("fstat ", path));
  }
  if (st.st_size < start_pos) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": file has ", st.st_size,
                     " bytes, fewer than start position ", start_pos));
  }
  if (st.st_size > start_pos && ::ftruncate(fd.get(), start_pos) != 0) {
    // Bytes past start_pos are a torn tail or O_DIRECT padding: drop them so
    // that nothing stale ever follows what this writer appends.
    return absl::ErrnoToStatus(
        errno, absl::StrCat("ftruncate ", path, " to ", start_pos));
  }
  std::unique_ptr<AppendWriter> writer(
      new AppendWriter(io, std::move(path), std::move(fd), start_pos, options));
  RUNNEL_RETURN_IF_ERROR(writer->InitBuffers(start_pos));
  return writer;
}

AppendWriter::AppendWriter(IoThread* io, std::string path, UniqueFd fd,
                           FilePos start_pos, AppendWriterOptions options)
    : io_(io),
      path_(std::move(path)),
      fd_(std::move(fd)),
      options_(options),
      size_(start_pos),
      written_pos_(start_pos),
      durable_pos_(start_pos),
      fsync_requested_pos_(start_pos),
      flush_target_(start_pos) {}

absl::Status AppendWriter::InitBuffers(FilePos start_pos) {
  size_t capacity =
      RoundUp(std::max(options_.buffer_bytes, kDirectIoAlignment));
  absl::MutexLock lock(&mu_);
  active_ = NewBuffer(capacity);
  spare_ = NewBuffer(capacity);
  if (!options_.direct_io) {
    active_->start = start_pos;
    return absl::OkStatus();
  }
  // The first O_DIRECT write rewrites the partial block before start_pos:
  // read its head back through a normal fd.
  active_->start = static_cast<FilePos>(RoundDown(start_pos));
  active_->len = static_cast<size_t>(start_pos - active_->start);
  if (active_->len == 0) return absl::OkStatus();
  UniqueFd reader(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (!reader.valid())
    return absl::ErrnoToStatus(errno, absl::StrCat("open ", path_));
  size_t got = 0;
  while (got < active_->len) {
    ssize_t n = ::pread(reader.get(), active_->data + got, active_->len - got,
                        active_->start + got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::ErrnoToStatus(errno, absl::StrCat("pread ", path_));
    if (n == 0) {
      return absl::DataLossError(
          absl::StrCat(path_, ": ends before position ", start_pos));
    }
    got += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

AppendWriter::~AppendWriter() {
  // In-flight writes point into our buffers and callbacks point at us.
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(this, &AppendWriter::IoIdleLocked));
}

bool AppendWriter::IoIdleLocked() const {
  return !write_in_flight_ && fsyncs_in_flight_ == 0;
}

bool AppendWriter::CanAppendLocked() const {
  return active_->len < active_->capacity || !write_in_flight_;
}

std::shared_ptr<AppendWriter::Buffer> AppendWriter::NewBuffer(
    size_t capacity) const {
  return std::make_shared<Buffer>(
      capacity, options_.direct_io,
      options_.direct_io ? io_->fixed_buffers() : nullptr);
}

std::shared_ptr<AppendWriter::Buffer> AppendWriter::TakeFreeBufferLocked() {
  if (spare_ != nullptr) return std::move(spare_);
  // Recycle the oldest cached buffer only while the cache is over budget;
  // otherwise (cache within budget, or its oldest buffer pinned by a reader)
  // allocate. The allocation is rare: it happens only when a reader copies
  // out of a buffer while it is evicted.
  if (recent_.size() > (coalescing_ ? 1u : 0u) &&
      recent_bytes_ > options_.tail_cache_bytes &&
      recent_.front()->Unpinned()) {
    std::shared_ptr<Buffer> buffer = std::move(recent_.front());
    recent_.pop_front();
    recent_bytes_ -= buffer->capacity;
    return buffer;
  }
  return NewBuffer(active_->capacity);
}

void AppendWriter::RetireInFlightLocked() {
  // The completed buffer joins the tail cache. A buffer at least half full
  // of new bytes is kept as it is (no copy). A smaller one (a Flush or Sync
  // sealed it early, e.g. one fsync per produce request) would waste its
  // capacity, so its new bytes are appended to the open coalescing chunk at the
  // end of the cache instead and the buffer is reused. Readers may be copying
  // out of that chunk meanwhile: that is safe for the same reason as for the
  // active buffer (bytes below the len a reader saw under mu_ never change).
  std::shared_ptr<Buffer> done = std::move(in_flight_);
  if (options_.tail_cache_bytes == 0) {  // no cache: reuse at once
    if (spare_ == nullptr && done->Unpinned()) spare_ = std::move(done);
    return;
  }
  const FilePos done_end = done->start + static_cast<FilePos>(done->len);
  // New bytes only: an O_DIRECT buffer starts with a copy of the previous
  // partial block, which the cache already holds.
  FilePos from = done->start;
  if (!recent_.empty()) {
    const Buffer& last = *recent_.back();
    from = std::max(from, last.start + static_cast<FilePos>(last.len));
  }
  if (static_cast<size_t>(done_end - from) * 2 >= done->capacity) {
    recent_bytes_ += done->capacity;
    recent_.push_back(std::move(done));
    coalescing_ = false;
  } else {
    while (from < done_end) {
      if (!coalescing_ || recent_.back()->len == recent_.back()->capacity) {
        std::shared_ptr<Buffer> chunk = TakeFreeBufferLocked();
        chunk->start = from;
        chunk->len = 0;
        recent_bytes_ += chunk->capacity;
        recent_.push_back(std::move(chunk));
        coalescing_ = true;
      }
      Buffer& chunk = *recent_.back();
      size_t n = std::min(chunk.capacity - chunk.len,
                          static_cast<size_t>(done_end - from));
      std::memcpy(chunk.data + chunk.len, done->data + (from - done->start), n);
      chunk.len += n;
      from += static_cast<FilePos>(n);
    }
    if (spare_ == nullptr && done->Unpinned()) spare_ = std::move(done);
  }
  // Evict the oldest buffers beyond the budget. An evicted buffer that no
  // reader pins becomes the spare (the next SealActiveLocked needs one); the
  // others are freed (by the last reader that pins them).
  while (!recent_.empty() && recent_bytes_ > options_.tail_cache_bytes) {
    std::shared_ptr<Buffer> evicted = std::move(recent_.front());
    recent_.pop_front();
    recent_bytes_ -= evicted->capacity;
    if (recent_.empty()) coalescing_ = false;
    if (spare_ == nullptr && evicted->Unpinned()) spare_ = std::move(evicted);
  }
}

bool AppendWriter::ReadCached(FilePos pos, size_t size,
                              std::string* out) const {
  std::string bytes(size, '\0');
  if (!ReadCachedInto(pos, size, bytes.data())) return false;
  *out = std::move(bytes);
  return true;
}

bool AppendWriter::ReadCachedInto(FilePos pos, size_t size, char* dst) const {
  struct Piece {
    std::shared_ptr<Buffer>
        buffer;   // keeps the memory if it is evicted meanwhile
    size_t from;  // index into buffer->data
    size_t len;
  };
  // At most: every cached buffer, the in-flight one and the active one.
  absl::InlinedVector<Piece, 8> pieces;
  const FilePos end = pos + static_cast<FilePos>(size);
  {
    absl::MutexLock lock(&mu_);
    if (!status_.ok() || pos < 0 ||
        end > size_.load(std::memory_order_relaxed)) {
      return false;
    }
    FilePos cur = pos;
    auto take = [&](const std::shared_ptr<Buffer>& b) {
      if (b == nullptr || cur >= end) return;
      // The bytes below b->len (read under mu_) never change while pinned:
      // appends only add after len, sealing only zero-pads after len, and a
      // buffer is reused only when no reader pins it.
      FilePos b_end = b->start + static_cast<FilePos>(b->len);
      if (b->start > cur || b_end <= cur) return;
      FilePos piece_end = std::min(end, b_end);
      b->pins.fetch_add(1, std::memory_order_relaxed);  // ordered by mu_
      pieces.push_back(Piece{b, static_cast<size_t>(cur - b->start),
                             static_cast<size_t>(piece_end - cur)});
      cur = piece_end;
    };
    // Oldest first; consecutive buffers overlap (O_DIRECT: a buffer starts
    // with a copy of the previous one's partial last block) or touch.
    for (const auto& b : recent_) take(b);
    take(in_flight_);
    take(active_);
    if (cur < end) {
      for (const Piece& p : pieces)
        p.buffer->pins.fetch_sub(1, std::memory_order_release);
      return false;
    }
  }
  for (const Piece& p : pieces) {
    std::memcpy(dst, p.buffer->data + p.from, p.len);
    dst += p.len;
    // Release: our copy happens before a writer that sees 0 reuses it.
    p.buffer->pins.fetch_sub(1, std::memory_order_release);
  }
  return true;
}

FilePos AppendWriter::cached_start() const {
  absl::MutexLock lock(&mu_);
  if (!recent_.empty()) return recent_.front()->start;
  if (in_flight_ != nullptr) return in_flight_->start;
  return active_->start;
}

absl::Status AppendWriter::status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

FilePos AppendWriter::Append(std::string_view data) {
  return Append(std::span<const std::string_view>(&data, 1));
}

FilePos AppendWriter::Append(std::span<const std::string_view> parts) {
  RUNNEL_DCHECK(!io_->OnIoThread());
  mu_.Lock();
  RUNNEL_CHECK(!closed_);
  FilePos pos = size_.load(std::memory_order_relaxed);
  for (std::string_view data : parts) {
    AppendLocked(data);
  }
  mu_.Unlock();
  return pos;
}

void AppendWriter::AppendLocked(std::string_view data) {
  while (!data.empty()) {
    Buffer* b = active_.get();
    if (b->len == b->capacity) {
      if (!status_.ok()) {
        // Failed writer: keep positions moving, drop the bytes. A reader may
        // still copy out of this buffer: refill a free one instead.
        FilePos next_start = b->start + static_cast<FilePos>(b->len);
        if (!active_->Unpinned()) active_ = TakeFreeBufferLocked();
        active_->start = next_start;
        active_->len = 0;
      } else if (!write_in_flight_) {
        Actions actions;
        actions.write = SealActiveLocked();
        mu_.Unlock();
        Issue(std::move(actions));
        mu_.Lock();
      } else {
        // The disk is slower than the appender: the write completion submits
        // the full buffer and hands us the free one. Waiting on the I/O
        // thread itself would never end.
        RUNNEL_CHECK(!io_->OnIoThread());
        mu_.Await(absl::Condition(this, &AppendWriter::CanAppendLocked));
      }
      continue;
    }
    size_t n = std::min(b->capacity - b->len, data.size());
    // The disk reads these bytes; the CPU reads them again only for a
    // reader at the tail: stream big copies past the cache.
    StreamingCopy(b->data + b->len, data.data(), n);
    b->len += n;
    data.remove_prefix(n);
    // Release: a reader that sees the new size sees a consistent writer (the
    // bytes themselves are only readable from the file once written_pos says
    // so).
    size_.store(size_.load(std::memory_order_relaxed) + static_cast<FilePos>(n),
                std::memory_order_release);
  }
}

AppendWriter::PendingWrite AppendWriter::SealActiveLocked() {
  RUNNEL_CHECK(!write_in_flight_ && status_.ok());
  std::shared_ptr<Buffer> next = TakeFreeBufferLocked();
  Buffer* b = active_.get();
  PendingWrite write{b->data, b->slot, b->len, b->start,
                     b->start + static_cast<FilePos>(b->len)};
  if (options_.direct_io) {
    // The partial last block goes out zero-padded now and is rewritten by
    // the next write, which starts with a copy of its head.
    size_t keep = RoundDown(b->len);
    write.size = RoundUp(b->len);
    next->start = b->start + static_cast<FilePos>(keep);
    next->len = b->len - keep;
    std::memcpy(next->data, b->data + keep, next->len);
    std::memset(b->data + b->len, 0, write.size - b->len);
  } else {
    next->start = write.end;
    next->len = 0;
  }
  in_flight_ = std::move(active_);
  active_ = std::move(next);
  write_in_flight_ = true;
  return write;
}

void AppendWriter::MaybeWriteLocked(Actions* actions) {
  if (!status_.ok() || write_in_flight_) return;
  FilePos written = written_pos_.load(std::memory_order_relaxed);
  if (size_.load(std::memory_order_relaxed) <= written) return;
  if (active_->len == active_->capacity || flush_target_ > written) {
    actions->write = SealActiveLocked();
  }
}

void AppendWriter::MaybeFsyncLocked(Actions* actions) {
  if (!status_.ok()) return;
  FilePos written = written_pos_.load(std::memory_order_relaxed);
  bool needed = false;
  for (const Waiter& w : sync_waiters_) {
    if (w.target > fsync_requested_pos_ && w.target <= written) {
      needed = true;
      break;
    }
  }
  if (!needed) return;
  fsync_requested_pos_ = written;
  ++fsyncs_in_flight_;
  actions->fsync = written;
}

void AppendWriter::FailLocked(absl::Status status, Actions* actions) {
  if (status_.ok())
    status_ = absl::Status(status.code(),
                           absl::StrCat(path_, ": ", status.message()));
  actions->failure = status_;
  for (auto& w : flush_waiters_) actions->failed.push_back(std::move(w));
  for (auto& w : sync_waiters_) actions->failed.push_back(std::move(w));
  flush_waiters_.clear();
  sync_waiters_.clear();
}

void AppendWriter::Issue(Actions actions) {
  // Only touch `this` while it has I/O in flight (the destructor waits for
  // it): with no write or fsync to issue, the writer may already be gone.
  const bool issues_io = actions.write.has_value() || actions.fsync.has_value();
  IoThread* const io = issues_io ? io_ : nullptr;
  const bool from_completion = issues_io && io->OnIoThread();
  if (actions.write.has_value()) {
    const PendingWrite& w = *actions.write;
    FilePos end = w.end;
    io->Write(
        fd_.get(), w.data, w.size, w.pos,
        [this, end](absl::Status status) {
          OnWriteDone(end, std::move(status));
        },
        w.fixed_slot);
  }
  if (actions.fsync.has_value()) {
    FilePos covered = *actions.fsync;
    io->Fsync(fd_.get(), [this, covered](absl::Status status) {
      OnFsyncDone(covered, std::move(status));
    });
  }
  // From a completion: the write or fsync goes to the kernel before the
  // callbacks below answer produce requests, and before the callbacks of the
  // other completions reaped with this one (at 1 KiB acks=all the disk
  // otherwise waited 60 µs (median) per write for them).
  if (from_completion) io->SubmitPrepared();
  for (Waiter& w : actions.ok) w.done(absl::OkStatus());
  for (Waiter& w : actions.failed) w.done(actions.failure);
}

void AppendWriter::OnWriteDone(FilePos end, absl::Status status) {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    write_in_flight_ = false;
    RetireInFlightLocked();
    if (!status.ok()) {
      FailLocked(std::move(status), &actions);
    } else {
      // Release: whoever sees written_pos may pread every byte below it.
      written_pos_.store(end, std::memory_order_release);
      while (!flush_waiters_.empty() && flush_waiters_.front().target <= end) {
        actions.ok.push_back(std::move(flush_waiters_.front()));
        flush_waiters_.pop_front();
      }
      MaybeFsyncLocked(&actions);
      MaybeWriteLocked(&actions);
    }
  }
  Issue(std::move(actions));
}

void AppendWriter::OnFsyncDone(FilePos covered, absl::Status status) {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    --fsyncs_in_flight_;
    if (!status.ok()) {
      // A failed fdatasync may have dropped dirty pages: nothing written so
      // far can be trusted to be durable, so the error is sticky.
      FailLocked(std::move(status), &actions);
    } else {
      FilePos durable =
          std::max(durable_pos_.load(std::memory_order_relaxed), covered);
      durable_pos_.store(durable, std::memory_order_release);
      while (!sync_waiters_.empty() &&
             sync_waiters_.front().target <= durable) {
        actions.ok.push_back(std::move(sync_waiters_.front()));
        sync_waiters_.pop_front();
      }
    }
  }
  Issue(std::move(actions));
}

void AppendWriter::PostCallback(DoneCallback done, absl::Status status) {
  io_->Post(
      [done = std::move(done), status = std::move(status)]() { done(status); });
}

void AppendWriter::Flush(DoneCallback written) {
  Actions actions;
  std::optional<absl::Status> immediate;
  {
    absl::MutexLock lock(&mu_);
    RUNNEL_CHECK(!closed_);
    FilePos target = size_.load(std::memory_order_relaxed);
    if (!status_.ok() ||
        target <= written_pos_.load(std::memory_order_relaxed)) {
      immediate = status_;
    } else {
      flush_waiters_.push_back(Waiter{target, std::move(written)});
      flush_target_ = std::max(flush_target_, target);
      MaybeWriteLocked(&actions);
    }
  }
  // Outside the lock: a stopped IoThread runs posted callbacks inline.
  if (immediate.has_value())
    PostCallback(std::move(written), *std::move(immediate));
  Issue(std::move(actions));
}

void AppendWriter::Sync(DoneCallback durable) {
  Actions actions;
  std::optional<absl::Status> immediate;
  {
    absl::MutexLock lock(&mu_);
    RUNNEL_CHECK(!closed_);
    FilePos target = size_.load(std::memory_order_relaxed);
    if (!status_.ok() ||
        target <= durable_pos_.load(std::memory_order_relaxed)) {
      immediate = status_;
    } else {
      sync_waiters_.push_back(Waiter{target, std::move(durable)});
      flush_target_ = std::max(flush_target_, target);
      MaybeFsyncLocked(&actions);
      MaybeWriteLocked(&actions);
    }
  }
  if (immediate.has_value())
    PostCallback(std::move(durable), *std::move(immediate));
  Issue(std::move(actions));
}

absl::Status AppendWriter::Close() {
  RUNNEL_CHECK(!io_->OnIoThread());
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return close_status_;
  }
  absl::Notification flushed;
  Flush([&flushed](absl::Status) { flushed.Notify(); });
  flushed.WaitForNotification();
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(this, &AppendWriter::IoIdleLocked));
  absl::Status result = status_;
  FilePos size = size_.load(std::memory_order_relaxed);
  if (result.ok() && options_.direct_io && ::ftruncate(fd_.get(), size) != 0) {
    // Drop the zero padding of the last block; the fsync below makes the new
    // size durable (fdatasync covers size changes).
    result = absl::ErrnoToStatus(
        errno, absl::StrCat("ftruncate ", path_, " to ", size));
  }
  if (result.ok()) {
    result = io_->FsyncSync(fd_.get());
    if (result.ok()) durable_pos_.store(size, std::memory_order_release);
  }
  int fd = fd_.release();
  if (::close(fd) != 0 && result.ok()) {
    result = absl::ErrnoToStatus(errno, absl::StrCat("close ", path_));
  }
  closed_ = true;
  close_status_ = result;
  return result;
}

}  // namespace runnel::log
