#pragma once

// The commit log of one partition: an ordered list of segments in
// <data-dir>/<topic>-<partition>/, with offset assignment, reads by offset
// and by time, durability notification, roll, retention, truncation and
// crash recovery. On-disk layout: docs/log-format.md.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

#include "common/clock.h"
#include "log/file_reaper.h"
#include "log/leader_epoch_cache.h"
#include "log/log_config.h"
#include "log/record_batch.h"
#include "log/record_bytes.h"
#include "log/types.h"

namespace runnel::log {

// The partition's cleaner checkpoint (docs/log-format.md,
// "cleaner-offset-checkpoint"): segments below its offset may hold
// compacted batches with offset gaps.
inline constexpr char kCleanerCheckpointFile[] = "cleaner-offset-checkpoint";

class IoThread;
class Segment;
struct BatchInfo;

// How much of a leader append's validation the log does itself.
enum class BatchValidation {
  // Every batch goes through ValidateBatch (kWire, max_message_bytes).
  kFull,
  // The caller already ran ValidateBatch (kWire) or an equivalent on exactly
  // these bytes (the broker does, to type its errors): the log only frames
  // the batches and checks max_message_bytes, so the CRC and the records are
  // not checked twice.
  kCallerValidated,
};

struct PartitionLogOptions {
  std::string dir;        // the partition directory; created if missing
  std::string topic;      // non-empty, no whitespace
  int32_t partition = 0;  // >= 0
  LogConfig config;
  IoThread* io = nullptr;                 // must outlive the log
  Clock* clock = SystemClock::Default();  // must outlive the log
  // Everything below this offset was durable at the last recovery-point
  // checkpoint. Without clean_shutdown, recovery validates every batch from
  // the segment that holds it onwards.
  Offset recovery_point = 0;
  // true: the previous process shut down cleanly; the files are trusted and
  // only the active segment's tail and the index sizes are sanity-checked.
  // false: scan and validate (see Open).
  bool clean_shutdown = false;
  // Read path (see SegmentOptions): the active segment's in-memory tail
  // cache beyond its two append buffers, and whether file reads pread on the
  // caller's thread (default) instead of going through the I/O thread.
  size_t tail_cache_bytes = size_t{4} << 20;
  bool pread_on_caller = true;
  // Deletes the segments retention removes, paced and after their last
  // reader (must outlive the log); null: they are unlinked at once.
  FileReaper* reaper = nullptr;
  // Compaction's key map (Kafka's log.cleaner.dedupe.buffer.size): a pass
  // maps the keys of as many closed segments as fit and cleans those; the
  // rest wait for the next pass. Counted as key bytes + 64 per key.
  size_t compaction_map_bytes = size_t{128} << 20;
};

// Thread-safe: every method may be called from any thread. One mutex
// serializes appends, truncation, roll and retention; reads take it only to
// pick the segment and the readable end (the end of the last whole appended
// batch), then read without it (a segment is shared with readers, so
// retention may delete it while a read is running). Reads never force a
// flush or wait for a write: bytes of the active segment that are not
// written yet (or were written recently) come from its writer's in-memory
// tail cache, older ones from the file.
// WhenDurable callbacks run on the I/O thread or the calling thread and must
// not block; they may call the getters but no other method (a roll holds
// the log's mutex while it waits for the I/O thread). Likewise nothing but
// the getters may be called on the I/O thread.
class PartitionLog {
 public:
  PartitionLog(const PartitionLog&) = delete;
  PartitionLog& operator=(const PartitionLog&) = delete;
  PartitionLog(PartitionLog&&) = delete;
  PartitionLog& operator=(PartitionLog&&) = delete;
  // Releases memory and descriptors; does not flush. Call Close() first for
  // a clean shutdown.
  ~PartitionLog();

