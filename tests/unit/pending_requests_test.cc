// PendingRequests, grouped by property: a tag finds its request and nothing else, ever; the
// order is send order; a held request has bytes of its own (large frames shared) and gives
// back its frames in order.
#include "tidepool/proxy/pending_requests.h"

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

using tidepool::protocol::Multipart;
using tidepool::proxy::Clock;
using tidepool::proxy::HeldRequest;
using tidepool::proxy::PendingRequest;
using tidepool::proxy::PendingRequests;
using namespace std::chrono_literals;

namespace {

// A request whose body is 64 bytes (above what libzmq stores inline, so a shared copy shares
// the payload's address), tagged by `name` at its start.
Multipart body(const std::string& name) {
  Multipart m;
  m.push_back(std::string_view("id"));
  m.push_back(std::string_view(""));
  m.push_back(std::string_view(name + std::string(64 - name.size(), '.')));
  return m;
}

// What RequestReply::send() does: a slot holding a copy of the message.
PendingRequests::Tag hold(PendingRequests& pending, const Multipart& message,
                          Clock::time_point sent, std::size_t backend = 0) {
  const auto [tag, request] = pending.emplace(sent, backend);
  request.request.hold(message);
  return tag;
}

std::string name_of(const PendingRequest& p) {
  const std::string_view b = p.request.frame_view(2);
  return std::string(b.substr(0, b.find('.')));
}

}  // namespace

TEST_CASE("a tag finds its request, and once the request is gone, nothing, also in a reused slot") {
  PendingRequests pending;
  const auto now = Clock::now();
  const Multipart a = body("a");
  const auto tag_a = hold(pending, a, now);
  REQUIRE(pending.find(tag_a) != nullptr);
  CHECK(name_of(*pending.find(tag_a)) == "a");
  CHECK(pending.find(0) == nullptr);
  CHECK(pending.find(tag_a + 1) == nullptr);  // a slot that does not exist
  pending.erase(tag_a);
  CHECK(pending.find(tag_a) == nullptr);
  CHECK(pending.empty());

  const Multipart b = body("b");
  const auto tag_b = hold(pending, b, now);
  CHECK((tag_b & 0xffffffffU) == (tag_a & 0xffffffffU));  // the same slot...
  CHECK(tag_b != tag_a);                                  // ...in another use
  CHECK(pending.find(tag_a) == nullptr);
  REQUIRE(pending.find(tag_b) != nullptr);
  CHECK(name_of(*pending.find(tag_b)) == "b");
  pending.erase(tag_a);  // a stale tag erases nothing
  CHECK(pending.size() == 1);
}

TEST_CASE("a reused slot starts empty: no frame, sequence or orphan mark of its last use") {
  PendingRequests pending;
  const auto now = Clock::now();
  const auto first = pending.emplace(now, 1);
  first.request.request.hold(body("first"));
  first.request.spool_sequence = 42;
  first.request.orphan = true;
  pending.erase(first.tag);
  const auto again = pending.emplace(now + 1ms, 0);
  CHECK((again.tag & 0xffffffffU) == (first.tag & 0xffffffffU));  // the same slot
  CHECK(again.request.request.empty());
  CHECK(again.request.request.bytes() == 0);
  CHECK(again.request.spool_sequence == 0);
  CHECK_FALSE(again.request.orphan);
  CHECK(again.request.backend == 0);
  CHECK(again.request.sent == now + 1ms);
}

TEST_CASE("tags stay unique when the table is released after a burst") {
  PendingRequests pending;
  const auto now = Clock::now();
  const Multipart m = body("x");
  std::vector<PendingRequests::Tag> tags;
  for (int i = 0; i < 5000; ++i) tags.push_back(hold(pending, m, now));
  for (const auto tag : tags) pending.erase(tag);
  CHECK(pending.empty());
  const auto fresh = hold(pending, m, now);
  for (const auto tag : tags) CHECK(tag != fresh);
  for (const auto tag : tags) CHECK(pending.find(tag) == nullptr);
}

