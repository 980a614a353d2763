// libFuzzer target: S-expression field extraction (tidepool/protocol/field.h).
#include "field_fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tidepool_fuzz::run_field_fuzz(data, size, '(');
  return 0;
}
