// HttpServer: the endpoints' answers, the wire (HEAD, 404, 405, 400, 431), deadlines and the
// connection cap; and http_get, the client behind `tidepool status` and `healthcheck`.

#include "tidepool/proxy/http_server.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tidepool/proxy/event_loop.h"
#include "tidepool/proxy/http_client.h"
#include "tidepool/proxy/metrics.h"
#include "tidepool/proxy/route.h"

using tidepool::proxy::HttpReply;
using tidepool::proxy::HttpServer;
using tidepool::proxy::LoopState;
using tidepool::proxy::Metrics;
using namespace std::chrono_literals;

namespace {

// A server on a free loopback port, with its own metrics and loop state.
struct Fixture {
  Metrics metrics{"1.2.3-test"};
  LoopState state;
  HttpServer server{"127.0.0.1:0", metrics, state};

  [[nodiscard]] std::string address() const { return "127.0.0.1:" + std::to_string(server.port()); }
  // GET over a real socket; fails the test when no answer comes within 5 s.
  HttpReply get(const std::string& path) const {
    std::string error;
    const auto reply = tidepool::proxy::http_get(address(), path, 5000ms, error);
    REQUIRE_MESSAGE(reply.has_value(), "GET " << path << ": " << error);
    return *reply;
  }
};

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A loopback port nobody listens on: bind port 0, read it, close.
int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  socklen_t length = sizeof address;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  ::close(fd);
  return ntohs(address.sin_port);
}

bool readable(int fd) {
  pollfd item{fd, POLLIN, 0};
  return ::poll(&item, 1, 0) == 1;
}

// A plain TCP connection to 127.0.0.1:port (blocking), for requests http_get cannot send.
int connect_raw(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  return fd;
}

// Everything the server sends until it closes (or `timeout` passes: then "TIMEOUT" is added).
std::string read_to_eof(int fd, std::chrono::milliseconds timeout = 5000ms) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string text;
  char buffer[4096];
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd item{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&item, 1, static_cast<int>(left.count())) != 1) {
      return text + "TIMEOUT";
    }
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) return text;
    text.append(buffer, static_cast<std::size_t>(n));
  }
}

// Sends `request` on a new connection and returns the whole answer.
std::string exchange(int port, const std::string& request) {
  const int fd = connect_raw(port);
  REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size()));
  std::string answer = read_to_eof(fd);
  ::close(fd);
  return answer;
}

}  // namespace

TEST_CASE("listens on an ephemeral port and reports it") {
  Fixture f;
  CHECK(f.server.port() > 0);
  CHECK(f.server.port() <= 65535);
}

TEST_CASE("GET /metrics serves the registry in text format") {
  Fixture f;
  tidepool::proxy::RouteMetrics route(f.metrics, "requests");
  tidepool::proxy::RouteCounters counters;
  counters.received_messages = 17;
  route.publish(counters, tidepool::proxy::RouteGauges{});
  const HttpReply reply = f.get("/metrics");
  CHECK(reply.status == 200);
  CHECK(contains(reply.body, "tidepool_build_info{libzmq=\"" + tidepool::proxy::libzmq_version() +
                                 "\",version=\"1.2.3-test\"} 1\n"));
  CHECK(contains(reply.body, "# TYPE tidepool_queue_messages gauge\n"));
  CHECK(contains(reply.body, "tidepool_received_messages_total{route=\"requests\"} 17\n"));
  // Same body as serialize() (nothing published in between), but for the process_* values,
  // read from /proc at each scrape.
  const auto registry_part = [](const std::string& text) {
    return text.substr(0, text.find("# HELP process_"));
  };
  CHECK(registry_part(reply.body) == registry_part(f.metrics.serialize()));

  const auto direct = f.server.respond("GET", "/metrics");
  CHECK(direct.status == 200);
  CHECK(direct.content_type == "text/plain; version=0.0.4; charset=utf-8");
}

TEST_CASE("GET /healthz: 503 until the loop has ticked, 200 after a heartbeat") {
  Fixture f;
  HttpReply reply = f.get("/healthz");
  CHECK(reply.status == 503);
  CHECK(reply.body == "event loop stalled\n");
  f.state.heartbeat();
  reply = f.get("/healthz");
  CHECK(reply.status == 200);
  CHECK(reply.body == "ok\n");
}

