// libFuzzer target: CRC-32C. Not a parser, but cheap insurance that the hardware and the
// table paths agree on every length, alignment and split point.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "tidepool/protocol/crc32c.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace tp = tidepool::protocol;
  const std::uint32_t whole = tp::crc32c(data, size);
  if (tp::crc32c_portable(data, size) != whole) std::abort();
  std::uint32_t bitwise = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < size; ++i) {
    bitwise ^= data[i];
    for (int k = 0; k < 8; ++k)
      bitwise = (bitwise & 1u) ? (bitwise >> 1) ^ 0x82F63B78u : bitwise >> 1;
  }
  if (~bitwise != whole) std::abort();
  if (size > 0) {
    const std::size_t cut = data[0] % (size + 1);
    if (tp::crc32c(data + cut, size - cut, tp::crc32c(data, cut)) != whole) std::abort();
  }
  return 0;
}
