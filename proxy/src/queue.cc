// MessageQueue (see queue.h): offers under the overflow policy, byte accounting, expiry.
#include "tidepool/proxy/queue.h"

#include <algorithm>
#include <utility>

namespace tidepool::proxy {

MessageQueue::MessageQueue(std::size_t max_messages, std::size_t max_bytes, Overflow overflow)
    : max_messages_(max_messages), max_bytes_(max_bytes), overflow_(overflow) {}

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
      while (!entries_.empty() && !has_room_for(size)) {
        result.evicted_bytes += entries_.front().message.bytes();
        result.evicted_sequence =
            std::max(result.evicted_sequence, entries_.front().spool_sequence);
        ++result.evicted;
        bytes_ -= entries_.front().message.bytes();
        entries_.pop_front();
      }
      // Config validation keeps max_message_bytes <= max_bytes, so an empty queue has room.
      break;
  }
  bytes_ += size;
  entries_.push_back(QueuedMessage{std::move(message), now, spool_sequence});
  result.accepted = true;
  return result;
}

bool MessageQueue::would_accept(std::size_t bytes) const {
  return overflow_ != Overflow::kDropNewest || has_room_for(bytes);
}

void MessageQueue::push_back(QueuedMessage&& message) {
  bytes_ += message.message.bytes();
  entries_.push_back(std::move(message));
}

QueuedMessage MessageQueue::pop() {
  QueuedMessage head = std::move(entries_.front());
  entries_.pop_front();
  bytes_ -= head.message.bytes();
  return head;
}

void MessageQueue::push_front(QueuedMessage&& message) {
  bytes_ += message.message.bytes();
  entries_.push_front(std::move(message));
}

std::pair<std::size_t, std::size_t> MessageQueue::expire(Clock::time_point now, Clock::duration ttl,
                                                         std::uint64_t* last_sequence) {
  std::pair<std::size_t, std::size_t> dropped{0, 0};
  if (last_sequence != nullptr) *last_sequence = 0;
  while (!entries_.empty() && now - entries_.front().enqueued > ttl) {
    if (last_sequence != nullptr) {
      *last_sequence = std::max(*last_sequence, entries_.front().spool_sequence);
    }
    dropped.first += 1;
    dropped.second += entries_.front().message.bytes();
    bytes_ -= entries_.front().message.bytes();
    entries_.pop_front();
  }
  return dropped;
}

std::pair<std::size_t, std::size_t> MessageQueue::remove_spooled_after(std::uint64_t sequence) {
  std::pair<std::size_t, std::size_t> removed{0, 0};
  while (!entries_.empty() && entries_.back().spool_sequence > sequence) {
    removed.first += 1;
    removed.second += entries_.back().message.bytes();
    bytes_ -= entries_.back().message.bytes();
    entries_.pop_back();
  }
  return removed;
}

std::pair<std::size_t, std::size_t> MessageQueue::clear(std::size_t* spooled) {
  std::pair<std::size_t, std::size_t> dropped{entries_.size(), bytes_};
  if (spooled != nullptr) {
    *spooled = static_cast<std::size_t>(std::count_if(
        entries_.begin(), entries_.end(), [](const auto& e) { return e.spool_sequence != 0; }));
  }
  entries_.clear();
  bytes_ = 0;
  return dropped;
}

std::optional<Clock::time_point> MessageQueue::oldest() const {
  if (entries_.empty()) return std::nullopt;
  return entries_.front().enqueued;
}

}  // namespace tidepool::proxy
