// MessageQueue: FIFO order, the count and byte bounds under each overflow policy, byte
// accounting, push_front, expiry and clearing.
#include "tidepool/proxy/queue.h"

#include <doctest/doctest.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

using tidepool::protocol::Multipart;
using tidepool::proxy::Clock;
using tidepool::proxy::MessageQueue;
using tidepool::proxy::OfferResult;
using tidepool::proxy::Overflow;
using tidepool::proxy::QueuedMessage;
using namespace std::chrono_literals;

namespace {

// A one-frame message of exactly `bytes` bytes whose content starts with `tag`, so the test can
// tell messages apart after they went through the queue.
Multipart message(const std::string& tag, std::size_t bytes) {
  std::string payload = tag;
  payload.resize(bytes, '.');
  Multipart m;
  m.push_back(std::string_view(payload));
  return m;
}

// Two frames: a routing-id-like frame and a body; bytes counts both.
Multipart two_frames(std::size_t first, std::size_t second) {
  Multipart m;
  m.push_back(std::string_view(std::string(first, 'a')));
  m.push_back(std::string_view(std::string(second, 'b')));
  return m;
}

std::string tag_of(const QueuedMessage& q, std::size_t tag_length = 1) {
  return std::string(q.message.frame_view(0).substr(0, tag_length));
}

// Pops everything and returns the tags in order.
std::vector<std::string> drain(MessageQueue& queue) {
  std::vector<std::string> tags;
  while (!queue.empty()) tags.push_back(tag_of(queue.pop()));
  return tags;
}

const Clock::time_point t0 = Clock::now();

}  // namespace

TEST_CASE("a new queue is empty and reports its bounds") {
  MessageQueue queue(10, 1000, Overflow::kBlock);
  CHECK(queue.empty());
  CHECK(queue.size() == 0);
  CHECK(queue.bytes() == 0);
  CHECK(queue.max_messages() == 10);
  CHECK(queue.max_bytes() == 1000);
  CHECK_FALSE(queue.full());
  CHECK_FALSE(queue.oldest().has_value());
}

TEST_CASE("bytes counts every frame of a multipart message") {
  MessageQueue queue(10, 1000, Overflow::kBlock);
  CHECK(queue.offer(two_frames(5, 37), t0).accepted);
  CHECK(queue.bytes() == 42);
  CHECK(queue.pop().message.size() == 2);
  CHECK(queue.bytes() == 0);
}

TEST_CASE("FIFO order over many messages") {
  MessageQueue queue(5000, 1 << 30, Overflow::kBlock);
  for (int i = 0; i < 3000; ++i) {
    REQUIRE(queue.offer(message(std::to_string(i) + ":", 10), t0).accepted);
  }
  CHECK(queue.size() == 3000);
  CHECK(queue.bytes() == 30000);
  for (int i = 0; i < 3000; ++i) {
    const QueuedMessage head = queue.pop();
    const std::string expected = std::to_string(i) + ":";
    REQUIRE(head.message.frame_view(0).substr(0, expected.size()) == expected);
  }
  CHECK(queue.empty());
  CHECK(queue.bytes() == 0);
}

TEST_CASE("block: the count bound makes full(), and offers are still accepted") {
  MessageQueue queue(3, 1000, Overflow::kBlock);
  CHECK(queue.offer(message("a", 10), t0).accepted);
  CHECK(queue.offer(message("b", 10), t0).accepted);
  CHECK_FALSE(queue.full());
  CHECK(queue.offer(message("c", 10), t0).accepted);
  CHECK(queue.full());
  // The route stops reading while full(); a message already read must never be lost.
  const OfferResult extra = queue.offer(message("d", 10), t0);
  CHECK(extra.accepted);
  CHECK(extra.evicted == 0);
  CHECK(extra.evicted_bytes == 0);
  CHECK(queue.size() == 4);
  CHECK(queue.bytes() == 40);
  CHECK(drain(queue) == std::vector<std::string>{"a", "b", "c", "d"});
  CHECK_FALSE(queue.full());
}

