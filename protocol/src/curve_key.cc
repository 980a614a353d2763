// CURVE key files and Z85 (see curve_key.h): the Z85 codec, certificate parsing with errors
// that name the line, and key lists.
#include "tidepool/protocol/curve_key.h"

#include <string>

namespace tidepool::protocol {
namespace {

constexpr std::string_view kZ85Alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
constexpr std::uint64_t kGroupLimit = 1ULL << 32;

// Character → digit, or -1 for characters outside the alphabet.
constexpr std::array<int, 256> decode_table() {
  std::array<int, 256> table{};
  for (int& value : table) value = -1;
  for (std::size_t i = 0; i < kZ85Alphabet.size(); ++i) {
    table[static_cast<unsigned char>(kZ85Alphabet[i])] = static_cast<int>(i);
  }
  return table;
}
constexpr std::array<int, 256> kZ85Digits = decode_table();

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

// Calls `line(number, text)` for each line (1-based); stops when it returns an error.
template <typename Fn>
std::optional<std::string> for_each_line(std::string_view text, Fn&& line) {
  std::size_t number = 0;
  while (!text.empty()) {
    ++number;
    const auto end = text.find('\n');
    const auto current = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    if (auto error = line(number, trim(current))) return error;
  }
  return std::nullopt;
}

std::string at_line(std::size_t number, std::string_view problem) {
  return "line " + std::to_string(number) + ": " + std::string(problem);
}

// The value of `name = "value"` (quotes optional, as CZMQ and pyzmq read it), or nullopt
// when the line sets something else.
std::optional<std::string_view> setting(std::string_view line, std::string_view name) {
  if (!line.starts_with(name)) return std::nullopt;
  auto rest = trim(line.substr(name.size()));
  if (!rest.starts_with('=')) return std::nullopt;
  rest = trim(rest.substr(1));
  const auto quote = rest.find_first_not_of("\"'");
  rest = quote == std::string_view::npos ? std::string_view{} : rest.substr(quote);
  const auto end = rest.find_last_not_of("\"'");
  return end == std::string_view::npos ? std::string_view{} : rest.substr(0, end + 1);
}

}  // namespace

std::string z85_encode(const std::uint8_t* bytes, std::size_t size) {
  std::string text;
  text.reserve(size / 4 * 5);
  for (std::size_t i = 0; i + 4 <= size; i += 4) {
    std::uint32_t value = (std::uint32_t{bytes[i]} << 24) | (std::uint32_t{bytes[i + 1]} << 16) |
                          (std::uint32_t{bytes[i + 2]} << 8) | std::uint32_t{bytes[i + 3]};
    char group[5];
    for (int k = 4; k >= 0; --k) {
      group[k] = kZ85Alphabet[value % 85];
      value /= 85;
    }
    text.append(group, 5);
  }
  return text;
}

std::optional<std::vector<std::uint8_t>> z85_decode(std::string_view text) {
  if (text.size() % 5 != 0) return std::nullopt;
  std::vector<std::uint8_t> bytes;
  bytes.reserve(text.size() / 5 * 4);
  for (std::size_t i = 0; i < text.size(); i += 5) {
    std::uint64_t value = 0;
    for (std::size_t k = 0; k < 5; ++k) {
      const int digit = kZ85Digits[static_cast<unsigned char>(text[i + k])];
      if (digit < 0) return std::nullopt;
      value = value * 85 + static_cast<std::uint64_t>(digit);
    }
    if (value >= kGroupLimit) return std::nullopt;
    for (int shift = 24; shift >= 0; shift -= 8) {
      bytes.push_back(static_cast<std::uint8_t>(value >> shift));
    }
  }
  return bytes;
}

std::optional<std::string> curve_key_problem(std::string_view key) {
  if (key.size() != kCurveKeyZ85Length) {
    return "a CURVE key is 40 Z85 characters, not " + std::to_string(key.size());
  }
  if (!z85_decode(key)) return "not valid Z85 (ZeroMQ RFC 32)";
  return std::nullopt;
}

std::variant<CurveCertificate, std::string> parse_curve_certificate(std::string_view text) {
  std::optional<std::string> public_key;
  std::optional<std::string> secret_key;
  auto error = for_each_line(
      text, [&](std::size_t number, std::string_view line) -> std::optional<std::string> {
        if (line.empty() || line.starts_with('#')) return std::nullopt;
        for (auto [name, slot] :
             {std::pair{"public-key", &public_key}, {"secret-key", &secret_key}}) {
          const auto value = setting(line, name);
          if (!value) continue;
          if (*slot) return at_line(number, std::string("a second ") + name);
          if (auto problem = curve_key_problem(*value)) {
            return at_line(number, std::string(name) + ": " + *problem);
          }
          *slot = std::string(*value);
        }
        return std::nullopt;
      });
  if (error) return *error;
  if (!public_key) return std::string("no public-key line: not a ZeroMQ CURVE certificate");
  return CurveCertificate{*public_key, secret_key};
}

std::variant<std::vector<std::string>, std::string> parse_curve_key_list(std::string_view text) {
  std::vector<std::string> keys;
  auto error = for_each_line(
      text, [&](std::size_t number, std::string_view line) -> std::optional<std::string> {
        if (line.empty() || line.starts_with('#')) return std::nullopt;
        const auto key = line.substr(0, line.find_first_of(" \t"));
        if (auto problem = curve_key_problem(key)) return at_line(number, *problem);
        keys.emplace_back(key);
        return std::nullopt;
      });
  if (error) return *error;
  return keys;
}

std::string format_public_certificate(std::string_view public_key, std::string_view generated) {
  return "#   ****  Generated on " + std::string(generated) +
         " by tidepool keygen  ****\n"
         "#   ZeroMQ CURVE Public Certificate\n"
         "#   Exchange securely, or use a secure mechanism to verify the contents\n"
         "#   of this file after exchange.\n"
         "\n"
         "metadata\n"
         "curve\n"
         "    public-key = \"" +
         std::string(public_key) + "\"\n";
}

std::string format_secret_certificate(std::string_view public_key, std::string_view secret_key,
                                      std::string_view generated) {
  return "#   ****  Generated on " + std::string(generated) +
         " by tidepool keygen  ****\n"
         "#   ZeroMQ CURVE **Secret** Certificate\n"
         "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n"
         "\n"
         "metadata\n"
         "curve\n"
         "    public-key = \"" +
         std::string(public_key) +
         "\"\n"
         "    secret-key = \"" +
         std::string(secret_key) + "\"\n";
}

}  // namespace tidepool::protocol
