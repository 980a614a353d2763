// Presence: live-peer bookkeeping for one socket from its monitor events (peers, connects,
// disconnects, failed handshakes by reason) and the HandshakeFailure labels.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <unordered_set>

namespace tidepool::proxy {

// Why a connection ended before its ZMTP handshake completed.
enum class HandshakeFailure : std::uint8_t {
  kUnauthorized,   // the ZAP handler refused it: a CURVE client key not on the allow-list
  kMechanism,      // security mechanisms differ: a NULL peer on a CURVE socket, or the reverse
  kCryptographic,  // CURVE boxes did not open: the peer has the wrong server key
  kProtocol,       // another ZMTP error: an incompatible socket type, a malformed command
  kIncomplete,     // closed without one: garbage bytes, unversioned ZMTP 1.0, a half handshake
};
inline constexpr std::size_t kHandshakeFailures = 5;
const char* to_label(HandshakeFailure failure);
// The failure a HANDSHAKE_FAILED_* monitor event (with its value) reports.
HandshakeFailure classify_handshake_failure(std::uint16_t event, std::uint32_t value);

// Live-peer bookkeeping for one socket, fed with its monitor events (zmq_socket_monitor).
//
// A peer counts once its ZMTP handshake succeeded and stops counting at DISCONNECTED for its
// file descriptor. libzmq 4.3 reports ACCEPTED/CONNECTED and DISCONNECTED with the fd but
// HANDSHAKE_SUCCEEDED/FAILED without it, so a success is credited to the oldest pending
// connection. If that was the wrong one (a silent connection older than the peer that
// completed), its close gives it away: libzmq reports HANDSHAKE_FAILED right before its
// DISCONNECTED, and the credit moves to a connection still pending. Counts are therefore
// exact once every pending connection has resolved. libzmq reports no DISCONNECTED for a
// connection its own socket ended (zmq_disconnect): such a record ends when the next
// connection reuses its file descriptor, or when end_closed() finds it closed (counted as a
// disconnect if it was live).
class Presence {
 public:
  enum class Change { kNone, kUp, kDown };

  // `event` is a ZMQ_EVENT_* value, `value` the event's value (an fd for the events that
  // carry one). Returns kUp when the socket went from no live peer to one, kDown for the
  // reverse.
  Change on_event(std::uint16_t event, std::uint32_t value);
  // Ends the record of each live connection whose fd `closed(fd)` says is no longer the
  // connection reported on it, as a disconnect. Nothing while a connection is pending: a
  // handshake may have been credited to a stale record in its place (see above), so which
  // record is the stale one is not known until the pending ones resolve.
  Change end_closed(const std::function<bool(std::uint32_t fd)>& closed);

  [[nodiscard]] bool up() const { return !live_.empty(); }
  [[nodiscard]] std::size_t peers() const { return live_.size(); }
  [[nodiscard]] const std::unordered_set<std::uint32_t>& live() const { return live_; }
  // A TCP connection is up whose handshake has not resolved yet.
  [[nodiscard]] bool connecting() const { return !pending_.empty(); }
  [[nodiscard]] std::uint64_t connects() const { return connects_; }
  [[nodiscard]] std::uint64_t disconnects() const { return disconnects_; }
  // Connections closed before their handshake completed, by reason.
  [[nodiscard]] const std::array<std::uint64_t, kHandshakeFailures>& failed_handshakes() const {
    return failed_handshakes_;
  }
  [[nodiscard]] std::uint64_t failed_handshakes_total() const;

 private:
  std::deque<std::uint32_t> pending_;  // TCP up, handshake not resolved yet (oldest first)
  std::unordered_set<std::uint32_t> live_;
  std::uint64_t connects_ = 0;
  std::uint64_t disconnects_ = 0;
  std::array<std::uint64_t, kHandshakeFailures> failed_handshakes_{};
  // Set by HANDSHAKE_FAILED_*: the next DISCONNECTED is that connection, which never
  // handshook, for this reason.
  std::optional<HandshakeFailure> disconnect_failure_;
};

}  // namespace tidepool::proxy
