#include "log/io_thread.h"

#include <errno.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "spdlog/spdlog.h"

#include "common/check.h"

namespace runnel::log {

struct IoThread::Request {
  enum class Kind { kWrite, kRead, kFsync, kPost, kWake };

  Kind kind = Kind::kPost;
  int fd = -1;
  const char* data = nullptr;  // kWrite
  int fixed_slot = -1;         // kWrite: registered buffer, or -1
  char* buf = nullptr;         // kRead, kWake
  size_t size = 0;
  size_t done_bytes = 0;  // progress across short writes/reads
  FilePos pos = 0;
  DoneCallback done;                  // kWrite, kFsync (until it joins)
  ReadCallback read_done;             // kRead
  std::vector<DoneCallback> waiters;  // kFsync: every request this fsync serves
  std::function<void()> fn;           // kPost
  bool submitted = false;             // the kernel has the SQE
  std::chrono::steady_clock::time_point start;
};

// Per-fd group-commit state. `current` is the fsync prepared or in flight for
// the fd (owned by ready_ or in_flight_); `followers` wait for the one
// follow-up fsync issued when `current` completes.
struct IoThread::FsyncState {
  Request* current = nullptr;
  std::vector<DoneCallback> followers;
};

namespace {

absl::Status IoError(int err, const char* op, int fd, FilePos pos,
                     size_t size) {
  return absl::ErrnoToStatus(
      err, absl::StrCat(op, " fd=", fd, " pos=", pos, " size=", size));
}

void WriteEventFd(int fd) {
  uint64_t one = 1;
  while (true) {
    ssize_t n = ::write(fd, &one, sizeof(one));
    if (n == sizeof(one)) return;
    RUNNEL_CHECK_MSG(n < 0 && errno == EINTR, "eventfd write failed");
  }
}

}  // namespace

IoThread::IoThread(IoThreadOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<IoThread>> IoThread::Start(
    IoThreadOptions options) {
  std::unique_ptr<IoThread> io(new IoThread(std::move(options)));
  auto ring = IoRing::Create(io->options_.ring_entries, io->options_.sqpoll);
  if (!ring.ok()) return ring.status();
  io->ring_ = std::move(ring).value();
  if (io->options_.fixed_buffer_slots > 0) {
    io->fixed_buffers_ = FixedBufferTable::Create(
        io->ring_.get()->ring_fd, io->options_.fixed_buffer_slots);
  }
  int efd = ::eventfd(0, EFD_CLOEXEC);
  if (efd < 0) return absl::ErrnoToStatus(errno, "eventfd");
  io->wake_fd_.reset(efd);
  io->thread_ = std::thread(&IoThread::Run, io.get());
  // Return a thread that already sleeps on its eventfd: no request can be
  // picked up before the first wake-up read is armed (keeps counters exact).
  io->started_.WaitForNotification();
  return io;
}

IoThread::~IoThread() {
  absl::Status status = Stop();
  if (!status.ok()) {
    spdlog::error("IoThread {}: stop failed: {}", options_.name,
                  status.ToString());
  }
}

bool IoThread::OnIoThread() const {
  return thread_id_.load(std::memory_order_acquire) ==
         std::this_thread::get_id();
}

void IoThread::Write(int fd, const char* data, size_t size, FilePos pos,
                     DoneCallback done, int fixed_slot) {
  write_requests_.fetch_add(1, std::memory_order_relaxed);
  auto request = std::make_unique<Request>();
  request->kind = Request::Kind::kWrite;
  request->fd = fd;
  request->data = data;
  request->fixed_slot = fixed_slot;
  request->size = size;
  request->pos = pos;
  request->done = std::move(done);
  Enqueue(std::move(request));
}

void IoThread::Read(int fd, char* buf, size_t size, FilePos pos,
                    ReadCallback done) {
  read_requests_.fetch_add(1, std::memory_order_relaxed);
  auto request = std::make_unique<Request>();
  request->kind = Request::Kind::kRead;
  request->fd = fd;
  request->buf = buf;
  request->size = size;
  request->pos = pos;
  request->read_done = std::move(done);
  Enqueue(std::move(request));
}

void IoThread::Fsync(int fd, DoneCallback done) {
  fsync_requests_.fetch_add(1, std::memory_order_relaxed);
  auto request = std::make_unique<Request>();
  request->kind = Request::Kind::kFsync;
  request->fd = fd;
  request->done = std::move(done);
  Enqueue(std::move(request));
}

void IoThread::SubmitPrepared() {
  RUNNEL_CHECK(OnIoThread());
  PrepareReady();
  if (prepared_unsubmitted_.empty()) return;
  absl::StatusOr<int> submitted = ring_.Submit();
  // EAGAIN/EBUSY: the loop's next SubmitAndWait hands them over instead.
  if (!submitted.ok()) return;
  MarkPreparedSubmitted();
  CountSubmit();
}

void IoThread::Post(std::function<void()> fn) {
  auto request = std::make_unique<Request>();
  request->kind = Request::Kind::kPost;
  request->fn = std::move(fn);
  Enqueue(std::move(request));
}

void IoThread::Enqueue(std::unique_ptr<Request> request) {
  if (OnIoThread()) {
    // Completion callbacks: handled at once, no wake-up needed. This is what
    // lets a request made while an fsync is in flight join its follow-up.
    Handle(std::move(request));
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    if (!exited_) {
      queue_.push_back(std::move(request));
    }
  }
  if (request != nullptr) {  // the thread has exited: fail here, once
    absl::Status stopped = absl::FailedPreconditionError(
        absl::StrCat("IoThread ", options_.name, " is stopped"));
    switch (request->kind) {
      case Request::Kind::kWrite:
      case Request::Kind::kFsync:
        request->done(stopped);
        break;
      case Request::Kind::kRead:
        request->read_done(stopped);
        break;
      case Request::Kind::kPost:
        request->fn();
        break;
      case Request::Kind::kWake:
        RUNNEL_CHECK(false);
    }
    return;
  }
  if (!wake_pending_.exchange(true, std::memory_order_acq_rel)) {
    WriteEventFd(wake_fd_.get());
  }
}

absl::Status IoThread::Stop() {
  RUNNEL_CHECK(!OnIoThread());
  absl::MutexLock stop_lock(&stop_mu_);
  if (thread_.joinable()) {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    WriteEventFd(wake_fd_.get());
    thread_.join();
  }
  absl::MutexLock lock(&mu_);
  return ring_status_;
}

void IoThread::Run() {
  thread_id_.store(std::this_thread::get_id(), std::memory_order_release);
  pthread_setname_np(pthread_self(), options_.name.substr(0, 15).c_str());
  if (options_.nice != 0 &&
      ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()),
                    options_.nice) != 0) {
    spdlog::warn("{}: cannot set nice {}: {}", options_.name, options_.nice,
                 std::strerror(errno));
  }
  ArmWake();
  PrepareReady();
  absl::StatusOr<int> armed = ring_.Submit();
  RUNNEL_CHECK_MSG(armed.ok(), armed.status().ToString().c_str());
  MarkPreparedSubmitted();
  submits_.fetch_add(1, std::memory_order_relaxed);
  started_.Notify();
  while (true) {
    // Clear before draining: a producer that enqueues after the drain sees
    // the flag clear and writes the eventfd again.
    wake_pending_.store(false, std::memory_order_seq_cst);
    DrainQueue();
    PrepareReady();
    while (!posted_.empty()) {
      std::vector<std::function<void()>> posted;
      posted.swap(posted_);
      for (auto& fn : posted) fn();
      PrepareReady();
    }
    if (stop_seen_ && Idle()) {
      absl::MutexLock lock(&mu_);
      if (queue_.empty()) {
        exited_ = true;
        break;
      }
      continue;
    }
    SubmitAndWait();
    ReapAll();
  }
}

