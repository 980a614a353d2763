// The event loop: the ZeroMQ context (sized for the config), every route's sockets on one
// thread, timers, metrics and status publishing, signals, the drain, and systemd's
// notifications (READY once every route is bound and replayed, STOPPING, WATCHDOG, STATUS).
#include "tidepool/proxy/event_loop.h"

#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <map>

#include "tidepool/proxy/log.h"

namespace tidepool::proxy {
namespace {

using namespace std::chrono_literals;

// A changed systemd STATUS= line is sent at most this often: it is for `systemctl status`.
constexpr auto kStatusEvery = 2s;

// Metrics follow the loop within this much; publishing per message would cost more than
// forwarding it.
constexpr auto kPublishEvery = 5ms;
// The loop wakes at least this often, so /healthz sees it tick even when idle (it calls a
// loop silent for 5 s stalled). Each wake costs system calls per route: not more often.
constexpr auto kMaxPollWait = 1000ms;

// libzmq's default ZMQ_MAX_SOCKETS; the context is never sized below it.
constexpr int kLibzmqDefaultMaxSockets = 1023;
// Every socket Route watches costs three: itself, the PAIR that zmq_socket_monitor() creates
// inside libzmq, and the PAIR Route reads the events from.
constexpr std::size_t kSocketsPerWatchedSocket = 3;
// Sockets beyond the count, so that a miscount by a few is not a startup failure.
constexpr std::size_t kSpareSockets = 16;
// File descriptors tidepool holds whatever the routes: stdio, signalfd, eventfd, libzmq's
// reaper, I/O thread and epoll, the HTTP listener and civetweb's own.
constexpr std::size_t kProcessFds = 64;
// A spooled route holds its directory lock, its open segment and, briefly, one more.
constexpr std::size_t kFdsPerSpool = 3;
// Client connections the fd limit should leave room for before start says it is tight.
constexpr std::size_t kClientHeadroom = 1024;

// What a config costs in libzmq sockets and file descriptors, counted as Route and
// ZapHandler create them.
struct ResourceNeeds {
  std::size_t sockets = 0;      // ZMQ_MAX_SOCKETS must allow this many
  std::size_t listeners = 0;    // tcp/ipc bind endpoints: one listening fd each
  std::size_t connections = 0;  // tcp/ipc connect endpoints: one fd each (connected or trying)
  std::size_t spool_fds = 0;
  // Each socket has a mailbox (an eventfd); inproc endpoints use no fd.
  [[nodiscard]] std::size_t fds() const {
    return sockets + listeners + connections + spool_fds + kProcessFds;
  }
};

ResourceNeeds resource_needs(const Config& config) {
  const auto os_endpoints = [](const std::vector<std::string>& endpoints) {
    return static_cast<std::size_t>(std::count_if(
        endpoints.begin(), endpoints.end(), [](auto& e) { return !e.starts_with("inproc://"); }));
  };
  ResourceNeeds needs;
  for (const auto& route : config.routes) {
    // Request-reply: one backend socket for the bind endpoints, one per connect endpoint
    // (Route's constructor says why); pipeline: one backend socket.
    const std::size_t backends =
        route.request_reply() ? (route.backend.bind.empty() ? 0 : 1) + route.backend.connect.size()
                              : 1;
    needs.sockets += (1 + backends) * kSocketsPerWatchedSocket;
    needs.listeners += os_endpoints(route.frontend.bind) + os_endpoints(route.backend.bind);
    needs.connections += os_endpoints(route.frontend.connect) + os_endpoints(route.backend.connect);
    if (route.spool) needs.spool_fds += kFdsPerSpool;
  }
  if (uses_curve(config)) needs.sockets += 1;  // the ZAP handler's REP
  needs.sockets += kSpareSockets;
  return needs;
}

// Raises the soft RLIMIT_NOFILE to the hard limit (the soft default, 1024, is what one
// process of a thousand routes needs on its own), and refuses a config that surely cannot
// have its fds.
void raise_fd_limit(const ResourceNeeds& needs) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    const rlim_t before = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) limit.rlim_cur = before;
  }
  const auto need = needs.fds();
  const auto detail = std::to_string(needs.sockets) + " ZeroMQ sockets, " +
                      std::to_string(needs.listeners) + " listeners, " +
                      std::to_string(needs.connections) + " outgoing connections";
  if (limit.rlim_cur < need) {
    throw StartupError("this config needs at least " + std::to_string(need) +
                       " file descriptors (" + detail + ") but RLIMIT_NOFILE allows " +
                       std::to_string(limit.rlim_cur) +
                       ": raise the hard limit (ulimit -Hn, systemd LimitNOFILE=, "
                       "docker run --ulimit nofile=N:N)");
  }
  if (limit.rlim_cur < need + kClientHeadroom) {
    log::info("file descriptor limit leaves little room for client connections",
              {{"fd_limit", std::to_string(limit.rlim_cur)},
               {"needed_without_clients", std::to_string(need)},
               {"room_for_clients", std::to_string(limit.rlim_cur - need)},
               {"sockets", detail}});
  }
}

