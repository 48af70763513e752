#include "log/partition_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

#include "common/check.h"
#include "common/endian.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "log/checkpoint_file.h"
#include "log/io_thread.h"
#include "log/record_batch.h"
#include "log/segment.h"

namespace runnel::log {
namespace {

constexpr char kLogStartOffsetFile[] = "log-start-offset";
// Compaction (docs/log-format.md, "Compaction"): segments below the offset in
// the cleaner checkpoint may hold compacted batches; a cleaned copy is built
// in the cleaning directory and committed by renaming that to the swap
// directory, whose files then replace the segment's.
constexpr char kCleaningDir[] = ".cleaning";
// Present while the segments below the cleaner checkpoint may hold more than
// one record per key (an interrupted pass, a truncation below it): the next
// passes map from the log start until one reaches the checkpoint.
constexpr char kCleanerRemapFile[] = "cleaner-remap";
constexpr char kSwapDir[] = ".swap";
// The cleaner writes its copy in chunks of this size.
constexpr size_t kCleanerWriteChunk = size_t{1} << 20;
// Batches already on disk were accepted under some max.message.bytes that may
// have been larger than today's: recovery only guards against absurd sizes.
constexpr size_t kMaxStoredBatchBytes = size_t{1} << 31;

absl::Status FsyncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid() || fsync(fd.get()) != 0) {
    return absl::InternalError(
        absl::StrCat(dir, ": fsync directory: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status ErrnoStatus(const std::string& what, const std::string& path) {
  return absl::InternalError(
      absl::StrCat(path, ": ", what, ": ", std::strerror(errno)));
}

absl::Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("write", path);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// Moves every file of the swap directory into `dir` (replacing the files of
// the same name) and removes it: the second half of a compaction's commit,
// at run time and, after a crash, at the next open.
absl::Status MoveSwappedFiles(const std::string& dir) {
  const std::string swap = dir + "/" + kSwapDir;
  std::error_code ec;
  if (!std::filesystem::is_directory(swap, ec)) return absl::OkStatus();
  for (const auto& entry : std::filesystem::directory_iterator(swap, ec)) {
    const std::string target = dir + "/" + entry.path().filename().string();
    if (::rename(entry.path().c_str(), target.c_str()) != 0) {
      return ErrnoStatus("rename", entry.path().string());
    }
  }
  if (ec) return absl::InternalError(absl::StrCat(swap, ": ", ec.message()));
  RUNNEL_RETURN_IF_ERROR(FsyncDir(dir));
  if (::rmdir(swap.c_str()) != 0) return ErrnoStatus("rmdir", swap);
  return FsyncDir(dir);
}

// Calls fn(batch, position) for every batch of `segment` below `end`.
absl::Status ForEachStoredBatch(
    const Segment& segment, FilePos end,
    absl::FunctionRef<absl::Status(const RecordBatchView&, FilePos)> fn) {
  absl::Status status;
  RUNNEL_RETURN_IF_ERROR(
      segment.ReadBatchInfos(0, end, [&](const BatchInfo& info) {
        absl::StatusOr<std::string> bytes =
            segment.Read(info.position, static_cast<size_t>(info.size_bytes));
        if (!bytes.ok()) {
          status = bytes.status();
          return false;
        }
        absl::StatusOr<RecordBatchView> batch =
            RecordBatchView::Parse(*bytes, BatchSource::kDisk);
        if (!batch.ok()) {
          status = batch.status();
        } else if (!batch->CrcMatches()) {
          // Never map a damaged key, nor give damaged bytes a new CRC by
          // rewriting them: the pass stops and the segment stays as it is.
          status = absl::DataLossError(
              absl::StrCat(segment.log_path(), ": position ", info.position,
                           ": CRC mismatch; compaction stopped"));
        } else {
          status = fn(*batch, info.position);
        }
        return status.ok();
      }));
  return status;
}

SegmentOptions MakeSegmentOptions(const PartitionLogOptions& options,
                                  const LogConfig& config) {
  SegmentOptions s;
  s.io = options.io;
  s.index_interval_bytes = config.index_interval_bytes;
  s.index_bytes = config.segment_index_bytes;
  s.direct_io = config.direct_io;
  s.tail_cache_bytes = options.tail_cache_bytes;
  s.pread_on_caller = options.pread_on_caller;
  return s;
}

// Wire-side problems with a producer's or leader's batches are the caller's
// fault: always kInvalidArgument (a truncated request is kOutOfRange from
// Parse).
absl::Status AsInvalidArgument(const absl::Status& status) {
  if (status.ok() || status.code() == absl::StatusCode::kInvalidArgument) {
    return status;
  }
  return absl::InvalidArgumentError(status.message());
}

}  // namespace

absl::Status LogConfig::Validate() const {
  auto bad = [](std::string_view field, int64_t value) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid ", std::string(field), ": ", value));
  };
  if (segment_bytes < 14 ||
      segment_bytes > std::numeric_limits<int32_t>::max()) {
    return bad("segment.bytes", segment_bytes);
  }
  if (segment_ms < 1) return bad("segment.ms", segment_ms);
  if (retention_ms < -1) return bad("retention.ms", retention_ms);
  if (retention_bytes < -1) return bad("retention.bytes", retention_bytes);
  if (index_interval_bytes < 0) {
    return bad("index.interval.bytes", index_interval_bytes);
  }
  if (segment_index_bytes < 4 * kTimeIndexEntrySize ||
      segment_index_bytes > std::numeric_limits<int32_t>::max()) {
    return bad("segment.index.bytes", segment_index_bytes);
  }
  if (max_message_bytes < static_cast<int32_t>(kBatchHeaderSize)) {
    return bad("max.message.bytes", max_message_bytes);
  }
  if (cleanup_policy != "delete" && cleanup_policy != "compact" &&
      cleanup_policy != "compact,delete" &&
      cleanup_policy != "delete,compact") {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid cleanup.policy: ", cleanup_policy));
  }
  if (delete_retention_ms < 0) {
    return bad("delete.retention.ms", delete_retention_ms);
  }
  if (min_compaction_lag_ms < 0) {
    return bad("min.compaction.lag.ms", min_compaction_lag_ms);
  }
  if (!(min_cleanable_dirty_ratio >= 0 && min_cleanable_dirty_ratio <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid min.cleanable.dirty.ratio: ", min_cleanable_dirty_ratio));
  }
  return absl::OkStatus();
}

bool LogConfig::compact() const {
  return cleanup_policy.find("compact") != std::string::npos;
}

bool LogConfig::delete_enabled() const {
  return cleanup_policy.find("delete") != std::string::npos;
}

PartitionLog::PartitionLog(PartitionLogOptions options)
    : options_(std::move(options)), config_(options_.config) {}

PartitionLog::~PartitionLog() = default;

absl::StatusOr<std::unique_ptr<PartitionLog>> PartitionLog::Open(
    PartitionLogOptions options) {
  if (options.io == nullptr || options.clock == nullptr ||
      options.dir.empty() || options.topic.empty() || options.partition < 0) {
    return absl::InvalidArgumentError(
        "PartitionLogOptions needs dir, topic, partition >= 0, io and clock");
  }
  RUNNEL_RETURN_IF_ERROR(options.config.Validate());
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat(options.dir, ": create directory: ", ec.message()));
  }
  std::unique_ptr<PartitionLog> log(new PartitionLog(std::move(options)));
  absl::MutexLock lock(&log->mu_);
  RUNNEL_RETURN_IF_ERROR(log->RecoverLocked());
  return log;
}

