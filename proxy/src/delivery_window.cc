// DeliveryWindow (see delivery_window.h): the trail of forwarded messages, the set awaiting
// delivery, and the safe watermark.
#include "tidepool/proxy/delivery_window.h"

#include <algorithm>

namespace tidepool::proxy {

void DeliveryWindow::forwarded(std::uint64_t sequence) {
  ++forwards_;
  if (sequence != 0) {
    high_ = std::max(high_, sequence);
    outstanding_.insert(sequence);
    trailing_.push_back({forwards_, sequence});
  }
  release_trail();
}

void DeliveryWindow::awaiting(std::uint64_t sequence) {
  if (sequence == 0) return;
  high_ = std::max(high_, sequence);
  outstanding_.insert(sequence);
}

void DeliveryWindow::delivered(std::uint64_t sequence) { outstanding_.erase(sequence); }

void DeliveryWindow::finished_through(std::uint64_t sequence) { high_ = std::max(high_, sequence); }

void DeliveryWindow::all_delivered() {
  for (const auto& t : trailing_) outstanding_.erase(t.sequence);
  trailing_.clear();
}

void DeliveryWindow::release_trail() {
  // More than `trail` messages went into the pipes after it: it has left them.
  while (!trailing_.empty() && forwards_ - trailing_.front().forward > trail_) {
    outstanding_.erase(trailing_.front().sequence);
    trailing_.pop_front();
  }
}

std::uint64_t DeliveryWindow::safe() const {
  if (outstanding_.empty()) return high_;
  return *outstanding_.begin() - 1;
}

}  // namespace tidepool::proxy