double unix_seconds_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

EventLoop::EventLoop(const Config& config, Metrics& metrics, LoopState& state)
    : config_(config), metrics_(metrics), state_(state), context_(1) {
  // libzmq 4.3 numbers the clients that set no routing id from rand(), which it never seeds:
  // every process would hand out the same ids (00 6b 8b 45 67 = glibc's first rand()).
  // Seeded here, before any ROUTER exists, so ids are not predictable from outside. (What keeps
  // a reply from reaching another client across a restart is Route's orphan rule; this is
  // defence in depth.)
  unsigned int seed = 0;
  if (getrandom(&seed, sizeof seed, 0) != static_cast<ssize_t>(sizeof seed)) {
    seed = static_cast<unsigned int>(Clock::now().time_since_epoch().count() ^ getpid());
  }
  std::srand(seed);
  // Sized before the first socket exists: libzmq fixes its socket table then.
  const ResourceNeeds needs = resource_needs(config_);
  raise_fd_limit(needs);
  const auto socket_limit =
      static_cast<std::size_t>(zmq_ctx_get(context_.handle(), ZMQ_SOCKET_LIMIT));
  if (needs.sockets > socket_limit) {
    throw StartupError("this config needs " + std::to_string(needs.sockets) +
                       " ZeroMQ sockets; this libzmq allows at most " +
                       std::to_string(socket_limit) + " per process");
  }
  context_.set(zmq::ctxopt::max_sockets,
               std::max(kLibzmqDefaultMaxSockets, static_cast<int>(needs.sockets)));
  // Blocky mode off: zmq_ctx_term never hangs on sockets we forgot (all get a bounded linger).
  context_.set(zmq::ctxopt::blocky, false);
  // libzmq's zero-copy receive stays on (its default): a message forwarded at once is never
  // copied. Small frames then point into libzmq's shared 8 KiB read buffers; what stays in a
  // queue is copied out of them (PackedFifo), so no queued message pins a buffer.
}

EventLoop::~EventLoop() = default;

void EventLoop::open() {
  // Before any socket binds: from then on libzmq asks the handler about each handshake.
  if (uses_curve(config_)) zap_ = std::make_unique<ZapHandler>(context_, config_);
  std::map<std::string, Route*> by_name;
  for (const auto& route_config : config_.routes) {
    routes_.push_back(std::make_unique<Route>(context_, route_config, metrics_));
    by_name[route_config.name] = routes_.back().get();
  }
  for (auto& route : routes_) {
    if (const auto& correlation = route->config().correlation) {
      Correlation& c = route->enable_correlation_requests(*correlation);
      by_name.at(correlation->pair_with)->set_correlation_results(&c);
    }
  }
  for (auto& route : routes_) route->open();
  state_.heartbeat();
  publish(Clock::now(), true);
}

bool EventLoop::all_drained() const {
  return std::all_of(routes_.begin(), routes_.end(), [](const auto& r) { return r->drained(); });
}

bool EventLoop::publish(Clock::time_point now, bool force) {
  if (!force && now - last_publish_ < kPublishEvery) return false;
  last_publish_ = now;
  for (auto& route : routes_) route->publish(now);
  // Only on request: rebuilt every 100 ms, the snapshot of 1,000 idle routes was most of the
  // loop's idle CPU.
  if (force || state_.take_status_request()) {
    nlohmann::json routes = nlohmann::json::array();
    for (const auto& route : routes_) routes.push_back(route->status(now));
    state_.set_status(nlohmann::json{
        {"version", TIDEPOOL_VERSION},
        {"ready", state_.ready.load()},
        {"draining", state_.draining.load()},
        {"routes",
         routes}}.dump());
  }
  return true;
}

std::string EventLoop::status_line(bool stopping) const {
  std::size_t queued = 0;
  for (const auto& route : routes_) queued += route->queued();
  return std::string(stopping ? "draining: " : "") + std::to_string(routes_.size()) +
         (routes_.size() == 1 ? " route, " : " routes, ") + std::to_string(queued) + " queued";
}

void EventLoop::notify_systemd(Clock::time_point now, bool stopping) {
  if (!systemd_.enabled()) return;
  std::string message;
  if (const auto interval = systemd_.watchdog(); interval && now >= next_watchdog_) {
    message = "WATCHDOG=1\n";
    next_watchdog_ = now + *interval;
  }
  if (now >= next_status_) {
    next_status_ = now + kStatusEvery;
    if (auto line = status_line(stopping); line != last_status_) {
      message += "STATUS=" + line + "\n";
      last_status_ = std::move(line);
    }
  }
  if (!message.empty()) systemd_.send(message);
}

