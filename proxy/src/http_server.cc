#include "tidepool/proxy/http_server.h"

#include <civetweb.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "tidepool/proxy/http_client.h"

#include "tidepool/proxy/log.h"

namespace tidepool::proxy {
namespace {

using namespace std::chrono_literals;

// The loop wakes at least every 250 ms; this much silence means it is stuck.
constexpr auto kMaxLoopSilence = 5000ms;

const char* reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

int handle_request(mg_connection* connection, void* data) {
  const auto* server = static_cast<const HttpServer*>(data);
  const mg_request_info* info = mg_get_request_info(connection);
  const auto response = server->respond(info->request_method != nullptr ? info->request_method : "",
                                        info->local_uri != nullptr ? info->local_uri : "");
  mg_printf(connection,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            response.status, reason_phrase(response.status), response.content_type.c_str(),
            response.body.size());
  mg_write(connection, response.body.data(), response.body.size());
  return response.status;
}

int log_civetweb(const mg_connection* /*connection*/, const char* message) {
  log::warn("http server", {{"detail", message}});
  return 1;
}

}  // namespace

HttpServer::HttpServer(const std::string& listen, const Metrics& metrics, LoopState& state)
    : metrics_(metrics), state_(state), wake_host_(listen.substr(0, listen.rfind(':'))) {
  mg_init_library(0);
  // civetweb wants "HOST:PORT" for a specific address; "0.0.0.0:PORT" binds all IPv4.
  const char* options[] = {"listening_ports",    listen.c_str(), "num_threads", "4",
                           "request_timeout_ms", "10000",        nullptr};
  mg_callbacks callbacks{};
  callbacks.log_message = log_civetweb;
  context_ = mg_start(&callbacks, this, options);
  if (context_ == nullptr) {
    mg_exit_library();
    throw StartupError("http.listen " + listen +
                       ": cannot listen there (address in use, or not an address of this host)");
  }
  for (const char* path : {"/metrics", "/healthz", "/readyz", "/status", "/flush"}) {
    mg_set_request_handler(context_, path, handle_request, this);
  }
  std::vector<mg_server_port> ports(4);
  if (mg_get_server_ports(context_, static_cast<int>(ports.size()), ports.data()) > 0) {
    port_ = ports[0].port;
  }
}

HttpServer::~HttpServer() {
  // civetweb's master thread notices the stop flag only when its poll() on the listening
  // socket returns, which takes up to 2 s when idle; a connection of our own wakes it, so
  // SIGTERM does not cost two extra seconds at exit.
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    mg_stop(context_);
    stopped = true;
  });
  const std::string host = wake_host_;
  while (!stopped) {
    std::string ignored;
    (void)http_get(host + ":" + std::to_string(port_), "/healthz", 50ms, ignored);
    std::this_thread::sleep_for(5ms);
  }
  stopper.join();
  mg_exit_library();
}

HttpServer::Response HttpServer::respond(const std::string& method, const std::string& path) const {
  Response response;
  if (path == "/flush") {
    if (method != "POST") return {405, "text/plain; charset=utf-8", "use POST\n"};
    state_.request_flush();
    response.body = "flush requested\n";
    return response;
  }
  if (method != "GET" && method != "HEAD") return {405, "text/plain; charset=utf-8", "use GET\n"};
  if (path == "/metrics") {
    response.content_type = "text/plain; version=0.0.4; charset=utf-8";
    response.body = metrics_.serialize();
  } else if (path == "/healthz") {
    const bool alive = state_.alive(kMaxLoopSilence);
    response.status = alive ? 200 : 503;
    response.body = alive ? "ok\n" : "event loop stalled\n";
  } else if (path == "/readyz") {
    const bool ready = state_.ready && !state_.draining;
    response.status = ready ? 200 : 503;
    response.body = ready ? "ready\n" : (state_.draining ? "draining\n" : "starting\n");
  } else if (path == "/status") {
    response.content_type = "application/json";
    response.body = state_.status() + "\n";
  } else {
    response.status = 404;
    response.body = "not found: try /metrics, /healthz, /readyz, /status, POST /flush\n";
  }
  return response;
}

}  // namespace tidepool::proxy
