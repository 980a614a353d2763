// Config: parsing with the documented defaults, errors that name the key (unknown keys,
// types, enums, endpoints, pairings), the round trip through to_json, and overrides.
#include "tidepool/proxy/config.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "temp_dir.h"

using nlohmann::json;
using tidepool::proxy::Config;
using tidepool::proxy::ConfigError;
using tidepool::proxy::default_config;
using tidepool::proxy::endpoint_problem;
using tidepool::proxy::FsyncPolicy;
using tidepool::proxy::LogFormat;
using tidepool::proxy::LogLevel;
using tidepool::proxy::Overflow;
using tidepool::proxy::Overrides;
using tidepool::proxy::parse_config;
using tidepool::proxy::parse_config_text;
using tidepool::proxy::SocketType;
using tidepool::proxy::to_json;

namespace {

// A minimal valid document: one request-reply route.
json base() {
  return json::parse(R"({
    "routes": [{
      "name": "requests",
      "frontend": {"type": "router", "bind": ["tcp://*:5580"]},
      "backend": {"type": "dealer", "connect": ["tcp://127.0.0.1:5590"]}
    }]
  })");
}

// The contract's full example plus the results route it pairs with.
json full() {
  return json::parse(R"({
    "http": {"listen": "0.0.0.0:9464", "admin": true,
             "admin_token_file": "/run/secrets/tidepool-admin"},
    "log": {"level": "debug", "format": "json"},
    "shutdown": {"drain_timeout_ms": 2500},
    "routes": [{
      "name": "requests",
      "frontend": {"type": "pull", "bind": ["tcp://*:5580"], "connect": []},
      "backend":  {"type": "push", "bind": [], "connect": ["tcp://127.0.0.1:5590"],
                   "hwm": 7, "heartbeat_ms": 0, "reconnect_max_ms": 750},
      "queue": {"max_messages": 5000, "max_bytes": 268435456, "max_message_bytes": 67108864,
                "overflow": "drop-oldest", "ttl_ms": 30000},
      "flush": {"interval_ms": 250, "drain_rate": 12.5, "max_in_flight": 4},
      "correlation": {"key": "request_id", "pair_with": "results", "timeout_ms": 600000,
                      "max_tracked": 1000},
      "spool": {"dir": "/var/lib/tidepool", "fsync": "interval", "fsync_interval_ms": 250}
    }, {
      "name": "results",
      "frontend": {"type": "pull", "bind": ["tcp://*:5581", "ipc:///tmp/results"]},
      "backend":  {"type": "push", "connect": ["tcp://127.0.0.1:5582"]},
      "queue": {"overflow": "drop-newest", "max_bytes": 1000, "max_message_bytes": 1000}
    }]
  })");
}

// The key path parse_config names for `document`, or "<accepted>".
std::string error_path(const json& document) {
  try {
    parse_config(document);
  } catch (const ConfigError& e) {
    // what() is "PATH: PROBLEM" (or "config: PROBLEM" without a path).
    const std::string what = e.what();
    CHECK(what == (e.path().empty() ? "config" : e.path()) + ": " + e.problem());
    return e.path();
  }
  return "<accepted>";
}

std::string error_problem(const json& document) {
  try {
    parse_config(document);
  } catch (const ConfigError& e) {
    return e.problem();
  }
  return "<accepted>";
}

// Runs `f`, returns the ConfigError's path or "<accepted>".
template <typename F>
std::string thrown_path(F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.path();
  }
  return "<accepted>";
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Sets or unsets an environment variable for one test and restores it afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

const std::map<std::string, std::string> kFlagNames = {
    {"http.listen", "--http-listen"},
    {"log.level", "--log-level"},
    {"log.format", "--log-format"},
    {"shutdown.drain_timeout_ms", "--drain-timeout-ms"}};
const std::map<std::string, std::string> kEnvNames = {
    {"http.listen", "TIDEPOOL_HTTP_LISTEN"},
    {"log.level", "TIDEPOOL_LOG_LEVEL"},
    {"log.format", "TIDEPOOL_LOG_FORMAT"},
    {"shutdown.drain_timeout_ms", "TIDEPOOL_DRAIN_TIMEOUT_MS"}};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Valid documents and defaults

TEST_CASE("the base document parses with documented defaults") {
  const Config c = parse_config(base());
  CHECK(c.http_listen == "127.0.0.1:9464");
  CHECK(c.log_level == LogLevel::kInfo);
  CHECK(c.log_format == LogFormat::kText);
  CHECK(c.drain_timeout_ms == 10000);
  REQUIRE(c.routes.size() == 1);
  const auto& r = c.routes[0];
  CHECK(r.name == "requests");
  CHECK(r.frontend.type == SocketType::kRouter);
  CHECK(r.frontend.bind == std::vector<std::string>{"tcp://*:5580"});
  CHECK(r.frontend.connect.empty());
  CHECK(r.frontend.hwm == 1000);
  CHECK(r.frontend.heartbeat_ms == 5000);
  CHECK(r.backend.type == SocketType::kDealer);
  CHECK(r.backend.bind.empty());
  CHECK(r.backend.connect == std::vector<std::string>{"tcp://127.0.0.1:5590"});
  CHECK(r.backend.hwm == 1000);
  CHECK(r.backend.heartbeat_ms == 5000);
  CHECK(r.queue.max_messages == 5000);
  CHECK(r.queue.max_bytes == 268435456);
  CHECK(r.queue.max_message_bytes == 67108864);
  CHECK(r.queue.overflow == Overflow::kBlock);
  CHECK(r.queue.ttl_ms == 0);
  CHECK(r.flush.interval_ms == 1000);
  CHECK(r.flush.drain_rate == 0);
  CHECK(r.flush.max_in_flight == 0);
  CHECK_FALSE(r.correlation.has_value());
  CHECK_FALSE(r.spool.has_value());
  CHECK(r.request_reply());
}

TEST_CASE("socket types default to router and dealer when omitted") {
  json doc = base();
  doc["routes"][0]["frontend"].erase("type");
  doc["routes"][0]["backend"].erase("type");
  const Config c = parse_config(doc);
  CHECK(c.routes[0].frontend.type == SocketType::kRouter);
  CHECK(c.routes[0].backend.type == SocketType::kDealer);
}

