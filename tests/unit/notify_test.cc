// The systemd watchdog interval from WATCHDOG_USEC and WATCHDOG_PID (sd_watchdog_enabled(3)
// rules). The datagrams themselves are tested through the real binary
// (tests/integration/systemd_notify_test.cc).
#include "tidepool/proxy/notify.h"

#include <doctest/doctest.h>

using std::chrono::microseconds;
using tidepool::proxy::watchdog_interval;

TEST_CASE("watchdog_interval: half of WATCHDOG_USEC, only for the process it names") {
  CHECK(watchdog_interval("30000000", nullptr, 42) == microseconds(15'000'000));
  CHECK(watchdog_interval("30000000", "", 42) == microseconds(15'000'000));
  CHECK(watchdog_interval("30000000", "42", 42) == microseconds(15'000'000));
  CHECK_FALSE(watchdog_interval("30000000", "43", 42).has_value());  // another process's
  CHECK_FALSE(watchdog_interval("30000000", "4x", 42).has_value());
  CHECK_FALSE(watchdog_interval(nullptr, nullptr, 42).has_value());
  CHECK_FALSE(watchdog_interval("", nullptr, 42).has_value());
  CHECK_FALSE(watchdog_interval("0", nullptr, 42).has_value());
  CHECK_FALSE(watchdog_interval("-5", nullptr, 42).has_value());
  CHECK_FALSE(watchdog_interval("12s", nullptr, 42).has_value());
}
