// Spool: append and replay across segments and reopens, done records and recycling, damage
// (torn, flipped, random), bounds, the lock, full disks, fsync failures and group commit.
#include "tidepool/proxy/spool.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "temp_dir.h"

namespace fs = std::filesystem;
using tidepool::protocol::Multipart;
using tidepool::proxy::FsyncPolicy;
using tidepool::proxy::Spool;
using tidepool::proxy::SpoolError;
using tidepool::proxy::SpoolOptions;
using tidepool::test::TempDir;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kHeader = 24;
// One frame of `payload` bytes: 17-byte record header + frame count + frame size + payload.
constexpr std::size_t record_size(std::size_t payload) { return 17 + 4 + 4 + payload; }

SpoolOptions options_for(const std::string& dir) {
  SpoolOptions o;
  o.dir = dir;
  o.route = "requests";
  o.fsync = FsyncPolicy::kInterval;
  return o;
}

std::string payload(std::uint64_t n, std::size_t size = 100) {
  std::string p = "msg-" + std::to_string(n) + "-";
  p.resize(size, static_cast<char>('a' + n % 26));
  return p;
}

// One durable record, as the route writes a batch of one: append_uncommitted() and commit().
// With kAlways a returned sequence is on disk; on a failed fdatasync the record was taken back.
std::optional<std::uint64_t> append_committed(Spool& spool,
                                              std::span<const std::string_view> frames) {
  const auto sequence = spool.append_uncommitted(frames);
  if (sequence && !spool.commit()) return std::nullopt;
  return sequence;
}

std::optional<std::uint64_t> append_one(Spool& spool, const std::string& body) {
  const std::string_view frames[] = {body};
  return append_committed(spool, frames);
}

std::optional<std::uint64_t> append_uncommitted_one(Spool& spool, const std::string& body) {
  const std::string_view frames[] = {body};
  return spool.append_uncommitted(std::span<const std::string_view>(frames));
}

// An fdatasync that fails with EIO while `failing` is set, and counts its calls.
struct FailingSync {
  bool failing = false;
  int calls = 0;
  std::function<int(int)> hook() {
    return [this](int fd) {
      ++calls;
      if (failing) {
        errno = EIO;
        return -1;
      }
      return ::fdatasync(fd);
    };
  }
};

std::vector<std::uint64_t> replayed_sequences(Spool& spool) {
  std::vector<std::uint64_t> sequences;
  spool.replay([&](std::uint64_t sequence, const std::vector<std::string_view>&) {
    sequences.push_back(sequence);
  });
  return sequences;
}

struct Replayed {
  std::uint64_t sequence;
  std::vector<std::string> frames;
};

std::vector<Replayed> replay_all(Spool& spool) {
  std::vector<Replayed> out;
  spool.replay([&](std::uint64_t sequence, std::vector<std::string_view> frames) {
    out.push_back({sequence, std::vector<std::string>(frames.begin(), frames.end())});
  });
  return out;
}

std::vector<std::string> segments(const std::string& route_dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(route_dir)) {
    const std::string name = e.path().filename().string();
    if (name.size() > 4 && name.ends_with(".seg")) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

void truncate_file(const std::string& file, std::size_t size) {
  const int fd = ::open(file.c_str(), O_WRONLY);
  REQUIRE(fd >= 0);
  REQUIRE(::ftruncate(fd, static_cast<off_t>(size)) == 0);
  ::close(fd);
}

void flip_byte(const std::string& file, std::size_t offset) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f.good());
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>(c ^ 0x40));
  REQUIRE(f.good());
}

}  // namespace

TEST_CASE("append and replay round trip across reopen, one segment") {
  TempDir tmp;
  std::vector<std::uint64_t> sequences;
  {
    Spool spool(options_for(tmp.path()));
    CHECK(replay_all(spool).empty());
    for (std::uint64_t i = 0; i < 5; ++i) {
      auto seq = append_one(spool, payload(i));
      REQUIRE(seq);
      sequences.push_back(*seq);
    }
    // Multi-frame message through the Multipart overload, with an empty delimiter frame.
    Multipart m;
    m.push_back(std::string_view("id"));
    m.push_back(std::string_view(""));
    m.push_back(std::string_view("body"));
    auto seq = spool.append_uncommitted(m);
    REQUIRE(seq);
    REQUIRE(spool.commit());
    sequences.push_back(*seq);
  }
  CHECK(std::is_sorted(sequences.begin(), sequences.end()));
  CHECK(std::adjacent_find(sequences.begin(), sequences.end()) == sequences.end());
  CHECK(segments(tmp.path() + "/requests").size() == 1);

  Spool spool(options_for(tmp.path()));
  const auto got = replay_all(spool);
  REQUIRE(got.size() == 6);
  for (std::size_t i = 0; i < 5; ++i) {
    CHECK(got[i].sequence == sequences[i]);
    CHECK(got[i].frames == std::vector<std::string>{payload(i)});
  }
  CHECK(got[5].frames == std::vector<std::string>{"id", "", "body"});
  CHECK(spool.stats().replayed == 6);
  CHECK(spool.stats().corrupt_records == 0);
  CHECK(spool.stats().live_messages == 6);
  // New appends continue above everything replayed.
  auto next = append_one(spool, "later");
  REQUIRE(next);
  CHECK(*next > sequences.back());
}

