#pragma once

// One I/O thread that owns one io_uring and runs every write, read and
// fdatasync of the files assigned to it, with group commit for fsyncs.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

#include "common/unique_fd.h"
#include "log/fixed_buffers.h"
#include "log/io_ring.h"
#include "log/types.h"

namespace runnel::log {

struct IoThreadOptions {
  unsigned ring_entries = 256;
  bool sqpoll = false;
  std::string name =
      "runnel-io";  // thread name (pthread_setname_np, <= 15 chars)
  // Nice value of the I/O thread (setpriority on its thread id); the
  // io_uring workers that run its blocking writes and fsyncs inherit it when
  // they start. 0 leaves the process's. A negative value needs CAP_SYS_NICE;
  // without it the thread keeps the process's nice and logs a warning. On a
  // busy host the I/O thread's wake-ups (a completion, then the next write
  // or fsync) then do not queue behind request threads.
  int nice = 0;
  // Slots of the ring's registered-buffer table (fixed_buffers()); 0: none.
  unsigned fixed_buffer_slots = 256;

  // TEST ONLY: runs on the I/O thread when an fsync completion is reaped,
  // before the waiters of that fsync run and before the follow-up fsync for
  // the same fd (if any) is decided. A test calls Fsync() from here to place
  // requests deterministically "while an fsync is in flight".
  std::function<void(int fd)> on_fsync_reaped_for_test;
};

// Fsync latency histogram: bucket i counts fsyncs whose latency was below
// kFsyncLatencyBucketUpperUs[i] (and not below the previous bound); the last
// bucket is everything slower (+Inf).
inline constexpr std::array<int64_t, 16> kFsyncLatencyBucketUpperUs = {
    50,    100,   250,    500,    1000,   2500,    5000,    10000,
    25000, 50000, 100000, 250000, 500000, 1000000, 2500000, INT64_MAX};

// A consistent-enough snapshot of the counters (each field is read atomically;
// fields may be from slightly different moments).
struct IoThreadStats {
  uint64_t write_requests = 0;  // Write() calls accepted
  uint64_t write_sqes =
      0;  // IORING_OP_WRITE(_FIXED) submitted (includes continuations)
  uint64_t fixed_write_sqes = 0;  // of those, IORING_OP_WRITE_FIXED
  uint64_t bytes_written = 0;
  uint64_t read_requests = 0;
  uint64_t bytes_read = 0;
  uint64_t fsync_requests = 0;  // Fsync() calls accepted
  uint64_t fsyncs_issued = 0;   // IORING_OP_FSYNC submitted to the kernel
  uint64_t submits = 0;         // io_uring_submit calls that submitted >= 1 SQE
  uint64_t fsync_submits = 0;   // of those, the ones carrying >= 1 fsync
  uint64_t fsync_latency_sum_us = 0;
  std::array<uint64_t, kFsyncLatencyBucketUpperUs.size()>
      fsync_latency_buckets{};
};

// Owns one IoRing and the one thread that submits to it and reaps it.
//
// Thread-safe: Write, Read, Fsync, Post and Stop may be called from any
// thread, including from completion callbacks (which run on the I/O thread;
// requests made there are handled without a wake-up). Requests from other
// threads go into a mutex-guarded queue and the thread is woken through an
// eventfd on which it always has an IORING_OP_READ pending, so it sleeps in
// the kernel (io_uring_submit_and_wait) and never busy-polls.
//
// Completion callbacks run ON the I/O thread, must not block and must not call
// the *Sync conveniences. Every callback runs exactly once, also for requests
// that arrive after Stop() (they get kFailedPrecondition, run on the calling
// thread).
//
// The in-flight table owns each request object until its completion is
// reaped; Stop() and the destructor wait until that table is empty.
class IoThread {
 public:
  using DoneCallback = std::function<void(absl::Status)>;
  using ReadCallback = std::function<void(absl::StatusOr<size_t>)>;

  static absl::StatusOr<std::unique_ptr<IoThread>> Start(
      IoThreadOptions options);

  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;
  IoThread(IoThread&&) = delete;
  IoThread& operator=(IoThread&&) = delete;
  ~IoThread();  // Stop() if not yet stopped (its status is logged, not
                // returned)

  // Writes `size` bytes at `pos` of `fd` (IORING_OP_WRITE). `data` must stay
  // valid and unchanged until `done` runs. Short writes are continued
  // internally; `done` gets OK once all bytes are written, else the errno as
  // a Status (ENOSPC -> kResourceExhausted, ...) with fd and position in the
  // message. EINTR/EAGAIN are retried.
  // With `fixed_slot` >= 0 (a slot of fixed_buffers() whose buffer holds
  // [data, data + size)) it is IORING_OP_WRITE_FIXED.
  void Write(int fd, const char* data, size_t size, FilePos pos,
             DoneCallback done, int fixed_slot = -1);

  // The ring's registered-buffer table, shared with the buffers registered
  // in it; null when the kernel refused one or fixed_buffer_slots is 0.
  const std::shared_ptr<FixedBufferTable>& fixed_buffers() const {
    return fixed_buffers_;
  }

  // Reads up to `size` bytes at `pos` into `buf` (IORING_OP_READ), continuing
  // short reads until `size` bytes or end of file. `done` gets the number of
  // bytes read (less than `size` only at end of file) or an error.
  // `buf` must stay valid until `done` runs.
  void Read(int fd, char* buf, size_t size, FilePos pos, ReadCallback done);

