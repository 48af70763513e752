#pragma once

// Test helper: a LogManager that is Close()d before it is destroyed, so a
// test that fails an ASSERT before its own Close() reports the failure
// instead of tripping LogManager's "destroyed without Close()" check.

#include <memory>
#include <utility>

#include "absl/status/statusor.h"

#include "common/status_macros.h"
#include "log/log_manager.h"

namespace runnel::log::testing {

struct CloseThenDelete {
  void operator()(LogManager* manager) const {
    // Idempotent: after the test's own Close() this only returns its status.
    manager->Close().IgnoreError();
    delete manager;
  }
};
using ManagerPtr = std::unique_ptr<LogManager, CloseThenDelete>;

inline absl::StatusOr<ManagerPtr> OpenManager(LogManagerOptions options) {
  RUNNEL_ASSIGN_OR_RETURN(std::unique_ptr<LogManager> manager,
                          LogManager::Open(std::move(options)));
  return ManagerPtr(manager.release());
}

}  // namespace runnel::log::testing
