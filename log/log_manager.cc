#include "log/log_manager.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "spdlog/spdlog.h"

#include "common/check.h"
#include "common/status_macros.h"
#include "log/checkpoint_file.h"
#include "log/io_thread.h"

namespace runnel::log {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxTopicLength = 249;

absl::Status ErrnoError(int err, const std::string& what,
                        const std::string& path) {
  return absl::ErrnoToStatus(err, absl::StrCat(path, ": ", what));
}

absl::Status FsError(const std::error_code& ec, const std::string& what,
                     const std::string& path) {
  return ErrnoError(ec.value(), what, path);
}

absl::Status FsyncPath(const std::string& path, bool directory) {
  UniqueFd fd(::open(path.c_str(),
                     O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0)));
  if (!fd.valid()) return ErrnoError(errno, "open for fsync", path);
  if (::fsync(fd.get()) != 0) return ErrnoError(errno, "fsync", path);
  return absl::OkStatus();
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.substr(s.size() - suffix.size()) == suffix;
}

// Runs fn(i) for i in [0, n) on up to `threads` threads; returns when all ran.
void ParallelFor(size_t n, int threads, const std::function<void(size_t)>& fn) {
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) fn(i);
  };
  const size_t count = std::min<size_t>(std::max(threads, 1), n);
  std::vector<std::thread> pool;
  for (size_t t = 1; t < count; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();
}

}  // namespace

absl::Status ValidateTopicName(std::string_view topic) {
  if (topic.empty() || topic.size() > kMaxTopicLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("topic name must be 1..", kMaxTopicLength,
                     " characters, got ", topic.size()));
  }
  if (topic == "." || topic == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat("topic name \"", std::string(topic), "\" is reserved"));
  }
  for (char c : topic) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("topic name \"", std::string(topic),
                       "\" has a character outside [a-zA-Z0-9._-]"));
    }
  }
  return absl::OkStatus();
}

std::string PartitionDirName(std::string_view topic, int32_t partition) {
  return absl::StrCat(std::string(topic), "-", partition);
}

absl::StatusOr<std::pair<std::string, int32_t>> ParsePartitionDirName(
    std::string_view name) {
  const size_t dash = name.rfind('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == name.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", std::string(name), "\" is not <topic>-<partition>"));
  }
  const std::string topic(name.substr(0, dash));
  const std::string digits(name.substr(dash + 1));
  int32_t partition = 0;
  // Canonical decimal only ("007" or "+7" would map two dirs to one key).
  if (!absl::SimpleAtoi(digits, &partition) || partition < 0 ||
      digits != absl::StrCat(partition)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", std::string(name), "\" has no valid partition number"));
  }
  RUNNEL_RETURN_IF_ERROR(ValidateTopicName(topic));
  return std::make_pair(topic, partition);
}

LogManager::LogManager(LogManagerOptions options)
    : options_(std::move(options)) {
  FileReaperOptions reaper_options = options_.file_reaper;
  reaper_options.start_thread = options_.start_background_threads;
  reaper_ = std::make_unique<FileReaper>(reaper_options);
}

LogManager::~LogManager() {
  absl::MutexLock lock(&mu_);
  RUNNEL_CHECK_MSG(closed_, "LogManager destroyed without Close()");
}

absl::StatusOr<std::unique_ptr<LogManager>> LogManager::Open(
    LogManagerOptions options) {
  if (options.data_dir.empty()) {
    return absl::InvalidArgumentError("LogManager: data_dir is empty");
  }
  if (options.io_threads < 1 || options.recovery_threads < 1 ||
      options.clock == nullptr || options.retention_check_interval_ms <= 0 ||
      options.checkpoint_interval_ms <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        options.data_dir,
        ": io_threads and recovery_threads must be >= 1, intervals > 0, "
        "clock set"));
  }
  RUNNEL_RETURN_IF_ERROR(options.default_config.Validate());
  std::unique_ptr<LogManager> manager(new LogManager(std::move(options)));
  absl::Status status = manager->OpenSteps();
  if (!status.ok()) {
    // Close what was opened; the marker was already consumed (or never
    // there), so the next start recovers fully. The open error is the one
    // worth reporting.
    std::vector<CheckpointEntry> ignored;
    manager->CloseLogs(&ignored).IgnoreError();
    manager->StopIoThreads().IgnoreError();
    absl::MutexLock lock(&manager->mu_);
    manager->closed_ = true;
    return status;
  }
  return manager;
}

