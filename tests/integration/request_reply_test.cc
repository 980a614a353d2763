// Request-reply mode (ROUTER → queue → DEALER, replies routed back) end to end.
#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "harness.h"

using namespace tidepool::test;

namespace {

using Labels = std::map<std::string, std::string>;

// A worker on its own thread: answers "<name>:<first body frame>" (other body frames kept)
// until stopped or until it has answered `limit` requests, then closes abruptly (linger 0),
// dropping whatever it had received and not answered.
//
// REP is what simple workers use, but libzmq's REP silently drops a reply when its own send
// pipe is full (seen here under load: ~1.5% of replies with 1000 outstanding, with or without
// a proxy). High-volume tests therefore use a DEALER worker, which echoes the envelope itself
// and blocks instead of dropping.
class Worker {
 public:
  Worker(zmq::context_t& context, int port, std::string name, int limit = -1,
         zmq::socket_type type = zmq::socket_type::rep)
      : thread_([this, &context, port, name = std::move(name), limit, type] {
          zmq::socket_t socket(context, type);
          socket.set(zmq::sockopt::linger, 0);
          socket.set(zmq::sockopt::rcvtimeo, 20);
          bind_port(socket, port);
          bound_ = true;
          while (!stop_ && (limit < 0 || answered_ < limit)) {
            std::vector<zmq::message_t> request;
            if (!zmq::recv_multipart(socket, std::back_inserter(request))) continue;
            // REP hands over the body only; DEALER the whole envelope, up to an empty frame.
            std::size_t body = 0;
            if (type != zmq::socket_type::rep) {
              while (body < request.size() && request[body].size() != 0) ++body;
              ++body;
            }
            std::vector<zmq::message_t> reply;
            for (std::size_t i = 0; i < request.size(); ++i) {
              if (i == body) {
                reply.emplace_back(name + ":" + request[i].to_string());
              } else {
                reply.push_back(std::move(request[i]));
              }
            }
            zmq::send_multipart(socket, reply);
            ++answered_;
          }
        }) {
    wait_until([this] { return bound_.load(); });
  }
  ~Worker() {
    stop_ = true;
    thread_.join();
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  [[nodiscard]] int answered() const { return answered_; }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<bool> bound_{false};
  std::atomic<int> answered_{0};
  std::thread thread_;
};

zmq::socket_t dealer_client(zmq::context_t& context, int port, const std::string& identity) {
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::routing_id, identity);
  socket.set(zmq::sockopt::rcvtimeo, 10000);
  socket.set(zmq::sockopt::linger, 0);
  socket.connect(endpoint(port));
  return socket;
}

}  // namespace

TEST_CASE("requests queued before any worker are answered, each client getting only its own") {
  const int front = free_port();
  const int back1 = free_port();
  const int back2 = free_port();
  Tidepool tidepool(with_routes({request_reply_route("rpc", front, {back1, back2})}));
  REQUIRE(tidepool.wait_ready());
  const Labels rpc{{"route", "rpc"}};

  zmq::context_t context;
  std::vector<zmq::socket_t> clients;
  for (int c = 0; c < 3; ++c)
    clients.push_back(dealer_client(context, front, "client-" + std::to_string(c)));
  zmq::socket_t req(context, zmq::socket_type::req);  // REQ clients work too
  req.set(zmq::sockopt::rcvtimeo, 10000);
  req.connect(endpoint(front));
  req.send(zmq::buffer(std::string("from-req")));

  for (int i = 0; i < 20; ++i) {
    for (int c = 0; c < 3; ++c) {
      // A multi-frame body: it must reach the worker and come back whole.
      std::vector<zmq::message_t> request;
      request.emplace_back();  // the empty delimiter of a REQ-style envelope
      request.emplace_back("c" + std::to_string(c) + "-" + std::to_string(i));
      request.emplace_back(std::string("second frame"));
      zmq::send_multipart(clients[static_cast<std::size_t>(c)], request);
    }
  }
  REQUIRE(tidepool.wait_metric("tidepool_queue_messages", rpc, 61));

  Worker worker1(context, back1, "w1");
  Worker worker2(context, back2, "w2", -1, zmq::socket_type::dealer);
  for (int c = 0; c < 3; ++c) {
    std::set<std::string> answered;
    for (int i = 0; i < 20; ++i) {
      std::vector<zmq::message_t> reply;
      REQUIRE(zmq::recv_multipart(clients[static_cast<std::size_t>(c)], std::back_inserter(reply)));
      REQUIRE(reply.size() == 3);
      CHECK(reply[0].size() == 0);
      const std::string body = reply[1].to_string();
      const std::string request = body.substr(body.find(':') + 1);
      CHECK(request.starts_with("c" + std::to_string(c) + "-"));  // its own, not another's
      CHECK(reply[2].to_string() == "second frame");
      answered.insert(request);
    }
    CHECK(answered.size() == 20);  // each exactly once
  }
  zmq::message_t reply;
  REQUIRE(req.recv(reply));
  CHECK(reply.to_string().ends_with(":from-req"));

  CHECK(tidepool.wait_metric("tidepool_replies_total", rpc, 61));
  CHECK(tidepool.wait_metric("tidepool_in_flight", rpc, 0));
  CHECK(tidepool.metric("tidepool_request_duration_seconds_count", rpc) == 61);
  CHECK(tidepool.metric("tidepool_queue_messages", rpc) == 0);
  CHECK(tidepool.wait_metric("tidepool_backend_peers", rpc, 2));
  CHECK(tidepool.metric("tidepool_frontend_peers", rpc) == 4);
}

