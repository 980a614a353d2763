// ReplyQueues: per-client FIFOs of replies, grouped by property (order, isolation, bounds,
// delivery outcomes).
#include "tidepool/proxy/reply_queues.h"

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

using namespace tidepool::proxy;
using tidepool::protocol::Multipart;

namespace {

Multipart reply(const std::string& client, const std::string& body) {
  Multipart m;
  m.push_back(client);
  m.push_back(std::string_view{});
  m.push_back(body);
  return m;
}

std::string body_of(const Multipart& m) { return std::string(m.frame_view(m.size() - 1)); }

ReplyConfig limits(std::size_t messages, std::size_t bytes = 1 << 20, std::int64_t ms = 1000) {
  ReplyConfig c;
  c.max_messages = messages;
  c.max_bytes = bytes;
  c.timeout_ms = ms;
  return c;
}

}  // namespace

TEST_CASE("order: a client's replies leave in the order they came") {
  ReplyQueues queues(limits(10));
  const auto now = Clock::now();
  for (int i = 0; i < 5; ++i) queues.push(reply("a", std::to_string(i)), now);
  CHECK(queues.waiting(reply("a", "next")));
  std::vector<std::string> sent;
  const auto outcome = queues.drain([&](Multipart& m) {
    sent.push_back(body_of(m));
    return SendResult::kSent;
  });
  CHECK(outcome.delivered == 5);
  CHECK(sent == std::vector<std::string>{"0", "1", "2", "3", "4"});
  CHECK(queues.empty());
  CHECK_FALSE(queues.waiting(reply("a", "next")));
}

TEST_CASE("isolation: a client that would block holds back only its own replies") {
  ReplyQueues queues(limits(10));
  const auto now = Clock::now();
  queues.push(reply("stuck", "s1"), now);
  queues.push(reply("stuck", "s2"), now);
  queues.push(reply("good", "g1"), now);
  std::map<std::string, int> sent;
  const auto outcome = queues.drain([&](Multipart& m) {
    const std::string client(m.frame_view(0));
    if (client == "stuck") return SendResult::kWouldBlock;
    sent[client] += 1;
    return SendResult::kSent;
  });
  CHECK(outcome.delivered == 1);
  CHECK(sent["good"] == 1);
  CHECK(queues.waiting(reply("stuck", "next")));
  CHECK_FALSE(queues.waiting(reply("good", "next")));
  CHECK(queues.messages() == 2);
  CHECK(queues.clients() == 1);
}

TEST_CASE("bounds: past max_messages or max_bytes the client's oldest replies go") {
  SUBCASE("count") {
    ReplyQueues queues(limits(3));
    const auto now = Clock::now();
    std::size_t dropped = 0;
    for (int i = 0; i < 5; ++i) dropped += queues.push(reply("a", std::to_string(i)), now);
    queues.push(reply("b", "b0"), now);  // another client's bound is its own
    CHECK(dropped == 2);
    CHECK(queues.messages() == 4);
    std::vector<std::string> sent;
    (void)queues.drain([&](Multipart& m) {
      if (std::string(m.frame_view(0)) == "a") sent.push_back(body_of(m));
      return SendResult::kSent;
    });
    CHECK(sent == std::vector<std::string>{"2", "3", "4"});
  }
  SUBCASE("bytes: the newest reply stays even when it alone is over the bound") {
    ReplyQueues queues(limits(100, 10));
    const auto now = Clock::now();
    CHECK(queues.push(reply("a", "12345"), now) == 0);
    CHECK(queues.push(reply("a", "123456789012"), now) == 1);
    CHECK(queues.messages() == 1);
    CHECK(queues.bytes() == 1 + 12);
  }
  SUBCASE("age: replies older than timeout_ms are dropped by expire()") {
    ReplyQueues queues(limits(100, 1 << 20, 1000));
    const auto t0 = Clock::now();
    queues.push(reply("a", "old"), t0);
    queues.push(reply("a", "new"), t0 + std::chrono::milliseconds(900));
    CHECK(queues.expire(t0 + std::chrono::milliseconds(1500)) == 1);
    CHECK(queues.messages() == 1);
    CHECK(queues.expire(t0 + std::chrono::milliseconds(2000)) == 1);
    CHECK(queues.empty());
  }
}

TEST_CASE("outcomes: a client that has gone loses all its waiting replies, counted") {
  ReplyQueues queues(limits(10));
  const auto now = Clock::now();
  for (int i = 0; i < 3; ++i) queues.push(reply("gone", std::to_string(i)), now);
  queues.push(reply("here", "h"), now);
  const auto outcome = queues.drain([](Multipart& m) {
    return std::string(m.frame_view(0)) == "gone" ? SendResult::kUnroutable : SendResult::kSent;
  });
  CHECK(outcome.unroutable == 3);
  CHECK(outcome.delivered == 1);
  CHECK(queues.empty());
  CHECK(queues.bytes() == 0);
  queues.push(reply("x", "1"), now);
  CHECK(queues.clear() == 1);
  CHECK(queues.empty());
}

TEST_CASE("bounds: a delivered reply leaves the byte count, though sending left it empty") {
  ReplyQueues queues(limits(10));
  const auto now = Clock::now();
  queues.push(reply("a", "twelve bytes"), now);
  queues.push(reply("b", "four"), now);
  const auto outcome = queues.drain([](Multipart& m) {
    if (m.frame_view(0) == "b") return SendResult::kWouldBlock;
    m.clear();  // what send_multipart() leaves of a message it sent
    return SendResult::kSent;
  });
  CHECK(outcome.delivered == 1);
  CHECK(queues.messages() == 1);
  CHECK(queues.bytes() == 1 + 4);
}
