// A route: the core both modes share. It reads the frontend, accepts into its queue,
// forwards round-robin to its backends, flushes, runs its timers, and alone counts drops,
// writes logs and publishes metrics. Its parts each own one concern and report outcomes:
// Backends (sockets, presence), DurableQueue (queue + spool), RequestReply (request-reply
// mode), Correlation, DrainLimit.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "tidepool/protocol/multipart.h"
#include "tidepool/proxy/backends.h"
#include "tidepool/proxy/config.h"
#include "tidepool/proxy/correlation.h"
#include "tidepool/proxy/drain_limit.h"
#include "tidepool/proxy/durable_queue.h"
#include "tidepool/proxy/log.h"
#include "tidepool/proxy/metrics.h"
#include "tidepool/proxy/pipeline_hold.h"
#include "tidepool/proxy/queue.h"
#include "tidepool/proxy/request_reply.h"
#include "tidepool/proxy/sockets.h"
#include "tidepool/proxy/startup_error.h"

namespace tidepool::proxy {

// Why a route leaves its frontend unread (clients then wait in libzmq's pipes), stopping aside.
enum class FrontendPause : std::uint8_t {
  kNone,
  kQueueFull,  // a full `block` queue
  kHold,       // the pipeline hold (Route::holding_frontend())
};
// "queue_full", "hold"; nullptr for kNone (/status's frontend.paused is then null).
const char* to_label(FrontendPause pause);

// One frontend → one queue → one backend (DESIGN §1). All of it runs on the event-loop
// thread; nothing here is shared with the HTTP threads except through publish().
class Route {
 public:
  Route(zmq::context_t& context, const RouteConfig& config, Metrics& metrics);
  Route(const Route&) = delete;
  Route& operator=(const Route&) = delete;
  ~Route();

  // Opens the spool (if any) and replays it into the queue, then starts monitors, binds and
  // connects. Throws StartupError.
  void open();

  // Correlation wiring, before open(): this route forwards the requests...
  Correlation& enable_correlation_requests(const CorrelationConfig& config);
  // ...or this route carries their results.
  void set_correlation_results(Correlation* correlation) { results_of_ = correlation; }

  // Poll items this route wants now, appended to `items` (how many varies); handle() gets
  // the same slice back.
  void poll_items(std::vector<zmq::pollitem_t>& items, bool stopping, Clock::time_point now);
  void handle(const zmq::pollitem_t* items, Clock::time_point now, bool stopping);
  // Timers: periodic flush, TTL, in-flight expiry, reply retries, presence (monitor events),
  // log summaries.
  void on_timer(Clock::time_point now);
  // When on_timer next has something to do, or `now` when monitor events or the frontend have
  // more to read (while `stopping`, only a frontend whose clients were let go: a drain reads
  // nothing else, and waking for it would spin).
  [[nodiscard]] Clock::time_point next_deadline(bool stopping, Clock::time_point now) const;

  void flush(FlushTrigger trigger, Clock::time_point now);
  // At SIGTERM. A pipeline route lets its clients go (unbinds, disconnects): what they have not
  // sent yet waits in their own pipes for the next process, instead of in kernel buffers a
  // closing socket discards. What libzmq had already taken from them is then read as before,
  // to its end, and drained with the queue. A request-reply route keeps its clients, whose
  // replies are still delivered, and reads nothing more.
  void stop_accepting(Clock::time_point now);
  // Nothing left to do at shutdown: queue empty, replies delivered, no request awaiting its
  // reply (request-reply), the clients let go read to the end (pipeline).
  [[nodiscard]] bool drained() const;
  // Counts what is still queued as dropped for `reason`; with a spool, what it holds stays
  // there for the next start, requests awaiting their reply too.
  void drop_remaining(DropReason reason);
  void close(std::chrono::milliseconds backend_linger);

  void publish(Clock::time_point now);
  [[nodiscard]] nlohmann::json status(Clock::time_point now) const;
  // Messages waiting in the queue now.
  [[nodiscard]] std::size_t queued() const { return queue_.size(); }
  [[nodiscard]] const RouteConfig& config() const { return config_; }
  [[nodiscard]] const std::vector<std::string>& frontend_endpoints() const {
    return frontend_endpoints_;
  }

 private:
  // What each item poll_items() added is, for handle().
  enum class PollSlot : std::uint8_t { kFrontend, kFrontendMonitor, kBackend, kBackendMonitor };

