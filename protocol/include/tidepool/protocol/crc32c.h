// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by iSCSI, ext4 and
// LevelDB. Protects spool records (spool_record.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace tidepool::protocol {

// CRC-32C of `size` bytes at `data`. `seed` is the CRC of the bytes before them, so that
// crc32c(b, crc32c(a)) == crc32c(a + b); the default 0 starts a new checksum.
// Uses the SSE4.2 instruction when the CPU has it, else slicing-by-8 tables.
std::uint32_t crc32c(const void* data, std::size_t size, std::uint32_t seed = 0) noexcept;

inline std::uint32_t crc32c(std::span<const std::byte> data, std::uint32_t seed = 0) noexcept {
  return crc32c(data.data(), data.size(), seed);
}
inline std::uint32_t crc32c(std::string_view data, std::uint32_t seed = 0) noexcept {
  return crc32c(data.data(), data.size(), seed);
}

// The table-driven implementation alone (same results); exposed for tests and fuzzing.
std::uint32_t crc32c_portable(const void* data, std::size_t size, std::uint32_t seed = 0) noexcept;

}  // namespace tidepool::protocol
