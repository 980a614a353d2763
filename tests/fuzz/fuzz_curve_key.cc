// libFuzzer target: CURVE key files and Z85 (tidepool/protocol/curve_key.h).
//
// Input: one selector byte, then text. The parsers must never crash, and what they accept
// must be consistent: every key they return is a valid key that decodes to 32 bytes and
// encodes back to itself; Z85 decoding round-trips.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "tidepool/protocol/curve_key.h"

namespace tp = tidepool::protocol;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void check_key(const std::string& key) {
  check(!tp::curve_key_problem(key));
  const auto bytes = tp::z85_decode(key);
  check(bytes && bytes->size() == tp::kCurveKeyBytes);
  check(tp::z85_encode(bytes->data(), bytes->size()) == key);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 3) {
    case 0: {
      const auto parsed = tp::parse_curve_certificate(text);
      if (const auto* certificate = std::get_if<tp::CurveCertificate>(&parsed)) {
        check_key(certificate->public_key);
        if (certificate->secret_key) check_key(*certificate->secret_key);
        // What keygen writes from these keys reads back the same.
        const auto again = tp::parse_curve_certificate(
            certificate->secret_key
                ? tp::format_secret_certificate(certificate->public_key, *certificate->secret_key,
                                                "now")
                : tp::format_public_certificate(certificate->public_key, "now"));
        check(std::get<tp::CurveCertificate>(again).public_key == certificate->public_key);
      }
      break;
    }
    case 1: {
      const auto parsed = tp::parse_curve_key_list(text);
      if (const auto* keys = std::get_if<std::vector<std::string>>(&parsed)) {
        for (const auto& key : *keys) check_key(key);
      }
      break;
    }
    default: {
      if (const auto bytes = tp::z85_decode(text)) {
        check(bytes->size() == text.size() / 5 * 4);
        check(tp::z85_encode(bytes->data(), bytes->size()) == text);
      }
      break;
    }
  }
  return 0;
}
