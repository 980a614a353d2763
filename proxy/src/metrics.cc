// The metrics registry and per-route series, generated from the lists in metrics.h; the label
// names of drop reasons and flush triggers; histogram buckets; publishing deltas; the
// process-wide series and the process_* collector.
#include "tidepool/proxy/metrics.h"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <optional>
#include <sstream>

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>
#include <zmq.h>

#include "tidepool/proxy/process_stats.h"

namespace tidepool::proxy {
namespace {

template <typename Builder>
auto& build(Builder builder, prometheus::Registry& registry, const char* name, const char* help) {
  return builder.Name(name).Help(help).Register(registry);
}

// The process_* families from one reading of /proc/self; a value that could not be read is
// left out.
std::vector<prometheus::MetricFamily> process_families() {
  const ProcessStats stats = read_process_stats();
  std::vector<prometheus::MetricFamily> families;
  const auto add = [&](const char* name, const char* help, prometheus::MetricType type,
                       const std::optional<double>& value) {
    if (!value) return;
    prometheus::ClientMetric metric;
    if (type == prometheus::MetricType::Counter) {
      metric.counter.value = *value;
    } else {
      metric.gauge.value = *value;
    }
    families.push_back({name, help, type, {metric}});
  };
#define TIDEPOOL_PROCESS_METRIC(field, name, type, help) \
  add(name, help, prometheus::MetricType::type, stats.field);
  TIDEPOOL_PROCESS_METRICS(TIDEPOOL_PROCESS_METRIC)
#undef TIDEPOOL_PROCESS_METRIC
  return families;
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
      "connect", "periodic", "manual", "shutdown", "writable", "drain_rate"};
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

Metrics::Metrics(const std::string& version) : registry_(std::make_shared<prometheus::Registry>()) {
  // Registration order is exposition order within each type (see the lists in metrics.h).
#define TIDEPOOL_FAMILY(field, name, help, ...) \
  field##_ = &build(prometheus::BuildCounter(), *registry_, name, help);
  TIDEPOOL_ROUTE_COUNTERS(TIDEPOOL_FAMILY, TIDEPOOL_FAMILY)
#undef TIDEPOOL_FAMILY
#define TIDEPOOL_FAMILY(field, name, help) \
  field##_ = &build(prometheus::BuildGauge(), *registry_, name, help);
  TIDEPOOL_ROUTE_GAUGES(TIDEPOOL_FAMILY)
#undef TIDEPOOL_FAMILY
#define TIDEPOOL_FAMILY(field, name, help, buckets) \
  field##_ = &build(prometheus::BuildHistogram(), *registry_, name, help);
  TIDEPOOL_ROUTE_HISTOGRAMS(TIDEPOOL_FAMILY)
#undef TIDEPOOL_FAMILY
  build(prometheus::BuildGauge(), *registry_, "tidepool_build_info",
        "Always 1; the labels say which tidepool, and which libzmq, is running.")
      .Add({{"version", version}, {"libzmq", libzmq_version()}})
      .Set(1);
#define TIDEPOOL_FAMILY(field, name, help) \
  field##_ = &build(prometheus::BuildGauge(), *registry_, name, help).Add({});
  TIDEPOOL_PROCESS_GAUGES(TIDEPOOL_FAMILY)
#undef TIDEPOOL_FAMILY
#define TIDEPOOL_FAMILY(field, name, help) \
  field##_ = &build(prometheus::BuildCounter(), *registry_, name, help).Add({});
  TIDEPOOL_PROCESS_COUNTERS(TIDEPOOL_FAMILY)
#undef TIDEPOOL_FAMILY
  // As Prometheus does: the configuration loaded at start counts as a successful load.
  const auto start = read_process_stats().start_time_seconds;
  record_reload(true, start ? *start
                            : std::chrono::duration<double>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count());
}

void Metrics::record_reload(bool successful, double unix_seconds) {
  config_last_reload_successful_->Set(successful ? 1 : 0);
  if (successful) config_last_reload_success_timestamp_seconds_->Set(unix_seconds);
}

std::string Metrics::serialize() const {
  auto families = registry_->Collect();
  auto process = process_families();
  families.insert(families.end(), std::make_move_iterator(process.begin()),
                  std::make_move_iterator(process.end()));
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

std::string libzmq_version() {
  int major = 0;
  int minor = 0;
  int patch = 0;
  zmq_version(&major, &minor, &patch);
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

RouteMetrics::RouteMetrics(Metrics& m, const std::string& route) {
  const prometheus::Labels labels = {{"route", route}};
#define TIDEPOOL_SERIES(field, name, help) field##_ = &m.field##_->Add(labels);
#define TIDEPOOL_LABELLED_SERIES(field, name, help, label, Enum, count)                          \
  for (std::size_t i = 0; i < (count); ++i) {                                                    \
    field##_[i] = &m.field##_->Add({{"route", route}, {label, to_label(static_cast<Enum>(i))}}); \
  }
  TIDEPOOL_ROUTE_COUNTERS(TIDEPOOL_SERIES, TIDEPOOL_LABELLED_SERIES)
  TIDEPOOL_ROUTE_GAUGES(TIDEPOOL_SERIES)
#undef TIDEPOOL_LABELLED_SERIES
#undef TIDEPOOL_SERIES
#define TIDEPOOL_SERIES(field, name, help, buckets) \
  field##_series_ = &m.field##_->Add(labels, buckets());
  TIDEPOOL_ROUTE_HISTOGRAMS(TIDEPOOL_SERIES)
#undef TIDEPOOL_SERIES
}

void RouteMetrics::publish(const RouteCounters& c, const RouteGauges& g) {
  const RouteCounters& p = published_;
#define TIDEPOOL_PUBLISH(field, name, help) add_delta(*field##_, c.field, p.field);
#define TIDEPOOL_PUBLISH_LABELLED(field, name, help, label, Enum, count) \
  for (std::size_t i = 0; i < (count); ++i) add_delta(*field##_[i], c.field[i], p.field[i]);
  TIDEPOOL_ROUTE_COUNTERS(TIDEPOOL_PUBLISH, TIDEPOOL_PUBLISH_LABELLED)
#undef TIDEPOOL_PUBLISH_LABELLED
#undef TIDEPOOL_PUBLISH
  published_ = c;

#define TIDEPOOL_PUBLISH(field, name, help) field##_->Set(g.field);
  TIDEPOOL_ROUTE_GAUGES(TIDEPOOL_PUBLISH)
#undef TIDEPOOL_PUBLISH
#define TIDEPOOL_PUBLISH(field, name, help, buckets) field.publish_to(*field##_series_);
  TIDEPOOL_ROUTE_HISTOGRAMS(TIDEPOOL_PUBLISH)
#undef TIDEPOOL_PUBLISH
}

}  // namespace tidepool::proxy
