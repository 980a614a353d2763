// Many routes through the real binary: 1,000 pipeline routes start and carry a message.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "harness.h"

using namespace tidepool::test;

namespace {

constexpr int kRoutes = 1000;

// The child inherits the limit: 1,000 routes need ~8,000 fds, the usual soft limit is 1,024.
void raise_fd_limit() {
  rlimit limit{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &limit) == 0);
  limit.rlim_cur = limit.rlim_max;
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &limit) == 0);
}

// Free ports below the kernel's ephemeral range, so that no frontend bound to port 0 (nor
// any other test's free_port()) can land on a port a backend connects to.
std::vector<int> free_low_ports(std::size_t count) {
  int low = 32768;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> low;
  std::vector<int> ports;
  for (int port = 10000; port < low && ports.size() < count; ++port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
      ports.push_back(port);
    }
    ::close(fd);
  }
  if (ports.size() < count) throw std::runtime_error("not enough free ports below the range");
  return ports;
}

}  // namespace

TEST_CASE("1,000 pipeline routes with absent backends start and carry a message") {
  raise_fd_limit();
  const auto backs = free_low_ports(kRoutes);
  std::vector<nlohmann::json> routes;
  for (int i = 0; i < kRoutes; ++i) {
    routes.push_back(
        {{"name", "r" + std::to_string(i)},
         {"frontend", {{"type", "pull"}, {"bind", {"tcp://127.0.0.1:0"}}}},
         {"backend",
          {{"type", "push"}, {"connect", {endpoint(backs[static_cast<std::size_t>(i)])}}}}});
  }
  Tidepool tidepool(with_routes(routes));
  REQUIRE_MESSAGE(tidepool.wait_ready(60s), tidepool.log().substr(0, 2000));

  // One route end to end, once its worker appears.
  const auto [code, body] = tidepool.http("/status");
  REQUIRE(code == 200);
  const auto status = nlohmann::json::parse(body);
  const auto& route = status["routes"][kRoutes / 2];
  REQUIRE(route["name"] == "r" + std::to_string(kRoutes / 2));
  const std::string front = route["frontend"]["endpoints"][0];
  zmq::context_t context;
  auto worker = bind_socket(context, zmq::socket_type::pull, backs[kRoutes / 2]);
  zmq::socket_t client(context, zmq::socket_type::push);
  client.connect(front);
  client.send(zmq::buffer(std::string("across a thousand routes")));
  zmq::message_t message;
  REQUIRE(worker.recv(message));
  CHECK(message.to_string() == "across a thousand routes");

  tidepool.signal(SIGTERM);
  CHECK(tidepool.wait_exit(30s) == 0);
}