absl::Status LogManager::OpenSteps() {
  std::error_code ec;
  fs::create_directories(options_.data_dir, ec);
  if (ec) return FsError(ec, "create data directory", options_.data_dir);
  RUNNEL_RETURN_IF_ERROR(LockDataDir());
  absl::flat_hash_map<PartitionKey, Offset> recovery_points;
  RUNNEL_RETURN_IF_ERROR(ReadCheckpointAndMarker(&recovery_points));
  RUNNEL_RETURN_IF_ERROR(StartIoThreads());
  RUNNEL_RETURN_IF_ERROR(OpenExistingLogs(recovery_points));
  if (options_.start_background_threads) StartBackgroundThread();
  return absl::OkStatus();
}

absl::Status LogManager::LockDataDir() {
  const std::string path = absl::StrCat(options_.data_dir, "/", kLockFileName);
  lock_fd_.reset(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!lock_fd_.valid()) return ErrnoError(errno, "open lock file", path);
  // flock locks belong to the open file description: a second Open in this
  // process fails just like one in another process. The kernel drops the
  // lock when the process dies, so a crash never leaves a stale lock.
  if (::flock(lock_fd_.get(), LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    lock_fd_.reset();
    if (err == EWOULDBLOCK) {
      return absl::FailedPreconditionError(absl::StrCat(
          "data directory ", options_.data_dir,
          " is in use by another LogManager (", path, " is locked)"));
    }
    return ErrnoError(err, "flock", path);
  }
  return absl::OkStatus();
}

absl::Status LogManager::ReadCheckpointAndMarker(
    absl::flat_hash_map<PartitionKey, Offset>* recovery_points) {
  const std::string marker =
      absl::StrCat(options_.data_dir, "/", kCleanShutdownFileName);
  std::error_code ec;
  const bool marker_found = fs::exists(marker, ec);
  if (ec) return FsError(ec, "stat", marker);

  CheckpointFile checkpoint(
      absl::StrCat(options_.data_dir, "/", kRecoveryPointCheckpointName));
  auto entries = checkpoint.Read();
  bool checkpoint_ok = true;
  if (entries.ok()) {
    for (const CheckpointEntry& e : *entries) {
      (*recovery_points)[PartitionKey{e.topic, e.partition}] = e.offset;
    }
  } else if (absl::IsDataLoss(entries.status())) {
    // Fall back to recovering everything from offset 0: slower, never wrong.
    recovery_problems_.push_back(entries.status());
    checkpoint_ok = false;
  } else if (!absl::IsNotFound(entries.status())) {
    return entries.status();
  }
  // The marker vouches for the checkpoint too; without a usable checkpoint,
  // the files are not trusted either.
  clean_shutdown_ = marker_found && checkpoint_ok;

  if (marker_found) {
    // Consume the marker durably BEFORE any log can change: from here on a
    // crash must be treated as unclean.
    if (::unlink(marker.c_str()) != 0)
      return ErrnoError(errno, "unlink", marker);
    RUNNEL_RETURN_IF_ERROR(FsyncPath(options_.data_dir, /*directory=*/true));
  }
  return absl::OkStatus();
}

absl::Status LogManager::StartIoThreads() {
  for (int i = 0; i < options_.io_threads; ++i) {
    IoThreadOptions io_options;
    io_options.name = absl::StrCat("runnel-io-", i);
    io_options.nice = options_.io_thread_nice;
    RUNNEL_ASSIGN_OR_RETURN(std::unique_ptr<IoThread> io,
                            IoThread::Start(io_options));
    io_threads_.push_back(std::move(io));
  }
  return absl::OkStatus();
}

absl::Status LogManager::OpenExistingLogs(
    const absl::flat_hash_map<PartitionKey, Offset>& recovery_points) {
  std::vector<PartitionKey> keys;
  std::error_code ec;
  for (fs::directory_iterator it(options_.data_dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code type_ec;
    if (!it->is_directory(type_ec) || name.empty() || name[0] == '.') continue;
    if (EndsWith(name, kDeletedDirSuffix)) {
      // Left by a Delete() that crashed after the rename (or before its
      // files were reaped): finish it, in the background.
      reaper_->Add(it->path().string());
      continue;
    }
    auto parsed = ParsePartitionDirName(name);
    if (!parsed.ok()) continue;  // not ours: leave it alone
    keys.push_back(PartitionKey{parsed->first, parsed->second});
  }
  if (ec) return FsError(ec, "list data directory", options_.data_dir);

  std::vector<absl::StatusOr<std::unique_ptr<PartitionLog>>> opened;
  opened.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    opened.emplace_back(absl::UnknownError("not opened"));
  }
  ParallelFor(keys.size(), options_.recovery_threads, [&](size_t i) {
    auto rp = recovery_points.find(keys[i]);
    // A log missing from the checkpoint is recovered from its start.
    const bool in_checkpoint = rp != recovery_points.end();
    opened[i] = OpenLog(keys[i], ConfigFor(keys[i].topic),
                        in_checkpoint ? rp->second : 0,
                        clean_shutdown_ && in_checkpoint);
  });

  absl::Status first_error;
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!opened[i].ok()) {
      if (first_error.ok()) first_error = opened[i].status();
      continue;
    }
    for (const absl::Status& p : (*opened[i])->recovery_problems()) {
      recovery_problems_.push_back(p);
    }
    logs_[keys[i]] = std::move(*opened[i]);
  }
  return first_error;
}

