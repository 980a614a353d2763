// REQ-style envelopes as a ROUTER sees them: splitting a message into routing frames, the
// empty delimiter and the body, and reading the routing id a reply goes back to. Pure.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include "tidepool/protocol/multipart.h"

namespace tidepool::protocol {

// A REQ-style envelope as a ROUTER sees it: one or more routing frames (the first is the
// ROUTER's own routing id for the peer), an empty delimiter frame, then one or more body
// frames. REP workers drop anything else without a word, so a message that lacks this
// shape is refused at the proxy where it can be counted.
struct Envelope {
  std::size_t delimiter_index = 0;  // index of the empty frame; routing frames precede it

  [[nodiscard]] std::size_t routing_frames() const { return delimiter_index; }
  [[nodiscard]] std::size_t body_begin() const { return delimiter_index + 1; }
};

// Finds the envelope of `message`; nullopt when it has no routing frame, no delimiter, or no
// body after the delimiter.
std::optional<Envelope> split_envelope(const Multipart& message);

// The first frame: the ROUTER routing id the reply must go back to. Empty view for an empty
// message.
std::string_view routing_id(const Multipart& message);

}  // namespace tidepool::protocol
