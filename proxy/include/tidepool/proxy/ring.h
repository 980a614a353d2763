// Ring: a double-ended FIFO in one circular array, for the queue's unpacked regions.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <utility>

namespace tidepool::proxy {

// What std::deque is for, without its allocation per element: libstdc++'s deque puts
// 512 bytes in a node, so a QueuedMessage (about 330 bytes, inline frames) got a node, and a
// malloc and free, of its own at every push and pop. A Ring grows by doubling and keeps its
// array while it is in use, so pushes and pops on a busy queue allocate nothing; trim() gives
// a large array back once the ring is empty (the queue calls it on its housekeeping timer,
// so a route that was busy once keeps no memory for it).
template <typename T>
class Ring {
 public:
  Ring() = default;
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  ~Ring() { release(); }

  [[nodiscard]] bool empty() const { return size_ == 0; }
  [[nodiscard]] std::size_t size() const { return size_; }

  T& front() { return at(0); }
  const T& front() const { return at(0); }
  T& back() { return at(size_ - 1); }
  const T& back() const { return at(size_ - 1); }
  // i-th from the front.
  T& operator[](std::size_t i) { return at(i); }
  const T& operator[](std::size_t i) const { return at(i); }

  void push_back(T&& value) {
    if (size_ == capacity_) grow();
    new (slot(size_)) T(std::move(value));
    ++size_;
  }
  void push_front(T&& value) {
    if (size_ == capacity_) grow();
    head_ = (head_ + capacity_ - 1) & (capacity_ - 1);
    new (slot(0)) T(std::move(value));
    ++size_;
  }
  void pop_front() {
    std::destroy_at(slot(0));
    head_ = (head_ + 1) & (capacity_ - 1);
    if (--size_ == 0) emptied();
  }
  void pop_back() {
    std::destroy_at(slot(size_ - 1));
    if (--size_ == 0) emptied();
  }
  void clear() {
    while (size_ > 0) pop_back();
  }
  // Gives the array back if the ring is empty and it is larger than the usual burst needs.
  void trim() {
    if (size_ == 0 && capacity_ > kKeptCapacity) release();
  }

 private:
  // Kept by trim(): enough for the usual burst without reallocating.
  static constexpr std::size_t kKeptCapacity = 16;

  T* slot(std::size_t i) { return storage_ + ((head_ + i) & (capacity_ - 1)); }
  const T* slot(std::size_t i) const { return storage_ + ((head_ + i) & (capacity_ - 1)); }
  T& at(std::size_t i) { return *std::launder(slot(i)); }
  const T& at(std::size_t i) const { return *std::launder(slot(i)); }

  void grow() {
    const std::size_t capacity = capacity_ == 0 ? kKeptCapacity : 2 * capacity_;
    T* storage = std::allocator<T>{}.allocate(capacity);
    for (std::size_t i = 0; i < size_; ++i) {
      new (storage + i) T(std::move(at(i)));
      std::destroy_at(slot(i));
    }
    if (storage_ != nullptr) std::allocator<T>{}.deallocate(storage_, capacity_);
    storage_ = storage;
    capacity_ = capacity;
    head_ = 0;
  }
  void emptied() { head_ = 0; }
  void release() {
    clear_storage();
    if (storage_ != nullptr) std::allocator<T>{}.deallocate(storage_, capacity_);
    storage_ = nullptr;
    capacity_ = 0;
    head_ = 0;
  }
  void clear_storage() {
    for (std::size_t i = 0; i < size_; ++i) std::destroy_at(slot(i));
    size_ = 0;
  }

  T* storage_ = nullptr;
  std::size_t capacity_ = 0;  // 0 or a power of two
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace tidepool::proxy
