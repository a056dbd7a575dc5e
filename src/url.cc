#include "url.h"

#include <algorithm>

#include "utf8.h"

namespace orderflow {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string> PercentDecode(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    const int high = HexValue(text[i + 1]);
    const int low = HexValue(text[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    if (high == 0 && low == 0) return std::nullopt;  // no id holds a NUL; libpq would cut it there
    out.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  // Text passed to PostgreSQL must be UTF-8; other bytes would be refused there as a data
  // exception, which is the server's error (500), not the client's.
  if (!IsWellFormedUtf8(out)) return std::nullopt;
  return out;
}

std::optional<std::vector<std::pair<std::string, std::string>>> ParseQuery(
    const std::string& query) {
  std::vector<std::pair<std::string, std::string>> pairs;
  size_t start = 0;
  while (start <= query.size()) {
    const size_t amp = std::min(query.find('&', start), query.size());
    const std::string piece = query.substr(start, amp - start);
    start = amp + 1;
    if (piece.empty()) continue;
    const size_t equals = piece.find('=');
    std::optional<std::string> name = PercentDecode(piece.substr(0, equals));
    std::optional<std::string> value =
        PercentDecode(equals == std::string::npos ? std::string() : piece.substr(equals + 1));
    if (!name || !value) return std::nullopt;
    pairs.emplace_back(std::move(*name), std::move(*value));
  }
  return pairs;
}

}  // namespace orderflow
