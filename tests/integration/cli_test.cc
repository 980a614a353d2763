// The command line through the real binary: each command's --help and the options it
// refuses, check-config's environment checks (and that they agree with a real start), and
// status (table and --json) against a running tidepool.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "harness.h"

using namespace tidepool::test;
using nlohmann::json;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Writes `config` to DIR/name.json and returns its path.
std::string write_config(const TempDir& dir, const std::string& name, const json& config) {
  const std::string path = dir.path() + "/" + name + ".json";
  std::ofstream(path) << config.dump(2);
  return path;
}

// A pipeline route that binds an ephemeral loopback port (nothing else is needed to start).
json quiet_route(const std::string& name) {
  return {{"name", name},
          {"frontend", {{"type", "pull"}, {"bind", {"tcp://127.0.0.1:0"}}}},
          {"backend", {{"type", "push"}, {"connect", {endpoint(free_port())}}}}};
}

json with_local_http(json config) {
  config["http"] = {{"listen", "127.0.0.1:0"}};
  return config;
}

// Names in DIR, to show that check-config leaves nothing behind.
std::size_t entries(const std::string& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

}  // namespace

TEST_CASE("each command's --help shows that command's options, and only those") {
  struct Case {
    std::string command;
    std::vector<std::string> has;
    std::vector<std::string> lacks;
  };
  const Case cases[] = {
      {"run", {"--config", "--log-level", "--drain-timeout-ms"}, {"--json", "--http "}},
      {"check-config", {"FILE", "--default", "--no-environment", "--log-level"}, {"--json"}},
      {"status", {"--http", "--json", "--watch"}, {"--log-level", "--no-environment"}},
      {"top", {"--http", "every second"}, {"--log-level", "--json"}},
      {"healthcheck", {"--http"}, {"--log-level", "--json"}},
      {"keygen", {"BASE", "No options"}, {"--log-level", "--http", "--config"}},
  };
  for (const auto& c : cases) {
    CAPTURE(c.command);
    for (const char* help : {"--help", "-h"}) {
      const auto result = run_command({TIDEPOOL_BINARY, c.command, help});
      CHECK(result.exit_code == 0);
      CHECK(result.output.starts_with("Usage: tidepool "));
      CHECK(contains(result.output.substr(0, 40), c.command == "run" ? "[run]" : c.command));
      for (const auto& word : c.has) CHECK_MESSAGE(contains(result.output, word), word);
      for (const auto& word : c.lacks) CHECK_MESSAGE(!contains(result.output, word), word);
    }
  }
  // --help wins over a wrong command line, so the help is there when it is needed.
  const auto help_anyway = run_command({TIDEPOOL_BINARY, "keygen", "--log-level", "x", "--help"});
  CHECK(help_anyway.exit_code == 0);
  CHECK(help_anyway.output.starts_with("Usage: tidepool keygen BASE"));
  // The top-level help still answers the questions it did, and points at the per-command one.
  const auto top_level = run_command({TIDEPOOL_BINARY, "--help"});
  CHECK(top_level.exit_code == 0);
  for (const char* word : {"check-config", "healthcheck", "status", "top", "keygen",
                           "COMMAND --help", "--config", "TIDEPOOL_", "SIGTERM", "Exit codes"}) {
    CHECK_MESSAGE(contains(top_level.output, word), word);
  }
}

TEST_CASE("an option the command does not take is an error that says who takes it") {
  const TempDir dir;
  const std::string base = dir.path() + "/k";
  const auto keygen = run_command({TIDEPOOL_BINARY, "keygen", "--log-level", "debug", base});
  CHECK(keygen.exit_code == 2);
  CHECK(contains(keygen.output,
                 "keygen takes no option --log-level (--log-level is an option of run, "
                 "check-config)"));
  CHECK(contains(keygen.output, "Run 'tidepool keygen --help' for usage."));
  CHECK_FALSE(std::filesystem::exists(base + ".key"));  // refused before doing anything

  const auto status = run_command({TIDEPOOL_BINARY, "status", "--no-environment"});
  CHECK(status.exit_code == 2);
  CHECK(contains(status.output, "status takes no option --no-environment"));
  const auto health = run_command({TIDEPOOL_BINARY, "healthcheck", "--json"});
  CHECK(health.exit_code == 2);
  CHECK(contains(health.output,
                 "healthcheck takes no option --json (--json is an option of "
                 "status)"));
  const auto run = run_command({TIDEPOOL_BINARY, "--http", "127.0.0.1:1"});
  CHECK(run.exit_code == 2);
  CHECK(contains(run.output, "run takes no option --http"));
  const auto inline_value = run_command({TIDEPOOL_BINARY, "keygen", "--config=x.json", base});
  CHECK(inline_value.exit_code == 2);
  CHECK(contains(inline_value.output, "keygen takes no option --config"));
  const auto extra = run_command({TIDEPOOL_BINARY, "keygen", base, "other"});
  CHECK(extra.exit_code == 2);
  CHECK(contains(extra.output, "unknown argument \"other\""));
  const auto both = run_command({TIDEPOOL_BINARY, "status", "--json", "--watch"});
  CHECK(both.exit_code == 2);
  CHECK(contains(both.output, "--json or --watch, not both"));
}

