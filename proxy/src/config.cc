// The config file: its schema and defaults, parsing with errors that name the key, validation
// of what a start would refuse, and the overrides from flags and TIDEPOOL_* variables. The
// config written back out (check-config, the enums' names) is in config_json.cc.
#include "tidepool/proxy/config.h"

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "tidepool/proxy/suggest.h"

namespace tidepool::proxy {
namespace {

using nlohmann::json;

// Walks one JSON object, remembering its key path for errors and refusing unknown keys.
class ObjectReader {
 public:
  ObjectReader(const json& object, std::string path, std::set<std::string> allowed)
      : object_(object), path_(std::move(path)) {
    if (!object_.is_object()) throw ConfigError(path_, "must be an object");
    for (const auto& [key, value] : object_.items()) {
      if (!allowed.contains(key)) {
        std::string known;
        for (const auto& name : allowed) known += (known.empty() ? "" : ", ") + name;
        const auto guess = closest_name(key, {allowed.begin(), allowed.end()});
        throw ConfigError(child(key), "unknown key (" +
                                          (guess ? "did you mean \"" + *guess + "\"? " : "") +
                                          "known keys: " + known + ")");
      }
    }
  }

  [[nodiscard]] std::string child(const std::string& key) const {
    return path_.empty() ? key : path_ + "." + key;
  }
  [[nodiscard]] const json* find(const std::string& key) const {
    auto it = object_.find(key);
    return it == object_.end() ? nullptr : &*it;
  }

  void read_string(const std::string& key, std::string& out) const {
    if (const json* v = find(key)) {
      if (!v->is_string()) throw ConfigError(child(key), "must be a string");
      out = v->get<std::string>();
    }
  }
  template <typename Int>
  void read_uint(const std::string& key, Int& out, std::uint64_t min = 0,
                 std::uint64_t max =
                     static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) const {
    if (const json* v = find(key)) {
      if (!v->is_number_integer() || (!v->is_number_unsigned() && v->get<std::int64_t>() < 0)) {
        throw ConfigError(child(key), "must be a non-negative integer");
      }
      const auto value = v->get<std::uint64_t>();
      if (value < min || value > max) {
        throw ConfigError(child(key),
                          "must be between " + std::to_string(min) + " and " + std::to_string(max));
      }
      out = static_cast<Int>(value);
    }
  }
  void read_number(const std::string& key, double& out) const {
    if (const json* v = find(key)) {
      if (!v->is_number() || v->get<double>() < 0) {
        throw ConfigError(child(key), "must be a non-negative number");
      }
      out = v->get<double>();
    }
  }
  void read_string_list(const std::string& key, std::vector<std::string>& out) const {
    if (const json* v = find(key)) {
      if (!v->is_array()) throw ConfigError(child(key), "must be an array of strings");
      out.clear();
      for (std::size_t i = 0; i < v->size(); ++i) {
        if (!(*v)[i].is_string()) {
          throw ConfigError(child(key) + "[" + std::to_string(i) + "]", "must be a string");
        }
        out.push_back((*v)[i].get<std::string>());
      }
    }
  }

 private:
  const json& object_;
  std::string path_;
};

template <typename Enum>
Enum parse_enum(const std::string& path, const std::string& text,
                std::initializer_list<std::pair<std::string_view, Enum>> choices) {
  std::string names;
  std::vector<std::string> candidates;
  for (const auto& [name, value] : choices) {
    if (name == text) return value;
    names += (names.empty() ? "" : ", ") + std::string(name);
    candidates.emplace_back(name);
  }
  throw ConfigError(path,
                    "\"" + text + "\" is not one of: " + names + did_you_mean(text, candidates));
}

LogLevel parse_log_level(const std::string& path, const std::string& text) {
  return parse_enum<LogLevel>(path, text,
                              {{"debug", LogLevel::kDebug},
                               {"info", LogLevel::kInfo},
                               {"warn", LogLevel::kWarn},
                               {"error", LogLevel::kError}});
}

LogFormat parse_log_format(const std::string& path, const std::string& text) {
  return parse_enum<LogFormat>(path, text,
                               {{"text", LogFormat::kText}, {"json", LogFormat::kJson}});
}

std::optional<std::string> http_listen_problem(std::string_view listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return "must be HOST:PORT";
  const auto port = listen.substr(colon + 1);
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    return "port must be a number from 0 to 65535";
  }
  return std::nullopt;
}

// The same bound as the file key shutdown.drain_timeout_ms.
constexpr std::int64_t kMaxDrainTimeoutMs = 3'600'000;

std::int64_t parse_drain_timeout_text(const std::string& path, const std::string& text) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0) {
    throw ConfigError(path, "\"" + text + "\" is not a non-negative integer");
  }
  if (value > kMaxDrainTimeoutMs) {
    throw ConfigError(path, "must be between 0 and " + std::to_string(kMaxDrainTimeoutMs));
  }
  return value;
}

