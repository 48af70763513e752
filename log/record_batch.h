#pragma once

// Kafka RecordBatch v2 (magic 2): builder, zero-copy view, validator and
// record decoding. The byte layout is in docs/log-format.md; constants below
// are named after the fields there.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

#include "log/types.h"

namespace runnel::log {

// Field positions in the 61-byte batch header (docs/log-format.md).
inline constexpr size_t kBaseOffsetPos = 0;             // i64
inline constexpr size_t kBatchLengthPos = 8;            // i32: bytes after it
inline constexpr size_t kPartitionLeaderEpochPos = 12;  // i32
inline constexpr size_t kMagicPos = 16;                 // i8
inline constexpr size_t kCrcPos = 17;              // u32: CRC32C of [21, end)
inline constexpr size_t kAttributesPos = 21;       // i16
inline constexpr size_t kLastOffsetDeltaPos = 23;  // i32
inline constexpr size_t kBaseTimestampPos = 27;    // i64
inline constexpr size_t kMaxTimestampPos = 35;     // i64
inline constexpr size_t kProducerIdPos = 43;       // i64
inline constexpr size_t kProducerEpochPos = 51;    // i16
inline constexpr size_t kBaseSequencePos = 53;     // i32
inline constexpr size_t kRecordCountPos = 57;      // i32
inline constexpr size_t kBatchHeaderSize = 61;
// baseOffset + batchLength: the part of the header outside batchLength.
inline constexpr size_t kBatchLogOverhead = 12;
inline constexpr int8_t kMagicV2 = 2;

// Attribute bits.
inline constexpr int16_t kCompressionMask = 0x07;
inline constexpr int16_t kTimestampTypeBit = 0x08;
inline constexpr int16_t kTransactionalBit = 0x10;
inline constexpr int16_t kControlBit = 0x20;

enum class Compression : uint8_t {
  kNone = 0,
  kGzip = 1,
  kSnappy = 2,
  kLz4 = 3,
  kZstd = 4,
};
// "none", "gzip", "snappy", "lz4", "zstd".
std::string_view CompressionName(Compression c);
// Parses the names above; InvalidArgument otherwise.
absl::StatusOr<Compression> ParseCompression(std::string_view name);

enum class TimestampType : uint8_t { kCreateTime = 0, kLogAppendTime = 1 };

// A view of an optional owned string (null stays null).
inline std::optional<std::string_view> AsView(
    const std::optional<std::string>& s) {
  if (!s.has_value()) return std::nullopt;
  return std::string_view(*s);
}

// One record header. The key is never null; the value may be.
struct RecordHeader {
  std::string key;
  std::optional<std::string> value;
  bool operator==(const RecordHeader&) const = default;
};

// One decoded record, owning its bytes. A null key or value (length -1) is
// distinct from an empty one (length 0).
struct Record {
  Offset offset = 0;      // base offset + offset delta
  int64_t timestamp = 0;  // base timestamp + timestamp delta (or the
                          // batch's max timestamp under LogAppendTime)
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<RecordHeader> headers;
};

// One header of a RecordView: views, like the record's.
struct RecordHeaderView {
  std::string_view key;
  std::optional<std::string_view> value;
};

// One decoded record as views into the batch's bytes (or into the buffer its
// records were decompressed into); valid only while those bytes are.
struct RecordView {
  Offset offset = 0;
  int64_t timestamp = 0;
  std::optional<std::string_view> key;
  std::optional<std::string_view> value;
  // Valid only during the callback that receives the view.
  absl::Span<const RecordHeaderView> headers;
};

// Where a batch came from decides the status code of a failed check: from a
// client or peer (kInvalidArgument) or from our own disk (kDataLoss).
enum class BatchSource { kWire, kDisk };

// A read-only view over the bytes of exactly one batch. Does not own the
// bytes: the buffer must outlive the view. Thread-compatible.
class RecordBatchView {
 public:
  RecordBatchView() = default;
  RecordBatchView(const RecordBatchView&) = default;
  RecordBatchView& operator=(const RecordBatchView&) = default;

