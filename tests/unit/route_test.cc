// Route without the binary: a real Route driven pass by pass over inproc:// sockets, with
// test peers in the same thread. Grouped by property: the queue holds what no worker takes,
// bounds refuse and count, request-reply round trips.
#include "tidepool/proxy/route.h"

#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <zmq.hpp>

#include <nlohmann/json.hpp>

#include "tidepool/proxy/metrics.h"
#include "tidepool/proxy/pipeline_hold.h"
#include "tidepool/proxy/sockets.h"

#include "temp_dir.h"

using tidepool::protocol::Multipart;
using tidepool::proxy::Clock;
using tidepool::proxy::Metrics;
using tidepool::proxy::Overflow;
using tidepool::proxy::PipelineHold;
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

// The event loop's part for one route: poll, handle, timers; at `at` rather than the clock's
// time when given (the hold's window is then exact).
void pass(Route& route, std::chrono::milliseconds wait = 5ms,
          std::optional<Clock::time_point> at = std::nullopt) {
  std::vector<zmq::pollitem_t> items;
  route.poll_items(items, false, at.value_or(Clock::now()));
  zmq::poll(items, wait);
  const auto now = at.value_or(Clock::now());
  route.handle(items.data(), now, false);
  route.on_timer(now);
}

// What the route asks of its frontend at `now` (its first poll item).
short frontend_events(Route& route, Clock::time_point now) {
  std::vector<zmq::pollitem_t> items;
  route.poll_items(items, false, now);
  return items.front().events;
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

// A pipeline route (PULL → PUSH) over inproc://, opened, with a PUSH client connected to its
// frontend; closed at the end.
struct InprocRoute {
  zmq::context_t context;
  Metrics metrics{"test"};
  Route route;
  zmq::socket_t client{context, zmq::socket_type::push};

  explicit InprocRoute(const RouteConfig& c) : route(context, c, metrics) {
    route.open();
    client.connect(c.frontend.bind.front());
  }
  ~InprocRoute() { route.close(0ms); }
  InprocRoute(const InprocRoute&) = delete;
  InprocRoute& operator=(const InprocRoute&) = delete;

  void send(int count) {
    for (int i = 0; i < count; ++i) client.send(zmq::buffer(std::to_string(i)));
  }
  [[nodiscard]] nlohmann::json status() const { return route.status(Clock::now()); }
};

}  // namespace

TEST_CASE("pipeline: the queue holds what no worker takes, and the worker gets it in order") {
  InprocRoute f(config("pipe", SocketType::kPull, SocketType::kPush));
  Route& route = f.route;
  f.send(10);
  REQUIRE(run_until(route, [&] { return f.status()["queue"]["messages"] == 10; }));
  CHECK(f.status()["forwarded"] == 0);

  zmq::socket_t worker(f.context, zmq::socket_type::pull);
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
}

TEST_CASE("bounds: block stops reading at max_messages, drops nothing, and /status says why") {
  RouteConfig c = config("full", SocketType::kPull, SocketType::kPush);
  c.queue.max_messages = 3;
  c.queue.overflow = Overflow::kBlock;
  InprocRoute f(c);
  CHECK(f.status()["frontend"]["paused"] == nullptr);
  f.send(5);
  REQUIRE(run_until(f.route, [&] { return f.status()["queue"]["messages"] == 3; }));
  for (int i = 0; i < 5; ++i) pass(f.route);
  const auto status = f.status();
  CHECK(status["received"] == 3);  // the other 2 wait in the client's pipe
  CHECK(status["dropped"]["queue_full"] == 0);
  CHECK(status["frontend"]["paused"] == "queue_full");
}

TEST_CASE("stopping: a frontend with more to read does not wake the drain, which would spin") {
  InprocRoute f(config("stop", SocketType::kPull, SocketType::kPush));
  // More than one read batch (512): the pass leaves the frontend with more to read.
  f.send(1500);
  REQUIRE(run_until(f.route, [&] { return f.status()["received"] > 0; }));
  const Clock::time_point now = Clock::now();
  REQUIRE(f.route.status(now)["received"] < 1500);
  CHECK(f.route.next_deadline(false, now) == now);  // read on at once
  CHECK(f.route.next_deadline(true, now) > now);    // a drain waits for the backend or the timer
}

