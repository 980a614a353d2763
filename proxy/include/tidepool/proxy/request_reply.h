// Request-reply mode's own state: the tag each forwarded request carries, the requests
// awaiting their reply (to send again when a backend peer is lost, or give up on),
// each backend socket's share of them, and replies on their way back to clients, with the
// per-client FIFOs that let one client stop reading without stalling the others.
//
// It never logs or counts: every operation returns what happened, and Route counts it.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include <zmq.hpp>

#include "tidepool/protocol/multipart.h"
#include "tidepool/proxy/config.h"
#include "tidepool/proxy/pending_requests.h"
#include "tidepool/proxy/queue.h"
#include "tidepool/proxy/reply_queues.h"
#include "tidepool/proxy/sockets.h"

namespace tidepool::proxy {

// What became of one message read from the backend.
struct ReplyOutcome {
  enum class Kind : std::uint8_t {
    kDelivered,    // handed to its client's pipe
    kWaiting,      // its client's pipe is full: queued in that client's FIFO
    kUnroutable,   // its client has gone
    kOrphan,       // its request came from before a restart, from a connection-named client
    kDuplicate,    // answered already (the request was sent twice after a loss): ignored
    kNoSequence,   // not the envelope tidepool sent (routing id and tag, …, delimiter)
    kNoDelimiter,  // the envelope lost its empty delimiter frame
  };
  Kind kind = Kind::kDelivered;
  // The request it answered, when it answered one (kind is not kDuplicate or kNoSequence).
  std::uint64_t spool_sequence = 0;
  Clock::duration took{};
  // Older replies of the same client dropped to keep its FIFO in bounds (replies.*).
  std::size_t slow_client_dropped = 0;
};

class RequestReply {
 public:
  RequestReply(const ReplyConfig& replies, std::size_t backends);

  // Sends `message` ([routing id, envelope…, "", body…]) through `socket` with its pending
  // request's tag appended to the routing id frame (8 bytes, so the backend hop carries no
  // frame more than the client's), holds the request until its reply comes, and leaves
  // `message` empty. False when the socket would block (nothing was sent, `message` is as it
  // was). `origin` is the queued message it came from, if any.
  bool send(zmq::socket_t& socket, std::size_t backend, protocol::Multipart& message,
            Clock::time_point now, const QueuedMessage* origin);

  // Matches a reply to its request and hands it to `frontend` (or its client's FIFO).
  ReplyOutcome on_reply(zmq::socket_t& frontend, protocol::Multipart&& reply,
                        Clock::time_point now);
  // Hands waiting replies to their clients; when it is next due: next_retry().
  ReplyQueues::DrainOutcome retry(zmq::socket_t& frontend, Clock::time_point now);
  [[nodiscard]] Clock::time_point next_retry() const { return next_retry_; }

  // Removes and returns, oldest first, every request sent through `backend` and not answered
  // (libzmq does not say which peer of a socket held which): the caller queues them again. A
  // reply that still comes for an old copy is then a duplicate.
  std::vector<PendingRequest> take_unanswered(std::size_t backend);
  // Gives up on requests sent before now - timeout; returns their spool sequences.
  std::vector<std::uint64_t> expire(Clock::time_point now, Clock::duration timeout);

  [[nodiscard]] std::size_t in_flight() const { return pending_.size(); }
  [[nodiscard]] std::size_t in_flight(std::size_t backend) const { return per_backend_[backend]; }
  [[nodiscard]] ReplyQueues& replies() { return replies_; }
  [[nodiscard]] const ReplyQueues& replies() const { return replies_; }
  // Nothing awaiting a reply and no reply waiting for its client.
  [[nodiscard]] bool idle() const { return pending_.empty() && replies_.empty(); }

 private:
  void erase(PendingRequests::Tag tag, std::size_t backend);

  PendingRequests pending_;
  std::vector<std::size_t> per_backend_;  // pending_ entries per backend socket
  ReplyQueues replies_;
  Clock::duration retry_interval_{};  // grows while no waiting reply can be delivered
  Clock::time_point next_retry_;
};

}  // namespace tidepool::proxy