TEST_CASE("the full example parses every key") {
  const Config c = parse_config(full());
  CHECK(c.http_listen == "0.0.0.0:9464");
  CHECK(c.log_level == LogLevel::kDebug);
  CHECK(c.log_format == LogFormat::kJson);
  CHECK(c.drain_timeout_ms == 2500);
  REQUIRE(c.routes.size() == 2);
  const auto& r = c.routes[0];
  CHECK(r.frontend.type == SocketType::kPull);
  CHECK(r.backend.type == SocketType::kPush);
  CHECK_FALSE(r.request_reply());
  CHECK(r.backend.hwm == 7);
  CHECK(r.backend.heartbeat_ms == 0);
  CHECK(r.queue.overflow == Overflow::kDropOldest);
  CHECK(r.queue.ttl_ms == 30000);
  CHECK(r.flush.interval_ms == 250);
  CHECK(r.flush.drain_rate == 12.5);
  CHECK(r.flush.max_in_flight == 4);
  REQUIRE(r.correlation.has_value());
  CHECK(r.correlation->key == "request_id");
  CHECK(r.correlation->pair_with == "results");
  CHECK(r.correlation->timeout_ms == 600000);
  CHECK(r.correlation->max_tracked == 1000);
  REQUIRE(r.spool.has_value());
  CHECK(r.spool->dir == "/var/lib/tidepool");
  CHECK(r.spool->fsync == FsyncPolicy::kInterval);
  CHECK(r.spool->fsync_interval_ms == 250);
  const auto& results = c.routes[1];
  CHECK(results.frontend.bind == std::vector<std::string>{"tcp://*:5581", "ipc:///tmp/results"});
  CHECK(results.queue.overflow == Overflow::kDropNewest);
  CHECK(results.queue.max_bytes == 1000);
  CHECK(results.queue.max_message_bytes == 1000);
  CHECK_FALSE(results.correlation.has_value());
  CHECK_FALSE(results.spool.has_value());
}

TEST_CASE("default_config is the documented embedded default") {
  const Config c = default_config();
  CHECK(c.http_listen == "127.0.0.1:9464");
  CHECK(c.log_level == LogLevel::kInfo);
  CHECK(c.log_format == LogFormat::kText);
  CHECK(c.drain_timeout_ms == 10000);
  REQUIRE(c.routes.size() == 1);
  const auto& r = c.routes[0];
  CHECK(r.name == "default");
  CHECK(r.frontend.type == SocketType::kRouter);
  CHECK(r.frontend.bind == std::vector<std::string>{"tcp://*:5580"});
  CHECK(r.frontend.connect.empty());
  CHECK(r.backend.type == SocketType::kDealer);
  CHECK(r.backend.bind.empty());
  CHECK(r.backend.connect == std::vector<std::string>{"tcp://127.0.0.1:5590"});
  CHECK(r.queue.max_messages == 5000);
  CHECK(r.queue.max_bytes == 256ULL << 20);
  CHECK(r.queue.max_message_bytes == 64ULL << 20);
  CHECK(r.queue.overflow == Overflow::kBlock);
  CHECK(r.flush.interval_ms == 1000);
  CHECK_FALSE(r.correlation.has_value());
}

TEST_CASE("default_config equals the same route written as a minimal file") {
  json doc = json::parse(R"({"routes": [{"name": "default",
      "frontend": {"type": "router", "bind": ["tcp://*:5580"]},
      "backend": {"type": "dealer", "connect": ["tcp://127.0.0.1:5590"]}}]})");
  CHECK(to_json(parse_config(doc)) == to_json(default_config()));
}

TEST_CASE("to_json round trip: parse_config(to_json(c)) gives the same JSON") {
  for (const json& doc : {base(), full(), to_json(default_config())}) {
    const json once = to_json(parse_config(doc));
    const json twice = to_json(parse_config(once));
    CHECK(once == twice);
  }
  // Every key in the full example survives with its value.
  const json out = to_json(parse_config(full()));
  const json in = full();
  CHECK(out["http"] == in["http"]);
  CHECK(out["log"] == in["log"]);
  CHECK(out["shutdown"] == in["shutdown"]);
  CHECK(out["routes"][0]["queue"] == in["routes"][0]["queue"]);
  CHECK(out["routes"][0]["flush"] == in["routes"][0]["flush"]);
  CHECK(out["routes"][0]["correlation"] == in["routes"][0]["correlation"]);
  CHECK(out["routes"][0]["spool"] == in["routes"][0]["spool"]);
  CHECK(out["routes"][0]["backend"] == in["routes"][0]["backend"]);
  CHECK(out["routes"][1]["frontend"]["bind"] == in["routes"][1]["frontend"]["bind"]);
  CHECK(out["routes"][1]["frontend"]["type"] == "pull");
  CHECK_FALSE(out["routes"][1].contains("correlation"));
  CHECK_FALSE(out["routes"][1].contains("spool"));
}

TEST_CASE("parse_config_text accepts JSON text") {
  const Config c = parse_config_text(base().dump());
  CHECK(c.routes.at(0).name == "requests");
}

// ---------------------------------------------------------------------------------------------
// Errors name the key path

TEST_CASE("unknown keys are named at every level") {
  struct Case {
    json::json_pointer where;
    std::string expected;
  };
  json doc = full();
  const Case cases[] = {
      {json::json_pointer(""), "xyz"},
      {json::json_pointer("/http"), "http.xyz"},
      {json::json_pointer("/log"), "log.xyz"},
      {json::json_pointer("/shutdown"), "shutdown.xyz"},
      {json::json_pointer("/routes/0"), "routes[0].xyz"},
      {json::json_pointer("/routes/0/frontend"), "routes[0].frontend.xyz"},
      {json::json_pointer("/routes/0/backend"), "routes[0].backend.xyz"},
      {json::json_pointer("/routes/0/queue"), "routes[0].queue.xyz"},
      {json::json_pointer("/routes/0/flush"), "routes[0].flush.xyz"},
      {json::json_pointer("/routes/0/correlation"), "routes[0].correlation.xyz"},
      {json::json_pointer("/routes/0/spool"), "routes[0].spool.xyz"},
      {json::json_pointer("/routes/1/queue"), "routes[1].queue.xyz"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.expected);
    json broken = doc;
    broken[c.where]["xyz"] = 1;
    CHECK(error_path(broken) == c.expected);
    CHECK(contains(error_problem(broken), "unknown key"));
  }
  // The message lists the keys that do exist.
  json broken = doc;
  broken["routes"][0]["queue"]["max_mesages"] = 1;
  CHECK(error_path(broken) == "routes[0].queue.max_mesages");
  CHECK(contains(error_problem(broken), "max_messages"));
}

