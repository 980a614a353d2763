// The requests↔results link of two correlated routes (correlation.h).
#include "tidepool/proxy/correlation.h"

#include <string>

#include "tidepool/protocol/field.h"

namespace tidepool::proxy {

bool Correlation::note_request(std::string_view body, Clock::time_point now) {
  const auto key = protocol::extract_field(body, config_.key);
  return key && in_flight_.add(*key, now);
}

bool Correlation::note_result(std::string_view body, Clock::time_point now) {
  const auto key = protocol::extract_field(body, config_.key);
  if (!key) return false;
  const auto sent = in_flight_.complete(std::string(*key));
  if (!sent) return false;
  durations_.observe(to_seconds(now - *sent));
  return true;
}

std::size_t Correlation::expire(Clock::time_point now) {
  return in_flight_.expire(now - std::chrono::milliseconds(config_.timeout_ms));
}

}  // namespace tidepool::proxy
