// What /proc/self says about this process (CPU time, memory, file descriptors, start time),
// read at scrape time for the process_* metrics; the parsers are separate so tests can feed
// them text.
#pragma once

#include <optional>
#include <string_view>

namespace tidepool::proxy {

// Fields of /proc/self/stat that the process_* metrics need, in the kernel's units.
struct ProcStat {
  double cpu_ticks = 0;       // utime + stime, in clock ticks
  double start_ticks = 0;     // starttime: clock ticks after boot
  double virtual_bytes = 0;   // vsize
  double resident_pages = 0;  // rss
};

// Parses the one line of /proc/PID/stat. The command name (field 2) may hold spaces and
// parentheses, so fields are counted from its last ')'. nullopt when the line is not one.
std::optional<ProcStat> parse_proc_stat(std::string_view text);
// The "btime" line of /proc/stat: boot time in seconds since the epoch.
std::optional<double> parse_boot_time(std::string_view proc_stat);
// The soft limit on the "Max open files" line of /proc/PID/limits; "unlimited" is +Inf.
std::optional<double> parse_max_open_files(std::string_view limits);

// A value is nullopt when its /proc file could not be read or parsed; that metric is then
// left out of the scrape, as the Prometheus client libraries do.
struct ProcessStats {
  std::optional<double> cpu_seconds;
  std::optional<double> resident_memory_bytes;
  std::optional<double> virtual_memory_bytes;
  std::optional<double> open_fds;
  std::optional<double> max_fds;
  std::optional<double> start_time_seconds;
};

// Reads /proc/self/stat, /proc/stat (btime), /proc/self/fd and /proc/self/limits now.
ProcessStats read_process_stats();

}  // namespace tidepool::proxy
