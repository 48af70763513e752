#pragma once

// Appends bytes at the end of one file through an IoThread, with write
// batching, optional O_DIRECT and fsync sharing (group commit).

#include <atomic>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

#include "common/unique_fd.h"
#include "log/io_thread.h"
#include "log/types.h"

namespace runnel::log {

// O_DIRECT alignment of memory, file position and length.
inline constexpr size_t kDirectIoAlignment = 4096;

struct AppendWriterOptions {
  // O_DIRECT writes (aligned buffers, zero padding past the logical end that
  // the next write rewrites) instead of page-cache writes. The default is the
  // mode measured faster on the reference machine (docs/benchmarks.md).
  bool direct_io = true;
  // Size of each of the two append buffers (rounded up to kDirectIoAlignment).
  // One buffer is in flight while appends fill the other.
  size_t buffer_bytes = 1 << 20;
  // Tail cache: how many bytes of completed writes stay in memory for
  // ReadCached after their write completed, counted in whole buffers of
  // buffer_bytes (a full buffer is kept as it is; small writes, e.g. one per
  // Sync, are coalesced into cache chunks of that size). On top of that the
  // bytes in the two append buffers (not yet written or being written) are
  // always readable from memory; with 0 only those are. Memory per writer is
  // about 2 * buffer_bytes + tail_cache_bytes rounded up to buffers (+ one
  // more buffer while a reader copies out of an evicted one).
  // See docs/benchmarks.md ("Storage: reads") for the choice of default.
  size_t tail_cache_bytes = size_t{4} << 20;
};

// Appends bytes at the end of ONE file through an IoThread.
//
// Threading: thread-compatible for the appending side: one appender (the
// partition, under its own lock) calls Append, Flush, Sync and Close.
// The position getters and status() are thread-safe. Completion callbacks
// (`written`, `durable`) run on the I/O thread, never inline in the calling
// thread (except once the IoThread is stopped: then they fail at once on the
// calling thread), and must not block. After Close() only the getters and
// destruction are allowed (Append/Flush/Sync RUNNEL_CHECK-fail).
//
// At most one write per file is in flight at a time; appends made meanwhile
// accumulate in the other buffer and go in the next write (write batching).
// In O_DIRECT mode each write covers [round_down(written_pos, 4096),
// round_up(size, 4096)) with zero padding after the logical end, so after a
// crash (or before Close) the file may end with zero bytes past the last
// appended byte; the layer above treats them as a torn tail. Readers use a
// separate, normal fd with pread: Linux keeps it coherent with O_DIRECT writes.
//
// Errors: the first write or fsync error is sticky: status() returns it, every
// pending and later Flush/Sync callback gets it, Close() returns it. Appends
// after an error are accepted (positions still advance) but never written.
//
// `io` must outlive this writer. The destructor waits for the writer's
// in-flight I/O (so buffers stay valid) but does not flush, sync or trim:
// call Close() for that.
class AppendWriter {
 public:
  using DoneCallback = std::function<void(absl::Status)>;

  // Opens (creating if missing, mode 0644) `path` for appending after
  // `start_pos`, the valid length of the existing file; bytes past it (a torn
  // tail or O_DIRECT padding) are truncated away. In O_DIRECT mode the partial
  // block before `start_pos` is read back so the first write can rewrite it.
  // The bytes below start_pos count as written and durable (they come from
  // recovery). Errors: kInvalidArgument if the file is shorter than
  // start_pos or the filesystem refuses O_DIRECT; errno-derived codes
  // otherwise.
  static absl::StatusOr<std::unique_ptr<AppendWriter>> Open(
      IoThread* io, std::string path, FilePos start_pos,
      AppendWriterOptions options);

  AppendWriter(const AppendWriter&) = delete;
  AppendWriter& operator=(const AppendWriter&) = delete;
  AppendWriter(AppendWriter&&) = delete;
  AppendWriter& operator=(AppendWriter&&) = delete;
  ~AppendWriter();

  // Copies `data` into the append buffer and returns the file position of its
  // first byte. When the buffer fills up it is submitted; Append blocks only to
  // wait for buffer space when the disk is slower than the appender. Must not
  // be called on the I/O thread (it may wait for it).
  FilePos Append(std::string_view data);
  // The same for bytes in pieces: `parts` are appended in order, as one
  // contiguous run from the returned position.
  FilePos Append(std::span<const std::string_view> parts);

  // Submits everything appended so far; `written` runs (on the I/O thread)
  // when those bytes are readable with pread through a normal fd, or with the
  // writer's sticky error.
  void Flush(DoneCallback written);

  // Flush + fdatasync: `durable` runs (on the I/O thread) when every byte
  // appended before the call is durable. Concurrent Syncs (of this writer and
  // of other writers on the same IoThread) share fsyncs.
  void Sync(DoneCallback durable);

