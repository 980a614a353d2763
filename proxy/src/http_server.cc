// The HTTP server's one thread: accepts without blocking, reads each request head into a
// bounded buffer, answers it through HttpServer::respond, writes the answer without blocking
// and closes the connection after it, or at the connection's deadline. A connection never
// makes another wait, so probes are answered however many clients are slow. (The event loop
// raises the process's fd limit before this server starts; see event_loop.cc.)

#include "tidepool/proxy/http_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <string_view>
#include <system_error>

#include "tidepool/proxy/log.h"

namespace tidepool::proxy {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The loop wakes at least every 250 ms; this much silence means it is stuck.
constexpr auto kMaxLoopSilence = 5000ms;
// epoll keys of the two fds that are not connections; connections are numbered from
// kFirstConnection in accept order and a number is never reused, so a stale event is harmless.
constexpr std::uint64_t kListenKey = 0;
constexpr std::uint64_t kStopKey = 1;
constexpr std::uint64_t kFirstConnection = 2;
// accept() calls per wake-up, so a connect flood cannot starve the connections already open.
constexpr int kAcceptBatch = 128;
// Out of fds with nothing to close: the listener stays readable, so accepting pauses instead
// of spinning.
constexpr auto kAcceptPause = 100ms;
// Reads per readiness event on one connection; level-triggered epoll calls again for the rest.
constexpr int kReadsPerEvent = 16;

// strerror's text without its static buffer: this runs on the server's thread too.
std::string error_text(int error) { return std::generic_category().message(error); }

const char* reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

std::string serialize(const HttpServer::Response& response, bool with_body) {
  std::string out =
      "HTTP/1.1 " + std::to_string(response.status) + " " + reason_phrase(response.status) +
      "\r\nContent-Type: " + response.content_type +
      "\r\nContent-Length: " + std::to_string(response.body.size()) +
      "\r\nCache-Control: no-store\r\nConnection: close\r\n" +
      (response.status == 401 ? "WWW-Authenticate: Bearer realm=\"tidepool\"\r\n" : "") + "\r\n";
  if (with_body) out += response.body;
  return out;
}

// The soft RLIMIT_NOFILE, as a count.
std::size_t open_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_cur == RLIM_INFINITY) return std::numeric_limits<std::size_t>::max();
  return static_cast<std::size_t>(limit.rlim_cur);
}

// Binds and listens on HOST:PORT (see the constructor's comment); throws StartupError.
int open_listener(const std::string& listen, int& port) {
  const auto fail = [&](const std::string& why) {
    return StartupError("http.listen " + listen + ": " + why);
  };
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) throw fail("must be HOST:PORT");
  std::string host = listen.substr(0, colon);
  const std::string port_text = listen.substr(colon + 1);
  unsigned port_number = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port_number);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port_number > 65535) {
    throw fail("port must be a number from 0 to 65535");
  }
  const auto port_be = htons(static_cast<std::uint16_t>(port_number));

  sockaddr_storage address{};
  socklen_t length = 0;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    sockaddr_in6 v6{};
    v6.sin6_family = AF_INET6;
    v6.sin6_port = port_be;
    if (::inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &v6.sin6_addr) != 1) {
      throw fail("not an IPv6 address");
    }
    std::memcpy(&address, &v6, sizeof v6);
    length = sizeof v6;
  } else {
    sockaddr_in v4{};
    v4.sin_family = AF_INET;
    v4.sin_port = port_be;
    if (host.empty() || host == "*" || host == "0.0.0.0") {
      v4.sin_addr.s_addr = htonl(INADDR_ANY);
    } else if (host == "localhost") {
      // Not resolved: /etc/hosts may list ::1 first, or only on some machines; our client
      // (and curl) try every address of localhost, so 127.0.0.1 is found either way.
      v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else if (::inet_pton(AF_INET, host.c_str(), &v4.sin_addr) != 1) {
      addrinfo hints{};
      hints.ai_family = AF_INET;
      hints.ai_socktype = SOCK_STREAM;
      addrinfo* found = nullptr;
      if (const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found); rc != 0) {
        throw fail(std::string("no IPv4 address for ") + host + ": " + gai_strerror(rc));
      }
      v4.sin_addr = reinterpret_cast<const sockaddr_in*>(found->ai_addr)->sin_addr;
      ::freeaddrinfo(found);
    }
    std::memcpy(&address, &v4, sizeof v4);
    length = sizeof v4;
  }

  const int fd = ::socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw fail(std::string("socket: ") + error_text(errno));
  const int one = 1;
  // A restart must not wait for the last run's connections in TIME_WAIT; a live listener on
  // the port still makes bind fail.
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (address.ss_family == AF_INET6) {
    // [::] means every address, IPv4 included; a specific IPv6 address only itself.
    const int v6only = 0;
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
  }
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), length) != 0 ||
      ::listen(fd, 4096) != 0) {
    const int error = errno;
    ::close(fd);
    throw fail(std::string("cannot listen there: ") + error_text(error) +
               " (address in use, or not an address of this host)");
  }
  sockaddr_storage bound{};
  socklen_t bound_length = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_length);
  port =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port
                                        : reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
  return fd;
}