TEST_CASE("wrong types are named") {
  struct Case {
    json::json_pointer where;
    json value;
    std::string expected;
  };
  const Case cases[] = {
      {json::json_pointer("/http"), "x", "http"},
      {json::json_pointer("/http/listen"), 9464, "http.listen"},
      {json::json_pointer("/log"), json::array(), "log"},
      {json::json_pointer("/log/level"), 3, "log.level"},
      {json::json_pointer("/log/format"), true, "log.format"},
      {json::json_pointer("/shutdown/drain_timeout_ms"), "10", "shutdown.drain_timeout_ms"},
      {json::json_pointer("/shutdown/drain_timeout_ms"), -1, "shutdown.drain_timeout_ms"},
      {json::json_pointer("/shutdown/drain_timeout_ms"), 1.5, "shutdown.drain_timeout_ms"},
      {json::json_pointer("/routes"), "x", "routes"},
      {json::json_pointer("/routes"), json::object(), "routes"},
      {json::json_pointer("/routes/0"), 5, "routes[0]"},
      {json::json_pointer("/routes/1"), json::array(), "routes[1]"},
      {json::json_pointer("/routes/0/name"), 1, "routes[0].name"},
      {json::json_pointer("/routes/0/frontend"), "tcp://*:1", "routes[0].frontend"},
      {json::json_pointer("/routes/0/frontend/type"), 1, "routes[0].frontend.type"},
      {json::json_pointer("/routes/0/frontend/bind"), "tcp://*:5580", "routes[0].frontend.bind"},
      {json::json_pointer("/routes/0/frontend/bind/0"), 5580, "routes[0].frontend.bind[0]"},
      {json::json_pointer("/routes/1/frontend/bind/1"), nullptr, "routes[1].frontend.bind[1]"},
      {json::json_pointer("/routes/0/backend/connect"), nullptr, "routes[0].backend.connect"},
      {json::json_pointer("/routes/0/backend/hwm"), "7", "routes[0].backend.hwm"},
      {json::json_pointer("/routes/0/backend/hwm"), 0, "routes[0].backend.hwm"},
      {json::json_pointer("/routes/0/backend/heartbeat_ms"), -5, "routes[0].backend.heartbeat_ms"},
      {json::json_pointer("/routes/0/queue"), 1, "routes[0].queue"},
      {json::json_pointer("/routes/0/queue/max_messages"), "10", "routes[0].queue.max_messages"},
      {json::json_pointer("/routes/0/queue/max_messages"), 0, "routes[0].queue.max_messages"},
      {json::json_pointer("/routes/0/queue/max_messages"), true, "routes[0].queue.max_messages"},
      {json::json_pointer("/routes/0/queue/max_messages"), 2.5, "routes[0].queue.max_messages"},
      {json::json_pointer("/routes/0/queue/max_bytes"), -1, "routes[0].queue.max_bytes"},
      {json::json_pointer("/routes/0/queue/max_bytes"), 18446744073709551615ULL,
       "routes[0].queue.max_bytes"},
      {json::json_pointer("/routes/0/queue/overflow"), 1, "routes[0].queue.overflow"},
      {json::json_pointer("/routes/0/queue/overflow"), "drop", "routes[0].queue.overflow"},
      {json::json_pointer("/routes/0/queue/ttl_ms"), "1s", "routes[0].queue.ttl_ms"},
      {json::json_pointer("/routes/0/flush/interval_ms"), 5, "routes[0].flush.interval_ms"},
      {json::json_pointer("/routes/0/flush/drain_rate"), "fast", "routes[0].flush.drain_rate"},
      {json::json_pointer("/routes/0/flush/drain_rate"), -1.0, "routes[0].flush.drain_rate"},
      {json::json_pointer("/routes/0/flush/max_in_flight"), -1, "routes[0].flush.max_in_flight"},
      {json::json_pointer("/routes/0/correlation"), "request_id", "routes[0].correlation"},
      {json::json_pointer("/routes/0/correlation/key"), 1, "routes[0].correlation.key"},
      {json::json_pointer("/routes/0/correlation/key"), "", "routes[0].correlation.key"},
      {json::json_pointer("/routes/0/correlation/timeout_ms"), 0,
       "routes[0].correlation.timeout_ms"},
      {json::json_pointer("/routes/0/correlation/max_tracked"), 0,
       "routes[0].correlation.max_tracked"},
      {json::json_pointer("/routes/0/spool"), "/var/lib/tidepool", "routes[0].spool"},
      {json::json_pointer("/routes/0/spool/dir"), 1, "routes[0].spool.dir"},
      {json::json_pointer("/routes/0/spool/dir"), "", "routes[0].spool.dir"},
      {json::json_pointer("/routes/0/spool/fsync"), true, "routes[0].spool.fsync"},
      {json::json_pointer("/routes/0/spool/fsync"), "", "routes[0].spool.fsync"},
      {json::json_pointer("/routes/0/spool/fsync_interval_ms"), "100",
       "routes[0].spool.fsync_interval_ms"},
      {json::json_pointer("/routes/0/spool/fsync_interval_ms"), 0,
       "routes[0].spool.fsync_interval_ms"},
      {json::json_pointer("/routes/0/spool/fsync_interval_ms"), 60001,
       "routes[0].spool.fsync_interval_ms"},
      {json::json_pointer("/routes/0/spool/fsync_interval_ms"), -1,
       "routes[0].spool.fsync_interval_ms"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.expected);
    CAPTURE(c.value.dump());
    json broken = full();
    broken[c.where] = c.value;
    CHECK(error_path(broken) == c.expected);
  }
}

