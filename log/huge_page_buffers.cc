#include "log/huge_page_buffers.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>

#include "common/check.h"

namespace runnel::log {

namespace {

constexpr size_t kMinSlotBytes = 4096;

size_t RoundUpToHugePages(size_t n) {
  return (n + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
}

// The 2 MiB chunk a slot lies in.
uintptr_t ChunkOf(const char* slot) {
  return reinterpret_cast<uintptr_t>(slot) & ~(kHugePageBytes - 1);
}

// `bytes` (a multiple of 2 MiB) of anonymous memory at a 2 MiB boundary,
// marked for huge pages; null if the kernel refuses.
char* MapHugeAligned(size_t bytes) {
  const size_t padded = bytes + kHugePageBytes;
  void* mapped = ::mmap(nullptr, padded, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapped == MAP_FAILED) return nullptr;
  const auto start = reinterpret_cast<uintptr_t>(mapped);
  const uintptr_t aligned = RoundUpToHugePages(start);
  // Give back the slack on both sides so the mapping is exactly aligned.
  if (aligned > start) ::munmap(mapped, aligned - start);
  const uintptr_t tail = start + padded - (aligned + bytes);
  if (tail > 0) ::munmap(reinterpret_cast<void*>(aligned + bytes), tail);
  // Only a hint: without transparent huge pages the memory is 4 KiB pages.
  ::madvise(reinterpret_cast<void*>(aligned), bytes, MADV_HUGEPAGE);
  return reinterpret_cast<char*>(aligned);
}

// The slot size for a request, or 0 for a mapping of its own.
size_t SlotBytesFor(size_t size) {
  if (size > kHugePageBytes) return 0;
  return std::bit_ceil(std::max(size, kMinSlotBytes));
}

}  // namespace

HugePageBuffers::~HugePageBuffers() {
  absl::MutexLock lock(&mu_);
  RUNNEL_CHECK(chunk_used_.empty());
}

HugePageBuffers& HugePageBuffers::Global() {
  static auto* const buffers = new HugePageBuffers();
  return *buffers;
}

char* HugePageBuffers::Allocate(size_t size) {
  RUNNEL_CHECK(size > 0);
  const size_t slot_bytes = SlotBytesFor(size);
  if (slot_bytes != 0) return AllocateSlot(slot_bytes);
  const size_t bytes = RoundUpToHugePages(size);
  char* data = MapHugeAligned(bytes);
  if (data == nullptr) return nullptr;
  absl::MutexLock lock(&mu_);
  mapped_bytes_ += bytes;
  return data;
}

void HugePageBuffers::Free(char* data, size_t size) {
  if (data == nullptr) return;
  const size_t slot_bytes = SlotBytesFor(size);
  if (slot_bytes != 0) {
    FreeSlot(data, slot_bytes);
    return;
  }
  const size_t bytes = RoundUpToHugePages(size);
  RUNNEL_CHECK(::munmap(data, bytes) == 0);
  absl::MutexLock lock(&mu_);
  mapped_bytes_ -= bytes;
}

char* HugePageBuffers::AllocateSlot(size_t slot_bytes) {
  absl::MutexLock lock(&mu_);
  SizeClass& size_class = classes_[slot_bytes];
  if (size_class.free_slots.empty()) {
    char* chunk = MapHugeAligned(kHugePageBytes);
    if (chunk == nullptr) return nullptr;
    mapped_bytes_ += kHugePageBytes;
    chunk_used_[reinterpret_cast<uintptr_t>(chunk)] = 0;
    // Highest first, so the chunk's slots go out in address order.
    for (size_t off = kHugePageBytes; off > 0; off -= slot_bytes)
      size_class.free_slots.push_back(chunk + off - slot_bytes);
  }
  char* slot = size_class.free_slots.back();
  size_class.free_slots.pop_back();
  ++chunk_used_[ChunkOf(slot)];
  return slot;
}

void HugePageBuffers::FreeSlot(char* data, size_t slot_bytes) {
  const uintptr_t chunk = ChunkOf(data);
  absl::MutexLock lock(&mu_);
  auto used = chunk_used_.find(chunk);
  RUNNEL_CHECK(used != chunk_used_.end() && used->second > 0);
  SizeClass& size_class = classes_[slot_bytes];
  size_class.free_slots.push_back(data);
  if (--used->second > 0) return;
  // The chunk's last buffer: drop its slots from the free list, unmap it.
  chunk_used_.erase(used);
  std::erase_if(size_class.free_slots,
                [chunk](char* slot) { return ChunkOf(slot) == chunk; });
  RUNNEL_CHECK(::munmap(reinterpret_cast<void*>(chunk), kHugePageBytes) == 0);
  mapped_bytes_ -= kHugePageBytes;
}

HugePageBufferStats HugePageBuffers::Stats() const {
  absl::MutexLock lock(&mu_);
  return HugePageBufferStats{mapped_bytes_, chunk_used_.size()};
}

}  // namespace runnel::log
