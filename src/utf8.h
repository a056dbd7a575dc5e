// UTF-8 repair for text we write into JSON (error bodies, log lines): RapidJSON's writer copies
// bytes as they are, and a JSON text must be UTF-8 (RFC 8259).
#ifndef ORDERFLOW_UTF8_H_
#define ORDERFLOW_UTF8_H_

#include <string>

namespace orderflow {

// `text` with each byte that does not start a well-formed UTF-8 sequence (a stray continuation
// byte, an overlong form, a surrogate, beyond U+10FFFF, cut short) replaced by U+FFFD.
std::string WellFormedUtf8(const std::string& text);

// True when every byte of text[0, length) belongs to a well-formed UTF-8 sequence (no surrogate,
// nothing beyond U+10FFFF, no overlong form).
bool IsWellFormedUtf8(const char* text, size_t length);
inline bool IsWellFormedUtf8(const std::string& text) {
  return IsWellFormedUtf8(text.data(), text.size());
}

}  // namespace orderflow

#endif  // ORDERFLOW_UTF8_H_
