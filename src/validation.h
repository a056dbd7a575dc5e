// What the front checks of a request before it passes it to SQL: only what the transport must
// (a body that is one JSON object, in UTF-8, without NUL, at most kMaxJsonDepth deep, with
// nothing PostgreSQL's jsonb input would refuse; an Idempotency-Key header that is present).
// Every field rule — types, lengths, ranges, control characters, blank values, the key's
// characters — is the database's (db/functions/01_checks.sql), so a client gets the same
// sentence over HTTP and in psql.
#ifndef ORDERFLOW_VALIDATION_H_
#define ORDERFLOW_VALIDATION_H_

#include <optional>
#include <string>

namespace orderflow {

// The deepest nesting of arrays and objects a request body may have. Our bodies are flat; the
// limit keeps hostile input (10 000 nested arrays) from costing stack or time.
constexpr int kMaxJsonDepth = 32;

// What the transport checks of a request body found.
struct BodyCheck {
  // Empty when the body may be passed to SQL as jsonb; else a sentence for the client.
  std::string problem;
  // The top-level "orderId" as jsonb will keep it (the last of duplicates), decoded, when it
  // is a JSON string; nullopt otherwise. Passed as its own SQL argument, so that a sharded
  // deployment can route on it without reading the body.
  std::optional<std::string> order_id;
};

class RequestValidator {
 public:
  RequestValidator() = default;

  RequestValidator(const RequestValidator&) = delete;
  RequestValidator& operator=(const RequestValidator&) = delete;

  // Checks `body`: one JSON object (RFC 8259) in well-formed UTF-8, no NUL byte and no \u0000,
  // no unpaired surrogate escape, nesting at most kMaxJsonDepth, and only numbers PostgreSQL's
  // numeric type can hold (jsonb refuses others with a data exception). One pass, no recursion
  // deeper than kMaxJsonDepth.
  BodyCheck Check(const std::string& body) const;
};

enum class KeyCheck {
  kPresent,  // passed to SQL, which decides whether it is a valid key
  kMissing,  // absent or empty: answered with the seed's exact body
  kNotText,  // not UTF-8, or holds a NUL byte: it cannot be passed to SQL as text
};

// Checks an Idempotency-Key header value (null when the header is absent).
KeyCheck CheckIdempotencyKey(const std::string* key);

}  // namespace orderflow

#endif  // ORDERFLOW_VALIDATION_H_
