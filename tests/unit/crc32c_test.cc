// CRC-32C: known vectors, every length and alignment against the reference, chaining, and
// the hardware and portable paths agreeing.
#include "tidepool/protocol/crc32c.h"

#include <doctest/doctest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

using tidepool::protocol::crc32c;
using tidepool::protocol::crc32c_portable;

namespace {

// Bit-at-a-time reference, straight from the definition.
std::uint32_t reference(const std::string& s) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (const char ch : s) {
    c ^= static_cast<unsigned char>(ch);
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
  }
  return ~c;
}

}  // namespace

TEST_CASE("known vectors") {
  CHECK(crc32c("123456789") == 0xE3069283u);
  CHECK(crc32c_portable("123456789", 9) == 0xE3069283u);
  CHECK(crc32c("") == 0u);
  CHECK(crc32c(nullptr, 0) == 0u);
  CHECK(crc32c("a") == 0xC1D04330u);
  // RFC 3720 (iSCSI) B.4 test vectors.
  const std::string zeros(32, '\0');
  const std::string ones(32, '\xFF');
  std::string inc;
  std::string dec;
  for (int i = 0; i < 32; ++i) {
    inc.push_back(static_cast<char>(i));
    dec.push_back(static_cast<char>(31 - i));
  }
  CHECK(crc32c(zeros) == 0x8A9136AAu);
  CHECK(crc32c(ones) == 0x62A8AB43u);
  CHECK(crc32c(inc) == 0x46DD794Eu);
  CHECK(crc32c(dec) == 0x113FDB5Cu);
  CHECK(crc32c_portable(inc.data(), inc.size()) == 0x46DD794Eu);
}

TEST_CASE("span overload") {
  const std::array<std::byte, 9> b{std::byte{'1'}, std::byte{'2'}, std::byte{'3'},
                                   std::byte{'4'}, std::byte{'5'}, std::byte{'6'},
                                   std::byte{'7'}, std::byte{'8'}, std::byte{'9'}};
  CHECK(crc32c(std::span<const std::byte>(b)) == 0xE3069283u);
}

TEST_CASE("all lengths and alignments agree with the reference; chaining works") {
  std::string data;
  for (int i = 0; i < 300; ++i) data.push_back(static_cast<char>((i * 131 + 7) & 0xFF));
  for (std::size_t off = 0; off < 9; ++off) {
    for (std::size_t len = 0; off + len <= data.size(); len += (len < 40 ? 1 : 37)) {
      const std::string s = data.substr(off, len);
      const std::uint32_t want = reference(s);
      CHECK(crc32c(data.data() + off, len) == want);
      CHECK(crc32c_portable(data.data() + off, len) == want);
      for (std::size_t cut = 0; cut <= len; cut += 5) {
        const std::uint32_t head = crc32c(data.data() + off, cut);
        CHECK(crc32c(data.data() + off + cut, len - cut, head) == want);
        CHECK(crc32c_portable(data.data() + off + cut, len - cut, head) == want);
      }
    }
  }
}

TEST_CASE("large buffer: hardware and portable paths agree") {
  std::vector<unsigned char> big(9'000'001);
  std::uint32_t x = 12345;
  for (auto& b : big) {
    x = x * 1103515245u + 12345u;
    b = static_cast<unsigned char>(x >> 24);
  }
  CHECK(crc32c(big.data(), big.size()) == crc32c_portable(big.data(), big.size()));
}
