// The configuration tidepool runs with: every key of the file, its default and why.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace tidepool::proxy {

enum class SocketType { kRouter, kDealer, kPull, kPush };
enum class Overflow { kBlock, kDropNewest, kDropOldest };
enum class LogLevel { kDebug, kInfo, kWarn, kError };
enum class LogFormat { kText, kJson };
enum class FsyncPolicy { kAlways, kInterval };

std::string_view to_string(SocketType type);
std::string_view to_string(Overflow overflow);
std::string_view to_string(LogLevel level);
std::string_view to_string(LogFormat format);
std::string_view to_string(FsyncPolicy policy);

// CURVE security (ZeroMQ RFC 26) on one socket: encryption, and the peer proves it holds a
// key. The frontend is the CURVE server, the backend the client. Key files are ZeroMQ
// certificates (`tidepool keygen`, CZMQ's zcert and pyzmq's zmq.auth all write them).
struct CurveConfig {
  std::string secret_key_file;  // this side's secret certificate (both keys)
  // Backend: the workers' public certificate (the server key they hold the secret of).
  std::string server_public_key_file;
  // Frontend, optional: the clients let in, a directory of public certificates (*.key) or a
  // file of keys, one per line. Empty: any client that knows the server's public key.
  std::string authorized_keys;

  // Filled in from the files by load_curve_keys() (curve.h), Z85-encoded.
  struct Keys {
    std::string public_key;
    std::string secret_key;
    std::string server_public_key;        // backend
    std::vector<std::string> authorized;  // frontend, when authorized_keys is set
  } keys;
};

struct SocketConfig {
  SocketType type = SocketType::kRouter;
  std::vector<std::string> bind;
  std::vector<std::string> connect;
  // High-water mark (libzmq's default). On the backend it bounds what waits inside libzmq
  // toward one peer rather than in tidepool's queue, i.e. what a pipeline worker that dies
  // takes with it. Measured at 64 B: 100 made the loop wake for a few messages at a time
  // (0.37× zmq_proxy's throughput, 3.2× its CPU per message; 1000: 0.83×, 1.3×). Lower it
  // where the loss window matters more than throughput (deploy/swimmy uses 100).
  int hwm = 1000;
  // ZMTP heartbeat interval; a peer silent for three intervals is dropped. 0 turns it off.
  int heartbeat_ms = 5000;
  // Ceiling of libzmq's reconnect back-off on connect endpoints: a failed attempt doubles
  // the wait from 100 ms (ZMQ_RECONNECT_IVL) up to this (ZMQ_RECONNECT_IVL_MAX). Without it
  // libzmq retries every 100 ms forever: 1,000 routes with absent workers cost 55% of a
  // core. Measured at 1,000 such routes (README, "Many routes"): 2000 costs 4.2% of a core
  // (half of it libzmq's connect attempts), 5000 1.9%, 10000 ~1.6%. The price is that a
  // worker that comes back after a long absence is connected to within this (plus up to
  // 100 ms of jitter), not within 100 ms; a brief restart sooner (the back-off restarts at
  // 100 ms after each lost connection). 0: no back-off (libzmq's default).
  int reconnect_max_ms = 5000;
  std::optional<CurveConfig> curve;  // none: NULL security (no encryption, no authentication)
};

struct QueueConfig {
  std::size_t max_messages = 5000;              // Swimmy's *backtest-send-queue-max*
  std::size_t max_bytes = 256ULL << 20;         // 256 MiB
  std::size_t max_message_bytes = 64ULL << 20;  // Swimmy inline-candle requests reach ~9 MB
  Overflow overflow = Overflow::kBlock;
  std::int64_t ttl_ms = 0;  // 0: messages never expire
};

struct FlushConfig {
  std::int64_t interval_ms = 1000;  // Swimmy's *backtest-queue-flush-interval-sec*
  double drain_rate = 0;            // messages/s while draining a backlog; 0: unlimited
  std::size_t max_in_flight = 0;    // 0: unlimited
};