TEST_CASE("append and replay across several segments and reopens") {
  TempDir tmp;
  auto o = options_for(tmp.path());
  o.segment_bytes = kHeader + 3 * record_size(100);  // three records per segment
  for (std::uint64_t i = 0; i < 10; ++i) {
    Spool spool(o);
    (void)replay_all(spool);
    REQUIRE(append_one(spool, payload(i)));
  }
  // Reopening continues the last segment: 10 records in 4 segments.
  CHECK(segments(tmp.path() + "/requests").size() == 4);
  Spool spool(o);
  const auto got = replay_all(spool);
  REQUIRE(got.size() == 10);
  for (std::uint64_t i = 0; i < 10; ++i) {
    CHECK(got[i].sequence == i + 1);
    CHECK(got[i].frames.at(0) == payload(i));
  }
  CHECK(segments(tmp.path() + "/requests").front() == "00000000000000000001.seg");
}

TEST_CASE("done records suppress replay; sequences keep growing when everything is done") {
  TempDir tmp;
  {
    Spool spool(options_for(tmp.path()));
    for (std::uint64_t i = 0; i < 6; ++i) REQUIRE(append_one(spool, payload(i)));
    spool.mark_done(4);
    CHECK(spool.stats().live_messages == 2);
    CHECK(spool.stats().live_bytes == 2 * record_size(100));
  }
  {
    Spool spool(options_for(tmp.path()));
    const auto got = replay_all(spool);
    REQUIRE(got.size() == 2);
    CHECK(got[0].sequence == 5);
    CHECK(got[1].sequence == 6);
    spool.mark_done(6);
    // A done beyond the last appended sequence is clamped, not trusted.
    spool.mark_done(1000);
    CHECK(spool.done_sequence_for_test() == 6);
  }
  Spool spool(options_for(tmp.path()));
  CHECK(replay_all(spool).empty());
  CHECK(spool.stats().live_messages == 0);
  auto seq = append_one(spool, "x");
  REQUIRE(seq);
  CHECK(*seq == 7);
}

TEST_CASE("fully done segments are deleted, the active one is kept") {
  TempDir tmp;
  const std::string route_dir = tmp.path() + "/requests";
  auto o = options_for(tmp.path());
  o.segment_bytes = kHeader + 3 * record_size(100);
  Spool spool(o);
  for (std::uint64_t i = 0; i < 9; ++i) REQUIRE(append_one(spool, payload(i)));
  REQUIRE(segments(route_dir) == std::vector<std::string>{"00000000000000000001.seg",
                                                          "00000000000000000004.seg",
                                                          "00000000000000000007.seg"});
  const auto disk_before = spool.stats().bytes_on_disk;
  spool.mark_done(2);  // segment 1 not complete yet
  CHECK(segments(route_dir).size() == 3);
  spool.mark_done(5);  // segment 1 done
  CHECK(segments(route_dir) ==
        std::vector<std::string>{"00000000000000000004.seg", "00000000000000000007.seg"});
  CHECK(spool.stats().bytes_on_disk == disk_before - (kHeader + 3 * record_size(100)));
  spool.mark_done(9);  // all done: the active segment stays
  CHECK(segments(route_dir) == std::vector<std::string>{"00000000000000000007.seg"});
  CHECK(spool.stats().live_bytes == 0);

  // The next segment repeats the watermark, so nothing comes back after a restart.
  for (std::uint64_t i = 9; i < 13; ++i) REQUIRE(append_one(spool, payload(i)));
  spool.mark_done(10);
  // Segment 10 starts with the watermark (a 17-byte done record), so it holds only two.
  CHECK(segments(route_dir) ==
        std::vector<std::string>{"00000000000000000010.seg", "00000000000000000012.seg"});
}

TEST_CASE("done watermark survives recycling across restarts") {
  TempDir tmp;
  auto o = options_for(tmp.path());
  o.segment_bytes = kHeader + 3 * record_size(100);
  {
    Spool spool(o);
    for (std::uint64_t i = 0; i < 7; ++i) REQUIRE(append_one(spool, payload(i)));
    spool.mark_done(3);
  }
  {
    Spool spool(o);
    const auto got = replay_all(spool);
    REQUIRE(got.size() == 4);
    CHECK(got.front().sequence == 4);
    spool.mark_done(5);
  }
  Spool spool(o);
  const auto got = replay_all(spool);
  REQUIRE(got.size() == 2);
  CHECK(got[0].sequence == 6);
  CHECK(got[1].sequence == 7);
}

