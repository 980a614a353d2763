// Durable spool (DESIGN.md §3): the file layer over the pure record codec in
// protocol/spool_record.h. One directory per route (dir/<route>/) holding segment files named by
// the 20-digit sequence of their first record ("00000000000000000001.seg", so names sort in
// sequence order) and a LOCK file held with flock() so two tidepools cannot share a spool.
//
// Single-threaded: the route's event loop owns the Spool; no call may run concurrently.
//
// Durability:
//   - Group commit with FsyncPolicy::kAlways: append_uncommitted() writes a record without
//     fdatasync; commit() then fdatasyncs every record written since the last commit at once.
//     A message whose record has been committed (sequence <= synced_sequence()) survives kill -9
//     and power loss; before that it must not be forwarded or counted as queued.
//   - A failed fdatasync of uncommitted records (in commit(), or when a segment roll has to
//     make the closing segment durable) takes all of them back: they are cut off the segment
//     (never replayed) and stop being live, commit() returns false, and further
//     append_uncommitted() calls are refused until commit() has reported that. After a failed
//     fsync the kernel may have dropped the dirty pages and a retry could report success for
//     data that never reached the disk, so the records are not retried, the caller refuses
//     their messages (counted, logged).
//   - With kInterval, tick() fdatasyncs at most every fsync_interval: a crash may lose the
//     messages appended since the last fsync (the documented window). commit() does nothing.
//   - Done records are never fsynced on their own and are written lazily (on the next append,
//     tick(), sync() or destruction): losing one only makes a forwarded message be delivered
//     again after a crash (a duplicate), never lost.
//   - A new segment's first record repeats the current done watermark, so deleting older
//     segments never loses it.
//   - The event loop should call tick() at least every fsync_interval: with kInterval nothing
//     else fsyncs (except rolling to a new segment and sync()/destruction). With kAlways, call
//     commit() before tick(): tick() does not fsync while records are uncommitted.
//
// Space: segment files are deleted once all their messages are done. The active segment is
// never deleted; when a write to it fails (e.g. the disk is full) while every message in it is
// done, it is cut back to its header and the watermark, and the write is tried once more, so a
// spool that filled a small disk by itself recovers once its messages are forwarded.
// max_bytes bounds the record bytes of live messages (header and done records are extra, at
// most a few per segment); if a restart finds more live bytes than max_bytes (limit lowered),
// appends are refused until mark_done() brings them under. Memory: 16 bytes per live message (its
// sequence and size, for the byte accounting), plus one segment's bytes while scanning or
// replaying it.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "tidepool/protocol/multipart.h"
#include "tidepool/protocol/spool_record.h"
#include "tidepool/proxy/config.h"

namespace tidepool::proxy {

// FsyncPolicy (kAlways, kInterval) is declared in config.h, with the route's SpoolConfig.

struct SpoolOptions {
  std::string dir;  // created if missing; the spool lives in dir/<route>/
  std::string route;
  FsyncPolicy fsync = FsyncPolicy::kInterval;
  std::chrono::milliseconds fsync_interval{100};
  std::size_t max_bytes = std::size_t{256} << 20;     // bound on live (not done) record bytes
  std::size_t segment_bytes = std::size_t{16} << 20;  // roll to a new segment past this
  // Largest record accepted (header included). Should be max_message_bytes plus
  // protocol::message_record_overhead(max frames); larger lengths on disk count as corrupt.
  std::size_t max_record_bytes = protocol::kDefaultMaxRecordBytes;
  // The fdatasync(2) the spool calls (returns 0, or -1 with errno set): tests inject failures.
  std::function<int(int fd)> fdatasync = ::fdatasync;
};

struct SpoolStats {
  std::uint64_t bytes_on_disk = 0;    // segment files' sizes (tidepool_spool_bytes)
  std::uint64_t replayed = 0;         // messages delivered by replay()
  std::uint64_t corrupt_records = 0;  // torn/corrupt tails and bad segment headers found
  std::uint64_t write_errors = 0;     // refused appends (I/O errors and spool full) + failed
                                      // fsyncs / done-record writes
  std::uint64_t fsyncs = 0;           // successful fdatasyncs of the active segment
  std::uint64_t full_refusals = 0;    // of write_errors: appends refused because of max_bytes
  std::uint64_t live_messages = 0;    // appended/replayable messages not yet marked done
  std::uint64_t live_bytes = 0;       // their record bytes (what max_bytes bounds)
};

class SpoolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Spool {
 public:
  // Creates dir/<route>/ if missing, takes an exclusive flock on its LOCK file, scans the
  // existing segments in order (truncating torn or corrupt tails, counting them), deletes
  // segments whose messages are all done, and opens the last segment (or a new one) for
  // appends. Throws SpoolError, naming the path and the errno text, when the directory cannot
  // be created, written or locked, or a first segment cannot be created (e.g. disk full).
  explicit Spool(SpoolOptions options);
  ~Spool();  // writes a pending done record, fsyncs and closes (errors are only counted)
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Calls `deliver(sequence, frames)` for every message record on disk not covered by a done
  // record, in sequence order. The string_views point into a read buffer that is only valid
  // during the call: copy what must outlive it. Call once, after construction and before the
  // first append. Corruption found while reading is counted, never thrown.
  void replay(const std::function<void(std::uint64_t sequence,
                                       std::vector<std::string_view> frames)>& deliver);

