// End-to-end tests of the client library against a real runnel-broker
// process (tests/testing/broker_process.h).

#include <signal.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include <grpcpp/grpcpp.h>

#include "client/metadata.h"
#include "client/rpc.h"
#include "common/check.h"
#include "log/record_batch.h"
#include "proto/broker_service.grpc.pb.h"
#include "tests/testing/broker_process.h"
#include "tests/testing/scoped_temp_dir.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/wait_for.h"

#include "runnel/admin.h"
#include "runnel/consumer.h"
#include "runnel/partitioner.h"
#include "runnel/producer.h"

namespace runnel::client {
namespace {

using ::runnel::testing::BrokerProcess;
using ::runnel::testing::BrokerProcessOptions;
using ::runnel::testing::HttpGet;
using ::runnel::testing::IsOk;
using ::runnel::testing::ScopedTempDir;
using ::runnel::testing::StatusIs;
using ::runnel::testing::WaitFor;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

std::unique_ptr<BrokerProcess> StartBroker(const std::string& data_dir) {
  BrokerProcessOptions options;
  options.data_dir = data_dir;
  auto broker = BrokerProcess::Start(options);
  RUNNEL_CHECK_MSG(broker.ok(), "broker did not start");
  return std::move(broker).value();
}

// The value of one sample line `name{labels} value` of the broker's
// /metrics, or -1 if there is none.
int64_t MetricValue(int http_port, const std::string& sample) {
  const std::string text = HttpGet(http_port, "/metrics");
  const std::string prefix = sample + " ";
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    int64_t value = 0;
    if (absl::ConsumePrefix(&line, prefix) && absl::SimpleAtoi(line, &value)) {
      return value;
    }
  }
  return -1;
}

// Established TCP connections of this machine whose remote end is 127.0.0.1
// on `port` (from /proc/net/tcp, and /proc/net/tcp6 for gRPC's dual-stack
// sockets with a v4-mapped address): the client side of connections to a
// broker listening there.
int ConnectionsTo(int port) {
  const std::string hex_port =
      absl::AsciiStrToUpper(absl::StrCat(absl::Hex(port, absl::kZeroPad4)));
  const std::pair<const char*, std::string> files[] = {
      {"/proc/net/tcp", absl::StrCat("0100007F:", hex_port)},
      {"/proc/net/tcp6",
       absl::StrCat("0000000000000000FFFF00000100007F:", hex_port)}};
  int n = 0;
  for (const auto& [path, remote] : files) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line)) {
      std::vector<absl::string_view> f =
          absl::StrSplit(line, ' ', absl::SkipEmpty());
      // sl local_address rem_address st ...; st 01 = ESTABLISHED.
      if (f.size() > 3 && f[2] == remote && f[3] == "01") ++n;
    }
  }
  return n;
}

class ClientE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScopedTempDir();
    broker_ = StartBroker(dir_->Sub("data")).release();
  }
  static void TearDownTestSuite() {
    delete broker_;
    delete dir_;
  }

  std::string Address() const { return broker_->address(); }

  void CreateTopic(const std::string& name, int partitions,
                   std::map<std::string, std::string> configs = {}) {
    auto admin = Admin::Create({Address()}).value();
    RUNNEL_ASSERT_OK(admin->CreateTopic({name, partitions, 1, configs}));
  }

  ProducerOptions Producing(Acks acks = Acks::kAll) const {
    ProducerOptions o;
    o.bootstrap = Address();
    o.acks = acks;
    o.linger_ms = 1;
    o.delivery_timeout_ms = 20000;
    o.request_timeout_ms = 10000;
    return o;
  }

  std::unique_ptr<Consumer> MakeConsumer(int32_t max_wait_ms = 100,
                                         bool stream = true) const {
    ConsumerOptions o;
    o.bootstrap = Address();
    o.auto_offset_reset = OffsetReset::kNone;
    o.fetch_max_wait_ms = max_wait_ms;
    o.fetch_stream = stream;
    return Consumer::Create(o).value();
  }

  // Polls until `n` records arrived (or 20 s passed).
  static std::vector<ConsumerRecord> PollN(Consumer& consumer, size_t n) {
    std::vector<ConsumerRecord> out;
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
      auto records = consumer.Poll(absl::Milliseconds(200));
      EXPECT_THAT(records, IsOk());
      if (!records.ok()) break;
      for (auto& r : *records) out.push_back(std::move(r));
    }
    return out;
  }

  static std::vector<TopicPartition> All(const std::string& topic, int n) {
    std::vector<TopicPartition> out;
    for (int p = 0; p < n; ++p) out.push_back({topic, p});
    return out;
  }

  // Long-polls an empty partition, produces one record from another
  // thread, and expects the poll to return it long before max_wait_ms.
  void ExpectWakeUp(const std::string& topic, bool stream);

  static ScopedTempDir* dir_;
  static BrokerProcess* broker_;
};

ScopedTempDir* ClientE2eTest::dir_ = nullptr;
BrokerProcess* ClientE2eTest::broker_ = nullptr;

TEST_F(ClientE2eTest, RoundTripKeepsKeysHeadersAndNulls) {
  CreateTopic("roundtrip", 3);
  auto producer = Producer::Create(Producing()).value();
  std::vector<ProducerRecord> sent = {
      {.topic = "roundtrip", .key = "user-1", .value = "v1"},
      {.topic = "roundtrip", .key = "", .value = ""},
      {.topic = "roundtrip", .key = "user-2", .value = std::nullopt},
      {.topic = "roundtrip",
       .partition = 2,
       .key = std::nullopt,
       .value = std::string("bin\0ary", 7),
       .headers = {{"h1", "x"}, {"h2", std::nullopt}, {"h3", ""}}},
  };
  std::vector<std::future<absl::StatusOr<RecordMetadata>>> futures;
  for (const auto& r : sent) futures.push_back(producer->Send(r));
  std::vector<RecordMetadata> acked;
  for (auto& f : futures) {
    auto md = f.get();
    ASSERT_THAT(md, IsOk());
    acked.push_back(*md);
  }
  // Keyed records land where Kafka's default partitioner puts them.
  EXPECT_EQ(acked[0].partition, PartitionForKey("user-1", 3));
  EXPECT_EQ(acked[1].partition, PartitionForKey("", 3));
  EXPECT_EQ(acked[2].partition, PartitionForKey("user-2", 3));
  EXPECT_EQ(acked[3].partition, 2);

  auto consumer = MakeConsumer();
  RUNNEL_ASSERT_OK(consumer->Assign(All("roundtrip", 3)));
  RUNNEL_ASSERT_OK(consumer->SeekToBeginning(All("roundtrip", 3)));
  std::vector<ConsumerRecord> got = PollN(*consumer, sent.size());
  ASSERT_EQ(got.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) {
    SCOPED_TRACE(i);
    const ConsumerRecord* match = nullptr;
    for (const auto& r : got) {
      if (r.partition == acked[i].partition && r.offset == acked[i].offset) {
        match = &r;
      }
    }
    ASSERT_NE(match, nullptr);
    EXPECT_EQ(match->topic, "roundtrip");
    EXPECT_EQ(match->key, sent[i].key);
    EXPECT_EQ(match->value, sent[i].value);
    EXPECT_THAT(match->headers, ElementsAreArray(sent[i].headers));
    EXPECT_EQ(match->timestamp_ms, acked[i].timestamp_ms);
  }
}

