#pragma once

// One thread that runs callbacks at deadlines (or as soon as possible):
// produce timeouts, long-poll fetch expiry and fetch re-evaluation after a
// wake-up. Keeps that work off gRPC threads and off the log's I/O threads.

#include <cstdint>
#include <functional>
#include <map>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace runnel::broker {

// Thread-safe. Callbacks run on the queue's own thread, one at a time, in
// deadline order (ties in submission order); they must not block for long.
// Stop() joins the thread; callbacks still queued then are run at once, in
// order, on the thread calling Stop(), so every callback runs exactly once
// unless cancelled.
class TimerQueue {
 public:
  using TimerId = uint64_t;

  TimerQueue();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;
  ~TimerQueue();  // Stop()

  // Runs `fn` at `deadline` (real time). After Stop(): runs `fn` at once on
  // the calling thread and returns 0.
  TimerId RunAt(absl::Time deadline, std::function<void()> fn);
  // Runs `fn` as soon as possible.
  TimerId Post(std::function<void()> fn) {
    return RunAt(absl::InfinitePast(), std::move(fn));
  }
  // Removes a callback that has not started; true if it was removed.
  bool Cancel(TimerId id);

  void Stop();

 private:
  void Loop();

  absl::Mutex mu_;
  // (deadline, id) -> callback. ids increase, so ties keep submission order.
  std::map<std::pair<absl::Time, TimerId>, std::function<void()>> queue_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<TimerId, absl::Time> deadlines_ ABSL_GUARDED_BY(mu_);
  TimerId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Mutex stop_mu_;  // serializes Stop() callers
  std::thread thread_;   // joined in Stop()
};

}  // namespace runnel::broker
