// ZeroMQ plumbing shared by both sides of a route: socket options, attach, whole-message I/O,
// monitors (sockets.h says what each is for).
#include "tidepool/proxy/sockets.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "tidepool/proxy/curve.h"

namespace tidepool::proxy {
namespace {

// A peer silent (or, see below, unacknowledging) for this many heartbeat intervals is gone.
constexpr int kHeartbeatsMissed = 3;

}  // namespace

zmq::socket_type zmq_type(SocketType type) {
  switch (type) {
    case SocketType::kRouter:
      return zmq::socket_type::router;
    case SocketType::kDealer:
      return zmq::socket_type::dealer;
    case SocketType::kPull:
      return zmq::socket_type::pull;
    case SocketType::kPush:
      return zmq::socket_type::push;
  }
  return zmq::socket_type::pair;
}

void configure_socket(zmq::socket_t& socket, const SocketConfig& config, const std::string& route,
                      const SocketRole& role) {
  const bool backend = role.backend;
  const bool may_be_unread = role.may_be_unread;
  socket.set(zmq::sockopt::linger, 0);  // set again, bounded, at close
  // IPv6 (tcp://[::1]:PORT) needs ZMQ_IPV6. Only where an endpoint is an IPv6 literal: on a
  // dual-stack socket libzmq reports an IPv4 bind as tcp://[::ffff:127.0.0.1]:PORT.
  const auto ipv6 = [](const std::vector<std::string>& endpoints) {
    return std::any_of(endpoints.begin(), endpoints.end(),
                       [](const std::string& e) { return e.starts_with("tcp://["); });
  };
  if (ipv6(config.bind) || ipv6(config.connect)) socket.set(zmq::sockopt::ipv6, true);
  socket.set(zmq::sockopt::sndhwm, config.hwm);
  socket.set(zmq::sockopt::rcvhwm, backend ? 1000 : config.hwm);
  socket.set(zmq::sockopt::maxmsgsize, role.max_frame);
  // Back-off for connect endpoints whose peer is absent (ZMQ_RECONNECT_IVL stays 100 ms).
  socket.set(zmq::sockopt::reconnect_ivl_max, config.reconnect_max_ms);
  if (config.heartbeat_ms > 0) {
    // A connect to a host that vanished behind a router (its SYNs dropped, no RST, no ICMP)
    // is given up after as long as a silent peer is tolerated, and retried on the back-off.
    // Without it the kernel retransmits the SYN at doubling intervals for ~2 minutes, and a
    // host back from a 40 s partition was connected to only 32 s after it came back.
    socket.set(zmq::sockopt::connect_timeout, config.heartbeat_ms * kHeartbeatsMissed);
  }
  if (config.heartbeat_ms > 0 && may_be_unread && config.type == SocketType::kRouter) {
    // A request-reply client may also leave its replies unread (it stopped reading): its
    // receive window stays closed, and TCP_USER_TIMEOUT (below) would abort it (Linux >= 5.11)
    // and libzmq would discard the replies its pipe held, uncounted. So no ZMTP heartbeat
    // and no user timeout here: kernel keepalive probes an idle connection and a vanished
    // client's kernel does not answer (dropped after 1 + 3 intervals), while a live client
    // with a closed window keeps answering the kernel's window probes and stays connected. A
    // vanished client with replies unacknowledged is noticed by the kernel's retransmission
    // limit (tcp_retries2: ~15 min by default), its replies wait until then, bounded.
    const int seconds = std::max(1, config.heartbeat_ms / 1000);
    socket.set(zmq::sockopt::tcp_keepalive, 1);
    socket.set(zmq::sockopt::tcp_keepalive_idle, seconds);
    socket.set(zmq::sockopt::tcp_keepalive_intvl, seconds);
    socket.set(zmq::sockopt::tcp_keepalive_cnt, kHeartbeatsMissed);
  } else if (config.heartbeat_ms > 0) {
    // Our PINGs, and the TTL in them, tell peers that tidepool is alive.
    socket.set(zmq::sockopt::heartbeat_ivl, config.heartbeat_ms);
    socket.set(zmq::sockopt::heartbeat_ttl, config.heartbeat_ms * kHeartbeatsMissed);
    if (!may_be_unread) {
      socket.set(zmq::sockopt::heartbeat_timeout, config.heartbeat_ms * kHeartbeatsMissed);
    } else {
      // While tidepool does not read this socket (`block` with a full queue), libzmq stops
      // reading its connections and sees none of a client's traffic: its heartbeat timeout
      // would close healthy connections and lose what their pipes held. 0 arms no timeout
      // timer (libzmq 4.3.4 zmtp_engine.cpp). A vanished client is noticed by the kernel
      // instead: our PINGs go out every interval whether or not we read, a live client's
      // kernel acknowledges them, and TCP_USER_TIMEOUT aborts the connection once data has
      // been unacknowledged that long (keepalive would add nothing: Linux sends no keepalive
      // probe while data is unacknowledged). Linux >= 5.11 also aborts a connection whose
      // receive window stays closed that long: never the case toward a PUSH client, whose
      // libzmq always reads (request-reply frontends are handled above). Known: libzmq 4.3.4
      // can abort (stream_engine_base.cpp:331, libzmq #4841) when such a stopped connection
      // hangs up with a PING pending; keepalive instead of PINGs dropped healthy blocked
      // connections (measured), so this stays.
      socket.set(zmq::sockopt::heartbeat_timeout, 0);
      socket.set(zmq::sockopt::tcp_maxrt, config.heartbeat_ms * kHeartbeatsMissed);
    }
  }
  // CURVE keys when configured, and always a ZAP domain: it makes libzmq refuse unversioned
  // ZMTP 1.0 peers, whose arbitrary bytes would otherwise parse as ZMTP 1.0 frames and arrive
  // as messages (every libzmq since 3.x speaks ZMTP 3).
  apply_security(socket, config, route, backend);
  if (role.immediate) {
    // Queue in tidepool (observable), not in libzmq pipes toward peers that are not there.
    socket.set(zmq::sockopt::immediate, true);
  }
  if (config.type == SocketType::kRouter) {
    // A reply for a client that has gone is an error we count, not a silent drop; a full
    // client pipe is EAGAIN we retry, not a drop.
    socket.set(zmq::sockopt::router_mandatory, true);
    // A client that reconnects with its own routing id takes it over at once, with the replies
    // still due to it, even while its old connection still looks alive (a host that vanished
    // without a FIN). Without this libzmq ignores the newcomer and drops its messages
    // uncounted. A routing id is a bearer name under NULL security: CURVE authenticates.
    socket.set(zmq::sockopt::router_handover, true);
  }
}

void attach(zmq::socket_t& socket, const std::vector<std::string>& binds,
            const std::vector<std::string>& connects, const std::string& route, const char* side,
            std::vector<std::string>& endpoints) {
  for (const auto& endpoint : binds) {
    try {
      socket.bind(endpoint);
    } catch (const zmq::error_t& e) {
      throw StartupError("route " + route + ": cannot bind " + side + " " + endpoint + ": " +
                         e.what() +
                         (e.num() == EADDRINUSE ? " (another process listens there)" : ""));
    }
    endpoints.push_back(socket.get(zmq::sockopt::last_endpoint));
  }
  for (const auto& endpoint : connects) {
    try {
      socket.connect(endpoint);
    } catch (const zmq::error_t& e) {
      throw StartupError("route " + route + ": cannot connect " + side + " " + endpoint + ": " +
                         e.what());
    }
    endpoints.push_back(endpoint);
  }
}

SendResult send_multipart(zmq::socket_t& socket, protocol::Multipart& message) {
  const std::size_t frames = message.size();
  for (std::size_t i = 0; i < frames; ++i) {
    const int flags = (i + 1 < frames ? ZMQ_SNDMORE : 0) | (i == 0 ? ZMQ_DONTWAIT : 0);
    if (zmq_msg_send(message[i].handle(), socket.handle(), flags) >= 0) continue;
    if (i == 0 && zmq_errno() == EAGAIN) return SendResult::kWouldBlock;
    if (i == 0 && zmq_errno() == EHOSTUNREACH) return SendResult::kUnroutable;
    throw zmq::error_t();
  }
  message.clear_sent();
  return SendResult::kSent;
}

bool recv_multipart(zmq::socket_t& socket, protocol::Multipart& message) {
  // Each frame is received in its slot of `message` (Multipart::receive_back()).
  bool more = false;
  const bool got = message.receive_back([&](zmq::message_t& frame) {
    if (!socket.recv(frame, zmq::recv_flags::dontwait)) return false;
    more = frame.more();
    return true;
  });
  if (!got) return false;
  // libzmq delivers a multipart message atomically: the rest is already here.
  while (more) {
    message.receive_back([&](zmq::message_t& frame) {
      (void)socket.recv(frame, zmq::recv_flags::none);
      more = frame.more();
      return true;
    });
  }
  return true;
}

bool MonitorEvent::handshake_failed() const {
  return id == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL || id == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL ||
         id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
}

const char* MonitorEvent::name() const {
  switch (id) {
    case ZMQ_EVENT_CONNECTED:
      return "connected";
    case ZMQ_EVENT_ACCEPTED:
      return "accepted";
    case ZMQ_EVENT_DISCONNECTED:
      return "disconnected";
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
      return "handshake_succeeded";
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
      return "handshake_failed_no_detail";
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
      return "handshake_failed_protocol";
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
      return "handshake_failed_auth";
    case ZMQ_EVENT_LISTENING:
      return "listening";
    case ZMQ_EVENT_BIND_FAILED:
      return "bind_failed";
    case ZMQ_EVENT_ACCEPT_FAILED:
      return "accept_failed";
    case ZMQ_EVENT_CLOSE_FAILED:
      return "close_failed";
    case ZMQ_EVENT_MONITOR_STOPPED:
      return "monitor_stopped";
    default:
      return "other";
  }
}

SocketMonitor::SocketMonitor(zmq::context_t& context) : socket_(context, zmq::socket_type::pair) {}

void SocketMonitor::start(zmq::socket_t& watched, const std::string& route,
                          const std::string& side) {
  const std::string endpoint = "inproc://tidepool-monitor-" + route + "-" + side;
  // Not the events of each reconnect attempt (delayed, retried, closed): presence needs none
  // of them, and toward an absent peer they would be a stream of messages to read.
  constexpr int kEvents =
      ZMQ_EVENT_ALL & ~(ZMQ_EVENT_CONNECT_DELAYED | ZMQ_EVENT_CONNECT_RETRIED | ZMQ_EVENT_CLOSED);
  if (zmq_socket_monitor(watched.handle(), endpoint.c_str(), kEvents) != 0) {
    throw StartupError("route " + route + ": cannot monitor " + side + ": " +
                       zmq_strerror(zmq_errno()));
  }
  // Read as the loop gets to it, so the pipe must hold a connection storm's events: unlimited here
  // (0) makes the inproc pipe unlimited. Connected before any bind/connect of the watched
  // socket, so no event is missed.
  socket_.set(zmq::sockopt::rcvhwm, 0);
  socket_.connect(endpoint);
  fd_ = socket_.get(zmq::sockopt::fd);
}

std::optional<MonitorEvent> SocketMonitor::next(Presence::Change* change) {
  while (true) {
    zmq::message_t head;
    if (!socket_.recv(head, zmq::recv_flags::dontwait)) return std::nullopt;
    zmq::message_t address;
    if (head.more()) (void)socket_.recv(address, zmq::recv_flags::none);
    if (head.size() < 6) continue;
    MonitorEvent event;
    std::memcpy(&event.id, head.data(), sizeof event.id);
    std::memcpy(&event.value, static_cast<const char*>(head.data()) + 2, sizeof event.value);
    event.address = address.to_string();
    const auto changed = presence_.on_event(event.id, event.value);
    if (change != nullptr) *change = changed;
    if (track_closes_) note_identity(event);
    return event;
  }
}

namespace {

// The inode of the socket behind `fd`; 0 when it is closed or not a socket.
ino_t socket_inode(std::uint32_t fd) {
  struct stat status {};
  if (::fstat(static_cast<int>(fd), &status) != 0 || !S_ISSOCK(status.st_mode)) return 0;
  return status.st_ino;
}

}  // namespace

void SocketMonitor::note_identity(const MonitorEvent& event) {
  const auto same_fd = [&](const auto& identity) { return identity.first == event.value; };
  switch (event.id) {
    case ZMQ_EVENT_CONNECTED:
    case ZMQ_EVENT_ACCEPTED:
      std::erase_if(identities_, same_fd);
      // One fstat per connection, none per message. If the fd is closed already, the
      // connection is too: 0 marks it so, and its DISCONNECTED (if any) follows.
      identities_.emplace_back(event.value, socket_inode(event.value));
      break;
    case ZMQ_EVENT_DISCONNECTED:
      std::erase_if(identities_, same_fd);
      break;
    case ZMQ_EVENT_MONITOR_STOPPED:
      identities_.clear();
      break;
    default:
      break;
  }
}

bool SocketMonitor::closed_since_reported(std::uint32_t fd) const {
  const auto identity = std::find_if(identities_.begin(), identities_.end(),
                                     [&](const auto& known) { return known.first == fd; });
  if (identity == identities_.end()) return false;  // never seen: nothing to compare
  return identity->second == 0 || socket_inode(fd) != identity->second;
}

std::vector<std::uint32_t> SocketMonitor::closed_live() const {
  std::vector<std::uint32_t> closed;
  for (const std::uint32_t fd : presence_.live()) {
    if (closed_since_reported(fd)) closed.push_back(fd);
  }
  return closed;
}

Presence::Change SocketMonitor::end_unreported(const std::vector<std::uint32_t>& closed) {
  return presence_.end_closed([&](std::uint32_t fd) {
    // Checked again: the monitor read since closed_live() may have reported a new connection
    // on a reused fd.
    if (std::find(closed.begin(), closed.end(), fd) == closed.end() || !closed_since_reported(fd)) {
      return false;
    }
    std::erase_if(identities_, [&](const auto& known) { return known.first == fd; });
    return true;
  });
}

void SocketMonitor::stop(zmq::socket_t& watched) {
  zmq_socket_monitor(watched.handle(), nullptr, 0);
  socket_.close();
}

}  // namespace tidepool::proxy
