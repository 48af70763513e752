#include "log/compression.h"

#include <lz4frame.h>
#include <snappy.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <memory>

#include "absl/strings/str_cat.h"

#include "common/endian.h"

namespace runnel::log {
namespace {

// zlib counts in uInt; batches are far smaller (batchLength is an int32), so
// anything above this is refused rather than fed in pieces.
constexpr size_t kMaxZlibChunk = UINT_MAX;
constexpr size_t kMinOutputChunk = 64 << 10;
constexpr size_t kSnappyMaxExpansion = 32;

absl::Status Malformed(absl::string_view codec, absl::string_view what,
                       size_t pos) {
  return absl::InvalidArgumentError(absl::StrCat(
      codec, ": ", what, " at position ", pos, " of the compressed data"));
}

absl::Status TooLarge(absl::string_view codec, size_t max_output_bytes) {
  return absl::ResourceExhaustedError(
      absl::StrCat(codec, ": decompressed data larger than the limit of ",
                   max_output_bytes, " bytes"));
}

// The output string of a streaming decompressor. It grows geometrically up to
// a cap of max + 1 bytes: reaching the cap proves the output is over the
// limit without ever allocating much past it.
class BoundedOutput {
 public:
  BoundedOutput(std::string& out, size_t max_bytes, size_t size_hint)
      : out_(out),
        max_bytes_(max_bytes),
        cap_(max_bytes == SIZE_MAX ? max_bytes : max_bytes + 1) {
    out_.clear();
    out_.resize(std::min(cap_, std::max(size_hint, size_t{1})));
  }
  BoundedOutput(const BoundedOutput&) = delete;
  BoundedOutput& operator=(const BoundedOutput&) = delete;

  char* next() { return out_.data() + produced_; }
  size_t avail() const { return out_.size() - produced_; }
  size_t produced() const { return produced_; }
  bool over_limit() const { return produced_ > max_bytes_; }
  void Commit(size_t n) { produced_ += n; }

  // Makes room after the buffer filled up. False when already at the cap.
  bool Grow() {
    if (out_.size() >= cap_) return false;
    const size_t grown = std::max(out_.size() * 2, kMinOutputChunk);
    out_.resize(std::min(cap_, grown));
    return true;
  }
  void Finish() { out_.resize(produced_); }

 private:
  std::string& out_;
  const size_t max_bytes_;
  const size_t cap_;
  size_t produced_ = 0;
};

// ---- gzip ----------------------------------------------------------------

absl::Status GzipCompress(std::string_view in, int level, std::string& out) {
  if (in.size() > kMaxZlibChunk) {
    return absl::InvalidArgumentError("gzip: input too large");
  }
  z_stream zs{};
  if (deflateInit2(&zs, level == 0 ? Z_DEFAULT_COMPRESSION : level, Z_DEFLATED,
                   15 + 16 /* gzip wrapper */, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return absl::InternalError("gzip: deflateInit2 failed");
  }
  const size_t old_size = out.size();
  const size_t bound = deflateBound(&zs, static_cast<uLong>(in.size()));
  out.resize(old_size + bound);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data() + old_size);
  zs.avail_out = static_cast<uInt>(bound);
  const int rc = deflate(&zs, Z_FINISH);
  const size_t written = bound - zs.avail_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) {
    out.resize(old_size);
    return absl::InternalError(absl::StrCat("gzip: deflate failed: ", rc));
  }
  out.resize(old_size + written);
  return absl::OkStatus();
}

absl::Status GzipDecompress(std::string_view in, size_t max_bytes,
                            std::string& out) {
  if (in.size() > kMaxZlibChunk) return Malformed("gzip", "input too large", 0);
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16 /* gzip only */) != Z_OK) {
    return absl::InternalError("gzip: inflateInit2 failed");
  }
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&zs, inflateEnd);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  BoundedOutput buf(out, max_bytes, in.size() * 4);
  for (;;) {
    if (buf.avail() == 0 && !buf.Grow()) return TooLarge("gzip", max_bytes);
    const size_t avail = std::min(buf.avail(), kMaxZlibChunk);
    zs.next_out = reinterpret_cast<Bytef*>(buf.next());
    zs.avail_out = static_cast<uInt>(avail);
    const int rc = inflate(&zs, Z_NO_FLUSH);
    buf.Commit(avail - zs.avail_out);
    if (buf.over_limit()) return TooLarge("gzip", max_bytes);
    const size_t pos = in.size() - zs.avail_in;
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      // Several gzip members one after another, as GZIPInputStream reads.
      if (inflateReset(&zs) != Z_OK) return Malformed("gzip", "reset", pos);
      continue;
    }
    if (rc == Z_BUF_ERROR && zs.avail_out == 0) continue;  // needs room
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return Malformed("gzip", zs.msg != nullptr ? zs.msg : "corrupt stream",
                       pos);
    }
    if (zs.avail_in == 0 && zs.avail_out != 0) {
      return Malformed("gzip", "truncated stream", pos);
    }
  }
  buf.Finish();
  return absl::OkStatus();
}

