// How fast a route may forward from its queue: the flush.drain_rate token bucket and the
// flush.max_in_flight bound on requests awaiting their answer.
#pragma once

#include <chrono>
#include <cstddef>

#include "tidepool/proxy/queue.h"

namespace tidepool::proxy {

class DrainLimit {
 public:
  // rate: messages per second, 0 = unlimited; max_in_flight: 0 = unlimited.
  DrainLimit(double rate, std::size_t max_in_flight) : rate_(rate), max_in_flight_(max_in_flight) {}

  // The bucket starts with one token at `now`.
  void start(Clock::time_point now) {
    tokens_ = 1;
    updated_ = now;
  }
  // Whether one more message may go now, with `in_flight` awaiting their answer.
  [[nodiscard]] bool allows(Clock::time_point now, std::size_t in_flight);
  [[nodiscard]] bool under_in_flight(std::size_t in_flight) const {
    return max_in_flight_ == 0 || in_flight < max_in_flight_;
  }
  // Whether a token is there, as of the last refill (for poll(): POLLOUT without a token would
  // spin, the timer wakes the loop instead).
  [[nodiscard]] bool has_token() const { return rate_ <= 0 || tokens_ >= 1; }
  // A message went.
  void took_one() {
    if (rate_ > 0) tokens_ -= 1;
  }
  // When a missing token is due; never (time_point::max()) when one is there or no rate is set:
  // then nothing needs a timer.
  [[nodiscard]] Clock::time_point next_token(Clock::time_point now) const;
  [[nodiscard]] bool rate_limited() const { return rate_ > 0; }

 private:
  void refill(Clock::time_point now);

  double rate_;
  std::size_t max_in_flight_;
  double tokens_ = 1;
  Clock::time_point updated_;
};

}  // namespace tidepool::proxy
