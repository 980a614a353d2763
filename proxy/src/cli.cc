// The command line: argument parsing, config resolution (file, environment, flags), and the
// run, check-config, status, healthcheck and keygen commands.
#include "tidepool/proxy/cli.h"

#include <sys/signalfd.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tidepool/proxy/config.h"
#include "tidepool/proxy/curve.h"
#include "tidepool/proxy/event_loop.h"
#include "tidepool/proxy/http_client.h"
#include "tidepool/proxy/http_server.h"
#include "tidepool/proxy/log.h"
#include "tidepool/proxy/metrics.h"

namespace tidepool::proxy {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
// Read when neither --config nor TIDEPOOL_CONFIG names a file (the image mounts it here).
constexpr const char* kConventionalConfig = "/etc/tidepool/tidepool.json";

constexpr const char* kHelp = R"(tidepool — a buffering ZeroMQ sidecar proxy

Usage:
  tidepool [--config FILE] [options]     run (no arguments: the embedded default config)
  tidepool check-config FILE             validate FILE, print the effective config as JSON
  tidepool status [--http HOST:PORT]     show routes, queues and peers of a running tidepool
  tidepool healthcheck [--http HOST:PORT]
                                         exit 0 if a running tidepool's loop is alive, else 1
  tidepool keygen BASE                   write a CURVE key pair: BASE.key (public certificate,
                                         give it to peers) and BASE.key_secret (mode 0600)
  tidepool --help | --version

Options (each overrides TIDEPOOL_<NAME>, which overrides the config file):
  --config FILE              JSON config (env TIDEPOOL_CONFIG; default /etc/tidepool/tidepool.json
                             when it exists, else the embedded default below)
  --http-listen HOST:PORT    metrics/health/status address   (env TIDEPOOL_HTTP_LISTEN)
  --log-level LEVEL          debug | info | warn | error      (env TIDEPOOL_LOG_LEVEL)
  --log-format FORMAT        text | json                      (env TIDEPOOL_LOG_FORMAT)
  --drain-timeout-ms N       drain time allowed at SIGTERM    (env TIDEPOOL_DRAIN_TIMEOUT_MS)

Embedded default: one route "default", ROUTER bound on tcp://*:5580 → DEALER connected to
tcp://127.0.0.1:5590, HTTP on 127.0.0.1:9464. Pairings: router→dealer (request-reply) and
pull→push (pipeline). Print it with: tidepool check-config --default

CURVE (encryption and client keys) is set per socket in the config file:
  "frontend": {..., "curve": {"secret_key_file": "server.key_secret",
                              "authorized_keys": "clients/"}}       (optional allow-list)
  "backend":  {..., "curve": {"secret_key_file": "tidepool.key_secret",
                              "server_public_key_file": "worker.key"}}
Without it a port has no authentication: anyone who can reach it can send messages.

HTTP: GET (or HEAD) /metrics /healthz /readyz /status, POST /flush. In the config file,
  "http": {"admin": false} turns POST /flush off (403), and
  "http": {"admin_token_file": "/run/secrets/tidepool-admin"} lets it through only with
  "Authorization: Bearer <the file's first line>" (else 401).
Signals: SIGTERM/SIGINT stop reading, drain up to the drain timeout, exit 0; a second
signal exits at once. SIGHUP re-reads the CURVE authorized_keys
(tidepool_config_last_reload_successful says whether that worked).
systemd: Type=notify is supported (READY=1 once every route is bound and its spool replayed,
STOPPING=1, WATCHDOG=1 when WatchdogSec= is set); with StandardError=journal, lines carry
journald priorities.
Exit codes: 0 ok, 1 runtime failure, 2 bad usage or config.
)";

struct Arguments {
  std::string command = "run";
  std::optional<std::string> config_path;
  std::optional<std::string> http;  // status/healthcheck target
  Overrides flags;
  bool use_default = false;  // check-config --default
  std::string key_base;      // keygen BASE
};

int usage_error(const std::string& message) {
  std::cerr << "tidepool: " << message << "\nRun 'tidepool --help' for usage.\n";
  return kExitUsage;
}

