#include "log/huge_page_buffers.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace runnel::log {
namespace {

uintptr_t Address(const char* p) { return reinterpret_cast<uintptr_t>(p); }

uintptr_t ChunkOf(const char* p) { return Address(p) & ~(kHugePageBytes - 1); }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// AnonHugePages (kB) of the mapping of /proc/self/smaps that contains `p`,
// or -1 if none does.
int64_t AnonHugePagesKbAt(const char* p) {
  std::istringstream smaps(ReadFile("/proc/self/smaps"));
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    uintptr_t lo = 0;
    uintptr_t hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-' &&
        line.find(':') > line.find(' ')) {
      inside = lo <= Address(p) && Address(p) < hi;
      continue;
    }
    if (inside && line.rfind("AnonHugePages:", 0) == 0) {
      return std::stoll(line.substr(std::strlen("AnonHugePages:")));
    }
  }
  return -1;
}

// A counter of /proc/vmstat, or -1.
int64_t VmStat(const std::string& name) {
  std::istringstream vmstat(ReadFile("/proc/vmstat"));
  std::string key;
  int64_t value = 0;
  while (vmstat >> key >> value) {
    if (key == name) return value;
  }
  return -1;
}

TEST(HugePageBuffersTest, SlotsAreAlignedAndShareAChunkBySize) {
  HugePageBuffers buffers;
  char* a = buffers.Allocate(1 << 20);
  char* b = buffers.Allocate(1 << 20);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  // Two 1 MiB buffers fill one 2 MiB chunk, at its two halves.
  EXPECT_EQ(ChunkOf(a), ChunkOf(b));
  EXPECT_EQ(
      std::set<uintptr_t>({Address(a) - ChunkOf(a), Address(b) - ChunkOf(b)}),
      std::set<uintptr_t>({0, 1 << 20}));
  EXPECT_EQ(buffers.Stats().chunks, 1u);
  EXPECT_EQ(buffers.Stats().mapped_bytes, kHugePageBytes);
  // A third one needs a new chunk; other sizes never share one.
  char* c = buffers.Allocate(1 << 20);
  char* small = buffers.Allocate(12 << 10);  // a 16 KiB slot
  ASSERT_NE(c, nullptr);
  ASSERT_NE(small, nullptr);
  EXPECT_NE(ChunkOf(c), ChunkOf(a));
  EXPECT_NE(ChunkOf(small), ChunkOf(a));
  EXPECT_NE(ChunkOf(small), ChunkOf(c));
  EXPECT_EQ(Address(small) % 4096, 0u);
  EXPECT_EQ(buffers.Stats().chunks, 3u);
  // Every byte is usable.
  for (char* p : {a, b, c}) std::memset(p, 0x5a, 1 << 20);
  std::memset(small, 0x5a, 12 << 10);
  for (char* p : {a, b, c}) buffers.Free(p, 1 << 20);
  buffers.Free(small, 12 << 10);
  EXPECT_EQ(buffers.Stats().chunks, 0u);
  EXPECT_EQ(buffers.Stats().mapped_bytes, 0u);
}

TEST(HugePageBuffersTest, FreedSlotIsReusedAndTheLastFreeUnmapsTheChunk) {
  HugePageBuffers buffers;
  std::vector<char*> slots;
  for (int i = 0; i < 4; ++i) slots.push_back(buffers.Allocate(512 << 10));
  EXPECT_EQ(buffers.Stats().chunks, 1u);
  char* freed = slots[2];
  buffers.Free(freed, 512 << 10);
  EXPECT_EQ(buffers.Stats().chunks, 1u);  // three slots still in use
  char* again = buffers.Allocate(512 << 10);
  EXPECT_EQ(again, freed);
  EXPECT_EQ(buffers.Stats().chunks, 1u);
  slots[2] = again;
  for (char* p : slots) buffers.Free(p, 512 << 10);
  EXPECT_EQ(buffers.Stats().mapped_bytes, 0u);
  // A fresh chunk after the old one is gone.
  char* fresh = buffers.Allocate(512 << 10);
  ASSERT_NE(fresh, nullptr);
  EXPECT_EQ(buffers.Stats().chunks, 1u);
  buffers.Free(fresh, 512 << 10);
}

TEST(HugePageBuffersTest, LargeBuffersGetTheirOwnAlignedMapping) {
  HugePageBuffers buffers;
  const size_t size = (3 << 20) + 4096;  // rounds up to 4 MiB
  char* p = buffers.Allocate(size);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(Address(p) % kHugePageBytes, 0u);
  EXPECT_EQ(buffers.Stats().mapped_bytes, size_t{4} << 20);
  EXPECT_EQ(buffers.Stats().chunks, 0u);
  std::memset(p, 1, size);
  buffers.Free(p, size);
  EXPECT_EQ(buffers.Stats().mapped_bytes, 0u);
}

// Where transparent huge pages are on (`always` or `madvise`), a touched
// buffer sits in a huge page: physically contiguous, so an O_DIRECT write
// from it is one segment.
TEST(HugePageBuffersTest, TouchedBufferIsBackedByAHugePage) {
  const std::string mode =
      ReadFile("/sys/kernel/mm/transparent_hugepage/enabled");
  if (mode.empty() || mode.find("[never]") != std::string::npos) {
    GTEST_SKIP() << "transparent huge pages are off: " << mode;
  }
  HugePageBuffers buffers;
  const int64_t fallbacks_before = VmStat("thp_fault_fallback");
  char* p = buffers.Allocate(1 << 20);
  ASSERT_NE(p, nullptr);
  std::memset(p, 7, 1 << 20);
  const int64_t huge_kb = AnonHugePagesKbAt(p);
  buffers.Free(p, 1 << 20);
  if (huge_kb < 2048 && VmStat("thp_fault_fallback") > fallbacks_before) {
    GTEST_SKIP() << "the kernel had no huge page free (thp_fault_fallback)";
  }
  EXPECT_GE(huge_kb, 2048) << "THP mode: " << mode;
}

}  // namespace
}  // namespace runnel::log