absl::Status PartitionLog::RecoverLocked() {
  const std::string& dir = options_.dir;
  RUNNEL_ASSIGN_OR_RETURN(
      epochs_, LeaderEpochCache::Open(dir + "/" + kLeaderEpochCheckpointFile));

  // A compaction that committed (its swap directory exists) is completed;
  // one that did not is dropped.
  RUNNEL_RETURN_IF_ERROR(MoveSwappedFiles(dir));
  std::error_code cleaning_ec;
  // A pass stopped before its commit may have raised the checkpoint over a
  // segment it did not replace: passes map from the start until one gets
  // past the checkpoint again (durably noted before the copy goes).
  remap_pending_ =
      std::filesystem::exists(dir + "/" + kCleanerRemapFile, cleaning_ec);
  if (!remap_pending_ &&
      std::filesystem::exists(dir + "/" + kCleaningDir, cleaning_ec)) {
    RUNNEL_RETURN_IF_ERROR(SetCleanerRemapLocked(true));
  }
  std::filesystem::remove_all(dir + "/" + kCleaningDir, cleaning_ec);
  if (cleaning_ec) {
    return absl::InternalError(
        absl::StrCat(dir, "/", kCleaningDir, ": ", cleaning_ec.message()));
  }

  auto read_checkpoint = [&](const char* name) -> absl::StatusOr<Offset> {
    Offset offset = 0;
    auto entries = CheckpointFile(dir + "/" + name).Read();
    if (entries.ok()) {
      for (const CheckpointEntry& e : *entries) {
        if (e.topic == options_.topic && e.partition == options_.partition) {
          offset = e.offset;
        }
      }
    } else if (entries.status().code() != absl::StatusCode::kNotFound) {
      return entries.status();
    }
    return offset;
  };
  RUNNEL_ASSIGN_OR_RETURN(Offset checkpoint_start,
                          read_checkpoint(kLogStartOffsetFile));
  RUNNEL_ASSIGN_OR_RETURN(cleaned_end_,
                          read_checkpoint(kCleanerCheckpointFile));
  dirty_start_ = remap_pending_ ? 0 : cleaned_end_;

  // Find the segments; index files without a .log, and files renamed for
  // a deletion (".deleted"), are leftovers of a deletion interrupted by a
  // crash.
  std::vector<Offset> bases;
  std::vector<std::string> orphans;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    Offset base = 0;
    if (ParseSegmentFileName(name, kLogFileSuffix, &base)) {
      bases.push_back(base);
    } else if (name.size() > std::strlen(kDeletedFileSuffix) &&
               name.ends_with(kDeletedFileSuffix)) {
      orphans.push_back(entry.path().string());
    } else if (ParseSegmentFileName(name, kIndexFileSuffix, &base) ||
               ParseSegmentFileName(name, kTimeIndexFileSuffix, &base)) {
      if (!std::filesystem::exists(
              SegmentFilePath(dir, base, kLogFileSuffix))) {
        orphans.push_back(entry.path().string());
      }
    }
  }
  for (std::string& path : orphans) {
    if (options_.reaper != nullptr) {
      options_.reaper->Add(std::move(path));
    } else {
      ::unlink(path.c_str());
    }
  }
  std::sort(bases.begin(), bases.end());

  const SegmentOptions seg_options = MakeSegmentOptions(options_, config_);
  if (bases.empty()) {
    RUNNEL_ASSIGN_OR_RETURN(
        auto segment, Segment::Create(dir, checkpoint_start, seg_options));
    segments_[checkpoint_start] = std::move(segment);
    RUNNEL_RETURN_IF_ERROR(FsyncDir(dir));
  } else {
    for (Offset base : bases) {
      RUNNEL_ASSIGN_OR_RETURN(auto segment,
                              Segment::OpenClosed(dir, base, seg_options));
      segments_[base] = std::move(segment);
    }
    // A closed segment ends where the next one starts.
    for (auto it = segments_.begin(); std::next(it) != segments_.end(); ++it) {
      it->second->set_next_offset(std::next(it)->first);
    }

    // Where scanning starts: the last segment for a clean shutdown (tail
    // check only), else the segment holding the recovery point.
    auto start = std::prev(segments_.end());
    if (!options_.clean_shutdown) {
      start = segments_.upper_bound(options_.recovery_point);
      if (start != segments_.begin()) --start;
    }
    int32_t prev_epoch = -1;
    for (auto it = start; it != segments_.end(); ++it) {
      Segment* segment = it->second.get();
      const bool last = std::next(it) == segments_.end();
      // A compacted segment may end before the next one starts.
      const bool gaps = it->first < cleaned_end_;
      if (it != start) {
        Segment* prev = std::prev(it)->second.get();
        const bool prev_gaps = std::prev(it)->first < cleaned_end_;
        if (prev_gaps ? prev->next_offset() > it->first
                      : prev->next_offset() != it->first) {
          recovery_problems_.push_back(absl::DataLossError(
              absl::StrCat(segment->log_path(), ": segment starts at offset ",
                           it->first, " but the previous one ends at ",
                           prev->next_offset(), " (position 0)")));
          segments_.erase(it, segments_.end());
          break;
        }
        prev->set_next_offset(it->first);
      }
      absl::StatusOr<SegmentRecovery> recovery;
      if (options_.clean_shutdown) {
        recovery = segment->LoadTail(kMaxStoredBatchBytes, prev_epoch, gaps);
      } else {
        std::vector<EpochEntry> seen;
        recovery = segment->Recover(
            kMaxStoredBatchBytes, prev_epoch,
            [&seen](const BatchInfo& b) {
              if (b.leader_epoch >= 0 &&
                  (seen.empty() || seen.back().epoch != b.leader_epoch)) {
                seen.push_back({b.leader_epoch, b.base_offset});
              }
            },
            gaps);
        // Like Kafka's LogSegment.recover: an epoch newer than the cache's
        // latest is assigned where it first appears, repairing a lost or
        // stale checkpoint.
        for (const EpochEntry& e : seen) {
          if (e.epoch > epochs_->latest_epoch()) {
            RUNNEL_RETURN_IF_ERROR(epochs_->Assign(e.epoch, e.start_offset));
          }
        }
      }
      RUNNEL_RETURN_IF_ERROR(recovery.status());
      prev_epoch = recovery->last_epoch;
      absl::Status problem = recovery->problem;
      if (problem.ok() && recovery->torn_tail && !last) {
        problem = absl::DataLossError(absl::StrCat(
            segment->log_path(), ": torn batch at position ",
            recovery->valid_bytes, " in a segment that is not the last"));
      }
      if (!problem.ok()) {
        // Data loss: never serve anything at or after the bad batch, so
        // the log ends there; later segments go.
        recovery_problems_.push_back(problem);
        for (auto later = std::next(it); later != segments_.end(); ++later) {
          RUNNEL_RETURN_IF_ERROR(later->second->DeleteFiles());
        }
        segments_.erase(std::next(it), segments_.end());
        RUNNEL_RETURN_IF_ERROR(FsyncDir(dir));
        break;
      }
    }
    // An empty segment can only be the last one; drop empty leftovers in
    // front of it (a crash right after a roll leaves at most one).
    RUNNEL_RETURN_IF_ERROR(active()->Activate());
  }
  log_end_offset_.store(active()->next_offset(), std::memory_order_release);
  Offset start_offset = std::max(checkpoint_start, segments_.begin()->first);
  start_offset = std::min(start_offset, log_end_offset_.load());
  log_start_offset_.store(start_offset, std::memory_order_release);
  RUNNEL_RETURN_IF_ERROR(epochs_->TruncateFromEnd(log_end_offset_.load()));
  RUNNEL_RETURN_IF_ERROR(epochs_->TruncateFromStart(start_offset));
  // Recovery synced every scanned segment and clean shutdown synced all:
  // everything that is left is durable.
  MarkDurable(log_end_offset_.load(), /*bump_generation=*/true);
  return absl::OkStatus();
}