TEST_CASE("a torn tail is truncated and counted, at every byte offset class") {
  const std::size_t rec = record_size(100);
  const std::size_t full = kHeader + 3 * rec;
  const std::size_t last_start = kHeader + 2 * rec;
  for (const std::size_t cut : {last_start + 1, last_start + 3, last_start + 4, last_start + 8,
                                last_start + 17, last_start + 60, full - 1}) {
    CAPTURE(cut);
    TempDir tmp;
    const std::string file = tmp.path() + "/requests/00000000000000000001.seg";
    {
      Spool spool(options_for(tmp.path()));
      for (std::uint64_t i = 0; i < 3; ++i) REQUIRE(append_one(spool, payload(i)));
    }
    REQUIRE(fs::file_size(file) == full);
    truncate_file(file, cut);
    {
      Spool spool(options_for(tmp.path()));
      CHECK(spool.stats().corrupt_records == 1);
      CHECK(spool.last_error().find("00000000000000000001.seg") != std::string::npos);
      const auto got = replay_all(spool);
      REQUIRE(got.size() == 2);
      CHECK(got[1].frames.at(0) == payload(1));
      CHECK(fs::file_size(file) == last_start);
      auto seq = append_one(spool, "after");
      REQUIRE(seq);
      CHECK(*seq == 3);
    }
    // The damage was cut off: counted once, and the new record is intact.
    Spool spool(options_for(tmp.path()));
    CHECK(spool.stats().corrupt_records == 0);
    const auto got = replay_all(spool);
    REQUIRE(got.size() == 3);
    CHECK(got[2].frames.at(0) == "after");
  }
}

TEST_CASE("a torn or missing segment header is counted, set aside, never fatal") {
  TempDir tmp;
  const std::string route_dir = tmp.path() + "/requests";
  auto o = options_for(tmp.path());
  o.segment_bytes = kHeader + 2 * record_size(100);
  {
    Spool spool(o);
    for (std::uint64_t i = 0; i < 4; ++i) REQUIRE(append_one(spool, payload(i)));
  }
  REQUIRE(segments(route_dir).size() == 2);
  truncate_file(route_dir + "/00000000000000000003.seg", 10);
  Spool spool(o);
  CHECK(spool.stats().corrupt_records == 1);
  const auto got = replay_all(spool);
  REQUIRE(got.size() == 2);
  CHECK(got[1].sequence == 2);
  CHECK(fs::exists(route_dir + "/00000000000000000003.seg.corrupt"));
  auto seq = append_one(spool, "x");
  REQUIRE(seq);
  CHECK(*seq > 2);
}

TEST_CASE("a flipped byte in a middle record: good records delivered, rest of segment skipped") {
  TempDir tmp;
  const std::string route_dir = tmp.path() + "/requests";
  const std::size_t rec = record_size(100);
  auto o = options_for(tmp.path());
  o.segment_bytes = kHeader + 3 * rec;
  {
    Spool spool(o);
    for (std::uint64_t i = 0; i < 6; ++i) REQUIRE(append_one(spool, payload(i)));
  }
  REQUIRE(segments(route_dir).size() == 2);
  // Inside the payload of the second record of the first segment.
  flip_byte(route_dir + "/00000000000000000001.seg", kHeader + rec + 50);
  std::vector<std::uint64_t> delivered;
  {
    Spool spool(o);
    CHECK(spool.stats().corrupt_records == 1);
    CHECK(spool.last_error().find("CRC") != std::string::npos);
    for (const auto& r : replay_all(spool)) delivered.push_back(r.sequence);
    CHECK(delivered == std::vector<std::uint64_t>{1, 4, 5, 6});
  }
  // A flipped length field is caught the same way.
  flip_byte(route_dir + "/00000000000000000004.seg", kHeader + rec + 1);
  Spool spool(o);
  CHECK(spool.stats().corrupt_records == 1);
  delivered.clear();
  for (const auto& r : replay_all(spool)) delivered.push_back(r.sequence);
  CHECK(delivered == std::vector<std::uint64_t>{1, 4});
}

