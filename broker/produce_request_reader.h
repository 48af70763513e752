#pragma once

// Reads a ProduceStreamRequest from the raw bytes gRPC received, without
// copying the records: each partition's `records` field becomes a
// log::RecordBytes that views gRPC's own slices (one per HTTP/2 frame),
// which the append path copies straight into the O_DIRECT append buffer
// (docs/wire-protocol.md, after the version history).

#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/support/byte_buffer.h"

#include "log/record_bytes.h"
#include "proto/broker_service.pb.h"

namespace runnel::broker {

struct ReadProduceStreamRequest {
  // The message with every PartitionProduceData.records left empty.
  v1::ProduceStreamRequest message;
  // The records of each partition, in message order (topics, then their
  // partitions).
  std::vector<log::RecordBytes> records;
};

// The reader itself takes the fields of the schema, each with its own wire
// type, and nothing else; for any other input (unknown fields, a field with
// another wire type, a topic name that is not ASCII, a malformed encoding)
// it leaves the decision to protobuf's parser on the joined bytes, so the
// result is always what ParseFromString gives. kInvalidArgument when that
// parse fails.
absl::StatusOr<ReadProduceStreamRequest> ReadProduceStream(
    const grpc::ByteBuffer& bytes);

}  // namespace runnel::broker
