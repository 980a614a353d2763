// Correlation: requests of one route matched with results of another by a payload key.
#include "tidepool/proxy/correlation.h"

#include <doctest/doctest.h>

#include <chrono>

#include "tidepool/proxy/metrics.h"

using tidepool::proxy::Clock;
using tidepool::proxy::Correlation;
using tidepool::proxy::CorrelationConfig;
using tidepool::proxy::LocalHistogram;
using namespace std::chrono_literals;

namespace {

CorrelationConfig config(std::size_t max_tracked = 100, std::int64_t timeout_ms = 1000) {
  CorrelationConfig c;
  c.key = "request_id";
  c.pair_with = "results";
  c.max_tracked = max_tracked;
  c.timeout_ms = timeout_ms;
  return c;
}

}  // namespace

TEST_CASE("a result completes its request and feeds the requests route's histogram") {
  LocalHistogram durations(tidepool::proxy::request_duration_buckets());
  Correlation link(config(), durations);
  const auto now = Clock::now();
  CHECK_FALSE(link.note_request(R"({"request_id":"a","x":1})", now));
  CHECK(link.in_flight() == 1);
  CHECK(link.note_result(R"({"request_id":"a","ok":true})", now + 20ms));
  CHECK(link.empty());
  CHECK(durations.count() == 1);
}

TEST_CASE("results that answer nothing are uncorrelated, and change nothing") {
  LocalHistogram durations(tidepool::proxy::request_duration_buckets());
  Correlation link(config(), durations);
  const auto now = Clock::now();
  (void)link.note_request(R"({"request_id":"a"})", now);
  CHECK_FALSE(link.note_result(R"({"request_id":"b"})", now));  // unknown key
  CHECK_FALSE(link.note_result(R"({"other":"a"})", now));       // no key at all
  CHECK_FALSE(link.note_result("not json", now));
  CHECK(link.in_flight() == 1);
  CHECK(durations.count() == 0);
}

TEST_CASE("a request without the key is not tracked") {
  LocalHistogram durations(tidepool::proxy::request_duration_buckets());
  Correlation link(config(), durations);
  CHECK_FALSE(link.note_request(R"({"x":1})", Clock::now()));
  CHECK(link.empty());
}

TEST_CASE("bounds: past max_tracked the oldest is forgotten; past timeout_ms it expires") {
  LocalHistogram durations(tidepool::proxy::request_duration_buckets());
  Correlation link(config(2, 1000), durations);
  const auto now = Clock::now();
  CHECK_FALSE(link.note_request(R"({"request_id":"1"})", now));
  CHECK_FALSE(link.note_request(R"({"request_id":"2"})", now + 1ms));
  CHECK(link.note_request(R"({"request_id":"3"})", now + 2ms));  // "1" forgotten
  CHECK_FALSE(link.note_result(R"({"request_id":"1"})", now + 3ms));
  CHECK(link.expire(now + 500ms) == 0);
  CHECK(link.expire(now + 1001ms + 500us) == 1);  // "2" (sent at +1 ms) expired, not "3"
  CHECK(link.expire(now + 1003ms) == 1);
  CHECK(link.empty());
}
