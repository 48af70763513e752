#pragma once

// Helpers shared by the storage benchmarks (io_bench, log_bench).

#include <string>

#include "log/io_thread.h"

namespace runnel::log::bench {

// $RUNNEL_BENCH_DIR, default /tmp/runnel-bench; created if missing.
std::string BenchDir();

// One IoThread for the whole benchmark process; never stopped.
IoThread* SharedIo();

// User + system CPU seconds of the whole process so far.
double ProcessCpuSeconds();

}  // namespace runnel::log::bench
