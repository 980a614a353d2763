// Spool record codec: round trips, torn tails at every offset, every flipped bit, absurd
// lengths.
#include "tidepool/protocol/spool_record.h"

#include <doctest/doctest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tp = tidepool::protocol;
using tp::DecodeStatus;
using tp::RecordKind;

namespace {

std::span<const std::byte> bytes(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

std::string_view text(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

void put_le32(std::string& s, std::size_t at, std::uint32_t v) {
  for (std::size_t i = 0; i < 4; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xFFu);
}

// Recomputes a record's CRC after a test has edited it on purpose.
void reseal(std::string& s, std::size_t start = 0) {
  std::uint32_t crc = tp::crc32c(s.data() + start, 4);
  std::uint32_t length = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    length |= static_cast<std::uint32_t>(static_cast<unsigned char>(s[start + i])) << (8 * i);
  }
  crc = tp::crc32c(s.data() + start + 8, length, crc);
  put_le32(s, start + 4, crc);
}

const std::array<std::string_view, 3> kFrames = {"routing-id", "", "((request_id . \"x\"))"};

}  // namespace

TEST_CASE("segment header round trip and validation") {
  std::string h;
  tp::encode_header(h, {tp::kSpoolFormatVersion, 0x0102030405060708ull});
  REQUIRE(h.size() == tp::kSegmentHeaderSize);
  CHECK(h.substr(0, 8) == std::string_view("TPSPOOL\0", 8));
  auto r = tp::decode_header(bytes(h));
  CHECK(r.status == DecodeStatus::kOk);
  CHECK(r.header.version == tp::kSpoolFormatVersion);
  CHECK(r.header.first_sequence == 0x0102030405060708ull);

  std::vector<std::byte> hv;
  tp::encode_header(hv, {tp::kSpoolFormatVersion, 0x0102030405060708ull});
  CHECK(text(hv) == h);

  for (std::size_t n = 0; n < h.size(); ++n) {
    CHECK(tp::decode_header(bytes(h).first(n)).status == DecodeStatus::kIncomplete);
  }
  for (std::size_t i = 0; i < h.size(); ++i) {
    std::string bad = h;
    bad[i] = static_cast<char>(bad[i] ^ 0x10);
    const auto br = tp::decode_header(bytes(bad));
    CHECK(br.status == DecodeStatus::kCorrupt);
    CHECK_FALSE(br.error.empty());
  }
  std::string v2;
  tp::encode_header(v2, {2, 0});
  const auto r2 = tp::decode_header(bytes(v2));
  CHECK(r2.status == DecodeStatus::kCorrupt);
  CHECK(r2.error == "unsupported spool format version");
}

TEST_CASE("message and done records round trip") {
  std::string buf;
  tp::encode_message_record(buf, 42, kFrames);
  const std::size_t first = buf.size();
  CHECK(first == tp::message_record_overhead(3) + 10 + 0 + kFrames[2].size());
  tp::encode_done_record(buf, 41);
  tp::encode_message_record(buf, 43, std::span<const std::string_view>{});

  auto r = tp::decode_record(bytes(buf));
  REQUIRE(r.status == DecodeStatus::kOk);
  CHECK(r.consumed == first);
  CHECK(r.record.kind == RecordKind::kMessage);
  CHECK(r.record.sequence == 42);
  REQUIRE(r.record.frames.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) CHECK(text(r.record.frames[i]) == kFrames[i]);
  // Frames are views into the buffer.
  CHECK(r.record.frames[0].data() == bytes(buf).data() + tp::kRecordHeaderSize + 8);

  auto rest = bytes(buf).subspan(r.consumed);
  auto d = tp::decode_record(rest);
  REQUIRE(d.status == DecodeStatus::kOk);
  CHECK(d.consumed == tp::kRecordHeaderSize);
  CHECK(d.record.kind == RecordKind::kDone);
  CHECK(d.record.sequence == 41);
  CHECK(d.record.frames.empty());

  rest = rest.subspan(d.consumed);
  auto e = tp::decode_record(rest);
  REQUIRE(e.status == DecodeStatus::kOk);
  CHECK(e.record.sequence == 43);
  CHECK(e.record.frames.empty());
  CHECK(e.consumed == rest.size());
  CHECK(tp::decode_record(rest.subspan(e.consumed)).status == DecodeStatus::kIncomplete);
}

TEST_CASE("string, vector and generic encoders produce the same bytes") {
  std::string s;
  tp::encode_message_record(s, 7, kFrames);
  std::vector<std::byte> v;
  tp::encode_message_record(v, 7, kFrames);
  CHECK(text(v) == s);
  std::string g;
  const std::vector<std::string> owned(kFrames.begin(), kFrames.end());
  tp::encode_message_record_of(g, 7, owned);
  CHECK(g == s);
  std::string ds;
  std::vector<std::byte> dv;
  tp::encode_done_record(ds, 9);
  tp::encode_done_record(dv, 9);
  CHECK(text(dv) == ds);
}

TEST_CASE("large and binary frames") {
  std::string big;
  big.resize(9'000'000);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31);
  const std::array<std::string_view, 2> frames = {big, std::string_view("\0\xFF", 2)};
  std::string buf;
  tp::encode_message_record(buf, UINT64_MAX, frames);
  auto r = tp::decode_record(bytes(buf), 16u << 20);
  REQUIRE(r.status == DecodeStatus::kOk);
  CHECK(r.record.sequence == UINT64_MAX);
  REQUIRE(r.record.frames.size() == 2);
  CHECK(text(r.record.frames[0]) == big);
  CHECK(text(r.record.frames[1]) == frames[1]);
  // The same record against a smaller limit is refused, however many bytes are there.
  auto small = tp::decode_record(bytes(buf), 1u << 20);
  CHECK(small.status == DecodeStatus::kCorrupt);
  CHECK(tp::decode_record(bytes(buf).first(100), 1u << 20).status == DecodeStatus::kCorrupt);
}