absl::StatusOr<std::unique_ptr<PartitionLog>> LogManager::OpenLog(
    const PartitionKey& key, const LogConfig& config, Offset recovery_point,
    bool clean_shutdown) {
  PartitionLogOptions log_options;
  log_options.dir = PathFor(key);
  log_options.topic = key.topic;
  log_options.partition = key.partition;
  log_options.config = config;
  log_options.io = io_thread_for(key.topic, key.partition);
  log_options.clock = options_.clock;
  log_options.recovery_point = recovery_point;
  log_options.clean_shutdown = clean_shutdown;
  log_options.reaper = reaper_.get();
  return PartitionLog::Open(std::move(log_options));
}

LogConfig LogManager::ConfigFor(const std::string& topic) const {
  if (options_.config_for_topic) return options_.config_for_topic(topic);
  return options_.default_config;
}

std::string LogManager::PathFor(const PartitionKey& key) const {
  return absl::StrCat(options_.data_dir, "/",
                      PartitionDirName(key.topic, key.partition));
}

PartitionLog* LogManager::Get(std::string_view topic, int32_t partition) const {
  absl::MutexLock lock(&mu_);
  auto it = logs_.find(PartitionKey{std::string(topic), partition});
  return it == logs_.end() ? nullptr : it->second.get();
}

absl::StatusOr<PartitionLog*> LogManager::Create(const std::string& topic,
                                                 int32_t partition,
                                                 const LogConfig& config) {
  RUNNEL_RETURN_IF_ERROR(ValidateTopicName(topic));
  if (partition < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("partition must be >= 0, got ", partition));
  }
  RUNNEL_RETURN_IF_ERROR(config.Validate());
  absl::MutexLock admin(&admin_mu_);
  const PartitionKey key{topic, partition};
  {
    absl::MutexLock lock(&mu_);
    if (closed_ || close_started_) {
      return absl::FailedPreconditionError("LogManager is closed");
    }
    if (logs_.contains(key)) {
      return absl::AlreadyExistsError(
          absl::StrCat(PathFor(key), " already exists"));
    }
  }
  RUNNEL_ASSIGN_OR_RETURN(std::unique_ptr<PartitionLog> log,
                          OpenLog(key, config, /*recovery_point=*/0,
                                  /*clean_shutdown=*/false));
  // The new directory's name must survive a crash like its contents do.
  RUNNEL_RETURN_IF_ERROR(FsyncPath(options_.data_dir, /*directory=*/true));
  PartitionLog* raw = log.get();
  absl::MutexLock lock(&mu_);
  logs_[key] = std::move(log);
  return raw;
}