TEST_CASE("GET /readyz: 503 while starting, 200 when ready, 503 while draining") {
  Fixture f;
  HttpReply reply = f.get("/readyz");
  CHECK(reply.status == 503);
  CHECK(reply.body == "starting\n");
  f.state.ready = true;
  reply = f.get("/readyz");
  CHECK(reply.status == 200);
  CHECK(reply.body == "ready\n");
  f.state.draining = true;
  reply = f.get("/readyz");
  CHECK(reply.status == 503);
  CHECK(reply.body == "draining\n");
}

TEST_CASE("GET /status returns the snapshot the loop published") {
  Fixture f;
  f.state.set_status(R"({"routes":[{"name":"requests","queue_messages":3}]})");
  HttpReply reply = f.get("/status");
  CHECK(reply.status == 200);
  CHECK(reply.body == "{\"routes\":[{\"name\":\"requests\",\"queue_messages\":3}]}\n");
  f.state.set_status(R"({"routes":[]})");
  reply = f.get("/status");
  CHECK(reply.body == "{\"routes\":[]}\n");
  const auto direct = f.server.respond("GET", "/status");
  CHECK(direct.status == 200);
  CHECK(direct.content_type == "application/json");
}

TEST_CASE("/flush is POST only and raises the flush request once") {
  Fixture f;
  CHECK_FALSE(f.state.take_flush_request());

  const auto get = f.server.respond("GET", "/flush");
  CHECK(get.status == 405);
  CHECK_FALSE(f.state.take_flush_request());
  CHECK(f.get("/flush").status == 405);  // http_get sends GET
  CHECK_FALSE(f.state.take_flush_request());
  CHECK_FALSE(readable(f.state.wake_fd()));

  const auto post = f.server.respond("POST", "/flush");
  CHECK(post.status == 200);
  // The loop is woken through its eventfd, and sees the request exactly once.
  CHECK(readable(f.state.wake_fd()));
  f.state.clear_wake();
  CHECK_FALSE(readable(f.state.wake_fd()));
  CHECK(f.state.take_flush_request());
  CHECK_FALSE(f.state.take_flush_request());
}

TEST_CASE("other methods on GET endpoints are 405") {
  Fixture f;
  for (const char* path : {"/metrics", "/healthz", "/readyz", "/status"}) {
    CAPTURE(path);
    CHECK(f.server.respond("POST", path).status == 405);
    CHECK(f.server.respond("DELETE", path).status == 405);
  }
  CHECK(f.server.respond("HEAD", "/metrics").status == 200);
}

TEST_CASE("unknown paths are 404") {
  Fixture f;
  CHECK(f.server.respond("GET", "/").status == 404);
  CHECK(f.server.respond("GET", "/nope").status == 404);
  CHECK(f.server.respond("GET", "/metrics/extra").status == 404);
  CHECK(f.get("/nope").status == 404);
  CHECK(f.get("/").status == 404);
  CHECK(f.get("/metrics/extra").status == 404);
}

TEST_CASE("concurrent scrapes all succeed") {
  Fixture f;
  tidepool::proxy::RouteMetrics route(f.metrics, "r");
  f.state.heartbeat();
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        std::string error;
        const auto reply =
            tidepool::proxy::http_get(f.address(), i % 2 ? "/metrics" : "/healthz", 5000ms, error);
        if (reply && reply->status == 200) ++ok;
      }
    });
  }
  // The loop keeps publishing while the HTTP threads read.
  tidepool::proxy::RouteCounters counters;
  for (int i = 0; i < 200; ++i) {
    counters.received_messages += 1;
    route.publish(counters, tidepool::proxy::RouteGauges{});
  }
  for (auto& client : clients) client.join();
  CHECK(ok == 40);
  CHECK(contains(f.get("/metrics").body, "tidepool_received_messages_total{route=\"r\"} 200\n"));
}

TEST_CASE("a port in use is a StartupError") {
  Fixture f;
  Metrics metrics("x");
  LoopState state;
  CHECK_THROWS_AS(HttpServer(f.address(), metrics, state), tidepool::proxy::StartupError);
  // The first server still answers.
  CHECK(f.get("/readyz").status == 503);
}

