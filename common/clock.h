#pragma once

// Clocks as an interface so retention, segment age and timeouts can be tested
// with an injected ManualClock instead of sleeping.

#include <atomic>
#include <cstdint>

namespace runnel {

// Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock milliseconds since the Unix epoch (record timestamps, ages).
  virtual int64_t NowMs() const = 0;
  // Monotonic nanoseconds (timeouts, latencies); arbitrary origin.
  virtual int64_t MonotonicNs() const = 0;
};

// The real clocks. Thread-safe.
class SystemClock final : public Clock {
 public:
  int64_t NowMs() const override;
  int64_t MonotonicNs() const override;
  // A process-wide instance; never destroyed.
  static Clock* Default();
};

// A clock that moves only when told. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t now_ms = 1'700'000'000'000) : now_ms_(now_ms) {}
  int64_t NowMs() const override { return now_ms_.load(); }
  int64_t MonotonicNs() const override { return now_ms_.load() * 1'000'000; }
  void AdvanceMs(int64_t ms) { now_ms_.fetch_add(ms); }
  void SetMs(int64_t ms) { now_ms_.store(ms); }

 private:
  std::atomic<int64_t> now_ms_;
};

}  // namespace runnel