int EventLoop::run(int signal_fd) {
  state_.ready = true;
  log::info("tidepool running",
            {{"routes", std::to_string(routes_.size())}, {"version", TIDEPOOL_VERSION}});
  // open() has bound every route and replayed its spool, and the HTTP port is up: ready.
  last_status_ = status_line(false);
  systemd_.send("READY=1\nSTATUS=" + last_status_ + "\n");
  next_status_ = Clock::now() + kStatusEvery;
  if (const auto interval = systemd_.watchdog()) {
    log::info("systemd watchdog on",
              {{"ping_every_ms",
                std::to_string(std::chrono::ceil<std::chrono::milliseconds>(*interval).count())}});
    systemd_.send("WATCHDOG=1\n");
    next_watchdog_ = Clock::now() + *interval;
  }
  bool stopping = false;
  Clock::time_point drain_deadline{};
  std::vector<zmq::pollitem_t> items;
  std::vector<std::size_t> first_item;    // each route's slice of `items`
  std::vector<zmq::pollitem_t> polled;    // the items that wait for some event
  std::vector<std::size_t> polled_index;  // where each sits in `items`
  bool dirty = true;

  while (true) {
    auto now = Clock::now();
    items.clear();
    items.push_back({nullptr, signal_fd, ZMQ_POLLIN, 0});
    items.push_back({nullptr, state_.wake_fd(), ZMQ_POLLIN, 0});
    first_item.clear();
    for (auto& route : routes_) {
      first_item.push_back(items.size());
      route->poll_items(items, stopping, now);
    }
    if (zap_) items.push_back(zap_->poll_item());

    Clock::time_point wake = now + kMaxPollWait;
    for (const auto& route : routes_) wake = std::min(wake, route->next_deadline(stopping, now));
    if (dirty) wake = std::min(wake, last_publish_ + kPublishEvery);
    if (stopping) wake = std::min(wake, drain_deadline);
    if (systemd_.watchdog()) wake = std::min(wake, next_watchdog_);
    const auto wait = std::max(0ms, std::chrono::ceil<std::chrono::milliseconds>(wake - now));
    // zmq_poll asks every socket item for its events, a system call each, even when it waits
    // for none; those items are left out (at 1,000 idle pipeline routes, half of them).
    polled.clear();
    polled_index.clear();
    for (std::size_t k = 0; k < items.size(); ++k) {
      items[k].revents = 0;
      if (items[k].events == 0) continue;
      polled.push_back(items[k]);
      polled_index.push_back(k);
    }
    try {
      zmq::poll(polled, wait);
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
    }
    for (std::size_t j = 0; j < polled.size(); ++j)
      items[polled_index[j]].revents = polled[j].revents;
    now = Clock::now();
    state_.heartbeat();
    notify_systemd(now, stopping);

    if (items[0].revents & ZMQ_POLLIN) {
      signalfd_siginfo info{};
      (void)!::read(signal_fd, &info, sizeof info);
      const char* name = strsignal(static_cast<int>(info.ssi_signo));
      if (info.ssi_signo == SIGHUP) {
        // With nothing to re-read, the reload trivially succeeds (the timestamp still says
        // the SIGHUP arrived).
        bool reloaded = true;
        if (zap_) {
          reloaded = zap_->reload();
        } else {
          log::info("SIGHUP: nothing to reload (no CURVE authorized_keys configured)");
        }
        metrics_.record_reload(reloaded, unix_seconds_now());
      } else if (stopping) {
        log::warn("second signal: exiting without waiting for the drain", {{"signal", name}});
        break;
      } else {
        stopping = true;
        state_.draining = true;
        drain_deadline = now + std::chrono::milliseconds(config_.drain_timeout_ms);
        log::info(
            "draining before exit",
            {{"signal", name}, {"drain_timeout_ms", std::to_string(config_.drain_timeout_ms)}});
        last_status_ = status_line(true);
        systemd_.send("STOPPING=1\nSTATUS=" + last_status_ + "\n");
        for (auto& route : routes_) {
          route->stop_accepting(now);
          route->flush(FlushTrigger::kShutdown, now);
        }
      }
    }
    if (items[1].revents & ZMQ_POLLIN) {
      state_.clear_wake();
      if (state_.take_flush_request()) {
        log::info("manual flush requested");
        for (auto& route : routes_) route->flush(FlushTrigger::kManual, now);
      }
    }
    for (std::size_t i = 0; i < routes_.size(); ++i) {
      routes_[i]->handle(&items[first_item[i]], now, stopping);
    }
    if (zap_) {
      // Clients' handshakes wait for these answers.
      if (items.back().revents & ZMQ_POLLIN) zap_->handle(now);
      zap_->tick(now);
    }
    for (auto& route : routes_) route->on_timer(now);
    dirty = !publish(now, false);

    if (stopping && (all_drained() || now >= drain_deadline)) break;
  }

  const bool complete = all_drained();
  for (auto& route : routes_) route->drop_remaining(DropReason::kShutdown);
  publish(Clock::now(), true);
  // What libzmq still holds toward the backend gets a bounded moment to leave.
  for (auto& route : routes_) route->close(complete ? 1000ms : 0ms);
  log::info(complete ? "drained: exiting" : "drain timed out: exiting",
            {{"complete", complete ? "true" : "false"}});
  return 0;
}

}  // namespace tidepool::proxy
