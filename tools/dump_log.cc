#include "tools/dump_log.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include "common/endian.h"
#include "common/unique_fd.h"
#include "log/checkpoint_file.h"
#include "log/mapped_region.h"
#include "log/offset_index.h"
#include "log/partition_log.h"
#include "log/record_batch.h"
#include "log/segment.h"
#include "log/time_index.h"
#include "log/types.h"
#include "tools/output_format.h"

namespace runnel::tools {
namespace {

using log::AsView;
using log::BatchSource;
using log::FilePos;
using log::Offset;
using log::Record;
using log::RecordBatchView;

// Maps the whole of `path` read-only. kNotFound if it is missing,
// kFailedPrecondition if it is not a regular file, kUnavailable for other
// I/O errors; messages carry the path.
absl::StatusOr<log::MappedRegion> MapReadOnly(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    int err = errno;
    std::string message = absl::StrCat(path, ": open: ", strerror(err));
    if (err == ENOENT) return absl::NotFoundError(message);
    return absl::UnavailableError(message);
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0) {
    return absl::UnavailableError(
        absl::StrCat(path, ": fstat: ", strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": not a regular file"));
  }
  absl::StatusOr<log::MappedRegion> region = log::MappedRegion::Map(
      fd.get(), static_cast<size_t>(st.st_size), /*writable=*/false);
  if (!region.ok()) {
    return absl::UnavailableError(
        absl::StrCat(path, ": ", region.status().message()));
  }
  return region;
}

// Index entry sizes as unsigned, for byte arithmetic.
constexpr size_t kOffsetIndexEntry = log::kOffsetIndexEntrySize;
constexpr size_t kTimeIndexEntry = log::kTimeIndexEntrySize;

std::string_view Bytes(const log::MappedRegion& region) {
  return {region.data(), region.size()};
}

// "00000000000000000042.log" -> 42 for `suffix` ".log".
std::optional<Offset> ParseSegmentName(std::string_view file_name,
                                       const char* suffix) {
  Offset base = 0;
  if (!log::ParseSegmentFileName(file_name, suffix, &base)) return std::nullopt;
  return base;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.substr(s.size() - suffix.size()) == suffix;
}

bool AllZero(std::string_view bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == 0; });
}

// What the dump remembers of each batch, for the index checks.
struct ScannedBatch {
  FilePos position = 0;
  Offset base_offset = 0;
  Offset last_offset = 0;
  int64_t max_timestamp = 0;
  // Largest max timestamp of this and every earlier batch of the segment.
  int64_t running_max_timestamp = 0;
};

const char* TimestampTypeName(log::TimestampType type) {
  return type == log::TimestampType::kLogAppendTime ? "log_append" : "create";
}

std::string BatchLineText(const RecordBatchView& b, FilePos position,
                          bool crc_ok) {
  return absl::StrCat(
      "batch base_offset=", b.base_offset(), " last_offset=", b.last_offset(),
      " count=", b.record_count(), " position=", position,
      " size=", b.size_bytes(), " leader_epoch=", b.partition_leader_epoch(),
      " base_timestamp=", b.base_timestamp(),
      " max_timestamp=", b.max_timestamp(),
      " timestamp_type=", TimestampTypeName(b.timestamp_type()),
      " compression=", std::string(log::CompressionName(b.compression())),
      " producer_id=", b.producer_id(), " producer_epoch=", b.producer_epoch(),
      " base_sequence=", b.base_sequence(),
      " transactional=", b.is_transactional() ? "true" : "false",
      " control=", b.is_control() ? "true" : "false",
      absl::StrFormat(" crc=0x%08x", b.crc()),
      " crc_ok=", crc_ok ? "true" : "false");
}

