// LoopState (see loop_state.h): the heartbeat, the status handshake between an HTTP thread
// and the loop, and the eventfd that wakes the loop for a flush or a status request.
#include "tidepool/proxy/loop_state.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include "tidepool/proxy/startup_error.h"

namespace tidepool::proxy {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A /status request waits this long at most for the loop's fresh snapshot (the loop answers
// within a pass, a few milliseconds), then gets the last one.
constexpr auto kStatusWait = 500ms;

}  // namespace

LoopState::LoopState() : wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (wake_fd_ < 0) throw StartupError("eventfd failed");
}

LoopState::~LoopState() { ::close(wake_fd_); }

void LoopState::heartbeat() {
  heartbeat_ns_.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
}

bool LoopState::alive(std::chrono::milliseconds max_silence) const {
  const auto ticks = heartbeat_ns_.load(std::memory_order_relaxed);
  if (ticks == 0) return false;  // the loop has not started
  return Clock::now() - Clock::time_point(Clock::duration(ticks)) < max_silence;
}

void LoopState::set_status(std::string json) {
  {
    const std::lock_guard lock(status_mutex_);
    status_ = std::move(json);
    ++status_serial_;
  }
  status_changed_.notify_all();
}

std::string LoopState::status() const {
  std::unique_lock lock(status_mutex_);
  const auto serial = status_serial_;
  status_requested_ = true;
  const std::uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
  status_changed_.wait_for(lock, kStatusWait, [&] { return status_serial_ != serial; });
  return status_;
}

void LoopState::request_flush() {
  flush_requested_ = true;
  const std::uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

void LoopState::clear_wake() const {
  std::uint64_t value = 0;
  (void)!::read(wake_fd_, &value, sizeof value);
}

}  // namespace tidepool::proxy
