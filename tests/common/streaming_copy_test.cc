#include "common/streaming_copy.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "gtest/gtest.h"

namespace runnel {
namespace {

// Bytes that differ at every position (and from the destination's filler),
// so a byte copied from the wrong place or left out shows.
std::string Pattern(size_t size) {
  std::string s(size, '\0');
  uint32_t x = 2463534242u;
  for (char& c : s) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x | 1);
  }
  return s;
}

// Copies `size` bytes from offset `src_off` of a pattern to offset `dst_off`
// of a zeroed buffer and checks the copy and that nothing around it changed.
void CheckCopy(size_t size, size_t src_off, size_t dst_off) {
  const std::string src = Pattern(size + src_off);
  constexpr size_t kGuard = 80;
  std::string dst(kGuard + dst_off + size + kGuard, '\0');
  StreamingCopy(dst.data() + kGuard + dst_off, src.data() + src_off, size);
  ASSERT_EQ(
      0, std::memcmp(dst.data() + kGuard + dst_off, src.data() + src_off, size))
      << "size " << size << " src_off " << src_off << " dst_off " << dst_off;
  for (size_t i = 0; i < kGuard + dst_off; ++i) {
    ASSERT_EQ(dst[i], '\0') << "wrote before the destination at " << i;
  }
  for (size_t i = kGuard + dst_off + size; i < dst.size(); ++i) {
    ASSERT_EQ(dst[i], '\0') << "wrote past the destination at " << i;
  }
}

TEST(StreamingCopyTest, SmallCopiesAtEveryAlignment) {
  for (size_t size : {0, 1, 15, 16, 17, 63, 64, 65, 200}) {
    for (size_t src_off = 0; src_off < 17; ++src_off) {
      for (size_t dst_off = 0; dst_off < 17; ++dst_off) {
        CheckCopy(size, src_off, dst_off);
      }
    }
  }
}

TEST(StreamingCopyTest, StreamedCopiesAtEveryAlignment) {
  // Sizes at and around the threshold and the 64-byte step, so the head,
  // the streamed middle and the tail all take each of their lengths.
  for (size_t size :
       {kStreamingCopyMinBytes, kStreamingCopyMinBytes + 1,
        kStreamingCopyMinBytes + 63, kStreamingCopyMinBytes + 64,
        kStreamingCopyMinBytes + 79, size_t{1} << 20, (size_t{1} << 20) + 13}) {
    for (size_t src_off : {0, 1, 7, 16, 33}) {
      for (size_t dst_off = 0; dst_off < 17; ++dst_off) {
        CheckCopy(size, src_off, dst_off);
      }
      CheckCopy(size, src_off, 48);
    }
  }
}

}  // namespace
}  // namespace runnel
