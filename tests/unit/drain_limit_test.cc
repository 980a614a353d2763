// DrainLimit: the drain-rate token bucket and the max_in_flight bound, grouped by property.
#include "tidepool/proxy/drain_limit.h"

#include <doctest/doctest.h>

#include <chrono>

using tidepool::proxy::Clock;
using tidepool::proxy::DrainLimit;
using namespace std::chrono_literals;

TEST_CASE("unlimited: every message may go and no timer is asked for") {
  DrainLimit limit(0, 0);
  const auto now = Clock::now();
  limit.start(now);
  for (int i = 0; i < 1000; ++i) {
    REQUIRE(limit.allows(now, 1000000));
    limit.took_one();
  }
  CHECK(limit.has_token());
  CHECK_FALSE(limit.rate_limited());
  CHECK(limit.next_token(now) == Clock::time_point::max());
}

TEST_CASE("max_in_flight: at the bound nothing more goes, below it again it does") {
  DrainLimit limit(0, 3);
  const auto now = Clock::now();
  limit.start(now);
  CHECK(limit.allows(now, 2));
  CHECK_FALSE(limit.allows(now, 3));
  CHECK_FALSE(limit.under_in_flight(4));
  CHECK(limit.under_in_flight(0));
}

TEST_CASE("drain_rate: the rate holds over time and the burst is a tenth of a second") {
  DrainLimit limit(100, 0);  // 100/s: a burst of 10
  auto now = Clock::now();
  limit.start(now);
  // One token at start.
  REQUIRE(limit.allows(now, 0));
  limit.took_one();
  CHECK_FALSE(limit.allows(now, 0));
  CHECK_FALSE(limit.has_token());
  // The next token is due in 10 ms.
  const auto due = limit.next_token(now);
  CHECK(due > now);
  CHECK(due <= now + 10ms);
  // Over one simulated second, about 100 go (never more than rate × time + burst).
  int sent = 0;
  for (int step = 0; step < 1000; ++step) {
    now += 1ms;
    while (limit.allows(now, 0)) {
      limit.took_one();
      ++sent;
    }
  }
  CHECK(sent >= 99);
  CHECK(sent <= 101);
  // After a long pause the bucket holds only the burst.
  now += 10s;
  int burst = 0;
  while (limit.allows(now, 0)) {
    limit.took_one();
    ++burst;
  }
  CHECK(burst == 10);
}

TEST_CASE("drain_rate with max_in_flight: both bounds apply") {
  DrainLimit limit(1000, 1);
  const auto now = Clock::now();
  limit.start(now);
  CHECK_FALSE(limit.allows(now, 1));  // token there, but a request is in flight
  CHECK(limit.allows(now, 0));
}
