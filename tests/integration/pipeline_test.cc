// Pipeline mode (PULL → queue → PUSH) end to end: the real binary, real sockets on loopback.
#include <doctest/doctest.h>

#include <atomic>
#include <set>
#include <thread>
#include <zmq.hpp>

#include "harness.h"

using namespace tidepool::test;

namespace {

using Labels = std::map<std::string, std::string>;

std::string numbered(int i) { return "message-" + std::to_string(i); }

int number_of(const zmq::message_t& message) {
  return std::stoi(message.to_string().substr(std::string("message-").size()));
}

double sum_over_triggers(const Tidepool& tidepool, const std::string& route,
                         const std::string& name) {
  double total = 0;
  for (const char* trigger :
       {"connect", "periodic", "manual", "shutdown", "writable", "drain_rate"}) {
    total += tidepool.metric(name, {{"route", route}, {"trigger", trigger}}).value_or(-1e9);
  }
  return total;
}

}  // namespace

TEST_CASE("a backlog queued while no backend exists arrives once, in order, when one connects") {
  const int front = free_port();
  const int back = free_port();
  Tidepool tidepool(with_routes({pipeline_route("jobs", front, back)}));
  REQUIRE(tidepool.wait_ready());
  const Labels jobs{{"route", "jobs"}};

  zmq::context_t context;
  auto client = connect_socket(context, zmq::socket_type::push, front);
  for (int i = 0; i < 1000; ++i) client.send(zmq::buffer(numbered(i)));

  REQUIRE(tidepool.wait_metric("tidepool_queue_messages", jobs, 1000));
  CHECK(tidepool.metric("tidepool_backend_up", jobs) == 0);
  CHECK(tidepool.metric("tidepool_queue_bytes", jobs) > 1000 * 9);
  CHECK(tidepool.metric("tidepool_queue_oldest_age_seconds", jobs) > 0);

  auto worker = bind_socket(context, zmq::socket_type::pull, back);
  const auto bound = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point first{};
  for (int i = 0; i < 1000; ++i) {
    zmq::message_t message;
    REQUIRE(worker.recv(message));
    if (i == 0) first = std::chrono::steady_clock::now();
    REQUIRE(number_of(message) == i);  // in order, none missing, none twice
  }
  const auto last = std::chrono::steady_clock::now();
  MESSAGE("1000-message backlog: first message " << (first - bound) / 1ms
                                                 << " ms after the backend bound (reconnect "
                                                    "interval), all drained "
                                                 << (last - first) / 1us << " us after the first");
  worker.set(zmq::sockopt::rcvtimeo, 200);
  zmq::message_t extra;
  CHECK_FALSE(worker.recv(extra));  // nothing delivered twice

  REQUIRE(tidepool.wait_metric("tidepool_queue_messages", jobs, 0));
  CHECK(tidepool.wait_metric("tidepool_backend_up", jobs, 1));
  CHECK(tidepool.metric("tidepool_flushes_total", {{"route", "jobs"}, {"trigger", "connect"}}) >=
        1);
  CHECK(tidepool.metric("tidepool_flushed_messages_total",
                        {{"route", "jobs"}, {"trigger", "connect"}}) >= 1);
  CHECK(sum_over_triggers(tidepool, "jobs", "tidepool_flushed_messages_total") == 1000);
  CHECK(tidepool.metric("tidepool_forwarded_messages_total", jobs) == 1000);
  CHECK(tidepool.metric("tidepool_received_messages_total", jobs) == 1000);
  CHECK(tidepool.metric("tidepool_backend_connects_total", jobs) == 1);
  CHECK(tidepool.metric("tidepool_queue_wait_seconds_count", jobs) == 1000);
}

