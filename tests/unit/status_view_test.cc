// status_view.h: the tables of `status` and `top` stay aligned (long and non-ASCII route
// names), rates come from two documents, fill is of the nearer bound, drops by reason, and
// status names why a route leaves its clients unread.
#include "tidepool/proxy/status_view.h"

#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <vector>

using nlohmann::json;
using tidepool::proxy::display_width;
using tidepool::proxy::human_bytes;
using tidepool::proxy::kMaxRouteColumn;
using tidepool::proxy::render_status;
using tidepool::proxy::render_table;
using tidepool::proxy::render_top;
using tidepool::proxy::truncate_display;

namespace {

json route(const std::string& name, std::uint64_t received, std::uint64_t forwarded) {
  return {{"name", name},
          {"mode", "pipeline"},
          {"frontend", {{"peers", 2}}},
          {"backend", {{"peers", 1}, {"up", true}}},
          {"queue",
           {{"messages", 250},
            {"bytes", 1000},
            {"capacity_messages", 1000},
            {"capacity_bytes", 2000},
            {"oldest_age_seconds", 1.25}}},
          {"in_flight", 3},
          {"received", received},
          {"forwarded", forwarded},
          {"dropped", {{"queue_full", 0}, {"expired", 4}, {"evicted", 7}}},
          {"spool", nullptr}};
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Start column (in characters) of `word` on `line`, or npos.
std::size_t column_of(const std::string& line, const std::string& word) {
  const auto at = line.find(word);
  return at == std::string::npos ? at : display_width(line.substr(0, at));
}

}  // namespace

TEST_CASE("display_width counts characters; truncate_display cuts with an ellipsis") {
  CHECK(display_width("abc") == 3);
  CHECK(display_width("é…x") == 3);
  CHECK(truncate_display("short", 10) == "short");
  CHECK(truncate_display("exactly10!", 10) == "exactly10!");
  CHECK(truncate_display("longer than ten", 10) == "longer th…");
  CHECK(display_width(truncate_display("ééééééééééééé", 5)) == 5);
}

TEST_CASE("render_table right-aligns numbers under their header, first column left") {
  const auto text = render_table({{"NAME", "N"}, {"a", "1"}, {"longer", "12345"}}, {true});
  CHECK(text == "NAME        N\na           1\nlonger  12345\n");
}

TEST_CASE("top: rates between two documents, fill of the nearer bound, drops by reason") {
  const json before = {{"version", "9.9"}, {"routes", {route("jobs", 100, 90)}}};
  json after = {{"version", "9.9"}, {"routes", {route("jobs", 300, 290)}}};
  after["routes"][0]["spool"] = {{"bytes", 3 * 1024 * 1024}};
  const auto first = lines(render_top(before, json(), 0, "127.0.0.1:1"));
  const auto second = lines(render_top(after, before, 2.0, "127.0.0.1:1"));
  REQUIRE(second.size() == 5);
  CHECK(second[0] == "tidepool 9.9 at 127.0.0.1:1");
  const std::string& header = second[3];
  const std::string& row = second[4];
  CHECK(header.starts_with("ROUTE"));
  CHECK(row.starts_with("jobs "));
  // 250 of 1000 messages, 1000 of 2000 bytes: the bytes bound is nearer.
  CHECK(row.find(" 50.0 ") != std::string::npos);
  CHECK(row.find(" 100.0 ") != std::string::npos);  // (300-100)/2 s and (290-90)/2 s
  CHECK(row.find(" 2/1 ") != std::string::npos);
  CHECK(row.find(" 3.0Mi ") != std::string::npos);
  CHECK(row.ends_with("evicted=7 expired=4"));  // reasons in name order, zeros left out
  // The first frame has no rates yet, and no spool shows "-".
  CHECK(first[4].find(" - ") != std::string::npos);
  // A counter that went down (a restart in between) gives no rate, not a huge one.
  const auto restarted = lines(render_top(before, after, 1.0, "x"));
  CHECK(restarted[4].find(" - ") != std::string::npos);
}

TEST_CASE("top and status stay aligned with long and non-ASCII route names") {
  const std::string long_name(60, 'r');
  const json document = {
      {"routes", {route("a", 1, 1), route(long_name, 1, 1), route("größe-ü", 1, 1)}}};
  for (const bool live : {true, false}) {
    CAPTURE(live);
    const auto text =
        live ? render_top(document, document, 1.0, "x") : render_status(document, "x");
    auto all = lines(text);
    std::vector<std::string> table(all.end() - 4, all.end());
    const std::string last_header = live ? "DROPS" : "DROPPED";
    const std::size_t header_end = column_of(table[0], last_header) + last_header.size();
    const std::size_t depth_end = column_of(table[0], "DEPTH") + 5;
    for (std::size_t i = 1; i < table.size(); ++i) {
      CAPTURE(table[i]);
      if (live) {
        // DEPTH (250 in every row) is right-aligned under its header, whatever the name.
        CHECK(column_of(table[i], " 250 ") + 4 == depth_end);
      } else {
        // Every status cell ends under its header's end, the last one included.
        CHECK(column_of(table[i], "pipeline") == kMaxRouteColumn + 2);
        CHECK(display_width(table[i]) == header_end);
      }
    }
    CHECK(table[2].starts_with(std::string(kMaxRouteColumn - 1, 'r') + "…"));
    CHECK(column_of(table[0], live ? "DEPTH" : "MODE") == kMaxRouteColumn + 2);
  }
}

TEST_CASE("status: the FRONTEND column says whether the route reads its clients, and if not why") {
  json paused = route("full", 1, 1);
  paused["frontend"]["paused"] = "queue_full";
  json reading = route("open", 1, 1);
  reading["frontend"]["paused"] = nullptr;
  const auto table = lines(render_status({{"routes", {paused, reading}}}, "x"));
  REQUIRE(table.size() >= 3);
  const std::string& header = table[table.size() - 3];
  const std::size_t at = column_of(header, "FRONTEND");
  REQUIRE(at != std::string::npos);
  CHECK(column_of(table[table.size() - 2], "paused:queue_full") == at);
  CHECK(column_of(table[table.size() - 1], "reading") == at);
}

TEST_CASE("human_bytes") {
  CHECK(human_bytes(0) == "0");
  CHECK(human_bytes(1023) == "1023");
  CHECK(human_bytes(1536) == "1.5Ki");
  CHECK(human_bytes(5.0 * 1024 * 1024 * 1024) == "5.0Gi");
}