TEST_CASE("binds the address it is told and nowhere else") {
  // All of 127.0.0.0/8 is this host, so a server listening on every address would answer
  // on 127.0.0.2 as well as on 127.0.0.1.
  Fixture f;
  const std::string port = std::to_string(f.server.port());
  std::string error;
  CHECK(tidepool::proxy::http_get("127.0.0.1:" + port, "/readyz", 5000ms, error).has_value());
  CHECK_FALSE(tidepool::proxy::http_get("127.0.0.2:" + port, "/readyz", 5000ms, error));
  CHECK(contains(error, "127.0.0.2:" + port));

  Metrics metrics("x");
  LoopState state;
  HttpServer other("127.0.0.2:0", metrics, state);
  const std::string other_port = std::to_string(other.port());
  CHECK(tidepool::proxy::http_get("127.0.0.2:" + other_port, "/readyz", 5000ms, error));
  CHECK_FALSE(tidepool::proxy::http_get("127.0.0.1:" + other_port, "/readyz", 5000ms, error));
}

TEST_CASE("http_get: 0.0.0.0 and * mean this host") {
  Fixture f;
  const std::string port = std::to_string(f.server.port());
  std::string error;
  for (const std::string host : {"0.0.0.0", "*", "localhost"}) {
    CAPTURE(host);
    const auto reply = tidepool::proxy::http_get(host + ":" + port, "/readyz", 5000ms, error);
    REQUIRE_MESSAGE(reply.has_value(), error);
    CHECK(reply->status == 503);
  }
}

TEST_CASE("http_get reports why there is no answer") {
  std::string error;
  CHECK_FALSE(tidepool::proxy::http_get("no-port-here", "/", 1000ms, error).has_value());
  CHECK(contains(error, "not HOST:PORT"));
  error.clear();
  const std::string address = "127.0.0.1:" + std::to_string(closed_port());
  CHECK_FALSE(tidepool::proxy::http_get(address, "/healthz", 2000ms, error).has_value());
  CHECK(contains(error, address));
}

TEST_CASE("http_get times out on a server that never answers") {
  // A listening socket whose connections are accepted by the kernel but never read.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(::listen(fd, 4) == 0);
  socklen_t length = sizeof address;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  std::string error;
  const auto start = std::chrono::steady_clock::now();
  const auto reply = tidepool::proxy::http_get(
      "127.0.0.1:" + std::to_string(ntohs(address.sin_port)), "/healthz", 300ms, error);
  const auto took = std::chrono::steady_clock::now() - start;
  ::close(fd);
  CHECK_FALSE(reply.has_value());
  CHECK(contains(error, "within the timeout"));
  CHECK(took < 5s);
}

