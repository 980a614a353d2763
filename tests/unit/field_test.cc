// Field extraction: format detection, Swimmy's S-expressions and JSON, escapes, keys in the
// wrong place, garbage, and a 9 MB body.
#include "tidepool/protocol/field.h"

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <string_view>

using tidepool::protocol::BodyFormat;
using tidepool::protocol::detect_format;
using tidepool::protocol::extract_field;
using tidepool::protocol::find_field;
using tidepool::protocol::unescape;
using namespace std::string_literals;

namespace {

// Verbatim from SWIMMY.md.
constexpr std::string_view kRequest =
    R"(((action . "BACKTEST") (strategy (name . "Hunted-H4-RSI-Reversion-Gen12-QUAL") (sma_short . 7) (sma_long . 14) (sl . 0.25) (tp . 0.5) (volume . 0.01) (indicator_type . rsi) (timeframe . 240) (filter_tf . "") (filter_period . 0) (filter_logic . "")) (request_id . "5f0c9a3e-2b7d-4c1a-9e8f-0d6b4a2c1e7f") (data_id "USDJPY_M1") (candles_file "/home/swimmy/data/historical/USDJPY_M1.csv") (symbol . "USDJPY") (timeframe 240)))";
constexpr std::string_view kResult =
    R"(((type . "BACKTEST_RESULT") (result . ((strategy_name . "Hunted-RSI-7-QUAL") (trades . 42) (sharpe . 0.45) (pnl . 0.1234) (win_rate . 0.476) (profit_factor . 1.12) (request_id . "3f2b9c1e-8a4d-4e6f-9b2a-1c3d5e7f9a0b")))))";
constexpr std::string_view kErrorResult =
    R"(((type . "BACKTEST_RESULT") (result . ((strategy_name . "X-OOS") (error . "Guardian binary missing") (sharpe . 0) (request_id . "cccccccc-0000-4000-8000-000000000000")))))";

std::optional<std::string> rid(std::string_view body) { return extract_field(body, "request_id"); }

}  // namespace

TEST_CASE("format detection") {
  CHECK(detect_format(kRequest) == BodyFormat::kSexpr);
  CHECK(detect_format("  \n{\"a\":1}") == BodyFormat::kJson);
  CHECK(detect_format("\xEF\xBB\xBF(a . 1)") == BodyFormat::kSexpr);
  CHECK(detect_format("") == BodyFormat::kUnknown);
  CHECK(detect_format("   ") == BodyFormat::kUnknown);
  CHECK(detect_format("hello") == BodyFormat::kUnknown);
}

TEST_CASE("SWIMMY request: top-level request_id and other fields") {
  CHECK(rid(kRequest) == "5f0c9a3e-2b7d-4c1a-9e8f-0d6b4a2c1e7f"s);
  CHECK(extract_field(kRequest, "action") == "BACKTEST"s);
  CHECK(extract_field(kRequest, "symbol") == "USDJPY"s);
  // One-element list form (KEY VALUE).
  CHECK(extract_field(kRequest, "timeframe") == "240"s);
  CHECK(extract_field(kRequest, "data_id") == "USDJPY_M1"s);
  CHECK(extract_field(kRequest, "candles_file") == "/home/swimmy/data/historical/USDJPY_M1.csv"s);
  // Keys only inside (strategy ...) must not match.
  CHECK_FALSE(extract_field(kRequest, "name"));
  CHECK_FALSE(extract_field(kRequest, "sma_short"));
  CHECK_FALSE(extract_field(kRequest, "indicator_type"));
  // (strategy ...) has a list value, not an atom.
  CHECK_FALSE(extract_field(kRequest, "strategy"));
  CHECK_FALSE(extract_field(kRequest, "absent"));

  const auto raw = find_field(kRequest, "request_id");
  REQUIRE(raw);
  CHECK(raw->quoted);
  CHECK_FALSE(raw->has_escapes);
  CHECK(raw->format == BodyFormat::kSexpr);
  // A view into the body, not a copy.
  CHECK(raw->text.data() >= kRequest.data());
  CHECK(raw->text.data() + raw->text.size() <= kRequest.data() + kRequest.size());
}

TEST_CASE("SWIMMY results: request_id inside (result . (...))") {
  CHECK(rid(kResult) == "3f2b9c1e-8a4d-4e6f-9b2a-1c3d5e7f9a0b"s);
  CHECK(rid(kErrorResult) == "cccccccc-0000-4000-8000-000000000000"s);
  CHECK(extract_field(kResult, "type") == "BACKTEST_RESULT"s);
  CHECK(extract_field(kResult, "trades") == "42"s);
  CHECK(extract_field(kErrorResult, "error") == "Guardian binary missing"s);
  CHECK(extract_field(kErrorResult, "sharpe") == "0"s);
  const auto raw = find_field(kResult, "trades");
  REQUIRE(raw);
  CHECK_FALSE(raw->quoted);
  // The undotted spelling a Lisp printer produces for the same data.
  CHECK(
      rid(R"(((type . "BACKTEST_RESULT") (result (strategy_name . "X") (request_id . "u-1"))))") ==
      "u-1"s);
}

