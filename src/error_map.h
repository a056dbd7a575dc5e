// The one table that turns a database error into an HTTP answer. Which SQLSTATE is which kind
// of error is decided by src/db/sqlstate.cc; this file decides what each kind answers. Nothing
// else in the front decides an HTTP status from a database error.
#ifndef ORDERFLOW_ERROR_MAP_H_
#define ORDERFLOW_ERROR_MAP_H_

#include <string>

#include "db/sqlstate.h"

namespace orderflow {

struct HttpErrorClass {
  int http_status;    // 400, 404, 409, 422, 500, 503
  const char* code;   // stable machine-readable code for the "code" field of the error body
  bool show_message;  // true: the database's message is a sentence meant for the client
};

// The answer for a kind of error.
HttpErrorClass HttpAnswerFor(ErrorKind kind);

// The answer for a SQLSTATE (five characters; anything else is unknown → 500).
HttpErrorClass HttpAnswerForSqlState(const std::string& sqlstate);

}  // namespace orderflow

#endif  // ORDERFLOW_ERROR_MAP_H_
