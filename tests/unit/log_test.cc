// Logging: levels, the text and JSON line formats, journald priority prefixes, and
// RateLimited's summaries.
#include "tidepool/proxy/log.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

namespace tlog = tidepool::proxy::log;
using tidepool::proxy::LogFormat;
using tidepool::proxy::LogLevel;
using namespace std::chrono_literals;

namespace {

// Redirects fd 2 to an unlinked temporary file for the lifetime of the object, so the test can
// read exactly what the logger wrote. doctest reports on stdout, so its output is not caught.
class StderrCapture {
 public:
  StderrCapture() {
    std::fflush(stderr);
    char path[] = "/tmp/tidepool-log-test-XXXXXX";
    file_ = ::mkstemp(path);
    REQUIRE(file_ >= 0);
    ::unlink(path);
    saved_ = ::dup(2);
    REQUIRE(saved_ >= 0);
    REQUIRE(::dup2(file_, 2) == 2);
  }
  ~StderrCapture() {
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    ::close(file_);
  }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;

  // Every complete line written so far, without the newlines.
  std::vector<std::string> lines() const {
    std::fflush(stderr);
    std::string text;
    char buffer[4096];
    off_t offset = 0;
    while (true) {
      const ssize_t n = ::pread(file_, buffer, sizeof buffer, offset);
      if (n <= 0) break;
      text.append(buffer, static_cast<std::size_t>(n));
      offset += n;
    }
    std::vector<std::string> out;
    std::size_t start = 0;
    for (std::size_t end = text.find('\n'); end != std::string::npos;
         end = text.find('\n', start)) {
      out.push_back(text.substr(start, end - start));
      start = end + 1;
    }
    CHECK_MESSAGE(start == text.size(), "partial line at the end: " << text.substr(start));
    return out;
  }

 private:
  int file_ = -1;
  int saved_ = -1;
};

// "2026-11-22T20:30:00.123Z " followed by the rest of a text line.
bool text_line(const std::string& line, const std::string& rest) {
  static const std::regex kTimestamp(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z )");
  std::smatch match;
  if (!std::regex_search(line, match, kTimestamp)) return false;
  return line.substr(static_cast<std::size_t>(match.length(0))) == rest;
}

// Puts the process-wide logger back to its defaults after each test.
struct ResetLogger {
  ~ResetLogger() { tlog::configure(LogLevel::kInfo, LogFormat::kText); }
};

const std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();

}  // namespace

TEST_CASE("levels below the configured one are not written") {
  ResetLogger reset;
  tlog::configure(LogLevel::kWarn, LogFormat::kText);
  CHECK_FALSE(tlog::enabled(LogLevel::kDebug));
  CHECK_FALSE(tlog::enabled(LogLevel::kInfo));
  CHECK(tlog::enabled(LogLevel::kWarn));
  CHECK(tlog::enabled(LogLevel::kError));
  StderrCapture capture;
  tlog::debug("d");
  tlog::info("i");
  tlog::warn("w");
  tlog::error("e");
  const auto lines = capture.lines();
  REQUIRE(lines.size() == 2);
  CHECK(text_line(lines[0], "warn w"));
  CHECK(text_line(lines[1], "error e"));
}

