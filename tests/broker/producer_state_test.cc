#include "broker/producer_state.h"

#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "broker/errors.h"
#include "common/clock.h"
#include "log/io_thread.h"
#include "log/partition_log.h"
#include "log/record_batch.h"
#include "tests/testing/scoped_temp_dir.h"
#include "tests/testing/status_matchers.h"

namespace runnel::broker {
namespace {

using ::runnel::testing::IsOk;

constexpr int32_t kMaxSeq = std::numeric_limits<int32_t>::max();

ProducerBatchId Id(int64_t pid, int16_t epoch, int32_t seq, int32_t count) {
  return ProducerBatchId{pid, epoch, seq, count};
}

ErrorKind KindOfCheck(const ProducerStateManager& state,
                      std::vector<ProducerBatchId> ids) {
  absl::StatusOr<SequenceDecision> d = state.Check(ids);
  return d.ok() ? ErrorKind::kNone : ErrorKindOf(d.status());
}

// Appends `id` at `first_offset` after checking that it is accepted as new.
void Append(ProducerStateManager& state, const ProducerBatchId& id,
            log::Offset first_offset) {
  absl::StatusOr<SequenceDecision> d = state.Check({id});
  ASSERT_THAT(d, IsOk());
  ASSERT_FALSE(d->duplicate);
  state.OnAppended(id, first_offset, first_offset + id.record_count - 1, 1);
}

TEST(IncrementSequenceTest, WrapsFromInt32MaxToZero) {
  EXPECT_EQ(IncrementSequence(0, 5), 5);
  EXPECT_EQ(IncrementSequence(kMaxSeq - 1, 1), kMaxSeq);
  EXPECT_EQ(IncrementSequence(kMaxSeq, 1), 0);
  EXPECT_EQ(IncrementSequence(kMaxSeq - 2, 5), 2);
  EXPECT_EQ(Id(1, 0, kMaxSeq - 1, 3).last_sequence(), 0);
}

TEST(ProducerStateManagerTest, NewProducerMustStartAtSequenceZero) {
  ProducerStateManager state;
  EXPECT_EQ(KindOfCheck(state, {Id(7, 0, 0, 3)}), ErrorKind::kNone);
  EXPECT_EQ(KindOfCheck(state, {Id(7, 0, 3, 3)}),
            ErrorKind::kUnknownProducerId);
}

TEST(ProducerStateManagerTest, NextSequenceIsAppendedAndExtendsTheRun) {
  ProducerStateManager state;
  Append(state, Id(7, 0, 0, 3), 0);
  Append(state, Id(7, 0, 3, 2), 3);  // right after it: one run
  ASSERT_EQ(state.batches_of(7).size(), 1u);
  EXPECT_EQ(state.batches_of(7).back().first_sequence, 0);
  EXPECT_EQ(state.batches_of(7).back().last_sequence, 4);
  EXPECT_EQ(state.batches_of(7).back().first_offset, 0);
  EXPECT_EQ(state.batches_of(7).back().last_offset, 4);
  Append(state, Id(7, 0, 5, 1), 9);  // another writer came between
  ASSERT_EQ(state.batches_of(7).size(), 2u);
  EXPECT_EQ(state.batches_of(7).back().first_offset, 9);
  // A batch inside a run is a duplicate with its own offsets.
  absl::StatusOr<SequenceDecision> d = state.Check({Id(7, 0, 3, 2)});
  ASSERT_THAT(d, IsOk());
  EXPECT_TRUE(d->duplicate);
  EXPECT_EQ(d->first_offset, 3);
  EXPECT_EQ(d->last_offset, 4);
}

TEST(ProducerStateManagerTest, RemoveExpiredForgetsOnlyIdleProducers) {
  ManualClock clock;
  ProducerStateManager state(&clock);
  Append(state, Id(1, 0, 0, 2), 0);
  clock.AdvanceMs(400);
  Append(state, Id(2, 0, 0, 2), 2);
  clock.AdvanceMs(599);  // producer 1 idle 999 ms, producer 2 599 ms
  EXPECT_EQ(state.RemoveExpired(absl::Milliseconds(1000)), 0u);
  clock.AdvanceMs(1);  // producer 1 idle exactly 1000 ms
  EXPECT_EQ(state.RemoveExpired(absl::Milliseconds(1000)), 1u);
  EXPECT_EQ(state.producer_count(), 1u);
  EXPECT_EQ(state.epoch_of(1), std::nullopt);
  // Producer 1 is now unknown: its next batch is refused, as Kafka does, and
  // the client starts it over at sequence 0; producer 2 goes on.
  EXPECT_EQ(KindOfCheck(state, {Id(1, 0, 2, 1)}),
            ErrorKind::kUnknownProducerId);
  EXPECT_EQ(KindOfCheck(state, {Id(1, 0, 0, 1)}), ErrorKind::kNone);
  EXPECT_EQ(KindOfCheck(state, {Id(2, 0, 2, 1)}), ErrorKind::kNone);
  // An append counts as being seen: producer 2 stays while it writes.
  clock.AdvanceMs(900);
  Append(state, Id(2, 0, 2, 1), 4);
  clock.AdvanceMs(900);
  EXPECT_EQ(state.RemoveExpired(absl::Milliseconds(1000)), 0u);
  EXPECT_EQ(state.producer_count(), 1u);
}

TEST(ProducerStateManagerTest, LoadingASnapshotCountsAsSeeingItsProducers) {
  ManualClock clock;
  ProducerStateManager state(&clock);
  Append(state, Id(1, 0, 0, 2), 0);
  const std::string snapshot = state.EncodeSnapshot(2);
  clock.AdvanceMs(5000);  // the broker was down for a while
  ProducerStateManager loaded(&clock);
  ASSERT_THAT(loaded.LoadSnapshot(snapshot), IsOk());
  EXPECT_EQ(loaded.RemoveExpired(absl::Milliseconds(1000)), 0u);
  clock.AdvanceMs(1000);
  EXPECT_EQ(loaded.RemoveExpired(absl::Milliseconds(1000)), 1u);
}

TEST(ProducerStateManagerTest, SnapshotRoundTripsTheState) {
  ProducerStateManager state;
  Append(state, Id(7, 0, 0, 3), 0);
  Append(state, Id(7, 0, 3, 2), 5);  // a second run
  Append(state, Id(9, 4, 0, 1), 10);
  const std::string bytes = state.EncodeSnapshot(11);
  ProducerStateManager loaded;
  absl::StatusOr<log::Offset> at = loaded.LoadSnapshot(bytes);
  ASSERT_THAT(at, IsOk());
  EXPECT_EQ(*at, 11);
  ASSERT_EQ(loaded.producer_count(), 2u);
  EXPECT_EQ(loaded.epoch_of(9), std::optional<int16_t>(4));
  for (int64_t pid : {7, 9}) {
    const auto want = state.batches_of(pid), got = loaded.batches_of(pid);
    ASSERT_EQ(got.size(), want.size()) << pid;
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(got[i].first_sequence, want[i].first_sequence);
      EXPECT_EQ(got[i].last_sequence, want[i].last_sequence);
      EXPECT_EQ(got[i].first_offset, want[i].first_offset);
      EXPECT_EQ(got[i].last_offset, want[i].last_offset);
      EXPECT_EQ(got[i].timestamp_ms, want[i].timestamp_ms);
    }
  }
  // What the state decides is the same too.
  absl::StatusOr<SequenceDecision> d = loaded.Check({Id(7, 0, 3, 2)});
  ASSERT_THAT(d, IsOk());
  EXPECT_TRUE(d->duplicate);
  EXPECT_EQ(d->first_offset, 5);
  EXPECT_EQ(KindOfCheck(loaded, {Id(7, 0, 6, 1)}),
            ErrorKind::kOutOfOrderSequence);
  EXPECT_EQ(KindOfCheck(loaded, {Id(7, 0, 5, 1)}), ErrorKind::kNone);
}

TEST(ProducerStateManagerTest, DamagedSnapshotIsDataLossAndChangesNothing) {
  ProducerStateManager state;
  Append(state, Id(7, 0, 0, 3), 0);
  const std::string good = state.EncodeSnapshot(3);
  std::vector<std::string> bad = {"", good.substr(0, good.size() - 1),
                                  good + "x"};
  for (size_t i = 0; i < good.size(); i += 7) {
    std::string flipped = good;
    flipped[i] ^= 0x10;
    bad.push_back(flipped);
  }
  ProducerStateManager other;
  Append(other, Id(1, 0, 0, 1), 0);
  for (const std::string& bytes : bad) {
    EXPECT_EQ(other.LoadSnapshot(bytes).status().code(),
              absl::StatusCode::kDataLoss);
    EXPECT_EQ(other.producer_count(), 1u);
    EXPECT_EQ(other.batches_of(1).size(), 1u);
  }
}

TEST(ProducerStateManagerTest, DuplicateOfARecentBatchReturnsItsOffsets) {
  ProducerStateManager state;
  Append(state, Id(7, 0, 0, 3), 10);
  Append(state, Id(7, 0, 3, 2), 20);
  Append(state, Id(7, 0, 5, 1), 30);
  absl::StatusOr<SequenceDecision> d = state.Check({Id(7, 0, 3, 2)});
  ASSERT_THAT(d, IsOk());
  EXPECT_TRUE(d->duplicate);
  EXPECT_EQ(d->first_offset, 20);
  EXPECT_EQ(d->last_offset, 21);
}

TEST(ProducerStateManagerTest, OnlyTheLastFiveRunsAreRemembered) {
  ProducerStateManager state;
  // Other writers between the batches: seven runs of one batch each.
  for (int i = 0; i < 7; ++i) Append(state, Id(7, 0, i, 1), 100 + 10 * i);
  EXPECT_EQ(state.batches_of(7).size(),
            ProducerStateManager::kMaxBatchesPerProducer);
  // Batch 2 is the oldest remembered; batches 0 and 1 are out of order now.
  absl::StatusOr<SequenceDecision> d = state.Check({Id(7, 0, 2, 1)});
  ASSERT_THAT(d, IsOk());
  EXPECT_TRUE(d->duplicate);
  EXPECT_EQ(d->first_offset, 120);
  EXPECT_EQ(KindOfCheck(state, {Id(7, 0, 1, 1)}),
            ErrorKind::kOutOfOrderSequence);
}

TEST(ProducerStateManagerTest, GapIsOutOfOrder) {
  ProducerStateManager state;
  Append(state, Id(7, 0, 0, 3), 0);
  EXPECT_EQ(KindOfCheck(state, {Id(7, 0, 4, 1)}),
            ErrorKind::kOutOfOrderSequence);
  // A range reaching past the remembered ones.
  EXPECT_EQ(KindOfCheck(state, {Id(7, 0, 2, 2)}),
            ErrorKind::kOutOfOrderSequence);
}

TEST(ProducerStateManagerTest, OlderEpochIsFencedAndNewerEpochRestartsAtZero) {
  ProducerStateManager state;
  Append(state, Id(7, 3, 0, 3), 0);
  EXPECT_EQ(KindOfCheck(state, {Id(7, 2, 3, 1)}),
            ErrorKind::kInvalidProducerEpoch);
  EXPECT_EQ(KindOfCheck(state, {Id(7, 4, 3, 1)}),
            ErrorKind::kOutOfOrderSequence);
  Append(state, Id(7, 4, 0, 1), 3);
  EXPECT_EQ(state.epoch_of(7), 4);
  ASSERT_EQ(state.batches_of(7).size(), 1u);
  // The old epoch's batches are no longer duplicates: it is fenced.
  EXPECT_EQ(KindOfCheck(state, {Id(7, 3, 0, 3)}),
            ErrorKind::kInvalidProducerEpoch);
}

TEST(ProducerStateManagerTest, SequenceWrapsAtInt32Max) {
  ProducerStateManager state;
  // A producer close to the end of the sequence space (as if rebuilt).
  state.OnAppended(Id(7, 0, kMaxSeq - 4, 3), 0, 2, 1);
  // kMaxSeq - 1, kMaxSeq, 0, 1: one batch across the wrap, offsets 3..6.
  Append(state, Id(7, 0, kMaxSeq - 1, 4), 3);
  EXPECT_EQ(state.batches_of(7).back().last_sequence, 1);
  Append(state, Id(7, 0, 2, 1), 7);
  absl::StatusOr<SequenceDecision> d = state.Check({Id(7, 0, 0, 2)});
  ASSERT_THAT(d, IsOk());
  EXPECT_TRUE(d->duplicate);
  EXPECT_EQ(d->first_offset, 5);
  d = state.Check({Id(7, 0, kMaxSeq - 3, 2)});
  ASSERT_THAT(d, IsOk());
  EXPECT_TRUE(d->duplicate);
  EXPECT_EQ(d->first_offset, 1);
  EXPECT_EQ(KindOfCheck(state, {Id(7, 0, 3, 1)}), ErrorKind::kNone);
  EXPECT_EQ(KindOfCheck(state, {Id(7, 0, 4, 1)}),
            ErrorKind::kOutOfOrderSequence);
}

TEST(ProducerStateManagerTest, RequestBatchesAreCheckedInOrder) {
  ProducerStateManager state;
  EXPECT_EQ(KindOfCheck(state, {Id(7, 0, 0, 2), Id(7, 0, 2, 2), Id(8, 0, 0, 1),
                                Id(-1, -1, -1, 5)}),
            ErrorKind::kNone);
  EXPECT_EQ(KindOfCheck(state, {Id(7, 0, 0, 2), Id(7, 0, 3, 2)}),
            ErrorKind::kOutOfOrderSequence);
  Append(state, Id(7, 0, 0, 2), 0);
  Append(state, Id(7, 0, 2, 2), 2);
  absl::StatusOr<SequenceDecision> d =
      state.Check({Id(7, 0, 0, 2), Id(7, 0, 2, 2)});
  ASSERT_THAT(d, IsOk());
  EXPECT_TRUE(d->duplicate);
  EXPECT_EQ(d->first_offset, 0);
  EXPECT_EQ(d->last_offset, 3);
  EXPECT_EQ(KindOfCheck(state, {Id(7, 0, 2, 2), Id(7, 0, 4, 1)}),
            ErrorKind::kDuplicateSequence);
  // Duplicates that are not contiguous in the log cannot share one offset.
  Append(state, Id(7, 0, 4, 2), 10);
  EXPECT_EQ(KindOfCheck(state, {Id(7, 0, 2, 2), Id(7, 0, 4, 2)}),
            ErrorKind::kDuplicateSequence);
}

class ProducerStateRebuildTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto io = log::IoThread::Start({});
    ASSERT_THAT(io, IsOk());
    io_ = *std::move(io);
  }
  void TearDown() override {
    if (log_ != nullptr) {
      EXPECT_TRUE(log_->Close().ok());
    }
    log_.reset();
    EXPECT_TRUE(io_->Stop().ok());
  }
  void OpenLog(int64_t segment_bytes = 1 << 20,
               std::string cleanup_policy = "delete") {
    log::PartitionLogOptions options;
    options.dir = dir_.Sub("t-0");
    options.topic = "t";
    options.config.segment_bytes = segment_bytes;
    options.config.cleanup_policy = cleanup_policy;
    options.io = io_.get();
    options.clean_shutdown = false;
    auto log = log::PartitionLog::Open(options);
    ASSERT_THAT(log, IsOk());
    log_ = *std::move(log);
  }
  void AppendBatch(int64_t pid, int16_t epoch, int32_t seq, int count) {
    log::BatchBuilderOptions options;
    options.producer_id = pid;
    options.producer_epoch = epoch;
    options.base_sequence = seq;
    log::RecordBatchBuilder builder(options);
    for (int i = 0; i < count; ++i) {
      builder.Append(1'700'000'000'000 + i, "k", std::string(100, 'v'));
    }
    absl::StatusOr<std::string> batch = builder.Build();
    ASSERT_THAT(batch, IsOk());
    ASSERT_THAT(log_->Append(*std::move(batch), 0), IsOk());
  }

  runnel::testing::ScopedTempDir dir_;
  std::unique_ptr<log::IoThread> io_;
  std::unique_ptr<log::PartitionLog> log_;
};

