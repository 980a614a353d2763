// systemd's notification protocol (sd_notify(3)), implemented here rather than by linking
// libsystemd: it is one sendto() of a text datagram to the AF_UNIX socket named by
// $NOTIFY_SOCKET (a path, or an abstract name when it starts with '@'), so it needs no new
// library, no build-time systemd headers, and works the same in containers and on hosts
// without systemd (where NOTIFY_SOCKET is unset and nothing is sent).
#include "tidepool/proxy/notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include "tidepool/proxy/log.h"

namespace tidepool::proxy {
namespace {

template <typename Number>
std::optional<Number> parse_number(const char* text) {
  if (text == nullptr || *text == '\0') return std::nullopt;
  const std::string_view view(text);
  Number value{};
  const auto [end, ec] = std::from_chars(view.data(), view.data() + view.size(), value);
  if (ec != std::errc() || end != view.data() + view.size()) return std::nullopt;
  return value;
}

}  // namespace

std::optional<std::chrono::microseconds> watchdog_interval(const char* watchdog_usec,
                                                           const char* watchdog_pid, pid_t self) {
  const auto usec = parse_number<std::uint64_t>(watchdog_usec);
  if (!usec || *usec == 0) return std::nullopt;
  if (watchdog_pid != nullptr && *watchdog_pid != '\0') {
    const auto pid = parse_number<pid_t>(watchdog_pid);
    if (!pid || *pid != self) return std::nullopt;  // meant for another process
  }
  return std::chrono::microseconds(static_cast<std::int64_t>(*usec / 2));
}

SystemdNotifier::SystemdNotifier() {
  // Read once, before the loop runs (the HTTP thread never touches the environment).
  const char* socket_name = std::getenv("NOTIFY_SOCKET");  // NOLINT(concurrency-mt-unsafe)
  if (socket_name == nullptr || *socket_name == '\0') return;
  const std::string_view name(socket_name);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if ((name[0] != '/' && name[0] != '@') || name.size() >= sizeof address.sun_path) {
    log::warn("NOTIFY_SOCKET is not a socket path or abstract name: not notifying systemd",
              {{"notify_socket", std::string(name)}});
    return;
  }
  std::memcpy(address.sun_path, name.data(), name.size());
  if (name[0] == '@') address.sun_path[0] = '\0';  // abstract namespace
  const auto length = offsetof(sockaddr_un, sun_path) + name.size() + (name[0] == '@' ? 0 : 1);
  address_.assign(reinterpret_cast<const char*>(&address), length);
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    log::warn("cannot create the systemd notification socket",
              {{"error", std::generic_category().message(errno)}});
    return;
  }
  const char* usec = std::getenv("WATCHDOG_USEC");  // NOLINT(concurrency-mt-unsafe)
  const char* pid = std::getenv("WATCHDOG_PID");    // NOLINT(concurrency-mt-unsafe)
  watchdog_ = watchdog_interval(usec, pid, ::getpid());
}

SystemdNotifier::~SystemdNotifier() {
  if (fd_ >= 0) ::close(fd_);
}

void SystemdNotifier::send(std::string_view state) {
  if (fd_ < 0) return;
  const ssize_t sent = ::sendto(fd_, state.data(), state.size(), MSG_NOSIGNAL,
                                reinterpret_cast<const sockaddr*>(address_.data()),
                                static_cast<socklen_t>(address_.size()));
  if (sent < 0 && !failure_logged_) {
    // Once: a watchdog ping every few seconds to a vanished socket must not flood the log.
    failure_logged_ = true;
    log::warn("cannot notify systemd (logged once)",
              {{"error", std::generic_category().message(errno)}});
  }
}

}  // namespace tidepool::proxy