TEST_CASE("random damage never throws and never delivers a wrong or reordered message") {
  std::mt19937 rng(12345);
  const std::size_t rec = record_size(100);
  for (int round = 0; round < 60; ++round) {
    CAPTURE(round);
    TempDir tmp;
    const std::string route_dir = tmp.path() + "/requests";
    auto o = options_for(tmp.path());
    o.segment_bytes = kHeader + 4 * rec;
    {
      Spool spool(o);
      for (std::uint64_t i = 0; i < 12; ++i) REQUIRE(append_one(spool, payload(i)));
      spool.mark_done(rng() % 4);
    }
    const auto files = segments(route_dir);
    for (int damage = 0; damage < 3; ++damage) {
      const std::string file = route_dir + "/" + files[rng() % files.size()];
      const auto size = static_cast<std::size_t>(fs::file_size(file));
      if (size == 0) continue;
      if (rng() % 2 == 0) {
        flip_byte(file, rng() % size);
      } else {
        truncate_file(file, rng() % size);
      }
    }
    std::optional<Spool> spool;
    REQUIRE_NOTHROW(spool.emplace(o));
    std::uint64_t previous = 0;
    for (const auto& r : replay_all(*spool)) {
      CHECK(r.sequence > previous);
      previous = r.sequence;
      REQUIRE(r.sequence >= 1);
      REQUIRE(r.sequence <= 12);
      CHECK(r.frames == std::vector<std::string>{payload(r.sequence - 1)});
    }
    auto seq = append_one(*spool, "after damage");
    REQUIRE(seq);
    CHECK(*seq > previous);
  }
}

TEST_CASE("max_bytes bounds live record bytes; done records free room") {
  TempDir tmp;
  auto o = options_for(tmp.path());
  o.max_bytes = 3 * record_size(100);
  Spool spool(o);
  for (std::uint64_t i = 0; i < 3; ++i) REQUIRE(append_one(spool, payload(i)));
  CHECK_FALSE(append_one(spool, payload(3)));
  CHECK(spool.last_error().find("spool full") != std::string::npos);
  CHECK(spool.stats().write_errors == 1);
  CHECK(spool.stats().full_refusals == 1);
  CHECK(spool.stats().live_bytes == 3 * record_size(100));
  spool.mark_done(1);
  auto seq = append_one(spool, payload(3));
  REQUIRE(seq);
  CHECK(*seq == 4);  // a refused append consumes no sequence

  // Larger than max_record_bytes: refused with its own reason.
  auto small = options_for(tmp.path());
  small.route = "other";
  small.max_record_bytes = 64;
  Spool other(small);
  CHECK_FALSE(append_one(other, std::string(100, 'x')));
  CHECK(other.last_error().find("max_record_bytes") != std::string::npos);
}

TEST_CASE("the lock keeps a second spool out of the same directory") {
  TempDir tmp;
  auto first = std::make_unique<Spool>(options_for(tmp.path()));
  try {
    Spool second(options_for(tmp.path()));
    FAIL("second spool opened");
  } catch (const SpoolError& e) {
    CHECK(std::string(e.what()).find("locked") != std::string::npos);
    CHECK(std::string(e.what()).find(tmp.path() + "/requests") != std::string::npos);
  }
  // Another route in the same dir is fine; after the first closes, the dir is free again.
  auto o = options_for(tmp.path());
  o.route = "results";
  CHECK_NOTHROW(Spool{o});
  first.reset();
  CHECK_NOTHROW(Spool{options_for(tmp.path())});
}

TEST_CASE("an unusable directory is a SpoolError naming the path and the reason") {
  TempDir tmp;
  const std::string file = tmp.path() + "/plain-file";
  std::ofstream(file) << "x";
  try {
    Spool spool(options_for(file + "/spool"));
    FAIL("opened a spool below a regular file");
  } catch (const SpoolError& e) {
    const std::string what = e.what();
    CHECK(what.find(file) != std::string::npos);
    CHECK(what.find("Not a directory") != std::string::npos);
  }

  const std::string ro = tmp.path() + "/ro";
  if (::geteuid() == 0) {
    if (!tmp.mount_tmpfs("ro", "ro,size=64k")) {
      MESSAGE("skipped the read-only part: cannot mount a read-only tmpfs");
      return;
    }
  } else {
    fs::create_directories(ro);
    fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec);
  }
  try {
    Spool spool(options_for(ro));
    FAIL("opened a spool on a read-only directory");
  } catch (const SpoolError& e) {
    const std::string what = e.what();
    MESSAGE("read-only spool dir: " << what);
    CHECK(what.find(ro) != std::string::npos);
    const bool reason = what.find("Read-only file system") != std::string::npos ||
                        what.find("Permission denied") != std::string::npos;
    CHECK(reason);
  }
}

