// A route's queue with its optional spool (durable_queue.h says how they fit together).
#include "tidepool/proxy/durable_queue.h"

#include <algorithm>

#include "tidepool/protocol/spool_record.h"
#include "tidepool/proxy/startup_error.h"

namespace tidepool::proxy {
namespace {

// The spool stores a message as a record: its frames plus this much per message, for up to
// this many frames (more frames cost 4 bytes each; request-reply messages carry 3 or 4).
constexpr std::size_t kSpoolFramesAllowance = 16;

// What libzmq may hold in this process toward one backend peer beyond its pipe's high-water
// mark: the engine's encoder batch (out_batch_size, 8 KiB), which a write the kernel took only
// in part leaves filled; a message costs at least 2 bytes in it (a 0-byte frame's header).
constexpr std::uint64_t kEngineBatchMessages = 8192 / 2;

// The spool's bound on live record bytes. Its records mirror the queue, which max_bytes
// already bounds (by payload bytes, passed by at most one message under `block`), so the
// spool gets max_bytes plus what records add: one message over the bound and each queued
// message's record overhead. A lower bound would make the spool refuse (spool_error) what
// the queue still takes, and `block` would then lose messages instead of pushing back.
std::size_t spool_max_bytes(const QueueConfig& queue) {
  return queue.max_bytes + queue.max_message_bytes +
         queue.max_messages * protocol::message_record_overhead(kSpoolFramesAllowance);
}

}  // namespace

DurableQueue::DurableQueue(const RouteConfig& config)
    : config_(config),
      queue_(config.queue.max_messages, config.queue.max_bytes, config.queue.overflow) {}

DurableQueue::~DurableQueue() = default;

void DurableQueue::open(Clock::time_point now) {
  if (!config_.spool) return;
  const SpoolConfig& c = *config_.spool;
  SpoolOptions options;
  options.dir = c.dir;
  options.route = config_.name;
  options.fsync = c.fsync;
  options.fsync_interval = std::chrono::milliseconds(c.fsync_interval_ms);
  options.max_bytes = spool_max_bytes(config_.queue);
  // Generous: a record longer than this reads back as corrupt, so a spool written with a
  // larger max_message_bytes must still replay after the limit is lowered.
  options.max_record_bytes =
      std::max(protocol::kDefaultMaxRecordBytes,
               2 * config_.queue.max_message_bytes + protocol::message_record_overhead(1));
  try {
    spool_ = std::make_unique<Spool>(options);
  } catch (const SpoolError& e) {
    throw StartupError("route " + config_.name + ": " + e.what());
  }
  // What was accepted before the restart goes first. The queue's bounds do not apply to it
  // (they may have been lowered since).
  spool_->replay([&](std::uint64_t sequence, std::vector<std::string_view> frames) {
    protocol::Multipart message;
    for (const auto frame : frames) message.push_back(frame);
    queue_.push_back(QueuedMessage{std::move(message), now, sequence, true});
  });
}

DurableQueue::Offered DurableQueue::offer(protocol::Multipart&& message, Clock::time_point now) {
  using Refusal = Offered::Refusal;
  Offered result;
  std::uint64_t sequence = 0;
  if (spool_) {
    // On disk before it counts as queued (see commit()); a message the queue would refuse is
    // not written.
    if (!queue_.would_accept(message.bytes())) {
      result.refused = Refusal::kQueueFull;
      return result;
    }
    const auto appended = spool_->append_uncommitted(message);
    if (!appended) {
      result.refused = Refusal::kSpoolError;
      return result;
    }
    sequence = *appended;
  }
  const OfferResult offered = queue_.offer(std::move(message), now, sequence);
  result.evicted = offered.evicted;
  if (offered.evicted > 0) dropped(offered.evicted_sequence);
  if (!offered.accepted) result.refused = Refusal::kQueueFull;
  return result;
}

std::size_t DurableQueue::commit() {
  if (!spool_ || spool_->commit()) return 0;
  // Not durable, and the spool took the records back: their messages are refused as a write
  // error would have refused them. They are the queue's tail (a batch is appended in order; a
  // message evicted meanwhile was counted as evicted).
  return queue_.remove_spooled_after(spool_->synced_sequence()).first;
}

std::size_t DurableQueue::requeue(std::vector<QueuedMessage>&& requests) {
  const bool block = config_.queue.overflow == Overflow::kBlock;
  const bool keep_oldest = config_.queue.overflow != Overflow::kDropOldest;
  std::size_t count = queue_.size();
  std::size_t bytes = queue_.bytes();
  std::vector<bool> keep(requests.size(), true);
  for (std::size_t k = 0; k < requests.size() && !block; ++k) {
    const std::size_t i = keep_oldest ? k : requests.size() - 1 - k;
    const std::size_t size = requests[i].message.bytes();
    keep[i] = count < queue_.max_messages() && bytes + size <= queue_.max_bytes();
    if (keep[i]) {
      count += 1;
      bytes += size;
    }
  }
  std::size_t refused = 0;
  for (std::size_t k = requests.size(); k-- > 0;) {
    if (keep[k]) {
      // Its record stays outstanding (not done) until a reply comes.
      queue_.push_front(std::move(requests[k]));
    } else {
      finished(requests[k].spool_sequence);
      ++refused;
    }
  }
  return refused;
}

void DurableQueue::dropped(std::uint64_t sequence) {
  if (!spool_ || sequence == 0) return;
  delivery_.delivered(sequence);  // a request queued again after a loss was outstanding
  delivery_.finished_through(sequence);
  mark_done();
}

void DurableQueue::awaiting(std::uint64_t sequence) {
  if (spool_) delivery_.awaiting(sequence);
}

void DurableQueue::finished(std::uint64_t sequence) {
  if (!spool_ || sequence == 0) return;
  delivery_.delivered(sequence);
  mark_done();
}

void DurableQueue::forwarded_spooled(std::uint64_t sequence, std::uint64_t peers, int hwm) {
  // libzmq's PUSH/DEALER spreads messages over the peers' pipes, so a message has left them
  // once more than all of them can hold was sent after it. Data the kernel took survives
  // kill -9 (the kernel still sends it), so only libzmq's share counts.
  delivery_.set_trail(std::max<std::uint64_t>(peers, 1) *
                      (static_cast<std::uint64_t>(hwm) + kEngineBatchMessages));
  delivery_.forwarded(sequence);
  mark_done();
}

void DurableQueue::all_delivered() {
  if (!spool_) return;
  delivery_.all_delivered();
  mark_done();
}

std::size_t DurableQueue::expire(Clock::time_point now, Clock::duration ttl) {
  std::uint64_t last_sequence = 0;
  const auto [messages, bytes] = queue_.expire(now, ttl, &last_sequence);
  if (messages > 0) dropped(last_sequence);
  return messages;
}

DurableQueue::AtExit DurableQueue::close() {
  AtExit result;
  const auto [messages, bytes] = queue_.clear(&result.kept);
  // Without a spool this is everything queued. With one, every queued message has a record
  // (requests queued again after a loss keep theirs) and stays for the next start.
  result.dropped = messages - result.kept;
  if (spool_) result.synced = spool_->sync();
  return result;
}

void DurableQueue::tick(Clock::time_point now) {
  // Cheap when there is nothing to do: writes the lazy done record, fsyncs when due.
  if (spool_) spool_->tick(now);
}

std::optional<Clock::time_point> DurableQueue::next_tick(Clock::time_point now) const {
  if (!spool_ || !spool_->needs_tick()) return std::nullopt;
  return now + std::chrono::milliseconds(config_.spool->fsync_interval_ms);
}

}  // namespace tidepool::proxy