TEST_CASE("block: the byte bound makes full() at or above max_bytes") {
  MessageQueue queue(100, 100, Overflow::kBlock);
  CHECK(queue.offer(message("a", 60), t0).accepted);
  CHECK_FALSE(queue.full());
  CHECK(queue.offer(message("b", 39), t0).accepted);
  CHECK(queue.bytes() == 99);
  CHECK_FALSE(queue.full());
  CHECK(queue.offer(message("c", 1), t0).accepted);
  CHECK(queue.bytes() == 100);
  CHECK(queue.full());
  // Passed by at most one message under block (class comment).
  CHECK(queue.offer(message("d", 50), t0).accepted);
  CHECK(queue.bytes() == 150);
  CHECK(queue.full());
  queue.pop();  // a: 60
  CHECK(queue.bytes() == 90);
  CHECK_FALSE(queue.full());
}

TEST_CASE("drop-newest: refuses at the count bound, queue unchanged") {
  MessageQueue queue(2, 1000, Overflow::kDropNewest);
  CHECK(queue.offer(message("a", 10), t0).accepted);
  CHECK(queue.offer(message("b", 20), t0).accepted);
  CHECK(queue.full());
  const OfferResult refused = queue.offer(message("c", 5), t0);
  CHECK_FALSE(refused.accepted);
  CHECK(refused.evicted == 0);
  CHECK(refused.evicted_bytes == 0);
  CHECK(queue.size() == 2);
  CHECK(queue.bytes() == 30);
  CHECK(drain(queue) == std::vector<std::string>{"a", "b"});
}

TEST_CASE("drop-newest: refuses a message that would pass the byte bound") {
  MessageQueue queue(100, 100, Overflow::kDropNewest);
  CHECK(queue.offer(message("a", 60), t0).accepted);
  CHECK_FALSE(queue.offer(message("b", 41), t0).accepted);
  CHECK(queue.bytes() == 60);
  CHECK(queue.size() == 1);
  // Exactly filling the bound is allowed.
  CHECK(queue.offer(message("c", 40), t0).accepted);
  CHECK(queue.bytes() == 100);
  CHECK(queue.full());
  CHECK_FALSE(queue.offer(message("d", 1), t0).accepted);
  CHECK(drain(queue) == std::vector<std::string>{"a", "c"});
}

TEST_CASE("drop-oldest: evicts the head at the count bound and reports its bytes") {
  MessageQueue queue(3, 1000, Overflow::kDropOldest);
  CHECK(queue.offer(message("a", 10), t0).accepted);
  CHECK(queue.offer(message("b", 20), t0 + 1ms).accepted);
  CHECK(queue.offer(message("c", 30), t0 + 2ms).accepted);
  const OfferResult result = queue.offer(message("d", 5), t0 + 3ms);
  CHECK(result.accepted);
  CHECK(result.evicted == 1);
  CHECK(result.evicted_bytes == 10);
  CHECK(queue.size() == 3);
  CHECK(queue.bytes() == 55);
  CHECK(queue.oldest() == t0 + 1ms);
  CHECK(drain(queue) == std::vector<std::string>{"b", "c", "d"});
}

TEST_CASE("drop-oldest: evicts as many heads as the byte bound needs") {
  MessageQueue queue(100, 100, Overflow::kDropOldest);
  CHECK(queue.offer(message("a", 40), t0).accepted);
  CHECK(queue.offer(message("b", 40), t0).accepted);
  CHECK(queue.offer(message("c", 20), t0).accepted);
  CHECK(queue.bytes() == 100);
  // 100 + 50 > 100: drop a (60 + 50 > 100), drop b (20 + 50 <= 100).
  const OfferResult result = queue.offer(message("d", 50), t0);
  CHECK(result.accepted);
  CHECK(result.evicted == 2);
  CHECK(result.evicted_bytes == 80);
  CHECK(queue.bytes() == 70);
  CHECK(queue.size() == 2);
  // Room already: nothing evicted.
  const OfferResult fits = queue.offer(message("e", 30), t0);
  CHECK(fits.accepted);
  CHECK(fits.evicted == 0);
  CHECK(fits.evicted_bytes == 0);
  CHECK(queue.bytes() == 100);
  CHECK(drain(queue) == std::vector<std::string>{"c", "d", "e"});
}