TEST_CASE("disk full: appends are refused and counted, the spool stays valid and recovers") {
  TempDir tmp;
  if (!tmp.mount_tmpfs("small", "size=256k")) {
    MESSAGE("SKIPPED disk-full test: cannot mount a size-limited tmpfs (needs root)");
    return;
  }
  const std::string dir = tmp.path() + "/small";
  auto o = options_for(dir);
  o.segment_bytes = 32 * 1024;
  o.fsync = FsyncPolicy::kAlways;
  const std::size_t body = 1000;
  std::uint64_t last_ok = 0;
  std::uint64_t accepted = 0;
  {
    Spool spool(o);
    bool refused = false;
    for (std::uint64_t i = 0; i < 2000 && !refused; ++i) {
      auto seq = append_one(spool, payload(i, body));
      if (seq) {
        last_ok = *seq;
        ++accepted;
      } else {
        refused = true;
      }
    }
    REQUIRE(refused);
    MESSAGE("256 KiB tmpfs took " << accepted << " records of " << body
                                  << " B; refusal: " << spool.last_error());
    CHECK(spool.last_error().find("No space left on device") != std::string::npos);
    CHECK(spool.stats().write_errors == 1);
    CHECK(spool.stats().full_refusals == 0);
    // Still refused, still counted, never a crash.
    CHECK_FALSE(append_one(spool, payload(0, body)));
    CHECK(spool.stats().write_errors == 2);
    CHECK(spool.stats().live_messages == accepted);

    // Forwarding everything frees whole segments: appends succeed again.
    spool.mark_done(last_ok);
    CHECK(segments(dir + "/requests").size() == 1);
    for (std::uint64_t i = 0; i < 50; ++i) {
      auto seq = append_one(spool, payload(1000 + i, body));
      REQUIRE(seq);
      CHECK(*seq > last_ok);
    }
  }
  // Valid after all that: exactly the 50 new records, no corruption.
  Spool spool(o);
  CHECK(spool.stats().corrupt_records == 0);
  const auto got = replay_all(spool);
  REQUIRE(got.size() == 50);
  CHECK(got.front().sequence == last_ok + 1);
  CHECK(got.front().frames.at(0) == payload(1000, body));
  CHECK(got.back().frames.at(0) == payload(1049, body));
}

TEST_CASE("disk full in the middle of a record: cut back, refused, recovers once space returns") {
  TempDir tmp;
  if (!tmp.mount_tmpfs("small", "size=256k")) {
    MESSAGE("SKIPPED disk-full test: cannot mount a size-limited tmpfs (needs root)");
    return;
  }
  const std::string dir = tmp.path() + "/small";
  auto o = options_for(dir);
  o.segment_bytes = 1 << 20;  // one segment: the refusal comes from a record write
  std::uint64_t accepted = 0;
  {
    Spool spool(o);
    REQUIRE(append_one(spool, payload(0, 1000)));
    ++accepted;
    {
      std::ofstream filler(dir + "/filler", std::ios::binary);
      const std::string chunk(4096, 'f');
      for (int i = 0; i < 80 && filler.good(); ++i) filler << chunk << std::flush;
    }
    bool refused = false;
    for (std::uint64_t i = 1; i < 400 && !refused; ++i) {
      refused = !append_one(spool, payload(i, 3000));
      if (!refused) ++accepted;
    }
    REQUIRE(refused);
    CHECK(spool.last_error().find("spool write to") != std::string::npos);
    CHECK(spool.last_error().find("No space left on device") != std::string::npos);
    fs::remove(dir + "/filler");
    REQUIRE(append_one(spool, "after space returned"));
    ++accepted;
    CHECK(spool.sync());
  }
  Spool spool(o);
  CHECK(spool.stats().corrupt_records == 0);
  const auto got = replay_all(spool);
  REQUIRE(got.size() == accepted);
  CHECK(got.back().frames.at(0) == "after space returned");
}

TEST_CASE("disk full with one segment: once all is done, the active segment is cut back") {
  TempDir tmp;
  if (!tmp.mount_tmpfs("small", "size=256k")) {
    MESSAGE("SKIPPED disk-full test: cannot mount a size-limited tmpfs (needs root)");
    return;
  }
  const std::string dir = tmp.path() + "/small";
  auto o = options_for(dir);
  o.fsync = FsyncPolicy::kAlways;  // segment_bytes stays far above the filesystem's size
  std::uint64_t last_ok = 0;
  {
    Spool spool(o);
    for (std::uint64_t i = 0; i < 2000; ++i) {
      auto seq = append_one(spool, payload(i, 1000));
      if (!seq) break;
      last_ok = *seq;
    }
    REQUIRE(last_ok > 100);
    REQUIRE(segments(dir + "/requests").size() == 1);
    CHECK_FALSE(append_one(spool, payload(0, 1000)));  // still full: something is live
    spool.mark_done(last_ok - 1);
    CHECK_FALSE(append_one(spool, payload(0, 1000)));  // one message still live
    CHECK(spool.stats().live_messages == 1);
    spool.mark_done(last_ok);
    const auto before = spool.stats().bytes_on_disk;
    for (std::uint64_t i = 0; i < 20; ++i) {
      auto seq = append_one(spool, payload(5000 + i, 1000));
      REQUIRE(seq);
      CHECK(*seq == last_ok + 1 + i);
    }
    CHECK(spool.stats().bytes_on_disk < before / 4);
    CHECK(segments(dir + "/requests").size() == 1);
  }
  Spool spool(o);
  CHECK(spool.stats().corrupt_records == 0);
  const auto got = replay_all(spool);
  REQUIRE(got.size() == 20);
  CHECK(got.front().sequence == last_ok + 1);
  CHECK(got.front().frames.at(0) == payload(5000, 1000));
  CHECK(got.back().frames.at(0) == payload(5019, 1000));
}