  // Frames the batch at the front of `bytes`: checks that a whole header is
  // present, that magic is 2, that batchLength covers at least the header and
  // that the batch fits in `bytes`. Does not check the CRC or the records
  // (see ValidateBatch). Errors: kInvalidArgument (kWire) / kDataLoss (kDisk)
  // for bad magic or a bad length; kOutOfRange when `bytes` ends before the
  // batch does (a torn tail on disk, a truncated request on the wire).
  static absl::StatusOr<RecordBatchView> Parse(
      std::string_view bytes, BatchSource source = BatchSource::kWire);
  // A view of a batch's header alone: `header` is its first
  // kBatchHeaderSize bytes, copied out of a batch held in pieces and framed
  // by FrameBatchHead. Only the header field accessors apply; bytes(),
  // size_bytes(), ComputeCrc() and the record walks see just the header.
  static RecordBatchView HeaderView(std::string_view header);

  std::string_view bytes() const { return bytes_; }  // the whole batch
  size_t size_bytes() const { return bytes_.size(); }

  Offset base_offset() const;
  int32_t batch_length() const;
  int32_t partition_leader_epoch() const;
  int8_t magic() const;
  uint32_t crc() const;
  int16_t attributes() const;
  Compression compression() const;  // raw bits may be invalid: see Validate
  TimestampType timestamp_type() const;
  bool is_transactional() const;
  bool is_control() const;
  int32_t last_offset_delta() const;
  int64_t base_timestamp() const;
  int64_t max_timestamp() const;
  int64_t producer_id() const;
  int16_t producer_epoch() const;
  int32_t base_sequence() const;
  int32_t record_count() const;
  Offset last_offset() const { return base_offset() + last_offset_delta(); }
  Offset next_offset() const { return last_offset() + 1; }

  // CRC32C over [attributes, end): what the crc field should hold.
  uint32_t ComputeCrc() const;
  bool CrcMatches() const { return ComputeCrc() == crc(); }

  // Decodes (and decompresses) every record and calls `fn` for each in order.
  // Stops at and returns the first error: kInvalidArgument/kDataLoss (by
  // `source`) for malformed records; the status `fn` returns if not OK.
  // Checks the record structure (lengths, varints, record count) but neither
  // the CRC nor offset deltas or timestamps: that is ValidateBatch's job, and
  // a record's offset is base offset + its own offsetDelta. Decompressed
  // records are bounded by ValidateOptions' default max_decompressed_bytes.
  // A batch with record count 0 and no record bytes yields no records.
  absl::Status ForEachRecord(const std::function<absl::Status(Record)>& fn,
                             BatchSource source = BatchSource::kWire) const;
  // The same without copying: `fn` gets views into this batch's bytes, or,
  // for a compressed batch, into `*decompressed`, which this fills (and the
  // caller keeps as long as it uses the views). Nothing is allocated per
  // record.
  absl::Status ForEachRecordView(
      absl::FunctionRef<absl::Status(const RecordView&)> fn,
      std::string* decompressed, BatchSource source = BatchSource::kWire) const;
  absl::StatusOr<std::vector<Record>> DecodeRecords(
      BatchSource source = BatchSource::kWire) const;