  // Logical end: every byte appended so far lies below it.
  FilePos size() const { return size_.load(std::memory_order_acquire); }
  // Every byte below it has been written (readable through a normal fd).
  FilePos written_pos() const {
    return written_pos_.load(std::memory_order_acquire);
  }
  // Every byte below it is durable.
  FilePos durable_pos() const {
    return durable_pos_.load(std::memory_order_acquire);
  }

  // OK, or the first write/fsync error.
  absl::Status status() const;

  // Copies the `size` bytes at `pos` from memory into `out` (resized to
  // `size`) and returns true if the whole range lies in the tail cache: the
  // recently completed writes (see tail_cache_bytes), the buffer being
  // written and the buffer being appended to. So every appended byte below
  // size() that is not yet written is always served; older bytes only while
  // they are cached. Returns false (out unchanged) when any part of the range
  // is not cached, when the range reaches past size(), or after a write
  // error. The bytes are exactly the file's bytes once written (the O_DIRECT
  // rewrite of a partial last block only extends it with the same prefix).
  // Thread-safe, also against Append, Flush, Sync and completions; the copy
  // runs without the writer's mutex (the buffers it copies from are pinned
  // and their bytes below the length seen under the mutex never change). Does
  // not block on I/O. May be called after Close().
  bool ReadCached(FilePos pos, size_t size, std::string* out) const;
  // The same into `dst`, which must hold `size` bytes (untouched on false).
  bool ReadCachedInto(FilePos pos, size_t size, char* dst) const;
  // Lowest file position the tail cache holds (== size() if nothing); a
  // snapshot for tests and tools.
  FilePos cached_start() const;

  // Writes everything, drops O_DIRECT padding (ftruncate to size()), fsyncs
  // and closes the file. Blocks; must not be called on the I/O thread.
  // Idempotent: later calls return the first call's result.
  absl::Status Close();

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }
  bool direct_io() const { return options_.direct_io; }

 private:
  struct Buffer;
  struct Waiter {
    FilePos target;
    DoneCallback done;
  };
  // A write prepared under mu_ and handed to the IoThread after unlocking
  // (the IoThread may run the callback inline once it has stopped).
  struct PendingWrite {
    const char* data = nullptr;
    int fixed_slot = -1;  // the buffer's registered slot, or -1
    size_t size = 0;
    FilePos pos = 0;
    FilePos end = 0;  // logical end covered: written_pos_ once it completes
  };
  // What a state change asks for, issued after unlocking.
  struct Actions {
    std::optional<PendingWrite> write;
    std::optional<FilePos> fsync;  // position the fsync will cover
    std::deque<Waiter> ok;         // waiters to run with OK
    std::deque<Waiter> failed;     // waiters to run with `failure`
    absl::Status failure;
  };

  AppendWriter(IoThread* io, std::string path, UniqueFd fd, FilePos start_pos,
               AppendWriterOptions options);

  absl::Status InitBuffers(FilePos start_pos);
  PendingWrite SealActiveLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeWriteLocked(Actions* actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeFsyncLocked(Actions* actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FailLocked(absl::Status status, Actions* actions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Issue(Actions actions);
  void OnWriteDone(FilePos end, absl::Status status);
  void OnFsyncDone(FilePos covered, absl::Status status);
  void PostCallback(DoneCallback done, absl::Status status);
  bool IoIdleLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool CanAppendLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Copies `data` in with mu_ held; releases and retakes mu_ to issue a full
  // buffer or to wait for a free one.
  void AppendLocked(std::string_view data) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::shared_ptr<Buffer> NewBuffer(size_t capacity) const;
  std::shared_ptr<Buffer> TakeFreeBufferLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RetireInFlightLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  IoThread* const io_;  // not owned
  const std::string path_;
  UniqueFd fd_;
  const AppendWriterOptions options_;

  std::atomic<FilePos> size_;
  std::atomic<FilePos> written_pos_;
  std::atomic<FilePos> durable_pos_;

  mutable absl::Mutex mu_;
  // shared_ptr: ReadCached copies out of buffers without mu_; it pins them
  // (Buffer::pins, taken under mu_) and holds a reference so an evicted
  // buffer stays allocated. A buffer is reused (its bytes overwritten) only
  // when no reader pins it.
  std::shared_ptr<Buffer> active_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<Buffer> in_flight_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<Buffer> spare_ ABSL_GUARDED_BY(mu_);
  // Buffers whose write completed, oldest first (the tail cache).
  std::deque<std::shared_ptr<Buffer>> recent_ ABSL_GUARDED_BY(mu_);
  size_t recent_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // sum of their capacities
  // recent_.back() is a chunk that small completed writes are copied into.
  bool coalescing_ ABSL_GUARDED_BY(mu_) = false;
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  int fsyncs_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  FilePos fsync_requested_pos_ ABSL_GUARDED_BY(mu_);
  // Highest size() any Flush or Sync asked to be written.
  FilePos flush_target_ ABSL_GUARDED_BY(mu_);
  std::deque<Waiter> flush_waiters_ ABSL_GUARDED_BY(mu_);
  std::deque<Waiter> sync_waiters_ ABSL_GUARDED_BY(mu_);
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status close_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace runnel::log