// Returns nullopt and prints the error when the command line is wrong.
std::optional<Arguments> parse_arguments(int argc, char** argv, int& exit_code) {
  Arguments args;
  std::vector<std::string> words(argv + 1, argv + argc);
  std::size_t i = 0;
  if (!words.empty() && !words[0].starts_with("-")) {
    args.command = words[0];
    i = 1;
    if (args.command != "check-config" && args.command != "status" &&
        args.command != "healthcheck" && args.command != "run" && args.command != "keygen") {
      exit_code = usage_error("unknown command \"" + args.command + "\"");
      return std::nullopt;
    }
  }
  const std::map<std::string, std::optional<std::string>*> valued = {
      {"--config", &args.config_path},
      {"--http", &args.http},
      {"--http-listen", &args.flags.http_listen},
      {"--log-level", &args.flags.log_level},
      {"--log-format", &args.flags.log_format},
      {"--drain-timeout-ms", &args.flags.drain_timeout_ms}};
  for (; i < words.size(); ++i) {
    std::string word = words[i];
    std::optional<std::string> inline_value;
    if (auto eq = word.find('='); word.starts_with("--") && eq != std::string::npos) {
      inline_value = word.substr(eq + 1);
      word = word.substr(0, eq);
    }
    if (word == "--help" || word == "-h") {
      args.command = "help";
      return args;
    }
    if (word == "--version") {
      args.command = "version";
      return args;
    }
    if (word == "--default" && args.command == "check-config") {
      args.use_default = true;
      continue;
    }
    if (auto it = valued.find(word); it != valued.end()) {
      if (!inline_value && i + 1 >= words.size()) {
        exit_code = usage_error(word + " needs a value");
        return std::nullopt;
      }
      *it->second = inline_value ? *inline_value : words[++i];
      continue;
    }
    if (args.command == "check-config" && !word.starts_with("-") && !args.config_path) {
      args.config_path = word;
      continue;
    }
    if (args.command == "keygen" && !word.starts_with("-") && args.key_base.empty()) {
      args.key_base = word;
      continue;
    }
    exit_code = usage_error("unknown argument \"" + words[i] + "\"");
    return std::nullopt;
  }
  if (args.command == "check-config" && !args.config_path && !args.use_default) {
    exit_code = usage_error("check-config needs a FILE (or --default)");
    return std::nullopt;
  }
  if (args.command == "keygen" && args.key_base.empty()) {
    exit_code = usage_error("keygen needs BASE, the path the key files start with");
    return std::nullopt;
  }
  return args;
}

// Config file > embedded default, then environment, then flags (DESIGN §6 precedence).
Config resolve_config(const Arguments& args, std::string& source) {
  std::optional<std::string> path = args.config_path;
  if (!path && !args.use_default) {
    if (const char* env = std::getenv("TIDEPOOL_CONFIG"); env != nullptr && *env != '\0') {
      path = env;
    } else if (std::filesystem::exists(kConventionalConfig)) {
      path = kConventionalConfig;
    }
  }
  Config config = path ? load_config_file(*path) : default_config();
  source = path ? *path : "embedded default";
  apply_overrides(config, overrides_from_environment(),
                  {{"http.listen", "TIDEPOOL_HTTP_LISTEN"},
                   {"log.level", "TIDEPOOL_LOG_LEVEL"},
                   {"log.format", "TIDEPOOL_LOG_FORMAT"},
                   {"shutdown.drain_timeout_ms", "TIDEPOOL_DRAIN_TIMEOUT_MS"}});
  apply_overrides(config, args.flags,
                  {{"http.listen", "--http-listen"},
                   {"log.level", "--log-level"},
                   {"log.format", "--log-format"},
                   {"shutdown.drain_timeout_ms", "--drain-timeout-ms"}});
  return config;
}

int keygen(const Arguments& args) {
  try {
    const std::string public_key = write_key_pair(args.key_base);
    std::cout << public_key << "\n";
    std::cerr << "wrote " << args.key_base << ".key (public: give it to peers) and "
              << args.key_base << ".key_secret (secret: keep it, mode 0600)\n";
    return kExitOk;
  } catch (const std::runtime_error& e) {
    std::cerr << "tidepool keygen: " << e.what() << "\n";
    return kExitFailure;
  }
}

std::string http_address(const Arguments& args) {
  if (args.http) return *args.http;
  std::string source;
  try {
    return resolve_config(args, source).http_listen;
  } catch (const ConfigError&) {
    return Config{}.http_listen;  // a broken config must not hide a running tidepool
  }
}

int healthcheck(const Arguments& args) {
  std::string error;
  const auto address = http_address(args);
  const auto reply = http_get(address, "/healthz", std::chrono::seconds(3), error);
  if (!reply) {
    std::cerr << "unhealthy: " << error << "\n";
    return kExitFailure;
  }
  if (reply->status != 200) {
    std::cerr << "unhealthy: /healthz answered " << reply->status << ": " << reply->body;
    return kExitFailure;
  }
  std::cout << "healthy (" << address << ")\n";
  return kExitOk;
}

std::string pad(std::string text, std::size_t width) {
  if (text.size() < width) text.append(width - text.size(), ' ');
  return text + " ";
}

