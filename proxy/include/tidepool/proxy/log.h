// Logging: one line per event on stderr, as text or JSON, process-wide, with journald
// priority prefixes when stderr is the journal; and RateLimited, which keeps a repeated
// warning to one line plus periodic summaries.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tidepool/proxy/config.h"

namespace tidepool::proxy::log {

using Field = std::pair<std::string_view, std::string>;

// One line per event on stderr, as text (`2026-11-22T20:30:00.123Z warn message k=v`) or as
// one JSON object. Logging is process-wide, so it is configured once at start-up.
// Also decides, once, whether stderr is the journal (see is_journal_stream): then every line
// starts with its sd-daemon(3) priority, <3> error, <4> warn, <6> info, <7> debug.
void configure(LogLevel level, LogFormat format);
// True when `journal_stream` (JOURNAL_STREAM's value, "DEVICE:INODE" in decimal) names the
// file `fd` is open on.
bool is_journal_stream(const char* journal_stream, int fd);
std::string_view journal_prefix(LogLevel level);
bool enabled(LogLevel level);
void write(LogLevel level, std::string_view message, std::initializer_list<Field> fields = {});
void write(LogLevel level, std::string_view message, const std::vector<Field>& fields);

inline void debug(std::string_view m, std::initializer_list<Field> f = {}) {
  write(LogLevel::kDebug, m, f);
}
inline void info(std::string_view m, std::initializer_list<Field> f = {}) {
  write(LogLevel::kInfo, m, f);
}
inline void warn(std::string_view m, std::initializer_list<Field> f = {}) {
  write(LogLevel::kWarn, m, f);
}
inline void error(std::string_view m, std::initializer_list<Field> f = {}) {
  write(LogLevel::kError, m, f);
}

// Keeps a repeated warning to one line: the first occurrence is logged at once, later ones
// are counted and summarised at most once per `interval`.
class RateLimited {
 public:
  explicit RateLimited(std::chrono::steady_clock::duration interval = std::chrono::seconds(5))
      : interval_(interval) {}

  // Logs `message` the first time; later calls are counted for the next summary, which
  // repeats the latest call's fields (route, reason…) with `times` (calls) and `count` (the
  // sum of their `count`: messages, for drops).
  void warn(std::chrono::steady_clock::time_point now, std::string_view message,
            std::initializer_list<Field> fields, std::uint64_t count = 1);
  // Writes the summary line once `interval` has passed since the last line, if anything was
  // suppressed. The event loop calls it on every timer tick.
  void tick(std::chrono::steady_clock::time_point now);

 private:
  std::chrono::steady_clock::duration interval_;
  std::chrono::steady_clock::time_point last_{};
  bool logged_once_ = false;
  std::uint64_t suppressed_ = 0;
  std::uint64_t suppressed_count_ = 0;
  std::string message_;
  std::vector<std::pair<std::string, std::string>> fields_;
};

}  // namespace tidepool::proxy::log