TEST_CASE("tick fsyncs on the interval; kAlways appends are synced") {
  TempDir tmp;
  auto o = options_for(tmp.path());
  o.fsync_interval = 100ms;
  Spool spool(o);
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  REQUIRE(append_one(spool, "a"));
  spool.tick(t0);  // first tick: due
  spool.mark_done(1);
  spool.tick(t0 + 50ms);  // writes the done record; fsync not due yet
  spool.tick(t0 + 150ms);
  CHECK(spool.stats().write_errors == 0);
  CHECK(spool.sync());
}

TEST_CASE("group commit: nothing is synced before commit(), one fdatasync covers the batch") {
  TempDir tmp;
  auto o = options_for(tmp.path());
  o.fsync = FsyncPolicy::kAlways;
  std::vector<std::uint64_t> sequences;
  {
    Spool spool(o);
    const auto fsyncs = spool.stats().fsyncs;
    for (std::uint64_t i = 0; i < 100; ++i) {
      const auto sequence = append_uncommitted_one(spool, payload(i));
      REQUIRE(sequence);
      sequences.push_back(*sequence);
    }
    CHECK(spool.synced_sequence() == 0);
    CHECK(spool.uncommitted_for_test() == 100);
    CHECK(spool.stats().live_messages == 100);
    CHECK(spool.stats().fsyncs == fsyncs);
    // The timer's fsync leaves uncommitted records to commit().
    spool.tick(std::chrono::steady_clock::now() + 1h);
    CHECK(spool.stats().fsyncs == fsyncs);
    CHECK(spool.synced_sequence() == 0);

    CHECK(spool.commit());
    CHECK(spool.synced_sequence() == sequences.back());
    CHECK(spool.uncommitted_for_test() == 0);
    CHECK(spool.stats().fsyncs == fsyncs + 1);
    CHECK(spool.commit());  // nothing written since: no fsync
    CHECK(spool.stats().fsyncs == fsyncs + 1);

    // A batch of one record, committed.
    const auto single = append_one(spool, "single");
    REQUIRE(single);
    CHECK(spool.synced_sequence() == *single);
    CHECK(spool.stats().fsyncs == fsyncs + 2);
    sequences.push_back(*single);
    CHECK(spool.stats().write_errors == 0);
  }
  Spool spool(o);
  CHECK(replayed_sequences(spool) == sequences);
  CHECK(spool.synced_sequence() == sequences.back());  // found at start: synced when opened
}

TEST_CASE("group commit with fsync interval: commit() adds no fsync, tick() syncs") {
  TempDir tmp;
  auto o = options_for(tmp.path());
  o.fsync_interval = 100ms;
  Spool spool(o);
  const auto fsyncs = spool.stats().fsyncs;
  for (std::uint64_t i = 0; i < 10; ++i) REQUIRE(append_uncommitted_one(spool, payload(i)));
  CHECK(spool.uncommitted_for_test() == 0);
  CHECK(spool.commit());
  CHECK(spool.stats().fsyncs == fsyncs);
  CHECK(spool.synced_sequence() == 0);
  spool.tick(std::chrono::steady_clock::now() + 1h);
  CHECK(spool.stats().fsyncs == fsyncs + 1);
  CHECK(spool.synced_sequence() == 10);
}

