// The backend side of a route: its sockets with their monitors and presence, the pause after a
// lost peer, round-robin over the sockets that can take a message now, and the presence
// counts the route publishes. It never logs or counts drops: it reports what happened.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "tidepool/proxy/config.h"
#include "tidepool/proxy/presence.h"
#include "tidepool/proxy/queue.h"
#include "tidepool/proxy/sockets.h"

namespace tidepool::proxy {

// One backend socket with its own presence. Request-reply gives each connect endpoint a
// socket of its own without ZMQ_IMMEDIATE (libzmq 4.3 can abort reading replies on a
// connecting ZMQ_IMMEDIATE socket, see backends.cc) and forwards to it only while its peer is
// up; its bind endpoints share one socket. A pipeline backend is one socket for all.
struct Backend {
  enum class State : std::uint8_t {
    kOpen,
    // A bound request-reply socket that just lost a peer takes nothing for a while
    // (Backends::end_pauses()): libzmq detaches the dead pipe a few commands after it reports
    // the loss, and a request sent meanwhile could go into it and wait for a reply that never
    // comes.
    kPausedAfterLoss,
  };

  zmq::socket_t socket;
  SocketMonitor monitor;
  std::vector<std::string> binds;
  std::vector<std::string> connects;
  // Writable without a peer (no ZMQ_IMMEDIATE): it takes messages only while a peer is up,
  // and only its monitor tells when one is.
  bool gated = false;
  State state = State::kOpen;
  // Its connect endpoints retry every ZMQ_RECONNECT_IVL, not on the back-off (pace_reconnects).
  bool prompt_reconnects = false;
  // Housekeeping passes left to look for connections its pace change ended unreported.
  int audit_passes = 0;
  Clock::time_point paused_at;         // when it entered kPausedAfterLoss
  std::uint64_t disconnects_seen = 0;  // losses already reported by Backends::next_event()

  [[nodiscard]] bool can_take() const {
    return state == State::kOpen && (!gated || monitor.presence().up());
  }
  // For logs: its connect endpoint, or "bound".
  [[nodiscard]] std::string name() const { return connects.empty() ? "bound" : connects.front(); }
};

// What one monitor event did to a backend socket.
struct BackendEvent {
  MonitorEvent event;
  Presence::Change change = Presence::Change::kNone;
  bool was_up = false;     // whether any backend socket had a peer before it
  bool lost_peer = false;  // a peer of this socket disconnected (what it held is lost with it)
};

// What Backends::pace_reconnects() did.
struct ReconnectPace {
  std::size_t prompt = 0;    // sockets whose endpoints now retry every 100 ms
  std::size_t back_off = 0;  // sockets back on the back-off
  std::string failed;        // an endpoint that could not be connected again ("" if none)...
  std::string error;         // ...and why
};

// Presence totals over every backend socket, for the metrics.
struct BackendCounts {
  std::uint64_t connects = 0;
  std::uint64_t disconnects = 0;
  std::array<std::uint64_t, kHandshakeFailures> handshake_failures{};
  std::size_t peers = 0;
  std::size_t sockets_up = 0;  // sockets with at least one peer
};

class Backends {
 public:
  // Creates and configures the sockets for `config` (nothing is bound or connected yet).
  Backends(zmq::context_t& context, const RouteConfig& config, std::int64_t max_frame);

  // Starts the monitors, then binds and connects; appends the endpoints to `endpoints`.
  // Throws StartupError.
  void open(const std::string& route, std::vector<std::string>& endpoints);
  void close(std::chrono::milliseconds linger);

  [[nodiscard]] std::size_t size() const { return sockets_.size(); }
  Backend& operator[](std::size_t index) { return sockets_[index]; }
  const Backend& operator[](std::size_t index) const { return sockets_[index]; }

  [[nodiscard]] bool up() const;  // some socket has a peer
  // On the per-message path: cheaper than counts().
  [[nodiscard]] std::size_t peers() const;
  [[nodiscard]] std::size_t sockets_up() const;
  [[nodiscard]] BackendCounts counts() const;

