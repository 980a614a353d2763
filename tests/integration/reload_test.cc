// SIGHUP reload status through the real binary: tidepool_config_last_reload_successful and
// _success_timestamp_seconds start as Prometheus's do (1, the start time), drop to 0 on a
// broken authorized_keys while the old list keeps admitting its clients, and recover.
#include <doctest/doctest.h>
#include <signal.h>
#include <zmq.h>

#include <array>
#include <ctime>
#include <fstream>
#include <string>
#include <zmq.hpp>

#include "harness.h"
#include "tidepool/proxy/curve.h"

using namespace tidepool::test;

namespace {

struct KeyPair {
  std::string public_key;
  std::string secret_key;
};

KeyPair make_key_pair() {
  std::array<char, 41> public_key{};
  std::array<char, 41> secret_key{};
  REQUIRE(zmq_curve_keypair(public_key.data(), secret_key.data()) == 0);
  return {public_key.data(), secret_key.data()};
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

// A fresh CURVE connection (so a fresh ZAP decision) as `client`; true when its message
// reaches the worker.
bool admitted(zmq::context_t& context, const KeyPair& client, const std::string& server_public,
              int front, zmq::socket_t& worker, const std::string& body) {
  zmq::socket_t push(context, zmq::socket_type::push);
  push.set(zmq::sockopt::linger, 0);
  push.set(zmq::sockopt::curve_serverkey, server_public);
  push.set(zmq::sockopt::curve_publickey, client.public_key);
  push.set(zmq::sockopt::curve_secretkey, client.secret_key);
  push.connect(endpoint(front));
  push.send(zmq::buffer(body));
  worker.set(zmq::sockopt::rcvtimeo, 5000);
  zmq::message_t message;
  return worker.recv(message).has_value() && message.to_string() == body;
}

}  // namespace

TEST_CASE("SIGHUP reload status: broken keys file → 0, old list kept; fixed → 1, timestamp moves") {
  TempDir dir;
  const std::string server_base = dir.path() + "/server";
  const std::string server_public = tidepool::proxy::write_key_pair(server_base);
  const KeyPair alice = make_key_pair();
  const KeyPair bob = make_key_pair();
  const std::string keys_file = dir.path() + "/authorized_keys";
  write_file(keys_file, alice.public_key + "\n");

  const int front = free_port();
  const int back = free_port();
  auto route = pipeline_route("jobs", front, back);
  route["frontend"]["curve"] = {{"secret_key_file", server_base + ".key_secret"},
                                {"authorized_keys", keys_file}};
  const auto before_start = static_cast<double>(std::time(nullptr));
  Tidepool tidepool(with_routes({route}));
  REQUIRE(tidepool.wait_ready());
  zmq::context_t context;
  auto worker = bind_socket(context, zmq::socket_type::pull, back);

  // At start: successful, and the timestamp is the process's start time.
  CHECK(tidepool.metric("tidepool_config_last_reload_successful") == 1);
  const auto started = tidepool.metric("tidepool_config_last_reload_success_timestamp_seconds");
  REQUIRE(started.has_value());
  CHECK(*started == tidepool.metric("process_start_time_seconds"));
  CHECK(*started >= before_start - 1);
  CHECK(*started <= static_cast<double>(std::time(nullptr)) + 1);
  REQUIRE(admitted(context, alice, server_public, front, worker, "alice-1"));

  // A broken list: the reload fails, the gauge says so, the timestamp stays, and the list in
  // force (alice) still admits its client on a new connection.
  write_file(keys_file, "this is not a Z85 key\n");
  tidepool.signal(SIGHUP);
  REQUIRE(tidepool.wait_metric("tidepool_config_last_reload_successful", {}, 0));
  CHECK(tidepool.metric("tidepool_config_last_reload_success_timestamp_seconds") == *started);
  CHECK(tidepool.log().find("authorized keys not reloaded") != std::string::npos);
  CHECK(admitted(context, alice, server_public, front, worker, "alice-2"));

  // Fixed (now bob's key): successful again, the timestamp moves, bob is let in.
  write_file(keys_file, bob.public_key + "\n");
  tidepool.signal(SIGHUP);
  REQUIRE(tidepool.wait_metric("tidepool_config_last_reload_successful", {}, 1));
  const auto reloaded = tidepool.metric("tidepool_config_last_reload_success_timestamp_seconds");
  REQUIRE(reloaded.has_value());
  CHECK(*reloaded > *started);
  CHECK(admitted(context, bob, server_public, front, worker, "bob-1"));
}

TEST_CASE("SIGHUP without CURVE lists: a trivially successful reload moves the timestamp") {
  const int front = free_port();
  const int back = free_port();
  Tidepool tidepool(with_routes({pipeline_route("jobs", front, back)}));
  REQUIRE(tidepool.wait_ready());
  const auto started = tidepool.metric("tidepool_config_last_reload_success_timestamp_seconds");
  REQUIRE(started.has_value());
  tidepool.signal(SIGHUP);
  CHECK(wait_until([&] {
    const auto now = tidepool.metric("tidepool_config_last_reload_success_timestamp_seconds");
    return now && *now > *started;
  }));
  CHECK(tidepool.metric("tidepool_config_last_reload_successful") == 1);
}
