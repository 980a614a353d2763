// Payload field extraction: find one key's value in a message body without parsing it into
// a tree. Used for request/result correlation (DESIGN.md §5, SWIMMY.md "Messages").
//
// Both scanners are total functions on arbitrary bytes: they never read past the end of
// the body, run in time linear in its size, allocate nothing, and do not recurse (nesting is
// tracked with a counter), so unbalanced input, binary garbage, NULs and 9 MB bodies are safe.
// Lists/containers that cannot hold a match are skipped by a tight byte loop: a 9 MB
// inline-candle request scans in about 10 ms.
//
// Where a key is looked for:
//  - S-expression (first non-blank byte '('): an alist. The first element of the outer list
//    of the form (KEY . VALUE) or (KEY VALUE), where VALUE is a string or an atom (number,
//    symbol). Also inside a top-level (result . (ELEMENTS...)) element — equivalently
//    written (result ELEMENTS...) — since Swimmy results carry request_id there. Keys
//    deeper than that (e.g. inside (strategy ...)) never match. KEY is compared to the
//    symbol ASCII-case-insensitively, as the Lisp reader does.
//  - JSON (first non-blank byte '{'): a member "KEY": VALUE of the top-level object, or of
//    the object that is the value of the top-level "result" member, where VALUE is a
//    string or a scalar (number, true, false, null). Keys compare exactly, after
//    unescaping.
// The first match in document order wins. Text after the match is not validated. Lexing
// follows the Common Lisp reader where it matters for nesting: "strings" and |symbols| with
// backslash escapes, \c escapes in atoms (so #\( is no paren), ; comments.
//
// The value's length is not limited here: a caller keeping values (e.g. as map keys)
// should cap their size itself.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tidepool::protocol {

enum class BodyFormat { kUnknown, kSexpr, kJson };

// Classifies a body by its first non-whitespace byte (a UTF-8 BOM is skipped).
BodyFormat detect_format(std::string_view body) noexcept;

// A located value, exactly as written in the body.
struct RawField {
  // View into the body: the string's contents without the quotes (escapes still in
  // place), or the atom/scalar text.
  std::string_view text;
  bool quoted = false;       // the value was a string literal
  bool has_escapes = false;  // text contains backslash escapes (only when quoted)
  BodyFormat format = BodyFormat::kUnknown;
};

// Finds KEY (see above). Returns nullopt when the body is neither format, the key is
// absent, or the body ends before a matching pair is complete.
std::optional<RawField> find_field(std::string_view body, std::string_view key) noexcept;

// As find_field, but returns the value with string escapes resolved: in S-expressions
// "\c" is "c"; in JSON the standard escapes, including \uXXXX (surrogate pairs combined,
// lone surrogates become U+FFFD) as UTF-8. An invalid JSON escape is kept as written.
// Atoms/scalars are returned as written.
std::optional<std::string> extract_field(std::string_view body, std::string_view key);

// Resolves the escapes of a string's raw contents (RawField::text) as extract_field does.
std::string unescape(std::string_view raw, BodyFormat format);

}  // namespace tidepool::protocol