TEST_F(ProducerStateRebuildTest, RestartRebuildDetectsDuplicatesAndGaps) {
  OpenLog();
  AppendBatch(7, 0, 0, 3);  // offsets 0..2
  AppendBatch(8, 1, 0, 1);  // offset 3
  AppendBatch(7, 0, 3, 2);  // offsets 4..5
  AppendBatch(-1, -1, -1, 4);
  ASSERT_TRUE(log_->Close().ok());
  log_.reset();
  OpenLog();

  ProducerStateManager state;
  ASSERT_TRUE(state.RebuildFromLog(*log_).ok());
  EXPECT_EQ(state.producer_count(), 2u);
  EXPECT_EQ(state.epoch_of(8), 1);
  absl::StatusOr<SequenceDecision> d = state.Check({Id(7, 0, 3, 2)});
  ASSERT_THAT(d, IsOk());
  EXPECT_TRUE(d->duplicate);
  EXPECT_EQ(d->first_offset, 4);
  EXPECT_EQ(d->last_offset, 5);
  EXPECT_EQ(KindOfCheck(state, {Id(7, 0, 5, 1)}), ErrorKind::kNone);
  EXPECT_EQ(KindOfCheck(state, {Id(7, 0, 6, 1)}),
            ErrorKind::kOutOfOrderSequence);
  EXPECT_EQ(KindOfCheck(state, {Id(8, 0, 1, 1)}),
            ErrorKind::kInvalidProducerEpoch);
}

