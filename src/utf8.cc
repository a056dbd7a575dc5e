#include "utf8.h"

#include <cstdint>

namespace orderflow {
namespace {

// The length of the well-formed UTF-8 sequence at text[at] (of `size` bytes), or 0 when there
// is none there.
size_t Utf8SequenceAt(const char* text, size_t size, size_t at) {
  const unsigned char lead = static_cast<unsigned char>(text[at]);
  if (lead < 0x80) return 1;
  size_t length = 0;
  uint32_t code_point = 0;
  uint32_t smallest = 0;
  if ((lead & 0xE0) == 0xC0) {
    length = 2;
    code_point = lead & 0x1F;
    smallest = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3;
    code_point = lead & 0x0F;
    smallest = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4;
    code_point = lead & 0x07;
    smallest = 0x10000;
  } else {
    return 0;
  }
  if (size - at < length) return 0;
  for (size_t i = 1; i < length; ++i) {
    const unsigned char next = static_cast<unsigned char>(text[at + i]);
    if ((next & 0xC0) != 0x80) return 0;
    code_point = (code_point << 6) | (next & 0x3F);
  }
  const bool surrogate = code_point >= 0xD800 && code_point <= 0xDFFF;
  return code_point >= smallest && code_point <= 0x10FFFF && !surrogate ? length : 0;
}

}  // namespace

std::string WellFormedUtf8(const std::string& text) {
  // Most text (every log line's path, id and status) is ASCII: return it as it is. callgrind
  // put the byte-by-byte copy at ~3.5k instructions per request before this.
  size_t first = 0;
  while (first < text.size() && static_cast<unsigned char>(text[first]) < 0x80) ++first;
  if (first == text.size()) return text;
  std::string out;
  out.reserve(text.size());
  out.append(text, 0, first);
  for (size_t at = first; at < text.size();) {
    const size_t length = Utf8SequenceAt(text.data(), text.size(), at);
    if (length == 0) {
      out += "\xEF\xBF\xBD";
      ++at;
    } else {
      out.append(text, at, length);
      at += length;
    }
  }
  return out;
}

bool IsWellFormedUtf8(const char* text, size_t length) {
  for (size_t at = 0; at < length;) {
    const size_t sequence = Utf8SequenceAt(text, length, at);
    if (sequence == 0) return false;
    at += sequence;
  }
  return true;
}

}  // namespace orderflow
