#include "client/producer_batch.h"

#include <algorithm>
#include <utility>

#include "common/check.h"
#include "common/crc32c.h"
#include "common/endian.h"

namespace runnel::client {

namespace {
constexpr size_t kFirstReserveBytes = 16 << 10;
}  // namespace

ProducerBatch::ProducerBatch(TopicPartition tp,
                             const log::BatchBuilderOptions& options,
                             int64_t created_ms, uint64_t id, size_t max_bytes)
    : tp_(std::move(tp)),
      id_(id),
      created_ms_(created_ms),
      max_bytes_(max_bytes),
      builder_(options) {
  builder_.Reserve(std::min<size_t>(max_bytes_, kFirstReserveBytes));
}

void ProducerBatch::Append(int64_t timestamp_ms,
                           std::optional<std::string_view> key,
                           std::optional<std::string_view> value,
                           std::span<const log::RecordHeaderView> headers,
                           DeliveryCallback callback, size_t reserved_bytes) {
  RUNNEL_CHECK(!sealed_);
  const size_t need = builder_.uncompressed_size_bytes() -
                      log::kBatchHeaderSize + reserved_bytes;
  if (need > builder_.capacity_bytes()) {
    builder_.Reserve(std::max(
        need, std::min<size_t>(max_bytes_, 4 * builder_.capacity_bytes())));
  }
  builder_.Append(timestamp_ms, key, value, headers);
  pending_.push_back(Pending{std::move(callback), timestamp_ms});
  reserved_bytes_ += reserved_bytes;
}

absl::Status ProducerBatch::Seal() {
  if (sealed_) return absl::OkStatus();
  absl::StatusOr<std::string> built = builder_.Build();
  if (!built.ok()) return built.status();
  bytes_ = std::make_shared<std::string>(std::move(built).value());
  sealed_ = true;
  return absl::OkStatus();
}

int32_t ProducerBatch::base_sequence() const {
  if (sequence_ < 0) return -1;
  return static_cast<int32_t>(sequence_ % (int64_t{1} << 31));
}

void ProducerBatch::SetProducerState(int64_t producer_id,
                                     int16_t producer_epoch, int64_t sequence,
                                     int64_t generation) {
  RUNNEL_CHECK(sequence >= 0);
  sequence_ = sequence;
  generation_ = generation;
  if (!sealed_) {
    builder_.SetProducerState(producer_id, producer_epoch, base_sequence());
    return;
  }
  // A request of an earlier attempt may still share the bytes (gRPC can
  // hold its slices a moment after the answer): rewrite a copy.
  if (bytes_.use_count() > 1) bytes_ = std::make_shared<std::string>(*bytes_);
  // The producer fields are inside the CRC: rewrite them, then the CRC.
  char* header = bytes_->data();
  StoreBe64(header + log::kProducerIdPos, static_cast<uint64_t>(producer_id));
  StoreBe16(header + log::kProducerEpochPos,
            static_cast<uint16_t>(producer_epoch));
  StoreBe32(header + log::kBaseSequencePos,
            static_cast<uint32_t>(base_sequence()));
  StoreBe32(header + log::kCrcPos,
            Crc32c(header + log::kAttributesPos,
                   bytes_->size() - log::kAttributesPos));
}

void ProducerBatch::Complete(int64_t base_offset, int64_t log_append_time_ms) {
  RUNNEL_CHECK(!done_);
  done_ = true;
  // One result for the whole batch, updated per record: the callbacks take it
  // by const reference, so the topic name is copied once per batch, not
  // (twice) per record.
  absl::StatusOr<RecordMetadata> result(
      RecordMetadata{.topic = tp_.topic, .partition = tp_.partition});
  for (size_t i = 0; i < pending_.size(); ++i) {
    result->offset =
        base_offset < 0 ? -1 : base_offset + static_cast<int64_t>(i);
    result->timestamp_ms =
        log_append_time_ms >= 0 ? log_append_time_ms : pending_[i].timestamp_ms;
    if (pending_[i].callback) pending_[i].callback(result);
  }
}

void ProducerBatch::Fail(const absl::Status& status) {
  RUNNEL_CHECK(!done_);
  RUNNEL_CHECK(!status.ok());
  done_ = true;
  for (Pending& p : pending_) {
    if (p.callback) p.callback(status);
  }
}

}  // namespace runnel::client