TEST_CASE("drop-oldest: a message as large as max_bytes empties the queue and is kept") {
  MessageQueue queue(100, 100, Overflow::kDropOldest);
  CHECK(queue.offer(message("a", 30), t0).accepted);
  CHECK(queue.offer(message("b", 30), t0).accepted);
  const OfferResult result = queue.offer(message("c", 100), t0);
  CHECK(result.accepted);
  CHECK(result.evicted == 2);
  CHECK(result.evicted_bytes == 60);
  CHECK(queue.size() == 1);
  CHECK(queue.bytes() == 100);
}

TEST_CASE("byte accounting through offer, pop, push_front, expire and clear") {
  MessageQueue queue(100, 10000, Overflow::kBlock);
  queue.offer(message("a", 11), t0);
  queue.offer(two_frames(3, 4), t0 + 1ms);  // 7
  queue.offer(message("c", 100), t0 + 2ms);
  CHECK(queue.bytes() == 118);

  QueuedMessage head = queue.pop();
  CHECK(head.message.bytes() == 11);
  CHECK(head.enqueued == t0);
  CHECK(queue.bytes() == 107);
  CHECK(queue.size() == 2);

  // A send that would block puts the head back: bytes and order are restored.
  queue.push_front(std::move(head));
  CHECK(queue.bytes() == 118);
  CHECK(queue.size() == 3);
  CHECK(queue.oldest() == t0);

  // ttl 1 ms at t0+2ms: a (age 2 ms) expires, the two-frame one (age 1 ms, not > ttl) stays.
  const auto expired = queue.expire(t0 + 2ms, 1ms);
  CHECK(expired.first == 1);
  CHECK(expired.second == 11);
  CHECK(queue.bytes() == 107);
  CHECK(queue.size() == 2);

  const auto cleared = queue.clear();
  CHECK(cleared.first == 2);
  CHECK(cleared.second == 107);
  CHECK(queue.bytes() == 0);
  CHECK(queue.empty());
  CHECK_FALSE(queue.oldest().has_value());

  // Still usable after clear.
  queue.offer(message("z", 9), t0 + 5ms);
  CHECK(queue.bytes() == 9);
  CHECK(queue.oldest() == t0 + 5ms);
}

TEST_CASE("push_front is never refused, even on a full drop-newest queue") {
  MessageQueue queue(1, 10, Overflow::kDropNewest);
  CHECK(queue.offer(message("a", 10), t0).accepted);
  QueuedMessage head = queue.pop();
  CHECK(queue.offer(message("b", 10), t0 + 1ms).accepted);
  queue.push_front(std::move(head));
  CHECK(queue.size() == 2);
  CHECK(queue.bytes() == 20);
  CHECK(queue.full());
  CHECK(drain(queue) == std::vector<std::string>{"a", "b"});
}

TEST_CASE("expire drops only heads older than the ttl and keeps the order of the rest") {
  MessageQueue queue(100, 10000, Overflow::kBlock);
  for (int i = 0; i < 6; ++i) {
    queue.offer(message(std::string(1, static_cast<char>('a' + i)), 10), t0 + i * 10ms);
  }
  // now = t0+35ms, ttl 10ms: ages 35, 25, 15 are > 10; age 5 is not, nor -5, -15.
  const auto dropped = queue.expire(t0 + 35ms, 10ms);
  CHECK(dropped.first == 3);
  CHECK(dropped.second == 30);
  CHECK(queue.size() == 3);
  CHECK(queue.oldest() == t0 + 30ms);
  // Age exactly equal to the ttl is not "older than" it.
  const auto boundary = queue.expire(t0 + 40ms, 10ms);
  CHECK(boundary.first == 0);
  CHECK(boundary.second == 0);
  CHECK(drain(queue) == std::vector<std::string>{"d", "e", "f"});
}