void IoThread::DrainQueue() {
  std::vector<std::unique_ptr<Request>> local;
  bool stopping;
  {
    absl::MutexLock lock(&mu_);
    local.swap(queue_);
    stopping = stopping_;
  }
  for (auto& request : local) Handle(std::move(request));
  if (stopping && !stop_seen_) {
    stop_seen_ = true;
    // The pending eventfd read may have been re-armed after Stop()'s write
    // was consumed: complete it so the ring can drain to empty.
    if (wake_armed_) WriteEventFd(wake_fd_.get());
  }
}

void IoThread::Handle(std::unique_ptr<Request> request) {
  switch (request->kind) {
    case Request::Kind::kWrite:
    case Request::Kind::kRead:
      ready_.push_back(std::move(request));
      break;
    case Request::Kind::kFsync:
      HandleFsync(std::move(request));
      break;
    case Request::Kind::kPost:
      posted_.push_back(std::move(request->fn));
      break;
    case Request::Kind::kWake:
      RUNNEL_CHECK(false);
  }
}

void IoThread::HandleFsync(std::unique_ptr<Request> request) {
  std::unique_ptr<FsyncState>& state = fsync_state_[request->fd];
  if (state == nullptr) state = std::make_unique<FsyncState>();
  if (state->current == nullptr) {
    state->current = request.get();
    request->waiters.push_back(std::move(request->done));
    ready_.push_back(std::move(request));
  } else if (!state->current->submitted) {
    // Not in the kernel yet: it will cover every write completed so far.
    state->current->waiters.push_back(std::move(request->done));
  } else {
    // In flight: writes completed after its submission may not be covered.
    state->followers.push_back(std::move(request->done));
  }
}