// ---- snappy --------------------------------------------------------------

absl::Status SnappyCompress(std::string_view in, std::string& out) {
  const size_t old_size = out.size();
  out.resize(old_size + snappy::MaxCompressedLength(in.size()));
  size_t written = 0;
  snappy::RawCompress(in.data(), in.size(), out.data() + old_size, &written);
  out.resize(old_size + written);
  return absl::OkStatus();
}

// Appends the raw snappy block `in` (found at `pos` of the whole input).
absl::Status SnappyRawAppend(std::string_view in, size_t pos, size_t max_bytes,
                             std::string& out) {
  size_t length = 0;
  if (!snappy::GetUncompressedLength(in.data(), in.size(), &length)) {
    return Malformed("snappy", "bad block length", pos);
  }
  // No snappy element expands more than 64 bytes from 3 (a 2-byte-offset
  // copy), so a declared length above 32x the input is a lie: refuse it
  // before allocating.
  if (length / kSnappyMaxExpansion > in.size()) {
    return Malformed("snappy", "impossible block length", pos);
  }
  if (length > max_bytes || out.size() > max_bytes - length) {
    return TooLarge("snappy", max_bytes);
  }
  const size_t old_size = out.size();
  out.resize(old_size + length);
  if (!snappy::RawUncompress(in.data(), in.size(), out.data() + old_size)) {
    return Malformed("snappy", "corrupt block", pos);
  }
  return absl::OkStatus();
}

// snappy-java's SnappyOutputStream: a 16-byte header, then chunks of
// [BE32 compressed length][raw snappy block].
absl::Status XerialDecompress(std::string_view in, size_t max_bytes,
                              std::string& out) {
  if (in.size() < kXerialHeaderSize) {
    return Malformed("snappy", "truncated xerial header", 0);
  }
  size_t pos = kXerialHeaderSize;
  while (pos < in.size()) {
    if (in.size() - pos < 4) {
      return Malformed("snappy", "truncated xerial chunk length", pos);
    }
    const size_t length = LoadBe32(in.data() + pos);
    pos += 4;
    if (length > in.size() - pos) {
      return Malformed("snappy", "xerial chunk past the end", pos - 4);
    }
    if (length > 0) {
      absl::Status s =
          SnappyRawAppend(in.substr(pos, length), pos, max_bytes, out);
      if (!s.ok()) return s;
    }
    pos += length;
  }
  return absl::OkStatus();
}

absl::Status SnappyDecompress(std::string_view in, size_t max_bytes,
                              std::string& out) {
  out.clear();
  if (in.substr(0, kXerialMagic.size()) == kXerialMagic) {
    return XerialDecompress(in, max_bytes, out);
  }
  return SnappyRawAppend(in, 0, max_bytes, out);
}

// ---- lz4 -----------------------------------------------------------------

absl::Status Lz4Compress(std::string_view in, int level, std::string& out) {
  // What Kafka's KafkaLZ4BlockOutputStream writes: 64 KiB independent
  // blocks, no content size, no content checksum.
  LZ4F_preferences_t prefs{};
  prefs.frameInfo.blockSizeID = LZ4F_max64KB;
  prefs.frameInfo.blockMode = LZ4F_blockIndependent;
  prefs.compressionLevel = level;
  const size_t old_size = out.size();
  const size_t bound = LZ4F_compressFrameBound(in.size(), &prefs);
  out.resize(old_size + bound);
  const size_t rc = LZ4F_compressFrame(out.data() + old_size, bound, in.data(),
                                       in.size(), &prefs);
  if (LZ4F_isError(rc)) {
    out.resize(old_size);
    return absl::InternalError(
        absl::StrCat("lz4: compress failed: ", LZ4F_getErrorName(rc)));
  }
  out.resize(old_size + rc);
  return absl::OkStatus();
}

