// Envelopes: which frames are routing, delimiter and body, and what is refused.
#include "tidepool/protocol/envelope.h"

#include <doctest/doctest.h>

#include <initializer_list>
#include <string>
#include <string_view>

using tidepool::protocol::Envelope;
using tidepool::protocol::Multipart;
using tidepool::protocol::routing_id;
using tidepool::protocol::split_envelope;

namespace {

Multipart frames(std::initializer_list<std::string_view> parts) {
  Multipart m;
  for (const auto part : parts) m.push_back(part);
  return m;
}

}  // namespace

TEST_CASE("[id, \"\", body]: one routing frame, body at 2") {
  // libzmq's generated routing ids are 5 bytes starting with a zero byte.
  const Multipart m = frames({std::string_view("\x00\x80\x00\x00\x29", 5), "", "payload"});
  CHECK(m[0].size() == 5);
  const auto envelope = split_envelope(m);
  REQUIRE(envelope.has_value());
  CHECK(envelope->delimiter_index == 1);
  CHECK(envelope->routing_frames() == 1);
  CHECK(envelope->body_begin() == 2);
  CHECK(m.frame_view(envelope->body_begin()) == "payload");
}

TEST_CASE("multi-hop [id, id2, \"\", b1, b2]: two routing frames, two body frames") {
  const Multipart m = frames({"id-1", "id-2", "", "b1", "b2"});
  const auto envelope = split_envelope(m);
  REQUIRE(envelope.has_value());
  CHECK(envelope->delimiter_index == 2);
  CHECK(envelope->routing_frames() == 2);
  CHECK(envelope->body_begin() == 3);
  CHECK(m.frame_view(3) == "b1");
  CHECK(m.frame_view(4) == "b2");
}

TEST_CASE("the first empty frame after the routing id is the delimiter") {
  // An empty body frame after the delimiter is still a body.
  const Multipart m = frames({"id", "", "", "tail"});
  const auto envelope = split_envelope(m);
  REQUIRE(envelope.has_value());
  CHECK(envelope->delimiter_index == 1);
  CHECK(envelope->body_begin() == 2);

  const auto empty_body = split_envelope(frames({"id", "", ""}));
  REQUIRE(empty_body.has_value());
  CHECK(empty_body->delimiter_index == 1);
}

TEST_CASE("no delimiter: refused") {
  CHECK_FALSE(split_envelope(frames({"id", "body"})).has_value());
  CHECK_FALSE(split_envelope(frames({"id", "id2", "b1", "b2"})).has_value());
}

TEST_CASE("delimiter last (no body): refused") {
  CHECK_FALSE(split_envelope(frames({"id", ""})).has_value());
  CHECK_FALSE(split_envelope(frames({"id", "id2", ""})).has_value());
}

TEST_CASE("empty message and single frame: refused") {
  CHECK_FALSE(split_envelope(Multipart{}).has_value());
  CHECK_FALSE(split_envelope(frames({"id"})).has_value());
  CHECK_FALSE(split_envelope(frames({""})).has_value());
}

TEST_CASE("an empty first frame is not a delimiter (no routing frame before it)") {
  // A bare REQ message as a DEALER sees it: ["", body]. There is no routing id.
  CHECK_FALSE(split_envelope(frames({"", "body"})).has_value());
  CHECK_FALSE(split_envelope(frames({"", "b1", "b2"})).has_value());
}

TEST_CASE("routing_id is the first frame, empty for an empty message") {
  CHECK(routing_id(Multipart{}).empty());
  CHECK(routing_id(frames({"client-7", "", "x"})) == "client-7");
  CHECK(routing_id(frames({"", "x"})).empty());
  const std::string binary("\x00\x01\x02", 3);
  const Multipart m = frames({binary, "", "x"});
  const auto id = routing_id(m);
  CHECK(id.size() == 3);
  CHECK(id == binary);
}
