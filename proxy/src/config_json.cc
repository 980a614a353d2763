// The config written back out: the names of its enums (to_string) and to_json(), the
// effective config check-config prints, with file names but never a secret.
#include "tidepool/proxy/config.h"

#include <nlohmann/json.hpp>

namespace tidepool::proxy {

using nlohmann::json;

std::string_view to_string(SocketType type) {
  switch (type) {
    case SocketType::kRouter:
      return "router";
    case SocketType::kDealer:
      return "dealer";
    case SocketType::kPull:
      return "pull";
    case SocketType::kPush:
      return "push";
  }
  return "?";
}
std::string_view to_string(Overflow overflow) {
  switch (overflow) {
    case Overflow::kBlock:
      return "block";
    case Overflow::kDropNewest:
      return "drop-newest";
    case Overflow::kDropOldest:
      return "drop-oldest";
  }
  return "?";
}
std::string_view to_string(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}
std::string_view to_string(LogFormat format) {
  return format == LogFormat::kJson ? "json" : "text";
}
std::string_view to_string(FsyncPolicy policy) {
  return policy == FsyncPolicy::kInterval ? "interval" : "always";
}

namespace {

// The http object of check-config's output; the token itself is never printed.
json http_json(const Config& config) {
  json http{{"listen", config.http_listen}, {"admin", config.http_admin}};
  if (!config.http_admin_token_file.empty()) {
    http["admin_token_file"] = config.http_admin_token_file;
  }
  return http;
}

}  // namespace

json to_json(const Config& config) {
  auto socket_json = [](const SocketConfig& s) {
    json socket{{"type", to_string(s.type)},      {"bind", s.bind},
                {"connect", s.connect},           {"hwm", s.hwm},
                {"heartbeat_ms", s.heartbeat_ms}, {"reconnect_max_ms", s.reconnect_max_ms}};
    if (s.curve) {
      // File names only: check-config output must never carry a secret key.
      json curve{{"secret_key_file", s.curve->secret_key_file}};
      if (!s.curve->server_public_key_file.empty()) {
        curve["server_public_key_file"] = s.curve->server_public_key_file;
      }
      if (!s.curve->authorized_keys.empty()) curve["authorized_keys"] = s.curve->authorized_keys;
      socket["curve"] = curve;
    }
    return socket;
  };
  json routes = json::array();
  for (const auto& r : config.routes) {
    json route{{"name", r.name},
               {"frontend", socket_json(r.frontend)},
               {"backend", socket_json(r.backend)},
               {"queue",
                {{"max_messages", r.queue.max_messages},
                 {"max_bytes", r.queue.max_bytes},
                 {"max_message_bytes", r.queue.max_message_bytes},
                 {"overflow", to_string(r.queue.overflow)},
                 {"ttl_ms", r.queue.ttl_ms}}},
               {"flush",
                {{"interval_ms", r.flush.interval_ms},
                 {"drain_rate", r.flush.drain_rate},
                 {"max_in_flight", r.flush.max_in_flight}}}};
    if (r.request_reply()) {
      route["replies"] = {{"max_messages", r.replies.max_messages},
                          {"max_bytes", r.replies.max_bytes},
                          {"timeout_ms", r.replies.timeout_ms}};
    }
    if (r.correlation) {
      route["correlation"] = {{"key", r.correlation->key},
                              {"pair_with", r.correlation->pair_with},
                              {"timeout_ms", r.correlation->timeout_ms},
                              {"max_tracked", r.correlation->max_tracked}};
    }
    if (r.spool) {
      route["spool"] = {{"dir", r.spool->dir},
                        {"fsync", to_string(r.spool->fsync)},
                        {"fsync_interval_ms", r.spool->fsync_interval_ms}};
    }
    routes.push_back(route);
  }
  return json{
      {"http", http_json(config)},
      {"log", {{"level", to_string(config.log_level)}, {"format", to_string(config.log_format)}}},
      {"shutdown", {{"drain_timeout_ms", config.drain_timeout_ms}}},
      {"routes", routes}};
}

}  // namespace tidepool::proxy