TEST_CASE("expire stops at the first young head (FIFO, no reordering)") {
  MessageQueue queue(100, 10000, Overflow::kBlock);
  queue.offer(message("a", 1), t0 + 50ms);
  queue.offer(message("b", 1), t0);  // older, but behind a young head
  const auto dropped = queue.expire(t0 + 55ms, 10ms);
  CHECK(dropped.first == 0);
  CHECK(dropped.second == 0);
  CHECK(drain(queue) == std::vector<std::string>{"a", "b"});
}

TEST_CASE("expire on an empty queue drops nothing") {
  MessageQueue queue(10, 10, Overflow::kDropOldest);
  const auto dropped = queue.expire(t0 + 1h, 0ms);
  CHECK(dropped.first == 0);
  CHECK(dropped.second == 0);
}

TEST_CASE("oldest() is the head's enqueue time") {
  MessageQueue queue(10, 1000, Overflow::kBlock);
  CHECK_FALSE(queue.oldest().has_value());
  queue.offer(message("a", 1), t0 + 7ms);
  queue.offer(message("b", 1), t0 + 9ms);
  CHECK(queue.oldest() == t0 + 7ms);
  QueuedMessage head = queue.pop();
  CHECK(queue.oldest() == t0 + 9ms);
  queue.push_front(std::move(head));
  CHECK(queue.oldest() == t0 + 7ms);
  queue.pop();
  queue.pop();
  CHECK_FALSE(queue.oldest().has_value());
}

TEST_CASE("spool sequences: kept through pop/push_front, reported by eviction, expiry, clear") {
  MessageQueue queue(2, 1000, Overflow::kDropOldest);
  CHECK(queue.offer(message("a", 10), t0, 7).accepted);
  CHECK(queue.offer(message("b", 10), t0 + 1ms, 8).accepted);
  QueuedMessage head = queue.pop();
  CHECK(head.spool_sequence == 7);
  queue.push_front(std::move(head));
  // Evicting a and b to make room reports the largest sequence evicted.
  OfferResult result = queue.offer(message("c", 10), t0 + 2ms, 9);
  CHECK(result.evicted == 1);
  CHECK(result.evicted_sequence == 7);
  result = queue.offer(message("d", 10), t0 + 3ms);  // no sequence (a requeued request)
  CHECK(result.evicted_sequence == 8);
  result = queue.offer(message("e", 10), t0 + 4ms, 10);
  CHECK(result.evicted_sequence == 9);
  result = queue.offer(message("f", 10), t0 + 5ms, 11);
  CHECK(result.evicted == 1);
  CHECK(result.evicted_sequence == 0);  // d had none

  std::uint64_t last = 99;
  auto expired = queue.expire(t0 + 5ms, 2ms, &last);
  CHECK(expired.first == 0);
  CHECK(last == 0);
  expired = queue.expire(t0 + 7ms, 2ms, &last);
  CHECK(expired.first == 1);  // e (age 3 ms); f (age 2 ms) stays
  CHECK(last == 10);

  queue.push_front(QueuedMessage{message("g", 1), t0});  // no sequence
  std::size_t spooled = 0;
  const auto cleared = queue.clear(&spooled);
  CHECK(cleared.first == 2);
  CHECK(spooled == 1);
}

TEST_CASE("would_accept and push_back (spool replay ignores the bounds)") {
  MessageQueue newest(1, 100, Overflow::kDropNewest);
  CHECK(newest.would_accept(100));
  CHECK_FALSE(newest.would_accept(101));
  newest.push_back(QueuedMessage{message("a", 60), t0, 1});
  newest.push_back(QueuedMessage{message("b", 60), t0, 2});  // over both bounds: kept
  CHECK(newest.size() == 2);
  CHECK(newest.bytes() == 120);
  CHECK_FALSE(newest.would_accept(1));
  CHECK(drain(newest) == std::vector<std::string>{"a", "b"});

  MessageQueue block(1, 100, Overflow::kBlock);
  block.push_back(QueuedMessage{message("a", 60), t0, 1});
  CHECK(block.would_accept(1000));  // block never refuses: the route stops reading instead
  MessageQueue oldest(1, 100, Overflow::kDropOldest);
  oldest.push_back(QueuedMessage{message("a", 60), t0, 1});
  CHECK(oldest.would_accept(100));  // by evicting
}