void IoThread::ArmWake() {
  auto request = std::make_unique<Request>();
  request->kind = Request::Kind::kWake;
  request->fd = wake_fd_.get();
  request->buf = reinterpret_cast<char*>(&wake_value_);
  request->size = sizeof(wake_value_);
  wake_armed_ = true;
  // Ahead of everything else so that it always has an SQE.
  ready_.push_front(std::move(request));
}

bool IoThread::Idle() const {
  return in_flight_.empty() && ready_.empty() && posted_.empty();
}

void IoThread::PrepareReady() {
  while (!ready_.empty() && in_flight_.size() < ring_.cq_entries()) {
    io_uring_sqe* sqe = ring_.GetSqe();
    if (sqe == nullptr) {
      // Submission queue full: hand what we have to the kernel, then retry.
      absl::StatusOr<int> submitted = ring_.Submit();
      RUNNEL_CHECK_MSG(submitted.ok(), submitted.status().ToString().c_str());
      MarkPreparedSubmitted();
      CountSubmit();
      sqe = ring_.GetSqe();
      if (sqe == nullptr) return;
    }
    std::unique_ptr<Request> request = std::move(ready_.front());
    ready_.pop_front();
    Request* r = request.get();
    switch (r->kind) {
      case Request::Kind::kWrite: {
        const char* from = r->data + r->done_bytes;
        const auto len = static_cast<unsigned>(
            std::min<size_t>(r->size - r->done_bytes, 1u << 30));
        const uint64_t at = static_cast<uint64_t>(r->pos) + r->done_bytes;
        if (r->fixed_slot >= 0) {
          io_uring_prep_write_fixed(sqe, r->fd, from, len, at, r->fixed_slot);
          fixed_write_sqes_.fetch_add(1, std::memory_order_relaxed);
        } else {
          io_uring_prep_write(sqe, r->fd, from, len, at);
        }
        write_sqes_.fetch_add(1, std::memory_order_relaxed);
        break;
      }
      case Request::Kind::kRead:
      case Request::Kind::kWake:
        io_uring_prep_read(sqe, r->fd, r->buf + r->done_bytes,
                           static_cast<unsigned>(std::min<size_t>(
                               r->size - r->done_bytes, 1u << 30)),
                           static_cast<uint64_t>(r->pos) + r->done_bytes);
        break;
      case Request::Kind::kFsync:
        io_uring_prep_fsync(sqe, r->fd, IORING_FSYNC_DATASYNC);
        fsyncs_issued_.fetch_add(1, std::memory_order_relaxed);
        prepared_has_fsync_ = true;
        r->start = std::chrono::steady_clock::now();
        break;
      case Request::Kind::kPost:
        RUNNEL_CHECK(false);
    }
    uint64_t id = next_id_++;
    io_uring_sqe_set_data64(sqe, id);
    prepared_unsubmitted_.push_back(r);
    in_flight_.emplace(id, std::move(request));
  }
}

