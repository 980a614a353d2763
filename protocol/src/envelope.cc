// Envelope splitting for request-reply messages (see envelope.h).
#include "tidepool/protocol/envelope.h"

namespace tidepool::protocol {

std::optional<Envelope> split_envelope(const Multipart& message) {
  // The routing id itself is never empty (libzmq generates 5-byte ids; peers may set their
  // own, non-empty), so the search starts at frame 1.
  for (std::size_t i = 1; i < message.size(); ++i) {
    if (message[i].size() == 0) {
      if (i + 1 >= message.size()) return std::nullopt;
      return Envelope{i};
    }
  }
  return std::nullopt;
}

std::string_view routing_id(const Multipart& message) {
  return message.empty() ? std::string_view{} : message.frame_view(0);
}

}  // namespace tidepool::protocol
