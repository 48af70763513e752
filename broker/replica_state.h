#pragma once

// Leadership and the high watermark of one partition: the seam replication
// plugs into. On a single broker (LocalReplicaState) this broker always leads,
// the high watermark is the durable end of the local log and acks=all means
// "fsynced here". The cluster issue adds an implementation that tracks the
// followers' log end offsets and the ISR.

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"

#include "log/partition_log.h"
#include "log/types.h"

namespace runnel::broker {

// Thread-safe.
class ReplicaState {
 public:
  virtual ~ReplicaState() = default;

  virtual bool is_leader() const = 0;
  virtual int32_t leader_id() const = 0;  // -1: no leader
  virtual int32_t leader_epoch() const = 0;
  virtual std::vector<int32_t> replicas() const = 0;
  virtual std::vector<int32_t> isr() const = 0;
  // Records below this offset are committed and visible to consumers.
  virtual log::Offset high_watermark() const = 0;

  // The leader appended records up to `last_offset`. The implementation
  // makes the high watermark advance over them eventually (local: asks for
  // an fsync) and calls the hw listener when it does.
  virtual void OnLeaderAppend(log::Offset last_offset) = 0;
  // Calls `done` once every record <= `last_offset` is committed (acks=all).
  // `done` may run on any thread (the log's I/O thread) and must not block.
  virtual void WhenCommitted(log::Offset last_offset,
                             std::function<void(absl::Status)> done) = 0;
};

// Single broker: this broker leads with a fixed epoch, HW = durable offset.
// Thread-safe. `log` must outlive this object; `on_hw_advanced` must be
// cheap and non-blocking (it runs on the log's I/O thread).
class LocalReplicaState final : public ReplicaState {
 public:
  LocalReplicaState(log::PartitionLog* log, int32_t broker_id,
                    int32_t leader_epoch, std::function<void()> on_hw_advanced)
      : log_(log),
        broker_id_(broker_id),
        leader_epoch_(leader_epoch),
        on_hw_advanced_(std::move(on_hw_advanced)) {}
  LocalReplicaState(const LocalReplicaState&) = delete;
  LocalReplicaState& operator=(const LocalReplicaState&) = delete;

  bool is_leader() const override { return true; }
  int32_t leader_id() const override { return broker_id_; }
  int32_t leader_epoch() const override { return leader_epoch_; }
  std::vector<int32_t> replicas() const override { return {broker_id_}; }
  std::vector<int32_t> isr() const override { return {broker_id_}; }
  log::Offset high_watermark() const override { return log_->durable_offset(); }

  void OnLeaderAppend(log::Offset last_offset) override {
    // The HW is the durable end, so every append asks for durability; the
    // log's group commit merges these requests into few fsyncs.
    log_->WhenDurable(last_offset, [cb = on_hw_advanced_](absl::Status s) {
      if (s.ok()) cb();
    });
  }
  void WhenCommitted(log::Offset last_offset,
                     std::function<void(absl::Status)> done) override {
    log_->WhenDurable(last_offset, std::move(done));
  }

 private:
  log::PartitionLog* const log_;
  const int32_t broker_id_;
  const int32_t leader_epoch_;
  const std::function<void()> on_hw_advanced_;
};

}  // namespace runnel::broker
