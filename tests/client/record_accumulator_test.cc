#include "client/record_accumulator.h"

#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "common/clock.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/wait_for.h"

namespace runnel::client {
namespace {

using ::runnel::testing::IsOk;
using ::runnel::testing::StatusIs;

class RecordAccumulatorTest : public ::testing::Test {
 protected:
  AccumulatorOptions Options() {
    AccumulatorOptions o;
    o.batch_size = 1000;
    o.linger_ms = 10;
    o.buffer_memory = 100000;
    o.max_block_ms = 20;
    o.delivery_timeout_ms = 1000;
    o.retry_backoff_ms = 50;
    o.max_request_size = 4000;
    o.clock = &clock_;
    return o;
  }

  // Appends a record with a 100-byte value and a callback that records the
  // result into results_.
  absl::StatusOr<RecordAccumulator::AppendResult> Add(RecordAccumulator& acc,
                                                      const TopicPartition& tp,
                                                      size_t value_size = 100) {
    return acc.Append(tp, clock_.NowMs(), std::nullopt,
                      std::string(value_size, 'v'), {},
                      [this](const absl::StatusOr<RecordMetadata>& r) {
                        absl::MutexLock lock(&mu_);
                        results_.push_back(r);
                      });
  }

  ManualClock clock_;
  TopicPartition tp0_{"t", 0};
  TopicPartition tp1_{"t", 1};
  absl::Mutex mu_;
  std::vector<absl::StatusOr<RecordMetadata>> results_;
};

TEST_F(RecordAccumulatorTest, RecordsShareBatchUntilBatchSizeReached) {
  RecordAccumulator acc(Options());
  auto first = Add(acc, tp0_);
  ASSERT_THAT(first, IsOk());
  EXPECT_TRUE(first->new_batch);
  int in_first_batch = 1;
  while (true) {
    auto r = Add(acc, tp0_);
    ASSERT_THAT(r, IsOk());
    if (r->new_batch) {
      // The record did not fit: the first batch is closed, not overfilled.
      EXPECT_TRUE(r->batch_closed);
      break;
    }
    EXPECT_FALSE(r->batch_closed);
    ++in_first_batch;
  }
  // ~110 encoded bytes per record against batch.size=1000.
  EXPECT_GE(in_first_batch, 7);
  EXPECT_EQ(acc.incomplete_batches(), 2u);
  clock_.AdvanceMs(10);
  auto drained = acc.Drain(clock_.NowMs());
  ASSERT_EQ(drained.ready.size(), 2u);
  EXPECT_EQ(drained.ready[0]->record_count(), in_first_batch);
  EXPECT_LE(drained.ready[0]->size_bytes(), 1000u);
  EXPECT_EQ(drained.ready[1]->record_count(), 1);
}

TEST_F(RecordAccumulatorTest, BatchIsNotReadyBeforeLingerExpires) {
  RecordAccumulator acc(Options());
  ASSERT_THAT(Add(acc, tp0_), IsOk());
  auto drained = acc.Drain(clock_.NowMs());
  EXPECT_TRUE(drained.ready.empty());
  EXPECT_EQ(drained.next_ready_ms, clock_.NowMs() + 10);

  clock_.AdvanceMs(9);
  EXPECT_TRUE(acc.Drain(clock_.NowMs()).ready.empty());
  clock_.AdvanceMs(1);
  drained = acc.Drain(clock_.NowMs());
  ASSERT_EQ(drained.ready.size(), 1u);
  EXPECT_EQ(drained.ready[0]->record_count(), 1);
}

TEST_F(RecordAccumulatorTest, ClosedBatchIsReadyWithoutLinger) {
  RecordAccumulator acc(Options());
  bool closed = false;
  while (!closed) {
    auto r = Add(acc, tp0_);
    ASSERT_THAT(r, IsOk());
    closed = r->batch_closed;
  }
  // No clock advance: the closed batch goes now, the new one lingers.
  auto drained = acc.Drain(clock_.NowMs());
  ASSERT_EQ(drained.ready.size(), 1u);
  EXPECT_GT(drained.ready[0]->size_bytes(), 800u);
  EXPECT_EQ(drained.next_ready_ms, clock_.NowMs() + 10);  // the new one
}

TEST_F(RecordAccumulatorTest, RecordFillingBatchExactlyMarksItFull) {
  AccumulatorOptions o = Options();
  o.batch_size = 100;
  RecordAccumulator acc(o);
  auto r = Add(acc, tp0_, 200);  // one record larger than batch.size
  ASSERT_THAT(r, IsOk());
  EXPECT_TRUE(r->new_batch);
  EXPECT_TRUE(r->batch_full);
  EXPECT_EQ(acc.Drain(clock_.NowMs()).ready.size(), 1u);
}

TEST_F(RecordAccumulatorTest, InFlightPartitionIsMutedUntilUnmute) {
  RecordAccumulator acc(Options());
  ASSERT_THAT(Add(acc, tp0_), IsOk());
  clock_.AdvanceMs(10);
  auto first = acc.Drain(clock_.NowMs());
  ASSERT_EQ(first.ready.size(), 1u);

  // A second batch for the muted partition waits; another partition does not.
  ASSERT_THAT(Add(acc, tp0_), IsOk());
  ASSERT_THAT(Add(acc, tp1_), IsOk());
  clock_.AdvanceMs(10);
  auto second = acc.Drain(clock_.NowMs());
  ASSERT_EQ(second.ready.size(), 1u);
  EXPECT_EQ(second.ready[0]->topic_partition(), tp1_);

  acc.Unmute(tp0_);
  auto third = acc.Drain(clock_.NowMs());
  ASSERT_EQ(third.ready.size(), 1u);
  EXPECT_EQ(third.ready[0]->topic_partition(), tp0_);
  EXPECT_GT(third.ready[0]->id(), first.ready[0]->id());
}

TEST_F(RecordAccumulatorTest, ReenqueuedBatchGoesFirstAfterBackoff) {
  RecordAccumulator acc(Options());
  ASSERT_THAT(Add(acc, tp0_), IsOk());
  clock_.AdvanceMs(10);
  auto first = acc.Drain(clock_.NowMs());
  ASSERT_EQ(first.ready.size(), 1u);
  const uint64_t retried_id = first.ready[0]->id();
  ASSERT_THAT(Add(acc, tp0_), IsOk());  // a later batch, same partition
  clock_.AdvanceMs(10);

  acc.Reenqueue(std::move(first.ready), clock_.NowMs());
  auto during_backoff = acc.Drain(clock_.NowMs());
  EXPECT_TRUE(during_backoff.ready.empty());
  EXPECT_EQ(during_backoff.next_ready_ms, clock_.NowMs() + 50);

  clock_.AdvanceMs(50);
  auto after = acc.Drain(clock_.NowMs());
  ASSERT_EQ(after.ready.size(), 2u);  // both fit in max_request_size
  EXPECT_EQ(after.ready[0]->id(), retried_id);
  EXPECT_GT(after.ready[1]->id(), retried_id);
}

AccumulatorOptions Idempotent(AccumulatorOptions o) {
  o.idempotent = true;
  o.max_in_flight_per_partition = 5;
  o.max_request_size = 1000;  // one batch per drained request
  return o;
}

TEST_F(RecordAccumulatorTest, IdempotentBatchesGetConsecutiveSequences) {
  RecordAccumulator acc(Idempotent(Options()));
  for (int i = 0; i < 70; ++i) ASSERT_THAT(Add(acc, tp0_), IsOk());
  clock_.AdvanceMs(10);
  // Nothing is drained without a producer identity.
  EXPECT_TRUE(acc.Drain(clock_.NowMs()).ready.empty());
  const ProducerIdentity identity{42, 0, 0};
  std::vector<std::unique_ptr<ProducerBatch>> sent;
  for (int i = 0; i < 7; ++i) {
    auto drained = acc.Drain(clock_.NowMs(), &identity);
    for (auto& b : drained.ready) sent.push_back(std::move(b));
  }
  // Five requests in flight, one batch each.
  ASSERT_EQ(sent.size(), 5u);
  int64_t expected = 0;
  for (auto& b : sent) {
    EXPECT_EQ(b->sequence(), expected);
    EXPECT_EQ(b->generation(), 0);
    expected += b->record_count();
    ASSERT_THAT(b->Seal(), IsOk());
    auto view = log::RecordBatchView::Parse(b->bytes());
    ASSERT_THAT(view, IsOk());
    EXPECT_EQ(view->producer_id(), 42);
    EXPECT_EQ(view->base_sequence(), b->sequence());
    EXPECT_TRUE(view->CrcMatches());
  }
  // A finished request alone does not open the window: the oldest sent
  // batch must be resolved first.
  acc.Unmute(tp0_);
  EXPECT_TRUE(acc.Drain(clock_.NowMs(), &identity).ready.empty());
  acc.Deallocate(std::move(sent[0]));
  auto next = acc.Drain(clock_.NowMs(), &identity);
  ASSERT_EQ(next.ready.size(), 1u);
  EXPECT_EQ(next.ready[0]->sequence(), expected);
}

TEST_F(RecordAccumulatorTest, MaybeWrittenRetryGoesAloneAfterEarlierRequests) {
  RecordAccumulator acc(Idempotent(Options()));
  for (int i = 0; i < 40; ++i) ASSERT_THAT(Add(acc, tp0_), IsOk());
  clock_.AdvanceMs(10);
  const ProducerIdentity identity{42, 0, 0};
  auto a = acc.Drain(clock_.NowMs(), &identity);
  auto b = acc.Drain(clock_.NowMs(), &identity);
  ASSERT_EQ(a.ready.size(), 1u);
  ASSERT_EQ(b.ready.size(), 1u);
  EXPECT_TRUE(a.ready[0]->sent_as_oldest());
  EXPECT_FALSE(b.ready[0]->sent_as_oldest());
  const int64_t a_seq = a.ready[0]->sequence();
  // a's response was lost; b is still in flight: a waits for b.
  a.ready[0]->set_maybe_written();
  acc.Reenqueue(std::move(a.ready), clock_.NowMs(), /*backoff=*/false);
  EXPECT_TRUE(acc.Drain(clock_.NowMs(), &identity).ready.empty());
  // b was refused (out of order behind a): it is queued behind a.
  acc.Reenqueue(std::move(b.ready), clock_.NowMs(), /*backoff=*/false);
  auto retry = acc.Drain(clock_.NowMs(), &identity);
  ASSERT_EQ(retry.ready.size(), 1u);  // alone
  EXPECT_EQ(retry.ready[0]->sequence(), a_seq);
  // Nothing follows it until it is answered.
  EXPECT_TRUE(acc.Drain(clock_.NowMs(), &identity).ready.empty());
  acc.OnAcked(*retry.ready[0]);
  acc.Deallocate(std::move(retry.ready[0]));
  acc.Unmute(tp0_);
  auto rest = acc.Drain(clock_.NowMs(), &identity);
  ASSERT_EQ(rest.ready.size(), 1u);
  EXPECT_GT(rest.ready[0]->sequence(), a_seq);
  EXPECT_TRUE(rest.ready[0]->sent_as_oldest());
}

TEST_F(RecordAccumulatorTest, ResetSequencesRestampsUnderANewIdentity) {
  RecordAccumulator acc(Idempotent(Options()));
  for (int i = 0; i < 20; ++i) ASSERT_THAT(Add(acc, tp0_), IsOk());
  clock_.AdvanceMs(10);
  const ProducerIdentity first{42, 0, 0};
  auto a = acc.Drain(clock_.NowMs(), &first);
  auto b = acc.Drain(clock_.NowMs(), &first);
  ASSERT_EQ(a.ready.size(), 1u);
  ASSERT_EQ(b.ready.size(), 1u);
  ASSERT_THAT(b.ready[0]->Seal(), IsOk());
  // a failed for good; b comes back (out of order) and must start over.
  acc.ResetSequences(tp0_);
  acc.Unmute(tp0_);
  acc.Reenqueue(std::move(b.ready), clock_.NowMs(), /*backoff=*/false);
  auto waiting = acc.Drain(clock_.NowMs(), &first);
  EXPECT_TRUE(waiting.ready.empty());
  EXPECT_TRUE(waiting.needs_new_identity);
  const ProducerIdentity second{43, 0, 1};
  auto again = acc.Drain(clock_.NowMs(), &second);
  ASSERT_GE(again.ready.size(), 1u);
  EXPECT_EQ(again.ready[0]->sequence(), 0);
  EXPECT_EQ(again.ready[0]->generation(), 1);
  // The sealed batch was rewritten: new producer id and sequence, valid CRC.
  auto view = log::RecordBatchView::Parse(again.ready[0]->bytes());
  ASSERT_THAT(view, IsOk());
  EXPECT_EQ(view->producer_id(), 43);
  EXPECT_EQ(view->base_sequence(), 0);
  EXPECT_TRUE(view->CrcMatches());
}

// A batch's buffer starts small (a one-record batch with linger 0 does not
// hold batch.size of memory) and grows in few steps up to its maximum.
TEST_F(RecordAccumulatorTest, ProducerBatchBufferGrowsInStepsUpToItsMaximum) {
  constexpr size_t kMax = 1'000'000;
  ProducerBatch batch({"t", 0}, {}, 0, 1, kMax);
  const std::string value(1024, 'v');
  batch.Append(0, std::nullopt, value, {}, nullptr, 1100);
  EXPECT_LT(batch.buffer_capacity(), size_t{64} << 10);
  std::vector<size_t> capacities = {batch.buffer_capacity()};
  while (batch.size_bytes() + 1100 <= kMax) {
    batch.Append(0, std::nullopt, value, {}, nullptr, 1100);
    ASSERT_GE(batch.buffer_capacity(), batch.size_bytes() - 61);
    if (batch.buffer_capacity() != capacities.back()) {
      capacities.push_back(batch.buffer_capacity());
    }
  }
  // 16 KiB, 64 KiB, 256 KiB, then the maximum: three regrowths.
  EXPECT_EQ(capacities.size(), 4u);
  EXPECT_LE(capacities.back(), kMax + 4096);
  ASSERT_THAT(batch.Seal(), IsOk());
}

TEST_F(RecordAccumulatorTest, ProducerBatchSequenceWrapsAtInt32Max) {
  ProducerBatch batch({"t", 0}, {}, 0, 1);
  batch.Append(0, std::nullopt, "v", {}, nullptr, 10);
  batch.SetProducerState(1, 0, (int64_t{1} << 31) + 5, 0);
  EXPECT_EQ(batch.base_sequence(), 5);
  batch.SetProducerState(1, 0, (int64_t{1} << 31) - 1, 0);
  EXPECT_EQ(batch.base_sequence(), std::numeric_limits<int32_t>::max());
}

TEST_F(RecordAccumulatorTest, DrainTakesAtMostMaxRequestSizePerPartition) {
  RecordAccumulator acc(Options());
  for (int i = 0; i < 60; ++i) ASSERT_THAT(Add(acc, tp0_), IsOk());  // ~8 KB
  clock_.AdvanceMs(10);
  auto drained = acc.Drain(clock_.NowMs());
  ASSERT_GE(drained.ready.size(), 1u);
  size_t bytes = 0;
  for (const auto& b : drained.ready) bytes += b->size_bytes();
  EXPECT_LE(bytes, 4000u);
  EXPECT_GT(acc.incomplete_batches(), drained.ready.size());
}

TEST_F(RecordAccumulatorTest,
       FullBufferFailsAfterMaxBlockWithResourceExhausted) {
  AccumulatorOptions o = Options();
  o.buffer_memory = 1000;
  RecordAccumulator acc(o);
  int accepted = 0;
  absl::Status status;
  for (int i = 0; i < 100 && status.ok(); ++i) {
    auto r = Add(acc, tp0_);
    status = r.status();
    if (r.ok()) ++accepted;
  }
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("buffer"));
  EXPECT_GT(accepted, 0);
  EXPECT_LE(acc.used_memory(), 1000u);
  // The rejected record's callback never runs; the accepted ones are intact.
  absl::MutexLock lock(&mu_);
  EXPECT_TRUE(results_.empty());
}

TEST_F(RecordAccumulatorTest, BlockedAppendProceedsWhenMemoryIsReleased) {
  AccumulatorOptions o = Options();
  o.buffer_memory = 300;  // two records of ~137 bytes
  o.max_block_ms = 60000;
  RecordAccumulator acc(o);
  ASSERT_THAT(Add(acc, tp0_), IsOk());
  ASSERT_THAT(Add(acc, tp0_), IsOk());

  absl::Status blocked_status = absl::UnknownError("not run");
  absl::Notification appended;
  std::thread appender([&] {
    blocked_status = Add(acc, tp0_).status();
    appended.Notify();
  });
  ASSERT_TRUE(testing::WaitFor([&] { return acc.blocked_appends() == 1; },
                               std::chrono::seconds(10)));
  EXPECT_FALSE(appended.HasBeenNotified());

  // A blocked Append makes the lingering batch ready at once.
  auto drained = acc.Drain(clock_.NowMs());
  ASSERT_EQ(drained.ready.size(), 1u);
  RUNNEL_ASSERT_OK(drained.ready[0]->Seal());
  drained.ready[0]->Complete(0, -1);
  acc.Deallocate(std::move(drained.ready[0]));
  appender.join();
  EXPECT_THAT(blocked_status, IsOk());
  absl::MutexLock lock(&mu_);
  ASSERT_EQ(results_.size(), 2u);
  EXPECT_EQ(results_[0]->offset, 0);
  EXPECT_EQ(results_[1]->offset, 1);
}

TEST_F(RecordAccumulatorTest, CompleteReportsConsecutiveOffsetsInOrder) {
  RecordAccumulator acc(Options());
  for (int i = 0; i < 3; ++i) ASSERT_THAT(Add(acc, tp1_, 10), IsOk());
  clock_.AdvanceMs(10);
  auto drained = acc.Drain(clock_.NowMs());
  ASSERT_EQ(drained.ready.size(), 1u);
  RUNNEL_ASSERT_OK(drained.ready[0]->Seal());
  EXPECT_FALSE(drained.ready[0]->bytes().empty());
  drained.ready[0]->Complete(42, -1);
  acc.Deallocate(std::move(drained.ready[0]));
  EXPECT_EQ(acc.used_memory(), 0u);
  absl::MutexLock lock(&mu_);
  ASSERT_EQ(results_.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    ASSERT_THAT(results_[i], IsOk());
    EXPECT_EQ(results_[i]->offset, 42 + i);
    EXPECT_EQ(results_[i]->partition, 1);
    EXPECT_EQ(results_[i]->timestamp_ms, clock_.NowMs() - 10);
  }
}

TEST_F(RecordAccumulatorTest, UnsentBatchExpiresAfterDeliveryTimeout) {
  RecordAccumulator acc(Options());
  ASSERT_THAT(Add(acc, tp0_), IsOk());
  clock_.AdvanceMs(10);
  auto in_flight = acc.Drain(clock_.NowMs());
  ASSERT_EQ(in_flight.ready.size(), 1u);
  ASSERT_THAT(Add(acc, tp0_), IsOk());  // queued behind the muted partition
  clock_.AdvanceMs(1000);
  EXPECT_TRUE(acc.Drain(clock_.NowMs()).expired.empty());  // still muted
  acc.Unmute(tp0_);
  auto drained = acc.Drain(clock_.NowMs());
  EXPECT_TRUE(drained.ready.empty());
  ASSERT_EQ(drained.expired.size(), 1u);
}

TEST_F(RecordAccumulatorTest, FlushMakesBatchesReadyAndWaitsForCompletion) {
  RecordAccumulator acc(Options());
  ASSERT_THAT(Add(acc, tp0_), IsOk());
  absl::Notification flushed;
  std::thread flusher([&] {
    acc.Flush();
    flushed.Notify();
  });
  std::vector<std::unique_ptr<ProducerBatch>> got;
  // No clock advance: only the flush makes the lingering batch ready.
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        auto d = acc.Drain(clock_.NowMs());
        for (auto& b : d.ready) got.push_back(std::move(b));
        return !got.empty();
      },
      std::chrono::seconds(10)));
  EXPECT_FALSE(flushed.HasBeenNotified());
  RUNNEL_ASSERT_OK(got[0]->Seal());
  got[0]->Complete(0, -1);
  acc.Deallocate(std::move(got[0]));
  flusher.join();
  EXPECT_TRUE(flushed.HasBeenNotified());
  EXPECT_EQ(acc.incomplete_batches(), 0u);
}

TEST_F(RecordAccumulatorTest, CloseRejectsAppendsAndReadiesLingeringBatch) {
  RecordAccumulator acc(Options());
  ASSERT_THAT(Add(acc, tp0_), IsOk());
  acc.Close();
  EXPECT_THAT(Add(acc, tp0_), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(acc.Drain(clock_.NowMs()).ready.size(), 1u);
}

TEST_F(RecordAccumulatorTest, RecordLargerThanLimitsIsInvalidArgument) {
  RecordAccumulator acc(Options());
  EXPECT_THAT(Add(acc, tp0_, 5000),
              StatusIs(absl::StatusCode::kInvalidArgument));
  AccumulatorOptions o = Options();
  o.buffer_memory = 500;
  RecordAccumulator small(o);
  EXPECT_THAT(Add(small, tp0_, 600),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(small.incomplete_batches(), 0u);
}

}  // namespace
}  // namespace runnel::client
