// MessageQueue: a route's in-memory FIFO of accepted messages, bounded by count and bytes,
// with the overflow policy (block, drop-newest, drop-oldest) and TTL expiry; and Clock.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>

#include "tidepool/protocol/multipart.h"
#include "tidepool/proxy/config.h"

namespace tidepool::proxy {

using Clock = std::chrono::steady_clock;
// For metrics and status: durations are published in seconds.
inline double to_seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

struct QueuedMessage {
  protocol::Multipart message;
  Clock::time_point enqueued;
  // Its record's sequence in the route's spool; 0 when it has none (no spool).
  std::uint64_t spool_sequence = 0;
  // Read back from the spool at start: accepted by an earlier process, so a routing id that
  // libzmq assigned (it names a connection to that process) names no client of this one.
  bool replayed = false;
};

// What happened to a message offered to the queue.
struct OfferResult {
  bool accepted = false;    // false: refused (drop-newest on a full queue)
  std::size_t evicted = 0;  // drop-oldest: messages evicted from the head to make room
  std::size_t evicted_bytes = 0;
  std::uint64_t evicted_sequence = 0;  // the largest spool sequence evicted; 0 when none
};

// FIFO bounded by message count and by bytes, with the route's overflow policy.
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

  [[nodiscard]] bool empty() const { return entries_.empty(); }
  [[nodiscard]] std::size_t size() const { return entries_.size(); }
  [[nodiscard]] std::size_t bytes() const { return bytes_; }
  [[nodiscard]] std::size_t max_messages() const { return max_messages_; }
  [[nodiscard]] std::size_t max_bytes() const { return max_bytes_; }
  // At or over a bound: `block` stops reading, the other policies make room or refuse.
  [[nodiscard]] bool full() const { return size() >= max_messages_ || bytes_ >= max_bytes_; }
  [[nodiscard]] std::optional<Clock::time_point> oldest() const;

 private:
  [[nodiscard]] bool has_room_for(std::size_t bytes) const {
    return size() < max_messages_ && bytes_ + bytes <= max_bytes_;
  }

  std::deque<QueuedMessage> entries_;
  std::size_t bytes_ = 0;
  std::size_t max_messages_;
  std::size_t max_bytes_;
  Overflow overflow_;
};

}  // namespace tidepool::proxy
