// journald priorities through the real binary: when stderr is the stream JOURNAL_STREAM names
// (as systemd sets it for StandardError=journal), lines carry <6> info / <3> error prefixes;
// when the variable names another stream (inherited, stderr redirected) they do not.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "harness.h"

using namespace tidepool::test;

namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Runs tidepool with stderr on `log` and JOURNAL_STREAM set to `stream` ("match": the
// DEVICE:INODE of `log` itself, computed by the shell after the redirection). Its HTTP port is
// taken, so it logs "starting" (info) and then "cannot start" (error), and exits 1.
std::string run_with_journal_stream(const TempDir& dir, const std::string& stream) {
  zmq::context_t context;
  const int taken = free_port();
  auto holder = bind_socket(context, zmq::socket_type::pull, taken);
  auto config = with_routes({pipeline_route("jobs", free_port(), free_port())});
  config["http"] = {{"listen", "127.0.0.1:" + std::to_string(taken)}};
  const std::string config_file = dir.path() + "/tidepool.json";
  std::ofstream(config_file) << config.dump();
  const std::string log = dir.path() + "/stderr-" + stream;
  const std::string script =
      R"sh(exec 2>>"$1"; )sh" +
      std::string(stream == "match" ? R"sh(export JOURNAL_STREAM="$(stat -c %d:%i "$1")"; )sh"
                                    : "export JOURNAL_STREAM=" + stream + "; ") +
      R"sh(exec "$0" --config "$2")sh";
  const auto result =
      run_command({"/bin/sh", "-c", script, TIDEPOOL_BINARY, log, config_file}, 30s);
  CHECK(result.exit_code == 1);
  return read_all(log);
}

}  // namespace

TEST_CASE("stderr is the journal: info lines start <6>, errors <3>") {
  TempDir dir;
  const auto lines = lines_of(run_with_journal_stream(dir, "match"));
  REQUIRE_FALSE(lines.empty());
  bool saw_info = false;
  bool saw_error = false;
  for (const auto& line : lines) {
    CHECK_MESSAGE((line.starts_with("<6>") || line.starts_with("<3>")), line);
    if (line.starts_with("<6>") && line.find(" info starting") != std::string::npos) {
      saw_info = true;
    }
    if (line.starts_with("<3>") && line.find(" error cannot start") != std::string::npos) {
      saw_error = true;
    }
  }
  CHECK(saw_info);
  CHECK(saw_error);
}

TEST_CASE("JOURNAL_STREAM naming another stream: no prefixes") {
  TempDir dir;
  const std::string text = run_with_journal_stream(dir, "1:1");
  CHECK(text.find("error cannot start") != std::string::npos);
  for (const auto& line : lines_of(text)) CHECK_MESSAGE(!line.starts_with("<"), line);
}
