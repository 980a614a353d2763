// CURVE key files (pure: text in, keys out). The format is ZeroMQ's certificate format as
// CZMQ and pyzmq write it (zcert, zmq.auth.create_certificates), so keys made by any of
// them, or by `tidepool keygen`, work everywhere:
//
//   #   comment lines
//   metadata
//   curve
//       public-key = "<40 Z85 characters>"
//       secret-key = "<40 Z85 characters>"      (secret certificates only)
//
// A key is 32 bytes, written as 40 characters of Z85 (ZeroMQ RFC 32).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace tidepool::protocol {

inline constexpr std::size_t kCurveKeyBytes = 32;
inline constexpr std::size_t kCurveKeyZ85Length = 40;

using CurveKeyBytes = std::array<std::uint8_t, kCurveKeyBytes>;

// Z85 (RFC 32) for whole 4-byte groups: `bytes.size()` must be a multiple of 4.
std::string z85_encode(const std::uint8_t* bytes, std::size_t size);
// nullopt unless `text` is a multiple of 5 characters, all in the Z85 alphabet, and every
// group fits 32 bits (some 5-character strings of the alphabet do not).
std::optional<std::vector<std::uint8_t>> z85_decode(std::string_view text);

// Why a key is not a key, or nullopt when `key` is a valid 40-character Z85 CURVE key.
std::optional<std::string> curve_key_problem(std::string_view key);

struct CurveCertificate {
  std::string public_key;                 // Z85
  std::optional<std::string> secret_key;  // Z85; only in secret certificates
};

// A certificate, or what is wrong with it (a message naming the line).
std::variant<CurveCertificate, std::string> parse_curve_certificate(std::string_view text);

// A list of public keys, one per line (the `authorized_keys` file form): blank lines and
// lines starting with '#' are skipped, and anything after the key and whitespace is a
// comment ("<key> research-box-3"). Returns the keys or what is wrong (naming the line).
std::variant<std::vector<std::string>, std::string> parse_curve_key_list(std::string_view text);

// Certificate text in the format above. `generated` goes into the banner ("2026-11-22
// 10:00:00"). The secret certificate carries both keys.
std::string format_public_certificate(std::string_view public_key, std::string_view generated);
std::string format_secret_certificate(std::string_view public_key, std::string_view secret_key,
                                      std::string_view generated);

}  // namespace tidepool::protocol
