#pragma once

// Zero-copy serialization of the producer's ProduceStreamRequest. The bytes
// are exactly what ProduceStreamRequest::SerializeAsString() would produce
// (a test asserts it), but each batch goes to gRPC as a slice of the batch's
// own buffer: the records are not copied into a request buffer and then
// into a serialization buffer. The buffers are shared with the slices, so a
// batch may complete, be retried or be freed while gRPC still holds them.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "grpcpp/support/byte_buffer.h"

#include "proto/broker_service.pb.h"

namespace runnel::client {

struct ProducePartitionParts {
  int32_t partition = 0;
  // Encoded RecordBatch v2 batches, sent concatenated in this order.
  std::vector<std::shared_ptr<const std::string>> batches;
};

struct ProduceTopicParts {
  std::string name;
  std::vector<ProducePartitionParts> partitions;
};

struct ProduceRequestParts {
  v1::Acks acks = v1::ACKS_UNSPECIFIED;
  int32_t timeout_ms = 0;
  std::vector<ProduceTopicParts> topics;
};

grpc::ByteBuffer SerializeProduceStreamRequest(
    uint64_t correlation_id, const ProduceRequestParts& request);

// The same message as protobuf builds it (copies the records; for tests).
v1::ProduceStreamRequest ProduceStreamRequestMessage(
    uint64_t correlation_id, const ProduceRequestParts& request);

}  // namespace runnel::client
