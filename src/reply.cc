#include "reply.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "error_map.h"
#include "utf8.h"

namespace orderflow {
namespace {

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

}  // namespace

Reply Reply::Json(int status, std::string body) {
  Reply reply;
  reply.status = status;
  reply.body = std::move(body);
  return reply;
}

Reply Reply::Text(int status, std::string body, std::string content_type) {
  Reply reply = Json(status, std::move(body));
  reply.content_type = std::move(content_type);
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
  const HttpErrorClass error = HttpAnswerForSqlState(status.sqlstate());
  if (error.http_status == 500) return Internal(request_id, status.ToString());
  Reply reply;
  if (error.show_message) {
    reply = Error(error.http_status, error.code, status.message());
  } else {
    reply = Error(error.http_status, error.code, "the database is unavailable, retry later");
    reply.headers.emplace_back("Retry-After", kRetryAfterSeconds);
  }
  reply.log_detail = status.ToString();
  return reply;
}

}  // namespace orderflow