TEST_CASE("a reply for a client that left is counted as unroutable and nothing breaks") {
  const int front = free_port();
  const int back = free_port();
  Tidepool tidepool(with_routes({request_reply_route("rpc", front, {back})}));
  REQUIRE(tidepool.wait_ready());
  const Labels rpc{{"route", "rpc"}};
  zmq::context_t context;
  {
    auto leaver = dealer_client(context, front, "leaver");
    send_request(leaver, std::string("never read"));
    REQUIRE(tidepool.wait_metric("tidepool_queue_messages", rpc, 1));
  }
  REQUIRE(tidepool.wait_metric("tidepool_frontend_peers", rpc, 0));
  Worker worker(context, back, "w");
  CHECK(tidepool.wait_metric("tidepool_dropped_messages_total",
                             {{"reason", "unroutable"}, {"route", "rpc"}}, 1));
  // Still serving.
  auto stayer = dealer_client(context, front, "stayer");
  send_request(stayer, std::string("hello"));
  std::vector<zmq::message_t> reply;
  REQUIRE(zmq::recv_multipart(stayer, std::back_inserter(reply)));
  CHECK(reply.back().to_string() == "w:hello");
}

TEST_CASE(
    "a worker that answers each request twice: the client gets one reply, the other is counted") {
  const int front = free_port();
  const int back = free_port();
  Tidepool tidepool(with_routes({request_reply_route("rpc", front, {back})}));
  REQUIRE(tidepool.wait_ready());
  const Labels rpc{{"route", "rpc"}};
  zmq::context_t context;
  auto worker = bind_socket(context, zmq::socket_type::dealer, back);
  worker.set(zmq::sockopt::rcvtimeo, 10000);
  auto client = dealer_client(context, front, "client");
  constexpr int kRequests = 20;
  for (int i = 0; i < kRequests; ++i) send_request(client, std::to_string(i));
  for (int i = 0; i < kRequests; ++i) {
    std::vector<zmq::message_t> request;
    REQUIRE(zmq::recv_multipart(worker, std::back_inserter(request)));
    std::vector<zmq::message_t> copy;
    for (const auto& frame : request) copy.emplace_back(frame.data(), frame.size());
    zmq::send_multipart(worker, request);
    zmq::send_multipart(worker, copy);
  }
  std::multiset<std::string> bodies;
  for (int i = 0; i < kRequests; ++i) {
    std::vector<zmq::message_t> reply;
    REQUIRE(zmq::recv_multipart(client, std::back_inserter(reply)));
    bodies.insert(reply.back().to_string());
  }
  // Once every second answer is counted, all 2 × kRequests were handled (each follows its
  // first on the worker's connection): no more than kRequests went to the client.
  CHECK(tidepool.wait_metric("tidepool_duplicate_replies_total", rpc, kRequests));
  CHECK(tidepool.metric("tidepool_replies_total", rpc) == kRequests);
  std::vector<zmq::message_t> extra;
  CHECK_FALSE(zmq::recv_multipart(client, std::back_inserter(extra), zmq::recv_flags::dontwait));
  for (int i = 0; i < kRequests; ++i) CHECK(bodies.count(std::to_string(i)) == 1);
}

