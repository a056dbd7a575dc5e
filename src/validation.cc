#include "validation.h"

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/pointer.h>
#include <rapidjson/reader.h>

#include <cstring>
#include <set>
#include <stdexcept>

#include "embedded.h"
#include "utf8.h"

namespace orderflow {
namespace {

// Forwards SAX events to the schema validator, refusing documents nested deeper than
// kMaxJsonDepth and remembering the member names of the top-level object, so that a failed
// "required" can name the missing field.
class GuardedValidator {
 public:
  explicit GuardedValidator(rapidjson::SchemaValidator* validator) : validator_(validator) {}

  bool Null() { return validator_->Null(); }
  bool Bool(bool b) { return validator_->Bool(b); }
  bool Int(int i) { return validator_->Int(i); }
  bool Uint(unsigned u) { return validator_->Uint(u); }
  bool Int64(int64_t i) { return validator_->Int64(i); }
  bool Uint64(uint64_t u) { return validator_->Uint64(u); }
  bool Double(double d) { return validator_->Double(d); }
  bool RawNumber(const char* str, rapidjson::SizeType len, bool copy) {
    return validator_->RawNumber(str, len, copy);
  }
  bool String(const char* str, rapidjson::SizeType len, bool copy) {
    return StorableText(str, len) && validator_->String(str, len, copy);
  }
  bool StartObject() { return Enter() && validator_->StartObject(); }
  bool Key(const char* str, rapidjson::SizeType len, bool copy) {
    if (!StorableText(str, len)) return false;
    if (depth_ == 1) top_level_keys_.emplace(str, len);
    return validator_->Key(str, len, copy);
  }
  bool EndObject(rapidjson::SizeType members) {
    --depth_;
    return validator_->EndObject(members);
  }
  bool StartArray() { return Enter() && validator_->StartArray(); }
  bool EndArray(rapidjson::SizeType elements) {
    --depth_;
    return validator_->EndArray(elements);
  }

  bool too_deep() const { return too_deep_; }
  const std::string& bad_text() const { return bad_text_; }
  const std::set<std::string>& top_level_keys() const { return top_level_keys_; }

 private:
  bool Enter() {
    if (++depth_ > kMaxJsonDepth) {
      too_deep_ = true;
      return false;
    }
    return true;
  }

  // A decoded string PostgreSQL's jsonb input would refuse (as a data exception, not ours to
  // cause): a \u0000 escape, or a \u escape of an unpaired UTF-16 surrogate, which RapidJSON
  // 1.1 decodes into bytes that are not UTF-8. Raw bytes were validated by the reader already.
  bool StorableText(const char* str, rapidjson::SizeType len) {
    if (std::memchr(str, '\0', len) != nullptr) {
      bad_text_ = "request body must not contain \\u0000: text cannot hold a NUL character";
      return false;
    }
    if (!IsWellFormedUtf8(str, len)) {
      bad_text_ = "request body is not valid JSON: a \\u escape names an unpaired UTF-16 surrogate";
      return false;
    }
    return true;
  }

  rapidjson::SchemaValidator* const validator_;
  std::string bad_text_;
  int depth_ = 0;
  bool too_deep_ = false;
  std::set<std::string> top_level_keys_;
};

void Compile(const char* name, rapidjson::Document* document,
             std::unique_ptr<rapidjson::SchemaDocument>* compiled) {
  const char* const text = embedded::Schema(name);
  if (text == nullptr) throw std::logic_error(std::string("missing schema ") + name);
  if (document->Parse(text).HasParseError()) {
    throw std::logic_error(std::string("malformed schema ") + name);
  }
  *compiled = std::make_unique<rapidjson::SchemaDocument>(*document);
}

// The "description" of the schema node at `pointer`, which our schemas word as the message.
std::string DescriptionAt(const rapidjson::Document& schema, const rapidjson::Pointer& pointer) {
  const rapidjson::Value* const node = pointer.Get(schema);
  if (node != nullptr && node->IsObject()) {
    const auto it = node->FindMember("description");
    if (it != node->MemberEnd() && it->value.IsString()) return it->value.GetString();
  }
  return "request body is invalid";
}

}  // namespace

RequestValidator::RequestValidator() {
  Compile("create_order.json", &create_order_.document, &create_order_.compiled);
  Compile("process_order.json", &process_order_.document, &process_order_.compiled);
  Compile("cancel_order.json", &cancel_order_.document, &cancel_order_.compiled);
}

RequestValidator::~RequestValidator() = default;

const RequestValidator::Schema& RequestValidator::SchemaFor(RequestKind kind) const {
  switch (kind) {
    case RequestKind::kCreateOrder:
      return create_order_;
    case RequestKind::kProcessOrder:
      return process_order_;
    case RequestKind::kCancelOrder:
      return cancel_order_;
  }
  return create_order_;
}

std::string RequestValidator::Validate(RequestKind kind, const std::string& body) const {
  // RapidJSON reads a NUL byte as the end of the input, so "{...}\0anything" would pass, and
  // PostgreSQL would receive the body cut at the NUL. JSON text never contains one.
  const size_t nul = body.find('\0');
  if (nul != std::string::npos) {
    return "request body is not valid JSON: NUL byte (at byte " + std::to_string(nul) + ")";
  }
  const Schema& schema = SchemaFor(kind);
  rapidjson::SchemaValidator validator(*schema.compiled);
  GuardedValidator guarded(&validator);
  rapidjson::Reader reader;
  rapidjson::MemoryStream stream(body.data(), body.size());
  constexpr unsigned kFlags =
      rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag;
  const rapidjson::ParseResult parsed = reader.Parse<kFlags>(stream, guarded);
  if (!guarded.bad_text().empty()) return guarded.bad_text();
  if (guarded.too_deep()) {
    return "request body is nested more than " + std::to_string(kMaxJsonDepth) + " levels deep";
  }
  if (!validator.IsValid()) {
    const rapidjson::Pointer at = validator.GetInvalidSchemaPointer();
    const std::string keyword = validator.GetInvalidSchemaKeyword();
    if (keyword == "required") {
      const rapidjson::Value* const node = at.Get(schema.document);
      if (node != nullptr && node->HasMember("required")) {
        for (const auto& name : (*node)["required"].GetArray()) {
          if (guarded.top_level_keys().count(name.GetString()) == 0) {
            return std::string(name.GetString()) + " is required";
          }
        }
      }
    }
    return DescriptionAt(schema.document, at);
  }
  if (parsed.IsError()) {
    if (parsed.Code() == rapidjson::kParseErrorDocumentEmpty) return "request body is empty";
    const std::string at = " (at byte " + std::to_string(parsed.Offset()) + ")";
    if (parsed.Offset() < body.size() && static_cast<unsigned char>(body[parsed.Offset()]) < 0x20) {
      // RapidJSON calls an unescaped control character in a string an invalid escape.
      return "request body is not valid JSON: control characters in strings must be escaped" + at;
    }
    if (parsed.Code() == rapidjson::kParseErrorStringInvalidEncoding) {
      return "request body is not valid UTF-8";
    }
    return std::string("request body is not valid JSON: ") +
           rapidjson::GetParseError_En(parsed.Code()) + at;
  }
  return "";
}

KeyCheck CheckIdempotencyKey(bool present, const std::string& value) {
  if (!present || value.empty()) return KeyCheck::kMissing;
  if (value.size() > 255) return KeyCheck::kInvalid;
  for (const char c : value) {
    if (c < 0x20 || c > 0x7e) return KeyCheck::kInvalid;
  }
  return KeyCheck::kOk;
}

}  // namespace orderflow
