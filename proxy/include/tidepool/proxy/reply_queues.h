// Replies waiting for request-reply clients that cannot take them yet.
//
// With ZMQ_ROUTER_MANDATORY a reply to a client whose pipe is full fails with EAGAIN, for that
// client only. Such a reply waits here, in a FIFO of that client's own, so a client that stops
// reading holds back nobody else: the route keeps reading its backend and delivering the other
// clients' replies at once. Each client's FIFO is bounded by count, bytes and age; past a
// bound its oldest replies go (the caller counts them as `slow_client`). A reply for a client
// that already has replies waiting queues behind them, so each client sees its replies in the
// order they arrived.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "tidepool/protocol/envelope.h"
#include "tidepool/protocol/multipart.h"
#include "tidepool/proxy/config.h"
#include "tidepool/proxy/queue.h"
#include "tidepool/proxy/sockets.h"

namespace tidepool::proxy {

class ReplyQueues {
 public:
  explicit ReplyQueues(const ReplyConfig& limits) : limits_(limits) {}

  // Whether the client `reply` goes to (its first frame is the routing id) has replies
  // waiting: `reply` must then queue behind them.
  [[nodiscard]] bool waiting(const protocol::Multipart& reply) const {
    // Called for every reply: usually nobody waits, and then not even the id is read.
    return !clients_.empty() &&
           clients_.find(std::string(protocol::routing_id(reply))) != clients_.end();
  }
  // Queues `reply` (its first frame is the client's routing id) at the back of its client's
  // FIFO. Returns how many of that client's oldest replies were dropped to keep it in bounds.
  std::size_t push(protocol::Multipart&& reply, Clock::time_point now);

  struct DrainOutcome {
    std::size_t delivered = 0;
    std::size_t unroutable = 0;  // the client has gone: all its waiting replies
  };
  // Hands every client's waiting replies, in order, to `send` until it would block for that
  // client; a client that has gone loses all of its replies (counted as unroutable).
  DrainOutcome drain(const std::function<SendResult(protocol::Multipart&)>& send);
  // Drops replies that have waited longer than timeout_ms; returns how many.
  std::size_t expire(Clock::time_point now);
  // Drops everything (shutdown); returns how many.
  std::size_t clear();

  [[nodiscard]] bool empty() const { return clients_.empty(); }
  [[nodiscard]] std::size_t clients() const { return clients_.size(); }
  [[nodiscard]] std::size_t messages() const { return messages_; }
  [[nodiscard]] std::size_t bytes() const { return bytes_; }

 private:
  struct Waiting {
    protocol::Multipart reply;
    Clock::time_point since;
    std::size_t bytes;  // the reply's, as counted on push (a sent reply is empty)
  };
  struct Client {
    std::deque<Waiting> replies;
    std::size_t bytes = 0;
  };
  void pop_front(Client& client);

  ReplyConfig limits_;
  std::unordered_map<std::string, Client> clients_;  // only clients with replies waiting
  std::size_t messages_ = 0;
  std::size_t bytes_ = 0;
};

}  // namespace tidepool::proxy
