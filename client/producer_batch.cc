#include "client/producer_batch.h"

#include <utility>

#include "common/check.h"

namespace runnel::client {

ProducerBatch::ProducerBatch(TopicPartition tp,
                             const log::BatchBuilderOptions& options,
                             int64_t created_ms, uint64_t id)
    : tp_(std::move(tp)), id_(id), created_ms_(created_ms), builder_(options) {}

void ProducerBatch::Append(int64_t timestamp_ms,
                           std::optional<std::string_view> key,
                           std::optional<std::string_view> value,
                           const std::vector<log::RecordHeader>& headers,
                           DeliveryCallback callback, size_t reserved_bytes) {
  RUNNEL_CHECK(!sealed_);
  builder_.Append(timestamp_ms, key, value, headers);
  pending_.push_back(Pending{std::move(callback), timestamp_ms});
  reserved_bytes_ += reserved_bytes;
}

absl::Status ProducerBatch::Seal() {
  if (sealed_) return absl::OkStatus();
  absl::StatusOr<std::string> built = builder_.Build();
  if (!built.ok()) return built.status();
  bytes_ = std::move(built).value();
  sealed_ = true;
  return absl::OkStatus();
}

void ProducerBatch::Complete(int64_t base_offset, int64_t log_append_time_ms) {
  RUNNEL_CHECK(!done_);
  done_ = true;
  for (size_t i = 0; i < pending_.size(); ++i) {
    RecordMetadata md;
    md.topic = tp_.topic;
    md.partition = tp_.partition;
    md.offset = base_offset < 0 ? -1 : base_offset + static_cast<int64_t>(i);
    md.timestamp_ms =
        log_append_time_ms >= 0 ? log_append_time_ms : pending_[i].timestamp_ms;
    if (pending_[i].callback) pending_[i].callback(md);
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
