#pragma once

// The Runnel producer: asynchronous, batching, partitioning, retrying.
//
//   runnel::client::ProducerOptions options;
//   options.bootstrap = "127.0.0.1:7070";
//   auto producer = runnel::client::Producer::Create(options).value();
//   producer->Send({.topic = "events", .key = "user-1", .value = "hello"},
//                  [](const absl::StatusOr<RecordMetadata>& r) { ... });
//   producer->Flush();
//
// See docs/client.md for the delivery guarantees.

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "runnel/record.h"

namespace runnel {
class Clock;
}  // namespace runnel

namespace runnel::client {

// Kafka's producer settings, same names in snake_case.
struct ProducerOptions {
  // HOST:PORT of any broker; the others are learnt from metadata.
  std::string bootstrap = "127.0.0.1:7070";
  Acks acks = Acks::kAll;
  Compression compression = Compression::kNone;
  // A partition's batch is sent when it holds batch_size bytes or its first
  // record has waited linger_ms.
  size_t batch_size = 16384;
  int64_t linger_ms = 5;
  // Bytes of records accepted and not yet acknowledged. When full, Send
  // blocks up to max_block_ms, then fails with kResourceExhausted.
  size_t buffer_memory = 32 << 20;
  int64_t max_block_ms = 60000;
  // Largest request share per partition (and largest single record).
  size_t max_request_size = 1 << 20;
  // Retriable failures are retried after retry_backoff_ms until
  // delivery_timeout_ms has passed since the record was accepted.
  int64_t delivery_timeout_ms = 120000;
  int64_t request_timeout_ms = 30000;
  int64_t retry_backoff_ms = 100;
  // Kafka's metadata.max.age.ms: while it sends, the producer asks for fresh
  // metadata of its topics at least this often, so partitions added to a
  // topic (and moved leaders) are used without an error first. <= 0: only
  // after errors.
  int64_t metadata_max_age_ms = 300000;
  // Produce requests in flight per broker (across partitions).
  int max_in_flight_requests = 16;
  // Kafka's enable.idempotence (default true, as since Kafka 3.0): the
  // producer gets a producer id from the broker (InitProducerId, on the
  // first send) and stamps every batch with it and a per-partition sequence
  // number, so the broker drops the duplicates that retries create and
  // refuses gaps: each record is written once, in order. false: no ids or
  // sequences, and one request in flight per partition keeps the order.
  bool enable_idempotence = true;
  // Kafka's max.in.flight.requests.per.connection: produce requests in
  // flight per partition with enable_idempotence (1..5; Kafka's limit for
  // idempotence). Without idempotence a partition has one at a time.
  int max_in_flight_requests_per_connection = 5;
  // For tests: called for every Produce response the broker sent; true
  // makes the producer treat it as lost (UNAVAILABLE, retried) although the
  // broker handled the request. Called on gRPC threads.
  std::function<bool()> testing_drop_response;
  // Seed of the sticky partitioner (0: random).
  uint64_t partitioner_seed = 0;
  // Clock for record timestamps, linger and timeouts; nullptr: the system
  // clock. Borrowed: must outlive the producer.
  Clock* clock = nullptr;
};

// Thread-safe: Send, Flush and Close may be called from any thread.
// Delivery callbacks run on the producer's I/O threads, one at a time per
// partition and in send order per partition; they must be quick and must not
// call Flush or Close.
class Producer {
 public:
  // Connects lazily; fails only for invalid options (kInvalidArgument).
  static absl::StatusOr<std::unique_ptr<Producer>> Create(
      ProducerOptions options);
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;
  // Close() with no timeout.
  ~Producer();

  // Queues one record. OK: `callback` will run exactly once. Not OK: the
  // record was not queued and `callback` will not run. Errors: kNotFound for
  // an unknown topic, kInvalidArgument for a partition out of range or a
  // record larger than max_request_size or buffer_memory,
  // kResourceExhausted when the buffer stayed full for max_block_ms,
  // kDeadlineExceeded when metadata did not arrive within max_block_ms,
  // kFailedPrecondition after Close. The record's bytes are copied into the
  // batch before Send returns, so `record` may be changed or reused at once
  // (as Kafka's producer serializes in send()).
  absl::Status Send(const ProducerRecord& record, DeliveryCallback callback);
  // The same; every outcome, immediate or later, lands in the future.
  std::future<absl::StatusOr<RecordMetadata>> Send(
      const ProducerRecord& record);

  // Sends everything queued now and blocks until it is acknowledged or has
  // failed. False when `timeout` passed first.
  bool Flush(absl::Duration timeout = absl::InfiniteDuration());

  // Stops taking records, delivers (or fails) the queued ones within
  // `timeout`, then fails whatever is left with kCancelled and stops the I/O
  // threads. Idempotent.
  void Close(absl::Duration timeout = absl::InfiniteDuration());

  // Number of partitions of `topic` (from metadata, refreshed when unknown).
  absl::StatusOr<int32_t> PartitionCount(const std::string& topic);

  class Impl;

 private:
  explicit Producer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace runnel::client
