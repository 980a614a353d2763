// Request-reply mode: sequence frames, requests awaiting replies, reply delivery and retries
// (request_reply.h).
#include "tidepool/proxy/request_reply.h"

#include <algorithm>
#include <cstring>

#include "tidepool/protocol/envelope.h"

namespace tidepool::proxy {
namespace {

using namespace std::chrono_literals;

// With ROUTER_MANDATORY, POLLOUT says "some client has room", not "this one has": a reply
// that would block is retried on this timer instead of spinning on POLLOUT.
constexpr auto kReplyRetry = 1ms;
// A client that stays full (it stopped reading) is retried ever less often, up to this: its
// replies then wait at most this much longer once it reads again, and the loop does not wake
// a thousand times a second for it while everyone else is served.
constexpr auto kReplyRetryMax = 5ms;

// libzmq names a client that set no ZMQ_ROUTING_ID with an id of its own, a zero byte and a
// counter (ids starting with a zero byte are reserved for this). Such an id names one
// connection to this process; an id the client chose names the client, across connections.
bool names_a_connection(std::string_view routing_id) {
  return !routing_id.empty() && routing_id.front() == '\0';
}

}  // namespace

RequestReply::RequestReply(const ReplyConfig& replies, std::size_t backends)
    : per_backend_(backends, 0), replies_(replies) {}

bool RequestReply::send(zmq::socket_t& socket, std::size_t backend, protocol::Multipart& message,
                        Clock::time_point now, const QueuedMessage* origin) {
  const std::size_t frames = message.size();
  // [routing id, sequence, rest of the envelope, "", body…]: the routing id is copied before
  // libzmq takes it, the other frames after the first send proved there is room.
  zmq::message_t routing_id = protocol::held_copy(message[0]);
  if (zmq_msg_send(message[0].handle(), socket.handle(), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
    if (zmq_errno() == EAGAIN) return false;
    throw zmq::error_t();
  }
  const std::uint64_t sequence = ++next_sequence_;
  PendingRequest pending{{}, now, backend};
  if (origin != nullptr) {
    pending.spool_sequence = origin->spool_sequence;
    pending.orphan = origin->replayed && names_a_connection(routing_id.to_string_view());
  }
  pending.request.push_back(std::move(routing_id));
  socket.send(zmq::buffer(&sequence, sizeof sequence), zmq::send_flags::sndmore);
  for (std::size_t i = 1; i < frames; ++i) {
    // Held until the reply comes: small frames get bytes of their own (multipart.h).
    pending.request.push_back(protocol::held_copy(message[i]));
    socket.send(message[i], i + 1 < frames ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
  pending_.emplace(sequence, std::move(pending));
  per_backend_[backend] += 1;
  return true;
}

ReplyOutcome RequestReply::on_reply(zmq::socket_t& frontend, protocol::Multipart&& reply,
                                    Clock::time_point now) {
  using Kind = ReplyOutcome::Kind;
  ReplyOutcome outcome;
  // Expected: [routing id, sequence (8 bytes), rest of the envelope, "", body…].
  std::uint64_t sequence = 0;
  if (reply.size() < 4 || reply[1].size() != sizeof sequence) {
    outcome.kind = Kind::kNoSequence;
    return outcome;
  }
  std::memcpy(&sequence, reply[1].data(), sizeof sequence);
  const auto pending = pending_.find(sequence);
  if (pending == pending_.end()) {
    outcome.kind = Kind::kDuplicate;
    return outcome;
  }
  outcome.took = now - pending->second.sent;
  outcome.spool_sequence = pending->second.spool_sequence;
  const bool orphan = pending->second.orphan;
  erase(pending);
  protocol::Multipart to_client;
  for (std::size_t i = 0; i < reply.size(); ++i) {
    if (i != 1) to_client.push_back(std::move(reply[i]));
  }
  if (!protocol::split_envelope(to_client)) {
    outcome.kind = Kind::kNoDelimiter;
    return outcome;
  }
  if (orphan) {
    outcome.kind = Kind::kOrphan;
    return outcome;
  }
  // Behind the replies already waiting for this client, if any: each client gets its own in
  // order.
  if (!replies_.waiting(protocol::routing_id(to_client))) {
    const SendResult result = send_multipart(frontend, to_client);
    if (result == SendResult::kSent) return outcome;
    if (result == SendResult::kUnroutable) {
      outcome.kind = Kind::kUnroutable;
      return outcome;
    }
    // A client that starts waiting is retried soon, whatever others taught the back-off.
    retry_interval_ = kReplyRetry;
    next_retry_ = replies_.empty() ? now + kReplyRetry : std::min(next_retry_, now + kReplyRetry);
  }
  outcome.kind = Kind::kWaiting;
  to_client.own_buffers();  // it may wait long (multipart.h)
  outcome.slow_client_dropped = replies_.push(std::move(to_client), now);
  return outcome;
}

ReplyQueues::DrainOutcome RequestReply::retry(zmq::socket_t& frontend, Clock::time_point now) {
  const auto outcome = replies_.drain(
      [&frontend](protocol::Multipart& reply) { return send_multipart(frontend, reply); });
  const bool moved = outcome.delivered > 0 || outcome.unroutable > 0;
  retry_interval_ =
      moved ? kReplyRetry
            : std::clamp<Clock::duration>(2 * retry_interval_, kReplyRetry, kReplyRetryMax);
  next_retry_ = now + retry_interval_;
  return outcome;
}

std::vector<PendingRequest> RequestReply::take_unanswered(std::size_t backend) {
  std::vector<PendingRequest> lost;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.backend != backend) {
      ++it;
      continue;
    }
    lost.push_back(std::move(it->second));
    auto next = std::next(it);
    erase(it);
    it = next;
  }
  return lost;
}

std::vector<std::uint64_t> RequestReply::expire(Clock::time_point now, Clock::duration timeout) {
  std::vector<std::uint64_t> expired;
  while (!pending_.empty() && now - pending_.begin()->second.sent > timeout) {
    expired.push_back(pending_.begin()->second.spool_sequence);
    erase(pending_.begin());
  }
  return expired;
}

void RequestReply::erase(Pending::iterator it) {
  per_backend_[it->second.backend] -= 1;
  pending_.erase(it);
}

}  // namespace tidepool::proxy
