#pragma once

// One segment of a partition log: <base>.log (RecordBatch v2 bytes, nothing
// else), its sparse offset index <base>.index and time index
// <base>.timeindex. File names are the 20-digit zero-padded base offset.
// Layout and recovery rules: docs/log-format.md.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

#include "common/unique_fd.h"
#include "log/offset_index.h"
#include "log/time_index.h"
#include "log/types.h"

namespace runnel::log {

class AppendWriter;
class IoThread;

inline constexpr char kLogFileSuffix[] = ".log";
inline constexpr char kIndexFileSuffix[] = ".index";
inline constexpr char kTimeIndexFileSuffix[] = ".timeindex";

// "00000000000000000042" for 42.
std::string SegmentFileStem(Offset base_offset);
// dir + "/" + SegmentFileStem(base_offset) + suffix.
std::string SegmentFilePath(const std::string& dir, Offset base_offset,
                            const char* suffix);
// Parses a segment file name ("<20 digits><suffix>"); false if it is not one.
// Appended to the name of a segment file waiting for its deletion.
inline constexpr char kDeletedFileSuffix[] = ".deleted";

bool ParseSegmentFileName(std::string_view name, const char* suffix,
                          Offset* base_offset);

struct SegmentOptions {
  IoThread* io = nullptr;  // must outlive the segment
  int32_t index_interval_bytes = 4096;
  int64_t index_bytes = int64_t{10} << 20;  // preallocation of each index
  bool direct_io = true;                    // AppendWriterOptions::direct_io
  size_t writer_buffer_bytes = 1 << 20;     // AppendWriterOptions::buffer_bytes
  size_t tail_cache_bytes = size_t{4}
                            << 20;  // AppendWriterOptions::tail_cache_bytes
  // File reads (bytes not in the active writer's tail cache): true (the
  // default) preads on the calling thread; false sends them through the I/O
  // thread (IORING_OP_READ). pread measured 2-3x faster at lower CPU for
  // sequential reads here: see docs/benchmarks.md "Storage: reads".
  bool pread_on_caller = true;
};

// The header fields of one stored batch that segment scans need.
struct BatchInfo {
  FilePos position = 0;    // where the batch starts in the .log
  int64_t size_bytes = 0;  // 12 + batchLength
  Offset base_offset = 0;
  Offset last_offset = 0;
  int64_t max_timestamp = kNoTimestamp;
  int32_t leader_epoch = -1;
};

// What Segment::Recover found.
struct SegmentRecovery {
  FilePos valid_bytes = 0;  // the .log was cut to this length
  Offset next_offset = 0;   // last valid offset + 1 (base if empty)
  int32_t last_epoch = -1;  // epoch of the last valid batch, or -1
  bool truncated = false;   // bytes were dropped
  // kDataLoss (path + position) when a bad batch was followed by more data
  // (not a torn tail); OK otherwise. A torn tail (batch cut by the end of
  // the file, or only zero bytes left) is not a problem.
  absl::Status problem;
  bool torn_tail = false;
};

// A segment is either active (it has an AppendWriter and preallocated
// indexes) or closed (read-only, indexes trimmed).
//
// Threading: the appending methods (Append, Flush, Sync, Close*, Activate,
// TruncateTo, Recover, DeleteFiles) are thread-compatible: the partition
// calls them under its mutex. The reading methods (FindBatch, Read,
// ReadBatchInfos, FindOffsetForTimestamp and the getters) are thread-safe and
// may run concurrently with appends; they only see bytes below the `end`
// the caller passes (a size() observed earlier). Those bytes need not be
// written yet: while the segment is active, reads are served from the
// writer's tail cache (AppendWriter::ReadCached: recent writes, the buffer in
// flight and the append buffer) when it holds the range, and otherwise from
// the file, whose bytes below written_pos() are final. Reads never force a
// flush and never wait for a write. File reads pread on the calling thread
// (or go through the I/O thread with IORING_OP_READ when
// !SegmentOptions::pread_on_caller); reads must not be called on the I/O
// thread.
class Segment {
 public:
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;
  ~Segment();

  // Creates a new, empty, active segment (any existing files of that base
  // offset are replaced).
  static absl::StatusOr<std::unique_ptr<Segment>> Create(
      const std::string& dir, Offset base_offset,
      const SegmentOptions& options);

