#include "log/record_batch.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"

#include "common/check.h"
#include "common/crc32c.h"
#include "common/endian.h"
#include "common/status_macros.h"
#include "common/varint.h"
#include "log/compression.h"
#include "log/record_bytes.h"

namespace runnel::log {
namespace {

// Smallest batchLength: the header after the batchLength field.
constexpr int32_t kMinBatchLength =
    static_cast<int32_t>(kBatchHeaderSize - kBatchLogOverhead);
// Decompression bound for ForEachRecord, which takes no options: the same as
// ValidateOptions' default.
constexpr size_t kDefaultMaxDecompressedBytes =
    ValidateOptions{}.max_decompressed_bytes;

// Debian's Abseil has its own string_view type, distinct from std's.
absl::string_view ToAbsl(std::string_view s) { return {s.data(), s.size()}; }

absl::Status SourceError(BatchSource source, std::string message) {
  return source == BatchSource::kDisk
             ? absl::DataLossError(std::move(message))
             : absl::InvalidArgumentError(std::move(message));
}

absl::Status BatchError(BatchSource source, size_t pos,
                        absl::string_view what) {
  return SourceError(
      source, absl::StrCat("record batch: ", what, " at position ", pos));
}

// Wrapping addition: fields from untrusted bytes must not cause signed
// overflow (undefined behaviour) when combined.
int64_t WrappingAdd(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) +
                              static_cast<uint64_t>(b));
}
int64_t WrappingSub(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) -
                              static_cast<uint64_t>(b));
}

Compression RawCompression(int16_t attributes) {
  return static_cast<Compression>(attributes & kCompressionMask);
}
bool IsKnownCompression(int16_t attributes) {
  return (attributes & kCompressionMask) <=
         static_cast<int16_t>(Compression::kZstd);
}

// ---- record walking --------------------------------------------------------

// Where the records being walked sit, for error messages: positions are
// within the batch for uncompressed records, within the decompressed payload
// otherwise.
struct RecordsContext {
  BatchSource source;
  size_t base_pos;  // position of the first record byte
  bool compressed;

  absl::Status Error(size_t pos, absl::string_view what) const {
    if (!compressed) return BatchError(source, base_pos + pos, what);
    return SourceError(
        source, absl::StrCat("record batch: ", what, " at position ", pos,
                             " of the decompressed records"));
  }
};

// The fields of one record, viewing the walked buffer. No heap.
struct RecordFields {
  int64_t timestamp_delta = 0;
  int32_t offset_delta = 0;
  std::optional<std::string_view> key;
  std::optional<std::string_view> value;
};

enum class VarintError { kTruncated, kOverlong };

// Why GetVarint* refused `in`: it ends inside the varint (truncated) or the
// varint is longer than the type allows (overlong).
VarintError ClassifyVarintFailure(std::string_view in, size_t max_bytes) {
  const size_t n = std::min(in.size(), max_bytes);
  for (size_t i = 0; i < n; ++i) {
    if ((static_cast<uint8_t>(in[i]) & 0x80) == 0) {
      return VarintError::kOverlong;  // ends in time but overflows the type
    }
  }
  return in.size() < max_bytes ? VarintError::kTruncated
                               : VarintError::kOverlong;
}

// A read cursor over one record's bytes. Reads return OK or the error for the
// field named, with its position.
class RecordCursor {
 public:
  RecordCursor(std::string_view in, size_t pos, const RecordsContext& ctx)
      : in_(in), start_pos_(pos), size_(in.size()), ctx_(ctx) {}
  RecordCursor(const RecordCursor&) = delete;
  RecordCursor& operator=(const RecordCursor&) = delete;

  size_t pos() const { return start_pos_ + (size_ - in_.size()); }
  size_t remaining() const { return in_.size(); }

  absl::Status Skip1(absl::string_view field) {
    if (in_.empty()) return Overrun(field);
    in_.remove_prefix(1);
    return absl::OkStatus();
  }

  // GetVarint* handle the short encodings most fields have inline.
  absl::Status Varint32(absl::string_view field, int32_t& v) {
    if (GetVarint32(in_, v)) return absl::OkStatus();
    return VarintFailure(field, kMaxVarint32Bytes);
  }

  absl::Status Varint64(absl::string_view field, int64_t& v) {
    if (GetVarint64(in_, v)) return absl::OkStatus();
    return VarintFailure(field, kMaxVarint64Bytes);
  }

  // A length-prefixed byte string; -1 is null when `nullable`.
  absl::Status Bytes(absl::string_view field, bool nullable,
                     std::optional<std::string_view>& out) {
    const size_t length_pos = pos();
    int32_t length;
    RUNNEL_RETURN_IF_ERROR(Varint32(field, length));
    if (length == -1) {
      if (!nullable) {
        return ctx_.Error(length_pos, absl::StrCat("null ", field));
      }
      out.reset();
      return absl::OkStatus();
    }
    if (length < 0) {
      return ctx_.Error(length_pos,
                        absl::StrCat("negative ", field, " length ", length));
    }
    if (static_cast<size_t>(length) > in_.size()) {
      return ctx_.Error(
          length_pos, absl::StrCat(field, " length ", length,
                                   " past the end of the record (", in_.size(),
                                   " bytes left)"));
    }
    out = in_.substr(0, length);
    in_.remove_prefix(length);
    return absl::OkStatus();
  }

 private:
  absl::Status Overrun(absl::string_view field) const {
    return ctx_.Error(pos(),
                      absl::StrCat(field, " runs past the record length"));
  }
  absl::Status VarintFailure(absl::string_view field, size_t max_bytes) const {
    if (ClassifyVarintFailure(in_, max_bytes) == VarintError::kOverlong) {
      return ctx_.Error(pos(), absl::StrCat("overlong ", field, " varint"));
    }
    return ctx_.Error(pos(), absl::StrCat(field, " varint truncated: ", field,
                                          " runs past the record length"));
  }

