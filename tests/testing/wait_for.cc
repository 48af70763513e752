#include "tests/testing/wait_for.h"

#include <cstdlib>
#include <string>
#include <thread>

namespace runnel::testing {

bool WaitFor(const std::function<bool()>& predicate,
             std::chrono::milliseconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  auto pause = std::chrono::microseconds(100);
  while (true) {
    if (predicate()) return true;
    if (std::chrono::steady_clock::now() >= end) return predicate();
    std::this_thread::sleep_for(pause);
    if (pause < std::chrono::milliseconds(20)) pause *= 2;
  }
}

uint64_t TestSeed(uint64_t fallback) {
  const char* env = std::getenv("RUNNEL_TEST_SEED");
  if (env == nullptr || *env == '\0') return fallback;
  return std::stoull(env);
}

}  // namespace runnel::testing
