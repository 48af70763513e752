#pragma once

// Hand serialization of protobuf messages into a grpc::ByteBuffer whose
// large `bytes` fields are slices of their own: the payload is handed to
// gRPC by reference instead of being copied into one buffer. Used where the
// records of a message are the bulk of it: the broker's fetch responses
// (broker/fetch_encoding.h) and the client's produce requests
// (client/produce_encoding.h). The callers emit fields in field-number
// order, which reproduces protobuf's own serialization byte for byte.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"

namespace runnel::wire {

// The encoded size of `value` as a varint.
size_t VarintSize(uint64_t value);
// The encoded size of a length-delimited field `field` of `length` bytes:
// tag, length and payload.
size_t LengthDelimitedSize(int field, size_t length);

// Collects a serialized message as slices: small envelope bytes are copied
// into one pending slice, large payloads are referenced. Not thread-safe.
class SliceWriter {
 public:
  void Bytes(std::string_view bytes) { pending_.append(bytes); }
  void Varint(uint64_t value);
  void Tag(int field, int wire_type);
  void LengthDelimitedTag(int field);

  // Takes `payload`; gRPC frees it once the bytes are on the socket.
  void Owned(std::string payload);
  // References `payload`, kept alive by the slice until gRPC is done.
  void Shared(std::shared_ptr<const std::string> payload);
  // Appends another buffer's slices (reference counts only).
  void Append(const grpc::ByteBuffer& buffer);

  grpc::ByteBuffer Finish();

 private:
  void Flush();

  std::string pending_;
  std::vector<grpc::Slice> slices_;
};

}  // namespace runnel::wire
