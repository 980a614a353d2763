// InFlight (see in_flight.h): the forwarding-order list and the per-key chains.
#include "tidepool/proxy/in_flight.h"

namespace tidepool::proxy {

bool InFlight::add(std::string_view key, Clock::time_point sent) {
  bool evicted = false;
  if (by_age_.size() >= max_entries_) {
    remove_oldest();
    evicted = true;
  }
  auto [slot, inserted] = by_key_.try_emplace(std::string(key));
  by_age_.push_back(Entry{sent, &slot->first, {}, false});
  const Iterator entry = std::prev(by_age_.end());
  if (inserted) {
    slot->second = Chain{entry, entry};
  } else {
    slot->second.tail->next_same_key = entry;
    slot->second.tail->has_next = true;
    slot->second.tail = entry;
  }
  return evicted;
}

std::optional<InFlight::Clock::time_point> InFlight::complete(std::string_view key) {
  // Heterogeneous lookup needs C++20 transparent hashing; a short key copy is cheaper to read.
  auto slot = by_key_.find(std::string(key));
  if (slot == by_key_.end()) return std::nullopt;
  const Iterator head = slot->second.head;
  const auto sent = head->sent;
  if (head->has_next) {
    slot->second.head = head->next_same_key;
    by_age_.erase(head);
  } else {
    by_age_.erase(head);
    by_key_.erase(slot);
  }
  return sent;
}

void InFlight::remove_oldest() {
  // The oldest entry overall is also the oldest of its key, so it heads its chain.
  const Iterator oldest = by_age_.begin();
  auto slot = by_key_.find(*oldest->key);
  if (oldest->has_next) {
    slot->second.head = oldest->next_same_key;
    by_age_.erase(oldest);
  } else {
    by_age_.erase(oldest);
    by_key_.erase(slot);
  }
}

std::size_t InFlight::expire(Clock::time_point deadline) {
  std::size_t expired = 0;
  while (!by_age_.empty() && by_age_.front().sent < deadline) {
    remove_oldest();
    ++expired;
  }
  return expired;
}

}  // namespace tidepool::proxy
