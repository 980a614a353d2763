// `tidepool top` in a real terminal: tmux runs it at a fixed size against a real tidepool
// with traffic; capture-pane reads the screen. Asserts the rows and columns (aligned with a
// route name longer than the ROUTE column), the drops by reason, and that the rates move
// with the traffic and fall back to 0 when it stops.
#include <doctest/doctest.h>

#include <unistd.h>

#include <sstream>
#include <string>
#include <vector>

#include "harness.h"

using namespace tidepool::test;
using nlohmann::json;

namespace {

constexpr const char* kTmux = "/usr/bin/tmux";  // run_command execs a path, not a PATH search

// A tmux server of its own (-L), so the test never touches anyone's sessions; -u: UTF-8
// whatever the locale, so "…" reaches the screen as itself.
class TmuxSession {
 public:
  TmuxSession(const std::string& command, int width, int height)
      : server_("tidepool-top-test-" + std::to_string(::getpid()) + "-" +
                std::to_string(sessions_++)) {
    const auto started =
        run_command({kTmux, "-u", "-L", server_, "new-session", "-d", "-s", "top", "-x",
                     std::to_string(width), "-y", std::to_string(height), command});
    ok_ = started.exit_code == 0;
    if (!ok_) MESSAGE("tmux new-session failed: " << started.output);
  }
  ~TmuxSession() { run_command({kTmux, "-L", server_, "kill-server"}); }
  TmuxSession(const TmuxSession&) = delete;
  TmuxSession& operator=(const TmuxSession&) = delete;

  [[nodiscard]] bool ok() const { return ok_; }
  // The screen as text, one string per line.
  [[nodiscard]] std::vector<std::string> screen() const {
    const auto captured =
        run_command({kTmux, "-u", "-L", server_, "capture-pane", "-p", "-t", "top"});
    std::vector<std::string> lines;
    std::istringstream in(captured.output);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

 private:
  static inline int sessions_ = 0;
  std::string server_;
  bool ok_ = false;
};

std::size_t width_of(const std::string& text) {
  std::size_t n = 0;
  for (const char c : text) n += (static_cast<unsigned char>(c) & 0xC0U) != 0x80U ? 1 : 0;
  return n;
}

// Start column (in characters) of `word` on `line`, npos when absent.
std::size_t column_of(const std::string& line, const std::string& word) {
  const auto at = line.find(word);
  return at == std::string::npos ? at : width_of(line.substr(0, at));
}

std::vector<std::string> cells(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string cell; in >> cell;) out.push_back(cell);
  return out;
}

// The screen's row for the route whose (possibly cut) name starts with `prefix`.
std::string row_of(const std::vector<std::string>& screen, const std::string& prefix) {
  for (const auto& line : screen) {
    if (line.starts_with(prefix)) return line;
  }
  return "";
}

// Columns: ROUTE DEPTH FILL% IN/s OUT/s PEERS IN_FLIGHT SPOOL DROPS.
std::string cell(const std::string& row, std::size_t index) {
  const auto all = cells(row);
  return index < all.size() ? all[index] : "";
}

}  // namespace

