// URL helpers for path parameters.
#ifndef ORDERFLOW_URL_H_
#define ORDERFLOW_URL_H_

#include <optional>
#include <string>

namespace orderflow {

// Decodes %XX escapes (a '+' stays a '+': path segments are not form data). Returns nullopt
// for a malformed escape, for %00 (text passed to PostgreSQL cannot hold a NUL: libpq would
// silently cut the value there) and when the decoded bytes are not well-formed UTF-8.
std::optional<std::string> PercentDecode(const std::string& text);

}  // namespace orderflow

#endif  // ORDERFLOW_URL_H_
