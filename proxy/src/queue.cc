// MessageQueue (see queue.h): offers under the overflow policy, byte accounting, expiry.
#include "tidepool/proxy/queue.h"

#include <algorithm>
#include <utility>

namespace tidepool::proxy {

MessageQueue::MessageQueue(std::size_t max_messages, std::size_t max_bytes, Overflow overflow)
    : max_messages_(max_messages), max_bytes_(max_bytes), overflow_(overflow) {}

PackedFifo::Head MessageQueue::head() const {
  const auto whole = [](const QueuedMessage& m) {
    return PackedFifo::Head{m.message.bytes(), m.enqueued, m.spool_sequence};
  };
  if (!put_back_.empty()) return whole(put_back_.front());
  if (!packed_.empty()) return packed_.front();
  return whole(recent_.front());
}

void MessageQueue::drop_head() {
  bytes_ -= head().bytes;
  if (!put_back_.empty()) {
    put_back_.pop_front();
  } else if (!packed_.empty()) {
    packed_.discard_front();
  } else {
    recent_.pop_front();
  }
}

void MessageQueue::pack_oldest_recent() {
  packed_.push_back(std::move(recent_.front()));
  recent_.pop_front();
}

void MessageQueue::settle(Clock::time_point now) {
  while (!recent_.empty() && now - recent_.front().enqueued >= kRecentMaxAge) pack_oldest_recent();
  recent_.trim();
  put_back_.trim();
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
  recent_.push_back(std::move(message));
  if (recent_.size() > kRecentMax) pack_oldest_recent();
}

QueuedMessage MessageQueue::pop() {
  QueuedMessage head;
  if (!put_back_.empty()) {
    head = std::move(put_back_.front());
    put_back_.pop_front();
  } else if (!packed_.empty()) {
    head = packed_.pop_front();
  } else {
    head = std::move(recent_.front());
    recent_.pop_front();
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
  const auto cut = [&](auto& whole) {
    while (!whole.empty() && whole.back().spool_sequence > sequence) {
      removed.first += 1;
      removed.second += whole.back().message.bytes();
      whole.pop_back();
    }
    return whole.empty();
  };
  // From the tail: recent, packed, put back.
  if (cut(recent_)) {
    while (!packed_.empty() && packed_.back().spool_sequence > sequence) {
      removed.first += 1;
      removed.second += packed_.back().bytes;
      packed_.discard_back();
    }
    if (packed_.empty()) cut(put_back_);
  }
  bytes_ -= removed.second;
  return removed;
}

std::pair<std::size_t, std::size_t> MessageQueue::clear(std::size_t* spooled) {
  std::pair<std::size_t, std::size_t> dropped{size(), bytes_};
  if (spooled != nullptr) {
    const auto spooled_in = [](const Ring<QueuedMessage>& whole) {
      std::size_t n = 0;
      for (std::size_t i = 0; i < whole.size(); ++i) if (whole[i].spool_sequence != 0) ++n;
      return n;
    };
    *spooled = packed_.spooled() + spooled_in(put_back_) + spooled_in(recent_);
  }
  put_back_.clear();
  packed_.clear();
  recent_.clear();
  bytes_ = 0;
  return dropped;
}

std::optional<Clock::time_point> MessageQueue::oldest() const {
  if (empty()) return std::nullopt;
  return head().enqueued;
}

}  // namespace tidepool::proxy
