#pragma once

// Buffers registered with one io_uring, so that its writes from them are
// IORING_OP_WRITE_FIXED: the kernel pins their pages once, at registration,
// instead of at every O_DIRECT write.

#include <cstddef>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

#include "common/unique_fd.h"

namespace runnel::log {

// A sparse table of registered buffers of one ring (IORING_REGISTER_BUFFERS2
// with IORING_RSRC_REGISTER_SPARSE), filled and emptied one slot at a time
// (IORING_REGISTER_BUFFERS_UPDATE).
//
// Thread-safe: Register and Release may run on any thread while the ring's
// owner submits and reaps. The table keeps its own descriptor of the ring, so
// a buffer may be released after the ring's owner is gone (the kernel keeps
// a buffer registered for requests in flight that use it until they
// complete; Runnel releases a buffer only when none does).
class FixedBufferTable {
 public:
  // Registers an empty table of `slots` on the ring behind `ring_fd` (which
  // it dups). Null when the kernel refuses (too old, or no memory).
  static std::shared_ptr<FixedBufferTable> Create(int ring_fd, unsigned slots);

  FixedBufferTable(const FixedBufferTable&) = delete;
  FixedBufferTable& operator=(const FixedBufferTable&) = delete;

  // Registers [data, data + size) and returns its slot (the buf_index of
  // io_uring_prep_write_fixed), or -1 when every slot is taken or the kernel
  // refuses the buffer (RLIMIT_MEMLOCK without CAP_IPC_LOCK): the caller
  // then writes without it.
  int Register(const char* data, size_t size);
  // Empties `slot` (from Register) for reuse.
  void Release(int slot);

  unsigned slots() const { return slots_; }
  // Slots in use now.
  unsigned used() const;

 private:
  FixedBufferTable(UniqueFd ring_fd, unsigned slots);
  bool Update(unsigned slot, const void* data, size_t size);

  const UniqueFd ring_fd_;
  const unsigned slots_;
  mutable absl::Mutex mu_;
  std::vector<unsigned> free_ ABSL_GUARDED_BY(mu_);
};

}  // namespace runnel::log