absl::Status PartitionLog::CheckOpenLocked() const {
  if (closed_) {
    return absl::FailedPreconditionError(
        absl::StrCat(options_.dir, ": partition log is closed"));
  }
  return absl::OkStatus();
}

void PartitionLog::MarkDurable(Offset offset, bool bump_generation) {
  absl::MutexLock lock(&durable_->mu);
  if (bump_generation) {
    ++durable_->generation;
    durable_->durable_offset = offset;
  } else {
    durable_->durable_offset = std::max(durable_->durable_offset, offset);
  }
}

absl::StatusOr<PartitionLog::AppendResult> PartitionLog::Append(
    RecordBytes batches, int32_t leader_epoch, BatchValidation validation) {
  absl::MutexLock lock(&mu_);
  RUNNEL_RETURN_IF_ERROR(CheckOpenLocked());
  if (leader_epoch < epochs_->latest_epoch()) {
    return absl::AbortedError(absl::StrCat(
        options_.dir, ": leader epoch ", leader_epoch,
        " is older than the latest epoch ", epochs_->latest_epoch()));
  }
  // Pieces go straight into the append buffer when nothing but the framing
  // is left to check and no byte inside the CRC changes.
  if (!batches.is_string() && validation == BatchValidation::kCallerValidated &&
      config_.message_timestamp_type != TimestampType::kLogAppendTime) {
    absl::StatusOr<AppendResult> appended =
        AppendPiecesLocked(batches, leader_epoch);
    if (appended.ok() || !absl::IsFailedPrecondition(appended.status())) {
      return appended;
    }
    // Not framed right: the joined path below gives the exact error.
  }
  return AppendLocked(std::move(batches).TakeString(), /*assign_offsets=*/true,
                      leader_epoch, validation);
}

absl::StatusOr<PartitionLog::AppendResult> PartitionLog::AppendPiecesLocked(
    const RecordBytes& batches, int32_t leader_epoch) {
  // 1. Frame every batch from a copy of its header, which also takes the
  // leader's rewrite (baseOffset, partitionLeaderEpoch: outside the CRC).
  const size_t max_bytes = static_cast<size_t>(config_.max_message_bytes);
  std::vector<BatchInfo> infos;
  std::vector<std::array<char, kBatchHeaderSize>> headers;
  Offset next = log_end_offset_.load(std::memory_order_relaxed);
  for (size_t pos = 0; pos < batches.size();) {
    std::array<char, kBatchHeaderSize> header;
    const size_t available = batches.size() - pos;
    const size_t head = std::min(available, kBatchHeaderSize);
    batches.CopyTo(pos, head, header.data());
    absl::StatusOr<size_t> size =
        FrameBatchHead(std::string_view(header.data(), head), available);
    if (!size.ok() || *size > max_bytes) {
      return absl::FailedPreconditionError("not framed");
    }
    const RecordBatchView view = RecordBatchView::HeaderView(
        std::string_view(header.data(), header.size()));
    BatchInfo info;
    info.position = pos;
    info.size_bytes = static_cast<int64_t>(*size);
    info.base_offset = next;
    info.leader_epoch = leader_epoch;
    info.last_offset = next + view.last_offset_delta();
    info.max_timestamp = view.max_timestamp();
    next = info.last_offset + 1;
    SetBaseOffset(header.data(), info.base_offset);
    SetPartitionLeaderEpoch(header.data(), leader_epoch);
    infos.push_back(info);
    headers.push_back(header);
    pos += *size;
  }
  if (infos.empty()) return absl::FailedPreconditionError("no batches");

  // 2. Each batch is its rewritten header, then its pieces after the header.
  std::vector<std::string_view> parts;
  return WriteBatchesLocked(
      infos, batches.size(), options_.clock->NowMs(), /*log_append_time=*/false,
      [&](Segment* segment, size_t i, int64_t now_ms) {
        const BatchInfo& info = infos[i];
        parts.clear();
        parts.push_back(std::string_view(headers[i].data(), kBatchHeaderSize));
        batches.Slice(info.position + kBatchHeaderSize,
                      info.size_bytes - kBatchHeaderSize, parts);
        return segment->Append(parts, info, now_ms);
      });
}

absl::StatusOr<PartitionLog::AppendResult> PartitionLog::AppendReplicated(
    std::string batches) {
  absl::MutexLock lock(&mu_);
  RUNNEL_RETURN_IF_ERROR(CheckOpenLocked());
  return AppendLocked(std::move(batches), /*assign_offsets=*/false, -1,
                      BatchValidation::kFull);
}

absl::StatusOr<PartitionLog::AppendResult> PartitionLog::AppendLocked(
    std::string batches, bool assign_offsets, int32_t leader_epoch,
    BatchValidation validation) {
  // 1. Frame and validate everything before touching the log.
  auto split = SplitBatches(batches, BatchSource::kWire);
  if (!split.ok()) return AsInvalidArgument(split.status());
  if (split->empty()) {
    return absl::InvalidArgumentError("append without record batches");
  }
  ValidateOptions validate{
      .source = BatchSource::kWire,
      .max_batch_bytes = static_cast<size_t>(config_.max_message_bytes)};
  std::vector<BatchInfo> infos;
  infos.reserve(split->size());
  const Offset log_end = log_end_offset_.load(std::memory_order_relaxed);
  Offset next = log_end;
  int32_t epoch = epochs_->latest_epoch();
  for (const RecordBatchView& view : *split) {
    if (validation == BatchValidation::kFull) {
      RUNNEL_RETURN_IF_ERROR(
          AsInvalidArgument(ValidateBatch(view.bytes(), validate)));
    } else if (view.size_bytes() > validate.max_batch_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          options_.dir, ": batch of ", view.size_bytes(),
          " bytes too large (max ", validate.max_batch_bytes, ")"));
    }
    BatchInfo info;
    info.position = view.bytes().data() - batches.data();
    info.size_bytes = static_cast<int64_t>(view.size_bytes());
    if (assign_offsets) {
      info.base_offset = next;
      info.leader_epoch = leader_epoch;
    } else {
      info.base_offset = view.base_offset();
      info.leader_epoch = view.partition_leader_epoch();
      if (info.base_offset != next) {
        return absl::InvalidArgumentError(absl::StrCat(
            options_.dir, ": replicated batch at offset ", info.base_offset,
            " does not continue the log at ", next));
      }
      if (info.leader_epoch < epoch) {
        return absl::InvalidArgumentError(absl::StrCat(
            options_.dir, ": replicated batch at offset ", info.base_offset,
            " has leader epoch ", info.leader_epoch, " below ", epoch));
      }
      epoch = std::max(epoch, info.leader_epoch);
    }
    info.last_offset = info.base_offset + view.last_offset_delta();
    info.max_timestamp = view.max_timestamp();
    next = info.last_offset + 1;
    infos.push_back(info);
  }

  // 2. Rewrite the headers the leader owns (outside the CRC, except the
  // LogAppendTime stamp which recomputes it).
  const int64_t now_ms = options_.clock->NowMs();
  const bool log_append_time =
      assign_offsets &&
      config_.message_timestamp_type == TimestampType::kLogAppendTime;
  for (BatchInfo& info : infos) {
    char* p = batches.data() + info.position;
    if (assign_offsets) {
      SetBaseOffset(p, info.base_offset);
      SetPartitionLeaderEpoch(p, leader_epoch);
      if (log_append_time) {
        StampLogAppendTime(p, static_cast<size_t>(info.size_bytes), now_ms);
        info.max_timestamp = now_ms;
      }
    }
  }

  return WriteBatchesLocked(
      infos, batches.size(), now_ms, log_append_time,
      [&](Segment* segment, size_t i, int64_t now_ms) {
        const BatchInfo& info = infos[i];
        return segment->Append(
            std::string_view(batches.data() + info.position,
                             static_cast<size_t>(info.size_bytes)),
            info, now_ms);
      });
}

