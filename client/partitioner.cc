#include "runnel/partitioner.h"

#include "common/check.h"

namespace runnel::client {

int32_t Murmur2(std::string_view data) {
  // Unsigned arithmetic gives Java's wrapping int multiply; the shifts below
  // are Java's >>> (logical), which unsigned >> is too.
  constexpr uint32_t kSeed = 0x9747b28c;
  constexpr uint32_t kM = 0x5bd1e995;
  constexpr int kR = 24;
  const size_t length = data.size();
  const auto* bytes = reinterpret_cast<const uint8_t*>(data.data());

  uint32_t h = kSeed ^ static_cast<uint32_t>(length);
  const size_t blocks = length / 4;
  for (size_t i = 0; i < blocks; ++i) {
    const size_t i4 = i * 4;
    uint32_t k = static_cast<uint32_t>(bytes[i4]) |
                 (static_cast<uint32_t>(bytes[i4 + 1]) << 8) |
                 (static_cast<uint32_t>(bytes[i4 + 2]) << 16) |
                 (static_cast<uint32_t>(bytes[i4 + 3]) << 24);
    k *= kM;
    k ^= k >> kR;
    k *= kM;
    h *= kM;
    h ^= k;
  }
  const size_t tail = length & ~size_t{3};
  switch (length % 4) {
    case 3:
      h ^= static_cast<uint32_t>(bytes[tail + 2]) << 16;
      [[fallthrough]];
    case 2:
      h ^= static_cast<uint32_t>(bytes[tail + 1]) << 8;
      [[fallthrough]];
    case 1:
      h ^= static_cast<uint32_t>(bytes[tail]);
      h *= kM;
  }
  h ^= h >> 13;
  h *= kM;
  h ^= h >> 15;
  return static_cast<int32_t>(h);
}

int32_t PartitionForKey(std::string_view key, int32_t num_partitions) {
  RUNNEL_CHECK(num_partitions > 0);
  // Kafka's Utils.toPositive: clear the sign bit (not abs()).
  const int32_t positive = Murmur2(key) & 0x7fffffff;
  return positive % num_partitions;
}

StickyPartitioner::StickyPartitioner(uint64_t seed) : rng_(seed) {}

int32_t StickyPartitioner::Partition(const std::string& topic,
                                     int32_t num_partitions) {
  RUNNEL_CHECK(num_partitions > 0);
  if (num_partitions == 1) return 0;  // no choice to remember
  absl::MutexLock lock(&mu_);
  auto it = sticky_.find(topic);
  if (it != sticky_.end() && it->second < num_partitions) return it->second;
  const int32_t p = PickLocked(num_partitions, -1);
  sticky_[topic] = p;
  return p;
}

void StickyPartitioner::OnBatchCompleted(const std::string& topic,
                                         int32_t completed_partition,
                                         int32_t num_partitions) {
  RUNNEL_CHECK(num_partitions > 0);
  if (num_partitions == 1) return;  // stays 0
  absl::MutexLock lock(&mu_);
  auto it = sticky_.find(topic);
  if (it == sticky_.end() || it->second != completed_partition) return;
  it->second = PickLocked(num_partitions, completed_partition);
}

int32_t StickyPartitioner::PickLocked(int32_t num_partitions, int32_t avoid) {
  if (num_partitions == 1) return 0;
  if (avoid < 0 || avoid >= num_partitions) {
    return static_cast<int32_t>(rng_() % static_cast<uint64_t>(num_partitions));
  }
  // Uniform over the other num_partitions - 1 partitions.
  const auto r =
      static_cast<int32_t>(rng_() % static_cast<uint64_t>(num_partitions - 1));
  return r >= avoid ? r + 1 : r;
}

}  // namespace runnel::client