TEST_CASE("the MISSING answer") {
  constexpr std::string_view kMissing =
      R"(((type . "BACKTEST_RESULT") (result . ((strategy_name . "Legacy") (trades . 0) (request_id . "MISSING")))))";
  CHECK(rid(kMissing) == "MISSING"s);
  // A request without request_id (older senders).
  CHECK_FALSE(rid(R"(((action . "BACKTEST") (strategy (name . "A")) (symbol . "USDJPY")))"));
}

TEST_CASE("JSON results and requests") {
  CHECK(
      rid(R"({"type":"BACKTEST_RESULT","result":{"strategy_name":"X","sharpe":0.4,"request_id":"abc-123"}})") ==
      "abc-123"s);
  CHECK(rid(R"({"action": "BACKTEST", "request_id": "r-1", "strategy": {"request_id": "no"}})") ==
        "r-1"s);
  CHECK(extract_field(R"({"a": 12.5e3, "b": true})", "a") == "12.5e3"s);
  CHECK(extract_field(R"({"a": 12.5e3, "b": true})", "b") == "true"s);
  // Nested deeper than result: not found.
  CHECK_FALSE(rid(R"({"strategy": {"request_id": "no"}, "list": [{"request_id": "no"}]})"));
  CHECK_FALSE(rid(R"({"result": {"inner": {"request_id": "no"}}})"));
  // Strings that look like keys inside values are skipped as strings.
  CHECK(rid(R"({"note": "\"request_id\": \"fake\"", "request_id": "real"})") == "real"s);
  // An array element that is a string is not a key.
  CHECK_FALSE(rid(R"({"xs": ["request_id", "v"]})"));
  // After a nested container value, the scan continues at top level.
  CHECK(rid(R"({"a": [1, {"b": [2]}], "request_id": "after"})") == "after"s);
  CHECK(rid(R"({"result": {"x": 1}, "request_id": "top"})") == "top"s);
  // Escaped key.
  CHECK(rid(R"({"request\u005fid": "esc-key"})") == "esc-key"s);
  // Object value is not a string: not found.
  CHECK_FALSE(rid(R"({"request_id": {"x": 1}})"));
  // Keys are case-sensitive in JSON.
  CHECK_FALSE(rid(R"({"REQUEST_ID": "x"})"));
}

TEST_CASE("JSON escapes are resolved") {
  CHECK(extract_field(R"({"k": "a\"b\\c\/d\n\t"})", "k") == "a\"b\\c/d\n\t"s);
  CHECK(extract_field(R"({"k": "\u00e9\u20ac"})", "k") == "\xC3\xA9\xE2\x82\xAC"s);
  CHECK(extract_field(R"({"k": "\ud83d\ude00"})", "k") == "\xF0\x9F\x98\x80"s);
  CHECK(extract_field(R"({"k": "\ud83d!"})", "k") == "\xEF\xBF\xBD!"s);
  CHECK(extract_field(R"({"k": "\q\u12"})", "k") == R"(\q\u12)"s);
  CHECK(unescape(R"(a\)", BodyFormat::kJson) == R"(a\)"s);
  const auto raw = find_field(R"({"k": "a\"b"})", "k");
  REQUIRE(raw);
  CHECK(raw->has_escapes);
  CHECK(raw->text == R"(a\"b)");
}

TEST_CASE("S-expression strings with escaped quotes and parentheses") {
  CHECK(rid(R"(((note . "a \"(request_id . \"fake\")\" b") (request_id . "real")))") == "real"s);
  CHECK(rid(R"(((request_id . "with \"quote\" and (paren")))") == R"(with "quote" and (paren)"s);
  CHECK(rid(R"x(((msg . ")))))") (request_id . "x")))x") == "x"s);
  CHECK(extract_field(R"(((k . "back\\slash")))", "k") == R"(back\slash)"s);
  // Character literals and |quoted symbols| do not disturb the nesting.
  CHECK(rid(R"(((c . #\() (s . |a ) b|) (request_id . "y")))") == "y"s);
  // Comments.
  CHECK(rid("((a . 1) ; (request_id . \"no\")\n (request_id . \"z\"))") == "z"s);
  // Lisp symbols are case-insensitive.
  CHECK(rid(R"(((REQUEST_ID . "up")))") == "up"s);
}

