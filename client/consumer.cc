#include "runnel/consumer.h"

#include <algorithm>
#include <deque>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"

#include "client/metadata.h"
#include "client/rpc.h"
#include "common/status_macros.h"
#include "log/record_batch.h"

namespace runnel::client {

namespace {

constexpr int64_t kEarliestTimestamp = -2;
constexpr int64_t kLatestTimestamp = -1;

std::string PartitionName(const TopicPartition& tp) {
  return absl::StrCat(tp.topic, "-", tp.partition);
}

// The offset after the last of a fetched partition's batches (`from` when
// there is none); checks the batch frames.
absl::StatusOr<int64_t> NextOffsetAfter(const TopicPartition& tp,
                                        const std::string& bytes,
                                        int64_t from) {
  absl::StatusOr<std::vector<log::RecordBatchView>> batches =
      log::SplitBatches(bytes);
  if (!batches.ok()) {
    return absl::Status(
        batches.status().code(),
        absl::StrCat(PartitionName(tp), ": ", batches.status().message()));
  }
  int64_t next = from;
  for (const log::RecordBatchView& batch : *batches) {
    next = std::max(next, batch.next_offset());
  }
  return next;
}

// What decoded records view and share: the chunk's copy of the topic name,
// the fetched batches, and for a compressed batch the buffer it was
// decompressed into.
struct RecordStorage {
  std::string topic;
  std::shared_ptr<const std::string> fetched;
  std::string decompressed;
};

// Decodes a fetched partition's batches into records at or after `from`.
// The records view `bytes` (or, for a compressed batch, the buffer it was
// decompressed into) and one copy of the topic name, and share their
// ownership.
absl::Status DecodeRecords(const TopicPartition& tp,
                           const std::shared_ptr<const std::string>& bytes,
                           int64_t from, bool check_crcs,
                           std::vector<ConsumerRecord>& out) {
  if (bytes == nullptr) return absl::OkStatus();
  RUNNEL_ASSIGN_OR_RETURN(std::vector<log::RecordBatchView> batches,
                          log::SplitBatches(*bytes));
  if (check_crcs) {
    for (const log::RecordBatchView& batch : batches) {
      if (!batch.CrcMatches()) {
        return absl::DataLossError(absl::StrCat(
            PartitionName(tp), ": the batch at offset ", batch.base_offset(),
            " fails its CRC32C check (stored ", batch.crc(), ", computed ",
            batch.ComputeCrc(), ")"));
      }
    }
  }
  // One allocation for the chunk instead of the vector's regrowth moves.
  size_t count = 0;
  for (const log::RecordBatchView& batch : batches) {
    count += static_cast<size_t>(std::max(0, batch.record_count()));
  }
  out.reserve(out.size() + count);
  // One for the chunk; a compressed batch gets its own.
  std::shared_ptr<RecordStorage> chunk_storage;
  for (const log::RecordBatchView& batch : batches) {
    if (batch.is_control() || batch.last_offset() < from) continue;
    const bool log_append =
        batch.timestamp_type() == log::TimestampType::kLogAppendTime;
    std::shared_ptr<RecordStorage> storage;
    std::string* decompressed = nullptr;
    if (batch.compression() != log::Compression::kNone) {
      storage = std::make_shared<RecordStorage>();
      storage->topic = tp.topic;
      decompressed = &storage->decompressed;
    } else {
      if (chunk_storage == nullptr) {
        chunk_storage = std::make_shared<RecordStorage>();
        chunk_storage->topic = tp.topic;
        chunk_storage->fetched = bytes;
      }
      storage = chunk_storage;
    }
    const std::string_view topic = storage->topic;
    absl::Status s = batch.ForEachRecordView(
        [&](const log::RecordView& r) -> absl::Status {
          if (r.offset < from) return absl::OkStatus();
          ConsumerRecord& c = out.emplace_back();
          c.topic = topic;
          c.partition = tp.partition;
          c.offset = r.offset;
          c.timestamp_ms = r.timestamp;
          c.log_append_time = log_append;
          c.key = r.key;
          c.value = r.value;
          if (!r.headers.empty()) {
            c.headers.reserve(r.headers.size());
            for (const log::RecordHeaderView& h : r.headers) {
              c.headers.push_back(HeaderView{h.key, h.value});
            }
          }
          c.storage = storage;
          return absl::OkStatus();
        },
        decompressed);
    if (!s.ok()) {
      return absl::Status(s.code(),
                          absl::StrCat(PartitionName(tp), " offset ",
                                       batch.base_offset(), ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

// State shared by the application thread (Assign, Seek, Poll) and the
// fetcher thread, under mu_. Thread-safe.
class Consumer::Impl {
 public:
  explicit Impl(ConsumerOptions options);
  ~Impl() { Close(); }

  absl::Status Assign(const std::vector<TopicPartition>& partitions);
  std::vector<TopicPartition> Assignment() const;
  absl::Status Seek(const TopicPartition& tp, int64_t offset);
  absl::Status SeekTo(const std::vector<TopicPartition>& partitions,
                      int64_t timestamp);
  absl::StatusOr<std::vector<ConsumerRecord>> Poll(absl::Duration timeout);
  absl::StatusOr<int64_t> Position(const TopicPartition& tp) const;
  int64_t HighWatermark(const TopicPartition& tp) const;
  absl::StatusOr<std::map<TopicPartition, int64_t>> ListOffsets(
      const std::vector<TopicPartition>& partitions, int64_t timestamp);
  absl::StatusOr<std::vector<TopicPartition>> PartitionsFor(
      const std::string& topic);
  void Close();

 private:
  struct PartitionState {
    int64_t position = -1;        // next offset Poll returns; -1 unknown
    int64_t fetch_position = -1;  // next offset to fetch
    uint64_t epoch = 0;           // bumped by Seek: older fetches are stale
    int64_t high_watermark = -1;
    absl::Time retry_after = absl::InfinitePast();
    bool stopped = false;  // a non-retriable error; until the next Seek
  };
  // One partition's fetched batches. The fetcher thread only checks their
  // frames; Poll decodes them (on the application's thread, while the
  // fetcher receives the next ones).
  struct Chunk {
    TopicPartition tp;
    uint64_t epoch = 0;
    int64_t from = 0;         // the fetch offset: records below it are skipped
    int64_t next_offset = 0;  // position after the chunk
    // The batches; the decoded records share them (null once decoded).
    std::shared_ptr<const std::string> bytes;
    size_t size = 0;  // bytes->size() as counted in buffered_bytes_
    bool decoded = false;
    std::vector<ConsumerRecord> records;
    size_t next = 0;  // first record not yet returned
  };
  struct Want {
    TopicPartition tp;
    int64_t offset;
    uint64_t epoch;
  };
  struct LeaderFetch {
    std::string address;
    std::vector<Want> wants;
    grpc::ClientContext ctx;
    v1::FetchRequest request;
    v1::FetchResponse response;
    grpc::Status status;
  };

  void RunFetcher();
  std::vector<Want> WaitForWants();
  void FetchFrom(std::vector<std::unique_ptr<LeaderFetch>>& fetches);
  // One leader: a FetchStream that the broker keeps feeding, so the next
  // batches are on their way while these are decoded and polled.
  void StreamFrom(LeaderFetch& fetch);
  void BuildRequest(LeaderFetch& fetch) const;
  // Marks the wanted partitions for a retry after the backoff.
  void BackOff(const std::vector<Want>& wants);
  void HandlePartition(const Want& want, v1::PartitionFetchResponse& r);
  void SetPositionLocked(const TopicPartition& tp, int64_t offset)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CancelFetchesLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropChunksLocked(const TopicPartition& tp)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ConsumerOptions options_;
  ChannelPool pool_;
  Metadata metadata_;

  mutable absl::Mutex mu_;
  absl::CondVar poll_cv_;   // chunk or error added, or closed
  absl::CondVar fetch_cv_;  // space freed, positions changed, or closed
  std::map<TopicPartition, PartitionState> parts_ ABSL_GUARDED_BY(mu_);
  std::deque<Chunk> chunks_ ABSL_GUARDED_BY(mu_);
  size_t buffered_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<absl::Status> errors_ ABSL_GUARDED_BY(mu_);
  std::vector<grpc::ClientContext*> active_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  size_t rotation_ = 0;  // fetcher thread only
  std::thread fetcher_;
};

Consumer::Impl::Impl(ConsumerOptions options)
    : options_(std::move(options)),
      metadata_(&pool_, options_.bootstrap, options_.request_timeout_ms) {
  fetcher_ = std::thread([this] { RunFetcher(); });
}

void Consumer::Impl::Close() {
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
    CancelFetchesLocked();
    poll_cv_.SignalAll();
    fetch_cv_.SignalAll();
  }
  fetcher_.join();
}

void Consumer::Impl::CancelFetchesLocked() {
  for (grpc::ClientContext* ctx : active_) ctx->TryCancel();
}

void Consumer::Impl::DropChunksLocked(const TopicPartition& tp) {
  for (auto it = chunks_.begin(); it != chunks_.end();) {
    if (it->tp == tp) {
      buffered_bytes_ -= it->size;
      it = chunks_.erase(it);
    } else {
      ++it;
    }
  }
}

void Consumer::Impl::SetPositionLocked(const TopicPartition& tp,
                                       int64_t offset) {
  PartitionState& s = parts_[tp];
  s.position = offset;
  s.fetch_position = offset;
  ++s.epoch;
  s.stopped = false;
  s.retry_after = absl::InfinitePast();
  DropChunksLocked(tp);
  // A long poll in flight would delay the new position's first fetch.
  CancelFetchesLocked();
  fetch_cv_.SignalAll();
}

absl::Status Consumer::Impl::Assign(
    const std::vector<TopicPartition>& partitions) {
  for (const TopicPartition& tp : partitions) {
    RUNNEL_ASSIGN_OR_RETURN(const int32_t count,
                            metadata_.PartitionCount(tp.topic));
    if (tp.partition < 0 || tp.partition >= count) {
      return absl::NotFoundError(
          absl::StrCat("partition ", tp.partition, " of topic ", tp.topic,
                       " does not exist (", count, " partitions)"));
    }
  }
  std::vector<TopicPartition> added;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = parts_.begin(); it != parts_.end();) {
      if (std::find(partitions.begin(), partitions.end(), it->first) ==
          partitions.end()) {
        DropChunksLocked(it->first);
        it = parts_.erase(it);
      } else {
        ++it;
      }
    }
    for (const TopicPartition& tp : partitions) {
      if (!parts_.contains(tp)) {
        parts_[tp];
        added.push_back(tp);
      }
    }
    CancelFetchesLocked();
    fetch_cv_.SignalAll();
  }
  if (added.empty() || options_.auto_offset_reset == OffsetReset::kNone) {
    return absl::OkStatus();
  }
  return SeekTo(added, options_.auto_offset_reset == OffsetReset::kEarliest
                           ? kEarliestTimestamp
                           : kLatestTimestamp);
}

std::vector<TopicPartition> Consumer::Impl::Assignment() const {
  absl::MutexLock lock(&mu_);
  std::vector<TopicPartition> out;
  for (const auto& [tp, s] : parts_) out.push_back(tp);
  return out;
}

absl::Status Consumer::Impl::Seek(const TopicPartition& tp, int64_t offset) {
  if (offset < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("negative offset ", offset, " for ", PartitionName(tp)));
  }
  absl::MutexLock lock(&mu_);
  if (!parts_.contains(tp)) {
    return absl::InvalidArgumentError(
        absl::StrCat(PartitionName(tp), " is not assigned"));
  }
  SetPositionLocked(tp, offset);
  return absl::OkStatus();
}

absl::Status Consumer::Impl::SeekTo(
    const std::vector<TopicPartition>& partitions, int64_t timestamp) {
  {
    absl::MutexLock lock(&mu_);
    for (const TopicPartition& tp : partitions) {
      if (!parts_.contains(tp)) {
        return absl::InvalidArgumentError(
            absl::StrCat(PartitionName(tp), " is not assigned"));
      }
    }
  }
  RUNNEL_ASSIGN_OR_RETURN(auto offsets, ListOffsets(partitions, timestamp));
  std::map<TopicPartition, int64_t> ends;
  if (timestamp >= 0) {
    // No record at or after the timestamp: start at the end, like Kafka.
    std::vector<TopicPartition> missing;
    for (const auto& [tp, offset] : offsets) {
      if (offset < 0) missing.push_back(tp);
    }
    if (!missing.empty()) {
      RUNNEL_ASSIGN_OR_RETURN(ends, ListOffsets(missing, kLatestTimestamp));
    }
  }
  absl::MutexLock lock(&mu_);
  for (auto [tp, offset] : offsets) {
    if (offset < 0) offset = ends[tp];
    if (parts_.contains(tp)) SetPositionLocked(tp, offset);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::map<TopicPartition, int64_t>> Consumer::Impl::ListOffsets(
    const std::vector<TopicPartition>& partitions, int64_t timestamp) {
  absl::flat_hash_map<std::string, v1::ListOffsetsRequest> requests;
  for (const TopicPartition& tp : partitions) {
    RUNNEL_ASSIGN_OR_RETURN(const std::string leader,
                            metadata_.LeaderAddress(tp));
    v1::ListOffsetsRequest& req = requests[leader];
    v1::TopicListOffsets* topic = nullptr;
    for (auto& t : *req.mutable_topics()) {
      if (t.name() == tp.topic) topic = &t;
    }
    if (topic == nullptr) {
      topic = req.add_topics();
      topic->set_name(tp.topic);
    }
    v1::PartitionListOffsets* p = topic->add_partitions();
    p->set_partition(tp.partition);
    p->set_timestamp(timestamp);
  }
  std::map<TopicPartition, int64_t> out;
  for (const auto& [address, request] : requests) {
    grpc::ClientContext ctx;
    ctx.set_deadline(DeadlineAfterMs(options_.request_timeout_ms));
    v1::ListOffsetsResponse response;
    grpc::Status rpc =
        pool_.Broker(address)->ListOffsets(&ctx, request, &response);
    if (!rpc.ok()) {
      return RpcToStatus(rpc, absl::StrCat("list offsets from ", address));
    }
    for (const auto& t : response.topics()) {
      for (const auto& p : t.partitions()) {
        const TopicPartition tp{t.name(), p.partition()};
        if (HasError(p.error())) {
          if (NeedsMetadataRefresh(p.error().code())) {
            metadata_.Invalidate(tp.topic);
          }
          return ErrorToStatus(p.error(), PartitionName(tp));
        }
        out[tp] = p.offset();
      }
    }
  }
  for (const TopicPartition& tp : partitions) {
    if (!out.contains(tp)) {
      return absl::InternalError(
          absl::StrCat("list offsets response lacks ", PartitionName(tp)));
    }
  }
  return out;
}

absl::StatusOr<std::vector<TopicPartition>> Consumer::Impl::PartitionsFor(
    const std::string& topic) {
  RUNNEL_ASSIGN_OR_RETURN(const int32_t count, metadata_.PartitionCount(topic));
  std::vector<TopicPartition> out;
  for (int32_t p = 0; p < count; ++p) out.push_back({topic, p});
  return out;
}

absl::StatusOr<std::vector<ConsumerRecord>> Consumer::Impl::Poll(
    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  while (!closed_ && chunks_.empty() && errors_.empty()) {
    if (poll_cv_.WaitWithDeadline(&mu_, deadline)) break;
  }
  if (closed_) return absl::CancelledError("consumer closed");
  if (!errors_.empty()) {
    absl::Status error = std::move(errors_.front());
    errors_.pop_front();
    return error;
  }
  std::vector<ConsumerRecord> out;
  while (!chunks_.empty() && out.size() < options_.max_poll_records) {
    Chunk& chunk = chunks_.front();
    auto it = parts_.find(chunk.tp);
    if (it != parts_.end() && it->second.epoch == chunk.epoch) {
      PartitionState& s = it->second;
      if (!chunk.decoded) {
        // Under mu_: the fetcher needs it only to hand over its next chunk.
        absl::Status decoded =
            DecodeRecords(chunk.tp, chunk.bytes, chunk.from,
                          options_.check_crcs, chunk.records);
        chunk.decoded = true;
        chunk.bytes.reset();
        if (!decoded.ok()) {
          // Records before the bad batch are dropped with it; the partition
          // stops until the next Seek.
          s.stopped = true;
          buffered_bytes_ -= chunk.size;
          chunks_.pop_front();
          fetch_cv_.SignalAll();
          if (!out.empty()) {
            errors_.push_back(std::move(decoded));
            return out;
          }
          return decoded;
        }
      }
      std::vector<ConsumerRecord>& records = chunk.records;
      if (out.empty() && chunk.next == 0 && !records.empty() &&
          records.size() <= options_.max_poll_records &&
          records.front().offset >= s.position) {
        // The whole chunk, none of it skipped: hand its vector over as it is
        // (the common case; no record is moved one by one).
        s.position = records.back().offset + 1;
        out = std::move(records);
        records.clear();  // the chunk is done: nothing left to return
        chunk.next = 0;
      } else {
        const size_t wanted =
            out.size() + std::min(records.size() - chunk.next,
                                  options_.max_poll_records - out.size());
        if (wanted > out.capacity()) {
          out.reserve(std::max(wanted, 2 * out.capacity()));
        }
        while (chunk.next < records.size() &&
               out.size() < options_.max_poll_records) {
          ConsumerRecord& r = records[chunk.next++];
          if (r.offset < s.position) continue;
          s.position = r.offset + 1;
          out.push_back(std::move(r));
        }
      }
      if (chunk.next < chunk.records.size()) break;
      s.position = std::max(s.position, chunk.next_offset);
    }
    buffered_bytes_ -= chunk.size;
    chunks_.pop_front();
    fetch_cv_.SignalAll();
  }
  return out;
}

absl::StatusOr<int64_t> Consumer::Impl::Position(
    const TopicPartition& tp) const {
  absl::MutexLock lock(&mu_);
  auto it = parts_.find(tp);
  if (it == parts_.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat(PartitionName(tp), " is not assigned"));
  }
  if (it->second.position < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(PartitionName(tp), " has no position yet (seek first)"));
  }
  return it->second.position;
}

int64_t Consumer::Impl::HighWatermark(const TopicPartition& tp) const {
  absl::MutexLock lock(&mu_);
  auto it = parts_.find(tp);
  return it == parts_.end() ? -1 : it->second.high_watermark;
}

// --- fetcher thread ----------------------------------------------------------

std::vector<Consumer::Impl::Want> Consumer::Impl::WaitForWants() {
  absl::MutexLock lock(&mu_);
  while (!closed_) {
    std::vector<Want> wants;
    absl::Time next_retry = absl::InfiniteFuture();
    const absl::Time now = absl::Now();
    if (buffered_bytes_ < options_.max_buffered_bytes) {
      for (const auto& [tp, s] : parts_) {
        if (s.fetch_position < 0 || s.stopped) continue;
        if (s.retry_after > now) {
          next_retry = std::min(next_retry, s.retry_after);
          continue;
        }
        wants.push_back(Want{tp, s.fetch_position, s.epoch});
      }
    }
    if (!wants.empty()) return wants;
    fetch_cv_.WaitWithDeadline(&mu_, next_retry);
  }
  return {};
}

void Consumer::Impl::RunFetcher() {
  while (true) {
    std::vector<Want> wants = WaitForWants();
    if (wants.empty()) return;  // closed
    // Rotate the request order: the broker lets only the first partition
    // with data exceed the byte limits (Kafka's rule), so each partition
    // takes that place in turn.
    std::rotate(wants.begin(), wants.begin() + (rotation_++ % wants.size()),
                wants.end());
    std::vector<std::unique_ptr<LeaderFetch>> fetches;
    for (const Want& want : wants) {
      absl::StatusOr<std::string> leader = metadata_.LeaderAddress(want.tp);
      if (!leader.ok()) {
        absl::MutexLock lock(&mu_);
        auto it = parts_.find(want.tp);
        if (it != parts_.end() && it->second.epoch == want.epoch) {
          it->second.retry_after =
              absl::Now() + absl::Milliseconds(options_.retry_backoff_ms);
        }
        continue;
      }
      LeaderFetch* fetch = nullptr;
      for (auto& f : fetches) {
        if (f->address == *leader) fetch = f.get();
      }
      if (fetch == nullptr) {
        fetches.push_back(std::make_unique<LeaderFetch>());
        fetch = fetches.back().get();
        fetch->address = *leader;
      }
      fetch->wants.push_back(want);
    }
    if (fetches.size() == 1 && options_.fetch_stream) {
      StreamFrom(*fetches[0]);
    } else if (!fetches.empty()) {
      FetchFrom(fetches);
    }
  }
}

void Consumer::Impl::BuildRequest(LeaderFetch& f) const {
  f.request.set_max_wait_ms(options_.fetch_max_wait_ms);
  f.request.set_min_bytes(options_.fetch_min_bytes);
  f.request.set_max_bytes(options_.fetch_max_bytes);
  v1::TopicFetchData* topic = nullptr;
  for (const Want& w : f.wants) {
    if (topic == nullptr || topic->name() != w.tp.topic) {
      topic = f.request.add_topics();
      topic->set_name(w.tp.topic);
    }
    v1::PartitionFetchData* p = topic->add_partitions();
    p->set_partition(w.tp.partition);
    p->set_fetch_offset(w.offset);
    p->set_partition_max_bytes(options_.max_partition_fetch_bytes);
    p->set_current_leader_epoch(-1);
  }
}

void Consumer::Impl::BackOff(const std::vector<Want>& wants) {
  absl::MutexLock lock(&mu_);
  for (const Want& w : wants) {
    auto it = parts_.find(w.tp);
    if (it == parts_.end() || it->second.epoch != w.epoch) continue;
    it->second.retry_after =
        absl::Now() + absl::Milliseconds(options_.retry_backoff_ms);
  }
}

void Consumer::Impl::StreamFrom(LeaderFetch& f) {
  BuildRequest(f);
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    active_.push_back(&f.ctx);
  }
  std::unique_ptr<grpc::ClientReader<v1::FetchResponse>> reader =
      pool_.Broker(f.address)->FetchStream(&f.ctx, f.request);
  bool restart = false;
  while (!restart && reader->Read(&f.response)) {
    for (auto& t : *f.response.mutable_topics()) {
      for (auto& p : *t.mutable_partitions()) {
        for (Want& w : f.wants) {
          if (w.tp.topic != t.name() || w.tp.partition != p.partition()) {
            continue;
          }
          // The broker drops a failed partition from the stream: restart
          // it (after HandlePartition's backoff) to fetch it again.
          if (HasError(p.error())) restart = true;
          HandlePartition(w, p);
          absl::MutexLock lock(&mu_);
          auto it = parts_.find(w.tp);
          if (it == parts_.end() || it->second.epoch != w.epoch) {
            restart = true;  // seeked or unassigned meanwhile
          } else {
            w.offset = it->second.fetch_position;
          }
        }
      }
    }
    // Stop reading while the buffer is full: gRPC's flow control then
    // holds the broker back (back pressure instead of unbounded memory).
    absl::MutexLock lock(&mu_);
    while (!closed_ && buffered_bytes_ >= options_.max_buffered_bytes) {
      fetch_cv_.Wait(&mu_);
    }
    if (closed_) restart = true;
  }
  if (restart) f.ctx.TryCancel();
  grpc::Status status = reader->Finish();
  {
    absl::MutexLock lock(&mu_);
    active_.clear();
  }
  if (status.ok() || status.error_code() == grpc::StatusCode::CANCELLED) {
    return;
  }
  if (!IsRetriableRpc(status)) {
    absl::MutexLock lock(&mu_);
    errors_.push_back(
        RpcToStatus(status, absl::StrCat("fetch stream from ", f.address)));
    poll_cv_.SignalAll();
  }
  BackOff(f.wants);
}

void Consumer::Impl::FetchFrom(
    std::vector<std::unique_ptr<LeaderFetch>>& fetches) {
  for (auto& f : fetches) {
    BuildRequest(*f);
    f->ctx.set_deadline(DeadlineAfterMs(options_.fetch_max_wait_ms +
                                        options_.request_timeout_ms));
  }
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    for (auto& f : fetches) active_.push_back(&f->ctx);
  }
  absl::BlockingCounter done(static_cast<int>(fetches.size()));
  for (auto& f : fetches) {
    LeaderFetch* raw = f.get();
    pool_.Broker(raw->address)
        ->async()
        ->Fetch(&raw->ctx, &raw->request, &raw->response,
                [raw, &done](grpc::Status s) {
                  raw->status = std::move(s);
                  done.DecrementCount();
                });
  }
  done.Wait();
  {
    absl::MutexLock lock(&mu_);
    active_.clear();
  }
  for (auto& f : fetches) {
    if (!f->status.ok()) {
      if (f->status.error_code() == grpc::StatusCode::CANCELLED) continue;
      const bool retriable = IsRetriableRpc(f->status);
      absl::MutexLock lock(&mu_);
      if (!retriable) {
        errors_.push_back(
            RpcToStatus(f->status, absl::StrCat("fetch from ", f->address)));
        poll_cv_.SignalAll();
      }
      for (const Want& w : f->wants) {
        auto it = parts_.find(w.tp);
        if (it == parts_.end() || it->second.epoch != w.epoch) continue;
        it->second.retry_after =
            absl::Now() + absl::Milliseconds(options_.retry_backoff_ms);
      }
      continue;
    }
    for (auto& t : *f->response.mutable_topics()) {
      for (auto& p : *t.mutable_partitions()) {
        for (const Want& w : f->wants) {
          if (w.tp.topic == t.name() && w.tp.partition == p.partition()) {
            HandlePartition(w, p);
          }
        }
      }
    }
  }
}

void Consumer::Impl::HandlePartition(const Want& want,
                                     v1::PartitionFetchResponse& r) {
  const TopicPartition& tp = want.tp;
  if (HasError(r.error())) {
    const v1::ErrorCode code = r.error().code();
    if (NeedsMetadataRefresh(code)) metadata_.Invalidate(tp.topic);
    if (code == v1::OFFSET_OUT_OF_RANGE &&
        options_.auto_offset_reset != OffsetReset::kNone) {
      // Reset per policy; SeekTo checks the partition is still assigned.
      absl::Status s =
          SeekTo({tp}, options_.auto_offset_reset == OffsetReset::kEarliest
                           ? kEarliestTimestamp
                           : kLatestTimestamp);
      if (s.ok()) return;
    }
    absl::MutexLock lock(&mu_);
    auto it = parts_.find(tp);
    if (it == parts_.end() || it->second.epoch != want.epoch) return;
    if (r.high_watermark() >= 0) it->second.high_watermark = r.high_watermark();
    if (r.error().retriable() && code != v1::OFFSET_OUT_OF_RANGE) {
      it->second.retry_after =
          absl::Now() + absl::Milliseconds(options_.retry_backoff_ms);
    } else {
      it->second.stopped = true;
      errors_.push_back(ErrorToStatus(
          r.error(),
          absl::StrCat(PartitionName(tp), " at offset ", want.offset)));
      poll_cv_.SignalAll();
    }
    return;
  }
  absl::StatusOr<int64_t> next = NextOffsetAfter(tp, r.records(), want.offset);
  Chunk chunk;
  chunk.tp = tp;
  chunk.epoch = want.epoch;
  chunk.from = want.offset;
  chunk.next_offset = want.offset;
  if (next.ok()) {
    chunk.size = r.records().size();
    if (chunk.size > 0) {
      chunk.bytes =
          std::make_shared<const std::string>(std::move(*r.mutable_records()));
    }
  }
  absl::MutexLock lock(&mu_);
  auto it = parts_.find(tp);
  if (it == parts_.end() || it->second.epoch != want.epoch) return;
  PartitionState& s = it->second;
  s.high_watermark = r.high_watermark();
  if (!next.ok()) {
    s.stopped = true;
    errors_.push_back(next.status());
    poll_cv_.SignalAll();
    return;
  }
  chunk.next_offset = *next;
  s.fetch_position = *next;
  if (chunk.size == 0 && chunk.next_offset == want.offset) return;
  buffered_bytes_ += chunk.size;
  chunks_.push_back(std::move(chunk));
  poll_cv_.SignalAll();
}

// --- Consumer
// ------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Consumer>> Consumer::Create(
    ConsumerOptions options) {
  if (options.bootstrap.empty()) {
    return absl::InvalidArgumentError("bootstrap address is empty");
  }
  if (options.fetch_max_wait_ms < 0 || options.fetch_max_bytes <= 0 ||
      options.max_partition_fetch_bytes <= 0 || options.max_poll_records == 0 ||
      options.request_timeout_ms <= 0) {
    return absl::InvalidArgumentError("invalid consumer options");
  }
  return std::unique_ptr<Consumer>(
      new Consumer(std::make_unique<Impl>(std::move(options))));
}

