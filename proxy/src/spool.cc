// The durable spool's file layer (see spool.h): opening and locking the directory, scanning
// and replaying segments, appending with group commit, done records, recycling, fsyncs.
#include "tidepool/proxy/spool.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <system_error>
#include <utility>

namespace tidepool::proxy {
namespace {

namespace fs = std::filesystem;
using protocol::DecodeStatus;
using protocol::RecordKind;

constexpr std::size_t kNameDigits = 20;
constexpr std::string_view kSegmentSuffix = ".seg";

std::string errno_text(int error) { return std::system_category().message(error); }

std::string segment_name(std::uint64_t first_sequence) {
  char name[32];
  std::snprintf(name, sizeof(name), "%020" PRIu64 ".seg", first_sequence);
  return name;
}

// "<20 digits>.seg" → its first sequence; anything else (LOCK, *.corrupt) is not a segment.
std::optional<std::uint64_t> parse_segment_name(const std::string& name) {
  if (name.size() != kNameDigits + kSegmentSuffix.size()) return std::nullopt;
  if (name.compare(kNameDigits, kSegmentSuffix.size(), kSegmentSuffix) != 0) return std::nullopt;
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < kNameDigits; ++i) {
    const char c = name[i];
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

// Reads up to `limit` bytes from the start of `path`. Sets `error` (errno) on failure.
std::vector<std::byte> read_prefix(const std::string& path, std::uint64_t limit, int& error) {
  error = 0;
  std::vector<std::byte> data;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = errno;
    return data;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    error = errno;
    ::close(fd);
    return data;
  }
  const auto size = std::min(limit, static_cast<std::uint64_t>(std::max<off_t>(st.st_size, 0)));
  data.resize(static_cast<std::size_t>(size));
  std::size_t got = 0;
  while (got < data.size()) {
    const ssize_t n = ::pread(fd, data.data() + got, data.size() - got, static_cast<off_t>(got));
    if (n < 0) {
      if (errno == EINTR) continue;
      error = errno;
      break;
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  data.resize(got);
  ::close(fd);
  return data;
}

std::vector<std::string_view> views_of(const protocol::Record& record) {
  std::vector<std::string_view> frames;
  frames.reserve(record.frames.size());
  for (const auto& f : record.frames) {
    frames.emplace_back(reinterpret_cast<const char*>(f.data()), f.size());
  }
  return frames;
}

}  // namespace

Spool::Spool(SpoolOptions options) : options_(std::move(options)) {
  if (options_.dir.empty()) throw SpoolError("spool: no directory configured");
  if (options_.route.empty() || options_.route == "." || options_.route == ".." ||
      options_.route.find('/') != std::string::npos) {
    throw SpoolError("spool: route name '" + options_.route + "' cannot be a directory name");
  }
  path_ = (fs::path(options_.dir) / options_.route).string();
  try {
    std::error_code ec;
    fs::create_directories(path_, ec);
    if (ec) throw SpoolError("spool: cannot create directory '" + path_ + "': " + ec.message());
    if (!fs::is_directory(path_, ec)) {
      throw SpoolError("spool: '" + path_ + "' is not a directory");
    }
    if (::access(path_.c_str(), W_OK | X_OK) != 0) {
      throw SpoolError("spool: directory '" + path_ + "' is not writable: " + errno_text(errno));
    }
    const std::string lock_path = path_ + "/LOCK";
    lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd_ < 0) {
      throw SpoolError("spool: cannot open lock file '" + lock_path + "': " + errno_text(errno));
    }
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
      const int error = errno;
      if (error == EWOULDBLOCK) {
        throw SpoolError("spool: directory '" + path_ +
                         "' is locked by another spool (another tidepool using the same dir?)");
      }
      throw SpoolError("spool: cannot lock '" + lock_path + "': " + errno_text(error));
    }

    std::vector<std::pair<std::uint64_t, std::string>> found;
    for (const auto& entry : fs::directory_iterator(path_, ec)) {
      const std::string name = entry.path().filename().string();
      if (auto first = parse_segment_name(name)) found.emplace_back(*first, entry.path().string());
    }
    if (ec) throw SpoolError("spool: cannot list '" + path_ + "': " + ec.message());
    std::sort(found.begin(), found.end());

    std::vector<Live> messages;
    bool last_truncate_failed = false;
    for (auto& [first, file] : found) {
      next_ = std::max(next_, first);
      Segment segment{first, file, 0, 0};
      const std::uint64_t corrupt_before = stats_.corrupt_records;
      if (!scan_segment(segment, messages)) continue;
      // A tail we could not cut off must not be appended after.
      last_truncate_failed =
          stats_.corrupt_records != corrupt_before && fs::file_size(file, ec) != segment.bytes;
      stats_.bytes_on_disk += segment.bytes;
      segments_.push_back(std::move(segment));
    }
    for (const Live& m : messages) {
      if (m.sequence <= done_) continue;
      live_.push_back(m);
      stats_.live_bytes += m.bytes;
    }
    stats_.live_messages = live_.size();

    if (segments_.empty() || last_truncate_failed) {
      if (!create_segment()) throw SpoolError("spool: " + last_error_);
    } else {
      const Segment& last = segments_.back();
      fd_ = ::open(last.path.c_str(), O_RDWR | O_CLOEXEC);
      if (fd_ < 0) {
        throw SpoolError("spool: cannot open segment '" + last.path +
                         "' for writing: " + errno_text(errno));
      }
      // Repeat the watermark in the active segment, so recycling older ones cannot lose it.
      done_pending_ = done_ > 0;
    }
    recycle();
    // What was found counts as synced (older segments were synced when they were closed; a
    // crashed process leaves its writes in the page cache): this makes it hold for power loss
    // too. A failure is counted; the records are still replayed.
    fsync_active();
    mark_committed();
  } catch (...) {
    if (fd_ >= 0) ::close(fd_);
    if (lock_fd_ >= 0) ::close(lock_fd_);
    throw;
  }
}

Spool::~Spool() {
  sync();
  if (fd_ >= 0) ::close(fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

// Validates one segment: header, then records up to the first torn or corrupt one, where the
// file is cut (so the damage is counted once, not at every start). Returns false when the
// header itself is bad: the file is set aside as *.corrupt.
bool Spool::scan_segment(Segment& segment, std::vector<Live>& messages) {
  int error = 0;
  const std::vector<std::byte> data = read_prefix(segment.path, UINT64_MAX, error);
  if (error != 0) {
    throw SpoolError("spool: cannot read segment '" + segment.path + "': " + errno_text(error));
  }
  const auto header = protocol::decode_header(data);
  if (header.status != DecodeStatus::kOk) {
    ++stats_.corrupt_records;
    const std::string aside = segment.path + ".corrupt";
    last_error_ = "spool segment '" + segment.path + "': " + std::string(header.error) +
                  "; moved to '" + aside + "'";
    if (::rename(segment.path.c_str(), aside.c_str()) != 0) ::unlink(segment.path.c_str());
    return false;
  }
  next_ = std::max(next_, header.header.first_sequence);
  std::size_t offset = protocol::kSegmentHeaderSize;
  const std::uint64_t last_message = messages.empty() ? 0 : messages.back().sequence;
  std::uint64_t previous = last_message;
  while (offset < data.size()) {
    auto r = protocol::decode_record(std::span(data).subspan(offset), options_.max_record_bytes);
    std::string_view problem = r.error;
    if (r.status == DecodeStatus::kOk && r.record.kind == RecordKind::kMessage &&
        r.record.sequence <= previous) {
      problem = "message sequence out of order";
      r.status = DecodeStatus::kCorrupt;
    }
    if (r.status != DecodeStatus::kOk) {
      ++stats_.corrupt_records;
      last_error_ = "spool segment '" + segment.path + "': " + std::string(problem) +
                    " at offset " + std::to_string(offset) + "; " +
                    std::to_string(data.size() - offset) + " bytes dropped";
      if (::truncate(segment.path.c_str(), static_cast<off_t>(offset)) != 0) {
        last_error_ += " (truncate failed: " + errno_text(errno) + ")";
      }
      break;
    }
    const std::uint64_t sequence = r.record.sequence;
    if (r.record.kind == RecordKind::kMessage) {
      messages.push_back({sequence, r.consumed});
      segment.last_message = sequence;
      previous = sequence;
    } else {
      done_ = std::max(done_, sequence);
    }
    next_ = std::max(next_, sequence + 1);
    offset += r.consumed;
  }
  segment.bytes = std::min<std::uint64_t>(offset, data.size());
  return true;
}

// Starts a new active segment named after next_: header plus the current watermark.
bool Spool::create_segment() {
  const std::string file = path_ + "/" + segment_name(next_);
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    last_error_ = "cannot create segment '" + file + "': " + errno_text(errno);
    return false;
  }
  std::string bytes;
  protocol::encode_header(bytes, protocol::SegmentHeader{protocol::kSpoolFormatVersion, next_});
  if (done_ > 0) protocol::encode_done_record(bytes, done_);
  std::size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n =
        ::pwrite(fd, bytes.data() + written, bytes.size() - written, static_cast<off_t>(written));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      last_error_ = "cannot write segment '" + file + "': " + errno_text(n < 0 ? errno : ENOSPC);
      ::close(fd);
      ::unlink(file.c_str());
      return false;
    }
    written += static_cast<std::size_t>(n);
  }
  // The new file's directory entry must survive a crash like its records.
  const int dir = ::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  if (fd_ >= 0) {
    if (dirty_) fsync_active();  // the old segment leaves tick()'s reach
    ::close(fd_);
  }
  fd_ = fd;
  segments_.push_back(Segment{next_, file, bytes.size(), 0});
  stats_.bytes_on_disk += bytes.size();
  done_pending_ = false;
  dirty_ = true;
  committed_bytes_ = bytes.size();
  committed_last_message_ = 0;
  return true;
}

