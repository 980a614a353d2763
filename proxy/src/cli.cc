// The command line: each command's options and --help, config resolution (file, environment,
// flags), and the run, check-config, status, top, healthcheck and keygen commands.
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
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tidepool/proxy/config.h"
#include "tidepool/proxy/curve.h"
#include "tidepool/proxy/event_loop.h"
#include "tidepool/proxy/http_client.h"
#include "tidepool/proxy/http_server.h"
#include "tidepool/proxy/log.h"
#include "tidepool/proxy/metrics.h"
#include "tidepool/proxy/status_view.h"
#include "tidepool/proxy/suggest.h"

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
  tidepool check-config FILE             validate FILE and this machine's side of it (spool
                                         dirs, key files, bind addresses), print the
                                         effective config as JSON; --no-environment: FILE only
  tidepool status [--http HOST:PORT]     show routes, queues and peers of a running tidepool
                                         (--json: its /status document, for scripts)
  tidepool top [--http HOST:PORT]        the same, live: depth, fill, rates, drops, every second
                                         (also: status --watch)
  tidepool healthcheck [--http HOST:PORT]
                                         exit 0 if a running tidepool's loop is alive, else 1
  tidepool keygen BASE                   write a CURVE key pair: BASE.key (public certificate,
                                         give it to peers) and BASE.key_secret (mode 0600)
  tidepool COMMAND --help                that command's options
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
Signals: SIGTERM/SIGINT drain up to the drain timeout, exit 0; pipeline routes let their
clients go (what they have not sent waits in them for the next start) and read what was
already taken from them, request-reply routes read no new requests; a second signal exits
at once. SIGHUP re-reads the CURVE authorized_keys
(tidepool_config_last_reload_successful says whether that worked).
systemd: Type=notify is supported (READY=1 once every route is bound and its spool replayed,
STOPPING=1, WATCHDOG=1 when WatchdogSec= is set); with StandardError=journal, lines carry
journald priorities.
Exit codes: 0 ok, 1 runtime failure, 2 bad usage or config.
)";

constexpr const char* kRunOptions =
    R"(  --config FILE              JSON config (env TIDEPOOL_CONFIG; default /etc/tidepool/tidepool.json
                             when it exists, else the embedded default)
  --http-listen HOST:PORT    metrics/health/status address   (env TIDEPOOL_HTTP_LISTEN)
  --log-level LEVEL          debug | info | warn | error      (env TIDEPOOL_LOG_LEVEL)
  --log-format FORMAT        text | json                      (env TIDEPOOL_LOG_FORMAT)
  --drain-timeout-ms N       drain time allowed at SIGTERM    (env TIDEPOOL_DRAIN_TIMEOUT_MS)
)";

constexpr const char* kTargetOptions =
    R"(  --http HOST:PORT           the running tidepool's http.listen (default: http.listen of
                             --config FILE / TIDEPOOL_CONFIG / the default config)
  --config FILE              read http.listen from FILE
)";

// One command: the options it takes, its positional argument, its --help.
struct CommandSpec {
  std::string name;
  std::set<std::string> options;  // valued (--x VALUE) and switches alike
  std::string positional;         // "FILE", "BASE" or "" (none)
  std::string help;
};