TEST_CASE("a worker that returns to a backlog after a long absence gets it at once") {
  // The back-off ceiling is set far above the test's length: without prompt reconnects while
  // messages wait, the attempts after 4 s of absence come at ~6.3 s and ~12.7 s (libzmq doubles
  // 100 ms), so the worker bound at ~4 s would wait over 2 s for its backlog.
  const int front = free_port();
  const int back = free_port();
  auto route = pipeline_route("jobs", front, back);
  route["backend"]["reconnect_max_ms"] = 60000;
  Tidepool tidepool(with_routes({route}));
  REQUIRE(tidepool.wait_ready());
  const Labels jobs{{"route", "jobs"}};
  // The absence: with nothing queued the endpoint backs off as configured.
  std::this_thread::sleep_for(4s);

  zmq::context_t context;
  auto client = connect_socket(context, zmq::socket_type::push, front);
  for (int i = 0; i < 10; ++i) client.send(zmq::buffer(numbered(i)));
  REQUIRE(tidepool.wait_metric("tidepool_queue_messages", jobs, 10));
  CHECK(wait_until([&] {
    return tidepool.log().find("connecting every 100 ms until it is back") != std::string::npos;
  }));

  auto worker = bind_socket(context, zmq::socket_type::pull, back);
  const auto bound = std::chrono::steady_clock::now();
  worker.set(zmq::sockopt::rcvtimeo, 10000);
  for (int i = 0; i < 10; ++i) {
    zmq::message_t message;
    REQUIRE(worker.recv(message));
    REQUIRE(number_of(message) == i);  // in order, none missing
  }
  const auto waited = std::chrono::steady_clock::now() - bound;
  MESSAGE("backlog reached the returning worker " << waited / 1ms << " ms after it bound");
  // 100 ms between attempts, up to 100 ms of libzmq's jitter, a housekeeping period to notice
  // the queue; the rest is slack for a loaded machine and sanitizers.
  CHECK(waited < 1500ms);

  // The endpoint was connected again while absent: nothing lost, no connection counted twice.
  REQUIRE(tidepool.wait_metric("tidepool_queue_messages", jobs, 0));
  CHECK(tidepool.metric("tidepool_forwarded_messages_total", jobs) == 10);
  CHECK(tidepool.metric("tidepool_backend_connects_total", jobs) == 1);
  CHECK(tidepool.metric("tidepool_backend_disconnects_total", jobs) == 0);
  CHECK(tidepool.metric("tidepool_backend_up", jobs) == 1);
}

TEST_CASE("a connected backend that stops reading and resumes is drained without a new connect") {
  const int front = free_port();
  const int back = free_port();
  auto route = pipeline_route("jobs", front, back);
  route["flush"] = {{"interval_ms", 100}};
  route["backend"]["hwm"] = 10;  // so that libzmq's pipe toward the worker fills quickly
  Tidepool tidepool(with_routes({route}));
  REQUIRE(tidepool.wait_ready());
  const Labels jobs{{"route", "jobs"}};

  zmq::context_t context;
  zmq::socket_t worker(context, zmq::socket_type::pull);
  worker.set(zmq::sockopt::rcvhwm, 4);
  worker.bind(endpoint(back));
  REQUIRE(tidepool.wait_metric("tidepool_backend_up", jobs, 1));

  // 50 MB: more than libzmq's pipes and the kernel's loopback buffers hold, so the rest must
  // wait in tidepool's queue while the worker does not read.
  constexpr int kMessages = 800;
  const std::string payload(64 * 1024, 'x');
  auto client = connect_socket(context, zmq::socket_type::push, front);
  for (int i = 0; i < kMessages; ++i) {
    client.send(zmq::buffer(numbered(i) + ":" + payload));
  }
  REQUIRE(tidepool.wait_metric("tidepool_received_messages_total", jobs, kMessages, 20s));
  REQUIRE(wait_until([&] { return tidepool.metric("tidepool_queue_messages", jobs) > 0; }));
  // The backend is connected and full: periodic flushes run and find it unwritable.
  REQUIRE(wait_until([&] {
    return tidepool.metric("tidepool_flushes_total",
                           {{"route", "jobs"}, {"trigger", "periodic"}}) >= 2;
  }));
  CHECK(tidepool.metric("tidepool_backend_up", jobs) == 1);

  worker.set(zmq::sockopt::rcvtimeo, 10000);
  for (int i = 0; i < kMessages; ++i) {
    zmq::message_t message;
    REQUIRE(worker.recv(message));
    REQUIRE(message.to_string().starts_with(numbered(i) + ":"));
  }
  REQUIRE(tidepool.wait_metric("tidepool_queue_messages", jobs, 0));
  CHECK(tidepool.metric("tidepool_backend_connects_total", jobs) == 1);  // no new connect
  CHECK(tidepool.metric("tidepool_flushes_total", {{"route", "jobs"}, {"trigger", "periodic"}}) >=
        2);
  CHECK(tidepool.metric("tidepool_forwarded_messages_total", jobs) == kMessages);
}