// Deletes leading segments whose messages are all done; never the active (last) one.
void Spool::recycle() {
  while (segments_.size() > 1 && segments_.front().last_message <= done_) {
    const Segment& front = segments_.front();
    if (::unlink(front.path.c_str()) != 0 && errno != ENOENT) {
      last_error_ = "cannot delete done segment '" + front.path + "': " + errno_text(errno);
      return;  // retried at the next mark_done
    }
    stats_.bytes_on_disk -= front.bytes;
    segments_.pop_front();
  }
}

// Cuts the active segment back to its header (every message in it is done), freeing its space;
// the watermark is written again with the next record. A crash in between leaves a segment
// with a header and no records: nothing to replay, which is right since all was done.
bool Spool::reset_active() {
  Segment& active = segments_.back();
  if (::ftruncate(fd_, static_cast<off_t>(protocol::kSegmentHeaderSize)) != 0) {
    last_error_ = "cannot cut back done segment '" + active.path + "': " + errno_text(errno);
    return false;
  }
  stats_.bytes_on_disk -= active.bytes - protocol::kSegmentHeaderSize;
  active.bytes = protocol::kSegmentHeaderSize;
  active.last_message = 0;
  // Uncommitted records cut here were done (evicted) too: nothing is left to take back.
  committed_bytes_ = active.bytes;
  committed_last_message_ = 0;
  done_pending_ = done_ > 0;
  dirty_ = true;
  return true;
}