  // Opens (creating the directory and a first empty segment if needed) and
  // recovers the partition in options.dir.
  // Recovery without clean_shutdown: every batch from the segment holding
  // recovery_point to the end is validated (framing, CRC, ValidateBatch
  // kDisk, offsets continuous, leader epochs non-decreasing) and the indexes
  // of those segments are rebuilt. The log is truncated at the first torn or
  // corrupt batch and every later segment is deleted. A corrupt batch that is
  // not at the tail of the last segment is data loss: it is also reported in
  // recovery_problems() (path and position) and nothing at or after it is
  // ever served. Zero bytes after the last batch (O_DIRECT padding) are a
  // torn tail and dropped silently.
  // With clean_shutdown: trusts the files; checks the active segment's tail
  // (a torn tail is still truncated) and the index file sizes.
  // Errors: kInvalidArgument for bad options or config; I/O errors.
  static absl::StatusOr<std::unique_ptr<PartitionLog>> Open(
      PartitionLogOptions options);

  struct AppendResult {
    Offset base_offset = kNoOffset;   // first offset written
    Offset last_offset = kNoOffset;   // last offset written
    int64_t log_append_time_ms = -1;  // -1 unless LogAppendTime
    int64_t max_timestamp = -1;       // largest batch max timestamp written
    FilePos position = 0;  // .log position of the first batch written
  };

  // Leader path. `batches`: one or more concatenated batches from a
  // producer. Every batch is validated (ValidateBatch, kWire,
  // max_batch_bytes = max_message_bytes) BEFORE anything is written: one bad
  // batch -> kInvalidArgument, nothing written. Assigns consecutive offsets
  // from log_end_offset(), stamps `leader_epoch` (recorded in the
  // leader-epoch cache when new; an epoch lower than the latest cached one
  // is kAborted: a fenced, stale leader), stamps LogAppendTime if configured,
  // rolls the segment when needed (segment_bytes, segment_ms, a full index,
  // relative offset overflow) and appends. The records are readable (Read) when
  // this returns; durability is separate (WhenDurable / Flush).
  // kCallerValidated: see BatchValidation; framing and size errors are still
  // kInvalidArgument with nothing written.
  // Batches in pieces (RecordBytes) are copied from the pieces into the
  // segment without being joined first, when the caller validated them and
  // the topic keeps CreateTime; otherwise they are joined.
  absl::StatusOr<AppendResult> Append(
      RecordBytes batches, int32_t leader_epoch,
      BatchValidation validation = BatchValidation::kFull);

  // Follower path: the batches already carry offsets and leader epochs from
  // the leader and are stored byte for byte. kInvalidArgument if the first
  // batch's base offset != log_end_offset(), if batches are not contiguous,
  // if a batch's epoch is below the latest cached epoch, or if a batch fails
  // validation; nothing is written then. New epochs go to the epoch cache.
  // (The leader path answers a stale epoch with kAborted, see Append.)
  absl::StatusOr<AppendResult> AppendReplicated(std::string batches);

  // Calls `done(status)` once every record with offset <= `offset` is
  // durable (fdatasync), at once (on the calling thread) if it already is.
  // Otherwise runs on the I/O thread. Must not block. Concurrent waiters
  // share fsyncs (group commit). An offset beyond log_end_offset() - 1 is
  // kOutOfRange at once. A roll syncs the old segment before any offset of
  // the new one counts as durable. After Close: kFailedPrecondition.
  void WhenDurable(Offset offset, std::function<void(absl::Status)> done);
  // The same as a future.
  std::future<absl::Status> DurableFuture(Offset offset);
  // Blocks until everything appended before the call is durable.
  absl::Status Flush();

  struct ReadResult {
    std::string bytes;                // whole batches, as stored
    Offset first_offset = kNoOffset;  // base offset of the first batch, or
                                      // the requested offset if empty
    Offset next_offset = kNoOffset;   // last offset returned + 1 (or the
                                      // requested offset if empty)
    Offset log_start_offset = 0;
    Offset log_end_offset = 0;
  };
  // Returns whole batches starting with the batch that contains `offset`
  // (its first offset may be below `offset`: Kafka semantics), up to
  // `max_bytes` in total but, with `at_least_one_batch`, always at least one
  // whole batch if one exists below max_offset (without it: nothing when
  // the first batch is larger than max_bytes). Stops before a batch whose
  // last offset >= max_offset (exclusive; pass the high watermark): batches
  // are never split.
  // May stop at a segment boundary with fewer bytes (call again with
  // next_offset). kOutOfRange if offset < log_start_offset() or offset >
  // log_end_offset(). offset == log_end_offset(): OK with empty bytes.
  // Returns only completely written, appended batches.
  absl::StatusOr<ReadResult> Read(Offset offset, size_t max_bytes,
                                  Offset max_offset = INT64_MAX,
                                  bool at_least_one_batch = true);

