#pragma once

// MetadataStore in one text file in the data directory, rewritten atomically
// (tmp + fdatasync + rename + fsync dir) on every change. Format:
// docs/broker.md
// ("Topic metadata file").

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

#include "broker/metadata_store.h"

namespace runnel::broker {

// File name inside the data directory. Not "<topic>-<number>", so the
// LogManager never takes it for a partition.
inline constexpr char kTopicMetadataFileName[] = "topic-metadata";

// The file's contents. Serialization exposed for tests.
struct MetadataFileContents {
  std::string cluster_id;
  int64_t next_producer_id = 0;
  std::vector<TopicRecord> topics;
};
std::string FormatMetadataFile(const MetadataFileContents& contents);
absl::StatusOr<MetadataFileContents> ParseMetadataFile(absl::string_view text,
                                                       const std::string& path);

// Thread-safe: one mutex serializes every read and rewrite.
class LocalMetadataStore final : public MetadataStore {
 public:
  LocalMetadataStore(const LocalMetadataStore&) = delete;
  LocalMetadataStore& operator=(const LocalMetadataStore&) = delete;

  // Loads <data_dir>/topic-metadata, or creates it (with a fresh cluster id)
  // if missing. kDataLoss with path and line for a malformed or
  // checksum-failing file; I/O errors with the path.
  static absl::StatusOr<std::unique_ptr<LocalMetadataStore>> Open(
      const std::string& data_dir);

  absl::StatusOr<std::vector<TopicRecord>> ListTopics() override;
  absl::Status CreateTopic(const TopicRecord& topic) override;
  absl::Status UpdateTopic(const TopicRecord& topic) override;
  absl::Status DeleteTopic(const std::string& name) override;
  absl::StatusOr<int64_t> AllocateProducerIds(int64_t count) override;
  std::string cluster_id() const override;

  const std::string& path() const { return path_; }

 private:
  using State = MetadataFileContents;  // topics sorted by name

  LocalMetadataStore(std::string data_dir, State state);

  // Writes `next` durably, then makes it the current state.
  absl::Status Commit(State next) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string data_dir_;
  const std::string path_;
  mutable absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_);
};

}  // namespace runnel::broker
