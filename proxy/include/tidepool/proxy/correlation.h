// Requests of one route matched with the results of another by a payload key (DESIGN §5): the
// link both routes share. The requests route owns it and notes each request it forwards; the
// results route notes each result it reads; the time between them feeds the requests route's
// request_duration histogram.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string_view>

#include "tidepool/proxy/config.h"
#include "tidepool/proxy/in_flight.h"
#include "tidepool/proxy/metrics.h"
#include "tidepool/proxy/queue.h"

namespace tidepool::proxy {

class Correlation {
 public:
  // `durations` is the requests route's request_duration histogram: it must outlive this.
  Correlation(const CorrelationConfig& config, LocalHistogram& durations)
      : config_(config), in_flight_(config.max_tracked), durations_(durations) {}

  // A request with `body` was forwarded. Returns true when the oldest tracked request had to be
  // forgotten to stay within max_tracked (counted as a timeout). A body without the key is
  // not tracked.
  bool note_request(std::string_view body, Clock::time_point now);
  // A result with `body` arrived. Returns false when no tracked request has its key (an
  // uncorrelated result); otherwise its request's duration is observed.
  bool note_result(std::string_view body, Clock::time_point now);
  // Forgets requests older than timeout_ms; returns how many (timeouts).
  std::size_t expire(Clock::time_point now);

  [[nodiscard]] std::size_t in_flight() const { return in_flight_.size(); }
  [[nodiscard]] bool empty() const { return in_flight_.empty(); }
  [[nodiscard]] const CorrelationConfig& config() const { return config_; }

 private:
  CorrelationConfig config_;
  InFlight in_flight_;
  LocalHistogram& durations_;
};

}  // namespace tidepool::proxy
