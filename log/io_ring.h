#pragma once

// A move-only RAII wrapper around one io_uring instance (liburing).

#include <liburing.h>

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace runnel::log {

// Owns one io_uring: the factory wraps io_uring_queue_init_params and the
// destructor calls io_uring_queue_exit. The accessors are thin: they hand out
// submission entries and completions exactly as liburing does.
//
// Thread-compatible. In Runnel one IoThread owns each ring and is the only
// thread that touches it; the owner must keep the ring alive until every
// request whose SQE it submitted has been reaped (STYLE.md section 5).
class IoRing {
 public:
  // Creates a ring with at least `entries` submission entries (rounded up to a
  // power of two by the kernel). With `sqpoll`, a kernel thread polls the
  // submission queue (IORING_SETUP_SQPOLL) so submits need no syscall.
  // Returns the errno-derived status of io_uring_queue_init_params (for
  // example kResourceExhausted on ENOMEM, kPermissionDenied on EPERM).
  static absl::StatusOr<IoRing> Create(unsigned entries, bool sqpoll);

  IoRing() = default;  // an empty ring: valid() is false
  IoRing(IoRing&& other) noexcept = default;
  IoRing& operator=(IoRing&& other) noexcept;  // exits the ring it held
  IoRing(const IoRing&) = delete;
  IoRing& operator=(const IoRing&) = delete;
  ~IoRing();

  bool valid() const { return ring_ != nullptr; }
  // The raw ring, for liburing calls not wrapped here. Requires valid().
  io_uring* get() { return ring_.get(); }

  // Submission entries the kernel gave the ring, and completion queue size.
  unsigned sq_entries() const;
  unsigned cq_entries() const;

  // A free submission entry, or nullptr when the submission queue is full
  // (submit, then ask again).
  io_uring_sqe* GetSqe();
  // Submits every prepared entry; returns how many the kernel took.
  absl::StatusOr<int> Submit();
  // Submits every prepared entry and waits until at least `wait_nr`
  // completions are available. EINTR is retried internally.
  absl::StatusOr<int> SubmitAndWait(unsigned wait_nr);
  // Waits for one completion (retrying EINTR); the cqe stays in the queue
  // until CqeSeen().
  absl::StatusOr<io_uring_cqe*> WaitCqe();
  // The next completion without waiting, or nullptr when there is none.
  io_uring_cqe* PeekCqe();
  // Marks `cqe` consumed.
  void CqeSeen(io_uring_cqe* cqe);

 private:
  struct Deleter {
    void operator()(io_uring* ring) const;
  };
  // Heap-allocated so that moving the wrapper never moves the struct whose
  // address liburing (and, with SQPOLL, the kernel thread) may rely on.
  std::unique_ptr<io_uring, Deleter> ring_;
};

}  // namespace runnel::log
