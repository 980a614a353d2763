// Request-reply under faults, through the real binary with independent python3-zmq workers:
// a reply reaches only the client that asked (also across kill -9 and a restart with a
// spool), a client that stops reading stalls nobody else, a worker host that stops answering
// holds only its share of max_in_flight. Each test prints the figures it measured.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <map>
#include <set>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "harness.h"

using namespace tidepool::test;

namespace {

using Labels = std::map<std::string, std::string>;
using SteadyClock = std::chrono::steady_clock;
const Labels kRpc{{"route", "rpc"}};

// A DEALER client; `identity` empty: libzmq assigns one (as Swimmy's REQ clients get).
zmq::socket_t dealer(zmq::context_t& context, int port, const std::string& identity) {
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  if (!identity.empty()) socket.set(zmq::sockopt::routing_id, identity);
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::rcvtimeo, 0);
  socket.set(zmq::sockopt::sndhwm, 0);
  socket.connect(endpoint(port));
  return socket;
}

// The body of a reply ([delimiter, "name:body"]) without the worker's "name:"; empty if none.
std::optional<std::string> reply_body(zmq::socket_t& socket) {
  std::vector<zmq::message_t> frames;
  if (!zmq::recv_multipart(socket, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
    return std::nullopt;
  }
  if (frames.size() != 2) return std::string("?malformed");
  const std::string body = frames[1].to_string();
  return body.substr(body.find(':') + 1);
}

int env_int(const char* name, int fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::atoi(value) : fallback;
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto index = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1));
  return values[index];
}

double since_ms(SteadyClock::time_point start) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();
}

}  // namespace

TEST_CASE("a reply reaches only the client that asked: 10 kill -9 restarts with requests spooled") {
  // Client A sets no routing id: libzmq names its connection, and that name means nothing to
  // the next process (libzmq 4.3 handed every process the same names). Client C owns its id
  // and gets its replies across the restart. B connects to the new process first, ready to
  // receive whatever the old ids would route to.
  TempDir dir;
  const int front = free_port();
  const int back = free_port();
  auto route = request_reply_route("rpc", front, {back});
  route["spool"] = {{"dir", dir.path()}, {"fsync", "always"}};
  const auto config = with_routes({route});
  const int rounds = env_int("TIDEPOOL_TEST_RESTARTS", 10);
  constexpr int kPerClient = 20;
  int misdelivered = 0;
  int owned_delivered = 0;
  double unroutable_total = 0;
  for (int round = 0; round < rounds; ++round) {
    CAPTURE(round);
    zmq::context_t context;
    auto a = dealer(context, front, "");
    auto c = dealer(context, front, "client-c");
    {
      Tidepool first(config);
      REQUIRE(first.wait_ready());
      for (int i = 0; i < kPerClient; ++i) {
        send_request(a, "secret of A " + std::to_string(round) + "-" + std::to_string(i));
        send_request(c, "C " + std::to_string(round) + "-" + std::to_string(i));
      }
      REQUIRE(first.wait_metric("tidepool_queue_messages", kRpc, 2 * kPerClient));
      first.signal(SIGKILL);
      REQUIRE(first.wait_exit(5s).has_value());
    }
    Tidepool second(config);
    REQUIRE(second.wait_ready());
    REQUIRE(second.metric("tidepool_spool_replayed_messages_total", kRpc) == 2 * kPerClient);
    auto b = dealer(context, front, "");
    send_request(b, "B " + std::to_string(round));
    // A and C reconnect by themselves (libzmq gives A a new name); all three are here.
    REQUIRE(second.wait_metric("tidepool_frontend_peers", kRpc, 3));
    auto worker = start_echo_worker(back, "w");

    std::set<std::string> c_got;
    int b_got = 0;
    const bool all = wait_until(
        [&] {
          while (auto body = reply_body(b)) {
            if (*body == "B " + std::to_string(round)) {
              ++b_got;
            } else {
              ++misdelivered;
            }
          }
          while (auto body = reply_body(c)) {
            if (body->starts_with("C ")) {
              c_got.insert(*body);
            } else {
              ++misdelivered;
            }
          }
          while (auto body = reply_body(a)) ++misdelivered;  // A's new connection: not its own
          const auto unroutable = second.metric("tidepool_dropped_messages_total",
                                                {{"route", "rpc"}, {"reason", "unroutable"}});
          return b_got == 1 && c_got.size() == kPerClient && unroutable == kPerClient;
        },
        20s);
    CHECK(all);
    CHECK(misdelivered == 0);
    CHECK(b_got == 1);
    CHECK(c_got.size() == kPerClient);
    owned_delivered += static_cast<int>(c_got.size());
    unroutable_total +=
        second
            .metric("tidepool_dropped_messages_total", {{"route", "rpc"}, {"reason", "unroutable"}})
            .value_or(-1);
    CHECK(second.log().find("accepted before a restart") != std::string::npos);
    // Stop cleanly so the next round starts from an empty spool.
    second.signal(SIGTERM);
    REQUIRE(second.wait_exit(10s) == 0);
  }
  MESSAGE("restarts: " << rounds << ", misdelivered replies: " << misdelivered
                       << ", replies to clients owning their id: " << owned_delivered << "/"
                       << rounds * kPerClient << ", counted unroutable: " << unroutable_total);
}