void IoThread::SubmitAndWait() {
  bool had_new = !prepared_unsubmitted_.empty();
  absl::StatusOr<int> rc = ring_.SubmitAndWait(1);
  if (!rc.ok() && (rc.status().code() == absl::StatusCode::kResourceExhausted ||
                   rc.status().code() == absl::StatusCode::kUnavailable)) {
    // EAGAIN/EBUSY: the kernel is short of resources or the completion queue
    // is backed up; reaping makes room, the next iteration submits again.
    return;
  }
  RUNNEL_CHECK_MSG(rc.ok(), rc.status().ToString().c_str());
  MarkPreparedSubmitted();
  if (had_new) CountSubmit();
}

void IoThread::MarkPreparedSubmitted() {
  for (Request* r : prepared_unsubmitted_) r->submitted = true;
  prepared_unsubmitted_.clear();
}

void IoThread::CountSubmit() {
  submits_.fetch_add(1, std::memory_order_relaxed);
  if (prepared_has_fsync_) {
    fsync_submits_.fetch_add(1, std::memory_order_relaxed);
    prepared_has_fsync_ = false;
  }
}

void IoThread::ReapAll() {
  while (io_uring_cqe* cqe = ring_.PeekCqe()) {
    uint64_t id = io_uring_cqe_get_data64(cqe);
    int res = cqe->res;
    ring_.CqeSeen(cqe);
    auto node = in_flight_.extract(id);
    RUNNEL_CHECK(!node.empty());
    Complete(std::move(node.mapped()), res);
  }
}

void IoThread::Complete(std::unique_ptr<Request> request, int res) {
  Request* r = request.get();
  if ((res == -EINTR || res == -EAGAIN) &&
      (r->kind == Request::Kind::kWrite || r->kind == Request::Kind::kRead)) {
    ready_.push_back(std::move(request));  // transient: try again
    return;
  }
  switch (r->kind) {
    case Request::Kind::kWake:
      wake_armed_ = false;
      if (!stop_seen_) ArmWake();
      return;
    case Request::Kind::kFsync:
      CompleteFsync(std::move(request), res);
      return;
    case Request::Kind::kWrite:
      if (res < 0) {
        r->done(IoError(-res, "write", r->fd, r->pos + r->done_bytes, r->size));
        return;
      }
      if (res == 0 && r->done_bytes < r->size) {
        r->done(absl::InternalError(
            absl::StrCat("write fd=", r->fd, " pos=", r->pos + r->done_bytes,
                         " wrote 0 bytes")));
        return;
      }
      r->done_bytes += res;
      bytes_written_.fetch_add(res, std::memory_order_relaxed);
      if (r->done_bytes < r->size) {
        ready_.push_back(std::move(request));  // short write: continue
        return;
      }
      r->done(absl::OkStatus());
      return;
    case Request::Kind::kRead:
      if (res < 0) {
        r->read_done(
            IoError(-res, "read", r->fd, r->pos + r->done_bytes, r->size));
        return;
      }
      r->done_bytes += res;
      bytes_read_.fetch_add(res, std::memory_order_relaxed);
      if (res > 0 && r->done_bytes < r->size) {
        ready_.push_back(std::move(request));  // short read: continue
        return;
      }
      r->read_done(r->done_bytes);
      return;
    case Request::Kind::kPost:
      RUNNEL_CHECK(false);
  }
}

