#pragma once

// Zero-copy serialization of FetchResponse for the raw (grpc::ByteBuffer)
// Fetch and FetchStream handlers. The bytes are exactly what
// FetchResponse::SerializeAsString() would produce (docs/wire-protocol.md,
// "Fetch responses without a copy"), but every partition's `records` field
// becomes its own slice that gRPC sends from the broker's read buffer: the
// payload is never copied in user space between the log and the socket.

#include "grpcpp/support/byte_buffer.h"

#include "proto/broker_service.pb.h"

namespace runnel::broker {

// Serializes `response`, moving the records out of it (they are left empty).
grpc::ByteBuffer SerializeFetchResponse(v1::FetchResponse* response);

// Parses a request that arrived as raw bytes. false if it is not a valid
// FetchRequest.
bool ParseFetchRequest(const grpc::ByteBuffer& bytes,
                       v1::FetchRequest* request);

}  // namespace runnel::broker
