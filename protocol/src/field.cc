// Payload field extraction (see field.h): format detection and the JSON and S-expression
// scanners that find one key's value without building a tree.
#include "tidepool/protocol/field.h"

#include <array>
#include <cstddef>
#include <cstdint>

namespace tidepool::protocol {
namespace {

bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Offset of the first meaningful byte: after a UTF-8 BOM and whitespace.
std::size_t skip_prefix(std::string_view body) noexcept {
  std::size_t i = 0;
  if (body.substr(0, 3) == "\xEF\xBB\xBF") i = 3;
  while (i < body.size() && is_space(body[i])) ++i;
  return i;
}

enum class Tok { kOpen, kClose, kDot, kString, kAtom, kColon, kComma, kEnd };

using ByteSet = std::array<bool, 256>;

constexpr ByteSet byte_set(std::string_view members) {
  ByteSet set{};
  for (const char c : members) set[static_cast<unsigned char>(c)] = true;
  return set;
}

// Bytes that matter while skipping a list/container nobody looks inside; every other byte
// is passed over by a tight loop (most of a 9 MB inline-candle body).
constexpr ByteSet kSexprSkipStops = byte_set("()\"\\|;");
constexpr ByteSet kJsonSkipStops = byte_set("{}[]\"");

// Index of the closing quote of a string whose contents start at `i`, or s.size().
std::size_t string_end(std::string_view s, std::size_t i) noexcept {
  while (i < s.size() && s[i] != '"') i += (s[i] == '\\') ? 2u : 1u;
  return i < s.size() ? i : s.size();
}

struct Token {
  Tok kind = Tok::kEnd;
  std::string_view text;  // string contents (no quotes), atom text, or the bracket itself
  bool has_escapes = false;
};

// Lexes a quoted string whose opening quote is at `open`. Returns the token and sets
// `next` past the closing quote, or returns kEnd when the string is unterminated.
Token lex_string(std::string_view s, std::size_t open, std::size_t& next) noexcept {
  const std::size_t start = open + 1;
  bool escapes = false;
  std::size_t i = start;
  while (i < s.size()) {
    const char c = s[i];
    if (c == '\\') {
      escapes = true;
      i += 2;  // the escaped byte, whatever it is, cannot end the string
      continue;
    }
    if (c == '"') {
      next = i + 1;
      return {Tok::kString, s.substr(start, i - start), escapes};
    }
    ++i;
  }
  next = s.size();
  return {};
}

// Common Lisp reader subset: lists, strings, comments, atoms with \ and |...| escapes,
// character literals (#\( must not count as a paren). Everything else is an atom byte.
class SexprLexer {
 public:
  SexprLexer(std::string_view s, std::size_t pos) noexcept : s_(s), pos_(pos) {}

  // Consumes the rest of a list whose '(' was just returned, through its matching ')',
  // by the same lexical rules as next(). Returns false at the end of the input.
  bool skip_list() noexcept {
    std::size_t level = 1;
    std::size_t i = pos_;
    const std::size_t n = s_.size();
    while (i < n) {
      const char c = s_[i];
      if (!kSexprSkipStops[static_cast<unsigned char>(c)]) {
        ++i;
        continue;
      }
      switch (c) {
        case '(':
          ++level;
          ++i;
          break;
        case ')':
          ++i;
          if (--level == 0) {
            pos_ = i;
            return true;
          }
          break;
        case '"':
          i = string_end(s_, i + 1) + 1;
          break;
        case '\\':
          i += 2;
          break;
        case '|':
          ++i;
          while (i < n && s_[i] != '|') i += (s_[i] == '\\') ? 2u : 1u;
          ++i;
          break;
        default:  // ';' comment
          while (i < n && s_[i] != '\n') ++i;
          break;
      }
    }
    pos_ = n;
    return false;
  }

  Token next() noexcept {
    for (;;) {
      while (pos_ < s_.size() && is_space(s_[pos_])) ++pos_;
      if (pos_ >= s_.size()) return {};
      switch (s_[pos_]) {
        case '(':
          ++pos_;
          return {Tok::kOpen, {}, false};
        case ')':
          ++pos_;
          return {Tok::kClose, {}, false};
        case ';':  // comment to end of line
          while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
          continue;
        case '"':
          return lex_string(s_, pos_, pos_);
        default:
          return atom();
      }
    }
  }