  std::string_view in_;
  const size_t start_pos_;
  const size_t size_;
  const RecordsContext& ctx_;
};

// Parses one record's body (everything after its length varint). Calls
// visitor.OnHeader(key, value) per header, then fills `fields`.
template <typename Visitor>
absl::Status ParseRecordBody(std::string_view body, size_t body_pos,
                             const RecordsContext& ctx, Visitor& visitor,
                             RecordFields& fields) {
  RecordCursor c(body, body_pos, ctx);
  RUNNEL_RETURN_IF_ERROR(c.Skip1("attributes"));  // unused by magic 2
  RUNNEL_RETURN_IF_ERROR(c.Varint64("timestampDelta", fields.timestamp_delta));
  RUNNEL_RETURN_IF_ERROR(c.Varint32("offsetDelta", fields.offset_delta));
  RUNNEL_RETURN_IF_ERROR(c.Bytes("key", /*nullable=*/true, fields.key));
  RUNNEL_RETURN_IF_ERROR(c.Bytes("value", /*nullable=*/true, fields.value));
  const size_t count_pos = c.pos();
  int32_t header_count;
  RUNNEL_RETURN_IF_ERROR(c.Varint32("header count", header_count));
  if (header_count < 0) {
    return ctx.Error(count_pos,
                     absl::StrCat("negative header count ", header_count));
  }
  for (int32_t h = 0; h < header_count; ++h) {
    std::optional<std::string_view> key;
    std::optional<std::string_view> value;
    RUNNEL_RETURN_IF_ERROR(c.Bytes("header key", /*nullable=*/false, key));
    RUNNEL_RETURN_IF_ERROR(c.Bytes("header value", /*nullable=*/true, value));
    visitor.OnHeader(*key, value);
  }
  if (c.remaining() != 0) {
    return ctx.Error(c.pos(), absl::StrCat("record fields end ", c.remaining(),
                                           " bytes before the record length"));
  }
  return absl::OkStatus();
}

struct WalkRules {
  bool strict = true;  // offsetDelta == index, timestamps <= maxTimestamp
  // With strict: offset deltas strictly increase up to last_offset_delta
  // instead of equalling the index (a compacted batch).
  bool offset_gaps = false;
  int32_t last_offset_delta = 0;
  bool require_keys = false;  // with strict: a null key is an error
  TimestampType timestamp_type = TimestampType::kCreateTime;
  int64_t base_timestamp = 0;
  int64_t max_timestamp = 0;
};

// Checks the record length read at `pos` of the records: not negative, and
// within the `left` bytes after its varint.
absl::Status CheckRecordLength(int32_t length, size_t left, size_t pos,
                               const RecordsContext& ctx) {
  if (length < 0) {
    return ctx.Error(pos, absl::StrCat("negative record length ", length));
  }
  if (static_cast<size_t>(length) > left) {
    return ctx.Error(pos, absl::StrCat("record length ", length,
                                       " past the end of the records (", left,
                                       " bytes left)"));
  }
  return absl::OkStatus();
}

// Reads the length varint at the front of `head` (the first bytes, at most
// kMaxVarint32Bytes needed, of the `left` bytes at `pos` of the records)
// and checks that the record it announces fits. Sets `varint_size`.
absl::Status ReadRecordLength(std::string_view head, size_t left, size_t pos,
                              const RecordsContext& ctx, int32_t& length,
                              size_t& varint_size) {
  std::string_view rest = head;
  if (!GetVarint32(rest, length)) {
    const bool overlong = ClassifyVarintFailure(head, kMaxVarint32Bytes) ==
                          VarintError::kOverlong;
    return ctx.Error(pos, overlong ? "overlong record length varint"
                                   : "truncated record length varint");
  }
  varint_size = head.size() - rest.size();
  return CheckRecordLength(length, left - varint_size, pos, ctx);
}

// The records being walked, in one buffer.
class ContiguousRecords {
 public:
  explicit ContiguousRecords(std::string_view records) : rest_(records) {}
  ContiguousRecords(const ContiguousRecords&) = delete;
  ContiguousRecords& operator=(const ContiguousRecords&) = delete;

  size_t remaining() const { return rest_.size(); }
  // At least min(kMaxVarint32Bytes, remaining()) bytes from the front.
  std::string_view Head() const { return rest_; }
  void Skip(size_t n) { rest_.remove_prefix(n); }
  // The next `n` (<= remaining()) bytes; consumes them.
  std::string_view Take(size_t n) {
    std::string_view taken = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return taken;
  }

 private:
  std::string_view rest_;
};

// The records being walked, in pieces: a record inside one piece is viewed
// there, one across pieces is copied into a scratch buffer first. The
// current piece is kept as two pointers, so that a record inside it costs
// what it costs in ContiguousRecords.
class PieceRecords {
 public:
  explicit PieceRecords(std::span<const std::string_view> pieces)
      : pieces_(pieces) {
    for (std::string_view p : pieces) remaining_ += p.size();
    next_ = 0;
    NextPiece();
  }
  PieceRecords(const PieceRecords&) = delete;
  PieceRecords& operator=(const PieceRecords&) = delete;

