// Request-reply mode: tagged routing ids, requests awaiting replies, reply delivery and retries
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
  // Held as received, in its slot's own buffer (HeldRequest): sent again if its backend peer is
  // lost.
  const auto [tag, pending] = pending_.emplace(now, backend);
  pending.request.hold(message);
  if (origin != nullptr) {
    pending.spool_sequence = origin->spool_sequence;
    pending.orphan = origin->replayed && names_a_connection(message.frame_view(0));
  }
  // [routing id + tag, rest of the envelope, "", body…]. Routing ids up to 25 bytes make a
  // frame libzmq stores inline (no allocation).
  const std::string_view id = message.frame_view(0);
  zmq::message_t tagged(id.size() + sizeof tag);
  std::memcpy(tagged.data(), id.data(), id.size());
  std::memcpy(static_cast<char*>(tagged.data()) + id.size(), &tag, sizeof tag);
  const int more = frames > 1 ? ZMQ_SNDMORE : 0;
  if (zmq_msg_send(tagged.handle(), socket.handle(), more | ZMQ_DONTWAIT) < 0) {
    pending_.erase(tag);
    if (zmq_errno() == EAGAIN) return false;
    throw zmq::error_t();
  }
  // Once the first frame is in, libzmq takes the rest of the message whole.
  for (std::size_t i = 1; i < frames; ++i) {
    socket.send(message[i], i + 1 < frames ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
  message.clear_sent(1);  // the untagged routing id was not sent
  per_backend_[backend] += 1;
  return true;
}

ReplyOutcome RequestReply::on_reply(zmq::socket_t& frontend, protocol::Multipart&& reply,
                                    Clock::time_point now) {
  using Kind = ReplyOutcome::Kind;
  ReplyOutcome outcome;
  // Expected: [routing id + tag (8 bytes), rest of the envelope, "", body…]. A routing id is
  // never empty, so a first frame of 8 bytes or fewer is not one tidepool sent.
  PendingRequests::Tag tag = 0;
  const std::string_view tagged = reply.empty() ? std::string_view{} : reply.frame_view(0);
  if (reply.size() < 3 || tagged.size() <= sizeof tag) {
    outcome.kind = Kind::kNoSequence;
    return outcome;
  }
  const std::size_t id_size = tagged.size() - sizeof tag;
  std::memcpy(&tag, tagged.data() + id_size, sizeof tag);
  const PendingRequest* pending = pending_.find(tag);
  if (pending == nullptr) {
    outcome.kind = Kind::kDuplicate;
    return outcome;
  }
  outcome.took = now - pending->sent;
  outcome.spool_sequence = pending->spool_sequence;
  const bool orphan = pending->orphan;
  erase(tag, pending->backend);
  // The reply goes on as it came, its first frame untagged: no frame moved to a new message.
  protocol::Multipart& to_client = reply;
  to_client.replace(0, tagged.substr(0, id_size));
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
  if (!replies_.waiting(to_client)) {
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
  std::vector<PendingRequest> lost =
      pending_.take_if([backend](const PendingRequest& p) { return p.backend == backend; });
  per_backend_[backend] -= lost.size();
  return lost;
}

std::vector<std::uint64_t> RequestReply::expire(Clock::time_point now, Clock::duration timeout) {
  std::vector<std::uint64_t> expired;
  while (!pending_.empty() && now - pending_.oldest().sent > timeout) {
    expired.push_back(pending_.oldest().spool_sequence);
    erase(pending_.oldest_tag(), pending_.oldest().backend);
  }
  return expired;
}

void RequestReply::erase(PendingRequests::Tag tag, std::size_t backend) {
  per_backend_[backend] -= 1;
  pending_.erase(tag);
}

}  // namespace tidepool::proxy