const std::vector<CommandSpec>& commands() {
  static const std::vector<CommandSpec> specs = {
      {"run",
       {"--config", "--http-listen", "--log-level", "--log-format", "--drain-timeout-ms"},
       "",
       std::string("Usage: tidepool [run] [options]\n\nRuns the proxy: binds, replays spools, "
                   "forwards until SIGTERM/SIGINT, then drains.\n\nOptions (each overrides "
                   "TIDEPOOL_<NAME>, which overrides the config file):\n") +
           kRunOptions},
      {"check-config",
       {"--config", "--default", "--no-environment", "--http-listen", "--log-level", "--log-format",
        "--drain-timeout-ms"},
       "FILE",
       std::string("Usage: tidepool check-config FILE [options]\n"
                   "       tidepool check-config --default\n\n"
                   "Validates FILE (with the environment and flag overrides, as a run would apply\n"
                   "them) and prints the effective config as JSON. Then checks what a start would\n"
                   "find on this machine: spool directories can be created and written, CURVE key\n"
                   "files are readable, tcp binds are addresses of this host (*, 0.0.0.0, :: and\n"
                   "interface names are), ipc bind directories exist, http.listen is local.\n"
                   "Every problem is printed with its key. Exit 0: OK; 2: a problem.\n\n"
                   "Options:\n"
                   "  --default                  check the embedded default instead of a FILE\n"
                   "  --no-environment           check FILE only, not this machine\n") +
           kRunOptions},
      {"status",
       {"--http", "--config", "--json", "--watch"},
       "",
       std::string("Usage: tidepool status [--http HOST:PORT] [--json | --watch]\n\n"
                   "One line per route of a running tidepool: mode, backend, peers, queue, "
                   "totals.\n\nOptions:\n") +
           kTargetOptions +
           "  --json                     print the /status document as JSON (for scripts)\n"
           "  --watch                    refresh every second: the same as tidepool top\n"},
      {"top",
       {"--http", "--config"},
       "",
       std::string(
           "Usage: tidepool top [--http HOST:PORT]\n\n"
           "A live view of a running tidepool, redrawn every second: per route the queue\n"
           "depth, fill % (of the nearer bound), in/out messages per second, clients/workers\n"
           "connected, in flight, spool bytes and drops by reason. Route names longer than\n"
           "32 characters are cut with …. Ctrl-C quits.\n\nOptions:\n") +
           kTargetOptions},
      {"healthcheck",
       {"--http", "--config"},
       "",
       std::string("Usage: tidepool healthcheck [--http HOST:PORT]\n\n"
                   "Exit 0 if a running tidepool's event loop is alive (/healthz), else 1.\n\n"
                   "Options:\n") +
           kTargetOptions},
      {"keygen",
       {},
       "BASE",
       "Usage: tidepool keygen BASE\n\n"
       "Writes a CURVE key pair: BASE.key (public certificate: give it to peers) and\n"
       "BASE.key_secret (mode 0600: keep it). Prints the public key. No options.\n"},
  };
  return specs;
}

