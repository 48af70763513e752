#include "common/varint.h"

namespace runnel {
namespace {

size_t UnsignedSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

size_t PutUnsigned(char* out, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    out[n++] = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out[n++] = static_cast<char>(v);
  return n;
}

// Decodes at most `max_bytes` groups. For the last allowed byte only the bits
// that fit the type may be set; anything more is rejected as overlong.
bool GetUnsigned(std::string_view& in, size_t max_bytes, int bits,
                 uint64_t& value) {
  uint64_t result = 0;
  for (size_t i = 0; i < max_bytes; ++i) {
    if (i >= in.size()) return false;
    const uint64_t byte = static_cast<uint8_t>(in[i]);
    const int shift = static_cast<int>(7 * i);
    if (i == max_bytes - 1) {
      const int remaining = bits - shift;
      if ((byte >> remaining) != 0) return false;  // overlong or overflowing
    }
    result |= (byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      value = result;
      in.remove_prefix(i + 1);
      return true;
    }
  }
  return false;
}

}  // namespace

size_t VarintSize32Slow(int32_t v) { return UnsignedSize(ZigZagEncode32(v)); }
size_t VarintSize64Slow(int64_t v) { return UnsignedSize(ZigZagEncode64(v)); }

size_t PutVarint32Slow(char* out, int32_t v) {
  return PutUnsigned(out, ZigZagEncode32(v));
}
size_t PutVarint64Slow(char* out, int64_t v) {
  return PutUnsigned(out, ZigZagEncode64(v));
}

void AppendVarint32(std::string& out, int32_t v) {
  char buf[kMaxVarint32Bytes];
  out.append(buf, PutVarint32(buf, v));
}
void AppendVarint64(std::string& out, int64_t v) {
  char buf[kMaxVarint64Bytes];
  out.append(buf, PutVarint64(buf, v));
}

bool GetVarint32Slow(std::string_view& in, int32_t& value) {
  uint64_t raw;
  if (!GetUnsigned(in, kMaxVarint32Bytes, 32, raw)) return false;
  value = ZigZagDecode32(static_cast<uint32_t>(raw));
  return true;
}

bool GetVarint64Slow(std::string_view& in, int64_t& value) {
  uint64_t raw;
  if (!GetUnsigned(in, kMaxVarint64Bytes, 64, raw)) return false;
  value = ZigZagDecode64(raw);
  return true;
}

}  // namespace runnel
