#include "broker/errors.h"

#include <optional>
#include <string>

#include "absl/strings/cord.h"

namespace runnel::broker {
namespace {

constexpr absl::string_view kKindPayloadUrl = "runnel.broker/ErrorKind";

struct KindInfo {
  ErrorKind kind;
  absl::string_view name;
  absl::StatusCode code;
  bool retriable;
};

// One row per kind, in enum order.
constexpr KindInfo kKinds[] = {
    {ErrorKind::kNone, "NONE", absl::StatusCode::kOk, false},
    {ErrorKind::kUnknown, "UNKNOWN", absl::StatusCode::kInternal, false},
    {ErrorKind::kUnknownTopicOrPartition, "UNKNOWN_TOPIC_OR_PARTITION",
     absl::StatusCode::kNotFound, true},
    {ErrorKind::kNotLeader, "NOT_LEADER", absl::StatusCode::kUnavailable, true},
    {ErrorKind::kOffsetOutOfRange, "OFFSET_OUT_OF_RANGE",
     absl::StatusCode::kOutOfRange, false},
    {ErrorKind::kCorruptMessage, "CORRUPT_MESSAGE",
     absl::StatusCode::kInvalidArgument, false},
    {ErrorKind::kInvalidRecord, "INVALID_RECORD",
     absl::StatusCode::kInvalidArgument, false},
    {ErrorKind::kRecordTooLarge, "RECORD_TOO_LARGE",
     absl::StatusCode::kInvalidArgument, false},
    {ErrorKind::kMessageTooLarge, "MESSAGE_TOO_LARGE",
     absl::StatusCode::kInvalidArgument, false},
    {ErrorKind::kNotEnoughReplicas, "NOT_ENOUGH_REPLICAS",
     absl::StatusCode::kUnavailable, true},
    {ErrorKind::kRequestTimedOut, "REQUEST_TIMED_OUT",
     absl::StatusCode::kDeadlineExceeded, true},
    {ErrorKind::kInvalidTopic, "INVALID_TOPIC",
     absl::StatusCode::kInvalidArgument, false},
    {ErrorKind::kTopicAlreadyExists, "TOPIC_ALREADY_EXISTS",
     absl::StatusCode::kAlreadyExists, false},
    {ErrorKind::kInvalidPartitions, "INVALID_PARTITIONS",
     absl::StatusCode::kInvalidArgument, false},
    {ErrorKind::kInvalidConfig, "INVALID_CONFIG",
     absl::StatusCode::kInvalidArgument, false},
    {ErrorKind::kInvalidRequest, "INVALID_REQUEST",
     absl::StatusCode::kInvalidArgument, false},
    {ErrorKind::kOutOfOrderSequence, "OUT_OF_ORDER_SEQUENCE",
     absl::StatusCode::kFailedPrecondition, false},
    {ErrorKind::kDuplicateSequence, "DUPLICATE_SEQUENCE",
     absl::StatusCode::kAlreadyExists, false},
    {ErrorKind::kThrottled, "THROTTLED", absl::StatusCode::kResourceExhausted,
     true},
    {ErrorKind::kStorageError, "STORAGE_ERROR", absl::StatusCode::kInternal,
     true},
    {ErrorKind::kBrokerNotAvailable, "BROKER_NOT_AVAILABLE",
     absl::StatusCode::kUnavailable, true},
    {ErrorKind::kInvalidReplicationFactor, "INVALID_REPLICATION_FACTOR",
     absl::StatusCode::kInvalidArgument, false},
    {ErrorKind::kInvalidProducerEpoch, "INVALID_PRODUCER_EPOCH",
     absl::StatusCode::kAborted, false},
    {ErrorKind::kUnknownProducerId, "UNKNOWN_PRODUCER_ID",
     absl::StatusCode::kFailedPrecondition, false},
};

const KindInfo& InfoFor(ErrorKind kind) {
  return kKinds[static_cast<size_t>(kind)];
}

std::optional<ErrorKind> AttachedKind(const absl::Status& status) {
  auto payload = status.GetPayload(kKindPayloadUrl);
  if (!payload.has_value()) return std::nullopt;
  std::string text(*payload);
  for (const KindInfo& info : kKinds) {
    if (info.name == text) return info.kind;
  }
  return std::nullopt;
}

}  // namespace

absl::string_view ErrorKindName(ErrorKind kind) { return InfoFor(kind).name; }

bool IsRetriable(ErrorKind kind) { return InfoFor(kind).retriable; }

absl::Status MakeError(ErrorKind kind, absl::string_view message) {
  const KindInfo& info = InfoFor(kind);
  if (info.code == absl::StatusCode::kOk) return absl::OkStatus();
  absl::Status status(info.code, message);
  status.SetPayload(kKindPayloadUrl, absl::Cord(info.name));
  return status;
}

absl::Status WithKind(absl::Status status, ErrorKind kind) {
  if (status.ok() || kind == ErrorKind::kNone) return status;
  status.SetPayload(kKindPayloadUrl, absl::Cord(InfoFor(kind).name));
  return status;
}

ErrorKind ErrorKindOf(const absl::Status& status) {
  if (status.ok()) return ErrorKind::kNone;
  if (std::optional<ErrorKind> kind = AttachedKind(status)) return *kind;
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
      return ErrorKind::kUnknownTopicOrPartition;
    case absl::StatusCode::kOutOfRange:
      return ErrorKind::kOffsetOutOfRange;
    case absl::StatusCode::kInvalidArgument:
      return ErrorKind::kInvalidRequest;
    case absl::StatusCode::kAlreadyExists:
      return ErrorKind::kTopicAlreadyExists;
    case absl::StatusCode::kDeadlineExceeded:
      return ErrorKind::kRequestTimedOut;
    case absl::StatusCode::kUnavailable:
      return ErrorKind::kNotLeader;
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kAborted:
      return ErrorKind::kBrokerNotAvailable;
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kDataLoss:
      return ErrorKind::kStorageError;
    default:
      return ErrorKind::kUnknown;
  }
}

}  // namespace runnel::broker