  // Opens an existing segment closed (read-only); the indexes are used as
  // they are (not preallocated). next_offset() is unknown (base offset)
  // until LoadTail, Recover or set_next_offset.
  static absl::StatusOr<std::unique_ptr<Segment>> OpenClosed(
      const std::string& dir, Offset base_offset,
      const SegmentOptions& options);

  // Validates every batch from position 0 (framing, CRC, ValidateBatch kDisk
  // with `max_batch_bytes`, first base offset == base_offset(), offsets
  // continuous, non-negative leader epochs non-decreasing from
  // `prev_epoch`), rebuilds both indexes, cuts the .log after the last valid
  // batch and sets size() and next_offset(). `on_batch` (may be null) sees
  // every valid batch, in order. Only for a closed segment.
  // `offset_gaps`: a segment compaction may have rewritten; its offsets only
  // increase (the first base offset >= base_offset(), each batch starts
  // after the previous one's last offset) and batches may have gaps between
  // their offset deltas (ValidateOptions::offset_gaps).
  absl::StatusOr<SegmentRecovery> Recover(
      size_t max_batch_bytes, int32_t prev_epoch,
      const std::function<void(const BatchInfo&)>& on_batch,
      bool offset_gaps = false);

  // Clean-shutdown check of an (active-to-be) segment: scans the batches
  // after the last offset-index entry (framing + CRC), cutting a torn or bad
  // tail, and sets next_offset() and the max timestamp. Also checks the
  // index file sizes; on any doubt it falls back to Recover and returns its
  // result. Only for a closed segment.
  absl::StatusOr<SegmentRecovery> LoadTail(size_t max_batch_bytes,
                                           int32_t prev_epoch,
                                           bool offset_gaps = false);

  // Makes a closed segment active: opens the AppendWriter at size() and
  // preallocates the indexes again.
  absl::Status Activate();

  // Appends one batch that already carries its final offsets. `info` holds
  // its header fields (position is ignored). `now_ms` starts the segment's
  // age on its first batch. Returns the batch's position. Active only.
  FilePos Append(std::string_view batch, const BatchInfo& info, int64_t now_ms);
  // The same for a batch in pieces (its bytes are `parts` joined).
  FilePos Append(std::span<const std::string_view> parts, const BatchInfo& info,
                 int64_t now_ms);
  // AppendWriter::Flush / Sync of the active segment.
  void Flush(std::function<void(absl::Status)> done);
  void Sync(std::function<void(absl::Status)> durable);

  // OK, or the active writer's first (sticky) write/fsync error.
  absl::Status writer_status() const;

  // Active -> closed: writes everything, fsyncs, drops O_DIRECT padding,
  // appends the final time-index entry and trims and syncs both indexes.
  // Blocks on the I/O thread. No-op for a closed segment.
  absl::Status CloseWriter();

  // Drops every batch at or after `position` (a batch start) and every
  // index entry for offsets >= `new_next_offset`; durable when it returns.
  // The segment stays active if it was (the writer is reopened).
  absl::Status TruncateTo(FilePos position, Offset new_next_offset);

  // Deletes the three files. The object may still serve reads through its
  // open descriptor until destroyed.
  absl::Status DeleteFiles();
  // Renames the segment's files to "<name>.deleted" (kDeletedFileSuffix),
  // for a FileReaper to delete later; readers keep reading through their
  // open descriptors. Returns the new paths of the files that existed.
  absl::StatusOr<std::vector<std::string>> RenameForDeletion();

  // --- reading (thread-safe) ---

  // Position of the first batch with last offset >= `target` below `end`,
  // or `end` if there is none.
  absl::StatusOr<FilePos> FindBatch(Offset target, FilePos end) const;
  // The headers of the batches in [from, end), in order; stops early when
  // `fn` returns false. kDataLoss on a malformed header.
  absl::Status ReadBatchInfos(
      FilePos from, FilePos end,
      const std::function<bool(const BatchInfo&)>& fn) const;
  // `size` bytes at `position` (fewer at the end of the file).
  absl::StatusOr<std::string> Read(FilePos position, size_t size) const;
  // The first record at offset >= `min_offset` below `end` whose timestamp
  // >= `timestamp_ms` (time index, then batch max timestamps, then records):
  // its offset and timestamp, or {kNoOffset, kNoTimestamp}.
  absl::StatusOr<RecordTimestamp> FindRecordForTimestamp(int64_t timestamp_ms,
                                                         Offset min_offset,
                                                         FilePos end) const;

