// The producer's per-record cost without the network or a broker:
//
//   client_bench [--benchmark_filter=...]
//
// AccumulatorCycle/SIZE: RecordAccumulator::Append of SIZE-byte values, with
// the record timestamp from the system clock as Producer::Send takes it, into
// 1 MB batches; each full batch is drained, sealed (CRC32C), completed (every
// delivery callback runs) and deallocated, as the sender does once the broker
// answers. One thread and no I/O, so the figure (CPU ns per record) moves
// with the code, not with the host's load; callgrind counts it exactly.

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "benchmark/benchmark.h"

#include "client/record_accumulator.h"
#include "common/check.h"
#include "common/clock.h"

namespace runnel::client {
namespace {

void BM_AccumulatorCycle(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  AccumulatorOptions options;
  options.batch_size = 1'000'000;
  options.buffer_memory = size_t{256} << 20;
  options.max_request_size = 1 << 20;
  Clock* clock = SystemClock::Default();
  options.clock = clock;
  RecordAccumulator accumulator(options);
  const TopicPartition tp{"bench", 0};
  const std::string value(size, 'x');
  int64_t acked = 0;
  int64_t batches = 0;
  for (auto _ : state) {
    absl::StatusOr<RecordAccumulator::AppendResult> result = accumulator.Append(
        tp, clock->NowMs(), std::nullopt, value, {},
        [&acked](const absl::StatusOr<RecordMetadata>& metadata) {
          if (metadata.ok()) ++acked;
        });
    RUNNEL_CHECK_MSG(result.ok(), result.status().ToString().c_str());
    if (!result->batch_closed) continue;
    RecordAccumulator::DrainResult drained = accumulator.Drain(clock->NowMs());
    for (auto& batch : drained.ready) {
      RUNNEL_CHECK(batch->Seal().ok());
      batch->Complete(0, -1);
      accumulator.Deallocate(std::move(batch));
      ++batches;
    }
    accumulator.Unmute(tp);
  }
  benchmark::DoNotOptimize(acked);
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(size));
  state.counters["batches"] = static_cast<double>(batches);
}
BENCHMARK(BM_AccumulatorCycle)->Arg(100)->Arg(1024);

}  // namespace
}  // namespace runnel::client

BENCHMARK_MAIN();
