#pragma once

// Parked long-poll fetches (Kafka's "fetch purgatory"). A fetch that cannot
// be answered yet waits here, without a thread and without polling, until a
// partition it watches reports new visible data (Notify) or its deadline
// passes.

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#include "broker/timer_queue.h"
#include "broker/topic_partition.h"

namespace runnel::broker {

// Thread-safe. Notify() is cheap and non-blocking, so it may be called from
// the log's I/O thread (WhenDurable callbacks). Every try_complete call runs
// on the TimerQueue's thread, so the calls for one fetch never overlap.
class FetchPurgatory {
 public:
  // Returns true when it completed the fetch (answered it); then the fetch
  // is forgotten. `expired`: the deadline passed or the purgatory is shutting
  // down: the callback must complete the fetch and return true.
  using TryComplete = std::function<bool(bool expired)>;

  // `timers` must outlive the purgatory.
  explicit FetchPurgatory(TimerQueue* timers);
  FetchPurgatory(const FetchPurgatory&) = delete;
  FetchPurgatory& operator=(const FetchPurgatory&) = delete;
  ~FetchPurgatory();

  // Parks a fetch watching `keys`. try_complete(false) runs once right away
  // (on the timer thread: this closes the race with data that landed between
  // the caller's own attempt and Add), again after each Notify of a watched
  // key (coalesced), and try_complete(true) at `deadline`. After Shutdown:
  // try_complete(true) at once.
  void Add(const std::vector<TopicPartition>& keys, absl::Time deadline,
           TryComplete try_complete);

  // New data is visible in `key` (its high watermark advanced).
  void Notify(const TopicPartition& key);

  // Expires every parked fetch and every later Add, and blocks until the
  // expired ones have been answered. Idempotent.
  void Shutdown();

  // Fetches parked right now.
  size_t size() const;

 private:
  struct Waiter {
    uint64_t id = 0;
    std::vector<TopicPartition> keys;
    TryComplete try_complete;
    TimerQueue::TimerId deadline_timer = 0;
    bool evaluation_scheduled = false;
  };

  // Schedules an evaluation of `waiter` on the timer thread.
  void ScheduleLocked(const std::shared_ptr<Waiter>& waiter)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs on the timer thread.
  void Evaluate(uint64_t id, bool expired);
  void RemoveLocked(const Waiter& waiter) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  TimerQueue* const timers_;
  mutable absl::Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<uint64_t, std::shared_ptr<Waiter>> waiters_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<TopicPartition, absl::flat_hash_set<uint64_t>> by_key_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace runnel::broker