// The frontend is the CURVE server (its clients may be checked against a list); the backend
// the client (it must know the workers' server key).
CurveConfig parse_curve(const json& object, const std::string& path, bool frontend) {
  CurveConfig curve;
  ObjectReader reader(object, path,
                      frontend
                          ? std::set<std::string>{"secret_key_file", "authorized_keys"}
                          : std::set<std::string>{"secret_key_file", "server_public_key_file"});
  reader.read_string("secret_key_file", curve.secret_key_file);
  if (curve.secret_key_file.empty()) {
    throw ConfigError(
        reader.child("secret_key_file"),
        "is required: this side's secret certificate (make one with tidepool keygen)");
  }
  if (frontend) {
    reader.read_string("authorized_keys", curve.authorized_keys);
    if (reader.find("authorized_keys") != nullptr && curve.authorized_keys.empty()) {
      throw ConfigError(reader.child("authorized_keys"),
                        "must not be empty (leave the key out to let in any client that knows "
                        "the server key)");
    }
  } else {
    reader.read_string("server_public_key_file", curve.server_public_key_file);
    if (curve.server_public_key_file.empty()) {
      throw ConfigError(reader.child("server_public_key_file"),
                        "is required: the public certificate of the workers' CURVE server key");
    }
  }
  return curve;
}

// The reconnect back-off's ceiling: beyond an hour a returning worker would go unnoticed
// for longer than any deployment would want.
constexpr int kMaxReconnectMs = 3'600'000;

SocketConfig parse_socket(const json& object, const std::string& path, bool frontend) {
  SocketConfig socket;
  socket.type = frontend ? SocketType::kRouter : SocketType::kDealer;
  ObjectReader reader(
      object, path,
      {"type", "bind", "connect", "hwm", "heartbeat_ms", "reconnect_max_ms", "curve"});
  std::string type;
  reader.read_string("type", type);
  if (!type.empty()) {
    socket.type = frontend ? parse_enum<SocketType>(
                                 reader.child("type"), type,
                                 {{"router", SocketType::kRouter}, {"pull", SocketType::kPull}})
                           : parse_enum<SocketType>(
                                 reader.child("type"), type,
                                 {{"dealer", SocketType::kDealer}, {"push", SocketType::kPush}});
  }
  reader.read_string_list("bind", socket.bind);
  reader.read_string_list("connect", socket.connect);
  reader.read_uint("hwm", socket.hwm, 1, 10'000'000);
  reader.read_uint("heartbeat_ms", socket.heartbeat_ms, 0, 3'600'000);
  reader.read_uint("reconnect_max_ms", socket.reconnect_max_ms, 0, kMaxReconnectMs);
  if (socket.bind.empty() && socket.connect.empty()) {
    throw ConfigError(path, "needs at least one endpoint in \"bind\" or \"connect\"");
  }
  if (const json* curve = reader.find("curve"))
    socket.curve = parse_curve(*curve, reader.child("curve"), frontend);
  for (const auto& [list, for_bind] : {std::pair{&socket.bind, true}, {&socket.connect, false}}) {
    for (std::size_t i = 0; i < list->size(); ++i) {
      if (auto problem = endpoint_problem((*list)[i], for_bind)) {
        throw ConfigError(path + (for_bind ? ".bind[" : ".connect[") + std::to_string(i) + "]",
                          "\"" + (*list)[i] + "\": " + *problem);
      }
    }
  }
  return socket;
}

