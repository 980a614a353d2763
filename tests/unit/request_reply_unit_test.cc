// RequestReply over real inproc sockets: a client DEALER → tidepool's ROUTER frontend, and
// tidepool's DEALER backend → a worker ROUTER. Grouped by property: replies reach their
// client exactly once, unanswered requests are given back for requeueing, bounds.
#include "tidepool/proxy/request_reply.h"

#include <doctest/doctest.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "tidepool/proxy/sockets.h"

using tidepool::protocol::Multipart;
using tidepool::proxy::Clock;
using tidepool::proxy::PendingRequest;
using tidepool::proxy::QueuedMessage;
using tidepool::proxy::recv_multipart;
using tidepool::proxy::ReplyConfig;
using tidepool::proxy::ReplyOutcome;
using tidepool::proxy::RequestReply;
using namespace std::chrono_literals;
using Kind = ReplyOutcome::Kind;

namespace {

// Reads one whole message, waiting up to a second for it.
Multipart receive(zmq::socket_t& socket) {
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  Multipart message;
  if (zmq::poll(&item, 1, std::chrono::milliseconds(1000)) > 0) {
    (void)recv_multipart(socket, message);
  }
  return message;
}

// The sockets of one test: names are unique per fixture so tests do not share endpoints.
struct Sockets {
  zmq::context_t context;
  zmq::socket_t frontend{context, zmq::socket_type::router};
  zmq::socket_t client{context, zmq::socket_type::dealer};
  zmq::socket_t backend{context, zmq::socket_type::dealer};
  zmq::socket_t worker{context, zmq::socket_type::router};
  std::string client_id;

  // `hwm` bounds the frontend→client pipe (set before the connection: inproc fixes it then).
  explicit Sockets(int hwm = 1000) {
    static int serial = 0;
    const std::string id = std::to_string(++serial);
    frontend.set(zmq::sockopt::sndhwm, hwm);
    client.set(zmq::sockopt::rcvhwm, hwm);
    frontend.set(zmq::sockopt::router_mandatory, true);
    frontend.bind("inproc://front-" + id);
    client_id = "client-" + id;
    client.set(zmq::sockopt::routing_id, client_id);
    client.connect("inproc://front-" + id);
    backend.bind("inproc://back-" + id);
    worker.connect("inproc://back-" + id);
  }

  // A request as tidepool's frontend reads it: [routing id, "", body].
  Multipart request_from_client(const std::string& body) {
    client.send(zmq::str_buffer(""), zmq::send_flags::sndmore);
    client.send(zmq::buffer(body), zmq::send_flags::none);
    return receive(frontend);
  }

  // The worker echoes what it got (its own routing id first, as a ROUTER sees it).
  Multipart echo_at_worker() {
    Multipart got = receive(worker);
    REQUIRE(got.size() >= 3);
    Multipart reply;  // without the worker's view of tidepool's DEALER id
    for (std::size_t i = 1; i < got.size(); ++i) reply.push_back(std::move(got[i]));
    return reply;
  }
};

std::string body_of(const Multipart& message) {
  return std::string(message.frame_view(message.size() - 1));
}

}  // namespace

TEST_CASE("a reply reaches the client that asked, once; a second copy is a duplicate") {
  Sockets s;
  RequestReply rr(ReplyConfig{}, 1);
  const auto now = Clock::now();
  Multipart request = s.request_from_client("ping");
  REQUIRE(request.size() == 3);
  REQUIRE(rr.send(s.backend, 0, request, now, nullptr));
  CHECK(rr.in_flight() == 1);
  CHECK(rr.in_flight(0) == 1);

  Multipart reply = s.echo_at_worker();
  // [routing id + tag, "", body]: the backend hop carries no frame more than the client sent.
  REQUIRE(reply.size() == 3);
  CHECK(reply[0].size() == s.client_id.size() + sizeof(std::uint64_t));
  CHECK(reply[0].to_string_view().substr(0, s.client_id.size()) == s.client_id);
  Multipart copy;
  for (std::size_t i = 0; i < reply.size(); ++i) copy.push_back(reply[i].to_string_view());
  const ReplyOutcome outcome = rr.on_reply(s.frontend, std::move(reply), now + 5ms);
  CHECK(outcome.kind == Kind::kDelivered);
  CHECK(outcome.took == 5ms);
  CHECK(rr.in_flight() == 0);
  CHECK(rr.idle());
  Multipart at_client = receive(s.client);
  REQUIRE(at_client.size() == 2);  // ["", body]
  CHECK(body_of(at_client) == "ping");

  CHECK(rr.on_reply(s.frontend, std::move(copy), now).kind == Kind::kDuplicate);
}

