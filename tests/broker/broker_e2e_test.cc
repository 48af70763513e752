// End-to-end tests: a real runnel-broker process (BrokerProcess) driven
// through raw gRPC stubs of runnel.v1.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"

#include "common/crc32c.h"
#include "common/endian.h"
#include "log/record_batch.h"
#include "proto/admin_service.grpc.pb.h"
#include "proto/broker_service.grpc.pb.h"
#include "tests/broker/test_util.h"
#include "tests/testing/broker_process.h"
#include "tests/testing/scoped_temp_dir.h"
#include "tests/testing/status_matchers.h"

namespace runnel::broker {
namespace {

using ::runnel::broker::testing::MakeBatch;
using ::runnel::testing::BrokerProcess;
using ::runnel::testing::HttpGet;
using ::runnel::testing::IsOk;
using ::runnel::testing::StatusIs;
using ::testing::HasSubstr;

class BrokerE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto broker = BrokerProcess::Start({.data_dir = dir_.Sub("data")});
    ASSERT_THAT(broker, IsOk());
    broker_ = *std::move(broker);
    Connect();
  }

  void Connect() {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(128 << 20);
    args.SetMaxSendMessageSize(128 << 20);
    channel_ = grpc::CreateCustomChannel(
        broker_->address(), grpc::InsecureChannelCredentials(), args);
    stub_ = v1::Broker::NewStub(channel_);
    admin_ = v1::Admin::NewStub(channel_);
  }