  size_t remaining() const { return remaining_; }
  std::string_view Head() {
    const size_t here = static_cast<size_t>(end_ - cur_);
    if (here >= kMaxVarint32Bytes || here == remaining_) {
      return std::string_view(cur_, here);
    }
    const size_t n = std::min(kMaxVarint32Bytes, remaining_);
    CopyOut(n, head_);
    return std::string_view(head_, n);
  }
  void Skip(size_t n) {
    if (n < static_cast<size_t>(end_ - cur_)) {
      cur_ += n;
      remaining_ -= n;
      return;
    }
    Advance(n);
  }
  std::string_view Take(size_t n) {
    if (n < static_cast<size_t>(end_ - cur_)) {
      const std::string_view taken(cur_, n);
      cur_ += n;
      remaining_ -= n;
      return taken;
    }
    if (n == static_cast<size_t>(end_ - cur_)) {
      const std::string_view taken(cur_, n);
      Advance(n);
      return taken;
    }
    scratch_.resize(n);
    CopyOut(n, scratch_.data());
    Advance(n);
    return scratch_;
  }

 private:
  // Makes the next non-empty piece current (none left: an empty one).
  void NextPiece() {
    while (next_ < pieces_.size() && pieces_[next_].empty()) ++next_;
    if (next_ == pieces_.size()) {
      cur_ = end_ = nullptr;
      return;
    }
    cur_ = pieces_[next_].data();
    end_ = cur_ + pieces_[next_].size();
    ++next_;
  }
  void Advance(size_t n) {
    RUNNEL_DCHECK(n <= remaining_);
    remaining_ -= n;
    while (n > 0) {
      const size_t step = std::min(n, static_cast<size_t>(end_ - cur_));
      cur_ += step;
      n -= step;
      if (cur_ == end_) NextPiece();
    }
    if (cur_ == end_) NextPiece();
  }
  // Copies the next `n` bytes to `dst` without consuming them.
  void CopyOut(size_t n, char* dst) const {
    size_t done = std::min(n, static_cast<size_t>(end_ - cur_));
    std::memcpy(dst, cur_, done);
    for (size_t i = next_; done < n; ++i) {
      const size_t step = std::min(n - done, pieces_[i].size());
      std::memcpy(dst + done, pieces_[i].data(), step);
      done += step;
    }
  }

  std::span<const std::string_view> pieces_;
  size_t next_ = 0;  // the piece after the current one
  const char* cur_ = nullptr;
  const char* end_ = nullptr;
  size_t remaining_ = 0;
  char head_[kMaxVarint32Bytes];
  std::string scratch_;
};

// ValidateBatch's per-record rules: offsetDelta is the record's index (with
// offset_gaps: above the previous record's `prev_delta` and at most
// lastOffsetDelta), and under CreateTime its timestamp is at most
// maxTimestamp.
absl::Status CheckRecordRules(const RecordFields& fields, int32_t index,
                              int32_t prev_delta, size_t pos,
                              const RecordsContext& ctx,
                              const WalkRules& rules) {
  const bool delta_ok = rules.offset_gaps
                            ? fields.offset_delta > prev_delta &&
                                  fields.offset_delta <= rules.last_offset_delta
                            : fields.offset_delta == index;
  if (!delta_ok) {
    return ctx.Error(pos, absl::StrCat("record ", index, " has offsetDelta ",
                                       fields.offset_delta));
  }
  if (rules.require_keys && !fields.key.has_value()) {
    return ctx.Error(
        pos, absl::StrCat("record ", index,
                          " has no key (a compacted topic needs keys)"));
  }
  if (rules.timestamp_type != TimestampType::kCreateTime) {
    return absl::OkStatus();
  }
  int64_t timestamp;
  if (__builtin_add_overflow(rules.base_timestamp, fields.timestamp_delta,
                             &timestamp)) {
    return ctx.Error(pos,
                     absl::StrCat("record ", index, " timestamp overflows"));
  }
  if (timestamp > rules.max_timestamp) {
    return ctx.Error(
        pos, absl::StrCat("record ", index, " timestamp ", timestamp,
                          " greater than maxTimestamp ", rules.max_timestamp));
  }
  return absl::OkStatus();
}

// Walks exactly `count` records of `in` (ContiguousRecords or PieceRecords),
// calling visitor.OnRecord(fields) after each. Allocates nothing itself
// beyond PieceRecords' scratch copy of a record across pieces.
template <typename Input, typename Visitor>
absl::Status WalkRecordsFrom(Input& in, int32_t count,
                             const RecordsContext& ctx, const WalkRules& rules,
                             Visitor& visitor) {
  size_t pos = 0;
  int32_t prev_delta = -1;
  for (int32_t i = 0; i < count; ++i) {
    if (in.remaining() == 0) {
      return ctx.Error(pos,
                       absl::StrCat("record count is ", count, " but only ", i,
                                    " records are present"));
    }
    int32_t length;
    size_t varint_size;
    RUNNEL_RETURN_IF_ERROR(ReadRecordLength(in.Head(), in.remaining(), pos, ctx,
                                            length, varint_size));
    in.Skip(varint_size);
    const size_t body_pos = pos + varint_size;
    RecordFields fields;
    RUNNEL_RETURN_IF_ERROR(
        ParseRecordBody(in.Take(length), body_pos, ctx, visitor, fields));
    if (rules.strict) {
      RUNNEL_RETURN_IF_ERROR(
          CheckRecordRules(fields, i, prev_delta, pos, ctx, rules));
      prev_delta = fields.offset_delta;
    }
    RUNNEL_RETURN_IF_ERROR(visitor.OnRecord(fields));
    pos = body_pos + length;
  }
  if (in.remaining() != 0) {
    return ctx.Error(
        pos, absl::StrCat(in.remaining(), " bytes after the last of the ",
                          count, " records the header counts"));
  }
  return absl::OkStatus();
}

template <typename Visitor>
absl::Status WalkRecords(std::string_view records, int32_t count,
                         const RecordsContext& ctx, const WalkRules& rules,
                         Visitor& visitor) {
  ContiguousRecords in(records);
  return WalkRecordsFrom(in, count, ctx, rules, visitor);
}

