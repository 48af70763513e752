#include "log/segment.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include "common/check.h"
#include "common/endian.h"
#include "common/status_macros.h"
#include "log/append_writer.h"
#include "log/io_thread.h"
#include "log/record_batch.h"

namespace runnel::log {
namespace {

// Recovery and scans read the .log in chunks of this size (or one batch).
constexpr size_t kScanChunkBytes = 1 << 20;
// Header scans (FindBatch) read less: they usually stop within an index
// interval.
constexpr size_t kHeaderScanChunkBytes = 64 << 10;

absl::Status ErrnoError(const std::string& what, const std::string& path) {
  int err = errno;
  std::string message =
      absl::StrCat(path, ": ", what, ": ", std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) {
    return absl::ResourceExhaustedError(message);
  }
  if (err == ENOENT) return absl::NotFoundError(message);
  return absl::InternalError(message);
}

// Reads the header fields of the batch at the front of `p` (at least
// kBatchHeaderSize bytes).
BatchInfo DecodeHeader(const char* p, FilePos position) {
  BatchInfo info;
  info.position = position;
  info.base_offset = static_cast<Offset>(LoadBe64(p + kBaseOffsetPos));
  info.size_bytes =
      kBatchLogOverhead + static_cast<int32_t>(LoadBe32(p + kBatchLengthPos));
  info.leader_epoch =
      static_cast<int32_t>(LoadBe32(p + kPartitionLeaderEpochPos));
  info.last_offset = info.base_offset +
                     static_cast<int32_t>(LoadBe32(p + kLastOffsetDeltaPos));
  info.max_timestamp = static_cast<int64_t>(LoadBe64(p + kMaxTimestampPos));
  return info;
}

bool AllZero(std::string_view bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == 0; });
}

// A window over the .log for sequential scans.
class ScanBuffer {
 public:
  using ReadFn =
      absl::FunctionRef<absl::StatusOr<size_t>(char*, size_t, FilePos)>;
  ScanBuffer(ReadFn read, FilePos end, size_t chunk)
      : read_(read), end_(end), chunk_(chunk) {}

  // Makes [pos, pos + n) (cut at end) available; returns a view of it.
  absl::StatusOr<std::string_view> Get(FilePos pos, size_t n) {
    n = static_cast<size_t>(std::min<FilePos>(n, end_ - pos));
    if (pos < start_ || pos + static_cast<FilePos>(n) >
                            start_ + static_cast<FilePos>(data_.size())) {
      size_t want = static_cast<size_t>(
          std::min<FilePos>(std::max(n, chunk_), end_ - pos));
      data_.resize(want);
      RUNNEL_ASSIGN_OR_RETURN(size_t got, read_(data_.data(), want, pos));
      data_.resize(got);
      start_ = pos;
      if (got < n) n = got;
    }
    return std::string_view(data_.data() + (pos - start_), n);
  }

 private:
  ReadFn read_;
  FilePos end_;
  size_t chunk_;
  FilePos start_ = 0;
  std::string data_;
};

}  // namespace

std::string SegmentFileStem(Offset base_offset) {
  return absl::StrFormat("%020d", base_offset);
}

std::string SegmentFilePath(const std::string& dir, Offset base_offset,
                            const char* suffix) {
  return absl::StrCat(dir, "/", SegmentFileStem(base_offset), suffix);
}

namespace {

// The three files of a segment, in the order they are created and deleted.
constexpr const char* kSegmentFileSuffixes[] = {
    kLogFileSuffix, kIndexFileSuffix, kTimeIndexFileSuffix};

}  // namespace

bool ParseSegmentFileName(std::string_view name, const char* suffix,
                          Offset* base_offset) {
  std::string_view sfx(suffix);
  if (name.size() != 20 + sfx.size() || name.substr(20) != sfx) return false;
  Offset value = 0;
  for (char c : name.substr(0, 20)) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
    if (value > (std::numeric_limits<Offset>::max() - (c - '0')) / 10) {
      return false;
    }
    value = value * 10 + (c - '0');
  }
  *base_offset = value;
  return true;
}