void IoThread::CompleteFsync(std::unique_ptr<Request> request, int res) {
  auto latency = std::chrono::steady_clock::now() - request->start;
  RecordFsyncLatency(
      std::chrono::duration_cast<std::chrono::microseconds>(latency).count());
  if (options_.on_fsync_reaped_for_test)
    options_.on_fsync_reaped_for_test(request->fd);
  auto it = fsync_state_.find(request->fd);
  RUNNEL_CHECK(it != fsync_state_.end() &&
               it->second->current == request.get());
  FsyncState& state = *it->second;
  if (state.followers.empty()) {
    fsync_state_.erase(it);
  } else {
    // The one follow-up fsync for everything that arrived while this one was
    // in the kernel.
    auto follow_up = std::make_unique<Request>();
    follow_up->kind = Request::Kind::kFsync;
    follow_up->fd = request->fd;
    follow_up->waiters = std::move(state.followers);
    state.followers.clear();
    state.current = follow_up.get();
    ready_.push_back(std::move(follow_up));
  }
  absl::Status status =
      res < 0 ? absl::ErrnoToStatus(-res,
                                    absl::StrCat("fdatasync fd=", request->fd))
              : absl::OkStatus();
  for (auto& done : request->waiters) done(status);
}

void IoThread::RecordFsyncLatency(int64_t latency_us) {
  fsync_latency_sum_us_.fetch_add(latency_us, std::memory_order_relaxed);
  size_t bucket = 0;
  while (latency_us >= kFsyncLatencyBucketUpperUs[bucket] &&
         bucket + 1 < kFsyncLatencyBucketUpperUs.size()) {
    ++bucket;
  }
  fsync_latency_buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  absl::MutexLock lock(&recent_mu_);
  recent_[recent_count_ % kRecentFsyncLatencies] = latency_us;
  ++recent_count_;
}

IoThreadStats IoThread::Stats() const {
  IoThreadStats stats;
  stats.write_requests = write_requests_.load(std::memory_order_relaxed);
  stats.write_sqes = write_sqes_.load(std::memory_order_relaxed);
  stats.fixed_write_sqes = fixed_write_sqes_.load(std::memory_order_relaxed);
  stats.bytes_written = bytes_written_.load(std::memory_order_relaxed);
  stats.read_requests = read_requests_.load(std::memory_order_relaxed);
  stats.bytes_read = bytes_read_.load(std::memory_order_relaxed);
  stats.fsync_requests = fsync_requests_.load(std::memory_order_relaxed);
  stats.fsyncs_issued = fsyncs_issued_.load(std::memory_order_relaxed);
  stats.submits = submits_.load(std::memory_order_relaxed);
  stats.fsync_submits = fsync_submits_.load(std::memory_order_relaxed);
  stats.fsync_latency_sum_us =
      fsync_latency_sum_us_.load(std::memory_order_relaxed);
  for (size_t i = 0; i < stats.fsync_latency_buckets.size(); ++i) {
    stats.fsync_latency_buckets[i] =
        fsync_latency_buckets_[i].load(std::memory_order_relaxed);
  }
  return stats;
}

std::vector<int64_t> IoThread::RecentFsyncLatenciesUs() const {
  absl::MutexLock lock(&recent_mu_);
  std::vector<int64_t> out;
  size_t n = std::min(recent_count_, kRecentFsyncLatencies);
  out.reserve(n);
  for (size_t i = recent_count_ - n; i < recent_count_; ++i) {
    out.push_back(recent_[i % kRecentFsyncLatencies]);
  }
  return out;
}

absl::Status IoThread::WriteSync(int fd, const char* data, size_t size,
                                 FilePos pos) {
  RUNNEL_CHECK(!OnIoThread());
  absl::Notification done;
  absl::Status result;
  Write(fd, data, size, pos, [&](absl::Status status) {
    result = std::move(status);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

absl::StatusOr<size_t> IoThread::ReadSync(int fd, char* buf, size_t size,
                                          FilePos pos) {
  RUNNEL_CHECK(!OnIoThread());
  absl::Notification done;
  absl::StatusOr<size_t> result;
  Read(fd, buf, size, pos, [&](absl::StatusOr<size_t> status) {
    result = std::move(status);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

absl::Status IoThread::FsyncSync(int fd) {
  RUNNEL_CHECK(!OnIoThread());
  absl::Notification done;
  absl::Status result;
  Fsync(fd, [&](absl::Status status) {
    result = std::move(status);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

}  // namespace runnel::log