// Writes `bytes` at the end of the active segment. On failure the segment is cut back to its
// previous end, so the file stays a valid sequence of records.
bool Spool::write_at_end(const std::string& bytes) {
  Segment& active = segments_.back();
  const auto start = static_cast<off_t>(active.bytes);
  std::size_t written = 0;
  int error = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::pwrite(fd_, bytes.data() + written, bytes.size() - written,
                               start + static_cast<off_t>(written));
    if (n < 0) {
      if (errno == EINTR) continue;
      error = errno;
      break;
    }
    if (n == 0) {
      error = ENOSPC;
      break;
    }
    written += static_cast<std::size_t>(n);
  }
  if (error == 0) {
    active.bytes += bytes.size();
    stats_.bytes_on_disk += bytes.size();
    dirty_ = true;
    return true;
  }
  last_error_ = "spool write to '" + active.path + "' failed: " + errno_text(error);
  if (written > 0 && ::ftruncate(fd_, start) != 0) {
    // The next write goes to the same offset and overwrites the partial record.
    last_error_ += " (truncating the partial record failed: " + errno_text(errno) + ")";
  }
  return false;
}

bool Spool::fsync_active() {
  if (options_.fdatasync(fd_) != 0) {
    ++stats_.write_errors;
    last_error_ = "spool fsync of '" + segments_.back().path + "' failed: " + errno_text(errno);
    if (uncommitted_ > 0) take_back_uncommitted();
    return false;
  }
  ++stats_.fsyncs;
  dirty_ = false;
  mark_committed();
  return true;
}

