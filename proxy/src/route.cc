#include "tidepool/proxy/route.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "tidepool/protocol/envelope.h"
#include "tidepool/protocol/field.h"
#include "tidepool/proxy/curve.h"

namespace tidepool::proxy {
namespace {

using namespace std::chrono_literals;

// Messages handled per socket per loop pass: enough to amortise poll(), small enough that
// one busy route cannot starve another route or the reply direction.
constexpr int kReadBatch = 512;
// A request-reply request whose reply never comes (its worker died) stops counting as in
// flight after this, and is counted as a timeout, so max_in_flight cannot wedge.
constexpr auto kReplyTimeout = 10min;
// With ROUTER_MANDATORY, POLLOUT says "some client has room", not "this one has": a reply
// that would block is retried on this timer instead of spinning on POLLOUT.
constexpr auto kReplyRetry = 1ms;
// A client that stays full (it stopped reading) is retried ever less often, up to this: its
// replies then wait at most this much longer once it reads again, and the loop does not wake
// a thousand times a second for it while everyone else is served.
constexpr auto kReplyRetryMax = 5ms;
// TTL, in-flight expiry and log summaries need no finer clock than this.
constexpr auto kHousekeeping = 100ms;
// libzmq's own per-frame cap (ZMQ_MAXMSGSIZE) is set above max_message_bytes: a frame just
// over the limit is read, counted as too_large and dropped; only a frame this much larger is
// refused by libzmq itself, which closes that peer's connection to protect memory.
constexpr std::int64_t kHardLimitFactor = 2;
// The spool stores a message as a record: its frames plus this much per message, for up to
// this many frames (more frames cost 4 bytes each; request-reply messages carry 3 or 4).
constexpr std::size_t kSpoolFramesAllowance = 16;

// The spool's bound on live record bytes. Its records mirror the queue, which max_bytes
// already bounds (by payload bytes, passed by at most one message under `block`), so the
// spool gets max_bytes plus what records add: one message over the bound and each queued
// message's record overhead. A lower bound would make the spool refuse (spool_error) what
// the queue still takes, and `block` would then lose messages instead of pushing back.
std::size_t spool_max_bytes(const QueueConfig& queue) {
  return queue.max_bytes + queue.max_message_bytes +
         queue.max_messages * protocol::message_record_overhead(kSpoolFramesAllowance);
}

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

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Sends a whole message without blocking. Only the first frame can block or be unroutable:
// once it is in, libzmq takes the rest of a started message.
SendResult send_multipart(zmq::socket_t& socket, protocol::Multipart& message) {
  const std::size_t frames = message.size();
  for (std::size_t i = 0; i < frames; ++i) {
    const int flags = (i + 1 < frames ? ZMQ_SNDMORE : 0) | (i == 0 ? ZMQ_DONTWAIT : 0);
    if (zmq_msg_send(message[i].handle(), socket.handle(), flags) >= 0) continue;
    if (i == 0 && zmq_errno() == EAGAIN) return SendResult::kWouldBlock;
    if (i == 0 && zmq_errno() == EHOSTUNREACH) return SendResult::kUnroutable;
    throw zmq::error_t();
  }
  return SendResult::kSent;
}

// libzmq names a client that set no ZMQ_ROUTING_ID with an id of its own, a zero byte and a
// counter (ids starting with a zero byte are reserved for this). Such an id names one
// connection to this process; an id the client chose names the client, across connections.
bool names_a_connection(std::string_view routing_id) {
  return !routing_id.empty() && routing_id.front() == '\0';
}

bool recv_multipart(zmq::socket_t& socket, protocol::Multipart& message) {
  zmq::message_t frame;
  if (!socket.recv(frame, zmq::recv_flags::dontwait)) return false;
  bool more = frame.more();
  message.push_back(std::move(frame));
  // libzmq delivers a multipart message atomically: the rest is already here.
  while (more) {
    zmq::message_t next;
    (void)socket.recv(next, zmq::recv_flags::none);
    more = next.more();
    message.push_back(std::move(next));
  }
  return true;
}

// A peer silent (or, see below, unacknowledging) for this many heartbeat intervals is gone.
constexpr int kHeartbeatsMissed = 3;

void configure_socket(zmq::socket_t& socket, const SocketConfig& config, const std::string& route,
                      bool backend, bool immediate, std::int64_t max_frame, bool may_be_unread) {
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
  socket.set(zmq::sockopt::maxmsgsize, max_frame);
  // Back-off for connect endpoints whose peer is absent (ZMQ_RECONNECT_IVL stays 100 ms).
  socket.set(zmq::sockopt::reconnect_ivl_max, config.reconnect_max_ms);
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
  if (immediate) {
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

}  // namespace

Route::Route(zmq::context_t& context, const RouteConfig& config, Metrics& metrics)
    : config_(config),
      context_(context),
      frontend_(context, zmq_type(config.frontend.type)),
      frontend_monitor_{zmq::socket_t(context, zmq::socket_type::pair), {}},
      queue_(config.queue.max_messages, config.queue.max_bytes, config.queue.overflow),
      replies_(config.replies),
      metrics_(metrics, config.name) {
  const auto max_frame =
      static_cast<std::int64_t>(config.queue.max_message_bytes) * kHardLimitFactor;
  // `block` leaves the frontend unread while the queue is full.
  configure_socket(frontend_, config.frontend, config.name, false, false, max_frame,
                   config.queue.overflow == Overflow::kBlock);
  const auto add_backend = [&](std::vector<std::string> binds, std::vector<std::string> connects,
                               bool gated) {
    Backend backend{zmq::socket_t(context, zmq_type(config.backend.type)),
                    {zmq::socket_t(context, zmq::socket_type::pair), {}},
                    std::move(binds),
                    std::move(connects),
                    gated};
    configure_socket(backend.socket, config.backend, config.name, true, !gated, max_frame, false);
    backends_.push_back(std::move(backend));
  };
  if (config.request_reply()) {
    // Request-reply reads multipart replies from its backend. When a connecting socket with
    // ZMQ_IMMEDIATE loses its peer, libzmq 4.3 terminates that pipe from the socket's own side
    // as it processes the disconnect's "hiccup" command, which recv() does every 100 calls,
    // also between two frames of one message: the next frame is gone and libzmq aborts
    // (fq.cpp:112 "!_more"; seen under a flapping worker within seconds). Without
    // ZMQ_IMMEDIATE a connecting socket keeps its one pipe across reconnects, so a message
    // started is read whole, and nothing in it is lost with a connection. Such a socket is
    // writable with no peer (what it takes waits for the next connection), so each connect
    // endpoint gets a socket of its own, sent to only while its monitor reports a peer. A bound
    // socket's pipes end from the connection's side, which lets a started message be read to
    // its end: bind endpoints share one socket and keep ZMQ_IMMEDIATE.
    if (!config.backend.bind.empty()) add_backend(config.backend.bind, {}, false);
    for (const auto& endpoint : config.backend.connect) add_backend({}, {endpoint}, true);
  } else {
    // A pipeline backend never reads: one socket with ZMQ_IMMEDIATE for all its endpoints.
    add_backend(config.backend.bind, config.backend.connect, false);
  }
}

Route::~Route() = default;

Correlation& Route::enable_correlation_requests(const CorrelationConfig& config) {
  correlation_ = std::make_unique<Correlation>(config);
  correlation_->durations = &metrics_.request_duration;
  correlation_->timeouts = &counters_.correlation_timeouts;
  return *correlation_;
}

void Route::open_spool() {
  const SpoolConfig& c = *config_.spool;
  SpoolOptions options;
  options.dir = c.dir;
  options.route = config_.name;
  options.fsync = c.fsync;
  options.fsync_interval = std::chrono::milliseconds(c.fsync_interval_ms);
  options.max_bytes = spool_max_bytes(config_.queue);
  // Generous: a record longer than this reads back as corrupt, so a spool written with a
  // larger max_message_bytes must still replay after the limit is lowered.
  options.max_record_bytes =
      std::max(protocol::kDefaultMaxRecordBytes,
               2 * config_.queue.max_message_bytes + protocol::message_record_overhead(1));
  try {
    spool_ = std::make_unique<Spool>(options);
  } catch (const SpoolError& e) {
    throw StartupError("route " + config_.name + ": " + e.what());
  }
  // Replayed before the frontend is bound: what was accepted before the restart goes first.
  // The queue's bounds do not apply to it (they may have been lowered since).
  const auto now = Clock::now();
  spool_->replay([&](std::uint64_t sequence, std::vector<std::string_view> frames) {
    protocol::Multipart message;
    for (const auto frame : frames) message.push_back(frame);
    queue_.push_back(QueuedMessage{std::move(message), now, sequence, true});
  });
  const SpoolStats& stats = spool_->stats();
  log::info("spool opened", {{"route", config_.name},
                             {"path", spool_->path()},
                             {"fsync", std::string(to_string(c.fsync))},
                             {"replayed", std::to_string(stats.replayed)},
                             {"bytes", std::to_string(stats.bytes_on_disk)}});
  if (stats.corrupt_records > 0) {
    log::warn("spool damage found and cut off (the records before it were replayed)",
              {{"route", config_.name},
               {"corrupt_records", std::to_string(stats.corrupt_records)},
               {"last_error", spool_->last_error()}});
  }
}

void Route::open() {
  if (config_.spool) open_spool();
  const auto start_monitor = [&](zmq::socket_t& socket, Monitor& monitor, const std::string& side) {
    const std::string endpoint = "inproc://tidepool-monitor-" + config_.name + "-" + side;
    // Not the events of each reconnect attempt (delayed, retried, closed): presence needs none
    // of them, and toward an absent peer they would be a stream of messages to read.
    constexpr int kEvents =
        ZMQ_EVENT_ALL & ~(ZMQ_EVENT_CONNECT_DELAYED | ZMQ_EVENT_CONNECT_RETRIED | ZMQ_EVENT_CLOSED);
    if (zmq_socket_monitor(socket.handle(), endpoint.c_str(), kEvents) != 0) {
      throw StartupError("route " + config_.name + ": cannot monitor " + side + ": " +
                         zmq_strerror(zmq_errno()));
    }
    // Read every 100 ms, so the pipe must hold a connection storm's events: unlimited here
    // (0) makes the inproc pipe unlimited. Connected before any bind/connect of the watched
    // socket, so no event is missed.
    monitor.socket.set(zmq::sockopt::rcvhwm, 0);
    monitor.socket.connect(endpoint);
  };
  start_monitor(frontend_, frontend_monitor_, "frontend");
  for (std::size_t i = 0; i < backends_.size(); ++i) {
    start_monitor(backends_[i].socket, backends_[i].monitor, "backend-" + std::to_string(i));
  }

  const auto attach = [&](zmq::socket_t& socket, const std::vector<std::string>& binds,
                          const std::vector<std::string>& connects, const char* side,
                          std::vector<std::string>& endpoints) {
    for (const auto& endpoint : binds) {
      try {
        socket.bind(endpoint);
      } catch (const zmq::error_t& e) {
        throw StartupError("route " + config_.name + ": cannot bind " + side + " " + endpoint +
                           ": " + e.what() +
                           (e.num() == EADDRINUSE ? " (another process listens there)" : ""));
      }
      endpoints.push_back(socket.get(zmq::sockopt::last_endpoint));
    }
    for (const auto& endpoint : connects) {
      try {
        socket.connect(endpoint);
      } catch (const zmq::error_t& e) {
        throw StartupError("route " + config_.name + ": cannot connect " + side + " " + endpoint +
                           ": " + e.what());
      }
      endpoints.push_back(endpoint);
    }
  };
  attach(frontend_, config_.frontend.bind, config_.frontend.connect, "frontend",
         frontend_endpoints_);
  for (auto& backend : backends_) {
    attach(backend.socket, backend.binds, backend.connects, "backend", backend_endpoints_);
  }

  const auto now = Clock::now();
  // Timers start on a grid every route shares, so that the loop wakes once for all routes
  // (on_timer() gives them all the same `now`), not once per route: 1,000 routes opened over
  // a second would otherwise keep it waking every 0.1 ms.
  const auto tick = Clock::time_point((now.time_since_epoch() / kHousekeeping + 1) * kHousekeeping);
  next_periodic_flush_ = tick + std::chrono::milliseconds(config_.flush.interval_ms);
  next_housekeeping_ = tick;
  tokens_updated_ = now;
  tokens_ = 1;
  std::string fronts;
  for (const auto& e : frontend_endpoints_) fronts += (fronts.empty() ? "" : ",") + e;
  std::string backs;
  for (const auto& e : backend_endpoints_) backs += (backs.empty() ? "" : ",") + e;
  log::info("route ready",
            {{"route", config_.name},
             {"frontend", std::string(to_string(config_.frontend.type)) + " " + fronts},
             {"backend", std::string(to_string(config_.backend.type)) + " " + backs}});
}

// ---- polling -------------------------------------------------------------------------------

bool Route::can_read_frontend(bool stopping) const {
  if (stopping) return false;
  // `block`: stop reading; libzmq's high-water marks then push back on the clients.
  return config_.queue.overflow != Overflow::kBlock || !queue_.full();
}

std::size_t Route::in_flight() const {
  if (correlation_) return correlation_->in_flight.size();
  return pending_.size();
}

bool Route::may_forward_more() const {
  return config_.flush.max_in_flight == 0 || in_flight() < config_.flush.max_in_flight;
}

void Route::refill_tokens(Clock::time_point now) {
  const double rate = config_.flush.drain_rate;
  if (rate <= 0) return;
  // A tenth of a second of burst (at least one message) keeps the rate smooth.
  const double burst = std::max(1.0, rate / 10);
  tokens_ = std::min(burst, tokens_ + seconds(now - tokens_updated_) * rate);
  tokens_updated_ = now;
}

bool Route::can_forward(Clock::time_point now) {
  if (!may_forward_more()) return false;
  if (config_.flush.drain_rate <= 0) return true;
  refill_tokens(now);
  return tokens_ >= 1;
}

bool Route::backend_up() const {
  return std::any_of(backends_.begin(), backends_.end(),
                     [](const Backend& b) { return b.monitor.presence.up(); });
}

void Route::poll_items(std::vector<zmq::pollitem_t>& items, bool stopping) {
  poll_slots_.clear();
  const short front_events = can_read_frontend(stopping) ? ZMQ_POLLIN : 0;
  items.push_back({frontend_.handle(), 0, front_events, 0});
  poll_slots_.emplace_back(PollSlot::kFrontend, 0);
  // Without a token (drain_rate) the timer wakes the loop instead: POLLOUT would spin.
  const bool has_token = config_.flush.drain_rate <= 0 || tokens_ >= 1;
  const bool want_out = !queue_.empty() && may_forward_more() && has_token;
  for (std::size_t i = 0; i < backends_.size(); ++i) {
    Backend& backend = backends_[i];
    short back_events = 0;
    // A gated socket is writable without a peer: asking then would spin.
    if (want_out && backend.can_take() && has_slot(backend)) back_events |= ZMQ_POLLOUT;
    // Always read: a reply a client cannot take waits in that client's own FIFO, so no client
    // holds back another, and the workers' heartbeats keep being read.
    if (config_.request_reply()) back_events |= ZMQ_POLLIN;
    items.push_back({backend.socket.handle(), 0, back_events, 0});
    poll_slots_.emplace_back(PollSlot::kBackend, i);
    if (backend.gated && !backend.monitor.presence.up()) {
      // Only its monitor tells when a gated socket has a peer: watched while it has none, so
      // the connect flush starts at the handshake, not at the next housekeeping tick.
      items.push_back({backend.monitor.socket.handle(), 0, ZMQ_POLLIN, 0});
      poll_slots_.emplace_back(PollSlot::kBackendMonitor, i);
    }
  }
}

void Route::handle(const zmq::pollitem_t* items, Clock::time_point now, bool stopping) {
  bool writable = false;
  bool new_peer = false;
  bool frontend_readable = false;
  for (std::size_t k = 0; k < poll_slots_.size(); ++k) {
    const auto [slot, index] = poll_slots_[k];
    const short revents = items[k].revents;
    if (slot == PollSlot::kFrontend) {
      frontend_readable = (revents & ZMQ_POLLIN) != 0;
    } else if (slot == PollSlot::kBackendMonitor) {
      if (revents & ZMQ_POLLIN) read_backend_monitor(index, now);
    } else {
      if (revents & ZMQ_POLLIN) read_replies(backends_[index], now);
      if (revents & ZMQ_POLLOUT) {
        writable = true;
        // With ZMQ_IMMEDIATE a socket only turns writable once a peer's handshake is done;
        // libzmq attaches the pipe just before it emits the monitor event, so poll() can see
        // the new peer's room before the event arrives. That drain is the connect flush.
        if (!backends_[index].monitor.presence.up()) new_peer = true;
      }
    }
  }
  if (writable) flush(new_peer ? FlushTrigger::kConnect : FlushTrigger::kWritable, now);
  if (frontend_readable && can_read_frontend(stopping)) read_frontend(now);
}

// ---- requests: frontend → queue → backend ----------------------------------------------------

void Route::read_frontend(Clock::time_point now) {
  for (int n = 0; n < kReadBatch && can_read_frontend(false); ++n) {
    protocol::Multipart message;
    if (!recv_multipart(frontend_, message)) break;
    accept(std::move(message), now);
  }
  commit_spool(now);
}

// Group commit: the batch's records are written by accept() and synced here at once (fsync
// always), before anything can forward a message of the batch or publish it as queued: flush(),
// the timers and publish() run only after handle() returns, and while a batch's messages are
// in the queue the fast path is closed (it needs an empty queue).
void Route::commit_spool(Clock::time_point now) {
  if (!spool_ || spool_->commit()) return;
  // Not durable, and the spool took the records back: refuse their messages as a write error
  // would have, one by one. They are the queue's tail (a batch is appended in order; a
  // message evicted meanwhile was counted as evicted).
  const auto [messages, bytes] = queue_.remove_spooled_after(spool_->synced_sequence());
  drop(DropReason::kSpoolError, messages, now,
       "spool fsync failed: the messages of this read batch are refused", spool_->last_error());
}

void Route::accept(protocol::Multipart&& message, Clock::time_point now) {
  counters_.received_messages += 1;
  counters_.received_bytes += message.bytes();
  if (message.bytes() > config_.queue.max_message_bytes) {
    drop(DropReason::kTooLarge, 1, now, "message larger than queue.max_message_bytes dropped");
    return;
  }
  if (config_.request_reply() && !protocol::split_envelope(message)) {
    drop(DropReason::kMalformed, 1, now,
         "request without a REQ-style envelope (routing id, empty delimiter, body) dropped");
    return;
  }
  if (results_of_ != nullptr) note_result(message, now);

  // Fast path: nothing queued ahead of it, so sending now cannot reorder.
  if (queue_.empty() && can_forward(now) && forward(message, now, nullptr)) {
    spool_forwarded(0);  // it pushes spooled messages before it out of libzmq's pipes
    metrics_.queue_wait.observe(0);
    return;
  }
  std::uint64_t sequence = 0;
  if (spool_) {
    // On disk before it counts as queued (see commit_spool()); a message the queue would
    // refuse is not written.
    if (!queue_.would_accept(message.bytes())) {
      drop(DropReason::kQueueFull, 1, now, "queue full: message refused");
      return;
    }
    // Durable once commit_spool() has synced the whole read batch.
    const auto appended = spool_->append_uncommitted(message);
    if (!appended) {
      drop(DropReason::kSpoolError, 1, now, "spool cannot store the message: refused",
           spool_->last_error());
      return;
    }
    sequence = *appended;
  }
  const OfferResult offered = queue_.offer(std::move(message), now, sequence);
  if (offered.evicted > 0) {
    drop(DropReason::kEvicted, offered.evicted, now, "queue full: oldest messages evicted");
    spool_done(offered.evicted_sequence);
  }
  if (!offered.accepted) drop(DropReason::kQueueFull, 1, now, "queue full: message refused");
}

bool Route::forward(protocol::Multipart& message, Clock::time_point now,
                    const QueuedMessage* origin) {
  const std::size_t bytes = message.bytes();
  bool sent = false;
  // Round-robin over the backends that can take it now.
  for (std::size_t tried = 0; tried < backends_.size() && !sent; ++tried) {
    const std::size_t index = (next_backend_ + tried) % backends_.size();
    Backend& backend = backends_[index];
    if (!backend.can_take() || !has_slot(backend)) continue;
    sent = config_.request_reply() ? send_request(index, message, now, origin)
                                   : send_message(backend, message, now);
    if (sent) next_backend_ = (index + 1) % backends_.size();
  }
  if (!sent) return false;
  message.clear();
  counters_.forwarded_messages += 1;
  counters_.forwarded_bytes += bytes;
  if (config_.flush.drain_rate > 0) tokens_ -= 1;
  return true;
}

bool Route::has_slot(const Backend& backend) const {
  const std::size_t limit = config_.flush.max_in_flight;
  if (limit == 0 || !config_.request_reply()) return true;
  // Each backend socket with a peer holds at most its share of max_in_flight, so a worker host
  // that stops answering (noticed only at its heartbeat timeout) holds no more than its share
  // and the others keep working.
  std::size_t up = 0;
  for (const auto& b : backends_) up += b.monitor.presence.up() ? 1U : 0U;
  up = std::max<std::size_t>(up, 1);
  return backend.in_flight < (limit + up - 1) / up;
}

bool Route::send_request(std::size_t backend, protocol::Multipart& message, Clock::time_point now,
                         const QueuedMessage* origin) {
  zmq::socket_t& socket = backends_[backend].socket;
  const std::size_t frames = message.size();
  // [routing id, sequence, rest of the envelope, "", body…]: the routing id is copied before
  // libzmq takes it, the other frames after the first send proved there is room.
  zmq::message_t routing_id;
  routing_id.copy(message[0]);
  if (zmq_msg_send(message[0].handle(), socket.handle(), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
    if (zmq_errno() == EAGAIN) return false;
    throw zmq::error_t();
  }
  const std::uint64_t sequence = ++next_sequence_;
  PendingRequest pending{{}, now, backend};
  if (origin != nullptr) {
    pending.spool_sequence = origin->spool_sequence;
    pending.orphan = origin->replayed && names_a_connection(routing_id.to_string_view());
    if (spool_) delivery_.awaiting(pending.spool_sequence);
  }
  pending.request.push_back(std::move(routing_id));
  socket.send(zmq::buffer(&sequence, sizeof sequence), zmq::send_flags::sndmore);
  for (std::size_t i = 1; i < frames; ++i) {
    zmq::message_t copy;
    copy.copy(message[i]);  // shares the payload (reference counted), no byte copy
    pending.request.push_back(std::move(copy));
    socket.send(message[i], i + 1 < frames ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
  pending_.emplace(sequence, std::move(pending));
  backends_[backend].in_flight += 1;
  return true;
}

bool Route::send_message(Backend& backend, protocol::Multipart& message, Clock::time_point now) {
  const std::size_t frames = message.size();
  // The body moves into libzmq with the send; a reference-counted handle on it (no byte
  // copy) lets the correlation key be read once the send succeeded, not on every attempt
  // that finds the backend full (a 9 MB body takes ~12 ms to scan).
  zmq::message_t body;
  if (correlation_) body.copy(message[frames - 1]);
  if (send_multipart(backend.socket, message) != SendResult::kSent) return false;
  if (correlation_) {
    const auto key = protocol::extract_field({static_cast<const char*>(body.data()), body.size()},
                                             correlation_->config.key);
    if (key && correlation_->in_flight.add(*key, now)) counters_.correlation_timeouts += 1;
  }
  return true;
}

void Route::flush(FlushTrigger trigger, Clock::time_point now) {
  if (queue_.empty()) return;
  // The timer firing during an outage is not a flush: there is no one to flush to.
  if (trigger == FlushTrigger::kPeriodic && !backend_up()) return;
  counters_.flushes[static_cast<std::size_t>(trigger)] += 1;
  std::uint64_t moved = 0;
  const auto ttl = std::chrono::milliseconds(config_.queue.ttl_ms);
  while (!queue_.empty() && can_forward(now)) {
    QueuedMessage head = queue_.pop();
    if (config_.queue.ttl_ms > 0 && now - head.enqueued > ttl) {
      drop(DropReason::kExpired, 1, now, "message older than queue.ttl_ms dropped");
      spool_done(head.spool_sequence);
      continue;
    }
    if (!forward(head.message, now, &head)) {
      queue_.push_front(std::move(head));
      break;
    }
    // Done only once it has left libzmq's pipes, which are in this process: a crash loses
    // nothing spooled, and delivers again (duplicates) at most what the trail holds. A
    // request-reply request is done when its reply arrives (send_request(), deliver_reply()).
    if (!config_.request_reply()) spool_forwarded(head.spool_sequence);
    metrics_.queue_wait.observe(seconds(now - head.enqueued));
    ++moved;
  }
  counters_.flushed_messages[static_cast<std::size_t>(trigger)] += moved;
}

// What libzmq may hold in this process toward one backend peer beyond its pipe's high-water
// mark: the engine's encoder batch (out_batch_size, 8 KiB), which a write the kernel took only
// in part leaves filled; a message costs at least 2 bytes in it (a 0-byte frame's header).
constexpr std::uint64_t kEngineBatchMessages = 8192 / 2;

void Route::spool_forwarded(std::uint64_t sequence) {
  if (!spool_) return;
  // libzmq's PUSH/DEALER spreads messages over the peers' pipes, so a message has left them
  // once more than all of them can hold was sent after it. Data the kernel took survives
  // kill -9 (the kernel still sends it), so only libzmq's share counts.
  std::uint64_t peers = 0;
  for (const auto& backend : backends_) peers += backend.monitor.presence.peers();
  delivery_.set_trail(std::max<std::uint64_t>(peers, 1) *
                      (static_cast<std::uint64_t>(config_.backend.hwm) + kEngineBatchMessages));
  delivery_.forwarded(sequence);
  spool_->mark_done(delivery_.safe());
}

// ---- replies: backend → frontend (request-reply) ---------------------------------------------

void Route::read_replies(Backend& backend, Clock::time_point now) {
  for (int n = 0; n < kReadBatch; ++n) {
    protocol::Multipart reply;
    if (!recv_multipart(backend.socket, reply)) return;
    deliver_reply(std::move(reply), now);
  }
}

void Route::deliver_reply(protocol::Multipart&& reply, Clock::time_point now) {
  // Expected: [routing id, sequence (8 bytes), rest of the envelope, "", body…].
  std::uint64_t sequence = 0;
  if (reply.size() < 4 || reply[1].size() != sizeof sequence) {
    drop(DropReason::kMalformed, 1, now,
         "reply without the envelope tidepool sent (routing id, sequence, delimiter) dropped");
    return;
  }
  std::memcpy(&sequence, reply[1].data(), sizeof sequence);
  const auto pending = pending_.find(sequence);
  if (pending == pending_.end()) {
    // Answered already: the request was sent again after a backend peer was lost, and both
    // copies were answered. The client gets exactly one reply.
    log::debug("duplicate reply ignored", {{"route", config_.name}});
    return;
  }
  metrics_.request_duration.observe(seconds(now - pending->second.sent));
  const bool orphan = pending->second.orphan;
  spool_finished(pending->second.spool_sequence);
  erase_pending(pending);
  protocol::Multipart to_client;
  for (std::size_t i = 0; i < reply.size(); ++i) {
    if (i != 1) to_client.push_back(std::move(reply[i]));
  }
  if (!protocol::split_envelope(to_client)) {
    drop(DropReason::kMalformed, 1, now, "reply without an empty delimiter frame dropped");
    return;
  }
  if (orphan) {
    drop(DropReason::kUnroutable, 1, now,
         "reply to a request accepted before a restart dropped: its client had no routing id of "
         "its own, and the connection that id named ended with the old process");
    return;
  }
  // Behind the replies already waiting for this client, if any: each client gets its own in
  // order.
  if (!replies_.waiting(protocol::routing_id(to_client))) {
    const SendResult result = send_multipart(frontend_, to_client);
    if (result == SendResult::kSent) {
      counters_.replies += 1;
      return;
    }
    if (result == SendResult::kUnroutable) {
      drop(DropReason::kUnroutable, 1, now, "reply for a client that has gone dropped");
      return;
    }
    // A client that starts waiting is retried soon, whatever others taught the back-off.
    reply_retry_ = kReplyRetry;
    next_reply_retry_ =
        replies_.empty() ? now + kReplyRetry : std::min(next_reply_retry_, now + kReplyRetry);
  }
  const std::size_t dropped = replies_.push(std::move(to_client), now);
  if (dropped > 0) {
    drop(DropReason::kSlowClient, dropped, now,
         "client not reading its replies: its oldest waiting replies dropped "
         "(replies.max_messages, replies.max_bytes)");
  }
}

void Route::erase_pending(Pending::iterator it) {
  backends_[it->second.backend].in_flight -= 1;
  pending_.erase(it);
}

void Route::requeue_in_flight(std::size_t backend, Clock::time_point now) {
  // libzmq does not say which of a socket's peers held which request, so every unanswered
  // request sent through that socket goes back to the head of the queue, oldest first; a
  // reply that still comes for the old copy is recognised by its sequence and ignored.
  std::vector<Pending::iterator> lost;
  for (auto it = pending_.begin(); it != pending_.end(); ++it) {
    if (it->second.backend == backend) lost.push_back(it);
  }
  if (lost.empty()) return;
  // They count against the queue's bounds like new arrivals. `block` keeps them all (the
  // frontend then stays unread until the queue is under its bounds again); the drop policies
  // keep what fits: drop-newest refuses the newest of them, drop-oldest the oldest.
  const bool block = config_.queue.overflow == Overflow::kBlock;
  const bool keep_oldest = config_.queue.overflow != Overflow::kDropOldest;
  std::size_t count = queue_.size();
  std::size_t bytes = queue_.bytes();
  std::vector<bool> keep(lost.size(), true);
  for (std::size_t k = 0; k < lost.size() && !block; ++k) {
    const std::size_t i = keep_oldest ? k : lost.size() - 1 - k;
    const std::size_t size = lost[i]->second.request.bytes();
    keep[i] = count < queue_.max_messages() && bytes + size <= queue_.max_bytes();
    if (keep[i]) {
      count += 1;
      bytes += size;
    }
  }
  std::size_t refused = 0;
  for (std::size_t k = lost.size(); k-- > 0;) {
    PendingRequest& request = lost[k]->second;
    if (keep[k]) {
      // Its spool record stays outstanding (not done) until a reply comes.
      queue_.push_front(
          QueuedMessage{std::move(request.request), now, request.spool_sequence, request.orphan});
    } else {
      spool_finished(request.spool_sequence);
      ++refused;
    }
    erase_pending(lost[k]);
  }
  const Backend& lost_from = backends_[backend];
  log::info("backend peer lost: unanswered requests queued again",
            {{"route", config_.name},
             {"endpoint", lost_from.connects.empty() ? "bound" : lost_from.connects.front()},
             {"requests", std::to_string(lost.size() - refused)}});
  if (refused > 0) {
    drop(keep_oldest ? DropReason::kQueueFull : DropReason::kEvicted, refused, now,
         "queue full: requests of a lost backend peer could not be queued again");
  }
}

void Route::retry_replies(Clock::time_point now) {
  const auto outcome = replies_.drain(
      [this](protocol::Multipart& reply) { return send_multipart(frontend_, reply); });
  counters_.replies += outcome.delivered;
  const bool moved = outcome.delivered > 0 || outcome.unroutable > 0;
  reply_retry_ = moved ? kReplyRetry
                       : std::clamp<Clock::duration>(2 * reply_retry_, kReplyRetry, kReplyRetryMax);
  next_reply_retry_ = now + reply_retry_;
  if (outcome.unroutable > 0) {
    drop(DropReason::kUnroutable, outcome.unroutable, now,
         "reply for a client that has gone dropped");
  }
}

// ---- correlation -----------------------------------------------------------------------------

void Route::note_result(const protocol::Multipart& message, Clock::time_point now) {
  const auto key =
      protocol::extract_field(message.frame_view(message.size() - 1), results_of_->config.key);
  std::optional<Clock::time_point> sent;
  if (key) sent = results_of_->in_flight.complete(std::string(*key));
  if (sent) {
    results_of_->durations->observe(seconds(now - *sent));
  } else {
    counters_.uncorrelated_results += 1;
  }
}

// ---- presence ----------------------------------------------------------------------------------

namespace {

struct MonitorEvent {
  std::uint16_t id = 0;
  std::uint32_t value = 0;  // an fd for the events that carry one
  std::string address;
};

std::optional<MonitorEvent> next_monitor_event(zmq::socket_t& monitor) {
  while (true) {
    zmq::message_t head;
    if (!monitor.recv(head, zmq::recv_flags::dontwait)) return std::nullopt;
    zmq::message_t address;
    if (head.more()) (void)monitor.recv(address, zmq::recv_flags::none);
    if (head.size() < 6) continue;
    MonitorEvent event;
    std::memcpy(&event.id, head.data(), sizeof event.id);
    std::memcpy(&event.value, static_cast<const char*>(head.data()) + 2, sizeof event.value);
    event.address = address.to_string();
    return event;
  }
}

bool is_handshake_failure(std::uint16_t event) {
  return event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
         event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL || event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
}

}  // namespace

void Route::read_frontend_monitor(Clock::time_point now) {
  for (int n = 0; n < kReadBatch; ++n) {
    const auto event = next_monitor_event(frontend_monitor_.socket);
    if (!event) return;
    const std::uint64_t disconnects = frontend_monitor_.presence.disconnects();
    frontend_monitor_.presence.on_event(event->id, event->value);
    if (frontend_monitor_.presence.disconnects() > disconnects) {
      // libzmq ends a connection that sends a frame over ZMQ_MAXMSGSIZE with nothing but this
      // event, as it ends every other one: no refusal can be told apart, so each is counted
      // and logged (rate-limited) as a disconnect.
      disconnect_log_.warn(now,
                           "frontend peer disconnected (the client left, its connection broke, "
                           "or it sent a frame over twice queue.max_message_bytes)",
                           {{"route", config_.name}, {"endpoint", event->address}});
    }
    counters_.frontend_disconnects = frontend_monitor_.presence.disconnects();
    if (is_handshake_failure(event->id)) {
      log_handshake_failure(classify_handshake_failure(event->id, event->value), false,
                            event->address, now);
    }
    counters_.frontend_handshake_failures = frontend_monitor_.presence.failed_handshakes();
  }
}

void Route::read_backend_monitor(std::size_t index, Clock::time_point now) {
  Backend& backend = backends_[index];
  for (int n = 0; n < kReadBatch; ++n) {
    const auto event = next_monitor_event(backend.monitor.socket);
    if (!event) return;
    const bool was_up = backend_up();
    const auto change = backend.monitor.presence.on_event(event->id, event->value);
    if (is_handshake_failure(event->id)) {
      log_handshake_failure(classify_handshake_failure(event->id, event->value), true,
                            event->address, now);
    }
    counters_.backend_connects = 0;
    counters_.backend_disconnects = 0;
    counters_.backend_handshake_failures = {};
    for (const auto& b : backends_) {
      counters_.backend_connects += b.monitor.presence.connects();
      counters_.backend_disconnects += b.monitor.presence.disconnects();
      for (std::size_t r = 0; r < kHandshakeFailures; ++r) {
        counters_.backend_handshake_failures[r] += b.monitor.presence.failed_handshakes()[r];
      }
    }
    const bool lost_peer = backend.monitor.presence.disconnects() > backend.disconnects_seen;
    backend.disconnects_seen = backend.monitor.presence.disconnects();
    if (lost_peer && config_.request_reply()) {
      requeue_in_flight(index, now);
      // A bound socket's pipe to the lost peer leaves the socket only a few libzmq commands
      // after the loss is reported (the teardown passes through libzmq's I/O thread); a
      // request sent through the socket before that can go into the dead pipe and wait for a
      // reply that never comes. So nothing goes through it until the next housekeeping tick,
      // 100 ms on, when the teardown has long happened. A gated socket keeps its pipe across
      // connections: what waits there goes to the next one, and the copy sent again makes
      // it a duplicate (ignored), not a loss.
      if (!backend.gated) backend.paused = true;
    }
    if (change == Presence::Change::kUp) {
      if (!was_up) {
        log::info("backend up",
                  {{"route", config_.name}, {"queued", std::to_string(queue_.size())}});
      }
      flush(FlushTrigger::kConnect, now);
    } else if (change == Presence::Change::kDown && !backend_up()) {
      log::warn("backend down: queueing", {{"route", config_.name}});
      // ZMQ_IMMEDIATE drops a pipe with its connection (libzmq session_base reconnect()):
      // with no peer left, nothing forwarded is held in this process any more.
      if (spool_ && !config_.request_reply()) {
        delivery_.all_delivered();
        spool_->mark_done(delivery_.safe());
      }
    }
  }
}

void Route::log_handshake_failure(HandshakeFailure failure, bool backend,
                                  const std::string& address, Clock::time_point now) {
  const bool security = failure == HandshakeFailure::kMechanism ||
                        failure == HandshakeFailure::kCryptographic ||
                        failure == HandshakeFailure::kUnauthorized;
  if (!security) {
    log::debug("peer handshake failed", {{"route", config_.name},
                                         {"side", backend ? "backend" : "frontend"},
                                         {"reason", to_label(failure)},
                                         {"endpoint", address}});
  } else if (backend) {
    handshake_log_.warn(
        now, "backend handshake refused: the CURVE settings or keys do not match",
        {{"route", config_.name}, {"reason", to_label(failure)}, {"endpoint", address}});
  } else if (failure != HandshakeFailure::kUnauthorized) {
    // (Unauthorized keys are logged, with the key, by the ZAP handler.)
    handshake_log_.warn(
        now, "client refused: security handshake failed",
        {{"route", config_.name}, {"reason", to_label(failure)}, {"endpoint", address}});
  }
}

// ---- timers, shutdown, reporting ---------------------------------------------------------------

Clock::time_point Route::next_deadline(Clock::time_point now) const {
  Clock::time_point next = std::min(next_periodic_flush_, next_housekeeping_);
  if (!replies_.empty()) next = std::min(next, next_reply_retry_);
  if (spool_ && spool_->needs_tick()) {
    next = std::min(next, now + std::chrono::milliseconds(config_.spool->fsync_interval_ms));
  }
  if (config_.flush.drain_rate > 0 && !queue_.empty() && tokens_ < 1) {
    const auto wait = std::chrono::duration<double>((1 - tokens_) / config_.flush.drain_rate);
    next = std::min(next, now + std::chrono::duration_cast<Clock::duration>(wait));
  }
  return next;
}

void Route::on_timer(Clock::time_point now) {
  // Cheap when there is nothing to do: writes the lazy done record, fsyncs when due.
  if (spool_) spool_->tick(now);
  if (!replies_.empty() && now >= next_reply_retry_) retry_replies(now);
  if (now >= next_periodic_flush_) {
    flush(FlushTrigger::kPeriodic, now);
    next_periodic_flush_ = now + std::chrono::milliseconds(config_.flush.interval_ms);
  }
  if (config_.flush.drain_rate > 0 && !queue_.empty()) flush(FlushTrigger::kWritable, now);
  if (now < next_housekeeping_) return;
  next_housekeeping_ = now + kHousekeeping;
  // Monitor events are read here, not polled: every socket in zmq_poll costs system calls
  // on each pass, and presence needs no finer clock (the connect flush itself is driven by
  // the backend turning writable, see handle()).
  read_frontend_monitor(now);
  for (auto& backend : backends_) backend.paused = false;  // paused a tick ago, if at all
  for (std::size_t i = 0; i < backends_.size(); ++i) read_backend_monitor(i, now);
  if (config_.queue.ttl_ms > 0) {
    std::uint64_t last_sequence = 0;
    const auto [messages, bytes] =
        queue_.expire(now, std::chrono::milliseconds(config_.queue.ttl_ms), &last_sequence);
    if (messages > 0) {
      drop(DropReason::kExpired, messages, now, "message older than queue.ttl_ms dropped");
      spool_done(last_sequence);
    }
  }
  if (const std::size_t expired = replies_.expire(now); expired > 0) {
    drop(DropReason::kSlowClient, expired, now,
         "replies waited longer than replies.timeout_ms for a client that does not read: "
         "dropped");
  }
  while (!pending_.empty() && now - pending_.begin()->second.sent > kReplyTimeout) {
    spool_finished(pending_.begin()->second.spool_sequence);
    erase_pending(pending_.begin());
    counters_.reply_timeouts += 1;
  }
  if (correlation_) {
    counters_.correlation_timeouts += correlation_->in_flight.expire(
        now - std::chrono::milliseconds(correlation_->config.timeout_ms));
  }
  for (auto& limiter : drop_log_) limiter.tick(now);
  handshake_log_.tick(now);
  disconnect_log_.tick(now);
}

bool Route::drained() const { return queue_.empty() && replies_.empty() && pending_.empty(); }

void Route::drop_remaining(DropReason reason) {
  std::size_t spooled = 0;
  const auto [messages, bytes] = queue_.clear(&spooled);
  if (spool_) {
    if (spooled > 0) {
      log::info(std::to_string(spooled) + " messages kept in the spool",
                {{"route", config_.name},
                 {"messages", std::to_string(spooled)},
                 {"path", spool_->path()}});
    }
    if (!spool_->sync()) {
      log::error("spool sync at exit failed",
                 {{"route", config_.name}, {"error", spool_->last_error()}});
    }
  }
  // Without a spool this is everything queued. With one, every queued message has a record
  // (requests queued again after a loss keep theirs) and stays for the next start.
  if (messages > spooled) {
    drop(reason, messages - spooled, Clock::now(), "messages still queued at exit dropped");
  }
  if (!replies_.empty()) {
    drop(reason, replies_.clear(), Clock::now(), "replies still undelivered at exit dropped");
  }
}

void Route::close(std::chrono::milliseconds backend_linger) {
  frontend_.set(zmq::sockopt::linger, 0);
  zmq_socket_monitor(frontend_.handle(), nullptr, 0);
  frontend_.close();
  frontend_monitor_.socket.close();
  for (auto& backend : backends_) {
    backend.socket.set(zmq::sockopt::linger, static_cast<int>(backend_linger.count()));
    zmq_socket_monitor(backend.socket.handle(), nullptr, 0);
    backend.socket.close();
    backend.monitor.socket.close();
  }
}

void Route::drop(DropReason reason, std::uint64_t count, Clock::time_point now,
                 std::string_view why, std::string_view error) {
  counters_.dropped[static_cast<std::size_t>(reason)] += count;
  auto& limiter = drop_log_[static_cast<std::size_t>(reason)];
  if (error.empty()) {
    limiter.warn(
        now, why,
        {{"route", config_.name}, {"reason", to_label(reason)}, {"count", std::to_string(count)}},
        count);
  } else {
    limiter.warn(now, why,
                 {{"route", config_.name},
                  {"reason", to_label(reason)},
                  {"count", std::to_string(count)},
                  {"error", std::string(error)}},
                 count);
  }
}

void Route::publish(Clock::time_point now) {
  RouteGauges gauges;
  gauges.queue_messages = static_cast<double>(queue_.size());
  gauges.queue_bytes = static_cast<double>(queue_.bytes());
  gauges.queue_capacity_messages = static_cast<double>(queue_.max_messages());
  gauges.queue_capacity_bytes = static_cast<double>(queue_.max_bytes());
  if (const auto oldest = queue_.oldest()) gauges.queue_oldest_age_seconds = seconds(now - *oldest);
  std::size_t backend_peers = 0;
  for (const auto& backend : backends_) backend_peers += backend.monitor.presence.peers();
  gauges.backend_up = backend_up() ? 1 : 0;
  gauges.backend_peers = static_cast<double>(backend_peers);
  gauges.frontend_peers = static_cast<double>(frontend_monitor_.presence.peers());
  gauges.in_flight = static_cast<double>(in_flight());
  if (spool_) {
    const SpoolStats& stats = spool_->stats();
    gauges.spool_bytes = static_cast<double>(stats.bytes_on_disk);
    counters_.spool_replayed = stats.replayed;
    counters_.spool_corrupt_records = stats.corrupt_records;
  }
  metrics_.publish(counters_, gauges);
}

nlohmann::json Route::status(Clock::time_point now) const {
  nlohmann::json dropped = nlohmann::json::object();
  for (std::size_t i = 0; i < kDropReasons; ++i) {
    dropped[to_label(static_cast<DropReason>(i))] = counters_.dropped[i];
  }
  nlohmann::json flushes = nlohmann::json::object();
  for (std::size_t i = 0; i < kFlushTriggers; ++i) {
    flushes[to_label(static_cast<FlushTrigger>(i))] = counters_.flushes[i];
  }
  const auto oldest = queue_.oldest();
  std::size_t backend_peers = 0;
  for (const auto& backend : backends_) backend_peers += backend.monitor.presence.peers();
  nlohmann::json spool = nullptr;
  if (spool_) {
    const SpoolStats& stats = spool_->stats();
    spool = {{"path", spool_->path()},
             {"fsync", to_string(config_.spool->fsync)},
             {"bytes", stats.bytes_on_disk},
             {"live_messages", stats.live_messages},
             {"live_bytes", stats.live_bytes},
             {"replayed", stats.replayed},
             {"corrupt_records", stats.corrupt_records},
             {"write_errors", stats.write_errors},
             {"fsyncs", stats.fsyncs},
             {"last_error", spool_->last_error()}};
  }
  return {
      {"name", config_.name},
      {"mode", config_.request_reply() ? "request-reply" : "pipeline"},
      {"frontend",
       {{"type", to_string(config_.frontend.type)},
        {"endpoints", frontend_endpoints_},
        {"peers", frontend_monitor_.presence.peers()}}},
      {"backend",
       {{"type", to_string(config_.backend.type)},
        {"endpoints", backend_endpoints_},
        {"peers", backend_peers},
        {"up", backend_up()}}},
      {"queue",
       {{"messages", queue_.size()},
        {"bytes", queue_.bytes()},
        {"capacity_messages", queue_.max_messages()},
        {"capacity_bytes", queue_.max_bytes()},
        {"oldest_age_seconds", oldest ? seconds(now - *oldest) : 0.0},
        {"overflow", to_string(config_.queue.overflow)}}},
      {"in_flight", in_flight()},
      {"reply_backlog", replies_.messages()},
      {"reply_backlog_clients", replies_.clients()},
      {"received", counters_.received_messages},
      {"forwarded", counters_.forwarded_messages},
      {"replies", counters_.replies},
      {"dropped", dropped},
      {"flushes", flushes},
      {"spool", spool},
  };
}

}  // namespace tidepool::proxy
