// The route's reply path (request-reply): replies read from the backends and delivered through
// RequestReply, requests of a lost backend peer queued again, and waiting replies retried.
#include "tidepool/proxy/route.h"

#include "route_batch.h"  // private to the route's files

namespace tidepool::proxy {

using route_batch::handle_batch;
using route_batch::kReadBatch;

void Route::read_replies(std::size_t backend, Clock::time_point now) {
  std::vector<protocol::Multipart>& batch = handle_batch();
  bool more = true;
  for (int read = 0; more && read < kReadBatch;) {
    std::size_t got = 0;
    while (got < batch.size() && read < kReadBatch) {
      if (!recv_multipart(backends_[backend].socket, batch[got])) {
        more = false;
        break;
      }
      ++got;
      ++read;
    }
    for (std::size_t i = 0; i < got; ++i) {
      deliver_reply(std::move(batch[i]), now);
      batch[i].clear();  // on_reply() takes the frames, not the message
    }
  }
}

void Route::deliver_reply(protocol::Multipart&& reply, Clock::time_point now) {
  using Kind = ReplyOutcome::Kind;
  const ReplyOutcome outcome = request_reply_->on_reply(frontend_, std::move(reply), now);
  frontend_hot_ = true;  // a send may have taken the fd's signal (route.h)
  if (outcome.kind == Kind::kNoSequence) {
    drop(DropReason::kMalformed, 1, now,
         "reply without the envelope tidepool sent (routing id, sequence, delimiter) dropped");
    return;
  }
  if (outcome.kind == Kind::kDuplicate) {
    // Usually the answer to one copy of a request sent again after a backend peer was lost:
    // the client gets the answer to the copy awaited, one reply. Also a reply after the
    // give-up, or a tag the worker changed. (Counted, not logged: a worker flap makes
    // thousands.)
    counters_.duplicate_replies += 1;
    return;
  }
  metrics_.request_duration.observe(to_seconds(outcome.took));
  queue_.finished(outcome.spool_sequence);
  switch (outcome.kind) {
    case Kind::kDelivered:
      counters_.replies += 1;
      break;
    case Kind::kNoDelimiter:
      drop(DropReason::kMalformed, 1, now, "reply without an empty delimiter frame dropped");
      break;
    case Kind::kOrphan:
      drop(DropReason::kUnroutable, 1, now,
           "reply to a request accepted before a restart dropped: its client had no routing id "
           "of its own, and the connection that id named ended with the old process");
      break;
    case Kind::kUnroutable:
      drop(DropReason::kUnroutable, 1, now, "reply for a client that has gone dropped");
      break;
    case Kind::kWaiting:
      if (outcome.slow_client_dropped > 0) {
        drop(DropReason::kSlowClient, outcome.slow_client_dropped, now,
             "client not reading its replies: its oldest waiting replies dropped "
             "(replies.max_messages, replies.max_bytes)");
      }
      break;
    case Kind::kNoSequence:
    case Kind::kDuplicate:
      break;
  }
}

void Route::requeue_in_flight(std::size_t backend, Clock::time_point now) {
  // Every unanswered request sent through that socket goes back to the head of the queue,
  // oldest first; a reply that still comes for the old copy is recognised and ignored.
  std::vector<PendingRequest> lost = request_reply_->take_unanswered(backend);
  if (lost.empty()) return;
  std::vector<QueuedMessage> requests;
  requests.reserve(lost.size());
  for (auto& request : lost) {
    requests.push_back(
        QueuedMessage{request.request.take(), now, request.spool_sequence, request.orphan});
  }
  // They count against the queue's bounds like new arrivals (DurableQueue::requeue()).
  const std::size_t refused = queue_.requeue(std::move(requests));
  const bool keep_oldest = config_.queue.overflow != Overflow::kDropOldest;
  log::info("backend peer lost: unanswered requests queued again",
            {{"route", config_.name},
             {"endpoint", backends_[backend].name()},
             {"requests", std::to_string(lost.size() - refused)}});
  if (refused > 0) {
    drop(keep_oldest ? DropReason::kQueueFull : DropReason::kEvicted, refused, now,
         "queue full: requests of a lost backend peer could not be queued again");
  }
}

void Route::retry_replies(Clock::time_point now) {
  const auto outcome = request_reply_->retry(frontend_, now);
  frontend_hot_ = true;  // a send may have taken the fd's signal (route.h)
  counters_.replies += outcome.delivered;
  if (outcome.unroutable > 0) {
    drop(DropReason::kUnroutable, outcome.unroutable, now,
         "reply for a client that has gone dropped");
  }
}

}  // namespace tidepool::proxy