TEST_CASE("group commit: a failed fsync at commit takes the whole batch back, never replayed") {
  TempDir tmp;
  const std::string file = tmp.path() + "/requests/00000000000000000001.seg";
  FailingSync sync;
  auto o = options_for(tmp.path());
  o.fsync = FsyncPolicy::kAlways;
  o.fdatasync = sync.hook();
  {
    Spool spool(o);
    for (std::uint64_t i = 0; i < 3; ++i) REQUIRE(append_uncommitted_one(spool, payload(i)));
    REQUIRE(spool.commit());
    spool.mark_done(1);  // its done record goes out with the next batch, and is cut with it
    const auto size_before = fs::file_size(file);
    const auto disk_before = spool.stats().bytes_on_disk;
    for (std::uint64_t i = 3; i < 7; ++i) REQUIRE(append_uncommitted_one(spool, payload(i)));
    CHECK(fs::file_size(file) > size_before);

    sync.failing = true;
    const int calls = sync.calls;
    CHECK_FALSE(spool.commit());
    CHECK(sync.calls == calls + 1);  // not retried
    CHECK(spool.last_error().find("fsync") != std::string::npos);
    CHECK(spool.last_error().find("Input/output error") != std::string::npos);
    CHECK(spool.synced_sequence() == 3);  // the caller refuses every message above this
    CHECK(spool.uncommitted_for_test() == 0);
    CHECK(spool.stats().write_errors == 1);
    CHECK(spool.stats().live_messages == 2);  // 2 and 3
    CHECK(spool.stats().live_bytes == 2 * record_size(100));
    CHECK(fs::file_size(file) == size_before);
    CHECK(spool.stats().bytes_on_disk == disk_before);

    // The failure was reported: the next batch is written, with new sequences, and commits.
    sync.failing = false;
    const auto next = append_uncommitted_one(spool, payload(7));
    REQUIRE(next);
    CHECK(*next == 8);
    REQUIRE(append_uncommitted_one(spool, payload(8)));
    CHECK(spool.commit());
    CHECK(spool.synced_sequence() == 9);
  }
  Spool spool(o);
  CHECK(spool.stats().corrupt_records == 0);
  const auto got = replay_all(spool);
  std::vector<std::uint64_t> sequences;
  for (const auto& r : got) sequences.push_back(r.sequence);
  CHECK(sequences == std::vector<std::uint64_t>{2, 3, 8, 9});  // 1 done, 4–7 taken back
  REQUIRE(got.size() == 4);
  CHECK(got[2].frames.at(0) == payload(7));
}

TEST_CASE("group commit: a failed fsync at a segment roll refuses the rest of the batch") {
  TempDir tmp;
  const std::string route_dir = tmp.path() + "/requests";
  FailingSync sync;
  auto o = options_for(tmp.path());
  o.fsync = FsyncPolicy::kAlways;
  o.fdatasync = sync.hook();
  o.segment_bytes = kHeader + 3 * record_size(100);  // three records per segment
  {
    Spool spool(o);
    REQUIRE(append_uncommitted_one(spool, payload(0)));
    REQUIRE(append_uncommitted_one(spool, payload(1)));
    REQUIRE(spool.commit());
    REQUIRE(append_uncommitted_one(spool, payload(2)));  // fills the first segment
    sync.failing = true;
    // The roll must make the first segment durable first. That fails: the uncommitted record
    // (sequence 3) is taken back and this message refused.
    CHECK_FALSE(append_uncommitted_one(spool, payload(3)));
    CHECK(spool.last_error().find("fsync") != std::string::npos);
    CHECK(spool.synced_sequence() == 2);
    CHECK(spool.stats().live_messages == 2);
    sync.failing = false;
    // Until commit() has reported the failure, nothing more is written.
    CHECK_FALSE(append_uncommitted_one(spool, payload(4)));
    CHECK(spool.last_error().find("an fsync in this batch failed") != std::string::npos);
    CHECK(spool.stats().write_errors == 3);  // the fsync and the two refused appends
    CHECK(segments(route_dir).size() == 1);
    CHECK_FALSE(spool.commit());
    CHECK(spool.commit());  // reported once

    for (std::uint64_t i = 5; i < 8; ++i) REQUIRE(append_uncommitted_one(spool, payload(i)));
    CHECK(spool.commit());
    CHECK(spool.stats().write_errors == 3);
  }
  Spool spool(o);
  CHECK(spool.stats().corrupt_records == 0);
  const auto got = replay_all(spool);
  std::vector<std::uint64_t> sequences;
  for (const auto& r : got) sequences.push_back(r.sequence);
  // 3 was taken back; payloads 3 and 4 were refused before they got a sequence.
  CHECK(sequences == std::vector<std::uint64_t>{1, 2, 4, 5, 6});
  REQUIRE(got.size() == 5);
  CHECK(got[2].frames.at(0) == payload(5));
}