// Validation needs no per-record work beyond the walk.
struct NullVisitor {
  void OnHeader(std::string_view, const std::optional<std::string_view>&) {}
  absl::Status OnRecord(const RecordFields&) { return absl::OkStatus(); }
};

std::optional<std::string> ToOwned(const std::optional<std::string_view>& v) {
  if (!v.has_value()) return std::nullopt;
  return std::string(*v);
}

// Builds RecordViews (headers collected in a reused vector) and hands each
// to the caller's function.
class ViewVisitor {
 public:
  ViewVisitor(const RecordBatchView& view,
              absl::FunctionRef<absl::Status(const RecordView&)> fn)
      : view_(view), fn_(fn) {}
  ViewVisitor(const ViewVisitor&) = delete;
  ViewVisitor& operator=(const ViewVisitor&) = delete;

  void OnHeader(std::string_view key,
                const std::optional<std::string_view>& value) {
    headers_.push_back(RecordHeaderView{key, value});
  }

  absl::Status OnRecord(const RecordFields& fields) {
    RecordView record;
    record.offset = WrappingAdd(view_.base_offset(), fields.offset_delta);
    record.timestamp =
        view_.timestamp_type() == TimestampType::kLogAppendTime
            ? view_.max_timestamp()
            : WrappingAdd(view_.base_timestamp(), fields.timestamp_delta);
    record.key = fields.key;
    record.value = fields.value;
    record.headers = headers_;
    absl::Status s = fn_(record);
    headers_.clear();
    return s;
  }

 private:
  const RecordBatchView& view_;
  absl::FunctionRef<absl::Status(const RecordView&)> fn_;
  std::vector<RecordHeaderView> headers_;
};

// Decompresses the records of a compressed batch, mapping the codec's errors
// onto the batch's status codes.
absl::Status DecompressRecords(Compression codec, std::string_view compressed,
                               size_t max_bytes, BatchSource source,
                               std::string& out) {
  absl::Status s = Decompress(codec, compressed, max_bytes, out);
  if (s.ok()) return s;
  if (s.code() == absl::StatusCode::kResourceExhausted) {
    return BatchError(source, kBatchHeaderSize,
                      absl::StrCat("decompressed records larger than the "
                                   "limit of ",
                                   max_bytes, " bytes"));
  }
  return BatchError(
      source, kBatchHeaderSize,
      absl::StrCat("cannot decompress records (",
                   ToAbsl(CompressionName(codec)), "): ", s.message()));
}

// Framing checks shared by Parse (over a buffer that may hold more),
// ValidateBatch (over exactly one batch) and FrameBatchHead (over a batch in
// pieces). `head` holds the first min(kBatchHeaderSize, available) of the
// `available` bytes from the batch's start. Sets `total` to 12 +
// batchLength. A buffer that ends before the batch does is kOutOfRange for
// Parse (a torn tail or a short read) and the source's code for
// ValidateBatch.
absl::Status CheckFraming(std::string_view head, size_t available,
                          BatchSource source, bool short_is_out_of_range,
                          size_t& total) {
  if (available < kBatchHeaderSize) {
    const std::string msg =
        absl::StrCat("record batch: ", available, " bytes, shorter than the ",
                     kBatchHeaderSize, "-byte header, at position 0");
    return short_is_out_of_range ? absl::OutOfRangeError(msg)
                                 : SourceError(source, msg);
  }
  RUNNEL_DCHECK(head.size() >= kBatchHeaderSize);
  const int32_t batch_length =
      static_cast<int32_t>(LoadBe32(head.data() + kBatchLengthPos));
  if (batch_length < kMinBatchLength) {
    return BatchError(source, kBatchLengthPos,
                      absl::StrCat("batchLength ", batch_length,
                                   " is less than ", kMinBatchLength));
  }
  const int8_t magic = static_cast<int8_t>(head[kMagicPos]);
  if (magic != kMagicV2) {
    return BatchError(source, kMagicPos,
                      absl::StrCat("magic ", magic, ", expected ", kMagicV2));
  }
  total = kBatchLogOverhead + static_cast<size_t>(batch_length);
  if (total > available) {
    const std::string msg =
        absl::StrCat("record batch: batchLength ", batch_length,
                     " runs past the end of the ", available,
                     "-byte buffer at position ", kBatchLengthPos);
    return short_is_out_of_range ? absl::OutOfRangeError(msg)
                                 : SourceError(source, msg);
  }
  return absl::OkStatus();
}

absl::Status CheckFraming(std::string_view bytes, BatchSource source,
                          bool short_is_out_of_range, size_t& total) {
  return CheckFraming(bytes, bytes.size(), source, short_is_out_of_range,
                      total);
}

// Encoded size of a nullable length-prefixed byte string.
size_t NullableSize(const std::optional<std::string_view>& v) {
  if (!v.has_value()) return VarintSize32(-1);
  return VarintSize32(static_cast<int32_t>(v->size())) + v->size();
}

void AppendNullable(std::string& out,
                    const std::optional<std::string_view>& v) {
  if (!v.has_value()) {
    AppendVarint32(out, -1);
    return;
  }
  AppendVarint32(out, static_cast<int32_t>(v->size()));
  out.append(*v);
}