int status(const Arguments& args) {
  std::string error;
  const auto address = http_address(args);
  const auto reply = http_get(address, "/status", std::chrono::seconds(3), error);
  if (!reply || reply->status != 200) {
    std::cerr << "tidepool status: " << (reply ? "HTTP " + std::to_string(reply->status) : error)
              << "\n(is tidepool running with http.listen " << address
              << "? pass --http HOST:PORT)\n";
    return kExitFailure;
  }
  nlohmann::json document;
  try {
    document = nlohmann::json::parse(reply->body);
  } catch (const nlohmann::json::exception& e) {
    std::cerr << "tidepool status: unreadable answer from " << address << ": " << e.what() << "\n";
    return kExitFailure;
  }
  std::cout << "tidepool " << document.value("version", "?") << " at " << address
            << (document.value("draining", false) ? " (draining)" : "") << "\n";
  const std::vector<std::pair<std::string, std::size_t>> columns = {
      {"ROUTE", 12},    {"MODE", 13},      {"BACKEND", 8},  {"PEERS", 6},
      {"QUEUED", 8},    {"BYTES", 10},     {"OLDEST_S", 9}, {"IN_FLIGHT", 9},
      {"RECEIVED", 10}, {"FORWARDED", 10}, {"DROPPED", 8}};
  for (const auto& [name, width] : columns) std::cout << pad(name, width);
  std::cout << "\n";
  for (const auto& route : document["routes"]) {
    std::uint64_t dropped = 0;
    for (const auto& [reason, count] : route["dropped"].items())
      dropped += count.get<std::uint64_t>();
    char oldest[32];
    std::snprintf(oldest, sizeof oldest, "%.1f",
                  route["queue"]["oldest_age_seconds"].get<double>());
    const std::vector<std::string> cells = {
        route["name"].get<std::string>(),
        route["mode"].get<std::string>(),
        route["backend"]["up"].get<bool>() ? "up" : "DOWN",
        std::to_string(route["backend"]["peers"].get<std::uint64_t>()),
        std::to_string(route["queue"]["messages"].get<std::uint64_t>()),
        std::to_string(route["queue"]["bytes"].get<std::uint64_t>()),
        oldest,
        std::to_string(route["in_flight"].get<std::uint64_t>()),
        std::to_string(route["received"].get<std::uint64_t>()),
        std::to_string(route["forwarded"].get<std::uint64_t>()),
        std::to_string(dropped)};
    for (std::size_t c = 0; c < cells.size(); ++c) std::cout << pad(cells[c], columns[c].second);
    std::cout << "\n";
  }
  return kExitOk;
}

int run(const Arguments& args) {
  std::string source;
  Config config;
  try {
    config = resolve_config(args, source);
    log::configure(config.log_level, config.log_format);
    load_curve_keys(config);
    load_http_admin_token(config);
  } catch (const ConfigError& e) {
    std::cerr << "tidepool: " << e.what() << "\n";
    return kExitUsage;
  }

  // Signals become readable events for the loop; blocked before any thread starts, so
  // libzmq's and the HTTP server's threads inherit the mask and never take them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  const int signal_fd = signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signal_fd < 0) {
    log::error("cannot create signalfd");
    return kExitFailure;
  }

  try {
    Metrics metrics(TIDEPOOL_VERSION);
    LoopState state;
    EventLoop loop(config, metrics, state);
    log::info("starting", {{"config", source}, {"version", TIDEPOOL_VERSION}});
    loop.open();
    HttpServer http(config.http_listen, metrics, state, HttpServer::Limits{},
                    {config.http_admin, config.http_admin_token});
    const auto colon = config.http_listen.rfind(':');
    log::info("http listening", {{"address", config.http_listen.substr(0, colon) + ":" +
                                                 std::to_string(http.port())}});
    const int code = loop.run(signal_fd);
    ::close(signal_fd);
    return code;
  } catch (const StartupError& e) {
    log::error("cannot start", {{"error", e.what()}});
    return kExitFailure;
  } catch (const zmq::error_t& e) {
    log::error("zeromq failure", {{"error", e.what()}});
    return kExitFailure;
  }
}

}  // namespace

int run_cli(int argc, char** argv) {
  int exit_code = kExitOk;
  const auto args = parse_arguments(argc, argv, exit_code);
  if (!args) return exit_code;
  if (args->command == "help") {
    std::cout << kHelp;
    return kExitOk;
  }
  if (args->command == "version") {
    std::cout << "tidepool " << TIDEPOOL_VERSION << " (libzmq " << ZMQ_VERSION_MAJOR << "."
              << ZMQ_VERSION_MINOR << "." << ZMQ_VERSION_PATCH << ")\n";
    return kExitOk;
  }
  if (args->command == "healthcheck") return healthcheck(*args);
  if (args->command == "status") return status(*args);
  if (args->command == "keygen") return keygen(*args);
  if (args->command == "check-config") {
    try {
      std::string source;
      Config config = resolve_config(*args, source);
      load_curve_keys(config);  // key files are part of the config: check them too
      load_http_admin_token(config);
      std::cout << to_json(config).dump(2) << "\n";
      std::cerr << "config OK (" << source << ")\n";
      return kExitOk;
    } catch (const ConfigError& e) {
      std::cerr << "tidepool: " << e.what() << "\n";
      return kExitUsage;
    }
  }
  return run(*args);
}

}  // namespace tidepool::proxy