TEST_CASE("group commit: messages of a failed batch marked done meanwhile leave no live bytes") {
  TempDir tmp;
  FailingSync sync;
  auto o = options_for(tmp.path());
  o.fsync = FsyncPolicy::kAlways;
  o.fdatasync = sync.hook();
  {
    Spool spool(o);
    for (std::uint64_t i = 0; i < 3; ++i) REQUIRE(append_uncommitted_one(spool, payload(i)));
    REQUIRE(spool.commit());
    for (std::uint64_t i = 3; i < 6; ++i) REQUIRE(append_uncommitted_one(spool, payload(i)));
    spool.mark_done(5);  // drop-oldest evicted up to an uncommitted message
    sync.failing = true;
    CHECK_FALSE(spool.commit());
    sync.failing = false;
    CHECK(spool.stats().live_messages == 0);
    CHECK(spool.stats().live_bytes == 0);
    CHECK(spool.done_sequence_for_test() == 5);
    REQUIRE(append_uncommitted_one(spool, payload(6)));
    CHECK(spool.commit());
  }
  Spool spool(o);
  CHECK(replayed_sequences(spool) == std::vector<std::uint64_t>{7});
}

TEST_CASE("a batch of one with a failed fsync: the record is taken back and refused") {
  TempDir tmp;
  const std::string file = tmp.path() + "/requests/00000000000000000001.seg";
  FailingSync sync;
  auto o = options_for(tmp.path());
  o.fsync = FsyncPolicy::kAlways;
  o.fdatasync = sync.hook();
  {
    Spool spool(o);
    REQUIRE(append_one(spool, payload(0)));
    const auto size = fs::file_size(file);
    sync.failing = true;
    CHECK_FALSE(append_one(spool, payload(1)));
    CHECK(spool.stats().write_errors == 1);
    CHECK(fs::file_size(file) == size);
    sync.failing = false;
    const auto next = append_one(spool, payload(2));
    REQUIRE(next);
    CHECK(*next == 3);
  }
  Spool spool(o);
  CHECK(replayed_sequences(spool) == std::vector<std::uint64_t>{1, 3});
}

TEST_CASE("group commit on a full disk: what was written before the refusal commits") {
  TempDir tmp;
  if (!tmp.mount_tmpfs("small", "size=256k")) {
    MESSAGE("SKIPPED disk-full test: cannot mount a size-limited tmpfs (needs root)");
    return;
  }
  const std::string dir = tmp.path() + "/small";
  auto o = options_for(dir);
  o.fsync = FsyncPolicy::kAlways;
  o.segment_bytes = 1 << 20;  // one segment: the refusals come from record writes
  std::vector<std::uint64_t> accepted;
  {
    Spool spool(o);
    REQUIRE(append_one(spool, payload(0, 1000)));
    accepted.push_back(1);
    // One batch that runs into the full disk, and goes on being refused after it.
    std::size_t refused = 0;
    for (std::uint64_t i = 1; i < 200; ++i) {
      const auto sequence = append_uncommitted_one(spool, payload(i, 3000));
      if (sequence) {
        REQUIRE(refused == 0);  // same-sized records: once one does not fit, none does
        accepted.push_back(*sequence);
      } else {
        ++refused;
      }
    }
    REQUIRE(refused > 0);
    REQUIRE(accepted.size() > 10);
    CHECK(spool.last_error().find("No space left on device") != std::string::npos);
    CHECK(spool.stats().write_errors == refused);
    CHECK(spool.synced_sequence() == 1);
    CHECK(spool.commit());
    CHECK(spool.synced_sequence() == accepted.back());
    CHECK(spool.stats().live_messages == accepted.size());
  }
  Spool spool(o);
  CHECK(spool.stats().corrupt_records == 0);
  CHECK(replayed_sequences(spool) == accepted);
}

TEST_CASE("throughput: fsync always vs interval (10,000 x 500 B)") {
  TempDir tmp;
  const std::string body(500, 'p');
  const std::string_view frames[] = {body};
  // 0: one committed record at a time; 512: group commit of the route's read batch.
  for (const auto& [policy, batch] :
       {std::pair{FsyncPolicy::kInterval, 0}, std::pair{FsyncPolicy::kAlways, 0},
        std::pair{FsyncPolicy::kAlways, 512}}) {
    auto o = options_for(tmp.path());
    o.route = policy == FsyncPolicy::kAlways ? "always" : "interval";
    if (batch > 0) o.route += "-commit-per-" + std::to_string(batch);
    o.fsync = policy;
    Spool spool(o);
    constexpr int kCount = 10000;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kCount; ++i) {
      const auto frames_span = std::span<const std::string_view>(frames);
      REQUIRE((batch == 0 ? append_committed(spool, frames_span)
                          : spool.append_uncommitted(frames_span)));
      if (batch > 0 && (i + 1) % batch == 0) REQUIRE(spool.commit());
      if (i % 64 == 0) spool.tick(std::chrono::steady_clock::now());
    }
    REQUIRE(spool.commit());
    REQUIRE(spool.sync());
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    MESSAGE("spool fsync=" << o.route << ": " << kCount << " x 500 B in " << took.count()
                           << " s = " << static_cast<long>(kCount / took.count())
                           << " msgs/s (filesystem of " << tmp.path() << ")");
  }
}
