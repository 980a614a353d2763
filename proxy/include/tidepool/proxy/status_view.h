// What `tidepool status` and `tidepool top` print from a running tidepool's /status
// document: aligned tables, rates from two documents. Pure text, no I/O, so it is tested
// directly and, through the binary, in a real terminal.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tidepool::proxy {

// Route names wider than this are cut with "…" so one long name cannot push the other
// columns off the screen; shorter ones widen the ROUTE column to the longest.
constexpr std::size_t kMaxRouteColumn = 32;

// Text columns, each as wide as its widest cell (counted in characters, not bytes); the
// first column is left-aligned, the others right-aligned except `left_aligned` ones.
std::string render_table(const std::vector<std::vector<std::string>>& rows,
                         const std::vector<bool>& left_aligned);

// `text` cut to `width` characters, the last one "…" when it was longer.
std::string truncate_display(const std::string& text, std::size_t width);
// Characters of UTF-8 `text` (each code point counts one column).
std::size_t display_width(const std::string& text);

// `tidepool status`: one line per route, totals since the start.
std::string render_status(const nlohmann::json& status, const std::string& address);

// `tidepool top`: one line per route with the rates between `previous` and `current`
// (`seconds` apart; `previous` null on the first frame: rates show "-").
std::string render_top(const nlohmann::json& current, const nlohmann::json& previous,
                       double seconds, const std::string& address);

// 1536 → "1.5Ki"; below 1024 the plain number.
std::string human_bytes(double bytes);

}  // namespace tidepool::proxy
