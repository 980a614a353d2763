// The Prometheus metrics: the per-route metric lists (each metric declared once), the
// counters the event loop bumps, their families and series in the registry, and publishing.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "tidepool/proxy/presence.h"

namespace tidepool::proxy {

enum class DropReason : std::uint8_t {
  kQueueFull,
  kEvicted,
  kTooLarge,
  kMalformed,
  kExpired,
  kShutdown,
  kUnroutable,
  kSpoolError,  // the spool could not store it (disk full, I/O error, spool at max_bytes)
  kSlowClient,  // a reply for a client that did not read it, past its bound or its deadline
};
inline constexpr std::size_t kDropReasons = 9;
const char* to_label(DropReason reason);

// kWritable: the backend has room again; kDrainRate: the drain_rate timer let more go.
enum class FlushTrigger : std::uint8_t {
  kConnect,
  kPeriodic,
  kManual,
  kShutdown,
  kWritable,
  kDrainRate,
};
inline constexpr std::size_t kFlushTriggers = 6;
const char* to_label(FlushTrigger trigger);

// Histogram observations gathered on the event loop and handed to prometheus-cpp in one
// locked call per publish, instead of one lock and several atomics per message.
class LocalHistogram {
 public:
  explicit LocalHistogram(const std::vector<double>& bounds)
      : bounds_(bounds), counts_(bounds.size() + 1, 0.0) {}
  void observe(double value);
  // observe(0) without the bucket search: the fast path's wait, once per message.
  void observe_zero() {
    counts_[0] += 1;
    ++count_;
  }
  // Moves what was observed into `target` and starts over.
  void publish_to(prometheus::Histogram& target);
  [[nodiscard]] std::uint64_t count() const { return count_; }

