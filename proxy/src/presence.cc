#include "tidepool/proxy/presence.h"

#include <algorithm>
#include <utility>

#include <zmq.h>

namespace tidepool::proxy {

Presence::Change Presence::on_event(std::uint16_t event, std::uint32_t value) {
  const bool was_up = up();
  switch (event) {
    case ZMQ_EVENT_CONNECTED:
    case ZMQ_EVENT_ACCEPTED:
      pending_.push_back(value);
      break;
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
      disconnect_is_failed_handshake_ = true;
      break;
    case ZMQ_EVENT_DISCONNECTED: {
      const bool failed = std::exchange(disconnect_is_failed_handshake_, false);
      const auto pending = std::find(pending_.begin(), pending_.end(), value);
      if (pending != pending_.end()) {
        // Closed before its handshake (a refused ZMTP 1.0 peer gets no HANDSHAKE_FAILED).
        pending_.erase(pending);
        ++failed_handshakes_;
      } else if (live_.erase(value) > 0) {
        if (failed && !pending_.empty()) {
          // An earlier handshake was credited to this connection, which never completed
          // its own: the one that did complete is still pending. Correct the record.
          live_.insert(pending_.front());
          pending_.pop_front();
          ++failed_handshakes_;
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

}  // namespace tidepool::proxy
