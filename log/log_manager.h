#pragma once

// The set of partition logs under one data directory: opens and recovers them
// at start (in parallel), creates and deletes partitions, schedules retention
// and recovery-point checkpoints, and shuts down cleanly. Data directory
// layout and the startup/shutdown sequences: docs/log-format.md ("Data
// directory").

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

#include "common/clock.h"
#include "common/unique_fd.h"
#include "log/checkpoint_file.h"
#include "log/file_reaper.h"
#include "log/log_config.h"
#include "log/partition_log.h"

namespace runnel::log {

class IoThread;

// File names inside the data directory.
inline constexpr char kLockFileName[] = ".lock";
inline constexpr char kCleanShutdownFileName[] = ".clean_shutdown";
inline constexpr char kRecoveryPointCheckpointName[] =
    "recovery-point-offset-checkpoint";
inline constexpr char kDeletedDirSuffix[] = ".deleted";

struct LogManagerOptions {
  std::string data_dir;  // created if missing
  LogConfig default_config;
  // Per-topic config for the logs found at Open; null -> default_config.
  // Called from the recovery threads concurrently: must be thread-safe.
  std::function<LogConfig(const std::string& topic)> config_for_topic;
  int io_threads = 1;
  // IoThreadOptions::nice of each I/O thread.
  int io_thread_nice = 0;
  Clock* clock = SystemClock::Default();  // must outlive the manager
  int recovery_threads = 2;
  // Periods of the background retention and checkpoint passes (real time;
  // the injected clock only decides ages inside the logs).
  int64_t retention_check_interval_ms = 300000;
  int64_t checkpoint_interval_ms = 60000;
  // false: no background threads; tests call RunRetention(),
  // CheckpointRecoveryPoints() and file_reaper().DeleteReady() themselves.
  bool start_background_threads = true;
  // How segments removed by retention and deleted partitions are deleted
  // (paced, in the background: log/file_reaper.h). Its start_thread follows
  // start_background_threads.
  FileReaperOptions file_reaper;
};

// A topic name Kafka accepts: 1..249 characters of [a-zA-Z0-9._-], not "."
// or "..". kInvalidArgument naming the problem otherwise.
absl::Status ValidateTopicName(std::string_view topic);

// "<topic>-<partition>", the partition's directory name.
std::string PartitionDirName(std::string_view topic, int32_t partition);

// Splits a directory name at its LAST '-' into topic and partition (topic
// names may contain '-'). kInvalidArgument if the name is not
// "<valid topic>-<non-negative int32 in canonical decimal>".
absl::StatusOr<std::pair<std::string, int32_t>> ParsePartitionDirName(
    std::string_view name);

// Thread-safe. Owns every PartitionLog and the I/O threads they use.
// A PartitionLog* handed out by Get/Create stays valid until Delete() of that
// partition or Close(); the caller must not use it concurrently with either.
// The destructor requires a successful or failed Close() first (RUNNEL_CHECK):
// dropping a manager without Close is a bug, not a shutdown.
class LogManager {
 public:
  LogManager(const LogManager&) = delete;
  LogManager& operator=(const LogManager&) = delete;
  LogManager(LogManager&&) = delete;
  LogManager& operator=(LogManager&&) = delete;
  ~LogManager();

  // Locks data_dir (flock on ".lock": a second manager on the same directory,
  // in this or another process, gets kFailedPrecondition), reads the
  // recovery-point checkpoint, notes and then durably removes the
  // ".clean_shutdown" marker (a crash from here on is unclean), removes
  // leftover "*.deleted" directories, and opens every "<topic>-<partition>"
  // directory on recovery_threads threads (unclean: full validation from the
  // recovery point). Unrelated files and directories are skipped. A malformed
  // checkpoint is reported in recovery_problems() and every log is then
  // recovered from offset 0 as after a crash. Errors: kInvalidArgument for
  // bad options; kFailedPrecondition when locked; the first error opening a
  // partition (every log opened so far is closed again).
  static absl::StatusOr<std::unique_ptr<LogManager>> Open(
      LogManagerOptions options);

  // nullptr if absent.
  PartitionLog* Get(std::string_view topic, int32_t partition) const;

  // Creates <data_dir>/<topic>-<partition> and opens an empty log in it.
  // kAlreadyExists if present; kInvalidArgument for a bad topic name, a
  // negative partition or an invalid config; kFailedPrecondition after Close.
  absl::StatusOr<PartitionLog*> Create(const std::string& topic,
                                       int32_t partition,
                                       const LogConfig& config);

  // Closes the log, renames its directory to "<dir>.deleted" (durably), then
  // removes it. A crash in between leaves a ".deleted" directory that the
  // next Open removes, never a half-deleted log that would be reopened.
  // kNotFound if absent.
  absl::Status Delete(const std::string& topic, int32_t partition);

  // Every partition, sorted by topic then partition.
  std::vector<std::pair<std::string, int32_t>> List() const;

  // The I/O thread that serves this partition (stable hash over io_threads).
  IoThread* io_thread_for(const std::string& topic, int32_t partition);
  // The deleter of retired files (tests drive it without background
  // threads).
  FileReaper& file_reaper() { return *reaper_; }

