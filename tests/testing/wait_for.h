#pragma once

#include <chrono>
#include <functional>

namespace runnel::testing {

// Polls `predicate` (with a short back-off) until it is true or `deadline`
// passes; returns its last value. For integration tests that must wait on
// another process; in-process tests synchronize on events instead.
bool WaitFor(const std::function<bool()>& predicate,
             std::chrono::milliseconds deadline);

// The test's random seed: RUNNEL_TEST_SEED if set, else `fallback`.
uint64_t TestSeed(uint64_t fallback = 20261203);

}  // namespace runnel::testing
