// libFuzzer target for the RecordBatch v2 codec: framing (Parse,
// SplitBatches), validation (ValidateBatch for wire and disk input), record
// decoding and the decompressors behind it, and validation of a batch in
// pieces (ValidateBatchPieces) against ValidateBatch. Arbitrary bytes must
// never crash, hang or read out of bounds, and a batch ValidateBatch accepts
// must decode.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/crc32c.h"
#include "common/endian.h"
#include "log/record_batch.h"

namespace runnel::log {
namespace {

// Small enough that zip bombs stay cheap, large enough for the seeds.
constexpr size_t kMaxDecompressed = 4 << 20;

void Fail(const char* what) {
  std::fprintf(stderr, "batch_fuzzer invariant broken: %s\n", what);
  std::abort();
}

// Reads every header field, so ASan sees any read past the view. Summed
// unsigned: the fields are arbitrary.
uint64_t TouchHeader(const RecordBatchView& v) {
  uint64_t sum = 0;
  for (int64_t field : {v.base_offset(), int64_t{v.batch_length()},
                        int64_t{v.partition_leader_epoch()}, int64_t{v.magic()},
                        int64_t{v.crc()}, int64_t{v.attributes()},
                        int64_t{static_cast<int>(v.compression())},
                        int64_t{static_cast<int>(v.timestamp_type())},
                        int64_t{v.is_transactional()}, int64_t{v.is_control()},
                        int64_t{v.last_offset_delta()}, v.base_timestamp(),
                        v.max_timestamp(), v.producer_id(),
                        int64_t{v.producer_epoch()}, int64_t{v.base_sequence()},
                        int64_t{v.record_count()}, int64_t{v.ComputeCrc()}}) {
    sum += static_cast<uint64_t>(field);
  }
  return sum;
}

void CheckOneBatch(std::string_view bytes, BatchSource source) {
  const ValidateOptions options{.source = source,
                                .max_batch_bytes = 16 << 20,
                                .max_decompressed_bytes = kMaxDecompressed};
  const absl::Status valid = ValidateBatch(bytes, options);
  absl::StatusOr<RecordBatchView> view = RecordBatchView::Parse(bytes, source);
  if (valid.ok() && !view.ok()) Fail("valid batch does not parse");
  if (!view.ok()) return;
  (void)TouchHeader(*view);
  absl::StatusOr<std::vector<Record>> records = view->DecodeRecords(source);
  if (valid.ok()) {
    if (!records.ok()) Fail("valid batch does not decode");
    if (records->size() != static_cast<size_t>(view->record_count())) {
      Fail("decoded record count differs from the header");
    }
    for (size_t i = 0; i < records->size(); ++i) {
      const uint64_t expected = static_cast<uint64_t>(view->base_offset()) + i;
      if (static_cast<uint64_t>((*records)[i].offset) != expected) {
        Fail("decoded offsets are not consecutive");
      }
    }
  }
}

// The header edits the broker makes must keep a valid batch valid.
void CheckHeaderEdits(std::string_view bytes) {
  if (!ValidateBatch(
           bytes, ValidateOptions{.max_batch_bytes = 16 << 20,
                                  .max_decompressed_bytes = kMaxDecompressed})
           .ok()) {
    return;
  }
  std::string copy(bytes);
  SetBaseOffset(copy.data(), 1234567);
  SetPartitionLeaderEpoch(copy.data(), 42);
  StampLogAppendTime(copy.data(), copy.size(), 1700000000000);
  if (!ValidateBatch(
           copy, ValidateOptions{.max_batch_bytes = 16 << 20,
                                 .max_decompressed_bytes = kMaxDecompressed})
           .ok()) {
    Fail("header edits broke a valid batch");
  }
}

// ValidateBatchPieces must give ValidateBatch's verdict, error and all, for
// the batch cut into pieces of `step` bytes after its copied-out header.
void CheckPieces(std::string_view bytes, size_t step) {
  const ValidateOptions options{.max_batch_bytes = 16 << 20,
                                .max_decompressed_bytes = kMaxDecompressed};
  const size_t head = std::min(bytes.size(), kBatchHeaderSize);
  const std::string header(bytes.substr(0, head));
  std::vector<std::string_view> pieces;
  for (size_t pos = head; pos < bytes.size(); pos += step) {
    pieces.push_back(bytes.substr(pos, step));
  }
  if (ValidateBatchPieces(header, pieces, options) !=
      ValidateBatch(bytes, options)) {
    Fail("ValidateBatchPieces differs from ValidateBatch");
  }
}

}  // namespace
}  // namespace runnel::log

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace runnel::log;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  for (BatchSource source : {BatchSource::kWire, BatchSource::kDisk}) {
    CheckOneBatch(input, source);
    absl::StatusOr<std::vector<RecordBatchView>> views =
        SplitBatches(input, source);
    if (views.ok()) {
      for (const RecordBatchView& v : *views) CheckOneBatch(v.bytes(), source);
    }
  }
  // Most mutations break the CRC; repair it so the record checks behind it
  // get explored as well.
  CheckPieces(input, 1 + (size > 0 ? data[0] % 7 : 0));
  if (size >= kBatchHeaderSize) {
    std::string fixed(input);
    runnel::StoreBe32(fixed.data() + kCrcPos,
                      runnel::Crc32c(fixed.data() + kAttributesPos,
                                     fixed.size() - kAttributesPos));
    CheckOneBatch(fixed, BatchSource::kWire);
    CheckHeaderEdits(fixed);
    CheckPieces(fixed, 1 + static_cast<size_t>(data[size - 1]) % 23);
  }
  return 0;
}
