// The route's presence handling: the frontend's and backends' monitor events read, a backend
// peer's arrival flushed and its loss handled, failed handshakes logged, and a pipeline
// backend's reconnects paced while messages wait for it.
#include "tidepool/proxy/route.h"

#include "route_batch.h"  // private to the route's files

namespace tidepool::proxy {

using route_batch::kReadBatch;

bool Route::read_frontend_monitor(Clock::time_point now) {
  for (int n = 0; n < kReadBatch; ++n) {
    const std::uint64_t disconnects = frontend_monitor_.presence().disconnects();
    const auto event = frontend_monitor_.next();
    if (!event) return true;
    if (frontend_monitor_.presence().disconnects() > disconnects) {
      // libzmq ends a connection that sends a frame over ZMQ_MAXMSGSIZE with nothing but this
      // event, as it ends every other one: no refusal can be told apart, so each is counted
      // and logged (rate-limited) as a disconnect.
      disconnect_log_.warn(now,
                           "frontend peer disconnected (the client left, its connection broke, "
                           "or it sent a frame over twice queue.max_message_bytes)",
                           {{"route", config_.name}, {"endpoint", event->address}});
    }
    if (event->handshake_failed()) {
      log_handshake_failure(classify_handshake_failure(event->id, event->value), false,
                            event->address, now);
    }
  }
  return false;
}

bool Route::read_backend_monitor(std::size_t index, Clock::time_point now) {
  for (int n = 0; n < kReadBatch; ++n) {
    const auto outcome = backends_.next_event(index, now);
    if (!outcome) return true;
    on_backend_event(index, *outcome, now);
  }
  return false;
}

void Route::on_backend_event(std::size_t index, const BackendEvent& outcome,
                             Clock::time_point now) {
  const MonitorEvent& event = outcome.event;
  if (event.handshake_failed()) {
    log_handshake_failure(classify_handshake_failure(event.id, event.value), true, event.address,
                          now);
  }
  if (outcome.lost_peer && config_.request_reply()) requeue_in_flight(index, now);
  if (outcome.change == Presence::Change::kUp) {
    if (!outcome.was_up) {
      log::info("backend up", {{"route", config_.name}, {"queued", std::to_string(queue_.size())}});
    }
    flush(FlushTrigger::kConnect, now);
  } else if (outcome.change == Presence::Change::kDown && !backends_.up()) {
    log::warn("backend down: queueing", {{"route", config_.name}});
    // ZMQ_IMMEDIATE drops a pipe with its connection (libzmq session_base reconnect()):
    // with no peer left, nothing forwarded is held in this process any more.
    if (!config_.request_reply()) queue_.all_delivered();
  }
  if (log::enabled(LogLevel::kDebug)) {
    // Every event, with the route's state after it: a route that stops sending to a worker
    // that is there is explained here.
    const Presence& presence = backends_[index].monitor.presence();
    log::debug("backend monitor event", {{"route", config_.name},
                                         {"backend", backends_[index].name()},
                                         {"event", event.name()},
                                         {"value", std::to_string(event.value)},
                                         {"peers", std::to_string(presence.peers())},
                                         {"connecting", presence.connecting() ? "yes" : "no"},
                                         {"lost_peer", outcome.lost_peer ? "yes" : "no"},
                                         {"in_flight", std::to_string(in_flight())},
                                         {"queued", std::to_string(queue_.size())}});
  }
}

void Route::log_handshake_failure(HandshakeFailure failure, bool backend,
                                  const std::string& address, Clock::time_point now) {
  const bool security = failure == HandshakeFailure::kMechanism ||
                        failure == HandshakeFailure::kCryptographic ||
                        failure == HandshakeFailure::kUnauthorized;
  if (!security) {
    log::debug("peer handshake failed", {{"route", config_.name},
                                         {"side", backend ? "backend" : "frontend"},
                                         {"reason", to_label(failure)},
                                         {"endpoint", address}});
  } else if (backend) {
    handshake_log_.warn(
        now, "backend handshake refused: the CURVE settings or keys do not match",
        {{"route", config_.name}, {"reason", to_label(failure)}, {"endpoint", address}});
  } else if (failure != HandshakeFailure::kUnauthorized) {
    // (Unauthorized keys are logged, with the key, by the ZAP handler.)
    handshake_log_.warn(
        now, "client refused: security handshake failed",
        {{"route", config_.name}, {"reason", to_label(failure)}, {"endpoint", address}});
  }
}

void Route::pace_reconnects(Clock::time_point now) {
  const bool queued = !queue_.empty();
  // Most passes: neither, and no monitor read.
  if (!backends_.pace_due(queued) && !backends_.auditing()) return;
  // Both need every connection libzmq has reported: the monitors first.
  for (std::size_t i = 0; i < backends_.size(); ++i) {
    if (!read_backend_monitor(i, now)) {
      monitor_backlog_ = true;  // more events than a batch: the next pass reads on, paces later
      return;
    }
  }
  for (std::size_t i = 0; i < backends_.size(); ++i) {
    const std::vector<std::uint32_t> closed = backends_.closed_connections(i);
    if (closed.empty()) continue;
    // A close libzmq reported was reported before the fd closed: read on to it.
    if (!read_backend_monitor(i, now)) {
      monitor_backlog_ = true;
      return;
    }
    if (const auto ended = backends_.end_unreported(i, closed, now)) {
      log::info("backend connection ended by a reconnect, unreported by libzmq: counted as lost",
                {{"route", config_.name}, {"backend", backends_[i].name()}});
      on_backend_event(i, *ended, now);
    }
  }
  const ReconnectPace pace = backends_.pace_reconnects(queued);
  if (pace.prompt > 0) {
    log::info("backend absent with messages queued: connecting every 100 ms until it is back",
              {{"route", config_.name}, {"queued", std::to_string(queue_.size())}});
  }
  if (pace.back_off > 0) {
    log::debug("backend absent, nothing queued: connecting on the back-off again",
               {{"route", config_.name}});
  }
  if (!pace.failed.empty()) {
    handshake_log_.warn(
        now, "cannot connect a backend endpoint again",
        {{"route", config_.name}, {"endpoint", pace.failed}, {"error", pace.error}});
  }
}

}  // namespace tidepool::proxy