absl::StatusOr<PartitionLog::AppendResult> PartitionLog::WriteBatchesLocked(
    const std::vector<BatchInfo>& infos, size_t total_bytes, int64_t now_ms,
    bool log_append_time,
    absl::FunctionRef<FilePos(Segment*, size_t, int64_t)> append) {
  // Roll if needed, record new epochs, append. A writer that failed
  // (disk full, I/O error) stays failed: refuse instead of losing data.
  RUNNEL_RETURN_IF_ERROR(active()->writer_status());
  RUNNEL_RETURN_IF_ERROR(MaybeRollLocked(static_cast<int64_t>(total_bytes),
                                         infos.back().last_offset, now_ms));
  for (const BatchInfo& info : infos) {
    RUNNEL_RETURN_IF_ERROR(
        epochs_->Assign(info.leader_epoch, info.base_offset));
  }
  Segment* segment = active();
  AppendResult result;
  result.base_offset = infos.front().base_offset;
  result.last_offset = infos.back().last_offset;
  result.log_append_time_ms = log_append_time ? now_ms : -1;
  for (size_t i = 0; i < infos.size(); ++i) {
    FilePos position = append(segment, i, now_ms);
    if (i == 0) result.position = position;
    result.max_timestamp =
        std::max(result.max_timestamp, infos[i].max_timestamp);
  }
  // Appends are not left in the writer's buffer until it fills: every append
  // asks for a write at once. With no write in flight this submits one now;
  // while one is in flight, these bytes join the next write, which starts
  // when it completes (so back-to-back appends still coalesce). Readers do
  // not need it (unwritten bytes are served from the writer's tail cache);
  // it keeps acks=leader/none data from sitting only in process memory and
  // leaves a later WhenDurable nothing but the fdatasync. The callback has
  // nothing to do (errors are sticky in the writer and reach every later
  // Sync and Flush).
  segment->Flush([](absl::Status) {});
  log_end_offset_.store(result.last_offset + 1, std::memory_order_release);
  return result;
}

absl::Status PartitionLog::MaybeRollLocked(int64_t incoming_bytes,
                                           Offset last_offset, int64_t now_ms) {
  Segment* segment = active();
  if (segment->empty()) return absl::OkStatus();
  const bool full = segment->size() + incoming_bytes > config_.segment_bytes;
  const bool old = segment->rolling_base_ms() >= 0 &&
                   now_ms - segment->rolling_base_ms() > config_.segment_ms;
  const bool index_full = segment->IndexFull();
  const bool offset_overflow =
      last_offset - segment->base_offset() >
      static_cast<Offset>(std::numeric_limits<int32_t>::max());
  if (full || old || index_full || offset_overflow) return RollLocked();
  return absl::OkStatus();
}

absl::Status PartitionLog::RollLocked() {
  Segment* old = active();
  const Offset next = log_end_offset_.load(std::memory_order_relaxed);
  // Closing syncs the old segment: offsets in the new one can only become
  // durable after everything before them is.
  RUNNEL_RETURN_IF_ERROR(old->CloseWriter());
  MarkDurable(next, /*bump_generation=*/false);
  RUNNEL_ASSIGN_OR_RETURN(
      auto segment, Segment::Create(options_.dir, next,
                                    MakeSegmentOptions(options_, config_)));
  segments_[next] = std::move(segment);
  // The new file's name is durable only once the directory is.
  return FsyncDir(options_.dir);
}

absl::Status PartitionLog::Roll() {
  absl::MutexLock lock(&mu_);
  RUNNEL_RETURN_IF_ERROR(CheckOpenLocked());
  if (active()->empty()) return absl::OkStatus();
  return RollLocked();
}

void PartitionLog::WhenDurable(Offset offset,
                               std::function<void(absl::Status)> done) {
  {
    bool durable;
    {
      absl::MutexLock lock(&durable_->mu);
      durable = offset < durable_->durable_offset;
    }
    if (durable) {
      done(absl::OkStatus());
      return;
    }
  }
  absl::Status error;
  {
    absl::MutexLock lock(&mu_);
    error = CheckOpenLocked();
    const Offset log_end = log_end_offset_.load(std::memory_order_relaxed);
    if (error.ok() && offset >= log_end) {
      error = absl::OutOfRangeError(
          absl::StrCat(options_.dir, ": offset ", offset,
                       " is not below the log end ", log_end));
    }
    if (error.ok()) {
      uint64_t generation;
      {
        absl::MutexLock durable_lock(&durable_->mu);
        generation = durable_->generation;
        if (offset < durable_->durable_offset) generation = UINT64_MAX;
      }
      if (generation != UINT64_MAX) {
        // Everything appended so far (log_end) is covered by this sync.
        active()->Sync([state = durable_, generation, log_end,
                        done = std::move(done)](absl::Status status) {
          if (status.ok()) {
            absl::MutexLock durable_lock(&state->mu);
            if (state->generation == generation) {
              state->durable_offset = std::max(state->durable_offset, log_end);
            }
          }
          done(status);
        });
        return;
      }
    }
  }
  done(error);
}

std::future<absl::Status> PartitionLog::DurableFuture(Offset offset) {
  auto promise = std::make_shared<std::promise<absl::Status>>();
  std::future<absl::Status> future = promise->get_future();
  WhenDurable(offset,
              [promise](absl::Status status) { promise->set_value(status); });
  return future;
}

absl::Status PartitionLog::Flush() {
  Offset target;
  {
    absl::MutexLock lock(&mu_);
    RUNNEL_RETURN_IF_ERROR(CheckOpenLocked());
    target = log_end_offset_.load(std::memory_order_relaxed) - 1;
  }
  // An empty log (target below everything) is durable at once.
  return DurableFuture(target).get();
}

absl::Status PartitionLog::WaitWrittenLocked() {
  Segment* segment = active();
  if (segment->written_pos() >= segment->size()) return absl::OkStatus();
  auto promise = std::make_shared<std::promise<absl::Status>>();
  std::future<absl::Status> future = promise->get_future();
  segment->Flush(
      [promise](absl::Status status) { promise->set_value(status); });
  // Safe to wait with mu_ held: the I/O thread never takes mu_.
  return future.get();
}

