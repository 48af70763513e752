#include "broker/fetch_purgatory.h"

#include <utility>

#include "absl/synchronization/notification.h"

#include "common/check.h"

namespace runnel::broker {

FetchPurgatory::FetchPurgatory(TimerQueue* timers) : timers_(timers) {}

FetchPurgatory::~FetchPurgatory() {
  // Waits for the timer thread: it may still be removing a fetch it has just
  // answered (the answer can reach the owner before Evaluate returns).
  Shutdown();
  absl::MutexLock lock(&mu_);
  RUNNEL_CHECK(waiters_.empty());
}

void FetchPurgatory::Add(const std::vector<TopicPartition>& keys,
                         absl::Time deadline, TryComplete try_complete) {
  absl::MutexLock lock(&mu_);
  if (shutdown_) {
    mu_.Unlock();
    try_complete(true);
    mu_.Lock();
    return;
  }
  auto waiter = std::make_shared<Waiter>();
  waiter->id = next_id_++;
  waiter->keys = keys;
  waiter->try_complete = std::move(try_complete);
  const uint64_t id = waiter->id;
  waiter->deadline_timer =
      timers_->RunAt(deadline, [this, id] { Evaluate(id, true); });
  for (const TopicPartition& key : keys) by_key_[key].insert(id);
  waiters_[id] = waiter;
  ScheduleLocked(waiter);
}

void FetchPurgatory::Notify(const TopicPartition& key) {
  absl::MutexLock lock(&mu_);
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return;
  for (uint64_t id : it->second) ScheduleLocked(waiters_.at(id));
}

void FetchPurgatory::ScheduleLocked(const std::shared_ptr<Waiter>& waiter) {
  if (waiter->evaluation_scheduled) return;
  waiter->evaluation_scheduled = true;
  const uint64_t id = waiter->id;
  timers_->Post([this, id] { Evaluate(id, false); });
}

void FetchPurgatory::RemoveLocked(const Waiter& waiter) {
  for (const TopicPartition& key : waiter.keys) {
    auto it = by_key_.find(key);
    if (it == by_key_.end()) continue;
    it->second.erase(waiter.id);
    if (it->second.empty()) by_key_.erase(it);
  }
  waiters_.erase(waiter.id);
}

void FetchPurgatory::Evaluate(uint64_t id, bool expired) {
  std::shared_ptr<Waiter> waiter;
  {
    absl::MutexLock lock(&mu_);
    auto it = waiters_.find(id);
    if (it == waiters_.end()) return;  // already answered
    waiter = it->second;
    // Cleared before the attempt: a Notify during it schedules another one.
    waiter->evaluation_scheduled = false;
  }
  // Only the timer thread runs Evaluate, so no other attempt for this fetch
  // is running now.
  const bool completed = waiter->try_complete(expired);
  RUNNEL_CHECK(completed || !expired);  // an expired fetch must be answered
  if (!completed) return;
  absl::MutexLock lock(&mu_);
  RemoveLocked(*waiter);
  timers_->Cancel(waiter->deadline_timer);  // no-op if it is what ran
}

void FetchPurgatory::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (!shutdown_) {
      shutdown_ = true;
      for (auto& [id, waiter] : waiters_) {
        timers_->Post([this, id = id] { Evaluate(id, true); });
      }
    }
  }
  // The timer thread runs posts in order: once this one ran, every expiry
  // posted above has been answered.
  absl::Notification done;
  timers_->Post([&done] { done.Notify(); });
  done.WaitForNotification();
}

size_t FetchPurgatory::size() const {
  absl::MutexLock lock(&mu_);
  return waiters_.size();
}

}  // namespace runnel::broker
