// The small HTTP/1.0 client behind `tidepool status` and `tidepool healthcheck`: resolves
// HOST, tries each of its addresses in turn, sends one GET and reads the answer to EOF,
// all within one deadline.

#include "tidepool/proxy/http_client.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace tidepool::proxy {
namespace {

// Per address tried; a loopback or LAN connect takes far less, a missing host no more.
constexpr std::chrono::milliseconds kConnectTimeout{1000};

// Closes the descriptor on every path out.
struct FileDescriptor {
  int fd = -1;
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
};

bool wait_for(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd item{fd, events, 0};
  return ::poll(&item, 1, static_cast<int>(left.count())) == 1;
}

// The numeric address of one getaddrinfo result, for error messages.
std::string numeric(const addrinfo& item) {
  char text[NI_MAXHOST] = "?";
  ::getnameinfo(item.ai_addr, item.ai_addrlen, text, sizeof text, nullptr, 0, NI_NUMERICHOST);
  return text;
}

// Connects to the first of `found` that accepts, in getaddrinfo's order: "localhost" is
// ::1 and 127.0.0.1 on a stock Debian, and a server may listen on only one of them. Each
// address gets kConnectTimeout at most, all of them together no more than `deadline`.
// Returns the connected fd, or -1 with `failures` saying what each address did.
int connect_any(const addrinfo* found, std::chrono::steady_clock::time_point deadline,
                std::string& failures) {
  failures.clear();
  for (const addrinfo* item = found; item != nullptr; item = item->ai_next) {
    const auto note = [&](const std::string& why) {
      failures += (failures.empty() ? "" : "; ") + numeric(*item) + ": " + why;
    };
    if (std::chrono::steady_clock::now() >= deadline) {
      note("not tried, out of time");
      break;
    }
    FileDescriptor socket{::socket(item->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
    if (socket.fd < 0) {
      note(std::strerror(errno));
      continue;
    }
    if (::connect(socket.fd, item->ai_addr, item->ai_addrlen) != 0 && errno != EINPROGRESS) {
      note(std::strerror(errno));
      continue;
    }
    if (!wait_for(socket.fd, POLLOUT,
                  std::min(deadline, std::chrono::steady_clock::now() + kConnectTimeout))) {
      note("no connection within the timeout");
      continue;
    }
    int socket_error = 0;
    socklen_t length = sizeof socket_error;
    ::getsockopt(socket.fd, SOL_SOCKET, SO_ERROR, &socket_error, &length);
    if (socket_error != 0) {
      note(std::strerror(socket_error));
      continue;
    }
    return std::exchange(socket.fd, -1);
  }
  return -1;
}

}  // namespace

std::optional<HttpReply> http_get(const std::string& address, const std::string& path,
                                  std::chrono::milliseconds timeout, std::string& error) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) {
    error = "address \"" + address + "\" is not HOST:PORT";
    return std::nullopt;
  }
  std::string host = address.substr(0, colon);
  const std::string port = address.substr(colon + 1);
  if (host.empty() || host == "0.0.0.0" || host == "*") host = "127.0.0.1";
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }

  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    error = "cannot resolve " + address + ": " + gai_strerror(rc);
    return std::nullopt;
  }
  FileDescriptor socket{connect_any(found, deadline, error)};
  ::freeaddrinfo(found);
  if (socket.fd < 0) {
    error = "cannot connect to " + address + " (" + error + ")";
    return std::nullopt;
  }
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: " + host + "\r\n\r\n";
  if (::send(socket.fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    error = "cannot send the request to " + address;
    return std::nullopt;
  }
  std::string raw;
  char buffer[16384];
  while (true) {
    if (!wait_for(socket.fd, POLLIN, deadline)) {
      error = "no complete answer from " + address + " within the timeout";
      return std::nullopt;
    }
    const ssize_t n = ::recv(socket.fd, buffer, sizeof buffer, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) break;
    raw.append(buffer, static_cast<std::size_t>(n));
  }
  // "HTTP/1.1 200 OK\r\n...\r\n\r\nbody"
  HttpReply reply;
  if (raw.size() < 12 || raw.compare(0, 5, "HTTP/") != 0) {
    error = address + " did not answer with HTTP";
    return std::nullopt;
  }
  reply.status = std::atoi(raw.c_str() + raw.find(' ') + 1);
  const auto body = raw.find("\r\n\r\n");
  if (body != std::string::npos) reply.body = raw.substr(body + 4);
  return reply;
}

}  // namespace tidepool::proxy
