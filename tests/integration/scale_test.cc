// Many routes through the real binary: 1,000 pipeline routes start, carry a message, and cost
// little CPU while every backend is absent.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "harness.h"

using namespace tidepool::test;

namespace {

using Labels = std::map<std::string, std::string>;

constexpr int kRoutes = 1000;

// Measured 1.9% of a core on 2 shared CPUs (README, "Many routes"; the goal is 2%): about
// 1.2% are libzmq's connect attempts (reconnect_max_ms 5000), the rest the event loop waking
// once a second. The bound catches a return of any earlier cost (4.2% with 2 s reconnects,
// 12-18% with 100 ms housekeeping, 55% at first). Sanitizers slow tidepool's own code, which
// is about a third of it.
#if defined(__SANITIZE_ADDRESS__)
constexpr double kMaxIdleCpuPercent = 8;
#else
constexpr double kMaxIdleCpuPercent = 3.5;
#endif
// A worker that returns to queued messages after a long absence is connected to within
// ~200 ms: its endpoint retries every 100 ms (plus libzmq's jitter of up to 100 ms) while
// messages wait, not on the back-off (reconnect_max_ms, 5000), which only the 999 idle routes
// keep. The rest is slack for a loaded machine and sanitizers.
constexpr auto kMaxNotice = 2000ms;
constexpr auto kIdleMeasurement = 10s;

// The child inherits the limit: 1,000 routes need ~8,000 fds, the usual soft limit is 1,024.
void raise_fd_limit() {
  rlimit limit{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &limit) == 0);
  limit.rlim_cur = limit.rlim_max;
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &limit) == 0);
}

// Free ports below the kernel's ephemeral range and below free_port()'s (from 20000), so that
// no frontend bound to port 0 nor any other test's free_port() can land on a port a backend
// connects to.
std::vector<int> free_low_ports(std::size_t count) {
  std::vector<int> ports;
  for (int port = 10000; port < 20000 && ports.size() < count; ++port) {
    if (can_bind(port)) ports.push_back(port);
  }
  if (ports.size() < count) throw std::runtime_error("not enough free ports in 10000-19999");
  return ports;
}

// utime + stime of a process, in seconds.
double cpu_seconds(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the command name, which may contain spaces, start after the last ')'.
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace

TEST_CASE("1,000 pipeline routes with absent backends start, stay idle, and carry a message") {
  raise_fd_limit();
  // Frontends too get ports of their own: 1,000 frontends bound to port 0 once took the HTTP
  // port the harness picked, when free_port() still drew from the ephemeral range ("Address
  // already in use").
  const auto ports = free_low_ports(2 * kRoutes);
  const std::vector<int> backs(ports.begin(), ports.begin() + kRoutes);
  const std::vector<int> fronts(ports.begin() + kRoutes, ports.end());
  std::vector<nlohmann::json> routes;
  for (int i = 0; i < kRoutes; ++i) {
    routes.push_back(
        {{"name", "r" + std::to_string(i)},
         {"frontend",
          {{"type", "pull"}, {"bind", {endpoint(fronts[static_cast<std::size_t>(i)])}}}},
         {"backend",
          {{"type", "push"}, {"connect", {endpoint(backs[static_cast<std::size_t>(i)])}}}}});
  }
  Tidepool tidepool(with_routes(routes));
  REQUIRE_MESSAGE(
      tidepool.wait_ready(60s),
      tidepool.log().substr(tidepool.log().size() > 2000 ? tidepool.log().size() - 2000 : 0));

  // Idle: every backend absent, libzmq retrying each connect with its back-off.
  // Past the start and the reconnect doublings (100 ms … 3.2 s, then reconnect_max_ms).
  std::this_thread::sleep_for(7s);
  const double before = cpu_seconds(tidepool.pid());
  const auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(kIdleMeasurement);
  const double used = cpu_seconds(tidepool.pid()) - before;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double percent = 100 * used / elapsed;
  std::cout << "idle CPU at " << kRoutes << " absent-backend routes: " << percent
            << "% of a core\n";
  CHECK(percent <= kMaxIdleCpuPercent);

  // One route end to end, once its worker appears.
  const auto [code, body] = tidepool.http("/status");
  REQUIRE(code == 200);
  const auto status = nlohmann::json::parse(body);
  const auto& route = status["routes"][kRoutes / 2];
  REQUIRE(route["name"] == "r" + std::to_string(kRoutes / 2));
  const std::string front = route["frontend"]["endpoints"][0];
  zmq::context_t context;
  zmq::socket_t client(context, zmq::socket_type::push);
  client.connect(front);
  client.send(zmq::buffer(std::string("across a thousand routes")));
  const Labels labels{{"route", route["name"].get<std::string>()}};
  REQUIRE(tidepool.wait_metric("tidepool_queue_messages", labels, 1));
  const auto appeared = std::chrono::steady_clock::now();
  auto worker = bind_socket(context, zmq::socket_type::pull, backs[kRoutes / 2]);
  zmq::message_t message;
  REQUIRE(worker.recv(message));
  const auto notice = std::chrono::steady_clock::now() - appeared;
  CHECK(message.to_string() == "across a thousand routes");
  std::cout << "returning worker noticed after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(notice).count() << " ms\n";
  CHECK(notice < kMaxNotice);

  tidepool.signal(SIGTERM);
  CHECK(tidepool.wait_exit(30s) == 0);
}