TEST_CASE("a reply whose tag names no pending request is a duplicate, and delivers nothing") {
  Sockets s;
  RequestReply rr(ReplyConfig{}, 1);
  const auto now = Clock::now();
  Multipart request = s.request_from_client("real");
  REQUIRE(rr.send(s.backend, 0, request, now, nullptr));
  Multipart reply = s.echo_at_worker();
  // Same slot, another use of it: the high half of the tag changed.
  Multipart forged;
  std::string tagged(reply[0].to_string_view());
  tagged.back() = static_cast<char>(tagged.back() ^ 0x5a);
  forged.push_back(std::string_view(tagged));
  for (std::size_t i = 1; i < reply.size(); ++i) forged.push_back(reply[i].to_string_view());
  CHECK(rr.on_reply(s.frontend, std::move(forged), now).kind == Kind::kDuplicate);
  CHECK(rr.in_flight() == 1);
  CHECK(rr.on_reply(s.frontend, std::move(reply), now).kind == Kind::kDelivered);
  Multipart at_client = receive(s.client);
  REQUIRE(at_client.size() == 2);
  CHECK(body_of(at_client) == "real");
}

TEST_CASE("replies that are not what tidepool sent are told apart") {
  Sockets s;
  RequestReply rr(ReplyConfig{}, 1);
  Multipart short_reply;
  short_reply.push_back(std::string_view("id"));
  short_reply.push_back(std::string_view("body"));
  CHECK(rr.on_reply(s.frontend, std::move(short_reply), Clock::now()).kind == Kind::kNoSequence);
  // A first frame with no room for a routing id before the 8-byte tag.
  Multipart no_id;
  no_id.push_back(std::string_view("12345678"));
  no_id.push_back(std::string_view(""));
  no_id.push_back(std::string_view("body"));
  CHECK(rr.on_reply(s.frontend, std::move(no_id), Clock::now()).kind == Kind::kNoSequence);

  // The right sequence, but the empty delimiter is gone: the request is answered (its record
  // is done) and the reply is malformed.
  const auto now = Clock::now();
  Multipart request = s.request_from_client("x");
  REQUIRE(rr.send(s.backend, 0, request, now, nullptr));
  Multipart reply = s.echo_at_worker();
  Multipart broken;
  for (std::size_t i = 0; i < reply.size(); ++i) {
    if (reply[i].size() != 0) broken.push_back(reply[i].to_string_view());
  }
  broken.push_back(std::string_view("extra"));
  CHECK(rr.on_reply(s.frontend, std::move(broken), now).kind == Kind::kNoDelimiter);
  CHECK(rr.in_flight() == 0);
}

TEST_CASE("a client that has gone: its reply is unroutable") {
  Sockets s;
  RequestReply rr(ReplyConfig{}, 1);
  const auto now = Clock::now();
  Multipart request = s.request_from_client("x");
  REQUIRE(rr.send(s.backend, 0, request, now, nullptr));
  s.client.close();
  Multipart reply = s.echo_at_worker();
  // libzmq drops the client's pipe a few commands after the close: wait (with a deadline)
  // until a probe to its id is unroutable, then hand over the real reply.
  const auto deadline = Clock::now() + 5s;
  bool gone = false;
  while (!gone && Clock::now() < deadline) {
    Multipart probe;
    probe.push_back(std::string_view(s.client_id));
    probe.push_back(std::string_view(""));
    probe.push_back(std::string_view("probe"));
    gone = tidepool::proxy::send_multipart(s.frontend, probe) ==
           tidepool::proxy::SendResult::kUnroutable;
    if (!gone) std::this_thread::sleep_for(1ms);
  }
  REQUIRE(gone);
  ReplyOutcome outcome{};
  outcome = rr.on_reply(s.frontend, std::move(reply), now);
  CHECK(outcome.kind == Kind::kUnroutable);
}

TEST_CASE("a request replayed from a connection-named client gets no reply (orphan)") {
  Sockets s;
  RequestReply rr(ReplyConfig{}, 1);
  const auto now = Clock::now();
  // As replayed from the spool: its routing id was assigned by libzmq (leading zero byte).
  Multipart message;
  message.push_back(std::string_view("\0abcd", 5));
  message.push_back(std::string_view(""));
  message.push_back(std::string_view("old"));
  QueuedMessage origin{Multipart{}, now, 7, true};
  REQUIRE(rr.send(s.backend, 0, message, now, &origin));
  const ReplyOutcome outcome = rr.on_reply(s.frontend, s.echo_at_worker(), now);
  CHECK(outcome.kind == Kind::kOrphan);
  CHECK(outcome.spool_sequence == 7);
}

