// A route's queue and, when configured, the spool that mirrors it on disk, behind one
// interface, so that the route never asks whether it has a spool.
//
// Design. The queue (MessageQueue) holds every message in memory; the spool (Spool) holds a
// record of each queued message until it is done. A record is done only when its message
// is known to have left this process (DeliveryWindow): for the pipeline path once more
// messages followed it into libzmq's pipes than those can hold, for request-reply when its
// reply came (or it was given up). Records are written as a read batch arrives and made
// durable together (commit(), the group commit) before any message of the batch can be
// forwarded or counted as queued.
//
// It never logs or counts: each operation returns what happened, the route counts it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tidepool/protocol/multipart.h"
#include "tidepool/proxy/config.h"
#include "tidepool/proxy/delivery_window.h"
#include "tidepool/proxy/queue.h"
#include "tidepool/proxy/spool.h"

namespace tidepool::proxy {

class DurableQueue {
 public:
  explicit DurableQueue(const RouteConfig& config);
  ~DurableQueue();

  // Opens the spool (if configured) and replays it into the queue, before anything else is
  // accepted. Throws StartupError naming the route.
  void open(Clock::time_point now);

  // What offer() did with a message.
  struct Offered {
    enum class Refusal : std::uint8_t { kNone, kQueueFull, kSpoolError };
    Refusal refused = Refusal::kNone;
    std::size_t evicted = 0;  // drop-oldest: messages evicted from the head to make room
  };
  // Queues `message` per the overflow policy; with a spool its record is written now and made
  // durable by the next commit().
  Offered offer(protocol::Multipart&& message, Clock::time_point now);
  // The group commit after a read batch. Returns how many of the batch's messages it had to
  // refuse because their records could not be made durable (0 without a spool).
  std::size_t commit();

  // The caller owns the head after this; the queue must not be empty.
  QueuedMessage pop() { return queue_.pop(); }
  // Puts back a message pop() returned (a send that would block after all).
  void push_front(QueuedMessage&& message) { queue_.push_front(std::move(message)); }
  void settle(Clock::time_point now) { queue_.settle(now); }
  // Queues requests again (oldest first) at the head. They count against the bounds like new
  // arrivals: `block` keeps them all; drop-newest refuses the newest of them, drop-oldest the
  // oldest. Returns how many were refused (their records are done).
  std::size_t requeue(std::vector<QueuedMessage>&& requests);

  // Delivery news for the records (no-ops without a spool or for sequence 0):
  // a popped message left unforwarded (expired);
  void dropped(std::uint64_t sequence);
  // a request-reply request's record waits for its reply...
  void awaiting(std::uint64_t sequence);
  // ...which came, or the request was given up;
  void finished(std::uint64_t sequence);
  // a message (sequence 0: one without a record) went into libzmq's pipes toward `peers()`
  // peers whose pipes hold up to `hwm` messages each (asked only with a spool: this is on
  // every message's path);
  template <typename Peers>
  void forwarded(std::uint64_t sequence, const Peers& peers, int hwm) {
    if (spool_) forwarded_spooled(sequence, peers(), hwm);
  }
  // every backend connection is gone: libzmq dropped its pipes, nothing forwarded is held.
  void all_delivered();

  // Drops messages older than `ttl` from the head; returns how many.
  std::size_t expire(Clock::time_point now, Clock::duration ttl);
  // Shutdown: empties the queue. With a spool, what has a record stays there for the next
  // start (`kept`) and the spool is synced.
  struct AtExit {
    std::size_t dropped = 0;
    std::size_t kept = 0;
    bool synced = true;
  };
  AtExit close();

  // Spool housekeeping (lazy done records, interval fsyncs).
  void tick(Clock::time_point now);
  // When tick() next has something to do; nullopt for never.
  [[nodiscard]] std::optional<Clock::time_point> next_tick(Clock::time_point now) const;

  [[nodiscard]] const MessageQueue& queue() const { return queue_; }
  [[nodiscard]] bool empty() const { return queue_.empty(); }
  [[nodiscard]] std::size_t size() const { return queue_.size(); }
  [[nodiscard]] bool full() const { return queue_.full(); }
  [[nodiscard]] bool full_after(std::size_t messages, std::size_t bytes) const {
    return queue_.full_after(messages, bytes);
  }
  // nullptr without a spool.
  [[nodiscard]] const Spool* spool() const { return spool_.get(); }

 private:
  void mark_done() { spool_->mark_done(delivery_.safe()); }
  void forwarded_spooled(std::uint64_t sequence, std::uint64_t peers, int hwm);

  RouteConfig config_;
  MessageQueue queue_;
  std::unique_ptr<Spool> spool_;  // mirrors the queue's messages on disk, when configured
  DeliveryWindow delivery_;       // which forwarded records may be marked done
};

}  // namespace tidepool::proxy
