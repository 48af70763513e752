#include "tests/testing/broker_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

#include "common/status_macros.h"

#ifndef RUNNEL_BROKER_BINARY_PATH
#define RUNNEL_BROKER_BINARY_PATH "runnel-broker"
#endif

namespace runnel::testing {
namespace {

constexpr char kReadyPrefix[] = "runnel-broker ready:";

// Parses "...key=host:PORT ..." from the ready line.
bool ParsePort(const std::string& line, const std::string& key, int* port) {
  size_t at = line.find(" " + key + "=");
  if (at == std::string::npos) return false;
  size_t start = at + key.size() + 2;
  size_t end = line.find(' ', start);
  std::string address = line.substr(start, end - start);
  size_t colon = address.rfind(':');
  return colon != std::string::npos &&
         absl::SimpleAtoi(address.substr(colon + 1), port);
}

int ExitCode(int wstatus) {
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return -1;
}

}  // namespace

std::string DefaultBrokerBinary() {
  const char* env = std::getenv("RUNNEL_BROKER_BINARY");
  return env != nullptr && *env != '\0' ? env : RUNNEL_BROKER_BINARY_PATH;
}

BrokerProcess::~BrokerProcess() {
  Kill().IgnoreError();  // test teardown: nothing to report to
}

absl::StatusOr<std::unique_ptr<BrokerProcess>> BrokerProcess::Start(
    BrokerProcessOptions options) {
  if (options.data_dir.empty()) {
    return absl::InvalidArgumentError("BrokerProcess needs a data_dir");
  }
  auto broker = std::unique_ptr<BrokerProcess>(new BrokerProcess(options));
  RUNNEL_RETURN_IF_ERROR(broker->Launch("127.0.0.1:0", "127.0.0.1:0"));
  return broker;
}

std::string BrokerProcess::address() const {
  return absl::StrCat("127.0.0.1:", grpc_port_);
}

absl::Status BrokerProcess::Launch(const std::string& listen,
                                   const std::string& http_listen) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe2: ", std::strerror(errno)));
  }
  std::vector<std::string> args = {
      options_.binary, "--data-dir=" + options_.data_dir, "--listen=" + listen,
      "--http-listen=" + http_listen};
  args.insert(args.end(), options_.extra_args.begin(),
              options_.extra_args.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
    ::dup2(fds[1], STDOUT_FILENO);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  pid_ = pid;
  stdout_fd_ = fds[0];

  // Read the child's stdout until the ready line, EOF or the deadline.
  const auto deadline =
      std::chrono::steady_clock::now() + options_.start_timeout;
  std::string buffer;
  while (true) {
    size_t newline;
    while ((newline = buffer.find('\n')) != std::string::npos) {
      std::string line = buffer.substr(0, newline);
      buffer.erase(0, newline + 1);
      if (line.rfind(kReadyPrefix, 0) == 0 &&
          ParsePort(line, "grpc", &grpc_port_) &&
          ParsePort(line, "http", &http_port_)) {
        return absl::OkStatus();
      }
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      Kill().IgnoreError();  // reporting the timeout instead
      return absl::DeadlineExceededError(
          absl::StrCat(options_.binary, " not ready within ",
                       options_.start_timeout.count(), " ms"));
    }
    pollfd p{stdout_fd_, POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    char chunk[4096];
    ssize_t got = ::read(stdout_fd_, chunk, sizeof(chunk));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {  // EOF: the broker exited before it was ready
      absl::StatusOr<int> code = WaitExit(std::chrono::milliseconds(10000));
      return absl::InternalError(absl::StrCat(
          options_.binary, " exited before it was ready, exit code ",
          code.ok() ? absl::StrCat(*code) : code.status().ToString()));
    }
    buffer.append(chunk, static_cast<size_t>(got));
  }
}

absl::StatusOr<int> BrokerProcess::WaitExit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return absl::FailedPreconditionError("not running");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int wstatus = 0;
  // A pidfd becomes readable when the process exits: wait on that event.
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  while (true) {
    pid_t r = ::waitpid(pid_, &wstatus, WNOHANG);
    if (r == pid_) break;
    if (r < 0 && errno != EINTR) {
      return absl::InternalError(
          absl::StrCat("waitpid: ", std::strerror(errno)));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      if (pidfd >= 0) ::close(pidfd);
      return absl::DeadlineExceededError(absl::StrCat("broker pid ", pid_,
                                                      " did not exit within ",
                                                      timeout.count(), " ms"));
    }
    if (pidfd >= 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{pidfd, POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 1)));
    } else {
      // No pidfd (old kernel): nothing to block on, so re-check shortly.
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  if (pidfd >= 0) ::close(pidfd);
  pid_ = -1;
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
  stdout_fd_ = -1;
  return ExitCode(wstatus);
}

absl::StatusOr<int> BrokerProcess::Stop(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return absl::FailedPreconditionError("broker is not running");
  ::kill(pid_, SIGTERM);
  absl::StatusOr<int> code = WaitExit(timeout);
  if (!code.ok()) Kill().IgnoreError();  // reporting the timeout instead
  return code;
}

absl::Status BrokerProcess::Kill() {
  if (pid_ <= 0) return absl::OkStatus();
  ::kill(pid_, SIGKILL);
  return WaitExit(std::chrono::milliseconds(30000)).status();
}

absl::Status BrokerProcess::Restart() {
  if (pid_ > 0) RUNNEL_RETURN_IF_ERROR(Stop().status());
  return Launch(absl::StrCat("127.0.0.1:", grpc_port_),
                absl::StrCat("127.0.0.1:", http_port_));
}

}  // namespace runnel::testing
