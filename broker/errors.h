#pragma once

// The broker core's typed error vocabulary. Core functions return
// absl::Status with the most specific absl code (STYLE.md section 4) and,
// where the code alone is ambiguous, an ErrorKind attached as a payload.
// Front doors (gRPC today, the Kafka protocol later) translate ErrorKind into
// their own error codes; for gRPC that happens only in broker/conversions.cc.

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace runnel::broker {

// Mirrors runnel.v1.ErrorCode (proto/error.proto) without depending on it.
enum class ErrorKind {
  kNone,
  kUnknown,
  kUnknownTopicOrPartition,
  kNotLeader,
  kOffsetOutOfRange,
  kCorruptMessage,
  kInvalidRecord,
  kRecordTooLarge,
  kMessageTooLarge,
  kNotEnoughReplicas,
  kRequestTimedOut,
  kInvalidTopic,
  kTopicAlreadyExists,
  kInvalidPartitions,
  kInvalidConfig,
  kInvalidRequest,
  kOutOfOrderSequence,
  kDuplicateSequence,
  kThrottled,
  kStorageError,
  kBrokerNotAvailable,
  kInvalidReplicationFactor,
  kInvalidProducerEpoch,
  kUnknownProducerId,
};

// "UNKNOWN_TOPIC_OR_PARTITION", ... (the proto enumerator names).
absl::string_view ErrorKindName(ErrorKind kind);

// Whether a client retrying the same request may succeed.
bool IsRetriable(ErrorKind kind);

// A status with the absl code that fits `kind` (kNotFound for an unknown
// topic, kOutOfRange for an offset out of range, ...) carrying `kind`.
absl::Status MakeError(ErrorKind kind, absl::string_view message);

// Attaches `kind` to an existing non-OK status (keeps its code and message).
absl::Status WithKind(absl::Status status, ErrorKind kind);

// The kind attached by MakeError/WithKind, else one derived from the code:
// kNotFound -> kUnknownTopicOrPartition, kOutOfRange -> kOffsetOutOfRange,
// kInvalidArgument -> kInvalidRequest, kAlreadyExists -> kTopicAlreadyExists,
// kDeadlineExceeded -> kRequestTimedOut, kUnavailable -> kNotLeader,
// kFailedPrecondition/kCancelled/kAborted -> kBrokerNotAvailable,
// kResourceExhausted/kDataLoss -> kStorageError, OK -> kNone, else kUnknown.
ErrorKind ErrorKindOf(const absl::Status& status);

}  // namespace runnel::broker