// Fills in the 61-byte header at the front of `batch`, whose records are
// already in place, and computes the CRC last. `records_crc`, when given, is
// the CRC32C of everything after the header.
void WriteHeader(const BatchBuilderOptions& options, int32_t record_count,
                 int64_t base_timestamp, int64_t max_timestamp,
                 std::string& batch,
                 std::optional<uint32_t> records_crc = std::nullopt) {
  int16_t attributes = static_cast<int16_t>(options.compression);
  if (options.timestamp_type == TimestampType::kLogAppendTime) {
    attributes |= kTimestampTypeBit;
  }
  if (options.transactional) attributes |= kTransactionalBit;
  if (options.control) attributes |= kControlBit;

  char* h = batch.data();
  StoreBe64(h + kBaseOffsetPos, static_cast<uint64_t>(options.base_offset));
  StoreBe32(h + kBatchLengthPos,
            static_cast<uint32_t>(batch.size() - kBatchLogOverhead));
  StoreBe32(h + kPartitionLeaderEpochPos,
            static_cast<uint32_t>(options.partition_leader_epoch));
  h[kMagicPos] = static_cast<char>(kMagicV2);
  StoreBe16(h + kAttributesPos, static_cast<uint16_t>(attributes));
  StoreBe32(h + kLastOffsetDeltaPos, static_cast<uint32_t>(record_count - 1));
  StoreBe64(h + kBaseTimestampPos, static_cast<uint64_t>(base_timestamp));
  StoreBe64(h + kMaxTimestampPos, static_cast<uint64_t>(max_timestamp));
  StoreBe64(h + kProducerIdPos, static_cast<uint64_t>(options.producer_id));
  StoreBe16(h + kProducerEpochPos,
            static_cast<uint16_t>(options.producer_epoch));
  StoreBe32(h + kBaseSequencePos, static_cast<uint32_t>(options.base_sequence));
  StoreBe32(h + kRecordCountPos, static_cast<uint32_t>(record_count));
  const uint32_t crc =
      records_crc.has_value()
          ? Crc32cCombine(
                Crc32c(h + kAttributesPos, kBatchHeaderSize - kAttributesPos),
                *records_crc, batch.size() - kBatchHeaderSize)
          : Crc32c(h + kAttributesPos, batch.size() - kAttributesPos);
  StoreBe32(h + kCrcPos, crc);
}

}  // namespace

// ---- names -----------------------------------------------------------------

std::string_view CompressionName(Compression c) {
  switch (c) {
    case Compression::kNone:
      return "none";
    case Compression::kGzip:
      return "gzip";
    case Compression::kSnappy:
      return "snappy";
    case Compression::kLz4:
      return "lz4";
    case Compression::kZstd:
      return "zstd";
  }
  return "unknown";
}

absl::StatusOr<Compression> ParseCompression(std::string_view name) {
  for (Compression c :
       {Compression::kNone, Compression::kGzip, Compression::kSnappy,
        Compression::kLz4, Compression::kZstd}) {
    if (name == CompressionName(c)) return c;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown compression \"", ToAbsl(name),
                   "\" (expected none, gzip, snappy, lz4 or zstd)"));
}

// ---- RecordBatchView -------------------------------------------------------

absl::StatusOr<RecordBatchView> RecordBatchView::Parse(std::string_view bytes,
                                                       BatchSource source) {
  size_t total = 0;
  RUNNEL_RETURN_IF_ERROR(
      CheckFraming(bytes, source, /*short_is_out_of_range=*/true, total));
  return RecordBatchView(bytes.substr(0, total));
}

RecordBatchView RecordBatchView::HeaderView(std::string_view header) {
  RUNNEL_CHECK(header.size() == kBatchHeaderSize);
  return RecordBatchView(header);
}

absl::StatusOr<size_t> FrameBatchHead(std::string_view head, size_t available,
                                      BatchSource source) {
  size_t total = 0;
  RUNNEL_RETURN_IF_ERROR(CheckFraming(head, available, source,
                                      /*short_is_out_of_range=*/true, total));
  return total;
}

Offset RecordBatchView::base_offset() const {
  RUNNEL_DCHECK(bytes_.size() >= kBatchHeaderSize);
  return static_cast<Offset>(LoadBe64(bytes_.data() + kBaseOffsetPos));
}
int32_t RecordBatchView::batch_length() const {
  return static_cast<int32_t>(LoadBe32(bytes_.data() + kBatchLengthPos));
}
int32_t RecordBatchView::partition_leader_epoch() const {
  return static_cast<int32_t>(
      LoadBe32(bytes_.data() + kPartitionLeaderEpochPos));
}
int8_t RecordBatchView::magic() const {
  return static_cast<int8_t>(bytes_[kMagicPos]);
}
uint32_t RecordBatchView::crc() const {
  return LoadBe32(bytes_.data() + kCrcPos);
}
int16_t RecordBatchView::attributes() const {
  return static_cast<int16_t>(LoadBe16(bytes_.data() + kAttributesPos));
}
Compression RecordBatchView::compression() const {
  return RawCompression(attributes());
}
TimestampType RecordBatchView::timestamp_type() const {
  return (attributes() & kTimestampTypeBit) != 0 ? TimestampType::kLogAppendTime
                                                 : TimestampType::kCreateTime;
}
bool RecordBatchView::is_transactional() const {
  return (attributes() & kTransactionalBit) != 0;
}
bool RecordBatchView::is_control() const {
  return (attributes() & kControlBit) != 0;
}
int32_t RecordBatchView::last_offset_delta() const {
  return static_cast<int32_t>(LoadBe32(bytes_.data() + kLastOffsetDeltaPos));
}
int64_t RecordBatchView::base_timestamp() const {
  return static_cast<int64_t>(LoadBe64(bytes_.data() + kBaseTimestampPos));
}
int64_t RecordBatchView::max_timestamp() const {
  return static_cast<int64_t>(LoadBe64(bytes_.data() + kMaxTimestampPos));
}
int64_t RecordBatchView::producer_id() const {
  return static_cast<int64_t>(LoadBe64(bytes_.data() + kProducerIdPos));
}
int16_t RecordBatchView::producer_epoch() const {
  return static_cast<int16_t>(LoadBe16(bytes_.data() + kProducerEpochPos));
}
int32_t RecordBatchView::base_sequence() const {
  return static_cast<int32_t>(LoadBe32(bytes_.data() + kBaseSequencePos));
}
int32_t RecordBatchView::record_count() const {
  return static_cast<int32_t>(LoadBe32(bytes_.data() + kRecordCountPos));
}

