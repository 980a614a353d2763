#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "tidepool/protocol/multipart.h"
#include "tidepool/proxy/config.h"
#include "tidepool/proxy/delivery_window.h"
#include "tidepool/proxy/in_flight.h"
#include "tidepool/proxy/log.h"
#include "tidepool/proxy/metrics.h"
#include "tidepool/proxy/presence.h"
#include "tidepool/proxy/queue.h"
#include "tidepool/proxy/reply_queues.h"
#include "tidepool/proxy/spool.h"
#include "tidepool/proxy/startup_error.h"

namespace tidepool::proxy {

// Requests of one route matched with the results of another by a payload key (DESIGN §5).
// Owned by the requests route; the results route holds a pointer to it.
struct Correlation {
  explicit Correlation(const CorrelationConfig& c) : config(c), in_flight(c.max_tracked) {}
  CorrelationConfig config;
  InFlight in_flight;
  LocalHistogram* durations = nullptr;  // the requests route's request_duration
  std::uint64_t* timeouts = nullptr;    // the requests route's correlation_timeouts
};

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
  void poll_items(std::vector<zmq::pollitem_t>& items, bool stopping);
  void handle(const zmq::pollitem_t* items, Clock::time_point now, bool stopping);
  // Timers: periodic flush, TTL, in-flight expiry, reply retries, presence (monitor events),
  // log summaries.
  void on_timer(Clock::time_point now);
  // When on_timer next has something to do.
  [[nodiscard]] Clock::time_point next_deadline(Clock::time_point now) const;

  void flush(FlushTrigger trigger, Clock::time_point now);
  // Nothing left to do at shutdown: queue empty, replies delivered, no request awaiting its
  // reply (request-reply).
  [[nodiscard]] bool drained() const;
  // Counts what is still queued as dropped for `reason`; with a spool, what it holds stays
  // there for the next start, requests awaiting their reply too.
  void drop_remaining(DropReason reason);
  void close(std::chrono::milliseconds backend_linger);

  void publish(Clock::time_point now);
  [[nodiscard]] nlohmann::json status(Clock::time_point now) const;
  [[nodiscard]] const RouteConfig& config() const { return config_; }
  [[nodiscard]] const std::vector<std::string>& frontend_endpoints() const {
    return frontend_endpoints_;
  }

 private:
  struct Monitor {
    zmq::socket_t socket;
    Presence presence;
  };
  // One backend socket with its own presence. Request-reply gives each connect endpoint a
  // socket of its own without ZMQ_IMMEDIATE (libzmq 4.3 can abort reading replies on a
  // connecting ZMQ_IMMEDIATE socket, see route.cc) and forwards to it only while its peer is
  // up; its bind endpoints share one socket. A pipeline backend is one socket for all.
  struct Backend {
    zmq::socket_t socket;
    Monitor monitor;
    std::vector<std::string> binds;
    std::vector<std::string> connects;
    bool gated = false;   // writable without a peer: forward only while presence.up()
    bool paused = false;  // a bound socket that just lost a peer: see read_backend_monitor()
    std::uint64_t disconnects_seen = 0;  // losses already answered by a requeue
    std::size_t in_flight = 0;           // request-reply: requests sent through it, unanswered
    [[nodiscard]] bool can_take() const { return !paused && (!gated || monitor.presence.up()); }
  };
  // What each item poll_items() added is, for handle().
  enum class PollSlot : std::uint8_t { kFrontend, kBackend, kBackendMonitor };

