// Codec for the durable spool's segment files (DESIGN.md §3). Pure: it turns records into
// bytes and bytes back into records; the proxy owns files, fsync and recycling.
//
// All integers are little-endian.
//
// Segment header (kSegmentHeaderSize = 24 bytes), at the start of every segment file:
//    0  magic           8 bytes  "TPSPOOL\0"
//    8  version         u32      kSpoolFormatVersion
//   12  first_sequence  u64      sequence of the segment's first record (informational)
//   20  crc32c          u32      of bytes 0..19
//
// Record (kRecordHeaderSize = 17 bytes + payload), one after another:
//    0  length    u32  bytes after the crc field: 1 + 8 + payload size
//    4  crc32c    u32  of the length field's 4 bytes followed by the `length` bytes after
//                      this field, so a damaged length is caught like damaged data
//    8  kind      u8   1 = message, 2 = done marker
//    9  sequence  u64  message: its sequence; done: every message with sequence <= this
//                      has been forwarded
//   17  payload        message: u32 frame count, then per frame u32 size + bytes;
//                      done: empty
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "tidepool/protocol/crc32c.h"

namespace tidepool::protocol {

inline constexpr char kSpoolMagic[8] = {'T', 'P', 'S', 'P', 'O', 'O', 'L', '\0'};
inline constexpr std::uint32_t kSpoolFormatVersion = 1;
inline constexpr std::size_t kSegmentHeaderSize = 24;
inline constexpr std::size_t kRecordHeaderSize = 17;
// Generous default: twice the default max_message_bytes (64 MiB). Callers should pass
// their own limit, e.g. max_message_bytes + message_record_overhead(max frames).
inline constexpr std::size_t kDefaultMaxRecordBytes = std::size_t{128} << 20;

// Bytes a message record adds around its frames' bytes.
constexpr std::size_t message_record_overhead(std::size_t frame_count) noexcept {
  return kRecordHeaderSize + 4 + 4 * frame_count;
}

enum class RecordKind : std::uint8_t { kMessage = 1, kDone = 2 };

enum class DecodeStatus {
  kOk,
  kIncomplete,  // the buffer ends inside the record: a torn tail, or more bytes to read
  kCorrupt,     // CRC mismatch, impossible length or layout, unknown kind
};

struct SegmentHeader {
  std::uint32_t version = kSpoolFormatVersion;
  std::uint64_t first_sequence = 0;
};

struct HeaderResult {
  DecodeStatus status = DecodeStatus::kCorrupt;
  SegmentHeader header;
  std::string_view error;  // static text for logs when status != kOk
};

struct Record {
  RecordKind kind = RecordKind::kMessage;
  std::uint64_t sequence = 0;
  // Message frames: views into the decoded buffer (valid as long as it is). Empty for done.
  std::vector<std::span<const std::byte>> frames;
};

struct DecodeResult {
  DecodeStatus status = DecodeStatus::kCorrupt;
  std::size_t consumed = 0;  // size of the record when kOk, else 0
  Record record;             // meaningful only when kOk
  std::string_view error;    // static text for logs when status != kOk
};

// Appends a segment header to `out`.
void encode_header(std::string& out, const SegmentHeader& header);
void encode_header(std::vector<std::byte>& out, const SegmentHeader& header);

// Checks magic, version and CRC of the header at the start of `buf`. kIncomplete when
// fewer than kSegmentHeaderSize bytes; kCorrupt (with a reason) for anything else wrong,
// including an unsupported version.
HeaderResult decode_header(std::span<const std::byte> buf) noexcept;

// Appends one message record. Throws std::length_error if the record would not fit its
// u32 length field. Frames are any range of objects with data() and size() (string_view,
// span<const byte>, zmq::message_t, ...); non-template overloads are below.
template <typename Out, typename Frames>
void encode_message_record_of(Out& out, std::uint64_t sequence, const Frames& frames);

void encode_message_record(std::string& out, std::uint64_t sequence,
                           std::span<const std::string_view> frames);
void encode_message_record(std::vector<std::byte>& out, std::uint64_t sequence,
                           std::span<const std::string_view> frames);

// Appends a done marker: every message with sequence <= `sequence` has been forwarded.
void encode_done_record(std::string& out, std::uint64_t sequence);
void encode_done_record(std::vector<std::byte>& out, std::uint64_t sequence);

// Decodes the record at the start of `buf`. Never reads outside `buf`. A length field
// larger than max_record_bytes (whole record, header included) is kCorrupt even when the
// buffer is short, so a damaged length never makes a reader wait for gigabytes.
DecodeResult decode_record(std::span<const std::byte> buf,
                           std::size_t max_record_bytes = kDefaultMaxRecordBytes);

// --- implementation of the template ---------------------------------------------------

namespace spool_detail {

template <typename Out>
void append_raw(Out& out, const void* p, std::size_t n) {
  if (n == 0) return;
  const auto* b = static_cast<const typename Out::value_type*>(p);
  out.insert(out.end(), b, b + n);
}

template <typename Out, typename Int>
void append_le(Out& out, Int v) {
  unsigned char b[sizeof(Int)];
  for (std::size_t i = 0; i < sizeof(Int); ++i) {
    b[i] = static_cast<unsigned char>(v >> (8 * i));
  }
  append_raw(out, b, sizeof(Int));
}

template <typename Out>
void store_le32(Out& out, std::size_t at, std::uint32_t v) {
  for (std::size_t i = 0; i < 4; ++i) {
    out[at + i] = static_cast<typename Out::value_type>(static_cast<unsigned char>(v >> (8 * i)));
  }
}

// Fills in the CRC of the record that starts at `start` (length already written).
template <typename Out>
void seal_record(Out& out, std::size_t start) {
  const auto* base = reinterpret_cast<const unsigned char*>(out.data()) + start;
  std::uint32_t crc = crc32c(base, 4);
  crc = crc32c(base + 8, out.size() - start - 8, crc);
  store_le32(out, start + 4, crc);
}

}  // namespace spool_detail

template <typename Out, typename Frames>
void encode_message_record_of(Out& out, std::uint64_t sequence, const Frames& frames) {
  std::size_t frame_count = 0;
  std::size_t frame_bytes = 0;
  for (const auto& f : frames) {
    ++frame_count;
    frame_bytes += f.size();
  }
  const std::size_t length = 1 + 8 + 4 + 4 * frame_count + frame_bytes;
  if (length > std::numeric_limits<std::uint32_t>::max()) {
    throw std::length_error("spool record too large");
  }
  const std::size_t start = out.size();
  out.reserve(start + 8 + length);
  spool_detail::append_le(out, static_cast<std::uint32_t>(length));
  spool_detail::append_le(out, std::uint32_t{0});  // CRC, sealed below
  spool_detail::append_le(out, static_cast<std::uint8_t>(RecordKind::kMessage));
  spool_detail::append_le(out, sequence);
  spool_detail::append_le(out, static_cast<std::uint32_t>(frame_count));
  for (const auto& f : frames) {
    spool_detail::append_le(out, static_cast<std::uint32_t>(f.size()));
    spool_detail::append_raw(out, f.data(), f.size());
  }
  spool_detail::seal_record(out, start);
}

}  // namespace tidepool::protocol
