// Per-client reply FIFOs for request-reply routes (see reply_queues.h).
#include "tidepool/proxy/reply_queues.h"

#include "tidepool/protocol/envelope.h"

namespace tidepool::proxy {

void ReplyQueues::pop_front(Client& client) {
  const std::size_t size = client.replies.front().bytes;
  client.bytes -= size;
  bytes_ -= size;
  messages_ -= 1;
  client.replies.pop_front();
}

std::size_t ReplyQueues::push(protocol::Multipart&& reply, Clock::time_point now) {
  Client& client = clients_[std::string(protocol::routing_id(reply))];
  const std::size_t size = reply.bytes();
  client.bytes += size;
  bytes_ += size;
  messages_ += 1;
  client.replies.push_back({std::move(reply), now, size});
  // The newest reply always stays: it is the one the client is most likely still waiting for.
  std::size_t dropped = 0;
  while (client.replies.size() > 1 &&
         (client.replies.size() > limits_.max_messages || client.bytes > limits_.max_bytes)) {
    pop_front(client);
    ++dropped;
  }
  return dropped;
}

ReplyQueues::DrainOutcome ReplyQueues::drain(
    const std::function<SendResult(protocol::Multipart&)>& send) {
  DrainOutcome outcome;
  for (auto it = clients_.begin(); it != clients_.end();) {
    Client& client = it->second;
    while (!client.replies.empty()) {
      const SendResult result = send(client.replies.front().reply);
      if (result == SendResult::kWouldBlock) break;
      if (result == SendResult::kSent) {
        ++outcome.delivered;
        pop_front(client);
      } else {
        outcome.unroutable += client.replies.size();
        while (!client.replies.empty()) pop_front(client);
      }
    }
    it = client.replies.empty() ? clients_.erase(it) : std::next(it);
  }
  return outcome;
}

std::size_t ReplyQueues::expire(Clock::time_point now) {
  const auto timeout = std::chrono::milliseconds(limits_.timeout_ms);
  std::size_t dropped = 0;
  for (auto it = clients_.begin(); it != clients_.end();) {
    Client& client = it->second;
    while (!client.replies.empty() && now - client.replies.front().since > timeout) {
      pop_front(client);
      ++dropped;
    }
    it = client.replies.empty() ? clients_.erase(it) : std::next(it);
  }
  return dropped;
}

std::size_t ReplyQueues::clear() {
  const std::size_t dropped = messages_;
  clients_.clear();
  messages_ = 0;
  bytes_ = 0;
  return dropped;
}

}  // namespace tidepool::proxy