TEST_CASE("torn tail at every byte offset is incomplete, never ok or a crash") {
  std::string buf;
  tp::encode_message_record(buf, 5, kFrames);
  for (std::size_t n = 0; n < buf.size(); ++n) {
    const auto r = tp::decode_record(bytes(buf).first(n));
    CHECK(r.status == DecodeStatus::kIncomplete);
    CHECK(r.consumed == 0);
  }
  std::string done;
  tp::encode_done_record(done, 5);
  for (std::size_t n = 0; n < done.size(); ++n) {
    CHECK(tp::decode_record(bytes(done).first(n)).status == DecodeStatus::kIncomplete);
  }
  // A record followed by a torn one: the first still decodes.
  std::string two = buf + buf.substr(0, buf.size() / 2);
  auto r = tp::decode_record(bytes(two));
  REQUIRE(r.status == DecodeStatus::kOk);
  CHECK(tp::decode_record(bytes(two).subspan(r.consumed)).status == DecodeStatus::kIncomplete);
}

TEST_CASE("every flipped bit is detected") {
  std::string buf;
  tp::encode_message_record(buf, 5, kFrames);
  for (std::size_t i = 0; i < buf.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = buf;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      const auto r = tp::decode_record(bytes(bad));
      // A damaged length may also look like a longer record still being written.
      if (i < 4) {
        CHECK(r.status != DecodeStatus::kOk);
      } else {
        CHECK(r.status == DecodeStatus::kCorrupt);
      }
    }
  }
}

TEST_CASE("absurd or inconsistent lengths are rejected") {
  std::string buf;
  tp::encode_message_record(buf, 5, kFrames);

  SUBCASE("length over the maximum, even when the buffer is short") {
    std::string bad = buf;
    put_le32(bad, 0, 0xFFFFFFFFu);
    const auto r = tp::decode_record(bytes(bad));
    CHECK(r.status == DecodeStatus::kCorrupt);
    CHECK(r.error == "record length over maximum");
    CHECK(tp::decode_record(bytes(bad).first(4)).status == DecodeStatus::kCorrupt);
  }
  SUBCASE("length too small") {
    for (std::uint32_t len = 0; len < 9; ++len) {
      std::string bad = buf;
      put_le32(bad, 0, len);
      CHECK(tp::decode_record(bytes(bad)).status == DecodeStatus::kCorrupt);
    }
  }
  SUBCASE("frame count larger than the payload can hold, with a valid CRC") {
    std::string bad = buf;
    put_le32(bad, tp::kRecordHeaderSize, 0x40000000u);
    reseal(bad);
    const auto r = tp::decode_record(bytes(bad));
    CHECK(r.status == DecodeStatus::kCorrupt);
    CHECK(r.error == "frame count too large");
  }
  SUBCASE("frame size overruns the record, with a valid CRC") {
    std::string bad = buf;
    put_le32(bad, tp::kRecordHeaderSize + 4, 0xFFFFFFF0u);
    reseal(bad);
    CHECK(tp::decode_record(bytes(bad)).error == "frame overruns record");
  }
  SUBCASE("fewer frames than the bytes hold, with a valid CRC") {
    std::string bad = buf;
    put_le32(bad, tp::kRecordHeaderSize, 2);
    reseal(bad);
    CHECK(tp::decode_record(bytes(bad)).error == "trailing bytes in message record");
  }
  SUBCASE("unknown kind, with a valid CRC") {
    std::string bad = buf;
    bad[8] = 3;
    reseal(bad);
    CHECK(tp::decode_record(bytes(bad)).error == "unknown record kind");
  }
  SUBCASE("done marker with a payload, with a valid CRC") {
    std::string bad = buf;
    bad[8] = static_cast<char>(RecordKind::kDone);
    reseal(bad);
    CHECK(tp::decode_record(bytes(bad)).error == "done record with a payload");
  }
  SUBCASE("message without a frame count, with a valid CRC") {
    std::string bad;
    tp::encode_done_record(bad, 1);
    bad[8] = static_cast<char>(RecordKind::kMessage);
    reseal(bad);
    CHECK(tp::decode_record(bytes(bad)).error == "message record without frame count");
  }
  SUBCASE("zero-filled tail (preallocated file)") {
    const std::string zeros(64, '\0');
    CHECK(tp::decode_record(bytes(zeros)).status == DecodeStatus::kCorrupt);
  }
}
