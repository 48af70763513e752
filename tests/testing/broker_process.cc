#include "tests/testing/broker_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

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

std::string DescribeExit(int code) {
  if (code > 128) {
    return absl::StrCat("killed by signal ", code - 128, " (",
                        strsignal(code - 128), ")");
  }
  return absl::StrCat("exit code ", code);
}

// Whether the running test (or, in a suite's setup or teardown, its suite)
// has failed.
bool TestFailed() {
  if (::testing::Test::HasFailure()) return true;
  const ::testing::TestSuite* suite =
      ::testing::UnitTest::GetInstance()->current_test_suite();
  return suite != nullptr && suite->failed_test_count() > 0;
}

}  // namespace

std::string HttpGet(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    std::string request = absl::StrCat("GET ", path,
                                       " HTTP/1.1\r\nHost: localhost\r\n"
                                       "Connection: close\r\n\r\n");
    if (::write(fd, request.data(), request.size()) ==
        static_cast<ssize_t>(request.size())) {
      char buf[65536];
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
    }
  }
  ::close(fd);
  return out;
}

std::string DefaultBrokerBinary() {
  const char* env = std::getenv("RUNNEL_BROKER_BINARY");
  return env != nullptr && *env != '\0' ? env : RUNNEL_BROKER_BINARY_PATH;
}

BrokerProcess::~BrokerProcess() {
  if (absl::Status alive = CheckAlive(); !alive.ok()) {
    ADD_FAILURE() << alive.message();
  } else if (pid_ > 0 && TestFailed()) {
    PrintStderrTail("the test failed");
  }
  // Test teardown: a failure to kill has nobody left to report to.
  Kill().IgnoreError();
}

absl::StatusOr<std::unique_ptr<BrokerProcess>> BrokerProcess::Start(
    BrokerProcessOptions options) {
  if (options.data_dir.empty()) {
    return absl::InvalidArgumentError("BrokerProcess needs a data_dir");
  }
  auto broker = std::unique_ptr<BrokerProcess>(new BrokerProcess(options));
  broker->stderr_path_ = options.stderr_path.empty()
                             ? options.data_dir + ".stderr"
                             : options.stderr_path;
  RUNNEL_RETURN_IF_ERROR(
      broker->Launch(broker->options_.listen, broker->options_.http_listen));
  return broker;
}

std::string BrokerProcess::address() const {
  return absl::StrCat("127.0.0.1:", grpc_port_);
}

absl::Status BrokerProcess::Launch(const std::string& listen,
                                   const std::string& http_listen) {
  const int err_fd = ::open(stderr_path_.c_str(),
                            O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (err_fd < 0) {
    return absl::InternalError(
        absl::StrCat(stderr_path_, ": ", std::strerror(errno)));
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    ::close(err_fd);
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
    ::close(err_fd);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(err_fd, STDERR_FILENO);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  ::close(err_fd);
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
      return absl::DeadlineExceededError(absl::StrCat(
          options_.binary, " not ready within ", options_.start_timeout.count(),
          " ms; its stderr (", stderr_path_, ") ends with:\n", StderrTail()));
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
          options_.binary, " exited before it was ready, ",
          code.ok() ? DescribeExit(*code) : code.status().ToString(),
          "; its stderr (", stderr_path_, ") ends with:\n", StderrTail()));
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

absl::StatusOr<int> BrokerProcess::Stop(std::chrono::milliseconds timeout,
                                        int signo) {
  if (pid_ <= 0) return absl::FailedPreconditionError("broker is not running");
  RUNNEL_RETURN_IF_ERROR(CheckAlive());
  ::kill(pid_, signo);
  absl::StatusOr<int> code = WaitExit(timeout);
  if (!code.ok()) {
    PrintStderrTail(absl::StrCat("it did not stop after signal ", signo));
    Kill().IgnoreError();  // reporting the timeout instead
  } else if (*code != 0) {
    PrintStderrTail(absl::StrCat("it stopped with ", DescribeExit(*code)));
  }
  return code;
}

absl::Status BrokerProcess::Kill() {
  if (pid_ <= 0) return absl::OkStatus();
  RUNNEL_RETURN_IF_ERROR(CheckAlive());
  ::kill(pid_, SIGKILL);
  return WaitExit(std::chrono::milliseconds(30000)).status();
}

absl::Status BrokerProcess::CheckAlive() {
  if (pid_ <= 0) return absl::OkStatus();
  std::optional<int> code = ReapIfExited();
  if (!code.has_value()) return absl::OkStatus();
  PrintStderrTail(absl::StrCat("it died on its own, ", DescribeExit(*code)));
  return DiedError(*code);
}

absl::Status BrokerProcess::Pause() {
  RUNNEL_RETURN_IF_ERROR(CheckAlive());
  if (pid_ <= 0) return absl::FailedPreconditionError("broker not running");
  if (::kill(pid_, SIGSTOP) != 0) return absl::ErrnoToStatus(errno, "SIGSTOP");
  int wstatus = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &wstatus, WUNTRACED);
  } while (r < 0 && errno == EINTR);
  if (r != pid_) return absl::ErrnoToStatus(errno, "waitpid(WUNTRACED)");
  if (WIFSTOPPED(wstatus)) return absl::OkStatus();
  const int code = Reaped(wstatus);  // it exited instead
  PrintStderrTail(absl::StrCat("it died on its own, ", DescribeExit(code)));
  return DiedError(code);
}

