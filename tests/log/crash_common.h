#pragma once

// Shared by the crash test (tests/log/crash_test.cc) and its child program
// (tests/log/crash_child.cc): what the child appends and how both sides
// fingerprint a batch's records.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/crc32c.h"
#include "common/endian.h"
#include "log/log_config.h"
#include "log/record_batch.h"
#include "log/types.h"

namespace runnel::log::crash {

// '.' and '-' in the name exercise the "<topic>-<partition>" split.
inline constexpr char kTopic[] = "crash.test-topic";
inline constexpr int32_t kPartition = 0;

// Small segments so a run rolls several times (a kill can land mid-roll);
// no retention, so every acknowledged batch must stay.
inline LogConfig CrashLogConfig() {
  LogConfig config;
  config.segment_bytes = 256 << 10;
  config.retention_ms = -1;
  config.retention_bytes = -1;
  config.index_interval_bytes = 1024;
  return config;
}

// CRC32C over every record's offset delta, timestamp, key and value, with
// null distinct from empty. Both sides compute it from decoded records, so it
// compares what a consumer would see, not the stored encoding.
inline uint32_t RecordsDigest(const std::vector<Record>& records,
                              Offset base_offset) {
  std::string buf;
  auto put_i64 = [&buf](int64_t v) {
    char b[8];
    StoreBe64(b, static_cast<uint64_t>(v));
    buf.append(b, 8);
  };
  auto put_bytes = [&](const std::optional<std::string>& s) {
    put_i64(s.has_value() ? static_cast<int64_t>(s->size()) : -1);
    if (s.has_value()) buf.append(*s);
  };
  for (const Record& r : records) {
    put_i64(r.offset - base_offset);
    put_i64(r.timestamp);
    put_bytes(r.key);
    put_bytes(r.value);
  }
  return Crc32c(buf);
}

}  // namespace runnel::log::crash