std::string BatchLineJson(const RecordBatchView& b, FilePos position,
                          bool crc_ok) {
  return JsonObject()
      .String("type", "batch")
      .Int("base_offset", b.base_offset())
      .Int("last_offset", b.last_offset())
      .Int("count", b.record_count())
      .Int("position", position)
      .Uint("size", b.size_bytes())
      .Int("leader_epoch", b.partition_leader_epoch())
      .Int("base_timestamp", b.base_timestamp())
      .Int("max_timestamp", b.max_timestamp())
      .String("timestamp_type", TimestampTypeName(b.timestamp_type()))
      .String("compression", log::CompressionName(b.compression()))
      .Int("producer_id", b.producer_id())
      .Int("producer_epoch", b.producer_epoch())
      .Int("base_sequence", b.base_sequence())
      .Bool("transactional", b.is_transactional())
      .Bool("control", b.is_control())
      .Uint("crc", b.crc())
      .Bool("crc_ok", crc_ok)
      .Build();
}

std::string RecordLineText(const Record& r) {
  std::string headers = "[";
  for (size_t i = 0; i < r.headers.size(); ++i) {
    if (i > 0) headers += ", ";
    absl::StrAppend(&headers, FormatBytesText(r.headers[i].key), "=",
                    FormatBytesText(AsView(r.headers[i].value)));
  }
  headers += "]";
  return absl::StrCat("  record offset=", r.offset, " timestamp=", r.timestamp,
                      " key=", FormatBytesText(AsView(r.key)),
                      " value=", FormatBytesText(AsView(r.value)),
                      " headers=", headers);
}

std::string RecordLineJson(const Record& r) {
  std::string headers = "[";
  for (size_t i = 0; i < r.headers.size(); ++i) {
    if (i > 0) headers += ",";
    headers += JsonObject()
                   .Bytes("key", r.headers[i].key)
                   .Bytes("value", AsView(r.headers[i].value))
                   .Build();
  }
  headers += "]";
  return JsonObject()
      .String("type", "record")
      .Int("offset", r.offset)
      .Int("timestamp", r.timestamp)
      .Bytes("key", AsView(r.key))
      .Bytes("value", AsView(r.value))
      .Raw("headers", headers)
      .Build();
}

// Why Parse refused the bytes at the front of `rest`.
std::string FramingProblem(const absl::Status& status, std::string_view rest) {
  if (status.code() != absl::StatusCode::kOutOfRange) {
    return std::string(status.message());
  }
  if (rest.size() < log::kBatchLogOverhead) {
    return absl::StrCat("torn batch: only ", rest.size(),
                        " bytes left, less than a batch header");
  }
  int64_t length =
      static_cast<int32_t>(LoadBe32(rest.data() + log::kBatchLengthPos));
  return absl::StrCat("torn batch: ", rest.size(), " bytes left, batch needs ",
                      length + static_cast<int64_t>(log::kBatchLogOverhead));
}

// The batch whose first byte is at `position`, or null.
const ScannedBatch* BatchAt(const std::vector<ScannedBatch>& batches,
                            FilePos position) {
  auto it = std::lower_bound(
      batches.begin(), batches.end(), position,
      [](const ScannedBatch& b, FilePos p) { return b.position < p; });
  if (it == batches.end() || it->position != position) return nullptr;
  return &*it;
}

// The batch holding `offset`, or null.
const ScannedBatch* BatchHolding(const std::vector<ScannedBatch>& batches,
                                 Offset offset) {
  auto it = std::lower_bound(
      batches.begin(), batches.end(), offset,
      [](const ScannedBatch& b, Offset o) { return b.last_offset < o; });
  if (it == batches.end() || it->base_offset > offset) return nullptr;
  return &*it;
}

std::string SiblingPath(const std::string& log_path, std::string_view suffix) {
  return log_path.substr(0, log_path.size() - strlen(log::kLogFileSuffix)) +
         std::string(suffix);
}

// One dump-log run. Thread-compatible.
class Dumper {
 public:
  Dumper(const DumpLogOptions& options, std::ostream& out, std::ostream& err)
      : options_(options), out_(out), err_(err) {}
  Dumper(const Dumper&) = delete;
  Dumper& operator=(const Dumper&) = delete;

  void DumpPath(const std::string& path);
  // True once a --verify run has found its (first) problem.
  bool stopped() const { return stopped_; }
  int exit_code() const { return exit_code_; }

