// Writes the seed corpus of a fuzz target into a directory:
//   fuzz_seed_corpus batch DIR
// Valid batches of every codec (including snappy-java framing), a control
// batch, several concatenated batches, and broken ones (truncated, bad magic,
// bad CRC, bad lengths). Deterministic and small (well under 200 KB).

#include <snappy.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

#include "common/crc32c.h"
#include "common/endian.h"
#include "log/compression.h"
#include "log/record_batch.h"

namespace runnel::log {
namespace {

std::string Build(BatchBuilderOptions options, int records, size_t value_size) {
  RecordBatchBuilder builder(options);
  for (int i = 0; i < records; ++i) {
    std::vector<RecordHeader> headers;
    if (i % 3 == 0) headers.push_back({"h", "v"});
    if (i % 5 == 0) headers.push_back({"n", std::nullopt});
    builder.Append(
        1700000000000 + i,
        i % 4 == 0 ? std::nullopt
                   : std::optional<std::string>(absl::StrCat("k", i)),
        i % 7 == 0
            ? std::nullopt
            : std::optional<std::string>(std::string(value_size, 'a' + i % 26)),
        headers);
  }
  absl::StatusOr<std::string> b = builder.Build();
  if (!b.ok()) {
    std::fprintf(stderr, "build failed: %s\n", b.status().ToString().c_str());
    std::exit(1);
  }
  return *b;
}

void FixCrc(std::string& b) {
  StoreBe32(b.data() + kCrcPos,
            Crc32c(b.data() + kAttributesPos, b.size() - kAttributesPos));
}

// The records of `plain` re-framed as snappy-java (xerial) chunks.
std::string XerialBatch(const std::string& plain) {
  const std::string records = plain.substr(kBatchHeaderSize);
  std::string framed(kXerialMagic);
  framed += std::string("\0\0\0\1\0\0\0\1", 8);
  for (size_t pos = 0; pos < records.size(); pos += 200) {
    std::string chunk;
    snappy::Compress(records.data() + pos,
                     std::min<size_t>(200, records.size() - pos), &chunk);
    char length[4];
    StoreBe32(length, static_cast<uint32_t>(chunk.size()));
    framed.append(length, 4);
    framed += chunk;
  }
  std::string b = plain.substr(0, kBatchHeaderSize) + framed;
  StoreBe32(b.data() + kBatchLengthPos,
            static_cast<uint32_t>(b.size() - kBatchLogOverhead));
  StoreBe16(b.data() + kAttributesPos,
            static_cast<uint16_t>(Compression::kSnappy));
  FixCrc(b);
  return b;
}

std::vector<std::pair<std::string, std::string>> BatchSeeds() {
  std::vector<std::pair<std::string, std::string>> seeds;
  for (Compression c :
       {Compression::kNone, Compression::kGzip, Compression::kSnappy,
        Compression::kLz4, Compression::kZstd}) {
    const std::string name(CompressionName(c));
    seeds.push_back({"valid-" + name + "-1", Build({.compression = c}, 1, 10)});
    seeds.push_back({"valid-" + name + "-30",
                     Build({.compression = c, .base_offset = 100}, 30, 40)});
  }
  const std::string plain = Build({}, 12, 20);
  seeds.push_back({"valid-xerial", XerialBatch(plain)});
  seeds.push_back({"valid-control",
                   Build({.transactional = false, .control = true}, 1, 4)});
  seeds.push_back({"valid-logappendtime",
                   Build({.timestamp_type = TimestampType::kLogAppendTime,
                          .producer_id = 7,
                          .producer_epoch = 1,
                          .base_sequence = 0},
                         5, 8)});
  seeds.push_back(
      {"valid-three-concatenated",
       plain + Build({.compression = Compression::kZstd}, 3, 5) + plain});

  seeds.push_back({"broken-truncated", plain.substr(0, plain.size() - 7)});
  seeds.push_back({"broken-short-header", plain.substr(0, 40)});
  std::string bad_magic = plain;
  bad_magic[kMagicPos] = 1;
  seeds.push_back({"broken-magic", bad_magic});
  std::string bad_crc = plain;
  bad_crc[plain.size() - 3] ^= 0x10;
  seeds.push_back({"broken-crc", bad_crc});
  std::string bad_count = plain;
  StoreBe32(bad_count.data() + kRecordCountPos, 13);
  FixCrc(bad_count);
  seeds.push_back({"broken-record-count", bad_count});
  std::string bad_length = plain;
  bad_length[kBatchHeaderSize] = 0x7f;  // first record's length
  FixCrc(bad_length);
  seeds.push_back({"broken-record-length", bad_length});
  std::string bad_codec = plain;
  StoreBe16(bad_codec.data() + kAttributesPos, 6);
  FixCrc(bad_codec);
  seeds.push_back({"broken-codec", bad_codec});
  seeds.push_back({"broken-trailing", plain + "xyz"});
  return seeds;
}

}  // namespace
}  // namespace runnel::log

int main(int argc, char** argv) {
  if (argc != 3 || std::string(argv[1]) != "batch") {
    std::fprintf(stderr, "usage: %s batch DIR\n", argv[0]);
    return 2;
  }
  size_t total = 0;
  for (const auto& [name, bytes] : runnel::log::BatchSeeds()) {
    const std::string path = std::string(argv[2]) + "/" + name;
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", path.c_str());
      return 1;
    }
    total += bytes.size();
  }
  std::printf("fuzz_seed_corpus: wrote %zu bytes of seeds to %s\n", total,
              argv[2]);
  return 0;
}
