#include "broker/fetch_encoding.h"

#include <string>
#include <utility>
#include <vector>

#include "grpcpp/impl/codegen/proto_utils.h"

#include "proto/slice_writer.h"

namespace runnel::broker {
namespace {

using wire::SliceWriter;
using wire::VarintSize;

constexpr int kTopicsField = 1;      // FetchResponse.topics
constexpr int kNameField = 1;        // TopicFetchResponse.name
constexpr int kPartitionsField = 2;  // TopicFetchResponse.partitions
constexpr int kRecordsField = 100;   // PartitionFetchResponse.records

}  // namespace

grpc::ByteBuffer SerializeFetchResponse(v1::FetchResponse* response) {
  // Protobuf writes fields in field-number order, and each of the fields
  // handled here is the last of its message (records = 100 in a partition,
  // partitions = 2 in a topic) except topics = 1, which precedes
  // throttle_time_ms = 2: emitting them in this order reproduces
  // SerializeAsString() byte for byte.
  SliceWriter out;
  for (v1::TopicFetchResponse& topic : *response->mutable_topics()) {
    struct Part {
      std::string head;  // the partition without its records field
      std::string records;
      size_t size;  // of the whole partition message
    };
    std::vector<Part> parts;
    parts.reserve(topic.partitions_size());
    size_t topic_size = 0;
    if (!topic.name().empty()) {
      topic_size += 1 + VarintSize(topic.name().size()) + topic.name().size();
    }
    for (v1::PartitionFetchResponse& p : *topic.mutable_partitions()) {
      Part part;
      part.records = std::move(*p.mutable_records());
      p.clear_records();
      part.head = p.SerializeAsString();
      part.size = part.head.size();
      if (!part.records.empty()) {
        part.size += 2 /* tag 100 */ + VarintSize(part.records.size()) +
                     part.records.size();
      }
      topic_size += 1 + VarintSize(part.size) + part.size;
      parts.push_back(std::move(part));
    }
    out.LengthDelimitedTag(kTopicsField);
    out.Varint(topic_size);
    if (!topic.name().empty()) {
      out.LengthDelimitedTag(kNameField);
      out.Varint(topic.name().size());
      out.Bytes(topic.name());
    }
    for (Part& part : parts) {
      out.LengthDelimitedTag(kPartitionsField);
      out.Varint(part.size);
      out.Bytes(part.head);
      if (!part.records.empty()) {
        out.LengthDelimitedTag(kRecordsField);
        out.Varint(part.records.size());
        out.Owned(std::move(part.records));
      }
    }
  }
  if (response->throttle_time_ms() != 0) {
    v1::FetchResponse rest;
    rest.set_throttle_time_ms(response->throttle_time_ms());
    out.Bytes(rest.SerializeAsString());
  }
  return out.Finish();
}

bool ParseFetchRequest(const grpc::ByteBuffer& bytes,
                       v1::FetchRequest* request) {
  // gRPC's own protobuf reader, straight from the slices. It consumes the
  // buffer it is given: a copy shares the slices (reference counts only).
  grpc::ByteBuffer copy(bytes);
  return grpc::SerializationTraits<v1::FetchRequest>::Deserialize(&copy,
                                                                  request)
      .ok();
}

}  // namespace runnel::broker
