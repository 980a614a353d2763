// What a route reports: its metrics (Route::publish) and its /status entry (Route::status),
// both read from the parts' state on the event-loop thread.
#include <nlohmann/json.hpp>

#include "tidepool/proxy/route.h"

namespace tidepool::proxy {
void Route::publish(Clock::time_point now) {
  RouteGauges gauges;
  const MessageQueue& queue = queue_.queue();
  gauges.queue_messages = static_cast<double>(queue.size());
  gauges.queue_bytes = static_cast<double>(queue.bytes());
  gauges.queue_capacity_messages = static_cast<double>(queue.max_messages());
  gauges.queue_capacity_bytes = static_cast<double>(queue.max_bytes());
  if (const auto oldest = queue.oldest())
    gauges.queue_oldest_age_seconds = to_seconds(now - *oldest);
  const BackendCounts backend = backends_.counts();
  counters_.backend_connects = backend.connects;
  counters_.backend_disconnects = backend.disconnects;
  counters_.backend_handshake_failures = backend.handshake_failures;
  counters_.frontend_disconnects = frontend_monitor_.presence().disconnects();
  counters_.frontend_handshake_failures = frontend_monitor_.presence().failed_handshakes();
  gauges.backend_up = backend.sockets_up > 0 ? 1 : 0;
  gauges.backend_peers = static_cast<double>(backend.peers);
  gauges.frontend_peers = static_cast<double>(frontend_monitor_.presence().peers());
  gauges.in_flight = static_cast<double>(in_flight());
  if (const Spool* spool = queue_.spool()) {
    const SpoolStats& stats = spool->stats();
    gauges.spool_bytes = static_cast<double>(stats.bytes_on_disk);
    counters_.spool_replayed = stats.replayed;
    counters_.spool_corrupt_records = stats.corrupt_records;
  }
  metrics_.publish(counters_, gauges);
}

nlohmann::json Route::status(Clock::time_point now) const {
  nlohmann::json dropped = nlohmann::json::object();
  for (std::size_t i = 0; i < kDropReasons; ++i) {
    dropped[to_label(static_cast<DropReason>(i))] = counters_.dropped[i];
  }
  nlohmann::json flushes = nlohmann::json::object();
  for (std::size_t i = 0; i < kFlushTriggers; ++i) {
    flushes[to_label(static_cast<FlushTrigger>(i))] = counters_.flushes[i];
  }
  const MessageQueue& queue = queue_.queue();
  const auto oldest = queue.oldest();
  const std::size_t backend_peers = backends_.peers();
  nlohmann::json spool = nullptr;
  if (const Spool* on_disk = queue_.spool()) {
    const SpoolStats& stats = on_disk->stats();
    spool = {{"path", on_disk->path()},
             {"fsync", to_string(config_.spool->fsync)},
             {"bytes", stats.bytes_on_disk},
             {"live_messages", stats.live_messages},
             {"live_bytes", stats.live_bytes},
             {"replayed", stats.replayed},
             {"corrupt_records", stats.corrupt_records},
             {"write_errors", stats.write_errors},
             {"fsyncs", stats.fsyncs},
             {"last_error", on_disk->last_error()}};
  }
  // Why the frontend is not read now (clients then wait in libzmq's pipes), or null.
  nlohmann::json paused = nullptr;
  if (const char* why = to_label(frontend_pause(now))) paused = why;
  return {
      {"name", config_.name},
      {"mode", config_.request_reply() ? "request-reply" : "pipeline"},
      {"frontend",
       {{"type", to_string(config_.frontend.type)},
        {"endpoints", frontend_endpoints_},
        {"peers", frontend_monitor_.presence().peers()},
        {"paused", paused}}},
      {"backend",
       {{"type", to_string(config_.backend.type)},
        {"endpoints", backend_endpoints_},
        {"peers", backend_peers},
        {"up", backends_.up()}}},
      {"queue",
       {{"messages", queue.size()},
        {"bytes", queue.bytes()},
        {"capacity_messages", queue.max_messages()},
        {"capacity_bytes", queue.max_bytes()},
        {"oldest_age_seconds", oldest ? to_seconds(now - *oldest) : 0.0},
        {"overflow", to_string(config_.queue.overflow)}}},
      {"in_flight", in_flight()},
      {"reply_backlog", replies() != nullptr ? replies()->messages() : 0},
      {"reply_backlog_clients", replies() != nullptr ? replies()->clients() : 0},
      {"received", counters_.received_messages},
      {"forwarded", counters_.forwarded_messages},
      {"replies", counters_.replies},
      {"dropped", dropped},
      {"flushes", flushes},
      {"spool", spool},
  };
}

}  // namespace tidepool::proxy
