// Backends over real loopback TCP (monitor events need a real transport): presence from the
// monitors, the pause after a lost peer, round-robin. Grouped by property.
#include "tidepool/proxy/backends.h"

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

using tidepool::proxy::Backend;
using tidepool::proxy::BackendEvent;
using tidepool::proxy::Backends;
using tidepool::proxy::Clock;
using tidepool::proxy::Presence;
using tidepool::proxy::RouteConfig;
using tidepool::proxy::SocketType;
using namespace std::chrono_literals;

namespace {

RouteConfig config(SocketType front, SocketType back) {
  RouteConfig c;
  c.name = "b";
  c.frontend.type = front;
  c.backend.type = back;
  c.backend.heartbeat_ms = 0;
  return c;
}

// Reads socket `index`'s monitor until `change` is reported (or 5 s pass).
std::optional<BackendEvent> wait_for(Backends& backends, std::size_t index,
                                     Presence::Change change) {
  const auto deadline = Clock::now() + 5s;
  while (Clock::now() < deadline) {
    while (auto event = backends.next_event(index, Clock::now())) {
      if (event->change == change) return event;
    }
    std::this_thread::sleep_for(2ms);
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("presence: a peer counts from its handshake to its disconnect") {
  zmq::context_t context;
  RouteConfig c = config(SocketType::kPull, SocketType::kPush);
  c.backend.bind = {"tcp://127.0.0.1:0"};
  Backends backends(context, c, 1 << 20);
  std::vector<std::string> endpoints;
  backends.open("b", endpoints);
  REQUIRE(endpoints.size() == 1);
  CHECK_FALSE(backends.up());
  {
    zmq::socket_t worker(context, zmq::socket_type::pull);
    worker.connect(endpoints[0]);
    const auto up = wait_for(backends, 0, Presence::Change::kUp);
    REQUIRE(up);
    CHECK_FALSE(up->was_up);
    CHECK(backends.up());
    CHECK(backends.counts().peers == 1);
    CHECK(backends.counts().sockets_up == 1);
    worker.set(zmq::sockopt::linger, 0);
  }
  const auto down = wait_for(backends, 0, Presence::Change::kDown);
  REQUIRE(down);
  CHECK(down->lost_peer);
  CHECK_FALSE(backends.up());
  CHECK(backends.counts().connects == 1);
  CHECK(backends.counts().disconnects == 1);
  // A pipeline socket is not paused by a loss.
  CHECK(backends[0].can_take());
  backends.close(0ms);
}

TEST_CASE("request-reply: a bound socket that lost a peer pauses for at least a while") {
  zmq::context_t context;
  RouteConfig c = config(SocketType::kRouter, SocketType::kDealer);
  c.backend.bind = {"tcp://127.0.0.1:0"};
  Backends backends(context, c, 1 << 20);
  std::vector<std::string> endpoints;
  backends.open("b", endpoints);
  REQUIRE(backends.size() == 1);
  CHECK_FALSE(backends[0].gated);
  {
    zmq::socket_t worker(context, zmq::socket_type::router);
    worker.connect(endpoints[0]);
    REQUIRE(wait_for(backends, 0, Presence::Change::kUp));
    worker.set(zmq::sockopt::linger, 0);
  }
  REQUIRE(wait_for(backends, 0, Presence::Change::kDown));
  CHECK(backends.any_paused());
  CHECK_FALSE(backends[0].can_take());
  const auto paused_at = backends[0].paused_at;
  backends.end_pauses(paused_at);  // paused at, not before: stays paused
  CHECK_FALSE(backends[0].can_take());
  backends.end_pauses(paused_at + 1ns);
  CHECK(backends[0].can_take());
  CHECK_FALSE(backends.any_paused());
  backends.close(0ms);
}

TEST_CASE(
    "request-reply: each connect endpoint has its own gated socket; round-robin skips "
    "the ones without a peer") {
  zmq::context_t context;
  zmq::socket_t worker(context, zmq::socket_type::router);
  worker.bind("tcp://127.0.0.1:0");
  const std::string present = worker.get(zmq::sockopt::last_endpoint);
  RouteConfig c = config(SocketType::kRouter, SocketType::kDealer);
  // The second endpoint has nobody listening.
  c.backend.connect = {present, "tcp://127.0.0.1:1"};
  Backends backends(context, c, 1 << 20);
  std::vector<std::string> endpoints;
  backends.open("b", endpoints);
  REQUIRE(backends.size() == 2);
  CHECK(backends[0].gated);
  CHECK(backends[1].name() == "tcp://127.0.0.1:1");
  CHECK_FALSE(backends[0].can_take());  // gated: no peer yet
  REQUIRE(wait_for(backends, 0, Presence::Change::kUp));
  std::vector<std::size_t> chosen;
  for (int i = 0; i < 4; ++i) {
    const auto index = backends.send_round_robin([](std::size_t) { return true; },
                                                 [](std::size_t) { return true; });
    REQUIRE(index);
    chosen.push_back(*index);
  }
  CHECK(chosen == std::vector<std::size_t>{0, 0, 0, 0});
  // The caller's own condition (a share of max_in_flight) can refuse it too.
  CHECK_FALSE(backends.send_round_robin([](std::size_t) { return false; },
                                        [](std::size_t) { return true; }));
  // A send that would block is tried on the next socket, and none is left.
  CHECK_FALSE(backends.send_round_robin([](std::size_t) { return true; },
                                        [](std::size_t) { return false; }));
  backends.close(0ms);
}