  // Kafka ListOffsets by timestamp: the first offset whose record timestamp
  // >= timestamp_ms (found by batch max timestamp via the time index, then
  // the records of that batch), at or after log_start_offset(); kNoOffset if
  // there is none.
  absl::StatusOr<Offset> OffsetForTimestamp(int64_t timestamp_ms);
  // The same lookup, also giving the found record's timestamp (what Kafka's
  // ListOffsets returns); {kNoOffset, kNoTimestamp} if there is none.
  absl::StatusOr<RecordTimestamp> RecordForTimestamp(int64_t timestamp_ms);

  // Drops every offset >= `offset` (follower divergence). A batch that
  // contains `offset` but starts below it is dropped whole, so the new log
  // end may be below `offset`. Truncates .log and the indexes, deletes later
  // segments, truncates the epoch cache; durable when it returns. `offset`
  // >= log_end_offset() is a no-op. `offset` < log_start_offset() empties
  // the log and restarts it at `offset` (Kafka truncateFullyAndStartAt).
  absl::Status TruncateTo(Offset offset);

  // Advances the log start offset to `offset` (Kafka DeleteRecords) and
  // deletes every segment entirely below it. Persisted in the
  // "log-start-offset" checkpoint file before it returns. kOutOfRange if
  // offset > log_end_offset(); a value <= log_start_offset() is a no-op.
  absl::Status DeleteRecordsBefore(Offset offset);

  // Closes the active segment (trims its indexes) and starts a new empty
  // one at log_end_offset(). No-op if the active segment is empty.
  absl::Status Roll();

  // One retention pass: deletes whole non-active segments whose largest
  // timestamp is older than retention_ms (now - largest > retention_ms), and
  // then the oldest ones while the total size minus that segment stays >=
  // retention_bytes. Advances log_start_offset. Nothing for
  // cleanup_policy "compact". Returns the number of segments deleted.
  absl::StatusOr<int> ApplyRetention();

  struct CompactionResult {
    int segments_rewritten = 0;  // segments replaced by a cleaned copy
    int segments_removed = 0;    // segments left without any record
    int64_t records_removed = 0;
    int64_t bytes_before = 0;  // .log bytes of those segments before
    int64_t bytes_after = 0;   // and after the pass
  };
  // One compaction pass (Kafka's log cleaner) for a cleanup_policy with
  // "compact"; nothing otherwise. Over the closed segments (never the
  // active one), oldest first, up to the first whose largest timestamp is
  // younger than min_compaction_lag_ms: maps each key to its latest offset
  // (whole segments until the map reaches compaction_map_bytes, at least
  // one), then rewrites every mapped segment that holds a record which is
  // not the latest of its key, a record without a key, or a tombstone (null
  // value) whose segment's largest timestamp is older than
  // delete_retention_ms; control batches are left as they are. Offsets never
  // change: the kept records keep theirs, batches keep their base and last
  // offsets (FilterBatch), and the log's start and end offsets stay. A
  // segment left without records is deleted, except the first one, which
  // is replaced by an empty segment. Each rewritten segment replaces the old
  // one atomically, also across a crash (docs/log-format.md,
  // "Compaction"); reads and appends go on meanwhile (a read that picked
  // the old segment finishes on it); a truncation meanwhile makes the pass
  // drop its copies. One pass at a time per log. kFailedPrecondition if the
  // log is closed; kDataLoss for a bad stored batch; kInternal for I/O.
  // `stop` (may be null) is asked before each segment is mapped or cleaned:
  // true ends the pass there with kCancelled (the segments it replaced so
  // far stay replaced; the next pass maps again from where this one began).
  absl::StatusOr<CompactionResult> Compact(
      const std::function<bool()>& stop = nullptr);