absl::Status LogManager::Delete(const std::string& topic, int32_t partition) {
  absl::MutexLock admin(&admin_mu_);
  const PartitionKey key{topic, partition};
  std::shared_ptr<PartitionLog> log;
  {
    absl::MutexLock lock(&mu_);
    auto it = logs_.find(key);
    if (it == logs_.end()) {
      return absl::NotFoundError(absl::StrCat(PathFor(key), " does not exist"));
    }
    log = std::move(it->second);
    logs_.erase(it);
  }
  // The data is going away: a failed flush does not matter, but the files
  // must be closed before they are renamed and removed.
  log->Close().IgnoreError();
  const std::string dir = PathFor(key);
  // A name of its own: an earlier deletion of the same partition may still
  // be in the reaper's hands.
  const std::string doomed =
      absl::StrCat(dir, ".", absl::ToUnixNanos(absl::Now()), kDeletedDirSuffix);
  std::error_code ec;
  fs::rename(dir, doomed, ec);
  if (ec) return FsError(ec, absl::StrCat("rename to ", doomed), dir);
  // Once the rename is durable a crash can no longer resurrect the log; the
  // files go in the background, paced (a leftover is finished at Open).
  RUNNEL_RETURN_IF_ERROR(FsyncPath(options_.data_dir, /*directory=*/true));
  reaper_->Add(doomed);
  return absl::OkStatus();
}

std::vector<std::pair<std::string, int32_t>> LogManager::List() const {
  std::vector<std::pair<std::string, int32_t>> out;
  {
    absl::MutexLock lock(&mu_);
    out.reserve(logs_.size());
    for (const auto& [key, log] : logs_) {
      out.emplace_back(key.topic, key.partition);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

IoThread* LogManager::io_thread_for(const std::string& topic,
                                    int32_t partition) {
  RUNNEL_CHECK(!io_threads_.empty());
  const size_t h =
      std::hash<std::string>()(topic) * 31 + static_cast<size_t>(partition);
  return io_threads_[h % io_threads_.size()].get();
}

std::vector<std::pair<LogManager::PartitionKey, std::shared_ptr<PartitionLog>>>
LogManager::Snapshot() const {
  std::vector<std::pair<PartitionKey, std::shared_ptr<PartitionLog>>> out;
  absl::MutexLock lock(&mu_);
  out.reserve(logs_.size());
  for (const auto& [key, log] : logs_) out.emplace_back(key, log);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::tie(a.first.topic, a.first.partition) <
           std::tie(b.first.topic, b.first.partition);
  });
  return out;
}

absl::Status LogManager::CheckNotClosing() const {
  absl::MutexLock lock(&mu_);
  if (stop_background_ || closed_) {
    return absl::FailedPreconditionError(
        absl::StrCat("LogManager for ", options_.data_dir, " is closing"));
  }
  return absl::OkStatus();
}

absl::Status LogManager::RunRetention() {
  RUNNEL_RETURN_IF_ERROR(CheckNotClosing());
  absl::Status first_error;
  // kFailedPrecondition: deleted or closed under us; nothing to retain.
  // kCancelled: a compaction pass stopped because Close began.
  auto note = [&first_error](const absl::Status& status) {
    if (!status.ok() && !absl::IsFailedPrecondition(status) &&
        !absl::IsCancelled(status) && first_error.ok()) {
      first_error = status;
    }
  };
  // Close waits for this pass: a long compaction stops between segments.
  auto closing = [this] { return !CheckNotClosing().ok(); };
  int64_t deleted = 0;
  int64_t compacted = 0;
  for (const auto& [key, log] : Snapshot()) {
    if (closing()) break;
    auto n = log->ApplyRetention();
    if (n.ok()) deleted += *n;
    note(n.status());
    auto c = log->Compact(closing);
    if (c.ok()) compacted += c->records_removed;
    note(c.status());
  }
  absl::MutexLock lock(&mu_);
  segments_deleted_ += deleted;
  records_compacted_ += compacted;
  return first_error;
}

int64_t LogManager::records_removed_by_compaction() const {
  absl::MutexLock lock(&mu_);
  return records_compacted_;
}

int64_t LogManager::segments_deleted_by_retention() const {
  absl::MutexLock lock(&mu_);
  return segments_deleted_;
}

absl::Status LogManager::CheckpointRecoveryPoints() {
  absl::MutexLock lock(&checkpoint_mu_);
  // Checked under checkpoint_mu_: once Close() has begun, only its own
  // checkpoint (written after every log is closed) may follow.
  RUNNEL_RETURN_IF_ERROR(CheckNotClosing());
  std::vector<CheckpointEntry> entries;
  for (const auto& [key, log] : Snapshot()) {
    entries.push_back(
        CheckpointEntry{key.topic, key.partition, log->durable_offset()});
  }
  return CheckpointFile(
             absl::StrCat(options_.data_dir, "/", kRecoveryPointCheckpointName))
      .Write(entries);
}

void LogManager::StartBackgroundThread() {
  background_ = std::thread([this] { BackgroundLoop(); });
}

void LogManager::BackgroundLoop() {
  absl::Time next_retention =
      absl::Now() + absl::Milliseconds(options_.retention_check_interval_ms);
  absl::Time next_checkpoint =
      absl::Now() + absl::Milliseconds(options_.checkpoint_interval_ms);
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      const absl::Time wake = std::min(next_retention, next_checkpoint);
      // Close() sets stop_background_ and signals: no waiting out a period.
      while (!stop_background_ && absl::Now() < wake) {
        background_cv_.WaitWithDeadline(&mu_, wake);
      }
      if (stop_background_) return;
    }
    const absl::Time now = absl::Now();
    if (now >= next_retention) {
      ReportBackgroundError("retention", RunRetention());
      next_retention =
          now + absl::Milliseconds(options_.retention_check_interval_ms);
    }
    if (now >= next_checkpoint) {
      ReportBackgroundError("checkpoint", CheckpointRecoveryPoints());
      next_checkpoint =
          now + absl::Milliseconds(options_.checkpoint_interval_ms);
    }
  }
}

