// Process lifecycle: SIGTERM drains, health endpoints, and the command line.
#include <doctest/doctest.h>

#include <signal.h>

#include <fstream>
#include <sstream>
#include <zmq.hpp>

#include "harness.h"

using namespace tidepool::test;

namespace {
using Labels = std::map<std::string, std::string>;

// Some TCP connection to or from 127.0.0.1:port is established, and none has bytes waiting in
// the kernel, sent or received (/proc/net/tcp): what was sent over them sits in libzmq's pipes.
bool connections_idle(int port) {
  std::ifstream tcp("/proc/net/tcp");
  std::string line;
  std::getline(tcp, line);  // the header
  bool any = false;
  while (std::getline(tcp, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues;
    fields >> slot >> local >> remote >> state >> queues;
    const auto port_of = [](const std::string& address) {
      return std::stoi(address.substr(address.find(':') + 1), nullptr, 16);
    };
    if (state != "01" || (port_of(local) != port && port_of(remote) != port)) continue;
    if (queues != "00000000:00000000") return false;
    any = true;
  }
  return any;
}

// A pipeline route whose `block` queue holds 100 messages.
nlohmann::json full_queue_config(int front, int back, int drain_timeout_ms) {
  auto route = pipeline_route("jobs", front, back);
  route["queue"] = {{"max_messages", 100}, {"overflow", "block"}};
  auto config = with_routes({route});
  config["shutdown"] = {{"drain_timeout_ms", drain_timeout_ms}};
  return config;
}

// With no worker, sends messages 0-499: 100 fill the queue, and the other 400 wait in the
// frontend's pipe (its HWM is 1000), none in a kernel buffer.
void fill_queue_and_pipe(Tidepool& tidepool, zmq::socket_t& client, int front) {
  for (int i = 0; i < 500; ++i) client.send(zmq::buffer(std::to_string(i)));
  REQUIRE(tidepool.wait_metric("tidepool_queue_messages", {{"route", "jobs"}}, 100));
  REQUIRE(wait_until([&] { return connections_idle(front); }));
}
}  // namespace

TEST_CASE("SIGTERM with a backend present: the queue drains before exit 0") {
  const int front = free_port();
  const int back = free_port();
  auto route = pipeline_route("jobs", front, back);
  // Slow draining keeps a queue in place while the backend is present.
  route["flush"] = {{"drain_rate", 1000}};
  Tidepool tidepool(with_routes({route}));
  REQUIRE(tidepool.wait_ready());
  const Labels jobs{{"route", "jobs"}};
  zmq::context_t context;
  auto client = connect_socket(context, zmq::socket_type::push, front);
  constexpr int kMessages = 2000;
  for (int i = 0; i < kMessages; ++i) client.send(zmq::buffer(std::to_string(i)));
  REQUIRE(tidepool.wait_metric("tidepool_queue_messages", jobs, kMessages));
  auto worker = bind_socket(context, zmq::socket_type::pull, back);
  REQUIRE(tidepool.wait_metric("tidepool_backend_up", jobs, 1));
  CHECK(tidepool.metric("tidepool_queue_messages", jobs) > 0);

  tidepool.signal(SIGTERM);
  // While draining, /readyz says so and nothing new is read.
  CHECK(wait_until([&] { return tidepool.http("/readyz").first == 503; }, 2s));
  for (int i = 0; i < kMessages; ++i) {
    zmq::message_t message;
    REQUIRE(worker.recv(message));
    REQUIRE(message.to_string() == std::to_string(i));
  }
  CHECK(tidepool.wait_exit(10s) == 0);
  CHECK(tidepool.log().find("drained: exiting") != std::string::npos);
  CHECK(tidepool.log().find("reason=shutdown") == std::string::npos);
}

TEST_CASE("SIGTERM with no backend: exit 0 within drain_timeout_ms, leftovers counted") {
  const int front = free_port();
  const int back = free_port();
  auto config = with_routes({pipeline_route("jobs", front, back)});
  config["shutdown"] = {{"drain_timeout_ms", 300}};
  Tidepool tidepool(config);
  REQUIRE(tidepool.wait_ready());
  zmq::context_t context;
  auto client = connect_socket(context, zmq::socket_type::push, front);
  for (int i = 0; i < 25; ++i) client.send(zmq::buffer(std::to_string(i)));
  REQUIRE(tidepool.wait_metric("tidepool_queue_messages", {{"route", "jobs"}}, 25));
  const auto start = std::chrono::steady_clock::now();
  tidepool.signal(SIGTERM);
  REQUIRE(tidepool.wait_exit(5s) == 0);
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(took >= 300ms);
  CHECK(took < 3s);
  const auto log = tidepool.log();
  CHECK(log.find("drain timed out") != std::string::npos);
  CHECK(log.find("reason=shutdown count=25") != std::string::npos);
}

TEST_CASE("SIGTERM lets a pipeline's clients go: what libzmq took is drained, the rest waits") {
  const int front = free_port();
  const int back = free_port();
  const auto config = full_queue_config(front, back, 10000);
  zmq::context_t context;
  auto client = connect_socket(context, zmq::socket_type::push, front);
  std::vector<std::string> got;
  const auto receive = [&got](zmq::socket_t& worker, std::size_t until) {
    return wait_until([&] {
      zmq::message_t message;
      while (got.size() < until && worker.recv(message, zmq::recv_flags::dontwait)) {
        got.push_back(message.to_string());
      }
      return got.size() >= until;
    });
  };
  {
    Tidepool tidepool(config);
    REQUIRE(tidepool.wait_ready());
    fill_queue_and_pipe(tidepool, client, front);
    tidepool.signal(SIGTERM);
    // The worker comes during the drain and gets all 500: the queue, then the pipe.
    auto worker = bind_socket(context, zmq::socket_type::pull, back);
    REQUIRE(receive(worker, 500));
    // The client was let go: these wait in its own pipe, not in a socket about to close.
    for (int i = 500; i < 800; ++i) client.send(zmq::buffer(std::to_string(i)));
    CHECK(tidepool.wait_exit(10s) == 0);
    CHECK(tidepool.log().find("drained: exiting") != std::string::npos);
    CHECK(tidepool.log().find("reason=shutdown") == std::string::npos);
    // The next process, on the same ports, gets them when the client reconnects.
    Tidepool next(config);
    REQUIRE(next.wait_ready());
    REQUIRE(receive(worker, 800));
  }
  for (std::size_t i = 0; i < got.size(); ++i) REQUIRE(got[i] == std::to_string(i));
}

TEST_CASE("SIGTERM with no backend: what waited in the frontend pipe is counted with the queue") {
  const int front = free_port();
  Tidepool tidepool(full_queue_config(front, free_port(), 300));
  REQUIRE(tidepool.wait_ready());
  zmq::context_t context;
  auto client = connect_socket(context, zmq::socket_type::push, front);
  fill_queue_and_pipe(tidepool, client, front);
  tidepool.signal(SIGTERM);
  REQUIRE(tidepool.wait_exit(5s) == 0);
  CHECK(tidepool.log().find("reason=shutdown count=500") != std::string::npos);
}

TEST_CASE("health endpoints, status and healthcheck commands against a running tidepool") {
  const int front = free_port();
  const int back = free_port();
  Tidepool tidepool(with_routes({pipeline_route("jobs", front, back)}));
  REQUIRE(tidepool.wait_ready());
  const std::string http = "127.0.0.1:" + std::to_string(tidepool.http_port());
  CHECK(tidepool.http("/healthz").first == 200);
  const auto [status_code, status_body] = tidepool.http("/status");
  CHECK(status_code == 200);
  const auto status = nlohmann::json::parse(status_body);
  CHECK(status["routes"][0]["name"] == "jobs");
  CHECK(status["routes"][0]["frontend"]["endpoints"][0] == endpoint(front));
  CHECK(tidepool.http("/nope").first == 404);

  const auto healthy = run_command({TIDEPOOL_BINARY, "healthcheck", "--http", http});
  CHECK(healthy.exit_code == 0);
  const auto table = run_command({TIDEPOOL_BINARY, "status", "--http", http});
  CHECK(table.exit_code == 0);
  CHECK(table.output.find("jobs") != std::string::npos);
  CHECK(table.output.find("DOWN") != std::string::npos);  // no backend yet

  // The address may also come from the environment, as in the container's HEALTHCHECK.
  const auto from_env =
      run_command({TIDEPOOL_BINARY, "healthcheck"}, 10s, {{"TIDEPOOL_HTTP_LISTEN", http}});
  CHECK(from_env.exit_code == 0);
  const auto nobody = run_command(
      {TIDEPOOL_BINARY, "healthcheck", "--http", "127.0.0.1:" + std::to_string(free_port())});
  CHECK(nobody.exit_code == 1);
  CHECK(nobody.output.find("unhealthy") != std::string::npos);

  // POST /flush is the manual trigger.
  CHECK(tidepool.http("/flush").first == 405);
}

TEST_CASE("command line: help, version, check-config, unknown arguments") {
  const auto help = run_command({TIDEPOOL_BINARY, "--help"});
  CHECK(help.exit_code == 0);
  for (const char* word : {"check-config", "healthcheck", "status", "--config", "TIDEPOOL_",
                           "router", "pull", "SIGTERM"}) {
    CHECK(help.output.find(word) != std::string::npos);
  }
  const auto version = run_command({TIDEPOOL_BINARY, "--version"});
  CHECK(version.exit_code == 0);
  CHECK(version.output.starts_with("tidepool "));

  const auto defaults = run_command({TIDEPOOL_BINARY, "check-config", "--default"});
  CHECK(defaults.exit_code == 0);
  const auto json =
      nlohmann::json::parse(defaults.output.substr(0, defaults.output.rfind('}') + 1));
  CHECK(json["routes"][0]["name"] == "default");
  CHECK(json["routes"][0]["frontend"]["type"] == "router");
  CHECK(json["routes"][0]["frontend"]["bind"][0] == "tcp://*:5580");
  CHECK(json["routes"][0]["backend"]["connect"][0] == "tcp://127.0.0.1:5590");
  CHECK(json["http"]["listen"] == "127.0.0.1:9464");

  // Precedence: flag > environment > file.
  const std::string path = "/tmp/tidepool-precedence-" + std::to_string(::getpid()) + ".json";
  std::ofstream(path) << R"({"log": {"level": "error"}, "routes": [{"name": "r",
      "frontend": {"type": "pull", "bind": ["tcp://*:7001"]},
      "backend": {"type": "push", "connect": ["tcp://127.0.0.1:7002"]}}]})";
  const auto from_file = run_command({TIDEPOOL_BINARY, "check-config", path});
  CHECK(nlohmann::json::parse(from_file.output.substr(
            0, from_file.output.rfind('}') + 1))["log"]["level"] == "error");
  const auto env_wins =
      run_command({TIDEPOOL_BINARY, "check-config", path}, 10s, {{"TIDEPOOL_LOG_LEVEL", "warn"}});
  CHECK(nlohmann::json::parse(
            env_wins.output.substr(0, env_wins.output.rfind('}') + 1))["log"]["level"] == "warn");
  const auto flag_wins =
      run_command({TIDEPOOL_BINARY, "check-config", path, "--log-level", "debug"}, 10s,
                  {{"TIDEPOOL_LOG_LEVEL", "warn"}});
  CHECK(nlohmann::json::parse(flag_wins.output.substr(
            0, flag_wins.output.rfind('}') + 1))["log"]["level"] == "debug");
  ::unlink(path.c_str());

  const auto unknown = run_command({TIDEPOOL_BINARY, "--frobnicate"});
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.output.find("unknown argument \"--frobnicate\"") != std::string::npos);
  const auto missing = run_command({TIDEPOOL_BINARY, "--config", "/nonexistent/tidepool.json"});
  CHECK(missing.exit_code == 2);
  CHECK(missing.output.find("cannot read config file \"/nonexistent/tidepool.json\"") !=
        std::string::npos);
}
