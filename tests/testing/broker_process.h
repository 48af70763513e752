#pragma once

#include <signal.h>

// Starts the real runnel-broker binary as a child process for end-to-end
// tests: free loopback ports picked by the broker itself (--listen
// 127.0.0.1:0), a data directory the test owns, readiness taken from the
// broker's "runnel-broker ready:" line (printed once both the gRPC and the
// HTTP servers accept connections), SIGTERM / SIGKILL, and restart on the
// same data directory and ports.
//
// The broker's stderr goes to a file (stderr_path, appended to across
// restarts). Its tail is printed to the test's stderr when the broker did
// not start, exited non-zero, died before the test stopped it, or when the
// test failed, so that CI logs show why a broker died.
//
// A test binary that uses this must depend on the broker target so that the
// binary is built first: add_dependencies(<test> runnel-broker).

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace runnel::testing {

// <build>/broker/runnel-broker, or $RUNNEL_BROKER_BINARY when set.
// GET http://127.0.0.1:port/path (e.g. a broker's http_port()) with a plain
// socket; returns the whole response (status line, headers, body) or "" on
// error.
std::string HttpGet(int port, const std::string& path);

std::string DefaultBrokerBinary();

struct BrokerProcessOptions {
  std::string binary = DefaultBrokerBinary();
  std::string data_dir;  // required; created by the broker
  // Where the broker's stderr goes; empty: data_dir + ".stderr" (next to the
  // data directory, so inside the test's temp dir).
  std::string stderr_path;
  // --listen and --http-listen; port 0: a free port, picked by the broker.
  std::string listen = "127.0.0.1:0";
  std::string http_listen = "127.0.0.1:0";
  std::vector<std::string> extra_args;  // e.g. {"--log-segment-bytes=1048576"}
  std::chrono::milliseconds start_timeout{30000};
};

// Thread-compatible. The destructor SIGKILLs a broker still running; when
// the broker had already died on its own it reports a test failure (with
// the stderr tail).
class BrokerProcess {
 public:
  BrokerProcess(const BrokerProcess&) = delete;
  BrokerProcess& operator=(const BrokerProcess&) = delete;
  ~BrokerProcess();

  // Starts the broker and waits until it is ready. kDeadlineExceeded when it
  // is not ready within start_timeout (it is killed then); kInternal when
  // it exits early (with its exit status and stderr tail in the message).
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
  // or 128 + signal number if it died from a signal (a non-zero code also
  // prints the stderr tail). kDeadlineExceeded (and the process is
  // SIGKILLed) if it did not exit in time; kInternal if it had already
  // exited on its own before the SIGTERM (it died during the test).
  // `signo` may be SIGINT instead.
  absl::StatusOr<int> Stop(
      std::chrono::milliseconds timeout = std::chrono::milliseconds(30000),
      int signo = SIGTERM);
  // SIGKILL and reap. OK if not running; kInternal if it had already exited
  // on its own before the SIGKILL (it died during the test).
  absl::Status Kill();
  // kInternal (with exit status and stderr tail) if the broker exited on its
  // own; it is reaped then. OK while it runs or after Stop / Kill.
  absl::Status CheckAlive();
  // SIGSTOP, and returns once every thread of the broker has stopped
  // (waitpid with WUNTRACED reports the finished group stop): nothing the
  // broker does can race what the caller does next. kInternal if it exited
  // instead (it is reaped then).
  absl::Status Pause();
  // SIGCONT after Pause.
  absl::Status Resume();

  const std::string& stderr_path() const { return stderr_path_; }
  // The last lines of the broker's stderr, at most about `max_bytes`.
  std::string StderrTail(size_t max_bytes = 8192) const;
  // Starts it again on the same data directory and ports (after Stop or
  // Kill; a running broker is stopped first).
  absl::Status Restart();

 private:
  explicit BrokerProcess(BrokerProcessOptions options)
      : options_(std::move(options)) {}

  absl::Status Launch(const std::string& listen,
                      const std::string& http_listen);
  absl::StatusOr<int> WaitExit(std::chrono::milliseconds timeout);
  // Reaps the broker if it has exited: its exit code, else nullopt.
  std::optional<int> ReapIfExited();
  // Forgets the broker that waitpid just reaped (`wstatus`): its exit code.
  int Reaped(int wstatus);
  // The kInternal error for a broker that exited with `code` on its own.
  absl::Status DiedError(int code) const;
  void PrintStderrTail(const std::string& why) const;

  BrokerProcessOptions options_;
  std::string stderr_path_;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;  // read end of the child's stdout
  int grpc_port_ = 0;
  int http_port_ = 0;
};

}  // namespace runnel::testing