TEST_CASE("remove_spooled_after takes back the tail above a spool sequence, nothing else") {
  MessageQueue queue(10, 1000, Overflow::kBlock);
  queue.push_front(QueuedMessage{message("r", 5), t0});  // a requeued request: no sequence
  CHECK(queue.offer(message("a", 10), t0, 3).accepted);
  CHECK(queue.offer(message("b", 20), t0, 4).accepted);
  CHECK(queue.offer(message("c", 30), t0, 5).accepted);
  CHECK(queue.offer(message("d", 40), t0, 6).accepted);
  auto removed = queue.remove_spooled_after(6);
  CHECK(removed.first == 0);
  removed = queue.remove_spooled_after(4);
  CHECK(removed.first == 2);
  CHECK(removed.second == 70);
  CHECK(queue.bytes() == 35);
  // Stops at the first message at or below the sequence, also one without a sequence.
  removed = queue.remove_spooled_after(0);
  CHECK(removed.first == 2);
  CHECK(drain(queue) == std::vector<std::string>{"r"});
  CHECK(queue.remove_spooled_after(0).first == 0);
}

// The three regions (put back, packed, recent): order and bounds hold across them.
TEST_CASE("regions: a backlog past kRecentMax is packed, settle() packs what waited, order holds") {
  MessageQueue queue(100000, 1 << 30, Overflow::kDropOldest);
  constexpr int kCount = 5000;  // over kRecentMax: most of it is packed
  for (int i = 0; i < kCount; ++i) {
    REQUIRE(queue
                .offer(message(std::to_string(i) + ":", 64), t0 + std::chrono::microseconds(i),
                       static_cast<std::uint64_t>(i + 1))
                .accepted);
  }
  queue.push_front(QueuedMessage{message("p:", 64), t0});
  queue.settle(t0 + 1s);  // packs the recent ones too
  CHECK(queue.size() == kCount + 1);
  CHECK(queue.bytes() == (kCount + 1) * 64);
  // The tail is cut through the packed region, the head taken from put back then packed.
  CHECK(queue.remove_spooled_after(4000).first == 1000);
  CHECK(tag_of(queue.pop(), 2) == "p:");
  for (int i = 0; i < 4000; ++i) {
    const std::string expected = std::to_string(i) + ":";
    const QueuedMessage head = queue.pop();
    REQUIRE(head.message.frame_view(0).substr(0, expected.size()) == expected);
    REQUIRE(head.spool_sequence == static_cast<std::uint64_t>(i + 1));
  }
  CHECK(queue.empty());
  CHECK(queue.bytes() == 0);
}

TEST_CASE("regions: eviction and expiry take the oldest first wherever it is stored") {
  MessageQueue queue(2000, 1 << 30, Overflow::kDropOldest);
  for (int i = 0; i < 2000; ++i) {
    REQUIRE(queue.offer(message(std::to_string(i) + ":", 8), t0 + std::chrono::milliseconds(i))
                .accepted);
  }
  const OfferResult offered = queue.offer(message("new:", 8), t0 + 3s);
  CHECK(offered.evicted == 1);
  CHECK(tag_of(queue.pop(), 2) == "1:");
  const auto expired = queue.expire(t0 + 3s, 2s);  // enqueued before t0 + 1 s: 2..999
  CHECK(expired.first == 998);
  CHECK(tag_of(queue.pop(), 5) == "1000:");
  std::size_t spooled = 99;
  CHECK(queue.clear(&spooled).first == 1000);  // 1001..1999 and new
  CHECK(spooled == 0);
}
