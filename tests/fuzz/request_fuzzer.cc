// libFuzzer target over the code that turns untrusted bytes into answers without a database:
// the transport's checks of requests (RequestValidator::Check, CheckIdempotencyKey),
// path decoding (PercentDecode), request ids (RequestIdFor) and error mapping
// (ClassifySqlState, HttpAnswerFor, Status::FromServerMessage, Reply::FromStatus, Reply::Error).
// Built with ASan and UBSan (make fuzz).
//
// The first input byte picks whether an Idempotency-Key is present and the status of an error
// reply; the other bytes are the body, the header value, the path segment and the request id, and
// their first five bytes the SQLSTATE (the rest the database's message). Each property below is a
// contract of those functions; a broken one stops the run with __builtin_trap().
#include <rapidjson/document.h>
#include <rapidjson/encodings.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/stringbuffer.h>

#include <algorithm>
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

// RapidJSON's verdict on a body, for comparison: parsed iteratively (no recursion), numbers
// kept as text. RapidJSON refuses numbers beyond double's range, which PostgreSQL (and the
// validator) accept, and it accepts \u0000 and unpaired low surrogates, which they refuse.
bool RapidJsonAccepts(const std::string& body, rapidjson::Document* document) {
  constexpr unsigned kFlags = rapidjson::kParseValidateEncodingFlag |
                              rapidjson::kParseIterativeFlag |
                              rapidjson::kParseNumbersAsStringsFlag;
  document->Parse<kFlags>(body.data(), body.size());
  return !document->HasParseError();
}

// The same with numbers as numbers (so that a number is not taken for a string), or false.
bool RapidJsonTyped(const std::string& body, rapidjson::Document* document) {
  constexpr unsigned kFlags =
      rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag;
  document->Parse<kFlags>(body.data(), body.size());
  return !document->HasParseError() && document->IsObject();
}

int Depth(const rapidjson::Value& value) {
  int deepest = 0;
  if (value.IsObject()) {
    for (const auto& member : value.GetObject()) deepest = std::max(deepest, Depth(member.value));
    return deepest + 1;
  }
  if (value.IsArray()) {
    for (const auto& element : value.GetArray()) deepest = std::max(deepest, Depth(element));
    return deepest + 1;
  }
  return 0;
}

// The last top-level member "orderId" when it is a string (what jsonb keeps), else nullopt.
std::optional<std::string> LastOrderId(const rapidjson::Value& object) {
  std::optional<std::string> id;
  for (const auto& member : object.GetObject()) {
    if (std::string(member.name.GetString(), member.name.GetStringLength()) != "orderId") continue;
    id.reset();
    if (member.value.IsString()) {
      id = std::string(member.value.GetString(), member.value.GetStringLength());
    }
  }
  return id;
}

// An accepted body is one JSON object in UTF-8 without NUL bytes; where RapidJSON can read it
// too, it agrees on the orderId. A refused body that RapidJSON reads as an object is refused
// for one of the reasons RapidJSON does not check.
void CheckVerdict(const std::string& body, const BodyCheck& checked) {
  rapidjson::Document document;
  const bool rapid = RapidJsonAccepts(body, &document);
  if (checked.problem.empty()) {
    Check(body.find('\0') == std::string::npos, "an accepted body holds no NUL byte");
    Check(IsWellFormedUtf8(body), "an accepted body is UTF-8");
    Check(rapid || document.GetParseError() == rapidjson::kParseErrorNumberTooBig,
          "an accepted body is JSON (RapidJSON refuses only numbers beyond double's range)");
    if (rapid) {
      Check(document.IsObject(), "an accepted body is an object");
      Check(Depth(document) <= kMaxJsonDepth, "an accepted body is at most kMaxJsonDepth deep");
      rapidjson::Document typed;
      if (RapidJsonTyped(body, &typed)) {
        Check(LastOrderId(typed) == checked.order_id, "the orderId is the one jsonb keeps");
      }
    }
    return;
  }
  Check(!checked.order_id.has_value(), "a refused body passes no orderId");
  if (rapid && document.IsObject() && body.find('\0') == std::string::npos) {
    const std::string& p = checked.problem;
    Check(p.find("nested more than") != std::string::npos ||
              p.find("\\u0000") != std::string::npos ||
              p.find("unpaired UTF-16 surrogate") != std::string::npos ||
              p.find("PostgreSQL's numeric") != std::string::npos,
          "a body RapidJSON reads as an object is refused only for depth, \\u0000, surrogates "
          "or numeric range");
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

void FuzzValidation(const std::string& body) {
  static const RequestValidator* const validator = new RequestValidator();
  const BodyCheck checked = validator->Check(body);
  CheckVerdict(body, checked);
  if (checked.problem.empty()) return;
  const Reply reply = Reply::Error(400, "invalid_request", checked.problem);
  Check(reply.status == 400, "a refused body is a 400");
  Check(CheckErrorBody(reply) == checked.problem, "the 400 carries the validator's sentence");
}

void FuzzIdempotencyKey(bool present, const std::string& value) {
  const KeyCheck check = CheckIdempotencyKey(present ? &value : nullptr);
  if (!present || value.empty()) {
    Check(check == KeyCheck::kMissing, "an absent or empty key is missing");
    return;
  }
  const bool text = value.find('\0') == std::string::npos && IsWellFormedUtf8(value);
  Check(check == (text ? KeyCheck::kPresent : KeyCheck::kNotText),
        "a key is passed to SQL exactly when it is UTF-8 text without NUL");
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
  if (size == 0) return 0;
  const uint8_t selector = data[0];
  const std::string input(reinterpret_cast<const char*>(data) + 1, size - 1);
  orderflow::FuzzValidation(input);
  orderflow::FuzzIdempotencyKey((selector & 0x40) == 0, input);
  orderflow::FuzzPercentDecode(input);
  orderflow::FuzzRequestId(input);
  const std::string sqlstate = input.substr(0, 5);
  const std::string message = input.substr(sqlstate.size());
  orderflow::FuzzErrorMapping(sqlstate, message, orderflow::RequestIdFor(&input));
  if (!input.empty()) orderflow::FuzzError(400 + selector % 200, input);
  return 0;
}
