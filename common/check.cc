#include "common/check.h"

#include <cstdio>
#include <cstdlib>

namespace runnel::internal {

void CheckFailed(const char* condition, const char* file, int line,
                 const char* message) {
  // stdio rather than spdlog: this must work before logging is set up and
  // must not allocate more than it has to while the process is dying.
  std::fprintf(stderr, "RUNNEL_CHECK failed: %s at %s:%d%s%s\n", condition,
               file, line, message ? ": " : "", message ? message : "");
  std::fflush(stderr);
  std::abort();
}

}  // namespace runnel::internal
