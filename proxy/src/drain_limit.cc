// The drain-rate token bucket and the max_in_flight bound (drain_limit.h).
#include "tidepool/proxy/drain_limit.h"

#include <algorithm>

namespace tidepool::proxy {

bool DrainLimit::allows(Clock::time_point now, std::size_t in_flight) {
  if (!under_in_flight(in_flight)) return false;
  if (rate_ <= 0) return true;
  refill(now);
  return tokens_ >= 1;
}

void DrainLimit::refill(Clock::time_point now) {
  // A tenth of a second of burst (at least one message) keeps the rate smooth.
  const double burst = std::max(1.0, rate_ / 10);
  tokens_ = std::min(burst, tokens_ + to_seconds(now - updated_) * rate_);
  updated_ = now;
}

Clock::time_point DrainLimit::next_token(Clock::time_point now) const {
  if (rate_ <= 0 || tokens_ >= 1) return Clock::time_point::max();
  const auto wait = std::chrono::duration<double>((1 - tokens_) / rate_);
  return now + std::chrono::duration_cast<Clock::duration>(wait);
}

}  // namespace tidepool::proxy