uint32_t RecordBatchView::ComputeCrc() const {
  RUNNEL_DCHECK(bytes_.size() >= kBatchHeaderSize);
  return Crc32c(bytes_.data() + kAttributesPos, bytes_.size() - kAttributesPos);
}

absl::Status RecordBatchView::ForEachRecord(
    const std::function<absl::Status(Record)>& fn, BatchSource source) const {
  std::string decompressed;
  return ForEachRecordView(
      [&fn](const RecordView& v) {
        Record record;
        record.offset = v.offset;
        record.timestamp = v.timestamp;
        record.key = ToOwned(v.key);
        record.value = ToOwned(v.value);
        record.headers.reserve(v.headers.size());
        for (const RecordHeaderView& h : v.headers) {
          record.headers.push_back(
              RecordHeader{std::string(h.key), ToOwned(h.value)});
        }
        return fn(std::move(record));
      },
      &decompressed, source);
}

absl::Status RecordBatchView::ForEachRecordView(
    absl::FunctionRef<absl::Status(const RecordView&)> fn,
    std::string* decompressed, BatchSource source) const {
  if (!IsKnownCompression(attributes())) {
    return BatchError(source, kAttributesPos,
                      absl::StrCat("unknown compression codec ",
                                   attributes() & kCompressionMask));
  }
  const int32_t count = record_count();
  if (count < 0) {
    return BatchError(source, kRecordCountPos,
                      absl::StrCat("negative record count ", count));
  }
  // Decoding is lenient where Validate is strict about offset deltas and
  // timestamps: a compacted batch keeps its records' original offset deltas.
  const WalkRules rules{.strict = false};
  ViewVisitor visitor(*this, fn);
  const std::string_view records = bytes_.substr(kBatchHeaderSize);
  if (compression() == Compression::kNone) {
    return WalkRecords(records, count,
                       RecordsContext{source, kBatchHeaderSize, false}, rules,
                       visitor);
  }
  RUNNEL_RETURN_IF_ERROR(DecompressRecords(compression(), records,
                                           kDefaultMaxDecompressedBytes, source,
                                           *decompressed));
  return WalkRecords(*decompressed, count,
                     RecordsContext{source, kBatchHeaderSize, true}, rules,
                     visitor);
}

absl::StatusOr<std::vector<Record>> RecordBatchView::DecodeRecords(
    BatchSource source) const {
  std::vector<Record> out;
  // record_count comes from untrusted bytes: reserve only a little up front.
  out.reserve(static_cast<size_t>(std::clamp(record_count(), 0, 1024)));
  RUNNEL_RETURN_IF_ERROR(ForEachRecord(
      [&out](Record r) {
        out.push_back(std::move(r));
        return absl::OkStatus();
      },
      source));
  return out;
}

absl::StatusOr<std::vector<RecordBatchView>> SplitBatches(
    std::string_view bytes, BatchSource source) {
  std::vector<RecordBatchView> views;
  size_t pos = 0;
  while (pos < bytes.size()) {
    absl::StatusOr<RecordBatchView> view =
        RecordBatchView::Parse(bytes.substr(pos), source);
    if (!view.ok()) {
      return absl::Status(view.status().code(),
                          absl::StrCat("batch at buffer position ", pos, ": ",
                                       view.status().message()));
    }
    pos += view->size_bytes();
    views.push_back(*view);
  }
  return views;
}

// ---- validation ------------------------------------------------------------

namespace {

// ValidateBatch's checks of the header fields behind the framing, the size
// limit and the CRC: codec, record count and lastOffsetDelta (with
// offset_gaps: room for the records, see ValidateOptions).
absl::Status ValidateHeaderFields(const RecordBatchView& view,
                                  BatchSource source, bool offset_gaps) {
  if (!IsKnownCompression(view.attributes())) {
    return BatchError(source, kAttributesPos,
                      absl::StrCat("unknown compression codec ",
                                   view.attributes() & kCompressionMask));
  }
  const int32_t count = view.record_count();
  if (count <= 0) {
    return BatchError(source, kRecordCountPos,
                      absl::StrCat("record count ", count, " is not positive"));
  }
  if (offset_gaps ? view.last_offset_delta() < count - 1
                  : view.last_offset_delta() != count - 1) {
    return BatchError(source, kLastOffsetDeltaPos,
                      absl::StrCat("lastOffsetDelta ", view.last_offset_delta(),
                                   " with ", count, " records"));
  }
  return absl::OkStatus();
}

}  // namespace

uint32_t ComputeBatchCrc(std::string_view header,
                         std::span<const std::string_view> body) {
  RUNNEL_DCHECK(header.size() == kBatchHeaderSize);
  return Crc32cPieces(
      Crc32c(header.data() + kAttributesPos, kBatchHeaderSize - kAttributesPos),
      body);
}

absl::Status ValidateBatch(std::string_view bytes,
                           const ValidateOptions& options) {
  // One batch in one buffer is a batch in one piece after its header.
  const size_t head = std::min(bytes.size(), kBatchHeaderSize);
  const std::string_view body = bytes.substr(head);
  return ValidateBatchPieces(bytes.substr(0, head),
                             std::span<const std::string_view>(&body, 1),
                             options);
}