// Send copies the record's bytes before it returns: one record object can be
// changed and sent again at once (the bench does so), and each send keeps
// the bytes it had.
TEST_F(ClientE2eTest, ARecordMayBeReusedRightAfterSend) {
  CreateTopic("reuse", 1);
  auto producer = Producer::Create(Producing()).value();
  ProducerRecord record{.topic = "reuse", .key = "k", .value = "first"};
  record.headers = {{"h", "one"}};
  std::vector<std::future<absl::StatusOr<RecordMetadata>>> futures;
  futures.push_back(producer->Send(record));
  record.key = "key-two";
  record.value->assign("second, and longer than the first");
  record.headers[0].value = "two";
  futures.push_back(producer->Send(record));
  record.value.reset();
  record.headers.clear();
  futures.push_back(producer->Send(record));
  for (auto& f : futures) ASSERT_THAT(f.get(), IsOk());

  auto consumer = MakeConsumer();
  RUNNEL_ASSERT_OK(consumer->Assign(All("reuse", 1)));
  RUNNEL_ASSERT_OK(consumer->SeekToBeginning(All("reuse", 1)));
  std::vector<ConsumerRecord> got = PollN(*consumer, 3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].key, "k");
  EXPECT_EQ(got[0].value, "first");
  EXPECT_THAT(got[0].headers, ElementsAre(Header{"h", "one"}));
  EXPECT_EQ(got[1].key, "key-two");
  EXPECT_EQ(got[1].value, "second, and longer than the first");
  EXPECT_THAT(got[1].headers, ElementsAre(Header{"h", "two"}));
  EXPECT_EQ(got[2].key, "key-two");
  EXPECT_EQ(got[2].value, std::nullopt);
  EXPECT_TRUE(got[2].headers.empty());
}

TEST_F(ClientE2eTest, EveryCompressionCodecRoundTrips) {
  for (Compression c :
       {Compression::kNone, Compression::kGzip, Compression::kSnappy,
        Compression::kLz4, Compression::kZstd}) {
    // Longer than std::string keeps inline: the records' topic views point
    // into the fetch's one copy of it.
    const std::string topic =
        absl::StrCat("codec-round-trip-", static_cast<int>(c));
    SCOPED_TRACE(topic);
    CreateTopic(topic, 1);
    ProducerOptions o = Producing();
    o.compression = c;
    o.linger_ms = 50;  // several records per batch
    auto producer = Producer::Create(o).value();
    std::vector<std::future<absl::StatusOr<RecordMetadata>>> futures;
    for (int i = 0; i < 300; ++i) {
      futures.push_back(producer->Send(
          {.topic = topic,
           .key = absl::StrCat("k", i % 7),
           .value = std::string(100 + i, static_cast<char>('a' + i % 26)),
           .headers = {{"i", absl::StrCat(i)}}}));
    }
    for (auto& f : futures) ASSERT_THAT(f.get(), IsOk());
    auto consumer = MakeConsumer();
    RUNNEL_ASSERT_OK(consumer->Assign({{topic, 0}}));
    RUNNEL_ASSERT_OK(consumer->SeekToBeginning({{topic, 0}}));
    std::vector<ConsumerRecord> polled = PollN(*consumer, 300);
    // The records' views outlive the consumer and the records they were
    // copied from: each copy shares the fetched (or decompressed) bytes.
    consumer.reset();
    const std::vector<ConsumerRecord> got = polled;
    polled.clear();
    ASSERT_EQ(got.size(), 300u);
    for (int i = 0; i < 300; ++i) {
      EXPECT_EQ(got[i].topic, topic);
      EXPECT_EQ(got[i].offset, i);
      EXPECT_EQ(got[i].key, absl::StrCat("k", i % 7));
      EXPECT_EQ(got[i].value,
                std::string(100 + i, static_cast<char>('a' + i % 26)));
      ASSERT_EQ(got[i].headers.size(), 1u);
      EXPECT_EQ(got[i].headers[0].value, absl::StrCat(i));
    }
  }
}

TEST_F(ClientE2eTest, OrderIsKeptPerPartitionAndKey) {
  CreateTopic("ordering", 3);
  ProducerOptions o = Producing(Acks::kLeader);
  o.batch_size = 2048;  // many small batches per partition in flight
  auto producer = Producer::Create(o).value();
  constexpr int kRecords = 3000;
  std::atomic<int> failures{0};
  for (int i = 0; i < kRecords; ++i) {
    RUNNEL_ASSERT_OK(
        producer->Send({.topic = "ordering",
                        .key = absl::StrCat("key", i % 10),
                        .value = absl::StrCat(i)},
                       [&](const absl::StatusOr<RecordMetadata>& r) {
                         if (!r.ok()) ++failures;
                       }));
  }
  ASSERT_TRUE(producer->Flush(absl::Seconds(30)));
  EXPECT_EQ(failures.load(), 0);
  auto consumer = MakeConsumer();
  RUNNEL_ASSERT_OK(consumer->Assign(All("ordering", 3)));
  RUNNEL_ASSERT_OK(consumer->SeekToBeginning(All("ordering", 3)));
  auto got = PollN(*consumer, kRecords);
  ASSERT_EQ(got.size(), static_cast<size_t>(kRecords));
  std::map<std::string, int> last_seq;
  std::map<int32_t, int64_t> next_offset;
  for (const auto& r : got) {
    EXPECT_EQ(r.offset, next_offset[r.partition]++);  // contiguous, once
    EXPECT_EQ(r.partition, PartitionForKey(*r.key, 3));
    const int seq = std::stoi(std::string(*r.value));
    const std::string key(*r.key);
    auto it = last_seq.find(key);
    if (it != last_seq.end()) {
      EXPECT_GT(seq, it->second) << key;
    }
    last_seq[key] = seq;
  }
}

TEST_F(ClientE2eTest, ReplaysFromEarliestOffsetAndTimestamp) {
  CreateTopic("replay", 1);
  auto producer = Producer::Create(Producing()).value();
  const int64_t base = 1'700'000'000'000;
  std::vector<std::future<absl::StatusOr<RecordMetadata>>> futures;
  for (int i = 0; i < 100; ++i) {
    futures.push_back(producer->Send({.topic = "replay",
                                      .value = absl::StrCat(i),
                                      .timestamp_ms = base + i * 10}));
  }
  for (auto& f : futures) ASSERT_THAT(f.get(), IsOk());
  const TopicPartition tp{"replay", 0};
  auto consumer = MakeConsumer();
  RUNNEL_ASSERT_OK(consumer->Assign({tp}));

  RUNNEL_ASSERT_OK(consumer->SeekToBeginning({tp}));
  auto all = PollN(*consumer, 100);
  ASSERT_EQ(all.size(), 100u);
  EXPECT_EQ(all.front().value, "0");
  EXPECT_EQ(all.back().value, "99");
  EXPECT_EQ(all[42].timestamp_ms, base + 420);

  RUNNEL_ASSERT_OK(consumer->Seek(tp, 50));
  auto from_offset = PollN(*consumer, 50);
  ASSERT_EQ(from_offset.size(), 50u);
  EXPECT_EQ(from_offset.front().offset, 50);
  EXPECT_EQ(*consumer->Position(tp), 100);

  RUNNEL_ASSERT_OK(consumer->SeekToTimestamp({tp}, base + 295));
  auto from_time = PollN(*consumer, 70);
  ASSERT_EQ(from_time.size(), 70u);
  EXPECT_EQ(from_time.front().offset, 30);  // first timestamp >= base + 295

  // After the last timestamp: the end, nothing to read.
  RUNNEL_ASSERT_OK(consumer->SeekToTimestamp({tp}, base + 100000));
  EXPECT_EQ(*consumer->Position(tp), 100);

  // The unary Fetch path (used with several leaders) reads the same.
  auto unary = MakeConsumer(100, /*stream=*/false);
  RUNNEL_ASSERT_OK(unary->Assign({tp}));
  RUNNEL_ASSERT_OK(unary->Seek(tp, 90));
  auto tail = PollN(*unary, 10);
  ASSERT_EQ(tail.size(), 10u);
  EXPECT_EQ(tail.front().value, "90");
  EXPECT_EQ(tail.back().value, "99");
}