Segment::Segment(std::string dir, Offset base_offset, SegmentOptions options)
    : dir_(std::move(dir)),
      base_offset_(base_offset),
      options_(options),
      log_path_(SegmentFilePath(dir_, base_offset, kLogFileSuffix)),
      next_offset_(base_offset),
      offset_of_max_timestamp_(base_offset) {}

Segment::~Segment() = default;

absl::StatusOr<std::unique_ptr<Segment>> Segment::Create(
    const std::string& dir, Offset base_offset, const SegmentOptions& options) {
  std::unique_ptr<Segment> segment(new Segment(dir, base_offset, options));
  for (const char* suffix : kSegmentFileSuffixes) {
    std::string path = SegmentFilePath(dir, base_offset, suffix);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return ErrnoError("unlink", path);
    }
  }
  {
    UniqueFd fd(::open(segment->log_path_.c_str(),
                       O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd.valid()) return ErrnoError("create", segment->log_path_);
  }
  RUNNEL_RETURN_IF_ERROR(segment->OpenFiles(/*preallocate_indexes=*/true));
  RUNNEL_RETURN_IF_ERROR(segment->OpenWriter(0));
  return segment;
}

absl::StatusOr<std::unique_ptr<Segment>> Segment::OpenClosed(
    const std::string& dir, Offset base_offset, const SegmentOptions& options) {
  std::unique_ptr<Segment> segment(new Segment(dir, base_offset, options));
  RUNNEL_RETURN_IF_ERROR(segment->OpenFiles(/*preallocate_indexes=*/false));
  struct stat st;
  if (fstat(segment->read_fd_.get(), &st) != 0) {
    return ErrnoError("fstat", segment->log_path_);
  }
  segment->size_.store(st.st_size, std::memory_order_release);
  TimestampOffset last_time = segment->time_index_->LastEntry();
  segment->max_timestamp_.store(last_time.timestamp, std::memory_order_release);
  segment->offset_of_max_timestamp_ = last_time.offset;
  if (st.st_size >= static_cast<FilePos>(kBatchHeaderSize)) {
    std::string header(kBatchHeaderSize, '\0');
    auto got = options.io->ReadSync(segment->read_fd_.get(), header.data(),
                                    header.size(), 0);
    if (got.ok() && *got == header.size()) {
      segment->rolling_base_ms_ = DecodeHeader(header.data(), 0).max_timestamp;
    }
  }
  return segment;
}