 private:
  const std::vector<double>& bounds_;
  std::vector<double> counts_;
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

// Bucket bounds: queue waits span a fast path (~10 µs) to a backend outage (minutes);
// backtest requests take from milliseconds to many minutes.
const std::vector<double>& queue_wait_buckets();
const std::vector<double>& request_duration_buckets();

// Every per-route metric, declared once. These lists generate the RouteCounters and
// RouteGauges fields, the families in Metrics, the series in RouteMetrics and publish(), so
// a metric is added by adding one line. prometheus-cpp exposes counters, then gauges, then
// histograms, each in list order: appending keeps /metrics stable for diffing.
//
// GAUGE(field, name, help): one gauge per route, set from RouteGauges::field.
#define TIDEPOOL_ROUTE_GAUGES(GAUGE)                                                             \
  GAUGE(queue_messages, "tidepool_queue_messages", "Messages waiting in the route's queue.")     \
  GAUGE(queue_bytes, "tidepool_queue_bytes", "Payload bytes waiting in the route's queue.")      \
  GAUGE(queue_capacity_messages, "tidepool_queue_capacity_messages",                             \
        "Queue limit in messages (queue.max_messages).")                                         \
  GAUGE(queue_capacity_bytes, "tidepool_queue_capacity_bytes",                                   \
        "Queue limit in bytes (queue.max_bytes).")                                               \
  GAUGE(queue_oldest_age_seconds, "tidepool_queue_oldest_age_seconds",                           \
        "Age of the message at the head of the queue; 0 when empty.")                            \
  GAUGE(backend_up, "tidepool_backend_up", "1 while the backend has at least one live peer.")    \
  GAUGE(backend_peers, "tidepool_backend_peers", "Backend peers with a completed handshake.")    \
  GAUGE(frontend_peers, "tidepool_frontend_peers", "Frontend peers with a completed handshake.") \
  GAUGE(in_flight, "tidepool_in_flight",                                                         \
        "Requests forwarded and awaiting their reply or correlated result.")                     \
  GAUGE(spool_bytes, "tidepool_spool_bytes",                                                     \
        "Bytes of the route's spool segment files on disk; 0 without a spool.")

// COUNTER(field, name, help): one counter per route, fed from RouteCounters::field (a
// uint64_t the event loop bumps; publish() adds the delta since the last publish).
// LABELLED(field, name, help, label, Enum, count): one counter per route and Enum value,
// labelled label=to_label(Enum), fed from the std::array RouteCounters::field. Every value
// exists from the start at 0, so rate() and alerts see the first increase.
#define TIDEPOOL_ROUTE_COUNTERS(COUNTER, LABELLED)                                                 \
  COUNTER(received_messages, "tidepool_received_messages_total",                                   \
          "Messages read from the frontend.")                                                      \
  COUNTER(received_bytes, "tidepool_received_bytes_total",                                         \
          "Payload bytes read from the frontend.")                                                 \
  COUNTER(forwarded_messages, "tidepool_forwarded_messages_total",                                 \
          "Messages sent to the backend.")                                                         \
  COUNTER(forwarded_bytes, "tidepool_forwarded_bytes_total", "Payload bytes sent to the backend.") \
  LABELLED(dropped, "tidepool_dropped_messages_total", "Messages dropped, by reason.", "reason",   \
           DropReason, kDropReasons)                                                               \
  LABELLED(flushes, "tidepool_flushes_total",                                                      \
           "Drain passes started with a non-empty queue, by trigger.", "trigger", FlushTrigger,    \
           kFlushTriggers)                                                                         \
  LABELLED(flushed_messages, "tidepool_flushed_messages_total",                                    \
           "Messages moved to the backend by drain passes, by trigger.", "trigger", FlushTrigger,  \
           kFlushTriggers)                                                                         \
  COUNTER(backend_connects, "tidepool_backend_connects_total",                                     \
          "Backend peers that completed a handshake.")                                             \
  COUNTER(backend_disconnects, "tidepool_backend_disconnects_total",                               \
          "Backend peers lost after a handshake.")                                                 \
  COUNTER(frontend_disconnects, "tidepool_frontend_disconnects_total",                             \
          "Frontend peers whose connection ended after a handshake, for any reason (libzmq "       \
          "reports none): the client left, its connection broke, or libzmq refused a frame "       \
          "over twice max_message_bytes.")                                                         \
  LABELLED(frontend_handshake_failures, "tidepool_frontend_handshake_failures_total",              \
           "Frontend connections closed before completing a ZMTP handshake, by reason "            \
           "(unauthorized, mechanism, cryptographic, protocol, incomplete).",                      \
           "reason", HandshakeFailure, kHandshakeFailures)                                         \
  LABELLED(backend_handshake_failures, "tidepool_backend_handshake_failures_total",                \
           "Backend connections closed before completing a ZMTP handshake, by reason (a "          \
           "worker that refuses tidepool's CURVE key: unauthorized).",                             \
           "reason", HandshakeFailure, kHandshakeFailures)                                         \
  COUNTER(replies, "tidepool_replies_total", "Replies delivered to clients.")                      \
  COUNTER(correlation_timeouts, "tidepool_correlation_timeouts_total",                             \
          "Requests with no correlated result within the timeout.")                                \
  COUNTER(reply_timeouts, "tidepool_reply_timeouts_total",                                         \
          "Request-reply requests given up after 10 minutes without a reply; they stop counting "  \
          "as in flight.")                                                                         \
  COUNTER(uncorrelated_results, "tidepool_uncorrelated_results_total",                             \
          "Results whose key matched no request in flight.")                                       \
  /* The two spool counters are copied from the spool's stats at publish time. */                  \
  COUNTER(spool_replayed, "tidepool_spool_replayed_messages_total",                                \
          "Messages read back from the spool into the queue at start.")                            \
  COUNTER(spool_corrupt_records, "tidepool_spool_corrupt_records_total",                           \
          "Torn or corrupt spool records (and bad segment headers) found and cut off at start.")   \
  COUNTER(duplicate_replies, "tidepool_duplicate_replies_total",                                   \
          "Request-reply replies ignored because their tag names no request awaiting a reply: "    \
          "usually the answer to a copy of a request sent again after its backend peer was lost "  \
          "(the other copy's answer goes to the client), else a reply to a request given up, or "  \
          "a tag the worker did not echo intact.")

// HISTOGRAM(field, name, help, buckets): RouteMetrics::field is a LocalHistogram with the
// bounds buckets() returns, moved into the route's series of `name` at publish time.
#define TIDEPOOL_ROUTE_HISTOGRAMS(HISTOGRAM)                                               \
  HISTOGRAM(queue_wait, "tidepool_queue_wait_seconds", "Time from arrival to forwarding.", \
            queue_wait_buckets)                                                            \
  HISTOGRAM(request_duration, "tidepool_request_duration_seconds",                         \
            "Time from forwarding a request to its reply or result.", request_duration_buckets)

// Process-wide gauges, not per route. GAUGE(field, name, help). The reload pair is named and
// behaves as Prometheus's own (prometheus_config_last_reload_*): at start successful is 1 and
// the timestamp is the start time.
#define TIDEPOOL_PROCESS_GAUGES(GAUGE)                                                       \
  GAUGE(config_last_reload_successful, "tidepool_config_last_reload_successful",             \
        "1 when the last SIGHUP reload (CURVE authorized_keys) succeeded, 0 when it failed " \
        "and the previous keys stay in force.")                                              \
  GAUGE(config_last_reload_success_timestamp_seconds,                                        \
        "tidepool_config_last_reload_success_timestamp_seconds",                             \
        "Unix time of the last successful reload; the start time until the first SIGHUP.")

// Process-wide counters. COUNTER(field, name, help).
#define TIDEPOOL_PROCESS_COUNTERS(COUNTER)                                                   \
  COUNTER(http_admin_refused, "tidepool_http_admin_refused_total",                           \
          "POST /flush requests refused: without the right bearer token (401), or with the " \
          "admin endpoints off (403).")

// The process collector's metrics, named, typed and described as every Prometheus client
// library exports them; read from /proc/self at each scrape (process_stats.h).
// METRIC(field, name, type, help), type a prometheus::MetricType.
#define TIDEPOOL_PROCESS_METRICS(METRIC)                                                \
  METRIC(cpu_seconds, "process_cpu_seconds_total", Counter,                             \
         "Total user and system CPU time spent in seconds.")                            \
  METRIC(resident_memory_bytes, "process_resident_memory_bytes", Gauge,                 \
         "Resident memory size in bytes.")                                              \
  METRIC(virtual_memory_bytes, "process_virtual_memory_bytes", Gauge,                   \
         "Virtual memory size in bytes.")                                               \
  METRIC(open_fds, "process_open_fds", Gauge, "Number of open file descriptors.")       \
  METRIC(max_fds, "process_max_fds", Gauge, "Maximum number of open file descriptors.") \
  METRIC(start_time_seconds, "process_start_time_seconds", Gauge,                       \
         "Start time of the process since unix epoch in seconds.")

// Plain counters the event loop bumps per message; published as deltas in batches.
struct RouteCounters {
#define TIDEPOOL_FIELD(field, name, help) std::uint64_t field = 0;
#define TIDEPOOL_LABELLED_FIELD(field, name, help, label, Enum, count) \
  std::array<std::uint64_t, count> field{};
  TIDEPOOL_ROUTE_COUNTERS(TIDEPOOL_FIELD, TIDEPOOL_LABELLED_FIELD)
#undef TIDEPOOL_LABELLED_FIELD
#undef TIDEPOOL_FIELD
};

// Gauges are set from the route's state at publish time.
struct RouteGauges {
#define TIDEPOOL_FIELD(field, name, help) double field = 0;
  TIDEPOOL_ROUTE_GAUGES(TIDEPOOL_FIELD)
#undef TIDEPOOL_FIELD
};

class Metrics;

// One route's series in the registry.
class RouteMetrics {
 public:
  RouteMetrics(Metrics& metrics, const std::string& route);