TEST_CASE("unknown enum values list the choices") {
  json doc = base();
  doc["log"]["level"] = "verbose";
  CHECK(error_path(doc) == "log.level");
  CHECK(error_problem(doc) == "\"verbose\" is not one of: debug, info, warn, error");
  doc = base();
  doc["log"]["format"] = "xml";
  CHECK(error_path(doc) == "log.format");
  CHECK(error_problem(doc) == "\"xml\" is not one of: text, json");
  doc = base();
  doc["routes"][0]["queue"]["overflow"] = "drop-all";
  CHECK(error_path(doc) == "routes[0].queue.overflow");
  CHECK(error_problem(doc) == "\"drop-all\" is not one of: block, drop-newest, drop-oldest");
  doc = base();
  doc["routes"][0]["frontend"]["type"] = "dealer";
  CHECK(error_path(doc) == "routes[0].frontend.type");
  CHECK(error_problem(doc) == "\"dealer\" is not one of: router, pull");
  doc = base();
  doc["routes"][0]["backend"]["type"] = "router";
  CHECK(error_path(doc) == "routes[0].backend.type");
  CHECK(error_problem(doc) == "\"router\" is not one of: dealer, push");
}

TEST_CASE("a misspelt enum value gets the close choice suggested, a far one none") {
  json doc = base();
  doc["routes"][0]["queue"]["overflow"] = "drop_oldest";
  CHECK(error_path(doc) == "routes[0].queue.overflow");
  CHECK(error_problem(doc) ==
        "\"drop_oldest\" is not one of: block, drop-newest, drop-oldest (did you mean "
        "\"drop-oldest\"?)");
  doc["routes"][0]["queue"]["overflow"] = "Block";
  CHECK(error_problem(doc) ==
        "\"Block\" is not one of: block, drop-newest, drop-oldest (did you mean \"block\"?)");
  doc = base();
  doc["log"]["level"] = "infoo";
  CHECK(error_problem(doc) ==
        "\"infoo\" is not one of: debug, info, warn, error (did you mean \"info\"?)");
  doc = base();
  doc["routes"][0]["frontend"]["type"] = "pul";
  CHECK(error_problem(doc) == "\"pul\" is not one of: router, pull (did you mean \"pull\"?)");
  doc = base();
  doc["routes"][0]["spool"] = {{"dir", "/tmp"}, {"fsync", "alwyas"}};
  CHECK(error_problem(doc) ==
        "\"alwyas\" is not one of: always, interval (did you mean \"always\"?)");
  // Far from every choice: no guess (the choices are listed all the same).
  doc = base();
  doc["routes"][0]["queue"]["overflow"] = "drop-all";
  CHECK(error_problem(doc) == "\"drop-all\" is not one of: block, drop-newest, drop-oldest");
  doc = base();
  doc["log"]["format"] = "yaml";
  CHECK(error_problem(doc) == "\"yaml\" is not one of: text, json");
}

TEST_CASE("a misspelt key gets the close key suggested, a far one only the list") {
  json doc = base();
  doc["routes"][0]["frontend"]["hearbeat_ms"] = 100;
  CHECK(error_path(doc) == "routes[0].frontend.hearbeat_ms");
  CHECK(error_problem(doc) ==
        "unknown key (did you mean \"heartbeat_ms\"? known keys: bind, connect, curve, "
        "heartbeat_ms, hwm, reconnect_max_ms, type)");
  doc = base();
  doc["routes"][0]["queue"]["max_mesages"] = 1;
  CHECK(error_problem(doc) ==
        "unknown key (did you mean \"max_messages\"? known keys: max_bytes, max_message_bytes, "
        "max_messages, overflow, ttl_ms)");
  doc = base();
  doc["rotues"] = doc["routes"];
  doc.erase("routes");
  CHECK(error_path(doc) == "rotues");
  CHECK(error_problem(doc) ==
        "unknown key (did you mean \"routes\"? known keys: http, log, routes, shutdown)");
  doc = base();
  doc["http"]["address"] = "127.0.0.1:1";
  CHECK(error_problem(doc) == "unknown key (known keys: admin, admin_token_file, listen)");
}

TEST_CASE("an override's misspelt value gets a suggestion naming its source") {
  Config config = parse_config(base());
  try {
    tidepool::proxy::apply_overrides(
        config, Overrides{std::nullopt, "wran", std::nullopt, std::nullopt}, kFlagNames);
    FAIL("accepted");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()) ==
          "--log-level: \"wran\" is not one of: debug, info, warn, error (did you mean "
          "\"warn\"?)");
  }
}

TEST_CASE("bad endpoints are named with their list and index") {
  struct Case {
    const char* side;
    const char* list;
    json endpoints;
    std::string expected;
  };
  const Case cases[] = {
      {"frontend", "bind", {"tcp://*:5580", "tcp://*:99999"}, "routes[0].frontend.bind[1]"},
      {"frontend", "bind", {"5580"}, "routes[0].frontend.bind[0]"},
      {"frontend", "bind", {"tcp://"}, "routes[0].frontend.bind[0]"},
      {"frontend", "bind", {"udp://*:5580"}, "routes[0].frontend.bind[0]"},
      {"frontend", "bind", {"tcp://*:port"}, "routes[0].frontend.bind[0]"},
      {"frontend", "connect", {"tcp://*:5580"}, "routes[0].frontend.connect[0]"},
      {"backend", "connect", {"tcp://127.0.0.1:1", "tcp://*:5590"}, "routes[0].backend.connect[1]"},
      {"backend", "connect", {"tcp://127.0.0.1:0"}, "routes[0].backend.connect[0]"},
      {"backend", "connect", {"tcp://127.0.0.1:*"}, "routes[0].backend.connect[0]"},
      {"backend", "connect", {"tcp://127.0.0.1"}, "routes[0].backend.connect[0]"},
      {"backend", "connect", {"tcp://:5590"}, "routes[0].backend.connect[0]"},
      {"backend",
       "bind",
       {"tcp://*:5591", "tcp://*:5592", "tcp://*:-1"},
       "routes[0].backend.bind[2]"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.expected);
    json doc = base();
    doc["routes"][0][c.side][c.list] = c.endpoints;
    CHECK(error_path(doc) == c.expected);
  }
  // The problem quotes the endpoint.
  json doc = base();
  doc["routes"][0]["frontend"]["bind"] = {"tcp://*:99999"};
  CHECK(error_problem(doc) == "\"tcp://*:99999\": port must be a number from 0 to 65535");
}

TEST_CASE("a socket needs at least one endpoint") {
  json doc = base();
  doc["routes"][0]["backend"]["connect"] = json::array();
  CHECK(error_path(doc) == "routes[0].backend");
  doc = base();
  doc["routes"][0]["frontend"] = json::object();
  CHECK(error_path(doc) == "routes[0].frontend");
}