absl::StatusOr<PartitionLog::ReadResult> PartitionLog::Read(
    Offset offset, size_t max_bytes, Offset max_offset,
    bool at_least_one_batch) {
  std::shared_ptr<Segment> segment;
  FilePos end = 0;
  ReadResult result;
  // The segment holding `offset`, or, when compaction removed the rest of
  // that one, the next segment with a batch. The first look checks the range
  // under the same lock, so a segment below `offset` exists.
  FilePos position = 0;
  bool first_look = true;
  for (Offset target = offset;;) {
    bool last;
    {
      absl::MutexLock lock(&mu_);
      RUNNEL_RETURN_IF_ERROR(CheckOpenLocked());
      if (first_look) {
        first_look = false;
        result.log_start_offset =
            log_start_offset_.load(std::memory_order_relaxed);
        result.log_end_offset = log_end_offset_.load(std::memory_order_relaxed);
        result.first_offset = offset;
        result.next_offset = offset;
        if (offset < result.log_start_offset ||
            offset > result.log_end_offset) {
          return absl::OutOfRangeError(absl::StrCat(
              options_.dir, ": offset ", offset, " is outside [",
              result.log_start_offset, ", ", result.log_end_offset, "]"));
        }
        if (offset == result.log_end_offset) return result;
      } else if (target < segments_.begin()->first) {
        // Retention deleted the segments in between since the last look.
        return absl::OutOfRangeError(
            absl::StrCat(options_.dir, ": offset ", offset,
                         " was deleted while it was read"));
      }
      auto it = std::prev(segments_.upper_bound(target));
      segment = it->second;
      last = std::next(it) == segments_.end();
      if (!last) target = std::next(it)->first;
      // A batch boundary: the appender publishes size() after a whole
      // batch. No flush and no wait here: bytes the writer has not written
      // yet are served from its tail cache (Segment::Read), so a tailing
      // read never stalls appends behind I/O.
      end = segment->size();
    }
    RUNNEL_ASSIGN_OR_RETURN(position, segment->FindBatch(offset, end));
    if (position < end) break;
    if (last) return result;
  }
  // One read of up to max_bytes, then keep the whole batches inside it; the
  // first batch is returned whole even when it is larger (Kafka), if asked.
  if (!at_least_one_batch && max_bytes < kBatchLogOverhead) return result;
  size_t want = static_cast<size_t>(std::min<FilePos>(
      at_least_one_batch ? std::max(max_bytes, kBatchHeaderSize) : max_bytes,
      end - position));
  RUNNEL_ASSIGN_OR_RETURN(std::string data, segment->Read(position, want));
  size_t used = 0;
  Offset first = kNoOffset;
  Offset last = kNoOffset;
  while (used + kBatchHeaderSize <= data.size()) {
    const char* p = data.data() + used;
    Offset base = static_cast<Offset>(LoadBe64(p + kBaseOffsetPos));
    size_t size = kBatchLogOverhead + LoadBe32(p + kBatchLengthPos);
    Offset batch_last =
        base + static_cast<int32_t>(LoadBe32(p + kLastOffsetDeltaPos));
    if (batch_last >= max_offset) break;
    if (used + size > data.size()) {
      if (used == 0 && at_least_one_batch) {
        RUNNEL_ASSIGN_OR_RETURN(data, segment->Read(position, size));
        if (data.size() < size) {
          return absl::DataLossError(absl::StrCat(
              segment->log_path(), ": batch cut at position ", position));
        }
        used = size;
        first = base;
        last = batch_last;
      }
      break;
    }
    if (first == kNoOffset) first = base;
    last = batch_last;
    used += size;
  }
  data.resize(used);
  result.bytes = std::move(data);
  if (used > 0) {
    result.first_offset = first;
    result.next_offset = last + 1;
  }
  return result;
}

absl::StatusOr<Offset> PartitionLog::OffsetForTimestamp(int64_t timestamp_ms) {
  RUNNEL_ASSIGN_OR_RETURN(RecordTimestamp found,
                          RecordForTimestamp(timestamp_ms));
  return found.offset;
}

absl::StatusOr<RecordTimestamp> PartitionLog::RecordForTimestamp(
    int64_t timestamp_ms) {
  std::vector<std::pair<std::shared_ptr<Segment>, FilePos>> snapshot;
  Offset start;
  {
    absl::MutexLock lock(&mu_);
    RUNNEL_RETURN_IF_ERROR(CheckOpenLocked());
    // No WaitWrittenLocked: segment reads serve unwritten bytes from the
    // writer's tail cache.
    start = log_start_offset_.load(std::memory_order_relaxed);
    for (const auto& [base, segment] : segments_) {
      if (segment->next_offset() <= start) continue;
      snapshot.emplace_back(segment, segment->size());
    }
  }
  for (const auto& [segment, end] : snapshot) {
    RUNNEL_ASSIGN_OR_RETURN(
        RecordTimestamp found,
        segment->FindRecordForTimestamp(timestamp_ms, start, end));
    if (found.offset != kNoOffset) return found;
  }
  return RecordTimestamp{};
}

absl::Status PartitionLog::TruncateTo(Offset offset) {
  absl::MutexLock lock(&mu_);
  RUNNEL_RETURN_IF_ERROR(CheckOpenLocked());
  if (offset >= log_end_offset_.load(std::memory_order_relaxed)) {
    return absl::OkStatus();
  }
  if (offset < log_start_offset_.load(std::memory_order_relaxed) ||
      offset < segments_.begin()->first) {
    return TruncateFullyAndStartAtLocked(offset);
  }
  ++truncations_;
  // Later segments go whole.
  auto target = std::prev(segments_.upper_bound(offset));
  // New records may land below the cleaner checkpoint: map them again.
  RUNNEL_RETURN_IF_ERROR(LowerDirtyStartLocked(target->first));
  while (std::next(target) != segments_.end()) {
    auto last = std::prev(segments_.end());
    RUNNEL_RETURN_IF_ERROR(last->second->CloseWriter());
    RUNNEL_RETURN_IF_ERROR(last->second->DeleteFiles());
    segments_.erase(last);
  }
  Segment* segment = target->second.get();
  if (segment->active()) RUNNEL_RETURN_IF_ERROR(WaitWrittenLocked());
  RUNNEL_ASSIGN_OR_RETURN(FilePos position,
                          segment->FindBatch(offset, segment->size()));
  // In a compacted segment `offset` may fall in a gap (before the next
  // batch, or after the last one): the log then ends at `offset` itself.
  Offset new_end = std::min(segment->next_offset(), offset);
  if (position < segment->size()) {
    // The batch holding `offset` goes whole: batches are never split.
    RUNNEL_RETURN_IF_ERROR(segment->ReadBatchInfos(
        position, segment->size(), [&](const BatchInfo& b) {
          new_end = std::min(b.base_offset, offset);
          return false;
        }));
  }
  RUNNEL_RETURN_IF_ERROR(segment->TruncateTo(position, new_end));
  RUNNEL_RETURN_IF_ERROR(segment->Activate());
  RUNNEL_RETURN_IF_ERROR(FsyncDir(options_.dir));
  log_end_offset_.store(new_end, std::memory_order_release);
  RUNNEL_RETURN_IF_ERROR(epochs_->TruncateFromEnd(new_end));
  if (new_end < log_start_offset_.load(std::memory_order_relaxed)) {
    RUNNEL_RETURN_IF_ERROR(SetLogStartLocked(new_end));
  }
  // Every segment is closed (synced) or was just truncated and synced.
  MarkDurable(new_end, /*bump_generation=*/true);
  return absl::OkStatus();
}

