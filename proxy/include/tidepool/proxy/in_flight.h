// InFlight: requests forwarded and not answered yet, by routing id or correlation key, with
// O(1) completion and expiry (in_flight gauge, timeouts, request durations).
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tidepool::proxy {

// Requests forwarded and not answered yet, keyed by a correlation key such as request_id
// (Correlation): several may be outstanding under one key, completed oldest first, and keys
// complete in any order. (Request-reply's own pending requests are RequestReply's.)
//
// Every operation is O(1): entries sit in one list in forwarding order (for expiry) and are
// chained per key (for completion). Memory is about 250 bytes per entry, key included
// (measured: 100,000 tracked request_ids cost 16–25 MiB of RSS).
class InFlight {
 public:
  using Clock = std::chrono::steady_clock;

  explicit InFlight(std::size_t max_entries) : max_entries_(max_entries) {}

  // Records a forwarded request. Returns true when the oldest entry had to be forgotten to
  // stay within max_entries (callers count that like a timeout).
  bool add(std::string_view key, Clock::time_point sent);
  // Completes the oldest outstanding request for `key`; returns when it was sent, or nullopt
  // when none is outstanding under that key.
  std::optional<Clock::time_point> complete(std::string_view key);
  // Forgets entries sent before `deadline`; returns how many.
  std::size_t expire(Clock::time_point deadline);

  [[nodiscard]] std::size_t size() const { return by_age_.size(); }
  [[nodiscard]] bool empty() const { return by_age_.empty(); }

 private:
  struct Entry;
  using Iterator = std::list<Entry>::iterator;
  struct Entry {
    Clock::time_point sent;
    const std::string* key;  // points into by_key_ (node-based: stable)
    Iterator next_same_key;
    bool has_next = false;
  };
  struct Chain {
    Iterator head;
    Iterator tail;
  };

  void remove_oldest();

  std::list<Entry> by_age_;
  std::unordered_map<std::string, Chain> by_key_;
  std::size_t max_entries_;
};

}  // namespace tidepool::proxy