TEST_CASE("stopping: a let-go frontend a full queue pauses wakes the drain once, not in a spin") {
  RouteConfig c = config("let-go", SocketType::kPull, SocketType::kPush);
  c.queue.max_messages = 3;
  c.queue.overflow = Overflow::kBlock;
  InprocRoute f(c);
  f.send(5);
  REQUIRE(run_until(f.route, [&] { return f.status()["queue"]["messages"] == 3; }));
  f.route.stop_accepting(Clock::now());
  // The event loop's drain for 300 ms, each pass waiting as long as the route asks: the wake
  // for the read that may find the frontend's end, and housekeeping every 100 ms, not a pass
  // per poll while the full queue keeps the frontend unread.
  int passes = 0;
  for (const auto end = Clock::now() + 300ms; Clock::now() < end; ++passes) {
    const Clock::time_point now = Clock::now();
    std::vector<zmq::pollitem_t> items;
    f.route.poll_items(items, true, now);
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(
        std::min(f.route.next_deadline(true, now), end) - now);
    zmq::poll(items, std::max(0ms, wait));
    f.route.handle(items.data(), Clock::now(), true);
    f.route.on_timer(Clock::now());
  }
  CHECK(passes < 30);
  CHECK_FALSE(f.route.drained());  // 2 unread in the frontend's pipe
}

