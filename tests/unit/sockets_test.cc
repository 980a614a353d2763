// sockets: the options each role gets, attach's errors, whole-message I/O where "would block"
// and "unroutable" are values, and SocketMonitor's fd. Real sockets on loopback and inproc.
#include "tidepool/proxy/sockets.h"

#include <poll.h>

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

using tidepool::protocol::Multipart;
using tidepool::proxy::attach;
using tidepool::proxy::configure_socket;
using tidepool::proxy::Presence;
using tidepool::proxy::recv_multipart;
using tidepool::proxy::send_multipart;
using tidepool::proxy::SendResult;
using tidepool::proxy::SocketConfig;
using tidepool::proxy::SocketMonitor;
using tidepool::proxy::SocketRole;
using tidepool::proxy::SocketType;
using tidepool::proxy::StartupError;
using namespace std::chrono_literals;

namespace {

Multipart frames(const std::vector<std::string>& parts) {
  Multipart m;
  for (const auto& p : parts) m.push_back(std::string_view(p));
  return m;
}

}  // namespace

TEST_CASE("attach: ephemeral ports are resolved; a port in use is an error naming it") {
  zmq::context_t context;
  zmq::socket_t first(context, zmq::socket_type::pull);
  std::vector<std::string> endpoints;
  attach(first, {"tcp://127.0.0.1:0"}, {}, "jobs", "frontend", endpoints);
  REQUIRE(endpoints.size() == 1);
  CHECK(endpoints[0].starts_with("tcp://127.0.0.1:"));
  CHECK(endpoints[0] != "tcp://127.0.0.1:0");

  zmq::socket_t second(context, zmq::socket_type::pull);
  std::vector<std::string> more;
  try {
    attach(second, {endpoints[0]}, {}, "jobs", "frontend", more);
    FAIL("a second bind to the same port succeeded");
  } catch (const StartupError& e) {
    const std::string what = e.what();
    CHECK(what.find("route jobs: cannot bind frontend " + endpoints[0]) != std::string::npos);
    CHECK(what.find("another process listens there") != std::string::npos);
  }
  CHECK(more.empty());
}

TEST_CASE("send_multipart: would block and unroutable are values; a started message goes whole") {
  zmq::context_t context;
  SocketConfig push_config;
  push_config.type = SocketType::kPush;
  zmq::socket_t push(context, zmq::socket_type::push);
  configure_socket(push, push_config, "r", SocketRole{.backend = true, .immediate = true});
  push.bind("inproc://nobody");
  Multipart message = frames({"a"});
  CHECK(send_multipart(push, message) == SendResult::kWouldBlock);  // no peer: IMMEDIATE

  SocketConfig router_config;
  router_config.type = SocketType::kRouter;
  zmq::socket_t router(context, zmq::socket_type::router);
  configure_socket(router, router_config, "r", SocketRole{});
  router.bind("inproc://router");
  Multipart to_nobody = frames({"nobody", "", "reply"});
  CHECK(send_multipart(router, to_nobody) == SendResult::kUnroutable);

  zmq::socket_t client(context, zmq::socket_type::dealer);
  client.set(zmq::sockopt::routing_id, "client");
  client.connect("inproc://router");
  client.send(zmq::str_buffer("hello"));  // the router learns the id
  Multipart hello;
  for (int i = 0; i < 100 && !recv_multipart(router, hello); ++i) std::this_thread::sleep_for(1ms);
  REQUIRE(hello.size() == 2);
  CHECK(hello.frame_view(0) == "client");
  Multipart reply = frames({"client", "", "one", "two"});
  REQUIRE(send_multipart(router, reply) == SendResult::kSent);
  Multipart got;
  for (int i = 0; i < 100 && !recv_multipart(client, got); ++i) std::this_thread::sleep_for(1ms);
  REQUIRE(got.size() == 3);
  CHECK(got.frame_view(2) == "two");
  Multipart none;
  CHECK_FALSE(recv_multipart(client, none));
}

TEST_CASE("configure_socket: a router frontend that may go unread gets keepalive, not PINGs") {
  zmq::context_t context;
  SocketConfig config;
  config.type = SocketType::kRouter;
  config.heartbeat_ms = 2000;
  zmq::socket_t unread(context, zmq::socket_type::router);
  configure_socket(unread, config, "r", SocketRole{.may_be_unread = true});
  CHECK(unread.get(zmq::sockopt::tcp_keepalive) == 1);
  CHECK(unread.get(zmq::sockopt::tcp_keepalive_idle) == 2);
  CHECK(unread.get(zmq::sockopt::heartbeat_ivl) == 0);

  // A pull frontend that may go unread keeps sending PINGs but never times a peer out (it
  // cannot hear it while unread); the kernel's TCP_USER_TIMEOUT notices a vanished peer.
  config.type = SocketType::kPull;
  zmq::socket_t pull(context, zmq::socket_type::pull);
  configure_socket(pull, config, "r", SocketRole{.may_be_unread = true});
  CHECK(pull.get(zmq::sockopt::heartbeat_ivl) == 2000);
  CHECK(pull.get(zmq::sockopt::heartbeat_timeout) == 0);
  CHECK(pull.get(zmq::sockopt::tcp_maxrt) == 6000);

  // Read always: the usual ZMTP heartbeat timeout of three intervals.
  zmq::socket_t read(context, zmq::socket_type::pull);
  configure_socket(read, config, "r", SocketRole{});
  CHECK(read.get(zmq::sockopt::heartbeat_timeout) == 6000);
}

