// PackedFifo (packed_fifo.h): record layout, packing and unpacking, block reuse.
#include "tidepool/proxy/packed_fifo.h"

#include <cstring>
#include <utility>

namespace tidepool::proxy {
namespace {

// Record header. Frames follow: a 4-byte size and the bytes, or kExternal and a pointer to the
// frame's own libzmq message (its size is the message's). Every field is wide enough for what
// the network can send: libzmq bounds neither frame counts nor, before max_message_bytes is
// checked, sizes.
struct Header {
  std::uint64_t length;  // the whole record, padded to kAlign
  std::uint64_t bytes;   // payload bytes over all frames
  Clock::rep enqueued;
  std::uint64_t spool_sequence;
  std::uint32_t frames;
  std::uint32_t flags;
};
static_assert(sizeof(Header) == 40);

constexpr std::uint32_t kReplayed = 1;
constexpr std::uint32_t kHasExternal = 2;
// Packed frames are at most kPackedFrameMax bytes, so no packed size is this.
constexpr std::uint32_t kExternal = 0xFFFF'FFFFU;
constexpr std::size_t kAlign = 8;  // the next record's header stays aligned

std::size_t padded(std::size_t n) { return (n + kAlign - 1) & ~(kAlign - 1); }

const Header& header_of(const std::byte* record) {
  return *reinterpret_cast<const Header*>(record);
}

bool packed(std::size_t frame_size) { return frame_size <= PackedFifo::kPackedFrameMax; }

PackedFifo::Head head_of(const std::byte* record) {
  const Header& h = header_of(record);
  return {static_cast<std::size_t>(h.bytes), Clock::time_point(Clock::duration(h.enqueued)),
          h.spool_sequence};
}

// Calls f(size, data, external) for each frame of a record: data points at the bytes, or at
// the stored pointer of an external frame.
template <typename F>
void for_each_frame(const std::byte* record, F&& f) {
  const Header& h = header_of(record);
  const std::byte* p = record + sizeof(Header);
  for (std::uint32_t i = 0; i < h.frames; ++i) {
    std::uint32_t size = 0;
    std::memcpy(&size, p, sizeof size);
    p += sizeof size;
    if (size == kExternal) {
      f(0, p, true);
      p += sizeof(zmq::message_t*);
    } else {
      f(size, p, false);
      p += size;
    }
  }
}

zmq::message_t* external_at(const std::byte* p) {
  zmq::message_t* frame = nullptr;
  std::memcpy(&frame, p, sizeof frame);
  return frame;
}

}  // namespace

std::byte* PackedFifo::append_record(std::size_t length) {
  if (blocks_.empty() || blocks_.back().capacity - blocks_.back().used < length) {
    Block block;
    if (length <= kBlockBytes && spare_) {
      block.data = std::move(spare_);
      block.capacity = kBlockBytes;
    } else {
      block.capacity = std::max(length, kBlockBytes);
      block.data = std::make_unique_for_overwrite<std::byte[]>(block.capacity);
    }
    if (blocks_.empty()) head_ = 0;
    blocks_.push_back(std::move(block));
  }
  Block& tail = blocks_.back();
  back_offset_ = tail.used;
  tail.used += length;
  return tail.data.get() + back_offset_;
}

void PackedFifo::push_back(QueuedMessage&& queued) {
  protocol::Multipart& message = queued.message;
  std::size_t length = sizeof(Header);
  bool external = false;
  for (std::size_t i = 0; i < message.size(); ++i) {
    const std::size_t size = message[i].size();  // a libzmq call: once per frame and pass
    const bool small = packed(size);
    external |= !small;
    length += sizeof(std::uint32_t) + (small ? size : sizeof(zmq::message_t*));
  }
  length = padded(length);
  std::byte* record = append_record(length);
  const Header h{length,
                 message.bytes(),
                 queued.enqueued.time_since_epoch().count(),
                 queued.spool_sequence,
                 static_cast<std::uint32_t>(message.size()),
                 (queued.replayed ? kReplayed : 0U) | (external ? kHasExternal : 0U)};
  std::memcpy(record, &h, sizeof h);
  std::byte* p = record + sizeof h;
  for (std::size_t i = 0; i < message.size(); ++i) {
    zmq::message_t& frame = message[i];
    const std::size_t frame_size = frame.size();
    if (packed(frame_size)) {
      const auto size = static_cast<std::uint32_t>(frame_size);
      std::memcpy(p, &size, sizeof size);
      p += sizeof size;
      if (size > 0) std::memcpy(p, frame.data(), size);
      p += size;
    } else {
      std::memcpy(p, &kExternal, sizeof kExternal);
      p += sizeof kExternal;
      auto* own = new zmq::message_t(std::move(frame));
      std::memcpy(p, &own, sizeof own);
      p += sizeof own;
    }
  }
  message.clear();  // releases libzmq's buffers now, not when the caller's copy dies
  ++count_;
  if (queued.spool_sequence != 0) ++spooled_;
}

const std::byte* PackedFifo::front_record() const { return blocks_.front().data.get() + head_; }

const std::byte* PackedFifo::back_record() const {
  return blocks_.back().data.get() + back_offset_;
}

PackedFifo::Head PackedFifo::front() const { return head_of(front_record()); }

PackedFifo::Head PackedFifo::back() const { return head_of(back_record()); }

QueuedMessage PackedFifo::pop_front() {
  const std::byte* record = front_record();
  const Header& h = header_of(record);
  QueuedMessage out;
  out.enqueued = Clock::time_point(Clock::duration(h.enqueued));
  out.spool_sequence = h.spool_sequence;
  out.replayed = (h.flags & kReplayed) != 0;
  for_each_frame(record, [&](std::uint32_t size, const std::byte* p, bool external) {
    if (external) {
      zmq::message_t* own = external_at(p);
      out.message.push_back(std::move(*own));
      delete own;
    } else {
      out.message.push_back(zmq::message_t(p, size));
    }
  });
  // The external frames moved out: discard must not free them again.
  const_cast<Header&>(h).flags &= ~kHasExternal;
  discard_front();
  return out;
}

void PackedFifo::release(const std::byte* record) {
  if ((header_of(record).flags & kHasExternal) == 0) return;
  for_each_frame(record, [](std::uint32_t, const std::byte* p, bool external) {
    if (external) delete external_at(p);
  });
}

void PackedFifo::discard_front() {
  const std::byte* record = front_record();
  release(record);
  if (header_of(record).spool_sequence != 0) --spooled_;
  head_ += header_of(record).length;
  --count_;
  if (head_ == blocks_.front().used) pop_block_front();
}

void PackedFifo::pop_block_front() {
  if (blocks_.front().capacity == kBlockBytes && !spare_) spare_ = std::move(blocks_.front().data);
  blocks_.pop_front();
  head_ = 0;
}

void PackedFifo::discard_back() {
  const std::byte* record = back_record();
  release(record);
  if (header_of(record).spool_sequence != 0) --spooled_;
  --count_;
  Block& tail = blocks_.back();
  tail.used = back_offset_;
  const std::size_t first = blocks_.size() == 1 ? head_ : 0;
  if (tail.used == first) {
    if (blocks_.size() == 1) {
      pop_block_front();
      back_offset_ = 0;
      return;
    }
    blocks_.pop_back();
  }
  // The record before it: walked to from the start of its block (rare: a failed fsync).
  Block& last = blocks_.back();
  std::size_t offset = blocks_.size() == 1 ? head_ : 0;
  while (offset + header_of(last.data.get() + offset).length < last.used) {
    offset += header_of(last.data.get() + offset).length;
  }
  back_offset_ = offset;
}

void PackedFifo::clear() {
  while (!empty()) discard_front();
}

std::size_t PackedFifo::block_bytes() const {
  std::size_t total = spare_ ? kBlockBytes : 0;
  for (const Block& block : blocks_) total += block.capacity;
  return total;
}

}  // namespace tidepool::proxy
