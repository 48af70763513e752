#pragma once

// Starts the real runnel-broker binary as a child process for end-to-end
// tests: free loopback ports picked by the broker itself (--listen
// 127.0.0.1:0), a data directory the test owns, readiness taken from the
// broker's "runnel-broker ready:" line (printed once both the gRPC and the
// HTTP servers accept connections), SIGTERM / SIGKILL, and restart on the
// same data directory and ports.
//
// A test binary that uses this must depend on the broker target so that the
// binary is built first: add_dependencies(<test> runnel-broker).

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace runnel::testing {

// <build>/broker/runnel-broker, or $RUNNEL_BROKER_BINARY when set.
std::string DefaultBrokerBinary();

struct BrokerProcessOptions {
  std::string binary = DefaultBrokerBinary();
  std::string data_dir;                 // required; created by the broker
  std::vector<std::string> extra_args;  // e.g. {"--log-segment-bytes=1048576"}
  std::chrono::milliseconds start_timeout{30000};
};

// Thread-compatible. The destructor SIGKILLs a broker still running.
class BrokerProcess {
 public:
  BrokerProcess(const BrokerProcess&) = delete;
  BrokerProcess& operator=(const BrokerProcess&) = delete;
  ~BrokerProcess();

  // Starts the broker and waits until it is ready. kDeadlineExceeded when it
  // is not ready within start_timeout (it is killed then); kInternal when
  // it exits early (with its exit status in the message).
  static absl::StatusOr<std::unique_ptr<BrokerProcess>> Start(
      BrokerProcessOptions options);

  // "127.0.0.1:<grpc port>", for grpc::CreateChannel.
  std::string address() const;
  int grpc_port() const { return grpc_port_; }
  int http_port() const { return http_port_; }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  const std::string& data_dir() const { return options_.data_dir; }

  // SIGTERM, then waits up to `timeout` for the exit. Returns the exit code,
  // or 128 + signal number if it died from a signal. kDeadlineExceeded (and
  // the process is SIGKILLed) if it did not exit in time.
  absl::StatusOr<int> Stop(
      std::chrono::milliseconds timeout = std::chrono::milliseconds(30000));
  // SIGKILL and reap. OK if not running.
  absl::Status Kill();
  // Starts it again on the same data directory and ports (after Stop or
  // Kill; a running broker is stopped first).
  absl::Status Restart();

 private:
  explicit BrokerProcess(BrokerProcessOptions options)
      : options_(std::move(options)) {}

  absl::Status Launch(const std::string& listen,
                      const std::string& http_listen);
  absl::StatusOr<int> WaitExit(std::chrono::milliseconds timeout);

  BrokerProcessOptions options_;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;  // read end of the child's stdout
  int grpc_port_ = 0;
  int http_port_ = 0;
};

}  // namespace runnel::testing