// "GET /path?query HTTP/1.1" → method and path; false when the line is not a request line.
bool parse_request_line(std::string_view head, std::string& method, std::string& path) {
  const auto line_end = head.find_first_of("\r\n");
  const std::string_view line = head.substr(0, line_end);
  const auto first = line.find(' ');
  if (first == std::string_view::npos || first == 0) return false;
  const auto second = line.find(' ', first + 1);
  if (second == std::string_view::npos || second == first + 1) return false;
  if (!line.substr(second + 1).starts_with("HTTP/")) return false;
  method = std::string(line.substr(0, first));
  std::string_view target = line.substr(first + 1, second - first - 1);
  target = target.substr(0, target.find_first_of("?#"));
  path = std::string(target);
  return true;
}

// The value of header `name` (lower case) in a request head, blanks trimmed; empty when absent.
std::string_view header_value(std::string_view head, std::string_view name) {
  std::size_t at = head.find('\n');
  while (at != std::string_view::npos && at + 1 < head.size()) {
    const std::size_t start = at + 1;
    const std::size_t end = head.find('\n', start);
    std::string_view line = head.substr(start, end == std::string_view::npos ? end : end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const auto colon = line.find(':');
    if (colon == name.size() &&
        std::equal(name.begin(), name.end(), line.begin(), [](char a, char b) {
          return a == static_cast<char>(std::tolower(static_cast<unsigned char>(b)));
        })) {
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
        value.remove_prefix(1);
      }
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
        value.remove_suffix(1);
      return value;
    }
    at = end;
  }
  return {};
}

// Compares in time that depends on the lengths only, so timing does not reveal how much of a
// guessed token was right.
bool same_secret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char difference = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    difference = static_cast<unsigned char>(difference | (a[i] ^ b[i]));
  }
  return difference == 0;
}

struct Connection {
  enum class Phase {
    kReading,    // the request head is arriving
    kWriting,    // the answer is going out
    kLingering,  // answered and shut down for writing; what the client still sends is
                 // discarded until it closes, so closing early cannot reset the answer
  };
  int fd = -1;
  Clock::time_point deadline;
  Phase phase = Phase::kReading;
  std::string in;
  std::string out;
  std::size_t written = 0;
};

}  // namespace

// Every open connection, in accept order (which is deadline order: every connection gets the
// same deadline from its accept), and the epoll set they are in. Only the server thread
// touches it.
class HttpServer::Connections {
 public:
  explicit Connections(const HttpServer& server)
      : server_(server), limits_(server.limits_), epoll_(server.epoll_fd_) {}
  ~Connections() {
    for (auto& [key, connection] : open_) ::close(connection.fd);
  }
  Connections(const Connections&) = delete;
  Connections& operator=(const Connections&) = delete;

