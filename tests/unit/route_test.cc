// Route without the binary: a real Route driven pass by pass over inproc:// sockets, with
// test peers in the same thread. Grouped by property: the queue holds what no worker takes,
// bounds refuse and count, request-reply round trips.
#include "tidepool/proxy/route.h"

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "tidepool/proxy/metrics.h"
#include "tidepool/proxy/sockets.h"

using tidepool::protocol::Multipart;
using tidepool::proxy::Clock;
using tidepool::proxy::Metrics;
using tidepool::proxy::Overflow;
using tidepool::proxy::recv_multipart;
using tidepool::proxy::Route;
using tidepool::proxy::RouteConfig;
using tidepool::proxy::SocketType;
using namespace std::chrono_literals;

namespace {

RouteConfig config(const std::string& name, SocketType front, SocketType back) {
  RouteConfig c;
  c.name = name;
  c.frontend.type = front;
  c.frontend.bind = {"inproc://" + name + "-front"};
  c.backend.type = back;
  c.backend.bind = {"inproc://" + name + "-back"};
  return c;
}

// The event loop's part for one route: poll, handle, timers.
void pass(Route& route, std::chrono::milliseconds wait = 5ms) {
  std::vector<zmq::pollitem_t> items;
  route.poll_items(items, false);
  zmq::poll(items, wait);
  const auto now = Clock::now();
  route.handle(items.data(), now, false);
  route.on_timer(now);
}

// Passes until `done()` or a deadline.
template <typename Done>
bool run_until(Route& route, const Done& done, std::chrono::milliseconds deadline = 3000ms) {
  const auto end = Clock::now() + deadline;
  while (!done()) {
    if (Clock::now() > end) return false;
    pass(route);
  }
  return true;
}

std::string body_of(const Multipart& message) {
  return std::string(message.frame_view(message.size() - 1));
}

bool try_receive(zmq::socket_t& socket, Multipart& message) {
  message.clear();
  return recv_multipart(socket, message);
}

}  // namespace

TEST_CASE("pipeline: the queue holds what no worker takes, and the worker gets it in order") {
  zmq::context_t context;
  Metrics metrics("test");
  Route route(context, config("pipe", SocketType::kPull, SocketType::kPush), metrics);
  route.open();
  zmq::socket_t client(context, zmq::socket_type::push);
  client.connect("inproc://pipe-front");
  for (int i = 0; i < 10; ++i) client.send(zmq::buffer(std::to_string(i)));
  REQUIRE(run_until(route, [&] { return route.status(Clock::now())["queue"]["messages"] == 10; }));
  CHECK(route.status(Clock::now())["forwarded"] == 0);

  zmq::socket_t worker(context, zmq::socket_type::pull);
  worker.connect("inproc://pipe-back");
  std::vector<std::string> got;
  REQUIRE(run_until(route, [&] {
    Multipart message;
    while (try_receive(worker, message)) got.push_back(body_of(message));
    return got.size() == 10;
  }));
  for (int i = 0; i < 10; ++i) CHECK(got[static_cast<std::size_t>(i)] == std::to_string(i));
  const auto status = route.status(Clock::now());
  CHECK(status["queue"]["messages"] == 0);
  CHECK(status["forwarded"] == 10);
  CHECK(route.drained());
  route.close(0ms);
}

TEST_CASE("bounds: drop-newest refuses past max_messages, too large is refused; all counted") {
  zmq::context_t context;
  Metrics metrics("test");
  RouteConfig c = config("bounds", SocketType::kPull, SocketType::kPush);
  c.queue.max_messages = 3;
  c.queue.max_message_bytes = 10;
  c.queue.overflow = Overflow::kDropNewest;
  Route route(context, c, metrics);
  route.open();
  zmq::socket_t client(context, zmq::socket_type::push);
  client.connect("inproc://bounds-front");
  for (int i = 0; i < 5; ++i) client.send(zmq::buffer(std::to_string(i)));
  client.send(zmq::buffer(std::string(11, 'x')));
  REQUIRE(run_until(route, [&] { return route.status(Clock::now())["received"] == 6; }));
  const auto status = route.status(Clock::now());
  CHECK(status["queue"]["messages"] == 3);
  CHECK(status["dropped"]["queue_full"] == 2);
  CHECK(status["dropped"]["too_large"] == 1);
  // At exit what is queued is dropped and counted.
  route.drop_remaining(tidepool::proxy::DropReason::kShutdown);
  CHECK(route.status(Clock::now())["dropped"]["shutdown"] == 3);
  route.close(0ms);
}

TEST_CASE(
    "request-reply: each client gets its own reply; a request without an envelope is "
    "refused") {
  zmq::context_t context;
  Metrics metrics("test");
  Route route(context, config("rr", SocketType::kRouter, SocketType::kDealer), metrics);
  route.open();
  zmq::socket_t worker(context, zmq::socket_type::router);
  worker.connect("inproc://rr-back");
  std::vector<zmq::socket_t> clients;
  for (int i = 0; i < 3; ++i) {
    clients.emplace_back(context, zmq::socket_type::dealer);
    clients.back().connect("inproc://rr-front");
    clients.back().send(zmq::str_buffer(""), zmq::send_flags::sndmore);
    clients.back().send(zmq::buffer("from " + std::to_string(i)));
  }
  std::vector<std::string> answers(3);
  std::size_t answered = 0;
  REQUIRE(run_until(route, [&] {
    Multipart request;
    while (try_receive(worker, request)) {
      for (std::size_t f = 0; f < request.size(); ++f) {
        worker.send(request[f],
                    f + 1 < request.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
      }
    }
    for (std::size_t i = 0; i < clients.size(); ++i) {
      Multipart reply;
      if (try_receive(clients[i], reply)) {
        answers[i] = body_of(reply);
        ++answered;
      }
    }
    return answered == 3;
  }));
  for (int i = 0; i < 3; ++i)
    CHECK(answers[static_cast<std::size_t>(i)] == "from " + std::to_string(i));
  auto status = route.status(Clock::now());
  CHECK(status["replies"] == 3);
  CHECK(status["in_flight"] == 0);

  // A DEALER that sends no empty delimiter: no REQ-style envelope.
  clients[0].send(zmq::str_buffer("no delimiter"));
  REQUIRE(
      run_until(route, [&] { return route.status(Clock::now())["dropped"]["malformed"] == 1; }));
  CHECK(route.drained());
  route.close(0ms);
}