void LogManager::ReportBackgroundError(const char* what,
                                       const absl::Status& status) const {
  // kFailedPrecondition: Close() began meanwhile; nothing went wrong.
  if (status.ok() || absl::IsFailedPrecondition(status)) return;
  // Retried at the next period; a failing disk also fails the appends,
  // which is where the broker notices.
  spdlog::error("{} in {}: {}", what, options_.data_dir, status.ToString());
}

void LogManager::StopBackgroundThread() {
  {
    absl::MutexLock lock(&mu_);
    stop_background_ = true;
    background_cv_.SignalAll();
  }
  if (background_.joinable()) background_.join();
}

absl::Status LogManager::CloseLogs(std::vector<CheckpointEntry>* entries) {
  absl::Status first_error;
  for (const auto& [key, log] : Snapshot()) {
    absl::Status s = log->Close();
    if (!s.ok() && first_error.ok()) first_error = s;
    if (s.ok()) {
      entries->push_back(
          CheckpointEntry{key.topic, key.partition, log->log_end_offset()});
    }
  }
  return first_error;
}

absl::Status LogManager::CloseAll() {
  std::vector<CheckpointEntry> entries;
  RUNNEL_RETURN_IF_ERROR(CloseLogs(&entries));
  // Every log is closed, i.e. flushed and fsynced: their ends are durable.
  absl::MutexLock lock(&checkpoint_mu_);
  return CheckpointFile(
             absl::StrCat(options_.data_dir, "/", kRecoveryPointCheckpointName))
      .Write(entries);
}

absl::Status LogManager::StopIoThreads() {
  absl::Status first_error;
  for (std::unique_ptr<IoThread>& io : io_threads_) {
    absl::Status s = io->Stop();
    if (!s.ok() && first_error.ok()) first_error = s;
  }
  return first_error;
}

absl::Status LogManager::WriteCleanShutdownMarker() {
  const std::string path =
      absl::StrCat(options_.data_dir, "/", kCleanShutdownFileName);
  UniqueFd fd(
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return ErrnoError(errno, "create", path);
  if (::fsync(fd.get()) != 0) return ErrnoError(errno, "fsync", path);
  fd.reset();
  return FsyncPath(options_.data_dir, /*directory=*/true);
}

absl::Status LogManager::Close() {
  absl::MutexLock admin(&admin_mu_);
  if (close_started_) return close_status_;
  close_started_ = true;
  StopBackgroundThread();
  absl::Status status = CloseAll();
  absl::Status io_status = StopIoThreads();
  if (status.ok()) status = io_status;
  reaper_->Stop();  // the logs are closed: what is queued goes now
  // LAST, and only if every log and the checkpoint are durable: the marker
  // tells the next Open to trust the files and the checkpoint.
  if (status.ok()) status = WriteCleanShutdownMarker();
  {
    absl::MutexLock lock(&mu_);
    closed_ = true;
    logs_.clear();
  }
  lock_fd_.reset();  // releases the flock
  close_status_ = status;
  return status;
}

}  // namespace runnel::log
