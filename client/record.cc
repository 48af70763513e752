#include "runnel/record.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace runnel::client {

absl::StatusOr<Acks> ParseAcks(std::string_view name) {
  const std::string n = absl::AsciiStrToLower(std::string(name));
  if (n == "all" || n == "-1") return Acks::kAll;
  if (n == "leader" || n == "1") return Acks::kLeader;
  if (n == "none" || n == "0") return Acks::kNone;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown acks \"", n, "\" (expected all, leader or none)"));
}

absl::StatusOr<Compression> ParseCompression(std::string_view name) {
  const std::string n = absl::AsciiStrToLower(std::string(name));
  if (n == "none") return Compression::kNone;
  if (n == "gzip") return Compression::kGzip;
  if (n == "snappy") return Compression::kSnappy;
  if (n == "lz4") return Compression::kLz4;
  if (n == "zstd") return Compression::kZstd;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown compression \"", n,
                   "\" (expected none, gzip, snappy, lz4 or zstd)"));
}

}  // namespace runnel::client