TEST_F(ClientE2eTest, PollReturnsAtMostMaxPollRecordsInOrder) {
  CreateTopic("maxpoll", 1);
  ProducerOptions po = Producing();
  po.linger_ms = 1000;  // one batch: every Poll below splits the same chunk
  auto producer = Producer::Create(po).value();
  std::vector<std::future<absl::StatusOr<RecordMetadata>>> futures;
  for (int i = 0; i < 250; ++i) {
    futures.push_back(
        producer->Send({.topic = "maxpoll", .value = absl::StrCat(i)}));
  }
  producer->Flush();
  for (auto& f : futures) ASSERT_THAT(f.get(), IsOk());
  const TopicPartition tp{"maxpoll", 0};
  for (const size_t max : {size_t{100}, size_t{250}, size_t{1000}}) {
    SCOPED_TRACE(max);
    ConsumerOptions o;
    o.bootstrap = Address();
    o.auto_offset_reset = OffsetReset::kNone;
    o.fetch_max_wait_ms = 100;
    o.max_poll_records = max;
    auto consumer = Consumer::Create(o).value();
    RUNNEL_ASSERT_OK(consumer->Assign({tp}));
    // From offset 10 too: the first chunk then starts below the position.
    for (const int64_t from : {int64_t{0}, int64_t{10}}) {
      RUNNEL_ASSERT_OK(consumer->Seek(tp, from));
      int64_t next = from;
      const auto deadline =
          std::chrono::steady_clock::now() + std::chrono::seconds(20);
      while (next < 250 && std::chrono::steady_clock::now() < deadline) {
        auto records = consumer->Poll(absl::Milliseconds(200));
        ASSERT_THAT(records, IsOk());
        EXPECT_LE(records->size(), max);
        for (const ConsumerRecord& r : *records) {
          ASSERT_EQ(r.offset, next);  // in order, each once
          EXPECT_EQ(r.value, absl::StrCat(next));
          ++next;
        }
      }
      EXPECT_EQ(next, 250);
      EXPECT_EQ(*consumer->Position(tp), 250);
    }
  }
}

TEST_F(ClientE2eTest, LongPollWakesUpWhenDataLands) {
  for (const bool stream : {true, false}) {
    SCOPED_TRACE(stream ? "FetchStream" : "Fetch");
    ExpectWakeUp(absl::StrCat("longpoll-", stream), stream);
  }
}

void ClientE2eTest::ExpectWakeUp(const std::string& topic, bool stream) {
  CreateTopic(topic, 1);
  const TopicPartition tp{topic, 0};
  auto consumer = MakeConsumer(/*max_wait_ms=*/20000, stream);
  RUNNEL_ASSERT_OK(consumer->Assign({tp}));
  RUNNEL_ASSERT_OK(consumer->SeekToEnd({tp}));
  const auto start = std::chrono::steady_clock::now();
  std::thread producer_thread([&] {
    auto producer = Producer::Create(Producing()).value();
    EXPECT_THAT(producer->Send({.topic = topic, .value = "wake"}).get(),
                IsOk());
  });
  std::vector<ConsumerRecord> got;
  while (got.empty() &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(15)) {
    auto records = consumer->Poll(absl::Seconds(15));
    ASSERT_THAT(records, IsOk());
    got = std::move(*records);
  }
  producer_thread.join();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].value, "wake");
  // Far below the 20 s the broker may hold the fetch: it woke on the append.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST_F(ClientE2eTest, FullBufferBlocksThenFailsClearlyAndLosesNothing) {
  CreateTopic("backpressure", 1);
  ProducerOptions o = Producing();
  o.buffer_memory = 64 << 10;
  o.batch_size = 8 << 10;
  o.max_block_ms = 300;
  auto producer = Producer::Create(o).value();
  ASSERT_THAT(producer->PartitionCount("backpressure"), IsOk());
  // A stopped broker acknowledges nothing, so the buffer fills up.
  RUNNEL_ASSERT_OK(broker_->Pause());
  std::atomic<int> acked{0};
  std::atomic<int> failed{0};
  int accepted = 0;
  absl::Status refused;
  std::chrono::steady_clock::duration blocked{};
  for (int i = 0; i < 10000 && refused.ok(); ++i) {
    const auto before = std::chrono::steady_clock::now();
    refused = producer->Send(
        {.topic = "backpressure", .value = std::string(1000, 'b')},
        [&](const absl::StatusOr<RecordMetadata>& r) {
          (r.ok() ? acked : failed).fetch_add(1);
        });
    blocked = std::chrono::steady_clock::now() - before;
    if (refused.ok()) ++accepted;
  }
  RUNNEL_ASSERT_OK(broker_->Resume());
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(std::string(refused.message()), HasSubstr("buffer"));
  EXPECT_GE(blocked, std::chrono::milliseconds(250));  // waited max.block.ms
  EXPECT_GT(accepted, 10);
  EXPECT_LT(accepted, 100);  // ~64 KiB of 1 KB records
  ASSERT_TRUE(producer->Flush(absl::Seconds(30)));
  EXPECT_EQ(acked.load(), accepted);
  EXPECT_EQ(failed.load(), 0);
  auto consumer = MakeConsumer();
  auto ends = consumer->EndOffsets({{"backpressure", 0}});
  ASSERT_THAT(ends, IsOk());
  EXPECT_EQ(ends->at({"backpressure", 0}), accepted);
}

