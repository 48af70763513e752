#include "broker/timer_queue.h"

#include <vector>

namespace runnel::broker {

TimerQueue::TimerQueue() : thread_([this] { Loop(); }) {}

TimerQueue::~TimerQueue() { Stop(); }

TimerQueue::TimerId TimerQueue::RunAt(absl::Time deadline,
                                      std::function<void()> fn) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      TimerId id = next_id_++;
      queue_.emplace(std::make_pair(deadline, id), std::move(fn));
      deadlines_[id] = deadline;
      return id;
    }
  }
  fn();
  return 0;
}

bool TimerQueue::Cancel(TimerId id) {
  absl::MutexLock lock(&mu_);
  auto it = deadlines_.find(id);
  if (it == deadlines_.end()) return false;
  queue_.erase(std::make_pair(it->second, id));
  deadlines_.erase(it);
  return true;
}

void TimerQueue::Loop() {
  absl::MutexLock lock(&mu_);
  while (true) {
    // Waits (without spinning) until the earliest deadline, a new earlier
    // entry, or Stop().
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_ ||
             (!queue_.empty() && queue_.begin()->first.first <= absl::Now());
    };
    while (!ready()) {
      const absl::Time deadline =
          queue_.empty() ? absl::InfiniteFuture() : queue_.begin()->first.first;
      // The Mutex re-evaluates a condition only when someone releases mu_,
      // not as time passes: wake up on an entry earlier than the deadline
      // slept for (then sleep again until its deadline), else a RunAt made
      // while sleeping would wait for the old deadline or for unrelated
      // traffic on the queue.
      auto woken = [this, &ready,
                    deadline]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return ready() ||
               (!queue_.empty() && queue_.begin()->first.first < deadline);
      };
      mu_.AwaitWithDeadline(absl::Condition(&woken), deadline);
    }
    if (stopping_) return;
    auto it = queue_.begin();
    std::function<void()> fn = std::move(it->second);
    deadlines_.erase(it->first.second);
    queue_.erase(it);
    mu_.Unlock();
    fn();
    mu_.Lock();
  }
}

void TimerQueue::Stop() {
  absl::MutexLock stop_lock(&stop_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  // Run what is left, in order: every callback completes some operation.
  std::vector<std::function<void()>> left;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [key, fn] : queue_) left.push_back(std::move(fn));
    queue_.clear();
    deadlines_.clear();
  }
  for (auto& fn : left) fn();
}

}  // namespace runnel::broker
