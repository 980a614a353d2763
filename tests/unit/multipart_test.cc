// Multipart: frames in order across the inline and the spilled storage, byte counts, clear and
// reuse, and the copies made to hold a frame for long (held_copy, own_buffers).
#include "tidepool/protocol/multipart.h"

#include <doctest/doctest.h>

#include <string>

using tidepool::protocol::held_copy;
using tidepool::protocol::kSharedBufferMax;
using tidepool::protocol::Multipart;

TEST_CASE("frames keep their order past the inline ones, and bytes counts them all") {
  Multipart m;
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < 3 * Multipart::kInlineFrames; ++i) {
    m.push_back(std::string_view(std::string(i, static_cast<char>('a' + i))));
    bytes += i;
  }
  CHECK(m.size() == 3 * Multipart::kInlineFrames);
  CHECK(m.bytes() == bytes);
  for (std::size_t i = 0; i < m.size(); ++i) {
    CHECK(m.frame_view(i) == std::string(i, static_cast<char>('a' + i)));
  }
  Multipart moved = std::move(m);
  CHECK(moved.frame_view(7) == std::string(7, 'h'));
}

TEST_CASE("clear empties it for reuse") {
  Multipart m;
  for (int i = 0; i < 6; ++i) m.push_back(std::string_view("xyz"));
  m.clear();
  CHECK(m.empty());
  CHECK(m.bytes() == 0);
  m.push_back(std::string_view("one"));
  CHECK(m.size() == 1);
  CHECK(m.frame_view(0) == "one");
}

TEST_CASE("held_copy: small frames get bytes of their own, large ones share the payload") {
  zmq::message_t small(std::string(100, 's').data(), 100);
  const zmq::message_t small_copy = held_copy(small);
  CHECK(small_copy.data() != small.data());
  CHECK(small_copy.to_string_view() == small.to_string_view());

  const std::string big(kSharedBufferMax + 1, 'b');
  zmq::message_t large(big.data(), big.size());
  const zmq::message_t large_copy = held_copy(large);
  CHECK(large_copy.data() == large.data());  // reference counted, no byte copy
  CHECK(large_copy.size() == big.size());
}

TEST_CASE("own_buffers replaces small frames and keeps their content") {
  Multipart m;
  m.push_back(std::string_view(std::string(64, 'x')));
  m.push_back(std::string_view(""));
  const void* before = m[0].data();
  m.own_buffers();
  CHECK(m[0].data() != before);
  CHECK(m.frame_view(0) == std::string(64, 'x'));
  CHECK(m[1].size() == 0);
  CHECK(m.bytes() == 64);
}
