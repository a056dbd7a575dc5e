#include "error_map.h"

namespace orderflow {

HttpErrorClass HttpAnswerFor(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidArgument:
      return {400, "invalid_request", true};
    case ErrorKind::kNotFound:
      return {404, "not_found", true};
    case ErrorKind::kConflict:
      return {409, "order_conflict", true};
    case ErrorKind::kKeyReused:
      return {422, "idempotency_key_reused", true};
    case ErrorKind::kTransient:
      return {503, "unavailable", false};
    case ErrorKind::kTimeout:
      return {503, "timeout", false};
    case ErrorKind::kUnavailable:
      return {503, "unavailable", false};
    case ErrorKind::kConfiguration:
    case ErrorKind::kInternal:
      break;
  }
  return {500, "internal_error", false};
}

HttpErrorClass HttpAnswerForSqlState(const std::string& sqlstate) {
  return HttpAnswerFor(ClassifySqlState(sqlstate));
}

}  // namespace orderflow
