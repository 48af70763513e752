#include "log/record_bytes.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "common/check.h"
#include "common/crc32c.h"

namespace runnel::log {

RecordBytes::RecordBytes(std::string bytes)
    : string_(std::move(bytes)), size_(string_.size()) {}

RecordBytes::RecordBytes(std::vector<std::string_view> pieces,
                         std::shared_ptr<const void> owner)
    : owner_(std::move(owner)) {
  for (std::string_view p : pieces) {
    if (!p.empty()) pieces_.push_back(p);
    size_ += p.size();
  }
}

std::string RecordBytes::TakeString() && {
  if (is_string()) return std::move(string_);
  std::string joined;
  joined.resize(size_);
  CopyTo(0, size_, joined.data());
  return joined;
}

template <typename Fn>
void RecordBytes::ForEachSlice(size_t pos, size_t n, Fn fn) const {
  RUNNEL_CHECK(pos <= size_ && n <= size_ - pos);
  if (n == 0) return;
  if (is_string()) {
    fn(std::string_view(string_).substr(pos, n));
    return;
  }
  for (std::string_view p : pieces_) {
    if (pos >= p.size()) {
      pos -= p.size();
      continue;
    }
    const size_t take = std::min(n, p.size() - pos);
    fn(p.substr(pos, take));
    n -= take;
    pos = 0;
    if (n == 0) return;
  }
}

void RecordBytes::CopyTo(size_t pos, size_t n, char* dst) const {
  ForEachSlice(pos, n, [&dst](std::string_view v) {
    std::memcpy(dst, v.data(), v.size());
    dst += v.size();
  });
}

void RecordBytes::Slice(size_t pos, size_t n,
                        std::vector<std::string_view>& out) const {
  ForEachSlice(pos, n, [&out](std::string_view v) { out.push_back(v); });
}

uint32_t Crc32cPieces(uint32_t crc, std::span<const std::string_view> pieces) {
  for (std::string_view p : pieces) crc = Crc32cExtend(crc, p.data(), p.size());
  return crc;
}

}  // namespace runnel::log
