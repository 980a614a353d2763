// The event loop that owns every socket; what it shares with the HTTP threads is LoopState
// (loop_state.h).
#pragma once

#include <memory>
#include <vector>

#include <zmq.hpp>

#include "tidepool/proxy/config.h"
#include "tidepool/proxy/curve.h"
#include "tidepool/proxy/loop_state.h"
#include "tidepool/proxy/metrics.h"
#include "tidepool/proxy/notify.h"
#include "tidepool/proxy/route.h"

namespace tidepool::proxy {

// The one thread that owns every socket (DESIGN §8): polls all routes, runs their timers,
// publishes metrics and status, and drains on SIGTERM/SIGINT.
class EventLoop {
 public:
  EventLoop(const Config& config, Metrics& metrics, LoopState& state);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Binds and connects every route. Throws StartupError.
  void open();
  // Runs until SIGTERM or SIGINT arrives on `signal_fd` (a signalfd) and the drain ends;
  // SIGHUP reloads the CURVE authorized keys. Returns the process exit code.
  int run(int signal_fd);

 private:
  // Returns false when skipped because the last publish was too recent.
  bool publish(Clock::time_point now, bool force);
  [[nodiscard]] bool all_drained() const;
  // systemd's STATUS= line: "N routes, M queued" (and "draining" while it does).
  [[nodiscard]] std::string status_line(bool stopping) const;
  // WATCHDOG=1 when due, and a changed STATUS= at most every few seconds; from the loop's
  // heartbeat, so a stuck loop stops the pings and systemd restarts it.
  void notify_systemd(Clock::time_point now, bool stopping);

  Config config_;
  Metrics& metrics_;
  LoopState& state_;
  zmq::context_t context_;
  std::unique_ptr<ZapHandler> zap_;  // only when some socket uses CURVE
  std::vector<std::unique_ptr<Route>> routes_;
  Clock::time_point last_publish_{};
  SystemdNotifier systemd_;
  Clock::time_point next_watchdog_{};
  Clock::time_point next_status_{};
  std::string last_status_;
};

}  // namespace tidepool::proxy