 private:
  // What the checks carry from one batch to the next, and from one segment
  // of a directory to the next.
  struct Continuity {
    std::optional<Offset> next_offset;  // where the next batch must start
    int32_t leader_epoch = -1;          // latest non-negative epoch seen
    // The segment is below the cleaner checkpoint: compaction may have left
    // offset gaps in its batches, between them and after its end, so the
    // next batch (or segment) must only start at or after next_offset.
    bool gaps = false;
  };

  void DumpDirectory(const std::string& path);
  void DumpSegment(const std::string& path, Continuity* continuity);
  // Scans the batches of one segment; false if it had to stop early.
  // `continuity` comes in holding where the segment must start (if known).
  bool ScanBatches(const std::string& path, std::string_view bytes,
                   Continuity* continuity, std::vector<ScannedBatch>* batches);
  // The --verify checks of one framed batch with a good CRC.
  void VerifyBatch(const std::string& path, FilePos position,
                   const RecordBatchView& batch, bool first,
                   const Continuity& continuity);
  void PrintRecords(const std::string& path, FilePos position,
                    const RecordBatchView& batch);
  void VerifyOffsetIndex(const std::string& index_path, Offset base,
                         const std::vector<ScannedBatch>& batches);
  void VerifyTimeIndex(const std::string& index_path, Offset base,
                       const std::vector<ScannedBatch>& batches);
  // Maps an index file; nullopt (after reporting) if it cannot be read, an
  // empty mapping if it does not exist (indexes can be rebuilt: no problem).
  std::optional<log::MappedRegion> OpenIndex(const std::string& index_path);

  // Reports a problem in the data; with --verify stops the run.
  void Problem(const std::string& path, FilePos position,
               std::string_view what);
  void Unreadable(const absl::Status& status);
  void Line(const std::string& line) { out_ << line << '\n'; }

  // The directory's cleaner checkpoint (0: none) while it is dumped.
  Offset cleaned_end_ = 0;
  const DumpLogOptions options_;
  std::ostream& out_;
  std::ostream& err_;
  bool stopped_ = false;
  int exit_code_ = kDumpLogOk;
};

void Dumper::Problem(const std::string& path, FilePos position,
                     std::string_view what) {
  if (stopped_) return;
  err_ << path << ": position " << position << ": " << what << '\n';
  exit_code_ = std::max(exit_code_, kDumpLogProblem);
  if (options_.verify) stopped_ = true;
}

void Dumper::Unreadable(const absl::Status& status) {
  err_ << status.message() << '\n';
  exit_code_ = std::max(exit_code_, kDumpLogUnreadable);
  if (options_.verify) stopped_ = true;
}

void Dumper::DumpPath(const std::string& path) {
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    Unreadable(absl::NotFoundError(absl::StrCat(path, ": no such file")));
    return;
  }
  if (std::filesystem::is_directory(status)) {
    DumpDirectory(path);
    return;
  }
  Continuity continuity;  // a lone file: its own name says where it starts
  DumpSegment(path, &continuity);
}

