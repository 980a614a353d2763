// The route core (route.h): polling, the request path frontend → queue → backend, timers,
// drops and logs. Presence handling is in route_presence.cc, the reply path in
// route_replies.cc, what a route publishes in route_report.cc.
#include "tidepool/proxy/route.h"

#include <algorithm>

#include "route_batch.h"
#include "tidepool/protocol/envelope.h"

namespace tidepool::proxy {
namespace {

using namespace std::chrono_literals;
using route_batch::handle_batch;
using route_batch::kReadBatch;

// A request-reply request whose reply never comes (its worker died) stops counting as in
// flight after this, and is counted as a timeout, so max_in_flight cannot wedge.
constexpr auto kReplyTimeout = 10min;
// TTL, in-flight expiry, the end of a pause after a lost peer, and log summaries need no finer
// clock than this while the route holds something (queued messages, requests awaiting
// replies)...
constexpr auto kHousekeeping = 100ms;
// ...and a route that holds nothing needs none finer than this (only log summaries are left):
// 1,000 idle routes then wake the loop once a second, not ten times. Presence does not wait for
// either: monitors are polled (poll_items()). A multiple of kHousekeeping: both keep one grid.
constexpr auto kIdleHousekeeping = 1000ms;
// libzmq's own per-frame cap (ZMQ_MAXMSGSIZE) is set above max_message_bytes: a frame just
// over the limit is read, counted as too_large and dropped; only a frame this much larger is
// refused by libzmq itself, which closes that peer's connection to protect memory.
constexpr std::int64_t kHardLimitFactor = 2;

// The next point after `t` on a grid of `period` that every route shares, so that the loop
// wakes once for all routes (on_timer() gives them all the same `now`), not once per route.
Clock::time_point next_on_grid(Clock::time_point t, Clock::duration period) {
  return Clock::time_point((t.time_since_epoch() / period + 1) * period);
}

std::int64_t max_frame(const RouteConfig& config) {
  return static_cast<std::int64_t>(config.queue.max_message_bytes) * kHardLimitFactor;
}

}  // namespace

Route::Route(zmq::context_t& context, const RouteConfig& config, Metrics& metrics)
    : config_(config),
      may_hold_(config.queue.overflow == Overflow::kBlock && !config.request_reply() &&
                !config.spool && config.flush.drain_rate <= 0),
      frontend_(context, zmq_type(config.frontend.type)),
      frontend_monitor_(context),
      backends_(context, config, max_frame(config)),
      queue_(config),
      metrics_(metrics, config.name),
      hold_(config.backend.hwm),
      drain_limit_(config.flush.drain_rate, config.flush.max_in_flight) {
  // `block` leaves the frontend unread while the queue is full.
  configure_socket(frontend_, config.frontend, config.name,
                   SocketRole{.max_frame = max_frame(config),
                              .may_be_unread = config.queue.overflow == Overflow::kBlock});
  if (config.request_reply()) request_reply_.emplace(config.replies, backends_.size());
}

Route::~Route() = default;

Correlation& Route::enable_correlation_requests(const CorrelationConfig& config) {
  correlation_ = std::make_unique<Correlation>(config, metrics_.request_duration);
  return *correlation_;
}

void Route::open_spool() {
  // Replayed before the frontend is bound: what was accepted before the restart goes first.
  queue_.open(Clock::now());
  const Spool* spool = queue_.spool();
  if (spool == nullptr) return;
  const SpoolStats& stats = spool->stats();
  log::info("spool opened", {{"route", config_.name},
                             {"path", spool->path()},
                             {"fsync", std::string(to_string(config_.spool->fsync))},
                             {"replayed", std::to_string(stats.replayed)},
                             {"bytes", std::to_string(stats.bytes_on_disk)}});
  if (stats.corrupt_records > 0) {
    log::warn("spool damage found and cut off (the records before it were replayed)",
              {{"route", config_.name},
               {"corrupt_records", std::to_string(stats.corrupt_records)},
               {"last_error", spool->last_error()}});
  }
}

void Route::open() {
  open_spool();
  frontend_monitor_.start(frontend_, config_.name, "frontend");
  frontend_fd_ = frontend_.get(zmq::sockopt::fd);
  attach(frontend_, config_.frontend.bind, config_.frontend.connect, config_.name, "frontend",
         frontend_endpoints_);
  backends_.open(config_.name, backend_endpoints_);

  const auto now = Clock::now();
  // Timers start on the shared grid: 1,000 routes opened over a second would otherwise keep
  // the loop waking every 0.1 ms.
  const auto tick = next_on_grid(now, kHousekeeping);
  next_periodic_flush_ = tick + std::chrono::milliseconds(config_.flush.interval_ms);
  last_housekeeping_ = tick - kHousekeeping;
  drain_limit_.start(now);
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

const char* to_label(FrontendPause pause) {
  switch (pause) {
    case FrontendPause::kQueueFull:
      return "queue_full";
    case FrontendPause::kHold:
      return "hold";
    case FrontendPause::kNone:
      break;
  }
  return nullptr;
}

bool Route::can_read_frontend(bool stopping, Clock::time_point now) const {
  const bool reads = !stopping || (let_go_ends_ && !frontend_ended_);
  return reads && frontend_pause(now) == FrontendPause::kNone;
}

FrontendPause Route::frontend_pause(Clock::time_point now) const {
  // `block`: stop reading; libzmq's high-water marks then push back on the clients.
  if (config_.queue.overflow == Overflow::kBlock && queue_.full()) return FrontendPause::kQueueFull;
  return holding_frontend(now) ? FrontendPause::kHold : FrontendPause::kNone;
}

// The pipeline hold. While the backend keeps up (PipelineHold: its full pipe reopens at its
// usual pace), `block` leaves the frontend unread until the queue has gone, so the clients'
// messages wait in the frontend's own pipe, which costs this process nothing, rather than in
// the queue (2M saturated messages: 66-87% of them went through the queue at 64 B, ~6% with the
// hold). A backend that takes nothing for longer is buffered for as before, and so is a backlog
// (PipelineHold::young_queue()): it is drained with the clients still read. A bound on the
// queue's size instead of its age left a saturated 1 KiB run at 98% through the queue once one
// stall pushed it past the bound.
bool Route::holding_frontend(Clock::time_point now) const {
  if (!may_hold_ || !hold_.keeping_up(now) || !waits_on_backend()) return false;
  const auto oldest = queue_.queue().oldest();
  return oldest && now - *oldest < hold_.young_queue() && backends_.up();
}

bool Route::waits_on_backend() const {
  return !queue_.empty() && drain_limit_.under_in_flight(in_flight()) && drain_limit_.has_token();
}

std::size_t Route::in_flight() const {
  if (correlation_) return correlation_->in_flight();
  return request_reply_ ? request_reply_->in_flight() : 0;
}

bool Route::can_forward(Clock::time_point now) { return drain_limit_.allows(now, in_flight()); }

void Route::poll_items(std::vector<zmq::pollitem_t>& items, bool stopping, Clock::time_point now) {
  poll_slots_.clear();
  const short front_events = can_read_frontend(stopping, now) ? ZMQ_POLLIN : 0;
  // By its raw fd, as the monitors (route.h, frontend_hot_).
  items.push_back({nullptr, frontend_fd_, front_events, 0});
  poll_slots_.emplace_back(PollSlot::kFrontend, 0);
  // Monitors are watched by their raw fds (SocketMonitor::fd()): presence changes are handled
  // as they happen (the connect flush starts at the handshake) at no cost per pass.
  items.push_back({nullptr, frontend_monitor_.fd(), ZMQ_POLLIN, 0});
  poll_slots_.emplace_back(PollSlot::kFrontendMonitor, 0);
  // Without a token (drain_rate) the timer wakes the loop instead: POLLOUT would spin.
  const bool want_out = waits_on_backend();
  for (std::size_t i = 0; i < backends_.size(); ++i) {
    Backend& backend = backends_[i];
    short back_events = 0;
    // A gated socket is writable without a peer: asking then would spin.
    if (want_out && backend.can_take() && has_slot(i)) back_events |= ZMQ_POLLOUT;
    // Always read: a reply a client cannot take waits in that client's own FIFO, so no client
    // holds back another, and the workers' heartbeats keep being read.
    if (config_.request_reply()) back_events |= ZMQ_POLLIN;
    items.push_back({backend.socket.handle(), 0, back_events, 0});
    poll_slots_.emplace_back(PollSlot::kBackend, i);
    items.push_back({nullptr, backend.monitor.fd(), ZMQ_POLLIN, 0});
    poll_slots_.emplace_back(PollSlot::kBackendMonitor, i);
  }
}

void Route::handle(const zmq::pollitem_t* items, Clock::time_point now, bool stopping) {
  bool writable = false;
  bool new_peer = false;
  bool frontend_readable = false;
  bool drained = true;  // every monitor read found its end
  for (std::size_t k = 0; k < poll_slots_.size(); ++k) {
    const auto [slot, index] = poll_slots_[k];
    const short revents = items[k].revents;
    if (slot == PollSlot::kFrontend) {
      frontend_readable = (revents & ZMQ_POLLIN) != 0;
    } else if (slot == PollSlot::kFrontendMonitor) {
      if ((revents & ZMQ_POLLIN) || monitor_backlog_) drained &= read_frontend_monitor(now);
    } else if (slot == PollSlot::kBackendMonitor) {
      if ((revents & ZMQ_POLLIN) || monitor_backlog_) drained &= read_backend_monitor(index, now);
    } else {
      if (revents & ZMQ_POLLIN) read_replies(index, now);
      if (revents & ZMQ_POLLOUT) {
        writable = true;
        // With ZMQ_IMMEDIATE a socket only turns writable once a peer's handshake is done;
        // libzmq attaches the pipe just before it emits the monitor event, so poll() can see
        // the new peer's room before the event arrives. That drain is the connect flush.
        if (!backends_[index].monitor.presence().up()) new_peer = true;
      }
    }
  }
  monitor_backlog_ = !drained;
  // The connections let go have ended: one more read finds the end.
  if (let_go_ends_ && !frontend_ended_ && now >= *let_go_ends_) frontend_hot_ = true;
  if (writable) flush(new_peer ? FlushTrigger::kConnect : FlushTrigger::kWritable, now);
  // Hot also when replies just went out above: read now rather than on an extra pass.
  if ((frontend_readable || frontend_hot_) && can_read_frontend(stopping, now)) {
    read_frontend(now);
  }
}

// ---- requests: frontend → queue → backend ----------------------------------------------------

void Route::read_frontend(Clock::time_point now) {
  frontend_hot_ = true;  // until a recv finds it empty
  std::vector<protocol::Multipart>& batch = handle_batch();
  const bool block = config_.queue.overflow == Overflow::kBlock;
  int read = 0;
  // The connections let go have ended by now: an empty read is the end.
  const bool all_gone = let_go_ends_ && now >= *let_go_ends_;
  while (frontend_hot_ && read < kReadBatch && can_read_frontend(false, now)) {
    std::size_t got = 0;
    std::size_t bytes = 0;
    while (got < batch.size() && read < kReadBatch) {
      if (!recv_multipart(frontend_, batch[got])) {
        frontend_hot_ = false;  // read to the end: its fd signals the next message
        break;
      }
      bytes += batch[got].bytes();
      ++got;
      ++read;
      // `block` reads no further than the queue could take, were the whole batch queued: its
      // bounds hold as when each message was handled as read (queue.h).
      if (block && queue_.full_after(got, bytes)) break;
    }
    for (std::size_t i = 0; i < got; ++i) {
      accept(std::move(batch[i]), now);
      batch[i].clear();  // what accept() did not take (a dropped message)
    }
  }
  if (all_gone && !frontend_hot_) frontend_ended_ = true;
  commit_spool(now);
}

// Group commit: the batch's records are written by accept() and synced here at once (fsync
// always), before anything can forward a message of the batch or publish it as queued: flush(),
// the timers and publish() run only after handle() returns, and while a batch's messages are
// in the queue the fast path is closed (it needs an empty queue).
void Route::commit_spool(Clock::time_point now) {
  if (const std::size_t refused = queue_.commit(); refused > 0) {
    drop(DropReason::kSpoolError, refused, now,
         "spool fsync failed: the messages of this read batch are refused",
         queue_.spool()->last_error());
  }
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
  if (results_of_ != nullptr &&
      !results_of_->note_result(message.frame_view(message.size() - 1), now)) {
    counters_.uncorrelated_results += 1;
  }

  // Fast path: nothing queued ahead of it, so sending now cannot reorder.
  if (queue_.empty() && can_forward(now) && forward(message, now, nullptr)) {
    spool_forwarded(0);  // it pushes spooled messages before it out of libzmq's pipes
    metrics_.queue_wait.observe_zero();
    return;
  }
  if (!offer(std::move(message), now)) {
    drop(DropReason::kQueueFull, 1, now, "queue full: message refused");
  }
}

bool Route::offer(protocol::Multipart&& message, Clock::time_point now) {
  // With a spool its record is written now, durable once commit_spool() has synced the whole
  // read batch.
  using Refusal = DurableQueue::Offered::Refusal;
  const DurableQueue::Offered offered = queue_.offer(std::move(message), now);
  if (offered.evicted > 0) {
    drop(DropReason::kEvicted, offered.evicted, now, "queue full: oldest messages evicted");
  }
  if (offered.refused == Refusal::kSpoolError) {
    drop(DropReason::kSpoolError, 1, now, "spool cannot store the message: refused",
         queue_.spool()->last_error());
  }
  return offered.refused != Refusal::kQueueFull;
}

bool Route::forward(protocol::Multipart& message, Clock::time_point now,
                    const QueuedMessage* origin) {
  const std::size_t bytes = message.bytes();
  const auto sent_to = backends_.send_round_robin(
      [&](std::size_t index) { return has_slot(index); },
      [&](std::size_t index) {
        return config_.request_reply() ? send_request(index, message, now, origin)
                                       : send_message(backends_[index], message, now);
      });
  if (!sent_to) {
    // The hold learns the backend's pace from how long its full pipe takes to reopen.
    if (backends_.up()) {
      hold_.refused(now);
    } else {
      hold_.backend_gone();
    }
    return false;
  }
  // `message` was sent, and is left empty.
  counters_.forwarded_messages += 1;
  counters_.forwarded_bytes += bytes;
  drain_limit_.took_one();
  hold_.forwarded(now);
  return true;
}

bool Route::has_slot(std::size_t backend) const {
  const std::size_t limit = config_.flush.max_in_flight;
  if (limit == 0 || !config_.request_reply()) return true;
  // Each backend socket with a peer holds at most its share of max_in_flight, so a worker host
  // that stops answering (noticed only at its heartbeat timeout) holds no more than its share
  // and the others keep working.
  const std::size_t up = std::max<std::size_t>(backends_.sockets_up(), 1);
  return request_reply_->in_flight(backend) < (limit + up - 1) / up;
}

bool Route::send_request(std::size_t backend, protocol::Multipart& message, Clock::time_point now,
                         const QueuedMessage* origin) {
  if (!request_reply_->send(backends_[backend].socket, backend, message, now, origin)) {
    return false;
  }
  if (origin != nullptr) queue_.awaiting(origin->spool_sequence);
  return true;
}

bool Route::send_message(Backend& backend, protocol::Multipart& message, Clock::time_point now) {
  if (!correlation_) return send_multipart(backend.socket, message) == SendResult::kSent;
  const std::size_t frames = message.size();
  // The body moves into libzmq with the send; a reference-counted handle on it (no byte
  // copy) lets the correlation key be read once the send succeeded, not on every attempt
  // that finds the backend full (a 9 MB body takes ~12 ms to scan).
  zmq::message_t body;
  body.copy(message[frames - 1]);
  if (send_multipart(backend.socket, message) != SendResult::kSent) return false;
  if (correlation_->note_request(body.to_string_view(), now)) {
    counters_.correlation_timeouts += 1;
  }
  return true;
}

void Route::flush(FlushTrigger trigger, Clock::time_point now) {
  if (queue_.empty()) return;
  // The timer firing during an outage is not a flush: there is no one to flush to.
  if (trigger == FlushTrigger::kPeriodic && !backends_.up()) return;
  counters_.flushes[static_cast<std::size_t>(trigger)] += 1;
  std::uint64_t moved = 0;
  const auto ttl = std::chrono::milliseconds(config_.queue.ttl_ms);
  while (!queue_.empty() && can_forward(now)) {
    QueuedMessage head = queue_.pop();
    if (config_.queue.ttl_ms > 0 && now - head.enqueued > ttl) {
      drop(DropReason::kExpired, 1, now, "message older than queue.ttl_ms dropped");
      queue_.dropped(head.spool_sequence);
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
    metrics_.queue_wait.observe(to_seconds(now - head.enqueued));
    ++moved;
  }
  counters_.flushed_messages[static_cast<std::size_t>(trigger)] += moved;
}

void Route::spool_forwarded(std::uint64_t sequence) {
  // The peer count is only asked for when there is a spool to tell.
  queue_.forwarded(
      sequence, [this] { return backends_.peers(); }, config_.backend.hwm);
}

// ---- timers, shutdown, drops -------------------------------------------------------------------

Clock::time_point Route::next_housekeeping() const {
  const bool idle = queue_.empty() && (!request_reply_ || request_reply_->idle()) &&
                    !backends_.any_paused() && (!correlation_ || correlation_->empty());
  return next_on_grid(last_housekeeping_, idle ? kIdleHousekeeping : kHousekeeping);
}

Clock::time_point Route::next_deadline(bool stopping, Clock::time_point now) const {
  if (monitor_backlog_ || (frontend_hot_ && can_read_frontend(stopping, now))) return now;
  Clock::time_point next = next_housekeeping();
  if (holding_frontend(now)) next = std::min(next, hold_.window_end());
  // The read that may find the end of a let-go frontend; after it, handle() keeps it hot.
  if (let_go_ends_ && now < *let_go_ends_) next = std::min(next, *let_go_ends_);
  // With nothing queued the periodic flush has nothing to do: it does not wake the loop.
  if (!queue_.empty()) next = std::min(next, next_periodic_flush_);
  if (replies() != nullptr && !replies()->empty()) {
    next = std::min(next, request_reply_->next_retry());
  }
  if (const auto tick = queue_.next_tick(now)) next = std::min(next, *tick);
  if (!queue_.empty()) next = std::min(next, drain_limit_.next_token(now));
  return next;
}

void Route::on_timer(Clock::time_point now) {
  queue_.tick(now);
  if (replies() != nullptr && !replies()->empty() && now >= request_reply_->next_retry()) {
    retry_replies(now);
  }
  if (now >= next_periodic_flush_) {
    flush(FlushTrigger::kPeriodic, now);
    next_periodic_flush_ = now + std::chrono::milliseconds(config_.flush.interval_ms);
  }
  if (drain_limit_.rate_limited() && !queue_.empty()) flush(FlushTrigger::kDrainRate, now);
  if (now < next_housekeeping()) return;
  last_housekeeping_ = now;
  queue_.settle(now);
  // A pause lasts at least one housekeeping period: libzmq's teardown of the lost pipe has
  // long happened by then.
  backends_.end_pauses(now - kHousekeeping);
  if (!config_.request_reply()) pace_reconnects(now);
  if (config_.queue.ttl_ms > 0) {
    const std::size_t expired = queue_.expire(now, std::chrono::milliseconds(config_.queue.ttl_ms));
    if (expired > 0) {
      drop(DropReason::kExpired, expired, now, "message older than queue.ttl_ms dropped");
    }
  }
  if (request_reply_) {
    if (const std::size_t expired = request_reply_->replies().expire(now); expired > 0) {
      drop(DropReason::kSlowClient, expired, now,
           "replies waited longer than replies.timeout_ms for a client that does not read: "
           "dropped");
    }
    for (const std::uint64_t sequence : request_reply_->expire(now, kReplyTimeout)) {
      queue_.finished(sequence);
      counters_.reply_timeouts += 1;
    }
  }
  if (correlation_) {
    counters_.correlation_timeouts += correlation_->expire(now);
  }
  for (auto& limiter : drop_log_) limiter.tick(now);
  handshake_log_.tick(now);
  disconnect_log_.tick(now);
}

void Route::stop_accepting(Clock::time_point now) {
  if (config_.request_reply()) return;
  // Errors are left unthrown: the drain goes on, and an endpoint still open only keeps the
  // clients as before (read no more, what they sent since lost at exit).
  for (const auto& endpoint : frontend_endpoints_) {
    (void)zmq_unbind(frontend_.handle(), endpoint.c_str());
  }
  for (const auto& endpoint : config_.frontend.connect) {
    (void)zmq_disconnect(frontend_.handle(), endpoint.c_str());
  }
  let_go_ends_ = now + kLetGoSettle;
  frontend_hot_ = true;
}

bool Route::drained() const {
  return queue_.empty() && (!request_reply_ || request_reply_->idle()) &&
         (!let_go_ends_ || frontend_ended_);
}

void Route::drop_remaining(DropReason reason) {
  std::uint64_t refused = 0;  // read at exit, and too large or refused by a full queue
  if (let_go_ends_) {
    // What libzmq took from the clients and no read has seen (the drain ended first, or it came
    // after the end was taken for one) is queued unsent: a spool keeps it for the next start,
    // and without one it is counted below with the rest. The connections are closed, so this is
    // at most their pipes' HWMs; the bound only keeps a misbehaving libzmq from holding the
    // exit.
    constexpr int kMostUnread = 1 << 20;
    const Clock::time_point now = Clock::now();
    for (int n = 0; n < kMostUnread; ++n) {
      protocol::Multipart message;
      if (!recv_multipart(frontend_, message)) break;
      counters_.received_messages += 1;
      counters_.received_bytes += message.bytes();
      const bool too_large = message.bytes() > config_.queue.max_message_bytes;
      if (too_large || !offer(std::move(message), now)) ++refused;
    }
    commit_spool(now);
  }
  const DurableQueue::AtExit at_exit = queue_.close();
  if (const Spool* spool = queue_.spool()) {
    if (at_exit.kept > 0) {
      log::info(std::to_string(at_exit.kept) + " messages kept in the spool",
                {{"route", config_.name},
                 {"messages", std::to_string(at_exit.kept)},
                 {"path", spool->path()}});
    }
    if (!at_exit.synced) {
      log::error("spool sync at exit failed",
                 {{"route", config_.name}, {"error", spool->last_error()}});
    }
  }
  if (at_exit.dropped + refused > 0) {
    drop(reason, at_exit.dropped + refused, Clock::now(),
         "messages still queued (or read from the clients let go) at exit dropped");
  }
  if (request_reply_ && !request_reply_->replies().empty()) {
    drop(reason, request_reply_->replies().clear(), Clock::now(),
         "replies still undelivered at exit dropped");
  }
}

void Route::close(std::chrono::milliseconds backend_linger) {
  frontend_.set(zmq::sockopt::linger, 0);
  frontend_monitor_.stop(frontend_);
  frontend_.close();
  backends_.close(backend_linger);
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

}  // namespace tidepool::proxy
