#include "tools/produce_command.h"

#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

#include "tools/cli_context.h"
#include "tools/client_cli.h"

#include "runnel/producer.h"

namespace runnel::tools {

namespace {

struct ProduceArgs {
  std::string topic;
  std::optional<std::string> key_separator;
  std::optional<int32_t> partition;
  std::string acks = "all";
  std::string compression = "none";
  std::vector<std::string> headers;
  bool print_offsets = false;
  int64_t linger_ms = 5;
  size_t batch_size = 256 << 10;
};

// Collects every line's outcome and prints "PARTITION<TAB>OFFSET" lines in
// input order as soon as the prefix before them is complete. Thread-safe
// (callbacks arrive on the producer's threads).
class OutcomePrinter {
 public:
  explicit OutcomePrinter(bool print_offsets) : print_(print_offsets) {}

  size_t Add() {
    absl::MutexLock lock(&mu_);
    results_.emplace_back(absl::UnknownError("pending"));
    done_.push_back(false);
    return results_.size() - 1;
  }

  void Set(size_t line, absl::StatusOr<client::RecordMetadata> result) {
    absl::MutexLock lock(&mu_);
    results_[line] = std::move(result);
    done_[line] = true;
    while (next_ < results_.size() && done_[next_]) {
      const auto& r = results_[next_];
      if (r.ok()) {
        if (print_)
          std::printf("%d\t%lld\n", r->partition,
                      static_cast<long long>(r->offset));
      } else {
        ++failed_;
        std::fprintf(stderr, "runnel produce: line %zu: %s\n", next_ + 1,
                     std::string(r.status().message()).c_str());
      }
      results_[next_] = absl::UnknownError("printed");  // free the memory
      ++next_;
    }
  }

  size_t failed() {
    absl::MutexLock lock(&mu_);
    return failed_;
  }

 private:
  const bool print_;
  absl::Mutex mu_;
  std::vector<absl::StatusOr<client::RecordMetadata>> results_
      ABSL_GUARDED_BY(mu_);
  std::vector<bool> done_ ABSL_GUARDED_BY(mu_);
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;
  size_t failed_ ABSL_GUARDED_BY(mu_) = 0;
};

void RunProduce(const ProduceArgs& a) {
  auto acks = client::ParseAcks(a.acks);
  if (!acks.ok()) return Fail("produce", acks.status(), 2);
  auto compression = client::ParseCompression(a.compression);
  if (!compression.ok()) return Fail("produce", compression.status(), 2);
  auto headers = ParseHeaders(a.headers);
  if (!headers.ok()) return Fail("produce", headers.status(), 2);
  if (a.key_separator && a.key_separator->empty()) {
    return Fail("produce",
                absl::InvalidArgumentError("--key-separator must not be empty"),
                2);
  }

  client::ProducerOptions options;
  options.bootstrap = GetCliContext().bootstrap;
  options.acks = *acks;
  options.compression = *compression;
  options.linger_ms = a.linger_ms;
  options.batch_size = a.batch_size;
  options.delivery_timeout_ms = 30000;
  options.request_timeout_ms = 10000;
  auto producer = client::Producer::Create(options);
  if (!producer.ok()) return Fail("produce", producer.status(), 2);
  // Unknown topics fail here, once, instead of once per line.
  if (auto count = (*producer)->PartitionCount(a.topic); !count.ok()) {
    return Fail("produce", count.status());
  }

  OutcomePrinter printer(a.print_offsets);
  std::ios::sync_with_stdio(false);  // getline is slow on a synced stdin
  std::string line;
  while (std::getline(std::cin, line)) {
    const size_t index = printer.Add();
    client::ProducerRecord record;
    record.topic = a.topic;
    record.partition = a.partition;
    record.headers = *headers;
    if (a.key_separator) {
      const size_t pos = line.find(*a.key_separator);
      if (pos == std::string::npos) {
        printer.Set(index, absl::InvalidArgumentError(absl::StrCat(
                               "no key separator '", *a.key_separator,
                               "' in the line")));
        continue;
      }
      record.key = line.substr(0, pos);
      record.value = line.substr(pos + a.key_separator->size());
    } else {
      record.value = std::move(line);
    }
    absl::Status s = (*producer)->Send(
        std::move(record),
        [&printer, index](const absl::StatusOr<client::RecordMetadata>& r) {
          printer.Set(index, r);
        });
    if (!s.ok()) printer.Set(index, s);
  }
  (*producer)->Close();
  std::fflush(stdout);
  if (printer.failed() > 0) {
    std::fprintf(stderr, "runnel produce: %zu record(s) failed\n",
                 printer.failed());
    SetExitCode(1);
  }
}

}  // namespace

void RegisterProduceCommand(CLI::App& app) {
  auto a = std::make_shared<ProduceArgs>();
  CLI::App* cmd = app.add_subcommand(
      "produce", "Send stdin lines as records, one record per line");
  cmd->add_option("TOPIC", a->topic, "Topic to write to")->required();
  cmd->add_option("--key-separator", a->key_separator,
                  "Split each line at the first S into key and value")
      ->type_name("S");
  cmd->add_option("--partition", a->partition,
                  "Write every record to partition P (default: by key, "
                  "sticky without key)")
      ->type_name("P")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--acks", a->acks, "all | leader | none")
      ->capture_default_str()
      ->check(CLI::IsMember({"all", "leader", "none", "-1", "1", "0"}));
  cmd->add_option("--compression", a->compression,
                  "none | gzip | snappy | lz4 | zstd")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "gzip", "snappy", "lz4", "zstd"}));
  cmd->add_option("--header", a->headers,
                  "Header K=V on every record "
                  "(repeatable)")
      ->type_name("K=V");
  cmd->add_flag("--print-offsets", a->print_offsets,
                "Print PARTITION<TAB>OFFSET per acknowledged record, in "
                "input order");
  cmd->add_option("--linger-ms", a->linger_ms, "Batching delay")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--batch-size", a->batch_size, "Batch size in bytes")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->footer(
      "Exit: 0 every record acknowledged, 1 some record failed "
      "(reasons on stderr), 2 bad arguments.");
  cmd->callback([a] { RunProduce(*a); });
}

}  // namespace runnel::tools
