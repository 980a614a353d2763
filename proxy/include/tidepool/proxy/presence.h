#pragma once

#include <cstdint>
#include <deque>
#include <unordered_set>

namespace tidepool::proxy {

// Live-peer bookkeeping for one socket, fed with its monitor events (zmq_socket_monitor).
//
// A peer counts once its ZMTP handshake succeeded and stops counting at DISCONNECTED for its
// file descriptor. libzmq 4.3 reports ACCEPTED/CONNECTED and DISCONNECTED with the fd but
// HANDSHAKE_SUCCEEDED/FAILED without it, so a success is credited to the oldest pending
// connection. If that was the wrong one (a silent connection older than the peer that
// completed), its close gives it away: libzmq reports HANDSHAKE_FAILED right before its
// DISCONNECTED, and the credit moves to a connection still pending. Counts are therefore
// exact once every pending connection has resolved.
class Presence {
 public:
  enum class Change { kNone, kUp, kDown };

  // `event` is a ZMQ_EVENT_* value, `value` the event's value (an fd for the events that
  // carry one). Returns kUp when the socket went from no live peer to one, kDown for the
  // reverse.
  Change on_event(std::uint16_t event, std::uint32_t value);

  [[nodiscard]] bool up() const { return !live_.empty(); }
  [[nodiscard]] std::size_t peers() const { return live_.size(); }
  [[nodiscard]] std::uint64_t connects() const { return connects_; }
  [[nodiscard]] std::uint64_t disconnects() const { return disconnects_; }
  // Connections closed before their handshake completed: garbage, a half handshake, an
  // incompatible socket type, refused security.
  [[nodiscard]] std::uint64_t failed_handshakes() const { return failed_handshakes_; }

 private:
  std::deque<std::uint32_t> pending_;  // TCP up, handshake not resolved yet (oldest first)
  std::unordered_set<std::uint32_t> live_;
  std::uint64_t connects_ = 0;
  std::uint64_t disconnects_ = 0;
  std::uint64_t failed_handshakes_ = 0;
  bool disconnect_is_failed_handshake_ = false;  // the next DISCONNECTED never handshook
};

}  // namespace tidepool::proxy