Consumer::Consumer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Consumer::~Consumer() = default;

absl::Status Consumer::Assign(const std::vector<TopicPartition>& partitions) {
  return impl_->Assign(partitions);
}
std::vector<TopicPartition> Consumer::Assignment() const {
  return impl_->Assignment();
}
absl::Status Consumer::Seek(const TopicPartition& tp, int64_t offset) {
  return impl_->Seek(tp, offset);
}
absl::Status Consumer::SeekToBeginning(
    const std::vector<TopicPartition>& partitions) {
  return impl_->SeekTo(partitions, kEarliestTimestamp);
}
absl::Status Consumer::SeekToEnd(
    const std::vector<TopicPartition>& partitions) {
  return impl_->SeekTo(partitions, kLatestTimestamp);
}
absl::Status Consumer::SeekToTimestamp(
    const std::vector<TopicPartition>& partitions, int64_t timestamp_ms) {
  if (timestamp_ms < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("negative timestamp ", timestamp_ms));
  }
  return impl_->SeekTo(partitions, timestamp_ms);
}
absl::StatusOr<std::vector<ConsumerRecord>> Consumer::Poll(
    absl::Duration timeout) {
  return impl_->Poll(timeout);
}
absl::StatusOr<int64_t> Consumer::Position(const TopicPartition& tp) const {
  return impl_->Position(tp);
}
int64_t Consumer::HighWatermark(const TopicPartition& tp) const {
  return impl_->HighWatermark(tp);
}
absl::StatusOr<std::map<TopicPartition, int64_t>> Consumer::BeginningOffsets(
    const std::vector<TopicPartition>& partitions) {
  return impl_->ListOffsets(partitions, kEarliestTimestamp);
}
absl::StatusOr<std::map<TopicPartition, int64_t>> Consumer::EndOffsets(
    const std::vector<TopicPartition>& partitions) {
  return impl_->ListOffsets(partitions, kLatestTimestamp);
}
absl::StatusOr<std::map<TopicPartition, int64_t>> Consumer::OffsetsForTimestamp(
    const std::vector<TopicPartition>& partitions, int64_t timestamp_ms) {
  return impl_->ListOffsets(partitions, timestamp_ms);
}
absl::StatusOr<std::vector<TopicPartition>> Consumer::PartitionsFor(
    const std::string& topic) {
  return impl_->PartitionsFor(topic);
}
void Consumer::Close() { impl_->Close(); }

}  // namespace runnel::client
