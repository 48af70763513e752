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

// The general cases of the functions below, out of line; the inline ones
// handle the one- and two-byte varints (-8192..8191) that most record
// fields are.
size_t VarintSize32Slow(int32_t v);
size_t VarintSize64Slow(int64_t v);
size_t PutVarint32Slow(char* out, int32_t v);
size_t PutVarint64Slow(char* out, int64_t v);
bool GetVarint32Slow(std::string_view& in, int32_t& value);
bool GetVarint64Slow(std::string_view& in, int64_t& value);

namespace varint_internal {

// The one- and two-byte encodings of an unsigned (already zigzagged) value
// below 0x4000: returns the bytes written, or 0 when the value needs more.
inline size_t PutShort(char* out, uint64_t u) {
  if (u < 0x80) {
    out[0] = static_cast<char>(u);
    return 1;
  }
  if (u < 0x4000) {
    out[0] = static_cast<char>((u & 0x7f) | 0x80);
    out[1] = static_cast<char>(u >> 7);
    return 2;
  }
  return 0;
}

// Reads a one- or two-byte encoding from the front of `in` into `u`;
// false (nothing consumed) when the varint is longer or `in` too short.
inline bool GetShort(std::string_view& in, uint64_t& u) {
  if (in.empty()) return false;
  const uint64_t b0 = static_cast<uint8_t>(in[0]);
  if (b0 < 0x80) {
    u = b0;
    in.remove_prefix(1);
    return true;
  }
  if (in.size() >= 2 && static_cast<uint8_t>(in[1]) < 0x80) {
    u = (b0 & 0x7f) | (uint64_t{static_cast<uint8_t>(in[1])} << 7);
    in.remove_prefix(2);
    return true;
  }
  return false;
}

}  // namespace varint_internal

// Number of bytes the zigzag varint encoding of `v` takes.
inline size_t VarintSize32(int32_t v) {
  const uint32_t u = ZigZagEncode32(v);
  return u < 0x80 ? 1 : u < 0x4000 ? 2 : VarintSize32Slow(v);
}
inline size_t VarintSize64(int64_t v) {
  const uint64_t u = ZigZagEncode64(v);
  return u < 0x80 ? 1 : u < 0x4000 ? 2 : VarintSize64Slow(v);
}

// Writes the zigzag varint of `v` at `out` (which must have room for
// kMaxVarint*Bytes) and returns the number of bytes written.
inline size_t PutVarint32(char* out, int32_t v) {
  const size_t n = varint_internal::PutShort(out, ZigZagEncode32(v));
  return n != 0 ? n : PutVarint32Slow(out, v);
}
inline size_t PutVarint64(char* out, int64_t v) {
  const size_t n = varint_internal::PutShort(out, ZigZagEncode64(v));
  return n != 0 ? n : PutVarint64Slow(out, v);
}
void AppendVarint32(std::string& out, int32_t v);
void AppendVarint64(std::string& out, int64_t v);

// Reads one zigzag varint from the front of `in`. On success stores the value,
// advances `in` past it and returns true. Returns false, leaving `in` as it
// was, if the input ends inside the varint or the encoding is longer than the
// type allows (an overlong varint).
inline bool GetVarint32(std::string_view& in, int32_t& value) {
  uint64_t u;
  if (!varint_internal::GetShort(in, u)) return GetVarint32Slow(in, value);
  value = ZigZagDecode32(static_cast<uint32_t>(u));
  return true;
}
inline bool GetVarint64(std::string_view& in, int64_t& value) {
  uint64_t u;
  if (!varint_internal::GetShort(in, u)) return GetVarint64Slow(in, value);
  value = ZigZagDecode64(u);
  return true;
}

}  // namespace runnel