absl::Status PartitionLog::TruncateFullyAndStartAtLocked(Offset offset) {
  ++truncations_;
  RUNNEL_RETURN_IF_ERROR(LowerDirtyStartLocked(offset));
  for (auto& [base, segment] : segments_) {
    RUNNEL_RETURN_IF_ERROR(segment->CloseWriter());
    RUNNEL_RETURN_IF_ERROR(segment->DeleteFiles());
  }
  segments_.clear();
  RUNNEL_ASSIGN_OR_RETURN(
      auto segment, Segment::Create(options_.dir, offset,
                                    MakeSegmentOptions(options_, config_)));
  segments_[offset] = std::move(segment);
  RUNNEL_RETURN_IF_ERROR(FsyncDir(options_.dir));
  log_end_offset_.store(offset, std::memory_order_release);
  RUNNEL_RETURN_IF_ERROR(epochs_->Clear());
  RUNNEL_RETURN_IF_ERROR(SetLogStartLocked(offset));
  MarkDurable(offset, /*bump_generation=*/true);
  return absl::OkStatus();
}

absl::Status PartitionLog::SetLogStartLocked(Offset offset) {
  RUNNEL_RETURN_IF_ERROR(
      CheckpointFile(options_.dir + "/" + kLogStartOffsetFile)
          .Write({{options_.topic, options_.partition, offset}}));
  log_start_offset_.store(offset, std::memory_order_release);
  return absl::OkStatus();
}

absl::Status PartitionLog::DeleteOldestSegmentLocked() {
  RUNNEL_CHECK(segments_.size() > 1);
  return DeleteSegmentLocked(segments_.begin());
}

absl::Status PartitionLog::DeleteSegmentLocked(SegmentMap::iterator it) {
  RUNNEL_CHECK(std::next(it) != segments_.end());
  if (options_.reaper == nullptr) {
    RUNNEL_RETURN_IF_ERROR(it->second->DeleteFiles());
  } else {
    // Renamed now (cheap, under the lock), shrunk and unlinked later by the
    // reaper, once no reader holds the segment (FileReaper).
    RUNNEL_ASSIGN_OR_RETURN(std::vector<std::string> doomed,
                            it->second->RenameForDeletion());
    const std::weak_ptr<const void> holder = it->second;
    for (std::string& path : doomed) {
      options_.reaper->Add(std::move(path), holder);
    }
  }
  segments_.erase(it);
  return absl::OkStatus();
}

absl::Status PartitionLog::DeleteRecordsBefore(Offset offset) {
  absl::MutexLock lock(&mu_);
  RUNNEL_RETURN_IF_ERROR(CheckOpenLocked());
  const Offset log_end = log_end_offset_.load(std::memory_order_relaxed);
  if (offset > log_end) {
    return absl::OutOfRangeError(
        absl::StrCat(options_.dir, ": cannot delete records before ", offset,
                     ", past the log end ", log_end));
  }
  if (offset <= log_start_offset_.load(std::memory_order_relaxed)) {
    return absl::OkStatus();
  }
  // Persist the new start first: after a crash the deleted segments must
  // not come back as readable.
  RUNNEL_RETURN_IF_ERROR(SetLogStartLocked(offset));
  RUNNEL_RETURN_IF_ERROR(epochs_->TruncateFromStart(offset));
  bool deleted = false;
  while (segments_.size() > 1 &&
         std::next(segments_.begin())->first <= offset) {
    RUNNEL_RETURN_IF_ERROR(DeleteOldestSegmentLocked());
    deleted = true;
  }
  return deleted ? FsyncDir(options_.dir) : absl::OkStatus();
}

absl::StatusOr<int> PartitionLog::ApplyRetention() {
  absl::MutexLock lock(&mu_);
  RUNNEL_RETURN_IF_ERROR(CheckOpenLocked());
  if (!config_.delete_enabled()) return 0;
  const int64_t now_ms = options_.clock->NowMs();
  int deleted = 0;
  // By age (Kafka: the segment's largest timestamp), oldest first, stopping
  // at the first segment that is young enough.
  if (config_.retention_ms >= 0) {
    while (segments_.size() > 1 &&
           now_ms - segments_.begin()->second->max_timestamp() >
               config_.retention_ms) {
      RUNNEL_RETURN_IF_ERROR(DeleteOldestSegmentLocked());
      ++deleted;
    }
  }
  // By size: drop the oldest while what remains is still >= the limit.
  if (config_.retention_bytes >= 0) {
    int64_t total = 0;
    for (const auto& [base, segment] : segments_) total += segment->size();
    while (segments_.size() > 1 && total - segments_.begin()->second->size() >=
                                       config_.retention_bytes) {
      total -= segments_.begin()->second->size();
      RUNNEL_RETURN_IF_ERROR(DeleteOldestSegmentLocked());
      ++deleted;
    }
  }
  if (deleted > 0) {
    RUNNEL_RETURN_IF_ERROR(FsyncDir(options_.dir));
    Offset first = segments_.begin()->first;
    if (first > log_start_offset_.load(std::memory_order_relaxed)) {
      RUNNEL_RETURN_IF_ERROR(SetLogStartLocked(first));
      RUNNEL_RETURN_IF_ERROR(epochs_->TruncateFromStart(first));
    }
  }
  return deleted;
}

// ---- compaction -------------------------------------------------------------

struct PartitionLog::CleanedSegment {
  bool empty = false;  // no batch left
  int64_t records_removed = 0;
  int64_t bytes_before = 0;
  int64_t bytes_after = 0;
};

namespace {

// What a compaction pass learnt from the segments it mapped
// (docs/log-format.md, "Compaction").
struct CleanerMap {
  // Every key's latest offset.
  absl::flat_hash_map<std::string, Offset> latest;
  size_t bytes = 0;  // as counted against compaction_map_bytes

  absl::Status Add(const RecordBatchView& batch, std::string& decompressed) {
    // Control batches (transaction markers) are never cleaned: their keys
    // are not the topic's.
    if (batch.is_control()) return absl::OkStatus();
    return batch.ForEachRecordView(
        [&](const RecordView& r) {
          if (!r.key.has_value()) return absl::OkStatus();
          auto [slot, added] = latest.try_emplace(
              absl::string_view(r.key->data(), r.key->size()), r.offset);
          if (added) {
            bytes += r.key->size() + kEntryOverhead;
          } else {
            slot->second = r.offset;
          }
          return absl::OkStatus();
        },
        &decompressed, BatchSource::kDisk);
  }

  static constexpr size_t kEntryOverhead = 64;
};

}  // namespace

