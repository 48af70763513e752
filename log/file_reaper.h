#pragma once

// Deletes large files slowly, in the background. On a filesystem mounted
// with online discard (ext4 `discard`, as this project's machines are),
// unlinking a 1 GiB segment makes the next journal commit discard the whole
// extent, and every fsync waits for it: fdatasync calls of other files took
// 0.27–1.9 s right after such an unlink (docs/benchmarks.md, "Deleting
// segments without stalling fsync"). Shrinking the file with ftruncate in
// steps, with a pause between them, spreads the discards over many commits
// (worst fdatasync 5–15 ms in the same test). RocksDB's SstFileManager rate-
// limits deletions for the same reason.
//
// A queued path is touched only once its holder (the Segment a reader may
// still be reading through its descriptor) is gone, so a reader never sees
// a file shrink under it.

#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace runnel::log {

struct FileReaperOptions {
  // Bytes cut per ftruncate step, and the pause after each (16 MiB per
  // 20 ms: 800 MB/s, a 1 GiB segment in about 1.3 s).
  size_t step_bytes = 16 << 20;
  absl::Duration step_pause = absl::Milliseconds(20);
  // false: no thread; the owner calls DeleteReady() (tests).
  bool start_thread = true;
};

// Thread-safe.
class FileReaper {
 public:
  explicit FileReaper(FileReaperOptions options = {});
  FileReaper(const FileReaper&) = delete;
  FileReaper& operator=(const FileReaper&) = delete;
  ~FileReaper();  // Stop()

  // Queues `path` (a regular file, or a directory whose files are shrunk
  // and which is then removed with everything in it) for deletion once
  // `holder` has expired (an empty holder: at once). Best effort: errors
  // are logged, and a path that is gone already is fine. After Stop() the
  // path is deleted right away, unpaced.
  void Add(std::string path, std::weak_ptr<const void> holder = {});

  // Deletes, paced, every queued path whose holder has expired; returns how
  // many are still waiting for their holders.
  size_t DeleteReady();

  // Ends the thread, then deletes what is queued without pacing, whatever
  // the holders (the owner has closed its files). Idempotent; may be called
  // from several threads.
  void Stop();

  // Paths queued and not yet deleted (tests, metrics).
  size_t pending() const;

 private:
  struct Item {
    std::string path;
    std::weak_ptr<const void> holder;
    bool has_holder = false;
  };

  void Run();
  // Deletes `path`, a file or a directory tree; paced unless `fast`.
  void Delete(const std::string& path, bool fast) const;
  void ShrinkAndUnlink(const std::string& path, bool fast) const;

  const FileReaperOptions options_;
  mutable absl::Mutex mu_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  size_t deleting_ ABSL_GUARDED_BY(mu_) = 0;  // taken off the queue
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Mutex join_mu_;
  std::thread thread_;  // joined under join_mu_
};

}  // namespace runnel::log
