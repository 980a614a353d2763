// The environment checks of check-config (config.h, environment_problems): what a start
// would refuse on this machine although the file is valid, found by trying it (a probe
// directory, a probe bind) rather than by reading permission bits, which root ignores.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "tidepool/proxy/config.h"

namespace tidepool::proxy {
namespace {

namespace fs = std::filesystem;

// NOLINTNEXTLINE(concurrency-mt-unsafe): check-config runs on one thread
std::string errno_text(int error) { return std::strerror(error); }

// Creates and removes a directory inside `dir`: the one proof that a start could write
// there (read-only mounts, ACLs, full inode tables and root all agree with it).
std::optional<std::string> write_probe(const fs::path& dir) {
  std::string name = (dir / ".tidepool-check-XXXXXX").string();
  if (::mkdtemp(name.data()) == nullptr) return errno_text(errno);
  ::rmdir(name.c_str());
  return std::nullopt;
}

// The spool lives in dir/<route>/; a start creates what is missing of that path.
std::optional<std::string> spool_problem(const std::string& dir, const std::string& route) {
  const fs::path spool = fs::path(dir) / route;
  std::error_code ec;
  fs::path existing = spool;
  while (!fs::exists(existing, ec)) {
    if (ec) return "cannot look at " + existing.string() + ": " + ec.message();
    if (!existing.has_parent_path() || existing.parent_path() == existing) break;
    existing = existing.parent_path();
  }
  if (existing.empty()) existing = ".";
  if (!fs::is_directory(existing, ec)) {
    return existing.string() + " is not a directory, so the spool " + spool.string() +
           " cannot be created";
  }
  if (auto problem = write_probe(existing)) {
    return existing == spool ? "the spool " + spool.string() + " is not writable: " + *problem
                             : "cannot create the spool " + spool.string() + " in " +
                                   existing.string() + ": " + *problem;
  }
  return std::nullopt;
}

// Binds a throwaway TCP socket to HOST on port 0: the kernel says whether HOST is an
// address of this machine (EADDRNOTAVAIL when not), as it would for libzmq's bind.
std::optional<std::string> local_address_problem(std::string host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  // Every address of the host, whatever its interfaces (and :: even where IPv6 is off: the
  // start reports that itself).
  if (host.empty() || host == "*" || host == "localhost" || host == "0.0.0.0" || host == "::") {
    return std::nullopt;
  }
  sockaddr_storage address{};
  socklen_t length = 0;
  sockaddr_in v4{};
  sockaddr_in6 v6{};
  if (::inet_pton(AF_INET, host.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    std::memcpy(&address, &v4, sizeof v4);
    length = sizeof v4;
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    std::memcpy(&address, &v6, sizeof v6);
    length = sizeof v6;
  } else {
    return std::nullopt;  // an interface name: endpoint_problem checked that it exists
  }
  const int fd = ::socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "cannot open a socket to try it: " + errno_text(errno);
  std::optional<std::string> problem;
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), length) != 0) {
    const int error = errno;
    problem = error == EADDRNOTAVAIL ? host +
                                           " is not an address of this host (no local "
                                           "interface has it)"
                                     : "cannot bind to " + host + ": " + errno_text(error);
  }
  ::close(fd);
  return problem;
}

std::optional<std::string> bind_problem(const std::string& endpoint) {
  const auto scheme_end = endpoint.find("://");
  if (scheme_end == std::string::npos) return std::nullopt;  // endpoint_problem's to name
  const std::string scheme = endpoint.substr(0, scheme_end);
  const std::string rest = endpoint.substr(scheme_end + 3);
  if (scheme == "tcp") {
    const auto colon = rest.rfind(':');
    if (colon == std::string::npos) return std::nullopt;
    return local_address_problem(rest.substr(0, colon));
  }
  if (scheme == "ipc" && !rest.starts_with("@")) {  // '@': Linux's abstract namespace
    fs::path dir = fs::path(rest).parent_path();
    if (dir.empty()) dir = ".";
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      return "the directory " + dir.string() + " does not exist (a bind creates the socket " +
             "file, not its directory)";
    }
    if (auto problem = write_probe(dir)) {
      return "cannot create the socket file in " + dir.string() + ": " + *problem;
    }
  }
  return std::nullopt;
}

}  // namespace

std::vector<ConfigError> environment_problems(const Config& config) {
  std::vector<ConfigError> problems;
  const auto listen_colon = config.http_listen.rfind(':');
  if (listen_colon != std::string::npos) {
    if (auto problem = local_address_problem(config.http_listen.substr(0, listen_colon))) {
      problems.emplace_back("http.listen", "\"" + config.http_listen + "\": " + *problem);
    }
  }
  for (std::size_t i = 0; i < config.routes.size(); ++i) {
    const auto& route = config.routes[i];
    const std::string path = "routes[" + std::to_string(i) + "]";
    for (const auto& [side, socket] :
         {std::pair{"frontend", &route.frontend}, {"backend", &route.backend}}) {
      for (std::size_t j = 0; j < socket->bind.size(); ++j) {
        if (auto problem = bind_problem(socket->bind[j])) {
          problems.emplace_back(path + "." + side + ".bind[" + std::to_string(j) + "]",
                                "\"" + socket->bind[j] + "\": " + *problem);
        }
      }
    }
    if (route.spool) {
      if (auto problem = spool_problem(route.spool->dir, route.name)) {
        problems.emplace_back(path + ".spool.dir", "\"" + route.spool->dir + "\": " + *problem);
      }
    }
  }
  return problems;
}

}  // namespace tidepool::proxy