 private:
  explicit RecordBatchView(std::string_view bytes) : bytes_(bytes) {}
  std::string_view bytes_;
};

// Splits a buffer of zero or more concatenated batches (a produce request's
// records for one partition, a fetch response, a segment slice) into views
// with RecordBatchView::Parse; an empty buffer gives an empty vector. Frames
// only (see Parse): validate each view's bytes() before trusting it. Errors
// are Parse's, with the batch's position in `bytes` added to the message.
absl::StatusOr<std::vector<RecordBatchView>> SplitBatches(
    std::string_view bytes, BatchSource source = BatchSource::kWire);

// Parse's framing checks for a batch not held in one buffer: `head` is the
// first min(kBatchHeaderSize, available) of the `available` bytes from the
// batch's start. Returns the batch's size (12 + batchLength) or Parse's
// error.
absl::StatusOr<size_t> FrameBatchHead(std::string_view head, size_t available,
                                      BatchSource source = BatchSource::kWire);

struct ValidateOptions {
  BatchSource source = BatchSource::kWire;
  // Largest acceptable whole batch (12 + batchLength), like Kafka's
  // max.message.bytes. Larger: kInvalidArgument (kWire) with "too large".
  size_t max_batch_bytes = 1 << 20;
  // Largest decompressed records payload accepted (zip-bomb guard).
  size_t max_decompressed_bytes = 64 << 20;
  // false: the caller has already compared the CRC (RecordBatchView::
  // CrcMatches) and the check is skipped; every other check still runs.
  bool check_crc = true;
  // A batch compaction rewrote (only for kDisk input of a compacted log):
  // the offset deltas strictly increase within [0, lastOffsetDelta] and
  // lastOffsetDelta >= n-1, instead of deltas 0..n-1 and lastOffsetDelta ==
  // n-1 (the removed records leave gaps; docs/log-format.md, "Compaction").
  bool offset_gaps = false;
  // Every record must have a key (Kafka refuses a record without one for a
  // compacted topic): a null key is an error like any malformed record.
  bool require_keys = false;
};

// Checks every field a buggy or malicious producer can get wrong: framing and
// magic, CRC, compression codec, record count > 0, each record's length,
// varints (truncated or overlong), negative lengths other than -1 where null
// is allowed, offset deltas 0..n-1 in order, lastOffsetDelta == n-1,
// timestamps (maxTimestamp >= every record's), trailing bytes, and that the
// record count matches the records present. Returns OK or the first problem
// with its position in the batch. Codes: kInvalidArgument for kWire input,
// kDataLoss for kDisk input.
absl::Status ValidateBatch(std::string_view bytes,
                           const ValidateOptions& options = {});

// What a batch held in pieces should carry in its crc field: CRC32C over
// [attributes, end) of `header` (its first kBatchHeaderSize bytes) followed
// by `body`.
uint32_t ComputeBatchCrc(std::string_view header,
                         std::span<const std::string_view> body);

// ValidateBatch over one batch held in pieces, without joining them:
// `header` is its first kBatchHeaderSize bytes (copied out), `body` the rest
// in order. Same checks, same order, same errors as ValidateBatch of the
// joined bytes (ValidateBatch is this with the batch as one piece after its
// header); `header` is shorter than kBatchHeaderSize only when the whole
// batch is (then the framing error; RUNNEL_CHECKed). A compressed body of
// more than one piece is joined for its codec.
absl::Status ValidateBatchPieces(std::string_view header,
                                 std::span<const std::string_view> body,
                                 const ValidateOptions& options = {});

// What FilterBatch made of a batch.
struct FilteredBatch {
  enum class Kind {
    kUnchanged,  // every record kept: the batch stays byte for byte
    kEmpty,      // no record kept: the batch goes
    kRewritten,  // `bytes` is the batch with the kept records
  };
  Kind kind = Kind::kUnchanged;
  std::string bytes;  // kRewritten only
  int32_t kept = 0;
  int32_t removed = 0;
};

// Compaction's rewrite of one stored batch (Kafka's MemoryRecords.filterTo):
// keeps the records for which `keep` is true, in order. A rewritten batch
// keeps the header's baseOffset, partitionLeaderEpoch, attributes (and so
// the codec: the kept records are compressed again with it),
// lastOffsetDelta (the producer's last sequence stays derivable),
// baseTimestamp, producer id, epoch and base sequence; each kept record
// keeps its offsetDelta and timestamp. recordCount, maxTimestamp (under
// CreateTime: of the kept records), batchLength and the CRC are new. The
// result passes ValidateBatch with kDisk and offset_gaps. A batch that
// keeps every record is not encoded again (kUnchanged); otherwise `keep` is
// asked twice per record and must give the same answer. Errors: the
// batch's own (kDataLoss), or kInternal if its codec fails.
absl::StatusOr<FilteredBatch> FilterBatch(
    const RecordBatchView& batch,
    absl::FunctionRef<bool(const RecordView&)> keep);

// Appends one record's encoding (length varint, attributes, the two deltas,
// key, value, headers) to `out`: what RecordBatchBuilder::Append writes.
void AppendRecordEncoding(std::string& out, int64_t timestamp_delta,
                          int32_t offset_delta,
                          std::optional<std::string_view> key,
                          std::optional<std::string_view> value,
                          std::span<const RecordHeaderView> headers);

// In-place header edits the broker makes when appending. baseOffset and
// partitionLeaderEpoch are outside the CRC, so no re-encode and no new CRC.
// `batch` must point at a whole batch (checked with Parse before).
void SetBaseOffset(char* batch, Offset base_offset);
void SetPartitionLeaderEpoch(char* batch, int32_t epoch);
// For message.timestamp.type=LogAppendTime: sets the timestamp-type bit and
// maxTimestamp (and baseTimestamp) to `timestamp_ms`, then recomputes the CRC.
void StampLogAppendTime(char* batch, size_t size, int64_t timestamp_ms);

struct BatchBuilderOptions {
  Compression compression = Compression::kNone;
  Offset base_offset = 0;
  int32_t partition_leader_epoch = -1;
  TimestampType timestamp_type = TimestampType::kCreateTime;
  int64_t producer_id = -1;  // -1: not an idempotent producer
  int16_t producer_epoch = -1;
  int32_t base_sequence = -1;
  bool transactional = false;
  bool control = false;
  int compression_level = 0;  // 0: the codec's default
};

// Builds one RecordBatch v2. Thread-compatible.
class RecordBatchBuilder {
 public:
  explicit RecordBatchBuilder(BatchBuilderOptions options = {});
  RecordBatchBuilder(const RecordBatchBuilder&) = delete;
  RecordBatchBuilder& operator=(const RecordBatchBuilder&) = delete;
  RecordBatchBuilder(RecordBatchBuilder&&) = default;
  RecordBatchBuilder& operator=(RecordBatchBuilder&&) = default;