TEST_CASE("backend restart mid-stream: the loss window is bounded by what libzmq held") {
  // PUSH/PULL has no acknowledgements: what libzmq already handed toward a worker that dies
  // is lost with it. The window scales with backend.hwm; measured at two settings.
  for (const int hwm : {100, 1000}) {
    CAPTURE(hwm);
    const int front = free_port();
    const int back = free_port();
    auto route = pipeline_route("jobs", front, back);
    route["backend"]["hwm"] = hwm;
    Tidepool tidepool(with_routes({route}));
    REQUIRE(tidepool.wait_ready());
    const Labels jobs{{"route", "jobs"}};
    constexpr int kMessages = 6000;

    zmq::context_t context;
    std::atomic<bool> sending{true};
    std::thread sender([&] {
      auto client = connect_socket(context, zmq::socket_type::push, front);
      for (int i = 0; i < kMessages; ++i) {
        client.send(zmq::buffer(numbered(i)));
        if (i % 20 == 0) std::this_thread::sleep_for(1ms);  // a steady stream, not one burst
      }
      client.set(zmq::sockopt::linger, 5000);
      sending = false;
    });

    std::vector<int> first_run;
    {
      auto worker = bind_socket(context, zmq::socket_type::pull, back);
      for (int i = 0; i < 1500; ++i) {
        zmq::message_t message;
        REQUIRE(worker.recv(message));
        first_run.push_back(number_of(message));
      }
      worker.set(zmq::sockopt::linger, 0);
    }  // the worker dies abruptly with whatever its buffers held
    REQUIRE(tidepool.wait_metric("tidepool_backend_up", jobs, 0));

    std::vector<int> second_run;
    auto worker = bind_socket(context, zmq::socket_type::pull, back);
    while (second_run.empty() || second_run.back() != kMessages - 1) {
      zmq::message_t message;
      REQUIRE(worker.recv(message));
      second_run.push_back(number_of(message));
    }
    sender.join();

    // Each run is in order; the two runs never overlap; what is missing is one contiguous
    // block right after the first worker's last message: the messages in flight inside
    // libzmq (tidepool's send pipe, TCP, the dead worker's receive pipe) when it died.
    for (std::size_t i = 0; i + 1 < first_run.size(); ++i)
      REQUIRE(first_run[i + 1] == first_run[i] + 1);
    for (std::size_t i = 0; i + 1 < second_run.size(); ++i) {
      REQUIRE(second_run[i + 1] == second_run[i] + 1);
    }
    CHECK(first_run.front() == 0);
    const int lost = second_run.front() - first_run.back() - 1;
    MESSAGE("pipeline backend restart, backend.hwm " << hwm << ": lost " << lost << " of "
                                                     << kMessages << " messages");
    CHECK(lost >= 0);
    // Bound: the backend's send high-water mark + the worker's receive high-water mark (1000,
    // libzmq's default) + what the loopback TCP buffers hold (~14 wire bytes a message: up
    // to ~600 seen). A sanity bound; the contiguity checks above are the proof.
    CHECK(lost <= hwm + 1000 + 1000);
    CHECK(tidepool.metric("tidepool_backend_disconnects_total", jobs) == 1);
  }
}

