#include "broker/producer_state.h"

#include <algorithm>
#include <cstddef>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

#include "broker/errors.h"
#include "common/check.h"
#include "common/crc32c.h"
#include "common/endian.h"
#include "common/status_macros.h"

namespace runnel::broker {
namespace {

constexpr size_t kRebuildReadBytes = size_t{4} << 20;
// The runs of a producer cover at most this many records (a quarter of the
// sequence space), so that a sequence's place among them is unambiguous.
constexpr int64_t kMaxRunRecords = int64_t{1} << 30;

// Kafka's inSequence: `next` directly follows `last`, wrapping at INT32_MAX.
bool InSequence(int32_t last, int32_t next) {
  return static_cast<int64_t>(next) == static_cast<int64_t>(last) + 1 ||
         (next == 0 && last == std::numeric_limits<int32_t>::max());
}

std::string Describe(const ProducerBatchId& b) {
  return absl::StrCat("producer ", b.producer_id, " epoch ", b.producer_epoch,
                      " sequences ", b.base_sequence, "..", b.last_sequence());
}

}  // namespace

int32_t IncrementSequence(int32_t sequence, int32_t increment) {
  RUNNEL_DCHECK(increment >= 0);
  constexpr int32_t kMax = std::numeric_limits<int32_t>::max();
  if (sequence > kMax - increment) return increment - (kMax - sequence) - 1;
  return sequence + increment;
}

ProducerBatchId ProducerBatchId::Of(const log::RecordBatchView& batch) {
  // The sequence span is lastOffsetDelta + 1, as in Kafka: the same as the
  // record count in a batch a producer sent, but compaction removes records
  // and keeps lastOffsetDelta (docs/log-format.md, "Compaction"), and a
  // producer state rebuilt from the log must still see the batch's last
  // sequence.
  return ProducerBatchId{batch.producer_id(), batch.producer_epoch(),
                         batch.base_sequence(), batch.last_offset_delta() + 1};
}

std::optional<ProducerBatchMetadata> ProducerStateManager::FindDuplicate(
    const Entry& entry, const ProducerBatchId& batch) {
  if (entry.epoch != batch.producer_epoch) return std::nullopt;
  constexpr int64_t kSpace = int64_t{1} << 31;
  const int64_t length = batch.record_count - 1;
  for (const ProducerBatchMetadata& run : entry.batches) {
    // Sequences and offsets advance together inside a run, one per record.
    const int64_t into =
        (batch.base_sequence - run.first_sequence + kSpace) % kSpace;
    const int64_t run_length = run.last_offset - run.first_offset;
    if (into + length > run_length) continue;
    ProducerBatchMetadata dup = run;
    dup.first_sequence = batch.base_sequence;
    dup.last_sequence = batch.last_sequence();
    dup.first_offset = run.first_offset + into;
    dup.last_offset = dup.first_offset + length;
    return dup;
  }
  return std::nullopt;
}

absl::Status ProducerStateManager::CheckNext(const ProducerBatchId& batch,
                                             Tentative& t) {
  if (batch.base_sequence < 0 || batch.record_count <= 0) {
    return MakeError(ErrorKind::kOutOfOrderSequence,
                     absl::StrCat(Describe(batch), ": invalid sequence"));
  }
  if (t.has_epoch && batch.producer_epoch < t.epoch) {
    return MakeError(
        ErrorKind::kInvalidProducerEpoch,
        absl::StrCat(Describe(batch), ": fenced by epoch ", t.epoch));
  }
  if (!t.has_epoch || batch.producer_epoch > t.epoch) {
    // A new producer, or a new epoch of a known one: sequences restart at 0.
    if (batch.base_sequence != 0) {
      return MakeError(
          t.has_epoch ? ErrorKind::kOutOfOrderSequence
                      : ErrorKind::kUnknownProducerId,
          absl::StrCat(Describe(batch),
                       t.has_epoch ? ": a new epoch must start at sequence 0"
                                   : ": unknown producer id and the first "
                                     "sequence is not 0"));
    }
  } else if (!t.last_sequence.has_value() ||
             !InSequence(*t.last_sequence, batch.base_sequence)) {
    return MakeError(ErrorKind::kOutOfOrderSequence,
                     absl::StrCat(Describe(batch), ": expected sequence ",
                                  t.last_sequence.has_value()
                                      ? IncrementSequence(*t.last_sequence, 1)
                                      : 0));
  }
  t.has_epoch = true;
  t.epoch = batch.producer_epoch;
  t.last_sequence = batch.last_sequence();
  t.appended_in_request = true;
  return absl::OkStatus();
}

absl::StatusOr<SequenceDecision> ProducerStateManager::Check(
    absl::Span<const ProducerBatchId> batches) const {
  absl::flat_hash_map<int64_t, Tentative> tentative;
  SequenceDecision decision;
  size_t duplicates = 0;
  size_t fresh = 0;
  for (const ProducerBatchId& batch : batches) {
    if (!batch.idempotent()) {
      ++fresh;
      continue;
    }
    auto [it, inserted] = tentative.try_emplace(batch.producer_id);
    Tentative& t = it->second;
    if (inserted) {
      auto found = producers_.find(batch.producer_id);
      if (found != producers_.end()) {
        t.entry = &found->second;
        t.has_epoch = true;
        t.epoch = found->second.epoch;
        if (!found->second.batches.empty()) {
          t.last_sequence = found->second.batches.back().last_sequence;
        }
      }
    }
    if (t.entry != nullptr && !t.appended_in_request) {
      if (std::optional<ProducerBatchMetadata> dup =
              FindDuplicate(*t.entry, batch)) {
        // The answer has one base offset: duplicates must be contiguous.
        if (duplicates > 0 && dup->first_offset != decision.last_offset + 1) {
          return MakeError(ErrorKind::kDuplicateSequence,
                           "the request's duplicate batches are not "
                           "contiguous in the log; retry them one by one");
        }
        if (duplicates == 0) decision.first_offset = dup->first_offset;
        decision.last_offset = dup->last_offset;
        ++duplicates;
        continue;
      }
    }
    RUNNEL_RETURN_IF_ERROR(CheckNext(batch, t));
    ++fresh;
  }
  if (duplicates > 0 && fresh > 0) {
    return MakeError(ErrorKind::kDuplicateSequence,
                     "the request mixes duplicate batches with new ones; "
                     "retry the duplicates alone");
  }
  decision.duplicate = duplicates > 0;
  return decision;
}

bool ProducerStateManager::AwaitsEarlierBatch(
    absl::Span<const ProducerBatchId> batches) const {
  absl::flat_hash_map<int64_t, bool> seen;
  for (const ProducerBatchId& batch : batches) {
    if (!batch.idempotent() || !seen.emplace(batch.producer_id, true).second) {
      continue;
    }
    auto it = producers_.find(batch.producer_id);
    if (it == producers_.end()) {
      if (batch.base_sequence > 0) return true;
      continue;
    }
    const Entry& entry = it->second;
    if (entry.epoch != batch.producer_epoch || entry.batches.empty()) continue;
    const int64_t expected =
        IncrementSequence(entry.batches.back().last_sequence, 1);
    // Ahead by less than half the sequence space (wrapping).
    const int64_t ahead = (static_cast<int64_t>(batch.base_sequence) -
                           expected + (int64_t{1} << 31)) %
                          (int64_t{1} << 31);
    if (ahead > 0 && ahead < (int64_t{1} << 30)) return true;
  }
  return false;
}

void ProducerStateManager::OnAppended(const ProducerBatchId& batch,
                                      log::Offset first_offset,
                                      log::Offset last_offset,
                                      int64_t timestamp_ms) {
  if (!batch.idempotent()) return;
  Entry& entry = producers_[batch.producer_id];
  entry.last_seen_ms = clock_->NowMs();
  if (batch.producer_epoch != entry.epoch) {
    entry.batches.clear();
    entry.epoch = batch.producer_epoch;
  }
  ProducerBatchMetadata* last =
      entry.batches.empty() ? nullptr : &entry.batches.back();
  if (last != nullptr && InSequence(last->last_sequence, batch.base_sequence) &&
      first_offset == last->last_offset + 1 &&
      last_offset - last->first_offset < kMaxRunRecords) {
    // Right after the previous batch in both sequence and offset: one run.
    last->last_sequence = batch.last_sequence();
    last->last_offset = last_offset;
    last->timestamp_ms = std::max(last->timestamp_ms, timestamp_ms);
  } else {
    entry.batches.push_back(
        ProducerBatchMetadata{batch.base_sequence, batch.last_sequence(),
                              first_offset, last_offset, timestamp_ms});
  }
  // The remembered runs stay within the last 2^30 sequences of the
  // producer, so that a sequence reused after the wrap is never mistaken
  // for a remembered one.
  int64_t records = 0;
  for (const ProducerBatchMetadata& run : entry.batches) {
    records += run.last_offset - run.first_offset + 1;
  }
  while (entry.batches.size() > kMaxBatchesPerProducer ||
         (entry.batches.size() > 1 && records > kMaxRunRecords)) {
    records -= entry.batches.front().last_offset -
               entry.batches.front().first_offset + 1;
    entry.batches.pop_front();
  }
}

log::Offset ProducerStateManager::RebuildStart(const log::PartitionLog& log,
                                               int segments) {
  const std::vector<log::Offset> bases = log.segment_base_offsets();
  if (segments > 0 && bases.size() > static_cast<size_t>(segments)) {
    return bases[bases.size() - segments];
  }
  return log.log_start_offset();
}

absl::Status ProducerStateManager::RebuildFromLog(log::PartitionLog& log,
                                                  int segments) {
  // ApplyLogFrom starts at the log start at the earliest.
  return ApplyLogFrom(log, RebuildStart(log, segments));
}

absl::Status ProducerStateManager::ApplyLogFrom(log::PartitionLog& log,
                                                log::Offset offset) {
  offset = std::max(offset, log.log_start_offset());
  while (offset < log.log_end_offset()) {
    RUNNEL_ASSIGN_OR_RETURN(log::PartitionLog::ReadResult read,
                            log.Read(offset, kRebuildReadBytes));
    if (read.bytes.empty()) break;
    RUNNEL_ASSIGN_OR_RETURN(
        std::vector<log::RecordBatchView> views,
        log::SplitBatches(read.bytes, log::BatchSource::kDisk));
    for (const log::RecordBatchView& view : views) {
      OnAppended(ProducerBatchId::Of(view), view.base_offset(),
                 view.last_offset(), view.max_timestamp());
    }
    RUNNEL_CHECK(read.next_offset > offset);
    offset = read.next_offset;
  }
  return absl::OkStatus();
}

namespace {

// producer-state.snapshot (docs/log-format.md), big-endian:
//   magic "RNPS" | version u16 | reserved u16 | offset i64 | producers u32
//   per producer: id i64 | epoch i16 | runs u16
//     per run: first_sequence i32 | last_sequence i32 | first_offset i64 |
//              last_offset i64 | timestamp_ms i64
//   crc32c u32 of every byte before it
constexpr char kSnapshotMagic[4] = {'R', 'N', 'P', 'S'};
constexpr uint16_t kSnapshotVersion = 1;
constexpr size_t kSnapshotHeaderBytes = 4 + 2 + 2 + 8 + 4;
constexpr size_t kProducerBytes = 8 + 2 + 2;
constexpr size_t kRunBytes = 4 + 4 + 8 + 8 + 8;

void PutBe16(std::string& out, uint16_t v) {
  char b[2];
  StoreBe16(b, v);
  out.append(b, 2);
}
void PutBe32(std::string& out, uint32_t v) {
  char b[4];
  StoreBe32(b, v);
  out.append(b, 4);
}
void PutBe64(std::string& out, uint64_t v) {
  char b[8];
  StoreBe64(b, v);
  out.append(b, 8);
}

}  // namespace

std::string ProducerStateManager::EncodeSnapshot(log::Offset offset) const {
  std::string out(kSnapshotMagic, sizeof(kSnapshotMagic));
  PutBe16(out, kSnapshotVersion);
  PutBe16(out, 0);
  PutBe64(out, static_cast<uint64_t>(offset));
  PutBe32(out, static_cast<uint32_t>(producers_.size()));
  for (const auto& [id, entry] : producers_) {
    PutBe64(out, static_cast<uint64_t>(id));
    PutBe16(out, static_cast<uint16_t>(entry.epoch));
    PutBe16(out, static_cast<uint16_t>(entry.batches.size()));
    for (const ProducerBatchMetadata& run : entry.batches) {
      PutBe32(out, static_cast<uint32_t>(run.first_sequence));
      PutBe32(out, static_cast<uint32_t>(run.last_sequence));
      PutBe64(out, static_cast<uint64_t>(run.first_offset));
      PutBe64(out, static_cast<uint64_t>(run.last_offset));
      PutBe64(out, static_cast<uint64_t>(run.timestamp_ms));
    }
  }
  PutBe32(out, Crc32c(out));
  return out;
}

absl::StatusOr<log::Offset> ProducerStateManager::LoadSnapshot(
    std::string_view bytes) {
  auto corrupt = [](const char* why) {
    return absl::DataLossError(absl::StrCat("producer-state snapshot: ", why));
  };
  if (bytes.size() < kSnapshotHeaderBytes + 4) return corrupt("truncated");
  const std::string_view body = bytes.substr(0, bytes.size() - 4);
  if (LoadBe32(bytes.data() + body.size()) != Crc32c(body)) {
    return corrupt("crc mismatch");
  }
  if (body.substr(0, 4) != std::string_view(kSnapshotMagic, 4)) {
    return corrupt("bad magic");
  }
  const char* p = body.data() + 4;
  if (LoadBe16(p) != kSnapshotVersion) return corrupt("unknown version");
  const auto offset = static_cast<log::Offset>(LoadBe64(p + 4));
  const uint32_t count = LoadBe32(p + 12);
  p = body.data() + kSnapshotHeaderBytes;
  const char* const end = body.data() + body.size();
  absl::flat_hash_map<int64_t, Entry> producers;
  const int64_t now_ms = clock_->NowMs();
  for (uint32_t i = 0; i < count; ++i) {
    if (end - p < static_cast<ptrdiff_t>(kProducerBytes)) {
      return corrupt("truncated producer");
    }
    const auto id = static_cast<int64_t>(LoadBe64(p));
    Entry entry;
    entry.last_seen_ms = now_ms;
    entry.epoch = static_cast<int16_t>(LoadBe16(p + 8));
    const uint16_t runs = LoadBe16(p + 10);
    p += kProducerBytes;
    if (end - p < static_cast<ptrdiff_t>(runs * kRunBytes)) {
      return corrupt("truncated runs");
    }
    for (uint16_t r = 0; r < runs; ++r, p += kRunBytes) {
      entry.batches.push_back(
          ProducerBatchMetadata{static_cast<int32_t>(LoadBe32(p)),
                                static_cast<int32_t>(LoadBe32(p + 4)),
                                static_cast<log::Offset>(LoadBe64(p + 8)),
                                static_cast<log::Offset>(LoadBe64(p + 16)),
                                static_cast<int64_t>(LoadBe64(p + 24))});
    }
    if (id < 0 || !producers.emplace(id, std::move(entry)).second) {
      return corrupt("bad or repeated producer id");
    }
  }
  if (p != end) return corrupt("trailing bytes");
  producers_ = std::move(producers);
  return offset;
}

size_t ProducerStateManager::RemoveExpired(absl::Duration expiration) {
  const int64_t cutoff =
      clock_->NowMs() - absl::ToInt64Milliseconds(expiration);
  return absl::erase_if(producers_, [cutoff](const auto& kv) {
    return kv.second.last_seen_ms <= cutoff;
  });
}

std::optional<int16_t> ProducerStateManager::epoch_of(
    int64_t producer_id) const {
  auto it = producers_.find(producer_id);
  if (it == producers_.end()) return std::nullopt;
  return it->second.epoch;
}

std::deque<ProducerBatchMetadata> ProducerStateManager::batches_of(
    int64_t producer_id) const {
  auto it = producers_.find(producer_id);
  if (it == producers_.end()) return {};
  return it->second.batches;
}

}  // namespace runnel::broker