  std::unique_ptr<grpc::ClientContext> Context(int timeout_s = 30) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::seconds(timeout_s));
    return ctx;
  }

  v1::TopicResult CreateTopic(const std::string& name, int partitions = 1,
                              std::map<std::string, std::string> configs = {}) {
    v1::CreateTopicsRequest req;
    v1::NewTopic* t = req.add_topics();
    t->set_name(name);
    t->set_num_partitions(partitions);
    for (const auto& [k, v] : configs) (*t->mutable_configs())[k] = v;
    v1::CreateTopicsResponse resp;
    grpc::Status s = admin_->CreateTopics(Context().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.topics_size() == 1 ? resp.topics(0) : v1::TopicResult();
  }

  v1::PartitionProduceResponse Produce(const std::string& topic,
                                       int32_t partition, std::string records,
                                       v1::Acks acks = v1::ACKS_ALL) {
    v1::ProduceRequest req;
    req.set_acks(acks);
    req.set_timeout_ms(10000);
    v1::TopicProduceData* t = req.add_topics();
    t->set_name(topic);
    v1::PartitionProduceData* p = t->add_partitions();
    p->set_partition(partition);
    p->set_records(std::move(records));
    v1::ProduceResponse resp;
    grpc::Status s = stub_->Produce(Context().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    if (resp.topics_size() != 1 || resp.topics(0).partitions_size() != 1) {
      ADD_FAILURE() << "bad produce response shape";
      return {};
    }
    return resp.topics(0).partitions(0);
  }

  v1::PartitionFetchResponse Fetch(const std::string& topic, int32_t partition,
                                   int64_t offset, int max_wait_ms = 0) {
    v1::FetchRequest req;
    req.set_max_wait_ms(max_wait_ms);
    req.set_min_bytes(1);
    v1::TopicFetchData* t = req.add_topics();
    t->set_name(topic);
    v1::PartitionFetchData* p = t->add_partitions();
    p->set_partition(partition);
    p->set_fetch_offset(offset);
    v1::FetchResponse resp;
    grpc::Status s = stub_->Fetch(Context().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    if (resp.topics_size() != 1 || resp.topics(0).partitions_size() != 1) {
      ADD_FAILURE() << "bad fetch response shape";
      return {};
    }
    return resp.topics(0).partitions(0);
  }

  v1::PartitionDescription Describe(const std::string& topic, int partition) {
    v1::DescribeTopicsRequest req;
    req.add_names(topic);
    v1::DescribeTopicsResponse resp;
    grpc::Status s = admin_->DescribeTopics(Context().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    if (resp.topics_size() != 1 ||
        resp.topics(0).partitions_size() <= partition) {
      ADD_FAILURE() << "topic " << topic << " not described";
      return {};
    }
    return resp.topics(0).partitions(partition);
  }

  runnel::testing::ScopedTempDir dir_;
  std::unique_ptr<BrokerProcess> broker_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Broker::Stub> stub_;
  std::unique_ptr<v1::Admin::Stub> admin_;
};

TEST_F(BrokerE2eTest, ProducedBatchIsFetchedBackByteExact) {
  ASSERT_EQ(CreateTopic("events", 2).error().code(), v1::NONE);
  const std::string batch = MakeBatch(10);
  v1::PartitionProduceResponse p = Produce("events", 1, batch);
  EXPECT_EQ(p.error().code(), v1::NONE) << p.error().message();
  EXPECT_EQ(p.base_offset(), 0);
  EXPECT_EQ(p.log_start_offset(), 0);
  v1::PartitionFetchResponse f = Fetch("events", 1, 0);
  EXPECT_EQ(f.error().code(), v1::NONE);
  EXPECT_EQ(f.records(), batch);
  EXPECT_EQ(f.high_watermark(), 10);
  EXPECT_EQ(f.log_end_offset(), 10);
  v1::PartitionDescription d = Describe("events", 1);
  EXPECT_EQ(d.high_watermark(), 10);
  EXPECT_EQ(d.log_end_offset(), 10);
  EXPECT_EQ(d.leader_id(), 0);
}

TEST_F(BrokerE2eTest, MalformedBatchesGetTypedErrorsAndLeaveTheLogUnchanged) {
  ASSERT_EQ(CreateTopic("t").error().code(), v1::NONE);
  ASSERT_EQ(Produce("t", 0, MakeBatch(2)).error().code(), v1::NONE);
  const std::string good = MakeBatch(3);
  std::string bad_crc = good;
  bad_crc[good.size() - 3] ^= 0x40;
  std::string bad_magic = good;
  bad_magic[log::kMagicPos] = 7;
  const std::pair<const char*, std::string> cases[] = {
      {"bad crc", bad_crc},
      {"truncated", good.substr(0, good.size() - 1)},
      {"wrong magic", bad_magic}};
  for (const auto& [name, bytes] : cases) {
    SCOPED_TRACE(name);
    v1::PartitionProduceResponse p = Produce("t", 0, bytes);
    EXPECT_EQ(p.error().code(), v1::CORRUPT_MESSAGE) << p.error().message();
    EXPECT_FALSE(p.error().retriable());
    EXPECT_EQ(p.base_offset(), -1);
    EXPECT_EQ(Describe("t", 0).log_end_offset(), 2);
    v1::PartitionFetchResponse f = Fetch("t", 0, 2);
    EXPECT_EQ(f.error().code(), v1::NONE);
    EXPECT_TRUE(f.records().empty());
  }
}

TEST_F(BrokerE2eTest, BadTopicsPartitionsAndOffsetsAreTyped) {
  ASSERT_EQ(CreateTopic("t", 2).error().code(), v1::NONE);
  EXPECT_EQ(CreateTopic("../x").error().code(), v1::INVALID_TOPIC);
  EXPECT_EQ(CreateTopic("t").error().code(), v1::TOPIC_ALREADY_EXISTS);
  v1::PartitionProduceResponse unknown = Produce("nope", 0, MakeBatch(1));
  EXPECT_EQ(unknown.error().code(), v1::UNKNOWN_TOPIC_OR_PARTITION);
  EXPECT_TRUE(unknown.error().retriable());
  EXPECT_EQ(Produce("t", 2, MakeBatch(1)).error().code(),
            v1::UNKNOWN_TOPIC_OR_PARTITION);
  EXPECT_EQ(Fetch("t", 5, 0).error().code(), v1::UNKNOWN_TOPIC_OR_PARTITION);
  ASSERT_EQ(Produce("t", 0, MakeBatch(3)).error().code(), v1::NONE);
  EXPECT_EQ(Fetch("t", 0, -1).error().code(), v1::OFFSET_OUT_OF_RANGE);
  EXPECT_EQ(Fetch("t", 0, 4).error().code(), v1::OFFSET_OUT_OF_RANGE);
  EXPECT_EQ(Fetch("t", 0, 4).log_end_offset(), 3);
}

TEST_F(BrokerE2eTest, OversizeBatchIsRecordTooLarge) {
  ASSERT_EQ(CreateTopic("t", 1, {{"max.message.bytes", "1000"}}).error().code(),
            v1::NONE);
  v1::PartitionProduceResponse p = Produce("t", 0, MakeBatch(1, 0, 0, 5000));
  EXPECT_EQ(p.error().code(), v1::RECORD_TOO_LARGE) << p.error().message();
  EXPECT_EQ(Describe("t", 0).log_end_offset(), 0);
}

TEST_F(BrokerE2eTest, ListOffsetsAndMetadata) {
  ASSERT_EQ(CreateTopic("t").error().code(), v1::NONE);
  ASSERT_EQ(Produce("t", 0, MakeBatch(4, 5000)).error().code(), v1::NONE);
  v1::ListOffsetsRequest req;
  v1::TopicListOffsets* t = req.add_topics();
  t->set_name("t");
  for (int64_t ts : {-2, -1, 5002}) {
    auto* p = t->add_partitions();
    p->set_partition(0);
    p->set_timestamp(ts);
  }
  v1::ListOffsetsResponse resp;
  ASSERT_TRUE(stub_->ListOffsets(Context().get(), req, &resp).ok());
  ASSERT_EQ(resp.topics(0).partitions_size(), 3);
  EXPECT_EQ(resp.topics(0).partitions(0).offset(), 0);
  EXPECT_EQ(resp.topics(0).partitions(1).offset(), 4);
  EXPECT_EQ(resp.topics(0).partitions(2).offset(), 2);
  EXPECT_EQ(resp.topics(0).partitions(0).timestamp(), -1);
  EXPECT_EQ(resp.topics(0).partitions(1).timestamp(), -1);
  EXPECT_EQ(resp.topics(0).partitions(2).timestamp(), 5002);

  v1::MetadataRequest mreq;
  v1::MetadataResponse mresp;
  ASSERT_TRUE(stub_->Metadata(Context().get(), mreq, &mresp).ok());
  ASSERT_EQ(mresp.brokers_size(), 1);
  EXPECT_EQ(mresp.brokers(0).port(), broker_->grpc_port());
  ASSERT_EQ(mresp.topics_size(), 1);
  EXPECT_EQ(mresp.topics(0).name(), "t");
  EXPECT_EQ(mresp.topics(0).partitions(0).leader_id(), 0);
  EXPECT_FALSE(mresp.cluster_id().empty());
}

TEST_F(BrokerE2eTest, LongPollFetchReturnsDataProducedWhileWaiting) {
  ASSERT_EQ(CreateTopic("t").error().code(), v1::NONE);
  const std::string batch = MakeBatch(3);
  v1::PartitionFetchResponse fetched;
  std::thread consumer([&] { fetched = Fetch("t", 0, 0, 20000); });
  ASSERT_EQ(Produce("t", 0, batch).error().code(), v1::NONE);
  consumer.join();
  EXPECT_EQ(fetched.error().code(), v1::NONE);
  EXPECT_EQ(fetched.records(), batch);
}

TEST_F(BrokerE2eTest, FetchStreamPushesNewBatches) {
  ASSERT_EQ(CreateTopic("t").error().code(), v1::NONE);
  v1::FetchRequest req;
  req.set_max_wait_ms(200);
  auto* p = req.add_topics();
  p->set_name("t");
  auto* pp = p->add_partitions();
  pp->set_partition(0);
  pp->set_fetch_offset(0);
  auto ctx = Context();
  std::unique_ptr<grpc::ClientReader<v1::FetchResponse>> reader =
      stub_->FetchStream(ctx.get(), req);
  std::string expected;
  for (int i = 0; i < 3; ++i) {
    std::string batch = MakeBatch(2, 1000, 2 * i);
    expected += batch;
    ASSERT_EQ(Produce("t", 0, batch).error().code(), v1::NONE);
  }
  std::string received;
  v1::FetchResponse resp;
  while (received.size() < expected.size() && reader->Read(&resp)) {
    for (const auto& t : resp.topics()) {
      for (const auto& part : t.partitions()) received += part.records();
    }
  }
  EXPECT_EQ(received, expected);
  ctx->TryCancel();
  reader->Finish().IgnoreError();
}

TEST_F(BrokerE2eTest, FetchStreamRotatesSoAnOversizedBatchIsNotStarved) {
  ASSERT_EQ(CreateTopic("rot", 2).error().code(), v1::NONE);
  // Partition 0: many small batches, one per response at this limit.
  // Partition 1: one batch larger than the limit, which only the first
  // partition with data may return.
  constexpr int kSmallBatches = 20;
  for (int i = 0; i < kSmallBatches; ++i) {
    ASSERT_EQ(Produce("rot", 0, MakeBatch(1, 1000, i, 100)).error().code(),
              v1::NONE);
  }
  const std::string big = MakeBatch(4, 1000, 0, 2000);
  ASSERT_EQ(Produce("rot", 1, big).error().code(), v1::NONE);
  v1::FetchRequest req;
  req.set_max_wait_ms(200);
  auto* t = req.add_topics();
  t->set_name("rot");
  for (int partition : {0, 1}) {
    auto* p = t->add_partitions();
    p->set_partition(partition);
    p->set_fetch_offset(0);
    p->set_partition_max_bytes(300);  // one small batch; less than `big`
  }
  auto ctx = Context();
  std::unique_ptr<grpc::ClientReader<v1::FetchResponse>> reader =
      stub_->FetchStream(ctx.get(), req);
  int responses = 0;
  bool got_big = false;
  v1::FetchResponse resp;
  while (!got_big && responses < kSmallBatches && reader->Read(&resp)) {
    ++responses;
    for (const auto& topic : resp.topics()) {
      for (const auto& part : topic.partitions()) {
        if (part.partition() == 1 && !part.records().empty()) {
          EXPECT_EQ(part.records(), big);
          got_big = true;
        }
      }
    }
  }
  // Without the rotation partition 1 would wait until partition 0 runs dry
  // (kSmallBatches responses).
  EXPECT_TRUE(got_big);
  EXPECT_LE(responses, 2);
  ctx->TryCancel();
  reader->Finish().IgnoreError();
}

TEST_F(BrokerE2eTest, AcknowledgedRecordsSurviveSigkill) {
  ASSERT_EQ(CreateTopic("t").error().code(), v1::NONE);
  std::vector<std::string> acked;
  for (int i = 0; i < 20; ++i) {
    std::string batch = MakeBatch(5, 1000 + i, 5 * i);
    v1::PartitionProduceResponse p = Produce("t", 0, batch);
    ASSERT_EQ(p.error().code(), v1::NONE);
    ASSERT_EQ(p.base_offset(), 5 * i);
    acked.push_back(batch);
  }
  RUNNEL_ASSERT_OK(broker_->Kill());
  RUNNEL_ASSERT_OK(broker_->Restart());
  Connect();
  std::string all;
  int64_t offset = 0;
  while (offset < 100) {
    v1::PartitionFetchResponse f = Fetch("t", 0, offset);
    ASSERT_EQ(f.error().code(), v1::NONE) << f.error().message();
    ASSERT_FALSE(f.records().empty()) << "missing data at " << offset;
    all += f.records();
    // Continue after the last whole batch returned.
    std::string_view rest(f.records());
    while (!rest.empty()) {
      auto view = log::RecordBatchView::Parse(rest);
      ASSERT_THAT(view, IsOk());
      offset = view->next_offset();
      rest.remove_prefix(view->size_bytes());
    }
  }
  std::string expected;
  for (const std::string& b : acked) expected += b;
  EXPECT_EQ(all, expected);
  EXPECT_EQ(Describe("t", 0).log_end_offset(), 100);
}

// A produce request for t-0 on a stream.
v1::ProduceStreamRequest StreamRequest(uint64_t id, std::string records,
                                       v1::Acks acks) {
  v1::ProduceStreamRequest req;
  req.set_correlation_id(id);
  req.mutable_request()->set_acks(acks);
  req.mutable_request()->set_timeout_ms(10000);
  v1::TopicProduceData* t = req.mutable_request()->add_topics();
  t->set_name("t");
  v1::PartitionProduceData* p = t->add_partitions();
  p->set_partition(0);
  p->set_records(std::move(records));
  return req;
}

TEST_F(BrokerE2eTest, ProduceStreamAppendsInOrderAndAnswersByCorrelationId) {
  ASSERT_EQ(CreateTopic("t").error().code(), v1::NONE);
  auto ctx = Context();
  auto stream = stub_->ProduceStream(ctx.get());
  constexpr uint64_t kFirst = 100, kCount = 20, kBad = 110;
  std::string bad = MakeBatch(2);
  bad[bad.size() - 3] ^= 0x40;  // CRC mismatch
  for (uint64_t id = kFirst; id < kFirst + kCount; ++id) {
    const v1::Acks acks = id % 2 == 0 ? v1::ACKS_ALL : v1::ACKS_LEADER;
    ASSERT_TRUE(stream->Write(
        StreamRequest(id, id == kBad ? bad : MakeBatch(2), acks)));
  }
  ASSERT_TRUE(stream->WritesDone());
  std::map<uint64_t, v1::PartitionProduceResponse> answers;
  v1::ProduceStreamResponse resp;
  while (stream->Read(&resp)) {
    ASSERT_EQ(resp.response().topics_size(), 1);
    ASSERT_EQ(resp.response().topics(0).partitions_size(), 1);
    EXPECT_TRUE(answers
                    .emplace(resp.correlation_id(),
                             resp.response().topics(0).partitions(0))
                    .second)
        << "answered twice: " << resp.correlation_id();
  }
  grpc::Status status = stream->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(answers.size(), kCount);
  // Appended in the order sent: each good request right after the one
  // before it; the bad one wrote nothing.
  int64_t next = 0;
  for (const auto& [id, p] : answers) {
    SCOPED_TRACE(id);
    if (id == kBad) {
      EXPECT_EQ(p.error().code(), v1::CORRUPT_MESSAGE);
      continue;
    }
    EXPECT_EQ(p.error().code(), v1::NONE) << p.error().message();
    EXPECT_EQ(p.base_offset(), next);
    next += 2;
  }
  EXPECT_EQ(Describe("t", 0).log_end_offset(), 2 * (kCount - 1));
}

// Large batches arrive in many HTTP/2 frames, which the broker appends from
// gRPC's slices without joining them (docs/wire-protocol.md): the batches
// read back byte-exact, and bad ones are refused, typed, with nothing
// written.
TEST_F(BrokerE2eTest, ProduceStreamLargeBatchesRoundTripAndBadOnesAreTyped) {
  ASSERT_EQ(CreateTopic("t").error().code(), v1::NONE);
  const std::string first = MakeBatch(300, 1'700'000'000'000, 0, 1000);
  const std::string second = MakeBatch(50, 1'700'000'000'000, 300, 5000);
  std::string bad_crc = second;
  bad_crc[bad_crc.size() - 3] ^= 0x40;
  std::string bad_record = second;
  // A record's length varint past the end, with the CRC made to match.
  bad_record[log::kBatchHeaderSize] = '\x7e';
  StoreBe32(bad_record.data() + log::kCrcPos,
            Crc32c(bad_record.data() + log::kAttributesPos,
                   bad_record.size() - log::kAttributesPos));
  std::string bad_magic = second;
  bad_magic[log::kMagicPos] = 1;
  const struct {
    std::string records;
    v1::ErrorCode code;
  } sent[] = {{first, v1::NONE},
              {bad_crc, v1::CORRUPT_MESSAGE},
              {bad_record, v1::INVALID_RECORD},
              {bad_magic, v1::CORRUPT_MESSAGE},
              {second.substr(0, second.size() - 1), v1::CORRUPT_MESSAGE},
              {second, v1::NONE}};
  auto ctx = Context();
  auto stream = stub_->ProduceStream(ctx.get());
  for (size_t i = 0; i < std::size(sent); ++i) {
    ASSERT_TRUE(stream->Write(StreamRequest(i, sent[i].records, v1::ACKS_ALL)));
  }
  ASSERT_TRUE(stream->WritesDone());
  v1::ProduceStreamResponse resp;
  size_t answered = 0;
  while (stream->Read(&resp)) {
    const uint64_t id = resp.correlation_id();
    ASSERT_LT(id, std::size(sent));
    const v1::PartitionProduceResponse& p =
        resp.response().topics(0).partitions(0);
    EXPECT_EQ(p.error().code(), sent[id].code)
        << id << ": " << p.error().message();
    ++answered;
  }
  ASSERT_TRUE(stream->Finish().ok());
  EXPECT_EQ(answered, std::size(sent));
  EXPECT_EQ(Describe("t", 0).log_end_offset(), 350);
  EXPECT_EQ(Fetch("t", 0, 0).records(), first + second);
}

// A message protobuf cannot parse ends the stream with INVALID_ARGUMENT;
// what came before it is answered and kept.
TEST_F(BrokerE2eTest, UnparsableProduceStreamMessageEndsTheStream) {
  ASSERT_EQ(CreateTopic("t").error().code(), v1::NONE);
  auto ctx = Context();
  auto stream = stub_->ProduceStream(ctx.get());
  ASSERT_TRUE(stream->Write(StreamRequest(1, MakeBatch(3), v1::ACKS_ALL)));
  v1::ProduceStreamRequest bad = StreamRequest(2, MakeBatch(3), v1::ACKS_ALL);
  // Not UTF-8: protobuf serializes it (and logs) but refuses to parse it.
  bad.mutable_request()->mutable_topics(0)->set_name("t\xff");
  stream->Write(bad);
  v1::ProduceStreamResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_EQ(resp.correlation_id(), 1u);
  EXPECT_EQ(resp.response().topics(0).partitions(0).error().code(), v1::NONE);
  EXPECT_FALSE(stream->Read(&resp));
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << status.error_message();
  EXPECT_EQ(Describe("t", 0).log_end_offset(), 3);
}

TEST_F(BrokerE2eTest, SigtermEndsAnOpenProduceStream) {
  ASSERT_EQ(CreateTopic("t").error().code(), v1::NONE);
  auto ctx = Context();
  auto stream = stub_->ProduceStream(ctx.get());
  ASSERT_TRUE(stream->Write(StreamRequest(1, MakeBatch(3), v1::ACKS_ALL)));
  v1::ProduceStreamResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_EQ(resp.correlation_id(), 1u);
  // The stream stays open, idle: the broker must still exit, and cleanly.
  absl::StatusOr<int> code = broker_->Stop();
  ASSERT_THAT(code, IsOk());
  EXPECT_EQ(*code, 0);
  EXPECT_FALSE(stream->Read(&resp));
  EXPECT_FALSE(stream->Finish().ok());
  RUNNEL_ASSERT_OK(broker_->Restart());
  Connect();
  EXPECT_EQ(Describe("t", 0).log_end_offset(), 3);
}

TEST_F(BrokerE2eTest, SigtermExitsZeroAndRestartKeepsTopicsAndData) {
  ASSERT_EQ(CreateTopic("kept", 3, {{"retention.ms", "-1"}}).error().code(),
            v1::NONE);
  const std::string batch = MakeBatch(7);
  ASSERT_EQ(Produce("kept", 2, batch, v1::ACKS_LEADER).error().code(),
            v1::NONE);
  // SIGTERM, then SIGINT: each a clean shutdown that the next start sees.
  for (const int signo : {SIGTERM, SIGINT}) {
    SCOPED_TRACE(signo);
    absl::StatusOr<int> code = broker_->Stop(std::chrono::seconds(30), signo);
    ASSERT_THAT(code, IsOk());
    EXPECT_EQ(*code, 0);
    EXPECT_THAT(
        broker_->StderrTail(),
        HasSubstr(signo == SIGTERM ? "received SIGTERM" : "received SIGINT"));
    EXPECT_THAT(broker_->StderrTail(), HasSubstr("stopped cleanly"));
    EXPECT_TRUE(std::filesystem::exists(dir_.Sub("data") + "/.clean_shutdown"));
    RUNNEL_ASSERT_OK(broker_->Restart());
    EXPECT_THAT(broker_->StderrTail(), HasSubstr("after a clean shutdown"));
    Connect();
    v1::ListTopicsResponse topics;
    ASSERT_TRUE(
        admin_->ListTopics(Context().get(), v1::ListTopicsRequest(), &topics)
            .ok());
    ASSERT_EQ(topics.topics_size(), 1);
    EXPECT_EQ(topics.topics(0).name(), "kept");
    EXPECT_EQ(topics.topics(0).num_partitions(), 3);
    EXPECT_EQ(Fetch("kept", 2, 0).records(), batch);
  }
}

// --config FILE: flags from a CLI11 config file, the command line winning
// over it; a file with an unknown key or a missing file stops the start.
TEST_F(BrokerE2eTest, FlagsComeFromAConfigFile) {
  const std::string config = dir_.Sub("broker.toml");
  std::ofstream(config) << "# a comment\n"
                           "broker-id = 7\n"
                           "max-message-bytes = 2000\n"
                           "log-retention-ms = 123456\n";
  runnel::testing::BrokerProcessOptions options;
  options.data_dir = dir_.Sub("from-config");
  options.extra_args = {"--config", config};
  auto configured = BrokerProcess::Start(options);
  ASSERT_THAT(configured, IsOk());
  broker_ = *std::move(configured);
  Connect();

  v1::MetadataResponse metadata;
  ASSERT_TRUE(
      stub_->Metadata(Context().get(), v1::MetadataRequest(), &metadata).ok());
  ASSERT_EQ(metadata.brokers_size(), 1);
  EXPECT_EQ(metadata.brokers(0).broker_id(), 7);
  ASSERT_EQ(CreateTopic("t").error().code(), v1::NONE);
  v1::DescribeTopicsRequest req;
  req.add_names("t");
  v1::DescribeTopicsResponse resp;
  ASSERT_TRUE(admin_->DescribeTopics(Context().get(), req, &resp).ok());
  ASSERT_EQ(resp.topics_size(), 1);
  std::map<std::string, std::string> configs;
  for (const auto& c : resp.topics(0).configs()) configs[c.name()] = c.value();
  EXPECT_EQ(configs["retention.ms"], "123456");
  EXPECT_EQ(configs["max.message.bytes"], "2000");
  EXPECT_EQ(Produce("t", 0, MakeBatch(1, 0, 0, 5000)).error().code(),
            v1::RECORD_TOO_LARGE);
  EXPECT_EQ(Describe("t", 0).log_end_offset(), 0);

  // The command line wins over the file.
  options.data_dir = dir_.Sub("overridden");
  options.extra_args = {"--config", config, "--broker-id", "9"};
  auto overridden = BrokerProcess::Start(options);
  ASSERT_THAT(overridden, IsOk());
  broker_ = *std::move(overridden);
  Connect();
  ASSERT_TRUE(
      stub_->Metadata(Context().get(), v1::MetadataRequest(), &metadata).ok());
  ASSERT_EQ(metadata.brokers_size(), 1);
  EXPECT_EQ(metadata.brokers(0).broker_id(), 9);

  const std::string bad = dir_.Sub("bad.toml");
  std::ofstream(bad) << "broker-id = 7\nno-such-flag = 1\n";
  int n = 0;
  for (const std::string& file : {bad, dir_.Sub("missing.toml")}) {
    SCOPED_TRACE(file);
    options.data_dir = dir_.Sub(absl::StrCat("refused", n++));
    options.extra_args = {"--config", file};
    auto refused = BrokerProcess::Start(options);
    EXPECT_THAT(refused.status(), StatusIs(absl::StatusCode::kInternal));
    EXPECT_THAT(std::string(refused.status().message()),
                HasSubstr(file == bad ? "no-such-flag" : "missing.toml"));
    EXPECT_FALSE(std::filesystem::exists(options.data_dir));
  }
}

TEST_F(BrokerE2eTest, HealthzAndMetricsAnswerOverHttp) {
  ASSERT_EQ(CreateTopic("t").error().code(), v1::NONE);
  ASSERT_EQ(Produce("t", 0, MakeBatch(1)).error().code(), v1::NONE);
  EXPECT_THAT(HttpGet(broker_->http_port(), "/healthz"), HasSubstr("ok"));
  std::string metrics = HttpGet(broker_->http_port(), "/metrics");
  EXPECT_THAT(metrics, HasSubstr("runnel_requests_total{api=\"Produce\"} 1"));
  EXPECT_THAT(
      metrics,
      HasSubstr("runnel_request_duration_seconds_bucket{api=\"Produce\""));
  EXPECT_THAT(
      metrics,
      HasSubstr(
          "runnel_partition_log_end_offset{topic=\"t\",partition=\"0\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("runnel_topic_bytes_in_total{topic=\"t\"}"));
}

TEST_F(BrokerE2eTest, RefusesToStartOnAPortInUseWithoutTouchingItsDataDir) {
  struct Case {
    std::string listen;
    std::string http_listen;
    std::string flag;
  };
  const Case cases[] = {
      {broker_->address(), "127.0.0.1:0", "--listen"},
      {"127.0.0.1:0", absl::StrCat("127.0.0.1:", broker_->http_port()),
       "--http-listen"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.flag);
    const std::string data_dir = dir_.Sub("second" + c.flag);
    runnel::testing::BrokerProcessOptions options;
    options.data_dir = data_dir;
    options.listen = c.listen;
    options.http_listen = c.http_listen;
    auto second = BrokerProcess::Start(options);
    ASSERT_THAT(second.status(), StatusIs(absl::StatusCode::kInternal));
    const std::string message(second.status().message());
    EXPECT_THAT(message, HasSubstr("exit code 1"));
    EXPECT_THAT(message, HasSubstr("cannot listen on"));
    EXPECT_THAT(message, HasSubstr(c.flag));
    EXPECT_THAT(message, HasSubstr("in use"));
    // Refused before the data directory was opened: nothing created, no
    // .lock, no recovery.
    EXPECT_FALSE(std::filesystem::exists(data_dir));
  }
  // The first broker still serves.
  EXPECT_EQ(CreateTopic("still-here").error().code(), v1::NONE);
  EXPECT_THAT(HttpGet(broker_->http_port(), "/healthz"), HasSubstr("ok"));
}

// Blocks until `pid` (a child) has exited, without reaping it.
void WaitUntilDead(pid_t pid) {
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT),
            0);
}

TEST(BrokerProcessTest, KeepsTheBrokersStderrInAFile) {
  runnel::testing::ScopedTempDir dir;
  auto broker = BrokerProcess::Start({.data_dir = dir.Sub("data")});
  ASSERT_THAT(broker, IsOk());
  EXPECT_EQ((*broker)->stderr_path(), dir.Sub("data") + ".stderr");
  EXPECT_THAT((*broker)->StderrTail(), HasSubstr("opened"));
  absl::StatusOr<int> code = (*broker)->Stop();
  ASSERT_THAT(code, IsOk());
  EXPECT_EQ(*code, 0);
  EXPECT_THAT((*broker)->StderrTail(), HasSubstr("stopped cleanly"));
}

TEST(BrokerProcessTest, StopReportsABrokerThatDiedDuringTheTest) {
  runnel::testing::ScopedTempDir dir;
  auto broker = BrokerProcess::Start({.data_dir = dir.Sub("data")});
  ASSERT_THAT(broker, IsOk());
  ::kill((*broker)->pid(), SIGKILL);  // a crash, not the test's own stop
  WaitUntilDead((*broker)->pid());
  absl::StatusOr<int> stopped = (*broker)->Stop();
  EXPECT_THAT(stopped.status(), StatusIs(absl::StatusCode::kInternal));
  const std::string message(stopped.status().message());
  EXPECT_THAT(message, HasSubstr("died during the test"));
  EXPECT_THAT(message, HasSubstr("signal 9"));
  EXPECT_FALSE((*broker)->running());
}

TEST(BrokerProcessTest, KillAndTheDestructorReportABrokerThatDied) {
  runnel::testing::ScopedTempDir dir;
  auto broker = BrokerProcess::Start({.data_dir = dir.Sub("data")});
  ASSERT_THAT(broker, IsOk());
  ::kill((*broker)->pid(), SIGUSR1);
  WaitUntilDead((*broker)->pid());
  EXPECT_THAT((*broker)->Kill(), StatusIs(absl::StatusCode::kInternal));

  auto second = BrokerProcess::Start({.data_dir = dir.Sub("data")});
  ASSERT_THAT(second, IsOk());
  ::kill((*second)->pid(), SIGUSR1);
  WaitUntilDead((*second)->pid());
  EXPECT_NONFATAL_FAILURE(second->reset(), "died during the test");
}

TEST(BrokerProcessTest, StartFailureCarriesTheBrokersStderr) {
  runnel::testing::ScopedTempDir dir;
  runnel::testing::BrokerProcessOptions options;
  options.data_dir = dir.Sub("data");
  options.extra_args = {"--no-such-flag"};
  auto broker = BrokerProcess::Start(options);
  ASSERT_FALSE(broker.ok());
  EXPECT_THAT(std::string(broker.status().message()),
              HasSubstr("no-such-flag"));
}

}  // namespace
}  // namespace runnel::broker