// Everything written so far is durable: older segments were synced when they were closed
// (with kAlways a failure there takes the batch back; with kInterval it is only counted).
void Spool::mark_committed() {
  synced_ = next_ - 1;
  uncommitted_ = 0;
  committed_bytes_ = segments_.back().bytes;
  committed_last_message_ = segments_.back().last_message;
}

// An fsync of uncommitted records failed. Retrying is no proof (the kernel may have dropped the
// failed pages and report the next fsync clean), so they are cut off the segment, never to be
// replayed, and stop being live; the caller refuses their messages. A done record written since
// the last commit goes with them and is written again.
void Spool::take_back_uncommitted() {
  Segment& active = segments_.back();
  if (::ftruncate(fd_, static_cast<off_t>(committed_bytes_)) == 0) {
    stats_.bytes_on_disk -= active.bytes - committed_bytes_;
    active.bytes = committed_bytes_;
    active.last_message = committed_last_message_;
  } else {
    // They stay in the file: a later done record covers them, but a crash before it replays
    // them (refused messages delivered after all, never a loss).
    last_error_ += " (cutting off the uncommitted records failed: " + errno_text(errno) + ")";
  }
  while (!live_.empty() && live_.back().sequence > synced_) {
    stats_.live_bytes -= live_.back().bytes;
    live_.pop_back();
  }
  stats_.live_messages = live_.size();
  done_pending_ = done_ > 0;
  uncommitted_ = 0;
  commit_failure_ = last_error_;
}

bool Spool::write_pending_done() {
  buffer_.clear();
  protocol::encode_done_record(buffer_, done_);
  if (!write_at_end(buffer_)) {
    ++stats_.write_errors;
    return false;
  }
  done_pending_ = false;
  return true;
}

std::optional<std::uint64_t> Spool::refuse(std::string message, bool full) {
  ++stats_.write_errors;
  if (full) ++stats_.full_refusals;
  last_error_ = std::move(message);
  return std::nullopt;
}

void Spool::replay(const std::function<void(std::uint64_t sequence,
                                            std::vector<std::string_view> frames)>& deliver) {
  // A snapshot: deliver() may call mark_done(), which recycles segments.
  std::vector<Segment> segments(segments_.begin(), segments_.end());
  std::uint64_t delivered = done_;
  for (const Segment& segment : segments) {
    if (segment.last_message <= std::max(delivered, done_)) continue;
    int error = 0;
    const std::vector<std::byte> data = read_prefix(segment.path, segment.bytes, error);
    if (error != 0 || data.size() < protocol::kSegmentHeaderSize) {
      ++stats_.corrupt_records;
      last_error_ = "spool replay cannot read '" + segment.path +
                    "': " + (error != 0 ? errno_text(error) : std::string("file shrank"));
      continue;
    }
    std::size_t offset = protocol::kSegmentHeaderSize;
    while (offset < data.size()) {
      const auto r =
          protocol::decode_record(std::span(data).subspan(offset), options_.max_record_bytes);
      if (r.status != DecodeStatus::kOk) {
        ++stats_.corrupt_records;
        last_error_ = "spool replay of '" + segment.path + "': " + std::string(r.error) +
                      " at offset " + std::to_string(offset);
        break;
      }
      offset += r.consumed;
      if (r.record.kind != RecordKind::kMessage) continue;
      const std::uint64_t sequence = r.record.sequence;
      if (sequence <= delivered || sequence <= done_) continue;
      delivered = sequence;
      ++stats_.replayed;
      deliver(sequence, views_of(r.record));
    }
  }
}

