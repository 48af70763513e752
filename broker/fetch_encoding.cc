#include "broker/fetch_encoding.h"

#include <string>
#include <utility>
#include <vector>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/support/slice.h"

namespace runnel::broker {
namespace {

using google::protobuf::internal::WireFormatLite;

// Collects the serialized message as slices: small envelope bytes are copied
// into one pending slice, large payloads are referenced.
class SliceWriter {
 public:
  void Bytes(const std::string& bytes) { pending_ += bytes; }

  void Varint(uint64_t value) {
    uint8_t buf[10];
    uint8_t* end =
        google::protobuf::io::CodedOutputStream::WriteVarint64ToArray(value,
                                                                      buf);
    pending_.append(reinterpret_cast<const char*>(buf), end - buf);
  }

  void LengthDelimitedTag(int field) {
    Varint(WireFormatLite::MakeTag(field,
                                   WireFormatLite::WIRETYPE_LENGTH_DELIMITED));
  }

  // Takes `payload`; gRPC frees it once the bytes are on the socket.
  void Owned(std::string payload) {
    Flush();
    auto* owned = new std::string(std::move(payload));
    slices_.emplace_back(
        owned->data(), owned->size(),
        [](void* p) { delete static_cast<std::string*>(p); }, owned);
  }

  grpc::ByteBuffer Finish() {
    Flush();
    return grpc::ByteBuffer(slices_.data(), slices_.size());
  }

 private:
  void Flush() {
    if (pending_.empty()) return;
    slices_.emplace_back(pending_);
    pending_.clear();
  }

  std::string pending_;
  std::vector<grpc::Slice> slices_;
};

size_t VarintSize(uint64_t value) {
  return google::protobuf::io::CodedOutputStream::VarintSize64(value);
}

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
