// PendingRequests: request-reply's requests awaiting their reply, in a table of slots that the
// tag each request carries addresses directly, kept in send order; and the rule for when a
// held request gets buffers of its own.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "tidepool/protocol/multipart.h"
#include "tidepool/proxy/queued_message.h"

namespace tidepool::proxy {

// A forwarded request whose reply has not come.
struct PendingRequest {
  // Not an aggregate, for the reason QueuedMessage is not (queued_message.h).
  PendingRequest() noexcept {}  // NOLINT(modernize-use-equals-default): see above

  protocol::Multipart request;  // as received (no tag)
  Clock::time_point sent;
  std::size_t backend = 0;  // the backend socket it went through: a loss there sends it again
  std::uint64_t spool_sequence = 0;
  // Accepted by an earlier process from a client whose routing id libzmq assigned: that id
  // named a connection to the old process, and a client of this one may hold it now, so the
  // reply has no rightful client (counted as unroutable, never sent).
  bool orphan = false;
};

// Requests awaiting replies. emplace() returns a tag, which travels with the request and comes
// back with its reply: its low 32 bits are the slot, its high 32 bits that slot's use, so
// find() is an index and a compare (no node allocation, no tree), and a tag whose request was
// answered, requeued or given up finds nothing, even once its slot is in use again (a reply to
// a copy sent before a requeue is then a duplicate). Slots are also linked in send order, for
// expiry and requeueing oldest first.
//
// Held requests are references to the frames as received: with zero-copy receive a small frame
// points into one of libzmq's shared 8 KiB read buffers, and holding it keeps that buffer. A
// request gets bytes of its own once it has waited kUnsettledMaxAge or once more than
// kUnsettledMax are newer than it (settle(), and take_if() for those it hands back), so the
// usual request, answered within milliseconds, is never copied, and what a stuck worker holds
// pins at most kUnsettledMax buffers.
class PendingRequests {
 public:
  using Tag = std::uint64_t;
  // Bounds what unsettled requests may pin: 4,096 × 8 KiB = 32 MiB in the worst case (every
  // request in a read buffer of its own), far less when requests arrive in bursts.
  static constexpr std::size_t kUnsettledMax = 4096;
  static constexpr Clock::duration kUnsettledMaxAge = std::chrono::milliseconds(100);

  // A new, empty pending request sent at `sent` through `backend`, and its tag. The caller
  // fills the request in place, so no Multipart is moved into the table; the reference holds
  // until the next emplace().
  struct Emplaced {
    Tag tag;
    PendingRequest& request;
  };
  Emplaced emplace(Clock::time_point sent, std::size_t backend);
  // The request `tag` names, or nullptr when it is not pending (never was, answered, given up).
  [[nodiscard]] PendingRequest* find(Tag tag);
  void erase(Tag tag);
  // The oldest pending request and its tag; size() > 0.
  [[nodiscard]] const PendingRequest& oldest() const { return slots_[oldest_].request; }
  [[nodiscard]] Tag oldest_tag() const { return slots_[oldest_].tag; }

  // Removes and returns, oldest first, every request for which pred(request) holds, each with
  // buffers of its own (they may wait in the queue).
  template <typename Pred>
  std::vector<PendingRequest> take_if(Pred pred) {
    std::vector<PendingRequest> taken;
    for (std::uint32_t i = oldest_; i != kNone;) {
      const std::uint32_t newer = slots_[i].newer;
      if (pred(slots_[i].request)) {
        if (!slots_[i].settled) slots_[i].request.request.own_buffers();
        taken.push_back(std::move(slots_[i].request));
        release(i);
      }
      i = newer;
    }
    return taken;
  }

  // Gives the requests that have waited kUnsettledMaxAge by `now` buffers of their own.
  void settle(Clock::time_point now);

  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }
  // Requests still holding libzmq's buffers (for tests).
  [[nodiscard]] std::size_t unsettled() const { return unsettled_count_; }

 private:
  static constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();
  // Slots kept when the table empties: a burst of a million requests leaves no table of a
  // million slots behind it.
  static constexpr std::size_t kSlotsKept = 4096;

  struct Slot {
    PendingRequest request;
    Tag tag = 0;  // 0: free
    std::uint32_t older = kNone;
    std::uint32_t newer = kNone;
    bool settled = false;
  };

  void release(std::uint32_t index);
  void settle_oldest_unsettled();

  std::vector<Slot> slots_;
  std::vector<std::uint32_t> free_;
  std::uint32_t oldest_ = kNone;
  std::uint32_t newest_ = kNone;
  // Unsettled requests are always the newest ones: this is the oldest of them.
  std::uint32_t oldest_unsettled_ = kNone;
  std::size_t unsettled_count_ = 0;
  std::size_t size_ = 0;
  std::uint32_t uses_ = 0;  // the high half of the next tag
};

}  // namespace tidepool::proxy