TEST_CASE("a lost backend gives back its unanswered requests, oldest first, and only its own") {
  Sockets s;
  RequestReply rr(ReplyConfig{}, 2);
  const auto now = Clock::now();
  // Requests 0 and 2 through backend 0, 1 through backend 1 (the same socket stands in for
  // both: which peer held what is what RequestReply records, not what the socket knows).
  for (int i = 0; i < 3; ++i) {
    Multipart request = s.request_from_client("r" + std::to_string(i));
    REQUIRE(
        rr.send(s.backend, i == 1 ? 1 : 0, request, now + std::chrono::milliseconds(i), nullptr));
  }
  CHECK(rr.in_flight(0) == 2);
  CHECK(rr.in_flight(1) == 1);
  std::vector<PendingRequest> lost = rr.take_unanswered(0);
  REQUIRE(lost.size() == 2);
  // As the route queues them again: each a message of its own.
  const Multipart first = lost[0].request.take();
  CHECK(body_of(first) == "r0");
  CHECK(body_of(lost[1].request.take()) == "r2");
  CHECK(first.size() == 3);  // as received: no sequence frame
  CHECK(rr.in_flight() == 1);
  CHECK(rr.in_flight(0) == 0);
  // The old copies' replies are duplicates now; the one still pending is delivered.
  CHECK(rr.on_reply(s.frontend, s.echo_at_worker(), now).kind == Kind::kDuplicate);
  CHECK(rr.on_reply(s.frontend, s.echo_at_worker(), now).kind == Kind::kDelivered);
  CHECK(rr.on_reply(s.frontend, s.echo_at_worker(), now).kind == Kind::kDuplicate);
}

TEST_CASE("requests without a reply are given up after the timeout, with their records") {
  Sockets s;
  RequestReply rr(ReplyConfig{}, 1);
  const auto now = Clock::now();
  QueuedMessage first{Multipart{}, now, 11, false};
  QueuedMessage second{Multipart{}, now, 12, false};
  Multipart a = s.request_from_client("a");
  Multipart b = s.request_from_client("b");
  REQUIRE(rr.send(s.backend, 0, a, now, &first));
  REQUIRE(rr.send(s.backend, 0, b, now + 10ms, &second));
  CHECK(rr.expire(now + 1s, 2s).empty());
  CHECK(rr.expire(now + 2s + 5ms, 2s) == std::vector<std::uint64_t>{11});
  CHECK(rr.expire(now + 3s, 2s) == std::vector<std::uint64_t>{12});
  CHECK(rr.in_flight() == 0);
}

TEST_CASE("a client whose pipe is full: its replies wait in its own FIFO, then arrive in order") {
  Sockets s(1);
  RequestReply rr(ReplyConfig{}, 1);
  const auto now = Clock::now();
  constexpr int kRequests = 50;
  for (int i = 0; i < kRequests; ++i) {
    Multipart request = s.request_from_client(std::to_string(i));
    REQUIRE(rr.send(s.backend, 0, request, now, nullptr));
  }
  int waiting = 0;
  for (int i = 0; i < kRequests; ++i) {
    if (rr.on_reply(s.frontend, s.echo_at_worker(), now).kind == Kind::kWaiting) ++waiting;
  }
  CHECK(waiting > 0);
  CHECK(rr.replies().messages() == static_cast<std::size_t>(waiting));
  CHECK(rr.next_retry() > now);
  // The client reads; retries deliver the rest, in order. (ZMQ_EVENTS makes the frontend take
  // the client's "pipe has room" news, as the event loop's zmq_poll does on every pass.)
  std::vector<std::string> got;
  const auto deadline = Clock::now() + 5s;
  while (got.size() < kRequests && Clock::now() < deadline) {
    Multipart reply;
    while (recv_multipart(s.client, reply)) {
      got.push_back(body_of(reply));
      reply.clear();
    }
    (void)s.frontend.get(zmq::sockopt::events);
    (void)rr.retry(s.frontend, Clock::now());
    std::this_thread::sleep_for(100us);
  }
  REQUIRE(got.size() == kRequests);
  for (int i = 0; i < kRequests; ++i) CHECK(got[static_cast<std::size_t>(i)] == std::to_string(i));
  CHECK(rr.idle());
}
