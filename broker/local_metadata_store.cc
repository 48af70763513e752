#include "broker/local_metadata_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

#include "broker/errors.h"
#include "common/check.h"
#include "common/crc32c.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"

namespace runnel::broker {
namespace {

constexpr absl::string_view kMagicLine = "runnel-topic-metadata 1";

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  int err = errno;
  std::string message =
      absl::StrCat(path, ": ", what, ": ", std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) {
    return absl::ResourceExhaustedError(message);
  }
  return absl::InternalError(message);
}

absl::Status WriteAll(int fd, absl::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write", path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// Replaces `path` atomically and durably with `contents`.
absl::Status WriteFileDurably(const std::string& dir, const std::string& path,
                              absl::string_view contents) {
  const std::string tmp = path + ".tmp";
  {
    UniqueFd fd(
        ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd.valid()) return ErrnoError("open", tmp);
    RUNNEL_RETURN_IF_ERROR(WriteAll(fd.get(), contents, tmp));
    if (::fdatasync(fd.get()) != 0) return ErrnoError("fdatasync", tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return ErrnoError("rename", tmp);
  // fsync the directory as well: the rename is not durable until it is.
  UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd.valid()) return ErrnoError("open", dir);
  if (::fsync(dir_fd.get()) != 0) return ErrnoError("fsync", dir);
  return absl::OkStatus();
}

std::string NewClusterId() {
  std::random_device rd;
  uint64_t hi = (uint64_t{rd()} << 32) | rd();
  uint64_t lo = (uint64_t{rd()} << 32) | rd();
  return absl::StrFormat("%016x%016x", hi, lo);
}

bool IsToken(absl::string_view s) {
  return !s.empty() && std::none_of(s.begin(), s.end(), [](char c) {
    return c == ' ' || c == '\n' || c == '\t' || c == '\r';
  });
}

absl::Status Malformed(const std::string& path, size_t line,
                       absl::string_view why) {
  return absl::DataLossError(
      absl::StrCat(path, ":", line, ": malformed topic metadata: ", why));
}

template <typename T>
bool ParseNumber(absl::string_view s, T* out) {
  return !s.empty() && absl::SimpleAtoi(s, out);
}

}  // namespace

std::string FormatMetadataFile(const MetadataFileContents& contents) {
  std::string body = absl::StrCat(kMagicLine, "\n");
  absl::StrAppend(&body, "cluster_id ", contents.cluster_id, "\n");
  absl::StrAppend(&body, "next_producer_id ", contents.next_producer_id, "\n");
  absl::StrAppend(&body, "topics ", contents.topics.size(), "\n");
  for (const TopicRecord& t : contents.topics) {
    RUNNEL_CHECK(IsToken(t.name));
    absl::StrAppend(&body, "topic ", t.name, " ", t.num_partitions, " ",
                    t.replication_factor, " ", t.created_ms, " ",
                    t.configs.size(), "\n");
    for (const auto& [key, value] : t.configs) {
      // Values are validated before they are stored: numbers and enum names.
      RUNNEL_CHECK(IsToken(key) && IsToken(value));
      absl::StrAppend(&body, "config ", key, " ", value, "\n");
    }
  }
  absl::StrAppend(&body, "crc32c ",
                  absl::StrFormat("%08x", Crc32c(body.data(), body.size())),
                  "\n");
  return body;
}

absl::StatusOr<MetadataFileContents> ParseMetadataFile(
    absl::string_view text, const std::string& path) {
  // The checksum line covers everything before it.
  size_t crc_pos = text.rfind("crc32c ");
  if (crc_pos == absl::string_view::npos ||
      (crc_pos != 0 && text[crc_pos - 1] != '\n')) {
    return Malformed(path, 0, "no crc32c line");
  }
  absl::string_view body = text.substr(0, crc_pos);
  absl::string_view crc_line = text.substr(crc_pos + 7);
  uint32_t crc = 0;
  if (crc_line.size() != 9 || crc_line.back() != '\n' ||
      !absl::SimpleHexAtoi(crc_line.substr(0, 8), &crc) ||
      crc != Crc32c(body.data(), body.size())) {
    return Malformed(path, 0, "crc32c mismatch");
  }
  std::vector<absl::string_view> lines =
      absl::StrSplit(body, '\n', absl::SkipEmpty());
  MetadataFileContents out;
  size_t i = 0;
  auto fields =
      [&](size_t n) -> absl::StatusOr<std::vector<absl::string_view>> {
    if (i >= lines.size()) return Malformed(path, i + 1, "unexpected end");
    std::vector<absl::string_view> f = absl::StrSplit(lines[i], ' ');
    if (f.size() != n) return Malformed(path, i + 1, lines[i]);
    ++i;
    return f;
  };
  if (lines.empty() || lines[0] != kMagicLine) {
    return Malformed(path, 1, "bad header");
  }
  ++i;
  RUNNEL_ASSIGN_OR_RETURN(auto cid, fields(2));
  if (cid[0] != "cluster_id") return Malformed(path, i, "cluster_id");
  out.cluster_id = std::string(cid[1]);
  RUNNEL_ASSIGN_OR_RETURN(auto pid, fields(2));
  if (pid[0] != "next_producer_id" ||
      !ParseNumber(pid[1], &out.next_producer_id)) {
    return Malformed(path, i, "next_producer_id");
  }
  RUNNEL_ASSIGN_OR_RETURN(auto tcount, fields(2));
  size_t num_topics = 0;
  if (tcount[0] != "topics" || !ParseNumber(tcount[1], &num_topics)) {
    return Malformed(path, i, "topics");
  }
  for (size_t t = 0; t < num_topics; ++t) {
    RUNNEL_ASSIGN_OR_RETURN(auto f, fields(6));
    TopicRecord record;
    size_t num_configs = 0;
    record.name = std::string(f[1]);
    if (f[0] != "topic" || !ParseNumber(f[2], &record.num_partitions) ||
        !ParseNumber(f[3], &record.replication_factor) ||
        !ParseNumber(f[4], &record.created_ms) ||
        !ParseNumber(f[5], &num_configs) || record.num_partitions <= 0) {
      return Malformed(path, i, "topic line");
    }
    for (size_t c = 0; c < num_configs; ++c) {
      RUNNEL_ASSIGN_OR_RETURN(auto cf, fields(3));
      if (cf[0] != "config") return Malformed(path, i, "config line");
      record.configs[std::string(cf[1])] = std::string(cf[2]);
    }
    out.topics.push_back(std::move(record));
  }
  if (i != lines.size()) return Malformed(path, i + 1, "trailing lines");
  return out;
}

LocalMetadataStore::LocalMetadataStore(std::string data_dir, State state)
    : data_dir_(std::move(data_dir)),
      path_(absl::StrCat(data_dir_, "/", kTopicMetadataFileName)),
      state_(std::move(state)) {}

absl::StatusOr<std::unique_ptr<LocalMetadataStore>> LocalMetadataStore::Open(
    const std::string& data_dir) {
  const std::string path = absl::StrCat(data_dir, "/", kTopicMetadataFileName);
  std::ifstream in(path, std::ios::binary);
  State state;
  bool fresh = false;
  if (!in) {
    if (errno != ENOENT) return ErrnoError("open", path);
    state.cluster_id = NewClusterId();
    fresh = true;
  } else {
    std::stringstream buffer;
    buffer << in.rdbuf();
    RUNNEL_ASSIGN_OR_RETURN(state, ParseMetadataFile(buffer.str(), path));
    std::sort(state.topics.begin(), state.topics.end(),
              [](const TopicRecord& a, const TopicRecord& b) {
                return a.name < b.name;
              });
  }
  auto store = std::unique_ptr<LocalMetadataStore>(
      new LocalMetadataStore(data_dir, state));
  if (fresh) {
    absl::MutexLock lock(&store->mu_);
    RUNNEL_RETURN_IF_ERROR(store->Commit(std::move(state)));
  }
  return store;
}

absl::Status LocalMetadataStore::Commit(State next) {
  RUNNEL_RETURN_IF_ERROR(
      WriteFileDurably(data_dir_, path_, FormatMetadataFile(next)));
  state_ = std::move(next);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TopicRecord>> LocalMetadataStore::ListTopics() {
  absl::MutexLock lock(&mu_);
  return state_.topics;
}

absl::Status LocalMetadataStore::CreateTopic(const TopicRecord& topic) {
  absl::MutexLock lock(&mu_);
  State next = state_;
  auto it = std::lower_bound(
      next.topics.begin(), next.topics.end(), topic.name,
      [](const TopicRecord& a, const std::string& n) { return a.name < n; });
  if (it != next.topics.end() && it->name == topic.name) {
    return absl::AlreadyExistsError(
        absl::StrCat("topic ", topic.name, " already exists"));
  }
  next.topics.insert(it, topic);
  return Commit(std::move(next));
}

absl::Status LocalMetadataStore::UpdateTopic(const TopicRecord& topic) {
  absl::MutexLock lock(&mu_);
  State next = state_;
  for (TopicRecord& t : next.topics) {
    if (t.name == topic.name) {
      t = topic;
      return Commit(std::move(next));
    }
  }
  return absl::NotFoundError(absl::StrCat("topic ", topic.name, " not found"));
}

absl::Status LocalMetadataStore::DeleteTopic(const std::string& name) {
  absl::MutexLock lock(&mu_);
  State next = state_;
  auto it = std::find_if(next.topics.begin(), next.topics.end(),
                         [&](const TopicRecord& t) { return t.name == name; });
  if (it == next.topics.end()) {
    return absl::NotFoundError(absl::StrCat("topic ", name, " not found"));
  }
  next.topics.erase(it);
  return Commit(std::move(next));
}

absl::StatusOr<int64_t> LocalMetadataStore::AllocateProducerIds(int64_t count) {
  RUNNEL_CHECK(count > 0);
  absl::MutexLock lock(&mu_);
  State next = state_;
  int64_t first = next.next_producer_id;
  next.next_producer_id += count;
  RUNNEL_RETURN_IF_ERROR(Commit(std::move(next)));
  return first;
}

std::string LocalMetadataStore::cluster_id() const {
  absl::MutexLock lock(&mu_);
  return state_.cluster_id;
}

}  // namespace runnel::broker
