// Presence (see presence.h): classifying handshake failures and following one socket's
// monitor events.
#include "tidepool/proxy/presence.h"

#include <algorithm>
#include <utility>

#include <zmq.h>

namespace tidepool::proxy {

const char* to_label(HandshakeFailure failure) {
  switch (failure) {
    case HandshakeFailure::kUnauthorized:
      return "unauthorized";
    case HandshakeFailure::kMechanism:
      return "mechanism";
    case HandshakeFailure::kCryptographic:
      return "cryptographic";
    case HandshakeFailure::kProtocol:
      return "protocol";
    case HandshakeFailure::kIncomplete:
      return "incomplete";
  }
  return "?";
}

HandshakeFailure classify_handshake_failure(std::uint16_t event, std::uint32_t value) {
  if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) return HandshakeFailure::kUnauthorized;
  if (event != ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) return HandshakeFailure::kIncomplete;
  switch (value) {
    case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
      return HandshakeFailure::kMechanism;
    case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
    case ZMQ_PROTOCOL_ERROR_ZMTP_KEY_EXCHANGE:
      return HandshakeFailure::kCryptographic;
    default:
      return HandshakeFailure::kProtocol;
  }
}

std::uint64_t Presence::failed_handshakes_total() const {
  std::uint64_t total = 0;
  for (const auto count : failed_handshakes_) total += count;
  return total;
}

Presence::Change Presence::on_event(std::uint16_t event, std::uint32_t value) {
  const bool was_up = up();
  switch (event) {
    case ZMQ_EVENT_CONNECTED:
    case ZMQ_EVENT_ACCEPTED: {
      // A file descriptor is reused only once closed: a connection still on record under this
      // one ended unreported (a disconnect() racing its connect: see Backends::pace_reconnects).
      const auto stale = std::find(pending_.begin(), pending_.end(), value);
      if (stale != pending_.end()) pending_.erase(stale);
      if (live_.erase(value) > 0) ++disconnects_;
      pending_.push_back(value);
      break;
    }
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
      if (!pending_.empty()) {
        live_.insert(pending_.front());
        pending_.pop_front();
        ++connects_;
      }
      break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
      // libzmq emits this and then, at once, DISCONNECTED for the same connection.
      disconnect_failure_ = classify_handshake_failure(event, value);
      break;
    case ZMQ_EVENT_DISCONNECTED: {
      const auto failure = std::exchange(disconnect_failure_, std::nullopt);
      const auto reason = static_cast<std::size_t>(failure.value_or(HandshakeFailure::kIncomplete));
      const auto pending = std::find(pending_.begin(), pending_.end(), value);
      if (pending != pending_.end()) {
        // Closed before its handshake (a refused ZMTP 1.0 peer gets no HANDSHAKE_FAILED).
        pending_.erase(pending);
        ++failed_handshakes_[reason];
      } else if (live_.erase(value) > 0) {
        if (failure && !pending_.empty()) {
          // An earlier handshake was credited to this connection, which never completed
          // its own: the one that did complete is still pending. Correct the record.
          live_.insert(pending_.front());
          pending_.pop_front();
          ++failed_handshakes_[reason];
        } else {
          ++disconnects_;
        }
      }
      break;
    }
    case ZMQ_EVENT_MONITOR_STOPPED:
      disconnects_ += live_.size();
      live_.clear();
      pending_.clear();
      break;
    default:
      break;
  }
  if (!was_up && up()) return Change::kUp;
  if (was_up && !up()) return Change::kDown;
  return Change::kNone;
}

Presence::Change Presence::end_closed(const std::function<bool(std::uint32_t fd)>& closed) {
  if (!pending_.empty()) return Change::kNone;
  const bool was_up = up();
  disconnects_ += std::erase_if(live_, closed);
  return was_up && !up() ? Change::kDown : Change::kNone;
}

}  // namespace tidepool::proxy