absl::Status Segment::OpenFiles(bool preallocate_indexes) {
  read_fd_.reset(::open(log_path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (!read_fd_.valid()) return ErrnoError("open", log_path_);
  int64_t index_bytes = preallocate_indexes ? options_.index_bytes : -1;
  RUNNEL_ASSIGN_OR_RETURN(
      offset_index_,
      OffsetIndex::Open(SegmentFilePath(dir_, base_offset_, kIndexFileSuffix),
                        base_offset_, index_bytes));
  RUNNEL_ASSIGN_OR_RETURN(
      time_index_,
      TimeIndex::Open(SegmentFilePath(dir_, base_offset_, kTimeIndexFileSuffix),
                      base_offset_, index_bytes));
  return absl::OkStatus();
}

absl::Status Segment::OpenWriter(FilePos start_pos) {
  AppendWriterOptions writer_options;
  writer_options.direct_io = options_.direct_io;
  writer_options.buffer_bytes = options_.writer_buffer_bytes;
  writer_options.tail_cache_bytes = options_.tail_cache_bytes;
  RUNNEL_ASSIGN_OR_RETURN(
      writer_,
      AppendWriter::Open(options_.io, log_path_, start_pos, writer_options));
  SetReaderView(writer_);
  return absl::OkStatus();
}

std::shared_ptr<AppendWriter> Segment::ReaderView() const {
  absl::MutexLock lock(&reader_mu_);
  return reader_view_;
}

void Segment::SetReaderView(std::shared_ptr<AppendWriter> writer) {
  absl::MutexLock lock(&reader_mu_);
  reader_view_ = std::move(writer);
}

absl::Status Segment::Activate() {
  if (writer_ != nullptr) return absl::OkStatus();
  RUNNEL_RETURN_IF_ERROR(offset_index_->Resize(options_.index_bytes));
  RUNNEL_RETURN_IF_ERROR(time_index_->Resize(options_.index_bytes));
  bytes_since_last_index_entry_ = size() - offset_index_->LastEntry().position;
  if (empty()) rolling_base_ms_ = -1;
  return OpenWriter(size());
}

FilePos Segment::Append(std::string_view batch, const BatchInfo& info,
                        int64_t now_ms) {
  return Append(std::span<const std::string_view>(&batch, 1), info, now_ms);
}

FilePos Segment::Append(std::span<const std::string_view> parts,
                        const BatchInfo& info, int64_t now_ms) {
  RUNNEL_CHECK(writer_ != nullptr);
  if (empty()) rolling_base_ms_ = now_ms;
  size_t size = 0;
  for (std::string_view p : parts) size += p.size();
  FilePos position = writer_->Append(parts);
  RUNNEL_CHECK(position == this->size());
  BatchInfo indexed = info;
  indexed.position = position;
  indexed.size_bytes = static_cast<int64_t>(size);
  IndexBatch(indexed);
  // Publish the new end after the index knows the batch.
  next_offset_.store(info.last_offset + 1, std::memory_order_release);
  size_.store(position + static_cast<FilePos>(size), std::memory_order_release);
  return position;
}

void Segment::IndexBatch(const BatchInfo& info) {
  // Kafka's LogSegment.append: the running max timestamp is updated first,
  // then, once more than index_interval_bytes were appended since the last
  // entry, this batch gets entries (last offset -> batch start position; the
  // max timestamp so far -> the offset where it was reached).
  if (info.max_timestamp > max_timestamp_.load(std::memory_order_relaxed)) {
    max_timestamp_.store(info.max_timestamp, std::memory_order_release);
    offset_of_max_timestamp_ = info.last_offset;
  }
  if (bytes_since_last_index_entry_ > options_.index_interval_bytes) {
    if (!offset_index_->is_full()) {
      offset_index_->Append(info.last_offset, info.position);
    }
    int64_t max_ts = max_timestamp_.load(std::memory_order_relaxed);
    if (max_ts >= 0 && !time_index_->is_full()) {
      time_index_->MaybeAppend(max_ts, offset_of_max_timestamp_);
    }
    bytes_since_last_index_entry_ = 0;
  }
  bytes_since_last_index_entry_ += info.size_bytes;
}

bool Segment::IndexFull() const {
  return offset_index_->is_full() || time_index_->is_full();
}

void Segment::Flush(std::function<void(absl::Status)> done) {
  RUNNEL_CHECK(writer_ != nullptr);
  writer_->Flush(std::move(done));
}

void Segment::Sync(std::function<void(absl::Status)> durable) {
  RUNNEL_CHECK(writer_ != nullptr);
  writer_->Sync(std::move(durable));
}

absl::Status Segment::writer_status() const {
  return writer_ != nullptr ? writer_->status() : absl::OkStatus();
}

FilePos Segment::written_pos() const {
  return writer_ != nullptr ? writer_->written_pos() : size();
}

FilePos Segment::durable_pos() const {
  return writer_ != nullptr ? writer_->durable_pos() : size();
}

absl::Status Segment::CloseWriter() {
  if (writer_ == nullptr) return absl::OkStatus();
  absl::Status status = writer_->Close();
  // Every byte is in the file now: readers go there from here on.
  SetReaderView(nullptr);
  writer_.reset();
  RUNNEL_RETURN_IF_ERROR(status);
  // Kafka's onBecomeInactiveSegment: the final time-index entry records the
  // segment's largest timestamp, so retention knows it after a restart.
  int64_t max_ts = max_timestamp();
  if (max_ts >= 0 && time_index_->max_entries() > time_index_->entries()) {
    time_index_->MaybeAppend(max_ts, offset_of_max_timestamp_,
                             /*skip_full_check=*/true);
  }
  RUNNEL_RETURN_IF_ERROR(offset_index_->Trim());
  return time_index_->Trim();
}

absl::Status Segment::TruncateLogFile(FilePos length) {
  UniqueFd fd(::open(log_path_.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("open", log_path_);
  if (ftruncate(fd.get(), length) != 0)
    return ErrnoError("ftruncate", log_path_);
  if (fdatasync(fd.get()) != 0) return ErrnoError("fdatasync", log_path_);
  return absl::OkStatus();
}

absl::Status Segment::TruncateTo(FilePos position, Offset new_next_offset) {
  const bool was_active = writer_ != nullptr;
  if (was_active) {
    // Close first: its Close writes and syncs what is buffered, so nothing
    // lands after the cut later.
    absl::Status status = writer_->Close();
    SetReaderView(nullptr);
    writer_.reset();
    RUNNEL_RETURN_IF_ERROR(status);
  }
  RUNNEL_RETURN_IF_ERROR(TruncateLogFile(position));
  size_.store(position, std::memory_order_release);
  next_offset_.store(new_next_offset, std::memory_order_release);
  offset_index_->TruncateTo(new_next_offset);
  time_index_->TruncateTo(new_next_offset);
  // Recompute the running max timestamp from the last time-index entry and
  // the batches after it.
  TimestampOffset last_time = time_index_->LastEntry();
  int64_t max_ts = last_time.timestamp;
  Offset max_ts_offset = last_time.offset;
  FilePos from = offset_index_->Lookup(last_time.offset).position;
  RUNNEL_RETURN_IF_ERROR(
      ReadBatchInfos(from, position, [&](const BatchInfo& b) {
        if (b.max_timestamp > max_ts) {
          max_ts = b.max_timestamp;
          max_ts_offset = b.last_offset;
        }
        return true;
      }));
  max_timestamp_.store(position == 0 ? kNoTimestamp : max_ts,
                       std::memory_order_release);
  offset_of_max_timestamp_ = position == 0 ? base_offset_ : max_ts_offset;
  bytes_since_last_index_entry_ =
      position - offset_index_->LastEntry().position;
  if (position == 0) rolling_base_ms_ = -1;
  if (was_active) {
    RUNNEL_RETURN_IF_ERROR(offset_index_->Sync());
    RUNNEL_RETURN_IF_ERROR(time_index_->Sync());
    return OpenWriter(position);
  }
  RUNNEL_RETURN_IF_ERROR(offset_index_->Trim());
  return time_index_->Trim();
}

absl::Status Segment::DeleteFiles() {
  absl::Status first;
  for (const char* suffix : kSegmentFileSuffixes) {
    std::string path = SegmentFilePath(dir_, base_offset_, suffix);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT && first.ok()) {
      first = ErrnoError("unlink", path);
    }
  }
  return first;
}

absl::StatusOr<std::vector<std::string>> Segment::RenameForDeletion() {
  std::vector<std::string> renamed;
  for (const char* suffix : kSegmentFileSuffixes) {
    const std::string path = SegmentFilePath(dir_, base_offset_, suffix);
    const std::string doomed = path + kDeletedFileSuffix;
    if (::rename(path.c_str(), doomed.c_str()) == 0) {
      renamed.push_back(doomed);
    } else if (errno != ENOENT) {
      return ErrnoError("rename", path);
    }
  }
  return renamed;
}

absl::StatusOr<SegmentRecovery> Segment::Recover(
    size_t max_batch_bytes, int32_t prev_epoch,
    const std::function<void(const BatchInfo&)>& on_batch, bool offset_gaps) {
  RUNNEL_CHECK(writer_ == nullptr);
  struct stat st;
  if (fstat(read_fd_.get(), &st) != 0) return ErrnoError("fstat", log_path_);
  const FilePos file_size = st.st_size;
  // Rebuild both indexes from scratch while scanning.
  RUNNEL_RETURN_IF_ERROR(offset_index_->Resize(options_.index_bytes));
  RUNNEL_RETURN_IF_ERROR(time_index_->Resize(options_.index_bytes));
  offset_index_->Reset();
  time_index_->Reset();
  max_timestamp_.store(kNoTimestamp, std::memory_order_release);
  offset_of_max_timestamp_ = base_offset_;
  bytes_since_last_index_entry_ = 0;
  rolling_base_ms_ = -1;

  SegmentRecovery out;
  out.last_epoch = prev_epoch;
  auto read_fn = [this](char* buf, size_t size, FilePos pos) {
    return ReadFile(buf, size, pos);  // closed segment: no tail cache
  };
  ScanBuffer scan(read_fn, file_size, kScanChunkBytes);
  FilePos pos = 0;
  Offset next = base_offset_;
  while (pos < file_size) {
    const FilePos remaining = file_size - pos;
    absl::Status bad;
    BatchInfo info;
    std::string_view bytes;
    RUNNEL_ASSIGN_OR_RETURN(std::string_view head,
                            scan.Get(pos, kBatchHeaderSize));
    if (head.size() < kBatchHeaderSize) {
      bad = absl::DataLossError("batch header cut by the end of the file");
    } else {
      info = DecodeHeader(head.data(), pos);
      size_t want = info.size_bytes > static_cast<int64_t>(kBatchHeaderSize)
                        ? static_cast<size_t>(
                              std::min<int64_t>(info.size_bytes, remaining))
                        : kBatchHeaderSize;
      RUNNEL_ASSIGN_OR_RETURN(bytes, scan.Get(pos, want));
      auto view = RecordBatchView::Parse(bytes, BatchSource::kDisk);
      if (!view.ok()) {
        bad = view.status();
      } else {
        bad = ValidateBatch(view->bytes(), {.source = BatchSource::kDisk,
                                            .max_batch_bytes = max_batch_bytes,
                                            .offset_gaps = offset_gaps});
        if (bad.ok() && (offset_gaps ? info.base_offset < next
                                     : info.base_offset != next)) {
          bad = absl::DataLossError(absl::StrCat(
              "batch base offset ", info.base_offset, ", expected ", next));
        }
        if (bad.ok() && info.leader_epoch >= 0 &&
            info.leader_epoch < out.last_epoch) {
          bad = absl::DataLossError(
              absl::StrCat("leader epoch ", info.leader_epoch,
                           " below the previous ", out.last_epoch));
        }
      }
    }
    if (!bad.ok()) {
      // A torn tail: the batch runs to or past the end of the file, or only
      // zero bytes (O_DIRECT padding, preallocation) are left. Anything else
      // is corruption followed by more data.
      RUNNEL_ASSIGN_OR_RETURN(std::string_view rest,
                              scan.Get(pos, static_cast<size_t>(remaining)));
      bool reaches_end =
          head.size() >= kBatchLogOverhead &&
          info.size_bytes >= static_cast<int64_t>(kBatchHeaderSize) &&
          pos + info.size_bytes >= file_size;
      if (AllZero(rest) || reaches_end) {
        out.torn_tail = true;
      } else {
        out.problem = absl::DataLossError(
            absl::StrCat(log_path_, ": corrupt batch at position ", pos, ": ",
                         bad.message()));
      }
      break;
    }
    info.size_bytes = static_cast<int64_t>(bytes.size());
    IndexBatch(info);
    if (rolling_base_ms_ < 0) rolling_base_ms_ = info.max_timestamp;
    if (info.leader_epoch >= 0) out.last_epoch = info.leader_epoch;
    if (on_batch) on_batch(info);
    next = info.last_offset + 1;
    pos += info.size_bytes;
  }
  out.valid_bytes = pos;
  out.next_offset = next;
  out.truncated = pos < file_size;
  // Cut (if needed) and fdatasync in any case: the crashed process may have
  // left valid batches only in the page cache, and the partition counts
  // everything that survives recovery as durable.
  RUNNEL_RETURN_IF_ERROR(TruncateLogFile(pos));
  size_.store(pos, std::memory_order_release);
  next_offset_.store(next, std::memory_order_release);
  int64_t max_ts = max_timestamp();
  if (max_ts >= 0) {
    time_index_->MaybeAppend(max_ts, offset_of_max_timestamp_,
                             /*skip_full_check=*/true);
  }
  RUNNEL_RETURN_IF_ERROR(offset_index_->Trim());
  RUNNEL_RETURN_IF_ERROR(time_index_->Trim());
  return out;
}

absl::StatusOr<SegmentRecovery> Segment::LoadTail(size_t max_batch_bytes,
                                                  int32_t prev_epoch,
                                                  bool offset_gaps) {
  RUNNEL_CHECK(writer_ == nullptr);
  const FilePos file_size = size();
  auto fallback = [&]() {
    return Recover(max_batch_bytes, prev_epoch, nullptr, offset_gaps);
  };
  if (offset_index_->opened_file_bytes() % kOffsetIndexEntrySize != 0 ||
      time_index_->opened_file_bytes() % kTimeIndexEntrySize != 0 ||
      offset_index_->entries() * kOffsetIndexEntrySize !=
          offset_index_->opened_file_bytes() ||
      time_index_->entries() * kTimeIndexEntrySize !=
          time_index_->opened_file_bytes()) {
    return fallback();
  }
  OffsetPosition last = offset_index_->LastEntry();
  if (last.position >= file_size && file_size > 0) return fallback();
  SegmentRecovery out;
  out.last_epoch = prev_epoch;
  auto read_fn = [this](char* buf, size_t size, FilePos pos) {
    return ReadFile(buf, size, pos);  // closed segment: no tail cache
  };
  ScanBuffer scan(read_fn, file_size, kScanChunkBytes);
  FilePos pos = last.position;
  Offset next = offset_index_->entries() > 0 ? kNoOffset : base_offset_;
  int64_t max_ts = max_timestamp();
  Offset max_ts_offset = offset_of_max_timestamp_;
  while (pos < file_size) {
    RUNNEL_ASSIGN_OR_RETURN(std::string_view head,
                            scan.Get(pos, kBatchHeaderSize));
    if (head.size() < kBatchHeaderSize) return fallback();
    BatchInfo info = DecodeHeader(head.data(), pos);
    if (info.size_bytes < static_cast<int64_t>(kBatchHeaderSize) ||
        pos + info.size_bytes > file_size ||
        (next != kNoOffset &&
         (offset_gaps ? info.base_offset < next : info.base_offset != next))) {
      return fallback();
    }
    RUNNEL_ASSIGN_OR_RETURN(
        std::string_view bytes,
        scan.Get(pos, static_cast<size_t>(info.size_bytes)));
    auto view = RecordBatchView::Parse(bytes, BatchSource::kDisk);
    if (!view.ok() || !view->CrcMatches()) return fallback();
    if (info.max_timestamp > max_ts) {
      max_ts = info.max_timestamp;
      max_ts_offset = info.last_offset;
    }
    if (info.leader_epoch >= 0) out.last_epoch = info.leader_epoch;
    next = info.last_offset + 1;
    pos += info.size_bytes;
  }
  if (next == kNoOffset) return fallback();
  max_timestamp_.store(max_ts, std::memory_order_release);
  offset_of_max_timestamp_ = max_ts_offset;
  next_offset_.store(next, std::memory_order_release);
  out.valid_bytes = file_size;
  out.next_offset = next;
  return out;
}

absl::Status Segment::ReadBatchInfos(
    FilePos from, FilePos end,
    const std::function<bool(const BatchInfo&)>& fn) const {
  auto read_fn = [this](char* buf, size_t size, FilePos pos) {
    return ReadInto(buf, size, pos);
  };
  ScanBuffer scan(read_fn, end, kHeaderScanChunkBytes);
  FilePos pos = from;
  while (pos < end) {
    RUNNEL_ASSIGN_OR_RETURN(std::string_view head,
                            scan.Get(pos, kBatchHeaderSize));
    if (head.size() < kBatchHeaderSize) {
      return absl::DataLossError(
          absl::StrCat(log_path_, ": batch header cut at position ", pos));
    }
    BatchInfo info = DecodeHeader(head.data(), pos);
    if (info.size_bytes < static_cast<int64_t>(kBatchHeaderSize) ||
        pos + info.size_bytes > end) {
      return absl::DataLossError(
          absl::StrCat(log_path_, ": bad batch length at position ", pos));
    }
    if (!fn(info)) return absl::OkStatus();
    pos += info.size_bytes;
  }
  return absl::OkStatus();
}

absl::StatusOr<FilePos> Segment::FindBatch(Offset target, FilePos end) const {
  FilePos start = offset_index_->Lookup(target).position;
  FilePos found = end;
  RUNNEL_RETURN_IF_ERROR(ReadBatchInfos(start, end, [&](const BatchInfo& b) {
    if (b.last_offset >= target) {
      found = b.position;
      return false;
    }
    return true;
  }));
  return found;
}

absl::StatusOr<std::string> Segment::Read(FilePos position, size_t size) const {
  // Sized once; the bytes land in it directly (from the tail cache or the
  // kernel), no intermediate buffer, and no zeroing first where the
  // standard library allows it (log/storage.cmake).
  std::string out;
#if defined(__cpp_lib_string_resize_and_overwrite)
  absl::Status status;
  out.resize_and_overwrite(size, [&](char* buf, size_t n) -> size_t {
    absl::StatusOr<size_t> got = ReadInto(buf, n, position);
    if (!got.ok()) {
      status = got.status();
      return 0;
    }
    return *got;
  });
  RUNNEL_RETURN_IF_ERROR(status);
#else
  out.resize(size);
  RUNNEL_ASSIGN_OR_RETURN(size_t got, ReadInto(out.data(), size, position));
  out.resize(got);
#endif
  return out;
}

absl::StatusOr<size_t> Segment::ReadInto(char* buf, size_t size,
                                         FilePos pos) const {
  std::shared_ptr<AppendWriter> writer = ReaderView();
  if (writer == nullptr) return ReadFile(buf, size, pos);
  const FilePos logical_end = writer->size();
  if (pos >= logical_end) return 0;
  // Never past the logical end: in O_DIRECT mode the file holds zero padding
  // there, and the bytes past written_pos are not in the file yet.
  size = static_cast<size_t>(
      std::min<FilePos>(static_cast<FilePos>(size), logical_end - pos));
  // Bytes below written_pos are final in the file; every byte at or above
  // it is in the tail cache (in flight or still in the append buffer) until
  // it is written. A range that straddles written_pos reads its head from
  // the file and its tail from the cache. If the cache moved on meanwhile
  // (its bytes got written and evicted), written_pos moved on too: retry.
  for (int attempt = 0; attempt < 64; ++attempt) {
    if (writer->ReadCachedInto(pos, size, buf)) return size;
    const FilePos written = writer->written_pos();
    if (pos + static_cast<FilePos>(size) <= written) {
      return ReadFile(buf, size, pos);
    }
    if (!writer->status().ok()) return writer->status();
    if (pos < written) {
      size_t head = static_cast<size_t>(written - pos);
      if (writer->ReadCachedInto(written, size - head, buf + head)) {
        RUNNEL_ASSIGN_OR_RETURN(size_t got, ReadFile(buf, head, pos));
        if (got < head) {
          return absl::DataLossError(absl::StrCat(
              log_path_, ": file ends before written position ", written));
        }
        return size;
      }
    }
  }
  // Unreachable in practice: each failed round means the appender wrote
  // and evicted more than the whole tail cache meanwhile.
  return absl::UnavailableError(absl::StrCat(log_path_, ": read at ", pos,
                                             " kept racing with the appender"));
}

absl::StatusOr<size_t> Segment::ReadFile(char* buf, size_t size,
                                         FilePos pos) const {
  if (!options_.pread_on_caller) {
    return options_.io->ReadSync(read_fd_.get(), buf, size, pos);
  }
  size_t got = 0;
  while (got < size) {
    ssize_t n = ::pread(read_fd_.get(), buf + got, size - got,
                        pos + static_cast<FilePos>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("pread", log_path_);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  ReadAhead(pos + static_cast<FilePos>(got));
  return got;
}

void Segment::ReadAhead(FilePos end) const {
  FilePos asked = readahead_end_.load(std::memory_order_relaxed);
  const bool far_behind = end + 2 * kReadAheadWindow < asked;  // a seek back
  if (end + kReadAheadWindow / 2 <= asked && !far_behind) return;
  // Only final bytes: below the written position of the active segment.
  std::shared_ptr<AppendWriter> writer = ReaderView();
  const FilePos limit = writer != nullptr ? writer->written_pos() : size();
  const FilePos from = far_behind ? end : std::max(asked, end);
  const FilePos to = std::min(end + kReadAheadWindow, limit);
  if (to <= from) return;
  // One reader asks; a concurrent one that lost the race does not.
  if (!readahead_end_.compare_exchange_strong(asked, to)) return;
  // Advisory: an error changes nothing but the speed of later reads.
  (void)::posix_fadvise(read_fd_.get(), from, to - from, POSIX_FADV_WILLNEED);
}

absl::StatusOr<RecordTimestamp> Segment::FindRecordForTimestamp(
    int64_t timestamp_ms, Offset min_offset, FilePos end) const {
  if (max_timestamp() < timestamp_ms) return RecordTimestamp{};
  TimestampOffset entry = time_index_->Lookup(timestamp_ms);
  Offset from_offset = std::max(entry.offset, min_offset);
  FilePos from = offset_index_->Lookup(from_offset).position;
  std::optional<BatchInfo> candidate;
  RecordTimestamp result;
  absl::Status status;
  while (result.offset == kNoOffset && status.ok() && from < end) {
    candidate.reset();
    status = ReadBatchInfos(from, end, [&](const BatchInfo& b) {
      if (b.last_offset >= min_offset && b.max_timestamp >= timestamp_ms) {
        candidate = b;
        return false;
      }
      return true;
    });
    if (!status.ok() || !candidate) break;
    RUNNEL_ASSIGN_OR_RETURN(
        std::string bytes,
        Read(candidate->position, static_cast<size_t>(candidate->size_bytes)));
    RUNNEL_ASSIGN_OR_RETURN(RecordBatchView view,
                            RecordBatchView::Parse(bytes, BatchSource::kDisk));
    // Only offsets and timestamps are needed: views, no copy per record.
    std::string decompressed;
    status = view.ForEachRecordView(
        [&](const RecordView& r) {
          if (r.offset >= min_offset && r.timestamp >= timestamp_ms) {
            result = RecordTimestamp{r.offset, r.timestamp};
            return absl::CancelledError("found");
          }
          return absl::OkStatus();
        },
        &decompressed, BatchSource::kDisk);
    if (result.offset != kNoOffset) return result;
    from = candidate->position + candidate->size_bytes;
  }
  RUNNEL_RETURN_IF_ERROR(status);
  return result;
}

}  // namespace runnel::log
