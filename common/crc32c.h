#pragma once

// CRC32C (Castagnoli), the checksum of Kafka's RecordBatch v2, computed with
// ISA-L's crc32_iscsi (SSE4.2 / PCLMUL). Standard reflected form: initial value
// 0xFFFFFFFF, final xor 0xFFFFFFFF; Crc32c("123456789") == 0xE3069283.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace runnel {

// CRC32C of `size` bytes at `data`.
uint32_t Crc32c(const void* data, size_t size);
inline uint32_t Crc32c(std::string_view data) {
  return Crc32c(data.data(), data.size());
}

// Continues a CRC: Crc32cExtend(Crc32c(a), b) == Crc32c(a + b).
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t size);

// The CRC of a concatenation from the CRCs of its parts, without the bytes:
// Crc32cCombine(Crc32c(a), Crc32c(b), b.size()) == Crc32c(a + b). About one
// 32-step polynomial product per set bit of `size_b` (zlib's crc32_combine,
// for the Castagnoli polynomial).
uint32_t Crc32cCombine(uint32_t crc_a, uint32_t crc_b, size_t size_b);

}  // namespace runnel
