// Logging (see log.h): the process-wide level and format, text and JSON line formatting, the
// journald priority prefixes, and RateLimited's summaries.
#include "tidepool/proxy/log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>

#include <nlohmann/json.hpp>

namespace tidepool::proxy::log {
namespace {

std::atomic<LogLevel> g_level{LogLevel::kInfo};
std::atomic<LogFormat> g_format{LogFormat::kText};
std::atomic<bool> g_journal{false};  // stderr is journald's stream: prefix priorities
std::mutex g_write_mutex;            // the HTTP threads may log too; keep lines whole

std::string timestamp() {
  const auto now = std::chrono::system_clock::now();
  const auto seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[40];
  const auto n = std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(buffer + n, sizeof buffer - n, ".%03dZ", static_cast<int>(millis));
  return buffer;
}

bool needs_quotes(std::string_view value) {
  if (value.empty()) return true;
  for (char c : value) {
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) return true;
  }
  return false;
}

}  // namespace

bool is_journal_stream(const char* journal_stream, int fd) {
  if (journal_stream == nullptr) return false;
  const std::string_view text(journal_stream);
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) return false;
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  const auto parse = [](std::string_view part, std::uint64_t& value) {
    const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
    return ec == std::errc() && end == part.data() + part.size() && !part.empty();
  };
  if (!parse(text.substr(0, colon), device) || !parse(text.substr(colon + 1), inode)) {
    return false;
  }
  struct stat status {};
  if (::fstat(fd, &status) != 0) return false;
  return static_cast<std::uint64_t>(status.st_dev) == device &&
         static_cast<std::uint64_t>(status.st_ino) == inode;
}

std::string_view journal_prefix(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "<7>";
    case LogLevel::kInfo:
      return "<6>";
    case LogLevel::kWarn:
      return "<4>";
    case LogLevel::kError:
      return "<3>";
  }
  return "<6>";
}

void configure(LogLevel level, LogFormat format) {
  g_level = level;
  g_format = format;
  // systemd sets JOURNAL_STREAM for a service whose stderr it connects to the journal; a
  // child that redirected stderr elsewhere inherits the variable but not the stream, hence
  // the comparison with stderr itself (sd-daemon(3), systemd.exec(5)).
  const char* stream = std::getenv("JOURNAL_STREAM");  // NOLINT(concurrency-mt-unsafe): startup
  g_journal = is_journal_stream(stream, STDERR_FILENO);
}

bool enabled(LogLevel level) { return level >= g_level.load(std::memory_order_relaxed); }

void write(LogLevel level, std::string_view message, std::initializer_list<Field> fields) {
  write(level, message, std::vector<Field>(fields));
}

void write(LogLevel level, std::string_view message, const std::vector<Field>& fields) {
  if (!enabled(level)) return;
  std::string line;
  // journald reads the priority from the prefix and strips it, so `journalctl -p warning`
  // finds warnings.
  if (g_journal.load(std::memory_order_relaxed)) line = journal_prefix(level);
  if (g_format.load(std::memory_order_relaxed) == LogFormat::kJson) {
    nlohmann::json object{{"ts", timestamp()}, {"level", to_string(level)}, {"msg", message}};
    for (const auto& [key, value] : fields) object[std::string(key)] = value;
    line += object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    line += timestamp() + " " + std::string(to_string(level)) + " " + std::string(message);
    for (const auto& [key, value] : fields) {
      line += " ";
      line += key;
      line += "=";
      line += needs_quotes(value) ? nlohmann::json(value).dump(
                                        -1, ' ', false, nlohmann::json::error_handler_t::replace)
                                  : value;
    }
  }
  line += '\n';
  const std::lock_guard lock(g_write_mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

void RateLimited::warn(std::chrono::steady_clock::time_point now, std::string_view message,
                       std::initializer_list<Field> fields, std::uint64_t count) {
  if (!logged_once_) {
    write(LogLevel::kWarn, message, fields);
    logged_once_ = true;
    last_ = now;
    return;
  }
  ++suppressed_;
  suppressed_count_ += count;
  message_ = message;
  fields_.clear();
  for (const auto& [key, value] : fields) {
    if (key != "count") fields_.emplace_back(key, value);
  }
  tick(now);
}

void RateLimited::tick(std::chrono::steady_clock::time_point now) {
  if (suppressed_ == 0 || now - last_ < interval_) return;
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(now - last_).count();
  std::vector<Field> fields;
  for (const auto& [key, value] : fields_) fields.emplace_back(key, value);
  fields.emplace_back("times", std::to_string(suppressed_));
  fields.emplace_back("count", std::to_string(suppressed_count_));
  fields.emplace_back("within_s", std::to_string(seconds));
  write(LogLevel::kWarn, message_ + " (repeated)", fields);
  last_ = now;
  suppressed_ = 0;
  suppressed_count_ = 0;
}

}  // namespace tidepool::proxy::log
