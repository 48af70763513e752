#include "log/io_ring.h"

#include <errno.h>
#include <string.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace runnel::log {

void IoRing::Deleter::operator()(io_uring* ring) const {
  io_uring_queue_exit(ring);
  delete ring;
}

absl::StatusOr<IoRing> IoRing::Create(unsigned entries, bool sqpoll) {
  io_uring_params params;
  memset(&params, 0, sizeof(params));
  if (sqpoll) {
    params.flags |= IORING_SETUP_SQPOLL;
    params.sq_thread_idle = 50;  // ms before the kernel poller sleeps
  }
  auto ring = std::make_unique<io_uring>();
  int rc = io_uring_queue_init_params(entries, ring.get(), &params);
  if (rc < 0) {
    return absl::ErrnoToStatus(
        -rc, absl::StrCat("io_uring_queue_init_params(entries=", entries,
                          ", sqpoll=", sqpoll, ")"));
  }
  IoRing result;
  result.ring_.reset(ring.release());
  return result;
}

IoRing& IoRing::operator=(IoRing&& other) noexcept {
  ring_ = std::move(other.ring_);
  return *this;
}

IoRing::~IoRing() = default;

unsigned IoRing::sq_entries() const { return ring_->sq.ring_entries; }
unsigned IoRing::cq_entries() const { return ring_->cq.ring_entries; }

io_uring_sqe* IoRing::GetSqe() { return io_uring_get_sqe(ring_.get()); }

absl::StatusOr<int> IoRing::Submit() {
  while (true) {
    int rc = io_uring_submit(ring_.get());
    if (rc >= 0) return rc;
    if (rc == -EINTR) continue;
    return absl::ErrnoToStatus(-rc, "io_uring_submit");
  }
}

absl::StatusOr<int> IoRing::SubmitAndWait(unsigned wait_nr) {
  while (true) {
    int rc = io_uring_submit_and_wait(ring_.get(), wait_nr);
    if (rc >= 0) return rc;
    if (rc == -EINTR) continue;
    // EBUSY: the completion queue overflowed; the caller reaps and retries.
    return absl::ErrnoToStatus(-rc, "io_uring_submit_and_wait");
  }
}

absl::StatusOr<io_uring_cqe*> IoRing::WaitCqe() {
  while (true) {
    io_uring_cqe* cqe = nullptr;
    int rc = io_uring_wait_cqe(ring_.get(), &cqe);
    if (rc == 0) return cqe;
    if (rc == -EINTR) continue;
    return absl::ErrnoToStatus(-rc, "io_uring_wait_cqe");
  }
}

io_uring_cqe* IoRing::PeekCqe() {
  io_uring_cqe* cqe = nullptr;
  if (io_uring_peek_cqe(ring_.get(), &cqe) != 0) return nullptr;
  return cqe;
}

void IoRing::CqeSeen(io_uring_cqe* cqe) { io_uring_cqe_seen(ring_.get(), cqe); }

}  // namespace runnel::log