  // Adds what changed in `counters` since the last call, sets the gauges, and moves the
  // local histograms into the registry.
  void publish(const RouteCounters& counters, const RouteGauges& gauges);

#define TIDEPOOL_FIELD(field, name, help, buckets) LocalHistogram field{buckets()};
  TIDEPOOL_ROUTE_HISTOGRAMS(TIDEPOOL_FIELD)
#undef TIDEPOOL_FIELD

 private:
  RouteCounters published_;
  // Pointers into the registry's families, which own the series and outlive this route.
#define TIDEPOOL_FIELD(field, name, help) prometheus::Counter* field##_ = nullptr;
#define TIDEPOOL_LABELLED_FIELD(field, name, help, label, Enum, count) \
  std::array<prometheus::Counter*, count> field##_{};
  TIDEPOOL_ROUTE_COUNTERS(TIDEPOOL_FIELD, TIDEPOOL_LABELLED_FIELD)
#undef TIDEPOOL_LABELLED_FIELD
#undef TIDEPOOL_FIELD
#define TIDEPOOL_FIELD(field, name, help) prometheus::Gauge* field##_ = nullptr;
  TIDEPOOL_ROUTE_GAUGES(TIDEPOOL_FIELD)
#undef TIDEPOOL_FIELD
#define TIDEPOOL_FIELD(field, name, help, buckets) prometheus::Histogram* field##_series_ = nullptr;
  TIDEPOOL_ROUTE_HISTOGRAMS(TIDEPOOL_FIELD)
#undef TIDEPOOL_FIELD
};

// The process registry with every tidepool_* family (DESIGN §7).
class Metrics {
 public:
  explicit Metrics(const std::string& version);

