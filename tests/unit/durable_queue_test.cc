// DurableQueue: the queue with its optional spool, grouped by property: what is accepted
// survives a restart, a record is done only once its message is known delivered, requeued
// requests obey the overflow policy, and without a spool it is the plain bounded queue.
#include "tidepool/proxy/durable_queue.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "temp_dir.h"

using tidepool::protocol::Multipart;
using tidepool::proxy::Clock;
using tidepool::proxy::DurableQueue;
using tidepool::proxy::FsyncPolicy;
using tidepool::proxy::Overflow;
using tidepool::proxy::QueuedMessage;
using tidepool::proxy::RouteConfig;
using tidepool::proxy::SpoolConfig;
using tidepool::test::TempDir;
using Refusal = DurableQueue::Offered::Refusal;

namespace {

RouteConfig config(const std::string& spool_dir = "", Overflow overflow = Overflow::kBlock,
                   std::size_t max_messages = 100) {
  RouteConfig c;
  c.name = "jobs";
  c.queue.max_messages = max_messages;
  c.queue.overflow = overflow;
  if (!spool_dir.empty()) c.spool = SpoolConfig{spool_dir, FsyncPolicy::kAlways, 100};
  return c;
}

Multipart message(const std::string& body) {
  Multipart m;
  m.push_back(std::string_view(body));
  return m;
}

std::string body(const QueuedMessage& q) { return std::string(q.message.frame_view(0)); }

// Offers `count` messages "0", "1", … and commits them as one read batch.
void fill(DurableQueue& queue, int count) {
  for (int i = 0; i < count; ++i) {
    REQUIRE(queue.offer(message(std::to_string(i)), Clock::now()).refused == Refusal::kNone);
  }
  REQUIRE(queue.commit() == 0);
}

// Runs `use` on a fresh spooled queue, closes it as at exit, and returns what the next start
// replays, in order (the spool's directory lock allows one open queue at a time).
template <typename Use>
std::vector<std::string> replayed_after(const RouteConfig& c, const Use& use) {
  {
    DurableQueue queue(c);
    queue.open(Clock::now());
    REQUIRE(queue.spool() != nullptr);
    use(queue);
    (void)queue.close();
  }
  DurableQueue again(c);
  again.open(Clock::now());
  std::vector<std::string> bodies;
  while (!again.empty()) {
    QueuedMessage q = again.pop();
    CHECK(q.replayed);
    bodies.push_back(body(q));
  }
  return bodies;
}

}  // namespace

TEST_CASE("without a spool: a bounded FIFO; close drops and counts everything") {
  DurableQueue queue(config("", Overflow::kDropNewest, 3));
  queue.open(Clock::now());
  CHECK(queue.spool() == nullptr);
  for (int i = 0; i < 3; ++i) {
    CHECK(queue.offer(message(std::to_string(i)), Clock::now()).refused == Refusal::kNone);
  }
  CHECK(queue.offer(message("x"), Clock::now()).refused == Refusal::kQueueFull);
  CHECK(queue.commit() == 0);
  CHECK(body(queue.pop()) == "0");
  queue.forwarded(
      0, [] { return std::uint64_t{1}; }, 1000);  // no-ops without a spool
  const auto at_exit = queue.close();
  CHECK(at_exit.dropped == 2);
  CHECK(at_exit.kept == 0);
}

TEST_CASE("durability: what was accepted and not delivered is replayed, in order") {
  TempDir dir;
  const auto replay = replayed_after(config(dir.path()), [](DurableQueue& queue) {
    fill(queue, 5);
    const auto at_exit = queue.close();
    CHECK(at_exit.kept == 5);
    CHECK(at_exit.dropped == 0);
    CHECK(at_exit.synced);
  });
  CHECK(replay == std::vector<std::string>{"0", "1", "2", "3", "4"});
}

TEST_CASE("a forwarded record is done only once the trail passed it or every peer is gone") {
  // Forwarded toward one peer whose pipe holds `hwm` = 1 message (the trail adds libzmq's
  // engine batch): still held in this process, so not done.
  const auto forward_all = [](DurableQueue& queue) {
    fill(queue, 3);
    for (int i = 0; i < 3; ++i) {
      const QueuedMessage q = queue.pop();
      queue.forwarded(
          q.spool_sequence, [] { return std::uint64_t{1}; }, 1);
    }
  };
  TempDir held;
  CHECK(replayed_after(config(held.path()), forward_all).size() == 3);
  // The backend's connections are gone, and libzmq's pipes with them: all delivered.
  TempDir gone;
  CHECK(replayed_after(config(gone.path()), [&](DurableQueue& queue) {
          forward_all(queue);
          queue.all_delivered();
        }).empty());
  // Or enough messages (here without records: the fast path) followed them into the pipes.
  TempDir passed;
  CHECK(replayed_after(config(passed.path()), [&](DurableQueue& queue) {
          forward_all(queue);
          for (int i = 0; i < 10000; ++i)
            queue.forwarded(
                0, [] { return std::uint64_t{1}; }, 1);
        }).empty());
}

TEST_CASE("request-reply: a record is done when its reply comes, in any order") {
  const auto send_all = [](DurableQueue& queue) {
    fill(queue, 3);
    std::vector<std::uint64_t> sequences;
    for (int i = 0; i < 3; ++i) {
      const QueuedMessage q = queue.pop();
      queue.awaiting(q.spool_sequence);
      sequences.push_back(q.spool_sequence);
    }
    return sequences;
  };
  TempDir newest;
  // The newest answered first: the others still wait, and done is a watermark.
  CHECK(replayed_after(config(newest.path()), [&](DurableQueue& queue) {
          queue.finished(send_all(queue)[2]);
        }) == std::vector<std::string>{"0", "1", "2"});
  TempDir all;
  CHECK(replayed_after(config(all.path()), [&](DurableQueue& queue) {
          for (const auto sequence : send_all(queue)) queue.finished(sequence);
        }).empty());
}

TEST_CASE("requeue: block keeps every request, drop-newest refuses the newest past the bound") {
  const auto lost = [] {
    std::vector<QueuedMessage> requests;
    for (const char* b : {"a", "b", "c"}) {
      requests.push_back(QueuedMessage{message(b), Clock::now(), 0, false});
    }
    return requests;
  };
  {
    DurableQueue queue(config("", Overflow::kBlock, 2));
    CHECK(queue.requeue(lost()) == 0);
    CHECK(queue.size() == 3);
    CHECK(body(queue.pop()) == "a");
  }
  {
    DurableQueue queue(config("", Overflow::kDropNewest, 2));
    CHECK(queue.requeue(lost()) == 1);
    CHECK(body(queue.pop()) == "a");
    CHECK(body(queue.pop()) == "b");
    CHECK(queue.empty());
  }
  {
    DurableQueue queue(config("", Overflow::kDropOldest, 2));
    CHECK(queue.requeue(lost()) == 1);
    CHECK(body(queue.pop()) == "b");
    CHECK(body(queue.pop()) == "c");
  }
}

TEST_CASE("expire: messages older than the ttl leave the head, their records done") {
  TempDir dir;
  CHECK(replayed_after(config(dir.path()), [](DurableQueue& queue) {
          fill(queue, 2);
          CHECK(queue.expire(Clock::now() + std::chrono::hours(1), std::chrono::seconds(1)) == 2);
          CHECK(queue.empty());
        }).empty());
}
