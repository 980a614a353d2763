// MessageQueue (see queue.h): offers under the overflow policy, byte accounting, expiry.
#include "tidepool/proxy/queue.h"

#include <algorithm>
#include <utility>

namespace tidepool::proxy {

MessageQueue::MessageQueue(std::size_t max_messages, std::size_t max_bytes, Overflow overflow)
    : max_messages_(max_messages), max_bytes_(max_bytes), overflow_(overflow) {}

PackedFifo::Head MessageQueue::head() const {
  if (put_back_.empty()) return packed_.front();
  const QueuedMessage& m = put_back_.front();
  return {m.message.bytes(), m.enqueued, m.spool_sequence};
}

void MessageQueue::drop_head() {
  const std::size_t bytes = head().bytes;
  if (put_back_.empty()) {
    packed_.discard_front();
  } else {
    put_back_.pop_front();
  }
  bytes_ -= bytes;
}

OfferResult MessageQueue::offer(protocol::Multipart&& message, Clock::time_point now,
                                std::uint64_t spool_sequence) {
  OfferResult result;
  const std::size_t size = message.bytes();
  switch (overflow_) {
    case Overflow::kBlock:
      // The route only reads while !full(), so the count bound holds; see the class comment.
      break;
    case Overflow::kDropNewest:
      if (!has_room_for(size)) return result;
      break;
    case Overflow::kDropOldest:
      while (!empty() && !has_room_for(size)) {
        const PackedFifo::Head oldest = head();
        result.evicted_bytes += oldest.bytes;
        result.evicted_sequence = std::max(result.evicted_sequence, oldest.spool_sequence);
        ++result.evicted;
        drop_head();
      }
      // Config validation keeps max_message_bytes <= max_bytes, so an empty queue has room.
      break;
  }
  push_back(QueuedMessage{std::move(message), now, spool_sequence});
  result.accepted = true;
  return result;
}

bool MessageQueue::would_accept(std::size_t bytes) const {
  return overflow_ != Overflow::kDropNewest || has_room_for(bytes);
}

void MessageQueue::push_back(QueuedMessage&& message) {
  bytes_ += message.message.bytes();
  packed_.push_back(std::move(message));
}

QueuedMessage MessageQueue::pop() {
  QueuedMessage head;
  if (put_back_.empty()) {
    head = packed_.pop_front();
  } else {
    head = std::move(put_back_.front());
    put_back_.pop_front();
  }
  bytes_ -= head.message.bytes();
  return head;
}

void MessageQueue::push_front(QueuedMessage&& message) {
  bytes_ += message.message.bytes();
  put_back_.push_front(std::move(message));
}

std::pair<std::size_t, std::size_t> MessageQueue::expire(Clock::time_point now, Clock::duration ttl,
                                                         std::uint64_t* last_sequence) {
  std::pair<std::size_t, std::size_t> dropped{0, 0};
  if (last_sequence != nullptr) *last_sequence = 0;
  while (!empty() && now - head().enqueued > ttl) {
    const PackedFifo::Head oldest = head();
    if (last_sequence != nullptr) *last_sequence = std::max(*last_sequence, oldest.spool_sequence);
    dropped.first += 1;
    dropped.second += oldest.bytes;
    drop_head();
  }
  return dropped;
}

std::pair<std::size_t, std::size_t> MessageQueue::remove_spooled_after(std::uint64_t sequence) {
  std::pair<std::size_t, std::size_t> removed{0, 0};
  while (!packed_.empty() && packed_.back().spool_sequence > sequence) {
    removed.first += 1;
    removed.second += packed_.back().bytes;
    packed_.discard_back();
  }
  while (packed_.empty() && !put_back_.empty() && put_back_.back().spool_sequence > sequence) {
    removed.first += 1;
    removed.second += put_back_.back().message.bytes();
    put_back_.pop_back();
  }
  bytes_ -= removed.second;
  return removed;
}

std::pair<std::size_t, std::size_t> MessageQueue::clear(std::size_t* spooled) {
  std::pair<std::size_t, std::size_t> dropped{size(), bytes_};
  if (spooled != nullptr) {
    *spooled = packed_.spooled() + static_cast<std::size_t>(std::count_if(
                                       put_back_.begin(), put_back_.end(),
                                       [](const auto& e) { return e.spool_sequence != 0; }));
  }
  put_back_.clear();
  packed_.clear();
  bytes_ = 0;
  return dropped;
}

std::optional<Clock::time_point> MessageQueue::oldest() const {
  if (empty()) return std::nullopt;
  return head().enqueued;
}

}  // namespace tidepool::proxy
