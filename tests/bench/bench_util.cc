#include "tests/bench/bench_util.h"

#include <sys/resource.h>
#include <sys/time.h>

#include <cstdlib>
#include <filesystem>

#include "common/check.h"

namespace runnel::log::bench {

std::string BenchDir() {
  const char* dir = std::getenv("RUNNEL_BENCH_DIR");
  std::string path = dir != nullptr ? dir : "/tmp/runnel-bench";
  std::filesystem::create_directories(path);
  return path;
}

IoThread* SharedIo() {
  static IoThread* io = [] {
    auto started = IoThread::Start({});
    RUNNEL_CHECK(started.ok());
    return started->release();  // lives for the whole process
  }();
  return io;
}

double ProcessCpuSeconds() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

}  // namespace runnel::log::bench
