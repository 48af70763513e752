#pragma once

// The one place that converts between runnel.v1 protobuf messages and the
// broker core's types, and from absl::Status to grpc::Status / v1::Error.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

#include "broker/broker_core.h"
#include "broker/errors.h"
#include "broker/partition.h"
#include "broker/topic_manager.h"
#include "proto/admin_service.pb.h"
#include "proto/broker_service.pb.h"
#include "proto/error.pb.h"

namespace runnel::broker {

// Same code numbering; the message is kept.
grpc::Status ToGrpcStatus(const absl::Status& status);

v1::ErrorCode ToProtoErrorCode(ErrorKind kind);
// Fills `error` (code, retriable, message) from a typed status; clears it
// for OK.
void ToProtoError(const absl::Status& status, v1::Error* error);

Acks AcksFromProto(v1::Acks acks);

// Produce. `request` is consumed: the records bytes are moved out of it.
ProduceInput ProduceInputFromProto(v1::ProduceRequest* request);
// `request` gives the topic/partition layout; `results` are flat, in the
// same order. Returns the number of partitions with an error.
int ProduceResponseToProto(const v1::ProduceRequest& request, Acks acks,
                           std::vector<ProduceResult> results,
                           v1::ProduceResponse* response);

// Fetch.
FetchInput FetchInputFromProto(const v1::FetchRequest& request);
// Moves the records into `response`. Returns the partitions with an error.
int FetchResponseToProto(const FetchInput& input,
                         std::vector<ReadResult> results,
                         v1::FetchResponse* response);

// Admin.
NewTopicSpec NewTopicFromProto(const v1::NewTopic& topic);
std::vector<ConfigChange> ConfigChangesFromProto(
    const v1::TopicConfigChanges& changes);
void TopicDescriptionToProto(const TopicView& view, v1::TopicDescription* out);
void TopicMetadataToProto(const TopicView& view, v1::TopicMetadata* out);

}  // namespace runnel::broker
