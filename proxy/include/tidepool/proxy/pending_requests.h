// PendingRequests: request-reply's requests awaiting their reply, in a table of slots that the
// tag each request carries addresses directly, kept in send order; and HeldRequest, the copy
// of a request a slot keeps in case it must be sent again.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "tidepool/protocol/multipart.h"
#include "tidepool/proxy/queued_message.h"

namespace tidepool::proxy {

// A request as held while its reply is awaited: the bytes of its frames up to
// kPackedFrameMax copied into one buffer of its own, larger frames shared with the message
// sent (reference-counted, no byte copy; they have an allocation of their own and pin no read
// buffer, multipart.h).
//
// Why bytes and not shared handles on every frame: a shared handle costs two atomic operations
// on the frame's connection metadata (copy and close), a cache line libzmq's I/O thread
// touches for every frame it reads. At 1,000 outstanding 64 B requests, copying the ~80 bytes
// of a request into a buffer the slot reuses took 5% less CPU per request than sharing them
// (10 interleaved runs each way), and held requests never pin libzmq's 8 KiB read buffers, so
// nothing has to copy them out later.
class HeldRequest {
 public:
  static constexpr std::size_t kPackedFrameMax = protocol::kSharedBufferMax;
  // A slot keeps a buffer up to this between uses (the usual request fits): 4,096 kept slots
  // then keep at most 4 MiB.
  static constexpr std::size_t kKeptCapacity = 1024;

  // Holds a copy of `message`'s frames (replacing what was held).
  void hold(const protocol::Multipart& message);
  // The held frames as a message of their own, in order; leaves this empty.
  protocol::Multipart take();
  // Frame i's bytes; i < frames().
  [[nodiscard]] std::string_view frame_view(std::size_t i) const;
  void clear();

  [[nodiscard]] std::size_t frames() const;
  [[nodiscard]] bool empty() const { return packed_.empty(); }  // every frame has a size field
  // Payload bytes over all frames.
  [[nodiscard]] std::size_t bytes() const;

 private:
  // A frame's size field saying: this frame is the next one of shared_.
  static constexpr std::uint32_t kShared = std::numeric_limits<std::uint32_t>::max();

  // Calls f(i, packed bytes or nullptr, index in shared_) for each frame i, in order, until f
  // returns false.
  template <typename F>
  void for_each_frame(F&& f) const;

  // Per frame, a 4-byte size and that many bytes, or kShared.
  std::string packed_;
  protocol::Multipart shared_;
};

// A forwarded request whose reply has not come.
struct PendingRequest {
  // Not an aggregate, for the reason QueuedMessage is not (queued_message.h).
  PendingRequest() noexcept {}  // NOLINT(modernize-use-equals-default): see above

  HeldRequest request;  // as received (no tag)
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
class PendingRequests {
 public:
  using Tag = std::uint64_t;

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

  // Removes and returns, oldest first, every request for which pred(request) holds.
  template <typename Pred>
  std::vector<PendingRequest> take_if(Pred pred) {
    std::vector<PendingRequest> taken;
    for (std::uint32_t i = oldest_; i != kNone;) {
      const std::uint32_t newer = slots_[i].newer;
      if (pred(slots_[i].request)) {
        taken.push_back(std::move(slots_[i].request));
        release(i);
      }
      i = newer;
    }
    return taken;
  }

  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }

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
  };

  void release(std::uint32_t index);

  std::vector<Slot> slots_;
  std::vector<std::uint32_t> free_;
  std::uint32_t oldest_ = kNone;
  std::uint32_t newest_ = kNone;
  std::size_t size_ = 0;
  std::uint32_t uses_ = 0;  // the high half of the next tag
};

}  // namespace tidepool::proxy
