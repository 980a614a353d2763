// InFlight: per-key FIFO completion, binary keys, expiry in age order, the max_entries bound.
#include "tidepool/proxy/in_flight.h"

#include <doctest/doctest.h>

#include <chrono>
#include <cstddef>
#include <string>

using tidepool::proxy::InFlight;
using namespace std::chrono_literals;

namespace {

const InFlight::Clock::time_point t0 = InFlight::Clock::now();

InFlight::Clock::time_point at(long milliseconds) {
  return t0 + std::chrono::milliseconds(milliseconds);
}

}  // namespace

TEST_CASE("empty at start") {
  InFlight in_flight(10);
  CHECK(in_flight.empty());
  CHECK(in_flight.size() == 0);
  CHECK_FALSE(in_flight.complete("x").has_value());
}

TEST_CASE("per-key FIFO completion") {
  InFlight in_flight(10);
  CHECK_FALSE(in_flight.add("a", at(1)));
  CHECK_FALSE(in_flight.add("b", at(2)));
  CHECK_FALSE(in_flight.add("a", at(3)));
  CHECK_FALSE(in_flight.add("a", at(4)));
  CHECK(in_flight.size() == 4);
  CHECK(in_flight.complete("a") == at(1));
  CHECK(in_flight.complete("a") == at(3));
  CHECK(in_flight.size() == 2);
  CHECK(in_flight.complete("b") == at(2));
  CHECK(in_flight.complete("a") == at(4));
  CHECK_FALSE(in_flight.complete("a").has_value());
  CHECK_FALSE(in_flight.complete("b").has_value());
  CHECK(in_flight.empty());
}

TEST_CASE("a key completed to empty can be reused") {
  InFlight in_flight(10);
  in_flight.add("a", at(1));
  CHECK(in_flight.complete("a") == at(1));
  in_flight.add("a", at(5));
  in_flight.add("a", at(6));
  CHECK(in_flight.complete("a") == at(5));
  CHECK(in_flight.complete("a") == at(6));
  CHECK(in_flight.empty());
}

TEST_CASE("completing an unknown key changes nothing") {
  InFlight in_flight(10);
  in_flight.add("a", at(1));
  CHECK_FALSE(in_flight.complete("zz").has_value());
  CHECK_FALSE(in_flight.complete("").has_value());
  CHECK(in_flight.size() == 1);
  CHECK(in_flight.complete("a") == at(1));
}

TEST_CASE("keys are binary-safe (ROUTER routing ids)") {
  InFlight in_flight(10);
  const std::string id1("\x00\x80\x00\x00\x01", 5);
  const std::string id2("\x00\x80\x00\x00\x02", 5);
  in_flight.add(id1, at(1));
  in_flight.add(id2, at(2));
  CHECK(in_flight.complete(id2) == at(2));
  CHECK_FALSE(in_flight.complete(std::string("\x00", 1)).has_value());
  CHECK(in_flight.complete(id1) == at(1));
}

TEST_CASE("expire removes entries sent before the deadline, in age order across keys") {
  InFlight in_flight(10);
  in_flight.add("a", at(1));
  in_flight.add("b", at(2));
  in_flight.add("a", at(3));
  in_flight.add("c", at(4));
  CHECK(in_flight.expire(at(3)) == 2);  // a@1, b@2; a@3 is not before the deadline
  CHECK(in_flight.size() == 2);
  CHECK_FALSE(in_flight.complete("b").has_value());
  CHECK(in_flight.complete("a") == at(3));
  CHECK(in_flight.expire(at(100)) == 1);  // c@4
  CHECK(in_flight.empty());
  CHECK_FALSE(in_flight.complete("c").has_value());
  CHECK(in_flight.expire(at(1000)) == 0);
}

TEST_CASE("expire after out-of-order completions") {
  InFlight in_flight(10);
  in_flight.add("a", at(1));
  in_flight.add("b", at(2));
  in_flight.add("c", at(3));
  CHECK(in_flight.complete("b") == at(2));
  CHECK(in_flight.expire(at(3)) == 1);  // only a@1 is left before the deadline
  CHECK(in_flight.size() == 1);
  CHECK(in_flight.complete("c") == at(3));
}

TEST_CASE("max_entries: adding beyond it forgets the oldest and returns true") {
  InFlight in_flight(2);
  CHECK_FALSE(in_flight.add("a", at(1)));
  CHECK_FALSE(in_flight.add("b", at(2)));
  CHECK(in_flight.add("c", at(3)));  // a@1 forgotten
  CHECK(in_flight.size() == 2);
  CHECK_FALSE(in_flight.complete("a").has_value());
  CHECK(in_flight.complete("b") == at(2));
  CHECK(in_flight.complete("c") == at(3));
}

TEST_CASE("max_entries eviction of a chain head keeps the rest of that key's chain") {
  InFlight in_flight(3);
  in_flight.add("a", at(1));
  in_flight.add("a", at(2));
  in_flight.add("b", at(3));
  CHECK(in_flight.add("a", at(4)));  // a@1 forgotten; a@2, a@4 remain in order
  CHECK(in_flight.size() == 3);
  CHECK(in_flight.complete("a") == at(2));
  CHECK(in_flight.complete("a") == at(4));
  CHECK(in_flight.complete("b") == at(3));
  CHECK(in_flight.empty());
}

TEST_CASE("size after mixed operations on 100k entries") {
  constexpr std::size_t kEntries = 100'000;
  constexpr std::size_t kKeys = 1000;
  InFlight in_flight(kEntries);
  for (std::size_t i = 0; i < kEntries; ++i) {
    REQUIRE_FALSE(in_flight.add("k" + std::to_string(i % kKeys), at(static_cast<long>(i))));
  }
  CHECK(in_flight.size() == kEntries);
  // One more: the oldest (k0@0) goes.
  CHECK(in_flight.add("new", at(static_cast<long>(kEntries))));
  CHECK(in_flight.size() == kEntries);
  // k0's head is now k0@1000.
  CHECK(in_flight.complete("k0") == at(1000));
  // Complete the first outstanding request of keys 1..499: each one's head is its i.
  for (std::size_t key = 1; key < kKeys / 2; ++key) {
    REQUIRE(in_flight.complete("k" + std::to_string(key)) == at(static_cast<long>(key)));
  }
  CHECK(in_flight.size() == kEntries - 1 - 499);
  // Expire everything sent before t0+50000 ms: of the 50000 entries i < 50000, k0@0 was
  // forgotten, k0@1000 and 499 heads were completed.
  CHECK(in_flight.expire(at(50'000)) == 50'000 - 1 - 1 - 499);
  CHECK(in_flight.size() == kEntries - 50'000 + 1);  // 50000 left of the originals + "new"
  // k1@1 was completed and k1@1001..k1@49001 expired: k1@50001 is its oldest now.
  CHECK(in_flight.complete("k1") == at(50'001));
  CHECK(in_flight.complete("new") == at(static_cast<long>(kEntries)));
  CHECK(in_flight.expire(at(static_cast<long>(kEntries) + 1)) == 50'000 - 1);
  CHECK(in_flight.empty());
}
