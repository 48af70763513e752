#include "broker/fetch_purgatory.h"

#include <atomic>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

#include "broker/timer_queue.h"

namespace runnel::broker {
namespace {

TEST(TimerQueueTest, RunsInDeadlineOrderAndSkipsCancelled) {
  TimerQueue timers;
  std::vector<int> order;
  absl::Mutex mu;
  absl::Notification last;
  const absl::Time now = absl::Now();
  auto record = [&](int v) {
    absl::MutexLock lock(&mu);
    order.push_back(v);
  };
  timers.RunAt(now + absl::Milliseconds(30), [&] {
    record(3);
    last.Notify();
  });
  TimerQueue::TimerId cancelled =
      timers.RunAt(now + absl::Milliseconds(20), [&] { record(99); });
  timers.RunAt(now + absl::Milliseconds(10), [&] { record(2); });
  timers.Post([&] { record(1); });
  EXPECT_TRUE(timers.Cancel(cancelled));
  ASSERT_TRUE(last.WaitForNotificationWithTimeout(absl::Seconds(30)));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(TimerQueueTest, AnEntryAddedWhileTheQueueSleepsRunsAtItsOwnDeadline) {
  TimerQueue timers;
  // Let the thread go to sleep with nothing queued.
  absl::Notification idle;
  timers.Post([&] { idle.Notify(); });
  ASSERT_TRUE(idle.WaitForNotificationWithTimeout(absl::Seconds(30)));
  // Nothing else touches the queue: only the new entry can wake it.
  absl::Notification soon;
  timers.RunAt(absl::Now() + absl::Milliseconds(5), [&] { soon.Notify(); });
  EXPECT_TRUE(soon.WaitForNotificationWithTimeout(absl::Seconds(30)));
  // An earlier entry behind a far one (the thread sleeps until an hour).
  timers.RunAt(absl::Now() + absl::Hours(1), [] {});
  absl::Notification sooner;
  timers.RunAt(absl::Now() + absl::Milliseconds(5), [&] { sooner.Notify(); });
  EXPECT_TRUE(sooner.WaitForNotificationWithTimeout(absl::Seconds(30)));
}

TEST(TimerQueueTest, StopRunsWhatIsLeft) {
  bool ran = false;
  {
    TimerQueue timers;
    timers.RunAt(absl::Now() + absl::Hours(1), [&] { ran = true; });
    timers.Stop();
    EXPECT_TRUE(ran);
  }
}

TEST(FetchPurgatoryTest, NotifyOfAWatchedKeyReevaluates) {
  TimerQueue timers;
  FetchPurgatory purgatory(&timers);
  std::atomic<bool> ready{false};
  std::atomic<int> attempts{0};
  absl::Notification answered;
  purgatory.Add({{"t", 0}}, absl::Now() + absl::Hours(1), [&](bool expired) {
    ++attempts;
    if (!ready.load() && !expired) return false;
    answered.Notify();
    return true;
  });
  purgatory.Notify({"other", 0});  // not watched: no effect
  ready.store(true);
  purgatory.Notify({"t", 0});
  ASSERT_TRUE(answered.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_GE(attempts.load(), 1);
  // Answered fetches are forgotten.
  absl::Notification barrier;
  timers.Post([&] { barrier.Notify(); });
  barrier.WaitForNotification();
  EXPECT_EQ(purgatory.size(), 0u);
}

TEST(FetchPurgatoryTest, DeadlineExpiresTheFetch) {
  TimerQueue timers;
  FetchPurgatory purgatory(&timers);
  absl::Notification expired_once;
  purgatory.Add({{"t", 0}}, absl::Now() + absl::Milliseconds(20),
                [&](bool expired) {
                  if (!expired) return false;
                  expired_once.Notify();
                  return true;
                });
  ASSERT_TRUE(expired_once.WaitForNotificationWithTimeout(absl::Seconds(30)));
}

TEST(FetchPurgatoryTest, ShutdownAnswersEverythingAndLaterAddsAtOnce) {
  TimerQueue timers;
  FetchPurgatory purgatory(&timers);
  std::atomic<int> expired_count{0};
  for (int i = 0; i < 3; ++i) {
    purgatory.Add({{"t", i}}, absl::Now() + absl::Hours(1), [&](bool expired) {
      if (!expired) return false;
      ++expired_count;
      return true;
    });
  }
  purgatory.Shutdown();
  EXPECT_EQ(expired_count.load(), 3);
  purgatory.Add({{"t", 0}}, absl::Now() + absl::Hours(1), [&](bool expired) {
    EXPECT_TRUE(expired);
    ++expired_count;
    return true;
  });
  EXPECT_EQ(expired_count.load(), 4);
  EXPECT_EQ(purgatory.size(), 0u);
}

}  // namespace
}  // namespace runnel::broker
