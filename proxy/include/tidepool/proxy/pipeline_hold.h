// The pipeline hold's clock: how long a route under `block` may leave its frontend unread
// while its backend pushes back, because that backend is keeping up (Route::holding_frontend()).
//
// libzmq reopens a full pipe once its reader has taken half the HWM, so a backend that keeps up
// reopens at a pace the message size sets: 500 × 64 B every ~0.2 ms, 500 × 16 KiB every
// ~10-14 ms on loopback. A fixed 1 ms window suited the first and missed the second: at 16 KiB
// 59-87% of a saturated stream went through the queue (medians of 5 runs), at ~9% more CPU per
// message than with a queue too small to hold any. So the window follows the pace the backend last
// showed: twice its last reopen, never under kWindowMin. A reopen slower than kPaceMax is no pace
// (a stall, an outage, a worker that stopped reading), and neither is one at which the backend
// took messages slower than one per kPaceMaxPerMessage (half its HWM per reopen): a slow worker
// behind a small HWM is buffered for, not waited on. Either is forgotten, and the window falls back
// to kWindowMin. What the clients send during a hold waits in libzmq's frontend pipe, in order, at
// no cost to this process; the hold only decides where it waits, never whether.
#pragma once

#include <algorithm>
#include <chrono>
#include <optional>

#include "tidepool/proxy/queued_message.h"

namespace tidepool::proxy {

class PipelineHold {
 public:
  // backend_hwm: the backend sockets' ZMQ_SNDHWM (0: none, so no pipe is ever full).
  explicit PipelineHold(int backend_hwm) : longest_pace_(longest_pace(backend_hwm)) {}

  // The window with no pace known, and its floor: a backend that took nothing for this long is
  // taken for stuck, and its clients are read and queued.
  static constexpr Clock::duration kWindowMin = std::chrono::milliseconds(1);
  // The longest wait for a full pipe that still counts as the backend's pace, so a window is at
  // most 2 × this: the longest the clients of a backend that then stalls stay unread before
  // tidepool buffers for them. 25 ms covers 16 KiB at ~500 MB/s; 64 KiB messages (~50 ms per
  // reopen) go through the queue as before, where the copy into the kernel dwarfs the trip.
  static constexpr Clock::duration kPaceMax = std::chrono::milliseconds(25);
  // ...and the slowest a backend may take messages and still be keeping up: 10,000 a second.
  // libzmq reopens a full pipe each time its reader has taken (HWM + 1) / 2 messages (pipe.cpp,
  // compute_lwm), so at the default HWM of 1000 any wait up to kPaceMax counts, and at an HWM
  // of 10 none beyond 0.5 ms (inside kWindowMin, as with the fixed window).
  static constexpr Clock::duration kPaceMaxPerMessage = std::chrono::microseconds(100);
  // A queue whose oldest message waited this long, or twice the window if longer, is a backlog
  // (from an outage, a stall), not what one pipe-full left: it is drained with the clients read.
  static constexpr Clock::duration kQueueWaitMin = std::chrono::milliseconds(10);

  // A message went to a backend at `now`: a pipe that was full has reopened.
  void forwarded(Clock::time_point now) {
    last_forward_ = now;
    if (full_since_) {
      const Clock::duration waited = now - *full_since_;
      pace_ = waited <= longest_pace_ ? waited : Clock::duration::zero();
      full_since_.reset();
    }
  }
  // A present backend refused a message at `now`: its pipe is full (from the first refusal on).
  void refused(Clock::time_point now) {
    if (!full_since_) full_since_ = now;
  }
  // No backend is present: a wait that ends in a reconnect is no pace.
  void backend_gone() {
    full_since_.reset();
    pace_ = Clock::duration::zero();
  }

  // The backend still counts as keeping up at `now`: it took a message within the window.
  [[nodiscard]] bool keeping_up(Clock::time_point now) const { return now < window_end(); }
  [[nodiscard]] Clock::time_point window_end() const { return last_forward_ + window(); }
  [[nodiscard]] Clock::duration window() const { return std::max(kWindowMin, 2 * pace_); }
  // A queue whose oldest message waited less than this is young: what one pipe-full left.
  [[nodiscard]] Clock::duration young_queue() const {
    return std::max(kQueueWaitMin, 2 * window());
  }

 private:
  // kPaceMax, or less when the (HWM + 1) / 2 messages of one reopen at kPaceMaxPerMessage each
  // take less; zero without an HWM (no pipe is ever full, so no wait is a pace).
  static Clock::duration longest_pace(int backend_hwm) {
    if (backend_hwm <= 0) return Clock::duration::zero();
    const auto per_reopen = (static_cast<Clock::duration::rep>(backend_hwm) + 1) / 2;
    return std::min<Clock::duration>(kPaceMax, per_reopen * kPaceMaxPerMessage);
  }

  Clock::duration longest_pace_;  // the longest wait that counts as the backend's pace
  Clock::time_point last_forward_;
  std::optional<Clock::time_point> full_since_;
  Clock::duration pace_{};  // the last reopen's wait; zero when none counts
};

}  // namespace tidepool::proxy
