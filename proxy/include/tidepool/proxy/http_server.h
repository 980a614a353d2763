// The HTTP port: /metrics, /healthz, /readyz, /status and POST /flush (which http.admin can
// turn off or hold to a bearer token), served by one thread of our own (epoll, non-blocking
// sockets, bounded buffers, a deadline and a cap on connections), so no number of slow or idle
// clients can keep a probe waiting.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <thread>

#include "tidepool/proxy/log.h"
#include "tidepool/proxy/loop_state.h"
#include "tidepool/proxy/metrics.h"
#include "tidepool/proxy/startup_error.h"

namespace tidepool::proxy {

class HttpServer {
 public:
  struct Limits {
    // At the cap, a new connection closes the oldest one that has not sent a whole request,
    // so a flood of idle connections cannot lock out a probe. Held to a quarter of the soft
    // RLIMIT_NOFILE (at least 16) as well, so ZeroMQ keeps fds for its peers.
    std::size_t max_connections = 4096;
    // A request head (request line and headers) larger than this is answered 431.
    std::size_t max_request_head = std::size_t{16} * 1024;
    // A connection's whole life, from accept to the last byte of the answer.
    std::chrono::milliseconds deadline{10'000};
    // Answers buffered for clients that read slowly, all connections together; above it the
    // oldest such connection is closed.
    std::size_t max_buffered_output = std::size_t{32} * 1024 * 1024;
  };

  // Who may POST /flush (http.admin, http.admin_token_file).
  struct Admin {
    bool enabled = true;  // false: 403
    std::string token;    // non-empty: "Authorization: Bearer <token>" or 401
  };

  // Listens on HOST:PORT; throws StartupError when it cannot. HOST is an IPv4 or bracketed
  // IPv6 address, 0.0.0.0 or * (every IPv4 address), [::] (every address), or a name, of
  // which the first IPv4 address is bound ("localhost": 127.0.0.1).
  HttpServer(const std::string& listen, const Metrics& metrics, LoopState& state);
  HttpServer(const std::string& listen, const Metrics& metrics, LoopState& state, Limits limits);
  HttpServer(const std::string& listen, const Metrics& metrics, LoopState& state, Limits limits,
             Admin admin);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The port actually bound (differs from the configured one when that was 0).
  [[nodiscard]] int port() const { return port_; }
  // The connection cap in force (Limits::max_connections, held to the fd limit).
  [[nodiscard]] std::size_t max_connections() const { return limits_.max_connections; }

  struct Response {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
  };
  // What METHOD PATH answers, given the request's Authorization header value (empty when it
  // has none); the server thread calls it, public for tests. HEAD answers as GET (the server
  // leaves the body out).
  [[nodiscard]] Response respond(const std::string& method, const std::string& path,
                                 std::string_view authorization = {}) const;

 private:
  class Connections;
  void serve();

  const Metrics& metrics_;
  LoopState& state_;
  Limits limits_;
  Admin admin_;
  // Refused admin requests are logged once, then summarised; only the server thread (or a
  // test calling respond()) writes it.
  mutable log::RateLimited admin_refusals_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int stop_fd_ = -1;  // eventfd: the destructor wakes the thread with it
  int port_ = 0;
  std::thread thread_;
};

}  // namespace tidepool::proxy