TEST_CASE("a worker that dies mid-stream loses no request: every one is answered once") {
  const int front = free_port();
  const int back = free_port();
  Tidepool tidepool(with_routes({request_reply_route("rpc", front, {back})}));
  REQUIRE(tidepool.wait_ready());
  const Labels rpc{{"route", "rpc"}};
  constexpr int kRequests = 2000;
  zmq::context_t context;
  auto client = dealer_client(context, front, "client");
  for (int i = 0; i < kRequests; ++i) {
    send_request(client, std::to_string(i));
  }
  std::multiset<int> answered;
  const auto read_replies = [&](std::size_t until) {
    while (answered.size() < until) {
      std::vector<zmq::message_t> reply;
      REQUIRE(zmq::recv_multipart(client, std::back_inserter(reply)));
      const std::string body = reply.back().to_string();
      answered.insert(std::stoi(body.substr(body.find(':') + 1)));
    }
  };
  {
    // Answers 500, then dies (linger 0) holding the requests it had read but not answered
    // and the replies it had not yet sent out.
    Worker first(context, back, "first", 500, zmq::socket_type::dealer);
    REQUIRE(wait_until([&] { return first.answered() == 500; }));
  }
  REQUIRE(tidepool.wait_metric("tidepool_backend_up", rpc, 0));
  Worker second(context, back, "second", -1, zmq::socket_type::dealer);
  read_replies(kRequests);
  for (int i = 0; i < kRequests; ++i) REQUIRE(answered.count(i) == 1);
  client.set(zmq::sockopt::rcvtimeo, 300);
  std::vector<zmq::message_t> extra;
  CHECK_FALSE(zmq::recv_multipart(client, std::back_inserter(extra)));  // no duplicate reply
  CHECK(tidepool.wait_metric("tidepool_in_flight", rpc, 0));
  CHECK(tidepool.metric("tidepool_replies_total", rpc) == kRequests);
}

TEST_CASE("workers that die while their replies stream back: tidepool survives, one reply each") {
  // Regression: libzmq 4.3 aborted tidepool (fq.cpp:112 "!_more") when a connecting
  // ZMQ_IMMEDIATE backend socket lost its peer while tidepool read a multipart reply from it
  // (see Route's constructor). Each worker here reads a batch, answers all of it at once and
  // closes at once (linger 0), so tidepool is reading replies when the connection goes.
  const int front = free_port();
  const int back = free_port();
  constexpr int kRequests = 10000;
  constexpr int kDyingWorkers = 40;  // each crashed the old code in about 8% of the rounds
  auto route = request_reply_route("rpc", front, {back});
  route["queue"] = {{"max_messages", kRequests}};
  // At debug, a failure's log (printed by the harness) has every backend monitor event: this
  // case once failed in a full run with a fresh worker that got no request in 10 s.
  Tidepool tidepool(with_routes({route}), {}, {{"TIDEPOOL_LOG_LEVEL", "debug"}});
  REQUIRE(tidepool.wait_ready());
  const Labels rpc{{"route", "rpc"}};
  constexpr std::size_t kBatch = 1000;
  zmq::context_t context;
  auto client = dealer_client(context, front, "client");
  for (int i = 0; i < kRequests; ++i) send_request(client, std::to_string(i));
  REQUIRE(tidepool.wait_metric("tidepool_queue_messages", rpc, kRequests));

  std::multiset<int> answered;
  std::atomic<bool> reading{true};
  std::thread reader([&] {
    client.set(zmq::sockopt::rcvtimeo, 100);
    while (reading || answered.size() < kRequests) {
      std::vector<zmq::message_t> reply;
      if (!zmq::recv_multipart(client, std::back_inserter(reply))) {
        if (!reading) break;
        continue;
      }
      const std::string body = reply.back().to_string();
      answered.insert(std::stoi(body.substr(body.find(':') + 1)));
    }
  });
  struct StopReader {
    std::atomic<bool>& reading;
    std::thread& thread;
    ~StopReader() {
      reading = false;
      if (thread.joinable()) thread.join();
    }
  } stop_reader{reading, reader};
  for (int round = 0; round < kDyingWorkers; ++round) {
    if (tidepool.metric("tidepool_replies_total", rpc) == kRequests) break;
    zmq::socket_t worker(context, zmq::socket_type::dealer);
    worker.set(zmq::sockopt::linger, 0);
    worker.set(zmq::sockopt::rcvtimeo, 10000);
    bind_port(worker, back);
    std::vector<std::vector<zmq::message_t>> batch;
    std::vector<zmq::message_t> request;
    REQUIRE(zmq::recv_multipart(worker, std::back_inserter(request)));
    batch.push_back(std::move(request));
    while (batch.size() < kBatch) {
      std::vector<zmq::message_t> more;
      if (!zmq::recv_multipart(worker, std::back_inserter(more), zmq::recv_flags::dontwait)) break;
      batch.push_back(std::move(more));
    }
    for (auto& echo : batch) {
      echo.back() = zmq::message_t("w" + std::to_string(round) + ":" + echo.back().to_string());
      zmq::send_multipart(worker, echo);
    }
    // Closes here, abruptly, while its replies are on their way.
  }
  {
    Worker last(context, back, "last", -1, zmq::socket_type::dealer);
    REQUIRE(wait_until([&] { return tidepool.metric("tidepool_replies_total", rpc) == kRequests; },
                       30s));
  }
  reading = false;
  reader.join();
  CHECK(tidepool.http("/healthz").first == 200);
  CHECK(answered.size() == kRequests);
  for (int i = 0; i < kRequests; ++i) REQUIRE(answered.count(i) == 1);
  CHECK(tidepool.wait_metric("tidepool_in_flight", rpc, 0));
  // The debug log a failure would print names each worker's connection and loss.
  const std::string log = tidepool.log();
  CHECK(log.find("backend monitor event") != std::string::npos);
  CHECK(log.find("event=handshake_succeeded") != std::string::npos);
  CHECK(log.find("event=disconnected") != std::string::npos);
}

