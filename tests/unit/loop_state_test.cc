// LoopState: the heartbeat behind /healthz, the status snapshot handshake behind /status (a
// fresh one when the loop answers, the last one when it does not), and the flush request and
// wake fd behind POST /flush.
#include "tidepool/proxy/loop_state.h"

#include <poll.h>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

using tidepool::proxy::LoopState;
using namespace std::chrono_literals;

namespace {

// True when the loop's poll on the wake fd would return at once.
bool wake_pending(const LoopState& state) {
  pollfd item{state.wake_fd(), POLLIN, 0};
  return ::poll(&item, 1, 0) == 1 && (item.revents & POLLIN) != 0;
}

}  // namespace

TEST_CASE("starts not ready, not draining, not alive, with nothing requested") {
  LoopState state;
  CHECK_FALSE(state.ready);
  CHECK_FALSE(state.draining);
  CHECK_FALSE(state.alive(1h));  // no heartbeat yet: the loop has not started
  CHECK_FALSE(state.take_flush_request());
  CHECK_FALSE(state.take_status_request());
  CHECK(state.wake_fd() >= 0);
  CHECK_FALSE(wake_pending(state));
}

TEST_CASE("alive while heartbeats are more recent than the allowed silence") {
  LoopState state;
  state.heartbeat();
  CHECK(state.alive(10s));
  std::this_thread::sleep_for(50ms);
  CHECK_FALSE(state.alive(20ms));
  CHECK(state.alive(10s));
  state.heartbeat();
  CHECK(state.alive(20ms));
}

TEST_CASE("request_flush wakes the loop once; take_flush_request reads and clears it") {
  LoopState state;
  state.request_flush();
  CHECK(wake_pending(state));
  CHECK(state.take_flush_request());
  CHECK_FALSE(state.take_flush_request());
  state.clear_wake();
  CHECK_FALSE(wake_pending(state));
}

TEST_CASE("status() asks the loop and returns the fresh snapshot it publishes") {
  LoopState state;
  state.set_status("old");
  std::atomic<bool> stop{false};
  // Plays the loop: answers a status request with a new snapshot.
  std::thread loop([&] {
    while (!stop) {
      if (state.take_status_request()) {
        state.clear_wake();
        state.set_status("fresh");
        return;
      }
      std::this_thread::sleep_for(1ms);
    }
  });
  const auto start = std::chrono::steady_clock::now();
  CHECK(state.status() == "fresh");
  CHECK(std::chrono::steady_clock::now() - start < 400ms);  // did not wait for the timeout
  stop = true;
  loop.join();
}

TEST_CASE("status() returns the last snapshot when the loop does not answer in time") {
  LoopState state;
  CHECK(state.status().empty());  // nothing published yet
  state.set_status("last");
  const auto start = std::chrono::steady_clock::now();
  CHECK(state.status() == "last");
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK(waited >= 400ms);  // it did wait for the loop (500 ms) ...
  CHECK(waited < 5s);      // ... and then gave up
  // The request stays for the loop to find, and the loop was woken for it.
  CHECK(state.take_status_request());
  CHECK(wake_pending(state));
}
