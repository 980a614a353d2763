// The HTTP port through the real binary: probes answered while 1,000 slow or idle clients
// hold connections, tidepool's fds and memory bounded meanwhile, and `tidepool healthcheck
// --http localhost:PORT` with Debian's stock /etc/hosts (localhost is ::1 as well).
#include <doctest/doctest.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>
#include <utility>
#include <vector>

#include "harness.h"
#include "tidepool/proxy/http_client.h"

using namespace tidepool::test;

namespace {

std::size_t open_fds(pid_t pid) {
  std::size_t count = 0;
  std::error_code ignored;
  for (auto it =
           std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ignored);
       it != std::filesystem::directory_iterator(); it.increment(ignored)) {
    ++count;
  }
  return count;
}

// The fd count once it holds still for 200 ms: the last probe's connection may still be open.
std::size_t settled_fds(pid_t pid) {
  std::size_t last = open_fds(pid);
  wait_until(
      [&] {
        std::this_thread::sleep_for(200ms);
        const std::size_t now = open_fds(pid);
        return std::exchange(last, now) == now;
      },
      5s);
  return last;
}

// VmRSS in KiB.
std::size_t rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) return std::stoul(line.substr(6));
  }
  return 0;
}

// The test process holds 1,000 sockets of its own; the default soft limit may be 1,024.
void raise_own_fd_limit() {
  rlimit limit{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &limit) == 0);
  limit.rlim_cur = limit.rlim_max;
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &limit) == 0);
  REQUIRE_MESSAGE(limit.rlim_cur >= 1200, "the hard fd limit is " << limit.rlim_cur);
}

int connect_nonblocking(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  const int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  REQUIRE((rc == 0 || errno == EINPROGRESS));
  return fd;
}

// Seconds one GET took; fails the test unless it answered 200.
double probe(int port, const std::string& path) {
  const auto start = std::chrono::steady_clock::now();
  std::string error;
  const auto reply =
      tidepool::proxy::http_get("127.0.0.1:" + std::to_string(port), path, 5s, error);
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  REQUIRE_MESSAGE(reply.has_value(), path << ": " << error);
  CHECK(reply->status == 200);
  return took;
}

}  // namespace

TEST_CASE("1,000 slow and idle connections: probes answer within 1 s, fds and RSS bounded") {
  raise_own_fd_limit();
  Tidepool tidepool(with_routes({pipeline_route("r", free_port(), free_port())}));
  REQUIRE(tidepool.wait_ready());
  const std::size_t base_fds = settled_fds(tidepool.pid());
  const std::size_t base_rss = rss_kib(tidepool.pid());

  // Even ones stay silent after connecting; odd ones send half a request, then one more
  // header byte every ~500 ms, never the blank line that ends it.
  constexpr int kSlow = 1000;
  std::vector<int> sockets;
  for (int i = 0; i < kSlow; ++i) sockets.push_back(connect_nonblocking(tidepool.http_port()));
  std::this_thread::sleep_for(100ms);  // let the connects complete before the first bytes
  const std::string half = "GET /metrics HTTP/1.1\r\nHost: slow\r\nX-Slow: ";
  for (int i = 1; i < kSlow; i += 2) {
    (void)::send(sockets[static_cast<std::size_t>(i)], half.data(), half.size(), MSG_NOSIGNAL);
  }
  std::atomic<bool> stop{false};
  std::thread trickler([&] {
    while (!stop) {
      for (int i = 1; i < kSlow && !stop; i += 2) {
        (void)::send(sockets[static_cast<std::size_t>(i)], "a", 1, MSG_NOSIGNAL);
      }
      for (int t = 0; t < 50 && !stop; ++t) std::this_thread::sleep_for(10ms);
    }
  });
  // Stops and joins the trickler on every way out, a failed REQUIRE included.
  struct Joiner {
    std::atomic<bool>& stop;
    std::thread& thread;
    ~Joiner() {
      stop = true;
      if (thread.joinable()) thread.join();
    }
  } joiner{stop, trickler};

  // Every connection is really held by tidepool (accepted, an fd each) while it is probed.
  REQUIRE_MESSAGE(wait_until([&] { return open_fds(tidepool.pid()) >= base_fds + kSlow; }, 5s),
                  "tidepool holds " << open_fds(tidepool.pid()) - base_fds << " of the " << kSlow);
  double worst_healthz = 0;
  double worst_metrics = 0;
  std::size_t peak_fds = 0;
  std::size_t peak_rss = 0;
  // 3 s of probes, well inside the 10 s deadline of the slow connections.
  for (int round = 0; round < 10; ++round) {
    worst_healthz = std::max(worst_healthz, probe(tidepool.http_port(), "/healthz"));
    worst_metrics = std::max(worst_metrics, probe(tidepool.http_port(), "/metrics"));
    peak_fds = std::max(peak_fds, open_fds(tidepool.pid()));
    peak_rss = std::max(peak_rss, rss_kib(tidepool.pid()));
    std::this_thread::sleep_for(300ms);
  }
  MESSAGE("with " << kSlow << " slow connections: /healthz max " << worst_healthz * 1000
                  << " ms, /metrics max " << worst_metrics * 1000 << " ms; tidepool fds "
                  << base_fds << " -> peak " << peak_fds << ", RSS " << base_rss << " -> peak "
                  << peak_rss << " KiB");
  CHECK(worst_healthz < 1.0);
  CHECK(worst_metrics < 1.0);
  // One fd per connection and a few for the probes; a few hundred bytes of memory each.
  CHECK(peak_fds <= base_fds + kSlow + 20);
  CHECK(peak_rss <= base_rss + 16 * 1024);

  // The trickling ones keep sending, yet tidepool closes every one at its 10 s deadline.
  CHECK_MESSAGE(wait_until([&] { return open_fds(tidepool.pid()) <= base_fds + 2; }, 15s),
                "tidepool still holds " << open_fds(tidepool.pid()) - base_fds);
  stop = true;
  trickler.join();
  for (const int fd : sockets) ::close(fd);
  CHECK(wait_until([&] { return open_fds(tidepool.pid()) <= base_fds + 2; }, 5s));
  CHECK(probe(tidepool.http_port(), "/healthz") < 1.0);
}