absl::Status BrokerProcess::Resume() {
  if (pid_ <= 0) return absl::FailedPreconditionError("broker not running");
  if (::kill(pid_, SIGCONT) != 0) return absl::ErrnoToStatus(errno, "SIGCONT");
  return absl::OkStatus();
}

std::optional<int> BrokerProcess::ReapIfExited() {
  int wstatus = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &wstatus, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r != pid_) return std::nullopt;
  return Reaped(wstatus);
}

int BrokerProcess::Reaped(int wstatus) {
  pid_ = -1;
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
  stdout_fd_ = -1;
  return ExitCode(wstatus);
}

absl::Status BrokerProcess::DiedError(int code) const {
  return absl::InternalError(absl::StrCat(
      "runnel-broker (data dir ", options_.data_dir, ") died during the test: ",
      DescribeExit(code), "; its stderr is in ", stderr_path_));
}

std::string BrokerProcess::StderrTail(size_t max_bytes) const {
  std::ifstream in(stderr_path_, std::ios::binary | std::ios::ate);
  if (!in) return "(no stderr file)\n";
  const std::streamoff size = in.tellg();
  const std::streamoff from = std::max<std::streamoff>(
      0, size - static_cast<std::streamoff>(max_bytes));
  in.seekg(from);
  std::string tail(static_cast<size_t>(size - from), '\0');
  in.read(tail.data(), static_cast<std::streamsize>(tail.size()));
  // Start at a line boundary unless this is the whole file.
  if (from > 0) {
    const size_t newline = tail.find('\n');
    if (newline != std::string::npos) tail.erase(0, newline + 1);
  }
  if (!tail.empty() && tail.back() != '\n') tail.push_back('\n');
  return tail.empty() ? "(empty)\n" : tail;
}

void BrokerProcess::PrintStderrTail(const std::string& why) const {
  std::fprintf(stderr,
               "---- runnel-broker (data dir %s): %s; last lines of %s ----\n"
               "%s---- end of broker stderr ----\n",
               options_.data_dir.c_str(), why.c_str(), stderr_path_.c_str(),
               StderrTail().c_str());
  std::fflush(stderr);
}

absl::Status BrokerProcess::Restart() {
  if (pid_ > 0) RUNNEL_RETURN_IF_ERROR(Stop().status());
  return Launch(absl::StrCat("127.0.0.1:", grpc_port_),
                absl::StrCat("127.0.0.1:", http_port_));
}

}  // namespace runnel::testing