TEST_CASE("configure_socket: a connect unanswered for three heartbeat intervals is retried") {
  zmq::context_t context;
  SocketConfig config;
  config.type = SocketType::kDealer;
  config.heartbeat_ms = 1000;
  zmq::socket_t dealer(context, zmq::socket_type::dealer);
  configure_socket(dealer, config, "r", SocketRole{.backend = true});
  CHECK(dealer.get(zmq::sockopt::connect_timeout) == 3000);

  // Heartbeats off: the kernel's own connect timeout, as before.
  config.heartbeat_ms = 0;
  zmq::socket_t quiet(context, zmq::socket_type::dealer);
  configure_socket(quiet, config, "r", SocketRole{.backend = true});
  CHECK(quiet.get(zmq::sockopt::connect_timeout) == 0);
}

TEST_CASE("SocketMonitor: its fd turns readable when an event waits, and presence follows") {
  zmq::context_t context;
  zmq::socket_t watched(context, zmq::socket_type::pull);
  SocketMonitor monitor(context);
  monitor.start(watched, "r", "frontend");
  std::vector<std::string> endpoints;
  attach(watched, {"tcp://127.0.0.1:0"}, {}, "r", "frontend", endpoints);
  while (monitor.next()) {
  }  // read to the end: from here on the fd signals
  const auto readable = [&] {
    pollfd item{monitor.fd(), POLLIN, 0};
    return ::poll(&item, 1, 5000) == 1;
  };
  zmq::socket_t peer(context, zmq::socket_type::push);
  peer.connect(endpoints[0]);
  bool up = false;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!up && std::chrono::steady_clock::now() < deadline) {
    REQUIRE(readable());
    Presence::Change change = Presence::Change::kNone;
    while (monitor.next(&change)) {
      if (change == Presence::Change::kUp) up = true;
    }
  }
  CHECK(up);
  CHECK(monitor.presence().peers() == 1);
  monitor.stop(watched);
}

TEST_CASE(
    "SocketMonitor: a live connection its socket's own disconnect() ended is found closed, "
    "not reported") {
  zmq::context_t context;
  zmq::socket_t worker(context, zmq::socket_type::pull);
  worker.set(zmq::sockopt::linger, 0);
  worker.bind("tcp://127.0.0.1:0");
  const std::string address = worker.get(zmq::sockopt::last_endpoint);
  for (const bool tracked : {true, false}) {
    zmq::socket_t backend(context, zmq::socket_type::push);
    backend.set(zmq::sockopt::linger, 0);
    backend.set(zmq::sockopt::immediate, 1);
    SocketMonitor monitor(context);
    if (tracked) monitor.track_closes();
    monitor.start(backend, tracked ? "tracked" : "untracked", "backend");
    backend.connect(address);
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!monitor.presence().up() && std::chrono::steady_clock::now() < deadline) {
      while (monitor.next()) {
      }
      std::this_thread::sleep_for(2ms);
    }
    REQUIRE(monitor.presence().up());
    // Open: nothing to end.
    CHECK(monitor.closed_live().empty());
    CHECK(monitor.end_unreported({}) == Presence::Change::kNone);
    CHECK(monitor.presence().up());

    backend.disconnect(address);
    // The session closes the connection once the socket has acknowledged its pipe's end,
    // which it does as it processes commands (here: reading ZMQ_EVENTS).
    Presence::Change ended = Presence::Change::kNone;
    const auto until = std::chrono::steady_clock::now() + (tracked ? 5s : 300ms);
    while (ended == Presence::Change::kNone && std::chrono::steady_clock::now() < until) {
      (void)backend.get(zmq::sockopt::events);
      const std::vector<std::uint32_t> closed = monitor.closed_live();
      while (monitor.next()) {
      }
      ended = monitor.end_unreported(closed);
      std::this_thread::sleep_for(2ms);
    }
    // libzmq 4.3 reports no DISCONNECTED for it: only the fd check ends the record.
    CHECK(ended == (tracked ? Presence::Change::kDown : Presence::Change::kNone));
    CHECK(monitor.presence().up() == !tracked);
    CHECK(monitor.presence().disconnects() == (tracked ? 1 : 0));
    monitor.stop(backend);
  }
}
