#include "common/unique_fd.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "spdlog/spdlog.h"

namespace runnel {

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) reset(other.release());
  return *this;
}

UniqueFd::~UniqueFd() { reset(); }

void UniqueFd::reset(int fd) {
  if (fd_ >= 0 && ::close(fd_) != 0) {
    // close() errors are not retried: on Linux the fd is gone either way.
    spdlog::warn("close(fd={}) failed: {}", fd_, std::strerror(errno));
  }
  fd_ = fd;
}

}  // namespace runnel