  // Alters the topic config at runtime (takes effect on the next append or
  // retention pass). An invalid config is ignored (RUNNEL_CHECK in debug is
  // not used: the caller validates with LogConfig::Validate()).
  void SetConfig(const LogConfig& config);
  LogConfig config() const;

  // KIP-101 OffsetsForLeaderEpoch: the start offset of the smallest epoch
  // greater than `epoch`, or log_end_offset() if `epoch` is the latest.
  // kNotFound where Kafka answers UNDEFINED_EPOCH_OFFSET (epoch newer than
  // every cached one, or an empty cache).
  absl::StatusOr<Offset> EndOffsetForEpoch(int32_t epoch);
  // The same with the epoch Kafka returns beside it (the largest cached
  // epoch <= `epoch`); {-1, -1} for UNDEFINED.
  EpochEndOffset EndOffsetAndEpochFor(int32_t epoch);
  // The latest leader epoch in the cache, or -1 if none.
  int32_t latest_epoch() const;

  Offset log_start_offset() const;
  // The next offset to be assigned.
  Offset log_end_offset() const;
  // Every offset below this is durable.
  Offset durable_offset() const;
  // Sum of the .log sizes of all segments.
  int64_t size_bytes() const;
  int segment_count() const;
  // Base offsets of the segments, oldest first (for tests and tools).
  std::vector<Offset> segment_base_offsets() const;
  const std::string& dir() const { return options_.dir; }
  const std::string& topic() const { return options_.topic; }
  int32_t partition() const { return options_.partition; }

  // Data-loss findings of recovery (Open): a corrupt batch in the middle of
  // an older segment or anywhere but the tail. Each status is kDataLoss and
  // its message names the .log path and position.
  const std::vector<absl::Status>& recovery_problems() const {
    return recovery_problems_;
  }

  // Flushes and fsyncs everything, trims the indexes, closes all files.
  // Blocks. Idempotent. After Close only destruction (and DeleteFiles) are
  // allowed; other calls return kFailedPrecondition.
  absl::Status Close();

  // Removes every file of the partition and its directory (topic deletion).
  // Closes first if still open.
  absl::Status DeleteFiles();

 private:
  // Durability state shared with the writers' I/O-thread callbacks (which
  // may outlive a WhenDurable caller's stack but not the I/O thread).
  struct DurableState {
    absl::Mutex mu;
    Offset durable_offset ABSL_GUARDED_BY(mu) = 0;
    // Bumped by truncation: a sync issued before it must not mark offsets
    // that were cut and appended again as durable.
    uint64_t generation ABSL_GUARDED_BY(mu) = 0;
  };
  using SegmentMap = std::map<Offset, std::shared_ptr<Segment>>;

  explicit PartitionLog(PartitionLogOptions options);