  // fdatasync(fd) through IORING_OP_FSYNC with IORING_FSYNC_DATASYNC. `done`
  // runs when every write to `fd` that completed before this call is durable.
  //
  // GROUP COMMIT: requests for an fd whose fsync is prepared but not yet
  // submitted share that fsync. Requests for an fd whose fsync is already in
  // the kernel do not issue a second one at once; they all join ONE follow-up
  // fsync issued when the in-flight one completes (it covers every write
  // completed before it is submitted). Fsyncs of different fds pending at the
  // same moment go to the kernel in one io_uring_submit.
  void Fsync(int fd, DoneCallback done);

  // Hands the requests made so far on the I/O thread to the kernel now,
  // rather than once this round's completion callbacks have all run. For a
  // completion callback that issues the next write or fsync and then goes on
  // with slower work (AppendWriter answers produce requests): the disk need
  // not wait for that work. One io_uring_enter; requests made later in the
  // round go in a submit of their own (and an fsync of the same fd, now in
  // flight, no longer shares the submitted one but joins its follow-up). A
  // no-op when nothing is prepared. Only on the I/O thread.
  void SubmitPrepared();

  // Runs `fn` on the I/O thread soon (after the current batch of completions).
  // After Stop() it runs on the calling thread instead.
  void Post(std::function<void()> fn);

  // Finishes everything queued and in flight (including requests that
  // completion callbacks make meanwhile), then joins the thread. Idempotent.
  // Returns OK today (a ring failure other than EAGAIN/EBUSY is a bug and
  // aborts); the Status leaves room for reporting. Must not be called on the
  // I/O thread.
  absl::Status Stop();

  // Synchronous conveniences for recovery and tests: block the caller until
  // the request completes. Must not be called on the I/O thread.
  absl::Status WriteSync(int fd, const char* data, size_t size, FilePos pos);
  absl::StatusOr<size_t> ReadSync(int fd, char* buf, size_t size, FilePos pos);
  absl::Status FsyncSync(int fd);

  // True when called on this object's I/O thread.
  bool OnIoThread() const;

  IoThreadStats Stats() const;

  // The last (up to) kRecentFsyncLatencies fsync latencies in microseconds,
  // oldest first. Thread-safe.
  static constexpr size_t kRecentFsyncLatencies = 128;
  std::vector<int64_t> RecentFsyncLatenciesUs() const;

 private:
  struct Request;
  struct FsyncState;

  explicit IoThread(IoThreadOptions options);

  void Enqueue(std::unique_ptr<Request> request);
  void Run();
  void DrainQueue();
  void Handle(std::unique_ptr<Request> request);
  void HandleFsync(std::unique_ptr<Request> request);
  void PrepareReady();
  void SubmitAndWait();
  // After an io_uring_submit: the prepared requests are in the kernel.
  void MarkPreparedSubmitted();
  // Counts one io_uring_submit that handed SQEs to the kernel.
  void CountSubmit();
  void ReapAll();
  void Complete(std::unique_ptr<Request> request, int res);
  void CompleteFsync(std::unique_ptr<Request> request, int res);
  void ArmWake();
  void RecordFsyncLatency(int64_t latency_us);
  bool Idle() const;

  const IoThreadOptions options_;
  IoRing ring_;
  std::shared_ptr<FixedBufferTable> fixed_buffers_;
  UniqueFd wake_fd_;
  std::thread thread_;
  std::atomic<std::thread::id> thread_id_{};
  absl::Notification started_;  // the eventfd read is in the kernel

  // --- shared with other threads ---
  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<Request>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool exited_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status ring_status_ ABSL_GUARDED_BY(mu_);
  absl::Mutex stop_mu_;  // serializes Stop() callers
  // Set by a producer that wrote the eventfd; cleared by the thread before it
  // drains the queue, so at most one eventfd write per drain.
  std::atomic<bool> wake_pending_{false};

  // --- confined to the I/O thread ---
  uint64_t wake_value_ = 0;  // buffer of the pending eventfd read
  bool wake_armed_ = false;
  bool stop_seen_ = false;
  uint64_t next_id_ = 1;
  // The in-flight table: owns every request prepared for the kernel.
  absl::flat_hash_map<uint64_t, std::unique_ptr<Request>> in_flight_;
  std::deque<std::unique_ptr<Request>> ready_;  // handled, waiting for an SQE
  std::vector<Request*> prepared_unsubmitted_;
  absl::flat_hash_map<int, std::unique_ptr<FsyncState>> fsync_state_;
  std::vector<std::function<void()>> posted_;

  // --- statistics (relaxed atomics) ---
  std::atomic<uint64_t> write_requests_{0};
  std::atomic<uint64_t> write_sqes_{0};
  std::atomic<uint64_t> fixed_write_sqes_{0};
  std::atomic<uint64_t> bytes_written_{0};
  std::atomic<uint64_t> read_requests_{0};
  std::atomic<uint64_t> bytes_read_{0};
  std::atomic<uint64_t> fsync_requests_{0};
  std::atomic<uint64_t> fsyncs_issued_{0};
  std::atomic<uint64_t> submits_{0};
  std::atomic<uint64_t> fsync_submits_{0};
  // An fsync was prepared since the last submit (I/O thread only).
  bool prepared_has_fsync_ = false;
  std::atomic<uint64_t> fsync_latency_sum_us_{0};
  std::array<std::atomic<uint64_t>, kFsyncLatencyBucketUpperUs.size()>
      fsync_latency_buckets_{};
  mutable absl::Mutex recent_mu_;
  std::array<int64_t, kRecentFsyncLatencies> recent_
      ABSL_GUARDED_BY(recent_mu_){};
  size_t recent_count_ ABSL_GUARDED_BY(recent_mu_) = 0;
};

}  // namespace runnel::log
