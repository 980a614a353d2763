// Endpoint checks of the config (config.h, endpoint_problem): what libzmq would refuse at
// bind or connect, refused by check-config with the reason instead.
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <charconv>
#include <string>

#include "tidepool/proxy/config.h"

namespace tidepool::proxy {
namespace {

// sun_path is 108 bytes with its terminating NUL; libzmq refuses a longer ipc path at start.
constexpr std::size_t kMaxIpcPath = sizeof(sockaddr_un::sun_path) - 1;

}  // namespace

std::optional<std::string> endpoint_problem(std::string_view endpoint, bool for_bind) {
  const auto scheme_end = endpoint.find("://");
  if (scheme_end == std::string_view::npos) {
    return "must look like tcp://HOST:PORT, ipc://PATH or inproc://NAME";
  }
  const auto scheme = endpoint.substr(0, scheme_end);
  const auto rest = endpoint.substr(scheme_end + 3);
  if (rest.empty()) return "has nothing after \"://\"";
  if (scheme == "ipc" && rest.size() > kMaxIpcPath) {
    return "ipc path is " + std::to_string(rest.size()) +
           " bytes; a Unix socket path holds at most " + std::to_string(kMaxIpcPath) +
           " (sun_path)";
  }
  if (scheme == "ipc" || scheme == "inproc") return std::nullopt;
  if (scheme != "tcp") return "unsupported transport \"" + std::string(scheme) + "\"";
  const auto colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return "tcp endpoints need HOST:PORT";
  const auto host = rest.substr(0, colon);
  const auto port = rest.substr(colon + 1);
  if (host == "*" && !for_bind) return "\"*\" is a bind address; connect needs a host";
  if (port == "*") {
    if (!for_bind) return "port \"*\" only works for bind";
    return std::nullopt;
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    return "port must be a number from 0 to 65535";
  }
  if (value == 0 && !for_bind) return "port 0 only works for bind";
  if (for_bind && host != "*") {
    // libzmq binds to an address or an interface name, never a DNS name.
    const std::string name(
        host.starts_with("[") && host.ends_with("]") ? host.substr(1, host.size() - 2) : host);
    in6_addr address{};
    const bool numeric = ::inet_pton(AF_INET, name.c_str(), &address) == 1 ||
                         ::inet_pton(AF_INET6, name.c_str(), &address) == 1;
    if (!numeric && ::if_nametoindex(name.c_str()) == 0) {
      return "\"" + name +
             "\" is neither an IP address nor a network interface of this machine (bind takes "
             "no host names: use *, an address or an interface)";
    }
  }
  return std::nullopt;
}

}  // namespace tidepool::proxy