TEST_CASE("text format: timestamp, level, message, key=value with quoting when needed") {
  ResetLogger reset;
  tlog::configure(LogLevel::kDebug, LogFormat::kText);
  StderrCapture capture;
  tlog::debug("started", {{"route", "requests"},
                          {"spaced", "a b"},
                          {"empty", ""},
                          {"eq", "x=y"},
                          {"quote", "say \"hi\""},
                          {"newline", "l1\nl2"}});
  const auto lines = capture.lines();
  REQUIRE(lines.size() == 1);  // a field with a newline must not split the line
  CHECK(text_line(lines[0], R"(debug started route=requests spaced="a b" empty="" eq="x=y" )"
                            R"(quote="say \"hi\"" newline="l1\nl2")"));
}

TEST_CASE("json format: one object per line with ts, level, msg and the fields") {
  ResetLogger reset;
  tlog::configure(LogLevel::kInfo, LogFormat::kJson);
  StderrCapture capture;
  tlog::info("backend \"up\"\nnow", {{"route", "results"}, {"peers", "2"}});
  tlog::error("bad bytes \xff\xfe", {{"raw", "\xc3\x28"}});
  tlog::debug("hidden");
  const auto lines = capture.lines();
  REQUIRE(lines.size() == 2);

  const auto first = nlohmann::json::parse(lines[0]);
  CHECK(first.at("level") == "info");
  CHECK(first.at("msg") == "backend \"up\"\nnow");
  CHECK(first.at("route") == "results");
  CHECK(first.at("peers") == "2");
  const std::string ts = first.at("ts");
  CHECK(std::regex_match(ts, std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)")));
  CHECK(first.size() == 5);

  // Invalid UTF-8 is replaced, never an exception or a broken line.
  const auto second = nlohmann::json::parse(lines[1]);
  CHECK(second.at("level") == "error");
  CHECK(second.at("msg").get<std::string>().rfind("bad bytes ", 0) == 0);
  CHECK(second.contains("raw"));
}

TEST_CASE("RateLimited: the first warning at once, repeats summarised after the interval") {
  ResetLogger reset;
  tlog::configure(LogLevel::kInfo, LogFormat::kText);
  StderrCapture capture;
  tlog::RateLimited limited(5s);

  limited.warn(t0, "queue full", {{"route", "r"}});
  REQUIRE(capture.lines().size() == 1);
  CHECK(text_line(capture.lines()[0], "warn queue full route=r"));

  limited.warn(t0 + 1s, "queue full", {{"route", "r"}});
  limited.warn(t0 + 2s, "queue full", {{"route", "r"}});
  limited.warn(t0 + 3s, "queue full", {{"route", "r"}});
  CHECK(capture.lines().size() == 1);
  limited.tick(t0 + 4s);
  limited.tick(t0 + 4999ms);
  CHECK(capture.lines().size() == 1);

  limited.tick(t0 + 5s);
  auto lines = capture.lines();
  REQUIRE(lines.size() == 2);
  CHECK(text_line(lines[1], "warn queue full (repeated) route=r times=3 count=3 within_s=5"));

  // Nothing suppressed since: ticks write nothing.
  limited.tick(t0 + 11s);
  limited.tick(t0 + 60s);
  CHECK(capture.lines().size() == 2);

  // A later repeat is summarised once the interval since the last line has passed: here at
  // once, since the last line is 55 s old.
  limited.warn(t0 + 60s, "queue full", {{"route", "r"}});
  lines = capture.lines();
  REQUIRE(lines.size() == 3);
  CHECK(text_line(lines[2], "warn queue full (repeated) route=r times=1 count=1 within_s=55"));

  // And the interval restarts from that line.
  limited.warn(t0 + 61s, "queue full", {{"route", "r"}});
  limited.tick(t0 + 64s);
  CHECK(capture.lines().size() == 3);
  limited.tick(t0 + 65s);
  lines = capture.lines();
  REQUIRE(lines.size() == 4);
  CHECK(text_line(lines[3], "warn queue full (repeated) route=r times=1 count=1 within_s=5"));
}

TEST_CASE("RateLimited: a tick with nothing suppressed writes nothing") {
  ResetLogger reset;
  tlog::configure(LogLevel::kInfo, LogFormat::kText);
  StderrCapture capture;
  tlog::RateLimited limited(1s);
  limited.tick(t0);
  limited.tick(t0 + 1h);
  CHECK(capture.lines().empty());
  limited.warn(t0 + 1h, "once", {});
  limited.tick(t0 + 2h);
  CHECK(capture.lines().size() == 1);
}

TEST_CASE("RateLimited: the summary is a JSON object too in json format") {
  ResetLogger reset;
  tlog::configure(LogLevel::kInfo, LogFormat::kJson);
  StderrCapture capture;
  tlog::RateLimited limited(5s);
  limited.warn(t0, "dropped", {{"reason", "expired"}});
  limited.warn(t0 + 1s, "dropped", {{"reason", "expired"}});
  limited.tick(t0 + 6s);
  const auto lines = capture.lines();
  REQUIRE(lines.size() == 2);
  const auto first = nlohmann::json::parse(lines[0]);
  CHECK(first.at("level") == "warn");
  CHECK(first.at("msg") == "dropped");
  CHECK(first.at("reason") == "expired");
  const auto summary = nlohmann::json::parse(lines[1]);
  CHECK(summary.at("level") == "warn");
  CHECK(summary.at("msg") == "dropped (repeated)");
  CHECK(summary.at("times") == "1");
  CHECK(summary.at("within_s") == "6");
}

// Regression: with two routes, a summary line must say which route and reason it is about.
TEST_CASE("RateLimited: the summary keeps the fields that say where the warning came from") {
  ResetLogger reset;
  tlog::configure(LogLevel::kInfo, LogFormat::kText);
  StderrCapture capture;
  tlog::RateLimited limited(5s);
  for (int i = 0; i < 3; ++i) {
    limited.warn(t0 + i * 1s, "queue full: message refused",
                 {{"route", "requests"}, {"reason", "queue_full"}});
  }
  limited.tick(t0 + 5s);
  const auto lines = capture.lines();
  REQUIRE(lines.size() == 2);
  CHECK(lines[1].find("route=requests") != std::string::npos);
  CHECK(lines[1].find("reason=queue_full") != std::string::npos);
}

namespace {

// "DEVICE:INODE" of what `fd` is open on, as systemd writes JOURNAL_STREAM.
std::string stream_id(int fd) {
  struct stat status {};
  REQUIRE(::fstat(fd, &status) == 0);
  return std::to_string(status.st_dev) + ":" + std::to_string(status.st_ino);
}

// Sets JOURNAL_STREAM for one test and removes it after (declared after ResetLogger, so it
// goes first and the reset sees no variable).
struct JournalStreamVariable {
  explicit JournalStreamVariable(const std::string& value) {
    ::setenv("JOURNAL_STREAM", value.c_str(), 1);
  }
  ~JournalStreamVariable() { ::unsetenv("JOURNAL_STREAM"); }
  JournalStreamVariable(const JournalStreamVariable&) = delete;
  JournalStreamVariable& operator=(const JournalStreamVariable&) = delete;
};

}  // namespace

TEST_CASE("is_journal_stream: only the DEVICE:INODE of the fd itself") {
  char path[] = "/tmp/tidepool-journal-test-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  ::unlink(path);
  const std::string id = stream_id(fd);
  CHECK(tlog::is_journal_stream(id.c_str(), fd));
  CHECK_FALSE(tlog::is_journal_stream(nullptr, fd));
  CHECK_FALSE(tlog::is_journal_stream("", fd));
  CHECK_FALSE(tlog::is_journal_stream("1:1", fd));
  CHECK_FALSE(tlog::is_journal_stream((id + "0").c_str(), fd));  // another inode
  CHECK_FALSE(tlog::is_journal_stream((id + ":").c_str(), fd));
  CHECK_FALSE(tlog::is_journal_stream(id.substr(0, id.find(':')).c_str(), fd));
  CHECK_FALSE(tlog::is_journal_stream(id.c_str(), -1));
  ::close(fd);
}

TEST_CASE("stderr is the journal: each line starts with its sd-daemon priority") {
  ResetLogger reset;
  StderrCapture capture;
  const JournalStreamVariable journal(stream_id(2));
  SUBCASE("text") { tlog::configure(LogLevel::kDebug, LogFormat::kText); }
  SUBCASE("json") { tlog::configure(LogLevel::kDebug, LogFormat::kJson); }
  tlog::debug("d");
  tlog::info("i");
  tlog::warn("w");
  tlog::error("e");
  const auto lines = capture.lines();
  REQUIRE(lines.size() == 4);
  const std::vector<std::string> prefixes = {"<7>", "<6>", "<4>", "<3>"};
  for (std::size_t i = 0; i < 4; ++i) {
    CHECK_MESSAGE(lines[i].starts_with(prefixes[i]), lines[i]);
    CHECK(lines[i].substr(3, 1) != "<");  // one prefix, then the line as without it
  }
}

TEST_CASE("JOURNAL_STREAM naming another stream (inherited, stderr redirected): no prefix") {
  ResetLogger reset;
  StderrCapture capture;
  const JournalStreamVariable journal("1:1");
  tlog::configure(LogLevel::kDebug, LogFormat::kText);
  tlog::warn("w");
  const auto lines = capture.lines();
  REQUIRE(lines.size() == 1);
  CHECK(text_line(lines[0], "warn w"));
}