TEST_F(ProducerStateRebuildTest, RebuildScansOnlyTheLastTwoSegments) {
  OpenLog(/*segment_bytes=*/200);  // every batch rolls a new segment
  AppendBatch(5, 0, 0, 1);         // in the oldest segment only
  AppendBatch(7, 0, 0, 1);
  AppendBatch(7, 0, 1, 1);
  ASSERT_GE(log_->segment_count(), 3);

  ProducerStateManager state;
  ASSERT_TRUE(state.RebuildFromLog(*log_).ok());
  EXPECT_EQ(state.epoch_of(5), std::nullopt);
  ASSERT_EQ(state.batches_of(7).size(), 1u);  // one run across segments
  EXPECT_EQ(state.batches_of(7).back().first_offset, 1);
  EXPECT_EQ(state.batches_of(7).back().last_offset, 2);
}

// Compaction removes records from a producer's batch but keeps its
// lastOffsetDelta: a state rebuilt from the log still knows the batch's last
// sequence (Kafka derives it the same way).
TEST_F(ProducerStateRebuildTest, RebuildOverACompactedBatchKeepsItsSequences) {
  OpenLog(/*segment_bytes=*/1 << 20, "compact");
  AppendBatch(7, 0, 0, 10);  // ten records of key "k": offsets 0..9
  ASSERT_TRUE(log_->Roll().ok());
  AppendBatch(8, 0, 0, 1);  // offset 10, in the active segment
  absl::StatusOr<log::PartitionLog::CompactionResult> pass = log_->Compact();
  ASSERT_THAT(pass, IsOk());
  ASSERT_EQ(pass->records_removed, 9);  // only offset 9 of key "k" stays
  ASSERT_TRUE(log_->Close().ok());
  log_.reset();
  OpenLog(/*segment_bytes=*/1 << 20, "compact");

  ProducerStateManager state;
  ASSERT_TRUE(state.RebuildFromLog(*log_).ok());
  absl::StatusOr<SequenceDecision> d = state.Check({Id(7, 0, 0, 10)});
  ASSERT_THAT(d, IsOk());
  EXPECT_TRUE(d->duplicate);
  EXPECT_EQ(d->first_offset, 0);
  EXPECT_EQ(d->last_offset, 9);
  EXPECT_EQ(KindOfCheck(state, {Id(7, 0, 10, 1)}), ErrorKind::kNone);
  EXPECT_EQ(KindOfCheck(state, {Id(7, 0, 11, 1)}),
            ErrorKind::kOutOfOrderSequence);
}

}  // namespace
}  // namespace runnel::broker