TEST_CASE("a second live client with a connected client's routing id takes it over") {
  const int front = free_port();
  const int back = free_port();
  Tidepool tidepool(with_routes({request_reply_route("rpc", front, {back})}));
  REQUIRE(tidepool.wait_ready());
  auto worker = start_echo_worker(back, "w");
  zmq::context_t context;
  auto first = dealer(context, front, "same-id");
  send_request(first, "one");
  std::optional<std::string> got;
  REQUIRE(wait_until([&] { return (got = reply_body(first)).has_value(); }));
  CHECK(*got == "one");
  // The second connection with the same id (ZMQ_ROUTER_HANDOVER): its request is served and
  // its reply comes to it; before, libzmq ignored it and its request vanished uncounted.
  auto second = dealer(context, front, "same-id");
  REQUIRE(tidepool.wait_metric("tidepool_frontend_peers", kRpc, 2));
  send_request(second, "two");
  REQUIRE(wait_until([&] { return (got = reply_body(second)).has_value(); }));
  CHECK(*got == "two");
  CHECK(tidepool.wait_metric("tidepool_replies_total", kRpc, 2));
  CHECK(tidepool.metric_sum("tidepool_dropped_messages_total", kRpc) == 0);
}

TEST_CASE(
    "one client that stops reading: the others keep their rate and latency, none runs twice") {
  const int front = free_port();
  const int back = free_port();
  Tidepool tidepool(with_routes({request_reply_route("rpc", front, {back})}));
  REQUIRE(tidepool.wait_ready());
  auto worker = start_echo_worker(back, "w");
  const int stuck_seconds = env_int("TIDEPOOL_TEST_STUCK_SECONDS", 20);
  const auto baseline = 5s;
  const auto stuck_for = std::chrono::seconds(stuck_seconds);
  const auto after = 3s;
  const auto start = SteadyClock::now() + 500ms;  // every client is connected by then
  const auto warm = start + 1s;
  const auto stuck_from = start + baseline;
  const auto stuck_until = stuck_from + stuck_for;
  const auto end = stuck_until + after;

  struct Good {
    std::vector<double> base_latency_ms;
    std::vector<double> stuck_latency_ms;
    int sent = 0;
    int duplicates = 0;
    int foreign = 0;
    std::set<int> answered;
  };
  std::vector<Good> good(3);
  std::atomic<int> stuck_sent{0};
  std::atomic<int> stuck_received{0};
  std::atomic<int> stuck_foreign{0};
  zmq::context_t context;
  std::vector<std::thread> threads;
  for (std::size_t k = 0; k < good.size(); ++k) {
    threads.emplace_back([&, k] {
      auto socket = dealer(context, front, "good-" + std::to_string(k));
      const std::string pad(80, 'g');
      std::map<int, SteadyClock::time_point> sent_at;
      auto next = start;
      std::this_thread::sleep_until(start);
      while (SteadyClock::now() < end + 2s) {
        if (SteadyClock::now() >= next && SteadyClock::now() < end) {
          sent_at[good[k].sent] = SteadyClock::now();
          send_request(socket, std::to_string(good[k].sent) + " " + pad);
          ++good[k].sent;
          next += 5ms;  // 200 requests/s
        }
        zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
        zmq::poll(&item, 1, std::chrono::milliseconds(1));
        while (auto body = reply_body(socket)) {
          if (body->size() < pad.size()) {
            ++good[k].foreign;
            continue;
          }
          const int n = std::atoi(body->c_str());
          if (!good[k].answered.insert(n).second) {
            ++good[k].duplicates;
            continue;
          }
          const auto sent = sent_at[n];
          const double latency =
              std::chrono::duration<double, std::milli>(SteadyClock::now() - sent).count();
          if (sent < warm) {
            // start-up: connections, the worker's first messages
          } else if (sent < stuck_from) {
            good[k].base_latency_ms.push_back(latency);
          } else if (sent < stuck_until) {
            good[k].stuck_latency_ms.push_back(latency);
          }
        }
        if (SteadyClock::now() >= end && good[k].answered.size() == std::size_t(good[k].sent)) {
          break;
        }
      }
    });
  }
  threads.emplace_back([&] {
    auto socket = dealer(context, front, "stuck");
    const std::string big(16 * 1024, 's');
    auto next = start;
    std::set<std::string> seen;
    std::this_thread::sleep_until(start);
    while (SteadyClock::now() < end + 5s) {
      const auto now = SteadyClock::now();
      if (now >= next && now < end) {
        send_request(socket, "stuck " + std::to_string(stuck_sent++) + " " + big);
        next += 5ms;
      }
      const bool reading = now < stuck_from || now >= stuck_until;
      if (reading) {
        while (auto body = reply_body(socket)) {
          if (!body->starts_with("stuck ") || !seen.insert(body->substr(0, 16)).second) {
            ++stuck_foreign;
          } else {
            ++stuck_received;
          }
        }
      }
      std::this_thread::sleep_for(1ms);
    }
  });
  for (auto& t : threads) t.join();

  std::vector<double> base;
  std::vector<double> during;
  int good_sent = 0;
  int good_answered = 0;
  int duplicates = 0;
  int foreign = stuck_foreign;
  for (const auto& g : good) {
    base.insert(base.end(), g.base_latency_ms.begin(), g.base_latency_ms.end());
    during.insert(during.end(), g.stuck_latency_ms.begin(), g.stuck_latency_ms.end());
    good_sent += g.sent;
    good_answered += static_cast<int>(g.answered.size());
    duplicates += g.duplicates;
    foreign += g.foreign;
  }
  const double base_rate =
      static_cast<double>(base.size()) / std::chrono::duration<double>(stuck_from - warm).count();
  const double stuck_rate = static_cast<double>(during.size()) / stuck_seconds;
  const double p99_base = percentile(base, 0.99);
  const double p99_stuck = percentile(during, 0.99);
  const double slow_client =
      tidepool
          .metric("tidepool_dropped_messages_total", {{"route", "rpc"}, {"reason", "slow_client"}})
          .value_or(-1);
  const double disconnects =
      tidepool.metric("tidepool_backend_disconnects_total", kRpc).value_or(-1);
  const double received = tidepool.metric("tidepool_received_messages_total", kRpc).value_or(-1);
  const double forwarded = tidepool.metric("tidepool_forwarded_messages_total", kRpc).value_or(-2);
  MESSAGE("stuck for " << stuck_seconds << " s: good clients " << base_rate << "/s before, "
                       << stuck_rate << "/s while stuck (" << stuck_rate / base_rate << "x); p99 "
                       << p99_base << " ms before, " << p99_stuck
                       << " ms while stuck; stuck client sent " << stuck_sent.load() << ", got "
                       << stuck_received.load() << ", slow_client drops " << slow_client
                       << "; worker disconnects " << disconnects << "; duplicates " << duplicates
                       << "; foreign " << foreign);
  CHECK(good_answered == good_sent);
  CHECK(duplicates == 0);
  CHECK(foreign == 0);
  CHECK(stuck_rate >= 0.9 * base_rate);
  // The goal is 2x the normal p99; a loaded 2-core CI machine adds scheduling noise of its own.
  CHECK(p99_stuck < 2 * p99_base + 20);
  CHECK(disconnects == 0);       // no worker was dropped
  CHECK(received == forwarded);  // nothing sent twice
  // Every reply of the stuck client is accounted for: received when it read again, or dropped
  // as slow_client past its bound (replies.max_bytes, 64 MiB: 4,096 of these 16 KiB replies).
  CHECK(stuck_received + slow_client == stuck_sent);
  CHECK(stuck_received >= 1000);
}

