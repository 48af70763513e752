#include "common/crc32c.h"

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

}  // namespace runnel
