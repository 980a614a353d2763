// Metrics: the families and their names, help and types (DESIGN §7), label values, publishing
// deltas and gauges, and the local histograms.
#include "tidepool/proxy/metrics.h"

#include <doctest/doctest.h>
#include <prometheus/client_metric.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

using tidepool::proxy::DropReason;
using tidepool::proxy::FlushTrigger;
using tidepool::proxy::HandshakeFailure;
using tidepool::proxy::kDropReasons;
using tidepool::proxy::kFlushTriggers;
using tidepool::proxy::LocalHistogram;
using tidepool::proxy::Metrics;
using tidepool::proxy::RouteCounters;
using tidepool::proxy::RouteGauges;
using tidepool::proxy::RouteMetrics;
using tidepool::proxy::to_label;

namespace {

using Labels = std::map<std::string, std::string>;

// The series of family `name` whose labels are exactly `labels`, from a fresh Collect().
std::optional<prometheus::ClientMetric> series(const Metrics& metrics, const std::string& name,
                                               const Labels& labels) {
  for (const auto& family : metrics.registry()->Collect()) {
    if (family.name != name) continue;
    for (const auto& metric : family.metric) {
      Labels have;
      for (const auto& label : metric.label) have[label.name] = label.value;
      if (have == labels) return metric;
    }
  }
  return std::nullopt;
}

double counter(const Metrics& metrics, const std::string& name, const Labels& labels) {
  const auto metric = series(metrics, name, labels);
  REQUIRE_MESSAGE(metric.has_value(), name);
  return metric->counter.value;
}

double gauge(const Metrics& metrics, const std::string& name, const Labels& labels) {
  const auto metric = series(metrics, name, labels);
  REQUIRE_MESSAGE(metric.has_value(), name);
  return metric->gauge.value;
}

prometheus::ClientMetric::Histogram histogram(const Metrics& metrics, const std::string& name,
                                              const Labels& labels) {
  const auto metric = series(metrics, name, labels);
  REQUIRE_MESSAGE(metric.has_value(), name);
  return metric->histogram;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

const Labels kRoute = {{"route", "r"}};

struct Family {
  const char* name;
  const char* type;
};

// DESIGN §7.
const Family kFamilies[] = {
    {"tidepool_build_info", "gauge"},
    // Process-wide (issue 15): SIGHUP reload status as Prometheus exports its own, and refused
    // POST /flush requests.
    {"tidepool_config_last_reload_successful", "gauge"},
    {"tidepool_config_last_reload_success_timestamp_seconds", "gauge"},
    {"tidepool_http_admin_refused_total", "counter"},
    {"tidepool_queue_messages", "gauge"},
    {"tidepool_queue_bytes", "gauge"},
    {"tidepool_queue_capacity_messages", "gauge"},
    {"tidepool_queue_capacity_bytes", "gauge"},
    {"tidepool_queue_oldest_age_seconds", "gauge"},
    {"tidepool_received_messages_total", "counter"},
    {"tidepool_received_bytes_total", "counter"},
    {"tidepool_forwarded_messages_total", "counter"},
    {"tidepool_forwarded_bytes_total", "counter"},
    {"tidepool_dropped_messages_total", "counter"},
    {"tidepool_flushes_total", "counter"},
    {"tidepool_flushed_messages_total", "counter"},
    {"tidepool_backend_up", "gauge"},
    {"tidepool_backend_peers", "gauge"},
    {"tidepool_frontend_peers", "gauge"},
    {"tidepool_backend_connects_total", "counter"},
    {"tidepool_backend_disconnects_total", "counter"},
    {"tidepool_frontend_disconnects_total", "counter"},
    {"tidepool_queue_wait_seconds", "histogram"},
    {"tidepool_in_flight", "gauge"},
    {"tidepool_request_duration_seconds", "histogram"},
    {"tidepool_replies_total", "counter"},
    {"tidepool_correlation_timeouts_total", "counter"},
    // Split from correlation_timeouts, which counted these too (issue 12).
    {"tidepool_reply_timeouts_total", "counter"},
    {"tidepool_uncorrelated_results_total", "counter"},
    {"tidepool_spool_bytes", "gauge"},
    {"tidepool_spool_replayed_messages_total", "counter"},
    {"tidepool_spool_corrupt_records_total", "counter"},
    // Not in DESIGN §7 (yet): added with the ZMTP-garbage refusal (commit fcbd308).
    {"tidepool_frontend_handshake_failures_total", "counter"},
    // Added with CURVE: a worker refusing tidepool's key is otherwise invisible.
    {"tidepool_backend_handshake_failures_total", "counter"},
    // Added when a flap's thousands of ignored replies were only debug lines (stop 24).
    {"tidepool_duplicate_replies_total", "counter"},
};

}  // namespace

TEST_CASE("labels match DESIGN §7") {
  const char* reasons[] = {"queue_full", "evicted",    "too_large",   "malformed",  "expired",
                           "shutdown",   "unroutable", "spool_error", "slow_client"};
  static_assert(std::size(reasons) == kDropReasons);
  for (std::size_t i = 0; i < kDropReasons; ++i) {
    CHECK(std::string(to_label(static_cast<DropReason>(i))) == reasons[i]);
  }
  const char* triggers[] = {"connect", "periodic", "manual", "shutdown", "writable", "drain_rate"};
  static_assert(std::size(triggers) == kFlushTriggers);
  for (std::size_t i = 0; i < kFlushTriggers; ++i) {
    CHECK(std::string(to_label(static_cast<FlushTrigger>(i))) == triggers[i]);
  }
  const char* handshake_failures[] = {"unauthorized", "mechanism", "cryptographic", "protocol",
                                      "incomplete"};
  static_assert(std::size(handshake_failures) == tidepool::proxy::kHandshakeFailures);
  for (std::size_t i = 0; i < std::size(handshake_failures); ++i) {
    CHECK(std::string(to_label(static_cast<HandshakeFailure>(i))) == handshake_failures[i]);
  }
}

TEST_CASE("serialize() has HELP and TYPE for every family, with a route registered") {
  Metrics metrics("9.8.7");
  RouteMetrics route(metrics, "r");
  // A leading newline lets every line be matched as "\n" + line.
  const std::string text = "\n" + metrics.serialize();
  for (const auto& family : kFamilies) {
    CAPTURE(family.name);
    CHECK(contains(text, std::string("\n# HELP ") + family.name + " "));
    CHECK(contains(text, std::string("\n# TYPE ") + family.name + " " + family.type + "\n"));
  }
  CHECK(contains(text, "tidepool_build_info{libzmq=\"" + tidepool::proxy::libzmq_version() +
                           "\",version=\"9.8.7\"} 1\n"));
  // Every per-route series carries route="r".
  CHECK(contains(text, "tidepool_queue_messages{route=\"r\"} 0\n"));
  CHECK(contains(text, "tidepool_received_messages_total{route=\"r\"} 0\n"));
  CHECK(contains(text, "tidepool_queue_wait_seconds_count{route=\"r\"} 0\n"));
  CHECK(contains(text, "tidepool_request_duration_seconds_bucket{route=\"r\",le=\"+Inf\"} 0\n"));
}

TEST_CASE("no metric family outside the list above") {
  Metrics metrics("1");
  RouteMetrics route(metrics, "r");
  std::vector<std::string> names;
  for (const auto& family : metrics.registry()->Collect()) names.push_back(family.name);
  for (const auto& name : names) {
    CAPTURE(name);
    bool known = false;
    for (const auto& family : kFamilies) known = known || name == family.name;
    CHECK(known);
  }
  CHECK(names.size() == std::size(kFamilies));
}

// How many times `needle` occurs in `haystack`.
std::size_t occurrences(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

TEST_CASE("every entry of the metric lists is exposed once, with its help text and type") {
  struct Entry {
    const char* name;
    const char* help;
    const char* type;
  };
  const std::vector<Entry> entries = {
#define COUNTER_ENTRY(field, name, help, ...) {name, help, "counter"},
#define GAUGE_ENTRY(field, name, help) {name, help, "gauge"},
#define HISTOGRAM_ENTRY(field, name, help, buckets) {name, help, "histogram"},
      TIDEPOOL_ROUTE_COUNTERS(COUNTER_ENTRY, COUNTER_ENTRY) TIDEPOOL_ROUTE_GAUGES(GAUGE_ENTRY)
          TIDEPOOL_ROUTE_HISTOGRAMS(HISTOGRAM_ENTRY)
#undef HISTOGRAM_ENTRY
#undef GAUGE_ENTRY
#undef COUNTER_ENTRY
  };
  Metrics metrics("1");
  RouteMetrics a(metrics, "a");
  RouteMetrics b(metrics, "b");
  const std::string text = "\n" + metrics.serialize();
  for (const auto& entry : entries) {
    CAPTURE(entry.name);
    CHECK(occurrences(text, std::string("\n# HELP ") + entry.name + " " + entry.help + "\n") == 1);
    CHECK(occurrences(text, std::string("\n# TYPE ") + entry.name + " ") == 1);
    CHECK(occurrences(text, std::string("\n# TYPE ") + entry.name + " " + entry.type + "\n") == 1);
    // Each route has its own series, the same number.
    std::map<std::string, std::size_t> per_route;
    for (const auto& family : metrics.registry()->Collect()) {
      if (family.name != entry.name) continue;
      for (const auto& metric : family.metric) {
        for (const auto& label : metric.label) {
          if (label.name == "route") ++per_route[label.value];
        }
      }
    }
    CHECK(per_route.size() == 2);
    CHECK(per_route["a"] >= 1);
    CHECK(per_route["a"] == per_route["b"]);
  }
  // The lists plus tidepool_build_info are every family in the registry (the process_*
  // families are added at serialize(), from /proc; process_stats_test checks them).
  std::size_t process_wide = 0;
#define COUNT_ENTRY(...) ++process_wide;
  TIDEPOOL_PROCESS_GAUGES(COUNT_ENTRY)
  TIDEPOOL_PROCESS_COUNTERS(COUNT_ENTRY)
#undef COUNT_ENTRY
  CHECK(process_wide == 3);
  CHECK(metrics.registry()->Collect().size() == entries.size() + 1 + process_wide);
}

TEST_CASE("drop reasons and flush triggers exist at 0 from the start") {
  Metrics metrics("1");
  RouteMetrics route(metrics, "r");
  for (std::size_t i = 0; i < kDropReasons; ++i) {
    const std::string reason = to_label(static_cast<DropReason>(i));
    CAPTURE(reason);
    CHECK(counter(metrics, "tidepool_dropped_messages_total",
                  {{"route", "r"}, {"reason", reason}}) == 0);
  }
  for (std::size_t i = 0; i < kFlushTriggers; ++i) {
    const std::string trigger = to_label(static_cast<FlushTrigger>(i));
    CAPTURE(trigger);
    CHECK(counter(metrics, "tidepool_flushes_total", {{"route", "r"}, {"trigger", trigger}}) == 0);
    CHECK(counter(metrics, "tidepool_flushed_messages_total",
                  {{"route", "r"}, {"trigger", trigger}}) == 0);
  }
  const std::string text = metrics.serialize();
  CHECK(contains(text, "tidepool_dropped_messages_total{reason=\"unroutable\",route=\"r\"} 0\n"));
  CHECK(contains(text, "tidepool_dropped_messages_total{reason=\"spool_error\",route=\"r\"} 0\n"));
  CHECK(contains(text, "tidepool_spool_bytes{route=\"r\"} 0\n"));
  CHECK(contains(text, "tidepool_spool_replayed_messages_total{route=\"r\"} 0\n"));
  CHECK(contains(text, "tidepool_spool_corrupt_records_total{route=\"r\"} 0\n"));
  CHECK(contains(text, "tidepool_flushes_total{route=\"r\",trigger=\"writable\"} 0\n"));
}

TEST_CASE("publish adds deltas: totals equal the counters after several publishes") {
  Metrics metrics("1");
  RouteMetrics route(metrics, "r");
  RouteCounters c;
  RouteGauges g;

  c.received_messages = 5;
  c.received_bytes = 500;
  c.forwarded_messages = 3;
  c.forwarded_bytes = 300;
  c.replies = 2;
  c.correlation_timeouts = 1;
  c.uncorrelated_results = 4;
  c.backend_connects = 1;
  c.backend_disconnects = 0;
  c.frontend_handshake_failures[static_cast<std::size_t>(HandshakeFailure::kIncomplete)] = 6;
  c.spool_replayed = 100;
  c.spool_corrupt_records = 1;
  c.dropped[static_cast<std::size_t>(DropReason::kQueueFull)] = 7;
  c.flushes[static_cast<std::size_t>(FlushTrigger::kConnect)] = 1;
  c.flushed_messages[static_cast<std::size_t>(FlushTrigger::kConnect)] = 3;
  route.publish(c, g);
  CHECK(counter(metrics, "tidepool_received_messages_total", kRoute) == 5);
  CHECK(counter(metrics, "tidepool_dropped_messages_total",
                {{"route", "r"}, {"reason", "queue_full"}}) == 7);

  c.received_messages = 12;
  c.received_bytes = 1200;
  c.forwarded_messages = 10;
  c.forwarded_bytes = 1000;
  c.replies = 9;
  c.correlation_timeouts = 2;
  c.reply_timeouts = 5;
  c.uncorrelated_results = 4;  // unchanged
  c.backend_connects = 3;
  c.backend_disconnects = 2;
  c.frontend_handshake_failures[static_cast<std::size_t>(HandshakeFailure::kIncomplete)] = 10;
  c.backend_handshake_failures[static_cast<std::size_t>(HandshakeFailure::kUnauthorized)] = 2;
  c.spool_replayed = 100;  // unchanged
  c.spool_corrupt_records = 2;
  c.dropped[static_cast<std::size_t>(DropReason::kSpoolError)] = 3;
  c.dropped[static_cast<std::size_t>(DropReason::kQueueFull)] = 8;
  c.dropped[static_cast<std::size_t>(DropReason::kUnroutable)] = 1;
  c.flushes[static_cast<std::size_t>(FlushTrigger::kPeriodic)] = 2;
  c.flushed_messages[static_cast<std::size_t>(FlushTrigger::kPeriodic)] = 7;
  route.publish(c, g);
  route.publish(c, g);  // nothing new: nothing added

  CHECK(counter(metrics, "tidepool_received_messages_total", kRoute) == 12);
  CHECK(counter(metrics, "tidepool_received_bytes_total", kRoute) == 1200);
  CHECK(counter(metrics, "tidepool_forwarded_messages_total", kRoute) == 10);
  CHECK(counter(metrics, "tidepool_forwarded_bytes_total", kRoute) == 1000);
  CHECK(counter(metrics, "tidepool_replies_total", kRoute) == 9);
  CHECK(counter(metrics, "tidepool_correlation_timeouts_total", kRoute) == 2);
  CHECK(counter(metrics, "tidepool_reply_timeouts_total", kRoute) == 5);
  CHECK(counter(metrics, "tidepool_uncorrelated_results_total", kRoute) == 4);
  CHECK(counter(metrics, "tidepool_backend_connects_total", kRoute) == 3);
  CHECK(counter(metrics, "tidepool_backend_disconnects_total", kRoute) == 2);
  CHECK(counter(metrics, "tidepool_frontend_handshake_failures_total",
                {{"route", "r"}, {"reason", "incomplete"}}) == 10);
  CHECK(counter(metrics, "tidepool_frontend_handshake_failures_total",
                {{"route", "r"}, {"reason", "unauthorized"}}) == 0);
  CHECK(counter(metrics, "tidepool_backend_handshake_failures_total",
                {{"route", "r"}, {"reason", "unauthorized"}}) == 2);
  CHECK(counter(metrics, "tidepool_spool_replayed_messages_total", kRoute) == 100);
  CHECK(counter(metrics, "tidepool_spool_corrupt_records_total", kRoute) == 2);
  CHECK(counter(metrics, "tidepool_dropped_messages_total",
                {{"route", "r"}, {"reason", "spool_error"}}) == 3);
  CHECK(counter(metrics, "tidepool_dropped_messages_total",
                {{"route", "r"}, {"reason", "queue_full"}}) == 8);
  CHECK(counter(metrics, "tidepool_dropped_messages_total",
                {{"route", "r"}, {"reason", "unroutable"}}) == 1);
  CHECK(counter(metrics, "tidepool_dropped_messages_total",
                {{"route", "r"}, {"reason", "evicted"}}) == 0);
  CHECK(counter(metrics, "tidepool_flushes_total", {{"route", "r"}, {"trigger", "connect"}}) == 1);
  CHECK(counter(metrics, "tidepool_flushes_total", {{"route", "r"}, {"trigger", "periodic"}}) == 2);
  CHECK(counter(metrics, "tidepool_flushed_messages_total",
                {{"route", "r"}, {"trigger", "connect"}}) == 3);
  CHECK(counter(metrics, "tidepool_flushed_messages_total",
                {{"route", "r"}, {"trigger", "periodic"}}) == 7);
}

TEST_CASE("two routes keep separate series") {
  Metrics metrics("1");
  RouteMetrics a(metrics, "a");
  RouteMetrics b(metrics, "b");
  RouteCounters ca;
  ca.received_messages = 3;
  RouteCounters cb;
  cb.received_messages = 40;
  a.publish(ca, RouteGauges{});
  b.publish(cb, RouteGauges{});
  CHECK(counter(metrics, "tidepool_received_messages_total", {{"route", "a"}}) == 3);
  CHECK(counter(metrics, "tidepool_received_messages_total", {{"route", "b"}}) == 40);
}

TEST_CASE("publish sets every gauge to the given value") {
  Metrics metrics("1");
  RouteMetrics route(metrics, "r");
  RouteGauges g;
  g.queue_messages = 11;
  g.queue_bytes = 2048;
  g.queue_capacity_messages = 5000;
  g.queue_capacity_bytes = 268435456;
  g.queue_oldest_age_seconds = 1.5;
  g.backend_up = 1;
  g.backend_peers = 2;
  g.frontend_peers = 3;
  g.in_flight = 4;
  g.spool_bytes = 4096;
  route.publish(RouteCounters{}, g);
  CHECK(gauge(metrics, "tidepool_queue_messages", kRoute) == 11);
  CHECK(gauge(metrics, "tidepool_queue_bytes", kRoute) == 2048);
  CHECK(gauge(metrics, "tidepool_queue_capacity_messages", kRoute) == 5000);
  CHECK(gauge(metrics, "tidepool_queue_capacity_bytes", kRoute) == 268435456);
  CHECK(gauge(metrics, "tidepool_queue_oldest_age_seconds", kRoute) == 1.5);
  CHECK(gauge(metrics, "tidepool_backend_up", kRoute) == 1);
  CHECK(gauge(metrics, "tidepool_backend_peers", kRoute) == 2);
  CHECK(gauge(metrics, "tidepool_frontend_peers", kRoute) == 3);
  CHECK(gauge(metrics, "tidepool_in_flight", kRoute) == 4);
  CHECK(gauge(metrics, "tidepool_spool_bytes", kRoute) == 4096);
  // Gauges are set, not added.
  g.queue_messages = 0;
  g.backend_up = 0;
  route.publish(RouteCounters{}, g);
  CHECK(gauge(metrics, "tidepool_queue_messages", kRoute) == 0);
  CHECK(gauge(metrics, "tidepool_backend_up", kRoute) == 0);
  CHECK(gauge(metrics, "tidepool_in_flight", kRoute) == 4);
}

TEST_CASE("LocalHistogram: buckets are le-inclusive, sum and count, reset after publish") {
  const std::vector<double> bounds = {0.1, 1, 10};
  LocalHistogram local(bounds);
  prometheus::Histogram target(bounds);
  for (const double v : {0.05, 0.1, 0.5, 1.0, 2.0, 10.0, 11.0, 100.0}) local.observe(v);
  CHECK(local.count() == 8);
  local.publish_to(target);
  CHECK(local.count() == 0);

  auto h = target.Collect().histogram;
  CHECK(h.sample_count == 8);
  CHECK(h.sample_sum == doctest::Approx(124.65));
  REQUIRE(h.bucket.size() == 4);
  CHECK(h.bucket[0].upper_bound == 0.1);
  CHECK(h.bucket[0].cumulative_count == 2);  // 0.05, 0.1
  CHECK(h.bucket[1].cumulative_count == 4);  // + 0.5, 1.0
  CHECK(h.bucket[2].cumulative_count == 6);  // + 2.0, 10.0
  CHECK(h.bucket[3].cumulative_count == 8);  // + 11, 100 (+Inf)

  // Publishing again without observations adds nothing.
  local.publish_to(target);
  h = target.Collect().histogram;
  CHECK(h.sample_count == 8);

  // New observations are added once, not with the old ones again.
  local.observe(0.2);
  local.publish_to(target);
  h = target.Collect().histogram;
  CHECK(h.sample_count == 9);
  CHECK(h.sample_sum == doctest::Approx(124.85));
  CHECK(h.bucket[0].cumulative_count == 2);
  CHECK(h.bucket[1].cumulative_count == 5);
  CHECK(h.bucket[3].cumulative_count == 9);
}

TEST_CASE("RouteMetrics::publish moves the local histograms into the registry once") {
  Metrics metrics("1");
  RouteMetrics route(metrics, "r");
  route.queue_wait.observe(0.00005);  // first bucket (le 0.0001)
  route.queue_wait.observe(2.0);      // le 5
  route.queue_wait.observe(4000);     // +Inf
  route.request_duration.observe(0.5);
  route.publish(RouteCounters{}, RouteGauges{});
  route.publish(RouteCounters{}, RouteGauges{});

  const auto wait = histogram(metrics, "tidepool_queue_wait_seconds", kRoute);
  CHECK(wait.sample_count == 3);
  CHECK(wait.sample_sum == doctest::Approx(4002.00005));
  REQUIRE(wait.bucket.size() == tidepool::proxy::queue_wait_buckets().size() + 1);
  CHECK(wait.bucket.front().cumulative_count == 1);
  CHECK(wait.bucket[wait.bucket.size() - 2].cumulative_count == 2);  // le 1800
  CHECK(wait.bucket.back().cumulative_count == 3);

  const auto duration = histogram(metrics, "tidepool_request_duration_seconds", kRoute);
  CHECK(duration.sample_count == 1);
  CHECK(duration.sample_sum == 0.5);
  CHECK(route.queue_wait.count() == 0);
  CHECK(route.request_duration.count() == 0);
}

TEST_CASE("bucket bounds are strictly increasing and span the documented ranges") {
  for (const auto* bounds :
       {&tidepool::proxy::queue_wait_buckets(), &tidepool::proxy::request_duration_buckets()}) {
    REQUIRE(bounds->size() >= 2);
    for (std::size_t i = 1; i < bounds->size(); ++i) CHECK((*bounds)[i - 1] < (*bounds)[i]);
  }
  CHECK(tidepool::proxy::queue_wait_buckets().front() <= 0.0001);
  CHECK(tidepool::proxy::queue_wait_buckets().back() >= 300);
  CHECK(tidepool::proxy::request_duration_buckets().back() >= 900);
}