  Offset base_offset() const { return base_offset_; }
  // Logical size of the .log (every appended byte).
  FilePos size() const { return size_.load(std::memory_order_acquire); }
  // Bytes below this are readable through the read descriptor.
  FilePos written_pos() const;
  // Bytes below this are durable.
  FilePos durable_pos() const;
  // Last offset + 1, or base_offset() if empty.
  Offset next_offset() const {
    return next_offset_.load(std::memory_order_acquire);
  }
  void set_next_offset(Offset next) {
    next_offset_.store(next, std::memory_order_release);
  }
  // Largest batch max timestamp in the segment, kNoTimestamp if empty.
  int64_t max_timestamp() const {
    return max_timestamp_.load(std::memory_order_acquire);
  }
  // When the segment's age started (see LogConfig::segment_ms), or -1.
  int64_t rolling_base_ms() const { return rolling_base_ms_; }
  bool active() const { return writer_ != nullptr; }
  bool empty() const { return size() == 0; }
  // True when either index has no room left: the segment must roll.
  bool IndexFull() const;
  const std::string& log_path() const { return log_path_; }
  const OffsetIndex& offset_index() const { return *offset_index_; }
  const TimeIndex& time_index() const { return *time_index_; }

 private:
  Segment(std::string dir, Offset base_offset, SegmentOptions options);
  absl::Status OpenFiles(bool preallocate_indexes);
  absl::Status OpenWriter(FilePos start_pos);
  void IndexBatch(const BatchInfo& info);
  absl::Status TruncateLogFile(FilePos length);
  absl::StatusOr<FilePos> ScanTail(size_t max_batch_bytes, FilePos from,
                                   Offset from_offset, SegmentRecovery* out);
  // Reads up to `size` bytes at `pos` into `buf` (tail cache, then file);
  // returns the count (fewer only at the end of the segment).
  absl::StatusOr<size_t> ReadInto(char* buf, size_t size, FilePos pos) const;
  absl::StatusOr<size_t> ReadFile(char* buf, size_t size, FilePos pos) const;
  // After a read that ended at `end`: asks the kernel to read the next
  // window of the file into the page cache, asynchronously, once the reader
  // gets within half a window of what was asked before. O_DIRECT appends
  // leave recent data out of the page cache, and the kernel's own
  // readahead (128 KiB) keeps a consumer of it waiting on the disk.
  void ReadAhead(FilePos end) const;
  // The active writer for readers (null when closed).
  std::shared_ptr<AppendWriter> ReaderView() const;
  void SetReaderView(std::shared_ptr<AppendWriter> writer);

  const std::string dir_;
  const Offset base_offset_;
  const SegmentOptions options_;
  const std::string log_path_;
  UniqueFd read_fd_;
  static constexpr FilePos kReadAheadWindow = FilePos{64} << 20;
  mutable std::atomic<FilePos> readahead_end_{0};  // see ReadAhead
  // Null when closed. Appending side only; readers use reader_view_ (the
  // same writer), which keeps a writer alive while a read copies from its
  // tail cache even if a roll closes it meanwhile.
  std::shared_ptr<AppendWriter> writer_;
  mutable absl::Mutex reader_mu_;
  std::shared_ptr<AppendWriter> reader_view_ ABSL_GUARDED_BY(reader_mu_);
  std::unique_ptr<OffsetIndex> offset_index_;
  std::unique_ptr<TimeIndex> time_index_;

  std::atomic<FilePos> size_{0};
  std::atomic<Offset> next_offset_;
  std::atomic<int64_t> max_timestamp_{kNoTimestamp};
  // Appending side only (partition mutex).
  Offset offset_of_max_timestamp_;
  int64_t bytes_since_last_index_entry_ = 0;
  int64_t rolling_base_ms_ = -1;
};

}  // namespace runnel::log
