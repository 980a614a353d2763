// DeliveryWindow: when a spooled message counts as delivered (trail, any-order delivery,
// finished heads) and the watermark it allows.
#include "tidepool/proxy/delivery_window.h"

#include <doctest/doctest.h>

using tidepool::proxy::DeliveryWindow;

TEST_CASE("a forwarded message is delivered once more than the trail followed it") {
  DeliveryWindow window(3);
  CHECK(window.safe() == 0);
  for (std::uint64_t s = 1; s <= 4; ++s) window.forwarded(s);
  CHECK(window.safe() == 0);  // 1 has 3 after it: libzmq may still hold it
  window.forwarded(5);
  CHECK(window.safe() == 1);
  window.forwarded(6);
  CHECK(window.safe() == 2);
  CHECK(window.outstanding() == 4);
}

TEST_CASE("messages without a record (fast path) advance the trail too") {
  DeliveryWindow window(2);
  window.forwarded(7);
  CHECK(window.safe() == 6);
  window.forwarded(0);
  window.forwarded(0);
  CHECK(window.safe() == 6);
  window.forwarded(0);
  CHECK(window.safe() == 7);
}

TEST_CASE("delivered in any order: the watermark is the lowest undelivered minus one") {
  DeliveryWindow window;
  for (std::uint64_t s = 10; s <= 14; ++s) window.awaiting(s);
  CHECK(window.safe() == 9);
  window.delivered(12);
  window.delivered(14);
  CHECK(window.safe() == 9);
  window.delivered(10);
  CHECK(window.safe() == 10);
  window.delivered(11);
  CHECK(window.safe() == 12);
  window.delivered(13);
  CHECK(window.safe() == 14);
  window.delivered(99);  // unknown: ignored
  CHECK(window.safe() == 14);
}

TEST_CASE("evicted or expired messages finish only what nothing earlier still waits for") {
  DeliveryWindow window(100);
  window.forwarded(1);
  window.forwarded(2);
  window.finished_through(5);  // 3..5 dropped from the queue's head
  CHECK(window.safe() == 0);   // 1 and 2 may still be in libzmq's pipes
  window.all_delivered();
  CHECK(window.safe() == 5);
  window.finished_through(8);
  CHECK(window.safe() == 8);
}

TEST_CASE("a smaller trail releases the excess at once") {
  DeliveryWindow window(10);
  for (std::uint64_t s = 1; s <= 5; ++s) window.forwarded(s);
  CHECK(window.safe() == 0);
  window.set_trail(2);
  CHECK(window.safe() == 2);
}

TEST_CASE("a message delivered before its trail ran out is not delivered twice") {
  DeliveryWindow window(1);
  window.forwarded(1);
  window.delivered(1);
  CHECK(window.safe() == 1);
  window.forwarded(2);
  window.forwarded(3);
  CHECK(window.safe() == 1);  // 2 and 3 still trail
  CHECK(window.outstanding() == 2);
  window.forwarded(0);
  CHECK(window.safe() == 2);
  CHECK(window.outstanding() == 1);
}
