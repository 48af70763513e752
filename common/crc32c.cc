#include "common/crc32c.h"

#include <array>

#include <isa-l/crc.h>

namespace runnel {

// ISA-L's crc32_iscsi takes and returns the raw (non-inverted) register, so
// the standard pre- and post-inversion happen here.
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t size) {
  if (size == 0) return crc;
  // crc32_iscsi's length is an int: feed very large buffers in pieces.
  auto* p = static_cast<unsigned char*>(const_cast<void*>(data));
  uint32_t reg = ~crc;
  constexpr size_t kChunk = size_t{1} << 30;
  while (size > 0) {
    const size_t n = size < kChunk ? size : kChunk;
    reg = crc32_iscsi(p, static_cast<int>(n), reg);
    p += n;
    size -= n;
  }
  return ~reg;
}

uint32_t Crc32c(const void* data, size_t size) {
  return Crc32cExtend(0, data, size);
}

namespace {

// The reflected Castagnoli polynomial; in this bit order x^0 is bit 31.
constexpr uint32_t kPolynomial = 0x82F63B78;

// a(x) * b(x) mod P(x), both reflected.
constexpr uint32_t MultiplyModP(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (uint32_t m = uint32_t{1} << 31; m != 0; m >>= 1) {
    if ((a & m) != 0) {
      product ^= b;
      if ((a & (m - 1)) == 0) break;
    }
    b = (b & 1) != 0 ? (b >> 1) ^ kPolynomial : b >> 1;
  }
  return product;
}

// kXPow2N[k] = x^(2^k) mod P(x).
constexpr std::array<uint32_t, 64> MakeXPow2N() {
  std::array<uint32_t, 64> table{};
  uint32_t p = uint32_t{1} << 30;  // x^1
  for (uint32_t& entry : table) {
    entry = p;
    p = MultiplyModP(p, p);
  }
  return table;
}
constexpr std::array<uint32_t, 64> kXPow2N = MakeXPow2N();

}  // namespace

uint32_t Crc32cCombine(uint32_t crc_a, uint32_t crc_b, size_t size_b) {
  // Shifting crc_a past size_b bytes multiplies it by x^(8 * size_b).
  uint32_t shift = uint32_t{1} << 31;  // x^0
  for (size_t k = 3, n = size_b; n != 0; n >>= 1, ++k) {
    if ((n & 1) != 0) shift = MultiplyModP(kXPow2N[k], shift);
  }
  return MultiplyModP(shift, crc_a) ^ crc_b;
}

}  // namespace runnel
