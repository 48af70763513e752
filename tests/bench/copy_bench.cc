// memcpy against StreamingCopy (common/streaming_copy.h) for the append
// buffers' pattern: a warm source copied at increasing positions into a ring
// of 1 MiB destination buffers.
//
//   copy_bench [--benchmark_filter=...]
//
// Arguments: bytes per copy, then the ring's size in MiB. A 6 MiB ring (the
// broker's two append buffers and 4 MiB tail cache) fits this host's 32 MiB
// L3, so its destination lines are warm unless other work evicts them; a
// 64 MiB ring does not fit. In the broker the destination is cold (the
// copies share the cache with the socket buffers, gRPC's slices and the
// request strings, and the disk reads the buffers), which is where
// StreamingCopy measured faster (docs/benchmarks.md, session 8).

#include <cstdlib>
#include <cstring>
#include <vector>

#include "benchmark/benchmark.h"

#include "common/streaming_copy.h"

namespace runnel {
namespace {

constexpr size_t kBufferBytes = size_t{1} << 20;

template <bool kStreaming>
void BM_CopyIntoRing(benchmark::State& state) {
  const auto size = static_cast<size_t>(state.range(0));
  const auto ring = static_cast<size_t>(state.range(1));
  std::vector<std::vector<char>> buffers(ring,
                                         std::vector<char>(kBufferBytes, 1));
  std::vector<char> src(size, 2);
  size_t buffer = 0;
  size_t pos = 0;
  for (auto _ : state) {
    if (pos + size > kBufferBytes) {
      buffer = (buffer + 1) % ring;
      pos = 0;
    }
    char* dst = buffers[buffer].data() + pos;
    if constexpr (kStreaming) {
      StreamingCopy(dst, src.data(), size);
    } else {
      std::memcpy(dst, src.data(), size);
    }
    benchmark::DoNotOptimize(dst);
    pos += size;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(size));
}

void Args(benchmark::internal::Benchmark* b) {
  for (int64_t ring : {6, 64}) {
    for (int64_t size : {64 << 10, 1000000}) b->Args({size, ring});
  }
}

BENCHMARK(BM_CopyIntoRing<false>)->Name("Memcpy")->Apply(Args);
BENCHMARK(BM_CopyIntoRing<true>)->Name("StreamingCopy")->Apply(Args);

}  // namespace
}  // namespace runnel

BENCHMARK_MAIN();
