// Request validation: request bodies against their JSON Schemas (src/schemas/, RapidJSON's
// validator) and the Idempotency-Key header. Only the shape of input is checked here; the SQL
// functions remain the authority on what a valid order is.
#ifndef ORDERFLOW_VALIDATION_H_
#define ORDERFLOW_VALIDATION_H_

#include <rapidjson/document.h>
#include <rapidjson/schema.h>

#include <memory>
#include <string>

namespace orderflow {

enum class RequestKind { kCreateOrder, kProcessOrder, kCancelOrder };

// The deepest nesting of arrays and objects a request body may have. Our bodies are flat; the
// limit keeps hostile input (10 000 nested arrays) from costing stack or time.
constexpr int kMaxJsonDepth = 32;

class RequestValidator {
 public:
  // Compiles the embedded schemas. Throws std::logic_error if one is missing or malformed,
  // which is a build defect.
  RequestValidator();
  ~RequestValidator();

  RequestValidator(const RequestValidator&) = delete;
  RequestValidator& operator=(const RequestValidator&) = delete;

  // Returns an empty string when `body` is one JSON value in valid UTF-8 that matches the schema
  // of `kind`; otherwise a sentence for the client that names the offending field.
  std::string Validate(RequestKind kind, const std::string& body) const;

 private:
  struct Schema {
    rapidjson::Document document;  // the schema as JSON, for messages
    std::unique_ptr<rapidjson::SchemaDocument> compiled;
  };
  const Schema& SchemaFor(RequestKind kind) const;

  Schema create_order_;
  Schema process_order_;
  Schema cancel_order_;
};

enum class KeyCheck { kOk, kMissing, kInvalid };

// Checks an Idempotency-Key header value: 1..255 printable ASCII characters. `present` is false
// when the header is absent; an empty value counts as missing.
KeyCheck CheckIdempotencyKey(bool present, const std::string& value);

}  // namespace orderflow

#endif  // ORDERFLOW_VALIDATION_H_