TEST_CASE("overflow policies: drop-newest refuses, drop-oldest evicts, block pushes back") {
  const Labels jobs{{"route", "jobs"}};
  struct Case {
    const char* policy;
    int first_delivered;
    const char* reason;
  };
  for (const Case& c : {Case{"drop-newest", 0, "queue_full"}, Case{"drop-oldest", 5, "evicted"}}) {
    CAPTURE(c.policy);
    const int front = free_port();
    const int back = free_port();
    auto route = pipeline_route("jobs", front, back);
    route["queue"] = {{"max_messages", 10}, {"overflow", c.policy}};
    Tidepool tidepool(with_routes({route}));
    REQUIRE(tidepool.wait_ready());
    zmq::context_t context;
    auto client = connect_socket(context, zmq::socket_type::push, front);
    for (int i = 0; i < 15; ++i) client.send(zmq::buffer(numbered(i)));
    REQUIRE(tidepool.wait_metric("tidepool_received_messages_total", jobs, 15));
    CHECK(tidepool.wait_metric("tidepool_queue_messages", jobs, 10));
    CHECK(tidepool.metric("tidepool_dropped_messages_total",
                          {{"reason", c.reason}, {"route", "jobs"}}) == 5);
    auto worker = bind_socket(context, zmq::socket_type::pull, back);
    for (int i = 0; i < 10; ++i) {
      zmq::message_t message;
      REQUIRE(worker.recv(message));
      CHECK(number_of(message) == c.first_delivered + i);
    }
  }

  SUBCASE("block") {
    const int front = free_port();
    const int back = free_port();
    auto route = pipeline_route("jobs", front, back);
    route["queue"] = {{"max_messages", 10}, {"overflow", "block"}};
    Tidepool tidepool(with_routes({route}));
    REQUIRE(tidepool.wait_ready());
    zmq::context_t context;
    auto client = connect_socket(context, zmq::socket_type::push, front);
    for (int i = 0; i < 50; ++i) client.send(zmq::buffer(numbered(i)));
    // tidepool stops reading at 10: the other 40 wait in ZeroMQ's pipes, pushed back.
    REQUIRE(tidepool.wait_metric("tidepool_queue_messages", jobs, 10));
    CHECK(tidepool.metric("tidepool_received_messages_total", jobs) == 10);
    auto worker = bind_socket(context, zmq::socket_type::pull, back);
    for (int i = 0; i < 50; ++i) {
      zmq::message_t message;
      REQUIRE(worker.recv(message));
      CHECK(number_of(message) == i);
    }
    for (const char* reason : {"queue_full", "evicted"}) {
      CHECK(tidepool.metric("tidepool_dropped_messages_total",
                            {{"reason", reason}, {"route", "jobs"}}) == 0);
    }
  }
}

// tidepool reads its frontend in batches (route.cc, kHandleBatch); under `block` a batch stops
// where the queue would be full, so both bounds hold as they did for one message at a time.
TEST_CASE("block: a burst read in batches stops at the byte bound, not past it") {
  const Labels jobs{{"route", "jobs"}};
  const int front = free_port();
  const int back = free_port();
  auto route = pipeline_route("jobs", front, back);
  // 100-byte messages: 7 fill 700 bytes; the count bound (1000) is far away.
  route["queue"] = {{"max_messages", 1000},
                    {"max_bytes", 700},
                    {"max_message_bytes", 700},
                    {"overflow", "block"}};
  Tidepool tidepool(with_routes({route}));
  REQUIRE(tidepool.wait_ready());
  zmq::context_t context;
  auto client = connect_socket(context, zmq::socket_type::push, front);
  for (int i = 0; i < 200; ++i) {
    std::string body = numbered(i);
    body.resize(100, '.');
    client.send(zmq::buffer(body));
  }
  REQUIRE(tidepool.wait_metric("tidepool_queue_bytes", jobs, 700));
  CHECK(tidepool.metric("tidepool_received_messages_total", jobs) == 7);
  CHECK(tidepool.metric("tidepool_queue_messages", jobs) == 7);
  auto worker = bind_socket(context, zmq::socket_type::pull, back);
  for (int i = 0; i < 200; ++i) {
    zmq::message_t message;
    REQUIRE(worker.recv(message));
    CHECK(number_of(message) == i);
  }
  CHECK(tidepool.metric("tidepool_dropped_messages_total",
                        {{"reason", "queue_full"}, {"route", "jobs"}}) == 0);
}

TEST_CASE("ttl: messages older than ttl_ms are dropped as expired, younger ones delivered") {
  const int front = free_port();
  const int back = free_port();
  auto route = pipeline_route("jobs", front, back);
  route["queue"] = {{"ttl_ms", 300}};
  Tidepool tidepool(with_routes({route}));
  REQUIRE(tidepool.wait_ready());
  const Labels jobs{{"route", "jobs"}};
  zmq::context_t context;
  auto client = connect_socket(context, zmq::socket_type::push, front);
  for (int i = 0; i < 5; ++i) client.send(zmq::buffer(numbered(i)));
  REQUIRE(tidepool.wait_metric("tidepool_dropped_messages_total",
                               {{"reason", "expired"}, {"route", "jobs"}}, 5));
  CHECK(tidepool.metric("tidepool_queue_messages", jobs) == 0);
  auto worker = bind_socket(context, zmq::socket_type::pull, back);
  REQUIRE(tidepool.wait_metric("tidepool_backend_up", jobs, 1));
  client.send(zmq::buffer(numbered(5)));
  zmq::message_t message;
  REQUIRE(worker.recv(message));
  CHECK(number_of(message) == 5);
}