TEST_CASE("the oldest is the first sent, and take_if hands back its matches oldest first") {
  PendingRequests pending;
  const auto now = Clock::now();
  std::vector<PendingRequests::Tag> tags;
  for (int i = 0; i < 6; ++i) {
    tags.push_back(hold(pending, body("r" + std::to_string(i)), now + std::chrono::milliseconds(i),
                        static_cast<std::size_t>(i % 2)));
  }
  pending.erase(tags[0]);
  pending.erase(tags[3]);
  CHECK(name_of(pending.oldest()) == "r1");
  CHECK(pending.oldest_tag() == tags[1]);

  const auto taken = pending.take_if([](const PendingRequest& p) { return p.backend == 0; });
  REQUIRE(taken.size() == 2);
  CHECK(name_of(taken[0]) == "r2");
  CHECK(name_of(taken[1]) == "r4");
  CHECK(pending.size() == 2);
  CHECK(name_of(pending.oldest()) == "r1");
  pending.erase(tags[1]);
  CHECK(name_of(pending.oldest()) == "r5");
  CHECK(pending.find(tags[2]) == nullptr);
}

TEST_CASE("a held request has bytes of its own, and take() gives its frames back in order") {
  PendingRequests pending;
  const auto now = Clock::now();
  PendingRequests::Tag tag = 0;
  {
    const Multipart a = body("a");
    tag = hold(pending, a, now);
    const HeldRequest& held = pending.find(tag)->request;
    CHECK(held.frames() == 3);
    CHECK(held.bytes() == a.bytes());
    CHECK(held.frame_view(2).data() != a[2].data());  // copied: it pins no read buffer
  }                                                   // the message it was held from is gone
  HeldRequest& held = pending.find(tag)->request;
  CHECK(name_of(*pending.find(tag)) == "a");
  const Multipart back = held.take();
  REQUIRE(back.size() == 3);
  CHECK(back.frame_view(0) == "id");
  CHECK(back.frame_view(1).empty());
  CHECK(back.frame_view(2) == body("a").frame_view(2));
  CHECK(back.bytes() == body("a").bytes());
  CHECK(held.empty());
  CHECK(held.bytes() == 0);
}

TEST_CASE("a frame over kPackedFrameMax is shared, not copied, and keeps its place") {
  const std::string big(HeldRequest::kPackedFrameMax + 1, 'b');
  Multipart m;
  m.push_back(std::string_view("id"));
  m.push_back(std::string_view(big));
  m.push_back(std::string_view(""));
  m.push_back(std::string_view("tail"));
  HeldRequest held;
  held.hold(m);
  CHECK(held.frames() == 4);
  CHECK(held.bytes() == m.bytes());
  CHECK(held.frame_view(1).data() == m[1].data());  // shared
  CHECK(held.frame_view(3) == "tail");
  CHECK(held.frame_view(3).data() != m[3].data());  // copied
  const Multipart back = held.take();
  REQUIRE(back.size() == 4);
  CHECK(back.frame_view(0) == "id");
  CHECK(back[1].data() == m[1].data());
  CHECK(back.frame_view(2).empty());
  CHECK(back.frame_view(3) == "tail");
  // Held again after a take, the copy starts afresh.
  held.hold(body("again"));
  CHECK(held.frames() == 3);
  CHECK(held.frame_view(2).substr(0, 5) == "again");
}

TEST_CASE("take_if hands back requests with bytes of their own: they may wait in the queue") {
  PendingRequests pending;
  const auto now = Clock::now();
  std::size_t held = 0;
  {
    const Multipart m = body("m");
    for (; held < 5000; ++held) hold(pending, m, now);  // past the slots a table keeps
  }                                                     // the message they were held from is gone
  auto taken = pending.take_if([](const PendingRequest&) { return true; });
  REQUIRE(taken.size() == held);
  CHECK(pending.empty());
  for (auto& p : taken) {
    const Multipart back = p.request.take();
    REQUIRE(back.size() == 3);
    CHECK(back.frame_view(2) == body("m").frame_view(2));
  }
}
