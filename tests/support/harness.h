// Integration-test harness: runs the real tidepool binary on loopback with free ports, reads
// its /metrics, and waits on conditions with deadlines (never a fixed sleep as an assertion).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "temp_dir.h"  // TempDir: a fresh directory (e.g. for a spool), removed at the end

namespace tidepool::test {

using namespace std::chrono_literals;

// A TCP port nothing listens on right now, below the ephemeral range and reserved for this
// process (harness.cc).
int free_port();
bool can_bind(int port);         // nothing holds 127.0.0.1:port right now
std::string endpoint(int port);  // "tcp://127.0.0.1:PORT"

// A socket connected to / bound on 127.0.0.1:port. Bound ones (the tests' workers) give up
// a receive after 10 s, so a missing message fails the test instead of hanging it.
// bind_port retries EADDRINUSE for a few seconds: libzmq closes a listener asynchronously,
// so a worker restarted on the same port can race the old one's close.
zmq::socket_t connect_socket(zmq::context_t& context, zmq::socket_type type, int port);
zmq::socket_t bind_socket(zmq::context_t& context, zmq::socket_type type, int port);
void bind_port(zmq::socket_t& socket, int port);
// Sends a request with a REQ-style envelope from a DEALER: an empty delimiter, then `body`.
void send_request(zmq::socket_t& dealer, const std::string& body);

// Polls `condition` every few milliseconds until it holds or `timeout` passes.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 10s);

struct CommandResult {
  int exit_code = -1;  // -1: killed at the timeout
  std::string output;  // stdout and stderr together
};
CommandResult run_command(const std::vector<std::string>& argv,
                          std::chrono::milliseconds timeout = 30s,
                          const std::map<std::string, std::string>& env = {});

// {"routes": [...]}: the smallest whole config.
nlohmann::json with_routes(const std::vector<nlohmann::json>& routes);
// A pipeline route (PULL bound on `front` → PUSH connected to `back`) as config JSON.
nlohmann::json pipeline_route(const std::string& name, int front, int back);
// A request-reply route (ROUTER bound on `front` → DEALER connected to each of `backs`).
nlohmann::json request_reply_route(const std::string& name, int front,
                                   const std::vector<int>& backs);

// The real binary, started with a config file; stderr goes to a log file read on demand.
class Tidepool {
 public:
  // `config` gets http.listen on a free port unless it sets one; `env` is added to the
  // process's environment.
  explicit Tidepool(nlohmann::json config, std::vector<std::string> extra_args = {},
                    const std::map<std::string, std::string>& env = {});
  ~Tidepool();
  Tidepool(const Tidepool&) = delete;
  Tidepool& operator=(const Tidepool&) = delete;

  [[nodiscard]] int http_port() const { return http_port_; }
  [[nodiscard]] pid_t pid() const { return pid_; }

  // GET PATH → {status, body}; status 0 when nothing answered.
  std::pair<int, std::string> http(const std::string& path) const;
  // Value of one series, e.g. metric("tidepool_queue_messages", {{"route", "r"}}); nullopt when
  // the series is absent or tidepool does not answer.
  std::optional<double> metric(const std::string& name,
                               const std::map<std::string, std::string>& labels = {}) const;
  // Sum of every series of `name` whose labels include `labels` (e.g. all reasons of one
  // route); 0 when none matches, nullopt when tidepool does not answer.
  std::optional<double> metric_sum(const std::string& name,
                                   const std::map<std::string, std::string>& labels) const;
  // Waits until the series equals `value`.
  bool wait_metric(const std::string& name, const std::map<std::string, std::string>& labels,
                   double value, std::chrono::milliseconds timeout = 10s) const;
  // Waits until /readyz answers 200.
  bool wait_ready(std::chrono::milliseconds timeout = 10s) const;

  void signal(int number) const;
  // Exit code once the process ends within `timeout`; nullopt if it is still running.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  [[nodiscard]] std::string log() const;

 private:
  std::string directory_;
  int http_port_ = 0;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  int uncaught_at_start_ = std::uncaught_exceptions();  // to tell an unwinding test apart
};

// An independent peer: a program (e.g. a python3-zmq script under tests/support/) run as its
// own process, killed at destruction. Its stdout and stderr go to a log read on demand.
class Peer {
 public:
  explicit Peer(const std::vector<std::string>& argv);
  ~Peer();
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  void signal(int number) const;
  // Waits until its output contains `text`.
  bool wait_output(const std::string& text, std::chrono::milliseconds timeout = 10s) const;
  [[nodiscard]] std::string output() const;

 private:
  std::string directory_;
  pid_t pid_ = -1;
};

// Runs tests/support/echo_worker.py: a DEALER worker bound on 127.0.0.1:port answering
// "<name>:<body>", each after `delay_ms`; returns once it is bound.
std::unique_ptr<Peer> start_echo_worker(int port, const std::string& name, int delay_ms = 0);

}  // namespace tidepool::test
