// MessageQueue: a route's in-memory FIFO of accepted messages, bounded by count and bytes,
// with the overflow policy (block, drop-newest, drop-oldest) and TTL expiry.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "tidepool/protocol/multipart.h"
#include "tidepool/proxy/config.h"
#include "tidepool/proxy/packed_fifo.h"
#include "tidepool/proxy/queued_message.h"
#include "tidepool/proxy/ring.h"

namespace tidepool::proxy {

// What happened to a message offered to the queue.
struct OfferResult {
  bool accepted = false;    // false: refused (drop-newest on a full queue)
  std::size_t evicted = 0;  // drop-oldest: messages evicted from the head to make room
  std::size_t evicted_bytes = 0;
  std::uint64_t evicted_sequence = 0;  // the largest spool sequence evicted; 0 when none
};

// FIFO bounded by message count and by bytes, with the route's overflow policy. Messages that
// stay are stored packed (PackedFifo, kRecentMax): pop() then hands out a copy in libzmq
// messages of its own.
//
// `block` never drops: the route stops reading its frontend while `full()` is true, so
// ZeroMQ's high-water marks push back on the clients. Because a message's size is only known
// once it has been read, the byte bound may be passed by at most one message
// (≤ max_message_bytes) under `block`; the count bound is exact.
class MessageQueue {
 public:
  MessageQueue(std::size_t max_messages, std::size_t max_bytes, Overflow overflow);

  OfferResult offer(protocol::Multipart&& message, Clock::time_point now,
                    std::uint64_t spool_sequence = 0);
  // Whether offer() would take a message of `bytes` now: false only for drop-newest without
  // room (the route checks this before writing the message to its spool).
  [[nodiscard]] bool would_accept(std::size_t bytes) const;
  // Appends without applying the bounds or the overflow policy (spool replay at start: what
  // was accepted before a restart is kept even if the limits were lowered since).
  void push_back(QueuedMessage&& message);
  // The caller owns the head after this; the queue must not be empty.
  QueuedMessage pop();
  // Puts a message back at the head (a send that would block after all). Never refused.
  void push_front(QueuedMessage&& message);
  // Packs the recent messages that have waited kRecentMaxAge, and gives back the memory of
  // empty regions (the route calls it on its housekeeping timer).
  void settle(Clock::time_point now);

  // Drops the head while it is older than `ttl`; returns {messages, bytes} dropped. When
  // `last_sequence` is given, it receives the largest spool sequence dropped (0 when none).
  std::pair<std::size_t, std::size_t> expire(Clock::time_point now, Clock::duration ttl,
                                             std::uint64_t* last_sequence = nullptr);
  // Removes the tail of messages whose spool sequence is above `sequence` (their records could
  // not be made durable); returns {messages, bytes}.
  std::pair<std::size_t, std::size_t> remove_spooled_after(std::uint64_t sequence);
  // Drops everything (shutdown); returns {messages, bytes}. When `spooled` is given, it
  // receives how many of them had a spool sequence (they stay in the spool).
  std::pair<std::size_t, std::size_t> clear(std::size_t* spooled = nullptr);

  [[nodiscard]] bool empty() const { return size() == 0; }
  [[nodiscard]] std::size_t size() const {
    return put_back_.size() + packed_.size() + recent_.size();
  }
  [[nodiscard]] std::size_t bytes() const { return bytes_; }
  [[nodiscard]] std::size_t max_messages() const { return max_messages_; }
  [[nodiscard]] std::size_t max_bytes() const { return max_bytes_; }
  // At or over a bound: `block` stops reading, the other policies make room or refuse.
  [[nodiscard]] bool full() const { return size() >= max_messages_ || bytes_ >= max_bytes_; }
  // Whether it would be full() with `messages` more of `bytes` in all.
  [[nodiscard]] bool full_after(std::size_t messages, std::size_t bytes) const {
    return size() + messages >= max_messages_ || bytes_ + bytes >= max_bytes_;
  }
  [[nodiscard]] std::optional<Clock::time_point> oldest() const;

 private:
  [[nodiscard]] bool has_room_for(std::size_t bytes) const {
    return size() < max_messages_ && bytes_ + bytes <= max_bytes_;
  }

  // A burst that the backend takes a moment later passes through unpacked: packing and
  // unpacking would cost more than the message's stay. What stays longer, or is more than
  // this many, is packed; the bound keeps what small recent messages can pin of libzmq's
  // shared read buffers (multipart.h) to a few MiB, for at most kRecentMaxAge.
  static constexpr std::size_t kRecentMax = 1024;
  static constexpr Clock::duration kRecentMaxAge = std::chrono::milliseconds(100);

  // The head of the queue's bounds and policies, wherever it is.
  [[nodiscard]] PackedFifo::Head head() const;
  void drop_head();
  void pack_oldest_recent();

  // Three regions, in queue order. Messages put back at the head (push_front): few, and about
  // to be sent, so kept whole.
  Ring<QueuedMessage> put_back_;
  // Older arrivals, packed (packed_fifo.h).
  PackedFifo packed_;
  // The newest arrivals, as received (kRecentMax).
  Ring<QueuedMessage> recent_;
  std::size_t bytes_ = 0;
  std::size_t max_messages_;
  std::size_t max_bytes_;
  Overflow overflow_;
};

}  // namespace tidepool::proxy