  void open_spool();
  // A message left the queue unforwarded (evicted, expired): its spool record is done, as is
  // every earlier one not still awaiting delivery.
  void spool_done(std::uint64_t sequence) {
    if (!spool_ || sequence == 0) return;
    delivery_.delivered(sequence);  // a request queued again after a loss was outstanding
    delivery_.finished_through(sequence);
    spool_->mark_done(delivery_.safe());
  }
  // A request-reply request's record is done: its reply came, or it was given up.
  void spool_finished(std::uint64_t sequence) {
    if (!spool_ || sequence == 0) return;
    delivery_.delivered(sequence);
    spool_->mark_done(delivery_.safe());
  }
  // A message (spooled or not: sequence 0) was handed to the backend's libzmq pipes: records
  // are done once they have left them (see DeliveryWindow).
  void spool_forwarded(std::uint64_t sequence);
  void read_frontend(Clock::time_point now);
  void accept(protocol::Multipart&& message, Clock::time_point now);
  void commit_spool(Clock::time_point now);
  bool forward(protocol::Multipart& message, Clock::time_point now, const QueuedMessage* origin);
  bool send_request(std::size_t backend, protocol::Multipart& message, Clock::time_point now,
                    const QueuedMessage* origin);
  bool send_message(Backend& backend, protocol::Multipart& message, Clock::time_point now);
  void read_replies(Backend& backend, Clock::time_point now);
  void deliver_reply(protocol::Multipart&& reply, Clock::time_point now);
  void retry_replies(Clock::time_point now);
  void requeue_in_flight(std::size_t backend, Clock::time_point now);
  [[nodiscard]] bool has_slot(const Backend& backend) const;
  void read_frontend_monitor(Clock::time_point now);
  void read_backend_monitor(std::size_t backend, Clock::time_point now);
  void log_handshake_failure(HandshakeFailure failure, bool backend, const std::string& address,
                             Clock::time_point now);
  [[nodiscard]] bool backend_up() const;
  void drop(DropReason reason, std::uint64_t count, Clock::time_point now, std::string_view why,
            std::string_view error = {});
  void note_result(const protocol::Multipart& message, Clock::time_point now);

  [[nodiscard]] bool can_read_frontend(bool stopping) const;
  [[nodiscard]] bool can_forward(Clock::time_point now);
  [[nodiscard]] std::size_t in_flight() const;
  [[nodiscard]] bool may_forward_more() const;
  void refill_tokens(Clock::time_point now);

  RouteConfig config_;
  zmq::context_t& context_;
  zmq::socket_t frontend_;
  Monitor frontend_monitor_;
  std::vector<Backend> backends_;
  std::size_t next_backend_ = 0;  // round-robin over the backends that can take a message
  std::vector<std::pair<PollSlot, std::size_t>> poll_slots_;  // backend index for backend slots
  std::vector<std::string> frontend_endpoints_;               // as bound (ephemeral ports resolved)
  std::vector<std::string> backend_endpoints_;

  MessageQueue queue_;
  std::unique_ptr<Spool> spool_;   // mirrors the queue's messages on disk, when configured
  DeliveryWindow delivery_;        // which forwarded records may be marked done
  ReplyQueues replies_;            // replies a client could not take yet, per client
  Clock::duration reply_retry_{};  // grows while no waiting reply can be delivered
  Clock::time_point next_reply_retry_;
  // Request-reply: each forwarded request carries a sequence frame after the routing id
  // (workers echo the envelope back); a copy is kept until its reply arrives, so requests a
  // lost backend peer held can be sent again. Ordered by sequence, i.e. by send time.
  struct PendingRequest {
    protocol::Multipart request;  // as received (no sequence frame); frames share payloads
    Clock::time_point sent;
    std::size_t backend;  // index in backends_: a loss there sends it again
    std::uint64_t spool_sequence = 0;
    // Accepted by an earlier process from a client whose routing id libzmq assigned: that id
    // named a connection to the old process, and a client of this one may hold it now, so the
    // reply has no rightful client (counted as unroutable, never sent).
    bool orphan = false;
  };
  using Pending = std::map<std::uint64_t, PendingRequest>;
  void erase_pending(Pending::iterator it);
  Pending pending_;
  std::uint64_t next_sequence_ = 0;
  std::unique_ptr<Correlation> correlation_;  // this route's requests, if correlated
  Correlation* results_of_ = nullptr;         // requests this route's results answer

  RouteCounters counters_;
  RouteMetrics metrics_;
  std::array<log::RateLimited, kDropReasons> drop_log_;
  log::RateLimited handshake_log_;   // refused clients, unreachable workers
  log::RateLimited disconnect_log_;  // frontend peers gone (maybe an oversized frame)

  Clock::time_point next_periodic_flush_;
  Clock::time_point next_housekeeping_;
  double tokens_ = 0;  // drain_rate token bucket
  Clock::time_point tokens_updated_;
};

}  // namespace tidepool::proxy
