// POST /flush through the real binary with http.admin settings: the token from
// http.admin_token_file is required, refusals are counted, http.admin false answers 403, and
// an unreadable token file is a config error (exit 2) for the run and for check-config.
#include <doctest/doctest.h>

#include <fstream>
#include <string>

#include "harness.h"

using namespace tidepool::test;

namespace {

// The HTTP status curl got for POST /flush with `headers` (curl -H arguments).
std::string post_flush(const Tidepool& tidepool, const std::vector<std::string>& headers) {
  std::vector<std::string> argv = {"/usr/bin/curl", "-s", "-o",  "/dev/null", "-w",
                                   "%{http_code}",  "-X", "POST"};
  for (const auto& header : headers) {
    argv.push_back("-H");
    argv.push_back(header);
  }
  argv.push_back("http://127.0.0.1:" + std::to_string(tidepool.http_port()) + "/flush");
  return run_command(argv, 10s).output;
}

}  // namespace

TEST_CASE("http.admin_token_file: POST /flush needs the bearer token; refusals are counted") {
  TempDir dir;
  const std::string token_file = dir.path() + "/admin-token";
  std::ofstream(token_file) << "correct-horse\n";
  auto config = with_routes({pipeline_route("jobs", free_port(), free_port())});
  config["http"] = {{"listen", "127.0.0.1:" + std::to_string(free_port())},
                    {"admin_token_file", token_file}};
  Tidepool tidepool(config);
  REQUIRE(tidepool.wait_ready());
  CHECK(tidepool.metric("tidepool_http_admin_refused_total") == 0);
  CHECK(post_flush(tidepool, {}) == "401");
  CHECK(post_flush(tidepool, {"Authorization: Bearer wrong"}) == "401");
  CHECK(tidepool.wait_metric("tidepool_http_admin_refused_total", {}, 2));
  CHECK(post_flush(tidepool, {"Authorization: Bearer correct-horse"}) == "200");
  CHECK(wait_until(
      [&] { return tidepool.log().find("manual flush requested") != std::string::npos; }));
  CHECK(tidepool.metric("tidepool_http_admin_refused_total") == 2);
  // Logged once, not per request.
  const std::string log = tidepool.log();
  const auto first = log.find("POST /flush refused");
  CHECK(first != std::string::npos);
  CHECK(log.find("POST /flush refused", first + 1) == std::string::npos);
}

TEST_CASE("http.admin false: POST /flush is 403; GET endpoints still answer") {
  auto config = with_routes({pipeline_route("jobs", free_port(), free_port())});
  config["http"] = {{"listen", "127.0.0.1:" + std::to_string(free_port())}, {"admin", false}};
  Tidepool tidepool(config);
  REQUIRE(tidepool.wait_ready());
  CHECK(post_flush(tidepool, {}) == "403");
  CHECK(tidepool.wait_metric("tidepool_http_admin_refused_total", {}, 1));
  CHECK(tidepool.http("/status").first == 200);
}

TEST_CASE("an unreadable admin token file: exit 2 naming the key, at run and at check-config") {
  TempDir dir;
  auto config = with_routes({pipeline_route("jobs", free_port(), free_port())});
  config["http"] = {{"listen", "127.0.0.1:0"}, {"admin_token_file", dir.path() + "/missing"}};
  const std::string file = dir.path() + "/tidepool.json";
  std::ofstream(file) << config.dump();
  for (const std::vector<std::string>& argv :
       {std::vector<std::string>{TIDEPOOL_BINARY, "check-config", file},
        std::vector<std::string>{TIDEPOOL_BINARY, "--config", file}}) {
    const auto result = run_command(argv, 30s);
    CAPTURE(result.output);
    CHECK(result.exit_code == 2);
    CHECK(result.output.find("http.admin_token_file") != std::string::npos);
    CHECK(result.output.find("cannot read") != std::string::npos);
  }
}
