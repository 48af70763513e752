#pragma once

// Zigzag varints as Kafka's record format uses them (protobuf's sint32 and
// sint64 encoding): ZigZag maps signed to unsigned so small magnitudes are
// short, then 7 bits per byte, least significant group first, high bit set on
// every byte but the last. An int32 takes at most 5 bytes, an int64 at most 10.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace runnel {

inline constexpr size_t kMaxVarint32Bytes = 5;
inline constexpr size_t kMaxVarint64Bytes = 10;

inline constexpr uint32_t ZigZagEncode32(int32_t v) {
  return (static_cast<uint32_t>(v) << 1) ^ static_cast<uint32_t>(v >> 31);
}
inline constexpr int32_t ZigZagDecode32(uint32_t v) {
  return static_cast<int32_t>((v >> 1) ^ (~(v & 1) + 1));
}
inline constexpr uint64_t ZigZagEncode64(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline constexpr int64_t ZigZagDecode64(uint64_t v) {
  return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1));
}

// Number of bytes the zigzag varint encoding of `v` takes.
size_t VarintSize32(int32_t v);
size_t VarintSize64(int64_t v);

// Writes the zigzag varint of `v` at `out` (which must have room for
// kMaxVarint*Bytes) and returns the number of bytes written.
size_t PutVarint32(char* out, int32_t v);
size_t PutVarint64(char* out, int64_t v);
void AppendVarint32(std::string& out, int32_t v);
void AppendVarint64(std::string& out, int64_t v);

// Reads one zigzag varint from the front of `in`. On success stores the value,
// advances `in` past it and returns true. Returns false, leaving `in` as it
// was, if the input ends inside the varint or the encoding is longer than the
// type allows (an overlong varint).
bool GetVarint32(std::string_view& in, int32_t& value);
bool GetVarint64(std::string_view& in, int64_t& value);

}  // namespace runnel
