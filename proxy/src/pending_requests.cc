// The slot table of requests awaiting replies, and the held copy of each (pending_requests.h).
#include "tidepool/proxy/pending_requests.h"

#include <cstring>

namespace tidepool::proxy {

template <typename F>
void HeldRequest::for_each_frame(F&& f) const {
  std::size_t shared = 0;
  for (std::size_t at = 0, i = 0; at < packed_.size(); ++i) {
    std::uint32_t size = 0;
    std::memcpy(&size, packed_.data() + at, sizeof size);
    at += sizeof size;
    const bool is_shared = size == kShared;
    const std::string_view bytes =
        is_shared ? std::string_view{} : std::string_view(packed_).substr(at, size);
    if (!f(i, is_shared ? nullptr : &bytes, shared)) return;
    if (is_shared) {
      ++shared;
    } else {
      at += size;
    }
  }
}

void HeldRequest::hold(const protocol::Multipart& message) {
  if (!empty()) clear();  // a slot's is cleared at release()
  for (std::size_t i = 0; i < message.size(); ++i) {
    const std::string_view frame = message.frame_view(i);
    const std::uint32_t size =
        frame.size() <= kPackedFrameMax ? static_cast<std::uint32_t>(frame.size()) : kShared;
    packed_.append(reinterpret_cast<const char*>(&size), sizeof size);
    if (size == kShared) {
      shared_.push_back(protocol::shared_copy(message[i]));
    } else {
      packed_.append(frame);
    }
  }
}

protocol::Multipart HeldRequest::take() {
  protocol::Multipart message;
  for_each_frame([&](std::size_t, const std::string_view* bytes, std::size_t shared) {
    if (bytes != nullptr) {
      message.push_back(*bytes);
    } else {
      message.push_back(std::move(shared_[shared]));
    }
    return true;
  });
  clear();
  return message;
}

std::string_view HeldRequest::frame_view(std::size_t i) const {
  std::string_view view;
  for_each_frame([&](std::size_t at, const std::string_view* bytes, std::size_t shared) {
    if (at < i) return true;
    view = bytes != nullptr ? *bytes : shared_.frame_view(shared);
    return false;
  });
  return view;
}

std::size_t HeldRequest::frames() const {
  std::size_t count = 0;
  for_each_frame([&count](std::size_t, const std::string_view*, std::size_t) {
    ++count;
    return true;
  });
  return count;
}

std::size_t HeldRequest::bytes() const {
  std::size_t total = 0;
  for_each_frame([&](std::size_t, const std::string_view* bytes, std::size_t shared) {
    total += bytes != nullptr ? bytes->size() : shared_[shared].size();
    return true;
  });
  return total;
}

void HeldRequest::clear() {
  packed_.clear();
  if (packed_.capacity() > kKeptCapacity) std::string().swap(packed_);
  shared_.clear();
}

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
  // A free slot's request holds no frames (release() cleared them), but keeps its buffer.
  slot.request.sent = sent;
  slot.request.backend = backend;
  slot.request.spool_sequence = 0;
  slot.request.orphan = false;
  slot.tag = (static_cast<Tag>(uses_) << 32) | index;
  slot.older = newest_;
  slot.newer = kNone;
  if (newest_ != kNone) slots_[newest_].newer = index;
  newest_ = index;
  if (oldest_ == kNone) oldest_ = index;
  ++size_;
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

void PendingRequests::release(std::uint32_t index) {
  Slot& slot = slots_[index];
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
