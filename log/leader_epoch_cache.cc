#include "log/leader_epoch_cache.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

#include "common/status_macros.h"
#include "common/unique_fd.h"

namespace runnel::log {
namespace {

absl::Status ErrnoError(const std::string& what, const std::string& path) {
  int err = errno;
  std::string message =
      absl::StrCat(path, ": ", what, ": ", std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) {
    return absl::ResourceExhaustedError(message);
  }
  return absl::InternalError(message);
}

absl::Status FsyncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("open directory", dir);
  if (fsync(fd.get()) != 0) return ErrnoError("fsync directory", dir);
  return absl::OkStatus();
}

absl::Status Malformed(const std::string& path, int line,
                       std::string_view what) {
  return absl::DataLossError(
      absl::StrCat(path, ":", line,
                   ": malformed leader-epoch checkpoint: ", std::string(what)));
}

}  // namespace

absl::Status WriteFileAtomically(const std::string& path,
                                 std::string_view content) {
  const std::string tmp = path + ".tmp";
  {
    UniqueFd fd(
        ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd.valid()) return ErrnoError("open", tmp);
    size_t done = 0;
    while (done < content.size()) {
      ssize_t n =
          ::write(fd.get(), content.data() + done, content.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoError("write", tmp);
      }
      done += static_cast<size_t>(n);
    }
    if (fdatasync(fd.get()) != 0) return ErrnoError("fdatasync", tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return ErrnoError("rename", tmp);
  }
  // The rename is durable only once the directory is.
  std::string dir = std::filesystem::path(path).parent_path().string();
  return FsyncDir(dir.empty() ? "." : dir);
}

absl::StatusOr<std::unique_ptr<LeaderEpochCache>> LeaderEpochCache::Open(
    std::string path) {
  std::unique_ptr<LeaderEpochCache> cache(new LeaderEpochCache(path));
  std::ifstream in(path);
  if (!in.is_open()) {
    if (!std::filesystem::exists(path)) return cache;
    return absl::InternalError(absl::StrCat(path, ": cannot open"));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::vector<std::string> lines =
      absl::StrSplit(buffer.str(), '\n', absl::SkipEmpty());
  if (lines.size() < 2) return Malformed(path, 1, "missing header");
  if (lines[0] != "0") return Malformed(path, 1, "unknown version");
  int64_t count = 0;
  if (!absl::SimpleAtoi(lines[1], &count) || count < 0 ||
      static_cast<size_t>(count) != lines.size() - 2) {
    return Malformed(path, 2, "bad entry count");
  }
  for (size_t i = 2; i < lines.size(); ++i) {
    std::vector<std::string> fields = absl::StrSplit(lines[i], ' ');
    EpochEntry e;
    if (fields.size() != 2 || !absl::SimpleAtoi(fields[0], &e.epoch) ||
        !absl::SimpleAtoi(fields[1], &e.start_offset) || e.epoch < 0 ||
        e.start_offset < 0) {
      return Malformed(path, static_cast<int>(i + 1), "bad entry");
    }
    if (!cache->entries_.empty() &&
        (e.epoch <= cache->entries_.back().epoch ||
         e.start_offset < cache->entries_.back().start_offset)) {
      return Malformed(path, static_cast<int>(i + 1), "entries not ascending");
    }
    cache->entries_.push_back(e);
  }
  return cache;
}

absl::Status LeaderEpochCache::Assign(int32_t epoch, Offset start_offset) {
  if (epoch < 0) return absl::OkStatus();
  if (!entries_.empty() && entries_.back().epoch == epoch) {
    return absl::OkStatus();
  }
  // Kafka's assign: a new epoch entry replaces every entry it conflicts
  // with (an epoch not below it, or a start offset not below its own).
  while (!entries_.empty() && (entries_.back().epoch >= epoch ||
                               entries_.back().start_offset >= start_offset)) {
    entries_.pop_back();
  }
  entries_.push_back({epoch, start_offset});
  return Persist();
}

EpochEndOffset LeaderEpochCache::EndOffsetFor(int32_t epoch,
                                              Offset log_end_offset) const {
  if (epoch < 0 || entries_.empty()) return {};
  if (entries_.back().epoch == epoch) return {epoch, log_end_offset};
  // The first entry with a higher epoch.
  auto higher = std::upper_bound(
      entries_.begin(), entries_.end(), epoch,
      [](int32_t e, const EpochEntry& entry) { return e < entry.epoch; });
  if (higher == entries_.end()) return {};
  if (higher == entries_.begin()) return {epoch, higher->start_offset};
  return {std::prev(higher)->epoch, higher->start_offset};
}

absl::Status LeaderEpochCache::TruncateFromEnd(Offset end_offset) {
  size_t before = entries_.size();
  while (!entries_.empty() && entries_.back().start_offset >= end_offset) {
    entries_.pop_back();
  }
  return entries_.size() == before ? absl::OkStatus() : Persist();
}

absl::Status LeaderEpochCache::TruncateFromStart(Offset start_offset) {
  // The last entry that starts at or below start_offset survives (moved up).
  size_t keep_from = 0;
  while (keep_from + 1 < entries_.size() &&
         entries_[keep_from + 1].start_offset <= start_offset) {
    ++keep_from;
  }
  if (entries_.empty() ||
      (keep_from == 0 && entries_[0].start_offset >= start_offset)) {
    return absl::OkStatus();
  }
  entries_.erase(entries_.begin(), entries_.begin() + keep_from);
  entries_[0].start_offset = start_offset;
  return Persist();
}

absl::Status LeaderEpochCache::Clear() {
  if (entries_.empty()) return absl::OkStatus();
  entries_.clear();
  return Persist();
}

std::optional<EpochEntry> LeaderEpochCache::latest() const {
  if (entries_.empty()) return std::nullopt;
  return entries_.back();
}

int32_t LeaderEpochCache::latest_epoch() const {
  return entries_.empty() ? -1 : entries_.back().epoch;
}

absl::Status LeaderEpochCache::Persist() const {
  std::string text = absl::StrCat("0\n", entries_.size(), "\n");
  for (const EpochEntry& e : entries_) {
    absl::StrAppend(&text, e.epoch, " ", e.start_offset, "\n");
  }
  return WriteFileAtomically(path_, text);
}

}  // namespace runnel::log
