// Hostile and malformed input: tidepool refuses it, counts it, and keeps serving.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "harness.h"

using namespace tidepool::test;

namespace {

using Labels = std::map<std::string, std::string>;

// A raw TCP connection to 127.0.0.1:port; writes `bytes` and keeps the socket open.
int raw_connection(int port, const std::string& bytes) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  if (!bytes.empty()) REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) > 0);
  return fd;
}

void expect_pipeline_serves(const Tidepool& tidepool, zmq::context_t& context, int front,
                            zmq::socket_t& worker, const std::string& text) {
  auto client = connect_socket(context, zmq::socket_type::push, front);
  client.send(zmq::buffer(text));
  zmq::message_t message;
  REQUIRE(worker.recv(message));
  CHECK(message.to_string() == text);
  CHECK(tidepool.http("/healthz").first == 200);
}

std::string write_config(const std::string& text) {
  static int counter = 0;
  const std::string path = "/tmp/tidepool-bad-config-" + std::to_string(::getpid()) + "-" +
                           std::to_string(counter++) + ".json";
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST_CASE("garbage bytes and half handshakes on the frontend port: still serving") {
  const int front = free_port();
  const int back = free_port();
  Tidepool tidepool(with_routes({pipeline_route("jobs", front, back)}));
  REQUIRE(tidepool.wait_ready());
  zmq::context_t context;
  auto worker = bind_socket(context, zmq::socket_type::pull, back);

  std::mt19937 random(42);
  std::string noise(64 * 1024, '\0');
  for (auto& c : noise) c = static_cast<char>(random());
  std::vector<int> connections;
  connections.push_back(raw_connection(front, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
  connections.push_back(raw_connection(front, noise));
  // A ZMTP 3 greeting cut off after the signature: a half handshake left hanging.
  connections.push_back(raw_connection(front, std::string("\xff\0\0\0\0\0\0\0\x01\x7f", 10)));
  connections.push_back(raw_connection(front, ""));  // connects and says nothing

  expect_pipeline_serves(tidepool, context, front, worker, "after the garbage");
  for (int fd : connections) ::close(fd);
  expect_pipeline_serves(tidepool, context, front, worker, "after the garbage went away");
  // None of the four completed a handshake; each is counted once it is closed.
  CHECK(wait_until([&] {
    return tidepool.metric_sum("tidepool_frontend_handshake_failures_total", {{"route", "jobs"}}) ==
           4;
  }));
  // Garbage never became a message (libzmq would parse it as ZMTP 1.0 frames without the
  // ZAP domain tidepool sets): only the two real messages were received. The counter is
  // published within kPublishEvery of the second message, so it is waited for, and read again
  // once the peers are gone: the garbage, sent first, would have been counted by then.
  CHECK(tidepool.wait_metric("tidepool_received_messages_total", {{"route", "jobs"}}, 2));
  CHECK(tidepool.wait_metric("tidepool_frontend_peers", {{"route", "jobs"}}, 0));
  const auto received = tidepool.metric("tidepool_received_messages_total", {{"route", "jobs"}});
  INFO("received: " << received.value_or(-1));
  CHECK(received == 2);
}

TEST_CASE("a message over max_message_bytes is dropped as too_large; the next one passes") {
  const int front = free_port();
  const int back = free_port();
  auto route = pipeline_route("jobs", front, back);
  route["queue"] = {{"max_message_bytes", 1000}};
  Tidepool tidepool(with_routes({route}));
  REQUIRE(tidepool.wait_ready());
  zmq::context_t context;
  auto worker = bind_socket(context, zmq::socket_type::pull, back);
  auto client = connect_socket(context, zmq::socket_type::push, front);
  client.send(zmq::buffer(std::string(1001, 'x')));
  // Two frames of 600: each under the limit, together over it.
  client.send(zmq::buffer(std::string(600, 'y')), zmq::send_flags::sndmore);
  client.send(zmq::buffer(std::string(600, 'y')));
  client.send(zmq::buffer(std::string(1000, 'z')));  // exactly the limit: allowed
  zmq::message_t message;
  REQUIRE(worker.recv(message));
  CHECK(message.size() == 1000);
  CHECK(message.to_string().front() == 'z');
  CHECK(tidepool.wait_metric("tidepool_dropped_messages_total",
                             {{"reason", "too_large"}, {"route", "jobs"}}, 2));

  // Far over the limit, libzmq itself refuses the frame (ZMQ_MAXMSGSIZE) and closes that
  // peer's connection before the bytes are buffered; tidepool keeps serving the others.
  auto hostile = connect_socket(context, zmq::socket_type::push, front);
  hostile.send(zmq::buffer(std::string(100000, 'h')));
  expect_pipeline_serves(tidepool, context, front, worker, "still here");
}

TEST_CASE("request-reply: a request without an envelope is dropped as malformed") {
  const int front = free_port();
  const int back = free_port();
  Tidepool tidepool(with_routes({request_reply_route("rpc", front, {back})}));
  REQUIRE(tidepool.wait_ready());
  zmq::context_t context;
  auto worker = bind_socket(context, zmq::socket_type::rep, back);
  zmq::socket_t client(context, zmq::socket_type::dealer);
  client.set(zmq::sockopt::rcvtimeo, 10000);
  client.connect(endpoint(front));
  client.send(zmq::buffer(std::string("no delimiter")));  // [id, body]: no empty frame
  client.send(zmq::message_t(), zmq::send_flags::none);   // [id, ""]: delimiter, no body
  CHECK(tidepool.wait_metric("tidepool_dropped_messages_total",
                             {{"reason", "malformed"}, {"route", "rpc"}}, 2));
  client.send(zmq::message_t(), zmq::send_flags::sndmore);
  client.send(zmq::buffer(std::string("proper")));
  zmq::message_t request;
  REQUIRE(worker.recv(request));
  CHECK(request.to_string() == "proper");  // the malformed ones never reached the worker
  worker.send(zmq::buffer(std::string("answer")));
  std::vector<zmq::message_t> reply;
  REQUIRE(zmq::recv_multipart(client, std::back_inserter(reply)));
  CHECK(reply.back().to_string() == "answer");
}

TEST_CASE("bad configs exit 2 with one line naming the key and the problem") {
  struct Case {
    const char* text;
    const char* expected;
  };
  const Case cases[] = {
      {R"({"routes": [{"name": "a", "frontend": {"type": "pull", "bind": ["tcp://*:1"]},
           "backend": {"type": "push", "connect": ["tcp://127.0.0.1:2"]},
           "queue": {"max_mesages": 5}}]})",
       "routes[0].queue.max_mesages: unknown key"},
      {R"({"routes": [{"name": "a", "frontend": {"type": "router", "bind": ["tcp://*:1"]},
           "backend": {"type": "push", "connect": ["tcp://127.0.0.1:2"]}}]})",
       "routes[0].backend.type: \"push\" cannot pair with frontend \"router\""},
      {R"({"routes": [{"name": "a", "frontend": {"type": "pull", "bind": ["tcp//*:1"]},
           "backend": {"type": "push", "connect": ["tcp://127.0.0.1:2"]}}]})",
       "routes[0].frontend.bind[0]"},
      {R"({"routes": [{"name": "a", "frontend": {"type": "pull", "bind": ["tcp://*:1"]},
           "backend": {"type": "push", "connect": ["tcp://127.0.0.1:2"]}},
          {"name": "a", "frontend": {"type": "pull", "bind": ["tcp://*:3"]},
           "backend": {"type": "push", "connect": ["tcp://127.0.0.1:4"]}}]})",
       "routes[1].name: duplicate route name \"a\""},
      {R"({"routes": [{"name": "a", "frontend": {"type": "pull", "bind": ["tcp://*:1"]},
           "backend": {"type": "push", "connect": ["tcp://127.0.0.1:2"]}},
          {"name": "b", "frontend": {"type": "pull", "bind": ["tcp://*:1"]},
           "backend": {"type": "push", "connect": ["tcp://127.0.0.1:4"]}}]})",
       "routes[1].frontend.bind[0]: \"tcp://*:1\" is already bound by routes[0].frontend.bind[0]"},
      {R"({"routes": [{"name": "a", "frontend": {"type": "pull", "bind": ["tcp://*:1"]},
           "backend": {"type": "push", "connect": ["tcp://127.0.0.1:2"]},
           "queue": {"overflow": "sometimes"}}]})",
       "routes[0].queue.overflow: \"sometimes\" is not one of: block, drop-newest, drop-oldest"},
      {R"({"http": {"listen": 9464}, "routes": []})", "http.listen: must be a string"},
      {R"({"routes": [}")", "invalid JSON"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.expected);
    const auto path = write_config(c.text);
    for (const char* command : {"check-config", "run"}) {
      CAPTURE(command);
      const auto result =
          std::string(command) == "run"
              ? run_command({TIDEPOOL_BINARY, "--config", path, "--http-listen", "127.0.0.1:0"})
              : run_command({TIDEPOOL_BINARY, "check-config", path});
      CHECK(result.exit_code == 2);
      CHECK(result.output.find(c.expected) != std::string::npos);
      CHECK(std::count(result.output.begin(), result.output.end(), '\n') <= 2);
    }
    ::unlink(path.c_str());
  }
  const auto flag = run_command({TIDEPOOL_BINARY, "--log-level", "loud"});
  CHECK(flag.exit_code == 2);
  CHECK(flag.output.find("--log-level: \"loud\" is not one of") != std::string::npos);
  const auto env = run_command({TIDEPOOL_BINARY, "check-config", "--default"}, 10s,
                               {{"TIDEPOOL_DRAIN_TIMEOUT_MS", "soon"}});
  CHECK(env.exit_code == 2);
  CHECK(env.output.find("TIDEPOOL_DRAIN_TIMEOUT_MS") != std::string::npos);
}

TEST_CASE("a port already in use is a clear start-up error, exit 1") {
  const int front = free_port();
  const int back = free_port();
  Tidepool first(with_routes({pipeline_route("jobs", front, back)}));
  REQUIRE(first.wait_ready());
  const auto path = write_config(with_routes({pipeline_route("jobs", front, back)}).dump());
  const auto result =
      run_command({TIDEPOOL_BINARY, "--config", path, "--http-listen", "127.0.0.1:0"});
  CHECK(result.exit_code == 1);
  CHECK(result.output.find("cannot bind frontend " + endpoint(front)) != std::string::npos);
  ::unlink(path.c_str());
}
