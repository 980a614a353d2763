// Ring, grouped by property: FIFO order from both ends across wrap-around and growth; every
// element is destroyed exactly once (clear, pop, trim, destruction); trim keeps a busy ring.
#include "tidepool/proxy/ring.h"

#include <doctest/doctest.h>

#include <deque>
#include <memory>
#include <random>

using tidepool::proxy::Ring;

namespace {

// Move-only, and counts live instances, so a leaked or doubly destroyed element shows.
struct Tracked {
  static inline int live = 0;
  std::unique_ptr<int> value;
  explicit Tracked(int v) : value(std::make_unique<int>(v)) { ++live; }
  Tracked(Tracked&& other) noexcept : value(std::move(other.value)) { ++live; }
  Tracked& operator=(Tracked&&) = delete;
  Tracked(const Tracked&) = delete;
  Tracked& operator=(const Tracked&) = delete;
  ~Tracked() { --live; }
};

}  // namespace

TEST_CASE("a ring is a deque: same results as std::deque for random pushes and pops at both ends") {
  Ring<Tracked> ring;
  std::deque<int> model;
  std::mt19937 random(42);
  int next = 0;
  for (int step = 0; step < 20000; ++step) {
    const auto op = random() % 5;
    if (op <= 1) {
      ring.push_back(Tracked(next));
      model.push_back(next++);
    } else if (op == 2) {
      ring.push_front(Tracked(next));
      model.push_front(next++);
    } else if (!model.empty() && op == 3) {
      CHECK(*ring.front().value == model.front());
      ring.pop_front();
      model.pop_front();
    } else if (!model.empty()) {
      CHECK(*ring.back().value == model.back());
      ring.pop_back();
      model.pop_back();
    }
    REQUIRE(ring.size() == model.size());
    if (!model.empty()) {
      const std::size_t i = random() % model.size();
      CHECK(*ring[i].value == model[i]);
    }
    if (step % 1000 == 0) ring.trim();  // keeps a non-empty ring as it is
  }
  CHECK(Tracked::live == static_cast<int>(model.size()));
  ring.clear();
  CHECK(ring.empty());
  CHECK(Tracked::live == 0);
}

TEST_CASE("elements left in a ring are destroyed with it, after growth and wrap-around") {
  {
    Ring<Tracked> ring;
    for (int i = 0; i < 10; ++i) ring.push_back(Tracked(i));
    for (int i = 0; i < 7; ++i) ring.pop_front();  // the head moves on...
    for (int i = 10; i < 100; ++i) ring.push_back(Tracked(i));  // ...and the array wraps, then grows
    CHECK(*ring.front().value == 7);
    CHECK(*ring.back().value == 99);
    CHECK(Tracked::live == 93);
  }
  CHECK(Tracked::live == 0);
}

TEST_CASE("an emptied ring can be trimmed and used again") {
  Ring<Tracked> ring;
  for (int i = 0; i < 1000; ++i) ring.push_back(Tracked(i));
  while (!ring.empty()) ring.pop_front();
  ring.trim();
  ring.push_front(Tracked(1));
  ring.push_front(Tracked(0));
  CHECK(*ring.front().value == 0);
  CHECK(*ring.back().value == 1);
  ring.clear();
  CHECK(Tracked::live == 0);
}
