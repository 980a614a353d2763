// Reading and parsing /proc for the process_* metrics (see process_stats.h).
#include "tidepool/proxy/process_stats.h"

#include <dirent.h>
#include <unistd.h>

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace tidepool::proxy {
namespace {

std::optional<std::string> read_file(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::optional<double> to_number(std::string_view word) {
  // from_chars for double is in libstdc++ 11+; integers are all /proc holds here.
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), value);
  if (ec != std::errc() || end != word.data() + word.size()) return std::nullopt;
  return static_cast<double>(value);
}

std::vector<std::string_view> split_words(std::string_view text) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n')) ++i;
    const std::size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\t' && text[i] != '\n') ++i;
    if (i > start) words.push_back(text.substr(start, i - start));
  }
  return words;
}

// Open descriptors, not counting the one that lists them.
std::optional<double> count_open_fds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  const int own = ::dirfd(dir);
  double count = 0;
  // readdir is safe on a DIR* of our own (only the HTTP thread scrapes).
  while (const dirent* entry = ::readdir(dir)) {  // NOLINT(concurrency-mt-unsafe)
    const std::string_view name = entry->d_name;
    if (name == "." || name == ".." || name == std::to_string(own)) continue;
    ++count;
  }
  ::closedir(dir);
  return count;
}

}  // namespace

std::optional<ProcStat> parse_proc_stat(std::string_view text) {
  const auto close = text.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  const auto words = split_words(text.substr(close + 1));
  // words[0] is field 3 (state); utime is field 14, stime 15, starttime 22, vsize 23, rss 24.
  constexpr std::size_t kFirstField = 3;
  const auto field = [&](std::size_t number) -> std::optional<double> {
    if (number - kFirstField >= words.size()) return std::nullopt;
    return to_number(words[number - kFirstField]);
  };
  const auto utime = field(14);
  const auto stime = field(15);
  const auto start = field(22);
  const auto vsize = field(23);
  const auto rss = field(24);
  if (!utime || !stime || !start || !vsize || !rss) return std::nullopt;
  return ProcStat{*utime + *stime, *start, *vsize, *rss};
}

std::optional<double> parse_boot_time(std::string_view proc_stat) {
  std::size_t at = 0;
  while (at < proc_stat.size()) {
    auto end = proc_stat.find('\n', at);
    if (end == std::string_view::npos) end = proc_stat.size();
    const auto words = split_words(proc_stat.substr(at, end - at));
    if (words.size() == 2 && words[0] == "btime") return to_number(words[1]);
    at = end + 1;
  }
  return std::nullopt;
}

std::optional<double> parse_max_open_files(std::string_view limits) {
  constexpr std::string_view kName = "Max open files";
  const auto at = limits.find(kName);
  if (at == std::string_view::npos) return std::nullopt;
  auto line = limits.substr(at + kName.size());
  line = line.substr(0, line.find('\n'));
  const auto words = split_words(line);  // soft, hard, unit
  if (words.empty()) return std::nullopt;
  if (words[0] == "unlimited") return std::numeric_limits<double>::infinity();
  return to_number(words[0]);
}

ProcessStats read_process_stats() {
  ProcessStats stats;
  const auto ticks_per_second = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const auto page_size = static_cast<double>(::sysconf(_SC_PAGESIZE));
  if (const auto text = read_file("/proc/self/stat")) {
    if (const auto stat = parse_proc_stat(*text)) {
      stats.cpu_seconds = stat->cpu_ticks / ticks_per_second;
      stats.virtual_memory_bytes = stat->virtual_bytes;
      stats.resident_memory_bytes = stat->resident_pages * page_size;
      if (const auto system = read_file("/proc/stat")) {
        if (const auto boot = parse_boot_time(*system)) {
          stats.start_time_seconds = *boot + stat->start_ticks / ticks_per_second;
        }
      }
    }
  }
  stats.open_fds = count_open_fds();
  if (const auto limits = read_file("/proc/self/limits")) {
    stats.max_fds = parse_max_open_files(*limits);
  }
  return stats;
}

}  // namespace tidepool::proxy