TEST_CASE("endpoint_problem accepts the documented forms") {
  CHECK_FALSE(endpoint_problem("tcp://*:5580", true));
  CHECK_FALSE(endpoint_problem("tcp://*:0", true));
  CHECK_FALSE(endpoint_problem("tcp://*:*", true));
  CHECK_FALSE(endpoint_problem("tcp://0.0.0.0:65535", true));
  CHECK_FALSE(endpoint_problem("tcp://127.0.0.1:5590", false));
  CHECK_FALSE(endpoint_problem("tcp://backtest.internal:5590", false));
  CHECK_FALSE(endpoint_problem("ipc:///tmp/tidepool.sock", true));
  CHECK_FALSE(endpoint_problem("inproc://x", false));
  CHECK(endpoint_problem("tcp://*:5580", false).has_value());
  CHECK(endpoint_problem("tcp://host:0", false).has_value());
  CHECK(endpoint_problem("tcp://host:65536", true).has_value());
  CHECK(endpoint_problem("tcp://host:", true).has_value());
  CHECK(endpoint_problem("ipc://", true).has_value());
  CHECK(endpoint_problem("", true).has_value());
  CHECK(endpoint_problem("pgm://x:1", true).has_value());
}

TEST_CASE("impossible pairings are refused on backend.type with an explanation") {
  json doc = base();
  doc["routes"][0]["backend"]["type"] = "push";  // router → push
  CHECK(error_path(doc) == "routes[0].backend.type");
  std::string problem = error_problem(doc);
  CHECK(contains(problem, "\"push\" cannot pair with frontend \"router\""));
  CHECK(contains(problem, "router→dealer"));
  CHECK(contains(problem, "pull→push"));

  doc = base();
  doc["routes"][0]["frontend"]["type"] = "pull";  // pull → dealer
  CHECK(error_path(doc) == "routes[0].backend.type");
  problem = error_problem(doc);
  CHECK(contains(problem, "\"dealer\" cannot pair with frontend \"pull\""));

  // Only the second route is wrong: its index is named.
  doc = full();
  doc["routes"][1]["backend"]["type"] = "dealer";
  CHECK(error_path(doc) == "routes[1].backend.type");
}

TEST_CASE("route names: required, charset, unique") {
  json doc = base();
  doc["routes"][0].erase("name");
  CHECK(error_path(doc) == "routes[0].name");
  doc["routes"][0]["name"] = "";
  CHECK(error_path(doc) == "routes[0].name");
  doc["routes"][0]["name"] = "has space";
  CHECK(error_path(doc) == "routes[0].name");
  doc["routes"][0]["name"] = "quote\"";
  CHECK(error_path(doc) == "routes[0].name");
  doc["routes"][0]["name"] = "ok_name-1.2";
  CHECK(error_path(doc) == "<accepted>");

  doc = full();
  doc["routes"][1]["name"] = "requests";
  doc["routes"][0].erase("correlation");
  CHECK(error_path(doc) == "routes[1].name");
  CHECK(error_problem(doc) == "duplicate route name \"requests\"");
}

TEST_CASE("frontend and backend are required") {
  json doc = base();
  doc["routes"][0].erase("frontend");
  CHECK(error_path(doc) == "routes[0].frontend");
  doc = base();
  doc["routes"][0].erase("backend");
  CHECK(error_path(doc) == "routes[0].backend");
}

TEST_CASE("an endpoint bound twice is named where it is bound the second time") {
  json doc = full();
  doc["routes"][1]["frontend"]["bind"] = {"ipc:///tmp/x", "tcp://*:5580"};
  CHECK(error_path(doc) == "routes[1].frontend.bind[1]");
  CHECK(error_problem(doc) == "\"tcp://*:5580\" is already bound by routes[0].frontend.bind[0]");

  // Frontend against backend of the same route.
  doc = base();
  doc["routes"][0]["backend"]["bind"] = {"tcp://*:5580"};
  CHECK(error_path(doc) == "routes[0].backend.bind[0]");

  // Port 0 and * mean "any free port": never a clash.
  doc = full();
  doc["routes"][0]["frontend"]["bind"] = {"tcp://127.0.0.1:0", "tcp://*:*"};
  doc["routes"][1]["frontend"]["bind"] = {"tcp://127.0.0.1:0", "tcp://*:*"};
  CHECK(error_path(doc) == "<accepted>");
}

TEST_CASE("max_message_bytes larger than max_bytes is refused") {
  json doc = base();
  doc["routes"][0]["queue"] = {{"max_bytes", 100}, {"max_message_bytes", 101}};
  CHECK(error_path(doc) == "routes[0].queue.max_message_bytes");
  doc["routes"][0]["queue"] = {{"max_bytes", 100}, {"max_message_bytes", 100}};
  CHECK(error_path(doc) == "<accepted>");
  // A max_bytes below the default max_message_bytes (64 MiB) needs max_message_bytes too.
  doc["routes"][0]["queue"] = {{"max_bytes", 1000}};
  CHECK(error_path(doc) == "routes[0].queue.max_message_bytes");
}

TEST_CASE("spool: dir required, fsync policy and interval range, defaults") {
  json doc = base();
  doc["routes"][0]["spool"] = {{"dir", "/var/lib/tidepool"}};
  Config c = parse_config(doc);
  REQUIRE(c.routes[0].spool.has_value());
  CHECK(c.routes[0].spool->dir == "/var/lib/tidepool");
  CHECK(c.routes[0].spool->fsync == FsyncPolicy::kAlways);  // the safe default
  CHECK(c.routes[0].spool->fsync_interval_ms == 100);

  doc["routes"][0]["spool"] = {{"dir", "d"}, {"fsync", "interval"}, {"fsync_interval_ms", 1}};
  c = parse_config(doc);
  CHECK(c.routes[0].spool->fsync == FsyncPolicy::kInterval);
  CHECK(c.routes[0].spool->fsync_interval_ms == 1);
  doc["routes"][0]["spool"]["fsync_interval_ms"] = 60000;
  CHECK(parse_config(doc).routes[0].spool->fsync_interval_ms == 60000);
  doc["routes"][0]["spool"]["fsync"] = "always";
  CHECK(parse_config(doc).routes[0].spool->fsync == FsyncPolicy::kAlways);
  CHECK(to_json(parse_config(doc))["routes"][0]["spool"] ==
        json{{"dir", "d"}, {"fsync", "always"}, {"fsync_interval_ms", 60000}});

  doc["routes"][0]["spool"] = json::object();
  CHECK(error_path(doc) == "routes[0].spool.dir");
  CHECK(error_problem(doc) == "is required");

  doc["routes"][0]["spool"] = {{"dir", "d"}, {"fsync", "sometimes"}};
  CHECK(error_path(doc) == "routes[0].spool.fsync");
  CHECK(error_problem(doc) == "\"sometimes\" is not one of: always, interval");

  doc["routes"][0]["spool"] = {{"dir", "d"}, {"fsync_interval_ms", 60001}};
  CHECK(error_path(doc) == "routes[0].spool.fsync_interval_ms");
  CHECK(error_problem(doc) == "must be between 1 and 60000");

  doc["routes"][0]["spool"] = {{"dir", "d"}, {"segment_bytes", 1}};
  CHECK(error_path(doc) == "routes[0].spool.segment_bytes");
  CHECK(contains(error_problem(doc), "known keys: dir, fsync, fsync_interval_ms"));

  // The spool lives in dir/<route>/: "." and ".." are valid route names but not with a spool.
  doc["routes"][0]["spool"] = {{"dir", "d"}};
  doc["routes"][0]["name"] = "..";
  CHECK(error_path(doc) == "routes[0].name");
  doc["routes"][0].erase("spool");
  CHECK(error_path(doc) == "<accepted>");
}

