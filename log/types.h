#pragma once

#include <cstdint>

namespace runnel::log {

// A logical record number within a partition. Never a byte position.
using Offset = int64_t;
// A byte position within one file. Never a record number.
using FilePos = int64_t;

inline constexpr Offset kNoOffset = -1;
inline constexpr int64_t kNoTimestamp = -1;

// A record found by timestamp (ListOffsets by time): its offset and its own
// timestamp, or kNoOffset and kNoTimestamp when there is none.
struct RecordTimestamp {
  Offset offset = kNoOffset;
  int64_t timestamp = kNoTimestamp;
  bool operator==(const RecordTimestamp&) const = default;
};

}  // namespace runnel::log
