#include "log/checkpoint_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

#include "common/status_macros.h"
#include "common/unique_fd.h"

namespace runnel::log {
namespace {

absl::Status ErrnoError(int err, const std::string& what,
                        const std::string& path) {
  return absl::ErrnoToStatus(err, absl::StrCat(path, ": ", what));
}

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "write", path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status FsyncDirOf(const std::string& path) {
  const std::string dir = DirName(path);
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, "open directory", dir);
  if (::fsync(fd.get()) != 0) return ErrnoError(errno, "fsync directory", dir);
  return absl::OkStatus();
}

absl::Status Malformed(const std::string& path, size_t line,
                       const std::string& why) {
  return absl::DataLossError(
      absl::StrCat(path, ": malformed checkpoint at line ", line, ": ", why));
}

bool ValidTopicToken(std::string_view topic) {
  if (topic.empty()) return false;
  for (char c : topic) {
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, "open", path);
  std::string text;
  char buf[8192];
  while (true) {
    const ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "read", path);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  return text;
}

std::string FormatCheckpoint(const std::vector<CheckpointEntry>& entries) {
  std::string text =
      absl::StrCat(kCheckpointVersion, "\n", entries.size(), "\n");
  for (const CheckpointEntry& e : entries) {
    absl::StrAppend(&text, e.topic, " ", e.partition, " ", e.offset, "\n");
  }
  return text;
}

absl::StatusOr<std::vector<CheckpointEntry>> ParseCheckpoint(
    std::string_view text, const std::string& path) {
  if (text.empty()) return Malformed(path, 1, "empty file");
  if (text.back() != '\n') {
    return Malformed(path, std::count(text.begin(), text.end(), '\n') + 1,
                     "missing final newline (torn write?)");
  }
  text.remove_suffix(1);
  // Debian's Abseil has its own absl::string_view (not std::string_view), so
  // split into owning strings; checkpoint files are small.
  const std::vector<std::string> lines =
      absl::StrSplit(absl::string_view(text.data(), text.size()), '\n');
  if (lines[0] != absl::StrCat(kCheckpointVersion)) {
    return Malformed(path, 1,
                     absl::StrCat("unsupported version \"", lines[0], "\""));
  }
  if (lines.size() < 2) return Malformed(path, 2, "missing entry count");
  int64_t count = 0;
  if (!absl::SimpleAtoi(lines[1], &count) || count < 0 ||
      lines[1] != absl::StrCat(count)) {
    return Malformed(path, 2,
                     absl::StrCat("bad entry count \"", lines[1], "\""));
  }
  if (static_cast<size_t>(count) != lines.size() - 2) {
    return Malformed(path, std::min<size_t>(lines.size(), count + 2) + 1,
                     absl::StrCat("count says ", count, " entries but ",
                                  lines.size() - 2, " follow"));
  }
  std::vector<CheckpointEntry> entries;
  entries.reserve(static_cast<size_t>(count));
  for (size_t i = 2; i < lines.size(); ++i) {
    const std::vector<std::string> fields = absl::StrSplit(lines[i], ' ');
    CheckpointEntry e;
    if (fields.size() != 3 || !ValidTopicToken(fields[0]) ||
        !absl::SimpleAtoi(fields[1], &e.partition) ||
        !absl::SimpleAtoi(fields[2], &e.offset) || e.partition < 0 ||
        e.offset < 0 || fields[1] != absl::StrCat(e.partition) ||
        fields[2] != absl::StrCat(e.offset)) {
      return Malformed(
          path, i + 1,
          absl::StrCat("expected \"<topic> <partition> <offset>\", got \"",
                       lines[i], "\""));
    }
    e.topic = fields[0];
    entries.push_back(std::move(e));
  }
  return entries;
}

absl::Status CheckpointFile::Write(
    const std::vector<CheckpointEntry>& entries) const {
  for (const CheckpointEntry& e : entries) {
    if (!ValidTopicToken(e.topic)) {
      return absl::InvalidArgumentError(absl::StrCat(
          path_, ": topic \"", e.topic, "\" cannot be checkpointed"));
    }
  }
  const std::string tmp = path_ + ".tmp";
  const std::string text = FormatCheckpoint(entries);
  {
    UniqueFd fd(
        ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd.valid()) return ErrnoError(errno, "open", tmp);
    RUNNEL_RETURN_IF_ERROR(WriteAll(fd.get(), text, tmp));
    // The data must be on disk before the rename makes it visible under the
    // real name, or a crash could leave an empty or partial checkpoint.
    if (::fdatasync(fd.get()) != 0) return ErrnoError(errno, "fdatasync", tmp);
    if (::close(fd.release()) != 0) return ErrnoError(errno, "close", tmp);
  }
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    return ErrnoError(errno, absl::StrCat("rename from ", tmp), path_);
  }
  // The rename itself is durable only once the directory is.
  return FsyncDirOf(path_);
}

absl::StatusOr<std::vector<CheckpointEntry>> CheckpointFile::Read() const {
  RUNNEL_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path_));
  return ParseCheckpoint(text, path_);
}

}  // namespace runnel::log
