// URL helpers for path parameters and query strings.
#ifndef ORDERFLOW_URL_H_
#define ORDERFLOW_URL_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace orderflow {

// Decodes %XX escapes (a '+' stays a '+': path segments are not form data). Returns nullopt
// for a malformed escape, for %00 (text passed to PostgreSQL cannot hold a NUL: libpq would
// silently cut the value there) and when the decoded bytes are not well-formed UTF-8.
std::optional<std::string> PercentDecode(const std::string& text);

// Splits a query string (the target after '?', without it) into its name=value pairs, in order,
// each name and value percent-decoded as PercentDecode does ('+' stays a '+': our values are
// opaque cursors, which a '+' may belong to). "name" without '=' has an empty value; empty
// pieces ("a=1&&b=2", a trailing '&') are skipped. nullopt when a name or value does not decode.
std::optional<std::vector<std::pair<std::string, std::string>>> ParseQuery(
    const std::string& query);

}  // namespace orderflow

#endif  // ORDERFLOW_URL_H_