void Dumper::DumpDirectory(const std::string& path) {
  // (base offset, name) so that segment names sort by offset and any other
  // *.log after them by name.
  std::vector<std::pair<Offset, std::string>> logs;
  std::error_code ec;
  // increment(ec), not a range-for: its operator++ throws on error.
  for (std::filesystem::directory_iterator it(path, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (!EndsWith(name, log::kLogFileSuffix)) continue;
    Offset base = ParseSegmentName(name, log::kLogFileSuffix)
                      .value_or(std::numeric_limits<Offset>::max());
    logs.emplace_back(base, it->path().string());
  }
  if (ec) {
    Unreadable(absl::UnavailableError(
        absl::StrCat(path, ": cannot list: ", ec.message())));
    return;
  }
  if (logs.empty()) {
    // A partition directory always holds at least its active segment.
    Unreadable(absl::NotFoundError(
        absl::StrCat(path, ": no .log files: not a partition directory")));
    return;
  }
  std::sort(logs.begin(), logs.end());
  // Compacted segments (below the cleaner checkpoint) may have gaps.
  const std::string checkpoint =
      (std::filesystem::path(path) / log::kCleanerCheckpointFile).string();
  absl::StatusOr<std::vector<log::CheckpointEntry>> entries =
      log::CheckpointFile(checkpoint).Read();
  cleaned_end_ = 0;
  if (entries.ok()) {
    for (const log::CheckpointEntry& e : *entries) {
      cleaned_end_ = std::max(cleaned_end_, e.offset);
    }
  } else if (entries.status().code() != absl::StatusCode::kNotFound) {
    Problem(checkpoint, 0, std::string(entries.status().message()));
    if (stopped_) return;
  }
  Continuity continuity;
  for (const auto& [base, log_path] : logs) {
    if (stopped_) break;
    DumpSegment(log_path, &continuity);
  }
  cleaned_end_ = 0;
}

void Dumper::DumpSegment(const std::string& path, Continuity* continuity) {
  absl::StatusOr<log::MappedRegion> file = MapReadOnly(path);
  if (!file.ok()) {
    Unreadable(file.status());
    continuity->next_offset.reset();
    return;
  }
  std::string_view bytes = Bytes(*file);
  std::string file_name = std::filesystem::path(path).filename().string();
  std::optional<Offset> name_base =
      ParseSegmentName(file_name, log::kLogFileSuffix);
  if (options_.json) {
    JsonObject line;
    line.String("type", "segment").String("path", path);
    if (name_base.has_value()) {
      line.Int("base_offset", *name_base);
    } else {
      line.Null("base_offset");
    }
    Line(line.Uint("size", bytes.size()).Build());
  } else {
    Line(absl::StrCat("segment path=", path, " base_offset=",
                      name_base.has_value() ? absl::StrCat(*name_base) : "?",
                      " size=", bytes.size()));
  }

  const std::optional<Offset> expected_base = continuity->next_offset;
  // A compacted segment may end before the next one starts.
  const bool after_gaps = continuity->gaps;
  continuity->gaps = name_base.has_value() && *name_base < cleaned_end_;
  if (options_.verify) {
    if (!name_base.has_value()) {
      Problem(path, 0,
              "file name is not a 20-digit zero-padded base offset + .log");
    } else if (expected_base.has_value() &&
               (after_gaps ? *name_base < *expected_base
                           : *name_base != *expected_base)) {
      Problem(path, 0,
              absl::StrCat("segment base offset ", *name_base,
                           " does not continue the previous segment, which "
                           "ends before offset ",
                           *expected_base));
    }
  }
  // The first batch must start at the segment's base offset.
  if (name_base.has_value()) continuity->next_offset = name_base;
  std::vector<ScannedBatch> batches;
  if (!ScanBatches(path, bytes, continuity, &batches)) {
    continuity->next_offset.reset();
  }
  if (options_.verify && name_base.has_value()) {
    VerifyOffsetIndex(SiblingPath(path, log::kIndexFileSuffix), *name_base,
                      batches);
    VerifyTimeIndex(SiblingPath(path, log::kTimeIndexFileSuffix), *name_base,
                    batches);
  }
}

void Dumper::VerifyBatch(const std::string& path, FilePos position,
                         const RecordBatchView& batch, bool first,
                         const Continuity& continuity) {
  log::ValidateOptions validate;
  validate.source = BatchSource::kDisk;
  // On disk the topic's max.message.bytes may have been anything.
  validate.max_batch_bytes = std::numeric_limits<size_t>::max();
  validate.offset_gaps = continuity.gaps;
  absl::Status valid = log::ValidateBatch(batch.bytes(), validate);
  if (!valid.ok()) {
    Problem(path, position, absl::StrCat("invalid batch: ", valid.message()));
    return;
  }
  if (continuity.next_offset.has_value() &&
      (continuity.gaps ? batch.base_offset() < *continuity.next_offset
                       : batch.base_offset() != *continuity.next_offset)) {
    Problem(
        path, position,
        absl::StrCat(first ? "first batch does not start at the "
                             "segment's base offset: expected "
                           : "offset gap: expected base offset ",
                     *continuity.next_offset, ", found ", batch.base_offset()));
    return;
  }
  int32_t epoch = batch.partition_leader_epoch();
  if (epoch >= 0 && epoch < continuity.leader_epoch) {
    Problem(path, position,
            absl::StrCat("leader epoch ", epoch, " is below the epoch ",
                         continuity.leader_epoch, " of an earlier batch"));
  }
}

bool Dumper::ScanBatches(const std::string& path, std::string_view bytes,
                         Continuity* continuity,
                         std::vector<ScannedBatch>* batches) {
  FilePos position = 0;
  while (static_cast<size_t>(position) < bytes.size() && !stopped_) {
    std::string_view rest = bytes.substr(position);
    absl::StatusOr<RecordBatchView> batch =
        RecordBatchView::Parse(rest, BatchSource::kDisk);
    if (!batch.ok()) {
      if (AllZero(rest)) {
        // Preallocation or O_DIRECT padding; recovery drops it silently.
        err_ << path << ": position " << position << ": note: " << rest.size()
             << " zero bytes after the last batch\n";
        return true;
      }
      Problem(path, position, FramingProblem(batch.status(), rest));
      return false;
    }
    bool crc_ok = batch->CrcMatches();
    Line(options_.json ? BatchLineJson(*batch, position, crc_ok)
                       : BatchLineText(*batch, position, crc_ok));
    if (!crc_ok) {
      Problem(path, position,
              absl::StrFormat("crc mismatch: stored 0x%08x, computed 0x%08x",
                              batch->crc(), batch->ComputeCrc()));
    } else if (options_.verify) {
      VerifyBatch(path, position, *batch, batches->empty(), *continuity);
    }
    if (stopped_) return false;
    continuity->next_offset = batch->next_offset();
    continuity->leader_epoch =
        std::max(continuity->leader_epoch, batch->partition_leader_epoch());
    if (options_.records) PrintRecords(path, position, *batch);
    ScannedBatch info;
    info.position = position;
    info.base_offset = batch->base_offset();
    info.last_offset = batch->last_offset();
    info.max_timestamp = batch->max_timestamp();
    info.running_max_timestamp =
        batches->empty() ? info.max_timestamp
                         : std::max(info.max_timestamp,
                                    batches->back().running_max_timestamp);
    batches->push_back(info);
    position += static_cast<FilePos>(batch->size_bytes());
  }
  return !stopped_;
}

void Dumper::PrintRecords(const std::string& path, FilePos position,
                          const RecordBatchView& batch) {
  absl::Status status = batch.ForEachRecord(
      [&](Record record) {
        Line(options_.json ? RecordLineJson(record) : RecordLineText(record));
        return absl::OkStatus();
      },
      BatchSource::kDisk);
  if (!status.ok()) {
    Problem(path, position,
            absl::StrCat("cannot decode records: ", status.message()));
  }
}

std::optional<log::MappedRegion> Dumper::OpenIndex(
    const std::string& index_path) {
  absl::StatusOr<log::MappedRegion> file = MapReadOnly(index_path);
  if (file.ok()) return std::move(file).value();
  if (absl::IsNotFound(file.status())) return log::MappedRegion();
  Unreadable(file.status());
  return std::nullopt;
}

void Dumper::VerifyOffsetIndex(const std::string& index_path, Offset base,
                               const std::vector<ScannedBatch>& batches) {
  if (stopped_) return;
  std::optional<log::MappedRegion> file = OpenIndex(index_path);
  if (!file.has_value()) return;
  std::string_view bytes = Bytes(*file);
  size_t entries = bytes.size() / kOffsetIndexEntry;
  uint32_t prev_relative = 0;
  uint32_t prev_position = 0;
  for (size_t i = 0; i < entries && !stopped_; ++i) {
    const char* entry = bytes.data() + i * kOffsetIndexEntry;
    FilePos at = static_cast<FilePos>(i * kOffsetIndexEntry);
    uint32_t relative = LoadBe32(entry);
    uint32_t position = LoadBe32(entry + 4);
    // Preallocated files end in zero-filled unused entries; the first entry
    // may be all zero for real (offset 0 at position 0) unless the log is
    // empty.
    if ((i > 0 || batches.empty()) && relative == 0 && position == 0) return;
    Offset offset = base + relative;
    std::string where = absl::StrCat("index entry ", i, " (offset ", offset,
                                     ", position ", position, ")");
    if (i > 0 && (relative <= prev_relative || position <= prev_position)) {
      Problem(index_path, at,
              absl::StrCat(where,
                           " does not increase over the previous "
                           "entry (relative offset ",
                           prev_relative, ", position ", prev_position, ")"));
      return;
    }
    const ScannedBatch* batch = BatchAt(batches, position);
    if (batch == nullptr) {
      Problem(index_path, at,
              absl::StrCat(where, ": no batch starts at that position"));
      return;
    }
    if (offset < batch->base_offset || offset > batch->last_offset) {
      Problem(index_path, at,
              absl::StrCat(where, ": the batch there holds offsets ",
                           batch->base_offset, "..", batch->last_offset));
      return;
    }
    prev_relative = relative;
    prev_position = position;
  }
  if (bytes.size() % kOffsetIndexEntry != 0) {
    Problem(index_path, static_cast<FilePos>(entries * kOffsetIndexEntry),
            "partial index entry at the end of the file");
  }
}

void Dumper::VerifyTimeIndex(const std::string& index_path, Offset base,
                             const std::vector<ScannedBatch>& batches) {
  if (stopped_) return;
  std::optional<log::MappedRegion> file = OpenIndex(index_path);
  if (!file.has_value()) return;
  std::string_view bytes = Bytes(*file);
  size_t entries = bytes.size() / kTimeIndexEntry;
  int64_t prev_timestamp = 0;
  uint32_t prev_relative = 0;
  for (size_t i = 0; i < entries && !stopped_; ++i) {
    const char* entry = bytes.data() + i * kTimeIndexEntry;
    FilePos at = static_cast<FilePos>(i * kTimeIndexEntry);
    auto timestamp = static_cast<int64_t>(LoadBe64(entry));
    uint32_t relative = LoadBe32(entry + 8);
    if (timestamp == 0 && relative == 0) {
      // All zero: preallocation, which ends the valid part. A first entry is
      // real only if the segment's first batch has max timestamp 0; the
      // active segment of a running broker has none until ~4 KiB were
      // appended.
      const ScannedBatch* first =
          batches.empty() ? nullptr : BatchHolding(batches, base);
      if (i > 0 || first == nullptr || first->running_max_timestamp != 0) {
        return;
      }
    }
    Offset offset = base + relative;
    std::string where = absl::StrCat("timeindex entry ", i, " (timestamp ",
                                     timestamp, ", offset ", offset, ")");
    if (i > 0 && (timestamp < prev_timestamp || relative < prev_relative)) {
      Problem(
          index_path, at,
          absl::StrCat(where,
                       " goes back from the previous entry "
                       "(timestamp ",
                       prev_timestamp, ", offset ", base + prev_relative, ")"));
      return;
    }
    const ScannedBatch* batch = BatchHolding(batches, offset);
    if (batch == nullptr) {
      Problem(index_path, at,
              absl::StrCat(where, ": no batch in the log holds that offset"));
      return;
    }
    // The entry says: the largest timestamp of the segment up to and
    // including this offset is this one (log/time_index.h).
    if (timestamp != batch->running_max_timestamp) {
      Problem(index_path, at,
              absl::StrCat(where,
                           ": the largest batch max timestamp up to "
                           "that offset is ",
                           batch->running_max_timestamp));
      return;
    }
    prev_timestamp = timestamp;
    prev_relative = relative;
  }
  if (bytes.size() % kTimeIndexEntry != 0) {
    Problem(index_path, static_cast<FilePos>(entries * kTimeIndexEntry),
            "partial timeindex entry at the end of the file");
  }
}

}  // namespace

int DumpLog(const std::vector<std::string>& paths,
            const DumpLogOptions& options, std::ostream& out,
            std::ostream& err) {
  Dumper dumper(options, out, err);
  for (const std::string& path : paths) {
    if (dumper.stopped()) break;
    dumper.DumpPath(path);
  }
  out.flush();
  return dumper.exit_code();
}

}  // namespace runnel::tools
