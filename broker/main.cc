// runnel-broker: one Runnel broker process. Flags and the config file are
// described in docs/broker.md.

#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

#include "broker/broker_core.h"
#include "broker/grpc_services.h"
#include "broker/http_server.h"
#include "broker/topic_config.h"
#include "common/process_tuning.h"
#include "common/unique_fd.h"
#include "log/log_config.h"

namespace runnel::broker {
namespace {

struct Flags {
  std::string data_dir = "./data";
  std::string listen = "127.0.0.1:7070";
  std::string http_listen = "127.0.0.1:7071";
  std::string advertised_host;
  int32_t broker_id = 0;
  int32_t num_partitions = 1;
  int io_threads = 1;
  // Measured: -10 gave 4-11 % more acks=all throughput with client and
  // broker sharing 2 vCPUs (docs/benchmarks.md).
  int io_thread_nice = -10;
  int recovery_threads = 2;
  int64_t segment_bytes = log::LogConfig{}.segment_bytes;
  int64_t segment_ms = log::LogConfig{}.segment_ms;
  int64_t retention_ms = log::LogConfig{}.retention_ms;
  int64_t retention_bytes = log::LogConfig{}.retention_bytes;
  int64_t retention_check_interval_ms = 300000;
  int64_t checkpoint_interval_ms = 60000;
  int64_t producer_id_expiration_ms = 86400000;
  int64_t producer_id_expiration_check_interval_ms = 600000;
  int32_t max_message_bytes = log::LogConfig{}.max_message_bytes;
  bool direct_io = log::LogConfig{}.direct_io;
  std::string log_level = "info";
  int shutdown_timeout_ms = 10000;
};

void AddFlags(CLI::App& app, Flags& f) {
  app.set_config("--config", "",
                 "Read flags from this file (TOML or INI: key = value)");
  // A key that names no flag (a typo) stops the start instead of being
  // ignored, as an unknown flag on the command line does.
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.add_option("--data-dir", f.data_dir,
                 "Data directory (logs and topic metadata)")
      ->capture_default_str();
  app.add_option("--listen", f.listen,
                 "gRPC listen address host:port (port 0: any)")
      ->capture_default_str();
  app.add_option(
         "--http-listen", f.http_listen,
         "HTTP admin address host:port for /metrics and /healthz (port 0: any)")
      ->capture_default_str();
  app.add_option(
      "--advertised-host", f.advertised_host,
      "Host name clients are told to connect to (default: the --listen host)");
  app.add_option("--broker-id", f.broker_id, "This broker's id")
      ->capture_default_str();
  app.add_option("--num-partitions", f.num_partitions,
                 "Default partition count of new topics")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_option("--num-io-threads", f.io_threads,
                 "Log I/O threads (one io_uring each)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--io-thread-nice", f.io_thread_nice,
                 "Nice value of the log I/O threads and their io_uring "
                 "workers (needs CAP_SYS_NICE below 0; 0: the process's)")
      ->check(CLI::Range(-20, 19))
      ->capture_default_str();
  app.add_option("--num-recovery-threads", f.recovery_threads,
                 "Threads opening and recovering partitions at start")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--log-segment-bytes", f.segment_bytes,
                 "Default segment.bytes")
      ->capture_default_str();
  app.add_option("--log-segment-ms", f.segment_ms, "Default segment.ms")
      ->capture_default_str();
  app.add_option("--log-retention-ms", f.retention_ms,
                 "Default retention.ms (-1: forever)")
      ->capture_default_str();
  app.add_option("--log-retention-bytes", f.retention_bytes,
                 "Default retention.bytes per partition (-1: unlimited)")
      ->capture_default_str();
  app.add_option("--log-retention-check-interval-ms",
                 f.retention_check_interval_ms, "Period of the retention pass")
      ->capture_default_str();
  app.add_option("--log-checkpoint-interval-ms", f.checkpoint_interval_ms,
                 "Period of the recovery-point checkpoint")
      ->capture_default_str();
  app.add_option("--producer-id-expiration-ms", f.producer_id_expiration_ms,
                 "Forget an idempotent producer's state in a partition it "
                 "has not written to for this long "
                 "(producer.id.expiration.ms)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--producer-id-expiration-check-interval-ms",
                 f.producer_id_expiration_check_interval_ms,
                 "Least time between two such checks of a partition")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--max-message-bytes", f.max_message_bytes,
                 "Default max.message.bytes (largest batch)")
      ->capture_default_str();
  app.add_option("--log-direct-io", f.direct_io,
                 "Append with O_DIRECT (true/false)")
      ->capture_default_str();
  app.add_option("--log-level", f.log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
  app.add_option("--shutdown-timeout-ms", f.shutdown_timeout_ms,
                 "How long SIGTERM waits for in-flight requests")
      ->capture_default_str();
}

absl::StatusOr<log::LogConfig> DefaultConfig(const Flags& f) {
  log::LogConfig config;
  config.segment_bytes = f.segment_bytes;
  config.segment_ms = f.segment_ms;
  config.retention_ms = f.retention_ms;
  config.retention_bytes = f.retention_bytes;
  config.max_message_bytes = f.max_message_bytes;
  config.direct_io = f.direct_io;
  if (absl::Status s = config.Validate(); !s.ok()) return s;
  return config;
}

std::string HostOf(const std::string& address) {
  size_t colon = address.rfind(':');
  return colon == std::string::npos ? address : address.substr(0, colon);
}

// Fails (kUnavailable) when `address` (HOST:PORT of `flag`) cannot be bound
// right now, e.g. because another process listens there. Port 0 always
// binds; an address that does not resolve is left for the server to report.
// A probe, not a reservation: the servers bind for real later.
absl::Status CheckCanListen(const std::string& flag,
                            const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return absl::OkStatus();
  std::string host = address.substr(0, colon);
  const std::string port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port_number = 0;
  if (!absl::SimpleAtoi(port, &port_number) || port_number == 0) {
    return absl::OkStatus();
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints,
                    &found) != 0) {
    return absl::OkStatus();
  }
  absl::Status status;
  for (const addrinfo* ai = found; ai != nullptr && status.ok();
       ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                         ai->ai_protocol));
    if (!fd.valid()) continue;
    // As the servers do: TIME_WAIT connections of an earlier broker do not
    // count as in use, a listening socket does.
    const int yes = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      status = absl::UnavailableError(
          absl::StrCat("cannot listen on ", address, " (", flag,
                       "): ", std::strerror(errno)));
    }
  }
  ::freeaddrinfo(found);
  return status;
}

