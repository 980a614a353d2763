// ZeroMQ plumbing that both sides of a route share: the options each socket gets (and why),
// binding and connecting with errors an operator can act on, whole-message send and receive
// where "would block" is a value, and a socket's monitor with the presence it feeds.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <zmq.hpp>

#include "tidepool/protocol/multipart.h"
#include "tidepool/proxy/config.h"
#include "tidepool/proxy/presence.h"
#include "tidepool/proxy/startup_error.h"

namespace tidepool::proxy {

// What one attempt to hand a whole message to a socket did.
enum class SendResult : std::uint8_t {
  kSent,
  kWouldBlock,  // the pipe is full: try again later
  kUnroutable,  // ROUTER: no connected client has that routing id
};

zmq::socket_type zmq_type(SocketType type);

// How a socket is used, which decides its options (sockets.cc says why each).
struct SocketRole {
  bool backend = false;
  // ZMQ_IMMEDIATE: queue in tidepool (observable), not in pipes toward absent peers.
  bool immediate = false;
  // ZMQ_MAXMSGSIZE: libzmq closes a connection that sends a larger frame.
  std::int64_t max_frame = -1;
  // tidepool may stop reading it for as long as back-pressure lasts (`block`).
  bool may_be_unread = false;
};
void configure_socket(zmq::socket_t& socket, const SocketConfig& config, const std::string& route,
                      const SocketRole& role);

// Binds then connects `socket`; appends each endpoint as bound (ephemeral ports resolved) or
// as connected to `endpoints`. Throws StartupError naming the route, side and endpoint.
void attach(zmq::socket_t& socket, const std::vector<std::string>& binds,
            const std::vector<std::string>& connects, const std::string& route, const char* side,
            std::vector<std::string>& endpoints);

// Sends a whole message without blocking. Only the first frame can block or be unroutable:
// once it is in, libzmq takes the rest of a started message. Other failures throw. A sent
// message is left empty.
SendResult send_multipart(zmq::socket_t& socket, protocol::Multipart& message);
// Appends the next whole message to `message`; false when none is waiting.
bool recv_multipart(zmq::socket_t& socket, protocol::Multipart& message);

// One monitor event as zmq_socket_monitor() reports it.
struct MonitorEvent {
  std::uint16_t id = 0;
  std::uint32_t value = 0;  // an fd for the events that carry one
  std::string address;
  [[nodiscard]] bool handshake_failed() const;
  // For logs: "connected", "handshake_succeeded", ... (libzmq's name, lower case).
  [[nodiscard]] const char* name() const;
};

// A socket's monitor: the PAIR that reads its events, and the presence they feed.
class SocketMonitor {
 public:
  explicit SocketMonitor(zmq::context_t& context);

  // Starts monitoring `watched` (before it binds or connects, so no event is missed).
  // Throws StartupError.
  void start(zmq::socket_t& watched, const std::string& route, const std::string& side);
  // The next event, already applied to presence(); nullopt when none is waiting. `change`
  // receives what it did to presence.
  std::optional<MonitorEvent> next(Presence::Change* change = nullptr);
  // Notes which socket each reported connection's fd was (one fstat per connection), for
  // end_unreported(). Off by default: only a socket that disconnects its own endpoints needs it.
  void track_closes() { track_closes_ = true; }
  // The live connections whose fd is now closed, or another socket than the one reported on
  // it: libzmq reports no DISCONNECTED for a connection the watched socket's own disconnect()
  // ended (Backends::pace_reconnects()). libzmq reports every other close before it closes the
  // fd, so once next() has been read to its end after this call, what end_unreported() still
  // finds live of these was ended unreported, and it ends them (Presence::end_closed()).
  [[nodiscard]] std::vector<std::uint32_t> closed_live() const;
  Presence::Change end_unreported(const std::vector<std::uint32_t>& closed);
  void stop(zmq::socket_t& watched);

  [[nodiscard]] const Presence& presence() const { return presence_; }
  // The PAIR's ZMQ_FD, for poll(): readable once new events wait, after next() returned
  // nullopt (libzmq signals a reader that found its pipe empty). One raw fd in poll() costs
  // nothing per pass, where a socket item costs two system calls, and no event waits for a
  // timer.
  [[nodiscard]] int fd() const { return fd_; }

 private:
  void note_identity(const MonitorEvent& event);
  [[nodiscard]] bool closed_since_reported(std::uint32_t fd) const;

  zmq::socket_t socket_;
  Presence presence_;
  // The socket inode behind each reported connection's fd when its event was read: a closed
  // fd, or one reused by another socket, is told from the connection that was reported on it.
  std::vector<std::pair<std::uint32_t, ino_t>> identities_;
  bool track_closes_ = false;
  int fd_ = -1;
};

}  // namespace tidepool::proxy
