#include "client/produce_encoding.h"

#include "google/protobuf/wire_format_lite.h"

#include "proto/slice_writer.h"

namespace runnel::client {
namespace {

using google::protobuf::internal::WireFormatLite;
using wire::LengthDelimitedSize;

constexpr int kCorrelationIdField = 1;  // ProduceStreamRequest.correlation_id
constexpr int kRequestField = 2;        // ProduceStreamRequest.request
constexpr int kTopicsField = 3;         // ProduceRequest.topics
constexpr int kNameField = 1;           // TopicProduceData.name
constexpr int kPartitionsField = 2;     // TopicProduceData.partitions
constexpr int kRecordsField = 100;      // PartitionProduceData.records

size_t RecordsSize(const ProducePartitionParts& p) {
  size_t n = 0;
  for (const auto& b : p.batches) n += b->size();
  return n;
}

}  // namespace

grpc::ByteBuffer SerializeProduceStreamRequest(
    uint64_t correlation_id, const ProduceRequestParts& request) {
  // Field-number order throughout, as protobuf writes it: acks (1) and
  // timeout_ms (2) before topics (3); a topic's name (1) before its
  // partitions (2); a partition's index (1) before its records (100).
  v1::ProduceRequest head;
  head.set_acks(request.acks);
  head.set_timeout_ms(request.timeout_ms);
  const std::string head_bytes = head.SerializeAsString();

  struct Part {
    std::string head;  // the partition without its records field
    size_t records = 0;
    size_t size = 0;  // of the whole partition message
  };
  std::vector<std::vector<Part>> parts(request.topics.size());
  std::vector<size_t> topic_sizes(request.topics.size(), 0);
  size_t request_size = head_bytes.size();
  for (size_t t = 0; t < request.topics.size(); ++t) {
    const ProduceTopicParts& topic = request.topics[t];
    size_t& topic_size = topic_sizes[t];
    if (!topic.name.empty()) {
      topic_size += LengthDelimitedSize(kNameField, topic.name.size());
    }
    for (const ProducePartitionParts& p : topic.partitions) {
      v1::PartitionProduceData data;
      data.set_partition(p.partition);
      Part part;
      part.head = data.SerializeAsString();
      part.records = RecordsSize(p);
      part.size = part.head.size();
      if (part.records > 0) {
        part.size += LengthDelimitedSize(kRecordsField, part.records);
      }
      topic_size += LengthDelimitedSize(kPartitionsField, part.size);
      parts[t].push_back(std::move(part));
    }
    request_size += LengthDelimitedSize(kTopicsField, topic_size);
  }

  wire::SliceWriter out;
  if (correlation_id != 0) {
    out.Tag(kCorrelationIdField, WireFormatLite::WIRETYPE_VARINT);
    out.Varint(correlation_id);
  }
  out.LengthDelimitedTag(kRequestField);
  out.Varint(request_size);
  out.Bytes(head_bytes);
  for (size_t t = 0; t < request.topics.size(); ++t) {
    const ProduceTopicParts& topic = request.topics[t];
    out.LengthDelimitedTag(kTopicsField);
    out.Varint(topic_sizes[t]);
    if (!topic.name.empty()) {
      out.LengthDelimitedTag(kNameField);
      out.Varint(topic.name.size());
      out.Bytes(topic.name);
    }
    for (size_t i = 0; i < topic.partitions.size(); ++i) {
      const Part& part = parts[t][i];
      out.LengthDelimitedTag(kPartitionsField);
      out.Varint(part.size);
      out.Bytes(part.head);
      if (part.records == 0) continue;
      out.LengthDelimitedTag(kRecordsField);
      out.Varint(part.records);
      for (const auto& batch : topic.partitions[i].batches) {
        if (!batch->empty()) out.Shared(batch);
      }
    }
  }
  return out.Finish();
}

v1::ProduceStreamRequest ProduceStreamRequestMessage(
    uint64_t correlation_id, const ProduceRequestParts& request) {
  v1::ProduceStreamRequest message;
  message.set_correlation_id(correlation_id);
  v1::ProduceRequest* r = message.mutable_request();
  r->set_acks(request.acks);
  r->set_timeout_ms(request.timeout_ms);
  for (const ProduceTopicParts& topic : request.topics) {
    v1::TopicProduceData* t = r->add_topics();
    t->set_name(topic.name);
    for (const ProducePartitionParts& p : topic.partitions) {
      v1::PartitionProduceData* data = t->add_partitions();
      data->set_partition(p.partition);
      for (const auto& batch : p.batches)
        data->mutable_records()->append(*batch);
    }
  }
  return message;
}

}  // namespace runnel::client