std::optional<std::uint64_t> Spool::append_uncommitted(std::span<const std::string_view> frames) {
  if (!commit_failure_.empty()) {
    return refuse("spool: not written, an fsync in this batch failed: " + commit_failure_);
  }
  std::size_t record_bytes = protocol::message_record_overhead(frames.size());
  for (const auto& f : frames) record_bytes += f.size();
  if (record_bytes > options_.max_record_bytes) {
    return refuse("spool: record of " + std::to_string(record_bytes) +
                  " bytes exceeds max_record_bytes " + std::to_string(options_.max_record_bytes));
  }
  if (stats_.live_bytes + record_bytes > options_.max_bytes) {
    return refuse("spool full: " + std::to_string(stats_.live_bytes) +
                      " live bytes + a record of " + std::to_string(record_bytes) +
                      " exceed max_bytes " + std::to_string(options_.max_bytes),
                  true);
  }
  const Segment& active = segments_.back();
  if (active.last_message != 0 && active.bytes + record_bytes > options_.segment_bytes) {
    // The closing segment's uncommitted records must be durable before another file takes
    // over; if that fsync fails they were taken back, and so is this one.
    if (uncommitted_ > 0 && !fsync_active()) return refuse(last_error_);
    if (!create_segment()) return refuse("spool: " + last_error_);
  }
  bool with_done = false;
  const auto encode = [&] {
    buffer_.clear();
    with_done = done_pending_;
    if (with_done) protocol::encode_done_record(buffer_, done_);
    protocol::encode_message_record(buffer_, next_, frames);
  };
  encode();
  if (!write_at_end(buffer_)) {
    // Everything in the active segment done (a drained backlog on a full disk): its space is
    // the only space this spool can free. Cut it back and try once more.
    if (!live_.empty() || segments_.back().last_message == 0) return refuse(last_error_);
    const std::string error = last_error_;
    if (!reset_active()) return refuse(error + "; " + last_error_);
    encode();
    if (!write_at_end(buffer_)) return refuse(last_error_);
  }
  if (with_done) done_pending_ = false;
  const std::uint64_t sequence = next_++;
  segments_.back().last_message = sequence;
  live_.push_back({sequence, record_bytes});
  stats_.live_bytes += record_bytes;
  stats_.live_messages = live_.size();
  if (options_.fsync == FsyncPolicy::kAlways) ++uncommitted_;
  return sequence;
}

std::optional<std::uint64_t> Spool::append_uncommitted(const protocol::Multipart& message) {
  scratch_.clear();
  for (std::size_t i = 0; i < message.size(); ++i) scratch_.push_back(message.frame_view(i));
  return append_uncommitted(std::span<const std::string_view>(scratch_));
}

bool Spool::commit() {
  if (!commit_failure_.empty()) {
    commit_failure_.clear();  // reported now: the next batch may be written
    return false;
  }
  if (uncommitted_ == 0) return true;
  if (fsync_active()) return true;
  commit_failure_.clear();
  return false;
}

void Spool::mark_done(std::uint64_t sequence) {
  sequence = std::min(sequence, next_ - 1);
  if (sequence <= done_) return;
  done_ = sequence;
  done_pending_ = true;
  while (!live_.empty() && live_.front().sequence <= done_) {
    stats_.live_bytes -= live_.front().bytes;
    live_.pop_front();
  }
  stats_.live_messages = live_.size();
  recycle();
}

void Spool::tick(std::chrono::steady_clock::time_point now) {
  if (done_pending_) write_pending_done();
  // Uncommitted records are commit()'s to sync, and to take back if that fails.
  if (dirty_ && uncommitted_ == 0 && now - last_fsync_ >= options_.fsync_interval) {
    last_fsync_ = now;
    fsync_active();
  }
}

bool Spool::sync() {
  bool ok = true;
  if (done_pending_) ok = write_pending_done() && ok;
  if (dirty_) ok = fsync_active() && ok;
  return ok;
}

}  // namespace tidepool::proxy
