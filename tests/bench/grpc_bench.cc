// The gRPC transport's own ceiling on this machine: how fast one
// bidirectional stream moves raw grpc::ByteBuffers between two processes on
// loopback, with the channel arguments the broker and the client use. It
// bounds what Produce (client to broker, "up") and FetchStream (broker to
// client, "down") can reach; docs/benchmarks.md compares them.
//
//   grpc_bench --direction up --message-bytes 1048576 --total-mib 4096
//
// The server runs in a forked child (gRPC is initialised only after the
// fork). Prints one JSON object: MB/s and CPU seconds per GB of each side.

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

namespace {

constexpr char kMethod[] = "/bench.Bench/Stream";

void SetTransportArgs(grpc::ChannelArguments& args) {
  args.SetInt("grpc.experimental.tcp_read_chunk_size", 1 << 20);
  args.SetInt("grpc.experimental.tcp_min_read_chunk_size", 1 << 20);
  args.SetInt("grpc.experimental.tcp_max_read_chunk_size", 4 << 20);
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
}

double CpuSeconds(const rusage& r) {
  return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

grpc::ByteBuffer Message(const grpc::Slice& payload) {
  grpc::Slice copy = payload;  // a reference, not a copy of the bytes
  return grpc::ByteBuffer(&copy, 1);
}

// The first message of a stream: 16 bytes, the message size and the number
// of messages the server should send ("down"); 0 messages: "up".
struct Hello {
  uint64_t message_bytes;
  uint64_t messages;
};

// Server side of one stream. "up": counts what it reads, answers with one
// 8-byte total when the client half-closes. "down": writes the messages the
// hello asked for, back to back, then finishes.
class ServerStream final : public grpc::ServerGenericBidiReactor {
 public:
  ServerStream() { StartRead(&in_); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      if (down_) return;  // the client half-closed after its hello
      std::string total(reinterpret_cast<const char*>(&received_), 8);
      grpc::Slice s(total);
      out_ = grpc::ByteBuffer(&s, 1);
      StartWriteAndFinish(&out_, grpc::WriteOptions(), grpc::Status::OK);
      return;
    }
    if (!hello_seen_) {
      hello_seen_ = true;
      std::vector<grpc::Slice> slices;
      (void)in_.Dump(&slices);
      std::string bytes;
      for (const grpc::Slice& s : slices) {
        bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
      }
      Hello h{};
      if (bytes.size() == sizeof(h)) memcpy(&h, bytes.data(), sizeof(h));
      if (h.messages > 0) {
        down_ = true;
        left_ = h.messages;
        payload_ = grpc::Slice(std::string(h.message_bytes, 'x'));
        WriteNext();
      }
    } else {
      received_ += in_.Length();
    }
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::CANCELLED);
    if (down_) WriteNext();
  }

  void OnDone() override { delete this; }

 private:
  void WriteNext() {
    if (left_ == 0) return Finish(grpc::Status::OK);
    --left_;
    out_ = Message(payload_);
    StartWrite(&out_);
  }

  grpc::ByteBuffer in_;
  grpc::ByteBuffer out_;
  grpc::Slice payload_;
  bool hello_seen_ = false;
  bool down_ = false;
  uint64_t left_ = 0;
  uint64_t received_ = 0;
};

class Service final : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext*) override {
    return new ServerStream();
  }
};

[[noreturn]] void RunServer(int port_fd) {
  Service service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterCallbackGenericService(&service);
  builder.SetMaxReceiveMessageSize(-1);
  builder.SetMaxSendMessageSize(-1);
  builder.AddChannelArgument("grpc.experimental.tcp_read_chunk_size", 1 << 20);
  builder.AddChannelArgument("grpc.experimental.tcp_min_read_chunk_size",
                             1 << 20);
  builder.AddChannelArgument("grpc.experimental.tcp_max_read_chunk_size",
                             4 << 20);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || write(port_fd, &port, sizeof(port)) != 4) _exit(1);
  close(port_fd);
  // Serves until the parent sends SIGTERM (blocked here, so sigwait takes it).
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
  server->Shutdown(std::chrono::system_clock::now());
  _exit(0);
}

