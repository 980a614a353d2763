// PackedFifo, grouped by property: what goes in comes out byte for byte and in order; records
// carry their metadata; blocks are reused and freed; the tail can be cut off; large frames are
// moved, never copied, and never leaked (ASan checks the last).
#include "tidepool/proxy/packed_fifo.h"

#include <doctest/doctest.h>

#include <cstddef>
#include <string>
#include <vector>

using tidepool::protocol::Multipart;
using tidepool::proxy::Clock;
using tidepool::proxy::PackedFifo;
using tidepool::proxy::QueuedMessage;

namespace {

// A message of frames with these sizes; frame k of message `id` is filled with a pattern of
// both, so a byte out of place shows.
QueuedMessage message(int id, const std::vector<std::size_t>& sizes,
                      std::uint64_t spool_sequence = 0) {
  QueuedMessage q;
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    std::string frame(sizes[k], '\0');
    for (std::size_t i = 0; i < frame.size(); ++i) {
      frame[i] = static_cast<char>('a' + (static_cast<std::size_t>(id) * 7 + k * 3 + i) % 26);
    }
    q.message.push_back(std::string_view(frame));
  }
  q.enqueued = Clock::time_point(std::chrono::milliseconds(1000 + id));
  q.spool_sequence = spool_sequence;
  return q;
}

bool same(const Multipart& a, const Multipart& b) {
  if (a.size() != b.size() || a.bytes() != b.bytes()) return false;
  for (std::size_t k = 0; k < a.size(); ++k) {
    if (a.frame_view(k) != b.frame_view(k)) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("round trip: frames of every size class come out as they went in, in order") {
  const std::vector<std::vector<std::size_t>> shapes = {
      {0},
      {1},
      {33},
      {64},
      {PackedFifo::kPackedFrameMax},
      {PackedFifo::kPackedFrameMax + 1},
      {1 << 20},
      {5, 0, 64},
      {5, 0, 100000, 3},
      // Ten packed frames of the largest packed size: a record larger than a block.
      std::vector<std::size_t>(10, PackedFifo::kPackedFrameMax)};
  PackedFifo fifo;
  for (int round = 0; round < 3; ++round) {  // the second and third rounds reuse blocks
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      fifo.push_back(message(static_cast<int>(i), shapes[i], i + 1));
    }
    CHECK(fifo.size() == shapes.size());
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      const auto head = fifo.front();
      const QueuedMessage expected = message(static_cast<int>(i), shapes[i], i + 1);
      CHECK(head.bytes == expected.message.bytes());
      CHECK(head.spool_sequence == i + 1);
      CHECK(head.enqueued == expected.enqueued);
      QueuedMessage out = fifo.pop_front();
      CHECK(same(out.message, expected.message));
      CHECK(out.spool_sequence == i + 1);
      CHECK(out.enqueued == expected.enqueued);
    }
    CHECK(fifo.empty());
  }
}

TEST_CASE("the replayed flag survives packing") {
  PackedFifo fifo;
  QueuedMessage q = message(1, {10});
  q.replayed = true;
  fifo.push_back(std::move(q));
  fifo.push_back(message(2, {10}));
  CHECK(fifo.pop_front().replayed);
  CHECK_FALSE(fifo.pop_front().replayed);
}

TEST_CASE("many frames in one message (the network bounds none)") {
  PackedFifo fifo;
  const std::vector<std::size_t> sizes(70000, 1);  // more than a 16-bit count
  fifo.push_back(message(3, sizes));
  const QueuedMessage out = fifo.pop_front();
  CHECK(out.message.size() == 70000);
  CHECK(same(out.message, message(3, sizes).message));
}

TEST_CASE("memory: a 64-byte message costs at most 64 bytes beyond its payload") {
  PackedFifo fifo;
  constexpr std::size_t kCount = 100000;
  for (std::size_t i = 0; i < kCount; ++i) fifo.push_back(message(static_cast<int>(i), {64}));
  const double per_message = static_cast<double>(fifo.block_bytes()) / kCount - 64;
  CHECK(per_message <= 64);
  CHECK(per_message >= 40);  // the header alone: the measure is real
  while (!fifo.empty()) fifo.discard_front();
  // Emptied: one block is kept for reuse, the rest is freed.
  CHECK(fifo.block_bytes() == PackedFifo::kBlockBytes);
}

TEST_CASE("spooled() counts the records with a spool sequence") {
  PackedFifo fifo;
  fifo.push_back(message(1, {8}, 11));
  fifo.push_back(message(2, {8}, 0));
  fifo.push_back(message(3, {8}, 13));
  CHECK(fifo.spooled() == 2);
  fifo.discard_front();
  CHECK(fifo.spooled() == 1);
  fifo.discard_back();
  CHECK(fifo.spooled() == 0);
}

TEST_CASE("discard_back cuts the tail, across blocks, and the rest stays intact") {
  PackedFifo fifo;
  constexpr int kCount = 3000;  // ~5 blocks of 64-byte records
  for (int i = 0; i < kCount; ++i)
    fifo.push_back(message(i, {64}, static_cast<std::uint64_t>(i + 1)));
  // Take a few from the head so the first block is part-used, then cut back to 100 records.
  for (int i = 0; i < 50; ++i) fifo.discard_front();
  while (fifo.back().spool_sequence > 150) fifo.discard_back();
  CHECK(fifo.size() == 100);
  // Appending after the cut continues where the tail now is.
  fifo.push_back(message(9999, {64, 5000}, 10000));
  for (int i = 50; i < 150; ++i) {
    const QueuedMessage out = fifo.pop_front();
    CHECK(out.spool_sequence == static_cast<std::uint64_t>(i + 1));
    CHECK(same(out.message, message(i, {64}).message));
  }
  CHECK(same(fifo.pop_front().message, message(9999, {64, 5000}).message));
  CHECK(fifo.empty());
}

TEST_CASE("discard_back down to empty, then reuse") {
  PackedFifo fifo;
  for (int i = 0; i < 10; ++i) fifo.push_back(message(i, {100}));
  while (!fifo.empty()) fifo.discard_back();
  fifo.push_back(message(42, {100}));
  CHECK(same(fifo.pop_front().message, message(42, {100}).message));
}

TEST_CASE("large frames are moved, not copied: the payload pointer is the same") {
  PackedFifo fifo;
  QueuedMessage q = message(5, {8, PackedFifo::kPackedFrameMax + 100});
  const void* payload = q.message[1].data();
  fifo.push_back(std::move(q));
  const QueuedMessage out = fifo.pop_front();
  CHECK(out.message[1].data() == payload);
}

TEST_CASE("clear and destruction free the large frames they hold (LeakSanitizer)") {
  PackedFifo fifo;
  for (int i = 0; i < 20; ++i) fifo.push_back(message(i, {10, 20000}));
  fifo.clear();
  CHECK(fifo.empty());
  for (int i = 0; i < 20; ++i) fifo.push_back(message(i, {30000}));
  // The destructor frees the rest.
}
