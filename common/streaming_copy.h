#pragma once

// memcpy for large copies into memory that the CPU will not read again soon
// (the O_DIRECT append buffers, which the disk reads): the bulk goes out with
// non-temporal (streaming) stores that bypass the cache instead of first
// reading every destination line into it. Measured in the broker at 1 KiB
// acks=all: the append copy took about 40 % less CPU than with memcpy, whose
// destination lines are cold there (docs/benchmarks.md, session 8). With a
// destination that stays in the cache, memcpy is faster, so small copies
// (below kStreamingCopyMinBytes) use it.

#include <cstddef>

namespace runnel {

// Copies below this size go through memcpy.
inline constexpr size_t kStreamingCopyMinBytes = 64 * 1024;

// Copies `size` bytes from `src` to `dst` (the ranges must not overlap),
// like memcpy. At kStreamingCopyMinBytes and above, the 16-byte-aligned
// middle of `dst` is written with streaming stores (SSE2 on x86-64; other
// targets use memcpy), and a store fence at the end orders them before any
// later store, so a thread or device that is handed the buffer afterwards
// (through a mutex, an atomic or a system call) sees every byte.
void StreamingCopy(void* dst, const void* src, size_t size);

}  // namespace runnel
