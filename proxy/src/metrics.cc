#include "tidepool/proxy/metrics.h"

#include <algorithm>
#include <sstream>

#include <prometheus/text_serializer.h>

namespace tidepool::proxy {
namespace {

template <typename Builder>
auto& build(Builder builder, prometheus::Registry& registry, const char* name, const char* help) {
  return builder.Name(name).Help(help).Register(registry);
}

void add_delta(prometheus::Counter& counter, std::uint64_t now, std::uint64_t before) {
  if (now > before) counter.Increment(static_cast<double>(now - before));
}

}  // namespace

const char* to_label(DropReason reason) {
  static constexpr std::array<const char*, kDropReasons> kNames = {
      "queue_full", "evicted",    "too_large",   "malformed",  "expired",
      "shutdown",   "unroutable", "spool_error", "slow_client"};
  return kNames[static_cast<std::size_t>(reason)];
}

const char* to_label(FlushTrigger trigger) {
  static constexpr std::array<const char*, kFlushTriggers> kNames = {
      "connect", "periodic", "manual", "shutdown", "writable"};
  return kNames[static_cast<std::size_t>(trigger)];
}

const std::vector<double>& queue_wait_buckets() {
  static const std::vector<double> kBounds = {0.0001, 0.001, 0.01, 0.1, 0.5, 1,
                                              5,      30,    60,   300, 1800};
  return kBounds;
}

const std::vector<double>& request_duration_buckets() {
  static const std::vector<double> kBounds = {0.001, 0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600};
  return kBounds;
}

void LocalHistogram::observe(double value) {
  const auto bucket = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  counts_[static_cast<std::size_t>(bucket)] += 1;
  sum_ += value;
  ++count_;
}

void LocalHistogram::publish_to(prometheus::Histogram& target) {
  if (count_ == 0) return;
  target.ObserveMultiple(counts_, sum_);
  std::fill(counts_.begin(), counts_.end(), 0.0);
  sum_ = 0;
  count_ = 0;
}

Metrics::Metrics(const std::string& version)
    : registry_(std::make_shared<prometheus::Registry>()),
      queue_messages_(build(prometheus::BuildGauge(), *registry_, "tidepool_queue_messages",
                            "Messages waiting in the route's queue.")),
      queue_bytes_(build(prometheus::BuildGauge(), *registry_, "tidepool_queue_bytes",
                         "Payload bytes waiting in the route's queue.")),
      queue_capacity_messages_(build(prometheus::BuildGauge(), *registry_,
                                     "tidepool_queue_capacity_messages",
                                     "Queue limit in messages (queue.max_messages).")),
      queue_capacity_bytes_(build(prometheus::BuildGauge(), *registry_,
                                  "tidepool_queue_capacity_bytes",
                                  "Queue limit in bytes (queue.max_bytes).")),
      queue_oldest_age_seconds_(build(prometheus::BuildGauge(), *registry_,
                                      "tidepool_queue_oldest_age_seconds",
                                      "Age of the message at the head of the queue; 0 when "
                                      "empty.")),
      backend_up_(build(prometheus::BuildGauge(), *registry_, "tidepool_backend_up",
                        "1 while the backend has at least one live peer.")),
      backend_peers_(build(prometheus::BuildGauge(), *registry_, "tidepool_backend_peers",
                           "Backend peers with a completed handshake.")),
      frontend_peers_(build(prometheus::BuildGauge(), *registry_, "tidepool_frontend_peers",
                            "Frontend peers with a completed handshake.")),
      in_flight_(build(prometheus::BuildGauge(), *registry_, "tidepool_in_flight",
                       "Requests forwarded and awaiting their reply or correlated result.")),
      spool_bytes_(build(prometheus::BuildGauge(), *registry_, "tidepool_spool_bytes",
                         "Bytes of the route's spool segment files on disk; 0 without a "
                         "spool.")),
      received_messages_(build(prometheus::BuildCounter(), *registry_,
                               "tidepool_received_messages_total",
                               "Messages read from the frontend.")),
      received_bytes_(build(prometheus::BuildCounter(), *registry_, "tidepool_received_bytes_total",
                            "Payload bytes read from the frontend.")),
      forwarded_messages_(build(prometheus::BuildCounter(), *registry_,
                                "tidepool_forwarded_messages_total",
                                "Messages sent to the backend.")),
      forwarded_bytes_(build(prometheus::BuildCounter(), *registry_,
                             "tidepool_forwarded_bytes_total",
                             "Payload bytes sent to the backend.")),
      dropped_(build(prometheus::BuildCounter(), *registry_, "tidepool_dropped_messages_total",
                     "Messages dropped, by reason.")),
      flushes_(build(prometheus::BuildCounter(), *registry_, "tidepool_flushes_total",
                     "Drain passes started with a non-empty queue, by trigger.")),
      flushed_messages_(build(prometheus::BuildCounter(), *registry_,
                              "tidepool_flushed_messages_total",
                              "Messages moved to the backend by drain passes, by trigger.")),
      backend_connects_(build(prometheus::BuildCounter(), *registry_,
                              "tidepool_backend_connects_total",
                              "Backend peers that completed a handshake.")),
      backend_disconnects_(build(prometheus::BuildCounter(), *registry_,
                                 "tidepool_backend_disconnects_total",
                                 "Backend peers lost after a handshake.")),
      frontend_disconnects_(build(prometheus::BuildCounter(), *registry_,
                                  "tidepool_frontend_disconnects_total",
                                  "Frontend peers whose connection ended after a handshake, for "
                                  "any reason (libzmq reports none): the client left, its "
                                  "connection broke, or libzmq refused a frame over twice "
                                  "max_message_bytes.")),
      frontend_handshake_failures_(build(
          prometheus::BuildCounter(), *registry_, "tidepool_frontend_handshake_failures_total",
          "Frontend connections closed before completing a ZMTP handshake, by reason "
          "(unauthorized, mechanism, cryptographic, protocol, incomplete).")),
      backend_handshake_failures_(
          build(prometheus::BuildCounter(), *registry_, "tidepool_backend_handshake_failures_total",
                "Backend connections closed before completing a ZMTP handshake, by reason (a "
                "worker that refuses tidepool's CURVE key: unauthorized).")),
      replies_(build(prometheus::BuildCounter(), *registry_, "tidepool_replies_total",
                     "Replies delivered to clients.")),
      correlation_timeouts_(build(prometheus::BuildCounter(), *registry_,
                                  "tidepool_correlation_timeouts_total",
                                  "Requests with no correlated result within the timeout.")),
      uncorrelated_results_(build(prometheus::BuildCounter(), *registry_,
                                  "tidepool_uncorrelated_results_total",
                                  "Results whose key matched no request in flight.")),
      spool_replayed_(build(prometheus::BuildCounter(), *registry_,
                            "tidepool_spool_replayed_messages_total",
                            "Messages read back from the spool into the queue at start.")),
      spool_corrupt_records_(build(prometheus::BuildCounter(), *registry_,
                                   "tidepool_spool_corrupt_records_total",
                                   "Torn or corrupt spool records (and bad segment headers) "
                                   "found and cut off at start.")),
      queue_wait_seconds_(build(prometheus::BuildHistogram(), *registry_,
                                "tidepool_queue_wait_seconds", "Time from arrival to forwarding.")),
      request_duration_seconds_(build(prometheus::BuildHistogram(), *registry_,
                                      "tidepool_request_duration_seconds",
                                      "Time from forwarding a request to its reply or result.")) {
  build(prometheus::BuildGauge(), *registry_, "tidepool_build_info",
        "Always 1; the label says which tidepool is running.")
      .Add({{"version", version}})
      .Set(1);
}

std::string Metrics::serialize() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

RouteMetrics::RouteMetrics(Metrics& m, const std::string& route)
    : queue_wait(queue_wait_buckets()),
      request_duration(request_duration_buckets()),
      queue_messages_(m.queue_messages_.Add({{"route", route}})),
      queue_bytes_(m.queue_bytes_.Add({{"route", route}})),
      queue_capacity_messages_(m.queue_capacity_messages_.Add({{"route", route}})),
      queue_capacity_bytes_(m.queue_capacity_bytes_.Add({{"route", route}})),
      queue_oldest_age_seconds_(m.queue_oldest_age_seconds_.Add({{"route", route}})),
      backend_up_(m.backend_up_.Add({{"route", route}})),
      backend_peers_(m.backend_peers_.Add({{"route", route}})),
      frontend_peers_(m.frontend_peers_.Add({{"route", route}})),
      in_flight_(m.in_flight_.Add({{"route", route}})),
      spool_bytes_(m.spool_bytes_.Add({{"route", route}})),
      received_messages_(m.received_messages_.Add({{"route", route}})),
      received_bytes_(m.received_bytes_.Add({{"route", route}})),
      forwarded_messages_(m.forwarded_messages_.Add({{"route", route}})),
      forwarded_bytes_(m.forwarded_bytes_.Add({{"route", route}})),
      replies_(m.replies_.Add({{"route", route}})),
      correlation_timeouts_(m.correlation_timeouts_.Add({{"route", route}})),
      uncorrelated_results_(m.uncorrelated_results_.Add({{"route", route}})),
      backend_connects_(m.backend_connects_.Add({{"route", route}})),
      backend_disconnects_(m.backend_disconnects_.Add({{"route", route}})),
      frontend_disconnects_(m.frontend_disconnects_.Add({{"route", route}})),
      spool_replayed_(m.spool_replayed_.Add({{"route", route}})),
      spool_corrupt_records_(m.spool_corrupt_records_.Add({{"route", route}})),
      queue_wait_seconds_(m.queue_wait_seconds_.Add({{"route", route}}, queue_wait_buckets())),
      request_duration_seconds_(
          m.request_duration_seconds_.Add({{"route", route}}, request_duration_buckets())) {
  // Every reason and trigger exists from the start at 0, so rate() and alerts see the first
  // increase.
  for (std::size_t i = 0; i < kDropReasons; ++i) {
    dropped_[i] =
        &m.dropped_.Add({{"route", route}, {"reason", to_label(static_cast<DropReason>(i))}});
  }
  for (std::size_t i = 0; i < kFlushTriggers; ++i) {
    const char* trigger = to_label(static_cast<FlushTrigger>(i));
    flushes_[i] = &m.flushes_.Add({{"route", route}, {"trigger", trigger}});
    flushed_messages_[i] = &m.flushed_messages_.Add({{"route", route}, {"trigger", trigger}});
  }
  for (std::size_t i = 0; i < kHandshakeFailures; ++i) {
    const char* reason = to_label(static_cast<HandshakeFailure>(i));
    frontend_handshake_failures_[i] =
        &m.frontend_handshake_failures_.Add({{"route", route}, {"reason", reason}});
    backend_handshake_failures_[i] =
        &m.backend_handshake_failures_.Add({{"route", route}, {"reason", reason}});
  }
}

void RouteMetrics::publish(const RouteCounters& c, const RouteGauges& g) {
  const RouteCounters& p = published_;
  add_delta(received_messages_, c.received_messages, p.received_messages);
  add_delta(received_bytes_, c.received_bytes, p.received_bytes);
  add_delta(forwarded_messages_, c.forwarded_messages, p.forwarded_messages);
  add_delta(forwarded_bytes_, c.forwarded_bytes, p.forwarded_bytes);
  add_delta(replies_, c.replies, p.replies);
  add_delta(correlation_timeouts_, c.correlation_timeouts, p.correlation_timeouts);
  add_delta(uncorrelated_results_, c.uncorrelated_results, p.uncorrelated_results);
  add_delta(backend_connects_, c.backend_connects, p.backend_connects);
  add_delta(backend_disconnects_, c.backend_disconnects, p.backend_disconnects);
  add_delta(frontend_disconnects_, c.frontend_disconnects, p.frontend_disconnects);
  for (std::size_t i = 0; i < kHandshakeFailures; ++i) {
    add_delta(*frontend_handshake_failures_[i], c.frontend_handshake_failures[i],
              p.frontend_handshake_failures[i]);
    add_delta(*backend_handshake_failures_[i], c.backend_handshake_failures[i],
              p.backend_handshake_failures[i]);
  }
  add_delta(spool_replayed_, c.spool_replayed, p.spool_replayed);
  add_delta(spool_corrupt_records_, c.spool_corrupt_records, p.spool_corrupt_records);
  for (std::size_t i = 0; i < kDropReasons; ++i)
    add_delta(*dropped_[i], c.dropped[i], p.dropped[i]);
  for (std::size_t i = 0; i < kFlushTriggers; ++i) {
    add_delta(*flushes_[i], c.flushes[i], p.flushes[i]);
    add_delta(*flushed_messages_[i], c.flushed_messages[i], p.flushed_messages[i]);
  }
  published_ = c;

  queue_messages_.Set(g.queue_messages);
  queue_bytes_.Set(g.queue_bytes);
  queue_capacity_messages_.Set(g.queue_capacity_messages);
  queue_capacity_bytes_.Set(g.queue_capacity_bytes);
  queue_oldest_age_seconds_.Set(g.queue_oldest_age_seconds);
  backend_up_.Set(g.backend_up);
  backend_peers_.Set(g.backend_peers);
  frontend_peers_.Set(g.frontend_peers);
  in_flight_.Set(g.in_flight);
  spool_bytes_.Set(g.spool_bytes);
  queue_wait.publish_to(queue_wait_seconds_);
  request_duration.publish_to(request_duration_seconds_);
}

}  // namespace tidepool::proxy
