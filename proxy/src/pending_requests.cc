// The slot table of requests awaiting replies (pending_requests.h).
#include "tidepool/proxy/pending_requests.h"

namespace tidepool::proxy {

PendingRequests::Emplaced PendingRequests::emplace(Clock::time_point sent, std::size_t backend) {
  std::uint32_t index = 0;
  if (!free_.empty()) {
    index = free_.back();
    free_.pop_back();
  } else {
    index = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  // Uses count from 1 and skip 0 when they wrap, so that no tag is 0 (a free slot's).
  if (++uses_ == 0) uses_ = 1;
  Slot& slot = slots_[index];
  // A free slot's request holds no frames (release() cleared them).
  slot.request.sent = sent;
  slot.request.backend = backend;
  slot.request.spool_sequence = 0;
  slot.request.orphan = false;
  slot.tag = (static_cast<Tag>(uses_) << 32) | index;
  slot.settled = false;
  slot.older = newest_;
  slot.newer = kNone;
  if (newest_ != kNone) slots_[newest_].newer = index;
  newest_ = index;
  if (oldest_ == kNone) oldest_ = index;
  if (oldest_unsettled_ == kNone) oldest_unsettled_ = index;
  ++size_;
  if (++unsettled_count_ > kUnsettledMax) settle_oldest_unsettled();
  return {slot.tag, slot.request};
}

PendingRequest* PendingRequests::find(Tag tag) {
  const auto index = static_cast<std::uint32_t>(tag & 0xffffffffU);
  if (tag == 0 || index >= slots_.size() || slots_[index].tag != tag) return nullptr;
  return &slots_[index].request;
}

void PendingRequests::erase(Tag tag) {
  if (find(tag) != nullptr) release(static_cast<std::uint32_t>(tag & 0xffffffffU));
}

void PendingRequests::settle(Clock::time_point now) {
  while (oldest_unsettled_ != kNone &&
         now - slots_[oldest_unsettled_].request.sent >= kUnsettledMaxAge) {
    settle_oldest_unsettled();
  }
}

void PendingRequests::settle_oldest_unsettled() {
  Slot& slot = slots_[oldest_unsettled_];
  slot.request.request.own_buffers();
  slot.settled = true;
  --unsettled_count_;
  oldest_unsettled_ = slot.newer;
}

void PendingRequests::release(std::uint32_t index) {
  Slot& slot = slots_[index];
  if (!slot.settled) {
    --unsettled_count_;
    if (oldest_unsettled_ == index) oldest_unsettled_ = slot.newer;
  }
  (slot.older != kNone ? slots_[slot.older].newer : oldest_) = slot.newer;
  (slot.newer != kNone ? slots_[slot.newer].older : newest_) = slot.older;
  slot.request.request.clear();  // frees its frames now, not when the slot is reused
  slot.tag = 0;
  --size_;
  if (size_ == 0 && slots_.size() > kSlotsKept) {
    slots_.clear();
    slots_.shrink_to_fit();
    free_.clear();
    free_.shrink_to_fit();
    return;
  }
  free_.push_back(index);
}

}  // namespace tidepool::proxy
