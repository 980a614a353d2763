// LoopState: what the event loop shares with the HTTP threads (heartbeat, ready and draining
// flags, the status snapshot, the flush request and the fd that wakes the loop). No sockets
// and no ZeroMQ here, so the HTTP side depends on this and not on the loop.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>

namespace tidepool::proxy {

// What the event loop shares with the HTTP threads: atomics, and a status snapshot the loop
// republishes. The HTTP side never touches a socket.
class LoopState {
 public:
  // Throws StartupError when the wake eventfd cannot be made.
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

}  // namespace tidepool::proxy