absl::Status Lz4Decompress(std::string_view in, size_t max_bytes,
                           std::string& out) {
  LZ4F_dctx* raw_dctx = nullptr;
  if (LZ4F_isError(LZ4F_createDecompressionContext(&raw_dctx, LZ4F_VERSION))) {
    return absl::InternalError("lz4: cannot create a decompression context");
  }
  std::unique_ptr<LZ4F_dctx, LZ4F_errorCode_t (*)(LZ4F_dctx*)> dctx(
      raw_dctx, LZ4F_freeDecompressionContext);
  BoundedOutput buf(out, max_bytes, in.size() * 4);
  size_t pos = 0;
  for (;;) {
    if (buf.avail() == 0 && !buf.Grow()) return TooLarge("lz4", max_bytes);
    size_t dst_size = buf.avail();
    size_t src_size = in.size() - pos;
    const size_t rc = LZ4F_decompress(dctx.get(), buf.next(), &dst_size,
                                      in.data() + pos, &src_size, nullptr);
    if (LZ4F_isError(rc)) return Malformed("lz4", LZ4F_getErrorName(rc), pos);
    const bool output_full = dst_size == buf.avail();
    pos += src_size;
    buf.Commit(dst_size);
    if (buf.over_limit()) return TooLarge("lz4", max_bytes);
    if (rc == 0) {  // a frame ended; another may follow
      if (pos == in.size()) break;
      continue;
    }
    if (pos == in.size() && !output_full) {
      return Malformed("lz4", "truncated frame", pos);
    }
    if (src_size == 0 && dst_size == 0 && !output_full) {
      return Malformed("lz4", "no progress", pos);
    }
  }
  buf.Finish();
  return absl::OkStatus();
}

// ---- zstd ----------------------------------------------------------------

absl::Status ZstdCompress(std::string_view in, int level, std::string& out) {
  const size_t old_size = out.size();
  const size_t bound = ZSTD_compressBound(in.size());
  out.resize(old_size + bound);
  const size_t rc =
      ZSTD_compress(out.data() + old_size, bound, in.data(), in.size(),
                    level == 0 ? ZSTD_CLEVEL_DEFAULT : level);
  if (ZSTD_isError(rc)) {
    out.resize(old_size);
    return absl::InternalError(
        absl::StrCat("zstd: compress failed: ", ZSTD_getErrorName(rc)));
  }
  out.resize(old_size + rc);
  return absl::OkStatus();
}

absl::Status ZstdDecompress(std::string_view in, size_t max_bytes,
                            std::string& out) {
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(),
                                                          ZSTD_freeDCtx);
  if (dctx == nullptr) return absl::InternalError("zstd: no context");
  // A frame that declares its size lets us allocate once; the declared size is
  // only a hint, the bound is enforced on what is actually produced.
  size_t hint = in.size() * 4;
  const unsigned long long declared =
      ZSTD_getFrameContentSize(in.data(), in.size());
  if (declared != ZSTD_CONTENTSIZE_UNKNOWN &&
      declared != ZSTD_CONTENTSIZE_ERROR) {
    if (declared > max_bytes) return TooLarge("zstd", max_bytes);
    hint = std::max<size_t>(declared, 1);
  }
  BoundedOutput buf(out, max_bytes, hint);
  ZSTD_inBuffer input{in.data(), in.size(), 0};
  for (;;) {
    if (buf.avail() == 0 && !buf.Grow()) return TooLarge("zstd", max_bytes);
    ZSTD_outBuffer output{buf.next(), buf.avail(), 0};
    const size_t in_before = input.pos;
    const size_t rc = ZSTD_decompressStream(dctx.get(), &output, &input);
    if (ZSTD_isError(rc)) {
      return Malformed("zstd", ZSTD_getErrorName(rc), input.pos);
    }
    const bool output_full = output.pos == output.size;
    buf.Commit(output.pos);
    if (buf.over_limit()) return TooLarge("zstd", max_bytes);
    if (rc == 0) {  // a frame ended; another may follow
      if (input.pos == input.size) break;
      continue;
    }
    if (input.pos == input.size && !output_full) {
      return Malformed("zstd", "truncated frame", input.pos);
    }
    if (input.pos == in_before && output.pos == 0 && !output_full) {
      return Malformed("zstd", "no progress", input.pos);
    }
  }
  buf.Finish();
  return absl::OkStatus();
}

}  // namespace

absl::Status Compress(Compression codec, std::string_view input, int level,
                      std::string& out) {
  switch (codec) {
    case Compression::kGzip:
      return GzipCompress(input, level, out);
    case Compression::kSnappy:
      return SnappyCompress(input, out);
    case Compression::kLz4:
      return Lz4Compress(input, level, out);
    case Compression::kZstd:
      return ZstdCompress(input, level, out);
    case Compression::kNone:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "compress: not a compression codec: ", static_cast<int>(codec)));
}

absl::Status Decompress(Compression codec, std::string_view input,
                        size_t max_output_bytes, std::string& out) {
  switch (codec) {
    case Compression::kGzip:
      return GzipDecompress(input, max_output_bytes, out);
    case Compression::kSnappy:
      return SnappyDecompress(input, max_output_bytes, out);
    case Compression::kLz4:
      return Lz4Decompress(input, max_output_bytes, out);
    case Compression::kZstd:
      return ZstdDecompress(input, max_output_bytes, out);
    case Compression::kNone:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "decompress: not a compression codec: ", static_cast<int>(codec)));
}

}  // namespace runnel::log