  // One retention pass over every log (PartitionLog::ApplyRetention), and
  // a compaction pass over those whose cleanup.policy has "compact"
  // (PartitionLog::Compact). Runs every log even if one fails; returns the
  // first error. kFailedPrecondition once Close() has begun; a pass that
  // is running then stops early (between logs, and a compaction between
  // segments), so Close does not wait for a long compaction.
  absl::Status RunRetention();
  // Number of segments deleted by retention since Open.
  int64_t segments_deleted_by_retention() const;
  // Number of records compaction removed since Open.
  int64_t records_removed_by_compaction() const;

  // Writes every log's durable_offset() to recovery-point-offset-checkpoint
  // (atomically). Serialized with itself. kFailedPrecondition once Close()
  // has begun (Close writes the final checkpoint itself).
  absl::Status CheckpointRecoveryPoints();

  // Findings of recovery at Open: each log's recovery_problems() and a
  // malformed checkpoint (kDataLoss). Immutable after Open.
  const std::vector<absl::Status>& recovery_problems() const {
    return recovery_problems_;
  }
  // Whether Open found the clean-shutdown marker and a valid checkpoint, i.e.
  // whether the logs were opened as trusted (clean_shutdown = true).
  bool opened_after_clean_shutdown() const { return clean_shutdown_; }
  const std::string& data_dir() const { return options_.data_dir; }

  // Stops the background threads, closes every log (flush + fsync), writes
  // the recovery-point checkpoint, stops the I/O threads, and LAST durably
  // writes ".clean_shutdown" -- only if everything before succeeded. Then
  // releases the lock. Idempotent (later calls return the first result).
  // Blocks; must not be called from a WhenDurable callback.
  absl::Status Close();

 private:
  struct PartitionKey {
    std::string topic;
    int32_t partition;
    bool operator==(const PartitionKey&) const = default;
    template <typename H>
    friend H AbslHashValue(H h, const PartitionKey& k) {
      return H::combine(std::move(h), k.topic, k.partition);
    }
  };
  // shared_ptr: RunRetention and CheckpointRecoveryPoints work on a snapshot
  // of the logs without holding mu_, so a concurrent Delete must not free a
  // log under them.
  using LogMap =
      absl::flat_hash_map<PartitionKey, std::shared_ptr<PartitionLog>>;

  explicit LogManager(LogManagerOptions options);

  absl::Status OpenSteps();
  absl::Status LockDataDir();
  absl::Status ReadCheckpointAndMarker(
      absl::flat_hash_map<PartitionKey, Offset>* recovery_points);
  absl::Status StartIoThreads();
  absl::Status OpenExistingLogs(
      const absl::flat_hash_map<PartitionKey, Offset>& recovery_points);
  absl::StatusOr<std::unique_ptr<PartitionLog>> OpenLog(const PartitionKey& key,
                                                        const LogConfig& config,
                                                        Offset recovery_point,
                                                        bool clean_shutdown);
  // kFailedPrecondition once Close() has begun.
  absl::Status CheckNotClosing() const ABSL_LOCKS_EXCLUDED(mu_);
  LogConfig ConfigFor(const std::string& topic) const;
  std::string PathFor(const PartitionKey& key) const;
  std::vector<std::pair<PartitionKey, std::shared_ptr<PartitionLog>>> Snapshot()
      const ABSL_LOCKS_EXCLUDED(mu_);

  void StartBackgroundThread();
  void BackgroundLoop();
  void StopBackgroundThread();
  void ReportBackgroundError(const char* what,
                             const absl::Status& status) const;

  // Closes every log; appends the end offsets of those that closed cleanly.
  absl::Status CloseLogs(std::vector<CheckpointEntry>* entries);
  // CloseLogs, then the recovery-point checkpoint if every log closed.
  absl::Status CloseAll();
  absl::Status WriteCleanShutdownMarker();
  absl::Status StopIoThreads();

  const LogManagerOptions options_;
  UniqueFd lock_fd_;
  bool clean_shutdown_ = false;
  std::vector<absl::Status> recovery_problems_;
  std::vector<std::unique_ptr<IoThread>> io_threads_;

  // Serializes Create, Delete and Close with each other.
  absl::Mutex admin_mu_;
  // Serializes writers of the checkpoint file (they share its .tmp file).
  absl::Mutex checkpoint_mu_;

  mutable absl::Mutex mu_;
  LogMap logs_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_background_ ABSL_GUARDED_BY(mu_) = false;
  bool close_started_ ABSL_GUARDED_BY(admin_mu_) = false;
  absl::Status close_status_ ABSL_GUARDED_BY(admin_mu_);
  int64_t segments_deleted_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t records_compacted_ ABSL_GUARDED_BY(mu_) = 0;
  absl::CondVar background_cv_;
  std::thread background_;  // joined in StopBackgroundThread
  // Deletes retired segments and deleted partitions' directories; stopped
  // (what is left deleted at once) by Close.
  std::unique_ptr<FileReaper> reaper_;
};

}  // namespace runnel::log
