// libFuzzer target: spool segment header and record decoder (tidepool/protocol/spool_record.h).
//
// Input: one flags byte, then the bytes of a segment. Flag bit 0 recomputes the CRC of the
// first record before decoding, so mutations reach the payload parser instead of all
// dying at the CRC check.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "tidepool/protocol/crc32c.h"
#include "tidepool/protocol/spool_record.h"

namespace tp = tidepool::protocol;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

constexpr std::size_t kMaxRecord = std::size_t{1} << 20;

std::uint32_t load_le32(const std::byte* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | std::to_integer<std::uint32_t>(p[i]);
  return v;
}

void reseal_first(std::vector<std::byte>& buf) {
  if (buf.size() < 8) return;
  const std::size_t length = load_le32(buf.data());
  if (length > buf.size() - 8) return;
  std::uint32_t crc = tp::crc32c(buf.data(), 4);
  crc = tp::crc32c(buf.data() + 8, length, crc);
  for (std::size_t i = 0; i < 4; ++i) buf[4 + i] = static_cast<std::byte>(crc >> (8 * i));
}

// A decoded record must re-encode to exactly the bytes it was decoded from.
void check_reencodes(const tp::DecodeResult& r, std::span<const std::byte> from) {
  std::vector<std::byte> again;
  if (r.record.kind == tp::RecordKind::kDone) {
    check(r.record.frames.empty());
    tp::encode_done_record(again, r.record.sequence);
  } else {
    tp::encode_message_record_of(again, r.record.sequence, r.record.frames);
  }
  check(again.size() == r.consumed);
  check(std::equal(again.begin(), again.end(), from.begin()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t flags = data[0];
  const auto* first = reinterpret_cast<const std::byte*>(data + 1);
  std::vector<std::byte> buf(first, first + (size - 1));
  if (flags & 1u) reseal_first(buf);

  std::span<const std::byte> rest(buf);
  const auto header = tp::decode_header(rest);
  if (header.status == tp::DecodeStatus::kOk) {
    std::vector<std::byte> again;
    tp::encode_header(again, header.header);
    check(std::equal(again.begin(), again.end(), rest.begin()));
    rest = rest.subspan(tp::kSegmentHeaderSize);
  }
  // Replay the way the spool does: records until the first incomplete or corrupt one.
  while (!rest.empty()) {
    const auto r = tp::decode_record(rest, kMaxRecord);
    if (r.status != tp::DecodeStatus::kOk) {
      check(r.consumed == 0);
      check(!r.error.empty());
      break;
    }
    check(r.consumed >= tp::kRecordHeaderSize && r.consumed <= rest.size());
    check(r.consumed <= kMaxRecord);
    for (const auto& f : r.record.frames) {
      check(f.data() >= rest.data() && f.data() + f.size() <= rest.data() + r.consumed);
    }
    check_reencodes(r, rest);
    // Any strict prefix of a good record is a torn tail.
    const std::size_t cut = static_cast<std::size_t>(flags >> 1) % r.consumed;
    check(tp::decode_record(rest.first(cut), kMaxRecord).status == tp::DecodeStatus::kIncomplete);
    rest = rest.subspan(r.consumed);
  }

  // Round trip: the input split into frames at 0xFF bytes.
  std::vector<std::string_view> frames;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  std::size_t start = 0;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == '\xFF') {
      frames.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  std::string enc;
  tp::encode_message_record(enc, flags, frames);
  const auto rt = tp::decode_record(std::as_bytes(std::span<const char>(enc)), enc.size());
  check(rt.status == tp::DecodeStatus::kOk && rt.consumed == enc.size());
  check(rt.record.sequence == flags && rt.record.frames.size() == frames.size());
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const auto& f = rt.record.frames[i];
    check(std::string_view(reinterpret_cast<const char*>(f.data()), f.size()) == frames[i]);
  }
  return 0;
}
