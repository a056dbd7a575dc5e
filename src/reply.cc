#include "reply.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "error_map.h"

namespace orderflow {
namespace {

// Seconds a client should wait before retrying after a 503.
constexpr const char* kRetryAfterSeconds = "1";

// The length of the well-formed UTF-8 sequence at text[at], or 0 when there is none there
// (a stray continuation byte, an overlong form, a surrogate, beyond U+10FFFF, cut short).
size_t Utf8SequenceAt(const std::string& text, size_t at) {
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
  if (text.size() - at < length) return 0;
  for (size_t i = 1; i < length; ++i) {
    const unsigned char next = static_cast<unsigned char>(text[at + i]);
    if ((next & 0xC0) != 0x80) return 0;
    code_point = (code_point << 6) | (next & 0x3F);
  }
  const bool surrogate = code_point >= 0xD800 && code_point <= 0xDFFF;
  return code_point >= smallest && code_point <= 0x10FFFF && !surrogate ? length : 0;
}

// `text` with each byte that does not start a well-formed UTF-8 sequence replaced by U+FFFD.
// RapidJSON's writer copies bytes as they are, and a JSON text must be UTF-8 (RFC 8259).
std::string WellFormedUtf8(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t at = 0; at < text.size();) {
    const size_t length = Utf8SequenceAt(text, at);
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

std::string ErrorJson(const std::string& raw_message, const char* code,
                      const std::string* request_id) {
  const std::string message = WellFormedUtf8(raw_message);
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  writer.Key("error");
  writer.String(message.data(), static_cast<rapidjson::SizeType>(message.size()));
  writer.Key("code");
  writer.String(code);
  if (request_id != nullptr) {
    writer.Key("requestId");
    writer.String(request_id->data(), static_cast<rapidjson::SizeType>(request_id->size()));
  }
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

// libpqxx reports a server error as libpq formats it: "ERROR:  <sentence>\n", then labelled
// DETAIL, HINT, QUERY, CONTEXT and LINE parts that name functions, line numbers and statements.
// Only the sentence is for the client. It may itself hold a newline (an order id the client
// sent), so it ends at the first label, not at the first newline.
std::string ClientSentence(const std::string& message) {
  size_t end = message.size();
  for (const char* label :
       {"\nDETAIL:  ", "\nHINT:  ", "\nQUERY:  ", "\nCONTEXT:  ", "\nLINE ", "\nLOCATION:  "}) {
    end = std::min(end, message.find(label));
  }
  std::string sentence = message.substr(0, end);
  for (const char* severity : {"ERROR:", "FATAL:"}) {
    if (sentence.rfind(severity, 0) == 0) {
      sentence.erase(0, std::strlen(severity));
      break;
    }
  }
  sentence.erase(0, sentence.find_first_not_of(" \t"));
  sentence.erase(sentence.find_last_not_of(" \t\r\n") + 1);
  return sentence.empty() ? "the database refused the request" : sentence;
}

}  // namespace

Reply Reply::Json(int status, std::string body) {
  Reply reply;
  reply.status = status;
  reply.body = std::move(body);
  return reply;
}

Reply Reply::Error(int status, const char* code, const std::string& message) {
  return Json(status, ErrorJson(message, code, nullptr));
}

Reply Reply::Internal(const std::string& request_id, std::string detail) {
  Reply reply = Json(500, ErrorJson("internal error", "internal_error", &request_id));
  reply.log_detail = std::move(detail);
  return reply;
}

Reply Reply::FromStatus(const Status& status, const std::string& request_id) {
  const HttpErrorClass error = ClassifySqlState(status.sqlstate());
  if (error.http_status == 500) return Internal(request_id, status.ToString());
  Reply reply;
  if (error.show_message) {
    reply = Error(error.http_status, error.code, ClientSentence(status.message()));
  } else if (error.http_status == 503) {
    reply = Error(503, error.code, "the database is unavailable, retry later");
    reply.headers.emplace_back("Retry-After", kRetryAfterSeconds);
  } else {
    reply = Error(error.http_status, error.code, "request contains a value the database refuses");
  }
  reply.log_detail = status.ToString();
  return reply;
}

}  // namespace orderflow