  [[nodiscard]] std::shared_ptr<prometheus::Registry> registry() const { return registry_; }
  // Prometheus text exposition of everything registered, then the process_* metrics read
  // from /proc/self now.
  [[nodiscard]] std::string serialize() const;

  // A SIGHUP reload's outcome, at `unix_seconds` (the timestamp moves only on success).
  void record_reload(bool successful, double unix_seconds);
  // One refused POST /flush (wrong or missing token, or admin endpoints off). Const because
  // the HTTP server holds the metrics read-only; the counter is thread-safe.
  void count_http_admin_refused() const { http_admin_refused_->Increment(); }

 private:
  friend class RouteMetrics;
  std::shared_ptr<prometheus::Registry> registry_;  // prometheus-cpp's API shares it
  // Owned by registry_; set once in the constructor.
#define TIDEPOOL_FIELD(field, name, help, ...) \
  prometheus::Family<prometheus::Counter>* field##_ = nullptr;
  TIDEPOOL_ROUTE_COUNTERS(TIDEPOOL_FIELD, TIDEPOOL_FIELD)
#undef TIDEPOOL_FIELD
#define TIDEPOOL_FIELD(field, name, help) prometheus::Family<prometheus::Gauge>* field##_ = nullptr;
  TIDEPOOL_ROUTE_GAUGES(TIDEPOOL_FIELD)
#undef TIDEPOOL_FIELD
#define TIDEPOOL_FIELD(field, name, help, buckets) \
  prometheus::Family<prometheus::Histogram>* field##_ = nullptr;
  TIDEPOOL_ROUTE_HISTOGRAMS(TIDEPOOL_FIELD)
#undef TIDEPOOL_FIELD
  // The one series of each process-wide family.
#define TIDEPOOL_FIELD(field, name, help) prometheus::Gauge* field##_ = nullptr;
  TIDEPOOL_PROCESS_GAUGES(TIDEPOOL_FIELD)
#undef TIDEPOOL_FIELD
#define TIDEPOOL_FIELD(field, name, help) prometheus::Counter* field##_ = nullptr;
  TIDEPOOL_PROCESS_COUNTERS(TIDEPOOL_FIELD)
#undef TIDEPOOL_FIELD
};

// The version the libzmq in use reports (zmq_version()), e.g. "4.3.4".
std::string libzmq_version();

}  // namespace tidepool::proxy