TEST_F(ClientE2eTest, UnknownTopicOrPartitionIsRejected) {
  auto producer = Producer::Create(Producing()).value();
  EXPECT_THAT(producer->Send({.topic = "no-such-topic", .value = "x"}).get(),
              StatusIs(absl::StatusCode::kNotFound));
  CreateTopic("two", 2);
  EXPECT_THAT(
      producer->Send({.topic = "two", .partition = 2, .value = "x"}).get(),
      StatusIs(absl::StatusCode::kInvalidArgument));
  auto consumer = MakeConsumer();
  EXPECT_THAT(consumer->Assign({{"two", 5}}),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(consumer->Assign({{"no-such-topic", 0}}),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(ClientE2eTest, BadOffsetsAreReported) {
  CreateTopic("offsets", 1);
  const TopicPartition tp{"offsets", 0};
  auto producer = Producer::Create(Producing()).value();
  ASSERT_THAT(producer->Send({.topic = "offsets", .value = "only"}).get(),
              IsOk());
  auto consumer = MakeConsumer();
  RUNNEL_ASSERT_OK(consumer->Assign({tp}));
  EXPECT_THAT(consumer->Seek(tp, -1),
              StatusIs(absl::StatusCode::kInvalidArgument));
  RUNNEL_ASSERT_OK(consumer->Seek(tp, 1000));
  absl::StatusOr<std::vector<ConsumerRecord>> polled;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(10);
  do {
    polled = consumer->Poll(absl::Milliseconds(500));
  } while (polled.ok() && polled->empty() &&
           std::chrono::steady_clock::now() < deadline);
  EXPECT_THAT(polled, StatusIs(absl::StatusCode::kOutOfRange));
}

TEST_F(ClientE2eTest, OversizeRecordFailsAndLeavesLogUnchanged) {
  CreateTopic("oversize", 1, {{"max.message.bytes", "10000"}});
  auto producer = Producer::Create(Producing()).value();
  auto result =
      producer->Send({.topic = "oversize", .value = std::string(20000, 'x')})
          .get();
  EXPECT_THAT(result, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(result.status().message()),
              HasSubstr("RECORD_TOO_LARGE"));
  auto consumer = MakeConsumer();
  auto ends = consumer->EndOffsets({{"oversize", 0}});
  ASSERT_THAT(ends, IsOk());
  EXPECT_EQ(ends->at({"oversize", 0}), 0);
  // A record above max_request_size never leaves the client.
  EXPECT_THAT(
      producer->Send({.topic = "oversize", .value = std::string(2 << 20, 'x')})
          .get(),
      StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ClientE2eTest, InvalidTopicNamesAreRejected) {
  auto admin = Admin::Create({Address()}).value();
  for (const std::string& name :
       {std::string("../x"), std::string(""), std::string("."),
        std::string(".."), std::string("a b"), std::string("a/b"),
        std::string(250, 'n')}) {
    SCOPED_TRACE(name);
    EXPECT_THAT(admin->CreateTopic({name, 1}),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
  RUNNEL_EXPECT_OK(admin->CreateTopic({std::string(249, 'n'), 1}));
  EXPECT_THAT(admin->CreateTopic({std::string(249, 'n'), 1}),
              StatusIs(absl::StatusCode::kAlreadyExists));
}

// PartitionCount answers a thread's repeated question from a thread-local
// copy; every metadata change voids it, and two Metadata objects never see
// each other's copies.
TEST_F(ClientE2eTest, PartitionCountFollowsMetadataChanges) {
  CreateTopic("meta-count", 1);
  auto admin = Admin::Create({Address()}).value();
  // -1 for an error.
  auto count = [](client::Metadata& m, const std::string& topic) {
    absl::StatusOr<int32_t> n = m.PartitionCount(topic);
    return n.ok() ? *n : -1;
  };
  client::ChannelPool pool;
  client::Metadata first(&pool, Address(), 10000);
  EXPECT_EQ(count(first, "meta-count"), 1);
  EXPECT_EQ(count(first, "meta-count"), 1);

  RUNNEL_ASSERT_OK(admin->CreatePartitions("meta-count", 3));
  // Not refreshed yet: the cached view, as before the copy existed.
  EXPECT_EQ(count(first, "meta-count"), 1);
  // A second Metadata in the same thread asks the broker: 3.
  client::Metadata second(&pool, Address(), 10000);
  EXPECT_EQ(count(second, "meta-count"), 3);
  // And the first one still answers from its own view, not the copy.
  EXPECT_EQ(count(first, "meta-count"), 1);

  first.Invalidate("meta-count");
  EXPECT_EQ(count(first, "meta-count"), 3);

  RUNNEL_ASSERT_OK(admin->CreatePartitions("meta-count", 5));
  RUNNEL_ASSERT_OK(first.Refresh({"meta-count"}));
  EXPECT_EQ(count(first, "meta-count"), 5);

  // A failed lookup is not kept: a topic created afterwards is found.
  EXPECT_THAT(first.PartitionCount("meta-count-later"),
              StatusIs(absl::StatusCode::kNotFound));
  CreateTopic("meta-count-later", 2);
  EXPECT_EQ(count(first, "meta-count-later"), 2);
}

// metadata.max.age.ms: a sending producer picks up partitions added to its
// topic without an error first.
TEST_F(ClientE2eTest, SendingProducerPicksUpAddedPartitionsWithinMaxAge) {
  CreateTopic("grows", 1);
  ProducerOptions o = Producing();
  o.metadata_max_age_ms = 50;
  auto producer = Producer::Create(o).value();
  ASSERT_THAT(producer->Send({.topic = "grows", .value = "before"}).get(),
              IsOk());
  auto admin = Admin::Create({Address()}).value();
  RUNNEL_ASSERT_OK(admin->CreatePartitions("grows", 3));
  // Keeps sending (the sender refreshes while it has work) until the
  // producer reports the new count.
  const bool grown = WaitFor(
      [&] {
        EXPECT_THAT(producer->Send({.topic = "grows", .value = "v"}).get(),
                    IsOk());
        absl::StatusOr<int32_t> n = producer->PartitionCount("grows");
        return n.ok() && *n == 3;
      },
      std::chrono::seconds(20));
  ASSERT_TRUE(grown);
  auto on_new =
      producer->Send({.topic = "grows", .partition = 2, .value = "n"});
  absl::StatusOr<RecordMetadata> md = on_new.get();
  ASSERT_THAT(md, IsOk());
  EXPECT_EQ(md->partition, 2);
}

// NOT_LEADER / UNKNOWN_TOPIC_OR_PARTITION / BROKER_NOT_AVAILABLE from the
// broker make the producer drop its cached metadata of the topic, so the
// next look-up asks the broker instead of waiting for metadata.max.age.ms.
TEST_F(ClientE2eTest, ProducerRefreshesMetadataAfterAnUnknownTopicError) {
  CreateTopic("recreated", 1);
  ProducerOptions o = Producing();
  o.metadata_max_age_ms = 600000;  // no refresh by age during the test
  o.delivery_timeout_ms = 3000;
  o.retry_backoff_ms = 20;
  auto producer = Producer::Create(o).value();
  ASSERT_THAT(producer->Send({.topic = "recreated", .value = "a"}).get(),
              IsOk());
  auto admin = Admin::Create({Address()}).value();
  RUNNEL_ASSERT_OK(admin->DeleteTopic("recreated"));
  // Cached: the producer does not know yet.
  EXPECT_THAT(producer->PartitionCount("recreated"), IsOk());
  // The broker answers UNKNOWN_TOPIC_OR_PARTITION; the record fails.
  EXPECT_THAT(producer->Send({.topic = "recreated", .value = "b"}).get(),
              StatusIs(absl::StatusCode::kNotFound));
  CreateTopic("recreated", 3);
  // The error dropped the cached view: the new topic is seen at once.
  absl::StatusOr<int32_t> count = producer->PartitionCount("recreated");
  ASSERT_THAT(count, IsOk());
  EXPECT_EQ(*count, 3);
  auto md = producer->Send({.topic = "recreated", .partition = 2, .value = "c"})
                .get();
  ASSERT_THAT(md, IsOk());
  EXPECT_EQ(md->partition, 2);
  EXPECT_EQ(md->offset, 0);
}

// The consumer fetches ahead of Poll (so it keeps the broker busy) and stops
// once max_buffered_bytes of records wait for Poll.
TEST_F(ClientE2eTest, ConsumerPrefetchesBeforePollWithinItsBuffer) {
  constexpr int kRecords = 2000;
  constexpr size_t kBuffered = 128 << 10;
  constexpr int32_t kFetch = 32 << 10;
  CreateTopic("prefetch", 1);
  {
    ProducerOptions o = Producing(Acks::kLeader);
    o.batch_size = 8 << 10;
    auto producer = Producer::Create(o).value();
    for (int i = 0; i < kRecords; ++i) {
      RUNNEL_ASSERT_OK(producer->Send(
          {.topic = "prefetch",
           .value = absl::StrCat(i, ":", std::string(1000, 'p'))},
          [](const absl::StatusOr<RecordMetadata>&) {}));
    }
    ASSERT_TRUE(producer->Flush(absl::Seconds(30)));
  }
  const std::string bytes_out =
      "runnel_topic_bytes_out_total{topic=\"prefetch\"}";
  ASSERT_EQ(MetricValue(broker_->http_port(), bytes_out), 0);
  ConsumerOptions o;
  o.bootstrap = Address();
  o.auto_offset_reset = OffsetReset::kEarliest;
  o.fetch_stream = false;  // one request per fetch: bytes out are exact
  o.fetch_max_wait_ms = 100;
  o.max_buffered_bytes = kBuffered;
  o.max_partition_fetch_bytes = kFetch;
  auto consumer = Consumer::Create(o).value();
  const TopicPartition tp{"prefetch", 0};
  RUNNEL_ASSERT_OK(consumer->Assign({tp}));
  // No Poll yet: the fetcher fills the buffer on its own.
  ASSERT_TRUE(WaitFor(
      [&] {
        return MetricValue(broker_->http_port(), bytes_out) >=
               static_cast<int64_t>(kBuffered);
      },
      std::chrono::seconds(20)));
  // A fetch starts only below max_buffered_bytes and brings at most
  // max_partition_fetch_bytes (or one whole batch, 8 KiB here), so the
  // fetcher never ran ahead by more: 2 MB were there to take.
  EXPECT_LE(MetricValue(broker_->http_port(), bytes_out),
            static_cast<int64_t>(kBuffered + kFetch + (16 << 10)));
  std::vector<ConsumerRecord> got = PollN(*consumer, kRecords);
  ASSERT_EQ(got.size(), static_cast<size_t>(kRecords));
  for (int i = 0; i < kRecords; ++i) {
    ASSERT_EQ(got[i].offset, i);
    ASSERT_TRUE(got[i].value.has_value());
    ASSERT_TRUE(got[i].value->starts_with(absl::StrCat(i, ":")));
  }
}

TEST_F(ClientE2eTest, AcksNoneRecordsAreWrittenWithoutOffsets) {
  CreateTopic("acks-none", 1);
  constexpr int kRecords = 100;
  {
    auto producer = Producer::Create(Producing(Acks::kNone)).value();
    std::vector<std::future<absl::StatusOr<RecordMetadata>>> futures;
    for (int i = 0; i < kRecords; ++i) {
      futures.push_back(
          producer->Send({.topic = "acks-none", .value = absl::StrCat(i)}));
    }
    for (auto& f : futures) {
      absl::StatusOr<RecordMetadata> md = f.get();
      ASSERT_THAT(md, IsOk());
      EXPECT_EQ(md->offset, -1);  // the broker reports no offsets
      EXPECT_EQ(md->partition, 0);
    }
  }
  auto consumer = MakeConsumer();
  RUNNEL_ASSERT_OK(consumer->Assign({{"acks-none", 0}}));
  RUNNEL_ASSERT_OK(consumer->SeekToBeginning({{"acks-none", 0}}));
  std::vector<ConsumerRecord> got = PollN(*consumer, kRecords);
  ASSERT_EQ(got.size(), static_cast<size_t>(kRecords));
  for (int i = 0; i < kRecords; ++i) {
    EXPECT_EQ(got[i].offset, i);
    EXPECT_EQ(got[i].value, absl::StrCat(i));
  }
}

TEST_F(ClientE2eTest, AdminManagesTopicLifecycle) {
  auto admin = Admin::Create({Address()}).value();
  RUNNEL_ASSERT_OK(
      admin->CreateTopic({"admin-t", 2, 1, {{"retention.ms", "60000"}}}));
  auto listed = admin->ListTopics();
  ASSERT_THAT(listed, IsOk());
  bool found = false;
  for (const auto& t : *listed) {
    if (t.name == "admin-t") {
      found = true;
      EXPECT_EQ(t.num_partitions, 2);
    }
  }
  EXPECT_TRUE(found);
  RUNNEL_ASSERT_OK(
      admin->AlterTopicConfigs("admin-t", {{"retention.ms", "120000"}}));
  RUNNEL_ASSERT_OK(admin->CreatePartitions("admin-t", 4));
  auto described = admin->DescribeTopics({"admin-t"});
  ASSERT_THAT(described, IsOk());
  ASSERT_EQ(described->size(), 1u);
  EXPECT_EQ((*described)[0].partitions.size(), 4u);
  EXPECT_EQ((*described)[0].configs.at("retention.ms").value, "120000");
  EXPECT_FALSE((*described)[0].configs.at("retention.ms").is_default);
  EXPECT_THAT(admin->CreatePartitions("admin-t", 3),
              StatusIs(absl::StatusCode::kInvalidArgument));
  RUNNEL_ASSERT_OK(admin->DeleteTopic("admin-t"));
  EXPECT_THAT(admin->DescribeTopics({"admin-t"}),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(admin->DeleteTopic("admin-t"),
              StatusIs(absl::StatusCode::kNotFound));
}

// Sends one hand-made batch through a raw stub, bypassing the producer.
v1::PartitionProduceResponse ProduceRaw(const std::string& address,
                                        const std::string& topic,
                                        std::string records) {
  auto stub = v1::Broker::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  v1::ProduceRequest request;
  request.set_acks(v1::ACKS_ALL);
  auto* t = request.add_topics();
  t->set_name(topic);
  auto* p = t->add_partitions();
  p->set_partition(0);
  p->set_records(std::move(records));
  v1::ProduceResponse response;
  grpc::ClientContext ctx;
  grpc::Status s = stub->Produce(&ctx, request, &response);
  EXPECT_TRUE(s.ok()) << s.error_message();
  if (response.topics_size() == 0 ||
      response.topics(0).partitions_size() == 0) {
    return {};
  }
  return response.topics(0).partitions(0);
}

TEST_F(ClientE2eTest, MalformedBatchesGetTypedErrorsAndWriteNothing) {
  CreateTopic("malformed", 1);
  log::RecordBatchBuilder builder;
  builder.Append(1'700'000'000'000, std::nullopt, std::string("payload"));
  const std::string good = builder.Build().value();

  std::string bad_crc = good;
  bad_crc[bad_crc.size() - 1] ^= 0x01;
  std::string bad_magic = good;
  bad_magic[log::kMagicPos] = 1;
  std::string truncated = good.substr(0, good.size() - 3);

  for (const auto& [name, bytes] :
       std::vector<std::pair<std::string, std::string>>{
           {"bad crc", bad_crc},
           {"bad magic", bad_magic},
           {"truncated", truncated}}) {
    SCOPED_TRACE(name);
    v1::PartitionProduceResponse r = ProduceRaw(Address(), "malformed", bytes);
    EXPECT_THAT(r.error().code(),
                ::testing::AnyOf(v1::CORRUPT_MESSAGE, v1::INVALID_RECORD));
    EXPECT_FALSE(r.error().retriable());
    EXPECT_EQ(r.base_offset(), -1);
  }
  auto consumer = MakeConsumer();
  auto ends = consumer->EndOffsets({{"malformed", 0}});
  ASSERT_THAT(ends, IsOk());
  EXPECT_EQ(ends->at({"malformed", 0}), 0);
  // The intact batch still goes in at offset 0.
  EXPECT_EQ(ProduceRaw(Address(), "malformed", good).base_offset(), 0);
}

// Brokers of their own: these tests kill and restart them.
class ClientRestartTest : public ::testing::Test {
 protected:
  ScopedTempDir dir_;
};

TEST_F(ClientRestartTest, AcksAllRecordsSurviveSigkill) {
  auto broker = StartBroker(dir_.Sub("data"));
  auto admin = Admin::Create({broker->address()}).value();
  RUNNEL_ASSERT_OK(admin->CreateTopic({"durable", 1}));
  ProducerOptions o;
  o.bootstrap = broker->address();
  o.acks = Acks::kAll;
  o.linger_ms = 0;
  o.batch_size = 4096;
  auto producer = Producer::Create(o).value();
  std::vector<std::future<absl::StatusOr<RecordMetadata>>> futures;
  for (int i = 0; i < 2000; ++i) {
    futures.push_back(
        producer->Send({.topic = "durable", .value = absl::StrCat("r", i)}));
  }
  std::vector<int64_t> offsets;
  for (auto& f : futures) {
    auto md = f.get();
    ASSERT_THAT(md, IsOk());
    offsets.push_back(md->offset);
  }
  // SIGKILL right after the last acknowledgement: no clean shutdown.
  RUNNEL_ASSERT_OK(broker->Kill());
  producer.reset();
  RUNNEL_ASSERT_OK(broker->Restart());

  ConsumerOptions co;
  co.bootstrap = broker->address();
  co.auto_offset_reset = OffsetReset::kEarliest;
  co.fetch_max_wait_ms = 100;
  auto consumer = Consumer::Create(co).value();
  RUNNEL_ASSERT_OK(consumer->Assign({{"durable", 0}}));
  std::vector<ConsumerRecord> got;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (got.size() < 2000 && std::chrono::steady_clock::now() < deadline) {
    auto records = consumer->Poll(absl::Milliseconds(200));
    ASSERT_THAT(records, IsOk());
    for (auto& r : *records) got.push_back(std::move(r));
  }
  ASSERT_EQ(got.size(), 2000u);
  for (int i = 0; i < 2000; ++i) {
    EXPECT_EQ(got[i].offset, offsets[i]);
    EXPECT_EQ(got[i].value, absl::StrCat("r", i));
  }
  auto ends = consumer->EndOffsets({{"durable", 0}});
  ASSERT_THAT(ends, IsOk());
  EXPECT_EQ(ends->at({"durable", 0}), 2000);  // once: nothing duplicated
}

TEST_F(ClientRestartTest, ProducerRetriesWhileBrokerIsDown) {
  auto broker = StartBroker(dir_.Sub("data"));
  auto admin = Admin::Create({broker->address()}).value();
  RUNNEL_ASSERT_OK(admin->CreateTopic({"retried", 1}));
  ProducerOptions o;
  o.bootstrap = broker->address();
  o.linger_ms = 0;
  o.retry_backoff_ms = 20;
  o.delivery_timeout_ms = 30000;
  auto producer = Producer::Create(o).value();
  ASSERT_THAT(producer->Send({.topic = "retried", .value = "before"}).get(),
              IsOk());
  RUNNEL_ASSERT_OK(broker->Kill());
  // Sent while the broker is down: UNAVAILABLE is retried with backoff.
  std::vector<std::future<absl::StatusOr<RecordMetadata>>> futures;
  for (int i = 0; i < 50; ++i) {
    futures.push_back(
        producer->Send({.topic = "retried", .value = absl::StrCat(i)}));
  }
  RUNNEL_ASSERT_OK(broker->Restart());
  for (int i = 0; i < 50; ++i) {
    auto md = futures[i].get();
    ASSERT_THAT(md, IsOk());
    EXPECT_EQ(md->offset, i + 1);  // in order, after the first record
  }
}

TEST_F(ClientRestartTest,
       AStalledBrokerTimesOutTheStreamAndTheProducerRecovers) {
  auto broker = StartBroker(dir_.Sub("data"));
  auto admin = Admin::Create({broker->address()}).value();
  RUNNEL_ASSERT_OK(admin->CreateTopic({"stalled", 1}));
  ProducerOptions o;
  o.bootstrap = broker->address();
  o.linger_ms = 0;
  o.retry_backoff_ms = 20;
  o.request_timeout_ms = 200;  // a request is overdue after 1.2 s
  o.delivery_timeout_ms = 2000;
  auto producer = Producer::Create(o).value();
  ASSERT_THAT(producer->Send({.topic = "stalled", .value = "before"}).get(),
              IsOk());
  // Stopped, not dead: the connection stays up and nothing answers, so only
  // the producer's own deadline on the stream ends the requests. Pause
  // returns once every broker thread has stopped, so none of the records
  // below can still be answered.
  RUNNEL_ASSERT_OK(broker->Pause());
  std::vector<std::future<absl::StatusOr<RecordMetadata>>> futures;
  for (int i = 0; i < 5; ++i) {
    futures.push_back(
        producer->Send({.topic = "stalled", .value = absl::StrCat(i)}));
  }
  for (auto& f : futures) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(30)), std::future_status::ready);
    EXPECT_THAT(f.get(), StatusIs(absl::StatusCode::kDeadlineExceeded));
  }
  RUNNEL_ASSERT_OK(broker->Resume());
  auto after = producer->Send({.topic = "stalled", .value = "after"});
  ASSERT_EQ(after.wait_for(std::chrono::seconds(30)),
            std::future_status::ready);
  auto md = after.get();
  ASSERT_THAT(md, IsOk());
  EXPECT_GE(md->offset, 1);
}

// Reads `topic`-0 from the start until `want` records arrived (or 20 s).
std::vector<ConsumerRecord> ReadAll(const std::string& address,
                                    const std::string& topic, size_t want) {
  ConsumerOptions co;
  co.bootstrap = address;
  co.auto_offset_reset = OffsetReset::kEarliest;
  co.fetch_max_wait_ms = 100;
  auto consumer = Consumer::Create(co).value();
  EXPECT_THAT(consumer->Assign({{topic, 0}}), IsOk());
  std::vector<ConsumerRecord> got;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
    auto records = consumer->Poll(absl::Milliseconds(200));
    EXPECT_THAT(records, IsOk());
    if (!records.ok()) break;
    for (auto& r : *records) got.push_back(std::move(r));
  }
  return got;
}

int64_t EndOffset(const std::string& address, const std::string& topic) {
  ConsumerOptions co;
  co.bootstrap = address;
  auto consumer = Consumer::Create(co).value();
  auto ends = consumer->EndOffsets({{topic, 0}});
  EXPECT_THAT(ends, IsOk());
  return ends.ok() ? ends->at({topic, 0}) : -1;
}

// Sends `count` records "r<i>" to `topic`-0 and checks that every delivery
// succeeds, with offsets 0..count-1 in send order, and callbacks in order.
void SendAndExpectConsecutiveOffsets(Producer& producer,
                                     const std::string& topic, int count) {
  absl::Mutex mu;
  std::vector<int64_t> delivered;  // in callback order
  std::vector<std::future<absl::StatusOr<RecordMetadata>>> futures;
  for (int i = 0; i < count; ++i) {
    auto promise =
        std::make_shared<std::promise<absl::StatusOr<RecordMetadata>>>();
    futures.push_back(promise->get_future());
    RUNNEL_ASSERT_OK(producer.Send(
        {.topic = topic, .partition = 0, .value = absl::StrCat("r", i)},
        [&, promise](const absl::StatusOr<RecordMetadata>& md) {
          {
            absl::MutexLock lock(&mu);
            delivered.push_back(md.ok() ? md->offset : -1);
          }
          promise->set_value(md);
        }));
  }
  for (int i = 0; i < count; ++i) {
    auto md = futures[i].get();
    ASSERT_THAT(md, IsOk()) << "record " << i;
    EXPECT_EQ(md->offset, i);
  }
  absl::MutexLock lock(&mu);
  ASSERT_EQ(delivered.size(), static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) EXPECT_EQ(delivered[i], i);
}

void ExpectEachRecordOnceInOrder(const std::string& address,
                                 const std::string& topic, int count) {
  std::vector<ConsumerRecord> got = ReadAll(address, topic, count);
  ASSERT_EQ(got.size(), static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    EXPECT_EQ(got[i].offset, i);
    EXPECT_EQ(got[i].value, absl::StrCat("r", i));
  }
  EXPECT_EQ(EndOffset(address, topic), count);  // once: nothing duplicated
}

ProducerOptions RetryingProducer(const std::string& address) {
  ProducerOptions o;
  o.bootstrap = address;
  o.acks = Acks::kAll;
  o.linger_ms = 0;
  // Many small requests (about one batch each), several in flight.
  o.batch_size = 1024;
  o.max_request_size = 1100;
  o.retry_backoff_ms = 10;
  o.delivery_timeout_ms = 60000;
  o.request_timeout_ms = 10000;
  return o;
}

TEST_F(ClientRestartTest, IdempotentProducerWritesOnceWhenResponsesAreLost) {
  auto broker = StartBroker(dir_.Sub("data"));
  auto admin = Admin::Create({broker->address()}).value();
  RUNNEL_ASSERT_OK(admin->CreateTopic({"lost-acks", 1}));
  ProducerOptions o = RetryingProducer(broker->address());
  // Every third response is lost after the broker appended the records.
  auto responses = std::make_shared<std::atomic<int>>(0);
  o.testing_drop_response = [responses] { return ++*responses % 3 == 0; };
  constexpr int kRecords = 3000;
  {
    auto producer = Producer::Create(o).value();
    SendAndExpectConsecutiveOffsets(*producer, "lost-acks", kRecords);
  }
  EXPECT_GT(responses->load(), 20);
  ExpectEachRecordOnceInOrder(broker->address(), "lost-acks", kRecords);
}

TEST_F(ClientRestartTest, LostResponsesOfMultiBatchRequestsWriteOnce) {
  auto broker = StartBroker(dir_.Sub("data"));
  auto admin = Admin::Create({broker->address()}).value();
  RUNNEL_ASSERT_OK(admin->CreateTopic({"multi", 1}));
  ProducerOptions o = RetryingProducer(broker->address());
  o.batch_size = 256;         // about 20 records per batch...
  o.max_request_size = 4096;  // ...and about 15 batches per request
  auto responses = std::make_shared<std::atomic<int>>(0);
  o.testing_drop_response = [responses] { return ++*responses % 4 == 0; };
  constexpr int kRecords = 3000;
  {
    auto producer = Producer::Create(o).value();
    SendAndExpectConsecutiveOffsets(*producer, "multi", kRecords);
  }
  EXPECT_GT(responses->load(), 4);
  ExpectEachRecordOnceInOrder(broker->address(), "multi", kRecords);
}

TEST_F(ClientRestartTest, WithoutIdempotenceLostResponsesDuplicateRecords) {
  auto broker = StartBroker(dir_.Sub("data"));
  auto admin = Admin::Create({broker->address()}).value();
  RUNNEL_ASSERT_OK(admin->CreateTopic({"dups", 1}));
  ProducerOptions o = RetryingProducer(broker->address());
  o.enable_idempotence = false;
  auto responses = std::make_shared<std::atomic<int>>(0);
  o.testing_drop_response = [responses] { return ++*responses == 1; };
  auto producer = Producer::Create(o).value();
  ASSERT_THAT(producer->Send({.topic = "dups", .value = "once"}).get(), IsOk());
  // The lost response made the producer send the record a second time.
  EXPECT_EQ(EndOffset(broker->address(), "dups"), 2);
}

TEST_F(ClientRestartTest, IdempotentProducerWritesOnceAcrossBrokerSigkill) {
  auto broker = StartBroker(dir_.Sub("data"));
  auto admin = Admin::Create({broker->address()}).value();
  RUNNEL_ASSERT_OK(admin->CreateTopic({"killed", 1}));
  ProducerOptions o = RetryingProducer(broker->address());
  constexpr int kRecords = 4000;
  auto producer = Producer::Create(o).value();
  std::vector<std::future<absl::StatusOr<RecordMetadata>>> futures;
  absl::Notification half_acked;
  auto acked = std::make_shared<std::atomic<int>>(0);
  for (int i = 0; i < kRecords; ++i) {
    auto promise =
        std::make_shared<std::promise<absl::StatusOr<RecordMetadata>>>();
    futures.push_back(promise->get_future());
    RUNNEL_ASSERT_OK(producer->Send(
        {.topic = "killed", .partition = 0, .value = absl::StrCat("r", i)},
        [&half_acked, acked,
         promise](const absl::StatusOr<RecordMetadata>& md) {
          if (++*acked == kRecords / 4) half_acked.Notify();
          promise->set_value(md);
        }));
  }
  // SIGKILL while requests are in flight: some were appended (and fsynced)
  // but never answered; the producer retries them against the restarted
  // broker, which knows them from its log.
  half_acked.WaitForNotification();
  RUNNEL_ASSERT_OK(broker->Kill());
  RUNNEL_ASSERT_OK(broker->Restart());
  for (int i = 0; i < kRecords; ++i) {
    auto md = futures[i].get();
    ASSERT_THAT(md, IsOk()) << "record " << i;
    EXPECT_EQ(md->offset, i);
  }
  producer.reset();
  ExpectEachRecordOnceInOrder(broker->address(), "killed", kRecords);
}

// Connection reuse: a producer's metadata look-ups and its many produce
// requests share one connection to the broker.
TEST_F(ClientRestartTest, ProducerUsesOneConnectionToItsBroker) {
  auto broker = StartBroker(dir_.Sub("data"));
  ASSERT_EQ(ConnectionsTo(broker->grpc_port()), 0);
  {
    auto admin = Admin::Create({broker->address()}).value();
    RUNNEL_ASSERT_OK(admin->CreateTopic({"reused", 4}));
  }
  // The admin client's connection is gone once it is.
  ASSERT_TRUE(WaitFor([&] { return ConnectionsTo(broker->grpc_port()) == 0; },
                      std::chrono::seconds(20)));
  ProducerOptions o;
  o.bootstrap = broker->address();
  o.linger_ms = 0;
  auto producer = Producer::Create(o).value();
  for (int i = 0; i < 50; ++i) {
    // One request at a time, to every partition in turn.
    ASSERT_THAT(producer
                    ->Send({.topic = "reused",
                            .partition = i % 4,
                            .value = absl::StrCat(i)})
                    .get(),
                IsOk());
    ASSERT_THAT(producer->PartitionCount("reused"), IsOk());
  }
  EXPECT_EQ(ConnectionsTo(broker->grpc_port()), 1);
}

// SIGTERM while a producer sends with acks=all: the broker finishes what it
// has, exits 0 after a clean shutdown; the producer retries across the
// restart; every record is there once, in order, where it was acknowledged.
TEST_F(ClientRestartTest, SigtermUnderLoadKeepsEveryAcknowledgedRecordOnce) {
  constexpr int kMaxRecords = 200000;
  auto broker = StartBroker(dir_.Sub("data"));
  {
    auto admin = Admin::Create({broker->address()}).value();
    RUNNEL_ASSERT_OK(admin->CreateTopic({"under-load", 1}));
  }
  ProducerOptions o;
  o.bootstrap = broker->address();
  o.acks = Acks::kAll;
  o.linger_ms = 0;
  o.batch_size = 2048;
  o.retry_backoff_ms = 20;
  o.delivery_timeout_ms = 60000;
  auto producer = Producer::Create(o).value();
  std::vector<int64_t> offsets(kMaxRecords, -2);
  // At most kWindow records unacknowledged: so records are in flight when
  // the broker stops, and the sender waits while it is down.
  constexpr int kWindow = 1000;
  absl::Mutex mu;
  int sent = 0, acked = 0, failed = 0;
  bool stop = false;
  std::thread sender([&] {
    for (int i = 0; i < kMaxRecords; ++i) {
      {
        absl::MutexLock lock(&mu);
        struct Window {
          const bool* stop;
          const int* acked;
          int next;
        } w{&stop, &acked, i};
        mu.Await(absl::Condition(
            +[](Window* w) {
              return *w->stop || w->next < *w->acked + kWindow;
            },
            &w));
        if (stop) return;
      }
      absl::Status s =
          producer->Send({.topic = "under-load", .value = absl::StrCat("v", i)},
                         [&, i](const absl::StatusOr<RecordMetadata>& md) {
                           absl::MutexLock lock(&mu);
                           if (md.ok()) {
                             offsets[i] = md->offset;
                             ++acked;
                           } else {
                             ++failed;
                           }
                         });
      absl::MutexLock lock(&mu);
      if (!s.ok()) ++failed;
      ++sent;
    }
  });
  // Joins the sender however the test ends.
  auto join = absl::MakeCleanup([&] {
    {
      absl::MutexLock lock(&mu);
      stop = true;
    }
    sender.join();
  });
  auto count = [&](const int& n) {
    absl::MutexLock lock(&mu);
    return n;
  };
  ASSERT_TRUE(
      WaitFor([&] { return count(acked) >= 300; }, std::chrono::seconds(30)));
  absl::StatusOr<int> code = broker->Stop();
  ASSERT_THAT(code, IsOk());
  EXPECT_EQ(*code, 0);
  EXPECT_THAT(broker->StderrTail(), HasSubstr("stopped cleanly"));
  // The window fills up while the broker is down: those records are
  // acknowledged only after the restart, by retries.
  const int acked_at_stop = count(acked);
  ASSERT_TRUE(WaitFor([&] { return count(sent) >= acked_at_stop + kWindow; },
                      std::chrono::seconds(30)));
  EXPECT_EQ(count(acked), acked_at_stop);
  RUNNEL_ASSERT_OK(broker->Restart());
  EXPECT_THAT(broker->StderrTail(), HasSubstr("after a clean shutdown"));
  std::move(join).Invoke();
  ASSERT_TRUE(producer->Flush(absl::Seconds(60)));
  const int total = count(sent);
  EXPECT_EQ(count(failed), 0);
  EXPECT_EQ(count(acked), total);
  EXPECT_GT(total, acked_at_stop + kWindow - 1);
  producer.reset();

  ConsumerOptions co;
  co.bootstrap = broker->address();
  co.auto_offset_reset = OffsetReset::kEarliest;
  auto consumer = Consumer::Create(co).value();
  RUNNEL_ASSERT_OK(consumer->Assign({{"under-load", 0}}));
  std::vector<ConsumerRecord> got;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (got.size() < static_cast<size_t>(total) &&
         std::chrono::steady_clock::now() < deadline) {
    auto records = consumer->Poll(absl::Milliseconds(200));
    ASSERT_THAT(records, IsOk());
    for (auto& r : *records) got.push_back(std::move(r));
  }
  // Exactly once and in order: value i at offset i, which is where it was
  // acknowledged.
  ASSERT_EQ(got.size(), static_cast<size_t>(total));
  for (int i = 0; i < total; ++i) {
    ASSERT_EQ(got[i].offset, i);
    ASSERT_EQ(got[i].value, absl::StrCat("v", i));
    ASSERT_EQ(offsets[i], i);
  }
  auto ends = consumer->EndOffsets({{"under-load", 0}});
  ASSERT_THAT(ends, IsOk());
  EXPECT_EQ(ends->at({"under-load", 0}), total);
}

TEST_F(ClientRestartTest, SigtermRestartKeepsTopicsAndData) {
  auto broker = StartBroker(dir_.Sub("data"));
  {
    auto admin = Admin::Create({broker->address()}).value();
    RUNNEL_ASSERT_OK(admin->CreateTopic({"kept", 2}));
    ProducerOptions o;
    o.bootstrap = broker->address();
    auto producer = Producer::Create(o).value();
    for (int i = 0; i < 10; ++i) {
      ASSERT_THAT(producer
                      ->Send({.topic = "kept",
                              .partition = i % 2,
                              .value = absl::StrCat(i)})
                      .get(),
                  IsOk());
    }
  }
  auto code = broker->Stop();
  ASSERT_THAT(code, IsOk());
  EXPECT_EQ(*code, 0);
  RUNNEL_ASSERT_OK(broker->Restart());
  auto admin = Admin::Create({broker->address()}).value();
  auto described = admin->DescribeTopics({"kept"});
  ASSERT_THAT(described, IsOk());
  ASSERT_EQ((*described)[0].partitions.size(), 2u);
  EXPECT_EQ((*described)[0].partitions[0].high_watermark, 5);
  EXPECT_EQ((*described)[0].partitions[1].high_watermark, 5);
}

}  // namespace
}  // namespace runnel::client