  // Writes a message record; returns its sequence (strictly increasing, higher than anything
  // replayed), or std::nullopt when it cannot be written: disk full (ENOSPC), EIO, a record
  // over max_record_bytes, max_bytes of live records reached, or an fdatasync of this batch
  // failed (see above). Then last_error() says why, stats().write_errors counts it, and the
  // spool stays valid and usable (a partial write is truncated back). With kAlways the record
  // is not durable until commit() returned true.
  std::optional<std::uint64_t> append_uncommitted(std::span<const std::string_view> frames);
  std::optional<std::uint64_t> append_uncommitted(const protocol::Multipart& message);

  // With kAlways: fdatasyncs what append_uncommitted() wrote since the last commit (nothing to
  // do when it wrote nothing). True when those records are durable; false when an fdatasync of
  // them failed (here or at a segment roll in between): they were taken back, last_error() says
  // why, and the caller must refuse every message with a sequence above synced_sequence().
  // With kInterval: true, nothing to do (tick() fsyncs on the interval).
  bool commit();

  // Every message with sequence <= `sequence` has been forwarded. Updates the watermark at once
  // (the done record itself is written lazily, see above) and deletes whole segments, other
  // than the active one, whose messages are all done. Sequences at or below the current
  // watermark are ignored; ones above the last appended sequence are clamped to it.
  void mark_done(std::uint64_t sequence);

  // From the event loop's timer: writes a pending done record, and fdatasyncs when there are
  // unsynced writes and fsync_interval has passed since the last fsync (both policies; with
  // kAlways only done records can be unsynced).
  void tick(std::chrono::steady_clock::time_point now);

  // Writes a pending done record and fdatasyncs now (shutdown, tests). False on error.
  bool sync();
  // Whether tick() has work: a done record to write or writes not yet fsynced.
  [[nodiscard]] bool needs_tick() const { return done_pending_ || dirty_; }
  // Records written by append_uncommitted() and not yet committed (kAlways; 0 with kInterval).
  // Tests only: the route tracks its batch itself.
  [[nodiscard]] std::uint64_t uncommitted_for_test() const { return uncommitted_; }
  // Every message record with a sequence <= this has been fdatasynced (records found at start
  // included: the active segment is synced when the spool opens).
  [[nodiscard]] std::uint64_t synced_sequence() const { return synced_; }

  [[nodiscard]] const SpoolStats& stats() const { return stats_; }
  [[nodiscard]] const std::string& last_error() const { return last_error_; }
  [[nodiscard]] const std::string& path() const { return path_; }  // dir/<route>
  // The done watermark (mark_done()). Tests only: the route keeps its own.
  [[nodiscard]] std::uint64_t done_sequence_for_test() const { return done_; }

 private:
  struct Segment {
    std::uint64_t first_sequence = 0;  // from the file name
    std::string path;
    std::uint64_t bytes = 0;         // valid bytes (= file size after the scan)
    std::uint64_t last_message = 0;  // highest message sequence in it, 0 when none
  };
  struct Live {
    std::uint64_t sequence;
    std::uint64_t bytes;
  };

  bool scan_segment(Segment& segment, std::vector<Live>& messages);
  bool create_segment();
  void recycle();
  bool reset_active();
  bool write_pending_done();
  bool write_at_end(const std::string& bytes);
  bool fsync_active();
  void take_back_uncommitted();
  void mark_committed();
  std::optional<std::uint64_t> refuse(std::string message, bool full = false);

  SpoolOptions options_;
  std::string path_;
  int lock_fd_ = -1;
  int fd_ = -1;  // the active (last) segment, opened read-write; writes use pwrite at its end
  std::deque<Segment> segments_;  // in sequence order; back() is the active one
  std::deque<Live> live_;         // messages not yet done, in sequence order
  std::uint64_t next_ = 1;        // sequence of the next append
  std::uint64_t done_ = 0;        // watermark: every message <= done_ was forwarded
  bool done_pending_ = false;     // done_ moved since the last done record written
  bool dirty_ = false;            // written since the last fsync
  std::uint64_t synced_ = 0;      // every message record <= this is fdatasynced
  // kAlways group commit: records written since the last commit, where they start in the
  // active segment (what a failed fsync cuts back to), and the segment's last message there.
  std::uint64_t uncommitted_ = 0;
  std::uint64_t committed_bytes_ = 0;
  std::uint64_t committed_last_message_ = 0;
  std::chrono::steady_clock::time_point last_fsync_{};
  // Non-empty after an fsync of uncommitted records failed (its error): appends are refused
  // until commit() has reported the failure.
  std::string commit_failure_;
  std::string buffer_;                     // encode buffer, reused
  std::vector<std::string_view> scratch_;  // frame views for the Multipart overload
  SpoolStats stats_;
  std::string last_error_;
};

}  // namespace tidepool::proxy