absl::StatusOr<PartitionLog::CompactionResult> PartitionLog::Compact(
    const std::function<bool()>& stop) {
  auto stopped = [&stop]() -> absl::Status {
    if (stop && stop()) return absl::CancelledError("compaction stopped");
    return absl::OkStatus();
  };
  absl::MutexLock cleaner(&cleaner_mu_);
  struct Candidate {
    std::shared_ptr<Segment> segment;
    FilePos end = 0;
  };
  std::vector<Candidate> candidates;
  LogConfig config;
  int64_t now_ms = 0;
  uint64_t truncations = 0;
  Offset dirty_start = 0;
  Offset after_candidates = 0;  // base of the segment after the last one
  {
    absl::MutexLock lock(&mu_);
    RUNNEL_RETURN_IF_ERROR(CheckOpenLocked());
    config = config_;
    if (!config.compact()) return CompactionResult{};
    now_ms = options_.clock->NowMs();
    truncations = truncations_;
    dirty_start = dirty_start_;
    // Closed segments only (never the active one), oldest first, up to the
    // first one with a record younger than min.compaction.lag.ms. With no
    // lag (the default) timestamps play no part, as in Kafka: a record
    // stamped in the future by a skewed client clock holds nothing back.
    auto it = segments_.begin();
    for (; std::next(it) != segments_.end(); ++it) {
      const Segment& segment = *it->second;
      if (config.min_compaction_lag_ms > 0 &&
          segment.max_timestamp() > now_ms - config.min_compaction_lag_ms) {
        break;
      }
      candidates.push_back({it->second, segment.size()});
    }
    after_candidates = it->first;
  }

  // Like Kafka's cleaner: the map covers the dirty segments (from the
  // cleaner checkpoint on), whole segments until it reaches
  // compaction_map_bytes (at least one); the pass then cleans every segment
  // from the first to the last mapped one. Segments below the checkpoint
  // already hold at most one record per key, so a key the map does not
  // know stays.
  size_t first_dirty = 0;
  while (first_dirty < candidates.size() &&
         candidates[first_dirty].segment->base_offset() < dirty_start) {
    ++first_dirty;
  }
  // Nothing new to map and no tombstone that could expire: a pass could not
  // change anything, so it reads nothing. With new data, it waits until
  // that is min.cleanable.dirty.ratio of the closed segments (Kafka's
  // cleaner picks logs the same way).
  if (first_dirty == candidates.size()) {
    if (!may_hold_tombstones_) return CompactionResult{};
  } else {
    double total = 0, dirty = 0;
    for (size_t i = 0; i < candidates.size(); ++i) {
      total += static_cast<double>(candidates[i].end);
      if (i >= first_dirty) dirty += static_cast<double>(candidates[i].end);
    }
    if (dirty < config.min_cleanable_dirty_ratio * total) {
      return CompactionResult{};
    }
  }
  CleanerMap map;
  size_t cleaned_count = first_dirty;  // candidates [0, cleaned_count)
  {
    std::string decompressed;
    for (size_t i = first_dirty; i < candidates.size(); ++i) {
      if (i > first_dirty && map.bytes >= options_.compaction_map_bytes) break;
      RUNNEL_RETURN_IF_ERROR(stopped());
      const Candidate& c = candidates[i];
      absl::Status s = ForEachStoredBatch(
          *c.segment, c.end, [&](const RecordBatchView& batch, FilePos) {
            return map.Add(batch, decompressed);
          });
      if (!s.ok()) return ClosedOr(s);
      ++cleaned_count;
    }
  }
  const Offset clean_end =
      cleaned_count < candidates.size()
          ? candidates[cleaned_count].segment->base_offset()
          : after_candidates;

  CompactionResult result;
  bool tombstone_kept = false;
  for (size_t i = 0; i < cleaned_count; ++i) {
    RUNNEL_RETURN_IF_ERROR(stopped());
    const Candidate& c = candidates[i];
    const bool drop_tombstones =
        c.segment->max_timestamp() < now_ms - config.delete_retention_ms;
    auto keep = [&](const RecordView& r) {
      // Kafka's cleaner drops records without a key, and every record but
      // the latest of its key; the latest is a tombstone for a while.
      if (!r.key.has_value()) return false;
      auto found =
          map.latest.find(absl::string_view(r.key->data(), r.key->size()));
      if (found != map.latest.end() && found->second != r.offset) return false;
      if (r.value.has_value()) return true;
      if (drop_tombstones) return false;
      tombstone_kept = true;
      return true;
    };
    // Nothing else is kept for its own sake: a stale record kept would
    // outlive the tombstone that deletes its key. The log end offset does
    // not need its last batch: the active segment's name carries it.
    auto filter = [&](const RecordBatchView& batch,
                      FilePos) -> absl::StatusOr<FilteredBatch> {
      if (batch.is_control()) return FilteredBatch{};
      return FilterBatch(batch, keep);
    };
    CleanedSegment cleaned;
    absl::StatusOr<bool> changed =
        CleanSegment(c.segment, c.end, config, filter, &cleaned);
    if (!changed.ok()) return ClosedOr(changed.status());
    if (!*changed) continue;
    absl::MutexLock lock(&mu_);
    RUNNEL_RETURN_IF_ERROR(InstallCleanedLocked(
        c.segment->base_offset(), c.segment, truncations, cleaned, &result));
  }
  // Every record of segments [0, cleaned_count) went through keep; the
  // others are dirty and make the next pass run anyway.
  may_hold_tombstones_ = tombstone_kept;
  // The next pass maps from where this one's map ended.
  absl::MutexLock lock(&mu_);
  if (!closed_ && truncations == truncations_) {
    RUNNEL_RETURN_IF_ERROR(RaiseCleanerCheckpointLocked(clean_end));
    dirty_start_ = std::max(dirty_start_, clean_end);
    if (remap_pending_ && dirty_start_ >= cleaned_end_) {
      RUNNEL_RETURN_IF_ERROR(SetCleanerRemapLocked(false));
    }
  }
  return result;
}

absl::Status PartitionLog::LowerDirtyStartLocked(Offset offset) {
  if (offset >= dirty_start_) return absl::OkStatus();
  dirty_start_ = offset;
  if (dirty_start_ < cleaned_end_ && !remap_pending_) {
    return SetCleanerRemapLocked(true);
  }
  return absl::OkStatus();
}

absl::Status PartitionLog::SetCleanerRemapLocked(bool on) {
  const std::string path = options_.dir + "/" + kCleanerRemapFile;
  if (on) {
    UniqueFd fd(
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd.valid()) return ErrnoStatus("create", path);
  } else if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus("unlink", path);
  }
  RUNNEL_RETURN_IF_ERROR(FsyncDir(options_.dir));
  remap_pending_ = on;
  return absl::OkStatus();
}

absl::Status PartitionLog::RaiseCleanerCheckpointLocked(Offset offset) {
  if (offset <= cleaned_end_) return absl::OkStatus();
  RUNNEL_RETURN_IF_ERROR(
      CheckpointFile(options_.dir + "/" + kCleanerCheckpointFile)
          .Write({{options_.topic, options_.partition, offset}}));
  cleaned_end_ = offset;
  return absl::OkStatus();
}

absl::Status PartitionLog::ClosedOr(absl::Status status) {
  absl::MutexLock lock(&mu_);
  // Closed or deleted under the pass: its files may be gone.
  if (closed_) return CheckOpenLocked();
  return status;
}