TEST_CASE("tidepool top in tmux: aligned rows per route, drops by reason, moving rates") {
  const int jobs_front = free_port();
  const int jobs_back = free_port();
  const int stuck_front = free_port();
  const TempDir spool;
  // Longer than the 32-character ROUTE column: cut with "…", the columns stay put.
  const std::string long_name = "a-route-name-much-longer-than-the-column-allows";
  json jobs = pipeline_route("jobs", jobs_front, jobs_back);
  jobs["spool"] = {{"dir", spool.path()}, {"fsync", "interval"}};
  json stuck = pipeline_route(long_name, stuck_front, free_port());  // no worker there
  stuck["queue"] = {{"max_messages", 10}, {"overflow", "drop-newest"}};
  Tidepool tidepool(with_routes({jobs, stuck}));
  REQUIRE(tidepool.wait_ready());

  zmq::context_t context;
  auto worker = bind_socket(context, zmq::socket_type::pull, jobs_back);
  auto client = connect_socket(context, zmq::socket_type::push, jobs_front);
  auto stuck_client = connect_socket(context, zmq::socket_type::push, stuck_front);
  for (int i = 0; i < 30; ++i) stuck_client.send(zmq::buffer(std::string("x")));
  REQUIRE(tidepool.wait_metric("tidepool_dropped_messages_total",
                               {{"route", long_name}, {"reason", "queue_full"}}, 20));

  TmuxSession tmux(std::string(TIDEPOOL_BINARY) +
                       " top --http 127.0.0.1:" + std::to_string(tidepool.http_port()),
                   150, 20);
  REQUIRE(tmux.ok());

  // Traffic: a few messages per poll, each received by the worker, until a frame shows
  // a rate on both sides of the jobs route.
  int sent = 0;
  std::vector<std::string> screen;
  const auto drain_worker = [&] {
    zmq::message_t message;
    while (worker.recv(message, zmq::recv_flags::dontwait)) {
    }
  };
  const bool moving = wait_until(
      [&] {
        for (int i = 0; i < 20; ++i, ++sent)
          client.send(zmq::buffer("job " + std::to_string(sent)));
        drain_worker();
        screen = tmux.screen();
        const auto row = row_of(screen, "jobs ");
        const auto in = cell(row, 3);
        const auto out = cell(row, 4);
        return !in.empty() && in != "-" && std::stod(in) > 0 && out != "-" && std::stod(out) > 0;
      },
      20s);
  std::string shown;
  for (const auto& line : screen) shown += line + "\n";
  CAPTURE(shown);
  REQUIRE(moving);

  // The header and the rows.
  std::string header;
  for (const auto& line : screen) {
    if (line.starts_with("ROUTE")) header = line;
  }
  REQUIRE(!header.empty());
  CHECK(screen[0].starts_with("tidepool "));
  const auto jobs_row = row_of(screen, "jobs ");
  const std::string cut = long_name.substr(0, 31) + "…";
  const auto stuck_row = row_of(screen, cut);
  REQUIRE(!jobs_row.empty());
  REQUIRE(!stuck_row.empty());
  CHECK(cells(header) == std::vector<std::string>{"ROUTE", "DEPTH", "FILL%", "IN/s", "OUT/s",
                                                  "PEERS", "IN_FLIGHT", "SPOOL", "DROPS"});
  // Aligned: each numeric cell of each row ends where its header ends (right-aligned), the
  // long name included; the ROUTE column is the cut name's width.
  for (const auto& row : {jobs_row, stuck_row}) {
    CAPTURE(row);
    const auto row_cells = cells(row);
    REQUIRE(row_cells.size() >= 9);
    const auto header_cells = cells(header);
    std::size_t from = 0;
    std::size_t header_from = 0;
    for (std::size_t c = 0; c < 8; ++c) {
      const auto at = row.find(row_cells[c], from);
      const auto header_at = header.find(header_cells[c], header_from);
      from = at + row_cells[c].size();
      header_from = header_at + header_cells[c].size();
      if (c == 0) continue;
      CHECK_MESSAGE(width_of(row.substr(0, from)) == width_of(header.substr(0, header_from)),
                    header_cells[c]);
    }
    CHECK(column_of(row, cell(row, 8)) == column_of(header, "DROPS"));  // left-aligned
  }
  CHECK(column_of(header, "DEPTH") > 32);
  // The stuck route: full at 10 of 10, one client and no worker, 20 refused, no spool.
  CHECK(cell(stuck_row, 1) == "10");
  CHECK(cell(stuck_row, 2) == "100.0");
  CHECK(cell(stuck_row, 5) == "1/0");
  CHECK(cell(stuck_row, 7) == "-");
  CHECK(cell(stuck_row, 8) == "queue_full=20");
  // The jobs route: one client, one worker, a spool on disk, nothing dropped.
  CHECK(cell(jobs_row, 5) == "1/1");
  CHECK(cell(jobs_row, 7) != "-");
  CHECK(cell(jobs_row, 8) == "-");

  // Traffic stops: the rates fall back to 0 on a later frame.
  const bool settled = wait_until(
      [&] {
        drain_worker();
        const auto row = row_of(tmux.screen(), "jobs ");
        return cell(row, 3) == "0.0" && cell(row, 4) == "0.0";
      },
      20s);
  CHECK(settled);
  CHECK(tidepool.metric("tidepool_forwarded_messages_total", {{"route", "jobs"}}) == sent);
}

TEST_CASE("status --watch is top") {
  Tidepool tidepool(with_routes({pipeline_route("watched", free_port(), free_port())}));
  REQUIRE(tidepool.wait_ready());
  TmuxSession tmux(std::string(TIDEPOOL_BINARY) +
                       " status --watch --http 127.0.0.1:" + std::to_string(tidepool.http_port()),
                   120, 10);
  REQUIRE(tmux.ok());
  std::vector<std::string> screen;
  // top's columns (not status's MODE/RECEIVED), and a second frame with a rate in it.
  CHECK(wait_until(
      [&] {
        screen = tmux.screen();
        const auto row = row_of(screen, "watched ");
        return !row.empty() && cell(row, 3) == "0.0";
      },
      20s));
  bool top_header = false;
  for (const auto& line : screen) {
    if (line.starts_with("ROUTE") && cells(line).at(1) == "DEPTH") top_header = true;
  }
  CHECK(top_header);
}