TEST_CASE("curve: roles per side, required files, check-config shows file names only") {
  json doc = base();
  doc["routes"][0]["frontend"]["curve"] = {{"secret_key_file", "/k/server.key_secret"},
                                           {"authorized_keys", "/k/clients"}};
  doc["routes"][0]["backend"]["curve"] = {{"secret_key_file", "/k/tidepool.key_secret"},
                                          {"server_public_key_file", "/k/worker.key"}};
  Config c = parse_config(doc);
  REQUIRE(c.routes[0].frontend.curve.has_value());
  CHECK(c.routes[0].frontend.curve->secret_key_file == "/k/server.key_secret");
  CHECK(c.routes[0].frontend.curve->authorized_keys == "/k/clients");
  REQUIRE(c.routes[0].backend.curve.has_value());
  CHECK(c.routes[0].backend.curve->server_public_key_file == "/k/worker.key");
  CHECK(to_json(c)["routes"][0]["frontend"]["curve"] == doc["routes"][0]["frontend"]["curve"]);
  CHECK(to_json(c)["routes"][0]["backend"]["curve"] == doc["routes"][0]["backend"]["curve"]);
  CHECK_FALSE(parse_config(base()).routes[0].frontend.curve.has_value());

  // The allow-list is optional: any client that knows the server key.
  doc["routes"][0]["frontend"]["curve"].erase("authorized_keys");
  CHECK(parse_config(doc).routes[0].frontend.curve->authorized_keys.empty());
  doc["routes"][0]["frontend"]["curve"]["authorized_keys"] = "";
  CHECK(error_path(doc) == "routes[0].frontend.curve.authorized_keys");

  doc = base();
  doc["routes"][0]["frontend"]["curve"] = json::object();
  CHECK(error_path(doc) == "routes[0].frontend.curve.secret_key_file");
  CHECK(contains(error_problem(doc), "tidepool keygen"));

  // Each side takes only its own role's keys.
  doc["routes"][0]["frontend"]["curve"] = {{"secret_key_file", "s"},
                                           {"server_public_key_file", "w"}};
  CHECK(error_path(doc) == "routes[0].frontend.curve.server_public_key_file");
  CHECK(contains(error_problem(doc), "known keys: authorized_keys, secret_key_file"));

  doc = base();
  doc["routes"][0]["backend"]["curve"] = {{"secret_key_file", "s"}};
  CHECK(error_path(doc) == "routes[0].backend.curve.server_public_key_file");
  doc["routes"][0]["backend"]["curve"] = {
      {"secret_key_file", "s"}, {"server_public_key_file", "w"}, {"authorized_keys", "a"}};
  CHECK(error_path(doc) == "routes[0].backend.curve.authorized_keys");
  doc["routes"][0]["backend"]["curve"] = "on";
  CHECK(error_path(doc) == "routes[0].backend.curve");
}

TEST_CASE("correlation.pair_with must name another existing route") {
  json doc = full();
  doc["routes"][0]["correlation"]["pair_with"] = "nope";
  CHECK(error_path(doc) == "routes[0].correlation.pair_with");
  CHECK(error_problem(doc) == "no route is named \"nope\"");
  doc["routes"][0]["correlation"]["pair_with"] = "requests";
  CHECK(error_path(doc) == "routes[0].correlation.pair_with");
  CHECK(error_problem(doc) == "must name another route, not this one");
  doc["routes"][0]["correlation"].erase("pair_with");
  CHECK(error_path(doc) == "routes[0].correlation.pair_with");
}

TEST_CASE("routes: required, non-empty") {
  json doc = base();
  doc["routes"] = json::array();
  CHECK(error_path(doc) == "routes");
  CHECK(error_problem(doc) == "needs at least one route");
  doc.erase("routes");
  CHECK(error_path(doc) == "routes");
  CHECK(error_path(json::object()) == "routes");
}

TEST_CASE("the document itself must be an object") {
  CHECK(error_path(json::array()) == "");
  CHECK(error_path(json(5)) == "");
  CHECK(thrown_path([] { parse_config_text("[]"); }) == "");
}

TEST_CASE("invalid JSON text is a ConfigError with position, not a json exception") {
  for (const char* text : {"", "{", "{\"routes\": [}", "{'routes': []}", "{\"a\":1,}"}) {
    CAPTURE(text);
    try {
      parse_config_text(text);
      FAIL("accepted invalid JSON");
    } catch (const ConfigError& e) {
      CHECK(e.path().empty());
      CHECK(std::string(e.what()).rfind("config: invalid JSON: ", 0) == 0);
      CHECK_FALSE(contains(e.what(), "[json.exception"));
    }
  }
}

TEST_CASE("http.listen must be HOST:PORT") {
  for (const char* listen :
       {"9464", ":9464", "127.0.0.1:", "127.0.0.1:99999", "host:abc", "127.0.0.1:-1", ""}) {
    CAPTURE(listen);
    json doc = base();
    doc["http"]["listen"] = listen;
    CHECK(error_path(doc) == "http.listen");
  }
  for (const char* listen : {"127.0.0.1:0", "0.0.0.0:9464", "[::1]:9464", "localhost:65535"}) {
    CAPTURE(listen);
    json doc = base();
    doc["http"]["listen"] = listen;
    CHECK(error_path(doc) == "<accepted>");
  }
}

