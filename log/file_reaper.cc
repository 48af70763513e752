#include "log/file_reaper.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>
#include <vector>

#include "spdlog/spdlog.h"

#include "common/unique_fd.h"

namespace runnel::log {

namespace fs = std::filesystem;

FileReaper::FileReaper(FileReaperOptions options) : options_(options) {
  if (options_.start_thread) thread_ = std::thread([this] { Run(); });
}

FileReaper::~FileReaper() { Stop(); }

void FileReaper::Add(std::string path, std::weak_ptr<const void> holder) {
  bool now = false;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      now = true;
    } else {
      const bool has_holder = !holder.expired();
      queue_.push_back(Item{std::move(path), std::move(holder), has_holder});
    }
  }
  if (now) Delete(path, /*fast=*/true);
}

size_t FileReaper::pending() const {
  absl::MutexLock lock(&mu_);
  return queue_.size() + deleting_;
}

size_t FileReaper::DeleteReady() {
  std::vector<std::string> ready;
  size_t waiting = 0;
  {
    absl::MutexLock lock(&mu_);
    std::deque<Item> keep;
    for (Item& item : queue_) {
      if (item.has_holder && !item.holder.expired()) {
        keep.push_back(std::move(item));
      } else {
        ready.push_back(std::move(item.path));
      }
    }
    queue_ = std::move(keep);
    waiting = queue_.size();
    deleting_ += ready.size();
  }
  for (const std::string& path : ready) {
    bool fast;
    {
      absl::MutexLock lock(&mu_);
      fast = stopping_;
    }
    Delete(path, fast);
    absl::MutexLock lock(&mu_);
    --deleting_;
  }
  return waiting;
}

void FileReaper::Run() {
  // Paths waiting for their holders are looked at again this often.
  constexpr absl::Duration kHolderPoll = absl::Milliseconds(100);
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !queue_.empty();
      };
      mu_.Await(absl::Condition(&wake));
      if (stopping_) return;
    }
    if (DeleteReady() > 0) {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), kHolderPoll);
    }
  }
}

void FileReaper::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  {
    absl::MutexLock lock(&join_mu_);  // two Stop() calls: one joins
    if (thread_.joinable()) thread_.join();
  }
  std::deque<Item> rest;
  {
    absl::MutexLock lock(&mu_);
    rest.swap(queue_);
  }
  for (const Item& item : rest) Delete(item.path, /*fast=*/true);
}

void FileReaper::Delete(const std::string& path, bool fast) const {
  std::error_code ec;
  const fs::file_status status = fs::symlink_status(path, ec);
  if (ec || !fs::exists(status)) return;  // gone already
  if (fs::is_directory(status)) {
    for (fs::recursive_directory_iterator it(path, ec), end; !ec && it != end;
         it.increment(ec)) {
      std::error_code type_ec;
      if (it->is_regular_file(type_ec)) {
        ShrinkAndUnlink(it->path().string(), fast);
      }
    }
    fs::remove_all(path, ec);
    if (ec) spdlog::warn("cannot remove {}: {}", path, ec.message());
    return;
  }
  ShrinkAndUnlink(path, fast);
}

void FileReaper::ShrinkAndUnlink(const std::string& path, bool fast) const {
  if (!fast) {
    const UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    struct stat st {};
    if (fd.valid() && ::fstat(fd.get(), &st) == 0) {
      off_t size = st.st_size;
      const auto step = static_cast<off_t>(options_.step_bytes);
      while (size > step) {
        size -= step;
        if (::ftruncate(fd.get(), size) != 0) break;
        absl::MutexLock lock(&mu_);
        // The pause ends early when Stop() is called.
        if (mu_.AwaitWithTimeout(absl::Condition(&stopping_),
                                 options_.step_pause)) {
          break;
        }
      }
    }
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    spdlog::warn("cannot delete {}: {}", path, std::strerror(errno));
  }
}

}  // namespace runnel::log
