#pragma once

// Batch compression codecs of Kafka's RecordBatch v2 (attribute bits 0-2).
// The codec compresses everything after the 61-byte batch header. Framing per
// codec (docs/log-format.md, "Compression"):
//   gzip    RFC 1952 gzip member(s) (zlib with the gzip wrapper).
//   snappy  written as raw snappy; read as raw snappy or as the xerial /
//           snappy-java framing ("\x82SNAPPY\0", version, compat,
//           then [BE32 length, raw snappy chunk]...) that Java clients write.
//   lz4     LZ4 frame format (lz4frame.h), as Kafka uses since KIP-57.
//   zstd    a standard zstd frame; frames without a content size are fine.

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"

#include "log/record_batch.h"

namespace runnel::log {

// Appends the compressed form of `input` to `out`. `level` 0 selects the
// codec's default. kInvalidArgument for kNone or an unknown codec, kInternal
// if the codec library fails. Thread-safe (no shared state).
absl::Status Compress(Compression codec, std::string_view input, int level,
                      std::string& out);

// Replaces `out` with the decompressed form of `input`, never producing more
// than `max_output_bytes` (zip-bomb guard). Errors:
//   kInvalidArgument     malformed or truncated compressed data, or kNone /
//                        an unknown codec;
//   kResourceExhausted   the output would exceed `max_output_bytes`.
// Messages name the codec and, where known, the position in `input`. Never
// reads outside `input`. Thread-safe (no shared state).
absl::Status Decompress(Compression codec, std::string_view input,
                        size_t max_output_bytes, std::string& out);

// The xerial (snappy-java) stream header: magic, then BE32 version and BE32
// compatible version (both 1 as snappy-java writes them).
inline constexpr std::string_view kXerialMagic{"\x82SNAPPY\0", 8};
inline constexpr size_t kXerialHeaderSize = 16;

}  // namespace runnel::log