TEST_CASE("load_config_file names the file") {
  const std::string missing = "/nonexistent/tidepool-test.json";
  try {
    tidepool::proxy::load_config_file(missing);
    FAIL("accepted a missing file");
  } catch (const ConfigError& e) {
    CHECK(contains(e.what(), missing));
  }
}

// ---------------------------------------------------------------------------------------------
// Overrides: flag > environment > file

TEST_CASE("apply_overrides sets each global setting") {
  Config c = parse_config(base());
  Overrides o;
  o.http_listen = "0.0.0.0:1234";
  o.log_level = "warn";
  o.log_format = "json";
  o.drain_timeout_ms = "250";
  apply_overrides(c, o, kFlagNames);
  CHECK(c.http_listen == "0.0.0.0:1234");
  CHECK(c.log_level == LogLevel::kWarn);
  CHECK(c.log_format == LogFormat::kJson);
  CHECK(c.drain_timeout_ms == 250);
  // Nothing set: nothing changes.
  apply_overrides(c, Overrides{}, kFlagNames);
  CHECK(c.http_listen == "0.0.0.0:1234");
  CHECK(c.drain_timeout_ms == 250);
}

TEST_CASE("flags applied after the environment win; unset flags keep the environment's") {
  json doc = base();
  doc["log"] = {{"level", "error"}, {"format", "text"}};
  doc["shutdown"] = {{"drain_timeout_ms", 100}};
  Config c = parse_config(doc);
  Overrides env;
  env.log_level = "debug";
  env.drain_timeout_ms = "200";
  env.log_format = "json";
  Overrides flags;
  flags.log_level = "warn";
  apply_overrides(c, env, kEnvNames);
  apply_overrides(c, flags, kFlagNames);
  CHECK(c.log_level == LogLevel::kWarn);     // flag
  CHECK(c.drain_timeout_ms == 200);          // environment
  CHECK(c.log_format == LogFormat::kJson);   // environment
  CHECK(c.http_listen == "127.0.0.1:9464");  // default (file did not set it)
}

TEST_CASE("override errors name their source") {
  struct Case {
    Overrides overrides;
    const std::map<std::string, std::string>* names;
    std::string expected;
  };
  const Case cases[] = {
      {{std::nullopt, "loud", std::nullopt, std::nullopt}, &kFlagNames, "--log-level"},
      {{std::nullopt, "loud", std::nullopt, std::nullopt}, &kEnvNames, "TIDEPOOL_LOG_LEVEL"},
      {{std::nullopt, std::nullopt, "yaml", std::nullopt}, &kFlagNames, "--log-format"},
      {{"9464", std::nullopt, std::nullopt, std::nullopt}, &kFlagNames, "--http-listen"},
      {{"host:70000", std::nullopt, std::nullopt, std::nullopt},
       &kEnvNames,
       "TIDEPOOL_HTTP_LISTEN"},
      {{std::nullopt, std::nullopt, std::nullopt, "ten"}, &kFlagNames, "--drain-timeout-ms"},
      {{std::nullopt, std::nullopt, std::nullopt, "-5"}, &kFlagNames, "--drain-timeout-ms"},
      {{std::nullopt, std::nullopt, std::nullopt, "5s"}, &kEnvNames, "TIDEPOOL_DRAIN_TIMEOUT_MS"},
      {{std::nullopt, std::nullopt, std::nullopt, ""}, &kFlagNames, "--drain-timeout-ms"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.expected);
    Config config = parse_config(base());
    CHECK(thrown_path([&] { apply_overrides(config, c.overrides, *c.names); }) == c.expected);
  }
  // The message carries the source and the offending value.
  Config config = parse_config(base());
  Overrides o;
  o.log_level = "loud";
  try {
    apply_overrides(config, o, kFlagNames);
    FAIL("accepted --log-level loud");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()) == "--log-level: \"loud\" is not one of: debug, info, warn, error");
  }
  // Without a name for the key, the file key path is used.
  CHECK(thrown_path([&] { apply_overrides(config, o, {}); }) == "log.level");
}

// Regression: overrides get the same range check as the file key they stand for.
TEST_CASE("a drain timeout override is range-checked like the file key") {
  json doc = base();
  doc["shutdown"]["drain_timeout_ms"] = 99999999;
  CHECK(error_path(doc) == "shutdown.drain_timeout_ms");
  Config config = parse_config(base());
  Overrides o;
  o.drain_timeout_ms = "99999999";
  CHECK(thrown_path([&] { apply_overrides(config, o, kFlagNames); }) == "--drain-timeout-ms");
}

TEST_CASE("overrides_from_environment reads the TIDEPOOL_* variables") {
  SUBCASE("all set") {
    ScopedEnv a("TIDEPOOL_HTTP_LISTEN", "0.0.0.0:9999");
    ScopedEnv b("TIDEPOOL_LOG_LEVEL", "error");
    ScopedEnv c("TIDEPOOL_LOG_FORMAT", "json");
    ScopedEnv d("TIDEPOOL_DRAIN_TIMEOUT_MS", "42");
    const Overrides o = tidepool::proxy::overrides_from_environment();
    CHECK(o.http_listen == "0.0.0.0:9999");
    CHECK(o.log_level == "error");
    CHECK(o.log_format == "json");
    CHECK(o.drain_timeout_ms == "42");
    Config config = parse_config(base());
    apply_overrides(config, o, kEnvNames);
    CHECK(config.http_listen == "0.0.0.0:9999");
    CHECK(config.log_level == LogLevel::kError);
    CHECK(config.log_format == LogFormat::kJson);
    CHECK(config.drain_timeout_ms == 42);
  }
  SUBCASE("unset and empty mean not set") {
    ScopedEnv a("TIDEPOOL_HTTP_LISTEN", nullptr);
    ScopedEnv b("TIDEPOOL_LOG_LEVEL", "");
    ScopedEnv c("TIDEPOOL_LOG_FORMAT", nullptr);
    ScopedEnv d("TIDEPOOL_DRAIN_TIMEOUT_MS", "");
    const Overrides o = tidepool::proxy::overrides_from_environment();
    CHECK_FALSE(o.http_listen.has_value());
    CHECK_FALSE(o.log_level.has_value());
    CHECK_FALSE(o.log_format.has_value());
    CHECK_FALSE(o.drain_timeout_ms.has_value());
  }
  SUBCASE("a bad value is named after its variable") {
    ScopedEnv b("TIDEPOOL_LOG_LEVEL", "chatty");
    Config config = parse_config(base());
    CHECK(thrown_path([&] {
            apply_overrides(config, tidepool::proxy::overrides_from_environment(), kEnvNames);
          }) == "TIDEPOOL_LOG_LEVEL");
  }
}