  void run() {
    std::array<epoll_event, 256> events{};
    while (true) {
      const auto now = Clock::now();
      expire(now);
      if (accept_paused_ && now >= accept_resume_) {
        watch(server_.listen_fd_, kListenKey, EPOLLIN, EPOLL_CTL_MOD);
        accept_paused_ = false;
      }
      evictions_.tick(now);
      server_.admin_refusals_.tick(now);
      const int count =
          ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), timeout_ms(now));
      if (count < 0) {
        if (errno == EINTR) continue;
        log::error("http server stopped", {{"error", error_text(errno)}});
        return;
      }
      for (int i = 0; i < count; ++i) {
        const auto& event = events[static_cast<std::size_t>(i)];
        if (event.data.u64 == kStopKey) return;
        if (event.data.u64 == kListenKey) {
          accept_some();
        } else {
          handle(event.data.u64, event.events);
        }
      }
    }
  }

 private:
  using Iterator = std::map<std::uint64_t, Connection>::iterator;

  void watch(int fd, std::uint64_t key, std::uint32_t events, int operation) const {
    epoll_event event{};
    event.events = events;
    event.data.u64 = key;
    ::epoll_ctl(epoll_, operation, fd, &event);
  }

  // Until the earliest deadline or the end of an accept pause; at most 1 s, so a clock
  // surprise cannot park the thread.
  [[nodiscard]] int timeout_ms(Clock::time_point now) const {
    auto until = now + 1s;
    if (!open_.empty()) until = std::min(until, open_.begin()->second.deadline);
    if (accept_paused_) until = std::min(until, accept_resume_);
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
    return static_cast<int>(std::max<std::int64_t>(0, left));
  }

  void close(Iterator it) {
    ::close(it->second.fd);
    buffered_output_ -= it->second.out.size();
    open_.erase(it);
  }

  // Past its deadline a connection is closed; one still sending its request is told so first
  // (one try, never waited on).
  void expire(Clock::time_point now) {
    while (!open_.empty() && open_.begin()->second.deadline <= now) {
      const auto it = open_.begin();
      if (it->second.phase == Connection::Phase::kReading && !it->second.in.empty()) {
        const std::string timeout =
            serialize({408, "text/plain; charset=utf-8", "request not complete in time\n"}, true);
        (void)::send(it->second.fd, timeout.data(), timeout.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      }
      close(it);
    }
  }

  // Closes the oldest connection that is not being answered (a connection still reading its
  // request, or one answered and lingering); when every one is being answered, the oldest.
  bool evict(std::string_view why) {
    if (open_.empty()) return false;
    auto victim = std::find_if(open_.begin(), open_.end(), [](const auto& entry) {
      return entry.second.phase != Connection::Phase::kWriting;
    });
    if (victim == open_.end()) victim = open_.begin();
    evictions_.warn(Clock::now(), "http connection closed early",
                    {{"reason", std::string(why)}, {"open", std::to_string(open_.size())}});
    close(victim);
    return true;
  }

  void accept_some() {
    for (int i = 0; i < kAcceptBatch; ++i) {
      const int fd = ::accept4(server_.listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          if (evict("out of file descriptors")) continue;
          watch(server_.listen_fd_, kListenKey, 0, EPOLL_CTL_MOD);
          accept_paused_ = true;
          accept_resume_ = Clock::now() + kAcceptPause;
        }
        return;  // EAGAIN: nothing more to accept
      }
      if (open_.size() >= limits_.max_connections) evict("connection cap");
      const std::uint64_t key = next_key_++;
      Connection connection;
      connection.fd = fd;
      connection.deadline = Clock::now() + limits_.deadline;
      open_.emplace(key, std::move(connection));
      watch(fd, key, EPOLLIN, EPOLL_CTL_ADD);
    }
  }

  void handle(std::uint64_t key, std::uint32_t events) {
    const auto it = open_.find(key);
    if (it == open_.end()) return;
    if ((events & EPOLLERR) != 0) {
      close(it);
      return;
    }
    if (it->second.phase == Connection::Phase::kWriting) {
      flush(it);
    } else {
      read(it);
    }
  }

  void read(Iterator it) {
    Connection& connection = it->second;
    std::array<char, 4096> buffer{};
    for (int i = 0; i < kReadsPerEvent; ++i) {
      const ssize_t n = ::recv(connection.fd, buffer.data(), buffer.size(), 0);
      if (n == 0) {
        close(it);
        return;
      }
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) close(it);
        return;
      }
      if (connection.phase == Connection::Phase::kLingering) continue;
      // Never more than one byte past the limit: enough to know it was passed.
      const std::size_t before = connection.in.size();
      const std::size_t room = limits_.max_request_head + 1 - before;
      connection.in.append(buffer.data(), std::min(static_cast<std::size_t>(n), room));
      const auto end = connection.in.find("\r\n\r\n", before >= 3 ? before - 3 : 0);
      const auto bare_end = connection.in.find("\n\n", before >= 1 ? before - 1 : 0);
      const auto head_end = std::min(end == std::string::npos ? end : end + 4,
                                     bare_end == std::string::npos ? bare_end : bare_end + 2);
      if (head_end != std::string::npos && head_end <= limits_.max_request_head) {
        answer(it, head_end);
        return;
      }
      if (connection.in.size() > limits_.max_request_head) {
        start_writing(
            it,
            {431, "text/plain; charset=utf-8",
             "request head over " + std::to_string(limits_.max_request_head) + " bytes\n"},
            true);
        return;
      }
    }
  }

  void answer(Iterator it, std::size_t head_end) {
    std::string method;
    std::string path;
    const std::string_view head(it->second.in.data(), head_end);
    if (!parse_request_line(head, method, path)) {
      start_writing(it, {400, "text/plain; charset=utf-8", "not an HTTP request\n"}, true);
      return;
    }
    start_writing(it, server_.respond(method, path, header_value(head, "authorization")),
                  method != "HEAD");
  }

  void start_writing(Iterator it, const Response& response, bool with_body) {
    Connection& connection = it->second;
    connection.in = std::string();  // frees the head's buffer
    connection.out = serialize(response, with_body);
    connection.phase = Connection::Phase::kWriting;
    buffered_output_ += connection.out.size();
    // Answers that clients do not read stay bounded as a whole: the oldest go first.
    while (buffered_output_ > limits_.max_buffered_output) {
      const auto victim = std::find_if(open_.begin(), open_.end(), [&](const auto& entry) {
        return entry.first != it->first && !entry.second.out.empty();
      });
      if (victim == open_.end()) break;
      evictions_.warn(Clock::now(), "http connection closed early",
                      {{"reason", "answers buffered for slow readers"},
                       {"open", std::to_string(open_.size())}});
      close(victim);
    }
    flush(it);
  }

  void flush(Iterator it) {
    Connection& connection = it->second;
    while (connection.written < connection.out.size()) {
      const ssize_t n = ::send(connection.fd, connection.out.data() + connection.written,
                               connection.out.size() - connection.written, MSG_NOSIGNAL);
      if (n >= 0) {
        connection.written += static_cast<std::size_t>(n);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        watch(connection.fd, it->first, EPOLLOUT, EPOLL_CTL_MOD);
        return;
      }
      close(it);
      return;
    }
    buffered_output_ -= connection.out.size();
    connection.out = std::string();
    ::shutdown(connection.fd, SHUT_WR);
    connection.phase = Connection::Phase::kLingering;
    watch(connection.fd, it->first, EPOLLIN, EPOLL_CTL_MOD);
  }

  const HttpServer& server_;
  const Limits limits_;
  const int epoll_;
  std::map<std::uint64_t, Connection> open_;
  std::uint64_t next_key_ = kFirstConnection;
  std::size_t buffered_output_ = 0;
  bool accept_paused_ = false;
  Clock::time_point accept_resume_{};
  log::RateLimited evictions_;
};

