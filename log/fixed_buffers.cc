#include "log/fixed_buffers.h"

#include <fcntl.h>
#include <liburing.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdint>
#include <utility>

namespace runnel::log {

namespace {

int RegisterSyscall(int fd, unsigned opcode, void* arg, unsigned nr) {
  return static_cast<int>(
      ::syscall(__NR_io_uring_register, fd, opcode, arg, nr));
}

}  // namespace

std::shared_ptr<FixedBufferTable> FixedBufferTable::Create(int ring_fd,
                                                           unsigned slots) {
  UniqueFd fd(::fcntl(ring_fd, F_DUPFD_CLOEXEC, 0));
  if (!fd.valid() || slots == 0) return nullptr;
  io_uring_rsrc_register reg{};
  reg.nr = slots;
  reg.flags = IORING_RSRC_REGISTER_SPARSE;
  if (RegisterSyscall(fd.get(), IORING_REGISTER_BUFFERS2, &reg, sizeof(reg)) !=
      0) {
    return nullptr;
  }
  return std::shared_ptr<FixedBufferTable>(
      new FixedBufferTable(std::move(fd), slots));
}

FixedBufferTable::FixedBufferTable(UniqueFd ring_fd, unsigned slots)
    : ring_fd_(std::move(ring_fd)), slots_(slots) {
  free_.reserve(slots);
  for (unsigned i = slots; i > 0; --i) free_.push_back(i - 1);
}

bool FixedBufferTable::Update(unsigned slot, const void* data, size_t size) {
  iovec iov{const_cast<void*>(data), size};
  uint64_t tag = 0;
  io_uring_rsrc_update2 update{};
  update.offset = slot;
  update.data = reinterpret_cast<uintptr_t>(&iov);
  update.tags = reinterpret_cast<uintptr_t>(&tag);
  update.nr = 1;
  return RegisterSyscall(ring_fd_.get(), IORING_REGISTER_BUFFERS_UPDATE,
                         &update, sizeof(update)) == 1;
}

int FixedBufferTable::Register(const char* data, size_t size) {
  unsigned slot;
  {
    absl::MutexLock lock(&mu_);
    if (free_.empty()) return -1;
    slot = free_.back();
    free_.pop_back();
  }
  if (!Update(slot, data, size)) {
    absl::MutexLock lock(&mu_);
    free_.push_back(slot);
    return -1;
  }
  return static_cast<int>(slot);
}

void FixedBufferTable::Release(int slot) {
  if (slot < 0 || static_cast<unsigned>(slot) >= slots_) return;
  // An empty iovec unregisters the slot.
  Update(static_cast<unsigned>(slot), nullptr, 0);
  absl::MutexLock lock(&mu_);
  free_.push_back(static_cast<unsigned>(slot));
}

unsigned FixedBufferTable::used() const {
  absl::MutexLock lock(&mu_);
  return slots_ - static_cast<unsigned>(free_.size());
}

}  // namespace runnel::log
