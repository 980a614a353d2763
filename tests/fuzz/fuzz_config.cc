// The config loader on arbitrary bytes: it may only ever throw ConfigError (any other
// exception escaping, a crash or a sanitizer report is a finding), and whatever it accepts
// must survive a round trip through to_json unchanged.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tidepool/proxy/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using tidepool::proxy::ConfigError;
  try {
    const auto config = tidepool::proxy::parse_config_text(
        std::string_view(reinterpret_cast<const char*>(data), size));
    const auto json = tidepool::proxy::to_json(config);
    if (tidepool::proxy::to_json(tidepool::proxy::parse_config(json)) != json) __builtin_trap();
  } catch (const ConfigError&) {
  }
  return 0;
}
