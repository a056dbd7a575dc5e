// Reply: what a route answers, independent of the HTTP library, plus the constructors every
// route shares for error bodies ({"error": sentence, "code": stable code}).
#ifndef ORDERFLOW_REPLY_H_
#define ORDERFLOW_REPLY_H_

#include <string>
#include <utility>
#include <vector>

#include "status.h"

namespace orderflow {

// The content types the front answers with.
constexpr const char* kJsonContentType = "application/json";
constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

// Seconds a client should wait before retrying after a 503.
constexpr const char* kRetryAfterSeconds = "1";

struct Reply {
  int status = 200;
  std::string body;  // JSON text (Prometheus text for /metrics)
  std::string content_type = kJsonContentType;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string log_detail;  // what went wrong, for the log only; never sent to the client
  // A provider request the database leased to this server (JSON, db/functions/45_effects.sql),
  // to send before answering; empty when there is none. Never sent to the client.
  std::string effect;

  // A JSON body produced elsewhere (by SQL), passed through unchanged.
  static Reply Json(int status, std::string body);
  // Any other body, with its content type.
  static Reply Text(int status, std::string body, std::string content_type);
  // {"error": message, "code": code}
  static Reply Error(int status, const char* code, const std::string& message);
  // 500 {"error":"internal error","code":"internal_error","requestId":...}; detail goes to the log.
  static Reply Internal(const std::string& request_id, std::string detail);
  // The answer for a failed database call, decided by the SQLSTATE table (error_map.h).
  static Reply FromStatus(const Status& status, const std::string& request_id);
};

}  // namespace orderflow

#endif  // ORDERFLOW_REPLY_H_
