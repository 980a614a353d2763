#pragma once

#include <string>

#include "tidepool/proxy/event_loop.h"
#include "tidepool/proxy/metrics.h"

struct mg_context;

namespace tidepool::proxy {

// /metrics, /healthz, /readyz, /status and POST /flush on one port, served by civetweb (the
// HTTP server prometheus-cpp's pull component is built on). Its threads only read the
// registry, atomics and the status snapshot.
class HttpServer {
 public:
  // Listens on HOST:PORT; throws StartupError when it cannot.
  HttpServer(const std::string& listen, const Metrics& metrics, LoopState& state);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The port actually bound (differs from the configured one when that was 0).
  [[nodiscard]] int port() const { return port_; }

  // Request handling, public for civetweb's C callbacks.
  struct Response {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
  };
  [[nodiscard]] Response respond(const std::string& method, const std::string& path) const;

 private:
  const Metrics& metrics_;
  LoopState& state_;
  mg_context* context_ = nullptr;
  int port_ = 0;
  std::string wake_host_;  // where to connect to wake civetweb at stop (http_get maps 0.0.0.0)
};

}  // namespace tidepool::proxy