 private:
  Token atom() noexcept {
    const std::size_t start = pos_;
    std::size_t i = pos_;
    while (i < s_.size()) {
      const char c = s_[i];
      if (c == '\\') {
        i += 2;
        continue;
      }
      if (c == '|') {  // multiple escape: everything up to the closing bar
        ++i;
        while (i < s_.size() && s_[i] != '|') i += (s_[i] == '\\') ? 2u : 1u;
        ++i;
        continue;
      }
      if (c == '#' && i == start && i + 1 < s_.size() && s_[i + 1] == '\\') {
        i += 3;  // #\x: x may be any byte, even a paren
        continue;
      }
      if (is_space(c) || c == '(' || c == ')' || c == '"' || c == ';') break;
      ++i;
    }
    if (i > s_.size()) i = s_.size();
    pos_ = i;
    const std::string_view text = s_.substr(start, i - start);
    if (text == ".") return {Tok::kDot, text, false};
    return {Tok::kAtom, text, false};
  }

  std::string_view s_;
  std::size_t pos_;
};

class JsonLexer {
 public:
  JsonLexer(std::string_view s, std::size_t pos) noexcept : s_(s), pos_(pos) {}

  // Consumes the rest of a container whose opening bracket was just returned, through its
  // closing one (brackets of either kind count alike, as in next()). False at the end.
  bool skip_container() noexcept {
    std::size_t level = 1;
    std::size_t i = pos_;
    const std::size_t n = s_.size();
    while (i < n) {
      const char c = s_[i];
      if (!kJsonSkipStops[static_cast<unsigned char>(c)]) {
        ++i;
        continue;
      }
      if (c == '"') {
        i = string_end(s_, i + 1) + 1;
      } else if (c == '{' || c == '[') {
        ++level;
        ++i;
      } else {
        ++i;
        if (--level == 0) {
          pos_ = i;
          return true;
        }
      }
    }
    pos_ = n;
    return false;
  }

  Token next() noexcept {
    while (pos_ < s_.size() && is_space(s_[pos_])) ++pos_;
    if (pos_ >= s_.size()) return {};
    const char c = s_[pos_];
    switch (c) {
      case '{':
      case '[':
        return {Tok::kOpen, s_.substr(pos_++, 1), false};
      case '}':
      case ']':
        return {Tok::kClose, s_.substr(pos_++, 1), false};
      case ':':
        ++pos_;
        return {Tok::kColon, {}, false};
      case ',':
        ++pos_;
        return {Tok::kComma, {}, false};
      case '"':
        return lex_string(s_, pos_, pos_);
      default:
        break;
    }
    // A scalar (number, true, false, null) or garbage: up to the next structural byte.
    const std::size_t start = pos_;
    while (pos_ < s_.size()) {
      const char d = s_[pos_];
      if (is_space(d) || d == '{' || d == '}' || d == '[' || d == ']' || d == ':' || d == ',' ||
          d == '"') {
        break;
      }
      ++pos_;
    }
    return {Tok::kAtom, s_.substr(start, pos_ - start), false};
  }