  absl::Status RecoverLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<AppendResult> AppendLocked(std::string batches,
                                            bool assign_offsets,
                                            int32_t leader_epoch,
                                            BatchValidation validation)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Append's path for validated batches in pieces. kFailedPrecondition when
  // a batch is not framed or too large (Append then takes the joined path,
  // which gives the error); other errors are the append's.
  absl::StatusOr<AppendResult> AppendPiecesLocked(const RecordBytes& batches,
                                                  int32_t leader_epoch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The append proper, after framing (infos in offset order): rolls if
  // needed, records new epochs, calls `append(segment, i, now_ms)` for batch
  // i, asks for the write and publishes the new log end.
  absl::StatusOr<AppendResult> WriteBatchesLocked(
      const std::vector<BatchInfo>& infos, size_t total_bytes, int64_t now_ms,
      bool log_append_time,
      absl::FunctionRef<FilePos(Segment*, size_t, int64_t)> append)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status MaybeRollLocked(int64_t incoming_bytes, Offset last_offset,
                               int64_t now_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RollLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status DeleteOldestSegmentLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Deletes one segment that is not the active one.
  absl::Status DeleteSegmentLocked(SegmentMap::iterator it)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status SetLogStartLocked(Offset offset)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status TruncateFullyAndStartAtLocked(Offset offset)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes every appended byte of the active segment readable (waits for its
  // write). Called with mu_ held; the I/O thread never takes mu_.
  absl::Status WaitWrittenLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MarkDurable(Offset offset, bool bump_generation);
  Segment* active() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return segments_.rbegin()->second.get();
  }
  absl::Status CheckOpenLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Compaction: what becomes of one stored batch (at a position).
  using BatchFilter = absl::FunctionRef<absl::StatusOr<FilteredBatch>(
      const RecordBatchView&, FilePos)>;
  // Writes the cleaned copy of `segment` (its batches below `end` through
  // `filter`) into the cleaning directory, with synced indexes. Returns
  // false when the segment needs no change (nothing is written then).
  struct CleanedSegment;
  absl::StatusOr<bool> CleanSegment(const std::shared_ptr<Segment>& segment,
                                    FilePos end, const LogConfig& config,
                                    BatchFilter filter, CleanedSegment* out);
  // Lowers dirty_start_ to `offset` (a truncation), noting durably that the
  // next passes map from the start if that is below the checkpoint.
  absl::Status LowerDirtyStartLocked(Offset offset)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Creates (durably) or removes the cleaner-remap file.
  absl::Status SetCleanerRemapLocked(bool on)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes `offset` to the cleaner checkpoint if it is above cleaned_end_.
  absl::Status RaiseCleanerCheckpointLocked(Offset offset)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // kFailedPrecondition if the log was closed meanwhile (a failed pass of a
  // closed or deleted log), else `status`.
  absl::Status ClosedOr(absl::Status status) ABSL_LOCKS_EXCLUDED(mu_);
  // Commits the copy of the segment at `base`, if it is still `old` (not
  // deleted or truncated meanwhile; else drops the copy): raises the
  // cleaner checkpoint, then renames the cleaning directory to the swap
  // directory and moves its files into place. A copy left empty deletes the
  // segment instead, unless it is the first one.
  absl::Status InstallCleanedLocked(Offset base,
                                    const std::shared_ptr<Segment>& old,
                                    uint64_t truncations,
                                    const CleanedSegment& cleaned,
                                    CompactionResult* result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const PartitionLogOptions options_;
  std::vector<absl::Status> recovery_problems_;

  mutable absl::Mutex mu_;
  LogConfig config_ ABSL_GUARDED_BY(mu_);
  // shared_ptr: a Read that already picked a segment keeps reading it while
  // retention or truncation deletes it.
  SegmentMap segments_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<LeaderEpochCache> epochs_ ABSL_GUARDED_BY(mu_);
  // The cleaner checkpoint: segments below this offset may hold compacted
  // batches (offset gaps). Raised and persisted before a cleaned segment
  // commits, and at the end of a pass.
  Offset cleaned_end_ ABSL_GUARDED_BY(mu_) = 0;
  // Where the next pass starts its key map: segments below hold at most one
  // record per key. The checkpoint at open, or 0 while remap_pending_;
  // lowered by truncations.
  Offset dirty_start_ ABSL_GUARDED_BY(mu_) = 0;
  // The cleaner-remap file exists: a pass was interrupted before its commit
  // (it may have raised the checkpoint over a segment it did not replace),
  // or a truncation went below the checkpoint. Cleared by the first pass
  // whose map reaches the checkpoint.
  bool remap_pending_ ABSL_GUARDED_BY(mu_) = false;
  // Bumped by every truncation: a compaction pass that read a segment
  // before one does not install its copy.
  uint64_t truncations_ ABSL_GUARDED_BY(mu_) = 0;
  // One Compact at a time.
  absl::Mutex cleaner_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  // The last pass kept a tombstone that a later pass may expire (unknown
  // after open): while false, a pass with no dirty segment skips reading.
  bool may_hold_tombstones_ ABSL_GUARDED_BY(cleaner_mu_) = true;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status close_status_ ABSL_GUARDED_BY(mu_);
  // Published with release stores under mu_; getters read them with acquire
  // loads without the mutex (a slightly stale value is fine for them).
  std::atomic<Offset> log_start_offset_{0};
  std::atomic<Offset> log_end_offset_{0};
  const std::shared_ptr<DurableState> durable_ =
      std::make_shared<DurableState>();
};

}  // namespace runnel::log
