#include "common/streaming_copy.h"

#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace runnel {

#if defined(__SSE2__)

namespace {

// Streams 64 bytes per step; `dst` must be 16-byte aligned.
void StreamAligned(char* dst, const char* src, size_t size) {
  for (; size >= 64; size -= 64, src += 64, dst += 64) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
    const __m128i b =
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 16));
    const __m128i c =
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 32));
    const __m128i d =
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 48));
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst), a);
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst + 16), b);
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst + 32), c);
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst + 48), d);
  }
}

}  // namespace

void StreamingCopy(void* dst, const void* src, size_t size) {
  if (size < kStreamingCopyMinBytes) {
    std::memcpy(dst, src, size);
    return;
  }
  auto* d = static_cast<char*>(dst);
  const auto* s = static_cast<const char*>(src);
  // Head up to the first 16-byte boundary of the destination, then the
  // streamed middle, then the tail shorter than one step.
  const size_t head = (16 - (reinterpret_cast<uintptr_t>(d) & 15)) & 15;
  std::memcpy(d, s, head);
  const size_t middle = (size - head) & ~size_t{63};
  StreamAligned(d + head, s + head, middle);
  std::memcpy(d + head + middle, s + head + middle, size - head - middle);
  // Streaming stores are weakly ordered: fence them before the caller
  // publishes the buffer.
  _mm_sfence();
}

#else

void StreamingCopy(void* dst, const void* src, size_t size) {
  std::memcpy(dst, src, size);
}

#endif

}  // namespace runnel