TEST_CASE("connections beyond the cap close the oldest idle ones, never the probe") {
  raise_own_fd_limit();
  Tidepool tidepool(with_routes({pipeline_route("r", free_port(), free_port())}));
  REQUIRE(tidepool.wait_ready());
  const std::size_t base_fds = settled_fds(tidepool.pid());
  // 4,096 is the cap when the fd limit allows it (a quarter of the soft limit otherwise).
  rlimit limit{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &limit) == 0);
  if (limit.rlim_max < 4096 * 4) {
    MESSAGE("skipped: the hard fd limit " << limit.rlim_max << " is too low for the cap test");
    return;
  }
  constexpr int kFlood = 5000;
  std::vector<int> sockets;
  for (int i = 0; i < kFlood; ++i) sockets.push_back(connect_nonblocking(tidepool.http_port()));
  CHECK(wait_until([&] { return open_fds(tidepool.pid()) >= base_fds + 4000; }, 10s));
  double worst = 0;
  for (int round = 0; round < 5; ++round)
    worst = std::max(worst, probe(tidepool.http_port(), "/healthz"));
  const std::size_t held = open_fds(tidepool.pid()) - base_fds;
  MESSAGE(kFlood << " idle connections: tidepool holds " << held << ", /healthz max "
                 << worst * 1000 << " ms");
  CHECK(held <= 4096 + 2);
  CHECK(worst < 1.0);
  for (const int fd : sockets) ::close(fd);
  CHECK(wait_until([&] { return open_fds(tidepool.pid()) <= base_fds + 2; }, 5s));
}

TEST_CASE("tidepool healthcheck --http localhost:PORT with Debian's stock /etc/hosts") {
  Tidepool tidepool(with_routes({pipeline_route("r", free_port(), free_port())}));
  REQUIRE(tidepool.wait_ready());
  const auto directory =
      std::filesystem::temp_directory_path() / ("tidepool-hosts-" + std::to_string(::getpid()));
  std::filesystem::create_directories(directory);
  const std::string hosts = (directory / "hosts").string();
  // A private mount namespace binds a file over /etc/hosts for one command only.
  const auto in_namespace = [&](const std::string& command) {
    return run_command({"/usr/bin/unshare", "-m", "/bin/sh", "-c",
                        "mount --bind " + hosts + " /etc/hosts && " + command},
                       20s);
  };
  std::ofstream(hosts) << "127.0.0.1 localhost\n";
  if (const auto probe_result = in_namespace("true"); probe_result.exit_code != 0) {
    MESSAGE("skipped: no private mount namespace here (unshare -m, mount --bind): "
            << probe_result.output);
    std::filesystem::remove_all(directory);
    return;
  }
  const std::string v4 = "127.0.0.1 localhost\n";
  const std::string v6 = "::1 localhost ip6-localhost ip6-loopback\n";
  for (const std::string& contents : {v4 + v6, v6 + v4}) {
    CAPTURE(contents);
    std::ofstream(hosts) << contents;
    // getent shows the order the resolver gives, so a failure says what it was.
    const auto order = in_namespace("getent ahosts localhost");
    CAPTURE(order.output);
    for (const char* command : {"healthcheck", "status"}) {
      CAPTURE(command);
      const auto result = in_namespace(std::string(TIDEPOOL_BINARY) + " " + command +
                                       " --http localhost:" + std::to_string(tidepool.http_port()));
      CHECK_MESSAGE(result.exit_code == 0, result.output);
    }
  }
  std::filesystem::remove_all(directory);
}