  // Opens the spool, if any, and replays it into the queue; logs what it found.
  void open_spool();
  // A message (spooled or not: sequence 0) was handed to the backend's libzmq pipes.
  void spool_forwarded(std::uint64_t sequence);
  void read_frontend(Clock::time_point now);
  void accept(protocol::Multipart&& message, Clock::time_point now);
  // Queues `message`, counting what the queue evicted or the spool failed to store; false when
  // a full queue refused it (the caller counts that).
  bool offer(protocol::Multipart&& message, Clock::time_point now);
  void commit_spool(Clock::time_point now);
  // Sends `message` to a backend with room, leaving it empty; false (and `message` as it was)
  // when none has room.
  bool forward(protocol::Multipart& message, Clock::time_point now, const QueuedMessage* origin);
  bool send_request(std::size_t backend, protocol::Multipart& message, Clock::time_point now,
                    const QueuedMessage* origin);
  bool send_message(Backend& backend, protocol::Multipart& message, Clock::time_point now);
  void read_replies(std::size_t backend, Clock::time_point now);
  void deliver_reply(protocol::Multipart&& reply, Clock::time_point now);
  void retry_replies(Clock::time_point now);
  [[nodiscard]] const ReplyQueues* replies() const {
    return request_reply_ ? &request_reply_->replies() : nullptr;
  }
  void requeue_in_flight(std::size_t backend, Clock::time_point now);
  [[nodiscard]] bool has_slot(std::size_t backend) const;
  // Each reads what its monitor has, up to a batch; false when it stopped at the batch limit
  // with more waiting (the fd will not signal again for those: the next pass reads on).
  bool read_frontend_monitor(Clock::time_point now);
  bool read_backend_monitor(std::size_t backend, Clock::time_point now);
  // What a backend monitor event (or a connection found ended unreported) does to the route.
  void on_backend_event(std::size_t backend, const BackendEvent& outcome, Clock::time_point now);
  // Prompt reconnects while messages are queued for an absent backend (Backends::pace_reconnects),
  // and the connections a pace change ended unreported (Backends::end_unreported).
  void pace_reconnects(Clock::time_point now);
  void log_handshake_failure(HandshakeFailure failure, bool backend, const std::string& address,
                             Clock::time_point now);
  void drop(DropReason reason, std::uint64_t count, Clock::time_point now, std::string_view why,
            std::string_view error = {});

  [[nodiscard]] bool can_read_frontend(bool stopping, Clock::time_point now) const;
  // Why the frontend is left unread now, stopping aside (/status reports it).
  [[nodiscard]] FrontendPause frontend_pause(Clock::time_point now) const;
  // Leave the frontend unread: a backend whose full pipe reopens at its usual pace will take
  // the young queue soon (route.cc, PipelineHold).
  [[nodiscard]] bool holding_frontend(Clock::time_point now) const;
  // Messages are queued and only a backend's room holds them: the drain limit would let the
  // next one go (poll_items() asks for POLLOUT, holding_frontend()).
  [[nodiscard]] bool waits_on_backend() const;
  [[nodiscard]] bool can_forward(Clock::time_point now);
  [[nodiscard]] std::size_t in_flight() const;
  // When on_timer() next reads monitors, expires and summarises: sooner while the route holds
  // something (route.cc, kHousekeeping and kIdleHousekeeping).
  [[nodiscard]] Clock::time_point next_housekeeping() const;

  RouteConfig config_;
  // The hold applies at all: where the operator chose push-back (`block`) on a pipeline route,
  // nothing durable is given up (a read message is spooled, a held one is not), and no drain
  // rate paces the queue.
  const bool may_hold_;
  zmq::socket_t frontend_;
  // The frontend is polled by its raw ZMQ_FD: one socket item in zmq_poll costs two system
  // calls per pass (at 1,000 routes, most of the idle loop's CPU), a raw fd nothing. The fd
  // signals new messages only to a reader that found the socket empty, and any send or recv
  // may consume its signal. So the frontend is `hot` (read on the next pass, without waiting)
  // from every operation on it until a recv finds it empty.
  int frontend_fd_ = -1;
  bool frontend_hot_ = true;
  // libzmq reports no end of a connection closed by zmq_unbind()/zmq_disconnect(); its I/O
  // thread ends them at its next command, microseconds later when it is not busy. A read this
  // long after the clients were let go that finds the frontend empty is taken for its end
  // (drop_remaining() still reads what a slower one passed on).
  static constexpr Clock::duration kLetGoSettle = std::chrono::milliseconds(100);
  // Set by stop_accepting() (it unbound and disconnected the frontend): when the connections
  // let go have ended, kLetGoSettle after.
  std::optional<Clock::time_point> let_go_ends_;
  bool frontend_ended_ = false;  // ...and it was read to its end
  SocketMonitor frontend_monitor_;
  Backends backends_;
  std::vector<std::pair<PollSlot, std::size_t>> poll_slots_;  // backend index for backend slots
  std::vector<std::string> frontend_endpoints_;               // as bound (ephemeral ports resolved)
  std::vector<std::string> backend_endpoints_;

  DurableQueue queue_;                         // with its spool, when configured
  std::optional<RequestReply> request_reply_;  // request-reply mode only
  std::unique_ptr<Correlation> correlation_;   // this route's requests, if correlated
  Correlation* results_of_ = nullptr;          // requests this route's results answer

  RouteCounters counters_;
  RouteMetrics metrics_;
  std::array<log::RateLimited, kDropReasons> drop_log_;
  log::RateLimited handshake_log_;   // refused clients, unreachable workers
  log::RateLimited disconnect_log_;  // frontend peers gone (maybe an oversized frame)

  Clock::time_point next_periodic_flush_;
  PipelineHold hold_;  // the backend's pace, for holding_frontend()
  Clock::time_point last_housekeeping_;
  // A monitor read stopped at its batch limit, or none has run yet: its fd signals only once
  // a read found it empty (as frontend_hot_).
  bool monitor_backlog_ = true;
  DrainLimit drain_limit_;
};

}  // namespace tidepool::proxy
