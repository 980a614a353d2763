// PackedFifo: the storage behind MessageQueue. Queued messages packed into large blocks of our
// own instead of one libzmq allocation (plus a queue entry) each.
//
// Design. A queued message is a record appended to the last block; records are taken from the
// first block; a block is freed (one is kept for reuse) once its last record is taken. A record
// is a 40-byte header (length, payload bytes, enqueue time, spool sequence, frames, flags) and,
// per frame, a 4-byte size and the frame's bytes, padded to 8 bytes. A 64-byte message thus
// costs 112 bytes, where a libzmq allocation of its own and a deque entry cost ~250.
//
// Frames over kPackedFrameMax stay the libzmq messages they arrived as (moved, never copied):
// copying them would cost time for no saving, and they cannot be pinning a shared buffer
// (below). Smaller frames are copied in, which matters for more than size: with zero-copy
// receive, libzmq's small frames point into its shared 8 KiB read buffers, and a queued frame
// would keep its whole buffer alive.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>

#include "tidepool/protocol/multipart.h"
#include "tidepool/proxy/queued_message.h"

namespace tidepool::proxy {

class PackedFifo {
 public:
  // Frames that may point into a shared read buffer (multipart.h) are packed.
  static constexpr std::size_t kPackedFrameMax = protocol::kSharedBufferMax;
  // Large enough that the per-block cost vanishes, small enough that a short queue holds
  // little: 64 KiB is ~630 records of 64 bytes.
  static constexpr std::size_t kBlockBytes = 64 * 1024;

  // What the queue's bounds and policies need of a message without unpacking it.
  struct Head {
    std::size_t bytes = 0;  // payload bytes over all frames
    Clock::time_point enqueued;
    std::uint64_t spool_sequence = 0;
  };

  PackedFifo() = default;
  PackedFifo(const PackedFifo&) = delete;
  PackedFifo& operator=(const PackedFifo&) = delete;
  ~PackedFifo() { clear(); }

  void push_back(QueuedMessage&& message);
  // The first message, unpacked into libzmq messages of its own; must not be empty.
  QueuedMessage pop_front();
  [[nodiscard]] Head front() const;
  [[nodiscard]] Head back() const;
  void discard_front();
  void discard_back();
  void clear();

  [[nodiscard]] bool empty() const { return count_ == 0; }
  [[nodiscard]] std::size_t size() const { return count_; }
  // How many records carry a spool sequence (they stay in the spool when the queue is dropped).
  [[nodiscard]] std::size_t spooled() const { return spooled_; }
  // Memory held in blocks, used or not (for tests and the benchmark's reasoning).
  [[nodiscard]] std::size_t block_bytes() const;

 private:
  struct Block {
    std::unique_ptr<std::byte[]> data;
    std::size_t capacity = 0;
    std::size_t used = 0;  // records end here
  };

  [[nodiscard]] const std::byte* front_record() const;
  [[nodiscard]] const std::byte* back_record() const;
  // Frees what the record owns outside the block (its large frames).
  static void release(const std::byte* record);
  void pop_block_front();
  // Room for a record of `length` bytes at the back, in the last block or a new one.
  std::byte* append_record(std::size_t length);

  std::deque<Block> blocks_;
  std::unique_ptr<std::byte[]> spare_;  // one emptied kBlockBytes block, kept for reuse
  std::size_t head_ = 0;                // offset of the first record in blocks_.front()
  std::size_t back_offset_ = 0;         // offset of the last record in blocks_.back()
  std::size_t count_ = 0;
  std::size_t spooled_ = 0;
};

}  // namespace tidepool::proxy
