#include "tools/consume_command.h"

#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

#include "tools/cli_context.h"
#include "tools/client_cli.h"
#include "tools/output_format.h"

#include "runnel/consumer.h"

namespace runnel::tools {

namespace {

struct ConsumeArgs {
  std::string topic;
  bool from_beginning = false;
  std::optional<int64_t> offset;
  std::optional<std::string> from_time;
  std::optional<int32_t> partition;
  std::optional<int64_t> max_messages;
  bool follow = false;
  bool print_key = false;
  bool print_offset = false;
  bool json = false;
};

void WriteRaw(const std::optional<std::string_view>& bytes) {
  if (bytes) {
    std::fwrite(bytes->data(), 1, bytes->size(), stdout);
  } else {
    std::fputs("null", stdout);
  }
}

void PrintRecord(const client::ConsumerRecord& r, const ConsumeArgs& a) {
  if (a.json) {
    std::string headers = "[";
    for (size_t i = 0; i < r.headers.size(); ++i) {
      if (i > 0) headers += ",";
      headers += JsonObject()
                     .String("key", r.headers[i].key)
                     .Bytes("value", r.headers[i].value)
                     .Build();
    }
    headers += "]";
    std::string line = JsonObject()
                           .String("topic", r.topic)
                           .Int("partition", r.partition)
                           .Int("offset", r.offset)
                           .Int("timestamp", r.timestamp_ms)
                           .Bytes("key", r.key)
                           .Bytes("value", r.value)
                           .Raw("headers", headers)
                           .Build();
    line += "\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
    return;
  }
  if (a.print_offset) {
    std::fprintf(stdout, "%d\t%lld\t", r.partition,
                 static_cast<long long>(r.offset));
  }
  if (a.print_key) {
    WriteRaw(r.key);
    std::fputc('\t', stdout);
  }
  WriteRaw(r.value);
  std::fputc('\n', stdout);
}

absl::Status Position(client::Consumer& consumer, const ConsumeArgs& a,
                      const std::vector<client::TopicPartition>& tps) {
  if (a.offset) {
    auto starts = consumer.BeginningOffsets(tps);
    if (!starts.ok()) return starts.status();
    auto ends = consumer.EndOffsets(tps);
    if (!ends.ok()) return ends.status();
    for (const auto& tp : tps) {
      const int64_t start = (*starts)[tp], end = (*ends)[tp];
      if (*a.offset < start || *a.offset > end) {
        return absl::OutOfRangeError(
            absl::StrCat("offset ", *a.offset, " out of range [", start, ", ",
                         end, "] for ", tp.topic, "-", tp.partition));
      }
      if (absl::Status s = consumer.Seek(tp, *a.offset); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  if (a.from_time) {
    absl::StatusOr<int64_t> ms = ParseTimeMs(*a.from_time);
    if (!ms.ok()) return ms.status();
    return consumer.SeekToTimestamp(tps, *ms);
  }
  if (a.from_beginning) return consumer.SeekToBeginning(tps);
  return consumer.SeekToEnd(tps);
}

void RunConsume(const ConsumeArgs& a) {
  const int used =
      (a.from_beginning ? 1 : 0) + (a.offset ? 1 : 0) + (a.from_time ? 1 : 0);
  if (used > 1) {
    return Fail("consume",
                absl::InvalidArgumentError(
                    "give at most one of --from-beginning, --offset, "
                    "--from-time"),
                2);
  }
  if (a.from_time) {
    if (auto ms = ParseTimeMs(*a.from_time); !ms.ok()) {
      return Fail("consume", ms.status(), 2);
    }
  }
  client::ConsumerOptions options;
  options.bootstrap = GetCliContext().bootstrap;
  // Bad offsets are errors for a human, not silently reset.
  options.auto_offset_reset = client::OffsetReset::kNone;
  auto consumer_or = client::Consumer::Create(options);
  if (!consumer_or.ok()) return Fail("consume", consumer_or.status(), 2);
  client::Consumer& consumer = **consumer_or;

  std::vector<client::TopicPartition> tps;
  if (a.partition) {
    tps.push_back({a.topic, *a.partition});
  } else {
    auto all = consumer.PartitionsFor(a.topic);
    if (!all.ok()) return Fail("consume", all.status());
    tps = *all;
  }
  if (absl::Status s = consumer.Assign(tps); !s.ok()) {
    return Fail("consume", s);
  }
  if (absl::Status s = Position(consumer, a, tps); !s.ok()) {
    return Fail("consume", s);
  }
  // Without --follow, stop at the high watermark seen now.
  std::map<client::TopicPartition, int64_t> ends;
  if (!a.follow) {
    auto e = consumer.EndOffsets(tps);
    if (!e.ok()) return Fail("consume", e.status());
    ends = *e;
  }
  auto reached_end = [&] {
    for (const auto& [tp, end] : ends) {
      absl::StatusOr<int64_t> pos = consumer.Position(tp);
      if (!pos.ok() || *pos < end) return false;
    }
    return true;
  };

  int64_t printed = 0;
  while (!a.max_messages || printed < *a.max_messages) {
    if (!a.follow && reached_end()) break;
    auto records = consumer.Poll(absl::Milliseconds(500));
    if (!records.ok()) {
      std::fflush(stdout);
      return Fail("consume", records.status());
    }
    for (const client::ConsumerRecord& r : *records) {
      if (!a.follow && r.offset >= ends[{std::string(r.topic), r.partition}])
        continue;
      PrintRecord(r, a);
      ++printed;
      if (a.max_messages && printed >= *a.max_messages) break;
    }
    if (a.follow) std::fflush(stdout);
  }
  std::fflush(stdout);
  consumer.Close();
}

}  // namespace

void RegisterConsumeCommand(CLI::App& app) {
  auto a = std::make_shared<ConsumeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "consume", "Print a topic's records, one value per line");
  cmd->add_option("TOPIC", a->topic, "Topic to read")->required();
  cmd->add_flag("--from-beginning", a->from_beginning,
                "Start at each partition's log start (default: the end)");
  cmd->add_option("--offset", a->offset,
                  "Start at offset N (in every selected partition)")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--from-time", a->from_time,
                  "Start at the first record at or after T (ISO 8601 or "
                  "epoch ms)")
      ->type_name("T");
  cmd->add_option("--partition", a->partition, "Read only partition P")
      ->type_name("P")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-messages", a->max_messages, "Stop after N records")
      ->type_name("N")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--follow", a->follow,
                "Keep waiting for new records (default: exit at the high "
                "watermark)");
  cmd->add_flag("--print-key", a->print_key, "Print KEY<TAB>VALUE");
  cmd->add_flag("--print-offset", a->print_offset,
                "Prefix PARTITION<TAB>OFFSET<TAB>");
  cmd->add_flag("--json", a->json,
                "One JSON object per record: topic, partition, offset, "
                "timestamp, key, value, headers");
  cmd->footer(
      "Exit: 0 done, 1 an error (unknown topic or partition, offset "
      "out of range...), 2 bad arguments.");
  cmd->callback([a] { RunConsume(*a); });
}

}  // namespace runnel::tools