RouteConfig parse_route(const json& object, const std::string& path) {
  RouteConfig route;
  ObjectReader reader(
      object, path,
      {"name", "frontend", "backend", "queue", "flush", "replies", "correlation", "spool"});
  reader.read_string("name", route.name);
  if (route.name.empty()) throw ConfigError(reader.child("name"), "is required (non-empty)");
  for (char c : route.name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) {
      throw ConfigError(reader.child("name"),
                        "\"" + route.name + "\": use letters, digits, '_', '-' or '.'");
    }
  }
  const json* frontend = reader.find("frontend");
  if (frontend == nullptr) throw ConfigError(reader.child("frontend"), "is required");
  route.frontend = parse_socket(*frontend, reader.child("frontend"), true);
  const json* backend = reader.find("backend");
  if (backend == nullptr) throw ConfigError(reader.child("backend"), "is required");
  route.backend = parse_socket(*backend, reader.child("backend"), false);

  const bool router_pair = route.frontend.type == SocketType::kRouter;
  const bool expected_router_pair = route.backend.type == SocketType::kDealer;
  if (router_pair != expected_router_pair) {
    throw ConfigError(
        reader.child("backend.type"),
        "\"" + std::string(to_string(route.backend.type)) + "\" cannot pair with frontend \"" +
            std::string(to_string(route.frontend.type)) +
            "\": the pairings are router→dealer (request-reply: REQ/DEALER clients, replies "
            "routed back) and pull→push (pipeline: PUSH clients, no replies); libzmq refuses "
            "other peers at the handshake");
  }

  if (const json* queue = reader.find("queue")) {
    ObjectReader q(*queue, reader.child("queue"),
                   {"max_messages", "max_bytes", "max_message_bytes", "overflow", "ttl_ms"});
    q.read_uint("max_messages", route.queue.max_messages, 1, 100'000'000);
    q.read_uint("max_bytes", route.queue.max_bytes, 1);
    q.read_uint("max_message_bytes", route.queue.max_message_bytes, 1, 1ULL << 31);
    std::string overflow;
    q.read_string("overflow", overflow);
    if (!overflow.empty()) {
      route.queue.overflow = parse_enum<Overflow>(q.child("overflow"), overflow,
                                                  {{"block", Overflow::kBlock},
                                                   {"drop-newest", Overflow::kDropNewest},
                                                   {"drop-oldest", Overflow::kDropOldest}});
    }
    q.read_uint("ttl_ms", route.queue.ttl_ms);
    if (route.queue.max_message_bytes > route.queue.max_bytes) {
      throw ConfigError(q.child("max_message_bytes"),
                        "is larger than max_bytes: such a message could never be queued");
    }
  }
  if (const json* flush = reader.find("flush")) {
    ObjectReader f(*flush, reader.child("flush"), {"interval_ms", "drain_rate", "max_in_flight"});
    f.read_uint("interval_ms", route.flush.interval_ms, 10, 86'400'000);
    f.read_number("drain_rate", route.flush.drain_rate);
    f.read_uint("max_in_flight", route.flush.max_in_flight);
  }
  if (const json* replies = reader.find("replies")) {
    if (!router_pair) {
      throw ConfigError(reader.child("replies"),
                        "applies to request-reply routes only (a pipeline has no replies)");
    }
    ObjectReader r(*replies, reader.child("replies"), {"max_messages", "max_bytes", "timeout_ms"});
    r.read_uint("max_messages", route.replies.max_messages, 1, 100'000'000);
    r.read_uint("max_bytes", route.replies.max_bytes, 1);
    r.read_uint("timeout_ms", route.replies.timeout_ms, 1);
  }
  if (const json* correlation = reader.find("correlation")) {
    CorrelationConfig c;
    ObjectReader r(*correlation, reader.child("correlation"),
                   {"key", "pair_with", "timeout_ms", "max_tracked"});
    r.read_string("key", c.key);
    r.read_string("pair_with", c.pair_with);
    r.read_uint("timeout_ms", c.timeout_ms, 1);
    r.read_uint("max_tracked", c.max_tracked, 1, 100'000'000);
    if (c.key.empty()) throw ConfigError(r.child("key"), "must not be empty");
    if (c.pair_with.empty()) {
      throw ConfigError(r.child("pair_with"), "is required: the route that carries the results");
    }
    route.correlation = c;
  }
  if (const json* spool = reader.find("spool")) {
    SpoolConfig c;
    ObjectReader r(*spool, reader.child("spool"), {"dir", "fsync", "fsync_interval_ms"});
    if (r.find("dir") == nullptr) throw ConfigError(r.child("dir"), "is required");
    r.read_string("dir", c.dir);
    if (c.dir.empty()) throw ConfigError(r.child("dir"), "must not be empty");
    std::string fsync;
    r.read_string("fsync", fsync);
    if (r.find("fsync") != nullptr) {
      c.fsync = parse_enum<FsyncPolicy>(
          r.child("fsync"), fsync,
          {{"always", FsyncPolicy::kAlways}, {"interval", FsyncPolicy::kInterval}});
    }
    r.read_uint("fsync_interval_ms", c.fsync_interval_ms, 1, 60'000);
    // The spool lives in dir/<route>/: these two names would not be a directory of its own.
    if (route.name == "." || route.name == "..") {
      throw ConfigError(reader.child("name"),
                        "\"" + route.name + "\" cannot name a spool directory; rename the route");
    }
    route.spool = c;
  }
  return route;
}