// Request-reply: replies waiting for one client that does not take them (its pipe is full).
// Each client has its own bounds, so a client that stops reading holds only its own replies
// and never delays anyone else's; past a bound its oldest replies are dropped (`slow_client`).
struct ReplyConfig {
  std::size_t max_messages = 10000;     // per client: a reading client's bursts fit
  std::size_t max_bytes = 64ULL << 20;  // per client
  std::int64_t timeout_ms = 60000;      // a reply waiting longer than this is dropped
};

struct CorrelationConfig {
  std::string key = "request_id";
  std::string pair_with;
  std::int64_t timeout_ms = 600000;
  // Bound on tracked requests (memory: ~250 bytes each, measured); beyond it the oldest is
  // forgotten and counted as a timeout.
  std::size_t max_tracked = 1000000;
};

// Durable spool (DESIGN §3): the route's queue is mirrored in segment files under dir/<route>/.
struct SpoolConfig {
  std::string dir;
  // `always`: fdatasync before a message counts as queued, once per read batch (group commit;
  // nothing accepted is lost, even on power loss); `interval`: at most every fsync_interval_ms
  // (a power loss or kernel crash may lose that window; a process crash loses nothing either
  // way, the page cache survives it).
  FsyncPolicy fsync = FsyncPolicy::kAlways;
  std::int64_t fsync_interval_ms = 100;
};

struct RouteConfig {
  std::string name;
  SocketConfig frontend;
  SocketConfig backend;
  QueueConfig queue;
  FlushConfig flush;
  ReplyConfig replies;  // request-reply only
  std::optional<CorrelationConfig> correlation;
  std::optional<SpoolConfig> spool;

  [[nodiscard]] bool request_reply() const { return frontend.type == SocketType::kRouter; }
};

struct Config {
  std::string http_listen = "127.0.0.1:9464";
  // POST /flush: false answers it 403. With a token file, a request must carry
  // "Authorization: Bearer <token>" (else 401).
  bool http_admin = true;
  std::string http_admin_token_file;
  std::string http_admin_token;  // the file's contents, from load_http_admin_token()
  LogLevel log_level = LogLevel::kInfo;
  LogFormat log_format = LogFormat::kText;
  std::int64_t drain_timeout_ms = 10000;
  std::vector<RouteConfig> routes;
};

// A configuration problem: `path` names the key ("routes[0].queue.overflow").
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string path, const std::string& problem);
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] const std::string& problem() const { return problem_; }

 private:
  std::string path_;
  std::string problem_;
};

// Parses and validates a whole config document; throws ConfigError.
Config parse_config(const nlohmann::json& document);
// Same, from JSON text (syntax errors are ConfigErrors too).
Config parse_config_text(std::string_view text);
// Reads FILE; a missing or unreadable file is a ConfigError naming it.
Config load_config_file(const std::string& path);
// Reads http.admin_token_file (when set) into http_admin_token; the token is the file's first
// line. A missing, unreadable or empty file is a ConfigError.
void load_http_admin_token(Config& config);
// The configuration `tidepool` runs with no arguments at all.
Config default_config();
// Effective configuration as JSON in the file format (check-config prints it).
nlohmann::json to_json(const Config& config);

// Global settings that flags and TIDEPOOL_* variables may override.
struct Overrides {
  std::optional<std::string> http_listen;
  std::optional<std::string> log_level;
  std::optional<std::string> log_format;
  std::optional<std::string> drain_timeout_ms;
};
// Applies overrides, validating each like the file key it stands for; `source` names where
// they came from in errors ("--log-level", "TIDEPOOL_LOG_LEVEL").
void apply_overrides(Config& config, const Overrides& overrides,
                     const std::map<std::string, std::string>& source_names);
// Reads TIDEPOOL_* variables from the process environment.
Overrides overrides_from_environment();

// What a start would refuse on this machine although the file is valid (check-config, unless
// --no-environment): spool directories that cannot be created or written, tcp binds to an
// address no local interface has, ipc binds whose directory is missing or not writable, an
// http.listen address not of this host. Each names its key; empty when all is well. Key
// files are checked by load_curve_keys (curve.h).
std::vector<ConfigError> environment_problems(const Config& config);

// Endpoint syntax check shared by config validation: tcp://host:port, ipc://path, inproc://x.
std::optional<std::string> endpoint_problem(std::string_view endpoint, bool for_bind);

}  // namespace tidepool::proxy