TEST_CASE("HEAD answers the headers of GET without the body") {
  Fixture f;
  f.state.heartbeat();
  const std::string answer = exchange(f.server.port(), "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(answer.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(contains(answer, "\r\nContent-Length: 3\r\n"));
  CHECK(contains(answer, "\r\nConnection: close\r\n"));
  CHECK(answer.ends_with("\r\n\r\n"));
  const std::string get = exchange(f.server.port(), "GET /healthz HTTP/1.1\r\n\r\n");
  CHECK(get.ends_with("\r\n\r\nok\n"));
}

TEST_CASE("on the wire: unknown paths 404, wrong methods 405, a query string is ignored") {
  Fixture f;
  f.state.heartbeat();
  const int port = f.server.port();
  CHECK(exchange(port, "GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 Not Found\r\n"));
  CHECK(exchange(port, "GET /healthz/x HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 404 "));
  CHECK(exchange(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
            .starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
  CHECK(exchange(port, "DELETE /healthz HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 "));
  CHECK(exchange(port, "GET /flush HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 "));
  CHECK_FALSE(f.state.take_flush_request());
  CHECK(exchange(port, "GET /healthz?verbose=1 HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 "));
  // Bare newlines are accepted as well as CRLF.
  CHECK(exchange(port, "GET /healthz HTTP/1.0\n\n").starts_with("HTTP/1.1 200 "));
  CHECK(exchange(port, "nonsense\r\n\r\n").starts_with("HTTP/1.1 400 Bad Request\r\n"));
}

TEST_CASE("POST /flush with a body: answered 200, the unread body does not reset the answer") {
  Fixture f;
  const std::string body(2000, 'x');
  const std::string answer =
      exchange(f.server.port(), "POST /flush HTTP/1.1\r\nContent-Length: 2000\r\n\r\n" + body);
  CHECK(answer.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(answer.ends_with("flush requested\n"));
  CHECK(f.state.take_flush_request());
}

TEST_CASE("a request head over the limit is 431, and the connection is closed") {
  Fixture f;
  const int fd = connect_raw(f.server.port());
  std::string request = "GET /healthz HTTP/1.1\r\nX-Big: ";
  request.append(20 * 1024, 'a');  // over the 16 KiB limit, never a blank line
  // The server may answer and stop reading before all of it is sent.
  (void)::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  const std::string answer = read_to_eof(fd);
  ::close(fd);
  CHECK(answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
  CHECK_FALSE(contains(answer, "TIMEOUT"));
  // A head just under the limit is served.
  std::string fits = "GET /readyz HTTP/1.1\r\nX-Big: ";
  fits.append(15 * 1024, 'a');
  CHECK(exchange(f.server.port(), fits + "\r\n\r\n").starts_with("HTTP/1.1 503 "));
}

TEST_CASE("a partial request, or none, is closed at the connection's deadline") {
  Metrics metrics("x");
  LoopState state;
  HttpServer::Limits limits;
  limits.deadline = 300ms;
  HttpServer server("127.0.0.1:0", metrics, state, limits);
  const auto start = std::chrono::steady_clock::now();
  const int partial = connect_raw(server.port());
  const int idle = connect_raw(server.port());
  const std::string half = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  REQUIRE(::send(partial, half.data(), half.size(), 0) == static_cast<ssize_t>(half.size()));
  const std::string answer = read_to_eof(partial);
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"));
  CHECK(took >= 250ms);
  CHECK(took < 3s);
  CHECK(read_to_eof(idle).empty());  // closed without a word: it asked nothing
  ::close(partial);
  ::close(idle);
  // Meanwhile, and after, others are served.
  std::string error;
  CHECK(tidepool::proxy::http_get("127.0.0.1:" + std::to_string(server.port()), "/readyz", 2000ms,
                                  error));
}

TEST_CASE("at the connection cap, the oldest idle connection is closed, never the probe") {
  Metrics metrics("x");
  LoopState state;
  state.heartbeat();
  HttpServer::Limits limits;
  limits.max_connections = 8;
  HttpServer server("127.0.0.1:0", metrics, state, limits);
  CHECK(server.max_connections() == 8);
  std::vector<int> idle;
  for (int i = 0; i < 20; ++i) idle.push_back(connect_raw(server.port()));
  std::string error;
  const auto start = std::chrono::steady_clock::now();
  const auto reply = tidepool::proxy::http_get("127.0.0.1:" + std::to_string(server.port()),
                                               "/healthz", 5000ms, error);
  CHECK(std::chrono::steady_clock::now() - start < 1s);
  REQUIRE_MESSAGE(reply.has_value(), error);
  CHECK(reply->status == 200);
  // The first ones were closed to make room (EOF), the newest are still open.
  CHECK(read_to_eof(idle.front(), 2000ms).empty());
  CHECK(read_to_eof(idle.back(), 200ms) == "TIMEOUT");
  for (const int fd : idle) ::close(fd);
}

TEST_CASE("the connection cap is held to a quarter of the fd limit") {
  Fixture f;
  CHECK(f.server.max_connections() <= 4096);
  CHECK(f.server.max_connections() >= 16);
}

TEST_CASE("localhost as the listen host binds 127.0.0.1") {
  Metrics metrics("x");
  LoopState state;
  HttpServer server("localhost:0", metrics, state);
  std::string error;
  const auto reply = tidepool::proxy::http_get("127.0.0.1:" + std::to_string(server.port()),
                                               "/readyz", 2000ms, error);
  REQUIRE_MESSAGE(reply.has_value(), error);
  CHECK(reply->status == 503);
  CHECK_THROWS_AS(HttpServer("256.1.1.1:0", metrics, state), tidepool::proxy::StartupError);
  CHECK_THROWS_AS(HttpServer("127.0.0.1:70000", metrics, state), tidepool::proxy::StartupError);
}

TEST_CASE("http_get tries every address: a name whose first address refuses still connects") {
  // "localhost" on a stock Debian is ::1 then 127.0.0.1 (or the reverse); the server listens
  // on 127.0.0.1 only. Whatever this machine's /etc/hosts says, an IPv4-only server must be
  // found through the name.
  Fixture f;
  std::string error;
  const auto reply = tidepool::proxy::http_get("localhost:" + std::to_string(f.server.port()),
                                               "/readyz", 5000ms, error);
  REQUIRE_MESSAGE(reply.has_value(), error);
  CHECK(reply->status == 503);
  // Every address refusing: the error names the address asked for.
  const std::string closed = "localhost:" + std::to_string(closed_port());
  CHECK_FALSE(tidepool::proxy::http_get(closed, "/healthz", 2000ms, error));
  CHECK(contains(error, closed));
  CHECK(contains(error, "127.0.0.1"));
}

namespace {

double refused(const Metrics& metrics) {
  const std::string text = metrics.serialize();
  const std::string series = "\ntidepool_http_admin_refused_total ";
  const auto at = text.find(series);
  REQUIRE(at != std::string::npos);
  return std::stod(text.substr(at + series.size()));
}

}  // namespace

TEST_CASE("HEAD /metrics: GET's headers, Content-Length of GET's body, no body") {
  Fixture f;
  const std::string answer = exchange(f.server.port(), "HEAD /metrics HTTP/1.1\r\n\r\n");
  CHECK(answer.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(contains(answer, "Content-Type: text/plain; version=0.0.4"));
  CHECK(answer.ends_with("\r\n\r\n"));  // nothing after the head
  const auto length_at = answer.find("Content-Length: ");
  REQUIRE(length_at != std::string::npos);
  CHECK(std::stoul(answer.substr(length_at + 16)) > 1000);  // the size of the exposition
}

TEST_CASE("http.admin false: POST /flush is 403 with a reason, counted, no flush") {
  Metrics metrics{"1.2.3-test"};
  LoopState state;
  const HttpServer server{"127.0.0.1:0", metrics, state, HttpServer::Limits{}, {false, ""}};
  const std::string answer =
      exchange(server.port(), "POST /flush HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  CHECK(answer.starts_with("HTTP/1.1 403 Forbidden\r\n"));
  CHECK(contains(answer, "http.admin: false"));
  CHECK_FALSE(state.take_flush_request());
  CHECK(refused(metrics) == 1);
  // The read-only endpoints are unaffected.
  CHECK(exchange(server.port(), "GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 "));
}

TEST_CASE("http.admin_token_file: POST /flush needs Authorization: Bearer <token>") {
  Metrics metrics{"1.2.3-test"};
  LoopState state;
  const HttpServer server{"127.0.0.1:0", metrics, state, HttpServer::Limits{}, {true, "s3cret"}};
  const int port = server.port();
  const auto post = [&](const std::string& headers) {
    // Parenthesised: no argument-dependent lookup, which would find std::exchange.
    return (exchange)(port, "POST /flush HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n");
  };
  const std::string missing = post("");
  CHECK(missing.starts_with("HTTP/1.1 401 Unauthorized\r\n"));
  CHECK(contains(missing, "\r\nWWW-Authenticate: Bearer realm=\"tidepool\"\r\n"));
  CHECK(contains(missing, "Authorization: Bearer <token>"));
  CHECK(post("Authorization: Bearer wrong\r\n").starts_with("HTTP/1.1 401 "));
  CHECK(post("Authorization: Bearer s3cre\r\n").starts_with("HTTP/1.1 401 "));    // a prefix
  CHECK(post("Authorization: Bearer s3cret2\r\n").starts_with("HTTP/1.1 401 "));  // longer
  CHECK(post("Authorization: Basic s3cret\r\n").starts_with("HTTP/1.1 401 "));
  CHECK(post("X-Authorization: Bearer s3cret\r\n").starts_with("HTTP/1.1 401 "));
  CHECK_FALSE(state.take_flush_request());
  CHECK(refused(metrics) == 6);

  CHECK(post("Authorization: Bearer s3cret\r\n").starts_with("HTTP/1.1 200 "));
  CHECK(state.take_flush_request());
  // Header names and the scheme are case-insensitive (RFC 9110); blanks around the value go.
  CHECK(post("authorization:   bearer s3cret  \r\n").starts_with("HTTP/1.1 200 "));
  CHECK(state.take_flush_request());
  CHECK(refused(metrics) == 6);
  // GET endpoints need no token.
  CHECK(exchange(port, "GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 "));
}