absl::Status ValidateBatchPieces(std::string_view header,
                                 std::span<const std::string_view> body,
                                 const ValidateOptions& options) {
  size_t size = header.size();
  for (std::string_view p : body) size += p.size();
  RUNNEL_CHECK(header.size() == std::min(size, kBatchHeaderSize));
  const BatchSource source = options.source;
  size_t total = 0;
  RUNNEL_RETURN_IF_ERROR(CheckFraming(header, size, source,
                                      /*short_is_out_of_range=*/false, total));
  if (size != total) {
    return BatchError(
        source, total,
        absl::StrCat(size - total, " trailing bytes after the batch"));
  }
  const RecordBatchView view = RecordBatchView::HeaderView(header);
  if (size > options.max_batch_bytes) {
    return BatchError(source, 0,
                      absl::StrCat("batch of ", size, " bytes too large (max ",
                                   options.max_batch_bytes, ")"));
  }
  if (options.check_crc) {
    const uint32_t computed = ComputeBatchCrc(header, body);
    if (computed != view.crc()) {
      return BatchError(source, kCrcPos,
                        absl::StrCat("crc mismatch: stored ", view.crc(),
                                     ", computed ", computed));
    }
  }
  RUNNEL_RETURN_IF_ERROR(
      ValidateHeaderFields(view, source, options.offset_gaps));

  const WalkRules rules{.strict = true,
                        .offset_gaps = options.offset_gaps,
                        .last_offset_delta = view.last_offset_delta(),
                        .require_keys = options.require_keys,
                        .timestamp_type = view.timestamp_type(),
                        .base_timestamp = view.base_timestamp(),
                        .max_timestamp = view.max_timestamp()};
  NullVisitor visitor;
  if (view.compression() == Compression::kNone) {
    PieceRecords records(body);
    return WalkRecordsFrom(records, view.record_count(),
                           RecordsContext{source, kBatchHeaderSize, false},
                           rules, visitor);
  }
  // The codecs take one buffer: pieces are joined (one piece is used as is).
  std::string joined;
  std::string_view compressed;
  if (body.size() == 1) {
    compressed = body[0];
  } else {
    for (std::string_view p : body) joined.append(p);
    compressed = joined;
  }
  std::string decompressed;
  RUNNEL_RETURN_IF_ERROR(DecompressRecords(view.compression(), compressed,
                                           options.max_decompressed_bytes,
                                           source, decompressed));
  return WalkRecords(decompressed, view.record_count(),
                     RecordsContext{source, kBatchHeaderSize, true}, rules,
                     visitor);
}

// ---- in-place header edits -------------------------------------------------

void SetBaseOffset(char* batch, Offset base_offset) {
  StoreBe64(batch + kBaseOffsetPos, static_cast<uint64_t>(base_offset));
}

void SetPartitionLeaderEpoch(char* batch, int32_t epoch) {
  StoreBe32(batch + kPartitionLeaderEpochPos, static_cast<uint32_t>(epoch));
}

void StampLogAppendTime(char* batch, size_t size, int64_t timestamp_ms) {
  RUNNEL_CHECK(size >= kBatchHeaderSize);
  const uint16_t attributes = LoadBe16(batch + kAttributesPos);
  StoreBe16(batch + kAttributesPos,
            static_cast<uint16_t>(attributes | kTimestampTypeBit));
  StoreBe64(batch + kBaseTimestampPos, static_cast<uint64_t>(timestamp_ms));
  StoreBe64(batch + kMaxTimestampPos, static_cast<uint64_t>(timestamp_ms));
  StoreBe32(batch + kCrcPos,
            Crc32c(batch + kAttributesPos, size - kAttributesPos));
}

void AppendRecordEncoding(std::string& out, int64_t timestamp_delta,
                          int32_t offset_delta,
                          std::optional<std::string_view> key,
                          std::optional<std::string_view> value,
                          std::span<const RecordHeaderView> headers) {
  size_t body_size = 1 + VarintSize64(timestamp_delta) +
                     VarintSize32(offset_delta) + NullableSize(key) +
                     NullableSize(value) +
                     VarintSize32(static_cast<int32_t>(headers.size()));
  for (const RecordHeaderView& h : headers) {
    body_size += VarintSize32(static_cast<int32_t>(h.key.size())) +
                 h.key.size() + NullableSize(h.value);
  }
  RUNNEL_CHECK(body_size <= INT32_MAX);

  // The fixed fields in one append: length, attributes, the two deltas and
  // the key's length.
  char prefix[kMaxVarint32Bytes + 1 + kMaxVarint64Bytes + kMaxVarint32Bytes +
              kMaxVarint32Bytes];
  char* p = prefix;
  p += PutVarint32(p, static_cast<int32_t>(body_size));
  *p++ = '\0';  // record attributes: unused
  p += PutVarint64(p, timestamp_delta);
  p += PutVarint32(p, offset_delta);
  p += PutVarint32(p, key.has_value() ? static_cast<int32_t>(key->size()) : -1);
  out.append(prefix, static_cast<size_t>(p - prefix));
  if (key.has_value()) out.append(*key);
  AppendNullable(out, value);
  AppendVarint32(out, static_cast<int32_t>(headers.size()));
  for (const RecordHeaderView& h : headers) {
    AppendVarint32(out, static_cast<int32_t>(h.key.size()));
    out.append(h.key);
    AppendNullable(out, h.value);
  }
}