TEST_CASE("misspelt commands, options and values get a suggestion") {
  const auto command = run_command({TIDEPOOL_BINARY, "chek-config", "x.json"});
  CHECK(command.exit_code == 2);
  CHECK(contains(command.output,
                 "unknown command \"chek-config\" (did you mean "
                 "\"check-config\"?)"));
  const auto option = run_command({TIDEPOOL_BINARY, "status", "--jsn"});
  CHECK(option.exit_code == 2);
  CHECK(contains(option.output, "unknown argument \"--jsn\" (did you mean \"--json\"?)"));
  const auto far = run_command({TIDEPOOL_BINARY, "--frobnicate"});
  CHECK(far.exit_code == 2);
  CHECK(contains(far.output, "unknown argument \"--frobnicate\"\n"));
  const auto value =
      run_command({TIDEPOOL_BINARY, "check-config", "--default", "--log-level", "debgu"});
  CHECK(value.exit_code == 2);
  CHECK(contains(value.output,
                 "--log-level: \"debgu\" is not one of: debug, info, warn, error "
                 "(did you mean \"debug\"?)"));
  const TempDir dir;
  json config = with_routes({quiet_route("jobs")});
  config["routes"][0]["queue"] = {{"overflow", "drop_oldest"}};
  config["routes"][0]["frontend"]["hearbeat_ms"] = 100;
  const auto path = write_config(dir, "typo", config);
  const auto file = run_command({TIDEPOOL_BINARY, "check-config", path});
  CHECK(file.exit_code == 2);
  CHECK(contains(file.output,
                 "routes[0].frontend.hearbeat_ms: unknown key (did you mean "
                 "\"heartbeat_ms\"?"));
  config["routes"][0]["frontend"].erase("hearbeat_ms");
  const auto enum_path = write_config(dir, "typo2", config);
  const auto enum_value = run_command({TIDEPOOL_BINARY, "--config", enum_path});
  CHECK(enum_value.exit_code == 2);  // a run refuses it with the same words
  CHECK(contains(enum_value.output,
                 "routes[0].queue.overflow: \"drop_oldest\" is not one of: block, drop-newest, "
                 "drop-oldest (did you mean \"drop-oldest\"?)"));
}

TEST_CASE("check-config: a spool dir that is a file fails as the start would, not as OK") {
  const TempDir dir;
  const std::string file = dir.path() + "/not-a-dir";
  std::ofstream(file) << "x";
  json config = with_local_http(with_routes({quiet_route("jobs")}));
  config["routes"][0]["spool"] = {{"dir", file}};
  const auto path = write_config(dir, "spool-file", config);

  const auto check = run_command({TIDEPOOL_BINARY, "check-config", path});
  CHECK(check.exit_code == 2);
  CHECK(contains(check.output, "tidepool: routes[0].spool.dir: \"" + file + "\": " + file +
                                   " is not a directory, so the spool " + file +
                                   "/jobs cannot be created (in " + path + ")"));
  CHECK(contains(check.output, "config not OK: 1 problem on this machine"));
  CHECK_FALSE(contains(check.output, "config OK"));
  // What check-config now predicts: the real start fails on the same spool.
  const auto start = run_command({TIDEPOOL_BINARY, "--config", path}, 20s);
  CHECK(start.exit_code == 1);
  CHECK(contains(start.output, "spool"));
  // --no-environment checks the file alone, and says so.
  const auto file_only = run_command({TIDEPOOL_BINARY, "check-config", "--no-environment", path});
  CHECK(file_only.exit_code == 0);
  CHECK(contains(file_only.output, "config OK (" + path + "; environment not checked)"));
}