void validate_routes(const Config& config) {
  if (config.routes.empty()) throw ConfigError("routes", "needs at least one route");
  std::set<std::string> names;
  std::map<std::string, std::string> bound;  // endpoint → where it was first seen
  for (std::size_t i = 0; i < config.routes.size(); ++i) {
    const auto& route = config.routes[i];
    const std::string path = "routes[" + std::to_string(i) + "]";
    if (!names.insert(route.name).second) {
      throw ConfigError(path + ".name", "duplicate route name \"" + route.name + "\"");
    }
    for (const auto& [side, socket] :
         {std::pair{"frontend", &route.frontend}, {"backend", &route.backend}}) {
      for (std::size_t j = 0; j < socket->bind.size(); ++j) {
        const std::string where = path + "." + side + ".bind[" + std::to_string(j) + "]";
        const auto& endpoint = socket->bind[j];
        // Port 0 / '*' means "any free port": never a clash.
        const bool ephemeral = endpoint.ends_with(":0") || endpoint.ends_with(":*");
        if (ephemeral) continue;
        auto [it, inserted] = bound.emplace(endpoint, where);
        if (!inserted) {
          throw ConfigError(where, "\"" + endpoint + "\" is already bound by " + it->second);
        }
      }
    }
  }
  for (std::size_t i = 0; i < config.routes.size(); ++i) {
    const auto& route = config.routes[i];
    if (!route.correlation) continue;
    const std::string path = "routes[" + std::to_string(i) + "].correlation.pair_with";
    if (route.correlation->pair_with == route.name) {
      throw ConfigError(path, "must name another route, not this one");
    }
    if (!names.contains(route.correlation->pair_with)) {
      throw ConfigError(path, "no route is named \"" + route.correlation->pair_with + "\"");
    }
  }
}

}  // namespace

ConfigError::ConfigError(std::string path, const std::string& problem)
    : std::runtime_error((path.empty() ? std::string("config") : path) + ": " + problem),
      path_(std::move(path)),
      problem_(problem) {}

Config parse_config(const json& document) {
  Config config;
  ObjectReader top(document, "", {"http", "log", "shutdown", "routes"});
  if (const json* http = top.find("http")) {
    ObjectReader h(*http, "http", {"listen", "admin", "admin_token_file"});
    h.read_string("listen", config.http_listen);
    if (const json* admin = h.find("admin")) {
      if (!admin->is_boolean()) throw ConfigError("http.admin", "must be true or false");
      config.http_admin = admin->get<bool>();
    }
    h.read_string("admin_token_file", config.http_admin_token_file);
    if (h.find("admin_token_file") != nullptr && config.http_admin_token_file.empty()) {
      throw ConfigError("http.admin_token_file", "must name a file (or leave the key out)");
    }
    if (!config.http_admin && !config.http_admin_token_file.empty()) {
      throw ConfigError("http.admin_token_file",
                        "set, but http.admin is false: POST /flush is off, a token cannot "
                        "turn it on (remove one of the two)");
    }
    if (auto problem = http_listen_problem(config.http_listen)) {
      throw ConfigError("http.listen", "\"" + config.http_listen + "\": " + *problem);
    }
  }
  if (const json* log = top.find("log")) {
    ObjectReader l(*log, "log", {"level", "format"});
    std::string text;
    l.read_string("level", text);
    if (!text.empty()) config.log_level = parse_log_level("log.level", text);
    text.clear();
    l.read_string("format", text);
    if (!text.empty()) config.log_format = parse_log_format("log.format", text);
  }
  if (const json* shutdown = top.find("shutdown")) {
    ObjectReader s(*shutdown, "shutdown", {"drain_timeout_ms"});
    s.read_uint("drain_timeout_ms", config.drain_timeout_ms, 0, kMaxDrainTimeoutMs);
  }
  const json* routes = top.find("routes");
  if (routes == nullptr) throw ConfigError("routes", "is required");
  if (!routes->is_array()) throw ConfigError("routes", "must be an array of route objects");
  for (std::size_t i = 0; i < routes->size(); ++i) {
    config.routes.push_back(parse_route((*routes)[i], "routes[" + std::to_string(i) + "]"));
  }
  validate_routes(config);
  return config;
}