absl::StatusOr<bool> PartitionLog::CleanSegment(
    const std::shared_ptr<Segment>& segment, FilePos end,
    const LogConfig& config, BatchFilter filter, CleanedSegment* out) {
  // First only look: most passes find most segments clean already.
  bool dirty = false;
  absl::Status scan = ForEachStoredBatch(
      *segment, end, [&](const RecordBatchView& batch, FilePos position) {
        RUNNEL_ASSIGN_OR_RETURN(FilteredBatch filtered,
                                filter(batch, position));
        if (filtered.kind == FilteredBatch::Kind::kUnchanged) {
          return absl::OkStatus();
        }
        dirty = true;
        return absl::CancelledError("dirty");  // stops the scan
      });
  if (!dirty) {
    RUNNEL_RETURN_IF_ERROR(scan);
    return false;
  }

  const std::string cleaning = options_.dir + "/" + kCleaningDir;
  std::error_code ec;
  std::filesystem::remove_all(cleaning, ec);
  if (!ec) std::filesystem::create_directory(cleaning, ec);
  if (ec)
    return absl::InternalError(absl::StrCat(cleaning, ": ", ec.message()));
  const Offset base = segment->base_offset();
  const std::string path = SegmentFilePath(cleaning, base, kLogFileSuffix);
  {
    UniqueFd fd(
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd.valid()) return ErrnoStatus("open", path);
    std::string chunk;
    RUNNEL_RETURN_IF_ERROR(ForEachStoredBatch(
        *segment, end, [&](const RecordBatchView& batch, FilePos position) {
          out->bytes_before += static_cast<int64_t>(batch.size_bytes());
          RUNNEL_ASSIGN_OR_RETURN(FilteredBatch filtered,
                                  filter(batch, position));
          out->records_removed += filtered.removed;
          if (filtered.kind == FilteredBatch::Kind::kUnchanged) {
            chunk.append(batch.bytes());
          } else if (filtered.kind == FilteredBatch::Kind::kRewritten) {
            chunk.append(filtered.bytes);
          }
          if (chunk.size() >= kCleanerWriteChunk) {
            out->bytes_after += static_cast<int64_t>(chunk.size());
            RUNNEL_RETURN_IF_ERROR(WriteAll(fd.get(), chunk, path));
            chunk.clear();
          }
          return absl::OkStatus();
        }));
    out->bytes_after += static_cast<int64_t>(chunk.size());
    RUNNEL_RETURN_IF_ERROR(WriteAll(fd.get(), chunk, path));
    if (::fdatasync(fd.get()) != 0) return ErrnoStatus("fdatasync", path);
  }
  out->empty = out->bytes_after == 0;
  // The copy's indexes, built the way recovery builds them; this also
  // checks every batch of the copy. They are synced too: a segment below
  // the recovery point is opened with its indexes as they are.
  {
    RUNNEL_ASSIGN_OR_RETURN(
        auto copy, Segment::OpenClosed(cleaning, base,
                                       MakeSegmentOptions(options_, config)));
    RUNNEL_ASSIGN_OR_RETURN(
        SegmentRecovery check,
        copy->Recover(kMaxStoredBatchBytes, -1, nullptr, /*offset_gaps=*/true));
    if (!check.problem.ok() || check.truncated) {
      return absl::InternalError(absl::StrCat(
          path, ": the cleaned copy does not verify: ",
          check.problem.ok() ? "cut at " : check.problem.message(),
          check.problem.ok() ? absl::StrCat(check.valid_bytes) : ""));
    }
    RUNNEL_RETURN_IF_ERROR(copy->offset_index().Sync());
    RUNNEL_RETURN_IF_ERROR(copy->time_index().Sync());
  }
  RUNNEL_RETURN_IF_ERROR(FsyncDir(cleaning));
  return true;
}

absl::Status PartitionLog::InstallCleanedLocked(
    Offset base, const std::shared_ptr<Segment>& old, uint64_t truncations,
    const CleanedSegment& cleaned, CompactionResult* result) {
  const std::string& dir = options_.dir;
  const std::string cleaning = dir + "/" + kCleaningDir;
  auto drop_copy = [&cleaning] {
    std::error_code ec;
    std::filesystem::remove_all(cleaning, ec);  // also removed at open
  };
  auto it = segments_.find(base);
  if (closed_ || truncations != truncations_ || it == segments_.end() ||
      it->second != old || std::next(it) == segments_.end()) {
    // Deleted, truncated or closed meanwhile: the copy is stale.
    drop_copy();
    return absl::OkStatus();
  }
  const Offset next_base = std::next(it)->first;
  // Recovery must accept this segment's gaps before they can exist.
  RUNNEL_RETURN_IF_ERROR(RaiseCleanerCheckpointLocked(next_base));
  result->records_removed += cleaned.records_removed;
  result->bytes_before += cleaned.bytes_before;
  result->bytes_after += cleaned.bytes_after;
  if (cleaned.empty && it != segments_.begin()) {
    // The previous segment (below cleaned_end_ too) spans the gap. The
    // first segment is replaced by an empty one instead: its base offset
    // keeps the log start where it is, also after a restart. The copy goes
    // last: while it exists, a restart maps from the start again.
    std::prev(it)->second->set_next_offset(next_base);
    RUNNEL_RETURN_IF_ERROR(DeleteSegmentLocked(it));
    RUNNEL_RETURN_IF_ERROR(FsyncDir(dir));
    drop_copy();
    ++result->segments_removed;
    return absl::OkStatus();
  }
  // The commit point: once the swap directory exists, the copy replaces the
  // segment, now or at the next open.
  const std::string swap = dir + "/" + kSwapDir;
  if (::rename(cleaning.c_str(), swap.c_str()) != 0) {
    return ErrnoStatus("rename", cleaning);
  }
  RUNNEL_RETURN_IF_ERROR(FsyncDir(dir));
  // The old segment keeps serving the reads that picked it through its open
  // descriptors and mappings of the replaced files.
  RUNNEL_RETURN_IF_ERROR(MoveSwappedFiles(dir));
  RUNNEL_ASSIGN_OR_RETURN(
      auto fresh,
      Segment::OpenClosed(dir, base, MakeSegmentOptions(options_, config_)));
  fresh->set_next_offset(old->next_offset());
  it->second = std::move(fresh);
  ++result->segments_rewritten;
  return absl::OkStatus();
}

void PartitionLog::SetConfig(const LogConfig& config) {
  absl::MutexLock lock(&mu_);
  config_ = config;
}

LogConfig PartitionLog::config() const {
  absl::MutexLock lock(&mu_);
  return config_;
}

absl::StatusOr<Offset> PartitionLog::EndOffsetForEpoch(int32_t epoch) {
  EpochEndOffset answer = EndOffsetAndEpochFor(epoch);
  if (answer.end_offset == kNoOffset) {
    return absl::NotFoundError(
        absl::StrCat(options_.dir, ": leader epoch ", epoch, " is unknown"));
  }
  return answer.end_offset;
}

EpochEndOffset PartitionLog::EndOffsetAndEpochFor(int32_t epoch) {
  absl::MutexLock lock(&mu_);
  if (epochs_ == nullptr) return {};
  return epochs_->EndOffsetFor(epoch,
                               log_end_offset_.load(std::memory_order_relaxed));
}

int32_t PartitionLog::latest_epoch() const {
  absl::MutexLock lock(&mu_);
  return epochs_ == nullptr ? -1 : epochs_->latest_epoch();
}

Offset PartitionLog::log_start_offset() const {
  return log_start_offset_.load(std::memory_order_acquire);
}

Offset PartitionLog::log_end_offset() const {
  return log_end_offset_.load(std::memory_order_acquire);
}

Offset PartitionLog::durable_offset() const {
  absl::MutexLock lock(&durable_->mu);
  return std::min(durable_->durable_offset, log_end_offset());
}

int64_t PartitionLog::size_bytes() const {
  absl::MutexLock lock(&mu_);
  int64_t total = 0;
  for (const auto& [base, segment] : segments_) total += segment->size();
  return total;
}

int PartitionLog::segment_count() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(segments_.size());
}

std::vector<Offset> PartitionLog::segment_base_offsets() const {
  absl::MutexLock lock(&mu_);
  std::vector<Offset> bases;
  for (const auto& [base, segment] : segments_) bases.push_back(base);
  return bases;
}

absl::Status PartitionLog::Close() {
  absl::MutexLock lock(&mu_);
  if (closed_) return close_status_;
  closed_ = true;
  for (auto& [base, segment] : segments_) {
    absl::Status status = segment->CloseWriter();
    if (close_status_.ok()) close_status_ = status;
  }
  if (close_status_.ok()) {
    MarkDurable(log_end_offset_.load(std::memory_order_relaxed), false);
  }
  segments_.clear();
  return close_status_;
}

absl::Status PartitionLog::DeleteFiles() {
  // Closing flushes pointlessly, but leaves no writer racing the removal.
  Close().IgnoreError();  // the files are removed anyway
  std::error_code ec;
  std::filesystem::remove_all(options_.dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat(options_.dir, ": remove: ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace runnel::log
