#pragma once

#include <cstddef>
#include <string_view>
#include <utility>
#include <vector>

#include <zmq.hpp>

namespace tidepool::protocol {

// One whole ZeroMQ message: every frame, routing envelope included. Move-only, so a message
// travels from socket to queue to socket without its payload ever being copied.
class Multipart {
 public:
  Multipart() = default;
  Multipart(Multipart&&) noexcept = default;
  Multipart& operator=(Multipart&&) noexcept = default;
  Multipart(const Multipart&) = delete;
  Multipart& operator=(const Multipart&) = delete;
  ~Multipart() = default;

  void push_back(zmq::message_t&& frame) {
    bytes_ += frame.size();
    frames_.push_back(std::move(frame));
  }
  void push_back(std::string_view data) { push_back(zmq::message_t(data.data(), data.size())); }

  void clear() {
    frames_.clear();
    bytes_ = 0;
  }

  [[nodiscard]] std::size_t size() const { return frames_.size(); }
  [[nodiscard]] bool empty() const { return frames_.empty(); }
  // Payload bytes over all frames (what queue byte limits count).
  [[nodiscard]] std::size_t bytes() const { return bytes_; }

  zmq::message_t& operator[](std::size_t i) { return frames_[i]; }
  const zmq::message_t& operator[](std::size_t i) const { return frames_[i]; }
  auto begin() { return frames_.begin(); }
  auto end() { return frames_.end(); }
  [[nodiscard]] auto begin() const { return frames_.begin(); }
  [[nodiscard]] auto end() const { return frames_.end(); }

  [[nodiscard]] std::string_view frame_view(std::size_t i) const {
    return {static_cast<const char*>(frames_[i].data()), frames_[i].size()};
  }

 private:
  std::vector<zmq::message_t> frames_;
  std::size_t bytes_ = 0;
};

}  // namespace tidepool::protocol