  // Appends one record. The first record's timestamp is the base timestamp;
  // offsets are consecutive from the base offset.
  void Append(int64_t timestamp_ms, std::optional<std::string_view> key,
              std::optional<std::string_view> value,
              const std::vector<RecordHeader>& headers = {});
  // The same with the headers as views (no copy of their bytes needed).
  void Append(int64_t timestamp_ms, std::optional<std::string_view> key,
              std::optional<std::string_view> value,
              std::span<const RecordHeaderView> headers);

  // Makes room for `bytes` of encoded records, so that filling a large batch
  // does not reallocate (and copy) its buffer again and again.
  void Reserve(size_t bytes) { records_.reserve(kBatchHeaderSize + bytes); }
  // Bytes of encoded records the buffer holds without reallocating.
  size_t capacity_bytes() const {
    return records_.capacity() - kBatchHeaderSize;
  }

  int32_t record_count() const { return record_count_; }
  bool empty() const { return record_count_ == 0; }
  // Sets the idempotent-producer fields the next Build() writes.
  void SetProducerState(int64_t producer_id, int16_t producer_epoch,
                        int32_t base_sequence) {
    options_.producer_id = producer_id;
    options_.producer_epoch = producer_epoch;
    options_.base_sequence = base_sequence;
  }
  // Size the batch would have uncompressed: header + encoded records.
  size_t uncompressed_size_bytes() const { return records_.size(); }

  // Encodes the batch (compressing the records if asked) and returns its
  // bytes. kInvalidArgument if empty; kInternal if the codec fails. The
  // builder is left empty and can be reused with the same options.
  absl::StatusOr<std::string> Build();

 private:
  // Takes records_crc_ up to the end of the records appended so far.
  void ExtendRecordsCrc();

  BatchBuilderOptions options_;
  // Room for the header (filled in by Build), then the encoded records,
  // uncompressed; an uncompressed batch is built in place.
  std::string records_ = std::string(kBatchHeaderSize, '\0');
  int32_t record_count_ = 0;
  int64_t base_timestamp_ = 0;
  int64_t max_timestamp_ = 0;
  // Uncompressed batches: CRC32C of records_[kBatchHeaderSize, crc_end_),
  // taken every kCrcChunkBytes while the bytes just written are still in
  // this thread's cache. Build() combines it with the header's CRC instead
  // of reading the whole batch again, which in the producer happens on
  // another thread, long after (docs/benchmarks.md, session 9).
  static constexpr size_t kCrcChunkBytes = 64 << 10;
  uint32_t records_crc_ = 0;
  size_t crc_end_ = kBatchHeaderSize;
};

}  // namespace runnel::log
