#pragma once

// Helpers shared by the broker tests: building batches, and synchronous
// wrappers over the core's callback API.

#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

#include "broker/broker_core.h"
#include "log/record_batch.h"

namespace runnel::broker::testing {

// A batch of `count` records "key<i>" -> "value<i>" with timestamps from
// `timestamp_ms`. Leader epoch 0 and base offset `base_offset`: what the
// broker stamps, so a batch produced at that offset reads back byte-exact.
inline std::string MakeBatch(int count,
                             int64_t timestamp_ms = 1'700'000'000'000,
                             log::Offset base_offset = 0,
                             size_t value_size = 0) {
  log::BatchBuilderOptions options;
  options.base_offset = base_offset;
  options.partition_leader_epoch = 0;
  log::RecordBatchBuilder builder(options);
  for (int i = 0; i < count; ++i) {
    std::string value = "value" + std::to_string(i);
    if (value.size() < value_size) value.resize(value_size, 'v');
    builder.Append(timestamp_ms + i, "key" + std::to_string(i), value);
  }
  absl::StatusOr<std::string> batch = builder.Build();
  EXPECT_TRUE(batch.ok()) << batch.status();
  return batch.ok() ? *batch : std::string();
}

// Produce to one partition and wait for the answer.
inline ProduceResult ProduceSync(BrokerCore& core, const std::string& topic,
                                 int32_t partition, std::string records,
                                 Acks acks = Acks::kAll) {
  ProduceInput input;
  input.acks = acks;
  input.partitions.push_back({{topic, partition}, std::move(records)});
  absl::Notification done;
  ProduceResult result;
  core.Produce(std::move(input), [&](std::vector<ProduceResult> results) {
    result = results.at(0);
    done.Notify();
  });
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  return result;
}

inline ReadResult FetchSync(BrokerCore& core, const std::string& topic,
                            int32_t partition, log::Offset offset,
                            absl::Duration max_wait = absl::ZeroDuration(),
                            int32_t max_bytes = 0) {
  FetchInput input;
  input.max_wait = max_wait;
  input.partitions.push_back({{topic, partition}, offset, max_bytes});
  absl::Notification done;
  ReadResult result;
  core.Fetch(std::move(input), [&](std::vector<ReadResult> results) {
    result = std::move(results.at(0));
    done.Notify();
  });
  EXPECT_TRUE(
      done.WaitForNotificationWithTimeout(absl::Seconds(30) + max_wait));
  return result;
}

}  // namespace runnel::broker::testing
