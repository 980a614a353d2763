// Spool segment codec (see spool_record.h): encoding and decoding segment headers, message
// records and done records, with their CRCs checked.
#include "tidepool/protocol/spool_record.h"

#include <cstring>

namespace tidepool::protocol {
namespace {

std::uint32_t load_le32(const std::byte* p) noexcept {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | std::to_integer<std::uint32_t>(p[i]);
  return v;
}

std::uint64_t load_le64(const std::byte* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | std::to_integer<std::uint64_t>(p[i]);
  return v;
}

template <typename Out>
void encode_header_to(Out& out, const SegmentHeader& header) {
  const std::size_t start = out.size();
  spool_detail::append_raw(out, kSpoolMagic, sizeof(kSpoolMagic));
  spool_detail::append_le(out, header.version);
  spool_detail::append_le(out, header.first_sequence);
  const auto* base = reinterpret_cast<const unsigned char*>(out.data()) + start;
  spool_detail::append_le(out, crc32c(base, kSegmentHeaderSize - 4));
}

template <typename Out>
void encode_done_to(Out& out, std::uint64_t sequence) {
  const std::size_t start = out.size();
  spool_detail::append_le(out, std::uint32_t{1 + 8});
  spool_detail::append_le(out, std::uint32_t{0});  // CRC, sealed below
  spool_detail::append_le(out, static_cast<std::uint8_t>(RecordKind::kDone));
  spool_detail::append_le(out, sequence);
  spool_detail::seal_record(out, start);
}

template <typename Out>
void encode_message_to(Out& out, std::uint64_t sequence, std::span<const std::string_view> frames) {
  encode_message_record_of(out, sequence, frames);
}

DecodeResult fail(DecodeStatus status, std::string_view error) {
  DecodeResult r;
  r.status = status;
  r.error = error;
  return r;
}

}  // namespace

void encode_header(std::string& out, const SegmentHeader& header) { encode_header_to(out, header); }
void encode_header(std::vector<std::byte>& out, const SegmentHeader& header) {
  encode_header_to(out, header);
}

HeaderResult decode_header(std::span<const std::byte> buf) noexcept {
  HeaderResult r;
  if (buf.size() < kSegmentHeaderSize) {
    r.status = DecodeStatus::kIncomplete;
    r.error = "segment header truncated";
    return r;
  }
  if (std::memcmp(buf.data(), kSpoolMagic, sizeof(kSpoolMagic)) != 0) {
    r.error = "not a tidepool spool segment (bad magic)";
    return r;
  }
  if (crc32c(buf.data(), kSegmentHeaderSize - 4) != load_le32(buf.data() + 20)) {
    r.error = "segment header CRC mismatch";
    return r;
  }
  r.header.version = load_le32(buf.data() + 8);
  r.header.first_sequence = load_le64(buf.data() + 12);
  if (r.header.version != kSpoolFormatVersion) {
    r.error = "unsupported spool format version";
    return r;
  }
  r.status = DecodeStatus::kOk;
  return r;
}

void encode_message_record(std::string& out, std::uint64_t sequence,
                           std::span<const std::string_view> frames) {
  encode_message_to(out, sequence, frames);
}
void encode_message_record(std::vector<std::byte>& out, std::uint64_t sequence,
                           std::span<const std::string_view> frames) {
  encode_message_to(out, sequence, frames);
}

void encode_done_record(std::string& out, std::uint64_t sequence) { encode_done_to(out, sequence); }
void encode_done_record(std::vector<std::byte>& out, std::uint64_t sequence) {
  encode_done_to(out, sequence);
}

DecodeResult decode_record(std::span<const std::byte> buf, std::size_t max_record_bytes) {
  if (buf.size() < 4) return fail(DecodeStatus::kIncomplete, "record length truncated");
  const std::size_t length = load_le32(buf.data());
  if (length < 1 + 8) return fail(DecodeStatus::kCorrupt, "record length too small");
  const std::size_t total = 8 + length;
  if (total > max_record_bytes) return fail(DecodeStatus::kCorrupt, "record length over maximum");
  if (buf.size() < total) return fail(DecodeStatus::kIncomplete, "record truncated");

  std::uint32_t crc = crc32c(buf.data(), 4);
  crc = crc32c(buf.data() + 8, length, crc);
  if (crc != load_le32(buf.data() + 4)) return fail(DecodeStatus::kCorrupt, "record CRC mismatch");

  DecodeResult r;
  r.record.sequence = load_le64(buf.data() + 9);
  const auto kind = std::to_integer<std::uint8_t>(buf[8]);
  std::span<const std::byte> payload = buf.subspan(kRecordHeaderSize, total - kRecordHeaderSize);
  if (kind == static_cast<std::uint8_t>(RecordKind::kDone)) {
    if (!payload.empty()) return fail(DecodeStatus::kCorrupt, "done record with a payload");
    r.record.kind = RecordKind::kDone;
  } else if (kind == static_cast<std::uint8_t>(RecordKind::kMessage)) {
    r.record.kind = RecordKind::kMessage;
    if (payload.size() < 4)
      return fail(DecodeStatus::kCorrupt, "message record without frame count");
    const std::size_t count = load_le32(payload.data());
    payload = payload.subspan(4);
    // Each frame needs at least its size field: bounds the allocation below.
    if (count > payload.size() / 4) return fail(DecodeStatus::kCorrupt, "frame count too large");
    r.record.frames.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
      if (payload.size() < 4) return fail(DecodeStatus::kCorrupt, "frame size truncated");
      const std::size_t size = load_le32(payload.data());
      payload = payload.subspan(4);
      if (size > payload.size()) return fail(DecodeStatus::kCorrupt, "frame overruns record");
      r.record.frames.push_back(payload.first(size));
      payload = payload.subspan(size);
    }
    if (!payload.empty()) return fail(DecodeStatus::kCorrupt, "trailing bytes in message record");
  } else {
    return fail(DecodeStatus::kCorrupt, "unknown record kind");
  }
  r.status = DecodeStatus::kOk;
  r.consumed = total;
  return r;
}

}  // namespace tidepool::protocol
