// DeliveryWindow: which spooled messages may be marked done, because they are known to have
// left tidepool's memory (the route's spool watermark).
#pragma once

#include <cstdint>
#include <deque>
#include <set>

namespace tidepool::proxy {

// Which spooled messages may be marked done: only those known to have left tidepool's memory.
//
// libzmq accepts a message into a send pipe that lives in this process; a done record written
// then, followed by a crash, would lose it. So a message counts as delivered only once it is
// known to be out of the process:
//   - forwarded(seq): handed to libzmq's pipes; delivered once `trail` more messages (spooled
//     or not) were handed to the same pipes after it, i.e. once more than the pipes can hold
//     followed it (the pipeline path);
//   - awaiting(seq) then delivered(seq): delivered when the caller says so, in any order
//     (e.g. request-reply: when its reply arrives);
//   - finished_through(seq): every sequence up to `seq` not awaiting delivery is finished
//     (dropped from the queue's head: evicted, expired);
//   - all_delivered(): nothing forwarded is held any more (e.g. every backend connection
//     is gone, and libzmq dropped its pipes with them).
// safe() is the watermark to give Spool::mark_done(): every sequence at or below it is
// delivered or finished, i.e. the lowest sequence still awaiting delivery minus one.
//
// Sequences must be handed in increasing order to forwarded()/awaiting()/finished_through()
// (the queue is FIFO by sequence); delivered() takes them in any order. 0 means "no spool
// record" (a fast-path message): it only advances the trail. Memory: the sequences in the
// trail (at most `trail`) plus those awaiting delivery.
class DeliveryWindow {
 public:
  explicit DeliveryWindow(std::uint64_t trail = 0) : trail_(trail) {}

  // How many forwarded messages libzmq may still hold (a smaller value releases the excess).
  void set_trail(std::uint64_t trail) {
    trail_ = trail;
    release_trail();
  }
  [[nodiscard]] std::uint64_t trail() const { return trail_; }

  void forwarded(std::uint64_t sequence);
  void awaiting(std::uint64_t sequence);
  void delivered(std::uint64_t sequence);
  void finished_through(std::uint64_t sequence);
  void all_delivered();

  [[nodiscard]] std::uint64_t safe() const;
  // Spooled messages not yet known delivered (what a crash now would deliver again).
  [[nodiscard]] std::size_t outstanding() const { return outstanding_.size(); }

 private:
  void release_trail();

  std::uint64_t trail_;
  std::uint64_t forwards_ = 0;  // messages forwarded so far, spooled or not
  struct Trailing {
    std::uint64_t forward;  // forwards_ when it was forwarded
    std::uint64_t sequence;
  };
  std::deque<Trailing> trailing_;        // spooled forwarded messages, oldest first
  std::set<std::uint64_t> outstanding_;  // not yet known delivered
  std::uint64_t high_ = 0;               // highest sequence handed in
};

}  // namespace tidepool::proxy