  // Reads the next monitor event of socket `index`; nullopt when none is waiting. A lost peer
  // pauses a bound request-reply socket (Backend::State) from `now`.
  std::optional<BackendEvent> next_event(std::size_t index, Clock::time_point now);
  // Sockets paused before `before` take messages again.
  void end_pauses(Clock::time_point before);
  [[nodiscard]] bool any_paused() const;

  // How soon the connect endpoints of a pipeline socket with no peer retry. While nothing is
  // queued for them they back off (reconnect_max_ms, cheap with many absent workers); while
  // `queued`, every ZMQ_RECONNECT_IVL (100 ms), so a worker that returns to a backlog gets it
  // at once, not up to reconnect_max_ms later, and only routes with work pay for the attempts.
  // libzmq reads the back-off when an endpoint is connected, so a change of pace disconnects
  // and connects its endpoints again. That is done only where it can lose nothing and corrupt
  // no count: a socket with ZMQ_IMMEDIATE (no pipe without a connection, and none left whose
  // messages are not already lost with it), no peer and no TCP connection reported (the caller
  // has read the monitor to its end: libzmq reports no DISCONNECTED for a connection ended by
  // a disconnect). inproc endpoints are left alone (nothing to retry), and so is a back-off of
  // at most 100 ms (libzmq backs off only above ZMQ_RECONNECT_IVL).
  // A connection that completes in the microseconds between the monitor read and the
  // disconnect is closed unreported. If its handshake had not finished, the next connection
  // reuses its file descriptor and Presence drops the record (presence.h). If it had, its close
  // waits for its pipe and the next connection gets another fd: closed_connections() finds it.
  ReconnectPace pace_reconnects(bool queued);
  // Whether some socket's pace differs from what `queued` asks for (cheap: no monitor read).
  [[nodiscard]] bool pace_due(bool queued) const;
  // For some housekeeping passes after its pace changed, socket `index` is checked for live
  // connections whose fd closed unreported: closed_connections() lists the candidates (empty
  // when it is not checked); the caller reads the monitor to its end, then end_unreported()
  // ends those still live (SocketMonitor::closed_live()). It returns the loss, like
  // next_event() with no monitor event, or nullopt. auditing(): some socket is checked.
  std::vector<std::uint32_t> closed_connections(std::size_t index);
  std::optional<BackendEvent> end_unreported(std::size_t index,
                                             const std::vector<std::uint32_t>& closed,
                                             Clock::time_point now);
  [[nodiscard]] bool auditing() const;

  // Round-robin: offers the message to each socket that can take one, starting after the
  // socket that took the last, until `send(index)` returns true for one, whose index is
  // returned. `eligible(index)` adds the caller's conditions (a share of max_in_flight).
  template <typename Eligible, typename Send>
  std::optional<std::size_t> send_round_robin(const Eligible& eligible, const Send& send) {
    // Indices wrap by compare, not `%`: a division per message shows in the profile.
    const std::size_t count = sockets_.size();
    std::size_t index = next_;
    for (std::size_t tried = 0; tried < count;
         ++tried, index = index + 1 == count ? 0 : index + 1) {
      if (!sockets_[index].can_take() || !eligible(index)) continue;
      if (!send(index)) continue;
      next_ = index + 1 == count ? 0 : index + 1;
      return index;
    }
    return std::nullopt;
  }

 private:
  void add(zmq::context_t& context, const RouteConfig& config, std::int64_t max_frame,
           std::vector<std::string> binds, std::vector<std::string> connects, bool gated);

  // What a lost peer does to the socket (next_event(), end_unreported()).
  void note_losses(Backend& backend, BackendEvent& result, Clock::time_point now);

  bool request_reply_;
  int back_off_ms_;  // backend.reconnect_max_ms
  std::vector<Backend> sockets_;
  std::size_t next_ = 0;  // where round-robin starts
};

}  // namespace tidepool::proxy
