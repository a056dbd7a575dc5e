#include "validation.h"

#include <algorithm>
#include <cstdint>

#include "utf8.h"

namespace orderflow {
namespace {

// PostgreSQL's numeric limits (src/backend/utils/adt/numeric.c), which jsonb numbers share:
// beyond them jsonb input raises 22003 "value overflows numeric format".
constexpr int64_t kMaxExponentInput = 1073741822;  // |exponent| < INT_MAX / 2
constexpr int64_t kMaxDisplayScale = 16383;        // NUMERIC_DSCALE_MAX: digits after the point
constexpr int64_t kMaxLeadingPower = 131071;       // NUMERIC_WEIGHT_MAX: value < 10^131072

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void AppendUtf8(uint32_t code_point, std::string* out) {
  if (code_point < 0x80) {
    out->push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (code_point >> 6)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else if (code_point < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (code_point >> 12)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (code_point >> 18)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  }
}

// A JSON parser that keeps nothing but the top-level "orderId": the grammar of RFC 8259, with
// PostgreSQL's jsonb input rules for what a valid text may still not hold (\u0000, unpaired
// surrogates, numbers numeric cannot store). Recursion is bounded by kMaxJsonDepth.
class Parser {
 public:
  explicit Parser(const std::string& text) : text_(text) {}

  BodyCheck Run() {
    BodyCheck result;
    SkipSpace();
    if (at_ == text_.size()) {
      result.problem = "request body is empty";
    } else if (text_[at_] != '{') {
      result.problem = "request body must be a JSON object";  // db's _check_object sentence
    } else if (ParseObject(1, true)) {
      SkipSpace();
      if (at_ != text_.size()) Fail("unexpected data after the object");
    }
    if (!error_.empty()) {
      result.problem = error_;
    } else if (result.problem.empty()) {
      result.order_id = order_id_;
    }
    return result;
  }

 private:
  bool Fail(const std::string& what) {
    error_ = "request body is not valid JSON: " + what + " (at byte " + std::to_string(at_) + ")";
    return false;
  }
  bool Refuse(std::string sentence) {
    error_ = std::move(sentence);
    return false;
  }

  bool AtEnd() const { return at_ >= text_.size(); }
  char Peek() const { return AtEnd() ? '\0' : text_[at_]; }

  void SkipSpace() {
    while (!AtEnd() &&
           (text_[at_] == ' ' || text_[at_] == '\t' || text_[at_] == '\n' || text_[at_] == '\r')) {
      ++at_;
    }
  }

  // Steps over the '{' or '[' of a container of nesting `depth` (the body itself is 1) and any
  // space after it; refuses one nested too deep. *empty: the container closes at once.
  bool Open(int depth, char close, bool* empty) {
    if (depth > kMaxJsonDepth) {
      return Refuse("request body is nested more than " + std::to_string(kMaxJsonDepth) +
                    " levels deep");
    }
    ++at_;
    SkipSpace();
    *empty = Peek() == close;
    if (*empty) ++at_;
    return true;
  }

  // After a member or element: steps over the ',' (*more) or the closing `close`.
  bool Next(char close, bool* more) {
    SkipSpace();
    *more = Peek() == ',';
    if (*more || Peek() == close) {
      ++at_;
      return true;
    }
    return Fail(AtEnd() ? "unexpected end" : std::string("expected ',' or '") + close + "'");
  }

  bool ParseObject(int depth, bool top) {
    bool empty = false;
    if (!Open(depth, '}', &empty)) return false;
    bool more = !empty;
    std::string name;
    while (more) {
      SkipSpace();
      if (Peek() != '"') return Fail("expected a member name in double quotes");
      name.clear();
      if (!ParseString(top ? &name : nullptr)) return false;
      SkipSpace();
      if (Peek() != ':') return Fail("expected ':' after a member name");
      ++at_;
      SkipSpace();
      if (top && name == "orderId") {
        // jsonb keeps the last of duplicate names; so does this.
        order_id_.reset();
        if (Peek() == '"') {
          std::string value;
          if (!ParseString(&value)) return false;
          order_id_ = std::move(value);
        } else if (!ParseValue(depth)) {
          return false;
        }
      } else if (!ParseValue(depth)) {
        return false;
      }
      if (!Next('}', &more)) return false;
    }
    return true;
  }

  bool ParseArray(int depth) {
    bool empty = false;
    if (!Open(depth, ']', &empty)) return false;
    bool more = !empty;
    while (more) {
      SkipSpace();
      if (!ParseValue(depth) || !Next(']', &more)) return false;
    }
    return true;
  }

  // A value inside a container of nesting `depth`.
  bool ParseValue(int depth) {
    if (AtEnd()) return Fail("unexpected end");
    const char c = text_[at_];
    if (c == '{') return ParseObject(depth + 1, false);
    if (c == '[') return ParseArray(depth + 1);
    if (c == '"') return ParseString(nullptr);
    if (c == '-' || IsDigit(c)) return ParseNumber();
    for (const char* word : {"true", "false", "null"}) {
      if (text_.compare(at_, std::char_traits<char>::length(word), word) == 0) {
        at_ += std::char_traits<char>::length(word);
        return true;
      }
    }
    return Fail("invalid value");
  }

  // Four hex digits at text_[from]; -1 when there are none.
  int32_t Hex4(size_t from) const {
    if (text_.size() - std::min(from, text_.size()) < 4) return -1;
    int32_t value = 0;
    for (size_t i = from; i < from + 4; ++i) {
      const int digit = HexValue(text_[i]);
      if (digit < 0) return -1;
      value = value * 16 + digit;
    }
    return value;
  }

  // A string at text_[at_] == '"'; decoded into *out unless out is null. The raw bytes are
  // already known to be UTF-8.
  bool ParseString(std::string* out) {
    ++at_;  // '"'
    while (true) {
      if (AtEnd()) return Fail("unterminated string");
      const unsigned char c = static_cast<unsigned char>(text_[at_]);
      if (c == '"') {
        ++at_;
        return true;
      }
      if (c < 0x20) return Fail("control characters in strings must be escaped");
      if (c != '\\') {
        if (out != nullptr) out->push_back(static_cast<char>(c));
        ++at_;
        continue;
      }
      if (at_ + 1 >= text_.size()) return Fail("unterminated string");
      const char escape = text_[at_ + 1];
      const char* const simple = "\"\"\\\\//b\bf\fn\nr\rt\t";
      const char* found = nullptr;
      for (const char* p = simple; *p != '\0'; p += 2) {
        if (*p == escape) found = p;
      }
      if (found != nullptr) {
        if (out != nullptr) out->push_back(found[1]);
        at_ += 2;
        continue;
      }
      if (escape != 'u') return Fail("invalid escape");
      const int32_t unit = Hex4(at_ + 2);
      if (unit < 0) return Fail("invalid \\u escape");
      uint32_t code_point = static_cast<uint32_t>(unit);
      size_t length = 6;
      if (unit >= 0xD800 && unit <= 0xDBFF) {
        const int32_t low = (text_.compare(at_ + 6, 2, "\\u") == 0) ? Hex4(at_ + 8) : -1;
        if (low < 0xDC00 || low > 0xDFFF) {
          return Fail("a \\u escape names an unpaired UTF-16 surrogate");
        }
        code_point = 0x10000 + ((static_cast<uint32_t>(unit) - 0xD800) << 10) +
                     (static_cast<uint32_t>(low) - 0xDC00);
        length = 12;
      } else if (unit >= 0xDC00 && unit <= 0xDFFF) {
        return Fail("a \\u escape names an unpaired UTF-16 surrogate");
      } else if (unit == 0) {
        return Refuse("request body must not contain \\u0000: text cannot hold a NUL character");
      }
      if (out != nullptr) AppendUtf8(code_point, out);
      at_ += length;
    }
  }

  // A number (RFC 8259 grammar) that PostgreSQL's numeric can also store.
  bool ParseNumber() {
    const size_t start = at_;
    if (Peek() == '-') ++at_;
    if (!IsDigit(Peek())) return Fail("invalid number");
    const size_t int_start = at_;
    if (Peek() == '0') {
      ++at_;
      if (IsDigit(Peek())) return Fail("invalid number: leading zero");
    } else {
      while (IsDigit(Peek())) ++at_;
    }
    const size_t int_end = at_;
    size_t frac_start = at_;
    size_t frac_end = at_;
    if (Peek() == '.') {
      ++at_;
      if (!IsDigit(Peek())) return Fail("invalid number");
      frac_start = at_;
      while (IsDigit(Peek())) ++at_;
      frac_end = at_;
    }
    int64_t exponent = 0;
    if (Peek() == 'e' || Peek() == 'E') {
      ++at_;
      bool negative = false;
      if (Peek() == '+' || Peek() == '-') {
        negative = Peek() == '-';
        ++at_;
      }
      if (!IsDigit(Peek())) return Fail("invalid number");
      while (IsDigit(Peek())) {
        if (exponent <= kMaxExponentInput) exponent = exponent * 10 + (text_[at_] - '0');
        ++at_;
      }
      if (negative) exponent = -exponent;
    }
    // The power of ten of the leading significant digit, when the number is not zero.
    std::optional<int64_t> leading;
    for (size_t i = int_start; i < int_end && !leading; ++i) {
      if (text_[i] != '0') leading = static_cast<int64_t>(int_end - i) - 1 + exponent;
    }
    for (size_t i = frac_start; i < frac_end && !leading; ++i) {
      if (text_[i] != '0') leading = -static_cast<int64_t>(i - frac_start) - 1 + exponent;
    }
    const int64_t scale =
        std::max<int64_t>(0, static_cast<int64_t>(frac_end - frac_start) - exponent);
    if (exponent > kMaxExponentInput || exponent < -kMaxExponentInput || scale > kMaxDisplayScale ||
        (leading && *leading > kMaxLeadingPower)) {
      at_ = start;
      return Fail("a number is too large or has too many decimals for PostgreSQL's numeric");
    }
    return true;
  }

  const std::string& text_;
  size_t at_ = 0;
  std::string error_;
  std::optional<std::string> order_id_;
};

}  // namespace

BodyCheck RequestValidator::Check(const std::string& body) const {
  // libpq passes text up to its first NUL, so "{...}\0anything" would reach PostgreSQL cut
  // short. JSON text never contains one.
  const size_t nul = body.find('\0');
  if (nul != std::string::npos) {
    return {"request body is not valid JSON: NUL byte (at byte " + std::to_string(nul) + ")", {}};
  }
  if (!IsWellFormedUtf8(body)) return {"request body is not valid UTF-8", {}};
  return Parser(body).Run();
}

KeyCheck CheckIdempotencyKey(const std::string* key) {
  if (key == nullptr || key->empty()) return KeyCheck::kMissing;
  if (key->find('\0') != std::string::npos || !IsWellFormedUtf8(*key)) return KeyCheck::kNotText;
  return KeyCheck::kPresent;
}

}  // namespace orderflow
