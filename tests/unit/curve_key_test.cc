// CURVE keys: Z85 (RFC 32), certificates as keygen, pyzmq and CZMQ write them, errors that
// name the line, key lists.
#include "tidepool/protocol/curve_key.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace tp = tidepool::protocol;

namespace {

// The key pair from libzmq's own CURVE tests (tests/testutil_security.cpp).
constexpr const char* kPublic = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";
constexpr const char* kSecret = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs";

// By value: callers pass temporaries.
template <typename T>
T ok(const std::variant<T, std::string>& result) {
  if (const auto* error = std::get_if<std::string>(&result)) FAIL("unexpected error: " << *error);
  return std::get<T>(result);
}

std::string error_of(const auto& result) {
  REQUIRE(std::holds_alternative<std::string>(result));
  return std::get<std::string>(result);
}

}  // namespace

TEST_CASE("Z85 matches RFC 32's test vector and round-trips") {
  const std::vector<std::uint8_t> hello{0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B};
  CHECK(tp::z85_encode(hello.data(), hello.size()) == "HelloWorld");
  CHECK(tp::z85_decode("HelloWorld") == hello);

  std::vector<std::uint8_t> all(256);
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint8_t>(i * 7);
  CHECK(tp::z85_decode(tp::z85_encode(all.data(), all.size())) == all);
}

TEST_CASE("Z85 refuses bad lengths, characters and groups beyond 32 bits") {
  CHECK_FALSE(
      tp::z85_decode("Hello"
                     "Worl"));
  CHECK_FALSE(tp::z85_decode("Hello Worl"));
  CHECK_FALSE(tp::z85_decode("#####"));  // 85^5 - 1 > 2^32 - 1
  CHECK(tp::z85_decode("%nSc0") == std::vector<std::uint8_t>{0xFF, 0xFF, 0xFF, 0xFF});
  CHECK_FALSE(tp::z85_decode("%nSc1"));  // 2^32 exactly
}

TEST_CASE("a CURVE key is 40 Z85 characters") {
  CHECK_FALSE(tp::curve_key_problem(kPublic));
  CHECK(tp::curve_key_problem("short").value().find("40") != std::string::npos);
  std::string bad = kPublic;
  bad[3] = ' ';
  CHECK(tp::curve_key_problem(bad).value().find("Z85") != std::string::npos);
}

TEST_CASE("certificates written by keygen read back, as pyzmq and CZMQ write them") {
  const auto secret = tp::format_secret_certificate(kPublic, kSecret, "2026-11-22 10:00:00");
  const auto both = ok(tp::parse_curve_certificate(secret));
  CHECK(both.public_key == kPublic);
  CHECK(both.secret_key == kSecret);
  CHECK(secret.find("**Secret**") != std::string::npos);

  const auto public_only =
      ok(tp::parse_curve_certificate(tp::format_public_certificate(kPublic, "now")));
  CHECK(public_only.public_key == kPublic);
  CHECK_FALSE(public_only.secret_key);

  // pyzmq's layout, metadata entries and CRLF line ends included; quotes are optional.
  const std::string pyzmq = std::string("#   ****  Generated on 2026 by pyzmq  ****\r\n") +
                            "metadata\r\n    name = box\r\ncurve\r\n" +
                            "    public-key = " + kPublic + "\r\n";
  CHECK(ok(tp::parse_curve_certificate(pyzmq)).public_key == kPublic);
}

TEST_CASE("a broken certificate says which line and why") {
  CHECK(error_of(tp::parse_curve_certificate("metadata\ncurve\n")).find("no public-key") !=
        std::string::npos);
  const auto error = error_of(tp::parse_curve_certificate("curve\n  public-key = \"abc\"\n"));
  CHECK(error.find("line 2") != std::string::npos);
  CHECK(error.find("40") != std::string::npos);
  const std::string twice = std::string("public-key = ") + kPublic + "\npublic-key = " + kPublic;
  CHECK(error_of(tp::parse_curve_certificate(twice)).find("line 2: a second public-key") !=
        std::string::npos);
}

TEST_CASE("key lists: one key per line, comments allowed") {
  const std::string text =
      std::string("# research boxes\n\n") + kPublic + "  box-1\n" + kSecret + "\n";
  const auto keys = ok(tp::parse_curve_key_list(text));
  REQUIRE(keys.size() == 2);
  CHECK(keys[0] == kPublic);
  CHECK(keys[1] == kSecret);
  CHECK(ok(tp::parse_curve_key_list("")).empty());

  const auto error = error_of(tp::parse_curve_key_list(std::string(kPublic) + "\nnot-a-key\n"));
  CHECK(error.find("line 2") != std::string::npos);
}
