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

enum class FlushTrigger : std::uint8_t { kConnect, kPeriodic, kManual, kShutdown, kWritable };
inline constexpr std::size_t kFlushTriggers = 5;
const char* to_label(FlushTrigger trigger);

// Histogram observations gathered on the event loop and handed to prometheus-cpp in one
// locked call per publish, instead of one lock and several atomics per message.
class LocalHistogram {
 public:
  explicit LocalHistogram(const std::vector<double>& bounds)
      : bounds_(bounds), counts_(bounds.size() + 1, 0.0) {}
  void observe(double value);
  // Moves what was observed into `target` and starts over.
  void publish_to(prometheus::Histogram& target);
  [[nodiscard]] std::uint64_t count() const { return count_; }

 private:
  const std::vector<double>& bounds_;
  std::vector<double> counts_;
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

// Plain counters the event loop bumps per message; published as deltas in batches.
struct RouteCounters {
  std::uint64_t received_messages = 0;
  std::uint64_t received_bytes = 0;
  std::uint64_t forwarded_messages = 0;
  std::uint64_t forwarded_bytes = 0;
  std::uint64_t replies = 0;
  std::uint64_t correlation_timeouts = 0;
  std::uint64_t uncorrelated_results = 0;
  std::uint64_t backend_connects = 0;
  std::uint64_t backend_disconnects = 0;
  std::uint64_t frontend_disconnects = 0;
  std::array<std::uint64_t, kHandshakeFailures> frontend_handshake_failures{};
  std::array<std::uint64_t, kHandshakeFailures> backend_handshake_failures{};
  std::uint64_t spool_replayed = 0;  // copied from the spool's stats at publish time
  std::uint64_t spool_corrupt_records = 0;
  std::array<std::uint64_t, kDropReasons> dropped{};
  std::array<std::uint64_t, kFlushTriggers> flushes{};
  std::array<std::uint64_t, kFlushTriggers> flushed_messages{};
};

// Gauges are set from the route's state at publish time.
struct RouteGauges {
  double queue_messages = 0;
  double queue_bytes = 0;
  double queue_capacity_messages = 0;
  double queue_capacity_bytes = 0;
  double queue_oldest_age_seconds = 0;
  double backend_up = 0;
  double backend_peers = 0;
  double frontend_peers = 0;
  double in_flight = 0;
  double spool_bytes = 0;  // 0 without a spool
};

class Metrics;

// One route's series in the registry.
class RouteMetrics {
 public:
  RouteMetrics(Metrics& metrics, const std::string& route);

  // Adds what changed in `counters` since the last call, sets the gauges, and moves the
  // local histograms into the registry.
  void publish(const RouteCounters& counters, const RouteGauges& gauges);

  LocalHistogram queue_wait;
  LocalHistogram request_duration;

 private:
  RouteCounters published_;
  prometheus::Gauge& queue_messages_;
  prometheus::Gauge& queue_bytes_;
  prometheus::Gauge& queue_capacity_messages_;
  prometheus::Gauge& queue_capacity_bytes_;
  prometheus::Gauge& queue_oldest_age_seconds_;
  prometheus::Gauge& backend_up_;
  prometheus::Gauge& backend_peers_;
  prometheus::Gauge& frontend_peers_;
  prometheus::Gauge& in_flight_;
  prometheus::Gauge& spool_bytes_;
  prometheus::Counter& received_messages_;
  prometheus::Counter& received_bytes_;
  prometheus::Counter& forwarded_messages_;
  prometheus::Counter& forwarded_bytes_;
  prometheus::Counter& replies_;
  prometheus::Counter& correlation_timeouts_;
  prometheus::Counter& uncorrelated_results_;
  prometheus::Counter& backend_connects_;
  prometheus::Counter& backend_disconnects_;
  prometheus::Counter& frontend_disconnects_;
  std::array<prometheus::Counter*, kHandshakeFailures> frontend_handshake_failures_{};
  std::array<prometheus::Counter*, kHandshakeFailures> backend_handshake_failures_{};
  prometheus::Counter& spool_replayed_;
  prometheus::Counter& spool_corrupt_records_;
  std::array<prometheus::Counter*, kDropReasons> dropped_{};
  std::array<prometheus::Counter*, kFlushTriggers> flushes_{};
  std::array<prometheus::Counter*, kFlushTriggers> flushed_messages_{};
  prometheus::Histogram& queue_wait_seconds_;
  prometheus::Histogram& request_duration_seconds_;
};

// The process registry with every tidepool_* family (DESIGN §7).
class Metrics {
 public:
  explicit Metrics(const std::string& version);

  [[nodiscard]] std::shared_ptr<prometheus::Registry> registry() const { return registry_; }
  // Prometheus text exposition of everything registered.
  [[nodiscard]] std::string serialize() const;

 private:
  friend class RouteMetrics;
  std::shared_ptr<prometheus::Registry> registry_;  // prometheus-cpp's API shares it
  prometheus::Family<prometheus::Gauge>& queue_messages_;
  prometheus::Family<prometheus::Gauge>& queue_bytes_;
  prometheus::Family<prometheus::Gauge>& queue_capacity_messages_;
  prometheus::Family<prometheus::Gauge>& queue_capacity_bytes_;
  prometheus::Family<prometheus::Gauge>& queue_oldest_age_seconds_;
  prometheus::Family<prometheus::Gauge>& backend_up_;
  prometheus::Family<prometheus::Gauge>& backend_peers_;
  prometheus::Family<prometheus::Gauge>& frontend_peers_;
  prometheus::Family<prometheus::Gauge>& in_flight_;
  prometheus::Family<prometheus::Gauge>& spool_bytes_;
  prometheus::Family<prometheus::Counter>& received_messages_;
  prometheus::Family<prometheus::Counter>& received_bytes_;
  prometheus::Family<prometheus::Counter>& forwarded_messages_;
  prometheus::Family<prometheus::Counter>& forwarded_bytes_;
  prometheus::Family<prometheus::Counter>& dropped_;
  prometheus::Family<prometheus::Counter>& flushes_;
  prometheus::Family<prometheus::Counter>& flushed_messages_;
  prometheus::Family<prometheus::Counter>& backend_connects_;
  prometheus::Family<prometheus::Counter>& backend_disconnects_;
  prometheus::Family<prometheus::Counter>& frontend_disconnects_;
  prometheus::Family<prometheus::Counter>& frontend_handshake_failures_;
  prometheus::Family<prometheus::Counter>& backend_handshake_failures_;
  prometheus::Family<prometheus::Counter>& replies_;
  prometheus::Family<prometheus::Counter>& correlation_timeouts_;
  prometheus::Family<prometheus::Counter>& uncorrelated_results_;
  prometheus::Family<prometheus::Counter>& spool_replayed_;
  prometheus::Family<prometheus::Counter>& spool_corrupt_records_;
  prometheus::Family<prometheus::Histogram>& queue_wait_seconds_;
  prometheus::Family<prometheus::Histogram>& request_duration_seconds_;
};

// Bucket bounds: queue waits span a fast path (~10 µs) to a backend outage (minutes);
// backtest requests take from milliseconds to many minutes.
const std::vector<double>& queue_wait_buckets();
const std::vector<double>& request_duration_buckets();

}  // namespace tidepool::proxy