TEST_CASE("check-config: every environment problem is listed with its key and cause") {
  const TempDir dir;
  const std::string file = dir.path() + "/plain-file";
  std::ofstream(file) << "x";
  json a = quiet_route("a");
  // 192.0.2.1 is TEST-NET-1 (RFC 5737): on no machine's interfaces; only a bind is tried.
  a["frontend"]["bind"] = {"tcp://192.0.2.1:7001", "tcp://127.0.0.1:0",
                           "ipc://" + dir.path() + "/missing/x.sock"};
  a["spool"] = {{"dir", file + "/under"}};
  json b = quiet_route("b");
  b["backend"]["curve"] = {{"secret_key_file", dir.path() + "/absent.key_secret"},
                           {"server_public_key_file", dir.path() + "/absent.key"}};
  json config = with_routes({a, b});
  config["http"] = {{"listen", "192.0.2.1:9464"}};
  const auto path = write_config(dir, "many", config);

  const auto check = run_command({TIDEPOOL_BINARY, "check-config", path});
  CHECK(check.exit_code == 2);
  const std::string not_local = "192.0.2.1 is not an address of this host";
  CHECK(contains(check.output, "http.listen: \"192.0.2.1:9464\": " + not_local));
  CHECK(
      contains(check.output, "routes[0].frontend.bind[0]: \"tcp://192.0.2.1:7001\": " + not_local));
  CHECK_FALSE(contains(check.output, "bind[1]"));
  CHECK(contains(check.output, "routes[0].frontend.bind[2]: \"ipc://" + dir.path() +
                                   "/missing/x.sock\": the directory " + dir.path() +
                                   "/missing does not exist"));
  CHECK(contains(check.output,
                 "routes[0].spool.dir: \"" + file + "/under\": " + file + " is not a directory"));
  CHECK(contains(check.output, "routes[1].backend.curve.secret_key_file"));
  CHECK(contains(check.output, "absent.key_secret"));
  CHECK(contains(check.output, "config not OK: 5 problems on this machine"));
  const auto file_only = run_command({TIDEPOOL_BINARY, "check-config", "--no-environment", path});
  CHECK(file_only.exit_code == 0);
}

TEST_CASE("check-config: a read-only spool location is found by trying, also as root") {
  TempDir dir;
  if (!dir.mount_tmpfs("readonly", "ro,size=64k")) {
    MESSAGE("skipped: mounting a read-only tmpfs needs root");
    return;
  }
  json config = with_local_http(with_routes({quiet_route("jobs")}));
  config["routes"][0]["spool"] = {{"dir", dir.path() + "/readonly/spool"}};
  const auto path = write_config(dir, "ro", config);
  const auto check = run_command({TIDEPOOL_BINARY, "check-config", path});
  CHECK(check.exit_code == 2);
  CHECK(contains(check.output, "routes[0].spool.dir: \"" + dir.path() +
                                   "/readonly/spool\": cannot create the spool " + dir.path() +
                                   "/readonly/spool/jobs in " + dir.path() +
                                   "/readonly: Read-only file system"));
  const auto start = run_command({TIDEPOOL_BINARY, "--config", path}, 20s);
  CHECK(start.exit_code == 1);
}

TEST_CASE("check-config: a good environment passes and is left as it was") {
  const TempDir dir;
  json a = quiet_route("a");
  a["frontend"]["bind"] = {"tcp://127.0.0.1:0", "tcp://*:0",  "tcp://0.0.0.0:0",
                           "tcp://[::]:0",      "tcp://lo:0", "ipc://" + dir.path() + "/a.sock"};
  a["spool"] = {{"dir", dir.path() + "/spool/not/yet"}};  // created by a start, not by a check
  json config = with_local_http(with_routes({a}));
  const auto path = write_config(dir, "good", config);
  const std::size_t before = entries(dir.path());
  const auto check = run_command({TIDEPOOL_BINARY, "check-config", path});
  CHECK(check.exit_code == 0);
  CHECK(contains(check.output, "config OK (" + path + ")"));
  CHECK(entries(dir.path()) == before);  // no spool, no socket, no probe left behind
  CHECK_FALSE(std::filesystem::exists(dir.path() + "/spool"));

  // An existing spool of the route is checked for writing in place.
  std::filesystem::create_directories(dir.path() + "/spool/not/yet/a");
  const auto existing = run_command({TIDEPOOL_BINARY, "check-config", path});
  CHECK(existing.exit_code == 0);
  CHECK(entries(dir.path() + "/spool/not/yet/a") == 0);
}

TEST_CASE("status --json prints the running tidepool's /status document") {
  Tidepool tidepool(with_routes({pipeline_route("jobs", free_port(), free_port())}));
  REQUIRE(tidepool.wait_ready());
  const std::string http = "127.0.0.1:" + std::to_string(tidepool.http_port());
  const auto result = run_command({TIDEPOOL_BINARY, "status", "--json", "--http", http});
  CHECK(result.exit_code == 0);
  const json document = json::parse(result.output);  // stdout is the JSON and nothing else
  CHECK(document["routes"][0]["name"] == "jobs");
  CHECK(document["routes"][0]["queue"]["capacity_messages"] == 5000);
  CHECK(document["routes"][0].contains("dropped"));
  // The table says the route reads its clients (FRONTEND): no backend yet, an empty queue.
  const auto table = run_command({TIDEPOOL_BINARY, "status", "--http", http});
  CHECK(table.exit_code == 0);
  CHECK(contains(table.output, "FRONTEND"));
  CHECK(contains(table.output, " reading "));
  const auto down = run_command(
      {TIDEPOOL_BINARY, "status", "--json", "--http", "127.0.0.1:" + std::to_string(free_port())});
  CHECK(down.exit_code == 1);
  CHECK(contains(down.output, "is tidepool running"));
}