// Client side: "up" writes `messages` back to back (one write in flight, as
// the producer's ProduceStream does); "down" sends the hello and reads.
class ClientStream final
    : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  ClientStream(
      grpc::TemplatedGenericStub<grpc::ByteBuffer, grpc::ByteBuffer>& stub,
      bool up, uint64_t message_bytes, uint64_t messages)
      : up_(up), left_(messages) {
    Hello h{message_bytes, up ? 0 : messages};
    grpc::Slice hs(std::string(reinterpret_cast<const char*>(&h), sizeof(h)));
    out_ = grpc::ByteBuffer(&hs, 1);
    if (up) payload_ = grpc::Slice(std::string(message_bytes, 'x'));
    stub.PrepareBidiStreamingCall(&ctx_, kMethod, grpc::StubOptions(), this);
    StartRead(&in_);
    StartWrite(&out_);
    StartCall();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return;
    if (!up_ || left_ == 0) {
      if (!half_closed_) {
        half_closed_ = true;
        StartWritesDone();
      }
      return;
    }
    --left_;
    out_ = Message(payload_);
    StartWrite(&out_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    received_ += in_.Length();
    StartRead(&in_);
  }

  void OnDone(const grpc::Status& s) override {
    absl::MutexLock lock(&mu_);
    status_ = s;
    done_ = true;
  }

  grpc::Status Await() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
    return status_;
  }
  uint64_t received() const { return received_; }

 private:
  const bool up_;
  uint64_t left_;
  grpc::ClientContext ctx_;
  grpc::ByteBuffer out_;
  grpc::ByteBuffer in_;
  grpc::Slice payload_;
  bool half_closed_ = false;
  uint64_t received_ = 0;
  absl::Mutex mu_;
  bool done_ = false;
  grpc::Status status_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("gRPC raw ByteBuffer stream throughput between two processes");
  std::string direction = "up";
  uint64_t message_bytes = 1 << 20;
  uint64_t total_mib = 4096;
  app.add_option("--direction", direction, "up (client writes) or down")
      ->check(CLI::IsMember({"up", "down"}));
  app.add_option("--message-bytes", message_bytes, "bytes per message")
      ->check(CLI::Range(uint64_t{1}, uint64_t{64} << 20));
  app.add_option("--total-mib", total_mib, "MiB to move")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 20));
  CLI11_PARSE(app, argc, argv);

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // the child sigwaits for it
  int fds[2];
  if (pipe(fds) != 0) return 1;
  const pid_t child = fork();
  if (child < 0) return 1;
  if (child == 0) {
    close(fds[0]);
    RunServer(fds[1]);
  }
  close(fds[1]);
  int port = 0;
  if (read(fds[0], &port, sizeof(port)) != 4) return 1;
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);

  grpc::ChannelArguments args;
  SetTransportArgs(args);
  auto channel =
      grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                grpc::InsecureChannelCredentials(), args);
  grpc::TemplatedGenericStub<grpc::ByteBuffer, grpc::ByteBuffer> stub(channel);
  const uint64_t messages = (total_mib << 20) / message_bytes;
  {
    // Warm-up: connect and move a little.
    ClientStream warm(stub, direction == "up", message_bytes,
                      std::min<uint64_t>(messages, 8));
    if (!warm.Await().ok()) return 1;
  }
  rusage self_before{};
  getrusage(RUSAGE_SELF, &self_before);
  char stat_path[64];
  snprintf(stat_path, sizeof(stat_path), "/proc/%d/stat", child);
  auto child_cpu = [&] {
    FILE* f = fopen(stat_path, "r");
    if (f == nullptr) return 0.0;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    const char* p = strrchr(buf, ')');
    unsigned long utime = 0, stime = 0;  // fields 14 and 15
    if (p == nullptr ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
               &utime, &stime) != 2) {
      return 0.0;
    }
    return static_cast<double>(utime + stime) /
           static_cast<double>(sysconf(_SC_CLK_TCK));
  };
  const double server_before = child_cpu();
  const auto start = std::chrono::steady_clock::now();
  ClientStream stream(stub, direction == "up", message_bytes, messages);
  grpc::Status status = stream.Await();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  const double server_cpu = child_cpu() - server_before;
  rusage self_after{};
  getrusage(RUSAGE_SELF, &self_after);
  kill(child, SIGTERM);
  waitpid(child, nullptr, 0);
  if (!status.ok()) {
    fprintf(stderr, "grpc_bench: %s\n", status.error_message().c_str());
    return 1;
  }
  const double gb = static_cast<double>(messages * message_bytes) / 1e9;
  const double client_cpu = CpuSeconds(self_after) - CpuSeconds(self_before);
  printf(
      "{\"direction\":\"%s\",\"message_bytes\":%llu,\"messages\":%llu,"
      "\"seconds\":%.3f,\"mb_per_sec\":%.1f,\"client_cpu_s_per_gb\":%.3f,"
      "\"server_cpu_s_per_gb\":%.3f}\n",
      direction.c_str(), static_cast<unsigned long long>(message_bytes),
      static_cast<unsigned long long>(messages), seconds, gb * 1000 / seconds,
      client_cpu / gb, server_cpu / gb);
  return 0;
}