// Found by fuzz_config: a number beyond double's range made nlohmann throw out_of_range,
// which escaped as a crash instead of a config error.
TEST_CASE("a number too large for any type is a config error, not a crash") {
  CHECK_THROWS_AS(tidepool::proxy::parse_config_text("99999E999999"), tidepool::proxy::ConfigError);
  CHECK_THROWS_AS(
      tidepool::proxy::parse_config_text(R"({"shutdown": {"drain_timeout_ms": 1E999}})"),
      tidepool::proxy::ConfigError);
}

TEST_CASE("duplicate keys are errors naming the key, at any depth") {
  const auto path_of = [](const std::string& text) -> std::string {
    try {
      parse_config_text(text);
    } catch (const ConfigError& e) {
      CHECK(e.problem() == "duplicate key");
      return e.path();
    }
    return "<accepted>";
  };
  const std::string route =
      R"({"name": "a", "frontend": {"bind": ["tcp://*:5580"]},
          "backend": {"connect": ["tcp://127.0.0.1:5590"]}})";
  CHECK(path_of(R"({"routes": [], "routes": []})") == "routes");
  CHECK(path_of(R"({"log": {"level": "info", "level": "debug"}, "routes": [])" + route + "]}") ==
        "log.level");
  CHECK(path_of(R"({"routes": [)" + route +
                R"(, {"name": "b", "queue": {"max_messages": 1, "max_messages": 2}}]})") ==
        "routes[1].queue.max_messages");
  CHECK(path_of(R"({"routes": [[1, 2, {"x": 1, "x": 2}]]})") == "routes[0][2].x");
  // The same key in two objects is no duplicate.
  std::string other = route;
  other.replace(other.find("\"a\""), 3, "\"b\"");
  other.replace(other.find("5580"), 4, "5581");
  CHECK(path_of(R"({"routes": [)" + route + ", " + other + "]}") == "<accepted>");
}

TEST_CASE("reconnect_max_ms: default, range, round trip") {
  CHECK(parse_config(base()).routes[0].backend.reconnect_max_ms == 5000);
  json doc = base();
  doc["routes"][0]["backend"]["reconnect_max_ms"] = 0;
  CHECK(parse_config(doc).routes[0].backend.reconnect_max_ms == 0);
  doc["routes"][0]["backend"]["reconnect_max_ms"] = 3'600'001;
  CHECK(error_path(doc) == "routes[0].backend.reconnect_max_ms");
  doc["routes"][0]["backend"]["reconnect_max_ms"] = 500;
  CHECK(to_json(parse_config(doc))["routes"][0]["backend"]["reconnect_max_ms"] == 500);
}

TEST_CASE("endpoints a start would refuse are refused with the reason") {
  const std::string long_path = "ipc:///tmp/" + std::string(200, 'x');
  REQUIRE(endpoint_problem(long_path, true).has_value());
  CHECK(endpoint_problem(long_path, true)->find("at most 107") != std::string::npos);
  CHECK(endpoint_problem(long_path, false).has_value());
  CHECK_FALSE(endpoint_problem("ipc:///tmp/" + std::string(102, 'x'), true));  // 107 bytes
  CHECK(endpoint_problem("ipc:///tmp/" + std::string(103, 'x'), true).has_value());
  // bind takes addresses and interfaces, not host names (connect resolves them later).
  CHECK(endpoint_problem("tcp://localhost:5580", true).has_value());
  CHECK_FALSE(endpoint_problem("tcp://localhost:5580", false));
  CHECK(endpoint_problem("tcp://no-such-interface0:5580", true).has_value());
  CHECK_FALSE(endpoint_problem("tcp://lo:5580", true));
  CHECK_FALSE(endpoint_problem("tcp://[::1]:0", true));
  CHECK_FALSE(endpoint_problem("tcp://[::1]:5590", false));
  CHECK(endpoint_problem("tcp://[::1]:65536", true).has_value());
}

TEST_CASE("http.admin and http.admin_token_file") {
  CHECK(parse_config(base()).http_admin);  // default: POST /flush on, no token
  CHECK(parse_config(base()).http_admin_token_file.empty());
  json doc = base();
  doc["http"]["admin"] = false;
  CHECK_FALSE(parse_config(doc).http_admin);
  CHECK(to_json(parse_config(doc))["http"]["admin"] == false);
  doc["http"]["admin"] = "no";
  CHECK(error_path(doc) == "http.admin");
  doc = base();
  doc["http"]["admin_token_file"] = "";
  CHECK(error_path(doc) == "http.admin_token_file");
  doc["http"]["admin"] = false;  // a token for an endpoint that is off: contradictory
  doc["http"]["admin_token_file"] = "/run/secrets/t";
  CHECK(error_path(doc) == "http.admin_token_file");
}

TEST_CASE("load_http_admin_token: the first line, without trailing blanks; errors name the key") {
  tidepool::test::TempDir dir;
  Config config;
  tidepool::proxy::load_http_admin_token(config);  // no file: nothing to do
  CHECK(config.http_admin_token.empty());
  const std::string file = dir.path() + "/token";
  std::ofstream(file) << "s3cret-token \r\nsecond line\n";
  config.http_admin_token_file = file;
  tidepool::proxy::load_http_admin_token(config);
  CHECK(config.http_admin_token == "s3cret-token");
  std::ofstream(file, std::ios::trunc) << "\n";
  CHECK_THROWS_WITH_AS(tidepool::proxy::load_http_admin_token(config),
                       doctest::Contains("http.admin_token_file"), ConfigError);
  config.http_admin_token_file = dir.path() + "/missing";
  CHECK_THROWS_WITH_AS(tidepool::proxy::load_http_admin_token(config),
                       doctest::Contains("cannot read"), ConfigError);
}
