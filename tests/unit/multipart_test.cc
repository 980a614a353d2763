// Multipart: frames in order across the inline and the spilled storage, byte counts, clear and
// reuse, building frames in place (receive_back, replace, clear_sent), and the copies made to
// hold a frame for long (held_copy, own_buffers).
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

TEST_CASE("a move hands every frame over once and leaves the source empty and reusable") {
  // Over libzmq's inline size, so each frame is an allocation: a frame lost in the move is a
  // leak (LeakSanitizer), one closed by both sides a double free (AddressSanitizer).
  Multipart m;
  for (std::size_t i = 0; i < Multipart::kInlineFrames + 2; ++i) {
    m.push_back(std::string_view(std::string(100, static_cast<char>('a' + i))));
  }
  Multipart moved(std::move(m));
  CHECK(moved.size() == Multipart::kInlineFrames + 2);
  CHECK(moved.bytes() == 100 * (Multipart::kInlineFrames + 2));
  CHECK(m.empty());  // NOLINT(bugprone-use-after-move): the contract says it is left empty
  CHECK(m.bytes() == 0);
  m.push_back(std::string_view(std::string(100, 'z')));
  Multipart assigned;
  assigned.push_back(std::string_view(std::string(100, 'y')));  // closed by the assignment
  assigned = std::move(moved);
  CHECK(assigned.frame_view(0) == std::string(100, 'a'));
  CHECK(assigned.frame_view(Multipart::kInlineFrames + 1) ==
        std::string(100, static_cast<char>('a' + Multipart::kInlineFrames + 1)));
  CHECK(m.frame_view(0) == std::string(100, 'z'));
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

TEST_CASE("receive_back appends what it received, and nothing when receiving fails") {
  Multipart m;
  for (std::size_t i = 0; i < Multipart::kInlineFrames + 1; ++i) {
    CHECK(m.receive_back([&](zmq::message_t& frame) {
      frame.rebuild(std::string(i + 1, 'r').data(), i + 1);
      return true;
    }));
  }
  CHECK_FALSE(m.receive_back([](zmq::message_t&) { return false; }));  // past the inline frames
  CHECK(m.size() == Multipart::kInlineFrames + 1);
  CHECK(m.frame_view(Multipart::kInlineFrames) == std::string(Multipart::kInlineFrames + 1, 'r'));
  m.clear();
  CHECK_FALSE(m.receive_back([](zmq::message_t&) { return false; }));
  CHECK(m.empty());
  CHECK(m.bytes() == 0);
  m.push_back(std::string_view("after"));
  CHECK(m.frame_view(0) == "after");
}

TEST_CASE("replace puts a frame in place, from its own bytes too, and keeps the byte count") {
  Multipart m;
  m.push_back(std::string_view("client-id+tag123"));  // stored inline by libzmq
  m.push_back(std::string_view(""));
  m.push_back(std::string_view("body"));
  m.replace(0, m.frame_view(0).substr(0, 9));  // a view into the frame it replaces
  CHECK(m.frame_view(0) == "client-id");
  CHECK(m.size() == 3);
  CHECK(m.bytes() == 9 + 4);
  CHECK(m.frame_view(2) == "body");
}

TEST_CASE("clear_sent closes the frames before `first` and lets the sent ones go") {
  zmq::context_t context;
  zmq::socket_t out(context, zmq::socket_type::pair);
  zmq::socket_t in(context, zmq::socket_type::pair);
  out.bind("inproc://clear-sent");
  in.connect("inproc://clear-sent");
  Multipart m;
  // Over libzmq's inline size, so each frame is an allocation: one clear_sent() failed to close
  // is a leak that LeakSanitizer reports (tests/run.sh runs this under it).
  m.push_back(std::string_view(std::string(100, 'k')));  // not sent
  m.push_back(std::string_view(std::string(100, 'a')));
  m.push_back(std::string_view(std::string(100, 'b')));
  out.send(m[1], zmq::send_flags::sndmore);
  out.send(m[2], zmq::send_flags::none);
  m.clear_sent(1);
  CHECK(m.empty());
  CHECK(m.bytes() == 0);
  zmq::message_t got;
  REQUIRE(in.recv(got));
  CHECK(got.to_string_view() == std::string(100, 'a'));
  REQUIRE(in.recv(got));
  CHECK(got.to_string_view() == std::string(100, 'b'));
  m.push_back(std::string_view("again"));
  CHECK(m.frame_view(0) == "again");
}