TEST_CASE("bounds: drop-newest refuses past max_messages, too large is refused; all counted") {
  RouteConfig c = config("bounds", SocketType::kPull, SocketType::kPush);
  c.queue.max_messages = 3;
  c.queue.max_message_bytes = 10;
  c.queue.overflow = Overflow::kDropNewest;
  InprocRoute f(c);
  Route& route = f.route;
  f.send(5);
  f.client.send(zmq::buffer(std::string(11, 'x')));
  REQUIRE(run_until(route, [&] { return f.status()["received"] == 6; }));
  const auto status = f.status();
  CHECK(status["queue"]["messages"] == 3);
  CHECK(status["dropped"]["queue_full"] == 2);
  CHECK(status["dropped"]["too_large"] == 1);
  // At exit what is queued is dropped and counted.
  route.drop_remaining(tidepool::proxy::DropReason::kShutdown);
  CHECK(route.status(Clock::now())["dropped"]["shutdown"] == 3);
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

// The hold (route.cc, PipelineHold): a full pipe that reopens within the window (1 ms, or
// twice the backend's last reopen) keeps the clients' messages in the frontend's pipe, not the
// queue; a backend that takes nothing for longer is buffered for, and so are the clients behind
// a backlog (a queue older than 10 ms, or twice the window).
namespace {

// A route whose PUSH backend binds TCP for its worker (libzmq reports TCP peers; inproc has no
// presence), with 300 messages of 64 KiB for its inproc frontend: the worker's pipe, the
// route's and the loopback buffers hold well under 300 of them.
struct HoldFixture {
  static constexpr int kMessages = 300;
  zmq::context_t context;
  Metrics metrics{"test"};
  std::optional<Route> route;
  zmq::socket_t worker{context, zmq::socket_type::pull};
  zmq::socket_t client{context, zmq::socket_type::push};
  std::vector<int> got;  // what the worker read, by number

  // Without `worker_up` the worker connects later (connect_worker()); `spool_dir` gives the
  // route a spool there.
  // `backend_hwm` 10 keeps every window at 1 ms (PipelineHold::kPaceMaxPerMessage).
  explicit HoldFixture(Overflow overflow, bool worker_up = true, const std::string& spool_dir = {},
                       int backend_hwm = 10) {
    RouteConfig c = config("hold", SocketType::kPull, SocketType::kPush);
    c.backend.bind = {"tcp://127.0.0.1:*"};
    c.backend.hwm = backend_hwm;
    c.queue.overflow = overflow;
    if (!spool_dir.empty()) {
      c.spool = tidepool::proxy::SpoolConfig{.dir = spool_dir,
                                             .fsync = tidepool::proxy::FsyncPolicy::kInterval};
    }
    route.emplace(context, c, metrics);
    route->open();
    worker.set(zmq::sockopt::rcvhwm, 10);
    if (worker_up) connect_worker();
    client.set(zmq::sockopt::sndhwm, kMessages);
    client.connect("inproc://hold-front");
  }
  ~HoldFixture() { route->close(0ms); }
  HoldFixture(const HoldFixture&) = delete;
  HoldFixture& operator=(const HoldFixture&) = delete;

  void connect_worker() { worker.connect(status()["backend"]["endpoints"][0].get<std::string>()); }
  void send_all() {
    const std::string payload(64 * 1024, 'x');
    for (int i = 0; i < kMessages; ++i) client.send(zmq::buffer(std::to_string(i) + ":" + payload));
  }
  [[nodiscard]] nlohmann::json status() const { return route->status(Clock::now()); }
  // Once the worker is up, sends every message and passes the route at one instant until it
  // queued some (the last forward is then always within the hold's window); returns that
  // instant.
  Clock::time_point stream_until_queued() {
    REQUIRE(run_until(*route, [&] { return status()["backend"]["up"] == true; }));
    send_all();
    const Clock::time_point t = Clock::now();
    const auto end = Clock::now() + 3000ms;
    while (queued() == 0 && Clock::now() < end) pass(*route, 5ms, t);
    return t;
  }
  [[nodiscard]] std::size_t queued() const {
    return status()["queue"]["messages"].get<std::size_t>();
  }
  // After stream_until_queued() returned `full` (the pipe turned full then): the worker reads,
  // and the pipe reopens `wait` after it turned full; the route fills it again at that
  // instant, which it returns.
  Clock::time_point reopen_after(Clock::time_point full, Clock::duration wait) {
    const Clock::time_point reopened = full + wait;
    const int forwarded = status()["forwarded"].get<int>();
    REQUIRE(run_until(*route, [&] {
      read_worker();
      pass(*route, 5ms, reopened);
      return status()["forwarded"].get<int>() > forwarded && queued() > 0;
    }));
    return reopened;
  }
  void read_worker() {
    Multipart message;
    while (try_receive(worker, message)) {
      const std::string body = body_of(message);
      got.push_back(std::stoi(body.substr(0, body.find(':'))));
    }
  }
  // The worker reads until it has had every message; true when they came once, in order.
  bool read_all_in_order() {
    if (!run_until(
            *route,
            [&] {
              read_worker();
              return got.size() >= kMessages;
            },
            10000ms)) {
      return false;
    }
    for (int i = 0; i < kMessages; ++i) {
      if (got[static_cast<std::size_t>(i)] != i) return false;
    }
    return got.size() == kMessages;
  }
};

}  // namespace

TEST_CASE("pipeline hold: the frontend waits on a backend taking the stream, not on a stuck one") {
  for (const Overflow overflow : {Overflow::kBlock, Overflow::kDropNewest}) {
    CAPTURE(static_cast<int>(overflow));
    HoldFixture f(overflow);
    Route& route = *f.route;
    const Clock::time_point t = f.stream_until_queued();
    REQUIRE(f.queued() > 0);
    CHECK(f.status()["forwarded"].get<int>() > 0);
    if (overflow == Overflow::kBlock) {
      // Held: only what the read batch left is queued, the rest waits in the frontend's pipe.
      CHECK(frontend_events(route, t) == 0);
      CHECK(frontend_events(route, t + 999us) == 0);
      CHECK(route.status(t)["frontend"]["paused"] == "hold");
      CHECK(route.next_deadline(false, t) <= t + 1ms);
      for (int i = 0; i < 5; ++i) pass(route, 5ms, t);
      CHECK(f.status()["received"].get<int>() < HoldFixture::kMessages);
    } else {
      CHECK(frontend_events(route, t) == ZMQ_POLLIN);  // drop-newest never pushes back
    }
    // No forward for 1 ms: the worker is taken for stuck, and its clients are read and queued.
    CHECK(frontend_events(route, t + 1ms) == ZMQ_POLLIN);
    CHECK(route.status(t + 1ms)["frontend"]["paused"] == nullptr);
    const auto later = t + 2ms;
    REQUIRE(run_until(route, [&] {
      pass(route, 5ms, later);
      return f.status()["received"] == HoldFixture::kMessages;
    }));
    CHECK(f.queued() > 0);
    CHECK(f.read_all_in_order());
  }
}

TEST_CASE("pipeline hold: the window follows how long the backend's full pipe took to reopen") {
  // HWM 100: libzmq reopens the pipe after 50 messages, so a 4 ms wait is 12,500 a second,
  // fast enough to count (PipelineHold::kPaceMaxPerMessage).
  HoldFixture f(Overflow::kBlock, true, {}, 100);
  Route& route = *f.route;
  const Clock::time_point t = f.stream_until_queued();  // the pipe turned full at t
  REQUIRE(f.queued() > 0);
  CHECK(frontend_events(route, t + 1ms) == ZMQ_POLLIN);  // no pace known yet: 1 ms
  const Clock::time_point reopened = f.reopen_after(t, 4ms);
  // Held for twice that wait from the last forward, 8 ms, no longer.
  CHECK(frontend_events(route, reopened + 7ms) == 0);
  CHECK(route.status(reopened + 7ms)["frontend"]["paused"] == "hold");
  CHECK(route.next_deadline(false, reopened) <= reopened + 8ms);
  CHECK(frontend_events(route, reopened + 8ms) == ZMQ_POLLIN);
  CHECK(f.read_all_in_order());
}

TEST_CASE("pipeline hold: a reopen too slow for the HWM is no pace, and the window stays 1 ms") {
  // HWM 10: a reopen passes 5 messages, so the same 4 ms wait is 1,250 a second, a worker too
  // slow to hold its clients for (a pace needs 500 µs or less here, kPaceMaxPerMessage).
  HoldFixture f(Overflow::kBlock);
  Route& route = *f.route;
  const Clock::time_point t = f.stream_until_queued();
  REQUIRE(f.queued() > 0);
  const Clock::time_point reopened = f.reopen_after(t, 4ms);
  CHECK(frontend_events(route, reopened) == 0);  // held, as after any forward
  CHECK(frontend_events(route, reopened + 1ms) == ZMQ_POLLIN);
  CHECK(route.status(reopened + 1ms)["frontend"]["paused"] == nullptr);
  CHECK(f.read_all_in_order());
}

TEST_CASE("pipeline hold: never with a spool (a read message is durable, a held one is not)") {
  tidepool::test::TempDir dir;
  HoldFixture f(Overflow::kBlock, true, dir.path());
  Route& route = *f.route;
  // As in the case above, where `block` without a spool holds at this point.
  const Clock::time_point t = f.stream_until_queued();
  REQUIRE(f.queued() > 0);
  CHECK(f.status()["forwarded"].get<int>() > 0);
  CHECK(frontend_events(route, t) == ZMQ_POLLIN);
  CHECK(route.status(t)["frontend"]["paused"] == nullptr);
  CHECK(f.read_all_in_order());
}

TEST_CASE(
    "pipeline hold: behind a backlog (older than any young queue) the clients keep being read") {
  // No worker yet: what the clients send is a backlog.
  HoldFixture f(Overflow::kBlock, false);
  Route& route = *f.route;
  f.send_all();
  REQUIRE(run_until(route, [&] { return f.queued() == HoldFixture::kMessages; }));
  // It comes: the connect flush fills its pipe, then it takes again, and the backend took a
  // message at the instant the frontend is asked about, 100 ms after the backlog was queued:
  // past the longest young queue (2 × the longest window), and a wait too long to be a pace.
  f.connect_worker();
  REQUIRE(run_until(
      route, [&] { return f.status()["forwarded"].get<int>() > 0; }, 10000ms));
  const int forwarded = f.status()["forwarded"].get<int>();
  const Clock::time_point t = Clock::now() + 4 * PipelineHold::kPaceMax;
  REQUIRE(run_until(route, [&] {
    f.read_worker();
    pass(route, 5ms, t);
    return f.status()["forwarded"].get<int>() > forwarded;
  }));
  REQUIRE(f.queued() > 0);
  CHECK(frontend_events(route, t) == ZMQ_POLLIN);
  CHECK(f.read_all_in_order());
}
