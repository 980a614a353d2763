// Endpoints through the real binary: IPv6 end to end, and check-config refusing what a start
// would refuse, with its exit code and reason.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <zmq.hpp>

#include "harness.h"

using namespace tidepool::test;

namespace {

// A free port on ::1, or 0 when the machine has no IPv6 loopback.
int free_port_v6() {
  const int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in6 address{};
  address.sin6_family = AF_INET6;
  address.sin6_addr = in6addr_loopback;
  int port = 0;
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin6_port);
  }
  ::close(fd);
  return port;
}

std::string v6(int port) { return "tcp://[::1]:" + std::to_string(port); }

}  // namespace

TEST_CASE("a pipeline route on [::1] carries a message end to end") {
  const int front = free_port_v6();
  const int back = free_port_v6();
  if (front == 0 || back == 0) {
    MESSAGE("skipped: this machine has no IPv6 loopback (::1)");
    return;
  }
  auto route = pipeline_route("v6", 0, 0);
  route["frontend"]["bind"] = {v6(front)};
  route["backend"]["connect"] = {v6(back)};
  Tidepool tidepool(with_routes({route}));
  REQUIRE_MESSAGE(tidepool.wait_ready(), tidepool.log());
  zmq::context_t context;
  zmq::socket_t worker(context, zmq::socket_type::pull);
  worker.set(zmq::sockopt::ipv6, true);
  worker.set(zmq::sockopt::rcvtimeo, 10000);
  worker.bind(v6(back));
  zmq::socket_t client(context, zmq::socket_type::push);
  client.set(zmq::sockopt::ipv6, true);
  client.connect(v6(front));
  client.send(zmq::buffer(std::string("over ipv6")));
  zmq::message_t message;
  REQUIRE(worker.recv(message));
  CHECK(message.to_string() == "over ipv6");
}

TEST_CASE("check-config refuses what a start would refuse, naming the key and the reason") {
  const std::string path = "/tmp/tidepool-endpoints-" + std::to_string(::getpid()) + ".json";
  const auto check = [&](const std::string& endpoint) {
    auto route = pipeline_route("r", 0, free_port());
    route["frontend"]["bind"] = {endpoint};
    std::ofstream(path) << with_routes({route}).dump();
    return run_command({TIDEPOOL_BINARY, "check-config", path});
  };
  const auto long_ipc = check("ipc:///tmp/" + std::string(200, 'x'));
  CHECK(long_ipc.exit_code == 2);
  CHECK(long_ipc.output.find("routes[0].frontend.bind[0]") != std::string::npos);
  CHECK(long_ipc.output.find("at most 107 (sun_path)") != std::string::npos);
  const auto port = check("tcp://127.0.0.1:70000");
  CHECK(port.exit_code == 2);
  CHECK(port.output.find("port must be a number from 0 to 65535") != std::string::npos);
  const auto nic = check("tcp://no-such-nic0:5580");
  CHECK(nic.exit_code == 2);
  CHECK(nic.output.find("neither an IP address nor a network interface") != std::string::npos);
  std::ofstream(path) << R"({"routes": [], "routes": []})";
  const auto twice = run_command({TIDEPOOL_BINARY, "check-config", path});
  CHECK(twice.exit_code == 2);
  CHECK(twice.output.find("routes: duplicate key") != std::string::npos);
  const auto v6_ok = check("tcp://[::1]:0");
  CHECK(v6_ok.exit_code == 0);
  ::unlink(path.c_str());
}
