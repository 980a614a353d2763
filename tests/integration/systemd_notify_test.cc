// systemd Type=notify through the real binary: the test binds the unix datagram socket
// systemd would, passes it as NOTIFY_SOCKET, and checks what arrives and in which order
// (READY=1 only after a non-empty spool is replayed, STOPPING=1 at SIGTERM, WATCHDOG=1
// repeating when WATCHDOG_USEC is set, none when WATCHDOG_PID names another process).
#include <doctest/doctest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstddef>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "harness.h"

using namespace tidepool::test;

namespace {

using Labels = std::map<std::string, std::string>;
const Labels kJobs{{"route", "jobs"}};

// The service manager's end: a bound AF_UNIX datagram socket; `name` is a path, or an
// abstract name when it starts with '@' (as NOTIFY_SOCKET writes it).
class NotifySocket {
 public:
  explicit NotifySocket(std::string name) : name_(std::move(name)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    REQUIRE(name_.size() < sizeof address.sun_path);
    std::memcpy(address.sun_path, name_.data(), name_.size());
    if (name_[0] == '@') address.sun_path[0] = '\0';
    const auto length = offsetof(sockaddr_un, sun_path) + name_.size() + (name_[0] == '@' ? 0 : 1);
    REQUIRE(::bind(fd_, reinterpret_cast<const sockaddr*>(&address),
                   static_cast<socklen_t>(length)) == 0);
  }
  ~NotifySocket() { ::close(fd_); }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  [[nodiscard]] const std::string& name() const { return name_; }

  // The next datagram, or nullopt when none arrives within `timeout`.
  std::optional<std::string> receive(std::chrono::milliseconds timeout = 10s) const {
    pollfd item{fd_, POLLIN, 0};
    if (::poll(&item, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    std::string buffer(4096, '\0');
    const ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), 0);
    if (n < 0) return std::nullopt;
    buffer.resize(static_cast<std::size_t>(n));
    return buffer;
  }

 private:
  std::string name_;
  int fd_ = -1;
};

bool has_line(const std::string& datagram, const std::string& line) {
  return ("\n" + datagram).find("\n" + line + "\n") != std::string::npos ||
         ("\n" + datagram).ends_with("\n" + line);
}

nlohmann::json spool_route(int front, int back, const std::string& dir) {
  auto route = pipeline_route("jobs", front, back);
  route["spool"] = {{"dir", dir}, {"fsync", "always"}};
  return route;
}

}  // namespace

TEST_CASE("READY=1 comes after the spool replay; STOPPING=1 at SIGTERM") {
  TempDir dir;
  const int front = free_port();
  const int back = free_port();
  auto config = with_routes({spool_route(front, back, dir.path() + "/spool")});
  config["shutdown"] = {{"drain_timeout_ms", 200}};
  constexpr int kSpooled = 50;
  {  // A first run leaves kSpooled messages in the spool (no backend).
    Tidepool first(config);
    REQUIRE(first.wait_ready());
    zmq::context_t context;
    auto client = connect_socket(context, zmq::socket_type::push, front);
    for (int i = 0; i < kSpooled; ++i) client.send(zmq::buffer(std::to_string(i)));
    REQUIRE(first.wait_metric("tidepool_queue_messages", kJobs, kSpooled));
    first.signal(SIGTERM);
    REQUIRE(first.wait_exit(10s) == 0);
  }

  const NotifySocket systemd(dir.path() + "/notify");
  Tidepool tidepool(config, {}, {{"NOTIFY_SOCKET", systemd.name()}});
  // The first datagram is READY=1, and when it arrives the replay is done and counted (a
  // READY sent before the replay would find no HTTP port, or a count below kSpooled).
  const auto ready = systemd.receive(30s);
  REQUIRE(ready.has_value());
  CHECK(has_line(*ready, "READY=1"));
  CHECK(has_line(*ready, "STATUS=1 route, 50 queued"));
  CHECK(tidepool.metric("tidepool_spool_replayed_messages_total", kJobs) == kSpooled);
  CHECK(tidepool.metric("tidepool_queue_messages", kJobs) == kSpooled);
  CHECK(tidepool.http("/readyz").first == 200);

  tidepool.signal(SIGTERM);
  std::optional<std::string> stopping;
  while ((stopping = systemd.receive(10s))) {
    REQUIRE_FALSE(has_line(*stopping, "READY=1"));  // once only
    if (has_line(*stopping, "STOPPING=1")) break;
  }
  REQUIRE(stopping.has_value());
  CHECK(has_line(*stopping, "STATUS=draining: 1 route, 50 queued"));
  CHECK(tidepool.wait_exit(10s) == 0);
}

TEST_CASE("WATCHDOG=1 repeats at half of WATCHDOG_USEC (abstract NOTIFY_SOCKET)") {
  std::random_device random;
  const NotifySocket systemd("@tidepool-test-notify-" + std::to_string(random()));
  const int front = free_port();
  const int back = free_port();
  // 200 ms: pings due every 100 ms (the loop wakes for them; the test only asserts that they
  // repeat, not how fast: no timed assertions).
  Tidepool tidepool(with_routes({pipeline_route("jobs", front, back)}), {},
                    {{"NOTIFY_SOCKET", systemd.name()}, {"WATCHDOG_USEC", "200000"}});
  const auto ready = systemd.receive(30s);
  REQUIRE(ready.has_value());
  CHECK(has_line(*ready, "READY=1"));
  int pings = 0;
  while (pings < 5) {
    const auto datagram = systemd.receive(10s);
    REQUIRE(datagram.has_value());
    if (has_line(*datagram, "WATCHDOG=1")) ++pings;
  }
  CHECK(pings == 5);
  CHECK(tidepool.log().find("systemd watchdog on") != std::string::npos);
}

TEST_CASE("WATCHDOG_PID naming another process: no WATCHDOG=1, READY=1 still sent") {
  TempDir dir;
  const NotifySocket systemd(dir.path() + "/notify");
  const int front = free_port();
  const int back = free_port();
  Tidepool tidepool(
      with_routes({pipeline_route("jobs", front, back)}), {},
      {{"NOTIFY_SOCKET", systemd.name()}, {"WATCHDOG_USEC", "100000"}, {"WATCHDOG_PID", "1"}});
  const auto ready = systemd.receive(30s);
  REQUIRE(ready.has_value());
  CHECK(has_line(*ready, "READY=1"));
  // Ten ping intervals with nothing: the watchdog is off for this process.
  const auto next = systemd.receive(1s);
  CHECK_FALSE((next && has_line(*next, "WATCHDOG=1")));
}