TEST_CASE("S-expression: keys in the wrong place do not match") {
  CHECK_FALSE(rid(R"(((strategy (request_id . "nested"))))"));
  CHECK_FALSE(rid(R"(((a . ((request_id . "deep")))))"));
  CHECK_FALSE(rid(R"((request_id . "not-an-element"))"));
  CHECK_FALSE(rid(R"(((result . ((strategy (request_id . "deeper"))))))"));
  // Only the elements of the result's own alist are searched.
  CHECK_FALSE(rid(R"(((result . ((a . 1)) ((request_id . "after-the-alist")))))"));
  // Only the top-level result is searched.
  CHECK_FALSE(rid(R"(((x . ((result . ((request_id . "no")))))))"));
  CHECK_FALSE(rid(R"(((request_id . "a" "b")))"));
  CHECK_FALSE(rid(R"(((request_id . )))"));
  CHECK_FALSE(rid(R"(((request_id)))"));
  CHECK_FALSE(rid(R"(((request_id . . "x")))"));
  CHECK_FALSE(rid(R"(((request_id . ("x"))))"));
  // Key must be the head of the element.
  CHECK_FALSE(rid(R"(((x request_id . "v")))"));
  // First in document order wins.
  CHECK(rid(R"(((request_id . "first") (request_id . "second")))") == "first"s);
  // The key is an atom, the value may be any atom.
  CHECK(extract_field(R"(((flag . t) (n . -3.5e2)))", "flag") == "t"s);
  CHECK(extract_field(R"(((flag . t) (n . -3.5e2)))", "n") == "-3.5e2"s);
  CHECK(extract_field(R"(((k . "")))", "k") == ""s);
}

TEST_CASE("unbalanced, truncated and garbage input") {
  CHECK_FALSE(rid(""));
  CHECK_FALSE(rid("("));
  CHECK_FALSE(rid(")))((("));
  CHECK_FALSE(rid("((request_id . \"unterminated"));
  CHECK_FALSE(rid("((request_id . \"x\""));  // pair never closed
  CHECK_FALSE(rid("((request_id . \"x\\"));
  CHECK_FALSE(rid("((a . 1)))))) (request_id . \"after-end\"))"));
  CHECK_FALSE(rid("{"));
  CHECK_FALSE(rid("{\"request_id\""));
  CHECK_FALSE(rid("{\"request_id\":"));
  CHECK_FALSE(rid("{\"request_id\": \"x"));
  CHECK_FALSE(rid("{]]]]}}} \"request_id\": \"x\"}"));
  CHECK_FALSE(rid("[\"request_id\", \"x\"]"));
  CHECK(rid("((request_id . \"ok\") (broken") == "ok"s);  // text after a match is not validated
  // A complete pair followed by garbage is still a match.
  constexpr char kNul[] = "((a . \"\0\") (request_id . \"n\0l\"))";
  const std::string nul_body(kNul, sizeof(kNul) - 1);
  CHECK(rid(nul_body) == std::string("n\0l", 3));
  std::string garbage;
  for (int i = 0; i < 70000; ++i) garbage.push_back(static_cast<char>((i * 7919) & 0xFF));
  CHECK_NOTHROW(rid(garbage));
  CHECK_NOTHROW(rid("(" + garbage));
  CHECK_NOTHROW(rid("{" + garbage));
  // Deep nesting is fine: no recursion.
  CHECK_FALSE(rid(std::string(1000000, '(')));
  CHECK_FALSE(rid(std::string(1000000, '{')));
  CHECK_FALSE(rid("{" + std::string(1000000, '[')));
  const std::string deep = "((x . " + std::string(500000, '(') + std::string(500000, ')') +
                           ") (request_id . \"deep-ok\"))";
  CHECK(rid(deep) == "deep-ok"s);
}

TEST_CASE("9 MB inline-candle request") {
  // ~85 bytes per candle, 100,000 candles, request_id after the candles.
  std::string body = R"(((action . "BACKTEST") (strategy (name . "Big") (sl . 0.25)) (candles )";
  body.reserve(9'500'000);
  for (int i = 0; i < 100000; ++i) {
    body += "((t . " + std::to_string(3913000000LL + 60LL * i) +
            ") (o . 150.123) (h . 150.456) (l . 149.987) (c . 150.321) (v . 12.0)) ";
  }
  body += R"() (request_id . "9mb-0000-4000-8000-000000000000") (symbol . "USDJPY")))";
  CHECK(body.size() > 8'000'000);
  std::string json = R"({"action":"BACKTEST","candles":[)";
  for (int i = 0; i < 100000; ++i) {
    json += R"({"t":)" + std::to_string(3913000000LL + 60LL * i) +
            R"(,"o":150.123,"h":150.456,"l":149.987,"c":150.321,"v":12.0},)";
  }
  json += R"({}],"request_id":"json-9mb"})";
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(rid(body) == "9mb-0000-4000-8000-000000000000"s);
  CHECK_FALSE(extract_field(body, "o"));  // only inside candles
  CHECK(rid(json) == "json-9mb"s);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  MESSAGE("three scans of ~9 MB took " << ms << " ms");  // informative, no timing assertion
}
