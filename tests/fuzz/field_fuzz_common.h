// Shared body of the field-extraction fuzzers: checks invariants that must hold for any
// input, not just "does not crash".
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tidepool/protocol/field.h"

namespace tidepool_fuzz {

inline void check(bool ok) {
  if (!ok) std::abort();  // libFuzzer reports the input as a crash
}

inline void check_field_invariants(std::string_view body, std::string_view key) {
  namespace tp = tidepool::protocol;
  const auto raw = tp::find_field(body, key);
  const auto value = tp::extract_field(body, key);
  check(raw.has_value() == value.has_value());
  if (!raw) return;
  // The value is a view inside the body.
  check(raw->text.data() >= body.data());
  check(raw->text.data() + raw->text.size() <= body.data() + body.size());
  check(raw->format == tp::detect_format(body));
  check(raw->has_escapes ? raw->quoted : true);
  // Unescaping never grows a value.
  check(value->size() <= raw->text.size());
  if (!raw->has_escapes) check(*value == raw->text);
  // The first match is final: bytes appended after the body cannot change it (a JSON
  // scalar at the very end could still grow, so only strings are checked there).
  if (raw->quoted || raw->format == tp::BodyFormat::kSexpr) {
    std::string longer(body);
    longer.append("\")}] (request_id . \"zz\") \"request_id\": \"zz\"");
    const auto again = tp::find_field(longer, key);
    check(again.has_value());
    check(again->text.data() - longer.data() == raw->text.data() - body.data());
    check(again->text.size() == raw->text.size());
  }
}

// Fuzz input: the body, made to start with `open` (prepended unless it already does) so
// the scanner under test gets deep coverage; the keys looked up are fixed (the correlation
// key, the nested-result key, short ones).
inline void run_field_fuzz(const std::uint8_t* data, std::size_t size, char open) {
  std::string body;
  if (size == 0 || static_cast<char>(data[0]) != open) body.push_back(open);
  body.append(reinterpret_cast<const char*>(data), size);
  for (std::string_view key : {"request_id", "result", "a", "k"}) check_field_invariants(body, key);
  // Also unprefixed: arbitrary bytes, leading whitespace/BOM, other formats.
  check_field_invariants(std::string_view(reinterpret_cast<const char*>(data), size), "request_id");
}

}  // namespace tidepool_fuzz
