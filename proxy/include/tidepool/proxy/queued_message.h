// QueuedMessage, a message as a route's queue holds it, and the Clock the queue runs on.
#pragma once

#include <chrono>
#include <cstdint>
#include <utility>

#include "tidepool/protocol/multipart.h"

namespace tidepool::proxy {

using Clock = std::chrono::steady_clock;
// For metrics and status: durations are published in seconds.
inline double to_seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

struct QueuedMessage {
  // Constructors, not aggregate initialisation: GCC 12 zeroes the whole object (330 bytes of
  // rep stos, measured as half of MessageQueue::offer's samples) before an aggregate's members.
  QueuedMessage() noexcept {}  // NOLINT(modernize-use-equals-default): see above
  QueuedMessage(protocol::Multipart&& message_in, Clock::time_point enqueued_in,
                std::uint64_t spool_sequence_in = 0, bool replayed_in = false) noexcept
      : message(std::move(message_in)),
        enqueued(enqueued_in),
        spool_sequence(spool_sequence_in),
        replayed(replayed_in) {}

  protocol::Multipart message;
  Clock::time_point enqueued;
  // Its record's sequence in the route's spool; 0 when it has none (no spool).
  std::uint64_t spool_sequence = 0;
  // Read back from the spool at start: accepted by an earlier process, so a routing id that
  // libzmq assigned (it names a connection to that process) names no client of this one.
  bool replayed = false;
};

}  // namespace tidepool::proxy
