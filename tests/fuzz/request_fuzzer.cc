// libFuzzer target over the code that turns untrusted bytes into answers without a database:
// request validation (RequestValidator::Validate for each RequestKind, CheckIdempotencyKey),
// path decoding (PercentDecode), request ids (RequestIdFor) and error mapping
// (ClassifySqlState, HttpAnswerFor, Status::FromServerMessage, Reply::FromStatus, Reply::Error).
// Built with ASan and UBSan (make fuzz).
//
// The first input byte picks the request kind and whether an Idempotency-Key is present; the
// other bytes are the body, the header value, the path segment and the request id, and their
// first five bytes the SQLSTATE (the rest the database's message). Each property below is a
// contract of those functions; a broken one stops the run with __builtin_trap().
#include <rapidjson/document.h>
#include <rapidjson/encodings.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/stringbuffer.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

#include "error_map.h"
#include "reply.h"
#include "request_id.h"
#include "status.h"
#include "url.h"
#include "utf8.h"
#include "validation.h"

namespace orderflow {
namespace {

void Check(bool condition, const char* property) {
  if (!condition) {
    std::fprintf(stderr, "request_fuzzer: property broken: %s\n", property);
    __builtin_trap();
  }
}

// Characters (code points) of valid UTF-8: every byte that is not a continuation byte.
size_t CodePoints(const char* text, size_t length) {
  size_t count = 0;
  for (size_t i = 0; i < length; ++i) count += (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80;
  return count;
}

// Every member of `object` named `name` (duplicates included) satisfies `ok`; `required`: at
// least one exists.
template <typename Predicate>
bool EveryMember(const rapidjson::Value& object, const char* name, bool required, Predicate ok) {
  bool seen = false;
  for (const auto& member : object.GetObject()) {
    if (std::string(member.name.GetString(), member.name.GetStringLength()) != name) continue;
    seen = true;
    if (!ok(member.value)) return false;
  }
  return seen || !required;
}

bool TextOf(const rapidjson::Value& value, size_t max) {
  if (!value.IsString()) return false;
  const size_t length = CodePoints(value.GetString(), value.GetStringLength());
  return length >= 1 && length <= max;
}

// A body the validator accepted is one JSON object in valid UTF-8, without NUL bytes, whose
// known fields have the types and ranges of its schema.
void CheckAccepted(RequestKind kind, const std::string& body) {
  Check(body.find('\0') == std::string::npos, "an accepted body holds no NUL byte");
  rapidjson::Document
      document;  // accepted bodies are at most kMaxJsonDepth deep: no recursion risk
  document.Parse<rapidjson::kParseValidateEncodingFlag>(body.data(), body.size());
  Check(!document.HasParseError(), "an accepted body is valid JSON in UTF-8");
  Check(document.IsObject(), "an accepted body is an object");
  const auto text_200 = [](const rapidjson::Value& v) { return TextOf(v, 200); };
  switch (kind) {
    case RequestKind::kCreateOrder:
      Check(EveryMember(document, "item", true, text_200), "item is a string of 1..200");
      Check(EveryMember(document, "quantity", true,
                        [](const rapidjson::Value& v) {
                          return v.IsInt() && v.GetInt() >= 1 && v.GetInt() <= 1000000;
                        }),
            "quantity is an integer of 1..1000000");
      break;
    case RequestKind::kProcessOrder:
      Check(EveryMember(document, "orderId", true, text_200), "orderId is a string of 1..200");
      Check(EveryMember(document, "amount", false,
                        [](const rapidjson::Value& v) {
                          return v.IsNumber() && v.GetDouble() > 0 && v.GetDouble() < 1e10;
                        }),
            "amount is a number in (0, 1e10)");
      Check(EveryMember(document, "item", false, text_200), "item is a string of 1..200");
      break;
    case RequestKind::kCancelOrder:
      Check(EveryMember(document, "reason", false,
                        [](const rapidjson::Value& v) { return TextOf(v, 500); }),
            "reason is a string of 1..500");
      break;
  }
}

// Every error body is valid JSON in UTF-8: an object with a non-empty "error" and "code".
// Returns the "error" sentence.
std::string CheckErrorBody(const Reply& reply) {
  Check(reply.status >= 400 && reply.status <= 599, "an error status is in 400..599");
  Check(reply.content_type == "application/json", "an error body is JSON");
  rapidjson::Document document;
  document.Parse<rapidjson::kParseValidateEncodingFlag>(reply.body.data(), reply.body.size());
  Check(!document.HasParseError(), "an error body is valid JSON in UTF-8");
  Check(document.IsObject(), "an error body is an object");
  Check(document.HasMember("error") && document["error"].IsString() &&
            document["error"].GetStringLength() > 0,
        "an error body has a non-empty \"error\" string");
  Check(document.HasMember("code") && document["code"].IsString() &&
            document["code"].GetStringLength() > 0,
        "an error body has a non-empty \"code\" string");
  return std::string(document["error"].GetString(), document["error"].GetStringLength());
}

bool IsUtf8(const std::string& text) {
  rapidjson::MemoryStream in(text.data(), text.size());
  rapidjson::StringBuffer out;
  while (in.Tell() < text.size()) {
    if (!rapidjson::UTF8<>::Validate(in, out)) return false;
  }
  return true;
}

bool IsHex32(const std::string& id) {
  if (id.size() != 32) return false;
  for (const char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool IsRequestIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '-';
}

void FuzzValidation(RequestKind kind, const std::string& body) {
  static const RequestValidator* const validator = new RequestValidator();
  const std::string problem = validator->Validate(kind, body);
  if (problem.empty()) {
    CheckAccepted(kind, body);
    return;
  }
  const Reply reply = Reply::Error(400, "invalid_request", problem);
  Check(reply.status == 400, "a refused body is a 400");
  Check(CheckErrorBody(reply) == problem, "the 400 carries the validator's sentence");
}

void FuzzIdempotencyKey(bool present, const std::string& value) {
  const KeyCheck check = CheckIdempotencyKey(present, value);
  if (!present || value.empty()) {
    Check(check == KeyCheck::kMissing, "an absent or empty key is missing");
    return;
  }
  bool printable = value.size() <= 255;
  for (const char c : value) printable = printable && c >= 0x20 && c <= 0x7e;
  Check(check == (printable ? KeyCheck::kOk : KeyCheck::kInvalid),
        "a key is valid exactly when it is 1..255 printable ASCII characters");
}

void FuzzPercentDecode(const std::string& segment) {
  const std::optional<std::string> decoded = PercentDecode(segment);
  if (!decoded) {
    Check(segment.find('%') != std::string::npos || !IsWellFormedUtf8(segment),
          "only an escape or bytes that are not UTF-8 can be refused");
    return;
  }
  Check(IsWellFormedUtf8(*decoded), "a decoded segment is UTF-8");
  Check(decoded->size() <= segment.size(), "decoding never grows the text");
  Check(decoded->find('\0') == std::string::npos || segment.find('\0') != std::string::npos,
        "%00 never decodes to a NUL");
  if (segment.find('%') == std::string::npos) {
    Check(*decoded == segment, "text without escapes decodes to itself");
  }
  // Escaping every byte and decoding again gives the same bytes.
  std::string escaped;
  bool has_nul = false;
  for (const unsigned char c : *decoded) {
    char hex[4];
    std::snprintf(hex, sizeof(hex), "%%%02X", c);
    escaped += hex;
    has_nul = has_nul || c == 0;
  }
  const std::optional<std::string> again = PercentDecode(escaped);
  Check(has_nul ? !again.has_value() : again == decoded, "escape then decode is the identity");
}

void FuzzRequestId(const std::string& given) {
  const std::string id = RequestIdFor(&given);
  Check(!id.empty() && id.size() <= 128, "a request id has 1..128 characters");
  for (const char c : id) Check(IsRequestIdChar(c), "a request id is [A-Za-z0-9._:-]");
  Check(id == given || IsHex32(id), "a request id is the client's or 32 fresh hex digits");
  bool acceptable = !given.empty() && given.size() <= 128;
  for (const char c : given) acceptable = acceptable && IsRequestIdChar(c);
  Check(acceptable == (id == given), "a sane client id is kept, any other replaced");
  Check(IsHex32(RequestIdFor(nullptr)), "no header: a fresh id");
}

void FuzzErrorMapping(const std::string& sqlstate, const std::string& message,
                      const std::string& request_id) {
  const ErrorKind kind = ClassifySqlState(sqlstate);
  const HttpErrorClass error = HttpAnswerFor(kind);
  const int s = error.http_status;
  Check(s == 400 || s == 404 || s == 409 || s == 422 || s == 500 || s == 503,
        "a SQLSTATE maps to 400, 404, 409, 422, 500 or 503");
  Check(error.code != nullptr && error.code[0] != '\0', "every class has a code");
  Check(sqlstate.size() == 5 || s == 500, "anything but five characters is unknown: 500");
  Check(kind != ErrorKind::kTransient || s == 503, "a retried SQLSTATE ends as a 503");
  Check(IsClientError(kind) == (s >= 400 && s < 500), "exactly the client's mistakes are 4xx");
  Check(s != 400 || sqlstate == "22023", "only our own argument checks (22023) are a 400");

  // `message` is what libpq reports; the pool turns it into a Status exactly like this.
  const Status status = Status::FromServerMessage(sqlstate, message);
  Check(status.detail() == message, "the whole server text stays in the detail, for the log");
  const Reply reply = Reply::FromStatus(status, request_id);
  Check(reply.log_detail.empty() || reply.log_detail.find(status.message()) != std::string::npos,
        "the log keeps what the client was told");
  Check(reply.status == s, "the reply has the class's status");
  const std::string sentence = CheckErrorBody(reply);
  rapidjson::Document body;
  body.Parse(reply.body.data(), reply.body.size());
  Check(std::string(body["code"].GetString()) == (s == 500 ? "internal_error" : error.code),
        "the reply has the class's code");
  if (s == 500) {
    // Internal errors show nothing of the database's message, only the request id.
    Check(sentence == "internal error", "a 500 says only \"internal error\"");
    Check(body.HasMember("requestId") && body["requestId"].IsString() &&
              request_id == body["requestId"].GetString(),
          "a 500 names its request id");
  } else if (!error.show_message) {
    Check(sentence == "the database is unavailable, retry later",
          "a hidden message is replaced by a fixed sentence");
  } else {
    for (const char* label :
         {"\nDETAIL:  ", "\nHINT:  ", "\nQUERY:  ", "\nCONTEXT:  ", "\nLINE "}) {
      Check(sentence.find(label) == std::string::npos,
            "a shown message has no DETAIL, HINT, QUERY, CONTEXT or LINE part");
    }
  }
  bool retry_after = false;
  for (const auto& [name, value] : reply.headers)
    retry_after = retry_after || name == "Retry-After";
  Check(retry_after == (s == 503), "exactly the 503s carry Retry-After");
}

void FuzzError(int status, const std::string& message) {
  const Reply reply = Reply::Error(status, "fuzz_code", message);
  Check(reply.status == status, "Reply::Error keeps its status");
  const std::string sentence = CheckErrorBody(reply);
  if (IsUtf8(message)) Check(sentence == message, "a UTF-8 message is carried unchanged");
}

}  // namespace
}  // namespace orderflow

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using orderflow::RequestKind;
  if (size == 0) return 0;
  const uint8_t selector = data[0];
  const std::string input(reinterpret_cast<const char*>(data) + 1, size - 1);
  static constexpr RequestKind kKinds[] = {RequestKind::kCreateOrder, RequestKind::kProcessOrder,
                                           RequestKind::kCancelOrder};

  orderflow::FuzzValidation(kKinds[selector % 3], input);
  orderflow::FuzzIdempotencyKey((selector & 0x40) == 0, input);
  orderflow::FuzzPercentDecode(input);
  orderflow::FuzzRequestId(input);
  const std::string sqlstate = input.substr(0, 5);
  const std::string message = input.substr(sqlstate.size());
  orderflow::FuzzErrorMapping(sqlstate, message, orderflow::RequestIdFor(&input));
  if (!input.empty()) orderflow::FuzzError(400 + selector % 200, input);
  return 0;
}