absl::StatusOr<FilteredBatch> FilterBatch(
    const RecordBatchView& batch,
    absl::FunctionRef<bool(const RecordView&)> keep) {
  FilteredBatch out;
  std::string records;
  std::string decompressed;
  // First only look: most batches a pass sees keep every record, and those
  // need no encoding.
  int32_t removed = 0;
  RUNNEL_RETURN_IF_ERROR(batch.ForEachRecordView(
      [&](const RecordView& r) {
        if (!keep(r)) ++removed;
        return absl::OkStatus();
      },
      &decompressed, BatchSource::kDisk));
  if (removed == 0) {
    out.kept = batch.record_count();
    return out;
  }
  const int64_t base_timestamp = batch.base_timestamp();
  int64_t max_timestamp = kNoTimestamp;
  RUNNEL_RETURN_IF_ERROR(batch.ForEachRecordView(
      [&](const RecordView& r) {
        if (!keep(r)) {
          ++out.removed;
          return absl::OkStatus();
        }
        ++out.kept;
        max_timestamp = std::max(max_timestamp, r.timestamp);
        AppendRecordEncoding(
            records, WrappingSub(r.timestamp, base_timestamp),
            static_cast<int32_t>(r.offset - batch.base_offset()), r.key,
            r.value,
            std::span<const RecordHeaderView>(r.headers.data(),
                                              r.headers.size()));
        return absl::OkStatus();
      },
      &decompressed, BatchSource::kDisk));
  if (out.removed == 0) return out;
  if (out.kept == 0) {
    out.kind = FilteredBatch::Kind::kEmpty;
    return out;
  }
  out.kind = FilteredBatch::Kind::kRewritten;
  out.bytes.assign(batch.bytes().substr(0, kBatchHeaderSize));
  if (batch.compression() == Compression::kNone) {
    out.bytes.append(records);
  } else {
    absl::Status s = Compress(batch.compression(), records, 0, out.bytes);
    if (!s.ok()) return absl::InternalError(s.message());
  }
  char* h = out.bytes.data();
  StoreBe32(h + kBatchLengthPos,
            static_cast<uint32_t>(out.bytes.size() - kBatchLogOverhead));
  StoreBe32(h + kRecordCountPos, static_cast<uint32_t>(out.kept));
  if (batch.timestamp_type() == TimestampType::kCreateTime) {
    StoreBe64(h + kMaxTimestampPos, static_cast<uint64_t>(max_timestamp));
  }
  StoreBe32(h + kCrcPos,
            Crc32c(h + kAttributesPos, out.bytes.size() - kAttributesPos));
  return out;
}

// ---- RecordBatchBuilder ----------------------------------------------------

RecordBatchBuilder::RecordBatchBuilder(BatchBuilderOptions options)
    : options_(options) {}

void RecordBatchBuilder::Append(int64_t timestamp_ms,
                                std::optional<std::string_view> key,
                                std::optional<std::string_view> value,
                                const std::vector<RecordHeader>& headers) {
  absl::InlinedVector<RecordHeaderView, 4> views;
  views.reserve(headers.size());
  for (const RecordHeader& h : headers) {
    views.push_back(RecordHeaderView{h.key, AsView(h.value)});
  }
  Append(timestamp_ms, key, value, std::span<const RecordHeaderView>(views));
}

void RecordBatchBuilder::Append(int64_t timestamp_ms,
                                std::optional<std::string_view> key,
                                std::optional<std::string_view> value,
                                std::span<const RecordHeaderView> headers) {
  RUNNEL_CHECK(!key.has_value() || key->size() <= INT32_MAX);
  RUNNEL_CHECK(!value.has_value() || value->size() <= INT32_MAX);
  RUNNEL_CHECK(record_count_ < INT32_MAX);
  if (record_count_ == 0) {
    base_timestamp_ = timestamp_ms;
    max_timestamp_ = timestamp_ms;
  }
  max_timestamp_ = std::max(max_timestamp_, timestamp_ms);
  AppendRecordEncoding(records_, WrappingSub(timestamp_ms, base_timestamp_),
                       record_count_, key, value, headers);
  ++record_count_;
  if (options_.compression == Compression::kNone &&
      records_.size() - crc_end_ >= kCrcChunkBytes) {
    ExtendRecordsCrc();
  }
}

void RecordBatchBuilder::ExtendRecordsCrc() {
  records_crc_ = Crc32cExtend(records_crc_, records_.data() + crc_end_,
                              records_.size() - crc_end_);
  crc_end_ = records_.size();
}

absl::StatusOr<std::string> RecordBatchBuilder::Build() {
  if (record_count_ == 0) {
    return absl::InvalidArgumentError("record batch: no records to build");
  }
  const auto too_large = [](size_t size) {
    return absl::InvalidArgumentError(
        absl::StrCat("record batch: ", size, " bytes is too large"));
  };
  std::string out;
  std::optional<uint32_t> records_crc;
  if (options_.compression == Compression::kNone) {
    // The records were encoded behind room for the header: no copy.
    if (records_.size() - kBatchLogOverhead > INT32_MAX) {
      return too_large(records_.size());
    }
    if (crc_end_ > kBatchHeaderSize) {  // a large batch: finish the CRC
      ExtendRecordsCrc();
      records_crc = records_crc_;
    }
    out = std::move(records_);
  } else {
    out.resize(kBatchHeaderSize);
    absl::Status s =
        Compress(options_.compression,
                 std::string_view(records_).substr(kBatchHeaderSize),
                 options_.compression_level, out);
    if (!s.ok()) return absl::InternalError(s.message());
    if (out.size() - kBatchLogOverhead > INT32_MAX) {
      return too_large(out.size());
    }
  }
  WriteHeader(options_, record_count_, base_timestamp_, max_timestamp_, out,
              records_crc);
  records_.assign(kBatchHeaderSize, '\0');
  records_crc_ = 0;
  crc_end_ = kBatchHeaderSize;
  record_count_ = 0;
  base_timestamp_ = 0;
  max_timestamp_ = 0;
  return out;
}

}  // namespace runnel::log
