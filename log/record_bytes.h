#pragma once

// The record batches of one produce request for one partition, as the broker
// received them: one owned string, or the pieces of memory gRPC read them
// into (one HTTP/2 frame's payload each), kept alive by an owner handle.
// Holding the pieces lets the append path copy them straight into the
// O_DIRECT append buffer instead of first joining them into a string
// (docs/wire-protocol.md, after the version history).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace runnel::log {

class RecordBytes {
 public:
  RecordBytes() = default;
  // Implicit: most producers of batches (tests, the unary Produce, the
  // follower) hold one string.
  RecordBytes(std::string bytes);  // NOLINT(google-explicit-constructor)
  // `pieces` in order; `owner` keeps their memory alive and is released with
  // this object (a shared_ptr: one gRPC message's slices back the records of
  // every partition in it).
  RecordBytes(std::vector<std::string_view> pieces,
              std::shared_ptr<const void> owner);
  RecordBytes(const RecordBytes&) = delete;
  RecordBytes& operator=(const RecordBytes&) = delete;
  RecordBytes(RecordBytes&&) noexcept = default;
  RecordBytes& operator=(RecordBytes&&) noexcept = default;
  ~RecordBytes() = default;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Whether the bytes are one owned string (TakeString moves it out).
  bool is_string() const { return pieces_.empty(); }
  // The bytes as one string: the string itself, or the pieces joined.
  std::string TakeString() &&;
  // Copies bytes [pos, pos + n) to `dst`. RUNNEL_CHECKs the range.
  void CopyTo(size_t pos, size_t n, char* dst) const;
  // Appends views of bytes [pos, pos + n) to `out`, split where the pieces
  // are. RUNNEL_CHECKs the range.
  void Slice(size_t pos, size_t n, std::vector<std::string_view>& out) const;

 private:
  // Calls fn(view) for each piece of bytes [pos, pos + n), in order.
  template <typename Fn>
  void ForEachSlice(size_t pos, size_t n, Fn fn) const;

  std::string string_;
  std::vector<std::string_view> pieces_;
  std::shared_ptr<const void> owner_;
  size_t size_ = 0;
};

// CRC32C of the bytes of `pieces`, in order, starting at `crc` (Crc32cExtend
// across the pieces).
uint32_t Crc32cPieces(uint32_t crc, std::span<const std::string_view> pieces);

}  // namespace runnel::log