TEST_CASE("a worker host that stops answering holds only its share of max_in_flight") {
  const int front = free_port();
  const int back1 = free_port();
  const int back2 = free_port();
  auto route = request_reply_route("rpc", front, {back1, back2});
  route["flush"] = {{"max_in_flight", 100}};
  // A peer silent for 3 heartbeats is dropped: 3 s here (15 s at the default 5000).
  route["backend"]["heartbeat_ms"] = 1000;
  Tidepool tidepool(with_routes({route}));
  REQUIRE(tidepool.wait_ready());
  auto w1 = start_echo_worker(back1, "w1");
  auto w2 = start_echo_worker(back2, "w2");
  REQUIRE(tidepool.wait_metric("tidepool_backend_peers", kRpc, 2));

  zmq::context_t context;
  auto client = dealer(context, front, "client");
  std::set<int> answered;
  int sent = 0;
  int duplicates = 0;
  const auto start = SteadyClock::now();
  std::vector<double> reply_times_ms;  // since start
  const auto run_until = [&](double until_ms, bool sending) {
    while (since_ms(start) < until_ms) {
      while (sending && sent - static_cast<int>(answered.size()) < 200) {
        send_request(client, std::to_string(sent++));
      }
      zmq::pollitem_t item{client.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(5));
      while (auto body = reply_body(client)) {
        if (!answered.insert(std::atoi(body->c_str())).second) ++duplicates;
        reply_times_ms.push_back(since_ms(start));
      }
    }
  };
  const auto replies_between = [&](double from, double to) {
    return std::count_if(reply_times_ms.begin(), reply_times_ms.end(),
                         [&](double t) { return t >= from && t < to; });
  };
  run_until(2000, true);
  w1->signal(SIGSTOP);  // stops answering, keeps its connection: noticed at its heartbeat timeout
  run_until(9000, true);
  w1->signal(SIGCONT);
  run_until(10000, true);
  run_until(25000, false);
  const auto base = replies_between(1000, 2000);
  // Before the loss is noticed (~3-4 s after the stop): the other host keeps answering.
  const auto blind = replies_between(2500, 4500) / 2;
  const auto after_loss = replies_between(6000, 9000) / 3;
  MESSAGE("replies/s: " << base << " with both hosts, " << blind
                        << " while one is stopped and not yet noticed, " << after_loss
                        << " after it was dropped; sent " << sent << ", answered "
                        << answered.size() << ", duplicates " << duplicates);
  CHECK(blind >= base / 4);
  CHECK(after_loss >= base / 4);
  CHECK(static_cast<int>(answered.size()) == sent);
  CHECK(duplicates == 0);
  CHECK(tidepool.metric("tidepool_backend_disconnects_total", kRpc) >= 1);
}
