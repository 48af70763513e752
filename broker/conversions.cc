#include "broker/conversions.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/time/time.h"

namespace runnel::broker {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl::StatusCode and grpc::StatusCode share their numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

v1::ErrorCode ToProtoErrorCode(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kNone:
      return v1::NONE;
    case ErrorKind::kUnknown:
      return v1::UNKNOWN;
    case ErrorKind::kUnknownTopicOrPartition:
      return v1::UNKNOWN_TOPIC_OR_PARTITION;
    case ErrorKind::kNotLeader:
      return v1::NOT_LEADER;
    case ErrorKind::kOffsetOutOfRange:
      return v1::OFFSET_OUT_OF_RANGE;
    case ErrorKind::kCorruptMessage:
      return v1::CORRUPT_MESSAGE;
    case ErrorKind::kInvalidRecord:
      return v1::INVALID_RECORD;
    case ErrorKind::kRecordTooLarge:
      return v1::RECORD_TOO_LARGE;
    case ErrorKind::kMessageTooLarge:
      return v1::MESSAGE_TOO_LARGE;
    case ErrorKind::kNotEnoughReplicas:
      return v1::NOT_ENOUGH_REPLICAS;
    case ErrorKind::kRequestTimedOut:
      return v1::REQUEST_TIMED_OUT;
    case ErrorKind::kInvalidTopic:
      return v1::INVALID_TOPIC;
    case ErrorKind::kTopicAlreadyExists:
      return v1::TOPIC_ALREADY_EXISTS;
    case ErrorKind::kInvalidPartitions:
      return v1::INVALID_PARTITIONS;
    case ErrorKind::kInvalidConfig:
      return v1::INVALID_CONFIG;
    case ErrorKind::kInvalidRequest:
      return v1::INVALID_REQUEST;
    case ErrorKind::kOutOfOrderSequence:
      return v1::OUT_OF_ORDER_SEQUENCE;
    case ErrorKind::kDuplicateSequence:
      return v1::DUPLICATE_SEQUENCE;
    case ErrorKind::kThrottled:
      return v1::THROTTLED;
    case ErrorKind::kStorageError:
      return v1::STORAGE_ERROR;
    case ErrorKind::kBrokerNotAvailable:
      return v1::BROKER_NOT_AVAILABLE;
    case ErrorKind::kInvalidReplicationFactor:
      return v1::INVALID_REPLICATION_FACTOR;
    case ErrorKind::kInvalidProducerEpoch:
      return v1::INVALID_PRODUCER_EPOCH;
    case ErrorKind::kUnknownProducerId:
      return v1::UNKNOWN_PRODUCER_ID;
  }
  return v1::UNKNOWN;
}

void ToProtoError(const absl::Status& status, v1::Error* error) {
  if (status.ok()) {
    error->Clear();
    return;
  }
  const ErrorKind kind = ErrorKindOf(status);
  error->set_code(ToProtoErrorCode(kind));
  error->set_retriable(IsRetriable(kind));
  error->set_message(std::string(status.message()));
}

Acks AcksFromProto(v1::Acks acks) {
  switch (acks) {
    case v1::ACKS_NONE:
      return Acks::kNone;
    case v1::ACKS_LEADER:
      return Acks::kLeader;
    default:
      return Acks::kAll;  // ACKS_ALL, ACKS_UNSPECIFIED
  }
}

ProduceInput ProduceInputFromProto(v1::ProduceRequest* request) {
  ProduceInput input;
  input.acks = AcksFromProto(request->acks());
  input.timeout = absl::Milliseconds(
      request->timeout_ms() > 0 ? request->timeout_ms() : 30000);
  for (v1::TopicProduceData& topic : *request->mutable_topics()) {
    for (v1::PartitionProduceData& p : *topic.mutable_partitions()) {
      // Moved, not copied: the records are the bulk of the request.
      input.partitions.push_back(
          {{topic.name(), p.partition()}, std::move(*p.mutable_records())});
    }
  }
  return input;
}

int ProduceResponseToProto(const v1::ProduceRequest& request, Acks acks,
                           std::vector<ProduceResult> results,
                           v1::ProduceResponse* response) {
  size_t i = 0;
  int errors = 0;
  for (const v1::TopicProduceData& topic : request.topics()) {
    v1::TopicProduceResponse* t = response->add_topics();
    t->set_name(topic.name());
    for (const v1::PartitionProduceData& p : topic.partitions()) {
      const ProduceResult& r = results[i++];
      v1::PartitionProduceResponse* out = t->add_partitions();
      out->set_partition(p.partition());
      const bool ok = r.status.ok();
      if (!ok) {
        ToProtoError(r.status, out->mutable_error());
        ++errors;
      }
      out->set_base_offset(ok && acks != Acks::kNone ? r.base_offset : -1);
      out->set_log_append_time_ms(ok ? r.log_append_time_ms : -1);
      out->set_log_start_offset(r.log_start_offset);
    }
  }
  return errors;
}

