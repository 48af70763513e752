// A small load generator for the broker alone (not a test, not in ctest):
// keeps N Produce calls of one pre-built batch in flight for a few seconds
// and prints records/s and MB/s. The real benchmark is `runnel bench`.
//
//   produce_probe ADDRESS RECORD_BYTES BATCH_BYTES ACKS(none|leader|all)
//                 [SECONDS=5] [INFLIGHT=16]

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"

#include "log/record_batch.h"
#include "proto/admin_service.grpc.pb.h"
#include "proto/broker_service.grpc.pb.h"

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr,
                 "usage: %s ADDRESS RECORD_BYTES BATCH_BYTES ACKS [SECONDS] "
                 "[INFLIGHT]\n",
                 argv[0]);
    return 2;
  }
  const std::string address = argv[1];
  const size_t record_bytes = std::strtoul(argv[2], nullptr, 10);
  const size_t batch_bytes = std::strtoul(argv[3], nullptr, 10);
  const std::string acks_name = argv[4];
  const int seconds = argc > 5 ? std::atoi(argv[5]) : 5;
  const int inflight = argc > 6 ? std::atoi(argv[6]) : 16;
  using namespace runnel;
  v1::Acks acks = acks_name == "none"     ? v1::ACKS_NONE
                  : acks_name == "leader" ? v1::ACKS_LEADER
                                          : v1::ACKS_ALL;

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(128 << 20);
  args.SetMaxSendMessageSize(128 << 20);
  args.SetInt("grpc.experimental.tcp_read_chunk_size", 1 << 20);
  args.SetInt("grpc.experimental.tcp_min_read_chunk_size", 1 << 20);
  auto channel = grpc::CreateCustomChannel(
      address, grpc::InsecureChannelCredentials(), args);
  auto admin = v1::Admin::NewStub(channel);
  auto stub = v1::Broker::NewStub(channel);
  {
    v1::CreateTopicsRequest req;
    auto* t = req.add_topics();
    t->set_name("probe");
    t->set_num_partitions(1);
    v1::CreateTopicsResponse resp;
    grpc::ClientContext ctx;
    admin->CreateTopics(&ctx, req, &resp);
  }
  log::RecordBatchBuilder builder;
  std::string value(record_bytes, 'x');
  int records = 0;
  while (builder.uncompressed_size_bytes() + record_bytes + 16 < batch_bytes) {
    builder.Append(0, std::nullopt, value);
    ++records;
  }
  auto batch = builder.Build();
  if (!batch.ok()) return 1;
  v1::ProduceRequest request;
  request.set_acks(acks);
  auto* p = request.add_topics();
  p->set_name("probe");
  auto* pp = p->add_partitions();
  pp->set_partition(0);
  pp->set_records(*batch);

  absl::Mutex mu;
  int outstanding = 0;
  int64_t done = 0, errors = 0;
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::seconds(seconds);
  struct Call {
    grpc::ClientContext ctx;
    v1::ProduceResponse resp;
  };
  while (std::chrono::steady_clock::now() < end) {
    {
      absl::MutexLock lock(&mu);
      auto has_room = [&] { return outstanding < inflight; };
      mu.Await(absl::Condition(&has_room));
      ++outstanding;
    }
    auto* call = new Call();
    stub->async()->Produce(
        &call->ctx, &request, &call->resp, [&, call](grpc::Status s) {
          bool ok = s.ok() && !call->resp.topics(0).partitions(0).has_error();
          delete call;
          absl::MutexLock lock(&mu);
          --outstanding;
          ++done;
          if (!ok) ++errors;
        });
  }
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(
        +[](int* o) { return *o == 0; }, &outstanding));
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::printf(
      "record_bytes=%zu batch_bytes=%zu records_per_batch=%d acks=%s "
      "inflight=%d: %.0f batches/s, %.0f records/s, %.1f MB/s, errors=%lld\n",
      record_bytes, batch->size(), records, acks_name.c_str(), inflight,
      done / secs, done * records / secs, done * batch->size() / secs / 1e6,
      static_cast<long long>(errors));
  return 0;
}
