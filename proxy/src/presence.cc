#include "tidepool/proxy/presence.h"

#include <algorithm>

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
    case ZMQ_EVENT_DISCONNECTED:
      // HANDSHAKE_FAILED_* (when libzmq reports one at all: a refused ZMTP 1.0 peer gets
      // none) is always followed by DISCONNECTED for the fd, which is what counts here.
      if (live_.erase(value) > 0) {
        ++disconnects_;
      } else if (auto it = std::find(pending_.begin(), pending_.end(), value);
                 it != pending_.end()) {
        pending_.erase(it);
        ++failed_handshakes_;
      }
      break;
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
