#pragma once

// The HTTP admin endpoint (cpp-httplib): GET /healthz and GET /metrics.

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

#include "broker/broker_core.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace runnel::broker {

// Serves on its own thread from Start() until Stop(). Thread-safe.
// `core` must outlive it.
class HttpServer {
 public:
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  ~HttpServer();  // Stop()

  // `listen` is "host:port"; port 0 picks a free one. kUnavailable if the
  // address cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      BrokerCore* core, const std::string& listen);

  int port() const { return port_; }
  // Stops accepting and joins the thread. Idempotent.
  void Stop();

 private:
  HttpServer() = default;

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;  // joined in Stop()
  // Set by the thread once listen_after_bind() returned.
  std::atomic<bool> listen_returned_{false};
  int port_ = 0;
};

}  // namespace runnel::broker
