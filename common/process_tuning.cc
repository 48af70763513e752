#include "common/process_tuning.h"

#include <malloc.h>

#include "absl/synchronization/mutex.h"

namespace runnel {

void TuneProcessForThroughput() {
  // For glibc's malloc, in builds without tcmalloc (RUNNEL_TCMALLOC=OFF,
  // the sanitizer builds); tcmalloc's mallopt does nothing. A failed mallopt
  // leaves glibc's defaults: slower, not wrong.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace runnel