TEST_CASE("1000 requests outstanding from one DEALER client: no reply lost") {
  const int front = free_port();
  const int back = free_port();
  Tidepool tidepool(with_routes({request_reply_route("rpc", front, {back})}));
  REQUIRE(tidepool.wait_ready());
  const Labels rpc{{"route", "rpc"}};
  zmq::context_t context;
  Worker worker(context, back, "w", -1, zmq::socket_type::dealer);
  REQUIRE(tidepool.wait_metric("tidepool_backend_up", rpc, 1));
  auto client = dealer_client(context, front, "client");
  constexpr int kRequests = 20000;
  constexpr int kWindow = 1000;
  int sent = 0;
  int received = 0;
  const auto send_one = [&] {
    send_request(client, std::string(64, 'q'));
    ++sent;
  };
  while (sent < kWindow) send_one();
  while (received < kRequests) {
    std::vector<zmq::message_t> reply;
    REQUIRE(zmq::recv_multipart(client, std::back_inserter(reply)));  // 10 s deadline each
    ++received;
    if (sent < kRequests) send_one();
  }
  CHECK(received == kRequests);
  CHECK(tidepool.wait_metric("tidepool_replies_total", rpc, kRequests));
  CHECK(tidepool.metric("tidepool_dropped_messages_total",
                        {{"reason", "unroutable"}, {"route", "rpc"}}) == 0);
}

TEST_CASE("max_in_flight holds requests in the queue while that many await replies") {
  const int front = free_port();
  const int back = free_port();
  auto route = request_reply_route("rpc", front, {back});
  route["flush"] = {{"max_in_flight", 3}};
  Tidepool tidepool(with_routes({route}));
  REQUIRE(tidepool.wait_ready());
  const Labels rpc{{"route", "rpc"}};
  zmq::context_t context;
  // A DEALER worker that reads requests but answers only when told to.
  auto worker = bind_socket(context, zmq::socket_type::dealer, back);
  auto client = dealer_client(context, front, "client");
  for (int i = 0; i < 10; ++i) {
    send_request(client, std::to_string(i));
  }
  REQUIRE(tidepool.wait_metric("tidepool_in_flight", rpc, 3));
  CHECK(tidepool.wait_metric("tidepool_queue_messages", rpc, 7));
  for (int answered = 0; answered < 10; ++answered) {
    std::vector<zmq::message_t> request;
    REQUIRE(zmq::recv_multipart(worker, std::back_inserter(request)));
    CHECK(tidepool.metric("tidepool_in_flight", rpc) <= 3);
    zmq::send_multipart(worker, request);  // echo the envelope and body back
  }
  for (int i = 0; i < 10; ++i) {
    std::vector<zmq::message_t> reply;
    REQUIRE(zmq::recv_multipart(client, std::back_inserter(reply)));
    CHECK(reply.back().to_string() == std::to_string(i));
  }
  CHECK(tidepool.wait_metric("tidepool_in_flight", rpc, 0));
}
