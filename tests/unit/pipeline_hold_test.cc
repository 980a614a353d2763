// PipelineHold: the hold's window follows the pace at which the backend's full pipe reopens,
// and no stall, outage, slow worker or unknown pace widens it. Grouped by property; times are exact
// (no clock is read).
#include "tidepool/proxy/pipeline_hold.h"

#include <doctest/doctest.h>

using tidepool::proxy::Clock;
using tidepool::proxy::PipelineHold;
using namespace std::chrono_literals;

namespace {

// A hold whose backend's pipe turned full at `t` and reopened `wait` later; returns when.
Clock::time_point reopened_after(PipelineHold& hold, Clock::time_point t, Clock::duration wait) {
  hold.forwarded(t);
  hold.refused(t);
  hold.forwarded(t + wait);
  return t + wait;
}

constexpr Clock::time_point t0{std::chrono::hours(1)};
constexpr int kDefaultHwm = 1000;  // libzmq's, and tidepool's backend.hwm default

}  // namespace

TEST_CASE("with no pace known the window is kWindowMin, and a queue is young under 10 ms") {
  PipelineHold hold(kDefaultHwm);
  hold.forwarded(t0);
  CHECK(hold.window() == PipelineHold::kWindowMin);
  CHECK(hold.keeping_up(t0 + PipelineHold::kWindowMin - 1us));
  CHECK_FALSE(hold.keeping_up(t0 + PipelineHold::kWindowMin));
  CHECK(hold.window_end() == t0 + PipelineHold::kWindowMin);
  CHECK(hold.young_queue() == PipelineHold::kQueueWaitMin);
  // A pipe that reopens at once (64 B at full speed) keeps the floor.
  reopened_after(hold, t0, 100us);
  CHECK(hold.window() == PipelineHold::kWindowMin);
}

TEST_CASE("the window is twice the last reopen's wait, and a young queue twice the window") {
  PipelineHold hold(kDefaultHwm);
  const Clock::time_point t = reopened_after(hold, t0, 6ms);
  CHECK(hold.window() == 12ms);
  CHECK(hold.keeping_up(t + 12ms - 1us));
  CHECK_FALSE(hold.keeping_up(t + 12ms));
  CHECK(hold.young_queue() == 24ms);
  // The next reopen sets it again: the last pace counts, not the longest.
  reopened_after(hold, t, 2ms);
  CHECK(hold.window() == 4ms);
  CHECK(hold.young_queue() == PipelineHold::kQueueWaitMin);
}

TEST_CASE("a wait starts at the first refusal: refusals while full do not restart it") {
  PipelineHold hold(kDefaultHwm);
  hold.forwarded(t0);
  hold.refused(t0);
  hold.refused(t0 + 3ms);
  hold.refused(t0 + 4ms);
  hold.forwarded(t0 + 5ms);
  CHECK(hold.window() == 10ms);
  // Forwards without a refusal between them are no reopen: the pace stays.
  hold.forwarded(t0 + 6ms);
  hold.forwarded(t0 + 40ms);
  CHECK(hold.window() == 10ms);
  CHECK(hold.window_end() == t0 + 50ms);
}

TEST_CASE("a reopen slower than kPaceMax is a stall, not a pace: the window falls back") {
  PipelineHold hold(kDefaultHwm);
  const Clock::time_point t = reopened_after(hold, t0, PipelineHold::kPaceMax);
  CHECK(hold.window() == 2 * PipelineHold::kPaceMax);  // the longest window there is
  reopened_after(hold, t, PipelineHold::kPaceMax + 1us);
  CHECK(hold.window() == PipelineHold::kWindowMin);
  CHECK(hold.young_queue() == PipelineHold::kQueueWaitMin);
}

TEST_CASE("a backend gone forgets the pace and the wait it was in") {
  PipelineHold hold(kDefaultHwm);
  const Clock::time_point t = reopened_after(hold, t0, 6ms);
  hold.refused(t);
  hold.backend_gone();
  // The reconnect's first forward ends no wait: nothing it measured is the backend's pace.
  hold.forwarded(t + 3ms);
  CHECK(hold.window() == PipelineHold::kWindowMin);
}

TEST_CASE("a backend taking messages slower than one per kPaceMaxPerMessage is no pace") {
  // HWM 100: libzmq reopens after 50 messages, so a wait of up to 5 ms is 10,000 a second.
  PipelineHold hold(100);
  Clock::time_point t = reopened_after(hold, t0, 5ms);
  CHECK(hold.window() == 10ms);
  t = reopened_after(hold, t, 5ms + 1us);
  CHECK(hold.window() == PipelineHold::kWindowMin);
  // HWM 10 (5 messages per reopen): 0.5 ms at most, which the floor already covers, as a
  // fixed 1 ms window did; a worker taking 5 messages per 6 ms is buffered for.
  PipelineHold small(10);
  t = reopened_after(small, t0, 500us);
  CHECK(small.window() == PipelineHold::kWindowMin);
  reopened_after(small, t, 6ms);
  CHECK(small.window() == PipelineHold::kWindowMin);
  // No HWM: no pipe is ever full, and a refusal (no peer yet) measures nothing.
  PipelineHold none(0);
  reopened_after(none, t0, 1ms);
  CHECK(none.window() == PipelineHold::kWindowMin);
}
