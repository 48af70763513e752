#include "broker/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace runnel::broker {

HttpServer::~HttpServer() { Stop(); }

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    BrokerCore* core, const std::string& listen) {
  const size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad --http-listen address ", listen));
  }
  const std::string host = listen.substr(0, colon);
  auto http = std::unique_ptr<HttpServer>(new HttpServer());
  http->server_ = std::make_unique<httplib::Server>();
  httplib::Server& server = *http->server_;
  server.Get("/healthz",
             [core](const httplib::Request&, httplib::Response& res) {
               if (core->stopping()) {
                 res.status = 503;
                 res.set_content("stopping\n", "text/plain");
               } else {
                 res.set_content("ok\n", "text/plain");
               }
             });
  server.Get(
      "/metrics", [core](const httplib::Request&, httplib::Response& res) {
        res.set_content(core->RenderMetrics(), "text/plain; version=0.0.4");
      });
  // httplib's default options add SO_REUSEPORT: a second broker on the same
  // port would then bind "successfully" and share the connections. Only
  // SO_REUSEADDR (a restart may rebind while old connections are in
  // TIME_WAIT).
  server.set_socket_options([](socket_t sock) {
    const int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  if (port == 0) {
    http->port_ = server.bind_to_any_port(host);
  } else {
    http->port_ = server.bind_to_port(host, port) ? port : -1;
  }
  if (http->port_ <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen for HTTP on ", listen));
  }
  HttpServer* const self = http.get();
  http->thread_ = std::thread([self, &server] {
    server.listen_after_bind();
    self->listen_returned_.store(true, std::memory_order_release);
  });
  return http;
}

void HttpServer::Stop() {
  if (!thread_.joinable()) return;
  // httplib's stop() does nothing until listen_after_bind() has marked the
  // server running; called before that (a SIGTERM right after the start), the
  // listener then blocked in accept() for good and the broker never exited.
  // The thread is already started, so this wait is short.
  while (!server_->is_running() &&
         !listen_returned_.load(std::memory_order_acquire)) {
    std::this_thread::yield();
  }
  server_->stop();
  thread_.join();
}

}  // namespace runnel::broker
