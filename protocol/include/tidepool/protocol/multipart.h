// Multipart: one whole ZeroMQ message (every frame) as it travels from socket to queue to
// socket without its payload being copied.
#pragma once

#include <cstddef>
#include <new>
#include <string_view>
#include <utility>
#include <vector>

#include <zmq.hpp>

namespace tidepool::protocol {

// With zero-copy receive (libzmq's default, which tidepool keeps), libzmq 4.3's decoder hands
// out frames that fit its 8 KiB read buffer (ZMQ_IN_BATCH_SIZE's default) as pointers into
// it, and a frame held on to keeps the whole buffer alive; larger frames have an allocation of
// their own. What is held for long is copied out first (held_copy(), own_buffers()).
inline constexpr std::size_t kSharedBufferMax = 8192;

// A second handle on `frame`'s payload, reference-counted (no byte copy; libzmq copies the
// few bytes of a frame it stores inline). It keeps a shared read buffer alive like the frame.
inline zmq::message_t shared_copy(const zmq::message_t& frame) {
  zmq::message_t copy;
  copy.copy(const_cast<zmq::message_t&>(frame));  // zmq_msg_copy leaves its source as it was
  return copy;
}

// A copy of `frame` to hold for long: its own bytes when it may point into a shared read
// buffer, else a shared_copy().
inline zmq::message_t held_copy(const zmq::message_t& frame) {
  if (frame.size() <= kSharedBufferMax) return {frame.data(), frame.size()};
  return shared_copy(frame);
}

// One whole ZeroMQ message: every frame, routing envelope included. Move-only, so a message
// travels from socket to queue to socket without its payload ever being copied.
//
// The first kInlineFrames frames are held inline: a pipeline message has one frame, a
// request-reply request three ([routing id, "", body]) and its reply on the backend four, so
// handling a message costs no allocation beyond libzmq's own.
class Multipart {
 public:
  static constexpr std::size_t kInlineFrames = 4;

  // User-provided, so that value-initialisation (Multipart{}) does not zero the inline storage
  // first: 256 bytes of rep stos on every message.
  Multipart() noexcept {}  // NOLINT(modernize-use-equals-default)
  // Moves only the frames it holds: a message is moved several times between socket, queue
  // and socket, and most of its inline slots are empty.
  Multipart(Multipart&& other) noexcept { take(other); }
  Multipart& operator=(Multipart&& other) noexcept {
    if (this != &other) {
      clear();
      take(other);
    }
    return *this;
  }
  Multipart(const Multipart&) = delete;
  Multipart& operator=(const Multipart&) = delete;
  ~Multipart() { destroy_inline(); }

  void push_back(zmq::message_t&& frame) {
    bytes_ += frame.size();
    if (size_ < kInlineFrames) {
      new (slot(size_)) zmq::message_t(std::move(frame));
    } else {
      rest_.push_back(std::move(frame));
    }
    ++size_;
  }
  void push_back(std::string_view data) { push_back(zmq::message_t(data.data(), data.size())); }
  // Appends the frame receive(zmq::message_t&) fills, in its slot; when receive returns false
  // nothing is appended. Returns what receive returned. Built where it stays: every temporary
  // message_t moved from costs libzmq an init and a close, which at two or three frames per hop
  // were a tenth of the request-reply loop's time.
  template <typename Receive>
  bool receive_back(Receive&& receive) {
    zmq::message_t& frame = emplace_back();
    if (!receive(frame)) {
      pop_back();
      return false;
    }
    bytes_ += frame.size();
    return true;
  }
  // Replaces frame i by a frame holding `data`, which may point into frame i itself.
  void replace(std::size_t i, std::string_view data) {
    zmq::message_t frame(data.data(), data.size());
    bytes_ = bytes_ - (*this)[i].size() + data.size();
    (*this)[i].swap(frame);
  }

  // Gives every frame that may point into a shared read buffer bytes of its own (held_copy()).
  void own_buffers() {
    for (std::size_t i = 0; i < size_; ++i) {
      zmq::message_t& frame = (*this)[i];
      if (frame.size() > 0 && frame.size() <= kSharedBufferMax) frame = held_copy(frame);
    }
  }

  void clear() {
    destroy_inline();
    rest_.clear();
    size_ = 0;
    bytes_ = 0;
  }

  // Empties it once libzmq has sent frames [first, size()). zmq_msg_send() leaves a frame it
  // sent empty, needing no zmq_msg_close() (zmq_msg_send(3)), so those are let go without a
  // libzmq call each; frames before `first` are closed as clear() would.
  void clear_sent(std::size_t first = 0) {
    for (std::size_t i = 0; i < first && i < inline_count(); ++i) slot(i)->~message_t();
    rest_.clear();
    size_ = 0;
    bytes_ = 0;
  }

  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }
  // Payload bytes over all frames (what queue byte limits count).
  [[nodiscard]] std::size_t bytes() const { return bytes_; }

  zmq::message_t& operator[](std::size_t i) {
    return i < kInlineFrames ? *slot(i) : rest_[i - kInlineFrames];
  }
  const zmq::message_t& operator[](std::size_t i) const {
    return i < kInlineFrames ? *slot(i) : rest_[i - kInlineFrames];
  }

  [[nodiscard]] std::string_view frame_view(std::size_t i) const {
    const zmq::message_t& frame = (*this)[i];
    return {static_cast<const char*>(frame.data()), frame.size()};
  }

 private:
  // Inline frames live in raw storage, constructed only when pushed: an empty slot costs no
  // libzmq call to create, move or destroy.
  [[nodiscard]] std::size_t inline_count() const {
    return size_ < kInlineFrames ? size_ : kInlineFrames;
  }
  zmq::message_t* slot(std::size_t i) {
    return std::launder(reinterpret_cast<zmq::message_t*>(storage_ + i * sizeof(zmq::message_t)));
  }
  [[nodiscard]] const zmq::message_t* slot(std::size_t i) const {
    return std::launder(
        reinterpret_cast<const zmq::message_t*>(storage_ + i * sizeof(zmq::message_t)));
  }
  // An empty frame constructed at the end; bytes_ is the caller's to count.
  zmq::message_t& emplace_back() {
    ++size_;
    if (size_ <= kInlineFrames) return *new (slot(size_ - 1)) zmq::message_t();
    return rest_.emplace_back();
  }
  // Removes the last frame, which bytes_ does not count.
  void pop_back() {
    --size_;
    if (size_ < kInlineFrames) {
      slot(size_)->~message_t();
    } else {
      rest_.pop_back();
    }
  }
  // Moves other's frames into this empty one and leaves other empty.
  void take(Multipart& other) noexcept {
    rest_ = std::move(other.rest_);
    size_ = other.size_;
    bytes_ = other.bytes_;
    for (std::size_t i = 0; i < inline_count(); ++i) {
      new (slot(i)) zmq::message_t(std::move(*other.slot(i)));
    }
    // A moved-from message_t holds an empty zmq_msg_t, which owns nothing: other's are let go
    // without a zmq_msg_close each (a queued message is moved three times on its way).
    other.rest_.clear();
    other.size_ = 0;
    other.bytes_ = 0;
  }
  void destroy_inline() {
    // The caller resets size_ (and rest_).
    for (std::size_t i = 0; i < inline_count(); ++i) slot(i)->~message_t();
  }

  alignas(zmq::message_t) std::byte storage_[kInlineFrames * sizeof(zmq::message_t)];
  std::vector<zmq::message_t> rest_;
  std::size_t size_ = 0;
  std::size_t bytes_ = 0;
};

}  // namespace tidepool::protocol
