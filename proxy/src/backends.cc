// The backend sockets of a route, their presence and round-robin (backends.h).
#include "tidepool/proxy/backends.h"

#include <algorithm>
#include <string_view>

namespace tidepool::proxy {

namespace {

// libzmq's ZMQ_RECONNECT_IVL, which tidepool leaves at its default: the prompt pace, and the
// back-off at or below which libzmq does not back off at all.
constexpr int kReconnectIvlMs = 100;

// The endpoints a pace change reconnects: inproc has no connection to retry.
bool retries(const std::string& endpoint) { return !endpoint.starts_with("inproc://"); }

bool paced(const Backend& backend) {
  return !backend.gated && std::any_of(backend.connects.begin(), backend.connects.end(), retries);
}

// Housekeeping passes (100 ms each while messages wait, longer when idle) during which a
// socket whose endpoints a pace change connected again is checked for connections that ended
// unreported: the disconnect ends one that raced it once its pipe is torn down, within a few
// of the socket's command reads (one each pass, closed_connections()).
constexpr int kAuditPasses = 20;

}  // namespace

Backends::Backends(zmq::context_t& context, const RouteConfig& config, std::int64_t max_frame)
    : request_reply_(config.request_reply()), back_off_ms_(config.backend.reconnect_max_ms) {
  if (request_reply_) {
    // Request-reply reads multipart replies from its backend. When a connecting socket with
    // ZMQ_IMMEDIATE loses its peer, libzmq 4.3 terminates that pipe from the socket's own side
    // as it processes the disconnect's "hiccup" command, which recv() does every 100 calls,
    // also between two frames of one message: the next frame is gone and libzmq aborts
    // (fq.cpp:112 "!_more"; seen under a flapping worker within seconds). Without
    // ZMQ_IMMEDIATE a connecting socket keeps its one pipe across reconnects, so a message
    // started is read whole, and nothing in it is lost with a connection. Such a socket is
    // writable with no peer (what it takes waits for the next connection), so each connect
    // endpoint gets a socket of its own, sent to only while its monitor reports a peer. A bound
    // socket's pipes end from the connection's side, which lets a started message be read to
    // its end: bind endpoints share one socket and keep ZMQ_IMMEDIATE.
    if (!config.backend.bind.empty())
      add(context, config, max_frame, config.backend.bind, {}, false);
    for (const auto& endpoint : config.backend.connect) {
      add(context, config, max_frame, {}, {endpoint}, true);
    }
  } else {
    // A pipeline backend never reads: one socket with ZMQ_IMMEDIATE for all its endpoints.
    add(context, config, max_frame, config.backend.bind, config.backend.connect, false);
  }
}

void Backends::add(zmq::context_t& context, const RouteConfig& config, std::int64_t max_frame,
                   std::vector<std::string> binds, std::vector<std::string> connects, bool gated) {
  Backend backend{.socket = zmq::socket_t(context, zmq_type(config.backend.type)),
                  .monitor = SocketMonitor(context),
                  .binds = std::move(binds),
                  .connects = std::move(connects),
                  .gated = gated,
                  .state = Backend::State::kOpen,
                  .prompt_reconnects = false,
                  .audit_passes = 0,
                  .paused_at = {},
                  .disconnects_seen = 0};
  configure_socket(backend.socket, config.backend, config.name,
                   SocketRole{.backend = true, .immediate = !gated, .max_frame = max_frame});
  if (!request_reply_ && paced(backend)) backend.monitor.track_closes();
  sockets_.push_back(std::move(backend));
}

void Backends::open(const std::string& route, std::vector<std::string>& endpoints) {
  for (std::size_t i = 0; i < sockets_.size(); ++i) {
    sockets_[i].monitor.start(sockets_[i].socket, route, "backend-" + std::to_string(i));
  }
  for (auto& backend : sockets_) {
    attach(backend.socket, backend.binds, backend.connects, route, "backend", endpoints);
  }
}

void Backends::close(std::chrono::milliseconds linger) {
  for (auto& backend : sockets_) {
    backend.socket.set(zmq::sockopt::linger, static_cast<int>(linger.count()));
    backend.monitor.stop(backend.socket);
    backend.socket.close();
  }
}

bool Backends::up() const {
  return std::any_of(sockets_.begin(), sockets_.end(),
                     [](const Backend& b) { return b.monitor.presence().up(); });
}

std::size_t Backends::peers() const {
  std::size_t peers = 0;
  for (const auto& backend : sockets_) peers += backend.monitor.presence().peers();
  return peers;
}

std::size_t Backends::sockets_up() const {
  return static_cast<std::size_t>(
      std::count_if(sockets_.begin(), sockets_.end(),
                    [](const Backend& b) { return b.monitor.presence().up(); }));
}

BackendCounts Backends::counts() const {
  BackendCounts counts;
  for (const auto& backend : sockets_) {
    const Presence& presence = backend.monitor.presence();
    counts.connects += presence.connects();
    counts.disconnects += presence.disconnects();
    for (std::size_t r = 0; r < kHandshakeFailures; ++r) {
      counts.handshake_failures[r] += presence.failed_handshakes()[r];
    }
  }
  counts.peers = peers();
  counts.sockets_up = sockets_up();
  return counts;
}

std::optional<BackendEvent> Backends::next_event(std::size_t index, Clock::time_point now) {
  Backend& backend = sockets_[index];
  BackendEvent result;
  result.was_up = up();
  auto event = backend.monitor.next(&result.change);
  if (!event) return std::nullopt;
  result.event = std::move(*event);
  note_losses(backend, result, now);
  return result;
}

bool Backends::auditing() const {
  return std::any_of(sockets_.begin(), sockets_.end(),
                     [](const Backend& b) { return b.audit_passes > 0; });
}

std::vector<std::uint32_t> Backends::closed_connections(std::size_t index) {
  Backend& backend = sockets_[index];
  if (backend.audit_passes == 0) return {};
  --backend.audit_passes;
  // A connection the disconnect ended closes once this socket has acknowledged its pipe's
  // end, which it does as it reads its commands: the loop leaves an idle PUSH socket out of
  // zmq_poll, so read them here.
  (void)backend.socket.get(zmq::sockopt::events);
  return backend.monitor.closed_live();
}

std::optional<BackendEvent> Backends::end_unreported(std::size_t index,
                                                     const std::vector<std::uint32_t>& closed,
                                                     Clock::time_point now) {
  Backend& backend = sockets_[index];
  BackendEvent result;
  result.was_up = up();
  result.change = backend.monitor.end_unreported(closed);
  note_losses(backend, result, now);
  if (!result.lost_peer) return std::nullopt;
  return result;
}

void Backends::note_losses(Backend& backend, BackendEvent& result, Clock::time_point now) {
  const std::uint64_t disconnects = backend.monitor.presence().disconnects();
  result.lost_peer = disconnects > backend.disconnects_seen;
  backend.disconnects_seen = disconnects;
  // A gated socket keeps its pipe across connections: what waits there goes to the next one
  // (and the copy the route sends again makes it a duplicate, ignored, not a loss).
  if (result.lost_peer && request_reply_ && !backend.gated) {
    backend.state = Backend::State::kPausedAfterLoss;
    backend.paused_at = now;
  }
}

void Backends::end_pauses(Clock::time_point before) {
  for (auto& backend : sockets_) {
    if (backend.state == Backend::State::kPausedAfterLoss && backend.paused_at < before) {
      backend.state = Backend::State::kOpen;
    }
  }
}

bool Backends::any_paused() const {
  return std::any_of(sockets_.begin(), sockets_.end(),
                     [](const Backend& b) { return b.state == Backend::State::kPausedAfterLoss; });
}

bool Backends::pace_due(bool queued) const {
  if (request_reply_ || back_off_ms_ <= kReconnectIvlMs) return false;
  return std::any_of(sockets_.begin(), sockets_.end(),
                     [&](const Backend& b) { return b.prompt_reconnects != queued && paced(b); });
}

ReconnectPace Backends::pace_reconnects(bool queued) {
  ReconnectPace pace;
  if (!pace_due(queued)) return pace;
  for (auto& backend : sockets_) {
    const Presence& presence = backend.monitor.presence();
    if (backend.prompt_reconnects == queued || !paced(backend) || presence.up() ||
        presence.connecting()) {
      continue;
    }
    backend.socket.set(zmq::sockopt::reconnect_ivl_max, queued ? 0 : back_off_ms_);
    // A disconnect ends every connection made from that endpoint string, so an endpoint listed
    // twice is disconnected once and connected twice, as attach() did.
    std::vector<std::string_view> disconnected;
    for (const auto& endpoint : backend.connects) {
      if (!retries(endpoint) ||
          std::find(disconnected.begin(), disconnected.end(), endpoint) != disconnected.end()) {
        continue;
      }
      disconnected.emplace_back(endpoint);
      try {
        backend.socket.disconnect(endpoint);
      } catch (const zmq::error_t&) {
        // ETERM: the context is closing (see below).
      }
    }
    for (const auto& endpoint : backend.connects) {
      if (!retries(endpoint)) continue;
      try {
        backend.socket.connect(endpoint);
      } catch (const zmq::error_t& e) {
        // The same string connected at startup, libzmq 4.3 checks only its syntax here (names
        // resolve at each attempt) and aborts when out of memory: only ETERM gets here, as the
        // context closes at exit.
        pace.failed = endpoint;
        pace.error = e.what();
      }
    }
    backend.prompt_reconnects = queued;
    backend.audit_passes = kAuditPasses;
    ++(queued ? pace.prompt : pace.back_off);
  }
  return pace;
}

}  // namespace tidepool::proxy