// Tracks the key path while nlohmann parses, refusing a key an object already has: the
// parser would keep the last silently, so a file could say two things and mean one.
class DuplicateKeyCheck {
 public:
  bool operator()(int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        element_started();
        frames_.push_back({event == json::parse_event_t::object_start, {}, {}, 0});
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        frames_.pop_back();
        break;
      case json::parse_event_t::key: {
        Frame& frame = frames_.back();
        frame.key = parsed.get<std::string>();
        if (!frame.keys.insert(frame.key).second) throw ConfigError(path(), "duplicate key");
        break;
      }
      case json::parse_event_t::value:
        element_started();
        break;
    }
    return true;
  }

 private:
  struct Frame {
    bool object;
    std::set<std::string> keys;
    std::string key;           // the object's current key
    std::size_t elements = 0;  // the array's elements so far
  };
  // A value, object or array starting inside an array is its next element.
  void element_started() {
    if (!frames_.empty() && !frames_.back().object) ++frames_.back().elements;
  }
  [[nodiscard]] std::string path() const {
    std::string out;
    for (const auto& frame : frames_) {
      if (frame.object) {
        out += (out.empty() ? "" : ".") + frame.key;
      } else {
        out += "[" + std::to_string(frame.elements - 1) + "]";
      }
    }
    return out;
  }
  std::vector<Frame> frames_;
};

Config parse_config_text(std::string_view text) {
  json document;
  try {
    document = json::parse(text, DuplicateKeyCheck());
  } catch (const json::exception& e) {
    // parse_error for bad syntax, out_of_range for numbers no double can hold (1E999):
    // every way the text can fail is a config error, never an escaped exception.
    // nlohmann's message carries line and column; strip its "[json.exception…]" prefix.
    std::string what = e.what();
    if (auto pos = what.find("] "); pos != std::string::npos) what = what.substr(pos + 2);
    throw ConfigError("", "invalid JSON: " + what);
  }
  return parse_config(document);
}

Config load_config_file(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw ConfigError("", "cannot read config file \"" + path + "\"");
  std::stringstream text;
  text << file.rdbuf();
  try {
    return parse_config_text(text.str());
  } catch (const ConfigError& e) {
    throw ConfigError(e.path(), e.problem() + " (in " + path + ")");
  }
}

void load_http_admin_token(Config& config) {
  if (config.http_admin_token_file.empty()) return;
  const std::string& file = config.http_admin_token_file;
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ConfigError("http.admin_token_file", "cannot read \"" + file + "\"");
  std::string token;
  std::getline(in, token);
  // A trailing CR or blanks (an editor's, or `echo`'s) are not part of the token.
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ' || token.back() == '\t')) {
    token.pop_back();
  }
  if (token.empty()) {
    throw ConfigError("http.admin_token_file", "\"" + file + "\" holds no token on its first line");
  }
  config.http_admin_token = token;
}

Config default_config() {
  Config config;
  RouteConfig route;
  route.name = "default";
  route.frontend.type = SocketType::kRouter;
  route.frontend.bind = {"tcp://*:5580"};
  route.backend.type = SocketType::kDealer;
  route.backend.connect = {"tcp://127.0.0.1:5590"};
  config.routes.push_back(route);
  return config;
}

void apply_overrides(Config& config, const Overrides& overrides,
                     const std::map<std::string, std::string>& source_names) {
  auto name = [&](const std::string& key) {
    auto it = source_names.find(key);
    return it == source_names.end() ? key : it->second;
  };
  if (overrides.http_listen) {
    if (auto problem = http_listen_problem(*overrides.http_listen)) {
      throw ConfigError(name("http.listen"), "\"" + *overrides.http_listen + "\": " + *problem);
    }
    config.http_listen = *overrides.http_listen;
  }
  if (overrides.log_level) {
    config.log_level = parse_log_level(name("log.level"), *overrides.log_level);
  }
  if (overrides.log_format) {
    config.log_format = parse_log_format(name("log.format"), *overrides.log_format);
  }
  if (overrides.drain_timeout_ms) {
    config.drain_timeout_ms =
        parse_drain_timeout_text(name("shutdown.drain_timeout_ms"), *overrides.drain_timeout_ms);
  }
}

Overrides overrides_from_environment() {
  auto get = [](const char* variable) -> std::optional<std::string> {
    const char* value = std::getenv(variable);  // NOLINT(concurrency-mt-unsafe): startup only
    if (value == nullptr || *value == '\0') return std::nullopt;
    return std::string(value);
  };
  return Overrides{get("TIDEPOOL_HTTP_LISTEN"), get("TIDEPOOL_LOG_LEVEL"),
                   get("TIDEPOOL_LOG_FORMAT"), get("TIDEPOOL_DRAIN_TIMEOUT_MS")};
}

}  // namespace tidepool::proxy