 private:
  std::string_view s_;
  std::size_t pos_;
};

char ascii_lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool symbol_equals(std::string_view symbol, std::string_view key) noexcept {
  if (symbol.size() != key.size()) return false;
  for (std::size_t i = 0; i < key.size(); ++i) {
    if (ascii_lower(symbol[i]) != ascii_lower(key[i])) return false;
  }
  return true;
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Parses "\uXXXX" at raw[i]; returns the code unit or -1.
std::int32_t parse_u_escape(std::string_view raw, std::size_t i) noexcept {
  if (i + 6 > raw.size() || raw[i] != '\\' || raw[i + 1] != 'u') return -1;
  std::int32_t v = 0;
  for (std::size_t k = i + 2; k < i + 6; ++k) {
    const int h = hex_value(raw[k]);
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  return v;
}

template <typename Put>
void put_utf8(std::uint32_t cp, Put&& put) {
  if (cp < 0x80) {
    put(static_cast<char>(cp));
  } else if (cp < 0x800) {
    put(static_cast<char>(0xC0 | (cp >> 6)));
    put(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    put(static_cast<char>(0xE0 | (cp >> 12)));
    put(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    put(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    put(static_cast<char>(0xF0 | (cp >> 18)));
    put(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    put(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    put(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Decodes JSON string contents byte by byte into `put`; shared by unescape() and by the
// allocation-free key comparison.
template <typename Put>
void decode_json(std::string_view raw, Put&& put) {
  std::size_t i = 0;
  while (i < raw.size()) {
    const char c = raw[i];
    if (c != '\\' || i + 1 >= raw.size()) {
      put(c);
      ++i;
      continue;
    }
    const char e = raw[i + 1];
    char out = 0;
    switch (e) {
      case '"':
      case '\\':
      case '/':
        out = e;
        break;
      case 'b':
        out = '\b';
        break;
      case 'f':
        out = '\f';
        break;
      case 'n':
        out = '\n';
        break;
      case 'r':
        out = '\r';
        break;
      case 't':
        out = '\t';
        break;
      case 'u': {
        const std::int32_t unit = parse_u_escape(raw, i);
        if (unit < 0) break;  // invalid: kept as written below
        i += 6;
        auto cp = static_cast<std::uint32_t>(unit);
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          const std::int32_t low = parse_u_escape(raw, i);
          if (low >= 0xDC00 && low <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (static_cast<std::uint32_t>(low) - 0xDC00);
            i += 6;
          } else {
            cp = 0xFFFD;
          }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          cp = 0xFFFD;
        }
        put_utf8(cp, put);
        continue;
      }
      default:
        break;
    }
    if (out == 0) {  // invalid escape: keep the backslash, the next byte follows as text
      put(c);
      ++i;
      continue;
    }
    put(out);
    i += 2;
  }
}

bool json_key_equals(const Token& t, std::string_view key) noexcept {
  if (!t.has_escapes) return t.text == key;
  std::size_t j = 0;
  bool same = true;
  decode_json(t.text, [&](char c) {
    if (j >= key.size() || key[j] != c) same = false;
    ++j;
  });
  return same && j == key.size();
}

RawField make_field(const Token& t, BodyFormat format) noexcept {
  RawField f;
  f.text = t.text;
  f.quoted = t.kind == Tok::kString;
  f.has_escapes = t.has_escapes;
  f.format = format;
  return f;
}

std::optional<RawField> find_sexpr(std::string_view body, std::size_t start,
                                   std::string_view key) noexcept {
  SexprLexer lex(body, start);
  lex.next();  // the outer '('
  std::size_t depth = 1;
  // State of the element list being examined as a (KEY . VALUE) candidate.
  enum class Cand { kNone, kHead, kKey, kKeyDot, kValue, kResult, kResultDot };
  Cand cand = Cand::kNone;
  std::size_t cand_depth = 0;
  Token value;
  // While inside the top-level (result ...) element: the depth at which the elements of
  // its alist open (3 for "(result (k . v) ...)", 4 for "(result . ((k . v) ...))").
  std::size_t result_elem_depth = 0;
  for (;;) {
    const Token t = lex.next();
    switch (t.kind) {
      case Tok::kEnd:
        return std::nullopt;
      case Tok::kOpen:
        ++depth;
        if (cand == Cand::kResultDot && depth == 3) {
          result_elem_depth = 4;
          cand = Cand::kNone;
        } else if (depth == 2 || (cand == Cand::kResult && depth == 3) ||
                   (result_elem_depth != 0 && depth == result_elem_depth)) {
          if (cand == Cand::kResult) result_elem_depth = 3;
          cand = Cand::kHead;
          cand_depth = depth;
        } else {
          // Nothing inside this list can match (and it disqualifies a candidate it is in).
          cand = Cand::kNone;
          if (!lex.skip_list()) return std::nullopt;
          --depth;
        }
        break;
      case Tok::kClose:
        if (cand == Cand::kValue && depth == cand_depth)
          return make_field(value, BodyFormat::kSexpr);
        cand = Cand::kNone;
        if (depth == 1) return std::nullopt;  // end of the outer list
        --depth;
        if (depth < 2) result_elem_depth = 0;
        break;
      case Tok::kDot:
        if (cand == Cand::kKey) {
          cand = Cand::kKeyDot;
        } else if (cand == Cand::kResult) {
          cand = Cand::kResultDot;
        } else {
          cand = Cand::kNone;
        }
        break;
      case Tok::kString:
      case Tok::kAtom:
        if (cand == Cand::kHead) {
          if (t.kind == Tok::kAtom && symbol_equals(t.text, key)) {
            cand = Cand::kKey;
          } else if (t.kind == Tok::kAtom && cand_depth == 2 && symbol_equals(t.text, "result")) {
            cand = Cand::kResult;
          } else {
            cand = Cand::kNone;
          }
        } else if (cand == Cand::kKey || cand == Cand::kKeyDot) {
          value = t;
          cand = Cand::kValue;
        } else {
          cand = Cand::kNone;
        }
        break;
      default:
        cand = Cand::kNone;
        break;
    }
  }
}

std::optional<RawField> find_json(std::string_view body, std::size_t start,
                                  std::string_view key) noexcept {
  JsonLexer lex(body, start);
  lex.next();  // the outer '{'
  // The scan is always at member level of the top-level object or, inside the object
  // that is the top-level "result" member's value, of that one: every other container is
  // skipped whole.
  bool in_result = false;
  enum class Member { kExpectKey, kAfterKey, kExpectValue, kAfterValue };
  Member st = Member::kExpectKey;
  bool key_match = false;
  bool key_is_result = false;
  for (;;) {
    const Token t = lex.next();
    switch (t.kind) {
      case Tok::kEnd:
        return std::nullopt;
      case Tok::kOpen:
        if (st == Member::kExpectValue && key_is_result && t.text == "{") {
          in_result = true;
          st = Member::kExpectKey;
          key_match = false;
          key_is_result = false;
          break;
        }
        if (st == Member::kExpectValue) st = Member::kAfterValue;
        if (!lex.skip_container()) return std::nullopt;
        break;
      case Tok::kClose:
        if (!in_result) return std::nullopt;  // end of the top-level object
        in_result = false;
        st = Member::kAfterValue;
        break;
      case Tok::kString:
      case Tok::kAtom:
        if (st == Member::kExpectKey && t.kind == Tok::kString) {
          key_match = json_key_equals(t, key);
          key_is_result = !in_result && json_key_equals(t, "result");
          st = Member::kAfterKey;
        } else if (st == Member::kExpectValue) {
          if (key_match) return make_field(t, BodyFormat::kJson);
          st = Member::kAfterValue;
        } else {
          st = Member::kAfterValue;  // garbage: wait for the next comma
        }
        break;
      case Tok::kColon:
        st = (st == Member::kAfterKey) ? Member::kExpectValue : Member::kAfterValue;
        break;
      case Tok::kComma:
        st = Member::kExpectKey;
        key_match = false;
        key_is_result = false;
        break;
      default:
        break;
    }
  }
}

}  // namespace

BodyFormat detect_format(std::string_view body) noexcept {
  const std::size_t i = skip_prefix(body);
  if (i >= body.size()) return BodyFormat::kUnknown;
  if (body[i] == '(') return BodyFormat::kSexpr;
  if (body[i] == '{') return BodyFormat::kJson;
  return BodyFormat::kUnknown;
}

std::optional<RawField> find_field(std::string_view body, std::string_view key) noexcept {
  const std::size_t i = skip_prefix(body);
  switch (detect_format(body)) {
    case BodyFormat::kSexpr:
      return find_sexpr(body, i, key);
    case BodyFormat::kJson:
      return find_json(body, i, key);
    default:
      return std::nullopt;
  }
}

std::optional<std::string> extract_field(std::string_view body, std::string_view key) {
  const auto raw = find_field(body, key);
  if (!raw) return std::nullopt;
  if (!raw->has_escapes) return std::string(raw->text);
  return unescape(raw->text, raw->format);
}

std::string unescape(std::string_view raw, BodyFormat format) {
  std::string out;
  out.reserve(raw.size());
  switch (format) {
    case BodyFormat::kJson:
      decode_json(raw, [&](char c) { out.push_back(c); });
      break;
    case BodyFormat::kSexpr:
      for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '\\' && i + 1 < raw.size()) ++i;
        out.push_back(raw[i]);
      }
      break;
    default:
      out.assign(raw);
      break;
  }
  return out;
}

}  // namespace tidepool::protocol