const CommandSpec* find_command(const std::string& name) {
  for (const auto& spec : commands()) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

struct Arguments {
  std::string command = "run";
  std::optional<std::string> config_path;
  std::optional<std::string> http;  // status/top/healthcheck target
  Overrides flags;
  bool use_default = false;     // check-config --default
  bool no_environment = false;  // check-config --no-environment
  bool json = false;            // status --json
  bool watch = false;           // status --watch
  std::string key_base;         // keygen BASE
};

int usage_error(const std::string& message, const std::string& command = "") {
  std::cerr << "tidepool: " << message << "\nRun 'tidepool "
            << (command.empty() ? "" : command + " ") << "--help' for usage.\n";
  return kExitUsage;
}

// "--log-level is an option of run, check-config" for an option another command takes.
std::string taken_by(const std::string& option) {
  std::string names;
  for (const auto& spec : commands()) {
    if (spec.options.contains(option)) names += (names.empty() ? "" : ", ") + spec.name;
  }
  return names;
}

// Returns nullopt and prints the error when the command line is wrong.
std::optional<Arguments> parse_arguments(int argc, char** argv, int& exit_code) {
  Arguments args;
  std::vector<std::string> words(argv + 1, argv + argc);
  std::size_t i = 0;
  bool explicit_command = false;
  if (!words.empty() && !words[0].starts_with("-")) {
    args.command = words[0];
    explicit_command = true;
    i = 1;
    if (find_command(args.command) == nullptr) {
      std::vector<std::string> names;
      for (const auto& spec : commands()) names.push_back(spec.name);
      exit_code = usage_error("unknown command \"" + args.command + "\"" +
                              did_you_mean(args.command, names));
      return std::nullopt;
    }
  }
  const CommandSpec& spec = *find_command(args.command);
  // The command's name for messages; a plain `tidepool --x` is the top-level usage.
  const std::string shown = explicit_command ? spec.name : "";
  // --help anywhere wins, so a half-typed command line still gets its help.
  for (std::size_t k = i; k < words.size(); ++k) {
    if (words[k] == "--help" || words[k] == "-h") {
      args.command = explicit_command ? "help:" + spec.name : "help";
      return args;
    }
  }
  const std::map<std::string, std::optional<std::string>*> valued = {
      {"--config", &args.config_path},
      {"--http", &args.http},
      {"--http-listen", &args.flags.http_listen},
      {"--log-level", &args.flags.log_level},
      {"--log-format", &args.flags.log_format},
      {"--drain-timeout-ms", &args.flags.drain_timeout_ms}};
  const std::map<std::string, bool*> switches = {{"--default", &args.use_default},
                                                 {"--no-environment", &args.no_environment},
                                                 {"--json", &args.json},
                                                 {"--watch", &args.watch}};
  std::string* positional = spec.positional == "FILE"   ? nullptr
                            : spec.positional == "BASE" ? &args.key_base
                                                        : nullptr;
  bool positional_seen = false;
  for (; i < words.size(); ++i) {
    std::string word = words[i];
    std::optional<std::string> inline_value;
    if (auto eq = word.find('='); word.starts_with("--") && eq != std::string::npos) {
      inline_value = word.substr(eq + 1);
      word = word.substr(0, eq);
    }
    if (word == "--version" && !explicit_command) {
      args.command = "version";
      return args;
    }
    if (word.starts_with("-") && word != "-") {
      if (!spec.options.contains(word)) {
        const std::string others = taken_by(word);
        if (!others.empty()) {
          std::string message = explicit_command ? spec.name : std::string("run");
          message += " takes no option " + word;
          message.append(" (").append(word).append(" is an option of ").append(others) += ")";
          exit_code = usage_error(message, shown);
        } else {
          std::vector<std::string> known(spec.options.begin(), spec.options.end());
          if (!explicit_command) known.emplace_back("--version");
          known.emplace_back("--help");
          exit_code = usage_error(
              "unknown argument \"" + words[i] + "\"" + did_you_mean(word, known), shown);
        }
        return std::nullopt;
      }
      if (auto it = switches.find(word); it != switches.end()) {
        if (inline_value) {
          exit_code = usage_error(word + " takes no value", shown);
          return std::nullopt;
        }
        *it->second = true;
        continue;
      }
      if (auto it = valued.find(word); it != valued.end()) {
        if (!inline_value && i + 1 >= words.size()) {
          exit_code = usage_error(word + " needs a value", shown);
          return std::nullopt;
        }
        *it->second = inline_value ? *inline_value : words[++i];
        continue;
      }
    }
    if (!spec.positional.empty() && !positional_seen) {
      positional_seen = true;
      if (positional != nullptr) {
        *positional = word;
      } else if (!args.config_path) {
        args.config_path = word;  // check-config FILE
      } else {
        exit_code = usage_error(
            "check-config takes one FILE (got --config " + *args.config_path + " and " + word + ")",
            shown);
        return std::nullopt;
      }
      continue;
    }
    exit_code = usage_error("unknown argument \"" + words[i] + "\"", shown);
    return std::nullopt;
  }
  if (args.command == "check-config" && !args.config_path && !args.use_default) {
    exit_code = usage_error("check-config needs a FILE (or --default)", shown);
    return std::nullopt;
  }
  if (args.command == "keygen" && args.key_base.empty()) {
    exit_code = usage_error("keygen needs BASE, the path the key files start with", shown);
    return std::nullopt;
  }
  if (args.json && args.watch) {
    exit_code = usage_error("status takes --json or --watch, not both", shown);
    return std::nullopt;
  }
  return args;
}

// Config file > embedded default, then environment, then flags (DESIGN §6 precedence).
Config resolve_config(const Arguments& args, std::string& source) {
  std::optional<std::string> path = args.config_path;
  if (!path && !args.use_default) {
    // NOLINTNEXTLINE(concurrency-mt-unsafe): startup, before any thread
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

// GET /status and parse it; nullopt after printing why (to stderr) when that fails.
std::optional<nlohmann::json> fetch_status(const std::string& address, std::string& error) {
  const auto reply = http_get(address, "/status", std::chrono::seconds(3), error);
  if (!reply) return std::nullopt;
  if (reply->status != 200) {
    error = "HTTP " + std::to_string(reply->status);
    return std::nullopt;
  }
  try {
    return nlohmann::json::parse(reply->body);
  } catch (const nlohmann::json::exception& e) {
    error = std::string("unreadable answer: ") + e.what();
    return std::nullopt;
  }
}

std::string unreachable(const std::string& address, const std::string& error) {
  return error + "\n(is tidepool running with http.listen " + address +
         "? pass --http HOST:PORT)\n";
}

int status(const Arguments& args) {
  std::string error;
  const auto address = http_address(args);
  const auto document = fetch_status(address, error);
  if (!document) {
    std::cerr << "tidepool status: " << unreachable(address, error);
    return kExitFailure;
  }
  if (args.json) {
    std::cout << document->dump(2) << "\n";
    return kExitOk;
  }
  try {
    std::cout << render_status(*document, address);
  } catch (const nlohmann::json::exception& e) {
    std::cerr << "tidepool status: unexpected /status document from " << address << ": " << e.what()
              << "\n";
    return kExitFailure;
  }
  return kExitOk;
}

// Redraws the screen every second until a signal (Ctrl-C) ends it. The rates are the
// differences between two /status documents over the time between them, measured here.
int top(const Arguments& args) {
  const auto address = http_address(args);
  nlohmann::json previous;
  auto previous_time = std::chrono::steady_clock::now();
  const bool terminal = ::isatty(STDOUT_FILENO) != 0;
  for (;;) {
    std::string error;
    const auto document = fetch_status(address, error);
    const auto now = std::chrono::steady_clock::now();
    std::string frame;
    if (!document) {
      frame = "tidepool top: " + unreachable(address, error) + "retrying every second\n";
      previous = nullptr;
    } else {
      const double seconds = std::chrono::duration<double>(now - previous_time).count();
      try {
        frame = render_top(*document, previous, seconds, address);
      } catch (const nlohmann::json::exception& e) {
        frame = std::string("tidepool top: unexpected /status document: ") + e.what() + "\n";
      }
      previous = *document;
      previous_time = now;
    }
    // Home and clear in a terminal; plain frames one after another when piped.
    std::cout << (terminal ? "\x1b[H\x1b[2J" : "\n") << frame << std::flush;
    std::this_thread::sleep_until(now + std::chrono::seconds(1));
  }
}

int check_config(const Arguments& args) {
  std::string source;
  Config config;
  try {
    config = resolve_config(args, source);
  } catch (const ConfigError& e) {
    std::cerr << "tidepool: " << e.what() << "\n";
    return kExitUsage;
  }
  std::vector<ConfigError> problems;
  if (!args.no_environment) {
    try {
      load_curve_keys(config);  // key files readable and well-formed
    } catch (const ConfigError& e) {
      problems.push_back(e);
    }
    try {
      load_http_admin_token(config);  // the token file readable and not empty
    } catch (const ConfigError& e) {
      problems.push_back(e);
    }
    for (auto& problem : environment_problems(config)) problems.push_back(std::move(problem));
  }
  std::cout << to_json(config).dump(2) << "\n";
  if (!problems.empty()) {
    for (const auto& problem : problems) {
      std::cerr << "tidepool: " << problem.what() << " (in " << source << ")\n";
    }
    std::cerr << "config not OK: " << problems.size() << " problem"
              << (problems.size() == 1 ? "" : "s") << " on this machine (" << source << ")\n";
    return kExitUsage;
  }
  std::cerr << "config OK (" << source << (args.no_environment ? "; environment not checked" : "")
            << ")\n";
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
  if (args->command.starts_with("help:")) {
    std::cout << find_command(args->command.substr(5))->help;
    return kExitOk;
  }
  if (args->command == "version") {
    std::cout << "tidepool " << TIDEPOOL_VERSION << " (libzmq " << ZMQ_VERSION_MAJOR << "."
              << ZMQ_VERSION_MINOR << "." << ZMQ_VERSION_PATCH << ")\n";
    return kExitOk;
  }
  if (args->command == "healthcheck") return healthcheck(*args);
  if (args->command == "top" || (args->command == "status" && args->watch)) return top(*args);
  if (args->command == "status") return status(*args);
  if (args->command == "keygen") return keygen(*args);
  if (args->command == "check-config") return check_config(*args);
  return run(*args);
}

}  // namespace tidepool::proxy