// Both listen addresses must be free before the data directory is opened:
// a broker that cannot serve must not recover, lock or mark the directory.
absl::Status CheckListenAddresses(const Flags& f) {
  if (f.listen == f.http_listen && !absl::EndsWith(f.listen, ":0")) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen and --http-listen are both ", f.listen));
  }
  if (absl::Status s = CheckCanListen("--listen", f.listen); !s.ok()) return s;
  return CheckCanListen("--http-listen", f.http_listen);
}

int Run(const Flags& f) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("runnel-broker"));
  spdlog::set_level(spdlog::level::from_str(f.log_level));

  // SIGTERM/SIGINT are taken with sigwait below: block them before any
  // thread starts so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<log::LogConfig> defaults = DefaultConfig(f);
  if (!defaults.ok()) {
    std::cerr << "runnel-broker: " << defaults.status() << "\n";
    return 2;
  }
  if (absl::Status s = CheckListenAddresses(f); !s.ok()) {
    std::cerr << "runnel-broker: " << s.message() << "\n";
    return 1;
  }
  BrokerCoreOptions options;
  options.data_dir = f.data_dir;
  options.broker_id = f.broker_id;
  options.default_config = *defaults;
  options.default_num_partitions = f.num_partitions;
  options.io_threads = f.io_threads;
  options.io_thread_nice = f.io_thread_nice;
  options.recovery_threads = f.recovery_threads;
  options.retention_check_interval_ms = f.retention_check_interval_ms;
  options.checkpoint_interval_ms = f.checkpoint_interval_ms;
  options.producer_id_expiration =
      absl::Milliseconds(f.producer_id_expiration_ms);
  options.producer_id_expiration_check_interval =
      absl::Milliseconds(f.producer_id_expiration_check_interval_ms);
  const absl::Time open_start = absl::Now();
  absl::StatusOr<std::unique_ptr<BrokerCore>> core =
      BrokerCore::Open(std::move(options));
  if (!core.ok()) {
    spdlog::critical("cannot open data directory {}: {}", f.data_dir,
                     core.status().ToString());
    return 1;
  }
  spdlog::info("opened {} with {} topics in {} ({})", f.data_dir,
               (*core)->topics().ListTopics().size(),
               absl::FormatDuration(absl::Now() - open_start),
               (*core)->logs().opened_after_clean_shutdown()
                   ? "after a clean shutdown"
                   : "first start or recovery after a crash");
  for (const absl::Status& problem : (*core)->logs().recovery_problems()) {
    spdlog::error("recovery: {}", problem.ToString());
  }

  absl::StatusOr<GrpcServer> grpc_server =
      StartGrpcServer(core->get(), f.listen);
  if (!grpc_server.ok()) {
    spdlog::critical("{}", grpc_server.status().ToString());
    (*core)->Close().IgnoreError();  // exiting with an error anyway
    return 1;
  }
  absl::StatusOr<std::unique_ptr<HttpServer>> http =
      HttpServer::Start(core->get(), f.http_listen);
  if (!http.ok()) {
    spdlog::critical("{}", http.status().ToString());
    grpc_server->server->Shutdown();
    (*core)->Close().IgnoreError();  // exiting with an error anyway
    return 1;
  }
  const std::string host = HostOf(f.listen);
  const std::string advertised =
      f.advertised_host.empty() ? host : f.advertised_host;
  (*core)->SetAdvertisedAddress(advertised, grpc_server->port);
  // One line on stdout, for people and for tests (BrokerProcess parses it).
  std::printf(
      "runnel-broker ready: broker_id=%d grpc=%s:%d http=%s:%d data_dir=%s\n",
      f.broker_id, host.c_str(), grpc_server->port,
      HostOf(f.http_listen).c_str(), (*http)->port(), f.data_dir.c_str());
  std::fflush(stdout);

  int signo = 0;
  sigwait(&signals, &signo);
  spdlog::info("received {}; shutting down",
               signo == SIGTERM ? "SIGTERM" : "SIGINT");
  // Parked long polls answer now; then stop taking requests and let the
  // in-flight ones finish; then flush and mark the shutdown clean.
  (*core)->StopWaiting();
  StopGrpcServer(*grpc_server, absl::Milliseconds(f.shutdown_timeout_ms));
  spdlog::debug("gRPC server stopped");
  (*http)->Stop();
  spdlog::debug("HTTP server stopped");
  absl::Status closed = (*core)->Close();
  if (!closed.ok()) {
    spdlog::error("shutdown was not clean: {}", closed.ToString());
    return 1;
  }
  spdlog::info("stopped cleanly");
  return 0;
}

}  // namespace
}  // namespace runnel::broker

int main(int argc, char** argv) {
  runnel::TuneProcessForThroughput();
  CLI::App app{
      "runnel-broker: one Runnel event-log broker (gRPC + HTTP admin)"};
  runnel::broker::Flags flags;
  runnel::broker::AddFlags(app, flags);
  CLI11_PARSE(app, argc, argv);
  return runnel::broker::Run(flags);
}
