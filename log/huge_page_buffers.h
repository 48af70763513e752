#pragma once

// Memory for O_DIRECT append buffers, carved out of 2 MiB transparent huge
// pages, so that a buffer of up to 2 MiB is physically contiguous.
//
// Why: an O_DIRECT write gives the block layer one scatter-gather segment per
// physically contiguous piece of its buffer. From 4 KiB pages that is one
// segment per page, and a virtio disk takes at most `max_segments` per
// request (254 on the reference machine, /sys/block/vda/queue/max_segments):
// every 1 MiB write (256 pages) reached the disk as two requests, 1040384
// and 8192 bytes, each with its own completion. From a huge page it is one
// segment and one request (docs/benchmarks.md, "Session 9").

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace runnel::log {

inline constexpr size_t kHugePageBytes = size_t{2} << 20;

struct HugePageBufferStats {
  size_t mapped_bytes = 0;  // address space mapped for buffers now
  size_t chunks = 0;        // 2 MiB chunks shared by buffers of one size
};

// Hands out 4096-aligned buffers. A request of at most 2 MiB gets a slot of
// the next power of two (at least 4 KiB) in a 2 MiB-aligned chunk that holds
// slots of that size only (two 1 MiB buffers share one huge page); a larger
// one gets a mapping of its own, rounded up to whole 2 MiB. Chunks are mapped
// with madvise(MADV_HUGEPAGE), so the kernel backs them with a huge page at
// first touch when transparent huge pages are set to `madvise` or `always`;
// otherwise (`never`, or no huge page free) the memory is ordinary 4 KiB
// pages and everything still works, only with split writes. A chunk is
// unmapped when its last buffer is freed.
//
// Thread-safe.
class HugePageBuffers {
 public:
  HugePageBuffers() = default;
  HugePageBuffers(const HugePageBuffers&) = delete;
  HugePageBuffers& operator=(const HugePageBuffers&) = delete;
  HugePageBuffers(HugePageBuffers&&) = delete;
  HugePageBuffers& operator=(HugePageBuffers&&) = delete;
  // Unmaps what is still mapped: every buffer must have been freed.
  ~HugePageBuffers();

  // The process's instance (never destroyed).
  static HugePageBuffers& Global();

  // `size` > 0 bytes, 4096-aligned, contents unspecified. Null when the
  // kernel refuses the mapping (out of address space or memory).
  char* Allocate(size_t size);
  // Returns a buffer from Allocate(size) with the same size.
  void Free(char* data, size_t size);

  HugePageBufferStats Stats() const;

 private:
  struct SizeClass {
    std::vector<char*> free_slots;
  };

  char* AllocateSlot(size_t slot_bytes);
  void FreeSlot(char* data, size_t slot_bytes);

  mutable absl::Mutex mu_;
  // By slot size.
  absl::flat_hash_map<size_t, SizeClass> classes_ ABSL_GUARDED_BY(mu_);
  // Chunk address -> slots handed out of it.
  absl::flat_hash_map<uintptr_t, size_t> chunk_used_ ABSL_GUARDED_BY(mu_);
  size_t mapped_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace runnel::log
