// The tables of `tidepool status` and `tidepool top` (status_view.h).
#include "tidepool/proxy/status_view.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <map>

namespace tidepool::proxy {
namespace {

using nlohmann::json;

// object[key], or null when absent (operator[] on a const json must not be given a missing key).
const json& member(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  const auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

std::uint64_t count(const json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_number() ? it->get<std::uint64_t>() : 0;
}

std::string fixed(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

// Per-second rate of a counter between two documents; "-" without a previous one. A
// counter that went down means tidepool restarted in between: no rate for that frame.
std::string rate(const json& route, const json* before, const char* key, double seconds) {
  if (before == nullptr || seconds <= 0) return "-";
  const std::uint64_t now = count(route, key);
  const std::uint64_t then = count(*before, key);
  if (now < then) return "-";
  return fixed(static_cast<double>(now - then) / seconds, 1);
}

// The drop counters that are not zero, "reason=N" each, "-" when none.
std::string drops_by_reason(const json& route, std::uint64_t& total) {
  std::string text;
  total = 0;
  if (const auto it = route.find("dropped"); it != route.end()) {
    for (const auto& [reason, value] : it->items()) {
      const auto n = value.get<std::uint64_t>();
      total += n;
      if (n > 0) text += (text.empty() ? "" : " ") + reason + "=" + std::to_string(n);
    }
  }
  return text.empty() ? "-" : text;
}

// "reading", or "paused:REASON" while the route leaves its clients in libzmq's pipes
// (/status's frontend.paused: a full `block` queue, or the pipeline hold).
std::string frontend_state(const json& frontend) {
  const json& paused = member(frontend, "paused");
  return paused.is_string() ? "paused:" + paused.get<std::string>() : "reading";
}

const json* route_named(const json& status, const std::string& name) {
  if (!status.is_object() || !status.contains("routes")) return nullptr;
  for (const auto& route : member(status, "routes")) {
    if (route.value("name", "") == name) return &route;
  }
  return nullptr;
}

std::string header_line(const json& status, const std::string& address) {
  return "tidepool " + status.value("version", std::string("?")) + " at " + address +
         (status.value("draining", false) ? " (draining)" : "") + "\n";
}

}  // namespace

std::size_t display_width(const std::string& text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0U) != 0x80U;  // not a continuation byte
  }));
}

std::string truncate_display(const std::string& text, std::size_t width) {
  if (display_width(text) <= width || width == 0) return text;
  std::string out;
  std::size_t characters = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const bool starts_character = (static_cast<unsigned char>(text[i]) & 0xC0U) != 0x80U;
    if (starts_character && ++characters == width) break;
    out += text[i];
  }
  return out + "…";
}

std::string render_table(const std::vector<std::vector<std::string>>& rows,
                         const std::vector<bool>& left_aligned) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (std::size_t c = 0; c < row.size(); ++c)
      widths[c] = std::max(widths[c], display_width(row[c]));
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      const std::string padding(widths[c] - display_width(row[c]), ' ');
      const bool left = c < left_aligned.size() && left_aligned[c];
      const bool last = c + 1 == row.size();
      if (c > 0) line += "  ";
      line += left ? row[c] + (last ? "" : padding) : padding + row[c];
    }
    out += line + "\n";
  }
  return out;
}

std::string human_bytes(double bytes) {
  static constexpr const char* kUnits[] = {"Ki", "Mi", "Gi", "Ti"};
  if (bytes < 1024) return fixed(bytes, 0);
  std::size_t unit = 0;
  bytes /= 1024;
  while (bytes >= 1024 && unit + 1 < std::size(kUnits)) {
    bytes /= 1024;
    ++unit;
  }
  return fixed(bytes, 1) + kUnits[unit];
}

std::string render_status(const json& status, const std::string& address) {
  std::vector<std::vector<std::string>> rows = {{"ROUTE", "MODE", "BACKEND", "PEERS", "FRONTEND",
                                                 "QUEUED", "BYTES", "OLDEST_S", "IN_FLIGHT",
                                                 "RECEIVED", "FORWARDED", "DROPPED"}};
  for (const auto& route : member(status, "routes")) {
    std::uint64_t dropped = 0;
    drops_by_reason(route, dropped);
    rows.push_back({truncate_display(route.value("name", std::string("?")), kMaxRouteColumn),
                    route.value("mode", std::string("?")),
                    member(route, "backend").value("up", false) ? "up" : "DOWN",
                    std::to_string(count(member(route, "backend"), "peers")),
                    frontend_state(member(route, "frontend")),
                    std::to_string(count(member(route, "queue"), "messages")),
                    std::to_string(count(member(route, "queue"), "bytes")),
                    fixed(member(route, "queue").value("oldest_age_seconds", 0.0), 1),
                    std::to_string(count(route, "in_flight")),
                    std::to_string(count(route, "received")),
                    std::to_string(count(route, "forwarded")), std::to_string(dropped)});
  }
  return header_line(status, address) + render_table(rows, {true, true, true, false, true});
}

std::string render_top(const json& current, const json& previous, double seconds,
                       const std::string& address) {
  std::vector<std::vector<std::string>> rows = {
      {"ROUTE", "DEPTH", "FILL%", "IN/s", "OUT/s", "PEERS", "IN_FLIGHT", "SPOOL", "DROPS"}};
  for (const auto& route : member(current, "routes")) {
    const std::string name = route.value("name", std::string("?"));
    const json* before = route_named(previous, name);
    const json& queue = member(route, "queue");
    // Fill: the nearer of the two bounds, since either one makes the queue full.
    const double messages = static_cast<double>(count(queue, "messages"));
    const double bytes = static_cast<double>(count(queue, "bytes"));
    const double capacity_messages = static_cast<double>(count(queue, "capacity_messages"));
    const double capacity_bytes = static_cast<double>(count(queue, "capacity_bytes"));
    double fill = 0;
    if (capacity_messages > 0) fill = std::max(fill, messages / capacity_messages);
    if (capacity_bytes > 0) fill = std::max(fill, bytes / capacity_bytes);
    std::uint64_t dropped = 0;
    const std::string reasons = drops_by_reason(route, dropped);
    const json& spool = member(route, "spool");
    rows.push_back(
        {truncate_display(name, kMaxRouteColumn), std::to_string(count(queue, "messages")),
         fixed(100 * fill, 1), rate(route, before, "received", seconds),
         rate(route, before, "forwarded", seconds),
         std::to_string(count(member(route, "frontend"), "peers")) + "/" +
             std::to_string(count(member(route, "backend"), "peers")),
         std::to_string(count(route, "in_flight")),
         spool.is_object() ? human_bytes(static_cast<double>(count(spool, "bytes"))) : "-",
         reasons});
  }
  return header_line(current, address) +
         "PEERS: clients/workers; FILL%: of the nearer queue bound; Ctrl-C quits\n\n" +
         render_table(rows, {true, false, false, false, false, false, false, false, true});
}

}  // namespace tidepool::proxy