FetchInput FetchInputFromProto(const v1::FetchRequest& request) {
  FetchInput input;
  input.max_wait = absl::Milliseconds(std::max(0, request.max_wait_ms()));
  input.min_bytes = request.min_bytes();
  input.max_bytes = request.max_bytes();
  for (const v1::TopicFetchData& topic : request.topics()) {
    for (const v1::PartitionFetchData& p : topic.partitions()) {
      input.partitions.push_back({{topic.name(), p.partition()},
                                  p.fetch_offset(),
                                  p.partition_max_bytes()});
    }
  }
  return input;
}

int FetchResponseToProto(const FetchInput& input,
                         std::vector<ReadResult> results,
                         v1::FetchResponse* response) {
  int errors = 0;
  v1::TopicFetchResponse* topic = nullptr;
  for (size_t i = 0; i < input.partitions.size(); ++i) {
    const TopicPartition& tp = input.partitions[i].tp;
    // Consecutive partitions of one topic share a topic entry, as requested.
    if (topic == nullptr || topic->name() != tp.topic) {
      topic = response->add_topics();
      topic->set_name(tp.topic);
    }
    ReadResult& r = results[i];
    v1::PartitionFetchResponse* out = topic->add_partitions();
    out->set_partition(tp.partition);
    if (!r.status.ok()) {
      ToProtoError(r.status, out->mutable_error());
      ++errors;
    }
    out->set_high_watermark(r.high_watermark);
    out->set_log_start_offset(r.log_start_offset);
    out->set_log_end_offset(r.log_end_offset);
    if (!r.records.empty()) out->set_records(std::move(r.records));
  }
  return errors;
}

NewTopicSpec NewTopicFromProto(const v1::NewTopic& topic) {
  NewTopicSpec spec;
  spec.name = topic.name();
  spec.num_partitions = topic.num_partitions();
  spec.replication_factor = topic.replication_factor();
  for (const auto& [key, value] : topic.configs()) spec.configs[key] = value;
  return spec;
}

std::vector<ConfigChange> ConfigChangesFromProto(
    const v1::TopicConfigChanges& changes) {
  std::vector<ConfigChange> out;
  for (const v1::ConfigOp& op : changes.ops()) {
    out.push_back({op.op() == v1::CONFIG_OP_DELETE ? ConfigChange::Op::kDelete
                                                   : ConfigChange::Op::kSet,
                   op.name(), op.value()});
  }
  return out;
}

void TopicDescriptionToProto(const TopicView& view, v1::TopicDescription* out) {
  out->set_name(view.name);
  if (!view.status.ok()) {
    ToProtoError(view.status, out->mutable_error());
    return;
  }
  const TopicDescription& d = view.description;
  out->set_replication_factor(d.record.replication_factor);
  out->set_is_internal(absl::StartsWith(view.name, "__"));
  for (size_t i = 0; i < d.partitions.size(); ++i) {
    const PartitionState& s = d.partitions[i];
    v1::PartitionDescription* p = out->add_partitions();
    p->set_partition(static_cast<int32_t>(i));
    p->set_leader_id(s.leader_id);
    p->set_leader_epoch(s.leader_epoch);
    for (int32_t r : s.replicas) p->add_replicas(r);
    for (int32_t r : s.isr) p->add_isr(r);
    p->set_log_start_offset(s.log_start_offset);
    p->set_high_watermark(s.high_watermark);
    p->set_log_end_offset(s.log_end_offset);
    p->set_size_bytes(s.size_bytes);
  }
  for (const EffectiveConfig& c : d.configs) {
    v1::ConfigEntry* e = out->add_configs();
    e->set_name(c.name);
    e->set_value(c.value);
    e->set_is_default(c.is_default);
  }
}

void TopicMetadataToProto(const TopicView& view, v1::TopicMetadata* out) {
  out->set_name(view.name);
  if (!view.status.ok()) {
    ToProtoError(view.status, out->mutable_error());
    return;
  }
  out->set_is_internal(absl::StartsWith(view.name, "__"));
  const TopicDescription& d = view.description;
  for (size_t i = 0; i < d.partitions.size(); ++i) {
    const PartitionState& s = d.partitions[i];
    v1::PartitionMetadata* p = out->add_partitions();
    p->set_partition(static_cast<int32_t>(i));
    p->set_leader_id(s.leader_id);
    p->set_leader_epoch(s.leader_epoch);
    for (int32_t r : s.replicas) p->add_replicas(r);
    for (int32_t r : s.isr) p->add_isr(r);
  }
}

}  // namespace runnel::broker
