// suggest.h: the edit distance (with swaps) and when a name is close enough to suggest.
#include "tidepool/proxy/suggest.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using tidepool::proxy::closest_name;
using tidepool::proxy::did_you_mean;
using tidepool::proxy::edit_distance;

TEST_CASE("edit_distance counts insertions, deletions, substitutions and swaps as one each") {
  CHECK(edit_distance("", "") == 0);
  CHECK(edit_distance("abc", "abc") == 0);
  CHECK(edit_distance("", "abc") == 3);
  CHECK(edit_distance("abc", "") == 3);
  CHECK(edit_distance("hearbeat_ms", "heartbeat_ms") == 1);  // insertion
  CHECK(edit_distance("heartbeat_ms", "hearbeat_ms") == 1);  // deletion
  CHECK(edit_distance("drop_oldest", "drop-oldest") == 1);   // substitution
  CHECK(edit_distance("rotues", "routes") == 1);             // swap of neighbours
  CHECK(edit_distance("kitten", "sitting") == 3);
  CHECK(edit_distance("drop-all", "drop-oldest") == 5);
}

TEST_CASE("closest_name suggests only close names, the nearest first") {
  const std::vector<std::string> overflow = {"block", "drop-newest", "drop-oldest"};
  CHECK(closest_name("drop_oldest", overflow) == "drop-oldest");
  CHECK(closest_name("drop_newest", overflow) == "drop-newest");
  CHECK(closest_name("blok", overflow) == "block");
  CHECK_FALSE(closest_name("drop-all", overflow).has_value());
  CHECK_FALSE(closest_name("", overflow).has_value());
  // A short candidate allows one edit only.
  CHECK(closest_name("lg", {"log"}) == "log");
  CHECK_FALSE(closest_name("lx", {"log"}).has_value());
  // Never the word itself; the nearer of two wins.
  CHECK_FALSE(closest_name("block", {"block"}).has_value());
  CHECK(closest_name("--htp", {"--http-listen", "--http"}) == "--http");
}

TEST_CASE("did_you_mean formats the suggestion or nothing") {
  CHECK(did_you_mean("infoo", {"debug", "info"}) == " (did you mean \"info\"?)");
  CHECK(did_you_mean("verbose", {"debug", "info"}).empty());
}
