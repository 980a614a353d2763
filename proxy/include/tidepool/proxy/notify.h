// systemd service notification (Type=notify): READY=1, STOPPING=1, WATCHDOG=1 and STATUS=
// datagrams to $NOTIFY_SOCKET, and the watchdog interval from WATCHDOG_USEC/WATCHDOG_PID.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace tidepool::proxy {

// How often to send WATCHDOG=1: half of WATCHDOG_USEC, as sd_watchdog_enabled(3) advises,
// when it is set, positive, and WATCHDOG_PID is unset or names `self`. nullopt otherwise.
std::optional<std::chrono::microseconds> watchdog_interval(const char* watchdog_usec,
                                                           const char* watchdog_pid, pid_t self);

// One process's link to the service manager. Without NOTIFY_SOCKET (not run by systemd with
// Type=notify) every call does nothing.
class SystemdNotifier {
 public:
  // Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from the environment.
  SystemdNotifier();
  ~SystemdNotifier();
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  [[nodiscard]] bool enabled() const { return fd_ >= 0; }
  [[nodiscard]] std::optional<std::chrono::microseconds> watchdog() const { return watchdog_; }
  // Sends `state` ("READY=1\nSTATUS=...") as one datagram. A failure is logged (once, then
  // rate-limited) and otherwise ignored: the service manager's absence must not stop tidepool.
  void send(std::string_view state);

 private:
  int fd_ = -1;
  std::string address_;  // sockaddr_un bytes for sendto
  std::optional<std::chrono::microseconds> watchdog_;
  bool failure_logged_ = false;
};

}  // namespace tidepool::proxy
