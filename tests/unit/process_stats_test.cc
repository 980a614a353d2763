// The process_* metrics: the /proc parsers on real and awkward text, and live readings that
// must move when the process does work or opens files; their exposition in /metrics.
#include "tidepool/proxy/process_stats.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <string>
#include <vector>

#include "tidepool/proxy/metrics.h"

using tidepool::proxy::Metrics;
using tidepool::proxy::parse_boot_time;
using tidepool::proxy::parse_max_open_files;
using tidepool::proxy::parse_proc_stat;
using tidepool::proxy::read_process_stats;

TEST_CASE("parse_proc_stat counts fields after the last ')' of the command name") {
  // A command name with spaces and parentheses, as a process may set it.
  const std::string line =
      "4242 (tide (pool) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 4 0 "
      "123456 987654321 2048 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n";
  const auto stat = parse_proc_stat(line);
  REQUIRE(stat.has_value());
  CHECK(stat->cpu_ticks == 300);  // utime 250 + stime 50
  CHECK(stat->start_ticks == 123456);
  CHECK(stat->virtual_bytes == 987654321);
  CHECK(stat->resident_pages == 2048);
  CHECK_FALSE(parse_proc_stat("no parenthesis here").has_value());
  CHECK_FALSE(parse_proc_stat("1 (x) S 1 2 3").has_value());  // cut short
  CHECK_FALSE(parse_proc_stat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 ab 50 0 0 20 0 4 0 1 2 3").has_value());
}

TEST_CASE("parse_boot_time and parse_max_open_files read their lines") {
  CHECK(parse_boot_time("cpu  1 2 3\nbtime 1764650000\nprocesses 9\n") == 1764650000.0);
  CHECK_FALSE(parse_boot_time("cpu 1 2 3\n").has_value());
  const std::string limits =
      "Limit                     Soft Limit           Hard Limit           Units     \n"
      "Max processes             63704                63704                processes \n"
      "Max open files            1024                 1048576              files     \n";
  CHECK(parse_max_open_files(limits) == 1024.0);
  CHECK(
      std::isinf(*parse_max_open_files("Max open files            unlimited            "
                                       "unlimited            files\n")));
  CHECK_FALSE(parse_max_open_files("Max processes 1 1 processes\n").has_value());
}

TEST_CASE("live readings are sane and move with the process") {
  const auto before = read_process_stats();
  REQUIRE(before.cpu_seconds.has_value());
  REQUIRE(before.resident_memory_bytes.has_value());
  REQUIRE(before.virtual_memory_bytes.has_value());
  REQUIRE(before.open_fds.has_value());
  REQUIRE(before.max_fds.has_value());
  REQUIRE(before.start_time_seconds.has_value());
  CHECK(*before.resident_memory_bytes > 0);
  CHECK(*before.virtual_memory_bytes >= *before.resident_memory_bytes);
  CHECK(*before.open_fds >= 3);  // stdin, stdout, stderr at least
  CHECK(*before.max_fds >= *before.open_fds);
  // Started in the last hour, not in the future (clock ticks are 10 ms, so allow a second).
  const auto now = static_cast<double>(std::time(nullptr));
  CHECK(*before.start_time_seconds <= now + 1);
  CHECK(*before.start_time_seconds > now - 3600);

  SUBCASE("cpu time rises with busy work") {
    // Spin until the kernel's tick count moves; the deadline only keeps a broken reader from
    // hanging the test.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    volatile std::uint64_t sink = 0;
    double cpu = *before.cpu_seconds;
    while (cpu <= *before.cpu_seconds && std::chrono::steady_clock::now() < deadline) {
      for (int i = 0; i < 1'000'000; ++i) sink = sink + static_cast<std::uint64_t>(i);
      cpu = *read_process_stats().cpu_seconds;
    }
    CHECK(cpu > *before.cpu_seconds);
  }

  SUBCASE("open fds follow open and close") {
    std::vector<int> fds;
    for (int i = 0; i < 10; ++i) fds.push_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    CHECK(*read_process_stats().open_fds == *before.open_fds + 10);
    for (const int fd : fds) ::close(fd);
    CHECK(*read_process_stats().open_fds == *before.open_fds);
  }
}

TEST_CASE("/metrics carries the process_* families and the libzmq version") {
  const Metrics metrics("9.9.9");
  const std::string text = metrics.serialize();
  for (const char* line :
       {"# TYPE process_cpu_seconds_total counter", "# TYPE process_resident_memory_bytes gauge",
        "# TYPE process_virtual_memory_bytes gauge", "# TYPE process_open_fds gauge",
        "# TYPE process_max_fds gauge", "# TYPE process_start_time_seconds gauge",
        "# TYPE tidepool_config_last_reload_successful gauge",
        "# TYPE tidepool_config_last_reload_success_timestamp_seconds gauge",
        "tidepool_config_last_reload_successful 1\n"}) {
    CHECK_MESSAGE(text.find(line) != std::string::npos, line);
  }
  CHECK(text.find("tidepool_build_info{libzmq=\"" + tidepool::proxy::libzmq_version() +
                  "\",version=\"9.9.9\"} 1") != std::string::npos);
  CHECK(tidepool::proxy::libzmq_version().starts_with("4."));
}
