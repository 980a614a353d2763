#pragma once

// The event loop that owns every socket, and the state it shares with the HTTP threads.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "tidepool/proxy/config.h"
#include "tidepool/proxy/curve.h"
#include "tidepool/proxy/metrics.h"
#include "tidepool/proxy/route.h"

namespace tidepool::proxy {

// What the event loop shares with the HTTP threads: atomics, and a status snapshot the loop
// republishes. The HTTP side never touches a socket.
class LoopState {
 public:
  LoopState();
  ~LoopState();
  LoopState(const LoopState&) = delete;
  LoopState& operator=(const LoopState&) = delete;

  // Loop side.
  void heartbeat();
  void set_status(std::string json);
  std::atomic<bool> ready{false};
  std::atomic<bool> draining{false};
  // Reads and clears a manual flush request.
  bool take_flush_request() { return flush_requested_.exchange(false); }
  // Reads and clears a request for a fresh status snapshot.
  bool take_status_request() { return status_requested_.exchange(false); }
  [[nodiscard]] int wake_fd() const { return wake_fd_; }
  void clear_wake() const;

  // HTTP side.
  [[nodiscard]] bool alive(std::chrono::milliseconds max_silence) const;
  // The status snapshot, made fresh for this call (the loop builds it only when asked: for
  // 1,000 routes it costs milliseconds); the last one if the loop does not answer in time.
  [[nodiscard]] std::string status() const;
  void request_flush();

 private:
  std::atomic<std::int64_t> heartbeat_ns_{0};
  std::atomic<bool> flush_requested_{false};
  mutable std::atomic<bool> status_requested_{false};
  mutable std::mutex status_mutex_;
  mutable std::condition_variable status_changed_;
  std::string status_;
  std::uint64_t status_serial_ = 0;  // counts snapshots, so a waiter sees a new one
  int wake_fd_ = -1;                 // eventfd: wakes the loop's poll from another thread
};

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

  Config config_;
  Metrics& metrics_;
  LoopState& state_;
  zmq::context_t context_;
  std::unique_ptr<ZapHandler> zap_;  // only when some socket uses CURVE
  std::vector<std::unique_ptr<Route>> routes_;
  Clock::time_point last_publish_{};
};

}  // namespace tidepool::proxy