HttpServer::HttpServer(const std::string& listen, const Metrics& metrics, LoopState& state)
    : HttpServer(listen, metrics, state, Limits{}) {}

HttpServer::HttpServer(const std::string& listen, const Metrics& metrics, LoopState& state,
                       Limits limits)
    : HttpServer(listen, metrics, state, limits, Admin{}) {}

HttpServer::HttpServer(const std::string& listen, const Metrics& metrics, LoopState& state,
                       Limits limits, Admin admin)
    : metrics_(metrics), state_(state), limits_(limits), admin_(std::move(admin)) {
  // A quarter of the fds for HTTP leaves the rest to ZeroMQ's sockets and peers.
  limits_.max_connections = std::max<std::size_t>(
      1, std::min(limits_.max_connections, std::max<std::size_t>(16, open_file_limit() / 4)));
  listen_fd_ = open_listener(listen, port_);
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epoll_fd_ < 0 || stop_fd_ < 0) {
    const int error = errno;
    for (const int fd : {listen_fd_, epoll_fd_, stop_fd_}) {
      if (fd >= 0) ::close(fd);
    }
    throw StartupError(std::string("http server: ") + error_text(error));
  }
  for (const auto& [fd, key] : {std::pair{listen_fd_, kListenKey}, std::pair{stop_fd_, kStopKey}}) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = key;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event);
  }
  thread_ = std::thread([this] { serve(); });
}

HttpServer::~HttpServer() {
  const std::uint64_t one = 1;
  (void)::write(stop_fd_, &one, sizeof one);
  thread_.join();
  ::close(stop_fd_);
  ::close(epoll_fd_);
  ::close(listen_fd_);
}

void HttpServer::serve() {
  Connections connections(*this);
  connections.run();
}

HttpServer::Response HttpServer::respond(const std::string& method, const std::string& path,
                                         std::string_view authorization) const {
  Response response;
  if (path == "/flush") {
    if (method != "POST") return {405, "text/plain; charset=utf-8", "use POST\n"};
    if (!admin_.enabled) {
      metrics_.count_http_admin_refused();
      admin_refusals_.warn(Clock::now(), "POST /flush refused: http.admin is false",
                           {{"status", "403"}});
      return {403, "text/plain; charset=utf-8",
              "POST /flush is turned off on this tidepool (http.admin: false)\n"};
    }
    if (!admin_.token.empty()) {
      constexpr std::string_view kBearer = "Bearer ";
      const bool bearer = authorization.size() > kBearer.size() &&
                          std::equal(kBearer.begin(), kBearer.end() - 1, authorization.begin(),
                                     [](char a, char b) {
                                       return std::tolower(static_cast<unsigned char>(a)) ==
                                              std::tolower(static_cast<unsigned char>(b));
                                     }) &&
                          authorization[kBearer.size() - 1] == ' ';
      if (!bearer || !same_secret(authorization.substr(kBearer.size()), admin_.token)) {
        metrics_.count_http_admin_refused();
        admin_refusals_.warn(
            Clock::now(), "POST /flush refused: wrong or missing bearer token",
            {{"status", "401"}, {"authorization", authorization.empty() ? "none" : "wrong"}});
        return {401, "text/plain; charset=utf-8",
                "POST /flush needs \"Authorization: Bearer <token>\" with the token in "
                "http.admin_token_file\n"};
      }
    }
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
